/* C-FIND plumbing with a synthetic provider: streaming in every transfer
 * syntax, C-CANCEL at every point, provider errors and statuses, a reader
 * that stops reading (back-pressure: the provider is not driven ahead),
 * C-ECHO on another association staying prompt during a long C-FIND, and
 * an association that aborts, releases or is shut down mid-find. The
 * provider also checks the threading contract: never on the loop thread,
 * never two calls at once for one query, end exactly once after begin. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "server_test_util.h"

typedef struct test_provider {
    int total;    /* matches per query */
    int delay_ms; /* sleep in each next */
    bool gated;   /* next #i waits until gate > i (or a cancel) */
    atomic_int gate;
    int fail_next_at;      /* -1: never; else next returns MWL_E_STORE there */
    int begin_rc;          /* returned by begin */
    uint16_t early_status; /* set by begin when non-zero */
    uint16_t final_status; /* set when the matches run out */
    uint16_t pending_status;
    size_t pad; /* PatientComments bytes per match */
    /* A query for PatientID "SCAN" yields (MWL_AGAIN at the step's budget)
     * this many times before its first match, like an unindexed scan. */
    int scan_yields;
    atomic_int begins, nexts, ends, overlaps, on_loop_thread, saw_cancel, yields, pauses, in_scan;
    char seen_patient_id[65];
} test_provider;

typedef struct tp_state {
    test_provider *p;
    int index;
    int yields_left; /* SCAN queries */
    atomic_int in_call;
} tp_state;

static pthread_t loop_thread;

static void tp_reset(test_provider *p, int total)
{
    memset(p, 0, sizeof *p);
    p->total = total;
    p->fail_next_at = -1;
    p->pending_status = MWL_DIMSE_STATUS_PENDING;
    atomic_init(&p->gate, 0);
}

static void enter(tp_state *st)
{
    if (pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&st->p->on_loop_thread, 1);
    if (atomic_fetch_add(&st->in_call, 1) != 0)
        atomic_fetch_add(&st->p->overlaps, 1);
}

static void leave(tp_state *st)
{
    atomic_fetch_sub(&st->in_call, 1);
}

static int tp_begin(void *user, mwl_find_request *req, void **state, mwl_find_status *early)
{
    test_provider *p = user;
    atomic_fetch_add(&p->begins, 1);
    if (pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&p->on_loop_thread, 1);
    if (p->begin_rc != MWL_OK)
        return p->begin_rc;
    tp_state *st = calloc(1, sizeof *st);
    if (!st)
        return MWL_E_NOMEM;
    st->p = p;
    atomic_init(&st->in_call, 0);
    if (mwl_ds_copy_str(req->identifier, MWL_TAG_PatientID, 0, p->seen_patient_id,
                        sizeof p->seen_patient_id) != MWL_OK)
        p->seen_patient_id[0] = '\0';
    snprintf(req->summary, sizeof req->summary, "PatientID=%s", p->seen_patient_id);
    if (strcmp(p->seen_patient_id, "SCAN") == 0)
        st->yields_left = p->scan_yields;
    if (p->early_status) {
        early->status = p->early_status;
        snprintf(early->error_comment, sizeof early->error_comment, "bad key");
        early->offending_elements[0] = MWL_TAG_PatientID;
        early->offending_element_count = 1;
    }
    *state = st;
    return MWL_OK;
}

