/* The HL7 v2 order feed: MLLP connections on the server's loop, one intake
 * thread that applies messages to the store with group commit (hl7_feed.h).
 *
 * A connection has at most one message in the intake thread at a time:
 * original-mode HL7 is send, wait for the ACK, send the next, and while a
 * message is out the connection stops reading, so a sender that pipelines
 * is held back by TCP rather than by our memory. The message's storage is
 * the connection's own (no allocation per message beyond its bytes); a
 * connection whose peer went away while its message was out is kept until
 * the intake thread gives the message back. */
#include "service/hl7_feed.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/utf8.h"
#include "dicom/charset.h"
#include "dicom/tag.h"
#include "net/net.h"
#include "store/store.h"

/* ---- configuration ----------------------------------------------------------- */

#define FIELD(f) offsetof(mwl_hl7_feed_config, f)
#define SECONDS(s) ((uint64_t)(s)*1000u)

static int station_parse(const char *text, void *item, mwl_diag *diag)
{
    return mwl_hl7_station_rule_parse(text, item, diag);
}
static size_t station_format(const void *item, char *out, size_t cap)
{
    int n = mwl_hl7_station_rule_format(item, out, cap);
    return n < 0 ? 0 : (size_t)n;
}
static bool station_equal(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(mwl_hl7_station_rule)) == 0;
}
static const mwl_config_list_ops station_ops = {sizeof(mwl_hl7_station_rule),
                                                offsetof(mwl_hl7_station_list, rule),
                                                "MODALITY[@LOCATION] AET [STATION]",
                                                station_parse,
                                                station_format,
                                                station_equal};

static int default_parse(const char *text, void *item, mwl_diag *diag)
{
    return mwl_hl7_default_parse(text, item, diag);
}
static size_t default_format(const void *item, char *out, size_t cap)
{
    int n = mwl_hl7_default_format(item, out, cap);
    return n < 0 ? 0 : (size_t)n;
}
static bool default_equal(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(mwl_hl7_default)) == 0;
}
static const mwl_config_list_ops default_ops = {sizeof(mwl_hl7_default), offsetof(mwl_hl7_default_list, item),
                                                "KEYWORD=VALUE",         default_parse,
                                                default_format,          default_equal};

static const char *const study_uid_choices[] = {"generate", "reject", NULL};

static const mwl_config_key feed_keys[] = {
    {"hl7-port", MWL_CONFIG_STRING, "", 0, 5, FIELD(port),
     "also listen for HL7 v2 orders over MLLP on this port (2575 by convention; 0 = the kernel picks; "
     "empty = no HL7 listener)",
     NULL},
    {"hl7-bind", MWL_CONFIG_STRING, "", 0, MWL_NET_HOST_MAX - 1, FIELD(bind),
     "address for the HL7 listener; empty = as bind, * = all addresses", NULL},
    {"hl7-port-file", MWL_CONFIG_STRING, "", 0, MWL_HL7_FEED_PATH_MAX - 1, FIELD(port_file),
     "write the HL7 listener's port to this file once listening", NULL},
    {"hl7-tls", MWL_CONFIG_BOOL, "false", 0, 0, FIELD(tls),
     "the HL7 listener speaks MLLP over TLS, with tls-cert, tls-key, tls-ca and tls-verify-peer", NULL},
    {"hl7-max-message", MWL_CONFIG_UINT, "1048576", 1024, 67108864, FIELD(max_message),
     "largest HL7 message, bytes; a longer one closes the connection", NULL},
    {"hl7-idle-timeout", MWL_CONFIG_SECONDS, "300", SECONDS(1), SECONDS(86400), FIELD(idle_timeout_ms),
     "close an HL7 connection that sends nothing for this long, seconds", NULL},
    {"hl7-max-connections", MWL_CONFIG_UINT, "64", 1, 1000, FIELD(max_connections),
     "HL7 connections at once; more are closed as they are accepted", NULL},
    {"hl7-dedup-hours", MWL_CONFIG_UINT, "168", 1, 87600, FIELD(dedup_hours),
     "hours an answered message is remembered, so a resend is acknowledged again, not applied again", NULL},
    {"hl7-charset", MWL_CONFIG_STRING, "8859/1", 1, 31, FIELD(charset),
     "character set of messages whose MSH-18 is empty, as an MSH-18 value (ASCII, 8859/1, UNICODE UTF-8)",
     NULL},
    {"hl7-patient-issuer", MWL_CONFIG_STRING, "", 0, 64, FIELD(patient_issuer),
     "Issuer of Patient ID whose PID-3 repetition is the patient's; also given to IDs without one", NULL},
    {"hl7-study-uid", MWL_CONFIG_ENUM, "generate", 0, 15, FIELD(study_uid),
     "an order without a Study Instance UID (no ZDS-1, empty IPC-3): generate a stable one, or reject (AE)",
     study_uid_choices},
    {"hl7-uid-root", MWL_CONFIG_STRING, "", 0, 47, FIELD(uid_root),
     "root of generated Study Instance UIDs; empty = 2.25 (UUID-derived)", NULL},
    {"hl7-station-aet-from-orc18", MWL_CONFIG_BOOL, "false", 0, 0, FIELD(station_aet_from_orc18),
     "take the Scheduled Station AE Title from ORC-18 when the order has no IPC-9", NULL},
    {"hl7-station", MWL_CONFIG_LIST, "", 0, MWL_HL7_STATION_RULES_MAX, FIELD(stations),
     "repeatable: orders for MODALITY (* = any), at LOCATION (PV1-3.1 or IPC-8) when given, go to station "
     "AE title AET and station name STATION, unless the message names one",
     &station_ops},
    {"hl7-default", MWL_CONFIG_LIST, "", 0, MWL_HL7_DEFAULTS_MAX, FIELD(defaults),
     "repeatable: KEYWORD=VALUE gives a worklist attribute the orders leave empty", &default_ops},
};

static const mwl_config_table feed_table = {"hl7", feed_keys, sizeof feed_keys / sizeof feed_keys[0],
                                            sizeof(mwl_hl7_feed_config)};

const mwl_config_table *mwl_hl7_feed_config_table(void)
{
    return &feed_table;
}

void mwl_hl7_feed_config_init(mwl_hl7_feed_config *cfg)
{
    mwl_config_init(&feed_table, cfg);
}

bool mwl_hl7_feed_enabled(const mwl_hl7_feed_config *cfg)
{
    return cfg->port[0] != 0;
}

