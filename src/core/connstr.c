/* SPDX-License-Identifier: MIT */
/* Connection string parsing: split on ';', then on the first '='. */
#include "core/common.h"
#include "core/connstr.h"

#include <openssl/crypto.h>

#include "core/b64.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **p, size_t *n)
{
    while (*n && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_space((*p)[*n - 1]))
        (*n)--;
}

void connstr_free(struct connstr *cs)
{
    if (!cs)
        return;
    if (cs->key) {
        OPENSSL_cleanse(cs->key, strlen(cs->key));
        free(cs->key);
    }
    free(cs->host_name);
    free(cs->key_name);
    free(cs);
}

int connstr_parse(const char *s, size_t len, struct connstr **out, struct dps_error *err)
{
    static const char *const names[] = {"HostName", "SharedAccessKeyName", "SharedAccessKey"};
    struct connstr *cs = NULL;
    size_t pos = 0;
    int rc;

    if (len > CONNSTR_MAX_LEN) {
        rc = dps_error_set(err, DPS_ERR_TOO_LARGE, "connection string is longer than %d bytes",
                           CONNSTR_MAX_LEN);
        goto out;
    }
    if (memchr(s, '\0', len)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "connection string holds a NUL byte");
        goto out;
    }
    cs = calloc(1, sizeof(*cs));
    if (!cs) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    while (pos <= len) {
        const char *part = s + pos, *end = memchr(part, ';', len - pos), *eq, *name, *value;
        size_t part_len = end ? (size_t)(end - part) : len - pos, name_len, value_len;
        char **slot;

        pos += part_len + 1;
        trim(&part, &part_len);
        if (part_len == 0)
            continue;
        eq = memchr(part, '=', part_len);
        if (!eq) {
            rc = dps_error_set(err, DPS_ERR_INVAL,
                               "connection string part '%.*s' has no '=' (expected Name=value)",
                               (int)(part_len > 40 ? 40 : part_len), part);
            goto out;
        }
        name = part;
        name_len = (size_t)(eq - part);
        value = eq + 1;
        value_len = part_len - name_len - 1;
        trim(&name, &name_len);
        trim(&value, &value_len);
        slot = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
            if (strlen(names[i]) == name_len && strncasecmp(names[i], name, name_len) == 0) {
                slot = i == 0 ? &cs->host_name : i == 1 ? &cs->key_name : &cs->key;
                if (*slot) {
                    rc = dps_error_set(err, DPS_ERR_INVAL,
                                       "connection string gives '%s' more than once", names[i]);
                    goto out;
                }
                if (value_len == 0) {
                    rc = dps_error_set(err, DPS_ERR_INVAL, "connection string has an empty '%s'",
                                       names[i]);
                    goto out;
                }
            }
        }
        if (!slot)
            continue; /* unknown names are ignored, as the Azure SDKs do */
        *slot = strndup(value, value_len);
        if (!*slot) {
            rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        const char *v = i == 0 ? cs->host_name : i == 1 ? cs->key_name : cs->key;
        if (!v) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "connection string has no '%s'", names[i]);
            goto out;
        }
    }
    if (!b64_is_valid(cs->key, strlen(cs->key), 0, NULL)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "connection string 'SharedAccessKey' is not base64");
        goto out;
    }
    *out = cs;
    cs = NULL;
    rc = DPS_OK;
out:
    connstr_free(cs);
    return rc;
}
