#include "dicom/vr.h"

/* PS3.5 Table 6.2-1; long_form per PS3.5 §7.1.2. Indexed by mwl_vr. */
static const mwl_vr_info vr_table[MWL_VR_COUNT] = {
    [MWL_VR_NONE] = {"", MWL_VR_KIND_NONE, 0, 0, 1, 0, 0},
    [MWL_VR_AE] = {"AE", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 16},
    [MWL_VR_AS] = {"AS", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 4},
    [MWL_VR_AT] = {"AT", MWL_VR_KIND_NUMBER, 0, 0, 2, 0, 4},
    [MWL_VR_CS] = {"CS", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 16},
    [MWL_VR_DA] = {"DA", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 8},
    [MWL_VR_DS] = {"DS", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 16},
    [MWL_VR_DT] = {"DT", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 26},
    [MWL_VR_FD] = {"FD", MWL_VR_KIND_NUMBER, 0, 0, 8, 0, 8},
    [MWL_VR_FL] = {"FL", MWL_VR_KIND_NUMBER, 0, 0, 4, 0, 4},
    [MWL_VR_IS] = {"IS", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 12},
    [MWL_VR_LO] = {"LO", MWL_VR_KIND_STRING, 0, ' ', 1, 1, 64},
    [MWL_VR_LT] = {"LT", MWL_VR_KIND_TEXT, 0, ' ', 1, 1, 10240},
    [MWL_VR_OB] = {"OB", MWL_VR_KIND_BYTES, 1, 0, 1, 0, 0},
    [MWL_VR_OD] = {"OD", MWL_VR_KIND_BYTES, 1, 0, 8, 0, 0},
    [MWL_VR_OF] = {"OF", MWL_VR_KIND_BYTES, 1, 0, 4, 0, 0},
    [MWL_VR_OL] = {"OL", MWL_VR_KIND_BYTES, 1, 0, 4, 0, 0},
    [MWL_VR_OV] = {"OV", MWL_VR_KIND_BYTES, 1, 0, 8, 0, 0},
    [MWL_VR_OW] = {"OW", MWL_VR_KIND_BYTES, 1, 0, 2, 0, 0},
    [MWL_VR_PN] = {"PN", MWL_VR_KIND_STRING, 0, ' ', 1, 1, 64},
    [MWL_VR_SH] = {"SH", MWL_VR_KIND_STRING, 0, ' ', 1, 1, 16},
    [MWL_VR_SL] = {"SL", MWL_VR_KIND_NUMBER, 0, 0, 4, 0, 4},
    [MWL_VR_SQ] = {"SQ", MWL_VR_KIND_SEQUENCE, 1, 0, 1, 0, 0},
    [MWL_VR_SS] = {"SS", MWL_VR_KIND_NUMBER, 0, 0, 2, 0, 2},
    [MWL_VR_ST] = {"ST", MWL_VR_KIND_TEXT, 0, ' ', 1, 1, 1024},
    [MWL_VR_SV] = {"SV", MWL_VR_KIND_NUMBER, 1, 0, 8, 0, 8},
    [MWL_VR_TM] = {"TM", MWL_VR_KIND_STRING, 0, ' ', 1, 0, 14},
    [MWL_VR_UC] = {"UC", MWL_VR_KIND_STRING, 1, ' ', 1, 1, 0},
    [MWL_VR_UI] = {"UI", MWL_VR_KIND_STRING, 0, '\0', 1, 0, 64},
    [MWL_VR_UL] = {"UL", MWL_VR_KIND_NUMBER, 0, 0, 4, 0, 4},
    [MWL_VR_UN] = {"UN", MWL_VR_KIND_BYTES, 1, 0, 1, 0, 0},
    [MWL_VR_UR] = {"UR", MWL_VR_KIND_TEXT, 1, ' ', 1, 0, 0},
    [MWL_VR_US] = {"US", MWL_VR_KIND_NUMBER, 0, 0, 2, 0, 2},
    [MWL_VR_UT] = {"UT", MWL_VR_KIND_TEXT, 1, ' ', 1, 1, 0},
    [MWL_VR_UV] = {"UV", MWL_VR_KIND_NUMBER, 1, 0, 8, 0, 8},
};

const mwl_vr_info *mwl_vr_get_info(mwl_vr vr)
{
    if ((unsigned)vr >= MWL_VR_COUNT)
        return &vr_table[MWL_VR_NONE];
    return &vr_table[vr];
}

mwl_vr mwl_vr_from_code(const uint8_t code[2])
{
    if (code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z')
        return MWL_VR_NONE;
    for (int v = 1; v < MWL_VR_COUNT; v++) {
        if (vr_table[v].code[0] == code[0] && vr_table[v].code[1] == code[1])
            return (mwl_vr)v;
    }
    return MWL_VR_NONE;
}
