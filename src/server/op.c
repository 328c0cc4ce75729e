/* Worker operations (op.h): the hand-over between the loop thread and the
 * pool. At most one submit per op is in flight (op->outstanding), and the
 * pool's queue holds one job per session, so a submit never finds it full;
 * the pool's and the loop's queues (a mutex each) order the memory effects
 * of run() before done(). */
#include "server/op.h"

#include <stddef.h>

#include "base/log.h"
#include "server/server_int.h"

#define OP_OF_JOB(j) ((server_op *)((char *)(j)-offsetof(server_op, job)))
#define OP_OF_TASK(t) ((server_op *)((char *)(t)-offsetof(server_op, task)))

static void op_job(mwl_pool_job *job, size_t worker)
{
    server_op *op = OP_OF_JOB(job);
    op->run(op, worker);
    mwl_loop_post(op->srv->loop, &op->task);
}

static void op_task(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    server_op *op = OP_OF_TASK(task);
    op->outstanding = false;
    op->done(op);
}

void server_op_init(server_op *op, mwl_server *srv, void (*run)(server_op *, size_t),
                    void (*done)(server_op *), void *user)
{
    op->run = run;
    op->done = done;
    op->user = user;
    op->srv = srv;
    op->outstanding = false;
    op->background = false;
    op->job.fn = op_job;
    op->job.next = NULL;
    op->task.fn = op_task;
    op->task.next = NULL;
}

void server_op_submit(server_op *op)
{
    op->outstanding = true;
    op->job.background = op->background;
    int rc = op->srv->pool ? mwl_pool_submit(op->srv->pool, &op->job) : MWL_E_CLOSED;
    if (rc == MWL_OK)
        return;
    /* The pool is gone only while the server is being freed, when running
     * the work inline is the last resort (its done() is posted as usual). */
    mwl_log(rc == MWL_E_CLOSED ? MWL_LOG_DEBUG : MWL_LOG_ERROR, "worker operation run inline: %s",
            mwl_status_str(rc));
    op_job(&op->job, 0);
}
