/* Network transport for the DICOM Upper Layer (PS3.8 §9.1: one TCP
 * connection carries one association): TCP listen/accept/connect over IPv4
 * and IPv6, connections behind a small vtable so TLS (PS3.15 Annex B) plugs
 * in without touching protocol code, a poll() event loop with timers and a
 * thread-safe wakeup, a bounded worker pool, and the clock.
 *
 * net is the only module that touches file descriptors, sockets, signals
 * and the clock (STYLE.md §3); it knows nothing about PDUs. The server and
 * client drivers glue it to the sans-IO ul and dimse modules.
 *
 * Conventions: functions return MWL_OK or a negative MWL_E_* (base/status.h);
 * sizes come back through out-params; times are absolute milliseconds on the
 * monotonic clock of mwl_now_ms() ("deadlines"), UINT64_MAX meaning never.
 * Unless a function says otherwise it is not thread-safe: one object, one
 * thread at a time. */
#ifndef MWL_NET_NET_H
#define MWL_NET_NET_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/status.h"

/* ---- clock -------------------------------------------------------------- */

/* Milliseconds on CLOCK_MONOTONIC (never jumps with wall-clock changes).
 * This is the "now_ms" the sans-IO layers are fed; they never read a clock. */
MWL_API uint64_t mwl_now_ms(void);

/* Deadline `timeout_ms` from now; a negative timeout means no deadline
 * (UINT64_MAX). Saturates instead of wrapping. */
MWL_API uint64_t mwl_deadline_in(int64_t timeout_ms);

/* ---- addresses ---------------------------------------------------------- */

/* Room for any formatted address: "[v6%scope]:port" or "a.b.c.d:port". */
#define MWL_NET_ADDRSTRLEN 80

struct sockaddr;
/* Formats a socket address (`len` bytes) for logs: "a.b.c.d:port",
 * "[v6%scope]:port"; IPv4-mapped IPv6 as plain IPv4; AF_UNIX as "unix";
 * anything else "?". Always NUL-terminates (truncating if `size` is too
 * small). Every listener names its peers this way. */
MWL_API void mwl_net_format_sockaddr(const struct sockaddr *sa, size_t len, char *out, size_t size);
/* Longest host name or literal accepted by mwl_net_parse_hostport (+ NUL). */
#define MWL_NET_HOST_MAX 256

/* Parses a decimal port "0".."65535" (no sign, no spaces). Port 0 is
 * accepted: for a listener it means "pick a free port". Returns MWL_OK or
 * MWL_E_INVALID (diag says why). */
MWL_API MWL_MUST_CHECK int mwl_net_parse_port(const char *text, uint16_t *port /* out */, mwl_diag *diag);

/* Splits "host", "host:port", "[v6]", "[v6]:port", a bare IPv6 literal such
 * as "::1" (two or more colons and no brackets: all host, no port), or
 * ":port" / "*:port" / "*" (all addresses). Brackets are removed; "*" and
 * "" both yield the empty host, which mwl_listener_open reads as "all
 * addresses". *port is left at `default_port` when the text has none.
 * Returns MWL_OK, or MWL_E_INVALID (empty brackets, text after "]" other
 * than ":port", a bad port, a host longer than host_size - 1). The host is
 * not resolved here. */
MWL_API MWL_MUST_CHECK int mwl_net_parse_hostport(const char *text, uint16_t default_port,
                                                  char *host /* out */, size_t host_size,
                                                  uint16_t *port /* out */, mwl_diag *diag);

/* ---- IP addresses and ranges (pure: no sockets, no name resolution) ---- */

/* An IP address. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a
 * dual-stack socket reports for an IPv4 peer) is always held as the IPv4
 * address, so IPv4 peers match IPv4 ranges however they arrived. */
typedef struct mwl_net_addr {
    uint8_t family;    /* 4 or 6 */
    uint8_t bytes[16]; /* network order; IPv4 uses the first 4, the rest are 0 */
} mwl_net_addr;

/* A CIDR range: the addresses of addr's family whose first `prefix` bits
 * are addr's. addr has no bits set past the prefix. A single host is the
 * full-length prefix (/32, /128). */
typedef struct mwl_net_cidr {
    mwl_net_addr addr;
    uint8_t prefix; /* 0..32 for IPv4, 0..128 for IPv6 */
} mwl_net_cidr;

/* Room for any formatted range: a 45-character IPv6 literal plus "/128". */
#define MWL_NET_CIDR_STRLEN 52

