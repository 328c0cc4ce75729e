/* Declarations not in the public API: the generated tables. */
#ifndef MWL_DICOM_DICT_INT_H
#define MWL_DICOM_DICT_INT_H

#include "dicom/dict.h"

extern const mwl_dict_entry mwl_dict_entries[];
extern const size_t mwl_dict_exact_count;
extern const size_t mwl_dict_entry_count;
extern const uint16_t mwl_dict_keyword_index[];
extern const size_t mwl_dict_keyword_count;
extern const mwl_uid_entry mwl_uid_entries[];
extern const size_t mwl_uid_entry_count;

#endif
