/* SPDX-License-Identifier: MIT */
/*
 * Client network regions for geoLatency allocation: `--region CIDR=LOCATION`
 * rules that map the address a device connects from to a region name, which
 * allocation matches against the linked hubs' `location`. A documented
 * approximation of Azure's latency measurement; no lookups leave the process.
 */
#ifndef DPS_SERVER_REGION_H
#define DPS_SERVER_REGION_H

#include <stddef.h>

#include "dps/error.h"

/* Longest LOCATION of a rule, in bytes (as a linked hub's location). */
#define REGION_LOCATION_MAX 128

/* One `CIDR=LOCATION` rule. */
struct region_rule {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char net[16]; /* the network address (4 bytes for AF_INET), host bits zero */
    int prefix;            /* prefix length: 0..32 for AF_INET, 0..128 for AF_INET6 */
    char *location;        /* owned */
};

/*
 * Parses one `CIDR=LOCATION` rule, e.g. "10.1.0.0/16=westeurope" or
 * "2001:db8::/32=eastus". An address without "/N" is a single host. Host
 * bits set in the address are an error (they usually mean a typo).
 *
 * spec: borrowed.
 * out:  on DPS_OK, the rule; release with region_rule_release().
 * err:  on failure, names the part of spec at fault.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL.
 */
int region_rule_parse(const char *spec, struct region_rule *out, struct dps_error *err);

/* Frees the location of r and zeroes it; r may be NULL. */
void region_rule_release(struct region_rule *r);

/*
 * The region of a client address: the location of the rule with the
 * longest prefix that contains it (the first such rule on a tie). An
 * IPv4-mapped IPv6 address ("::ffff:10.1.2.3") matches IPv4 rules.
 *
 * rules: n rules; borrowed.
 * peer:  "ADDR:PORT", "[ADDR6]:PORT" or a bare address; may be NULL.
 *
 * Returns: the location (borrowed from rules), or NULL when peer is NULL,
 * unparsable or in no rule's network.
 */
const char *region_lookup(const struct region_rule *rules, size_t n, const char *peer);

#endif
