/* SPDX-License-Identifier: MIT */
/*
 * The rules for registration ids and enrollment group ids (dps-protocol.md
 * §8): what characters they may hold and how long they may be. Callers get a
 * message that names the offending character and its position. Comparing
 * ids (case-insensitively) is the store's business, not this module's.
 */
#ifndef DPS_CORE_REGID_H
#define DPS_CORE_REGID_H

#include <stddef.h>

#include "dps/error.h"

/* Longest id, in bytes. */
#define REGID_MAX 128

enum regid_kind {
    REGID_REGISTRATION,     /* a registration id ("registration id" in messages) */
    REGID_ENROLLMENT_GROUP, /* an enrollment group id ("enrollment group id" in messages) */
};

enum regid_flags {
    /*
     * Accept upper-case ASCII letters. Azure treats ids case-insensitively and
     * accepts upper case on the service API; ids that dpsd or dpsctl create
     * (certificate CNs, derived device ids) stay lower-case.
     */
    REGID_ALLOW_UPPER = 1 << 0,
};

/*
 * Checks an id: 1..REGID_MAX bytes of ASCII letters, digits and '-', '.',
 * '_', ':', whose last character is a letter, a digit or '-'. Upper-case
 * letters only with REGID_ALLOW_UPPER. Characters that would break paths or
 * MQTT topics ('/', '?', '#', '&', '$', spaces, control bytes, non-ASCII)
 * are never allowed.
 *
 * id: borrowed, len bytes, need not be NUL-terminated; may hold NUL bytes
 *   (which are rejected).
 * err: on failure, a message that quotes the id (shortened when long, with
 *   non-printable bytes escaped), names the character and its 1-based
 *   position, e.g. "registration id 'Dev-1' has upper-case 'D' at position 1:
 *   ids are lower-case letters, digits and '-', '.', '_', ':'".
 *
 * Returns: DPS_OK or DPS_ERR_INVAL.
 */
int regid_check(enum regid_kind kind, const char *id, size_t len, int flags, struct dps_error *err);

/* regid_check(REGID_REGISTRATION, id, len, 0, err): the strict, lower-case rule. */
int regid_validate(const char *id, size_t len, struct dps_error *err);

/* regid_check(REGID_ENROLLMENT_GROUP, id, len, 0, err): the strict, lower-case rule. */
int regid_group_validate(const char *id, size_t len, struct dps_error *err);

#endif
