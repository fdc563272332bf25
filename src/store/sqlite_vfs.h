/* SPDX-License-Identifier: MIT */
/*
 * A thin SQLite VFS over another VFS that writes the frames of a WAL commit
 * with one write call instead of two per frame. Every other file and every
 * other method goes straight to the VFS below. Used by the SQLite backend
 * (sqlite.c); it changes no file format and needs no schema.
 */
#ifndef DPS_STORE_SQLITE_VFS_H
#define DPS_STORE_SQLITE_VFS_H

#include <sqlite3.h>

/*
 * The largest run of WAL writes held in memory before it is written out
 * (bytes): 31 frames of 4 KiB pages. SQLite's unix VFS takes at most
 * 128 KiB - 1 bytes in one write (it masks the length to 17 bits, as it
 * expects single pages), so a longer run would be cut short.
 */
#define SQLITE_VFS_RUN_MAX (128 * 1024 - 1)

/*
 * Returns the name of the shim over SQLite's default VFS, registered on the
 * first call (thread-safe; later calls return the same name), for the zVfs
 * argument of sqlite3_open_v2(). The shim is not made the default VFS.
 *
 * Returns: a static string, or NULL when the VFS could not be registered
 * (SQLite failed to initialize, or there is no default VFS).
 */
const char *sqlite_vfs_name(void);

/*
 * Registers one more shim named name over the VFS below (not as the
 * default). For tests and tools that need the shim over a VFS of their own;
 * the store uses sqlite_vfs_name().
 *
 * name:  the new VFS's name; borrowed, must stay valid while the process
 *        runs (a string literal)
 * below: the VFS the shim forwards to; borrowed, must stay registered while
 *        the process runs
 *
 * Returns: SQLITE_OK, SQLITE_MISUSE when name is already registered, or
 * SQLite's error from sqlite3_vfs_register(). The shim's memory is never
 * freed: SQLite keeps a pointer to it until the process ends.
 */
int sqlite_vfs_register_over(const char *name, sqlite3_vfs *below);

#endif
