/* The store's shared part (store.h): the backend factory, batches and
 * per-operation transactions, and every operation on items -- checking,
 * splitting into SPS rows and indexing them (worklist/), status and patient
 * updates -- so a backend (store_int.h) only stores rows and narrows by
 * filter. */
#include "store/store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/dict.h"
#include "store/store_int.h"

/* ---- the factory ----------------------------------------------------------- */

/* Which backend serves a target: the first row whose prefix it starts
 * with. A backend that is not built has no ops (a clear error rather than
 * a file named "postgresql:..."). The last row takes any target. */
static const struct {
    const char *prefix;
    const char *title;
    const mwl_store_ops *ops;
} backends[] = {
    {"postgresql://", "PostgreSQL", NULL},
    {"postgres://", "PostgreSQL", NULL},
    {"", "SQLite", &mwl_store_sqlite_ops},
};

struct mwl_store {
    const mwl_mem *mem;
    const mwl_store_ops *ops;
    mwl_store_backend *b;
    bool read_only;
    bool batch;          /* between mwl_store_begin and commit/rollback */
    unsigned savepoints; /* open mwl_store_savepoint levels inside the batch */
    /* the deprecated mwl_store_find_* search */
    bool legacy_open;
    mwl_filter legacy_filter;
    mwl_arena legacy_arena; /* its values */
    mwl_store_cursor legacy_cursor;
};

static const uint32_t sps_seq = MWL_TAG_ScheduledProcedureStepSequence;

int mwl_store_open(const char *target, const mwl_store_options *opt, mwl_store **out, mwl_diag *diag)
{
    static const mwl_store_options defaults = {false, NULL, NULL};
    if (!opt)
        opt = &defaults;
    *out = NULL;
    mwl_diag_clear(diag);
    if (!target) {
        mwl_diag_set(diag, 0, 0, "no database given");
        return MWL_E_INVALID;
    }
    size_t i = 0;
    while (strncmp(target, backends[i].prefix, strlen(backends[i].prefix)) != 0)
        i++; /* the last prefix is "" */
    if (!backends[i].ops) {
        mwl_diag_set(diag, 0, 0, "%s backend not built (database %.60s)", backends[i].title, target);
        return MWL_E_UNSUPPORTED;
    }
    const mwl_mem *mem = opt->mem ? opt->mem : mwl_mem_default();
    mwl_store *s = mwl_mem_calloc(mem, 1, sizeof *s);
    if (!s)
        return MWL_E_NOMEM;
    s->mem = mem;
    s->ops = backends[i].ops;
    s->read_only = opt->read_only;
    mwl_arena_init(&s->legacy_arena, mem);
    int rc = s->ops->open(target, opt, mem, &s->b, diag);
    if (rc != MWL_OK) {
        mwl_mem_free(mem, s);
        return rc;
    }
    *out = s;
    return MWL_OK;
}

void mwl_store_free(mwl_store *store)
{
    if (!store)
        return;
    store->ops->close(store->b);
    mwl_arena_clear(&store->legacy_arena);
    mwl_mem_free(store->mem, store);
}

const mwl_mem *mwl_store_mem(const mwl_store *store)
{
    return store->mem;
}

mwl_store_backend *mwl_store_backend_of(mwl_store *store)
{
    return store->b;
}

const char *mwl_store_backend_name(const mwl_store *store)
{
    return store->ops->name;
}

int mwl_store_schema_version(mwl_store *store)
{
    return store->ops->schema_version(store->b);
}

int mwl_store_settings_each(const char *settings, const char *backend,
                            int (*fn)(void *user, const char *key, const char *value, mwl_diag *diag),
                            void *user, mwl_diag *diag)
{
    const char *p = settings ? settings : "";
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            return MWL_OK;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        char pair[128];
        size_t len = (size_t)(p - start);
        if (len >= sizeof pair) {
            mwl_diag_set(diag, 0, 0, "store setting too long: %.40s...", start);
            return MWL_E_INVALID;
        }
        memcpy(pair, start, len);
        pair[len] = '\0';
        char *eq = strchr(pair, '=');
        char *dot = strchr(pair, '.');
        if (!dot || dot == pair || (eq && dot > eq)) {
            mwl_diag_set(diag, 0, 0, "store setting '%s' names no backend (e.g. %s.%s)", pair, backend, pair);
            return MWL_E_INVALID;
        }
        *dot = '\0';
        if (strcmp(pair, backend) != 0)
            continue;
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        int rc = fn(user, dot + 1, value, diag);
        if (rc != MWL_OK)
            return rc;
    }
}

