/* SPDX-License-Identifier: MIT */
/*
 * Registration id and enrollment group id rules, with messages that point at
 * the character that breaks them.
 */
#include "core/common.h"
#include "core/regid.h"

/* How many bytes of an offending id a message quotes, escapes included. */
#define QUOTE_MAX 60

static int is_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_printable(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* Writes id into buf for a message: printable ASCII as is, other bytes as \xNN, long ids cut. */
static void quote(char *buf, size_t size, const char *id, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)id[i];

        if (o >= QUOTE_MAX) {
            snprintf(buf + o, size - o, "...");
            return;
        }
        if (is_printable(c) && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    }
    buf[o] = '\0';
}

/* One character for a message: 'D', or \xNN for bytes that do not print. */
static void describe(char *buf, size_t size, unsigned char c)
{
    if (is_printable(c))
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte \\x%02x", c);
}

int regid_check(enum regid_kind kind, const char *id, size_t len, int flags, struct dps_error *err)
{
    const char *what = kind == REGID_ENROLLMENT_GROUP ? "enrollment group id" : "registration id";
    const char *allowed = flags & REGID_ALLOW_UPPER
                              ? "ids are letters, digits and '-', '.', '_', ':'"
                              : "ids are lower-case letters, digits and '-', '.', '_', ':'";
    char q[QUOTE_MAX + 8], ch[16];
    unsigned char last;

    if (!id || len == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "%s is empty", what);
    if (len > REGID_MAX) {
        quote(q, sizeof(q), id, len);
        return dps_error_set(err, DPS_ERR_INVAL,
                             "%s '%s' is %zu characters long: at most %d are allowed", what, q, len,
                             REGID_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];

        if (is_lower(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == ':')
            continue;
        if (is_upper(c) && (flags & REGID_ALLOW_UPPER))
            continue;
        quote(q, sizeof(q), id, len);
        describe(ch, sizeof(ch), c);
        return dps_error_set(err, DPS_ERR_INVAL, "%s '%s' has %s%s at position %zu: %s", what, q,
                             is_upper(c) ? "upper-case " : "", ch, i + 1, allowed);
    }
    last = (unsigned char)id[len - 1];
    if (!is_lower(last) && !is_upper(last) && !is_digit(last) && last != '-') {
        quote(q, sizeof(q), id, len);
        return dps_error_set(err, DPS_ERR_INVAL,
                             "%s '%s' ends with '%c': the last character must be a letter, a "
                             "digit or '-'",
                             what, q, last);
    }
    return DPS_OK;
}

int regid_validate(const char *id, size_t len, struct dps_error *err)
{
    return regid_check(REGID_REGISTRATION, id, len, 0, err);
}

int regid_group_validate(const char *id, size_t len, struct dps_error *err)
{
    return regid_check(REGID_ENROLLMENT_GROUP, id, len, 0, err);
}
