/* Test helpers for the worklist tests: data sets written as short text.
 *
 *   "PatientName=DOE^JOHN|PatientID=123|ScheduledProcedureStepSequence[Modality=CT][Modality=MR]"
 *
 * Elements are separated by '|'. A name is a PS3.6 keyword or a tag as 8 hex
 * digits ("00091001"); ":VR" after it overrides the dictionary VR. "=value"
 * gives a value (string VRs are padded to even length; US/UL take a decimal
 * number; UN takes the bytes as they are). "[...]" after a name is a
 * sequence whose items follow one another ("[a][b]"); "[]" is one empty
 * item, "<>" a sequence with no items. Values run to the next '|' or ']'.
 * Test code only: a malformed spec aborts. */
#ifndef MWL_WORKLIST_WL_TEST_UTIL_H
#define MWL_WORKLIST_WL_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dict.h"
#include "worklist/worklist.h"

static inline void wlt_die(const char *what, const char *spec)
{
    fprintf(stderr, "bad test data set spec (%s): %s\n", what, spec);
    abort();
}

static inline size_t wlt_parse_items(mwl_ds *ds, const char *s, size_t pos);

static inline size_t wlt_parse_elem(mwl_ds *ds, const char *s, size_t pos)
{
    char name[80];
    size_t n = 0;
    while (s[pos] && strchr("=[<:|]", s[pos]) == NULL) {
        if (n + 1 >= sizeof name)
            wlt_die("name too long", s);
        name[n++] = s[pos++];
    }
    name[n] = '\0';
    uint32_t tag;
    const mwl_dict_entry *d = mwl_dict_find_keyword(name);
    if (d) {
        tag = d->tag;
    } else {
        char *end;
        unsigned long v = strtoul(name, &end, 16);
        if (n != 8 || *end)
            wlt_die("unknown keyword", name);
        tag = (uint32_t)v;
    }
    mwl_vr vr = mwl_dict_vr(tag);
    if (s[pos] == ':') {
        vr = mwl_vr_from_code((const uint8_t *)s + pos + 1);
        if (vr == MWL_VR_NONE)
            wlt_die("bad VR", s + pos);
        pos += 3;
    }
    if (s[pos] == '<') {
        if (s[pos + 1] != '>' || mwl_ds_set_seq(ds, tag, NULL) != MWL_OK)
            wlt_die("bad empty sequence", s);
        return pos + 2;
    }
    if (s[pos] == '[') {
        if (mwl_ds_set_seq(ds, tag, NULL) != MWL_OK)
            wlt_die("set_seq", s);
        while (s[pos] == '[') {
            mwl_ds *item;
            if (mwl_ds_add_item(ds, tag, &item) != MWL_OK)
                wlt_die("add_item", s);
            pos = wlt_parse_items(item, s, pos + 1);
            if (s[pos] != ']')
                wlt_die("missing ]", s);
            pos++;
        }
        return pos;
    }
    if (s[pos] != '=')
        wlt_die("expected = [ or <", s + pos);
    pos++;
    size_t start = pos;
    while (s[pos] && s[pos] != '|' && s[pos] != ']')
        pos++;
    char value[1024];
    size_t len = pos - start;
    if (len >= sizeof value)
        wlt_die("value too long", s);
    memcpy(value, s + start, len);
    value[len] = '\0';
    int rc;
    if (vr == MWL_VR_US && len)
        rc = mwl_ds_set_u16(ds, tag, (uint16_t)strtoul(value, NULL, 10));
    else if (vr == MWL_VR_UL && len)
        rc = mwl_ds_set_u32(ds, tag, (uint32_t)strtoul(value, NULL, 10));
    else if (mwl_vr_is_string(vr))
        rc = mwl_ds_set_str(ds, tag, vr, value);
    else
        rc = mwl_ds_set(ds, tag, vr, value, len);
    if (rc != MWL_OK)
        wlt_die("set value", s);
    return pos;
}

static inline size_t wlt_parse_items(mwl_ds *ds, const char *s, size_t pos)
{
    while (s[pos] && s[pos] != ']') {
        pos = wlt_parse_elem(ds, s, pos);
        if (s[pos] == '|')
            pos++;
    }
    return pos;
}

/* Builds the data set described by `spec` in `arena`. */
static inline mwl_ds *wlt_ds(mwl_arena *arena, const char *spec)
{
    mwl_ds *ds;
    if (mwl_ds_new(arena, NULL, &ds) != MWL_OK)
        wlt_die("ds_new", spec);
    if (spec[wlt_parse_items(ds, spec, 0)] != '\0')
        wlt_die("trailing ]", spec);
    return ds;
}

