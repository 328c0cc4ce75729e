/* The SQLite backend of the store (store_int.h, schema.sql): one
 * connection per mwl_store, WAL, migrations keyed on PRAGMA user_version,
 * and a keyset cursor that seeks by (start_date, start_time, id) so that no
 * statement -- and so no read transaction -- has to stay open between two
 * steps. The only file of mwl that includes sqlite3.h. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

extern const char mwl_store_schema_sql[]; /* schema.sql, embedded by CMake */

enum {
    STMT_CACHE = 64,
    N_CONDS = 10,
    /* parameter numbers: condition i is ?(i+1), its prefix bound ?(i+21) */
    P_DATE_LO = 41,
    P_DATE_HI = 42,
    P_POS = 43,     /* ?43 date, ?44 time, ?45 id */
    P_EXCLUDE = 46, /* excluded statuses: ?46 .. ?61 */
};

struct mwl_store_backend {
    const mwl_mem *mem;
    sqlite3 *db;
    bool read_only;
    int busy_timeout_ms;
    bool bulk;
    bool sync_full; /* sqlite.synchronous=full */
    sqlite3_stmt *intake_get, *intake_put, *intake_prune;
    sqlite3_stmt *insert_sps, *update_sps, *update_sps_keep, *lookup_key, *delete_id;
    sqlite3_stmt *delete_stations, *insert_station, *delete_names, *insert_name, *by_id, *count;
    /* SELECT statements keyed by the filter's shape (which conditions are
     * set and how, and whether they seek from a position): a server sees
     * few shapes, so each is prepared once. */
    struct {
        uint32_t shape;
        sqlite3_stmt *stmt;
    } find_cache[STMT_CACHE];
    /* The statement a cursor is stepping, if any: it belongs to the cursor
     * with `open_serial` while that cursor's position is the last row it
     * returned (open_last_id). */
    sqlite3_stmt *open_stmt;
    uint64_t open_serial;
    int64_t open_last_id;
};

static int db_error(mwl_store_backend *b, mwl_diag *diag, const char *what)
{
    mwl_diag_set(diag, 0, 0, "%s: %s", what, b && b->db ? sqlite3_errmsg(b->db) : "no database");
    return MWL_E_STORE;
}

