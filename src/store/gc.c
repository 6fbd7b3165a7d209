/* gc.c - retention and garbage collection.
 *
 * Under the exclusive store lock (writers wait; readers go on: objects that
 * stay are never touched), in this order:
 *   1. retention over whole sessions, as agent-strace's retention applies
 *      its limits: age (a session whose ended_at, else started_at, else
 *      meta.json's mtime, is older than max_age_days), then count (only the
 *      newest max_sessions by started_at stay), then size (the oldest go
 *      until the sessions' files fit in max_size_mb); a session goes with
 *      its history and links;
 *   2. histories: each session keeps its newest keep_versions versions;
 *      the history of a session whose directory is gone is dropped;
 *   3. objects: every object a kept version needs (itself and the bases of
 *      its delta chain) stays; everything else under objects/ goes.
 * A dry run computes the same report and removes nothing. */
#include "store_int.h"

#include "agenttrace/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char (*hex)[AT_SHA256_HEX];
    size_t n, cap;
} hex_set;

static at_result set_add(hex_set *h, const char *hex)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        char(*nv)[AT_SHA256_HEX] = realloc(h->hex, cap * sizeof *nv);
        if (!nv)
            return AT_ERR_NOMEM;
        h->hex = nv;
        h->cap = cap;
    }
    memcpy(h->hex[h->n++], hex, AT_SHA256_HEX);
    return AT_OK;
}

static int cmp_hex(const void *a, const void *b)
{
    return memcmp(a, b, AT_SHA256_HEX);
}

static bool set_has(const hex_set *h, const char *hex)
{
    return bsearch(hex, h->hex, h->n, sizeof *h->hex, cmp_hex) != NULL;
}

/* rm -r of a directory holding plain files (a session or a history). */
static uint64_t remove_tree(const char *path, bool dry)
{
    uint64_t freed = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        struct stat sb;
        int k = snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (k < 0 || (size_t)k >= sizeof p || lstat(p, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            freed += remove_tree(p, dry);
            continue;
        }
        freed += (uint64_t)sb.st_size;
        if (!dry)
            unlink(p);
    }
    closedir(d);
    if (!dry)
        rmdir(path);
    return freed;
}

static at_result list_sessions(at_store *s, gc_session **out, size_t *n, at_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(s->root);
    if (!d)
        return sys_fail(err, "cannot list", s->root);
    size_t cap = 0;
    at_result r = AT_OK;
    struct dirent *e;
    while (r == AT_OK && (e = readdir(d))) {
        if (!at_session_id_ok(e->d_name, strlen(e->d_name)) || !at_store_session_exists(s, e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            gc_session *nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
                break;
            }
            *out = nv;
        }
        gc_session *g = &(*out)[*n];
        memset(g, 0, sizeof *g);
        if (!(g->sid = strdup(e->d_name))) {
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            break;
        }
        at_meta m;
        at_meta_init(&m);
        char p[PATH_MAX];
        struct stat sb;
        if (at_store_meta_load(s, g->sid, &m, NULL) == AT_OK) {
            g->started = at_meta_get_number(&m, AT_META_STARTED_AT, 0.0);
            double ended = at_meta_get_number(&m, AT_META_ENDED_AT, 0.0);
            g->when = ended > 0 ? ended : g->started;
        }
        at_meta_fini(&m);
        if (at_store_session_path(s, g->sid, "meta.json", p, sizeof p) == AT_OK && stat(p, &sb) == 0) {
            g->bytes += (uint64_t)sb.st_size;
            if (!(g->when > 0))
                g->when = (double)sb.st_mtim.tv_sec;
        }
        if (at_store_session_path(s, g->sid, "events.ndjson", p, sizeof p) == AT_OK && stat(p, &sb) == 0)
            g->bytes += (uint64_t)sb.st_size;
        if (g->started != g->started)
            g->started = 0;
        ++*n;
    }
    closedir(d);
    return r;
}

