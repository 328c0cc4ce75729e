/* Status codes shared by every mwl module (STYLE.md §5).
 * MWL_OK and two positive "not an error" codes; negative codes are errors,
 * and those at or below MWL_E_FATAL mean the session/object is unusable. */
#ifndef MWL_BASE_STATUS_H
#define MWL_BASE_STATUS_H

#include "base/api.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define MWL_MUST_CHECK __attribute__((warn_unused_result))
#define MWL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MWL_MUST_CHECK
#define MWL_PRINTF(fmt, args)
#endif

enum mwl_status {
    MWL_OK = 0,
    MWL_NEED_MORE = 1, /* a parser needs more bytes; not an error */
    MWL_AGAIN = 2,     /* nothing to report yet; not an error */

    MWL_E_MALFORMED = -1,   /* input violates the encoding rules */
    MWL_E_PROTOCOL = -2,    /* peer violated the protocol (state, sequence) */
    MWL_E_UNSUPPORTED = -3, /* valid but not supported by us */
    MWL_E_LIMIT = -4,       /* a configured bound was hit (size, depth, count) */
    MWL_E_NOTFOUND = -5,    /* looked-up thing does not exist */
    MWL_E_INVALID = -6,     /* caller passed an invalid argument */
    MWL_E_CHARSET = -7,     /* a character cannot be converted */
    MWL_E_IO = -8,          /* file or socket I/O failed (errno in diag) */
    MWL_E_STORE = -9,       /* the database layer failed (message in diag) */
    MWL_E_TIMEOUT = -10,    /* a deadline passed */
    MWL_E_CLOSED = -11,     /* the peer or transport closed */
    MWL_E_CANCELLED = -12,  /* the operation was cancelled */

    MWL_E_FATAL = -100, /* everything at or below is fatal */
    MWL_E_NOMEM = -101,
    MWL_E_INTERNAL = -102
};

/* Returns a static, human-readable name for a status code. */
MWL_API const char *mwl_status_str(int status);

/* True for codes that mean "drop the object/association". */
static inline int mwl_is_fatal(int status)
{
    return status <= MWL_E_FATAL;
}

/* Caller-owned detail for an error: where it happened and why. Filling it
 * never allocates. Every API taking a `mwl_diag *` accepts NULL. */
typedef struct mwl_diag {
    size_t offset; /* byte offset into the input, when meaningful */
    uint32_t tag;  /* (gggg,eeee) of the element concerned, or 0 */
    char msg[128]; /* NUL-terminated message, "" when unset */
} mwl_diag;

MWL_API void mwl_diag_clear(mwl_diag *diag);
/* Formats msg (truncated to fit) and stores offset and tag. NULL-safe. */
MWL_API void mwl_diag_set(mwl_diag *diag, size_t offset, uint32_t tag, const char *fmt, ...) MWL_PRINTF(4, 5);

#endif
