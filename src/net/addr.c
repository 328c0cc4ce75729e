/* Address text: "host[:port]" / "[v6][:port]" parsing for configuration and
 * command lines, and socket addresses formatted for log lines. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"

int mwl_net_parse_port(const char *text, uint16_t *port, mwl_diag *diag)
{
    if (!text || !port || !*text) {
        mwl_diag_set(diag, 0, 0, "empty port");
        return MWL_E_INVALID;
    }
    unsigned long value = 0;
    for (size_t i = 0; text[i]; i++) {
        /* Digits only: strtoul would accept "+1", " 1" and "0x10". */
        if (text[i] < '0' || text[i] > '9' || i >= 5) {
            mwl_diag_set(diag, i, 0, "invalid port \"%.32s\"", text);
            return MWL_E_INVALID;
        }
        value = value * 10 + (unsigned long)(text[i] - '0');
    }
    if (value > 65535) {
        mwl_diag_set(diag, 0, 0, "port %lu out of range 0..65535", value);
        return MWL_E_INVALID;
    }
    *port = (uint16_t)value;
    return MWL_OK;
}

static int copy_host(const char *src, size_t len, char *host, size_t host_size, mwl_diag *diag)
{
    if (len >= host_size) {
        mwl_diag_set(diag, 0, 0, "host name too long (%zu bytes)", len);
        return MWL_E_INVALID;
    }
    /* "*" is the usual spelling of "every address" in listen options. */
    if (len == 1 && src[0] == '*')
        len = 0;
    memcpy(host, src, len);
    host[len] = '\0';
    return MWL_OK;
}

int mwl_net_parse_hostport(const char *text, uint16_t default_port, char *host, size_t host_size,
                           uint16_t *port, mwl_diag *diag)
{
    if (!text || !host || host_size == 0 || !port)
        return MWL_E_INVALID;
    host[0] = '\0';
    *port = default_port;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            mwl_diag_set(diag, 0, 0, "missing ']' in \"%.64s\"", text);
            return MWL_E_INVALID;
        }
        size_t len = (size_t)(close - text - 1);
        if (len == 0) {
            mwl_diag_set(diag, 1, 0, "empty brackets");
            return MWL_E_INVALID;
        }
        if (close[1] != '\0' && close[1] != ':') {
            mwl_diag_set(diag, (size_t)(close - text) + 1, 0, "unexpected text after ']'");
            return MWL_E_INVALID;
        }
        int rc = copy_host(text + 1, len, host, host_size, diag);
        if (rc != MWL_OK)
            return rc;
        return close[1] == ':' ? mwl_net_parse_port(close + 2, port, diag) : MWL_OK;
    }

    const char *colon = strchr(text, ':');
    if (colon && strchr(colon + 1, ':'))
        return copy_host(text, strlen(text), host, host_size, diag); /* bare IPv6 literal, no port */
    if (!colon)
        return copy_host(text, strlen(text), host, host_size, diag);
    int rc = copy_host(text, (size_t)(colon - text), host, host_size, diag);
    if (rc != MWL_OK)
        return rc;
    return mwl_net_parse_port(colon + 1, port, diag);
}

void mwl_net_format_sockaddr(const struct sockaddr *sa, size_t len, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    if (!sa) {
        snprintf(out, size, "?");
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in); /* copy: sa may not be aligned for sockaddr_in */
        if (!inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip))
            snprintf(ip, sizeof ip, "?");
        snprintf(out, size, "%s:%u", ip, (unsigned)ntohs(in.sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        unsigned port = ntohs(in6.sin6_port);
        /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; log them
         * as the IPv4 address the peer actually used. */
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            if (!inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], ip, sizeof ip))
                snprintf(ip, sizeof ip, "?");
            snprintf(out, size, "%s:%u", ip, port);
            return;
        }
        if (!inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip))
            snprintf(ip, sizeof ip, "?");
        if (in6.sin6_scope_id != 0)
            snprintf(out, size, "[%s%%%u]:%u", ip, (unsigned)in6.sin6_scope_id, port);
        else
            snprintf(out, size, "[%s]:%u", ip, port);
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(out, size, "unix");
    } else {
        snprintf(out, size, "?");
    }
}

/* ---- IP addresses and ranges ----------------------------------------------- */

/* The longest literal inet_pton can take: an IPv6 address whose last 32
 * bits are written as IPv4 ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
 * has 45 characters). */
#define ADDR_TEXT_MAX 45

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int mwl_net_addr_parse(const char *text, size_t len, mwl_net_addr *out)
{
    if (!text || !out || len == 0 || len > ADDR_TEXT_MAX)
        return MWL_E_INVALID;
    char buf[ADDR_TEXT_MAX + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) /* an embedded NUL would cut the text short */
        return MWL_E_INVALID;
    mwl_net_addr a;
    memset(&a, 0, sizeof a);
    /* inet_pton takes exactly the numeric forms: four decimal parts without
     * leading zeros for IPv4 (not "10", "10.1" or "010.0.0.1", which
     * inet_aton would read as something else), RFC 4291 text for IPv6. */
    if (strchr(buf, ':')) {
        if (inet_pton(AF_INET6, buf, a.bytes) != 1)
            return MWL_E_INVALID;
        a.family = 6;
        if (memcmp(a.bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
            memmove(a.bytes, a.bytes + 12, 4);
            memset(a.bytes + 4, 0, 12);
            a.family = 4;
        }
    } else {
        if (inet_pton(AF_INET, buf, a.bytes) != 1)
            return MWL_E_INVALID;
        a.family = 4;
    }
    *out = a;
    return MWL_OK;
}

static unsigned family_bits(uint8_t family)
{
    return family == 4 ? 32u : 128u;
}

/* Clears every bit of `a` past the first `prefix`. */
static void mask_to(mwl_net_addr *a, unsigned prefix)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned first = i * 8u;
        if (first >= prefix)
            a->bytes[i] = 0;
        else if (prefix - first < 8u)
            a->bytes[i] &= (uint8_t)(0xFFu << (8u - (prefix - first)));
    }
}

