/* HL7 v2 order and patient feeds (IHE Radiology RAD-1/4/12/13), sans-IO:
 * the MLLP framer, the message parser, the acknowledgement builder and the
 * mapping of order and patient messages onto worklist items. Nothing here
 * touches a socket or the store: src/service/hl7_feed.c reads frames from
 * connections, applies what mwl_hl7_map plans to the store and sends the
 * acknowledgements. ../shared digest: spec/hl7.md; the mapping table and
 * site settings are documented in docs/hl7.md. */
#ifndef MWL_HL7_HL7_H
#define MWL_HL7_HL7_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/dataset.h"

/* ======================================================================
 * MLLP framing: 0x0B payload 0x1C 0x0D
 * ====================================================================== */

typedef struct mwl_mllp {
    uint8_t *buf; /* the frame being assembled (private) */
    size_t len, cap;
    size_t max;    /* longest payload accepted */
    bool in_frame; /* a start block was seen */
    bool skipping; /* discarding an oversize frame up to its end block */
    bool saw_fs;   /* the last byte was 0x1C */
    const mwl_mem *mem;
} mwl_mllp;

/* max_payload: longest message (bytes between the blocks). mem NULL =
 * default allocator. Never fails (storage grows on demand). */
MWL_API void mwl_mllp_init(mwl_mllp *f, size_t max_payload, const mwl_mem *mem);
MWL_API void mwl_mllp_clear(mwl_mllp *f); /* frees; NULL-safe */

/* Feeds bytes. Consumes up to `len` bytes (*consumed) and stops after the
 * first complete frame:
 *   MWL_OK          *payload, *payload_len: one message (valid until the
 *                   next call); bytes after it are not consumed;
 *   MWL_AGAIN       every byte consumed, no complete frame yet;
 *   MWL_E_LIMIT     a frame longer than max_payload, reported once when its
 *                   first excess byte arrives: its bytes are discarded up
 *                   to its end block (the caller answers or closes);
 *                   *consumed says how far;
 *   MWL_E_NOMEM     as MWL_E_LIMIT, for a frame we could not hold.
 * Bytes outside a frame are skipped (practice: resync on 0x0B); a 0x0B
 * inside an open frame drops the partial frame and starts anew. A 0x1C
 * ends the frame (a payload never holds one; many senders omit the CR);
 * the 0x0D that follows it is consumed, also when it arrives at the start
 * of the next call; any other byte after the 0x1C is left to the resync.
 * OK and E_LIMIT always consume at least one byte. */
MWL_API MWL_MUST_CHECK int mwl_mllp_feed(mwl_mllp *f, const uint8_t *data, size_t len, size_t *consumed,
                                         const uint8_t **payload, size_t *payload_len);
/* True while a frame is open: its start block came, its end block not yet
 * (also while an oversize frame is being discarded); for idle time-outs. */
MWL_API bool mwl_mllp_partial(const mwl_mllp *f);
/* Appends 0x0B payload 0x1C 0x0D to `out`. */
MWL_API void mwl_mllp_wrap(const void *payload, size_t len, mwl_wbuf *out);

/* ======================================================================
 * Errors as HL7 reports them (table 0357, ERR segment)
 * ====================================================================== */

typedef enum mwl_hl7_ack_code {
    MWL_HL7_AA = 0, /* accepted and applied */
    MWL_HL7_AE,     /* content error: ERR names the field */
    MWL_HL7_AR      /* rejected: type, event, version, processing ID, or we cannot now */
} mwl_hl7_ack_code;

/* HL7 table 0357 codes. */
enum {
    MWL_HL7_ERR_SEGMENT_SEQUENCE = 100,
    MWL_HL7_ERR_REQUIRED_MISSING = 101,
    MWL_HL7_ERR_DATA_TYPE = 102,
    MWL_HL7_ERR_TABLE_VALUE = 103,
    MWL_HL7_ERR_MESSAGE_TYPE = 200,
    MWL_HL7_ERR_EVENT = 201,
    MWL_HL7_ERR_PROCESSING_ID = 202,
    MWL_HL7_ERR_VERSION = 203,
    MWL_HL7_ERR_UNKNOWN_KEY = 204,
    MWL_HL7_ERR_DUPLICATE_KEY = 205,
    MWL_HL7_ERR_INTERNAL = 207
};

