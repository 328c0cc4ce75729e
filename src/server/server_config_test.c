/* The config table and parser: every key's default, value and bounds, the
 * value syntaxes, and bad lines reported with their line numbers. */
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "server/server.h"

static int parse(const char *text, mwl_server_config *cfg, mwl_diag *diag)
{
    return mwl_server_config_parse(text, strlen(text), cfg, diag);
}

/* Parses one bad text and checks the line number the message names. */
static void expect_error_n(const char *text, size_t len, size_t line, const char *fragment)
{
    mwl_server_config cfg, before;
    mwl_server_config_init(&cfg);
    before = cfg;
    mwl_diag diag;
    int rc = mwl_server_config_parse(text, len, &cfg, &diag);
    CHECK_EQ_INT(rc, MWL_E_INVALID);
    char want[32];
    snprintf(want, sizeof want, "line %zu:", line);
    if (strncmp(diag.msg, want, strlen(want)) != 0 || !strstr(diag.msg, fragment)) {
        check_failures++;
        fprintf(stderr, "config error for %.40s...: got '%s', want '%s' and '%s'\n", text, diag.msg, want,
                fragment);
    }
    CHECK(memcmp(&cfg, &before, sizeof cfg) == 0); /* nothing applied */
}

static void expect_error(const char *text, size_t line, const char *fragment)
{
    expect_error_n(text, strlen(text), line, fragment);
}

static void test_defaults(void)
{
    mwl_server_config cfg;
    mwl_server_config_init(&cfg);
    CHECK_EQ_INT(cfg.port, 11112);
    CHECK_EQ_STR(cfg.bind, "");
    CHECK_EQ_STR(cfg.ae_title, "MWL");
    CHECK(!cfg.strict_called_aet);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, 0);
    CHECK_EQ_INT(cfg.allow.count, 0);
    CHECK_EQ_INT(cfg.max_associations, 64);
    CHECK_EQ_INT(cfg.max_pending, 32);
    CHECK_EQ_INT(cfg.max_peer_connections, 32);
    CHECK_EQ_INT(cfg.associate_timeout_ms, 10000);
    CHECK_EQ_INT(cfg.find_step_ms, 5);
    CHECK_EQ_INT(cfg.max_pdu, 65536);
    CHECK_EQ_INT(cfg.acse_timeout_ms, 30000);
    CHECK_EQ_INT(cfg.idle_timeout_ms, 120000);
    CHECK_EQ_INT(cfg.write_timeout_ms, 30000);
    CHECK_EQ_INT(cfg.shutdown_grace_ms, 5000);
    CHECK_EQ_INT(cfg.workers, 4);
    CHECK_EQ_INT(cfg.background_workers, 0);
    CHECK_EQ_INT(cfg.find_batch, 64);
    CHECK_EQ_INT(cfg.log_level, MWL_LOG_INFO);
    CHECK_EQ_STR(cfg.log_format, "text");
    CHECK_EQ_STR(cfg.port_file, "");
    /* The worklist's keys are the worklist service's (src/service/). */
    CHECK(mwl_server_config_find_key("db") == NULL);
    CHECK(mwl_server_config_find_key("max-matches") == NULL);
    CHECK_EQ_INT(mwl_server_config_check(&cfg, NULL), MWL_OK);

    /* Every default parses with its own key, and names are unique. */
    size_t n = 0;
    const mwl_config_key *keys = mwl_server_config_keys(&n);
    CHECK_EQ_INT(n, 34);
    for (size_t i = 0; i < n; i++) {
        mwl_server_config c;
        mwl_server_config_init(&c);
        mwl_diag diag;
        if (keys[i].type == MWL_CONFIG_LIST) /* repeatable: no items by default, "" is not an item */
            CHECK_EQ_STR(keys[i].default_value, "");
        else
            CHECK_EQ_INT(mwl_server_config_set(&c, keys[i].name, keys[i].default_value, &diag), MWL_OK);
        CHECK(mwl_server_config_find_key(keys[i].name) == &keys[i]);
        CHECK(keys[i].help && keys[i].help[0]);
        CHECK(strcmp(mwl_config_type_hint(keys[i].type), "?") != 0);
        CHECK(keys[i].offset < sizeof(mwl_server_config));
    }
    CHECK(mwl_server_config_find_key("config") == NULL); /* command line only */
    CHECK(mwl_server_config_find_key(NULL) == NULL);
}

