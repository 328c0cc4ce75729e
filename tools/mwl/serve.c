/* mwl serve: run the DICOM server (C-ECHO, and C-FIND through the worklist
 * service). Options come from the configuration tables — the server's
 * (protocol, transport) and each service's — every key is a --flag and a
 * config-file key; flags override the file. A repeatable key (allow, hl7-station) adds
 * one item per line or flag; its first flag drops the file's items, so the
 * command line overrides it as it does every other key. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "commands.h"
#include "dicom/tag.h"
#include "http/http.h"
#include "http/observe.h"
#include "server/server.h"
#include "service/hl7_feed.h"
#include "service/worklist.h"

#define CONFIG_FILE_MAX (1024 * 1024)

/* ---- logging --------------------------------------------------------------- */

/* log-format json: read by the sink on every line, set at start-up and by
 * a reload (any thread may log meanwhile, hence atomic). */
static atomic_bool log_json;

/* Appends `msg` as the body of a JSON string (without the quotes). mwl_log
 * has already escaped it (no control characters, well-formed UTF-8), so
 * only '"' and '\\' are left to escape here; controls are handled anyway
 * so the sink never writes invalid JSON whatever it is given. Stops
 * before an escape that would not fit; returns the bytes written. */
static size_t json_escape(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        char esc[8];
        size_t len = 1;
        esc[0] = (char)*p;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            len = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        }
        if (n + len >= cap)
            break;
        memcpy(out + n, esc, len);
        n += len;
    }
    out[n] = 0;
    return n;
}

static void stderr_sink(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char time_text[64]; /* room for any year the compiler imagines */
    snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    /* A message is at most 1023 bytes before escaping; JSON escaping can
     * double the backslashes and quotes, hence the larger buffers. */
    char line[2400];
    int n;
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        char body[2200];
        json_escape(msg, body, sizeof body);
        n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"pid\":%ld,\"level\":\"%s\",\"msg\":\"%s\"}\n",
                     time_text, (long)getpid(), mwl_log_level_name(level), body);
    } else {
        n = snprintf(line, sizeof line, "%s mwl[%ld] %s: %s\n", time_text, (long)getpid(),
                     mwl_log_level_name(level), msg);
    }
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (len > 0 && line[len - 1] != '\n')
        line[len - 1] = '\n';
    /* One write(2) per line: workers and the loop log concurrently, and a
     * single write keeps lines whole. */
    ssize_t rc = write(STDERR_FILENO, line, len);
    (void)rc;
}

/* ---- help ------------------------------------------------------------------ */

/* The configuration: one table per part, in --help order. */
typedef struct serve_config {
    mwl_server_config server;
    mwl_worklist_config worklist;
    mwl_hl7_feed_config hl7;
    mwl_http_config http;
} serve_config;

enum { TABLES = 4 };

static void tables_of(serve_config *c, const mwl_config_table *tables[TABLES], void *objs[TABLES])
{
    tables[0] = mwl_server_config_table();
    objs[0] = &c->server;
    tables[1] = mwl_worklist_config_table();
    objs[1] = &c->worklist;
    tables[2] = mwl_hl7_feed_config_table();
    objs[2] = &c->hl7;
    tables[3] = mwl_http_config_table();
    objs[3] = &c->http;
}

