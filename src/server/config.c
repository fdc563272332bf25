/* SPDX-License-Identifier: MIT */
/*
 * The directive table and the three readers that fill struct config from
 * it (file, environment, command line), plus the help and reference
 * writers. Adding a directive means adding one row to `directives[]` and
 * one field to struct config.
 */
#include "core/common.h"
#include "server/config.h"

#include "server/region.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>

enum dtype {
    T_STRING,   /* any non-empty string up to MAX_VALUE bytes */
    T_LISTEN,   /* ADDR:PORT */
    T_INT,      /* integer in [min, max] */
    T_SIZE,     /* bytes, with an optional K/M suffix (1024-based) */
    T_DURATION, /* seconds, with an optional s/m/h suffix */
    T_ENUM,     /* one of a '|'-separated list of words, stored as its index */
    T_HUB,      /* HOST[,weight=N][,location=L][,apply=true|false] */
    T_REGION,   /* CIDR=LOCATION */
};

enum dflags {
    D_REPEAT = 1 << 0,   /* may be given several times; values accumulate */
    D_REQUIRED = 1 << 1, /* must be given to run */
    D_NO_FILE = 1 << 2,  /* not accepted inside the config file (`config` itself) */
};

struct directive {
    const char *name;
    enum dtype type;
    size_t offset;
    const char *def;     /* default, as text (NULL: unset) */
    long min, max;       /* T_INT, T_SIZE, T_DURATION bounds */
    const char *choices; /* T_ENUM */
    unsigned flags;
    const char *arg; /* placeholder in help, e.g. "DIR" */
    const char *help;
};

#define MAX_VALUE 4096
#define MAX_LINE 8192
#define MAX_REPEAT 256

#define F(field) offsetof(struct config, field)

