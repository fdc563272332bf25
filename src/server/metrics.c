/* SPDX-License-Identifier: MIT */
/*
 * The /metrics page: relaxed atomic counters, rendered into one bounded
 * buffer on request.
 */
#include "core/common.h"
#include "server/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>

#include "server/committer.h"
#include "server/server.h"

static const char *const outcomes[] = {"assigned", "failed", "disabled", "unauthorized", "error"};

static atomic_ullong registrations[ARRAY_SIZE(outcomes)];
static struct committer *metrics_committer;

void metrics_count_registration(const char *status)
{
    size_t i;

    for (i = 0; i + 1 < ARRAY_SIZE(outcomes); i++)
        if (status && strcmp(status, outcomes[i]) == 0)
            break;
    atomic_fetch_add_explicit(&registrations[i], 1, memory_order_relaxed);
}

void metrics_count_registration_result(const struct provision_result *res)
{
    if (res->status == 401)
        metrics_count_registration("unauthorized");
    else if (res->status >= 400)
        metrics_count_registration("error");
    else
        metrics_count_registration(res->operation_status);
}

/* Appends to buf at *used; output past the end is dropped (the page is far smaller). */
static void put(char *buf, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*used >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n < size - *used ? (size_t)n : size - *used;
}

static void counter(char *buf, size_t size, size_t *used, const char *name, const char *help,
                    unsigned long long v)
{
    put(buf, size, used, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void serve_metrics(struct http_request *req, void *arg)
{
    char buf[4096];
    size_t used = 0;
    struct committer_stats st = {0};

    (void)arg;
    put(buf, sizeof(buf), &used,
        "# HELP dpsd_registrations_total device registrations answered, by outcome\n"
        "# TYPE dpsd_registrations_total counter\n");
    for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++)
        put(buf, sizeof(buf), &used, "dpsd_registrations_total{outcome=\"%s\"} %llu\n", outcomes[i],
            atomic_load_explicit(&registrations[i], memory_order_relaxed));
    if (metrics_committer) {
        committer_stats(metrics_committer, &st);
        counter(buf, sizeof(buf), &used, "dpsd_store_commits_total",
                "group commit transactions committed (one fsync each)",
                (unsigned long long)st.commits);
        counter(buf, sizeof(buf), &used, "dpsd_store_commit_failures_total",
                "group commit batches that could not be committed",
                (unsigned long long)st.failed_commits);
        counter(buf, sizeof(buf), &used, "dpsd_store_jobs_total",
                "writes run by the group commit, failed ones included",
                (unsigned long long)st.jobs);
        counter(buf, sizeof(buf), &used, "dpsd_store_job_failures_total",
                "writes of the group commit that failed", (unsigned long long)st.failed_jobs);
        counter(buf, sizeof(buf), &used, "dpsd_store_batch_reruns_total",
                "group commit batches run a second time, each write in its own unit: after a "
                "write failed having written, or every batch with check-commit-reruns on",
                (unsigned long long)st.reruns);
        counter(buf, sizeof(buf), &used, "dpsd_store_checkpoints_total",
                "write-ahead log checkpoints run beside the group commit (SQLite)",
                (unsigned long long)st.checkpoints);
        counter(buf, sizeof(buf), &used, "dpsd_store_jobs_refused_total",
                "writes refused because the group commit queue was full",
                (unsigned long long)st.refused);
        put(buf, sizeof(buf), &used,
            "# HELP dpsd_store_jobs_queued writes waiting for the group commit\n"
            "# TYPE dpsd_store_jobs_queued gauge\ndpsd_store_jobs_queued %llu\n"
            "# HELP dpsd_store_batch_max the largest batch committed\n"
            "# TYPE dpsd_store_batch_max gauge\ndpsd_store_batch_max %llu\n",
            (unsigned long long)st.queued, (unsigned long long)st.max_batch);
    }
    http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, used);
}

void metrics_add_routes(struct http_router *router, struct committer *cm)
{
    static struct http_route route = {"GET", "/metrics", serve_metrics, NULL};

    metrics_committer = cm;
    http_router_add(router, &route, 1);
}
