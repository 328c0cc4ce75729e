/* Fuzz target: bytes from a peer into an Upper Layer session (STYLE.md
 * §10), with a fake clock, a driver that answers like a server or client
 * would, and an allocator that bounds and can fail memory.
 *
 * Input: byte 0 chooses the set-up:
 *   bit 0     0 = acceptor (the input is a requestor talking to us),
 *             1 = requestor that has asked for an association (Sta4,
 *                 connecting): the transport comes up (A-ASSOCIATE-RQ sent,
 *                 Sta5) before the first peer bytes or at local action 7,
 *                 so local actions first act while connecting; the input
 *                 is the acceptor's answer and what follows;
 *   bit 1     idle timer on;
 *   bit 2     the driver rejects associations (policy says "too many");
 *   bits 3-7  if non-zero, fail the (n * 4)-th allocation and all after.
 * Then records: a control byte c.
 *   c < 0xC0  feed the next c + 1 bytes (PDUs may span records);
 *   c >= 0xC0 a local action (c & 7) with time advanced by (c >> 3 & 7) * 400 ms:
 *             0 timer, 1 release, 2 release response, 3 abort, 4 send a PDV,
 *             5 transport closed (in Sta4: the connect failed), 6 toggle a
 *             slow writer (from then on only half the pending output is
 *             written each time), 7 timer (in Sta4: the transport is up). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ul/ul.h"

#define UID_VERIFICATION "1.2.840.10008.1.1"
#define UID_MWL_FIND "1.2.840.10008.5.1.4.31"
#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Live bytes are bounded: input is at most 6 + max(limits), a PDU's decode
 * a small multiple of its size, output what the driver below lets pile up. */
enum { MEMORY_BOUND = 4 << 20 };

typedef struct fuzz_mem {
    mwl_mem mem;
    size_t live, count, fail_at;
} fuzz_mem;

static void *fm_malloc(size_t size, void *user)
{
    fuzz_mem *m = user;
    if (m->fail_at && ++m->count >= m->fail_at)
        return NULL;
    size_t *p = malloc(size + 2 * sizeof(size_t));
    if (!p)
        return NULL;
    p[0] = size;
    m->live += size;
    if (m->live > MEMORY_BOUND)
        abort(); /* unbounded growth is a finding */
    return p + 2;
}

static void fm_free(void *ptr, void *user)
{
    fuzz_mem *m = user;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    m->live -= p[0];
    free(p);
}

static void *fm_realloc(void *ptr, size_t size, void *user)
{
    if (!ptr)
        return fm_malloc(size, user);
    size_t old = ((size_t *)ptr)[-2];
    void *n = fm_malloc(size, user);
    if (!n)
        return NULL;
    memcpy(n, ptr, old < size ? old : size);
    fm_free(ptr, user);
    return n;
}

static const char *our_ts[] = {TS_EXPLICIT_LE, TS_IMPLICIT_LE};
static const mwl_policy_syntax our_syntaxes[] = {
    {UID_VERIFICATION, our_ts, 2, true, false},
    {UID_MWL_FIND, our_ts, 2, true, false},
};
static mwl_pctx_rq our_contexts[] = {
    {1, UID_VERIFICATION, our_ts, 2},
    {3, UID_MWL_FIND, our_ts, 1},
};

#define REQUIRE(cond)                                                                                        \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            abort();                                                                                         \
    } while (0)

/* A status the driver may see from a request it made in good faith. */
static void check_request_status(int rc)
{
    REQUIRE(rc == MWL_OK || rc == MWL_E_PROTOCOL || rc == MWL_E_LIMIT || mwl_is_fatal(rc));
}

typedef struct driver {
    mwl_ul *ul;
    uint64_t now;
    bool reject;
    bool slow;   /* write half the pending output at a time */
    bool closed; /* MWL_UL_EV_CLOSED seen */
    bool dead;   /* a fatal status seen */
} driver;