static const struct directive directives[] = {
    {"config", T_STRING, F(config), NULL, 0, 0, NULL, D_NO_FILE, "FILE",
     "Read directives from FILE: one `name value` per line, `#` starts a comment. Flags and "
     "environment variables override the file."},
    {"data-dir", T_STRING, F(data_dir), NULL, 0, 0, NULL, D_REQUIRED, "DIR",
     "Data directory. On first start with an empty DIR, dpsd creates the store, a development "
     "TLS CA and server certificate (`tls/`), the ID scope (`id-scope`) and the "
     "`provisioningserviceowner` policy with its connection string (`connection-string`); later "
     "starts reuse them."},
    {"hostname", T_STRING, F(hostname), "localhost", 0, 0, NULL, 0, "NAME",
     "Host name that clients use: the `HostName` of the connection string and a SAN of the "
     "development server certificate."},
    {"https-listen", T_LISTEN, F(https_listen), "0.0.0.0:443", 0, 0, NULL, 0, "ADDR:PORT",
     "Address for HTTPS (service API, device API, portal). The Azure SDK clients only connect "
     "to port 443."},
    {"mqtt-listen", T_LISTEN, F(mqtt_listen), "0.0.0.0:8883", 0, 0, NULL, 0, "ADDR:PORT",
     "Address for the device API over MQTT 3.1.1 on TLS. The Azure SDK clients only connect to "
     "port 8883 (MQTT over WebSocket is served on the HTTPS port)."},
    {"linked-hub", T_HUB, F(linked_hub), NULL, 0, 0, NULL, D_REPEAT,
     "HOST[,weight=N][,location=L][,apply=B]",
     "An IoT hub that devices can be assigned to; repeat for several hubs. `weight` (1-1000, "
     "default 1) is its allocationWeight, `location` its region for `geoLatency`. `apply` "
     "(`true` or `false`, default `true`) is its applyAllocationPolicy: a hub with "
     "`apply=false` receives only devices whose enrollment names it in `iotHubs`. In the "
     "environment, separate several hubs with spaces."},
    {"region", T_REGION, F(region), NULL, 0, 0, NULL, D_REPEAT, "CIDR=LOCATION",
     "The region of the client networks in CIDR (IPv4 or IPv6, e.g. `10.1.0.0/16=westeurope`), "
     "for the `geoLatency` allocation policy: a device connecting from CIDR goes to a linked "
     "hub whose `location` is LOCATION (hashed among them), else hashed over all candidates. "
     "The longest matching prefix wins. Repeat for several networks; in the environment, "
     "separate them with spaces."},
    {"store", T_STRING, F(store), NULL, 0, 0, NULL, 0, "DSN",
     "Store to use: `sqlite:PATH` or `postgres:CONNINFO`. Default `sqlite:DATA_DIR/dpsd.db`."},
    {"workers", T_INT, F(workers), "0", 0, 1024, NULL, 0, "N",
     "Number of worker threads; 0 means one per CPU."},
    {"tls-cert", T_STRING, F(tls_cert), NULL, 0, 0, NULL, 0, "FILE",
     "Server certificate chain (PEM) to use instead of the development certificate; needs "
     "`tls-key`."},
    {"tls-key", T_STRING, F(tls_key), NULL, 0, 0, NULL, 0, "FILE",
     "Private key (PEM) of `tls-cert`."},
    {"log-format", T_ENUM, F(log_format), "text", 0, 0, "text|json", 0, "FORMAT",
     "Log line format on standard error: `text` or `json` (one object per line)."},
    {"log-level", T_ENUM, F(log_level), "info", 0, 0, "error|warning|info|debug", 0, "LEVEL",
     "Least severe level logged: `error`, `warning`, `info` (includes the access log) or "
     "`debug`."},
    {"idle-timeout", T_DURATION, F(idle_timeout), "120", 1, 86400, NULL, 0, "SECONDS",
     "Close a connection that sends nothing for this long (suffix `s`, `m` or `h` allowed). "
     "Must exceed the longest `retry-after` returned to devices."},
    {"max-connections-per-worker", T_INT, F(max_connections_per_worker), "10000", 1, 1000000, NULL,
     0, "N", "Connections one worker accepts at once; further ones are closed at once."},
    {"max-body", T_SIZE, F(max_body), "96K", 1024, 64L * 1024 * 1024, NULL, 0, "BYTES",
     "Largest request body accepted (suffix `K` or `M` allowed); larger ones get 413."},
    {"verification-code-ttl", T_DURATION, F(verification_code_ttl), "3600", 1, 7 * 86400, NULL, 0,
     "SECONDS",
     "How long a CA certificate's proof-of-possession verification code stays usable (suffix "
     "`s`, `m` or `h` allowed)."},
    {"commit-delay", T_INT, F(commit_delay), "3000", 0, 100000, NULL, 0, "MICROSECONDS",
     "Group commit: when registrations arrive faster than one commit, wait this long for more "
     "of them to join the next transaction and share its fsync (fewer syncs per registration, "
     "at most this much added latency). An idle store commits at once; 0 never waits."},
    {"check-commit-reruns", T_ENUM, F(check_commit_reruns), "off", 0, 0, "off|on", 0, "MODE",
     "A check for dpsd's own tests, not for production. With `on` and a SQLite store, every "
     "group commit transaction is rolled back once it has run and runs again with each write in "
     "its own savepoint, as when a write fails after writing, so every write runs twice; every "
     "answer must come out the same. About twice the store work per write. (A PostgreSQL store "
     "always runs each write in its own savepoint, once.)"},
    {"shutdown-timeout", T_DURATION, F(shutdown_timeout), "10", 0, 3600, NULL, 0, "SECONDS",
     "On SIGTERM or SIGINT, how long to let requests in flight finish before exiting."},
};

/* Where a directive's current value came from; a later layer replaces it. */
enum layer { L_DEFAULT = 0, L_FILE, L_ENV, L_FLAG };

struct loader {
    struct config *cfg;
    enum layer set_by[ARRAY_SIZE(directives)];
};

static const struct directive *find_directive(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++)
        if (strlen(directives[i].name) == len && strncmp(directives[i].name, name, len) == 0)
            return &directives[i];
    return NULL;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    long v;

    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parses a number with an optional unit suffix from units ("" for none). */
