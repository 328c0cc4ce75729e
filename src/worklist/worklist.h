/* Modality Worklist information model (PS3.4 Annex K, Table K.6-1) and the
 * C-FIND matching engine (PS3.4 C.2.2.2): parse an identifier once into a
 * query, match stored worklist items against it, one candidate per Scheduled
 * Procedure Step, and build each response with exactly the requested keys.
 *
 * Which keys exist, how each may be matched and how it is returned come from
 * data/worklist/keys.tsv (generated into keys_gen.c), not from code.
 *
 * A C-FIND SCP uses it like this (one identifier, any number of items):
 *
 *     mwl_query *q;
 *     int rc = mwl_query_parse(identifier, arena, &q, &diag);
 *     if (rc != MWL_OK)              // failure: no Pending responses
 *         send(mwl_query_failure_status(rc), diag.tag, diag.msg);  // (0000,0901/0902)
 *     if (calling-AE filtering is on && mwl_query_is_universal(q, aet_path, 2))
 *         rc = mwl_query_constrain(q, aet_path, 2, calling_aet, &diag);
 *     mwl_matcher m;  mwl_matcher_init(&m, &opts, mem);
 *     for each candidate item the store yields (SQL only narrows):
 *         for (size_t i = 0, n = mwl_expand_count(item); i < n; i++) {
 *             bool hit;
 *             rc = mwl_match_dataset(&m, q, item, i, &hit, &diag);
 *             if (rc == MWL_OK && hit) {
 *                 mwl_ds *resp;
 *                 rc = mwl_project(&m, q, item, i, response_arena, &resp, &diag);
 *                 send(mwl_query_pending_status(q), resp);     // FF00 or FF01
 *             }
 *         }
 *     send(0x0000);
 *     mwl_matcher_clear(&m);
 *
 * Strings are compared in UTF-8: the identifier's values are decoded once by
 * its Specific Character Set, each stored value by the stored item's own
 * (dicom/charset.h is the only place that converts).
 */
#ifndef MWL_WORKLIST_WORKLIST_H
#define MWL_WORKLIST_WORKLIST_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/dataset.h"

/* ---- the keys table (PS3.4 Table K.6-1, data/worklist/keys.tsv) --------- */

/* Matching key type (K.2.2.1): required, optional, or not a matching key. */
typedef enum mwl_wlkey_type { MWL_WLKEY_NONE = 0, MWL_WLKEY_R, MWL_WLKEY_O } mwl_wlkey_type;

/* Return key type (K.2.2.1.2, PS3.5 data element types); NEVER = accepted in
 * an identifier but never returned. */
typedef enum mwl_wlkey_return {
    MWL_RETURN_NEVER = 0,
    MWL_RETURN_1,
    MWL_RETURN_1C,
    MWL_RETURN_2,
    MWL_RETURN_2C,
    MWL_RETURN_3
} mwl_wlkey_return;

/* Matching types supported for a key (bit set). Universal matching
 * (C.2.2.2.3) and empty value matching (C.2.2.2.7) are available on every
 * matching key; MWL_MATCH_UNIVERSAL alone means "universal matching only". */
enum {
    MWL_MATCH_SINGLE = 1 << 0,    /* C.2.2.2.1 */
    MWL_MATCH_UID_LIST = 1 << 1,  /* C.2.2.2.2 */
    MWL_MATCH_WILDCARD = 1 << 2,  /* C.2.2.2.4 */
    MWL_MATCH_RANGE = 1 << 3,     /* C.2.2.2.5 */
    MWL_MATCH_SEQUENCE = 1 << 4,  /* C.2.2.2.6 */
    MWL_MATCH_UNIVERSAL = 1 << 5, /* C.2.2.2.3 only */
};

/* Key flags. */
enum {
    MWL_WLKEY_EXPAND = 1 << 0,  /* one response per item (the SPS Sequence, K.6.1.2.1) */
    MWL_WLKEY_ALWAYS = 1 << 1,  /* returned whenever the stored item has it (K.4.1.1.3.2) */
    MWL_WLKEY_NOEMPTY = 1 << 2, /* never returned zero length (Timezone Offset From UTC) */
    MWL_WLKEY_CHARSET = 1 << 3, /* Specific Character Set: never matched, set from the item */
    MWL_WLKEY_IGNORE = 1 << 4,  /* accepted and ignored: not matched, not returned, no FF01 */
};

