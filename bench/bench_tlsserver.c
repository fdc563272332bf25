/* SPDX-License-Identifier: MIT */
/*
 * tlsserver: the baselines of `make bench`. By default it does the least work
 * a device registration can need on the server, a TLS handshake that requests
 * the client certificate and verifies the client chain against a trust store,
 * and nothing else. With --answer it is the protocol floor: after the same
 * handshake it serves the device protocol, one HTTPS register request or the
 * MQTT exchange of a registration, with a fixed "assigned" answer shaped and
 * sized like dpsd's: no attestation, no store, no JSON parsing. Workers,
 * listening sockets (SO_REUSEPORT) and the TLS set-up mirror dpsd's, so that
 * dpsd's rate divided by these says what the rest of the request path costs.
 * It is a measuring tool, not a server: it answers what dpsbench sends and
 * closes the connection on anything else.
 *
 *     tlsserver --listen HOST:PORT --cert PEM --key PEM --trust PEM [--workers N]
 *               [--answer none|https|mqtt]
 *
 * It prints its counters to stderr on SIGTERM or SIGINT and exits.
 */
#include "core/common.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/dps_mqtt.h"
#include "core/mqtt_codec.h"
#include "core/regid.h"
#include "tls_write.h"

#define MAX_WORKERS 256
/* Largest request read, HTTP head and body or one MQTT packet: dpsbench's are far below. */
#define MAX_REQUEST (16 * 1024)
/* Room for any answer: the fixed JSON with two REGID_MAX ids, and its headers or framing. */
#define MAX_REPLY 2048
#define TIMEOUT_S 30

/* What follows the handshake. */
enum answer {
    ANSWER_NONE,  /* close_notify and close: the handshake baseline */
    ANSWER_HTTPS, /* one register request, answered 200 */
    ANSWER_MQTT,  /* CONNECT, SUBSCRIBE, the register PUBLISH, DISCONNECT */
};

static const char *const answer_names[] = {"none", "https", "mqtt"};

struct worker {
    pthread_t tid;
    struct event_base *base;
    struct evconnlistener *listener;
};

/* One connection of the protocol floor (--answer https or mqtt). */
struct conn {
    struct bufferevent *bev; /* owns the socket and the SSL object */
    bool closing;            /* the last answer is queued: close once it is sent */
    /* MQTT only */
    bool connected;          /* CONNECT answered */
    bool subscribed;         /* to the response filter: responses go at QoS 1, as dpsd's */
    uint16_t next_packet_id; /* of the next QoS 1 response */
    char id[REGID_MAX + 1];  /* CONNECT's client id: the registration id of the answers */
};

static SSL_CTX *ctx;
static enum answer answer = ANSWER_NONE;
/*
 * failed: handshakes that failed and, when answering, connections that ended
 * before their last answer (peer gone, TLS error, timeout). answered: register
 * requests answered. malformed: connections closed on a request that was not
 * one to answer.
 */
static atomic_long accepted, verified, anonymous, refused, failed, answered, malformed;

/* A register request id, and the operation id dpsd would make of it (same lengths). */
#define REQUEST_ID "e66d0899-2eb3-4308-b32d-6581c83cbc79"
/*
 * The fixed answer to a register request: dpsd's 200 "assigned" reply field
 * for field, in its order, with values of the lengths dpsd's have (its
 * operationId, etag and times change with each registration; their lengths
 * do not). The two %s are the registration id.
 */
#define REPLY_FORMAT                                                                               \
    "{\"operationId\":\"1.ff571790795384ed." REQUEST_ID "\",\"status\":\"assigned\","              \
    "\"registrationState\":{\"registrationId\":\"%s\",\"assignedHub\":\"hub-a.example.net\","      \
    "\"deviceId\":\"%s\",\"status\":\"assigned\",\"substatus\":\"initialAssignment\","             \
    "\"createdDateTimeUtc\":\"2026-01-01T00:00:00.0000000Z\","                                     \
    "\"lastUpdatedDateTimeUtc\":\"2026-01-01T00:00:00.0000000Z\","                                 \
    "\"etag\":\"IjI4NzAxYTEzLTc0M2UtODM1NS04ZDk5LWQyNmRhYWZkMGU4YyI=\"}}"

