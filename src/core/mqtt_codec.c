/* SPDX-License-Identifier: MIT */
/*
 * The MQTT 3.1.1 decoder and encoders. The decoder reads a packet with a
 * bounded cursor and refuses the first thing the specification forbids; the
 * encoders run the same field walk twice, once to measure and once to write.
 */
#include "core/common.h"
#include "core/mqtt_codec.h"

#include <stdarg.h>

const struct mqtt_limits mqtt_default_limits = {
    .max_packet = 64 * 1024,
    .max_topic = 1024,
    .max_client_id = 256,
};

static const char *const type_names[] = {
    [MQTT_CONNECT] = "CONNECT",   [MQTT_CONNACK] = "CONNACK",
    [MQTT_PUBLISH] = "PUBLISH",   [MQTT_PUBACK] = "PUBACK",
    [MQTT_PUBREC] = "PUBREC",     [MQTT_PUBREL] = "PUBREL",
    [MQTT_PUBCOMP] = "PUBCOMP",   [MQTT_SUBSCRIBE] = "SUBSCRIBE",
    [MQTT_SUBACK] = "SUBACK",     [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
    [MQTT_UNSUBACK] = "UNSUBACK", [MQTT_PINGREQ] = "PINGREQ",
    [MQTT_PINGRESP] = "PINGRESP", [MQTT_DISCONNECT] = "DISCONNECT",
};

const char *mqtt_type_name(int type)
{
    if (type <= 0 || (size_t)type >= ARRAY_SIZE(type_names))
        return "unknown";
    return type_names[type];
}

/* The fixed-header flags every type but PUBLISH must carry (§2.2.2). */
static uint8_t required_flags(enum mqtt_type type)
{
    switch (type) {
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
    case MQTT_PUBREL:
        return 0x2;
    default:
        return 0;
    }
}

/* ---- decoding ---- */

/* A cursor over the variable header and payload of one complete packet. */
struct reader {
    const uint8_t *p;
    size_t len;
    size_t off;
    const char *packet; /* type name, for messages */
    struct dps_error *err;
};

static int invalid(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills the error with "PACKET what" and returns MQTT_INVALID. */
static int invalid(struct reader *r, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    dps_error_set(r->err, DPS_ERR_PROTOCOL, "%s %s", r->packet, what);
    return MQTT_INVALID;
}

static int too_large(struct reader *r, const char *field, size_t len, size_t max)
{
    dps_error_set(r->err, DPS_ERR_TOO_LARGE, "%s '%s' is %zu bytes, over the limit of %zu",
                  r->packet, field, len, max);
    return MQTT_INVALID;
}

/* The readers zero *out on failure too, so that no caller sees an unset value. */
static int read_u8(struct reader *r, const char *field, uint8_t *out)
{
    *out = 0;
    if (r->len - r->off < 1)
        return invalid(r, "ends before '%s'", field);
    *out = r->p[r->off++];
    return 0;
}

static int read_u16(struct reader *r, const char *field, uint16_t *out)
{
    *out = 0;
    if (r->len - r->off < 2)
        return invalid(r, "ends before '%s'", field);
    *out = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
    r->off += 2;
    return 0;
}

static int read_packet_id(struct reader *r, uint16_t *out)
{
    uint16_t id;

    if (read_u16(r, "packet id", &id) < 0)
        return MQTT_INVALID;
    if (id == 0)
        return invalid(r, "'%s' is 0", "packet id");
    *out = id;
    return 0;
}

/* A field with a two-byte length prefix (§1.5.3 and §1.5.4 share the framing). */
static int read_bytes(struct reader *r, const char *field, struct mqtt_bytes *out)
{
    uint16_t n;

    if (read_u16(r, field, &n) < 0)
        return MQTT_INVALID;
    if (r->len - r->off < n)
        return invalid(r, "'%s' runs past the end of the packet", field);
    out->ptr = n ? r->p + r->off : NULL;
    out->len = n;
    r->off += n;
    return 0;
}

/*
 * Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) without U+0000, as §1.5.3 requires. Returns the offset of
 * the first bad byte, or len when the string is good.
 */
static size_t utf8_bad_offset(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp, min;
        size_t need;

        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i - 1 < need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return len;
}

static int read_str(struct reader *r, const char *field, struct mqtt_str *out)
{
    struct mqtt_bytes b;
    size_t bad;

    if (read_bytes(r, field, &b) < 0)
        return MQTT_INVALID;
    bad = utf8_bad_offset(b.ptr, b.len);
    if (bad < b.len) {
        dps_error_set(r->err, DPS_ERR_PROTOCOL, "%s '%s' %s at byte %zu", r->packet, field,
                      b.ptr[bad] == 0 ? "holds U+0000" : "is not valid UTF-8", bad);
        return MQTT_INVALID;
    }
    out->ptr = (const char *)b.ptr;
    out->len = b.len;
    return 0;
}

/* A topic name (PUBLISH, will topic): §4.7.3, at least one byte and no wildcards. */
static int check_topic_name(struct reader *r, const char *field, const struct mqtt_str *t,
                            const struct mqtt_limits *lim)
{
    if (t->len == 0)
        return invalid(r, "'%s' is empty", field);
    if (t->len > lim->max_topic)
        return too_large(r, field, t->len, lim->max_topic);
    if (memchr(t->ptr, '+', t->len) || memchr(t->ptr, '#', t->len))
        return invalid(r, "'%s' holds a wildcard ('+' or '#')", field);
    return 0;
}

/* A topic filter: §4.7.1, '#' last and alone in its level, '+' alone in its level. */
static int check_topic_filter(struct reader *r, const struct mqtt_str *f,
                              const struct mqtt_limits *lim)
{
    if (f->len == 0)
        return invalid(r, "'%s' is empty", "topic filter");
    if (f->len > lim->max_topic)
        return too_large(r, "topic filter", f->len, lim->max_topic);
    for (size_t i = 0; i < f->len; i++) {
        char c = f->ptr[i];
        bool level_start = i == 0 || f->ptr[i - 1] == '/';
        bool level_end = i + 1 == f->len || f->ptr[i + 1] == '/';

        if (c == '#' && (!level_start || i + 1 != f->len))
            return invalid(r, "'%s' has '#' other than as its whole last level", "topic filter");
        if (c == '+' && (!level_start || !level_end))
            return invalid(r, "'%s' has '+' that is not a whole level", "topic filter");
    }
    return 0;
}

static int decode_connect(struct reader *r, const struct mqtt_limits *lim, struct mqtt_connect *c)
{
    struct mqtt_str name;
    uint8_t flags;

    if (read_str(r, "protocol name", &name) < 0)
        return MQTT_INVALID;
    if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0)
        return invalid(r, "'protocol name' is 'MQIsdp': MQTT 3.1 is not supported, only 3.1.1");
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0)
        return invalid(r, "'protocol name' is not 'MQTT'");
    if (read_u8(r, "protocol level", &c->level) < 0)
        return MQTT_INVALID;
    if (c->level != MQTT_PROTOCOL_LEVEL) {
        dps_error_set(r->err, DPS_ERR_PROTOCOL,
                      "CONNECT 'protocol level' is %u: only 4 (MQTT 3.1.1) is supported", c->level);
        return MQTT_UNSUPPORTED_LEVEL;
    }
    if (read_u8(r, "connect flags", &flags) < 0)
        return MQTT_INVALID;
    if (flags & 0x01)
        return invalid(r, "'%s' has the reserved bit set", "connect flags");
    c->clean_session = flags & 0x02;
    c->will = flags & 0x04;
    c->will_qos = (flags >> 3) & 0x03;
    c->will_retain = flags & 0x20;
    c->has_password = flags & 0x40;
    c->has_username = flags & 0x80;
    if (!c->will && (c->will_qos || c->will_retain))
        return invalid(r, "'%s' set will QoS or will retain without a will", "connect flags");
    if (c->will_qos > 2)
        return invalid(r, "'%s' ask for will QoS 3", "connect flags");
    if (c->has_password && !c->has_username)
        return invalid(r, "'%s' set the password flag without the user name flag", "connect flags");
    if (read_u16(r, "keep alive", &c->keep_alive) < 0)
        return MQTT_INVALID;
    if (read_str(r, "client id", &c->client_id) < 0)
        return MQTT_INVALID;
    if (c->client_id.len > lim->max_client_id)
        return too_large(r, "client id", c->client_id.len, lim->max_client_id);
    if (c->will) {
        if (read_str(r, "will topic", &c->will_topic) < 0 ||
            check_topic_name(r, "will topic", &c->will_topic, lim) < 0 ||
            read_bytes(r, "will message", &c->will_message) < 0)
            return MQTT_INVALID;
    }
    if (c->has_username && read_str(r, "user name", &c->username) < 0)
        return MQTT_INVALID;
    if (c->has_password && read_bytes(r, "password", &c->password) < 0)
        return MQTT_INVALID;
    return 0;
}

