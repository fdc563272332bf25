/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for core/regid: any bytes, both id kinds, both case rules. An
 * accepted id must obey the rules; a rejected one must leave a terminated,
 * non-empty message.
 */
#include "core/common.h"
#include "core/regid.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *id = (const char *)data;

    for (int kind = REGID_REGISTRATION; kind <= REGID_ENROLLMENT_GROUP; kind++) {
        for (int flags = 0; flags <= REGID_ALLOW_UPPER; flags++) {
            struct dps_error err = {0};
            int rc = regid_check((enum regid_kind)kind, id, size, flags, &err);

            if (rc == DPS_OK) {
                assert(size >= 1 && size <= REGID_MAX);
                for (size_t i = 0; i < size; i++)
                    assert(data[i] > 0x20 && data[i] < 0x7f && data[i] != '/' && data[i] != '#');
            } else {
                assert(rc == DPS_ERR_INVAL);
                assert(memchr(err.msg, '\0', sizeof(err.msg)) != NULL && err.msg[0] != '\0');
            }
        }
    }
    return 0;
}