int mwl_hl7_feed_config_check(const mwl_hl7_feed_config *cfg, mwl_diag *diag)
{
    /* As the parser would: every bound of the table, for a config built
     * by hand. */
    const char *bad = NULL;
    const struct {
        const char *text;
        size_t size;
        const char *key;
    } strings[] = {{cfg->port, sizeof cfg->port, "hl7-port"},
                   {cfg->bind, sizeof cfg->bind, "hl7-bind"},
                   {cfg->port_file, sizeof cfg->port_file, "hl7-port-file"},
                   {cfg->charset, sizeof cfg->charset, "hl7-charset"},
                   {cfg->patient_issuer, sizeof cfg->patient_issuer, "hl7-patient-issuer"},
                   {cfg->study_uid, sizeof cfg->study_uid, "hl7-study-uid"},
                   {cfg->uid_root, sizeof cfg->uid_root, "hl7-uid-root"}};
    for (size_t i = 0; !bad && i < sizeof strings / sizeof strings[0]; i++)
        if (!memchr(strings[i].text, '\0', strings[i].size))
            bad = strings[i].key;
    if (!bad && cfg->max_message < 1024)
        bad = "hl7-max-message";
    else if (!bad && (cfg->idle_timeout_ms < 1000 || cfg->idle_timeout_ms > 86400000))
        bad = "hl7-idle-timeout";
    else if (!bad && (cfg->max_connections < 1 || cfg->max_connections > 1000))
        bad = "hl7-max-connections";
    else if (!bad && (cfg->dedup_hours < 1 || cfg->dedup_hours > 87600))
        bad = "hl7-dedup-hours";
    else if (!bad && strcmp(cfg->study_uid, "generate") != 0 && strcmp(cfg->study_uid, "reject") != 0)
        bad = "hl7-study-uid";
    else if (!bad &&
             (cfg->stations.count > MWL_HL7_STATION_RULES_MAX || cfg->defaults.count > MWL_HL7_DEFAULTS_MAX))
        bad = cfg->stations.count > MWL_HL7_STATION_RULES_MAX ? "hl7-station" : "hl7-default";
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: out of range", bad);
        return MWL_E_INVALID;
    }
    int rc;
    if (cfg->port[0]) {
        uint16_t port;
        mwl_diag d;
        if (mwl_net_parse_port(cfg->port, &port, &d) != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "hl7-port: %s", d.msg);
            return MWL_E_INVALID;
        }
    }
    if (!cfg->port[0] && cfg->port_file[0]) {
        mwl_diag_set(diag, 0, 0, "hl7-port-file: needs hl7-port");
        return MWL_E_INVALID;
    }
    /* The default character set must be one the parser knows: parse an
     * empty message with it and see whether the charset is what fails. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_hl7_parse_options po = {cfg->charset, 0};
    static const char probe[] = "MSH|^~\\&|A|B|C|D|20260101||ACK|1|P|2.5.1\r";
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error err;
    memset(&err, 0, sizeof err);
    rc = mwl_hl7_parse((const uint8_t *)probe, sizeof probe - 1, &po, &arena, &m, &err);
    mwl_arena_clear(&arena);
    if (rc == MWL_E_CHARSET) {
        mwl_diag_set(diag, 0, 0, "hl7-charset: '%s' is not an HL7 character set (MSH-18, table 0211)",
                     cfg->charset);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

static void map_config_of(const mwl_hl7_feed_config *cfg, mwl_hl7_map_config *mc)
{
    mwl_hl7_map_config_init(mc);
    mc->stations = cfg->stations.rule;
    mc->station_count = cfg->stations.count;
    mc->defaults = cfg->defaults.item;
    mc->default_count = cfg->defaults.count;
    mc->patient_issuer = cfg->patient_issuer;
    mc->uid_policy = strcmp(cfg->study_uid, "reject") == 0 ? MWL_HL7_UID_REJECT : MWL_HL7_UID_GENERATE;
    mc->uid_root = cfg->uid_root;
    mc->station_aet_from_orc18 = cfg->station_aet_from_orc18;
}

/* ---- state ------------------------------------------------------------------- */

typedef struct hl7_conn hl7_conn;

/* One message on its way through the intake thread, and back. */
typedef struct feed_msg {
    mwl_loop_task task; /* the way back to the loop thread */
    hl7_conn *conn;
    uint8_t *data; /* the MLLP payload (malloc) */
    size_t len;
    mwl_wbuf ack; /* the answer (payload, without MLLP blocks) */
    mwl_hl7_ack_code code;
    char type[MWL_HL7_FEED_TYPE_LEN]; /* "ORM^O01", "" = no MSH: for the counters */
    mwl_hl7_feed_event event;         /* for the status page, published once the batch's fate is known */
    struct feed_msg *next;            /* in the intake queue */
} feed_msg;

struct hl7_conn {
    mwl_hl7_feed *feed;
    mwl_conn *conn; /* NULL once closed (the struct may wait for its message) */
    mwl_loop_io *io;
    mwl_mllp framer;
    uint8_t in[16384]; /* bytes read, not yet given to the framer */
    size_t in_off, in_len;
    mwl_wbuf out; /* MLLP-framed ACKs not yet written */
    size_t out_off;
    uint64_t idle_timer;
    bool busy;    /* msg is with the intake thread */
    bool closing; /* close once `out` is written */
    feed_msg msg;
    char peer[80];
    mwl_net_addr addr; /* the peer's address, for the per-address limit */
    hl7_conn *prev, *next;
};

struct mwl_hl7_feed {
    mwl_hl7_feed_config cfg; /* the running settings (loop thread) */
    char db[MWL_HL7_FEED_PATH_MAX];
    char bind[MWL_NET_HOST_MAX]; /* resolved: "" = all addresses */
    mwl_tls *tls;
    mwl_server *srv;
    mwl_loop *loop;
    hl7_conn *conns;
    size_t conn_count;
    bool stopping;

    /* The intake thread and its queue. */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    feed_msg *queue_head, *queue_tail;
    size_t queue_len;    /* messages in the queue (under mu) */
    size_t senders;      /* open connections, for the commit delay (under mu) */
    uint64_t commit_us;  /* what the last commit took (intake thread) */
    unsigned skip_waits; /* batches that commit without the delay (intake thread) */
    bool quit;
    /* Mapping settings for the intake thread: replaced under mu (reload). */
    mwl_hl7_feed_config intake_cfg;
    mwl_store *store;
    uint64_t ack_serial;
    int64_t last_prune_ms;

    mwl_hl7_feed_stats stats; /* under mu */
};

/* ---- the intake thread: parse, map, apply, record, commit -------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* MSH-7 of our ACKs: local time, as HL7 TS without an offset. */
static void now_ts(char out[16])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    if (strftime(out, 16, "%Y%m%d%H%M%S", &tm) == 0)
        out[0] = 0;
}

/* MSH-10 of our ACKs: unique per process run and over restarts (time in
 * ms and a counter), at most 20 characters (HL7 ST 20). */
static void next_control_id(mwl_hl7_feed *feed, char out[24])
{
    feed->ack_serial++;
    snprintf(out, 24, "MWL%013lld%04u", (long long)(wall_ms() % 10000000000000LL),
             (unsigned)(feed->ack_serial % 10000u));
}

/* "ORM^O01" for the counters by type: printable ASCII only (it ends up
 * in a metrics label), cut to the room. */