static int tp_next(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                   uint16_t *status, mwl_find_status *fst)
{
    tp_state *st = state;
    test_provider *p = st->p;
    enter(st);
    atomic_fetch_add(&p->nexts, 1);
    int rc = MWL_OK;
    if (p->gated) {
        uint64_t until = mwl_deadline_in(10000);
        while (atomic_load(&p->gate) <= st->index && mwl_now_ms() < until) {
            if (mwl_find_request_cancelled(req)) {
                atomic_fetch_add(&p->saw_cancel, 1);
                leave(st);
                return MWL_E_CANCELLED;
            }
            tu_sleep_ms(1);
        }
    }
    if (p->delay_ms)
        tu_sleep_ms(p->delay_ms);
    *match = NULL;
    if (st->yields_left > 0) {
        /* Examine "candidates" until the step's budget is used. */
        atomic_fetch_add(&p->in_scan, 1);
        uint64_t until = mwl_deadline_in(2000);
        while (!mwl_find_request_step_over(req) && mwl_now_ms() < until) {
        }
        atomic_fetch_sub(&p->in_scan, 1);
        st->yields_left--;
        atomic_fetch_add(&p->yields, 1);
        leave(st);
        return MWL_AGAIN;
    }
    if (st->index == p->fail_next_at) {
        snprintf(fst->error_comment, sizeof fst->error_comment, "database is locked");
        rc = MWL_E_STORE;
    } else if (st->index >= p->total) {
        fst->status = p->final_status;
        if (p->final_status)
            snprintf(fst->error_comment, sizeof fst->error_comment, "too many matches");
    } else {
        mwl_ds *ds = NULL;
        char id[16];
        snprintf(id, sizeof id, "P%05d", st->index);
        rc = mwl_ds_new(arena, NULL, &ds);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, id);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "DOE^JOHN");
        if (rc == MWL_OK && p->pad) {
            char *pad = mwl_arena_alloc(arena, p->pad + 1);
            if (!pad) {
                rc = MWL_E_NOMEM;
            } else {
                memset(pad, 'x', p->pad);
                pad[p->pad] = '\0';
                rc = mwl_ds_set_str(ds, MWL_TAG_PatientComments, MWL_VR_LT, pad);
            }
        }
        *match = ds;
        *status = p->pending_status;
    }
    st->index++;
    leave(st);
    return rc;
}

static void tp_end(void *state)
{
    tp_state *st = state;
    enter(st);
    atomic_fetch_add(&st->p->ends, 1);
    leave(st);
    free(st);
}

static void tp_pause(void *state)
{
    tp_state *st = state;
    enter(st);
    atomic_fetch_add(&st->p->pauses, 1);
    leave(st);
}

static mwl_find_provider provider_for(test_provider *p)
{
    mwl_find_provider fp = {tp_begin, tp_next, tp_pause, tp_end, p};
    return fp;
}

static const tc_context mwl_only_ts[] = {
    {1, MWL_UID_Verification, {MWL_UID_ExplicitVRLittleEndian}, 1},
    {3, MWL_UID_ModalityWorklistInformationModelFind, {MWL_UID_ExplicitVRLittleEndian}, 1},
};

/* How long read_find_rsp waits for one response. Raised where a response
 * comes from background (nice 19) work, which a machine busy with other
 * tests may starve for many seconds. */
static int read_timeout_ms = 5000;

/* Reads one message, checks it is a C-FIND-RSP to `id`. */
static int read_find_rsp(tclient *c, tc_msg *m, uint16_t id)
{
    int r = tc_read_message(c, m, read_timeout_ms);
    CHECK_EQ_INT(r, 1);
    if (r == 1) {
        CHECK_EQ_INT(m->command_field, MWL_DIMSE_C_FIND_RSP);
        CHECK_EQ_INT(m->responded_to, id);
        CHECK_EQ_STR(m->affected, MWL_UID_ModalityWorklistInformationModelFind);
        CHECK_EQ_INT(m->has_dataset, mwl_dimse_status_is_pending(m->status));
    }
    return r;
}

/* Reads responses until the final one; returns its status, counts the
 * Pending ones and checks each identifier (decoded in `ts`) is P<index>. */
static uint16_t read_until_final(tclient *c, uint16_t id, mwl_ts ts, int *pending, int first_index)
{
    *pending = 0;
    for (int guard = 0; guard < 100000; guard++) {
        tc_msg m;
        if (read_find_rsp(c, &m, id) != 1)
            return 0xFFFF;
        if (!mwl_dimse_status_is_pending(m.status)) {
            uint16_t st = m.status;
            tc_msg_free(&m);
            return st;
        }
        mwl_arena a;
        mwl_arena_init(&a, NULL);
        mwl_ds *ds = NULL;
        int rc = mwl_ds_decode(m.dataset, m.dataset_length, ts, &a, NULL, &ds, NULL);
        CHECK_EQ_INT(rc, MWL_OK);
        char pid[32] = "", want[32];
        if (rc == MWL_OK)
            CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_PatientID, 0, pid, sizeof pid), MWL_OK);
        snprintf(want, sizeof want, "P%05d", first_index + *pending);
        if (strcmp(pid, want) != 0) {
            check_failures++;
            fprintf(stderr, "match %d: PatientID '%s', want '%s'\n", *pending, pid, want);
        }
        mwl_arena_clear(&a);
        tc_msg_free(&m);
        (*pending)++;
    }
    return 0xFFFF;
}

