/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for core/x509_info: certificate text as the service API
 * receives it (PEM, base64 of PEM, base64 DER) through decoding, the info
 * fields and their JSON form.
 */
#include "core/common.h"
#include "core/x509_info.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dps_error err = {0};
    struct x509_info info;
    X509 *cert = NULL;
    json_t *j;

    if (x509_info_parse((const char *)data, size, &info, &cert, &err) != DPS_OK) {
        assert(cert == NULL);
        assert(err.msg[0] != '\0');
        return 0;
    }
    assert(strlen(info.sha1_thumbprint) == 40 && strlen(info.sha256_thumbprint) == 64);
    j = x509_info_to_json(&info);
    assert(j != NULL);
    json_decref(j);
    X509_free(cert);
    return 0;
}
