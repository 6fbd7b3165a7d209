/* ui_assets.h - the web UI's files, compiled into the program: the table
 * ui/embed.sh generates (ui_assets.c, a built source) from ui/. */
#ifndef AGENTTRACED_API_UI_ASSETS_H
#define AGENTTRACED_API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;         /* file name under /ui/ */
    const char *content_type; /* by its extension */
    const char *etag;         /* 32 hex digits of its SHA-256, without quotes */
    const unsigned char *data;
    size_t size;
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_nassets;

#endif
