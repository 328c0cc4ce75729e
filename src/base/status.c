#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mwl_status_str(int status)
{
    switch (status) {
    case MWL_OK: return "ok";
    case MWL_NEED_MORE: return "need more data";
    case MWL_AGAIN: return "again";
    case MWL_E_MALFORMED: return "malformed input";
    case MWL_E_PROTOCOL: return "protocol error";
    case MWL_E_UNSUPPORTED: return "unsupported";
    case MWL_E_LIMIT: return "limit exceeded";
    case MWL_E_NOTFOUND: return "not found";
    case MWL_E_INVALID: return "invalid argument";
    case MWL_E_CHARSET: return "character set conversion failed";
    case MWL_E_IO: return "I/O error";
    case MWL_E_STORE: return "store error";
    case MWL_E_TIMEOUT: return "timed out";
    case MWL_E_CLOSED: return "connection closed";
    case MWL_E_CANCELLED: return "cancelled";
    case MWL_E_NOMEM: return "out of memory";
    case MWL_E_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

void mwl_diag_clear(mwl_diag *diag)
{
    if (!diag)
        return;
    diag->offset = 0;
    diag->tag = 0;
    diag->msg[0] = '\0';
}

void mwl_diag_set(mwl_diag *diag, size_t offset, uint32_t tag, const char *fmt, ...)
{
    if (!diag)
        return;
    diag->offset = offset;
    diag->tag = tag;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag->msg, sizeof diag->msg, fmt, ap);
    va_end(ap);
}
