/* SQLite persistence for worklist items (see store.h and schema.sql). */
#include "store/store.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "worklist/worklist.h"

extern const char mwl_store_schema_sql[]; /* schema.sql, embedded by CMake */

enum { STMT_CACHE = 64 };

struct mwl_store {
    sqlite3 *db;
    sqlite3_stmt *insert_sps;
    sqlite3_stmt *update_sps;
    sqlite3_stmt *lookup_key;
    sqlite3_stmt *delete_stations;
    sqlite3_stmt *insert_station;
    sqlite3_stmt *delete_names;
    sqlite3_stmt *insert_name;
    /* SELECT statements keyed by the filter's shape (which conditions are
     * set and how): a server sees few shapes, so each is prepared once. */
    struct {
        uint32_t shape;
        sqlite3_stmt *stmt;
    } find_cache[STMT_CACHE];
    sqlite3_stmt *cursor; /* the open search, one of find_cache */
    int in_txn;
};

static int store_error(mwl_store *store, mwl_diag *diag, const char *what)
{
    mwl_diag_set(diag, 0, 0, "%s: %s", what, store && store->db ? sqlite3_errmsg(store->db) : "no database");
    return MWL_E_STORE;
}

static int exec_sql(mwl_store *store, const char *sql, mwl_diag *diag)
{
    char *err = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        mwl_diag_set(diag, 0, 0, "%s", err ? err : sqlite3_errmsg(store->db));
        sqlite3_free(err);
        return MWL_E_STORE;
    }
    return MWL_OK;
}

static int prepare(mwl_store *store, const char *sql, sqlite3_stmt **out, mwl_diag *diag)
{
    if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        return store_error(store, diag, "prepare");
    return MWL_OK;
}

/* ---- schema migrations ------------------------------------------------- */

/* schema.sql holds "-- migration N" sections; N counts from 1. The version
 * is read and every pending migration applied inside one IMMEDIATE
 * transaction, so two processes opening a new database at once (serve and
 * import) cannot both apply the same migration. */
static int migrate(mwl_store *store, mwl_diag *diag)
{
    int rc = exec_sql(store, "BEGIN IMMEDIATE", diag);
    if (rc != MWL_OK)
        return rc;
    int version = mwl_store_schema_version(store);
    const char *p = mwl_store_schema_sql;
    int latest = 0;
    const char *marker = "-- migration ";
    while (rc == MWL_OK && (p = strstr(p, marker)) != NULL) {
        int n = 0;
        const char *q = p + strlen(marker);
        while (*q >= '0' && *q <= '9')
            n = n * 10 + (*q++ - '0');
        const char *end = strstr(q, marker);
        size_t len = end ? (size_t)(end - q) : strlen(q);
        latest = n;
        if (n > version) {
            char *sql = sqlite3_mprintf("%.*s; PRAGMA user_version = %d;", (int)len, q, n);
            if (!sql) {
                rc = MWL_E_NOMEM;
                break;
            }
            rc = exec_sql(store, sql, diag);
            sqlite3_free(sql);
        }
        p = q;
    }
    if (rc == MWL_OK && version > latest) {
        mwl_diag_set(diag, 0, 0, "database schema version %d is newer than this mwl (%d)", version, latest);
        rc = MWL_E_UNSUPPORTED;
    }
    if (rc == MWL_OK)
        return exec_sql(store, "COMMIT", diag);
    exec_sql(store, "ROLLBACK", NULL);
    return rc;
}

int mwl_store_schema_version(mwl_store *store)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* ---- open / free ------------------------------------------------------- */