static void usage(FILE *out)
{
    serve_config defaults;
    const mwl_config_table *tables[TABLES];
    void *objs[TABLES];
    tables_of(&defaults, tables, objs);
    fprintf(out, "usage: mwl serve [--config FILE] [--KEY VALUE | --KEY=VALUE ...]\n\n"
                 "Runs the DICOM Modality Worklist server: Verification (C-ECHO) and Modality\n"
                 "Worklist Information Model - FIND (C-FIND). Stops on SIGTERM/SIGINT: no new\n"
                 "associations, running ones may finish for shutdown-grace, then are aborted.\n"
                 "SIGHUP reads the configuration again (the file, then the flags over it): the\n"
                 "allow-lists, limits, TLS certificate and key apply to new associations, the\n"
                 "worklist options to new C-FINDs, timeouts and log level at once; none is\n"
                 "dropped, and the audit log is reopened; a configuration that does not load\n"
                 "is refused (logged) and the running one stays. Ports, bind, max-pdu, workers\n"
                 "and the other sizing keys need a restart.\n\n"
                 "options (each is also a config file key; flags override the file):\n");
    for (size_t t = 0; t < TABLES; t++) {
        static const char *const part[TABLES] = {"server (protocol and transport)", "worklist service",
                                                 "HL7 v2 order feed (MLLP; docs/hl7.md)",
                                                 "HTTP: health and metrics (docs/http.md)"};
        fprintf(out, "\n %s:\n", part[t]);
        for (size_t i = 0; i < tables[t]->count; i++) {
            const mwl_config_key *k = &tables[t]->keys[i];
            char flag[64];
            if (k->type == MWL_CONFIG_BOOL)
                snprintf(flag, sizeof flag, "--%s[=BOOL]", k->name);
            else
                snprintf(flag, sizeof flag, "--%s %s", k->name, mwl_config_key_hint(k));
            char bounds[64] = "";
            if (k->type == MWL_CONFIG_UINT)
                snprintf(bounds, sizeof bounds, ", %llu..%llu", (unsigned long long)k->min,
                         (unsigned long long)k->max);
            else if (k->type == MWL_CONFIG_SECONDS)
                snprintf(bounds, sizeof bounds, ", %llu.%03llu..%llu", (unsigned long long)(k->min / 1000u),
                         (unsigned long long)(k->min % 1000u), (unsigned long long)(k->max / 1000u));
            fprintf(out, "  %-28s %s\n  %-28s (default: %s%s)\n", flag, k->help, "",
                    k->default_value[0] ? k->default_value : "empty", bounds);
        }
    }
    fprintf(out, "\n  %-28s %s\n  %-28s %s\n\n", "--config FILE", "read keys from FILE first", "-h, --help",
            "show this help");
    fprintf(out, "config file: one 'key = value' per line, e.g. 'max-associations = 16';\n"
                 "blank lines and lines starting with # are ignored; \"quotes\" keep blanks;\n"
                 "each key at most once, except allow, hl7-station and hl7-default: one rule\n"
                 "per line or flag, as many as needed; the first flag of such a key drops the\n"
                 "file's rules of that key.\n"
                 "SECONDS take up to 3 decimals (0.5). BOOL is true/false, yes/no, on/off or\n"
                 "1/0. AET,... is a comma-separated list. CHOICE is one of the values the\n"
                 "key's help lists. AE[@ADDR[/N]]: a calling AE title (* = any), allowed\n"
                 "from any address, or only from ADDR (IPv4 or IPv6) or the range ADDR/N;\n"
                 "split at the last @ followed by an address (A@B@* is the title A@B).\n\n"
                 "exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 for a bad\n"
                 "option or config file, 3 when the port cannot be bound.\n");
}

/* ---- files ----------------------------------------------------------------- */

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    int err = ferror(f) ? EIO : 0;
    fclose(f);
    if (err || n > CONFIG_FILE_MAX) {
        free(buf);
        errno = err ? err : EFBIG;
        return -1;
    }
    *text = buf;
    *len = n;
    return 0;
}

/* Written to a new temporary file and renamed (mwl_file_write), so a
 * script polling for the file never reads it half-written and a link
 * planted at the temporary name is never followed. -1 after a message. */
static int write_port_file(const char *path, unsigned port)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%u\n", port);
    mwl_diag diag;
    if (mwl_file_write(path, (const uint8_t *)text, (size_t)n, false, &diag) != MWL_OK) {
        fprintf(stderr, "mwl serve: port file: %s\n", diag.msg);
        return -1;
    }
    return 0;
}

/* ---- options --------------------------------------------------------------- */

/* The repeatable keys set by a flag so far: the first such flag replaces
 * what the file gave, later ones add. */
typedef struct flag_lists {
    const mwl_config_key *seen[8];
    size_t count;
} flag_lists;

static void reset_list_once(flag_lists *lists, const mwl_config_key *k, void *obj)
{
    for (size_t i = 0; i < lists->count; i++)
        if (lists->seen[i] == k)
            return;
    if (lists->count < sizeof lists->seen / sizeof lists->seen[0])
        lists->seen[lists->count++] = k;
    mwl_config_reset(k, obj);
}

/* Splits "--key=value" / "--key value"; returns the argv index consumed
 * last, or -1 with a message. */
