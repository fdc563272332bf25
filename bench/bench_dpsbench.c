/* SPDX-License-Identifier: MIT */
/*
 * dpsbench: the load generator of `make bench`. It registers devices over
 * HTTPS or MQTT against dpsd (X.509 client certificates or symmetric-key SAS
 * tokens), each registration on a fresh TLS connection with a full
 * handshake; measures the bare TLS handshake against bench/tlsserver as the
 * baseline; drives the service API on keep-alive connections; and times
 * query pages. It is a measuring tool, not a device client: it checks only
 * what it needs to count a registration as acknowledged, and afterwards that
 * every acknowledged registration is in the store (unless --no-check: the
 * protocol floor, tlsserver --answer, stores nothing). See
 * docs/internals/performance.md.
 */
#include "core/common.h"
#include "core/dps_mqtt.h"
#include "core/mqtt_codec.h"
#include "core/pki.h"
#include "core/sas.h"
#include "dps/service.h"
#include "tls_write.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CLIENTS 4096
#define MAX_THREADS 64
#define MAX_DEVICES 1000000
#define MAX_HEADER 16384
#define MAX_BODY (1024 * 1024)
#define OP_ID_MAX 96
#define REQUEST_TIMEOUT_S 30
/* The api-version of the CONNECT user name, as the Azure device SDKs send it. */
#define MQTT_API_VERSION "2019-03-31"
#define MQTT_KEEP_ALIVE_S 60
/* Packet id of the SUBSCRIBE; PUBLISHes count up from the next one. */
#define MQTT_SUBSCRIBE_ID 1
/* retry-after when a 202 response topic carries none (the Azure SDKs wait 3 s too) */
#define MQTT_DEFAULT_RETRY_S 3

enum mode {
    MODE_X509,
    MODE_SYMKEY,
    MODE_HANDSHAKE,
    MODE_HANDSHAKE_SERVER_AUTH,
    MODE_SERVICE,
    MODE_QUERY_PAGE,
    MODE_MQTT_X509,
    MODE_MQTT_SYMKEY,
    MODE_PKI,
    MODE_PAGE_THROUGH,
};

static const char *const mode_names[] = {
    "x509",      "symkey",      "handshake", "handshake-server-auth", "service", "query-page",
    "mqtt-x509", "mqtt-symkey", "pki",       "page-through"};

/* Where an MQTT registration is, between the TLS handshake and the close. */
enum mqtt_step {
    MQTT_STEP_CONNACK,  /* CONNECT sent */
    MQTT_STEP_SUBACK,   /* SUBSCRIBE sent */
    MQTT_STEP_RESPONSE, /* register or poll PUBLISH sent: PUBACK and the response due */
    MQTT_STEP_RETRY,    /* a 202 came: waiting retry-after before the poll */
    MQTT_STEP_CLOSING,  /* assigned, DISCONNECT sent: waiting for the server to close */
};

struct options {
    enum mode mode;
    const char *connect;     /* host:port */
    const char *service;     /* host:port of dpsd's service API (HTTPS); NULL: connect */
    const char *server_name; /* SNI and the name the server certificate must carry */
    const char *data_dir;    /* dpsd's: connection-string, id-scope, tls/ca.pem */
    const char *ca_file;     /* trust for the server certificate */
    const char *pki_dir;     /* root.pem, inter.pem, inter.key */
    const char *group;       /* enrollment group id */
    const char *label;       /* first cell of the Markdown row */
    int clients;
    int threads;
    int devices;
    double duration_s;
    double warmup_s;
    long count;
    double rate; /* registrations/s over all clients; 0 = as fast as possible */
    int tls12;
    int no_check;    /* skip the store check after a registration run */
    long server_pid; /* the server process whose CPU time is sampled; 0 = none */
};

/* One pre-made device: its credentials and its last acknowledged operation. */
struct device {
    char id[64];
    X509 *cert;
    EVP_PKEY *key;
    char *request; /* the whole HTTP request, or the MQTT CONNECT packet, ready to send */
    size_t request_len;
    char op_id[OP_ID_MAX]; /* last acknowledged operationId; "" when none */
    long acked;
};

struct thread;

/* One concurrent client: a sequence of connections, one at a time. */
struct client {
    struct thread *t;
    int index;      /* global client number */
    int next_dev;   /* index into the devices this client owns */
    double started; /* time the current attempt began */
    double next_at; /* when the next attempt may begin (paced runs) */
    int connected;  /* the TLS handshake finished */
    struct bufferevent *bev;
    struct event *timer;
    struct device *dev;
    /* MQTT modes only */
    struct event *poll_timer; /* fires the poll after a 202 */
    enum mqtt_step step;
    bool puback_seen;      /* of the request PUBLISH in flight */
    uint16_t packet_id;    /* of the request PUBLISH in flight */
    unsigned long rid;     /* $rid of the request in flight */
    char op_id[OP_ID_MAX]; /* operationId of a 202, for the poll */
};

struct thread {
    pthread_t tid;
    struct event_base *base;
    struct event *stop_timer;
    struct client *clients;
    int n_clients;
    int active;
    int stopping;
    double *lat; /* ms of the measured successes */
    size_t n_lat, cap_lat;
    long ok, ok_measured, errors;
    long err_tls, err_http, err_status, err_timeout, err_mqtt;
    long closes_without_notify; /* MQTT: TCP closed after DISCONNECT without TLS close_notify */
    double last_done;
    char first_error[256];
};

static struct options opt = {
    .mode = MODE_X509,
    .server_name = "localhost",
    .clients = 32,
    .threads = 0,
    .devices = 1000,
    .duration_s = 10,
    .warmup_s = 1,
};
static SSL_CTX *client_ctx;
static struct sockaddr_storage server_addr;
static socklen_t server_addr_len;
static struct device *devices;
static X509 *inter_cert;
static char *id_scope;
static char *conn_string;
static double t_start, t_measure, t_end;
static atomic_long started_total;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The CPU time the measured seconds took: the server's (user + system, all
 * its threads, from /proc/PID/stat), this process's (getrusage), and the
 * machine's time spent idle or waiting for I/O (/proc/stat). Taken at the
 * start and the end of the measured window; what is missing stays negative.
 */
struct cpu_sample {
    double server_s, client_s;
    double idle_ticks, all_ticks;
};

static double proc_cpu_s(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long utime, stime;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the name in parentheses may hold spaces: count fields after its ')' (field 2) */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
            2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void cpu_sample_take(struct cpu_sample *s)
{
    unsigned long long v[8] = {0};
    struct rusage ru;
    FILE *f;

    s->server_s = opt.server_pid ? proc_cpu_s(opt.server_pid) : -1;
    s->client_s = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s->client_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    s->idle_ticks = s->all_ticks = -1;
    if ((f = fopen("/proc/stat", "r"))) {
        /* cpu  user nice system idle iowait irq softirq steal */
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            s->idle_ticks = (double)(v[3] + v[4]);
            s->all_ticks = 0;
            for (int i = 0; i < 8; i++)
                s->all_ticks += (double)v[i];
        }
        fclose(f);
    }
}

