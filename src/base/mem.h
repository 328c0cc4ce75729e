/* Pluggable allocator (STYLE.md §6): every allocation in mwl goes through a
 * mwl_mem so tests can fail the Nth allocation (out-of-memory runs). */
#ifndef MWL_BASE_MEM_H
#define MWL_BASE_MEM_H

#include "base/api.h"

#include <stddef.h>

typedef struct mwl_mem {
    void *(*malloc_fn)(size_t size, void *user);
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} mwl_mem;

/* The process allocator (malloc/realloc/free). Never NULL. */
MWL_API const mwl_mem *mwl_mem_default(void);

/* NULL `mem` means mwl_mem_default(). Zero sizes are allowed. */
MWL_API void *mwl_mem_alloc(const mwl_mem *mem, size_t size);
MWL_API void *mwl_mem_calloc(const mwl_mem *mem, size_t count, size_t size);
MWL_API void *mwl_mem_realloc(const mwl_mem *mem, void *ptr, size_t size);
MWL_API void mwl_mem_free(const mwl_mem *mem, void *ptr);

/* A test allocator that fails the `fail_at`-th allocation (1-based) and
 * every one after it; fail_at 0 never fails. `count` counts calls. */
typedef struct mwl_mem_failing {
    mwl_mem mem; /* pass &f.mem to the code under test */
    size_t count;
    size_t fail_at;
} mwl_mem_failing;
MWL_API void mwl_mem_failing_init(mwl_mem_failing *f, size_t fail_at);

#endif
