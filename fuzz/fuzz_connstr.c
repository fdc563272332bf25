/* SPDX-License-Identifier: MIT */
/* Fuzzes connection string parsing, as dpsctl and libdps run it on user input. */
#include "core/common.h"
#include "core/connstr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct connstr *cs = NULL;
    struct dps_error err;

    if (connstr_parse((const char *)data, size, &cs, &err) == DPS_OK)
        connstr_free(cs);
    return 0;
}
