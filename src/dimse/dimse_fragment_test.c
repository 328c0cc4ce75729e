/* Fragmenter tests (PS3.8 Annex E, D.1): the worked C-ECHO P-DATA-TF bytes,
 * and for many peer Maximum Lengths: every PDU within the bound, even
 * fragments, ordered last bits, and reassembly giving the original bytes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/codec.h"
#include "dimse/dimse.h"

/* dimse.md §3: the 68-byte C-ECHO-RQ in one P-DATA-TF on context 1. */
static void test_echo_pdu_bytes(void)
{
    mwl_wbuf cmd, out;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&out, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &cmd), MWL_OK);
    CHECK_EQ_INT(cmd.len, 68);
    CHECK_EQ_INT(mwl_dimse_fragment(1, cmd.data, cmd.len, NULL, 0, 16384, &out), MWL_OK);
    static const uint8_t head[] = {0x04, 0x00, 0x00, 0x00, 0x00, 0x4A, 0x00, 0x00, 0x00, 0x46, 0x01, 0x03};
    CHECK_EQ_INT(out.len, sizeof head + 68);
    CHECK_EQ_MEM(out.data, sizeof head, head, sizeof head);
    CHECK_EQ_MEM(out.data + sizeof head, out.len - sizeof head, cmd.data, cmd.len);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&out);
}

/* Walks P-DATA-TF bytes independently of the UL codec, checks the Annex E
 * rules, reassembles command and data set, and feeds every PDV to an
 * assembler. Returns the number of PDUs, or 0 on a rule violation. */
typedef struct walk {
    mwl_wbuf command, data;
    size_t pdus, max_pdvs_in_pdu;
    bool saw_empty_data;
    mwl_dimse_msg msg;
    int final_rc;
} walk;

static size_t walk_pdus(const uint8_t *p, size_t len, uint8_t ctx, uint32_t bound, walk *wk)
{
    mwl_wbuf_init(&wk->command, NULL);
    mwl_wbuf_init(&wk->data, NULL);
    wk->pdus = wk->max_pdvs_in_pdu = 0;
    wk->saw_empty_data = false;
    wk->final_rc = MWL_E_INTERNAL;
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    bool command_last = false, data_last = false, ok = true;
    size_t pos = 0;
    while (pos < len && ok) {
        if (len - pos < 6 || p[pos] != 0x04 || p[pos + 1] != 0) {
            ok = false;
            break;
        }
        uint32_t pdu_length = mwl_load_u32be(p + pos + 2);
        if (pdu_length > bound || pdu_length > len - pos - 6) {
            fprintf(stderr, "PDU-length %u over bound %u\n", (unsigned)pdu_length, (unsigned)bound);
            ok = false;
            break;
        }
        size_t end = pos + 6 + pdu_length, q = pos + 6, pdvs = 0;
        while (q < end) {
            uint32_t item = mwl_load_u32be(p + q);
            if (item < 2 || item > end - q - 4) {
                ok = false;
                break;
            }
            uint8_t id = p[q + 4], control = p[q + 5];
            size_t frag = item - 2;
            const uint8_t *fp = p + q + 6;
            bool is_cmd = control & MWL_PDV_COMMAND, last = control & MWL_PDV_LAST;
            if (id != ctx || (frag & 1) || (control & 0xFC))
                ok = false;
            if (is_cmd && command_last)
                ok = false; /* command after its last fragment */
            if (!is_cmd && (!command_last || data_last))
                ok = false; /* data before the command ended, or after its end */
            if (frag == 0 && !(!is_cmd && last))
                ok = false; /* only an empty data set makes an empty PDV */
            if (frag == 0)
                wk->saw_empty_data = true;
            mwl_wbuf_put(is_cmd ? &wk->command : &wk->data, fp, frag);
            if (is_cmd && last)
                command_last = true;
            if (!is_cmd && last)
                data_last = true;
            mwl_pdv pv = {id, control, fp, frag};
            int rc = mwl_dimse_assembler_feed(&as, &pv, &wk->msg, NULL);
            if (rc < 0)
                ok = false;
            wk->final_rc = rc;
            q += 4 + item;
            pdvs++;
        }
        if (pdvs == 0)
            ok = false;
        if (pdvs > wk->max_pdvs_in_pdu)
            wk->max_pdvs_in_pdu = pdvs;
        pos = end;
        wk->pdus++;
    }
    if (!command_last)
        ok = false;
    /* Compare the assembled message with the bytes reassembled here before
     * clearing the assembler, which owns the message's memory. */
    if (ok && wk->final_rc == MWL_OK) {
        ok = wk->msg.command_length == wk->command.len && wk->msg.dataset_length == wk->data.len &&
             memcmp(wk->msg.command_bytes, wk->command.data, wk->command.len) == 0 &&
             (wk->data.len == 0 || memcmp(wk->msg.dataset, wk->data.data, wk->data.len) == 0);
    } else {
        ok = false;
    }
    mwl_dimse_assembler_clear(&as);
    return ok ? wk->pdus : 0;
}

