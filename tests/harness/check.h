/* A tiny test harness (STYLE.md §10): CHECK macros that count failures and
 * keep going, and a main() helper. Each test binary returns non-zero if any
 * check failed. */
#ifndef MWL_TEST_CHECK_H
#define MWL_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        check_count++;                                                                                       \
        if (!(cond)) {                                                                                       \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                         \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                                   \
    do {                                                                                                     \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                      \
        check_count++;                                                                                       \
        if (check_a_ != check_b_) {                                                                          \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, \
                    #b, check_a_, check_b_);                                                                 \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                                   \
    do {                                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                                         \
        check_count++;                                                                                       \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                                     \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_STR failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, \
                    #a, #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                 \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_MEM(a, alen, b, blen)                                                                       \
    do {                                                                                                     \
        size_t check_al_ = (size_t)(alen), check_bl_ = (size_t)(blen);                                       \
        check_count++;                                                                                       \
        if (check_al_ != check_bl_ || (check_al_ && memcmp((a), (b), check_al_) != 0)) {                     \
            check_failures++;                                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_MEM failed: %s (%zu bytes) vs %s (%zu)\n", __FILE__, __LINE__,  \
                    #a, check_al_, #b, check_bl_);                                                           \
        }                                                                                                    \
    } while (0)

/* Runs a test function and names it in the failure output. */
#define RUN_TEST(fn)                                                                                         \
    do {                                                                                                     \
        int check_before_ = check_failures;                                                                  \
        fn();                                                                                                \
        if (check_failures != check_before_)                                                                 \
            fprintf(stderr, "  in %s\n", #fn);                                                               \
    } while (0)

static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
