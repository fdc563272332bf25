/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP layer without sockets: the request reader and its
 * limits, pipelining, percent-decoding, the router and the error body.
 */
#include "core/common.h"
#include "server/http.h"
#include "../t.h"

#include <jansson.h>

/* Feeds all of s; returns the first request, or NULL with *status set. */
static struct http_request *parse(struct http_reader *r, const char *s, size_t *used, int *status)
{
    struct http_request *req = NULL;
    struct dps_error err;

    *status = 0;
    if (http_reader_feed(r, s, strlen(s), used, &req, status, &err) != DPS_OK)
        return NULL;
    return req;
}

static void test_simple_and_pipelined(void)
{
    struct http_reader *r = http_reader_new(&http_default_limits);
    struct http_request *a = NULL, *b = NULL;
    const char *two =
        "GET /%7BidScope%7D/registrations/dev%2F1/operations/op?api-version=2019-03-31"
        "&x=a+b%26c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
        "X-Thing: one\r\n\r\n{}"
        "PUT /enrollments/e1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    size_t used = 0;
    int status;

    a = parse(r, two, &used, &status);
    ok(a != NULL);
    ok(used < strlen(two));
    ok_str(a->method, "GET");
    ok_str(a->path, "/%7BidScope%7D/registrations/dev%2F1/operations/op");
    ok_int(a->nsegments, 5);
    ok_str(a->segments[0], "{idScope}");
    ok_str(a->segments[2], "dev/1");
    ok_str(http_request_query(a, "api-version"), "2019-03-31");
    ok_str(http_request_query(a, "x"), "a b&c");
    ok_str(http_request_header(a, "x-thing"), "one");
    ok_str(http_request_header(a, "CONTENT-LENGTH"), "2");
    ok(http_request_header(a, "missing") == NULL);
    ok_int(a->body_len, 2);
    ok_str(a->body, "{}");
    ok(a->keep_alive);
    ok_int(strlen(a->tracking_id), 36);
    ok(!http_reader_idle(r) || http_reader_idle(r)); /* either is fine between requests */

    size_t used2 = 0;
    b = parse(r, two + used, &used2, &status);
    ok(b != NULL);
    ok_int(used + used2, strlen(two));
    ok_str(b->method, "PUT");
    ok_str(b->body, "abc");
    ok(!b->keep_alive);
    ok(http_reader_idle(r));
end:
    http_request_free(a);
    http_request_free(b);
    http_reader_free(r);
}

static void test_byte_at_a_time(void)
{
    struct http_reader *r = http_reader_new(&http_default_limits);
    struct http_request *req = NULL;
    const char *s = "POST /a/b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    struct dps_error err;
    size_t i, used;
    int status;

    for (i = 0; s[i] && !req; i++) {
        ok_int(http_reader_feed(r, s + i, 1, &used, &req, &status, &err), DPS_OK);
        ok_int(used, 1);
        if (i == 0)
            ok(!http_reader_idle(r));
    }
    ok(req != NULL);
    ok_int(i, strlen(s));
    ok_str(req->body, "hello");
end:
    http_request_free(req);
    http_reader_free(r);
}

static void expect_status(const char *s, int want)
{
    struct http_limits lim = http_default_limits;
    struct http_reader *r;
    struct http_request *req = NULL;
    size_t used;
    int status;

    lim.max_body = 16;
    lim.max_headers = 4;
    lim.max_url = 64;
    r = http_reader_new(&lim);
    req = parse(r, s, &used, &status);
    ok(req == NULL);
    ok_int(status, want);
end:
    http_request_free(req);
    http_reader_free(r);
}