/* The bounds MQTT packets are decoded with. */
static const struct mqtt_limits mqtt_limits = {
    .max_packet = MAX_REQUEST, .max_topic = 1024, .max_client_id = 256};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("tlsserver: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Counts a finished handshake by what came of the client chain. */
static void count_handshake(SSL *ssl)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);

    if (!peer)
        anonymous++;
    else if (SSL_get_verify_result(ssl) == X509_V_OK)
        verified++;
    else
        refused++;
}

/* The handshake baseline (--answer none). */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);

        /* The handshake is over and the client chain verified (or absent): close. */
        count_handshake(ssl);
        /* close_notify, so the client can tell a finished handshake from a cut one. */
        SSL_shutdown(ssl);
    } else {
        failed++;
    }
    bufferevent_free(bev);
}

/* ---- the protocol floor ---- */

/*
 * Writes the fixed answer for registration id into buf (MAX_REPLY bytes);
 * returns its length. id is at most REGID_MAX bytes of characters that need
 * no JSON escaping (regid_check()), so it always fits.
 */
static size_t reply_body(char *buf, const char *id)
{
    int n = snprintf(buf, MAX_REPLY, REPLY_FORMAT, id, id);

    assert(n > 0 && n < MAX_REPLY);
    return (size_t)n;
}

/* Sends close_notify, as dpsd does (handshake done, nothing queued), and closes. */
static void conn_close(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

    if (SSL_is_init_finished(ssl) && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        ERR_set_mark();
        SSL_shutdown(ssl);
        ERR_pop_to_mark();
    }
    bufferevent_free(c->bev);
    free(c);
}

/* Closes once everything queued is sent: now, or from on_written(). c may be gone after. */
static void conn_finish(struct conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_close(c);
        return;
    }
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
}

/* Writes an answer as dpsd's conn_write() does (bench_tls_write()). */
static void conn_write(struct conn *c, const void *buf, size_t len)
{
    bench_tls_write(c->bev, buf, len);
}

static void on_written(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_close(c);
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        count_handshake(bufferevent_openssl_get_ssl(bev));
        /*
         * As dpsd: acknowledge the client's last handshake flight at once, or
         * a client whose Nagle holds its request until that ACK waits for the
         * delayed-ACK timer (40 ms).
         */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_QUICKACK, &(int){1}, sizeof(int));
        return; /* the request follows */
    }
    failed++;
    bufferevent_free(bev);
    free(c);
}

/*
 * Parses the register request at the start of buf: the request line
 * "PUT /{scope}/registrations/{id}/register[?query] HTTP/1.1", headers up to
 * the empty line, and Content-Length bytes of body (no Transfer-Encoding).
 * Nothing in the headers or the body is checked beyond that: the floor
 * answers, it does not judge.
 *
 * buf, len: the bytes received so far, at most MAX_REQUEST of them.
 * id:       on success, the registration id, NUL-terminated (REGID_MAX + 1 bytes).
 *
 * Returns: the size of the request, 0 while it is incomplete, -1 when it is
 * malformed, over MAX_REQUEST or not a register request.
 */
