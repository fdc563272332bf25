/* SPDX-License-Identifier: MIT */
/*
 * The small header every dpsd source file includes first: the error type,
 * a few macros, and the functions the project bans (see the list below,
 * after git's banned.h). Nothing module-specific belongs here.
 */
#ifndef DPS_COMMON_H
#define DPS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
/* Declared here, before the bans below, so later includes see no macros. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dps/error.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Memory for dpsd: aborts with a log line on out-of-memory, as every input
 * is bounded before it is read (see STYLE.md). The client library libdps
 * never calls these: it returns DPS_ERR_NOMEM instead.
 */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Functions that are easy to misuse: use snprintf, strtol/strtoll and gmtime_r. */
#define BANNED(fn) sorry_##fn##_is_a_banned_function
#undef strcpy
#define strcpy(a, b) BANNED(strcpy)
#undef strcat
#define strcat(a, b) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(a, b) BANNED(strtok)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef atoi
#define atoi(s) BANNED(atoi)

#endif
