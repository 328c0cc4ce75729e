/* Command set encoding and decoding (PS3.7 §6.3.1, §9.3, Annex E).
 *
 * A command set is flat: group 0000 elements only, no sequences, always
 * Implicit VR Little Endian whatever the presentation context negotiated
 * (PS3.7 §6.3.1 note 2). That is simple enough, and strict enough (order,
 * group, group length), to be read here directly rather than through the
 * general data set codec. */
#include <string.h>

#include "dicom/dict.h"
#include "dicom/tag.h"
#include "dimse/dimse.h"
#include "dimse/dimse_int.h"

void mwl_dimse_command_init(mwl_dimse_command *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->data_set_type = MWL_DIMSE_DATASET_NONE;
}

const char *mwl_dimse_command_name(uint16_t command_field)
{
    switch (command_field) {
    case MWL_DIMSE_C_STORE_RQ: return "C-STORE-RQ";
    case MWL_DIMSE_C_STORE_RSP: return "C-STORE-RSP";
    case MWL_DIMSE_C_GET_RQ: return "C-GET-RQ";
    case MWL_DIMSE_C_GET_RSP: return "C-GET-RSP";
    case MWL_DIMSE_C_FIND_RQ: return "C-FIND-RQ";
    case MWL_DIMSE_C_FIND_RSP: return "C-FIND-RSP";
    case MWL_DIMSE_C_MOVE_RQ: return "C-MOVE-RQ";
    case MWL_DIMSE_C_MOVE_RSP: return "C-MOVE-RSP";
    case MWL_DIMSE_C_ECHO_RQ: return "C-ECHO-RQ";
    case MWL_DIMSE_C_ECHO_RSP: return "C-ECHO-RSP";
    case MWL_DIMSE_N_EVENT_REPORT_RQ: return "N-EVENT-REPORT-RQ";
    case MWL_DIMSE_N_EVENT_REPORT_RQ | MWL_DIMSE_RSP: return "N-EVENT-REPORT-RSP";
    case MWL_DIMSE_N_GET_RQ: return "N-GET-RQ";
    case MWL_DIMSE_N_GET_RQ | MWL_DIMSE_RSP: return "N-GET-RSP";
    case MWL_DIMSE_N_SET_RQ: return "N-SET-RQ";
    case MWL_DIMSE_N_SET_RQ | MWL_DIMSE_RSP: return "N-SET-RSP";
    case MWL_DIMSE_N_ACTION_RQ: return "N-ACTION-RQ";
    case MWL_DIMSE_N_ACTION_RQ | MWL_DIMSE_RSP: return "N-ACTION-RSP";
    case MWL_DIMSE_N_CREATE_RQ: return "N-CREATE-RQ";
    case MWL_DIMSE_N_CREATE_RQ | MWL_DIMSE_RSP: return "N-CREATE-RSP";
    case MWL_DIMSE_N_DELETE_RQ: return "N-DELETE-RQ";
    case MWL_DIMSE_N_DELETE_RQ | MWL_DIMSE_RSP: return "N-DELETE-RSP";
    case MWL_DIMSE_C_CANCEL_RQ: return "C-CANCEL-RQ";
    default: return "unknown";
    }
}

/* ---- rules shared by encoder and decoder --------------------------------- */

/* The tag of the first required element `cmd` lacks, or 0 when complete.
 * CommandField and CommandDataSetType are checked by the decoder itself
 * (the struct always has them). PS3.7 Tables 9.3-3/4/5/12/13. */
