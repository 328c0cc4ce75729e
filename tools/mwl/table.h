/* The text tables of `mwl find` and `mwl ls`: cells padded to a width in
 * display columns (base/utf8.h: East Asian wide characters take 2,
 * combining marks 0), so rows line up whatever script the names are in. */
#ifndef MWL_TOOLS_TABLE_H
#define MWL_TOOLS_TABLE_H

#include <stdbool.h>
#include <stdio.h>

/* Writes one cell of UTF-8 text `s` to `out`: padded with spaces to
 * `width` columns and followed by one space; text wider than that is cut
 * at a character boundary to width - 1 columns and marked with '~'. The
 * `last` cell of a row is written whole, without padding. Control
 * characters are written as spaces and bytes that are not UTF-8 as '?',
 * so a cell never breaks its row or the terminal. */
void tool_table_cell(FILE *out, const char *s, int width, bool last);

#endif
