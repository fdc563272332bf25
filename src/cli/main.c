/* SPDX-License-Identifier: MIT */
/* dpsctl: entry point. */
#include "core/common.h"

int main(int argc, char **argv)
{
    fprintf(stderr, "dpsctl %s\n", DPS_VERSION);
    return 0;
}