static int parse_scaled(const char *s, const char *units, const long *scales, long *out)
{
    char num[32];
    size_t len = strlen(s);
    long v, scale = 1;

    if (len == 0 || len >= sizeof(num))
        return -1;
    memcpy(num, s, len + 1);
    const char *u = strchr(units, num[len - 1]);
    if (u && num[len - 1] != '\0') {
        scale = scales[u - units];
        num[len - 1] = '\0';
    }
    if (parse_long(num, &v) != 0 || v < 0 || v > LONG_MAX / scale)
        return -1;
    *out = v * scale;
    return 0;
}

int config_split_listen(const char *s, char *host, size_t hostlen, int *port, struct dps_error *err)
{
    const char *colon, *h = s;
    size_t hl;
    long p;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return dps_error_set(err, DPS_ERR_INVAL, "'%s' is not [IPV6]:PORT", s);
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s' has no ':PORT'", s);
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': write an IPv6 address in brackets, as [::1]:443", s);
    }
    if (hl >= hostlen)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': address too long", s);
    if (parse_long(colon + 1, &p) != 0 || p < 0 || p > 65535)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': port must be a number from 0 to 65535", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return DPS_OK;
}

static bool valid_host(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-._:", s[i]))
            return false;
    return true;
}

int config_hub_parse(const char *s, struct config_hub *out, struct dps_error *err)
{
    struct config_hub h = {.weight = 1, .apply = true};
    const char *p = strchr(s, ','), *end;
    size_t hl = p ? (size_t)(p - s) : strlen(s);

    if (!valid_host(s, hl))
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'%s': hub host must be a DNS name (letters, digits, '-', '.')", s);
    while (p) {
        p++;
        end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 7 && strncmp(p, "weight=", 7) == 0) {
            char num[16];
            long w;
            if (len - 7 >= sizeof(num))
                goto bad_weight;
            memcpy(num, p + 7, len - 7);
            num[len - 7] = '\0';
            if (parse_long(num, &w) != 0 || w < 1 || w > 1000)
                goto bad_weight;
            h.weight = w;
        } else if (len > 9 && strncmp(p, "location=", 9) == 0) {
            if (h.location || len - 9 > 128) {
                free(h.location);
                return dps_error_set(err, DPS_ERR_INVAL,
                                     "'%s': location given twice or longer than 128 bytes", s);
            }
            h.location = xstrndup(p + 9, len - 9);
        } else if (len > 6 && strncmp(p, "apply=", 6) == 0) {
            if (len - 6 == 4 && strncmp(p + 6, "true", 4) == 0) {
                h.apply = true;
            } else if (len - 6 == 5 && strncmp(p + 6, "false", 5) == 0) {
                h.apply = false;
            } else {
                free(h.location);
                return dps_error_set(err, DPS_ERR_INVAL, "'%s': apply must be true or false", s);
            }
        } else {
            free(h.location);
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': unknown hub option '%.*s' (expected weight=N, "
                                 "location=L or apply=true|false)",
                                 s, (int)len, p);
        }
        p = end;
    }
    h.host = xstrndup(s, hl);
    *out = h;
    return DPS_OK;
bad_weight:
    free(h.location);
    return dps_error_set(err, DPS_ERR_INVAL, "'%s': weight must be a number from 1 to 1000", s);
}

void config_hub_release(struct config_hub *h)
{
    if (!h)
        return;
    free(h->host);
    free(h->location);
    h->host = h->location = NULL;
}

