/* Two connections creating the same new database at once (tests run in
 * parallel, a server and an import started together) both open: the
 * switch to WAL and the migrations are retried within busy_timeout when
 * the other holds the lock, rather than failing with "database is locked"
 * (seen in CI before the retry). */
#include <pthread.h>
#include <unistd.h>

#include "check.h"
#include "store/store_test_util.h"

static char race_path[600];

typedef struct opener {
    int rc;
    char msg[128];
} opener;

static void *open_one(void *arg)
{
    opener *o = arg;
    mwl_store *s = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    o->rc = mwl_store_open(race_path, NULL, &s, &d);
    snprintf(o->msg, sizeof o->msg, "%s", d.msg);
    if (o->rc == MWL_OK) {
        int64_t n = -1;
        if (mwl_store_count(s, &n, &d) != MWL_OK || n != 0)
            o->rc = MWL_E_STORE;
    }
    mwl_store_free(s);
    return NULL;
}

static void test_parallel_create(void)
{
    for (int round = 0; round < 40; round++) {
        char name[32];
        snprintf(name, sizeof name, "race%d.db", round);
        stu_path(race_path, sizeof race_path, name);
        unlink(race_path);
        opener o[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            CHECK(pthread_create(&t[i], NULL, open_one, &o[i]) == 0);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ_INT(o[i].rc, MWL_OK);
            if (o[i].rc != MWL_OK)
                fprintf(stderr, "  round %d opener %d: %s\n", round, i, o[i].msg);
        }
    }
}

int main(void)
{
    stu_setup();
    RUN_TEST(test_parallel_create);
    stu_cleanup();
    return check_report("store_open_race_test");
}