static int decode_connack(struct reader *r, struct mqtt_connack *a)
{
    uint8_t ack_flags, code;

    if (read_u8(r, "acknowledge flags", &ack_flags) < 0 || read_u8(r, "return code", &code) < 0)
        return MQTT_INVALID;
    if (ack_flags & 0xfe)
        return invalid(r, "'%s' has reserved bits set", "acknowledge flags");
    if (code > MQTT_CONNACK_NOT_AUTHORIZED)
        return invalid(r, "'%s' is not one of 0 to 5", "return code");
    if ((ack_flags & 1) && code != MQTT_CONNACK_ACCEPTED)
        return invalid(r, "sets '%s' on a refused connection", "session present");
    a->session_present = ack_flags & 1;
    a->return_code = code;
    return 0;
}

static int decode_publish(struct reader *r, uint8_t flags, const struct mqtt_limits *lim,
                          struct mqtt_publish *p)
{
    p->dup = flags & 0x08;
    p->qos = (flags >> 1) & 0x03;
    p->retain = flags & 0x01;
    p->packet_id = 0;
    if (read_str(r, "topic", &p->topic) < 0 || check_topic_name(r, "topic", &p->topic, lim) < 0)
        return MQTT_INVALID;
    if (p->qos > 0 && read_packet_id(r, &p->packet_id) < 0)
        return MQTT_INVALID;
    p->payload.len = r->len - r->off;
    p->payload.ptr = p->payload.len ? r->p + r->off : NULL;
    r->off = r->len;
    return 0;
}

