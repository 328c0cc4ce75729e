/* Access rules (allow.c): every form of `AE[@ADDRESS[/PREFIX]]` and every
 * refusal, the canonical text, and the decision with calling-aet-allow:
 * which verdict for which AE from which address, and what the log says. */
#include <string.h>

#include "check.h"
#include "server/server.h"

static void test_rule_forms(void)
{
    static const struct {
        const char *text;
        const char *canonical; /* NULL: refused, and `ae` is part of the message */
        const char *ae;        /* the stored title ("" = any) */
        const char *range;     /* NULL = any address */
    } cases[] = {
        {"CT1", "CT1", "CT1", NULL},
        {"  CT1  ", "CT1", "CT1", NULL},
        {"MR 2", "MR 2", "MR 2", NULL},
        {"CT1@10.0.0.0/8", "CT1@10.0.0.0/8", "CT1", "10.0.0.0/8"},
        {" CT1 @ 10.0.0.0/8 ", "CT1@10.0.0.0/8", "CT1", "10.0.0.0/8"},
        {"\tCT1@10.0.0.5\t", "CT1@10.0.0.5", "CT1", "10.0.0.5"},
        {"CT1@10.0.0.5/32", "CT1@10.0.0.5", "CT1", "10.0.0.5"},
        {"CT1@0.0.0.0/0", "CT1@0.0.0.0/0", "CT1", "0.0.0.0/0"},
        {"CT1@2001:db8::/32", "CT1@2001:db8::/32", "CT1", "2001:db8::/32"},
        {"CT1@2001:DB8::5", "CT1@2001:db8::5", "CT1", "2001:db8::5"},
        {"CT1@::1", "CT1@::1", "CT1", "::1"},
        {"CT1@::/0", "CT1@::/0", "CT1", "::/0"},
        {"CT1@::ffff:10.0.0.0/104", "CT1@10.0.0.0/8", "CT1", "10.0.0.0/8"},
        {"CT1@*", "CT1", "CT1", NULL},
        {"CT1 @ * ", "CT1", "CT1", NULL},
        {"*", "*", "", NULL},
        {"*@*", "*", "", NULL},
        {"*@192.168.0.0/16", "*@192.168.0.0/16", "", "192.168.0.0/16"},
        {" * @ fe80::/10", "*@fe80::/10", "", "fe80::/10"},
        /* '@' inside titles: split only at an address, a range or '*'. */
        {"A@B", "A@B@*", "A@B", NULL},
        {"A@B@*", "A@B@*", "A@B", NULL},
        {"A@B@10.0.0.1", "A@B@10.0.0.1", "A@B", "10.0.0.1"},
        {"A@B.C@*", "A@B.C@*", "A@B.C", NULL},
        {"A@10.0.0.1@*", "A@10.0.0.1@*", "A@10.0.0.1", NULL},
        {"@@*", "@@*", "@", NULL},
        {"ROOM@2", "ROOM@2@*", "ROOM@2", NULL},
        {"**", "**", "**", NULL}, /* only a lone '*' means any */
        {"SIXTEEN_CHARS_OK@10.0.0.1", "SIXTEEN_CHARS_OK@10.0.0.1", "SIXTEEN_CHARS_OK", "10.0.0.1"},
        /* Refused, with the reason. */
        {"", NULL, "empty rule", NULL},
        {"   ", NULL, "empty rule", NULL},
        {"CT1@", NULL, "no address after '@'", NULL},
        {"CT1@  ", NULL, "no address after '@'", NULL},
        {"@10.0.0.1", NULL, "no AE title before '@'", NULL},
        {" @*", NULL, "no AE title before '@'", NULL},
        {"CT1@10.1.2.3/8", NULL, "bits set past the prefix (the range is 10.0.0.0/8)", NULL},
        {"CT1@10.0.0.0/33", NULL, "prefix /33 is over /32", NULL},
        {"CT1@::/129", NULL, "prefix /129 is over /128", NULL},
        {"CT1@10.0.0.0/08", NULL, "bad prefix length", NULL},
        {"CT1@10.0.0.0/", NULL, "bad prefix length", NULL},
        {"CT1@10.0.0", NULL, "is not an IPv4 or IPv6 address", NULL},
        {"CT1@010.0.0.1", NULL, "is not an IPv4 or IPv6 address", NULL},
        {"CT1@10.0.0.256", NULL, "is not an IPv4 or IPv6 address", NULL},
        {"CT1@pacs.example", NULL, "'pacs.example' is not an IPv4 or IPv6 address", NULL},
        {"CT1@fe80::1%eth0", NULL, "is not an IPv4 or IPv6 address", NULL},
        {"CT1@[::1]", NULL, "is not an IPv4 or IPv6 address", NULL},
        {"CT1@::ffff:10.0.0.0/64", NULL, "an IPv4-mapped range needs a prefix of /96", NULL},
        {"SEVENTEEN_CHARS_X", NULL, "at most 16 characters", NULL},
        {"SEVENTEEN_CHARS_X@10.0.0.1", NULL, "at most 16 characters", NULL},
        {"BACK\\SLASH", NULL, "printable ASCII", NULL},
        {"caf\xc3\xa9", NULL, "printable ASCII", NULL},
        {"TAB\tIN", NULL, "printable ASCII", NULL},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
         "at most 80 characters", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_allow_rule r;
        memset(&r, 0x5A, sizeof r);
        mwl_allow_rule before = r;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_allow_rule_parse(cases[i].text, &r, &diag);
        if (!cases[i].canonical) {
            CHECK_EQ_INT(rc, MWL_E_INVALID);
            if (!strstr(diag.msg, cases[i].ae)) {
                check_failures++;
                fprintf(stderr, "rule '%s': message '%s', want '%s'\n", cases[i].text, diag.msg, cases[i].ae);
            }
            CHECK(memcmp(&r, &before, sizeof r) == 0); /* untouched */
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "rule '%s': %s\n", cases[i].text, diag.msg);
            continue;
        }
        CHECK_EQ_STR(r.ae, cases[i].ae);
        CHECK_EQ_INT(r.any_address, cases[i].range == NULL);
        if (cases[i].range) {
            char range[MWL_NET_CIDR_STRLEN];
            mwl_net_cidr_format(&r.from, range, sizeof range);
            CHECK_EQ_STR(range, cases[i].range);
        }
        char out[MWL_ALLOW_RULE_STRLEN + 1];
        CHECK_EQ_INT(mwl_allow_rule_format(&r, out, sizeof out), strlen(cases[i].canonical));
        CHECK_EQ_STR(out, cases[i].canonical);
        mwl_allow_rule again;
        CHECK_EQ_INT(mwl_allow_rule_parse(out, &again, NULL), MWL_OK);
        CHECK(mwl_allow_rule_equal(&r, &again));
    }
    CHECK_EQ_INT(mwl_allow_rule_parse(NULL, NULL, NULL), MWL_E_INVALID);

    /* Equality looks at what a rule means, not at unused bytes. */
    mwl_allow_rule a, b;
    CHECK_EQ_INT(mwl_allow_rule_parse("CT1", &a, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_allow_rule_parse("CT1", &b, NULL), MWL_OK);
    b.from.prefix = 7;
    CHECK(mwl_allow_rule_equal(&a, &b));
    CHECK_EQ_INT(mwl_allow_rule_parse("CT1@10.0.0.0/8", &a, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_allow_rule_parse("CT1@10.0.0.0/9", &b, NULL), MWL_OK);
    CHECK(!mwl_allow_rule_equal(&a, &b));
    CHECK_EQ_INT(mwl_allow_rule_parse("CT2@10.0.0.0/8", &b, NULL), MWL_OK);
    CHECK(!mwl_allow_rule_equal(&a, &b));
}

/* ---- decisions ------------------------------------------------------------- */

typedef struct access {
    mwl_config_aet_list titles;
    mwl_allow_list rules;
} access;

static void add_rules(access *a, const char *const *rules)
{
    for (; *rules; rules++) {
        int rc = mwl_allow_rule_parse(*rules, &a->rules.rule[a->rules.count], NULL);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc == MWL_OK)
            a->rules.count++;
    }
}

