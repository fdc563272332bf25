/* SPDX-License-Identifier: MIT */
/*
 * A VFS shim that holds a WAL file's contiguous writes in memory and hands
 * them to the VFS below as one write. SQLite writes each WAL frame with two
 * calls (the 24-byte frame header, then the page) and appends all frames of
 * a commit back to back before it syncs, so a commit becomes one write and
 * one sync. Nothing else is changed: other files, and every method that does
 * not look at a WAL file's bytes, go straight to the VFS below.
 */
#include "core/common.h"
#include "store/sqlite_vfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The name the store opens its databases with. */
#define DEFAULT_NAME "dpsd-walrun"

/* The newest sqlite3_io_methods and sqlite3_vfs versions this file knows the members of. */
#define IO_METHODS_VERSION 3
#define VFS_VERSION 3

struct shim_vfs {
    sqlite3_vfs base; /* first: SQLite passes &base back to the methods */
    sqlite3_vfs *below;
};

/*
 * One open file. The VFS below's own sqlite3_file follows this struct in the
 * block SQLite allocates (szOsFile is the sum of both).
 *
 * A WAL file is paired with the main database file of the same connection
 * (both are opened by one pager, which passes the WAL's xOpen a name that
 * sqlite3_filename_database() maps back to the very pointer the database's
 * xOpen got). The pairing lets the database's shared-memory lock calls write
 * out what the WAL holds before a lock changes hands. A WAL file that finds
 * no partner holds nothing: every write goes straight down.
 */
struct shim_file {
    sqlite3_file base;          /* first: SQLite's handle */
    sqlite3_io_methods methods; /* the below file's table, with this file's wrappers */
    sqlite3_file *below;        /* the below VFS's file, in the same block */

    /* Main database files only. */
    const char *db_name;      /* the name its xOpen got, borrowed from the pager */
    struct shim_file *wal;    /* the connection's open WAL file, or NULL */
    struct shim_file *next;   /* in open_dbs */
    struct shim_file **pprev; /* in open_dbs */

    /* WAL files only. */
    struct shim_file *db; /* the connection's main database file; NULL: hold nothing */
    unsigned char *run;   /* the held bytes (sqlite3_malloc64), or NULL */
    size_t run_len;
    sqlite3_int64 run_off; /* the file offset of run[0] */
    int lost_rc;           /* a failed write of a run that no caller could be told of yet */
};

#define FILE_HEAD ((sizeof(struct shim_file) + 7) & ~(size_t)7)

/*
 * The main database files open through any shim, so that a WAL file can
 * find its partner. Touched only when files open and close.
 */
static pthread_mutex_t open_dbs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_file *open_dbs;

static struct shim_file *to_shim(sqlite3_file *file)
{
    return (struct shim_file *)file;
}

static sqlite3_vfs *below_vfs(sqlite3_vfs *vfs)
{
    return ((struct shim_vfs *)vfs)->below;
}

/* --- the held run --------------------------------------------------------------------------- */

/*
 * Writes the held run with one call to the file below and empties it, even
 * when the write fails: a failed run is never retried. A failure that could
 * not be reported earlier (lost_rc) is reported here first, and the run is
 * then dropped unwritten.
 *
 * Returns: SQLITE_OK, or the error of the write below.
 */
static int run_flush(struct shim_file *f)
{
    int rc = f->lost_rc;

    f->lost_rc = SQLITE_OK;
    if (rc == SQLITE_OK && f->run_len > 0)
        rc = f->below->pMethods->xWrite(f->below, f->run, (int)f->run_len, f->run_off);
    f->run_len = 0;
    return rc;
}

/* Gives the file its run memory on the first write held; false when it cannot be had. */
static bool run_alloc(struct shim_file *f)
{
    if (!f->run)
        f->run = sqlite3_malloc64(SQLITE_VFS_RUN_MAX);
    return f->run != NULL;
}

/* --- io methods ----------------------------------------------------------------------------- */

/* Ends the pairing of a WAL file and its main database file; either may be closing. */
static void unpair(struct shim_file *db, struct shim_file *wal)
{
    pthread_mutex_lock(&open_dbs_lock);
    db->wal = NULL;
    wal->db = NULL;
    pthread_mutex_unlock(&open_dbs_lock);
}

