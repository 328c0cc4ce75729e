/* Response identifiers (PS3.4 K.4.1.1.3.2, K.2.2.1.2, C.2.2.2.6) and one
 * response per Scheduled Procedure Step (K.6.1.2.1). */
#include <string.h>

#include "check.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist_int.h"

static const uint32_t SPS = MWL_TAG_ScheduledProcedureStepSequence;

typedef struct fixture {
    mwl_arena arena;
    mwl_matcher m;
    mwl_query *q;
    mwl_ds *item;
    mwl_diag diag;
} fixture;

/* Parses `identifier`, checks that `item` matches at `index`, projects. */
static mwl_ds *respond(fixture *f, const char *identifier, const char *item, size_t index)
{
    mwl_arena_init(&f->arena, NULL);
    mwl_matcher_init(&f->m, NULL, NULL);
    f->item = wlt_ds(&f->arena, item);
    mwl_ds *resp = NULL;
    if (mwl_query_parse(wlt_ds(&f->arena, identifier), &f->arena, &f->q, &f->diag) != MWL_OK) {
        fprintf(stderr, "  parse: %s\n", f->diag.msg);
        CHECK(false);
        return NULL;
    }
    bool hit = false;
    CHECK(mwl_match_dataset(&f->m, f->q, f->item, index, &hit, &f->diag) == MWL_OK);
    CHECK(hit);
    CHECK(mwl_project(&f->m, f->q, f->item, index, &f->arena, &resp, &f->diag) == MWL_OK);
    return resp;
}

static void done(fixture *f)
{
    mwl_matcher_clear(&f->m);
    mwl_arena_clear(&f->arena);
}

/* The tags of `ds`, in order, must be exactly `tags` (0-terminated). */
static bool same_tags(const mwl_ds *ds, const uint32_t *tags)
{
    size_t n = 0;
    while (tags[n])
        n++;
    bool ok = ds && mwl_ds_count(ds) == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = mwl_ds_at(ds, i)->tag == tags[i];
    if (!ok && ds) {
        fprintf(stderr, "  got:");
        for (size_t i = 0; i < mwl_ds_count(ds); i++)
            fprintf(stderr, " %08X", (unsigned)mwl_ds_at(ds, i)->tag);
        fprintf(stderr, "\n");
    }
    return ok;
}

static bool has_str(const mwl_ds *ds, uint32_t tag, const char *value)
{
    char buf[256];
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    if (!e)
        return false;
    if (!*value)
        return e->length == 0;
    return mwl_elem_copy_str(e, 0, buf, sizeof buf) == MWL_OK && strcmp(buf, value) == 0;
}

static const mwl_ds *item_of(const mwl_ds *ds, uint32_t tag, size_t index)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    return e && e->vr == MWL_VR_SQ && index < e->item_count ? e->items[index] : NULL;
}

static size_t items(const mwl_ds *ds, uint32_t tag)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    return e && e->vr == MWL_VR_SQ ? e->item_count : SIZE_MAX;
}

static const char *FULL_ITEM =
    "PatientName=DOE^JANE|PatientID=P1|PatientBirthDate=19700101|StudyInstanceUID=1.2.3|"
    "RequestedProcedureID=RP1|RequestedProcedureDescription=CT HEAD|PatientAge=054Y|00091010=ACME|"
    "ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=CT1|ScheduledProcedureStepStartDate="
    "20240105|"
    "ScheduledProcedureStepStartTime=0930|ScheduledProcedureStepDescription=HEAD|ScheduledProcedureStepID="
    "SPS1|"
    "PatientAge=054Y|ScheduledProtocolCodeSequence[CodeValue=P1|CodingSchemeDesignator=99L|CodeMeaning=Head]"
    "]";

