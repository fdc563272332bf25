/* SPDX-License-Identifier: MIT */
/*
 * Compact JSON text built without a second pass through jansson's encoder:
 * a growing buffer that renders jansson values byte for byte as
 * json_dumps(v, JSON_COMPACT) does (members in insertion order), and takes
 * raw text, so that a piece rendered once (a registration state) can be
 * spliced into several documents. For the request path, where jansson's
 * per-character encoder is the larger part of rendering; not a parser.
 */
#ifndef DPS_SERVER_JSON_TEXT_H
#define DPS_SERVER_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

/* Nesting deeper than this is refused (the parser's own limit is lower). */
#define JSON_TEXT_DEPTH_MAX 2048

/* The text so far: buf[0..len) plus a NUL; buf is NULL until something is added. */
struct json_text {
    char *buf;
    size_t len, cap;
};

/* Makes t empty; nothing to release yet. */
void json_text_init(struct json_text *t);

/* Frees what t holds and makes it empty; t may be reused. */
void json_text_release(struct json_text *t);

/* Appends n raw bytes of s (already JSON: the caller vouches). */
void json_text_add(struct json_text *t, const char *s, size_t n);

/* Appends the NUL-terminated raw text s. */
void json_text_add_str(struct json_text *t, const char *s);

/*
 * Appends s[0..n) as a quoted JSON string, escaped as jansson escapes
 * ('"', '\\', control characters; nothing else).
 *
 * Returns: 0; -1 when s is not valid UTF-8 (nothing appended).
 */
int json_text_add_string(struct json_text *t, const char *s, size_t n);

/*
 * Appends the compact rendering of v, as json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) would write it (reals are rendered by jansson itself).
 *
 * Returns: 0; -1 when jansson would refuse v (a string that is not UTF-8,
 * nesting deeper than JSON_TEXT_DEPTH_MAX); t then holds a partial text.
 */
int json_text_add_value(struct json_text *t, const json_t *v);

/*
 * Hands over the text: *len (when len is not NULL) gets its length; the
 * caller frees the NUL-terminated result with free(). t is empty after.
 * Never NULL: an empty t gives "".
 */
char *json_text_take(struct json_text *t, size_t *len);

/*
 * json_dumps(v, JSON_COMPACT) without jansson's encoder.
 *
 * Returns: the text (caller frees with free(); *len set when len is not
 * NULL), or NULL when v is NULL or jansson would refuse it.
 */
char *json_text_dump(const json_t *v, size_t *len);

#endif
