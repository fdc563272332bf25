/* SPDX-License-Identifier: MIT */
/*
 * The MQTT session of one device connection, and dpsd's backend that maps
 * its requests onto the registration service. One function per packet
 * type; every answer goes out through the send callback. A register
 * answer may come later (once its write is durable), so each request
 * handed to the backend is a struct mqtt_pending until it is answered.
 */
#include "core/common.h"
#include "server/mqtt_session.h"

#include <assert.h>

#include <openssl/crypto.h>

#include "core/model.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/server.h"

struct mqtt_session {
    struct mqtt_backend backend;
    struct mqtt_limits limits;
    STACK_OF(X509) * chain;
    char peer[64];
    mqtt_send_fn send;
    mqtt_answered_fn answered;
    void *send_arg;
    size_t outstanding;  /* requests handed to the backend, not yet answered */
    bool in_input;       /* inside mqtt_session_input(): answers are not deferred */
    bool authenticating; /* CONNECT handed to the backend: no packet is read until done */
    bool closing;        /* a deferred CONNECT refusal was sent: the connection closes */
    int auth_code;       /* the backend's CONNACK code, once authenticating is false */
    char auth_tracking_id[37];
    uint16_t connect_keep_alive; /* of the CONNECT being authenticated */
    bool connected;
    bool subscribed; /* to DPS_MQTT_RESPONSE_FILTER: responses go at QoS 1 */
    uint16_t keep_alive;
    uint16_t next_packet_id;
    struct dps_mqtt_username user;
    char *password; /* the SAS token, NUL-terminated; wiped on free */
    size_t password_len;
    struct attest_symkey_memo memo; /* of password, for this registration id */
};

struct mqtt_session *mqtt_session_new(const struct mqtt_backend *backend, size_t max_packet,
                                      STACK_OF(X509) * chain, const char *peer, mqtt_send_fn send,
                                      void *send_arg)
{
    struct mqtt_session *s = xcalloc(1, sizeof(*s));

    s->backend = *backend;
    s->limits.max_packet = max_packet;
    s->limits.max_topic = MQTT_SESSION_MAX_TOPIC;
    s->limits.max_client_id = MQTT_SESSION_MAX_CLIENT_ID;
    s->chain = chain;
    snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "-");
    s->send = send;
    s->send_arg = send_arg;
    s->next_packet_id = 1;
    return s;
}

void mqtt_session_free(struct mqtt_session *s)
{
    if (!s)
        return;
    if (s->password) {
        OPENSSL_cleanse(s->password, s->password_len);
        free(s->password);
    }
    attest_symkey_memo_release(&s->memo);
    free(s);
}

void mqtt_session_set_answered(struct mqtt_session *s, mqtt_answered_fn answered)
{
    s->answered = answered;
}

size_t mqtt_session_outstanding(const struct mqtt_session *s)
{
    return s->outstanding;
}

bool mqtt_session_connected(const struct mqtt_session *s)
{
    return s->connected;
}

bool mqtt_session_closing(const struct mqtt_session *s)
{
    return s->closing;
}

long mqtt_session_read_timeout(const struct mqtt_session *s, long idle)
{
    if (!s->connected)
        return MQTT_SESSION_CONNECT_TIMEOUT;
    if (s->keep_alive == 0)
        return idle;
    return ((long)s->keep_alive * 3 + 1) / 2;
}

