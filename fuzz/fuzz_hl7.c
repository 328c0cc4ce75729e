/* Fuzz target for hl7/message.c and hl7/ack.c. The input is one HL7
 * message (an MLLP payload). What parses is walked through every
 * accessor: every segment, field, repetition, component and sub-component
 * (bounded per level, so a long field does not make the walk quadratic),
 * each value checked to be NUL-free valid UTF-8 of the presence it claims.
 * Then the ACK for it (and for each failure, with the MSH kept for it) is
 * built, must read back with its code, control ID and text, and must
 * itself parse. */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "hl7/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WALK 6 /* repetitions, components, sub-components visited per level */

static void check_utf8(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : mwl_utf8_decode((const uint8_t *)s + i, len - i, NULL);
        if (n == 0)
            abort();
        i += n;
    }
}

static void check_value(mwl_hl7_presence p, const char *v)
{
    if (!v)
        abort();
    if (p != MWL_HL7_VALUE && v[0] != '\0')
        abort();
    if (p == MWL_HL7_VALUE && v[0] == '\0')
        abort();
    check_utf8(v);
}

static void walk(const mwl_hl7_msg *m)
{
    size_t count = mwl_hl7_segment_count(m);
    for (size_t i = 0; i < count; i++) {
        const mwl_hl7_seg *s = mwl_hl7_segment_at(m, i);
        const char *name = mwl_hl7_seg_name(s);
        if (!s || strlen(name) != 3)
            abort();
        size_t at;
        const mwl_hl7_seg *first = mwl_hl7_find(m, name, 0, &at);
        if (!first || at > i || (at == i && mwl_hl7_seg_seq(s) != 1) || mwl_hl7_seg_seq(s) == 0)
            abort();
        if (mwl_hl7_find(m, name, i, &at) != s || at != i)
            abort();
        size_t fields = mwl_hl7_field_count(s);
        if (fields > 1000)
            abort();
        for (unsigned f = 0; f <= fields + 1; f++) {
            const char *raw = mwl_hl7_raw_field(m, s, f);
            unsigned reps = mwl_hl7_reps(m, s, f);
            const char *v;
            if (reps == 0) {
                if (mwl_hl7_get(m, s, f, 1, 1, 1, &v) != MWL_HL7_ABSENT || raw[0] != '\0')
                    abort();
                continue;
            }
            if (f == 0 || f > fields || reps == 0 || reps > 1000)
                abort();
            for (unsigned r = 0; r <= reps && r <= WALK; r++) {
                for (unsigned c = 0; c <= WALK; c++) {
                    for (unsigned sc = 0; sc <= 2; sc++) {
                        mwl_hl7_presence p = mwl_hl7_get(m, s, f, r, c, sc, &v);
                        check_value(p, v);
                        if ((r == 0 || c == 0 || sc == 0) && p != MWL_HL7_ABSENT)
                            abort();
                    }
                }
            }
            check_value(mwl_hl7_get(m, s, f, reps + 1, 1, 1, &v), v);
            if (mwl_hl7_get(m, s, f, reps + 1, 1, 1, &v) != MWL_HL7_ABSENT)
                abort();
        }
    }
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    const char *fields[] = {h->sending_application,
                            h->sending_facility,
                            h->receiving_application,
                            h->receiving_facility,
                            h->time,
                            h->message_type,
                            h->trigger_event,
                            h->structure,
                            h->control_id,
                            h->processing_id,
                            h->version,
                            h->accept_ack_type,
                            h->app_ack_type,
                            h->charset};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i])
            abort();
        check_utf8(fields[i]);
    }
    if (!mwl_hl7_dicom_charset(m))
        abort();
}

/* Builds the ACK of `m` for `err`, reads it back, parses it. */
static void ack(const mwl_hl7_msg *m, const mwl_hl7_error *err)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_hl7_ack_build(m, err, "MWL1", "20250301101501", &w);
    if (w.status != MWL_OK)
        abort();
    char code[3], ctl[256], text[256];
    if (mwl_hl7_ack_read(w.data, w.len, code, ctl, sizeof ctl, text, sizeof text) != MWL_OK)
        abort();
    const char *want = !err || err->ack == MWL_HL7_AA ? "AA" : err->ack == MWL_HL7_AE ? "AE" : "AR";
    if (strcmp(code, want) != 0)
        abort();
    const char *id = m ? mwl_hl7_header(m)->control_id : "";
    if (strlen(id) < sizeof ctl && strcmp(ctl, id) != 0)
        abort();
    if (err && err->ack != MWL_HL7_AA && err->text[0] && strcmp(text, err->text) != 0)
        abort();
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_hl7_msg *again;
    mwl_hl7_error e;
    if (mwl_hl7_parse(w.data, w.len, NULL, &a, &again, &e) != MWL_OK)
        abort();
    walk(again);
    mwl_arena_clear(&a);
    mwl_wbuf_clear(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const defaults[] = {NULL, "ASCII", "UNICODE UTF-8", "ISO IR87"};
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_hl7_parse_options opt = {.default_charset = defaults[size % 4],
                                 .max_segments = size % 7 == 0 ? 5 : 0};
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error err;
    int rc = mwl_hl7_parse(data, size, &opt, &a, &m, &err);
    if (rc != MWL_OK && rc != MWL_E_MALFORMED && rc != MWL_E_CHARSET && rc != MWL_E_LIMIT)
        abort();
    if (rc == MWL_OK && !m)
        abort();
    if (rc != MWL_OK) {
        if (err.ack == MWL_HL7_AA)
            abort(); /* a failure always says why */
        check_utf8(err.text);
    }
    if (m)
        walk(m);
    ack(m, rc == MWL_OK ? NULL : &err);
    /* and a content error on whatever parsed, as the mapper would send */
    if (m) {
        mwl_hl7_error e;
        mwl_hl7_error_set(&e, size % 2 ? MWL_HL7_AE : MWL_HL7_AR, MWL_HL7_ERR_REQUIRED_MISSING,
                          mwl_hl7_seg_name(mwl_hl7_segment_at(m, mwl_hl7_segment_count(m) - 1)), 1, 3, 2,
                          "%s", mwl_hl7_header(m)->sending_application);
        ack(m, &e);
    }
    mwl_arena_clear(&a);
    return 0;
}
