#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

static mwl_log_sink log_sink;
static void *log_user;
/* Atomic: a SIGHUP reload changes it on the loop thread while workers
 * log. The sink is set once, before threads start. */
static atomic_int log_level = MWL_LOG_INFO;

void mwl_log_set_sink(mwl_log_sink sink, void *user)
{
    log_sink = sink;
    log_user = user;
}

void mwl_log_set_level(mwl_log_level max_level)
{
    atomic_store_explicit(&log_level, (int)max_level, memory_order_relaxed);
}
mwl_log_level mwl_log_get_level(void)
{
    return (mwl_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}
int mwl_log_enabled(mwl_log_level level)
{
    return log_sink && (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
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

/* ---- escaping (log.h) ------------------------------------------------------- */

bool mwl_log_control_point(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The character at s[0] (len >= 1 bytes) as it appears in a log line:
 * `tok` gets its bytes or its escape (at most 6), *tok_len their number.
 * Returns the input bytes it takes. A backslash is copied here; the
 * caller decides whether it must be doubled. */
static size_t escape_one(const uint8_t *s, size_t len, char tok[6], size_t *tok_len)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t c = s[0];
    if (c >= 0x20 && c < 0x7F) {
        tok[0] = (char)c;
        *tok_len = 1;
        return 1;
    }
    uint32_t cp = 0;
    size_t n = c < 0x80 ? 0 : mwl_utf8_decode(s, len, &cp);
    if (n == 0) { /* a C0 control, DEL, or a byte that is not well-formed UTF-8 */
        tok[0] = '\\', tok[1] = 'x', tok[2] = hex[c >> 4], tok[3] = hex[c & 15];
        *tok_len = 4;
        return 1;
    }
    if (mwl_log_control_point(cp)) {
        tok[0] = '\\', tok[1] = 'u';
        for (int i = 0; i < 4; i++)
            tok[2 + i] = hex[(cp >> (12 - 4 * i)) & 15];
        *tok_len = 6;
        return n;
    }
    memcpy(tok, s, n);
    *tok_len = n;
    return n;
}

size_t mwl_log_escape(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t i = 0, o = 0;
    while (i < len) {
        char tok[6];
        size_t tok_len;
        size_t used = escape_one(s + i, len - i, tok, &tok_len);
        if (s[i] == '\\') {
            /* Doubled where a reader could take it for the start of an
             * escape: what follows begins with a backslash ("\\", an
             * escaped character), is 'x' or 'u', or nothing (a sink may
             * append text). */
            bool doubled = i + 1 == len || s[i + 1] == 'x' || s[i + 1] == 'u' || s[i + 1] == '\\';
            if (!doubled) {
                char next[6];
                size_t next_len;
                (void)escape_one(s + i + 1, len - i - 1, next, &next_len);
                doubled = next[0] == '\\';
            }
            if (doubled)
                tok[1] = '\\', tok_len = 2;
        }
        if (o + tok_len >= cap)
            break;
        memcpy(out + o, tok, tok_len);
        o += tok_len;
        i += used;
    }
    if (cap)
        out[o] = '\0';
    if (out_len)
        *out_len = o;
    return i;
}

void mwl_log(mwl_log_level level, const char *fmt, ...)
{
    if (!mwl_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    bool cut = len >= sizeof msg;
    if (cut) {
        /* vsnprintf cut it anywhere: drop a last multi-byte character, which
         * may be incomplete, rather than show its bytes as escapes */
        len = sizeof msg - 1;
        size_t tail = 0;
        while (tail < 3 && tail < len && ((uint8_t)msg[len - 1 - tail] & 0xC0) == 0x80)
            tail++;
        if (tail < len && (uint8_t)msg[len - 1 - tail] >= 0xC0)
            len -= tail + 1;
    }
    char line[sizeof msg];
    size_t line_len;
    if (mwl_log_escape(msg, len, line, sizeof line, &line_len) < len)
        cut = true;
    if (cut && line_len + 3 >= sizeof line) /* again, leaving room for the "..." */
        (void)mwl_log_escape(msg, len, line, sizeof line - 3, &line_len);
    if (cut)
        memcpy(line + line_len, "...", 4);
    log_sink(log_user, level, line);
}
