/* MLLP framing (HL7 Implementation Guide App. C; spec/hl7.md §1): a frame
 * is 0x0B, the message, 0x1C 0x0D.
 *
 * The receiver follows the practice of §1, tolerant where the meaning is
 * clear:
 *  - bytes outside a frame are skipped until a start block (0x0B), so a
 *    stray CR after an end block or noise between frames resynchronises;
 *  - a start block inside an open frame drops what was held and starts
 *    the frame anew (the sender gave up on the previous one);
 *  - the end block is 0x1C; the 0x0D that should follow it is consumed
 *    when it comes next, in this call or at the start of the next one, and
 *    anything else after the 0x1C is left for the next frame's resync.
 *    Senders that omit the CR are common, and since a payload can never
 *    hold 0x1C, the 0x1C alone is unambiguous;
 *  - a frame longer than `max` is reported once (MWL_E_LIMIT) when its
 *    first excess byte arrives; the rest up to its end block is discarded
 *    without being held. */
#include "hl7/hl7.h"

#include <string.h>

#define VT 0x0B
#define FS 0x1C
#define CR 0x0D

void mwl_mllp_init(mwl_mllp *f, size_t max_payload, const mwl_mem *mem)
{
    memset(f, 0, sizeof *f);
    f->max = max_payload;
    f->mem = mem;
}

void mwl_mllp_clear(mwl_mllp *f)
{
    if (!f)
        return;
    mwl_mem_free(f->mem, f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
    f->in_frame = f->skipping = f->saw_fs = false;
}

bool mwl_mllp_partial(const mwl_mllp *f)
{
    return f->in_frame;
}

/* Makes room for one more byte of payload (len < max). */
static bool grow(mwl_mllp *f)
{
    if (f->len < f->cap)
        return true;
    size_t ncap = f->cap ? f->cap * 2 : 1024;
    if (ncap > f->max || ncap < f->cap)
        ncap = f->max;
    uint8_t *n = mwl_mem_realloc(f->mem, f->buf, ncap);
    if (!n)
        return false;
    f->buf = n;
    f->cap = ncap;
    return true;
}

int mwl_mllp_feed(mwl_mllp *f, const uint8_t *data, size_t len, size_t *consumed, const uint8_t **payload,
                  size_t *payload_len)
{
    *payload = NULL;
    *payload_len = 0;
    size_t i = 0;
    /* The payload handed out last time is no longer needed. */
    if (!f->in_frame)
        f->len = 0;
    if (f->saw_fs && len > 0) {
        f->saw_fs = false;
        if (data[0] == CR)
            i = 1;
    }
    while (i < len) {
        uint8_t b = data[i++];
        if (!f->in_frame) {
            if (b == VT) {
                f->in_frame = true;
                f->skipping = false;
                f->len = 0;
            }
            continue;
        }
        if (b == VT) {
            f->len = 0;
            f->skipping = false;
            continue;
        }
        if (b == FS) {
            f->in_frame = false;
            if (i < len) {
                if (data[i] == CR)
                    i++;
            } else {
                f->saw_fs = true;
            }
            if (f->skipping) {
                f->skipping = false;
                continue;
            }
            *consumed = i;
            *payload = f->buf ? f->buf : (const uint8_t *)"";
            *payload_len = f->len;
            return MWL_OK;
        }
        if (f->skipping)
            continue;
        if (f->len >= f->max) {
            f->skipping = true;
            f->len = 0;
            *consumed = i;
            return MWL_E_LIMIT;
        }
        if (!grow(f)) {
            /* Dropped like an oversize frame: the caller answers or closes. */
            f->skipping = true;
            f->len = 0;
            *consumed = i;
            return MWL_E_NOMEM;
        }
        f->buf[f->len++] = b;
    }
    *consumed = i;
    return MWL_AGAIN;
}

void mwl_mllp_wrap(const void *payload, size_t len, mwl_wbuf *out)
{
    mwl_wbuf_put_u8(out, VT);
    mwl_wbuf_put(out, payload, len);
    mwl_wbuf_put_u8(out, FS);
    mwl_wbuf_put_u8(out, CR);
}
