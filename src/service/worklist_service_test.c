/* The worklist service on its own: its configuration table (defaults, a
 * file shared with the server's keys, the same checks for a config built
 * by hand), and its C-FIND provider driven directly: matches, yielding at
 * the step budget, max-matches and max-find-duration ending with A700, and
 * every allocation failure reported, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dicom/tag.h"
#include "service/worklist.h"
#include "store/store.h"

static char db_dir[] = "/tmp/mwl_service_test_XXXXXX";
static char db_path[600];

static void test_config_table(void)
{
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    CHECK_EQ_STR(cfg.db, "mwl.db");
    CHECK(!cfg.pn_case_sensitive);
    CHECK(!cfg.pn_accent_insensitive);
    CHECK(!cfg.filter_by_calling_aet);
    CHECK_EQ_INT(cfg.max_matches, 0);
    CHECK_EQ_INT(cfg.max_find_duration_ms, 0);
    CHECK_EQ_STR(cfg.response_charset, "auto");
    CHECK(!cfg.per_called_aet);

    /* One file for the server's keys and the service's. */
    mwl_server_config scfg;
    mwl_server_config_init(&scfg);
    const mwl_config_table *tables[2] = {mwl_server_config_table(), mwl_worklist_config_table()};
    void *objs[2] = {&scfg, &cfg};
    const char *text = "port = 104\n"
                       "db = /var/lib/mwl/worklist.db\n"
                       "max-find-duration = 2.5\n"
                       "response-charset = utf8\n"
                       "max-associations = 9\n";
    mwl_diag diag;
    CHECK_EQ_INT(mwl_config_parse(text, strlen(text), tables, objs, 2, &diag), MWL_OK);
    CHECK_EQ_INT(scfg.port, 104);
    CHECK_EQ_INT(scfg.max_associations, 9);
    CHECK_EQ_STR(cfg.db, "/var/lib/mwl/worklist.db");
    CHECK_EQ_INT(cfg.max_find_duration_ms, 2500);
    CHECK_EQ_STR(cfg.response_charset, "utf8");
    /* An error in either table leaves both untouched and names the line. */
    mwl_worklist_config before = cfg;
    mwl_server_config sbefore = scfg;
    const char *bad = "port = 105\nresponse-charset = latin1\n";
    CHECK_EQ_INT(mwl_config_parse(bad, strlen(bad), tables, objs, 2, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "line 2:") == diag.msg);
    CHECK(strstr(diag.msg, "auto, item, utf8") != NULL);
    CHECK(memcmp(&cfg, &before, sizeof cfg) == 0);
    CHECK(memcmp(&scfg, &sbefore, sizeof scfg) == 0);
    const char *twice = "db = a.db\ndb = b.db\n";
    CHECK_EQ_INT(mwl_config_parse(twice, strlen(twice), tables, objs, 2, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "already set on line 1") != NULL);
}

/* A library caller building the config by hand gets the same checks. */
static void test_config_checks(void)
{
    mwl_worklist_config cfg;
    mwl_worklist_service *svc = NULL;
    mwl_diag diag;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.response_charset, sizeof cfg.response_charset, "latin1");
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "response-charset") != NULL);
    CHECK(svc == NULL);
    mwl_worklist_config_init(&cfg);
    cfg.db[0] = '\0';
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "db") != NULL);
    mwl_worklist_config_init(&cfg);
    cfg.max_matches = 100000001;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_E_INVALID);
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s/no/such/dir/x.db", db_dir);
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_E_STORE);
    CHECK(diag.msg[0] != '\0');
}

