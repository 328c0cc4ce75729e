/* The recent C-FIND log (query_log.c): newest first, wrap-around, lookup by
 * id, the filter by calling AE, the bounded counters by calling AE and
 * status, the latency histogram, and writers on several threads at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/server.h"

static void fill(mwl_query_record *r, const char *calling, uint64_t matches, uint16_t status, uint64_t ms)
{
    memset(r, 0, sizeof *r);
    snprintf(r->calling, sizeof r->calling, "%s", calling);
    snprintf(r->called, sizeof r->called, "MWL");
    snprintf(r->peer, sizeof r->peer, "127.0.0.1:4000");
    snprintf(r->keys, sizeof r->keys, "matches=%llu", (unsigned long long)matches);
    r->matches = matches;
    r->status = status;
    r->duration_ms = ms;
    r->identifier_length = 3;
    memcpy(r->identifier, "abc", 3);
}

static void test_ring(void)
{
    mwl_query_log *log = NULL;
    CHECK_EQ_INT(mwl_query_log_new(4, &log), MWL_OK);
    mwl_query_record r, out[8];
    CHECK_EQ_INT(mwl_query_log_list(log, NULL, out, 8), 0);
    for (uint64_t i = 1; i <= 6; i++) {
        fill(&r, i % 2 ? "CT01" : "MR01", i, 0x0000, i);
        mwl_query_log_add(log, &r);
    }
    /* Six added into four slots: 6, 5, 4, 3 remain, newest first. */
    size_t n = mwl_query_log_list(log, NULL, out, 8);
    CHECK_EQ_INT(n, 4);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(out[i].id, 6 - i);
        CHECK_EQ_INT(out[i].matches, 6 - i);
        CHECK_EQ_INT(out[i].identifier_length, 3);
        CHECK_EQ_MEM(out[i].identifier, 3, "abc", 3);
        CHECK(out[i].time_ms > 0);
    }
    CHECK_EQ_INT(mwl_query_log_list(log, NULL, out, 2), 2);
    CHECK_EQ_INT(out[1].id, 5);
    n = mwl_query_log_list(log, "CT01", out, 8);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0].id, 5);
    CHECK_EQ_INT(out[1].id, 3);
    CHECK_EQ_INT(mwl_query_log_list(log, "NOBODY", out, 8), 0);
    CHECK_EQ_INT(mwl_query_log_get(log, 3, &r), MWL_OK);
    CHECK_EQ_STR(r.calling, "CT01");
    CHECK_EQ_INT(mwl_query_log_get(log, 2, &r), MWL_E_NOTFOUND); /* overwritten */
    CHECK_EQ_INT(mwl_query_log_get(log, 7, &r), MWL_E_NOTFOUND); /* not yet */
    CHECK_EQ_INT(mwl_query_log_get(log, 0, &r), MWL_E_NOTFOUND);
    /* An identifier length beyond the room is not trusted. */
    fill(&r, "CT01", 0, 0, 0);
    r.identifier_length = MWL_QUERY_IDENTIFIER_MAX + 1;
    mwl_query_log_add(log, &r);
    CHECK_EQ_INT(mwl_query_log_get(log, 7, &r), MWL_OK);
    CHECK_EQ_INT(r.identifier_length, 0);
    mwl_query_log_free(log);
    mwl_query_log_free(NULL);
}

