/* SPDX-License-Identifier: MIT */
/* Unit tests of core/hex: hex digits and the UUID shape, against what snprintf writes. */
#include "core/common.h"
#include "core/hex.h"

#include "../t.h"

static void test_every_byte(void)
{
    unsigned char all[256];
    char got[2 * sizeof(all) + 1], want[3];
    char *end;

    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)i;
    end = hex_encode(all, sizeof(all), got);
    ok(end == got + 2 * sizeof(all));
    for (size_t i = 0; i < sizeof(all); i++) {
        snprintf(want, sizeof(want), "%02x", (unsigned int)i);
        ok(got[2 * i] == want[0] && got[2 * i + 1] == want[1]);
    }
    end = hex_encode_upper(all, sizeof(all), got);
    ok(end == got + 2 * sizeof(all));
    for (size_t i = 0; i < sizeof(all); i++) {
        snprintf(want, sizeof(want), "%02X", (unsigned int)i);
        ok(got[2 * i] == want[0] && got[2 * i + 1] == want[1]);
    }
end:;
}

static void test_empty_and_bounds(void)
{
    unsigned char one = 0xa5;
    char buf[4] = {'x', 'x', 'x', 'x'};

    /* Nothing to write: nothing written. */
    ok(hex_encode(&one, 0, buf) == buf);
    ok(buf[0] == 'x');
    /* Exactly two characters, no terminator. */
    ok(hex_encode(&one, 1, buf) == buf + 2);
    ok(buf[0] == 'a' && buf[1] == '5' && buf[2] == 'x');
end:;
}

static void test_uuid(void)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char seq[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f};
    char out[HEX_UUID_SIZE];

    memset(out, 'x', sizeof(out));
    hex_uuid_format(zero, out);
    ok_str(out, "00000000-0000-0000-0000-000000000000");
    hex_uuid_format(ff, out);
    ok_str(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");
    hex_uuid_format(seq, out);
    ok_str(out, "00112233-4455-6677-8899-aabbccddee0f");
    ok_int(strlen(out), HEX_UUID_SIZE - 1);
end:;
}

/* The shape the printf formats of tracking ids and etags wrote, for random bytes. */
static void test_uuid_matches_printf(void)
{
    unsigned char b[16];
    char got[HEX_UUID_SIZE], want[64];

    srand(7);
    for (int n = 0; n < 1000; n++) {
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)rand();
        hex_uuid_format(b, got);
        snprintf(want, sizeof(want),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
        ok_str(got, want);
    }
end:;
}

int main(void)
{
    subtest("every byte", test_every_byte);
    subtest("empty and bounds", test_empty_and_bounds);
    subtest("uuid", test_uuid);
    subtest("uuid matches printf", test_uuid_matches_printf);
    return t_done();
}
