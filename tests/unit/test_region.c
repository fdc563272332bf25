/* SPDX-License-Identifier: MIT */
/*
 * `--region CIDR=LOCATION` rules: parsing (IPv4, IPv6, single hosts, bad
 * prefixes, host bits, bad locations) and the longest-prefix lookup of a
 * client "ADDR:PORT" (IPv4, bracketed IPv6, IPv4-mapped IPv6, no match).
 */
#include "core/common.h"

#include <sys/socket.h>

#include "../t.h"
#include "server/region.h"

static void test_parse(void)
{
    struct region_rule r = {0};
    struct dps_error err = {0};

    ok_int(region_rule_parse("10.1.0.0/16=westeurope", &r, &err), DPS_OK);
    ok_int(r.family, AF_INET);
    ok_int(r.prefix, 16);
    ok_str(r.location, "westeurope");
    region_rule_release(&r);
    ok_int(region_rule_parse("192.0.2.7=eastus", &r, &err), DPS_OK);
    ok_int(r.prefix, 32);
    region_rule_release(&r);
    ok_int(region_rule_parse("2001:db8::/32=eastus", &r, &err), DPS_OK);
    ok_int(r.family, AF_INET6);
    ok_int(r.prefix, 32);
    region_rule_release(&r);
    ok_int(region_rule_parse("0.0.0.0/0=anywhere", &r, &err), DPS_OK);
    region_rule_release(&r);

    ok_int(region_rule_parse("10.1.0.0/16", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "expected CIDR=LOCATION") != NULL);
    ok_int(region_rule_parse("=westeurope", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("10.1.0.0/16=", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("10.1.0.0/16=west europe", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "location may hold") != NULL);
    ok_int(region_rule_parse("10.1.0.0/33=x", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "prefix length must be 0 to 32") != NULL);
    ok_int(region_rule_parse("10.1.0.0/=x", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("10.1.0.0/-1=x", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("10.1.0.0/1x=x", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("2001:db8::/129=x", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("10.1.2.0/16=x", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "bits set beyond the /16 prefix") != NULL);
    ok_int(region_rule_parse("10.1.0.256/24=x", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "is not an IPv4 or IPv6 address") != NULL);
    ok_int(region_rule_parse("example.net=x", &r, &err), DPS_ERR_INVAL);
    ok_int(region_rule_parse("::ffff:10.0.0.0/104=x", &r, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "plain IPv4") != NULL);
end:
    region_rule_release(&r);
}

static void test_lookup(void)
{
    static const char *const specs[] = {
        "10.0.0.0/8=eastus",   "10.1.0.0/16=westeurope",  "10.1.2.0/24=northeurope",
        "10.0.0.0/8=shadowed", "2001:db8::/32=japaneast", "127.0.0.1=local",
    };
    struct region_rule rules[6] = {{0}};
    size_t n = 0;

    for (; n < ARRAY_SIZE(specs); n++)
        ok_int(region_rule_parse(specs[n], &rules[n], NULL), DPS_OK);
    ok_str(region_lookup(rules, n, "10.9.9.9:5000"), "eastus");
    ok_str(region_lookup(rules, n, "10.1.9.9:5000"), "westeurope");
    ok_str(region_lookup(rules, n, "10.1.2.3:5000"), "northeurope");
    ok_str(region_lookup(rules, n, "10.1.2.3"), "northeurope");
    ok_str(region_lookup(rules, n, "[::ffff:10.1.2.3]:443"), "northeurope");
    ok_str(region_lookup(rules, n, "[2001:db8:1::5]:443"), "japaneast");
    ok_str(region_lookup(rules, n, "2001:db8:1::5"), "japaneast");
    ok_str(region_lookup(rules, n, "127.0.0.1:1"), "local");
    ok(region_lookup(rules, n, "127.0.0.2:1") == NULL);
    ok(region_lookup(rules, n, "[2001:db9::1]:443") == NULL);
    ok(region_lookup(rules, n, "unknown") == NULL);
    ok(region_lookup(rules, n, "[::1") == NULL);
    ok(region_lookup(rules, n, NULL) == NULL);
    ok(region_lookup(rules, 0, "10.1.2.3:1") == NULL);
end:
    for (size_t i = 0; i < n; i++)
        region_rule_release(&rules[i]);
}

int main(void)
{
    subtest("parse CIDR=LOCATION", test_parse);
    subtest("longest prefix lookup", test_lookup);
    return t_done();
}
