/* load_bench: latency of interactive worklist queries under mixed load
 * (issue 10), against a running server it does not start.
 *
 *   load_bench --port P [--host H] [--aet AEC] [--db FILE] [options]
 *
 * One process, three kinds of threads, each client thread with its own
 * association (mwl's client, client/client.h):
 *   Q interactive  repeat one indexed query (default: Scheduled Station AE
 *                  Title = a station, SPS Start Date = today, with the return
 *                  keys a modality asks for) and record every query's latency,
 *                  C-FIND-RQ sent -> final C-FIND-RSP received;
 *   S scanners     repeat an unindexed wildcard scan (Patient's Name *ZZZ*:
 *                  matches nothing, but the server must look at every row);
 *   W writer       adds items to the database file (--db) through the store
 *                  API at --write-rate items/s, in small transactions paced
 *                  by the clock (in this process, as an importer would).
 * The operations that start inside the measured window (after the warm-up)
 * count, with their whole latency: at the end of the window no new ones
 * start, and the running ones are waited for (each response within the
 * DIMSE timeout, 600 s), so a query stuck behind scans is not dropped.
 * Rates are counted operations / window length. Latencies go into per-thread log-linear
 * histograms (64 sub-buckets per power of two: under 1.6 % error from 1 ns
 * to hours), merged at the end. Prints a table and one JSON line (the last
 * line of stdout). Exit 0 when every operation succeeded, 1 when any
 * failed, 2 on a usage error, 3 when a client cannot associate. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "dicom/codec.h"
#include "store/store.h"

/* ---- clock and histogram ----------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= t)
            return;
        uint64_t d = t - now;
        struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        if (nanosleep(&ts, NULL) == 0)
            return;
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

/* The highest value that falls in bucket i. */
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
    /* the smallest value with at least q of the samples at or below it */
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

/* ---- settings and shared state ----------------------------------------- */

typedef enum query_kind { Q_STATION, Q_ACCESSION, Q_PATIENT_ID } query_kind;

static const char *const default_stations[] = {"CT01", "CT02", "MR01", "MR02",
                                               "US01", "CR01", "MG01", "NM01"};
#define N_STATIONS (sizeof default_stations / sizeof default_stations[0])

typedef struct settings {
    const char *host, *aet, *db;
    uint16_t port;
    int interactive, scanners;
    double write_rate;
    int write_batch;
    double duration_s, warmup_s;
    query_kind kind;
    const char *station; /* NULL: thread i asks for default_stations[i % 8] */
    char date[9];
    const char *scan_name;
    long long items; /* demo items 1..items, for accession / patient ID queries */
    int write_days;  /* writer schedules items 1..write_days days ahead */
} settings;

static settings S;
static atomic_int stop_flag;
static atomic_int assoc_failures;         /* any: the run is void, stop at once */
static uint64_t window_start, window_end; /* set before the threads start */

/* An operation counts when it starts inside the window, however long it
 * takes: dropping the ones that end late would hide the slowest. */