static void set_type(feed_msg *msg, const mwl_hl7_msg *m)
{
    msg->type[0] = '\0';
    if (!m)
        return;
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    snprintf(msg->type, sizeof msg->type, "%s^%s", h->message_type ? h->message_type : "",
             h->trigger_event ? h->trigger_event : "");
    for (char *p = msg->type; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static void build_ack(mwl_hl7_feed *feed, const mwl_hl7_msg *m, const mwl_hl7_error *err, feed_msg *msg)
{
    set_type(msg, m);
    char ts[16], id[24];
    now_ts(ts);
    next_control_id(feed, id);
    msg->ack.len = 0;
    mwl_hl7_ack_build(m, err, id, ts, &msg->ack);
    msg->code = err ? err->ack : MWL_HL7_AA;
}

/* Copies UTF-8 text into a fixed buffer, whole characters only, so a cut
 * never leaves half a character; a byte that is not well-formed UTF-8
 * becomes '?', so the status page always gets valid text. */
static void copy_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = 0, len = src ? strlen(src) : 0;
    for (size_t i = 0; i < len;) {
        size_t k = mwl_utf8_decode((const uint8_t *)src + i, len - i, NULL);
        if (k == 0) {
            if (n + 1 >= cap)
                break;
            dst[n++] = '?';
            i++;
            continue;
        }
        if (n + k >= cap)
            break;
        memcpy(dst + n, src + i, k);
        n += k;
        i += k;
    }
    dst[n] = '\0';
}

/* Notes what `msg` was and got (after build_ack, which set its type and
 * code) for the status page; `text` is the plan's summary or the error. */
static void note_event(feed_msg *msg, const mwl_hl7_msg *m, const char *text)
{
    mwl_hl7_feed_event *ev = &msg->event;
    memset(ev, 0, sizeof *ev);
    int64_t ms = wall_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char when[24];
    if (gmtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) != 0)
        snprintf(ev->time, sizeof ev->time, "%s.%03dZ", when, (int)(ms % 1000));
    const mwl_hl7_msh *h = m ? mwl_hl7_header(m) : NULL;
    if (h) {
        char app[MWL_HL7_FEED_ID_LEN], fac[MWL_HL7_FEED_ID_LEN];
        copy_utf8(app, sizeof app, h->sending_application);
        copy_utf8(fac, sizeof fac, h->sending_facility);
        snprintf(ev->sender, sizeof ev->sender, "%s|%s", app, fac);
        copy_utf8(ev->control_id, sizeof ev->control_id, h->control_id);
    }
    memcpy(ev->type, msg->type, sizeof ev->type);
    snprintf(ev->ack, sizeof ev->ack, "%s",
             msg->code == MWL_HL7_AA   ? "AA"
             : msg->code == MWL_HL7_AE ? "AE"
                                       : "AR");
    copy_utf8(ev->text, sizeof ev->text, text);
}

/* Makes a batch's answers the feed's last message and last error. Only
 * once the batch is committed or given up: an AA that its commit then
 * loses is never shown. */
static void publish_events(mwl_hl7_feed *feed, const feed_msg *batch)
{
    pthread_mutex_lock(&feed->mu);
    for (const feed_msg *m = batch; m; m = m->next) {
        feed->stats.last_message = m->event;
        if (m->code != MWL_HL7_AA)
            feed->stats.last_error = m->event;
    }
    pthread_mutex_unlock(&feed->mu);
}

/* The intake log's key of a message: who sent it, its control ID, and a
 * digest of everything after its MSH. NULL when the message has no control
 * ID (it cannot be told apart from the next one, so it is never taken for
 * a resend). MSH-9 and MSH-18 are part of the key. The digest keeps a RIS that reuses control IDs (counters
 * reset daily, two interfaces with one name) from having a new order answered from the log and dropped; the
 * MSH is left out because engines that resend may stamp a new MSH-7. FNV-1a: telling a resend from another
 * message of the same sender needs no cryptographic hash. */
static const char *dedup_key(const mwl_hl7_msg *m, const uint8_t *data, size_t len, mwl_arena *arena)
{
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    if (!h || !h->control_id[0])
        return NULL;
    /* The MSH ends at the first terminator after where the parser found
     * it (a resend may come with or without a stray leading CR). */
    size_t body = mwl_hl7_msh_start(data, len);
    while (body < len && data[body] != '\r' && data[body] != '\n')
        body++;
    uint64_t fnv = 14695981039346656037ull;
    for (size_t i = body; i < len; i++) {
        fnv ^= data[i];
        fnv *= 1099511628211ull;
    }
    /* The message type and character set too: an ADT^A08 and an ADT^A31
     * with the same PID are different messages. */
    size_t n = strlen(h->sending_application) + strlen(h->sending_facility) + strlen(h->control_id) +
               strlen(h->message_type) + strlen(h->trigger_event) + strlen(h->charset) + 48;
    char *k = mwl_arena_alloc(arena, n);
    if (!k)
        return NULL;
    snprintf(k, n, "hl7|%s|%s|%s|%s^%s|%s|%016llx", h->sending_application, h->sending_facility,
             h->control_id, h->message_type, h->trigger_event, h->charset, (unsigned long long)fnv);
    return k;
}

static mwl_sps_ref ref_of(const mwl_hl7_step *s)
{
    mwl_sps_ref r = {s->study_uid, s->accession, s->sps_id, s->requested_procedure_id, NULL};
    return r;
}

/* The stored SPS `stored` with what `upd` sent laid over it: each element
 * present replaces the stored one (a zero-length one empties it), at the
 * top level and inside the SPS item; what was not sent stays. Text goes to
 * ISO_IR 192 when the two character sets differ. */
static int overlay(mwl_ds *stored, const mwl_ds *upd, mwl_arena *arena, mwl_diag *diag)
{
    mwl_charset scs, ucs;
    int rc = mwl_charset_of(stored, &scs, diag);
    if (rc == MWL_OK)
        rc = mwl_charset_of(upd, &ucs, diag);
    if (rc != MWL_OK)
        return rc;
    bool same = scs.count == ucs.count && memcmp(scs.ids, ucs.ids, scs.count) == 0;
    if (!same && !mwl_ds_text_is_ascii(upd) && !mwl_charset_is_utf8(&scs)) {
        mwl_charset utf8;
        rc = mwl_charset_parse("ISO_IR 192", 10, &utf8, diag);
        if (rc == MWL_OK)
            rc = mwl_ds_recode(stored, &utf8, diag);
        if (rc != MWL_OK)
            return rc;
    }
    (void)arena;
    for (size_t i = 0, n = mwl_ds_count(upd); rc == MWL_OK && i < n; i++) {
        const mwl_elem *e = mwl_ds_at(upd, i);
        if (e->tag == MWL_TAG_SpecificCharacterSet)
            continue;
        if (e->tag == MWL_TAG_ScheduledProcedureStepSequence && e->item_count == 1) {
            const mwl_elem *se = mwl_ds_find(stored, MWL_TAG_ScheduledProcedureStepSequence);
            if (se && se->item_count >= 1) {
                mwl_ds *sps = se->items[0];
                const mwl_ds *usps = e->items[0];
                for (size_t j = 0, m = mwl_ds_count(usps); rc == MWL_OK && j < m; j++) {
                    const mwl_elem *ue = mwl_ds_at(usps, j);
                    if (ue->tag != MWL_TAG_SpecificCharacterSet)
                        rc = mwl_ds_copy_elem(sps, ue);
                }
                continue;
            }
        }
        rc = mwl_ds_copy_elem(stored, e);
    }
    return rc;
}

/* Sets SPS Status in the (single) SPS item of `item`. */
static int set_item_status(mwl_ds *item, const char *status)
{
    const mwl_elem *se = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepSequence);
    if (!se || se->item_count < 1)
        return MWL_E_INVALID;
    return mwl_ds_set_str(se->items[0], MWL_TAG_ScheduledProcedureStepStatus, MWL_VR_CS, status);
}

/* Applies one step. MWL_OK; MWL_E_INVALID (the store refused the content:
 * diag); MWL_E_STORE / MWL_E_NOMEM (the batch is lost). */
