/* SPDX-License-Identifier: MIT */
/*
 * The compact JSON writer against jansson's own json_dumps(JSON_COMPACT):
 * every ASCII byte in a string, multi-byte and invalid UTF-8, numbers,
 * nesting, key order, splicing raw text, and random documents.
 */
#include "core/common.h"

#include "../t.h"
#include "server/json_text.h"

/* 1 when json_text_dump(v) equals json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY). */
static int same(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    struct json_text t;
    char *got;
    size_t len = 0;
    int r;

    json_text_init(&t);
    if (json_text_add_value(&t, v) != 0) {
        json_text_release(&t);
        got = NULL;
    } else {
        got = json_text_take(&t, &len);
    }
    r = (!want && !got) || (want && got && strcmp(want, got) == 0 && len == strlen(want));
    if (!r)
        fprintf(stderr, "want %s\n got %s\n", want ? want : "(null)", got ? got : "(null)");
    free(want);
    free(got);
    return r;
}

static void test_strings(void)
{
    char s[2];
    json_t *v = NULL;
    static const char *const utf8[] = {"caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80!",
                                       "a/b",         "\x7f",           "\xef\xbf\xbf"};
    static const char *const bad[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80",    "\xf4\x90\x80\x80",
                                      "\x80", "\xe2\x82", "\xf5\x80\x80\x80"};

    for (int c = 1; c < 0x80; c++) {
        s[0] = (char)c;
        s[1] = '\0';
        v = json_string(s);
        ok(same(v));
        json_decref(v);
        v = NULL;
    }
    v = json_stringn("a\0b", 3);
    ok(same(v));
    json_decref(v);
    for (size_t i = 0; i < ARRAY_SIZE(utf8); i++) {
        v = json_string(utf8[i]);
        ok(v != NULL);
        ok(same(v));
        json_decref(v);
    }
    v = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        v = json_string_nocheck(bad[i]);
        ok(same(v));
        ok(json_text_dump(v, NULL) == NULL);
        json_decref(v);
    }
    v = NULL;
end:
    json_decref(v);
}

static void test_values(void)
{
    json_t *v = NULL;
    static const char *const docs[] = {
        "{}",
        "[]",
        "[null,true,false,0,-1,9223372036854775807,-9223372036854775808]",
        "[0.5,1e300,-2.25,3.0]",
        "{\"b\":1,\"a\":{\"z\":[1,{\"q\":\"x\\\"y\"}],\"y\":{}},\"\\u00e9\":\"\\n\"}",
        /* one literal in two pieces (the parentheses say so to clang) */
        ("{\"registrationId\":\"dev-1\",\"assignedHub\":\"hub.example.net\",\"status\":"
         "\"assigned\",\"symmetricKey\":{\"enrollmentGroupId\":\"g\"}}"),
    };

    for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
        v = json_loads(docs[i], 0, NULL);
        ok(v != NULL);
        ok(same(v));
        json_decref(v);
        v = NULL;
    }
    /* insertion order, not sorted, and a replaced member keeps its place */
    v = json_object();
    json_object_set_new(v, "z", json_integer(1));
    json_object_set_new(v, "a", json_integer(2));
    json_object_set_new(v, "z", json_integer(3));
    ok(same(v));
    json_object_del(v, "z");
    json_object_set_new(v, "m", json_string("\t"));
    ok(same(v));
    ok(json_text_dump(NULL, NULL) == NULL);
end:
    json_decref(v);
}

/* A random document of depth at most d from a small linear congruential generator. */
static json_t *random_value(unsigned *seed, int d)
{
    static const char *const words[] = {"",
                                        "a",
                                        "\"q\"",
                                        "back\\slash",
                                        "tab\there",
                                        "\xc3\xa9t\xc3\xa9",
                                        "\x01\x1f",
                                        "/",
                                        "long text with spaces"};
    unsigned r;
    json_t *v;

    *seed = *seed * 1103515245u + 12345u;
    r = (*seed >> 16) % (d > 0 ? 8 : 6);
    switch (r) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(*seed & 1);
    case 2:
        return json_integer((json_int_t)(*seed) - 40000);
    case 3:
        return json_real((double)(*seed % 1000) / 8.0);
    case 4:
    case 5:
        return json_string(words[*seed % ARRAY_SIZE(words)]);
    case 6:
        v = json_array();
        for (unsigned i = 0; i < *seed % 5; i++)
            json_array_append_new(v, random_value(seed, d - 1));
        return v;
    default:
        v = json_object();
        for (unsigned i = 0; i < *seed % 5; i++)
            json_object_set_new(v, words[(*seed + i) % ARRAY_SIZE(words)],
                                random_value(seed, d - 1));
        return v;
    }
}

static void test_random(void)
{
    unsigned seed = 7;
    json_t *v = NULL;

    for (int i = 0; i < 500; i++) {
        v = random_value(&seed, 4);
        ok(same(v));
        json_decref(v);
        v = NULL;
    }
end:
    json_decref(v);
}

static void test_splice(void)
{
    struct json_text t;
    json_t *state = json_pack("{s:s,s:s}", "registrationId", "d", "status", "assigned");
    char *got = NULL;
    size_t len = 0;

    json_text_init(&t);
    json_text_add_str(&t, "{\"operationId\":");
    ok(json_text_add_string(&t, "op", 2) == 0);
    json_text_add_str(&t, ",\"registrationState\":");
    ok(json_text_add_value(&t, state) == 0);
    ok(json_text_add_string(&t, "\xff", 1) == -1); /* nothing appended */
    json_text_add(&t, "}", 1);
    got = json_text_take(&t, &len);
    ok_str(got, "{\"operationId\":\"op\",\"registrationState\":{\"registrationId\":\"d\","
                "\"status\":\"assigned\"}}");
    ok(len == strlen(got));
    ok(t.buf == NULL && t.len == 0);
    free(got);
    got = json_text_take(&t, &len);
    ok_str(got, "");
    ok(len == 0);
end:
    free(got);
    json_text_release(&t);
    json_decref(state);
}

int main(void)
{
    subtest("strings as jansson escapes them", test_strings);
    subtest("numbers, nesting and key order", test_values);
    subtest("random documents", test_random);
    subtest("splicing raw text", test_splice);
    return t_done();
}
