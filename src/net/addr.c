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

void mwl_net_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    if (!sa) {
        snprintf(out, size, "?");
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && (size_t)len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in); /* copy: sa may not be aligned for sockaddr_in */
        if (!inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip))
            snprintf(ip, sizeof ip, "?");
        snprintf(out, size, "%s:%u", ip, (unsigned)ntohs(in.sin_port));
    } else if (sa->sa_family == AF_INET6 && (size_t)len >= sizeof(struct sockaddr_in6)) {
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
