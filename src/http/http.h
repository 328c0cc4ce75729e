/* The HTTP listener of `mwl serve` (issue 13, first part): GET /healthz and
 * GET /metrics (the Prometheus text format, version 0.0.4) over HTTP/1.1,
 * with bearer tokens read from a file. libmicrohttpd does the HTTP; it is
 * confined to this module (server.c is the only file that includes it).
 *
 * The listening socket is the server's (a protocol listener, server.h):
 * the loop accepts, applies the allow rules' addresses and the shutdown,
 * and hands each accepted socket to libmicrohttpd, whose own thread parses
 * the request and answers it, so no request ever runs on the loop thread.
 *
 * Its settings are a configuration table of their own (http-*), like the
 * HL7 feed's, merged into `mwl serve`'s flags and file. */
#ifndef MWL_HTTP_HTTP_H
#define MWL_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "server/server.h"
#include "service/hl7_feed.h"
#include "service/worklist.h"

#define MWL_HTTP_PATH_MAX 1024
/* Most tokens a tokens file may hold, and the longest token. */
#define MWL_HTTP_TOKENS_MAX 64
#define MWL_HTTP_TOKEN_MAX 256
/* The shortest token accepted: a guessable token is no authentication. */
#define MWL_HTTP_TOKEN_MIN 16

typedef struct mwl_http_config {
    char port[8];                        /* http-port: "" = no HTTP listener, "0" = the kernel picks */
    char bind[MWL_NET_HOST_MAX];         /* http-bind: default 127.0.0.1, "*" = all addresses */
    char port_file[MWL_HTTP_PATH_MAX];   /* http-port-file */
    char tokens_file[MWL_HTTP_PATH_MAX]; /* http-tokens-file: "" = no authentication (loopback only) */
    char tls_cert[MWL_HTTP_PATH_MAX];    /* http-tls-cert: PEM chain; with tls_key, HTTPS; "" = plain HTTP */
    char tls_key[MWL_HTTP_PATH_MAX];     /* http-tls-key: PEM private key, unencrypted */
    uint32_t max_connections;            /* http-max-connections */
    uint32_t max_body;                   /* http-max-body: bytes; a reload applies it at once */
    /* Not a key of its own: the server's max-peer-connections, which the
     * caller copies here; connections from one address at once, more are
     * refused by the HTTP library. 0 = no limit. */
    uint32_t max_peer_connections;
} mwl_http_config;

const mwl_config_table *mwl_http_config_table(void);
void mwl_http_config_init(mwl_http_config *cfg);
/* Bounds and the port's syntax, as the parser checks them, for a config
 * built by hand; and the rule that without http-tokens-file http-bind must
 * be a loopback address (127.0.0.0/8, ::1 or localhost); http-tls-cert and
 * http-tls-key both or neither. MWL_OK or
 * MWL_E_INVALID with diag naming the key. Reads no file. */
MWL_MUST_CHECK int mwl_http_config_check(const mwl_http_config *cfg, mwl_diag *diag);
/* True when http-port is set. */
bool mwl_http_enabled(const mwl_http_config *cfg);

/* A token's role: read may GET, write may also change the worklist
 * (POST, PUT, DELETE on /mwlitems). */
typedef enum mwl_http_role {
    MWL_HTTP_ROLE_NONE = 0,
    MWL_HTTP_ROLE_READ = 1,
    MWL_HTTP_ROLE_WRITE = 2
} mwl_http_role;

typedef struct mwl_http_tokens {
    size_t count;
    struct {
        char token[MWL_HTTP_TOKEN_MAX + 1];
        size_t len;
        mwl_http_role role;
    } item[MWL_HTTP_TOKENS_MAX];
} mwl_http_tokens;