static int http_request_parse(const char *buf, size_t len, char *id)
{
    static const char method[] = "PUT /", version[] = " HTTP/1.1";
    static const char segment[] = "registrations/", last[] = "/register";
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *line_end, *path, *path_end, *p, *q, *id_at;
    size_t head_len, body_len = 0, id_len;
    bool has_length = false;

    if (!end)
        return len >= MAX_REQUEST ? -1 : 0;
    head_len = (size_t)(end - buf) + 4;
    line_end = memmem(buf, head_len, "\r\n", 2);
    /* the request line */
    if ((size_t)(line_end - buf) < sizeof(method) - 1 + sizeof(version) - 1 ||
        memcmp(buf, method, sizeof(method) - 1) != 0 ||
        memcmp(line_end - (sizeof(version) - 1), version, sizeof(version) - 1) != 0)
        return -1;
    path = buf + sizeof(method) - 1;
    path_end = line_end - (sizeof(version) - 1);
    q = memchr(path, '?', (size_t)(path_end - path));
    if (q)
        path_end = q;
    p = memchr(path, '/', (size_t)(path_end - path)); /* after the id scope */
    if (!p || p == path || (size_t)(path_end - p) < 1 + sizeof(segment) - 1 + sizeof(last) - 1 ||
        memcmp(p + 1, segment, sizeof(segment) - 1) != 0 ||
        memcmp(path_end - (sizeof(last) - 1), last, sizeof(last) - 1) != 0)
        return -1;
    id_at = p + 1 + sizeof(segment) - 1;
    id_len = (size_t)(path_end - (sizeof(last) - 1) - id_at);
    if (regid_check(REGID_REGISTRATION, id_at, id_len, REGID_ALLOW_UPPER, NULL) != DPS_OK)
        return -1;
    /* the headers: only the body's length matters */
    for (p = line_end + 2; p < end; p = memmem(p, (size_t)(end + 2 - p), "\r\n", 2) + 2) {
        if (strncasecmp(p, "transfer-encoding:", 18) == 0)
            return -1;
        if (strncasecmp(p, "content-length:", 15) == 0) {
            if (has_length)
                return -1;
            has_length = true;
            for (p += 15; *p == ' ' || *p == '\t'; p++)
                ;
            if (*p < '0' || *p > '9')
                return -1;
            for (; *p >= '0' && *p <= '9'; p++) {
                body_len = body_len * 10 + (size_t)(*p - '0');
                if (body_len > MAX_REQUEST)
                    return -1;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != '\r')
                return -1;
        }
    }
    if (head_len + body_len > MAX_REQUEST)
        return -1;
    if (len < head_len + body_len)
        return 0;
    memcpy(id, id_at, id_len);
    id[id_len] = '\0';
    return (int)(head_len + body_len);
}

/* --answer https: one register request, answered 200 with the fixed reply, then close. */
static void https_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t have = evbuffer_get_length(in);
    size_t want = have < MAX_REQUEST ? have : MAX_REQUEST;
    char id[REGID_MAX + 1], body[MAX_REPLY], reply[MAX_REPLY + 256];
    size_t blen;
    int n, len;

    if (c->closing)
        return;
    n = http_request_parse((const char *)evbuffer_pullup(in, (ev_ssize_t)want), want, id);
    if (n == 0)
        return;
    if (n < 0) {
        malformed++;
        conn_close(c);
        return;
    }
    blen = reply_body(body, id);
    /* dpsd's headers, in its order; headers and body in one buffer, so one TLS record */
    len = snprintf(reply, sizeof(reply),
                   "HTTP/1.1 200 OK\r\n"
                   "Content-Type: application/json; charset=utf-8\r\n"
                   "Content-Length: %zu\r\n"
                   "x-ms-request-id: " REQUEST_ID "\r\n"
                   "Connection: close\r\n"
                   "\r\n"
                   "%s",
                   blen, body);
    assert(len > 0 && (size_t)len < sizeof(reply));
    answered++;
    conn_write(c, reply, (size_t)len);
    conn_finish(c);
}

static int mqtt_on_connect(struct conn *c, const struct mqtt_connect *m)
{
    uint8_t buf[4];

    if (c->connected || regid_check(REGID_REGISTRATION, m->client_id.ptr, m->client_id.len,
                                    REGID_ALLOW_UPPER, NULL) != DPS_OK)
        return -1;
    memcpy(c->id, m->client_id.ptr, m->client_id.len);
    c->id[m->client_id.len] = '\0';
    c->connected = true;
    conn_write(c, buf, mqtt_encode_connack(buf, sizeof(buf), false, MQTT_CONNACK_ACCEPTED));
    return 0;
}

/* As dpsd: QoS 1 on the response filter (2 downgraded, 0 kept), other filters refused. */
static void mqtt_on_subscribe(struct conn *c, const struct mqtt_subscribe *sub)
{
    uint8_t codes[MQTT_MAX_FILTERS], buf[16];

    for (size_t i = 0; i < sub->count; i++) {
        const struct mqtt_subscription *t = &sub->topics[i];

        codes[i] = MQTT_SUBACK_FAILURE;
        if (dps_mqtt_filter_is_supported(t->filter.ptr, t->filter.len)) {
            codes[i] = t->qos > 1 ? 1 : t->qos;
            c->subscribed = true;
        }
    }
    conn_write(c, buf, mqtt_encode_suback(buf, sizeof(buf), sub->packet_id, codes, sub->count));
}

/*
 * A register PUBLISH: its PUBACK (QoS 1) and the response PUBLISH on
 * res/200 with the request's $rid, together in one write as dpsd sends them.
 */