static int enum_index(const char *choices, const char *s, long *out)
{
    size_t len = strlen(s);
    long i = 0;

    for (const char *p = choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, s, n) == 0) {
            *out = i;
            return 0;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static void list_clear(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/*
 * Checks value against d and stores it in cfg. A value from a higher layer
 * than the current one replaces it (for repeatable directives: the whole
 * list); within a layer, repeatable values accumulate.
 */
static int apply(struct loader *ld, const struct directive *d, const char *value, enum layer layer,
                 struct dps_error *err)
{
    void *field = (char *)ld->cfg + d->offset;
    size_t idx = (size_t)(d - directives);
    long v = 0;
    static const long size_scales[] = {1024, 1024 * 1024};
    static const long time_scales[] = {1, 60, 3600};

    if (layer < ld->set_by[idx])
        return DPS_OK;
    if (strlen(value) > MAX_VALUE)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': value longer than %d bytes", d->name,
                             MAX_VALUE);
    switch (d->type) {
    case T_STRING:
        if (!*value)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': value is empty", d->name);
        break;
    case T_LISTEN: {
        char host[256];
        int port;
        struct dps_error e;
        if (config_split_listen(value, host, sizeof(host), &port, &e) != DPS_OK)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': %s", d->name, e.msg);
        break;
    }
    case T_INT:
        if (parse_long(value, &v) != 0 || v < d->min || v > d->max)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': expected an integer from %ld to %ld, got '%s'", d->name,
                                 d->min, d->max, value);
        break;
    case T_SIZE:
        if (parse_scaled(value, "KM", size_scales, &v) != 0 || v < d->min || v > d->max)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': expected a size from %ld to %ld bytes (K and M suffixes "
                                 "allowed), got '%s'",
                                 d->name, d->min, d->max, value);
        break;
    case T_DURATION:
        if (parse_scaled(value, "smh", time_scales, &v) != 0 || v < d->min || v > d->max)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': expected a duration from %ld to %ld seconds (s, m and h "
                                 "suffixes allowed), got '%s'",
                                 d->name, d->min, d->max, value);
        break;
    case T_ENUM:
        if (enum_index(d->choices, value, &v) != 0)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': expected one of %s, got '%s'", d->name,
                                 d->choices, value);
        break;
    case T_HUB: {
        struct config_hub h;
        struct dps_error e;
        if (config_hub_parse(value, &h, &e) != DPS_OK)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': %s", d->name, e.msg);
        config_hub_release(&h);
        break;
    }
    case T_REGION: {
        struct region_rule r;
        struct dps_error e;
        if (region_rule_parse(value, &r, &e) != DPS_OK)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': %s", d->name, e.msg);
        region_rule_release(&r);
        break;
    }
    }

    if (d->flags & D_REPEAT) {
        struct config_list *l = field;
        if (ld->set_by[idx] < layer)
            list_clear(l);
        if (l->n >= MAX_REPEAT)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': more than %d values", d->name,
                                 MAX_REPEAT);
        l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
        l->items[l->n++] = xstrdup(value);
    } else if (d->type == T_STRING || d->type == T_LISTEN) {
        char **s = field;
        free(*s);
        *s = xstrdup(value);
    } else {
        *(long *)field = v;
    }
    ld->set_by[idx] = layer;
    return DPS_OK;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int load_file(struct loader *ld, const char *path, struct dps_error *err)
{
    FILE *f = fopen(path, "r");
    char line[MAX_LINE + 2];
    int lineno = 0, rc = DPS_OK;
    struct dps_error e;

    if (!f)
        return dps_error_set(err, DPS_ERR_IO, "cannot read config file '%s': %s", path,
                             strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *p, *name, *value;
        const struct directive *d;

        lineno++;
        if (strlen(line) > MAX_LINE) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "%s:%d: line longer than %d bytes", path, lineno,
                               MAX_LINE);
            goto out;
        }
        if ((p = strchr(line, '#')))
            *p = '\0';
        name = trim(line);
        if (!*name)
            continue;
        value = name;
        while (*value && !isspace((unsigned char)*value))
            value++;
        if (*value)
            *value++ = '\0';
        value = trim(value);
        d = find_directive(name, strlen(name));
        if (!d || (d->flags & D_NO_FILE)) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "%s:%d: unknown directive '%s'", path, lineno,
                               name);
            goto out;
        }
        if (!*value) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "%s:%d: directive '%s' needs a value", path,
                               lineno, name);
            goto out;
        }
        if (apply(ld, d, value, L_FILE, &e) != DPS_OK) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "%s:%d: %s", path, lineno, e.msg);
            goto out;
        }
    }
    if (ferror(f))
        rc = dps_error_set(err, DPS_ERR_IO, "cannot read config file '%s': %s", path,
                           strerror(errno));
out:
    fclose(f);
    return rc;
}

/* DPSD_DATA_DIR -> data-dir; returns NULL when name is not a directive's variable. */
static const struct directive *env_directive(const char *var, size_t len)
{
    char name[64];

    if (len <= 5 || len - 5 >= sizeof(name) || strncmp(var, "DPSD_", 5) != 0)
        return NULL;
    for (size_t i = 5; i < len; i++) {
        char c = var[i];
        name[i - 5] = c == '_' ? '-' : (char)tolower((unsigned char)c);
    }
    return find_directive(name, len - 5);
}