typedef struct mwl_wlkey {
    uint32_t tag;
    uint8_t vr;          /* mwl_vr */
    uint8_t key_type;    /* mwl_wlkey_type */
    uint8_t return_type; /* mwl_wlkey_return */
    uint8_t matching;    /* MWL_MATCH_* bits */
    uint8_t flags;       /* MWL_WLKEY_* bits */
    int16_t parent;      /* index of the enclosing sequence key, -1 at top level */
    uint16_t first_child;
    uint16_t child_count;
    int16_t pair; /* DA key: index of the TM key for combined date-time matching, else -1 */
    const char *keyword;
    /* The attribute's Enumerated Values (PS3.3), '\'-separated ("M\F\O";
     * decimal for US), or NULL. A query value outside them is not matched
     * on: the key is ignored for matching with FF01 (optional keys) or
     * refused with A900 (required keys); see mwl_query_parse. */
    const char *enumerated;
} mwl_wlkey;

/* The key `tag` directly inside sequence key `parent` (NULL: top level), or
 * NULL when the model has no such key. */
MWL_API const mwl_wlkey *mwl_wlkey_find(const mwl_wlkey *parent, uint32_t tag);
/* Number of keys inside `parent` (NULL: top level) and the i-th of them in
 * tag order (NULL past the end). */
MWL_API size_t mwl_wlkey_child_count(const mwl_wlkey *parent);
MWL_API const mwl_wlkey *mwl_wlkey_child(const mwl_wlkey *parent, size_t i);
/* The enclosing sequence key, or NULL at top level. */
MWL_API const mwl_wlkey *mwl_wlkey_parent(const mwl_wlkey *key);
/* The top-level key with MWL_WLKEY_EXPAND (the SPS Sequence), or NULL. */
MWL_API const mwl_wlkey *mwl_wlkey_expand_key(void);

/* The return keys of a default query -- what a modality reads to start an
 * exam -- as key paths (dicom/keypath.h: "ScheduledProcedureStepSequence.
 * Modality"), for `mwl find` and the REST search alike. *count gets how
 * many. */
MWL_API const char *const *mwl_worklist_default_return_keys(size_t *count);

/* ---- parsed query -------------------------------------------------------- */

/* How a key of the identifier is matched, decided from its value (C.2.2.2)
 * and checked against the key's row in the table. */
typedef enum mwl_qkind {
    MWL_Q_UNIVERSAL = 0, /* C.2.2.2.3: zero length, or only '*' (C.2.2.2.4 note) */
    MWL_Q_SINGLE,        /* C.2.2.2.1: single value (several values: any of them) */
    MWL_Q_UID_LIST,      /* C.2.2.2.2 */
    MWL_Q_WILDCARD,      /* C.2.2.2.4: at least one value has '*' or '?' */
    MWL_Q_RANGE,         /* C.2.2.2.5: at least one value is a DA/TM/DT range */
    MWL_Q_DATETIME,      /* C.2.2.2.5.4: a DA range combined with its paired TM range */
    MWL_Q_SEQUENCE,      /* C.2.2.2.6: an item with at least one non-universal key */
    MWL_Q_EMPTY,         /* C.2.2.2.7: the value "" asks for an empty or absent attribute */
    MWL_Q_IGNORED,       /* not matched (unsupported, or not a matching key); still returned */
} mwl_qkind;

/* One value of a key. Strings are UTF-8, trimmed per VR (PS3.5 6.2),
 * NUL-terminated; PN values are normalised (spaces around components and
 * trailing empty components and groups removed). */
typedef struct mwl_qvalue {
    const char *text; /* string VRs: the value; binary VRs: the raw value bytes */
    size_t len;
    uint8_t kind; /* MWL_Q_SINGLE, MWL_Q_WILDCARD or MWL_Q_RANGE */
    bool has_lo, has_hi;
    /* DA/TM/DT (single values too, as lo == hi), inclusive, per
     * dicom/datetime.h: DA YYYYMMDD as an integer (mwl_date_key), TM
     * microseconds since midnight, DT microseconds since year 0 (UTC when
     * the value has an offset); an upper bound with fewer components ends
     * where the period it names ends ("10" = 10:59:59.999999). The store
     * can narrow its SQL on these (e.g. SPS start date BETWEEN lo AND hi). */
    int64_t lo, hi;
    double number; /* IS/DS */
} mwl_qvalue;

