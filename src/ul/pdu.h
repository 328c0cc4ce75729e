/* DICOM Upper Layer PDU codec (PS3.8 §9.3, Annex D; PS3.7 Annex D.3.3):
 * the seven PDU types, their items and user-information sub-items, as
 * plain structs, decoded from and encoded to bytes. No I/O, no clock.
 *
 * Decoding follows picohttpparser's three outcomes: MWL_NEED_MORE until a
 * whole PDU is present, MWL_OK with the struct filled, or an error. Every
 * length read from the wire is checked against the bytes that remain and
 * against the caller's limits before anything is allocated from it. */
#ifndef MWL_UL_PDU_H
#define MWL_UL_PDU_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/status.h"

#define MWL_PDU_HEADER_SIZE 6
#define MWL_AE_TITLE_MAX 16 /* bytes, PS3.8 Table 9-11 */
#ifndef MWL_UID_MAX         /* also in dicom/dict.h; ul does not include dicom */
#define MWL_UID_MAX 64      /* bytes, PS3.5 §9.1 */
#endif
#define MWL_APPLICATION_CONTEXT_NAME "1.2.840.10008.3.1.1.1"

typedef enum mwl_pdu_type {
    MWL_PDU_ASSOCIATE_RQ = 0x01,
    MWL_PDU_ASSOCIATE_AC = 0x02,
    MWL_PDU_ASSOCIATE_RJ = 0x03,
    MWL_PDU_P_DATA_TF = 0x04,
    MWL_PDU_RELEASE_RQ = 0x05,
    MWL_PDU_RELEASE_RP = 0x06,
    MWL_PDU_ABORT = 0x07
} mwl_pdu_type;

/* Presentation context results (PS3.8 Table 9-18). */
enum {
    MWL_PCTX_ACCEPTANCE = 0,
    MWL_PCTX_USER_REJECTION = 1,
    MWL_PCTX_NO_REASON = 2,
    MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3,
    MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4
};

/* A-ASSOCIATE-RJ result / source / reason (PS3.8 Table 9-21). */
enum {
    MWL_RJ_RESULT_PERMANENT = 1,
    MWL_RJ_RESULT_TRANSIENT = 2,
    MWL_RJ_SOURCE_USER = 1,
    MWL_RJ_SOURCE_PROVIDER_ACSE = 2,
    MWL_RJ_SOURCE_PROVIDER_PRESENTATION = 3,
    MWL_RJ_USER_NO_REASON = 1,
    MWL_RJ_USER_APP_CONTEXT_NOT_SUPPORTED = 2,
    MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED = 3,
    MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED = 7,
    MWL_RJ_ACSE_NO_REASON = 1,
    MWL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED = 2,
    MWL_RJ_PRES_TEMPORARY_CONGESTION = 1,
    MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED = 2
};

/* A-ABORT source / provider reason (PS3.8 Table 9-26). */
enum {
    MWL_ABORT_SOURCE_USER = 0,
    MWL_ABORT_SOURCE_PROVIDER = 2,
    MWL_ABORT_REASON_NOT_SPECIFIED = 0,
    MWL_ABORT_UNRECOGNIZED_PDU = 1,
    MWL_ABORT_UNEXPECTED_PDU = 2,
    MWL_ABORT_UNRECOGNIZED_PDU_PARAMETER = 4,
    MWL_ABORT_UNEXPECTED_PDU_PARAMETER = 5,
    MWL_ABORT_INVALID_PDU_PARAMETER_VALUE = 6
};

/* PDV message control header bits (PS3.8 Annex E.2). */
enum { MWL_PDV_COMMAND = 0x01, MWL_PDV_LAST = 0x02 };

/* All strings below are NUL-terminated, with trailing NUL/space padding
 * removed; AE titles also lose leading spaces (they are not significant). */

typedef struct mwl_pctx_rq {        /* item 20H */
    uint8_t id;                     /* odd, 1..255 */
    const char *abstract_syntax;    /* sub-item 30H */
    const char **transfer_syntaxes; /* sub-items 40H, in the order proposed */
    size_t transfer_syntax_count;
} mwl_pctx_rq;

