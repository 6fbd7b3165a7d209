/* usage.c - the token usage kept with a session's versions.
 *
 *   history/<id>/usage.<N>.json   usage.h's JSON for version N, written by
 *                                 the commit that makes N (before its
 *                                 version record), for imports only
 *
 * A version made otherwise (POST /events, another program's change) has no
 * file of its own: the transcript's usage is the newest file at or below
 * the current version, unless an import newer than that file recorded none
 * (an import by an agent-traced without usage, or resumed from a state
 * saved by one). gc removes the files of the versions it retires, except
 * the newest file, which later versions may still stand on (only the
 * newest file at or below the current version is ever read). */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static at_result usage_path(at_store *s, const char *sid, uint64_t v, char *p, size_t cap)
{
    return store_path(s, p, cap, ".agent-traced/history/%s/usage.%llu.json", sid, (unsigned long long)v);
}

at_result store_write_usage(at_store *s, const char *sid, uint64_t version, const at_import_result *res,
                            at_error *err)
{
    char p[PATH_MAX];
    if (usage_path(s, sid, version, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (!res->usage) {
        unlink(p); /* one a commit cut short left for this number */
        return AT_OK;
    }
    return at_write_file_atomic(p, res->usage, res->usage_len, err);
}

void store_drop_usage(at_store *s, const char *sid, uint64_t version)
{
    char p[PATH_MAX];
    if (usage_path(s, sid, version, p, sizeof p) == AT_OK)
        unlink(p);
}

/* Is name "usage.<N>.json"? *v = N. */
static bool usage_name(const char *name, uint64_t *v)
{
    if (strncmp(name, "usage.", 6) != 0)
        return false;
    const char *q = name + 6;
    uint64_t n = 0;
    if (*q < '1' || *q > '9')
        return false;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*q - '0');
    }
    if (strcmp(q, ".json") != 0)
        return false;
    *v = n;
    return true;
}

/* The highest N of a usage.<N>.json in the session's history at or below
 * max (0: none). */
static uint64_t newest_usage(at_store *s, const char *sid, uint64_t max)
{
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s", sid) != AT_OK)
        return 0;
    DIR *d = opendir(p);
    if (!d)
        return 0;
    uint64_t best = 0, v;
    struct dirent *e;
    while ((e = readdir(d)))
        if (usage_name(e->d_name, &v) && v <= max && v > best)
            best = v;
    closedir(d);
    return best;
}

