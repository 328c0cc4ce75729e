/* PS3.8 §9.2.3 Table 9-10, the DICOM Upper Layer state transition table,
 * as data: one row per {state, event} cell, 13 states x 19 events, in the
 * table's own order (event by event, Sta1..Sta13 within each). Each row
 * names the action of PS3.8 §9.2.2 (Tables 9-6..9-9) and the state it
 * leads to. "—" cells are written out as NA rows so that no combination is
 * left undefined; ul.c refuses them (see ul_int.h).
 *
 * The actions themselves live in ul.c; they only queue PDUs, queue events
 * and start/stop the ARTIM timer (no I/O here or there). */
#include "ul/ul_int.h"

#define STA1 MWL_UL_STA1   /* idle */
#define STA2 MWL_UL_STA2   /* transport open, awaiting A-ASSOCIATE-RQ */
#define STA3 MWL_UL_STA3   /* awaiting local A-ASSOCIATE response */
#define STA4 MWL_UL_STA4   /* awaiting transport connection */
#define STA5 MWL_UL_STA5   /* awaiting A-ASSOCIATE-AC or -RJ */
#define STA6 MWL_UL_STA6   /* association established */
#define STA7 MWL_UL_STA7   /* awaiting A-RELEASE-RP */
#define STA8 MWL_UL_STA8   /* awaiting local A-RELEASE response */
#define STA9 MWL_UL_STA9   /* release collision, requestor: awaiting local response */
#define STA10 MWL_UL_STA10 /* release collision, acceptor: awaiting A-RELEASE-RP */
#define STA11 MWL_UL_STA11 /* release collision, requestor: awaiting A-RELEASE-RP */
#define STA12 MWL_UL_STA12 /* release collision, acceptor: awaiting local response */
#define STA13 MWL_UL_STA13 /* awaiting transport close */

#define EVT1 MWL_UL_EVT1
#define EVT2 MWL_UL_EVT2
#define EVT3 MWL_UL_EVT3
#define EVT4 MWL_UL_EVT4
#define EVT5 MWL_UL_EVT5
#define EVT6 MWL_UL_EVT6
#define EVT7 MWL_UL_EVT7
#define EVT8 MWL_UL_EVT8
#define EVT9 MWL_UL_EVT9
#define EVT10 MWL_UL_EVT10
#define EVT11 MWL_UL_EVT11
#define EVT12 MWL_UL_EVT12
#define EVT13 MWL_UL_EVT13
#define EVT14 MWL_UL_EVT14
#define EVT15 MWL_UL_EVT15
#define EVT16 MWL_UL_EVT16
#define EVT17 MWL_UL_EVT17
#define EVT18 MWL_UL_EVT18
#define EVT19 MWL_UL_EVT19