typedef struct mwl_pctx_ac { /* item 21H */
    uint8_t id;
    uint8_t result;              /* MWL_PCTX_* */
    const char *transfer_syntax; /* "" when absent; not significant unless accepted */
} mwl_pctx_ac;

typedef struct mwl_role_selection { /* sub-item 54H */
    const char *sop_class_uid;
    uint8_t scu_role; /* 0 or 1 */
    uint8_t scp_role;
} mwl_role_selection;

typedef struct mwl_ext_negotiation { /* sub-item 56H */
    const char *sop_class_uid;
    const uint8_t *info; /* application information bytes */
    size_t info_length;
} mwl_ext_negotiation;

typedef struct mwl_common_ext_negotiation { /* sub-item 57H (RQ only) */
    const char *sop_class_uid;
    const char *service_class_uid;
    const char **related_sop_classes;
    size_t related_count;
} mwl_common_ext_negotiation;

typedef struct mwl_user_identity_rq { /* sub-item 58H */
    uint8_t type;                     /* 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT */
    uint8_t positive_response_requested;
    const uint8_t *primary_field;
    size_t primary_length;
    const uint8_t *secondary_field; /* passcode for type 2 */
    size_t secondary_length;
} mwl_user_identity_rq;

typedef struct mwl_user_info {               /* item 50H */
    uint32_t max_length;                     /* sub-item 51H; 0 = unlimited */
    const char *implementation_class_uid;    /* 52H; "" when absent */
    const char *implementation_version_name; /* 55H; "" when absent */
    bool has_async_window;                   /* 53H */
    uint16_t max_operations_invoked;
    uint16_t max_operations_performed;
    mwl_role_selection *roles; /* 54H */
    size_t role_count;
    mwl_ext_negotiation *ext_negotiations; /* 56H */
    size_t ext_negotiation_count;
    mwl_common_ext_negotiation *common_ext_negotiations; /* 57H */
    size_t common_ext_negotiation_count;
    bool has_user_identity_rq; /* 58H */
    mwl_user_identity_rq user_identity_rq;
    bool has_user_identity_ac; /* 59H */
    const uint8_t *server_response;
    size_t server_response_length;
} mwl_user_info;

typedef struct mwl_assoc_rq {  /* PDU 01H */
    uint16_t protocol_version; /* bit 0 must be set */
    char called_ae[MWL_AE_TITLE_MAX + 1];
    char calling_ae[MWL_AE_TITLE_MAX + 1];
    uint8_t echo[64];                /* bytes 11-74 as received, echoed in the AC */
    const char *application_context; /* item 10H */
    mwl_pctx_rq *contexts;
    size_t context_count;
    mwl_user_info user_info;
} mwl_assoc_rq;

typedef struct mwl_assoc_ac { /* PDU 02H */
    uint16_t protocol_version;
    uint8_t echo[64]; /* bytes 11-74: as received in the RQ */
    const char *application_context;
    mwl_pctx_ac *contexts;
    size_t context_count;
    mwl_user_info user_info;
} mwl_assoc_ac;

typedef struct mwl_assoc_rj { /* PDU 03H */
    uint8_t result, source, reason;
} mwl_assoc_rj;

typedef struct mwl_abort { /* PDU 07H */
    uint8_t source, reason;
} mwl_abort;

typedef struct mwl_pdv { /* one PDV item of a P-DATA-TF */
    uint8_t context_id;
    uint8_t control; /* MWL_PDV_COMMAND | MWL_PDV_LAST */
    const uint8_t *data;
    size_t length;
} mwl_pdv;

typedef struct mwl_pdu {
    mwl_pdu_type type;
    uint32_t length; /* PDU-length field (bytes after the 6-byte header) */
    union {
        mwl_assoc_rq associate_rq;
        mwl_assoc_ac associate_ac;
        mwl_assoc_rj associate_rj;
        mwl_abort abort;
        struct {
            mwl_pdv *pdvs; /* data points into the input buffer */
            size_t pdv_count;
        } p_data;
    } u;
} mwl_pdu;

