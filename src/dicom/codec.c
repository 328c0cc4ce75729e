/* Data set decoding and encoding in the transfer syntaxes of codec.h
 * (PS3.5 §7, §10, Annex A). The decoder is a recursive descent over
 * bounded readers: a defined-length sequence or item gets a sub-reader
 * holding exactly its bytes, so no length read from the input can make it
 * look past the enclosing item, sequence or buffer. The encoder writes
 * placeholder lengths for sequences and items and patches them once their
 * content is written.
 *
 * Choices where the standard leaves a reader room:
 * - Elements out of tag order are accepted and kept sorted; a later
 *   duplicate of a tag replaces the earlier one (mwl_ds_set semantics), so
 *   the first copy of a repeated element is lost, never a crash.
 * - An explicit VR code that is not in PS3.5 Table 6.2-1 is MWL_E_MALFORMED:
 *   the length field's size depends on it, so nothing after it can be read.
 * - Odd value lengths are kept as read; the encoder pads them (§7.1.1).
 * - Undefined length is a sequence for SQ, and for UN (explicit) or an
 *   unknown tag (implicit) with Implicit VR LE items (§6.2.2); on any other
 *   VR (OB/OW would be encapsulated pixel data) it is MWL_E_MALFORMED.
 * - The length fields of delimitation items are not checked (they should
 *   be 0 and carry nothing).
 * - Recursion follows sequence nesting and stops at lim->max_depth. */
#include "dicom/codec.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "dicom/dict.h"

#define UNDEFINED_LENGTH 0xFFFFFFFFu
/* Largest defined length: 0xFFFFFFFF means "undefined" (PS3.5 §7.1.1). */
#define MAX_DEFINED_LENGTH 0xFFFFFFFEu
#define ZCHUNK 65536u

/* ---- transfer syntaxes ------------------------------------------------- */

static const char *const ts_uids[MWL_TS_COUNT] = {
    [MWL_TS_IMPLICIT_LE] = MWL_UID_ImplicitVRLittleEndian,
    [MWL_TS_EXPLICIT_LE] = MWL_UID_ExplicitVRLittleEndian,
    [MWL_TS_EXPLICIT_BE] = MWL_UID_ExplicitVRBigEndian,
    [MWL_TS_DEFLATED_LE] = MWL_UID_DeflatedExplicitVRLittleEndian,
};

const char *mwl_ts_uid(mwl_ts ts)
{
    if ((unsigned)ts >= MWL_TS_COUNT)
        return NULL;
    return ts_uids[ts];
}

int mwl_ts_from_uid(const char *uid, size_t len, mwl_ts *out)
{
    if (!uid)
        return MWL_E_UNSUPPORTED;
    /* UI values are NUL padded (PS3.5 §6.2); some writers pad with spaces. */
    while (len && (uid[len - 1] == '\0' || uid[len - 1] == ' '))
        len--;
    for (int ts = 0; ts < MWL_TS_COUNT; ts++) {
        if (strlen(ts_uids[ts]) == len && memcmp(ts_uids[ts], uid, len) == 0) {
            *out = (mwl_ts)ts;
            return MWL_OK;
        }
    }
    return MWL_E_UNSUPPORTED;
}

void mwl_decode_limits_init(mwl_decode_limits *lim)
{
    lim->max_depth = 16;
    lim->max_elements = 100000;
    lim->max_inflated = (size_t)64 << 20;
}

/* How the bytes of one nesting level are laid out. The item and delimiter
 * tags always use the syntax's byte order but never carry a VR (§7.5). */
typedef struct syntax {
    bool explicit_vr;
    bool big_endian;
} syntax;

static const syntax IMPLICIT_LE = {false, false};

static syntax syntax_of(mwl_ts ts)
{
    syntax sx = {ts != MWL_TS_IMPLICIT_LE, ts == MWL_TS_EXPLICIT_BE};
    return sx;
}

/* Reverses each `word`-byte unit of the first len - len % word bytes; a
 * trailing partial word (odd-length input) is left as is. */