static void test_counters(void)
{
    mwl_query_log *log = NULL;
    /* No records kept, but counted all the same. */
    CHECK_EQ_INT(mwl_query_log_new(0, &log), MWL_OK);
    mwl_query_record r;
    mwl_find_stats *st = malloc(sizeof *st);
    CHECK(st != NULL);
    if (!st)
        return;
    fill(&r, "CT01", 2, 0x0000, 3);
    mwl_query_log_add(log, &r);
    fill(&r, "CT01", 1, 0xFE00, 7);
    mwl_query_log_add(log, &r);
    fill(&r, "CT01", 0, 0x0000, 40000);
    mwl_query_log_add(log, &r);
    CHECK_EQ_INT(mwl_query_log_list(log, NULL, &r, 1), 0);
    mwl_query_log_get_stats(log, st);
    CHECK_EQ_INT(st->ae_count, 1);
    CHECK_EQ_STR(st->ae[0].ae, "CT01");
    CHECK_EQ_INT(st->ae[0].status_count, 2);
    CHECK_EQ_INT(st->ae[0].by_status[0].status, 0x0000);
    CHECK_EQ_INT(st->ae[0].by_status[0].count, 2);
    CHECK_EQ_INT(st->ae[0].by_status[1].status, 0xFE00);
    CHECK_EQ_INT(st->ae[0].matches, 3);
    CHECK_EQ_INT(st->count, 3);
    CHECK_EQ_INT(st->sum_ms, 40010);
    CHECK_EQ_INT(st->bucket[0], 1);                         /* 3 ms <= 5 ms */
    CHECK_EQ_INT(st->bucket[1], 1);                         /* 7 ms <= 10 ms */
    CHECK_EQ_INT(st->bucket[MWL_FIND_DURATION_BUCKETS], 1); /* above 30 s */

    /* Statuses beyond the bound fold into other_status; titles beyond
     * theirs into one "other" row, kept last. */
    for (uint16_t s = 1; s <= MWL_FIND_STATS_STATUSES_MAX + 2; s++) {
        fill(&r, "MR01", 0, (uint16_t)(0xC000 + s), 1);
        mwl_query_log_add(log, &r);
    }
    for (int i = 0; i < MWL_FIND_STATS_AETS_MAX + 10; i++) {
        char ae[17];
        snprintf(ae, sizeof ae, "AE%d", i);
        fill(&r, ae, 1, 0, 1);
        mwl_query_log_add(log, &r);
    }
    fill(&r, "CT01", 0, 0, 1); /* a known title still has its own row */
    mwl_query_log_add(log, &r);
    mwl_query_log_get_stats(log, st);
    CHECK_EQ_INT(st->ae_count, MWL_FIND_STATS_AETS_MAX + 1);
    CHECK_EQ_INT(st->ae[1].status_count, MWL_FIND_STATS_STATUSES_MAX);
    CHECK_EQ_INT(st->ae[1].other_status, 2);
    CHECK_EQ_INT(st->ae[0].by_status[0].count, 3);
    const mwl_find_stats_ae *other = &st->ae[st->ae_count - 1];
    CHECK(other->other);
    CHECK_EQ_INT(other->by_status[0].count, 12); /* AE2 .. : 266 - 254 own rows */
    uint64_t total = 0;
    for (size_t i = 0; i < st->ae_count; i++) {
        for (size_t k = 0; k < st->ae[i].status_count; k++)
            total += st->ae[i].by_status[k].count;
        total += st->ae[i].other_status;
    }
    CHECK_EQ_INT(total, st->count);
    free(st);
    mwl_query_log_free(log);
}

enum { WRITERS = 4, PER_WRITER = 5000 };

static void *writer(void *arg)
{
    mwl_query_log *log = arg;
    static const char *const aes[WRITERS] = {"W0", "W1", "W2", "W3"};
    size_t me = 0;
    /* Each thread learns its index from the order it claims one. */
    static atomic_size_t next_index;
    me = atomic_fetch_add(&next_index, 1) % WRITERS;
    mwl_query_record r;
    for (int i = 0; i < PER_WRITER; i++) {
        fill(&r, aes[me], (uint64_t)i, 0, 1);
        mwl_query_log_add(log, &r);
    }
    return NULL;
}

static void test_concurrent_writers(void)
{
    mwl_query_log *log = NULL;
    CHECK_EQ_INT(mwl_query_log_new(100, &log), MWL_OK);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, writer, log), 0);
    /* A reader meanwhile sees whole records, ids strictly decreasing. */
    mwl_query_record *out = malloc(100 * sizeof *out);
    CHECK(out != NULL);
    for (int round = 0; out && round < 50; round++) {
        size_t n = mwl_query_log_list(log, NULL, out, 100);
        for (size_t i = 1; i < n; i++)
            CHECK(out[i].id + 1 == out[i - 1].id);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ_MEM(out[i].identifier, out[i].identifier_length, "abc", 3);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    size_t n = out ? mwl_query_log_list(log, NULL, out, 100) : 0;
    CHECK_EQ_INT(n, 100);
    CHECK_EQ_INT(out ? out[0].id : 0, WRITERS * PER_WRITER);
    mwl_find_stats *st = malloc(sizeof *st);
    CHECK(st != NULL);
    if (st) {
        mwl_query_log_get_stats(log, st);
        CHECK_EQ_INT(st->count, WRITERS * PER_WRITER);
        CHECK_EQ_INT(st->ae_count, WRITERS);
        for (size_t i = 0; i < st->ae_count; i++)
            CHECK_EQ_INT(st->ae[i].by_status[0].count, PER_WRITER);
    }
    free(st);
    free(out);
    mwl_query_log_free(log);
}

int main(void)
{
    RUN_TEST(test_ring);
    RUN_TEST(test_counters);
    RUN_TEST(test_concurrent_writers);
    return check_report("query_log_test");
}
