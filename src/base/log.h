/* The log hook: library code never writes to stderr; it calls mwl_log and
 * the program (server, tools) chooses the sink with mwl_log_set_sink. */
#ifndef MWL_BASE_LOG_H
#define MWL_BASE_LOG_H

#include "base/api.h"

#include "base/status.h"

typedef enum mwl_log_level {
    MWL_LOG_ERROR = 0,
    MWL_LOG_WARN = 1,
    MWL_LOG_INFO = 2,
    MWL_LOG_DEBUG = 3,
    MWL_LOG_TRACE = 4
} mwl_log_level;

typedef void (*mwl_log_sink)(void *user, mwl_log_level level, const char *msg);

/* Set once at start-up, before threads start. NULL sink = discard. */
MWL_API void mwl_log_set_sink(mwl_log_sink sink, void *user);
MWL_API void mwl_log_set_level(mwl_log_level max_level);
MWL_API mwl_log_level mwl_log_get_level(void);
MWL_API int mwl_log_enabled(mwl_log_level level);
/* Parses "error|warn|info|debug|trace"; MWL_E_INVALID otherwise. */
MWL_API int mwl_log_level_parse(const char *s, mwl_log_level *out);
MWL_API const char *mwl_log_level_name(mwl_log_level level);

MWL_API void mwl_log(mwl_log_level level, const char *fmt, ...) MWL_PRINTF(2, 3);

#endif