static uint32_t missing_required(const mwl_dimse_command *cmd)
{
    uint16_t cf = cmd->command_field;
    unsigned need = 0;
    if (mwl_dimse_is_response(cf))
        need = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_STATUS;
    else if (cf == MWL_DIMSE_C_CANCEL_RQ)
        need = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO;
    else
        need = MWL_DIMSE_HAS_MESSAGE_ID; /* a request we cannot answer otherwise */
    if (cf == MWL_DIMSE_C_ECHO_RQ || cf == MWL_DIMSE_C_FIND_RQ)
        need |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
    if (cf == MWL_DIMSE_C_FIND_RQ)
        need |= MWL_DIMSE_HAS_PRIORITY;

    static const struct {
        unsigned bit;
        uint32_t tag;
    } order[] = {
        {MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID, MWL_TAG_AffectedSOPClassUID},
        {MWL_DIMSE_HAS_MESSAGE_ID, MWL_TAG_MessageID},
        {MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO, MWL_TAG_MessageIDBeingRespondedTo},
        {MWL_DIMSE_HAS_PRIORITY, MWL_TAG_Priority},
        {MWL_DIMSE_HAS_STATUS, MWL_TAG_Status},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((need & order[i].bit) && !(cmd->present & order[i].bit))
            return order[i].tag;
    return 0;
}

/* PS3.5 §9.1: a UID is digits and '.', at most 64 characters. Empty is
 * allowed here (a zero-length value), the caller decides whether it matters. */
static bool uid_ok(const char *uid, size_t len)
{
    if (len > MWL_DIMSE_UID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((uid[i] >= '0' && uid[i] <= '9') || uid[i] == '.'))
            return false;
    return true;
}

/* ---- encoder ------------------------------------------------------------- */

static void put_header(mwl_wbuf *out, uint32_t tag, uint32_t length)
{
    mwl_wbuf_put_u16le(out, MWL_TAG_GROUP(tag));
    mwl_wbuf_put_u16le(out, MWL_TAG_ELEMENT(tag));
    mwl_wbuf_put_u32le(out, length);
}

static void put_us(mwl_wbuf *out, uint32_t tag, uint16_t value)
{
    put_header(out, tag, 2);
    mwl_wbuf_put_u16le(out, value);
}

/* UI: odd lengths padded with one 00H (PS3.5 §6.2). */
static void put_ui(mwl_wbuf *out, uint32_t tag, const char *uid)
{
    size_t len = strlen(uid);
    put_header(out, tag, (uint32_t)(len + (len & 1)));
    mwl_wbuf_put(out, uid, len);
    if (len & 1)
        mwl_wbuf_put_u8(out, 0x00);
}

/* LO in the default repertoire: see the mwl_dimse_encode_command contract. */
static void put_error_comment(mwl_wbuf *out, const char *text)
{
    size_t len = strlen(text);
    if (len > MWL_DIMSE_ERROR_COMMENT_MAX)
        len = MWL_DIMSE_ERROR_COMMENT_MAX;
    put_header(out, MWL_TAG_ErrorComment, (uint32_t)(len + (len & 1)));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        mwl_wbuf_put_u8(out, (c < 0x20 || c > 0x7E || c == '\\') ? (uint8_t)'?' : c);
    }
    if (len & 1)
        mwl_wbuf_put_u8(out, ' ');
}

