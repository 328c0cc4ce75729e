#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mwl_wbuf_init(mwl_wbuf *w, const mwl_mem *mem)
{
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->limit = 0;
    w->status = MWL_OK;
    w->mem = mem ? mem : mwl_mem_default();
}

void mwl_wbuf_clear(mwl_wbuf *w)
{
    if (!w)
        return;
    mwl_mem_free(w->mem, w->data);
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->status = MWL_OK;
}

uint8_t *mwl_wbuf_reserve(mwl_wbuf *w, size_t n)
{
    if (w->status != MWL_OK)
        return NULL;
    if (n > SIZE_MAX - w->len || (w->limit && w->len + n > w->limit)) {
        w->status = MWL_E_LIMIT;
        return NULL;
    }
    /* Allocate even for n == 0, so the returned pointer is never NULL + 0. */
    if (w->cap - w->len < n || !w->data) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) {
                cap = w->len + n;
                break;
            }
            cap *= 2;
        }
        uint8_t *d = mwl_mem_realloc(w->mem, w->data, cap);
        if (!d) {
            w->status = MWL_E_NOMEM;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    return w->data + w->len;
}

void mwl_wbuf_put(mwl_wbuf *w, const void *p, size_t n)
{
    uint8_t *d = mwl_wbuf_reserve(w, n);
    if (!d)
        return;
    if (n)
        memcpy(d, p, n);
    w->len += n;
}

void mwl_wbuf_put_u8(mwl_wbuf *w, uint8_t v)
{
    mwl_wbuf_put(w, &v, 1);
}

void mwl_wbuf_put_u16le(mwl_wbuf *w, uint16_t v)
{
    uint8_t b[2];
    mwl_store_u16le(b, v);
    mwl_wbuf_put(w, b, 2);
}
void mwl_wbuf_put_u16be(mwl_wbuf *w, uint16_t v)
{
    uint8_t b[2];
    mwl_store_u16be(b, v);
    mwl_wbuf_put(w, b, 2);
}
void mwl_wbuf_put_u32le(mwl_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    mwl_store_u32le(b, v);
    mwl_wbuf_put(w, b, 4);
}
void mwl_wbuf_put_u32be(mwl_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    mwl_store_u32be(b, v);
    mwl_wbuf_put(w, b, 4);
}

void mwl_wbuf_fill(mwl_wbuf *w, uint8_t byte, size_t n)
{
    uint8_t *d = mwl_wbuf_reserve(w, n);
    if (!d)
        return;
    memset(d, byte, n);
    w->len += n;
}

void mwl_wbuf_consume(mwl_wbuf *w, size_t n)
{
    if (n >= w->len) {
        w->len = 0;
        return;
    }
    memmove(w->data, w->data + n, w->len - n);
    w->len -= n;
}

void mwl_wbuf_put_str(mwl_wbuf *w, const char *s)
{
    mwl_wbuf_put(w, s, strlen(s));
}

void mwl_wbuf_printf(mwl_wbuf *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        mwl_wbuf_put(w, tmp, (size_t)n);
        return;
    }
    /* Longer than the stack buffer: format straight into the output. */
    uint8_t *dst = mwl_wbuf_reserve(w, (size_t)n + 1);
    if (!dst)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    w->len += (size_t)n;
}

void mwl_wbuf_put_double(mwl_wbuf *w, double v)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    mwl_wbuf_put_str(w, tmp);
}
