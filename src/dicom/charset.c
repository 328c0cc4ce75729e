/* Character sets (PS3.5 §6.1, PS3.3 C.12.1.1.2): the one place where text
 * in a Specific Character Set (0008,0005) becomes UTF-8 and back
 * (STYLE.md §13). Every code page conversion goes through glibc iconv; this
 * file only does what iconv cannot: the ISO 2022 code extension state
 * machine of PS3.5 §6.1.2.5 (escape sequences, G0/G1, resets at delimiters).
 *
 * What is accepted, and why (decoding is forgiving where the meaning is
 * unambiguous, encoding is strict):
 *
 *  - Defined terms are matched ignoring case and the separators ' ', '_'
 *    and '-', so "ISO-IR 100", "ISO_IR100" and "iso_ir 100" all mean
 *    ISO_IR 100; such misspellings are common and cannot be confused with
 *    anything else. "ISO_IR 6" is not a defined term but is often sent to
 *    mean the default repertoire, and is read that way (as DCMTK does).
 *  - In a multi-valued (0008,0005) every value is read as its "ISO 2022 ..."
 *    form: peers send "ISO_IR 13\ISO 2022 IR 87" and mean
 *    "ISO 2022 IR 13\ISO 2022 IR 87". A value 1 naming a multi-byte G0 set
 *    ("ISO 2022 IR 87" alone, a common mistake) is read as if value 1 were
 *    empty, because G0 must start as ASCII for the delimiters to be found
 *    (PS3.3 Table C.12-4 lists these sets for values 2..n only). A value 1
 *    naming KS X 1001 or GB 2312 is read literally: G1 holds it from the
 *    start, which needs no guessing.
 *  - A value 1 of ISO_IR 192, GB18030 or GBK makes any further values
 *    meaningless (no code extensions are possible, PS3.5 §6.1.2.4 note 3);
 *    they are ignored, as pydicom does. After value 1 they are rejected.
 *  - Default repertoire (no or empty (0008,0005)): bytes A0H-FFH are decoded
 *    as ISO 8859-1, because that is what peers that omit the attribute
 *    almost always mean; pydicom assumes the same. Encoding into the default
 *    repertoire stays strict ASCII, so we never send what we tolerate.
 *  - C1 bytes (80H-9FH) are rejected in every ISO 8859/ISO 2022 set: PS3.5
 *    §6.1.2.5 excludes C1, and iconv would turn them into invisible
 *    U+0080-U+009F controls (typically mislabelled Windows-1252 text).
 *  - JIS X 0201 romaji (the G0 half of ISO_IR 13, ESC ( J) is read as
 *    ASCII: 5CH is the DICOM value delimiter whatever the set (PS3.5
 *    §6.4), and readers such as pydicom map 7EH to '~' as well.
 *  - Escape sequences are accepted only for sets listed in (0008,0005), plus
 *    ESC ( B (ISO-IR 6 in G0) which is part of every single-byte set. An
 *    escape for an unlisted set, an unknown or truncated escape, and any ESC
 *    in ISO_IR 192/GB18030/GBK text are MWL_E_CHARSET.
 *  - The decoder resets to the initial state at every control character
 *    (CR, LF, FF, TAB, ...), at '\' between values (not in LT/ST/UT/UR), and
 *    at '^' and '=' in PN, as PS3.5 §6.1.2.5.3 requires the encoder to
 *    switch back there; a G1 set that was designated by escape must
 *    therefore be designated again after a delimiter (PS3.5 Annex I/K).
 *
 * Thread safety: the only mutable state is a per-thread cache of iconv
 * descriptors (iconv_t must not be shared between threads). Opening a
 * descriptor costs about 0.4 us against 0.05 us for converting a short
 * name, so each thread keeps the ones it used; a pthread key destructor
 * closes them when the thread exits. */
#include "dicom/charset.h"

#include "base/utf8.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ESC 0x1B

/* ---- the character sets ------------------------------------------------ */

/* Internal identifiers stored in mwl_charset.ids[]. */
enum set_id {
    SET_DEFAULT = 0, /* empty value 1: ISO-IR 6 in G0, G1 undefined */
    SET_IR6,
    SET_IR100,
    SET_IR101,
    SET_IR109,
    SET_IR110,
    SET_IR144,
    SET_IR127,
    SET_IR126,
    SET_IR138,
    SET_IR148,
    SET_IR203,
    SET_IR166,
    SET_IR13,
    SET_IR87,
    SET_IR159,
    SET_IR149,
    SET_IR58,
    SET_UTF8,
    SET_GB18030,
    SET_GBK,
    SET_COUNT
};

/* How a set is coded (PS3.5 §6.1.2.5.4, ISO 2022). */
enum set_kind {
    KIND_ASCII,     /* ISO-IR 6 in G0 */
    KIND_G1_96,     /* a 96-set in G1 (GR, A0H-FFH): ISO 8859 right halves, TIS 620 */
    KIND_JIS_X0201, /* katakana 94-set in G1 (A1H-DFH), romaji in G0 */
    KIND_G0_DOUBLE, /* a 94x94 set in G0 (GL pairs 21H-7EH): JIS X 0208, JIS X 0212 */
    KIND_G1_DOUBLE, /* a 94x94 set in G1 (GR pairs A1H-FEH): KS X 1001, GB 2312 */
    KIND_WHOLE      /* not ISO 2022 at all: UTF-8, GB18030, GBK */
};

/* iconv encodings, shared by the sets that use them. */
enum codec_id {
    CODEC_NONE = -1,
    CODEC_8859_1,
    CODEC_8859_2,
    CODEC_8859_3,
    CODEC_8859_4,
    CODEC_8859_5,
    CODEC_8859_6,
    CODEC_8859_7,
    CODEC_8859_8,
    CODEC_8859_9,
    CODEC_8859_15,
    CODEC_TIS620,
    CODEC_SJIS,
    CODEC_EUCJP,
    CODEC_EUCKR,
    CODEC_GB2312,
    CODEC_GB18030,
    CODEC_GBK,
    CODEC_COUNT
};

static const char *const codec_names[CODEC_COUNT] = {
    "ISO-8859-1", "ISO-8859-2", "ISO-8859-3", "ISO-8859-4", "ISO-8859-5", "ISO-8859-6", "ISO-8859-7",
    "ISO-8859-8", "ISO-8859-9", "ISO-8859-15", "TIS-620",
    /* The single bytes A1H-DFH of Shift_JIS are JIS X 0201 katakana. */
    "SHIFT_JIS",
    /* EUC-JP is JIS X 0208 with the high bits set, and JIS X 0212 the same
     * after SS3 (8FH): the GL pairs of ISO 2022 IR 87/159 map onto it. */
    "EUC-JP",
    /* EUC-KR and EUC-CN (GB2312) are KS X 1001 and GB 2312 in GR, exactly
     * as ISO 2022 IR 149/58 put them in G1. */
    "EUC-KR", "GB2312", "GB18030", "GBK"};

