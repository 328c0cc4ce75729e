/* The HTTP listener's pure parts: the tokens file, the bearer check and the
 * loopback rule of the config (http.h). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http/http.h"

static void test_tokens(void)
{
    static const char text[] =
        "# comment\n\n  r3ad-t0ken-0123456789  read \r\nwr1te-t0ken-0123456789\twrite\n";
    mwl_http_tokens t;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_http_tokens_parse(text, sizeof text - 1, &t, &diag), MWL_OK);
    CHECK_EQ_INT(t.count, 2);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearer r3ad-t0ken-0123456789"), MWL_HTTP_ROLE_READ);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "bearer   wr1te-t0ken-0123456789 "), MWL_HTTP_ROLE_WRITE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, NULL), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, ""), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearer"), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearer "), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Basic r3ad-t0ken-0123456789"), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearer r3ad-t0ken-012345678"), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearer r3ad-t0ken-01234567890"), MWL_HTTP_ROLE_NONE);
    CHECK_EQ_INT(mwl_http_tokens_check(&t, "Bearerr3ad-t0ken-0123456789"), MWL_HTTP_ROLE_NONE);

    static const struct {
        const char *text;
        int line;
    } bad[] = {
        {"short read\n", 1},
        {"r3ad-t0ken-0123456789\n", 1},
        {"r3ad-t0ken-0123456789 admin\n", 1},
        {"r3ad-t0ken-0123456789 read extra\n", 1},
        {"#\nr3ad-t0ken-0123456789 read\nr3ad-t0ken-0123456789 write\n", 3},
        {"r3ad-t0ken-01234\x7f"
         "6789 read\n",
         1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mwl_diag_clear(&diag);
        CHECK_EQ_INT(mwl_http_tokens_parse(bad[i].text, strlen(bad[i].text), &t, &diag), MWL_E_INVALID);
        char where[16];
        snprintf(where, sizeof where, "line %d:", bad[i].line);
        CHECK(strncmp(diag.msg, where, strlen(where)) == 0);
        CHECK(strstr(diag.msg, "0123") == NULL); /* never the token */
    }
}

static void test_config(void)
{
    mwl_http_config cfg;
    mwl_http_config_init(&cfg);
    CHECK(!mwl_http_enabled(&cfg));
    CHECK_EQ_STR(cfg.bind, "127.0.0.1");
    CHECK_EQ_INT(mwl_http_config_check(&cfg, NULL), MWL_OK);
    snprintf(cfg.port, sizeof cfg.port, "0");
    CHECK(mwl_http_enabled(&cfg));
    static const struct {
        const char *bind;
        int rc;
    } binds[] = {{"127.0.0.1", MWL_OK},       {"127.1.2.3", MWL_OK},          {"::1", MWL_OK},
                 {"localhost", MWL_OK},       {"*", MWL_E_INVALID},           {"0.0.0.0", MWL_E_INVALID},
                 {"10.0.0.1", MWL_E_INVALID}, {"example.org", MWL_E_INVALID}, {"::", MWL_E_INVALID}};
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
        snprintf(cfg.bind, sizeof cfg.bind, "%s", binds[i].bind);
        cfg.tokens_file[0] = 0;
        CHECK_EQ_INT(mwl_http_config_check(&cfg, NULL), binds[i].rc);
        snprintf(cfg.tokens_file, sizeof cfg.tokens_file, "tokens");
        CHECK_EQ_INT(mwl_http_config_check(&cfg, NULL), MWL_OK); /* with tokens anything goes */
    }
    mwl_http_config_init(&cfg);
    snprintf(cfg.port_file, sizeof cfg.port_file, "p");
    CHECK_EQ_INT(mwl_http_config_check(&cfg, NULL), MWL_E_INVALID); /* a port file needs a port */
    mwl_diag diag;
    cfg.port_file[0] = 0;
    CHECK_EQ_INT(mwl_config_set(mwl_http_config_table(), &cfg, "http-port", "70000", &diag), MWL_OK);
    CHECK_EQ_INT(mwl_http_config_check(&cfg, &diag), MWL_E_INVALID); /* not a port */
    CHECK(strstr(diag.msg, "http-port") != NULL);
    /* HTTPS: the certificate and the key both or neither, and the message
     * names the one that is there and the one missing. */
    mwl_http_config_init(&cfg);
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "server.crt");
    CHECK_EQ_INT(mwl_http_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "http-tls-cert") != NULL && strstr(diag.msg, "http-tls-key") != NULL);
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "server.key");
    CHECK_EQ_INT(mwl_http_config_check(&cfg, NULL), MWL_OK);
    cfg.tls_cert[0] = 0;
    CHECK_EQ_INT(mwl_http_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strncmp(diag.msg, "http-tls-key", 12) == 0);
    /* TLS authenticates no client: beyond loopback tokens are still needed. */
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "server.crt");
    snprintf(cfg.port, sizeof cfg.port, "0");
    snprintf(cfg.bind, sizeof cfg.bind, "*");
    CHECK_EQ_INT(mwl_http_config_check(&cfg, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "http-tokens-file") != NULL);
}

int main(void)
{
    RUN_TEST(test_tokens);
    RUN_TEST(test_config);
    return check_report("http_tokens_test");
}
