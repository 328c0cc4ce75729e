/* Address parsing and formatting, the clock, and fd counting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "net/net_int.h"

static void test_parse_port(void)
{
    static const struct {
        const char *text;
        int rc;
        uint16_t port;
    } cases[] = {
        {"0", MWL_OK, 0},
        {"104", MWL_OK, 104},
        {"11112", MWL_OK, 11112},
        {"65535", MWL_OK, 65535},
        {"00104", MWL_OK, 104},
        {"65536", MWL_E_INVALID, 0},
        {"99999", MWL_E_INVALID, 0},
        {"123456", MWL_E_INVALID, 0},
        {"", MWL_E_INVALID, 0},
        {"+1", MWL_E_INVALID, 0},
        {" 1", MWL_E_INVALID, 0},
        {"1 ", MWL_E_INVALID, 0},
        {"0x10", MWL_E_INVALID, 0},
        {"-1", MWL_E_INVALID, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t port = 7;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_net_parse_port(cases[i].text, &port, &diag);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == MWL_OK)
            CHECK_EQ_INT(port, cases[i].port);
        else
            CHECK(diag.msg[0] != '\0');
    }
}

static void test_parse_hostport(void)
{
    static const struct {
        const char *text;
        int rc;
        const char *host;
        uint16_t port;
    } cases[] = {
        {"pacs.example.org", MWL_OK, "pacs.example.org", 104},
        {"pacs.example.org:11112", MWL_OK, "pacs.example.org", 11112},
        {"127.0.0.1:0", MWL_OK, "127.0.0.1", 0},
        {"[::1]", MWL_OK, "::1", 104},
        {"[::1]:2762", MWL_OK, "::1", 2762},
        {"[fe80::1%eth0]:104", MWL_OK, "fe80::1%eth0", 104},
        {"::1", MWL_OK, "::1", 104},
        {"fe80::1:2:3", MWL_OK, "fe80::1:2:3", 104},
        {":11112", MWL_OK, "", 11112},
        {"*:11112", MWL_OK, "", 11112},
        {"*", MWL_OK, "", 104},
        {"", MWL_OK, "", 104},
        {"[]", MWL_E_INVALID, "", 0},
        {"[::1", MWL_E_INVALID, "", 0},
        {"[::1]x", MWL_E_INVALID, "", 0},
        {"[::1]:", MWL_E_INVALID, "", 0},
        {"host:", MWL_E_INVALID, "", 0},
        {"host:70000", MWL_E_INVALID, "", 0},
        {"host:port", MWL_E_INVALID, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[MWL_NET_HOST_MAX];
        uint16_t port = 0;
        int rc = mwl_net_parse_hostport(cases[i].text, 104, host, sizeof host, &port, NULL);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == MWL_OK && cases[i].rc == MWL_OK) {
            CHECK_EQ_STR(host, cases[i].host);
            CHECK_EQ_INT(port, cases[i].port);
        }
    }
    /* The host buffer bounds the host, and too small is an error, not a
     * silently truncated name. */
    char small[4];
    uint16_t port = 0;
    CHECK_EQ_INT(mwl_net_parse_hostport("abc:1", 0, small, sizeof small, &port, NULL), MWL_OK);
    CHECK_EQ_STR(small, "abc");
    CHECK_EQ_INT(mwl_net_parse_hostport("abcd:1", 0, small, sizeof small, &port, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_net_parse_hostport("[abcd]", 0, small, sizeof small, &port, NULL), MWL_E_INVALID);
}

