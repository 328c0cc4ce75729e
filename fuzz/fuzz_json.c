/* Fuzz target: decode the input as a DICOM JSON object (PS3.18 F.2), in
 * both character set modes. When it decodes, encode it (dicom/json.c) and
 * decode that again: it must decode, to a data set equal to the first in
 * the JSON model (tests/harness/ds_equiv.h). One more round must give the
 * same JSON byte for byte (not the first: an IS or DS given as a string,
 * such as "-1e3", is kept as written, written as that JSON number, and
 * then read back as a number, -1000). Any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/json.h"
#include "ds_equiv.h"
#include "json_compact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(const mwl_ds *ds, mwl_wbuf *out)
{
    if (mwl_ds_encode_json(ds, NULL, out, NULL) != MWL_OK)
        abort();
}

/* Decodes the encoder's output of `prev`: it must decode, to the same. */
static mwl_ds *again(const mwl_wbuf *json, mwl_arena *arena, const mwl_json_decode_options *opt,
                     const mwl_ds *prev)
{
    mwl_ds *ds = NULL;
    mwl_diag diag;
    if (mwl_ds_decode_json((const char *)json->data, json->len, arena, opt, &ds, &diag) != MWL_OK) {
        fprintf(stderr, "the encoder's JSON does not decode: %s\n%.*s\n", diag.msg, (int)json->len,
                (const char *)json->data);
        abort();
    }
    char why[200] = "";
    if (!ds_equiv(prev, ds, why, sizeof why)) {
        fprintf(stderr, "not the same after encoding and decoding: %s\n", why);
        abort();
    }
    return ds;
}

static void check(const uint8_t *data, size_t size, bool keep)
{
    mwl_json_decode_options opt;
    mwl_json_decode_options_init(&opt);
    opt.keep_charset = keep;
    opt.max_bytes = (size_t)1 << 20; /* keep each run small and fast */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *a = NULL, *b;
    if (mwl_ds_decode_json((const char *)data, size, &arena, &opt, &a, NULL) != MWL_OK) {
        mwl_arena_clear(&arena);
        return;
    }
    mwl_wbuf y, z, w;
    mwl_wbuf_init(&y, NULL);
    mwl_wbuf_init(&z, NULL);
    mwl_wbuf_init(&w, NULL);
    opt.max_bytes = 0;
    opt.max_bytes--; /* what we wrote may be longer than the input */
    if (!json_paths_agree(a))
        abort();
    encode(a, &y);
    b = again(&y, &arena, &opt, a);
    encode(b, &z);
    mwl_ds *c = again(&z, &arena, &opt, b);
    encode(c, &w);
    if (z.len != w.len || memcmp(z.data, w.data, z.len) != 0) {
        fprintf(stderr, "encoding is not stable:\n%.*s\n%.*s\n", (int)z.len, (const char *)z.data, (int)w.len,
                (const char *)w.data);
        abort();
    }
    mwl_wbuf_clear(&y);
    mwl_wbuf_clear(&z);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, false);
    check(data, size, true);
    return 0;
}
