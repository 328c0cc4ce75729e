/* Per-message arena (STYLE.md §6): a decoded data set, its elements,
 * sequences and items are carved from one arena and freed in one call. */
#ifndef MWL_BASE_ARENA_H
#define MWL_BASE_ARENA_H

#include "base/api.h"

#include <stddef.h>

#include "base/mem.h"

typedef struct mwl_arena_chunk mwl_arena_chunk;

typedef struct mwl_arena {
    const mwl_mem *mem;
    mwl_arena_chunk *head; /* newest chunk first */
    size_t chunk_size;     /* size of the next ordinary chunk */
    size_t total;          /* bytes obtained from `mem`, for accounting */
    size_t limit;          /* 0 = unlimited; allocation beyond fails */
} mwl_arena;

/* Never fails; allocates nothing until the first mwl_arena_alloc. NULL mem
 * means the default allocator. */
MWL_API void mwl_arena_init(mwl_arena *arena, const mwl_mem *mem);
/* Frees every chunk; the arena can be used again afterwards. NULL-safe. */
MWL_API void mwl_arena_clear(mwl_arena *arena);
/* Forgets every allocation but keeps the newest chunk for the next ones
 * (the others are freed): for an arena emptied and refilled in a loop,
 * where clear would free and malloc a chunk each turn. NULL-safe. */
MWL_API void mwl_arena_reset(mwl_arena *arena);

/* Returns `size` bytes aligned for any type, or NULL when out of memory or
 * past `limit`. The memory lives until mwl_arena_clear. */
MWL_API void *mwl_arena_alloc(mwl_arena *arena, size_t size);
MWL_API void *mwl_arena_calloc(mwl_arena *arena, size_t size);
MWL_API void *mwl_arena_memdup(mwl_arena *arena, const void *src, size_t size);
/* Copies `len` bytes and appends a NUL. */
MWL_API char *mwl_arena_strndup(mwl_arena *arena, const char *src, size_t len);
/* Grows a block most recently returned by this arena in place when it can,
 * else copies it. `old` may be NULL (old_size 0). */
MWL_API void *mwl_arena_realloc(mwl_arena *arena, void *old, size_t old_size, size_t new_size);

#endif
