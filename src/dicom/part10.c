/* Part 10 files (PS3.10 §7.1): preamble, "DICM", the File Meta Information
 * (group 0002, always Explicit VR Little Endian), then the data set in the
 * transfer syntax the meta header names. Built on the public codec API only:
 * this file finds where the meta header ends and which syntax follows, and
 * mwl_ds_decode/mwl_ds_encode do the element work. */
#include "dicom/codec.h"

#include <stdbool.h>
#include <string.h>

#include "dicom/dict.h"

#define PREAMBLE_LENGTH 128u
#define PREFIX_LENGTH 4u

static bool has_prefix(const uint8_t *data, size_t len)
{
    return len >= PREAMBLE_LENGTH + PREFIX_LENGTH &&
           memcmp(data + PREAMBLE_LENGTH, "DICM", PREFIX_LENGTH) == 0;
}

/* Explicit VR codes a raw data set may plausibly start with for `tag`:
 * the dictionary's, or a VR the dictionary cannot rule out (UN, the other
 * half of "US or SS" / "OB or OW" entries, and anything for unknown tags). */
static bool vr_consistent(uint32_t tag, mwl_vr code_vr)
{
    mwl_vr dict_vr = mwl_dict_vr(tag);
    if (code_vr == dict_vr || code_vr == MWL_VR_UN || dict_vr == MWL_VR_UN)
        return true;
    bool code_ambiguous =
        code_vr == MWL_VR_US || code_vr == MWL_VR_SS || code_vr == MWL_VR_OB || code_vr == MWL_VR_OW;
    bool dict_ambiguous =
        dict_vr == MWL_VR_US || dict_vr == MWL_VR_SS || dict_vr == MWL_VR_OB || dict_vr == MWL_VR_OW;
    return code_ambiguous && dict_ambiguous;
}

/* Finds the end of the group 0002 elements starting at `pos` (Explicit VR
 * LE, PS3.10 §7.1), checking each header and length against `len`. A group
 * length (0002,0000) pointing past the end of the input means the file is
 * truncated; one that merely disagrees with the elements is tolerated, as
 * writers have been seen to get it wrong. */
static int scan_meta(const uint8_t *data, size_t len, size_t pos, size_t *end, mwl_diag *diag)
{
    mwl_rd rd;
    mwl_rd_init(&rd, data, len);
    (void)mwl_rd_skip(&rd, pos);
    for (;;) {
        size_t at = rd.pos;
        if (!mwl_rd_need(&rd, 4) || mwl_load_u16le(mwl_rd_ptr(&rd)) != 0x0002)
            break;
        uint16_t group = 0, element = 0;
        const uint8_t *code;
        (void)mwl_rd_u16le(&rd, &group);
        (void)mwl_rd_u16le(&rd, &element);
        uint32_t tag = MWL_TAG(group, element);
        if (!mwl_rd_bytes(&rd, 2, &code)) {
            mwl_diag_set(diag, at, tag, "truncated file meta element header");
            return MWL_E_MALFORMED;
        }
        mwl_vr vr = mwl_vr_from_code(code);
        if (vr == MWL_VR_NONE) {
            mwl_diag_set(diag, at, tag, "unknown VR code %02X %02X in the file meta header", code[0],
                         code[1]);
            return MWL_E_MALFORMED;
        }
        uint32_t length;
        if (mwl_vr_get_info(vr)->long_form) {
            if (!mwl_rd_skip(&rd, 2) || !mwl_rd_u32le(&rd, &length)) {
                mwl_diag_set(diag, at, tag, "truncated file meta element header");
                return MWL_E_MALFORMED;
            }
        } else {
            uint16_t short_length;
            if (!mwl_rd_u16le(&rd, &short_length)) {
                mwl_diag_set(diag, at, tag, "truncated file meta element header");
                return MWL_E_MALFORMED;
            }
            length = short_length;
        }
        if (!mwl_rd_need(&rd, length)) {
            mwl_diag_set(diag, at, tag, "file meta value length %lu exceeds the %zu bytes left",
                         (unsigned long)length, mwl_rd_left(&rd));
            return MWL_E_MALFORMED;
        }
        if (tag == MWL_TAG_FileMetaInformationGroupLength && length == 4) {
            uint32_t group_length = mwl_load_u32le(mwl_rd_ptr(&rd));
            if (group_length > mwl_rd_left(&rd) - 4) {
                mwl_diag_set(diag, at, tag, "file meta group length %lu runs past the end of the file",
                             (unsigned long)group_length);
                return MWL_E_MALFORMED;
            }
        }
        (void)mwl_rd_skip(&rd, length);
    }
    *end = rd.pos;
    return MWL_OK;
}

/* Decodes the data set proper at `pos` and shifts error offsets to file
 * offsets (a deflated data set reports offsets into its inflated bytes). */
static int decode_body(const uint8_t *data, size_t len, size_t pos, mwl_ts ts, mwl_arena *arena,
                       const mwl_decode_limits *lim, mwl_ds **out, mwl_diag *diag)
{
    int rc = mwl_ds_decode(data + pos, len - pos, ts, arena, lim, out, diag);
    if (rc != MWL_OK && diag && ts != MWL_TS_DEFLATED_LE)
        diag->offset += pos;
    return rc;
}

