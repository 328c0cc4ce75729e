/* The PS3.6 data dictionary and UID registry, generated from
 * data/dict/elements.tsv and uids.tsv by scripts/gen_tables.py. */
#ifndef MWL_DICOM_DICT_H
#define MWL_DICOM_DICT_H

#include "base/api.h"

#include <stddef.h>
#include <stdint.h>

#include "dicom/tag.h"
#include "dicom/vr.h"

typedef struct mwl_dict_entry {
    uint32_t tag;  /* with repeating-group digits as 0 */
    uint32_t mask; /* bits of a tag that must equal `tag` (0xFFFFFFFF exact) */
    uint8_t vr;    /* mwl_vr; "US or SS" style entries hold the first choice, "OB or OW" -> OW */
    uint8_t retired;
    const char *vm;      /* "1", "1-n", ... */
    const char *keyword; /* "PatientName"; "" for a few retired entries */
    const char *name;    /* "Patient's Name" */
} mwl_dict_entry;

/* The entry for `tag` (exact match first, then repeating groups 50xx, 60xx,
 * 7Fxx, ...), or NULL for private and unknown tags. */
MWL_API const mwl_dict_entry *mwl_dict_find(uint32_t tag);
/* Case-sensitive keyword lookup ("PatientName"), or NULL. */
MWL_API const mwl_dict_entry *mwl_dict_find_keyword(const char *keyword);
/* The VR to use for `tag` in Implicit VR: the dictionary's; UL for group
 * lengths (gggg,0000); LO for private creators (odd gggg, 0010-00FF); UN for
 * other private and unknown tags. */
MWL_API mwl_vr mwl_dict_vr(uint32_t tag);
/* Keyword for display: the dictionary keyword, "PrivateCreator",
 * "GenericGroupLength", or "" when unknown. Never NULL. */
MWL_API const char *mwl_dict_keyword(uint32_t tag);

typedef struct mwl_uid_entry {
    const char *uid;
    const char *name;    /* "Modality Worklist Information Model - FIND" */
    const char *type;    /* "SOP Class", "Transfer Syntax", ... */
    const char *keyword; /* may be "" */
    uint8_t retired;
} mwl_uid_entry;

/* Exact UID lookup (no trailing NUL/space), or NULL. */
MWL_API const mwl_uid_entry *mwl_uid_find(const char *uid);

/* Writes a new unique UID, "2.25." + a random UUID in decimal (PS3.5 B.2),
 * at most 44 characters; cap >= MWL_UID_MAX + 1 always fits. */
MWL_API void mwl_uid_generate(char *out, size_t cap);
/* Writes the 128-bit big-endian number `num` in decimal at out[pos..], the
 * most significant digits first, as many as fit before out[cap - 1], and
 * NUL-terminates; returns the new end. The UID component that
 * mwl_uid_generate makes of a UUID and the HL7 feed of a digest. */
MWL_API size_t mwl_uid_put_decimal(char *out, size_t cap, size_t pos, const uint8_t num[16]);
#ifndef MWL_UID_MAX
#define MWL_UID_MAX 64 /* bytes, PS3.5 §9.1 */
#endif

#endif