typedef struct mwl_qkey mwl_qkey;
struct mwl_qkey {
    uint32_t tag;
    uint8_t vr;           /* the table's VR (the identifier's for unknown keys) */
    uint8_t kind;         /* mwl_qkind */
    bool returned;        /* false for match-only keys added by mwl_query_constrain */
    bool unsupported;     /* counted for the FF01 status (K.4.1.3) */
    bool paired;          /* TM key folded into its DA key's MWL_Q_DATETIME */
    bool all_children;    /* SQ requested as empty sequence or empty item (K.2.2.1.2 note 4) */
    const mwl_wlkey *key; /* the table row; NULL when the model has no such key */
    const mwl_elem *elem; /* the element in the identifier (NULL if added) */
    size_t value_count;
    const mwl_qvalue *values;
    int64_t dt_lo, dt_hi; /* MWL_Q_DATETIME: combined bounds */
    bool dt_has_lo, dt_has_hi;
    size_t child_count; /* SQ: the keys of the identifier's item, in tag order */
    mwl_qkey *children;
};

typedef struct mwl_query mwl_query;

/* Parses a C-FIND identifier into a query allocated in `arena`. Every value
 * is decoded to UTF-8 by the identifier's Specific Character Set, split and
 * trimmed once; ranges and numbers are parsed once. The query points into
 * `identifier` (for offending elements): both must outlive it.
 *
 * Returns MWL_OK, or (with the offending tag and a comment of at most 64
 * characters in diag, ready for (0000,0901) and (0000,0902)):
 *   MWL_E_MALFORMED   the identifier does not match the SOP class: a sequence
 *                     key with more than one item (C.2.2.2.6), a key with a VR
 *                     other than the model's, an invalid value for the VR (a
 *                     bad date, a range whose start is after its end, a time
 *                     range crossing midnight other than as the time half of
 *                     a combined date-time range (C.2.2.2.5.4), a UID with a
 *                     wildcard), a matching type a required key does not
 *                     support, a required key's value outside its enumerated
 *                     values;
 *   MWL_E_UNSUPPORTED a Specific Character Set we cannot decode;
 *   MWL_E_CHARSET     bytes invalid in the identifier's character set;
 *   MWL_E_NOMEM.
 * Optional keys we do not support (not in the table, or a value on a key
 * that is not a matching key) are no error: they are flagged for FF01 and
 * returned if the item has them (K.2.2.1.1.2). So is an optional key whose
 * single value lies outside the attribute's enumerated values (Pregnancy
 * Status 0, which some SCUs send to mean "empty"): no stored value could
 * match it, so it is not taken as a restriction. */
MWL_API MWL_MUST_CHECK int mwl_query_parse(const mwl_ds *identifier, mwl_arena *arena, mwl_query **out,
                                           mwl_diag *diag);

/* The DIMSE status of each Pending response (K.4.1.3, PS3.4 Table K.4-2):
 * 0xFF01 when some optional key of the identifier is not supported, else
 * 0xFF00. */
MWL_API uint16_t mwl_query_pending_status(const mwl_query *q);
/* Number of keys flagged unsupported (the reason for FF01). */
MWL_API size_t mwl_query_unsupported_count(const mwl_query *q);
/* The failure status for a mwl_query_parse error: 0xA900 (identifier does
 * not match SOP class) for MWL_E_MALFORMED, MWL_E_UNSUPPORTED, MWL_E_CHARSET,
 * MWL_E_INVALID; 0xA700 (out of resources) for MWL_E_NOMEM and MWL_E_LIMIT;
 * 0xC000 (unable to process) otherwise. */
MWL_API uint16_t mwl_query_failure_status(int rc);

/* Top-level keys in tag order. */
MWL_API size_t mwl_query_key_count(const mwl_query *q);
MWL_API const mwl_qkey *mwl_query_key_at(const mwl_query *q, size_t index);
/* The key at `path` (top-level tag, then the tags inside each sequence), or
 * NULL when the identifier has none. Valid until the next
 * mwl_query_constrain. */
MWL_API const mwl_qkey *mwl_query_find(const mwl_query *q, const uint32_t *path, size_t depth);
/* True when the key at `path` is absent or matches universally, i.e. the
 * identifier does not restrict it. */
MWL_API bool mwl_query_is_universal(const mwl_query *q, const uint32_t *path, size_t depth);

/* Adds or replaces a matching condition before matching, e.g. "Scheduled
 * Station AE Title empty in the identifier -> only this calling AE title":
 * path {ScheduledProcedureStepSequence, ScheduledStationAETitle}, "CT_1".
 * `utf8` is read with the identifier rules (wildcards, ranges, '\' lists).
 * A key the identifier has keeps being returned; a key it lacks is added
 * for matching only and never returned. Returns MWL_OK, MWL_E_INVALID (path
 * not in the model or not a string key), MWL_E_MALFORMED (bad value),
 * MWL_E_NOMEM. Pointers from mwl_query_find/key_at may move. */
