/* store.c - the storage directory: staging, content-addressed objects,
 * atomic session commits, subagent links. */
#include "agenttrace/store.h"

#include "agenttrace/buf.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MIN_AGE 60   /* seconds: younger staging entries are never swept */
#define SWEEP_DIR_AGE 3600 /* seconds: a session built aside older than this is dead */

struct at_store {
    char *root;
};

static at_result sys_fail(at_error *err, const char *what, const char *path)
{
    int e = errno;
    at_result r = at_error_set(err, AT_ERR_IO, -1, "%s %s: %s", what, path, strerror(e));
    if (err)
        err->sys_errno = e;
    return r;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

at_store *at_store_open(const char *root, at_error *err)
{
    char p[PATH_MAX];
    /* Leaves room below PATH_MAX for every name we build under root. */
    if (strlen(root) > PATH_MAX - 1024) {
        at_error_set(err, AT_ERR_INVALID, -1, "storage path too long");
        return NULL;
    }
    static const char *const dirs[] = {"objects/sha256", ".agent-traced/tmp", ".agent-traced/links"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        if (mkdir_p(p) < 0) {
            sys_fail(err, "cannot create", p);
            return NULL;
        }
    }
    at_store *s = calloc(1, sizeof *s);
    if (!s || !(s->root = strdup(root))) {
        free(s);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    return s;
}

void at_store_free(at_store *s)
{
    if (!s)
        return;
    free(s->root);
    free(s);
}

const char *at_store_root(const at_store *s)
{
    return s->root;
}

bool at_session_id_ok(const char *id, size_t n)
{
    if (n == 0 || n > AT_MAX_SESSION_ID || id[0] == '.')
        return false;
    if (n == 7 && memcmp(id, "objects", 7) == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] == '/' || id[i] == '\\' || id[i] == 0)
            return false;
    return true;
}

void at_store_session_path(const at_store *s, const char *id, const char *file, char *out, size_t outlen)
{
    if (file)
        snprintf(out, outlen, "%s/%s/%s", s->root, id, file);
    else
        snprintf(out, outlen, "%s/%s", s->root, id);
}

void at_store_object_path(const at_store *s, const char *hex, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/objects/sha256/%.2s/%s.ndjson", s->root, hex, hex);
}

at_result at_store_stage(at_store *s, at_stage *st, at_error *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.agent-traced/tmp/import-XXXXXX", s->root);
    st->fd = mkostemp(p, O_CLOEXEC);
    if (st->fd < 0)
        return sys_fail(err, "cannot create staging file in", s->root);
    /* Held until the fd is closed, by us or by our death: at_store_sweep
     * takes an unlocked staging file for one whose writer is gone. */
    flock(st->fd, LOCK_EX | LOCK_NB);
    st->path = strdup(p);
    if (!st->path) {
        close(st->fd);
        unlink(p);
        st->fd = -1;
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    return AT_OK;
}

/* Removes dir/name/<files> and the directory (one level: what a session
 * built aside holds). */
static bool remove_flat_dir(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(fd, e->d_name, 0);
    closedir(d);
    return unlinkat(dirfd, name, AT_REMOVEDIR) == 0;
}

unsigned at_store_sweep(at_store *s)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.agent-traced/tmp", s->root);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int dfd = dirfd(d);
    time_t now = time(NULL);
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || now - st.st_mtime < SWEEP_MIN_AGE)
            continue; /* just made: its writer may not hold its lock yet */
        if (strncmp(e->d_name, "import-", 7) == 0 && S_ISREG(st.st_mode)) {
            int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
                continue;
            if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dfd, e->d_name, 0) == 0)
                removed++; /* nobody holds it: its upload died */
            close(fd);
        } else if (strncmp(e->d_name, "session-", 8) == 0 && S_ISDIR(st.st_mode) &&
                   now - st.st_mtime >= SWEEP_DIR_AGE) {
            /* built and renamed within milliseconds; an old one was left by a crash */
            removed += remove_flat_dir(dfd, e->d_name);
        }
    }
    closedir(d);
    return removed;
}

