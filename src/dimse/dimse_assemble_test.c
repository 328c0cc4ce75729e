/* Assembler tests (PS3.8 Annex E): a message split at every byte position,
 * in fragments of every size, several PDVs per P-DATA-TF, each protocol
 * violation, the limits, and out-of-memory at every allocation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dimse/dimse.h"

static mwl_wbuf find_cmd, echo_cmd;
static uint8_t dataset[100];

static mwl_pdv pdv(uint8_t ctx, uint8_t control, const uint8_t *data, size_t len)
{
    mwl_pdv p = {ctx, control, data, len};
    return p;
}

static void setup(void)
{
    mwl_wbuf_init(&find_cmd, NULL);
    mwl_wbuf_init(&echo_cmd, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(42, MWL_UID_ModalityWorklistInformationModelFind,
                                          MWL_DIMSE_PRIORITY_MEDIUM, &find_cmd),
                 MWL_OK);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(3, &echo_cmd), MWL_OK);
    for (size_t i = 0; i < sizeof dataset; i++)
        dataset[i] = (uint8_t)(i * 7 + 1);
}

static void check_find_msg(const mwl_dimse_msg *m, uint8_t ctx)
{
    CHECK_EQ_INT(m->context_id, ctx);
    CHECK_EQ_INT(m->command.command_field, MWL_DIMSE_C_FIND_RQ);
    CHECK_EQ_INT(m->command.message_id, 42);
    CHECK_EQ_STR(m->command.affected_sop_class_uid, MWL_UID_ModalityWorklistInformationModelFind);
    CHECK(m->has_dataset);
    CHECK_EQ_MEM(m->dataset, m->dataset_length, dataset, sizeof dataset);
    CHECK_EQ_MEM(m->command_bytes, m->command_length, find_cmd.data, find_cmd.len);
    CHECK(m->command_set != NULL && mwl_ds_find(m->command_set, MWL_TAG_Priority) != NULL);
}

/* Feeds `bytes` as fragments that end at the offsets in `cuts` (ascending,
 * the last one = len), with `kind` (MWL_PDV_COMMAND or 0); returns the
 * status of the last feed. */
static int feed_split(mwl_dimse_assembler *as, uint8_t ctx, uint8_t kind, const uint8_t *bytes, size_t len,
                      const size_t *cuts, size_t ncuts, mwl_dimse_msg *m)
{
    size_t from = 0;
    int rc = MWL_E_INTERNAL;
    for (size_t i = 0; i < ncuts; i++) {
        bool last = cuts[i] == len;
        mwl_pdv p = pdv(ctx, (uint8_t)(kind | (last ? MWL_PDV_LAST : 0)), bytes + from, cuts[i] - from);
        rc = mwl_dimse_assembler_feed(as, &p, m, NULL);
        if (!last && rc != MWL_AGAIN)
            return rc == MWL_OK ? MWL_E_INTERNAL : rc;
        from = cuts[i];
    }
    return rc;
}

/* Two fragments for the command cut at i, two for the data set cut at j,
 * for every i and j (0 and len give an empty fragment). */