static int fill(int items)
{
    mwl_store *s = NULL;
    mwl_diag d;
    int rc = mwl_store_open(db_path, NULL, &s, &d);
    if (rc != MWL_OK)
        return rc;
    rc = mwl_store_begin(s, &d);
    for (int i = 0; rc == MWL_OK && i < items; i++) {
        mwl_arena a;
        mwl_arena_init(&a, NULL);
        mwl_ds *ds = NULL, *sps = NULL;
        char pid[16], acc[16], uid[64], name[32];
        snprintf(pid, sizeof pid, "PID%04d", i);
        snprintf(acc, sizeof acc, "ACC%04d", i);
        snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.10.%d", i + 1);
        snprintf(name, sizeof name, "DOE^JOHN%d", i);
        rc = mwl_ds_new(&a, NULL, &ds);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, pid);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, name);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, MWL_VR_SH, acc);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, MWL_VR_UI, uid);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, MWL_TAG_RequestedProcedureID, MWL_VR_SH, "RP1");
        if (rc == MWL_OK)
            rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, i % 2 ? "CT1" : "MR1");
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, MWL_VR_DA, "20261204");
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartTime, MWL_VR_TM, "0900");
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_Modality, MWL_VR_CS, i % 2 ? "CT" : "MR");
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepID, MWL_VR_SH, "SPS1");
        if (rc == MWL_OK)
            rc = mwl_store_put_item(s, ds, "test", NULL, NULL, &d);
        mwl_arena_clear(&a);
    }
    if (rc == MWL_OK)
        rc = mwl_store_commit(s, &d);
    mwl_store_free(s);
    return rc;
}

typedef struct run_result {
    int rc; /* of begin, or the first failing next */
    size_t matches, yields;
    mwl_find_status final; /* early or final status */
} run_result;

/* One C-FIND through the provider with `patient_name` as the only key. */
static run_result run_query(const mwl_find_provider *p, const char *patient_name, uint64_t started_ms)
{
    run_result r;
    memset(&r, 0, sizeof r);
    mwl_arena id;
    mwl_arena_init(&id, NULL);
    mwl_ds *ident = NULL;
    r.rc = mwl_ds_new(&id, NULL, &ident);
    if (r.rc == MWL_OK)
        r.rc = mwl_ds_set_str(ident, MWL_TAG_PatientName, MWL_VR_PN, patient_name);
    if (r.rc == MWL_OK)
        r.rc = mwl_ds_set_str(ident, MWL_TAG_PatientID, MWL_VR_LO, "");
    mwl_find_request req;
    memset(&req, 0, sizeof req);
    req.identifier = ident;
    req.transfer_syntax = MWL_TS_EXPLICIT_LE;
    req.sop_class_uid = MWL_UID_ModalityWorklistInformationModelFind;
    req.calling_ae = "TEST";
    req.called_ae = "MWL";
    req.peer = "test";
    req.started_ms = started_ms;
    void *state = NULL;
    if (r.rc == MWL_OK)
        r.rc = p->begin(p->user, &req, &state, &r.final);
    if (r.rc != MWL_OK || r.final.status != 0) {
        if (r.rc == MWL_OK)
            p->end(state);
        mwl_arena_clear(&id);
        return r;
    }
    mwl_arena match;
    mwl_arena_init(&match, NULL);
    for (int guard = 0; guard < 1000000; guard++) {
        const mwl_ds *m = NULL;
        uint16_t status = 0xFF00;
        mwl_find_status st;
        memset(&st, 0, sizeof st);
        mwl_arena_clear(&match);
        int rc = p->next(state, &req, &match, &m, &status, &st);
        if (rc == MWL_AGAIN && !m) {
            r.yields++;
            if (p->pause)
                p->pause(state);
            continue;
        }
        if (rc != MWL_OK) {
            r.rc = rc;
            r.final = st;
            break;
        }
        if (!m) {
            r.final = st;
            break;
        }
        r.matches++;
    }
    p->end(state);
    mwl_arena_clear(&match);
    mwl_arena_clear(&id);
    return r;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_provider(void)
{
    CHECK_EQ_INT(fill(300), MWL_OK);
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", db_path);
    mwl_worklist_service *svc = NULL;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_OK);
    if (!svc)
        return;
    const mwl_find_provider *p = mwl_worklist_service_provider(svc);
    run_result r = run_query(p, "DOE^JOHN1*", now_ms());
    CHECK_EQ_INT(r.rc, MWL_OK);
    CHECK_EQ_INT(r.final.status, 0);
    CHECK_EQ_INT(r.matches, 111);        /* JOHN1, JOHN10..19, JOHN100..199 */
    r = run_query(p, "*ZZZ*", now_ms()); /* an unindexed scan matching nothing */
    CHECK_EQ_INT(r.rc, MWL_OK);
    CHECK_EQ_INT(r.final.status, 0);
    CHECK_EQ_INT(r.matches, 0);
    /* One connection serves one query at a time here. */
    CHECK_EQ_INT(mwl_worklist_service_connections(svc), 1);
    mwl_worklist_service_free(svc);

    /* max-matches: exactly N is a complete answer; more ends with A700. */
    cfg.max_matches = 111;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_OK);
    if (svc) {
        r = run_query(mwl_worklist_service_provider(svc), "DOE^JOHN1*", now_ms());
        CHECK_EQ_INT(r.final.status, 0);
        CHECK_EQ_INT(r.matches, 111);
        r = run_query(mwl_worklist_service_provider(svc), "DOE^JOHN*", now_ms());
        CHECK_EQ_INT(r.final.status, 0xA700);
        CHECK(strstr(r.final.error_comment, "more than 111 matches") != NULL);
        CHECK_EQ_INT(r.matches, 111);
        mwl_worklist_service_free(svc);
    }

    /* max-find-duration: a C-FIND that has run longer ends with A700. */
    cfg.max_matches = 0;
    cfg.max_find_duration_ms = 1000;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &diag), MWL_OK);
    if (svc) {
        r = run_query(mwl_worklist_service_provider(svc), "DOE^JOHN*", now_ms() - 5000);
        CHECK_EQ_INT(r.final.status, 0xA700);
        CHECK(strstr(r.final.error_comment, "query ran over 1.000 s") != NULL);
        CHECK(r.matches < 300);
        r = run_query(mwl_worklist_service_provider(svc), "DOE^JOHN*", now_ms());
        CHECK_EQ_INT(r.final.status, 0);
        CHECK_EQ_INT(r.matches, 300);
        mwl_worklist_service_free(svc);
    }
}

