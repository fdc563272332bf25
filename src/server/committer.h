/* SPDX-License-Identifier: MIT */
/*
 * The group commit: one writer thread per process with its own store
 * connection. Workers submit write jobs; the thread takes everything queued
 * (up to a batch), runs the jobs in one store batch (a failing job undoes
 * only itself), commits once (one transaction, one fsync) and then hands
 * every job's outcome back to the thread that submitted it. So the fsync rate does not cap the
 * write rate, and no worker's event loop waits on a disk. Not for reads: those stay on the workers'
 * own connections. See docs/internals/performance.md.
 */
#ifndef DPS_SERVER_COMMITTER_H
#define DPS_SERVER_COMMITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dps/error.h"
#include "store/store.h"

/* Jobs committed in one transaction, at most (committer_options.batch_max = 0). */
#define COMMITTER_BATCH_DEFAULT 256
/* Queued jobs that may be refused (COMMITTER_MAY_REFUSE) beyond this many queued. */
#define COMMITTER_QUEUE_DEFAULT 4096

struct committer;

/*
 * A job's writes, run on the committer's thread against its store
 * connection, inside the open batch. Return DPS_OK to keep the writes, any
 * other code (with err filled) to undo them; the code and err reach the
 * job's done function.
 *
 * The batch's jobs first run one after another without units. When a job
 * fails after it wrote something (the store's change count moved), the
 * batch is rolled back and every job of it runs again from the start, this
 * time each in its own unit (store_batch_unit_begin()). So a job may run
 * twice: each run must start afresh (replace, not add to, what an earlier
 * run left in arg) and do nothing but store calls that the rollback
 * undoes. The second run's outcome is the one reported.
 * Must not call store_batch_*(); must not touch the submitter's state
 * except through arg, which the submitter leaves alone until done runs.
 */
typedef int (*committer_run_fn)(struct store *s, void *arg, struct dps_error *err);

/*
 * A job's completion, run once on the submitter's thread after the batch
 * committed or failed. rc: DPS_OK when the job's writes are durable; the
 * job's own code when it failed; DPS_ERR_STORE when the batch could not be
 * begun or committed (then nothing of the job was written). err: the
 * message when rc != DPS_OK; borrowed for the call.
 */
typedef void (*committer_done_fn)(void *arg, int rc, const struct dps_error *err);

/*
 * Runs fn(arg) on target's thread, soon; must be thread-safe. dpsd uses
 * worker_call() (target is a struct worker *); tests pass their own.
 */
typedef void (*committer_post_fn)(void *target, void (*fn)(void *arg), void *arg);

/*
 * Called on the committer's thread right before each commit; a failure
 * fails the whole batch as a failed commit does. For fault injection in
 * tests; NULL in dpsd.
 */
typedef int (*committer_commit_hook_fn)(void *hook_arg, struct dps_error *err);

struct committer_options {
    size_t batch_max;       /* jobs per transaction; 0: COMMITTER_BATCH_DEFAULT */
    size_t queue_max;       /* refusable jobs queued at most; 0: COMMITTER_QUEUE_DEFAULT */
    committer_post_fn post; /* NULL: worker_call() */
    committer_commit_hook_fn commit_hook; /* NULL: none */
    unsigned gather_us; /* under load, wait this long for more jobs to join a batch; 0: never */
    void *hook_arg;
    /*
     * A check for tests: every batch that ran without units is rolled back
     * and run again with each job in its own unit, as after a job that
     * failed having written, so every job runs twice (committer_run_fn).
     */
    bool rerun_all;
};

/* Counters since committer_new(), for /metrics. */
struct committer_stats {
    uint64_t commits;        /* transactions committed */
    uint64_t failed_commits; /* batches that could not be begun or committed */
    uint64_t jobs;           /* jobs run to an outcome, failed ones included */
    uint64_t failed_jobs;    /* jobs whose outcome was not DPS_OK */
    uint64_t refused;        /* submits refused because the queue was full */
    uint64_t queued;         /* jobs waiting now */
    uint64_t max_batch;      /* the largest batch committed */
    uint64_t reruns;         /* batches rerun in units (a job failed after writing; rerun_all) */
    uint64_t checkpoints;    /* log checkpoints run beside the commits (SQLite) */
};

/* enum committer_flags: how committer_submit() treats a full queue. */
enum committer_flags {
    /*
     * Refuse with DPS_ERR_BUSY when queue_max jobs are queued (the service
     * API answers 503 with Retry-After). Without it the job is always
     * queued: device registrations must not be refused (devices in the
     * field often do not retry a 5xx), and they are bounded anyway by the
     * connection limit (one pending request per connection).
     */
    COMMITTER_MAY_REFUSE = 1 << 0,
};

/*
 * Opens the committer's store connection and starts its thread.
 *
 * dsn: the store, as for store_open(); borrowed for the call.
 * opt: may be NULL for the defaults; copied.
 * out: on DPS_OK, the committer; stop and free it with committer_free().
 *
 * Returns: DPS_OK; the codes of store_open(); DPS_ERR_INTERNAL when the
 * thread cannot be started.
 */
int committer_new(const char *dsn, const struct committer_options *opt, struct committer **out,
                  struct dps_error *err);

/*
 * Queues a job. Thread-safe.
 *
 * target: where done runs: passed to the post function (a struct worker *
 *         in dpsd); NULL runs done on the committer's thread.
 * run:    the writes; required.
 * done:   the completion; may be NULL.
 * arg:    passed to run and done; owned by the caller, who must keep it
 *         alive until done runs.
 * flags:  enum committer_flags bits.
 *
 * Returns: DPS_OK (done will run exactly once); DPS_ERR_BUSY (queue full,
 * COMMITTER_MAY_REFUSE only) or DPS_ERR_INTERNAL (the committer is
 * stopping): then neither run nor done is called.
 */
int committer_submit(struct committer *c, void *target, committer_run_fn run,
                     committer_done_fn done, void *arg, unsigned flags);

/* Copies the counters into *out. Thread-safe. */
void committer_stats(struct committer *c, struct committer_stats *out);

/*
 * Stops taking jobs, runs and commits every queued one (their completions
 * are posted as usual), joins the thread, closes the store and frees c.
 * Call after the workers that receive completions have finished, or while
 * they still run their loops. c may be NULL.
 */
void committer_free(struct committer *c);

#endif