static void sleep_until(double t)
{
    double left;

    while ((left = t - now_s()) > 0) {
        struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("dpsbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *read_text(const char *dir, const char *name)
{
    char path[1024], *buf = NULL;
    size_t len;
    struct dps_error err = {0};

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (pki_file_read(path, 64 * 1024, &buf, &len, &err))
        die("%s", err.msg);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double percentile(const double *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return NAN;
    i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i == 0 ? 0 : i - 1];
}

/* ---- set-up ---- */

static void resolve(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc;

    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
        die("'--connect' must be HOST:PORT, got '%s'", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0)
        die("cannot resolve '%s': %s", hostport, gai_strerror(rc));
    memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
    server_addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
}

/*
 * Every connection makes a full handshake: no session cache on this side and
 * no tickets asked for, so nothing can be resumed.
 */
static void client_ctx_init(void)
{
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx)
        die("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
    if (opt.tls12)
        SSL_CTX_set_max_proto_version(client_ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(client_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(client_ctx, opt.ca_file, NULL) != 1)
        die("cannot load the server CA '%s'", opt.ca_file);
}

static void pki_make(void)
{
    EVP_PKEY *root_key = NULL, *inter_key = NULL;
    X509 *root = NULL, *inter = NULL;
    struct dps_error err = {0};
    char path[1024];
    struct pki_cert_spec root_spec = {
        .kind = PKI_CERT_ROOT_CA, .subject = "CN=dpsbench Root CA", .days = 3650, .pathlen = -1};
    struct pki_cert_spec inter_spec = {.kind = PKI_CERT_INTERMEDIATE_CA,
                                       .subject = "CN=dpsbench Intermediate CA",
                                       .days = 3650,
                                       .pathlen = 0};

    if (mkdir(opt.pki_dir, 0755) != 0 && errno != EEXIST)
        die("cannot create '%s': %s", opt.pki_dir, strerror(errno));
    if (pki_key_generate(PKI_KEY_P256, &root_key, &err) ||
        pki_key_generate(PKI_KEY_P256, &inter_key, &err) ||
        pki_cert_issue(&root_spec, root_key, NULL, NULL, &root, &err) ||
        pki_cert_issue(&inter_spec, inter_key, root, root_key, &inter, &err))
        die("%s", err.msg);
    snprintf(path, sizeof(path), "%s/root.pem", opt.pki_dir);
    if (pki_certs_write(path, &root, 1, PKI_FORCE, &err))
        die("%s", err.msg);
    snprintf(path, sizeof(path), "%s/inter.pem", opt.pki_dir);
    if (pki_certs_write(path, &inter, 1, PKI_FORCE, &err))
        die("%s", err.msg);
    snprintf(path, sizeof(path), "%s/inter.key", opt.pki_dir);
    if (pki_key_write(path, inter_key, NULL, PKI_FORCE, &err))
        die("%s", err.msg);
    X509_free(root);
    X509_free(inter);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(inter_key);
}

static void request_build(struct device *d, const char *auth)
{
    char body[128], head[4096];
    int blen, hlen;

    blen = snprintf(body, sizeof(body), "{\"registrationId\":\"%s\"}", d->id);
    hlen = snprintf(head, sizeof(head),
                    "PUT /%s/registrations/%s/register?api-version=2021-06-01 HTTP/1.1\r\n"
                    "Host: %s\r\n"
                    "Accept: application/json\r\n"
                    "Content-Type: application/json; charset=utf-8\r\n"
                    "Content-Length: %d\r\n"
                    "Connection: close\r\n"
                    "%s%s%s"
                    "\r\n",
                    id_scope, d->id, opt.server_name, blen, auth ? "Authorization: " : "",
                    auth ? auth : "", auth ? "\r\n" : "");
    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        die("request for '%s' too long", d->id);
    d->request_len = (size_t)hlen + (size_t)blen;
    d->request = xmalloc(d->request_len + 1);
    memcpy(d->request, head, (size_t)hlen);
    memcpy(d->request + hlen, body, (size_t)blen + 1);
}

static bool mode_is_mqtt(void)
{
    return opt.mode == MODE_MQTT_X509 || opt.mode == MODE_MQTT_SYMKEY;
}

/*
 * The CONNECT an Azure device SDK sends: client id = registration id, the
 * DPS user name, the SAS token as password (symmetric key) or none (X.509).
 */
static void connect_build(struct device *d, const char *sas)
{
    char user[DPS_MQTT_USERNAME_MAX + 1];
    size_t ulen =
        dps_mqtt_username_build(user, sizeof(user), id_scope, d->id, MQTT_API_VERSION, NULL);
    struct mqtt_connect c = {
        .level = MQTT_PROTOCOL_LEVEL,
        .clean_session = true,
        .keep_alive = MQTT_KEEP_ALIVE_S,
        .client_id = {d->id, strlen(d->id)},
        .has_username = true,
        .username = {user, ulen},
        .has_password = sas != NULL,
        .password = {(const uint8_t *)sas, sas ? strlen(sas) : 0},
    };
    size_t n;

    if (ulen >= sizeof(user))
        die("user name for '%s' too long", d->id);
    n = mqtt_encode_connect(NULL, 0, &c);
    if (n == 0)
        die("cannot encode the CONNECT of '%s'", d->id);
    d->request = xmalloc(n);
    d->request_len = mqtt_encode_connect((uint8_t *)d->request, n, &c);
}

/* What a device sends first: its HTTP request, or its MQTT CONNECT. */
static void device_request_build(struct device *d, const char *sas)
{
    if (mode_is_mqtt())
        connect_build(d, sas);
    else
        request_build(d, sas);
}

/* Registration ids: "{group}-0000042" over HTTPS, "{group}-mqtt-0000042" over MQTT. */
static void device_id_make(struct device *d, int i)
{
    snprintf(d->id, sizeof(d->id), "%s-%s%07d", opt.group, mode_is_mqtt() ? "mqtt-" : "", i);
}

/* K device keys and certificates under the intermediate, made in memory. */
static void devices_make_x509(int with_requests)
{
    EVP_PKEY *inter_key = NULL;
    STACK_OF(X509) *chain = NULL;
    struct dps_error err = {0};
    char path[1024], subject[96];
    double t0 = now_s();

    snprintf(path, sizeof(path), "%s/inter.pem", opt.pki_dir);
    if (pki_certs_read(path, &chain, &err))
        die("%s (make it with 'dpsbench pki')", err.msg);
    inter_cert = sk_X509_shift(chain);
    sk_X509_pop_free(chain, X509_free);
    snprintf(path, sizeof(path), "%s/inter.key", opt.pki_dir);
    if (pki_key_read(path, NULL, &inter_key, &err))
        die("%s", err.msg);
    devices = xcalloc((size_t)opt.devices, sizeof(*devices));
    for (int i = 0; i < opt.devices; i++) {
        struct device *d = &devices[i];
        struct pki_cert_spec spec = {.kind = PKI_CERT_DEVICE, .subject = subject, .days = 30};

        device_id_make(d, i);
        snprintf(subject, sizeof(subject), "CN=%s", d->id);
        if (pki_key_generate(PKI_KEY_P256, &d->key, &err) ||
            pki_cert_issue(&spec, d->key, inter_cert, inter_key, &d->cert, &err))
            die("%s", err.msg);
        if (with_requests)
            device_request_build(d, NULL);
    }
    EVP_PKEY_free(inter_key);
    fprintf(stderr, "dpsbench: %d device certificates made in %.1f s\n", opt.devices, now_s() - t0);
}

static struct dps_service_client *service_client(void)
{
    struct dps_service_client *c = NULL;
    struct dps_error err = {0};
    struct dps_service_options so = {.ca_file = opt.ca_file,
                                     .connect_to = opt.service ? opt.service : opt.connect};

    if (dps_service_client_new(conn_string, &so, &c, &err))
        die("service client: %s", err.msg);
    return c;
}

static void enroll_x509_group(void)
{
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};
    char path[1024], *att = NULL, *body = NULL, *out = NULL;
    size_t n;

    snprintf(path, sizeof(path), "%s/inter.pem", opt.pki_dir);
    if (dps_attestation_x509_from_files(DPS_X509_SIGNING, path, NULL, &att, &err))
        die("%s", err.msg);
    n = strlen(att) + strlen(opt.group) + 64;
    body = xmalloc(n);
    snprintf(body, n, "{\"enrollmentGroupId\":\"%s\",\"attestation\":%s}", opt.group, att);
    if (dps_enrollment_group_put(c, opt.group, body, NULL, &out, &err))
        die("cannot enroll group '%s': %s", opt.group, err.msg);
    free(att);
    free(body);
    free(out);
    dps_service_client_free(c);
}

/* Enrolls a symmetric-key group with server-made keys; returns its primary key. */
static char *enroll_symkey_group(void)
{
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};
    char body[512], *out = NULL, *key = NULL;
    const char *pk = NULL;
    json_t *root;
    json_error_t jerr;

    snprintf(body, sizeof(body),
             "{\"enrollmentGroupId\":\"%s\",\"attestation\":{\"type\":\"symmetricKey\"}}",
             opt.group);
    if (dps_enrollment_group_put(c, opt.group, body, NULL, &out, &err))
        die("cannot enroll group '%s': %s", opt.group, err.msg);
    root = json_loads(out, 0, &jerr);
    if (!root ||
        json_unpack(root, "{s:{s:{s:s}}}", "attestation", "symmetricKey", "primaryKey", &pk) != 0)
        die("group '%s' came back without 'attestation.symmetricKey.primaryKey'", opt.group);
    key = xstrdup(pk);
    json_decref(root);
    OPENSSL_cleanse(out, strlen(out));
    free(out);
    dps_service_client_free(c);
    return key;
}

static void devices_make_symkey(const char *group_key)
{
    struct dps_error err = {0};
    int64_t expiry = (int64_t)time(NULL) + 6 * 3600;

    devices = xcalloc((size_t)opt.devices, sizeof(*devices));
    for (int i = 0; i < opt.devices; i++) {
        struct device *d = &devices[i];
        char sr[256], *key = NULL, *token = NULL;

        device_id_make(d, i);
        snprintf(sr, sizeof(sr), "%s/registrations/%s", id_scope, d->id);
        if (sas_derive_device_key(group_key, d->id, strlen(d->id), &key, &err) ||
            sas_token_build(sr, key, SAS_DEVICE_KEY_NAME, expiry, &token, &err))
            die("%s", err.msg);
        device_request_build(d, token);
        OPENSSL_cleanse(key, strlen(key));
        OPENSSL_cleanse(token, strlen(token));
        free(key);
        free(token);
    }
}

/* ---- the connection loop ---- */

static void client_start(struct client *c);

static void record_error(struct thread *t, long *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void record_error(struct thread *t, long *kind, const char *fmt, ...)
{
    va_list ap;

    t->errors++;
    (*kind)++;
    if (t->first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(t->first_error, sizeof(t->first_error), fmt, ap);
    va_end(ap);
}

static void client_next(struct client *c)
{
    struct thread *t = c->t;
    double now = now_s(), wait;

    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->poll_timer)
        evtimer_del(c->poll_timer);
    t->active--;
    if (t->stopping) {
        if (t->active == 0)
            event_base_loopexit(t->base, NULL);
        return;
    }
    wait = c->next_at - now;
    if (opt.rate > 0 && wait > 0) {
        struct timeval tv = {(time_t)wait, (suseconds_t)((wait - floor(wait)) * 1e6)};
        t->active++;
        evtimer_add(c->timer, &tv);
        return;
    }
    t->active++;
    client_start(c);
}

/* Counts the attempt of c as acknowledged now (its latency ends here). */
static void client_record_ok(struct client *c)
{
    struct thread *t = c->t;
    double now = now_s();

    t->ok++;
    t->last_done = now;
    if (c->started >= t_measure && now <= t_end) {
        if (t->n_lat == t->cap_lat) {
            t->cap_lat = t->cap_lat ? t->cap_lat * 2 : 4096;
            t->lat = xrealloc(t->lat, t->cap_lat * sizeof(*t->lat));
        }
        t->lat[t->n_lat++] = (now - c->started) * 1000.0;
        t->ok_measured++;
    }
}

static void client_done_ok(struct client *c)
{
    client_record_ok(c);
    client_next(c);
}

/*
 * Copies the string value of "name":"..." in a JSON body into out (cap
 * bytes). Returns 0, or -1 when it is absent or too long. The answers
 * dpsd writes are compact JSON, which is all this tool needs to read.
 */
static int json_field_copy(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    char key[64];
    const char *s, *e;
    int klen = snprintf(key, sizeof(key), "\"%s\":\"", name);

    if (klen < 0 || (size_t)klen >= sizeof(key))
        return -1;
    s = memmem(body, len, key, (size_t)klen);
    if (!s)
        return -1;
    s += klen;
    e = memchr(s, '"', (size_t)(body + len - s));
    if (!e || (size_t)(e - s) >= cap)
        return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return 0;
}

/*
 * A registration answer with status 200: acknowledged when it says
 * "assigned" and carries an operationId, which is kept for the store check.
 * Returns 1 when acknowledged, 2 when not assigned (error recorded), -1 when
 * unreadable.
 */
static int registration_ack(struct client *c, const char *body, size_t len)
{
    char op_id[OP_ID_MAX];

    if (!memmem(body, len, "\"status\":\"assigned\"", 19)) {
        record_error(c->t, &c->t->err_status, "not assigned: %.*s", (int)(len > 200 ? 200 : len),
                     body);
        return 2;
    }
    if (json_field_copy(body, len, "operationId", op_id, sizeof(op_id)) != 0)
        return -1;
    memcpy(c->dev->op_id, op_id, sizeof(op_id));
    c->dev->acked++;
    return 1;
}

/*
 * A complete answer is in the input buffer when it returns 1: the status
 * line, the headers and Content-Length bytes of body. Returns 0 while more
 * is needed, -1 on an answer we cannot read.
 */
static int response_check(struct client *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char *head, *p;
    size_t head_len, body_len = 0, total;
    int status = 0;

    if (end.pos < 0)
        return evbuffer_get_length(in) > MAX_HEADER ? -1 : 0;
    head_len = (size_t)end.pos + 4;
    head = (char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    for (p = head; p && p < head + head_len; p = memchr(p, '\n', head + head_len - p)) {
        p += *p == '\n';
        if (strncasecmp(p, "content-length:", 15) == 0)
            body_len = strtoul(p + 15, NULL, 10);
    }
    if (body_len > MAX_BODY)
        return -1;
    total = head_len + body_len;
    if (evbuffer_get_length(in) < total)
        return 0;
    p = (char *)evbuffer_pullup(in, (ev_ssize_t)total);
    if (status != 200) {
        record_error(c->t, &c->t->err_http, "HTTP %d: %.*s", status,
                     (int)(body_len > 200 ? 200 : body_len), p + head_len);
        return 2;
    }
    return registration_ack(c, p + head_len, body_len);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    int rc = response_check(c, bufferevent_get_input(bev));

    if (rc == 0)
        return;
    if (rc == 1) {
        client_done_ok(c);
        return;
    }
    if (rc < 0)
        record_error(c->t, &c->t->err_http, "unreadable answer");
    client_next(c);
}

static const char *ssl_error_text(struct bufferevent *bev)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    static __thread char buf[160];

    if (!e)
        return evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

/*
 * The load generator shares the CPUs with the server it measures, so it
 * sends its requests as the servers send their answers (bench_tls_write()):
 * its own work per request is kept as small as theirs.
 */
static void client_write(struct bufferevent *bev, const void *buf, size_t len)
{
    bench_tls_write(bev, buf, len);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    struct thread *t = c->t;

    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        if (opt.mode == MODE_HANDSHAKE || opt.mode == MODE_HANDSHAKE_SERVER_AUTH)
            return; /* done when the server closes: it has verified us by then */
        client_write(bev, c->dev->request, c->dev->request_len);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        record_error(t, &t->err_timeout, "timed out after %d s", REQUEST_TIMEOUT_S);
    } else if ((what & BEV_EVENT_EOF) && c->connected &&
               (opt.mode == MODE_HANDSHAKE || opt.mode == MODE_HANDSHAKE_SERVER_AUTH)) {
        client_done_ok(c);
        return;
    } else if (what & BEV_EVENT_EOF) {
        record_error(t, &t->err_http, "connection closed before the answer");
    } else {
        record_error(t, &t->err_tls, "%s: %s", c->connected ? "after handshake" : "handshake",
                     ssl_error_text(bev));
    }
    client_next(c);
}

/* ---- MQTT registrations (dps-protocol.md §5) ---- */

static void mqtt_write(struct client *c, const uint8_t *buf, size_t n)
{
    if (n == 0)
        die("cannot encode an MQTT packet for '%s'", c->dev->id);
    client_write(c->bev, buf, n);
}

/*
 * Publishes the register request, or the poll of c->op_id, at QoS 1 with a
 * new $rid and packet id, as the Azure device SDKs do.
 */
static void mqtt_send_request(struct client *c, enum dps_mqtt_request kind)
{
    char topic[256], rid[24], payload[128];
    uint8_t buf[512];
    size_t tlen;
    int plen = 0;

    c->rid++;
    c->packet_id = c->packet_id <= MQTT_SUBSCRIBE_ID || c->packet_id == UINT16_MAX
                       ? MQTT_SUBSCRIBE_ID + 1
                       : c->packet_id + 1;
    c->puback_seen = false;
    snprintf(rid, sizeof(rid), "%lu", c->rid);
    tlen = dps_mqtt_request_topic_build(topic, sizeof(topic), kind, rid, c->op_id);
    if (tlen >= sizeof(topic))
        die("request topic for '%s' too long", c->dev->id);
    if (kind == DPS_MQTT_REGISTER)
        plen = snprintf(payload, sizeof(payload), "{\"registrationId\":\"%s\"}", c->dev->id);
    mqtt_write(
        c, buf,
        mqtt_encode_publish(buf, sizeof(buf), topic, tlen, payload, (size_t)plen, 1, c->packet_id));
    c->step = MQTT_STEP_RESPONSE;
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    mqtt_send_request(arg, DPS_MQTT_POLL);
}

/* The response PUBLISH: 200 acknowledges, 202 schedules a poll, anything else is an error. */
static int mqtt_response(struct client *c, const struct mqtt_publish *p)
{
    struct thread *t = c->t;
    struct dps_mqtt_response r;
    struct dps_error err = {0};
    const char *body = p->payload.ptr ? (const char *)p->payload.ptr : "";
    size_t len = p->payload.len;
    char rid[24];
    uint8_t ack[8]; /* the PUBACK (QoS 1), then the DISCONNECT after a 200 */
    size_t ack_len = 0;
    int rc;

    if (dps_mqtt_response_topic_parse(p->topic.ptr, p->topic.len, &r, &err) != DPS_OK) {
        record_error(t, &t->err_mqtt, "response topic '%.*s': %s", (int)p->topic.len, p->topic.ptr,
                     err.msg);
        return -1;
    }
    snprintf(rid, sizeof(rid), "%lu", c->rid);
    if (r.rid_len != strlen(rid) || memcmp(r.rid, rid, r.rid_len) != 0) {
        record_error(t, &t->err_mqtt, "response '$rid' is '%.*s', not '%s'", (int)r.rid_len,
                     r.rid ? r.rid : "", rid);
        return -1;
    }
    if (p->qos == 1 && (ack_len = mqtt_encode_puback(ack, sizeof(ack), p->packet_id)) == 0)
        die("cannot encode an MQTT packet for '%s'", c->dev->id);
    if (!c->puback_seen) {
        record_error(t, &t->err_mqtt, "response before the PUBACK of the request");
        return -1;
    }
    if (r.status == 202) {
        /* Past REQUEST_TIMEOUT_S the read timeout ends the attempt anyway. */
        long wait = r.retry_after < 0                   ? MQTT_DEFAULT_RETRY_S
                    : r.retry_after > REQUEST_TIMEOUT_S ? REQUEST_TIMEOUT_S
                                                        : r.retry_after;
        struct timeval tv = {(time_t)wait, 0};

        if (json_field_copy(body, len, "operationId", c->op_id, sizeof(c->op_id)) != 0) {
            record_error(t, &t->err_mqtt, "202 without 'operationId': %.*s",
                         (int)(len > 200 ? 200 : len), body);
            return -1;
        }
        if (ack_len)
            mqtt_write(c, ack, ack_len);
        c->step = MQTT_STEP_RETRY;
        evtimer_add(c->poll_timer, &tv);
        return 0;
    }
    if (r.status != 200) {
        record_error(t, &t->err_status, "status %d: %.*s", r.status, (int)(len > 200 ? 200 : len),
                     body);
        return -1;
    }
    rc = registration_ack(c, body, len);
    if (rc < 0)
        record_error(t, &t->err_mqtt, "unreadable answer: %.*s", (int)(len > 200 ? 200 : len),
                     body);
    if (rc != 1)
        return -1;
    client_record_ok(c);
    /* the PUBACK and the DISCONNECT in one write, as one pass of a buffered client would */
    mqtt_write(c, ack, ack_len + mqtt_encode_disconnect(ack + ack_len, sizeof(ack) - ack_len));
    c->step = MQTT_STEP_CLOSING;
    return 0;
}

/* One packet from the server, in the order a device expects them. Returns 0, or -1 (recorded). */
static int mqtt_packet(struct client *c, const struct mqtt_packet *p)
{
    struct thread *t = c->t;
    uint8_t buf[64];

    switch (c->step) {
    case MQTT_STEP_CONNACK:
        if (p->type != MQTT_CONNACK)
            break;
        if (p->u.connack.return_code != MQTT_CONNACK_ACCEPTED) {
            record_error(t, &t->err_status, "CONNACK refused with return code %d",
                         p->u.connack.return_code);
            return -1;
        }
        mqtt_write(c, buf,
                   mqtt_encode_subscribe(buf, sizeof(buf), MQTT_SUBSCRIBE_ID,
                                         DPS_MQTT_RESPONSE_FILTER, 1));
        c->step = MQTT_STEP_SUBACK;
        return 0;
    case MQTT_STEP_SUBACK:
        if (p->type != MQTT_SUBACK || p->u.suback.packet_id != MQTT_SUBSCRIBE_ID)
            break;
        if (p->u.suback.return_codes[0] != 1) {
            record_error(t, &t->err_mqtt, "SUBACK granted 0x%02x, not QoS 1",
                         p->u.suback.return_codes[0]);
            return -1;
        }
        mqtt_send_request(c, DPS_MQTT_REGISTER);
        return 0;
    case MQTT_STEP_RESPONSE:
        if (p->type == MQTT_PUBACK && p->u.packet_id == c->packet_id && !c->puback_seen) {
            c->puback_seen = true;
            return 0;
        }
        if (p->type == MQTT_PUBLISH)
            return mqtt_response(c, &p->u.publish);
        break;
    case MQTT_STEP_RETRY:
    case MQTT_STEP_CLOSING:
        break;
    }
    record_error(t, &t->err_mqtt, "unexpected %s from the server", mqtt_type_name(p->type));
    return -1;
}

static void mqtt_on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        struct dps_error err = {0};
        struct mqtt_packet p;
        size_t have = evbuffer_get_length(in);
        int n, rc;

        if (have == 0)
            return;
        n = mqtt_decode(evbuffer_pullup(in, -1), have, NULL, &p, &err);
        if (n == MQTT_INCOMPLETE)
            return;
        if (n < 0) {
            record_error(c->t, &c->t->err_mqtt, "undecodable packet from the server: %s", err.msg);
            client_next(c);
            return;
        }
        rc = mqtt_packet(c, &p);
        evbuffer_drain(in, (size_t)n);
        if (rc != 0) {
            client_next(c);
            return;
        }
    }
}

/* True for the error OpenSSL 3 gives when the peer closes TCP without close_notify. */
static bool is_unexpected_eof(unsigned long e)
{
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    return ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
#else
    return e == 0;
#endif
}

static void mqtt_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    struct thread *t = c->t;

    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        c->step = MQTT_STEP_CONNACK;
        c->op_id[0] = '\0';
        client_write(bev, c->dev->request, c->dev->request_len);
        return;
    }
    if (c->step == MQTT_STEP_CLOSING && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        /*
         * Acknowledged already; the server closed after DISCONNECT. OpenSSL 3
         * reports a close without TLS close_notify as an error: counted apart,
         * since the registration itself succeeded.
         */
        unsigned long e = (what & BEV_EVENT_ERROR) ? bufferevent_get_openssl_error(bev) : 0;

        if (!(what & BEV_EVENT_ERROR) || is_unexpected_eof(e)) {
            t->closes_without_notify += (what & BEV_EVENT_ERROR) != 0;
            client_next(c);
            return;
        }
        record_error(t, &t->err_tls, "after DISCONNECT: %s", ERR_reason_error_string(e));
        client_next(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        record_error(t, &t->err_timeout, "timed out after %d s %s", REQUEST_TIMEOUT_S,
                     c->step == MQTT_STEP_CLOSING ? "waiting for the close after DISCONNECT"
                                                  : "waiting for the server");
    else if (what & BEV_EVENT_EOF)
        record_error(t, &t->err_mqtt, "connection closed before the answer");
    else
        record_error(t, &t->err_tls, "%s: %s", c->connected ? "after handshake" : "handshake",
                     ssl_error_text(bev));
    client_next(c);
}

static void client_start(struct client *c)
{
    struct thread *t = c->t;
    struct timeval to = {REQUEST_TIMEOUT_S, 0};
    int per_client = opt.devices / opt.clients;
    SSL *ssl;

    if (opt.count > 0 && atomic_fetch_add(&started_total, 1) >= opt.count) {
        t->stopping = 1;
        t->active--;
        if (t->active == 0)
            event_base_loopexit(t->base, NULL);
        return;
    }
    c->dev = &devices[c->index + opt.clients * c->next_dev];
    c->next_dev = (c->next_dev + 1) % per_client;
    c->connected = 0;
    c->started = now_s();
    if (opt.rate > 0)
        c->next_at = (c->next_at > c->started - 1.0 ? c->next_at : c->started) +
                     (double)opt.clients / opt.rate;
    ssl = SSL_new(client_ctx);
    if (!ssl)
        die("out of memory");
    SSL_set_tlsext_host_name(ssl, opt.server_name);
    SSL_set1_host(ssl, opt.server_name);
    if (c->dev->cert &&
        (SSL_use_certificate(ssl, c->dev->cert) != 1 || SSL_use_PrivateKey(ssl, c->dev->key) != 1 ||
         SSL_add1_chain_cert(ssl, inter_cert) != 1))
        die("cannot set the client certificate of '%s'", c->dev->id);
    c->bev = bufferevent_openssl_socket_new(t->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        die("cannot create a TLS bufferevent");
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    if (mode_is_mqtt())
        bufferevent_setcb(c->bev, mqtt_on_read, NULL, mqtt_on_event, c);
    else
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_set_timeouts(c->bev, &to, &to);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&server_addr, (int)server_addr_len) !=
        0) {
        record_error(t, &t->err_tls, "connect: %s", strerror(errno));
        client_next(c);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    if (c->t->stopping) {
        c->t->active--;
        if (c->t->active == 0)
            event_base_loopexit(c->t->base, NULL);
        return;
    }
    client_start(c);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct thread *t = arg;

    t->stopping = 1;
    if (t->active == 0)
        event_base_loopexit(t->base, NULL);
}

static void *thread_main(void *arg)
{
    struct thread *t = arg;

    if (opt.count == 0) {
        double left = t_end - now_s();
        struct timeval tv = {(time_t)left, (suseconds_t)((left - floor(left)) * 1e6)};
        t->stop_timer = evtimer_new(t->base, on_stop, t);
        evtimer_add(t->stop_timer, &tv);
    }
    for (int i = 0; i < t->n_clients; i++) {
        struct client *c = &t->clients[i];
        /* Spread the first starts of a paced run over one period. */
        double delay = opt.rate > 0 ? (double)opt.clients / opt.rate * c->index / opt.clients : 0;
        struct timeval tv = {(time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6)};

        c->timer = evtimer_new(t->base, on_timer, c);
        if (mode_is_mqtt())
            c->poll_timer = evtimer_new(t->base, on_poll_timer, c);
        c->next_at = t_start + delay;
        t->active++;
        evtimer_add(c->timer, &tv);
    }
    event_base_dispatch(t->base);
    return NULL;
}

/* After the run: every acknowledged registration must be in the store. */
static void verify_store(long *checked, long *lost)
{
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};

    *checked = 0;
    *lost = 0;
    for (int i = 0; i < opt.devices; i++) {
        struct device *d = &devices[i];
        char *out = NULL, want[OP_ID_MAX + 32];

        if (!d->acked)
            continue;
        (*checked)++;
        if (dps_registration_get(c, d->id, &out, &err)) {
            fprintf(stderr, "dpsbench: LOST '%s' (operation %s): %s\n", d->id, d->op_id, err.msg);
            (*lost)++;
            continue;
        }
        snprintf(want, sizeof(want), "\"operationId\":\"%s\"", d->op_id);
        if (!strstr(out, want) || !strstr(out, "\"status\":\"assigned\"")) {
            fprintf(stderr, "dpsbench: LOST '%s': record is not operation %s: %.300s\n", d->id,
                    d->op_id, out);
            (*lost)++;
        }
        free(out);
    }
    dps_service_client_free(c);
}