static int decode_subscribe(struct reader *r, const struct mqtt_limits *lim,
                            struct mqtt_subscribe *s)
{
    if (read_packet_id(r, &s->packet_id) < 0)
        return MQTT_INVALID;
    s->count = 0;
    while (r->off < r->len) {
        struct mqtt_subscription *t;
        uint8_t qos;

        if (s->count == MQTT_MAX_FILTERS) {
            dps_error_set(r->err, DPS_ERR_TOO_LARGE, "SUBSCRIBE carries more than %d topic filters",
                          MQTT_MAX_FILTERS);
            return MQTT_INVALID;
        }
        t = &s->topics[s->count];
        if (read_str(r, "topic filter", &t->filter) < 0 ||
            check_topic_filter(r, &t->filter, lim) < 0 || read_u8(r, "requested QoS", &qos) < 0)
            return MQTT_INVALID;
        if (qos > 2)
            return invalid(r, "'%s' is over 2 or has reserved bits set", "requested QoS");
        t->qos = qos;
        s->count++;
    }
    if (s->count == 0)
        return invalid(r, "carries no '%s'", "topic filter");
    return 0;
}

static int decode_suback(struct reader *r, struct mqtt_suback *s)
{
    if (read_packet_id(r, &s->packet_id) < 0)
        return MQTT_INVALID;
    s->count = r->len - r->off;
    if (s->count == 0)
        return invalid(r, "carries no '%s'", "return code");
    if (s->count > MQTT_MAX_FILTERS) {
        dps_error_set(r->err, DPS_ERR_TOO_LARGE, "SUBACK carries more than %d return codes",
                      MQTT_MAX_FILTERS);
        return MQTT_INVALID;
    }
    for (size_t i = 0; i < s->count; i++) {
        uint8_t code = r->p[r->off++];

        if (code > 2 && code != MQTT_SUBACK_FAILURE)
            return invalid(r, "'%s' is not 0, 1, 2 or 0x80", "return code");
        s->return_codes[i] = code;
    }
    return 0;
}

static int decode_unsubscribe(struct reader *r, const struct mqtt_limits *lim,
                              struct mqtt_unsubscribe *u)
{
    if (read_packet_id(r, &u->packet_id) < 0)
        return MQTT_INVALID;
    u->count = 0;
    while (r->off < r->len) {
        if (u->count == MQTT_MAX_FILTERS) {
            dps_error_set(r->err, DPS_ERR_TOO_LARGE,
                          "UNSUBSCRIBE carries more than %d topic filters", MQTT_MAX_FILTERS);
            return MQTT_INVALID;
        }
        if (read_str(r, "topic filter", &u->filters[u->count]) < 0 ||
            check_topic_filter(r, &u->filters[u->count], lim) < 0)
            return MQTT_INVALID;
        u->count++;
    }
    if (u->count == 0)
        return invalid(r, "carries no '%s'", "topic filter");
    return 0;
}

