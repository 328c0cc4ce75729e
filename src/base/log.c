#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static mwl_log_sink log_sink;
static void *log_user;
static mwl_log_level log_level = MWL_LOG_INFO;

void mwl_log_set_sink(mwl_log_sink sink, void *user)
{
    log_sink = sink;
    log_user = user;
}

void mwl_log_set_level(mwl_log_level max_level)
{
    log_level = max_level;
}
mwl_log_level mwl_log_get_level(void)
{
    return log_level;
}
int mwl_log_enabled(mwl_log_level level)
{
    return log_sink && level <= log_level;
}

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

const char *mwl_log_level_name(mwl_log_level level)
{
    return (unsigned)level < 5 ? level_names[level] : "?";
}

int mwl_log_level_parse(const char *s, mwl_log_level *out)
{
    for (unsigned i = 0; i < 5; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (mwl_log_level)i;
            return MWL_OK;
        }
    }
    return MWL_E_INVALID;
}

void mwl_log(mwl_log_level level, const char *fmt, ...)
{
    if (!mwl_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_sink(log_user, level, msg);
}