static int apply_step(mwl_store *store, const mwl_hl7_step *s, const char *source, mwl_arena *arena,
                      int *hl7_code, mwl_diag *diag)
{
    mwl_sps_ref ref = ref_of(s);
    switch (s->op) {
    case MWL_HL7_STEP_CREATE: {
        /* A new order for a step that is already finished (a RIS
         * replaying old orders, a reused SPS ID) must not bring it back
         * to the modalities as SCHEDULED: refused, AE 205. A resend of a
         * step still open replaces it (the order sent again). */
        mwl_ds *stored = NULL;
        int rc = mwl_store_get(store, &ref, arena, &stored, NULL, diag);
        if (rc == MWL_OK) {
            const mwl_elem *se = mwl_ds_find(stored, MWL_TAG_ScheduledProcedureStepSequence);
            char status[20] = "";
            if (se && se->item_count >= 1 &&
                mwl_ds_copy_str(se->items[0], MWL_TAG_ScheduledProcedureStepStatus, 0, status,
                                sizeof status) != MWL_OK)
                status[0] = 0;
            if (strcmp(status, "COMPLETED") == 0 || strcmp(status, "DISCONTINUED") == 0 ||
                strcmp(status, "CANCELED") == 0) {
                mwl_diag_set(diag, 0, MWL_TAG_ScheduledProcedureStepID,
                             "step %s of study %s exists and is %s: a new order needs a new SPS ID",
                             s->sps_id ? s->sps_id : "", s->study_uid ? s->study_uid : "", status);
                *hl7_code = MWL_HL7_ERR_DUPLICATE_KEY;
                return MWL_E_INVALID;
            }
        } else if (rc != MWL_E_NOTFOUND && rc != MWL_E_INVALID) {
            return rc;
        }
        mwl_diag_clear(diag);
        if (s->status && (rc = set_item_status(s->item, s->status)) != MWL_OK)
            return rc;
        return mwl_store_put_item(store, s->item, source, NULL, NULL, diag);
    }
    case MWL_HL7_STEP_UPDATE: {
        mwl_ds *stored = NULL;
        int rc = mwl_store_get(store, &ref, arena, &stored, NULL, diag);
        if (rc == MWL_E_NOTFOUND) {
            /* An update of an order we never saw: the RIS sends whole
             * orders in XO, so store what came. */
            mwl_log(MWL_LOG_WARN, "hl7: change of an unknown step (SPS ID %s, Study UID %s): stored as new",
                    s->sps_id ? s->sps_id : "", s->study_uid ? s->study_uid : "");
            if (s->status && (rc = set_item_status(s->item, s->status)) != MWL_OK)
                return rc;
            return mwl_store_put_item(store, s->item, source, NULL, NULL, diag);
        }
        if (rc != MWL_OK)
            return rc;
        rc = overlay(stored, s->item, arena, diag);
        if (rc == MWL_OK && s->status)
            rc = set_item_status(stored, s->status);
        if (rc == MWL_OK)
            rc = mwl_store_put_item(store, stored, source, NULL, NULL, diag);
        return rc;
    }
    case MWL_HL7_STEP_STATUS: {
        if (!s->status)
            return MWL_OK;
        size_t n = 0;
        int rc = mwl_store_set_status(store, &ref, s->status, &n, diag);
        if (rc == MWL_E_NOTFOUND) {
            mwl_log(MWL_LOG_WARN,
                    "hl7: status %s for an unknown step (SPS ID %s, Study UID %s): nothing to change",
                    s->status, s->sps_id ? s->sps_id : "", s->study_uid ? s->study_uid : "");
            return MWL_OK;
        }
        return rc;
    }
    }
    return MWL_E_INVALID;
}

/* Applies a plan inside the open savepoint. As apply_step. */
static int apply_plan(mwl_store *store, const mwl_hl7_plan *p, const char *source, mwl_arena *arena,
                      int *hl7_code, mwl_diag *diag)
{
    size_t n = 0;
    switch (p->action) {
    case MWL_HL7_IGNORE: return MWL_OK;
    case MWL_HL7_ORDER:
        for (size_t i = 0; i < p->step_count; i++) {
            int rc = apply_step(store, &p->steps[i], source, arena, hl7_code, diag);
            if (rc != MWL_OK)
                return rc;
        }
        return MWL_OK;
    case MWL_HL7_PATIENT_UPDATE:
        return mwl_store_patient_update(store, p->patient_id, p->issuer && p->issuer[0] ? p->issuer : NULL,
                                        p->demographics, &n, diag);
    case MWL_HL7_PATIENT_MERGE:
        return mwl_store_patient_merge(store, p->prior_id,
                                       p->prior_issuer && p->prior_issuer[0] ? p->prior_issuer : NULL,
                                       p->patient_id, p->issuer, p->demographics, &n, diag);
    }
    return MWL_E_INVALID;
}

/* What processing one message came to. */
typedef enum { DONE_ANSWERED, DONE_LOST } outcome;

/* One message inside the open batch. DONE_LOST: the store failed, the
 * whole batch must be rolled back. */