/*
 * Checks the first byte alone, so that garbage is refused before a length
 * arrives. Returns 0 or MQTT_INVALID.
 */
static int check_first_byte(uint8_t b, struct dps_error *err)
{
    unsigned type = b >> 4, flags = b & 0x0f, qos = (flags >> 1) & 0x03;

    if (type < MQTT_CONNECT || type > MQTT_DISCONNECT) {
        dps_error_set(err, DPS_ERR_PROTOCOL, "packet type %u is reserved", type);
        return MQTT_INVALID;
    }
    if (type == MQTT_PUBLISH && qos == 3) {
        dps_error_set(err, DPS_ERR_PROTOCOL, "PUBLISH asks for QoS 3");
        return MQTT_INVALID;
    }
    if (type == MQTT_PUBLISH && qos == 0 && (flags & 0x08)) {
        dps_error_set(err, DPS_ERR_PROTOCOL, "PUBLISH sets DUP on a QoS 0 message");
        return MQTT_INVALID;
    }
    if (type != MQTT_PUBLISH && flags != required_flags(type)) {
        dps_error_set(err, DPS_ERR_PROTOCOL, "%s has fixed header flags 0x%x, not 0x%x",
                      mqtt_type_name((int)type), flags, required_flags(type));
        return MQTT_INVALID;
    }
    return 0;
}

int mqtt_decode(const uint8_t *buf, size_t len, const struct mqtt_limits *lim,
                struct mqtt_packet *out, struct dps_error *err)
{
    struct mqtt_packet p;
    struct reader r;
    size_t remaining = 0, header, i;
    int rc;

    if (!lim)
        lim = &mqtt_default_limits;
    if (len < 1)
        return MQTT_INCOMPLETE;
    if (check_first_byte(buf[0], err) < 0)
        return MQTT_INVALID;

    /* Remaining length: 7 bits a byte, low group first, at most four bytes (§2.2.3). */
    for (i = 0;; i++) {
        if (i == 4) {
            dps_error_set(err, DPS_ERR_PROTOCOL, "%s remaining length takes more than four bytes",
                          mqtt_type_name(buf[0] >> 4));
            return MQTT_INVALID;
        }
        if (1 + i >= len)
            return MQTT_INCOMPLETE;
        remaining |= (size_t)(buf[1 + i] & 0x7f) << (7 * i);
        if (!(buf[1 + i] & 0x80))
            break;
    }
    header = 2 + i;
    if (remaining > lim->max_packet || header + remaining > lim->max_packet) {
        dps_error_set(err, DPS_ERR_TOO_LARGE, "%s of %zu bytes is over the limit of %zu",
                      mqtt_type_name(buf[0] >> 4), header + remaining, lim->max_packet);
        return MQTT_INVALID;
    }
    if (len - header < remaining)
        return MQTT_INCOMPLETE;

    memset(&p, 0, sizeof(p));
    p.type = buf[0] >> 4;
    p.flags = buf[0] & 0x0f;
    r = (struct reader){buf + header, remaining, 0, mqtt_type_name(p.type), err};

    switch (p.type) {
    case MQTT_CONNECT:
        rc = decode_connect(&r, lim, &p.u.connect);
        break;
    case MQTT_CONNACK:
        rc = decode_connack(&r, &p.u.connack);
        break;
    case MQTT_PUBLISH:
        rc = decode_publish(&r, p.flags, lim, &p.u.publish);
        break;
    case MQTT_SUBSCRIBE:
        rc = decode_subscribe(&r, lim, &p.u.subscribe);
        break;
    case MQTT_SUBACK:
        rc = decode_suback(&r, &p.u.suback);
        break;
    case MQTT_UNSUBSCRIBE:
        rc = decode_unsubscribe(&r, lim, &p.u.unsubscribe);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        rc = read_packet_id(&r, &p.u.packet_id);
        break;
    default: /* PINGREQ, PINGRESP, DISCONNECT: no variable header */
        rc = 0;
        break;
    }
    if (rc < 0)
        return rc;
    if (r.off != r.len) {
        dps_error_set(err, DPS_ERR_PROTOCOL,
                      "%s has %zu bytes after its last field (remaining length %zu)", r.packet,
                      r.len - r.off, r.len);
        return MQTT_INVALID;
    }
    *out = p;
    return (int)(header + remaining);
}

