/* Configuration tables (STYLE.md §12.11, Redis's static_configs[]): every
 * key is one row (name, type, default, bounds, field offset, help), and the
 * same rows serve a `key = value` file, command-line flags and help text.
 * One table describes one struct; a program may combine several tables (the
 * server's protocol and transport keys, each service's own keys) into one
 * file and one set of flags: a key belongs to exactly one table.
 *
 * Every key takes one value and may be given once, except the repeatable
 * (MWL_CONFIG_LIST) keys: each occurrence adds one item.
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
    MWL_CONFIG_ENUM,      /* char[max + 1]: one of the key's choices (type_data) */
    MWL_CONFIG_LIST       /* repeatable: each occurrence adds one item (type_data's ops), at most max */
} mwl_config_type;

/* Longest AE title (PS3.5 Table 6.2-1) and most titles in one list. */
#define MWL_CONFIG_AET_MAX 16
#define MWL_CONFIG_AET_LIST_MAX 64

typedef struct mwl_config_aet_list {
    char aet[MWL_CONFIG_AET_LIST_MAX][MWL_CONFIG_AET_MAX + 1];
    size_t count; /* 0 = the list is empty */
} mwl_config_aet_list;

/* The items of a repeatable key (MWL_CONFIG_LIST), whose parsing the
 * owner of the table supplies (base knows nothing of what an item means).
 * The key's field is a struct that starts with `size_t count` and holds,
 * at items_offset from its start, an array of at least the key's max items
 * of item_size bytes each. Every `key = text` line of a file and every
 * mwl_config_set appends parse(text) as item [count]; an empty text is an
 * error (never "no item"), so a blank value cannot drop a rule silently.
 * The default value must be "" (no items). */
typedef struct mwl_config_list_ops {
    size_t item_size;
    size_t items_offset;
    const char *hint; /* for help text: "AE[@ADDRESS[/PREFIX]]" */
    /* MWL_OK, or MWL_E_INVALID with diag saying why (without the key's
     * name, which the caller adds). Writes *item only on success. */
    int (*parse)(const char *text, void *item, mwl_diag *diag);
    /* Text that parse reads back to an equal item; snprintf style. */
    size_t (*format)(const void *item, char *out, size_t cap);
    bool (*equal)(const void *a, const void *b);
} mwl_config_list_ops;

/* One row of a table. */
typedef struct mwl_config_key {
    const char *name; /* "max-associations": also the flag --max-associations */
    mwl_config_type type;
    const char *default_value; /* as text; must parse */
    uint64_t min, max; /* bounds (UINT, SECONDS ms); lengths (STRING, AET); entries (AET_LIST, LIST) */
    size_t offset;     /* the field in the table's struct */
    const char *help;  /* one line */
    /* What the type needs besides the above, NULL for the others (not a
     * union: rows stay positional). ENUM: the NULL-terminated
     * `const char *const []` of allowed values. LIST: the
     * `const mwl_config_list_ops *` of its items. */
    const void *type_data;
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

/* Sets one key from its text form (a LIST key: appends one item).
 * MWL_OK, MWL_E_NOTFOUND (not a key of this table) or MWL_E_INVALID (bad
 * value: diag says why, e.g. "max-associations: 0 is out of range
 * 1..1000"; a LIST key already holding max items); on error obj is
 * unchanged. */
MWL_API MWL_MUST_CHECK int mwl_config_set(const mwl_config_table *t, void *obj, const char *name,
                                          const char *value, mwl_diag *diag);

/* Sets key `k` in obj back to its default (a LIST key: no items). */
MWL_API void mwl_config_reset(const mwl_config_key *k, void *obj);

/* Writes key `k`'s value in obj as text that mwl_config_set reads back to
 * the same value. Returns the length, or the length needed when cap is too
 * small (snprintf style). A LIST key's items are written one per line
 * (each line is one `key = ` value; see mwl_config_format_at). */
MWL_API size_t mwl_config_format(const mwl_config_key *k, const void *obj, char *out, size_t cap);

/* How many `key = value` lines key `k`'s value in obj takes: 1, or for a
 * LIST key its number of items (0 when it has none). */
MWL_API size_t mwl_config_count(const mwl_config_key *k, const void *obj);

/* Value `index` (< mwl_config_count) of key `k` as text, snprintf style:
 * for a LIST key that item, for any other key (index 0) its value as
 * mwl_config_format writes it. Setting each of them in order, from the
 * default, gives the same value back. */
MWL_API size_t mwl_config_format_at(const mwl_config_key *k, const void *obj, size_t index, char *out,
                                    size_t cap);

/* True when key `k` has the same value in a and b. */
MWL_API bool mwl_config_equal(const mwl_config_key *k, const void *a, const void *b);

/* Parses a config file image of `len` bytes against `count` tables, each
 * with its struct in objs[i]: `key = value` lines; blank lines and lines
 * whose first non-blank character is '#' are ignored; blanks around key and
 * value are dropped; a value in double quotes keeps its inner blanks. Each
 * key may appear once, except LIST keys, whose lines each add one item in
 * the order of the file (after the items objs already holds). Applies every line on success; on any error no
 * struct changes, MWL_E_INVALID is returned and diag->msg starts with
 * "line N:" (diag->offset is the byte offset of that line). NUL bytes and
 * lines over 4096 bytes are errors. */
MWL_API MWL_MUST_CHECK int mwl_config_parse(const char *text, size_t len,
                                            const mwl_config_table *const *tables, void *const *objs,
                                            size_t count, mwl_diag *diag);

/* "N", "SECONDS", "BOOL", "TEXT", "AET", "AET,…", "LEVEL", "CHOICE",
 * "ITEM": a placeholder for help text. */
MWL_API const char *mwl_config_type_hint(mwl_config_type type);

/* The allowed values of an ENUM key, NULL-terminated; NULL for others. */
MWL_API const char *const *mwl_config_choices(const mwl_config_key *k);

/* The item operations of a LIST key; NULL for others. */
MWL_API const mwl_config_list_ops *mwl_config_list(const mwl_config_key *k);

/* The placeholder for one key: its list's hint for a LIST key, else the
 * type's. */
MWL_API const char *mwl_config_key_hint(const mwl_config_key *k);

/* Checks an AE title as the AET keys do (PS3.5 AE): [text, text + len)
 * without its leading and trailing spaces must be 1..16 characters of the
 * default repertoire without '\' or control characters. Returns NULL and
 * the trimmed title in *begin, *n, or a message saying what is wrong. */
MWL_API const char *mwl_config_aet_check(const char *text, size_t len, const char **begin /* out */,
                                         size_t *n /* out */);

#endif
