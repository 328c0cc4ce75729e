/* The JSON encoder's two paths must agree: compact output (where short
 * ASCII strings take the fast path in dicom/json.c) and pretty-printed
 * output (always the general path) are the same text once the whitespace
 * between tokens is removed. Used by json_test, fuzz_json and
 * fuzz_dataset. */
#ifndef MWL_TEST_JSON_COMPACT_H
#define MWL_TEST_JSON_COMPACT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "dicom/json.h"

/* `json` without the spaces and line breaks outside its strings. */
static void json_compact_strip(const uint8_t *json, size_t len, mwl_wbuf *out)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = json[i];
        if (in_string) {
            mwl_wbuf_put_u8(out, c);
            if (c == '\\' && i + 1 < len)
                mwl_wbuf_put_u8(out, json[++i]);
            else if (c == '"')
                in_string = false;
        } else if (c != ' ' && c != '\n') {
            mwl_wbuf_put_u8(out, c);
            in_string = c == '"';
        }
    }
}

/* True when encoding `ds` compact and with indentation gives the same
 * JSON apart from whitespace (and the same status); prints both if not. */
static bool json_paths_agree(const mwl_ds *ds)
{
    mwl_json_options pretty;
    mwl_json_options_init(&pretty);
    pretty.indent = 2;
    mwl_wbuf a, b, c;
    mwl_wbuf_init(&a, NULL);
    mwl_wbuf_init(&b, NULL);
    mwl_wbuf_init(&c, NULL);
    mwl_json_report ra, rb;
    int rc_a = mwl_ds_encode_json(ds, NULL, &a, &ra);
    int rc_b = mwl_ds_encode_json(ds, &pretty, &b, &rb);
    json_compact_strip(b.data, b.len, &c);
    bool same = rc_a == rc_b && a.status == MWL_OK && c.status == MWL_OK && a.len == c.len &&
                (a.len == 0 || memcmp(a.data, c.data, a.len) == 0) &&
                ra.charset_problems == rb.charset_problems && ra.number_problems == rb.number_problems;
    if (!same)
        fprintf(stderr, "compact and pretty JSON differ:\n%.*s\n%.*s\n", (int)a.len, (const char *)a.data,
                (int)c.len, (const char *)c.data);
    mwl_wbuf_clear(&a);
    mwl_wbuf_clear(&b);
    mwl_wbuf_clear(&c);
    return same;
}

#endif
