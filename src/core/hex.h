/* SPDX-License-Identifier: MIT */
/*
 * Lower-case hexadecimal text of bytes, and the 8-4-4-4-12 UUID shape
 * built on it, written without printf: tracking ids, etags and operation
 * ids are formatted on every registration. Pure functions; no allocation.
 */
#ifndef DPS_CORE_HEX_H
#define DPS_CORE_HEX_H

#include <stddef.h>

/* Buffer size for hex_uuid_format(): 36 characters and the NUL. */
#define HEX_UUID_SIZE 37

/*
 * Writes the 2 * n lower-case hex digits of in[0..n) to out, as
 * "%02x" per byte would. out is not NUL-terminated.
 *
 * Returns: out + 2 * n, where the next character goes.
 */
char *hex_encode(const unsigned char *in, size_t n, char *out);

/* As hex_encode(), in upper case ("%02X" per byte): thumbprints and proof-of-possession codes. */
char *hex_encode_upper(const unsigned char *in, size_t n, char *out);

/*
 * Formats 16 bytes as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lower-case)
 * into out, NUL-terminated. The bytes are taken as they are: a caller
 * that wants a version 4 UUID sets the version and variant bits first.
 */
void hex_uuid_format(const unsigned char in[16], char out[HEX_UUID_SIZE]);

#endif