static int apply_flag(serve_config *cfg, flag_lists *lists, int argc, char **argv, int i,
                      const char **config_path)
{
    const char *arg = argv[i] + 2;
    const char *eq = strchr(arg, '=');
    char key[64];
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (klen == 0 || klen >= sizeof key) {
        fprintf(stderr, "mwl serve: bad option '%s' (see --help)\n", argv[i]);
        return -1;
    }
    memcpy(key, arg, klen);
    key[klen] = '\0';
    const char *value = eq ? eq + 1 : NULL;
    if (strcmp(key, "config") == 0) {
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mwl serve: --config needs a file\n");
                return -1;
            }
            value = argv[++i];
        }
        if (config_path)
            *config_path = value;
        return i;
    }
    serve_config scratch;
    const mwl_config_table *tables[TABLES];
    void *objs[TABLES];
    tables_of(cfg ? cfg : &scratch, tables, objs);
    const mwl_config_key *k = NULL;
    size_t t = 0;
    for (; t < TABLES && !k; t++)
        k = mwl_config_find(tables[t], key);
    if (!k) {
        fprintf(stderr, "mwl serve: unknown option '--%s' (see --help)\n", key);
        return -1;
    }
    if (!value) {
        if (k->type == MWL_CONFIG_BOOL) {
            value = "true";
        } else if (i + 1 >= argc) {
            fprintf(stderr, "mwl serve: --%s needs a value\n", key);
            return -1;
        } else {
            value = argv[++i];
        }
    }
    if (cfg) {
        if (k->type == MWL_CONFIG_LIST)
            reset_list_once(lists, k, objs[t - 1]);
        mwl_diag diag;
        if (mwl_config_set(tables[t - 1], objs[t - 1], key, value, &diag) != MWL_OK) {
            fprintf(stderr, "mwl serve: --%s\n", diag.msg);
            return -1;
        }
    }
    return i;
}

/* The configuration: defaults, then the file, then the flags over it. At
 * start-up and on SIGHUP. MWL_OK, or MWL_E_INVALID with the reason in diag
 * (a bad flag is reported on stderr by apply_flag). */
static int load_config(const char *config_path, int argc, char **argv, serve_config *cfg, mwl_diag *diag)
{
    mwl_server_config_init(&cfg->server);
    mwl_worklist_config_init(&cfg->worklist);
    mwl_hl7_feed_config_init(&cfg->hl7);
    mwl_http_config_init(&cfg->http);
    if (config_path) {
        char *text = NULL;
        size_t len = 0;
        if (read_file(config_path, &text, &len) != 0) {
            mwl_diag_set(diag, 0, 0, "%s: %s", config_path, strerror(errno));
            return MWL_E_INVALID;
        }
        const mwl_config_table *tables[TABLES];
        void *objs[TABLES];
        tables_of(cfg, tables, objs);
        mwl_diag d;
        int rc = mwl_config_parse(text, len, tables, objs, TABLES, &d);
        free(text);
        if (rc != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "%s: %s", config_path, d.msg);
            return MWL_E_INVALID;
        }
    }
    flag_lists lists = {{NULL}, 0};
    for (int i = 1; i < argc; i++) {
        i = apply_flag(cfg, &lists, argc, argv, i, NULL);
        if (i < 0) {
            mwl_diag_set(diag, 0, 0, "a command-line option is invalid");
            return MWL_E_INVALID;
        }
    }
    return MWL_OK;
}

typedef struct reload_ctx {
    const char *config_path;
    int argc;
    char **argv;
    mwl_worklist_service *wl;
    mwl_hl7_feed *hl7; /* NULL without hl7-port */
    mwl_http *http;    /* NULL without http-port */
} reload_ctx;

/* /explain and the items-stored gauge read the worklist database with the
 * C-FIND path's name matching options. */
static int set_http_observe(mwl_http *http, const mwl_worklist_config *wl, mwl_diag *diag)
{
    mwl_match_opts match;
    mwl_match_opts_init(&match);
    match.pn_case_sensitive = wl->pn_case_sensitive;
    match.pn_accent_insensitive = wl->pn_accent_insensitive;
    int rc = mwl_http_set_observe(http, wl->db, &match);
    if (rc != MWL_OK)
        mwl_diag_set(diag, 0, 0, "db: path too long for the HTTP listener");
    return rc;
}

/* SIGHUP: the file again, the flags over it, then the server's keys and
 * the worklist service's; a config that does not load changes nothing. */
