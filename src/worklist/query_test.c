/* Identifier parsing (PS3.4 K.2.2, C.2.2.2): matching type per key, the
 * A900 failures, the FF01 flag, combined date-time pairing and
 * mwl_query_constrain. */
#include <string.h>

#include "check.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist_int.h"

static const uint32_t SPS = MWL_TAG_ScheduledProcedureStepSequence;

typedef struct parsed {
    mwl_arena arena;
    mwl_query *q;
    mwl_diag diag;
    int rc;
} parsed;

static void parse(parsed *p, const char *spec)
{
    mwl_arena_init(&p->arena, NULL);
    p->q = NULL;
    p->rc = mwl_query_parse(wlt_ds(&p->arena, spec), &p->arena, &p->q, &p->diag);
}

static void done(parsed *p)
{
    mwl_arena_clear(&p->arena);
}

static const mwl_qkey *key1(const parsed *p, uint32_t tag)
{
    return p->q ? mwl_query_find(p->q, &tag, 1) : NULL;
}

static const mwl_qkey *key2(const parsed *p, uint32_t outer, uint32_t inner)
{
    uint32_t path[2] = {outer, inner};
    return p->q ? mwl_query_find(p->q, path, 2) : NULL;
}

static void test_kinds(void)
{
    parsed p;
    parse(&p, "PatientName=DOE*|PatientID=123|AccessionNumber=|StudyInstanceUID=1.2.3\\1.2.4|"
              "ReferringPhysicianName=*|PatientBirthDate=19700101-|PatientSex=\"\"|"
              "ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=|"
              "ScheduledProcedureStepStartDate=20240105]");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientName)->kind, MWL_Q_WILDCARD);      /* C.2.2.2.4 */
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientID)->kind, MWL_Q_SINGLE);          /* C.2.2.2.1 */
    CHECK_EQ_INT(key1(&p, MWL_TAG_AccessionNumber)->kind, MWL_Q_UNIVERSAL); /* C.2.2.2.3 */
    CHECK_EQ_INT(key1(&p, MWL_TAG_StudyInstanceUID)->kind, MWL_Q_UID_LIST); /* C.2.2.2.2 */
    CHECK_EQ_INT(key1(&p, MWL_TAG_StudyInstanceUID)->value_count, 2);
    CHECK_EQ_INT(key1(&p, MWL_TAG_ReferringPhysicianName)->kind, MWL_Q_UNIVERSAL); /* "*" */
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientBirthDate)->kind, MWL_Q_RANGE);           /* C.2.2.2.5 */
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientSex)->kind, MWL_Q_EMPTY);                 /* C.2.2.2.7 */
    CHECK_EQ_INT(key1(&p, SPS)->kind, MWL_Q_SEQUENCE);                             /* C.2.2.2.6 */
    CHECK_EQ_INT(key2(&p, SPS, MWL_TAG_Modality)->kind, MWL_Q_SINGLE);
    CHECK_EQ_INT(key2(&p, SPS, MWL_TAG_ScheduledStationAETitle)->kind, MWL_Q_UNIVERSAL);
    CHECK_EQ_INT(key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartDate)->kind, MWL_Q_SINGLE);
    CHECK(key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartTime) == NULL);
    CHECK(mwl_query_is_universal(p.q, (uint32_t[]){SPS, MWL_TAG_ScheduledStationAETitle}, 2));
    CHECK(mwl_query_is_universal(p.q, (uint32_t[]){SPS, MWL_TAG_ScheduledProcedureStepStartTime}, 2));
    CHECK(!mwl_query_is_universal(p.q, (uint32_t[]){SPS, MWL_TAG_Modality}, 2));
    CHECK_EQ_INT(mwl_query_pending_status(p.q), 0xFF00);
    CHECK_EQ_INT(mwl_query_key_count(p.q), 8);
    CHECK(mwl_query_key_at(p.q, 0)->tag < mwl_query_key_at(p.q, 1)->tag);
    CHECK(mwl_query_key_at(p.q, 8) == NULL);
    /* The table row is attached to every key of the model. */
    CHECK(key1(&p, MWL_TAG_PatientName)->key != NULL);
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientName)->key->key_type, MWL_WLKEY_R);
    done(&p);

    /* Values are trimmed, PN values normalised, DA values parsed. */
    parse(&p, "PatientName= DOE ^ JOHN ^^|PatientID=  12 |PatientBirthDate=19700101-19701231 ");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientName)->values[0].text, "DOE^JOHN");
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientID)->values[0].text, "12");
    const mwl_qvalue *v = &key1(&p, MWL_TAG_PatientBirthDate)->values[0];
    CHECK(v->has_lo && v->has_hi && v->lo == 19700101 && v->hi == 19701231);
    done(&p);

    /* Blank and list-of-nothing values are universal. */
    parse(&p, "PatientID=   |AccessionNumber=\\|ScheduledProcedureStepSequence[]");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientID)->kind, MWL_Q_UNIVERSAL);
    CHECK_EQ_INT(key1(&p, MWL_TAG_AccessionNumber)->kind, MWL_Q_UNIVERSAL);
    CHECK_EQ_INT(key1(&p, SPS)->kind, MWL_Q_UNIVERSAL);
    CHECK(key1(&p, SPS)->all_children);
    done(&p);
}