/* Every allocation the service makes goes through its allocator: failing
 * each in turn gives an error status, never a crash or a leak (ASan). */
static void test_allocation_failures(void)
{
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", db_path);
    size_t reached = 0;
    for (size_t fail_at = 1; fail_at < 200; fail_at++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail_at);
        mwl_worklist_service *svc = NULL;
        mwl_diag diag;
        int rc = mwl_worklist_service_new(&cfg, &f.mem, &svc, &diag);
        if (rc != MWL_OK) {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
            continue;
        }
        run_result r = run_query(mwl_worklist_service_provider(svc), "DOE^JOHN1*", now_ms());
        if (r.rc == MWL_OK && r.final.status == 0) {
            CHECK_EQ_INT(r.matches, 111);
            reached++;
        } else {
            CHECK(r.rc == MWL_E_NOMEM || r.final.status == 0xA700 || r.final.status == 0xC001);
        }
        mwl_worklist_service_free(svc);
        if (f.count < fail_at) /* nothing failed: every allocation was reached */
            break;
    }
    CHECK(reached > 0);
}

int main(void)
{
    if (!mkdtemp(db_dir))
        return 1;
    snprintf(db_path, sizeof db_path, "%s/wl.db", db_dir);
    RUN_TEST(test_config_table);
    RUN_TEST(test_config_checks);
    RUN_TEST(test_provider);
    RUN_TEST(test_allocation_failures);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", db_dir);
    return check_report("worklist_service_test");
}
