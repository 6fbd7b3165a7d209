/* sessions.c - session ids: what may reach the file system, prefix
 * resolution, and the listing of <root>/(*)/meta.json.
 *
 * With a catalog (serve) prefixes resolve from memory; without one (tests,
 * tools) every call reads the directory again (one readdir plus one fstatat
 * per entry; an exact id costs a single stat). */
#include "sessions.h"

#include "agenttrace/catalog.h"
#include "agenttrace/store.h"

#include "http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names that can never be sessions even when they hold a meta.json. */
static bool reserved(const char *name)
{
    return name[0] == '.' || strcmp(name, "objects") == 0 || strcmp(name, "workspaces") == 0;
}

static bool has_meta(int dirfd, const char *name)
{
    char rel[AT_MAX_SESSION_ID + 16];
    struct stat sb;
    if (reserved(name) || strlen(name) > AT_MAX_SESSION_ID)
        return false;
    if (at_storage_path(NULL, AT_PATH_META, name, rel, sizeof rel) != AT_OK)
        return false;
    return fstatat(dirfd, rel, &sb, 0) == 0 && S_ISREG(sb.st_mode);
}

bool sessions_exists(const char *root, const char *name)
{
    char p[PATH_MAX];
    struct stat sb;
    if (reserved(name))
        return false;
    if (at_storage_path(root, AT_PATH_META, name, p, sizeof p) != AT_OK)
        return false;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

void sessions_free_ids(char **ids, size_t n)
{
    if (!ids)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* The sessions whose name starts with prefix (all when prefix is NULL).
 * With stop_after > 0, scanning ends once that many matched. */
static at_result scan(const char *root, const char *prefix, size_t stop_after, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    DIR *d = opendir(root);
    if (!d)
        return AT_ERR_IO;
    size_t plen = prefix ? strlen(prefix) : 0, cap = 0;
    char **v = NULL;
    at_result r = AT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (plen && strncmp(e->d_name, prefix, plen) != 0)
            continue;
        if (!has_meta(dirfd(d), e->d_name))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                r = AT_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[*n] = strdup(e->d_name))) {
            r = AT_ERR_NOMEM;
            break;
        }
        ++*n;
        if (stop_after && *n >= stop_after)
            break;
    }
    closedir(d);
    if (r != AT_OK) {
        sessions_free_ids(v, *n);
        *n = 0;
        return r;
    }
    *ids = v;
    return AT_OK;
}

at_result sessions_scan(const char *root, char ***ids, size_t *n)
{
    return scan(root, NULL, 0, ids, n);
}

/* agent-strace's find_session resolves an exact id first, then a prefix.
 * When a prefix matches several sessions we answer 404 ("session not
 * found"), as find_session returns None for an ambiguous prefix: picking
 * one would depend on directory order, and a client must never get
 * another session's data by accident. */
int sessions_resolve(server_ctx *ctx, const char *id, char **out, http_response *resp)
{
    *out = NULL;
    size_t n = id ? strnlen(id, AT_MAX_SESSION_ID + 1) : 0;
    if (!at_session_id_ok(id, n)) {
        http_response_error(resp, 400, "invalid session id");
        return 400;
    }
    if (ctx->catalog) {
        at_result r = at_catalog_resolve(ctx->catalog, id, out);
        if (r == AT_OK)
            return 200;
        if (r == AT_ERR_INVALID) {
            http_response_error(resp, 400, "invalid session id");
            return 400;
        }
        if (r == AT_ERR_NOT_FOUND) {
            http_response_error(resp, 404, "session not found: %s", id);
            return 404;
        }
        http_response_error(resp, 500, "cannot list sessions: %s", at_result_str(r));
        return 500;
    }
    if (!ctx->root) {
        /* a database store */
        at_error err = {0};
        at_result r = at_store_resolve(ctx->store, id, out, &err);
        int status = r == AT_OK ? 200 : r == AT_ERR_INVALID ? 400 : r == AT_ERR_NOT_FOUND || r == AT_ERR_CONFLICT ? 404 : 500;
        if (status == 400)
            http_response_error(resp, 400, "invalid session id");
        else if (status == 404)
            http_response_error(resp, 404, "session not found: %s", id);
        else if (status == 500)
            http_response_error(resp, 500, "cannot list sessions: %s", err.message);
        return status;
    }
    if (sessions_exists(ctx->root, id)) {
        if (!(*out = strdup(id))) {
            http_response_error(resp, 500, "out of memory");
            return 500;
        }
        return 200;
    }
    char **ids;
    size_t k;
    at_result r = scan(ctx->root, id, 2, &ids, &k);
    if (r != AT_OK) {
        http_response_error(resp, 500, "cannot list sessions: %s", at_result_str(r));
        return 500;
    }
    if (k == 1) {
        *out = ids[0];
        free(ids);
        return 200;
    }
    sessions_free_ids(ids, k);
    http_response_error(resp, 404, "session not found: %s", id);
    return 404;
}