typedef struct set_info {
    const char *ir;   /* ISO-IR number of the defined terms ("100"), or NULL */
    const char *term; /* defined term without code extensions, or NULL */
    uint8_t kind;     /* enum set_kind */
    int8_t codec;     /* enum codec_id */
    char esc[4];      /* designating escape sequence without ESC, "" if none */
} set_info;

/* PS3.3 Tables C.12-2 to C.12-5; escape sequences from PS3.3 C.12-3/C.12-4
 * (ESC 2D F designates a 96-set to G1, ESC 29 F a 94-set to G1, ESC 24 ...
 * a multi-byte set, ISO 2022 §13). */
static const set_info sets[SET_COUNT] = {
    [SET_DEFAULT] = {NULL, "", KIND_ASCII, CODEC_NONE, "(B"},
    [SET_IR6] = {"6", NULL, KIND_ASCII, CODEC_NONE, "(B"},
    [SET_IR100] = {"100", "ISO_IR 100", KIND_G1_96, CODEC_8859_1, "-A"},
    [SET_IR101] = {"101", "ISO_IR 101", KIND_G1_96, CODEC_8859_2, "-B"},
    [SET_IR109] = {"109", "ISO_IR 109", KIND_G1_96, CODEC_8859_3, "-C"},
    [SET_IR110] = {"110", "ISO_IR 110", KIND_G1_96, CODEC_8859_4, "-D"},
    [SET_IR144] = {"144", "ISO_IR 144", KIND_G1_96, CODEC_8859_5, "-L"},
    [SET_IR127] = {"127", "ISO_IR 127", KIND_G1_96, CODEC_8859_6, "-G"},
    [SET_IR126] = {"126", "ISO_IR 126", KIND_G1_96, CODEC_8859_7, "-F"},
    [SET_IR138] = {"138", "ISO_IR 138", KIND_G1_96, CODEC_8859_8, "-H"},
    [SET_IR148] = {"148", "ISO_IR 148", KIND_G1_96, CODEC_8859_9, "-M"},
    [SET_IR203] = {"203", "ISO_IR 203", KIND_G1_96, CODEC_8859_15, "-b"},
    [SET_IR166] = {"166", "ISO_IR 166", KIND_G1_96, CODEC_TIS620, "-T"},
    [SET_IR13] = {"13", "ISO_IR 13", KIND_JIS_X0201, CODEC_SJIS, ")I"},
    [SET_IR87] = {"87", NULL, KIND_G0_DOUBLE, CODEC_EUCJP, "$B"},
    [SET_IR159] = {"159", NULL, KIND_G0_DOUBLE, CODEC_EUCJP, "$(D"},
    [SET_IR149] = {"149", NULL, KIND_G1_DOUBLE, CODEC_EUCKR, "$)C"},
    [SET_IR58] = {"58", NULL, KIND_G1_DOUBLE, CODEC_GB2312, "$)A"},
    [SET_UTF8] = {"192", "ISO_IR 192", KIND_WHOLE, CODEC_NONE, ""},
    [SET_GB18030] = {NULL, "GB18030", KIND_WHOLE, CODEC_GB18030, ""},
    [SET_GBK] = {NULL, "GBK", KIND_WHOLE, CODEC_GBK, ""},
};

/* JIS X 0201 romaji, the G0 half of ISO 2022 IR 13 (PS3.3 Table C.12-3). */
static const char esc_romaji[] = "(J";

/* Human-readable name of a set for diagnostics. */
static const char *set_label(int set)
{
    static const char *const labels[SET_COUNT] = {
        "ISO-IR 6",   "ISO-IR 6",   "ISO-IR 100", "ISO-IR 101", "ISO-IR 109", "ISO-IR 110", "ISO-IR 144",
        "ISO-IR 127", "ISO-IR 126", "ISO-IR 138", "ISO-IR 148", "ISO-IR 203", "ISO-IR 166", "ISO-IR 13",
        "ISO-IR 87",  "ISO-IR 159", "ISO-IR 149", "ISO-IR 58",  "ISO_IR 192", "GB18030",    "GBK"};
    return set >= 0 && set < SET_COUNT ? labels[set] : "?";
}

/* ---- per-thread iconv descriptors ------------------------------------- */

enum { TO_UTF8 = 0, FROM_UTF8 = 1 };

/* NULL means "not opened yet" (iconv_open never returns NULL). */
typedef struct cd_cache {
    iconv_t cd[2][CODEC_COUNT];
    bool registered; /* handed to the pthread key, so closed at thread exit */
} cd_cache;

static _Thread_local cd_cache tls_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static void cache_close(void *p)
{
    cd_cache *c = p;
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < CODEC_COUNT; k++) {
            if (c->cd[d][k]) {
                iconv_close(c->cd[d][k]);
                c->cd[d][k] = NULL;
            }
        }
    }
    c->registered = false;
}

static void cache_key_create(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_close) == 0;
}

/* The calling thread's descriptor for `codec` in direction `dir`, in its
 * initial shift state. */
static int get_cd(int codec, int dir, iconv_t *out, mwl_diag *diag)
{
    cd_cache *c = &tls_cache;
    iconv_t cd = c->cd[dir][codec];
    if (!cd) {
        if (!c->registered) {
            pthread_once(&cache_once, cache_key_create);
            /* Without the key the descriptors still work; they are only
             * not closed when this thread exits. */
            if (cache_key_ok && pthread_setspecific(cache_key, c) == 0)
                c->registered = true;
        }
        const char *name = codec_names[codec];
        cd = dir == TO_UTF8 ? iconv_open("UTF-8", name) : iconv_open(name, "UTF-8");
        if (cd == (iconv_t)-1) {
            int err = errno;
            mwl_diag_set(diag, 0, 0, "iconv cannot convert %s (%s)", name, strerror(err));
            return err == ENOMEM ? MWL_E_NOMEM : MWL_E_UNSUPPORTED;
        }
        c->cd[dir][codec] = cd;
    }
    *out = cd;
    return MWL_OK;
}

/* ---- small helpers ------------------------------------------------------ */

/* Which single bytes end a value, component or group (PS3.5 §6.1.2.5.3):
 * '\' between values of the multi-valued string VRs, and for PN also the
 * component '^' and group '=' delimiters (PS3.5 §6.2.1). */
static bool is_delimiter(mwl_vr vr, uint8_t b)
{
    if (b == '\\')
        return mwl_vr_get_info(vr)->kind != MWL_VR_KIND_TEXT;
    if (b == '^' || b == '=')
        return vr == MWL_VR_PN;
    return false;
}