static void test_every_cut(void)
{
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m;
    int bad = 0;
    for (size_t i = 0; i <= find_cmd.len; i++) {
        for (size_t j = 0; j <= sizeof dataset; j++) {
            size_t ccuts[2] = {i, find_cmd.len}, dcuts[2] = {j, sizeof dataset};
            size_t nc = i == find_cmd.len ? 1 : 2, nd = j == sizeof dataset ? 1 : 2;
            int rc = feed_split(&as, 3, MWL_PDV_COMMAND, find_cmd.data, find_cmd.len, ccuts, nc, &m);
            if (rc != MWL_AGAIN)
                bad++;
            rc = feed_split(&as, 3, 0, dataset, sizeof dataset, dcuts, nd, &m);
            if (rc != MWL_OK) {
                bad++;
                continue;
            }
            if (m.dataset_length != sizeof dataset || memcmp(m.dataset, dataset, sizeof dataset) != 0 ||
                m.command.message_id != 42)
                bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    check_find_msg(&m, 3);
    mwl_dimse_assembler_clear(&as);
}

/* Fragments of every size k = 1..len (odd ones too: accepted). */
static void test_every_size(void)
{
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m;
    size_t cuts[256];
    for (size_t k = 1; k <= sizeof dataset; k++) {
        size_t nc = 0, nd = 0;
        for (size_t at = k; at < find_cmd.len; at += k)
            cuts[nc++] = at;
        cuts[nc++] = find_cmd.len;
        CHECK_EQ_INT(feed_split(&as, 1, MWL_PDV_COMMAND, find_cmd.data, find_cmd.len, cuts, nc, &m),
                     MWL_AGAIN);
        for (size_t at = k; at < sizeof dataset; at += k)
            cuts[nd++] = at;
        cuts[nd++] = sizeof dataset;
        CHECK_EQ_INT(feed_split(&as, 1, 0, dataset, sizeof dataset, cuts, nd, &m), MWL_OK);
        check_find_msg(&m, 1);
    }
    /* A command-only message at every single cut. */
    for (size_t i = 0; i <= echo_cmd.len; i++) {
        size_t c2[2] = {i, echo_cmd.len};
        size_t n2 = i == echo_cmd.len ? 1 : 2;
        CHECK_EQ_INT(feed_split(&as, 5, MWL_PDV_COMMAND, echo_cmd.data, echo_cmd.len, c2, n2, &m), MWL_OK);
        CHECK_EQ_INT(m.command.command_field, MWL_DIMSE_C_ECHO_RQ);
        CHECK(!m.has_dataset);
        CHECK_EQ_INT(m.dataset_length, 0);
        CHECK(mwl_dimse_assembler_is_idle(&as));
    }
    mwl_dimse_assembler_clear(&as);
}

/* The UL codec's view: one P-DATA-TF with the last command PDV and the data
 * PDVs (PS3.8 Annex E.1 allows several PDVs per PDU), decoded by
 * mwl_pdu_decode and fed PDV by PDV; then a message spread over PDUs. */
static void test_through_pdus(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    size_t half = find_cmd.len / 2 & ~(size_t)1;
    mwl_pdv first = pdv(7, MWL_PDV_COMMAND, find_cmd.data, half);
    mwl_pdv rest[4] = {
        pdv(7, MWL_PDV_COMMAND | MWL_PDV_LAST, find_cmd.data + half, find_cmd.len - half),
        pdv(7, 0, dataset, 40),
        pdv(7, 0, dataset + 40, 0), /* empty: "shall not be sent", but accepted */
        pdv(7, MWL_PDV_LAST, dataset + 40, sizeof dataset - 40),
    };
    CHECK_EQ_INT(mwl_pdu_encode_p_data(&first, 1, &w), MWL_OK);
    CHECK_EQ_INT(mwl_pdu_encode_p_data(rest, 4, &w), MWL_OK);

    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m;
    size_t pos = 0, pdus = 0, oks = 0;
    while (pos < w.len) {
        mwl_pdu pdu;
        size_t used = 0;
        int rc = mwl_pdu_decode(w.data + pos, w.len - pos, &arena, &lim, &pdu, &used, NULL);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK)
            break;
        CHECK_EQ_INT(pdu.type, MWL_PDU_P_DATA_TF);
        for (size_t i = 0; i < pdu.u.p_data.pdv_count; i++) {
            rc = mwl_dimse_assembler_feed(&as, &pdu.u.p_data.pdvs[i], &m, NULL);
            bool final = (pdus == 1 && i == pdu.u.p_data.pdv_count - 1);
            CHECK_EQ_INT(rc, final ? MWL_OK : MWL_AGAIN);
            oks += rc == MWL_OK;
        }
        pos += used;
        pdus++;
    }
    CHECK_EQ_INT(pdus, 2);
    CHECK_EQ_INT(oks, 1);
    check_find_msg(&m, 7);
    mwl_arena_clear(&arena);
    mwl_dimse_assembler_clear(&as);
    mwl_wbuf_clear(&w);
}

/* Back-to-back messages; an empty data set; reserved control bits. */
static void test_sequences(void)
{
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m;

    mwl_pdv c = pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, find_cmd.data, find_cmd.len);
    mwl_pdv d = pdv(1, MWL_PDV_LAST, NULL, 0);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &c, &m, NULL), MWL_AGAIN);
    CHECK(!mwl_dimse_assembler_is_idle(&as));
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &d, &m, NULL), MWL_OK);
    CHECK(m.has_dataset);
    CHECK_EQ_INT(m.dataset_length, 0);
    CHECK(m.dataset != NULL);

    /* PS3.8 Annex E.2: bits 2-7 are not checked on receipt. */
    mwl_pdv e = pdv(3, 0xFF, echo_cmd.data, echo_cmd.len);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &e, &m, NULL), MWL_OK);
    CHECK_EQ_INT(m.command.command_field, MWL_DIMSE_C_ECHO_RQ);
    CHECK_EQ_INT(m.context_id, 3);

    /* Data set delivered as 100 fragments of one byte, with empty ones in
     * between, on another context. */
    c.context_id = 9;
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &c, &m, NULL), MWL_AGAIN);
    for (size_t i = 0; i < sizeof dataset; i++) {
        mwl_pdv empty = pdv(9, 0, NULL, 0);
        CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &empty, &m, NULL), MWL_AGAIN);
        mwl_pdv one = pdv(9, i + 1 == sizeof dataset ? MWL_PDV_LAST : 0, dataset + i, 1);
        CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &one, &m, NULL),
                     i + 1 == sizeof dataset ? MWL_OK : MWL_AGAIN);
    }
    check_find_msg(&m, 9);
    mwl_dimse_assembler_clear(&as);
}

