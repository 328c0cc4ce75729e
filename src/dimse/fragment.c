/* Message -> P-DATA-TF PDUs (PS3.8 Annex E, §9.3.5, D.1).
 *
 * The peer's Maximum Length (PS3.8 D.1) bounds the PDU-length field of every
 * P-DATA-TF we send: the sum over its PDV items of 6 header bytes (item
 * length, context ID, control header) plus the fragment. Fragments are even
 * (Annex E.1), so an odd room is rounded down. A PDV never spans PDUs; the
 * last command fragment and the first data fragment may share one. */
#include <string.h>

#include "dicom/tag.h"
#include "dimse/dimse.h"
#include "dimse/dimse_int.h"

int mwl_dimse_fragmenter_init(mwl_dimse_fragmenter *fr, uint8_t context_id, const uint8_t *command,
                              size_t command_length, const uint8_t *dataset, size_t dataset_length,
                              uint32_t peer_max_pdu_length)
{
    if (!fr)
        return MWL_E_INVALID;
    memset(fr, 0, sizeof *fr);
    fr->command_done = fr->dataset_done = true; /* nothing to send if init fails */
    /* PS3.8 §9.3.2.2: presentation context IDs are odd, 1-255. */
    if (context_id == 0 || (context_id & 1) == 0)
        return MWL_E_INVALID;
    if (!command || command_length == 0 || (command_length & 1))
        return MWL_E_INVALID;
    if ((dataset_length & 1) || (!dataset && dataset_length))
        return MWL_E_INVALID;
    /* The peer learns whether a data set follows only from the command, so
     * a mismatch here would desynchronise the association. */
    uint16_t type;
    if (!mwl_dimse_scan_u16(command, command_length, MWL_TAG_CommandDataSetType, &type))
        return MWL_E_INVALID;
    if ((type != MWL_DIMSE_DATASET_NONE) != (dataset != NULL))
        return MWL_E_INVALID;
    if (peer_max_pdu_length && peer_max_pdu_length < MWL_DIMSE_MIN_PDU_LENGTH)
        return MWL_E_UNSUPPORTED;

    fr->context_id = context_id;
    fr->max_pdu_length = (peer_max_pdu_length == 0 || peer_max_pdu_length > MWL_DIMSE_SEND_PDU_CAP)
                             ? MWL_DIMSE_SEND_PDU_CAP
                             : peer_max_pdu_length;
    fr->command = command;
    fr->command_length = command_length;
    fr->dataset = dataset;
    fr->dataset_length = dataset_length;
    fr->command_done = false;
    fr->dataset_done = (dataset == NULL);
    return MWL_OK;
}

/* The largest even fragment that fits in `room` bytes of PDU-length. */
static size_t fragment_room(size_t room)
{
    return room < MWL_DIMSE_PDV_HEADER ? 0 : (room - MWL_DIMSE_PDV_HEADER) & ~(size_t)1;
}

bool mwl_dimse_fragmenter_next(mwl_dimse_fragmenter *fr, mwl_pdv pdvs[2], size_t *count)
{
    size_t n = 0;
    size_t room = fr->max_pdu_length;

    if (!fr->command_done) {
        size_t left = fr->command_length - fr->command_pos;
        size_t take = fragment_room(room); /* >= 2: max_pdu_length >= 8 */
        if (take > left)
            take = left;
        bool last = (take == left);
        pdvs[n].context_id = fr->context_id;
        pdvs[n].control = (uint8_t)(MWL_PDV_COMMAND | (last ? MWL_PDV_LAST : 0));
        pdvs[n].data = fr->command + fr->command_pos;
        pdvs[n].length = take;
        n++;
        fr->command_pos += take;
        room -= MWL_DIMSE_PDV_HEADER + take;
        fr->command_done = last;
    }

    if (fr->command_done && !fr->dataset_done) {
        size_t left = fr->dataset_length - fr->dataset_pos;
        size_t take = fragment_room(room);
        if (take > left)
            take = left;
        /* Start the data set in this PDU only if the fragment carries bytes,
         * or is the (empty) last one and its header fits. */
        if (room >= MWL_DIMSE_PDV_HEADER && (take > 0 || left == 0)) {
            bool last = (take == left);
            pdvs[n].context_id = fr->context_id;
            pdvs[n].control = (uint8_t)(last ? MWL_PDV_LAST : 0);
            pdvs[n].data = fr->dataset + fr->dataset_pos;
            pdvs[n].length = take;
            n++;
            fr->dataset_pos += take;
            fr->dataset_done = last;
        }
    }

    *count = n;
    return n > 0;
}

int mwl_dimse_fragment(uint8_t context_id, const uint8_t *command, size_t command_length,
                       const uint8_t *dataset, size_t dataset_length, uint32_t peer_max_pdu_length,
                       mwl_wbuf *out)
{
    if (!out)
        return MWL_E_INVALID;
    mwl_dimse_fragmenter fr;
    int rc = mwl_dimse_fragmenter_init(&fr, context_id, command, command_length, dataset, dataset_length,
                                       peer_max_pdu_length);
    if (rc != MWL_OK)
        return rc;
    mwl_pdv pdvs[2];
    size_t count;
    while (mwl_dimse_fragmenter_next(&fr, pdvs, &count)) {
        rc = mwl_pdu_encode_p_data(pdvs, count, out);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}