/* Where and why a message was refused: becomes MSA-1 and one ERR segment
 * (ERR-1 in 2.3.x, ERR-2..ERR-8 in 2.4 and later). */
typedef struct mwl_hl7_error {
    mwl_hl7_ack_code ack; /* AE or AR (AA = no error) */
    int code;             /* table 0357 */
    char segment[4];      /* "PID"; "" = the message as a whole */
    unsigned seq;         /* 1 = first segment of that name */
    unsigned field;       /* 0 = the segment as a whole */
    unsigned component;   /* 0 = the field as a whole */
    char text[160];       /* for people: "Patient ID missing", UTF-8 */
} mwl_hl7_error;

/* Fills *e (NULL-safe), printf-style text. */
MWL_API void mwl_hl7_error_set(mwl_hl7_error *e, mwl_hl7_ack_code ack, int code, const char *segment,
                               unsigned seq, unsigned field, unsigned component, const char *fmt, ...)
    MWL_PRINTF(8, 9);

/* ======================================================================
 * Messages
 * ====================================================================== */

/* MSH fields, decoded (UTF-8, escapes resolved; "" when absent). */
typedef struct mwl_hl7_msh {
    char field_sep, component_sep, repetition_sep, escape_char, subcomponent_sep;
    const char *sending_application;   /* MSH-3.1 */
    const char *sending_facility;      /* MSH-4.1 */
    const char *receiving_application; /* MSH-5.1 */
    const char *receiving_facility;    /* MSH-6.1 */
    const char *time;                  /* MSH-7.1 */
    const char *message_type;          /* MSH-9.1: "ORM" */
    const char *trigger_event;         /* MSH-9.2: "O01" */
    const char *structure;             /* MSH-9.3: "OMI_O23" or "" */
    const char *control_id;            /* MSH-10 */
    const char *processing_id;         /* MSH-11.1: P, T, D */
    const char *version;               /* MSH-12.1: "2.3.1", "2.5.1" */
    const char *accept_ack_type;       /* MSH-15 */
    const char *app_ack_type;          /* MSH-16 */
    const char *charset;               /* MSH-18 first repetition as sent: "UNICODE UTF-8", "8859/1", "" */
} mwl_hl7_msh;

typedef struct mwl_hl7_msg mwl_hl7_msg;
typedef struct mwl_hl7_seg mwl_hl7_seg;

typedef struct mwl_hl7_parse_options {
    /* Character set assumed when MSH-18 is empty, as an MSH-18 value
     * ("ASCII", "8859/1", "UNICODE UTF-8"). NULL = "8859/1": real feeds
     * send Latin-1 with MSH-18 empty, and every ASCII message is valid
     * Latin-1 too. */
    const char *default_charset;
    size_t max_segments; /* 0 = 10000 */
} mwl_hl7_parse_options;

/* Parses one message (an MLLP payload). The whole message is converted
 * from its character set (MSH-18, table 0211: ASCII, 8859/1..9 and /15,
 * ISO IR14, ISO IR87, ISO IR159, KS X 1001, GB 18030-2000, BIG-5,
 * UNICODE / UNICODE UTF-8) to UTF-8 before it is split, so multi-byte
 * text whose bytes look like delimiters (ISO 2022) stays whole.
 * Segments end at CR; a CR LF pair counts as one terminator; a message
 * without any CR is split at LF (otherwise an LF is data). Blank segments
 * (empty or only SP, TAB, LF) are skipped, and so are CR, LF, SP, TAB and
 * a UTF-8 BOM before MSH. Segment names are 3 of [A-Z0-9]. Segments are
 * kept in order and found by name: no group grammar is enforced.
 * Everything lives in `arena`. Returns:
 *   MWL_OK;
 *   MWL_E_MALFORMED  no MSH at the start, delimiters missing or repeated:
 *                    *err filled (AR or AE); *out is NULL unless the MSH
 *                    could be read, in which case *out holds it so an
 *                    ACK can still echo MSH-10;
 *   MWL_E_CHARSET    an unknown MSH-18, or bytes invalid in it (*err: AE
 *                    or AR, MSH-18 / the segment); *out as above;
 *   MWL_E_LIMIT      more segments than max_segments, more than 1000
 *                    fields in a segment or repetitions in a field
 *                    (*err AR 207; *out as above);
 *   MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_hl7_parse(const uint8_t *data, size_t len, const mwl_hl7_parse_options *opt,
                                         mwl_arena *arena, mwl_hl7_msg **out, mwl_hl7_error *err);
/* Where the MSH of a message starts: past a UTF-8 BOM and the stray
 * terminators and blanks mwl_hl7_parse tolerates before it. */