static void test_a900(void)
{
    static const struct {
        const char *spec;
        uint32_t offending;
    } rows[] = {
        /* C.2.2.2.6: a sequence key holds one item. */
        {"ScheduledProcedureStepSequence[Modality=CT][Modality=MR]", MWL_TAG_ScheduledProcedureStepSequence},
        {"ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[CodeValue=1][CodeValue=2]]",
         MWL_TAG_ScheduledProtocolCodeSequence},
        /* A VR other than the model's. */
        {"PatientName:LO=DOE", MWL_TAG_PatientName},
        {"PatientName:SQ[PatientID=1]", MWL_TAG_PatientName},
        {"ScheduledProcedureStepSequence:LO=CT", MWL_TAG_ScheduledProcedureStepSequence},
        {"ScheduledProcedureStepSequence[ScheduledStationAETitle:SH=CT1]", MWL_TAG_ScheduledStationAETitle},
        /* Values invalid for the VR. */
        {"PatientBirthDate=1970-01-01", MWL_TAG_PatientBirthDate},
        {"PatientBirthDate=19700231", MWL_TAG_PatientBirthDate},
        {"PatientBirthDate=1970*", MWL_TAG_PatientBirthDate},
        {"PatientBirthDate=19710101-19700101", MWL_TAG_PatientBirthDate},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartTime=2200-0200]",
         MWL_TAG_ScheduledProcedureStepStartTime},
        /* A time range crossing midnight is valid only as the time half of
         * a combined SPS start date-time range (C.2.2.2.5.4): not with a
         * single date, nor with a combined range that ends before it starts,
         * nor on keys that are never combined, nor as one of several values. */
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20260101|"
         "ScheduledProcedureStepStartTime=2300-0100]",
         MWL_TAG_ScheduledProcedureStepStartTime},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20260101-20260101|"
         "ScheduledProcedureStepStartTime=2300-0100]",
         MWL_TAG_ScheduledProcedureStepStartTime},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20260101-20260102|"
         "ScheduledProcedureStepStartTime=2300-0100\\1000-1100]",
         MWL_TAG_ScheduledProcedureStepStartTime},
        {"StudyDate=20260101-20260102|StudyTime=2300-0100", MWL_TAG_StudyTime},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20260102-20260101|"
         "ScheduledProcedureStepStartTime=2300-0100]",
         MWL_TAG_ScheduledProcedureStepStartDate},
        {"ScheduledProcedureStepSequence[ScheduledProcedureStepStartTime=25]",
         MWL_TAG_ScheduledProcedureStepStartTime},
        {"StudyInstanceUID=1.2.3*", MWL_TAG_StudyInstanceUID},
        {"StudyInstanceUID=1.2.abc", MWL_TAG_StudyInstanceUID},
        {"PatientWeight=heavy", MWL_TAG_PatientWeight},
        {"PregnancyStatus:UN=abc", MWL_TAG_PregnancyStatus}, /* 3 bytes: not a whole US */
        /* Character sets we cannot decode. */
        {"SpecificCharacterSet=ISO_IR 999|PatientName=X", MWL_TAG_SpecificCharacterSet},
        {"SpecificCharacterSet=\\ISO 2022 IR 87|PatientName=X\x1b",
         MWL_TAG_PatientName}, /* truncated escape */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        parsed p;
        parse(&p, rows[i].spec);
        bool ok = p.rc != MWL_OK && mwl_query_failure_status(p.rc) == 0xA900 &&
                  p.diag.tag == rows[i].offending && p.diag.msg[0] != '\0' && strlen(p.diag.msg) <= 64;
        if (!ok)
            fprintf(stderr, "  row %zu: %s: rc %d tag %08X \"%s\"\n", i, rows[i].spec, p.rc,
                    (unsigned)p.diag.tag, p.diag.msg);
        CHECK(ok);
        done(&p);
    }
    CHECK_EQ_INT(mwl_query_failure_status(MWL_E_NOMEM), 0xA700);
    CHECK_EQ_INT(mwl_query_failure_status(MWL_E_LIMIT), 0xA700);
    CHECK_EQ_INT(mwl_query_failure_status(MWL_E_INTERNAL), 0xC000);
}

