/* Fuzz target: the input is a C-FIND identifier in Implicit VR Little Endian
 * (the default DIMSE transfer syntax). Decode it, parse it into a worklist
 * query, constrain the Scheduled Station AE Title as an SCP filtering on
 * the calling AE would, match it against a few fixed worklist items (every
 * SPS expansion, both PN options) and build and encode each response.
 * Invariants checked (abort on failure): a parse failure maps to A900, A700
 * or Cxxx with the offending tag set; a response contains no key that was
 * not requested except (0008,0005), (0008,0201) and (0040,A390); the
 * expanded SPS Sequence of a response holds at most one item; and the
 * store's narrowing is a superset of matching (worklist.h): the items are
 * also stored, once, in an in-memory SQLite store, and every SPS row the
 * matcher takes is among the rows the query's filter
 * (mwl_filter_from_query) selects there. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"
#include "store/store.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ITEMS[] = {
    "SpecificCharacterSet=ISO_IR 100|PatientName=M\xDCLLER^HANS|PatientID=P1|PatientBirthDate=19700101|"
    "PatientSex=M|AccessionNumber=A1|StudyInstanceUID=1.2.3.4|RequestedProcedureID=RP1|"
    "RequestedProcedureDescription=CT HEAD|TimezoneOffsetFromUTC=+0100|PatientWeight=70.5|PregnancyStatus=4|"
    "MedicalAlerts=LATEX\\IODINE|OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X][PatientID=B2]|"
    "ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=CT1\\CT2|"
    "ScheduledProcedureStepStartDate=20240105|ScheduledProcedureStepStartTime=0930|"
    "ScheduledPerformingPhysicianName=DR^WHO|ScheduledProcedureStepID=S1|ScheduledProtocolCodeSequence["
    "CodeValue=P1|CodingSchemeDesignator=99L|CodeMeaning=Head]][Modality=MR|ScheduledStationAETitle=MR1|"
    "ScheduledProcedureStepStartDate=20240106|ScheduledProcedureStepStartTime=1400|ScheduledProcedureStepID="
    "S2]",
    "SpecificCharacterSet=\\ISO 2022 IR "
    "87|PatientName=Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@"
    "\x1b(B^\x1b$B$?$m$&\x1b(B|PatientID=J1|ReferencedStudySequence[ReferencedSOPClassUID=1.2.840.10008.3.1."
    "2.3.1|"
    "ReferencedSOPInstanceUID=1.2.3]|ScheduledProcedureStepSequence[Modality=US|ScheduledStationAETitle=US1|"
    "ScheduledProcedureStepStartDate=20240105|ScheduledProcedureStepStartTime=2359]",
    "PatientName=DOE^JOHN|PatientID=|PatientAge=054Y|00091010=ACME",
};

enum { N_ITEMS = sizeof ITEMS / sizeof ITEMS[0], MAX_SPS = 4 };

/* The store, and each stored SPS row of each item as the store holds it
 * (its index's bytes); NULL for rows of an item the store refuses. */
static mwl_store *store;
static mwl_arena store_arena;
static const uint8_t *row_bytes[N_ITEMS][MAX_SPS];
static size_t row_len[N_ITEMS][MAX_SPS];

static void close_store(void)
{
    mwl_store_free(store);
    mwl_arena_clear(&store_arena);
}

static void open_store(void)
{
    mwl_diag diag;
    mwl_arena_init(&store_arena, NULL);
    if (mwl_store_open(":memory:", NULL, &store, &diag) != MWL_OK)
        abort();
    atexit(close_store);
    for (size_t i = 0; i < N_ITEMS; i++) {
        mwl_ds *item = wlt_ds(&store_arena, ITEMS[i]);
        if (mwl_store_put_item(store, item, NULL, NULL, NULL, &diag) != MWL_OK)
            continue; /* e.g. no SPS Sequence: never a candidate */
        size_t n = mwl_expand_count(item);
        if (n > MAX_SPS)
            abort();
        for (size_t x = 0; x < n; x++) {
            mwl_ds *row;
            mwl_sps_index ix;
            if (mwl_expand_item(item, x, &store_arena, &row) != MWL_OK ||
                mwl_sps_index_build(row, mwl_ds_find(row, MWL_TAG_ScheduledProcedureStepSequence)->items[0],
                                    NULL, &store_arena, &ix, &diag) != MWL_OK)
                abort();
            row_bytes[i][x] = ix.dataset;
            row_len[i][x] = ix.dataset_length;
        }
    }
}