/* Parses a numeric IPv4 ("10.0.0.5": four decimal parts, no leading zeros)
 * or IPv6 literal ("2001:db8::5", "::ffff:10.0.0.5") of `len` bytes; no
 * brackets, no scope ("%eth0"), no blanks, no host names. MWL_OK or
 * MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_net_addr_parse(const char *text, size_t len, mwl_net_addr *out /* out */);

/* Parses an address (a single host) or "ADDRESS/PREFIX" of `len` bytes:
 * the prefix is decimal, 0..32 for IPv4 and 0..128 for IPv6, and the
 * address must have no bits set past it ("10.1.2.3/8" is refused, the
 * message naming 10.0.0.0/8). An IPv4-mapped range ::ffff:a.b.c.d/96+n is
 * the IPv4 range a.b.c.d/n. MWL_OK or MWL_E_INVALID (diag says why). */
MWL_API MWL_MUST_CHECK int mwl_net_cidr_parse(const char *text, size_t len, mwl_net_cidr *out /* out */,
                                              mwl_diag *diag);

/* "10.0.0.5", "2001:db8::5": the address as mwl_net_addr_parse reads it.
 * Returns the length, or the length needed if cap is too small (snprintf
 * style; NUL-terminated when cap > 0). */
MWL_API size_t mwl_net_addr_format(const mwl_net_addr *a, char *out, size_t cap);

/* "10.0.0.0/8", "2001:db8::/32", or the bare address for a single host;
 * mwl_net_cidr_parse reads it back to the same range. snprintf style. */
MWL_API size_t mwl_net_cidr_format(const mwl_net_cidr *c, char *out, size_t cap);

/* True when `a` is in range `c`. Families must match: an IPv6 range never
 * holds an IPv4 address, and the reverse. */
MWL_API bool mwl_net_cidr_contains(const mwl_net_cidr *c, const mwl_net_addr *a);

MWL_API bool mwl_net_cidr_equal(const mwl_net_cidr *a, const mwl_net_cidr *b);

/* The address of a peer as mwl_conn_peer() shows it: "10.0.0.5:40000",
 * "[2001:db8::5]:104", "[fe80::1%2]:104" (the scope is dropped), or a bare
 * address. MWL_OK, or MWL_E_INVALID for what has no IP address ("unix",
 * "?"). */
MWL_API MWL_MUST_CHECK int mwl_net_addr_from_peer(const char *peer, mwl_net_addr *out /* out */);

/* ---- connections -------------------------------------------------------- */

/* A byte stream to one peer: TCP today, TLS later, a test double in tests.
 * Every function below dispatches through the connection's mwl_conn_ops. */
typedef struct mwl_conn mwl_conn;

/* Readiness bits, used for poll interest, for "what does the transport
 * need before retrying" (mwl_conn_wants) and for loop callbacks. */
enum {
    MWL_NET_READ = 1u,  /* readable (or EOF / error pending: a read will tell) */
    MWL_NET_WRITE = 2u, /* writable */
    MWL_NET_ERROR = 4u  /* loop callbacks only: POLLERR/POLLHUP/POLLNVAL seen */
};

/* One buffer of a gathered write (a PDU header and its body, say). */
typedef struct mwl_iov {
    const void *data;
    size_t len;
} mwl_iov;

/* Most buffers one mwl_conn_writev call takes. */
#define MWL_CONN_IOV_MAX 16

/* Reads up to `cap` (> 0) bytes. Returns:
 *   MWL_OK        *n in 1..cap bytes were stored in buf;
 *   MWL_AGAIN     nothing available yet on a non-blocking connection
 *                 (*n = 0); poll for mwl_conn_wants(c) and retry;
 *   MWL_E_CLOSED  the peer closed its side (EOF) or reset the connection;
 *   MWL_E_IO      another transport error (mwl_conn_errno says which);
 *   MWL_E_INVALID cap is 0.
 * A transport may hold decrypted bytes the fd cannot signal: keep reading
 * until MWL_AGAIN (or check mwl_conn_pending) before waiting on the fd. */
MWL_API MWL_MUST_CHECK int mwl_conn_read(mwl_conn *c, void *buf, size_t cap, size_t *n /* out */);

/* Writes up to `len` bytes; never raises SIGPIPE. Returns:
 *   MWL_OK        *n in 1..len bytes were taken (a partial write is normal:
 *                 keep the rest and retry when writable); len 0 gives *n 0;
 *   MWL_AGAIN     the socket buffer is full (*n = 0);
 *   MWL_E_CLOSED  the peer is gone (EPIPE, ECONNRESET);
 *   MWL_E_IO      another transport error. */