int mwl_dimse_encode_command(const mwl_dimse_command *cmd, mwl_wbuf *out)
{
    if (!cmd || !out || (cmd->present & ~(unsigned)MWL_DIMSE_HAS_ALL))
        return MWL_E_INVALID;
    if (missing_required(cmd))
        return MWL_E_INVALID;
    /* Validate everything before writing, so an invalid command appends
     * nothing. */
    if (cmd->present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID) {
        const char *u = cmd->affected_sop_class_uid;
        if (!u || !uid_ok(u, strlen(u)))
            return MWL_E_INVALID;
    }
    if (cmd->present & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID) {
        const char *u = cmd->affected_sop_instance_uid;
        if (!u || !uid_ok(u, strlen(u)))
            return MWL_E_INVALID;
    }
    if (cmd->present & MWL_DIMSE_HAS_OFFENDING_ELEMENT) {
        if (cmd->offending_element_count && !cmd->offending_elements)
            return MWL_E_INVALID;
        if (cmd->offending_element_count > 0xFFFFFFF0u / 4)
            return MWL_E_INVALID;
    }
    if ((cmd->present & MWL_DIMSE_HAS_ERROR_COMMENT) && !cmd->error_comment)
        return MWL_E_INVALID;
    if (out->status != MWL_OK)
        return out->status;

    size_t start = out->len;
    put_header(out, MWL_TAG_CommandGroupLength, 4);
    mwl_wbuf_put_u32le(out, 0); /* patched below */
    size_t body = out->len;

    /* Increasing tag order (PS3.7 §6.3.1). */
    if (cmd->present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID)
        put_ui(out, MWL_TAG_AffectedSOPClassUID, cmd->affected_sop_class_uid);
    put_us(out, MWL_TAG_CommandField, cmd->command_field);
    if (cmd->present & MWL_DIMSE_HAS_MESSAGE_ID)
        put_us(out, MWL_TAG_MessageID, cmd->message_id);
    if (cmd->present & MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO)
        put_us(out, MWL_TAG_MessageIDBeingRespondedTo, cmd->message_id_being_responded_to);
    if (cmd->present & MWL_DIMSE_HAS_PRIORITY)
        put_us(out, MWL_TAG_Priority, cmd->priority);
    put_us(out, MWL_TAG_CommandDataSetType, cmd->data_set_type);
    if (cmd->present & MWL_DIMSE_HAS_STATUS)
        put_us(out, MWL_TAG_Status, cmd->status);
    if (cmd->present & MWL_DIMSE_HAS_OFFENDING_ELEMENT) {
        put_header(out, MWL_TAG_OffendingElement, (uint32_t)(cmd->offending_element_count * 4));
        for (size_t i = 0; i < cmd->offending_element_count; i++) {
            /* AT: group then element, each a US (PS3.5 §6.2). */
            mwl_wbuf_put_u16le(out, MWL_TAG_GROUP(cmd->offending_elements[i]));
            mwl_wbuf_put_u16le(out, MWL_TAG_ELEMENT(cmd->offending_elements[i]));
        }
    }
    if (cmd->present & MWL_DIMSE_HAS_ERROR_COMMENT)
        put_error_comment(out, cmd->error_comment);
    if (cmd->present & MWL_DIMSE_HAS_ERROR_ID)
        put_us(out, MWL_TAG_ErrorID, cmd->error_id);
    if (cmd->present & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID)
        put_ui(out, MWL_TAG_AffectedSOPInstanceUID, cmd->affected_sop_instance_uid);

    if (out->status != MWL_OK)
        return out->status;
    /* CommandGroupLength: the bytes after its own value (PS3.7 §6.3.1),
     * known only now. Command sets are tiny, so this cannot overflow 32 bits
     * unless the offending list is absurd, which was refused above. */
    size_t group_length = out->len - body;
    if (group_length > UINT32_MAX) {
        out->len = start;
        return MWL_E_INVALID;
    }
    mwl_store_u32le(out->data + body - 4, (uint32_t)group_length);
    return MWL_OK;
}

/* ---- builders ------------------------------------------------------------ */

int mwl_dimse_encode_echo_rq(uint16_t message_id, mwl_wbuf *out)
{
    mwl_dimse_command c;
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_ECHO_RQ;
    c.present = MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID | MWL_DIMSE_HAS_MESSAGE_ID;
    c.affected_sop_class_uid = MWL_UID_Verification;
    c.message_id = message_id;
    return mwl_dimse_encode_command(&c, out);
}

int mwl_dimse_encode_echo_rsp(uint16_t message_id_being_responded_to, const char *affected_sop_class_uid,
                              uint16_t status, mwl_wbuf *out)
{
    mwl_dimse_command c;
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_ECHO_RSP;
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_STATUS;
    c.message_id_being_responded_to = message_id_being_responded_to;
    c.status = status;
    if (affected_sop_class_uid) {
        c.present |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
        c.affected_sop_class_uid = affected_sop_class_uid;
    }
    return mwl_dimse_encode_command(&c, out);
}