static outcome process(mwl_hl7_feed *feed, feed_msg *msg, const mwl_hl7_map_config *mc,
                       const mwl_hl7_parse_options *po, mwl_arena *arena)
{
    mwl_store *store = feed->store;
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error err;
    memset(&err, 0, sizeof err);
    int rc = mwl_hl7_parse(msg->data, msg->len, po, arena, &m, &err);
    if (rc != MWL_OK && err.ack == MWL_HL7_AA)
        mwl_hl7_error_set(&err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0, "%s", mwl_status_str(rc));
    if (rc != MWL_OK && !m) {
        /* Not even an MSH: nothing to remember it by. */
        mwl_log(MWL_LOG_WARN, "hl7 %s: message refused (%s): %s", msg->conn->peer,
                err.ack == MWL_HL7_AE ? "AE" : "AR", err.text);
        build_ack(feed, NULL, &err, msg);
        note_event(msg, NULL, err.text);
        return DONE_ANSWERED;
    }
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    mwl_diag diag;
    mwl_diag_clear(&diag);
    const char *key = dedup_key(m, msg->data, msg->len, arena);
    if (key) {
        const char *reply = NULL;
        int lr = mwl_store_intake_lookup(store, key, arena, &reply, &diag);
        if (lr == MWL_OK) {
            msg->ack.len = 0;
            mwl_wbuf_put(&msg->ack, reply, strlen(reply));
            char code[3] = "", ctl[128] = "", text[256] = "";
            msg->code = mwl_hl7_ack_read((const uint8_t *)reply, strlen(reply), code, ctl, sizeof ctl, text,
                                         sizeof text) != MWL_OK
                            ? MWL_HL7_AR
                        : strcmp(code, "AA") == 0 ? MWL_HL7_AA
                        : strcmp(code, "AE") == 0 ? MWL_HL7_AE
                                                  : MWL_HL7_AR;
            mwl_log(MWL_LOG_INFO, "hl7 %s: %s^%s %s from %s|%s again: answered as before, not applied again",
                    msg->conn->peer, h->message_type, h->trigger_event, h->control_id, h->sending_application,
                    h->sending_facility);
            set_type(msg, m);
            /* A resend that was refused the first time shows that error again. */
            note_event(msg, m,
                       msg->code == MWL_HL7_AA ? "a resend: answered as before, not applied again" : text);
            pthread_mutex_lock(&feed->mu);
            feed->stats.duplicates++;
            pthread_mutex_unlock(&feed->mu);
            return DONE_ANSWERED;
        }
        if (lr != MWL_E_NOTFOUND) {
            mwl_log(MWL_LOG_ERROR, "hl7: intake log: %s", diag.msg);
            return DONE_LOST;
        }
    }
    mwl_hl7_plan plan;
    memset(&plan, 0, sizeof plan);
    if (rc == MWL_OK)
        rc = mwl_hl7_map(m, mc, arena, &plan, &err);
    if (rc == MWL_E_NOMEM)
        return DONE_LOST;
    bool applied = false;
    if (rc == MWL_OK) {
        char source[160];
        snprintf(source, sizeof source, "hl7:%s|%s|%s", h->sending_application, h->sending_facility,
                 h->control_id);
        if (mwl_store_savepoint(store, &diag) != MWL_OK)
            return DONE_LOST;
        int hl7_code = MWL_HL7_ERR_DATA_TYPE; /* what a refusal of the store's checks is */
        rc = apply_plan(store, &plan, source, arena, &hl7_code, &diag);
        if (rc == MWL_E_STORE || rc == MWL_E_NOMEM || rc == MWL_E_INTERNAL) {
            mwl_log(MWL_LOG_ERROR, "hl7: store: %s", diag.msg[0] ? diag.msg : mwl_status_str(rc));
            return DONE_LOST;
        }
        if (rc != MWL_OK) {
            if (mwl_store_rollback_to(store) != MWL_OK)
                return DONE_LOST;
            /* The store's checks (mwl_worklist_check_item) refused what the
             * mapping made: a content error of the message. */
            char seg[4];
            unsigned field = 0;
            if (!diag.tag || !mwl_hl7_locate(m, diag.tag, seg, &field))
                seg[0] = 0;
            mwl_hl7_error_set(&err, MWL_HL7_AE, hl7_code, seg, seg[0] ? 1 : 0, field, 0, "%s",
                              diag.msg[0] ? diag.msg : mwl_status_str(rc));
        } else {
            applied = true;
        }
    }
    build_ack(feed, m, applied ? NULL : &err, msg);
    note_event(msg, m, applied ? (plan.summary ? plan.summary : "applied") : err.text);
    /* The answer is remembered with the change, in the same savepoint, so
     * a resend after a lost ACK gets this ACK and changes nothing. An AR
     * is not remembered: it judges the sender's set-up (type, version,
     * processing ID), not the content, and the same message sent again
     * after the set-up is fixed must be taken. */
    if (key && (applied || err.ack != MWL_HL7_AR)) {
        char *text = mwl_arena_strndup(arena, (const char *)msg->ack.data, msg->ack.len);
        if (!text || mwl_store_intake_record(store, key, text, &diag) != MWL_OK) {
            mwl_log(MWL_LOG_ERROR, "hl7: intake log: %s", diag.msg);
            return DONE_LOST;
        }
    }
    if (applied && mwl_store_release(store, &diag) != MWL_OK)
        return DONE_LOST;
    if (applied)
        mwl_log(MWL_LOG_INFO, "hl7 %s: %s^%s %s from %s|%s: %s", msg->conn->peer, h->message_type,
                h->trigger_event, h->control_id, h->sending_application, h->sending_facility,
                plan.summary ? plan.summary : "applied");
    else
        mwl_log(MWL_LOG_WARN, "hl7 %s: %s^%s %s from %s|%s refused (%s, %s %s-%u): %s", msg->conn->peer,
                h->message_type, h->trigger_event, h->control_id, h->sending_application, h->sending_facility,
                err.ack == MWL_HL7_AR ? "AR" : "AE", err.segment[0] ? err.segment : "message",
                err.segment[0] ? err.segment : "", err.field, err.text);
    return DONE_ANSWERED;
}

static void answer_all_lost(mwl_hl7_feed *feed, feed_msg *batch, const char *charset, const char *why)
{
    for (feed_msg *m = batch; m; m = m->next) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_hl7_msg *parsed = NULL;
        mwl_hl7_error e;
        memset(&e, 0, sizeof e);
        mwl_hl7_parse_options po = {charset, 0};
        if (mwl_hl7_parse(m->data, m->len, &po, &arena, &parsed, &e) != MWL_OK && !parsed)
            parsed = NULL; /* the ACK then has an empty MSA-2 */
        mwl_hl7_error_set(&e, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0,
                          "not stored (%s); send it again later", why);
        build_ack(feed, parsed, &e, m);
        note_event(m, parsed, e.text); /* before the arena that holds `parsed` goes */
        mwl_arena_clear(&arena);
    }
}

static void post_back(mwl_hl7_feed *feed, feed_msg *batch);

static int open_store(mwl_hl7_feed *feed, mwl_diag *diag)
{
    if (feed->store)
        return MWL_OK;
    mwl_store_options so = {false, NULL, "sqlite.synchronous=full"};
    return mwl_store_open(feed->db, &so, &feed->store, diag);
}

static void prune_log(mwl_hl7_feed *feed, uint32_t hours)
{
    int64_t now = wall_ms();
    if (now - feed->last_prune_ms < 600000)
        return;
    feed->last_prune_ms = now;
    size_t removed = 0;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (mwl_store_intake_prune(feed->store, now - (int64_t)hours * 3600000, &removed, &d) != MWL_OK)
        mwl_log(MWL_LOG_WARN, "hl7: pruning the intake log: %s", d.msg);
    else if (removed)
        mwl_log(MWL_LOG_DEBUG, "hl7: %zu answered messages older than %u hours forgotten", removed, hours);
}

/* Most messages in one transaction: bounds the time the first one waits. */
#define BATCH_MAX 256
/* The longest a batch waits for more messages before it commits (below). */
#define COMMIT_DELAY_MAX_US 2000u

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Group commit with a bounded delay (under mu, the queue not empty). A
 * sender waits for its ACK before it sends again, so with several
 * connections the orders that arrive while a commit syncs make the next
 * batch, and the senders fall into cohorts that never meet: on a disk
 * whose sync takes milliseconds, four connections put about two orders in
 * each commit. Waiting a little for the other connections' next orders --
 * at most half of what the last commit took, never over
 * COMMIT_DELAY_MAX_US, and only while fewer orders are queued than
 * connections are open -- lets one commit carry them all. One connection
 * never waits: nothing else could come. An open connection need not send
 * (a RIS may keep a second one idle): a wait that brought nothing turns
 * the delay off for the next WAIT_SKIP batches, so idle connections cost
 * at most one wasted wait in WAIT_SKIP + 1 commits. */
#define WAIT_SKIP 16u

static void wait_for_more(mwl_hl7_feed *feed)
{
    if (feed->senders < 2 || feed->queue_len >= feed->senders)
        return;
    if (feed->skip_waits) {
        feed->skip_waits--;
        return;
    }
    uint64_t wait = feed->commit_us / 2;
    if (wait > COMMIT_DELAY_MAX_US)
        wait = COMMIT_DELAY_MAX_US;
    if (wait < 50)
        return; /* a fast disk: waiting would cost more than it saves */
    uint64_t until = mono_us() + wait;
    struct timespec ts = {(time_t)(until / 1000000u), (long)(until % 1000000u) * 1000};
    size_t before = feed->queue_len;
    while (!feed->quit && feed->queue_len < feed->senders && feed->queue_len < BATCH_MAX)
        if (pthread_cond_timedwait(&feed->cv, &feed->mu, &ts) != 0)
            break; /* the time is up */
    if (feed->queue_len == before)
        feed->skip_waits = WAIT_SKIP;
}