static int shim_close(sqlite3_file *file)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f), close_rc;

    if (f->db)
        unpair(f->db, f);
    if (f->wal) {
        /* SQLite closes the WAL first; should it not, the WAL holds nothing from now on. */
        f->wal->lost_rc = run_flush(f->wal);
        unpair(f, f->wal);
    }
    if (f->pprev) {
        pthread_mutex_lock(&open_dbs_lock);
        *f->pprev = f->next;
        if (f->next)
            f->next->pprev = f->pprev;
        pthread_mutex_unlock(&open_dbs_lock);
    }
    close_rc = f->below->pMethods->xClose(f->below);
    sqlite3_free(f->run);
    f->run = NULL;
    return rc != SQLITE_OK ? rc : close_rc;
}

static int shim_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xRead(f->below, buf, amt, off);
}

/*
 * A WAL write that continues the run is held; any other write first writes
 * out the run and then starts a new one, so the bytes reach the file below
 * in the order SQLite wrote them.
 */
static int shim_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    struct shim_file *f = to_shim(file);
    size_t n = amt > 0 ? (size_t)amt : 0;
    int rc;

    if (!f->db || n == 0 || n > SQLITE_VFS_RUN_MAX)
        goto through;
    if (f->run_len > 0 &&
        (off != f->run_off + (sqlite3_int64)f->run_len || f->run_len + n > SQLITE_VFS_RUN_MAX)) {
        rc = run_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!run_alloc(f))
        goto through;
    if (f->run_len == 0)
        f->run_off = off;
    memcpy(f->run + f->run_len, buf, n);
    f->run_len += n;
    return SQLITE_OK;
through:
    rc = run_flush(f);
    return rc != SQLITE_OK ? rc : f->below->pMethods->xWrite(f->below, buf, amt, off);
}

static int shim_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xTruncate(f->below, size);
}

/* The commit's frames are written here, just before the sync: a failed write fails the commit. */
static int shim_sync(sqlite3_file *file, int flags)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xSync(f->below, flags);
}

static int shim_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xFileSize(f->below, size);
}

static int shim_lock(sqlite3_file *file, int level)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xLock(f->below, level);
}

static int shim_unlock(sqlite3_file *file, int level)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f), unlock_rc;

    /* The lock is given up even when the write failed: SQLite counts on it. */
    unlock_rc = f->below->pMethods->xUnlock(f->below, level);
    return rc != SQLITE_OK ? rc : unlock_rc;
}

static int shim_check_reserved_lock(sqlite3_file *file, int *out)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xCheckReservedLock(f->below, out);
}

static int shim_file_control(sqlite3_file *file, int op, void *arg)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xFileControl(f->below, op, arg);
}

static int shim_sector_size(sqlite3_file *file)
{
    struct shim_file *f = to_shim(file);

    return f->below->pMethods->xSectorSize(f->below);
}

static int shim_device_characteristics(sqlite3_file *file)
{
    struct shim_file *f = to_shim(file);

    return f->below->pMethods->xDeviceCharacteristics(f->below);
}

static int shim_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    struct shim_file *f = to_shim(file);

    return f->below->pMethods->xShmMap(f->below, region, size, extend, out);
}

/*
 * Shared-memory locks belong to the database file. Before one changes, the
 * connection's WAL writes out what it holds: once the write lock is given
 * up another connection may append at the same offsets, and bytes held back
 * past that point (frames of a transaction that spilled and then rolled
 * back) would land on top of its frames. At synchronous=FULL a commit's
 * frames are already out, written by the sync.
 */
static int shim_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct shim_file *f = to_shim(file);
    int rc = f->wal ? run_flush(f->wal) : SQLITE_OK, lock_rc;

    if (rc != SQLITE_OK && !(flags & SQLITE_SHM_UNLOCK))
        return rc;
    lock_rc = f->below->pMethods->xShmLock(f->below, offset, n, flags);
    return rc != SQLITE_OK ? rc : lock_rc;
}

/*
 * SQLite publishes a new wal-index header (and so new frames to readers on
 * other connections) across a barrier: the frames must be in the file before
 * it. Only a commit that is not synced (synchronous below FULL) reaches this
 * with frames held. The barrier cannot fail, so a failed write is kept and
 * reported by the WAL's next flush.
 */
static void shim_shm_barrier(sqlite3_file *file)
{
    struct shim_file *f = to_shim(file);

    if (f->wal)
        f->wal->lost_rc = run_flush(f->wal);
    f->below->pMethods->xShmBarrier(f->below);
}

