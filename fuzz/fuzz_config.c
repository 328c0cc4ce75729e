/* Fuzz target for the server config parser (src/server/config.c).
 *
 * Parses arbitrary text. On an error the config must be unchanged and the
 * message must name a line. On success every field must be within its
 * key's bounds, and the config written back as text (one quoted line per
 * key, from the key table) must parse to the same values: the parser and
 * the table agree on what every key holds. Any disagreement aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *key)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, key ? ": " : "", key ? key : "");
    abort();
}

static uint32_t u32_at(const mwl_server_config *cfg, const mwl_config_key *k)
{
    uint32_t v;
    memcpy(&v, (const char *)cfg + k->offset, sizeof v);
    return v;
}

static const char *str_at(const mwl_server_config *cfg, const mwl_config_key *k)
{
    return (const char *)cfg + k->offset;
}

/* Field-by-field equality through the table (struct padding is not
 * compared). */
static bool same_key(const mwl_server_config *a, const mwl_server_config *b, const mwl_config_key *k)
{
    switch (k->type) {
    case MWL_CONFIG_UINT:
    case MWL_CONFIG_SECONDS: return u32_at(a, k) == u32_at(b, k);
    case MWL_CONFIG_BOOL: return a->strict_called_aet == b->strict_called_aet;
    case MWL_CONFIG_STRING:
    case MWL_CONFIG_AET: return strcmp(str_at(a, k), str_at(b, k)) == 0;
    case MWL_CONFIG_AET_LIST:
        if (a->calling_aet_allow_count != b->calling_aet_allow_count)
            return false;
        for (size_t i = 0; i < a->calling_aet_allow_count; i++)
            if (strcmp(a->calling_aet_allow[i], b->calling_aet_allow[i]) != 0)
                return false;
        return true;
    case MWL_CONFIG_LOG_LEVEL: return a->log_level == b->log_level;
    }
    return false;
}

static void check_field(const mwl_server_config *cfg, const mwl_config_key *k)
{
    switch (k->type) {
    case MWL_CONFIG_UINT:
    case MWL_CONFIG_SECONDS:
        if (u32_at(cfg, k) < k->min || u32_at(cfg, k) > k->max)
            fail("value out of bounds", k->name);
        break;
    case MWL_CONFIG_STRING: {
        size_t n = strnlen(str_at(cfg, k), k->max + 1);
        if (n < k->min || n > k->max)
            fail("string length out of bounds", k->name);
        break;
    }
    case MWL_CONFIG_AET: {
        const char *t = str_at(cfg, k);
        size_t n = strnlen(t, MWL_AE_TITLE_MAX + 1);
        if (n == 0 || n > MWL_AE_TITLE_MAX || t[0] == ' ' || t[n - 1] == ' ')
            fail("bad AE title", k->name);
        break;
    }
    case MWL_CONFIG_AET_LIST:
        if (cfg->calling_aet_allow_count > MWL_SERVER_ALLOW_MAX)
            fail("allow-list too long", k->name);
        for (size_t i = 0; i < cfg->calling_aet_allow_count; i++) {
            size_t n = strnlen(cfg->calling_aet_allow[i], MWL_AE_TITLE_MAX + 1);
            if (n == 0 || n > MWL_AE_TITLE_MAX || strchr(cfg->calling_aet_allow[i], ','))
                fail("bad allow-list entry", k->name);
        }
        break;
    case MWL_CONFIG_BOOL:
    case MWL_CONFIG_LOG_LEVEL: break;
    }
}

/* The value of `k` as config-file text; every value quoted, so blanks at
 * either end survive. */
static void write_key(char *out, size_t cap, const mwl_server_config *cfg, const mwl_config_key *k)
{
    size_t n = 0;
    char value[MWL_SERVER_PATH_MAX + MWL_SERVER_ALLOW_MAX * (MWL_AE_TITLE_MAX + 1) + 16];
    value[0] = '\0';
    switch (k->type) {
    case MWL_CONFIG_UINT: snprintf(value, sizeof value, "%u", (unsigned)u32_at(cfg, k)); break;
    case MWL_CONFIG_SECONDS:
        snprintf(value, sizeof value, "%u.%03u", (unsigned)(u32_at(cfg, k) / 1000),
                 (unsigned)(u32_at(cfg, k) % 1000));
        break;
    case MWL_CONFIG_BOOL:
        snprintf(value, sizeof value, "%s", cfg->strict_called_aet ? "true" : "false");
        break;
    case MWL_CONFIG_STRING:
    case MWL_CONFIG_AET: snprintf(value, sizeof value, "%s", str_at(cfg, k)); break;
    case MWL_CONFIG_AET_LIST:
        for (size_t i = 0; i < cfg->calling_aet_allow_count; i++)
            n += (size_t)snprintf(value + n, sizeof value - n, "%s%s", i ? "," : "",
                                  cfg->calling_aet_allow[i]);
        break;
    case MWL_CONFIG_LOG_LEVEL: snprintf(value, sizeof value, "%s", mwl_log_level_name(cfg->log_level)); break;
    }
    snprintf(out, cap, "%s = \"%s\"\n", k->name, value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mwl_server_config cfg, before;
    mwl_server_config_init(&cfg);
    before = cfg;
    size_t count = 0;
    const mwl_config_key *keys = mwl_server_config_keys(&count);
    mwl_diag diag;
    int rc = mwl_server_config_parse((const char *)data, size, &cfg, &diag);
    if (rc != MWL_OK) {
        if (rc != MWL_E_INVALID)
            fail("unexpected status", mwl_status_str(rc));
        if (strncmp(diag.msg, "line ", 5) != 0 || diag.offset > size)
            fail("error without a line", diag.msg);
        for (size_t i = 0; i < count; i++)
            if (!same_key(&cfg, &before, &keys[i]))
                fail("config changed by a failed parse", keys[i].name);
        return 0;
    }
    for (size_t i = 0; i < count; i++)
        check_field(&cfg, &keys[i]);

    /* Round trip through the text form. */
    size_t cap = count * (MWL_SERVER_PATH_MAX + MWL_SERVER_ALLOW_MAX * (MWL_AE_TITLE_MAX + 1) + 64);
    char *text = malloc(cap);
    if (!text)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        write_key(text + len, cap - len, &cfg, &keys[i]);
        len += strlen(text + len);
    }
    mwl_server_config again;
    mwl_server_config_init(&again);
    rc = mwl_server_config_parse(text, len, &again, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "%s\n%s\n", diag.msg, text);
        fail("the written config does not parse", NULL);
    }
    for (size_t i = 0; i < count; i++)
        if (!same_key(&cfg, &again, &keys[i]))
            fail("round trip changed a key", keys[i].name);
    free(text);
    return 0;
}