int mwl_store_open(const char *path, const mwl_store_options *opt, mwl_store **out, mwl_diag *diag)
{
    mwl_store_options defaults = {false, 5000, false};
    if (!opt)
        opt = &defaults;
    *out = NULL;
    mwl_store *store = sqlite3_malloc(sizeof *store);
    if (!store)
        return MWL_E_NOMEM;
    memset(store, 0, sizeof *store);
    int flags = opt->read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    flags |= SQLITE_OPEN_NOMUTEX; /* one connection per thread (store.h) */
    if (sqlite3_open_v2(path, &store->db, flags, NULL) != SQLITE_OK) {
        store_error(store, diag, path);
        mwl_store_free(store);
        return MWL_E_STORE;
    }
    sqlite3_extended_result_codes(store->db, 1);
    sqlite3_busy_timeout(store->db, opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000);
    int rc;
    /* WAL: readers (server workers) never block the importer and vice versa.
     * synchronous=NORMAL in WAL keeps every commit atomic and the database
     * consistent after a crash; only the last commits before a power loss
     * may be rolled back. */
    if (!opt->read_only) {
        rc = exec_sql(store, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                      diag);
        if (rc == MWL_OK && opt->bulk)
            rc = exec_sql(store, "PRAGMA cache_size=-262144; PRAGMA wal_autocheckpoint=16384;", diag);
        if (rc == MWL_OK)
            rc = migrate(store, diag);
    } else {
        rc = exec_sql(store, "PRAGMA foreign_keys=ON; PRAGMA query_only=ON;", diag);
        if (rc == MWL_OK && mwl_store_schema_version(store) < 1) {
            mwl_diag_set(diag, 0, 0, "%s: not an mwl database (no schema)", path);
            rc = MWL_E_STORE;
        }
    }
    if (rc == MWL_OK && !opt->read_only) {
        rc = prepare(
            store,
            "INSERT INTO sps(natural_key, station_aet, start_date, start_time, modality, sps_id,"
            " sps_status, patient_id, accession, study_uid, requested_procedure_id,"
            " charset, dataset, source, updated_at, worklist_aet) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?10,"
            "?11,?12,?13,?14,?15,?16,?17)",
            &store->insert_sps, diag);
        if (rc == MWL_OK)
            rc =
                prepare(store,
                        "UPDATE sps SET station_aet=?2, start_date=?3, start_time=?4, modality=?5, sps_id=?6,"
                        " sps_status=?7, patient_id=?8, accession=?10, study_uid=?11,"
                        " requested_procedure_id=?12, charset=?13, dataset=?14, source=?15, updated_at=?16,"
                        " worklist_aet=?17"
                        " WHERE id=?1",
                        &store->update_sps, diag);
        if (rc == MWL_OK)
            rc = prepare(store, "SELECT id FROM sps WHERE natural_key=?1", &store->lookup_key, diag);
        if (rc == MWL_OK)
            rc = prepare(store, "DELETE FROM sps_station WHERE sps=?1", &store->delete_stations, diag);
        if (rc == MWL_OK)
            rc = prepare(store, "INSERT OR IGNORE INTO sps_station(aet, start_date, sps) VALUES (?1,?2,?3)",
                         &store->insert_station, diag);
        if (rc == MWL_OK)
            rc = prepare(store, "DELETE FROM sps_name WHERE sps=?1", &store->delete_names, diag);
        if (rc == MWL_OK)
            rc = prepare(store, "INSERT OR IGNORE INTO sps_name(name, sps) VALUES (?1,?2)",
                         &store->insert_name, diag);
    }
    if (rc != MWL_OK) {
        mwl_store_free(store);
        return rc;
    }
    *out = store;
    return MWL_OK;
}

