/* SPDX-License-Identifier: MIT */
/*
 * libdps service client against a tiny in-process TLS server that records
 * each request and answers with a prepared response. The checks are on what
 * the client sends (paths, headers, SAS token) and on how it handles what it
 * gets back (errors, paging, chunked bodies, limits, keep-alive).
 */
#include "core/common.h"
#include "dps/service.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/sas.h"
#include "../t.h"

#define KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define MAX_REQ 8

struct request {
    char *head; /* request line and headers */
    char *body;
};

struct server {
    int fd;
    int port;
    pthread_t thread;
    SSL_CTX *ctx;
    const char *const *responses; /* raw HTTP responses, in order */
    size_t nresponses;
    size_t served;
    unsigned accepts;
    struct request req[MAX_REQ];
    volatile int stop;
};

static EVP_PKEY *g_key;
static X509 *g_cert;
static char g_ca_file[512], g_other_ca_file[512];

/* A self-signed certificate for "localhost" and 127.0.0.1, written to path. */
static X509 *make_cert(EVP_PKEY *key, const char *path)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    FILE *f;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key, EVP_sha256());
    f = fopen(path, "w");
    if (f) {
        PEM_write_X509(f, x);
        fclose(f);
    }
    return x;
}

static void request_free(struct request *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}

/* Reads one request; returns 0 on success, -1 on EOF or error. */
static int read_request(SSL *ssl, struct request *r)
{
    char buf[65536] = "";
    size_t len = 0;
    char *end = NULL, *cl;
    long body_len = 0;

    while (!(end = strstr(buf, "\r\n\r\n"))) {
        int n;

        if (len >= sizeof(buf) - 1)
            return -1;
        n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
    }
    r->head = strndup(buf, (size_t)(end - buf) + 2);
    cl = strcasestr(r->head, "\r\ncontent-length:");
    if (cl)
        body_len = strtol(cl + 17, NULL, 10);
    end += 4;
    len -= (size_t)(end - buf);
    memmove(buf, end, len);
    while ((long)len < body_len) {
        int n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    r->body = strndup(buf, len);
    return 0;
}

static void serve_conn(struct server *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx);

    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        goto out;
    while (s->served < s->nresponses) {
        const char *resp = s->responses[s->served];
        struct request *r = &s->req[s->served < MAX_REQ ? s->served : MAX_REQ - 1];

        request_free(r);
        if (read_request(ssl, r))
            break;
        s->served++;
        /* "!close" at the start: answer, then drop the connection without saying so. */
        if (!strncmp(resp, "!close", 6)) {
            SSL_write(ssl, resp + 6, (int)strlen(resp + 6));
            break;
        }
        SSL_write(ssl, resp, (int)strlen(resp));
        if (strcasestr(resp, "\r\nconnection: close"))
            break;
    }
out:
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static void *server_main(void *arg)
{
    struct server *s = arg;

    while (!s->stop && s->served < s->nresponses) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int fd;

        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        s->accepts++;
        serve_conn(s, fd);
    }
    return NULL;
}

static struct server *server_start(const char *const *responses, size_t n)
{
    struct server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);

    s->responses = responses;
    s->nresponses = n;
    s->ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(s->ctx, g_cert);
    SSL_CTX_use_PrivateKey(s->ctx, g_key);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(s->fd, (struct sockaddr *)&a, sizeof(a));
    listen(s->fd, 8);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, server_main, s);
    return s;
}

static void server_stop(struct server *s)
{
    if (!s)
        return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    SSL_CTX_free(s->ctx);
    for (size_t i = 0; i < MAX_REQ; i++)
        request_free(&s->req[i]);
    free(s);
}

/* The value of a request header (case-insensitive name), copied into buf, or NULL. */
static const char *req_header(const struct request *r, const char *name, char *buf, size_t len)
{
    const char *p = r->head ? strstr(r->head, "\r\n") : NULL;
    size_t n = strlen(name);

    while (p && p[2]) {
        const char *line = p + 2, *eol = strstr(line, "\r\n");

        if (!eol)
            break;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;

            while (*v == ' ')
                v++;
            snprintf(buf, len, "%.*s", (int)(eol - v), v);
            return buf;
        }
        p = eol;
    }
    return NULL;
}