/* Feeds `pdvs` and expects the last to fail with `want`, the earlier ones
 * to be taken; then checks the error is sticky and reset recovers. */
static void expect_violation(const mwl_pdv *pdvs, size_t n, int want, const mwl_dimse_limits *lim)
{
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, lim);
    mwl_dimse_msg m;
    mwl_diag diag;
    for (size_t i = 0; i + 1 < n; i++)
        CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &pdvs[i], &m, NULL), MWL_AGAIN);
    mwl_diag_clear(&diag);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &pdvs[n - 1], &m, &diag), want);
    CHECK(diag.msg[0] != '\0');
    CHECK_EQ_INT(as.state, MWL_DIMSE_ASM_FAILED);
    /* Sticky: even a well-formed message is refused until reset. */
    mwl_pdv good = pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, echo_cmd.data, echo_cmd.len);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &good, &m, NULL), want);
    mwl_dimse_assembler_reset(&as);
    CHECK(mwl_dimse_assembler_is_idle(&as));
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &good, &m, NULL), MWL_OK);
    mwl_dimse_assembler_clear(&as);
}

static void test_violations(void)
{
    const uint8_t *fc = find_cmd.data;
    size_t fl = find_cmd.len;

    /* A data fragment with no command before it. */
    mwl_pdv a[] = {pdv(1, MWL_PDV_LAST, dataset, 10)};
    expect_violation(a, 1, MWL_E_PROTOCOL, NULL);
    /* A data fragment before the last command fragment. */
    mwl_pdv b[] = {pdv(1, MWL_PDV_COMMAND, fc, 10), pdv(1, 0, dataset, 10)};
    expect_violation(b, 2, MWL_E_PROTOCOL, NULL);
    /* Context ID changes in the command, and between command and data. */
    mwl_pdv c[] = {pdv(1, MWL_PDV_COMMAND, fc, 10), pdv(3, MWL_PDV_COMMAND | MWL_PDV_LAST, fc + 10, fl - 10)};
    expect_violation(c, 2, MWL_E_PROTOCOL, NULL);
    mwl_pdv d[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl), pdv(3, MWL_PDV_LAST, dataset, 10)};
    expect_violation(d, 2, MWL_E_PROTOCOL, NULL);
    mwl_pdv d2[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl), pdv(1, 0, dataset, 10),
                    pdv(5, MWL_PDV_LAST, dataset, 10)};
    expect_violation(d2, 3, MWL_E_PROTOCOL, NULL);
    /* A command fragment after the command set was complete: before any
     * data, and after data started. */
    mwl_pdv e[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl), pdv(1, MWL_PDV_COMMAND, fc, 10)};
    expect_violation(e, 2, MWL_E_PROTOCOL, NULL);
    mwl_pdv f[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl), pdv(1, 0, dataset, 10),
                   pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, echo_cmd.data, echo_cmd.len)};
    expect_violation(f, 3, MWL_E_PROTOCOL, NULL);
    /* A command set that does not decode: cut short, and garbage. */
    mwl_pdv g[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl - 2)};
    expect_violation(g, 1, MWL_E_MALFORMED, NULL);
    mwl_pdv h[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, dataset, 20)};
    expect_violation(h, 1, MWL_E_MALFORMED, NULL);

    /* Limits: the command set, and the whole message. */
    mwl_dimse_limits lim = {fl - 1, 1000};
    mwl_pdv i[] = {pdv(1, MWL_PDV_COMMAND, fc, 10), pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc + 10, fl - 10)};
    expect_violation(i, 2, MWL_E_LIMIT, &lim);
    mwl_dimse_limits lim2 = {1000, fl + sizeof dataset - 1};
    mwl_pdv j[] = {pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, fc, fl), pdv(1, 0, dataset, 50),
                   pdv(1, MWL_PDV_LAST, dataset + 50, sizeof dataset - 50)};
    expect_violation(j, 3, MWL_E_LIMIT, &lim2);

    /* Exactly at the limits is fine. */
    mwl_dimse_limits lim3 = {fl, fl + sizeof dataset};
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, &lim3);
    mwl_dimse_msg m;
    CHECK_EQ_INT(feed_split(&as, 1, MWL_PDV_COMMAND, fc, fl, &fl, 1, &m), MWL_AGAIN);
    size_t dl = sizeof dataset;
    CHECK_EQ_INT(feed_split(&as, 1, 0, dataset, dl, &dl, 1, &m), MWL_OK);

    /* Caller errors do not poison the assembler. */
    mwl_pdv bad = pdv(1, MWL_PDV_COMMAND, NULL, 4);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &bad, &m, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, NULL, &m, NULL), MWL_E_INVALID);
    mwl_pdv ok = pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, echo_cmd.data, echo_cmd.len);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &ok, &m, NULL), MWL_OK);
    mwl_dimse_assembler_clear(&as);
    mwl_dimse_assembler_clear(NULL);
}

