/* SPDX-License-Identifier: MIT */
/*
 * DPS user names and topics over MQTT. Everything works on (ptr, len)
 * slices of the caller's bytes and writes into fixed buffers, so a peer's
 * input never causes an allocation.
 */
#include "core/common.h"
#include "core/dps_mqtt.h"

/* A slice of the caller's bytes. */
struct span {
    const char *p;
    size_t n;
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool span_eq(struct span s, const char *lit)
{
    size_t n = strlen(lit);

    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_eq_nocase(struct span s, const char *lit)
{
    size_t n = strlen(lit);

    return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/*
 * Splits the next '&'-separated pair off *rest: key before the first '=',
 * value after it. Returns false at the end; *has_eq says whether the pair
 * held an '='.
 */
static bool next_pair(struct span *rest, struct span *key, struct span *value, bool *has_eq)
{
    const char *amp, *eq;
    size_t n;

    if (rest->n == 0)
        return false;
    amp = memchr(rest->p, '&', rest->n);
    n = amp ? (size_t)(amp - rest->p) : rest->n;
    eq = memchr(rest->p, '=', n);
    *has_eq = eq != NULL;
    key->p = rest->p;
    key->n = eq ? (size_t)(eq - rest->p) : n;
    value->p = eq ? eq + 1 : rest->p + n;
    value->n = eq ? n - key->n - 1 : 0;
    rest->p += amp ? n + 1 : n;
    rest->n -= amp ? n + 1 : n;
    return true;
}

/*
 * Percent-decodes src into dst (max bytes plus a terminator), keeping a '%'
 * that does not start a valid escape. Refuses decoded NUL bytes and values
 * over max.
 */
static int decode_field(char *dst, size_t max, struct span src, const char *field,
                        struct dps_error *err)
{
    size_t o = 0;

    for (size_t i = 0; i < src.n; i++) {
        char c = src.p[i];

        if (c == '%' && i + 2 < src.n && hex_value(src.p[i + 1]) >= 0 &&
            hex_value(src.p[i + 2]) >= 0) {
            c = (char)(hex_value(src.p[i + 1]) << 4 | hex_value(src.p[i + 2]));
            i += 2;
        }
        if (c == '\0')
            return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name '%s' holds a NUL byte", field);
        if (o == max)
            return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name '%s' is longer than %zu bytes",
                                 field, max);
        dst[o++] = c;
    }
    dst[o] = '\0';
    return DPS_OK;
}

int dps_mqtt_username_parse(const char *s, size_t len, struct dps_mqtt_username *out,
                            struct dps_error *err)
{
    static const char shape[] = "expected '{id scope}/registrations/{registration id}/"
                                "api-version={version}'";
    static const char marker[] = "registrations/";
    struct dps_mqtt_username u;
    struct span rest, scope, regid, key, value;
    const char *slash;
    bool seen_api = false, seen_client = false, has_eq;
    int rc;

    if (len > DPS_MQTT_USERNAME_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name is %zu bytes, over %d", len,
                             DPS_MQTT_USERNAME_MAX);
    memset(&u, 0, sizeof(u));
    /* s may be NULL with len 0: an empty user name as the codec hands it over */
    slash = len ? memchr(s, '/', len) : NULL;
    if (!slash || slash == s)
        return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name has no 'id scope': %s", shape);
    scope = (struct span){s, (size_t)(slash - s)};
    rest = (struct span){slash + 1, len - scope.n - 1};
    if (rest.n < sizeof(marker) - 1 || memcmp(rest.p, marker, sizeof(marker) - 1) != 0)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "mqtt user name has no '/registrations/' after the id scope: %s",
                             shape);
    rest.p += sizeof(marker) - 1;
    rest.n -= sizeof(marker) - 1;
    slash = memchr(rest.p, '/', rest.n);
    regid = (struct span){rest.p, slash ? (size_t)(slash - rest.p) : rest.n};
    if (regid.n == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name has no 'registration id': %s",
                             shape);
    rest.p += slash ? regid.n + 1 : regid.n;
    rest.n -= slash ? regid.n + 1 : regid.n;

    if ((rc = decode_field(u.id_scope, DPS_MQTT_SCOPE_MAX, scope, "id scope", err)) != DPS_OK ||
        (rc = decode_field(u.registration_id, DPS_MQTT_REGID_MAX, regid, "registration id", err)) !=
            DPS_OK)
        return rc;

    /* No client sends a '?' here, but a hand-written one should not fail the device. */
    if (rest.n > 0 && rest.p[0] == '?') {
        rest.p++;
        rest.n--;
    }
    while (next_pair(&rest, &key, &value, &has_eq)) {
        bool *seen;
        char *dst;
        size_t max;
        const char *name;

        if (span_eq_nocase(key, "api-version")) {
            seen = &seen_api, dst = u.api_version, max = DPS_MQTT_API_VERSION_MAX;
            name = "api-version";
        } else if (span_eq_nocase(key, "ClientVersion")) {
            seen = &seen_client, dst = u.client_version, max = DPS_MQTT_CLIENT_VERSION_MAX;
            name = "ClientVersion";
        } else {
            continue;
        }
        if (*seen)
            return dps_error_set(err, DPS_ERR_INVAL, "mqtt user name repeats '%s'", name);
        *seen = true;
        if ((rc = decode_field(dst, max, value, name, err)) != DPS_OK)
            return rc;
    }
    *out = u;
    return DPS_OK;
}

/* Appends to a snprintf-style destination, counting what does not fit. */
struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void out_raw(struct out *o, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o->len + 1 < o->cap)
            o->buf[o->len] = p[i];
        o->len++;
    }
}

