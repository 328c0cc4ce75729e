/* The worklist store: an embedded SQLite database (WAL) holding one row per
 * Scheduled Procedure Step — the whole worklist item, encoded, with exactly
 * that SPS — plus indexed columns for the keys modalities filter on.
 * SQL only narrows the candidates; the worklist matcher decides (STYLE.md
 * §13). This module is the only one that includes sqlite3.h.
 *
 * A mwl_store is one database connection: use it from one thread at a time.
 * Several connections (one per server worker) may share a database file. */
#ifndef MWL_STORE_STORE_H
#define MWL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "dicom/dataset.h"

typedef struct mwl_store mwl_store;

typedef struct mwl_store_options {
    bool read_only;      /* open without write access (never creates) */
    int busy_timeout_ms; /* wait for a writer's lock; default 5000 */
    /* Bulk loading (mwl import, mwl demo): a 256 MiB page cache and a WAL
     * checkpoint every 64 MiB instead of every 4 MiB, so the random-order
     * index pages of a large import are written back once, not at every
     * checkpoint. Readers (the server) see commits as usual. */
    bool bulk;
} mwl_store_options;

/* Opens (creating when absent, unless read_only) the database at `path`,
 * switches it to WAL, and applies pending schema migrations. `opt` NULL =
 * defaults. Returns MWL_OK, MWL_E_STORE (message in diag), MWL_E_UNSUPPORTED
 * (a database written by a newer mwl), MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_store_open(const char *path, const mwl_store_options *opt, mwl_store **out,
                                  mwl_diag *diag);
void mwl_store_free(mwl_store *store); /* NULL-safe; ends any open cursor */

/* The schema version the database is at (PRAGMA user_version). */
int mwl_store_schema_version(mwl_store *store);

/* ---- writing ----------------------------------------------------------- */

/* Transactions. Writes outside a transaction each commit alone. */
MWL_MUST_CHECK int mwl_store_begin(mwl_store *store, mwl_diag *diag);
MWL_MUST_CHECK int mwl_store_commit(mwl_store *store, mwl_diag *diag);
int mwl_store_rollback(mwl_store *store);

typedef struct mwl_store_put_stats {
    size_t inserted; /* SPS rows added */
    size_t updated;  /* SPS rows replaced (same SPS imported again) */
} mwl_store_put_stats;

/* Stores a worklist item: one row per item of its Scheduled Procedure Step
 * Sequence (0040,0100). An SPS already stored (same Study Instance UID /
 * Accession Number, Requested Procedure ID and SPS ID; or, without SPS ID,
 * identical content) is replaced. `source` (may be NULL) is kept for
 * reference. `worklist_aet` (may be NULL) names the worklist the item
 * belongs to for --per-called-aet serving (a wlmscpfs tree's AE folder).
 * Stats are added to `*stats` (may be NULL).
 * Every row is built and encoded before anything is written, so on any
 * status but MWL_E_STORE nothing was written; after MWL_E_STORE the
 * enclosing transaction must be rolled back (the item may be half written).
 * Returns MWL_OK, MWL_E_INVALID (no SPS sequence or an empty one; diag says
 * why), MWL_E_STORE, MWL_E_NOMEM, or a codec/charset error for a value that
 * cannot be encoded or decoded. */
MWL_MUST_CHECK int mwl_store_put_item(mwl_store *store, const mwl_ds *item, const char *source,
                                      const char *worklist_aet, mwl_store_put_stats *stats, mwl_diag *diag);

/* ---- finding ----------------------------------------------------------- */

typedef enum mwl_store_match {
    MWL_STORE_ANY = 0, /* no condition */
    MWL_STORE_EXACT,   /* column = value */
    MWL_STORE_PREFIX   /* column starts with value (value non-empty) */
} mwl_store_match;

typedef struct mwl_store_cond {
    mwl_store_match match;
    const char *value; /* UTF-8, trimmed; patient_name is folded by the store as the matcher folds */
} mwl_store_cond;

/* What SQL may narrow on. Every condition must be implied by the query (the
 * candidates must be a superset of the matches). */
typedef struct mwl_store_filter {
    mwl_store_cond station_aet; /* any of the SPS's station AE titles */
    mwl_store_cond modality;
    mwl_store_cond sps_id;
    mwl_store_cond sps_status;
    mwl_store_cond patient_id;
    mwl_store_cond patient_name; /* a PN key group's literal text, normalised (any group may match) */
    mwl_store_cond accession;
    mwl_store_cond study_uid;
    mwl_store_cond requested_procedure_id;
    mwl_store_cond worklist_aet; /* the worklist an item was imported into (per called AE title) */
    const char *date_lo;         /* SPS Start Date >= (YYYYMMDD), NULL = open */
    const char *date_hi;         /* SPS Start Date <= (YYYYMMDD), NULL = open */
} mwl_store_filter;

void mwl_store_filter_init(mwl_store_filter *f); /* everything ANY */

typedef struct mwl_store_row {
    int64_t id;
    const uint8_t *dataset; /* Explicit VR Little Endian data set */
    size_t length;
} mwl_store_row;

/* Starts a search (one open search per connection; starting another ends
 * the previous). Rows come in SPS start date/time order. Returns MWL_OK,
 * MWL_E_STORE, MWL_E_INVALID. */
MWL_MUST_CHECK int mwl_store_find_begin(mwl_store *store, const mwl_store_filter *filter, mwl_diag *diag);
/* The next candidate: MWL_OK with *row filled (valid until the next call on
 * this store), MWL_E_NOTFOUND when there are no more, MWL_E_STORE. Rows are
 * read from a cursor: memory does not grow with the number of rows. */
MWL_MUST_CHECK int mwl_store_find_next(mwl_store *store, mwl_store_row *row, mwl_diag *diag);
void mwl_store_find_end(mwl_store *store);

/* Deletes the SPS rows the filter selects (no condition at all is refused
 * with MWL_E_INVALID, to keep "rm everything" explicit: use mwl_store_clear). */
MWL_MUST_CHECK int mwl_store_remove(mwl_store *store, const mwl_store_filter *filter, size_t *removed,
                                    mwl_diag *diag);
MWL_MUST_CHECK int mwl_store_clear(mwl_store *store, size_t *removed, mwl_diag *diag);
/* Number of SPS rows stored. */
MWL_MUST_CHECK int mwl_store_count(mwl_store *store, int64_t *count, mwl_diag *diag);

#endif
