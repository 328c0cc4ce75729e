/* mwl_explain_match: on every vector of tests/vectors/query/match.tsv its
 * verdict is mwl_match_dataset's and a non-match names the key the row
 * constrains; then the phrases people read, sequence matching item by item,
 * and the PN hint computed by rerunning the comparison. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist_int.h"

/* Explains and matches `item` through expansion `x`; checks that the two
 * verdicts agree. */
static bool explain_and_match(mwl_matcher *m, const mwl_query *q, const mwl_ds *item, size_t x,
                              mwl_arena *arena, mwl_explain *ex)
{
    mwl_diag diag;
    bool matched = false;
    CHECK_EQ_INT(mwl_match_dataset(m, q, item, x, &matched, &diag), MWL_OK);
    CHECK_EQ_INT(mwl_explain_match(m, q, item, x, arena, ex, &diag), MWL_OK);
    CHECK_EQ_INT(ex->matched, matched);
    return matched;
}

static const mwl_explain_key *entry(const mwl_explain *ex, const char *path, size_t item)
{
    for (size_t i = 0; i < ex->count; i++) {
        if (!ex->keys[i].is_item && strcmp(ex->keys[i].path, path) == 0 && ex->keys[i].item == item)
            return &ex->keys[i];
    }
    return NULL;
}

/* ---- every row of the matcher's vectors ------------------------------------ */

typedef struct vector_stats {
    int rows, nonmatches;
} vector_stats;

static void run_vector(int line, char **f, void *user)
{
    vector_stats *st = user;
    const char *key = f[1], *options = f[2], *qcs = f[3], *query = f[4], *scs = f[5], *stored = f[6],
               *expect = f[7];
    if (strcmp(expect, "A900") == 0)
        return; /* no query to explain */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *id = wlt_vector_ds(&arena, qcs, key, query);
    mwl_ds *item = wlt_vector_ds(&arena, scs, key, stored);
    mwl_match_opts opts;
    mwl_match_opts_init(&opts);
    opts.pn_case_sensitive = strstr(options, "pn_strict") != NULL;
    opts.pn_accent_insensitive = strstr(options, "accents") != NULL;
    mwl_query *q = NULL;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_query_parse(id, &arena, &q, &diag), MWL_OK);
    if (!q) {
        mwl_arena_clear(&arena);
        return;
    }
    mwl_matcher m;
    mwl_matcher_init(&m, &opts, NULL);
    mwl_explain ex;
    bool matched = explain_and_match(&m, q, item, 0, &arena, &ex);
    st->rows++;
    const mwl_explain_key *k = entry(&ex, key, strchr(key, '>') ? 0 : SIZE_MAX);
    if (!k)
        k = entry(&ex, key, SIZE_MAX); /* inside a sequence that constrains nothing */
    bool ok = k != NULL;
    if (k && !matched) {
        /* The acceptance point: a non-match names the failing key,
         * and it is the key the row's query constrains. */
        st->nonmatches++;
        ok = k->result == MWL_EXPLAIN_NOMATCH && k->reason != MWL_WHY_MATCHED;
        for (size_t i = 0; i < ex.count; i++) {
            const mwl_explain_key *o = &ex.keys[i];
            if (o->result == MWL_EXPLAIN_NOMATCH && !o->is_item &&
                strncmp(key, o->path, strlen(o->path)) != 0)
                ok = false; /* a key the query does not constrain cannot fail */
        }
    } else if (k && strcmp(expect, "ignored") == 0) {
        ok = k->result == MWL_EXPLAIN_NA && k->reason == MWL_WHY_NOT_MATCHED_ON;
    } else if (k && strstr(f[0], "C.2.2.2.3") == f[0]) {
        ok = k->result == MWL_EXPLAIN_NA && k->reason == MWL_WHY_UNIVERSAL;
    } else if (k) {
        ok = k->result != MWL_EXPLAIN_NOMATCH;
    }
    check_count++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "match.tsv:%d %s: \"%s\" vs \"%s\": explain gives %s (%s)\n", line, key, query,
                stored, k ? mwl_explain_result_name(k->result) : "no entry", k ? mwl_explain_phrase(k) : "");
    }
    mwl_matcher_clear(&m);
    mwl_arena_clear(&arena);
}