static int on_reload(void *user, mwl_server *srv, mwl_diag *diag)
{
    reload_ctx *r = user;
    serve_config next;
    int rc = load_config(r->config_path, r->argc, r->argv, &next, diag);
    /* Both parts checked before either changes: a refusal changes nothing. */
    if (rc == MWL_OK)
        rc = mwl_worklist_config_check(&next.worklist, diag);
    if (rc == MWL_OK)
        rc = mwl_hl7_feed_config_check(&next.hl7, diag);
    if (rc == MWL_OK)
        rc = mwl_http_config_check(&next.http, diag);
    /* The HTTP listener's files (tokens, HTTPS certificate) are read and
     * checked now, before anything changes: a bad one refuses it all. */
    next.http.max_peer_connections = next.server.max_peer_connections;
    if (rc == MWL_OK && r->http)
        rc = mwl_http_reload_prepare(r->http, &next.http, diag);
    if (rc == MWL_OK)
        rc = mwl_server_reconfigure(srv, &next.server, diag);
    if (rc == MWL_OK)
        rc = mwl_worklist_service_reconfigure(r->wl, &next.worklist, diag);
    if (rc == MWL_OK && r->hl7)
        rc = mwl_hl7_feed_reconfigure(r->hl7, &next.hl7, diag);
    if (rc == MWL_OK && r->http)
        rc = mwl_http_reconfigure(r->http, &next.http, diag);
    else if (r->http)
        mwl_http_reload_abandon(r->http);
    if (rc == MWL_OK && r->http)
        rc = set_http_observe(r->http, &next.worklist, diag);
    /* The log format applies at once, like the log level. */
    if (rc == MWL_OK)
        atomic_store(&log_json, strcmp(next.server.log_format, "json") == 0);
    return rc;
}

