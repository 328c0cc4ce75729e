/* Fuzz target for the PDU codec (src/ul/pdu.c, PS3.8 §9.3).
 *
 * Decodes arbitrary bytes as one PDU. When that succeeds, the PDU is
 * encoded again, the encoding decoded, and the two structs compared field
 * by field; the second encoding must equal the first byte for byte. Any
 * disagreement aborts. The same input is also decoded under tight limits
 * and must give a documented status. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ul/pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_pdu: %s\n", what);
    abort();
}

static bool documented_status(int rc)
{
    return rc == MWL_OK || rc == MWL_NEED_MORE || rc == MWL_E_UNSUPPORTED || rc == MWL_E_LIMIT ||
           rc == MWL_E_MALFORMED || rc == MWL_E_NOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu first;
    size_t consumed = 0;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_pdu_decode(data, size, &arena, &lim, &first, &consumed, &diag);
    if (!documented_status(rc) || rc == MWL_E_NOMEM)
        fail("undocumented status");
    if (rc < 0 && diag.msg[0] == '\0')
        fail("error without a diag message");

    if (rc == MWL_OK) {
        if (consumed != MWL_PDU_HEADER_SIZE + (size_t)first.length || consumed > size)
            fail("consumed does not match the PDU-length");
        mwl_wbuf w1, w2;
        mwl_wbuf_init(&w1, NULL);
        mwl_wbuf_init(&w2, NULL);
        if (mwl_pdu_encode(&first, &w1) != MWL_OK)
            fail("a decoded PDU does not encode");
        /* Re-encoding may grow an AC by an empty 40H per context, so the
         * second decode must not trip over the PDU-length limit. */
        mwl_pdu_limits big = lim;
        big.max_pdu_length = UINT32_MAX;
        mwl_arena arena2;
        mwl_arena_init(&arena2, NULL);
        mwl_pdu second;
        size_t consumed2 = 0;
        rc = mwl_pdu_decode(w1.data, w1.len, &arena2, &big, &second, &consumed2, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "second decode: %s\n", diag.msg);
            fail("an encoded PDU does not decode");
        }
        if (consumed2 != w1.len)
            fail("second decode did not consume the encoding");
        const char *what;
        if (!mwl_pdu_equal(&first, &second, false, &what))
            fail(what);
        if (mwl_pdu_encode(&second, &w2) != MWL_OK)
            fail("second encode failed");
        if (w1.len != w2.len || memcmp(w1.data, w2.data, w1.len) != 0)
            fail("encoding is not stable");
        mwl_wbuf_clear(&w1);
        mwl_wbuf_clear(&w2);
        mwl_arena_clear(&arena2);
    }
    mwl_arena_clear(&arena);

    /* Tight limits: every limit path must end in a documented status. */
    mwl_pdu_limits tight = {.max_pdu_length = (uint32_t)(size / 2),
                            .max_contexts = 2,
                            .max_transfer_syntaxes = 2,
                            .max_sub_items = 1,
                            .max_pdvs = 2};
    rc = mwl_pdu_decode(data, size, &arena, &tight, &first, &consumed, NULL);
    if (!documented_status(rc) || rc == MWL_E_NOMEM)
        fail("undocumented status under tight limits");
    mwl_arena_clear(&arena);
    return 0;
}