static void walk_clear(walk *wk)
{
    mwl_wbuf_clear(&wk->command);
    mwl_wbuf_clear(&wk->data);
}

static uint8_t *make_data(size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 31 + (i >> 8));
    return d;
}

/* One message at one bound: returns the PDU count (0 on failure). */
static size_t check_one(const mwl_wbuf *cmd, const uint8_t *data, size_t dlen, bool has_data, uint32_t max)
{
    mwl_wbuf out;
    mwl_wbuf_init(&out, NULL);
    int rc = mwl_dimse_fragment(5, cmd->data, cmd->len, has_data ? data : NULL, dlen, max, &out);
    CHECK_EQ_INT(rc, MWL_OK);
    uint32_t bound = (max == 0 || max > MWL_DIMSE_SEND_PDU_CAP) ? MWL_DIMSE_SEND_PDU_CAP : max;
    walk wk;
    size_t pdus = walk_pdus(out.data, out.len, 5, bound, &wk);
    CHECK(pdus > 0);
    CHECK_EQ_MEM(wk.command.data, wk.command.len, cmd->data, cmd->len);
    if (has_data)
        CHECK_EQ_MEM(wk.data.data ? wk.data.data : data, wk.data.len, data, dlen);
    else
        CHECK_EQ_INT(wk.data.len, 0);
    CHECK_EQ_INT(wk.saw_empty_data, has_data && dlen == 0);
    CHECK(wk.max_pdvs_in_pdu <= 2);
    /* Fragments as large as the bound allows: no more PDUs than needed. */
    size_t per = (bound - 6) & ~(size_t)1;
    size_t need = (cmd->len + per - 1) / per + (has_data ? (dlen + per - 1) / per : 0);
    CHECK(pdus <= need + 1);
    walk_clear(&wk);
    mwl_wbuf_clear(&out);
    return pdus;
}

