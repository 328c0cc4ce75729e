/* hl7_bench: the HL7 order feed of `mwl serve` (issue 12) under load,
 * against a running server it does not start.
 *
 *   hl7_bench --hl7-port H [--port P] [--host HOST] [--aet AEC]
 *             [--orders N] [--connections C] [--tag T] [options]
 *
 * C sender threads each hold one MLLP connection (0x0B message 0x1C 0x0D
 * over plain TCP) and loop: send one ORM^O01 NW order (HL7 2.3.1, one new
 * Scheduled Procedure Step with its own accession, SPS ID, Study UID and
 * MSH-10), wait for its ACK, check MSA-1 = AA and MSA-2 = the MSH-10, next;
 * until N orders in all were acknowledged. The server sends AA only after
 * the order is committed durably, so this measures durable orders.
 *
 * Measured, on the monotonic clock:
 *   throughput   N / (last AA received - first order sent); the senders
 *                connect first and start together;
 *   AA latency   per order, from just before its first byte is written to
 *                when its whole ACK frame has been read;
 *   visibility   for sampled orders, from the same send start to the
 *                arrival of the first C-FIND response that contains the
 *                order. One thread with one open association (the DICOM
 *                port, mwl's client API) watches one sampled order at a
 *                time: a sender claims the free sample slot just before it
 *                sends, the watcher repeats a C-FIND by Accession Number
 *                (every --poll-us between the end of one and the start of
 *                the next) until a response holds it, then leaves the slot
 *                free for --sample-gap-ms. The first C-FIND can run before
 *                the order is even sent. Resolution: the poll interval plus
 *                one C-FIND. A sample not seen within 10 s counts as
 *                missing (an error). --port 0 skips this.
 * Latencies go into log-linear histograms (64 sub-buckets per power of
 * two: under 1.6 % error), quantiles are the bucket's upper bound (capped
 * at the maximum). Prints a few lines and one JSON line (the last line of
 * stdout). Exit 0 when every order got AA and every sample was seen, 1
 * otherwise, 2 on a usage error, 3 when a connection or association
 * cannot be made. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>

#include "client/client.h"
#include "dicom/codec.h"

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

static double hist_mean_ms(const hist *h)
{
    return h->count ? (double)h->sum / (double)h->count / 1e6 : 0;
}

/* ---- settings and shared state ----------------------------------------- */

typedef struct settings {
    const char *host, *aet, *tag;
    uint16_t hl7_port, port;
    long orders;
    int connections;
    long poll_us, sample_gap_ms;
    int ack_timeout_ms;
    char start[13]; /* SPS start, YYYYMMDDHHMM: tomorrow 08:30 */
    uint64_t seed;  /* makes this run's Study UIDs unique */
} settings;

static settings S;
static atomic_long next_order;  /* orders handed out so far */
static atomic_int stop_flag;    /* a sender failed: the others stop too */
static atomic_int senders_done; /* the watcher stops when all are */
static pthread_barrier_t start_barrier;
static uint64_t t_start; /* set by the first sender through the barrier */

/* The sample slot, between the senders and the watcher. IDLE: free;
 * CLAIMED: a sender is filling it; ARMED: that sender is about to send the
 * order named in it (the fields are written before the state is, and read
 * after it is seen). */
enum { SLOT_IDLE = 0, SLOT_CLAIMED = 1, SLOT_ARMED = 2 };
static atomic_int slot_state;
static char slot_accession[32];
static uint64_t slot_t0;

/* Every sender and the watcher wait here until all are connected, so the
 * orders start together; whichever thread the barrier picks takes the
 * start time (the others read it only after joining). */
