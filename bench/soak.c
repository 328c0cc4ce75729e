/* soak: a long run of mixed traffic against a running server (issue 11),
 * checking that nothing leaks and nothing fails.
 *
 *   soak --port P [--tls-port T --ca F --cert F --key F] [--server-pid PID] [options]
 *
 * One process of threads, each client through mwl's client API
 * (client/client.h) or, for the stallers, its transport (net/net.h):
 *   mixed clients  (--clients, default 64) loop over associations until the
 *                  end: half of them (--tls-clients) over TLS with a client
 *                  certificate, all sharing one client mwl_tls so sessions
 *                  resume, the rest plain. On each association a random
 *                  number of operations (none: release at once; or 1..20),
 *                  each a C-ECHO, a C-FIND for one station's day (a few
 *                  tens of matches, the same number every time), or a
 *                  C-FIND matching many that is cancelled after its first
 *                  1..3 responses (final status FE00, or 0000 when the
 *                  server had already finished); then A-RELEASE, or now and
 *                  then A-ABORT.
 *   stallers       (--stallers, default 8) connect (plain or TLS) and then
 *                  send nothing, half an A-ASSOCIATE-RQ, or a whole one and
 *                  nothing after the A-ASSOCIATE-AC; each waits (at most
 *                  --stall-limit) for the server's timers to close the
 *                  connection, then starts again.
 *   sequential     one thread, --sequential associations (default 100,000)
 *                  one after another: A-ASSOCIATE, C-ECHO, A-RELEASE.
 * Phases: a warm-up (--warmup s of the same threads), a pause until the
 * server's fd count is steady, the first sample of its RSS and open fds
 * (/proc/PID/status, /proc/PID/fd; the worklist database's files not
 * counted, see server_fds); then the load for --duration seconds,
 * and for as long as the sequential associations take beyond that; then a
 * pause until the server has closed everything (its fd count back to the
 * first sample, at most --settle s) and the second sample.
 *
 * A failure is anything but the expected outcome: a connect or TLS
 * handshake that fails, an A-ASSOCIATE-RJ, an A-ABORT or a close from the
 * server, a timeout, a response that does not decode, a status other than
 * expected, a station's day with no matches or a different number than
 * before, a staller the server does not close in time. Prints a table and
 * one JSON line (the last line of stdout). Exit 0 when there were no
 * failures, the server's fds at the end equal those at the start and its
 * RSS grew by less than --max-rss-growth percent; 1 otherwise; 2 on a
 * usage error. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "dicom/codec.h"
#include "net/net.h"

/* ---- clock and histogram (as load_bench) -------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t d)
{
    struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

#define SUB_BITS 6
#define SUB_COUNT (1u << SUB_BITS)
#define HIST_BUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)

typedef struct hist {
    uint64_t bucket[HIST_BUCKETS];
    uint64_t count, max, sum; /* nanoseconds */
} hist;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB_COUNT)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - SUB_BITS;
    return (e + 1) * SUB_COUNT + (unsigned)((v >> e) - SUB_COUNT);
}

static uint64_t hist_upper(unsigned i)
{
    if (i < SUB_COUNT)
        return i;
    unsigned e = i / SUB_COUNT - 1, sub = i % SUB_COUNT;
    return ((uint64_t)(SUB_COUNT + sub + 1) << e) - 1;
}

static void hist_add(hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static void hist_merge(hist *into, const hist *h)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += h->bucket[i];
    into->count += h->count;
    into->sum += h->sum;
    if (h->max > into->max)
        into->max = h->max;
}

