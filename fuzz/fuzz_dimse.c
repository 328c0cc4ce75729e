/* Fuzz target for DIMSE message assembly (src/dimse): arbitrary bytes become
 * a stream of PDVs fed to an assembler with small limits. Every message that
 * comes out is re-encoded (mwl_dimse_encode_command), fragmented for a peer
 * Maximum Length chosen by the input, decoded by the UL codec and assembled
 * again: the fields and data set bytes must survive, and encoding must be
 * idempotent. Errors must be sticky until reset.
 *
 * Input format:
 *   byte 0      peer Maximum Length for the re-fragmentation (table index)
 *   records     control byte c, then a 1-byte length (2 bytes, big endian,
 *               when c & 0x40), then up to that many fragment bytes:
 *                 c & 0x0F  message control header (bits 2-3: noise the
 *                           receiver must ignore)
 *                 c & 0x20  presentation context 3 instead of 1
 *                 c & 0x80  reset the assembler before this PDV */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t max_pdu_table[16] = {0,  8,   9,    10,   12,   16,    30,    64,
                                           99, 256, 1000, 4096, 4097, 16384, 65536, 0xFFFFFFFFu};

static bool str_same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* What the encoder promises to keep of an ErrorComment: all of it when it is
 * already short printable text without a backslash. */
static bool comment_kept(const char *s)
{
    size_t n = strlen(s);
    if (n > MWL_DIMSE_ERROR_COMMENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E || s[i] == '\\')
            return false;
    return true;
}

static bool same_fields(const mwl_dimse_command *a, const mwl_dimse_command *b)
{
    if (a->command_field != b->command_field || a->data_set_type != b->data_set_type ||
        a->present != b->present)
        return false;
    unsigned p = a->present;
    if ((p & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID) &&
        !str_same(a->affected_sop_class_uid, b->affected_sop_class_uid))
        return false;
    if ((p & MWL_DIMSE_HAS_MESSAGE_ID) && a->message_id != b->message_id)
        return false;
    if ((p & MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO) &&
        a->message_id_being_responded_to != b->message_id_being_responded_to)
        return false;
    if ((p & MWL_DIMSE_HAS_PRIORITY) && a->priority != b->priority)
        return false;
    if ((p & MWL_DIMSE_HAS_STATUS) && a->status != b->status)
        return false;
    if (p & MWL_DIMSE_HAS_OFFENDING_ELEMENT) {
        if (a->offending_element_count != b->offending_element_count)
            return false;
        for (size_t i = 0; i < a->offending_element_count; i++)
            if (a->offending_elements[i] != b->offending_elements[i])
                return false;
    }
    if (p & MWL_DIMSE_HAS_ERROR_COMMENT) {
        if (comment_kept(a->error_comment) ? !str_same(a->error_comment, b->error_comment)
                                           : strlen(b->error_comment) > MWL_DIMSE_ERROR_COMMENT_MAX)
            return false;
    }
    if ((p & MWL_DIMSE_HAS_ERROR_ID) && a->error_id != b->error_id)
        return false;
    if ((p & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID) &&
        !str_same(a->affected_sop_instance_uid, b->affected_sop_instance_uid))
        return false;
    return true;
}

