/* SPDX-License-Identifier: MIT */
/*
 * dpsctl: the command-line client of dpsd. This file only dispatches to the
 * command groups; each group is a file of its own (cert.c, enrollment.c, ...).
 */
#include "core/common.h"
#include "cli/cli.h"

#include <stdarg.h>

static const struct cli_command commands[] = {
    {"cert", "make test PKIs: root, intermediate, device and verification certificates", cmd_cert},
    {"enrollment-group", "create, show, list, update and delete enrollment groups",
     cmd_enrollment_group},
    {"enrollment", "create, show, list, update and delete individual enrollments", cmd_enrollment},
    {"registration", "show, list and delete registration states, read attempt history",
     cmd_registration},
    {"policy", "manage shared access policies (dpsd extension)", cmd_policy},
    {"token", "print a service SAS token from the connection string", cmd_token},
    {"register", "register a device over HTTPS, as the device would", cmd_register},
    {"ca", "upload CA certificates and prove possession of their keys (dpsd extension)", cmd_ca},
    {"explain", "show what a device would get if it registered now, and why", cmd_explain},
};

void cli_errorf(const char *fmt, ...)
{
    va_list ap;

    fputs("dpsctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dpsctl <command> [options]\n\n"
               "Commands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-18s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'dpsctl <command> --help' for the options of a command.\n"
               "Service commands read the connection string from --connection-string or\n"
               "DPS_CONNECTION_STRING, and trust the server through --ca-file or DPS_CA_FILE.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dpsctl %s\n", DPS_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    }
    cli_errorf("unknown command '%s' (see 'dpsctl --help')", argv[1]);
    return CLI_USAGE;
}
