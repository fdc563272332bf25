/* SPDX-License-Identifier: MIT */
/*
 * libdps calls for dpsd's CA certificates (/certificates) and the explain
 * route (/explain), on the service client's connection. Bodies pass through
 * as JSON text; only the upload and verify bodies are built here.
 */
#include "core/common.h"
#include "dps/service.h"

#include <jansson.h>

#include "client/service_call.h"

#define CERTIFICATES "/certificates"

/* Builds {"certificate": cert[, "isVerified": true]}; frees nothing it was given. */
static int cert_body(const char *cert, int verified, char **out, struct dps_error *err)
{
    json_t *o;

    if (!cert || !*cert)
        return dps_error_set(err, DPS_ERR_INVAL, "no certificate given");
    o = json_pack("{s:s}", "certificate", cert);
    if (o && verified)
        json_object_set_new(o, "isVerified", json_true());
    *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!*out)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory (or the certificate is not UTF-8)");
    return DPS_OK;
}

static int check_name(const char *name, struct dps_error *err)
{
    if (!name || !*name)
        return dps_error_set(err, DPS_ERR_INVAL, "no certificate name given");
    return DPS_OK;
}

int dps_ca_upload(struct dps_service_client *c, const char *name, const char *cert, int verified,
                  const char *if_match, char **out, struct dps_error *err)
{
    char *body = NULL;
    int rc;

    if ((rc = check_name(name, err)) != DPS_OK || (rc = cert_body(cert, verified, &body, err)))
        return rc;
    rc = service_call(c, "PUT", CERTIFICATES, name, NULL, body, if_match, out, err);
    free(body);
    return rc;
}

int dps_ca_get(struct dps_service_client *c, const char *name, char **out, struct dps_error *err)
{
    int rc = check_name(name, err);

    return rc ? rc : service_call(c, "GET", CERTIFICATES, name, NULL, NULL, NULL, out, err);
}

int dps_ca_list(struct dps_service_client *c, char **out, struct dps_error *err)
{
    return service_call(c, "GET", CERTIFICATES, NULL, NULL, NULL, NULL, out, err);
}

int dps_ca_delete(struct dps_service_client *c, const char *name, const char *if_match,
                  struct dps_error *err)
{
    int rc = check_name(name, err);

    return rc ? rc : service_call(c, "DELETE", CERTIFICATES, name, NULL, NULL, if_match, NULL, err);
}

int dps_ca_verification_code(struct dps_service_client *c, const char *name, const char *if_match,
                             char **out, struct dps_error *err)
{
    int rc = check_name(name, err);

    return rc ? rc
              : service_call(c, "POST", CERTIFICATES, name, "/generateVerificationCode", "",
                             if_match, out, err);
}

int dps_ca_verify(struct dps_service_client *c, const char *name, const char *proof,
                  const char *if_match, char **out, struct dps_error *err)
{
    char *body = NULL;
    int rc;

    if ((rc = check_name(name, err)) != DPS_OK || (rc = cert_body(proof, 0, &body, err)))
        return rc;
    rc = service_call(c, "POST", CERTIFICATES, name, "/verify", body, if_match, out, err);
    free(body);
    return rc;
}

int dps_explain(struct dps_service_client *c, const char *json, char **out, struct dps_error *err)
{
    if (!json || !*json)
        return dps_error_set(err, DPS_ERR_INVAL, "no json body given");
    return service_call(c, "POST", "/explain", NULL, NULL, json, NULL, out, err);
}