static void test_vectors(void)
{
    vector_stats st = {0};
    int rows = wlt_match_vectors(run_vector, &st);
    CHECK(rows > 100);
    CHECK(st.rows > 90);
    CHECK(st.nonmatches > 30);
}

/* ---- the phrases of issue 13 ------------------------------------------------ */

typedef struct fixture {
    mwl_arena arena;
    mwl_query *q;
    mwl_ds *item;
    mwl_matcher m;
    mwl_explain ex;
    bool matched;
} fixture;

static void fixture_run(fixture *fx, const char *identifier, const char *item, const mwl_match_opts *opts,
                        size_t x)
{
    mwl_arena_init(&fx->arena, NULL);
    mwl_diag diag;
    fx->item = wlt_ds(&fx->arena, item);
    CHECK_EQ_INT(mwl_query_parse(wlt_ds(&fx->arena, identifier), &fx->arena, &fx->q, &diag), MWL_OK);
    mwl_matcher_init(&fx->m, opts, NULL);
    fx->matched = explain_and_match(&fx->m, fx->q, fx->item, x, &fx->arena, &fx->ex);
}

static void fixture_clear(fixture *fx)
{
    mwl_matcher_clear(&fx->m);
    mwl_arena_clear(&fx->arena);
}

static void test_station_phrase(void)
{
    fixture fx;
    fixture_run(
        &fx, "PatientName=|ScheduledProcedureStepSequence[ScheduledStationAETitle=CT1|Modality=]",
        "PatientName=DOE^JOHN|ScheduledProcedureStepSequence[ScheduledStationAETitle=CT01|Modality=CT]", NULL,
        0);
    CHECK(!fx.matched);
    const mwl_explain_key *k = entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledStationAETitle", 0);
    CHECK(k != NULL);
    if (k) {
        CHECK_EQ_INT(k->result, MWL_EXPLAIN_NOMATCH);
        CHECK_EQ_INT(k->kind, MWL_Q_SINGLE);
        CHECK_EQ_STR(k->query_value, "CT1");
        CHECK_EQ_STR(k->item_value, "CT01");
        CHECK_EQ_STR(mwl_explain_phrase(k), "single value matching is exact");
    }
    /* The return keys constrain nothing. */
    k = entry(&fx.ex, "PatientName", SIZE_MAX);
    CHECK(k && k->result == MWL_EXPLAIN_NA && k->kind == MWL_Q_UNIVERSAL);
    CHECK(k && k->item_value && strcmp(k->item_value, "DOE^JOHN") == 0);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>Modality", 0);
    CHECK(k && k->result == MWL_EXPLAIN_NA);
    /* The sequence fails because its item does. */
    k = entry(&fx.ex, "ScheduledProcedureStepSequence", SIZE_MAX);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH && k->reason == MWL_WHY_NO_ITEM);
    fixture_clear(&fx);
}

static void test_date_phrase(void)
{
    static const char *const queries[] = {
        "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261204]",
        "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261201-20261204]",
    };
    for (size_t i = 0; i < 2; i++) {
        fixture fx;
        fixture_run(&fx, queries[i],
                    "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261205]", NULL, 0);
        CHECK(!fx.matched);
        const mwl_explain_key *k =
            entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledProcedureStepStartDate", 0);
        CHECK(k && k->result == MWL_EXPLAIN_NOMATCH);
        if (k) {
            CHECK_EQ_STR(k->item_value, "20261205");
            CHECK(strncmp(mwl_explain_phrase(k), "outside the range", 17) == 0);
        }
        fixture_clear(&fx);
    }
    /* Date and time together are one range (C.2.2.2.5.4): the time's line
     * points at the date's. */
    fixture fx;
    fixture_run(&fx,
                "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261204-20261205|"
                "ScheduledProcedureStepStartTime=0800-1000]",
                "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261205|"
                "ScheduledProcedureStepStartTime=1100]",
                NULL, 0);
    CHECK(!fx.matched);
    const mwl_explain_key *k =
        entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledProcedureStepStartDate", 0);
    CHECK(k && k->kind == MWL_Q_DATETIME && k->result == MWL_EXPLAIN_NOMATCH);
    CHECK(k && k->query_value && strcmp(k->query_value, "20261204-20261205 0800-1000") == 0);
    CHECK(k && k->item_value && strcmp(k->item_value, "20261205 1100") == 0);
    CHECK(k && strcmp(mwl_explain_phrase(k), "outside the date-time range") == 0);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledProcedureStepStartTime", 0);
    CHECK(k && k->result == MWL_EXPLAIN_NA && k->reason == MWL_WHY_NOT_MATCHED_ON);
    fixture_clear(&fx);
}

