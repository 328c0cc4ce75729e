/* The HL7 v2 order feed (IHE RAD-4/12/13 receiver): an MLLP listener on the
 * server's loop (a protocol listener, server.h) that hands each message to
 * one intake thread, which maps it (hl7/), applies it to the worklist store
 * and answers the ACK. Messages from every connection that arrive while a
 * commit is being synced go into the next transaction together (group
 * commit), so each AA is sent only once its change is on disk and the
 * throughput does not fall to one fsync per message. A retransmitted
 * message (same sending application, facility and MSH-10) is answered
 * from the intake log with the ACK it got the first time, and changes
 * nothing, also after a restart.
 *
 * Its settings are a configuration table of their own (hl7-*), so `mwl
 * serve` and a library caller get the same keys, defaults and checks. */
#ifndef MWL_SERVICE_HL7_FEED_H
#define MWL_SERVICE_HL7_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "hl7/hl7.h"
#include "server/server.h"

#define MWL_HL7_FEED_PATH_MAX 1024
#define MWL_HL7_STATION_RULES_MAX 256
#define MWL_HL7_DEFAULTS_MAX 64

typedef struct mwl_hl7_station_list {
    size_t count;
    mwl_hl7_station_rule rule[MWL_HL7_STATION_RULES_MAX];
} mwl_hl7_station_list;

typedef struct mwl_hl7_default_list {
    size_t count;
    mwl_hl7_default item[MWL_HL7_DEFAULTS_MAX];
} mwl_hl7_default_list;

typedef struct mwl_hl7_feed_config {
    char port[8];                          /* hl7-port: "" = no HL7 listener, "0" = the kernel picks */
    char bind[MWL_NET_HOST_MAX];           /* hl7-bind: "" = as the DICOM bind, "*" = all */
    char port_file[MWL_HL7_FEED_PATH_MAX]; /* hl7-port-file */
    bool tls;                              /* hl7-tls: MLLP over TLS with tls-cert/tls-key */
    uint32_t max_message;                  /* hl7-max-message: bytes of one message */
    uint32_t idle_timeout_ms;              /* hl7-idle-timeout: no byte in this long -> close */
    uint32_t max_connections;              /* hl7-max-connections */
    uint32_t dedup_hours;                  /* hl7-dedup-hours: how long ACKs are kept for resends */
    char charset[32];                      /* hl7-charset: MSH-18 assumed when empty */
    char patient_issuer[65];               /* hl7-patient-issuer */
    char study_uid[16];                    /* hl7-study-uid: generate | reject */
    char uid_root[48];                     /* hl7-uid-root: "" = 2.25 */
    bool station_aet_from_orc18;           /* hl7-station-aet-from-orc18 */
    mwl_hl7_station_list stations;         /* hl7-station (repeatable) */
    mwl_hl7_default_list defaults;         /* hl7-default (repeatable) */
} mwl_hl7_feed_config;

const mwl_config_table *mwl_hl7_feed_config_table(void);
void mwl_hl7_feed_config_init(mwl_hl7_feed_config *cfg);
/* Bounds and the port's syntax, as the parser checks them, for a config
 * built by hand. MWL_OK or MWL_E_INVALID with diag naming the key. */
MWL_MUST_CHECK int mwl_hl7_feed_config_check(const mwl_hl7_feed_config *cfg, mwl_diag *diag);
/* True when hl7-port is set. */
bool mwl_hl7_feed_enabled(const mwl_hl7_feed_config *cfg);

typedef struct mwl_hl7_feed mwl_hl7_feed;

/* Checks the config, opens the store `db` (a connection of its own, with
 * durable commits: sqlite.synchronous=full) and, with hl7-tls, loads the
 * server's TLS certificate and key (`server`: the DICOM server's config,
 * for tls-* and the bind address). Starts the intake thread. Returns
 * MWL_OK, MWL_E_INVALID (diag names the key), MWL_E_STORE, MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_hl7_feed_new(const mwl_hl7_feed_config *cfg, const mwl_server_config *server,
                                    const char *db, mwl_hl7_feed **out, mwl_diag *diag);
/* The listener to put in mwl_server_setup.listeners. */
void mwl_hl7_feed_listener(mwl_hl7_feed *feed, mwl_listener_spec *spec);
/* Replaces the mapping settings and limits (SIGHUP; new messages and
 * connections use them). Port, bind, tls keep their values. MWL_OK or
 * MWL_E_INVALID (the running settings stay). Loop thread. */
MWL_MUST_CHECK int mwl_hl7_feed_reconfigure(mwl_hl7_feed *feed, const mwl_hl7_feed_config *cfg,
                                            mwl_diag *diag);

/* Message types counted apart (MSH-9.1^MSH-9.2, e.g. "ORM^O01"); more
 * count under "other", so a sender cannot grow the table (or a metrics
 * page) without bound. */
#define MWL_HL7_FEED_TYPES_MAX 32
#define MWL_HL7_FEED_TYPE_LEN 16

/* One answered message, for a status page: what it was and what it got.
 * The identifiers and the text come from the sender (or the mapping) as
 * UTF-8, cut at a character boundary to fit; they are data, so whoever
 * shows them escapes them for the output's format. time "" = none yet. */
#define MWL_HL7_FEED_ID_LEN 64
#define MWL_HL7_FEED_TEXT_LEN 256
typedef struct mwl_hl7_feed_event {
    char time[32];                        /* ISO-8601 UTC with ms: "2026-12-04T23:20:12.345Z" */
    char sender[2 * MWL_HL7_FEED_ID_LEN]; /* MSH-3 "|" MSH-4: "app|facility" */
    char type[MWL_HL7_FEED_TYPE_LEN];     /* "ORM^O01", "" = no readable MSH */
    char control_id[MWL_HL7_FEED_ID_LEN]; /* MSH-10 */
    char ack[3];                          /* MSA-1: "AA", "AE", "AR" */
    char text[MWL_HL7_FEED_TEXT_LEN];     /* last_message: the plan's summary; last_error: the error */
} mwl_hl7_feed_event;

typedef struct mwl_hl7_feed_stats {
    uint64_t connections; /* accepted */
    uint64_t refused;     /* closed at once: not allowed, too many */
    uint64_t messages;    /* answered */
    uint64_t aa, ae, ar;  /* by MSA-1 */
    uint64_t duplicates;  /* answered from the intake log */
    uint64_t commits;     /* transactions synced */
    /* Answers by message type and MSA-1, type_count rows. type "" = no
     * readable MSH; a last row "other" counts the types beyond the first
     * MWL_HL7_FEED_TYPES_MAX. */
    size_t type_count;
    struct {
        char type[MWL_HL7_FEED_TYPE_LEN];
        uint64_t aa, ae, ar;
    } by_type[MWL_HL7_FEED_TYPES_MAX + 1];
    mwl_hl7_feed_event last_message; /* the last message answered, whatever its ACK */
    mwl_hl7_feed_event last_error;   /* the last one answered AE or AR */
} mwl_hl7_feed_stats;
void mwl_hl7_feed_get_stats(const mwl_hl7_feed *feed, mwl_hl7_feed_stats *out);

/* After mwl_server_run returns and before mwl_server_free: finishes the
 * messages the intake thread holds and joins it. */
void mwl_hl7_feed_stop(mwl_hl7_feed *feed);
/* After mwl_server_free. NULL-safe. */
void mwl_hl7_feed_free(mwl_hl7_feed *feed);

#endif
