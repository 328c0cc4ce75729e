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
    CHECK_EQ_STR(cfg.hide_statuses, "COMPLETED,DISCONTINUED,CANCELED");
    CHECK_EQ_INT(cfg.expire_after_days, 0);
    CHECK_EQ_INT(cfg.expire_statuses_after_hours, 0);
    CHECK_EQ_STR(cfg.expire_statuses, "COMPLETED,DISCONTINUED,CANCELED");
    CHECK_EQ_INT(cfg.expire_interval_ms, 3600000);

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
    const char *bad_lists[] = {"completed", "COMPLETED,,CANCELED", "A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q",
                               "TOO_LONG_FOR_A_CS_VALUE"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
        mwl_worklist_config_init(&cfg);
        snprintf(cfg.hide_statuses, sizeof cfg.hide_statuses, "%s", bad_lists[i]);
        CHECK_EQ_INT(mwl_worklist_config_check(&cfg, &diag), MWL_E_INVALID);
        CHECK(strstr(diag.msg, "hide-statuses") != NULL);
        mwl_worklist_config_init(&cfg);
        snprintf(cfg.expire_statuses, sizeof cfg.expire_statuses, "%s", bad_lists[i]);
        CHECK_EQ_INT(mwl_worklist_config_check(&cfg, &diag), MWL_E_INVALID);
        CHECK(strstr(diag.msg, "expire-statuses") != NULL);
    }
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.hide_statuses, sizeof cfg.hide_statuses, " COMPLETED , IN PROGRESS");
    CHECK_EQ_INT(mwl_worklist_config_check(&cfg, &diag), MWL_OK);
    cfg.hide_statuses[0] = '\0';
    CHECK_EQ_INT(mwl_worklist_config_check(&cfg, &diag), MWL_OK);
    cfg.expire_interval_ms = 999;
    CHECK_EQ_INT(mwl_worklist_config_check(&cfg, &diag), MWL_E_INVALID);
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

/* SPS Status in the queries of run_query: NULL = not a key. */
static const char *query_status;

/* One C-FIND through the provider with `patient_name` as the only key
 * (and query_status). */
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
    mwl_ds *sps_item = NULL;
    if (r.rc == MWL_OK && query_status)
        r.rc = mwl_ds_add_item(ident, MWL_TAG_ScheduledProcedureStepSequence, &sps_item);
    if (r.rc == MWL_OK && query_status)
        r.rc = mwl_ds_set_str(sps_item, MWL_TAG_ScheduledProcedureStepStatus, MWL_VR_CS, query_status);
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

/* hide-statuses: steps with a hidden status are not returned, unless the
 * query gives SPS Status (then matching decides) or nothing is hidden. */
static void test_hide_statuses(void)
{
    mwl_store *s = NULL;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_open(db_path, NULL, &s, &d), MWL_OK);
    for (int i = 10; s && i < 20; i++) { /* DOE^JOHN10..19 */
        char uid[64];
        snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.10.%d", i + 1);
        mwl_sps_ref ref = {.study_uid = uid, .sps_id = "SPS1"};
        CHECK_EQ_INT(mwl_store_set_status(s, &ref, i < 15 ? "COMPLETED" : "CANCELED", NULL, &d), MWL_OK);
    }
    mwl_store_free(s);
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", db_path);
    mwl_worklist_service *svc = NULL;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &d), MWL_OK);
    if (!svc)
        return;
    const mwl_find_provider *p = mwl_worklist_service_provider(svc);
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 101); /* hidden by default */
    query_status = "";                                               /* asked for, no value: still hidden */
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 101);
    query_status = "COMPLETED";
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 5);
    query_status = "CANCELED";
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 5);
    query_status = NULL;
    /* a reload changes it for the next C-FIND */
    snprintf(cfg.hide_statuses, sizeof cfg.hide_statuses, "CANCELED");
    CHECK_EQ_INT(mwl_worklist_service_reconfigure(svc, &cfg, &d), MWL_OK);
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 106);
    cfg.hide_statuses[0] = '\0'; /* hide nothing */
    CHECK_EQ_INT(mwl_worklist_service_reconfigure(svc, &cfg, &d), MWL_OK);
    CHECK_EQ_INT(run_query(p, "DOE^JOHN1*", now_ms()).matches, 111);
    mwl_worklist_service_free(svc);
}

