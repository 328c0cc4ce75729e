/* Private to the HL7 mapping (map.c, map_table.c and their test): the
 * mapping table that says which HL7 field feeds which worklist attribute.
 * docs/hl7.md lists the same rows; hl7_map_test checks that it does. */
#ifndef MWL_HL7_MAP_INT_H
#define MWL_HL7_MAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the attribute goes. */
typedef enum mwl_hl7_level {
    MWL_HL7_LEVEL_PATIENT = 0, /* top level: patient and visit */
    MWL_HL7_LEVEL_REQUEST,     /* top level: imaging service request, requested procedure */
    MWL_HL7_LEVEL_SPS          /* the item of Scheduled Procedure Step Sequence (0040,0100) */
} mwl_hl7_level;

/* How the HL7 value becomes DICOM (spec/hl7.md §6.4; docs/hl7.md). */
typedef enum mwl_hl7_conv {
    MWL_HL7_CONV_SPECIAL = 0, /* done by code in map.c (identity, station, status); row for the docs */
    MWL_HL7_CONV_ST,          /* one component (1 when comp is 0) as text */
    MWL_HL7_CONV_XPN,         /* person name, repetitions feed the I/P groups by XPN-8 */
    MWL_HL7_CONV_XCN,         /* ID^family^given^...: repetitions -> multi-valued PN */
    MWL_HL7_CONV_CNN,         /* ID&family&given... in component 1 (OBR-34) -> multi-valued PN */
    MWL_HL7_CONV_DA,          /* TS -> DA (first 8 digits) */
    MWL_HL7_CONV_TS,          /* TS -> DA in tag, TM in tag2 */
    MWL_HL7_CONV_CE_TEXT,     /* CE text (.2, else .1) */
    MWL_HL7_CONV_CE_SEQ,      /* CE triplet at comp, comp+1, comp+2 -> one code item per repetition */
    MWL_HL7_CONV_EI,          /* EI .1 -> tag, .2/.3/.4 -> issuer item in sequence tag2 */
    MWL_HL7_CONV_CX,          /* CX .1 -> tag, .4.1/.4.2/.4.3 -> issuer item in sequence tag2 */
    MWL_HL7_CONV_JOIN,        /* components of repetition 1 joined by '^' (XAD, PL) */
    MWL_HL7_CONV_PRIORITY,    /* S, A, P, C, R, T -> STAT, HIGH, ROUTINE, MEDIUM */
    MWL_HL7_CONV_SEX,         /* M, F, O; anything else -> empty */
    MWL_HL7_CONV_MODALITY,    /* DICOM defined terms, unambiguous HL7 table 0074 codes translated */
    MWL_HL7_CONV_PREGNANCY,   /* PV1-15 B6 -> 3 (definitely pregnant) */
    MWL_HL7_CONV_NTE,         /* NTE-3 of the NTE segments right after the OBR, joined by CR LF */
    MWL_HL7_CONV_AL1          /* CE text of field of every AL1 segment -> multi-valued */
} mwl_hl7_conv;

/* A field (and component, 0 = as the converter reads it) of a segment. */
typedef struct mwl_hl7_src {
    char seg[4];
    uint8_t field, comp;
} mwl_hl7_src;

#define MWL_HL7_ALTS 3 /* sources tried in order; the first one sent wins */

typedef struct mwl_hl7_map_row {
    const char *keyword; /* of tag, as in PS3.6 */
    uint32_t tag;
    uint32_t tag2; /* the second target (TM of a TS, issuer sequence of an EI/CX), 0 = none */
    uint8_t level; /* mwl_hl7_level */
    uint8_t conv;  /* mwl_hl7_conv */
    /* ORM^O01 / OMG^O19 / ADT (2.3.1 style) and OMI^O23 (2.5.1, IPC) */
    mwl_hl7_src orm[MWL_HL7_ALTS], omi[MWL_HL7_ALTS];
} mwl_hl7_map_row;

extern const mwl_hl7_map_row mwl_hl7_map_rows[];
extern const size_t mwl_hl7_map_row_count;

/* The row whose tag or tag2 is `tag`, or NULL. */
const mwl_hl7_map_row *mwl_hl7_map_row_find(uint32_t tag);
/* An hl7-default may name `tag`: a text attribute of the table (the
 * identity done in code excepted, but the station, which rules and
 * defaults exist for). map_config.c. */
bool mwl_hl7_default_allowed(uint32_t tag);
/* "TQ1-7, ORC-7.4, OBR-27.4" ("" when no source) into out. */
void mwl_hl7_src_format(const mwl_hl7_src *alts, char *out, size_t cap);

#endif