MWL_API MWL_MUST_CHECK int mwl_conn_write(mwl_conn *c, const void *buf, size_t len, size_t *n /* out */);

/* As mwl_conn_write for the concatenation of `count` (<= MWL_CONN_IOV_MAX)
 * buffers, in one system call, so a PDU header and its body leave together
 * (no tiny first segment). MWL_E_INVALID if count is too large. */
MWL_API MWL_MUST_CHECK int mwl_conn_writev(mwl_conn *c, const mwl_iov *iov, size_t count,
                                           size_t *n /* out */);

/* Starts an orderly close of our sending side (TCP FIN after queued data;
 * TLS close_notify) while reads stay possible. Use it for a "lingering
 * close" after sending A-ASSOCIATE-RJ or A-ABORT: shut down, then read and
 * discard until MWL_E_CLOSED or a short deadline, then mwl_conn_close.
 * Closing a socket with unread input makes the kernel send RST, and the
 * peer may then lose the PDU we just sent. MWL_OK, MWL_E_CLOSED (the
 * connection is already gone), or MWL_E_IO. */
MWL_API MWL_MUST_CHECK int mwl_conn_shutdown(mwl_conn *c);

/* Closes the transport and frees `c` without lingering (PS3.8 §9.1.4): the
 * call never blocks, and data already queued is still sent by the kernel.
 * NULL is a no-op. */
MWL_API void mwl_conn_close(mwl_conn *c);

/* The fd to poll; stays owned by the connection. */
MWL_API int mwl_conn_fd(const mwl_conn *c);
/* Takes the socket out of a plain TCP connection and frees `c` without
 * closing it, for a protocol library that drives sockets itself (the HTTP
 * listener hands accepted connections to libmicrohttpd). On MWL_OK *fd
 * (out) is the socket, unchanged (blocking mode, close-on-exec,
 * TCP_NODELAY), now the caller's to close, and `c` is gone. MWL_E_INVALID
 * for NULL or a transport with state of its own over the fd (TLS: bytes
 * it has decrypted or must still write would be lost); `c` is then
 * untouched and still the caller's. */
MWL_API MWL_MUST_CHECK int mwl_conn_release_fd(mwl_conn *c, int *fd /* out */);
/* What the last MWL_AGAIN was waiting for: MWL_NET_READ and/or
 * MWL_NET_WRITE. For TCP a read waits for READ and a write for WRITE; a TLS
 * read may need WRITE during a handshake. 0 before any MWL_AGAIN. */
MWL_API unsigned mwl_conn_wants(const mwl_conn *c);
/* Bytes the transport holds that a read returns without touching the fd
 * (TLS records already decrypted); always 0 for TCP. */
MWL_API size_t mwl_conn_pending(const mwl_conn *c);
/* The peer for log lines: "127.0.0.1:49152", "[::1]:104" (IPv4-mapped
 * IPv6 peers are shown as plain IPv4). Valid until mwl_conn_close. */
MWL_API const char *mwl_conn_peer(const mwl_conn *c);
/* The peer's authenticated identity: the subject of the certificate a TLS
 * peer presented (RFC 2253 text), "" when there is none. */
MWL_API const char *mwl_conn_peer_subject(const mwl_conn *c);
/* Why the transport failed, when it knows more than errno (a TLS alert or
 * a certificate that did not verify); "" otherwise. */
MWL_API const char *mwl_conn_error_text(const mwl_conn *c);
/* errno of the last MWL_E_IO/MWL_E_CLOSED from this connection, else 0. */
MWL_API int mwl_conn_errno(const mwl_conn *c);
/* The transport's name ("tcp", "tls", …), for logs. */
MWL_API const char *mwl_conn_transport(const mwl_conn *c);
MWL_API bool mwl_conn_is_nonblocking(const mwl_conn *c);

/* Waits until the connection can make progress in `events` (MWL_NET_READ /
 * MWL_NET_WRITE) or the deadline passes. Returns MWL_OK (ready: retry the
 * operation), MWL_E_TIMEOUT (also when the deadline has already passed,
 * ready or not), MWL_E_IO, or MWL_E_INVALID (no events, no fd). EINTR-safe.
 * Returns MWL_OK at once when `events` includes READ and
 * mwl_conn_pending(c) > 0. */
