/* DIMSE (PS3.7): command sets for C-ECHO, C-FIND and C-CANCEL (PS3.7 §9.3,
 * Annex E), reassembly of whole messages from PDVs and fragmentation of
 * messages into P-DATA-TF PDUs (PS3.8 Annex E), and the meaning of DIMSE
 * status codes (PS3.7 Annex C, PS3.4 K.4).
 *
 * Sans-IO like the upper layer (STYLE.md §4): PDVs in, messages out; bytes of
 * a message in, PDUs (or the PDVs of each PDU) out. Command sets are always
 * Implicit VR Little Endian (PS3.7 §6.3.1). Data sets are never decoded here:
 * their transfer syntax is the presentation context's, which only the driver
 * knows, so a message carries them as bytes for mwl_ds_decode(). */
#ifndef MWL_DIMSE_DIMSE_H
#define MWL_DIMSE_DIMSE_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/dataset.h"
#include "ul/pdu.h"

/* ======================================================================
 * Command sets (PS3.7 §6.3, §9.3, Annex E)
 * ====================================================================== */

/* CommandField (0000,0100) values, PS3.7 Table E.1-1. A response is its
 * request with bit 15 set. */
enum {
    MWL_DIMSE_C_STORE_RQ = 0x0001,
    MWL_DIMSE_C_GET_RQ = 0x0010,
    MWL_DIMSE_C_FIND_RQ = 0x0020,
    MWL_DIMSE_C_MOVE_RQ = 0x0021,
    MWL_DIMSE_C_ECHO_RQ = 0x0030,
    MWL_DIMSE_N_EVENT_REPORT_RQ = 0x0100,
    MWL_DIMSE_N_GET_RQ = 0x0110,
    MWL_DIMSE_N_SET_RQ = 0x0120,
    MWL_DIMSE_N_ACTION_RQ = 0x0130,
    MWL_DIMSE_N_CREATE_RQ = 0x0140,
    MWL_DIMSE_N_DELETE_RQ = 0x0150,
    MWL_DIMSE_C_CANCEL_RQ = 0x0FFF,
    MWL_DIMSE_RSP = 0x8000, /* the response bit */
    MWL_DIMSE_C_STORE_RSP = 0x8001,
    MWL_DIMSE_C_GET_RSP = 0x8010,
    MWL_DIMSE_C_FIND_RSP = 0x8020,
    MWL_DIMSE_C_MOVE_RSP = 0x8021,
    MWL_DIMSE_C_ECHO_RSP = 0x8030
};

/* CommandDataSetType (0000,0800): 0101H means "no data set"; any other value
 * means one follows (PS3.7 Table E.1-1). We send 0001H, as DCMTK and
 * pynetdicom do, so the value we use is the one every peer has been tested
 * against. */
enum { MWL_DIMSE_DATASET_NONE = 0x0101, MWL_DIMSE_DATASET_PRESENT = 0x0001 };

/* Priority (0000,0700), PS3.7 §9.1.1.1.6. */
enum {
    MWL_DIMSE_PRIORITY_MEDIUM = 0x0000,
    MWL_DIMSE_PRIORITY_HIGH = 0x0001,
    MWL_DIMSE_PRIORITY_LOW = 0x0002
};

/* Bits of mwl_dimse_command.present: which optional fields are set. */
enum {
    MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID = 1u << 0,    /* (0000,0002) */
    MWL_DIMSE_HAS_MESSAGE_ID = 1u << 1,                /* (0000,0110) */
    MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO = 1u << 2,   /* (0000,0120) */
    MWL_DIMSE_HAS_PRIORITY = 1u << 3,                  /* (0000,0700) */
    MWL_DIMSE_HAS_STATUS = 1u << 4,                    /* (0000,0900) */
    MWL_DIMSE_HAS_OFFENDING_ELEMENT = 1u << 5,         /* (0000,0901) */
    MWL_DIMSE_HAS_ERROR_COMMENT = 1u << 6,             /* (0000,0902) */
    MWL_DIMSE_HAS_ERROR_ID = 1u << 7,                  /* (0000,0903) */
    MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID = 1u << 8, /* (0000,1000) */
    MWL_DIMSE_HAS_ALL = (1u << 9) - 1u
};