/* Copies `len` bytes of raw text into diag-safe printable form. */
static void printable(char *dst, size_t cap, const char *src, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[k++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
    }
    dst[k] = '\0';
}

/* Converts `len` bytes with `cd` and appends the result to `out`. On a
 * conversion error *bad is the number of input bytes converted before it. */
static int iconv_append(iconv_t cd, const uint8_t *in, size_t len, mwl_wbuf *out, size_t *bad)
{
    char *ip = (char *)(uintptr_t)in; /* iconv's API is not const-correct */
    size_t il = len;
    while (il > 0) {
        size_t room = il * 4 + 16;
        uint8_t *dst = mwl_wbuf_reserve(out, room);
        if (!dst)
            return out->status;
        char *op = (char *)dst;
        size_t ol = room;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        out->len += room - ol;
        if (r == (size_t)-1 && errno == E2BIG)
            continue;
        if (r != 0) {
            /* EILSEQ or EINVAL; or r > 0: glibc counts irreversible
             * (approximated) conversions, which should not happen without
             * //TRANSLIT but are never accepted. Where is then unknown. */
            *bad = r == (size_t)-1 && il > 0 ? len - il : 0;
            /* Back to the initial shift state for the next user. */
            iconv(cd, NULL, NULL, NULL, NULL);
            return MWL_E_CHARSET;
        }
    }
    return MWL_OK;
}

/* ---- parsing (0008,0005) ------------------------------------------------ */

void mwl_charset_init_default(mwl_charset *cs)
{
    memset(cs, 0, sizeof *cs);
}

/* One defined term (trimmed) -> set id and whether it was written in its
 * "ISO 2022" form. Returns false for an unknown term. */
static bool lookup_term(const char *term, size_t len, int *set, bool *form2022)
{
    char norm[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = term[i];
        if (ch == ' ' || ch == '_' || ch == '-')
            continue;
        if (n + 1 >= sizeof norm)
            return false;
        norm[n++] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    }
    norm[n] = '\0';
    *form2022 = false;
    if (n == 0) {
        *set = SET_DEFAULT;
        return true;
    }
    if (strcmp(norm, "GB18030") == 0 || strcmp(norm, "GBK") == 0) {
        *set = norm[2] == 'K' ? SET_GBK : SET_GB18030;
        return true;
    }
    const char *num;
    if (strncmp(norm, "ISO2022IR", 9) == 0) {
        num = norm + 9;
        *form2022 = true;
    } else if (strncmp(norm, "ISOIR", 5) == 0) {
        num = norm + 5;
    } else {
        return false;
    }
    for (int s = SET_IR6; s < SET_COUNT; s++) {
        if (!sets[s].ir || strcmp(sets[s].ir, num) != 0)
            continue;
        /* ISO_IR 192 has no ISO 2022 form. */
        if (*form2022 && sets[s].kind == KIND_WHOLE)
            return false;
        *set = s;
        return true;
    }
    return false;
}

int mwl_charset_parse(const char *value, size_t len, mwl_charset *out, mwl_diag *diag)
{
    mwl_charset cs;
    mwl_charset_init_default(&cs);
    int ids[16];
    size_t nvalues = 0;
    bool any2022 = false;
    if (!value) /* a zero-length element's value (no pointer arithmetic on NULL) */
        value = "";

    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && value[i] != '\\')
            continue;
        const char *t = value + start;
        size_t tl = i - start;
        start = i + 1;
        /* CS values: leading/trailing spaces are insignificant; a NUL pad
         * is a common mistake and harmless. */
        while (tl && (*t == ' ' || *t == '\0')) {
            t++;
            tl--;
        }
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\0'))
            tl--;
        int set;
        bool form2022;
        if (!lookup_term(t, tl, &set, &form2022)) {
            char shown[48];
            printable(shown, sizeof shown, t, tl);
            mwl_diag_set(diag, (size_t)(t - value), 0, "unknown Specific Character Set term \"%s\"", shown);
            return MWL_E_UNSUPPORTED;
        }
        /* Values 2..n that are empty carry nothing. */
        if (set == SET_DEFAULT && nvalues > 0)
            continue;
        if (nvalues == sizeof ids / sizeof ids[0]) {
            mwl_diag_set(diag, (size_t)(t - value), 0, "too many Specific Character Set values");
            return MWL_E_LIMIT;
        }
        ids[nvalues++] = set;
        if (form2022)
            any2022 = true;
    }

    if (nvalues == 1 && ids[0] == SET_DEFAULT) {
        *out = cs;
        return MWL_OK;
    }
    /* PS3.5 §6.1.2.5.4 (d): these allow no code extensions, so values after
     * them can never be invoked. */
    if (sets[ids[0]].kind == KIND_WHOLE) {
        nvalues = 1;
        any2022 = false;
    }
    for (size_t k = 1; k < nvalues; k++) {
        if (sets[ids[k]].kind == KIND_WHOLE) {
            mwl_diag_set(diag, 0, 0, "%s cannot be used with code extensions", set_label(ids[k]));
            return MWL_E_UNSUPPORTED;
        }
    }
    if (nvalues == 1 && ids[0] == SET_IR6 && !any2022) {
        /* "ISO_IR 6": not a defined term, but everyone means ASCII. */
        *out = cs;
        return MWL_OK;
    }
    size_t n = 0;
    if (sets[ids[0]].kind == KIND_G0_DOUBLE)
        cs.ids[n++] = SET_DEFAULT;
    for (size_t k = 0; k < nvalues; k++) {
        if (n == sizeof cs.ids) {
            mwl_diag_set(diag, 0, 0, "too many Specific Character Set values");
            return MWL_E_LIMIT;
        }
        cs.ids[n++] = (uint8_t)ids[k];
    }
    cs.count = (uint8_t)n;
    /* Multi-byte ISO 2022 sets exist only with code extensions, whatever
     * the spelling. */
    bool needs2022 = n > 1 || any2022;
    for (size_t k = 0; k < n; k++) {
        if (sets[cs.ids[k]].kind == KIND_G0_DOUBLE || sets[cs.ids[k]].kind == KIND_G1_DOUBLE)
            needs2022 = true;
    }
    cs.iso2022 = needs2022;
    *out = cs;
    return MWL_OK;
}

int mwl_charset_of(const mwl_ds *ds, mwl_charset *out, mwl_diag *diag)
{
    for (const mwl_ds *d = ds; d; d = mwl_ds_parent(d)) {
        const mwl_elem *e = mwl_ds_find(d, MWL_TAG_SpecificCharacterSet);
        if (!e || !e->value)
            continue;
        /* An empty or all-blank value names nothing: inherit, as if the
         * element were absent (a query may carry it empty). */
        bool blank = true;
        for (uint32_t i = 0; i < e->length && blank; i++)
            blank = e->value[i] == ' ' || e->value[i] == '\0';
        if (blank)
            continue;
        int rc = mwl_charset_parse((const char *)e->value, e->length, out, diag);
        if (rc != MWL_OK && diag)
            diag->tag = MWL_TAG_SpecificCharacterSet;
        return rc;
    }
    mwl_charset_init_default(out);
    return MWL_OK;
}