static void test_ff01(void)
{
    static const struct {
        const char *spec;
        size_t unsupported;
    } rows[] = {
        /* Return keys and supported matching keys: FF00. */
        {"PatientName=|PatientID=1|ScheduledProcedureStepSequence[Modality=CT]", 0},
        /* (0008,0052) is not part of the identifier: ignored, never echoed. */
        {"QueryRetrieveLevel=PATIENT|PatientName=", 0},
        {"SpecificCharacterSet=ISO_IR 100|PatientName=", 0},
        /* Return-only keys requested empty are supported. */
        {"ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[ProtocolContextSequence[ValueType=]]]",
         0},
        {"PertinentDocumentsSequence[DocumentTitle=]", 0},
        {"TimezoneOffsetFromUTC=", 0},
        /* Keys not in our model (K.2.2.1.1.2): FF01. */
        {"PatientAge=", 1},
        {"00091010=ACME|PatientName=", 1},
        {"PatientAge=045Y|EthnicGroup=X|Occupation=", 2},
        /* Values on keys that are not matching keys: ignored, FF01. */
        {"ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[ProtocolContextSequence[ValueType="
         "TEXT]]]",
         1},
        {"PertinentDocumentsSequence[DocumentTitle=Report]", 1}, /* universal matching only */
        {"TimezoneOffsetFromUTC=+0100", 1},
        /* An unknown key inside a known sequence. */
        {"ScheduledProcedureStepSequence[PatientAge=]", 1},
        /* Values outside a key's Enumerated Values: not matched on, FF01. */
        {"PregnancyStatus=0", 1},
        {"PregnancyStatus=4|PatientSex=F", 0},
        {"PregnancyStatus=0|PatientSex=X", 2},
        {"PatientSex=M\\O", 0},
        {"PatientSex=\"\"", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        parsed p;
        parse(&p, rows[i].spec);
        bool ok = p.rc == MWL_OK && mwl_query_unsupported_count(p.q) == rows[i].unsupported &&
                  mwl_query_pending_status(p.q) == (rows[i].unsupported ? 0xFF01 : 0xFF00);
        if (!ok)
            fprintf(stderr, "  row %zu: %s: rc %d unsupported %zu\n", i, rows[i].spec, p.rc,
                    p.q ? mwl_query_unsupported_count(p.q) : 0);
        CHECK(ok);
        done(&p);
    }
    /* dcmjs-dimse's stock worklist request: Pregnancy Status 0 is ignored,
     * and every item matches (issue 10). */
    {
        parsed e;
        parse(&e, "PatientName=|PatientSex=|PregnancyStatus=0|ScheduledProcedureStepSequence["
                  "ScheduledStationAETitle=|Modality=]");
        CHECK_EQ_INT(e.rc, MWL_OK);
        CHECK_EQ_INT(key1(&e, MWL_TAG_PregnancyStatus)->kind, MWL_Q_IGNORED);
        CHECK(key1(&e, MWL_TAG_PregnancyStatus)->unsupported);
        done(&e);
        CHECK_EQ_INT(wlt_count_matches("PregnancyStatus=0", "PatientName=A|PregnancyStatus=1", NULL), 1);
        CHECK_EQ_INT(wlt_count_matches("PregnancyStatus=0", "PatientName=A", NULL), 1);
        CHECK_EQ_INT(wlt_count_matches("PregnancyStatus=1", "PatientName=A", NULL), 0);
    }
    /* The ignored key is not matched, and QueryRetrieveLevel is not a key. */
    parsed p;
    parse(&p, "QueryRetrieveLevel=PATIENT|PatientAge=045Y");
    CHECK(key1(&p, MWL_TAG_QueryRetrieveLevel) == NULL);
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientAge)->kind, MWL_Q_IGNORED);
    CHECK(key1(&p, MWL_TAG_PatientAge)->unsupported);
    done(&p);
}

