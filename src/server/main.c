/* SPDX-License-Identifier: MIT */
/* dpsd: entry point. */
#include "core/common.h"

int main(int argc, char **argv)
{
    fprintf(stderr, "dpsd %s\n", DPS_VERSION);
    return 0;
}