/* Newest first: started_at descending, then id descending. */
static int cmp_newest(const void *pa, const void *pb)
{
    const gc_session *a = pa, *b = pb;
    if (a->started != b->started)
        return a->started > b->started ? -1 : 1;
    return -strcmp(a->sid, b->sid);
}

static void remove_session(at_store *s, gc_session *g, const at_gc_policy *p, at_gc_report *rep)
{
    char path[PATH_MAX];
    g->removed = true;
    rep->sessions_removed++;
    if (at_store_session_path(s, g->sid, NULL, path, sizeof path) == AT_OK)
        rep->bytes_freed += remove_tree(path, p->dry_run);
    if (store_path(s, path, sizeof path, ".agent-traced/history/%s", g->sid) == AT_OK)
        remove_tree(path, p->dry_run);
    if (store_path(s, path, sizeof path, ".agent-traced/links/%s", g->sid) == AT_OK && !p->dry_run)
        unlink(path);
}

/* Keeps the newest `keep` versions of a session (and the stamp records of
 * those), rewriting its history; adds the objects they need to live. */
static at_result trim_history(at_store *s, const char *sid, const at_gc_policy *p, hex_set *live,
                              at_gc_report *rep, at_error *err)
{
    at_version *v;
    char(*objs)[AT_SHA256_HEX];
    size_t n;
    at_result r = history_list(s, sid, &v, &objs, &n, err);
    if (r != AT_OK)
        return r;
    size_t first = p->keep_versions > 0 && n > (size_t)p->keep_versions ? n - (size_t)p->keep_versions : 0;
    for (size_t i = first; r == AT_OK && i < n; i++) {
        char(*bases)[AT_SHA256_HEX];
        size_t nb;
        if ((r = object_bases(s, objs[i], &bases, &nb)) != AT_OK)
            break;
        for (size_t k = 0; r == AT_OK && k < nb; k++)
            r = set_add(live, bases[k]);
        free(bases);
    }
    if (r == AT_OK && first > 0) {
        rep->versions_removed += first;
        if (!p->dry_run) {
            store_retire_usage(s, sid, v[first].version);
            /* Rewrite the history with the kept records only. */
            char path[PATH_MAX];
            if (store_path(s, path, sizeof path, ".agent-traced/history/%s/versions", sid) != AT_OK) {
                free(v);
                return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
            }
            FILE *f = fopen(path, "re");
            at_buf keep;
            at_buf_init(&keep, 0);
            at_json_doc d;
            at_json_doc_init(&d);
            char *line = NULL;
            size_t cap = 0;
            ssize_t k;
            uint64_t min_version = v[first].version;
            while (f && r == AT_OK && (k = getline(&line, &cap, f)) > 0) {
                if (at_json_parse(&d, line, (size_t)k, NULL) != AT_OK || !at_json_is(&d, 0, AT_JSON_OBJECT))
                    continue;
                uint32_t seen = at_json_get(&d, 0, "seen"), ver = at_json_get(&d, 0, "version"),
                         logged = at_json_get(&d, 0, "logged");
                uint32_t num = seen != AT_JSON_NONE ? seen : logged != AT_JSON_NONE ? logged : ver;
                double vn = at_json_is(&d, num, AT_JSON_INT)
                                ? at_json_parse_double(d.src + d.nodes[num].off, d.nodes[num].len)
                                : 0;
                if (vn >= (double)min_version)
                    r = at_buf_add(&keep, line, (size_t)k);
            }
            free(line);
            at_json_doc_fini(&d);
            if (f)
                fclose(f);
            if (r == AT_OK)
                r = at_write_file_atomic(path, keep.data ? keep.data : "", keep.len, err);
            at_buf_fini(&keep);
        }
    }
    free(v);
    free(objs);
    return r;
}

