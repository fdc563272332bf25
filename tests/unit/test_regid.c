/* SPDX-License-Identifier: MIT */
/* Unit tests of core/regid: registration and enrollment group id rules and their messages. */
#include "core/common.h"
#include "core/regid.h"

#include "../t.h"

static int check(const char *id, int flags, struct dps_error *err)
{
    return regid_check(REGID_REGISTRATION, id, strlen(id), flags, err);
}

static void test_valid(void)
{
    static const char *const good[] = {
        "a", "device-1", "dev.1_a:b", "0", "x-", "a.b.c-", "machine:line-3:unit_42"};
    struct dps_error err = {0};
    char max[REGID_MAX + 1];

    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        ok_int(regid_validate(good[i], strlen(good[i]), &err), DPS_OK);
    memset(max, 'a', REGID_MAX);
    max[REGID_MAX] = '\0';
    ok_int(regid_validate(max, REGID_MAX, &err), DPS_OK);
    ok_int(regid_group_validate("group-1", 7, &err), DPS_OK);
    ok_int(check("Dev-1", REGID_ALLOW_UPPER, &err), DPS_OK);
end:;
}

static void test_upper_case(void)
{
    struct dps_error err = {0};

    ok_int(regid_validate("Dev-1", 5, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "registration id 'Dev-1' has upper-case 'D' at position 1: ids are lower-case "
                    "letters, digits and '-', '.', '_', ':'");
    ok_int(regid_group_validate("grOup", 5, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "enrollment group id 'grOup' has upper-case 'O' at position 3: ids are "
                    "lower-case letters, digits and '-', '.', '_', ':'");
end:;
}

static void test_bad_characters(void)
{
    static const char *const bad[] = {"a/b", "a?b", "a#b", "a&b", "a$b", "a b", "a%b", "a+b"};
    struct dps_error err = {0};

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char want[32];

        ok_int(check(bad[i], REGID_ALLOW_UPPER, &err), DPS_ERR_INVAL);
        snprintf(want, sizeof(want), "has '%c' at position 2", bad[i][1]);
        ok(strstr(err.msg, want) != NULL);
    }
    ok_int(regid_validate("a/b", 3, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "registration id 'a/b' has '/' at position 2: ids are lower-case letters, "
                    "digits and '-', '.', '_', ':'");
    /* Non-printable and non-ASCII bytes are escaped, NUL bytes inside the length too. */
    ok_int(regid_validate("ab\0c", 4, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'ab\\x00c' has byte \\x00 at position 3") != NULL);
    ok_int(regid_validate("d\xc3\xa9v", 4, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "has byte \\xc3 at position 2") != NULL);
end:;
}

static void test_length_and_end(void)
{
    struct dps_error err = {0};
    char longid[REGID_MAX + 2];

    ok_int(regid_validate("", 0, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "registration id is empty");
    ok_int(regid_validate(NULL, 0, &err), DPS_ERR_INVAL);
    memset(longid, 'a', REGID_MAX + 1);
    longid[REGID_MAX + 1] = '\0';
    ok_int(regid_validate(longid, REGID_MAX + 1, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "is 129 characters long: at most 128 are allowed") != NULL);
    ok(strstr(err.msg, "...'") != NULL);
    ok_int(regid_validate("abc.", 4, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "registration id 'abc.' ends with '.': the last character must be a letter, a "
                    "digit or '-'");
    ok_int(regid_validate("abc_", 4, &err), DPS_ERR_INVAL);
    ok_int(regid_validate("abc:", 4, &err), DPS_ERR_INVAL);
    /* The length given wins over a NUL terminator. */
    ok_int(regid_validate("abc.", 3, &err), DPS_OK);
end:;
}

int main(void)
{
    subtest("valid ids", test_valid);
    subtest("upper case", test_upper_case);
    subtest("bad characters", test_bad_characters);
    subtest("length and last character", test_length_and_end);
    return t_done();
}