MWL_API MWL_MUST_CHECK int mwl_query_constrain(mwl_query *q, const uint32_t *path, size_t depth,
                                               const char *utf8, mwl_diag *diag);

/* ---- matching ------------------------------------------------------------ */

typedef struct mwl_match_opts {
    /* PN (C.2.2.2.1.1 and K.6.1.3.2): false (default) compares PN values
     * case-insensitively (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic,
     * full-width Latin), because many modalities send names in upper case. */
    bool pn_case_sensitive;
    /* PN: also ignore accents (default false): the Latin letters of
     * U+00C0..U+017F with a diacritic or a stroke compare as their base
     * letter (e-acute as e, O-stroke as O, L-stroke as L, dotless i as i);
     * ligatures and other letters (AE, OE, IJ, sharp s, thorn, eth, eng,
     * kra) are left as they are. */
    bool pn_accent_insensitive;
} mwl_match_opts;

/* Defaults: PN case-insensitive, accent-sensitive. */
MWL_API void mwl_match_opts_init(mwl_match_opts *opts);

/* Per-thread matching context: options plus scratch buffers reused from one
 * item to the next, so matching allocates only while the scratch grows. */
typedef struct mwl_matcher {
    mwl_match_opts opts;
    mwl_wbuf text; /* stored value decoded to UTF-8 */
    mwl_wbuf norm; /* normalised PN */
} mwl_matcher;

/* Never fails. `opts` NULL = defaults; `mem` NULL = default allocator. */
MWL_API void mwl_matcher_init(mwl_matcher *m, const mwl_match_opts *opts, const mwl_mem *mem);
/* Frees the scratch; NULL-safe. */
MWL_API void mwl_matcher_clear(mwl_matcher *m);

/* Matches stored worklist item `item` (a whole entity: patient, visit,
 * request and its Scheduled Procedure Steps) as seen through expansion
 * `expand_index` (see mwl_expand_count: only that SPS item is visible;
 * SIZE_MAX looks at every SPS item, for "does any SPS match")
 * against `q`. Every non-universal key must match (C.2.2.2); an attribute
 * absent or empty in the item never matches a non-universal key
 * (K.2.2.1.1.1); a multi-valued attribute matches when any value does
 * (C.2.2.3). *matched gets the verdict.
 * Returns MWL_OK, MWL_E_UNSUPPORTED (the item's Specific Character Set),
 * MWL_E_CHARSET (undecodable bytes in the item), MWL_E_NOMEM: the caller
 * should log and skip the item. */
MWL_API MWL_MUST_CHECK int mwl_match_dataset(mwl_matcher *m, const mwl_query *q, const mwl_ds *item,
                                             size_t expand_index, bool *matched, mwl_diag *diag);

/* ---- explaining a match: why an item is (not) a response ---------------- */

/* What decided one key, as the matcher itself decided it: mwl_match_dataset
 * and mwl_explain call the same per-key function, which gives one of
 * these (the C-FIND path drops it and stops at the first failing key). */
typedef enum mwl_explain_reason {
    MWL_WHY_MATCHED = 0,    /* a value of the item matched a value of the key */
    MWL_WHY_UNIVERSAL,      /* universal matching (C.2.2.2.3): a return key only */
    MWL_WHY_NOT_MATCHED_ON, /* ignored for matching: unsupported, not a matching key
                               (FF01), or a time matched together with its date */
    MWL_WHY_NO_VALUE,       /* the item lacks the attribute or it is empty (K.2.2.1.1.1) */
    MWL_WHY_DIFFERENT,      /* the item has values and none matches */
    MWL_WHY_BAD_VALUE,      /* the item's DA/TM/DT values do not parse, so none matches */
    MWL_WHY_HAS_VALUE,      /* empty value matching (C.2.2.2.7) and the item has a value */
    MWL_WHY_NO_SEQUENCE,    /* the item lacks the sequence or it has no item to look at */
    MWL_WHY_NO_ITEM,        /* no item of the sequence matches every key of the query's item */
    MWL_WHY_ITEM_KEY,       /* (an entry for one sequence item) a key of the item does not match */
} mwl_explain_reason;

typedef enum mwl_explain_result {
    MWL_EXPLAIN_MATCH = 0,
    MWL_EXPLAIN_NOMATCH,
    MWL_EXPLAIN_NA /* the key does not constrain: universal or ignored */
} mwl_explain_result;

