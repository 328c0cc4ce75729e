/* The Native DICOM Model encoder (xml.h, PS3.19 A.1). */
#include "dicom/xml.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/base64.h"
#include "base/utf8.h"
#include "dicom/charset.h"
#include "dicom/dict.h"
#include "dicom/vr.h"

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

size_t mwl_xml_put_text(mwl_wbuf *out, const char *utf8, size_t len)
{
    const uint8_t *s = (const uint8_t *)utf8;
    size_t replaced = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = mwl_utf8_decode(s + i, len - i, &cp);
        /* XML 1.0 §2.2 Char: no C0 controls other than TAB LF CR, no
         * U+FFFE/U+FFFF; a document holding them is not well-formed. */
        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF) {
            mwl_wbuf_put(out, replacement, 3);
            replaced++;
            i += n ? n : 1;
            continue;
        }
        switch (cp) {
        case '&': mwl_wbuf_put_str(out, "&amp;"); break;
        case '<': mwl_wbuf_put_str(out, "&lt;"); break;
        case '>': mwl_wbuf_put_str(out, "&gt;"); break;
        case '"': mwl_wbuf_put_str(out, "&quot;"); break;
        case '\'': mwl_wbuf_put_str(out, "&apos;"); break;
        case '\r': mwl_wbuf_put_str(out, "&#13;"); break; /* end-of-line handling would make it LF */
        default: mwl_wbuf_put(out, s + i, n); break;
        }
        i += n;
    }
    return replaced;
}

/* Text whose character set could not be applied: ASCII kept, the rest
 * U+FFFD (as json.c does, so the value stays visible). */
static void put_raw_text(mwl_wbuf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x80)
            mwl_wbuf_put(out, replacement, 3);
        else
            (void)mwl_xml_put_text(out, s + i, 1);
    }
}

static void put_text(mwl_wbuf *out, const char *s, size_t len, bool raw)
{
    if (raw)
        put_raw_text(out, s, len);
    else
        (void)mwl_xml_put_text(out, s, len);
}

/* One PN value: its component groups (PS3.5 §6.2.1), each with its
 * components (PS3.19 A.1.1 names them). */
static void put_person_name(mwl_wbuf *out, const char *s, size_t len, bool raw)
{
    static const char *const groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    static const char *const parts[5] = {"FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix"};
    size_t group = 0, start = 0;
    for (size_t i = 0; i <= len && group < 3; i++) {
        if (i < len && s[i] != '=')
            continue;
        if (i > start) {
            mwl_wbuf_printf(out, "<%s>", groups[group]);
            size_t part = 0, from = start;
            for (size_t k = start; k <= i && part < 5; k++) {
                if (k < i && s[k] != '^')
                    continue;
                const char *v = s + from;
                size_t n = k - from;
                mwl_str_trim(MWL_VR_PN, &v, &n);
                if (n > 0) {
                    mwl_wbuf_printf(out, "<%s>", parts[part]);
                    put_text(out, v, n, raw);
                    mwl_wbuf_printf(out, "</%s>", parts[part]);
                }
                part++;
                from = k + 1;
            }
            mwl_wbuf_printf(out, "</%s>", groups[group]);
        }
        group++;
        start = i + 1;
    }
}

static void put_string_values(mwl_wbuf *out, mwl_arena *text_arena, const mwl_ds *ds, const mwl_elem *e)
{
    const char *text = NULL;
    size_t len = 0;
    bool raw = false;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_ds_get_utf8_all(ds, e, text_arena, &text, &len, &diag);
    if (rc == MWL_E_NOMEM) {
        out->status = MWL_E_NOMEM;
        return;
    }
    if (rc != MWL_OK) {
        text = (const char *)e->value;
        len = e->length;
        raw = true;
    }
    bool multi = mwl_vr_get_info(e->vr)->kind == MWL_VR_KIND_STRING;
    size_t start = 0, number = 1;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !(multi && text[i] == '\\'))
            continue;
        const char *v = text + start;
        size_t n = i - start;
        mwl_str_trim(e->vr, &v, &n);
        if (e->vr == MWL_VR_PN) {
            mwl_wbuf_printf(out, "<PersonName number=\"%zu\">", number);
            put_person_name(out, v, n, raw);
            mwl_wbuf_put_str(out, "</PersonName>");
        } else if (n == 0) {
            mwl_wbuf_printf(out, "<Value number=\"%zu\"/>", number);
        } else {
            mwl_wbuf_printf(out, "<Value number=\"%zu\">", number);
            put_text(out, v, n, raw);
            mwl_wbuf_put_str(out, "</Value>");
        }
        number++;
        start = i + 1;
    }
}