static void *intake_main(void *arg)
{
    mwl_hl7_feed *feed = arg;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    for (;;) {
        pthread_mutex_lock(&feed->mu);
        while (!feed->queue_head && !feed->quit)
            pthread_cond_wait(&feed->cv, &feed->mu);
        if (!feed->queue_head && feed->quit) {
            pthread_mutex_unlock(&feed->mu);
            break;
        }
        wait_for_more(feed);
        feed_msg *batch = feed->queue_head, *last = batch;
        size_t n = 1;
        while (last->next && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        feed->queue_head = last->next;
        feed->queue_len -= n;
        if (!feed->queue_head)
            feed->queue_tail = NULL;
        last->next = NULL;
        mwl_hl7_feed_config cfg = feed->intake_cfg; /* the settings this batch uses */
        pthread_mutex_unlock(&feed->mu);

        mwl_hl7_map_config mc;
        map_config_of(&cfg, &mc);
        mwl_hl7_parse_options po = {cfg.charset, 0};
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = open_store(feed, &diag);
        if (rc == MWL_OK)
            rc = mwl_store_begin(feed->store, &diag);
        bool lost = rc != MWL_OK;
        for (feed_msg *m = batch; m && !lost; m = m->next) {
            mwl_arena_clear(&arena);
            lost = process(feed, m, &mc, &po, &arena) == DONE_LOST;
        }
        mwl_arena_clear(&arena);
        if (!lost) {
            /* synchronous=full: the commit returns once the WAL is synced,
             * so every AA below stands for a change on disk. */
            uint64_t t0 = mono_us();
            rc = mwl_store_commit(feed->store, &diag);
            feed->commit_us = mono_us() - t0;
            lost = rc != MWL_OK;
        }
        if (lost) {
            mwl_log(MWL_LOG_ERROR, "hl7: %zu messages not stored: %s", n,
                    diag.msg[0] ? diag.msg : "the store failed");
            if (feed->store && mwl_store_in_batch(feed->store))
                (void)mwl_store_rollback(feed->store);
            answer_all_lost(feed, batch, cfg.charset, diag.msg[0] ? diag.msg : "the store failed");
            /* A broken connection is reopened for the next batch. */
            mwl_store_free(feed->store);
            feed->store = NULL;
        } else {
            pthread_mutex_lock(&feed->mu);
            feed->stats.commits++;
            pthread_mutex_unlock(&feed->mu);
            prune_log(feed, cfg.dedup_hours);
        }
        publish_events(feed, batch);
        post_back(feed, batch);
    }
    mwl_arena_clear(&arena);
    return NULL;
}

/* ---- the loop side: connections ---------------------------------------------- */

static void conn_update(hl7_conn *c);
static void conn_pump(hl7_conn *c);

static void conn_free(hl7_conn *c)
{
    mwl_hl7_feed *feed = c->feed;
    if (c->prev)
        c->prev->next = c->next;
    else
        feed->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    feed->conn_count--;
    pthread_mutex_lock(&feed->mu);
    feed->senders = feed->conn_count;
    pthread_mutex_unlock(&feed->mu);
    mwl_mllp_clear(&c->framer);
    mwl_wbuf_clear(&c->out);
    mwl_wbuf_clear(&c->msg.ack);
    free(c->msg.data);
    free(c);
}

/* Closes the transport; the struct goes when its message is back. */
static void conn_close(hl7_conn *c, const char *why)
{
    mwl_hl7_feed *feed = c->feed;
    if (c->conn) {
        if (why)
            mwl_log(MWL_LOG_INFO, "hl7 %s: closed (%s)", c->peer, why);
        if (c->io)
            mwl_loop_remove(feed->loop, c->io);
        c->io = NULL;
        if (c->idle_timer)
            (void)mwl_loop_timer_cancel(feed->loop, c->idle_timer);
        c->idle_timer = 0;
        mwl_conn_close(c->conn);
        c->conn = NULL;
    }
    if (!c->busy)
        conn_free(c);
}

static void on_idle(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    hl7_conn *c = user;
    c->idle_timer = 0;
    if (c->busy) /* our turn, not the peer's: wait for the intake thread */
        return;
    conn_close(c, "idle");
}

static void arm_idle(hl7_conn *c)
{
    mwl_hl7_feed *feed = c->feed;
    uint64_t at = mwl_deadline_in(feed->cfg.idle_timeout_ms);
    if (c->idle_timer && mwl_loop_timer_move(feed->loop, c->idle_timer, at) == MWL_OK)
        return;
    c->idle_timer = 0;
    if (mwl_loop_timer_add(feed->loop, at, on_idle, c, &c->idle_timer) != MWL_OK)
        c->idle_timer = 0;
}

/* Writes what is queued. false when the connection was closed. */
static bool conn_flush(hl7_conn *c)
{
    while (c->out_off < c->out.len) {
        size_t n = 0;
        int rc = mwl_conn_write(c->conn, c->out.data + c->out_off, c->out.len - c->out_off, &n);
        if (rc == MWL_AGAIN)
            return true;
        if (rc != MWL_OK) {
            conn_close(c, rc == MWL_E_CLOSED ? "peer gone before its ACK was written" : "write failed");
            return false;
        }
        c->out_off += n;
    }
    c->out.len = 0;
    c->out_off = 0;
    if (c->closing) {
        conn_close(c, NULL);
        return false;
    }
    return true;
}

static void submit(hl7_conn *c, const uint8_t *payload, size_t len)
{
    mwl_hl7_feed *feed = c->feed;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        conn_close(c, "out of memory");
        return;
    }
    memcpy(copy, payload, len);
    free(c->msg.data);
    c->msg.data = copy;
    c->msg.len = len;
    c->msg.conn = c;
    c->msg.next = NULL;
    c->busy = true;
    pthread_mutex_lock(&feed->mu);
    if (feed->queue_tail)
        feed->queue_tail->next = &c->msg;
    else
        feed->queue_head = &c->msg;
    feed->queue_tail = &c->msg;
    feed->queue_len++;
    pthread_cond_signal(&feed->cv);
    pthread_mutex_unlock(&feed->mu);
}

/* Gives buffered bytes to the framer and reads more, until a message goes
 * to the intake thread, the socket has nothing more, or the connection
 * ends. Bounded: one read buffer per call beyond what was buffered. */
