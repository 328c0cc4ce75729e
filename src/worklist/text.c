/* Text helpers for matching: UTF-8 decoding and character folding for PN,
 * value splitting and trimming per VR (PS3.5 6.2, 6.4), PN normalisation
 * (PS3.5 6.2.1), and the one call into dicom/charset.h that turns a value
 * into UTF-8 (STYLE.md §13: matching runs on UTF-8 only). */
#include <stdlib.h>
#include <string.h>

#include "worklist/worklist_int.h"

/* ---- UTF-8 --------------------------------------------------------------- */

uint32_t mwl_utf8_next(const char *s, size_t len, size_t *i)
{
    const uint8_t *p = (const uint8_t *)s + *i;
    size_t left = len - *i;
    uint8_t b = p[0];
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
        *i += 1;
        return b;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        cp = b & 0x07u;
    } else {
        goto invalid;
    }
    if (left < n)
        goto invalid;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            goto invalid;
        cp = (cp << 6) | (p[k] & 0x3Fu);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not characters. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        goto invalid;
    *i += n;
    return cp;
invalid:
    /* One undecodable byte is one "character" equal only to itself, so
     * stored values in the default repertoire with stray 8-bit bytes still
     * compare byte for byte. */
    *i += 1;
    return 0x110000u + b;
}

/* ---- folding (PN only, C.2.2.2.1.1) -------------------------------------- */

/* Base letters of U+00C0..U+017F for accent folding; '.' = leave as is.
 * Ligatures and letters that are not "letter + mark" (AE, OE, IJ, sharp s,
 * thorn, eth, eng, kra, long s) keep their identity. */
static const char accent_base[] =
    /* U+00C0 */ "AAAAAA.CEEEEIIII"
                 /* U+00D0 */ ".NOOOOO.OUUUUY.."
                 /* U+00E0 */ "aaaaaa.ceeeeiiii"
                 /* U+00F0 */ ".nooooo.ouuuuy.y"
                 /* U+0100 */ "AaAaAaCcCcCcCcDd"
                 /* U+0110 */ "DdEeEeEeEeEeGgGg"
                 /* U+0120 */ "GgGgHhHhIiIiIiIi"
                 /* U+0130 */ "Ii..JjKk.LlLlLlL"
                 /* U+0140 */ "lLlNnNnNnn..OoOo"
                 /* U+0150 */ "Oo..RrRrRrSsSsSs"
                 /* U+0160 */ "SsTtTtTtUuUuUuUu"
                 /* U+0170 */ "UuUuWwYyYZzZzZz.";

_Static_assert(sizeof accent_base == 0x180 - 0xC0 + 1, "one entry per code point U+00C0..U+017F");

static uint32_t fold_case(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 0x20;
    if (c < 0xC0)
        return c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 0x20; /* Latin-1 capitals */
    if (c >= 0x100 && c <= 0x17F) {
        /* Latin Extended-A pairs capital/small on even/odd code points, with
         * the parity flipped in U+0139..U+0148 and U+0179..U+017E. */
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return c;
        if (c == 0x178)
            return 0xFF;
        bool flipped = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        bool capital = flipped ? (c & 1u) != 0 : (c & 1u) == 0;
        return capital ? c + 1 : c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 0x20; /* Greek capitals */
    if (c == 0x3C2)
        return 0x3C3; /* final sigma */
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 0x25;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 0x3F;
    if (c >= 0x410 && c <= 0x42F)
        return c + 0x20; /* Cyrillic capitals */
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 0x20; /* full-width Latin, common in Japanese names */
    return c;
}

uint32_t mwl_fold_char(uint32_t cp, unsigned fold)
{
    if ((fold & MWL_FOLD_ACCENT) && cp >= 0xC0 && cp < 0x180 && accent_base[cp - 0xC0] != '.')
        cp = (uint8_t)accent_base[cp - 0xC0];
    if (fold & MWL_FOLD_CASE)
        cp = fold_case(cp);
    return cp;
}

/* ---- values -------------------------------------------------------------- */

bool mwl_wl_next_value(mwl_vr vr, const char *s, size_t len, size_t *pos, const char **value, size_t *vlen)
{
    if (len == 0 || *pos > len)
        return false;
    const char *start = s + *pos;
    size_t n;
    if (mwl_vr_get_info(vr)->kind == MWL_VR_KIND_TEXT) {
        /* LT, ST, UT, UR have VM 1: '\' is an ordinary character (PS3.5 6.4). */
        n = len - *pos;
    } else {
        const char *end = memchr(start, '\\', len - *pos);
        n = end ? (size_t)(end - start) : len - *pos;
    }
    *pos += n + 1;
    mwl_str_trim(vr, &start, &n);
    *value = start;
    *vlen = n;
    return true;
}

static void put_trimmed_component(const char *s, size_t n, mwl_wbuf *out)
{
    while (n && s[n - 1] == ' ')
        n--;
    while (n && *s == ' ') {
        s++;
        n--;
    }
    if (n)
        mwl_wbuf_put(out, s, n);
}

void mwl_pn_normalize(const char *s, size_t len, mwl_wbuf *out)
{
    size_t keep = out->len; /* end of the last non-empty group written */
    size_t i = 0;
    bool first_group = true;
    while (i <= len) {
        const char *g = s + i;
        const char *geq = memchr(g, '=', len - i);
        size_t glen = geq ? (size_t)(geq - g) : len - i;
        if (!first_group)
            mwl_wbuf_put_u8(out, '=');
        first_group = false;
        size_t group_start = out->len, comp_keep = out->len;
        size_t j = 0;
        bool first_comp = true;
        while (j <= glen) {
            const char *c = g + j;
            const char *caret = memchr(c, '^', glen - j);
            size_t clen = caret ? (size_t)(caret - c) : glen - j;
            if (!first_comp)
                mwl_wbuf_put_u8(out, '^');
            first_comp = false;
            size_t before = out->len;
            put_trimmed_component(c, clen, out);
            if (out->len > before)
                comp_keep = out->len;
            j += clen + 1;
        }
        /* Trailing empty components and their '^' are not significant. */
        if (out->status == MWL_OK)
            out->len = comp_keep;
        if (comp_keep > group_start)
            keep = out->len;
        i += glen + 1;
    }
    if (out->status == MWL_OK)
        out->len = keep;
}

bool mwl_wl_parse_number(const char *s, size_t len, double *out)
{
    /* PS3.5 Table 6.2-1: IS and DS use 0-9 + - E e . only, so strtod's
     * "inf", "nan" and hexadecimal forms are refused. */
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!strchr("0123456789+-Ee.", s[i]) || s[i] == '\0')
            return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return end == buf + len;
}

