/* DICOM Upper Layer PDU codec (PS3.8 §9.3, Annex D; PS3.7 Annex D.3.3).
 *
 * Decoding is two passes per container: the first walks the item headers,
 * checks every length against the bytes its parent still holds, finds
 * duplicates and missing mandatory items and counts the repeated ones
 * against the caller's limits; only then are arrays and strings carved from
 * the arena and filled in the second pass. Nothing read from the wire is
 * used as a size before it has been checked that way.
 *
 * Choices where PS3.8 leaves room (see also pdu.h):
 *  - Items of an unrecognized type are skipped, at every level (PS3.8
 *    §9.3.1 "items of unrecognized types shall be ignored and skipped";
 *    Annex D.2 note for user-information sub-items). Item types this codec
 *    knows but that do not belong where they appear (a 21H item in an
 *    A-ASSOCIATE-RQ, a 30H sub-item inside a 21H item) are a malformed PDU:
 *    that is A-ABORT reason 5, "unexpected-PDU parameter" (§9.3.8).
 *  - Items are accepted in any order, though §9.3.1 asks senders for
 *    ascending item types; the encoders send them ascending.
 *  - User-information sub-items 51H-59H are decoded in both the RQ and the
 *    AC, whichever direction the standard allows them in: which ones make
 *    sense is a negotiation question, not a syntax one.
 *  - Reserved fields are never tested on receipt and always sent as 00H
 *    (§9.3.1; DCMTK, for one, sends FFH in byte 7 of a 20H item).
 *  - UIDs are sent without padding (Annex F). On receipt a trailing NUL or
 *    space is stripped, because some implementations pad to even length.
 *    The 64-byte maximum (PS3.5 §9.1) applies to the bytes on the wire.
 *  - Values are syntax-checked only: the protocol version, presentation
 *    context results, role values, user identity types and the fixed-length
 *    PDUs' result/source/reason bytes are passed through as received, and
 *    encoded as given. Judging them is the state machine's or the
 *    negotiator's job (e.g. A-ASSOCIATE-RJ 1/2/2 for a bad version).
 *  - Exceptions, where a value would break the struct's own contract:
 *    even or duplicate context IDs, an accepted context without a transfer
 *    syntax, AE titles or UIDs with a NUL inside, PDV control bits 2-7
 *    (dropped on receipt, refused when encoding; Annex E.2). */
#include "ul/pdu.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Item types (PS3.8 Tables 9-11..9-18, Annex D; PS3.7 D.3.3). */
enum {
    ITEM_APPLICATION_CONTEXT = 0x10,
    ITEM_PCTX_RQ = 0x20,
    ITEM_PCTX_AC = 0x21,
    ITEM_ABSTRACT_SYNTAX = 0x30,
    ITEM_TRANSFER_SYNTAX = 0x40,
    ITEM_USER_INFO = 0x50,
    SUB_MAX_LENGTH = 0x51,
    SUB_IMPLEMENTATION_CLASS_UID = 0x52,
    SUB_ASYNC_WINDOW = 0x53,
    SUB_ROLE_SELECTION = 0x54,
    SUB_IMPLEMENTATION_VERSION = 0x55,
    SUB_EXT_NEGOTIATION = 0x56,
    SUB_COMMON_EXT_NEGOTIATION = 0x57,
    SUB_USER_IDENTITY_RQ = 0x58,
    SUB_USER_IDENTITY_AC = 0x59
};

enum {
    ITEM_HEADER_SIZE = 4,      /* type, reserved, 16-bit length */
    ASSOCIATE_FIXED_SIZE = 68, /* bytes 7-74 of an A-ASSOCIATE-RQ/AC */
    PDV_HEADER_SIZE = 4,       /* 32-bit item length */
    PDV_MIN_LENGTH = 2,        /* context ID + message control header */
    FIXED_PDU_LENGTH = 4,      /* A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT */
    VERSION_NAME_MAX = 16      /* PS3.7 Table D.3-3 */
};

/* Zero-length byte fields point here, so they are never NULL. */
static const uint8_t no_bytes[1];

void mwl_pdu_limits_init(mwl_pdu_limits *lim)
{
    lim->max_pdu_length = (1u << 20) + MWL_PDU_HEADER_SIZE;
    lim->max_contexts = 128; /* every odd ID from 1 to 255 */
    lim->max_transfer_syntaxes = 64;
    lim->max_sub_items = 128;
    lim->max_pdvs = 1024;
}

int mwl_pdu_peek_header(const uint8_t *in, size_t len, uint8_t *type, uint32_t *pdu_length)
{
    if (len < MWL_PDU_HEADER_SIZE)
        return MWL_NEED_MORE;
    *type = in[0];
    *pdu_length = mwl_load_u32be(in + 2); /* byte 2 is reserved: not tested */
    return MWL_OK;
}

/* ======================================================================
 * Decoding
 * ====================================================================== */

typedef struct decoder {
    const uint8_t *pdu; /* start of the PDU, for diag offsets */
    mwl_arena *arena;
    const mwl_pdu_limits *lim;
    mwl_diag *diag;
} decoder;

/* One item or sub-item with a 16-bit length (PS3.8 §9.3.2). */
typedef struct item {
    uint8_t type;
    const uint8_t *start; /* the item-type byte */
    const uint8_t *value; /* after the 4-byte header */
    size_t length;
} item;