static int shim_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct shim_file *f = to_shim(file);

    return f->below->pMethods->xShmUnmap(f->below, delete_flag);
}

static int shim_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    struct shim_file *f = to_shim(file);
    int rc = run_flush(f);

    return rc != SQLITE_OK ? rc : f->below->pMethods->xFetch(f->below, off, amt, out);
}

static int shim_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct shim_file *f = to_shim(file);

    return f->below->pMethods->xUnfetch(f->below, off, p);
}

/*
 * Fills f->methods from the below file's table: the same version (up to the
 * newest this file knows), and a wrapper exactly where the below file has a
 * method, so SQLite sees the same set of methods it would see without the
 * shim.
 */
static void methods_init(struct shim_file *f, const sqlite3_io_methods *b)
{
    sqlite3_io_methods *m = &f->methods;

    memset(m, 0, sizeof(*m));
    m->iVersion = b->iVersion < IO_METHODS_VERSION ? b->iVersion : IO_METHODS_VERSION;
#define WRAP(member, fn) m->member = b->member ? fn : NULL
    WRAP(xClose, shim_close);
    WRAP(xRead, shim_read);
    WRAP(xWrite, shim_write);
    WRAP(xTruncate, shim_truncate);
    WRAP(xSync, shim_sync);
    WRAP(xFileSize, shim_file_size);
    WRAP(xLock, shim_lock);
    WRAP(xUnlock, shim_unlock);
    WRAP(xCheckReservedLock, shim_check_reserved_lock);
    WRAP(xFileControl, shim_file_control);
    WRAP(xSectorSize, shim_sector_size);
    WRAP(xDeviceCharacteristics, shim_device_characteristics);
    if (m->iVersion >= 2) {
        WRAP(xShmMap, shim_shm_map);
        WRAP(xShmLock, shim_shm_lock);
        WRAP(xShmBarrier, shim_shm_barrier);
        WRAP(xShmUnmap, shim_shm_unmap);
    }
    if (m->iVersion >= 3) {
        WRAP(xFetch, shim_fetch);
        WRAP(xUnfetch, shim_unfetch);
    }
#undef WRAP
}

/* --- vfs methods ---------------------------------------------------------------------------- */

/* Pairs a WAL file with its connection's main database file, when that is open through a shim. */
static void pair_wal(struct shim_file *wal, const char *name)
{
    const char *db_name = sqlite3_filename_database(name);

    pthread_mutex_lock(&open_dbs_lock);
    for (struct shim_file *d = open_dbs; d; d = d->next) {
        if (d->db_name == db_name && !d->wal) {
            d->wal = wal;
            wal->db = d;
            break;
        }
    }
    pthread_mutex_unlock(&open_dbs_lock);
}

static void add_db(struct shim_file *db, const char *name)
{
    pthread_mutex_lock(&open_dbs_lock);
    db->db_name = name;
    db->next = open_dbs;
    if (open_dbs)
        open_dbs->pprev = &db->next;
    db->pprev = &open_dbs;
    open_dbs = db;
    pthread_mutex_unlock(&open_dbs_lock);
}

static int shim_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                     int *out_flags)
{
    sqlite3_vfs *below = below_vfs(vfs);
    struct shim_file *f = to_shim(file);
    int rc;

    memset(f, 0, FILE_HEAD);
    f->below = (sqlite3_file *)((char *)f + FILE_HEAD);
    rc = below->xOpen(below, name, f->below, flags, out_flags);
    /* SQLite calls xClose after a failed xOpen exactly when the methods are set. */
    if (!f->below->pMethods) {
        file->pMethods = NULL;
        return rc;
    }
    methods_init(f, f->below->pMethods);
    file->pMethods = &f->methods;
    if (rc != SQLITE_OK || !name)
        return rc;
    if (flags & SQLITE_OPEN_MAIN_DB)
        add_db(f, name);
    else if (flags & SQLITE_OPEN_WAL)
        pair_wal(f, name);
    return rc;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return below_vfs(vfs)->xDelete(below_vfs(vfs), name, sync_dir);
}

static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return below_vfs(vfs)->xAccess(below_vfs(vfs), name, flags, out);
}

static int shim_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
    return below_vfs(vfs)->xFullPathname(below_vfs(vfs), name, size, out);
}