static void test_vr_un(void)
{
    /* An SCU without the key in its dictionary sends UN: read as the model's VR. */
    parsed p;
    parse(&p, "PatientID:UN=12345 ");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_INT(key1(&p, MWL_TAG_PatientID)->vr, MWL_VR_LO);
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientID)->values[0].text, "12345");
    done(&p);
    CHECK_EQ_INT(wlt_count_matches("PatientID:UN=12345 ", "PatientID=12345", NULL), 1);
}

static void test_pairing(void)
{
    parsed p;
    parse(&p, "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20240105-20240107|"
              "ScheduledProcedureStepStartTime=1000-1800]");
    CHECK_EQ_INT(p.rc, MWL_OK);
    const mwl_qkey *d = key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartDate);
    const mwl_qkey *t = key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartTime);
    CHECK_EQ_INT(d->kind, MWL_Q_DATETIME);
    CHECK(t->paired);
    CHECK(d->dt_has_lo && d->dt_has_hi && d->dt_lo < d->dt_hi);
    done(&p);
    /* Study Date/Time have no pair in the table: separate ranges. */
    parse(&p, "StudyDate=20240105-20240107|StudyTime=1000-1800");
    CHECK_EQ_INT(key1(&p, MWL_TAG_StudyDate)->kind, MWL_Q_RANGE);
    CHECK(!key1(&p, MWL_TAG_StudyTime)->paired);
    done(&p);
    /* Across midnight (Table K.6-1 remark, C.2.2.2.5.4): 1 January 23:00
     * to 2 January 01:00:59.999999, no A900. */
    parse(&p, "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20260101-20260102|"
              "ScheduledProcedureStepStartTime=2300-0100]");
    CHECK_EQ_INT(p.rc, MWL_OK);
    d = key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartDate);
    t = key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartTime);
    CHECK(d && t);
    if (d && t) {
        CHECK_EQ_INT(d->kind, MWL_Q_DATETIME);
        CHECK(t->paired);
        CHECK(d->dt_has_lo && d->dt_has_hi);
        CHECK(d->dt_lo == mwl_wl_datetime_key(20260101, INT64_C(23) * 3600 * 1000000));
        CHECK(d->dt_hi == mwl_wl_datetime_key(20260102, INT64_C(3660) * 1000000 - 1));
    }
    done(&p);
    /* A single date with a time range: not combined. */
    parse(&p, "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20240105|"
              "ScheduledProcedureStepStartTime=1000-1800]");
    CHECK_EQ_INT(key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartDate)->kind, MWL_Q_SINGLE);
    CHECK(!key2(&p, SPS, MWL_TAG_ScheduledProcedureStepStartTime)->paired);
    done(&p);
}