/* Association establishment (Table 9-6) */
#define AE_1 MWL_UL_AE_1 /* issue transport connect request -> Sta4 */
#define AE_2 MWL_UL_AE_2 /* send A-ASSOCIATE-RQ -> Sta5 */
#define AE_3 MWL_UL_AE_3 /* issue A-ASSOCIATE confirmation (accept) -> Sta6 */
#define AE_4 MWL_UL_AE_4 /* issue A-ASSOCIATE confirmation (reject), close -> Sta1 */
#define AE_5 MWL_UL_AE_5 /* accept transport connection, start ARTIM -> Sta2 */
#define AE_6 MWL_UL_AE_6 /* stop ARTIM; indication -> Sta3, or send RJ + ARTIM -> Sta13 */
#define AE_7 MWL_UL_AE_7 /* send A-ASSOCIATE-AC -> Sta6 */
#define AE_8 MWL_UL_AE_8 /* send A-ASSOCIATE-RJ, start ARTIM -> Sta13 */
/* Data transfer (Table 9-7) */
#define DT_1 MWL_UL_DT_1 /* send P-DATA-TF -> Sta6 */
#define DT_2 MWL_UL_DT_2 /* issue P-DATA indication -> Sta6 */
/* Association release (Table 9-8) */
#define AR_1 MWL_UL_AR_1   /* send A-RELEASE-RQ -> Sta7 */
#define AR_2 MWL_UL_AR_2   /* issue A-RELEASE indication -> Sta8 */
#define AR_3 MWL_UL_AR_3   /* issue A-RELEASE confirmation, close -> Sta1 */
#define AR_4 MWL_UL_AR_4   /* send A-RELEASE-RP, start ARTIM -> Sta13 */
#define AR_5 MWL_UL_AR_5   /* stop ARTIM -> Sta1 */
#define AR_6 MWL_UL_AR_6   /* issue P-DATA indication -> Sta7 */
#define AR_7 MWL_UL_AR_7   /* send P-DATA-TF -> Sta8 */
#define AR_8 MWL_UL_AR_8   /* issue A-RELEASE indication (collision) -> Sta9 / Sta10 */
#define AR_9 MWL_UL_AR_9   /* send A-RELEASE-RP -> Sta11 */
#define AR_10 MWL_UL_AR_10 /* issue A-RELEASE confirmation -> Sta12 */
/* Association abort (Table 9-9) */
#define AA_1 MWL_UL_AA_1 /* send A-ABORT (service-user source), (re)start ARTIM -> Sta13 */
#define AA_2 MWL_UL_AA_2 /* stop ARTIM if running, close transport -> Sta1 */
#define AA_3 MWL_UL_AA_3 /* issue A-ABORT / A-P-ABORT indication, close -> Sta1 */
#define AA_4 MWL_UL_AA_4 /* issue A-P-ABORT indication -> Sta1 */
#define AA_5 MWL_UL_AA_5 /* stop ARTIM -> Sta1 */
#define AA_6 MWL_UL_AA_6 /* ignore PDU -> Sta13 */
#define AA_7 MWL_UL_AA_7 /* send A-ABORT -> Sta13 */
#define AA_8 MWL_UL_AA_8 /* send A-ABORT (provider), A-P-ABORT indication, ARTIM -> Sta13 */

#define R(sta, evt, act, next)                                                                               \
    {                                                                                                        \
        sta, evt, act, next, 0                                                                               \
    }
#define R2(sta, evt, act, next, alt)                                                                         \
    {                                                                                                        \
        sta, evt, act, next, alt                                                                             \
    }
#define NA(sta, evt)                                                                                         \
    {                                                                                                        \
        sta, evt, MWL_UL_ACT_NONE, sta, 0                                                                    \
    }