int mwl_part10_decode(const uint8_t *data, size_t len, mwl_arena *arena, const mwl_decode_limits *lim,
                      mwl_part10 *out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if ((!data && len) || !arena || !out) {
        mwl_diag_set(diag, 0, 0, "invalid argument");
        return MWL_E_INVALID;
    }
    /* PS3.10 §7.1: preamble and "DICM". Some writers omit the preamble and
     * start with the meta header, recognisable by an explicit VR on a
     * group 0002 element. */
    size_t pos;
    bool meta;
    if (has_prefix(data, len)) {
        pos = PREAMBLE_LENGTH + PREFIX_LENGTH;
        meta = true;
    } else {
        pos = 0;
        meta = len >= 6 && mwl_load_u16le(data) == 0x0002 && mwl_vr_from_code(data + 4) != MWL_VR_NONE;
    }

    if (meta) {
        size_t end;
        int rc = scan_meta(data, len, pos, &end, diag);
        if (rc != MWL_OK)
            return rc;
        if (end == pos) {
            mwl_diag_set(diag, pos, 0, "no file meta header after the DICM prefix");
            return MWL_E_MALFORMED;
        }
        mwl_ds *meta_ds;
        rc = mwl_ds_decode(data + pos, end - pos, MWL_TS_EXPLICIT_LE, arena, lim, &meta_ds, diag);
        if (rc != MWL_OK) {
            if (diag)
                diag->offset += pos;
            return rc;
        }
        const mwl_elem *e = mwl_ds_find(meta_ds, MWL_TAG_TransferSyntaxUID);
        if (!e || e->length == 0) {
            mwl_diag_set(diag, pos, MWL_TAG_TransferSyntaxUID, "file meta header has no transfer syntax UID");
            return MWL_E_MALFORMED;
        }
        mwl_ts ts;
        if (mwl_ts_from_uid((const char *)e->value, e->length, &ts) != MWL_OK) {
            int shown = e->length > 64 ? 64 : (int)e->length;
            mwl_diag_set(diag, pos, MWL_TAG_TransferSyntaxUID, "transfer syntax %.*s is not supported", shown,
                         (const char *)e->value);
            return MWL_E_UNSUPPORTED;
        }
        mwl_ds *ds;
        rc = decode_body(data, len, end, ts, arena, lim, &ds, diag);
        if (rc != MWL_OK)
            return rc;
        out->meta = meta_ds;
        out->dataset = ds;
        out->ts = ts;
        return MWL_OK;
    }

    /* A raw data set (DCMTK .wl files may be one). Its first element tells
     * the syntax: bytes 4-5 are a VR code in Explicit VR and the low half
     * of a 32-bit length in Implicit VR; a VR that fits the dictionary
     * entry of the tag decides. A preamble without "DICM", command group
     * 0000 or a reserved group (PS3.5 §7.1) is not a data set. */
    if (len < 8) {
        mwl_diag_set(diag, 0, 0, "too short for a DICOM file or data set");
        return MWL_E_MALFORMED;
    }
    uint16_t group = mwl_load_u16le(data);
    uint32_t tag = MWL_TAG(group, mwl_load_u16le(data + 2));
    if (group < 0x0002 || group >= 0xFFFE || group == 0x0003 || group == 0x0005 || group == 0x0007) {
        mwl_diag_set(diag, 0, tag, "neither a Part 10 file nor a data set");
        return MWL_E_MALFORMED;
    }
    mwl_vr code_vr = mwl_vr_from_code(data + 4);
    mwl_ts ts =
        code_vr != MWL_VR_NONE && vr_consistent(tag, code_vr) ? MWL_TS_EXPLICIT_LE : MWL_TS_IMPLICIT_LE;
    mwl_ds *ds;
    int rc = decode_body(data, len, 0, ts, arena, lim, &ds, diag);
    if (rc != MWL_OK)
        return rc;
    out->meta = NULL;
    out->dataset = ds;
    out->ts = ts;
    return MWL_OK;
}

/* A UID value of `ds` with its padding removed, for the meta header. */
static void uid_of(const mwl_ds *ds, uint32_t tag, const uint8_t **value, size_t *len)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    *value = NULL;
    *len = 0;
    if (!e || e->vr == MWL_VR_SQ || e->length == 0)
        return;
    size_t n = e->length;
    while (n && (e->value[n - 1] == '\0' || e->value[n - 1] == ' '))
        n--;
    *value = e->value;
    *len = n;
}

