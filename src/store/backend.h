/* SPDX-License-Identifier: MIT */
/*
 * The contract between the store front (store.c) and its backends. A backend
 * fills a struct store_ops and embeds struct store at the start of its
 * connection struct. The front has checked every argument before a backend
 * function runs (ids and texts bounded, limits clamped, pointers non-NULL),
 * so backends only translate to their database. Not for use outside
 * src/store.
 */
#ifndef DPS_STORE_BACKEND_H
#define DPS_STORE_BACKEND_H

#include "store/store.h"

struct store_ops;

/* The part of every connection the front reads; backends embed it first. */
struct store {
    const struct store_ops *ops;
    bool in_batch; /* between store_batch_begin() and commit/rollback */
    bool in_unit;  /* between store_batch_unit_begin() and store_batch_unit_end() */
    bool in_read;  /* between store_read_begin() and store_read_end() */
};

/*
 * One backend. Every function follows the contract of the store_*()
 * function of the same name in store.h; out-parameters are set only on
 * success.
 */
struct store_ops {
    const char *scheme; /* the DSN prefix before ':' */
    /* target: the DSN after "scheme:", non-empty. */
    int (*open)(const char *target, struct store **out, struct dps_error *err);
    void (*close)(struct store *s);

    int (*object_get)(struct store *s, enum store_kind kind, const char *id,
                      struct store_object *out, struct dps_error *err);
    int (*object_put)(struct store *s, enum store_kind kind, const struct store_put *in,
                      struct store_object *out, struct dps_error *err);
    int (*object_delete)(struct store *s, enum store_kind kind, const char *id,
                         const char *if_match, struct dps_error *err);
    /* q->limit is already within 1..STORE_PAGE_MAX. */
    int (*object_list)(struct store *s, enum store_kind kind, const struct store_query *q,
                       struct store_page *out, struct dps_error *err);
    int (*object_count)(struct store *s, enum store_kind kind, const struct store_query *q,
                        int64_t *out, struct dps_error *err);

    int (*attempt_append)(struct store *s, const struct store_attempt_in *in, int64_t *id_out,
                          struct dps_error *err);
    /* before_id is already INT64_MAX for "newest"; limit within 1..STORE_PAGE_MAX. */
    int (*attempt_list)(struct store *s, const char *registration_id, bool failures_only,
                        int64_t before_id, size_t limit, struct store_attempt_list *out,
                        struct dps_error *err);

    /* Batches: the front tracks in_batch and never nests them. */
    int (*batch_begin)(struct store *s, struct dps_error *err);
    int (*batch_commit)(struct store *s, struct dps_error *err);
    void (*batch_rollback)(struct store *s);
    /*
     * Optional (NULL: the backend cannot count, and store_batch_changes()
     * answers -1); called only inside a batch.
     */
    int (*batch_changes)(struct store *s, int64_t *out, struct dps_error *err);
    /*
     * Reads: optional (NULL: each read stands alone); the front tracks
     * in_read and never nests them or mixes them with a batch.
     */
    int (*read_begin)(struct store *s, struct dps_error *err);
    void (*read_end)(struct store *s);
    /* Optional (NULL: the backend has nothing to move off the connection). */
    int (*checkpoint_in_background)(struct store *s, struct dps_error *err);
    int64_t (*background_checkpoints)(struct store *s);
    /* Units: only inside a batch, never nested (the front checks). */
    int (*unit_begin)(struct store *s, struct dps_error *err);
    int (*unit_end)(struct store *s, bool keep, struct dps_error *err);

    int (*policy_get)(struct store *s, const char *name, struct store_policy *out,
                      struct dps_error *err);
    /* create_only: DPS_ERR_CONFLICT, nothing written, when the policy exists. */
    int (*policy_put)(struct store *s, const struct store_policy *in, bool create_only,
                      struct store_policy *out, struct dps_error *err);
    int (*policy_delete)(struct store *s, const char *name, struct dps_error *err);
    int (*policy_list)(struct store *s, struct store_policy_list *out, struct dps_error *err);

    int (*setting_get)(struct store *s, const char *key, char **out, struct dps_error *err);
    /* create_only: DPS_ERR_CONFLICT, nothing written, when the setting exists. */
    int (*setting_put)(struct store *s, const char *key, const char *value, bool create_only,
                       struct dps_error *err);

    int (*audit_append)(struct store *s, const struct store_audit_in *in, int64_t *id_out,
                        struct dps_error *err);
    int (*audit_list)(struct store *s, int64_t before_id, size_t limit,
                      struct store_audit_list *out, struct dps_error *err);
};

/*
 * Helpers the front provides to every backend.
 *
 * store_etag_new: writes a fresh etag for kind into buf (at least
 *   STORE_ETAG_SIZE bytes): a quoted random UUID-shaped value, Cosmos style,
 *   and for registration records the base64 of that, as Azure shows them.
 * store_now_ms: the current Unix time in milliseconds.
 */
#define STORE_ETAG_SIZE 64
void store_etag_new(enum store_kind kind, char *buf);
int64_t store_now_ms(void);

#endif