static void check_contract(test_provider *p)
{
    CHECK_EQ_INT(atomic_load(&p->overlaps), 0);
    CHECK_EQ_INT(atomic_load(&p->on_loop_thread), 0);
}

static size_t active(mwl_server *srv)
{
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    return st.active;
}

static bool settle(mwl_server *srv, int ms)
{
    uint64_t until = mwl_deadline_in(ms);
    while (active(srv) > 0 && mwl_now_ms() < until)
        tu_pump(srv, 5);
    return active(srv) == 0;
}

/* Pumps until the provider's next count reaches n. */
static bool wait_nexts(mwl_server *srv, test_provider *p, int n)
{
    uint64_t until = mwl_deadline_in(5000);
    while (atomic_load(&p->nexts) < n && mwl_now_ms() < until)
        tu_pump(srv, 2);
    return atomic_load(&p->nexts) >= n;
}

static void test_stream_each_transfer_syntax(void)
{
    static const struct {
        const char *uid;
        mwl_ts ts;
    } syntaxes[] = {
        {MWL_UID_ImplicitVRLittleEndian, MWL_TS_IMPLICIT_LE},
        {MWL_UID_ExplicitVRLittleEndian, MWL_TS_EXPLICIT_LE},
        {MWL_UID_ExplicitVRBigEndian, MWL_TS_EXPLICIT_BE},
        {MWL_UID_DeflatedExplicitVRLittleEndian, MWL_TS_DEFLATED_LE},
    };
    test_provider p;
    tp_reset(&p, 40);
    p.pad = 20000; /* each match spans two P-DATA-TF PDUs of the peer's 16 KiB */
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    for (size_t i = 0; i < 4; i++) {
        tc_context ctx = {1, MWL_UID_ModalityWorklistInformationModelFind, {syntaxes[i].uid}, 1};
        tclient c;
        CHECK(tc_open(&c, srv));
        mwl_pdu ac;
        memset(&ac, 0, sizeof ac);
        CHECK_EQ_INT(tc_associate(&c, "FINDSCU", "MWL", &ctx, 1, &ac), MWL_PDU_ASSOCIATE_AC);
        CHECK_EQ_STR(ac.u.associate_ac.contexts[0].transfer_syntax, syntaxes[i].uid);
        char pid[16];
        snprintf(pid, sizeof pid, "ID%zu", i);
        CHECK(tc_send_find(&c, 1, (uint16_t)(100 + i), syntaxes[i].ts, pid));
        int pending = 0;
        CHECK_EQ_INT(read_until_final(&c, (uint16_t)(100 + i), syntaxes[i].ts, &pending, 0), 0x0000);
        CHECK_EQ_INT(pending, 40);
        CHECK_EQ_STR(p.seen_patient_id, pid); /* the identifier was decoded in the context's syntax */
        CHECK(tc_release(&c));
        tc_close(&c);
    }
    CHECK(settle(srv, 3000));
    CHECK_EQ_INT(atomic_load(&p.begins), 4);
    CHECK_EQ_INT(atomic_load(&p.ends), 4);
    CHECK_EQ_INT(atomic_load(&p.nexts), 4 * 41);
    check_contract(&p);
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.finds, 4);
    CHECK_EQ_INT(st.find_matches, 160);
    mwl_server_free(srv);
}

/* C-CANCEL after k of 5 matches, for every k, on one association; the
 * provider is blocked in its next call when the cancel arrives. */