void at_stage_discard(at_stage *st)
{
    if (st->fd >= 0)
        close(st->fd);
    if (st->path)
        unlink(st->path);
    free(st->path);
    st->fd = -1;
    st->path = NULL;
}

static int fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

at_result at_write_file_atomic(const char *path, const char *data, size_t n, at_error *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot create", tmp);
    if (at_write_all(fd, data, n) != AT_OK)
        goto fail;
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
        goto fail;
    close(fd);
    if (rename(tmp, path) < 0) {
        sys_fail(err, "cannot rename into", path);
        unlink(tmp);
        return AT_ERR_IO;
    }
    fsync_dir(path);
    return AT_OK;
fail:
    sys_fail(err, "cannot write", tmp);
    close(fd);
    unlink(tmp);
    return AT_ERR_IO;
}

/* Streams a file through SHA-256. */
static at_result hash_file(const char *path, char hex[AT_SHA256_HEX])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return AT_ERR_IO;
    at_sha256 *h = at_sha256_new();
    static __thread char block[1 << 16];
    at_result r = h ? AT_OK : AT_ERR_NOMEM;
    for (ssize_t k; r == AT_OK && (k = read(fd, block, sizeof block)) != 0;) {
        if (k < 0) {
            if (errno != EINTR)
                r = AT_ERR_IO;
            continue;
        }
        at_sha256_update(h, block, (size_t)k);
    }
    close(fd);
    if (r == AT_OK) {
        uint8_t dg[AT_SHA256_LEN];
        at_sha256_final(h, dg);
        at_hex(dg, AT_SHA256_LEN, hex);
    }
    at_sha256_free(h);
    return r;
}

/* ---- subagent links ------------------------------------------------------ */

/* links/<parent> holds one JSON array ["<agent id>", "<event id>"] per line. */
static at_result write_links(at_store *s, const char *sid, const at_import_result *res, at_error *err)
{
    char p[PATH_MAX];
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = AT_OK;
    for (size_t i = 0; r == AT_OK && i < res->nlinks; i++) {
        if ((r = at_buf_addc(&b, '[')) == AT_OK &&
            (r = at_json_write_wtf8(&b, res->links[i].agent_id, strlen(res->links[i].agent_id))) == AT_OK &&
            (r = at_buf_addc(&b, ',')) == AT_OK &&
            (r = at_json_write_wtf8(&b, res->links[i].event_id, res->links[i].event_id_len)) == AT_OK)
            r = at_buf_add(&b, "]\n", 2);
    }
    snprintf(p, sizeof p, "%s/.agent-traced/links/%s", s->root, sid);
    if (r == AT_OK)
        r = at_write_file_atomic(p, b.data ? b.data : "", b.len, err);
    at_buf_fini(&b);
    return r;
}

/* The event id of the tool call in `parent` that spawned `agent_id`, if
 * the parent's links are known. Returns true when found (*outn may be 0). */
static bool find_link(at_store *s, const char *parent, const char *agent_id,
                      char out[AT_MAX_EVENT_ID_BYTES + 1], size_t *outn)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.agent-traced/links/%s", s->root, parent);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool found = false;
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf a;
    at_buf_init(&a, 0);
    while (!found && (n = getline(&line, &cap, f)) > 0) {
        if (at_json_parse(&d, line, (size_t)n, NULL) != AT_OK || !at_json_is(&d, 0, AT_JSON_ARRAY) ||
            d.nodes[0].len != 2)
            continue;
        uint32_t k = at_json_first(&d, 0), e = at_json_next(&d, 0, k);
        if (!at_json_str_eq(&d, k, agent_id, strlen(agent_id)) || !at_json_is(&d, e, AT_JSON_STRING))
            continue;
        at_buf_reset(&a);
        if (at_json_str_decode(&d, e, &a) == AT_OK && a.len <= AT_MAX_EVENT_ID_BYTES) {
            memset(out, 0, AT_MAX_EVENT_ID_BYTES + 1);
            memcpy(out, a.data ? a.data : "", a.len);
            *outn = a.len;
            found = true;
        }
    }
    at_buf_fini(&a);
    at_json_doc_fini(&d);
    free(line);
    fclose(f);
    return found;
}

