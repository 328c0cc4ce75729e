/* A slower disk, for bench/hl7_bench.sh --slow-sync-us: preloaded into
 * `mwl serve` (LD_PRELOAD), it sleeps MWL_SLOW_SYNC_US microseconds before
 * every fsync and fdatasync, then does the real one. What a durable commit
 * costs on a SAN or a busy virtual disk (2-5 ms) can then be measured on a
 * machine whose disk syncs in a fraction of a millisecond. Bench only:
 * never linked into anything. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fsync(int fd);
int fdatasync(int fd);

static void slow(void)
{
    const char *v = getenv("MWL_SLOW_SYNC_US");
    long us = v ? strtol(v, NULL, 10) : 0;
    if (us <= 0)
        return;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The next definition of `name` (libc's); copied out of dlsym's object
 * pointer as POSIX allows. */
static int (*next_sync(const char *name))(int)
{
    void *sym = dlsym(RTLD_NEXT, name);
    int (*fn)(int) = NULL;
    if (sym)
        memcpy(&fn, &sym, sizeof fn);
    return fn;
}

int fsync(int fd)
{
    int (*real)(int) = next_sync("fsync");
    slow();
    return real ? real(fd) : -1;
}

int fdatasync(int fd)
{
    int (*real)(int) = next_sync("fdatasync");
    slow();
    return real ? real(fd) : -1;
}