/* Bits of an index into mwl_explain_key.pn_matches: one option combination. */
enum { MWL_EXPLAIN_PN_CASE_SENSITIVE = 1, MWL_EXPLAIN_PN_ACCENT_INSENSITIVE = 2 };

typedef struct mwl_explain_key {
    /* Keywords from the top level, '>' between levels:
     * "ScheduledProcedureStepSequence>Modality" ("(gggg,eeee)" for a tag
     * without keyword). */
    const char *path;
    uint32_t tag;
    uint8_t vr;
    size_t depth; /* 0 at top level */
    /* Inside a sequence: the item (0-based) of the innermost enclosing
     * sequence that the entry is about; SIZE_MAX at top level. */
    size_t item;
    /* An entry that stands for one whole item of a sequence (`item`): the
     * item matches when every key of the query's item does (C.2.2.2.6). */
    bool is_item;
    mwl_qkind kind;          /* the matching applied */
    const char *query_value; /* UTF-8, '\' between values; MWL_Q_DATETIME: "DATE TIME" */
    /* UTF-8 (decoded with the item's character set), '\' between values;
     * NULL when the item lacks the attribute; "(N items)" for a sequence. */
    const char *item_value;
    mwl_explain_result result;
    mwl_explain_reason reason;
    /* PN keys compared with a stored value: bit c of pn_matches set when the
     * key matches under option combination c (MWL_EXPLAIN_PN_* bits), each
     * computed by running the same comparison with those options. */
    bool pn_checked;
    uint8_t pn_matches;
} mwl_explain_key;

typedef struct mwl_explain {
    bool matched; /* the verdict: always mwl_match_dataset's for the same arguments */
    mwl_match_opts opts;
    /* In query order; a sequence key is followed, for each item it looked
     * at, by the item's entry (is_item) and then that item's keys. */
    mwl_explain_key *keys;
    size_t count;
} mwl_explain;

/* Evaluates every key of `q` against `item` (seen through `expand_index`,
 * as for mwl_match_dataset) with the matcher's options and fills *out, all
 * in `arena`. Unlike mwl_match_dataset it does not stop at the first key
 * that fails, and it looks into every item of a sequence. For tools and
 * tests: it allocates and formats. Returns MWL_OK, or the errors of
 * mwl_match_dataset (MWL_E_UNSUPPORTED, MWL_E_CHARSET, MWL_E_NOMEM), which
 * it may also meet on a key that mwl_match_dataset, stopping early, never
 * reached. */
MWL_API MWL_MUST_CHECK int mwl_explain_match(mwl_matcher *m, const mwl_query *q, const mwl_ds *item,
                                             size_t expand_index, mwl_arena *arena, mwl_explain *out,
                                             mwl_diag *diag);

/* "universal", "single value", "list of UIDs", "wildcard", "range",
 * "date-time range", "sequence", "empty value", "not matched". */
MWL_API const char *mwl_explain_kind_name(mwl_qkind kind);
/* "match", "no match", "n/a". */
MWL_API const char *mwl_explain_result_name(mwl_explain_result result);
/* A short phrase saying why, for people: "single value matching is exact",
 * "outside the range", "the item has no value", ... */
MWL_API const char *mwl_explain_phrase(const mwl_explain_key *k);
/* The key's attribute name ("Scheduled Station AE Title"), else its path. */
MWL_API const char *mwl_explain_key_name(const mwl_explain_key *k);
/* For a PN key that does not match under `opts` but would under other name
 * options: writes e.g. "matches only with pn-accent-insensitive" (the
 * fewest options changed) into buf and returns true; false otherwise. */
MWL_API bool mwl_explain_pn_hint(const mwl_explain_key *k, const mwl_match_opts *opts, char *buf, size_t cap);
/* True for the keys that decide a non-match: those that fail, without the
 * sequences and items that fail only because a key inside them does. */
MWL_API bool mwl_explain_is_failing(const mwl_explain_key *k);
/* Appends the members (no braces) `"matched":B,"failing":[PATH...],
 * "keys":[{path, name, depth, item, isItem, kind, query, value, result,
 * reason, hint}...]` to `out`, the form of `mwl explain --json` and the
 * HTTP listener's /explain. Errors stay in out->status. */
MWL_API void mwl_explain_write_json(const mwl_explain *ex, mwl_wbuf *out);

/* ---- expansion: one response per Scheduled Procedure Step (K.6.1.2.1) ---- */

/* Number of responses `item` can give: the item count of its expanded
 * sequence (the SPS Sequence), or 1 when it has none (matched as it is). */