static int in_window(uint64_t t0)
{
    return t0 >= window_start && t0 < window_end;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* ---- client threads ----------------------------------------------------- */

typedef struct client_thread {
    pthread_t tid;
    int index;
    bool scanner;
    hist h;
    uint64_t matches; /* in the window */
    uint64_t overrun; /* counted operations that ended after the window */
    uint64_t errors;
    int assoc_failed;
    char error[300];
    uint64_t rng;
} client_thread;

static int count_rsp(void *user, const mwl_scu_find_rsp *rsp)
{
    (void)rsp;
    (*(uint64_t *)user)++;
    return MWL_SCU_FIND_CONTINUE;
}

/* The identifier: the return keys a modality typically asks for (PS3.4
 * Table K.6-1; the same set as find_bench), plus the matching keys of this
 * thread's kind. */
static int build_query(client_thread *t, mwl_arena *a, mwl_ds **out)
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
                                      MWL_TAG_ScheduledStationAETitle,
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
    if (rc != MWL_OK)
        return rc;
    char v[32];
    if (t->scanner) {
        rc = mwl_ds_set_str(q, MWL_TAG_PatientName, MWL_VR_NONE, S.scan_name);
    } else if (S.kind == Q_STATION) {
        const char *st = S.station ? S.station : default_stations[(size_t)t->index % N_STATIONS];
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_NONE, st);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, MWL_VR_NONE, S.date);
    } else {
        /* a random item of `mwl demo`'s numbering (tools/mwl/demo.c) */
        unsigned long long n = 1 + rng_next(&t->rng) % (unsigned long long)S.items;
        if (S.kind == Q_ACCESSION) {
            snprintf(v, sizeof v, "ACC%09llu", n);
            rc = mwl_ds_set_str(q, MWL_TAG_AccessionNumber, MWL_VR_NONE, v);
        } else {
            snprintf(v, sizeof v, "PID%07llu", n * 7919 % 10000000);
            rc = mwl_ds_set_str(q, MWL_TAG_PatientID, MWL_VR_NONE, v);
        }
    }
    *out = q;
    return rc;
}