static void test_pn_hint(void)
{
    fixture fx;
    char hint[128];
    fixture_run(&fx, "PatientName=MULLER*", "SpecificCharacterSet=ISO_IR 192|PatientName=Müller^Hans", NULL,
                SIZE_MAX);
    CHECK(!fx.matched);
    const mwl_explain_key *k = entry(&fx.ex, "PatientName", SIZE_MAX);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH && k->kind == MWL_Q_WILDCARD && k->pn_checked);
    if (k) {
        CHECK_EQ_STR(k->query_value, "MULLER*");
        CHECK_EQ_STR(k->item_value, "Müller^Hans");
        /* case-insensitive + accent-insensitive only */
        CHECK_EQ_INT(k->pn_matches, 1u << MWL_EXPLAIN_PN_ACCENT_INSENSITIVE);
        CHECK(mwl_explain_pn_hint(k, &fx.ex.opts, hint, sizeof hint));
        CHECK_EQ_STR(hint, "matches only with pn-accent-insensitive");
    }
    fixture_clear(&fx);

    /* With case-sensitive names, the case is what is missing. */
    mwl_match_opts strict;
    mwl_match_opts_init(&strict);
    strict.pn_case_sensitive = true;
    fixture_run(&fx, "PatientName=doe^john", "PatientName=DOE^JOHN", &strict, SIZE_MAX);
    CHECK(!fx.matched);
    k = entry(&fx.ex, "PatientName", SIZE_MAX);
    CHECK(k && mwl_explain_pn_hint(k, &fx.ex.opts, hint, sizeof hint));
    CHECK_EQ_STR(hint, "matches only with pn-case-insensitive");
    fixture_clear(&fx);

    /* Both options at once. */
    fixture_run(&fx, "PatientName=muller", "SpecificCharacterSet=ISO_IR 192|PatientName=MÜLLER", &strict,
                SIZE_MAX);
    k = entry(&fx.ex, "PatientName", SIZE_MAX);
    CHECK(k && mwl_explain_pn_hint(k, &fx.ex.opts, hint, sizeof hint));
    CHECK_EQ_STR(hint, "matches only with pn-case-insensitive and pn-accent-insensitive");
    fixture_clear(&fx);

    /* No option makes another name match: no hint. */
    fixture_run(&fx, "PatientName=SMITH", "PatientName=DOE^JOHN", NULL, SIZE_MAX);
    k = entry(&fx.ex, "PatientName", SIZE_MAX);
    CHECK(k && k->pn_checked && k->pn_matches == 0 &&
          !mwl_explain_pn_hint(k, &fx.ex.opts, hint, sizeof hint));
    CHECK(k && strcmp(mwl_explain_phrase(k), "a different name") == 0);
    fixture_clear(&fx);
}

/* ---- C.2.2.2.6: sequences, item by item -------------------------------------- */