MWL_API size_t mwl_expand_count(const mwl_ds *item);
/* A copy of `item` in `arena` whose SPS Sequence holds only item
 * `expand_index`. Matching and projection do not need it (they take the
 * index); it is for tools and tests. MWL_E_INVALID for an index past
 * mwl_expand_count, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_expand_item(const mwl_ds *item, size_t expand_index, mwl_arena *arena,
                                           mwl_ds **out);

/* ---- projection: the response identifier (K.4.1.1.3.2, C.2.2.2.6) -------- */

/* Builds the response for `item` (as seen through `expand_index`; with
 * SIZE_MAX the SPS Sequence holds every SPS item that matched) in
 * `arena`: exactly the requested keys (match-only keys excluded), with the
 * item's values; a requested key the item lacks is present and empty (its
 * table VR), except keys unknown to the model (omitted unless the item has
 * them) and MWL_WLKEY_NOEMPTY keys. Sequence keys hold the matching items
 * (all items for a universal sequence, the one SPS for the expanded
 * sequence), each with only the requested nested keys; a sequence requested
 * as an empty sequence or with one empty item gets every table key of that
 * sequence (types 1 and 2 even when empty, types 1C, 2C and 3 when the item
 * has them). MWL_WLKEY_ALWAYS keys the item has are added; (0008,0005) is
 * copied from the item (the values keep the item's encoding).
 * Returns MWL_OK, MWL_E_UNSUPPORTED, MWL_E_CHARSET (see mwl_match_dataset),
 * MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_project(mwl_matcher *m, const mwl_query *q, const mwl_ds *item,
                                       size_t expand_index, mwl_arena *arena, mwl_ds **out, mwl_diag *diag);

/* ---- support for narrowing in the store (SQL narrows, the matcher decides) */

/* Appends the index form of a PN value (UTF-8): normalised as for matching
 * (when `normalize`; pass false for a key value, which mwl_query_parse has
 * normalised already), then every character folded for case and accents --
 * the widest folding any mwl_match_opts applies. So when a PN key matches a
 * stored name under any options, the index form of one of the name's
 * component groups starts with the index form of the key group's literal
 * prefix (up to its first '*' or '?'). Errors are reported in out->status. */
MWL_API void mwl_pn_index_form(const char *utf8, size_t len, bool normalize, mwl_wbuf *out);

/* The rules that decide which stored SPS rows are *candidates* for a query
 * live here, so that every store backend narrows the same way:
 *
 *   - mwl_sps_index_build computes the indexed values of one SPS row (what
 *     a backend stores in its index columns, and the row's identity);
 *   - mwl_filter_from_query derives from a query the conditions on those
 *     values that every match satisfies.
 *
 * The contract (tested against every matching vector of
 * tests/vectors/query/match.tsv in store_narrow_test): whenever
 * mwl_match_dataset says a row matches, the row's index satisfies the
 * filter. Narrowing is a superset of matching, never the judge.
 *
 * Values of Value Multiplicity 1 that are indexed (see mwl_worklist_check_item,
 * MWL_ITEM_MULTI_VALUED) must hold one value: an item with several is
 * refused, since the matcher would match any of them but only one could
 * be indexed. Scheduled Station AE Title (VM 1-n) is indexed value by value. */

typedef enum mwl_filter_match {
    MWL_FILTER_ANY = 0, /* no condition */
    MWL_FILTER_EXACT,   /* the index value equals `value` (bytewise) */
    MWL_FILTER_PREFIX   /* the index value starts with `value` (non-empty) */
} mwl_filter_match;

typedef struct mwl_filter_cond {
    mwl_filter_match match;
    /* In index form: trimmed UTF-8 as mwl_sps_index holds it; for
     * patient_name the mwl_pn_index_form of a key group's literal text (use
     * mwl_filter_set_name to set it from a name). */
    const char *value;
} mwl_filter_cond;

/* The condition as it applies: a NULL value, or an empty prefix, is none. */
static inline mwl_filter_match mwl_filter_cond_match(const mwl_filter_cond *c)
{
    if (!c->value || (c->match == MWL_FILTER_PREFIX && !c->value[0]))
        return MWL_FILTER_ANY;
    return c->match;
}

enum { MWL_FILTER_VALUE_MAX = 128 };  /* longest value mwl_filter_from_query keeps */
enum { MWL_FILTER_EXCLUDE_MAX = 16 }; /* most statuses a filter excludes */

/* What a store may narrow on. Every condition must hold for the indexed
 * values of a row the query matches. Callers (tools) may also set
 * conditions by hand with their own strings, which must then outlive the
 * filter's use. Values set by mwl_filter_from_query or mwl_filter_set_name
 * point into the filter itself: do not copy such a filter by value. */