static void run_connections(void)
{
    struct thread *threads = xcalloc((size_t)opt.threads, sizeof(*threads));
    double *all = NULL, elapsed, rate;
    size_t n_all = 0;
    long ok = 0, ok_measured = 0, errors = 0, e_tls = 0, e_http = 0, e_status = 0, e_to = 0,
         e_mqtt = 0, no_notify = 0;
    long checked = -1, lost = -1;
    struct cpu_sample at_measure = {-1, -1, -1, -1}, at_end = {-1, -1, -1, -1};
    double server_ms = -1, client_ms = -1, idle_pct = -1;
    const char *first_error = "";
    int is_reg = opt.mode == MODE_X509 || opt.mode == MODE_SYMKEY || mode_is_mqtt();

    t_start = now_s();
    t_measure = t_start + opt.warmup_s;
    t_end = opt.count > 0 ? 1e300 : t_start + opt.duration_s;
    for (int i = 0; i < opt.threads; i++) {
        struct thread *t = &threads[i];
        /* as dpsd's and tlsserver's loops: epoll's change list */
        struct event_config *cfg = event_config_new();

        if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
            die("cannot configure an event base");
        t->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!t->base)
            die("cannot create an event base");
        t->clients = xcalloc((size_t)opt.clients, sizeof(*t->clients));
    }
    for (int i = 0; i < opt.clients; i++) {
        struct thread *t = &threads[i % opt.threads];
        struct client *c = &t->clients[t->n_clients++];
        c->t = t;
        c->index = i;
    }
    for (int i = 0; i < opt.threads; i++)
        if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0)
            die("cannot start a thread");
    if (opt.count == 0) {
        sleep_until(t_measure);
        cpu_sample_take(&at_measure);
        sleep_until(t_end);
        cpu_sample_take(&at_end);
    }
    for (int i = 0; i < opt.threads; i++) {
        struct thread *t = &threads[i];
        pthread_join(t->tid, NULL);
        ok += t->ok;
        ok_measured += t->ok_measured;
        errors += t->errors;
        e_tls += t->err_tls;
        e_http += t->err_http;
        e_status += t->err_status;
        e_to += t->err_timeout;
        e_mqtt += t->err_mqtt;
        no_notify += t->closes_without_notify;
        if (!first_error[0] && t->first_error[0])
            first_error = t->first_error;
        all = xrealloc(all, (n_all + t->n_lat + 1) * sizeof(*all));
        memcpy(all + n_all, t->lat, t->n_lat * sizeof(*all));
        n_all += t->n_lat;
        if (opt.count > 0 && t->last_done > t_end - 1e299)
            t_end = t_end > 1e299 ? t->last_done : (t->last_done > t_end ? t->last_done : t_end);
    }
    if (opt.count > 0) {
        t_end = 0;
        for (int i = 0; i < opt.threads; i++)
            if (threads[i].last_done > t_end)
                t_end = threads[i].last_done;
    }
    elapsed = t_end - t_measure;
    rate = elapsed > 0 ? (double)ok_measured / elapsed : 0;
    if (ok_measured > 0 && at_measure.server_s >= 0 && at_end.server_s >= 0)
        server_ms = (at_end.server_s - at_measure.server_s) * 1000 / (double)ok_measured;
    if (ok_measured > 0 && at_measure.client_s >= 0 && at_end.client_s >= 0)
        client_ms = (at_end.client_s - at_measure.client_s) * 1000 / (double)ok_measured;
    if (at_measure.all_ticks >= 0 && at_end.all_ticks > at_measure.all_ticks)
        idle_pct = 100 * (at_end.idle_ticks - at_measure.idle_ticks) /
                   (at_end.all_ticks - at_measure.all_ticks);
    qsort(all, n_all, sizeof(*all), cmp_double);
    if (first_error[0])
        fprintf(stderr, "dpsbench: first error: %s\n", first_error);
    if (is_reg && !opt.no_check)
        verify_store(&checked, &lost);
    printf("dpsbench: mode=%s label=%s clients=%d threads=%d devices=%d target_rate=%.0f "
           "measured_s=%.2f ok=%ld measured=%ld errors=%ld err_tls=%ld err_http=%ld "
           "err_status=%ld err_timeout=%ld err_mqtt=%ld rate=%.1f p50_ms=%.2f p95_ms=%.2f "
           "p99_ms=%.2f max_ms=%.2f checked=%ld lost=%ld closes_without_notify=%ld tls=%s "
           "server_cpu_ms=%.3f client_cpu_ms=%.3f idle_pct=%.1f\n",
           mode_names[opt.mode], opt.label, opt.clients, opt.threads, opt.devices, opt.rate,
           elapsed, ok, ok_measured, errors, e_tls, e_http, e_status, e_to, e_mqtt, rate,
           percentile(all, n_all, 50), percentile(all, n_all, 95), percentile(all, n_all, 99),
           n_all ? all[n_all - 1] : NAN, checked, lost, no_notify, opt.tls12 ? "1.2" : "1.3",
           server_ms, client_ms, idle_pct);
    if (checked >= 0)
        printf("| %s | %d | %.1f | %.2f | %.2f | %.2f | %ld | %ld of %ld |\n", opt.label,
               opt.clients, rate, percentile(all, n_all, 50), percentile(all, n_all, 95),
               percentile(all, n_all, 99), errors, checked - lost, checked);
    else
        printf("| %s | %d | %.1f | %.2f | %.2f | %.2f | %ld | n/a |\n", opt.label, opt.clients,
               rate, percentile(all, n_all, 50), percentile(all, n_all, 95),
               percentile(all, n_all, 99), errors);
    for (int i = 0; i < opt.threads; i++) {
        for (int j = 0; j < threads[i].n_clients; j++)
            event_free(threads[i].clients[j].timer);
        for (int j = 0; j < threads[i].n_clients; j++)
            if (threads[i].clients[j].poll_timer)
                event_free(threads[i].clients[j].poll_timer);
        if (threads[i].stop_timer)
            event_free(threads[i].stop_timer);
        event_base_free(threads[i].base);
        free(threads[i].clients);
        free(threads[i].lat);
    }
    free(threads);
    free(all);
}