/* Longest UI value (PS3.5 Table 6.2-1) and LO value (characters). */
#define MWL_DIMSE_UID_MAX 64
#define MWL_DIMSE_ERROR_COMMENT_MAX 64

/* The command elements mwl understands, as values. CommandGroupLength is not
 * here: the encoder computes it and the decoder checks it. Elements the
 * decoder does not know (retired ones such as (0000,0001), MoveDestination,
 * N-service fields) are kept only in the raw command set (mwl_dimse_msg). */
typedef struct mwl_dimse_command {
    uint16_t command_field;             /* (0000,0100) MWL_DIMSE_C_* */
    uint16_t data_set_type;             /* (0000,0800) MWL_DIMSE_DATASET_NONE or any other value */
    unsigned present;                   /* MWL_DIMSE_HAS_* for the fields below */
    const char *affected_sop_class_uid; /* NUL-terminated, padding removed */
    uint16_t message_id;
    uint16_t message_id_being_responded_to;
    uint16_t priority;                  /* MWL_DIMSE_PRIORITY_* */
    uint16_t status;                    /* see mwl_dimse_status_class() */
    const uint32_t *offending_elements; /* tags (gggg << 16 | eeee), AT 1-n */
    size_t offending_element_count;
    const char *error_comment; /* NUL-terminated, leading/trailing spaces removed */
    uint16_t error_id;
    const char *affected_sop_instance_uid;
} mwl_dimse_command;

/* Zeroes *cmd: no optional fields, data set type NONE. */
MWL_API void mwl_dimse_command_init(mwl_dimse_command *cmd);

static inline bool mwl_dimse_command_has_dataset(const mwl_dimse_command *cmd)
{
    return cmd->data_set_type != MWL_DIMSE_DATASET_NONE;
}
static inline bool mwl_dimse_is_response(uint16_t command_field)
{
    return (command_field & MWL_DIMSE_RSP) != 0;
}
/* "C-FIND-RQ", "C-CANCEL-RQ", ...; "unknown" for values not in Table E.1-1.
 * Never NULL. */
MWL_API const char *mwl_dimse_command_name(uint16_t command_field);

/* Appends the Implicit VR LE encoding of `cmd` to `out`: CommandGroupLength
 * first (computed over the rest), then every present field in tag order,
 * values padded to even length (UI with 00H, LO with a space). ErrorComment
 * is reduced to what LO in the default repertoire allows (PS3.5 §6.2, PS3.7
 * §6.3.1): at most 64 characters, any byte outside 20H-7EH and any backslash
 * sent as '?', so a server can pass a diagnostic through without checking it.
 * The required fields for the command field (see mwl_dimse_decode_command)
 * must be present. Returns:
 *   MWL_OK;
 *   MWL_E_INVALID  a required field is missing, a UID is longer than 64
 *                  characters or holds anything but digits and '.', or
 *                  offending_elements is NULL with a non-zero count or the
 *                  list is too long for a 32-bit length; nothing appended;
 *   MWL_E_NOMEM / MWL_E_LIMIT from `out` (its sticky status). */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_command(const mwl_dimse_command *cmd, mwl_wbuf *out);

