/* DIMSE status codes: class and meaning (PS3.7 Annex C; PS3.4 Table K.4-1
 * for the Modality Worklist C-FIND values; PS3.7 §9.1.5.1.4 for C-ECHO). */
#include <stddef.h>

#include "dimse/dimse.h"

mwl_dimse_class mwl_dimse_status_class(uint16_t status)
{
    /* PS3.7 Annex C, Table C-1 ("Status Classes"). Codes not in the table
     * are classed as failures: an SCU must not take them for success or
     * for "more responses follow". */
    if (status == 0x0000)
        return MWL_DIMSE_CLASS_SUCCESS;
    if (status == 0xFF00 || status == 0xFF01)
        return MWL_DIMSE_CLASS_PENDING;
    if (status == 0xFE00)
        return MWL_DIMSE_CLASS_CANCEL;
    if (status == 0x0001 || status == 0x0107 || status == 0x0116 || (status & 0xF000) == 0xB000)
        return MWL_DIMSE_CLASS_WARNING;
    return MWL_DIMSE_CLASS_FAILURE;
}

const char *mwl_dimse_class_str(mwl_dimse_class cls)
{
    switch (cls) {
    case MWL_DIMSE_CLASS_SUCCESS: return "Success";
    case MWL_DIMSE_CLASS_PENDING: return "Pending";
    case MWL_DIMSE_CLASS_CANCEL: return "Cancel";
    case MWL_DIMSE_CLASS_WARNING: return "Warning";
    case MWL_DIMSE_CLASS_FAILURE: return "Failure";
    }
    return "Failure";
}

/* Matched in order: the first row with (status & mask) == code wins, so
 * exact codes come before the ranges that contain them. */
static const struct {
    uint16_t code;
    uint16_t mask;
    const char *meaning;
} status_table[] = {
    /* General statuses, PS3.7 Annex C (section in brackets). */
    {0x0000, 0xFFFF, "Success"},                                                  /* C.1.1 */
    {0x0001, 0xFFFF, "Warning: Requested optional attributes are not supported"}, /* C.4 */
    {0x0105, 0xFFFF, "No such attribute"},                                        /* C.5.17 */
    {0x0106, 0xFFFF, "Invalid attribute value"},                                  /* C.5.11 */
    {0x0107, 0xFFFF, "Warning: Attribute list error"},                            /* C.4.2 */
    {0x0110, 0xFFFF, "Processing failure"},                                       /* C.5.21 */
    {0x0111, 0xFFFF, "Duplicate SOP instance"},                                   /* C.5.8 */
    {0x0112, 0xFFFF, "No such SOP instance"},                                     /* C.5.19 */
    {0x0113, 0xFFFF, "No such event type"},                                       /* C.5.18 */
    {0x0114, 0xFFFF, "No such argument"},                                         /* C.5.16 */
    {0x0115, 0xFFFF, "Invalid argument value"},                                   /* C.5.10 */
    {0x0116, 0xFFFF, "Warning: Attribute value out of range"},                    /* C.4.3 */
    {0x0117, 0xFFFF, "Invalid SOP instance"},                                     /* C.5.12 */
    {0x0118, 0xFFFF, "No such SOP class"},                                        /* C.5.20 */
    {0x0119, 0xFFFF, "Class-instance conflict"},                                  /* C.5.7 */
    {0x0120, 0xFFFF, "Missing attribute"},                                        /* C.5.13 */
    {0x0121, 0xFFFF, "Missing attribute value"},                                  /* C.5.14 */
    {0x0122, 0xFFFF, "Refused: SOP class not supported"},                         /* C.5.6 */
    {0x0123, 0xFFFF, "No such action type"},                                      /* C.5.24 */
    {0x0124, 0xFFFF, "Refused: Not authorized"},                                  /* C.5.25 */
    {0x0210, 0xFFFF, "Duplicate invocation (Message ID already in use)"},         /* C.5.9 */
    {0x0211, 0xFFFF, "Unrecognized operation"},                                   /* C.5.23 */
    {0x0212, 0xFFFF, "Mistyped argument"},                                        /* C.5.15 */
    {0x0213, 0xFFFF, "Resource limitation"},                                      /* C.5.22 */
    /* Modality Worklist C-FIND, PS3.4 Table K.4-1 (and PS3.7 §9.1.2.1.6). */
    {0xFE00, 0xFFFF, "Matching terminated due to Cancel request"},
    {0xFF00, 0xFFFF, "Matches are continuing: current match supplied, optional keys supported"},
    {0xFF01, 0xFFFF, "Matches are continuing: one or more optional keys were not supported"},
    {0xA700, 0xFFFF, "Refused: Out of resources"},
    {0xA900, 0xFFFF, "Error: Identifier does not match SOP class"},
    {0xC000, 0xF000, "Failed: Unable to process"},
    /* Service-class-specific ranges other services assign (PS3.4 C.4, B.2):
     * the generic meaning of PS3.7 Annex C.4.1, C.5.1-C.5.5. */
    {0xA700, 0xFF00, "Refused: Out of resources"},                /* C.5.5 */
    {0xA900, 0xFF00, "Error: Data set does not match SOP class"}, /* C.5.2 */
    {0xB000, 0xFFFF, "Warning: Sub-operations complete with failures, or elements coerced"},
    {0xB000, 0xF000, "Warning (service-class specific)"}, /* C.4.1 */
    {0xA000, 0xF000, "Failure (service-class specific)"}, /* C.5.3 */
    {0x0100, 0xFF00, "Failure (general status not defined by PS3.7 Annex C)"},
    {0x0200, 0xFF00, "Failure (general status not defined by PS3.7 Annex C)"},
};

const char *mwl_dimse_status_str(uint16_t status)
{
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if ((status & status_table[i].mask) == status_table[i].code)
            return status_table[i].meaning;
    return "Unknown status (not defined by PS3.7 Annex C)";
}
