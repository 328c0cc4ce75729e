/* Declarations not in the public API of the Upper Layer module: the PS3.8
 * Table 9-10 events and actions, and the state table lookup (fsm.c). */
#ifndef MWL_UL_UL_INT_H
#define MWL_UL_UL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ul/ul.h"

/* Events, PS3.8 §9.2.3 (Table 9-10 row headers). */
typedef enum mwl_ul_fsm_event {
    MWL_UL_EVT1 = 1, /* A-ASSOCIATE request (local user) */
    MWL_UL_EVT2,     /* transport connect confirmation (local transport) */
    MWL_UL_EVT3,     /* A-ASSOCIATE-AC PDU received */
    MWL_UL_EVT4,     /* A-ASSOCIATE-RJ PDU received */
    MWL_UL_EVT5,     /* transport connection indication (incoming) */
    MWL_UL_EVT6,     /* A-ASSOCIATE-RQ PDU received */
    MWL_UL_EVT7,     /* A-ASSOCIATE response primitive (accept) */
    MWL_UL_EVT8,     /* A-ASSOCIATE response primitive (reject) */
    MWL_UL_EVT9,     /* P-DATA request primitive */
    MWL_UL_EVT10,    /* P-DATA-TF PDU received */
    MWL_UL_EVT11,    /* A-RELEASE request primitive */
    MWL_UL_EVT12,    /* A-RELEASE-RQ PDU received */
    MWL_UL_EVT13,    /* A-RELEASE-RP PDU received */
    MWL_UL_EVT14,    /* A-RELEASE response primitive */
    MWL_UL_EVT15,    /* A-ABORT request primitive */
    MWL_UL_EVT16,    /* A-ABORT PDU received */
    MWL_UL_EVT17,    /* transport connection closed indication */
    MWL_UL_EVT18,    /* ARTIM timer expired */
    MWL_UL_EVT19     /* unrecognized or invalid PDU received */
} mwl_ul_fsm_event;

enum { MWL_UL_STATE_COUNT = 13, MWL_UL_EVENT_COUNT = 19 };

/* Actions, PS3.8 §9.2.2 Tables 9-6..9-9. MWL_UL_ACT_NONE is a "—" cell:
 * the combination is not valid. Local primitives in such a cell are refused
 * (MWL_E_PROTOCOL, state unchanged); PDU events cannot reach one, because
 * the only such cells are Sta1 and Sta4, where no transport is open and
 * mwl_ul_feed refuses input. */
typedef enum mwl_ul_action {
    MWL_UL_ACT_NONE = 0,
    MWL_UL_AE_1,
    MWL_UL_AE_2,
    MWL_UL_AE_3,
    MWL_UL_AE_4,
    MWL_UL_AE_5,
    MWL_UL_AE_6,
    MWL_UL_AE_7,
    MWL_UL_AE_8,
    MWL_UL_DT_1,
    MWL_UL_DT_2,
    MWL_UL_AR_1,
    MWL_UL_AR_2,
    MWL_UL_AR_3,
    MWL_UL_AR_4,
    MWL_UL_AR_5,
    MWL_UL_AR_6,
    MWL_UL_AR_7,
    MWL_UL_AR_8,
    MWL_UL_AR_9,
    MWL_UL_AR_10,
    MWL_UL_AA_1,
    MWL_UL_AA_2,
    MWL_UL_AA_3,
    MWL_UL_AA_4,
    MWL_UL_AA_5,
    MWL_UL_AA_6,
    MWL_UL_AA_7,
    MWL_UL_AA_8,
    MWL_UL_ACTION_COUNT
} mwl_ul_action;

/* One cell of Table 9-10. `next` is the state the action leads to; for the
 * two actions whose next state depends on a condition (AE-6: RQ acceptable
 * -> Sta3, else Sta13; AR-8: association-requestor -> Sta9, else Sta10)
 * `next_alt` holds the other one, else it is 0. For "—" cells next is the
 * unchanged state. */
typedef struct mwl_ul_transition {
    uint8_t state;  /* MWL_UL_STA* */
    uint8_t event;  /* MWL_UL_EVT* */
    uint8_t action; /* mwl_ul_action */
    uint8_t next;
    uint8_t next_alt;
} mwl_ul_transition;

/* The cell for (state, event); never NULL for state 1..13, event 1..19,
 * NULL for anything else. */
const mwl_ul_transition *mwl_ul_fsm_lookup(int state, int event);
/* The whole table, 13 x 19 rows, ordered by event then state. */
const mwl_ul_transition *mwl_ul_fsm_table(size_t *count);
/* "AE-1" … "AA-8", "-" for MWL_UL_ACT_NONE, "?" otherwise. */
const char *mwl_ul_action_name(int action);

#endif
