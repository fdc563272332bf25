/* SPDX-License-Identifier: MIT */
/*
 * dpsd: read the configuration, open (or initialise) the data directory,
 * bind the listeners, serve until SIGTERM or SIGINT. Route tables of the
 * service and device APIs are added to the router here.
 */
#include "core/common.h"

#include <openssl/crypto.h>

#include "server/ca_api.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/datadir.h"
#include "server/device_api.h"
#include "server/explain.h"
#include "server/http.h"
#include "server/log.h"
#include "server/mqtt_session.h"
#include "server/metrics.h"
#include "server/portal.h"
#include "server/server.h"
#include "server/service_api.h"
#include "server/tls.h"

extern char **environ;

int main(int argc, char **argv)
{
    struct config cfg;
    struct datadir dd = {0};
    struct dps_error err = {0};
    struct http_router *router = NULL;
    struct server *srv = NULL;
    struct service_api *api = NULL;
    struct device_api *device = NULL;
    struct portal *portal = NULL;
    struct mqtt_service *mqtt = NULL;
    struct committer_options copt = {0};
    struct ca_api *ca = NULL;
    struct explain *explain = NULL;
    struct committer *committer = NULL;
    SSL_CTX *ssl = NULL;
    int rc, status = 1;

    if (config_load(&cfg, argc, argv, environ, &err) != DPS_OK) {
        fprintf(stderr, "dpsd: %s\n", err.msg);
        return 2;
    }
    switch (cfg.action) {
    case CONFIG_HELP:
        config_print_help(stdout);
        status = 0;
        goto out;
    case CONFIG_VERSION:
        printf("dpsd %s\n", DPS_VERSION);
        status = 0;
        goto out;
    case CONFIG_REFERENCE:
        config_print_reference(stdout);
        status = 0;
        goto out;
    case CONFIG_RUN:
        break;
    }
    log_init(cfg.log_format == CONFIG_LOG_JSON, (enum log_level)cfg.log_level);

    if ((rc = datadir_open(&cfg, &dd, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    if (!(ssl = tls_server_ctx_new(dd.tls_cert, dd.tls_key, &err))) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    /* Before the first thread starts: SIGTERM and SIGINT are server_run()'s to take. */
    server_block_signals();
    /* The group commit: every registration write, one fsync for many requests. */
    copt.gather_us = (unsigned)cfg.commit_delay;
    copt.rerun_all = cfg.check_commit_reruns != 0;
    if (copt.rerun_all)
        log_msg(LOG_WARNING, "check-commit-reruns is on: every group commit runs twice, a check "
                             "for tests that doubles the store's work per write");
    if ((rc = committer_new(cfg.store, &copt, &committer, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    router = http_router_new();
    metrics_add_routes(router, committer);
    if ((rc = service_api_new(&cfg, &api, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    service_api_set_committer(api, committer);
    service_api_add_routes(api, router);
    /* CA certificates and explain before the device API, whose {idScope} would take their paths. */
    if ((rc = ca_api_new(&cfg, &ca, &err)) != DPS_OK ||
        (rc = explain_new(&cfg, dd.id_scope, &explain, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    ca_api_add_routes(ca, router);
    explain_add_routes(explain, router);
    if ((rc = device_api_new(&cfg, dd.id_scope, &device, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    device_api_set_committer(device, committer);
    device_api_add_routes(device, router);
    if ((rc = portal_new(&cfg, dd.id_scope, &portal, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    portal_add_routes(portal, router);
    if ((rc = server_new(&cfg, ssl, router, &dd, &srv, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    if ((rc = mqtt_service_new(&cfg, dd.id_scope, &mqtt, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "%s", err.msg);
        goto out;
    }
    mqtt_service_set_committer(mqtt, committer);
    /* A busy MQTT port is a start-up error, as a busy HTTPS port is: devices expect both. */
    if ((rc = server_serve_mqtt(srv, mqtt, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "'mqtt-listen': %s", err.msg);
        goto out;
    }
    log_msg(LOG_INFO, "dpsd %s %s data directory '%s'", DPS_VERSION,
            dd.created ? "initialised" : "opened", cfg.data_dir);
    log_msg(LOG_INFO, "HTTPS (service and device API) on https://%s (%ld workers)",
            server_https_address(srv), cfg.workers);
    if (server_mqtt_address(srv))
        log_msg(LOG_INFO, "MQTT (device API) on mqtts://%s", server_mqtt_address(srv));
    log_msg(LOG_INFO, "MQTT over WebSocket on wss://%s/$iothub/websocket",
            server_https_address(srv));
    log_msg(LOG_INFO, "portal on https://%s/portal", server_https_address(srv));
    log_msg(LOG_INFO, "TLS root for clients: %s", dd.tls_ca);
    log_msg(LOG_INFO, "ID scope: %s", dd.id_scope);
    /* Printed on purpose, on standard output only, never through the log. */
    printf("ID scope: %s\nconnection string: %s\n", dd.id_scope, dd.connection_string);
    fflush(stdout);
    if (server_run(srv) == DPS_OK)
        status = 0;
    log_msg(LOG_INFO, "stopped");
out:
    /* after the workers, before their loops are freed: completions still reach them */
    committer_free(committer);
    server_free(srv);
    mqtt_service_free(mqtt);
    http_router_free(router);
    service_api_free(api);
    device_api_free(device);
    ca_api_free(ca);
    explain_free(explain);
    portal_free(portal);
    SSL_CTX_free(ssl);
    datadir_release(&dd);
    config_release(&cfg);
    return status;
}
