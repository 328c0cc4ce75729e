/* Narrowing is a superset of matching: every stored row the matcher says
 * matches a query is a candidate of the store's narrowing
 * (mwl_filter_from_query + the backend's SQL over mwl_sps_index values).
 *
 * Differential over tests/vectors/query/match.tsv: for each row expected
 * to match, the stored item is put into a fresh SQLite store (with an SPS
 * item when the key is not inside one), the query's filter is derived,
 * and the row must come back from a cursor over that filter -- unless the
 * library refuses the item (a VM 1 key with several values), which is then
 * asserted instead. Then hand-written multi-key cases the single-key
 * vectors cannot express (combined date-time ranges, a calling AE title
 * constraint, several SPS, retired date forms). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dicom/codec.h"
#include "store/store.h"
#include "worklist/wl_test_util.h"

static char db_dir[] = "/tmp/mwl_narrow_test_XXXXXX";
static mwl_store *store;
static int candidates_checked, refusals_checked;

/* How many rows the store holds that `q` matches and how many of those
 * are candidates of its filter. */
static void count_matches_and_candidates(const mwl_query *q, const mwl_match_opts *opts, size_t *matches,
                                         size_t *candidates)
{
    *matches = *candidates = 0;
    mwl_filter all, f;
    mwl_filter_init(&all);
    mwl_filter_from_query(q, &f);
    mwl_matcher m;
    mwl_matcher_init(&m, opts, NULL);
    /* every stored row, judged by the matcher */
    int64_t matched_ids[64];
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    int rc;
    while ((rc = mwl_store_cursor_next(store, &all, &c, &row, &d)) == MWL_OK) {
        mwl_arena a;
        mwl_arena_init(&a, NULL);
        mwl_ds *ds;
        bool hit = false;
        CHECK_EQ_INT(mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, &a, NULL, &ds, &d), MWL_OK);
        CHECK_EQ_INT(mwl_match_dataset(&m, q, ds, 0, &hit, &d), MWL_OK);
        if (hit && *matches < 64)
            matched_ids[(*matches)++] = row.id;
        mwl_arena_clear(&a);
    }
    CHECK_EQ_INT(rc, MWL_E_NOTFOUND);
    /* the candidates */
    mwl_store_cursor_init(&c);
    while ((rc = mwl_store_cursor_next(store, &f, &c, &row, &d)) == MWL_OK) {
        for (size_t i = 0; i < *matches; i++)
            *candidates += matched_ids[i] == row.id;
    }
    CHECK_EQ_INT(rc, MWL_E_NOTFOUND);
    mwl_store_cursor_pause(store);
    mwl_matcher_clear(&m);
}

/* The SPS item of `item`, added (empty) when the vector's key is not in one. */
static void ensure_sps(mwl_ds *item)
{
    if (!mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepSequence)) {
        mwl_ds *sps;
        CHECK_EQ_INT(mwl_ds_add_item(item, MWL_TAG_ScheduledProcedureStepSequence, &sps), MWL_OK);
    }
}

static void run_vector(int line, char **f, void *user)
{
    (void)user;
    const char *key = f[1], *options = f[2], *qcs = f[3], *query = f[4], *scs = f[5], *stored = f[6],
               *expect = f[7];
    if (strcmp(expect, "match") != 0 && strcmp(expect, "ignored") != 0)
        return;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *id = wlt_vector_ds(&arena, qcs, key, query);
    mwl_ds *item = wlt_vector_ds(&arena, scs, key, stored);
    ensure_sps(item);
    mwl_match_opts opts;
    mwl_match_opts_init(&opts);
    opts.pn_case_sensitive = strstr(options, "pn_strict") != NULL;
    opts.pn_accent_insensitive = strstr(options, "accents") != NULL;

    mwl_diag d;
    CHECK_EQ_INT(mwl_store_clear(store, NULL, &d), MWL_OK);
    int rc = mwl_store_put_item(store, item, "vector", NULL, NULL, &d);
    mwl_item_problem p;
    int check = mwl_worklist_check_item(item, MWL_CHECK_LENIENT, &p);
    if (rc != MWL_OK) {
        /* The only items the library may refuse here: several values in a
         * key of VM 1, refused the same by the check every intake runs. */
        refusals_checked++;
        bool ok = rc == MWL_E_INVALID && check == MWL_E_INVALID && p.code == MWL_ITEM_MULTI_VALUED;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "match.tsv:%d: %s \"%s\" refused: %s (%s)\n", line, key, stored, d.msg,
                    mwl_item_problem_name(p.code));
        mwl_arena_clear(&arena);
        return;
    }
    CHECK_EQ_INT(check, MWL_OK);
    mwl_query *q;
    CHECK_EQ_INT(mwl_query_parse(id, &arena, &q, &d), MWL_OK);
    size_t matches, candidates;
    count_matches_and_candidates(q, &opts, &matches, &candidates);
    candidates_checked++;
    /* the vector says it matches: the stored row must match, and be a candidate */
    CHECK_EQ_INT(matches, 1);
    CHECK_EQ_INT(candidates, matches);
    if (matches != 1 || candidates != matches)
        fprintf(stderr, "match.tsv:%d: %s \"%s\" vs \"%s\": %zu matches, %zu candidates\n", line, key, query,
                stored, matches, candidates);
    mwl_arena_clear(&arena);
}