/* Rejects a mwl_charset that mwl_charset_parse could not have produced. */
static int check_charset(const mwl_charset *cs, mwl_diag *diag)
{
    if (cs->count > sizeof cs->ids)
        goto bad;
    for (size_t k = 0; k < cs->count; k++) {
        if (cs->ids[k] >= SET_COUNT)
            goto bad;
        uint8_t kind = sets[cs->ids[k]].kind;
        if (kind == KIND_WHOLE && cs->count != 1)
            goto bad;
        if (k == 0 && kind == KIND_G0_DOUBLE)
            goto bad;
    }
    return MWL_OK;
bad:
    mwl_diag_set(diag, 0, 0, "invalid mwl_charset");
    return MWL_E_INVALID;
}

int mwl_charset_name(const mwl_charset *cs, char *buf, size_t cap)
{
    if (cap == 0 || check_charset(cs, NULL) != MWL_OK) {
        if (cap)
            buf[0] = '\0';
        return cap == 0 ? MWL_E_LIMIT : MWL_E_INVALID;
    }
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < cs->count; k++) {
        const set_info *si = &sets[cs->ids[k]];
        char term[24];
        if (cs->ids[k] == SET_DEFAULT)
            term[0] = '\0';
        else if (cs->iso2022 && si->ir)
            snprintf(term, sizeof term, "ISO 2022 IR %s", si->ir);
        else if (si->term)
            snprintf(term, sizeof term, "%s", si->term);
        else
            snprintf(term, sizeof term, "ISO_IR %s", si->ir);
        size_t tl = strlen(term) + (k > 0);
        if (n + tl >= cap)
            return MWL_E_LIMIT;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", k > 0 ? "\\" : "", term);
    }
    return MWL_OK;
}

bool mwl_charset_is_utf8(const mwl_charset *cs)
{
    return cs->count == 1 && cs->ids[0] == SET_UTF8;
}

/* ---- ISO 2022 state ------------------------------------------------------ */

/* What is designated: g0 is SET_IR6 (ASCII), SET_IR13 (romaji), SET_IR87 or
 * SET_IR159; g1 is a G1 set or SET_DEFAULT for "undefined". */
typedef struct g_state {
    uint8_t g0, g1;
} g_state;

/* PS3.5 §6.1.2.5.4: the initial designation comes from value 1; the
 * default repertoire has nothing in G1 (decoding assumes ISO 8859-1 there,
 * see the top of this file). */
static g_state initial_state(const mwl_charset *cs, bool decoding)
{
    g_state st = {SET_IR6, SET_DEFAULT};
    if (cs->count == 0) {
        if (decoding)
            st.g1 = SET_IR100;
        return st;
    }
    int v1 = cs->ids[0];
    switch (sets[v1].kind) {
    case KIND_G1_96:
    case KIND_G1_DOUBLE: st.g1 = (uint8_t)v1; break;
    case KIND_JIS_X0201:
        st.g0 = SET_IR13;
        st.g1 = SET_IR13;
        break;
    default: break;
    }
    return st;
}

static bool is_listed(const mwl_charset *cs, int set)
{
    for (size_t k = 0; k < cs->count; k++) {
        if (cs->ids[k] == set)
            return true;
    }
    return false;
}

/* ---- decoding ------------------------------------------------------------ */

/* Reads the escape sequence at in[i] (in[i] == ESC): ESC, intermediate
 * bytes 20H-2FH, a final byte 30H-7EH (ISO 2022 §13.1). */
static int read_escape(const mwl_charset *cs, const uint8_t *in, size_t len, size_t i, g_state *st,
                       size_t *used, mwl_diag *diag)
{
    size_t j = i + 1;
    while (j < len && in[j] >= 0x20 && in[j] <= 0x2F && j - i <= 3)
        j++;
    if (j >= len) {
        mwl_diag_set(diag, i, 0, "truncated escape sequence");
        return MWL_E_CHARSET;
    }
    if (j == i + 1 || in[j] < 0x30 || in[j] > 0x7E) {
        mwl_diag_set(diag, i, 0, "invalid escape sequence");
        return MWL_E_CHARSET;
    }
    size_t n = j - i; /* intermediates + final */
    int set = -1;
    bool g0 = false;
    if (n == 2 && memcmp(in + i + 1, esc_romaji, 2) == 0) {
        set = SET_IR13;
        g0 = true;
    } else {
        for (int s = SET_IR6; s < SET_COUNT; s++) {
            if (sets[s].esc[0] && strlen(sets[s].esc) == n && memcmp(in + i + 1, sets[s].esc, n) == 0) {
                set = s;
                g0 = sets[s].kind == KIND_ASCII || sets[s].kind == KIND_G0_DOUBLE;
                break;
            }
        }
    }
    if (set < 0) {
        char shown[8];
        printable(shown, sizeof shown, (const char *)in + i + 1, n);
        mwl_diag_set(diag, i, 0, "unknown escape sequence ESC %s", shown);
        return MWL_E_CHARSET;
    }
    if (set != SET_IR6 && !is_listed(cs, set)) {
        mwl_diag_set(diag, i, 0, "escape sequence designates %s, which (0008,0005) does not list",
                     set_label(set));
        return MWL_E_CHARSET;
    }
    if (g0)
        st->g0 = (uint8_t)set;
    else
        st->g1 = (uint8_t)set;
    *used = n + 1;
    return MWL_OK;
}

/* Converts the GL pairs in[0..len) of JIS X 0208 (or 0212 when `jis0212`)
 * by lifting them into EUC-JP. len is even. */
static int decode_g0_pairs(const uint8_t *in, size_t len, bool jis0212, mwl_wbuf *out, size_t *bad,
                           mwl_diag *diag)
{
    iconv_t cd;
    int rc = get_cd(CODEC_EUCJP, TO_UTF8, &cd, diag);
    if (rc != MWL_OK)
        return rc;
    uint8_t tmp[192]; /* 64 characters of at most 3 bytes */
    size_t width = jis0212 ? 3 : 2;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        size_t first = i;
        while (i < len && n + width <= sizeof tmp) {
            if (jis0212)
                tmp[n++] = 0x8F; /* SS3: JIS X 0212 in EUC-JP */
            tmp[n++] = (uint8_t)(in[i] | 0x80);
            tmp[n++] = (uint8_t)(in[i + 1] | 0x80);
            i += 2;
        }
        size_t done = 0;
        rc = iconv_append(cd, tmp, n, out, &done);
        if (rc != MWL_OK) {
            *bad = first + done / width * 2;
            return rc;
        }
    }
    return MWL_OK;
}

