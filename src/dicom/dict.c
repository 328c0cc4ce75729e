#include "dicom/dict.h"

#include <string.h>

#include "dicom/dict_int.h"

const mwl_dict_entry *mwl_dict_find(uint32_t tag)
{
    size_t lo = 0, hi = mwl_dict_exact_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = mwl_dict_entries[mid].tag;
        if (t == tag)
            return &mwl_dict_entries[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Repeating groups: few entries, most specific mask first. Private
     * groups never match them (all repeating groups are even). */
    if (mwl_tag_is_private(tag))
        return NULL;
    for (size_t i = mwl_dict_exact_count; i < mwl_dict_entry_count; i++) {
        const mwl_dict_entry *e = &mwl_dict_entries[i];
        if ((tag & e->mask) == e->tag)
            return e;
    }
    return NULL;
}

const mwl_dict_entry *mwl_dict_find_keyword(const char *keyword)
{
    size_t lo = 0, hi = mwl_dict_keyword_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mwl_dict_entry *e = &mwl_dict_entries[mwl_dict_keyword_index[mid]];
        int c = strcmp(e->keyword, keyword);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

mwl_vr mwl_dict_vr(uint32_t tag)
{
    if (MWL_TAG_ELEMENT(tag) == 0 && MWL_TAG_GROUP(tag) != 0xFFFE)
        return MWL_VR_UL; /* group length, PS3.5 §7.2 */
    if (mwl_tag_is_private(tag))
        return mwl_tag_is_private_creator(tag) ? MWL_VR_LO : MWL_VR_UN;
    const mwl_dict_entry *e = mwl_dict_find(tag);
    return e ? (mwl_vr)e->vr : MWL_VR_UN;
}

const char *mwl_dict_keyword(uint32_t tag)
{
    const mwl_dict_entry *e = mwl_dict_find(tag);
    if (e && e->keyword[0])
        return e->keyword;
    if (mwl_tag_is_private_creator(tag))
        return "PrivateCreator";
    if (MWL_TAG_ELEMENT(tag) == 0)
        return "GenericGroupLength";
    return "";
}

const mwl_uid_entry *mwl_uid_find(const char *uid)
{
    size_t lo = 0, hi = mwl_uid_entry_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(mwl_uid_entries[mid].uid, uid);
        if (c == 0)
            return &mwl_uid_entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
