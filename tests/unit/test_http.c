/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP layer without sockets: the request reader and its
 * limits, pipelining, percent-decoding, the router and the error body.
 */
#include "core/common.h"
#include "server/http.h"
#include "../t.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/pki.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"
#include "server/tls.h"

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

/*
 * Deferred replies, in a real server in this process: a reply from a timer
 * on the worker's loop, a reply from another thread through worker_call(),
 * and a client that hangs up before its deferred reply.
 */
static bool abandoned_seen;

static void reply_later(evutil_socket_t fd, short what, void *arg)
{
    struct http_request *req = arg;

    if (http_request_abandoned(req))
        abandoned_seen = true;
    http_reply_header(req, "X-Deferred", "timer");
    http_reply_json(req, 200, "{\"deferred\":true}", 17);
}

static int slot_key, slots_freed;

static void slot_free(void *p)
{
    slots_freed++;
    free(p);
}

static void deferred_timer(struct http_request *req, void *arg)
{
    struct timeval tv = {0, (long)(intptr_t)arg};

    /* Per-worker data: set once per worker, found again on later requests. */
    if (!worker_data(req->worker, &slot_key))
        worker_set_data(req->worker, &slot_key, xstrdup("per-worker"), slot_free);

    event_base_once(worker_base(req->worker), -1, EV_TIMEOUT, reply_later, req, &tv);
}

static void reply_from_call(void *arg)
{
    struct http_request *req = arg;

    http_reply_jansson(req, 201, json_pack("{s:s}", "from", "thread"));
}

static void *other_thread(void *arg)
{
    struct http_request *req = arg;

    usleep(50 * 1000);
    worker_call(req->worker, reply_from_call, req);
    return NULL;
}

static void deferred_thread(struct http_request *req, void *arg)
{
    pthread_t t;

    pthread_create(&t, NULL, other_thread, req);
    pthread_detach(t);
}

static void *run_server(void *arg)
{
    server_run(arg);
    return NULL;
}

/* Sends one request over a fresh TLS connection and reads the reply into buf. */
static int roundtrip(SSL_CTX *ctx, int port, const char *request, bool hang_up, char *buf,
                     size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), n = 0, got = 0;
    SSL *ssl = NULL;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, request, (int)strlen(request)) <= 0)
        goto out;
    if (hang_up)
        goto out;
    while ((size_t)got < len - 1 &&
           (n = SSL_read(ssl, buf + got, (int)(len - 1 - (size_t)got))) > 0) {
        got += n;
        buf[got] = '\0';
        const char *body = strstr(buf, "\r\n\r\n"), *cl = strstr(buf, "Content-Length: ");
        if (body && cl && (size_t)(got - (body + 4 - buf)) >= (size_t)strtol(cl + 16, NULL, 10))
            break;
    }
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    return got;
}

static void test_deferred_replies(void)
{
    static const struct http_route routes[] = {
        {"GET", "/timer", deferred_timer, (void *)(intptr_t)100000},
        {"GET", "/abandon", deferred_timer, (void *)(intptr_t)300000},
        {"GET", "/thread", deferred_thread, NULL},
    };
    const char *tmp = getenv("DPS_TEST_TMP") ? getenv("DPS_TEST_TMP") : "/tmp";
    char cert[512], key[512], buf[4096], listen_port[16];
    struct config cfg = {0};
    struct dps_error err = {0};
    struct http_router *router = http_router_new();
    struct server *srv = NULL;
    SSL_CTX *sctx = NULL, *cctx = SSL_CTX_new(TLS_client_method());
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    pthread_t thread;
    bool running = false;
    sigset_t set;
    int port;
    const char *dns[] = {"localhost"};
    struct pki_cert_spec spec = {.kind = PKI_CERT_SERVER,
                                 .subject = "CN=localhost",
                                 .days = 1,
                                 .pathlen = -1,
                                 .dns_names = dns,
                                 .n_dns_names = 1};
    char *argv[] = {"dpsd",        "--data-dir",  "unused", "--https-listen",
                    "127.0.0.1:0", "--workers",   "2",      "--shutdown-timeout",
                    "5",           "--log-level", "error"};

    mkdir(tmp, 0755);
    snprintf(cert, sizeof(cert), "%s/test_http.%d.pem", tmp, (int)getpid());
    snprintf(key, sizeof(key), "%s/test_http.%d.key", tmp, (int)getpid());
    ok_int(pki_key_generate(PKI_KEY_P256, &pk, &err), DPS_OK);
    ok_int(pki_cert_issue(&spec, pk, NULL, pk, &x, &err), DPS_OK);
    ok_int(pki_certs_write(cert, &x, 1, PKI_FORCE, &err), DPS_OK);
    ok_int(pki_key_write(key, pk, NULL, PKI_FORCE, &err), DPS_OK);
    ok((sctx = tls_server_ctx_new(cert, key, &err)) != NULL);
    ok_int(config_load(&cfg, (int)ARRAY_SIZE(argv), argv, NULL, &err), DPS_OK);
    log_init(false, LOG_ERROR);
    http_router_add(router, routes, ARRAY_SIZE(routes));
    ok_int(server_new(&cfg, sctx, router, NULL, &srv, &err), DPS_OK);
    snprintf(listen_port, sizeof(listen_port), "%s", strrchr(server_https_address(srv), ':') + 1);
    port = (int)strtol(listen_port, NULL, 10);
    ok(port > 0);

    /* server_run takes SIGTERM with sigwait: block it here so the thread gets it. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    ok(pthread_create(&thread, NULL, run_server, srv) == 0);
    running = true;

    ok(roundtrip(cctx, port, "GET /timer HTTP/1.1\r\nHost: x\r\n\r\n", false, buf, sizeof(buf)) >
       0);
    ok(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ok(strstr(buf, "X-Deferred: timer\r\n") != NULL);
    ok(strstr(buf, "\r\n\r\n{\"deferred\":true}") != NULL);

    ok(roundtrip(cctx, port, "GET /thread HTTP/1.1\r\nHost: x\r\n\r\n", false, buf, sizeof(buf)) >
       0);
    ok(strncmp(buf, "HTTP/1.1 201 Created\r\n", 22) == 0);
    ok(strstr(buf, "{\"from\":\"thread\"}") != NULL);

    roundtrip(cctx, port, "GET /abandon HTTP/1.1\r\nHost: x\r\n\r\n", true, buf, sizeof(buf));
    usleep(500 * 1000);
    ok(abandoned_seen);

    /* Still serving after the abandoned request. */
    ok(roundtrip(cctx, port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", false, buf, sizeof(buf)) >
       0);
    ok(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);

    /* A graceful stop; server_free() hands the per-worker data to its free function. */
    kill(getpid(), SIGTERM);
    pthread_join(thread, NULL);
    running = false;
    server_free(srv);
    srv = NULL;
    ok(slots_freed >= 1);
end:
    if (running) {
        kill(getpid(), SIGTERM);
        pthread_join(thread, NULL);
    }
    server_free(srv);
    http_router_free(router);
    config_release(&cfg);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(x);
    EVP_PKEY_free(pk);
    unlink(cert);
    unlink(key);
}

int main(void)
{
    subtest("simple and pipelined requests", test_simple_and_pipelined);
    subtest("a request fed one byte at a time", test_byte_at_a_time);
    subtest("limits and malformed requests", test_limits_and_errors);
    subtest("percent-decoding", test_percent_decode);
    subtest("router", test_router);
    subtest("azure error body", test_error_body);
    subtest("deferred replies in a running server", test_deferred_replies);
    return t_done();
}
