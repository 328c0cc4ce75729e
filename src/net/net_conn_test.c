/* The transport-independent mwl_conn layer, through a test double: argument
 * checks, "wants" from a transport that needs the other direction (as TLS
 * will), pending bytes, and write-all across short writes that end in the
 * middle of a buffer. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net/net_int.h"

typedef struct fake {
    uint8_t out[256];
    size_t out_len;
    size_t chunk;        /* most bytes one writev takes */
    unsigned calls;      /* writev calls */
    size_t pending;      /* pretend-buffered plaintext */
    unsigned read_wants; /* what a read says it is waiting for */
    size_t max_count;    /* largest iov count an op saw */
    bool saw_empty;      /* an op was handed a zero-length buffer */
    bool closed;
} fake;

static int fake_read(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants)
{
    fake *f = mwl_conn_impl(c);
    if (f->pending > 0) {
        size_t take = cap < f->pending ? cap : f->pending;
        memset(buf, 'p', take);
        f->pending -= take;
        *n = take;
        return MWL_OK;
    }
    *wants = f->read_wants;
    return MWL_AGAIN;
}

static int fake_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants)
{
    fake *f = mwl_conn_impl(c);
    f->calls++;
    if (count > f->max_count)
        f->max_count = count;
    /* Every other call "would block", like a socket buffer filling up. */
    if (f->calls % 2 == 0) {
        *wants = MWL_NET_WRITE;
        return MWL_AGAIN;
    }
    size_t taken = 0;
    for (size_t i = 0; i < count && taken < f->chunk; i++) {
        if (iov[i].len == 0)
            f->saw_empty = true;
        size_t take = iov[i].len < f->chunk - taken ? iov[i].len : f->chunk - taken;
        if (f->out_len + take > sizeof f->out) {
            mwl_conn_set_errno(c, 28);
            return MWL_E_IO;
        }
        memcpy(f->out + f->out_len, iov[i].data, take);
        f->out_len += take;
        taken += take;
    }
    *n = taken;
    return MWL_OK;
}

static size_t fake_pending(const mwl_conn *c)
{
    const fake *f = mwl_conn_impl(c);
    return f->pending;
}

static void fake_close(mwl_conn *c)
{
    fake *f = mwl_conn_impl(c);
    f->closed = true;
    int fd = mwl_conn_fd(c);
    if (fd >= 0)
        close(fd);
}

static const mwl_conn_ops fake_ops = {
    .name = "fake",
    .read = fake_read,
    .writev = fake_writev,
    .pending = fake_pending,
    .shutdown = NULL,
    .close = fake_close,
};

/* A double whose fd is one end of a socketpair: always writable, readable
 * only if the other end writes, so waits behave like a real socket's. */
static mwl_conn *make_fake(fake *f, int *other)
{
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mwl_conn *c = NULL;
    CHECK_EQ_INT(mwl_conn_new(&fake_ops, f, sv[0], true, "double", NULL, &c), MWL_OK);
    *other = sv[1];
    return c;
}

static void test_write_all_across_short_writes(void)
{
    fake f;
    memset(&f, 0, sizeof f);
    f.chunk = 3;
    int other;
    mwl_conn *c = make_fake(&f, &other);
    if (!c)
        return;
    CHECK_EQ_STR(mwl_conn_transport(c), "fake");
    CHECK_EQ_STR(mwl_conn_peer(c), "double");
    /* Pieces of a PDU: short writes end mid-buffer and span buffers, and
     * empty buffers never reach the transport. */
    mwl_iov iov[5] = {{"abc", 3}, {"", 0}, {"defgh", 5}, {"ij", 2}, {NULL, 0}};
    size_t written = 0;
    CHECK_EQ_INT(mwl_conn_write_all_deadline(c, iov, 5, mwl_deadline_in(1000), &written), MWL_OK);
    CHECK_EQ_INT(written, 10);
    CHECK_EQ_MEM(f.out, f.out_len, "abcdefghij", 10);
    CHECK(!f.saw_empty);
    CHECK(f.max_count <= 3);
    CHECK(f.calls >= 7); /* 4 taking calls of <= 3 bytes, would-blocks between */
    CHECK_EQ_INT(mwl_conn_wants(c), MWL_NET_WRITE);

    /* Arguments the wrappers refuse before the transport sees them. */
    size_t n = 5;
    mwl_iov many[MWL_CONN_IOV_MAX + 1];
    for (size_t i = 0; i <= MWL_CONN_IOV_MAX; i++)
        many[i] = (mwl_iov){"x", 1};
    CHECK_EQ_INT(mwl_conn_writev(c, many, MWL_CONN_IOV_MAX + 1, &n), MWL_E_INVALID);
    CHECK_EQ_INT(n, 0);
    mwl_iov hole = {NULL, 4};
    CHECK_EQ_INT(mwl_conn_writev(c, &hole, 1, &n), MWL_E_INVALID);
    unsigned before = f.calls;
    CHECK_EQ_INT(mwl_conn_writev(c, iov + 1, 1, &n), MWL_OK); /* only empty: nothing to do */
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(f.calls, before);

    /* A transport error is passed through with its errno. */
    f.chunk = 1000;
    static uint8_t big[300];
    mwl_iov too_much = {big, sizeof big};
    if (f.calls % 2 == 1)
        f.calls++; /* make the next call a taking one */
    CHECK_EQ_INT(mwl_conn_write(c, big, sizeof big, &n), MWL_E_IO);
    CHECK_EQ_INT(mwl_conn_errno(c), 28);
    CHECK_EQ_INT(mwl_conn_write_all_deadline(c, &too_much, 1, mwl_deadline_in(1000), &written), MWL_E_IO);
    mwl_conn_close(c);
    CHECK(f.closed);
    close(other);
}

