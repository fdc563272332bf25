/* SPDX-License-Identifier: MIT */
/*
 * The group commit's writer thread: a mutex-protected FIFO of jobs, one
 * store connection, and a loop that turns whatever queued while the last
 * fsync ran into the next batch. An idle committer commits a job alone at
 * once; when jobs queued during the last batch (the writes come faster than
 * one commit), it waits gather_us for more before taking the next batch,
 * up to batch_max. Each batch's outcomes go back to their submitters with
 * one post per submitting thread.
 */
#include "core/common.h"
#include "server/committer.h"

#include <assert.h>
#include <pthread.h>
#include <time.h>

#include "server/log.h"
#include "server/server.h"

struct job {
    committer_run_fn run;
    committer_done_fn done;
    void *arg;
    void *target;
    int rc;
    struct dps_error err;
    struct job *next;
};

struct committer {
    struct store *store;
    struct committer_options opt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job *head, *tail;      /* the queue, under lock */
    size_t queued;                /* under lock */
    bool stopping;                /* under lock */
    struct committer_stats stats; /* under lock */
};

static void post_worker(void *target, void (*fn)(void *arg), void *arg)
{
    worker_call(target, fn, arg);
}

/* On the submitter's thread. */
static void job_complete(void *arg)
{
    struct job *j = arg;

    if (j->done)
        j->done(j->arg, j->rc, &j->err);
    free(j);
}

static void fail_all(struct job *list, const struct dps_error *err)
{
    for (struct job *j = list; j; j = j->next) {
        j->rc = DPS_ERR_STORE;
        j->err = *err;
        j->err.code = DPS_ERR_STORE;
    }
}

/* Runs j's writes (again, when a first pass was rolled back) and fills its outcome. */
static void call_job(struct committer *c, struct job *j)
{
    memset(&j->err, 0, sizeof(j->err));
    j->rc = j->run(c->store, j->arg, &j->err);
    if (j->rc != DPS_OK && !j->err.msg[0])
        dps_error_set(&j->err, j->rc, "write failed: %s", dps_strerror(j->rc));
}

/* Runs one job in its own unit of the open batch; returns -1 (err set) when the batch is broken. */
static int run_job_in_unit(struct committer *c, struct job *j, struct dps_error *err)
{
    if (store_batch_unit_begin(c->store, err) != DPS_OK)
        return -1;
    call_job(c, j);
    if (store_batch_unit_end(c->store, j->rc == DPS_OK, err) != DPS_OK)
        return -1;
    return 0;
}

/*
 * Runs the jobs in the open batch without units, the common case: a job
 * that fails having written nothing (a stale If-Match, a conflict, invalid
 * input) has nothing to undo, and a single write that fails is undone by
 * the store itself. changes is the batch's change count before the first
 * job (store_batch_changes()). Returns 0 when every job ran to its
 * outcome; 1 when one failed after writing: the batch must be rolled back
 * and run again with units; -1 (err set) when the batch is broken.
 */
static int run_jobs_bare(struct committer *c, struct job *list, int64_t changes,
                         struct dps_error *err)
{
    for (struct job *j = list; j; j = j->next) {
        int64_t after;

        call_job(c, j);
        /* as a unit's end would, notice a batch the store rolled back at once */
        if (store_batch_changes(c->store, &after, err) != DPS_OK)
            return -1;
        if (j->rc != DPS_OK && after != changes)
            return 1;
        changes = after;
    }
    return 0;
}

/*
 * Runs a batch of jobs (a list) and commits; fills every job's outcome.
 * Each job succeeds or fails on its own, exactly as if each ran in its own
 * unit, which it does when the quicker pass without units cannot tell.
 */
static void run_batch(struct committer *c, struct job *list, size_t n)
{
    struct dps_error err = {0};
    bool ok = false, rerun = false;
    int64_t changes;
    int rc;

    if ((rc = store_batch_begin(c->store, &err)) != DPS_OK)
        goto out;
    if ((rc = store_batch_changes(c->store, &changes, &err)) != DPS_OK) {
        store_batch_rollback(c->store);
        goto out;
    }
    if (changes >= 0) {
        rc = run_jobs_bare(c, list, changes, &err);
        if (rc < 0) {
            store_batch_rollback(c->store);
            goto out;
        }
        if (rc > 0 || c->opt.rerun_all) {
            /* the slow, safe path: nothing of the first pass stays */
            rerun = true;
            store_batch_rollback(c->store);
            if ((rc = store_batch_begin(c->store, &err)) != DPS_OK)
                goto out;
        }
    }
    for (struct job *j = list; j && (changes < 0 || rerun); j = j->next) {
        if (run_job_in_unit(c, j, &err) != 0) {
            store_batch_rollback(c->store);
            goto out;
        }
    }
    if (c->opt.commit_hook && (rc = c->opt.commit_hook(c->opt.hook_arg, &err)) != DPS_OK) {
        store_batch_rollback(c->store);
        goto out;
    }
    if ((rc = store_batch_commit(c->store, &err)) != DPS_OK)
        goto out;
    ok = true;
out:
    if (!ok) {
        /* none of the batch is durable, so no job may be acknowledged */
        log_msg(LOG_ERROR, "group commit of %zu writes failed: %s", n, err.msg);
        fail_all(list, &err);
    }
    pthread_mutex_lock(&c->lock);
    if (rerun)
        c->stats.reruns++;
    if (ok) {
        c->stats.commits++;
        if (n > c->stats.max_batch)
            c->stats.max_batch = n;
    } else {
        c->stats.failed_commits++;
    }
    c->stats.jobs += n;
    for (struct job *j = list; j; j = j->next)
        if (j->rc != DPS_OK)
            c->stats.failed_jobs++;
    pthread_mutex_unlock(&c->lock);
}

