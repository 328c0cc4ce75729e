/* Small helpers shared by the mwl subcommands. */
#ifndef MWL_TOOLS_UTIL_H
#define MWL_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dicom/datetime.h"

/* Parses a --date argument: "today", "tomorrow", "yesterday", "all",
 * "YYYYMMDD", "FROM-TO", "FROM-" or "-TO" (dates as YYYYMMDD or today).
 * Fills lo/hi ("" for an open end). Returns false when malformed. */
bool tool_parse_date_option(const char *arg, char lo[9], char hi[9]);

/* Writes base + `days` days as "YYYYMMDD" into out. */
void tool_add_days(const mwl_date *base, int days, char out[9]);

/* Writes `s` (UTF-8, `len` bytes) as a JSON string literal with quotes. */
void tool_json_string(FILE *out, const char *s, size_t len);

/* Parses a positive number of seconds (fractions allowed, at most a day)
 * into milliseconds, rounded up. */
bool tool_parse_seconds(const char *s, int *ms);

/* The value of an option given as "--opt VALUE" or "--opt=VALUE": NULL when
 * argv[*i] is not that option; "" (after a message on stderr naming `cmd`,
 * and *missing set when not NULL) when the value is missing. */
const char *tool_option_value(const char *cmd, int argc, char **argv, int *i, const char *name,
                              bool *missing);

/* Parses a whole decimal number in [min, max]. */
bool tool_parse_long(const char *s, long min, long max, long *out);

#endif