static void *client_main(void *arg)
{
    client_thread *t = arg;
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = S.host;
    cfg.port = S.port;
    cfg.called_ae = S.aet;
    cfg.calling_ae = t->scanner ? "LOADSCAN" : "LOADQUERY";
    cfg.max_pdu_length = 65536;
    cfg.dimse_timeout_ms = 600000; /* a scan at N = 1M under load takes seconds */
    mwl_scu *scu = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (mwl_scu_new(&cfg, &scu, &d) != MWL_OK) {
        snprintf(t->error, sizeof t->error, "client: %s", d.msg);
        t->assoc_failed = 1;
        atomic_fetch_add(&assoc_failures, 1);
        return NULL;
    }
    if (mwl_scu_associate(scu) != MWL_OK) {
        snprintf(t->error, sizeof t->error, "associate: %s", mwl_scu_last_error(scu)->msg);
        t->assoc_failed = 1;
        atomic_fetch_add(&assoc_failures, 1);
        mwl_scu_free(scu);
        return NULL;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    while (!atomic_load(&stop_flag)) {
        mwl_ds *q;
        if (build_query(t, &arena, &q) != MWL_OK) {
            snprintf(t->error, sizeof t->error, "cannot build the query");
            t->errors++;
            break;
        }
        uint64_t matches = 0;
        mwl_scu_find_result res;
        uint64_t t0 = now_ns();
        int rc = mwl_scu_find(scu, q, MWL_DIMSE_PRIORITY_MEDIUM, count_rsp, &matches, &res);
        uint64_t t1 = now_ns();
        mwl_arena_clear(&arena);
        if (rc != MWL_OK || res.status != 0) {
            snprintf(t->error, sizeof t->error, "C-FIND: %s (status %04X)",
                     rc != MWL_OK ? mwl_scu_last_error(scu)->msg : "failed", res.status);
            t->errors++;
            break;
        }
        if (in_window(t0)) {
            hist_add(&t->h, t1 - t0);
            t->matches += matches;
            t->overrun += t1 > window_end;
        }
    }
    mwl_arena_clear(&arena);
    if (mwl_scu_is_associated(scu) && mwl_scu_release(scu) != MWL_OK && !t->errors) {
        snprintf(t->error, sizeof t->error, "release: %s", mwl_scu_last_error(scu)->msg);
        t->errors++;
    }
    mwl_scu_free(scu);
    return NULL;
}

/* ---- the writer ---------------------------------------------------------- */

typedef struct writer_thread {
    pthread_t tid;
    hist h; /* per transaction: begin .. commit */
    uint64_t items;
    uint64_t items_total, late;
    uint64_t errors;
    char error[300];
} writer_thread;

static int set(mwl_ds *ds, uint32_t tag, const char *v)
{
    return mwl_ds_set_str(ds, tag, MWL_VR_NONE, v);
}

static void add_days(int days, char out[9])
{
    /* today + days, local calendar; noon keeps clear of daylight-saving edges */
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_mday += days;
    tm.tm_hour = 12;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    mktime(&tm);
    if (strftime(out, 9, "%Y%m%d", &tm) != 8)
        memcpy(out, "20000101", 9);
}

/* One new worklist item shaped like `mwl demo`'s (tools/mwl/demo.c), in
 * ASCII, scheduled 1..write_days days ahead (never today, so the
 * interactive query's answer does not grow during the run), at one of the
 * demo's stations. Its identity (Study Instance UID, SPS ID) is new, so
 * every put is an insert. No name contains ZZZ. */
static int make_item(mwl_arena *a, uint64_t run, uint64_t n, uint64_t *rng, mwl_ds **out)
{
    static const char *const modality[N_STATIONS] = {"CT", "CT", "MR", "MR", "US", "CR", "MG", "NM"};
    static const char *const names[] = {"Smith^John",    "Johnson^Mary", "Williams^Robert", "Brown^Patricia",
                                        "Mulligan^Sean", "Jones^Linda",  "Miller^David",    "Taylor^Susan"};
    mwl_ds *ds, *sps = NULL, *code = NULL;
    int rc = mwl_ds_new(a, NULL, &ds);
    if (rc != MWL_OK)
        return rc;
    size_t s = (size_t)(rng_next(rng) % N_STATIONS);
    char buf[80], date[9], time_s[7], birth[9];
    add_days(1 + (int)(rng_next(rng) % (uint64_t)S.write_days), date);
    snprintf(time_s, sizeof time_s, "%02u%02u00", 7 + (unsigned)(rng_next(rng) % 11),
             (unsigned)(rng_next(rng) % 4) * 15);
    snprintf(birth, sizeof birth, "19%02u%02u%02u", 30 + (unsigned)(rng_next(rng) % 70),
             1 + (unsigned)(rng_next(rng) % 12), 1 + (unsigned)(rng_next(rng) % 28));
    rc = set(ds, MWL_TAG_PatientName, names[rng_next(rng) % (sizeof names / sizeof names[0])]);
    snprintf(buf, sizeof buf, "LBP%07llu", (unsigned long long)(n % 10000000));
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientID, buf);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientBirthDate, birth);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientSex, rng_next(rng) % 2 ? "M" : "F");
    snprintf(buf, sizeof buf, "LB%05llu%09llu", (unsigned long long)(run % 100000),
             (unsigned long long)(n % 1000000000));
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_AccessionNumber, buf);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_ReferringPhysicianName, "House^Gregory");
    snprintf(buf, sizeof buf, "2.25.%llu%llu", (unsigned long long)(run % 1000000000000ull),
             (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_StudyInstanceUID, buf);
    snprintf(buf, sizeof buf, "LBRP%010llu", (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_RequestedProcedureID, buf);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_RequestedProcedureDescription, "Load bench procedure");
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_RequestedProcedurePriority, "ROUTINE");
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledStationAETitle, default_stations[s]);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStartDate, date);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStartTime, time_s);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_Modality, modality[s]);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledPerformingPhysicianName, "Grey^Meredith");
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepDescription, "Load bench procedure");
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledStationName, default_stations[s]);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepLocation, "BENCH");
    snprintf(buf, sizeof buf, "LBS%010llu", (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepID, buf);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStatus, "SCHEDULED");
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(sps, MWL_TAG_ScheduledProtocolCodeSequence, &code);
    if (rc == MWL_OK)
        rc = set(code, MWL_TAG_CodeValue, "LB1");
    if (rc == MWL_OK)
        rc = set(code, MWL_TAG_CodingSchemeDesignator, "99MWL");
    if (rc == MWL_OK)
        rc = set(code, MWL_TAG_CodeMeaning, "Load bench procedure");
    *out = ds;
    return rc;
}