/* ---- the service API on keep-alive connections ---- */

enum svc_op { SVC_CREATE, SVC_GET, SVC_QUERY, SVC_OPS };
static const char *const svc_names[] = {"enrollment create", "enrollment get", "enrollment query"};

struct svc_thread {
    pthread_t tid;
    int index;
    enum svc_op op;
    double until;
    long ok, errors, created;
    double *lat;
    size_t n_lat, cap_lat;
    char first_error[256];
};

static void *svc_main(void *arg)
{
    struct svc_thread *t = arg;
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};
    char id[96], body[512];

    for (long i = 0; now_s() < t->until; i++) {
        char *out = NULL;
        struct dps_query_page page = {0};
        struct dps_query q = {.page_size = 100};
        double t0 = now_s();
        int rc;

        snprintf(id, sizeof(id), "svc-%02d-%07ld", t->index,
                 t->op == SVC_CREATE ? i : i % (t->created ? t->created : 1));
        switch (t->op) {
        case SVC_CREATE:
            snprintf(body, sizeof(body),
                     "{\"registrationId\":\"%s\",\"attestation\":{\"type\":\"symmetricKey\"},"
                     "\"initialTwin\":{\"tags\":{\"line\":\"%d\"}}}",
                     id, t->index);
            rc = dps_enrollment_put(c, id, body, NULL, &out, &err);
            break;
        case SVC_GET:
            rc = dps_enrollment_get(c, id, &out, &err);
            break;
        default:
            rc = dps_enrollment_query(c, &q, &page, &err);
            dps_query_page_release(&page);
            break;
        }
        free(out);
        if (rc) {
            t->errors++;
            if (!t->first_error[0])
                snprintf(t->first_error, sizeof(t->first_error), "%s", err.msg);
            continue;
        }
        t->ok++;
        if (t->n_lat == t->cap_lat) {
            t->cap_lat = t->cap_lat ? t->cap_lat * 2 : 4096;
            t->lat = xrealloc(t->lat, t->cap_lat * sizeof(*t->lat));
        }
        t->lat[t->n_lat++] = (now_s() - t0) * 1000.0;
    }
    dps_service_client_free(c);
    return NULL;
}

