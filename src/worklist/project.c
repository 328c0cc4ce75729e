/* Building a C-FIND response identifier from a matching worklist item
 * (PS3.4 K.4.1.1.3.2, K.2.2.1.2, C.2.2.2.6): exactly the requested keys,
 * nested keys inside sequences, the Specific Character Set of the values,
 * and nothing else but the K.6-1a attributes the table marks "always". */
#include <string.h>

#include "worklist/worklist_int.h"

typedef struct project_ctx {
    mwl_matcher *m;
    mwl_diag *diag;
} project_ctx;

/* Copies a stored non-sequence element, read with the model's VR when it
 * was stored as UN. */
static int copy_value(mwl_ds *out, const mwl_elem *e, const mwl_wlkey *key)
{
    mwl_vr vr = e->vr;
    if (vr == MWL_VR_UN && key)
        vr = (mwl_vr)key->vr;
    return mwl_ds_set(out, e->tag, vr, e->value, e->length);
}

/* The values keep the item's encoding, so each level carries the item's
 * (0008,0005) if it has its own (PS3.5 6.1.2.3: items may override). */
static int copy_charset(const mwl_ds *stored, mwl_ds *out)
{
    const mwl_elem *e = mwl_ds_find(stored, MWL_TAG_SpecificCharacterSet);
    if (!e || e->vr == MWL_VR_SQ || e->length == 0)
        return MWL_OK;
    return mwl_ds_copy_elem(out, e);
}

static bool has_value(const mwl_elem *e)
{
    return e && (e->vr == MWL_VR_SQ ? e->item_count > 0 : e->length > 0);
}

/* K.4.1.1.3.2: (0008,0201) and (0040,A390) go with the response whenever
 * the item has them, requested or not. */
