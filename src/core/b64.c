/* SPDX-License-Identifier: MIT */
/*
 * Base64 and percent-encoding. Written out rather than taken from OpenSSL's
 * EVP_DecodeBlock, which neither rejects bad padding nor reports the true
 * decoded length.
 */
#include "core/common.h"
#include "core/b64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 character, -1 for anything else ('=' included). */
static int b64_value(unsigned char c)
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

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t b64_encode_buf(const unsigned char *in, size_t len, char *out)
{
    size_t i, o = 0;

    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

int b64_encode(const unsigned char *in, size_t len, char **out)
{
    char *s;

    if (len > (SIZE_MAX - 4) / 4 * 3)
        return DPS_ERR_NOMEM;
    s = malloc(B64_ENCODED_SIZE(len));
    if (!s)
        return DPS_ERR_NOMEM;
    b64_encode_buf(in, len, s);
    *out = s;
    return DPS_OK;
}

/*
 * One pass that validates and, when dst is not NULL, writes. Keeping the
 * validation and the decoding in one function means they cannot disagree.
 */
static int b64_scan(const char *in, size_t len, int flags, unsigned char *dst, size_t *dst_len)
{
    unsigned acc = 0;
    size_t quad = 0, pad = 0, o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;

        if ((flags & B64_SKIP_WHITESPACE) && is_space(c))
            continue;
        if (c == '=') {
            /* Padding only in the last two positions of a quad. */
            if (quad < 2)
                return -1;
            pad++;
            quad++;
            if (quad == 4) {
                if (pad == 2 && (acc & 0xf) != 0)
                    return -1;
                if (pad == 1 && (acc & 0x3) != 0)
                    return -1;
                if (dst) {
                    dst[o] = (unsigned char)(pad == 2 ? acc >> 4 : acc >> 10);
                    if (pad == 1)
                        dst[o + 1] = (unsigned char)(acc >> 2);
                }
                o += 3 - pad;
                quad = 0;
                /* Nothing but whitespace may follow the padding. */
                for (i++; i < len; i++)
                    if (!((flags & B64_SKIP_WHITESPACE) && is_space((unsigned char)in[i])))
                        return -1;
                break;
            }
            continue;
        }
        if (pad)
            return -1;
        v = b64_value(c);
        if (v < 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        if (++quad == 4) {
            if (dst) {
                dst[o] = (unsigned char)(acc >> 16);
                dst[o + 1] = (unsigned char)(acc >> 8);
                dst[o + 2] = (unsigned char)acc;
            }
            o += 3;
            quad = 0;
            acc = 0;
        }
    }
    if (quad != 0)
        return -1;
    *dst_len = o;
    return 0;
}

int b64_is_valid(const char *in, size_t len, int flags, size_t *decoded_len)
{
    size_t n;

    if (b64_scan(in, len, flags, NULL, &n) != 0)
        return 0;
    if (decoded_len)
        *decoded_len = n;
    return 1;
}

int b64_decode(const char *in, size_t len, int flags, unsigned char **out, size_t *out_len)
{
    unsigned char *buf;
    size_t n;

    if (b64_scan(in, len, flags, NULL, &n) != 0)
        return DPS_ERR_INVAL;
    buf = malloc(n + 1);
    if (!buf)
        return DPS_ERR_NOMEM;
    b64_scan(in, len, flags, buf, &n);
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return DPS_OK;
}

int pct_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pct_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    char *s;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%')
            continue;
        if (i + 2 >= len || pct_hex_value((unsigned char)in[i + 1]) < 0 ||
            pct_hex_value((unsigned char)in[i + 2]) < 0)
            return DPS_ERR_INVAL;
        i += 2;
    }
    s = malloc(len + 1);
    if (!s)
        return DPS_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%') {
            s[o++] = (char)(pct_hex_value((unsigned char)in[i + 1]) << 4 |
                            pct_hex_value((unsigned char)in[i + 2]));
            i += 2;
        } else {
            s[o++] = in[i];
        }
    }
    s[o] = '\0';
    *out = s;
    if (out_len)
        *out_len = o;
    return DPS_OK;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int pct_encode(const char *in, size_t len, int flags, char **out)
{
    const char *digits = (flags & PCT_LOWER) ? "0123456789abcdef" : "0123456789ABCDEF";
    char *s;
    size_t o = 0;

    if (len > (SIZE_MAX - 1) / 3)
        return DPS_ERR_NOMEM;
    s = malloc(len * 3 + 1);
    if (!s)
        return DPS_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (is_unreserved(c)) {
            s[o++] = (char)c;
        } else {
            s[o++] = '%';
            s[o++] = digits[c >> 4];
            s[o++] = digits[c & 15];
        }
    }
    s[o] = '\0';
    *out = s;
    return DPS_OK;
}
