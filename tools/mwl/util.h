/* Small helpers shared by the mwl subcommands. */
#ifndef MWL_TOOLS_UTIL_H
#define MWL_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client/client.h"
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

/* The client's TLS options, shared by mwl echo and mwl find: --tls, and
 * --tls-ca FILE, --tls-cert FILE, --tls-key FILE (each implies --tls). */
typedef struct tool_tls {
    bool on;
    bool no_name_check;
    const char *ca, *cert, *key;
} tool_tls;

/* Takes argv[*i] if it is one of the TLS options: 1 taken, 0 not one, -1
 * a value is missing (a message naming `cmd` is printed). */
int tool_tls_option(const char *cmd, int argc, char **argv, int *i, tool_tls *t);
/* Sets the SCU config's TLS fields from the options. */
void tool_tls_apply(const tool_tls *t, mwl_scu_config *cfg);
/* The options' lines for --help. */
#define TOOL_TLS_HELP                                                                                        \
    "  --tls          DICOM over TLS (PS3.15 Annex B; TLS 1.2 or 1.3), e.g. to port 2762;\n"                 \
    "                 the server's certificate is checked against --tls-ca, or the\n"                        \
    "                 system's trusted certificates, and must name HOST (DNS or IP\n"                        \
    "                 subjectAltName)\n"                                                                     \
    "  --tls-no-name-check\n"                                                                                \
    "                 accept a trusted certificate that does not name HOST (implies --tls)\n"                \
    "  --tls-ca FILE  PEM certificates trusted to sign the server's (implies --tls)\n"                       \
    "  --tls-cert FILE, --tls-key FILE\n"                                                                    \
    "                 our certificate and its private key (PEM), for a server that\n"                        \
    "                 requires one (imply --tls)\n"

/* Parses a whole decimal number in [min, max]. */
bool tool_parse_long(const char *s, long min, long max, long *out);

#endif