/* ---- batches and per-operation transactions ---------------------------------- */

int mwl_store_begin(mwl_store *store, mwl_diag *diag)
{
    if (store->read_only || store->batch) {
        mwl_diag_set(diag, 0, 0, store->batch ? "a batch is already open" : "store is read-only");
        return MWL_E_INVALID;
    }
    store->ops->cursor_pause(store->b);
    int rc = store->ops->begin(store->b, diag);
    if (rc == MWL_OK)
        store->batch = true;
    return rc;
}

int mwl_store_commit(mwl_store *store, mwl_diag *diag)
{
    if (!store->batch) {
        mwl_diag_set(diag, 0, 0, "no batch is open");
        return MWL_E_INVALID;
    }
    store->ops->cursor_pause(store->b);
    int rc = store->ops->commit(store->b, diag);
    if (rc == MWL_OK) {
        store->batch = false; /* else still open: the caller rolls back */
        store->savepoints = 0;
    }
    return rc;
}

int mwl_store_rollback(mwl_store *store)
{
    if (!store->batch)
        return MWL_OK;
    store->ops->cursor_pause(store->b);
    store->batch = false;
    store->savepoints = 0;
    return store->ops->rollback(store->b);
}

bool mwl_store_in_batch(const mwl_store *store)
{
    return store->batch;
}

/* The caller's savepoints are the backend's operation savepoints too: an
 * operation's own savepoint nests inside and is always ended before the
 * operation returns, so the innermost open one is the caller's again. */
int mwl_store_savepoint(mwl_store *store, mwl_diag *diag)
{
    if (!store->batch) {
        mwl_diag_set(diag, 0, 0, "a savepoint needs an open batch");
        return MWL_E_INVALID;
    }
    store->ops->cursor_pause(store->b);
    int rc = store->ops->savepoint(store->b, diag);
    if (rc == MWL_OK)
        store->savepoints++;
    return rc;
}

int mwl_store_release(mwl_store *store, mwl_diag *diag)
{
    if (!store->batch || store->savepoints == 0) {
        mwl_diag_set(diag, 0, 0, "no savepoint is open");
        return MWL_E_INVALID;
    }
    store->ops->cursor_pause(store->b);
    int rc = store->ops->release(store->b, diag);
    if (rc == MWL_OK)
        store->savepoints--;
    return rc;
}

int mwl_store_rollback_to(mwl_store *store)
{
    if (!store->batch || store->savepoints == 0)
        return MWL_E_INVALID;
    store->ops->cursor_pause(store->b);
    store->savepoints--; /* ended either way: on failure the batch must go */
    return store->ops->rollback_to(store->b);
}

/* Every writing operation runs between op_begin and op_end: a transaction
 * of its own, or inside the caller's batch a savepoint, so that it is
 * atomic either way. An operation that can fail only on a database error
 * once it has started writing (a put: every row is built first) joins the
 * batch without a savepoint, which in SQLite costs a copy of every page it
 * touches; after such an error the caller rolls the batch back. */
typedef enum op_kind { OP_TXN, OP_SAVEPOINT, OP_JOIN } op_kind;

static int op_begin(mwl_store *s, bool savepoint, op_kind *kind, mwl_diag *diag)
{
    if (s->read_only) {
        mwl_diag_set(diag, 0, 0, "store is read-only");
        return MWL_E_INVALID;
    }
    s->ops->cursor_pause(s->b);
    *kind = !s->batch ? OP_TXN : savepoint ? OP_SAVEPOINT : OP_JOIN;
    switch (*kind) {
    case OP_TXN: return s->ops->begin(s->b, diag);
    case OP_SAVEPOINT: return s->ops->savepoint(s->b, diag);
    case OP_JOIN: break;
    }
    return MWL_OK;
}

static int op_end(mwl_store *s, op_kind kind, int rc, mwl_diag *diag)
{
    s->ops->cursor_pause(s->b);
    if (kind == OP_JOIN)
        return rc;
    if (rc == MWL_OK) {
        rc = kind == OP_SAVEPOINT ? s->ops->release(s->b, diag) : s->ops->commit(s->b, diag);
        if (rc == MWL_OK)
            return MWL_OK;
    }
    if (kind == OP_SAVEPOINT)
        s->ops->rollback_to(s->b);
    else
        s->ops->rollback(s->b);
    return rc;
}