static int session_depth(at_store *s, const char *sid)
{
    char p[PATH_MAX];
    at_meta m;
    at_meta_init(&m);
    at_store_session_path(s, sid, "meta.json", p, sizeof p);
    int depth = -1;
    if (at_meta_load(&m, p, NULL) == AT_OK)
        depth = (int)at_meta_get_number(&m, AT_META_DEPTH, 0.0);
    at_meta_fini(&m);
    return depth;
}

static at_result write_meta(const char *path, const at_meta *m, at_error *err)
{
    at_buf b;
    at_buf_init(&b, AT_MAX_META_BYTES);
    at_result r = at_meta_write(m, &b, &AT_JSON_PRETTY);
    if (r == AT_OK)
        r = at_write_file_atomic(path, b.data, b.len, err);
    else
        at_error_set(err, r, -1, "cannot serialize session metadata");
    at_buf_fini(&b);
    return r;
}

/* A parent just arrived: complete the metas of its stored subagents. */
static at_result complete_children(at_store *s, const char *sid, const at_import_result *res, int depth,
                                   at_error *err)
{
    char child[PATH_MAX], p[PATH_MAX];
    for (size_t i = 0; i < res->nlinks; i++) {
        snprintf(child, sizeof child, "agent-%s.%s", res->links[i].agent_id, sid);
        if (!at_session_id_ok(child, strlen(child)))
            continue;
        at_store_session_path(s, child, "meta.json", p, sizeof p);
        at_meta m;
        at_meta_init(&m);
        at_result r = at_meta_load(&m, p, NULL);
        if (r == AT_OK) {
            r = at_meta_set_int(&m, AT_META_DEPTH, depth + 1);
            if (r == AT_OK && res->links[i].event_id_len)
                r = at_meta_set_string(&m, AT_META_PARENT_EVENT_ID, res->links[i].event_id,
                                       res->links[i].event_id_len);
            if (r == AT_OK)
                r = write_meta(p, &m, err);
        }
        at_meta_fini(&m);
        if (r != AT_OK && r != AT_ERR_NOT_FOUND)
            return r;
    }
    return AT_OK;
}

/* ---- commit -------------------------------------------------------------- */

static int lock_store(at_store *s)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.agent-traced/lock", s->root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void unlock_store(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

/* Places the staged file as the object for hex (or drops it if that object
 * already exists). */
static at_result place_object(at_store *s, at_stage *st, const char *hex, char *obj, size_t objlen,
                              at_error *err)
{
    char dir[PATH_MAX];
    at_store_object_path(s, hex, obj, objlen);
    snprintf(dir, sizeof dir, "%s/objects/sha256/%.2s", s->root, hex);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return sys_fail(err, "cannot create", dir);
    if (fsync(st->fd) < 0)
        return sys_fail(err, "cannot sync", st->path);
    struct stat sb;
    if (stat(obj, &sb) == 0)
        return AT_OK; /* identical bytes are stored once */
    /* Objects are immutable: read-only, so nothing appends through a link. */
    if (fchmod(st->fd, 0444) < 0 || rename(st->path, obj) < 0)
        return sys_fail(err, "cannot store object", obj);
    free(st->path);
    st->path = NULL;
    fsync_dir(obj);
    return AT_OK;
}

