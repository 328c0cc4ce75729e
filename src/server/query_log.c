/* The recent C-FIND log and the C-FIND counters (server.h, "The recent
 * C-FIND log"). Written on the loop thread once per C-FIND, read by the
 * HTTP listener's thread: one mutex, held only for bounded copies, never
 * across I/O or an allocation.
 *
 * The ring is allocated whole at creation (query-log-size records), so a
 * C-FIND never allocates here; the counters by calling AE title are a fixed
 * table with an open-addressing index, so finding a title's row costs a
 * hash and a probe or two, not a scan of 256 rows. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "server/server.h"

/* Prometheus' default buckets, from 5 ms to 10 s, plus 30 s: a worklist
 * query is answered in milliseconds, and an unindexed scan of a large
 * database may take seconds. */
const uint32_t mwl_find_duration_bounds_ms[MWL_FIND_DURATION_BUCKETS] = {5,   10,   25,   50,   100,   250,
                                                                         500, 1000, 2500, 5000, 10000, 30000};

/* Twice the titles, a power of two: probes stay short. */
#define AE_INDEX_SIZE 512

struct mwl_query_log {
    pthread_mutex_t mu;
    size_t capacity;
    size_t count; /* records held, <= capacity */
    size_t next;  /* slot the next record goes to */
    uint64_t last_id;
    mwl_query_record *ring;
    mwl_find_stats stats; /* the "other" row, when used, is kept at stats.ae[MAX] */
    bool other_used;
    uint16_t ae_index[AE_INDEX_SIZE]; /* 0 = empty, else row + 1 */
};

int mwl_query_log_new(size_t capacity, mwl_query_log **out)
{
    *out = NULL;
    const mwl_mem *mem = mwl_mem_default();
    mwl_query_log *log = mwl_mem_calloc(mem, 1, sizeof *log);
    if (!log)
        return MWL_E_NOMEM;
    if (capacity) {
        log->ring = mwl_mem_calloc(mem, capacity, sizeof *log->ring);
        if (!log->ring) {
            mwl_mem_free(mem, log);
            return MWL_E_NOMEM;
        }
    }
    log->capacity = capacity;
    pthread_mutex_init(&log->mu, NULL);
    *out = log;
    return MWL_OK;
}

void mwl_query_log_free(mwl_query_log *log)
{
    if (!log)
        return;
    const mwl_mem *mem = mwl_mem_default();
    pthread_mutex_destroy(&log->mu);
    mwl_mem_free(mem, log->ring);
    mwl_mem_free(mem, log);
}

size_t mwl_query_log_capacity(const mwl_query_log *log)
{
    return log ? log->capacity : 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t hash_ae(const char *ae)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)ae; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* The row counting `ae`: its own, a new one while there is room, else the
 * "other" row. Under mu. */
static mwl_find_stats_ae *ae_row(mwl_query_log *log, const char *ae)
{
    mwl_find_stats *st = &log->stats;
    for (uint32_t i = hash_ae(ae) & (AE_INDEX_SIZE - 1);; i = (i + 1) & (AE_INDEX_SIZE - 1)) {
        uint16_t slot = log->ae_index[i];
        if (slot == 0) {
            size_t own = st->ae_count - (log->other_used ? 1 : 0);
            if (own < MWL_FIND_STATS_AETS_MAX) {
                /* "other" is only used once every own row is taken, so
                 * no row follows this one yet. */
                mwl_find_stats_ae *row = &st->ae[own];
                memset(row, 0, sizeof *row);
                snprintf(row->ae, sizeof row->ae, "%s", ae);
                st->ae_count++;
                log->ae_index[i] = (uint16_t)(own + 1);
                return row;
            }
            mwl_find_stats_ae *other = &st->ae[MWL_FIND_STATS_AETS_MAX];
            if (!log->other_used) {
                memset(other, 0, sizeof *other);
                other->other = true;
                log->other_used = true;
                st->ae_count++;
            }
            return other;
        }
        if (strcmp(st->ae[slot - 1].ae, ae) == 0)
            return &st->ae[slot - 1];
    }
}