/* A whole file setting every key. */
static void test_every_key(void)
{
    const char *text = "# mwl serve configuration\n"
                       "port = 104\n"
                       "bind = 127.0.0.1\n"
                       "aet = WORKLIST\n"
                       "strict-called-aet = yes\n"
                       "calling-aet-allow = CT1, MR 2 ,US\n"
                       "allow = XA@10.0.0.0/8\n"
                       "\n"
                       "max-associations = 3\n"
                       "max-pending = 5\n"
                       "max-peer-connections = 7\n"
                       "max-pdu = 16384\n"
                       "associate-timeout = 2.5\n"
                       "acse-timeout = 0.5\n"
                       "idle-timeout = 1.25\n"
                       "write-timeout = 7\n"
                       "shutdown-grace = 0\n"
                       "workers = 8\n"
                       "find-batch = 1\n"
                       "find-step-time = 0.02\n"
                       "log-level = debug\n"
                       "log-format = json\n"
                       "port-file = \"/tmp/with space.port\"\n";
    mwl_server_config cfg;
    mwl_server_config_init(&cfg);
    mwl_diag diag;
    int rc = parse(text, &cfg, &diag);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK)
        fprintf(stderr, "  %s\n", diag.msg);
    CHECK_EQ_INT(cfg.port, 104);
    CHECK_EQ_STR(cfg.bind, "127.0.0.1");
    CHECK_EQ_STR(cfg.ae_title, "WORKLIST");
    CHECK(cfg.strict_called_aet);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, 3);
    CHECK_EQ_STR(cfg.calling_aet_allow.aet[0], "CT1");
    CHECK_EQ_STR(cfg.calling_aet_allow.aet[1], "MR 2"); /* inner space is significant */
    CHECK_EQ_STR(cfg.calling_aet_allow.aet[2], "US");
    CHECK_EQ_INT(cfg.allow.count, 1);
    CHECK_EQ_STR(cfg.allow.rule[0].ae, "XA");
    CHECK_EQ_INT(cfg.max_associations, 3);
    CHECK_EQ_INT(cfg.max_pending, 5);
    CHECK_EQ_INT(cfg.max_peer_connections, 7);
    CHECK_EQ_INT(cfg.associate_timeout_ms, 2500);
    CHECK_EQ_INT(cfg.find_step_ms, 20);
    CHECK_EQ_INT(cfg.max_pdu, 16384);
    CHECK_EQ_INT(cfg.acse_timeout_ms, 500);
    CHECK_EQ_INT(cfg.idle_timeout_ms, 1250);
    CHECK_EQ_INT(cfg.write_timeout_ms, 7000);
    CHECK_EQ_INT(cfg.shutdown_grace_ms, 0);
    CHECK_EQ_INT(cfg.workers, 8);
    CHECK_EQ_INT(cfg.find_batch, 1);
    CHECK_EQ_INT(cfg.log_level, MWL_LOG_DEBUG);
    CHECK_EQ_STR(cfg.log_format, "json");
    CHECK_EQ_STR(cfg.port_file, "/tmp/with space.port");
}

/* Bounds: each numeric key at min, max, and one past each side. */
static void test_bounds(void)
{
    size_t n = 0;
    const mwl_config_key *keys = mwl_server_config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const mwl_config_key *k = &keys[i];
        if (k->type != MWL_CONFIG_UINT && k->type != MWL_CONFIG_SECONDS)
            continue;
        char text[64];
        mwl_server_config cfg;
        mwl_diag diag;
        uint64_t lo = k->min, hi = k->max;
        bool sec = k->type == MWL_CONFIG_SECONDS;
        /* in range */
        uint64_t ok_values[2] = {lo, hi};
        for (int j = 0; j < 2; j++) {
            mwl_server_config_init(&cfg);
            if (sec)
                snprintf(text, sizeof text, "%llu.%03llu", (unsigned long long)(ok_values[j] / 1000),
                         (unsigned long long)(ok_values[j] % 1000));
            else
                snprintf(text, sizeof text, "%llu", (unsigned long long)ok_values[j]);
            CHECK_EQ_INT(mwl_server_config_set(&cfg, k->name, text, &diag), MWL_OK);
            uint32_t got;
            memcpy(&got, (char *)&cfg + k->offset, sizeof got);
            CHECK_EQ_INT(got, ok_values[j]);
        }
        /* out of range */
        if (lo > 0) {
            mwl_server_config_init(&cfg);
            uint64_t v = lo - 1;
            if (sec)
                snprintf(text, sizeof text, "%llu.%03llu", (unsigned long long)(v / 1000),
                         (unsigned long long)(v % 1000));
            else
                snprintf(text, sizeof text, "%llu", (unsigned long long)v);
            CHECK_EQ_INT(mwl_server_config_set(&cfg, k->name, text, &diag), MWL_E_INVALID);
            CHECK(strstr(diag.msg, "out of range") != NULL);
            CHECK(strstr(diag.msg, k->name) == diag.msg);
        }
        mwl_server_config_init(&cfg);
        uint64_t v = hi + 1;
        if (sec)
            snprintf(text, sizeof text, "%llu.%03llu", (unsigned long long)(v / 1000),
                     (unsigned long long)(v % 1000));
        else
            snprintf(text, sizeof text, "%llu", (unsigned long long)v);
        CHECK_EQ_INT(mwl_server_config_set(&cfg, k->name, text, &diag), MWL_E_INVALID);
        CHECK(strstr(diag.msg, "out of range") != NULL);
    }
}

