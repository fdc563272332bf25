/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the HTTP request reader and the router: bytes in, requests or a
 * rejection out, no I/O. The input is fed in two pieces (split at a point
 * taken from the first byte) so that callbacks that see partial tokens are
 * exercised, and every request read is routed.
 */
#include "core/common.h"
#include "server/http.h"

static void nop(struct http_request *req, void *arg)
{
}

static const struct http_route routes[] = {
    {"GET", "/enrollments/{id}", nop, NULL},
    {"PUT", "/enrollmentGroups/{id}", nop, NULL},
    {"POST", "/{idScope}/registrations/{registrationId}/register", nop, NULL},
    {"GET", "/{idScope}/registrations/{registrationId}/operations/{operationId}", nop, NULL},
    {NULL, "/portal/*", nop, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_limits lim = http_default_limits;
    struct http_reader *r;
    struct http_router *router;
    size_t split, off = 0;

    if (size == 0)
        return 0;
    lim.max_body = 4096;
    r = http_reader_new(&lim);
    router = http_router_new();
    http_router_add(router, routes, ARRAY_SIZE(routes));
    split = 1 + (size_t)data[0] % size;

    while (off < size) {
        size_t end = off < split ? split : size, used = 0;
        struct http_request *req = NULL;
        struct dps_error err;
        int status = 0;

        if (http_reader_feed(r, (const char *)data + off, end - off, &used, &req, &status, &err) !=
            DPS_OK) {
            if (status < 400 || status > 505)
                abort();
            break;
        }
        if (req) {
            http_router_match(router, req, &status);
            http_request_header(req, "content-type");
            http_request_query(req, "api-version");
            http_request_free(req);
        } else if (used == 0) {
            break;
        }
        off += used;
    }
    http_router_free(router);
    http_reader_free(r);
    return 0;
}