/* ---- items, rows, indexes ------------------------------------------------------ */

static mwl_ds *first_sps(const mwl_ds *row)
{
    const mwl_elem *seq = mwl_ds_find(row, sps_seq);
    return seq && seq->vr == MWL_VR_SQ && seq->item_count ? seq->items[0] : NULL;
}

/* The index of a one-SPS row, after the checks every stored item passes. */
static int index_row(const mwl_ds *row, const char *worklist_aet, mwl_arena *arena, mwl_sps_index *ix,
                     mwl_diag *diag)
{
    mwl_item_problem p;
    int rc = mwl_worklist_check_item(row, MWL_CHECK_LENIENT, &p);
    if (rc == MWL_E_INVALID)
        mwl_diag_set(diag, 0, p.tag, "%s", p.msg);
    if (rc != MWL_OK)
        return rc;
    return mwl_sps_index_build(row, first_sps(row), worklist_aet, arena, ix, diag);
}

int mwl_store_put_item(mwl_store *store, const mwl_ds *item, const char *source, const char *worklist_aet,
                       mwl_store_put_stats *stats, mwl_diag *diag)
{
    if (store->read_only) {
        mwl_diag_set(diag, 0, 0, "store is read-only");
        return MWL_E_INVALID;
    }
    mwl_item_problem p;
    int rc = mwl_worklist_check_item(item, MWL_CHECK_LENIENT, &p);
    if (rc == MWL_E_INVALID)
        mwl_diag_set(diag, 0, p.tag, "%s", p.msg);
    if (rc != MWL_OK)
        return rc;
    mwl_arena arena;
    mwl_arena_init(&arena, store->mem);
    size_t n = mwl_expand_count(item);
    mwl_sps_index *rows = mwl_arena_alloc(&arena, n * sizeof *rows);
    if (!rows)
        rc = MWL_E_NOMEM;
    /* Every row built and encoded before anything is written. */
    for (size_t i = 0; rc == MWL_OK && i < n; i++) {
        mwl_ds *row;
        rc = mwl_expand_item(item, i, &arena, &row);
        if (rc == MWL_OK)
            rc = mwl_sps_index_build(row, first_sps(row), worklist_aet, &arena, &rows[i], diag);
    }
    mwl_store_put_stats st = {0, 0};
    op_kind kind = OP_TXN;
    if (rc == MWL_OK)
        rc = op_begin(store, false, &kind, diag);
    if (rc == MWL_OK) {
        for (size_t i = 0; rc == MWL_OK && i < n; i++) {
            bool updated = false;
            rc = store->ops->put_row(store->b, &rows[i], source, &updated, diag);
            if (updated)
                st.updated++;
            else
                st.inserted++;
        }
        rc = op_end(store, kind, rc, diag);
    }
    if (rc == MWL_OK && stats) {
        stats->inserted += st.inserted;
        stats->updated += st.updated;
    }
    mwl_arena_clear(&arena);
    return rc;
}

/* ---- cursors ----------------------------------------------------------------- */

void mwl_store_filter_init(mwl_store_filter *f)
{
    mwl_filter_init(f);
}

void mwl_store_cursor_init(mwl_store_cursor *cursor)
{
    memset(cursor, 0, sizeof *cursor);
}

/* Cursor identities are unique in the process, since a cursor may move
 * from one connection to another. */
static _Atomic uint64_t cursor_serial;

/* What a backend may assume of a filter beyond its type. */
static bool filter_ok(const mwl_filter *f, mwl_diag *diag)
{
    size_t n = f->exclude_statuses ? f->exclude_status_count : 0;
    if (n > MWL_FILTER_EXCLUDE_MAX) {
        mwl_diag_set(diag, 0, 0, "at most %d excluded statuses", (int)MWL_FILTER_EXCLUDE_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!f->exclude_statuses[i]) {
            mwl_diag_set(diag, 0, 0, "excluded status %zu is NULL", i);
            return false;
        }
    }
    return true;
}

int mwl_store_cursor_next(mwl_store *store, const mwl_filter *filter, mwl_store_cursor *cursor,
                          mwl_store_row *row, mwl_diag *diag)
{
    if (!cursor->serial)
        cursor->serial = atomic_fetch_add(&cursor_serial, 1) + 1;
    if (!filter_ok(filter, diag))
        return MWL_E_INVALID;
    return store->ops->cursor_next(store->b, filter, cursor, row, diag);
}

