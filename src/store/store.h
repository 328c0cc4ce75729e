/* The worklist store: one row per Scheduled Procedure Step -- the whole
 * worklist item, encoded, with exactly that SPS in (0040,0100) -- plus the
 * indexed values of worklist/ (mwl_sps_index) that queries narrow on. The
 * store only narrows the candidates; the worklist matcher decides
 * (STYLE.md §13).
 *
 * This is the one interface of the module. Behind it sit backends, each a
 * table of operations (store_int.h) in a file of its own: SQLite
 * (sqlite.c, the only file that includes sqlite3.h) is the first.
 * mwl_store_open picks the backend from the target. What a row's index
 * holds and which rows a query may skip is decided in worklist/ (narrow.c),
 * so every backend narrows the same way.
 *
 * A mwl_store is one database connection: use it from one thread at a
 * time. Several connections (one per server worker) may share a database.
 * Every writing operation is one transaction: it commits alone, or, inside
 * a batch (mwl_store_begin .. mwl_store_commit), joins the batch. Inside a
 * batch a failed operation undoes only itself (a savepoint) and the batch
 * goes on -- except mwl_store_put_item after MWL_E_STORE or MWL_E_NOMEM:
 * it joins without a savepoint (one per item would double the cost of a
 * bulk import), so roll the batch back then. A put fails for any other
 * reason before it writes anything. */
#ifndef MWL_STORE_STORE_H
#define MWL_STORE_STORE_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/dataset.h"
#include "worklist/worklist.h"

typedef struct mwl_store mwl_store;

typedef struct mwl_store_options {
    bool read_only;     /* open without write access (never creates, never migrates) */
    const mwl_mem *mem; /* allocator for the store's own memory; NULL = default */
    /* Settings only one backend understands, as "backend.key=value" pairs
     * separated by ',' or blanks; a backend ignores the other backends'
     * pairs and refuses keys of its own it does not know (MWL_E_INVALID).
     * NULL = none. SQLite ("sqlite."):
     *   busy_timeout_ms=N  wait up to N ms for another writer's lock (default 5000)
     *   bulk=1             bulk loading (mwl import, mwl demo): a 256 MiB page
     *                      cache and a WAL checkpoint every 64 MiB instead of
     *                      every 4 MiB, so the random-order index pages of a
     *                      large import are written back once. Readers see
     *                      commits as usual.
     *   synchronous=full|normal
     *                      when a commit is on disk (default normal). normal:
     *                      every commit is atomic and the database consistent
     *                      after a crash, but the last commits before a power
     *                      loss may be rolled back. full: the WAL is synced
     *                      at every commit, so a commit that returned
     *                      survives a power loss -- for an intake that
     *                      acknowledges to its sender after the commit (the
     *                      HL7 feed opens its connection so). */
    const char *settings;
} mwl_store_options;

/* Opens the database `target` (created when absent, unless read_only) and
 * applies pending schema migrations. The backend comes from the target:
 * "postgresql://..." or "postgres://..." names PostgreSQL (not built yet:
 * MWL_E_UNSUPPORTED), anything else is a SQLite database file. `opt` NULL =
 * defaults. Returns MWL_OK, MWL_E_STORE (message in diag), MWL_E_UNSUPPORTED
 * (a backend not built, a database written by a newer mwl, or -- read-only
 * -- one at an older schema version that must first be opened for
 * writing), MWL_E_INVALID (bad settings), MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_store_open(const char *target, const mwl_store_options *opt, mwl_store **out,
                                          mwl_diag *diag);
MWL_API void mwl_store_free(mwl_store *store); /* NULL-safe; rolls back an open batch */

/* "sqlite" */
MWL_API const char *mwl_store_backend_name(const mwl_store *store);
/* The schema version the database is at (for SQLite, PRAGMA user_version). */
MWL_API int mwl_store_schema_version(mwl_store *store);

/* ---- batches ------------------------------------------------------------- */

/* A batch groups writes into one transaction (e.g. 5000 imported items).
 * mwl_store_begin takes the write lock now, so a busy database is reported
 * here rather than half-way through. Operations inside a batch are each
 * atomic (savepoints). Returns MWL_OK, MWL_E_STORE, MWL_E_INVALID (already
 * in a batch, or read-only). */
MWL_API MWL_MUST_CHECK int mwl_store_begin(mwl_store *store, mwl_diag *diag);
/* Commit and rollback also end the savepoints still open (their work is
 * committed, or undone, with the batch). */