static void conn_pump(hl7_conn *c)
{
    mwl_hl7_feed *feed = c->feed;
    for (int reads = 0; c->conn && !c->busy && !c->closing;) {
        if (c->in_off < c->in_len) {
            size_t used = 0;
            const uint8_t *payload = NULL;
            size_t plen = 0;
            int rc =
                mwl_mllp_feed(&c->framer, c->in + c->in_off, c->in_len - c->in_off, &used, &payload, &plen);
            c->in_off += used;
            if (rc == MWL_OK) {
                submit(c, payload, plen);
                break;
            }
            if (rc == MWL_E_LIMIT) {
                mwl_log(MWL_LOG_WARN, "hl7 %s: a message longer than hl7-max-message (%u bytes)", c->peer,
                        (unsigned)feed->cfg.max_message);
                conn_close(c, "message too long");
                return;
            }
            if (rc != MWL_AGAIN) {
                conn_close(c, mwl_status_str(rc));
                return;
            }
            continue;
        }
        if (feed->stopping && !mwl_mllp_partial(&c->framer)) {
            /* Draining: the message in hand is answered, no new one taken. */
            c->closing = true;
            break;
        }
        if (reads++ > 0 && mwl_conn_pending(c->conn) == 0)
            break;
        size_t n = 0;
        int rc = mwl_conn_read(c->conn, c->in, sizeof c->in, &n);
        if (rc == MWL_AGAIN)
            break;
        if (rc != MWL_OK) {
            const char *why = rc == MWL_E_CLOSED
                                  ? (mwl_mllp_partial(&c->framer) ? "peer closed mid-message" : "peer closed")
                                  : "read failed";
            const char *tls = mwl_conn_error_text(c->conn);
            if (tls && tls[0])
                mwl_log(MWL_LOG_INFO, "hl7 %s: %s", c->peer, tls);
            conn_close(c, why);
            return;
        }
        c->in_off = 0;
        c->in_len = n;
        arm_idle(c);
    }
    if (c->conn && c->closing && c->out.len == 0 && !c->busy) {
        conn_close(c, NULL);
        return;
    }
    if (c->conn)
        conn_update(c);
}

/* Poll for what the connection waits for: output to write, or (when no
 * message is out) input. */
static void conn_update(hl7_conn *c)
{
    if (!c->conn || !c->io)
        return;
    unsigned want = 0;
    if (c->out.len > c->out_off)
        want |= MWL_NET_WRITE;
    if (!c->busy && !c->closing)
        want |= MWL_NET_READ;
    unsigned t = mwl_conn_wants(c->conn);
    if (want && t)
        want |= t; /* TLS: a read may need the socket writable, and back */
    mwl_loop_set_interest(c->feed->loop, c->io, want);
}

static void on_conn_io(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)loop;
    (void)io;
    hl7_conn *c = user;
    if (c->out.len > c->out_off && (events & (MWL_NET_WRITE | MWL_NET_ERROR | MWL_NET_READ))) {
        if (!conn_flush(c))
            return;
    }
    if (!c->busy)
        conn_pump(c);
    else
        conn_update(c);
}

/* One answer in the counters by type: a linear search of at most
 * MWL_HL7_FEED_TYPES_MAX short strings, under the feed's mutex. */
static void count_type(mwl_hl7_feed_stats *st, const char *type, mwl_hl7_ack_code code)
{
    size_t i = 0;
    while (i < st->type_count && strcmp(st->by_type[i].type, type) != 0)
        i++;
    if (i == st->type_count) {
        /* Full: the row after the last type is "other". */
        i = st->type_count < MWL_HL7_FEED_TYPES_MAX ? st->type_count : MWL_HL7_FEED_TYPES_MAX;
        if (i == st->type_count) {
            snprintf(st->by_type[i].type, sizeof st->by_type[i].type, "%s",
                     i == MWL_HL7_FEED_TYPES_MAX ? "other" : type);
            st->type_count++;
        }
    }
    if (code == MWL_HL7_AA)
        st->by_type[i].aa++;
    else if (code == MWL_HL7_AE)
        st->by_type[i].ae++;
    else
        st->by_type[i].ar++;
}

/* On the loop thread: the intake thread's answer for one connection. */
static void on_answer(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    feed_msg *msg = (feed_msg *)task;
    hl7_conn *c = msg->conn;
    mwl_hl7_feed *feed = c->feed;
    c->busy = false;
    pthread_mutex_lock(&feed->mu);
    feed->stats.messages++;
    if (msg->code == MWL_HL7_AA)
        feed->stats.aa++;
    else if (msg->code == MWL_HL7_AE)
        feed->stats.ae++;
    else
        feed->stats.ar++;
    count_type(&feed->stats, msg->type, msg->code);
    pthread_mutex_unlock(&feed->mu);
    free(msg->data);
    msg->data = NULL;
    if (!c->conn) {
        conn_free(c);
        return;
    }
    mwl_mllp_wrap(msg->ack.data, msg->ack.len, &c->out);
    msg->ack.len = 0;
    if (c->out.status != MWL_OK) {
        conn_close(c, "out of memory");
        return;
    }
    arm_idle(c);
    if (!conn_flush(c))
        return;
    conn_pump(c); /* a message the peer sent behind this one */
}

static void post_back(mwl_hl7_feed *feed, feed_msg *batch)
{
    while (batch) {
        feed_msg *next = batch->next;
        batch->next = NULL;
        batch->task.fn = on_answer;
        mwl_loop_post(feed->loop, &batch->task);
        batch = next;
    }
}

/* Same peer address (max-peer-connections counts per address, whatever
 * the port). mwl_net_addr has no padding and zeroes unused bytes. */