static int load_env(struct loader *ld, char **envp, bool config_only, struct dps_error *err)
{
    struct dps_error e;

    for (char **ep = envp; ep && *ep; ep++) {
        const char *eq = strchr(*ep, '=');
        const struct directive *d;

        if (!eq || strncmp(*ep, "DPSD_", 5) != 0)
            continue;
        d = env_directive(*ep, (size_t)(eq - *ep));
        if (!d)
            return dps_error_set(err, DPS_ERR_INVAL, "unknown environment variable '%.*s'",
                                 (int)(eq - *ep), *ep);
        if (config_only != (strcmp(d->name, "config") == 0))
            continue;
        if (d->flags & D_REPEAT) {
            /* Several values, separated by white space. */
            char *copy = xstrdup(eq + 1), *save = NULL;
            int rc = DPS_OK;
            for (char *tok = strtok_r(copy, " \t\n", &save); tok && rc == DPS_OK;
                 tok = strtok_r(NULL, " \t\n", &save))
                rc = apply(ld, d, tok, L_ENV, &e);
            free(copy);
            if (rc != DPS_OK)
                return dps_error_set(err, rc, "environment variable '%.*s': %s", (int)(eq - *ep),
                                     *ep, e.msg);
        } else if (apply(ld, d, eq + 1, L_ENV, &e) != DPS_OK) {
            return dps_error_set(err, DPS_ERR_INVAL, "environment variable '%.*s': %s",
                                 (int)(eq - *ep), *ep, e.msg);
        }
    }
    return DPS_OK;
}

/*
 * Reads the command line. With config_only, applies only `--config` (which
 * must be known before the file is read) and the action flags; otherwise
 * applies everything else.
 */
static int load_flags(struct loader *ld, int argc, char **argv, bool config_only,
                      struct dps_error *err)
{
    struct dps_error e;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value, *eq;
        const struct directive *d;
        size_t len;

        if (strncmp(arg, "--", 2) != 0)
            return dps_error_set(err, DPS_ERR_INVAL, "unexpected argument '%s' (see dpsd --help)",
                                 arg);
        arg += 2;
        if (strcmp(arg, "help") == 0 || strcmp(arg, "version") == 0 ||
            strcmp(arg, "config-reference") == 0) {
            if (config_only && ld->cfg->action == CONFIG_RUN)
                ld->cfg->action = arg[0] == 'h'   ? CONFIG_HELP
                                  : arg[0] == 'v' ? CONFIG_VERSION
                                                  : CONFIG_REFERENCE;
            continue;
        }
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        d = find_directive(arg, len);
        if (!d)
            return dps_error_set(err, DPS_ERR_INVAL, "unknown option '--%.*s' (see dpsd --help)",
                                 (int)len, arg);
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return dps_error_set(err, DPS_ERR_INVAL, "option '--%s' needs a value", d->name);
            value = argv[++i];
        }
        if (config_only != (strcmp(d->name, "config") == 0))
            continue;
        if (apply(ld, d, value, L_FLAG, &e) != DPS_OK)
            return dps_error_set(err, DPS_ERR_INVAL, "option '--%s': %s", d->name, e.msg);
    }
    return DPS_OK;
}

static void env_name(const struct directive *d, char *buf, size_t len)
{
    size_t i = 0;

    for (i = 0; d->name[i] && i + 1 < len; i++)
        buf[i] = d->name[i] == '-' ? '_' : (char)toupper((unsigned char)d->name[i]);
    buf[i] = '\0';
}

static int check(struct config *cfg, struct dps_error *err)
{
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++) {
        const struct directive *d = &directives[i];
        char env[64];
        if (!(d->flags & D_REQUIRED) || *(char **)((char *)cfg + d->offset))
            continue;
        env_name(d, env, sizeof(env));
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'%s' is required: give --%s, DPSD_%s or '%s' in the config file",
                             d->name, d->name, env, d->name);
    }
    if (!cfg->tls_cert != !cfg->tls_key)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'tls-cert' and 'tls-key' go together: give both or neither");
    if (!cfg->store) {
        size_t n = strlen(cfg->data_dir) + sizeof("sqlite:/dpsd.db");
        cfg->store = xmalloc(n);
        snprintf(cfg->store, n, "sqlite:%s/dpsd.db", cfg->data_dir);
    }
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 1024 ? 1024 : n;
    }
    return DPS_OK;
}

