/* The server's configuration keys: protocol and transport only (one
 * base/config.h table). Each service keeps its own table (src/service/). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

#define FIELD(f) offsetof(mwl_server_config, f)
#define SECONDS(s) ((uint64_t)(s)*1000u)

/* `allow` items are access rules (allow.c). */
static int allow_parse(const char *text, void *item, mwl_diag *diag)
{
    return mwl_allow_rule_parse(text, item, diag);
}
static size_t allow_format(const void *item, char *out, size_t cap)
{
    return mwl_allow_rule_format(item, out, cap);
}
static bool allow_equal(const void *a, const void *b)
{
    return mwl_allow_rule_equal(a, b);
}
static const mwl_config_list_ops allow_ops = {sizeof(mwl_allow_rule), offsetof(mwl_allow_list, rule),
                                              "AE[@ADDR[/N]]",        allow_parse,
                                              allow_format,           allow_equal};

/* log-format: how `mwl serve` writes each log line (its sink, not the
 * library, formats them; the server only keeps the setting). */
static const char *const log_format_choices[] = {"text", "json", NULL};

static const mwl_config_key config_keys[] = {
    {"port", MWL_CONFIG_UINT, "11112", 0, 65535, FIELD(port),
     "TCP port to listen on; 0 lets the kernel pick one (see port-file)", NULL},
    {"bind", MWL_CONFIG_STRING, "", 0, MWL_NET_HOST_MAX - 1, FIELD(bind),
     "address or host name to listen on; empty or * = all addresses (IPv6 and IPv4)", NULL},
    {"aet", MWL_CONFIG_AET, "MWL", 1, MWL_AE_TITLE_MAX, FIELD(ae_title), "our AE title", NULL},
    {"strict-called-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(strict_called_aet),
     "reject associations whose called AE title is not aet (A-ASSOCIATE-RJ reason 7)", NULL},
    {"calling-aet-allow", MWL_CONFIG_AET_LIST, "", 0, MWL_CONFIG_AET_LIST_MAX, FIELD(calling_aet_allow),
     "comma-separated calling AE titles allowed in; empty = any (others: A-ASSOCIATE-RJ reason 3)", NULL},
    {"allow", MWL_CONFIG_LIST, "", 0, MWL_ALLOW_RULES_MAX, FIELD(allow),
     "repeatable: let calling AE title AE (* = any) in from anywhere, or only from ADDR or range ADDR/N; "
     "with calling-aet-allow, the only callers (others: A-ASSOCIATE-RJ reason 3)",
     &allow_ops},
    {"max-associations", MWL_CONFIG_UINT, "64", 1, 1000, FIELD(max_associations),
     "associations at once; more are rejected (A-ASSOCIATE-RJ transient, reason 2)", NULL},
    {"max-pending", MWL_CONFIG_UINT, "32", 1, 1000, FIELD(max_pending),
     "connections without an association yet; over it the oldest is closed to make room", NULL},
    {"max-peer-connections", MWL_CONFIG_UINT, "32", 1, 2000, FIELD(max_peer_connections),
     "connections at once from one peer address; more are closed as they are accepted", NULL},
    {"max-pdu", MWL_CONFIG_UINT, "65536", 4096, 16777216, FIELD(max_pdu),
     "largest P-DATA-TF PDU we receive (our Maximum Length, PS3.8 D.1), bytes", NULL},
    {"max-message", MWL_CONFIG_UINT, "1048576", 65536, 67108864, FIELD(max_message),
     "largest DIMSE message (command + identifier) we take, and what an identifier may decode (inflate) to; "
     "more: A-ABORT or A700",
     NULL},
    {"max-depth", MWL_CONFIG_UINT, "8", 1, 64, FIELD(max_depth),
     "deepest sequence nesting in a C-FIND identifier (worklist keys need 3); deeper: A900", NULL},
    {"max-output", MWL_CONFIG_UINT, "262144", 65536, 67108864, FIELD(max_output),
     "bytes queued for a peer before its session stops reading it (back-pressure); a C-FIND streams on "
     "below a quarter of it",
     NULL},
    {"associate-timeout", MWL_CONFIG_SECONDS, "10", 100, SECONDS(3600), FIELD(associate_timeout_ms),
     "a new connection must deliver its whole A-ASSOCIATE-RQ within this long, or it is closed", NULL},
    {"acse-timeout", MWL_CONFIG_SECONDS, "30", 100, SECONDS(3600), FIELD(acse_timeout_ms),
     "ARTIM: wait this long for the peer to close after a release, rejection or abort", NULL},
    {"idle-timeout", MWL_CONFIG_SECONDS, "120", 100, SECONDS(86400), FIELD(idle_timeout_ms),
     "abort an association when no whole PDU arrives for this long (DIMSE / read-stall timeout)", NULL},
    {"write-timeout", MWL_CONFIG_SECONDS, "30", 100, SECONDS(3600), FIELD(write_timeout_ms),
     "close a connection whose peer has not read any of our pending output for this long", NULL},
    {"shutdown-grace", MWL_CONFIG_SECONDS, "5", 0, SECONDS(600), FIELD(shutdown_grace_ms),
     "on SIGTERM/SIGINT, let associations finish for this long, then abort them", NULL},
    {"workers", MWL_CONFIG_UINT, "4", 1, 64, FIELD(workers), "worker threads for C-FIND (database) work",
     NULL},
    {"background-workers", MWL_CONFIG_UINT, "0", 0, 64, FIELD(background_workers),
     "threads, at the lowest CPU priority, for C-FINDs that run long (unindexed scans); 0 = half the CPUs",
     NULL},
    {"find-batch", MWL_CONFIG_UINT, "64", 1, 1024, FIELD(find_batch),
     "C-FIND matches a worker fetches and encodes per step before the loop sends them", NULL},
    {"find-step-time", MWL_CONFIG_SECONDS, "0.005", 1, SECONDS(10), FIELD(find_step_ms),
     "longest a worker spends on one C-FIND step; a longer query continues behind the other work", NULL},
    {"log-level", MWL_CONFIG_LOG_LEVEL, "info", 0, 4, FIELD(log_level), "error, warn, info, debug or trace",
     NULL},
    {"log-format", MWL_CONFIG_ENUM, "text", 0, 4, FIELD(log_format),
     "text (one line per event) or json (one object per line: time, pid, level, msg)", log_format_choices},
    {"port-file", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(port_file),
     "write the bound port number to this file once listening (for --port 0)", NULL},
    {"audit-log", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(audit_log),
     "append one JSON line per association, refused connection and C-FIND (with the Patient IDs returned)",
     NULL},
    {"tls-port", MWL_CONFIG_STRING, "", 0, 5, FIELD(tls_port),
     "also listen for DICOM over TLS on this port (2762 by convention; 0 = the kernel picks; empty = no TLS)",
     NULL},
    {"tls-bind", MWL_CONFIG_STRING, "", 0, MWL_NET_HOST_MAX - 1, FIELD(tls_bind),
     "address or host name for the TLS listener; empty = as bind, * = all addresses (so the plain port can "
     "stay on 127.0.0.1 while TLS serves the network)",
     NULL},
    {"tls-port-file", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(tls_port_file),
     "write the TLS listener's port number to this file once listening (for --tls-port 0)", NULL},
    {"tls-cert", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(tls_cert),
     "TLS: our certificate (PEM, with its chain); needed for tls-port", NULL},
    {"tls-key", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(tls_key),
     "TLS: the certificate's private key (PEM, unencrypted)", NULL},
    {"tls-ca", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(tls_ca),
     "TLS: certificates (PEM) trusted to sign client certificates", NULL},
    {"tls-verify-peer", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(tls_verify_peer),
     "TLS: require a client certificate signed by tls-ca (the handshake fails otherwise)", NULL},
    /* About 2.4 KiB a record (its identifier is kept for /explain): the
     * bound keeps the ring under 25 MiB. */
    {"query-log-size", MWL_CONFIG_UINT, "1000", 0, 10000, FIELD(query_log_size),
     "the last C-FINDs kept for the HTTP listener's GET /queries and /explain (0 = none kept)", NULL},
};

