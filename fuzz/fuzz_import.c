/* Fuzz target for the import path (mwl import, tools/mwl/import.c): the
 * input is a file image, read as mwl import reads a .wl file
 * (mwl_part10_decode: Part 10 or a raw data set), checked
 * (mwl_worklist_check_item), indexed row by row (mwl_expand_item,
 * mwl_sps_index_build) and stored through the importer (mwl_importer_add)
 * into an in-memory SQLite store that lives across runs and is emptied
 * after each. Odd-sized inputs go into a per-called-AE worklist.
 *
 * Invariants checked (abort on failure):
 *   - the checks agree with each other: what passes the strict check passes
 *     the lenient one; a refusal other than missing-key is the same in both
 *     modes; a refusal has a code and a message;
 *   - an item refused by the check is refused by the importer with the same
 *     code, and nothing is stored;
 *   - an item that passed: every row indexes; the importer takes it and
 *     commits it (on_commit names it); the store then holds exactly one
 *     row per distinct natural key, each row's bytes are those its index
 *     encoded (two SPS of one item with one natural key must be the same
 *     bytes, else one silently replaced the other); every SPS with an
 *     identity reads back by its natural key (mwl_store_get) as that row;
 *     storing the item again replaces every row and adds none. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"
#include "store/store.h"
#include "worklist/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond, what)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz_import: %s (line %d)\n", what, __LINE__);                                  \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* Rows per item and bytes of rows per run: an item with thousands of tiny
 * SPS items would copy itself once per SPS; keep each run small and fast. */
enum { MAX_ROWS = 64, MAX_ROW_BYTES = 4 << 20 };

static mwl_store *store;

static void close_store(void)
{
    mwl_store_free(store);
    store = NULL;
}

static void open_store(void)
{
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (mwl_store_open(":memory:", NULL, &store, &diag) != MWL_OK) {
        fprintf(stderr, "fuzz_import: cannot open an in-memory store: %s\n", diag.msg);
        abort();
    }
    atexit(close_store);
}

typedef struct commit_log {
    size_t calls, count;
    bool named; /* the one source is ours */
} commit_log;

static void on_commit(void *user, const char *const *sources, size_t count)
{
    commit_log *log = user;
    log->calls++;
    log->count += count;
    log->named = count == 1 && strcmp(sources[0], "fuzz") == 0;
}

typedef struct stored_row {
    int64_t id;
    const uint8_t *bytes;
    size_t len;
} stored_row;