MWL_API MWL_MUST_CHECK int mwl_conn_wait(mwl_conn *c, unsigned events, uint64_t deadline_ms);

/* Blocking helpers for the client driver, on a non-blocking connection
 * (MWL_E_INVALID otherwise): each retries across MWL_AGAIN and EINTR and
 * gives up with MWL_E_TIMEOUT once `deadline_ms` (absolute, mwl_now_ms
 * clock; UINT64_MAX = none) has passed, so a stalled peer cannot hang the
 * caller. */

/* Reads at least one byte: MWL_OK with *n in 1..cap, or MWL_E_TIMEOUT,
 * MWL_E_CLOSED, MWL_E_IO, MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_conn_read_deadline(mwl_conn *c, void *buf, size_t cap, size_t *n /* out */,
                                                  uint64_t deadline_ms);
/* Writes every byte of every buffer: MWL_OK, or MWL_E_TIMEOUT, MWL_E_CLOSED,
 * MWL_E_IO, MWL_E_INVALID. *written (may be NULL) says how far it got, so a
 * caller can tell "nothing sent" from "half a PDU sent" (then abort). */
MWL_API MWL_MUST_CHECK int mwl_conn_write_all_deadline(mwl_conn *c, const mwl_iov *iov, size_t count,
                                                       uint64_t deadline_ms, size_t *written /* out */);

/* ---- TCP ---------------------------------------------------------------- */

/* Opens a TCP connection to host:port within `timeout_ms` (< 0: no limit
 * on the connect itself). Every getaddrinfo() result is tried in order,
 * IPv6 and IPv4 alike; each attempt gets an equal share of the time left,
 * so one black-holed address cannot use up the budget of the next. Name
 * resolution itself is the system resolver's and is not bounded by the
 * timeout (numeric addresses resolve at once). The connection has
 * TCP_NODELAY, close-on-exec, and is non-blocking: use the *_deadline
 * helpers to block. Returns MWL_OK, MWL_E_TIMEOUT (the last attempt timed
 * out), MWL_E_IO (refused, unreachable, unknown host: diag says which),
 * MWL_E_INVALID, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_net_connect(const char *host, uint16_t port, int timeout_ms,
                                           const mwl_mem *mem, mwl_conn **out, mwl_diag *diag);

/* Wraps an already-connected stream socket (inherited, or one end of a
 * socketpair in tests); takes ownership of `fd` on MWL_OK only. Sets
 * close-on-exec, the blocking mode asked for, and TCP_NODELAY when it is a
 * TCP socket. MWL_OK, MWL_E_IO, MWL_E_NOMEM, MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_net_conn_from_fd(int fd, bool nonblocking, const mwl_mem *mem, mwl_conn **out,
                                                mwl_diag *diag);

typedef struct mwl_listener mwl_listener;

typedef struct mwl_listen_opts {
    /* NULL, "" or "*": all addresses, through one dual-stack IPv6 socket
     * (IPV6_V6ONLY off, so IPv4 peers arrive as ::ffff:a.b.c.d), or an IPv4
     * socket when the host has no IPv6. Otherwise a name or literal; the
     * first getaddrinfo() result that binds is used. */
    const char *host;
    uint16_t port;    /* 0: the kernel picks; read it with mwl_listener_port */
    int backlog;      /* pending-connection queue; <= 0 means 128 */
    bool nonblocking; /* listener and accepted connections O_NONBLOCK */
} mwl_listen_opts;

/* Defaults: all addresses, port 0, backlog 128, non-blocking. */
MWL_API void mwl_listen_opts_init(mwl_listen_opts *opts);

/* Creates, binds (SO_REUSEADDR, so a restart does not wait out TIME_WAIT)
 * and listens. Returns MWL_OK, MWL_E_IO (address in use, cannot bind: diag
 * says which), MWL_E_INVALID, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_listener_open(const mwl_listen_opts *opts, const mwl_mem *mem,
                                             mwl_listener **out, mwl_diag *diag);

/* Accepts one connection (close-on-exec, TCP_NODELAY, blocking mode as
 * configured). Returns:
 *   MWL_OK        *out is a new connection (caller closes it);
 *   MWL_AGAIN     nothing to accept now: nothing pending on a non-blocking
 *                 listener, or a connection that died in the queue, or a
 *                 signal interrupted a blocking accept; just try again later;
 *   MWL_E_LIMIT   out of file descriptors (EMFILE/ENFILE). The connection
 *                 stays queued and the fd stays readable, so a loop must
 *                 stop polling the listener for a while (a timer) instead
 *                 of spinning;
 *   MWL_E_NOMEM, MWL_E_IO. */