static void test_cancel_at_every_point(void)
{
    test_provider p;
    tp_reset(&p, 5);
    p.gated = true;
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.find_batch = 1;
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK_EQ_INT(tc_associate(&c, "FINDSCU", "MWL", mwl_only_ts, 2, NULL), MWL_PDU_ASSOCIATE_AC);
    for (int k = 0; k <= 5; k++) {
        uint16_t id = (uint16_t)(10 + k);
        int nexts_before = atomic_load(&p.nexts);
        atomic_store(&p.gate, k);
        CHECK(tc_send_find(&c, 3, id, MWL_TS_EXPLICIT_LE, "X"));
        for (int i = 0; i < k; i++) {
            tc_msg m;
            CHECK_EQ_INT(read_find_rsp(&c, &m, id), 1);
            CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_PENDING);
            tc_msg_free(&m);
        }
        /* The provider is now waiting in next #k+1. */
        CHECK(wait_nexts(srv, &p, nexts_before + k + 1));
        CHECK(tc_send_cancel(&c, 3, id));
        tu_pump(srv, 20);
        atomic_store(&p.gate, 1000); /* whatever it finds now must not be sent */
        int pending = 0;
        uint16_t final = read_until_final(&c, id, MWL_TS_EXPLICIT_LE, &pending, k);
        CHECK_EQ_INT(final, MWL_DIMSE_STATUS_CANCEL);
        CHECK_EQ_INT(pending, 0);
        CHECK_EQ_INT(atomic_load(&p.ends), k + 1);
        /* A cancel after the final response is ignored: the next message
         * is the C-ECHO-RSP. */
        CHECK(tc_send_cancel(&c, 3, id));
        CHECK(tc_send_echo(&c, 1, (uint16_t)(50 + k)));
        tc_msg m;
        CHECK_EQ_INT(tc_read_message(&c, &m, 3000), 1);
        CHECK_EQ_INT(m.command_field, MWL_DIMSE_C_ECHO_RSP);
        tc_msg_free(&m);
    }
    /* A cancel naming another message ID does not stop the C-FIND. */
    atomic_store(&p.gate, 2);
    CHECK(tc_send_find(&c, 3, 30, MWL_TS_EXPLICIT_LE, "X"));
    CHECK(wait_nexts(srv, &p, atomic_load(&p.nexts) + 1));
    CHECK(tc_send_cancel(&c, 3, 31));
    tu_pump(srv, 20);
    atomic_store(&p.gate, 1000);
    int pending = 0;
    CHECK_EQ_INT(read_until_final(&c, 30, MWL_TS_EXPLICIT_LE, &pending, 0), 0x0000);
    CHECK_EQ_INT(pending, 5);
    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK(settle(srv, 3000));
    CHECK_EQ_INT(atomic_load(&p.begins), 7);
    CHECK_EQ_INT(atomic_load(&p.ends), 7);
    check_contract(&p);
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.find_cancels, 6);
    mwl_server_free(srv);
}

typedef struct error_case {
    const char *name;
    int begin_rc;
    uint16_t early_status;
    int fail_next_at;
    uint16_t final_status;
    uint16_t pending_status;
    uint16_t want_status;
    int want_pending;
    const char *want_comment; /* substring, NULL: none expected */
    int want_ends;
} error_case;