static void out_str(struct out *o, const char *s)
{
    out_raw(o, s, strlen(s));
}

/* Percent-encodes everything outside the RFC 3986 unreserved set, upper-case hex. */
static void out_pct(struct out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out_raw(o, s, 1);
        else
            out_raw(o, esc, 3);
    }
}

/* Terminates the output if it fit and returns its length. */
static size_t out_finish(struct out *o)
{
    if (o->len < o->cap)
        o->buf[o->len] = '\0';
    else if (o->cap > 0)
        o->buf[0] = '\0';
    return o->len;
}

size_t dps_mqtt_username_build(char *buf, size_t cap, const char *id_scope,
                               const char *registration_id, const char *api_version,
                               const char *client_version)
{
    struct out o = {buf, cap, 0};

    out_str(&o, id_scope);
    out_str(&o, "/registrations/");
    out_str(&o, registration_id);
    out_str(&o, "/api-version=");
    out_str(&o, api_version);
    if (client_version) {
        out_str(&o, "&ClientVersion=");
        out_pct(&o, client_version);
    }
    return out_finish(&o);
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(s, prefix, n) == 0;
}

int dps_mqtt_request_topic_parse(const char *topic, size_t len, struct dps_mqtt_request_topic *out,
                                 struct dps_error *err)
{
    struct dps_mqtt_request_topic t = {0};
    struct span rest, key, value;
    bool seen_rid = false, seen_op = false, has_eq;

    if (has_prefix(topic, len, DPS_MQTT_REGISTER_TOPIC)) {
        t.kind = DPS_MQTT_REGISTER;
        rest = (struct span){topic + strlen(DPS_MQTT_REGISTER_TOPIC),
                             len - strlen(DPS_MQTT_REGISTER_TOPIC)};
    } else if (has_prefix(topic, len, DPS_MQTT_POLL_TOPIC)) {
        t.kind = DPS_MQTT_POLL;
        rest =
            (struct span){topic + strlen(DPS_MQTT_POLL_TOPIC), len - strlen(DPS_MQTT_POLL_TOPIC)};
    } else {
        return dps_error_set(err, DPS_ERR_NOT_FOUND,
                             "topic is not a provisioning request: publish to '%s?$rid={rid}' "
                             "or '%s?$rid={rid}&operationId={id}'",
                             DPS_MQTT_REGISTER_TOPIC, DPS_MQTT_POLL_TOPIC);
    }
    if (rest.n > 0 && rest.p[0] != '?')
        return dps_error_set(
            err, DPS_ERR_NOT_FOUND, "topic is not a provisioning request: '?' must follow '%s'",
            t.kind == DPS_MQTT_REGISTER ? DPS_MQTT_REGISTER_TOPIC : DPS_MQTT_POLL_TOPIC);
    if (rest.n > 0) {
        rest.p++;
        rest.n--;
    }
    while (next_pair(&rest, &key, &value, &has_eq)) {
        if (key.n == 0 && !has_eq)
            continue; /* "&&" */
        if (!has_eq)
            return dps_error_set(err, DPS_ERR_INVAL, "topic parameter '%.*s' has no '='",
                                 (int)(key.n > 64 ? 64 : key.n), key.p);
        if (span_eq(key, "$rid")) {
            if (seen_rid)
                return dps_error_set(err, DPS_ERR_INVAL, "topic repeats '$rid'");
            if (value.n > DPS_MQTT_RID_MAX)
                return dps_error_set(err, DPS_ERR_INVAL,
                                     "topic '$rid' is %zu bytes, over the limit of %d", value.n,
                                     DPS_MQTT_RID_MAX);
            seen_rid = true;
            t.rid = value.n ? value.p : NULL;
            t.rid_len = value.n;
        } else if (t.kind == DPS_MQTT_POLL && span_eq(key, "operationId")) {
            if (seen_op)
                return dps_error_set(err, DPS_ERR_INVAL, "topic repeats 'operationId'");
            if (value.n > DPS_MQTT_OPERATION_ID_MAX)
                return dps_error_set(err, DPS_ERR_INVAL,
                                     "topic 'operationId' is %zu bytes, over the limit of %d",
                                     value.n, DPS_MQTT_OPERATION_ID_MAX);
            seen_op = true;
            t.operation_id = value.n ? value.p : NULL;
            t.operation_id_len = value.n;
        }
    }
    if (t.kind == DPS_MQTT_POLL && t.operation_id_len == 0)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "poll topic has no 'operationId': expected "
                             "'%s?$rid={rid}&operationId={id}'",
                             DPS_MQTT_POLL_TOPIC);
    *out = t;
    return DPS_OK;
}

