/* A data set as an indented text tree in the layout of DCMTK's dcmdump
 * (tag, VR, value, "# length, VM keyword"), with text converted to UTF-8
 * through the Specific Character Set (PS3.5 §6.1), for people and for
 * line-by-line comparison with dcmdump. Used by `mwl dump` and
 * `mwl find --dump`. */
#ifndef MWL_DICOM_FORMAT_H
#define MWL_DICOM_FORMAT_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/status.h"
#include "dicom/codec.h"
#include "dicom/dataset.h"

typedef struct mwl_format_options {
    /* Show at most this many characters of each value, then "..."; 0 = all
     * (the default). */
    size_t max_value;
    /* mwl_part10_format only: print the file meta information header
     * (default true). */
    bool show_meta;
} mwl_format_options;

/* Fills the defaults above. Never fails. */
MWL_API void mwl_format_options_init(mwl_format_options *opt);

/* What the printer could not show faithfully. Text that is not valid in
 * its character set (or names an unknown one) is still printed, as its raw
 * bytes with the non-ASCII ones as "&#xNN;", and counted here. */
typedef struct mwl_format_report {
    size_t charset_problems; /* values shown as raw bytes */
    uint32_t charset_tag;    /* the first of them */
    char charset_msg[128];   /* why, for the first ("" when none) */
} mwl_format_report;

/* Appends the tree of `ds` to `out`, one line per element, item and
 * delimiter, starting at nesting `depth` (two spaces per level). Strings
 * are shown in [brackets] without trailing padding, in UTF-8, with control
 * characters and bytes that are not UTF-8 as "&#N;" / "&#xNN;" (dcmdump's
 * +Qn markup) so every element stays on one line; binary numbers in
 * decimal, OB/UN bytes and OW words in hex. `ts` only decides the lengths
 * shown for sequences and items: those of an encoding in `ts` with explicit
 * lengths (the decoder does not keep how the input wrote them). `opt` NULL
 * = defaults; `report` may be NULL. Returns MWL_OK, or MWL_E_NOMEM /
 * MWL_E_LIMIT (out's sticky status; out then holds a partial tree). */
MWL_API MWL_MUST_CHECK int mwl_ds_format(const mwl_ds *ds, mwl_ts ts, size_t depth,
                                         const mwl_format_options *opt, mwl_wbuf *out,
                                         mwl_format_report *report /* out */);

/* As mwl_ds_format, written to `f` as it goes (at most a few KiB are held
 * in memory whatever the size of the data set). MWL_E_IO when writing
 * fails. */
MWL_API MWL_MUST_CHECK int mwl_ds_format_file(const mwl_ds *ds, mwl_ts ts, size_t depth,
                                              const mwl_format_options *opt, FILE *f,
                                              mwl_format_report *report /* out */);

/* A decoded file as `mwl dump` prints it: "# Dicom-File-Format" and, with
 * opt->show_meta, the meta header when the file has one, then
 * "# Dicom-Data-Set" with its transfer syntax and the data set. Returns as
 * mwl_ds_format. */
MWL_API MWL_MUST_CHECK int mwl_part10_format(const mwl_part10 *file, const mwl_format_options *opt,
                                             mwl_wbuf *out, mwl_format_report *report /* out */);
MWL_API MWL_MUST_CHECK int mwl_part10_format_file(const mwl_part10 *file, const mwl_format_options *opt,
                                                  FILE *f, mwl_format_report *report /* out */);

#endif
