/* Fuzz target for hl7/mllp.c. Byte 0 and 1 give the largest payload (0 to
 * 255) and a seed for the chunk sizes; the rest is a stream fed to the
 * framer in chunks of 1 to 16 bytes. Checked: consumed <= len; every OK
 * and LIMIT consumes a byte (progress), AGAIN consumes all; a payload
 * never holds 0x0B or 0x1C and is never longer than the maximum; the
 * frames delivered are exactly those a simple reference reading of the
 * whole stream finds (so chunking changes nothing). */
#include <stdlib.h>
#include <string.h>

#include "hl7/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: the frames and LIMIT reports of the whole stream, as one
 * string of "<len>:" + payload, or "!" for a LIMIT. */
static size_t reference(const uint8_t *d, size_t n, size_t max, uint8_t *out)
{
    size_t o = 0, len = 0;
    bool in = false, skip = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = d[i];
        if (b == 0x0B) {
            in = true;
            skip = false;
            len = 0;
        } else if (!in) {
        } else if (b == 0x1C) {
            in = false;
            if (!skip) {
                out[o++] = '#';
                memcpy(out + o, d + i - len, len);
                o += len;
            }
            skip = false;
        } else if (!skip) {
            if (len == max) {
                out[o++] = '!';
                skip = true;
            } else {
                len++;
            }
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = data[0];
    unsigned seed = data[1];
    const uint8_t *in = data + 2;
    size_t n = size - 2;
    uint8_t *want = malloc(2 * n + 1), *got = malloc(2 * n + 1);
    if (!want || !got)
        abort();
    size_t want_len = reference(in, n, max, want), got_len = 0;

    mwl_mllp f;
    mwl_mllp_init(&f, max, NULL);
    size_t pos = 0;
    while (pos < n) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 16;
        if (chunk > n - pos)
            chunk = n - pos;
        size_t used = (size_t)-1;
        const uint8_t *p;
        size_t pl;
        int rc = mwl_mllp_feed(&f, in + pos, chunk, &used, &p, &pl);
        if (used > chunk)
            abort();
        if (rc == MWL_OK) {
            if (used == 0 || pl > max || (pl && !p) || memchr(p, 0x0B, pl) || memchr(p, 0x1C, pl))
                abort();
            got[got_len++] = '#';
            memcpy(got + got_len, p, pl);
            got_len += pl;
        } else if (rc == MWL_E_LIMIT) {
            if (used == 0)
                abort();
            got[got_len++] = '!';
        } else if (rc != MWL_AGAIN || used != chunk) {
            abort();
        }
        pos += used;
    }
    if (got_len != want_len || memcmp(got, want, got_len) != 0)
        abort();
    /* A stream ending inside a frame says so. */
    (void)mwl_mllp_partial(&f);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_mllp_wrap(in, n, &w);
    if (w.status != MWL_OK || w.len != n + 3)
        abort();
    mwl_wbuf_clear(&w);
    mwl_mllp_clear(&f);
    free(want);
    free(got);
    return 0;
}
