/* Original-mode acknowledgements (spec/hl7.md §3): building the ACK the
 * feed sends, and reading one for the client tool.
 *
 * The ACK takes the original's delimiters, so a sender that parses with
 * fixed ones still reads it; every value we write is escaped with them.
 * The ERR segment has the form of the original's version: before 2.4 the
 * one field ERR-1 (seg^seq^field^code&text&HL70357) with the text again in
 * MSA-3, from 2.4 on ERR-2 location, ERR-3 code, ERR-4 severity and ERR-8
 * the text for people. The ACK is UTF-8: MSH-18 says "UNICODE UTF-8" as
 * soon as one byte is not ASCII, and is empty otherwise (ASCII, which any
 * receiver reads whatever it assumes). */
#include "hl7/hl7_int.h"

#include <stdio.h>
#include <string.h>

/* Appends `s` escaped for the delimiters `d` (field, component, repetition,
 * escape, sub-component, truncation or '\0'). Control characters, which
 * would end a segment or garble a log, go as \Xhh\. */
static void put_escaped(mwl_wbuf *w, const char *d, const char *s)
{
    /* Two double quotes as a whole value mean "delete" (null): a value that
     * really is "" goes with its first quote as \X22\. */
    if (strcmp(s, "\"\"") == 0 && !memchr(d, '"', 6)) {
        mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
        mwl_wbuf_put_str(w, "X22");
        mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
        s++;
    }
    for (; *s; s++) {
        char c = *s;
        const char *rep = NULL;
        if (c == d[MWL_HL7_D_FIELD])
            rep = "F";
        else if (c == d[MWL_HL7_D_COMP])
            rep = "S";
        else if (c == d[MWL_HL7_D_REP])
            rep = "R";
        else if (c == d[MWL_HL7_D_ESC])
            rep = "E";
        else if (c == d[MWL_HL7_D_SUB])
            rep = "T";
        else if (d[MWL_HL7_D_TRUNC] && c == d[MWL_HL7_D_TRUNC])
            rep = "P";
        if (rep) {
            mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
            mwl_wbuf_put(w, rep, 1);
            mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
        } else if ((unsigned char)c < 0x20 || c == 0x7F) {
            char hex[8];
            snprintf(hex, sizeof hex, "X%02X", (unsigned char)c);
            mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
            mwl_wbuf_put(w, hex, 3);
            mwl_wbuf_put_u8(w, (uint8_t)d[MWL_HL7_D_ESC]);
        } else {
            mwl_wbuf_put_u8(w, (uint8_t)c);
        }
    }
}

/* Appends an original's field as it was sent (it is escaped with the same
 * delimiters already), minus control characters. */
static void put_raw(mwl_wbuf *w, const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s >= 0x20 && *s != 0x7F)
            mwl_wbuf_put_u8(w, (uint8_t)*s);
    }
}

static void put_uint(mwl_wbuf *w, unsigned v)
{
    char num[16];
    int n = snprintf(num, sizeof num, "%u", v);
    mwl_wbuf_put(w, num, (size_t)n);
}

/* True for versions before 2.4 (2.1 to 2.3.1), whose ERR is ERR-1 alone. */
static bool version_before_2_4(const char *v)
{
    unsigned major = 0, minor = 0;
    if (sscanf(v, "%u.%u", &major, &minor) != 2)
        return false;
    return major < 2 || (major == 2 && minor < 4);
}