static struct dps_service_client *client_for(const struct server *s, const char *host,
                                             const char *ca_file, size_t max_response)
{
    struct dps_service_client *c = NULL;
    struct dps_service_options o = {
        .ca_file = ca_file, .timeout_ms = 5000, .max_response = max_response};
    char cs[256], connect_to[64];

    snprintf(cs, sizeof(cs),
             "HostName=%s;SharedAccessKeyName=provisioningserviceowner;"
             "SharedAccessKey=" KEY,
             host);
    snprintf(connect_to, sizeof(connect_to), "127.0.0.1:%d", s->port);
    o.connect_to = connect_to;
    if (dps_service_client_new(cs, &o, &c, NULL) != DPS_OK)
        return NULL;
    return c;
}

static void test_put_request(void)
{
    static const char *const resp[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n"
        "{\"etag\":\"\\\"e2\\\"\"}\n"};
    struct server *s = server_start(resp, 1);
    struct dps_service_client *c = client_for(s, "localhost", g_ca_file, 0);
    struct dps_error err = {0};
    struct sas_token *t = NULL;
    char *out = NULL, h[1024], line[256];
    const char *body = "{\"enrollmentGroupId\":\"grp:1/a b\"}";

    ok(c != NULL);
    ok_int(dps_enrollment_group_put(c, "grp:1/a b", body, "\"e1\"", &out, &err), DPS_OK);
    ok_int(dps_service_client_last_status(c), 200);
    /* The body reaches the caller unchanged. */
    ok_str(out, "{\"etag\":\"\\\"e2\\\"\"}\n");

    snprintf(line, sizeof(line), "%.*s", (int)strcspn(s->req[0].head, "\r"), s->req[0].head);
    ok_str(line, "PUT /enrollmentGroups/grp%3A1%2Fa%20b?api-version=2021-10-01 HTTP/1.1");
    ok_str(s->req[0].body, body);
    ok_str(req_header(&s->req[0], "Host", h, sizeof(h)), "localhost");
    ok_str(req_header(&s->req[0], "Content-Type", h, sizeof(h)), "application/json; charset=utf-8");
    ok_str(req_header(&s->req[0], "If-Match", h, sizeof(h)), "\"e1\"");
    ok(req_header(&s->req[0], "Authorization", h, sizeof(h)) != NULL);
    ok_int(sas_token_parse(h, strlen(h), &t, NULL), SAS_OK);
    ok_str(t->sr, "localhost");
    ok_str(t->skn, "provisioningserviceowner");
    ok(t->expiry > (int64_t)time(NULL) + 3000 && t->expiry <= (int64_t)time(NULL) + 3600);
    ok_int(sas_verify_service(t, "localhost", "/enrollmentGroups/grp:1", KEY, (int64_t)time(NULL),
                              NULL),
           SAS_OK);
end:
    sas_token_free(t);
    free(out);
    dps_service_client_free(c);
    server_stop(s);
}

static void test_get_delete_attestation(void)
{
    static const char *const resp[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    };
    struct server *s = server_start(resp, 3);
    struct dps_service_client *c = client_for(s, "localhost", g_ca_file, 0);
    char *out = NULL, *att = NULL, h[256];

    ok(c != NULL);
    ok_int(dps_registration_get(c, "dev-1", &out, NULL), DPS_OK);
    ok(!strncmp(s->req[0].head, "GET /registrations/dev-1?api-version=", 37));
    ok(req_header(&s->req[0], "Content-Type", h, sizeof(h)) == NULL);
    ok(req_header(&s->req[0], "If-Match", h, sizeof(h)) == NULL);
    ok_int(dps_enrollment_delete(c, "dev-1", "*", NULL), DPS_OK);
    ok(!strncmp(s->req[1].head, "DELETE /enrollments/dev-1?", 26));
    ok_str(req_header(&s->req[1], "If-Match", h, sizeof(h)), "*");
    ok(req_header(&s->req[1], "Content-Type", h, sizeof(h)) == NULL);
    ok_int(dps_enrollment_attestation_get(c, "dev-1", &att, NULL), DPS_OK);
    ok(!strncmp(s->req[2].head, "POST /enrollments/dev-1/attestationmechanism?", 45));
    ok_str(req_header(&s->req[2], "Content-Length", h, sizeof(h)), "0");
    /* Three requests, one connection. */
    ok_int(s->accepts, 1);
end:
    free(out);
    free(att);
    dps_service_client_free(c);
    server_stop(s);
}