static void put_numbers(mwl_wbuf *o, const mwl_elem *e)
{
    size_t size = mwl_vr_get_info(e->vr)->max_len; /* the value size for these VRs */
    size_t count = size ? e->length / size : 0;
    const uint8_t *p = e->value;
    for (size_t i = 0; i < count; i++, p += size) {
        mwl_wbuf_printf(o, "<Value number=\"%zu\">", i + 1);
        switch (e->vr) {
        case MWL_VR_US: mwl_wbuf_printf(o, "%u", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_SS: mwl_wbuf_printf(o, "%d", (int)(int16_t)mwl_load_u16le(p)); break;
        case MWL_VR_UL: mwl_wbuf_printf(o, "%" PRIu32, mwl_load_u32le(p)); break;
        case MWL_VR_SL: mwl_wbuf_printf(o, "%" PRId32, (int32_t)mwl_load_u32le(p)); break;
        case MWL_VR_SV: mwl_wbuf_printf(o, "%" PRId64, (int64_t)mwl_load_u64le(p)); break;
        case MWL_VR_UV: mwl_wbuf_printf(o, "%" PRIu64, mwl_load_u64le(p)); break;
        case MWL_VR_AT:
            mwl_wbuf_printf(o, "%04X%04X", (unsigned)mwl_load_u16le(p), (unsigned)mwl_load_u16le(p + 2));
            break;
        case MWL_VR_FL:
        case MWL_VR_FD: {
            double v;
            if (e->vr == MWL_VR_FL) {
                uint32_t bits = mwl_load_u32le(p);
                float f;
                memcpy(&f, &bits, sizeof f);
                v = (double)f;
            } else {
                uint64_t bits = mwl_load_u64le(p);
                memcpy(&v, &bits, sizeof v);
            }
            /* The xs:double spellings, which XML readers accept. */
            if (isnan(v))
                mwl_wbuf_put_str(o, "NaN");
            else if (isinf(v))
                mwl_wbuf_put_str(o, v > 0 ? "INF" : "-INF");
            else if (e->vr == MWL_VR_FL)
                mwl_wbuf_printf(o, "%.9g", v); /* 9 significant digits identify every float */
            else
                mwl_wbuf_put_double(o, v);
            break;
        }
        default: break; /* not a number VR: not called for it */
        }
        mwl_wbuf_put_str(o, "</Value>");
    }
}

static void put_dataset(mwl_wbuf *o, mwl_arena *text_arena, const mwl_ds *ds);

static void put_element(mwl_wbuf *o, mwl_arena *text_arena, const mwl_ds *ds, const mwl_elem *e)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    const char *code = info->code[0] ? info->code : "UN";
    mwl_wbuf_printf(o, "<DicomAttribute tag=\"%04X%04X\" vr=\"%s\"", (unsigned)MWL_TAG_GROUP(e->tag),
                    (unsigned)MWL_TAG_ELEMENT(e->tag), code);
    const char *kw = mwl_dict_keyword(e->tag);
    if (kw && kw[0]) {
        mwl_wbuf_put_str(o, " keyword=\"");
        (void)mwl_xml_put_text(o, kw, strlen(kw));
        mwl_wbuf_put_u8(o, '"');
    }
    mwl_wbuf_put_u8(o, '>');
    switch (info->kind) {
    case MWL_VR_KIND_SEQUENCE:
        for (size_t i = 0; i < e->item_count; i++) {
            mwl_wbuf_printf(o, "<Item number=\"%zu\">", i + 1);
            put_dataset(o, text_arena, e->items[i]);
            mwl_wbuf_put_str(o, "</Item>");
        }
        break;
    case MWL_VR_KIND_STRING:
    case MWL_VR_KIND_TEXT:
        if (!mwl_elem_is_blank(e)) {
            put_string_values(o, text_arena, ds, e);
            mwl_arena_reset(text_arena); /* per element: keep the chunk */
        }
        break;
    case MWL_VR_KIND_NUMBER: put_numbers(o, e); break;
    case MWL_VR_KIND_BYTES:
    case MWL_VR_KIND_NONE:
    default:
        if (e->length) {
            mwl_wbuf_put_str(o, "<InlineBinary>");
            mwl_base64_encode(o, e->value, e->length);
            mwl_wbuf_put_str(o, "</InlineBinary>");
        }
        break;
    }
    mwl_wbuf_put_str(o, "</DicomAttribute>");
}

static void put_dataset(mwl_wbuf *o, mwl_arena *text_arena, const mwl_ds *ds)
{
    size_t count = mwl_ds_count(ds);
    for (size_t i = 0; i < count && o->status == MWL_OK; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (MWL_TAG_ELEMENT(e->tag) == 0x0000)
            continue; /* as F.2.2 for JSON: no group lengths */
        put_element(o, text_arena, ds, e);
    }
}

int mwl_ds_encode_xml(const mwl_ds *ds, mwl_wbuf *out)
{
    if (!ds || !out)
        return MWL_E_INVALID;
    mwl_arena text;
    mwl_arena_init(&text, out->mem);
    mwl_wbuf_put_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">");
    if (out->status == MWL_OK)
        put_dataset(out, &text, ds);
    mwl_wbuf_put_str(out, "</NativeDicomModel>\n");
    mwl_arena_clear(&text);
    return out->status;
}