void mwl_store_free(mwl_store *store)
{
    if (!store)
        return;
    sqlite3_finalize(store->insert_sps);
    sqlite3_finalize(store->update_sps);
    sqlite3_finalize(store->lookup_key);
    sqlite3_finalize(store->delete_stations);
    sqlite3_finalize(store->insert_station);
    sqlite3_finalize(store->delete_names);
    sqlite3_finalize(store->insert_name);
    for (int i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(store->find_cache[i].stmt);
    if (store->db)
        sqlite3_close_v2(store->db);
    sqlite3_free(store);
}

/* ---- transactions ------------------------------------------------------ */

int mwl_store_begin(mwl_store *store, mwl_diag *diag)
{
    /* IMMEDIATE takes the write lock now, so a busy database is reported
     * here rather than half-way through an import. */
    int rc = exec_sql(store, "BEGIN IMMEDIATE", diag);
    if (rc == MWL_OK)
        store->in_txn = 1;
    return rc;
}

int mwl_store_commit(mwl_store *store, mwl_diag *diag)
{
    int rc = exec_sql(store, "COMMIT", diag);
    if (rc == MWL_OK)
        store->in_txn = 0;
    return rc;
}

int mwl_store_rollback(mwl_store *store)
{
    store->in_txn = 0;
    return exec_sql(store, "ROLLBACK", NULL);
}

/* ---- put --------------------------------------------------------------- */

/* One SPS row, fully prepared before anything is written: all that can fail
 * for a reason other than the database happens here. */
typedef struct prepared_row {
    const char *station_aet, *start_date, *start_time, *modality, *sps_id, *sps_status;
    const char *patient_id, *accession, *study_uid, *requested_procedure_id, *charset;
    const char *key;     /* natural key */
    const uint8_t *blob; /* Explicit VR LE encoding of the row's data set */
    size_t blob_len;
    const char *names; /* index form of Patient's Name, groups split by '=' */
    size_t names_len;
    const mwl_elem *aets; /* Scheduled Station AE Title, all values */
} prepared_row;

/* Value `index` of `tag` as trimmed UTF-8 in the arena; NULL when absent/empty. */
static int text_of(const mwl_ds *ds, uint32_t tag, size_t index, mwl_arena *arena, const char **out,
                   mwl_diag *diag)
{
    *out = NULL;
    const mwl_elem *found = mwl_ds_find(ds, tag);
    if (!found || found->length == 0)
        return MWL_OK;
    /* An element coded UN (e.g. by a converter that did not know it) is
     * read with its dictionary VR, as the matcher reads it. */
    mwl_elem e = *found;
    if (e.vr == MWL_VR_UN)
        e.vr = mwl_dict_vr(tag);
    if (!mwl_vr_is_string(e.vr))
        return MWL_OK;
    const char *s;
    int rc = mwl_ds_get_utf8(ds, &e, index, arena, &s, diag);
    if (rc == MWL_E_NOTFOUND)
        return MWL_OK;
    if (rc != MWL_OK)
        return rc;
    *out = s[0] ? s : NULL;
    return MWL_OK;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int prepare_row(const mwl_ds *row_ds, const mwl_ds *sps, const char *worklist_aet, mwl_arena *arena,
                       mwl_wbuf *scratch, prepared_row *r, mwl_diag *diag)
{
    static const struct {
        uint32_t tag;
        bool in_sps;
        size_t offset;
    } columns[] = {
        {MWL_TAG_ScheduledStationAETitle, true, offsetof(prepared_row, station_aet)},
        {MWL_TAG_ScheduledProcedureStepStartDate, true, offsetof(prepared_row, start_date)},
        {MWL_TAG_ScheduledProcedureStepStartTime, true, offsetof(prepared_row, start_time)},
        {MWL_TAG_Modality, true, offsetof(prepared_row, modality)},
        {MWL_TAG_ScheduledProcedureStepID, true, offsetof(prepared_row, sps_id)},
        {MWL_TAG_ScheduledProcedureStepStatus, true, offsetof(prepared_row, sps_status)},
        {MWL_TAG_PatientID, false, offsetof(prepared_row, patient_id)},
        {MWL_TAG_AccessionNumber, false, offsetof(prepared_row, accession)},
        {MWL_TAG_StudyInstanceUID, false, offsetof(prepared_row, study_uid)},
        {MWL_TAG_RequestedProcedureID, false, offsetof(prepared_row, requested_procedure_id)},
    };
    memset(r, 0, sizeof *r);
    int rc = MWL_OK;
    for (size_t i = 0; rc == MWL_OK && i < sizeof columns / sizeof columns[0]; i++)
        rc = text_of(columns[i].in_sps ? sps : row_ds, columns[i].tag, 0, arena,
                     (const char **)((char *)r + columns[i].offset), diag);
    /* The date column is compared as text: store the canonical YYYYMMDD
     * even when the item uses the retired YYYY.MM.DD form. */
    mwl_date date;
    if (rc == MWL_OK && r->start_date &&
        mwl_date_parse(r->start_date, strlen(r->start_date), &date) == MWL_OK) {
        char *canon = mwl_arena_alloc(arena, 9);
        if (!canon)
            return MWL_E_NOMEM;
        mwl_date_format(&date, canon, 9);
        r->start_date = canon;
    }
    const char *name = NULL;
    if (rc == MWL_OK)
        rc = text_of(row_ds, MWL_TAG_PatientName, 0, arena, &name, diag);
    if (rc != MWL_OK)
        return rc;
    const mwl_elem *cs = mwl_ds_find(row_ds, MWL_TAG_SpecificCharacterSet);
    if (cs && cs->length && !(r->charset = mwl_arena_strndup(arena, (const char *)cs->value, cs->length)))
        return MWL_E_NOMEM;
    r->aets = mwl_ds_find(sps, MWL_TAG_ScheduledStationAETitle);

    if (name) {
        scratch->len = 0;
        mwl_pn_index_form(name, strlen(name), true, scratch);
        if (scratch->status != MWL_OK)
            return scratch->status;
        r->names_len = scratch->len;
        if (!(r->names = mwl_arena_memdup(arena, scratch->data, scratch->len)))
            return MWL_E_NOMEM;
    }

    scratch->len = 0;
    rc = mwl_ds_encode(row_ds, MWL_TS_EXPLICIT_LE, scratch);
    if (rc != MWL_OK) {
        mwl_diag_set(diag, 0, 0, "cannot encode the item: %s", mwl_status_str(rc));
        return rc;
    }
    r->blob_len = scratch->len;
    if (!(r->blob = mwl_arena_memdup(arena, scratch->data, scratch->len)))
        return MWL_E_NOMEM;

        /* The SPS's identity: its ID within its Requested Procedure within its
         * study/order. Without an SPS ID the content itself is the identity, so
         * importing the same file twice does not duplicate it. */
        /* Each part is length-prefixed, so no value can fake a separator; the
         * worklist (per called AE title) is part of the identity, so the same
         * item in two AE folders is two rows. */
#define KEY_PART(v) (int)strlen((v) ? (v) : ""), (v) ? (v) : ""
    char *key;
    if (r->sps_id && (r->study_uid || r->accession))
        key = sqlite3_mprintf("sps|%d:%s|%d:%s|%d:%s|%d:%s|%d:%s", KEY_PART(r->study_uid),
                              KEY_PART(r->accession), KEY_PART(r->requested_procedure_id),
                              KEY_PART(r->sps_id), KEY_PART(worklist_aet));
    else
        key = sqlite3_mprintf("content|%016llx|%zu|%d:%s", (unsigned long long)fnv1a(r->blob, r->blob_len),
                              r->blob_len, KEY_PART(worklist_aet));
#undef KEY_PART
    if (!key)
        return MWL_E_NOMEM;
    r->key = mwl_arena_strndup(arena, key, strlen(key));
    sqlite3_free(key);
    return r->key ? MWL_OK : MWL_E_NOMEM;
}

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* Runs a prepared one-shot statement with (text, id) or (id) parameters. */
static int step_once(mwl_store *store, sqlite3_stmt *st, const char *text, int text_len, int64_t id,
                     mwl_diag *diag)
{
    sqlite3_reset(st);
    int col = 1;
    if (text)
        sqlite3_bind_text(st, col++, text, text_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, col, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? MWL_OK : store_error(store, diag, "index");
}

/* Writes a prepared row; every failure here is the database's. */
static int write_row(mwl_store *store, const prepared_row *r, const char *source, const char *worklist_aet,
                     mwl_store_put_stats *stats, mwl_diag *diag)
{
    int64_t existing = -1;
    sqlite3_reset(store->lookup_key);
    sqlite3_bind_text(store->lookup_key, 1, r->key, -1, SQLITE_STATIC);
    int src = sqlite3_step(store->lookup_key);
    if (src == SQLITE_ROW)
        existing = sqlite3_column_int64(store->lookup_key, 0);
    sqlite3_reset(store->lookup_key);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return store_error(store, diag, "lookup");

    sqlite3_stmt *st = existing >= 0 ? store->update_sps : store->insert_sps;
    sqlite3_reset(st);
    if (existing >= 0)
        sqlite3_bind_int64(st, 1, existing);
    else
        sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
    bind_text(st, 2, r->station_aet);
    bind_text(st, 3, r->start_date);
    bind_text(st, 4, r->start_time);
    bind_text(st, 5, r->modality);
    bind_text(st, 6, r->sps_id);
    bind_text(st, 7, r->sps_status);
    bind_text(st, 8, r->patient_id);
    bind_text(st, 10, r->accession);
    bind_text(st, 11, r->study_uid);
    bind_text(st, 12, r->requested_procedure_id);
    bind_text(st, 13, r->charset);
    sqlite3_bind_blob(st, 14, r->blob, (int)r->blob_len, SQLITE_STATIC);
    bind_text(st, 15, source);
    sqlite3_bind_int64(st, 16, (sqlite3_int64)time(NULL));
    bind_text(st, 17, worklist_aet);
    src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE)
        return store_error(store, diag, "store item");
    int64_t id = existing >= 0 ? existing : sqlite3_last_insert_rowid(store->db);

    /* Every Scheduled Station AE Title value and every component group of
     * the Patient's Name gets an index row. */
    int rc = MWL_OK;
    if (existing >= 0) {
        rc = step_once(store, store->delete_stations, NULL, 0, id, diag);
        if (rc == MWL_OK)
            rc = step_once(store, store->delete_names, NULL, 0, id, diag);
    }
    const char *g = r->names;
    size_t left = r->names_len;
    while (rc == MWL_OK && left) {
        const char *eq = memchr(g, '=', left);
        size_t glen = eq ? (size_t)(eq - g) : left;
        if (glen)
            rc = step_once(store, store->insert_name, g, (int)glen, id, diag);
        if (!eq)
            break;
        left -= glen + 1;
        g = eq + 1;
    }
    mwl_elem aets = {0};
    if (r->aets) {
        aets = *r->aets;
        if (aets.vr == MWL_VR_UN)
            aets.vr = MWL_VR_AE; /* read as the matcher does */
    }
    size_t n_aets = r->aets ? mwl_elem_vm(&aets) : 0;
    for (size_t i = 0; rc == MWL_OK && i < n_aets; i++) {
        const char *aet;
        size_t aet_len;
        if (mwl_elem_get_str(&aets, i, &aet, &aet_len) != MWL_OK || aet_len == 0)
            continue;
        sqlite3_reset(store->insert_station);
        sqlite3_bind_text(store->insert_station, 1, aet, (int)aet_len, SQLITE_STATIC);
        bind_text(store->insert_station, 2, r->start_date);
        sqlite3_bind_int64(store->insert_station, 3, id);
        src = sqlite3_step(store->insert_station);
        sqlite3_reset(store->insert_station);
        if (src != SQLITE_DONE)
            rc = store_error(store, diag, "station index");
    }
    if (rc == MWL_OK && stats) {
        if (existing >= 0)
            stats->updated++;
        else
            stats->inserted++;
    }
    return rc;
}

int mwl_store_put_item(mwl_store *store, const mwl_ds *item, const char *source, const char *worklist_aet,
                       mwl_store_put_stats *stats, mwl_diag *diag)
{
    if (!store->insert_sps) {
        mwl_diag_set(diag, 0, 0, "store is read-only");
        return MWL_E_INVALID;
    }
    const mwl_elem *seq = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepSequence);
    if (!seq || seq->vr != MWL_VR_SQ || seq->item_count == 0) {
        mwl_diag_set(diag, 0, MWL_TAG_ScheduledProcedureStepSequence,
                     "no Scheduled Procedure Step Sequence (0040,0100) item");
        return MWL_E_INVALID;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_wbuf scratch;
    mwl_wbuf_init(&scratch, NULL);
    int rc = MWL_OK;
    prepared_row *rows = mwl_arena_alloc(&arena, seq->item_count * sizeof *rows);
    if (!rows)
        rc = MWL_E_NOMEM;
    /* Phase 1: every row built and encoded; nothing written yet. */
    for (size_t i = 0; rc == MWL_OK && i < seq->item_count; i++) {
        /* The row's data set: the item with only SPS i in (0040,0100). */
        mwl_ds *row;
        rc = mwl_ds_new(&arena, NULL, &row);
        for (size_t k = 0; rc == MWL_OK && k < mwl_ds_count(item); k++) {
            const mwl_elem *e = mwl_ds_at(item, k);
            if (e->tag != MWL_TAG_ScheduledProcedureStepSequence)
                rc = mwl_ds_copy_elem(row, e);
        }
        mwl_ds *sps = NULL;
        if (rc == MWL_OK)
            rc = mwl_ds_add_item(row, MWL_TAG_ScheduledProcedureStepSequence, &sps);
        for (size_t k = 0; rc == MWL_OK && k < mwl_ds_count(seq->items[i]); k++)
            rc = mwl_ds_copy_elem(sps, mwl_ds_at(seq->items[i], k));
        if (rc == MWL_OK)
            rc = prepare_row(row, sps, worklist_aet, &arena, &scratch, &rows[i], diag);
    }
    /* Phase 2: the writes; in a transaction of their own when the caller
     * has none, so a failure never leaves half an item. */
    bool own_txn = rc == MWL_OK && sqlite3_get_autocommit(store->db);
    if (own_txn)
        rc = exec_sql(store, "BEGIN IMMEDIATE", diag);
    for (size_t i = 0; rc == MWL_OK && i < seq->item_count; i++)
        rc = write_row(store, &rows[i], source, worklist_aet, stats, diag);
    if (own_txn) {
        if (rc == MWL_OK)
            rc = exec_sql(store, "COMMIT", diag);
        else
            exec_sql(store, "ROLLBACK", NULL);
    }
    mwl_wbuf_clear(&scratch);
    mwl_arena_clear(&arena);
    return rc;
}

/* ---- find -------------------------------------------------------------- */

void mwl_store_filter_init(mwl_store_filter *f)
{
    memset(f, 0, sizeof *f);
}

/* The filter's text conditions, in a fixed order: (column, condition). */
typedef struct cond_ref {
    const char *column;
    const mwl_store_cond *cond;
} cond_ref;

static size_t filter_conds(const mwl_store_filter *f, cond_ref refs[10])
{
    refs[0] = (cond_ref){"s.modality", &f->modality};
    refs[1] = (cond_ref){"s.sps_id", &f->sps_id};
    refs[2] = (cond_ref){"s.sps_status", &f->sps_status};
    refs[3] = (cond_ref){"s.patient_id", &f->patient_id};
    refs[4] = (cond_ref){"n.name", &f->patient_name};
    refs[5] = (cond_ref){"s.accession", &f->accession};
    refs[6] = (cond_ref){"s.study_uid", &f->study_uid};
    refs[7] = (cond_ref){"s.requested_procedure_id", &f->requested_procedure_id};
    refs[8] = (cond_ref){"st.aet", &f->station_aet};
    refs[9] = (cond_ref){"s.worklist_aet", &f->worklist_aet};
    return 10;
}

/* Which conditions take part: 2 bits per text condition, then dates. */
static uint32_t filter_shape(const mwl_store_filter *f, cond_ref refs[10], mwl_store_match used[10])
{
    uint32_t shape = 0;
    size_t n = filter_conds(f, refs);
    for (size_t i = 0; i < n; i++) {
        mwl_store_match m = refs[i].cond->match;
        const char *v = refs[i].cond->value;
        if (!v || (m == MWL_STORE_PREFIX && !v[0]))
            m = MWL_STORE_ANY;
        used[i] = m;
        shape |= (uint32_t)m << (2 * i);
    }
    if (f->date_lo)
        shape |= 1u << 20;
    if (f->date_hi)
        shape |= 1u << 21;
    return shape;
}

int mwl_store_find_begin(mwl_store *store, const mwl_store_filter *filter, mwl_diag *diag)
{
    mwl_store_find_end(store);
    cond_ref refs[10];
    mwl_store_match used[10];
    uint32_t shape = filter_shape(filter, refs, used);
    size_t slot = (shape * 2654435761u) % STMT_CACHE;
    for (size_t probe = 0; probe < STMT_CACHE; probe++, slot = (slot + 1) % STMT_CACHE) {
        if (!store->find_cache[slot].stmt || store->find_cache[slot].shape == shape)
            break;
    }
    sqlite3_stmt *st = store->find_cache[slot].stmt;
    if (st && store->find_cache[slot].shape != shape) {
        sqlite3_finalize(st); /* cache full: evict */
        st = NULL;
        store->find_cache[slot].stmt = NULL;
    }
    if (!st) {
        char sql[2048];
        size_t len = 0;
        len += (size_t)snprintf(sql + len, sizeof sql - len, "SELECT s.id, s.dataset FROM sps s WHERE 1");
        for (size_t i = 0; i < 10; i++) {
            if (used[i] == MWL_STORE_ANY)
                continue;
            int param = (int)i + 1;
            /* Names and station AE titles are multi-row indexes: a
             * sub-select, so an SPS two of whose values match comes once. */
            if (i == 4)
                len += (size_t)snprintf(sql + len, sizeof sql - len,
                                        " AND s.id IN (SELECT sps FROM sps_name n WHERE 1");
            if (i == 8)
                len += (size_t)snprintf(sql + len, sizeof sql - len,
                                        " AND s.id IN (SELECT sps FROM sps_station st WHERE 1%s%s",
                                        filter->date_lo ? " AND st.start_date >= ?40" : "",
                                        filter->date_hi ? " AND st.start_date <= ?41" : "");
            if (used[i] == MWL_STORE_EXACT)
                len += (size_t)snprintf(sql + len, sizeof sql - len, " AND %s = ?%d", refs[i].column, param);
            else /* a range on the index, up to the prefix's bytewise successor */
                len += (size_t)snprintf(sql + len, sizeof sql - len, " AND %s >= ?%d AND %s < ?%d",
                                        refs[i].column, param, refs[i].column, param + 20);
            if (i == 4 || i == 8)
                len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
        }
        if (filter->date_lo)
            len += (size_t)snprintf(sql + len, sizeof sql - len, " AND s.start_date >= ?40");
        if (filter->date_hi)
            len += (size_t)snprintf(sql + len, sizeof sql - len, " AND s.start_date <= ?41");
        snprintf(sql + len, sizeof sql - len, " ORDER BY s.start_date, s.start_time, s.id");
        int rc = prepare(store, sql, &st, diag);
        if (rc != MWL_OK)
            return rc;
        store->find_cache[slot].shape = shape;
        store->find_cache[slot].stmt = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (size_t i = 0; i < 10; i++) {
        if (used[i] == MWL_STORE_ANY)
            continue;
        const char *v = refs[i].cond->value;
        size_t vlen = strlen(v);
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        if (refs[i].cond == &filter->patient_name)
            mwl_pn_index_form(v, vlen, false, &w);
        else
            mwl_wbuf_put(&w, v, vlen);
        /* Upper bound of a prefix range: the prefix's bytewise successor
         * (last byte below FFH incremented, the rest cut), which sorts after
         * every string with that prefix under SQLite's BINARY (memcmp)
         * collation, whatever bytes follow. */
        size_t base = w.len;
        uint8_t *hi = mwl_wbuf_reserve(&w, base ? base : 1);
        if (!hi) {
            mwl_wbuf_clear(&w);
            return MWL_E_NOMEM;
        }
        if (base)
            memcpy(hi, w.data, base); /* reserve may have moved w.data: copy after it */
        w.len += base;
        size_t hi_len = base;
        while (hi_len && w.data[base + hi_len - 1] == 0xFF)
            hi_len--;
        if (hi_len)
            w.data[base + hi_len - 1]++;
        sqlite3_bind_text(st, (int)i + 1, (const char *)w.data, (int)base, SQLITE_TRANSIENT);
        if (used[i] == MWL_STORE_PREFIX) {
            if (hi_len)
                sqlite3_bind_text(st, (int)i + 21, (const char *)w.data + base, (int)hi_len,
                                  SQLITE_TRANSIENT);
            else /* a prefix of FFH bytes only: nothing sorts after it but BLOBs */
                sqlite3_bind_blob(st, (int)i + 21, "", 0, SQLITE_STATIC);
        }
        mwl_wbuf_clear(&w);
    }
    if (filter->date_lo)
        sqlite3_bind_text(st, 40, filter->date_lo, -1, SQLITE_TRANSIENT);
    if (filter->date_hi)
        sqlite3_bind_text(st, 41, filter->date_hi, -1, SQLITE_TRANSIENT);
    store->cursor = st;
    return MWL_OK;
}

int mwl_store_find_next(mwl_store *store, mwl_store_row *row, mwl_diag *diag)
{
    if (!store->cursor)
        return MWL_E_NOTFOUND;
    int rc = sqlite3_step(store->cursor);
    if (rc == SQLITE_DONE) {
        mwl_store_find_end(store);
        return MWL_E_NOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        int status = store_error(store, diag, "find");
        mwl_store_find_end(store);
        return status;
    }
    row->id = sqlite3_column_int64(store->cursor, 0);
    row->dataset = sqlite3_column_blob(store->cursor, 1);
    row->length = (size_t)sqlite3_column_bytes(store->cursor, 1);
    return MWL_OK;
}

void mwl_store_find_end(mwl_store *store)
{
    if (store->cursor) {
        sqlite3_reset(store->cursor);
        store->cursor = NULL;
    }
}

/* ---- remove / count ---------------------------------------------------- */

int mwl_store_remove(mwl_store *store, const mwl_store_filter *filter, size_t *removed, mwl_diag *diag)
{
    cond_ref refs[10];
    mwl_store_match used[10];
    uint32_t shape = filter_shape(filter, refs, used);
    if (shape == 0) {
        mwl_diag_set(diag, 0, 0, "refusing to remove without a condition");
        return MWL_E_INVALID;
    }
    /* Collect ids through the same search, then delete them. */
    int rc = mwl_store_find_begin(store, filter, diag);
    if (rc != MWL_OK)
        return rc;
    sqlite3_stmt *del;
    rc = prepare(store, "DELETE FROM sps WHERE id = ?1", &del, diag);
    if (rc != MWL_OK) {
        mwl_store_find_end(store);
        return rc;
    }
    /* Deleting while stepping the same table is safe in SQLite only for
     * rows already visited; gather ids first to keep it simple and safe. */
    size_t cap = 64, n = 0;
    int64_t *ids = sqlite3_malloc64(cap * sizeof *ids);
    mwl_store_row row;
    while (ids && (rc = mwl_store_find_next(store, &row, diag)) == MWL_OK) {
        if (n == cap) {
            int64_t *more = sqlite3_realloc64(ids, 2 * cap * sizeof *ids);
            if (!more) {
                sqlite3_free(ids);
                ids = NULL;
                break;
            }
            ids = more;
            cap *= 2;
        }
        ids[n++] = row.id;
    }
    mwl_store_find_end(store);
    if (!ids) {
        sqlite3_finalize(del);
        return MWL_E_NOMEM;
    }
    if (rc != MWL_E_NOTFOUND) {
        sqlite3_free(ids);
        sqlite3_finalize(del);
        return rc;
    }
    rc = MWL_OK;
    for (size_t i = 0; i < n && rc == MWL_OK; i++) {
        sqlite3_bind_int64(del, 1, ids[i]);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = store_error(store, diag, "remove");
        sqlite3_reset(del);
    }
    sqlite3_free(ids);
    sqlite3_finalize(del);
    if (rc == MWL_OK && removed)
        *removed = n;
    return rc;
}

int mwl_store_clear(mwl_store *store, size_t *removed, mwl_diag *diag)
{
    int64_t n = 0;
    int rc = mwl_store_count(store, &n, diag);
    if (rc == MWL_OK)
        rc = exec_sql(
            store,
            sqlite3_get_autocommit(store->db)
                ? "BEGIN IMMEDIATE; DELETE FROM sps_station; DELETE FROM sps_name; DELETE FROM sps; COMMIT;"
                : "DELETE FROM sps_station; DELETE FROM sps_name; DELETE FROM sps;",
            diag);
    if (rc != MWL_OK && !sqlite3_get_autocommit(store->db) && !store->in_txn)
        exec_sql(store, "ROLLBACK", NULL);
    if (rc == MWL_OK && removed)
        *removed = (size_t)n;
    return rc;
}

int mwl_store_count(mwl_store *store, int64_t *count, mwl_diag *diag)
{
    sqlite3_stmt *st;
    int rc = prepare(store, "SELECT count(*) FROM sps", &st, diag);
    if (rc != MWL_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
    } else {
        rc = store_error(store, diag, "count");
    }
    sqlite3_finalize(st);
    return rc;
}