typedef struct mwl_filter {
    mwl_filter_cond station_aet; /* any of the SPS's Scheduled Station AE Title values */
    mwl_filter_cond modality;
    mwl_filter_cond sps_id;
    mwl_filter_cond sps_status;
    mwl_filter_cond patient_id;
    mwl_filter_cond patient_name; /* any component group of the Patient's Name (index form) */
    mwl_filter_cond accession;
    mwl_filter_cond study_uid;
    mwl_filter_cond requested_procedure_id;
    mwl_filter_cond worklist_aet; /* the worklist an item was stored into (per called AE title) */
    const char *date_lo;          /* SPS Start Date >= (YYYYMMDD), NULL = open */
    const char *date_hi;          /* SPS Start Date <= (YYYYMMDD), NULL = open */
    /* A policy, not narrowing: rows whose SPS status is one of these are
     * no candidates, whatever the query (a worklist that hides finished
     * steps); a row without a status stays one. Never set by
     * mwl_filter_from_query, so it is outside the contract above and not
     * a condition for mwl_filter_is_empty. The caller's strings, which must
     * outlive the filter's use; at most MWL_FILTER_EXCLUDE_MAX. */
    const char *const *exclude_statuses;
    size_t exclude_status_count;
    /* storage for the values above when the filter made them */
    char text[10][MWL_FILTER_VALUE_MAX];
    char dates[2][9];
} mwl_filter;

/* Everything MWL_FILTER_ANY, dates open. Never fails. */
MWL_API void mwl_filter_init(mwl_filter *f);
/* True when the filter has no condition at all (every row is a candidate). */
MWL_API bool mwl_filter_is_empty(const mwl_filter *f);
/* Sets f->patient_name to the index form of `utf8` (a name, or the
 * literal prefix of one, normalised as mwl_query_parse does) with `match`.
 * Never fails: a value whose index form does not fit MWL_FILTER_VALUE_MAX
 * (or cannot be made for lack of memory) leaves the condition ANY, which
 * only narrows less. */
MWL_API void mwl_filter_set_name(mwl_filter *f, mwl_filter_match match, const char *utf8);

/* Initialises `f` (out; its values point into it) with the conditions
 * every item matching `q` satisfies: a key with one single or wild card
 * value gives EXACT or PREFIX (its literal text up to the first '*' or
 * '?'; for Patient's Name the first component group); a single or range
 * SPS Start Date gives date bounds. Keys with several values, UID lists,
 * empty-value keys, unsupported keys and values longer than
 * MWL_FILTER_VALUE_MAX narrow nothing. worklist_aet is left ANY (the
 * server sets it for per-called-AE worklists). Never fails: what cannot be
 * indexed narrows nothing. */
MWL_API void mwl_filter_from_query(const mwl_query *q, mwl_filter *f /* out */);

/* The indexed values of one stored SPS row: what every store backend keeps
 * beside the encoded row, and the row's identity. Strings are UTF-8 in the
 * arena given to mwl_sps_index_build, trimmed as the matcher trims. */
typedef struct mwl_sps_index {
    const char *start_date; /* SPS Start Date as YYYYMMDD (retired forms made canonical); "" absent */
    const char *start_time; /* SPS Start Time as HH[MM[SS[.FFFFFF]]]; "" absent */
    /* NULL when absent or empty: */
    const char *modality;
    const char *sps_id;
    const char *sps_status;
    const char *patient_id;
    const char *accession;
    const char *study_uid;
    const char *requested_procedure_id;
    const char *charset;      /* the item's (0008,0005) as stored, NULL when none */
    const char *worklist_aet; /* as given to mwl_sps_index_build */
    /* every non-empty Scheduled Station AE Title value, no duplicates */
    const char **stations;
    size_t station_count;
    /* the index form (mwl_pn_index_form) of every non-empty component group
     * of the Patient's Name, no duplicates */
    const char **names;
    size_t name_count;
    /* The row's identity: "sps|" + the length-prefixed Study Instance UID,
     * Accession Number, Requested Procedure ID, SPS ID and worklist AE when
     * the SPS has an SPS ID and the item a Study Instance UID or an
     * Accession Number; otherwise "content|" + a hash of the encoded row
     * (the same bytes stored again are the same row). Stable: databases
     * keep these strings. */
    const char *natural_key;
    const uint8_t *dataset; /* the row's data set, Explicit VR Little Endian */
    size_t dataset_length;
} mwl_sps_index;

