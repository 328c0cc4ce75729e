/* Small operating-system helpers: the monotonic clock, fd flags, errno
 * mapping, and counting open fds for leak checks in tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "net/net_int.h"

uint64_t mwl_now_ms(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer on any system we
     * build for; a wall clock here would make timeouts jump with NTP. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mwl_utc_timestamp(char out[MWL_UTC_TIMESTAMP_SIZE])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    /* The fields are in range by gmtime's contract; the casts tell the
     * compiler so (the year fits 4 digits until 9999). */
    snprintf(out, MWL_UTC_TIMESTAMP_SIZE, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

size_t mwl_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

uint64_t mwl_deadline_in(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    uint64_t now = mwl_now_ms();
    if ((uint64_t)timeout_ms > UINT64_MAX - 1 - now)
        return UINT64_MAX - 1;
    return now + (uint64_t)timeout_ms;
}

int mwl_net_fd_setup(int fd, bool nonblocking)
{
    int fdflags = fcntl(fd, F_GETFD);
    if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    int wanted = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0)
        return -1;
    return 0;
}

int mwl_net_errno_status(int err)
{
    /* The peer going away is an ordinary end of an association, not an
     * I/O fault of ours; the UL treats both as "transport closed". */
    if (err == EPIPE || err == ECONNRESET)
        return MWL_E_CLOSED;
    return MWL_E_IO;
}

int mwl_net_count_fds(size_t *count)
{
    if (!count)
        return MWL_E_INVALID;
    static const char *const dirs[] = {"/proc/self/fd", "/dev/fd"};
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir)
            continue;
        size_t n = 0;
        int own = dirfd(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            const char *name = entry->d_name;
            if (name[0] < '0' || name[0] > '9')
                continue; /* "." and ".." */
            int fd = 0;
            for (const char *p = name; *p >= '0' && *p <= '9'; p++)
                fd = fd * 10 + (*p - '0');
            if (fd != own) /* the directory stream's own fd is not the caller's */
                n++;
        }
        closedir(dir);
        *count = n;
        return MWL_OK;
    }
    return MWL_E_UNSUPPORTED;
}