/* ---- encoding ---- */

/* Counts bytes always; writes them only when buf is set (the second pass). */
struct writer {
    uint8_t *buf;
    size_t off;
    bool bad; /* a field that the wire format cannot carry */
};

static void put_u8(struct writer *w, uint8_t v)
{
    if (w->buf)
        w->buf[w->off] = v;
    w->off++;
}

static void put_u16(struct writer *w, uint16_t v)
{
    put_u8(w, (uint8_t)(v >> 8));
    put_u8(w, (uint8_t)v);
}

static void put_raw(struct writer *w, const void *p, size_t n)
{
    if (w->buf && n)
        memcpy(w->buf + w->off, p, n);
    w->off += n;
}

static void put_field(struct writer *w, const void *p, size_t n)
{
    if (n > MQTT_MAX_STRING || (n && !p)) {
        w->bad = true;
        return;
    }
    put_u16(w, (uint16_t)n);
    put_raw(w, p, n);
}

static void put_packet_id(struct writer *w, uint16_t id)
{
    if (id == 0)
        w->bad = true;
    put_u16(w, id);
}

static void put_connect(struct writer *w, const struct mqtt_connect *c)
{
    uint8_t flags = 0;

    if (c->will_qos > 2)
        w->bad = true;
    flags |= c->clean_session ? 0x02 : 0;
    if (c->will)
        flags |= 0x04 | (uint8_t)((c->will_qos & 0x03) << 3) | (c->will_retain ? 0x20 : 0);
    flags |= c->has_password ? 0x40 : 0;
    flags |= c->has_username ? 0x80 : 0;
    put_field(w, "MQTT", 4);
    put_u8(w, MQTT_PROTOCOL_LEVEL);
    put_u8(w, flags);
    put_u16(w, c->keep_alive);
    put_field(w, c->client_id.ptr, c->client_id.len);
    if (c->will) {
        put_field(w, c->will_topic.ptr, c->will_topic.len);
        put_field(w, c->will_message.ptr, c->will_message.len);
    }
    if (c->has_username)
        put_field(w, c->username.ptr, c->username.len);
    if (c->has_password)
        put_field(w, c->password.ptr, c->password.len);
}

static void put_body(struct writer *w, const struct mqtt_packet *p)
{
    switch (p->type) {
    case MQTT_CONNECT:
        put_connect(w, &p->u.connect);
        break;
    case MQTT_CONNACK:
        put_u8(w, p->u.connack.session_present ? 1 : 0);
        put_u8(w, p->u.connack.return_code);
        break;
    case MQTT_PUBLISH:
        if (p->u.publish.qos > 2)
            w->bad = true;
        put_field(w, p->u.publish.topic.ptr, p->u.publish.topic.len);
        if (p->u.publish.qos > 0)
            put_packet_id(w, p->u.publish.packet_id);
        if (p->u.publish.payload.len && !p->u.publish.payload.ptr)
            w->bad = true;
        else
            put_raw(w, p->u.publish.payload.ptr, p->u.publish.payload.len);
        break;
    case MQTT_SUBSCRIBE:
        if (p->u.subscribe.count == 0 || p->u.subscribe.count > MQTT_MAX_FILTERS) {
            w->bad = true;
            break;
        }
        put_packet_id(w, p->u.subscribe.packet_id);
        for (size_t i = 0; i < p->u.subscribe.count; i++) {
            const struct mqtt_subscription *t = &p->u.subscribe.topics[i];

            if (t->qos > 2)
                w->bad = true;
            put_field(w, t->filter.ptr, t->filter.len);
            put_u8(w, t->qos);
        }
        break;
    case MQTT_SUBACK:
        if (p->u.suback.count == 0 || p->u.suback.count > MQTT_MAX_FILTERS) {
            w->bad = true;
            break;
        }
        put_packet_id(w, p->u.suback.packet_id);
        put_raw(w, p->u.suback.return_codes, p->u.suback.count);
        break;
    case MQTT_UNSUBSCRIBE:
        if (p->u.unsubscribe.count == 0 || p->u.unsubscribe.count > MQTT_MAX_FILTERS) {
            w->bad = true;
            break;
        }
        put_packet_id(w, p->u.unsubscribe.packet_id);
        for (size_t i = 0; i < p->u.unsubscribe.count; i++)
            put_field(w, p->u.unsubscribe.filters[i].ptr, p->u.unsubscribe.filters[i].len);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        put_packet_id(w, p->u.packet_id);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    case MQTT_DISCONNECT:
        break;
    default:
        w->bad = true;
        break;
    }
}