static void test_value_syntax(void)
{
    mwl_server_config cfg;
    mwl_diag diag;
    static const struct {
        const char *key, *value;
        int rc;
    } cases[] = {
        {"port", "11112", MWL_OK},
        {"port", "+1", MWL_E_INVALID},
        {"port", "-1", MWL_E_INVALID},
        {"port", "0x10", MWL_E_INVALID},
        {"port", "1 2", MWL_E_INVALID},
        {"port", "", MWL_E_INVALID},
        {"port", "99999999999999999999", MWL_E_INVALID},
        {"acse-timeout", "1", MWL_OK},
        {"acse-timeout", "0.1", MWL_OK},
        {"acse-timeout", "1.", MWL_E_INVALID},
        {"acse-timeout", ".5", MWL_E_INVALID},
        {"acse-timeout", "0.0001", MWL_E_INVALID},
        {"acse-timeout", "1e3", MWL_E_INVALID},
        {"acse-timeout", "1s", MWL_E_INVALID},
        {"acse-timeout", "0.05", MWL_E_INVALID}, /* below 0.1 */
        {"strict-called-aet", "true", MWL_OK},
        {"strict-called-aet", "off", MWL_OK},
        {"strict-called-aet", "1", MWL_OK},
        {"strict-called-aet", "TRUE", MWL_E_INVALID},
        {"strict-called-aet", "2", MWL_E_INVALID},
        {"aet", "  PADDED  ", MWL_OK},
        {"aet", "SIXTEEN_CHARS_OK", MWL_OK},
        {"aet", "SEVENTEEN_CHARS_X", MWL_E_INVALID},
        {"aet", "", MWL_E_INVALID},
        {"aet", "    ", MWL_E_INVALID},
        {"aet", "BACK\\SLASH", MWL_E_INVALID},
        {"aet", "TAB\tX", MWL_E_INVALID},
        {"aet", "caf\xc3\xa9", MWL_E_INVALID},
        {"calling-aet-allow", "", MWL_OK},
        {"calling-aet-allow", "  ", MWL_OK},
        {"calling-aet-allow", "A", MWL_OK},
        {"calling-aet-allow", "A,,B", MWL_E_INVALID},
        {"calling-aet-allow", "A,", MWL_E_INVALID},
        {"calling-aet-allow", "A,SEVENTEEN_CHARS_X", MWL_E_INVALID},
        {"log-level", "trace", MWL_OK},
        {"log-level", "verbose", MWL_E_INVALID},
        {"log-format", "text", MWL_OK},
        {"log-format", "JSON", MWL_E_INVALID},
        {"log-format", "", MWL_E_INVALID},
        {"port-file", "x\x01y", MWL_E_INVALID},
        {"port-file", "", MWL_OK},
        {"bind", "*", MWL_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_server_config_init(&cfg);
        mwl_server_config before = cfg;
        int rc = mwl_server_config_set(&cfg, cases[i].key, cases[i].value, &diag);
        if (rc != cases[i].rc) {
            check_failures++;
            fprintf(stderr, "set %s = '%s': got %d want %d (%s)\n", cases[i].key, cases[i].value, rc,
                    cases[i].rc, diag.msg);
        }
        if (rc != MWL_OK)
            CHECK(memcmp(&cfg, &before, sizeof cfg) == 0);
    }
    mwl_server_config_init(&cfg);
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "aet", "  PADDED  ", &diag), MWL_OK);
    CHECK_EQ_STR(cfg.ae_title, "PADDED");
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "nope", "1", &diag), MWL_E_NOTFOUND);
    CHECK(strstr(diag.msg, "unknown key") != NULL);
    CHECK_EQ_INT(mwl_server_config_set(NULL, "port", "1", NULL), MWL_E_INVALID);

    /* A list of the maximum size, and one more. */
    char list[MWL_CONFIG_AET_LIST_MAX * 8 + 8] = "";
    for (int i = 0; i < MWL_CONFIG_AET_LIST_MAX; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sAE%d", i ? "," : "", i);
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "calling-aet-allow", list, &diag), MWL_OK);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, MWL_CONFIG_AET_LIST_MAX);
    CHECK_EQ_STR(cfg.calling_aet_allow.aet[MWL_CONFIG_AET_LIST_MAX - 1], "AE63");
    strcat(list, ",ONEMORE");
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "calling-aet-allow", list, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, MWL_CONFIG_AET_LIST_MAX); /* unchanged */
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "calling-aet-allow", "", &diag), MWL_OK);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, 0);

    /* A config built by hand gets the parser's checks. */
    mwl_server_config_init(&cfg);
    cfg.max_pending = 0;
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "max-pending") != NULL);
    mwl_server_config_init(&cfg);
    cfg.workers = 65;
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "workers") != NULL);
}