static void test_exact_keys(void)
{
    fixture f;
    /* K.4.1.1.3.2: the requested keys and nothing else; type 2 keys the item
     * does not know are present and empty (K.2.2.1.2). */
    mwl_ds *r =
        respond(&f,
                "PatientName=|PatientID=|AccessionNumber=|PatientSex=|ScheduledProcedureStepSequence["
                "Modality=|ScheduledStationAETitle=|ScheduledProcedureStepStartDate=|ScheduledStationName=]",
                FULL_ITEM, 0);
    const uint32_t top[] = {
        MWL_TAG_AccessionNumber, MWL_TAG_PatientName, MWL_TAG_PatientID, MWL_TAG_PatientSex, SPS, 0};
    CHECK(same_tags(r, top));
    CHECK(has_str(r, MWL_TAG_PatientName, "DOE^JANE"));
    CHECK(has_str(r, MWL_TAG_AccessionNumber, ""));
    CHECK(has_str(r, MWL_TAG_PatientSex, ""));
    CHECK_EQ_INT(mwl_ds_find(r, MWL_TAG_PatientSex)->vr, MWL_VR_CS); /* the table's VR */
    CHECK_EQ_INT(items(r, SPS), 1);
    const uint32_t sps[] = {MWL_TAG_Modality, MWL_TAG_ScheduledStationAETitle,
                            MWL_TAG_ScheduledProcedureStepStartDate, MWL_TAG_ScheduledStationName, 0};
    CHECK(same_tags(item_of(r, SPS, 0), sps));
    CHECK(has_str(item_of(r, SPS, 0), MWL_TAG_ScheduledStationName, ""));
    done(&f);

    /* Only the matching and requested keys, whatever the query matched on. */
    r = respond(&f, "PatientID=P1|ScheduledProcedureStepSequence[Modality=CT]", FULL_ITEM, 0);
    const uint32_t two[] = {MWL_TAG_PatientID, SPS, 0};
    const uint32_t mod[] = {MWL_TAG_Modality, 0};
    CHECK(same_tags(r, two));
    CHECK(same_tags(item_of(r, SPS, 0), mod));
    CHECK(has_str(item_of(r, SPS, 0), MWL_TAG_Modality, "CT"));
    done(&f);
}

static void test_special_keys(void)
{
    fixture f;
    /* Keys outside the model: returned when the item has them, else left
     * out; (0008,0052) never echoed; (0008,0201) always comes along. */
    const char *item = "SpecificCharacterSet=ISO_IR 100|TimezoneOffsetFromUTC=+0100|PatientName=M\xDCLLER|"
                       "PatientAge=054Y|00091010=ACME";
    mwl_ds *r = respond(
        &f, "QueryRetrieveLevel=PATIENT|PatientName=|PatientAge=|PatientWeight=|Occupation=|00091010=", item,
        0);
    const uint32_t want[] = {MWL_TAG_SpecificCharacterSet,
                             MWL_TAG_TimezoneOffsetFromUTC,
                             MWL_TAG(0x0009, 0x1010),
                             MWL_TAG_PatientName,
                             MWL_TAG_PatientAge,
                             MWL_TAG_PatientWeight,
                             0};
    CHECK(same_tags(r, want));
    CHECK(has_str(r, MWL_TAG_SpecificCharacterSet, "ISO_IR 100"));
    CHECK(has_str(r, MWL_TAG_PatientName, "M\xDCLLER")); /* the item's bytes, its character set */
    CHECK(has_str(r, MWL_TAG_TimezoneOffsetFromUTC, "+0100"));
    CHECK(has_str(r, MWL_TAG_PatientWeight, ""));
    CHECK_EQ_INT(mwl_query_pending_status(f.q), 0xFF01);
    done(&f);
    /* Requested (0008,0201) the item lacks: never zero length, so omitted. */
    r = respond(&f, "TimezoneOffsetFromUTC=|PatientName=", "PatientName=X", 0);
    const uint32_t pn[] = {MWL_TAG_PatientName, 0};
    CHECK(same_tags(r, pn));
    done(&f);
    /* A value stored as UN is returned with the model's VR. */
    r = respond(&f, "PatientID=", "PatientID:UN=P1", 0);
    CHECK(r && mwl_ds_find(r, MWL_TAG_PatientID) && mwl_ds_find(r, MWL_TAG_PatientID)->vr == MWL_VR_LO);
    CHECK(has_str(r, MWL_TAG_PatientID, "P1"));
    done(&f);
    /* Item-level (0008,0005) follows the item it belongs to. */
    r = respond(
        &f, "ScheduledProcedureStepSequence[ScheduledPerformingPhysicianName=]",
        "ScheduledProcedureStepSequence[SpecificCharacterSet=ISO_IR 100|ScheduledPerformingPhysicianName=D"
        "\xD6RR]",
        0);
    CHECK(has_str(item_of(r, SPS, 0), MWL_TAG_SpecificCharacterSet, "ISO_IR 100"));
    CHECK(mwl_ds_find(r, MWL_TAG_SpecificCharacterSet) == NULL);
    done(&f);
}