MWL_API MWL_MUST_CHECK int mwl_store_commit(mwl_store *store, mwl_diag *diag);
MWL_API int mwl_store_rollback(mwl_store *store);
MWL_API bool mwl_store_in_batch(const mwl_store *store);

/* Savepoints inside a batch, for work that must be all or nothing while
 * the batch holds other work: one HL7 message's puts, status changes and
 * patient updates, in a group commit of many messages. They nest. Every
 * operation works inside one as inside the batch (each atomic by itself;
 * after mwl_store_put_item's or mwl_store_intake_record's MWL_E_STORE or
 * MWL_E_NOMEM, rolling back to the enclosing savepoint is enough -- the
 * batch goes on).
 * mwl_store_savepoint opens one: MWL_OK, MWL_E_INVALID (no batch open),
 * MWL_E_STORE. mwl_store_release keeps the work since the innermost open
 * savepoint in the batch and ends that savepoint: MWL_OK, MWL_E_INVALID
 * (none open), MWL_E_STORE (it stays open: roll back to it).
 * mwl_store_rollback_to undoes that work and ends the savepoint: MWL_OK,
 * MWL_E_INVALID (none open), MWL_E_STORE (roll the batch back). */
MWL_API MWL_MUST_CHECK int mwl_store_savepoint(mwl_store *store, mwl_diag *diag);
MWL_API MWL_MUST_CHECK int mwl_store_release(mwl_store *store, mwl_diag *diag);
MWL_API int mwl_store_rollback_to(mwl_store *store);

/* ---- put ----------------------------------------------------------------- */

typedef struct mwl_store_put_stats {
    size_t inserted; /* SPS rows added */
    size_t updated;  /* SPS rows replaced (same SPS stored again) */
} mwl_store_put_stats;

/* Stores a worklist item: one row per item of its Scheduled Procedure Step
 * Sequence (0040,0100). An SPS already stored (the same natural key, see
 * mwl_sps_index) is replaced. `source` (may be NULL) is kept for
 * reference. `worklist_aet` (may be NULL) names the worklist the item
 * belongs to for --per-called-aet serving (a wlmscpfs tree's AE folder).
 * Stats are added to `*stats` (may be NULL). The item is first checked
 * with mwl_worklist_check_item(MWL_CHECK_LENIENT), whatever the caller
 * checked before, so multi-valued keys of VM 1, undecodable text and bad
 * dates are refused here for every intake. All or nothing: every row is
 * built before anything is written, so on any error but MWL_E_STORE and
 * MWL_E_NOMEM nothing was written and an enclosing batch goes on; after
 * those two, outside a batch the item was rolled back, inside one roll the
 * batch back. Returns MWL_OK, MWL_E_INVALID (refused: diag says why and
 * names the element; read-only store), MWL_E_STORE, MWL_E_NOMEM, or a
 * codec error for an item that cannot be encoded. */
MWL_API MWL_MUST_CHECK int mwl_store_put_item(mwl_store *store, const mwl_ds *item, const char *source,
                                              const char *worklist_aet, mwl_store_put_stats *stats,
                                              mwl_diag *diag);

/* ---- finding ------------------------------------------------------------- */

/* The filter is worklist/'s (mwl_filter_from_query); these names are kept
 * for existing callers. */
typedef mwl_filter mwl_store_filter;
typedef mwl_filter_cond mwl_store_cond;
typedef mwl_filter_match mwl_store_match;
#define MWL_STORE_ANY MWL_FILTER_ANY
#define MWL_STORE_EXACT MWL_FILTER_EXACT
#define MWL_STORE_PREFIX MWL_FILTER_PREFIX
MWL_API void mwl_store_filter_init(mwl_store_filter *f); /* = mwl_filter_init */

typedef struct mwl_store_row {
    int64_t id;
    const uint8_t *dataset; /* Explicit VR Little Endian data set */
    size_t length;
    const char *worklist_aet; /* the worklist it was stored into; NULL = none */
} mwl_store_row;

/* A keyset cursor: where a walk through the rows a filter selects has got
 * to, in caller storage. Rows come in (SPS start date, start time, id)
 * order; the cursor records the last row returned, so the walk can stop at
 * any time (mwl_store_cursor_pause), even move to another connection to
 * the same database, and go on from there: rows are then read by position,
 * not from an open statement. A row added or changed behind the position
 * is not seen, one ahead of it is. Fields are private. */