static const mwl_ul_transition table[MWL_UL_EVENT_COUNT * MWL_UL_STATE_COUNT] = {
    /* Evt1: A-ASSOCIATE request primitive (local user) */
    R(STA1, EVT1, AE_1, STA4),
    NA(STA2, EVT1),
    NA(STA3, EVT1),
    NA(STA4, EVT1),
    NA(STA5, EVT1),
    NA(STA6, EVT1),
    NA(STA7, EVT1),
    NA(STA8, EVT1),
    NA(STA9, EVT1),
    NA(STA10, EVT1),
    NA(STA11, EVT1),
    NA(STA12, EVT1),
    NA(STA13, EVT1),
    /* Evt2: transport connect confirmation */
    NA(STA1, EVT2),
    NA(STA2, EVT2),
    NA(STA3, EVT2),
    R(STA4, EVT2, AE_2, STA5),
    NA(STA5, EVT2),
    NA(STA6, EVT2),
    NA(STA7, EVT2),
    NA(STA8, EVT2),
    NA(STA9, EVT2),
    NA(STA10, EVT2),
    NA(STA11, EVT2),
    NA(STA12, EVT2),
    NA(STA13, EVT2),
    /* Evt3: A-ASSOCIATE-AC PDU received */
    NA(STA1, EVT3),
    R(STA2, EVT3, AA_1, STA13),
    R(STA3, EVT3, AA_8, STA13),
    NA(STA4, EVT3),
    R(STA5, EVT3, AE_3, STA6),
    R(STA6, EVT3, AA_8, STA13),
    R(STA7, EVT3, AA_8, STA13),
    R(STA8, EVT3, AA_8, STA13),
    R(STA9, EVT3, AA_8, STA13),
    R(STA10, EVT3, AA_8, STA13),
    R(STA11, EVT3, AA_8, STA13),
    R(STA12, EVT3, AA_8, STA13),
    R(STA13, EVT3, AA_6, STA13),
    /* Evt4: A-ASSOCIATE-RJ PDU received */
    NA(STA1, EVT4),
    R(STA2, EVT4, AA_1, STA13),
    R(STA3, EVT4, AA_8, STA13),
    NA(STA4, EVT4),
    R(STA5, EVT4, AE_4, STA1),
    R(STA6, EVT4, AA_8, STA13),
    R(STA7, EVT4, AA_8, STA13),
    R(STA8, EVT4, AA_8, STA13),
    R(STA9, EVT4, AA_8, STA13),
    R(STA10, EVT4, AA_8, STA13),
    R(STA11, EVT4, AA_8, STA13),
    R(STA12, EVT4, AA_8, STA13),
    R(STA13, EVT4, AA_6, STA13),
    /* Evt5: transport connection indication */
    R(STA1, EVT5, AE_5, STA2),
    NA(STA2, EVT5),
    NA(STA3, EVT5),
    NA(STA4, EVT5),
    NA(STA5, EVT5),
    NA(STA6, EVT5),
    NA(STA7, EVT5),
    NA(STA8, EVT5),
    NA(STA9, EVT5),
    NA(STA10, EVT5),
    NA(STA11, EVT5),
    NA(STA12, EVT5),
    NA(STA13, EVT5),
    /* Evt6: A-ASSOCIATE-RQ PDU received */
    NA(STA1, EVT6),
    R2(STA2, EVT6, AE_6, STA3, STA13),
    R(STA3, EVT6, AA_8, STA13),
    NA(STA4, EVT6),
    R(STA5, EVT6, AA_8, STA13),
    R(STA6, EVT6, AA_8, STA13),
    R(STA7, EVT6, AA_8, STA13),
    R(STA8, EVT6, AA_8, STA13),
    R(STA9, EVT6, AA_8, STA13),
    R(STA10, EVT6, AA_8, STA13),
    R(STA11, EVT6, AA_8, STA13),
    R(STA12, EVT6, AA_8, STA13),
    R(STA13, EVT6, AA_7, STA13),
    /* Evt7: A-ASSOCIATE response primitive (accept) */
    NA(STA1, EVT7),
    NA(STA2, EVT7),
    R(STA3, EVT7, AE_7, STA6),
    NA(STA4, EVT7),
    NA(STA5, EVT7),
    NA(STA6, EVT7),
    NA(STA7, EVT7),
    NA(STA8, EVT7),
    NA(STA9, EVT7),
    NA(STA10, EVT7),
    NA(STA11, EVT7),
    NA(STA12, EVT7),
    NA(STA13, EVT7),
    /* Evt8: A-ASSOCIATE response primitive (reject) */
    NA(STA1, EVT8),
    NA(STA2, EVT8),
    R(STA3, EVT8, AE_8, STA13),
    NA(STA4, EVT8),
    NA(STA5, EVT8),
    NA(STA6, EVT8),
    NA(STA7, EVT8),
    NA(STA8, EVT8),
    NA(STA9, EVT8),
    NA(STA10, EVT8),
    NA(STA11, EVT8),
    NA(STA12, EVT8),
    NA(STA13, EVT8),
    /* Evt9: P-DATA request primitive */
    NA(STA1, EVT9),
    NA(STA2, EVT9),
    NA(STA3, EVT9),
    NA(STA4, EVT9),
    NA(STA5, EVT9),
    R(STA6, EVT9, DT_1, STA6),
    NA(STA7, EVT9),
    R(STA8, EVT9, AR_7, STA8),
    NA(STA9, EVT9),
    NA(STA10, EVT9),
    NA(STA11, EVT9),
    NA(STA12, EVT9),
    NA(STA13, EVT9),
    /* Evt10: P-DATA-TF PDU received */
    NA(STA1, EVT10),
    R(STA2, EVT10, AA_1, STA13),
    R(STA3, EVT10, AA_8, STA13),
    NA(STA4, EVT10),
    R(STA5, EVT10, AA_8, STA13),
    R(STA6, EVT10, DT_2, STA6),
    R(STA7, EVT10, AR_6, STA7),
    R(STA8, EVT10, AA_8, STA13),
    R(STA9, EVT10, AA_8, STA13),
    R(STA10, EVT10, AA_8, STA13),
    R(STA11, EVT10, AA_8, STA13),
    R(STA12, EVT10, AA_8, STA13),
    R(STA13, EVT10, AA_6, STA13),
    /* Evt11: A-RELEASE request primitive */
    NA(STA1, EVT11),
    NA(STA2, EVT11),
    NA(STA3, EVT11),
    NA(STA4, EVT11),
    NA(STA5, EVT11),
    R(STA6, EVT11, AR_1, STA7),
    NA(STA7, EVT11),
    NA(STA8, EVT11),
    NA(STA9, EVT11),
    NA(STA10, EVT11),
    NA(STA11, EVT11),
    NA(STA12, EVT11),
    NA(STA13, EVT11),
    /* Evt12: A-RELEASE-RQ PDU received */
    NA(STA1, EVT12),
    R(STA2, EVT12, AA_1, STA13),
    R(STA3, EVT12, AA_8, STA13),
    NA(STA4, EVT12),
    R(STA5, EVT12, AA_8, STA13),
    R(STA6, EVT12, AR_2, STA8),
    R2(STA7, EVT12, AR_8, STA9, STA10),
    R(STA8, EVT12, AA_8, STA13),
    R(STA9, EVT12, AA_8, STA13),
    R(STA10, EVT12, AA_8, STA13),
    R(STA11, EVT12, AA_8, STA13),
    R(STA12, EVT12, AA_8, STA13),
    R(STA13, EVT12, AA_6, STA13),
    /* Evt13: A-RELEASE-RP PDU received */
    NA(STA1, EVT13),
    R(STA2, EVT13, AA_1, STA13),
    R(STA3, EVT13, AA_8, STA13),
    NA(STA4, EVT13),
    R(STA5, EVT13, AA_8, STA13),
    R(STA6, EVT13, AA_8, STA13),
    R(STA7, EVT13, AR_3, STA1),
    R(STA8, EVT13, AA_8, STA13),
    R(STA9, EVT13, AA_8, STA13),
    R(STA10, EVT13, AR_10, STA12),
    R(STA11, EVT13, AR_3, STA1),
    R(STA12, EVT13, AA_8, STA13),
    R(STA13, EVT13, AA_6, STA13),
    /* Evt14: A-RELEASE response primitive */
    NA(STA1, EVT14),
    NA(STA2, EVT14),
    NA(STA3, EVT14),
    NA(STA4, EVT14),
    NA(STA5, EVT14),
    NA(STA6, EVT14),
    NA(STA7, EVT14),
    R(STA8, EVT14, AR_4, STA13),
    R(STA9, EVT14, AR_9, STA11),
    NA(STA10, EVT14),
    NA(STA11, EVT14),
    R(STA12, EVT14, AR_4, STA13),
    NA(STA13, EVT14),
    /* Evt15: A-ABORT request primitive */
    NA(STA1, EVT15),
    NA(STA2, EVT15),
    R(STA3, EVT15, AA_1, STA13),
    R(STA4, EVT15, AA_2, STA1),
    R(STA5, EVT15, AA_1, STA13),
    R(STA6, EVT15, AA_1, STA13),
    R(STA7, EVT15, AA_1, STA13),
    R(STA8, EVT15, AA_1, STA13),
    R(STA9, EVT15, AA_1, STA13),
    R(STA10, EVT15, AA_1, STA13),
    R(STA11, EVT15, AA_1, STA13),
    R(STA12, EVT15, AA_1, STA13),
    NA(STA13, EVT15),
    /* Evt16: A-ABORT PDU received */
    NA(STA1, EVT16),
    R(STA2, EVT16, AA_2, STA1),
    R(STA3, EVT16, AA_3, STA1),
    NA(STA4, EVT16),
    R(STA5, EVT16, AA_3, STA1),
    R(STA6, EVT16, AA_3, STA1),
    R(STA7, EVT16, AA_3, STA1),
    R(STA8, EVT16, AA_3, STA1),
    R(STA9, EVT16, AA_3, STA1),
    R(STA10, EVT16, AA_3, STA1),
    R(STA11, EVT16, AA_3, STA1),
    R(STA12, EVT16, AA_3, STA1),
    R(STA13, EVT16, AA_2, STA1),
    /* Evt17: transport connection closed indication */
    NA(STA1, EVT17),
    R(STA2, EVT17, AA_5, STA1),
    R(STA3, EVT17, AA_4, STA1),
    R(STA4, EVT17, AA_4, STA1),
    R(STA5, EVT17, AA_4, STA1),
    R(STA6, EVT17, AA_4, STA1),
    R(STA7, EVT17, AA_4, STA1),
    R(STA8, EVT17, AA_4, STA1),
    R(STA9, EVT17, AA_4, STA1),
    R(STA10, EVT17, AA_4, STA1),
    R(STA11, EVT17, AA_4, STA1),
    R(STA12, EVT17, AA_4, STA1),
    R(STA13, EVT17, AR_5, STA1),
    /* Evt18: ARTIM timer expired */
    NA(STA1, EVT18),
    R(STA2, EVT18, AA_2, STA1),
    NA(STA3, EVT18),
    NA(STA4, EVT18),
    NA(STA5, EVT18),
    NA(STA6, EVT18),
    NA(STA7, EVT18),
    NA(STA8, EVT18),
    NA(STA9, EVT18),
    NA(STA10, EVT18),
    NA(STA11, EVT18),
    NA(STA12, EVT18),
    R(STA13, EVT18, AA_2, STA1),
    /* Evt19: unrecognized or invalid PDU received */
    NA(STA1, EVT19),
    R(STA2, EVT19, AA_1, STA13),
    R(STA3, EVT19, AA_8, STA13),
    NA(STA4, EVT19),
    R(STA5, EVT19, AA_8, STA13),
    R(STA6, EVT19, AA_8, STA13),
    R(STA7, EVT19, AA_8, STA13),
    R(STA8, EVT19, AA_8, STA13),
    R(STA9, EVT19, AA_8, STA13),
    R(STA10, EVT19, AA_8, STA13),
    R(STA11, EVT19, AA_8, STA13),
    R(STA12, EVT19, AA_8, STA13),
    R(STA13, EVT19, AA_7, STA13),
};