static int fail(const decoder *d, int status, const uint8_t *at, const char *fmt, ...) MWL_PRINTF(4, 5);
static int fail(const decoder *d, int status, const uint8_t *at, const char *fmt, ...)
{
    if (d->diag) {
        char msg[sizeof d->diag->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        mwl_diag_set(d->diag, (size_t)(at - d->pdu), 0, "%s", msg);
    }
    return status;
}

static int out_of_memory(const decoder *d, const uint8_t *at)
{
    return fail(d, MWL_E_NOMEM, at, "out of memory");
}

/* Reads the next item of a container. The header and the value must both
 * fit in what the parent has left: an item running past its parent leaves
 * no way to find where the next one starts. */
static int next_item(const decoder *d, mwl_rd *rd, const char *parent, item *it)
{
    it->start = mwl_rd_ptr(rd);
    if (!mwl_rd_need(rd, ITEM_HEADER_SIZE))
        return fail(d, MWL_E_MALFORMED, it->start, "truncated item header in %s", parent);
    it->type = it->start[0];
    it->length = mwl_load_u16be(it->start + 2);
    (void)mwl_rd_skip(rd, ITEM_HEADER_SIZE);
    if (!mwl_rd_bytes(rd, it->length, &it->value))
        return fail(d, MWL_E_MALFORMED, it->start, "item %02XH length %zu runs past the end of %s", it->type,
                    it->length, parent);
    return MWL_OK;
}

/* Measures a wire string: trailing NUL and space padding is not part of
 * the value (see the file comment); `max` applies to the wire bytes. An
 * embedded NUL would silently cut the C string, so that a check on it could
 * pass on a prefix: it is refused. */
typedef enum { STRING_OK, STRING_TOO_LONG, STRING_HAS_NUL } string_check;

static string_check measure_string(const uint8_t *p, size_t n, size_t max, size_t *length)
{
    if (n > max)
        return STRING_TOO_LONG;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    if (n > 0 && memchr(p, '\0', n))
        return STRING_HAS_NUL;
    *length = n;
    return STRING_OK;
}

/* Copies a measured string into the arena ("" needs no allocation). */
static int copy_string(const decoder *d, const uint8_t *p, size_t n, const char **out)
{
    if (n == 0) {
        *out = "";
        return MWL_OK;
    }
    char *s = mwl_arena_strndup(d->arena, (const char *)p, n);
    if (!s)
        return out_of_memory(d, p);
    *out = s;
    return MWL_OK;
}

static int take_string(const decoder *d, const uint8_t *p, size_t n, size_t max, const char *what,
                       const char **out)
{
    size_t length = 0;
    switch (measure_string(p, n, max, &length)) {
    case STRING_TOO_LONG:
        return fail(d, MWL_E_MALFORMED, p, "%s is %zu bytes long (at most %zu)", what, n, max);
    case STRING_HAS_NUL: return fail(d, MWL_E_MALFORMED, p, "%s contains a NUL byte", what);
    case STRING_OK: break;
    }
    return copy_string(d, p, length, out);
}

static int take_uid(const decoder *d, const uint8_t *p, size_t n, const char *what, const char **out)
{
    return take_string(d, p, n, MWL_UID_MAX, what, out);
}

static int take_bytes(const decoder *d, const uint8_t *p, size_t n, const uint8_t **out, size_t *out_length)
{
    *out_length = n;
    if (n == 0) {
        *out = no_bytes;
        return MWL_OK;
    }
    uint8_t *b = mwl_arena_memdup(d->arena, p, n);
    if (!b)
        return out_of_memory(d, p);
    *out = b;
    return MWL_OK;
}

/* Allocates an array of `count` elements after the count has been checked
 * against its limit. */
static void *take_array(const decoder *d, size_t count, size_t size)
{
    if (count == 0 || count > SIZE_MAX / size)
        return NULL;
    return mwl_arena_calloc(d->arena, count * size);
}

/* AE titles (PS3.8 Table 9-11): 16 bytes, space padded; leading and
 * trailing spaces are not significant (PS3.5 AE). Trailing NULs are
 * tolerated as padding, as for UIDs. */
static int take_ae_title(const decoder *d, const uint8_t *p, const char *what, char out[MWL_AE_TITLE_MAX + 1])
{
    size_t begin = 0, end = MWL_AE_TITLE_MAX;
    while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\0'))
        end--;
    while (begin < end && p[begin] == ' ')
        begin++;
    if (end > begin && memchr(p + begin, '\0', end - begin))
        return fail(d, MWL_E_MALFORMED, p, "%s contains a NUL byte", what);
    memcpy(out, p + begin, end - begin);
    out[end - begin] = '\0';
    return MWL_OK;
}

/* Presentation context IDs are odd integers 1..255 (PS3.8 §9.3.2.2). */
static int check_odd_id(const decoder *d, const uint8_t *at, uint8_t id)
{
    if (id % 2 == 0)
        return fail(d, MWL_E_MALFORMED, at, "presentation context ID %u is not odd", id);
    return MWL_OK;
}

/* ... and unique within the association (§7.1.1.13). `seen` is a
 * 256-bit set. */
static int check_context_id(const decoder *d, const uint8_t *at, uint8_t id, uint8_t seen[32])
{
    if (check_odd_id(d, at, id) != MWL_OK)
        return MWL_E_MALFORMED;
    if (seen[id / 8] & (1u << (id % 8)))
        return fail(d, MWL_E_MALFORMED, at, "presentation context ID %u appears twice", id);
    seen[id / 8] = (uint8_t)(seen[id / 8] | (1u << (id % 8)));
    return MWL_OK;
}

/* Item types this codec knows: finding one where it does not belong is an
 * "unexpected-PDU parameter" rather than an unknown item to skip. */
static bool is_known_item(uint8_t type)
{
    switch (type) {
    case ITEM_APPLICATION_CONTEXT:
    case ITEM_PCTX_RQ:
    case ITEM_PCTX_AC:
    case ITEM_ABSTRACT_SYNTAX:
    case ITEM_TRANSFER_SYNTAX:
    case ITEM_USER_INFO: return true;
    default: return false;
    }
}

static int unexpected_item(const decoder *d, const item *it, const char *where)
{
    return fail(d, MWL_E_MALFORMED, it->start, "unexpected item %02XH in %s", it->type, where);
}

/* ---- presentation context items --------------------------------------- */

/* Item 20H (PS3.8 §9.3.2.2, Table 9-13): ID, three reserved bytes, one
 * abstract syntax sub-item 30H and one or more transfer syntax 40H. */
static int decode_pctx_rq(const decoder *d, const item *ctx, uint8_t seen[32], mwl_pctx_rq *out)
{
    static const char where[] = "presentation context item";
    if (ctx->length < 4)
        return fail(d, MWL_E_MALFORMED, ctx->start, "presentation context item of %zu bytes", ctx->length);
    out->id = ctx->value[0];
    int rc = check_context_id(d, ctx->start, out->id, seen);
    if (rc != MWL_OK)
        return rc;

    mwl_rd rd;
    item it, abstract = {0};
    bool has_abstract = false;
    size_t ts_count = 0;
    mwl_rd_init(&rd, ctx->value + 4, ctx->length - 4);
    while (mwl_rd_left(&rd) > 0) {
        if ((rc = next_item(d, &rd, where, &it)) != MWL_OK)
            return rc;
        if (it.type == ITEM_ABSTRACT_SYNTAX) {
            if (has_abstract)
                return fail(d, MWL_E_MALFORMED, it.start, "two abstract syntax sub-items in context %u",
                            out->id);
            has_abstract = true;
            abstract = it;
        } else if (it.type == ITEM_TRANSFER_SYNTAX) {
            if (++ts_count > d->lim->max_transfer_syntaxes)
                return fail(d, MWL_E_LIMIT, it.start, "more than %zu transfer syntaxes in context %u",
                            d->lim->max_transfer_syntaxes, out->id);
        } else if (is_known_item(it.type)) {
            return unexpected_item(d, &it, where);
        }
    }
    if (!has_abstract)
        return fail(d, MWL_E_MALFORMED, ctx->start, "context %u has no abstract syntax", out->id);
    if (ts_count == 0)
        return fail(d, MWL_E_MALFORMED, ctx->start, "context %u has no transfer syntax", out->id);

    rc = take_uid(d, abstract.value, abstract.length, "abstract syntax", &out->abstract_syntax);
    if (rc != MWL_OK)
        return rc;
    out->transfer_syntaxes = take_array(d, ts_count, sizeof *out->transfer_syntaxes);
    if (!out->transfer_syntaxes)
        return out_of_memory(d, ctx->start);
    mwl_rd_init(&rd, ctx->value + 4, ctx->length - 4);
    while (mwl_rd_left(&rd) > 0) {
        (void)next_item(d, &rd, where, &it); /* checked in the first pass */
        if (it.type != ITEM_TRANSFER_SYNTAX)
            continue;
        rc = take_uid(d, it.value, it.length, "transfer syntax",
                      &out->transfer_syntaxes[out->transfer_syntax_count]);
        if (rc != MWL_OK)
            return rc;
        out->transfer_syntax_count++;
    }
    return MWL_OK;
}

/* Item 21H (PS3.8 §9.3.3.2, Table 9-18): ID, reserved, result/reason,
 * reserved, one transfer syntax sub-item. The sub-item is "not significant
 * and not to be tested" unless the context was accepted, so a rejected
 * context may lack it or carry a value we could not use (too long, a NUL
 * inside): both give "". A usable value is kept. */
static int decode_pctx_ac(const decoder *d, const item *ctx, uint8_t seen[32], mwl_pctx_ac *out)
{
    static const char where[] = "presentation context item";
    if (ctx->length < 4)
        return fail(d, MWL_E_MALFORMED, ctx->start, "presentation context item of %zu bytes", ctx->length);
    out->id = ctx->value[0];
    out->result = ctx->value[2];
    int rc = check_context_id(d, ctx->start, out->id, seen);
    if (rc != MWL_OK)
        return rc;

    mwl_rd rd;
    item it, ts = {0};
    bool has_ts = false;
    mwl_rd_init(&rd, ctx->value + 4, ctx->length - 4);
    while (mwl_rd_left(&rd) > 0) {
        if ((rc = next_item(d, &rd, where, &it)) != MWL_OK)
            return rc;
        if (it.type == ITEM_TRANSFER_SYNTAX) {
            if (has_ts)
                return fail(d, MWL_E_MALFORMED, it.start, "two transfer syntax sub-items in context %u",
                            out->id);
            has_ts = true;
            ts = it;
        } else if (is_known_item(it.type)) {
            return unexpected_item(d, &it, where);
        }
    }
    out->transfer_syntax = "";
    if (out->result != MWL_PCTX_ACCEPTANCE) {
        size_t n;
        if (has_ts && measure_string(ts.value, ts.length, MWL_UID_MAX, &n) == STRING_OK)
            return copy_string(d, ts.value, n, &out->transfer_syntax);
        return MWL_OK; /* not to be tested: kept as "" */
    }
    if (!has_ts)
        return fail(d, MWL_E_MALFORMED, ctx->start, "accepted context %u has no transfer syntax", out->id);
    if ((rc = take_uid(d, ts.value, ts.length, "transfer syntax", &out->transfer_syntax)) != MWL_OK)
        return rc;
    if (out->transfer_syntax[0] == '\0')
        return fail(d, MWL_E_MALFORMED, ts.start, "accepted context %u has an empty transfer syntax",
                    out->id);
    return MWL_OK;
}

/* ---- user information sub-items (PS3.8 Annex D, PS3.7 D.3.3) ---------- */

/* A 16-bit length followed by that many bytes of UID, as in 54H/56H/57H. */
static bool read_uid_field(mwl_rd *rd, const uint8_t **p, size_t *n)
{
    uint16_t len;
    if (!mwl_rd_u16be(rd, &len))
        return false;
    *n = len;
    return mwl_rd_bytes(rd, len, p);
}

/* 54H: UID-length, SOP class UID, SCU-role, SCP-role (PS3.7 Table D.3-9). */
static int decode_role(const decoder *d, const item *it, mwl_role_selection *out)
{
    mwl_rd rd;
    const uint8_t *uid;
    size_t uid_length;
    mwl_rd_init(&rd, it->value, it->length);
    if (!read_uid_field(&rd, &uid, &uid_length) || mwl_rd_left(&rd) != 2)
        return fail(d, MWL_E_MALFORMED, it->start, "role selection sub-item fields do not match its length");
    out->scu_role = it->value[it->length - 2];
    out->scp_role = it->value[it->length - 1];
    return take_uid(d, uid, uid_length, "role selection SOP class UID", &out->sop_class_uid);
}

/* 56H: UID-length, SOP class UID, service-class application information
 * up to the end of the sub-item (PS3.7 Table D.3-11). */
static int decode_ext_negotiation(const decoder *d, const item *it, mwl_ext_negotiation *out)
{
    mwl_rd rd;
    const uint8_t *uid;
    size_t uid_length;
    mwl_rd_init(&rd, it->value, it->length);
    if (!read_uid_field(&rd, &uid, &uid_length))
        return fail(d, MWL_E_MALFORMED, it->start,
                    "SOP class UID runs past the extended negotiation sub-item");
    int rc = take_uid(d, uid, uid_length, "extended negotiation SOP class UID", &out->sop_class_uid);
    if (rc != MWL_OK)
        return rc;
    return take_bytes(d, mwl_rd_ptr(&rd), mwl_rd_left(&rd), &out->info, &out->info_length);
}

/* 57H (PS3.7 Table D.3-12): SOP class UID, service class UID, then a
 * length-prefixed list of length-prefixed related general SOP class UIDs.
 * Byte 2 is the sub-item version (0) and anything after the list is
 * reserved for later versions: neither is tested. */
static int decode_common_ext_negotiation(const decoder *d, const item *it, mwl_common_ext_negotiation *out)
{
    mwl_rd rd, list;
    const uint8_t *sop, *service, *related, *uid;
    size_t sop_length, service_length, uid_length;
    uint16_t related_length;
    mwl_rd_init(&rd, it->value, it->length);
    if (!read_uid_field(&rd, &sop, &sop_length) || !read_uid_field(&rd, &service, &service_length) ||
        !mwl_rd_u16be(&rd, &related_length) || !mwl_rd_bytes(&rd, related_length, &related))
        return fail(d, MWL_E_MALFORMED, it->start,
                    "common extended negotiation fields run past the sub-item");

    size_t count = 0;
    mwl_rd_init(&list, related, related_length);
    while (mwl_rd_left(&list) > 0) {
        if (!read_uid_field(&list, &uid, &uid_length))
            return fail(d, MWL_E_MALFORMED, it->start, "related general SOP class UID runs past its list");
        if (++count > d->lim->max_sub_items)
            return fail(d, MWL_E_LIMIT, it->start, "more than %zu related general SOP classes",
                        d->lim->max_sub_items);
    }

    int rc = take_uid(d, sop, sop_length, "common extended negotiation SOP class UID", &out->sop_class_uid);
    if (rc == MWL_OK)
        rc = take_uid(d, service, service_length, "service class UID", &out->service_class_uid);
    if (rc != MWL_OK)
        return rc;
    if (count > 0) {
        out->related_sop_classes = take_array(d, count, sizeof *out->related_sop_classes);
        if (!out->related_sop_classes)
            return out_of_memory(d, it->start);
    }
    mwl_rd_init(&list, related, related_length);
    while (mwl_rd_left(&list) > 0) {
        (void)read_uid_field(&list, &uid, &uid_length);
        rc = take_uid(d, uid, uid_length, "related general SOP class UID",
                      &out->related_sop_classes[out->related_count]);
        if (rc != MWL_OK)
            return rc;
        out->related_count++;
    }
    return MWL_OK;
}

/* 58H (PS3.7 Table D.3-14): type, positive-response-requested, primary
 * field, secondary field; the secondary-field-length is always present. */
static int decode_user_identity_rq(const decoder *d, const item *it, mwl_user_identity_rq *out)
{
    mwl_rd rd;
    uint16_t primary_length, secondary_length;
    const uint8_t *primary, *secondary;
    mwl_rd_init(&rd, it->value, it->length);
    if (!mwl_rd_u8(&rd, &out->type) || !mwl_rd_u8(&rd, &out->positive_response_requested) ||
        !mwl_rd_u16be(&rd, &primary_length) || !mwl_rd_bytes(&rd, primary_length, &primary) ||
        !mwl_rd_u16be(&rd, &secondary_length) || !mwl_rd_bytes(&rd, secondary_length, &secondary) ||
        mwl_rd_left(&rd) != 0)
        return fail(d, MWL_E_MALFORMED, it->start, "user identity fields do not match the sub-item length");
    int rc = take_bytes(d, primary, primary_length, &out->primary_field, &out->primary_length);
    if (rc != MWL_OK)
        return rc;
    return take_bytes(d, secondary, secondary_length, &out->secondary_field, &out->secondary_length);
}

/* 59H (PS3.7 Table D.3-15): server-response-length and server response. */
static int decode_user_identity_ac(const decoder *d, const item *it, mwl_user_info *out)
{
    mwl_rd rd;
    uint16_t length;
    const uint8_t *response;
    mwl_rd_init(&rd, it->value, it->length);
    if (!mwl_rd_u16be(&rd, &length) || !mwl_rd_bytes(&rd, length, &response) || mwl_rd_left(&rd) != 0)
        return fail(d, MWL_E_MALFORMED, it->start,
                    "user identity response does not match the sub-item length");
    return take_bytes(d, response, length, &out->server_response, &out->server_response_length);
}

/* Counts a repeated sub-item against max_sub_items. */
static int count_sub_item(const decoder *d, const item *it, size_t *count, const char *what)
{
    if (++*count > d->lim->max_sub_items)
        return fail(d, MWL_E_LIMIT, it->start, "more than %zu %s sub-items", d->lim->max_sub_items, what);
    return MWL_OK;
}

static uint32_t sub_item_bit(uint8_t type)
{
    return 1u << (type - SUB_MAX_LENGTH); /* 51H..59H */
}

/* Item 50H (PS3.8 §9.3.2.3, Annex D). Sub-items may come in any order
 * (§9.3.2.3 note). Unknown ones are skipped (Annex D.2 note 2). The
 * single-valued ones (51H-53H, 55H, 58H, 59H) may appear once. */
static int decode_user_info(const decoder *d, const item *ui, mwl_user_info *out)
{
    static const char where[] = "user information item";
    mwl_rd rd;
    item it;
    uint32_t seen = 0; /* sub_item_bit() of the single-valued sub-items found */
    size_t roles = 0, exts = 0, commons = 0;
    int rc;

    mwl_rd_init(&rd, ui->value, ui->length);
    while (mwl_rd_left(&rd) > 0) {
        if ((rc = next_item(d, &rd, where, &it)) != MWL_OK)
            return rc;
        switch (it.type) {
        case SUB_ROLE_SELECTION: rc = count_sub_item(d, &it, &roles, "role selection"); break;
        case SUB_EXT_NEGOTIATION: rc = count_sub_item(d, &it, &exts, "extended negotiation"); break;
        case SUB_COMMON_EXT_NEGOTIATION:
            rc = count_sub_item(d, &it, &commons, "common extended negotiation");
            break;
        case SUB_MAX_LENGTH:
        case SUB_IMPLEMENTATION_CLASS_UID:
        case SUB_ASYNC_WINDOW:
        case SUB_IMPLEMENTATION_VERSION:
        case SUB_USER_IDENTITY_RQ:
        case SUB_USER_IDENTITY_AC: {
            uint32_t bit = sub_item_bit(it.type);
            if (seen & bit)
                return fail(d, MWL_E_MALFORMED, it.start, "sub-item %02XH appears twice", it.type);
            seen |= bit;
            break;
        }
        default: break; /* unknown sub-item: skipped (PS3.8 D.2) */
        }
        if (rc != MWL_OK)
            return rc;
    }
    if (!(seen & sub_item_bit(SUB_MAX_LENGTH)))
        return fail(d, MWL_E_MALFORMED, ui->start, "user information has no maximum length sub-item");

    out->implementation_class_uid = "";
    out->implementation_version_name = "";
    out->roles = take_array(d, roles, sizeof *out->roles);
    out->ext_negotiations = take_array(d, exts, sizeof *out->ext_negotiations);
    out->common_ext_negotiations = take_array(d, commons, sizeof *out->common_ext_negotiations);
    if ((roles && !out->roles) || (exts && !out->ext_negotiations) ||
        (commons && !out->common_ext_negotiations))
        return out_of_memory(d, ui->start);

    mwl_rd_init(&rd, ui->value, ui->length);
    while (mwl_rd_left(&rd) > 0) {
        (void)next_item(d, &rd, where, &it); /* checked in the first pass */
        rc = MWL_OK;
        switch (it.type) {
        case SUB_MAX_LENGTH: /* PS3.8 Table D.1-1: always 4 bytes */
            if (it.length != 4)
                return fail(d, MWL_E_MALFORMED, it.start, "maximum length sub-item of %zu bytes", it.length);
            out->max_length = mwl_load_u32be(it.value);
            break;
        case SUB_IMPLEMENTATION_CLASS_UID:
            rc = take_uid(d, it.value, it.length, "implementation class UID", &out->implementation_class_uid);
            break;
        case SUB_ASYNC_WINDOW: /* PS3.7 Table D.3-7: always 4 bytes */
            if (it.length != 4)
                return fail(d, MWL_E_MALFORMED, it.start, "asynchronous operations window of %zu bytes",
                            it.length);
            out->has_async_window = true;
            out->max_operations_invoked = mwl_load_u16be(it.value);
            out->max_operations_performed = mwl_load_u16be(it.value + 2);
            break;
        case SUB_ROLE_SELECTION: rc = decode_role(d, &it, &out->roles[out->role_count++]); break;
        case SUB_IMPLEMENTATION_VERSION: /* PS3.7 Table D.3-3: 1 to 16 characters */
            rc = take_string(d, it.value, it.length, VERSION_NAME_MAX, "implementation version name",
                             &out->implementation_version_name);
            break;
        case SUB_EXT_NEGOTIATION:
            rc = decode_ext_negotiation(d, &it, &out->ext_negotiations[out->ext_negotiation_count++]);
            break;
        case SUB_COMMON_EXT_NEGOTIATION:
            rc = decode_common_ext_negotiation(
                d, &it, &out->common_ext_negotiations[out->common_ext_negotiation_count++]);
            break;
        case SUB_USER_IDENTITY_RQ:
            out->has_user_identity_rq = true;
            rc = decode_user_identity_rq(d, &it, &out->user_identity_rq);
            break;
        case SUB_USER_IDENTITY_AC:
            out->has_user_identity_ac = true;
            rc = decode_user_identity_ac(d, &it, out);
            break;
        default: break;
        }
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* ---- A-ASSOCIATE-RQ / -AC --------------------------------------------- */

/* The variable field of an A-ASSOCIATE-RQ (Table 9-11) or -AC (Table
 * 9-17): one 10H, one or more 20H (RQ) / 21H (AC), one 50H. */
static int decode_associate(const decoder *d, const uint8_t *body, size_t length, bool is_rq, mwl_pdu *out)
{
    const char *where = is_rq ? "A-ASSOCIATE-RQ" : "A-ASSOCIATE-AC";
    const uint8_t context_type = is_rq ? ITEM_PCTX_RQ : ITEM_PCTX_AC;
    mwl_rd rd;
    item it, app = {0}, user = {0};
    bool has_app = false, has_user = false;
    size_t contexts = 0;
    int rc;

    /* First pass: framing, duplicates, counts. */
    mwl_rd_init(&rd, body + ASSOCIATE_FIXED_SIZE, length - ASSOCIATE_FIXED_SIZE);
    while (mwl_rd_left(&rd) > 0) {
        if ((rc = next_item(d, &rd, where, &it)) != MWL_OK)
            return rc;
        if (it.type == ITEM_APPLICATION_CONTEXT || it.type == ITEM_USER_INFO) {
            bool is_app = it.type == ITEM_APPLICATION_CONTEXT;
            if (is_app ? has_app : has_user)
                return fail(d, MWL_E_MALFORMED, it.start, "item %02XH appears twice in %s", it.type, where);
            if (is_app) {
                has_app = true;
                app = it;
            } else {
                has_user = true;
                user = it;
            }
        } else if (it.type == context_type) {
            if (++contexts > d->lim->max_contexts)
                return fail(d, MWL_E_LIMIT, it.start, "more than %zu presentation contexts",
                            d->lim->max_contexts);
        } else if (is_known_item(it.type)) {
            return unexpected_item(d, &it, where);
        } /* else: unrecognized item type, skipped (PS3.8 §9.3.1) */
    }
    if (!has_app)
        return fail(d, MWL_E_MALFORMED, body, "%s has no application context item", where);
    if (contexts == 0)
        return fail(d, MWL_E_MALFORMED, body, "%s has no presentation context item", where);
    if (!has_user)
        return fail(d, MWL_E_MALFORMED, body, "%s has no user information item", where);

    /* Second pass: allocate and fill. */
    const char *app_name;
    mwl_user_info *ui;
    void *array;
    uint8_t seen[32] = {0};
    if (is_rq) {
        mwl_assoc_rq *rq = &out->u.associate_rq;
        rq->protocol_version = mwl_load_u16be(body);
        memcpy(rq->echo, body + 4, sizeof rq->echo);
        if ((rc = take_ae_title(d, body + 4, "called AE title", rq->called_ae)) != MWL_OK ||
            (rc = take_ae_title(d, body + 20, "calling AE title", rq->calling_ae)) != MWL_OK)
            return rc;
        array = rq->contexts = take_array(d, contexts, sizeof *rq->contexts);
        ui = &rq->user_info;
    } else {
        mwl_assoc_ac *ac = &out->u.associate_ac;
        ac->protocol_version = mwl_load_u16be(body);
        memcpy(ac->echo, body + 4, sizeof ac->echo); /* bytes 11-74: not tested (Table 9-17) */
        array = ac->contexts = take_array(d, contexts, sizeof *ac->contexts);
        ui = &ac->user_info;
    }
    if (!array)
        return out_of_memory(d, body);
    if ((rc = take_uid(d, app.value, app.length, "application context name", &app_name)) != MWL_OK)
        return rc;

    mwl_rd_init(&rd, body + ASSOCIATE_FIXED_SIZE, length - ASSOCIATE_FIXED_SIZE);
    while (mwl_rd_left(&rd) > 0) {
        (void)next_item(d, &rd, where, &it); /* checked in the first pass */
        if (it.type != context_type)
            continue;
        if (is_rq) {
            mwl_assoc_rq *rq = &out->u.associate_rq;
            rc = decode_pctx_rq(d, &it, seen, &rq->contexts[rq->context_count++]);
        } else {
            mwl_assoc_ac *ac = &out->u.associate_ac;
            rc = decode_pctx_ac(d, &it, seen, &ac->contexts[ac->context_count++]);
        }
        if (rc != MWL_OK)
            return rc;
    }
    if ((rc = decode_user_info(d, &user, ui)) != MWL_OK)
        return rc;
    if (is_rq)
        out->u.associate_rq.application_context = app_name;
    else
        out->u.associate_ac.application_context = app_name;
    return MWL_OK;
}

/* ---- P-DATA-TF ------------------------------------------------------- */

/* PS3.8 §9.3.5, Table 9-23: PDV items with a 32-bit length, a context ID
 * and a message control header. A PDV never spans PDUs (Annex E.1), so a
 * PDV length running past the PDU is malformed. */
static int decode_p_data(const decoder *d, const uint8_t *body, size_t length, mwl_pdu *out)
{
    mwl_rd rd;
    size_t count = 0;
    uint32_t pdv_length;

    mwl_rd_init(&rd, body, length);
    while (mwl_rd_left(&rd) > 0) {
        const uint8_t *at = mwl_rd_ptr(&rd);
        if (!mwl_rd_u32be(&rd, &pdv_length))
            return fail(d, MWL_E_MALFORMED, at, "truncated PDV item header");
        if (pdv_length < PDV_MIN_LENGTH)
            return fail(d, MWL_E_MALFORMED, at, "PDV item length %u is below 2", pdv_length);
        if (!mwl_rd_need(&rd, pdv_length))
            return fail(d, MWL_E_MALFORMED, at, "PDV item length %u runs past the PDU", pdv_length);
        /* Whether the context was accepted is the state machine's business. */
        int rc = check_odd_id(d, at, mwl_rd_ptr(&rd)[0]);
        if (rc != MWL_OK)
            return rc;
        if (++count > d->lim->max_pdvs)
            return fail(d, MWL_E_LIMIT, at, "more than %zu PDVs in one P-DATA-TF", d->lim->max_pdvs);
        (void)mwl_rd_skip(&rd, pdv_length);
    }
    if (count == 0) /* unreachable: PDU-length >= 6 is checked first */
        return fail(d, MWL_E_MALFORMED, body, "P-DATA-TF without PDV items");

    mwl_pdv *pdvs = take_array(d, count, sizeof *pdvs);
    if (!pdvs)
        return out_of_memory(d, body);
    mwl_rd_init(&rd, body, length);
    for (size_t i = 0; i < count; i++) {
        (void)mwl_rd_u32be(&rd, &pdv_length);
        const uint8_t *p = mwl_rd_ptr(&rd);
        pdvs[i].context_id = p[0];
        /* Annex E.2: bits 2-7 are "never checked on receipt". */
        pdvs[i].control = (uint8_t)(p[1] & (MWL_PDV_COMMAND | MWL_PDV_LAST));
        pdvs[i].data = p + PDV_MIN_LENGTH;
        pdvs[i].length = pdv_length - PDV_MIN_LENGTH;
        (void)mwl_rd_skip(&rd, pdv_length);
    }
    out->u.p_data.pdvs = pdvs;
    out->u.p_data.pdv_count = count;
    return MWL_OK;
}

int mwl_pdu_decode(const uint8_t *in, size_t len, mwl_arena *arena, const mwl_pdu_limits *lim, mwl_pdu *out,
                   size_t *consumed, mwl_diag *diag)
{
    mwl_pdu_limits defaults;
    if (!lim) {
        mwl_pdu_limits_init(&defaults);
        lim = &defaults;
    }
    decoder d = {in, arena, lim, diag};
    mwl_diag_clear(diag);
    uint8_t type;
    uint32_t length;
    int rc = mwl_pdu_peek_header(in, len, &type, &length);
    if (rc != MWL_OK)
        return rc;

    /* Everything the header alone can tell is decided now, before any
     * caller buffers up to 4 GiB waiting for the rest. */
    size_t min_length;
    switch (type) {
    case MWL_PDU_ASSOCIATE_RQ:
    case MWL_PDU_ASSOCIATE_AC: min_length = ASSOCIATE_FIXED_SIZE; break;
    case MWL_PDU_P_DATA_TF: min_length = PDV_HEADER_SIZE + PDV_MIN_LENGTH; break; /* one PDV at least */
    case MWL_PDU_ASSOCIATE_RJ:
    case MWL_PDU_RELEASE_RQ:
    case MWL_PDU_RELEASE_RP:
    case MWL_PDU_ABORT:
        /* PS3.8 Tables 9-21, 9-24, 9-25, 9-26: PDU-length is 00000004H. */
        if (length != FIXED_PDU_LENGTH)
            return fail(&d, MWL_E_MALFORMED, in + 2, "PDU type %02XH with PDU-length %u (must be 4)", type,
                        length);
        min_length = FIXED_PDU_LENGTH;
        break;
    default: return fail(&d, MWL_E_UNSUPPORTED, in, "unrecognized PDU type %02XH", type);
    }
    if (length > lim->max_pdu_length)
        return fail(&d, MWL_E_LIMIT, in + 2, "PDU-length %u is over the limit of %u", length,
                    lim->max_pdu_length);
    if (length < min_length)
        return fail(&d, MWL_E_MALFORMED, in + 2, "PDU type %02XH with PDU-length %u (at least %zu)", type,
                    length, min_length);
    if (len - MWL_PDU_HEADER_SIZE < length)
        return MWL_NEED_MORE;

    memset(out, 0, sizeof *out);
    out->type = (mwl_pdu_type)type;
    out->length = length;
    const uint8_t *body = in + MWL_PDU_HEADER_SIZE;
    switch (out->type) {
    case MWL_PDU_ASSOCIATE_RQ: rc = decode_associate(&d, body, length, true, out); break;
    case MWL_PDU_ASSOCIATE_AC: rc = decode_associate(&d, body, length, false, out); break;
    case MWL_PDU_P_DATA_TF: rc = decode_p_data(&d, body, length, out); break;
    case MWL_PDU_ASSOCIATE_RJ: /* Table 9-21: reserved, result, source, reason */
        out->u.associate_rj.result = body[1];
        out->u.associate_rj.source = body[2];
        out->u.associate_rj.reason = body[3];
        break;
    case MWL_PDU_ABORT: /* Table 9-26: two reserved bytes, source, reason */
        out->u.abort.source = body[2];
        out->u.abort.reason = body[3];
        break;
    case MWL_PDU_RELEASE_RQ:
    case MWL_PDU_RELEASE_RP: break; /* four reserved bytes */
    }
    if (rc != MWL_OK)
        return rc;
    *consumed = MWL_PDU_HEADER_SIZE + (size_t)length;
    return MWL_OK;
}

/* ======================================================================
 * Encoding
 * ====================================================================== */

/* Each encoder remembers where its PDU starts; on MWL_E_INVALID it drops
 * what it wrote, so `out` never ends in half a PDU. */
static int encode_finish(mwl_wbuf *w, size_t start, int rc)
{
    if (w->status != MWL_OK)
        return w->status;
    if (rc != MWL_OK)
        w->len = start;
    return rc;
}

/* Writes the PDU header with a length to patch; returns where it starts. */
static size_t pdu_begin(mwl_wbuf *w, uint8_t type)
{
    size_t start = w->len;
    mwl_wbuf_put_u8(w, type);
    mwl_wbuf_put_u8(w, 0); /* reserved */
    mwl_wbuf_put_u32be(w, 0);
    return start;
}

static int pdu_end(mwl_wbuf *w, size_t start)
{
    if (w->status != MWL_OK)
        return w->status;
    size_t n = w->len - start - MWL_PDU_HEADER_SIZE;
    if (n > UINT32_MAX)
        return MWL_E_INVALID;
    mwl_store_u32be(w->data + start + 2, (uint32_t)n);
    return MWL_OK;
}

/* Writes an item header with a 16-bit length to patch (PS3.8 §9.3.2). */
static size_t item_begin(mwl_wbuf *w, uint8_t type)
{
    mwl_wbuf_put_u8(w, type);
    mwl_wbuf_put_u8(w, 0); /* reserved; for 57H the sub-item version, 0 */
    size_t at = w->len;
    mwl_wbuf_put_u16be(w, 0);
    return at;
}

/* Patches the item length; more than 65535 bytes cannot be expressed. */
static int item_end(mwl_wbuf *w, size_t at)
{
    if (w->status != MWL_OK)
        return w->status;
    size_t n = w->len - at - 2;
    if (n > UINT16_MAX)
        return MWL_E_INVALID;
    mwl_store_u16be(w->data + at, (uint16_t)n);
    return MWL_OK;
}

/* Length of a string field that must fit `max` bytes, or SIZE_MAX. */
static size_t field_length(const char *s, size_t max)
{
    if (!s)
        return SIZE_MAX;
    size_t n = strnlen(s, max + 1);
    return n > max ? SIZE_MAX : n;
}

/* An item holding one string (10H, 30H, 40H, 52H, 55H); UIDs are written
 * without padding (PS3.8 Annex F). */
static int put_string_item(mwl_wbuf *w, uint8_t type, const char *s, size_t max)
{
    size_t n = field_length(s, max);
    if (n == SIZE_MAX)
        return MWL_E_INVALID;
    mwl_wbuf_put_u8(w, type);
    mwl_wbuf_put_u8(w, 0);
    mwl_wbuf_put_u16be(w, (uint16_t)n);
    mwl_wbuf_put(w, s, n);
    return MWL_OK;
}

/* A 16-bit length and a UID, as inside 54H, 56H and 57H. */
static int put_uid_field(mwl_wbuf *w, const char *uid)
{
    size_t n = field_length(uid, MWL_UID_MAX);
    if (n == SIZE_MAX)
        return MWL_E_INVALID;
    mwl_wbuf_put_u16be(w, (uint16_t)n);
    mwl_wbuf_put(w, uid, n);
    return MWL_OK;
}

static int put_bytes_field(mwl_wbuf *w, const uint8_t *p, size_t n)
{
    if (n > UINT16_MAX || (n > 0 && !p))
        return MWL_E_INVALID;
    mwl_wbuf_put_u16be(w, (uint16_t)n);
    mwl_wbuf_put(w, p, n);
    return MWL_OK;
}

static bool optional_string(const char *s)
{
    return s && s[0] != '\0';
}

/* Item 50H with its sub-items in ascending type order, which some old
 * receivers rely on (PS3.8 §9.3.2.3 note). */
static int encode_user_info(const mwl_user_info *ui, mwl_wbuf *w)
{
    int rc = MWL_OK;
    if ((ui->role_count && !ui->roles) || (ui->ext_negotiation_count && !ui->ext_negotiations) ||
        (ui->common_ext_negotiation_count && !ui->common_ext_negotiations))
        return MWL_E_INVALID;
    size_t at = item_begin(w, ITEM_USER_INFO);

    /* 51H, PS3.8 D.1: required in both directions. */
    mwl_wbuf_put(w, (const uint8_t[]){SUB_MAX_LENGTH, 0, 0, 4}, 4);
    mwl_wbuf_put_u32be(w, ui->max_length);
    if (optional_string(ui->implementation_class_uid))
        rc = put_string_item(w, SUB_IMPLEMENTATION_CLASS_UID, ui->implementation_class_uid, MWL_UID_MAX);
    if (rc == MWL_OK && ui->has_async_window) {
        mwl_wbuf_put(w, (const uint8_t[]){SUB_ASYNC_WINDOW, 0, 0, 4}, 4);
        mwl_wbuf_put_u16be(w, ui->max_operations_invoked);
        mwl_wbuf_put_u16be(w, ui->max_operations_performed);
    }
    for (size_t i = 0; rc == MWL_OK && i < ui->role_count; i++) {
        size_t sub = item_begin(w, SUB_ROLE_SELECTION);
        rc = put_uid_field(w, ui->roles[i].sop_class_uid);
        mwl_wbuf_put_u8(w, ui->roles[i].scu_role);
        mwl_wbuf_put_u8(w, ui->roles[i].scp_role);
        if (rc == MWL_OK)
            rc = item_end(w, sub);
    }
    if (rc == MWL_OK && optional_string(ui->implementation_version_name))
        rc =
            put_string_item(w, SUB_IMPLEMENTATION_VERSION, ui->implementation_version_name, VERSION_NAME_MAX);
    for (size_t i = 0; rc == MWL_OK && i < ui->ext_negotiation_count; i++) {
        const mwl_ext_negotiation *e = &ui->ext_negotiations[i];
        if (e->info_length > 0 && !e->info)
            return MWL_E_INVALID;
        size_t sub = item_begin(w, SUB_EXT_NEGOTIATION);
        rc = put_uid_field(w, e->sop_class_uid);
        if (rc == MWL_OK && e->info_length > UINT16_MAX)
            rc = MWL_E_INVALID;
        if (rc == MWL_OK) {
            mwl_wbuf_put(w, e->info, e->info_length);
            rc = item_end(w, sub);
        }
    }
    for (size_t i = 0; rc == MWL_OK && i < ui->common_ext_negotiation_count; i++) {
        const mwl_common_ext_negotiation *c = &ui->common_ext_negotiations[i];
        if (c->related_count && !c->related_sop_classes)
            return MWL_E_INVALID;
        size_t sub = item_begin(w, SUB_COMMON_EXT_NEGOTIATION); /* sub-item version 0 */
        rc = put_uid_field(w, c->sop_class_uid);
        if (rc == MWL_OK)
            rc = put_uid_field(w, c->service_class_uid);
        size_t list = w->len;
        mwl_wbuf_put_u16be(w, 0);
        for (size_t j = 0; rc == MWL_OK && j < c->related_count; j++)
            rc = put_uid_field(w, c->related_sop_classes[j]);
        if (rc == MWL_OK)
            rc = item_end(w, list); /* the list length is a 16-bit field too */
        if (rc == MWL_OK)
            rc = item_end(w, sub);
    }
    if (rc == MWL_OK && ui->has_user_identity_rq) {
        const mwl_user_identity_rq *id = &ui->user_identity_rq;
        size_t sub = item_begin(w, SUB_USER_IDENTITY_RQ);
        mwl_wbuf_put_u8(w, id->type);
        mwl_wbuf_put_u8(w, id->positive_response_requested);
        rc = put_bytes_field(w, id->primary_field, id->primary_length);
        if (rc == MWL_OK)
            rc = put_bytes_field(w, id->secondary_field, id->secondary_length);
        if (rc == MWL_OK)
            rc = item_end(w, sub);
    }
    if (rc == MWL_OK && ui->has_user_identity_ac) {
        size_t sub = item_begin(w, SUB_USER_IDENTITY_AC);
        rc = put_bytes_field(w, ui->server_response, ui->server_response_length);
        if (rc == MWL_OK)
            rc = item_end(w, sub);
    }
    if (rc == MWL_OK)
        rc = item_end(w, at);
    return rc;
}

/* Context IDs: odd, 1..255, unique (PS3.8 §9.3.2.2, §7.1.1.13). */
static int check_encode_context_id(uint8_t id, uint8_t seen[32])
{
    if (id % 2 == 0 || (seen[id / 8] & (1u << (id % 8))))
        return MWL_E_INVALID;
    seen[id / 8] = (uint8_t)(seen[id / 8] | (1u << (id % 8)));
    return MWL_OK;
}

/* AE title field: 16 bytes, space padded (PS3.8 Table 9-11). */
static int put_ae_title(mwl_wbuf *w, const char title[MWL_AE_TITLE_MAX + 1])
{
    size_t n = strnlen(title, MWL_AE_TITLE_MAX + 1);
    if (n > MWL_AE_TITLE_MAX)
        return MWL_E_INVALID;
    mwl_wbuf_put(w, title, n);
    mwl_wbuf_fill(w, ' ', MWL_AE_TITLE_MAX - n);
    return MWL_OK;
}

int mwl_pdu_encode_associate_rq(const mwl_assoc_rq *rq, mwl_wbuf *out)
{
    if (out->status != MWL_OK)
        return out->status;
    if (rq->context_count == 0 || !rq->contexts)
        return MWL_E_INVALID; /* the decoder would reject it: one or more 20H */
    size_t start = pdu_begin(out, MWL_PDU_ASSOCIATE_RQ);
    mwl_wbuf_put_u16be(out, rq->protocol_version);
    mwl_wbuf_put_u16be(out, 0);
    int rc = put_ae_title(out, rq->called_ae);
    if (rc == MWL_OK)
        rc = put_ae_title(out, rq->calling_ae);
    mwl_wbuf_fill(out, 0, 32); /* bytes 43-74, reserved */
    if (rc == MWL_OK)
        rc = put_string_item(out, ITEM_APPLICATION_CONTEXT, rq->application_context, MWL_UID_MAX);

    uint8_t seen[32] = {0};
    for (size_t i = 0; rc == MWL_OK && i < rq->context_count; i++) {
        const mwl_pctx_rq *c = &rq->contexts[i];
        rc = check_encode_context_id(c->id, seen);
        if (rc == MWL_OK && (c->transfer_syntax_count == 0 || !c->transfer_syntaxes))
            rc = MWL_E_INVALID;
        if (rc != MWL_OK)
            break;
        size_t at = item_begin(out, ITEM_PCTX_RQ);
        mwl_wbuf_put(out, (const uint8_t[]){c->id, 0, 0, 0}, 4);
        rc = put_string_item(out, ITEM_ABSTRACT_SYNTAX, c->abstract_syntax, MWL_UID_MAX);
        for (size_t j = 0; rc == MWL_OK && j < c->transfer_syntax_count; j++)
            rc = put_string_item(out, ITEM_TRANSFER_SYNTAX, c->transfer_syntaxes[j], MWL_UID_MAX);
        if (rc == MWL_OK)
            rc = item_end(out, at);
    }
    if (rc == MWL_OK)
        rc = encode_user_info(&rq->user_info, out);
    if (rc == MWL_OK)
        rc = pdu_end(out, start);
    return encode_finish(out, start, rc);
}

int mwl_pdu_encode_associate_ac(const mwl_assoc_ac *ac, mwl_wbuf *out)
{
    if (out->status != MWL_OK)
        return out->status;
    if (ac->context_count == 0 || !ac->contexts)
        return MWL_E_INVALID;
    size_t start = pdu_begin(out, MWL_PDU_ASSOCIATE_AC);
    mwl_wbuf_put_u16be(out, ac->protocol_version);
    mwl_wbuf_put_u16be(out, 0);
    mwl_wbuf_put(out, ac->echo, sizeof ac->echo); /* bytes 11-74 of the RQ (Table 9-17) */
    int rc = put_string_item(out, ITEM_APPLICATION_CONTEXT, ac->application_context, MWL_UID_MAX);

    uint8_t seen[32] = {0};
    for (size_t i = 0; rc == MWL_OK && i < ac->context_count; i++) {
        const mwl_pctx_ac *c = &ac->contexts[i];
        rc = check_encode_context_id(c->id, seen);
        /* An accepted context names the transfer syntax in use (§9.3.3.2). */
        if (rc == MWL_OK && c->result == MWL_PCTX_ACCEPTANCE && !optional_string(c->transfer_syntax))
            rc = MWL_E_INVALID;
        if (rc != MWL_OK)
            break;
        size_t at = item_begin(out, ITEM_PCTX_AC);
        mwl_wbuf_put(out, (const uint8_t[]){c->id, 0, c->result, 0}, 4);
        /* Rejected contexts still carry a 40H sub-item, possibly empty: some
         * receivers expect one (upper-layer.md §5.1 practice note). */
        rc = put_string_item(out, ITEM_TRANSFER_SYNTAX, c->transfer_syntax ? c->transfer_syntax : "",
                             MWL_UID_MAX);
        if (rc == MWL_OK)
            rc = item_end(out, at);
    }
    if (rc == MWL_OK)
        rc = encode_user_info(&ac->user_info, out);
    if (rc == MWL_OK)
        rc = pdu_end(out, start);
    return encode_finish(out, start, rc);
}

/* The four fixed-length PDUs: header, PDU-length 4, four bytes. */
static int encode_fixed(mwl_wbuf *out, uint8_t type, uint8_t b7, uint8_t b8, uint8_t b9, uint8_t b10)
{
    if (out->status != MWL_OK)
        return out->status;
    mwl_wbuf_put(out, (const uint8_t[]){type, 0, 0, 0, 0, FIXED_PDU_LENGTH, b7, b8, b9, b10}, 10);
    return out->status;
}

int mwl_pdu_encode_associate_rj(const mwl_assoc_rj *rj, mwl_wbuf *out)
{
    return encode_fixed(out, MWL_PDU_ASSOCIATE_RJ, 0, rj->result, rj->source, rj->reason); /* Table 9-21 */
}

int mwl_pdu_encode_release_rq(mwl_wbuf *out)
{
    return encode_fixed(out, MWL_PDU_RELEASE_RQ, 0, 0, 0, 0); /* Table 9-24 */
}

int mwl_pdu_encode_release_rp(mwl_wbuf *out)
{
    return encode_fixed(out, MWL_PDU_RELEASE_RP, 0, 0, 0, 0); /* Table 9-25 */
}

int mwl_pdu_encode_abort(uint8_t source, uint8_t reason, mwl_wbuf *out)
{
    return encode_fixed(out, MWL_PDU_ABORT, 0, 0, source, reason); /* Table 9-26 */
}

int mwl_pdu_encode_p_data(const mwl_pdv *pdvs, size_t count, mwl_wbuf *out)
{
    if (out->status != MWL_OK)
        return out->status;
    if (count == 0 || !pdvs)
        return MWL_E_INVALID; /* a P-DATA-TF holds one or more PDVs (Table 9-22) */
    size_t start = pdu_begin(out, MWL_PDU_P_DATA_TF);
    int rc = MWL_OK;
    for (size_t i = 0; rc == MWL_OK && i < count; i++) {
        const mwl_pdv *p = &pdvs[i];
        /* Annex E.2: bits 2-7 of the control header are sent as 0. */
        if (p->context_id % 2 == 0 || (p->control & ~(MWL_PDV_COMMAND | MWL_PDV_LAST)) != 0 ||
            (p->length > 0 && !p->data) || p->length > UINT32_MAX - PDV_MIN_LENGTH) {
            rc = MWL_E_INVALID;
            break;
        }
        mwl_wbuf_put_u32be(out, (uint32_t)(p->length + PDV_MIN_LENGTH));
        mwl_wbuf_put_u8(out, p->context_id);
        mwl_wbuf_put_u8(out, p->control);
        mwl_wbuf_put(out, p->data, p->length);
    }
    if (rc == MWL_OK)
        rc = pdu_end(out, start);
    return encode_finish(out, start, rc);
}

/* AE values (PS3.5 Table 6.2-1): at most 16 bytes of the default
 * repertoire without backslash or control characters, and not all spaces
 * (PS3.8 Table 9-11). Leading and trailing spaces are not significant, so
 * they are dropped, as the decoder does. */
static bool trim_ae_title(const char *s, const char **begin, size_t *length)
{
    if (!s)
        return false;
    size_t n = strnlen(s, MWL_AE_TITLE_MAX + 1);
    if (n > MWL_AE_TITLE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E || c == '\\')
            return false;
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    *begin = s;
    *length = n;
    return n > 0;
}

int mwl_assoc_rq_set_titles(mwl_assoc_rq *rq, const char *called_ae, const char *calling_ae)
{
    const char *called, *calling;
    size_t called_length, calling_length;
    if (!trim_ae_title(called_ae, &called, &called_length) ||
        !trim_ae_title(calling_ae, &calling, &calling_length))
        return MWL_E_INVALID;
    memcpy(rq->called_ae, called, called_length);
    rq->called_ae[called_length] = '\0';
    memcpy(rq->calling_ae, calling, calling_length);
    rq->calling_ae[calling_length] = '\0';
    /* echo mirrors bytes 11-74 as the encoder writes them. */
    memset(rq->echo, ' ', 2 * MWL_AE_TITLE_MAX);
    memcpy(rq->echo, called, called_length);
    memcpy(rq->echo + MWL_AE_TITLE_MAX, calling, calling_length);
    memset(rq->echo + 2 * MWL_AE_TITLE_MAX, 0, sizeof rq->echo - 2 * MWL_AE_TITLE_MAX);
    return MWL_OK;
}