static void *shim_dl_open(sqlite3_vfs *vfs, const char *name)
{
    return below_vfs(vfs)->xDlOpen(below_vfs(vfs), name);
}

static void shim_dl_error(sqlite3_vfs *vfs, int size, char *out)
{
    below_vfs(vfs)->xDlError(below_vfs(vfs), size, out);
}

static sqlite3_syscall_ptr shim_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol)
{
    return below_vfs(vfs)->xDlSym(below_vfs(vfs), handle, symbol);
}

static void shim_dl_close(sqlite3_vfs *vfs, void *handle)
{
    below_vfs(vfs)->xDlClose(below_vfs(vfs), handle);
}

static int shim_randomness(sqlite3_vfs *vfs, int size, char *out)
{
    return below_vfs(vfs)->xRandomness(below_vfs(vfs), size, out);
}

static int shim_sleep(sqlite3_vfs *vfs, int microseconds)
{
    return below_vfs(vfs)->xSleep(below_vfs(vfs), microseconds);
}

static int shim_current_time(sqlite3_vfs *vfs, double *out)
{
    return below_vfs(vfs)->xCurrentTime(below_vfs(vfs), out);
}

static int shim_get_last_error(sqlite3_vfs *vfs, int size, char *out)
{
    return below_vfs(vfs)->xGetLastError(below_vfs(vfs), size, out);
}

static int shim_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    return below_vfs(vfs)->xCurrentTimeInt64(below_vfs(vfs), out);
}

static int shim_set_system_call(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
    return below_vfs(vfs)->xSetSystemCall(below_vfs(vfs), name, fn);
}

static sqlite3_syscall_ptr shim_get_system_call(sqlite3_vfs *vfs, const char *name)
{
    return below_vfs(vfs)->xGetSystemCall(below_vfs(vfs), name);
}

static const char *shim_next_system_call(sqlite3_vfs *vfs, const char *name)
{
    return below_vfs(vfs)->xNextSystemCall(below_vfs(vfs), name);
}

int sqlite_vfs_register_over(const char *name, sqlite3_vfs *below)
{
    struct shim_vfs *sv;
    sqlite3_vfs *v;
    int rc;

    if (sqlite3_vfs_find(name))
        return SQLITE_MISUSE;
    sv = calloc(1, sizeof(*sv));
    if (!sv)
        return SQLITE_NOMEM;
    v = &sv->base;
    sv->below = below;
    v->iVersion = below->iVersion < VFS_VERSION ? below->iVersion : VFS_VERSION;
    v->szOsFile = (int)FILE_HEAD + below->szOsFile;
    v->mxPathname = below->mxPathname;
    v->zName = name;
#define WRAP(member, fn) v->member = below->member ? fn : NULL
    WRAP(xOpen, shim_open);
    WRAP(xDelete, shim_delete);
    WRAP(xAccess, shim_access);
    WRAP(xFullPathname, shim_full_pathname);
    WRAP(xDlOpen, shim_dl_open);
    WRAP(xDlError, shim_dl_error);
    WRAP(xDlSym, shim_dl_sym);
    WRAP(xDlClose, shim_dl_close);
    WRAP(xRandomness, shim_randomness);
    WRAP(xSleep, shim_sleep);
    WRAP(xCurrentTime, shim_current_time);
    WRAP(xGetLastError, shim_get_last_error);
    if (v->iVersion >= 2)
        WRAP(xCurrentTimeInt64, shim_current_time_int64);
    if (v->iVersion >= 3) {
        WRAP(xSetSystemCall, shim_set_system_call);
        WRAP(xGetSystemCall, shim_get_system_call);
        WRAP(xNextSystemCall, shim_next_system_call);
    }
#undef WRAP
    rc = sqlite3_vfs_register(v, 0);
    if (rc != SQLITE_OK)
        free(sv);
    return rc;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static const char *default_name;

static void register_default(void)
{
    sqlite3_vfs *below;

    /*
     * Before SQLite initializes: no allocation statistics (dpsd reads none),
     * which would take one process-wide mutex on every allocation of every
     * connection.
     */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_initialize() != SQLITE_OK)
        return;
    below = sqlite3_vfs_find(NULL);
    if (below && sqlite_vfs_register_over(DEFAULT_NAME, below) == SQLITE_OK)
        default_name = DEFAULT_NAME;
}

const char *sqlite_vfs_name(void)
{
    pthread_once(&default_once, register_default);
    return default_name;
}