#define KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

static const mwl_config_table server_table = {"server", config_keys, KEY_COUNT, sizeof(mwl_server_config)};

const mwl_config_table *mwl_server_config_table(void)
{
    return &server_table;
}

const mwl_config_key *mwl_server_config_keys(size_t *count)
{
    if (count)
        *count = KEY_COUNT;
    return config_keys;
}

const mwl_config_key *mwl_server_config_find_key(const char *name)
{
    return mwl_config_find(&server_table, name);
}

void mwl_server_config_init(mwl_server_config *cfg)
{
    mwl_config_init(&server_table, cfg);
}

int mwl_server_config_set(mwl_server_config *cfg, const char *key, const char *value, mwl_diag *diag)
{
    return mwl_config_set(&server_table, cfg, key, value, diag);
}

int mwl_server_config_parse(const char *text, size_t len, mwl_server_config *cfg, mwl_diag *diag)
{
    if (!cfg)
        return MWL_E_INVALID;
    const mwl_config_table *tables[1] = {&server_table};
    void *objs[1] = {cfg};
    return mwl_config_parse(text, len, tables, objs, 1, diag);
}

int mwl_server_config_check(const mwl_server_config *cfg, mwl_diag *diag)
{
    /* Every numeric key against its table bounds, and the AE title: the
     * parser enforces these; a config built by hand may not. */
    const char *bad = NULL;
    for (size_t i = 0; i < KEY_COUNT && !bad; i++) {
        const mwl_config_key *k = &config_keys[i];
        if (k->type != MWL_CONFIG_UINT && k->type != MWL_CONFIG_SECONDS)
            continue;
        uint32_t v;
        memcpy(&v, (const char *)cfg + k->offset, sizeof v);
        if (v < k->min || v > k->max)
            bad = k->name;
    }
    if (!bad && (!cfg->ae_title[0] || strlen(cfg->ae_title) > MWL_AE_TITLE_MAX))
        bad = "aet";
    if (!bad && cfg->calling_aet_allow.count > MWL_CONFIG_AET_LIST_MAX)
        bad = "calling-aet-allow";
    if (!bad && cfg->allow.count > MWL_ALLOW_RULES_MAX)
        bad = "allow";
    for (size_t i = 0; !bad && i < cfg->allow.count; i++) {
        /* A rule must be what its text form says: written and read back. */
        const mwl_allow_rule *r = &cfg->allow.rule[i];
        char text[MWL_ALLOW_RULE_STRLEN + 1];
        mwl_allow_rule again;
        if (strnlen(r->ae, sizeof r->ae) == sizeof r->ae ||
            mwl_allow_rule_format(r, text, sizeof text) >= sizeof text ||
            mwl_allow_rule_parse(text, &again, NULL) != MWL_OK || !mwl_allow_rule_equal(&again, r))
            bad = "allow";
    }
    if (!bad && cfg->log_level > MWL_LOG_TRACE)
        bad = "log-level";
    if (!bad && strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0)
        bad = "log-format";
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: invalid value", bad);
        return MWL_E_INVALID;
    }
    /* TLS: a port (0..65535) and what a TLS server needs. */
    if (cfg->tls_port[0]) {
        uint16_t port;
        if (!memchr(cfg->tls_port, '\0', sizeof cfg->tls_port) ||
            mwl_net_parse_port(cfg->tls_port, &port, NULL) != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "tls-port: '%.8s' is not a port number", cfg->tls_port);
            return MWL_E_INVALID;
        }
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            mwl_diag_set(diag, 0, 0, "tls-port: needs tls-cert and tls-key");
            return MWL_E_INVALID;
        }
        if (cfg->tls_verify_peer && !cfg->tls_ca[0]) {
            mwl_diag_set(diag, 0, 0, "tls-verify-peer: needs tls-ca, the CA that signs client certificates");
            return MWL_E_INVALID;
        }
    }
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: invalid value", bad);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}
