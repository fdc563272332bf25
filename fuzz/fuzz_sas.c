/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes SAS token parsing and the checks that follow it, the way dpsd
 * runs them on an Authorization header or an MQTT password.
 */
#include "core/common.h"
#include "core/sas.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sas_token *t = NULL;
    struct dps_error err;

    if (sas_token_parse((const char *)data, size, &t, &err) != SAS_OK)
        return 0;
    sas_check_expiry(t, 1700000000, &err);
    sas_check_device_resource(t, "0ne0000TEST", "sym-dev-01", &err);
    sas_check_service_resource(t, "localhost", "/enrollments/x", &err);
    sas_verify_service(t, "localhost", "/enrollments/x", "c2VydmljZS1rZXk=", 1700000000, &err);
    sas_signature_matches_b64(t, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    sas_token_free(t);
    return 0;
}