static void handle_events(driver *d)
{
    mwl_ul_event ev;
    int rc;
    while ((rc = mwl_ul_next_event(d->ul, &ev)) == MWL_OK) {
        REQUIRE(!d->closed); /* CLOSED is always the last event */
        switch (ev.type) {
        case MWL_UL_EV_ASSOCIATE_RQ: {
            REQUIRE(mwl_ul_get_state(d->ul) == MWL_UL_STA3);
            mwl_policy p;
            mwl_policy_init(&p);
            p.ae_title = "MWLSCP";
            p.syntaxes = our_syntaxes;
            p.syntax_count = 2;
            p.implementation_class_uid = "1.2.3";
            p.too_many_associations = d->reject;
            mwl_arena arena;
            mwl_arena_init(&arena, NULL);
            mwl_negotiation n;
            rc = mwl_negotiate(ev.u.associate_rq, &p, &arena, &n);
            REQUIRE(rc == MWL_OK || rc == MWL_E_NOMEM);
            if (rc == MWL_OK) {
                rc = n.accepted ? mwl_ul_accept(d->ul, &n.ac, d->now) : mwl_ul_reject(d->ul, &n.rj, d->now);
                /* what negotiation produced from a decoded RQ must be sendable */
                REQUIRE(rc == MWL_OK || mwl_is_fatal(rc));
            }
            mwl_arena_clear(&arena);
            break;
        }
        case MWL_UL_EV_P_DATA:
            REQUIRE(ev.u.p_data.count > 0);
            for (size_t i = 0; i < ev.u.p_data.count; i++)
                REQUIRE(mwl_ul_context(d->ul, ev.u.p_data.pdvs[i].context_id, NULL, NULL) == MWL_OK);
            /* echo it back, as a server answering would */
            check_request_status(mwl_ul_send_p_data(d->ul, ev.u.p_data.pdvs, ev.u.p_data.count, d->now));
            break;
        case MWL_UL_EV_RELEASE_RQ:
            if (!ev.u.release_rq.collision || mwl_ul_get_state(d->ul) == MWL_UL_STA9)
                check_request_status(mwl_ul_release_response(d->ul, d->now));
            break;
        case MWL_UL_EV_RELEASE_RP:
            if (ev.u.release_rp.collision)
                check_request_status(mwl_ul_release_response(d->ul, d->now));
            break;
        case MWL_UL_EV_CLOSED:
            REQUIRE(mwl_ul_get_state(d->ul) == MWL_UL_STA1);
            d->closed = true;
            break;
        case MWL_UL_EV_ASSOCIATE_AC:
        case MWL_UL_EV_ASSOCIATE_RJ:
        case MWL_UL_EV_ABORTED: break;
        }
    }
    if (rc != MWL_AGAIN) {
        REQUIRE(mwl_is_fatal(rc));
        d->dead = true;
    }
}

static void write_output(driver *d)
{
    const uint8_t *out;
    size_t n = mwl_ul_pending_output(d->ul, &out);
    REQUIRE(n == 0 || out != NULL);
    mwl_ul_output_written(d->ul, d->slow ? n / 2 : n);
}

static void check_invariants(driver *d)
{
    if (d->dead)
        return;
    mwl_ul_state s = mwl_ul_get_state(d->ul);
    REQUIRE(s >= MWL_UL_STA1 && s <= MWL_UL_STA13);
    uint64_t deadline = mwl_ul_deadline(d->ul);
    if (s == MWL_UL_STA1)
        REQUIRE(deadline == UINT64_MAX);
    if (s == MWL_UL_STA2 || s == MWL_UL_STA13)
        REQUIRE(deadline != UINT64_MAX); /* ARTIM runs */
}