typedef struct mwl_store_cursor {
    uint64_t serial; /* identity while a connection keeps its statement open */
    int64_t last_id;
    char last_date[32];
    char last_time[32];
    bool started;
    bool exhausted;
    /* Public, set after init (NULL = never): asked every 64 rows the walk
     * passes over without returning (rows a per-row condition rejects);
     * true makes mwl_store_cursor_next stop with MWL_AGAIN, the position at
     * the last row passed over. So a walk through many rejected rows still
     * gives its thread back at a time budget, a cancel or a deadline. */
    bool (*yield)(void *user);
    void *yield_user;
} mwl_store_cursor;

/* Never fails. A cursor needs no clean-up of its own. */
MWL_API void mwl_store_cursor_init(mwl_store_cursor *cursor);

/* The next row `filter` selects after the cursor's position: MWL_OK with
 * *row filled (valid until the next call on this store), MWL_E_NOTFOUND
 * when there are no more (the cursor is then exhausted), MWL_AGAIN when the
 * cursor's yield said so before a row was found (call again to go on),
 * MWL_E_STORE, MWL_E_INVALID (more than MWL_FILTER_EXCLUDE_MAX excluded
 * statuses). Pass
 * the same filter on every call of one cursor. When the connection's open
 * statement is this cursor's, it steps on; otherwise (first call, another
 * cursor used the connection since, or a pause) it seeks to the position
 * first, which costs a search of the index, not a scan of what came before.
 * Many cursors can thus share one connection, one step at a time. */
MWL_API MWL_MUST_CHECK int mwl_store_cursor_next(mwl_store *store, const mwl_filter *filter,
                                                 mwl_store_cursor *cursor, mwl_store_row *row,
                                                 mwl_diag *diag);
/* Ends the connection's open statement (no read transaction stays open,
 * so a writer's checkpoint is not held back); rows returned before are no
 * longer valid. The next mwl_store_cursor_next seeks. Call it before
 * waiting for anything (the network, a client reading slowly). */
MWL_API void mwl_store_cursor_pause(mwl_store *store);

/* Deprecated: one search per connection through an internal cursor (the
 * filter is copied), never paused. Use a mwl_store_cursor. Rows come in
 * the cursor's order. find_begin returns MWL_OK or MWL_E_NOMEM; find_next
 * as mwl_store_cursor_next; find_end pauses. */
MWL_API MWL_MUST_CHECK int mwl_store_find_begin(mwl_store *store, const mwl_filter *filter, mwl_diag *diag);
MWL_API MWL_MUST_CHECK int mwl_store_find_next(mwl_store *store, mwl_store_row *row, mwl_diag *diag);
MWL_API void mwl_store_find_end(mwl_store *store);

/* Number of SPS rows stored. */
MWL_API MWL_MUST_CHECK int mwl_store_count(mwl_store *store, int64_t *count, mwl_diag *diag);

/* ---- one SPS by its natural key -------------------------------------------- */

/* The parts of an SPS's identity (mwl_sps_index.natural_key), as stored
 * (trimmed UTF-8). NULL or "" = not given. sps_id and one of study_uid or
 * accession are needed; the others narrow further (the same SPS may be
 * stored in several per-AE worklists). An SPS stored without SPS ID (its
 * content is its identity) cannot be referred to. */
typedef struct mwl_sps_ref {
    const char *study_uid;
    const char *accession;
    const char *sps_id;
    const char *requested_procedure_id;
    const char *worklist_aet;
} mwl_sps_ref;

/* The stored row `ref` names, decoded into `arena` (*out: a worklist item
 * with one SPS item). `id` (may be NULL) gets the row id. Returns MWL_OK,
 * MWL_E_NOTFOUND, MWL_E_INVALID (ref lacks the needed parts, or names
 * several rows: give more parts), MWL_E_STORE, MWL_E_NOMEM,
 * MWL_E_MALFORMED (a stored row that does not decode). */
MWL_API MWL_MUST_CHECK int mwl_store_get(mwl_store *store, const mwl_sps_ref *ref, mwl_arena *arena,
                                         mwl_ds **out, int64_t *id, mwl_diag *diag);