/* Which stored rows the query's filter selects: cand[i][x]. */
static void candidates(const mwl_query *q, bool cand[N_ITEMS][MAX_SPS])
{
    memset(cand, 0, sizeof(bool) * N_ITEMS * MAX_SPS);
    mwl_filter f;
    mwl_filter_from_query(q, &f);
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag diag;
    int rc;
    while ((rc = mwl_store_cursor_next(store, &f, &c, &row, &diag)) == MWL_OK) {
        for (size_t i = 0; i < N_ITEMS; i++)
            for (size_t x = 0; x < MAX_SPS; x++)
                if (row_bytes[i][x] && row_len[i][x] == row.length &&
                    memcmp(row_bytes[i][x], row.dataset, row.length) == 0)
                    cand[i][x] = true;
    }
    if (rc != MWL_E_NOTFOUND)
        abort();
    mwl_store_cursor_pause(store);
}

static bool allowed_extra(uint32_t tag)
{
    return tag == MWL_TAG_SpecificCharacterSet || tag == MWL_TAG_TimezoneOffsetFromUTC ||
           tag == MWL_TAG_HL7StructuredDocumentReferenceSequence;
}

/* Every element of `resp` is requested in `req` (or an allowed extra), and
 * so on inside the items of requested sequences that are not "all keys". */
static void check_subset(const mwl_ds *resp, const mwl_ds *req, bool top)
{
    for (size_t i = 0; i < mwl_ds_count(resp); i++) {
        const mwl_elem *e = mwl_ds_at(resp, i);
        const mwl_elem *r = mwl_ds_find(req, e->tag);
        if (!r) {
            if (!allowed_extra(e->tag))
                abort();
            continue;
        }
        if (e->vr != MWL_VR_SQ)
            continue;
        if (top && e->tag == MWL_TAG_ScheduledProcedureStepSequence && e->item_count > 1)
            abort();
        if (r->vr != MWL_VR_SQ || r->item_count == 0)
            continue;
        const mwl_ds *ri = r->items[0];
        size_t keys = mwl_ds_count(ri) - (mwl_ds_find(ri, MWL_TAG_SpecificCharacterSet) != NULL);
        if (keys == 0)
            continue; /* "the whole sequence": every table key may come back */
        for (size_t k = 0; k < e->item_count; k++)
            check_subset(e->items[k], ri, false);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        open_store();
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_elements = 4096;
    mwl_ds *id;
    mwl_diag diag;
    if (mwl_ds_decode(data, size, MWL_TS_IMPLICIT_LE, &arena, &lim, &id, &diag) != MWL_OK) {
        mwl_arena_clear(&arena);
        return 0;
    }
    mwl_query *q;
    int rc = mwl_query_parse(id, &arena, &q, &diag);
    if (rc != MWL_OK) {
        uint16_t st = mwl_query_failure_status(rc);
        if (st != 0xA900 && st != 0xA700 && st != 0xC000)
            abort();
        if (st == 0xA900 && (diag.tag == 0 || diag.msg[0] == '\0'))
            abort();
        mwl_arena_clear(&arena);
        return 0;
    }
    const uint32_t aet[2] = {MWL_TAG_ScheduledProcedureStepSequence, MWL_TAG_ScheduledStationAETitle};
    if (size & 1u && mwl_query_is_universal(q, aet, 2) &&
        mwl_query_constrain(q, aet, 2, "CT1", &diag) != MWL_OK)
        abort();
    bool cand[N_ITEMS][MAX_SPS];
    candidates(q, cand);
    for (int strict = 0; strict < 2; strict++) {
        mwl_match_opts opts;
        mwl_match_opts_init(&opts);
        opts.pn_case_sensitive = strict != 0;
        opts.pn_accent_insensitive = strict == 0;
        mwl_matcher m;
        mwl_matcher_init(&m, &opts, NULL);
        for (size_t i = 0; i < N_ITEMS; i++) {
            mwl_arena items;
            mwl_arena_init(&items, NULL);
            mwl_ds *item = wlt_ds(&items, ITEMS[i]);
            for (size_t x = 0, n = mwl_expand_count(item); x < n; x++) {
                bool hit = false;
                if (mwl_match_dataset(&m, q, item, x, &hit, &diag) != MWL_OK || !hit)
                    continue;
                if (row_bytes[i][x] && !cand[i][x]) {
                    fprintf(stderr, "item %zu SPS %zu matches but the store's filter leaves it out\n", i, x);
                    abort();
                }
                mwl_ds *resp;
                if (mwl_project(&m, q, item, x, &items, &resp, &diag) != MWL_OK)
                    abort();
                check_subset(resp, id, true);
                mwl_wbuf out;
                mwl_wbuf_init(&out, NULL);
                if (mwl_ds_encode(resp, MWL_TS_IMPLICIT_LE, &out) != MWL_OK)
                    abort();
                mwl_wbuf_clear(&out);
            }
            mwl_arena_clear(&items);
        }
        mwl_matcher_clear(&m);
    }
    mwl_arena_clear(&arena);
    return 0;
}