static void test_charset_decoding(void)
{
    /* Values become UTF-8 once, at parse time. */
    parsed p;
    parse(&p, "SpecificCharacterSet=ISO_IR 100|PatientName=M\xFCller*|PatientID=\xE9");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientName)->values[0].text, "Müller*");
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientID)->values[0].text, "é");
    done(&p);
    parse(&p,
          "SpecificCharacterSet=\\ISO 2022 IR 87|PatientName=Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_STR(key1(&p, MWL_TAG_PatientName)->values[0].text, "Yamada^Tarou=山田^太郎");
    done(&p);
    /* A sequence item may carry its own (0008,0005) (PS3.5 6.1.2.3). */
    parse(&p,
          "ScheduledProcedureStepSequence[SpecificCharacterSet=ISO_IR 100|ScheduledPerformingPhysicianName="
          "D\xD6RR]");
    CHECK_EQ_INT(p.rc, MWL_OK);
    CHECK_EQ_STR(key2(&p, SPS, MWL_TAG_ScheduledPerformingPhysicianName)->values[0].text, "DÖRR");
    CHECK(key2(&p, SPS, MWL_TAG_SpecificCharacterSet) == NULL); /* not a key */
    CHECK_EQ_INT(mwl_query_pending_status(p.q), 0xFF00);
    done(&p);
}

static void test_constrain(void)
{
    const uint32_t aet[2] = {SPS, MWL_TAG_ScheduledStationAETitle};
    const char *item_ct =
        "PatientName=A|ScheduledProcedureStepSequence[ScheduledStationAETitle=CT_1|Modality=CT]";
    const char *item_mr =
        "PatientName=A|ScheduledProcedureStepSequence[ScheduledStationAETitle=MR_1|Modality=MR]";
    struct {
        const char *identifier;
        bool universal_before;
    } rows[] = {
        {"PatientName=|ScheduledProcedureStepSequence[ScheduledStationAETitle=|Modality=]", true},
        {"PatientName=|ScheduledProcedureStepSequence[Modality=]", true},
        {"PatientName=", true},
    };
    for (size_t i = 0; i < 3; i++) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_query *q;
        mwl_diag diag;
        CHECK(mwl_query_parse(wlt_ds(&arena, rows[i].identifier), &arena, &q, &diag) == MWL_OK);
        CHECK(mwl_query_is_universal(q, aet, 2) == rows[i].universal_before);
        CHECK_EQ_INT(mwl_query_constrain(q, aet, 2, "CT_1", &diag), MWL_OK);
        CHECK(!mwl_query_is_universal(q, aet, 2));
        mwl_matcher m;
        mwl_matcher_init(&m, NULL, NULL);
        bool hit;
        CHECK(mwl_match_dataset(&m, q, wlt_ds(&arena, item_ct), 0, &hit, &diag) == MWL_OK && hit);
        CHECK(mwl_match_dataset(&m, q, wlt_ds(&arena, item_mr), 0, &hit, &diag) == MWL_OK && !hit);
        /* A key the identifier lacked is for matching only: not returned. */
        mwl_ds *resp;
        CHECK(mwl_project(&m, q, wlt_ds(&arena, item_ct), 0, &arena, &resp, &diag) == MWL_OK);
        const mwl_elem *sps = mwl_ds_find(resp, SPS);
        if (i == 0) {
            CHECK(sps && sps->item_count == 1 && mwl_ds_find(sps->items[0], MWL_TAG_ScheduledStationAETitle));
        } else if (i == 1) {
            CHECK(sps && sps->item_count == 1 &&
                  !mwl_ds_find(sps->items[0], MWL_TAG_ScheduledStationAETitle));
            CHECK(sps && sps->item_count == 1 && mwl_ds_find(sps->items[0], MWL_TAG_Modality));
        } else {
            CHECK(sps == NULL);
            CHECK_EQ_INT(mwl_ds_count(resp), 1);
        }
        mwl_matcher_clear(&m);
        mwl_arena_clear(&arena);
    }
    /* Wild cards and lists follow the identifier rules; bad paths change nothing. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_query *q;
    mwl_diag diag;
    CHECK(mwl_query_parse(wlt_ds(&arena, "PatientName="), &arena, &q, &diag) == MWL_OK);
    CHECK_EQ_INT(mwl_query_constrain(q, aet, 2, "CT*\\MR_1", &diag), MWL_OK);
    CHECK_EQ_INT(mwl_query_find(q, aet, 2)->value_count, 2);
    const uint32_t bad1[2] = {MWL_TAG_PatientName, MWL_TAG_Modality};
    const uint32_t bad2[1] = {MWL_TAG_PatientAge};
    const uint32_t bad3[1] = {SPS};
    const uint32_t date[2] = {SPS, MWL_TAG_ScheduledProcedureStepStartDate};
    CHECK_EQ_INT(mwl_query_constrain(q, bad1, 2, "CT", &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_query_constrain(q, bad2, 1, "1", &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_query_constrain(q, bad3, 1, "x", &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_query_constrain(q, date, 2, "2024*", &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(mwl_query_constrain(q, date, 2, "20240101-", &diag), MWL_OK);
    CHECK_EQ_INT(mwl_query_find(q, date, 2)->kind, MWL_Q_RANGE);
    CHECK_EQ_INT(mwl_query_key_count(q), 2);
    CHECK_EQ_INT(mwl_query_pending_status(q), 0xFF00);
    mwl_arena_clear(&arena);

    /* A constraint that would leave a time range crossing midnight without
     * its date range is refused, and the query stays as it was. */
    mwl_arena_init(&arena, NULL);
    CHECK(mwl_query_parse(wlt_ds(&arena, "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate="
                                         "20260101-20260102|ScheduledProcedureStepStartTime=2300-0100]"),
                          &arena, &q, &diag) == MWL_OK);
    CHECK_EQ_INT(mwl_query_constrain(q, date, 2, "20260101", &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_ScheduledProcedureStepStartTime);
    CHECK_EQ_INT(mwl_query_find(q, date, 2)->kind, MWL_Q_DATETIME);
    CHECK_EQ_INT(mwl_query_constrain(q, date, 2, "20260105-20260106", &diag), MWL_OK);
    CHECK_EQ_INT(mwl_query_find(q, date, 2)->kind, MWL_Q_DATETIME);
    mwl_arena_clear(&arena);
}