void mwl_store_cursor_pause(mwl_store *store)
{
    store->ops->cursor_pause(store->b);
}

/* The filter's text conditions, in a fixed order. */
static const size_t cond_offsets[] = {offsetof(mwl_filter, station_aet),
                                      offsetof(mwl_filter, modality),
                                      offsetof(mwl_filter, sps_id),
                                      offsetof(mwl_filter, sps_status),
                                      offsetof(mwl_filter, patient_id),
                                      offsetof(mwl_filter, patient_name),
                                      offsetof(mwl_filter, accession),
                                      offsetof(mwl_filter, study_uid),
                                      offsetof(mwl_filter, requested_procedure_id),
                                      offsetof(mwl_filter, worklist_aet)};

static const char *copy_str(mwl_arena *a, const char *s, bool *nomem)
{
    if (!s)
        return NULL;
    const char *c = mwl_arena_strndup(a, s, strlen(s));
    if (!c)
        *nomem = true;
    return c;
}

int mwl_store_find_begin(mwl_store *store, const mwl_filter *filter, mwl_diag *diag)
{
    (void)diag;
    mwl_store_find_end(store);
    mwl_arena_clear(&store->legacy_arena);
    mwl_filter *f = &store->legacy_filter;
    mwl_filter_init(f);
    bool nomem = false;
    for (size_t i = 0; i < sizeof cond_offsets / sizeof cond_offsets[0]; i++) {
        const mwl_filter_cond *from = (const mwl_filter_cond *)((const char *)filter + cond_offsets[i]);
        mwl_filter_cond *to = (mwl_filter_cond *)((char *)f + cond_offsets[i]);
        to->match = from->match;
        to->value = copy_str(&store->legacy_arena, from->value, &nomem);
    }
    f->date_lo = copy_str(&store->legacy_arena, filter->date_lo, &nomem);
    f->date_hi = copy_str(&store->legacy_arena, filter->date_hi, &nomem);
    size_t n = filter->exclude_statuses ? filter->exclude_status_count : 0;
    const char **excluded = n ? mwl_arena_alloc(&store->legacy_arena, n * sizeof *excluded) : NULL;
    nomem = nomem || (n && !excluded);
    for (size_t i = 0; !nomem && i < n; i++)
        excluded[i] = copy_str(&store->legacy_arena, filter->exclude_statuses[i], &nomem);
    f->exclude_statuses = excluded;
    f->exclude_status_count = n;
    if (nomem)
        return MWL_E_NOMEM;
    mwl_store_cursor_init(&store->legacy_cursor);
    store->legacy_open = true;
    return MWL_OK;
}

int mwl_store_find_next(mwl_store *store, mwl_store_row *row, mwl_diag *diag)
{
    if (!store->legacy_open)
        return MWL_E_NOTFOUND;
    int rc = mwl_store_cursor_next(store, &store->legacy_filter, &store->legacy_cursor, row, diag);
    if (rc != MWL_OK)
        mwl_store_find_end(store);
    return rc;
}

void mwl_store_find_end(mwl_store *store)
{
    if (store->legacy_open)
        store->ops->cursor_pause(store->b);
    store->legacy_open = false;
}

int mwl_store_count(mwl_store *store, int64_t *count, mwl_diag *diag)
{
    return store->ops->count(store->b, count, diag);
}

/* The ids of every row `f` selects, in cursor order, in memory of the
 * store's allocator (*ids to be freed with it). */
static int collect_ids(mwl_store *store, const mwl_filter *f, int64_t **ids, size_t *n, mwl_diag *diag)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 0;
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    int rc;
    while ((rc = mwl_store_cursor_next(store, f, &c, &row, diag)) == MWL_OK) {
        if (*n == cap) {
            size_t more = cap ? 2 * cap : 16;
            int64_t *grown = mwl_mem_realloc(store->mem, *ids, more * sizeof *grown);
            if (!grown) {
                rc = MWL_E_NOMEM;
                break;
            }
            *ids = grown;
            cap = more;
        }
        (*ids)[(*n)++] = row.id;
    }
    store->ops->cursor_pause(store->b);
    if (rc == MWL_E_NOTFOUND)
        return MWL_OK;
    mwl_mem_free(store->mem, *ids);
    *ids = NULL;
    *n = 0;
    return rc;
}