/* Decodes a complete command set (PS3.7 §6.3.1) of `len` bytes into *out.
 * Strings and the offending element list are allocated from `arena`. When
 * `command_set` is not NULL it receives every element as an mwl_ds in
 * `arena` (VRs from the dictionary, unknown ones as UN), for dumps and logs.
 * The rules checked:
 *   - elements are Implicit VR LE, all in group 0000, in strictly increasing
 *     tag order, none of undefined length, none running past the end;
 *   - the first is CommandGroupLength (UL) and its value is the number of
 *     bytes after it;
 *   - known US elements are 2 bytes, AT a multiple of 4, UIDs at most 64
 *     characters of digits and '.';
 *   - CommandField and CommandDataSetType are present, and by command field:
 *     any response: MessageIDBeingRespondedTo and Status; C-CANCEL-RQ:
 *     MessageIDBeingRespondedTo; any other request: MessageID; C-ECHO-RQ and
 *     C-FIND-RQ also AffectedSOPClassUID; C-FIND-RQ also Priority
 *     (PS3.7 Tables 9.3-3, 9.3-4, 9.3-5, 9.3-12, 9.3-13).
 * Whether a data set should accompany the command (an Identifier for
 * C-FIND-RQ) is left to the driver, which can answer with a status.
 * Returns MWL_OK, MWL_E_MALFORMED (diag: offset and tag of the problem),
 * MWL_E_NOMEM, or MWL_E_INVALID (NULL arena/out, NULL data with len > 0).
 * On error *out is untouched. */
MWL_API MWL_MUST_CHECK int mwl_dimse_decode_command(const uint8_t *data, size_t len, mwl_arena *arena,
                                                    mwl_dimse_command *out, mwl_ds **command_set,
                                                    mwl_diag *diag);

/* ---- builders for the messages mwl sends -------------------------------
 * Each appends one command set to `out` and returns what
 * mwl_dimse_encode_command returns. */

/* C-ECHO-RQ (PS3.7 Table 9.3-12): Verification SOP class, no data set. */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_echo_rq(uint16_t message_id, mwl_wbuf *out);

/* C-ECHO-RSP (Table 9.3-13). `affected_sop_class_uid` echoes the request's
 * (NULL: omitted, as U(=) allows); usually status 0000H. */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_echo_rsp(uint16_t message_id_being_responded_to,
                                                     const char *affected_sop_class_uid, uint16_t status,
                                                     mwl_wbuf *out);

/* C-FIND-RQ (Table 9.3-3): an Identifier follows (data set type 0001H).
 * MWL_E_INVALID also for a priority other than the three of PS3.7
 * §9.1.1.1.6 or a NULL SOP class UID. */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_find_rq(uint16_t message_id, const char *affected_sop_class_uid,
                                                    uint16_t priority, mwl_wbuf *out);

/* C-FIND-RSP (Table 9.3-4). `affected_sop_class_uid` echoes the request's
 * (NULL: omitted). The data set type follows from the status: an Identifier
 * follows with Pending (FF00/FF01) and with no other status (PS3.7
 * §9.1.2.1.5). `error_comment` (NULL: none) and `offending_elements`
 * (count 0: none) may only accompany a Failure or Warning status (PS3.7
 * Annex C.4/C.5: A700, A900, Cxxx, 0122 ...); with any other status they
 * give MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_find_rsp(uint16_t message_id_being_responded_to,
                                                     const char *affected_sop_class_uid, uint16_t status,
                                                     const char *error_comment,
                                                     const uint32_t *offending_elements,
                                                     size_t offending_element_count, mwl_wbuf *out);

/* C-CANCEL-FIND-RQ (Table 9.3-5): only MessageIDBeingRespondedTo, no data
 * set. Send it on the C-FIND's presentation context. */
MWL_API MWL_MUST_CHECK int mwl_dimse_encode_cancel_rq(uint16_t message_id_being_responded_to, mwl_wbuf *out);

/* ======================================================================
 * Assembling messages from PDVs (PS3.8 Annex E, PS3.7 §6.3.1)
 * ====================================================================== */

typedef struct mwl_dimse_limits {
    size_t max_command_length; /* command set bytes; default 64 KiB */
    size_t max_message_length; /* command + data set bytes; default 16 MiB */
} mwl_dimse_limits;

/* Fills the defaults above. */
MWL_API void mwl_dimse_limits_init(mwl_dimse_limits *lim);

