#include "base/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mwl_base64_encode(mwl_wbuf *out, const uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        char q[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], alphabet[v & 63]};
        mwl_wbuf_put(out, q, 4);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
        mwl_wbuf_put(out, q, 4);
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        char q[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
        mwl_wbuf_put(out, q, 4);
    }
}

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int mwl_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad_at)
{
    size_t bad = 0;
    if (!bad_at)
        bad_at = &bad;
    *out_len = 0;
    if (len % 4 != 0) {
        *bad_at = len;
        return MWL_E_MALFORMED;
    }
    size_t pad = 0;
    if (len && in[len - 1] == '=')
        pad = len >= 2 && in[len - 2] == '=' ? 2 : 1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int s = last && k >= 4 - pad ? 0 : sextet(in[i + k]);
            if (s < 0) {
                *bad_at = i + k;
                return MWL_E_MALFORMED;
            }
            v = (v << 6) | (uint32_t)s;
        }
        out[n++] = (uint8_t)(v >> 16);
        if (last && pad == 2) {
            if (v & 0xFFFF) { /* bits the padding leaves unused */
                *bad_at = i + 1;
                return MWL_E_MALFORMED;
            }
            break;
        }
        out[n++] = (uint8_t)(v >> 8);
        if (last && pad == 1) {
            if (v & 0xFF) {
                *bad_at = i + 2;
                return MWL_E_MALFORMED;
            }
            break;
        }
        out[n++] = (uint8_t)v;
    }
    *out_len = n;
    return MWL_OK;
}
