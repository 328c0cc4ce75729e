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

#endif