/* One whole message. Everything it points to belongs to the assembler and
 * stays valid until the next mwl_dimse_assembler_feed, _reset or _clear:
 * copy what must outlive that (e.g. the C-FIND's MessageID and SOP class UID
 * for its responses). */
typedef struct mwl_dimse_msg {
    uint8_t context_id;        /* presentation context of every fragment */
    mwl_dimse_command command; /* the fields, decoded */
    const mwl_ds *command_set; /* every element as received, retired ones too */
    const uint8_t *command_bytes;
    size_t command_length;
    bool has_dataset; /* CommandDataSetType != 0101H */
    /* The data set, undecoded, in the context's transfer syntax; decode it
     * with mwl_ds_decode(). Never NULL; length 0 when has_dataset is false.
     * It may be empty even with has_dataset (a zero-length last fragment),
     * and may be cut short by an SCU that ended it early after a failed
     * response (PS3.7 §9.3.2.4), in which case decoding it fails. */
    const uint8_t *dataset;
    size_t dataset_length;
} mwl_dimse_msg;

/* Assembler states. One message at a time, fragments in order:
 *
 *   IDLE     nothing buffered. Entered by init and reset, and by the first
 *            feed after a message was returned (DONE).
 *   COMMAND  at least one command fragment received, not the last one. The
 *            presentation context ID is fixed for the rest of the message.
 *   DATA     the command set is complete and decoded and says a data set
 *            follows; data fragments are being collected.
 *   DONE     a message was returned; its memory is valid in this state.
 *   FAILED   a violation was reported; every feed returns that same error
 *            until reset. The driver answers it with A-ABORT.
 *
 *          command PDV              command PDV, last, type 0101H
 *   IDLE ------------------> COMMAND ----------------------------> DONE
 *    |  command PDV, last       |  command PDV, last, data follows   ^
 *    +--------------------------+----------------------> DATA -------+
 *                                                         data PDV, last
 */
typedef enum mwl_dimse_asm_state {
    MWL_DIMSE_ASM_IDLE,
    MWL_DIMSE_ASM_COMMAND,
    MWL_DIMSE_ASM_DATA,
    MWL_DIMSE_ASM_DONE,
    MWL_DIMSE_ASM_FAILED
} mwl_dimse_asm_state;

/* Caller-owned storage (Mbed TLS style): init never fails, clear is always
 * safe. The members are private; use the functions below. */
typedef struct mwl_dimse_assembler {
    mwl_dimse_asm_state state;
    int error; /* the sticky error in FAILED */
    uint8_t context_id;
    mwl_dimse_limits limits;
    mwl_wbuf command; /* command set fragments, concatenated */
    mwl_wbuf data;    /* data set fragments, concatenated */
    mwl_arena arena;  /* decoded command strings and the raw command set */
    mwl_dimse_command parsed;
    mwl_ds *command_set;
} mwl_dimse_assembler;

/* `mem` NULL = the default allocator; `lim` NULL = defaults. Allocates
 * nothing until the first feed. */
MWL_API void mwl_dimse_assembler_init(mwl_dimse_assembler *as, const mwl_mem *mem,
                                      const mwl_dimse_limits *lim);
/* Frees everything; the assembler may be init'ed again. NULL-safe. */
MWL_API void mwl_dimse_assembler_clear(mwl_dimse_assembler *as);
/* Drops any partial message and any error and returns to IDLE. */
MWL_API void mwl_dimse_assembler_reset(mwl_dimse_assembler *as);
/* True in IDLE and DONE: no message is half-received (for instance when an
 * A-RELEASE-RQ arrives). */
MWL_API bool mwl_dimse_assembler_is_idle(const mwl_dimse_assembler *as);

