/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the configuration: defaults, precedence (flag > environment
 * > file > default), validators, config file errors, and the generated
 * reference that docs/configuration.md and README.md must match.
 */
#include "core/common.h"
#include "server/config.h"
#include "../t.h"

#include <stdarg.h>
#include <sys/stat.h>

static char conf_path[512];

static void write_conf(const char *text)
{
    const char *tmp = getenv("DPS_TEST_TMP");
    FILE *f;

    if (!tmp)
        tmp = "/tmp";
    mkdir(tmp, 0755);
    snprintf(conf_path, sizeof(conf_path), "%s/test_config.conf", tmp);
    f = fopen(conf_path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Runs config_load on a NULL-terminated argument list (without argv[0]). */
static int load(struct config *cfg, char **env, struct dps_error *err, ...)
{
    char *argv[32] = {"dpsd"};
    int argc = 1;
    va_list ap;

    va_start(ap, err);
    for (char *a; argc < 31 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    return config_load(cfg, argc, argv, env, err);
}

static void test_defaults(void)
{
    struct config cfg = {0};
    struct dps_error err = {0};

    ok_int(load(&cfg, NULL, &err, "--data-dir", "/var/dps", NULL), DPS_OK);
    ok_int(cfg.action, CONFIG_RUN);
    ok_str(cfg.data_dir, "/var/dps");
    ok_str(cfg.hostname, "localhost");
    ok_str(cfg.https_listen, "0.0.0.0:443");
    ok_str(cfg.mqtt_listen, "0.0.0.0:8883");
    ok_str(cfg.store, "sqlite:/var/dps/dpsd.db");
    ok_int(cfg.max_body, 96 * 1024);
    ok(cfg.workers >= 1);
    ok_int(cfg.linked_hub.n, 0);
    ok(cfg.tls_cert == NULL);
    ok_int(cfg.log_format, CONFIG_LOG_TEXT);
end:
    config_release(&cfg);
}

static void test_precedence(void)
{
    struct config cfg = {0};
    struct dps_error err = {0};
    char *env[] = {"DPSD_HOSTNAME=env.example", "DPSD_WORKERS=3", "PATH=/bin", NULL};

    write_conf("# a comment\n"
               "data-dir /srv/dps   # trailing comment\n"
               "hostname file.example\n"
               "workers 2\n"
               "idle-timeout 2m\n"
               "linked-hub a.example,weight=2\n"
               "linked-hub b.example,location=westus\n");
    ok_int(load(&cfg, env, &err, "--config", conf_path, "--hostname", "flag.example", NULL),
           DPS_OK);
    ok_str(cfg.hostname, "flag.example");
    ok_int(cfg.workers, 3);
    ok_str(cfg.data_dir, "/srv/dps");
    ok_int(cfg.idle_timeout, 120);
    ok_int(cfg.linked_hub.n, 2);
    ok_str(cfg.linked_hub.items[1], "b.example,location=westus");
    config_release(&cfg);

    /* Without the flag the environment wins; a flag list replaces the file's list. */
    ok_int(load(&cfg, env, &err, "--config", conf_path, "--linked-hub=c.example", NULL), DPS_OK);
    ok_str(cfg.hostname, "env.example");
    ok_int(cfg.linked_hub.n, 1);
    ok_str(cfg.linked_hub.items[0], "c.example");
    config_release(&cfg);

    /* The file's name may come from the environment too. */
    char env_conf[600];
    snprintf(env_conf, sizeof(env_conf), "DPSD_CONFIG=%s", conf_path);
    char *env2[] = {env_conf, "DPSD_LINKED_HUB=x.example  y.example,weight=5", NULL};
    ok_int(load(&cfg, env2, &err, NULL), DPS_OK);
    ok_str(cfg.hostname, "file.example");
    ok_int(cfg.workers, 2);
    ok_int(cfg.linked_hub.n, 2);
    ok_str(cfg.linked_hub.items[1], "y.example,weight=5");
end:
    config_release(&cfg);
}

static void test_validators(void)
{
    struct config cfg = {0};
    struct dps_error err = {0};

    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--workers", "many", NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'workers'") && strstr(err.msg, "'many'"));
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--workers", "2000", NULL), DPS_ERR_INVAL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--log-format", "xml", NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, "text|json") != NULL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--linked-hub", "h,weight=0", NULL),
           DPS_ERR_INVAL);
    ok(strstr(err.msg, "weight") != NULL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--linked-hub", "h,colour=red", NULL),
           DPS_ERR_INVAL);
    ok(strstr(err.msg, "colour") != NULL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--region", "10.0.0.0/33=x", NULL),
           DPS_ERR_INVAL);
    ok(strstr(err.msg, "'region'") && strstr(err.msg, "prefix length"));
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--verification-code-ttl", "0", NULL),
           DPS_ERR_INVAL);
    ok(strstr(err.msg, "'verification-code-ttl'") != NULL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--region", "10.0.0.0/8=eastus", "--region",
                "2001:db8::/32=westeurope", "--verification-code-ttl", "2m", NULL),
           DPS_OK);
    ok_int(cfg.region.n, 2);
    ok_str(cfg.region.items[1], "2001:db8::/32=westeurope");
    ok_int(cfg.verification_code_ttl, 120);
    config_release(&cfg);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--https-listen", "localhost", NULL),
           DPS_ERR_INVAL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--https-listen", "1.2.3.4:70000", NULL),
           DPS_ERR_INVAL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--max-body", "10", NULL), DPS_ERR_INVAL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--tls-cert", "c.pem", NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, "tls-key") != NULL);
    ok_int(load(&cfg, NULL, &err, "--hostname", "h", NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'data-dir' is required") != NULL);
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--bogus", "1", NULL), DPS_ERR_INVAL);
    ok_str(err.msg, "unknown option '--bogus' (see dpsd --help)");
    ok_int(load(&cfg, NULL, &err, "--data-dir", NULL), DPS_ERR_INVAL);
    ok_str(err.msg, "option '--data-dir' needs a value");
    ok_int(load(&cfg, NULL, &err, "stray", NULL), DPS_ERR_INVAL);
    char *env[] = {"DPSD_NO_SUCH=1", NULL};
    ok_int(load(&cfg, env, &err, "--data-dir", "d", NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, "DPSD_NO_SUCH") != NULL);

    /* Sizes and durations take suffixes. */
    ok_int(load(&cfg, NULL, &err, "--data-dir", "d", "--max-body", "1M", "--shutdown-timeout", "1h",
                "--https-listen", "[::1]:8443", NULL),
           DPS_OK);
    ok_int(cfg.max_body, 1024 * 1024);
    ok_int(cfg.shutdown_timeout, 3600);
    config_release(&cfg);

    /* --help needs nothing else. */
    ok_int(load(&cfg, NULL, &err, "--help", NULL), DPS_OK);
    ok_int(cfg.action, CONFIG_HELP);
end:
    config_release(&cfg);
}

static void test_bad_lines(void)
{
    struct config cfg = {0};
    struct dps_error err = {0};
    char want[700];

    write_conf("data-dir /x\n\nfrobnicate yes\n");
    ok_int(load(&cfg, NULL, &err, "--config", conf_path, NULL), DPS_ERR_INVAL);
    snprintf(want, sizeof(want), "%s:3: unknown directive 'frobnicate'", conf_path);
    ok_str(err.msg, want);

    write_conf("data-dir /x\nworkers\n");
    ok_int(load(&cfg, NULL, &err, "--config", conf_path, NULL), DPS_ERR_INVAL);
    snprintf(want, sizeof(want), "%s:2: directive 'workers' needs a value", conf_path);
    ok_str(err.msg, want);

    write_conf("idle-timeout forever\n");
    ok_int(load(&cfg, NULL, &err, "--config", conf_path, NULL), DPS_ERR_INVAL);
    ok(strstr(err.msg, ":1: 'idle-timeout'") != NULL);

    write_conf("config /etc/other.conf\n");
    ok_int(load(&cfg, NULL, &err, "--config", conf_path, NULL), DPS_ERR_INVAL);

    ok_int(load(&cfg, NULL, &err, "--config", "/nonexistent/dpsd.conf", NULL), DPS_ERR_IO);
    ok(strstr(err.msg, "'/nonexistent/dpsd.conf'") != NULL);
end:
    config_release(&cfg);
}

static void test_hub_and_listen(void)
{
    struct config_hub h = {0};
    struct dps_error err = {0};
    char host[64];
    int port = 0;

    ok_int(config_hub_parse("hub1.azure-devices.net,weight=7,location=westeurope", &h, &err),
           DPS_OK);
    ok_str(h.host, "hub1.azure-devices.net");
    ok_int(h.weight, 7);
    ok_str(h.location, "westeurope");
    config_hub_release(&h);
    ok_int(config_hub_parse("plain", &h, &err), DPS_OK);
    ok_int(h.weight, 1);
    ok(h.location == NULL);
    ok(h.apply);
    config_hub_release(&h);
    ok_int(config_hub_parse("h.example,apply=false,weight=3", &h, &err), DPS_OK);
    ok(!h.apply);
    ok_int(h.weight, 3);
    config_hub_release(&h);
    ok_int(config_hub_parse("h.example,apply=true", &h, &err), DPS_OK);
    ok(h.apply);
    config_hub_release(&h);
    ok_int(config_hub_parse("h.example,apply=no", &h, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "apply must be true or false") != NULL);
    ok_int(config_hub_parse("h.example,apply=", &h, &err), DPS_ERR_INVAL);
    ok_int(config_hub_parse("bad host", &h, &err), DPS_ERR_INVAL);
    ok_int(config_hub_parse("", &h, &err), DPS_ERR_INVAL);

    ok_int(config_split_listen("[::1]:443", host, sizeof(host), &port, &err), DPS_OK);
    ok_str(host, "::1");
    ok_int(port, 443);
    ok_int(config_split_listen(":8883", host, sizeof(host), &port, &err), DPS_OK);
    ok_str(host, "");
    ok_int(port, 8883);
    ok_int(config_split_listen("::1:443", host, sizeof(host), &port, &err), DPS_ERR_INVAL);
end:
    config_hub_release(&h);
}

/* Reads a whole file; NULL when it cannot. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        return NULL;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

static void test_reference_matches_docs(void)
{
    const char *src = getenv("DPS_SOURCE_DIR");
    char path[512], *ref = NULL, *doc = NULL, *readme = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&ref, &len);

    config_print_reference(m);
    fclose(m);
    ok(src != NULL);
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    doc = slurp(path);
    if (!doc || strcmp(doc, ref) != 0)
        fprintf(stderr, "  docs/configuration.md differs from `dpsd --config-reference`: "
                        "run `make docs`\n");
    ok(doc != NULL);
    ok(strcmp(doc, ref) == 0);

    /* README.md carries the same text between its markers. */
    snprintf(path, sizeof(path), "%s/README.md", src);
    readme = slurp(path);
    ok(readme != NULL);
    const char *begin = strstr(readme, "<!-- config-reference:begin -->\n");
    const char *end_marker = strstr(readme, "<!-- config-reference:end -->");
    ok(begin != NULL && end_marker != NULL);
    begin = strchr(begin, '\n') + 1;
    if ((size_t)(end_marker - begin) != len || memcmp(begin, ref, len) != 0)
        fprintf(stderr, "  README.md between the config-reference markers differs from "
                        "`dpsd --config-reference`: run `make docs`\n");
    ok((size_t)(end_marker - begin) == len && memcmp(begin, ref, len) == 0);
end:
    free(ref);
    free(doc);
    free(readme);
}

int main(void)
{
    subtest("defaults", test_defaults);
    subtest("precedence flag > env > file > default", test_precedence);
    subtest("validators and flag errors", test_validators);
    subtest("config file errors name file:line", test_bad_lines);
    subtest("linked hub and listen address parsing", test_hub_and_listen);
    subtest("docs/configuration.md and README.md match --config-reference",
            test_reference_matches_docs);
    return t_done();
}