/* Row `id` decoded into `arena`, with its worklist AE copied there too. */
static int load_row(mwl_store *store, int64_t id, mwl_arena *arena, mwl_ds **out, const char **worklist_aet,
                    mwl_diag *diag)
{
    mwl_store_row row;
    int rc = store->ops->row_by_id(store->b, id, &row, diag);
    if (rc != MWL_OK)
        return rc;
    *worklist_aet = NULL;
    if (row.worklist_aet &&
        !(*worklist_aet = mwl_arena_strndup(arena, row.worklist_aet, strlen(row.worklist_aet))))
        return MWL_E_NOMEM;
    rc = mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, arena, NULL, out, diag);
    if (rc == MWL_OK && !first_sps(*out)) {
        mwl_diag_set(diag, 0, sps_seq, "stored row %lld has no SPS item", (long long)id);
        rc = MWL_E_MALFORMED;
    }
    return rc;
}

/* ---- one SPS by reference ------------------------------------------------------- */

static bool given(const char *s)
{
    return s && s[0];
}

static int ref_filter(const mwl_sps_ref *ref, mwl_filter *f, mwl_diag *diag)
{
    mwl_filter_init(f);
    if (!given(ref->sps_id) || (!given(ref->study_uid) && !given(ref->accession))) {
        mwl_diag_set(diag, 0, 0, "an SPS is named by its SPS ID and Study Instance UID or Accession Number");
        return MWL_E_INVALID;
    }
    const struct {
        const char *value;
        mwl_filter_cond *cond;
    } parts[] = {{ref->study_uid, &f->study_uid},
                 {ref->accession, &f->accession},
                 {ref->sps_id, &f->sps_id},
                 {ref->requested_procedure_id, &f->requested_procedure_id},
                 {ref->worklist_aet, &f->worklist_aet}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (given(parts[i].value))
            *parts[i].cond = (mwl_filter_cond){MWL_FILTER_EXACT, parts[i].value};
    }
    return MWL_OK;
}

int mwl_store_get(mwl_store *store, const mwl_sps_ref *ref, mwl_arena *arena, mwl_ds **out, int64_t *id,
                  mwl_diag *diag)
{
    mwl_filter f;
    int rc = ref_filter(ref, &f, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row = {0, NULL, 0, NULL};
    rc = mwl_store_cursor_next(store, &f, &c, &row, diag);
    mwl_ds *ds = NULL;
    int64_t found = row.id;
    if (rc == MWL_OK)
        rc = mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, arena, NULL, &ds, diag);
    if (rc == MWL_OK) {
        rc = mwl_store_cursor_next(store, &f, &c, &row, diag);
        if (rc == MWL_OK) {
            mwl_diag_set(diag, 0, 0, "the reference names several SPS (rows %lld and %lld)", (long long)found,
                         (long long)row.id);
            rc = MWL_E_INVALID;
        } else if (rc == MWL_E_NOTFOUND) {
            rc = MWL_OK;
        }
    }
    store->ops->cursor_pause(store->b);
    if (rc == MWL_OK) {
        *out = ds;
        if (id)
            *id = found;
    }
    return rc;
}

static bool is_cs_value(const char *s)
{
    size_t n = strlen(s);
    if (n > 16)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_'))
            return false;
    }
    return true;
}

int mwl_store_set_status(mwl_store *store, const mwl_sps_ref *ref, const char *status, size_t *updated,
                         mwl_diag *diag)
{
    if (updated)
        *updated = 0;
    if (!status || !is_cs_value(status)) {
        mwl_diag_set(diag, 0, MWL_TAG_ScheduledProcedureStepStatus, "SPS status '%.20s' is not a CS value",
                     status ? status : "");
        return MWL_E_INVALID;
    }
    mwl_filter f;
    op_kind kind;
    int rc = ref_filter(ref, &f, diag);
    if (rc == MWL_OK)
        rc = op_begin(store, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    int64_t *ids;
    size_t n;
    rc = collect_ids(store, &f, &ids, &n, diag);
    if (rc == MWL_OK && n == 0) {
        mwl_diag_set(diag, 0, 0, "no such SPS");
        rc = MWL_E_NOTFOUND;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, store->mem);
    for (size_t i = 0; rc == MWL_OK && i < n; i++) {
        mwl_arena_clear(&arena);
        mwl_ds *row;
        const char *wl;
        mwl_sps_index ix;
        rc = load_row(store, ids[i], &arena, &row, &wl, diag);
        if (rc == MWL_OK) {
            mwl_ds *sps = first_sps(row);
            if (status[0])
                rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStatus, MWL_VR_CS, status);
            else
                mwl_ds_remove(sps, MWL_TAG_ScheduledProcedureStepStatus);
        }
        if (rc == MWL_OK)
            rc = index_row(row, wl, &arena, &ix, diag);
        if (rc == MWL_OK)
            rc = store->ops->update_row(store->b, ids[i], &ix, diag);
    }
    mwl_arena_clear(&arena);
    mwl_mem_free(store->mem, ids);
    rc = op_end(store, kind, rc, diag);
    if (rc == MWL_OK && updated)
        *updated = n;
    return rc;
}