/* Takes one PDV (the fragment bytes are copied; the PDV's memory may go
 * right after the call). Message control header bits 2-7 are ignored (PS3.8
 * Annex E.2). Empty fragments and odd-length fragments are accepted, since
 * PS3.8 asks receivers to tolerate the former and concatenation makes the
 * latter harmless. Returns:
 *   MWL_AGAIN        fragment taken, the message is not complete yet;
 *   MWL_OK           *out holds a whole message (see mwl_dimse_msg for how
 *                    long it stays valid);
 *   MWL_E_PROTOCOL   a data fragment before the last command fragment (or
 *                    with no command at all), a command fragment after the
 *                    last command fragment, a context ID different from the
 *                    earlier fragments of the message (PS3.8 Annex E.1);
 *   MWL_E_MALFORMED  the command set does not decode or lacks a required
 *                    element (mwl_dimse_decode_command);
 *   MWL_E_LIMIT      the command set or message exceeds the limits;
 *   MWL_E_INVALID    `pdv` has NULL data with a non-zero length;
 *   MWL_E_NOMEM.
 * After any error but MWL_E_INVALID the assembler is FAILED and repeats the
 * error until reset; `diag` says what happened. MWL_E_NOMEM is fatal (drop
 * the association); the others call for A-ABORT (PS3.8 §7.3.1). */
MWL_API MWL_MUST_CHECK int mwl_dimse_assembler_feed(mwl_dimse_assembler *as, const mwl_pdv *pdv,
                                                    mwl_dimse_msg *out, mwl_diag *diag);

/* ======================================================================
 * Fragmenting messages into P-DATA-TF PDUs (PS3.8 Annex E, D.1)
 * ====================================================================== */

/* The smallest peer Maximum Length we can send to: a PDV item header (6
 * bytes) plus one even fragment of 2 bytes. PS3.8 sets no lower bound, but
 * below this no P-DATA-TF can carry anything. */
#define MWL_DIMSE_MIN_PDU_LENGTH 8u
/* What we send when the peer's Maximum Length is 0 (unlimited, PS3.8 D.1)
 * or larger: PDU-length values up to 64 KiB keep each PDU (and the memory a
 * peer needs for it) modest at negligible header cost. */
#define MWL_DIMSE_SEND_PDU_CAP 65536u

/* Walks one message, producing the PDVs of one P-DATA-TF at a time. The
 * command and data set bytes are referenced, not copied: they must outlive
 * the fragmenter. Members are private. */
typedef struct mwl_dimse_fragmenter {
    uint8_t context_id;
    uint32_t max_pdu_length; /* effective PDU-length bound */
    const uint8_t *command;
    size_t command_length;
    size_t command_pos;
    const uint8_t *dataset; /* NULL when the message has none */
    size_t dataset_length;
    size_t dataset_pos;
    bool command_done;
    bool dataset_done;
} mwl_dimse_fragmenter;

/* Prepares to send one message on `context_id`: the command set bytes
 * (from the encoders above) and, when its CommandDataSetType says so, the
 * data set bytes encoded in the context's transfer syntax (`dataset` NULL:
 * none; non-NULL with length 0: an empty data set, sent as one empty last
 * fragment). `peer_max_pdu_length` is the Maximum Length the peer announced
 * (0 = unlimited); PDU-length fields stay at or below it and at or below
 * MWL_DIMSE_SEND_PDU_CAP. Returns:
 *   MWL_OK;
 *   MWL_E_INVALID      context ID even or 0; command empty or of odd length,
 *                      or without CommandDataSetType; data set of odd
 *                      length (PS3.8 Annex E.1: fragments are even); a data
 *                      set given for a command whose type is 0101H, or none
 *                      for a command that announces one;
 *   MWL_E_UNSUPPORTED  0 < peer_max_pdu_length < MWL_DIMSE_MIN_PDU_LENGTH. */
MWL_API MWL_MUST_CHECK int mwl_dimse_fragmenter_init(mwl_dimse_fragmenter *fr, uint8_t context_id,
                                                     const uint8_t *command, size_t command_length,
                                                     const uint8_t *dataset, size_t dataset_length,
                                                     uint32_t peer_max_pdu_length);