MWL_API MWL_MUST_CHECK int mwl_listener_accept(mwl_listener *l, mwl_conn **out, mwl_diag *diag);

MWL_API int mwl_listener_fd(const mwl_listener *l);
/* The bound port (the kernel's choice when opts.port was 0). */
MWL_API uint16_t mwl_listener_port(const mwl_listener *l);
/* The bound address for logs, e.g. "[::]:11112" or "127.0.0.1:40000". */
MWL_API const char *mwl_listener_addr(const mwl_listener *l);
/* NULL is a no-op. */
MWL_API void mwl_listener_close(mwl_listener *l);

/* ---- TLS ------------------------------------------------------------------ */

/* TLS (PS3.15 Annex B: BCP 195; TLS 1.2 and 1.3, AEAD suites only) over a
 * connected TCP mwl_conn, with OpenSSL 3 (net/tls.c, the only file that
 * includes it). A mwl_tls holds the settings and certificates that many
 * connections share; each connection keeps a reference, so it may be freed
 * (or replaced, when certificates are reloaded) while they run. */
typedef struct mwl_tls mwl_tls;

typedef struct mwl_tls_config {
    bool server;
    const char *cert_file; /* PEM, our certificate (chain); a server needs one */
    const char *key_file;  /* PEM, its private key (unencrypted) */
    const char *ca_file;   /* PEM, certificates trusted to sign the peer's */
    /* Server: require a client certificate signed by ca_file (handshake
     * fails otherwise). A client always checks the server's certificate,
     * against ca_file or, without one, the system's trusted store. */
    bool verify_peer;
    /* Client: the server's certificate must also name the host connected
     * to (a DNS or IP subjectAltName, RFC 6125), so that a certificate the
     * CA gave another host cannot stand in for this one. On by default
     * for a client; off only for sites whose certificates name no host. */
    bool verify_name;
} mwl_tls_config;

MWL_API void mwl_tls_config_init(mwl_tls_config *cfg, bool server);
/* Loads and checks the certificates. MWL_OK, MWL_E_INVALID (a file that
 * does not load, a key that is not the certificate's: diag says which),
 * MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_tls_new(const mwl_tls_config *cfg, const mwl_mem *mem, mwl_tls **out,
                                       mwl_diag *diag);
/* Drops the caller's reference; connections keep theirs. NULL-safe. */
MWL_API void mwl_tls_free(mwl_tls *tls);
/* Wraps a connected TCP connection (takes it in every case). The handshake
 * happens in the first reads and writes (non-blocking: MWL_AGAIN and
 * mwl_conn_wants as usual), or in mwl_tls_handshake. `server_name`: the
 * client's SNI (names only; NULL = none). A client offers the last session
 * the server gave on this mwl_tls, for resumption. */
MWL_API MWL_MUST_CHECK int mwl_tls_wrap(mwl_tls *tls, mwl_conn *tcp, const char *server_name, mwl_conn **out,
                                        mwl_diag *diag);
/* Runs the handshake to its end, waiting until `deadline_ms` at most (the
 * blocking client). MWL_OK, MWL_E_TIMEOUT, MWL_E_CLOSED, MWL_E_IO (diag:
 * the TLS reason, e.g. a certificate that did not verify), MWL_E_INVALID
 * for a connection that is not TLS. */
MWL_API MWL_MUST_CHECK int mwl_tls_handshake(mwl_conn *c, uint64_t deadline_ms, mwl_diag *diag);
/* True when the connection resumed an earlier TLS session. */
MWL_API bool mwl_tls_session_reused(const mwl_conn *c);

/* ---- event loop --------------------------------------------------------- */

/* A poll() loop: fd readiness callbacks, one-shot timers, tasks posted
 * from other threads, and a wakeup that signal handlers may use.
 *
 * Each turn: wait (until the earliest timer, a ready fd, or a wakeup),
 * then handle signals, call each ready fd's callback once, fire the timers
 * that were due when the turn began (at most max_timers_per_turn), and run
 * at most max_tasks_per_turn posted tasks. Nothing runs twice in one turn,
 * so a callback that re-arms itself cannot starve the others; callbacks
 * must themselves do bounded work (read one buffer, write one batch).
 *
 * All functions must be called from the thread running the loop, except
 * mwl_loop_post (any thread) and mwl_loop_wake/mwl_loop_stop (any thread,
 * and async-signal-safe). */
