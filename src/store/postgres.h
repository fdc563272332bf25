/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend of the store ("postgres:CONNINFO", CONNINFO a libpq
 * keyword=value string or a postgresql:// URI): the shared store that lets
 * several stateless dpsd nodes serve one database. The same schema and
 * semantics as the SQLite backend, on libpq with statements prepared per
 * connection. Reached only through store.h.
 */
#ifndef DPS_STORE_POSTGRES_H
#define DPS_STORE_POSTGRES_H

#include "store/backend.h"

/* The backend's function table, listed in store.c. */
extern const struct store_ops store_postgres_ops;

/* The schema version this build creates and migrates to (table schema_version). */
int store_postgres_schema_version(void);

#endif