/* One expiry run: by SPS start date against the local date, by status and
 * its age; the line mwl serve logs. (Rows are dated 20261204; the ten of
 * test_hide_statuses are finished.) */
static void test_expire(void)
{
    mwl_store *s = NULL;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_open(db_path, NULL, &s, &d), MWL_OK);
    if (!s)
        return;
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 6, .tm_hour = 12, .tm_isdst = -1};
    int64_t dec6 = (int64_t)mktime(&tm) * 1000; /* local noon */
    mwl_worklist_expiry e = {.by_status = true, .hours = 1, .statuses = "COMPLETED, CANCELED"};
    mwl_worklist_expiry_result r;
    char line[256];
    /* finished just now: not an hour ago */
    CHECK_EQ_INT(mwl_worklist_expire(s, &e, dec6 - 86400000 * 400LL, &r, &d), MWL_OK);
    CHECK_EQ_INT(r.finished, 0);
    CHECK_EQ_INT(mwl_worklist_expire(s, &e, dec6 + 86400000 * 400LL, &r, &d), MWL_OK);
    CHECK_EQ_INT(r.finished, 10);
    /* by date: the steps of 20261204 are before 20261206 - 1 day, not before 20261206 - 2 days */
    e = (mwl_worklist_expiry){.by_date = true, .days = 2};
    CHECK_EQ_INT(mwl_worklist_expire(s, &e, dec6, &r, &d), MWL_OK);
    CHECK_EQ_STR(r.before_date, "20261204");
    CHECK_EQ_INT(r.scheduled, 0);
    mwl_worklist_expiry_summary(&e, &r, line, sizeof line);
    CHECK_EQ_STR(line, "expire: removed 0 steps scheduled before 20261204");
    e.days = 1;
    e.by_status = true, e.hours = 2, e.statuses = "COMPLETED";
    CHECK_EQ_INT(mwl_worklist_expire(s, &e, dec6, &r, &d), MWL_OK);
    CHECK_EQ_STR(r.before_date, "20261205");
    CHECK_EQ_INT(r.scheduled, 290);
    CHECK_EQ_STR(r.finished_before, "2026-12-06 10:00");
    mwl_worklist_expiry_summary(&e, &r, line, sizeof line);
    CHECK_EQ_STR(line, "expire: removed 290 steps scheduled before 20261205, 0 finished (COMPLETED) before "
                       "2026-12-06 10:00");
    e = (mwl_worklist_expiry){0};
    mwl_worklist_expiry_summary(&e, &r, line, sizeof line);
    CHECK_EQ_STR(line, "");
    e = (mwl_worklist_expiry){.by_status = true, .statuses = "bad"};
    CHECK_EQ_INT(mwl_worklist_expire(s, &e, dec6, &r, &d), MWL_E_INVALID);
    int64_t left = -1;
    CHECK_EQ_INT(mwl_store_count(s, &left, &d), MWL_OK);
    mwl_store_free(s);

    /* The service's thread: its first run is at start (the steps of
     * 20261204 are before today - 1 day from 20261206 on), and freeing the
     * service stops it. */
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", db_path);
    cfg.expire_after_days = 1;
    mwl_worklist_service *svc = NULL;
    CHECK_EQ_INT(mwl_worklist_service_new(&cfg, NULL, &svc, &d), MWL_OK);
    if (!svc)
        return;
    CHECK_EQ_INT(mwl_worklist_service_start_expiry(svc, &d), MWL_OK);
    CHECK_EQ_INT(mwl_worklist_service_start_expiry(svc, &d), MWL_E_INVALID);
    time_t t = time(NULL);
    struct tm today;
    localtime_r(&t, &today);
    bool expect_removed =
        (today.tm_year + 1900) * 10000 + (today.tm_mon + 1) * 100 + today.tm_mday > 20261205;
    int64_t n = left;
    for (int i = 0; i < 200 && expect_removed && n > 0; i++) {
        usleep(10000);
        CHECK_EQ_INT(mwl_store_open(db_path, NULL, &s, &d), MWL_OK);
        CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
        mwl_store_free(s);
    }
    CHECK_EQ_INT(n, expect_removed ? 0 : left);
    mwl_worklist_service_free(svc);
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
    RUN_TEST(test_hide_statuses);
    RUN_TEST(test_expire);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", db_dir);
    return check_report("worklist_service_test");
}
