/* The log hook: library code never writes to stderr; it calls mwl_log and
 * the program (server, tools) chooses the sink with mwl_log_set_sink.
 *
 * Log lines carry what peers send (AE titles, query values, error
 * comments), so mwl_log escapes every message before the sink sees it
 * (mwl_log_escape): a message is always one line of well-formed UTF-8
 * that cannot move the cursor, change colours or start a fake line. */
#ifndef MWL_BASE_LOG_H
#define MWL_BASE_LOG_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum mwl_log_level {
    MWL_LOG_ERROR = 0,
    MWL_LOG_WARN = 1,
    MWL_LOG_INFO = 2,
    MWL_LOG_DEBUG = 3,
    MWL_LOG_TRACE = 4
} mwl_log_level;

typedef void (*mwl_log_sink)(void *user, mwl_log_level level, const char *msg);

/* The sink is set once at start-up, before threads start (NULL =
 * discard); the level may change at any time (atomic). */
MWL_API void mwl_log_set_sink(mwl_log_sink sink, void *user);
MWL_API void mwl_log_set_level(mwl_log_level max_level);
MWL_API mwl_log_level mwl_log_get_level(void);
MWL_API int mwl_log_enabled(mwl_log_level level);
/* Parses "error|warn|info|debug|trace"; MWL_E_INVALID otherwise. */
MWL_API int mwl_log_level_parse(const char *s, mwl_log_level *out);
MWL_API const char *mwl_log_level_name(mwl_log_level level);

/* Formats a message (at most 1023 bytes; a longer one is cut at a
 * character and ends in "..."), escapes it with mwl_log_escape and hands
 * it to the sink. */
MWL_API void mwl_log(mwl_log_level level, const char *fmt, ...) MWL_PRINTF(2, 3);

/* Escapes `len` bytes of text (untrusted: any bytes) for one log line:
 *   - bytes 00-1F and 7F (C0 controls: CR, LF, ESC, TAB, NUL, ...)  -> \xNN
 *   - bytes that are not well-formed UTF-8 (a Latin-1 name, a
 *     truncated or overlong sequence), one at a time                -> \xNN
 *   - code points that control a terminal or the text's direction:
 *     C1 controls U+0080-U+009F (U+009B is CSI), the line and
 *     paragraph separators U+2028/U+2029, the bidirectional
 *     embeddings, overrides and isolates U+202A-U+202E, U+2066-U+2069 -> \uNNNN
 *   - a backslash where it could be read as the start of an escape
 *     (before 'x', 'u', another backslash, an escaped character, or
 *     at the end)                                                    -> \\ (two)
 * (NN and NNNN in lower-case hex). Everything else is copied: printable
 * ASCII, UTF-8 text (names in any script) and a lone backslash, so
 * DICOM's multi-value "CT\MR" stays as it is. The result can be read
 * back without ambiguity: "\\" is one backslash, "\xNN" a byte,
 * "\uNNNN" a code point, and any other backslash is itself.
 *
 * Writes at most cap - 1 bytes and a NUL to `out` (cap >= 1), never
 * cutting an escape or a character; *out_len (may be NULL) gets the
 * bytes written. Returns the number of input bytes escaped: `len` when
 * everything fit. */
MWL_API size_t mwl_log_escape(const char *in, size_t len, char *out, size_t cap, size_t *out_len);

/* True for the code points mwl_log_escape writes as \uNNNN because they
 * steer a terminal or the direction of text: C1 controls, U+2028/2029 and
 * the bidirectional embeddings, overrides and isolates. Other writers of
 * text meant for people (the audit trail) escape the same. */
MWL_API bool mwl_log_control_point(uint32_t cp);

#endif
