#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mwl_file_read(const char *path, const mwl_mem *mem, size_t max_size, uint8_t **out, size_t *out_len,
                  mwl_diag *diag)
{
    if (!max_size)
        max_size = (size_t)1 << 30;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mwl_diag_set(diag, 0, 0, "%s: %s", path, strerror(errno));
        return MWL_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mwl_diag_set(diag, 0, 0, "%s: not a regular file", path);
        close(fd);
        return MWL_E_IO;
    }
    if ((uint64_t)st.st_size > (uint64_t)max_size) {
        mwl_diag_set(diag, 0, 0, "%s: file too large (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return MWL_E_LIMIT;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = mwl_mem_alloc(mem, size ? size : 1);
    if (!buf) {
        close(fd);
        return MWL_E_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            mwl_diag_set(diag, got, 0, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank while reading");
            mwl_mem_free(mem, buf);
            close(fd);
            return MWL_E_IO;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *out_len = size;
    return MWL_OK;
}

int mwl_file_write(const char *path, const uint8_t *data, size_t len, bool durable, mwl_diag *diag)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        mwl_diag_set(diag, 0, 0, "path too long");
        return MWL_E_INVALID;
    }
    /* A new file, never one found there: O_EXCL does not follow a symbolic
     * link someone else with access to the folder left at that name (a
     * stale temporary file of ours is removed first). */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        mwl_diag_set(diag, 0, 0, "%s: %s", tmp, strerror(errno));
        return MWL_E_IO;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        mwl_diag_set(diag, 0, 0, "%s: %s", tmp, strerror(errno));
        return MWL_E_IO;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            mwl_diag_set(diag, done, 0, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return MWL_E_IO;
        }
        done += (size_t)w;
    }
    int sync_failed = durable && fsync(fd) != 0;
    if (close(fd) != 0 || sync_failed) {
        mwl_diag_set(diag, 0, 0, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        return MWL_E_IO;
    }
    if (rename(tmp, path) != 0) {
        mwl_diag_set(diag, 0, 0, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return MWL_E_IO;
    }
    return MWL_OK;
}

/* ---- append-only logs ------------------------------------------------------ */

struct mwl_file_log {
    const mwl_mem *mem;
    int fd;
    char path[];
};

/* The file itself, never what a link planted in its place points to, and
 * only a regular file of ours: the server must not be made to append to
 * another file it can write. Group and others never write it. */
static int open_append(const char *path, mwl_diag *diag)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0) {
        if (errno == ELOOP)
            mwl_diag_set(diag, 0, 0, "%s: a symbolic link; give the file itself", path);
        else
            mwl_diag_set(diag, 0, 0, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *bad = NULL;
    if (fstat(fd, &st) != 0)
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if (st.st_uid != geteuid())
        bad = "owned by another user";
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && fchmod(fd, st.st_mode & 0755) != 0)
        bad = "writable by others, and its mode cannot be changed";
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: %s", path, bad);
        close(fd);
        return -1;
    }
    return fd;
}

int mwl_file_log_open(const char *path, const mwl_mem *mem, mwl_file_log **out, mwl_diag *diag)
{
    *out = NULL;
    size_t n = strlen(path);
    mwl_file_log *log = mwl_mem_alloc(mem, sizeof *log + n + 1);
    if (!log)
        return MWL_E_NOMEM;
    memcpy(log->path, path, n + 1);
    log->mem = mem;
    log->fd = open_append(path, diag);
    if (log->fd < 0) {
        mwl_mem_free(mem, log);
        return MWL_E_IO;
    }
    *out = log;
    return MWL_OK;
}

int mwl_file_log_write(mwl_file_log *log, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(log->fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return MWL_E_IO;
        p += w;
        len -= (size_t)w;
    }
    return MWL_OK;
}

int mwl_file_log_reopen(mwl_file_log *log, mwl_diag *diag)
{
    int fd = open_append(log->path, diag);
    if (fd < 0)
        return MWL_E_IO;
    close(log->fd);
    log->fd = fd;
    return MWL_OK;
}

const char *mwl_file_log_path(const mwl_file_log *log)
{
    return log->path;
}

void mwl_file_log_close(mwl_file_log *log)
{
    if (!log)
        return;
    close(log->fd);
    mwl_mem_free(log->mem, log);
}