/* Logs why the connection closes; returns MQTT_SESSION_CLOSE. */
static int refuse(struct mqtt_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(struct mqtt_session *s, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(LOG_WARNING, "%s: mqtt: closing the connection: %s", s->peer, msg);
    return MQTT_SESSION_CLOSE;
}

static void send_connack(struct mqtt_session *s, uint8_t code)
{
    uint8_t buf[4];
    size_t n = mqtt_encode_connack(buf, sizeof(buf), false, code);

    s->send(s->send_arg, buf, n);
}

static void request_init(struct mqtt_session *s, struct mqtt_request *r, char tracking_id[37])
{
    memset(r, 0, sizeof(*r));
    http_uuid(tracking_id);
    r->id_scope = s->user.id_scope;
    r->registration_id = s->user.registration_id;
    r->api_version = s->user.api_version;
    r->chain = s->chain;
    r->sas_token = s->password;
    r->sas_len = s->password_len;
    r->tracking_id = tracking_id;
    r->peer = s->peer;
    r->symkey_memo = &s->memo;
}

/* Sends the CONNACK of the authenticated CONNECT; returns an enum mqtt_session_status. */
static int connect_finish(struct mqtt_session *s)
{
    int code = s->auth_code;

    if (code != MQTT_CONNACK_ACCEPTED) {
        send_connack(s, (uint8_t)code);
        return refuse(s, "CONNECT of '%s' refused with return code %d (tracking id %s)",
                      s->user.registration_id, code, s->auth_tracking_id);
    }
    /* DPS keeps no session state: CleanSession 0 is served as clean (§5.1). */
    s->connected = true;
    s->keep_alive = s->connect_keep_alive;
    send_connack(s, MQTT_CONNACK_ACCEPTED);
    log_msg(LOG_DEBUG, "%s: mqtt: '%s' connected (keep-alive %u s)", s->peer,
            s->user.registration_id, (unsigned)s->keep_alive);
    return MQTT_SESSION_OPEN;
}

/* The backend's authentication outcome (mqtt_auth_fn), now or once a refusal is durable. */
static void auth_answer(void *arg, int code)
{
    struct mqtt_session *s = arg;
    bool deferred = !s->in_input;

    assert(s->authenticating && s->outstanding > 0);
    s->authenticating = false;
    s->outstanding--;
    s->auth_code = code;
    if (!deferred)
        return; /* handle_connect() goes on */
    if (connect_finish(s) != MQTT_SESSION_OPEN)
        s->closing = true;
    /* Last: the connection may free s in there, or read the packets that waited. */
    if (s->answered)
        s->answered(s->send_arg);
}

static int handle_connect(struct mqtt_session *s, const struct mqtt_connect *c)
{
    struct dps_error err = {0};
    struct mqtt_request r;

    if (!c->has_username) {
        send_connack(s, MQTT_CONNACK_BAD_USERNAME_PASSWORD);
        return refuse(s, "CONNECT without a user name");
    }
    if (dps_mqtt_username_parse(c->username.ptr, c->username.len, &s->user, &err) != DPS_OK) {
        send_connack(s, MQTT_CONNACK_BAD_USERNAME_PASSWORD);
        return refuse(s, "CONNECT 'user name': %s", err.msg);
    }
    if (c->client_id.len != strlen(s->user.registration_id) ||
        strncasecmp(c->client_id.ptr, s->user.registration_id, c->client_id.len) != 0) {
        send_connack(s, MQTT_CONNACK_IDENTIFIER_REJECTED);
        return refuse(s,
                      "CONNECT 'client id' differs from the registration id '%s' of the user name",
                      s->user.registration_id);
    }
    if (c->has_password) {
        if (c->password.len == 0 || memchr(c->password.ptr, '\0', c->password.len)) {
            send_connack(s, MQTT_CONNACK_NOT_AUTHORIZED);
            return refuse(s, "CONNECT 'password' of '%s' is not a SAS token",
                          s->user.registration_id);
        }
        s->password = xmalloc(c->password.len + 1);
        memcpy(s->password, c->password.ptr, c->password.len);
        s->password[c->password.len] = '\0';
        s->password_len = c->password.len;
        request_init(s, &r, s->auth_tracking_id);
        s->connect_keep_alive = c->keep_alive;
        s->authenticating = true;
        s->outstanding++;
        s->backend.authenticate(s->backend.arg, &r, auth_answer, s);
        if (s->authenticating)
            return MQTT_SESSION_OPEN; /* CONNACK once the refusal's attempt is durable */
        return connect_finish(s);
    }
    s->connect_keep_alive = c->keep_alive;
    s->auth_code = MQTT_CONNACK_ACCEPTED;
    return connect_finish(s);
}

static void handle_subscribe(struct mqtt_session *s, const struct mqtt_subscribe *sub)
{
    uint8_t codes[MQTT_MAX_FILTERS];
    uint8_t buf[16];
    size_t i, n;

    for (i = 0; i < sub->count; i++) {
        const struct mqtt_subscription *t = &sub->topics[i];

        if (dps_mqtt_filter_is_supported(t->filter.ptr, t->filter.len)) {
            /* DPS grants QoS 1, downgrading 2; a request for 0 gets 0. */
            codes[i] = t->qos > 1 ? 1 : t->qos;
            s->subscribed = true;
        } else {
            codes[i] = MQTT_SUBACK_FAILURE;
            log_msg(LOG_INFO, "%s: mqtt: subscription to a filter other than '%s' refused", s->peer,
                    DPS_MQTT_RESPONSE_FILTER);
        }
    }
    n = mqtt_encode_suback(buf, sizeof(buf), sub->packet_id, codes, sub->count);
    s->send(s->send_arg, buf, n);
}

static void handle_unsubscribe(struct mqtt_session *s, const struct mqtt_unsubscribe *u)
{
    uint8_t buf[4];
    size_t i, n;

    for (i = 0; i < u->count; i++)
        if (dps_mqtt_filter_is_supported(u->filters[i].ptr, u->filters[i].len))
            s->subscribed = false;
    /* Node reports a registration only after this UNSUBACK (§5.2). */
    n = mqtt_encode_unsuback(buf, sizeof(buf), u->packet_id);
    s->send(s->send_arg, buf, n);
}

/*
 * The register body for provision_register(): the registration id comes
 * from the CONNECT user name (§5.2), so a JSON object without one gets it
 * added. Empty, whitespace or anything that is not a JSON object is passed
 * on unchanged for the registration service to judge. Returns a new string
 * (caller frees) or NULL when the payload is to be used as it is.
 */
static char *register_body(const struct mqtt_session *s, const struct mqtt_bytes *payload)
{
    json_t *root = NULL;
    char *out = NULL;
    size_t i;

    for (i = 0; i < payload->len; i++)
        if (!strchr(" \t\r\n", payload->ptr[i]))
            break;
    if (i == payload->len)
        return NULL;
    if (model_json_load((const char *)payload->ptr, payload->len, &root, NULL) != DPS_OK)
        return NULL;
    if (json_is_object(root) && !json_object_get(root, "registrationId")) {
        json_object_set_new(root, "registrationId", json_string(s->user.registration_id));
        out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(root);
    return out;
}

/* True when the n bytes at p are all ASCII: escaping non-ASCII would change nothing. */
static bool is_ascii(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return false;
    return true;
}

/* The response payload: always JSON, non-ASCII escaped (Node decodes payloads as ASCII). */
static char *response_payload(const struct provision_result *res, const char *tracking_id)
{
    char when[32];
    json_t *o;
    char *s;

    if (res->status < 400 && res->text && is_ascii(res->text, res->text_len))
        return xstrdup(res->text); /* the same bytes as the escaping dump below */
    /* Rare: non-ASCII text (parsed again to escape it), or an answer made as a tree. */
    if (res->status < 400 && (o = provision_result_json(res))) {
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(o);
        return s;
    }
    http_utc_now(when);
    o = json_pack("{s:i,s:s,s:s,s:s}", "errorCode",
                  res->error_code ? res->error_code : res->status * 1000, "trackingId", tracking_id,
                  "message", res->message[0] ? res->message : "request failed", "timestampUtc",
                  when);
    s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

/*
 * Sends the response PUBLISH of a request, after the PUBACK of its own
 * PUBLISH when ack_id >= 0: both in one write, so one TLS record.
 */
static void send_response(struct mqtt_session *s, int ack_id, const char *rid, size_t rid_len,
                          const struct provision_result *res, const char *tracking_id)
{
    char topic[DPS_MQTT_RESPONSE_TOPIC_SIZE];
    long retry = -1;
    char *payload;
    uint8_t *buf;
    size_t tlen, plen, n, acked = 0;
    uint8_t qos = s->subscribed ? 1 : 0;
    int status = res->status >= 100 && res->status <= 999 ? res->status : 500;

    if (status == 202 || status == 429)
        retry = res->retry_after > 0 ? res->retry_after : PROVISION_RETRY_AFTER;
    tlen = dps_mqtt_response_topic(topic, sizeof(topic), status, rid, rid_len, retry);
    payload = response_payload(res, tracking_id);
    if (!payload)
        payload = xstrdup("{}");
    plen = strlen(payload);
    n = mqtt_encode_publish(NULL, 0, topic, tlen, payload, plen, qos, s->next_packet_id);
    buf = xmalloc(n + 4);
    if (ack_id >= 0)
        acked = mqtt_encode_puback(buf, 4, (uint16_t)ack_id);
    n = mqtt_encode_publish(buf + acked, n, topic, tlen, payload, plen, qos, s->next_packet_id);
    if (n + acked)
        s->send(s->send_arg, buf, n + acked);
    if (qos && ++s->next_packet_id == 0)
        s->next_packet_id = 1;
    free(buf);
    free(payload);
}

/* A request handed to the backend: what its answer needs once the packet is gone. */
struct mqtt_pending {
    struct mqtt_session *s;
    enum dps_mqtt_request kind;
    char rid[DPS_MQTT_RID_MAX];
    size_t rid_len;
    int ack_id; /* the PUBLISH's packet id for its PUBACK (QoS 1), or -1 */
    char tracking_id[37];
};

/* The backend's answer (mqtt_answer_fn), now or once the registration is durable. */
static void pending_answer(void *arg, struct provision_result *res)
{
    struct mqtt_pending *pend = arg;
    struct mqtt_session *s = pend->s;
    bool deferred = !s->in_input;

    assert(s->outstanding > 0);
    s->outstanding--;
    send_response(s, pend->ack_id, pend->rid, pend->rid_len, res, pend->tracking_id);
    log_msg(LOG_INFO, "mqtt %s '%s' %d %s %s",
            pend->kind == DPS_MQTT_REGISTER ? "register" : "poll", s->user.registration_id,
            res->status, s->peer, pend->tracking_id);
    free(pend);
    /* Last: the connection may free s in there. */
    if (deferred && s->answered)
        s->answered(s->send_arg);
}

static int handle_publish(struct mqtt_session *s, const struct mqtt_publish *p)
{
    struct dps_mqtt_request_topic t;
    struct dps_error err = {0};
    struct mqtt_pending *pend;
    struct mqtt_request r;
    char operation_id[DPS_MQTT_OPERATION_ID_MAX + 1];
    char *body = NULL;
    int rc;

    if (p->qos > 1)
        return refuse(s, "PUBLISH with QoS 2 is not served");
    rc = dps_mqtt_request_topic_parse(p->topic.ptr, p->topic.len, &t, &err);
    if (rc == DPS_ERR_NOT_FOUND)
        return refuse(s, "PUBLISH to a topic that is no DPS request");
    if (rc != DPS_OK)
        return refuse(s, "PUBLISH topic: %s", err.msg);
    if (s->outstanding >= MQTT_SESSION_MAX_INFLIGHT)
        return refuse(s, "more than %d requests outstanding", MQTT_SESSION_MAX_INFLIGHT);
    pend = xcalloc(1, sizeof(*pend));
    pend->s = s;
    /* The PUBACK goes out with the response, in the same TLS record (the answer follows anyway). */
    pend->ack_id = p->qos == 1 ? (int)p->packet_id : -1;
    pend->kind = t.kind;
    assert(t.rid_len <= sizeof(pend->rid));
    if (t.rid_len)
        memcpy(pend->rid, t.rid, t.rid_len);
    pend->rid_len = t.rid_len;
    request_init(s, &r, pend->tracking_id);
    r.kind = t.kind;
    if (t.kind == DPS_MQTT_REGISTER) {
        body = register_body(s, &p->payload);
        r.body = body ? body : (const char *)p->payload.ptr;
        r.body_len = body ? strlen(body) : p->payload.len;
        if (!r.body)
            r.body = "";
    } else {
        /* The poll payload is ignored: clients send " ", "" or the register JSON (§5.2). */
        memcpy(operation_id, t.operation_id, t.operation_id_len);
        operation_id[t.operation_id_len] = '\0';
        r.operation_id = operation_id;
    }
    s->outstanding++;
    s->backend.request(s->backend.arg, &r, pending_answer, pend);
    free(body);
    return MQTT_SESSION_OPEN;
}

/* Handles one decoded packet. */
static int handle_packet(struct mqtt_session *s, const struct mqtt_packet *p)
{
    uint8_t buf[4];

    if (!s->connected) {
        if (p->type != MQTT_CONNECT)
            return refuse(s, "the first packet is %s, not CONNECT", mqtt_type_name(p->type));
        return handle_connect(s, &p->u.connect);
    }
    switch (p->type) {
    case MQTT_PUBLISH:
        return handle_publish(s, &p->u.publish);
    case MQTT_PUBACK:
        return MQTT_SESSION_OPEN; /* of a response: nothing is kept for redelivery */
    case MQTT_SUBSCRIBE:
        handle_subscribe(s, &p->u.subscribe);
        return MQTT_SESSION_OPEN;
    case MQTT_UNSUBSCRIBE:
        handle_unsubscribe(s, &p->u.unsubscribe);
        return MQTT_SESSION_OPEN;
    case MQTT_PINGREQ:
        s->send(s->send_arg, buf, mqtt_encode_pingresp(buf, sizeof(buf)));
        return MQTT_SESSION_OPEN;
    case MQTT_DISCONNECT:
        log_msg(LOG_DEBUG, "%s: mqtt: '%s' disconnected", s->peer, s->user.registration_id);
        return MQTT_SESSION_CLOSE;
    case MQTT_CONNECT:
        return refuse(s, "a second CONNECT");
    default:
        return refuse(s, "%s is not a packet a device sends to DPS", mqtt_type_name(p->type));
    }
}

static int session_input(struct mqtt_session *s, struct evbuffer *in)
{
    for (;;) {
        struct dps_error err = {0};
        struct mqtt_packet p;
        size_t have = evbuffer_get_length(in);
        size_t want = have < MQTT_MAX_FIXED_HEADER ? have : MQTT_MAX_FIXED_HEADER;
        const uint8_t *buf;
        int n, rc;

        if (have == 0)
            return MQTT_SESSION_OPEN;
        if (s->closing)
            return MQTT_SESSION_CLOSE;
        if (s->authenticating) {
            /* The packets after CONNECT wait for its CONNACK; bounded by one packet. */
            if (have > s->limits.max_packet + MQTT_MAX_FIXED_HEADER)
                return refuse(s, "more than %zu bytes sent before the CONNACK",
                              s->limits.max_packet + MQTT_MAX_FIXED_HEADER);
            return MQTT_SESSION_OPEN;
        }
        /* Decode the fixed header first: the size check must come before a pullup of the rest. */
        buf = evbuffer_pullup(in, (ev_ssize_t)want);
        n = mqtt_decode(buf, want, &s->limits, &p, &err);
        if (n == MQTT_INCOMPLETE && want < have) {
            buf = evbuffer_pullup(in, -1);
            n = mqtt_decode(buf, have, &s->limits, &p, &err);
        }
        if (n == MQTT_INCOMPLETE)
            return MQTT_SESSION_OPEN;
        if (n == MQTT_UNSUPPORTED_LEVEL && !s->connected) {
            send_connack(s, MQTT_CONNACK_BAD_PROTOCOL_LEVEL);
            return refuse(s, "%s", err.msg);
        }
        if (n < 0)
            return refuse(s, "%s", err.msg);
        rc = handle_packet(s, &p);
        evbuffer_drain(in, (size_t)n);
        if (rc != MQTT_SESSION_OPEN)
            return rc;
    }
}

int mqtt_session_input(struct mqtt_session *s, struct evbuffer *in)
{
    int rc;

    s->in_input = true;
    rc = session_input(s, in);
    s->in_input = false;
    return rc;
}

/* ---- dpsd's backend: the registration service ---- */

struct mqtt_worker {
    struct mqtt_service *svc;
    struct worker *target; /* where deferred answers run */
    struct store *store;
    struct attest_cache *cache;
    struct provision_cache *groups;
};

/* A deferred answer of the service: what to call once the write is durable. */
struct mqtt_deferred {
    mqtt_answer_fn answer; /* register: the session's answer */
    mqtt_auth_fn auth;     /* CONNECT refusal: the session's authentication outcome */
    void *arg;
};

struct mqtt_service {
    struct provision *prov;
    struct committer *committer; /* borrowed; NULL: synchronous writes */
    char *dsn;
    size_t max_packet;
    struct mqtt_worker *workers;
    size_t n_workers;
};

/* Opens the worker's store on first use; false (logged) when it cannot be opened. */
static bool worker_ready(struct mqtt_worker *w)
{
    struct dps_error err = {0};

    if (!w->store && store_open(w->svc->dsn, &w->store, &err) != DPS_OK) {
        log_msg(LOG_ERROR, "mqtt: %s", err.msg);
        return false;
    }
    if (!w->cache)
        w->cache = attest_cache_new();
    if (!w->groups)
        w->groups = provision_cache_new();
    return true;
}

static void provision_request_from(const struct mqtt_worker *w, const struct mqtt_request *r,
                                   struct provision_request *pr)
{
    memset(pr, 0, sizeof(*pr));
    pr->id_scope = r->id_scope;
    pr->registration_id = r->registration_id;
    pr->chain = r->chain;
    pr->sas_token = r->sas_token;
    pr->sas_len = r->sas_len;
    pr->body = r->body ? r->body : "";
    pr->body_len = r->body ? r->body_len : 0;
    pr->api_version = r->api_version && *r->api_version ? r->api_version : NULL;
    pr->peer = r->peer;
    pr->tracking_id = r->tracking_id;
    pr->cache = w->cache;
    pr->group_cache = w->groups;
    pr->store = w->store;
    pr->symkey_memo = r->symkey_memo;
}

/* On the worker, once a register request's write is durable (or failed): count, then answer. */
static void register_done(void *arg, struct provision_result *res)
{
    struct mqtt_deferred *d = arg;

    metrics_count_registration_result(res);
    d->answer(d->arg, res);
    free(d);
}

/*
 * The CONNACK code once a refused CONNECT's register attempt was written:
 * refused again, or the store failed (the device retries), or the
 * enrollment changed in between and the register now goes through.
 */
static int refusal_code(const struct provision_result *res)
{
    if (res->status == 401)
        return MQTT_CONNACK_NOT_AUTHORIZED;
    if (res->status >= 500)
        return MQTT_CONNACK_SERVER_UNAVAILABLE;
    return MQTT_CONNACK_ACCEPTED;
}

/* On the worker, once a refused CONNECT's attempt is durable (or failed). */
static void refusal_done(void *arg, struct provision_result *res)
{
    struct mqtt_deferred *d = arg;

    metrics_count_registration_result(res);
    d->auth(d->arg, refusal_code(res));
    free(d);
}

/*
 * A SAS in the CONNECT password is checked at once (§5.4): attested
 * without writing and without reading the record. A refusal is then
 * recorded as the register attempt the device came for, so the operator
 * finds the reason in the attempt history, and the device gets CONNACK 5.
 * Enrollment-level outcomes that attestation does not refuse (a disabled
 * enrollment) are answered on the response topic.
 */
static void service_authenticate(void *arg, const struct mqtt_request *r, mqtt_auth_fn done,
                                 void *done_arg)
{
    struct mqtt_worker *w = arg;
    struct mqtt_service *svc = w->svc;
    struct mqtt_deferred *d;
    struct provision_request pr;
    struct provision_result res;
    int code = MQTT_CONNACK_ACCEPTED;

    if (!worker_ready(w)) {
        done(done_arg, MQTT_CONNACK_SERVER_UNAVAILABLE);
        return;
    }
    provision_request_from(w, r, &pr);
    provision_authenticate(svc->prov, &pr, &res);
    if (res.status == 401 && svc->committer) {
        /* The CONNACK waits until the refusal's attempt is durable: no fsync on the loop. */
        provision_result_release(&res);
        d = xcalloc(1, sizeof(*d));
        d->auth = done;
        d->arg = done_arg;
        if (provision_register_async(svc->prov, &pr, svc->committer, w->target, refusal_done, d) !=
            DPS_OK) {
            free(d);
            done(done_arg, MQTT_CONNACK_NOT_AUTHORIZED);
        }
        return;
    }
    if (res.status == 401) {
        provision_result_release(&res);
        provision_register(svc->prov, &pr, &res);
        metrics_count_registration_result(&res);
        code = refusal_code(&res);
    } else if (res.status >= 500) {
        code = MQTT_CONNACK_SERVER_UNAVAILABLE;
    }
    provision_result_release(&res);
    done(done_arg, code);
}

static void service_request(void *arg, const struct mqtt_request *r, mqtt_answer_fn answer,
                            void *answer_arg)
{
    struct mqtt_worker *w = arg;
    struct provision_request pr;
    struct provision_result res;

    memset(&res, 0, sizeof(res));
    if (!worker_ready(w)) {
        res.status = 500;
        res.error_code = 500001;
        snprintf(res.message, sizeof(res.message), "the store is not available");
        answer(answer_arg, &res);
        return;
    }
    if (r->kind == DPS_MQTT_POLL) {
        provision_operation(w->svc->prov, w->store, r->id_scope, r->registration_id,
                            r->operation_id, &res);
        answer(answer_arg, &res);
        provision_result_release(&res);
        return;
    }
    provision_request_from(w, r, &pr);
    if (w->svc->committer) {
        struct mqtt_deferred *d = xcalloc(1, sizeof(*d));

        /* The answer is published once the record and the attempt are committed. */
        d->answer = answer;
        d->arg = answer_arg;
        if (provision_register_async(w->svc->prov, &pr, w->svc->committer, w->target, register_done,
                                     d) == DPS_OK)
            return;
        free(d);
        res.status = 500;
        res.error_code = 500000;
        snprintf(res.message, sizeof(res.message), "internal error: incomplete request");
        answer(answer_arg, &res);
        return;
    }
    provision_register(w->svc->prov, &pr, &res);
    metrics_count_registration_result(&res);
    answer(answer_arg, &res);
    provision_result_release(&res);
}

int mqtt_service_new(const struct config *cfg, const char *id_scope, struct mqtt_service **out,
                     struct dps_error *err)
{
    struct mqtt_service *svc;
    size_t i;
    int rc;

    if (!cfg->store || !id_scope)
        return dps_error_set(err, DPS_ERR_INVAL, "the mqtt service needs a store and an id scope");
    svc = xcalloc(1, sizeof(*svc));
    rc = provision_new(id_scope, cfg->linked_hub.items, cfg->linked_hub.n, cfg->region.items,
                       cfg->region.n, &svc->prov, err);
    if (rc != DPS_OK) {
        free(svc);
        return rc;
    }
    svc->dsn = xstrdup(cfg->store);
    /* The register payload is bounded as the HTTPS body is; the rest is topic and header. */
    svc->max_packet = (size_t)cfg->max_body + MQTT_SESSION_MAX_TOPIC + 16;
    svc->n_workers = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    svc->workers = xcalloc(svc->n_workers, sizeof(*svc->workers));
    for (i = 0; i < svc->n_workers; i++)
        svc->workers[i].svc = svc;
    *out = svc;
    return DPS_OK;
}

void mqtt_service_free(struct mqtt_service *svc)
{
    size_t i;

    if (!svc)
        return;
    for (i = 0; i < svc->n_workers; i++) {
        store_close(svc->workers[i].store);
        attest_cache_free(svc->workers[i].cache);
        provision_cache_free(svc->workers[i].groups);
    }
    free(svc->workers);
    provision_free(svc->prov);
    free(svc->dsn);
    free(svc);
}

void mqtt_service_set_committer(struct mqtt_service *svc, struct committer *cm)
{
    svc->committer = cm;
}

struct mqtt_backend mqtt_service_backend(struct mqtt_service *svc, struct worker *w)
{
    int index = worker_index(w);
    size_t i = index >= 0 && (size_t)index < svc->n_workers ? (size_t)index : 0;
    struct mqtt_backend b = {service_authenticate, service_request, &svc->workers[i]};

    svc->workers[i].target = w;
    return b;
}

size_t mqtt_service_max_packet(const struct mqtt_service *svc)
{
    return svc->max_packet;
}