void mwl_hl7_ack_build(const mwl_hl7_msg *orig, const mwl_hl7_error *err, const char *control_id,
                       const char *now, mwl_wbuf *out)
{
    static const char default_delims[6] = {'|', '^', '~', '\\', '&', '\0'};
    const char *d = orig ? orig->delims : default_delims;
    const mwl_hl7_msh *h = orig ? &orig->msh : NULL;
    const mwl_hl7_seg *msh = orig && orig->seg_count ? &orig->segs[0] : NULL;
    const char *version = h && h->version[0] ? h->version : "2.5.1";
    bool old = version_before_2_4(version);
    mwl_hl7_ack_code code = err ? err->ack : MWL_HL7_AA;
    if (code != MWL_HL7_AE && code != MWL_HL7_AR)
        code = MWL_HL7_AA;
    static const char *const codes[] = {"AA", "AE", "AR"};
    char fs = d[MWL_HL7_D_FIELD], cs = d[MWL_HL7_D_COMP], ss = d[MWL_HL7_D_SUB];

    /* Everything after MSH first, so MSH-18 can say whether it is ASCII. */
    mwl_wbuf body;
    mwl_wbuf_init(&body, out->mem);
    mwl_wbuf_put_str(&body, "MSA");
    mwl_wbuf_put_u8(&body, (uint8_t)fs);
    mwl_wbuf_put_str(&body, codes[code]);
    mwl_wbuf_put_u8(&body, (uint8_t)fs);
    put_escaped(&body, d, h ? h->control_id : "");
    const char *text = code != MWL_HL7_AA && err->text[0] ? err->text : NULL;
    const char *table_text = code != MWL_HL7_AA ? mwl_hl7_error_text(err->code) : NULL;
    if (code != MWL_HL7_AA && old) {
        mwl_wbuf_put_u8(&body, (uint8_t)fs);
        put_escaped(&body, d, text ? text : table_text);
    }
    mwl_wbuf_put_u8(&body, '\r');
    if (code != MWL_HL7_AA) {
        mwl_wbuf_put_str(&body, "ERR");
        mwl_wbuf_put_u8(&body, (uint8_t)fs);
        if (!old)
            mwl_wbuf_put_u8(&body, (uint8_t)fs); /* ERR-1 left empty from 2.4 on */
        if (err->segment[0]) {
            /* location: segment ^ sequence ^ field (^ repetition ^ component in 2.4+) */
            put_escaped(&body, d, err->segment);
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            put_uint(&body, err->seq ? err->seq : 1);
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            if (err->field)
                put_uint(&body, err->field);
            if (!old && err->field && err->component) {
                mwl_wbuf_put_u8(&body, (uint8_t)cs);
                mwl_wbuf_put_u8(&body, (uint8_t)cs);
                put_uint(&body, err->component);
            }
        } else if (old) {
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
        }
        if (old) {
            /* ERR-1.4, a CE in sub-components: code & text & table */
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            put_uint(&body, (unsigned)err->code);
            mwl_wbuf_put_u8(&body, (uint8_t)ss);
            put_escaped(&body, d, text ? text : table_text);
            mwl_wbuf_put_u8(&body, (uint8_t)ss);
            mwl_wbuf_put_str(&body, "HL70357");
        } else {
            mwl_wbuf_put_u8(&body, (uint8_t)fs);
            put_uint(&body, (unsigned)err->code);
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            put_escaped(&body, d, table_text);
            mwl_wbuf_put_u8(&body, (uint8_t)cs);
            mwl_wbuf_put_str(&body, "HL70357");
            mwl_wbuf_put_u8(&body, (uint8_t)fs);
            mwl_wbuf_put_u8(&body, 'E');
            if (text) {
                for (int i = 5; i <= 8; i++)
                    mwl_wbuf_put_u8(&body, (uint8_t)fs);
                put_escaped(&body, d, text);
            }
        }
        mwl_wbuf_put_u8(&body, '\r');
    }

    mwl_wbuf head;
    mwl_wbuf_init(&head, out->mem);
    mwl_wbuf_put_str(&head, "MSH");
    mwl_wbuf_put(&head, d, d[MWL_HL7_D_TRUNC] ? 6 : 5);
    /* sending and receiving application and facility swapped, whole */
    for (unsigned f = 3; f <= 6; f++) {
        unsigned from = f <= 4 ? f + 2 : f - 2; /* MSH-3 <- 5, 4 <- 6, 5 <- 3, 6 <- 4 */
        mwl_wbuf_put_u8(&head, (uint8_t)fs);
        put_raw(&head, msh ? mwl_hl7_raw_field(orig, msh, from) : "");
    }
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    put_escaped(&head, d, now ? now : "");
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    mwl_wbuf_put_str(&head, "ACK");
    const char *event = h ? h->trigger_event : "";
    if (event[0]) {
        mwl_wbuf_put_u8(&head, (uint8_t)cs);
        put_escaped(&head, d, event);
    }
    if (!old) {
        if (!event[0])
            mwl_wbuf_put_u8(&head, (uint8_t)cs);
        mwl_wbuf_put_u8(&head, (uint8_t)cs);
        mwl_wbuf_put_str(&head, "ACK");
    }
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    put_escaped(&head, d, control_id ? control_id : "");
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    put_escaped(&head, d, h && h->processing_id[0] ? h->processing_id : "P");
    mwl_wbuf_put_u8(&head, (uint8_t)fs);
    put_escaped(&head, d, version);

    bool ascii = head.status == MWL_OK && body.status == MWL_OK;
    for (size_t i = 0; ascii && i < head.len; i++)
        ascii = head.data[i] < 0x80;
    for (size_t i = 0; ascii && i < body.len; i++)
        ascii = body.data[i] < 0x80;
    if (!ascii) {
        for (int i = 13; i <= 18; i++)
            mwl_wbuf_put_u8(&head, (uint8_t)fs);
        /* MSH-18 is read unescaped: when '-' is a delimiter, the other
         * name table 0211 has for UTF-8. */
        mwl_wbuf_put_str(&head, memchr(d, '-', 6) ? "UNICODE" : "UNICODE UTF-8");
    }
    mwl_wbuf_put_u8(&head, '\r');

    if (head.status != MWL_OK || body.status != MWL_OK) {
        /* Make the caller's sticky status say so. */
        if (out->status == MWL_OK)
            out->status = head.status != MWL_OK ? head.status : body.status;
    } else {
        mwl_wbuf_put(out, head.data, head.len);
        mwl_wbuf_put(out, body.data, body.len);
    }
    mwl_wbuf_clear(&head);
    mwl_wbuf_clear(&body);
}