static void test_provider_statuses(void)
{
    static const error_case cases[] = {
        {"early A900", MWL_OK, 0xA900, -1, 0, 0xFF00, 0xA900, 0, "bad key", 1},
        {"early non-failure", MWL_OK, 0xFF00, -1, 0, 0xFF00, 0xC000, 0, "provider returned status FF00", 1},
        {"begin fails", MWL_E_STORE, 0, -1, 0, 0xFF00, 0xC000, 0, "worklist provider", 0},
        {"begin out of memory", MWL_E_NOMEM, 0, -1, 0, 0xFF00, 0xA700, 0, "out of memory", 0},
        {"next fails", MWL_OK, 0, 3, 0, 0xFF00, 0xC000, 3, "worklist provider", 1},
        {"warning final", MWL_OK, 0, -1, 0xB000, 0xFF00, 0xB000, 4, "too many matches", 1},
        {"failure final", MWL_OK, 0, -1, 0xA700, 0xFF00, 0xA700, 4, "too many matches", 1},
        {"pending final", MWL_OK, 0, -1, 0xFF00, 0xFF00, 0xC000, 4, "final status FF00", 1},
        {"FF01 matches", MWL_OK, 0, -1, 0, 0xFF01, 0x0000, 4, NULL, 1},
        {"bad match status", MWL_OK, 0, -1, 0, 0x0000, 0xC000, 0, "for a match", 1},
    };
    mwl_server_config cfg;
    tu_config(&cfg);
    test_provider p;
    tp_reset(&p, 4);
    mwl_find_provider fp = provider_for(&p);
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK_EQ_INT(tc_associate(&c, "FINDSCU", "MWL", mwl_only_ts, 2, NULL), MWL_PDU_ASSOCIATE_AC);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const error_case *e = &cases[i];
        tp_reset(&p, 4);
        p.begin_rc = e->begin_rc;
        p.early_status = e->early_status;
        p.fail_next_at = e->fail_next_at;
        p.final_status = e->final_status;
        p.pending_status = e->pending_status;
        uint16_t id = (uint16_t)(200 + i);
        CHECK(tc_send_find(&c, 3, id, MWL_TS_EXPLICIT_LE, "K"));
        int pending = 0;
        for (;;) {
            tc_msg m;
            if (read_find_rsp(&c, &m, id) != 1)
                break;
            if (mwl_dimse_status_is_pending(m.status)) {
                CHECK_EQ_INT(m.status, e->pending_status);
                pending++;
                tc_msg_free(&m);
                continue;
            }
            if (m.status != e->want_status || (e->want_comment && !strstr(m.comment, e->want_comment)) ||
                (!e->want_comment && m.comment[0])) {
                check_failures++;
                fprintf(stderr, "case %s: status %04X comment '%s'\n", e->name, m.status, m.comment);
            }
            if (e->early_status == 0xA900) {
                CHECK_EQ_INT(m.offending_count, 1);
                CHECK_EQ_INT(m.offending[0], MWL_TAG_PatientID);
            }
            tc_msg_free(&m);
            break;
        }
        if (pending != e->want_pending) {
            check_failures++;
            fprintf(stderr, "case %s: %d pending, want %d\n", e->name, pending, e->want_pending);
        }
        tu_pump(srv, 5);
        CHECK_EQ_INT(atomic_load(&p.ends), e->want_ends);
        check_contract(&p);
    }

    /* An identifier that does not decode: A900, the provider is not asked. */
    tp_reset(&p, 4);
    mwl_wbuf cmd, data;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(300, MWL_UID_ModalityWorklistInformationModelFind, 0, &cmd),
                 MWL_OK);
    mwl_wbuf_put(&data, "\x10\x00\x20\x00LO\xff\x7f", 8); /* length past the end */
    CHECK(tc_send_message(&c, 3, &cmd, &data));
    tc_msg m;
    CHECK_EQ_INT(read_find_rsp(&c, &m, 300), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH);
    CHECK(strstr(m.comment, "identifier") != NULL);
    tc_msg_free(&m);
    CHECK_EQ_INT(atomic_load(&p.begins), 0);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&data);

    /* A second C-FIND while one is outstanding: refused, the first goes on. */
    tp_reset(&p, 3);
    p.gated = true;
    CHECK(tc_send_find(&c, 3, 400, MWL_TS_EXPLICIT_LE, "K"));
    CHECK(wait_nexts(srv, &p, 1));
    CHECK(tc_send_find(&c, 3, 401, MWL_TS_EXPLICIT_LE, "K"));
    CHECK_EQ_INT(read_find_rsp(&c, &m, 401), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_OUT_OF_RESOURCES);
    tc_msg_free(&m);
    CHECK(tc_send_find(&c, 3, 400, MWL_TS_EXPLICIT_LE, "K"));
    CHECK_EQ_INT(read_find_rsp(&c, &m, 400), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_DUPLICATE_INVOCATION);
    tc_msg_free(&m);
    atomic_store(&p.gate, 1000);
    int pending = 0;
    CHECK_EQ_INT(read_until_final(&c, 400, MWL_TS_EXPLICIT_LE, &pending, 0), 0x0000);
    CHECK_EQ_INT(pending, 3);

    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

/* A reader that stops reading: the provider is not driven further than
 * the output watermarks allow, a C-ECHO elsewhere is still answered at
 * once, and everything arrives in order once the reader resumes. */