static void test_vectors(void)
{
    int rows = wlt_match_vectors(run_vector, NULL);
    CHECK(rows > 100);
    CHECK(candidates_checked > 60);
    CHECK(refusals_checked >= 4); /* the multi-valued VM 1 rows */
}

/* Multi-key queries: each item stored, each identifier its filter, and
 * every match must be a candidate. `matches` is how many of the stored
 * items (one SPS each) the identifier matches, so a case cannot pass by
 * matching nothing. */
static void test_multi_key(void)
{
    static const char *const items[] = {
        "PatientName=Doe^John|PatientID=P1|AccessionNumber=A1|StudyInstanceUID=1.2.1|"
        "ScheduledProcedureStepSequence[ScheduledStationAETitle=CT1\\CT2|ScheduledProcedureStepStartDate="
        "20060706|ScheduledProcedureStepStartTime=0800|Modality=CT|ScheduledProcedureStepID=S1|"
        "ScheduledProcedureStepStatus=SCHEDULED]",
        "PatientName=Roe^Jane=ロウ^ジェーン|PatientID=P2|AccessionNumber=A2|SpecificCharacterSet=ISO_IR 192|"
        "ScheduledProcedureStepSequence[ScheduledStationAETitle=MR1|ScheduledProcedureStepStartDate="
        "2006.07.07|ScheduledProcedureStepStartTime=17:59|Modality=MR|ScheduledProcedureStepID=S2]",
        "PatientName=Poe^Edgar|PatientID=P3|"
        "ScheduledProcedureStepSequence[ScheduledStationAETitle=US1|ScheduledProcedureStepStartDate="
        "20060705|ScheduledProcedureStepStartTime=235959.5|Modality=US]",
        "PatientName=Noe^Time|PatientID=P4|ScheduledProcedureStepSequence[Modality=CR]",
    };
    static const struct {
        const char *identifier;
        size_t matches;
    } cases[] = {
        /* C.2.2.2.5.4: 5 July 10:00 .. 7 July 18:00 */
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20060705-20060707|"
         "ScheduledProcedureStepStartTime=1000-1800]",
         3},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20060707|"
         "ScheduledProcedureStepStartTime=-1800]",
         1},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=-20060706]", 2},
        {"ScheduledProcedureStepSequence[ScheduledStationAETitle=CT2|Modality=CT]", 1},
        {"ScheduledProcedureStepSequence[ScheduledStationAETitle=C*|ScheduledProcedureStepStatus=SCHEDULED]",
         1},
        {"PatientName=ROE*|ScheduledProcedureStepSequence[ScheduledStationAETitle=MR?]", 1},
        {"PatientName=ロウ^ジェーン|SpecificCharacterSet=ISO_IR 192", 1},
        {"PatientName=*E*|ScheduledProcedureStepSequence[Modality=]", 4},
        {"PatientID=P?|AccessionNumber=A*", 2},
        {"PatientName=D*|PatientID=P1|ScheduledProcedureStepSequence[ScheduledProcedureStepID=S1]", 1},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartTime=1759]", 1},
        {"ScheduledProcedureStepSequence[Modality=CR\\US]", 2},
        {"StudyInstanceUID=1.2.1\\1.2.9", 1},
    };
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_clear(store, NULL, &d), MWL_OK);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        int rc = mwl_store_put_item(store, wlt_ds(&arena, items[i]), "multi", NULL, NULL, &d);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK)
            fprintf(stderr, "  item %zu: %s\n", i, d.msg);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_query *q;
        CHECK_EQ_INT(mwl_query_parse(wlt_ds(&arena, cases[i].identifier), &arena, &q, &d), MWL_OK);
        size_t matches, candidates;
        count_matches_and_candidates(q, NULL, &matches, &candidates);
        CHECK_EQ_INT(matches, cases[i].matches);
        CHECK_EQ_INT(candidates, matches);
        if (matches != cases[i].matches || candidates != matches)
            fprintf(stderr, "  case %zu (%s): %zu matches, %zu candidates\n", i, cases[i].identifier, matches,
                    candidates);
    }
    /* A calling-AE constraint (mwl_query_constrain) narrows too. */
    mwl_query *q;
    CHECK_EQ_INT(mwl_query_parse(wlt_ds(&arena, "PatientName="), &arena, &q, &d), MWL_OK);
    const uint32_t aet_path[2] = {MWL_TAG_ScheduledProcedureStepSequence, MWL_TAG_ScheduledStationAETitle};
    CHECK_EQ_INT(mwl_query_constrain(q, aet_path, 2, "CT2", &d), MWL_OK);
    mwl_filter f;
    mwl_filter_from_query(q, &f);
    CHECK_EQ_INT(f.station_aet.match, MWL_FILTER_EXACT);
    size_t matches, candidates;
    count_matches_and_candidates(q, NULL, &matches, &candidates);
    CHECK_EQ_INT(matches, 1);
    CHECK_EQ_INT(candidates, 1);
    mwl_arena_clear(&arena);
}

