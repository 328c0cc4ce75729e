/* Look-ups in the Modality Worklist keys table (PS3.4 Table K.6-1), which
 * scripts/gen_worklist_keys.py generates from data/worklist/keys.tsv into
 * keys_gen.c: breadth first, each parent's children contiguous and sorted
 * by tag. */
#include "worklist/worklist_int.h"

static void child_range(const mwl_wlkey *parent, size_t *first, size_t *count)
{
    if (!parent) {
        *first = 0;
        *count = mwl_wlkey_top_count;
    } else {
        *first = parent->first_child;
        *count = parent->child_count;
    }
}

const mwl_wlkey *mwl_wlkey_find(const mwl_wlkey *parent, uint32_t tag)
{
    size_t lo, count;
    child_range(parent, &lo, &count);
    size_t hi = lo + count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mwl_wlkeys[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first, n;
    child_range(parent, &first, &n);
    return lo < first + n && mwl_wlkeys[lo].tag == tag ? &mwl_wlkeys[lo] : NULL;
}

size_t mwl_wlkey_child_count(const mwl_wlkey *parent)
{
    size_t first, count;
    child_range(parent, &first, &count);
    return count;
}

const mwl_wlkey *mwl_wlkey_child(const mwl_wlkey *parent, size_t i)
{
    size_t first, count;
    child_range(parent, &first, &count);
    return i < count ? &mwl_wlkeys[first + i] : NULL;
}

const mwl_wlkey *mwl_wlkey_parent(const mwl_wlkey *key)
{
    return key->parent >= 0 ? &mwl_wlkeys[key->parent] : NULL;
}

const mwl_wlkey *mwl_wlkey_expand_key(void)
{
    for (size_t i = 0; i < mwl_wlkey_top_count; i++) {
        if (mwl_wlkeys[i].flags & MWL_WLKEY_EXPAND)
            return &mwl_wlkeys[i];
    }
    return NULL;
}