static void test_errors(void)
{
    static const char *const resp[] = {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 73\r\n\r\n"
        "{\"errorCode\":404201,\"trackingId\":\"t\",\"message\":\"no enrollment 'dev-9'\"}  ",
        "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 43\r\n\r\n"
        "{\"errorCode\":412001,\"message\":\"etag stale\"}",
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 409 Conflict\r\nContent-Length: 9\r\n\r\nnot json!",
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}",
    };
    struct server *s = server_start(resp, 5);
    struct dps_service_client *c = client_for(s, "localhost", g_ca_file, 0);
    struct dps_error err = {0};
    char *out = NULL;

    ok(c != NULL);
    ok_int(dps_enrollment_get(c, "dev-9", &out, &err), DPS_ERR_NOT_FOUND);
    ok_int(err.code, DPS_ERR_NOT_FOUND);
    ok_str(err.msg, "no enrollment 'dev-9'");
    ok(out == NULL);
    ok_int(dps_enrollment_put(c, "dev-9", "{}", "\"x\"", &out, &err), DPS_ERR_PRECONDITION);
    ok_str(err.msg, "etag stale");
    ok_int(dps_enrollment_group_delete(c, "g", NULL, &err), DPS_ERR_AUTH);
    ok(strstr(err.msg, "401") != NULL);
    ok_int(dps_policy_get(c, "p", &out, &err), DPS_ERR_CONFLICT);
    ok(strstr(err.msg, "409") != NULL);
    ok_int(dps_policy_list(c, &out, &err), DPS_ERR_INTERNAL);
    ok_int(dps_service_client_last_status(c), 500);
    ok(out == NULL);
end:
    free(out);
    dps_service_client_free(c);
    server_stop(s);
}

static void test_paging(void)
{
    static const char *const resp[] = {
        ("HTTP/1.1 200 OK\r\nx-ms-continuation: tok 1\r\nx-ms-item-type: Enrollment\r\n"
         "Content-Length: 10\r\n\r\n[{},{},{}]"),
        "HTTP/1.1 200 OK\r\nx-ms-item-type: Enrollment\r\nContent-Length: 4\r\n\r\n[{}]",
        "HTTP/1.1 200 OK\r\nx-ms-continuation: \r\nContent-Length: 2\r\n\r\n[]",
    };
    struct server *s = server_start(resp, 3);
    struct dps_service_client *c = client_for(s, "localhost", g_ca_file, 0);
    struct dps_query_page p1 = {0}, p2 = {0}, p3 = {0};
    struct dps_query q = {.page_size = 3};
    char h[256];

    ok(c != NULL);
    ok_int(dps_enrollment_query(c, &q, &p1, NULL), DPS_OK);
    ok(!strncmp(s->req[0].head, "POST /enrollments/query?", 24));
    ok_str(req_header(&s->req[0], "x-ms-max-item-count", h, sizeof(h)), "3");
    ok(req_header(&s->req[0], "x-ms-continuation", h, sizeof(h)) == NULL);
    ok_str(s->req[0].body, "{\"query\":\"SELECT *\"}");
    ok_str(p1.continuation, "tok 1");
    ok_str(p1.item_type, "Enrollment");
    ok_str(p1.items, "[{},{},{}]");

    q.continuation = p1.continuation;
    ok_int(dps_registration_query(c, "grp 1", &q, &p2, NULL), DPS_OK);
    ok(!strncmp(s->req[1].head, "POST /registrations/grp%201/query?", 34));
    ok_str(req_header(&s->req[1], "x-ms-continuation", h, sizeof(h)), "tok 1");
    ok(p2.continuation == NULL);

    ok_int(dps_enrollment_group_query(c, NULL, &p3, NULL), DPS_OK);
    ok(req_header(&s->req[2], "x-ms-max-item-count", h, sizeof(h)) == NULL);
    /* An empty continuation ends the listing, as no header does. */
    ok(p3.continuation == NULL);
    ok(p3.item_type == NULL);
end:
    dps_query_page_release(&p1);
    dps_query_page_release(&p2);
    dps_query_page_release(&p3);
    dps_service_client_free(c);
    server_stop(s);
}