/* Sets Scheduled Procedure Step Status (0040,0020) of every row `ref`
 * names (stored data set and index) to `status` (a CS value such as
 * "STARTED", "COMPLETED"; "" removes it). `updated` (may be NULL) gets the
 * number of rows. One transaction. Returns MWL_OK, MWL_E_NOTFOUND,
 * MWL_E_INVALID (ref, status not a CS value, read-only), MWL_E_STORE,
 * MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_store_set_status(mwl_store *store, const mwl_sps_ref *ref, const char *status,
                                                size_t *updated, mwl_diag *diag);

/* ---- patients -------------------------------------------------------------- */

/* Replaces demographics in every stored item of one patient: each element
 * of `demographics` (top level; Patient's Name, Birth Date, Sex, Medical
 * Alerts, ...: group 0010 except Patient ID and Issuer of Patient ID, and
 * Special Needs (0038,0050), Patient State (0038,0500), Confidentiality
 * Constraint (0040,3001)) replaces the item's, a zero-length one makes it
 * empty. Text in another character set than the item's is carried over by
 * re-encoding the item in ISO_IR 192. The patient is `patient_id` with
 * `issuer` (Issuer of Patient ID; NULL = any issuer). `updated` (may be
 * NULL) gets the number of SPS rows changed; none is no error. One
 * transaction. Returns MWL_OK, MWL_E_INVALID (a key that is no
 * demographic, an item the change would make invalid -- diag says why --,
 * read-only), MWL_E_CHARSET, MWL_E_STORE, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_store_patient_update(mwl_store *store, const char *patient_id,
                                                    const char *issuer, const mwl_ds *demographics,
                                                    size_t *updated, mwl_diag *diag);
/* Moves every item of patient `old_id`/`old_issuer` (NULL = any) to
 * `new_id`/`new_issuer` (NULL or "" = none), applying `demographics`
 * (may be NULL) as mwl_store_patient_update does. IDs are UTF-8; an item
 * whose character set cannot hold them is re-encoded in ISO_IR 192. One
 * transaction. Returns as mwl_store_patient_update. */
MWL_API MWL_MUST_CHECK int mwl_store_patient_merge(mwl_store *store, const char *old_id,
                                                   const char *old_issuer, const char *new_id,
                                                   const char *new_issuer, const mwl_ds *demographics,
                                                   size_t *updated, mwl_diag *diag);

/* ---- removing -------------------------------------------------------------- */

/* Deletes the SPS rows the filter selects, all or none. A filter without
 * any condition is refused with MWL_E_INVALID, to keep "remove everything"
 * explicit (mwl_store_clear). Returns MWL_OK, MWL_E_INVALID, MWL_E_STORE. */
MWL_API MWL_MUST_CHECK int mwl_store_remove(mwl_store *store, const mwl_filter *filter, size_t *removed,
                                            mwl_diag *diag);
MWL_API MWL_MUST_CHECK int mwl_store_clear(mwl_store *store, size_t *removed, mwl_diag *diag);

/* Which SPS rows mwl_store_expire removes: those scheduled before
 * `before_date` (YYYYMMDD; rows without a start date are kept) and/or
 * whose status is one of `statuses` -- with statuses, optionally only
 * those whose status was set before `changed_before_unix_ms` ("finished
 * more than H hours ago": the store keeps when each row's status last
 * changed, by mwl_store_set_status or a put that changed it; a row's
 * first status counts from its insertion). All the conditions given must
 * hold; at least one of before_date and statuses. */
typedef struct mwl_store_expiry {
    const char *before_date;        /* NULL = any date */
    const char *const *statuses;    /* e.g. {"COMPLETED", "DISCONTINUED"}; at most 32 */
    size_t status_count;            /* 0 = any status */
    int64_t changed_before_unix_ms; /* 0 = any time; needs statuses */
} mwl_store_expiry;

/* One transaction. Returns MWL_OK, MWL_E_INVALID (no condition, a date
 * that is not YYYYMMDD, a time without statuses, read-only), MWL_E_STORE. */
MWL_API MWL_MUST_CHECK int mwl_store_expire(mwl_store *store, const mwl_store_expiry *expiry, size_t *removed,
                                            mwl_diag *diag);

/* ---- the intake log ----------------------------------------------------------- */