static int add_always(const mwl_wlkey *parent, const mwl_ds *stored, mwl_ds *out)
{
    for (size_t i = 0, n = mwl_wlkey_child_count(parent); i < n; i++) {
        const mwl_wlkey *c = mwl_wlkey_child(parent, i);
        if (!(c->flags & MWL_WLKEY_ALWAYS) || mwl_ds_find(out, c->tag))
            continue;
        const mwl_elem *e = mwl_ds_find(stored, c->tag);
        if (!has_value(e) || (e->vr == MWL_VR_SQ) != (c->vr == MWL_VR_SQ))
            continue;
        int rc = e->vr == MWL_VR_SQ ? mwl_ds_copy_elem(out, e) : copy_value(out, e, c);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

static bool returned_when_empty(const mwl_wlkey *c)
{
    return (c->return_type == MWL_RETURN_1 || c->return_type == MWL_RETURN_2) &&
           !(c->flags & MWL_WLKEY_NOEMPTY);
}

static bool never_returned(const mwl_wlkey *c)
{
    return c->return_type == MWL_RETURN_NEVER || (c->flags & (MWL_WLKEY_CHARSET | MWL_WLKEY_IGNORE));
}

/* A sequence requested as a zero-length sequence or with one empty item
 * (K.2.2.1.2 note 4): every key the table lists for it, types 1 and 2
 * present even when unknown, 1C, 2C and 3 only when the item has them. */
static int project_all(const mwl_wlkey *seq, const mwl_ds *stored, mwl_ds *out)
{
    int rc = copy_charset(stored, out);
    for (size_t i = 0, n = mwl_wlkey_child_count(seq); rc == MWL_OK && i < n; i++) {
        const mwl_wlkey *c = mwl_wlkey_child(seq, i);
        if (never_returned(c))
            continue;
        const mwl_elem *e = mwl_ds_find(stored, c->tag);
        if (c->vr == MWL_VR_SQ) {
            if (e && e->vr == MWL_VR_SQ && e->item_count) {
                rc = mwl_ds_set_seq(out, c->tag, NULL);
                for (size_t k = 0; rc == MWL_OK && k < e->item_count; k++) {
                    mwl_ds *item;
                    rc = mwl_ds_add_item(out, c->tag, &item);
                    if (rc == MWL_OK)
                        rc = project_all(c, e->items[k], item);
                }
            } else if (returned_when_empty(c)) {
                rc = mwl_ds_set_seq(out, c->tag, NULL);
            }
        } else if (e && e->vr != MWL_VR_SQ && e->length) {
            rc = copy_value(out, e, c);
        } else if (returned_when_empty(c)) {
            rc = mwl_ds_set(out, c->tag, (mwl_vr)c->vr, NULL, 0);
        }
    }
    return rc;
}

static int project_level(project_ctx *p, const mwl_qkey *keys, size_t count, const mwl_wlkey *parent,
                         const mwl_ds *stored, const mwl_charset *cs, bool top, size_t expand_index,
                         mwl_ds *out);

static int project_sequence(project_ctx *p, const mwl_qkey *k, const mwl_elem *e, const mwl_charset *cs,
                            bool top, size_t expand_index, mwl_ds *out)
{
    int rc = mwl_ds_set_seq(out, k->tag, NULL);
    if (rc != MWL_OK || !e || e->vr != MWL_VR_SQ)
        return rc; /* unknown: present and empty (types 1 and 2 alike) */
    bool expanded = mwl_wl_is_expanded(k->key, top, expand_index);
    for (size_t i = 0; i < e->item_count; i++) {
        /* K.6.1.2.1: the expanded SPS Sequence holds this response's item. */
        if (expanded && i != expand_index)
            continue;
        const mwl_ds *item = e->items[i];
        mwl_charset item_cs;
        rc = mwl_wl_charset(item, cs, &item_cs, p->diag);
        if (rc != MWL_OK)
            return rc;
        if (k->kind == MWL_Q_SEQUENCE && !expanded) {
            /* C.2.2.2.6: only the items that matched are returned. */
            bool hit;
            rc = mwl_wl_match_level(p->m, k->children, k->child_count, item, &item_cs, false, SIZE_MAX, &hit,
                                    p->diag);
            if (rc != MWL_OK)
                return rc;
            if (!hit)
                continue;
        }
        mwl_ds *oi;
        rc = mwl_ds_add_item(out, k->tag, &oi);
        if (rc != MWL_OK)
            return rc;
        if (k->all_children)
            rc = project_all(k->key, item, oi);
        else
            rc = project_level(p, k->children, k->child_count, k->key, item, &item_cs, false, SIZE_MAX, oi);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* The stored elements for a level's keys, found in one forward walk: the
 * keys come in ascending tag order (they are the identifier's elements),
 * and so do the item's, so this is a merge rather than a binary search per
 * key (whose branches a CPU cannot predict). A key out of order starts
 * the walk again, so the result never depends on the order. */
typedef struct item_walk {
    const mwl_elem *elems;
    size_t count, pos;
    uint32_t last;
} item_walk;

static void walk_init(item_walk *w, const mwl_ds *ds)
{
    w->count = mwl_ds_count(ds);
    w->elems = w->count ? mwl_ds_at(ds, 0) : NULL;
    w->pos = 0;
    w->last = 0;
}

static const mwl_elem *walk_find(item_walk *w, uint32_t tag)
{
    if (tag < w->last)
        w->pos = 0;
    w->last = tag;
    while (w->pos < w->count && w->elems[w->pos].tag < tag)
        w->pos++;
    return w->pos < w->count && w->elems[w->pos].tag == tag ? &w->elems[w->pos] : NULL;
}

static int project_level(project_ctx *p, const mwl_qkey *keys, size_t count, const mwl_wlkey *parent,
                         const mwl_ds *stored, const mwl_charset *cs, bool top, size_t expand_index,
                         mwl_ds *out)
{
    int rc = copy_charset(stored, out);
    item_walk walk;
    walk_init(&walk, stored);
    for (size_t i = 0; rc == MWL_OK && i < count; i++) {
        const mwl_qkey *k = &keys[i];
        if (!k->returned || (k->key && never_returned(k->key)))
            continue;
        const mwl_elem *e = walk_find(&walk, k->tag);
        if (!k->key) {
            /* Not in the model: returned as the item has it, else left out
             * (type 3 behaviour; the response carries FF01 anyway). */
            if (e)
                rc = e->vr == MWL_VR_SQ ? mwl_ds_copy_elem(out, e) : copy_value(out, e, NULL);
            continue;
        }
        if (k->vr == MWL_VR_SQ) {
            rc = project_sequence(p, k, e, cs, top, expand_index, out);
        } else if (e && e->vr != MWL_VR_SQ && e->length) {
            rc = copy_value(out, e, k->key);
        } else if (!(k->key->flags & MWL_WLKEY_NOEMPTY)) {
            /* Every requested key is in the response, zero length when the
             * item does not know it (type 2; type 1 keys the item lacks
             * cannot be made up either). */
            rc = mwl_ds_set(out, k->tag, (mwl_vr)k->vr, NULL, 0);
        }
    }
    if (rc == MWL_OK)
        rc = add_always(parent, stored, out);
    return rc;
}

int mwl_project(mwl_matcher *m, const mwl_query *q, const mwl_ds *item, size_t expand_index, mwl_arena *arena,
                mwl_ds **out, mwl_diag *diag)
{
    mwl_ds *resp;
    int rc = mwl_ds_new(arena, NULL, &resp);
    if (rc != MWL_OK)
        return rc;
    mwl_charset base, cs;
    mwl_charset_init_default(&base);
    rc = mwl_wl_charset(item, &base, &cs, diag);
    if (rc != MWL_OK)
        return rc;
    project_ctx p = {m, diag};
    rc = project_level(&p, q->keys, q->count, NULL, item, &cs, true, expand_index, resp);
    if (rc != MWL_OK)
        return rc;
    *out = resp;
    return MWL_OK;
}
