/* Fuzz target for dicom/charset.c. The first byte picks a Specific
 * Character Set from a fixed list; the rest is decoded as PN and as LO.
 * What decodes must re-encode without crashing (MWL_E_CHARSET is allowed:
 * the default repertoire reads Latin-1 it will not write), and what
 * re-encodes must decode back to the same UTF-8. The rest is also fed to
 * the encoder as (mostly invalid) UTF-8 and to mwl_charset_parse as a
 * (0008,0005) value. */
#include <stdlib.h>
#include <string.h>

#include "dicom/charset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const charsets[] = {
    "",
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 144",
    "ISO_IR 127",
    "ISO_IR 126",
    "ISO_IR 138",
    "ISO_IR 148",
    "ISO_IR 203",
    "ISO_IR 166",
    "ISO_IR 13",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "\\ISO 2022 IR 87",
    "ISO 2022 IR 13\\ISO 2022 IR 87",
    "\\ISO 2022 IR 149",
    "\\ISO 2022 IR 58",
    "\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "ISO 2022 IR 100\\ISO 2022 IR 126\\ISO 2022 IR 144",
    /* Seven sets at once, one of each kind. */
    ("ISO 2022 IR 6\\ISO 2022 IR 100\\ISO 2022 IR 87\\ISO 2022 IR 149\\ISO 2022 IR 58\\ISO 2022 IR 13\\"
     "ISO 2022 IR 166"),
};

static void round_trip(const mwl_charset *cs, mwl_vr vr, const uint8_t *in, size_t len)
{
    mwl_wbuf utf8, enc, again;
    mwl_wbuf_init(&utf8, NULL);
    mwl_wbuf_init(&enc, NULL);
    mwl_wbuf_init(&again, NULL);
    int rc = mwl_charset_decode(cs, vr, in, len, &utf8, NULL);
    if (rc != MWL_OK && rc != MWL_E_CHARSET)
        abort();
    if (rc == MWL_OK) {
        rc = mwl_charset_encode(cs, vr, (const char *)utf8.data, utf8.len, &enc, NULL);
        if (rc != MWL_OK && rc != MWL_E_CHARSET)
            abort();
        if (rc == MWL_OK) {
            /* Our own output must read back as what was encoded. */
            rc = mwl_charset_decode(cs, vr, enc.data, enc.len, &again, NULL);
            if (rc != MWL_OK || again.len != utf8.len ||
                (utf8.len && memcmp(again.data, utf8.data, utf8.len) != 0))
                abort();
        }
    } else if (utf8.len != 0) {
        abort(); /* a failed decode leaves the output untouched */
    }
    mwl_wbuf_clear(&utf8);
    mwl_wbuf_clear(&enc);
    mwl_wbuf_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mwl_charset cs;
    const char *scs = charsets[data[0] % (sizeof charsets / sizeof charsets[0])];
    if (mwl_charset_parse(scs, strlen(scs), &cs, NULL) != MWL_OK)
        abort();
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    round_trip(&cs, MWL_VR_PN, in, len);
    round_trip(&cs, MWL_VR_LO, in, len);
    round_trip(&cs, MWL_VR_LT, in, len);

    /* Arbitrary bytes as UTF-8 input. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc = mwl_charset_encode(&cs, MWL_VR_PN, (const char *)in, len, &w, NULL);
    if (rc != MWL_OK && rc != MWL_E_CHARSET)
        abort();
    mwl_wbuf_clear(&w);

    /* Arbitrary bytes as (0008,0005); a parsed value names itself back. */
    mwl_charset parsed;
    if (mwl_charset_parse((const char *)in, len, &parsed, NULL) == MWL_OK) {
        char name[256];
        mwl_charset again;
        if (mwl_charset_name(&parsed, name, sizeof name) != MWL_OK ||
            mwl_charset_parse(name, strlen(name), &again, NULL) != MWL_OK || again.count != parsed.count ||
            again.iso2022 != parsed.iso2022 || memcmp(again.ids, parsed.ids, parsed.count) != 0)
            abort();
    }
    return 0;
}
