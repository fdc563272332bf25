/* SPDX-License-Identifier: MIT */
/*
 * dpsd's configuration: one directive table drives the config file
 * (`name value` lines), `--name value` flags, `DPSD_NAME` environment
 * variables, `dpsd --help` and the Markdown reference in
 * docs/configuration.md. Precedence: flag > environment > file > default.
 * This module parses and validates; it opens no sockets and no data files.
 */
#ifndef DPS_SERVER_CONFIG_H
#define DPS_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

/* A repeatable directive's values, in the order given. */
struct config_list {
    char **items;
    size_t n;
};

/* What the command line asked dpsd to do. */
enum config_action {
    CONFIG_RUN = 0,   /* serve */
    CONFIG_HELP,      /* --help: print usage and the directives */
    CONFIG_REFERENCE, /* --config-reference: print the Markdown reference */
    CONFIG_VERSION,   /* --version */
};

enum config_log_format { CONFIG_LOG_TEXT = 0, CONFIG_LOG_JSON };

/* Every directive's value; strings are owned by the struct (config_release). */
struct config {
    enum config_action action;
    char *config; /* the config file read, or NULL */
    char *data_dir;
    char *hostname;
    char *https_listen;            /* ADDR:PORT */
    char *mqtt_listen;             /* ADDR:PORT, stored only: MQTT is not served yet */
    struct config_list linked_hub; /* each HOST[,weight=N][,location=L][,apply=B], validated */
    struct config_list region;     /* each CIDR=LOCATION (server/region.h), validated */
    char *store;                   /* DSN; defaults to sqlite:DATA_DIR/dpsd.db */
    long workers;                  /* 0 in the table means one per CPU; resolved by config_load */
    char *tls_cert;
    char *tls_key;
    long log_format;   /* enum config_log_format */
    long log_level;    /* enum log_level (server/log.h) */
    long idle_timeout; /* seconds */
    long max_connections_per_worker;
    long max_body;              /* bytes */
    long verification_code_ttl; /* seconds a CA verification code stays usable */
    long shutdown_timeout;      /* seconds */
    long commit_delay;          /* microseconds a loaded group commit waits for more writes */
    long check_commit_reruns;   /* 0 off, 1 on: every group commit batch runs twice */
};

/* One parsed `--linked-hub` value. */
struct config_hub {
    char *host;     /* owned */
    long weight;    /* 1 when not given */
    char *location; /* owned; NULL when not given */
    bool apply;     /* applyAllocationPolicy; true when not given */
};

/*
 * Fills cfg from defaults, the config file (from `--config` or DPSD_CONFIG),
 * the environment and the command line, and validates the result. On
 * `--help`, `--version` or `--config-reference` it sets cfg->action and skips
 * the check for required directives.
 *
 * cfg:  uninitialised on entry; on DPS_OK the caller releases it with
 *       config_release(); on failure it holds nothing.
 * argv: argv[0] is the program name; not modified.
 * envp: NULL-terminated "NAME=value" strings (environ), or NULL for none.
 * err:  receives a message naming the file:line, flag or variable at fault.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for an unknown or malformed directive,
 * flag or variable, or a missing required one; DPS_ERR_IO when the config
 * file cannot be read.
 */
int config_load(struct config *cfg, int argc, char **argv, char **envp, struct dps_error *err);

/* Frees every string held by cfg and zeroes it; cfg may be NULL. */
void config_release(struct config *cfg);

/* Writes `dpsd --help` (usage and every directive) to f. */
void config_print_help(FILE *f);

/* Writes the Markdown configuration reference (docs/configuration.md) to f. */
void config_print_reference(FILE *f);

/*
 * Parses one `HOST[,weight=N][,location=L][,apply=true|false]` value; the
 * options may come in any order.
 *
 * out: on DPS_OK filled with owned strings; release with config_hub_release().
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL with a message naming the problem.
 */
int config_hub_parse(const char *s, struct config_hub *out, struct dps_error *err);

/* Frees the strings of a struct config_hub; h may be NULL. */
void config_hub_release(struct config_hub *h);

/*
 * Splits "ADDR:PORT" (ADDR may be empty, a name, an IPv4 address or a
 * bracketed IPv6 address) into host and port.
 *
 * host: buffer of hostlen bytes; receives ADDR without brackets ("" for any).
 * port: receives 0..65535.
 *
 * Returns: DPS_OK or DPS_ERR_INVAL.
 */
int config_split_listen(const char *s, char *host, size_t hostlen, int *port,
                        struct dps_error *err);

#endif