/* Every row of the store, copied into `arena`. */
static size_t all_rows(mwl_arena *arena, stored_row *out, size_t cap)
{
    mwl_filter f;
    mwl_filter_init(&f);
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag diag;
    size_t n = 0;
    int rc;
    while ((rc = mwl_store_cursor_next(store, &f, &c, &row, &diag)) == MWL_OK) {
        REQUIRE(n < cap, "more rows stored than the item has SPS");
        out[n].id = row.id;
        out[n].len = row.length;
        out[n].bytes = mwl_arena_memdup(arena, row.dataset, row.length);
        REQUIRE(out[n].bytes || !row.length, "out of memory");
        n++;
    }
    REQUIRE(rc == MWL_E_NOTFOUND, "the cursor failed");
    mwl_store_cursor_pause(store);
    return n;
}

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_codes(int strict, const mwl_item_problem *ps, int lenient, const mwl_item_problem *pl)
{
    REQUIRE(strict == MWL_OK || strict == MWL_E_INVALID, "strict check: unexpected status");
    REQUIRE(lenient == MWL_OK || lenient == MWL_E_INVALID, "lenient check: unexpected status");
    REQUIRE((strict == MWL_OK) == (ps->code == MWL_ITEM_OK), "strict check: status and code disagree");
    REQUIRE((lenient == MWL_OK) == (pl->code == MWL_ITEM_OK), "lenient check: status and code disagree");
    REQUIRE(strict != MWL_OK || lenient == MWL_OK, "passes the strict check, not the lenient one");
    if (lenient != MWL_OK) {
        REQUIRE(pl->msg[0] != '\0', "a refusal without a message");
        REQUIRE(pl->code != MWL_ITEM_MISSING_KEY, "the lenient check refused a missing key");
        /* The checks run in a fixed order and missing-key comes after these. */
        if (pl->code == MWL_ITEM_NO_SPS_SEQUENCE || pl->code == MWL_ITEM_BAD_CHARSET ||
            pl->code == MWL_ITEM_MULTI_VALUED || pl->code == MWL_ITEM_BAD_VALUE)
            REQUIRE(ps->code == pl->code && ps->tag == pl->tag && ps->sps_index == pl->sps_index,
                    "strict and lenient checks refuse for different reasons");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        open_store();
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_inflated = (size_t)4 << 20;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_part10 file;
    if (mwl_part10_decode(data, size, &arena, &lim, &file, NULL) != MWL_OK) {
        mwl_arena_clear(&arena);
        return 0;
    }
    const mwl_ds *item = file.dataset;
    const char *wl = (size & 1) ? "WL1" : NULL;

    mwl_item_problem ps, pl, pi;
    int strict = mwl_worklist_check_item(item, 0, &ps);
    int lenient = mwl_worklist_check_item(item, MWL_CHECK_LENIENT, &pl);
    check_codes(strict, &ps, lenient, &pl);

    size_t n = mwl_expand_count(item);
    if (lenient == MWL_OK && (n > MAX_ROWS || n * size > MAX_ROW_BYTES)) {
        mwl_arena_clear(&arena);
        return 0;
    }

    /* The importer as mwl import --force sets it up, one item per batch. */
    commit_log log = {0, 0, false};
    mwl_import_options iopt = {
        .batch_size = 1, .check = MWL_CHECK_LENIENT, .on_commit = on_commit, .user = &log};
    mwl_importer *imp;
    REQUIRE(mwl_importer_new(store, &iopt, &imp) == MWL_OK, "mwl_importer_new");
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_importer_add(imp, item, "fuzz", wl, &pi, &diag);
    mwl_importer_free(imp);
    int64_t count = -1;
    REQUIRE(mwl_store_count(store, &count, &diag) == MWL_OK, "mwl_store_count");

    if (lenient != MWL_OK) {
        if (rc != MWL_E_INVALID || pi.code != pl.code || count != 0) {
            fprintf(stderr, "refused by the check (%s), importer said %s (%s)\n", pl.msg, mwl_status_str(rc),
                    diag.msg);
            REQUIRE(false, "the importer disagrees with the check");
        }
        REQUIRE(log.calls == 0, "a refused item was committed");
        mwl_arena_clear(&arena);
        return 0;
    }
    if (rc != MWL_OK) {
        fprintf(stderr, "passed the check, importer said %s: %s\n", mwl_status_str(rc), diag.msg);
        REQUIRE(false, "an item that passed the check was not stored");
    }
    REQUIRE(log.calls == 1 && log.named, "the commit report does not name the item");

    /* Every row as the store should hold it. */
    mwl_sps_index ix[MAX_ROWS];
    size_t keys = 0;
    for (size_t x = 0; x < n; x++) {
        mwl_ds *row;
        REQUIRE(mwl_expand_item(item, x, &arena, &row) == MWL_OK, "mwl_expand_item");
        const mwl_elem *seq = mwl_ds_find(row, MWL_TAG_ScheduledProcedureStepSequence);
        REQUIRE(seq && seq->vr == MWL_VR_SQ && seq->item_count == 1, "an expanded row without one SPS");
        rc = mwl_sps_index_build(row, seq->items[0], wl, &arena, &ix[x], &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "row %zu: %s: %s\n", x, mwl_status_str(rc), diag.msg);
            REQUIRE(false, "a row of an item that passed the check does not index");
        }
        bool first = true;
        for (size_t y = 0; y < x; y++) {
            if (strcmp(ix[y].natural_key, ix[x].natural_key) != 0)
                continue;
            first = false;
            if (!same_bytes(ix[y].dataset, ix[y].dataset_length, ix[x].dataset, ix[x].dataset_length)) {
                fprintf(stderr, "SPS items %zu and %zu: natural key %s\n", y + 1, x + 1, ix[x].natural_key);
                REQUIRE(false, "two different SPS of one item are one stored row (check_item let it pass)");
            }
        }
        keys += first;
    }
    REQUIRE(count == (int64_t)keys, "rows stored != distinct natural keys");

    stored_row rows[MAX_ROWS];
    size_t nrows = all_rows(&arena, rows, MAX_ROWS);
    REQUIRE(nrows == keys, "the cursor does not see every row");
    for (size_t x = 0; x < n; x++) {
        size_t r = 0;
        while (r < nrows && !same_bytes(rows[r].bytes, rows[r].len, ix[x].dataset, ix[x].dataset_length))
            r++;
        REQUIRE(r < nrows, "a row is not stored as its index encoded it");
        if (strncmp(ix[x].natural_key, "sps|", 4) != 0)
            continue; /* content is its identity: no reference reaches it */
        mwl_sps_ref ref = {ix[x].study_uid, ix[x].accession, ix[x].sps_id, ix[x].requested_procedure_id, wl};
        mwl_ds *got;
        int64_t id = -1;
        rc = mwl_store_get(store, &ref, &arena, &got, &id, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "SPS %zu, key %s: %s: %s\n", x + 1, ix[x].natural_key, mwl_status_str(rc),
                    diag.msg);
            REQUIRE(false, "a stored SPS does not read back by its natural key");
        }
        REQUIRE(id == rows[r].id, "the natural key reads back another row");
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        REQUIRE(mwl_ds_encode(got, MWL_TS_EXPLICIT_LE, &w) == MWL_OK, "a row read back does not encode");
        REQUIRE(same_bytes(w.data, w.len, ix[x].dataset, ix[x].dataset_length),
                "a row read back is not the row stored");
        mwl_wbuf_clear(&w);
    }

    /* Stored again (outside a batch, as a put): the same rows, replaced. */
    mwl_store_put_stats st = {0, 0};
    rc = mwl_store_put_item(store, item, "again", wl, &st, &diag);
    REQUIRE(rc == MWL_OK, "the item does not store a second time");
    REQUIRE(st.inserted == 0 && st.updated == n, "storing again added rows");
    REQUIRE(mwl_store_count(store, &count, &diag) == MWL_OK && count == (int64_t)keys,
            "storing again changed the row count");

    size_t removed = 0;
    REQUIRE(mwl_store_clear(store, &removed, &diag) == MWL_OK && removed == keys, "mwl_store_clear");
    mwl_arena_clear(&arena);
    return 0;
}