static int build_meta(const mwl_ds *ds, mwl_ts ts, const char *sop_class_uid, const char *sop_instance_uid,
                      mwl_arena *arena, mwl_ds **out)
{
    static const uint8_t version[2] = {0x00, 0x01}; /* PS3.10 §7.1 */
    mwl_ds *meta;
    int rc = mwl_ds_new(arena, NULL, &meta);
    if (rc == MWL_OK)
        rc = mwl_ds_set(meta, MWL_TAG_FileMetaInformationVersion, MWL_VR_OB, version, sizeof version);
    const uint8_t *uid;
    size_t uid_len;
    if (rc == MWL_OK && sop_class_uid)
        rc = mwl_ds_set_str(meta, MWL_TAG_MediaStorageSOPClassUID, MWL_VR_UI, sop_class_uid);
    else if (rc == MWL_OK) {
        uid_of(ds, MWL_TAG_SOPClassUID, &uid, &uid_len);
        rc = mwl_ds_set(meta, MWL_TAG_MediaStorageSOPClassUID, MWL_VR_UI, uid, uid_len);
    }
    if (rc == MWL_OK && sop_instance_uid)
        rc = mwl_ds_set_str(meta, MWL_TAG_MediaStorageSOPInstanceUID, MWL_VR_UI, sop_instance_uid);
    else if (rc == MWL_OK) {
        uid_of(ds, MWL_TAG_SOPInstanceUID, &uid, &uid_len);
        rc = mwl_ds_set(meta, MWL_TAG_MediaStorageSOPInstanceUID, MWL_VR_UI, uid, uid_len);
    }
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(meta, MWL_TAG_TransferSyntaxUID, MWL_VR_UI, mwl_ts_uid(ts));
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(meta, MWL_TAG_ImplementationClassUID, MWL_VR_UI, MWL_IMPLEMENTATION_CLASS_UID);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(meta, MWL_TAG_ImplementationVersionName, MWL_VR_SH,
                            MWL_IMPLEMENTATION_VERSION_NAME);
    if (rc == MWL_OK)
        *out = meta;
    return rc;
}

/* `ds` without the elements of groups 0000-0002, which do not belong in a
 * file's data set (the meta header carries group 0002). Values and items
 * are shared with `ds`, not copied: the view only lives for one encode. */
static int file_view(const mwl_ds *ds, mwl_arena *arena, const mwl_ds **out)
{
    const mwl_elem *first = mwl_ds_at(ds, 0);
    if (!first || MWL_TAG_GROUP(first->tag) > 0x0002) {
        *out = ds;
        return MWL_OK;
    }
    mwl_ds *view;
    int rc = mwl_ds_new(arena, NULL, &view);
    if (rc != MWL_OK)
        return rc;
    size_t n = mwl_ds_count(ds);
    for (size_t i = 0; i < n && rc == MWL_OK; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (MWL_TAG_GROUP(e->tag) <= 0x0002)
            continue;
        if (e->vr == MWL_VR_SQ) {
            mwl_elem *seq;
            rc = mwl_ds_set_seq(view, e->tag, &seq);
            if (rc == MWL_OK) {
                seq->items = e->items;
                seq->item_count = e->item_count;
            }
        } else {
            rc = mwl_ds_set_ref(view, e->tag, e->vr, e->value, e->length);
        }
    }
    if (rc == MWL_OK)
        *out = view;
    return rc;
}

int mwl_part10_encode(const mwl_ds *ds, mwl_ts ts, mwl_wbuf *out)
{
    return mwl_part10_encode_as(ds, ts, NULL, NULL, out);
}

int mwl_part10_encode_as(const mwl_ds *ds, mwl_ts ts, const char *sop_class_uid, const char *sop_instance_uid,
                         mwl_wbuf *out)
{
    if (!ds || !out || (unsigned)ts >= MWL_TS_COUNT)
        return MWL_E_INVALID;
    if (out->status != MWL_OK)
        return out->status;
    size_t start = out->len;
    mwl_arena arena;
    mwl_arena_init(&arena, out->mem);
    mwl_ds *meta;
    const mwl_ds *body;
    int rc = build_meta(ds, ts, sop_class_uid, sop_instance_uid, &arena, &meta);
    if (rc == MWL_OK)
        rc = file_view(ds, &arena, &body);
    if (rc == MWL_OK) {
        mwl_wbuf_fill(out, 0, PREAMBLE_LENGTH);
        mwl_wbuf_put(out, "DICM", PREFIX_LENGTH);
        /* (0002,0000) UL 4: the byte count of the rest of group 0002,
         * patched once that is written. */
        static const uint8_t group_length_header[8] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 0x04, 0x00};
        mwl_wbuf_put(out, group_length_header, sizeof group_length_header);
        size_t group_length_at = out->len;
        mwl_wbuf_put_u32le(out, 0);
        size_t meta_start = out->len;
        rc = mwl_ds_encode(meta, MWL_TS_EXPLICIT_LE, out);
        if (rc == MWL_OK) {
            size_t n = out->len - meta_start;
            if (n > 0xFFFFFFFEu)
                rc = MWL_E_LIMIT;
            else
                mwl_store_u32le(out->data + group_length_at, (uint32_t)n);
        }
        if (rc == MWL_OK)
            rc = mwl_ds_encode(body, ts, out);
    }
    mwl_arena_clear(&arena);
    if (rc == MWL_OK)
        rc = out->status;
    if (rc != MWL_OK && out->len > start)
        out->len = start;
    return rc;
}