static void run_service(void)
{
    struct svc_thread *ts = xcalloc((size_t)opt.clients, sizeof(*ts));
    double phase = opt.duration_s / SVC_OPS;

    for (int op = 0; op < SVC_OPS; op++) {
        double t0 = now_s(), elapsed;
        long ok = 0, errors = 0;
        double *all = NULL;
        size_t n_all = 0;

        for (int i = 0; i < opt.clients; i++) {
            ts[i].index = i;
            ts[i].op = (enum svc_op)op;
            ts[i].until = t0 + phase;
            if (op == SVC_GET)
                ts[i].created = ts[i].ok;
            ts[i].ok = ts[i].errors = 0;
            ts[i].n_lat = 0;
            if (pthread_create(&ts[i].tid, NULL, svc_main, &ts[i]) != 0)
                die("cannot start a thread");
        }
        for (int i = 0; i < opt.clients; i++) {
            pthread_join(ts[i].tid, NULL);
            ok += ts[i].ok;
            errors += ts[i].errors;
            all = xrealloc(all, (n_all + ts[i].n_lat + 1) * sizeof(*all));
            memcpy(all + n_all, ts[i].lat, ts[i].n_lat * sizeof(*all));
            n_all += ts[i].n_lat;
            if (ts[i].first_error[0])
                fprintf(stderr, "dpsbench: %s: %s\n", svc_names[op], ts[i].first_error);
        }
        elapsed = now_s() - t0;
        qsort(all, n_all, sizeof(*all), cmp_double);
        printf("dpsbench: mode=service op=%s clients=%d measured_s=%.2f ok=%ld errors=%ld "
               "rate=%.1f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f\n",
               svc_names[op] + 11, opt.clients, elapsed, ok, errors, (double)ok / elapsed,
               percentile(all, n_all, 50), percentile(all, n_all, 95), percentile(all, n_all, 99));
        printf("| %s | %d | %.1f | %.2f | %.2f | %.2f | %ld | n/a |\n", svc_names[op], opt.clients,
               (double)ok / elapsed, percentile(all, n_all, 50), percentile(all, n_all, 95),
               percentile(all, n_all, 99), errors);
        free(all);
    }
    for (int i = 0; i < opt.clients; i++)
        free(ts[i].lat);
    free(ts);
}