static void test_oom(void)
{
    /* Every allocation failure while parsing gives MWL_E_NOMEM, never a crash. */
    const char *spec = "SpecificCharacterSet=ISO_IR 100|PatientName=M\xFCller*|StudyInstanceUID=1.2\\1.3|"
                       "ScheduledProcedureStepSequence[Modality=CT|ScheduledProcedureStepStartDate=20240101-|"
                       "ScheduledProcedureStepStartTime=0800-1000]";
    mwl_arena build;
    mwl_arena_init(&build, NULL);
    mwl_ds *id = wlt_ds(&build, spec);
    size_t calls = 0;
    for (size_t fail_at = 1; fail_at < 200; fail_at++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail_at);
        mwl_arena arena;
        mwl_arena_init(&arena, &f.mem);
        arena.chunk_size = 64; /* many small chunks: many failure points */
        mwl_query *q;
        mwl_diag diag;
        int rc = mwl_query_parse(id, &arena, &q, &diag);
        mwl_arena_clear(&arena);
        if (rc == MWL_OK) {
            calls = fail_at;
            break;
        }
        CHECK_EQ_INT(rc, MWL_E_NOMEM);
    }
    CHECK(calls > 1);
    mwl_arena_clear(&build);
}

int main(void)
{
    RUN_TEST(test_kinds);
    RUN_TEST(test_a900);
    RUN_TEST(test_ff01);
    RUN_TEST(test_vr_un);
    RUN_TEST(test_pairing);
    RUN_TEST(test_charset_decoding);
    RUN_TEST(test_constrain);
    RUN_TEST(test_oom);
    return check_report("query_test");
}