static void test_sequence_items(void)
{
    const char *item = "PatientID=P1|ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=CT1]"
                       "[Modality=US|ScheduledStationAETitle=US3]";
    fixture fx;
    /* Both keys match, but in different SPS items. */
    fixture_run(&fx, "ScheduledProcedureStepSequence[Modality=US|ScheduledStationAETitle=CT1]", item, NULL,
                SIZE_MAX);
    CHECK(!fx.matched);
    const mwl_explain_key *k = entry(&fx.ex, "ScheduledProcedureStepSequence", SIZE_MAX);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH && k->reason == MWL_WHY_NO_ITEM);
    CHECK(k && k->item_value && strcmp(k->item_value, "(2 items)") == 0);
    size_t items = 0;
    for (size_t i = 0; i < fx.ex.count; i++) {
        const mwl_explain_key *e = &fx.ex.keys[i];
        if (e->is_item) {
            CHECK(e->item == items);
            CHECK(e->result == MWL_EXPLAIN_NOMATCH && e->reason == MWL_WHY_ITEM_KEY);
            items++;
        }
    }
    CHECK_EQ_INT(items, 2);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>Modality", 0);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledStationAETitle", 0);
    CHECK(k && k->result == MWL_EXPLAIN_MATCH);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>Modality", 1);
    CHECK(k && k->result == MWL_EXPLAIN_MATCH);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence>ScheduledStationAETitle", 1);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH && k->item_value && strcmp(k->item_value, "US3") == 0);
    fixture_clear(&fx);

    /* Through an expansion only that SPS is looked at. */
    fixture_run(&fx, "ScheduledProcedureStepSequence[Modality=US]", item, NULL, 1);
    CHECK(fx.matched);
    CHECK(entry(&fx.ex, "ScheduledProcedureStepSequence>Modality", 0) == NULL);
    CHECK(entry(&fx.ex, "ScheduledProcedureStepSequence>Modality", 1) != NULL);
    fixture_clear(&fx);

    /* An item without the sequence. */
    fixture_run(&fx, "ScheduledProcedureStepSequence[Modality=US]", "PatientID=P1", NULL, 0);
    k = entry(&fx.ex, "ScheduledProcedureStepSequence", SIZE_MAX);
    CHECK(k && k->result == MWL_EXPLAIN_NOMATCH && k->reason == MWL_WHY_NO_SEQUENCE && !k->item_value);
    fixture_clear(&fx);
}

/* The verdict is the matcher's on every expansion of assorted queries. */
static void test_verdict_equals_matcher(void)
{
    static const char *const ids[] = {
        "PatientID=P1|ScheduledProcedureStepSequence[Modality=CT]",
        "PatientID=P2|ScheduledProcedureStepSequence[Modality=CT]",
        "OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=Y]",
        "OtherPatientIDsSequence[PatientID=*2]",
        "OtherPatientIDsSequence<>",
        "ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[CodeValue=P2]]",
        "ScheduledProcedureStepSequence[Modality=MR|ScheduledProtocolCodeSequence[CodeValue=P2]]",
        "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20240101-|Modality=MR]",
        "AccessionNumber=\"\"|PatientName=D*",
    };
    static const char *const items[] = {
        "PatientID=P1|PatientName=DOE^JANE|OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X]["
        "PatientID="
        "B2|IssuerOfPatientID=Y]|ScheduledProcedureStepSequence[Modality=CT|ScheduledProcedureStepStartDate="
        "20240105|ScheduledProtocolCodeSequence[CodeValue=P1][CodeValue=P2]][Modality=MR|"
        "ScheduledProcedureStepStartDate=20240106]",
        "PatientID=P2|AccessionNumber=A7",
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (size_t j = 0; j < sizeof items / sizeof items[0]; j++) {
            mwl_arena arena;
            mwl_arena_init(&arena, NULL);
            mwl_ds *item = wlt_ds(&arena, items[j]);
            mwl_query *q;
            mwl_diag diag;
            CHECK_EQ_INT(mwl_query_parse(wlt_ds(&arena, ids[i]), &arena, &q, &diag), MWL_OK);
            mwl_matcher m;
            mwl_matcher_init(&m, NULL, NULL);
            mwl_explain ex;
            for (size_t x = 0, n = mwl_expand_count(item); x < n; x++)
                (void)explain_and_match(&m, q, item, x, &arena, &ex);
            (void)explain_and_match(&m, q, item, SIZE_MAX, &arena, &ex);
            mwl_matcher_clear(&m);
            mwl_arena_clear(&arena);
        }
    }
}

int main(void)
{
    RUN_TEST(test_vectors);
    RUN_TEST(test_station_phrase);
    RUN_TEST(test_date_phrase);
    RUN_TEST(test_pn_hint);
    RUN_TEST(test_sequence_items);
    RUN_TEST(test_verdict_equals_matcher);
    return check_report("explain_test");
}