/* ---- one query page, timed: first pages and a page deep in the set ---- */

static void time_pages(const char *what, int deep)
{
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};
    struct dps_query_page page = {0};
    char *cursor = NULL;
    double lat[64];
    int n = (int)(opt.count > 0 && opt.count < 64 ? opt.count : 20);

    for (int i = 0; i < deep; i++) {
        struct dps_query q = {.page_size = 1000, .continuation = cursor};
        int rc = strcmp(what, "registrations") == 0
                     ? dps_registration_query(c, opt.group, &q, &page, &err)
                     : dps_enrollment_query(c, &q, &page, &err);
        if (rc)
            die("%s query: %s", what, err.msg);
        free(cursor);
        cursor = page.continuation ? xstrdup(page.continuation) : NULL;
        dps_query_page_release(&page);
        if (!cursor)
            break;
    }
    for (int i = 0; i < n; i++) {
        struct dps_query q = {.page_size = 100, .continuation = cursor};
        double t0 = now_s();
        int rc = strcmp(what, "registrations") == 0
                     ? dps_registration_query(c, opt.group, &q, &page, &err)
                     : dps_enrollment_query(c, &q, &page, &err);
        if (rc)
            die("%s query: %s", what, err.msg);
        lat[i] = (now_s() - t0) * 1000.0;
        if (!page.items || strlen(page.items) < 3)
            die("%s query returned an empty page", what);
        dps_query_page_release(&page);
    }
    free(cursor);
    qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
    printf("dpsbench: mode=query-page what=%s skip_pages_of_1000=%d pages=%d p50_ms=%.2f "
           "max_ms=%.2f\n",
           what, deep, n, percentile(lat, (size_t)n, 50), lat[n - 1]);
    dps_service_client_free(c);
}