at_result at_store_commit_import(at_store *s, at_stage *st, at_import_result *res, at_commit_info *info,
                                 at_error *err)
{
    char hex[AT_SHA256_HEX], obj[PATH_MAX], dir[PATH_MAX], p[PATH_MAX], tmpdir[PATH_MAX];
    at_result r = AT_OK;
    int lock = -1;
    memset(info, 0, sizeof *info);
    const char *sid = res->session_id;
    if (!at_session_id_ok(sid, strlen(sid))) {
        r = at_error_set(err, AT_ERR_INVALID, -1, "unsafe session id: %.80s", sid);
        goto out;
    }
    at_hex(res->events_sha256, AT_SHA256_LEN, hex);
    if ((lock = lock_store(s)) < 0) {
        r = sys_fail(err, "cannot lock", s->root);
        goto out;
    }
    if ((r = place_object(s, st, hex, obj, sizeof obj, err)) != AT_OK)
        goto out;

    /* Subagent fields: known when the parent (and its links) are. */
    if (res->parent_session_id) {
        int pdepth = session_depth(s, res->parent_session_id);
        info->depth = pdepth >= 0 ? pdepth + 1 : 1;
        if ((r = at_meta_set_int(&res->meta, AT_META_DEPTH, info->depth)) != AT_OK)
            goto out;
        if (find_link(s, res->parent_session_id, res->agent_id, info->parent_event_id,
                      &info->parent_event_id_len) &&
            info->parent_event_id_len &&
            (r = at_meta_set_string(&res->meta, AT_META_PARENT_EVENT_ID, info->parent_event_id,
                                    info->parent_event_id_len)) != AT_OK)
            goto out;
    }

    at_store_session_path(s, sid, NULL, dir, sizeof dir);
    at_store_session_path(s, sid, "events.ndjson", p, sizeof p);
    struct stat cur, ob;
    if (stat(dir, &cur) < 0) {
        /* New session: build it aside, then rename it into place whole. */
        snprintf(tmpdir, sizeof tmpdir, "%s/.agent-traced/tmp/session-XXXXXX", s->root);
        if (!mkdtemp(tmpdir)) {
            r = sys_fail(err, "cannot create", tmpdir);
            goto out;
        }
        char f[PATH_MAX];
        snprintf(f, sizeof f, "%s/meta.json", tmpdir);
        if ((r = write_meta(f, &res->meta, err)) == AT_OK) {
            snprintf(f, sizeof f, "%s/events.ndjson", tmpdir);
            if (link(obj, f) < 0)
                r = sys_fail(err, "cannot link", f);
        }
        if (r == AT_OK && chmod(tmpdir, 0755) < 0)
            r = sys_fail(err, "cannot chmod", tmpdir);
        if (r == AT_OK && rename(tmpdir, dir) < 0)
            r = sys_fail(err, "cannot create session", dir);
        if (r != AT_OK) {
            snprintf(f, sizeof f, "%s/meta.json", tmpdir);
            unlink(f);
            snprintf(f, sizeof f, "%s/events.ndjson", tmpdir);
            unlink(f);
            rmdir(tmpdir);
            goto out;
        }
        fsync_dir(dir);
        info->status = AT_COMMIT_CREATED;
    } else if (stat(p, &cur) == 0 && stat(obj, &ob) == 0 && cur.st_ino == ob.st_ino &&
               cur.st_dev == ob.st_dev) {
        info->status = AT_COMMIT_UNCHANGED;
        at_store_session_path(s, sid, "meta.json", p, sizeof p);
        if ((r = write_meta(p, &res->meta, err)) != AT_OK)
            goto out;
    } else {
        /* Replace: events first (a rename is atomic), then meta. */
        char old[AT_SHA256_HEX] = "";
        if (hash_file(p, old) == AT_OK && strcmp(old, hex) == 0) {
            info->status = AT_COMMIT_UNCHANGED;
        } else {
            info->status = AT_COMMIT_REPLACED;
            memcpy(info->replaced, old, sizeof old);
        }
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.events.ndjson.new", dir);
        unlink(tmp);
        if (link(obj, tmp) < 0 || rename(tmp, p) < 0) {
            r = sys_fail(err, "cannot replace", p);
            unlink(tmp);
            goto out;
        }
        at_store_session_path(s, sid, "meta.json", p, sizeof p);
        if ((r = write_meta(p, &res->meta, err)) != AT_OK)
            goto out;
    }

    if (res->nlinks) {
        if ((r = write_links(s, sid, res, err)) != AT_OK)
            goto out;
        int depth = session_depth(s, sid);
        r = complete_children(s, sid, res, depth < 0 ? 0 : depth, err);
    } else {
        snprintf(p, sizeof p, "%s/.agent-traced/links/%s", s->root, sid);
        unlink(p);
    }
out:
    unlock_store(lock);
    at_stage_discard(st);
    return r;
}