static void test_slow_reader(void)
{
    enum { TOTAL = 3000 };
    test_provider p;
    tp_reset(&p, TOTAL);
    p.pad = 1000;
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.workers = 1;
    cfg.write_timeout_ms = 10000;
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient a, b;
    CHECK(tc_open(&a, srv));
    CHECK(tc_associate_default(&a));
    CHECK(tc_send_find(&a, 3, 1, MWL_TS_EXPLICIT_LE, "SLOW"));
    tu_pump(srv, 700); /* a reads nothing meanwhile */
    int produced = atomic_load(&p.nexts);
    /* Unbounded, ~3 MB would be produced in well under 700 ms. What may be
     * produced: the high watermark, one step, and the socket buffers. */
    if (produced >= TOTAL / 2) {
        check_failures++;
        fprintf(stderr, "slow reader: provider driven to %d of %d matches\n", produced, TOTAL);
    }
    CHECK(produced > 100);

    CHECK(tc_open(&b, srv));
    CHECK(tc_associate_default(&b));
    uint64_t t0 = mwl_now_ms();
    CHECK(tc_send_echo(&b, 1, 9));
    tc_msg m;
    CHECK_EQ_INT(tc_read_message(&b, &m, 2000), 1);
    CHECK_EQ_INT(m.status, 0);
    tc_msg_free(&m);
    uint64_t echo_ms = mwl_now_ms() - t0;
    if (echo_ms > 1000) { /* a loop stalled by the reader would not answer at all */
        check_failures++;
        fprintf(stderr, "slow reader: C-ECHO elsewhere took %llu ms\n", (unsigned long long)echo_ms);
    }
    CHECK(atomic_load(&p.nexts) - produced < 64); /* still held back */
    printf(
        "slow reader: provider held at %d of %d matches (~1 KB each) for 700 ms; C-ECHO elsewhere: %llu ms\n",
        produced, TOTAL, (unsigned long long)echo_ms);
    CHECK(tc_release(&b));
    tc_close(&b);

    int pending = 0;
    CHECK_EQ_INT(read_until_final(&a, 1, MWL_TS_EXPLICIT_LE, &pending, 0), 0x0000);
    CHECK_EQ_INT(pending, TOTAL);
    CHECK(tc_release(&a));
    tc_close(&a);
    CHECK(settle(srv, 3000));
    CHECK_EQ_INT(atomic_load(&p.ends), 1);
    check_contract(&p);
    mwl_server_free(srv);
}

/* A C-FIND whose provider is slow keeps the only worker busy for 400 ms
 * per step; C-ECHOs on another association are answered at once anyway. */
static void test_echo_prompt_during_long_find(void)
{
    test_provider p;
    tp_reset(&p, 40);
    p.delay_ms = 25; /* a step of 16 matches holds the worker 400 ms */
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.workers = 1;
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient a, b;
    CHECK(tc_open(&a, srv));
    CHECK(tc_open(&b, srv));
    CHECK(tc_associate_default(&a));
    CHECK(tc_associate_default(&b));
    uint64_t start = mwl_now_ms();
    CHECK(tc_send_find(&a, 3, 1, MWL_TS_EXPLICIT_LE, "LONG"));
    uint64_t worst = 0;
    int echoes = 0;
    while (atomic_load(&p.nexts) < 36 && mwl_now_ms() - start < 5000) {
        uint64_t t0 = mwl_now_ms();
        CHECK(tc_send_echo(&b, 1, (uint16_t)echoes));
        tc_msg m;
        CHECK_EQ_INT(tc_read_message(&b, &m, 2000), 1);
        tc_msg_free(&m);
        uint64_t took = mwl_now_ms() - t0;
        worst = took > worst ? took : worst;
        echoes++;
        tc_turn(&a, 5); /* keep reading a's responses into its buffer */
    }
    CHECK(echoes >= 10);
    printf("long C-FIND (40 x 25 ms on 1 worker): %d C-ECHOs on another association, worst %llu ms\n", echoes,
           (unsigned long long)worst);
    if (worst > 750) { /* waiting for the C-FIND would take its whole second */
        check_failures++;
        fprintf(stderr, "C-ECHO during a long C-FIND took up to %llu ms\n", (unsigned long long)worst);
    }
    int pending = 0;
    CHECK_EQ_INT(read_until_final(&a, 1, MWL_TS_EXPLICIT_LE, &pending, 0), 0x0000);
    CHECK_EQ_INT(pending, 40);
    CHECK(mwl_now_ms() - start >= 1000); /* it really was long */
    CHECK(tc_release(&a));
    CHECK(tc_release(&b));
    tc_close(&a);
    tc_close(&b);
    CHECK(settle(srv, 3000));
    check_contract(&p);
    mwl_server_free(srv);
}

/* A provider slower than the idle timeout: the association is not idle
 * while its C-FIND is being worked on, so it is not aborted. */
static void test_slow_provider_outlives_idle_timeout(void)
{
    test_provider p;
    tp_reset(&p, 3);
    p.delay_ms = 400; /* each match takes longer than the idle timeout */
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.workers = 1;
    cfg.find_batch = 1;
    cfg.idle_timeout_ms = 250;
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient a;
    CHECK(tc_open(&a, srv));
    CHECK(tc_associate_default(&a));
    CHECK(tc_send_find(&a, 3, 1, MWL_TS_EXPLICIT_LE, "SLOW"));
    int pending = 0;
    CHECK_EQ_INT(read_until_final(&a, 1, MWL_TS_EXPLICIT_LE, &pending, 0), 0x0000);
    CHECK_EQ_INT(pending, 3);
    CHECK(tc_release(&a));
    tc_close(&a);
    CHECK(settle(srv, 3000));
    check_contract(&p);
    mwl_server_free(srv);
}

