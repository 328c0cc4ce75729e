/* The query options shared by mwl find and mwl explain: plain options
 * (--station, --date, ...), DCMTK findscu style keys (-k PATH[=VALUE]), a
 * data set file (--query) and its character set (--charset), and building
 * the C-FIND identifier from them through dicom/keypath.h. */
#ifndef MWL_TOOLS_QUERY_ARGS_H
#define MWL_TOOLS_QUERY_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "dicom/dataset.h"

#define TOOL_SPS "ScheduledProcedureStepSequence."

/* A key to set: a path and a value, or none (a return key). */
typedef struct tool_key_arg {
    const char *path;
    const char *value; /* NULL = empty */
    size_t path_len;
} tool_key_arg;

typedef struct tool_query_args {
    const char *query_file;
    const char *charset; /* NULL = automatic */
    bool date_given;
    char date_value[20]; /* "", "YYYYMMDD" or a range */
    tool_key_arg *keys;  /* plain options and -k, in command-line order */
    size_t key_count;
} tool_query_args;

/* Room for every argument of argv as a key. False when out of memory. */
bool tool_query_args_init(tool_query_args *qa, int argc);
void tool_query_args_free(tool_query_args *qa);

/* Takes argv[*i] (and its value) if it is a query option: --station,
 * --time, --modality, --patient-id, --patient-name, --accession,
 * --study-uid, --sps-status, --date, -k, --query, --charset. Returns 1
 * taken, 0 not one, -1 bad (a message naming `cmd` is printed). A command
 * that gives one of these names another meaning checks it first. */
int tool_query_option(const char *cmd, int argc, char **argv, int *i, tool_query_args *qa);

/* Builds the identifier in `arena`: the query file or an empty data set,
 * its character set, the `n_defaults` return keys `defaults` and, when
 * `default_date` and no --date, today's SPS start date (both only without
 * a query file), then the options in command-line order. Returns false
 * after printing why (naming `cmd`) it cannot be built. */
bool tool_query_build(const char *cmd, const tool_query_args *qa, const char *const *defaults,
                      size_t n_defaults, bool default_date, mwl_arena *arena, mwl_ds **out);

#endif
