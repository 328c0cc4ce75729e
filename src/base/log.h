/* The log hook: library code never writes to stderr; it calls mwl_log and
 * the program (server, tools) chooses the sink with mwl_log_set_sink. */
#ifndef MWL_BASE_LOG_H
#define MWL_BASE_LOG_H

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
void mwl_log_set_sink(mwl_log_sink sink, void *user);
void mwl_log_set_level(mwl_log_level max_level);
mwl_log_level mwl_log_get_level(void);
int mwl_log_enabled(mwl_log_level level);
/* Parses "error|warn|info|debug|trace"; MWL_E_INVALID otherwise. */
int mwl_log_level_parse(const char *s, mwl_log_level *out);
const char *mwl_log_level_name(mwl_log_level level);

void mwl_log(mwl_log_level level, const char *fmt, ...) MWL_PRINTF(2, 3);

#endif
