/* SPDX-License-Identifier: MIT */
/*
 * Option parsing and the shared plumbing of dpsctl's service commands
 * (enrollment-group, enrollment, registration, policy, token): one table of
 * every option with its help text, one dispatcher per command group that
 * prints complete --help, connects the libdps service client from
 * --connection-string/DPS_CONNECTION_STRING and --ca-file/DPS_CA_FILE, and
 * turns libdps errors into exit codes.
 */
#ifndef DPS_CLI_OPTS_H
#define DPS_CLI_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "dps/service.h"

/* Every option of the service commands. Each subcommand lists the ones it takes. */
enum cli_opt {
    OPT_END = 0, /* terminates option lists */
    OPT_ID,
    OPT_REGISTRATION_ID,
    OPT_DEVICE_ID,
    OPT_GROUP,
    OPT_CERT,
    OPT_SECONDARY_CERT,
    OPT_SIGNING_CERT,
    OPT_SECONDARY_SIGNING_CERT,
    OPT_CA_REF,
    OPT_SYMMETRIC_KEY,
    OPT_SECONDARY_KEY,
    OPT_PROVISIONING_STATUS,
    OPT_ALLOCATION_POLICY,
    OPT_IOT_HUB,
    OPT_INITIAL_TWIN,
    OPT_REPROVISION,
    OPT_EDGE,
    OPT_NO_EDGE,
    OPT_ETAG,
    OPT_IF_MATCH,
    OPT_SHOW_KEYS,
    OPT_PAGE_SIZE,
    OPT_MAX,
    OPT_NAME,
    OPT_RIGHTS,
    OPT_PRIMARY_KEY,
    OPT_TTL,
    OPT_FILE,
    OPT_CA_PREFIX,
    OPT_VERIFIED,
    OPT_CHAIN,
    OPT_SAS_TOKEN,
    /* common to every service command */
    OPT_CONNECTION_STRING,
    OPT_CA_FILE,
    OPT_CONNECT_TO,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_HELP,
    OPT__COUNT
};

#define CLI_MAX_HUBS 32

/* Parsed arguments: val[o] is the value (borrowed from argv), set[o] whether given. */
struct cli_args {
    const char *val[OPT__COUNT];
    bool set[OPT__COUNT];
    const char *hubs[CLI_MAX_HUBS]; /* every --iot-hub, in order */
    size_t nhubs;
    const char *pos; /* one positional argument (an id), or NULL */
};

/* One subcommand of a group. */
struct cli_sub {
    const char *name;
    const char *synopsis; /* after "dpsctl GROUP NAME " */
    const char *summary;
    const enum cli_opt *opts; /* the subcommand's own options, ending with OPT_END */
    bool positional;          /* takes one positional argument (an id) */
    bool offline;             /* needs no service client (c is NULL in run) */
    int (*run)(struct dps_service_client *c, const struct cli_args *a);
};

/*
 * Runs "dpsctl GROUP SUB [options]": argv[0] is the group name. Prints the
 * group's help for no subcommand, --help or "help", the subcommand's help
 * for "SUB --help". Parses the options, connects, and calls sub->run.
 *
 * Returns: the exit status (enum cli_exit).
 */
int cli_group_run(const char *group, const char *summary, const struct cli_sub *subs, size_t nsubs,
                  int argc, char **argv);

/* The exit status for a libdps error code (enum cli_exit). */
int cli_exit_for(int dps_err);

/* Prints err's message as "dpsctl: msg" and returns cli_exit_for(err->code). */
int cli_fail(const struct dps_error *err);

/* The connection string from --connection-string or DPS_CONNECTION_STRING, or NULL. */
const char *cli_connection_string(const struct cli_args *a);

/*
 * Parses a positive integer option; prints a usage error naming the option.
 *
 * Returns: CLI_OK and *out, or CLI_USAGE.
 */
int cli_opt_long(const struct cli_args *a, enum cli_opt o, long min, long max, long *out);

/*
 * Reads every page of a query, following x-ms-continuation, up to --max
 * items, --page-size per request. With --json prints one JSON array of all
 * items, else calls row() for each item.
 *
 * query: the libdps query call; arg is passed through (a group id or NULL).
 *
 * Returns: the exit status; a failing page prints the server's message.
 */
int cli_list_pages(struct dps_service_client *c, const struct cli_args *a,
                   int (*query)(struct dps_service_client *, const char *, const struct dps_query *,
                                struct dps_query_page *, struct dps_error *),
                   const char *arg, void (*row)(const json_t *item));

/* Prints JSON text indented (or as given when it is not JSON), with a newline. */
void cli_print_json(const char *text);

/* Prints one "Label   value" line of the readable output; nothing when value is NULL. */
void cli_print_field(const char *label, const char *value);

#endif