/* Copies a value, cut at a character boundary to fit `cap` (cap 0: no
 * copy). */
static void copy_out(char *dst, size_t cap, const char *src)
{
    if (!dst || cap == 0)
        return;
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        /* not inside a UTF-8 character: back off continuation bytes */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int mwl_hl7_ack_read(const uint8_t *data, size_t len, char code[3], char *control_id, size_t control_cap,
                     char *text, size_t text_cap)
{
    code[0] = '\0';
    copy_out(control_id, control_cap, "");
    copy_out(text, text_cap, "");
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_hl7_msg *m;
    int rc = mwl_hl7_parse(data, len, NULL, &arena, &m, NULL);
    if (rc != MWL_OK) {
        mwl_arena_clear(&arena);
        return rc;
    }
    const mwl_hl7_seg *msa = mwl_hl7_find(m, "MSA", 0, NULL);
    const char *v;
    if (msa) {
        mwl_hl7_get(m, msa, 1, 1, 1, 1, &v);
        copy_out(code, 3, v);
        mwl_hl7_get(m, msa, 2, 1, 1, 1, &v);
        copy_out(control_id, control_cap, v);
    }
    const mwl_hl7_seg *e = mwl_hl7_find(m, "ERR", 0, NULL);
    if (e && mwl_hl7_get(m, e, 8, 1, 1, 1, &v) == MWL_HL7_VALUE)
        copy_out(text, text_cap, v);
    else if (e && mwl_hl7_get(m, e, 1, 1, 4, 2, &v) == MWL_HL7_VALUE)
        copy_out(text, text_cap, v);
    else if (msa && mwl_hl7_get(m, msa, 3, 1, 1, 1, &v) == MWL_HL7_VALUE)
        copy_out(text, text_cap, v);
    else if (e && mwl_hl7_get(m, e, 3, 1, 2, 1, &v) == MWL_HL7_VALUE)
        copy_out(text, text_cap, v);
    mwl_arena_clear(&arena);
    return MWL_OK;
}