/* ---- character sets ------------------------------------------------------ */

int mwl_wl_charset(const mwl_ds *ds, const mwl_charset *inherited, mwl_charset *out, mwl_diag *diag)
{
    const mwl_elem *e = mwl_ds_find(ds, MWL_TAG_SpecificCharacterSet);
    if (!e || e->length == 0 || e->vr == MWL_VR_SQ) {
        *out = *inherited;
        return MWL_OK;
    }
    int rc = mwl_charset_parse((const char *)e->value, e->length, out, diag);
    if (rc != MWL_OK && diag)
        diag->tag = MWL_TAG_SpecificCharacterSet;
    return rc;
}

static bool needs_decoding(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= 0x80 || p[i] == 0x1B)
            return true;
    }
    return false;
}

int mwl_wl_text(const mwl_charset *cs, mwl_vr vr, const uint8_t *raw, size_t len, mwl_wbuf *scratch,
                const char **out, size_t *out_len, mwl_diag *diag)
{
    if (len == 0) {
        *out = "";
        *out_len = 0;
        return MWL_OK;
    }
    /* Stray 8-bit bytes in the default repertoire go through
     * mwl_charset_decode like any other text (it reads them as Latin-1, what
     * such legacy feeds mean), so the matcher and the store's index see the
     * same characters. */
    if (!mwl_vr_get_info(vr)->charset || mwl_charset_is_utf8(cs) || !needs_decoding(raw, len)) {
        *out = (const char *)raw;
        *out_len = len;
        return MWL_OK;
    }
    scratch->len = 0;
    scratch->status = MWL_OK;
    int rc = mwl_charset_decode(cs, vr, raw, len, scratch, diag);
    if (rc != MWL_OK)
        return rc;
    if (scratch->status != MWL_OK)
        return MWL_E_NOMEM;
    *out = scratch->len ? (const char *)scratch->data : "";
    *out_len = scratch->len;
    return MWL_OK;
}

/* ---- index form for the store ---------------------------------------------- */

static void put_utf8(mwl_wbuf *out, uint32_t cp)
{
    uint8_t b[4];
    size_t n;
    if (cp >= 0x110000) { /* an undecodable byte: itself (mwl_utf8_next) */
        b[0] = (uint8_t)(cp - 0x110000);
        n = 1;
    } else if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    mwl_wbuf_put(out, b, n);
}

void mwl_pn_index_form(const char *utf8, size_t len, bool normalize, mwl_wbuf *out)
{
    mwl_wbuf norm;
    const char *s = utf8;
    size_t n = len;
    if (normalize) {
        mwl_wbuf_init(&norm, out->mem);
        mwl_pn_normalize(utf8, len, &norm);
        if (norm.status != MWL_OK) {
            out->status = norm.status;
            mwl_wbuf_clear(&norm);
            return;
        }
        s = (const char *)norm.data;
        n = norm.len;
    }
    /* The widest folding any match option applies, so that two characters
     * equal under some option are equal here too. */
    for (size_t i = 0; i < n;)
        put_utf8(out, mwl_fold_char(mwl_utf8_next(s, n, &i), MWL_FOLD_CASE | MWL_FOLD_ACCENT));
    if (normalize)
        mwl_wbuf_clear(&norm);
}
