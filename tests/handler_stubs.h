/* handler_stubs.h - a minimal sessions_resolve so handler modules (tree.c,
 * index.c) can be unit-tested without sessions.c (responses come from the
 * real src/http_response.c). Include in exactly one test translation unit. */
#ifndef AGENTTRACED_HANDLER_STUBS_H
#define AGENTTRACED_HANDLER_STUBS_H

#include "http.h"
#include "sessions.h"
#include "agenttrace/json.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* exact directory with meta.json, else a unique prefix */
int sessions_resolve(server_ctx *ctx, const char *id, char **out, http_response *resp)
{
    if (!at_session_id_ok(id, strlen(id))) {
        http_response_error(resp, 400, "invalid session id");
        return 400;
    }
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/meta.json", ctx->root, id);
    if (stat(p, &st) == 0) {
        *out = strdup(id);
        return 200;
    }
    DIR *d = opendir(ctx->root);
    char *found = NULL;
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, id, strlen(id)) != 0)
            continue;
        snprintf(p, sizeof p, "%s/%s/meta.json", ctx->root, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        n++;
        free(found);
        found = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    if (n == 1) {
        *out = found;
        return 200;
    }
    free(found);
    http_response_error(resp, 404, "session not found: %s", id);
    return 404;
}

#endif
