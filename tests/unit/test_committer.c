/* SPDX-License-Identifier: MIT */
/*
 * The group commit on a temporary SQLite store: jobs from several threads
 * share one transaction; a failing job undoes only itself, whether it
 * failed before writing (no second pass) or after (the batch runs again
 * with units); a batch the store rolled back and a failed commit fail
 * every job of their batch; completions run on the thread of the loop
 * they were submitted for; stopping runs and commits what is queued.
 */
#include "core/common.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include "../t.h"
#include "server/committer.h"
#include "store/store.h"
#include "tmpdir.h"

static char dir[512];
static char dsn[600];

/* ---- jobs ---- */

/*
 * A job that writes setting key = "v", or fails with fail_code after
 * writing it (before, with fail_before).
 */
struct job {
    char key[32];
    int fail_code;
    bool fail_before;
    int runs;     /* times run */
    int rc;       /* outcome, set by done */
    bool done;    /* set by done */
    pthread_t on; /* the thread done ran on */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int n_done;
static bool gate_open, gate_entered;

static int job_run(struct store *s, void *arg, struct dps_error *err)
{
    struct job *j = arg;
    int rc;

    j->runs++;
    if (j->fail_code && j->fail_before)
        return dps_error_set(err, j->fail_code, "job '%s' fails on purpose", j->key);
    rc = store_setting_put(s, j->key, "v", err);

    if (rc == DPS_OK && j->fail_code)
        rc = dps_error_set(err, j->fail_code, "job '%s' fails on purpose", j->key);
    return rc;
}

static void job_done(void *arg, int rc, const struct dps_error *err)
{
    struct job *j = arg;

    (void)err;
    pthread_mutex_lock(&lock);
    j->rc = rc;
    j->done = true;
    j->on = pthread_self();
    n_done++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Holds the committer's thread until gate_open, so that later jobs queue up into one batch. */
static int gate_run(struct store *s, void *arg, struct dps_error *err)
{
    (void)s;
    (void)arg;
    (void)err;
    pthread_mutex_lock(&lock);
    gate_entered = true;
    pthread_cond_broadcast(&changed);
    while (!gate_open)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    return DPS_OK;
}

static void open_gate(void)
{
    pthread_mutex_lock(&lock);
    gate_open = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void reset(void)
{
    pthread_mutex_lock(&lock);
    n_done = 0;
    gate_open = false;
    gate_entered = false;
    pthread_mutex_unlock(&lock);
}

/* Submits the gate job and waits until the committer's thread holds it. */
static int close_gate(struct committer *c)
{
    static struct job gate;
    int rc = committer_submit(c, NULL, gate_run, job_done, &gate, 0);

    pthread_mutex_lock(&lock);
    while (rc == DPS_OK && !gate_entered)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Waits until n jobs are done, at most 10 s; returns whether they are. */
static bool wait_done(int n)
{
    struct timespec until;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&lock);
    while (n_done < n && pthread_cond_timedwait(&changed, &lock, &until) == 0)
        ;
    ok = n_done >= n;
    pthread_mutex_unlock(&lock);
    return ok;
}

static bool setting_exists(const char *key)
{
    struct store *s = NULL;
    char *v = NULL;
    bool found;

    if (store_open(dsn, &s, NULL) != DPS_OK)
        return false;
    found = store_setting_get(s, key, &v, NULL) == DPS_OK;
    free(v);
    store_close(s);
    return found;
}

/* ---- jobs from several threads, one batch ---- */

#define SUBMITTERS 4
#define PER_SUBMITTER 50

struct submitter {
    struct committer *c;
    struct job jobs[PER_SUBMITTER];
    int index;
    int failures;
};

static void *submit_many(void *arg)
{
    struct submitter *sub = arg;

    for (int i = 0; i < PER_SUBMITTER; i++) {
        snprintf(sub->jobs[i].key, sizeof(sub->jobs[i].key), "t%d.%d", sub->index, i);
        if (committer_submit(sub->c, NULL, job_run, job_done, &sub->jobs[i], 0) != DPS_OK)
            sub->failures++;
    }
    return NULL;
}

static void test_one_batch(void)
{
    static struct submitter subs[SUBMITTERS];
    struct committer *c = NULL;
    struct committer_stats st;
    pthread_t threads[SUBMITTERS];
    int started = 0;

    reset();
    ok(committer_new(dsn, NULL, &c, NULL) == DPS_OK);
    ok(close_gate(c) == DPS_OK);
    for (int i = 0; i < SUBMITTERS; i++) {
        subs[i] = (struct submitter){.c = c, .index = i};
        ok(pthread_create(&threads[i], NULL, submit_many, &subs[i]) == 0);
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    started = 0;
    committer_stats(c, &st);
    ok_int(st.queued, SUBMITTERS * PER_SUBMITTER);
    open_gate();
    ok(wait_done(1 + SUBMITTERS * PER_SUBMITTER));
    committer_stats(c, &st);
    /* the gate's batch, then all 200 queued jobs in one transaction */
    ok_int(st.commits, 2);
    ok_int(st.max_batch, SUBMITTERS * PER_SUBMITTER);
    ok_int(st.jobs, 1 + SUBMITTERS * PER_SUBMITTER);
    ok_int(st.failed_jobs, 0);
    for (int i = 0; i < SUBMITTERS; i++) {
        ok_int(subs[i].failures, 0);
        for (int k = 0; k < PER_SUBMITTER; k++)
            ok_int(subs[i].jobs[k].rc, DPS_OK);
    }
    ok(setting_exists("t0.0"));
    ok(setting_exists("t3.49"));
end:
    open_gate();
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    committer_free(c);
}

/*
 * Holds the committer at the gate, submits the n jobs so that they queue
 * behind it, lets the gate go and waits for them: the jobs then make one
 * batch. Returns whether all of it worked and every job (and the gate) is done.
 */
static bool one_batch(struct committer *c, struct job *const *jobs, size_t n)
{
    if (close_gate(c) != DPS_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        if (committer_submit(c, NULL, job_run, job_done, jobs[i], 0) != DPS_OK) {
            open_gate();
            return false;
        }
    open_gate();
    return wait_done((int)n + 1);
}

/* ---- a failing job fails only itself ---- */

/*
 * Runs a, b and d in one batch of a new committer with options opt (NULL:
 * the defaults): a and d succeed and their rows stay, b fails with its
 * fail_code and its row is gone. *st receives the committer's figures.
 * False (reported) when any of that does not hold.
 */
static bool batch_around_failure(const struct committer_options *opt, struct job *a, struct job *b,
                                 struct job *d, struct committer_stats *st)
{
    struct committer *c = NULL;
    bool held = false;

    reset();
    ok(committer_new(dsn, opt, &c, NULL) == DPS_OK);
    ok(one_batch(c, (struct job *[]){a, b, d}, 3));
    ok_int(a->rc, DPS_OK);
    ok_int(b->rc, b->fail_code);
    ok_int(d->rc, DPS_OK);
    committer_stats(c, st);
    ok_int(st->failed_jobs, 1);
    ok(setting_exists(a->key));
    ok(!setting_exists(b->key)); /* never written, or undone with its unit */
    ok(setting_exists(d->key));
    held = true;
end:
    open_gate();
    committer_free(c);
    return held;
}

static void test_failing_job(void)
{
    struct committer_stats st;
    struct job a = {.key = "fail.a"}, b = {.key = "fail.b", .fail_code = DPS_ERR_PRECONDITION},
               d = {.key = "fail.c"};

    ok(batch_around_failure(NULL, &a, &b, &d, &st));
    ok_int(st.commits, 2);
    /* b failed after writing: the batch ran again, each job in a unit; d ran once, in the second */
    ok_int(st.reruns, 1);
    ok_int(a.runs, 2);
    ok_int(b.runs, 2);
    ok_int(d.runs, 1);
end:;
}

/* A job that fails before writing anything needs no second pass. */
static void test_failing_before_write(void)
{
    struct committer_stats st;
    struct job a = {.key = "early.a"},
               b = {.key = "early.b", .fail_code = DPS_ERR_CONFLICT, .fail_before = true},
               d = {.key = "early.c"};

    ok(batch_around_failure(NULL, &a, &b, &d, &st));
    ok_int(st.reruns, 0);
    ok_int(a.runs + b.runs + d.runs, 3);
end:;
}

/* rerun_all (--check-commit-reruns): every job runs twice, and every outcome stays. */
static void test_rerun_all(void)
{
    struct committer_options opt = {.rerun_all = true};
    struct committer_stats st;
    struct job a = {.key = "again.a"},
               b = {.key = "again.b", .fail_code = DPS_ERR_CONFLICT, .fail_before = true},
               d = {.key = "again.c"};

    ok(batch_around_failure(&opt, &a, &b, &d, &st));
    /* the gate's batch and the jobs' batch: both ran twice */
    ok_int(st.commits, 2);
    ok_int(st.reruns, 2);
    ok_int(a.runs, 2);
    ok_int(b.runs, 2);
    ok_int(d.runs, 2);
end:;
}

/* ---- registrations: a record and its attempt per job ---- */

/*
 * Writes registration id (group group, json json) with its attempt, then
 * with fail_after fails; with if_match, writes only the record, with that
 * If-Match. stored receives the record as written.
 */
struct reg_job {
    const char *id;
    const char *group;
    const char *json;
    const char *if_match;
    bool fail_after;
    struct store_object stored;
    int runs;
    int rc;
    bool done;
};

static int reg_run(struct store *s, void *arg, struct dps_error *err)
{
    struct reg_job *r = arg;
    struct store_put put = {.id = r->id,
                            .json = r->json ? r->json : "{}",
                            .group_id = r->group,
                            .status = "assigned",
                            .if_match = r->if_match};
    struct store_attempt_in ai = {
        .registration_id = r->id, .status = "assigned", .success = true, .json = "{}"};
    int rc;

    r->runs++;
    store_object_release(&r->stored);
    if (r->if_match)
        return store_registration_put(s, &put, &r->stored, err);
    rc = store_registration_put_with_attempt(s, &put, &ai, &r->stored, err);
    if (rc == DPS_OK && r->fail_after)
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "registration '%s' fails on purpose", r->id);
    return rc;
}

static void reg_done(void *arg, int rc, const struct dps_error *err)
{
    struct reg_job *r = arg;

    (void)err;
    pthread_mutex_lock(&lock);
    r->rc = rc;
    r->done = true;
    n_done++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* The registration id as stored with its json, or NULL (caller frees); attempts counted. */
static char *reg_json(const char *id, int64_t *attempts)
{
    struct store *s = NULL;
    struct store_object o = {0};
    struct store_attempt_list list = {0};
    char *json = NULL;

    *attempts = -1;
    if (store_open(dsn, &s, NULL) != DPS_OK)
        return NULL;
    if (store_registration_get(s, id, &o, NULL) == DPS_OK)
        json = xstrdup(o.json);
    if (store_attempt_list(s, id, false, 0, 100, &list, NULL) == DPS_OK)
        *attempts = (int64_t)list.n;
    store_attempt_list_release(&list);
    store_object_release(&o);
    store_close(s);
    return json;
}

static int64_t group_count(const char *group)
{
    struct store *s = NULL;
    struct store_query q = {.group_id = group};
    int64_t n = -1;

    if (store_open(dsn, &s, NULL) == DPS_OK)
        store_registration_count(s, &q, &n, NULL);
    store_close(s);
    return n;
}

static void run_regs(struct committer *c, struct reg_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ok(committer_submit(c, NULL, reg_run, reg_done, &jobs[i], 0) == DPS_OK);
end:;
}

static void test_registration_batches(void)
{
    struct committer *c = NULL;
    struct committer_stats st;
    struct reg_job first[3] = {{.id = "Reg-A", .group = "line-a"},
                               {.id = "reg-b", .group = "line-a"},
                               {.id = "reg-c", .group = "line-b"}};
    struct reg_job second[4] = {
        /* same group: the update leaves the group index alone */
        {.id = "REG-A", .group = "line-a", .json = "{\"v\":2}"},
        /* a stale If-Match in the middle fails before writing */
        {.id = "reg-b", .group = "line-a", .json = "{\"v\":2}", .if_match = "\"stale\""},
        /* moves between groups: the index follows */
        {.id = "reg-c", .group = "line-a", .json = "{\"v\":2}"},
        {.id = "reg-d", .group = NULL},
    };
    struct reg_job third[3] = {
        {.id = "reg-a", .group = "line-b", .json = "{\"v\":3}"},
        /* fails after writing its record and attempt: neither may stay */
        {.id = "reg-b", .group = "line-b", .json = "{\"v\":3}", .fail_after = true},
        {.id = "reg-e", .group = "line-b"},
    };
    char *json = NULL;
    int64_t attempts;

    reset();
    ok(committer_new(dsn, NULL, &c, NULL) == DPS_OK);
    ok(close_gate(c) == DPS_OK);
    run_regs(c, first, 3);
    open_gate();
    ok(wait_done(4));
    for (int i = 0; i < 3; i++) {
        ok_int(first[i].rc, DPS_OK);
        /* an insert: the id as given, created when updated */
        ok_str(first[i].stored.id, first[i].id);
        ok(first[i].stored.created_ms == first[i].stored.updated_ms);
    }
    usleep(2000);

    reset();
    ok(close_gate(c) == DPS_OK);
    run_regs(c, second, 4);
    open_gate();
    ok(wait_done(5));
    ok_int(second[0].rc, DPS_OK);
    ok_int(second[1].rc, DPS_ERR_PRECONDITION);
    ok_int(second[2].rc, DPS_OK);
    ok_int(second[3].rc, DPS_OK);
    /* an update: the id as first created, its creation time kept */
    ok_str(second[0].stored.id, "Reg-A");
    ok(second[0].stored.created_ms == first[0].stored.created_ms);
    ok(second[0].stored.updated_ms > first[0].stored.created_ms);
    ok_str(second[0].stored.group_id, "line-a");
    ok(second[2].stored.created_ms == first[2].stored.created_ms);
    committer_stats(c, &st);
    ok_int(st.reruns, 0);
    ok_int(group_count("line-a"), 3);
    ok_int(group_count("line-b"), 0);
    json = reg_json("reg-b", &attempts);
    ok_str(json, "{}");
    ok_int(attempts, 1);
    free(json);
    json = reg_json("reg-c", &attempts);
    ok_str(json, "{\"v\":2}");
    ok_int(attempts, 2);
    free(json);
    json = NULL;

    reset();
    ok(close_gate(c) == DPS_OK);
    run_regs(c, third, 3);
    open_gate();
    ok(wait_done(4));
    ok_int(third[0].rc, DPS_OK);
    ok_int(third[1].rc, DPS_ERR_INTERNAL);
    ok_int(third[2].rc, DPS_OK);
    committer_stats(c, &st);
    ok_int(st.reruns, 1);
    ok_int(third[1].runs, 2);
    /* reg-b keeps its record of the first batch and its one attempt */
    json = reg_json("reg-b", &attempts);
    ok_str(json, "{}");
    ok_int(attempts, 1);
    free(json);
    json = reg_json("reg-a", &attempts);
    ok_str(json, "{\"v\":3}");
    ok_int(attempts, 3);
    free(json);
    json = reg_json("reg-e", &attempts);
    ok_str(json, "{}");
    ok_int(attempts, 1);
    ok_int(group_count("line-a"), 2); /* reg-b, reg-c */
    ok_int(group_count("line-b"), 2); /* reg-a, reg-e */
end:
    free(json);
    open_gate();
    committer_free(c);
    for (int i = 0; i < 3; i++)
        store_object_release(&first[i].stored);
    for (int i = 0; i < 4; i++)
        store_object_release(&second[i].stored);
    for (int i = 0; i < 3; i++)
        store_object_release(&third[i].stored);
}

/* ---- a batch the store rolled back fails as a whole ---- */

/*
 * Connections opened while full_pages is set may grow their database by
 * that many pages at most, so a large write fails with "database or disk
 * is full", which rolls back the whole transaction.
 */
static int full_pages;

static int limit_pages(sqlite3 *db, const char **msg, const struct sqlite3_api_routines *api)
{
    char sql[64];

    (void)msg;
    (void)api;
    if (full_pages) {
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", full_pages);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    return SQLITE_OK;
}

static void test_batch_rolled_back(void)
{
    struct committer *c = NULL;
    struct committer_stats st;
    struct job a = {.key = "full.a"};
    struct reg_job big = {.id = "full-big"};
    struct reg_job after = {.id = "full-after"};
    size_t size = 512 * 1024;
    char *json = xmalloc(size + 3);
    int64_t attempts;
    char *stored = NULL;

    /* a JSON string of 512 KiB: far more pages than the limit leaves */
    json[0] = '"';
    memset(json + 1, 'x', size);
    json[size + 1] = '"';
    json[size + 2] = '\0';
    big.json = json;
    reset();
    sqlite3_auto_extension((void (*)(void))limit_pages);
    full_pages = 1; /* raised by SQLite to the current size */
    ok(committer_new(dsn, NULL, &c, NULL) == DPS_OK);
    full_pages = 0;
    ok(close_gate(c) == DPS_OK);
    ok(committer_submit(c, NULL, job_run, job_done, &a, 0) == DPS_OK);
    ok(committer_submit(c, NULL, reg_run, reg_done, &big, 0) == DPS_OK);
    ok(committer_submit(c, NULL, reg_run, reg_done, &after, 0) == DPS_OK);
    open_gate();
    ok(wait_done(4));
    ok_int(a.rc, DPS_ERR_STORE);
    ok_int(big.rc, DPS_ERR_STORE);
    ok_int(after.rc, DPS_ERR_STORE);
    /* a wrote; big's write failed and took the transaction with it; the batch stopped there */
    ok_int(a.runs, 1);
    ok_int(big.runs, 1);
    ok_int(after.runs, 0);
    committer_stats(c, &st);
    ok_int(st.failed_commits, 1);
    ok_int(st.reruns, 0);
    ok(!setting_exists("full.a"));
    stored = reg_json("full-big", &attempts);
    ok(!stored);
    ok_int(attempts, 0);
end:
    sqlite3_cancel_auto_extension((void (*)(void))limit_pages);
    free(stored);
    free(json);
    open_gate();
    committer_free(c);
    store_object_release(&big.stored);
    store_object_release(&after.stored);
}

/* ---- a failed commit fails the whole batch ---- */

static int fail_commit(void *arg, struct dps_error *err)
{
    int *left = arg;

    if (*left > 0) {
        (*left)--;
        return DPS_OK;
    }
    return dps_error_set(err, DPS_ERR_STORE, "disk I/O error (injected)");
}

static void test_commit_failure(void)
{
    struct committer *c = NULL;
    struct committer_stats st;
    int good_commits = 1; /* the gate's batch commits, the next one fails */
    struct committer_options opt = {.commit_hook = fail_commit, .hook_arg = &good_commits};
    struct job a = {.key = "lost.a"}, b = {.key = "lost.b"};

    reset();
    ok(committer_new(dsn, &opt, &c, NULL) == DPS_OK);
    ok(one_batch(c, (struct job *[]){&a, &b}, 2));
    ok_int(a.rc, DPS_ERR_STORE);
    ok_int(b.rc, DPS_ERR_STORE);
    committer_stats(c, &st);
    ok_int(st.commits, 1);
    ok_int(st.failed_commits, 1);
    ok(!setting_exists("lost.a"));
    ok(!setting_exists("lost.b"));
end:
    open_gate();
    committer_free(c);
}

/* ---- completions run on the submitter's loop ---- */

struct loop {
    struct event_base *base;
    pthread_t thread;
    struct event *keepalive;
};

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;

    event_base_dispatch(l->base);
    return NULL;
}

/* event_base_once's callback takes (fd, what, arg): adapt a void (*)(void *). */
struct trampoline {
    void (*fn)(void *arg);
    void *arg;
};

static void trampoline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct trampoline *t = arg;

    (void)fd;
    (void)what;
    t->fn(t->arg);
    free(t);
}

static void post_trampoline(void *target, void (*fn)(void *arg), void *arg)
{
    struct loop *l = target;
    struct timeval now = {0, 0};
    struct trampoline *t = malloc(sizeof(*t));

    if (!t)
        abort();
    t->fn = fn;
    t->arg = arg;
    event_base_once(l->base, -1, EV_TIMEOUT, trampoline_cb, t, &now);
}

static void test_completion_thread(void)
{
    struct loop loops[2] = {0};
    struct committer *c = NULL;
    struct committer_options opt = {.post = post_trampoline};
    struct job jobs[10] = {0};
    struct timeval hour = {3600, 0};
    int running = 0;

    reset();
    for (int i = 0; i < 2; i++) {
        ok((loops[i].base = event_base_new()) != NULL);
        /* a pending timer keeps the loop running until it is broken */
        loops[i].keepalive = event_new(loops[i].base, -1, 0, keepalive_cb, NULL);
        event_add(loops[i].keepalive, &hour);
        ok(pthread_create(&loops[i].thread, NULL, loop_main, &loops[i]) == 0);
        running++;
    }
    ok(committer_new(dsn, &opt, &c, NULL) == DPS_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(jobs[i].key, sizeof(jobs[i].key), "loop.%d", i);
        ok(committer_submit(c, &loops[i % 2], job_run, job_done, &jobs[i], 0) == DPS_OK);
    }
    ok(wait_done(10));
    for (int i = 0; i < 10; i++) {
        ok_int(jobs[i].rc, DPS_OK);
        ok(pthread_equal(jobs[i].on, loops[i % 2].thread));
    }
end:
    committer_free(c);
    for (int i = 0; i < running; i++) {
        event_base_loopbreak(loops[i].base);
        pthread_join(loops[i].thread, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (loops[i].keepalive)
            event_free(loops[i].keepalive);
        if (loops[i].base)
            event_base_free(loops[i].base);
    }
}

/* ---- stopping drains the queue; a full queue refuses what may be refused ---- */

static void test_shutdown_drains(void)
{
    static struct job jobs[300];
    struct committer *c = NULL;
    struct committer_options opt = {.batch_max = 64, .queue_max = 100};
    struct committer_stats st;
    int accepted = 0, refused = 0;

    reset();
    ok(committer_new(dsn, &opt, &c, NULL) == DPS_OK);
    ok(close_gate(c) == DPS_OK);
    for (int i = 0; i < 300; i++) {
        snprintf(jobs[i].key, sizeof(jobs[i].key), "drain.%d", i);
        /* every other job may be refused once 100 are queued */
        int rc = committer_submit(c, NULL, job_run, job_done, &jobs[i],
                                  i % 2 ? COMMITTER_MAY_REFUSE : 0);
        if (rc == DPS_OK)
            accepted++;
        else if (rc == DPS_ERR_BUSY)
            refused++;
    }
    ok(refused > 0);
    ok_int(accepted + refused, 300);
    committer_stats(c, &st);
    ok_int(st.refused, refused);
    open_gate();
    committer_free(c); /* runs and commits everything queued before returning */
    c = NULL;
    ok_int(n_done, 1 + accepted);
    for (int i = 0; i < 300; i++)
        if (jobs[i].done)
            ok_int(jobs[i].rc, DPS_OK);
    ok(setting_exists("drain.0"));
    ok(setting_exists("drain.298"));
end:
    open_gate();
    committer_free(c);
}

/* ---- under load a batch waits for more jobs; an idle job commits at once ---- */

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_commit_delay(void)
{
    struct committer_options opt = {.gather_us = 1000000};
    static struct job idle, first, second;
    struct committer *c = NULL;
    struct committer_stats st;
    struct timespec t0;

    reset();
    ok(committer_new(dsn, &opt, &c, NULL) == DPS_OK);
    /* the committer waited for this job: no delay */
    snprintf(idle.key, sizeof(idle.key), "delay.idle");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok(committer_submit(c, NULL, job_run, job_done, &idle, 0) == DPS_OK);
    ok(wait_done(1));
    ok(seconds_since(&t0) < 0.5);
    /*
     * first queues while the gate's batch runs, so the committer finds
     * work waiting and gives the next batch its delay: second, submitted
     * a moment later, joins first's batch.
     */
    ok(close_gate(c) == DPS_OK);
    snprintf(first.key, sizeof(first.key), "delay.first");
    snprintf(second.key, sizeof(second.key), "delay.second");
    ok(committer_submit(c, NULL, job_run, job_done, &first, 0) == DPS_OK);
    open_gate();
    usleep(100 * 1000);
    ok(committer_submit(c, NULL, job_run, job_done, &second, 0) == DPS_OK);
    ok(wait_done(4));
    committer_stats(c, &st);
    ok_int(st.commits, 3); /* idle, the gate, first with second */
    ok_int(st.max_batch, 2);
    ok_int(first.rc, DPS_OK);
    ok_int(second.rc, DPS_OK);
    ok(setting_exists("delay.second"));
end:
    open_gate();
    committer_free(c);
}

int main(void)
{
    evthread_use_pthreads();
    test_tmpdir(dir, sizeof(dir), "committer");
    snprintf(dsn, sizeof(dsn), "sqlite:%s/t.db", dir);
    subtest("jobs from several threads share one batch", test_one_batch);
    subtest("a failing job fails only itself", test_failing_job);
    subtest("a job failing before it writes needs no second pass", test_failing_before_write);
    subtest("with rerun_all every job runs twice, with the same outcome", test_rerun_all);
    subtest("registrations: updates, a group move, If-Match, a failure after writing",
            test_registration_batches);
    subtest("a batch the store rolled back fails as a whole", test_batch_rolled_back);
    subtest("a failed commit fails every job of the batch", test_commit_failure);
    subtest("completions run on the submitter's loop", test_completion_thread);
    subtest("stopping drains the queue; a full queue refuses", test_shutdown_drains);
    subtest("under load a batch waits for more jobs", test_commit_delay);
    test_tmpdir_remove_sqlite(dir, "t.db");
    return t_done();
}