const mwl_ul_transition *mwl_ul_fsm_lookup(int state, int event)
{
    if (state < MWL_UL_STA1 || state > MWL_UL_STA13 || event < MWL_UL_EVT1 || event > MWL_UL_EVT19)
        return NULL;
    /* Rows are in table order, so the cell is found by index; fsm_test
     * checks that every row sits where this formula expects it. */
    return &table[(size_t)(event - 1) * MWL_UL_STATE_COUNT + (size_t)(state - 1)];
}

const mwl_ul_transition *mwl_ul_fsm_table(size_t *count)
{
    if (count)
        *count = sizeof table / sizeof table[0];
    return table;
}

static const char *const action_names[MWL_UL_ACTION_COUNT] = {
    [MWL_UL_ACT_NONE] = "-", [AE_1] = "AE-1", [AE_2] = "AE-2", [AE_3] = "AE-3", [AE_4] = "AE-4",
    [AE_5] = "AE-5",         [AE_6] = "AE-6", [AE_7] = "AE-7", [AE_8] = "AE-8", [DT_1] = "DT-1",
    [DT_2] = "DT-2",         [AR_1] = "AR-1", [AR_2] = "AR-2", [AR_3] = "AR-3", [AR_4] = "AR-4",
    [AR_5] = "AR-5",         [AR_6] = "AR-6", [AR_7] = "AR-7", [AR_8] = "AR-8", [AR_9] = "AR-9",
    [AR_10] = "AR-10",       [AA_1] = "AA-1", [AA_2] = "AA-2", [AA_3] = "AA-3", [AA_4] = "AA-4",
    [AA_5] = "AA-5",         [AA_6] = "AA-6", [AA_7] = "AA-7", [AA_8] = "AA-8",
};

const char *mwl_ul_action_name(int action)
{
    if (action < 0 || action >= MWL_UL_ACTION_COUNT)
        return "?";
    return action_names[action];
}