static int decode_iso2022(const mwl_charset *cs, mwl_vr vr, const uint8_t *in, size_t len, mwl_wbuf *out,
                          mwl_diag *diag)
{
    const g_state init = initial_state(cs, true);
    /* Most values are plain ASCII: every set starts with a single-byte G0
     * that reads as ASCII, so without ESC or GR bytes they copy through. */
    size_t plain = 0;
    while (plain < len && in[plain] < 0x80 && in[plain] != ESC)
        plain++;
    if (plain == len) {
        mwl_wbuf_put(out, in, len);
        return out->status;
    }
    if (!cs->iso2022 && init.g1 != SET_DEFAULT && sets[init.g1].kind == KIND_G1_96) {
        /* PS3.5 §6.1.2.5.4 (a), (b): one ISO 8859 (or TIS 620) set for GL
         * and GR, no code extensions. These codes are ASCII in GL, so one
         * iconv call converts the whole value, unless it holds an escape
         * sequence or a C1 byte (left to the general path below). */
        size_t k = 0;
        while (k < len && in[k] != ESC && (in[k] < 0x80 || in[k] >= 0xA0))
            k++;
        if (k == len) {
            iconv_t cd;
            int rc = get_cd(sets[init.g1].codec, TO_UTF8, &cd, diag);
            if (rc != MWL_OK)
                return rc;
            size_t bad = 0;
            rc = iconv_append(cd, in, len, out, &bad);
            if (rc == MWL_E_CHARSET)
                mwl_diag_set(diag, bad, 0, "byte 0x%02X is not valid in %s", in[bad], set_label(init.g1));
            return rc;
        }
    }
    g_state st = init;
    size_t i = 0;
    while (i < len) {
        uint8_t b = in[i];
        if (b == ESC) {
            size_t used;
            int rc = read_escape(cs, in, len, i, &st, &used, diag);
            if (rc != MWL_OK)
                return rc;
            i += used;
            continue;
        }
        bool g0_double = st.g0 == SET_IR87 || st.g0 == SET_IR159;
        if (b < 0x80 && (!g0_double || b < 0x20 || b == 0x7F)) {
            /* A run of single bytes: graphics of the single-byte G0 (read
             * as ASCII), delimiters and control characters. Their output
             * does not depend on the state, and delimiters and every
             * control character except ESC put the initial sets back
             * (PS3.5 §6.1.2.5.3), so that is done once after the run. */
            size_t j = i;
            bool reset = false;
            while (j < len && in[j] < 0x80 && in[j] != ESC) {
                uint8_t c = in[j];
                if (c < 0x20 || c == 0x7F)
                    reset = true;
                else if (g0_double && !reset)
                    break; /* a 2-byte character follows */
                else if (is_delimiter(vr, c))
                    reset = true;
                j++;
            }
            mwl_wbuf_put(out, in + i, j - i);
            if (reset)
                st = init;
            i = j;
            continue;
        }
        if (b < 0x80) {
            /* G0 holds JIS X 0208 or 0212: pairs of 21H-7EH. */
            if (b == ' ') { /* SPACE stays SPACE beside a 94x94 set (ISO 2022 §6.3) */
                mwl_wbuf_put_u8(out, b);
                i++;
                continue;
            }
            size_t j = i;
            while (j + 1 < len && in[j] >= 0x21 && in[j] <= 0x7E && in[j + 1] >= 0x21 && in[j + 1] <= 0x7E)
                j += 2;
            if (j == i) {
                mwl_diag_set(diag, i, 0, "truncated or invalid 2-byte %s character", set_label(st.g0));
                return MWL_E_CHARSET;
            }
            size_t bad = 0;
            int rc = decode_g0_pairs(in + i, j - i, st.g0 == SET_IR159, out, &bad, diag);
            if (rc == MWL_E_CHARSET)
                mwl_diag_set(diag, i + bad, 0, "bytes not valid in %s", set_label(st.g0));
            if (rc != MWL_OK)
                return rc;
            i = j;
            continue;
        }
        /* GR: the G1 set. */
        size_t j = i;
        switch (st.g1 == SET_DEFAULT ? -1 : sets[st.g1].kind) {
        case KIND_G1_96:
            while (j < len && in[j] >= 0xA0)
                j++;
            break;
        case KIND_JIS_X0201:
            while (j < len && in[j] >= 0xA1 && in[j] <= 0xDF)
                j++;
            break;
        case KIND_G1_DOUBLE:
            while (j + 1 < len && in[j] >= 0xA1 && in[j] <= 0xFE && in[j + 1] >= 0xA1 && in[j + 1] <= 0xFE)
                j += 2;
            break;
        default:
            mwl_diag_set(diag, i, 0, "byte 0x%02X but no G1 character set is designated", b);
            return MWL_E_CHARSET;
        }
        if (j == i) {
            mwl_diag_set(diag, i, 0, "byte 0x%02X is not valid in %s", b, set_label(st.g1));
            return MWL_E_CHARSET;
        }
        iconv_t cd;
        int rc = get_cd(sets[st.g1].codec, TO_UTF8, &cd, diag);
        if (rc != MWL_OK)
            return rc;
        size_t bad = 0;
        rc = iconv_append(cd, in + i, j - i, out, &bad);
        if (rc == MWL_E_CHARSET)
            mwl_diag_set(diag, i + bad, 0, "byte 0x%02X is not valid in %s", in[i + bad], set_label(st.g1));
        if (rc != MWL_OK)
            return rc;
        i = j;
    }
    return MWL_OK;
}

/* ISO_IR 192, GB18030, GBK: one code for the whole value, no ISO 2022
 * (PS3.5 §6.1.2.5.4 (d)). Delimiters need no care: iconv sees the whole
 * value, so a GBK trail byte 5CH is never taken for '\'. */
static int decode_whole(int set, const uint8_t *in, size_t len, mwl_wbuf *out, mwl_diag *diag)
{
    const void *esc = memchr(in, ESC, len);
    if (esc) {
        mwl_diag_set(diag, (size_t)((const uint8_t *)esc - in), 0, "escape sequence in %s text",
                     set_label(set));
        return MWL_E_CHARSET;
    }
    if (set == SET_UTF8) {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            size_t n = mwl_utf8_decode(in + i, len - i, &cp);
            if (n == 0) {
                mwl_diag_set(diag, i, 0, "invalid UTF-8 at byte 0x%02X", in[i]);
                return MWL_E_CHARSET;
            }
            i += n;
        }
        mwl_wbuf_put(out, in, len);
        return out->status;
    }
    iconv_t cd;
    int rc = get_cd(sets[set].codec, TO_UTF8, &cd, diag);
    if (rc != MWL_OK)
        return rc;
    size_t bad = 0;
    rc = iconv_append(cd, in, len, out, &bad);
    if (rc == MWL_E_CHARSET)
        mwl_diag_set(diag, bad, 0, "invalid or truncated %s character", set_label(set));
    return rc;
}