/* Re-encodes, re-fragments and re-assembles `m`; aborts on any mismatch. */
static void roundtrip(const mwl_dimse_msg *m, uint32_t max_pdu)
{
    mwl_wbuf cmd, pdus, cmd2;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&pdus, NULL);
    mwl_wbuf_init(&cmd2, NULL);
    /* Anything the decoder accepts, the encoder can send. */
    if (mwl_dimse_encode_command(&m->command, &cmd) != MWL_OK)
        abort();

    uint8_t ctx = (uint8_t)(m->context_id | 1);
    size_t dlen = m->dataset_length;
    if (dlen & 1) {
        /* Odd fragments are accepted on receipt but never sent. */
        if (mwl_dimse_fragment(ctx, cmd.data, cmd.len, m->dataset, dlen, max_pdu, &pdus) != MWL_E_INVALID)
            abort();
        dlen--;
    }
    int rc =
        mwl_dimse_fragment(ctx, cmd.data, cmd.len, m->has_dataset ? m->dataset : NULL, dlen, max_pdu, &pdus);
    if (max_pdu && max_pdu < MWL_DIMSE_MIN_PDU_LENGTH) {
        if (rc != MWL_E_UNSUPPORTED)
            abort();
        goto out;
    }
    if (rc != MWL_OK)
        abort();

    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m2;
    size_t pos = 0, oks = 0;
    uint32_t bound = (max_pdu == 0 || max_pdu > MWL_DIMSE_SEND_PDU_CAP) ? MWL_DIMSE_SEND_PDU_CAP : max_pdu;
    while (pos < pdus.len) {
        mwl_pdu pdu;
        size_t used = 0;
        if (mwl_pdu_decode(pdus.data + pos, pdus.len - pos, &arena, &lim, &pdu, &used, NULL) != MWL_OK)
            abort();
        if (pdu.type != MWL_PDU_P_DATA_TF || pdu.length > bound || oks)
            abort();
        for (size_t i = 0; i < pdu.u.p_data.pdv_count; i++) {
            if (pdu.u.p_data.pdvs[i].length & 1)
                abort();
            rc = mwl_dimse_assembler_feed(&as, &pdu.u.p_data.pdvs[i], &m2, NULL);
            if (rc == MWL_OK)
                oks++;
            else if (rc != MWL_AGAIN || oks)
                abort();
        }
        pos += used;
        mwl_arena_clear(&arena);
    }
    if (oks != 1 || m2.context_id != ctx || !same_fields(&m->command, &m2.command) ||
        m2.has_dataset != m->has_dataset || m2.dataset_length != dlen ||
        (dlen && memcmp(m2.dataset, m->dataset, dlen) != 0))
        abort();
    /* Encoding is idempotent: what we decode from our own bytes encodes to
     * the same bytes. */
    if (mwl_dimse_encode_command(&m2.command, &cmd2) != MWL_OK || cmd2.len != cmd.len ||
        memcmp(cmd2.data, cmd.data, cmd.len) != 0)
        abort();
    mwl_dimse_assembler_clear(&as);
    mwl_arena_clear(&arena);
out:
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&cmd2);
    mwl_wbuf_clear(&pdus);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t max_pdu = max_pdu_table[data[0] & 0x0F];
    /* Small limits keep memory bounded whatever the input says. */
    mwl_dimse_limits lim = {4096, 65536};
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, &lim);

    size_t pos = 1;
    while (pos < size) {
        uint8_t c = data[pos++];
        if (pos >= size)
            break;
        size_t len = data[pos++];
        if ((c & 0x40) && pos < size)
            len = (len << 8) | data[pos++];
        if (len > size - pos)
            len = size - pos;
        if (c & 0x80)
            mwl_dimse_assembler_reset(&as);
        mwl_pdv pdv = {(uint8_t)((c & 0x20) ? 3 : 1), (uint8_t)(c & 0x0F), data + pos, len};
        pos += len;

        mwl_dimse_msg m;
        mwl_diag diag;
        int rc = mwl_dimse_assembler_feed(&as, &pdv, &m, &diag);
        if (rc == MWL_OK) {
            if (!mwl_dimse_assembler_is_idle(&as) || m.command_length > lim.max_command_length ||
                m.command_length + m.dataset_length > lim.max_message_length)
                abort();
            roundtrip(&m, max_pdu);
        } else if (rc < 0) {
            if (rc != MWL_E_PROTOCOL && rc != MWL_E_MALFORMED && rc != MWL_E_LIMIT)
                abort();
            /* Sticky until reset. */
            if (mwl_dimse_assembler_feed(&as, &pdv, &m, NULL) != rc)
                abort();
            mwl_dimse_assembler_reset(&as);
        } else if (rc != MWL_AGAIN) {
            abort();
        }
    }
    mwl_dimse_assembler_clear(&as);
    return 0;
}
