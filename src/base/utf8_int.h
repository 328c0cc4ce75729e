/* Declarations private to base/utf8.c and its generated tables. */
#ifndef MWL_BASE_UTF8_INT_H
#define MWL_BASE_UTF8_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mwl_utf8_range {
    uint32_t lo, hi; /* inclusive */
} mwl_utf8_range;

/* utf8_width_gen.c (scripts/gen_width.py): sorted, disjoint. */
extern const mwl_utf8_range mwl_utf8_zero_width[];
extern const size_t mwl_utf8_zero_width_count;
extern const mwl_utf8_range mwl_utf8_wide[];
extern const size_t mwl_utf8_wide_count;

#endif
