/* Bounds-checked byte reader, growable byte writer, and endian helpers.
 * Every bounds check of a decoder goes through mwl_rd_need() (STYLE.md §12.6):
 * wire fields are never read by casting bytes to a struct. */
#ifndef MWL_BASE_BUF_H
#define MWL_BASE_BUF_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/status.h"

/* ---- endian loads and stores ------------------------------------------ */

static inline uint16_t mwl_load_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint16_t mwl_load_u16be(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t mwl_load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint32_t mwl_load_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t mwl_load_u64le(const uint8_t *p)
{
    return (uint64_t)mwl_load_u32le(p) | ((uint64_t)mwl_load_u32le(p + 4) << 32);
}
static inline void mwl_store_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void mwl_store_u16be(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void mwl_store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void mwl_store_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void mwl_store_u64le(uint8_t *p, uint64_t v)
{
    mwl_store_u32le(p, (uint32_t)v);
    mwl_store_u32le(p + 4, (uint32_t)(v >> 32));
}

/* ---- reader ------------------------------------------------------------ */

/* A cursor over caller-owned bytes. It never reads past `len`. */
typedef struct mwl_rd {
    const uint8_t *data;
    size_t len;
    size_t pos;
} mwl_rd;

static inline void mwl_rd_init(mwl_rd *rd, const uint8_t *data, size_t len)
{
    rd->data = data;
    rd->len = len;
    rd->pos = 0;
}
static inline size_t mwl_rd_left(const mwl_rd *rd)
{
    return rd->len - rd->pos;
}
/* The single bounds check: true when `n` more bytes are available. */
static inline bool mwl_rd_need(const mwl_rd *rd, size_t n)
{
    return n <= rd->len - rd->pos;
}
static inline const uint8_t *mwl_rd_ptr(const mwl_rd *rd)
{
    return rd->data + rd->pos;
}

/* Each getter returns false, leaving the cursor unchanged, when short. */
static inline bool mwl_rd_skip(mwl_rd *rd, size_t n)
{
    if (!mwl_rd_need(rd, n))
        return false;
    rd->pos += n;
    return true;
}
static inline bool mwl_rd_u8(mwl_rd *rd, uint8_t *v)
{
    if (!mwl_rd_need(rd, 1))
        return false;
    *v = rd->data[rd->pos++];
    return true;
}
static inline bool mwl_rd_u16le(mwl_rd *rd, uint16_t *v)
{
    if (!mwl_rd_need(rd, 2))
        return false;
    *v = mwl_load_u16le(rd->data + rd->pos);
    rd->pos += 2;
    return true;
}
static inline bool mwl_rd_u16be(mwl_rd *rd, uint16_t *v)
{
    if (!mwl_rd_need(rd, 2))
        return false;
    *v = mwl_load_u16be(rd->data + rd->pos);
    rd->pos += 2;
    return true;
}
static inline bool mwl_rd_u32le(mwl_rd *rd, uint32_t *v)
{
    if (!mwl_rd_need(rd, 4))
        return false;
    *v = mwl_load_u32le(rd->data + rd->pos);
    rd->pos += 4;
    return true;
}
static inline bool mwl_rd_u32be(mwl_rd *rd, uint32_t *v)
{
    if (!mwl_rd_need(rd, 4))
        return false;
    *v = mwl_load_u32be(rd->data + rd->pos);
    rd->pos += 4;
    return true;
}
/* Points *p at the next n bytes (no copy) and advances. */
static inline bool mwl_rd_bytes(mwl_rd *rd, size_t n, const uint8_t **p)
{
    if (!mwl_rd_need(rd, n))
        return false;
    *p = rd->data + rd->pos;
    rd->pos += n;
    return true;
}

/* ---- writer ------------------------------------------------------------ */

/* A growable output buffer with a sticky error: after a failed allocation
 * (or exceeding `limit`) every put is a no-op and `status` stays negative,
 * so encoders check once at the end. */
typedef struct mwl_wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unlimited */
    int status;   /* MWL_OK, MWL_E_NOMEM or MWL_E_LIMIT */
    const mwl_mem *mem;
} mwl_wbuf;

MWL_API void mwl_wbuf_init(mwl_wbuf *w, const mwl_mem *mem);
MWL_API void mwl_wbuf_clear(mwl_wbuf *w); /* frees the storage; NULL-safe */
/* Ensures room for `n` more bytes; returns a pointer to them or NULL. The
 * bytes are not counted until the caller adds n to w->len. */
MWL_API uint8_t *mwl_wbuf_reserve(mwl_wbuf *w, size_t n);
MWL_API void mwl_wbuf_put(mwl_wbuf *w, const void *p, size_t n);
MWL_API void mwl_wbuf_put_u8(mwl_wbuf *w, uint8_t v);
MWL_API void mwl_wbuf_put_u16le(mwl_wbuf *w, uint16_t v);
MWL_API void mwl_wbuf_put_u16be(mwl_wbuf *w, uint16_t v);
MWL_API void mwl_wbuf_put_u32le(mwl_wbuf *w, uint32_t v);
MWL_API void mwl_wbuf_put_u32be(mwl_wbuf *w, uint32_t v);
MWL_API void mwl_wbuf_fill(mwl_wbuf *w, uint8_t byte, size_t n);
/* Appends a C string, without its NUL. */
MWL_API void mwl_wbuf_put_str(mwl_wbuf *w, const char *s);
/* Appends printf-formatted text, whatever its length (nothing on an
 * encoding error). */
MWL_API void mwl_wbuf_printf(mwl_wbuf *w, const char *fmt, ...) MWL_PRINTF(2, 3);
/* Appends the shortest "%.*g" (15 to 17 digits) that reads back as `v`. */
MWL_API void mwl_wbuf_put_double(mwl_wbuf *w, double v);
/* Drops the first n bytes (consumed output), moving the rest to the front. */
MWL_API void mwl_wbuf_consume(mwl_wbuf *w, size_t n);

#endif