void store_retire_usage(at_store *s, const char *sid, uint64_t first_kept)
{
    uint64_t keep = newest_usage(s, sid, UINT64_MAX);
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s", sid) != AT_OK)
        return;
    DIR *d = opendir(p);
    if (!d)
        return;
    uint64_t v;
    struct dirent *e;
    while ((e = readdir(d)))
        if (usage_name(e->d_name, &v) && v < first_kept && v != keep)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

at_result at_store_usage(at_store *s, const char *sid, char **json, size_t *len, uint64_t *version,
                         at_error *err)
{
    *json = NULL;
    *len = 0;
    *version = 0;
    if (s->db)
        return sdb_usage(s, sid, json, len, version, err);
    at_version *v = NULL;
    size_t n = 0;
    at_result r = at_store_versions(s, sid, &v, &n, err);
    if (r != AT_OK)
        return r;
    uint64_t limit = n ? v[n - 1].version : 0, u = 0;
    while (limit && (u = newest_usage(s, sid, limit)) != 0) {
        /* a file must belong to an import: a commit that died before its
         * version record can leave one under a number an append took
         * since (then look further down); an import after the file that
         * recorded nothing makes the usage unknown */
        bool stale = false;
        for (size_t i = n; u && !stale && i-- > 0 && v[i].version >= u;) {
            if (v[i].cause == AT_CAUSE_IMPORT && v[i].version > u)
                u = 0;
            else if (v[i].version == u && v[i].cause != AT_CAUSE_IMPORT)
                stale = true;
        }
        if (!stale)
            break;
        limit = u - 1;
        u = 0;
    }
    free(v);
    if (!u)
        return AT_OK;
    char p[PATH_MAX];
    if (usage_path(s, sid, u, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size > (off_t)AT_MAX_LINE_BYTES) {
        if (fd >= 0)
            close(fd);
        return errno == ENOENT ? AT_OK : sys_fail(err, "cannot read", p); /* gc'd meanwhile */
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    ssize_t k = pread(fd, buf, (size_t)sb.st_size, 0);
    close(fd);
    if (k != sb.st_size) {
        free(buf);
        return at_error_set(err, AT_ERR_IO, -1, "cannot read %s", p);
    }
    buf[k] = 0;
    *json = buf;
    *len = (size_t)k;
    *version = u;
    return AT_OK;
}

at_result at_store_list(at_store *s, char ***ids, size_t *n, at_error *err)
{
    *ids = NULL;
    *n = 0;
    if (s->db)
        return sdb_list(s, NULL, 0, ids, n, err);
    DIR *d = opendir(s->root);
    if (!d)
        return sys_fail(err, "cannot list", s->root);
    size_t cap = 0;
    at_result r = AT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!at_session_id_ok(e->d_name, strlen(e->d_name)) || !at_store_session_exists(s, e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(*ids, cap * sizeof *nv);
            if (!nv) {
                r = AT_ERR_NOMEM;
                break;
            }
            *ids = nv;
        }
        if (!((*ids)[*n] = strdup(e->d_name))) {
            r = AT_ERR_NOMEM;
            break;
        }
        ++*n;
    }
    closedir(d);
    if (r != AT_OK) {
        at_store_list_free(*ids, *n);
        *ids = NULL;
        *n = 0;
        return at_error_set(err, r, -1, "out of memory");
    }
    return AT_OK;
}

void at_store_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

at_result at_store_descendants(at_store *s, const char *sid, char ***out, size_t *nout, at_error *err)
{
    char **ids;
    size_t n;
    *out = NULL;
    *nout = 0;
    at_result r = at_store_list(s, &ids, &n, err);
    if (r != AT_OK)
        return r;
    char **parent = calloc(n ? n : 1, sizeof *parent);
    bool *taken = calloc(n ? n : 1, sizeof *taken);
    char **res = calloc(n ? n : 1, sizeof *res);
    size_t nres = 0;
    at_buf b;
    at_buf_init(&b, 0);
    if (!parent || !taken || !res) {
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        at_meta m;
        at_meta_init(&m);
        at_buf_reset(&b);
        if (at_store_meta_load(s, ids[i], &m, NULL) == AT_OK &&
            at_meta_get_string(&m, AT_META_PARENT_SESSION_ID, &b) == AT_OK && b.len &&
            !memchr(b.data, 0, b.len) && !(parent[i] = strndup(b.data, b.len)))
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        at_meta_fini(&m);
        if (r != AT_OK)
            goto out;
        if (strcmp(ids[i], sid) == 0)
            taken[i] = true; /* the root is no descendant of itself, even in a cycle */
    }
    /* breadth first: each round takes the children of the sessions found so far */
    const char *frontier_root = sid;
    size_t scanned = 0;
    for (;;) {
        bool grew = false;
        for (size_t i = 0; i < n; i++) {
            if (taken[i] || !parent[i])
                continue;
            bool child = strcmp(parent[i], frontier_root) == 0;
            for (size_t j = 0; !child && j < nres; j++)
                child = strcmp(parent[i], res[j]) == 0;
            if (child) {
                taken[i] = true;
                res[nres++] = ids[i];
                ids[i] = NULL;
                grew = true;
            }
        }
        if (!grew || scanned++ > n)
            break;
    }
    *out = res;
    *nout = nres;
    res = NULL;
out:
    for (size_t i = 0; i < n; i++)
        free(parent ? parent[i] : NULL);
    free(parent);
    free(taken);
    free(res);
    at_buf_fini(&b);
    at_store_list_free(ids, n);
    return r;
}