/* ---- patients ----------------------------------------------------------------- */

/* Attributes a demographics update may set: the patient's own, not the
 * identifiers (mwl_store_patient_merge changes those). */
static bool is_demographic(uint32_t tag)
{
    if (tag == MWL_TAG_PatientID || tag == MWL_TAG_IssuerOfPatientID)
        return false;
    return MWL_TAG_GROUP(tag) == 0x0010 || tag == MWL_TAG_SpecialNeeds || tag == MWL_TAG_PatientState ||
           tag == MWL_TAG_ConfidentialityConstraintOnPatientDataDescription;
}

/* Writes UTF-8 `text` as the value of `tag` in `row`, in the item's
 * character set, or -- when that cannot hold it -- after re-encoding the
 * item in ISO_IR 192. */
static int set_text(mwl_ds *row, uint32_t tag, const char *text, const mwl_mem *mem, mwl_diag *diag)
{
    mwl_vr vr = mwl_dict_vr(tag);
    mwl_wbuf w;
    mwl_wbuf_init(&w, mem);
    int rc = MWL_E_CHARSET;
    for (int attempt = 0; attempt < 2 && rc == MWL_E_CHARSET; attempt++) {
        mwl_charset cs;
        rc = mwl_charset_of(row, &cs, diag);
        if (rc == MWL_OK && attempt == 1) {
            rc = mwl_charset_parse("ISO_IR 192", 10, &cs, diag);
            if (rc == MWL_OK)
                rc = mwl_ds_recode(row, &cs, diag);
        }
        w.len = 0;
        if (rc == MWL_OK)
            rc = mwl_charset_encode(&cs, vr, text, strlen(text), &w, diag);
    }
    if (rc == MWL_OK && (w.len & 1))
        mwl_wbuf_put_u8(&w, ' ');
    if (rc == MWL_OK)
        rc = w.status != MWL_OK ? w.status : mwl_ds_set(row, tag, vr, w.data, w.len);
    mwl_wbuf_clear(&w);
    return rc;
}

/* Each element of `demo` replaces the row's. When the two are in
 * different character sets (and the demographics are not plain ASCII),
 * both go to ISO_IR 192 first, so nothing is lost. */
static int apply_demographics(mwl_ds *row, const mwl_ds *demo, mwl_arena *arena, mwl_diag *diag)
{
    if (!demo)
        return MWL_OK;
    mwl_charset row_cs, demo_cs;
    int rc = mwl_charset_of(row, &row_cs, diag);
    if (rc == MWL_OK)
        rc = mwl_charset_of(demo, &demo_cs, diag);
    if (rc != MWL_OK)
        return rc;
    bool same = row_cs.count == demo_cs.count && memcmp(row_cs.ids, demo_cs.ids, row_cs.count) == 0;
    if (!same && !mwl_ds_text_is_ascii(demo)) {
        mwl_charset utf8;
        rc = mwl_charset_parse("ISO_IR 192", 10, &utf8, diag);
        if (rc == MWL_OK && !mwl_charset_is_utf8(&row_cs))
            rc = mwl_ds_recode(row, &utf8, diag);
        mwl_ds *copy = NULL;
        if (rc == MWL_OK)
            rc = mwl_ds_copy(demo, arena, NULL, &copy);
        if (rc == MWL_OK && !mwl_charset_is_utf8(&demo_cs))
            rc = mwl_ds_recode(copy, &utf8, diag);
        if (rc != MWL_OK)
            return rc;
        demo = copy;
    }
    for (size_t i = 0, n = mwl_ds_count(demo); rc == MWL_OK && i < n; i++) {
        const mwl_elem *e = mwl_ds_at(demo, i);
        if (e->tag != MWL_TAG_SpecificCharacterSet)
            rc = mwl_ds_copy_elem(row, e);
    }
    return rc;
}