size_t dps_mqtt_request_topic_build(char *buf, size_t cap, enum dps_mqtt_request kind,
                                    const char *rid, const char *operation_id)
{
    struct out o = {buf, cap, 0};

    out_str(&o, kind == DPS_MQTT_POLL ? DPS_MQTT_POLL_TOPIC : DPS_MQTT_REGISTER_TOPIC);
    out_str(&o, "?$rid=");
    out_str(&o, rid);
    if (kind == DPS_MQTT_POLL) {
        out_str(&o, "&operationId=");
        out_str(&o, operation_id);
    }
    return out_finish(&o);
}

bool dps_mqtt_filter_is_supported(const char *filter, size_t len)
{
    return span_eq((struct span){filter, len}, DPS_MQTT_RESPONSE_FILTER);
}

size_t dps_mqtt_response_topic(char *buf, size_t cap, int status, const char *rid, size_t rid_len,
                               long retry_after)
{
    struct out o = {buf, cap, 0};
    char num[24];

    if (status < 100 || status > 999 || rid_len > DPS_MQTT_RID_MAX || retry_after < -1 ||
        retry_after > 999999999)
        return 0;
    out_str(&o, DPS_MQTT_RESPONSE_PREFIX);
    snprintf(num, sizeof(num), "%d", status);
    out_str(&o, num);
    out_str(&o, "/?$rid=");
    out_raw(&o, rid, rid_len);
    if (retry_after >= 0) {
        snprintf(num, sizeof(num), "%ld", retry_after);
        out_str(&o, "&retry-after=");
        out_str(&o, num);
    }
    return out_finish(&o);
}

/* Reads 1..max decimal digits that make up all of s. */
static bool parse_digits(struct span s, size_t max, long *out)
{
    long v = 0;

    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return true;
}

int dps_mqtt_response_topic_parse(const char *topic, size_t len, struct dps_mqtt_response *out,
                                  struct dps_error *err)
{
    struct dps_mqtt_response r = {.retry_after = -1};
    struct span rest, key, value;
    bool seen_rid = false, has_eq;
    long status;

    if (!has_prefix(topic, len, DPS_MQTT_RESPONSE_PREFIX))
        return dps_error_set(err, DPS_ERR_INVAL, "response topic does not start with '%s'",
                             DPS_MQTT_RESPONSE_PREFIX);
    rest = (struct span){topic + strlen(DPS_MQTT_RESPONSE_PREFIX),
                         len - strlen(DPS_MQTT_RESPONSE_PREFIX)};
    if (rest.n < 5 || !parse_digits((struct span){rest.p, 3}, 3, &status) || rest.p[3] != '/' ||
        rest.p[4] != '?')
        return dps_error_set(err, DPS_ERR_INVAL,
                             "response topic has no '{status}/?' of three digits after '%s'",
                             DPS_MQTT_RESPONSE_PREFIX);
    r.status = (int)status;
    rest.p += 5;
    rest.n -= 5;
    while (next_pair(&rest, &key, &value, &has_eq)) {
        if (!has_eq)
            return dps_error_set(err, DPS_ERR_INVAL, "response topic parameter has no '='");
        if (span_eq(key, "$rid")) {
            if (seen_rid)
                return dps_error_set(err, DPS_ERR_INVAL, "response topic repeats '$rid'");
            seen_rid = true;
            r.rid = value.n ? value.p : NULL;
            r.rid_len = value.n;
        } else if (span_eq(key, "retry-after")) {
            if (r.retry_after >= 0 || !parse_digits(value, 9, &r.retry_after))
                return dps_error_set(err, DPS_ERR_INVAL,
                                     "response topic 'retry-after' is repeated or not digits");
        }
    }
    if (!seen_rid)
        return dps_error_set(err, DPS_ERR_INVAL, "response topic has no '$rid'");
    *out = r;
    return DPS_OK;
}