MWL_API size_t mwl_hl7_msh_start(const uint8_t *data, size_t len);

MWL_API const mwl_hl7_msh *mwl_hl7_header(const mwl_hl7_msg *m);
/* The DICOM Specific Character Set term MSH-18 corresponds to ("ISO_IR
 * 100", "ISO 2022 IR 87", "ISO_IR 192"; "" for ASCII; "ISO_IR 192" for
 * sets without a DICOM term, BIG-5). When MSH-18 is empty, that of the
 * default character set. Values are always UTF-8 after parsing; this is
 * for the record only. */
MWL_API const char *mwl_hl7_dicom_charset(const mwl_hl7_msg *m);

MWL_API size_t mwl_hl7_segment_count(const mwl_hl7_msg *m);
/* Segment i (0 = MSH), or NULL past the end. */
MWL_API const mwl_hl7_seg *mwl_hl7_segment_at(const mwl_hl7_msg *m, size_t i);
/* The first segment named `name` at index `from` or later, and its index
 * in *index (may be NULL); NULL when none. Loop with from = *index + 1. */
MWL_API const mwl_hl7_seg *mwl_hl7_find(const mwl_hl7_msg *m, const char *name, size_t from, size_t *index);
MWL_API const char *mwl_hl7_seg_name(const mwl_hl7_seg *s); /* "PID" */
/* 1-based position of `s` among the message's segments of its name. */
MWL_API unsigned mwl_hl7_seg_seq(const mwl_hl7_seg *s);
/* Number of fields of `s` as sent, trailing empty ones included (for MSH,
 * counting MSH-1): the last field number worth asking for. */
MWL_API size_t mwl_hl7_field_count(const mwl_hl7_seg *s);

/* What a position holds. */
typedef enum mwl_hl7_presence {
    MWL_HL7_ABSENT = 0, /* not sent (empty or beyond the end): keep what is stored */
    MWL_HL7_NULL,       /* sent as "" : delete what is stored */
    MWL_HL7_VALUE       /* a value */
} mwl_hl7_presence;

/* The value at field.repetition.component.subcomponent of `s` (all
 * 1-based; field numbers as HL7 counts them, so for MSH field 1 is the
 * field separator), escape sequences resolved (\F\ \S\ \T\ \R\ \E\ \P\,
 * \Xhh..\ as bytes of the message's character set, \.br\ as "\r\n"; other
 * formatting and \Z..\ sequences dropped), UTF-8. *value is "" unless
 * MWL_HL7_VALUE; never NULL. Values live in the message's arena (each
 * call allocates). Details:
 *  - NULL when the raw text at exactly this position is `""` (so a field
 *    `""` gives NULL at .1.1.1; `""^X` gives NULL at component 1 only);
 *  - ABSENT for position 0, past the end, empty, or when decoding leaves
 *    nothing (\H\ alone), and when the arena is out of memory;
 *  - MSH-1 and MSH-2 are returned literally at 1.1.1 (never split);
 *  - \Xhh..\ bytes invalid in the character set are dropped, the rest of
 *    the value kept; unknown and unterminated sequences are kept as sent;
 *    NUL bytes are dropped. */
MWL_API mwl_hl7_presence mwl_hl7_get(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field, unsigned rep,
                                     unsigned comp, unsigned sub, const char **value);
/* Number of repetitions of a field (0 when absent or empty). */
MWL_API unsigned mwl_hl7_reps(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field);
/* The raw (undecoded) text of a whole field, for logs. "" when absent. */
MWL_API const char *mwl_hl7_raw_field(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field);
/* Whether a whole field was sent: ABSENT (empty or past the last), NULL
 * (exactly ""), VALUE. Copies nothing, whatever the field's size. */