/* The q-quantile in milliseconds (the bucket's upper bound, at most max). */
static double hist_ms(const hist *h, double q)
{
    if (h->count == 0)
        return 0;
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            return (double)(v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* ---- what is counted ------------------------------------------------------ */

/* Operations (each with a latency histogram). */
enum {
    K_ASSOC_PLAIN, /* mixed client: connect + A-ASSOCIATE over TCP */
    K_ASSOC_TLS,   /* ... over TLS (handshake included) */
    K_ECHO,        /* C-ECHO */
    K_FIND,        /* C-FIND, a station's day */
    K_CANCEL,      /* C-FIND matching many, C-CANCEL after 1..3 responses */
    K_RELEASE,     /* A-RELEASE-RQ .. RP */
    K_ABORT,       /* A-ABORT from us */
    K_SEQ,         /* sequential thread: a whole association (C-ECHO) */
    K_STALL,       /* a staller: from its last byte sent to the server's close */
    K_COUNT
};
static const char *const k_name[K_COUNT] = {"assoc_plain", "assoc_tls", "echo",       "find",       "cancel",
                                            "release",     "abort",     "sequential", "stall_close"};

/* Failures, by kind. */
enum {
    F_CONNECT,       /* TCP connect failed */
    F_TLS,           /* TCP connect or TLS handshake failed, TLS client */
    F_REJECTED,      /* A-ASSOCIATE-RJ */
    F_ABORTED,       /* A-ABORT from the server */
    F_CLOSED,        /* the server closed or reset the connection */
    F_TIMEOUT,       /* no answer in time (the client aborted) */
    F_PROTOCOL,      /* an invalid PDU or DIMSE message from the server */
    F_LOCAL,         /* anything else the client reports */
    F_ECHO_STATUS,   /* C-ECHO-RSP status not 0000 */
    F_FIND_STATUS,   /* C-FIND final status not 0000 */
    F_CANCEL_STATUS, /* cancelled C-FIND final status not FE00 / 0000 */
    F_DECODE,        /* a Pending response whose identifier does not decode */
    F_MATCHES,       /* a station's day: no matches, or not the same number as before */
    F_STALL_CONNECT, /* a staller could not connect (or handshake) */
    F_STALL_ANSWER,  /* a staller's A-ASSOCIATE-RQ got no A-ASSOCIATE-AC */
    F_STALL_OPEN,    /* the server did not close a staller within --stall-limit */
    F_SERVER_GONE,   /* the server process exited during the run */
    F_COUNT
};
static const char *const f_name[F_COUNT] = {
    "connect",  "tls",           "rejected",    "aborted",          "closed",        "timeout",
    "protocol", "local",         "echo_status", "find_status",      "cancel_status", "decode",
    "matches",  "stall_connect", "stall_no_ac", "stall_not_closed", "server_gone"};

/* Staller kinds. */
enum {
    S_SILENT,     /* connect (TLS: and handshake), send nothing */
    S_HALF,       /* half an A-ASSOCIATE-RQ */
    S_RQ,         /* a whole A-ASSOCIATE-RQ, read the AC, then nothing */
    S_TLS_NOHELO, /* TLS port: TCP connect, no ClientHello */
    S_COUNT
};
static const char *const s_name[S_COUNT] = {"silent", "half_rq", "rq_then_nothing", "no_client_hello"};

static const char *const stations[] = {"CT01", "CT02", "MR01", "MR02", "US01", "CR01", "MG01", "NM01"};
#define N_STATIONS (sizeof stations / sizeof stations[0])

typedef struct settings {
    const char *host, *aet;
    uint16_t port, tls_port;
    const char *ca, *cert, *key;
    long server_pid;
    double duration_s, warmup_s, stall_limit_s, settle_s, progress_s;
    int clients, tls_clients, stallers;
    long sequential;
    char date[9];
    double max_rss_growth;
    uint64_t seed;
} settings;

static settings S;
static mwl_tls *client_tls; /* shared by every TLS client: sessions resume */
static atomic_int stop_flag;
static atomic_int abort_flag; /* the server is gone: stop everything at once */

static _Atomic uint64_t op_count[K_COUNT];
static _Atomic uint64_t fail_count[F_COUNT];
static _Atomic uint64_t tls_resumed, matches_total, cancel_late, discarded_total;
static _Atomic uint64_t stall_count[2][S_COUNT];      /* [tls][kind] */
static _Atomic long long station_matches[N_STATIONS]; /* -1 until the first answer */
static _Atomic uint64_t seq_done;
static uint64_t seq_t0, seq_t1;

/* The first failures' messages, printed as they happen and at the end. */
#define ERR_KEEP 20
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char err_text[ERR_KEEP][320];
static unsigned err_n;

static void failure(int kind, const char *who, const char *fmt, ...) MWL_PRINTF(3, 4);
static void failure(int kind, const char *who, const char *fmt, ...)
{
    atomic_fetch_add(&fail_count[kind], 1);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&err_lock);
    if (err_n < ERR_KEEP) {
        snprintf(err_text[err_n], sizeof err_text[err_n], "%s [%s]: %s", who, f_name[kind], msg);
        fprintf(stderr, "soak: failure: %s\n", err_text[err_n]);
        err_n++;
    }
    pthread_mutex_unlock(&err_lock);
}

/* The failure kind of an association that failed, from the client's report. */
static int scu_failure_kind(const mwl_scu *scu, bool tls)
{
    switch (mwl_scu_last_error(scu)->failure) {
    case MWL_SCU_FAIL_CONNECT: return tls ? F_TLS : F_CONNECT;
    case MWL_SCU_FAIL_REJECTED: return F_REJECTED;
    case MWL_SCU_FAIL_ABORTED: return F_ABORTED;
    case MWL_SCU_FAIL_CLOSED: return F_CLOSED;
    case MWL_SCU_FAIL_TIMEOUT: return F_TIMEOUT;
    case MWL_SCU_FAIL_PROTOCOL: return F_PROTOCOL;
    case MWL_SCU_FAIL_NONE:
    case MWL_SCU_FAIL_NO_CONTEXT:
    case MWL_SCU_FAIL_CANCELLED:
    case MWL_SCU_FAIL_LOCAL: return F_LOCAL;
    }
    return F_LOCAL;
}

/* ---- the server's process --------------------------------------------------- */

/* VmRSS in KiB, -1 when unreadable. */
static long server_rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", S.server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Open fds, -1 when unreadable; without the worklist database's own files
 * (*.db, *.db-wal, *.db-shm): the C-FIND provider keeps a pool of store
 * connections (two such fds each) that grows to the most steps that ever
 * ran at once, which under a loaded machine's timing can be one more than
 * the warm-up reached -- a pool, not a leak (bounded; the RSS check sees a
 * runaway). Sockets and every other file still count. */
static long server_fds(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", S.server_pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char link[320], target[512];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            if (ends_with(target, ".db") || ends_with(target, ".db-wal") || ends_with(target, ".db-shm"))
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

static bool server_alive(void)
{
    return S.server_pid == 0 || kill((pid_t)S.server_pid, 0) == 0 || errno == EPERM;
}

/* ---- queries ------------------------------------------------------------------ */

/* The return keys a modality typically asks for (as load_bench), with the
 * station, and the day unless `date` is NULL. */
static int build_query(mwl_arena *a, const char *station, const char *date, mwl_ds **out)
{
    mwl_ds *q, *sps;
    int rc = mwl_ds_new(a, NULL, &q);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(q, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    static const uint32_t top[] = {MWL_TAG_AccessionNumber,      MWL_TAG_ReferringPhysicianName,
                                   MWL_TAG_PatientName,          MWL_TAG_PatientID,
                                   MWL_TAG_PatientBirthDate,     MWL_TAG_PatientSex,
                                   MWL_TAG_StudyInstanceUID,     MWL_TAG_RequestedProcedureDescription,
                                   MWL_TAG_RequestedProcedureID, MWL_TAG_RequestedProcedurePriority};
    static const uint32_t in_sps[] = {MWL_TAG_Modality,
                                      MWL_TAG_ScheduledProcedureStepStartDate,
                                      MWL_TAG_ScheduledProcedureStepStartTime,
                                      MWL_TAG_ScheduledPerformingPhysicianName,
                                      MWL_TAG_ScheduledProcedureStepDescription,
                                      MWL_TAG_ScheduledStationName,
                                      MWL_TAG_ScheduledProcedureStepLocation,
                                      MWL_TAG_ScheduledProcedureStepID};
    for (size_t i = 0; rc == MWL_OK && i < sizeof top / sizeof top[0]; i++)
        rc = mwl_ds_set_str(q, top[i], MWL_VR_NONE, "");
    for (size_t i = 0; rc == MWL_OK && i < sizeof in_sps / sizeof in_sps[0]; i++)
        rc = mwl_ds_set_str(sps, in_sps[i], MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_seq(sps, MWL_TAG_ScheduledProtocolCodeSequence, NULL);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_NONE, station);
    if (rc == MWL_OK && date)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, MWL_VR_NONE, date);
    *out = q;
    return rc;
}

typedef struct find_ctx {
    uint64_t count, bad;
    uint64_t cancel_after; /* 0: never */
    const char *bad_text;
} find_ctx;

static int on_rsp(void *user, const mwl_scu_find_rsp *rsp)
{
    find_ctx *f = user;
    f->count++;
    if (rsp->decode_status != MWL_OK) {
        f->bad++;
        f->bad_text = rsp->decode_error;
    }
    if (f->cancel_after && f->count >= f->cancel_after)
        return MWL_SCU_FIND_CANCEL;
    return MWL_SCU_FIND_CONTINUE;
}

/* ---- mixed clients -------------------------------------------------------- */

typedef struct thread_ctx {
    pthread_t tid;
    int index;
    bool tls;
    bool warmup;
    char name[32];
    uint64_t rng;
    hist *h; /* [K_COUNT] */
} thread_ctx;

static int new_scu(const char *calling, bool tls, mwl_scu **scu)
{
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = S.host;
    cfg.port = tls ? S.tls_port : S.port;
    cfg.called_ae = S.aet;
    cfg.calling_ae = calling;
    cfg.max_pdu_length = 65536;
    if (tls) {
        cfg.tls = true;
        cfg.tls_context = client_tls;
    }
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = mwl_scu_new(&cfg, scu, &d);
    if (rc != MWL_OK)
        fprintf(stderr, "soak: mwl_scu_new: %s\n", d.msg);
    return rc;
}

static void timed(thread_ctx *t, int kind, uint64_t t0)
{
    hist_add(&t->h[kind], now_ns() - t0);
    atomic_fetch_add_explicit(&op_count[kind], 1, memory_order_relaxed);
}

/* One C-FIND. `cancel`: the query matches many, cancelled after 1..3.
 * Returns false when the association is over. */
static bool do_find(thread_ctx *t, mwl_scu *scu, mwl_arena *arena, bool cancel)
{
    size_t st = (size_t)(rng_next(&t->rng) % N_STATIONS);
    mwl_ds *q;
    if (build_query(arena, stations[st], cancel ? NULL : S.date, &q) != MWL_OK) {
        mwl_arena_clear(arena);
        failure(F_LOCAL, t->name, "cannot build the query");
        return true;
    }
    find_ctx f = {0};
    if (cancel)
        f.cancel_after = 1 + rng_next(&t->rng) % 3;
    mwl_scu_find_result res;
    uint64_t t0 = now_ns();
    int rc = mwl_scu_find(scu, q, MWL_DIMSE_PRIORITY_MEDIUM, on_rsp, &f, &res);
    mwl_arena_clear(arena);
    const char *what = cancel ? "C-FIND with C-CANCEL" : "C-FIND";
    if (rc != MWL_OK) {
        failure(scu_failure_kind(scu, t->tls), t->name, "%s (%s): %s", what, stations[st],
                mwl_scu_last_error(scu)->msg);
        return mwl_scu_is_associated(scu);
    }
    if (!t->warmup)
        timed(t, cancel ? K_CANCEL : K_FIND, t0);
    if (f.bad)
        failure(F_DECODE, t->name, "%s: %llu responses do not decode: %s", what, (unsigned long long)f.bad,
                f.bad_text ? f.bad_text : "");
    atomic_fetch_add_explicit(&matches_total, f.count, memory_order_relaxed);
    if (cancel) {
        atomic_fetch_add_explicit(&discarded_total, res.discarded_count, memory_order_relaxed);
        if (!res.cancel_sent)
            failure(F_MATCHES, t->name, "%s: station %s: %llu matches, fewer than %llu", what, stations[st],
                    (unsigned long long)f.count, (unsigned long long)f.cancel_after);
        else if (res.status == 0x0000)
            atomic_fetch_add_explicit(&cancel_late, 1, memory_order_relaxed);
        else if (res.status != 0xFE00)
            failure(F_CANCEL_STATUS, t->name, "%s: final status %04X (%s), want FE00", what, res.status,
                    res.error_comment);
        return true;
    }
    if (res.status != 0x0000) {
        failure(F_FIND_STATUS, t->name, "%s %s %s: final status %04X (%s)", what, stations[st], S.date,
                res.status, res.error_comment);
        return true;
    }
    /* The database does not change during the run: a station's day has
     * the same number of matches every time. */
    long long want = -1;
    if (!atomic_compare_exchange_strong(&station_matches[st], &want, (long long)f.count) &&
        want != (long long)f.count)
        failure(F_MATCHES, t->name, "%s %s %s: %llu matches, %lld before", what, stations[st], S.date,
                (unsigned long long)f.count, want);
    else if (f.count == 0)
        failure(F_MATCHES, t->name, "%s %s %s: no matches (wrong database or --date?)", what, stations[st],
                S.date);
    return true;
}

static void *mixed_main(void *arg)
{
    thread_ctx *t = arg;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    while (!atomic_load(&stop_flag) && !atomic_load(&abort_flag)) {
        mwl_scu *scu;
        if (new_scu(t->tls ? "SOAKTLS" : "SOAKMIX", t->tls, &scu) != MWL_OK) {
            failure(F_LOCAL, t->name, "cannot make a client");
            break;
        }
        uint64_t t0 = now_ns();
        if (mwl_scu_associate(scu) != MWL_OK) {
            failure(scu_failure_kind(scu, t->tls), t->name, "associate: %s", mwl_scu_last_error(scu)->msg);
            mwl_scu_free(scu);
            sleep_ns(100000000u); /* no busy loop against a server that refuses */
            continue;
        }
        if (!t->warmup)
            timed(t, t->tls ? K_ASSOC_TLS : K_ASSOC_PLAIN, t0);
        const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(scu);
        if (t->tls && info && info->tls_resumed && !t->warmup)
            atomic_fetch_add_explicit(&tls_resumed, 1, memory_order_relaxed);
        /* none (release at once) 15 %, one 35 %, 2..5 35 %, 6..20 15 % */
        unsigned r = (unsigned)(rng_next(&t->rng) % 100), nops;
        if (r < 15)
            nops = 0;
        else if (r < 50)
            nops = 1;
        else if (r < 85)
            nops = 2 + (unsigned)(rng_next(&t->rng) % 4);
        else
            nops = 6 + (unsigned)(rng_next(&t->rng) % 15);
        bool alive = true;
        for (unsigned i = 0; alive && i < nops; i++) {
            unsigned op = (unsigned)(rng_next(&t->rng) % 100);
            if (op < 35) {
                uint16_t status = 0;
                uint64_t e0 = now_ns();
                if (mwl_scu_echo(scu, &status) != MWL_OK) {
                    failure(scu_failure_kind(scu, t->tls), t->name, "C-ECHO: %s",
                            mwl_scu_last_error(scu)->msg);
                    alive = mwl_scu_is_associated(scu);
                } else {
                    if (!t->warmup)
                        timed(t, K_ECHO, e0);
                    if (status != 0)
                        failure(F_ECHO_STATUS, t->name, "C-ECHO status %04X", status);
                }
            } else {
                alive = do_find(t, scu, &arena, op >= 75);
            }
        }
        if (alive) {
            uint64_t e0 = now_ns();
            if (rng_next(&t->rng) % 100 < 20) {
                mwl_scu_abort(scu);
                if (!t->warmup)
                    timed(t, K_ABORT, e0);
            } else if (mwl_scu_release(scu) != MWL_OK) {
                failure(scu_failure_kind(scu, t->tls), t->name, "release: %s", mwl_scu_last_error(scu)->msg);
            } else if (!t->warmup) {
                timed(t, K_RELEASE, e0);
            }
        }
        mwl_scu_free(scu);
    }
    mwl_arena_clear(&arena);
    return NULL;
}

/* ---- sequential associations ------------------------------------------------ */

static void *sequential_main(void *arg)
{
    thread_ctx *t = arg;
    /* In the warm-up: until told to stop, counting nothing but failures. */
    long n = t->warmup ? LONG_MAX : S.sequential;
    if (!t->warmup)
        seq_t0 = now_ns();
    for (long i = 0; i < n && !atomic_load(&abort_flag) && !(t->warmup && atomic_load(&stop_flag)); i++) {
        mwl_scu *scu;
        if (new_scu("SOAKSEQ", false, &scu) != MWL_OK) {
            failure(F_LOCAL, t->name, "cannot make a client");
            break;
        }
        uint64_t t0 = now_ns();
        uint16_t status = 0;
        if (mwl_scu_associate(scu) != MWL_OK)
            failure(scu_failure_kind(scu, false), t->name, "associate #%ld: %s", i + 1,
                    mwl_scu_last_error(scu)->msg);
        else if (mwl_scu_echo(scu, &status) != MWL_OK)
            failure(scu_failure_kind(scu, false), t->name, "C-ECHO #%ld: %s", i + 1,
                    mwl_scu_last_error(scu)->msg);
        else if (status != 0)
            failure(F_ECHO_STATUS, t->name, "C-ECHO #%ld: status %04X", i + 1, status);
        else if (mwl_scu_release(scu) != MWL_OK)
            failure(scu_failure_kind(scu, false), t->name, "release #%ld: %s", i + 1,
                    mwl_scu_last_error(scu)->msg);
        else if (!t->warmup)
            timed(t, K_SEQ, t0);
        mwl_scu_free(scu);
        if (!t->warmup)
            atomic_fetch_add(&seq_done, 1);
    }
    if (!t->warmup)
        seq_t1 = now_ns();
    return NULL;
}

/* ---- stallers ------------------------------------------------------------------ */

/* An A-ASSOCIATE-RQ (PS3.8 §9.3.2) proposing Verification in Implicit VR
 * Little Endian; returns its length. */
static size_t build_assoc_rq(uint8_t *out, const char *called, const char *calling)
{
    size_t n = 0;
#define PUT8(v) (out[n++] = (uint8_t)(v))
#define PUT16(v) (PUT8((v) >> 8), PUT8(v))
    static const char app[] = "1.2.840.10008.3.1.1.1", ver[] = "1.2.840.10008.1.1",
                      ile[] = "1.2.840.10008.1.2";
    static const char impl[] = MWL_IMPLEMENTATION_CLASS_UID;
    PUT8(0x01), PUT8(0), n += 4; /* type, reserved, length (below) */
    PUT16(1), PUT16(0);          /* protocol version, reserved */
    for (int pass = 0; pass < 2; pass++) {
        const char *ae = pass ? calling : called;
        size_t len = strlen(ae);
        for (size_t i = 0; i < 16; i++)
            PUT8(i < len ? ae[i] : ' ');
    }
    memset(out + n, 0, 32), n += 32;
    PUT8(0x10), PUT8(0), PUT16(sizeof app - 1);
    memcpy(out + n, app, sizeof app - 1), n += sizeof app - 1;
    PUT8(0x20), PUT8(0), PUT16(4 + 4 + sizeof ver - 1 + 4 + sizeof ile - 1);
    PUT8(1), PUT8(0), PUT8(0), PUT8(0);
    PUT8(0x30), PUT8(0), PUT16(sizeof ver - 1);
    memcpy(out + n, ver, sizeof ver - 1), n += sizeof ver - 1;
    PUT8(0x40), PUT8(0), PUT16(sizeof ile - 1);
    memcpy(out + n, ile, sizeof ile - 1), n += sizeof ile - 1;
    PUT8(0x50), PUT8(0), PUT16(8 + 4 + sizeof impl - 1);
    PUT8(0x51), PUT8(0), PUT16(4), PUT16(0), PUT16(16384);
    PUT8(0x52), PUT8(0), PUT16(sizeof impl - 1);
    memcpy(out + n, impl, sizeof impl - 1), n += sizeof impl - 1;
#undef PUT16
#undef PUT8
    uint32_t len = (uint32_t)(n - 6);
    out[2] = (uint8_t)(len >> 24), out[3] = (uint8_t)(len >> 16), out[4] = (uint8_t)(len >> 8);
    out[5] = (uint8_t)len;
    return n;
}

/* One stall: connect, send what `kind` says, wait for the server to close. */
static void stall_once(thread_ctx *t, int kind)
{
    bool tls = t->tls;
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_conn *c = NULL;
    int rc = mwl_net_connect(S.host, tls ? S.tls_port : S.port, 10000, NULL, &c, &d);
    if (rc != MWL_OK) {
        failure(F_STALL_CONNECT, t->name, "%s connect: %s", s_name[kind], d.msg);
        sleep_ns(100000000u);
        return;
    }
    if (tls && kind != S_TLS_NOHELO) {
        mwl_conn *tc = NULL;
        rc = mwl_tls_wrap(client_tls, c, NULL, &tc, &d); /* takes c */
        c = tc;
        if (rc == MWL_OK)
            rc = mwl_tls_handshake(c, mwl_deadline_in(10000), &d);
        if (rc != MWL_OK) {
            failure(F_STALL_CONNECT, t->name, "%s TLS handshake: %s", s_name[kind],
                    d.msg[0] ? d.msg : "failed");
            mwl_conn_close(c);
            sleep_ns(100000000u);
            return;
        }
    }
    uint8_t rq[256];
    size_t rq_len = build_assoc_rq(rq, S.aet, "SOAKSTALL");
    uint64_t deadline = mwl_deadline_in((int64_t)(S.stall_limit_s * 1000));
    if (kind == S_HALF || kind == S_RQ) {
        mwl_iov iov = {rq, kind == S_HALF ? rq_len / 2 : rq_len};
        rc = mwl_conn_write_all_deadline(c, &iov, 1, deadline, NULL);
        if (rc != MWL_OK) {
            failure(F_STALL_CONNECT, t->name, "%s: cannot send: %s", s_name[kind], mwl_status_str(rc));
            mwl_conn_close(c);
            return;
        }
    }
    uint64_t t0 = now_ns();
    uint8_t buf[4096];
    size_t got = 0;
    int first = -1;
    for (;;) {
        size_t n = 0;
        rc = mwl_conn_read_deadline(c, buf, sizeof buf, &n, deadline);
        if (rc != MWL_OK)
            break;
        if (got == 0)
            first = buf[0];
        got += n;
    }
    if (rc == MWL_E_TIMEOUT) {
        failure(F_STALL_OPEN, t->name, "%s%s: still open after %.1f s", tls ? "TLS " : "", s_name[kind],
                S.stall_limit_s);
    } else if (!t->warmup) {
        hist_add(&t->h[K_STALL], now_ns() - t0);
        atomic_fetch_add_explicit(&op_count[K_STALL], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&stall_count[tls][kind], 1, memory_order_relaxed);
    }
    if (rc != MWL_E_TIMEOUT && kind == S_RQ && first != 0x02)
        failure(F_STALL_ANSWER, t->name, "%sA-ASSOCIATE-RQ answered with PDU type %d, not A-ASSOCIATE-AC",
                tls ? "TLS " : "", first);
    mwl_conn_close(c);
}

static void *staller_main(void *arg)
{
    thread_ctx *t = arg;
    int nkinds = t->tls ? S_COUNT : S_TLS_NOHELO;
    for (int round = t->index; !atomic_load(&stop_flag) && !atomic_load(&abort_flag); round++)
        stall_once(t, round % nkinds);
    return NULL;
}

/* ---- phases ------------------------------------------------------------------------ */

typedef struct crew {
    thread_ctx *t;
    int n;
} crew;

static int start(crew *c, const char *role, int index, bool tls, bool warmup, void *(*fn)(void *))
{
    thread_ctx *t = &c->t[c->n];
    memset(t, 0, sizeof *t);
    t->index = index;
    t->tls = tls;
    t->warmup = warmup;
    uint64_t n = (uint64_t)c->n + (warmup ? 1000u : 1u);
    t->rng = (S.seed ^ UINT64_C(0x9E3779B97F4A7C15)) + n * UINT64_C(0x100000001B3);
    t->rng |= 1;
    snprintf(t->name, sizeof t->name, "%s %d%s", role, index, tls ? " (TLS)" : "");
    t->h = calloc(K_COUNT, sizeof *t->h);
    if (!t->h || pthread_create(&t->tid, NULL, fn, t) != 0) {
        free(t->h);
        fprintf(stderr, "soak: cannot start a thread\n");
        return -1;
    }
    c->n++;
    return 0;
}

/* Every thread of a phase: mixed clients, stallers (every other one over
 * TLS when there is a TLS port), the sequential associations. */
static int start_all(crew *c, bool warmup)
{
    int rc = 0;
    for (int i = 0; i < S.clients && rc == 0; i++)
        rc = start(c, "mixed", i, i < S.tls_clients, warmup, mixed_main);
    for (int i = 0; i < S.stallers && rc == 0; i++)
        rc = start(c, "staller", i, S.tls_port && i % 2 == 1, warmup, staller_main);
    if (S.sequential > 0 && rc == 0)
        rc = start(c, "sequential", 0, false, warmup, sequential_main);
    return rc;
}

static void join_all(crew *c, hist *into)
{
    for (int i = 0; i < c->n; i++) {
        pthread_join(c->t[i].tid, NULL);
        if (into)
            for (int k = 0; k < K_COUNT; k++)
                hist_merge(&into[k], &c->t[i].h[k]);
        free(c->t[i].h);
    }
    c->n = 0;
}

/* Waits until the server's fd count has not changed for a second (and, if
 * `target` >= 0, is at most target), at most `limit_s`. Returns the count. */
static long settle(long target, double limit_s)
{
    if (S.server_pid == 0)
        return -1;
    uint64_t end = now_ns() + (uint64_t)(limit_s * 1e9);
    long last = server_fds();
    int steady = 0;
    while (now_ns() < end) {
        sleep_ns(100000000u);
        long n = server_fds();
        steady = n == last ? steady + 1 : 0;
        last = n;
        if (steady >= 10 && (target < 0 || n <= target))
            break;
    }
    return last;
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: soak --port P [--host H] [--aet AEC] [--tls-port T --ca F --cert F --key F]\n"
                 "            [--server-pid PID] [options]\n"
                 "\n"
                 "  --clients N          mixed client threads (default 64)\n"
                 "  --tls-clients N      of them over TLS (default half, when --tls-port is given)\n"
                 "  --stallers N         threads that connect and stall (default 8; half over TLS)\n"
                 "  --sequential N       sequential C-ECHO associations (default 100000)\n"
                 "  --duration S         seconds of load (default 300; longer while the sequential\n"
                 "                       associations are not done)\n"
                 "  --warmup S           seconds of the same load before the first sample (default 30)\n"
                 "  --date YYYYMMDD      the day the station queries ask for (default today)\n"
                 "  --stall-limit S      longest a staller waits for the server to close it (default 30)\n"
                 "  --settle S           longest wait for the server to close everything (default 30)\n"
                 "  --max-rss-growth P   RSS growth bound, percent (default 10)\n"
                 "  --progress S         a progress line on stderr every S seconds (default 30, 0 = none)\n"
                 "  --seed N             random seed (default 1)\n"
                 "\n"
                 "Exit 0: no failures, the server's fds at the end equal those at the start,\n"
                 "RSS growth under the bound (the last two need --server-pid); 1 otherwise.\n");
}

static double parse_num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "soak: bad value for --%s: %s\n", opt, v);
        exit(2);
    }
    return x;
}