int mwl_dimse_encode_find_rq(uint16_t message_id, const char *affected_sop_class_uid, uint16_t priority,
                             mwl_wbuf *out)
{
    if (!affected_sop_class_uid || priority > MWL_DIMSE_PRIORITY_LOW)
        return MWL_E_INVALID;
    mwl_dimse_command c;
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_FIND_RQ;
    c.data_set_type = MWL_DIMSE_DATASET_PRESENT; /* the Identifier is mandatory */
    c.present = MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID | MWL_DIMSE_HAS_MESSAGE_ID | MWL_DIMSE_HAS_PRIORITY;
    c.affected_sop_class_uid = affected_sop_class_uid;
    c.message_id = message_id;
    c.priority = priority;
    return mwl_dimse_encode_command(&c, out);
}

int mwl_dimse_encode_find_rsp(uint16_t message_id_being_responded_to, const char *affected_sop_class_uid,
                              uint16_t status, const char *error_comment, const uint32_t *offending_elements,
                              size_t offending_element_count, mwl_wbuf *out)
{
    mwl_dimse_class cls = mwl_dimse_status_class(status);
    /* PS3.7 Annex C: Error Comment and Offending Element are the related
     * fields of failures and warnings only. */
    if ((error_comment || offending_element_count) && cls != MWL_DIMSE_CLASS_FAILURE &&
        cls != MWL_DIMSE_CLASS_WARNING)
        return MWL_E_INVALID;
    mwl_dimse_command c;
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_FIND_RSP;
    /* PS3.7 §9.1.2.1.5: the Identifier comes with Pending only. */
    c.data_set_type =
        mwl_dimse_status_is_pending(status) ? MWL_DIMSE_DATASET_PRESENT : MWL_DIMSE_DATASET_NONE;
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_STATUS;
    c.message_id_being_responded_to = message_id_being_responded_to;
    c.status = status;
    if (affected_sop_class_uid) {
        c.present |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
        c.affected_sop_class_uid = affected_sop_class_uid;
    }
    if (error_comment) {
        c.present |= MWL_DIMSE_HAS_ERROR_COMMENT;
        c.error_comment = error_comment;
    }
    if (offending_element_count) {
        c.present |= MWL_DIMSE_HAS_OFFENDING_ELEMENT;
        c.offending_elements = offending_elements;
        c.offending_element_count = offending_element_count;
    }
    return mwl_dimse_encode_command(&c, out);
}

int mwl_dimse_encode_cancel_rq(uint16_t message_id_being_responded_to, mwl_wbuf *out)
{
    mwl_dimse_command c;
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_CANCEL_RQ;
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO;
    c.message_id_being_responded_to = message_id_being_responded_to;
    return mwl_dimse_encode_command(&c, out);
}

/* ---- decoder ------------------------------------------------------------- */

static int malformed(mwl_diag *diag, size_t offset, uint32_t tag, const char *what)
{
    mwl_diag_set(diag, offset, tag, "command set: %s", what);
    return MWL_E_MALFORMED;
}

static int get_us(const uint8_t *value, uint32_t length, uint16_t *out)
{
    if (length != 2)
        return MWL_E_MALFORMED;
    *out = mwl_load_u16le(value);
    return MWL_OK;
}

/* A UI value as a NUL-terminated arena string, trailing NUL/space padding
 * removed (PS3.5 §6.2; spaces are tolerated from peers that pad wrongly). */
static int get_uid(mwl_arena *arena, const uint8_t *value, uint32_t length, const char **out)
{
    size_t n = length;
    while (n && (value[n - 1] == 0x00 || value[n - 1] == ' '))
        n--;
    if (!uid_ok((const char *)value, n))
        return MWL_E_MALFORMED;
    char *s = mwl_arena_strndup(arena, (const char *)value, n);
    if (!s)
        return MWL_E_NOMEM;
    *out = s;
    return MWL_OK;
}

