#include "base/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

struct mwl_arena_chunk {
    mwl_arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

enum { ARENA_ALIGN = alignof(max_align_t), ARENA_FIRST_CHUNK = 4096, ARENA_MAX_CHUNK = 1 << 20 };

void mwl_arena_init(mwl_arena *arena, const mwl_mem *mem)
{
    arena->mem = mem ? mem : mwl_mem_default();
    arena->head = NULL;
    arena->chunk_size = ARENA_FIRST_CHUNK;
    arena->total = 0;
    arena->limit = 0;
}

void mwl_arena_clear(mwl_arena *arena)
{
    if (!arena)
        return;
    mwl_arena_chunk *c = arena->head;
    while (c) {
        mwl_arena_chunk *next = c->next;
        mwl_mem_free(arena->mem, c);
        c = next;
    }
    arena->head = NULL;
    arena->chunk_size = ARENA_FIRST_CHUNK;
    arena->total = 0;
}

void mwl_arena_reset(mwl_arena *arena)
{
    if (!arena || !arena->head)
        return;
    mwl_arena_chunk *keep = arena->head;
    mwl_arena_chunk *c = keep->next;
    while (c) {
        mwl_arena_chunk *next = c->next;
        arena->total -= sizeof *c + c->size;
        mwl_mem_free(arena->mem, c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

static size_t align_up(size_t n)
{
    return (n + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
}

void *mwl_arena_alloc(mwl_arena *arena, size_t size)
{
    if (size > SIZE_MAX / 2)
        return NULL;
    size_t need = align_up(size ? size : 1);
    mwl_arena_chunk *c = arena->head;
    if (!c || c->size - c->used < need) {
        size_t csize = arena->chunk_size;
        if (need > csize / 4) {
            csize = need; /* big block: a chunk of its own */
        } else if (arena->chunk_size < ARENA_MAX_CHUNK) {
            arena->chunk_size *= 2;
        }
        size_t bytes = sizeof(mwl_arena_chunk) + csize;
        if (arena->limit && arena->total + bytes > arena->limit)
            return NULL;
        mwl_arena_chunk *n = mwl_mem_alloc(arena->mem, bytes);
        if (!n)
            return NULL;
        arena->total += bytes;
        n->size = csize;
        n->used = 0;
        if (c && csize == need && c->size - c->used >= ARENA_FIRST_CHUNK / 4) {
            /* keep the current chunk on top: it still has useful room */
            n->next = c->next;
            c->next = n;
            n->used = need;
            return n->data;
        }
        n->next = c;
        arena->head = n;
        c = n;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

void *mwl_arena_calloc(mwl_arena *arena, size_t size)
{
    void *p = mwl_arena_alloc(arena, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void *mwl_arena_memdup(mwl_arena *arena, const void *src, size_t size)
{
    void *p = mwl_arena_alloc(arena, size);
    if (p && size)
        memcpy(p, src, size);
    return p;
}

char *mwl_arena_strndup(mwl_arena *arena, const char *src, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = mwl_arena_alloc(arena, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, src, len);
    p[len] = '\0';
    return p;
}

void *mwl_arena_realloc(mwl_arena *arena, void *old, size_t old_size, size_t new_size)
{
    mwl_arena_chunk *c = arena->head;
    if (old && c) {
        unsigned char *o = old;
        size_t old_need = align_up(old_size ? old_size : 1);
        if (o + old_need == c->data + c->used && o >= c->data) {
            size_t start = (size_t)(o - c->data);
            size_t new_need = align_up(new_size ? new_size : 1);
            if (new_need <= c->size - start) {
                c->used = start + new_need;
                return old;
            }
        }
    }
    if (new_size <= old_size && old)
        return old;
    void *p = mwl_arena_alloc(arena, new_size);
    if (p && old && old_size)
        memcpy(p, old, old_size < new_size ? old_size : new_size);
    return p;
}