static void test_bounds(void)
{
    mwl_wbuf find, echo;
    mwl_wbuf_init(&find, NULL);
    mwl_wbuf_init(&echo, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(1, MWL_UID_ModalityWorklistInformationModelFind, 0, &find), MWL_OK);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &echo), MWL_OK);

    static const size_t sizes[] = {0, 2, 4094, 4096, 4098, 16378, 65530, 65536, 300000};
    uint8_t *data = make_data(300000);
    for (uint32_t max = 4096; max <= 131072; max = max < 16384 ? max + 1021 : max * 2 - 3) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            check_one(&find, data, sizes[s], true, max);
        check_one(&echo, NULL, 0, false, max);
    }
    static const uint32_t edge[] = {0, 4096, 16384, 16383, 65536, 65537, 131072, 0xFFFFFFFFu};
    for (size_t e = 0; e < sizeof edge / sizeof edge[0]; e++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            check_one(&find, data, sizes[s], true, edge[e]);

    /* max = 6 + 4096: the 70-byte command and 4020 data bytes fill the first
     * PDU exactly (76 + 6 + 4020 = 4102), the other 76 take a second. */
    CHECK_EQ_INT(check_one(&find, data, 4096, true, 4102), 2);

    /* The last command fragment and the first data fragment share a PDU. */
    CHECK_EQ_INT(check_one(&find, data, 1000, true, 16384), 1);

    /* The smallest Maximum Length we support: one 2-byte fragment per PDU. */
    CHECK_EQ_INT(check_one(&find, data, 10, true, MWL_DIMSE_MIN_PDU_LENGTH), find.len / 2 + 5);
    CHECK_EQ_INT(check_one(&find, data, 10, true, 9), find.len / 2 + 5); /* odd: rounded down */
    check_one(&find, data, 0, true, MWL_DIMSE_MIN_PDU_LENGTH);
    mwl_wbuf out;
    mwl_wbuf_init(&out, NULL);
    CHECK_EQ_INT(mwl_dimse_fragment(1, find.data, find.len, data, 10, MWL_DIMSE_MIN_PDU_LENGTH - 1, &out),
                 MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_dimse_fragment(1, find.data, find.len, data, 10, 1, &out), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(out.len, 0);

    free(data);
    mwl_wbuf_clear(&out);
    mwl_wbuf_clear(&find);
    mwl_wbuf_clear(&echo);
}

static void test_invalid(void)
{
    mwl_wbuf find, echo, out;
    mwl_wbuf_init(&find, NULL);
    mwl_wbuf_init(&echo, NULL);
    mwl_wbuf_init(&out, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(1, MWL_UID_ModalityWorklistInformationModelFind, 0, &find), MWL_OK);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &echo), MWL_OK);
    uint8_t data[8] = {0};

    CHECK_EQ_INT(mwl_dimse_fragment(0, echo.data, echo.len, NULL, 0, 0, &out), MWL_E_INVALID); /* context 0 */
    CHECK_EQ_INT(mwl_dimse_fragment(2, echo.data, echo.len, NULL, 0, 0, &out), MWL_E_INVALID); /* even */
    CHECK_EQ_INT(mwl_dimse_fragment(1, echo.data, 0, NULL, 0, 0, &out), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_fragment(1, echo.data, echo.len - 1, NULL, 0, 0, &out), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_fragment(1, find.data, find.len, data, 7, 0, &out), MWL_E_INVALID);
    /* Data set presence must agree with CommandDataSetType. */
    CHECK_EQ_INT(mwl_dimse_fragment(1, echo.data, echo.len, data, 8, 0, &out), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_fragment(1, find.data, find.len, NULL, 0, 0, &out), MWL_E_INVALID);
    /* A command without CommandDataSetType (its first 12 bytes). */
    CHECK_EQ_INT(mwl_dimse_fragment(1, echo.data, 12, NULL, 0, 0, &out), MWL_E_INVALID);
    CHECK_EQ_INT(out.len, 0);

    /* A failed init leaves a fragmenter that produces nothing. */
    mwl_dimse_fragmenter fr;
    CHECK_EQ_INT(mwl_dimse_fragmenter_init(&fr, 2, echo.data, echo.len, NULL, 0, 0), MWL_E_INVALID);
    mwl_pdv pdvs[2];
    size_t count = 9;
    CHECK(!mwl_dimse_fragmenter_next(&fr, pdvs, &count));
    CHECK_EQ_INT(count, 0);

    /* The iterator view: PDVs point into the caller's bytes. */
    CHECK_EQ_INT(mwl_dimse_fragmenter_init(&fr, 1, find.data, find.len, data, 8, 0), MWL_OK);
    CHECK(mwl_dimse_fragmenter_next(&fr, pdvs, &count));
    CHECK_EQ_INT(count, 2);
    CHECK(pdvs[0].data == find.data && pdvs[0].length == find.len);
    CHECK_EQ_INT(pdvs[0].control, MWL_PDV_COMMAND | MWL_PDV_LAST);
    CHECK(pdvs[1].data == data && pdvs[1].length == 8);
    CHECK_EQ_INT(pdvs[1].control, MWL_PDV_LAST);
    CHECK(!mwl_dimse_fragmenter_next(&fr, pdvs, &count));

    /* Output buffer failure is reported. */
    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 1);
    mwl_wbuf bad;
    mwl_wbuf_init(&bad, &f.mem);
    CHECK_EQ_INT(mwl_dimse_fragment(1, echo.data, echo.len, NULL, 0, 0, &bad), MWL_E_NOMEM);
    mwl_wbuf_clear(&bad);

    mwl_wbuf_clear(&out);
    mwl_wbuf_clear(&find);
    mwl_wbuf_clear(&echo);
}

/* The driver's path for a C-FIND: an Identifier encoded in the context's
 * transfer syntax, fragmented, reassembled, then decoded by the caller. */
static void test_identifier_end_to_end(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ident = NULL;
    CHECK_EQ_INT(mwl_ds_new(&arena, NULL, &ident), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ident, MWL_TAG_PatientName, MWL_VR_NONE, "DOE^JOHN*"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ident, MWL_TAG_AccessionNumber, MWL_VR_NONE, ""), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ident, MWL_TAG_Modality, MWL_VR_NONE, "CT"), MWL_OK);

    mwl_wbuf cmd, data, pdus;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    mwl_wbuf_init(&pdus, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(11, MWL_UID_ModalityWorklistInformationModelFind, 0, &cmd), MWL_OK);
    CHECK_EQ_INT(mwl_ds_encode(ident, MWL_TS_EXPLICIT_LE, &data), MWL_OK);
    CHECK_EQ_INT(mwl_dimse_fragment(1, cmd.data, cmd.len, data.data, data.len, 16, &pdus), MWL_OK);

    walk wk;
    CHECK(walk_pdus(pdus.data, pdus.len, 1, 16, &wk) > 0);
    mwl_ds *back = NULL;
    CHECK_EQ_INT(mwl_ds_decode(wk.data.data, wk.data.len, MWL_TS_EXPLICIT_LE, &arena, NULL, &back, NULL),
                 MWL_OK);
    CHECK(back && mwl_ds_equal(ident, back));
    walk_clear(&wk);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&data);
    mwl_wbuf_clear(&pdus);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_echo_pdu_bytes);
    RUN_TEST(test_bounds);
    RUN_TEST(test_invalid);
    RUN_TEST(test_identifier_end_to_end);
    return check_report("dimse_fragment_test");
}
