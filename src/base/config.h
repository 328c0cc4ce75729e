/* Configuration tables (STYLE.md §12.11, Redis's static_configs[]): every
 * key is one row (name, type, default, bounds, field offset, help), and the
 * same rows serve a `key = value` file, command-line flags and help text.
 * One table describes one struct; a program may combine several tables (the
 * server's protocol and transport keys, each service's own keys) into one
 * file and one set of flags: a key belongs to exactly one table.
 *
 * Parsing works on strings, so it is unit-tested and fuzzed without files. */
#ifndef MWL_BASE_CONFIG_H
#define MWL_BASE_CONFIG_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* What kind of value a key takes, and the C type of its field. */
typedef enum mwl_config_type {
    MWL_CONFIG_UINT,      /* uint32_t: decimal integer in [min, max] */
    MWL_CONFIG_SECONDS,   /* uint32_t ms: seconds with up to 3 decimals ("0.25"), [min, max] ms */
    MWL_CONFIG_BOOL,      /* bool: true/false, yes/no, on/off, 1/0 */
    MWL_CONFIG_STRING,    /* char[max + 1]: printable text of min..max bytes (paths, addresses) */
    MWL_CONFIG_AET,       /* char[max + 1]: 1..max characters of the default repertoire, no '\' */
    MWL_CONFIG_AET_LIST,  /* mwl_config_aet_list: comma-separated AE titles, at most max; "" = none */
    MWL_CONFIG_LOG_LEVEL, /* mwl_log_level: error, warn, info, debug, trace */
    MWL_CONFIG_ENUM       /* char[max + 1]: one of the key's `choices` */
} mwl_config_type;

/* Longest AE title (PS3.5 Table 6.2-1) and most titles in one list. */
#define MWL_CONFIG_AET_MAX 16
#define MWL_CONFIG_AET_LIST_MAX 64

typedef struct mwl_config_aet_list {
    char aet[MWL_CONFIG_AET_LIST_MAX][MWL_CONFIG_AET_MAX + 1];
    size_t count; /* 0 = the list is empty */
} mwl_config_aet_list;

/* One row of a table. */
typedef struct mwl_config_key {
    const char *name; /* "max-associations": also the flag --max-associations */
    mwl_config_type type;
    const char *default_value;  /* as text; must parse */
    uint64_t min, max;          /* bounds (UINT, SECONDS ms); lengths (STRING, AET); entries (AET_LIST) */
    size_t offset;              /* the field in the table's struct */
    const char *help;           /* one line */
    const char *const *choices; /* ENUM: NULL-terminated allowed values */
} mwl_config_key;

/* A struct's keys. */
typedef struct mwl_config_table {
    const char *name; /* "server", "worklist": for messages */
    const mwl_config_key *keys;
    size_t count;
    size_t struct_size; /* sizeof the struct the offsets point into */
} mwl_config_table;

/* Fills every field with its key's default (the default text run through
 * the same parser as the file). Fields no key names are zeroed. */
MWL_API void mwl_config_init(const mwl_config_table *t, void *obj);

MWL_API const mwl_config_key *mwl_config_find(const mwl_config_table *t, const char *name);

/* Sets one key from its text form. MWL_OK, MWL_E_NOTFOUND (not a key of
 * this table) or MWL_E_INVALID (bad value: diag says why, e.g.
 * "max-associations: 0 is out of range 1..1000"); on error obj is
 * unchanged. */
MWL_API MWL_MUST_CHECK int mwl_config_set(const mwl_config_table *t, void *obj, const char *name,
                                          const char *value, mwl_diag *diag);

/* Writes key `k`'s value in obj as text that mwl_config_set reads back to
 * the same value. Returns the length, or the length needed when cap is too
 * small (snprintf style). */
MWL_API size_t mwl_config_format(const mwl_config_key *k, const void *obj, char *out, size_t cap);

/* True when key `k` has the same value in a and b. */
MWL_API bool mwl_config_equal(const mwl_config_key *k, const void *a, const void *b);

/* Parses a config file image of `len` bytes against `count` tables, each
 * with its struct in objs[i]: `key = value` lines; blank lines and lines
 * whose first non-blank character is '#' are ignored; blanks around key and
 * value are dropped; a value in double quotes keeps its inner blanks. Each
 * key may appear once. Applies every line on success; on any error no
 * struct changes, MWL_E_INVALID is returned and diag->msg starts with
 * "line N:" (diag->offset is the byte offset of that line). NUL bytes and
 * lines over 4096 bytes are errors. */
MWL_API MWL_MUST_CHECK int mwl_config_parse(const char *text, size_t len,
                                            const mwl_config_table *const *tables, void *const *objs,
                                            size_t count, mwl_diag *diag);

/* "N", "SECONDS", "BOOL", "TEXT", "AET", "AET,…", "LEVEL", "CHOICE": a
 * placeholder for help text. */
MWL_API const char *mwl_config_type_hint(mwl_config_type type);

#endif
