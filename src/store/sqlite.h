/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend of the store ("sqlite:PATH"): one database file in WAL
 * mode with synchronous=FULL, a versioned schema migrated on open, and
 * prepared statements cached per connection. Reached only through store.h.
 */
#ifndef DPS_STORE_SQLITE_H
#define DPS_STORE_SQLITE_H

#include "store/backend.h"

/* The backend's function table, listed in store.c. */
extern const struct store_ops store_sqlite_ops;

/* The schema version this build creates and migrates to (PRAGMA user_version). */
int store_sqlite_schema_version(void);

#endif