typedef struct mwl_loop mwl_loop;
typedef struct mwl_loop_io mwl_loop_io; /* one registered fd */

typedef struct mwl_loop_config {
    size_t max_fds;             /* registered fds, wakeup excluded (>= 1) */
    size_t max_timers;          /* armed timers at once (>= 1) */
    size_t max_timers_per_turn; /* 0: 64 */
    size_t max_tasks_per_turn;  /* 0: 64 */
} mwl_loop_config;

/* Called with the ready bits (MWL_NET_READ/WRITE) that match the interest,
 * plus MWL_NET_ERROR and READ (so a read reports the error or EOF) when the
 * fd has failed or hung up. An fd with interest 0 is not polled at all. */
typedef void (*mwl_loop_io_fn)(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user);
typedef void (*mwl_loop_timer_fn)(mwl_loop *loop, uint64_t timer_id, void *user);

/* A task handed to the loop thread by another thread (a worker's result).
 * Caller-owned storage, so posting never allocates and never fails; it
 * must stay valid until `fn` runs on the loop thread. */
typedef struct mwl_loop_task {
    void (*fn)(mwl_loop *loop, struct mwl_loop_task *task);
    struct mwl_loop_task *next; /* the loop's link; leave it alone */
} mwl_loop_task;

/* Allocates everything up front (registrations, timer heap, wakeup pipe).
 * MWL_OK, MWL_E_INVALID, MWL_E_NOMEM, MWL_E_IO. */
MWL_API MWL_MUST_CHECK int mwl_loop_new(const mwl_loop_config *config, const mwl_mem *mem, mwl_loop **out,
                                        mwl_diag *diag);
/* Frees the loop; fds registered with it are not closed, tasks still
 * posted are not run (drain them first with mwl_loop_run_once). If the
 * loop owns the signal handlers they are restored. NULL is a no-op. */
MWL_API void mwl_loop_free(mwl_loop *loop);

/* Registers `fd` with an interest mask. The loop never closes it; call
 * mwl_loop_remove before closing. MWL_OK, MWL_E_LIMIT (max_fds reached),
 * MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_loop_add(mwl_loop *loop, int fd, unsigned interest, mwl_loop_io_fn fn,
                                        void *user, mwl_loop_io **out);
/* Changes what the fd is polled for (0 pauses it: an accept back-off, a
 * connection whose output is full). Takes effect from the next turn. */
MWL_API void mwl_loop_set_interest(mwl_loop *loop, mwl_loop_io *io, unsigned interest);
MWL_API unsigned mwl_loop_interest(const mwl_loop_io *io);
/* Unregisters, once; safe inside any callback, including io's own. `io`
 * is invalid afterwards (its slot may serve the next mwl_loop_add), and its
 * callback is not called again, even for readiness already seen this turn. */
MWL_API void mwl_loop_remove(mwl_loop *loop, mwl_loop_io *io);

/* Arms a one-shot timer at absolute time `at_ms`. Timers fire in order of
 * at_ms, ties in the order they were added, never before at_ms. *id is
 * never 0, so 0 can mean "no timer". MWL_OK or MWL_E_LIMIT. */
MWL_API MWL_MUST_CHECK int mwl_loop_timer_add(mwl_loop *loop, uint64_t at_ms, mwl_loop_timer_fn fn,
                                              void *user, uint64_t *id /* out */);
/* Re-arms a pending timer (the UL's ARTIM deadline moving). MWL_OK, or
 * MWL_E_NOTFOUND when it has fired or was cancelled. */
MWL_API MWL_MUST_CHECK int mwl_loop_timer_move(mwl_loop *loop, uint64_t id, uint64_t at_ms);
/* MWL_OK, or MWL_E_NOTFOUND when it has fired or was cancelled (harmless:
 * a slot's id carries a 32-bit generation, so a stale id does not match the
 * slot's next timer). */
MWL_API int mwl_loop_timer_cancel(mwl_loop *loop, uint64_t id);
MWL_API size_t mwl_loop_timer_count(const mwl_loop *loop);

/* Thread-safe: queues `task` to run on the loop thread and wakes it. */
MWL_API void mwl_loop_post(mwl_loop *loop, mwl_loop_task *task);
/* Thread-safe and async-signal-safe: makes a blocked turn return early. */
MWL_API void mwl_loop_wake(mwl_loop *loop);
/* Thread-safe and async-signal-safe: mwl_loop_run returns after the
 * current turn. */