typedef struct mwl_pdu_limits {
    uint32_t max_pdu_length;      /* largest PDU-length field (excluding the 6-byte header) we accept */
    size_t max_contexts;          /* presentation context items; default 128 */
    size_t max_transfer_syntaxes; /* per context; default 64 */
    size_t max_sub_items;         /* role/extended-negotiation sub-items each, and related SOP classes
                                     in one 57H; default 128 */
    size_t max_pdvs;              /* PDVs per P-DATA-TF; default 1024 */
} mwl_pdu_limits;

MWL_API void mwl_pdu_limits_init(mwl_pdu_limits *lim);

/* Reads the 6-byte PDU header. Returns MWL_NEED_MORE if len < 6, else
 * MWL_OK with *type (as received, possibly unknown) and *pdu_length. */
MWL_API MWL_MUST_CHECK int mwl_pdu_peek_header(const uint8_t *in, size_t len, uint8_t *type,
                                               uint32_t *pdu_length);

/* Decodes one whole PDU starting at `in`. Returns:
 *   MWL_NEED_MORE     fewer than 6 + PDU-length bytes are present;
 *   MWL_OK            *out filled; *consumed = 6 + PDU-length. Strings,
 *                     arrays and byte fields (56H info, 58H/59H fields) are
 *                     allocated from `arena`; only PDV data points into `in`
 *                     (valid while the caller keeps `in`);
 *   MWL_E_UNSUPPORTED unknown PDU type (A-ABORT reason 1);
 *   MWL_E_LIMIT       PDU-length over lim->max_pdu_length, or too many items;
 *   MWL_E_MALFORMED   an item/sub-item length that runs past its parent, a
 *                     fixed-length PDU of the wrong length, a missing
 *                     mandatory item (A-ABORT reason 6 / 4); diag says which;
 *   MWL_E_NOMEM.
 * The limit check happens as soon as the header is present, so a 4 GiB
 * declared length fails with MWL_E_LIMIT without waiting for the bytes. */
MWL_API MWL_MUST_CHECK int mwl_pdu_decode(const uint8_t *in, size_t len, mwl_arena *arena,
                                          const mwl_pdu_limits *lim, mwl_pdu *out, size_t *consumed,
                                          mwl_diag *diag);

/* Encoders append one whole PDU to `out` and return MWL_OK, MWL_E_NOMEM,
 * or MWL_E_INVALID (a string too long for its field, an even or zero
 * context ID, more than 255 bytes where one byte counts). */
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_associate_rq(const mwl_assoc_rq *rq, mwl_wbuf *out);
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_associate_ac(const mwl_assoc_ac *ac, mwl_wbuf *out);
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_associate_rj(const mwl_assoc_rj *rj, mwl_wbuf *out);
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_release_rq(mwl_wbuf *out);
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_release_rp(mwl_wbuf *out);
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_abort(uint8_t source, uint8_t reason, mwl_wbuf *out);
/* One P-DATA-TF holding `count` PDVs (each fragment's bytes copied). */
MWL_API MWL_MUST_CHECK int mwl_pdu_encode_p_data(const mwl_pdv *pdvs, size_t count, mwl_wbuf *out);

/* Encodes any decoded PDU with the matching encoder above (same statuses;
 * MWL_E_INVALID for an unknown type). */
MWL_API MWL_MUST_CHECK int mwl_pdu_encode(const mwl_pdu *pdu, mwl_wbuf *out);

/* Compares two decoded PDUs field by field (not the PDU-length field):
 * strings, items and sub-items, byte fields, PDV data. Optional sub-item
 * fields count only when present. The A-ASSOCIATE-RQ echo bytes (raw bytes
 * 11-74) are compared only with `compare_rq_echo`: they need not survive a
 * round trip through the trimmed AE titles. On a difference *what (may be
 * NULL) names the first field that differs. */
MWL_API bool mwl_pdu_equal(const mwl_pdu *a, const mwl_pdu *b, bool compare_rq_echo, const char **what);

/* Fills the RQ's called/calling AE title fields and echo bytes from C
 * strings (<= 16 bytes each; MWL_E_INVALID otherwise). */
MWL_API MWL_MUST_CHECK int mwl_assoc_rq_set_titles(mwl_assoc_rq *rq, const char *called_ae,
                                                   const char *calling_ae);

#endif