/* Ranges: every accepted form, its canonical text, and every refusal. */
static void test_cidr_parse(void)
{
    static const struct {
        const char *text;
        const char *canonical; /* NULL: refused */
        int family, prefix;
    } cases[] = {
        {"10.0.0.5", "10.0.0.5", 4, 32},
        {"10.0.0.5/32", "10.0.0.5", 4, 32},
        {"10.0.0.0/8", "10.0.0.0/8", 4, 8},
        {"0.0.0.0/0", "0.0.0.0/0", 4, 0},
        {"192.168.1.128/25", "192.168.1.128/25", 4, 25},
        {"255.255.255.255", "255.255.255.255", 4, 32},
        {"::1", "::1", 6, 128},
        {"::1/128", "::1", 6, 128},
        {"::/0", "::/0", 6, 0},
        {"2001:db8::/32", "2001:db8::/32", 6, 32},
        {"2001:DB8:0:0::/64", "2001:db8::/64", 6, 64},
        {"fe80::/10", "fe80::/10", 6, 10},
        {"2001:db8::8000:0/97", "2001:db8::8000:0/97", 6, 97},
        /* IPv4-mapped: held as IPv4, the prefix less 96. */
        {"::ffff:10.0.0.5", "10.0.0.5", 4, 32},
        {"::ffff:10.0.0.0/104", "10.0.0.0/8", 4, 8},
        {"::ffff:0:0/96", "0.0.0.0/0", 4, 0},
        {"::ffff:a00:5", "10.0.0.5", 4, 32},
        /* Refused. */
        {"", NULL, 0, 0},
        {"/8", NULL, 0, 0},
        {"10.0.0.0/", NULL, 0, 0},
        {"10.0.0.0/33", NULL, 0, 0},
        {"::/129", NULL, 0, 0},
        {"10.0.0.0/08", NULL, 0, 0},
        {"10.0.0.0/+8", NULL, 0, 0},
        {"10.0.0.0/-1", NULL, 0, 0},
        {"10.0.0.0/8/8", NULL, 0, 0},
        {"10.0.0.0/ 8", NULL, 0, 0},
        {"10.0.0.0/1000", NULL, 0, 0},
        {"10.1.2.3/8", NULL, 0, 0}, /* bits past the prefix */
        {"2001:db8::1/64", NULL, 0, 0},
        {"::ffff:10.0.0.0/80", NULL, 0, 0}, /* into the ::ffff: marker */
        {"10", NULL, 0, 0},
        {"10.1", NULL, 0, 0},
        {"10.0.0", NULL, 0, 0},
        {"010.0.0.1", NULL, 0, 0},
        {"10.0.0.256", NULL, 0, 0},
        {"10.0.0.1.2", NULL, 0, 0},
        {" 10.0.0.1", NULL, 0, 0},
        {"10.0.0.1 ", NULL, 0, 0},
        {"0x0a.0.0.1", NULL, 0, 0},
        {"[::1]", NULL, 0, 0},
        {"fe80::1%eth0", NULL, 0, 0},
        {"1:2:3:4:5:6:7:8:9", NULL, 0, 0},
        {"::g", NULL, 0, 0},
        {"localhost", NULL, 0, 0},
        {"*", NULL, 0, 0},
        {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2550", NULL, 0, 0}, /* 46 characters */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_net_cidr c;
        memset(&c, 0xAB, sizeof c);
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_net_cidr_parse(cases[i].text, strlen(cases[i].text), &c, &diag);
        if (!cases[i].canonical) {
            CHECK_EQ_INT(rc, MWL_E_INVALID);
            CHECK(diag.msg[0] != '\0');
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  case %s: %s\n", cases[i].text, diag.msg);
            continue;
        }
        CHECK_EQ_INT(c.addr.family, cases[i].family);
        CHECK_EQ_INT(c.prefix, cases[i].prefix);
        char out[MWL_NET_CIDR_STRLEN];
        CHECK_EQ_INT(mwl_net_cidr_format(&c, out, sizeof out), strlen(cases[i].canonical));
        CHECK_EQ_STR(out, cases[i].canonical);
        /* The canonical text reads back to the same range. */
        mwl_net_cidr again;
        CHECK_EQ_INT(mwl_net_cidr_parse(out, strlen(out), &again, NULL), MWL_OK);
        CHECK(mwl_net_cidr_equal(&c, &again));
    }
    /* The message names the range that was probably meant. */
    mwl_net_cidr c;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_net_cidr_parse("192.168.1.10/24", 15, &c, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "192.168.1.0/24") != NULL);
    /* Only `len` bytes are read. */
    CHECK_EQ_INT(mwl_net_cidr_parse("10.0.0.0/8xyz", 10, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.prefix, 8);
    CHECK_EQ_INT(mwl_net_cidr_parse("10.0.0.1\0/8", 11, &c, NULL), MWL_E_INVALID);
    /* The widest IPv6 literal fits the format buffer. */
    CHECK_EQ_INT(mwl_net_cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", 43, &c, NULL), MWL_OK);
    char out[MWL_NET_CIDR_STRLEN];
    CHECK(mwl_net_cidr_format(&c, out, sizeof out) < sizeof out);
    /* snprintf style when short. */
    char tiny[4];
    CHECK_EQ_INT(mwl_net_cidr_format(&c, tiny, sizeof tiny), strlen(out));
    CHECK_EQ_STR(tiny, "fff");
}

static bool in_range(const char *range, const char *addr)
{
    mwl_net_cidr c;
    mwl_net_addr a;
    if (mwl_net_cidr_parse(range, strlen(range), &c, NULL) != MWL_OK ||
        mwl_net_addr_parse(addr, strlen(addr), &a) != MWL_OK) {
        CHECK(0);
        return false;
    }
    return mwl_net_cidr_contains(&c, &a);
}

static void test_cidr_contains(void)
{
    CHECK(in_range("10.0.0.0/8", "10.0.0.0"));
    CHECK(in_range("10.0.0.0/8", "10.255.255.255"));
    CHECK(!in_range("10.0.0.0/8", "11.0.0.0"));
    CHECK(!in_range("10.0.0.0/8", "9.255.255.255"));
    CHECK(in_range("192.168.1.128/25", "192.168.1.200"));
    CHECK(!in_range("192.168.1.128/25", "192.168.1.127"));
    CHECK(in_range("10.0.0.5", "10.0.0.5"));
    CHECK(!in_range("10.0.0.5", "10.0.0.4"));
    CHECK(in_range("0.0.0.0/0", "203.0.113.9"));
    CHECK(in_range("128.0.0.0/1", "200.0.0.1"));
    CHECK(!in_range("128.0.0.0/1", "127.0.0.1"));
    CHECK(in_range("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!in_range("2001:db8::/32", "2001:db9::1"));
    CHECK(in_range("::/0", "::1"));
    CHECK(in_range("::1", "::1"));
    CHECK(!in_range("::1", "::2"));
    CHECK(in_range("fe80::/10", "febf::1"));
    CHECK(!in_range("fe80::/10", "fec0::1"));
    CHECK(in_range("2001:db8::8000:0/97", "2001:db8::ffff:ffff"));
    CHECK(!in_range("2001:db8::8000:0/97", "2001:db8::7fff:ffff"));
    /* IPv4 peers as a dual-stack socket sees them match IPv4 ranges... */
    CHECK(in_range("10.0.0.0/8", "::ffff:10.0.0.5"));
    CHECK(in_range("10.0.0.5", "::ffff:10.0.0.5"));
    CHECK(in_range("::ffff:10.0.0.0/104", "10.1.1.1"));
    CHECK(!in_range("10.0.0.0/8", "::ffff:11.0.0.5"));
    /* ...and families never mix otherwise. */
    CHECK(!in_range("::/0", "10.0.0.5"));
    CHECK(!in_range("::/0", "::ffff:10.0.0.5"));
    CHECK(!in_range("0.0.0.0/0", "::1"));
    CHECK(!in_range("0.0.0.0/0", "::a00:5")); /* IPv4-compatible (deprecated) is IPv6 */
    /* A hand-built range with an impossible prefix holds nothing. */
    mwl_net_cidr bad;
    memset(&bad, 0, sizeof bad);
    bad.addr.family = 4;
    bad.prefix = 33;
    mwl_net_addr a;
    CHECK_EQ_INT(mwl_net_addr_parse("0.0.0.0", 7, &a), MWL_OK);
    CHECK(!mwl_net_cidr_contains(&bad, &a));
    bad.addr.family = 5;
    bad.prefix = 0;
    CHECK(!mwl_net_cidr_contains(&bad, &a));
}

static void test_addr_from_peer(void)
{
    static const struct {
        const char *peer;
        const char *addr; /* NULL: none */
    } cases[] = {
        {"127.0.0.1:49152", "127.0.0.1"},
        {"10.0.0.5", "10.0.0.5"},
        {"[::1]:104", "::1"},
        {"[2001:db8::5]:11112", "2001:db8::5"},
        {"[fe80::1%3]:104", "fe80::1"},
        {"[fe80::1%eth0]", "fe80::1"},
        {"2001:db8::5", "2001:db8::5"},
        {"::ffff:10.0.0.5", "10.0.0.5"},
        {"[::ffff:10.0.0.5]:104", "10.0.0.5"},
        {"unix", NULL},
        {"?", NULL},
        {"", NULL},
        {"[::1", NULL},
        {"host.example:104", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_net_addr a;
        int rc = mwl_net_addr_from_peer(cases[i].peer, &a);
        if (!cases[i].addr) {
            CHECK_EQ_INT(rc, MWL_E_INVALID);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        char out[MWL_NET_CIDR_STRLEN];
        mwl_net_addr_format(&a, out, sizeof out);
        CHECK_EQ_STR(out, cases[i].addr);
    }
}

static void test_format(void)
{
    char out[MWL_NET_ADDRSTRLEN];

    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    in4.sin_port = htons(104);
    CHECK_EQ_INT(inet_pton(AF_INET, "192.0.2.7", &in4.sin_addr), 1);
    mwl_net_format_sockaddr((const struct sockaddr *)&in4, sizeof in4, out, sizeof out);
    CHECK_EQ_STR(out, "192.0.2.7:104");

    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(11112);
    CHECK_EQ_INT(inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr), 1);
    mwl_net_format_sockaddr((const struct sockaddr *)&in6, sizeof in6, out, sizeof out);
    CHECK_EQ_STR(out, "[2001:db8::5]:11112");

    in6.sin6_scope_id = 3;
    CHECK_EQ_INT(inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
    mwl_net_format_sockaddr((const struct sockaddr *)&in6, sizeof in6, out, sizeof out);
    CHECK_EQ_STR(out, "[fe80::1%3]:11112");

    /* What a dual-stack listener reports for an IPv4 peer. */
    in6.sin6_scope_id = 0;
    CHECK_EQ_INT(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
    mwl_net_format_sockaddr((const struct sockaddr *)&in6, sizeof in6, out, sizeof out);
    CHECK_EQ_STR(out, "127.0.0.1:11112");

    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    mwl_net_format_sockaddr((const struct sockaddr *)&un, sizeof un, out, sizeof out);
    CHECK_EQ_STR(out, "unix");

    /* A length too short for the family is not read past. */
    mwl_net_format_sockaddr((const struct sockaddr *)&in6, 4, out, sizeof out);
    CHECK_EQ_STR(out, "?");

    /* Truncation keeps the NUL. */
    char tiny[6];
    mwl_net_format_sockaddr((const struct sockaddr *)&in4, sizeof in4, tiny, sizeof tiny);
    CHECK_EQ_STR(tiny, "192.0");
}

static void test_clock(void)
{
    uint64_t a = mwl_now_ms();
    usleep(20 * 1000);
    uint64_t b = mwl_now_ms();
    CHECK(b >= a + 15);
    CHECK(b < a + 1000);
    CHECK(mwl_deadline_in(-1) == UINT64_MAX);
    uint64_t d = mwl_deadline_in(500);
    CHECK(d >= b + 500 && d < b + 1500);
    /* A huge timeout is still a deadline, not "none", and does not wrap. */
    uint64_t far = mwl_deadline_in(INT64_MAX);
    CHECK(far != UINT64_MAX && far >= (uint64_t)INT64_MAX);
}

static void test_count_fds(void)
{
    size_t before = 0, during = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    CHECK(before >= 1); /* stdout at least */
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    CHECK_EQ_INT(mwl_net_count_fds(&during), MWL_OK);
    CHECK_EQ_INT(during, before + 2);
    close(fds[0]);
    close(fds[1]);
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
}

int main(void)
{
    RUN_TEST(test_parse_port);
    RUN_TEST(test_parse_hostport);
    RUN_TEST(test_cidr_parse);
    RUN_TEST(test_cidr_contains);
    RUN_TEST(test_addr_from_peer);
    RUN_TEST(test_format);
    RUN_TEST(test_clock);
    RUN_TEST(test_count_fds);
    return check_report("net_addr_test");
}
