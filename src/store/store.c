/* store.c - the storage directory: opening and upgrading it, paths, locks,
 * staging, sweeping, metadata.
 *
 * Design. A session's events exist twice: as objects (immutable files named
 * by their SHA-256, one per version, written once and never opened for
 * writing again) and as <id>/events.ndjson, a plain file of its own that
 * agent-strace reads and may append to. The history (history/<id>/versions,
 * one JSON line per version, append-only) says which object each version
 * is and what we last saw of events.ndjson; anything else found in the file
 * is either a commit of ours that a crash cut short (the file still has the
 * stamp of an older version: it is rebuilt from the object) or a change by
 * another program (a new version of cause external). See sess.c.
 *
 * Writes, for every kind of change: the object first (fsynced with its
 * directory), then the version record, then events.ndjson (a fresh file
 * renamed into place, or an O_APPEND write for appends) and meta.json; the
 * record is the commit point. A crash before it leaves an unreferenced
 * object (gc removes it); after it, events.ndjson is repaired from the
 * object the next time the session is touched.
 *
 * Locks, outermost first: the store lock (flock on .agent-traced/lock:
 * shared by every writer, exclusive for gc and the layout upgrade), then
 * the session lock (a stripe mutex in this process plus an flock on
 * history/<id>/lock across processes). Readers take none: objects never
 * change, and events.ndjson is replaced by rename. */
#include "store_int.h"

#include "agenttrace/buf.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MIN_AGE 60   /* seconds: younger leftovers are never swept */
#define SWEEP_DIR_AGE 3600 /* seconds: a session built aside older than this is dead */
#define LAYOUT        "2\n"

/* ---- small helpers ------------------------------------------------------- */

at_result sys_fail(at_error *err, const char *what, const char *path)
{
    int e = errno;
    at_result r = at_error_set(err, at_errno_result(e), -1, "%s %s: %s", what, path, strerror(e));
    if (err)
        err->sys_errno = e;
    errno = e;
    return r;
}

at_result store_path(const at_store *s, char *out, size_t cap, const char *fmt, ...)
{
    if (!s->root)
        return AT_ERR_INVALID; /* a database store has no paths */
    int k = snprintf(out, cap, "%s/", s->root);
    if (k < 0 || (size_t)k >= cap)
        return AT_ERR_TOO_BIG;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + k, cap - (size_t)k, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= cap - (size_t)k)
        return AT_ERR_TOO_BIG;
    return AT_OK;
}

int mkdir_p(const char *path)
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

static pthread_once_t umask_once = PTHREAD_ONCE_INIT;
static mode_t umask_now = 077;

static void read_umask(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Umask:", 6) == 0) {
            umask_now = (mode_t)strtoul(line + 6, NULL, 8) & 0777;
            break;
        }
    if (f)
        fclose(f);
}

mode_t store_mode_file(void)
{
    pthread_once(&umask_once, read_umask);
    return 0666 & ~umask_now;
}

mode_t store_mode_object(void)
{
    pthread_once(&umask_once, read_umask);
    return 0444 & ~umask_now;
}

mode_t store_mode_dir(void)
{
    pthread_once(&umask_once, read_umask);
    return 0777 & ~umask_now;
}

at_result at_store_probe_write(at_store *s, at_error *err)
{
    if (s->db)
        return sdb_ping(s, err);
    char dir[PATH_MAX];
    if (store_path(s, dir, sizeof dir, ".agent-traced/tmp") != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    int fd = at_open_tmpfile(dir);
    at_result r = fd >= 0 && at_write_all(fd, "x", 1) == AT_OK && fsync(fd) == 0
                      ? AT_OK
                      : sys_fail(err, "cannot write in", dir);
    if (fd >= 0)
        close(fd);
    return r;
}

at_result fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return AT_ERR_IO;
    int r = fsync(fd);
    close(fd);
    return r < 0 && errno != EINVAL ? AT_ERR_IO : AT_OK;
}