static void test_whole_sequence(void)
{
    /* K.2.2.1.2 note 4: a zero-length sequence or one empty item asks for the
     * sequence's keys: types 1 and 2 always, 1C, 2C and 3 when present;
     * attributes outside the table are not part of it. */
    const char *requests[] = {"ScheduledProcedureStepSequence<>", "ScheduledProcedureStepSequence[]"};
    for (int i = 0; i < 2; i++) {
        fixture f;
        mwl_ds *r = respond(&f, requests[i], FULL_ITEM, 0);
        const uint32_t top[] = {SPS, 0};
        CHECK(same_tags(r, top));
        const mwl_ds *s = item_of(r, SPS, 0);
        const uint32_t want[] = {MWL_TAG_Modality,
                                 MWL_TAG_ScheduledStationAETitle,
                                 MWL_TAG_ScheduledProcedureStepStartDate,
                                 MWL_TAG_ScheduledProcedureStepStartTime,
                                 MWL_TAG_ScheduledPerformingPhysicianName, /* type 2, empty */
                                 MWL_TAG_ScheduledProcedureStepDescription,
                                 MWL_TAG_ScheduledProtocolCodeSequence,
                                 MWL_TAG_ScheduledProcedureStepID,
                                 MWL_TAG_ScheduledStationName,           /* type 2, empty */
                                 MWL_TAG_ScheduledProcedureStepLocation, /* type 2, empty */
                                 0};
        CHECK(same_tags(s, want));
        CHECK(has_str(s, MWL_TAG_ScheduledPerformingPhysicianName, ""));
        const mwl_ds *code = item_of(s, MWL_TAG_ScheduledProtocolCodeSequence, 0);
        const uint32_t codes[] = {MWL_TAG_CodeValue, MWL_TAG_CodingSchemeDesignator, MWL_TAG_CodeMeaning, 0};
        CHECK(same_tags(code, codes));
        CHECK(has_str(code, MWL_TAG_CodeMeaning, "Head"));
        done(&f);
    }
    /* Type 1 keys are present even when the item lacks them. */
    fixture f;
    mwl_ds *r =
        respond(&f, "ScheduledProcedureStepSequence[]", "ScheduledProcedureStepSequence[Modality=MR]", 0);
    const mwl_ds *s = item_of(r, SPS, 0);
    CHECK(has_str(s, MWL_TAG_Modality, "MR"));
    CHECK(has_str(s, MWL_TAG_ScheduledStationAETitle, ""));
    CHECK(has_str(s, MWL_TAG_ScheduledProcedureStepID, ""));
    CHECK(mwl_ds_find(s, MWL_TAG_ScheduledProtocolCodeSequence) == NULL); /* 1C */
    CHECK(mwl_ds_find(s, MWL_TAG_ScheduledProcedureStepStatus) == NULL);  /* 3 */
    CHECK(mwl_ds_find(s, MWL_TAG_PreMedication) == NULL);                 /* 2C */
    done(&f);
    /* A requested sequence the item lacks is present and empty. */
    r = respond(&f, "ReferencedStudySequence[]|PatientName=", "PatientName=X", 0);
    CHECK_EQ_INT(items(r, MWL_TAG_ReferencedStudySequence), 0);
    done(&f);
}

static void test_sequence_items(void)
{
    const char *item =
        "PatientID=P1|OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X|TypeOfPatientID=TEXT]"
        "[PatientID=B2|IssuerOfPatientID=Y|TypeOfPatientID=TEXT]";
    fixture f;
    /* C.2.2.2.6: the matching items, with only the requested attributes. */
    mwl_ds *r = respond(&f, "OtherPatientIDsSequence[PatientID=B*|IssuerOfPatientID=]", item, 0);
    CHECK_EQ_INT(items(r, MWL_TAG_OtherPatientIDsSequence), 1);
    const uint32_t want[] = {MWL_TAG_PatientID, MWL_TAG_IssuerOfPatientID, 0};
    CHECK(same_tags(item_of(r, MWL_TAG_OtherPatientIDsSequence, 0), want));
    CHECK(has_str(item_of(r, MWL_TAG_OtherPatientIDsSequence, 0), MWL_TAG_PatientID, "B2"));
    done(&f);
    /* Universal: every item, requested attributes only. */
    r = respond(&f, "OtherPatientIDsSequence[PatientID=]", item, 0);
    CHECK_EQ_INT(items(r, MWL_TAG_OtherPatientIDsSequence), 2);
    const uint32_t id[] = {MWL_TAG_PatientID, 0};
    CHECK(same_tags(item_of(r, MWL_TAG_OtherPatientIDsSequence, 1), id));
    CHECK(has_str(item_of(r, MWL_TAG_OtherPatientIDsSequence, 1), MWL_TAG_PatientID, "B2"));
    done(&f);
}