static mwl_allow_verdict decide(const access *a, const char *ae, const char *peer, char *why, size_t cap)
{
    mwl_net_addr addr;
    bool has = peer && mwl_net_addr_from_peer(peer, &addr) == MWL_OK;
    return mwl_allow_check(&a->titles, &a->rules, ae, has ? &addr : NULL, why, cap);
}

static void test_decisions(void)
{
    static access a; /* ~10 KiB */
    char why[128];
    memset(&a, 0, sizeof a);

    /* Nothing configured: anyone, from anywhere. */
    CHECK_EQ_INT(decide(&a, "ANY", "203.0.113.9:4000", why, sizeof why), MWL_ALLOW_OPEN);
    CHECK_EQ_INT(mwl_allow_check(NULL, NULL, "ANY", NULL, why, sizeof why), MWL_ALLOW_OPEN);

    /* calling-aet-allow alone: those titles from any address. */
    snprintf(a.titles.aet[0], sizeof a.titles.aet[0], "LEGACY");
    snprintf(a.titles.aet[1], sizeof a.titles.aet[1], "MR 2");
    a.titles.count = 2;
    CHECK_EQ_INT(decide(&a, "LEGACY", "203.0.113.9:4000", why, sizeof why), MWL_ALLOW_ACCEPTED);
    CHECK_EQ_INT(decide(&a, "  MR 2 ", "unix", why, sizeof why), MWL_ALLOW_ACCEPTED);
    CHECK_EQ_INT(decide(&a, "MR", "unix", why, sizeof why), MWL_ALLOW_UNKNOWN_AE);
    CHECK_EQ_STR(why, "no rule for this AE title");
    CHECK_EQ_INT(decide(&a, "legacy", "10.0.0.1:1", why, sizeof why), MWL_ALLOW_UNKNOWN_AE); /* exact */

    /* With rules: the union. */
    static const char *const rules[] = {"CT1@10.0.0.0/8",    "CT1@192.168.1.7", "US1",
                                        "NM1@2001:db8::/32", "*@172.16.0.0/12", NULL};
    add_rules(&a, rules);
    static const struct {
        const char *ae, *peer;
        mwl_allow_verdict verdict;
        const char *why;
    } cases[] = {
        {"LEGACY", "127.0.0.1:5000", MWL_ALLOW_ACCEPTED, ""},
        {"CT1", "10.1.2.3:5000", MWL_ALLOW_ACCEPTED, ""},
        {"CT1", "192.168.1.7:5000", MWL_ALLOW_ACCEPTED, ""},
        {"CT1", "::ffff:10.9.9.9", MWL_ALLOW_ACCEPTED, ""}, /* dual-stack IPv4 peer */
        {"CT1", "[::ffff:10.9.9.9]:104", MWL_ALLOW_ACCEPTED, ""},
        {"CT1", "172.20.0.1:5000", MWL_ALLOW_ACCEPTED, ""}, /* via the "*" rule */
        {"CT1", "127.0.0.1:5000", MWL_ALLOW_WRONG_ADDRESS,
         "allowed only from 10.0.0.0/8, 192.168.1.7, 172.16.0.0/12"},
        {"CT1", "192.168.1.8:5000", MWL_ALLOW_WRONG_ADDRESS,
         "allowed only from 10.0.0.0/8, 192.168.1.7, 172.16.0.0/12"},
        {"CT1", "[::1]:5000", MWL_ALLOW_WRONG_ADDRESS,
         "allowed only from 10.0.0.0/8, 192.168.1.7, 172.16.0.0/12"},
        {"CT1", "unix", MWL_ALLOW_WRONG_ADDRESS, "allowed only from 10.0.0.0/8, 192.168.1.7, 172.16.0.0/12"},
        {"US1", "203.0.113.9:1", MWL_ALLOW_ACCEPTED, ""},
        {"US1", "unix", MWL_ALLOW_ACCEPTED, ""},
        {"NM1", "[2001:db8:1::5]:104", MWL_ALLOW_ACCEPTED, ""},
        {"NM1", "[fe80::1%2]:104", MWL_ALLOW_WRONG_ADDRESS, "allowed only from 2001:db8::/32, 172.16.0.0/12"},
        {"NM1", "10.0.0.1:1", MWL_ALLOW_WRONG_ADDRESS, "allowed only from 2001:db8::/32, 172.16.0.0/12"},
        {"OTHER", "172.31.255.255:1", MWL_ALLOW_ACCEPTED, ""},
        {"OTHER", "127.0.0.1:5000", MWL_ALLOW_UNKNOWN_AE,
         "no rule for this AE title; any AE only from 172.16.0.0/12"},
        {"", "127.0.0.1:5000", MWL_ALLOW_UNKNOWN_AE,
         "no rule for this AE title; any AE only from 172.16.0.0/12"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_allow_verdict v = decide(&a, cases[i].ae, cases[i].peer, why, sizeof why);
        if (v != cases[i].verdict || strcmp(why, cases[i].why) != 0) {
            check_failures++;
            fprintf(stderr, "%s from %s: verdict %d '%s', want %d '%s'\n", cases[i].ae, cases[i].peer, (int)v,
                    why, (int)cases[i].verdict, cases[i].why);
        }
    }

    /* Without calling-aet-allow the rules alone decide; a "*" rule from
     * anywhere lets everyone in. */
    a.titles.count = 0;
    CHECK_EQ_INT(decide(&a, "LEGACY", "127.0.0.1:5000", why, sizeof why), MWL_ALLOW_UNKNOWN_AE);
    static const char *const everyone[] = {"*", NULL};
    add_rules(&a, everyone);
    CHECK_EQ_INT(decide(&a, "LEGACY", "127.0.0.1:5000", why, sizeof why), MWL_ALLOW_ACCEPTED);
    CHECK_EQ_INT(decide(&a, "CT1", "127.0.0.1:5000", why, sizeof why), MWL_ALLOW_ACCEPTED);

    /* Many ranges for one AE: three are listed, then a count. */
    memset(&a, 0, sizeof a);
    static const char *const ranges[] = {
        "CT1@10.0.0.1", "CT1@10.0.0.2", "CT1@10.0.0.3", "CT1@10.0.0.4", "CT1@10.0.0.5", "CT2@10.0.0.6", NULL};
    add_rules(&a, ranges);
    CHECK_EQ_INT(decide(&a, "CT1", "127.0.0.1:1", why, sizeof why), MWL_ALLOW_WRONG_ADDRESS);
    CHECK_EQ_STR(why, "allowed only from 10.0.0.1, 10.0.0.2, 10.0.0.3 and 2 more");
    /* The message is cut to the buffer, never overrun. */
    char small[12];
    CHECK_EQ_INT(decide(&a, "CT1", "127.0.0.1:1", small, sizeof small), MWL_ALLOW_WRONG_ADDRESS);
    CHECK_EQ_STR(small, "allowed onl");
    CHECK_EQ_INT(decide(&a, "CT1", "127.0.0.1:1", NULL, 0), MWL_ALLOW_WRONG_ADDRESS);
    /* A count beyond the array is not read past. */
    a.rules.count = MWL_ALLOW_RULES_MAX + 100;
    CHECK_EQ_INT(decide(&a, "NOBODY", "127.0.0.1:1", why, sizeof why), MWL_ALLOW_UNKNOWN_AE);
}

int main(void)
{
    RUN_TEST(test_rule_forms);
    RUN_TEST(test_decisions);
    return check_report("server_allow_test");
}
