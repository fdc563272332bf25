/* SPDX-License-Identifier: MIT */
/*
 * The portal's files, embedded into dpsd at build time by scripts/embed.py
 * from web/. The table ends with an entry whose path is NULL.
 */
#ifndef DPS_SERVER_PORTAL_ASSETS_H
#define DPS_SERVER_PORTAL_ASSETS_H

#include <stddef.h>

struct portal_asset {
    const char *path; /* "/index.html", relative to /portal */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

extern const struct portal_asset portal_assets[];

#endif