/* Parses a tokens file's text: one `TOKEN ROLE` per line (blanks between,
 * ROLE read or write), blank lines and lines starting with # ignored. A
 * token is MWL_HTTP_TOKEN_MIN..MWL_HTTP_TOKEN_MAX printable ASCII
 * characters other than blanks; a token may appear once. MWL_OK, or
 * MWL_E_INVALID with diag giving the line (never the token). */
MWL_MUST_CHECK int mwl_http_tokens_parse(const char *text, size_t len, mwl_http_tokens *out /* out */,
                                         mwl_diag *diag);
/* The role of the bearer token in an Authorization header value
 * ("Bearer TOKEN"; NULL = no header): MWL_HTTP_ROLE_NONE when absent,
 * malformed or unknown. Every stored token is compared, each in time that
 * depends only on the stored token's length, so the time taken does not
 * tell how much of a guess was right. */
mwl_http_role mwl_http_tokens_check(const mwl_http_tokens *tokens, const char *authorization);

typedef struct mwl_http mwl_http;

/* Checks the config, reads the tokens file (and the TLS certificate and
 * key when given) and starts libmicrohttpd (its threads; no socket of its
 * own), with TLS when http-tls-cert is set. `hl7`: the HL7 feed whose counters
 * /metrics shows, or NULL. `wl`: the worklist service /mwlitems searches
 * and reads through (its database is also where writes go), or NULL (then
 * /mwlitems answers 503); it must outlive the listener. Returns MWL_OK, MWL_E_INVALID (a key, the
 * tokens file or a certificate or key libmicrohttpd refuses: diag says
 * which), MWL_E_IO (a file cannot be read), MWL_E_UNSUPPORTED (a second
 * HTTPS listener in the process, or TLS asked
 * of a libmicrohttpd built without it), MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_http_new(const mwl_http_config *cfg, mwl_hl7_feed *hl7, mwl_worklist_service *wl,
                                mwl_http **out, mwl_diag *diag);
/* The listener to put in mwl_server_setup.listeners. */
void mwl_http_listener(mwl_http *http, mwl_listener_spec *spec);
/* SIGHUP: reads the tokens file again (a file that does not parse changes
 * nothing: MWL_E_INVALID / MWL_E_IO with diag), and with HTTPS on the
 * certificate and key (checked as at start-up; new handshakes get them,
 * open connections keep theirs; one that does not pass changes nothing).
 * http-port, http-bind, http-max-connections, max-peer-connections and
 * turning tokens or HTTPS on or off keep their running values until a
 * restart, with a warning. Loop thread. */
MWL_MUST_CHECK int mwl_http_reconfigure(mwl_http *http, const mwl_http_config *cfg, mwl_diag *diag);
/* A reload in two steps, so that a bad file refuses it before anything
 * else changed: prepare reads and checks the files mwl_http_reconfigure
 * will take (the tokens file, the HTTPS certificate and key: the same
 * errors) and keeps them; mwl_http_reconfigure then applies them and
 * cannot fail on them. When another part of the reload fails in between,
 * abandon drops what prepare read. Loop thread. */
MWL_MUST_CHECK int mwl_http_reload_prepare(mwl_http *http, const mwl_http_config *cfg, mwl_diag *diag);
void mwl_http_reload_abandon(mwl_http *http); /* NULL-safe */

typedef struct mwl_http_stats {
    uint64_t connections;  /* handed to libmicrohttpd */
    uint64_t refused;      /* closed at once: not allowed, shutting down, over a connection limit */
    uint64_t requests;     /* answered by us (libmicrohttpd answers malformed ones itself) */
    uint64_t unauthorized; /* of which 401 */
} mwl_http_stats;
void mwl_http_get_stats(const mwl_http *http, mwl_http_stats *out);

/* After mwl_server_run returns and before mwl_server_free: closes every
 * HTTP connection and joins libmicrohttpd's thread (requests read the
 * server's counters). NULL-safe. */
void mwl_http_stop(mwl_http *http);
/* After mwl_server_free. NULL-safe. */
void mwl_http_free(mwl_http *http);

#endif