/* ---- every store call of this program ------------------------------------ */

static int store_open_writer(const char *path, mwl_store **out, mwl_diag *d)
{
    mwl_store_options opt = {.read_only = false, .settings = "sqlite.busy_timeout_ms=5000"};
    return mwl_store_open(path, &opt, out, d);
}

/* One transaction of `count` items. */
static int store_write_batch(mwl_store *store, mwl_ds *const *items, size_t count, mwl_diag *d)
{
    int rc = mwl_store_begin(store, d);
    for (size_t i = 0; rc == MWL_OK && i < count; i++)
        rc = mwl_store_put_item(store, items[i], "load_bench", NULL, NULL, d);
    if (rc == MWL_OK)
        rc = mwl_store_commit(store, d);
    else
        mwl_store_rollback(store);
    return rc;
}

/* The number of SPS rows in the database at `path`, read-only. */
static int store_count_rows(const char *path, int64_t *count, mwl_diag *d)
{
    mwl_store *st;
    mwl_store_options ro = {.read_only = true, .settings = "sqlite.busy_timeout_ms=5000"};
    int rc = mwl_store_open(path, &ro, &st, d);
    if (rc == MWL_OK) {
        rc = mwl_store_count(st, count, d);
        mwl_store_free(st);
    }
    return rc;
}

static void *writer_main(void *arg)
{
    writer_thread *w = arg;
    mwl_store *store = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (store_open_writer(S.db, &store, &d) != MWL_OK) {
        snprintf(w->error, sizeof w->error, "store open %s: %s", S.db, d.msg);
        w->errors++;
        return NULL;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    uint64_t run = (uint64_t)time(NULL) * 1000u + (uint64_t)getpid() % 1000u;
    uint64_t rng = run | 1;
    size_t batch = (size_t)S.write_batch;
    mwl_ds **items = calloc(batch, sizeof *items);
    if (!items) {
        w->errors++;
        mwl_store_free(store);
        return NULL;
    }
    /* batch k is due at start + k * batch / rate */
    uint64_t start = now_ns(), n = 0;
    double period_ns = 1e9 * (double)batch / S.write_rate;
    for (uint64_t k = 0; !atomic_load(&stop_flag); k++) {
        uint64_t due = start + (uint64_t)((double)k * period_ns);
        if (now_ns() > due + (uint64_t)period_ns)
            w->late++; /* more than one period behind */
        sleep_until_ns(due);
        if (atomic_load(&stop_flag))
            break;
        int rc = MWL_OK;
        for (size_t i = 0; rc == MWL_OK && i < batch; i++)
            rc = make_item(&arena, run, ++n, &rng, &items[i]);
        uint64_t t0 = now_ns();
        if (rc == MWL_OK)
            rc = store_write_batch(store, items, batch, &d);
        uint64_t t1 = now_ns();
        mwl_arena_clear(&arena);
        if (rc != MWL_OK) {
            snprintf(w->error, sizeof w->error, "write: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
            w->errors++;
            break;
        }
        w->items_total += batch;
        if (in_window(t0)) {
            hist_add(&w->h, t1 - t0);
            w->items += batch;
        }
    }
    free(items);
    mwl_arena_clear(&arena);
    mwl_store_free(store);
    return NULL;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: load_bench --port P [--host H] [--aet AEC] [--db FILE] [options]\n"
                 "\n"
                 "  --interactive Q    interactive client threads (default 8)\n"
                 "  --query KIND       station (default: SPS Start Date = --date and Scheduled\n"
                 "                     Station AE Title = CT01, CT02, ... by thread, or --station),\n"
                 "                     accession or patient-id (a random `mwl demo` item 1..--items)\n"
                 "  --station AE       every interactive thread asks for this station\n"
                 "  --date YYYYMMDD    the day of the station query (default today)\n"
                 "  --items N          demo items in the database (default: counted in --db)\n"
                 "  --scanners S       wildcard scan threads (default 4)\n"
                 "  --scan-name PN     the scan's Patient's Name (default *ZZZ*)\n"
                 "  --write-rate R     writer items/s into --db (default 0: no writer)\n"
                 "  --write-batch B    items per transaction (default rate/10, at least 1)\n"
                 "  --write-days D     writer schedules items 1..D days ahead (default 30)\n"
                 "  --duration S       measured seconds (default 10)\n"
                 "  --warmup S         seconds before measuring (default 2)\n"
                 "\n"
                 "With --interactive 0 --scanners 0 it only writes (no server needed).\n");
}

static double parse_num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "load_bench: bad value for --%s: %s\n", opt, v);
        exit(2);
    }
    return x;
}