MWL_API mwl_hl7_presence mwl_hl7_field_presence(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field);

/* ======================================================================
 * Acknowledgements (original mode, as IHE profiles it)
 * ====================================================================== */

/* Builds the ACK for `orig` (may be NULL when even MSH could not be read:
 * the ACK then carries empty MSA-2): MSH with sending and receiving
 * application/facility swapped, MSH-7 = `now` (YYYYMMDDHHMMSS, caller's
 * clock), MSH-9 ACK^<event>^ACK for 2.4 and later, ACK^<event> before,
 * MSH-10 = `control_id`, MSH-11/12 copied (2.5.1 when unknown), MSH-18
 * "UNICODE UTF-8" when any text is not ASCII; MSA-1 from `err` (NULL or
 * err->ack AA = AA), MSA-2 = orig's MSH-10, MSA-3 the text for 2.3.x; an
 * ERR segment for AE/AR in the form of the message's version. Every
 * value is escaped with the original's delimiters. Appends the payload
 * (no MLLP blocks) to `out`, segments ended by CR. */
MWL_API void mwl_hl7_ack_build(const mwl_hl7_msg *orig, const mwl_hl7_error *err, const char *control_id,
                               const char *now, mwl_wbuf *out);

/* Reads an ACK (what mwl hl7send prints and checks): MSA-1 into `code`
 * ("AA", "AE", "AR", "CA", ...; "" when absent), MSA-2 into control_id,
 * the first error text (ERR-8, ERR-1.4.2, MSA-3) into text. Returns
 * MWL_OK or the parse error. */
MWL_API MWL_MUST_CHECK int mwl_hl7_ack_read(const uint8_t *data, size_t len, char code[3], char *control_id,
                                            size_t control_cap, char *text, size_t text_cap);

/* ======================================================================
 * Mapping onto the worklist (IHE RAD TF-2x Appendix B; docs/hl7.md)
 * ====================================================================== */

/* A site rule for the Scheduled Station AE Title and Station Name, when
 * the message carries none (always, in 2.3.1): the first rule whose
 * modality and location match gives them. "hl7-station" lines:
 *   MODALITY[@LOCATION] AET [STATION_NAME]
 * MODALITY "*" = any; LOCATION compared with PV1-3.1 (point of care) and
 * with IPC-8 / the SPS location. */
typedef struct mwl_hl7_station_rule {
    char modality[17];
    char location[65]; /* "" = any */
    char aet[17];
    char station_name[17]; /* "" = none */
} mwl_hl7_station_rule;

MWL_API MWL_MUST_CHECK int mwl_hl7_station_rule_parse(const char *text, mwl_hl7_station_rule *out,
                                                      mwl_diag *diag);
MWL_API int mwl_hl7_station_rule_format(const mwl_hl7_station_rule *r, char *out, size_t cap);

/* A default for an attribute the RIS leaves empty: "hl7-default" lines
 *   KEYWORD=VALUE   e.g. ScheduledStationAETitle=CT01, Modality=CT
 * (keywords of worklist keys, nested ones by their own keyword). */
typedef struct mwl_hl7_default {
    char keyword[64];
    char value[65];
} mwl_hl7_default;

MWL_API MWL_MUST_CHECK int mwl_hl7_default_parse(const char *text, mwl_hl7_default *out, mwl_diag *diag);
MWL_API int mwl_hl7_default_format(const mwl_hl7_default *d, char *out, size_t cap);

typedef enum mwl_hl7_uid_policy {
    MWL_HL7_UID_GENERATE = 0, /* no Study UID in the order: derive one from the order's identity */
    MWL_HL7_UID_REJECT        /* AE 101 at ZDS-1 / IPC-3 */
} mwl_hl7_uid_policy;

typedef struct mwl_hl7_map_config {
    const mwl_hl7_station_rule *stations;
    size_t station_count;
    const mwl_hl7_default *defaults;
    size_t default_count;
    /* Issuer of Patient ID taken as primary when PID-3 repeats (PID-3.4.1);
     * "" = the first repetition. Also the issuer given to IDs without one. */
    const char *patient_issuer;
    mwl_hl7_uid_policy uid_policy;
    /* Root for generated UIDs; NULL/"" = "2.25" (a UUID-derived UID). */
    const char *uid_root;
    /* Take the Scheduled Station AE Title from ORC-18 (a dcm4chee option)
     * when the message has no IPC-9. */
    bool station_aet_from_orc18;
} mwl_hl7_map_config;