size_t mqtt_encode(const struct mqtt_packet *p, uint8_t *buf, size_t cap)
{
    struct writer w = {NULL, 0, false};
    size_t remaining, header, n;
    uint8_t first;

    put_body(&w, p);
    if (w.bad || w.off > MQTT_MAX_REMAINING_LENGTH)
        return 0;
    remaining = w.off;
    header = 2;
    for (n = remaining; n >= 0x80; n >>= 7)
        header++;
    if (header + remaining > cap || !buf)
        return header + remaining;

    first = (uint8_t)(p->type << 4);
    if (p->type == MQTT_PUBLISH)
        first |= (uint8_t)((p->u.publish.dup ? 0x08 : 0) | p->u.publish.qos << 1 |
                           (p->u.publish.retain ? 0x01 : 0));
    else
        first |= required_flags(p->type);
    buf[0] = first;
    n = remaining;
    for (size_t i = 1; i < header; i++) {
        buf[i] = (uint8_t)((n & 0x7f) | (i + 1 < header ? 0x80 : 0));
        n >>= 7;
    }
    w = (struct writer){buf + header, 0, false};
    put_body(&w, p);
    return header + remaining;
}

size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t return_code)
{
    struct mqtt_packet p = {.type = MQTT_CONNACK};

    p.u.connack.session_present = session_present;
    p.u.connack.return_code = return_code;
    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                          size_t count)
{
    struct mqtt_packet p = {.type = MQTT_SUBACK};

    if (count == 0 || count > MQTT_MAX_FILTERS)
        return 0;
    p.u.suback.packet_id = packet_id;
    p.u.suback.count = count;
    memcpy(p.u.suback.return_codes, codes, count);
    return mqtt_encode(&p, buf, cap);
}

static size_t encode_id_only(enum mqtt_type type, uint8_t *buf, size_t cap, uint16_t packet_id)
{
    struct mqtt_packet p = {.type = type};

    p.u.packet_id = packet_id;
    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_unsuback(uint8_t *buf, size_t cap, uint16_t packet_id)
{
    return encode_id_only(MQTT_UNSUBACK, buf, cap, packet_id);
}

size_t mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id)
{
    return encode_id_only(MQTT_PUBACK, buf, cap, packet_id);
}

size_t mqtt_encode_pingresp(uint8_t *buf, size_t cap)
{
    struct mqtt_packet p = {.type = MQTT_PINGRESP};

    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_pingreq(uint8_t *buf, size_t cap)
{
    struct mqtt_packet p = {.type = MQTT_PINGREQ};

    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_disconnect(uint8_t *buf, size_t cap)
{
    struct mqtt_packet p = {.type = MQTT_DISCONNECT};

    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const char *topic, size_t topic_len,
                           const void *payload, size_t payload_len, uint8_t qos, uint16_t packet_id)
{
    struct mqtt_packet p = {.type = MQTT_PUBLISH};

    p.u.publish.topic = (struct mqtt_str){topic, topic_len};
    p.u.publish.payload = (struct mqtt_bytes){payload, payload_len};
    p.u.publish.qos = qos;
    p.u.publish.packet_id = qos > 0 ? packet_id : 0;
    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c)
{
    struct mqtt_packet p = {.type = MQTT_CONNECT};

    p.u.connect = *c;
    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter,
                             uint8_t qos)
{
    struct mqtt_packet p = {.type = MQTT_SUBSCRIBE};

    p.u.subscribe.packet_id = packet_id;
    p.u.subscribe.count = 1;
    p.u.subscribe.topics[0].filter = (struct mqtt_str){filter, strlen(filter)};
    p.u.subscribe.topics[0].qos = qos;
    return mqtt_encode(&p, buf, cap);
}

size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter)
{
    struct mqtt_packet p = {.type = MQTT_UNSUBSCRIBE};

    p.u.unsubscribe.packet_id = packet_id;
    p.u.unsubscribe.count = 1;
    p.u.unsubscribe.filters[0] = (struct mqtt_str){filter, strlen(filter)};
    return mqtt_encode(&p, buf, cap);
}