/* LO: leading and trailing spaces are not significant (PS3.5 §6.2). Any
 * other byte is kept, so the caller sees what the peer sent. */
static int get_lo(mwl_arena *arena, const uint8_t *value, uint32_t length, const char **out)
{
    /* The result is a C string, so it ends at the first NUL (a stray pad
     * some peers send); trimming happens after that cut so the string never
     * ends in a space. */
    const uint8_t *nul = length ? memchr(value, 0x00, length) : NULL;
    size_t b = 0, e = nul ? (size_t)(nul - value) : length;
    while (b < e && value[b] == ' ')
        b++;
    while (e > b && value[e - 1] == ' ')
        e--;
    char *s = mwl_arena_strndup(arena, (const char *)value + b, e - b);
    if (!s)
        return MWL_E_NOMEM;
    *out = s;
    return MWL_OK;
}

static int get_at_list(mwl_arena *arena, const uint8_t *value, uint32_t length, const uint32_t **out,
                       size_t *count)
{
    if (length % 4)
        return MWL_E_MALFORMED;
    size_t n = length / 4;
    uint32_t *tags = NULL;
    if (n) {
        tags = mwl_arena_alloc(arena, n * sizeof *tags);
        if (!tags)
            return MWL_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            tags[i] = MWL_TAG(mwl_load_u16le(value + 4 * i), mwl_load_u16le(value + 4 * i + 2));
    }
    *out = tags;
    *count = n;
    return MWL_OK;
}

/* Stores one known element's value into the struct. */
static int take_element(mwl_arena *arena, uint32_t tag, const uint8_t *value, uint32_t length,
                        mwl_dimse_command *cmd, bool *have_field, bool *have_type)
{
    int rc = MWL_OK;
    switch (tag) {
    case MWL_TAG_AffectedSOPClassUID:
        rc = get_uid(arena, value, length, &cmd->affected_sop_class_uid);
        cmd->present |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
        break;
    case MWL_TAG_CommandField:
        rc = get_us(value, length, &cmd->command_field);
        *have_field = true;
        break;
    case MWL_TAG_MessageID:
        rc = get_us(value, length, &cmd->message_id);
        cmd->present |= MWL_DIMSE_HAS_MESSAGE_ID;
        break;
    case MWL_TAG_MessageIDBeingRespondedTo:
        rc = get_us(value, length, &cmd->message_id_being_responded_to);
        cmd->present |= MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO;
        break;
    case MWL_TAG_Priority:
        rc = get_us(value, length, &cmd->priority);
        cmd->present |= MWL_DIMSE_HAS_PRIORITY;
        break;
    case MWL_TAG_CommandDataSetType:
        rc = get_us(value, length, &cmd->data_set_type);
        *have_type = true;
        break;
    case MWL_TAG_Status:
        rc = get_us(value, length, &cmd->status);
        cmd->present |= MWL_DIMSE_HAS_STATUS;
        break;
    case MWL_TAG_OffendingElement:
        rc = get_at_list(arena, value, length, &cmd->offending_elements, &cmd->offending_element_count);
        cmd->present |= MWL_DIMSE_HAS_OFFENDING_ELEMENT;
        break;
    case MWL_TAG_ErrorComment:
        rc = get_lo(arena, value, length, &cmd->error_comment);
        cmd->present |= MWL_DIMSE_HAS_ERROR_COMMENT;
        break;
    case MWL_TAG_ErrorID:
        rc = get_us(value, length, &cmd->error_id);
        cmd->present |= MWL_DIMSE_HAS_ERROR_ID;
        break;
    case MWL_TAG_AffectedSOPInstanceUID:
        rc = get_uid(arena, value, length, &cmd->affected_sop_instance_uid);
        cmd->present |= MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID;
        break;
    default:
        /* Retired or other-service elements (PS3.7 Annex E.2): not relied
         * upon, but kept in the raw command set. */
        break;
    }
    return rc;
}