/* The association ends while a C-FIND is in progress: by A-ABORT, by
 * release, by the peer vanishing, by server shutdown. The provider is
 * always ended, exactly once, and every session is freed. */
static void test_association_ends_mid_find(void)
{
    enum { ABORT, RELEASE, VANISH, SHUTDOWN, CASES };
    for (int k = 0; k < CASES; k++) {
        test_provider p;
        tp_reset(&p, 10);
        p.gated = true;
        atomic_store(&p.gate, 2);
        mwl_find_provider fp = provider_for(&p);
        mwl_server_config cfg;
        tu_config(&cfg);
        cfg.find_batch = 1;
        cfg.shutdown_grace_ms = 200;
        mwl_server *srv = tu_server(&cfg, &fp);
        if (!srv)
            return;
        tclient c;
        CHECK(tc_open(&c, srv));
        CHECK(tc_associate_default(&c));
        CHECK(tc_send_find(&c, 3, 1, MWL_TS_EXPLICIT_LE, "X"));
        for (int i = 0; i < 2; i++) {
            tc_msg m;
            CHECK_EQ_INT(read_find_rsp(&c, &m, 1), 1);
            tc_msg_free(&m);
        }
        CHECK(wait_nexts(srv, &p, 3)); /* blocked in next #3 */
        bool running = true;
        if (k == ABORT) {
            CHECK(tc_send(&c, "\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00", 10));
        } else if (k == RELEASE) {
            CHECK(tc_send(&c, "\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00", 10));
            CHECK_EQ_INT(tc_next_pdu(&c, 3000), 1);
            CHECK_EQ_INT(c.pdu_type, MWL_PDU_RELEASE_RP);
            close(c.fd);
            c.fd = -1;
        } else if (k == VANISH) {
            close(c.fd);
            c.fd = -1;
        } else {
            mwl_server_shutdown(srv);
            uint64_t until = mwl_deadline_in(5000);
            while (running && mwl_now_ms() < until)
                running = mwl_server_run_once(srv, 10, NULL);
            CHECK(!running);
            CHECK_EQ_INT(atomic_load(&p.saw_cancel), 1); /* cancelled, not waited out */
        }
        if (running)
            CHECK(settle(srv, 3000));
        CHECK_EQ_INT(active(srv), 0);
        CHECK_EQ_INT(atomic_load(&p.begins), 1);
        CHECK_EQ_INT(atomic_load(&p.ends), 1);
        CHECK(atomic_load(&p.nexts) <= 4);
        check_contract(&p);
        tc_close(&c);
        mwl_server_free(srv);
    }
}

/* Freeing a server with a C-FIND in flight ends the provider too. */
static void test_free_mid_find(void)
{
    test_provider p;
    tp_reset(&p, 10);
    p.gated = true;
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK(tc_associate_default(&c));
    CHECK(tc_send_find(&c, 3, 1, MWL_TS_EXPLICIT_LE, "X"));
    CHECK(wait_nexts(srv, &p, 1));
    mwl_server_free(srv);
    CHECK_EQ_INT(atomic_load(&p.ends), 1);
    tc_close(&c);
}

/* An unindexed scan gives its worker back at every step's budget: with
 * ONE worker, a short query on another association is answered while the
 * scan is still going, not after it; the scan's later steps are background
 * work; pause runs at the end of every step that is not the last. */