/* ---- every individual enrollment, page by page ---- */

/*
 * Reads all individual enrollments over the service API in pages of 1,000
 * following x-ms-continuation, and checks the set: ids strictly
 * increasing across pages (so none repeats), no continuation on the last
 * page, and exactly --count enrollments when given. Dies on a violation.
 */
static void page_through(void)
{
    struct dps_service_client *c = service_client();
    struct dps_error err = {0};
    struct dps_query_page page = {0};
    char *cursor = NULL, last[256] = "";
    double *lat = NULL, t0 = now_s();
    size_t n_pages = 0, cap = 0;
    long items = 0;

    for (;;) {
        struct dps_query q = {.page_size = 1000, .continuation = cursor};
        double t = now_s();
        json_error_t jerr;
        json_t *arr, *it;
        size_t i;

        if (dps_enrollment_query(c, &q, &page, &err))
            die("enrollment query, page %zu: %s", n_pages + 1, err.msg);
        if (n_pages == cap) {
            cap = cap ? cap * 2 : 1024;
            lat = xrealloc(lat, cap * sizeof(*lat));
        }
        lat[n_pages++] = (now_s() - t) * 1000.0;
        arr = json_loads(page.items ? page.items : "", 0, &jerr);
        if (!json_is_array(arr))
            die("enrollment query, page %zu: not a JSON array: %s", n_pages, jerr.text);
        json_array_foreach(arr, i, it)
        {
            const char *id = json_string_value(json_object_get(it, "registrationId"));

            if (!id || strlen(id) >= sizeof(last))
                die("enrollment query, page %zu: item %zu has no valid 'registrationId'", n_pages,
                    i);
            if (strcmp(id, last) <= 0)
                die("enrollment query, page %zu: '%s' follows '%s' (not strictly increasing)",
                    n_pages, id, last);
            snprintf(last, sizeof(last), "%s", id);
            items++;
        }
        if (json_array_size(arr) == 0 && page.continuation)
            die("enrollment query, page %zu: an empty page with a continuation", n_pages);
        json_decref(arr);
        free(cursor);
        cursor = page.continuation ? xstrdup(page.continuation) : NULL;
        dps_query_page_release(&page);
        if (!cursor)
            break;
    }
    if (opt.count > 0 && items != opt.count)
        die("enrollment query: %ld enrollments paged through, %ld expected", items, opt.count);
    qsort(lat, n_pages, sizeof(*lat), cmp_double);
    printf("dpsbench: mode=page-through what=enrollments items=%ld pages=%zu total_s=%.2f "
           "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f ordered=yes last_continuation=none\n",
           items, n_pages, now_s() - t0, percentile(lat, n_pages, 50), percentile(lat, n_pages, 99),
           lat[n_pages - 1]);
    free(lat);
    dps_service_client_free(c);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dpsbench MODE [options]\n"
            "modes:\n"
            "  pki                     make root.pem, inter.pem, inter.key in --pki\n"
            "  x509                    X.509 registrations over HTTPS (enrolls --group)\n"
            "  symkey                  symmetric-key registrations over HTTPS (enrolls --group)\n"
            "  mqtt-x509               X.509 registrations over MQTT on TLS (--connect is the\n"
            "                          MQTT port; --service the HTTPS one; group bench-x509)\n"
            "  mqtt-symkey             symmetric-key registrations over MQTT on TLS (group\n"
            "                          bench-symkey)\n"
            "  handshake               mutual-TLS handshakes only (against bench/tlsserver)\n"
            "  handshake-server-auth   TLS handshakes without a client certificate\n"
            "  service                 enrollment create/get/query on keep-alive connections\n"
            "  query-page              time query pages of enrollments and of --group's records\n"
            "  page-through            read every enrollment in pages of 1000, check the order\n"
            "                          (and with --count, the number)\n"
            "options:\n"
            "  --connect HOST:PORT     server address (required but for pki)\n"
            "  --service HOST:PORT     dpsd's service API when --connect is not it (MQTT,\n"
            "                          or a protocol floor: tlsserver --answer)\n"
            "  --data-dir DIR          dpsd's data directory (connection string, id scope, CA)\n"
            "  --ca FILE               trust for the server certificate (default DIR/tls/ca.pem)\n"
            "  --server-name NAME      SNI and certificate name (default localhost)\n"
            "  --pki DIR               bench PKI directory (default bench-pki)\n"
            "  --group ID              enrollment group id (default bench-MODE)\n"
            "  --clients N             concurrent clients (default 32)\n"
            "  --threads N             client threads (default: CPUs)\n"
            "  --devices K             devices, at least --clients (default 1000)\n"
            "  --duration S            seconds to run (default 10)\n"
            "  --warmup S              first seconds not measured (default 1)\n"
            "  --count N               stop after N attempts instead of a duration\n"
            "  --rate R                pace all clients to R attempts/s (default: no pacing)\n"
            "  --tls12                 use TLS 1.2 (default: TLS 1.3)\n"
            "  --no-check              skip the store check after a registration run (for\n"
            "                          tlsserver --answer, which stores nothing)\n"
            "  --label TEXT            first cell of the Markdown row\n"
            "  --server-pid PID        sample that process's CPU time over the measured seconds\n"
            "                          (server_cpu_ms: per measured attempt; -1 without it)\n");
}

