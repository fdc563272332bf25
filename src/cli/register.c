/* SPDX-License-Identifier: MIT */
/*
 * dpsctl register: registers one device with the provisioning service over
 * HTTPS or MQTT (on TLS or over WebSocket), as a device would (include/dps/device.h), and prints
 * the assigned hub and device id, or the service's error with its tracking id.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <getopt.h>

#include "dps/device.h"

static const char usage[] =
    "usage: dpsctl register --id-scope S --registration-id ID\n"
    "                       (--cert PEM --key KEY | --symmetric-key K | --group-key K)\n"
    "                       [--payload JSON] [--transport https|mqtt|mqtt-ws]\n"
    "                       [--global-endpoint HOST]\n"
    "                       [--connect-to HOST:PORT] [--ca-file FILE] [--timeout SECONDS] "
    "[--json]\n"
    "\n"
    "Registers a device with the provisioning service, as the device itself would, and\n"
    "prints the assigned IoT hub and device id. When the service refuses the device,\n"
    "the tracking id it prints finds the reason: 'dpsctl registration history ID'.\n"
    "\n"
    "  --id-scope S            the service's ID scope (0ne...)\n"
    "  --registration-id ID    the device's registration id (for X.509: its certificate CN)\n"
    "  --cert PEM              the device certificate chain, leaf first (X.509)\n"
    "  --key KEY               its private key\n"
    "  --symmetric-key K       the device's key (individual enrollment), base64\n"
    "  --group-key K           an enrollment group's key: the device key is derived from it\n"
    "  --payload JSON          custom data sent with the registration\n"
    "  --transport T           how the device talks to the service (default https):\n"
    "                            https    REST over HTTPS, port 443\n"
    "                            mqtt     MQTT 3.1.1 over TLS, port 8883\n"
    "                            mqtt-ws  MQTT over WebSocket, wss://HOST:443/$iothub/websocket\n"
    "  --global-endpoint HOST  the service host name (default: $DPS_GLOBAL_ENDPOINT, else\n"
    "                          " DPS_DEVICE_GLOBAL_ENDPOINT ")\n"
    "  --connect-to HOST:PORT  connect there instead, whatever the transport (default:\n"
    "                          $DPS_CONNECT_TO); the service is still verified as the\n"
    "                          global endpoint's name\n"
    "  --ca-file FILE          trusted roots of the service's certificate (default:\n"
    "                          $DPS_CA_FILE, else the system store)\n"
    "  --timeout SECONDS       per request, or per MQTT packet awaited (default 30)\n"
    "  --json                  print the service's answer as json\n"
    "\n"
    "Exit status: 0 assigned, 1 failed (not assigned, or an error), 2 usage error,\n"
    "3 unknown id scope, 4 the service did not accept the credential.\n";

enum {
    O_SCOPE = 1,
    O_ID,
    O_CERT,
    O_KEY,
    O_SYM,
    O_GROUP,
    O_PAYLOAD,
    O_TRANSPORT,
    O_HOST,
    O_CONNECT,
    O_CA,
    O_TIMEOUT,
    O_JSON,
    O_HELP
};

static const struct option longopts[] = {
    {"id-scope", required_argument, NULL, O_SCOPE},
    {"registration-id", required_argument, NULL, O_ID},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"symmetric-key", required_argument, NULL, O_SYM},
    {"group-key", required_argument, NULL, O_GROUP},
    {"payload", required_argument, NULL, O_PAYLOAD},
    {"transport", required_argument, NULL, O_TRANSPORT},
    {"global-endpoint", required_argument, NULL, O_HOST},
    {"connect-to", required_argument, NULL, O_CONNECT},
    {"ca-file", required_argument, NULL, O_CA},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Splits HOST:PORT into host (in buf) and port. Returns 0, or -1 when malformed. */