/* Messages already applied by an intake (the HL7 order feed: key = sender
 * and MSH-10 control ID, reply = the ACK sent), so that a retransmission
 * after a lost ACK is answered with the same ACK and not applied twice,
 * also after a restart. Record in the batch (or savepoint) that applies the
 * message: the record is then durable exactly when the message's effects
 * are. Keys and replies are text (a few KiB at most is the intended size).
 *
 * mwl_store_intake_lookup: an indexed point query. MWL_OK with *reply (a
 * copy in `arena`), MWL_E_NOTFOUND, MWL_E_INVALID (key NULL or ""),
 * MWL_E_STORE, MWL_E_NOMEM. Inside a batch it sees the batch's records.
 * mwl_store_intake_record: records key -> reply, replacing a record of the
 * same key, stamped with the current wall-clock time; joins the open batch
 * (without a savepoint of its own: after MWL_E_STORE roll back the
 * enclosing savepoint or the batch), or is a transaction of its own.
 * MWL_OK, MWL_E_INVALID (key NULL or "", reply NULL, read-only),
 * MWL_E_STORE.
 * mwl_store_intake_prune: removes the records made before
 * `before_unix_ms`; `removed` (may be NULL) gets how many. One transaction
 * (a savepoint in a batch). MWL_OK, MWL_E_INVALID (read-only), MWL_E_STORE. */
MWL_API MWL_MUST_CHECK int mwl_store_intake_lookup(mwl_store *s, const char *key, mwl_arena *arena,
                                                   const char **reply, mwl_diag *diag);
MWL_API MWL_MUST_CHECK int mwl_store_intake_record(mwl_store *s, const char *key, const char *reply,
                                                   mwl_diag *diag);
MWL_API MWL_MUST_CHECK int mwl_store_intake_prune(mwl_store *s, int64_t before_unix_ms, size_t *removed,
                                                  mwl_diag *diag);

/* ---- importing: batched intake with a durability report --------------------- */

typedef struct mwl_importer mwl_importer;

typedef struct mwl_import_stats {
    size_t items;    /* items committed */
    size_t inserted; /* SPS rows added by them */
    size_t updated;  /* SPS rows they replaced */
} mwl_import_stats;

typedef struct mwl_import_options {
    size_t batch_size; /* items per transaction; 0 = 5000 */
    uint64_t batch_ms; /* commit an open batch once it is this old (checked at each add); 0 = 1000 */
    unsigned check;    /* mwl_worklist_check_item flags (MWL_CHECK_LENIENT for mwl import --force) */
    /* Called after each commit with the `source` of every item it made
     * durable, in the order added (the strings live until the call
     * returns). NULL = not told. */
    void (*on_commit)(void *user, const char *const *sources, size_t count);
    void *user;
    uint64_t (*now_ms)(void *user); /* a monotonic clock in ms; NULL = CLOCK_MONOTONIC */
} mwl_import_options;

/* An importer on `store` (which must not be in a batch, and outlives the
 * importer). `opt` NULL = defaults. Returns MWL_OK, MWL_E_INVALID,
 * MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_importer_new(mwl_store *store, const mwl_import_options *opt,
                                            mwl_importer **out);
/* Checks `item` (mwl_worklist_check_item with the options' flags) and
 * stores it in the open batch (started when needed), all or nothing;
 * commits the batch when it is full or old enough. `source` is stored with
 * each row and reported by on_commit; `worklist_aet` as for
 * mwl_store_put_item. Returns:
 *   MWL_OK          the item is in the batch (durable once on_commit says so);
 *   MWL_E_INVALID   refused: *problem (may be NULL) says why (code
 *                   MWL_ITEM_OK when the store refused it for another
 *                   reason: diag); the batch goes on;
 *   other non-fatal errors of mwl_store_put_item (the item is not stored;
 *                   the batch goes on);
 *   MWL_E_STORE, MWL_E_NOMEM: the open batch was rolled back (items added
 *                   since the last on_commit are lost) and the importer
 *                   stops: every later call returns MWL_E_STORE. */
MWL_API MWL_MUST_CHECK int mwl_importer_add(mwl_importer *imp, const mwl_ds *item, const char *source,
                                            const char *worklist_aet, mwl_item_problem *problem,
                                            mwl_diag *diag);
/* Commits the open batch now (HL7/REST intake: before acknowledging).
 * Returns MWL_OK, MWL_E_STORE (batch lost, importer stopped). */
MWL_API MWL_MUST_CHECK int mwl_importer_flush(mwl_importer *imp, mwl_diag *diag);
/* What has been committed so far. */
MWL_API void mwl_importer_stats(const mwl_importer *imp, mwl_import_stats *out);
/* Rolls back an uncommitted batch (call mwl_importer_flush first to keep
 * it) and frees. NULL-safe. */
MWL_API void mwl_importer_free(mwl_importer *imp);

#endif
