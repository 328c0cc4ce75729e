/* One C-FIND response per Scheduled Procedure Step (PS3.4 K.6.1.2.1: "a
 * given SPS appears in only one response"; the SPS Sequence of a response
 * holds exactly one item). Which sequence is expanded comes from the keys
 * table (flag "expand"). Matching and projection take the expansion index
 * and look only at that item, so no copy is made per response;
 * mwl_expand_item builds the expanded data set for callers that want one. */
#include "worklist/worklist_int.h"

static const mwl_elem *expanded_elem(const mwl_ds *item)
{
    const mwl_wlkey *k = mwl_wlkey_expand_key();
    if (!k)
        return NULL;
    const mwl_elem *e = mwl_ds_find(item, k->tag);
    return e && e->vr == MWL_VR_SQ && e->item_count ? e : NULL;
}

size_t mwl_expand_count(const mwl_ds *item)
{
    const mwl_elem *e = expanded_elem(item);
    return e ? e->item_count : 1;
}

int mwl_expand_item(const mwl_ds *item, size_t expand_index, mwl_arena *arena, mwl_ds **out)
{
    if (expand_index >= mwl_expand_count(item))
        return MWL_E_INVALID;
    const mwl_elem *sps = expanded_elem(item);
    mwl_ds *copy;
    int rc = mwl_ds_new(arena, NULL, &copy);
    for (size_t i = 0, n = mwl_ds_count(item); rc == MWL_OK && i < n; i++) {
        const mwl_elem *e = mwl_ds_at(item, i);
        if (e != sps) {
            rc = mwl_ds_copy_elem(copy, e);
            continue;
        }
        mwl_ds *one;
        rc = mwl_ds_add_item(copy, e->tag, &one);
        const mwl_ds *src = e->items[expand_index];
        for (size_t j = 0, m = mwl_ds_count(src); rc == MWL_OK && j < m; j++)
            rc = mwl_ds_copy_elem(one, mwl_ds_at(src, j));
    }
    if (rc == MWL_OK)
        *out = copy;
    return rc;
}
