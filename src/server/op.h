/* A worker operation: work that one association hands to the pool (store
 * access, encoding a batch of matches) and whose result comes back to the
 * loop thread. Services embed one per piece of work they may have in
 * flight; the session stays alive (a "zombie" after its connection is gone)
 * while any of them is outstanding.
 *
 *   loop: server_op_submit --> pool: run(op, worker) --> loop: done(op)
 *
 * Private to the server module. */
#ifndef MWL_SERVER_OP_H
#define MWL_SERVER_OP_H

#include <stdbool.h>
#include <stddef.h>

#include "net/net.h"

typedef struct mwl_server mwl_server;
typedef struct server_op server_op;

struct server_op {
    /* Worker thread: the work. Must not touch loop-thread state. */
    void (*run)(server_op *op, size_t worker);
    /* Loop thread, after run: take the result, maybe submit again. */
    void (*done)(server_op *op);
    void *user;
    mwl_server *srv;
    /* ---- loop thread ---- */
    bool outstanding; /* queued, running, or its done() not yet called */
    bool background;  /* the next submit queues it as background work */
    /* ---- the pool's and the loop's links ---- */
    mwl_pool_job job;
    mwl_loop_task task;
};

void server_op_init(server_op *op, mwl_server *srv, void (*run)(server_op *, size_t),
                    void (*done)(server_op *), void *user);

/* Queues the op on the pool (loop thread; the op must not be outstanding).
 * The pool's queue has room for one op per session, so this only fails
 * while the server is being freed: the op then runs inline and its done()
 * comes through the loop as usual. */
void server_op_submit(server_op *op);

#endif