int mwl_dimse_decode_command(const uint8_t *data, size_t len, mwl_arena *arena, mwl_dimse_command *out,
                             mwl_ds **command_set, mwl_diag *diag)
{
    if ((!data && len) || !arena || !out)
        return MWL_E_INVALID;
    mwl_dimse_command cmd;
    mwl_dimse_command_init(&cmd);
    mwl_ds *ds = NULL;
    if (command_set) {
        *command_set = NULL;
        if (mwl_ds_new(arena, NULL, &ds) != MWL_OK)
            return MWL_E_NOMEM;
    }

    mwl_rd rd;
    mwl_rd_init(&rd, data, len);
    bool first = true, have_field = false, have_type = false;
    uint32_t prev = 0;
    while (mwl_rd_left(&rd)) {
        size_t at = rd.pos;
        uint16_t group, element;
        uint32_t length;
        const uint8_t *value;
        if (!mwl_rd_u16le(&rd, &group) || !mwl_rd_u16le(&rd, &element) || !mwl_rd_u32le(&rd, &length))
            return malformed(diag, at, 0, "truncated element header");
        uint32_t tag = MWL_TAG(group, element);
        if (group != 0x0000)
            return malformed(diag, at, tag, "element outside group 0000");
        if (!first && tag <= prev)
            return malformed(diag, at, tag, "elements not in increasing tag order");
        if (length == 0xFFFFFFFFu)
            return malformed(diag, at, tag, "undefined length");
        if (!mwl_rd_bytes(&rd, length, &value))
            return malformed(diag, at, tag, "value runs past the end");
        if (first) {
            /* PS3.7 §6.3.1: CommandGroupLength is required and first. */
            if (tag != MWL_TAG_CommandGroupLength || length != 4)
                return malformed(diag, at, tag, "does not start with CommandGroupLength (UL)");
            if (mwl_load_u32le(value) != len - rd.pos)
                return malformed(diag, at, tag, "CommandGroupLength does not match the command set");
        }
        int rc = take_element(arena, tag, value, length, &cmd, &have_field, &have_type);
        if (rc == MWL_E_NOMEM)
            return rc;
        if (rc != MWL_OK)
            return malformed(diag, at, tag, "value of the wrong length or form");
        if (ds) {
            mwl_vr vr = mwl_dict_vr(tag);
            if (vr == MWL_VR_NONE || vr == MWL_VR_SQ)
                vr = MWL_VR_UN;
            if (mwl_ds_set(ds, tag, vr, value, length) != MWL_OK)
                return MWL_E_NOMEM;
        }
        first = false;
        prev = tag;
    }
    if (first)
        return malformed(diag, 0, 0, "empty");
    if (!have_field)
        return malformed(diag, len, MWL_TAG_CommandField, "CommandField missing");
    if (!have_type)
        return malformed(diag, len, MWL_TAG_CommandDataSetType, "CommandDataSetType missing");
    uint32_t missing = missing_required(&cmd);
    if (missing) {
        mwl_diag_set(diag, len, missing, "command set: %s lacks required element (0000,%04X)",
                     mwl_dimse_command_name(cmd.command_field), (unsigned)MWL_TAG_ELEMENT(missing));
        return MWL_E_MALFORMED;
    }
    *out = cmd;
    if (command_set)
        *command_set = ds;
    return MWL_OK;
}

bool mwl_dimse_scan_u16(const uint8_t *data, size_t len, uint32_t tag, uint16_t *value)
{
    mwl_rd rd;
    mwl_rd_init(&rd, data, len);
    uint16_t group, element;
    uint32_t length;
    while (mwl_rd_u16le(&rd, &group) && mwl_rd_u16le(&rd, &element) && mwl_rd_u32le(&rd, &length)) {
        const uint8_t *v;
        if (length == 0xFFFFFFFFu || !mwl_rd_bytes(&rd, length, &v))
            return false;
        if (MWL_TAG(group, element) == tag) {
            if (length != 2)
                return false;
            *value = mwl_load_u16le(v);
            return true;
        }
    }
    return false;
}
