/* Tags: (group, element) packed as group << 16 | element (PS3.5 §7.1). */
#ifndef MWL_DICOM_TAG_H
#define MWL_DICOM_TAG_H

#include <stdint.h>

#include "dicom/tags_gen.h"
#include "dicom/uids_gen.h"

#define MWL_TAG(group, element) ((uint32_t)(((uint32_t)(group) << 16) | (uint32_t)(element)))
#define MWL_TAG_GROUP(tag) ((uint16_t)((tag) >> 16))
#define MWL_TAG_ELEMENT(tag) ((uint16_t)((tag)&0xFFFFu))

/* PS3.5 §7.5: these three are encoded like implicit VR in every syntax. */
#define MWL_TAG_ITEM 0xFFFEE000u
#define MWL_TAG_ITEM_DELIM 0xFFFEE00Du
#define MWL_TAG_SEQ_DELIM 0xFFFEE0DDu

static inline int mwl_tag_is_private(uint32_t tag)
{
    return (MWL_TAG_GROUP(tag) & 1u) != 0;
}
static inline int mwl_tag_is_private_creator(uint32_t tag)
{
    return mwl_tag_is_private(tag) && MWL_TAG_ELEMENT(tag) >= 0x0010 && MWL_TAG_ELEMENT(tag) <= 0x00FF;
}

#endif
