/* Test vectors kept as hex text (tests/vectors/<folder>/<name>): byte pairs,
 * blanks anywhere, '#' to end of line is a comment. A vector that is
 * missing, empty or not hex stops the test binary (exit 1): a test must
 * never pass by testing nothing. CTest sets MWL_SOURCE_DIR. */
#ifndef MWL_TEST_VECTORS_H
#define MWL_TEST_VECTORS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct test_vector {
    uint8_t *data; /* malloc'ed; free() it */
    size_t len;
} test_vector;

static inline int test_vector_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline test_vector test_vector_load(const char *folder, const char *name)
{
    test_vector v = {NULL, 0};
    const char *root = getenv("MWL_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/vectors/%s/%s", root ? root : ".", folder, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (is MWL_SOURCE_DIR set?)\n", path);
        exit(1);
    }
    size_t cap = 1024;
    v.data = malloc(cap);
    int c, hi = -1;
    bool comment = false, bad = false;
    while (v.data && !bad && (c = fgetc(f)) != EOF) {
        if (c == '\n') {
            comment = false;
            continue;
        }
        if (comment || c == ' ' || c == '\t' || c == '\r')
            continue;
        if (c == '#') {
            comment = true;
            continue;
        }
        int d = test_vector_hex_digit(c);
        if (d < 0) {
            bad = true;
            break;
        }
        if (hi < 0) {
            hi = d;
            continue;
        }
        if (v.len == cap) {
            cap *= 2;
            uint8_t *n = realloc(v.data, cap);
            if (!n) {
                free(v.data);
                v.data = NULL;
                break;
            }
            v.data = n;
        }
        v.data[v.len++] = (uint8_t)(hi << 4 | d);
        hi = -1;
    }
    fclose(f);
    if (!v.data || v.len == 0 || bad || hi >= 0) {
        fprintf(stderr, "%s: %s\n", path,
                !v.data          ? "out of memory"
                : bad || hi >= 0 ? "not hex byte pairs"
                                 : "empty");
        exit(1);
    }
    return v;
}

#endif