int config_load(struct config *cfg, int argc, char **argv, char **envp, struct dps_error *err)
{
    struct loader ld = {.cfg = cfg};
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++)
        if (directives[i].def &&
            (rc = apply(&ld, &directives[i], directives[i].def, L_DEFAULT, err)) != DPS_OK)
            goto fail;
    /* The file's name comes from the flags or the environment, so read those first. */
    if ((rc = load_flags(&ld, argc, argv, true, err)) != DPS_OK ||
        (rc = load_env(&ld, envp, true, err)) != DPS_OK)
        goto fail;
    if (cfg->action != CONFIG_RUN)
        return DPS_OK;
    if (cfg->config && (rc = load_file(&ld, cfg->config, err)) != DPS_OK)
        goto fail;
    if ((rc = load_env(&ld, envp, false, err)) != DPS_OK ||
        (rc = load_flags(&ld, argc, argv, false, err)) != DPS_OK ||
        (rc = check(cfg, err)) != DPS_OK)
        goto fail;
    return DPS_OK;
fail:
    config_release(cfg);
    return rc;
}

void config_release(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++) {
        void *field = (char *)cfg + directives[i].offset;
        if (directives[i].flags & D_REPEAT)
            list_clear(field);
        else if (directives[i].type == T_STRING || directives[i].type == T_LISTEN)
            free(*(char **)field);
    }
    memset(cfg, 0, sizeof(*cfg));
}

void config_print_help(FILE *f)
{
    fprintf(f, "usage: dpsd --data-dir DIR [--OPTION VALUE]...\n"
               "       dpsd --help | --version | --config-reference\n\n"
               "dpsd is a self-hosted Device Provisioning Service, wire-compatible with Azure IoT "
               "Hub DPS.\n\n"
               "Every option can also be set as DPSD_NAME in the environment or as `name value` in "
               "the\nconfig file; a flag wins over the environment, which wins over the file.\n\n"
               "options:\n");
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++) {
        const struct directive *d = &directives[i];
        char env[64];
        env_name(d, env, sizeof(env));
        fprintf(f, "  --%s %s\n", d->name, d->arg);
        fprintf(f, "      %s\n", d->help);
        fprintf(f, "      (env DPSD_%s%s%s%s%s)\n", env, d->def ? "; default " : "",
                d->def ? d->def : "", d->flags & D_REQUIRED ? "; required" : "",
                d->flags & D_REPEAT ? "; repeatable" : "");
    }
    fprintf(f, "  --help              print this help\n"
               "  --version           print the version\n"
               "  --config-reference  print the configuration reference in Markdown\n");
}

void config_print_reference(FILE *f)
{
    fprintf(f, "## Configuration reference\n\n"
               "<!-- generated by `dpsd --config-reference`; do not edit by hand -->\n\n"
               "Every directive can be given three ways: as a flag `--name value` (or "
               "`--name=value`), as an environment variable `DPSD_NAME`, or as a line `name value` "
               "in the file named by `--config` (`#` starts a comment). A flag wins over the "
               "environment, which wins over the file, which wins over the default. A repeatable "
               "directive given at a higher level replaces the values of the lower ones.\n\n"
               "| Directive | Environment | Default | Description |\n"
               "| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < ARRAY_SIZE(directives); i++) {
        const struct directive *d = &directives[i];
        char env[64];
        env_name(d, env, sizeof(env));
        fprintf(f, "| `--%s %s` | `DPSD_%s` | %s%s%s | %s%s%s |\n", d->name, d->arg, env,
                d->def ? "`" : "", d->def ? d->def : (d->flags & D_REQUIRED ? "required" : "unset"),
                d->def ? "`" : "", d->help, d->flags & D_REPEAT ? " Repeatable." : "",
                d->flags & D_NO_FILE ? " Not accepted inside the file." : "");
    }
}
