/* Fuzz target for the configuration file parser (src/base/config.c) over
 * the tables `mwl serve` reads: the server's (protocol, transport) and the
 * worklist service's.
 *
 * Parses arbitrary text. On an error no struct may change and the message
 * must name a line. On success every field must be within its key's
 * bounds, and the configuration written back as text (one quoted line per
 * key, or per item of a repeatable key, from the tables) must parse to the
 * same values: the parser and the tables agree on what every key holds.
 * Any disagreement aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "service/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *key)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, key ? ": " : "", key ? key : "");
    abort();
}

typedef struct all_config {
    mwl_server_config server;
    mwl_worklist_config worklist;
} all_config;

enum { TABLES = 2 };

static void tables_of(all_config *c, const mwl_config_table *t[TABLES], void *o[TABLES])
{
    t[0] = mwl_server_config_table();
    o[0] = &c->server;
    t[1] = mwl_worklist_config_table();
    o[1] = &c->worklist;
}

static void init_all(all_config *c)
{
    memset(c, 0, sizeof *c);
    mwl_server_config_init(&c->server);
    mwl_worklist_config_init(&c->worklist);
}

static void check_field(const void *obj, const mwl_config_key *k)
{
    const char *field = (const char *)obj + k->offset;
    switch (k->type) {
    case MWL_CONFIG_UINT:
    case MWL_CONFIG_SECONDS: {
        uint32_t v;
        memcpy(&v, field, sizeof v);
        if (v < k->min || v > k->max)
            fail("value out of bounds", k->name);
        break;
    }
    case MWL_CONFIG_STRING: {
        size_t n = strnlen(field, k->max + 1);
        if (n < k->min || n > k->max)
            fail("string length out of bounds", k->name);
        break;
    }
    case MWL_CONFIG_AET: {
        size_t n = strnlen(field, MWL_CONFIG_AET_MAX + 1);
        if (n == 0 || n > MWL_CONFIG_AET_MAX || field[0] == ' ' || field[n - 1] == ' ')
            fail("bad AE title", k->name);
        break;
    }
    case MWL_CONFIG_AET_LIST: {
        const mwl_config_aet_list *l = (const void *)field;
        if (l->count > MWL_CONFIG_AET_LIST_MAX || l->count > k->max)
            fail("list too long", k->name);
        for (size_t i = 0; i < l->count; i++) {
            size_t n = strnlen(l->aet[i], MWL_CONFIG_AET_MAX + 1);
            if (n == 0 || n > MWL_CONFIG_AET_MAX || strchr(l->aet[i], ','))
                fail("bad list entry", k->name);
        }
        break;
    }
    case MWL_CONFIG_ENUM: {
        bool known = false;
        const char *const *choices = mwl_config_choices(k);
        for (size_t i = 0; choices && choices[i]; i++)
            known = known || strcmp(field, choices[i]) == 0;
        if (!known)
            fail("value not among the choices", k->name);
        break;
    }
    case MWL_CONFIG_LIST: {
        size_t count;
        memcpy(&count, field, sizeof count);
        if (count > k->max || !mwl_config_list(k))
            fail("too many items", k->name);
        break;
    }
    case MWL_CONFIG_BOOL:
    case MWL_CONFIG_LOG_LEVEL: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static all_config cfg, before, again;
    const mwl_config_table *t[TABLES];
    void *o[TABLES];
    init_all(&cfg);
    before = cfg;
    tables_of(&cfg, t, o);
    mwl_diag diag;
    int rc = mwl_config_parse((const char *)data, size, t, o, TABLES, &diag);
    if (rc != MWL_OK) {
        if (rc != MWL_E_INVALID)
            fail("unexpected status", mwl_status_str(rc));
        if (strncmp(diag.msg, "line ", 5) != 0 || diag.offset > size)
            fail("error without a line", diag.msg);
        if (memcmp(&cfg, &before, sizeof cfg) != 0)
            fail("config changed by a failed parse", NULL);
        return 0;
    }
    size_t cap = 0;
    for (size_t i = 0; i < TABLES; i++) {
        for (size_t k = 0; k < t[i]->count; k++) {
            const mwl_config_key *key = &t[i]->keys[k];
            check_field(o[i], key);
            for (size_t v = 0; v < mwl_config_count(key, o[i]); v++)
                cap += strlen(key->name) + mwl_config_format_at(key, o[i], v, NULL, 0) + 8;
        }
    }

    /* Round trip through the text form: every value quoted, so blanks at
     * either end survive. */
    char *text = malloc(cap + 1);
    if (!text)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < TABLES; i++) {
        for (size_t k = 0; k < t[i]->count; k++) {
            const mwl_config_key *key = &t[i]->keys[k];
            /* One line per value: a repeatable key's items in order. */
            for (size_t v = 0; v < mwl_config_count(key, o[i]); v++) {
                len += (size_t)snprintf(text + len, cap + 1 - len, "%s = \"", key->name);
                len += mwl_config_format_at(key, o[i], v, text + len, cap + 1 - len);
                len += (size_t)snprintf(text + len, cap + 1 - len, "\"\n");
            }
        }
    }
    init_all(&again);
    const mwl_config_table *t2[TABLES];
    void *o2[TABLES];
    tables_of(&again, t2, o2);
    rc = mwl_config_parse(text, len, t2, o2, TABLES, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "%s\n%s\n", diag.msg, text);
        fail("the written config does not parse", NULL);
    }
    for (size_t i = 0; i < TABLES; i++)
        for (size_t k = 0; k < t[i]->count; k++)
            if (!mwl_config_equal(&t[i]->keys[k], o[i], o2[i]))
                fail("round trip changed a key", t[i]->keys[k].name);
    free(text);
    return 0;
}