MWL_API void mwl_loop_stop(mwl_loop *loop);
MWL_API bool mwl_loop_stopping(mwl_loop *loop); /* any thread */

/* Runs turns until mwl_loop_stop, then consumes that stop request (so the
 * loop can be run again, e.g. to drain during a graceful shutdown). A stop
 * requested before the call makes it return after at most one turn.
 * MWL_OK, or MWL_E_IO if poll() fails for a reason other than EINTR. */
MWL_API MWL_MUST_CHECK int mwl_loop_run(mwl_loop *loop);
/* One turn, waiting at most `max_wait_ms` (0: just poll; < 0: until
 * something happens). MWL_OK or MWL_E_IO. Does not look at the stop flag. */
MWL_API MWL_MUST_CHECK int mwl_loop_run_once(mwl_loop *loop, int max_wait_ms);
/* The clock reading taken when the current turn woke up (mwl_now_ms). */
MWL_API uint64_t mwl_loop_now(const mwl_loop *loop);

/* ---- signals ------------------------------------------------------------ */

/* Called on the loop thread, in a normal context, for each SIGTERM/SIGINT/
 * SIGHUP delivered since the last turn (several of one kind since the last
 * turn count once). */
typedef void (*mwl_signal_fn)(mwl_loop *loop, int signo, void *user);

/* Installs SIGTERM, SIGINT and SIGHUP handlers that only record the signal
 * and wake `loop` (an async-signal-safe write to its wakeup pipe); the loop
 * then calls `fn`, or, when fn is NULL, mwl_loop_stop (SIGHUP is then
 * ignored). Also ignores SIGPIPE.
 * One loop at a time owns the handlers: MWL_E_INVALID if another does.
 * MWL_OK or MWL_E_IO (sigaction failed). */
MWL_API MWL_MUST_CHECK int mwl_net_signals_install(mwl_loop *loop, mwl_signal_fn fn, void *user);
/* Puts back the SIGTERM/SIGINT/SIGHUP/SIGPIPE actions found at install. */
MWL_API void mwl_net_signals_restore(void);
/* SIGPIPE ignored process-wide, for code paths that write to a pipe or
 * socket without MSG_NOSIGNAL. MWL_OK or MWL_E_IO. */
MWL_API int mwl_net_ignore_sigpipe(void);

/* ---- worker pool -------------------------------------------------------- */

/* A fixed set of threads running queued jobs (query steps against the
 * store) off the loop thread. Jobs are caller-owned, intrusive, and finish
 * by posting an mwl_loop_task back to the loop. The queue is bounded and
 * submitting never blocks, so the loop thread cannot stall on it. Workers
 * block asynchronous signals, so handlers run on another thread. */
typedef struct mwl_pool mwl_pool;

typedef struct mwl_pool_job {
    /* `worker` is 0..threads-1, for per-worker state chosen by the caller. */
    void (*fn)(struct mwl_pool_job *job, size_t worker);
    /* Background work (a long scan's later steps): queued apart, run by the
     * pool's background workers, or, without them, only when no normal job
     * waits and by at most the background limit of workers at once, so the
     * others stay free for short jobs. Set before each submit. */
    bool background;
    struct mwl_pool_job *next; /* the pool's link; leave it alone */
} mwl_pool_job;

typedef struct mwl_pool_config {
    size_t threads;    /* workers for normal jobs, >= 1 */
    size_t max_queued; /* jobs waiting (not counting running ones), >= 1 */
    /* Workers that run background jobs only, at a lower CPU priority
     * (background_nice added to their nice value, Linux: per thread), so
     * long scans neither take a normal worker nor compete evenly for the
     * CPU with short queries. 0: background jobs run on the normal workers,
     * at most half of them (mwl_pool_set_background_limit) at once. */
    size_t background_threads;
    int background_nice; /* 0..19; default 19 (measured: 19 cuts the p99 of short
                          * queries beside four scans by a third against 0) */
} mwl_pool_config;

/* Fills the defaults above: no background workers, nice 19. */
MWL_API void mwl_pool_config_init(mwl_pool_config *cfg, size_t threads, size_t max_queued);

/* MWL_OK, MWL_E_INVALID, MWL_E_NOMEM, MWL_E_IO (a thread could not start;
 * the ones started are joined again). */