/* The stored Issuer of Patient ID is `issuer` (NULL: any; "": none). */
static int issuer_is(const mwl_ds *row, const char *issuer, mwl_arena *arena, bool *yes, mwl_diag *diag)
{
    *yes = true;
    if (!issuer)
        return MWL_OK;
    const mwl_elem *e = mwl_ds_find(row, MWL_TAG_IssuerOfPatientID);
    const char *stored = "";
    if (e && e->length && mwl_vr_is_string(e->vr)) {
        int rc = mwl_ds_get_utf8(row, e, 0, arena, &stored, diag);
        if (rc == MWL_E_NOTFOUND)
            stored = "";
        else if (rc != MWL_OK)
            return rc;
    }
    *yes = strcmp(stored, issuer) == 0;
    return MWL_OK;
}

static int patient_change(mwl_store *store, const char *old_id, const char *old_issuer, bool merge,
                          const char *new_id, const char *new_issuer, const mwl_ds *demo, size_t *updated,
                          mwl_diag *diag)
{
    if (updated)
        *updated = 0;
    if (!given(old_id) || (merge && !given(new_id))) {
        mwl_diag_set(diag, 0, MWL_TAG_PatientID, "no Patient ID given");
        return MWL_E_INVALID;
    }
    for (size_t i = 0, n = demo ? mwl_ds_count(demo) : 0; i < n; i++) {
        uint32_t t = mwl_ds_at(demo, i)->tag;
        if (t != MWL_TAG_SpecificCharacterSet && !is_demographic(t)) {
            mwl_diag_set(diag, 0, t, "%s (%04X,%04X) is not a demographic the update may change",
                         mwl_dict_keyword(t), MWL_TAG_GROUP(t), MWL_TAG_ELEMENT(t));
            return MWL_E_INVALID;
        }
    }
    mwl_filter f;
    mwl_filter_init(&f);
    f.patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, old_id};
    op_kind kind;
    int rc = op_begin(store, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    int64_t *ids;
    size_t n, changed = 0;
    rc = collect_ids(store, &f, &ids, &n, diag);
    mwl_arena arena;
    mwl_arena_init(&arena, store->mem);
    for (size_t i = 0; rc == MWL_OK && i < n; i++) {
        mwl_arena_clear(&arena);
        mwl_ds *row;
        const char *wl;
        bool ours = false;
        rc = load_row(store, ids[i], &arena, &row, &wl, diag);
        if (rc == MWL_OK)
            rc = issuer_is(row, old_issuer, &arena, &ours, diag);
        if (rc != MWL_OK || !ours)
            continue;
        rc = apply_demographics(row, demo, &arena, diag);
        if (rc == MWL_OK && merge)
            rc = set_text(row, MWL_TAG_PatientID, new_id, store->mem, diag);
        if (rc == MWL_OK && merge) {
            if (given(new_issuer))
                rc = set_text(row, MWL_TAG_IssuerOfPatientID, new_issuer, store->mem, diag);
            else
                mwl_ds_remove(row, MWL_TAG_IssuerOfPatientID);
        }
        mwl_sps_index ix;
        if (rc == MWL_OK)
            rc = index_row(row, wl, &arena, &ix, diag);
        if (rc == MWL_OK)
            rc = store->ops->update_row(store->b, ids[i], &ix, diag);
        if (rc == MWL_OK)
            changed++;
    }
    mwl_arena_clear(&arena);
    mwl_mem_free(store->mem, ids);
    rc = op_end(store, kind, rc, diag);
    if (rc == MWL_OK && updated)
        *updated = changed;
    return rc;
}

int mwl_store_patient_update(mwl_store *store, const char *patient_id, const char *issuer,
                             const mwl_ds *demographics, size_t *updated, mwl_diag *diag)
{
    return patient_change(store, patient_id, issuer, false, NULL, NULL, demographics, updated, diag);
}

int mwl_store_patient_merge(mwl_store *store, const char *old_id, const char *old_issuer, const char *new_id,
                            const char *new_issuer, const mwl_ds *demographics, size_t *updated,
                            mwl_diag *diag)
{
    return patient_change(store, old_id, old_issuer, true, new_id, new_issuer, demographics, updated, diag);
}

/* ---- removing ----------------------------------------------------------------- */