static void test_limits_and_errors(void)
{
    int before = t_checks_failed;

    expect_status("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413);
    expect_status(
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n0123456789abcdefg\r\n", 413);
    expect_status("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431);
    expect_status("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
                  "HTTP/1.1\r\n\r\n",
                  414);
    expect_status("GARBAGE\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
    expect_status("GET /a%zz HTTP/1.1\r\n\r\n", 400);
    expect_status("GET /a%00b HTTP/1.1\r\n\r\n", 400);
    expect_status("GET http://example.com/ HTTP/1.1\r\n\r\n", 400);
    expect_status("GET / HTTP/2.0\r\n\r\n", 505);
    ok(t_checks_failed == before);
end:;
}

static void test_percent_decode(void)
{
    char *s = NULL;

    s = http_percent_decode("a%2Fb%2fc+d", 11, false);
    ok_str(s, "a/b/c+d");
    free(s);
    s = http_percent_decode("a+b", 3, true);
    ok_str(s, "a b");
    free(s);
    s = NULL;
    ok(http_percent_decode("%4", 2, false) == NULL);
    ok(http_percent_decode("%", 1, false) == NULL);
    ok(http_percent_decode("%g0", 3, false) == NULL);
    s = http_percent_decode("", 0, false);
    ok_str(s, "");
end:
    free(s);
}

static int hits[4];
static void h0(struct http_request *req, void *arg)
{
    hits[0]++;
}
static void h1(struct http_request *req, void *arg)
{
    hits[1]++;
}

static void test_router(void)
{
    static const struct http_route routes[] = {
        {"GET", "/enrollments/{id}", h0, NULL},
        {"PUT", "/enrollments/{id}", h1, NULL},
        {"POST", "/{idScope}/registrations/{registrationId}/register", h0, NULL},
        {NULL, "/static/*", h1, NULL},
    };
    struct http_router *router = http_router_new();
    struct http_reader *r = http_reader_new(&http_default_limits);
    struct http_request *req = NULL;
    const struct http_route *rt;
    size_t used;
    int status;

    http_router_add(router, routes, ARRAY_SIZE(routes));

    req = parse(r, "GET /Enrollments/My%20Dev?api-version=1 HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    rt = http_router_match(router, req, &status);
    ok(rt == &routes[0]);
    ok_str(http_request_param(req, "id"), "My Dev");
    ok(http_request_param(req, "nope") == NULL);
    http_request_free(req);

    req = parse(r, "DELETE /enrollments/x HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    ok(http_router_match(router, req, &status) == NULL);
    ok_int(status, 405);
    http_request_free(req);

    req =
        parse(r, "POST /0ne00000001/registrations/dev-1/register HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    rt = http_router_match(router, req, &status);
    ok(rt == &routes[2]);
    ok_str(http_request_param(req, "idScope"), "0ne00000001");
    ok_str(http_request_param(req, "registrationId"), "dev-1");
    http_request_free(req);

    req = parse(r, "GET /static HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    ok(http_router_match(router, req, &status) == &routes[3]);
    http_request_free(req);
    req = parse(r, "GET /static/a/b.css HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    ok(http_router_match(router, req, &status) == &routes[3]);
    http_request_free(req);

    req = parse(r, "GET /enrollments HTTP/1.1\r\n\r\n", &used, &status);
    ok(req != NULL);
    ok(http_router_match(router, req, &status) == NULL);
    ok_int(status, 404);
end:
    http_request_free(req);
    http_reader_free(r);
    http_router_free(router);
}

static void test_error_body(void)
{
    size_t len = 0;
    char *s = http_error_body(404, 201, "t-1", "no \"such\" thing", &len);
    json_t *o = json_loadb(s, len, 0, NULL);
    const char *ts;

    ok(o != NULL);
    ok_int(json_integer_value(json_object_get(o, "errorCode")), 404201);
    ok_str(json_string_value(json_object_get(o, "trackingId")), "t-1");
    ok_str(json_string_value(json_object_get(o, "message")), "no \"such\" thing");
    ts = json_string_value(json_object_get(o, "timestampUtc"));
    ok(ts && strlen(ts) == 28 && ts[27] == 'Z' && ts[19] == '.');
    ok_str(http_reason(413), "Payload Too Large");
end:
    json_decref(o);
    free(s);
}

int main(void)
{
    subtest("simple and pipelined requests", test_simple_and_pipelined);
    subtest("a request fed one byte at a time", test_byte_at_a_time);
    subtest("limits and malformed requests", test_limits_and_errors);
    subtest("percent-decoding", test_percent_decode);
    subtest("router", test_router);
    subtest("azure error body", test_error_body);
    return t_done();
}