MWL_API MWL_MUST_CHECK int mwl_pool_new_ex(const mwl_pool_config *cfg, const mwl_mem *mem, mwl_pool **out,
                                           mwl_diag *diag);
/* mwl_pool_new_ex with `threads` workers, `max_queued`, and the defaults. */
MWL_API MWL_MUST_CHECK int mwl_pool_new(size_t threads, size_t max_queued, const mwl_mem *mem, mwl_pool **out,
                                        mwl_diag *diag);
/* Thread-safe, never blocks on the queue. Queues `job` (FIFO). MWL_OK,
 * MWL_E_LIMIT when max_queued jobs are waiting, MWL_E_CLOSED once
 * mwl_pool_free has begun, MWL_E_INVALID; on error the job was not queued. */
MWL_API MWL_MUST_CHECK int mwl_pool_submit(mwl_pool *pool, mwl_pool_job *job);
MWL_API size_t mwl_pool_threads(const mwl_pool *pool);
/* Without dedicated background workers: at most `limit` (>= 1; 0 is read
 * as 1) normal workers run background jobs at once; the default is half of
 * them (at least one). Thread-safe. */
MWL_API void mwl_pool_set_background_limit(mwl_pool *pool, size_t limit);
/* Runs every job already queued, joins the threads, frees the pool. Jobs
 * must not submit new work while this runs. NULL is a no-op. */
MWL_API void mwl_pool_free(mwl_pool *pool);

/* ---- process helpers ---------------------------------------------------- */

/* The wall clock in UTC, ISO 8601 with milliseconds
 * ("2026-12-04T20:29:14.629Z"), for audit records. */
#define MWL_UTC_TIMESTAMP_SIZE 32
MWL_API void mwl_utc_timestamp(char out[MWL_UTC_TIMESTAMP_SIZE]);

/* CPUs online (at least 1), for sizing thread pools. */
MWL_API size_t mwl_cpu_count(void);

/* Counts this process's open file descriptors (/proc/self/fd, or /dev/fd
 * where there is no /proc), for tests checking that nothing leaks.
 * MWL_OK or MWL_E_UNSUPPORTED. */
MWL_API MWL_MUST_CHECK int mwl_net_count_fds(size_t *count /* out */);

/* ---- for transport implementers ----------------------------------------- */

/* The vtable behind mwl_conn (STYLE.md §12.9, like Redis's ConnectionType
 * and Mbed TLS's f_send/f_recv). net/tcp.c implements it for TCP; TLS will
 * wrap the TCP fd the same way, and tests may build doubles (short reads,
 * EAGAIN storms) with mwl_conn_new. The mwl_conn_* wrappers check the
 * arguments, so an op sees cap > 0 and 1 <= count <= MWL_CONN_IOV_MAX. */
typedef struct mwl_conn_ops {
    const char *name;
    /* Return as mwl_conn_read/mwl_conn_writev document. On MWL_AGAIN set
     * *wants to what must become ready before a retry can progress. */
    int (*read)(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants);
    int (*writev)(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants);
    /* Decrypted bytes buffered inside the transport; NULL means none ever. */
    size_t (*pending)(const mwl_conn *c);
    /* As mwl_conn_shutdown; NULL means shutdown(fd, SHUT_WR). */
    int (*shutdown)(mwl_conn *c);
    /* Releases the implementation's state and the fd. */
    void (*close)(mwl_conn *c);
    /* The peer's authenticated identity (a TLS client certificate's
     * subject), "" when none; NULL = never any. */
    const char *(*peer_subject)(const mwl_conn *c);
    /* Why the transport failed, beyond errno ("TLS handshake: certificate
     * verify failed"), "" when it did not; NULL = errno says all. */
    const char *(*error_text)(const mwl_conn *c);
} mwl_conn_ops;

/* Wraps an implementation: `impl` is the ops' private state, `fd` what to
 * poll (-1 for a double without one), `peer` the address text for logs.
 * MWL_OK, MWL_E_INVALID (read, writev or close missing), or MWL_E_NOMEM;
 * on error nothing is closed. */
MWL_API MWL_MUST_CHECK int mwl_conn_new(const mwl_conn_ops *ops, void *impl, int fd, bool nonblocking,
                                        const char *peer, const mwl_mem *mem, mwl_conn **out);
MWL_API void *mwl_conn_impl(const mwl_conn *c);
/* Lets an op record errno for mwl_conn_errno. */
MWL_API void mwl_conn_set_errno(mwl_conn *c, int err);

#endif