int mwl_store_remove(mwl_store *store, const mwl_filter *filter, size_t *removed, mwl_diag *diag)
{
    if (removed)
        *removed = 0;
    if (mwl_filter_is_empty(filter)) {
        mwl_diag_set(diag, 0, 0, "refusing to remove without a condition");
        return MWL_E_INVALID;
    }
    if (!filter_ok(filter, diag))
        return MWL_E_INVALID;
    size_t n = 0;
    op_kind kind;
    int rc = op_begin(store, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    rc = op_end(store, kind, store->ops->remove(store->b, filter, &n, diag), diag);
    if (rc == MWL_OK && removed)
        *removed = n;
    return rc;
}

int mwl_store_clear(mwl_store *store, size_t *removed, mwl_diag *diag)
{
    if (removed)
        *removed = 0;
    size_t n = 0;
    op_kind kind;
    int rc = op_begin(store, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    rc = op_end(store, kind, store->ops->clear(store->b, &n, diag), diag);
    if (rc == MWL_OK && removed)
        *removed = n;
    return rc;
}

static bool is_date_key(const char *s)
{
    if (strlen(s) != 8)
        return false;
    for (size_t i = 0; i < 8; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

int mwl_store_expire(mwl_store *store, const mwl_store_expiry *expiry, size_t *removed, mwl_diag *diag)
{
    if (removed)
        *removed = 0;
    if (!expiry->before_date && expiry->status_count == 0) {
        mwl_diag_set(diag, 0, 0, "refusing to expire without a condition");
        return MWL_E_INVALID;
    }
    /* The time is that of the status: without statuses it would be no
     * condition anyone asked for. */
    if (expiry->changed_before_unix_ms && expiry->status_count == 0) {
        mwl_diag_set(diag, 0, 0, "a time of status change needs statuses");
        return MWL_E_INVALID;
    }
    if (expiry->changed_before_unix_ms < 0) {
        mwl_diag_set(diag, 0, 0, "time of status change before 1970");
        return MWL_E_INVALID;
    }
    if (expiry->before_date && !is_date_key(expiry->before_date)) {
        mwl_diag_set(diag, 0, 0, "'%.20s' is not a date YYYYMMDD", expiry->before_date);
        return MWL_E_INVALID;
    }
    for (size_t i = 0; i < expiry->status_count; i++) {
        if (!expiry->statuses[i] || !is_cs_value(expiry->statuses[i])) {
            mwl_diag_set(diag, 0, 0, "status '%.20s' is not a CS value",
                         expiry->statuses[i] ? expiry->statuses[i] : "");
            return MWL_E_INVALID;
        }
    }
    size_t n = 0;
    op_kind kind;
    int rc = op_begin(store, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    rc = op_end(store, kind, store->ops->expire(store->b, expiry, &n, diag), diag);
    if (rc == MWL_OK && removed)
        *removed = n;
    return rc;
}

/* ---- the intake log ------------------------------------------------------------- */

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mwl_store_intake_lookup(mwl_store *s, const char *key, mwl_arena *arena, const char **reply,
                            mwl_diag *diag)
{
    *reply = NULL;
    if (!given(key)) {
        mwl_diag_set(diag, 0, 0, "no intake key given");
        return MWL_E_INVALID;
    }
    return s->ops->intake_lookup(s->b, key, arena, reply, diag);
}

int mwl_store_intake_record(mwl_store *s, const char *key, const char *reply, mwl_diag *diag)
{
    if (!given(key) || !reply) {
        mwl_diag_set(diag, 0, 0, "an intake record needs a key and a reply");
        return MWL_E_INVALID;
    }
    /* One statement: it cannot half-fail, so in a batch it joins without a
     * savepoint of its own (store.h). */
    op_kind kind;
    int rc = op_begin(s, false, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    return op_end(s, kind, s->ops->intake_record(s->b, key, reply, wall_clock_ms(), diag), diag);
}

int mwl_store_intake_prune(mwl_store *s, int64_t before_unix_ms, size_t *removed, mwl_diag *diag)
{
    if (removed)
        *removed = 0;
    size_t n = 0;
    op_kind kind;
    int rc = op_begin(s, true, &kind, diag);
    if (rc != MWL_OK)
        return rc;
    rc = op_end(s, kind, s->ops->intake_prune(s->b, before_unix_ms, &n, diag), diag);
    if (rc == MWL_OK && removed)
        *removed = n;
    return rc;
}
