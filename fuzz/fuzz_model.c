/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the service API model: the same bytes are parsed as an individual
 * enrollment, an enrollment group, a registration state, a query and both
 * kinds of bulk operation, and whatever parses is written back to JSON.
 */
#include "core/common.h"
#include "core/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    free(s);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct enrollment *e = NULL;
    struct enrollment_group *g = NULL;
    struct registration_state *r = NULL;
    struct bulk_op *op = NULL;
    struct dps_error err;
    char *q = NULL;

    if (model_enrollment_from_json(buf, size, &e, &err) == DPS_OK) {
        dump(model_enrollment_to_json(e, 0));
        dump(model_enrollment_to_json(e, MODEL_WITH_SECRETS));
        enrollment_free(e);
    }
    if (model_group_from_json_flags(buf, size, MODEL_PARSE_STORED, &g, &err) == DPS_OK) {
        dump(model_group_to_json(g, MODEL_WITH_SECRETS));
        enrollment_group_free(g);
    }
    if (model_registration_state_from_json(buf, size, &r, &err) == DPS_OK) {
        dump(model_registration_state_to_json(r));
        registration_state_free(r);
    }
    if (model_query_from_json(buf, size, &q, &err) == DPS_OK)
        free(q);
    for (int groups = 0; groups < 2; groups++) {
        if (model_bulk_from_json(buf, size, groups, 0, &op, &err) == DPS_OK) {
            dump(model_bulk_result_to_json(op));
            model_bulk_free(op);
        }
    }
    return 0;
}
