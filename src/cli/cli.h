/* SPDX-License-Identifier: MIT */
/*
 * dpsctl's command groups. Each group lives in its own file and exposes one
 * entry point that takes the arguments after the group name (argv[0] is the
 * group name) and returns the process exit status:
 *   0 success, 1 the operation failed (the message says why),
 *   2 usage error, 3 not found, 4 authentication or permission refused,
 *   5 conflict or precondition failed.
 */
#ifndef DPS_CLI_H
#define DPS_CLI_H

enum cli_exit {
    CLI_OK = 0,
    CLI_FAILED = 1,
    CLI_USAGE = 2,
    CLI_NOT_FOUND = 3,
    CLI_AUTH = 4,
    CLI_CONFLICT = 5,
};

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

/* Prints "dpsctl: " and the message to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The groups' entry points, as described at the top: an enum cli_exit status. */
int cmd_cert(int argc, char **argv);
int cmd_enrollment_group(int argc, char **argv);
int cmd_enrollment(int argc, char **argv);
int cmd_registration(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_explain(int argc, char **argv);

#endif