static void test_chunked_and_reconnect(void)
{
    static const char *const resp[] = {
        /* Chunked, then the server drops the kept-alive connection while idle. */
        ("!closeHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        /* No length and not chunked: the body ends at the close. */
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"b\":2}",
    };
    struct server *s = server_start(resp, 3);
    struct dps_service_client *c = client_for(s, "localhost", g_ca_file, 0);
    struct dps_error err = {0};
    char *a = NULL, *b = NULL, *d = NULL;

    ok(c != NULL);
    ok_int(dps_enrollment_get(c, "a", &a, &err), DPS_OK);
    ok_str(a, "{\"a\": 1}");
    usleep(50 * 1000);
    /* The reused connection is gone: the client must reopen it and succeed. */
    ok_int(dps_enrollment_get(c, "b", &b, &err), DPS_OK);
    ok_str(b, "{}");
    ok_int(dps_enrollment_get(c, "d", &d, &err), DPS_OK);
    ok_str(d, "{\"b\":2}");
    ok_int(s->accepts, 3);
end:
    free(a);
    free(b);
    free(d);
    dps_service_client_free(c);
    server_stop(s);
}

static void test_limits(void)
{
    static const char *const resp[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "800\r\n",
    };
    char *big = NULL;
    const char *r[2];
    struct server *s = NULL;
    struct dps_service_client *c = NULL;
    struct dps_error err = {0};
    char *out = NULL;

    /* A chunked body of 2048 bytes, over a 1024-byte limit. */
    big = malloc(4096);
    ok(big != NULL);
    {
        char fill[2049];

        memset(fill, 'x', 2048);
        fill[2048] = '\0';
        snprintf(big, 4096, "%s%s\r\n0\r\n\r\n", resp[1], fill);
    }
    r[0] = resp[0];
    r[1] = big;
    s = server_start(r, 2);
    c = client_for(s, "localhost", g_ca_file, 1024);
    ok(c != NULL);
    ok_int(dps_enrollment_get(c, "a", &out, &err), DPS_ERR_TOO_LARGE);
    ok(strstr(err.msg, "limit") != NULL);
    ok_int(dps_enrollment_get(c, "b", &out, &err), DPS_ERR_TOO_LARGE);
    ok(out == NULL);
end:
    free(out);
    dps_service_client_free(c);
    server_stop(s);
    free(big);
}

static void test_tls_verification(void)
{
    static const char *const resp[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"};
    struct server *s = server_start(resp, 1);
    struct dps_service_client *wrong_ca = client_for(s, "localhost", g_other_ca_file, 0);
    struct dps_service_client *wrong_host = client_for(s, "dps.example.net", g_ca_file, 0);
    struct dps_service_client *good = client_for(s, "127.0.0.1", g_ca_file, 0);
    struct dps_error err = {0};
    char *out = NULL;

    ok(wrong_ca && wrong_host && good);
    ok_int(dps_enrollment_get(wrong_ca, "a", &out, &err), DPS_ERR_TLS);
    ok_int(dps_enrollment_get(wrong_host, "a", &out, &err), DPS_ERR_TLS);
    ok(strstr(err.msg, "dps.example.net") != NULL);
    /* An IP address as HostName is checked against the certificate's IP entries. */
    ok_int(dps_enrollment_get(good, "a", &out, &err), DPS_OK);
end:
    free(out);
    dps_service_client_free(wrong_ca);
    dps_service_client_free(wrong_host);
    dps_service_client_free(good);
    server_stop(s);
}

static void test_bad_input(void)
{
    struct dps_service_client *c = NULL;
    struct dps_error err = {0};
    struct dps_service_options o = {.connect_to = "::1:443"};
    char *out = NULL;

    ok_int(dps_service_client_new("HostName=x", NULL, &c, &err), DPS_ERR_INVAL);
    ok(c == NULL);
    ok_int(dps_service_client_new("HostName=h;SharedAccessKeyName=p;SharedAccessKey=" KEY, &o, &c,
                                  &err),
           DPS_ERR_INVAL);
    ok(c == NULL);
    ok_int(
        dps_service_token("HostName=h;SharedAccessKeyName=p;SharedAccessKey=" KEY, 0, &out, &err),
        DPS_ERR_INVAL);
    ok_int(
        dps_service_token("HostName=h;SharedAccessKeyName=p;SharedAccessKey=" KEY, 60, &out, &err),
        DPS_OK);
    ok(!strncmp(out, "SharedAccessSignature sr=h&sig=", 31));
    free(out);
    out = NULL;
    ok_int(dps_attestation_symmetric_key("c2hvcnQ=", NULL, &out, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "primary") != NULL);
    ok_int(dps_attestation_symmetric_key(NULL, NULL, &out, &err), DPS_OK);
    ok_str(out, "{\"type\":\"symmetricKey\",\"symmetricKey\":{}}");
    free(out);
    out = NULL;
    ok_int(dps_attestation_ca_ref("root-1", NULL, &out, &err), DPS_OK);
    ok_str(out, "{\"type\":\"x509\",\"x509\":{\"caReferences\":{\"primary\":\"root-1\"}}}");
    free(out);
    out = NULL;
    ok_int(dps_attestation_x509_from_files(DPS_X509_SIGNING, g_ca_file, NULL, &out, &err), DPS_OK);
    ok(strstr(out, "\"signingCertificates\":{\"primary\":{\"certificate\":\"-----BEGIN") != NULL);
    free(out);
    out = NULL;
    ok_int(dps_attestation_x509_from_files(DPS_X509_CLIENT, "/nonexistent.pem", NULL, &out, &err),
           DPS_ERR_IO);
end:
    free(out);
    dps_service_client_free(c);
}

int main(void)
{
    const char *tmp = getenv("DPS_TEST_TMP");
    EVP_PKEY *other = NULL;
    X509 *other_cert = NULL;

    if (!tmp)
        tmp = "/tmp";
    mkdir(tmp, 0700);
    snprintf(g_ca_file, sizeof(g_ca_file), "%s/service-client-ca-%d.pem", tmp, (int)getpid());
    snprintf(g_other_ca_file, sizeof(g_other_ca_file), "%s/service-client-other-%d.pem", tmp,
             (int)getpid());
    g_key = EVP_EC_gen("P-256");
    other = EVP_EC_gen("P-256");
    g_cert = make_cert(g_key, g_ca_file);
    other_cert = make_cert(other, g_other_ca_file);

    subtest("put request line, headers and sas token", test_put_request);
    subtest("get, delete, attestation on one connection", test_get_delete_attestation);
    subtest("error status and server message", test_errors);
    subtest("query paging headers", test_paging);
    subtest("chunked body and idle reconnect", test_chunked_and_reconnect);
    subtest("response size limit", test_limits);
    subtest("tls verification", test_tls_verification);
    subtest("bad input and helpers", test_bad_input);

    unlink(g_ca_file);
    unlink(g_other_ca_file);
    X509_free(g_cert);
    X509_free(other_cert);
    EVP_PKEY_free(g_key);
    EVP_PKEY_free(other);
    return t_done();
}
