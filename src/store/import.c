/* Batched intake of worklist items (store.h, "importing"): each item
 * checked and stored all or nothing, batches committed by size and age, and
 * the caller told exactly which items each commit made durable -- the
 * logic mwl import, and later HL7 and REST intake, share. */
#include <string.h>
#include <time.h>

#include "store/store_int.h"

struct mwl_importer {
    mwl_store *store;
    mwl_import_options opt;
    const mwl_mem *mem;
    bool failed; /* a store error: the importer stopped */
    uint64_t batch_started_ms;
    /* the open batch: sources of its items (arena), counts */
    mwl_arena arena;
    const char **sources;
    size_t count, cap;
    mwl_store_put_stats batch_stats;
    mwl_import_stats committed;
};

static uint64_t monotonic_ms(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now(const mwl_importer *imp)
{
    return imp->opt.now_ms ? imp->opt.now_ms(imp->opt.user) : monotonic_ms(NULL);
}

int mwl_importer_new(mwl_store *store, const mwl_import_options *opt, mwl_importer **out)
{
    *out = NULL;
    if (mwl_store_in_batch(store))
        return MWL_E_INVALID;
    const mwl_mem *mem = mwl_store_mem(store);
    mwl_importer *imp = mwl_mem_calloc(mem, 1, sizeof *imp);
    if (!imp)
        return MWL_E_NOMEM;
    imp->store = store;
    imp->mem = mem;
    if (opt)
        imp->opt = *opt;
    if (!imp->opt.batch_size)
        imp->opt.batch_size = 5000;
    if (!imp->opt.batch_ms)
        imp->opt.batch_ms = 1000;
    mwl_arena_init(&imp->arena, mem);
    *out = imp;
    return MWL_OK;
}

/* Forgets the open batch (after a commit or a rollback). */
static void reset_batch(mwl_importer *imp)
{
    mwl_arena_clear(&imp->arena);
    imp->sources = NULL;
    imp->count = imp->cap = 0;
    imp->batch_stats.inserted = imp->batch_stats.updated = 0;
}

static int fail(mwl_importer *imp, int rc)
{
    mwl_store_rollback(imp->store);
    reset_batch(imp);
    imp->failed = true;
    return rc;
}

int mwl_importer_flush(mwl_importer *imp, mwl_diag *diag)
{
    if (imp->failed) {
        mwl_diag_set(diag, 0, 0, "the import stopped on an earlier store error");
        return MWL_E_STORE;
    }
    if (!mwl_store_in_batch(imp->store))
        return MWL_OK;
    int rc = mwl_store_commit(imp->store, diag);
    if (rc != MWL_OK)
        return fail(imp, rc);
    imp->committed.items += imp->count;
    imp->committed.inserted += imp->batch_stats.inserted;
    imp->committed.updated += imp->batch_stats.updated;
    if (imp->opt.on_commit && imp->count)
        imp->opt.on_commit(imp->opt.user, imp->sources, imp->count);
    reset_batch(imp);
    return MWL_OK;
}

/* Remembers an item of the open batch for on_commit. */
static int remember(mwl_importer *imp, const char *source)
{
    if (imp->count == imp->cap) {
        size_t cap = imp->cap ? 2 * imp->cap : 64;
        const char **grown =
            mwl_arena_realloc(&imp->arena, imp->sources, imp->cap * sizeof *grown, cap * sizeof *grown);
        if (!grown)
            return MWL_E_NOMEM;
        imp->sources = grown;
        imp->cap = cap;
    }
    const char *copy = mwl_arena_strndup(&imp->arena, source ? source : "", source ? strlen(source) : 0);
    if (!copy)
        return MWL_E_NOMEM;
    imp->sources[imp->count++] = copy;
    return MWL_OK;
}

int mwl_importer_add(mwl_importer *imp, const mwl_ds *item, const char *source, const char *worklist_aet,
                     mwl_item_problem *problem, mwl_diag *diag)
{
    mwl_item_problem local;
    if (!problem)
        problem = &local;
    memset(problem, 0, sizeof *problem);
    problem->sps_index = SIZE_MAX;
    if (imp->failed) {
        mwl_diag_set(diag, 0, 0, "the import stopped on an earlier store error");
        return MWL_E_STORE;
    }
    int rc = mwl_worklist_check_item(item, imp->opt.check, problem);
    if (rc == MWL_E_INVALID) {
        mwl_diag_set(diag, 0, problem->tag, "%s", problem->msg);
        return rc;
    }
    if (rc != MWL_OK)
        return fail(imp, rc);
    if (!mwl_store_in_batch(imp->store)) {
        rc = mwl_store_begin(imp->store, diag);
        if (rc != MWL_OK)
            return fail(imp, rc);
        imp->batch_started_ms = now(imp);
    }
    mwl_store_put_stats st = {0, 0};
    rc = mwl_store_put_item(imp->store, item, source, worklist_aet, &st, diag);
    if (rc == MWL_OK)
        rc = remember(imp, source);
    if (rc == MWL_E_STORE || mwl_is_fatal(rc))
        return fail(imp, rc); /* the database may be unusable: stop */
    if (rc != MWL_OK) {
        /* The put undid itself (a savepoint); the batch goes on. An empty
         * batch is closed so that it does not hold the write lock. */
        if (imp->count == 0) {
            mwl_store_rollback(imp->store);
            reset_batch(imp);
        }
        return rc;
    }
    imp->batch_stats.inserted += st.inserted;
    imp->batch_stats.updated += st.updated;
    /* Commit by count, and at least every batch_ms so a long import keeps
     * making durable progress. */
    if (imp->count >= imp->opt.batch_size || now(imp) - imp->batch_started_ms >= imp->opt.batch_ms)
        return mwl_importer_flush(imp, diag);
    return MWL_OK;
}

void mwl_importer_stats(const mwl_importer *imp, mwl_import_stats *out)
{
    *out = imp->committed;
}

void mwl_importer_free(mwl_importer *imp)
{
    if (!imp)
        return;
    if (!imp->failed && mwl_store_in_batch(imp->store))
        mwl_store_rollback(imp->store);
    mwl_arena_clear(&imp->arena);
    mwl_mem_free(imp->mem, imp);
}
