/* SPDX-License-Identifier: MIT */
/*
 * `--region CIDR=LOCATION` rules and the longest-prefix lookup of a client
 * address among them (server/region.h).
 */
#include "core/common.h"
#include "server/region.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses a bare address into family and bytes; IPv4-mapped IPv6 becomes IPv4. */
static int parse_addr(const char *s, int *family, unsigned char addr[16])
{
    unsigned char buf[16];

    if (inet_pton(AF_INET, s, buf) == 1) {
        memcpy(addr, buf, 4);
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, buf) == 1) {
        if (memcmp(buf, v4_mapped, sizeof(v4_mapped)) == 0) {
            memcpy(addr, buf + 12, 4);
            *family = AF_INET;
        } else {
            memcpy(addr, buf, 16);
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

/* True when the first prefix bits of a and b are equal. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int region_rule_parse(const char *spec, struct region_rule *out, struct dps_error *err)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *eq = strchr(spec, '='), *slash;
    const char *loc;
    struct region_rule r = {0};
    size_t alen, llen;

    if (!eq || eq == spec)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': expected CIDR=LOCATION", spec);
    loc = eq + 1;
    llen = strlen(loc);
    if (llen == 0 || llen > REGION_LOCATION_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': location must be 1 to %d bytes", spec,
                             REGION_LOCATION_MAX);
    for (size_t i = 0; i < llen; i++)
        if (!isalnum((unsigned char)loc[i]) && !strchr("-_.", loc[i]))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': location may hold letters, digits, '-', '_' and '.'", spec);
    slash = memchr(spec, '/', (size_t)(eq - spec));
    alen = (size_t)((slash ? slash : eq) - spec);
    if (alen >= sizeof(addr))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': network address too long", spec);
    memcpy(addr, spec, alen);
    addr[alen] = '\0';
    if (parse_addr(addr, &r.family, r.net) != 0)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': '%s' is not an IPv4 or IPv6 address", spec,
                             addr);
    if (r.family == AF_INET && strchr(addr, ':') != NULL)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s': write an IPv4-mapped network as plain IPv4",
                             spec);
    int max = r.family == AF_INET ? 32 : 128;
    r.prefix = max;
    if (slash) {
        char *end;
        long v;

        if (slash + 1 == eq || !isdigit((unsigned char)slash[1]))
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': prefix length must be 0 to %d", spec,
                                 max);
        errno = 0;
        v = strtol(slash + 1, &end, 10);
        if (errno || end != eq || v < 0 || v > max)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s': prefix length must be 0 to %d", spec,
                                 max);
        r.prefix = (int)v;
    }
    /* Host bits: the address must equal its own network. */
    {
        unsigned char masked[16] = {0};
        int bytes = max / 8;

        memcpy(masked, r.net, (size_t)bytes);
        for (int b = r.prefix; b < max; b++)
            masked[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
        if (memcmp(masked, r.net, (size_t)bytes) != 0)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'%s': the address has bits set beyond the /%d prefix", spec,
                                 r.prefix);
    }
    r.location = xstrdup(loc);
    *out = r;
    return DPS_OK;
}

void region_rule_release(struct region_rule *r)
{
    if (!r)
        return;
    free(r->location);
    memset(r, 0, sizeof(*r));
}

const char *region_lookup(const struct region_rule *rules, size_t n, const char *peer)
{
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bytes[16];
    const char *start, *end;
    const struct region_rule *best = NULL;
    int family;

    if (!peer || n == 0)
        return NULL;
    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    } else {
        start = peer;
        end = strrchr(peer, ':');
        /* More than one ':' without brackets: a bare IPv6 address. */
        if (end && strchr(peer, ':') != end)
            end = NULL;
        if (!end)
            end = peer + strlen(peer);
    }
    if (!end || (size_t)(end - start) >= sizeof(addr))
        return NULL;
    memcpy(addr, start, (size_t)(end - start));
    addr[end - start] = '\0';
    if (parse_addr(addr, &family, bytes) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (rules[i].family != family || !prefix_equal(rules[i].net, bytes, rules[i].prefix))
            continue;
        if (!best || rules[i].prefix > best->prefix)
            best = &rules[i];
    }
    return best ? best->location : NULL;
}