/* The PDVs of the next P-DATA-TF: one or two (the last command fragment and
 * the first data fragment share a PDU when there is room, PS3.8 Annex E.1),
 * each fragment even-length, pointing into the referenced bytes. Returns
 * false (with *count 0) when the whole message has been produced. */
MWL_API bool mwl_dimse_fragmenter_next(mwl_dimse_fragmenter *fr, mwl_pdv pdvs[2], size_t *count);

/* The whole message as consecutive P-DATA-TF PDUs appended to `out` (each a
 * complete PDU with its 6-byte header; split them with mwl_pdu_peek_header).
 * Returns the mwl_dimse_fragmenter_init errors (nothing appended), or what
 * mwl_pdu_encode_p_data returns (MWL_E_NOMEM ...; `out` then holds part of
 * the message and must not be sent). */
MWL_API MWL_MUST_CHECK int mwl_dimse_fragment(uint8_t context_id, const uint8_t *command,
                                              size_t command_length, const uint8_t *dataset,
                                              size_t dataset_length, uint32_t peer_max_pdu_length,
                                              mwl_wbuf *out);

/* ======================================================================
 * Status codes (PS3.7 Annex C, PS3.4 Table K.4-1)
 * ====================================================================== */

/* Common status values. */
enum {
    MWL_DIMSE_STATUS_SUCCESS = 0x0000,
    MWL_DIMSE_STATUS_PENDING = 0xFF00,
    /* MWL: one or more Optional Keys were not supported for this match */
    MWL_DIMSE_STATUS_PENDING_WARNING = 0xFF01,
    MWL_DIMSE_STATUS_CANCEL = 0xFE00,
    MWL_DIMSE_STATUS_OUT_OF_RESOURCES = 0xA700,
    MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH = 0xA900,
    MWL_DIMSE_STATUS_UNABLE_TO_PROCESS = 0xC000, /* C000-CFFF */
    MWL_DIMSE_STATUS_PROCESSING_FAILURE = 0x0110,
    MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122,
    MWL_DIMSE_STATUS_NOT_AUTHORIZED = 0x0124,
    MWL_DIMSE_STATUS_DUPLICATE_INVOCATION = 0x0210,
    MWL_DIMSE_STATUS_UNRECOGNIZED_OPERATION = 0x0211,
    MWL_DIMSE_STATUS_MISTYPED_ARGUMENT = 0x0212,
    MWL_DIMSE_STATUS_RESOURCE_LIMITATION = 0x0213
};

typedef enum mwl_dimse_class {
    MWL_DIMSE_CLASS_SUCCESS,
    MWL_DIMSE_CLASS_PENDING,
    MWL_DIMSE_CLASS_CANCEL,
    MWL_DIMSE_CLASS_WARNING,
    MWL_DIMSE_CLASS_FAILURE
} mwl_dimse_class;

/* The class of a status by the PS3.7 Annex C table: 0000 success; FF00/FF01
 * pending; FE00 cancel; 0001, Bxxx, 0107, 0116 warning; everything else
 * (Axxx, Cxxx, 01xx, 02xx, and codes the table does not list, which an SCU
 * must not mistake for success or pending) failure. */
MWL_API mwl_dimse_class mwl_dimse_status_class(uint16_t status);
/* "Success", "Pending", "Cancel", "Warning", "Failure". Never NULL. */
MWL_API const char *mwl_dimse_class_str(mwl_dimse_class cls);
/* One-line meaning from PS3.7 Annex C and, for the service-class-specific
 * ranges, the C-FIND Modality Worklist table (PS3.4 K.4-1), e.g.
 * A900 "Error: Identifier does not match SOP class". Never NULL. */
MWL_API const char *mwl_dimse_status_str(uint16_t status);
/* True for Pending (FF00/FF01): more C-FIND responses follow. */
static inline bool mwl_dimse_status_is_pending(uint16_t status)
{
    return status == MWL_DIMSE_STATUS_PENDING || status == MWL_DIMSE_STATUS_PENDING_WARNING;
}

#endif
