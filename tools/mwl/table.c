/* Table cells for mwl find and mwl ls (table.h). */
#include "table.h"

#include <string.h>

#include "base/utf8.h"

/* Writes `len` bytes of `s`, controls as spaces, bytes that are not UTF-8
 * as '?'. */
static void put_clean(FILE *out, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = mwl_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (n == 0) {
            fputc('?', out);
            i++;
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            fputc(' ', out);
            i += n;
        } else {
            fwrite(s + i, 1, n, out);
            i += n;
        }
    }
}

void tool_table_cell(FILE *out, const char *s, int width, bool last)
{
    size_t len = strlen(s);
    if (last || width <= 0) {
        put_clean(out, s, len);
        return;
    }
    size_t cols = (size_t)width;
    size_t w = mwl_utf8_width(s, len);
    if (w <= cols) {
        put_clean(out, s, len);
        fprintf(out, "%*s ", (int)(cols - w), "");
        return;
    }
    /* Cut at a character boundary and mark it, keeping the columns: a wide
     * character that does not fit leaves one more space. */
    size_t used = 0;
    size_t n = mwl_utf8_fit(s, len, cols - 1, &used);
    put_clean(out, s, n);
    fprintf(out, "~%*s ", (int)(cols - 1 - used), "");
}
