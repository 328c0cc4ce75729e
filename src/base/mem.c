#include "base/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *std_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size ? size : 1);
}
static void *std_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size ? size : 1);
}
static void std_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static const mwl_mem default_mem = {std_malloc, std_realloc, std_free, NULL};

const mwl_mem *mwl_mem_default(void)
{
    return &default_mem;
}

void *mwl_mem_alloc(const mwl_mem *mem, size_t size)
{
    if (!mem)
        mem = &default_mem;
    return mem->malloc_fn(size, mem->user);
}

void *mwl_mem_calloc(const mwl_mem *mem, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = mwl_mem_alloc(mem, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *mwl_mem_realloc(const mwl_mem *mem, void *ptr, size_t size)
{
    if (!mem)
        mem = &default_mem;
    return mem->realloc_fn(ptr, size, mem->user);
}

void mwl_mem_free(const mwl_mem *mem, void *ptr)
{
    if (!ptr)
        return;
    if (!mem)
        mem = &default_mem;
    mem->free_fn(ptr, mem->user);
}

static int failing_should_fail(mwl_mem_failing *f)
{
    f->count++;
    return f->fail_at != 0 && f->count >= f->fail_at;
}
static void *failing_malloc(size_t size, void *user)
{
    return failing_should_fail(user) ? NULL : malloc(size ? size : 1);
}
static void *failing_realloc(void *ptr, size_t size, void *user)
{
    return failing_should_fail(user) ? NULL : realloc(ptr, size ? size : 1);
}

void mwl_mem_failing_init(mwl_mem_failing *f, size_t fail_at)
{
    f->mem.malloc_fn = failing_malloc;
    f->mem.realloc_fn = failing_realloc;
    f->mem.free_fn = std_free;
    f->mem.user = f;
    f->count = 0;
    f->fail_at = fail_at;
}
