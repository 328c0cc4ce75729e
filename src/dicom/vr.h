/* Value Representations (PS3.5 §6.2, Table 6.2-1). */
#ifndef MWL_DICOM_VR_H
#define MWL_DICOM_VR_H

#include "base/api.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum mwl_vr {
    MWL_VR_NONE = 0, /* item and delimitation tags (FFFE,xxxx); also "unknown code" */
    MWL_VR_AE,
    MWL_VR_AS,
    MWL_VR_AT,
    MWL_VR_CS,
    MWL_VR_DA,
    MWL_VR_DS,
    MWL_VR_DT,
    MWL_VR_FD,
    MWL_VR_FL,
    MWL_VR_IS,
    MWL_VR_LO,
    MWL_VR_LT,
    MWL_VR_OB,
    MWL_VR_OD,
    MWL_VR_OF,
    MWL_VR_OL,
    MWL_VR_OV,
    MWL_VR_OW,
    MWL_VR_PN,
    MWL_VR_SH,
    MWL_VR_SL,
    MWL_VR_SQ,
    MWL_VR_SS,
    MWL_VR_ST,
    MWL_VR_SV,
    MWL_VR_TM,
    MWL_VR_UC,
    MWL_VR_UI,
    MWL_VR_UL,
    MWL_VR_UN,
    MWL_VR_UR,
    MWL_VR_US,
    MWL_VR_UT,
    MWL_VR_UV,
    MWL_VR_COUNT
} mwl_vr;

typedef enum mwl_vr_kind {
    MWL_VR_KIND_NONE,   /* MWL_VR_NONE */
    MWL_VR_KIND_STRING, /* character string, multi-valued on '\' (AE, CS, LO, PN, ...) */
    MWL_VR_KIND_TEXT,   /* character string, VM 1, '\' is ordinary (LT, ST, UT, UR) */
    MWL_VR_KIND_NUMBER, /* fixed-size binary numbers (US, SS, UL, SL, FL, FD, SV, UV, AT) */
    MWL_VR_KIND_BYTES,  /* OB, OD, OF, OL, OV, OW, UN */
    MWL_VR_KIND_SEQUENCE
} mwl_vr_kind;

typedef struct mwl_vr_info {
    char code[3];      /* "PN"; "" for NONE */
    uint8_t kind;      /* mwl_vr_kind */
    uint8_t long_form; /* explicit VR: 2 reserved bytes + 32-bit length */
    uint8_t pad;       /* padding byte for odd lengths: ' ', '\0' */
    uint8_t word;      /* byte-swap unit for big endian: 1, 2, 4 or 8 */
    uint8_t charset;   /* text affected by Specific Character Set (SH LO UC ST LT UT PN) */
    uint32_t max_len;  /* max value length in bytes or chars (PS3.5 Table 6.2-1); 0 = none */
} mwl_vr_info;

/* Never NULL: out-of-range values return the NONE row. */
MWL_API const mwl_vr_info *mwl_vr_get_info(mwl_vr vr);
/* "PN" -> MWL_VR_PN; any other two bytes -> MWL_VR_NONE. */
MWL_API mwl_vr mwl_vr_from_code(const uint8_t code[2]);
static inline const char *mwl_vr_code(mwl_vr vr)
{
    return mwl_vr_get_info(vr)->code;
}
static inline bool mwl_vr_is_string(mwl_vr vr)
{
    uint8_t k = mwl_vr_get_info(vr)->kind;
    return k == MWL_VR_KIND_STRING || k == MWL_VR_KIND_TEXT;
}

#endif
