/* PDVs -> whole DIMSE messages (PS3.8 Annex E; PS3.7 §6.3.1).
 *
 * A message is its command fragments, then (when the command set says so)
 * its data set fragments, each group ended by a fragment with the "last" bit.
 * Message boundaries come only from those bits, never from a length element
 * (PS3.7 §6.3.1 note 2), so fragments are concatenated here and the command
 * set is decoded once its last fragment has arrived. The states are
 * described with mwl_dimse_asm_state in dimse.h. */
#include <string.h>

#include "dimse/dimse.h"
#include "dimse/dimse_int.h"

/* Buffers larger than this are given back between messages, so one large
 * message does not pin memory for the rest of a long association. */
#define KEEP_CAPACITY (256u * 1024u)

void mwl_dimse_limits_init(mwl_dimse_limits *lim)
{
    lim->max_command_length = 64u * 1024u;
    lim->max_message_length = 16u * 1024u * 1024u;
}

void mwl_dimse_assembler_init(mwl_dimse_assembler *as, const mwl_mem *mem, const mwl_dimse_limits *lim)
{
    memset(as, 0, sizeof *as);
    as->state = MWL_DIMSE_ASM_IDLE;
    as->error = MWL_OK;
    mwl_dimse_limits_init(&as->limits);
    if (lim) {
        if (lim->max_command_length)
            as->limits.max_command_length = lim->max_command_length;
        if (lim->max_message_length)
            as->limits.max_message_length = lim->max_message_length;
    }
    mwl_wbuf_init(&as->command, mem);
    mwl_wbuf_init(&as->data, mem);
    mwl_arena_init(&as->arena, mem);
    mwl_dimse_command_init(&as->parsed);
}

void mwl_dimse_assembler_clear(mwl_dimse_assembler *as)
{
    if (!as)
        return;
    mwl_wbuf_clear(&as->command);
    mwl_wbuf_clear(&as->data);
    mwl_arena_clear(&as->arena);
    as->command_set = NULL;
    mwl_dimse_command_init(&as->parsed);
    as->state = MWL_DIMSE_ASM_IDLE;
    as->error = MWL_OK;
}

static void drop_buffer(mwl_wbuf *w)
{
    if (w->cap > KEEP_CAPACITY || w->status != MWL_OK)
        mwl_wbuf_clear(w); /* also lifts a sticky MWL_E_NOMEM */
    w->len = 0;
}

/* Forgets the current (partial or returned) message. */
static void drop_message(mwl_dimse_assembler *as)
{
    drop_buffer(&as->command);
    drop_buffer(&as->data);
    mwl_arena_clear(&as->arena);
    as->command_set = NULL;
    mwl_dimse_command_init(&as->parsed);
    as->context_id = 0;
}

void mwl_dimse_assembler_reset(mwl_dimse_assembler *as)
{
    drop_message(as);
    as->state = MWL_DIMSE_ASM_IDLE;
    as->error = MWL_OK;
}

bool mwl_dimse_assembler_is_idle(const mwl_dimse_assembler *as)
{
    return as->state == MWL_DIMSE_ASM_IDLE || as->state == MWL_DIMSE_ASM_DONE;
}

static int fail(mwl_dimse_assembler *as, int error)
{
    as->state = MWL_DIMSE_ASM_FAILED;
    as->error = error;
    return error;
}

/* Appends a fragment, keeping `total` (bytes of this message so far plus
 * the fragment) within `limit`. */
static int append(mwl_dimse_assembler *as, mwl_wbuf *w, const mwl_pdv *pdv, size_t used, size_t limit,
                  const char *what, mwl_diag *diag)
{
    if (pdv->length > limit || used > limit - pdv->length) {
        mwl_diag_set(diag, used, 0, "%s exceeds the limit of %zu bytes", what, limit);
        return fail(as, MWL_E_LIMIT);
    }
    if (pdv->length) {
        mwl_wbuf_put(w, pdv->data, pdv->length);
        if (w->status != MWL_OK) {
            mwl_diag_set(diag, used, 0, "out of memory buffering the %s", what);
            return fail(as, MWL_E_NOMEM);
        }
    }
    return MWL_OK;
}