int mwl_charset_decode(const mwl_charset *cs, mwl_vr vr, const uint8_t *in, size_t len, mwl_wbuf *out,
                       mwl_diag *diag)
{
    int rc = check_charset(cs, diag);
    if (rc != MWL_OK)
        return rc;
    if (out->status != MWL_OK)
        return out->status;
    size_t mark = out->len;
    if (len == 0)
        return MWL_OK;
    if (cs->count == 1 && sets[cs->ids[0]].kind == KIND_WHOLE)
        rc = decode_whole(cs->ids[0], in, len, out, diag);
    else
        rc = decode_iso2022(cs, vr, in, len, out, diag);
    if (rc == MWL_OK)
        rc = out->status;
    if (rc != MWL_OK && out->status == MWL_OK)
        out->len = mark; /* leave `out` as it was */
    return rc;
}

/* ---- encoding ------------------------------------------------------------ */

/* Tries to code one character (its UTF-8 bytes ch[0..n)) in `set`. Returns
 * 1 with the bytes to emit in code[] (GL bytes for G0 sets), 0 when the set
 * cannot represent it, or a negative status. */
static int encode_char(int set, const uint8_t *ch, size_t n, uint8_t code[4], size_t *clen, mwl_diag *diag)
{
    const set_info *si = &sets[set];
    if (si->codec == CODEC_NONE)
        return 0; /* ASCII only: handled by the caller */
    iconv_t cd;
    int rc = get_cd(si->codec, FROM_UTF8, &cd, diag);
    if (rc != MWL_OK)
        return rc;
    char buf[8];
    char *ip = (char *)(uintptr_t)ch, *op = buf;
    size_t il = n, ol = sizeof buf;
    if (iconv(cd, &ip, &il, &op, &ol) != 0 || il != 0) {
        iconv(cd, NULL, NULL, NULL, NULL);
        return 0;
    }
    const uint8_t *b = (const uint8_t *)buf;
    size_t bl = sizeof buf - ol;
    switch (si->kind) {
    case KIND_G1_96:
        /* C1 (80H-9FH) is not part of any G1 set (PS3.5 §6.1.2.5). */
        if (bl != 1 || b[0] < 0xA0)
            return 0;
        break;
    case KIND_JIS_X0201:
        if (bl != 1 || b[0] < 0xA1 || b[0] > 0xDF)
            return 0;
        break;
    case KIND_G1_DOUBLE:
        if (bl != 2 || b[0] < 0xA1 || b[0] > 0xFE || b[1] < 0xA1 || b[1] > 0xFE)
            return 0;
        break;
    case KIND_G0_DOUBLE:
        /* EUC-JP: two GR bytes are JIS X 0208, SS3 and two are JIS X 0212;
         * either goes to G0 with the high bits cleared. */
        if (set == SET_IR159) {
            if (bl != 3 || b[0] != 0x8F)
                return 0;
            b++;
            bl--;
        } else if (bl != 2) {
            return 0;
        }
        if (b[0] < 0xA1 || b[0] > 0xFE || b[1] < 0xA1 || b[1] > 0xFE)
            return 0;
        code[0] = b[0] & 0x7F;
        code[1] = b[1] & 0x7F;
        *clen = 2;
        return 1;
    default: return 0;
    }
    memcpy(code, b, bl);
    *clen = bl;
    return 1;
}

static void put_escape(mwl_wbuf *out, const char *seq)
{
    mwl_wbuf_put_u8(out, ESC);
    mwl_wbuf_put(out, seq, strlen(seq));
}

static const char *g0_escape(int set)
{
    return set == SET_IR13 ? esc_romaji : sets[set].esc;
}

/* PS3.5 §6.1.2.5.3: switch back to the initial sets (before a delimiter,
 * a control character and the end of the value). A G1 that was undefined
 * initially cannot be undesignated; the decoder forgets it anyway, so it
 * only has to be designated again before its next use. */
static void restore_initial(g_state *st, const g_state *init, mwl_wbuf *out)
{
    if (st->g0 != init->g0)
        put_escape(out, g0_escape(init->g0));
    if (st->g1 != init->g1 && init->g1 != SET_DEFAULT)
        put_escape(out, sets[init->g1].esc);
    *st = *init;
}

/* Finds a set for one non-ASCII character: the ones already designated
 * first (no escape needed), then the listed sets in the order of
 * (0008,0005). Returns 1 and the set, 0 if none can represent it. */
static int pick_set(const mwl_charset *cs, const g_state *st, const uint8_t *ch, size_t n, int *set,
                    uint8_t code[4], size_t *clen, mwl_diag *diag)
{
    int tried[3];
    size_t ntried = 0;
    if (st->g1 != SET_DEFAULT)
        tried[ntried++] = st->g1;
    if (st->g0 == SET_IR87 || st->g0 == SET_IR159)
        tried[ntried++] = st->g0;
    for (size_t k = 0; k < ntried; k++) {
        int rc = encode_char(tried[k], ch, n, code, clen, diag);
        if (rc != 0) {
            *set = tried[k];
            return rc;
        }
    }
    /* Without code extensions only the initial sets may be used. */
    for (size_t k = 0; cs->iso2022 && k < cs->count; k++) {
        int s = cs->ids[k];
        if (s == st->g1 || s == st->g0)
            continue;
        int rc = encode_char(s, ch, n, code, clen, diag);
        if (rc != 0) {
            *set = s;
            return rc;
        }
    }
    return 0;
}

/* PS3.5 §6.1.2.5.4 (b): a single ISO 8859 (or TIS 620) set and no code
 * extensions. One iconv call does it, once the input is known to be valid
 * UTF-8 without ESC or C1 code points (which iconv would pass through as
 * 80H-9FH bytes). Returns 1 when the caller must take the general path. */
static int encode_single_96(int set, const uint8_t *in, size_t len, mwl_wbuf *out, mwl_diag *diag)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = mwl_utf8_decode(in + i, len - i, &cp);
        if (n == 0 || cp == ESC || (cp >= 0x80 && cp < 0xA0))
            return 1; /* the general path reports it */
        i += n;
    }
    iconv_t cd;
    int rc = get_cd(sets[set].codec, FROM_UTF8, &cd, diag);
    if (rc != MWL_OK)
        return rc;
    size_t bad = 0;
    rc = iconv_append(cd, in, len, out, &bad);
    if (rc == MWL_E_CHARSET) {
        uint32_t cp = 0;
        (void)mwl_utf8_decode(in + bad, len - bad, &cp);
        mwl_diag_set(diag, bad, 0, "U+%04X cannot be encoded in %s", (unsigned)cp, set_label(set));
    }
    return rc;
}

