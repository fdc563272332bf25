/* SPDX-License-Identifier: MIT */
/* Hex and UUID text by table lookup, equal to what "%02x" formatting writes. */
#include "core/common.h"
#include "core/hex.h"

static char *encode(const unsigned char *in, size_t n, char *out, const char digits[16])
{
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[in[i] >> 4];
        *out++ = digits[in[i] & 0x0f];
    }
    return out;
}

char *hex_encode(const unsigned char *in, size_t n, char *out)
{
    return encode(in, n, out, "0123456789abcdef");
}

char *hex_encode_upper(const unsigned char *in, size_t n, char *out)
{
    return encode(in, n, out, "0123456789ABCDEF");
}

void hex_uuid_format(const unsigned char in[16], char out[HEX_UUID_SIZE])
{
    char *p = out;

    p = hex_encode(in, 4, p);
    *p++ = '-';
    p = hex_encode(in + 4, 2, p);
    *p++ = '-';
    p = hex_encode(in + 6, 2, p);
    *p++ = '-';
    p = hex_encode(in + 8, 2, p);
    *p++ = '-';
    p = hex_encode(in + 10, 6, p);
    *p = '\0';
}