int mwl_cmd_serve(int argc, char **argv)
{
    /* Pass 1: --help and --config, so the file is read before the flags
     * that override it are applied in pass 2. */
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return MWL_EXIT_OK;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "mwl serve: unexpected argument '%s' (see --help)\n", argv[i]);
            return MWL_EXIT_USAGE;
        }
        i = apply_flag(NULL, NULL, argc, argv, i, &config_path);
        if (i < 0)
            return MWL_EXIT_USAGE;
    }
    serve_config cfg;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (load_config(config_path, argc, argv, &cfg, &diag) != MWL_OK) {
        if (diag.msg[0])
            fprintf(stderr, "mwl serve: %s\n", diag.msg);
        return MWL_EXIT_USAGE;
    }

    atomic_store(&log_json, strcmp(cfg.server.log_format, "json") == 0);
    mwl_log_set_sink(stderr_sink, NULL);
    mwl_log_set_level(cfg.server.log_level);

    mwl_diag_clear(&diag);
    mwl_worklist_service *wl = NULL;
    int rc = mwl_worklist_service_new(&cfg.worklist, NULL, &wl, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl serve: worklist database %s: %s\n", cfg.worklist.db,
                diag.msg[0] ? diag.msg : mwl_status_str(rc));
        return rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
    }
    /* The HL7 order feed writes to the same database, through its own
     * connection with durable commits. */
    mwl_hl7_feed *hl7 = NULL;
    if (mwl_hl7_feed_enabled(&cfg.hl7)) {
        rc = mwl_hl7_feed_new(&cfg.hl7, &cfg.server, cfg.worklist.db, &hl7, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl serve: HL7 feed: %s\n", diag.msg[0] ? diag.msg : mwl_status_str(rc));
            mwl_worklist_service_free(wl);
            return rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
        }
    }
    /* The HTTP listener shows the feed's counters, so it comes after it. */
    mwl_http *http = NULL;
    if (mwl_http_enabled(&cfg.http)) {
        cfg.http.max_peer_connections = cfg.server.max_peer_connections;
        rc = mwl_http_new(&cfg.http, hl7, wl, &http, &diag);
        if (rc == MWL_OK)
            rc = set_http_observe(http, &cfg.worklist, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl serve: HTTP: %s\n", diag.msg[0] ? diag.msg : mwl_status_str(rc));
            mwl_http_free(http);
            mwl_hl7_feed_free(hl7);
            mwl_worklist_service_free(wl);
            return rc == MWL_E_INVALID || rc == MWL_E_IO ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
        }
    }
    /* The service table: what the server answers, besides Verification;
     * and the listeners beside the DICOM ones. */
    const mwl_service services[] = {
        {&mwl_scp_find, MWL_UID_ModalityWorklistInformationModelFind, mwl_worklist_service_provider(wl)},
    };
    mwl_listener_spec listeners[2];
    size_t listener_count = 0;
    if (hl7)
        mwl_hl7_feed_listener(hl7, &listeners[listener_count++]);
    if (http)
        mwl_http_listener(http, &listeners[listener_count++]);
    mwl_server_setup setup = {services, sizeof services / sizeof services[0], listeners, listener_count,
                              NULL};
    mwl_server *srv = NULL;
    rc = mwl_server_new(&cfg.server, &setup, &srv, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl serve: %s: %s\n", mwl_status_str(rc), diag.msg);
        mwl_http_free(http);
        mwl_hl7_feed_free(hl7);
        mwl_worklist_service_free(wl);
        return rc == MWL_E_IO ? MWL_EXIT_NETWORK : rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
    }
    /* The HL7 listener comes after the DICOM one and the TLS one. */
    uint16_t hl7_port = hl7 ? mwl_server_listener_port(srv, cfg.server.tls_port[0] ? 2 : 1) : 0;
    if (hl7)
        mwl_log(MWL_LOG_INFO, "listening for HL7 v2 over MLLP%s on port %u", cfg.hl7.tls ? " over TLS" : "",
                (unsigned)hl7_port);
    /* The HTTP listener comes after those and the HL7 one. */
    uint16_t http_port =
        http ? mwl_server_listener_port(srv, (size_t)1 + (cfg.server.tls_port[0] ? 1 : 0) + (hl7 ? 1 : 0))
             : 0;
    if (http)
        mwl_log(MWL_LOG_INFO, "listening for HTTP on %s port %u%s", cfg.http.bind, (unsigned)http_port,
                cfg.http.tokens_file[0] ? " (bearer tokens required)" : "");
    mwl_log(MWL_LOG_INFO, "worklist database %s", cfg.worklist.db);
    /* Always started, doing nothing while expire-* is off: a reload may
     * turn it on. */
    rc = mwl_worklist_service_start_expiry(wl, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl serve: %s\n", diag.msg);
        mwl_server_free(srv);
        mwl_http_free(http);
        mwl_hl7_feed_free(hl7);
        mwl_worklist_service_free(wl);
        return MWL_EXIT_FAILURE;
    }
    /* Signals before the port files: scripts take a port file as "ready",
     * and a SIGHUP or SIGTERM from then on must be handled, not fatal. */
    reload_ctx reload = {config_path, argc, argv, wl, hl7, http};
    mwl_server_set_reload(srv, on_reload, &reload);
    rc = mwl_server_install_signals(srv);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl serve: cannot install signal handlers: %s\n", mwl_status_str(rc));
        mwl_server_free(srv);
        mwl_http_free(http);
        mwl_hl7_feed_free(hl7);
        mwl_worklist_service_free(wl);
        return MWL_EXIT_FAILURE;
    }
    /* The HL7 and HTTP port files before the DICOM one: scripts wait for
     * port-file. */
    if ((cfg.hl7.port_file[0] && write_port_file(cfg.hl7.port_file, hl7_port) != 0) ||
        (cfg.http.port_file[0] && write_port_file(cfg.http.port_file, http_port) != 0) ||
        (cfg.server.tls_port_file[0] &&
         write_port_file(cfg.server.tls_port_file, mwl_server_tls_port(srv)) != 0) ||
        (cfg.server.port_file[0] && write_port_file(cfg.server.port_file, mwl_server_port(srv)) != 0)) {
        mwl_server_free(srv);
        mwl_http_free(http);
        mwl_hl7_feed_free(hl7);
        mwl_worklist_service_free(wl);
        return MWL_EXIT_FAILURE;
    }
    rc = mwl_server_run(srv);
    /* The intake thread finishes before the loop it answers to is freed. */
    mwl_hl7_feed_stop(hl7);
    /* Requests read the server's counters: libmicrohttpd's thread ends
     * before the server is freed. */
    mwl_http_stop(http);
    mwl_server_free(srv);
    mwl_http_free(http);
    mwl_hl7_feed_free(hl7);
    mwl_worklist_service_free(wl);
    if (cfg.server.port_file[0])
        remove(cfg.server.port_file);
    if (cfg.server.tls_port_file[0])
        remove(cfg.server.tls_port_file);
    if (cfg.hl7.port_file[0])
        remove(cfg.hl7.port_file);
    if (cfg.http.port_file[0])
        remove(cfg.http.port_file);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl serve: %s\n", mwl_status_str(rc));
        return MWL_EXIT_FAILURE;
    }
    mwl_log(MWL_LOG_INFO, "stopped");
    return MWL_EXIT_OK;
}