MWL_API void mwl_hl7_map_config_init(mwl_hl7_map_config *cfg);

/* What a message asks of the worklist. */
typedef enum mwl_hl7_action {
    MWL_HL7_IGNORE = 0,     /* nothing to change; acknowledged AA (a response message, ...) */
    MWL_HL7_ORDER,          /* steps[]: create / update / status changes */
    MWL_HL7_PATIENT_UPDATE, /* demographics of patient_id/issuer on every item */
    MWL_HL7_PATIENT_MERGE   /* items of prior_id/prior_issuer move to patient_id/issuer */
} mwl_hl7_action;

typedef enum mwl_hl7_step_op {
    MWL_HL7_STEP_CREATE = 0, /* NW: store item (replaces the same SPS if resent) */
    MWL_HL7_STEP_UPDATE,     /* XO: overlay item's elements on the stored SPS
                              * (an element present replaces; zero-length
                              * clears; absent keeps), then status if set;
                              * stored as new when the SPS is unknown */
    MWL_HL7_STEP_STATUS      /* SC, CA, OC, DC: set status only */
} mwl_hl7_step_op;

/* One Scheduled Procedure Step the message names. */
typedef struct mwl_hl7_step {
    mwl_hl7_step_op op;
    /* A worklist item with exactly one SPS item in (0040,0100), in UTF-8
     * (Specific Character Set ISO_IR 192 when any text is not ASCII). For
     * CREATE complete (defaults applied); for UPDATE only what the message
     * sent; for STATUS the identity only (Study Instance UID, Accession
     * Number, Requested Procedure ID, SPS ID). */
    mwl_ds *item;
    const char *status; /* new SPS Status ("SCHEDULED", "STARTED", "COMPLETED",
                         * "DISCONTINUED", "CANCELED"); NULL = leave as is */
    const char *study_uid, *accession, *requested_procedure_id, *sps_id; /* identity, as in item */
    unsigned segment_seq; /* the OBR / IPC it came from, for errors */
} mwl_hl7_step;

typedef struct mwl_hl7_plan {
    mwl_hl7_action action;
    const char *summary; /* "ORM^O01 NW: 2 SPS of accession A1" for the log */
    mwl_hl7_step *steps;
    size_t step_count;
    /* Patient messages: the patient (PID-3 by the rule above) and, for a
     * merge, the prior one (MRG-1). */
    const char *patient_id, *issuer;
    const char *prior_id, *prior_issuer;
    /* Patient messages: the demographics the message sent (PID-5, 7, 8,
     * ...; same presence rules as UPDATE), top level only. */
    mwl_ds *demographics;
} mwl_hl7_plan;

/* Maps a parsed message. Accepted: ORM^O01, OMI^O23, OMG^O19 (order
 * control NW, XO, CA, OC, DC, SC; response and number-assignment codes are
 * IGNORE), ADT^A08 and A31 (update), A01/A04/A05 (update of patients that
 * have items), A40 (merge). Version 2.3 to 2.8. Everything in `arena`.
 * Returns MWL_OK with *plan filled, or MWL_E_INVALID with *err: AR for an
 * unsupported type/event/version/processing ID or order control, AE with
 * the field for content (Patient ID missing, bad date, unknown modality,
 * no Study UID under REJECT, a value too long for its DICOM VR, an
 * order control and status pair that changes nothing is IGNORE, not an
 * error). MWL_E_NOMEM. */
/* The HL7 field the mapping takes attribute `tag` from in messages like
 * `m` (the first source the message sent, else the table's first): for an
 * ERR segment when a later check (the store's) refuses the value. false
 * when no row maps `tag`. */
MWL_API bool mwl_hl7_locate(const mwl_hl7_msg *m, uint32_t tag, char segment[4], unsigned *field);

MWL_API MWL_MUST_CHECK int mwl_hl7_map(const mwl_hl7_msg *m, const mwl_hl7_map_config *cfg, mwl_arena *arena,
                                       mwl_hl7_plan *plan, mwl_hl7_error *err);

#endif
