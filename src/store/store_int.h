/* Declarations private to src/store: the table of operations a backend
 * implements (STYLE.md §14: like sqlite3_vfs, a struct of function
 * pointers the rest of the module calls without knowing the database).
 *
 * Adding a backend: one file (e.g. postgres.c) defining a
 * `const mwl_store_ops`, and its row in the factory table of store.c.
 * Nothing else changes: what a row's index holds (mwl_sps_index), what a
 * filter means (mwl_filter) and every rule about items (checks, patient
 * and status updates, batching) are decided outside the backends.
 *
 * What a backend must provide, per connection:
 *   - rows keyed by an integer id, each with the mwl_sps_index values, the
 *     encoded data set, the worklist AE, the source, a time of change and
 *     a time of the last status change (for expiry); natural_key unique;
 *   - the intake log: key -> reply with the time recorded, the key
 *     unique and indexed, the time indexed for pruning;
 *   - transactions (begin/commit/rollback) and nested savepoints;
 *   - a keyset cursor over a filter in (start_date, start_time, id) order
 *     that never keeps a read transaction open across a pause;
 *   - set-wise deletes (remove by filter, expire, clear).
 * Writing entry points are called only inside a transaction the shared
 * code opened (begin or savepoint); the backend does not open its own.
 * Every function returns MWL_OK or a status of store.h with diag set. */
#ifndef MWL_STORE_STORE_INT_H
#define MWL_STORE_STORE_INT_H

#include "store/store.h"

typedef struct mwl_store_backend mwl_store_backend; /* each backend's connection */

typedef struct mwl_store_ops {
    const char *name; /* "sqlite": also the prefix of its settings */

    int (*open)(const char *target, const mwl_store_options *opt, const mwl_mem *mem, mwl_store_backend **out,
                mwl_diag *diag);
    void (*close)(mwl_store_backend *b); /* rolls back what is open */
    int (*schema_version)(mwl_store_backend *b);

    int (*begin)(mwl_store_backend *b, mwl_diag *diag); /* a write transaction */
    int (*commit)(mwl_store_backend *b, mwl_diag *diag);
    int (*rollback)(mwl_store_backend *b);
    int (*savepoint)(mwl_store_backend *b, mwl_diag *diag); /* inside a transaction */
    int (*release)(mwl_store_backend *b, mwl_diag *diag);
    int (*rollback_to)(mwl_store_backend *b); /* and release */

    /* Inserts the row, or replaces the row with the same natural key
     * (*updated true), with all its index entries. */
    int (*put_row)(mwl_store_backend *b, const mwl_sps_index *ix, const char *source, bool *updated,
                   mwl_diag *diag);
    /* Replaces row `id` (data set and index; source kept). When another
     * row already has ix->natural_key, that row is deleted first: the two
     * have become the same SPS. */
    int (*update_row)(mwl_store_backend *b, int64_t id, const mwl_sps_index *ix, mwl_diag *diag);
    /* Row `id`, valid until the next call on the connection; MWL_E_NOTFOUND. */
    int (*row_by_id)(mwl_store_backend *b, int64_t id, mwl_store_row *row, mwl_diag *diag);
    int (*remove)(mwl_store_backend *b, const mwl_filter *f, size_t *removed, mwl_diag *diag);
    int (*expire)(mwl_store_backend *b, const mwl_store_expiry *e, size_t *removed, mwl_diag *diag);
    int (*clear)(mwl_store_backend *b, size_t *removed, mwl_diag *diag);
    int (*count)(mwl_store_backend *b, int64_t *count, mwl_diag *diag);

    /* The intake log (store.h). lookup copies the reply into `arena` and
     * holds no statement open; MWL_E_NOTFOUND. record replaces a record of
     * the same key. */
    int (*intake_lookup)(mwl_store_backend *b, const char *key, mwl_arena *arena, const char **reply,
                         mwl_diag *diag);
    int (*intake_record)(mwl_store_backend *b, const char *key, const char *reply, int64_t now_unix_ms,
                         mwl_diag *diag);
    int (*intake_prune)(mwl_store_backend *b, int64_t before_unix_ms, size_t *removed, mwl_diag *diag);

    /* mwl_store_cursor_next / _pause (store.h); cursor->serial is set. */
    int (*cursor_next)(mwl_store_backend *b, const mwl_filter *f, mwl_store_cursor *c, mwl_store_row *row,
                       mwl_diag *diag);
    void (*cursor_pause)(mwl_store_backend *b);
} mwl_store_ops;

extern const mwl_store_ops mwl_store_sqlite_ops;

/* The store's allocator (never NULL). */
const mwl_mem *mwl_store_mem(const mwl_store *store);
/* The backend connection behind a store (for tests). */
mwl_store_backend *mwl_store_backend_of(mwl_store *store);

/* SQLite only, for tests: the query plan (EXPLAIN QUERY PLAN, one line per
 * row) of the statement mwl_store_cursor_next would run for `f`, seeking
 * from a position or from the start. */
int mwl_store_sqlite_plan(mwl_store_backend *b, const mwl_filter *f, bool positioned, char *out, size_t cap,
                          mwl_diag *diag);

/* Calls `fn` for each "<backend>.key=value" pair of `settings` (see
 * mwl_store_options) naming `backend`, with key and value NUL-terminated.
 * A pair without a backend prefix, or of 128 bytes or more, is
 * MWL_E_INVALID; so is whatever `fn` returns that is not MWL_OK. */
int mwl_store_settings_each(const char *settings, const char *backend,
                            int (*fn)(void *user, const char *key, const char *value, mwl_diag *diag),
                            void *user, mwl_diag *diag);

/* SQLite only, for tests: the virtual machine steps the cursor statements
 * ran since the last call (SQLITE_STMTSTATUS_VM_STEP), a measure of work
 * that does not depend on the machine's speed. */
int64_t mwl_store_sqlite_vm_steps(mwl_store_backend *b);

#endif
