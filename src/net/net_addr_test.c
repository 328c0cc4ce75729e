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
    RUN_TEST(test_format);
    RUN_TEST(test_clock);
    RUN_TEST(test_count_fds);
    return check_report("net_addr_test");
}