static void test_multi_sps(void)
{
    /* K.6.1.2.1: two SPS give two responses, each with exactly one SPS item,
     * and patient data repeated. */
    const char *item = "PatientName=DOE^JANE|AccessionNumber=A7|ScheduledProcedureStepSequence[Modality=CT|"
                       "ScheduledProcedureStepID=S1][Modality=MR|ScheduledProcedureStepID=S2]";
    const char *identifier =
        "PatientName=|ScheduledProcedureStepSequence[Modality=|ScheduledProcedureStepID=]";
    const char *want_id[] = {"S1", "S2"}, *want_mod[] = {"CT", "MR"};
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *it = wlt_ds(&arena, item);
    CHECK_EQ_INT(mwl_expand_count(it), 2);
    for (size_t i = 0; i < 2; i++) {
        fixture f;
        mwl_ds *r = respond(&f, identifier, item, i);
        CHECK_EQ_INT(items(r, SPS), 1);
        CHECK(has_str(item_of(r, SPS, 0), MWL_TAG_ScheduledProcedureStepID, want_id[i]));
        CHECK(has_str(item_of(r, SPS, 0), MWL_TAG_Modality, want_mod[i]));
        CHECK(has_str(r, MWL_TAG_PatientName, "DOE^JANE"));
        done(&f);
        /* mwl_expand_item gives the same single-SPS view as a data set. */
        mwl_ds *one;
        CHECK(mwl_expand_item(it, i, &arena, &one) == MWL_OK);
        CHECK_EQ_INT(items(one, SPS), 1);
        CHECK(has_str(item_of(one, SPS, 0), MWL_TAG_ScheduledProcedureStepID, want_id[i]));
        CHECK(has_str(one, MWL_TAG_AccessionNumber, "A7"));
        CHECK_EQ_INT(mwl_ds_count(one), mwl_ds_count(it));
    }
    mwl_ds *none;
    CHECK_EQ_INT(mwl_expand_item(it, 2, &arena, &none), MWL_E_INVALID);
    /* Matching sees only the expanded SPS. */
    mwl_query *q;
    mwl_diag diag;
    CHECK(mwl_query_parse(wlt_ds(&arena, "ScheduledProcedureStepSequence[Modality=MR]"), &arena, &q, &diag) ==
          MWL_OK);
    mwl_matcher m;
    mwl_matcher_init(&m, NULL, NULL);
    bool hit;
    CHECK(mwl_match_dataset(&m, q, it, 0, &hit, &diag) == MWL_OK && !hit);
    CHECK(mwl_match_dataset(&m, q, it, 1, &hit, &diag) == MWL_OK && hit);
    /* Without expansion: "any SPS", and the response keeps the matching ones. */
    CHECK(mwl_match_dataset(&m, q, it, SIZE_MAX, &hit, &diag) == MWL_OK && hit);
    mwl_ds *all;
    CHECK(mwl_project(&m, q, it, SIZE_MAX, &arena, &all, &diag) == MWL_OK);
    CHECK_EQ_INT(items(all, SPS), 1);
    CHECK(has_str(item_of(all, SPS, 0), MWL_TAG_Modality, "MR"));
    mwl_matcher_clear(&m);
    /* An item without SPS is one candidate. */
    CHECK_EQ_INT(mwl_expand_count(wlt_ds(&arena, "PatientName=X")), 1);
    CHECK_EQ_INT(mwl_expand_count(wlt_ds(&arena, "PatientName=X|ScheduledProcedureStepSequence<>")), 1);
    mwl_arena_clear(&arena);
}