static int complete(mwl_dimse_assembler *as, mwl_dimse_msg *out)
{
    static const uint8_t empty[1] = {0};
    as->state = MWL_DIMSE_ASM_DONE;
    out->context_id = as->context_id;
    out->command = as->parsed;
    out->command_set = as->command_set;
    out->command_bytes = as->command.data;
    out->command_length = as->command.len;
    out->has_dataset = mwl_dimse_command_has_dataset(&as->parsed);
    out->dataset = (out->has_dataset && as->data.len) ? as->data.data : empty;
    out->dataset_length = out->has_dataset ? as->data.len : 0;
    return MWL_OK;
}

int mwl_dimse_assembler_feed(mwl_dimse_assembler *as, const mwl_pdv *pdv, mwl_dimse_msg *out, mwl_diag *diag)
{
    if (!as || !pdv || !out || (pdv->length && !pdv->data))
        return MWL_E_INVALID;
    if (as->state == MWL_DIMSE_ASM_FAILED) {
        mwl_diag_set(diag, 0, 0, "DIMSE assembler failed earlier (%s); reset required",
                     mwl_status_str(as->error));
        return as->error;
    }
    if (as->state == MWL_DIMSE_ASM_DONE) {
        drop_message(as);
        as->state = MWL_DIMSE_ASM_IDLE;
    }

    /* PS3.8 Annex E.2: bit 0 command/data, bit 1 last; bits 2-7 are not
     * checked on receipt. */
    bool is_command = (pdv->control & MWL_PDV_COMMAND) != 0;
    bool last = (pdv->control & MWL_PDV_LAST) != 0;
    int rc;

    if (as->state == MWL_DIMSE_ASM_IDLE) {
        if (!is_command) {
            mwl_diag_set(diag, 0, 0, "data set fragment (context %u) with no command set before it",
                         (unsigned)pdv->context_id);
            return fail(as, MWL_E_PROTOCOL);
        }
        as->context_id = pdv->context_id;
        as->state = MWL_DIMSE_ASM_COMMAND;
    }

    /* PS3.8 Annex E.1: all fragments of a message use one context. */
    if (pdv->context_id != as->context_id) {
        mwl_diag_set(diag, 0, 0, "presentation context changed from %u to %u within a message",
                     (unsigned)as->context_id, (unsigned)pdv->context_id);
        return fail(as, MWL_E_PROTOCOL);
    }

    if (as->state == MWL_DIMSE_ASM_COMMAND) {
        if (!is_command) {
            mwl_diag_set(diag, as->command.len, 0, "data set fragment before the last command fragment");
            return fail(as, MWL_E_PROTOCOL);
        }
        size_t limit = as->limits.max_command_length;
        if (limit > as->limits.max_message_length)
            limit = as->limits.max_message_length;
        rc = append(as, &as->command, pdv, as->command.len, limit, "command set", diag);
        if (rc != MWL_OK)
            return rc;
        if (!last)
            return MWL_AGAIN;
        rc = mwl_dimse_decode_command(as->command.data, as->command.len, &as->arena, &as->parsed,
                                      &as->command_set, diag);
        if (rc != MWL_OK)
            return fail(as, rc);
        if (!mwl_dimse_command_has_dataset(&as->parsed))
            return complete(as, out);
        as->state = MWL_DIMSE_ASM_DATA;
        return MWL_AGAIN;
    }

    /* MWL_DIMSE_ASM_DATA */
    if (is_command) {
        mwl_diag_set(diag, as->data.len, 0, "command fragment after the command set was complete (%s)",
                     mwl_dimse_command_name(as->parsed.command_field));
        return fail(as, MWL_E_PROTOCOL);
    }
    rc = append(as, &as->data, pdv, as->command.len + as->data.len, as->limits.max_message_length, "message",
                diag);
    if (rc != MWL_OK)
        return rc;
    if (!last)
        return MWL_AGAIN;
    return complete(as, out);
}