static void swap_words(uint8_t *p, size_t len, unsigned word)
{
    if (word < 2)
        return;
    for (size_t i = 0; i + word <= len; i += word) {
        for (unsigned a = 0, b = word - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
    }
}

/* ---- decoder ----------------------------------------------------------- */

typedef struct decoder {
    mwl_arena *arena;
    mwl_decode_limits lim;
    mwl_diag *diag;
    const uint8_t *base; /* start of the bytes being parsed, for offsets */
    size_t elements;     /* elements + items so far */
    bool inflated;       /* offsets are into the inflated stream */
} decoder;

static size_t offset_of(const decoder *d, const mwl_rd *rd)
{
    return (size_t)(rd->data - d->base) + rd->pos;
}

static int fail(decoder *d, int status, size_t offset, uint32_t tag, const char *fmt, ...) MWL_PRINTF(5, 6);

static int fail(decoder *d, int status, size_t offset, uint32_t tag, const char *fmt, ...)
{
    if (d->diag) {
        char msg[sizeof d->diag->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        mwl_diag_set(d->diag, offset, tag, "%s%s", msg, d->inflated ? " (offset in inflated data)" : "");
    }
    return status;
}

static bool read_u16(mwl_rd *rd, bool be, uint16_t *v)
{
    return be ? mwl_rd_u16be(rd, v) : mwl_rd_u16le(rd, v);
}

static bool read_u32(mwl_rd *rd, bool be, uint32_t *v)
{
    return be ? mwl_rd_u32be(rd, v) : mwl_rd_u32le(rd, v);
}

/* Reads a tag and a 32-bit length, as item and delimiter headers are laid
 * out. Leaves the reader unchanged when fewer than 8 bytes remain. */
static bool read_item_header(mwl_rd *rd, bool be, uint32_t *tag, uint32_t *length)
{
    if (!mwl_rd_need(rd, 8))
        return false;
    uint16_t group = 0, element = 0;
    (void)read_u16(rd, be, &group);
    (void)read_u16(rd, be, &element);
    (void)read_u32(rd, be, length);
    *tag = MWL_TAG(group, element);
    return true;
}

static int count_element(decoder *d, size_t offset, uint32_t tag)
{
    if (++d->elements > d->lim.max_elements)
        return fail(d, MWL_E_LIMIT, offset, tag, "more than %zu elements and items", d->lim.max_elements);
    return MWL_OK;
}

static int parse_dataset(decoder *d, mwl_rd *rd, mwl_ds *ds, syntax sx, size_t depth, bool until_delim,
                         uint32_t seq_tag);

/* The items of sequence `tag` (its element already read, reader at the
 * first item). `sx` is the syntax of the items: the enclosing one for SQ,
 * Implicit VR LE for an undefined-length UN (PS3.5 §6.2.2, CP-246).
 * A defined-length sequence arrives as a reader holding exactly its bytes. */
static int parse_sequence(decoder *d, mwl_rd *rd, mwl_ds *ds, uint32_t tag, syntax sx, size_t depth,
                          bool undefined, size_t at)
{
    if (depth > d->lim.max_depth)
        return fail(d, MWL_E_LIMIT, at, tag, "sequences nested deeper than %zu", d->lim.max_depth);
    int rc = mwl_ds_set_seq(ds, tag, NULL);
    if (rc != MWL_OK)
        return fail(d, rc, at, tag, "out of memory");
    for (;;) {
        if (!undefined && mwl_rd_left(rd) == 0)
            return MWL_OK;
        size_t item_at = offset_of(d, rd);
        uint32_t item_tag, length;
        if (!read_item_header(rd, sx.big_endian, &item_tag, &length))
            return fail(d, MWL_E_MALFORMED, item_at, tag,
                        undefined ? "sequence ends without a sequence delimiter" : "truncated item header");
        if (item_tag == MWL_TAG_SEQ_DELIM && undefined)
            return MWL_OK; /* its length should be 0; nothing depends on it */
        if (item_tag != MWL_TAG_ITEM)
            return fail(d, MWL_E_MALFORMED, item_at, tag,
                        "expected an item (FFFE,E000) in the sequence, found (%04X,%04X)",
                        MWL_TAG_GROUP(item_tag), MWL_TAG_ELEMENT(item_tag));
        rc = count_element(d, item_at, tag);
        if (rc != MWL_OK)
            return rc;
        mwl_ds *item;
        rc = mwl_ds_add_item(ds, tag, &item);
        if (rc != MWL_OK)
            return fail(d, rc, item_at, tag, "out of memory");
        if (length == UNDEFINED_LENGTH) {
            rc = parse_dataset(d, rd, item, sx, depth, true, tag);
        } else {
            if (!mwl_rd_need(rd, length))
                return fail(d, MWL_E_MALFORMED, item_at, tag,
                            "item length %" PRIu32 " exceeds the %zu bytes left", length, mwl_rd_left(rd));
            mwl_rd sub;
            mwl_rd_init(&sub, mwl_rd_ptr(rd), length);
            rc = parse_dataset(d, &sub, item, sx, depth, false, tag);
            (void)mwl_rd_skip(rd, length);
        }
        if (rc != MWL_OK)
            return rc;
    }
}

/* Copies a value into the arena, in little-endian storage form. */
static int store_value(decoder *d, mwl_ds *ds, uint32_t tag, mwl_vr vr, const uint8_t *src, uint32_t length,
                       bool be, size_t at)
{
    uint8_t *copy = NULL;
    if (length) {
        copy = mwl_arena_alloc(d->arena, length);
        if (!copy)
            return fail(d, MWL_E_NOMEM, at, tag, "out of memory");
        memcpy(copy, src, length);
        if (be)
            swap_words(copy, length, mwl_vr_get_info(vr)->word);
    }
    int rc = mwl_ds_set_ref(ds, tag, vr, copy, length);
    if (rc != MWL_OK)
        return fail(d, rc, at, tag, "cannot store the element");
    return MWL_OK;
}

/* One element whose tag (at offset `at`) has been read. */
static int parse_element(decoder *d, mwl_rd *rd, mwl_ds *ds, syntax sx, size_t depth, uint32_t tag, size_t at)
{
    mwl_vr vr;
    uint32_t length;
    if (sx.explicit_vr) {
        const uint8_t *code;
        if (!mwl_rd_bytes(rd, 2, &code))
            return fail(d, MWL_E_MALFORMED, at, tag, "truncated element header");
        vr = mwl_vr_from_code(code);
        if (vr == MWL_VR_NONE)
            return fail(d, MWL_E_MALFORMED, at, tag, "unknown VR code %02X %02X", code[0], code[1]);
        if (mwl_vr_get_info(vr)->long_form) {
            /* PS3.5 Table 7.1-1: 2 reserved bytes, then a 32-bit length. */
            if (!mwl_rd_skip(rd, 2) || !read_u32(rd, sx.big_endian, &length))
                return fail(d, MWL_E_MALFORMED, at, tag, "truncated element header");
        } else {
            uint16_t short_length;
            if (!read_u16(rd, sx.big_endian, &short_length))
                return fail(d, MWL_E_MALFORMED, at, tag, "truncated element header");
            length = short_length;
        }
    } else {
        if (!read_u32(rd, false, &length))
            return fail(d, MWL_E_MALFORMED, at, tag, "truncated element header");
        vr = mwl_dict_vr(tag);
    }
    int rc = count_element(d, at, tag);
    if (rc != MWL_OK)
        return rc;

    /* Group lengths other than 0000/0002 are retired and go stale when a
     * data set is edited (codec.h). They are checked like any element, then
     * dropped: a value is skipped, a sequence parsed into a scratch item. */
    bool drop = MWL_TAG_ELEMENT(tag) == 0 && MWL_TAG_GROUP(tag) != 0x0000 && MWL_TAG_GROUP(tag) != 0x0002;
    mwl_ds *target = ds;
    if (drop && (vr == MWL_VR_SQ || length == UNDEFINED_LENGTH)) {
        rc = mwl_ds_new(d->arena, ds, &target);
        if (rc != MWL_OK)
            return fail(d, rc, at, tag, "out of memory");
    }

    if (length == UNDEFINED_LENGTH) {
        if (vr == MWL_VR_SQ)
            return parse_sequence(d, rd, target, tag, sx, depth + 1, true, at);
        /* An unknown (implicit) or UN (explicit) element of undefined length
         * is a sequence whose content is Implicit VR LE (PS3.5 §6.2.2). */
        if (vr == MWL_VR_UN)
            return parse_sequence(d, rd, target, tag, IMPLICIT_LE, depth + 1, true, at);
        /* OB/OW undefined length is encapsulated pixel data, which only
         * encapsulated (compressed) transfer syntaxes use (PS3.5 §A.4). */
        return fail(d, MWL_E_MALFORMED, at, tag, "undefined length on a %s element", mwl_vr_code(vr));
    }
    if (!mwl_rd_need(rd, length))
        return fail(d, MWL_E_MALFORMED, at, tag, "value length %" PRIu32 " exceeds the %zu bytes left",
                    length, mwl_rd_left(rd));
    if (vr == MWL_VR_SQ) {
        mwl_rd sub;
        mwl_rd_init(&sub, mwl_rd_ptr(rd), length);
        rc = parse_sequence(d, &sub, target, tag, sx, depth + 1, false, at);
        (void)mwl_rd_skip(rd, length);
        return rc;
    }
    const uint8_t *value;
    (void)mwl_rd_bytes(rd, length, &value);
    if (drop)
        return MWL_OK;
    return store_value(d, target, tag, vr, value, length, sx.big_endian, at);
}

/* Elements of one data set until the reader is exhausted (top level or a
 * defined-length item) or, when `until_delim`, an Item Delimitation Item. */
static int parse_dataset(decoder *d, mwl_rd *rd, mwl_ds *ds, syntax sx, size_t depth, bool until_delim,
                         uint32_t seq_tag)
{
    for (;;) {
        if (!until_delim && mwl_rd_left(rd) == 0)
            return MWL_OK;
        size_t at = offset_of(d, rd);
        uint16_t group = 0, element = 0;
        if (!mwl_rd_need(rd, 4)) {
            if (until_delim)
                return fail(d, MWL_E_MALFORMED, at, seq_tag, "item ends without an item delimiter");
            return fail(d, MWL_E_MALFORMED, at, 0, "truncated element header");
        }
        (void)read_u16(rd, sx.big_endian, &group);
        (void)read_u16(rd, sx.big_endian, &element);
        uint32_t tag = MWL_TAG(group, element);
        if (group == 0xFFFE) {
            /* Item, delimiter and reserved tags: none is a data element. */
            uint32_t length;
            if (tag == MWL_TAG_ITEM_DELIM && until_delim) {
                if (!read_u32(rd, sx.big_endian, &length))
                    return fail(d, MWL_E_MALFORMED, at, seq_tag, "truncated item delimiter");
                return MWL_OK;
            }
            return fail(d, MWL_E_MALFORMED, at, tag, "unexpected (%04X,%04X) among data elements", group,
                        element);
        }
        int rc = parse_element(d, rd, ds, sx, depth, tag, at);
        if (rc != MWL_OK)
            return rc;
    }
}

static void *zalloc_mem(void *opaque, uInt items, uInt size)
{
    const mwl_mem *const *mem = opaque;
    if (size && items > SIZE_MAX / size)
        return NULL;
    return mwl_mem_alloc(*mem, (size_t)items * size);
}

static void zfree_mem(void *opaque, void *p)
{
    const mwl_mem *const *mem = opaque;
    mwl_mem_free(*mem, p);
}

/* Raw deflate (RFC 1951, no zlib header: PS3.5 §A.5) into `out`, which
 * holds at most lim->max_inflated bytes. Bytes after the end of the deflate
 * stream (a pad byte to even length, say) are ignored. */
static int inflate_all(decoder *d, const uint8_t *data, size_t len, mwl_wbuf *out)
{
    const mwl_mem *mem = out->mem;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc_mem;
    zs.zfree = zfree_mem;
    zs.opaque = &mem;
    int zr = inflateInit2(&zs, -15);
    if (zr != Z_OK)
        return fail(d, zr == Z_MEM_ERROR ? MWL_E_NOMEM : MWL_E_INTERNAL, 0, 0, "inflateInit2 failed");
    size_t in_left = len;
    const uint8_t *in = data;
    size_t max = d->lim.max_inflated;
    int rc = MWL_OK;
    for (;;) {
        if (zs.avail_in == 0 && in_left) {
            uInt n = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            zs.next_in = in;
            zs.avail_in = n;
            in += n;
            in_left -= n;
        }
        /* Room for one byte past the limit, to tell "exactly max" from "more". */
        size_t room = max - out->len < ZCHUNK ? max - out->len + 1 : ZCHUNK;
        uint8_t *p = mwl_wbuf_reserve(out, room);
        if (!p) {
            rc = fail(d, out->status, 0, 0, "out of memory inflating");
            break;
        }
        zs.next_out = p;
        zs.avail_out = (uInt)room;
        zr = inflate(&zs, Z_NO_FLUSH);
        out->len += room - zs.avail_out;
        if (out->len > max) {
            rc = fail(d, MWL_E_LIMIT, len - in_left - zs.avail_in, 0, "inflated data exceeds %zu bytes", max);
            break;
        }
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_MEM_ERROR) {
            rc = fail(d, MWL_E_NOMEM, 0, 0, "out of memory inflating");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = fail(d, MWL_E_MALFORMED, len - in_left - zs.avail_in, 0, "bad deflate data: %s",
                      zs.msg ? zs.msg : "error");
            break;
        }
        if (zs.avail_in == 0 && in_left == 0 && zs.avail_out != 0) {
            rc = fail(d, MWL_E_MALFORMED, len, 0, "deflate data ends before the end of its stream");
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

int mwl_ds_decode(const uint8_t *data, size_t len, mwl_ts ts, mwl_arena *arena, const mwl_decode_limits *lim,
                  mwl_ds **out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if ((!data && len) || !arena || !out || (unsigned)ts >= MWL_TS_COUNT) {
        mwl_diag_set(diag, 0, 0, "invalid argument");
        return MWL_E_INVALID;
    }
    decoder d;
    memset(&d, 0, sizeof d);
    d.arena = arena;
    d.diag = diag;
    if (lim)
        d.lim = *lim;
    else
        mwl_decode_limits_init(&d.lim);

    mwl_ds *ds;
    int rc = mwl_ds_new(arena, NULL, &ds);
    if (rc != MWL_OK)
        return fail(&d, rc, 0, 0, "out of memory");

    mwl_wbuf inflated;
    mwl_wbuf_init(&inflated, arena->mem);
    if (ts == MWL_TS_DEFLATED_LE) {
        rc = inflate_all(&d, data, len, &inflated);
        if (rc != MWL_OK) {
            mwl_wbuf_clear(&inflated);
            return rc;
        }
        data = inflated.data;
        len = inflated.len;
        d.inflated = true;
        ts = MWL_TS_EXPLICIT_LE;
    }
    mwl_rd rd;
    mwl_rd_init(&rd, data, len);
    d.base = data;
    rc = parse_dataset(&d, &rd, ds, syntax_of(ts), 0, false, 0);
    /* Values were copied into the arena: the inflated bytes can go. */
    mwl_wbuf_clear(&inflated);
    if (rc != MWL_OK)
        return rc;
    *out = ds;
    return MWL_OK;
}

/* ---- encoder ----------------------------------------------------------- */

static void put_u16(mwl_wbuf *w, bool be, uint16_t v)
{
    if (be)
        mwl_wbuf_put_u16be(w, v);
    else
        mwl_wbuf_put_u16le(w, v);
}

static void put_u32(mwl_wbuf *w, bool be, uint32_t v)
{
    if (be)
        mwl_wbuf_put_u32be(w, v);
    else
        mwl_wbuf_put_u32le(w, v);
}

static void put_tag(mwl_wbuf *w, bool be, uint32_t tag)
{
    put_u16(w, be, MWL_TAG_GROUP(tag));
    put_u16(w, be, MWL_TAG_ELEMENT(tag));
}

/* Writes the length of the bytes from `start` to the end into the 32-bit
 * placeholder at `at`. */
static int patch_length(mwl_wbuf *w, bool be, size_t at, size_t start)
{
    if (w->status != MWL_OK)
        return w->status;
    size_t n = w->len - start;
    if (n > MAX_DEFINED_LENGTH)
        return MWL_E_LIMIT;
    if (be)
        mwl_store_u32be(w->data + at, (uint32_t)n);
    else
        mwl_store_u32le(w->data + at, (uint32_t)n);
    return MWL_OK;
}

static int encode_dataset(mwl_wbuf *w, const mwl_ds *ds, syntax sx);

static int encode_sequence(mwl_wbuf *w, const mwl_elem *e, syntax sx)
{
    bool be = sx.big_endian;
    /* In Implicit VR a reader learns "sequence" from the dictionary. When
     * the dictionary does not say SQ (a private sequence, or one read from
     * an undefined-length UN), only an undefined length makes the reader
     * parse it as a sequence again (PS3.5 §6.2.2, §7.5.1). */
    bool undefined = !sx.explicit_vr && mwl_dict_vr(e->tag) != MWL_VR_SQ;
    put_tag(w, be, e->tag);
    if (sx.explicit_vr) {
        mwl_wbuf_put(w, "SQ\0\0", 4);
    }
    size_t seq_len_at = w->len;
    put_u32(w, be, undefined ? UNDEFINED_LENGTH : 0);
    size_t seq_start = w->len;
    for (size_t i = 0; i < e->item_count; i++) {
        put_tag(w, be, MWL_TAG_ITEM);
        size_t item_len_at = w->len;
        put_u32(w, be, 0);
        size_t item_start = w->len;
        int rc = encode_dataset(w, e->items[i], sx);
        if (rc != MWL_OK)
            return rc;
        rc = patch_length(w, be, item_len_at, item_start);
        if (rc != MWL_OK)
            return rc;
    }
    if (undefined) {
        put_tag(w, be, MWL_TAG_SEQ_DELIM);
        put_u32(w, be, 0);
        return w->status;
    }
    return patch_length(w, be, seq_len_at, seq_start);
}

static int encode_element(mwl_wbuf *w, const mwl_elem *e, syntax sx)
{
    bool be = sx.big_endian;
    if (MWL_TAG_GROUP(e->tag) == 0xFFFE || e->vr == MWL_VR_NONE || (unsigned)e->vr >= MWL_VR_COUNT)
        return MWL_E_INVALID;
    if (e->vr == MWL_VR_SQ)
        return encode_sequence(w, e, sx);
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    /* PS3.5 §7.1.1: value fields have even length; length <= 0xFFFFFFFE
     * (mwl_ds_set), so the padded length still fits in 32 bits. */
    size_t padded = (size_t)e->length + (e->length & 1u);
    put_tag(w, be, e->tag);
    if (sx.explicit_vr) {
        mwl_wbuf_put(w, info->code, 2);
        if (info->long_form) {
            mwl_wbuf_put(w, "\0\0", 2);
            put_u32(w, be, (uint32_t)padded);
        } else {
            /* A 16-bit length field cannot say more (PS3.5 Table 7.1-2). */
            if (padded > 0xFFFFu)
                return MWL_E_INVALID;
            put_u16(w, be, (uint16_t)padded);
        }
    } else {
        put_u32(w, false, (uint32_t)padded);
    }
    uint8_t *p = mwl_wbuf_reserve(w, padded);
    if (!p)
        return w->status;
    if (e->length)
        memcpy(p, e->value, e->length);
    if (padded != e->length)
        p[e->length] = info->pad;
    if (be)
        swap_words(p, padded, info->word);
    w->len += padded;
    return MWL_OK;
}

static int encode_dataset(mwl_wbuf *w, const mwl_ds *ds, syntax sx)
{
    size_t n = mwl_ds_count(ds);
    for (size_t i = 0; i < n; i++) {
        int rc = encode_element(w, mwl_ds_at(ds, i), sx);
        if (rc != MWL_OK)
            return rc;
    }
    return w->status;
}

/* Appends the raw deflate of `data` to `out` (PS3.5 §A.5). */
static int deflate_append(const uint8_t *data, size_t len, mwl_wbuf *out)
{
    const mwl_mem *mem = out->mem;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc_mem;
    zs.zfree = zfree_mem;
    zs.opaque = &mem;
    int zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? MWL_E_NOMEM : MWL_E_INTERNAL;
    size_t in_left = len;
    const uint8_t *in = data;
    int rc = MWL_OK;
    for (;;) {
        if (zs.avail_in == 0 && in_left) {
            uInt n = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            zs.next_in = in;
            zs.avail_in = n;
            in += n;
            in_left -= n;
        }
        uint8_t *p = mwl_wbuf_reserve(out, ZCHUNK);
        if (!p) {
            rc = out->status;
            break;
        }
        zs.next_out = p;
        zs.avail_out = ZCHUNK;
        zr = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
        out->len += ZCHUNK - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = MWL_E_INTERNAL;
            break;
        }
    }
    deflateEnd(&zs);
    return rc;
}

int mwl_ds_encode(const mwl_ds *ds, mwl_ts ts, mwl_wbuf *out)
{
    if (!ds || !out || (unsigned)ts >= MWL_TS_COUNT)
        return MWL_E_INVALID;
    if (out->status != MWL_OK)
        return out->status;
    size_t start = out->len;
    int rc;
    if (ts == MWL_TS_DEFLATED_LE) {
        mwl_wbuf plain;
        mwl_wbuf_init(&plain, out->mem);
        rc = encode_dataset(&plain, ds, syntax_of(MWL_TS_EXPLICIT_LE));
        if (rc == MWL_OK)
            rc = deflate_append(plain.data, plain.len, out);
        /* PS3.5 A.5: a deflated stream of odd length gets one trailing 00H,
         * so the encoding is even like every other (PDV fragments must be,
         * PS3.8 E.1); inflating stops before it. */
        if (rc == MWL_OK && ((out->len - start) & 1u))
            mwl_wbuf_put_u8(out, 0);
        mwl_wbuf_clear(&plain);
    } else {
        rc = encode_dataset(out, ds, syntax_of(ts));
    }
    if (rc == MWL_OK)
        rc = out->status;
    /* Leave no half-written data set behind (the status of a failed
     * allocation stays sticky in `out`, as buf.h promises). */
    if (rc != MWL_OK && out->len > start)
        out->len = start;
    return rc;
}