/* On the submitter's thread: the completions of one batch's jobs for that thread, in order. */
static void jobs_complete(void *arg)
{
    struct job *next;

    for (struct job *j = arg; j; j = next) {
        next = j->next;
        job_complete(j);
    }
}

/*
 * Hands each job's outcome back to its submitter: one post per submitting
 * thread and batch, carrying that thread's jobs in their queue order, so a
 * worker is woken once per batch however many of its requests it held.
 */
static void post_completions(struct committer *c, struct job *list)
{
    /* submitting threads gathered per batch; jobs of any further ones are posted one by one */
    enum { TARGETS_MAX = 16 };
    struct job *heads[TARGETS_MAX], *tails[TARGETS_MAX], *next;
    size_t ntargets = 0;

    for (struct job *j = list; j; j = next) {
        size_t t;

        next = j->next;
        j->next = NULL;
        if (!j->target) {
            job_complete(j);
            continue;
        }
        for (t = 0; t < ntargets && heads[t]->target != j->target; t++)
            ;
        if (t == ntargets) {
            if (ntargets == TARGETS_MAX) {
                c->opt.post(j->target, jobs_complete, j);
                continue;
            }
            heads[t] = tails[t] = j;
            ntargets++;
        } else {
            tails[t]->next = j;
            tails[t] = j;
        }
    }
    for (size_t t = 0; t < ntargets; t++)
        c->opt.post(heads[t]->target, jobs_complete, heads[t]);
}

/* Under the lock: takes up to want jobs from the head of the queue onto *tail. */
static size_t take_jobs(struct committer *c, struct job ***tail, size_t want)
{
    size_t n = 0;

    while (n < want && c->head) {
        struct job *j = c->head;

        c->head = j->next;
        j->next = NULL;
        **tail = j;
        *tail = &j->next;
        n++;
    }
    if (!c->head)
        c->tail = NULL;
    c->queued -= n;
    return n;
}

static void *committer_main(void *arg)
{
    struct committer *c = arg;
    bool committed = false; /* a batch ran before this pass */

    for (;;) {
        struct job *list = NULL, **tail = &list;
        bool loaded;
        size_t n;

        pthread_mutex_lock(&c->lock);
        loaded = committed && c->head; /* jobs queued while the last batch committed */
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (!c->head) {
            pthread_mutex_unlock(&c->lock);
            break; /* stopping, and everything queued is done */
        }
        n = take_jobs(c, &tail, c->opt.batch_max);
        if (loaded && n < c->opt.batch_max && c->opt.gather_us && !c->stopping) {
            /*
             * The writes come faster than one commit, so give the next
             * ones a moment to join this batch and share its fsync. An
             * idle committer (nothing queued during its last batch)
             * commits at once.
             */
            struct timespec ts = {(time_t)(c->opt.gather_us / 1000000),
                                  (long)(c->opt.gather_us % 1000000) * 1000};

            pthread_mutex_unlock(&c->lock);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&c->lock);
            n += take_jobs(c, &tail, c->opt.batch_max - n);
        }
        pthread_mutex_unlock(&c->lock);

        run_batch(c, list, n);
        post_completions(c, list);
        committed = true;
    }
    return NULL;
}

int committer_new(const char *dsn, const struct committer_options *opt, struct committer **out,
                  struct dps_error *err)
{
    struct committer *c = xcalloc(1, sizeof(*c));
    int rc;

    if (opt)
        c->opt = *opt;
    if (!c->opt.batch_max)
        c->opt.batch_max = COMMITTER_BATCH_DEFAULT;
    if (!c->opt.queue_max)
        c->opt.queue_max = COMMITTER_QUEUE_DEFAULT;
    if (!c->opt.post)
        c->opt.post = post_worker;
    /* The log's checkpoints run on a thread of their own: no batch waits for one. */
    if ((rc = store_open(dsn, &c->store, err)) != DPS_OK ||
        (rc = store_checkpoint_in_background(c->store, err)) != DPS_OK) {
        store_close(c->store);
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        store_close(c->store);
        free(c);
        return dps_error_set(err, DPS_ERR_INTERNAL, "cannot start the group commit thread");
    }
    *out = c;
    return DPS_OK;
}

int committer_submit(struct committer *c, void *target, committer_run_fn run,
                     committer_done_fn done, void *arg, unsigned flags)
{
    struct job *j;

    assert(c && run);
    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        pthread_mutex_unlock(&c->lock);
        return DPS_ERR_INTERNAL;
    }
    if ((flags & COMMITTER_MAY_REFUSE) && c->queued >= c->opt.queue_max) {
        c->stats.refused++;
        pthread_mutex_unlock(&c->lock);
        return DPS_ERR_BUSY;
    }
    pthread_mutex_unlock(&c->lock);

    /* allocated outside the lock; the queue may grow meanwhile by a few jobs, which is fine */
    j = xcalloc(1, sizeof(*j));
    j->run = run;
    j->done = done;
    j->arg = arg;
    j->target = target;

    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        pthread_mutex_unlock(&c->lock);
        free(j);
        return DPS_ERR_INTERNAL;
    }
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    c->queued++;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    return DPS_OK;
}

void committer_stats(struct committer *c, struct committer_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->queued = c->queued;
    pthread_mutex_unlock(&c->lock);
    out->checkpoints = (uint64_t)store_background_checkpoints(c->store);
}

void committer_free(struct committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    store_close(c->store);
    free(c);
}