static int mqtt_on_publish(struct conn *c, const struct mqtt_publish *p)
{
    struct dps_mqtt_request_topic t;
    char topic[DPS_MQTT_RESPONSE_TOPIC_SIZE], body[MAX_REPLY];
    uint8_t buf[MAX_REPLY + DPS_MQTT_RESPONSE_TOPIC_SIZE + 16];
    uint8_t qos = c->subscribed ? 1 : 0;
    size_t tlen, blen, acked = 0, n;

    if (p->qos > 1 ||
        dps_mqtt_request_topic_parse(p->topic.ptr, p->topic.len, &t, NULL) != DPS_OK ||
        t.kind != DPS_MQTT_REGISTER)
        return -1;
    tlen = dps_mqtt_response_topic(topic, sizeof(topic), 200, t.rid, t.rid_len, -1);
    if (tlen == 0 || tlen >= sizeof(topic))
        return -1;
    blen = reply_body(body, c->id);
    if (p->qos == 1)
        acked = mqtt_encode_puback(buf, sizeof(buf), p->packet_id);
    n = mqtt_encode_publish(buf + acked, sizeof(buf) - acked, topic, tlen, body, blen, qos,
                            c->next_packet_id);
    if (n == 0 || n > sizeof(buf) - acked)
        return -1;
    if (qos && ++c->next_packet_id == 0)
        c->next_packet_id = 1;
    answered++;
    conn_write(c, buf, acked + n);
    return 0;
}

/* Answers one packet. Returns 0, 1 after DISCONNECT, -1 for a packet not to answer. */
static int mqtt_on_packet(struct conn *c, const struct mqtt_packet *p)
{
    uint8_t buf[4];

    if (!c->connected && p->type != MQTT_CONNECT)
        return -1;
    switch (p->type) {
    case MQTT_CONNECT:
        return mqtt_on_connect(c, &p->u.connect);
    case MQTT_SUBSCRIBE:
        mqtt_on_subscribe(c, &p->u.subscribe);
        return 0;
    case MQTT_PUBLISH:
        return mqtt_on_publish(c, &p->u.publish);
    case MQTT_PUBACK:
        return 0; /* of a response: nothing is kept for redelivery */
    case MQTT_PINGREQ:
        conn_write(c, buf, mqtt_encode_pingresp(buf, sizeof(buf)));
        return 0;
    case MQTT_DISCONNECT:
        return 1;
    default:
        return -1;
    }
}