/* Parses `identifier` and matches `item` (expansion 0 .. n-1); returns the
 * number of expansions that matched, or -1 when parsing failed. */
static inline int wlt_count_matches(const char *identifier, const char *item, const mwl_match_opts *opts)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_query *q;
    mwl_diag diag;
    int hits = -1;
    mwl_ds *id = wlt_ds(&arena, identifier);
    mwl_ds *it = wlt_ds(&arena, item);
    if (mwl_query_parse(id, &arena, &q, &diag) == MWL_OK) {
        mwl_matcher m;
        mwl_matcher_init(&m, opts, NULL);
        hits = 0;
        for (size_t i = 0, n = mwl_expand_count(it); i < n; i++) {
            bool matched = false;
            if (mwl_match_dataset(&m, q, it, i, &matched, &diag) != MWL_OK) {
                hits = -2;
                break;
            }
            hits += matched;
        }
        mwl_matcher_clear(&m);
    } else {
        fprintf(stderr, "  parse failed: %s\n", diag.msg);
    }
    mwl_arena_clear(&arena);
    return hits;
}

/* ---- tests/vectors/query/match.tsv ---------------------------------------
 *
 * One key, one stored value per row: clause, key path ("A>B"), options,
 * query charset, query, stored charset, stored value, expect, note. Values:
 * %XX = a byte, (empty) = zero length, (absent) = no element, "-" charset =
 * none. Shared by match_test (parse + match) and store_narrow_test (every
 * match is a candidate of the store's narrowing). */

enum { WLT_VECTOR_FIELDS = 9 };

static inline size_t wlt_unpercent(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; s[i] && n + 1 < cap; i++) {
        if (s[i] == '%' && s[i + 1] && s[i + 2]) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[n++] = (char)strtoul(hex, NULL, 16);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* A data set with `value` at the keyword path "A>B" (the items created on
 * the way) and (0008,0005) = `charset` unless "-". */
static inline mwl_ds *wlt_vector_ds(mwl_arena *arena, const char *charset, const char *path,
                                    const char *value)
{
    mwl_ds *ds, *cur;
    if (mwl_ds_new(arena, NULL, &ds) != MWL_OK)
        wlt_die("ds_new", path);
    char buf[512];
    if (strcmp(charset, "-") != 0 &&
        mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, charset) != MWL_OK)
        wlt_die("charset", charset);
    cur = ds;
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    char *save = NULL;
    char *part = strtok_r(p, ">", &save);
    while (part) {
        const mwl_dict_entry *d = mwl_dict_find_keyword(part);
        if (!d)
            wlt_die("unknown keyword", part);
        char *next = strtok_r(NULL, ">", &save);
        int rc = MWL_OK;
        if (next) {
            mwl_ds *item;
            rc = mwl_ds_add_item(cur, d->tag, &item);
            cur = item;
        } else if (strcmp(value, "(absent)") == 0) {
            /* nothing */
        } else if (strcmp(value, "(empty)") == 0) {
            rc = mwl_ds_set(cur, d->tag, (mwl_vr)d->vr, NULL, 0);
        } else if (d->vr == MWL_VR_US) {
            rc = mwl_ds_set_u16(cur, d->tag, (uint16_t)atoi(value));
        } else {
            wlt_unpercent(value, buf, sizeof buf);
            rc = mwl_ds_set_str(cur, d->tag, (mwl_vr)d->vr, buf);
        }
        if (rc != MWL_OK)
            wlt_die("set value", value);
        part = next;
    }
    return ds;
}

/* Calls `row(line, fields, user)` for every vector of match.tsv; returns
 * the number of rows, or -1 when the file cannot be read (MWL_SOURCE_DIR
 * unset or wrong) or a row has too few fields. */
static inline int wlt_match_vectors(void (*row)(int line, char **fields, void *user), void *user)
{
    const char *root = getenv("MWL_SOURCE_DIR");
    if (!root)
        return -1;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/vectors/query/match.tsv", root);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char line[2048];
    int n = 0, rows = 0;
    while (fgets(line, sizeof line, fp)) {
        n++;
        if (n <= 2 || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *fields[WLT_VECTOR_FIELDS] = {0};
        int k = 0;
        char *s = line;
        while (k < WLT_VECTOR_FIELDS) {
            fields[k++] = s;
            char *tab = strchr(s, '\t');
            if (!tab)
                break;
            *tab = '\0';
            s = tab + 1;
        }
        if (k < 8) {
            fclose(fp);
            return -1;
        }
        row(n, fields, user);
        rows++;
    }
    fclose(fp);
    return rows;
}

#endif