static void start_together(void)
{
    if (pthread_barrier_wait(&start_barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
        t_start = now_ns();
}

/* ---- the ORM^O01 -------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Order number n (1-based) of this run: accession <tag><n, 9 digits>
 * (at most 13 characters: SH allows 16), SPS ID and Requested Procedure
 * ID likewise, MSH-10 = the accession. The Study UID is 2.25.<a 64-bit
 * number from the seed and n>: a valid UID, unique to this run. The start
 * time is in both ORC-7.4 and OBR-27.4 (mwl takes either). */
static int order_message(long n, char *msg, size_t cap, char *accession, size_t acc_cap)
{
    char now[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y%m%d%H%M%S", &tm);
    snprintf(accession, acc_cap, "%s%09ld", S.tag, n);
    unsigned long long uid = (unsigned long long)splitmix64(S.seed ^ ((uint64_t)n * 0x2545F4914F6CDD1Dull));
    /* OBR: 1 set ID, 2 placer, 3 filler, 4 service, 5..17 empty, 18
     * accession, 19 requested procedure ID, 20 SPS ID, 21..23 empty, 24
     * modality, 25..26 empty, 27 quantity/timing (.4 = start). */
    int len = snprintf(msg, cap,
                       "MSH|^~\\&|HL7BENCH|RADDEPT|MWL|MWLSRV|%s||ORM^O01|%s|P|2.3.1\r"
                       "PID|||P%s^^^HOSP||BENCH^ORDER||19700101|M\r"
                       "PV1||O|RAD^CT1^^HOSP\r"
                       "ORC|NW|PL%s|FL%s||SC||^^^%s\r"
                       "OBR|1|PL%s|FL%s|CTCHEST^CT chest^L||||||||||||||%s|R%s|S%s||||CT|||^^^%s\r"
                       "ZDS|2.25.%llu^HL7BENCH^Application^DICOM\r",
                       now, accession, accession, accession, accession, S.start, accession, accession,
                       accession, accession, accession, S.start, uid);
    return len > 0 && (size_t)len < cap ? len : -1;
}

/* ---- MLLP --------------------------------------------------------------- */

static int connect_tcp(const char *host, uint16_t port)
{
    char p[8];
    snprintf(p, sizeof p, "%u", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, p, &hints, &res) != 0 || !res)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        /* one small message each way per order: Nagle would hold the next
         * frame behind the peer's delayed ACK */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

typedef struct mllp_reader {
    uint8_t buf[8192];
    size_t len;
} mllp_reader;

/* Reads the next frame's payload into out (NUL-terminated). 0 = one
 * frame; -1 = closed or error; -2 = no frame within timeout_ms; -3 = a
 * frame too long for the buffer. Bytes after the frame are kept. */
static int mllp_read(int fd, mllp_reader *r, char *out, size_t cap, int timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint8_t *vt = memchr(r->buf, 0x0B, r->len);
        if (vt) {
            size_t from = (size_t)(vt - r->buf) + 1;
            uint8_t *fs = memchr(r->buf + from, 0x1C, r->len - from);
            if (fs) {
                size_t plen = (size_t)(fs - r->buf) - from;
                if (plen + 1 > cap)
                    return -3;
                memcpy(out, r->buf + from, plen);
                out[plen] = '\0';
                size_t end = (size_t)(fs - r->buf) + 1;
                if (end < r->len && r->buf[end] == 0x0D)
                    end++;
                memmove(r->buf, r->buf + end, r->len - end);
                r->len -= end;
                return 0;
            }
        } else {
            r->len = 0; /* bytes outside a frame */
        }
        if (r->len == sizeof r->buf)
            return -3;
        uint64_t now = now_ns();
        if (now >= deadline)
            return -2;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)((deadline - now) / 1000000u) + 1;
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -1;
        if (pr == 0)
            continue;
        ssize_t n = recv(fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        r->len += (size_t)n;
    }
}

/* Field `field` (1-based) of the first segment named `name` ("MSA"),
 * into out; "" when absent. Segments end at CR; fields split at '|'. */
static void hl7_field(const char *msg, const char *name, int field, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *seg = msg; *seg;) {
        const char *end = strchr(seg, '\r');
        if (!end)
            end = seg + strlen(seg);
        if ((size_t)(end - seg) > nl && strncmp(seg, name, nl) == 0 && seg[nl] == '|') {
            const char *p = seg + nl;
            for (int f = 0; f < field && p < end; f++) {
                p++; /* past the '|' before field f + 1 */
                const char *q = memchr(p, '|', (size_t)(end - p));
                if (!q)
                    q = end;
                if (f + 1 == field) {
                    size_t l = (size_t)(q - p) < cap - 1 ? (size_t)(q - p) : cap - 1;
                    memcpy(out, p, l);
                    out[l] = '\0';
                    return;
                }
                p = q;
            }
            return;
        }
        seg = *end ? end + 1 : end;
    }
}

/* ---- senders ----------------------------------------------------------- */

typedef struct sender {
    pthread_t tid;
    int index;
    hist ack;
    uint64_t orders, not_aa;
    uint64_t t_last; /* when its last AA arrived */
    int failed;      /* 3: could not connect; 1: anything else */
    char error[400];
    mllp_reader reader;
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    int fd = connect_tcp(S.host, S.hl7_port);
    if (fd < 0) {
        snprintf(s->error, sizeof s->error, "connect to %s:%u: %s", S.host, S.hl7_port, strerror(errno));
        s->failed = 3;
        atomic_store(&stop_flag, 1);
    }
    start_together();
    mllp_reader *r = &s->reader;
    char msg[2048], ack[4096], acc[32], code[8], ref[64];
    uint8_t frame[2100];
    while (fd >= 0 && !atomic_load(&stop_flag)) {
        long n = atomic_fetch_add(&next_order, 1) + 1;
        if (n > S.orders)
            break;
        int len = order_message(n, msg, sizeof msg, acc, sizeof acc);
        if (len < 0) {
            snprintf(s->error, sizeof s->error, "order %ld does not fit the buffer", n);
            s->failed = 1;
            break;
        }
        frame[0] = 0x0B;
        memcpy(frame + 1, msg, (size_t)len);
        frame[len + 1] = 0x1C;
        frame[len + 2] = 0x0D;
        uint64_t t0 = now_ns();
        /* sample this order if the watcher is free: whoever moves the
         * slot from IDLE to CLAIMED fills it, then publishes it ARMED, so
         * the watcher never sees half a sample */
        int idle = SLOT_IDLE;
        if (S.port && atomic_compare_exchange_strong(&slot_state, &idle, SLOT_CLAIMED)) {
            snprintf(slot_accession, sizeof slot_accession, "%s", acc);
            slot_t0 = t0;
            atomic_store(&slot_state, SLOT_ARMED);
        }
        if (write_all(fd, frame, (size_t)len + 3) != 0) {
            snprintf(s->error, sizeof s->error, "order %s: send: %s", acc, strerror(errno));
            s->failed = 1;
            break;
        }
        int rc = mllp_read(fd, r, ack, sizeof ack, S.ack_timeout_ms);
        uint64_t t1 = now_ns();
        if (rc != 0) {
            snprintf(s->error, sizeof s->error, "order %s: %s", acc,
                     rc == -2   ? "no ACK within the timeout"
                     : rc == -3 ? "ACK frame too long"
                                : "connection closed before the ACK");
            s->failed = 1;
            break;
        }
        hl7_field(ack, "MSA", 1, code, sizeof code);
        hl7_field(ack, "MSA", 2, ref, sizeof ref);
        s->orders++;
        s->t_last = t1;
        hist_add(&s->ack, t1 - t0);
        if (strcmp(code, "AA") != 0 || strcmp(ref, acc) != 0) {
            if (!s->not_aa) {
                char text[200];
                hl7_field(ack, "MSA", 3, text, sizeof text);
                snprintf(s->error, sizeof s->error, "order %s: MSA-1 %s MSA-2 %s: %s", acc, code, ref, text);
            }
            s->not_aa++;
        }
    }
    if (s->failed)
        atomic_store(&stop_flag, 1);
    if (fd >= 0)
        close(fd);
    atomic_fetch_add(&senders_done, 1);
    return NULL;
}

/* ---- the watcher -------------------------------------------------------- */

typedef struct watcher {
    pthread_t tid;
    hist visible;
    uint64_t finds, missing;
    int failed;
    char error[400];
    /* per C-FIND */
    const char *want;
    uint64_t t_found;
} watcher;

static int on_rsp(void *user, const mwl_scu_find_rsp *rsp)
{
    watcher *w = user;
    char acc[32];
    if (!w->t_found && rsp->identifier &&
        mwl_ds_copy_str(rsp->identifier, MWL_TAG_AccessionNumber, 0, acc, sizeof acc) == MWL_OK &&
        strcmp(acc, w->want) == 0)
        w->t_found = now_ns(); /* its response has just been decoded */
    return MWL_SCU_FIND_CONTINUE;
}

static int accession_query(mwl_arena *a, const char *acc, mwl_ds **out)
{
    mwl_ds *q, *sps;
    int rc = mwl_ds_new(a, NULL, &q);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(q, MWL_TAG_AccessionNumber, MWL_VR_NONE, acc);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(q, MWL_TAG_StudyInstanceUID, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(q, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepID, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_NONE, "");
    *out = q;
    return rc;
}

static void *watcher_main(void *arg)
{
    watcher *w = arg;
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = S.host;
    cfg.port = S.port;
    cfg.called_ae = S.aet;
    cfg.calling_ae = "HL7BENCH";
    mwl_scu *scu = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (mwl_scu_new(&cfg, &scu, &d) != MWL_OK) {
        snprintf(w->error, sizeof w->error, "client: %s", d.msg);
        w->failed = 3;
    } else if (mwl_scu_associate(scu) != MWL_OK) {
        snprintf(w->error, sizeof w->error, "associate to %s:%u: %s", S.host, S.port,
                 mwl_scu_last_error(scu)->msg);
        w->failed = 3;
    }
    if (w->failed)
        atomic_store(&stop_flag, 1);
    start_together();
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    char want[32];
    while (!w->failed && !atomic_load(&stop_flag) && atomic_load(&senders_done) < S.connections) {
        if (atomic_load(&slot_state) != SLOT_ARMED) {
            sleep_ns(20000); /* 20 us: a sender arms the slot with its next order */
            continue;
        }
        memcpy(want, slot_accession, sizeof want);
        uint64_t t0 = slot_t0;
        w->want = want;
        w->t_found = 0;
        for (;;) {
            mwl_ds *q;
            mwl_scu_find_result res;
            if (accession_query(&arena, want, &q) != MWL_OK) {
                snprintf(w->error, sizeof w->error, "cannot build the query");
                w->failed = 1;
                break;
            }
            int rc = mwl_scu_find(scu, q, MWL_DIMSE_PRIORITY_MEDIUM, on_rsp, w, &res);
            mwl_arena_clear(&arena);
            w->finds++;
            if (rc != MWL_OK || res.status != 0) {
                snprintf(w->error, sizeof w->error, "C-FIND: %s (status %04X)",
                         rc != MWL_OK ? mwl_scu_last_error(scu)->msg : "failed", res.status);
                w->failed = 1;
                break;
            }
            if (w->t_found) {
                hist_add(&w->visible, w->t_found - t0);
                break;
            }
            if (now_ns() - t0 > 10000000000ull) {
                if (!w->missing)
                    snprintf(w->error, sizeof w->error, "order %s not in C-FIND after 10 s", want);
                w->missing++;
                break;
            }
            if (S.poll_us)
                sleep_ns((uint64_t)S.poll_us * 1000u);
        }
        /* a pause before the next sample, so polling stays a small part of
         * the server's work */
        sleep_ns((uint64_t)S.sample_gap_ms * 1000000u);
        atomic_store(&slot_state, SLOT_IDLE);
    }
    mwl_arena_clear(&arena);
    if (scu && mwl_scu_is_associated(scu) && mwl_scu_release(scu) != MWL_OK && !w->failed) {
        snprintf(w->error, sizeof w->error, "release: %s", mwl_scu_last_error(scu)->msg);
        w->failed = 1;
    }
    mwl_scu_free(scu);
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: hl7_bench --hl7-port H [--port P] [--host HOST] [--aet AEC] [options]\n"
                 "\n"
                 "Streams ORM^O01 NW orders over MLLP to a running `mwl serve` (send, wait for AA,\n"
                 "next, on each connection) and measures orders/s, send-to-AA latency and, with\n"
                 "--port, send-to-visible-in-C-FIND latency of sampled orders.\n"
                 "\n"
                 "  --hl7-port H         the server's HL7 (MLLP) port\n"
                 "  --port P             its DICOM port, for the C-FIND watcher; 0 = none (default)\n"
                 "  --host HOST          default 127.0.0.1\n"
                 "  --aet AEC            called AE title for the C-FINDs (default MWL)\n"
                 "  --orders N           orders in all (default 5000)\n"
                 "  --connections C      MLLP connections, 1..64 (default 1)\n"
                 "  --tag T              accession prefix, 1..4 letters/digits, unique per run on one\n"
                 "                       database (default B)\n"
                 "  --poll-us U          pause between the watcher's C-FINDs for one order (default 500)\n"
                 "  --sample-gap-ms G    pause after each sample before the next (default 10)\n"
                 "  --ack-timeout-ms T   longest wait for one ACK (default 30000)\n"
                 "\n"
                 "Last line of stdout: one JSON object with every number.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    S.host = "127.0.0.1";
    S.aet = "MWL";
    S.tag = "B";
    S.orders = 5000;
    S.connections = 1;
    S.poll_us = 500;
    S.sample_gap_ms = 10;
    S.ack_timeout_ms = 30000;
    long hl7_port = -1, port = 0;
    static const struct option opts[] = {{"hl7-port", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"host", required_argument, NULL, 'h'},
                                         {"aet", required_argument, NULL, 'a'},
                                         {"orders", required_argument, NULL, 'n'},
                                         {"connections", required_argument, NULL, 'c'},
                                         {"tag", required_argument, NULL, 't'},
                                         {"poll-us", required_argument, NULL, 'u'},
                                         {"sample-gap-ms", required_argument, NULL, 'g'},
                                         {"ack-timeout-ms", required_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'x'},
                                         {NULL, 0, NULL, 0}};
    int c, li = 0;
    while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
        long v = 0;
        int bad = 0;
        switch (c) {
        case 'H': bad = parse_long(optarg, 1, 65535, &hl7_port); break;
        case 'p': bad = parse_long(optarg, 0, 65535, &port); break;
        case 'h': S.host = optarg; break;
        case 'a': S.aet = optarg; break;
        case 'n': bad = parse_long(optarg, 1, 999999999, &S.orders); break;
        case 'c':
            bad = parse_long(optarg, 1, 64, &v);
            S.connections = (int)v;
            break;
        case 't':
            S.tag = optarg;
            bad = strlen(optarg) < 1 || strlen(optarg) > 4 ||
                  strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz"
                                 "0123456789") != strlen(optarg);
            break;
        case 'u': bad = parse_long(optarg, 0, 1000000, &S.poll_us); break;
        case 'g': bad = parse_long(optarg, 0, 10000, &S.sample_gap_ms); break;
        case 'T':
            bad = parse_long(optarg, 1, 600000, &v);
            S.ack_timeout_ms = (int)v;
            break;
        case 'x': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "hl7_bench: bad value for --%s: %s\n", opts[li].name, optarg);
            return 2;
        }
    }
    if (hl7_port < 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    S.hl7_port = (uint16_t)hl7_port;
    S.port = (uint16_t)port;
    {
        time_t t = time(NULL) + 86400;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(S.start, sizeof S.start, "%Y%m%d0830", &tm);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        S.seed = splitmix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid();
    }
    signal(SIGPIPE, SIG_IGN);

    sender *senders = calloc((size_t)S.connections, sizeof *senders);
    watcher *w = calloc(1, sizeof *w);
    if (!senders || !w) {
        fprintf(stderr, "hl7_bench: out of memory\n");
        return 1;
    }
    unsigned parties = (unsigned)S.connections + (S.port ? 1u : 0u);
    pthread_barrier_init(&start_barrier, NULL, parties);
    for (int i = 0; i < S.connections; i++) {
        senders[i].index = i;
        if (pthread_create(&senders[i].tid, NULL, sender_main, &senders[i]) != 0) {
            fprintf(stderr, "hl7_bench: cannot start a thread\n");
            return 1;
        }
    }
    if (S.port && pthread_create(&w->tid, NULL, watcher_main, w) != 0) {
        fprintf(stderr, "hl7_bench: cannot start a thread\n");
        return 1;
    }
    for (int i = 0; i < S.connections; i++)
        pthread_join(senders[i].tid, NULL);
    if (S.port)
        pthread_join(w->tid, NULL);
    pthread_barrier_destroy(&start_barrier);

    hist ack;
    memset(&ack, 0, sizeof ack);
    uint64_t orders = 0, not_aa = 0, t_end = t_start;
    int status = 0;
    for (int i = 0; i < S.connections; i++) {
        sender *s = &senders[i];
        hist_merge(&ack, &s->ack);
        orders += s->orders;
        not_aa += s->not_aa;
        if (s->t_last > t_end)
            t_end = s->t_last;
        if (s->error[0])
            fprintf(stderr, "hl7_bench: connection %d: %s\n", i + 1, s->error);
        if (s->failed > status)
            status = s->failed;
        if (s->not_aa && !status)
            status = 1;
    }
    if (w->error[0])
        fprintf(stderr, "hl7_bench: watcher: %s\n", w->error);
    if (w->failed > status)
        status = w->failed;
    if (w->missing && !status)
        status = 1;
    double elapsed = (double)(t_end - t_start) / 1e9;
    double rate = elapsed > 0 ? (double)orders / elapsed : 0;

    printf("%ld orders over %d MLLP connection%s: %.3f s, %.1f orders/s (%llu not AA)\n", S.orders,
           S.connections, S.connections == 1 ? "" : "s", elapsed, rate, (unsigned long long)not_aa);
    printf("send -> AA ms:       p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f  (%llu)\n",
           hist_ms(&ack, 0.5), hist_ms(&ack, 0.9), hist_ms(&ack, 0.99), (double)ack.max / 1e6,
           hist_mean_ms(&ack), (unsigned long long)ack.count);
    if (S.port)
        printf(
            "send -> C-FIND ms:   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (%llu samples, %llu C-FINDs, %llu "
            "missing)\n",
            hist_ms(&w->visible, 0.5), hist_ms(&w->visible, 0.9), hist_ms(&w->visible, 0.99),
            (double)w->visible.max / 1e6, (unsigned long long)w->visible.count, (unsigned long long)w->finds,
            (unsigned long long)w->missing);
    printf("{\"connections\":%d,\"orders\":%llu,\"not_aa\":%llu,\"elapsed_s\":%.6f,\"orders_per_s\":%.2f,"
           "\"ack\":{\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.4f,"
           "\"mean_ms\":%.4f,\"count\":%llu},"
           "\"visible\":{\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,\"count\":%llu,"
           "\"finds\":%llu,\"missing\":%llu,\"poll_us\":%ld},\"status\":%d}\n",
           S.connections, (unsigned long long)orders, (unsigned long long)not_aa, elapsed, rate,
           hist_ms(&ack, 0.5), hist_ms(&ack, 0.9), hist_ms(&ack, 0.99), hist_ms(&ack, 0.999),
           (double)ack.max / 1e6, hist_mean_ms(&ack), (unsigned long long)ack.count,
           hist_ms(&w->visible, 0.5), hist_ms(&w->visible, 0.9), hist_ms(&w->visible, 0.99),
           (double)w->visible.max / 1e6, (unsigned long long)w->visible.count, (unsigned long long)w->finds,
           (unsigned long long)w->missing, S.poll_us, status);
    free(senders);
    free(w);
    return status;
}