static void today(char out[9])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    if (strftime(out, 9, "%Y%m%d", &tm) != 8)
        memcpy(out, "20000101", 9);
}

static void print_hist_json(const char *name, const hist *h, double secs, bool comma)
{
    printf("%s\"%s\":{\"count\":%llu,\"per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
           comma ? "," : "", name, (unsigned long long)h->count, secs > 0 ? (double)h->count / secs : 0.0,
           hist_ms(h, 0.5), hist_ms(h, 0.99), (double)h->max / 1e6);
}

int main(int argc, char **argv)
{
    S.host = "127.0.0.1";
    S.aet = "MWL";
    S.duration_s = 300;
    S.warmup_s = 30;
    S.stall_limit_s = 30;
    S.settle_s = 30;
    S.progress_s = 30;
    S.clients = 64;
    S.tls_clients = -1;
    S.stallers = 8;
    S.sequential = 100000;
    S.max_rss_growth = 10;
    S.seed = 1;
    today(S.date);
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},     {"port", required_argument, NULL, 'p'},
        {"tls-port", required_argument, NULL, 'P'}, {"aet", required_argument, NULL, 'a'},
        {"ca", required_argument, NULL, 'C'},       {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},      {"server-pid", required_argument, NULL, 'i'},
        {"clients", required_argument, NULL, 'n'},  {"tls-clients", required_argument, NULL, 'T'},
        {"stallers", required_argument, NULL, 's'}, {"sequential", required_argument, NULL, 'q'},
        {"duration", required_argument, NULL, 't'}, {"warmup", required_argument, NULL, 'u'},
        {"date", required_argument, NULL, 'D'},     {"stall-limit", required_argument, NULL, 'l'},
        {"settle", required_argument, NULL, 'S'},   {"max-rss-growth", required_argument, NULL, 'g'},
        {"progress", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = opts; o->name; o++)
            if (o->val == ch)
                name = o->name;
        switch (ch) {
        case 'H': S.host = optarg; break;
        case 'p': S.port = (uint16_t)parse_num(name, optarg, 1, 65535); break;
        case 'P': S.tls_port = (uint16_t)parse_num(name, optarg, 0, 65535); break;
        case 'a': S.aet = optarg; break;
        case 'C': S.ca = optarg; break;
        case 'c': S.cert = optarg; break;
        case 'k': S.key = optarg; break;
        case 'i': S.server_pid = (long)parse_num(name, optarg, 0, 1e9); break;
        case 'n': S.clients = (int)parse_num(name, optarg, 0, 1000); break;
        case 'T': S.tls_clients = (int)parse_num(name, optarg, 0, 1000); break;
        case 's': S.stallers = (int)parse_num(name, optarg, 0, 1000); break;
        case 'q': S.sequential = (long)parse_num(name, optarg, 0, 1e9); break;
        case 't': S.duration_s = parse_num(name, optarg, 0, 86400); break;
        case 'u': S.warmup_s = parse_num(name, optarg, 0, 3600); break;
        case 'D':
            if (strlen(optarg) != 8) {
                fprintf(stderr, "soak: --date wants YYYYMMDD\n");
                return 2;
            }
            memcpy(S.date, optarg, 9);
            break;
        case 'l': S.stall_limit_s = parse_num(name, optarg, 0.1, 3600); break;
        case 'S': S.settle_s = parse_num(name, optarg, 0, 3600); break;
        case 'g': S.max_rss_growth = parse_num(name, optarg, 0, 1e6); break;
        case 'r': S.progress_s = parse_num(name, optarg, 0, 86400); break;
        case 'e': S.seed = (uint64_t)parse_num(name, optarg, 0, 1e18); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || S.port == 0) {
        usage(stderr);
        return 2;
    }
    if (S.tls_clients < 0)
        S.tls_clients = S.tls_port ? S.clients / 2 : 0;
    if (S.tls_clients > S.clients || (S.tls_clients && !S.tls_port)) {
        fprintf(stderr, "soak: --tls-clients needs --tls-port and at most --clients\n");
        return 2;
    }
    if (S.tls_port) {
        mwl_tls_config tc;
        mwl_tls_config_init(&tc, false);
        tc.ca_file = S.ca;
        tc.cert_file = S.cert;
        tc.key_file = S.key;
        mwl_diag d;
        mwl_diag_clear(&d);
        if (mwl_tls_new(&tc, NULL, &client_tls, &d) != MWL_OK) {
            fprintf(stderr, "soak: TLS: %s\n", d.msg);
            return 2;
        }
    }
    (void)mwl_net_ignore_sigpipe();
    for (size_t i = 0; i < N_STATIONS; i++)
        atomic_init(&station_matches[i], -1);

    int nthreads = S.clients + S.stallers + 1;
    crew c = {calloc((size_t)nthreads, sizeof(thread_ctx)), 0};
    hist *h = calloc(K_COUNT, sizeof *h);
    if (!c.t || !h) {
        fprintf(stderr, "soak: out of memory\n");
        return 1;
    }
    int start_rc = 0;

    /* Warm-up: the same threads, so that the server reaches its working
     * size before the first sample: as many connections at once as the
     * load makes, its allocator's per-thread arenas, TLS state, the store
     * connections and their page caches (SQLite fills a connection's cache
     * as queries touch pages, up to its limit). Only failures count. */
    fprintf(stderr, "soak: warm-up %.0f s\n", S.warmup_s);
    start_rc = start_all(&c, true);
    sleep_ns((uint64_t)(S.warmup_s * 1e9));
    atomic_store(&stop_flag, 1);
    join_all(&c, NULL);
    atomic_store(&stop_flag, 0);
    for (int k = 0; k < K_COUNT; k++)
        atomic_store(&op_count[k], 0);
    atomic_store(&matches_total, 0);
    atomic_store(&discarded_total, 0);
    atomic_store(&cancel_late, 0);

    long fds0 = settle(-1, S.settle_s), rss0 = S.server_pid ? server_rss_kb() : -1;
    fprintf(stderr, "soak: start: server fds %ld, RSS %ld KiB; load %.0f s\n", fds0, rss0, S.duration_s);

    /* The load. */
    uint64_t t_begin = now_ns(), t_end = t_begin + (uint64_t)(S.duration_s * 1e9);
    if (start_rc == 0)
        start_rc = start_all(&c, false);
    bool seq = S.sequential > 0;
    long rss_max = rss0, fds_max = fds0;
    uint64_t next_progress = t_begin + (uint64_t)(S.progress_s * 1e9);
    while (start_rc == 0) {
        uint64_t now = now_ns();
        bool seq_over = !seq || atomic_load(&seq_done) >= (uint64_t)S.sequential;
        if (now >= t_end && seq_over)
            break;
        if (!server_alive()) {
            failure(F_SERVER_GONE, "monitor", "server pid %ld exited", S.server_pid);
            atomic_store(&abort_flag, 1);
            break;
        }
        if (S.server_pid) {
            long r = server_rss_kb(), f = server_fds();
            rss_max = r > rss_max ? r : rss_max;
            fds_max = f > fds_max ? f : fds_max;
            if (S.progress_s > 0 && now >= next_progress) {
                uint64_t ops = 0, fails = 0;
                for (int k = 0; k < K_COUNT; k++)
                    ops += atomic_load(&op_count[k]);
                for (int k = 0; k < F_COUNT; k++)
                    fails += atomic_load(&fail_count[k]);
                fprintf(stderr,
                        "soak: %4.0f s: %llu operations, %llu failures, sequential %llu; server RSS %ld KiB, "
                        "fds %ld\n",
                        (double)(now - t_begin) / 1e9, (unsigned long long)ops, (unsigned long long)fails,
                        (unsigned long long)atomic_load(&seq_done), r, f);
                next_progress += (uint64_t)(S.progress_s * 1e9);
            }
        }
        sleep_ns(250000000u);
    }
    uint64_t t_stop = now_ns();
    atomic_store(&stop_flag, 1);
    join_all(&c, h);
    double secs = (double)(t_stop - t_begin) / 1e9;

    long fds1 = -1, rss1 = -1;
    if (S.server_pid && server_alive()) {
        fds1 = settle(fds0, S.settle_s);
        rss1 = server_rss_kb();
    }

    /* ---- report ---- */
    uint64_t failures = 0;
    for (int k = 0; k < F_COUNT; k++)
        failures += atomic_load(&fail_count[k]);
    double growth = rss0 > 0 && rss1 > 0 ? 100.0 * (double)(rss1 - rss0) / (double)rss0 : 0.0;
    bool fds_ok = S.server_pid == 0 || (fds0 >= 0 && fds1 == fds0);
    bool rss_ok = S.server_pid == 0 || (rss0 > 0 && rss1 > 0 && growth < S.max_rss_growth);
    double seq_secs = seq_t1 > seq_t0 ? (double)(seq_t1 - seq_t0) / 1e9 : 0.0;

    printf("soak: %s port %u%s%u, %.1f s of load after %.0f s warm-up\n", S.host, S.port,
           S.tls_port ? ", TLS port " : "", S.tls_port, secs, S.warmup_s);
    printf("  %d mixed clients (%d over TLS), %d stallers, %ld sequential associations\n", S.clients,
           S.tls_clients, S.stallers, S.sequential);
    printf("\n  %-14s %10s %9s %9s %9s %10s\n", "operation", "count", "per s", "p50 ms", "p99 ms", "max ms");
    for (int k = 0; k < K_COUNT; k++)
        printf("  %-14s %10llu %9.1f %9.3f %9.3f %10.3f\n", k_name[k], (unsigned long long)h[k].count,
               (double)h[k].count / secs, hist_ms(&h[k], 0.5), hist_ms(&h[k], 0.99), (double)h[k].max / 1e6);
    uint64_t assoc = h[K_ASSOC_PLAIN].count + h[K_ASSOC_TLS].count;
    uint64_t dimse = h[K_ECHO].count + h[K_FIND].count + h[K_CANCEL].count;
    printf("  associations (mixed) %llu = %.1f/s; DIMSE operations %llu = %.1f/s; queries %llu = %.1f/s\n",
           (unsigned long long)assoc, (double)assoc / secs, (unsigned long long)dimse, (double)dimse / secs,
           (unsigned long long)(h[K_FIND].count + h[K_CANCEL].count),
           (double)(h[K_FIND].count + h[K_CANCEL].count) / secs);
    printf("  C-FIND Pending responses received %llu\n", (unsigned long long)atomic_load(&matches_total));
    printf("  TLS sessions resumed %llu of %llu; cancelled C-FINDs that had finished (0000) %llu; responses "
           "discarded after C-CANCEL %llu\n",
           (unsigned long long)atomic_load(&tls_resumed), (unsigned long long)h[K_ASSOC_TLS].count,
           (unsigned long long)atomic_load(&cancel_late), (unsigned long long)atomic_load(&discarded_total));
    printf("  station/day matches:");
    for (size_t i = 0; i < N_STATIONS; i++)
        printf(" %s %lld", stations[i], (long long)atomic_load(&station_matches[i]));
    printf(" (date %s)\n", S.date);
    printf("  stalls closed by the server:");
    for (int tls = 0; tls < 2; tls++)
        for (int k = 0; k < S_COUNT; k++)
            if (atomic_load(&stall_count[tls][k]))
                printf(" %s%s %llu", tls ? "tls/" : "", s_name[k],
                       (unsigned long long)atomic_load(&stall_count[tls][k]));
    printf("\n  sequential: %llu of %ld in %.1f s = %.1f associations/s\n",
           (unsigned long long)atomic_load(&seq_done), S.sequential, seq_secs,
           seq_secs > 0 ? (double)atomic_load(&seq_done) / seq_secs : 0.0);
    printf("\n  failures: %llu%s", (unsigned long long)failures, failures ? " (" : "");
    bool first = true;
    for (int k = 0; k < F_COUNT; k++)
        if (atomic_load(&fail_count[k])) {
            printf("%s%s %llu", first ? "" : ", ", f_name[k],
                   (unsigned long long)atomic_load(&fail_count[k]));
            first = false;
        }
    printf("%s\n", failures ? ")" : "");
    if (S.server_pid)
        printf("  server RSS: %ld KiB at the start, %ld KiB at the end (%+.1f %%, bound %.0f %%), %ld KiB at "
               "most\n"
               "  server fds (without the database's): %ld at the start, %ld at the end, %ld at most\n",
               rss0, rss1, growth, S.max_rss_growth, rss_max, fds0, fds1, fds_max);
    else
        printf("  server RSS and fds: not sampled (no --server-pid)\n");
    for (unsigned i = 0; i < err_n; i++)
        fprintf(stderr, "soak: %s\n", err_text[i]);

    printf("{\"duration_s\":%.3f,\"warmup_s\":%.1f,\"clients\":%d,\"tls_clients\":%d,\"stallers\":%d,"
           "\"ops\":{",
           secs, S.warmup_s, S.clients, S.tls_clients, S.stallers);
    for (int k = 0; k < K_COUNT; k++)
        print_hist_json(k_name[k], &h[k], secs, k > 0);
    printf("},\"queries_per_s\":%.1f,\"responses\":%llu,\"tls_resumed\":%llu,\"cancel_late\":%llu,"
           "\"failures\":%llu,\"failure\":{",
           (double)(h[K_FIND].count + h[K_CANCEL].count) / secs,
           (unsigned long long)atomic_load(&matches_total), (unsigned long long)atomic_load(&tls_resumed),
           (unsigned long long)atomic_load(&cancel_late), (unsigned long long)failures);
    for (int k = 0; k < F_COUNT; k++)
        printf("%s\"%s\":%llu", k ? "," : "", f_name[k], (unsigned long long)atomic_load(&fail_count[k]));
    printf("},\"sequential\":{\"target\":%ld,\"done\":%llu,\"seconds\":%.3f,\"per_s\":%.1f},"
           "\"rss_kb\":{\"start\":%ld,\"end\":%ld,\"max\":%ld,\"growth_pct\":%.2f,\"bound_pct\":%.1f},"
           "\"fds\":{\"start\":%ld,\"end\":%ld,\"max\":%ld},\"pass\":%s}\n",
           S.sequential, (unsigned long long)atomic_load(&seq_done), seq_secs,
           seq_secs > 0 ? (double)atomic_load(&seq_done) / seq_secs : 0.0, rss0, rss1, rss_max, growth,
           S.max_rss_growth, fds0, fds1, fds_max,
           failures == 0 && fds_ok && rss_ok && start_rc == 0 ? "true" : "false");
    free(h);
    free(c.t);
    mwl_tls_free(client_tls);
    return failures == 0 && fds_ok && rss_ok && start_rc == 0 ? 0 : 1;
}