/* The filter itself: what each kind of key narrows to. */
static void test_filter_from_query(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_diag d;
    mwl_query *q;
    CHECK_EQ_INT(mwl_query_parse(wlt_ds(&arena, "PatientName=Mül*^H|PatientID=P1\\P2|AccessionNumber=|"
                                                "StudyInstanceUID=1.2.3|ScheduledProcedureStepSequence["
                                                "Modality=C?|ScheduledProcedureStepStartDate=20240101-|"
                                                "ScheduledStationAETitle=*]|SpecificCharacterSet=ISO_IR 192"),
                                 &arena, &q, &d),
                 MWL_OK);
    mwl_filter f;
    mwl_filter_from_query(q, &f);
    CHECK_EQ_INT(f.patient_name.match, MWL_FILTER_PREFIX);
    CHECK_EQ_STR(f.patient_name.value, "mul");        /* index form: folded as the widest match option */
    CHECK_EQ_INT(f.patient_id.match, MWL_FILTER_ANY); /* two values: any may match */
    CHECK_EQ_INT(f.accession.match, MWL_FILTER_ANY);
    CHECK_EQ_INT(f.study_uid.match, MWL_FILTER_EXACT);
    CHECK_EQ_STR(f.study_uid.value, "1.2.3");
    CHECK_EQ_INT(f.modality.match, MWL_FILTER_PREFIX);
    CHECK_EQ_STR(f.modality.value, "C");
    CHECK_EQ_INT(f.station_aet.match, MWL_FILTER_ANY);
    CHECK_EQ_STR(f.date_lo, "20240101");
    CHECK(f.date_hi == NULL);
    CHECK(!mwl_filter_is_empty(&f));
    mwl_filter_init(&f);
    CHECK(mwl_filter_is_empty(&f));
    f.modality = (mwl_filter_cond){MWL_FILTER_PREFIX, ""}; /* an empty prefix is no condition */
    CHECK(mwl_filter_is_empty(&f));
    mwl_arena_clear(&arena);
}

int main(void)
{
    if (!mkdtemp(db_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/narrow.db", db_dir);
    mwl_diag d;
    if (mwl_store_open(path, NULL, &store, &d) != MWL_OK) {
        fprintf(stderr, "open: %s\n", d.msg);
        return 1;
    }
    RUN_TEST(test_vectors);
    RUN_TEST(test_multi_key);
    RUN_TEST(test_filter_from_query);
    mwl_store_free(store);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return check_report("store_narrow_test");
}