static int encode_iso2022(const mwl_charset *cs, mwl_vr vr, const uint8_t *in, size_t len, mwl_wbuf *out,
                          mwl_diag *diag)
{
    const g_state init = initial_state(cs, false);
    if (!cs->iso2022 && init.g1 != SET_DEFAULT && sets[init.g1].kind == KIND_G1_96) {
        size_t mark = out->len;
        int rc = encode_single_96(init.g1, in, len, out, diag);
        if (rc != 1)
            return rc;
        out->len = mark;
    }
    g_state st = init;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = mwl_utf8_decode(in + i, len - i, &cp);
        if (n == 0) {
            mwl_diag_set(diag, i, 0, "invalid UTF-8 at byte 0x%02X", in[i]);
            return MWL_E_CHARSET;
        }
        if (cp == ESC) {
            mwl_diag_set(diag, i, 0, "ESC is not a character");
            return MWL_E_CHARSET;
        }
        if (cp < 0x80 && st.g0 == init.g0) {
            /* A run of ASCII: nothing to switch for its graphics; its
             * delimiters and controls need a switch back only when G1 is
             * not the initial one. */
            size_t j = i;
            while (j < len && in[j] < 0x80 && in[j] != ESC) {
                uint8_t c = in[j];
                if (st.g1 != init.g1 && (c < 0x20 || c == 0x7F || is_delimiter(vr, c)))
                    break;
                j++;
            }
            if (j > i) {
                mwl_wbuf_put(out, in + i, j - i);
                i = j;
                continue;
            }
        }
        if (cp < 0x80) {
            uint8_t b = (uint8_t)cp;
            if (b < 0x20 || b == 0x7F || is_delimiter(vr, b))
                restore_initial(&st, &init, out);
            else if (st.g0 != init.g0) {
                /* ASCII after a 94x94 G0 set: back to the initial G0
                 * (ISO-IR 6, or JIS X 0201 romaji; PS3.5 Annex H). */
                put_escape(out, g0_escape(init.g0));
                st.g0 = init.g0;
            }
            mwl_wbuf_put_u8(out, b);
            i++;
            continue;
        }
        int set;
        uint8_t code[4];
        size_t clen = 0;
        int rc = pick_set(cs, &st, in + i, n, &set, code, &clen, diag);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            char name[64];
            if (mwl_charset_name(cs, name, sizeof name) != MWL_OK || !name[0])
                snprintf(name, sizeof name, "%s", cs->count ? "?" : "the default repertoire");
            mwl_diag_set(diag, i, 0, "U+%04X cannot be encoded in %s", (unsigned)cp, name);
            return MWL_E_CHARSET;
        }
        if (sets[set].kind == KIND_G0_DOUBLE) {
            if (st.g0 != set) {
                put_escape(out, sets[set].esc);
                st.g0 = (uint8_t)set;
            }
        } else if (st.g1 != set) {
            put_escape(out, sets[set].esc);
            st.g1 = (uint8_t)set;
        }
        mwl_wbuf_put(out, code, clen);
        i += n;
    }
    restore_initial(&st, &init, out);
    return MWL_OK;
}

static int encode_whole(int set, const uint8_t *in, size_t len, mwl_wbuf *out, mwl_diag *diag)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = mwl_utf8_decode(in + i, len - i, &cp);
        if (n == 0) {
            mwl_diag_set(diag, i, 0, "invalid UTF-8 at byte 0x%02X", in[i]);
            return MWL_E_CHARSET;
        }
        if (cp == ESC) {
            mwl_diag_set(diag, i, 0, "ESC is not a character");
            return MWL_E_CHARSET;
        }
        i += n;
    }
    if (set == SET_UTF8) {
        mwl_wbuf_put(out, in, len);
        return out->status;
    }
    iconv_t cd;
    int rc = get_cd(sets[set].codec, FROM_UTF8, &cd, diag);
    if (rc != MWL_OK)
        return rc;
    size_t bad = 0;
    rc = iconv_append(cd, in, len, out, &bad);
    if (rc == MWL_E_CHARSET) {
        uint32_t cp = 0;
        if (bad < len)
            (void)mwl_utf8_decode(in + bad, len - bad, &cp);
        mwl_diag_set(diag, bad, 0, "U+%04X cannot be encoded in %s", (unsigned)cp, set_label(set));
    }
    return rc;
}

int mwl_charset_encode(const mwl_charset *cs, mwl_vr vr, const char *utf8, size_t len, mwl_wbuf *out,
                       mwl_diag *diag)
{
    int rc = check_charset(cs, diag);
    if (rc != MWL_OK)
        return rc;
    if (out->status != MWL_OK)
        return out->status;
    size_t mark = out->len;
    if (len == 0)
        return MWL_OK;
    const uint8_t *in = (const uint8_t *)utf8;
    if (cs->count == 1 && sets[cs->ids[0]].kind == KIND_WHOLE)
        rc = encode_whole(cs->ids[0], in, len, out, diag);
    else
        rc = encode_iso2022(cs, vr, in, len, out, diag);
    if (rc == MWL_OK)
        rc = out->status;
    if (rc != MWL_OK && out->status == MWL_OK)
        out->len = mark;
    return rc;
}

/* ---- data set convenience ------------------------------------------------ */

/* The whole value of `e` decoded to UTF-8 in a temporary buffer. */
static int decode_elem(const mwl_ds *ds, const mwl_elem *e, mwl_wbuf *tmp, mwl_diag *diag)
{
    mwl_charset cs;
    int rc = mwl_charset_of(ds, &cs, diag);
    if (rc != MWL_OK)
        return rc;
    rc = mwl_charset_decode(&cs, e->vr, e->value, e->length, tmp, diag);
    if (rc != MWL_OK && diag)
        diag->tag = e->tag;
    return rc;
}

