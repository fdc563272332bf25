/* SPDX-License-Identifier: MIT */
/*
 * Base64 (RFC 4648, standard alphabet, padded) and percent-encoding
 * (RFC 3986) for SAS tokens, keys and certificates. Pure functions over
 * (buf, len); no I/O. Linked into libdps too: allocation failures return
 * DPS_ERR_NOMEM, nothing aborts.
 */
#ifndef DPS_CORE_B64_H
#define DPS_CORE_B64_H

#include <stddef.h>

enum b64_flags {
    B64_SKIP_WHITESPACE = 1 << 0, /* ignore spaces, tabs, CR and LF between characters */
};

enum pct_flags {
    PCT_LOWER = 1 << 0, /* lower-case hex digits (%2f) instead of upper case (%2F) */
};

/* Bytes needed to hold the base64 text of n input bytes, terminator included. */
#define B64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/*
 * Encodes len bytes of in as padded base64 into out, which must hold
 * B64_ENCODED_SIZE(len) bytes, NUL-terminated.
 *
 * Returns: the length of the text written (without the terminator).
 */
size_t b64_encode_buf(const unsigned char *in, size_t len, char *out);

/*
 * Encodes len bytes of in as padded base64.
 *
 * out: on success, a NUL-terminated string the caller frees with free().
 *
 * Returns: DPS_OK, or DPS_ERR_NOMEM (out untouched).
 */
int b64_encode(const unsigned char *in, size_t len, char **out);

/*
 * Decodes base64 text: standard alphabet, padding required (the length
 * without skipped whitespace is a multiple of 4), nothing after the padding.
 *
 * in, len: the text; it need not be NUL-terminated.
 * flags:   B64_SKIP_WHITESPACE to allow line breaks (PEM bodies, pasted keys).
 * out:     on success, the bytes (followed by one extra NUL for convenience),
 *          which the caller frees with free(); callers decoding keys wipe
 *          them with OPENSSL_cleanse first.
 * out_len: on success, the number of decoded bytes.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (not base64; outputs untouched), or
 * DPS_ERR_NOMEM.
 */
int b64_decode(const char *in, size_t len, int flags, unsigned char **out, size_t *out_len);

/*
 * True when in[0..len) is valid base64 under the rules of b64_decode; when
 * decoded_len is not NULL it receives the decoded length. Allocates nothing.
 */
int b64_is_valid(const char *in, size_t len, int flags, size_t *decoded_len);

/* The value of one hex digit (either case), or -1 when c is not one. */
int pct_hex_value(int c);

/*
 * Percent-decodes in[0..len): "%XX" (either hex case) becomes one byte,
 * everything else is copied; '+' is kept as '+' (SAS tokens carry base64).
 *
 * out:     on success, a NUL-terminated string the caller frees with free().
 * out_len: on success (may be NULL), the decoded length; the text may hold
 *          NUL bytes when the input held "%00", so callers that need a C
 *          string check for them.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL ('%' not followed by two hex digits), or
 * DPS_ERR_NOMEM.
 */
int pct_decode(const char *in, size_t len, char **out, size_t *out_len);

/*
 * Percent-encodes every byte of in[0..len) outside the RFC 3986 unreserved
 * set (A-Z a-z 0-9 - . _ ~), as encodeURIComponent-strict does.
 *
 * flags: PCT_LOWER for lower-case hex, as the Azure C SDKs write it.
 * out:   on success, a NUL-terminated string the caller frees with free().
 *
 * Returns: DPS_OK or DPS_ERR_NOMEM.
 */
int pct_encode(const char *in, size_t len, int flags, char **out);

#endif
