/* New UIDs (PS3.5 B.2): "2.25." and a random version 4 UUID in decimal,
 * which needs no registered root. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dict.h"

/* A new UID under 2.25 from 128 random bits (PS3.5 B.2), in decimal. */
void mwl_uid_generate(char *out, size_t cap)
{
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* Without the kernel's generator: time, process and clock, still
         * unique enough for the files and responses we label. */
        uint64_t a = (uint64_t)time(NULL), b = (uint64_t)getpid() ^ (uint64_t)clock();
        for (int i = 0; i < 8; i++) {
            r[i] = (uint8_t)(a >> (8 * i));
            r[8 + i] = (uint8_t)(b >> (8 * i));
        }
    }
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40); /* a version 4 UUID, as B.2 describes */
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    size_t pos = (size_t)snprintf(out, cap, "2.25.");
    (void)mwl_uid_put_decimal(out, cap, pos < cap ? pos : cap - 1, r);
}

size_t mwl_uid_put_decimal(char *out, size_t cap, size_t pos, const uint8_t num[16])
{
    /* 128-bit number to decimal by repeated division of the byte array
     * (at most 39 digits). */
    uint8_t r[16];
    memcpy(r, num, sizeof r);
    char digits[40];
    size_t nd = 0;
    bool nonzero = true;
    while (nonzero && nd < sizeof digits) {
        unsigned rem = 0;
        nonzero = false;
        for (size_t i = 0; i < sizeof r; i++) {
            unsigned cur = (rem << 8) | r[i];
            r[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero = nonzero || r[i] != 0;
        }
        digits[nd++] = (char)('0' + rem);
    }
    while (nd > 0 && pos + 1 < cap)
        out[pos++] = digits[--nd];
    out[pos] = '\0';
    return pos;
}