static void test_scan_yields_worker(void)
{
    test_provider p;
    tp_reset(&p, 1);
    p.scan_yields = 200; /* 200 steps of 2 ms: ~0.4 s of scanning at least */
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.idle_timeout_ms = 120000; /* the scan's association waits as long */
    cfg.workers = 1;
    cfg.find_step_ms = 2;
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    tclient scan, fast;
    CHECK(tc_open(&scan, srv));
    CHECK(tc_open(&fast, srv));
    CHECK(tc_associate_default(&scan));
    CHECK(tc_associate_default(&fast));
    CHECK(tc_send_find(&scan, 3, 1, MWL_TS_EXPLICIT_LE, "SCAN"));
    uint64_t until = mwl_deadline_in(5000);
    while (atomic_load(&p.yields) < 5 && mwl_now_ms() < until)
        tu_pump(srv, 1);
    CHECK(atomic_load(&p.yields) >= 5);
    /* A short query now: answered in full while the scan has steps left. */
    for (int q = 0; q < 5; q++) {
        CHECK(tc_send_find(&fast, 3, (uint16_t)(10 + q), MWL_TS_EXPLICIT_LE, "FAST"));
        int pending = 0;
        CHECK_EQ_INT(read_until_final(&fast, (uint16_t)(10 + q), MWL_TS_EXPLICIT_LE, &pending, 0),
                     MWL_DIMSE_STATUS_SUCCESS);
        CHECK_EQ_INT(pending, 1);
    }
    int yields_when_fast_done = atomic_load(&p.yields);
    CHECK(yields_when_fast_done < p.scan_yields);
    /* The scan finishes on its own, with its one match: background work,
     * which waits while anything else wants the CPUs. */
    int pending = 0;
    read_timeout_ms = 120000;
    CHECK_EQ_INT(read_until_final(&scan, 1, MWL_TS_EXPLICIT_LE, &pending, 0), MWL_DIMSE_STATUS_SUCCESS);
    read_timeout_ms = 5000;
    CHECK_EQ_INT(pending, 1);
    CHECK_EQ_INT(atomic_load(&p.yields), p.scan_yields);
    /* Every yielded step (and the fast queries' none) ended with pause. */
    CHECK(atomic_load(&p.pauses) >= p.scan_yields);
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK(st.find_steps >= (uint64_t)p.scan_yields);
    CHECK(tc_release(&scan));
    CHECK(tc_release(&fast));
    tc_close(&scan);
    tc_close(&fast);
    CHECK(settle(srv, 3000));
    check_contract(&p);
    CHECK_EQ_INT(atomic_load(&p.begins), atomic_load(&p.ends));
    mwl_server_free(srv);
}

/* A deflated identifier inflates within the message bound (1 MiB), not the
 * codec's default: a 2 MiB bomb of a few KiB is refused with A700 before
 * the provider sees it. */
static void test_deflate_bomb(void)
{
    test_provider p;
    tp_reset(&p, 1);
    mwl_find_provider fp = provider_for(&p);
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, &fp);
    if (!srv)
        return;
    static const tc_context deflated[] = {
        {3, MWL_UID_ModalityWorklistInformationModelFind, {MWL_UID_DeflatedExplicitVRLittleEndian}, 1},
    };
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK_EQ_INT(tc_associate(&c, "TESTSCU", "MWL", deflated, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &ds), MWL_OK);
    size_t big = 2u * 1024u * 1024u;
    char *pad = mwl_arena_alloc(&a, big + 1);
    CHECK(pad != NULL);
    if (pad) {
        memset(pad, 'x', big);
        CHECK_EQ_INT(mwl_ds_set(ds, 0x00420011u /* Encapsulated Document */, MWL_VR_OB, pad, big), MWL_OK);
    }
    mwl_wbuf cmd, data;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(7, MWL_UID_ModalityWorklistInformationModelFind,
                                          MWL_DIMSE_PRIORITY_MEDIUM, &cmd),
                 MWL_OK);
    CHECK_EQ_INT(mwl_ds_encode(ds, MWL_TS_DEFLATED_LE, &data), MWL_OK);
    CHECK(data.len < 64u * 1024u); /* small on the wire */
    CHECK(tc_send_message(&c, 3, &cmd, &data));
    tc_msg m;
    CHECK_EQ_INT(read_find_rsp(&c, &m, 7), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_OUT_OF_RESOURCES);
    CHECK(strstr(m.comment, "too large") != NULL);
    tc_msg_free(&m);
    CHECK_EQ_INT(atomic_load(&p.begins), 0);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&data);
    mwl_arena_clear(&a);
    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tu_log_init();
    loop_thread = pthread_self();
    RUN_TEST(test_stream_each_transfer_syntax);
    RUN_TEST(test_cancel_at_every_point);
    RUN_TEST(test_provider_statuses);
    RUN_TEST(test_slow_reader);
    RUN_TEST(test_echo_prompt_during_long_find);
    RUN_TEST(test_slow_provider_outlives_idle_timeout);
    RUN_TEST(test_association_ends_mid_find);
    RUN_TEST(test_free_mid_find);
    RUN_TEST(test_scan_yields_worker);
    RUN_TEST(test_deflate_bomb);
    return check_report("server_find_test");
}