static bool same_addr(const mwl_net_addr *a, const mwl_net_addr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

static int on_accept(void *user, mwl_server *srv, mwl_conn *conn)
{
    mwl_hl7_feed *feed = user;
    feed->srv = srv;
    feed->loop = mwl_server_loop(srv);
    const mwl_server_config *sc = mwl_server_get_config(srv);
    char peer[80];
    snprintf(peer, sizeof peer, "%s", mwl_conn_peer(conn));
    mwl_net_addr addr;
    if (mwl_net_addr_from_peer(peer, &addr) != MWL_OK)
        memset(&addr, 0, sizeof addr); /* not an IP peer (a test's socketpair): counted together */
    const char *refuse = NULL;
    size_t same = 0;
    for (hl7_conn *o = feed->conns; o; o = o->next)
        if (o->conn && same_addr(&o->addr, &addr))
            same++;
    if (feed->stopping)
        refuse = "shutting down";
    else if (!mwl_allow_peer_address(&sc->allow, peer))
        refuse = "address not allowed (allow rules)";
    else if (feed->conn_count >= feed->cfg.max_connections)
        refuse = "hl7-max-connections reached";
    else if (same >= sc->max_peer_connections)
        refuse = "max-peer-connections reached for this address";
    hl7_conn *c = NULL;
    if (!refuse && !(c = calloc(1, sizeof *c)))
        refuse = "out of memory";
    if (refuse) {
        mwl_log(MWL_LOG_WARN, "hl7 %s: connection refused: %s", peer, refuse);
        mwl_conn_close(conn);
        pthread_mutex_lock(&feed->mu);
        feed->stats.refused++;
        pthread_mutex_unlock(&feed->mu);
        return MWL_E_LIMIT;
    }
    c->feed = feed;
    c->conn = conn;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->addr = addr;
    mwl_mllp_init(&c->framer, feed->cfg.max_message, NULL);
    mwl_wbuf_init(&c->out, NULL);
    mwl_wbuf_init(&c->msg.ack, NULL);
    c->next = feed->conns;
    if (c->next)
        c->next->prev = c;
    feed->conns = c;
    feed->conn_count++;
    pthread_mutex_lock(&feed->mu);
    feed->senders = feed->conn_count;
    pthread_mutex_unlock(&feed->mu);
    if (mwl_loop_add(feed->loop, mwl_conn_fd(conn), MWL_NET_READ, on_conn_io, c, &c->io) != MWL_OK) {
        c->io = NULL;
        conn_close(c, "no room in the loop");
        return MWL_E_LIMIT;
    }
    pthread_mutex_lock(&feed->mu);
    feed->stats.connections++;
    pthread_mutex_unlock(&feed->mu);
    mwl_log(MWL_LOG_DEBUG, "hl7 %s: connected (%s)", c->peer, mwl_conn_transport(conn));
    arm_idle(c);
    return MWL_OK;
}

static int on_wrap(void *user, mwl_conn *conn, mwl_conn **out, mwl_diag *diag)
{
    mwl_hl7_feed *feed = user;
    return mwl_tls_wrap(feed->tls, conn, NULL, out, diag);
}

static void on_stop(void *user, bool now)
{
    mwl_hl7_feed *feed = user;
    feed->stopping = true;
    for (hl7_conn *c = feed->conns, *next; c; c = next) {
        next = c->next;
        if (!c->conn)
            continue;
        if (now || (!c->busy && c->out.len == 0 && !mwl_mllp_partial(&c->framer)))
            conn_close(c, now ? "shutdown" : NULL);
        else if (c->busy || c->out.len > 0)
            c->closing = true; /* answered, then closed (conn_flush) */
        /* else: a message half received: taken, answered, then closed (conn_pump) */
    }
}

static size_t on_active(void *user)
{
    mwl_hl7_feed *feed = user;
    return feed->conn_count;
}

/* ---- life cycle -------------------------------------------------------------- */

int mwl_hl7_feed_new(const mwl_hl7_feed_config *cfg, const mwl_server_config *server, const char *db,
                     mwl_hl7_feed **out, mwl_diag *diag)
{
    *out = NULL;
    int rc = mwl_hl7_feed_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    if (strlen(db) >= MWL_HL7_FEED_PATH_MAX) {
        mwl_diag_set(diag, 0, 0, "db: path too long");
        return MWL_E_INVALID;
    }
    mwl_hl7_feed *feed = calloc(1, sizeof *feed);
    if (!feed)
        return MWL_E_NOMEM;
    feed->cfg = *cfg;
    feed->intake_cfg = *cfg;
    snprintf(feed->db, sizeof feed->db, "%s", db);
    /* hl7-bind "" follows the DICOM bind; "*" is every address. */
    snprintf(feed->bind, sizeof feed->bind, "%s",
             cfg->bind[0] == 0             ? server->bind
             : strcmp(cfg->bind, "*") == 0 ? ""
                                           : cfg->bind);
    pthread_mutex_init(&feed->mu, NULL);
    /* The commit delay waits on the monotonic clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&feed->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (cfg->tls) {
        if (!server->tls_cert[0] || !server->tls_key[0]) {
            mwl_diag_set(diag, 0, 0, "hl7-tls: needs tls-cert and tls-key");
            mwl_hl7_feed_free(feed);
            return MWL_E_INVALID;
        }
        mwl_tls_config tc;
        mwl_tls_config_init(&tc, true);
        tc.cert_file = server->tls_cert;
        tc.key_file = server->tls_key;
        tc.ca_file = server->tls_ca[0] ? server->tls_ca : NULL;
        tc.verify_peer = server->tls_verify_peer;
        rc = mwl_tls_new(&tc, NULL, &feed->tls, diag);
        if (rc != MWL_OK) {
            mwl_hl7_feed_free(feed);
            return rc;
        }
    }
    /* The store now, so a database that does not open is reported at
     * start-up (and its schema migrated before the first message). */
    rc = open_store(feed, diag);
    if (rc != MWL_OK) {
        mwl_hl7_feed_free(feed);
        return rc;
    }
    if (pthread_create(&feed->thread, NULL, intake_main, feed) != 0) {
        mwl_diag_set(diag, 0, 0, "cannot start the HL7 intake thread");
        mwl_hl7_feed_free(feed);
        return MWL_E_NOMEM;
    }
    feed->thread_started = true;
    *out = feed;
    return MWL_OK;
}

void mwl_hl7_feed_listener(mwl_hl7_feed *feed, mwl_listener_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->name = feed->cfg.tls ? "hl7-tls" : "hl7";
    spec->bind = feed->bind;
    uint16_t port = 0;
    mwl_diag d;
    if (mwl_net_parse_port(feed->cfg.port, &port, &d) != MWL_OK)
        port = 0; /* checked in mwl_hl7_feed_new */
    spec->port = port;
    spec->wrap = feed->tls ? on_wrap : NULL;
    spec->accept = on_accept;
    spec->stop = on_stop;
    spec->active = on_active;
    spec->user = feed;
    spec->max_connections = feed->cfg.max_connections;
    spec->max_jobs = 0;
}

int mwl_hl7_feed_reconfigure(mwl_hl7_feed *feed, const mwl_hl7_feed_config *cfg, mwl_diag *diag)
{
    int rc = mwl_hl7_feed_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_hl7_feed_config next = *cfg;
    /* What sizes or opens the listener stays until a restart. */
    memcpy(next.port, feed->cfg.port, sizeof next.port);
    memcpy(next.bind, feed->cfg.bind, sizeof next.bind);
    memcpy(next.port_file, feed->cfg.port_file, sizeof next.port_file);
    next.tls = feed->cfg.tls;
    next.max_connections = feed->cfg.max_connections;
    if (strcmp(cfg->port, feed->cfg.port) != 0 || strcmp(cfg->bind, feed->cfg.bind) != 0 ||
        cfg->tls != feed->cfg.tls || cfg->max_connections != feed->cfg.max_connections)
        mwl_log(MWL_LOG_WARN,
                "reload: hl7-port, hl7-bind, hl7-tls and hl7-max-connections change only with a "
                "restart");
    feed->cfg = next;
    pthread_mutex_lock(&feed->mu);
    feed->intake_cfg = next;
    pthread_mutex_unlock(&feed->mu);
    return MWL_OK;
}

void mwl_hl7_feed_get_stats(const mwl_hl7_feed *feed, mwl_hl7_feed_stats *out)
{
    mwl_hl7_feed *f = (mwl_hl7_feed *)feed;
    pthread_mutex_lock(&f->mu);
    *out = f->stats;
    pthread_mutex_unlock(&f->mu);
}

void mwl_hl7_feed_stop(mwl_hl7_feed *feed)
{
    if (!feed || !feed->thread_started)
        return;
    pthread_mutex_lock(&feed->mu);
    feed->quit = true;
    pthread_cond_signal(&feed->cv);
    pthread_mutex_unlock(&feed->mu);
    pthread_join(feed->thread, NULL);
    feed->thread_started = false;
}

void mwl_hl7_feed_free(mwl_hl7_feed *feed)
{
    if (!feed)
        return;
    mwl_hl7_feed_stop(feed);
    /* The loop is gone (mwl_server_free): close transports directly. */
    while (feed->conns) {
        hl7_conn *c = feed->conns;
        mwl_conn_close(c->conn);
        c->conn = NULL;
        c->busy = false;
        conn_free(c);
    }
    mwl_store_free(feed->store);
    mwl_tls_free(feed->tls);
    pthread_cond_destroy(&feed->cv);
    pthread_mutex_destroy(&feed->mu);
    free(feed);
}