static void test_wants_and_pending(void)
{
    fake f;
    memset(&f, 0, sizeof f);
    f.read_wants = MWL_NET_WRITE; /* a TLS read mid-handshake */
    int other;
    mwl_conn *c = make_fake(&f, &other);
    if (!c)
        return;
    uint8_t buf[8];
    size_t n = 9;
    CHECK_EQ_INT(mwl_conn_read(c, buf, sizeof buf, &n), MWL_AGAIN);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(mwl_conn_wants(c), MWL_NET_WRITE);

    /* The read-deadline helper waits for what the transport wants (the
     * fd is writable), so it keeps retrying until its deadline instead of
     * sleeping on readability that will never come. */
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(mwl_conn_read_deadline(c, buf, sizeof buf, &n, start + 50), MWL_E_TIMEOUT);
    CHECK(mwl_now_ms() - start < 10000); /* sleeping on readability would never end */

    /* Buffered plaintext: ready for reading without the fd saying so. */
    f.pending = 5;
    CHECK_EQ_INT(mwl_conn_pending(c), 5);
    CHECK_EQ_INT(mwl_conn_wait(c, MWL_NET_READ, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_INT(mwl_conn_read_deadline(c, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_MEM(buf, n, "ppppp", 5);
    CHECK_EQ_INT(mwl_conn_pending(c), 0);
    CHECK_EQ_INT(mwl_conn_wait(c, MWL_NET_READ, mwl_deadline_in(30)), MWL_E_TIMEOUT);
    CHECK_EQ_INT(mwl_conn_wait(c, 0, mwl_deadline_in(30)), MWL_E_INVALID);

    /* Default shutdown (no op) half-closes the fd: the other end sees EOF. */
    CHECK_EQ_INT(mwl_conn_shutdown(c), MWL_OK);
    CHECK_EQ_INT(read(other, buf, sizeof buf), 0);
    mwl_conn_close(c);
    close(other);
}

static void test_new_checks(void)
{
    mwl_conn *c = NULL;
    mwl_conn_ops incomplete = fake_ops;
    incomplete.writev = NULL;
    CHECK_EQ_INT(mwl_conn_new(&incomplete, NULL, -1, true, NULL, NULL, &c), MWL_E_INVALID);
    CHECK(c == NULL);
    mwl_mem_failing failing;
    mwl_mem_failing_init(&failing, 1);
    CHECK_EQ_INT(mwl_conn_new(&fake_ops, NULL, -1, true, NULL, &failing.mem, &c), MWL_E_NOMEM);
    CHECK(c == NULL);
    mwl_conn_close(NULL);
    /* A double with no fd cannot be waited on, but can be used. */
    fake f;
    memset(&f, 0, sizeof f);
    f.chunk = 4;
    CHECK_EQ_INT(mwl_conn_new(&fake_ops, &f, -1, false, NULL, NULL, &c), MWL_OK);
    if (!c)
        return;
    CHECK_EQ_STR(mwl_conn_peer(c), "?");
    CHECK_EQ_INT(mwl_conn_wait(c, MWL_NET_WRITE, 0), MWL_E_INVALID);
    size_t n = 0;
    CHECK_EQ_INT(mwl_conn_write(c, "wxyz", 4, &n), MWL_OK);
    CHECK_EQ_INT(n, 4);
    /* The deadline helpers want a non-blocking connection. */
    mwl_iov one = {"a", 1};
    CHECK_EQ_INT(mwl_conn_write_all_deadline(c, &one, 1, UINT64_MAX, NULL), MWL_E_INVALID);
    mwl_conn_close(c);
}

/* mwl_conn_release_fd: a TCP connection gives up its socket, which stays
 * open and usable; any other transport keeps it. */
static void test_release_fd(void)
{
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mwl_conn *c = NULL;
    CHECK_EQ_INT(mwl_net_conn_from_fd(sv[0], true, NULL, &c, NULL), MWL_OK);
    int fd = -1;
    CHECK_EQ_INT(mwl_conn_release_fd(NULL, &fd), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_conn_release_fd(c, &fd), MWL_OK);
    CHECK_EQ_INT(fd, sv[0]);
    CHECK_EQ_INT(write(fd, "x", 1), 1); /* still open */
    char b = 0;
    CHECK_EQ_INT(read(sv[1], &b, 1), 1);
    CHECK_EQ_INT(b, 'x');
    close(fd);
    close(sv[1]);
    /* A double (as TLS) is not TCP: refused, still the caller's. */
    fake f;
    memset(&f, 0, sizeof f);
    CHECK_EQ_INT(mwl_conn_new(&fake_ops, &f, -1, true, NULL, NULL, &c), MWL_OK);
    CHECK_EQ_INT(mwl_conn_release_fd(c, &fd), MWL_E_INVALID);
    mwl_conn_close(c);
    CHECK(f.closed);
}

int main(void)
{
    size_t before = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    RUN_TEST(test_write_all_across_short_writes);
    RUN_TEST(test_wants_and_pending);
    RUN_TEST(test_new_checks);
    RUN_TEST(test_release_fd);
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
    return check_report("net_conn_test");
}