/* Builds the index of one row: `row` is a worklist item whose SPS
 * Sequence holds exactly one item, `sps` (see mwl_expand_item).
 * `worklist_aet` may be NULL. Everything is allocated in `arena`.
 * Returns MWL_OK, MWL_E_INVALID (an indexed key of VM 1 with several
 * values, or an SPS Start Date/Time that does not parse; diag names it),
 * MWL_E_UNSUPPORTED / MWL_E_CHARSET (the item's character set, or bytes
 * invalid in it), MWL_E_NOMEM, or an encoder error. */
MWL_API MWL_MUST_CHECK int mwl_sps_index_build(const mwl_ds *row, const mwl_ds *sps, const char *worklist_aet,
                                               mwl_arena *arena, mwl_sps_index *out, mwl_diag *diag);

/* ---- checking a worklist item before it is stored ------------------------- */

/* Why an item is refused. The numbers and the short names
 * (mwl_item_problem_name) are an interface: intake front ends (mwl import,
 * HL7, REST) map them to their own replies, so a code never changes
 * meaning and new codes are only appended. */
typedef enum mwl_item_code {
    MWL_ITEM_OK = 0,
    /* "no-sps-sequence": Scheduled Procedure Step Sequence (0040,0100)
     * absent, not a sequence, or without items. */
    MWL_ITEM_NO_SPS_SEQUENCE = 1,
    /* "missing-key": a key a modality needs to start the exam (return type
     * 1 in PS3.4 Table K.6-1) is absent or empty: Patient's Name, Patient
     * ID, Study Instance UID, Requested Procedure ID; in each SPS item
     * Scheduled Station AE Title, SPS Start Date, SPS Start Time, Modality,
     * SPS ID. Not checked with MWL_CHECK_LENIENT. */
    MWL_ITEM_MISSING_KEY = 2,
    /* "multi-valued": an indexed key of Value Multiplicity 1 holds several
     * values: Patient's Name, Patient ID, Accession Number, Study Instance
     * UID, Requested Procedure ID; in an SPS item SPS Start Date, SPS Start
     * Time, Modality, SPS ID, SPS Status. */
    MWL_ITEM_MULTI_VALUED = 3,
    /* "no-identity" (only with MWL_CHECK_IDENTITY): an SPS without SPS ID,
     * or an item with neither Study Instance UID nor Accession Number. Such
     * an SPS can be stored (its content is its identity, see
     * mwl_sps_index.natural_key) but never updated or referred to. */
    MWL_ITEM_NO_IDENTITY = 4,
    /* "bad-charset": a Specific Character Set (0008,0005) we cannot
     * decode, or a text value with bytes invalid in it. */
    MWL_ITEM_BAD_CHARSET = 5,
    /* "bad-value": a value the store must read is invalid for its VR: an
     * SPS Start Date or SPS Start Time that does not parse. */
    MWL_ITEM_BAD_VALUE = 6,
    /* "duplicate-sps": two SPS items of the item have the same SPS ID, so
     * they would be one stored SPS. */
    MWL_ITEM_DUPLICATE_SPS = 7,
} mwl_item_code;

enum {
    MWL_CHECK_LENIENT = 1 << 0,  /* skip MWL_ITEM_MISSING_KEY (mwl import --force) */
    MWL_CHECK_IDENTITY = 1 << 1, /* refuse items without identity (MWL_ITEM_NO_IDENTITY) */
};

typedef struct mwl_item_problem {
    mwl_item_code code;
    uint32_t tag;     /* the element concerned, 0 when none */
    size_t sps_index; /* the SPS item concerned (0-based), SIZE_MAX at item level */
    char msg[192];    /* e.g. "SPS item 2: missing type 1 key Modality (0008,0060)" */
} mwl_item_problem;

/* Checks that `item` can be stored and served. Every store put runs it
 * with MWL_CHECK_LENIENT, whatever the caller. The checks run in this
 * order and the first problem found is reported: NO_SPS_SEQUENCE,
 * BAD_CHARSET, MULTI_VALUED, BAD_VALUE, MISSING_KEY, NO_IDENTITY,
 * DUPLICATE_SPS.
 * Returns MWL_OK (out->code MWL_ITEM_OK), MWL_E_INVALID (refused: *out says
 * why), MWL_E_NOMEM. `out` may be NULL. */
MWL_API MWL_MUST_CHECK int mwl_worklist_check_item(const mwl_ds *item, unsigned flags, mwl_item_problem *out);
/* "missing-key" etc. for a code; "unknown" for a code not listed. */
MWL_API const char *mwl_item_problem_name(mwl_item_code code);

#endif