static void test_bad_lines(void)
{
    expect_error("port = 1\nnonsense\n", 2, "expected 'key = value'");
    expect_error("# comment\n\n   \nfoo = 1\n", 4, "unknown key 'foo'");
    expect_error("port = 1\r\naet = A\r\nport = 2\r\n", 3, "already set on line 1");
    expect_error("a\nb\nc\nmax-associations = 0\n", 1, "expected"); /* first bad line wins */
    expect_error("\n\n\n\nmax-associations = 0\n", 5, "max-associations: 0 is out of range 1..1000");
    expect_error("aet = \"UNBALANCED\n", 1, "unbalanced double quote");
    expect_error("   = 5\n", 1, "missing key");
    expect_error("idle-timeout = soon\n", 1, "idle-timeout: 'soon' is not a number of seconds");
    expect_error("log-level = loud", 1, "log-level");
    expect_error("config = other.conf\n", 1, "unknown key 'config'");
    expect_error_n("port = 1\nbind = a\0b\n", 19, 2, "NUL");
    /* A line over 4096 bytes. */
    static char longline[5000];
    memset(longline, 'x', sizeof longline - 1);
    memcpy(longline, "bind = ", 7);
    expect_error(longline, 1, "longer than 4096");

    /* Accepted oddities: no final newline, CRLF, blanks around '=', '='
     * inside a value, comment lines with leading blanks. */
    mwl_server_config cfg;
    mwl_server_config_init(&cfg);
    mwl_diag diag;
    const char *text = "  # indented comment\r\n\tport\t=\t42\t\r\nport-file = a=b.port";
    CHECK_EQ_INT(parse(text, &cfg, &diag), MWL_OK);
    CHECK_EQ_INT(cfg.port, 42);
    CHECK_EQ_STR(cfg.port_file, "a=b.port");
    /* Empty input changes nothing. */
    mwl_server_config before = cfg;
    CHECK_EQ_INT(mwl_server_config_parse("", 0, &cfg, &diag), MWL_OK);
    CHECK_EQ_INT(mwl_server_config_parse(NULL, 0, &cfg, &diag), MWL_OK);
    CHECK(memcmp(&cfg, &before, sizeof cfg) == 0);
    CHECK_EQ_INT(mwl_server_config_parse(NULL, 3, &cfg, &diag), MWL_E_INVALID);
    /* The offset names the start of the bad line. */
    CHECK_EQ_INT(parse("port = 1\nbad\n", &cfg, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(diag.offset, 9);
}

/* The repeatable `allow` key: every line and every set adds a rule, in
 * order; a bad rule names its line; at most MWL_ALLOW_RULES_MAX. */
static void test_allow_key(void)
{
    mwl_server_config cfg;
    mwl_server_config_init(&cfg);
    mwl_diag diag;
    const char *text = "allow = CT1@10.0.0.0/8\n"
                       "calling-aet-allow = LEGACY\n"
                       "# the same AE from a second range\n"
                       "allow = CT1@192.168.1.7\n"
                       "  allow =   MR 2   \n"
                       "allow = \"*@2001:db8::/32\"\n"
                       "allow = A@B@*\n";
    int rc = parse(text, &cfg, &diag);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK)
        fprintf(stderr, "  %s\n", diag.msg);
    CHECK_EQ_INT(cfg.allow.count, 5);
    CHECK_EQ_INT(cfg.calling_aet_allow.count, 1);
    static const char *const want[] = {"CT1@10.0.0.0/8", "CT1@192.168.1.7", "MR 2", "*@2001:db8::/32",
                                       "A@B@*"};
    const mwl_config_key *k = mwl_server_config_find_key("allow");
    CHECK(k != NULL && k->type == MWL_CONFIG_LIST);
    CHECK_EQ_STR(mwl_config_key_hint(k), "AE[@ADDR[/N]]");
    for (size_t i = 0; i < 5 && i < cfg.allow.count; i++) {
        char out[MWL_ALLOW_RULE_STRLEN + 1];
        mwl_allow_rule_format(&cfg.allow.rule[i], out, sizeof out);
        CHECK_EQ_STR(out, want[i]);
        if (k) {
            CHECK_EQ_INT(mwl_config_format_at(k, &cfg, i, out, sizeof out), strlen(want[i]));
            CHECK_EQ_STR(out, want[i]);
        }
    }
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_OK);

    /* Set (the flags) appends after what the file gave. */
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "allow", "US1@::1", &diag), MWL_OK);
    CHECK_EQ_INT(cfg.allow.count, 6);
    CHECK_EQ_STR(cfg.allow.rule[5].ae, "US1");
    mwl_server_config before = cfg;
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "allow", "US1@10.1.2.3/8", &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "allow: bits set past the prefix (the range is 10.0.0.0/8)") != NULL);
    CHECK(memcmp(&cfg, &before, sizeof cfg) == 0);
    if (k)
        mwl_config_reset(k, &cfg);
    CHECK_EQ_INT(cfg.allow.count, 0);

    /* Bad rules: the line, the key, why; nothing applied. */
    expect_error("allow = CT1\nallow = CT2@10.0.0.0/33\n", 2, "allow: prefix /33 is over /32");
    expect_error("allow = CT1\n\nallow = CT2@10.1.2.3/8\n", 3, "the range is 10.0.0.0/8");
    expect_error("allow = CT1@\n", 1, "allow: no address after '@'");
    expect_error("allow = @10.0.0.1\n", 1, "allow: no AE title before '@'");
    expect_error("allow = SEVENTEEN_CHARS_X@10.0.0.1\n", 1, "at most 16 characters");
    expect_error("allow = CT1@host.example\n", 1, "'host.example' is not an IPv4 or IPv6 address");
    expect_error("allow = X@fe80::1%eth0\n", 1, "is not an IPv4 or IPv6 address");
    expect_error("allow = \n", 1, "allow: empty value");
    expect_error("allow = CT1\nallow = \"  \"\n", 2, "allow: empty value");
    expect_error("allow = BACK\\SLASH\n", 1, "allow: an AE title is printable ASCII");

    /* At most MWL_ALLOW_RULES_MAX rules: the next line is refused. */
    static char many[(MWL_ALLOW_RULES_MAX + 1) * 32];
    size_t used = 0;
    for (int i = 0; i <= MWL_ALLOW_RULES_MAX; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "allow = AE%d@10.0.%d.%d\n", i, i / 256,
                                 i % 256);
    expect_error(many, MWL_ALLOW_RULES_MAX + 1, "allow: at most 256");
    char *cut = strstr(many, "allow = AE256@");
    CHECK(cut != NULL);
    if (cut) {
        *cut = '\0';
        mwl_server_config_init(&cfg);
        CHECK_EQ_INT(parse(many, &cfg, &diag), MWL_OK);
        CHECK_EQ_INT(cfg.allow.count, MWL_ALLOW_RULES_MAX);
        CHECK_EQ_STR(cfg.allow.rule[MWL_ALLOW_RULES_MAX - 1].ae, "AE255");
        CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_OK);
    }

    /* A config built by hand gets the same checks. */
    mwl_server_config_init(&cfg);
    cfg.allow.count = MWL_ALLOW_RULES_MAX + 1;
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "allow") != NULL);
    mwl_server_config_init(&cfg);
    cfg.allow.count = 1;
    cfg.allow.rule[0].ae[0] = 'X';
    cfg.allow.rule[0].from.addr.family = 4;
    cfg.allow.rule[0].from.prefix = 40; /* not a range */
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
    cfg.allow.rule[0].from.prefix = 8;
    cfg.allow.rule[0].from.addr.bytes[3] = 1; /* bits past the prefix */
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
    cfg.allow.rule[0].from.addr.bytes[3] = 0;
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_OK);
    memset(cfg.allow.rule[0].ae, 'A', sizeof cfg.allow.rule[0].ae); /* no NUL */
    CHECK_EQ_INT(mwl_server_config_check(&cfg, &diag), MWL_E_INVALID);
}

int main(void)
{
    RUN_TEST(test_defaults);
    RUN_TEST(test_every_key);
    RUN_TEST(test_bounds);
    RUN_TEST(test_value_syntax);
    RUN_TEST(test_bad_lines);
    RUN_TEST(test_allow_key);
    return check_report("server_config_test");
}