static int exec_sql(mwl_store_backend *b, const char *sql, mwl_diag *diag)
{
    char *err = NULL;
    if (sqlite3_exec(b->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        mwl_diag_set(diag, 0, 0, "%s", err ? err : sqlite3_errmsg(b->db));
        sqlite3_free(err);
        return MWL_E_STORE;
    }
    return MWL_OK;
}

static int prepare(mwl_store_backend *b, const char *sql, sqlite3_stmt **out, mwl_diag *diag)
{
    if (sqlite3_prepare_v3(b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        return db_error(b, diag, "prepare");
    return MWL_OK;
}

/* ---- schema migrations ------------------------------------------------------ */

static int schema_version(mwl_store_backend *b)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(b->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* The number of the last "-- migration N" section of schema.sql. */
static int latest_version(void)
{
    const char *marker = "-- migration ";
    const char *p = mwl_store_schema_sql;
    int latest = 0;
    while ((p = strstr(p, marker)) != NULL) {
        p += strlen(marker);
        int n = 0;
        while (*p >= '0' && *p <= '9')
            n = n * 10 + (*p++ - '0');
        latest = n;
    }
    return latest;
}

/* schema.sql holds "-- migration N" sections; N counts from 1. The version
 * is read and every pending migration applied inside one IMMEDIATE
 * transaction, so two processes opening a new database at once (serve and
 * import) cannot both apply the same migration. */
static int migrate(mwl_store_backend *b, mwl_diag *diag)
{
    int rc = exec_sql(b, "BEGIN IMMEDIATE", diag);
    if (rc != MWL_OK)
        return rc;
    int version = schema_version(b);
    const char *p = mwl_store_schema_sql;
    const char *marker = "-- migration ";
    int latest = latest_version();
    while (rc == MWL_OK && (p = strstr(p, marker)) != NULL) {
        int n = 0;
        const char *q = p + strlen(marker);
        while (*q >= '0' && *q <= '9')
            n = n * 10 + (*q++ - '0');
        const char *end = strstr(q, marker);
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (n > version) {
            char *sql = sqlite3_mprintf("%.*s; PRAGMA user_version = %d;", (int)len, q, n);
            if (!sql) {
                rc = MWL_E_NOMEM;
                break;
            }
            rc = exec_sql(b, sql, diag);
            sqlite3_free(sql);
        }
        p = q;
    }
    if (rc == MWL_OK && version > latest) {
        mwl_diag_set(diag, 0, 0, "database schema version %d is newer than this mwl (%d)", version, latest);
        rc = MWL_E_UNSUPPORTED;
    }
    if (rc == MWL_OK)
        return exec_sql(b, "COMMIT", diag);
    exec_sql(b, "ROLLBACK", NULL);
    return rc;
}

/* ---- open / close ------------------------------------------------------------- */

static int setting(void *user, const char *key, const char *value, mwl_diag *diag)
{
    mwl_store_backend *b = user;
    char *end;
    long v = strtol(value, &end, 10);
    bool number = value[0] && !*end;
    if (strcmp(key, "busy_timeout_ms") == 0 && number && v >= 0 && v <= 3600000) {
        b->busy_timeout_ms = (int)v;
        return MWL_OK;
    }
    if (strcmp(key, "bulk") == 0 && number && (v == 0 || v == 1)) {
        b->bulk = v == 1;
        return MWL_OK;
    }
    if (strcmp(key, "synchronous") == 0 && (strcmp(value, "full") == 0 || strcmp(value, "normal") == 0)) {
        b->sync_full = value[0] == 'f';
        return MWL_OK;
    }
    mwl_diag_set(diag, 0, 0,
                 "unknown store setting sqlite.%s=%s (busy_timeout_ms=N, bulk=0|1, synchronous=full|normal)",
                 key, value);
    return MWL_E_INVALID;
}

static void sq_close(mwl_store_backend *b);

static int prepare_writes(mwl_store_backend *b, mwl_diag *diag)
{
    static const char *const cols =
        "natural_key, station_aet, start_date, start_time, modality, sps_id, sps_status, patient_id,"
        " accession, study_uid, requested_procedure_id, charset, dataset, source, updated_at, worklist_aet,"
        " status_changed_at";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO sps(%s) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?18)", cols);
    int rc = prepare(b, sql, &b->insert_sps, diag);
#define SET_INDEX                                                                                            \
    "natural_key=?1, station_aet=?2, start_date=?3, start_time=?4, modality=?5, sps_id=?6, sps_status=?7,"   \
    " patient_id=?8, accession=?9, study_uid=?10, requested_procedure_id=?11, charset=?12, dataset=?13,"     \
    " updated_at=?15, worklist_aet=?16,"                                                                     \
    " status_changed_at = CASE WHEN sps_status IS ?7 THEN status_changed_at ELSE ?18 END"
    if (rc == MWL_OK)
        rc = prepare(b, "UPDATE sps SET " SET_INDEX ", source=?14 WHERE id=?17", &b->update_sps, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "UPDATE sps SET " SET_INDEX " WHERE id=?17", &b->update_sps_keep, diag);
#undef SET_INDEX
    if (rc == MWL_OK)
        rc = prepare(b, "SELECT id FROM sps WHERE natural_key=?1", &b->lookup_key, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "DELETE FROM sps WHERE id=?1", &b->delete_id, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "DELETE FROM sps_station WHERE sps=?1", &b->delete_stations, diag);
    if (rc == MWL_OK)
        rc = prepare(
            b, "INSERT OR IGNORE INTO sps_station(aet, start_date, start_time, sps) VALUES (?1,?2,?3,?4)",
            &b->insert_station, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "DELETE FROM sps_name WHERE sps=?1", &b->delete_names, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "INSERT OR REPLACE INTO intake(key, reply, recorded_at) VALUES (?1,?2,?3)",
                     &b->intake_put, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "DELETE FROM intake WHERE recorded_at < ?1", &b->intake_prune, diag);
    if (rc == MWL_OK)
        rc = prepare(b,
                     "INSERT OR IGNORE INTO sps_name(name, start_date, start_time, sps) VALUES (?1,?2,?3,?4)",
                     &b->insert_name, diag);
    return rc;
}

/* Process-wide SQLite settings, before its first use: no global memory
 * statistics, whose one mutex every allocation of every connection would
 * take (server workers query concurrently). If the program initialized
 * SQLite itself first, sqlite3_config refuses and nothing changes. */
static void configure_sqlite(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Journal mode, pragmas and migrations of a writable connection. Two
 * processes creating the same new database at once (tests in parallel, a
 * server and an import started together) can find it locked in a way
 * SQLite's busy handler does not wait for (switching to WAL takes an
 * exclusive lock): the set-up is tried again, within busy_timeout. */
static int setup_writable(mwl_store_backend *b, mwl_diag *diag)
{
    uint64_t waited = 0;
    for (;;) {
        int rc = exec_sql(b,
                          b->sync_full
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                " PRAGMA temp_store=MEMORY;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA "
                                "foreign_keys=ON; PRAGMA temp_store=MEMORY;",
                          diag);
        if (rc == MWL_OK && b->bulk)
            rc = exec_sql(b, "PRAGMA cache_size=-262144; PRAGMA wal_autocheckpoint=16384;", diag);
        if (rc == MWL_OK)
            rc = migrate(b, diag);
        int code = sqlite3_errcode(b->db) & 0xff;
        if (rc != MWL_E_STORE || (code != SQLITE_BUSY && code != SQLITE_LOCKED) ||
            waited >= (uint64_t)b->busy_timeout_ms)
            return rc == MWL_OK ? prepare_writes(b, diag) : rc;
        (void)sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL); /* a migration left open */
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        waited += 20;
        mwl_diag_clear(diag);
    }
}

static int sq_open(const char *target, const mwl_store_options *opt, const mwl_mem *mem,
                   mwl_store_backend **out, mwl_diag *diag)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    *out = NULL;
    mwl_store_backend *b = mwl_mem_calloc(mem, 1, sizeof *b);
    if (!b)
        return MWL_E_NOMEM;
    b->mem = mem;
    b->read_only = opt->read_only;
    b->busy_timeout_ms = 5000;
    int rc = mwl_store_settings_each(opt->settings, "sqlite", setting, b, diag);
    if (rc != MWL_OK) {
        mwl_mem_free(mem, b);
        return rc;
    }
    int flags = opt->read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    flags |= SQLITE_OPEN_NOMUTEX; /* one connection per thread (store.h) */
    if (sqlite3_open_v2(target, &b->db, flags, NULL) != SQLITE_OK) {
        db_error(b, diag, target);
        sq_close(b);
        return MWL_E_STORE;
    }
    sqlite3_extended_result_codes(b->db, 1);
    sqlite3_busy_timeout(b->db, b->busy_timeout_ms);
    /* WAL: readers (server workers) never block the importer and vice versa.
     * synchronous=NORMAL in WAL keeps every commit atomic and the database
     * consistent after a crash; only the last commits before a power loss
     * may be rolled back. FULL (sqlite.synchronous=full) syncs the WAL at
     * each commit, for an intake that acknowledges once committed. */
    if (!opt->read_only) {
        rc = setup_writable(b, diag);
    } else {
        rc = exec_sql(b, "PRAGMA foreign_keys=ON; PRAGMA query_only=ON;", diag);
        int version = rc == MWL_OK ? schema_version(b) : 0;
        if (rc == MWL_OK && version < 1) {
            mwl_diag_set(diag, 0, 0, "%.80s: not an mwl database (no schema)", target);
            rc = MWL_E_STORE;
        } else if (rc == MWL_OK && version != latest_version()) {
            /* Migration 3 gave the cursor columns their non-NULL values; an
             * older schema cannot be read correctly without it. */
            mwl_diag_set(diag, 0, 0, "%.60s: database schema version %d, this mwl reads %d%s", target,
                         version, latest_version(),
                         version < latest_version() ? ": open it once for writing (mwl import, rm, serve)"
                                                    : "");
            rc = MWL_E_UNSUPPORTED;
        }
    }
    if (rc == MWL_OK)
        rc = prepare(b, "SELECT id, dataset, worklist_aet FROM sps WHERE id=?1", &b->by_id, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "SELECT count(*) FROM sps", &b->count, diag);
    if (rc == MWL_OK)
        rc = prepare(b, "SELECT reply FROM intake WHERE key=?1", &b->intake_get, diag);
    if (rc != MWL_OK) {
        sq_close(b);
        return rc;
    }
    *out = b;
    return MWL_OK;
}

static void sq_close(mwl_store_backend *b)
{
    if (!b)
        return;
    sqlite3_stmt *stmts[] = {b->insert_sps,  b->update_sps,      b->update_sps_keep, b->lookup_key,
                             b->delete_id,   b->delete_stations, b->insert_station,  b->delete_names,
                             b->insert_name, b->by_id,           b->count,           b->intake_get,
                             b->intake_put,  b->intake_prune};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    for (int i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(b->find_cache[i].stmt);
    if (b->db) {
        if (!sqlite3_get_autocommit(b->db))
            sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(b->db);
    }
    mwl_mem_free(b->mem, b);
}

static int sq_schema_version(mwl_store_backend *b)
{
    return schema_version(b);
}

/* ---- transactions --------------------------------------------------------------- */

static int sq_begin(mwl_store_backend *b, mwl_diag *diag)
{
    /* IMMEDIATE takes the write lock now, so a busy database is reported
     * here rather than half-way through. */
    return exec_sql(b, "BEGIN IMMEDIATE", diag);
}

static int sq_commit(mwl_store_backend *b, mwl_diag *diag)
{
    return exec_sql(b, "COMMIT", diag);
}

static int sq_rollback(mwl_store_backend *b)
{
    return sqlite3_get_autocommit(b->db) ? MWL_OK : exec_sql(b, "ROLLBACK", NULL);
}

static int sq_savepoint(mwl_store_backend *b, mwl_diag *diag)
{
    return exec_sql(b, "SAVEPOINT mwl_op", diag);
}

static int sq_release(mwl_store_backend *b, mwl_diag *diag)
{
    return exec_sql(b, "RELEASE mwl_op", diag);
}

static int sq_rollback_to(mwl_store_backend *b)
{
    return exec_sql(b, "ROLLBACK TO mwl_op; RELEASE mwl_op", NULL);
}

/* ---- rows ------------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

static int step_done(mwl_store_backend *b, sqlite3_stmt *st, const char *what, mwl_diag *diag)
{
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return src == SQLITE_DONE ? MWL_OK : db_error(b, diag, what);
}

static int delete_by(mwl_store_backend *b, sqlite3_stmt *st, int64_t id, mwl_diag *diag)
{
    sqlite3_bind_int64(st, 1, id);
    return step_done(b, st, "delete", diag);
}

/* The row with natural key `key`, or -1. */
static int lookup(mwl_store_backend *b, const char *key, int64_t *id, mwl_diag *diag)
{
    *id = -1;
    sqlite3_bind_text(b->lookup_key, 1, key, -1, SQLITE_STATIC);
    int src = sqlite3_step(b->lookup_key);
    if (src == SQLITE_ROW)
        *id = sqlite3_column_int64(b->lookup_key, 0);
    sqlite3_reset(b->lookup_key);
    return src == SQLITE_ROW || src == SQLITE_DONE ? MWL_OK : db_error(b, diag, "lookup");
}

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes the sps row (insert, or update of `id`) and its index rows. The
 * time of status change moves only when sps_status does (SET_INDEX). */
static int write_row(mwl_store_backend *b, sqlite3_stmt *st, int64_t id, const mwl_sps_index *ix,
                     const char *source, mwl_diag *diag)
{
    bind_text(st, 1, ix->natural_key);
    bind_text(st, 2, ix->station_count ? ix->stations[0] : NULL);
    bind_text(st, 3, ix->start_date);
    bind_text(st, 4, ix->start_time);
    bind_text(st, 5, ix->modality);
    bind_text(st, 6, ix->sps_id);
    bind_text(st, 7, ix->sps_status);
    bind_text(st, 8, ix->patient_id);
    bind_text(st, 9, ix->accession);
    bind_text(st, 10, ix->study_uid);
    bind_text(st, 11, ix->requested_procedure_id);
    bind_text(st, 12, ix->charset);
    sqlite3_bind_blob64(st, 13, ix->dataset, ix->dataset_length, SQLITE_STATIC);
    if (st != b->update_sps_keep)
        bind_text(st, 14, source);
    sqlite3_bind_int64(st, 15, (sqlite3_int64)time(NULL));
    bind_text(st, 16, ix->worklist_aet);
    sqlite3_bind_int64(st, 18, wall_clock_ms());
    if (id >= 0)
        sqlite3_bind_int64(st, 17, id);
    int rc = step_done(b, st, "store item", diag);
    if (rc != MWL_OK)
        return rc;
    if (id < 0) {
        id = sqlite3_last_insert_rowid(b->db);
    } else {
        rc = delete_by(b, b->delete_stations, id, diag);
        if (rc == MWL_OK)
            rc = delete_by(b, b->delete_names, id, diag);
    }
    /* Every Scheduled Station AE Title value and every component group of
     * the Patient's Name gets an index row. */
    for (size_t i = 0; rc == MWL_OK && i < ix->station_count; i++) {
        bind_text(b->insert_station, 1, ix->stations[i]);
        bind_text(b->insert_station, 2, ix->start_date);
        bind_text(b->insert_station, 3, ix->start_time);
        sqlite3_bind_int64(b->insert_station, 4, id);
        rc = step_done(b, b->insert_station, "station index", diag);
    }
    for (size_t i = 0; rc == MWL_OK && i < ix->name_count; i++) {
        bind_text(b->insert_name, 1, ix->names[i]);
        bind_text(b->insert_name, 2, ix->start_date);
        bind_text(b->insert_name, 3, ix->start_time);
        sqlite3_bind_int64(b->insert_name, 4, id);
        rc = step_done(b, b->insert_name, "name index", diag);
    }
    return rc;
}

static int sq_put_row(mwl_store_backend *b, const mwl_sps_index *ix, const char *source, bool *updated,
                      mwl_diag *diag)
{
    int64_t existing;
    int rc = lookup(b, ix->natural_key, &existing, diag);
    if (rc != MWL_OK)
        return rc;
    *updated = existing >= 0;
    return write_row(b, existing >= 0 ? b->update_sps : b->insert_sps, existing, ix, source, diag);
}

static int sq_update_row(mwl_store_backend *b, int64_t id, const mwl_sps_index *ix, mwl_diag *diag)
{
    int64_t other;
    int rc = lookup(b, ix->natural_key, &other, diag);
    if (rc == MWL_OK && other >= 0 && other != id)
        rc = delete_by(b, b->delete_id, other, diag); /* they are the same SPS now */
    if (rc == MWL_OK)
        rc = write_row(b, b->update_sps_keep, id, ix, NULL, diag);
    return rc;
}

static int sq_row_by_id(mwl_store_backend *b, int64_t id, mwl_store_row *row, mwl_diag *diag)
{
    sqlite3_reset(b->by_id);
    sqlite3_bind_int64(b->by_id, 1, id);
    int src = sqlite3_step(b->by_id);
    if (src == SQLITE_DONE) {
        sqlite3_reset(b->by_id);
        return MWL_E_NOTFOUND;
    }
    if (src != SQLITE_ROW) {
        sqlite3_reset(b->by_id);
        return db_error(b, diag, "read row");
    }
    row->id = sqlite3_column_int64(b->by_id, 0);
    row->dataset = sqlite3_column_blob(b->by_id, 1);
    row->length = (size_t)sqlite3_column_bytes(b->by_id, 1);
    row->worklist_aet = (const char *)sqlite3_column_text(b->by_id, 2);
    return MWL_OK; /* reset by the next call or a pause */
}

static int sq_count(mwl_store_backend *b, int64_t *count, mwl_diag *diag)
{
    int src = sqlite3_step(b->count);
    if (src == SQLITE_ROW)
        *count = sqlite3_column_int64(b->count, 0);
    sqlite3_reset(b->count);
    return src == SQLITE_ROW ? MWL_OK : db_error(b, diag, "count");
}

static int sq_clear(mwl_store_backend *b, size_t *removed, mwl_diag *diag)
{
    int64_t n = 0;
    int rc = sq_count(b, &n, diag);
    if (rc == MWL_OK)
        rc = exec_sql(b, "DELETE FROM sps_station; DELETE FROM sps_name; DELETE FROM sps;", diag);
    if (rc == MWL_OK)
        *removed = (size_t)n;
    return rc;
}

static int sq_expire(mwl_store_backend *b, const mwl_store_expiry *e, size_t *removed, mwl_diag *diag)
{
    if (e->status_count > 32) {
        mwl_diag_set(diag, 0, 0, "at most 32 statuses");
        return MWL_E_INVALID;
    }
    char sql[512];
    size_t len = (size_t)snprintf(sql, sizeof sql, "DELETE FROM sps WHERE 1");
    /* rows without a start date have no date to be before */
    if (e->before_date)
        len += (size_t)snprintf(sql + len, sizeof sql - len, " AND start_date <> '' AND start_date < ?1");
    for (size_t i = 0; i < e->status_count; i++)
        len +=
            (size_t)snprintf(sql + len, sizeof sql - len, "%s?%zu", i ? ", " : " AND sps_status IN (", i + 2);
    if (e->status_count)
        len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
    if (e->changed_before_unix_ms)
        snprintf(sql + len, sizeof sql - len, " AND status_changed_at < ?40");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(b, diag, "expire");
    if (e->before_date)
        bind_text(st, 1, e->before_date);
    for (size_t i = 0; i < e->status_count; i++)
        bind_text(st, (int)i + 2, e->statuses[i]);
    if (e->changed_before_unix_ms)
        sqlite3_bind_int64(st, 40, e->changed_before_unix_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? MWL_OK : db_error(b, diag, "expire");
    sqlite3_finalize(st);
    if (rc == MWL_OK)
        *removed = (size_t)sqlite3_changes64(b->db);
    return rc;
}

/* ---- the intake log ------------------------------------------------------------------ */

static int sq_intake_lookup(mwl_store_backend *b, const char *key, mwl_arena *arena, const char **reply,
                            mwl_diag *diag)
{
    bind_text(b->intake_get, 1, key);
    int src = sqlite3_step(b->intake_get);
    int rc = MWL_OK;
    if (src == SQLITE_DONE) {
        rc = MWL_E_NOTFOUND;
    } else if (src != SQLITE_ROW) {
        rc = db_error(b, diag, "intake lookup");
    } else {
        const unsigned char *text = sqlite3_column_text(b->intake_get, 0);
        size_t length = (size_t)sqlite3_column_bytes(b->intake_get, 0);
        if (!text || !(*reply = mwl_arena_strndup(arena, (const char *)text, length)))
            rc = MWL_E_NOMEM;
    }
    /* Reset now: a statement left stepping would keep a read transaction
     * open outside a batch. */
    sqlite3_reset(b->intake_get);
    return rc;
}

static int sq_intake_record(mwl_store_backend *b, const char *key, const char *reply, int64_t now_unix_ms,
                            mwl_diag *diag)
{
    if (b->read_only || !b->intake_put) {
        mwl_diag_set(diag, 0, 0, "store is read-only");
        return MWL_E_INVALID;
    }
    bind_text(b->intake_put, 1, key);
    bind_text(b->intake_put, 2, reply);
    sqlite3_bind_int64(b->intake_put, 3, now_unix_ms);
    return step_done(b, b->intake_put, "intake record", diag);
}

static int sq_intake_prune(mwl_store_backend *b, int64_t before_unix_ms, size_t *removed, mwl_diag *diag)
{
    sqlite3_bind_int64(b->intake_prune, 1, before_unix_ms);
    int rc = step_done(b, b->intake_prune, "intake prune", diag);
    if (rc == MWL_OK)
        *removed = (size_t)sqlite3_changes64(b->db);
    return rc;
}

/* ---- narrowing: filter -> SQL ----------------------------------------------------- */

/* Condition i of the filter: its column on sps (NULL: an index table). */
static const struct {
    size_t offset;
    const char *column;
    bool selective; /* an equality here leaves few rows (its index, then a sort) */
    bool walked;    /* has an index (column, start_date, start_time): walked in order */
} conds[N_CONDS] = {
    {offsetof(mwl_filter, station_aet), NULL, false, false},
    {offsetof(mwl_filter, modality), "modality", false, true},
    {offsetof(mwl_filter, sps_id), "sps_id", true, false},
    {offsetof(mwl_filter, sps_status), "sps_status", false, true},
    {offsetof(mwl_filter, patient_id), "patient_id", true, false},
    {offsetof(mwl_filter, patient_name), NULL, false, false},
    {offsetof(mwl_filter, accession), "accession", true, false},
    {offsetof(mwl_filter, study_uid), "study_uid", true, false},
    {offsetof(mwl_filter, requested_procedure_id), "requested_procedure_id", true, false},
    {offsetof(mwl_filter, worklist_aet), "worklist_aet", false, true},
};
enum { C_STATION = 0, C_NAME = 5 };

static const mwl_filter_cond *cond_of(const mwl_filter *f, size_t i)
{
    return (const mwl_filter_cond *)((const char *)f + conds[i].offset);
}

/* How many statuses the filter excludes (more than the parameters the
 * statement has room for cannot be asked: the caller is refused before). */
static size_t excluded(const mwl_filter *f)
{
    return f->exclude_statuses && f->exclude_status_count <= MWL_FILTER_EXCLUDE_MAX ? f->exclude_status_count
                                                                                    : 0;
}

/* Which conditions take part (2 bits each), the dates, and whether the
 * statement seeks from a position: the statement is a function of this. */
static uint32_t filter_shape(const mwl_filter *f, bool positioned, mwl_filter_match used[N_CONDS])
{
    uint32_t shape = 0;
    for (size_t i = 0; i < N_CONDS; i++) {
        used[i] = mwl_filter_cond_match(cond_of(f, i));
        shape |= (uint32_t)used[i] << (2 * i);
    }
    if (f->date_lo)
        shape |= 1u << 20;
    if (f->date_hi)
        shape |= 1u << 21;
    if (positioned)
        shape |= 1u << 22;
    shape |= (uint32_t)excluded(f) << 23; /* 5 bits: 0..16 */
    return shape;
}

typedef struct sql_buf {
    char text[8192];
    size_t len;
} sql_buf;

static void add(sql_buf *s, const char *fmt, ...) MWL_PRINTF(2, 3);
static void add(sql_buf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->text + s->len, sizeof s->text - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
    if (s->len >= sizeof s->text)
        s->len = sizeof s->text - 1; /* cannot happen: the text is bounded by N_CONDS */
}

/* "= ?n" or ">= ?n AND col < ?n+20" (a range up to the prefix's successor,
 * which an index can seek). */
static void add_test(sql_buf *s, const char *col, mwl_filter_match m, size_t i)
{
    if (m == MWL_FILTER_EXACT)
        add(s, " AND %s = ?%zu", col, i + 1);
    else
        add(s, " AND %s >= ?%zu AND %s < ?%zu", col, i + 1, col, i + 21);
}

/* The FROM and WHERE clauses for `f` (SELECT list and ORDER BY are the
 * caller's); `key` gets the three ordering columns' names.
 *
 * Plans (each checked with EXPLAIN QUERY PLAN in store_cursor_test):
 *   - an equality on a selective key (Patient ID, Accession Number, Study
 *     Instance UID, SPS ID, Requested Procedure ID): that key's index,
 *     the few rows sorted. Every other condition is written so that no
 *     index can serve it ("+col"), or SQLite may walk an ordered index
 *     through most of the table instead;
 *   - else a Scheduled Station AE Title equality, or else an exact name:
 *     that index table (aet|name, start_date, start_time, sps), walked in
 *     order from the position, joined to sps;
 *   - else the sps indexes (modality|sps_status|worklist_aet, start_date,
 *     start_time) or (start_date, start_time), walked in order from the
 *     position -- also the full scan when nothing narrows;
 *   - a name prefix (or a station prefix) is tested per row (EXISTS on
 *     the index table's sps index) of an ordered walk: a short prefix may
 *     select most of the table, and sorting that at every seek would make
 *     a long walk quadratic;
 *   - a prefix on an sps column is tested per row ("+col"): prefixes are
 *     often short, and sorting what a short prefix selects at every seek
 *     would make a long walk quadratic.
 * Seeking from a position (build_select) drops the lower date bound: the
 * position, a row that passed it, implies it, and without it SQLite seeks
 * the index at the position instead of at the first date. */
/* What build_from_where chose. */
typedef struct plan {
    const char *key[3]; /* the ordering columns: date, time, id */
    const char *plus;   /* "+" when the dates must not pick an index */
    /* Every condition is part of the index seek (nothing is tested per
     * row): seeking from a position can be split in exact parts. */
    bool index_only;
} plan;

static void build_from_where(const mwl_filter *f, bool positioned, const mwl_filter_match used[N_CONDS],
                             sql_buf *s, sql_buf *tests, plan *p)
{
    const char **key = p->key;
    bool selective = false;
    for (size_t i = 0; i < N_CONDS; i++) {
        if (used[i] == MWL_FILTER_EXACT && conds[i].selective)
            selective = true;
    }
    /* An exact station or name: its index table, in cursor order, drives
     * (CROSS JOIN keeps SQLite from putting sps outside). */
    size_t join = N_CONDS;
    if (!selective && used[C_STATION] == MWL_FILTER_EXACT)
        join = C_STATION;
    else if (!selective && used[C_NAME] == MWL_FILTER_EXACT)
        join = C_NAME;
    const char *plus = selective ? "+" : ""; /* keep SQLite on the selective index */
    if (join != N_CONDS) {
        add(s, " FROM %s j CROSS JOIN sps s ON s.id = j.sps WHERE j.%s = ?%zu",
            join == C_STATION ? "sps_station" : "sps_name", join == C_STATION ? "aet" : "name", join + 1);
        key[0] = "j.start_date", key[1] = "j.start_time", key[2] = "j.sps";
    } else {
        add(s, " FROM sps s WHERE 1");
        key[0] = "s.start_date", key[1] = "s.start_time", key[2] = "s.id";
    }
    size_t conditions = 0, walked = 0; /* walked: an sps index (col, start_date, start_time) */
    for (size_t i = 0; i < N_CONDS; i++) {
        if (used[i] == MWL_FILTER_ANY || i == join)
            continue;
        conditions++;
        walked += used[i] == MWL_FILTER_EXACT && conds[i].walked;
        char col[64];
        if (i == C_STATION || i == C_NAME) {
            /* tested per row, through the index table's (sps, ...) index */
            add(tests, " AND EXISTS (SELECT 1 FROM %s x WHERE x.sps = s.id",
                i == C_STATION ? "sps_station" : "sps_name");
            add_test(tests, i == C_STATION ? "x.aet" : "x.name", used[i], i);
            add(tests, ")");
        } else {
            bool indexable = used[i] == MWL_FILTER_EXACT && (conds[i].selective || !selective);
            snprintf(col, sizeof col, "%ss.%s", indexable ? "" : "+", conds[i].column);
            /* A condition no index serves is tested per row: in the SELECT
             * list (`hit`), not in WHERE, so that the rows it rejects still
             * come back with their position and a long walk through them
             * can stop at a time budget and go on from there. */
            add_test(indexable ? s : tests, col, used[i], i);
        }
    }
    /* Hidden statuses are tested per row, like a condition no index serves:
     * the walk keeps the index the other conditions chose (a station's and
     * dates'), and a long run of hidden rows can still yield. A row
     * without a status is never hidden. */
    for (size_t i = 0, n = excluded(f); i < n; i++)
        add(tests, "%s?%zu%s", i ? ", " : " AND coalesce(s.sps_status, '') NOT IN (", P_EXCLUDE + i,
            i + 1 == n ? ")" : "");
    conditions += excluded(f);
    if (f->date_lo && !positioned)
        add(s, " AND %s%s >= ?%d", plus, key[0], P_DATE_LO);
    if (f->date_hi)
        add(s, " AND %s%s <= ?%d", plus, key[0], P_DATE_HI);
    p->plus = plus;
    p->index_only = join == N_CONDS && (conditions == 0 || (conditions == 1 && walked == 1));
}

/* The cursor's statement. From a position, (date, time, id) > (...) is a
 * row-value bound, but SQLite seeks it only on (date, time) and then steps
 * over every row of the position's (date, time) -- hundreds in a busy
 * schedule. The station and name tables hold the id in their key, so the
 * seek is exact there. When an sps index walk tests nothing per row (a
 * full scan, dates, one of modality/status/worklist), the bound is split
 * in three parts that each seek exactly -- the rest of the position's
 * (date, time) by id, the rest of its date by time, the later dates --
 * merged in order by SQLite. With a per-row test that split would cost
 * more: the merge reads the first row of every part at once, and the
 * third's may be far. */
static void build_select(const mwl_filter *f, bool positioned, const mwl_filter_match used[N_CONDS],
                         sql_buf *s)
{
    s->len = 0;
    sql_buf where, tests;
    where.len = 0;
    tests.len = 0;
    where.text[0] = tests.text[0] = '\0';
    plan p;
    build_from_where(f, positioned, used, &where, &tests, &p);
    const char *const *key = p.key;
    /* the ordering columns of the table walked, so SQLite sees the order,
     * and `hit`: whether the row passes the per-row conditions */
    char select[sizeof tests.text + 128];
    snprintf(select, sizeof select, "SELECT %s, s.dataset, %s, %s, s.worklist_aet, (1%s) AS hit", key[2],
             key[0], key[1], tests.text);
    if (!positioned) {
        add(s, "%s%s ORDER BY %s, %s, %s", select, where.text, key[0], key[1], key[2]);
    } else if (!p.index_only) {
        add(s, "%s%s AND (%s, %s, %s) > (?%d, ?%d, ?%d) ORDER BY %s, %s, %s", select, where.text, key[0],
            key[1], key[2], P_POS, P_POS + 1, P_POS + 2, key[0], key[1], key[2]);
    } else {
        add(s, "%s%s AND %s%s = ?%d AND %s%s = ?%d AND %s > ?%d", select, where.text, p.plus, key[0], P_POS,
            p.plus, key[1], P_POS + 1, key[2], P_POS + 2);
        add(s, " UNION ALL %s%s AND %s%s = ?%d AND %s%s > ?%d", select, where.text, p.plus, key[0], P_POS,
            p.plus, key[1], P_POS + 1);
        add(s, " UNION ALL %s%s AND %s%s > ?%d ORDER BY 3, 4, 1", select, where.text, p.plus, key[0], P_POS);
    }
}

/* Binds the filter's values (and prefix bounds) to `st`. */
static int bind_filter(sqlite3_stmt *st, const mwl_filter *f, const mwl_filter_match used[N_CONDS])
{
    for (size_t i = 0; i < N_CONDS; i++) {
        if (used[i] == MWL_FILTER_ANY)
            continue;
        const char *v = cond_of(f, i)->value;
        size_t len = strlen(v);
        if (sqlite3_bind_text(st, (int)i + 1, v, (int)len, SQLITE_TRANSIENT) != SQLITE_OK)
            return MWL_E_NOMEM;
        if (used[i] != MWL_FILTER_PREFIX)
            continue;
        /* Upper bound of a prefix range: the prefix's bytewise successor
         * (last byte below FFH incremented, the rest cut), which sorts after
         * every string with that prefix under SQLite's BINARY (memcmp)
         * collation, whatever bytes follow. */
        char hi[MWL_FILTER_VALUE_MAX];
        size_t hi_len = len < sizeof hi ? len : 0;
        if (hi_len)
            memcpy(hi, v, hi_len);
        while (hi_len && (uint8_t)hi[hi_len - 1] == 0xFF)
            hi_len--;
        int src;
        if (hi_len) {
            hi[hi_len - 1] = (char)((uint8_t)hi[hi_len - 1] + 1);
            src = sqlite3_bind_text(st, (int)i + 21, hi, (int)hi_len, SQLITE_TRANSIENT);
        } else { /* only FFH bytes (or too long to copy): nothing sorts after it but BLOBs */
            src = sqlite3_bind_blob(st, (int)i + 21, "", 0, SQLITE_STATIC);
        }
        if (src != SQLITE_OK)
            return MWL_E_NOMEM;
    }
    for (size_t i = 0, n = excluded(f); i < n; i++) {
        if (sqlite3_bind_text(st, (int)(P_EXCLUDE + i), f->exclude_statuses[i], -1, SQLITE_TRANSIENT) !=
            SQLITE_OK)
            return MWL_E_NOMEM;
    }
    if (f->date_lo)
        sqlite3_bind_text(st, P_DATE_LO, f->date_lo, -1, SQLITE_TRANSIENT);
    if (f->date_hi)
        sqlite3_bind_text(st, P_DATE_HI, f->date_hi, -1, SQLITE_TRANSIENT);
    return MWL_OK;
}

/* ---- cursors ------------------------------------------------------------------------ */

static void sq_cursor_pause(mwl_store_backend *b)
{
    if (b->open_stmt)
        sqlite3_reset(b->open_stmt);
    b->open_stmt = NULL;
    b->open_serial = 0;
    sqlite3_reset(b->by_id);
}

/* The cached statement for a shape, prepared when missing. */
static int find_statement(mwl_store_backend *b, const mwl_filter *f, bool positioned, sqlite3_stmt **out,
                          mwl_filter_match used[N_CONDS], mwl_diag *diag)
{
    uint32_t shape = filter_shape(f, positioned, used);
    size_t slot = (shape * 2654435761u) % STMT_CACHE;
    for (size_t probe = 0; probe < STMT_CACHE; probe++, slot = (slot + 1) % STMT_CACHE) {
        if (!b->find_cache[slot].stmt || b->find_cache[slot].shape == shape)
            break;
    }
    sqlite3_stmt *st = b->find_cache[slot].stmt;
    if (st && b->find_cache[slot].shape != shape) {
        sqlite3_finalize(st); /* cache full: evict (no statement is open: the caller paused) */
        st = NULL;
        b->find_cache[slot].stmt = NULL;
    }
    if (!st) {
        sql_buf s;
        build_select(f, positioned, used, &s);
        int rc = prepare(b, s.text, &st, diag);
        if (rc != MWL_OK)
            return rc;
        b->find_cache[slot].shape = shape;
        b->find_cache[slot].stmt = st;
    }
    *out = st;
    return MWL_OK;
}

/* Opens the cursor's statement at its position. */
static int seek(mwl_store_backend *b, const mwl_filter *f, mwl_store_cursor *c, mwl_diag *diag)
{
    sq_cursor_pause(b);
    mwl_filter_match used[N_CONDS];
    sqlite3_stmt *st;
    int rc = find_statement(b, f, c->started, &st, used, diag);
    if (rc != MWL_OK)
        return rc;
    sqlite3_clear_bindings(st);
    rc = bind_filter(st, f, used);
    if (rc == MWL_OK && c->started) {
        sqlite3_bind_text(st, P_POS, c->last_date, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, P_POS + 1, c->last_time, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, P_POS + 2, c->last_id);
    }
    if (rc != MWL_OK)
        return rc;
    b->open_stmt = st;
    b->open_serial = c->serial;
    b->open_last_id = c->last_id;
    return MWL_OK;
}

static int copy_position(char *dst, size_t cap, const unsigned char *src, int len)
{
    if (!src || len < 0 || (size_t)len >= cap)
        return MWL_E_INTERNAL; /* columns are NOT NULL and short (migration 3, mwl_sps_index) */
    memcpy(dst, src, (size_t)len);
    dst[len] = '\0';
    return MWL_OK;
}

/* No LIMIT: measured on a million rows, a LIMIT of 256 changed no plan
 * and no time (the statement is reset at each pause anyway). */
static int sq_cursor_next(mwl_store_backend *b, const mwl_filter *f, mwl_store_cursor *c, mwl_store_row *row,
                          mwl_diag *diag)
{
    if (c->exhausted)
        return MWL_E_NOTFOUND;
    if (!b->open_stmt || b->open_serial != c->serial || (c->started && b->open_last_id != c->last_id)) {
        int rc = seek(b, f, c, diag);
        if (rc != MWL_OK)
            return rc;
    }
    sqlite3_stmt *st = b->open_stmt;
    /* Rows a per-row condition rejects come back with hit = 0: the
     * position moves past them, and every 64 the cursor's yield may stop
     * the walk (MWL_AGAIN) -- one call never walks the table unbounded. */
    for (uint64_t passed = 1;; passed++) {
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            sq_cursor_pause(b);
            if (src != SQLITE_DONE)
                return db_error(b, diag, "find");
            c->exhausted = true;
            return MWL_E_NOTFOUND;
        }
        int64_t id = sqlite3_column_int64(st, 0);
        if (copy_position(c->last_date, sizeof c->last_date, sqlite3_column_text(st, 2),
                          sqlite3_column_bytes(st, 2)) != MWL_OK ||
            copy_position(c->last_time, sizeof c->last_time, sqlite3_column_text(st, 3),
                          sqlite3_column_bytes(st, 3)) != MWL_OK) {
            sq_cursor_pause(b);
            mwl_diag_set(diag, 0, 0, "row %lld: start date or time unusable as a position", (long long)id);
            return MWL_E_STORE;
        }
        c->last_id = id;
        c->started = true;
        b->open_last_id = id;
        if (sqlite3_column_int(st, 5)) {
            row->id = id;
            row->dataset = sqlite3_column_blob(st, 1);
            row->length = (size_t)sqlite3_column_bytes(st, 1);
            row->worklist_aet = (const char *)sqlite3_column_text(st, 4);
            return MWL_OK;
        }
        if (passed % 64 == 0 && c->yield && c->yield(c->yield_user))
            return MWL_AGAIN; /* the statement stays open at the position */
    }
}

int mwl_store_sqlite_plan(mwl_store_backend *b, const mwl_filter *f, bool positioned, char *out, size_t cap,
                          mwl_diag *diag)
{
    mwl_filter_match used[N_CONDS];
    filter_shape(f, positioned, used);
    sql_buf s;
    build_select(f, positioned, used, &s);
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", s.text);
    sqlite3_stmt *st;
    int prepared = q ? sqlite3_prepare_v2(b->db, q, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(q);
    if (prepared != SQLITE_OK)
        return db_error(b, diag, "explain");
    size_t len = 0;
    out[0] = '\0';
    int rc = bind_filter(st, f, used);
    while (rc == MWL_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        int n = snprintf(out + len, cap - len, "%s\n", detail ? detail : "");
        if (n > 0 && (size_t)n < cap - len)
            len += (size_t)n;
    }
    sqlite3_finalize(st);
    return rc;
}

int64_t mwl_store_sqlite_vm_steps(mwl_store_backend *b)
{
    int64_t n = 0;
    for (int i = 0; i < STMT_CACHE; i++) {
        if (b->find_cache[i].stmt)
            n += sqlite3_stmt_status(b->find_cache[i].stmt, SQLITE_STMTSTATUS_VM_STEP, 1);
    }
    return n;
}

/* ---- removing by filter ---------------------------------------------------------------- */

static int sq_remove(mwl_store_backend *b, const mwl_filter *f, size_t *removed, mwl_diag *diag)
{
    mwl_filter_match used[N_CONDS];
    filter_shape(f, false, used);
    sql_buf where, tests, s;
    plan p;
    where.len = tests.len = s.len = 0;
    where.text[0] = tests.text[0] = '\0';
    build_from_where(f, false, used, &where, &tests, &p);
    /* One statement: it deletes every row or, failing, none. The per-row
     * tests belong in its WHERE. */
    add(&s, "DELETE FROM sps WHERE id IN (SELECT %s%s%s)", p.key[2], where.text, tests.text);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(b->db, s.text, -1, &st, NULL) != SQLITE_OK)
        return db_error(b, diag, "remove");
    int rc = bind_filter(st, f, used);
    if (rc == MWL_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? MWL_OK : db_error(b, diag, "remove");
    sqlite3_finalize(st);
    if (rc == MWL_OK)
        *removed = (size_t)sqlite3_changes64(b->db);
    return rc;
}

const mwl_store_ops mwl_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .put_row = sq_put_row,
    .update_row = sq_update_row,
    .row_by_id = sq_row_by_id,
    .remove = sq_remove,
    .expire = sq_expire,
    .clear = sq_clear,
    .count = sq_count,
    .intake_lookup = sq_intake_lookup,
    .intake_record = sq_intake_record,
    .intake_prune = sq_intake_prune,
    .cursor_next = sq_cursor_next,
    .cursor_pause = sq_cursor_pause,
};