static void local_action(driver *d, uint8_t c)
{
    static const uint8_t fragment[4] = {0, 0, 0, 0};
    int rc = MWL_OK;
    d->now += (uint64_t)((c >> 3) & 7) * 400;
    switch (c & 7) {
    case 0:
    case 7:
        if ((c & 7) == 7 && mwl_ul_get_state(d->ul) == MWL_UL_STA4)
            rc = mwl_ul_transport_connected(d->ul, d->now);
        else
            rc = mwl_ul_timer(d->ul, d->now);
        break;
    case 1: rc = mwl_ul_release(d->ul, d->now); break;
    case 2: rc = mwl_ul_release_response(d->ul, d->now); break;
    case 3: rc = mwl_ul_abort(d->ul, d->now); break;
    case 4: {
        uint8_t id = 1;
        if (mwl_ul_find_context(d->ul, UID_MWL_FIND, &id, NULL) != MWL_OK)
            id = 1;
        rc = mwl_ul_send_pdv(d->ul, id, MWL_PDV_COMMAND | MWL_PDV_LAST, fragment, sizeof fragment, d->now);
        if (rc == MWL_E_INVALID)
            rc = MWL_OK; /* no accepted context: the driver's mistake, refused */
        break;
    }
    case 5: rc = mwl_ul_transport_closed(d->ul, d->now); break;
    case 6: d->slow = !d->slow; break;
    }
    check_request_status(rc);
    if (mwl_is_fatal(rc))
        d->dead = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;

    fuzz_mem fm = {{fm_malloc, fm_realloc, fm_free, NULL}, 0, 0, 0};
    fm.mem.user = &fm;
    fm.fail_at = (size_t)(mode >> 3) * 4;

    mwl_ul_config cfg;
    mwl_ul_config_init(&cfg, (mode & 1) ? MWL_UL_REQUESTOR : MWL_UL_ACCEPTOR);
    cfg.mem = &fm.mem;
    cfg.max_pdu_length = 4096;
    cfg.max_associate_length = 16384;
    cfg.artim_timeout_ms = 1000;
    cfg.idle_timeout_ms = (mode & 2) ? 700 : 0;
    cfg.limits.max_pdvs = 64;

    driver d = {NULL, 1, (mode & 4) != 0, false, false, false};
    if (mwl_ul_new(&cfg, &d.ul) != MWL_OK)
        return 0;
    int rc;
    if (mode & 1) {
        mwl_assoc_rq rq;
        memset(&rq, 0, sizeof rq);
        rq.protocol_version = 1;
        if (mwl_assoc_rq_set_titles(&rq, "MWLSCP", "FUZZSCU") != MWL_OK)
            abort();
        rq.application_context = MWL_APPLICATION_CONTEXT_NAME;
        rq.contexts = our_contexts;
        rq.context_count = 2;
        rq.user_info.implementation_class_uid = "1.2.3.4";
        rc = mwl_ul_associate(d.ul, &rq, d.now);
    } else {
        rc = mwl_ul_transport_connected(d.ul, d.now);
    }
    REQUIRE(rc == MWL_OK || mwl_is_fatal(rc));
    d.dead = rc != MWL_OK;
    write_output(&d);

    size_t pos = 0;
    while (pos < size && !d.dead && !d.closed) {
        uint8_t c = data[pos++];
        if (c >= 0xC0) {
            local_action(&d, c);
        } else {
            size_t n = (size_t)c + 1;
            if (n > size - pos)
                n = size - pos;
            const uint8_t *p = data + pos;
            pos += n;
            d.now += 1;
            if (mwl_ul_get_state(d.ul) == MWL_UL_STA4) {
                /* a peer talks only once connected */
                rc = mwl_ul_transport_connected(d.ul, d.now);
                REQUIRE(rc == MWL_OK || mwl_is_fatal(rc));
                if (rc != MWL_OK) {
                    d.dead = true;
                    break;
                }
                handle_events(&d);
                write_output(&d);
                check_invariants(&d);
            }
            while (n > 0 && !d.dead && !d.closed) {
                size_t used = 0;
                rc = mwl_ul_feed(d.ul, p, n, &used, d.now);
                if (rc == MWL_E_CLOSED)
                    break;
                if (mwl_is_fatal(rc)) {
                    d.dead = true;
                    break;
                }
                REQUIRE(rc == MWL_OK); /* events are drained before every feed */
                REQUIRE(used >= 1 && used <= n);
                p += used;
                n -= used;
                handle_events(&d);
                write_output(&d);
                check_invariants(&d);
            }
        }
        if (!d.dead && !d.closed) {
            handle_events(&d);
            write_output(&d);
            check_invariants(&d);
        }
    }
    /* the peer goes away; the session must wind down cleanly */
    if (!d.dead && !d.closed) {
        rc = mwl_ul_transport_closed(d.ul, d.now);
        REQUIRE(rc == MWL_OK || rc == MWL_E_PROTOCOL || mwl_is_fatal(rc));
        if (rc == MWL_OK) {
            handle_events(&d);
            REQUIRE(d.dead || (d.closed && mwl_ul_get_state(d.ul) == MWL_UL_STA1));
        }
    }
    mwl_ul_free(d.ul);
    REQUIRE(fm.live == 0);
    return 0;
}