int mwl_net_cidr_parse(const char *text, size_t len, mwl_net_cidr *out, mwl_diag *diag)
{
    if (!text || !out)
        return MWL_E_INVALID;
    const char *slash = memchr(text, '/', len);
    size_t alen = slash ? (size_t)(slash - text) : len;
    mwl_net_addr a;
    if (mwl_net_addr_parse(text, alen, &a) != MWL_OK) {
        mwl_diag_set(diag, 0, 0, "'%.*s' is not an IPv4 or IPv6 address", (int)(alen < 48 ? alen : 48), text);
        return MWL_E_INVALID;
    }
    /* Written as IPv6 (maybe IPv4-mapped): the prefix counts IPv6 bits. */
    bool v6_text = memchr(text, ':', alen) != NULL;
    unsigned written_max = v6_text ? 128u : 32u;
    unsigned prefix = written_max;
    if (slash) {
        const char *p = slash + 1;
        size_t plen = len - alen - 1;
        /* Decimal, no sign, no leading zeros ("/08" is a typo, not 8). */
        if (plen == 0 || plen > 3 || (plen > 1 && p[0] == '0')) {
            mwl_diag_set(diag, alen + 1, 0, "bad prefix length after '/'");
            return MWL_E_INVALID;
        }
        prefix = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9') {
                mwl_diag_set(diag, alen + 1, 0, "bad prefix length after '/'");
                return MWL_E_INVALID;
            }
            prefix = prefix * 10u + (unsigned)(p[i] - '0');
        }
        if (prefix > written_max) {
            mwl_diag_set(diag, alen + 1, 0, "prefix /%u is over /%u", prefix, written_max);
            return MWL_E_INVALID;
        }
    }
    if (v6_text && a.family == 4) {
        /* ::ffff:a.b.c.d/n with n < 96 would reach into the ::ffff:
         * marker itself: a range of IPv6 addresses that are not all
         * IPv4-mapped, which we do not hold as IPv4. */
        if (prefix < 96) {
            mwl_diag_set(diag, alen + 1, 0, "an IPv4-mapped range needs a prefix of /96 or more");
            return MWL_E_INVALID;
        }
        prefix -= 96;
    }
    mwl_net_cidr c;
    c.addr = a;
    c.prefix = (uint8_t)prefix;
    mwl_net_addr masked = a;
    mask_to(&masked, prefix);
    if (memcmp(&masked, &a, sizeof a) != 0) {
        /* "192.168.1.10/24" is more often a mistake (one host meant, or the
         * range) than a way to write 192.168.1.0/24: say which. */
        char net[MWL_NET_CIDR_STRLEN];
        mwl_net_cidr fixed = {masked, (uint8_t)prefix};
        mwl_net_cidr_format(&fixed, net, sizeof net);
        mwl_diag_set(diag, 0, 0, "bits set past the prefix (the range is %s)", net);
        return MWL_E_INVALID;
    }
    *out = c;
    return MWL_OK;
}

size_t mwl_net_addr_format(const mwl_net_addr *a, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (!a || !inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    int n = snprintf(out, cap, "%s", ip);
    return n > 0 ? (size_t)n : 0;
}

size_t mwl_net_cidr_format(const mwl_net_cidr *c, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    mwl_net_addr_format(&c->addr, ip, sizeof ip);
    int n = c->prefix >= family_bits(c->addr.family) ? snprintf(out, cap, "%s", ip)
                                                     : snprintf(out, cap, "%s/%u", ip, (unsigned)c->prefix);
    return n > 0 ? (size_t)n : 0;
}

bool mwl_net_cidr_contains(const mwl_net_cidr *c, const mwl_net_addr *a)
{
    if (!c || !a || c->addr.family != a->family || (a->family != 4 && a->family != 6))
        return false;
    unsigned prefix = c->prefix;
    if (prefix > family_bits(a->family))
        return false; /* not a range (a hand-built one): holds nothing */
    mwl_net_addr m = *a;
    mask_to(&m, prefix);
    mwl_net_addr n = c->addr;
    mask_to(&n, prefix);
    return memcmp(m.bytes, n.bytes, sizeof m.bytes) == 0;
}

bool mwl_net_cidr_equal(const mwl_net_cidr *a, const mwl_net_cidr *b)
{
    return a->prefix == b->prefix && a->addr.family == b->addr.family &&
           memcmp(a->addr.bytes, b->addr.bytes, sizeof a->addr.bytes) == 0;
}

int mwl_net_addr_from_peer(const char *peer, mwl_net_addr *out)
{
    if (!peer || !out)
        return MWL_E_INVALID;
    const char *b = peer;
    size_t n = strlen(peer);
    if (b[0] == '[') {
        const char *close = strchr(b, ']');
        if (!close)
            return MWL_E_INVALID;
        b++;
        n = (size_t)(close - b);
    } else {
        const char *colon = strchr(b, ':');
        if (colon && !strchr(colon + 1, ':'))
            n = (size_t)(colon - b); /* "a.b.c.d:port" */
    }
    /* A link-local peer's scope ("%2", "%eth0") names our interface, not
     * part of its address. */
    const char *pct = memchr(b, '%', n);
    if (pct)
        n = (size_t)(pct - b);
    return mwl_net_addr_parse(b, n, out);
}
