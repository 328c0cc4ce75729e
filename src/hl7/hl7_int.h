/* Declarations of src/hl7 not in the public API (hl7.h): the parsed
 * message as message.c builds it and ack.c reads it. */
#ifndef MWL_HL7_HL7_INT_H
#define MWL_HL7_HL7_INT_H

#include "hl7/hl7.h"

/* Where a field lies in its segment's text. */
typedef struct mwl_hl7_span {
    size_t off, len;
} mwl_hl7_span;

struct mwl_hl7_seg {
    const char *text; /* UTF-8, without its terminator; not NUL-terminated */
    size_t len;
    char name[4];
    unsigned seq;               /* 1-based among segments of this name */
    size_t field_count;         /* fields[k] is field k+1 as HL7 counts */
    const mwl_hl7_span *fields; /* for MSH, fields[0] is the separator itself */
};

/* The delimiters, in MSH-1/MSH-2 order. */
enum { MWL_HL7_D_FIELD, MWL_HL7_D_COMP, MWL_HL7_D_REP, MWL_HL7_D_ESC, MWL_HL7_D_SUB, MWL_HL7_D_TRUNC };

struct mwl_hl7_msg {
    mwl_arena *arena; /* where values decoded on demand go */
    mwl_hl7_msh msh;
    char delims[6]; /* [MWL_HL7_D_TRUNC] is '\0' when MSH-2 has 4 characters */
    int charset;    /* index into message.c's table of MSH-18 values */
    mwl_hl7_seg *segs;
    size_t seg_count;
};

/* Table 0357 description of an error code ("Required field missing"). */
const char *mwl_hl7_error_text(int code);

#endif
