/* SPDX-License-Identifier: MIT */
/* Unit tests of the error module: names, HTTP statuses, message formatting. */
#include "core/common.h"
#include "../t.h"

static void test_set_and_status(void)
{
    struct dps_error err;

    ok(dps_error_set(&err, DPS_ERR_INVAL, "field '%s' is %d", "x", 3) == DPS_ERR_INVAL);
    ok_str(err.msg, "field 'x' is 3");
    ok_int(dps_err_http_status(DPS_ERR_PRECONDITION), 412);
    ok_int(dps_err_http_status(DPS_ERR_NOT_FOUND), 404);
    ok_int(dps_err_http_status(9999), 500);
    ok_str(dps_strerror(DPS_ERR_AUTH), "unauthorized");
    ok(dps_error_set(NULL, DPS_ERR_IO, "ignored") == DPS_ERR_IO);
    dps_error_clear(&err);
    ok_int(err.code, DPS_OK);
    ok_str(err.msg, "");
end:;
}

int main(void)
{
    subtest("error set and http status", test_set_and_status);
    return t_done();
}
