/* SPDX-License-Identifier: MIT */
/*
 * The compact JSON writer of json_text.h. Strings are copied in runs
 * between the bytes that need an escape; the escapes and the UTF-8 checks
 * are jansson's, so that the text equals json_dumps(JSON_COMPACT) byte
 * for byte (tests/unit/test_json_text.c compares the two).
 */
#include "core/common.h"
#include "server/json_text.h"

#include <inttypes.h>

void json_text_init(struct json_text *t)
{
    memset(t, 0, sizeof(*t));
}

void json_text_release(struct json_text *t)
{
    free(t->buf);
    json_text_init(t);
}

/* Room for n more bytes and the NUL. */
static void reserve(struct json_text *t, size_t n)
{
    size_t cap;

    if (t->cap - t->len > n)
        return;
    cap = t->cap ? t->cap : 256;
    while (cap - t->len <= n)
        cap *= 2;
    t->buf = xrealloc(t->buf, cap);
    t->cap = cap;
}

void json_text_add(struct json_text *t, const char *s, size_t n)
{
    reserve(t, n);
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void json_text_add_str(struct json_text *t, const char *s)
{
    json_text_add(t, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xC2)
        return 0; /* a continuation byte, or an overlong two-byte form */
    if (s[0] < 0xE0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] < 0xF0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] < 0xF5) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int json_text_add_string(struct json_text *t, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start = t->len, run = 0, i = 0, k;
    char esc[8];

    reserve(t, n + 2);
    t->buf[t->len++] = '"';
    while (i < n) {
        unsigned char c = u[i];

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            if ((k = utf8_sequence(u + i, n - i)) == 0) {
                t->len = start;
                t->buf[t->len] = '\0';
                return -1;
            }
            i += k;
            continue;
        }
        json_text_add(t, s + run, i - run);
        switch (c) {
        case '"':
            json_text_add(t, "\\\"", 2);
            break;
        case '\\':
            json_text_add(t, "\\\\", 2);
            break;
        case '\b':
            json_text_add(t, "\\b", 2);
            break;
        case '\f':
            json_text_add(t, "\\f", 2);
            break;
        case '\n':
            json_text_add(t, "\\n", 2);
            break;
        case '\r':
            json_text_add(t, "\\r", 2);
            break;
        case '\t':
            json_text_add(t, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", (unsigned int)c);
            json_text_add(t, esc, 6);
            break;
        }
        run = ++i;
    }
    json_text_add(t, s + run, n - run);
    json_text_add(t, "\"", 1);
    return 0;
}

static int add_value(struct json_text *t, const json_t *v, int depth)
{
    char num[32];
    char *s;
    void *it;
    size_t i;
    int n;

    if (depth > JSON_TEXT_DEPTH_MAX)
        return -1;
    switch (json_typeof(v)) {
    case JSON_NULL:
        json_text_add(t, "null", 4);
        return 0;
    case JSON_TRUE:
        json_text_add(t, "true", 4);
        return 0;
    case JSON_FALSE:
        json_text_add(t, "false", 5);
        return 0;
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        json_text_add(t, num, (size_t)n);
        return 0;
    case JSON_REAL:
        /* jansson's shortest round-trip form: rare here, so not reproduced */
        if (!(s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
            return -1;
        json_text_add_str(t, s);
        free(s);
        return 0;
    case JSON_STRING:
        return json_text_add_string(t, json_string_value(v), json_string_length(v));
    case JSON_ARRAY:
        json_text_add(t, "[", 1);
        for (i = 0; i < json_array_size(v); i++) {
            if (i)
                json_text_add(t, ",", 1);
            if (add_value(t, json_array_get(v, i), depth + 1) != 0)
                return -1;
        }
        json_text_add(t, "]", 1);
        return 0;
    case JSON_OBJECT:
        json_text_add(t, "{", 1);
        /* jansson iterates in insertion order, which is the order it dumps */
        for (it = json_object_iter((json_t *)v), i = 0; it;
             it = json_object_iter_next((json_t *)v, it), i++) {
            if (i)
                json_text_add(t, ",", 1);
            if (json_text_add_string(t, json_object_iter_key(it), json_object_iter_key_len(it)) !=
                0)
                return -1;
            json_text_add(t, ":", 1);
            if (add_value(t, json_object_iter_value(it), depth + 1) != 0)
                return -1;
        }
        json_text_add(t, "}", 1);
        return 0;
    }
    return -1;
}

int json_text_add_value(struct json_text *t, const json_t *v)
{
    return v ? add_value(t, v, 0) : -1;
}

char *json_text_take(struct json_text *t, size_t *len)
{
    char *s;

    if (!t->buf)
        json_text_add(t, "", 0);
    s = t->buf;
    if (len)
        *len = t->len;
    json_text_init(t);
    return s;
}

char *json_text_dump(const json_t *v, size_t *len)
{
    struct json_text t;

    json_text_init(&t);
    if (json_text_add_value(&t, v) != 0) {
        json_text_release(&t);
        return NULL;
    }
    return json_text_take(&t, len);
}