static void count(mwl_query_log *log, const mwl_query_record *rec)
{
    mwl_find_stats_ae *row = ae_row(log, rec->calling);
    size_t i = 0;
    while (i < row->status_count && row->by_status[i].status != rec->status)
        i++;
    if (i < row->status_count) {
        row->by_status[i].count++;
    } else if (i < MWL_FIND_STATS_STATUSES_MAX) {
        row->by_status[i].status = rec->status;
        row->by_status[i].count = 1;
        row->status_count++;
    } else {
        row->other_status++;
    }
    row->matches += rec->matches;
    size_t b = 0;
    while (b < MWL_FIND_DURATION_BUCKETS && rec->duration_ms > mwl_find_duration_bounds_ms[b])
        b++;
    log->stats.bucket[b]++;
    log->stats.count++;
    log->stats.sum_ms += rec->duration_ms;
}

/* Copies a record's fixed part and only the used bytes of its identifier:
 * most identifiers are a few hundred bytes of the 2 KiB room. */
static void copy_record(mwl_query_record *to, const mwl_query_record *from)
{
    memcpy(to, from, offsetof(mwl_query_record, identifier));
    uint32_t n = from->identifier_length <= MWL_QUERY_IDENTIFIER_MAX ? from->identifier_length : 0;
    to->identifier_length = n;
    memcpy(to->identifier, from->identifier, n);
}

void mwl_query_log_add(mwl_query_log *log, const mwl_query_record *rec)
{
    if (!log)
        return;
    int64_t now = wall_ms();
    pthread_mutex_lock(&log->mu);
    log->last_id++;
    if (log->capacity) {
        mwl_query_record *slot = &log->ring[log->next];
        copy_record(slot, rec);
        slot->id = log->last_id;
        slot->time_ms = now;
        slot->calling[sizeof slot->calling - 1] = '\0';
        slot->called[sizeof slot->called - 1] = '\0';
        slot->peer[sizeof slot->peer - 1] = '\0';
        slot->keys[sizeof slot->keys - 1] = '\0';
        slot->comment[sizeof slot->comment - 1] = '\0';
        log->next = (log->next + 1) % log->capacity;
        if (log->count < log->capacity)
            log->count++;
    }
    count(log, rec);
    pthread_mutex_unlock(&log->mu);
}

size_t mwl_query_log_list(mwl_query_log *log, const char *calling, mwl_query_record *out, size_t cap)
{
    if (!log)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&log->mu);
    for (size_t k = 0; k < log->count && n < cap; k++) {
        size_t at = (log->next + log->capacity - 1 - k) % log->capacity;
        const mwl_query_record *r = &log->ring[at];
        if (calling && strcmp(r->calling, calling) != 0)
            continue;
        copy_record(&out[n++], r);
    }
    pthread_mutex_unlock(&log->mu);
    return n;
}

int mwl_query_log_get(mwl_query_log *log, uint64_t id, mwl_query_record *out)
{
    if (!log || id == 0)
        return MWL_E_NOTFOUND;
    int rc = MWL_E_NOTFOUND;
    pthread_mutex_lock(&log->mu);
    /* Ids are consecutive: the newest is last_id, `count` back from it. */
    if (id <= log->last_id && log->last_id - id < log->count) {
        size_t back = (size_t)(log->last_id - id);
        copy_record(out, &log->ring[(log->next + log->capacity - 1 - back) % log->capacity]);
        rc = MWL_OK;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

void mwl_query_log_get_stats(mwl_query_log *log, mwl_find_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    /* Rows are contiguous except for "other", kept at the last index. */
    size_t own = log->stats.ae_count - (log->other_used ? 1 : 0);
    memcpy(out->ae, log->stats.ae, own * sizeof out->ae[0]);
    if (log->other_used)
        out->ae[own] = log->stats.ae[MWL_FIND_STATS_AETS_MAX];
    out->ae_count = log->stats.ae_count;
    memcpy(out->bucket, log->stats.bucket, sizeof out->bucket);
    out->count = log->stats.count;
    out->sum_ms = log->stats.sum_ms;
    pthread_mutex_unlock(&log->mu);
}
