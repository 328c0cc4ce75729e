/* Whole-file read/write helpers for the tools and the importer. */
#ifndef MWL_BASE_FILE_H
#define MWL_BASE_FILE_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/status.h"

/* Reads a regular file into a new buffer (free with mwl_mem_free(mem, *out)).
 * Files larger than `max_size` (0 = 1 GiB) fail with MWL_E_LIMIT.
 * Returns MWL_OK, MWL_E_IO (errno text in diag), MWL_E_LIMIT, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_file_read(const char *path, const mwl_mem *mem, size_t max_size, uint8_t **out,
                                         size_t *out_len, mwl_diag *diag);
/* Writes atomically: a temporary file in the same folder, then rename, so a
 * reader never sees half a file. With `durable` the data is fsync'ed before
 * the rename (slow for many small files; an export can be re-run instead). */
MWL_API MWL_MUST_CHECK int mwl_file_write(const char *path, const uint8_t *data, size_t len, bool durable,
                                          mwl_diag *diag);

/* An append-only log file (the audit trail): each mwl_file_log_write is one
 * write(2) of whole lines with O_APPEND, so lines from one process never
 * interleave and a reader (or a rotation by rename) never sees half a
 * line. */
typedef struct mwl_file_log mwl_file_log;
/* Opens (creating, mode 0640) `path` for appending. MWL_OK, MWL_E_IO
 * (errno text in diag), MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_file_log_open(const char *path, const mwl_mem *mem, mwl_file_log **out,
                                             mwl_diag *diag);
/* Writes `len` bytes (whole lines) at the end. MWL_OK or MWL_E_IO. */
MWL_API MWL_MUST_CHECK int mwl_file_log_write(mwl_file_log *log, const void *data, size_t len);
/* Closes and opens the path again (after a rotation renamed the file). On
 * failure the old file stays open: MWL_E_IO with diag. */
MWL_API MWL_MUST_CHECK int mwl_file_log_reopen(mwl_file_log *log, mwl_diag *diag);
MWL_API const char *mwl_file_log_path(const mwl_file_log *log);
MWL_API void mwl_file_log_close(mwl_file_log *log); /* NULL-safe */

#endif