static double parse_num(const char *name, const char *s, double lo, double hi)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || !end || *end || end == s || v < lo || v > hi)
        die("'%s' must be a number from %g to %g, got '%s'", name, lo, hi, s);
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"connect", required_argument, NULL, 'C'},
                                             {"service", required_argument, NULL, 'S'},
                                             {"data-dir", required_argument, NULL, 'D'},
                                             {"ca", required_argument, NULL, 'a'},
                                             {"server-name", required_argument, NULL, 'n'},
                                             {"pki", required_argument, NULL, 'p'},
                                             {"group", required_argument, NULL, 'g'},
                                             {"clients", required_argument, NULL, 'c'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"devices", required_argument, NULL, 'k'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {"warmup", required_argument, NULL, 'w'},
                                             {"count", required_argument, NULL, 'N'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"tls12", no_argument, NULL, '2'},
                                             {"no-check", no_argument, NULL, 'X'},
                                             {"server-pid", required_argument, NULL, 'P'},
                                             {"label", required_argument, NULL, 'l'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char group_buf[64], ca_buf[1024];
    int ch, m;

    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (m = 0; m < (int)(sizeof(mode_names) / sizeof(*mode_names)); m++)
        if (strcmp(argv[1], mode_names[m]) == 0)
            break;
    if (m == (int)(sizeof(mode_names) / sizeof(*mode_names)))
        die("unknown mode '%s' (see --help)", argv[1]);
    opt.mode = (enum mode)m;
    opt.pki_dir = "bench-pki";
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'C':
            opt.connect = optarg;
            break;
        case 'S':
            opt.service = optarg;
            break;
        case 'D':
            opt.data_dir = optarg;
            break;
        case 'a':
            opt.ca_file = optarg;
            break;
        case 'n':
            opt.server_name = optarg;
            break;
        case 'p':
            opt.pki_dir = optarg;
            break;
        case 'g':
            opt.group = optarg;
            break;
        case 'c':
            opt.clients = (int)parse_num("--clients", optarg, 1, MAX_CLIENTS);
            break;
        case 't':
            opt.threads = (int)parse_num("--threads", optarg, 1, MAX_THREADS);
            break;
        case 'k':
            opt.devices = (int)parse_num("--devices", optarg, 1, MAX_DEVICES);
            break;
        case 'd':
            opt.duration_s = parse_num("--duration", optarg, 0.1, 86400);
            break;
        case 'w':
            opt.warmup_s = parse_num("--warmup", optarg, 0, 3600);
            break;
        case 'N':
            opt.count = (long)parse_num("--count", optarg, 1, 1e12);
            break;
        case 'r':
            opt.rate = parse_num("--rate", optarg, 0, 1e7);
            break;
        case '2':
            opt.tls12 = 1;
            break;
        case 'X':
            opt.no_check = 1;
            break;
        case 'l':
            opt.label = optarg;
            break;
        case 'P':
            opt.server_pid = (long)parse_num("--server-pid", optarg, 1, 4194304);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc)
        die("unexpected argument '%s'", argv[optind]);
    if (opt.mode == MODE_PKI) {
        pki_make();
        return 0;
    }
    if (!opt.connect)
        die("'--connect' is required");
    if (mode_is_mqtt() && !opt.service)
        die("'--service' is required for mode '%s'", mode_names[opt.mode]);
    if (!opt.group) {
        /* MQTT devices share their HTTPS twins' group (own ids): no extra groups to attest. */
        snprintf(group_buf, sizeof(group_buf), "bench-%s",
                 opt.mode == MODE_MQTT_X509     ? "x509"
                 : opt.mode == MODE_MQTT_SYMKEY ? "symkey"
                                                : mode_names[opt.mode]);
        opt.group = group_buf;
    }
    if (!opt.label)
        opt.label = mode_names[opt.mode];
    if (opt.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt.threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
    }
    if (opt.threads > opt.clients)
        opt.threads = opt.clients;
    if (opt.devices < opt.clients)
        die("'--devices' (%d) must be at least '--clients' (%d)", opt.devices, opt.clients);
    if (opt.count > 0)
        opt.warmup_s = 0;
    if (opt.data_dir && !opt.ca_file) {
        snprintf(ca_buf, sizeof(ca_buf), "%s/tls/ca.pem", opt.data_dir);
        opt.ca_file = ca_buf;
    }
    if (!opt.ca_file)
        die("'--ca' or '--data-dir' is required");
    if (opt.mode != MODE_HANDSHAKE && opt.mode != MODE_HANDSHAKE_SERVER_AUTH) {
        if (!opt.data_dir)
            die("'--data-dir' is required for mode '%s'", mode_names[opt.mode]);
        conn_string = read_text(opt.data_dir, "connection-string");
        id_scope = read_text(opt.data_dir, "id-scope");
    }
    resolve(opt.connect);
    client_ctx_init();
    switch (opt.mode) {
    case MODE_X509:
    case MODE_MQTT_X509:
        enroll_x509_group();
        devices_make_x509(1);
        run_connections();
        break;
    case MODE_SYMKEY:
    case MODE_MQTT_SYMKEY: {
        char *key = enroll_symkey_group();
        devices_make_symkey(key);
        OPENSSL_cleanse(key, strlen(key));
        free(key);
        run_connections();
        break;
    }
    case MODE_HANDSHAKE:
        devices_make_x509(0);
        run_connections();
        break;
    case MODE_HANDSHAKE_SERVER_AUTH:
        devices = xcalloc((size_t)opt.devices, sizeof(*devices));
        run_connections();
        break;
    case MODE_SERVICE:
        run_service();
        break;
    case MODE_QUERY_PAGE:
        time_pages("enrollments", 0);
        time_pages("enrollments", 100);
        time_pages("registrations", 0);
        break;
    case MODE_PAGE_THROUGH:
        page_through();
        break;
    case MODE_PKI:
        break;
    }
    for (int i = 0; devices && i < opt.devices; i++) {
        X509_free(devices[i].cert);
        EVP_PKEY_free(devices[i].key);
        free(devices[i].request);
    }
    free(devices);
    X509_free(inter_cert);
    SSL_CTX_free(client_ctx);
    free(conn_string);
    free(id_scope);
    return 0;
}