static int split_connect(const char *s, char *buf, size_t len, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long p;

    if (!colon || colon == s || (size_t)(colon - s) >= len)
        return -1;
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

static void print_field(const char *name, const char *value)
{
    if (value)
        printf("%-16s %s\n", name, value);
}

int cmd_register(int argc, char **argv)
{
    struct dps_device_options o = {0};
    struct dps_device_result r = {0};
    struct dps_error err = {0};
    const char *connect = getenv("DPS_CONNECT_TO"), *transport = "https";
    char host[256];
    bool json = false;
    long timeout = 30;
    int c, rc;

    o.host = getenv("DPS_GLOBAL_ENDPOINT");
    o.ca_file = getenv("DPS_CA_FILE");
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_SCOPE:
            o.id_scope = optarg;
            break;
        case O_ID:
            o.registration_id = optarg;
            break;
        case O_CERT:
            o.cert_file = optarg;
            break;
        case O_KEY:
            o.key_file = optarg;
            break;
        case O_SYM:
            o.symmetric_key = optarg;
            break;
        case O_GROUP:
            o.group_key = optarg;
            break;
        case O_PAYLOAD:
            o.payload = optarg;
            break;
        case O_TRANSPORT:
            transport = optarg;
            break;
        case O_HOST:
            o.host = optarg;
            break;
        case O_CONNECT:
            connect = optarg;
            break;
        case O_CA:
            o.ca_file = optarg;
            break;
        case O_TIMEOUT:
            timeout = strtol(optarg, NULL, 10);
            if (timeout < 1 || timeout > 600) {
                cli_errorf("'--timeout' must be 1 to 600 seconds");
                return CLI_USAGE;
            }
            break;
        case O_JSON:
            json = true;
            break;
        case O_HELP:
            fputs(usage, stdout);
            return CLI_OK;
        default:
            fputs(usage, stderr);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("register: unexpected argument '%s'", argv[optind]);
        return CLI_USAGE;
    }
    if (strcmp(transport, "https") == 0) {
        o.transport = DPS_DEVICE_HTTPS;
    } else if (strcmp(transport, "mqtt") == 0) {
        o.transport = DPS_DEVICE_MQTT;
    } else if (strcmp(transport, "mqtt-ws") == 0) {
        o.transport = DPS_DEVICE_MQTT_WS;
    } else {
        cli_errorf("register: '--transport' '%s' is not https, mqtt or mqtt-ws", transport);
        return CLI_USAGE;
    }
    if (!o.id_scope || !o.registration_id) {
        cli_errorf("register: '--id-scope' and '--registration-id' are required");
        return CLI_USAGE;
    }
    if (connect && split_connect(connect, host, sizeof(host), &o.port) != 0) {
        cli_errorf("register: '%s' is not HOST:PORT", connect);
        return CLI_USAGE;
    }
    if (connect)
        o.connect_host = host;
    o.timeout_ms = (int)timeout * 1000;

    rc = dps_device_register(&o, &r, &err);
    if (json && r.json)
        printf("%s\n", r.json);
    if (rc != DPS_OK) {
        cli_errorf("register: %s", err.msg);
        dps_device_result_release(&r);
        return rc == DPS_ERR_AUTH               ? CLI_AUTH
               : rc == DPS_ERR_NOT_FOUND        ? CLI_NOT_FOUND
               : rc == DPS_ERR_INVAL && !r.json ? CLI_USAGE
                                                : CLI_FAILED;
    }
    if (!json) {
        print_field("Status", r.status);
        print_field("Assigned hub", r.assigned_hub);
        print_field("Device id", r.device_id);
        print_field("Substatus", r.substatus);
        print_field("Operation id", r.operation_id);
        if (r.error_code) {
            printf("%-16s %d %s\n", "Error", r.error_code, r.error_message ? r.error_message : "");
        }
    }
    rc = strcmp(r.status, "assigned") == 0 ? CLI_OK : CLI_FAILED;
    dps_device_result_release(&r);
    return rc;
}