int mwl_ds_get_utf8(const mwl_ds *ds, const mwl_elem *e, size_t index, mwl_arena *arena, const char **out,
                    mwl_diag *diag)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    if (info->kind != MWL_VR_KIND_STRING && info->kind != MWL_VR_KIND_TEXT)
        return MWL_E_INVALID;
    if (!info->charset) {
        const char *s;
        size_t n;
        int rc = mwl_elem_get_str(e, index, &s, &n);
        if (rc != MWL_OK)
            return rc;
        char *copy = mwl_arena_strndup(arena, s, n);
        if (!copy)
            return MWL_E_NOMEM;
        *out = copy;
        return MWL_OK;
    }
    if (e->length == 0)
        return MWL_E_NOTFOUND;
    /* Decode first, split after: in JIS X 0208 or GBK a 5CH byte can be
     * half of a character, while in UTF-8 '\' is always the delimiter. */
    mwl_wbuf tmp;
    mwl_wbuf_init(&tmp, NULL);
    int rc = decode_elem(ds, e, &tmp, diag);
    if (rc != MWL_OK) {
        mwl_wbuf_clear(&tmp);
        return rc;
    }
    const char *s = (const char *)tmp.data;
    size_t len = tmp.len, start = 0, end = len, k = 0;
    if (info->kind == MWL_VR_KIND_STRING) {
        bool found = false;
        for (size_t i = 0; i <= len; i++) {
            if (i < len && s[i] != '\\')
                continue;
            if (k++ == index) {
                end = i;
                found = true;
                break;
            }
            start = i + 1;
        }
        if (!found) {
            mwl_wbuf_clear(&tmp);
            return MWL_E_NOTFOUND;
        }
    } else if (index != 0) {
        mwl_wbuf_clear(&tmp);
        return MWL_E_NOTFOUND;
    }
    /* Trim as mwl_elem_get_str does: trailing spaces and NULs always,
     * leading spaces except where they are significant (PS3.5 Table 6.2-1). */
    bool leading = e->vr != MWL_VR_LT && e->vr != MWL_VR_ST && e->vr != MWL_VR_UT && e->vr != MWL_VR_UR &&
                   e->vr != MWL_VR_UC;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\0'))
        end--;
    while (leading && start < end && s[start] == ' ')
        start++;
    char *copy = mwl_arena_strndup(arena, s ? s + start : "", end - start);
    mwl_wbuf_clear(&tmp);
    if (!copy)
        return MWL_E_NOMEM;
    *out = copy;
    return MWL_OK;
}

int mwl_ds_get_utf8_all(const mwl_ds *ds, const mwl_elem *e, mwl_arena *arena, const char **out,
                        size_t *out_len, mwl_diag *diag)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    if (info->kind != MWL_VR_KIND_STRING && info->kind != MWL_VR_KIND_TEXT)
        return MWL_E_INVALID;
    if (!info->charset || e->length == 0) {
        char *copy = mwl_arena_strndup(arena, e->value ? (const char *)e->value : "", e->length);
        if (!copy)
            return MWL_E_NOMEM;
        *out = copy;
        *out_len = e->length;
        return MWL_OK;
    }
    mwl_wbuf tmp;
    mwl_wbuf_init(&tmp, NULL);
    int rc = decode_elem(ds, e, &tmp, diag);
    if (rc == MWL_OK) {
        char *copy = mwl_arena_strndup(arena, (const char *)tmp.data, tmp.len);
        if (!copy) {
            rc = MWL_E_NOMEM;
        } else {
            *out = copy;
            *out_len = tmp.len;
        }
    }
    mwl_wbuf_clear(&tmp);
    return rc;
}

/* ---- re-encoding a whole data set ----------------------------------------- */

static bool charset_equal(const mwl_charset *a, const mwl_charset *b)
{
    return a->count == b->count && memcmp(a->ids, b->ids, a->count) == 0;
}

/* Re-encodes the text of `ds` (whose character set is `from`) into `to`,
 * recursing into items, which may carry their own (0008,0005). */
static int recode_level(mwl_ds *ds, const mwl_charset *from, const mwl_charset *to, mwl_arena *scratch,
                        mwl_wbuf *w, mwl_diag *diag)
{
    mwl_charset own = *from;
    const mwl_elem *cs_elem = mwl_ds_find(ds, MWL_TAG_SpecificCharacterSet);
    if (cs_elem && cs_elem->length) {
        int rc = mwl_charset_parse((const char *)cs_elem->value, cs_elem->length, &own, diag);
        if (rc != MWL_OK)
            return rc;
    }
    if (cs_elem)
        (void)mwl_ds_remove(ds, MWL_TAG_SpecificCharacterSet); /* the top level names `to` */
    for (size_t i = 0; i < mwl_ds_count(ds); i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (e->vr == MWL_VR_SQ) {
            for (size_t k = 0; k < e->item_count; k++) {
                int rc = recode_level(e->items[k], &own, to, scratch, w, diag);
                if (rc != MWL_OK)
                    return rc;
            }
            continue;
        }
        if (!mwl_vr_get_info(e->vr)->charset || e->length == 0 || charset_equal(&own, to))
            continue;
        /* ASCII (no byte >= 80H, no ESC) is the same characters in every
         * set here (JIS X 0201 romaji is read as ASCII, see the top of this
         * file) and is written as the same bytes into every one: converting
         * it would give the value back, less surplus trailing spaces. Most
         * values of a response (IDs, codes, many names) are that. */
        if (mwl_text_is_ascii(e->value, e->length))
            continue;
        w->len = 0;
        int rc = mwl_charset_decode(&own, e->vr, e->value, e->length, w, diag);
        if (rc != MWL_OK) {
            if (diag)
                diag->tag = e->tag;
            return rc;
        }
        /* Trailing spaces are padding in every text VR (PS3.5 Table 6.2-1):
         * drop them so the re-encoded value is padded afresh. */
        size_t utf8_len = w->len;
        while (utf8_len && w->data[utf8_len - 1] == ' ')
            utf8_len--;
        const char *utf8 = mwl_arena_memdup(scratch, w->data, utf8_len);
        if (!utf8 && utf8_len)
            return MWL_E_NOMEM;
        w->len = 0;
        rc = mwl_charset_encode(to, e->vr, utf8, utf8_len, w, diag);
        if (rc != MWL_OK) {
            if (diag)
                diag->tag = e->tag;
            return rc;
        }
        if (w->len & 1)
            mwl_wbuf_put_u8(w, ' ');
        if (w->status != MWL_OK)
            return w->status;
        uint32_t tag = e->tag;
        mwl_vr vr = e->vr;
        rc = mwl_ds_set(ds, tag, vr, w->data, w->len); /* replaces in place: index i stays valid */
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

int mwl_ds_recode(mwl_ds *ds, const mwl_charset *to, mwl_diag *diag)
{
    mwl_charset from;
    int rc = mwl_charset_of(ds, &from, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_arena scratch;
    mwl_arena_init(&scratch, NULL);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    rc = recode_level(ds, &from, to, &scratch, &w, diag);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&scratch);
    if (rc != MWL_OK)
        return rc;
    if (to->count == 0)
        return MWL_OK; /* default repertoire: no (0008,0005) */
    char name[128];
    rc = mwl_charset_name(to, name, sizeof name);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, name);
    return rc;
}

bool mwl_ds_text_is_ascii(const mwl_ds *ds)
{
    for (size_t i = 0; i < mwl_ds_count(ds); i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (e->vr == MWL_VR_SQ) {
            for (size_t k = 0; k < e->item_count; k++) {
                if (!mwl_ds_text_is_ascii(e->items[k]))
                    return false;
            }
            continue;
        }
        if (mwl_vr_get_info(e->vr)->charset && !mwl_text_is_ascii(e->value, e->length))
            return false;
    }
    return true;
}