/* Removes every object file not in live. */
static at_result sweep_objects(at_store *s, const hex_set *live, const at_gc_policy *p, at_gc_report *rep)
{
    char base[PATH_MAX];
    if (store_path(s, base, sizeof base, "objects/sha256") != AT_OK)
        return AT_ERR_TOO_BIG;
    DIR *d = opendir(base);
    if (!d)
        return AT_ERR_IO;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) != 2)
            continue;
        char sub[PATH_MAX];
        int k = snprintf(sub, sizeof sub, "%s/%s", base, e->d_name);
        if (k < 0 || (size_t)k >= sizeof sub)
            continue;
        DIR *o = opendir(sub);
        struct dirent *f;
        while (o && (f = readdir(o))) {
            const char *dot = strchr(f->d_name, '.');
            if (f->d_name[0] == '.' || !dot || dot - f->d_name != 64)
                continue;
            char hex[AT_SHA256_HEX];
            memcpy(hex, f->d_name, 64);
            hex[64] = 0;
            if (set_has(live, hex)) {
                rep->objects_kept++;
                continue;
            }
            struct stat sb;
            if (fstatat(dirfd(o), f->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            rep->objects_removed++;
            rep->bytes_freed += (uint64_t)sb.st_size;
            if (!p->dry_run)
                unlinkat(dirfd(o), f->d_name, 0);
        }
        if (o)
            closedir(o);
    }
    closedir(d);
    return AT_OK;
}

void gc_choose(gc_session *v, size_t n, const at_gc_policy *p, double now)
{
    if (p->max_age_days > 0)
        for (size_t i = 0; i < n; i++)
            if (v[i].when < now - p->max_age_days * 86400.0)
                v[i].removed = true;
    if (n) /* qsort of NULL is undefined, even for 0 elements */
        qsort(v, n, sizeof *v, cmp_newest);
    int64_t kept = 0;
    for (size_t i = 0; p->max_sessions > 0 && i < n; i++)
        if (!v[i].removed && ++kept > p->max_sessions)
            v[i].removed = true;
    if (p->max_size_mb > 0) {
        uint64_t total = 0, limit = (uint64_t)(p->max_size_mb * 1024 * 1024);
        for (size_t i = 0; i < n; i++)
            total += v[i].removed ? 0 : v[i].bytes;
        for (size_t i = n; total > limit && i-- > 0;)
            if (!v[i].removed) {
                total -= v[i].bytes;
                v[i].removed = true;
            }
    }
}

at_result at_store_gc(at_store *s, const at_gc_policy *p, at_gc_report *rep, at_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (s->db)
        return sdb_gc(s, p, rep, err);
    int lk = lock_store(s, true);
    if (lk < 0)
        return sys_fail(err, "cannot lock", s->root);
    if (!p->dry_run)
        at_store_sweep(s);
    gc_session *v = NULL;
    size_t n = 0;
    hex_set live = {0};
    at_result r = list_sessions(s, &v, &n, err);
    if (r == AT_OK) {
        gc_choose(v, n, p, (double)time(NULL));
        for (size_t i = 0; i < n; i++)
            if (v[i].removed)
                remove_session(s, &v[i], p, rep);
        for (size_t i = 0; r == AT_OK && i < n; i++)
            if (!v[i].removed)
                r = trim_history(s, v[i].sid, p, &live, rep, err);
    }
    /* histories of sessions that no longer exist */
    char hist[PATH_MAX];
    if (r == AT_OK && store_path(s, hist, sizeof hist, ".agent-traced/history") == AT_OK) {
        DIR *d = opendir(hist);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.' || at_store_session_exists(s, e->d_name))
                continue;
            char path[PATH_MAX];
            int k = snprintf(path, sizeof path, "%s/%s", hist, e->d_name);
            if (k > 0 && (size_t)k < sizeof path)
                remove_tree(path, p->dry_run);
        }
        if (d)
            closedir(d);
    }
    if (r == AT_OK) {
        if (live.n)
            qsort(live.hex, live.n, sizeof *live.hex, cmp_hex);
        r = sweep_objects(s, &live, p, rep);
        if (r != AT_OK)
            at_error_set(err, r, -1, "cannot sweep objects");
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].sid);
    free(v);
    free(live.hex);
    unlock_store(lk);
    return r;
}