static void print_hist_json(const char *name, const hist *h)
{
    printf("\"%s\":{\"count\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
           "\"max_ms\":%.3f,\"mean_ms\":%.3f}",
           name, (unsigned long long)h->count, hist_ms(h, 0.5), hist_ms(h, 0.9), hist_ms(h, 0.99),
           hist_ms(h, 0.999), (double)h->max / 1e6, h->count ? (double)h->sum / 1e6 / (double)h->count : 0.0);
}

int main(int argc, char **argv)
{
    S.host = "127.0.0.1";
    S.aet = "MWL";
    S.interactive = 8;
    S.scanners = 4;
    S.duration_s = 10;
    S.warmup_s = 2;
    S.kind = Q_STATION;
    S.scan_name = "*ZZZ*";
    S.write_days = 30;
    add_days(0, S.date);
    static const struct option opts[] = {{"host", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"aet", required_argument, NULL, 'a'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"interactive", required_argument, NULL, 'q'},
                                         {"query", required_argument, NULL, 'k'},
                                         {"station", required_argument, NULL, 's'},
                                         {"date", required_argument, NULL, 'D'},
                                         {"items", required_argument, NULL, 'n'},
                                         {"scanners", required_argument, NULL, 'S'},
                                         {"scan-name", required_argument, NULL, 'N'},
                                         {"write-rate", required_argument, NULL, 'w'},
                                         {"write-batch", required_argument, NULL, 'b'},
                                         {"write-days", required_argument, NULL, 'y'},
                                         {"duration", required_argument, NULL, 't'},
                                         {"warmup", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = opts; o->name; o++)
            if (o->val == c)
                name = o->name;
        switch (c) {
        case 'H': S.host = optarg; break;
        case 'p': S.port = (uint16_t)parse_num(name, optarg, 1, 65535); break;
        case 'a': S.aet = optarg; break;
        case 'd': S.db = optarg; break;
        case 'q': S.interactive = (int)parse_num(name, optarg, 0, 256); break;
        case 'k':
            if (strcmp(optarg, "station") == 0)
                S.kind = Q_STATION;
            else if (strcmp(optarg, "accession") == 0)
                S.kind = Q_ACCESSION;
            else if (strcmp(optarg, "patient-id") == 0)
                S.kind = Q_PATIENT_ID;
            else {
                fprintf(stderr, "load_bench: --query is station, accession or patient-id\n");
                return 2;
            }
            break;
        case 's': S.station = optarg; break;
        case 'D':
            if (strlen(optarg) != 8) {
                fprintf(stderr, "load_bench: --date wants YYYYMMDD\n");
                return 2;
            }
            memcpy(S.date, optarg, 9);
            break;
        case 'n': S.items = (long long)parse_num(name, optarg, 1, 1e9); break;
        case 'S': S.scanners = (int)parse_num(name, optarg, 0, 256); break;
        case 'N': S.scan_name = optarg; break;
        case 'w': S.write_rate = parse_num(name, optarg, 0, 1e6); break;
        case 'b': S.write_batch = (int)parse_num(name, optarg, 1, 100000); break;
        case 'y': S.write_days = (int)parse_num(name, optarg, 1, 3650); break;
        case 't': S.duration_s = parse_num(name, optarg, 0.1, 86400); break;
        case 'u': S.warmup_s = parse_num(name, optarg, 0, 3600); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || ((S.interactive || S.scanners) && S.port == 0)) {
        usage(stderr);
        return 2;
    }
    if (S.write_rate > 0 && !S.db) {
        fprintf(stderr, "load_bench: --write-rate needs --db\n");
        return 2;
    }
    if (S.write_batch == 0) {
        S.write_batch = (int)(S.write_rate / 10);
        if (S.write_batch < 1)
            S.write_batch = 1;
    }
    if (S.interactive && S.kind != Q_STATION && S.items == 0) {
        mwl_diag d;
        mwl_diag_clear(&d);
        int64_t count = 0;
        if (!S.db || store_count_rows(S.db, &count, &d) != MWL_OK || count < 1) {
            fprintf(stderr, "load_bench: --query %s needs --items N or a readable --db with items%s%s\n",
                    S.kind == Q_ACCESSION ? "accession" : "patient-id", d.msg[0] ? ": " : "", d.msg);
            return 2;
        }
        S.items = count;
    }

    uint64_t t_begin = now_ns();
    window_start = t_begin + (uint64_t)(S.warmup_s * 1e9);
    window_end = window_start + (uint64_t)(S.duration_s * 1e9);

    int nclients = S.interactive + S.scanners;
    client_thread *ct = calloc((size_t)(nclients ? nclients : 1), sizeof *ct);
    writer_thread *wt = calloc(1, sizeof *wt);
    if (!ct || !wt) {
        fprintf(stderr, "load_bench: out of memory\n");
        return 1;
    }
    int started = 0;
    for (int i = 0; i < nclients; i++) {
        ct[i].index = i < S.interactive ? i : i - S.interactive;
        ct[i].scanner = i >= S.interactive;
        ct[i].rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * (uint64_t)0x100000001B3ull;
        if (pthread_create(&ct[i].tid, NULL, client_main, &ct[i]) != 0) {
            fprintf(stderr, "load_bench: cannot start a thread\n");
            atomic_store(&stop_flag, 1);
            break;
        }
        started++;
    }
    bool writer = S.write_rate > 0;
    if (writer && pthread_create(&wt->tid, NULL, writer_main, wt) != 0) {
        fprintf(stderr, "load_bench: cannot start the writer\n");
        writer = false;
    }
    while (now_ns() < window_end && !atomic_load(&assoc_failures)) {
        uint64_t next = now_ns() + 100000000u;
        sleep_until_ns(next < window_end ? next : window_end);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < started; i++)
        pthread_join(ct[i].tid, NULL);
    if (writer)
        pthread_join(wt->tid, NULL);

    /* ---- report ---- */
    hist *hq = calloc(1, sizeof *hq), *hs = calloc(1, sizeof *hs);
    if (!hq || !hs)
        return 1;
    uint64_t q_matches = 0, errors = 0, q_overrun = 0, s_overrun = 0;
    int assoc_failed = 0;
    for (int i = 0; i < started; i++) {
        hist_merge(ct[i].scanner ? hs : hq, &ct[i].h);
        if (!ct[i].scanner)
            q_matches += ct[i].matches;
        *(ct[i].scanner ? &s_overrun : &q_overrun) += ct[i].overrun;
        errors += ct[i].errors;
        assoc_failed += ct[i].assoc_failed;
        if (ct[i].error[0])
            fprintf(stderr, "load_bench: %s %d: %s\n", ct[i].scanner ? "scanner" : "interactive", ct[i].index,
                    ct[i].error);
    }
    errors += wt->errors;
    if (wt->error[0])
        fprintf(stderr, "load_bench: writer: %s\n", wt->error);
    double secs = S.duration_s;
    static const char *const kinds[] = {"station", "accession", "patient-id"};
    const char *qdesc =
        S.kind == Q_STATION ? (S.station ? S.station : "CT01..NM01 by thread") : "random item";
    printf("load_bench: %s:%u, measured %.1f s after %.1f s warm-up\n", S.host, S.port, secs, S.warmup_s);
    if (S.interactive) {
        printf("interactive: %d threads, query %s (%s%s%s), %.1f matches/query\n", S.interactive,
               kinds[S.kind], qdesc, S.kind == Q_STATION ? ", date " : "", S.kind == Q_STATION ? S.date : "",
               hq->count ? (double)q_matches / (double)hq->count : 0.0);
        printf("  queries %llu  = %.1f/s (%llu ended after the window)\n", (unsigned long long)hq->count,
               (double)hq->count / secs, (unsigned long long)q_overrun);
        printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", hist_ms(hq, 0.5),
               hist_ms(hq, 0.9), hist_ms(hq, 0.99), hist_ms(hq, 0.999), (double)hq->max / 1e6);
    }
    if (S.scanners) {
        printf("scanners: %d threads, PatientName=%s\n", S.scanners, S.scan_name);
        printf("  scans %llu = %.2f/s (%llu ended after the window); duration ms: p50 %.1f  p99 %.1f  max "
               "%.1f\n",
               (unsigned long long)hs->count, (double)hs->count / secs, (unsigned long long)s_overrun,
               hist_ms(hs, 0.5), hist_ms(hs, 0.99), (double)hs->max / 1e6);
    }
    if (writer) {
        printf("writer: target %.1f items/s, %d per transaction, %d days ahead\n", S.write_rate,
               S.write_batch, S.write_days);
        printf(
            "  items %llu = %.1f/s (%llu in all); transaction ms: p50 %.2f  p99 %.2f  max %.2f; late %llu\n",
            (unsigned long long)wt->items, (double)wt->items / secs, (unsigned long long)wt->items_total,
            hist_ms(&wt->h, 0.5), hist_ms(&wt->h, 0.99), (double)wt->h.max / 1e6,
            (unsigned long long)wt->late);
    }
    if (errors || assoc_failed)
        printf("errors: %llu, failed associations: %d\n", (unsigned long long)errors, assoc_failed);

    printf("{\"duration_s\":%.3f,\"warmup_s\":%.3f,\"interactive\":{\"threads\":%d,\"query\":\"%s\","
           "\"date\":\"%s\",\"matches_per_query\":%.2f,\"qps\":%.1f,\"ended_after_window\":%llu,",
           secs, S.warmup_s, S.interactive, kinds[S.kind], S.kind == Q_STATION ? S.date : "",
           hq->count ? (double)q_matches / (double)hq->count : 0.0, (double)hq->count / secs,
           (unsigned long long)q_overrun);
    print_hist_json("latency", hq);
    printf("},\"scan\":{\"threads\":%d,\"patient_name\":\"%s\",\"per_s\":%.2f,\"ended_after_window\":%llu,",
           S.scanners, S.scan_name, (double)hs->count / secs, (unsigned long long)s_overrun);
    print_hist_json("duration", hs);
    printf("},\"writer\":{\"target_rate\":%.1f,\"batch\":%d,\"items\":%llu,\"rate\":%.1f,\"late\":%llu,",
           writer ? S.write_rate : 0.0, writer ? S.write_batch : 0, (unsigned long long)wt->items,
           (double)wt->items / secs, (unsigned long long)wt->late);
    print_hist_json("txn", &wt->h);
    printf("},\"errors\":%llu,\"failed_associations\":%d}\n", (unsigned long long)errors, assoc_failed);
    free(hq);
    free(hs);
    free(ct);
    free(wt);
    if (assoc_failed)
        return 3;
    return errors ? 1 : 0;
}
