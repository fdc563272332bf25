/* SPDX-License-Identifier: MIT */
/* dpsctl cert: test PKIs. */
#include "core/common.h"
#include "cli/cli.h"

int cmd_cert(int argc, char **argv)
{
    cli_errorf("cert: no subcommand given");
    return CLI_USAGE;
}