/* --answer mqtt: every whole packet in the input, decoded with dpsd's codec. */
static void mqtt_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (!c->closing) {
        size_t have = evbuffer_get_length(in);
        size_t want = have < MQTT_MAX_FIXED_HEADER ? have : MQTT_MAX_FIXED_HEADER;
        const uint8_t *buf;
        struct mqtt_packet p;
        int n, rc;

        if (have == 0)
            return;
        /* The fixed header first, as dpsd: the size check comes before a pullup of the rest. */
        buf = evbuffer_pullup(in, (ev_ssize_t)want);
        n = mqtt_decode(buf, want, &mqtt_limits, &p, NULL);
        if (n == MQTT_INCOMPLETE && want < have) {
            buf = evbuffer_pullup(in, -1);
            n = mqtt_decode(buf, have, &mqtt_limits, &p, NULL);
        }
        if (n == MQTT_INCOMPLETE)
            return;
        rc = n < 0 ? -1 : mqtt_on_packet(c, &p);
        if (rc < 0) {
            malformed++;
            conn_close(c);
            return;
        }
        if (rc > 0) {
            conn_finish(c);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct worker *w = arg;
    struct bufferevent *bev;
    SSL *ssl = SSL_new(ctx);
    struct timeval to = {TIMEOUT_S, 0};

    accepted++;
    /* dpsd's socket option for its answers (the handshake baseline sends none: left as it was) */
    if (answer != ANSWER_NONE)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (!ssl) {
        evutil_closesocket(fd);
        return;
    }
    bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    if (answer == ANSWER_NONE) {
        bufferevent_setcb(bev, NULL, NULL, on_event, w);
    } else {
        struct conn *c = xcalloc(1, sizeof(*c));

        c->bev = bev;
        c->next_packet_id = 1;
        bufferevent_setcb(bev, answer == ANSWER_HTTPS ? https_on_read : mqtt_on_read, on_written,
                          on_conn_event, c);
    }
    bufferevent_set_timeouts(bev, &to, &to);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

/*
 * As dpsd's context: TLS 1.2 and up, no renegotiation, client certificate
 * requested, no resumption.
 */
static void ctx_init(const char *cert, const char *key, const char *trust)
{
    X509_STORE *store;

    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        die("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        die("cannot load certificate '%s'", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die("cannot load private key '%s'", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        die("the key '%s' does not match the certificate '%s'", key, cert);
    if (SSL_CTX_load_verify_locations(ctx, trust, NULL) != 1)
        die("cannot load trust anchors '%s'", trust);
    /*
     * The anchor is the enrolled intermediate, as for a dpsd enrollment
     * group on an intermediate: the chain ends there, not at a root.
     */
    store = SSL_CTX_get_cert_store(ctx);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify_depth(ctx, 10);
    /* dpsd's session settings: no session cache, no tickets (two tickets cost a third). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
}

static int listener_socket(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int fd, one = 1, rc;

    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        die("'--listen' must be HOST:PORT, got '%s'", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc != 0)
        die("cannot resolve '%s': %s", hostport, gai_strerror(rc));
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        die("cannot listen on '%s': %s", hostport, strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"cert", required_argument, NULL, 'c'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"trust", required_argument, NULL, 't'},
                                             {"workers", required_argument, NULL, 'w'},
                                             {"answer", required_argument, NULL, 'a'},
                                             {NULL, 0, NULL, 0}};
    const char *listen_at = NULL, *cert = NULL, *key = NULL, *trust = NULL;
    struct worker *workers;
    long nworkers = sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t sigs;
    int ch, sig;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen_at = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            trust = optarg;
            break;
        case 'w': {
            char *end = NULL;
            nworkers = strtol(optarg, &end, 10);
            if (!end || *end || nworkers < 1 || nworkers > MAX_WORKERS)
                die("'--workers' must be 1 to %d, got '%s'", MAX_WORKERS, optarg);
            break;
        }
        case 'a': {
            size_t i;

            for (i = 0; i < sizeof(answer_names) / sizeof(*answer_names); i++)
                if (strcmp(optarg, answer_names[i]) == 0)
                    break;
            if (i == sizeof(answer_names) / sizeof(*answer_names))
                die("'--answer' must be none, https or mqtt, got '%s'", optarg);
            answer = (enum answer)i;
            break;
        }
        default:
            fprintf(stderr, "usage: tlsserver --listen HOST:PORT --cert PEM --key PEM --trust PEM "
                            "[--workers N] [--answer none|https|mqtt]\n");
            return 2;
        }
    }
    if (!listen_at || !cert || !key || !trust)
        die("'--listen', '--cert', '--key' and '--trust' are required");
    if (nworkers < 1)
        nworkers = 1;
    ctx_init(cert, key, trust);
    evthread_use_pthreads();
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    workers = xcalloc((size_t)nworkers, sizeof(*workers));
    for (long i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        /* as dpsd's workers: epoll's change list, one epoll_ctl per descriptor and loop pass */
        struct event_config *cfg = event_config_new();

        if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
            die("cannot configure an event loop");
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!w->base)
            die("cannot create an event loop");
        w->listener = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE, -1,
                                         listener_socket(listen_at));
        if (!w->listener || pthread_create(&w->tid, NULL, worker_main, w) != 0)
            die("cannot start worker %ld", i);
    }
    fprintf(stderr, "tlsserver: listening on %s with %ld workers, answering %s\n", listen_at,
            nworkers, answer_names[answer]);
    sigwait(&sigs, &sig);
    for (long i = 0; i < nworkers; i++)
        event_base_loopbreak(workers[i].base);
    for (long i = 0; i < nworkers; i++) {
        pthread_join(workers[i].tid, NULL);
        evconnlistener_free(workers[i].listener);
        event_base_free(workers[i].base);
    }
    free(workers);
    SSL_CTX_free(ctx);
    fprintf(stderr,
            "tlsserver: answer=%s accepted=%ld verified=%ld anonymous=%ld refused=%ld failed=%ld "
            "answered=%ld malformed=%ld\n",
            answer_names[answer], (long)accepted, (long)verified, (long)anonymous, (long)refused,
            (long)failed, (long)answered, (long)malformed);
    return 0;
}