static void test_keys_table(void)
{
    /* PS3.4 K.6-1 (spec §3.8): the required matching keys and their types. */
    static const struct {
        uint32_t parent, tag;
        unsigned matching;
        uint8_t ret;
    } required[] = {
        {SPS, MWL_TAG_ScheduledStationAETitle, MWL_MATCH_SINGLE, MWL_RETURN_1},
        {SPS, MWL_TAG_ScheduledProcedureStepStartDate, MWL_MATCH_SINGLE | MWL_MATCH_RANGE, MWL_RETURN_1},
        {SPS, MWL_TAG_ScheduledProcedureStepStartTime, MWL_MATCH_SINGLE | MWL_MATCH_RANGE, MWL_RETURN_1},
        {SPS, MWL_TAG_Modality, MWL_MATCH_SINGLE, MWL_RETURN_1},
        {SPS, MWL_TAG_ScheduledPerformingPhysicianName, MWL_MATCH_SINGLE | MWL_MATCH_WILDCARD, MWL_RETURN_2},
        {0, MWL_TAG_PatientName, MWL_MATCH_SINGLE | MWL_MATCH_WILDCARD, MWL_RETURN_1},
        {0, MWL_TAG_PatientID, MWL_MATCH_SINGLE, MWL_RETURN_1},
        {0, SPS, MWL_MATCH_SEQUENCE, MWL_RETURN_1},
    };
    size_t r_count = 0;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const mwl_wlkey *parent = required[i].parent ? mwl_wlkey_find(NULL, required[i].parent) : NULL;
        const mwl_wlkey *k = mwl_wlkey_find(parent, required[i].tag);
        CHECK(k != NULL);
        if (!k)
            continue;
        CHECK_EQ_INT(k->key_type, MWL_WLKEY_R);
        CHECK((k->matching & required[i].matching) == required[i].matching);
        CHECK_EQ_INT(k->return_type, required[i].ret);
        CHECK(mwl_wlkey_parent(k) == parent);
    }
    /* Those are all the R keys; children sorted; pairs and expansion. */
    for (size_t i = 0; i < mwl_wlkey_count; i++) {
        const mwl_wlkey *k = &mwl_wlkeys[i];
        r_count += k->key_type == MWL_WLKEY_R;
        const mwl_wlkey *parent = mwl_wlkey_parent(k);
        CHECK(mwl_wlkey_find(parent, k->tag) == k);
        for (size_t c = 1; c < k->child_count; c++)
            CHECK(mwl_wlkeys[k->first_child + c - 1].tag < mwl_wlkeys[k->first_child + c].tag);
        if (k->pair >= 0)
            CHECK(mwl_wlkeys[k->pair].vr == MWL_VR_TM && mwl_wlkeys[k->pair].parent == k->parent);
    }
    CHECK_EQ_INT(r_count, 8);
    CHECK(mwl_wlkey_expand_key() == mwl_wlkey_find(NULL, SPS));
    CHECK(mwl_wlkey_find(mwl_wlkey_find(NULL, SPS), MWL_TAG_ScheduledProcedureStepStartDate)->pair >= 0);
    CHECK(mwl_wlkey_find(NULL, MWL_TAG_PatientAge) == NULL);
    CHECK(mwl_wlkey_find(NULL, MWL_TAG_Modality) == NULL); /* only inside the SPS */
    CHECK_EQ_INT(mwl_wlkey_child_count(NULL), mwl_wlkey_top_count);
    CHECK(mwl_wlkey_child(NULL, mwl_wlkey_top_count) == NULL);
    const mwl_wlkey *pc =
        mwl_wlkey_find(mwl_wlkey_find(mwl_wlkey_find(NULL, SPS), MWL_TAG_ScheduledProtocolCodeSequence),
                       MWL_TAG_ProtocolContextSequence);
    CHECK(pc && pc->matching == 0 && pc->key_type == MWL_WLKEY_NONE);
}

int main(void)
{
    RUN_TEST(test_exact_keys);
    RUN_TEST(test_special_keys);
    RUN_TEST(test_whole_sequence);
    RUN_TEST(test_sequence_items);
    RUN_TEST(test_multi_sps);
    RUN_TEST(test_keys_table);
    return check_report("project_test");
}