void stamp_of(const struct stat *sb, file_stamp *out)
{
    out->exists = true;
    out->dev = (uint64_t)sb->st_dev;
    out->ino = (uint64_t)sb->st_ino;
    out->size = (uint64_t)sb->st_size;
    out->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

bool stamp_equal(const file_stamp *a, const file_stamp *b)
{
    if (a->exists != b->exists)
        return false;
    return !a->exists || (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                          a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns);
}

at_result copy_range(int src, uint64_t off, uint64_t len, int dst)
{
    loff_t in = (loff_t)off;
    uint64_t left = len;
    while (left) {
        ssize_t k = copy_file_range(src, &in, dst, NULL, left, 0);
        if (k > 0) {
            left -= (uint64_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            return AT_ERR_IO; /* the source is shorter than it should be */
        break;                /* not supported here: read and write */
    }
    char buf[1 << 16];
    while (left) {
        size_t want = left > sizeof buf ? sizeof buf : (size_t)left;
        ssize_t got = pread(src, buf, want, in);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || at_write_all(dst, buf, (size_t)got) != AT_OK)
            return AT_ERR_IO;
        in += got;
        left -= (uint64_t)got;
    }
    return AT_OK;
}

at_result same_range(int a, uint64_t aoff, int b, uint64_t boff, uint64_t len, bool *same)
{
    enum { BLK = 1 << 16 };
    char *x = malloc(2 * BLK);
    if (!x)
        return AT_ERR_NOMEM;
    char *y = x + BLK;
    *same = true;
    at_result r = AT_OK;
    for (uint64_t off = 0; off < len && *same;) {
        size_t want = len - off > BLK ? BLK : (size_t)(len - off);
        ssize_t ka = pread(a, x, want, (off_t)(aoff + off)), kb = pread(b, y, want, (off_t)(boff + off));
        if (ka < 0 || kb < 0) {
            r = AT_ERR_IO;
            break;
        }
        if ((size_t)ka != want || (size_t)kb != want || memcmp(x, y, want) != 0)
            *same = false;
        off += want;
    }
    free(x);
    return r;
}

at_result same_prefix(int a, int b, uint64_t len, bool *same)
{
    return same_range(a, 0, b, 0, len, same);
}

void at_store_on_version(at_store *s, at_version_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->notify_mu);
    s->on_version = fn;
    s->on_version_ctx = ctx;
    pthread_mutex_unlock(&s->notify_mu);
}

void store_notify(at_store *s, const char *sid, const at_version *v)
{
    pthread_mutex_lock(&s->notify_mu);
    if (s->on_version)
        s->on_version(s->on_version_ctx, sid, v);
    pthread_mutex_unlock(&s->notify_mu);
}

const char *at_cause_name(at_cause c)
{
    switch (c) {
    case AT_CAUSE_IMPORT: return "import";
    case AT_CAUSE_APPEND: return "append";
    case AT_CAUSE_EXTERNAL: return "external";
    }
    return "external";
}

const char *at_upload_result_name(at_upload_result r)
{
    switch (r) {
    case AT_UPLOAD_CREATED: return "created";
    case AT_UPLOAD_UNCHANGED: return "unchanged";
    case AT_UPLOAD_EXTENDED: return "extended";
    case AT_UPLOAD_REPLACED: return "replaced";
    }
    return "replaced";
}

/* ---- locks ------------------------------------------------------------------- */

static int flock_path(const char *path, int op)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (flock(fd, op) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

int lock_store(at_store *s, bool exclusive)
{
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/lock") != AT_OK)
        return -1;
    return flock_path(p, exclusive ? LOCK_EX : LOCK_SH);
}

void unlock_store(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

at_result lock_session(at_store *s, const char *sid, sess_lock *lk, at_error *err)
{
    char p[PATH_MAX];
    lk->stripe = &s->stripes[fnv1a(sid) % SESSION_STRIPES];
    lk->fd = -1;
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return sys_fail(err, "cannot create", p);
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s/lock", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    pthread_mutex_lock(&lk->stripe->mu);
    if ((lk->fd = flock_path(p, LOCK_EX)) < 0) {
        pthread_mutex_unlock(&lk->stripe->mu);
        lk->stripe = NULL;
        return sys_fail(err, "cannot lock", p);
    }
    return AT_OK;
}

void unlock_session(sess_lock *lk)
{
    if (!lk->stripe)
        return;
    if (lk->fd >= 0)
        close(lk->fd);
    pthread_mutex_unlock(&lk->stripe->mu);
    lk->stripe = NULL;
    lk->fd = -1;
}

/* ---- opening ------------------------------------------------------------------ */

bool at_session_id_ok(const char *id, size_t n)
{
    if (n == 0 || n > AT_MAX_SESSION_ID || id[0] == '.')
        return false;
    if ((n == 7 && memcmp(id, "objects", 7) == 0) || (n == 10 && memcmp(id, "workspaces", 10) == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch == '/' || ch == '\\' || ch < 0x20 || ch == 0x7f)
            return false;
        /* C1 controls, U+0080-U+009F: C2 80-C2 9F */
        if (ch == 0xc2 && i + 1 < n && (unsigned char)id[i + 1] < 0xa0)
            return false;
    }
    /* strict UTF-8 (no lone surrogates), and not only whitespace */
    at_utf8_state st = {0};
    int64_t bad;
    if (at_utf8_feed(&st, id, n, &bad) != AT_OK || at_utf8_finish(&st, &bad) != AT_OK)
        return false;
    size_t kept = n;
    (void)at_pystrip(id, &kept);
    return kept > 0;
}

at_result at_storage_path(const char *root, at_path_kind kind, const char *sid, char *out, size_t cap)
{
    static const char *const file[] = {
        [AT_PATH_SESSION] = NULL,
        [AT_PATH_META] = "meta.json",
        [AT_PATH_EVENTS] = "events.ndjson",
        [AT_PATH_PRIVATE] = ".agent-traced",
        [AT_PATH_TMP] = ".agent-traced/tmp",
        [AT_PATH_INDEX] = ".agent-traced/index.sqlite",
    };
    bool named = kind <= AT_PATH_EVENTS;
    if (named && (!sid || !*sid))
        return AT_ERR_INVALID;
    int k = snprintf(out, cap, "%s%s%s%s%s", root ? root : "", root ? "/" : "", named ? sid : "",
                     named && file[kind] ? "/" : "", file[kind] ? file[kind] : "");
    return k < 0 || (size_t)k >= cap ? AT_ERR_TOO_BIG : AT_OK;
}

/* ---- workspaces ---------------------------------------------------------------- */

bool at_workspace_id_ok(const char *ws)
{
    size_t n = strlen(ws);
    if (n == 0 || n > AT_MAX_WORKSPACE_ID || ws[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ws[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static bool is_default_workspace(const char *ws)
{
    return !ws || strcmp(ws, AT_DEFAULT_WORKSPACE) == 0;
}

at_result at_workspace_root(const char *root, const char *ws, char *out, size_t cap)
{
    if (!is_default_workspace(ws) && !at_workspace_id_ok(ws))
        return AT_ERR_INVALID;
    int k = is_default_workspace(ws) ? snprintf(out, cap, "%s", root) : snprintf(out, cap, "%s/workspaces/%s", root, ws);
    return k < 0 || (size_t)k >= cap ? AT_ERR_TOO_BIG : AT_OK;
}

at_result at_workspaces_list(const char *root, at_workspace_fn fn, void *ctx, at_error *err)
{
    char p[PATH_MAX];
    if (at_workspace_root(root, NULL, p, sizeof p) != AT_OK || strlen(p) + 12 >= sizeof p)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    fn(ctx, AT_DEFAULT_WORKSPACE);
    strcat(p, "/workspaces");
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? AT_OK : sys_fail(err, "cannot list", p);
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat sb;
        if (!at_workspace_id_ok(e->d_name) || strcmp(e->d_name, AT_DEFAULT_WORKSPACE) == 0 ||
            fstatat(dirfd(d), e->d_name, &sb, 0) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        fn(ctx, e->d_name);
    }
    closedir(d);
    return AT_OK;
}

at_result at_store_workspaces(at_store *s, at_workspace_fn fn, void *ctx, at_error *err)
{
    return s->db ? sdb_workspaces(s, fn, ctx, err) : at_workspaces_list(s->root, fn, ctx, err);
}

at_result at_store_workspace_create(at_store *s, at_error *err)
{
    return s->db ? sdb_workspace_create(s, err) : AT_OK;
}

const char *at_store_workspace(const at_store *s)
{
    return s->workspace ? s->workspace : AT_DEFAULT_WORKSPACE;
}

at_result at_store_session_path(const at_store *s, const char *id, const char *file, char *out, size_t outlen)
{
    return file ? store_path(s, out, outlen, "%s/%s", id, file) : store_path(s, out, outlen, "%s", id);
}

bool at_store_session_exists(at_store *s, const char *sid)
{
    if (s->db)
        return at_session_id_ok(sid, strlen(sid)) && sdb_session_exists(s, sid);
    char p[PATH_MAX];
    struct stat sb;
    if (!at_session_id_ok(sid, strlen(sid)) || store_path(s, p, sizeof p, "%s/meta.json", sid) != AT_OK)
        return false;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Gives events.ndjson an inode of its own where an older agent-traced made
 * it a hard link to its object: agent-strace appends to it in place. */
static at_result unlink_objects(at_store *s, at_error *err)
{
    DIR *d = opendir(s->root);
    if (!d)
        return sys_fail(err, "cannot list", s->root);
    at_result r = AT_OK;
    struct dirent *e;
    while (r == AT_OK && (e = readdir(d))) {
        char p[PATH_MAX], tmp[PATH_MAX];
        struct stat sb;
        if (e->d_name[0] == '.' || !at_session_id_ok(e->d_name, strlen(e->d_name)) ||
            store_path(s, p, sizeof p, "%s/events.ndjson", e->d_name) != AT_OK || lstat(p, &sb) < 0 ||
            !S_ISREG(sb.st_mode) || sb.st_nlink < 2)
            continue;
        if (store_path(s, tmp, sizeof tmp, "%s/.events.ndjson.copy-XXXXXX", e->d_name) != AT_OK)
            continue;
        int src = open(p, O_RDONLY | O_CLOEXEC), dst = mkostemp(tmp, O_CLOEXEC);
        if (src < 0 || dst < 0 || copy_range(src, 0, (uint64_t)sb.st_size, dst) != AT_OK ||
            fchmod(dst, store_mode_file()) < 0 || fsync(dst) < 0 || rename(tmp, p) < 0) {
            r = sys_fail(err, "cannot give its own inode to", p);
            if (dst >= 0)
                unlink(tmp);
        } else {
            fsync_dir(p);
        }
        if (src >= 0)
            close(src);
        if (dst >= 0)
            close(dst);
    }
    closedir(d);
    return r;
}

/* Upgrades an older layout once, under the exclusive store lock. */
static at_result upgrade_layout(at_store *s, at_error *err)
{
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/layout") != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    char buf[8] = "";
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k > 0 && strncmp(buf, LAYOUT, sizeof LAYOUT - 1) == 0)
            return AT_OK;
    }
    int lk = lock_store(s, true);
    if (lk < 0)
        return sys_fail(err, "cannot lock", s->root);
    at_result r = unlink_objects(s, err);
    if (r == AT_OK)
        r = at_write_file_atomic(p, LAYOUT, sizeof LAYOUT - 1, err);
    unlock_store(lk);
    return r;
}

/* A store of workspace ws (NULL or "default": the default one) at root
 * (NULL: a database store), its locks ready. */
static at_store *store_new(const char *root, const char *ws, at_error *err)
{
    at_store *s = calloc(1, sizeof *s);
    if (!s || (root && !(s->root = strdup(root))) || (!is_default_workspace(ws) && !(s->workspace = strdup(ws)))) {
        if (s)
            free(s->root);
        free(s);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    sync_group_init(&s->sync);
    pthread_mutex_init(&s->notify_mu, NULL);
    for (size_t i = 0; i < SESSION_STRIPES; i++)
        pthread_mutex_init(&s->stripes[i].mu, NULL);
    return s;
}

at_store *at_store_open_database(const char *url, const char *ws, const char *tmp_dir, at_error *err)
{
    if (!ws)
        ws = AT_DEFAULT_WORKSPACE;
    if (!at_workspace_id_ok(ws)) {
        at_error_set(err, AT_ERR_INVALID, -1, "invalid workspace '%s': 1-%d of A-Z a-z 0-9 . _ -, not starting with .",
                     ws, AT_MAX_WORKSPACE_ID);
        return NULL;
    }
    at_store *s = store_new(NULL, ws, err);
    if (s && !(s->db = store_db_open(url, ws, tmp_dir, err))) {
        at_store_free(s);
        return NULL;
    }
    return s;
}

bool at_store_is_database(const at_store *s)
{
    return s && s->db;
}

at_result at_store_resolve(at_store *s, const char *prefix, char **out, at_error *err)
{
    *out = NULL;
    if (!s->db)
        return store_db_unsupported(err, "resolving a session id in the store");
    if (!at_session_id_ok(prefix, strlen(prefix)))
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid session id");
    char **ids;
    size_t n;
    at_result r = sdb_list(s, prefix, 0, &ids, &n, err);
    if (r != AT_OK)
        return r;
    for (size_t i = 0; i < n && !*out; i++)
        if (strcmp(ids[i], prefix) == 0)
            *out = ids[i], ids[i] = NULL;
    if (!*out && n == 1)
        *out = ids[0], ids[0] = NULL;
    at_store_list_free(ids, n);
    if (*out)
        return AT_OK;
    return n ? at_error_set(err, AT_ERR_CONFLICT, -1, "ambiguous session id prefix: %s", prefix)
             : at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", prefix);
}

at_store *at_store_open(const char *root, at_error *err)
{
    return at_store_open_workspace(root, NULL, err);
}

at_store *at_store_open_workspace(const char *storage, const char *ws, at_error *err)
{
    char p[PATH_MAX], root[PATH_MAX];
    at_result wr = at_workspace_root(storage, ws, root, sizeof root);
    if (wr == AT_ERR_INVALID) {
        at_error_set(err, AT_ERR_INVALID, -1, "invalid workspace '%s': 1-%d of A-Z a-z 0-9 . _ -, not starting with .",
                     ws, AT_MAX_WORKSPACE_ID);
        return NULL;
    }
    /* Leaves room below PATH_MAX for every name we build under root. */
    if (wr != AT_OK || strlen(root) > PATH_MAX - 1024) {
        at_error_set(err, AT_ERR_INVALID, -1, "storage path too long");
        return NULL;
    }
    static const char *const dirs[] = {"objects/sha256", ".agent-traced/tmp", ".agent-traced/links",
                                       ".agent-traced/history"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        if (mkdir_p(p) < 0) {
            sys_fail(err, "cannot create", p);
            return NULL;
        }
    }
    at_store *s = store_new(root, ws, err);
    if (s && upgrade_layout(s, err) != AT_OK) {
        at_store_free(s);
        return NULL;
    }
    return s;
}

void at_store_free(at_store *s)
{
    if (!s)
        return;
    store_db_free(s->db);
    for (size_t i = 0; i < SESSION_STRIPES; i++) {
        for (sess_cache *c = s->stripes[i].cache, *next; c; c = next) {
            next = c->next;
            at_sha256_free(c->hash);
            free(c->sid);
            free(c);
        }
        pthread_mutex_destroy(&s->stripes[i].mu);
    }
    sync_group_fini(&s->sync);
    pthread_mutex_destroy(&s->notify_mu);
    free(s->root);
    free(s->workspace);
    free(s);
}

const char *at_store_root(const at_store *s)
{
    return s->root;
}

/* ---- staging ------------------------------------------------------------------- */

at_result at_store_stage(at_store *s, at_stage *st, at_error *err)
{
    st->db = NULL;
    if (s->db)
        return sdb_stage(s, st, err);
    char p[PATH_MAX];
    st->fd = -1;
    st->path = NULL;
    if (store_path(s, p, sizeof p, ".agent-traced/tmp/import-XXXXXX") != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
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

at_result at_store_stage_flush(at_store *s, at_stage *st, at_error *err)
{
    return s->db ? sdb_stage_flush(s, st, err) : AT_OK;
}

void at_stage_discard(at_stage *st)
{
    sdb_stage_abort(st->db);
    st->db = NULL;
    if (st->fd >= 0)
        close(st->fd);
    if (st->path)
        unlink(st->path);
    free(st->path);
    st->fd = -1;
    st->path = NULL;
}

/* ---- sweeping ---------------------------------------------------------------------- */

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

/* A temporary file of ours nobody holds (its writer keeps an flock). */
static bool take_orphan(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool removed = flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dfd, name, 0) == 0;
    close(fd);
    return removed;
}

/* Is name one of our temporary names (what at_write_file_atomic, the
 * object writer and the older copy-on-write append leave while writing)? */
static bool temp_name(const char *name)
{
    return strstr(name, ".tmp-") || strncmp(name, ".events.ndjson.cow-", 19) == 0 ||
           strncmp(name, ".events.ndjson.copy-", 20) == 0 || strncmp(name, ".events.ndjson.new", 18) == 0;
}

static unsigned sweep_dir(const char *path, time_t now, bool staging)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int dfd = dirfd(d);
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
            continue;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || now - st.st_mtime < SWEEP_MIN_AGE)
            continue; /* just made: its writer may not hold its lock yet */
        if (staging && strncmp(e->d_name, "import-", 7) == 0 && S_ISREG(st.st_mode))
            removed += take_orphan(dfd, e->d_name);
        else if (staging && strncmp(e->d_name, "session-", 8) == 0 && S_ISDIR(st.st_mode) &&
                 now - st.st_mtime >= SWEEP_DIR_AGE)
            removed += remove_flat_dir(dfd, e->d_name); /* built and renamed within milliseconds */
        else if (S_ISREG(st.st_mode) && temp_name(e->d_name))
            removed += take_orphan(dfd, e->d_name);
    }
    closedir(d);
    return removed;
}

unsigned at_store_sweep(at_store *s)
{
    char p[PATH_MAX];
    time_t now = time(NULL);
    unsigned removed = 0;
    if (s->db)
        return sdb_sweep(s);
    if (store_path(s, p, sizeof p, ".agent-traced/tmp") == AT_OK)
        removed += sweep_dir(p, now, true);
    static const char *const dirs[] = {".agent-traced/links", ".agent-traced", ".agent-traced/log",
                                       "objects/sha256"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (store_path(s, p, sizeof p, "%s", dirs[i]) == AT_OK)
            removed += sweep_dir(p, now, false);
    /* Session directories, their histories, and the object fan-out. */
    static const char *const parents[] = {"", ".agent-traced/history", "objects/sha256"};
    for (size_t i = 0; i < sizeof parents / sizeof *parents; i++) {
        char base[PATH_MAX];
        if (store_path(s, base, sizeof base, "%s", parents[i]) != AT_OK)
            continue;
        DIR *d = opendir(base);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.' ||
                (i == 0 && (strcmp(e->d_name, "objects") == 0 || strcmp(e->d_name, "workspaces") == 0)))
                continue;
            char sub[PATH_MAX];
            int k = snprintf(sub, sizeof sub, "%s/%s", base, e->d_name);
            if (k > 0 && (size_t)k < sizeof sub)
                removed += sweep_dir(sub, now, false);
        }
        if (d)
            closedir(d);
    }
    return removed;
}

/* ---- atomic files ------------------------------------------------------------------ */

at_result at_write_file_atomic(const char *path, const char *data, size_t n, at_error *err)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    /* ".<name>.tmp-XXXXXX": a dot name agent-strace ignores, swept if we die */
    int k = snprintf(tmp, sizeof tmp, "%.*s.%s.tmp-XXXXXX", (int)dirlen, path, path + dirlen);
    if (k < 0 || (size_t)k >= sizeof tmp)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "path too long: %s", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot create", tmp);
    flock(fd, LOCK_EX | LOCK_NB);
    if (at_write_all(fd, data, n) != AT_OK)
        goto fail;
    if (fchmod(fd, store_mode_file()) < 0 || fsync(fd) < 0)
        goto fail;
    if (rename(tmp, path) < 0) {
        at_result r = sys_fail(err, "cannot rename into", path);
        close(fd);
        unlink(tmp);
        return r;
    }
    close(fd);
    if (fsync_dir(path) != AT_OK)
        return sys_fail(err, "cannot sync the directory of", path);
    return AT_OK;
fail:;
    at_result r = sys_fail(err, "cannot write", tmp);
    close(fd);
    unlink(tmp);
    return r;
}

/* ---- metadata ---------------------------------------------------------------------- */

at_result at_store_meta_load(at_store *s, const char *sid, at_meta *m, at_error *err)
{
    char p[PATH_MAX];
    if (s->db)
        return at_session_id_ok(sid, strlen(sid)) ? sdb_meta_load(s, sid, m, err)
                                                  : at_error_set(err, AT_ERR_INVALID, -1, "invalid session id");
    if (!at_session_id_ok(sid, strlen(sid)) || store_path(s, p, sizeof p, "%s/meta.json", sid) != AT_OK)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid session id");
    return at_meta_load(m, p, err);
}

/* Writes m to path. A session of a workspace other than the default one
 * says which in its workspace_id (agent-strace's layout), whatever the
 * client sent: the directory it is in is the truth. The default
 * workspace's metadata is written as given (agent-strace's bytes). */
at_result store_meta_bytes(const at_store *s, const at_meta *m, at_buf *out)
{
    char ws[AT_MAX_WORKSPACE_ID + 3];
    at_meta stamped = *m; /* a view: its strings stay m's */
    if (s->workspace) {
        snprintf(ws, sizeof ws, "\"%s\"", s->workspace); /* at_workspace_id_ok: nothing to escape */
        stamped.raw[AT_META_WORKSPACE_ID] = ws;
        stamped.len[AT_META_WORKSPACE_ID] = strlen(ws);
    }
    return at_meta_write(&stamped, out, &AT_JSON_PRETTY);
}

static at_result write_meta_file(const at_store *s, const char *path, const at_meta *m, at_error *err)
{
    at_buf b;
    at_buf_init(&b, AT_MAX_META_BYTES);
    at_result r = store_meta_bytes(s, m, &b);
    if (r == AT_OK)
        r = at_write_file_atomic(path, b.data, b.len, err);
    else
        at_error_set(err, r, -1, "cannot serialize session metadata");
    at_buf_fini(&b);
    return r;
}

at_result store_write_meta(at_store *s, const char *sid, const at_meta *m, at_error *err)
{
    char p[PATH_MAX];
    bool created;
    if (s->db) /* every field of m over the stored ones: m */
        return sdb_meta_put(s, sid, m, NULL, NULL, &created, err);
    if (store_path(s, p, sizeof p, "%s/meta.json", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    return write_meta_file(s, p, m, err);
}

/* history/<sid>/meta.<version>.json: the metadata a commit is about to
 * write, kept before its version record so that a crash between the record
 * and meta.json leaves it to install (store_install_meta). */
static at_result pending_meta_path(at_store *s, const char *sid, uint64_t version, char *out, size_t cap)
{
    return store_path(s, out, cap, ".agent-traced/history/%s/meta.%llu.json", sid,
                      (unsigned long long)version);
}

at_result store_stage_meta(at_store *s, const char *sid, uint64_t version, const at_meta *m, at_error *err)
{
    char p[PATH_MAX], dir[PATH_MAX];
    if (pending_meta_path(s, sid, version, p, sizeof p) != AT_OK ||
        store_path(s, dir, sizeof dir, ".agent-traced/history/%s", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (mkdir_p(dir) < 0)
        return sys_fail(err, "cannot create", dir);
    return write_meta_file(s, p, m, err);
}

void store_unstage_meta(at_store *s, const char *sid, uint64_t version)
{
    char p[PATH_MAX];
    if (pending_meta_path(s, sid, version, p, sizeof p) == AT_OK)
        unlink(p);
}

at_result store_install_meta(at_store *s, const char *sid, uint64_t version, at_error *err)
{
    char p[PATH_MAX], m[PATH_MAX];
    if (pending_meta_path(s, sid, version, p, sizeof p) != AT_OK ||
        store_path(s, m, sizeof m, "%s/meta.json", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (access(p, F_OK) < 0)
        return AT_OK;
    if (rename(p, m) < 0)
        return sys_fail(err, "cannot install", m);
    if (fsync_dir(m) != AT_OK)
        return sys_fail(err, "cannot sync the directory of", m);
    return AT_OK;
}

/* The metadata is m or, when staged is not 0, the file store_stage_meta
 * wrote for that version, moved in (no serializing: nothing to fail once
 * the version is recorded). */
static at_result create_session(at_store *s, const char *sid, const at_meta *m, uint64_t staged,
                                const char *events_path, at_error *err)
{
    char tmpdir[PATH_MAX], f[PATH_MAX], e[PATH_MAX], dir[PATH_MAX], sp[PATH_MAX];
    if (store_path(s, tmpdir, sizeof tmpdir, ".agent-traced/tmp/session-XXXXXX") != AT_OK ||
        at_store_session_path(s, sid, NULL, dir, sizeof dir) != AT_OK ||
        (staged && pending_meta_path(s, sid, staged, sp, sizeof sp) != AT_OK))
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        /* A directory without meta.json (another program's, half made):
         * complete it in place. */
        if (!S_ISDIR(sb.st_mode) || at_store_session_exists(s, sid))
            return at_error_set(err, AT_ERR_CONFLICT, -1, "session %s exists", sid);
        if (events_path && (snprintf(e, sizeof e, "%s/events.ndjson", dir), rename(events_path, e) < 0))
            return sys_fail(err, "cannot move events into", dir);
        return staged ? store_install_meta(s, sid, staged, err) : store_write_meta(s, sid, m, err);
    }
    if (!mkdtemp(tmpdir))
        return sys_fail(err, "cannot create", tmpdir);
    snprintf(f, sizeof f, "%s/meta.json", tmpdir);
    snprintf(e, sizeof e, "%s/events.ndjson", tmpdir);
    at_result r = AT_OK;
    if (!staged)
        r = write_meta_file(s, f, m, err);
    else if (rename(sp, f) < 0)
        r = sys_fail(err, "cannot move metadata into", tmpdir);
    if (r == AT_OK && events_path && rename(events_path, e) < 0)
        r = sys_fail(err, "cannot move events into", tmpdir);
    if (r == AT_OK && chmod(tmpdir, store_mode_dir()) < 0)
        r = sys_fail(err, "cannot chmod", tmpdir);
    if (r == AT_OK && rename(tmpdir, dir) < 0) {
        r = errno == EEXIST || errno == ENOTEMPTY ? at_error_set(err, AT_ERR_CONFLICT, -1, "session exists")
                                                  : sys_fail(err, "cannot create session", dir);
    }
    if (r != AT_OK) {
        if (events_path)
            rename(e, events_path);       /* give the caller its file back */
        if (!staged || rename(f, sp) < 0) /* a staged one back where a repair finds it */
            unlink(f);
        rmdir(tmpdir);
        return r;
    }
    /* the entries inside the new directory, then its own entry in root */
    snprintf(f, sizeof f, "%s/meta.json", dir);
    if (fsync_dir(f) != AT_OK || fsync_dir(dir) != AT_OK)
        return sys_fail(err, "cannot sync", dir);
    return AT_OK;
}

at_result store_create_session(at_store *s, const char *sid, const at_meta *m, const char *events_path,
                               at_error *err)
{
    return create_session(s, sid, m, 0, events_path, err);
}

at_result store_create_session_staged(at_store *s, const char *sid, uint64_t version, const char *events_path,
                                      at_error *err)
{
    return create_session(s, sid, NULL, version, events_path, err);
}

at_result at_store_meta_put(at_store *s, const char *sid, const at_meta *m, at_meta_edit_fn edit,
                            void *edit_ctx, bool *created, at_error *err)
{
    *created = false;
    if (!at_session_id_ok(sid, strlen(sid)))
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid session id");
    if (s->db)
        return sdb_meta_put(s, sid, m, edit, edit_ctx, created, err);
    int slock = lock_store(s, false);
    sess_lock lk;
    at_result r = lock_session(s, sid, &lk, err);
    if (r != AT_OK) {
        unlock_store(slock);
        return r;
    }
    at_meta cur;
    at_meta_init(&cur);
    r = at_store_meta_load(s, sid, &cur, NULL);
    bool fresh = r == AT_ERR_NOT_FOUND;
    if (fresh)
        r = AT_OK;
    else if (r != AT_OK)
        at_error_set(err, r, -1, "cannot read session metadata");
    for (int f = 0; f < AT_META_NFIELDS && r == AT_OK; f++)
        if (m->raw[f])
            r = at_meta_set_raw(&cur, (at_meta_field)f, m->raw[f], m->len[f]);
    if (r == AT_OK && edit)
        r = edit(edit_ctx, &cur);
    if (r == AT_OK && fresh) {
        r = store_create_session(s, sid, &cur, NULL, err);
        *created = r == AT_OK;
    } else if (r == AT_OK) {
        r = store_write_meta(s, sid, &cur, err);
    }
    at_meta_fini(&cur);
    unlock_session(&lk);
    unlock_store(slock);
    return r;
}