/* A large message's buffer is given back before the next one, so memory is
 * bounded by the largest message in flight, not the largest ever seen. */
static void test_buffer_release(void)
{
    size_t big = 1024 * 1024;
    uint8_t *blob = calloc(1, big);
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, NULL, NULL);
    mwl_dimse_msg m;
    mwl_pdv c = pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, find_cmd.data, find_cmd.len);
    mwl_pdv d = pdv(1, MWL_PDV_LAST, blob, big);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &c, &m, NULL), MWL_AGAIN);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &d, &m, NULL), MWL_OK);
    CHECK_EQ_INT(m.dataset_length, big);
    CHECK(as.data.cap >= big);
    mwl_pdv e = pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, echo_cmd.data, echo_cmd.len);
    CHECK_EQ_INT(mwl_dimse_assembler_feed(&as, &e, &m, NULL), MWL_OK);
    CHECK_EQ_INT(as.data.cap, 0);
    mwl_dimse_assembler_clear(&as);
    free(blob);
}

/* STYLE.md §10: count allocations, then fail each one in turn. */
static int run_once(const mwl_mem *mem, mwl_dimse_msg *m)
{
    mwl_dimse_assembler as;
    mwl_dimse_assembler_init(&as, mem, NULL);
    mwl_pdv p[3] = {pdv(1, MWL_PDV_COMMAND, find_cmd.data, 20),
                    pdv(1, MWL_PDV_COMMAND | MWL_PDV_LAST, find_cmd.data + 20, find_cmd.len - 20),
                    pdv(1, MWL_PDV_LAST, dataset, sizeof dataset)};
    int rc = MWL_OK;
    for (size_t i = 0; i < 3; i++) {
        rc = mwl_dimse_assembler_feed(&as, &p[i], m, NULL);
        if (rc < 0)
            break;
    }
    if (rc == MWL_OK)
        check_find_msg(m, 1);
    mwl_dimse_assembler_clear(&as);
    return rc;
}

static void test_out_of_memory(void)
{
    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 0);
    mwl_dimse_msg m;
    CHECK_EQ_INT(run_once(&f.mem, &m), MWL_OK);
    size_t total = f.count;
    CHECK(total > 0);
    for (size_t n = 1; n <= total; n++) {
        mwl_mem_failing_init(&f, n);
        CHECK_EQ_INT(run_once(&f.mem, &m), MWL_E_NOMEM);
    }
}

int main(void)
{
    setup();
    RUN_TEST(test_every_cut);
    RUN_TEST(test_every_size);
    RUN_TEST(test_through_pdus);
    RUN_TEST(test_sequences);
    RUN_TEST(test_violations);
    RUN_TEST(test_buffer_release);
    RUN_TEST(test_out_of_memory);
    mwl_wbuf_clear(&find_cmd);
    mwl_wbuf_clear(&echo_cmd);
    return check_report("dimse_assemble_test");
}
