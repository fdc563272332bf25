/* SPDX-License-Identifier: MIT */
/*
 * The data directory contract: on first start with an empty directory,
 * create the store, a development TLS CA and server certificate, the ID
 * scope and the `provisioningserviceowner` policy with its connection
 * string, all or nothing; on later starts, check and reuse them. Layout:
 *
 *   DIR/id-scope           0ne + 8 upper-case hex digits (written last: its
 *                          presence means the directory is complete)
 *   DIR/connection-string  HostName=...;SharedAccessKeyName=...;SharedAccessKey=... (0600)
 *   DIR/tls/ca.pem         development CA certificate (what clients trust)
 *   DIR/tls/ca.key         its key (0600)
 *   DIR/tls/server.pem     server certificate then the CA (SANs NAME, localhost, 127.0.0.1, ::1)
 *   DIR/tls/server.key     its key (0600)
 *   DIR/dpsd.db            the SQLite store, with the default store DSN (0600, as are
 *                          its -wal and -shm files: it holds every key; a store
 *                          found readable by others is made private on start)
 */
#ifndef DPS_SERVER_DATADIR_H
#define DPS_SERVER_DATADIR_H

#include "server/config.h"

/* The name of the policy created on first start. */
#define DATADIR_OWNER_POLICY "provisioningserviceowner"

/* What the server needs from the data directory; every string owned. */
struct datadir {
    char *id_scope;          /* "0ne" + 8 upper-case hex digits */
    char *connection_string; /* secret: never log it */
    char *tls_ca;            /* path of DIR/tls/ca.pem */
    char *tls_cert;          /* path of the certificate to serve (cfg->tls_cert wins) */
    char *tls_key;           /* path of its key */
    bool created;            /* this start initialised the directory */
};

/*
 * Opens cfg->data_dir, initialising it when it is empty or missing (its
 * parent must exist) or when an earlier initialisation was interrupted.
 *
 * out: on DPS_OK, filled; release with datadir_release(). Untouched on failure.
 *
 * Returns: DPS_OK; DPS_ERR_IO when the directory cannot be read or written;
 * DPS_ERR_INVAL when it is not a dpsd data directory or a file in it is
 * corrupt (the message names the file and the problem); DPS_ERR_STORE or
 * DPS_ERR_TLS from creating the store or the certificates.
 */
int datadir_open(const struct config *cfg, struct datadir *out, struct dps_error *err);

/* Frees the strings of d (wiping the connection string) and zeroes it; d may be NULL. */
void datadir_release(struct datadir *d);

/* True when s is an ID scope in Azure's form: "0ne" followed by 8 upper-case hex digits. */
bool datadir_id_scope_valid(const char *s);

#endif
