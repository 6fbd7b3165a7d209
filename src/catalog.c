/* catalog.c - the sessions of a storage directory, in memory, kept current
 * with inotify (catalog.h).
 *
 * What is followed. Every directory directly under root whose name could be
 * a session (not a dot-name, not "objects" or "workspaces") is an entry,
 * whether or not it holds a meta.json yet: a session directory is often
 * made first and filled afterwards. Per entry we keep the directory's
 * identity (dev, ino, symlinks followed), whether meta.json is a regular
 * file (counted), and when it parses (listed) the at_meta, the sort key and
 * the at_meta_write output. The /sessions body is built from those on the
 * first request after a change and then served by copy.
 *
 * Watches. One on root (children created, deleted, moved in and out, their
 * attributes; root itself deleted or moved), one on root's parent (root's
 * own name deleted, moved or renamed over: root's IN_DELETE_SELF waits until
 * nothing holds its dentry, and any file open below root holds it), and one
 * per entry (meta.json and events.ndjson created, written, closed, renamed
 * over, deleted, their attributes; the directory itself deleted or moved).
 * We hold no descriptor on root between calls, for the same reason. A
 * symlink in root that leads to no directory is an entry without a watch
 * (below), so a target appearing later is seen. An event is only a
 * hint naming what to look at again: root events queue the child's name,
 * meta.json events queue the entry's name, events.ndjson events mark the
 * session changed (at_catalog_drain_changed). Queued names are looked at
 * when a call comes in: stat the directory (a new inode drops the old watch
 * and adds one on the new), add the watch if missing, then read meta.json.
 * The watch is added before meta.json is read, so a write after the read is
 * reported. A meta.json read while another process is still writing it in
 * place may not parse: the session is left out of the listing (still
 * counted) until that writer's IN_CLOSE_WRITE, as a scan at that moment
 * would have done. The kernel queues an event before the syscall that caused it
 * returns, so draining the queue (non-blocking) at the start of each call
 * shows every change that finished before the call.
 *
 * When inotify cannot follow:
 *   - IN_Q_OVERFLOW (more than /proc/sys/fs/inotify/max_queued_events
 *     events between two calls): events were lost, so the next call rescans
 *     root, re-reads every meta.json and reports every session changed.
 *   - a session watch cannot be added (ENOSPC once max_user_watches is
 *     reached, EACCES, or the inode is already watched through another
 *     name, e.g. a symlink to another session): the entry goes on the
 *     unwatched list. Every call stats each unwatched directory and its
 *     meta.json, re-reads meta.json when its identity (inode, size, mtime,
 *     ctime) changed or was too recent to trust (a rewrite within the same
 *     timestamp tick keeps the size and mtime: git's "racy" rule), compares
 *     events.ndjson's identity for drain_changed, and tries the watch again
 *     (stopping for that call at the first ENOSPC). So running out of
 *     watches costs a stat or two per unwatched session per call - what
 *     every call cost before the catalog - and answers stay exact.
 *   - no watch on root (AT_CATALOG_RESCAN: asked for, a network
 *     filesystem, or no inotify instance left; root deleted, moved or
 *     replaced): every call rescans root, re-reading only the meta.json
 *     files whose identity changed, and tries to watch root again. While root cannot be opened the catalog is empty and
 *     list/resolve fail with AT_ERR_IO.
 *
 * Locking: one mutex around everything, draining inotify included. The
 * /sessions body is reference counted and copied out after the lock is
 * released; drain_changed calls its callback without the lock. */
#include "agenttrace/catalog.h"
#include "agenttrace/store.h"

#include "agenttrace/json.h"
#include "agenttrace/meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define ROOT_MASK                                                                                            \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |       \
     IN_ONLYDIR)
#define PARENT_MASK (IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)
#define SESSION_MASK                                                                                         \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB |          \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

#define MAX_PENDING 65536        /* names queued by one drain; beyond, a rescan is cheaper */
#define MAX_CHANGED 65536        /* sessions remembered for drain_changed; beyond, "all" */
#define RACY_NS     2000000000LL /* a file changed this recently may change again unseen */
#define EVBUF_BYTES 65536

/* ---- a set of names ------------------------------------------------------------ */

typedef struct name_node {
    struct name_node *next;
    uint64_t hash;
    size_t len;
    char s[];
} name_node;

typedef struct {
    name_node **b;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} name_set;

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool set_grow(name_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    name_node **b = calloc(cap, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < s->cap; i++)
        for (name_node *x = s->b[i], *next; x; x = next) {
            next = x->next;
            x->next = b[x->hash & (cap - 1)];
            b[x->hash & (cap - 1)] = x;
        }
    free(s->b);
    s->b = b;
    s->cap = cap;
    return true;
}

/* Adds a copy of name; false when out of memory. */
static bool set_add(name_set *s, const char *name, size_t n)
{
    uint64_t h = hash_name(name, n);
    if (s->cap)
        for (name_node *x = s->b[h & (s->cap - 1)]; x; x = x->next)
            if (x->hash == h && x->len == n && memcmp(x->s, name, n) == 0)
                return true;
    if (s->n >= s->cap && !set_grow(s))
        return false;
    name_node *x = malloc(sizeof *x + n + 1);
    if (!x)
        return false;
    x->hash = h;
    x->len = n;
    memcpy(x->s, name, n);
    x->s[n] = 0;
    x->next = s->b[h & (s->cap - 1)];
    s->b[h & (s->cap - 1)] = x;
    s->n++;
    return true;
}

/* Empties the set, handing its nodes over as one list (free each). */
static name_node *set_take(name_set *s)
{
    name_node *all = NULL;
    for (size_t i = 0; i < s->cap; i++) {
        for (name_node *x = s->b[i], *next; x; x = next) {
            next = x->next;
            x->next = all;
            all = x;
        }
        s->b[i] = NULL;
    }
    s->n = 0;
    return all;
}

static void nodes_free(name_node *x)
{
    for (name_node *next; x; x = next) {
        next = x->next;
        free(x);
    }
}

static void set_fini(name_set *s)
{
    nodes_free(set_take(s));
    free(s->b);
    memset(s, 0, sizeof *s);
}

/* ---- entries ------------------------------------------------------------------- */

/* What identifies a version of a file without reading it. */
typedef struct {
    bool valid; /* false: the file did not exist (or was never looked at) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

typedef struct entry {
    struct entry *next;          /* chain in the name table */
    struct entry *wnext;         /* chain in the watch table */
    struct entry *uprev, *unext; /* the unwatched list, when wd < 0 */
    uint64_t hash;               /* of name */
    int wd;                      /* inotify watch on the directory, -1: none */
    bool unwatched;              /* on the unwatched list (exactly when wd < 0) */
    bool is_session;             /* meta.json is a regular file: counted */
    bool listed;                 /* meta.json parsed: in /sessions (implies is_session) */
    bool meta_racy;              /* meta_id too recent to prove the file unchanged */
    unsigned gen;                /* rescan generation last seen in */
    unsigned tick;               /* call (update) last looked at in */
    dev_t dev;                   /* the directory (symlinks followed) */
    ino_t ino;
    file_id meta_id; /* meta.json when last read */
    file_id ev_id;   /* events.ndjson, kept for unwatched entries */
    at_meta meta;    /* parsed meta.json (listed only) */
    double started;  /* started_at, 0.0 when unset or NaN */
    char *key;       /* decoded session_id, else the name; owned */
    size_t key_len;
    char *json; /* at_meta_write(AT_JSON_DEFAULT); owned */
    size_t json_len;
    size_t name_len;
    char name[]; /* the directory name */
} entry;

/* The cached /sessions body; readers hold a reference while copying. */
typedef struct {
    atomic_uint refs;
    size_t len;
    char data[];
} body;

struct at_catalog {
    pthread_mutex_t mu;
    char *root;
    int rootfd;    /* root opened as a directory while a call needs it, else -1:
                       * held open it would delay root's IN_DELETE_SELF */
    int root_err;  /* errno while root cannot be listed, else 0 */
    int ifd;       /* inotify instance, -1: none */
    int root_wd;   /* watch on root, -1: none (rescan per call) */
    int parent_wd; /* watch on root's parent, for root's name; -1: none */
    char *parent;  /* root's parent directory and root's name in it, or NULL */
    char *base;
    bool mask_create; /* the kernel knows IN_MASK_CREATE */

    entry **tab; /* by name */
    size_t tab_cap, nentries;
    entry **wtab; /* by watch descriptor */
    size_t wtab_cap, nwatched;
    entry *unwatched; /* entries with wd < 0 */
    size_t nunwatched;
    uint64_t nsessions, nlisted;
    unsigned gen;  /* rescan generation */
    unsigned tick; /* update() count */

    name_set pending;  /* names to look at again */
    name_set changed;  /* sessions whose events.ndjson changed */
    bool all_changed;  /* report every session at the next drain */
    bool need_rescan;  /* events were lost: rescan, re-reading everything */
    bool initial;      /* the first scan: nothing counts as changed */
    bool watch_enospc; /* a watch failed with ENOSPC during this call */

    body *list;    /* the /sessions body, NULL when it must be rebuilt */
    entry **names; /* sessions sorted by name, for prefixes */
    size_t nnames, names_cap;
    bool names_dirty;

    long watch_limit; /* test hook; -1: none */
    uint64_t rescans, overflows, reloads;
    char evbuf[EVBUF_BYTES] __attribute__((aligned(__alignof__(struct inotify_event))));
};

static bool reserved(const char *name, size_t n)
{
    return n == 0 || n > AT_MAX_SESSION_ID || name[0] == '.' || (n == 7 && memcmp(name, "objects", 7) == 0) ||
           (n == 10 && memcmp(name, "workspaces", 10) == 0);
}

static void body_unref(body *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static void list_dirty(at_catalog *c)
{
    body_unref(c->list);
    c->list = NULL;
}

static entry *lookup(at_catalog *c, const char *name, size_t n)
{
    if (!c->tab_cap)
        return NULL;
    uint64_t h = hash_name(name, n);
    for (entry *e = c->tab[h & (c->tab_cap - 1)]; e; e = e->next)
        if (e->hash == h && e->name_len == n && memcmp(e->name, name, n) == 0)
            return e;
    return NULL;
}

static bool tab_grow(at_catalog *c)
{
    size_t cap = c->tab_cap ? c->tab_cap * 2 : 256;
    entry **t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < c->tab_cap; i++)
        for (entry *e = c->tab[i], *next; e; e = next) {
            next = e->next;
            e->next = t[e->hash & (cap - 1)];
            t[e->hash & (cap - 1)] = e;
        }
    free(c->tab);
    c->tab = t;
    c->tab_cap = cap;
    return true;
}

static entry *wd_lookup(at_catalog *c, int wd)
{
    if (!c->wtab_cap || wd < 0)
        return NULL;
    for (entry *e = c->wtab[(size_t)wd & (c->wtab_cap - 1)]; e; e = e->wnext)
        if (e->wd == wd)
            return e;
    return NULL;
}

static bool wtab_grow(at_catalog *c)
{
    size_t cap = c->wtab_cap ? c->wtab_cap * 2 : 256;
    entry **t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < c->wtab_cap; i++)
        for (entry *e = c->wtab[i], *next; e; e = next) {
            next = e->wnext;
            e->wnext = t[(size_t)e->wd & (cap - 1)];
            t[(size_t)e->wd & (cap - 1)] = e;
        }
    free(c->wtab);
    c->wtab = t;
    c->wtab_cap = cap;
    return true;
}

static void wtab_remove(at_catalog *c, entry *e)
{
    entry **pp = &c->wtab[(size_t)e->wd & (c->wtab_cap - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->wnext;
    if (*pp) {
        *pp = e->wnext;
        c->nwatched--;
    }
    e->wnext = NULL;
}

static void unwatched_add(at_catalog *c, entry *e)
{
    if (e->unwatched)
        return;
    e->unwatched = true;
    e->uprev = NULL;
    e->unext = c->unwatched;
    if (c->unwatched)
        c->unwatched->uprev = e;
    c->unwatched = e;
    c->nunwatched++;
}

static void unwatched_remove(at_catalog *c, entry *e)
{
    if (!e->unwatched)
        return;
    if (e->uprev)
        e->uprev->unext = e->unext;
    else
        c->unwatched = e->unext;
    if (e->unext)
        e->unext->uprev = e->uprev;
    e->uprev = e->unext = NULL;
    e->unwatched = false;
    c->nunwatched--;
}

static void changed_add(at_catalog *c, const char *name, size_t n)
{
    if (c->initial)
        return;
    if (c->changed.n >= MAX_CHANGED || !set_add(&c->changed, name, n))
        c->all_changed = true; /* over the cap or out of memory: report everything */
}

static void pending_add(at_catalog *c, const char *name, size_t n)
{
    if (c->need_rescan)
        return;
    if (c->pending.n >= MAX_PENDING || !set_add(&c->pending, name, n))
        c->need_rescan = true;
}

/* root as a directory descriptor, opened on first use within a call and
 * closed at its end (root_release). -1 when it cannot be opened. */
static int root_fd(at_catalog *c)
{
    if (c->rootfd < 0)
        c->rootfd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return c->rootfd;
}

static void root_release(at_catalog *c)
{
    if (c->rootfd >= 0)
        close(c->rootfd);
    c->rootfd = -1;
}

/* ---- the state of one entry ------------------------------------------------------- */

static void id_of(file_id *id, const struct stat *sb)
{
    id->valid = true;
    id->dev = sb->st_dev;
    id->ino = sb->st_ino;
    id->size = sb->st_size;
    id->mtime = sb->st_mtim;
    id->ctime = sb->st_ctim;
}

static bool id_same(const file_id *id, const struct stat *sb)
{
    return id->valid && id->dev == sb->st_dev && id->ino == sb->st_ino && id->size == sb->st_size &&
           id->mtime.tv_sec == sb->st_mtim.tv_sec && id->mtime.tv_nsec == sb->st_mtim.tv_nsec &&
           id->ctime.tv_sec == sb->st_ctim.tv_sec && id->ctime.tv_nsec == sb->st_ctim.tv_nsec;
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Was the file changed so recently that another change within the same
 * timestamp tick could leave its identity as it is? */
static bool racy(const struct stat *sb)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t t = ns_of(sb->st_mtim) > ns_of(sb->st_ctim) ? ns_of(sb->st_mtim) : ns_of(sb->st_ctim);
    return t >= ns_of(now) - RACY_NS;
}

static void drop_meta(entry *e)
{
    at_meta_fini(&e->meta);
    free(e->key);
    free(e->json);
    e->key = e->json = NULL;
    e->key_len = e->json_len = 0;
    e->started = 0.0;
}

/* Sets whether e is counted and listed, keeping the totals and caches. */
static void set_state(at_catalog *c, entry *e, bool is_session, bool listed)
{
    if (e->is_session != is_session) {
        e->is_session = is_session;
        c->nsessions += is_session ? 1 : (uint64_t)-1;
        c->names_dirty = true;
    }
    if (e->listed != listed) {
        e->listed = listed;
        c->nlisted += listed ? 1 : (uint64_t)-1;
        list_dirty(c);
    }
    if (!listed)
        drop_meta(e);
}

/* meta.json read as at_meta_load reads it (the same cap, the same parse),
 * from a descriptor so its identity is the one of the bytes read. */
static at_result read_meta(int fd, at_meta *m)
{
    at_buf b;
    at_buf_init(&b, AT_MAX_META_BYTES);
    at_result r = AT_OK;
    for (;;) {
        if ((r = at_buf_reserve(&b, 65536)) != AT_OK)
            break;
        ssize_t k = read(fd, b.data + b.len, 65536);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = AT_ERR_IO;
            break;
        }
        if (k == 0)
            break;
        b.len += (size_t)k;
    }
    if (r == AT_OK)
        r = at_meta_parse(m, b.data ? b.data : "", b.len, false, NULL);
    at_buf_fini(&b);
    return r;
}

/* Re-reads e's meta.json: always when force, else only when its identity
 * changed or is too recent to trust. */
static void reload_meta(at_catalog *c, entry *e, bool force)
{
    char rel[AT_MAX_SESSION_ID + 16];
    struct stat sb;
    if (at_storage_path(NULL, AT_PATH_META, e->name, rel, sizeof rel) != AT_OK)
        rel[0] = 0;
    if (fstatat(root_fd(c), rel, &sb, 0) < 0 || !S_ISREG(sb.st_mode)) {
        e->meta_id.valid = false;
        set_state(c, e, false, false);
        return;
    }
    if (!force && e->is_session && !e->meta_racy && id_same(&e->meta_id, &sb))
        return;
    c->reloads++;
    int fd = openat(root_fd(c), rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0 && fstat(fd, &sb) < 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && !S_ISREG(sb.st_mode)) { /* replaced by something else since the stat */
        close(fd);
        e->meta_id.valid = false;
        set_state(c, e, false, false);
        return;
    }
    id_of(&e->meta_id, &sb);
    e->meta_racy = racy(&sb);
    if (fd < 0) { /* there but unreadable: counted, not listed (as today's listing skips it) */
        set_state(c, e, true, false);
        return;
    }
    at_meta m;
    at_buf js, key;
    at_meta_init(&m);
    at_buf_init(&js, 0);
    at_buf_init(&key, 0);
    at_result r = read_meta(fd, &m);
    close(fd);
    if (r == AT_OK)
        r = at_meta_write(&m, &js, &AT_JSON_DEFAULT);
    if (r == AT_OK && at_meta_get_string(&m, AT_META_SESSION_ID, &key) != AT_OK) {
        at_buf_reset(&key);
        r = at_buf_add(&key, e->name, e->name_len);
    }
    if (r == AT_OK && !js.data)
        r = AT_ERR_NOMEM;
    if (r == AT_OK && !key.data && (r = at_buf_reserve(&key, 1)) == AT_OK)
        key.data[0] = 0; /* an empty session_id: an empty key */
    if (r != AT_OK) {
        at_meta_fini(&m);
        at_buf_fini(&js);
        at_buf_fini(&key);
        set_state(c, e, true, false);
        return;
    }
    double s = at_meta_get_number(&m, AT_META_STARTED_AT, 0.0);
    s = s == s ? s : 0.0;
    bool same = e->listed && e->started == s && e->json_len == js.len &&
                memcmp(e->json, js.data, js.len) == 0 && e->key_len == key.len &&
                memcmp(e->key, key.data, key.len) == 0;
    set_state(c, e, true, true);
    drop_meta(e);
    e->meta = m;
    e->started = s;
    e->key = at_buf_steal(&key, &e->key_len);
    e->json = at_buf_steal(&js, &e->json_len);
    if (!same)
        list_dirty(c);
}

static void ev_identity(at_catalog *c, entry *e, file_id *id)
{
    char rel[AT_MAX_SESSION_ID + 16];
    struct stat sb;
    if (at_storage_path(NULL, AT_PATH_EVENTS, e->name, rel, sizeof rel) != AT_OK)
        rel[0] = 0;
    if (fstatat(root_fd(c), rel, &sb, 0) == 0)
        id_of(id, &sb);
    else
        memset(id, 0, sizeof *id);
}

static bool id_equal(const file_id *a, const file_id *b)
{
    if (!a->valid || !b->valid)
        return a->valid == b->valid;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && ns_of(a->mtime) == ns_of(b->mtime) &&
           ns_of(a->ctime) == ns_of(b->ctime);
}

static void unwatch(at_catalog *c, entry *e)
{
    if (e->wd >= 0) {
        wtab_remove(c, e);
        inotify_rm_watch(c->ifd, e->wd); /* EINVAL when the kernel dropped it already */
        e->wd = -1;
    }
    if (!e->unwatched) {
        unwatched_add(c, e);
        ev_identity(c, e, &e->ev_id);
    }
}

/* Adds the watch on e's directory; true when it now has one. On failure
 * the entry stays on the unwatched list (see the top of this file). */
static bool watch(at_catalog *c, entry *e)
{
    if (c->ifd < 0 || c->watch_enospc)
        return false;
    if (c->watch_limit >= 0 && (long)c->nwatched >= c->watch_limit) {
        c->watch_enospc = true;
        return false;
    }
    if (c->nwatched >= c->wtab_cap && !wtab_grow(c))
        return false;
    char path[PATH_MAX];
    if (at_storage_path(c->root, AT_PATH_SESSION, e->name, path, sizeof path) != AT_OK)
        return false;
    int wd = inotify_add_watch(c->ifd, path, SESSION_MASK | (c->mask_create ? IN_MASK_CREATE : 0));
    if (wd < 0 && errno == EINVAL && c->mask_create) { /* a kernel before 4.18 */
        c->mask_create = false;
        wd = inotify_add_watch(c->ifd, path, SESSION_MASK);
    }
    if (wd < 0) {
        /* EEXIST: the inode is watched already, through root or another
         * entry (a symlink): keep that watch, revalidate this one by stat. */
        if (errno == ENOSPC)
            c->watch_enospc = true;
        return false;
    }
    if (wd == c->root_wd || wd == c->parent_wd || wd_lookup(c, wd)) {
        /* Without IN_MASK_CREATE the kernel replaced that watch's mask. */
        if (wd == c->root_wd)
            inotify_add_watch(c->ifd, c->root, ROOT_MASK);
        else if (wd == c->parent_wd)
            inotify_add_watch(c->ifd, c->parent, PARENT_MASK);
        else
            inotify_add_watch(c->ifd, path, SESSION_MASK);
        return false;
    }
    e->wd = wd;
    e->wnext = c->wtab[(size_t)wd & (c->wtab_cap - 1)];
    c->wtab[(size_t)wd & (c->wtab_cap - 1)] = e;
    c->nwatched++;
    unwatched_remove(c, e);
    return true;
}

static void remove_entry(at_catalog *c, entry *e)
{
    changed_add(c, e->name, e->name_len);
    set_state(c, e, false, false);
    if (e->wd >= 0) {
        wtab_remove(c, e);
        inotify_rm_watch(c->ifd, e->wd);
    }
    unwatched_remove(c, e);
    entry **pp = &c->tab[e->hash & (c->tab_cap - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    c->nentries--;
    free(e);
}

static entry *new_entry(at_catalog *c, const char *name, size_t n, const struct stat *sd)
{
    if (c->nentries >= c->tab_cap && !tab_grow(c))
        return NULL;
    entry *e = calloc(1, sizeof *e + n + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, n);
    e->name_len = n;
    e->hash = hash_name(name, n);
    e->wd = -1;
    e->dev = sd->st_dev;
    e->ino = sd->st_ino;
    at_meta_init(&e->meta);
    e->next = c->tab[e->hash & (c->tab_cap - 1)];
    c->tab[e->hash & (c->tab_cap - 1)] = e;
    c->nentries++;
    unwatched_add(c, e);
    ev_identity(c, e, &e->ev_id);
    changed_add(c, name, n);
    return e;
}

/* Looks at <root>/<name> again and brings its entry in line: removed when
 * it is no longer a directory, re-watched when it is another directory
 * now, meta.json re-read (always when force). */
static void recheck(at_catalog *c, const char *name, size_t n, bool force)
{
    struct stat sd;
    entry *e = lookup(c, name, n);
    if (fstatat(root_fd(c), name, &sd, 0) < 0 || !S_ISDIR(sd.st_mode)) {
        /* A symlink that does not lead to a directory (yet) may start to
         * when its target appears, which no watch of ours reports: keep it
         * as an entry without a directory, looked at on every call. */
        if (fstatat(root_fd(c), name, &sd, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sd.st_mode)) {
            memset(&sd, 0, sizeof sd);
            if (!e && !(e = new_entry(c, name, n, &sd))) {
                c->need_rescan = true;
                return;
            }
            if (e->dev || e->ino)
                changed_add(c, name, n); /* was a directory */
            unwatch(c, e);
            e->dev = 0;
            e->ino = 0;
            e->gen = c->gen;
            e->tick = c->tick;
            e->meta_id.valid = false;
            set_state(c, e, false, false);
        } else if (e) {
            remove_entry(c, e);
        }
        return;
    }
    if (e && (e->dev != sd.st_dev || e->ino != sd.st_ino || (!e->dev && !e->ino))) {
        unwatch(c, e); /* the watch follows the old inode */
        e->dev = sd.st_dev;
        e->ino = sd.st_ino;
        changed_add(c, name, n);
        force = true;
    }
    if (!e) {
        if (!(e = new_entry(c, name, n, &sd))) {
            c->need_rescan = true; /* out of memory: try again at the next call */
            return;
        }
        force = true;
    }
    e->gen = c->gen;
    e->tick = c->tick;
    if (e->wd < 0 && watch(c, e))
        force = true; /* it may have changed before the watch existed */
    reload_meta(c, e, force);
}

/* Watches root afresh (root was replaced, or is not watched yet). */
static void rewatch_root(at_catalog *c)
{
    root_release(c);
    if (c->ifd < 0)
        return;
    if (c->root_wd >= 0)
        inotify_rm_watch(c->ifd, c->root_wd);
    /* Root's name in its parent: IN_DELETE_SELF on root itself comes only
     * once nothing holds root's dentry (an open file anywhere below it, a
     * process's working directory), the parent's IN_DELETE at once. */
    if (c->parent && c->parent_wd < 0) {
        c->parent_wd =
            inotify_add_watch(c->ifd, c->parent, PARENT_MASK | (c->mask_create ? IN_MASK_CREATE : 0));
        if (c->parent_wd >= 0 && wd_lookup(c, c->parent_wd))
            c->parent_wd = -1; /* shared with an entry (no IN_MASK_CREATE): leave it to the entry */
    }
    int wd = inotify_add_watch(c->ifd, c->root, ROOT_MASK);
    entry *e = wd_lookup(c, wd);
    if (e) /* root is now a directory that an entry watched: root wins */
        unwatch(c, e);
    c->root_wd = wd;
}

static void lose_root(at_catalog *c)
{
    if (c->root_wd >= 0)
        inotify_rm_watch(c->ifd, c->root_wd);
    c->root_wd = -1;
    c->need_rescan = true;
}

/* A full scan of root. force: every meta.json is re-read (events were
 * lost); otherwise only those whose identity changed. */
static void rescan(at_catalog *c, bool force)
{
    c->rescans++;
    c->need_rescan = false;
    if (force && !c->initial)
        c->all_changed = true;
    nodes_free(set_take(&c->pending));
    if (c->root_wd < 0)
        rewatch_root(c);
    DIR *d = NULL;
    errno = 0;
    if (root_fd(c) >= 0) {
        int fd = openat(root_fd(c), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && !(d = fdopendir(fd)))
            close(fd);
    }
    c->root_err = d ? 0 : errno ? errno : EIO;
    c->gen++;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (reserved(de->d_name, n))
                continue;
            if (de->d_type != DT_DIR && de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
                continue; /* a file is no session; an entry by that name goes below */
            recheck(c, de->d_name, n, force);
        }
        closedir(d);
    }
    /* Whatever was not seen is gone (everything, when root cannot be listed). */
    for (size_t i = 0; i < c->tab_cap; i++)
        for (entry *e = c->tab[i], *next; e; e = next) {
            next = e->next;
            if (e->gen != c->gen || !d)
                remove_entry(c, e);
        }
}

/* ---- the inotify queue ------------------------------------------------------------ */

static void on_event(at_catalog *c, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        c->overflows++;
        c->need_rescan = true;
        return;
    }
    const char *name = ev->len ? ev->name : NULL;
    size_t n = name ? strnlen(name, ev->len) : 0;
    if (ev->wd == c->parent_wd) {
        if (ev->mask & IN_IGNORED)
            c->parent_wd = -1; /* the parent went: added again with root */
        else if (n && strcmp(name, c->base) == 0)
            lose_root(c); /* root's name was removed, moved or renamed over */
        return;
    }
    if (ev->wd == c->root_wd) {
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
            /* root is gone or elsewhere: rescan by path until it is back */
            if (ev->mask & IN_IGNORED)
                c->root_wd = -1;
            lose_root(c);
            return;
        }
        if (n && !reserved(name, n))
            pending_add(c, name, n);
        return;
    }
    entry *e = wd_lookup(c, ev->wd);
    if (!e)
        return;                  /* a watch we dropped already */
    if (ev->mask & IN_IGNORED) { /* the kernel dropped the watch: directory deleted */
        wtab_remove(c, e);
        e->wd = -1;
        unwatched_add(c, e);
        ev_identity(c, e, &e->ev_id);
        pending_add(c, e->name, e->name_len);
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        pending_add(c, e->name, e->name_len);
        return;
    }
    if (n == 9 && memcmp(name, "meta.json", 9) == 0)
        pending_add(c, e->name, e->name_len);
    else if (n == 13 && memcmp(name, "events.ndjson", 13) == 0)
        changed_add(c, e->name, e->name_len);
}

static void read_events(at_catalog *c)
{
    for (;;) {
        ssize_t k = read(c->ifd, c->evbuf, sizeof c->evbuf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* EAGAIN: the queue is empty */
        for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)k;) {
            const struct inotify_event *ev = (const struct inotify_event *)(c->evbuf + off);
            on_event(c, ev);
            off += sizeof *ev + ev->len;
        }
    }
}

/* Applies everything that happened since the last call. Lock held. */
static void update(at_catalog *c)
{
    c->watch_enospc = false;
    c->tick++;
    if (c->ifd >= 0)
        read_events(c);
    if (c->need_rescan || c->root_wd < 0) {
        rescan(c, c->need_rescan);
        return;
    }
    if (c->pending.n) {
        name_node *todo = set_take(&c->pending);
        /* First drop the watches of directories that moved or went, so a
         * directory renamed within root gets its watch back under the new
         * name whatever order the names come in. */
        for (name_node *x = todo; x; x = x->next) {
            entry *e = lookup(c, x->s, x->len);
            struct stat sd;
            if (e && e->wd >= 0 &&
                (fstatat(root_fd(c), x->s, &sd, 0) < 0 || sd.st_dev != e->dev || sd.st_ino != e->ino))
                unwatch(c, e);
        }
        for (name_node *x = todo; x; x = x->next)
            recheck(c, x->s, x->len, true);
        nodes_free(todo);
    }
    for (entry *e = c->unwatched, *next; e; e = next) {
        next = e->unext; /* recheck may remove e, or watch it */
        if (e->tick != c->tick)
            recheck(c, e->name, e->name_len, false);
    }
}

/* ---- the public functions ---------------------------------------------------------- */

/* Root's parent and root's name in it, for the parent watch; none for
 * "/", "." or "..". */
static at_result split_root(at_catalog *c)
{
    size_t n = strlen(c->root);
    while (n > 1 && c->root[n - 1] == '/')
        n--;
    size_t i = n;
    while (i > 0 && c->root[i - 1] != '/')
        i--;
    size_t blen = n - i;
    if (blen == 0 || (blen == 1 && c->root[i] == '.') || (blen == 2 && memcmp(c->root + i, "..", 2) == 0))
        return AT_OK;
    c->base = strndup(c->root + i, blen);
    c->parent = i == 0 ? strdup(".") : i == 1 ? strdup("/") : strndup(c->root, i - 1);
    return c->base && c->parent ? AT_OK : AT_ERR_NOMEM;
}

/* Filesystems where inotify sees only this host's changes. */
static bool remote_fs(const char *root)
{
    static const unsigned long magic[] = {
        0x6969,     /* NFS */
        0x517B,     /* SMB */
        0xFF534D42, /* CIFS */
        0xFE534D42, /* SMB2 */
        0x65735546, /* FUSE (sshfs, ...) */
        0x01021997, /* 9p */
        0x00C36400, /* Ceph */
        0x01161970, /* GFS2 */
        0x7461636F, /* OCFS2 */
        0x5346414F, /* AFS */
        0x0BD00BD0, /* Lustre */
    };
    struct statfs sf;
    if (statfs(root, &sf) < 0)
        return false;
    for (size_t i = 0; i < sizeof magic / sizeof magic[0]; i++)
        if ((unsigned long)sf.f_type == magic[i])
            return true;
    return false;
}

at_catalog *at_catalog_open(const char *root, at_error *err)
{
    return at_catalog_open_mode(root, AT_CATALOG_AUTO, err);
}

at_catalog *at_catalog_open_mode(const char *root, at_catalog_mode mode, at_error *err)
{
    struct stat sb;
    if (!root || stat(root, &sb) < 0) {
        at_error_set(err, AT_ERR_IO, -1, "%s: %s", root ? root : "(null)", strerror(root ? errno : EINVAL));
        return NULL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        at_error_set(err, AT_ERR_INVALID, -1, "%s: not a directory", root);
        return NULL;
    }
    at_catalog *c = calloc(1, sizeof *c);
    if (!c || !(c->root = strdup(root))) {
        free(c);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->rootfd = -1;
    c->root_wd = -1;
    c->parent_wd = -1;
    if (split_root(c) != AT_OK) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        at_catalog_free(c);
        return NULL;
    }
    c->watch_limit = -1;
    c->mask_create = true;
    c->ifd = -1; /* none: rescan per call */
    if (mode == AT_CATALOG_AUTO && !remote_fs(root))
        c->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    c->initial = true;
    rescan(c, true);
    c->initial = false;
    root_release(c);
    if (c->root_err) {
        at_error_set(err, AT_ERR_IO, -1, "%s: %s", root, strerror(c->root_err));
        at_catalog_free(c);
        return NULL;
    }
    return c;
}

void at_catalog_free(at_catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->tab_cap; i++)
        for (entry *e = c->tab[i], *next; e; e = next) {
            next = e->next;
            drop_meta(e);
            free(e);
        }
    free(c->tab);
    free(c->wtab);
    free(c->names);
    body_unref(c->list);
    set_fini(&c->pending);
    set_fini(&c->changed);
    if (c->ifd >= 0)
        close(c->ifd); /* removes every watch */
    if (c->rootfd >= 0)
        close(c->rootfd);
    pthread_mutex_destroy(&c->mu);
    free(c->parent);
    free(c->base);
    free(c->root);
    free(c);
}

uint64_t at_catalog_count(at_catalog *c)
{
    pthread_mutex_lock(&c->mu);
    update(c);
    uint64_t n = c->root_err ? 0 : c->nsessions;
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    return n;
}

static int cmp_listed(const void *pa, const void *pb)
{
    const entry *a = *(const entry *const *)pa, *b = *(const entry *const *)pb;
    if (a->started != b->started)
        return a->started > b->started ? -1 : 1;
    /* UTF-8 byte order is code point order, as Python compares str. */
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int r = n ? memcmp(a->key, b->key, n) : 0;
    if (r == 0)
        r = a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
    if (r == 0) { /* two directories with the same meta session_id: any fixed order */
        n = a->name_len < b->name_len ? a->name_len : b->name_len;
        r = memcmp(a->name, b->name, n);
        if (r == 0)
            r = a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
    }
    return -r;
}

/* The /sessions body from the listed entries. Lock held. */
static body *build_list(at_catalog *c)
{
    entry **v = malloc((c->nlisted ? c->nlisted : 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0, len = 2;
    for (size_t i = 0; i < c->tab_cap; i++)
        for (entry *e = c->tab[i]; e; e = e->next)
            if (e->listed) {
                v[k++] = e;
                len += e->json_len + (k > 1 ? 2 : 0);
            }
    qsort(v, k, sizeof *v, cmp_listed);
    body *b = malloc(sizeof *b + len + 1);
    if (b) {
        atomic_init(&b->refs, 1);
        char *p = b->data;
        *p++ = '[';
        for (size_t i = 0; i < k; i++) {
            if (i) {
                memcpy(p, ", ", 2);
                p += 2;
            }
            memcpy(p, v[i]->json, v[i]->json_len);
            p += v[i]->json_len;
        }
        *p++ = ']';
        *p = 0;
        b->len = len;
    }
    free(v);
    return b;
}

at_result at_catalog_list_json(at_catalog *c, at_buf *out)
{
    pthread_mutex_lock(&c->mu);
    update(c);
    if (c->root_err) {
        root_release(c);
        pthread_mutex_unlock(&c->mu);
        return AT_ERR_IO;
    }
    if (!c->list)
        c->list = build_list(c);
    body *b = c->list;
    if (b)
        atomic_fetch_add(&b->refs, 1);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    if (!b)
        return AT_ERR_NOMEM;
    at_result r = at_buf_add(out, b->data, b->len);
    body_unref(b);
    return r;
}

/* ---- pages of the list (GET /sessions?limit=&cursor=&...) ---- */

/* A cursor names the last session of a page by its place in the list:
 * "<16 hex: started_at's bits>.<hex of the sort key>.<hex of the name>". */
static at_result cursor_write(const entry *e, at_buf *out)
{
    uint64_t bits;
    memcpy(&bits, &e->started, sizeof bits);
    at_result r = at_buf_printf(out, "%016llx.", (unsigned long long)bits);
    char hx[3];
    for (size_t i = 0; r == AT_OK && i < e->key_len; i++) {
        snprintf(hx, sizeof hx, "%02x", (unsigned char)e->key[i]);
        r = at_buf_add(out, hx, 2);
    }
    if (r == AT_OK)
        r = at_buf_addc(out, '.');
    for (size_t i = 0; r == AT_OK && i < e->name_len; i++) {
        snprintf(hx, sizeof hx, "%02x", (unsigned char)e->name[i]);
        r = at_buf_add(out, hx, 2);
    }
    return r;
}

typedef struct {
    double started;
    char key[2 * AT_MAX_SESSION_ID + 2], name[AT_MAX_SESSION_ID + 2];
    size_t key_len, name_len;
} cursor;

static bool unhex(const char *p, size_t n, char *out, size_t cap, size_t *len)
{
    if (n % 2 || n / 2 > cap)
        return false;
    for (size_t i = 0; i < n; i += 2) {
        int hi = p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;
        int lo = p[i + 1] >= '0' && p[i + 1] <= '9'   ? p[i + 1] - '0'
                 : p[i + 1] >= 'a' && p[i + 1] <= 'f' ? p[i + 1] - 'a' + 10
                                                      : -1;
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (char)(hi << 4 | lo);
    }
    *len = n / 2;
    return true;
}

static bool cursor_read(const char *s, cursor *c)
{
    const char *d1 = strchr(s, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    char bits_hex[17];
    size_t bl;
    if (!d1 || !d2 || d1 - s != 16 || !unhex(s, 16, bits_hex, 8, &bl) ||
        !unhex(d1 + 1, (size_t)(d2 - d1 - 1), c->key, sizeof c->key, &c->key_len) ||
        !unhex(d2 + 1, strlen(d2 + 1), c->name, sizeof c->name, &c->name_len))
        return false;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | (unsigned char)bits_hex[i];
    memcpy(&c->started, &bits, sizeof bits);
    return c->started == c->started; /* not NaN */
}

/* Does e come after the cursor's session in the list's order? */
static bool after_cursor(const entry *e, const cursor *c)
{
    if (e->started != c->started)
        return e->started < c->started;
    size_t n = e->key_len < c->key_len ? e->key_len : c->key_len;
    int r = n ? memcmp(e->key, c->key, n) : 0;
    if (r == 0)
        r = e->key_len < c->key_len ? -1 : e->key_len > c->key_len;
    if (r == 0) {
        n = e->name_len < c->name_len ? e->name_len : c->name_len;
        r = n ? memcmp(e->name, c->name, n) : 0;
        if (r == 0)
            r = e->name_len < c->name_len ? -1 : e->name_len > c->name_len;
    }
    return r < 0;
}

static bool field_has(const entry *e, at_meta_field f, const char *want, bool exact, at_buf *tmp)
{
    at_buf_reset(tmp);
    if (at_meta_get_string(&e->meta, f, tmp) != AT_OK || !tmp->data)
        return false;
    return exact ? tmp->len == strlen(want) && memcmp(tmp->data, want, tmp->len) == 0
                 : memmem(tmp->data, tmp->len, want, strlen(want)) != NULL;
}

static bool passes(const entry *e, const at_catalog_query *q, at_buf *tmp)
{
    if (q->agent && !field_has(e, AT_META_AGENT_NAME, q->agent, true, tmp))
        return false;
    if (q->has_since && !(e->started >= q->since))
        return false;
    if (q->has_until && !(e->started < q->until))
        return false;
    if (q->q && *q->q && !memmem(e->key, e->key_len, q->q, strlen(q->q)) &&
        !memmem(e->name, e->name_len, q->q, strlen(q->q)) && !field_has(e, AT_META_AGENT_NAME, q->q, false, tmp) &&
        !field_has(e, AT_META_COMMAND, q->q, false, tmp))
        return false;
    return true;
}

/* The page of listed entries v[0, k) (sorted here) that q asks for. */
static at_result page_of(entry **v, size_t k, const at_catalog_query *q, const cursor *cur, at_buf *out,
                         at_buf *next)
{
    if (k)
        qsort(v, k, sizeof *v, cmp_listed);
    at_buf tmp;
    at_buf_init(&tmp, 0);
    size_t shown = 0;
    const entry *last = NULL;
    bool more = false;
    at_result r = at_buf_addc(out, '[');
    for (size_t i = 0; r == AT_OK && i < k; i++) {
        if ((cur && !after_cursor(v[i], cur)) || !passes(v[i], q, &tmp))
            continue;
        if (q->limit && shown == q->limit) {
            more = true;
            break;
        }
        if (shown && (r = at_buf_adds(out, ", ")) != AT_OK)
            break;
        r = at_buf_add(out, v[i]->json, v[i]->json_len);
        last = v[i];
        shown++;
    }
    if (r == AT_OK)
        r = at_buf_addc(out, ']');
    if (r == AT_OK && more && last)
        r = cursor_write(last, next);
    at_buf_fini(&tmp);
    return r;
}

at_result at_catalog_list_page(at_catalog *c, const at_catalog_query *q, at_buf *out, at_buf *next)
{
    cursor cur;
    if (q->cursor && !cursor_read(q->cursor, &cur))
        return AT_ERR_INVALID;
    pthread_mutex_lock(&c->mu);
    update(c);
    if (c->root_err) {
        root_release(c);
        pthread_mutex_unlock(&c->mu);
        return AT_ERR_IO;
    }
    entry **v = malloc((c->nlisted ? c->nlisted : 1) * sizeof *v);
    at_result r = v ? AT_OK : AT_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; v && i < c->tab_cap; i++)
        for (entry *e = c->tab[i]; e; e = e->next)
            if (e->listed)
                v[k++] = e;
    if (r == AT_OK)
        r = page_of(v, k, q, q->cursor ? &cur : NULL, out, next);
    free(v);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    return r;
}

at_result at_catalog_page_of(at_catalog_item *items, size_t n, const at_catalog_query *q, at_buf *out, at_buf *next)
{
    cursor cur;
    if (q->cursor && !cursor_read(q->cursor, &cur))
        return AT_ERR_INVALID;
    entry **v = calloc(n ? n : 1, sizeof *v);
    at_result r = v ? AT_OK : AT_ERR_NOMEM;
    size_t k = 0;
    at_buf key, js;
    at_buf_init(&key, 0);
    at_buf_init(&js, 0);
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        /* an entry as reload_meta makes one for a listed session */
        size_t nl = strlen(items[i].name);
        entry *e = calloc(1, sizeof *e + nl + 1);
        if (!e) {
            r = AT_ERR_NOMEM;
            break;
        }
        memcpy(e->name, items[i].name, nl + 1);
        e->name_len = nl;
        e->meta = *items[i].meta; /* a view: the item keeps it */
        double s = at_meta_get_number(&e->meta, AT_META_STARTED_AT, 0.0);
        e->started = s == s ? s : 0.0;
        at_buf_reset(&key);
        at_buf_reset(&js);
        if (at_meta_get_string(&e->meta, AT_META_SESSION_ID, &key) != AT_OK) {
            at_buf_reset(&key);
            r = at_buf_add(&key, e->name, e->name_len);
        }
        if (r == AT_OK)
            r = at_meta_write(&e->meta, &js, &AT_JSON_DEFAULT);
        if (r == AT_OK && !js.data)
            r = AT_ERR_NOMEM;
        if (r == AT_OK && !key.data && (r = at_buf_reserve(&key, 1)) == AT_OK)
            key.data[0] = 0; /* an empty session_id: an empty key */
        if (r == AT_OK) {
            e->key = at_buf_steal(&key, &e->key_len);
            e->json = at_buf_steal(&js, &e->json_len);
            e->listed = true;
        }
        v[k++] = e;
    }
    if (r == AT_OK)
        r = page_of(v, k, q, q->cursor ? &cur : NULL, out, next);
    for (size_t i = 0; i < k; i++) {
        free(v[i]->key);
        free(v[i]->json);
        free(v[i]);
    }
    free(v);
    at_buf_fini(&key);
    at_buf_fini(&js);
    return r;
}

static int cmp_name(const void *pa, const void *pb)
{
    const entry *a = *(const entry *const *)pa, *b = *(const entry *const *)pb;
    return strcmp(a->name, b->name);
}

/* Sessions sorted by name, for prefix lookups. Lock held. */
static bool names_ready(at_catalog *c)
{
    if (!c->names_dirty && c->names)
        return true;
    if (c->nsessions > c->names_cap || !c->names) {
        size_t cap = c->nsessions ? c->nsessions : 1;
        entry **v = realloc(c->names, cap * sizeof *v);
        if (!v)
            return false;
        c->names = v;
        c->names_cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->tab_cap; i++)
        for (entry *e = c->tab[i]; e; e = e->next)
            if (e->is_session)
                c->names[k++] = e;
    qsort(c->names, k, sizeof *c->names, cmp_name);
    c->nnames = k;
    c->names_dirty = false;
    return true;
}

static bool id_acceptable(const char *id, size_t n)
{
    if (!id || n == 0 || n > AT_MAX_SESSION_ID || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] == '/' || id[i] == '\\')
            return false;
    return true;
}

at_result at_catalog_resolve(at_catalog *c, const char *id, char **out)
{
    *out = NULL;
    size_t n = id ? strnlen(id, AT_MAX_SESSION_ID + 1) : 0;
    if (!id_acceptable(id, n))
        return AT_ERR_INVALID;
    at_result r = AT_ERR_NOT_FOUND;
    pthread_mutex_lock(&c->mu);
    update(c);
    if (c->root_err) {
        r = AT_ERR_IO;
        goto out;
    }
    const entry *hit = lookup(c, id, n);
    if (!hit || !hit->is_session) {
        hit = NULL;
        if (!names_ready(c)) {
            r = AT_ERR_NOMEM;
            goto out;
        }
        size_t lo = 0, hi = c->nnames; /* the first name >= id */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(c->names[mid]->name, id) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < c->nnames && strncmp(c->names[lo]->name, id, n) == 0 &&
            (lo + 1 == c->nnames || strncmp(c->names[lo + 1]->name, id, n) != 0))
            hit = c->names[lo]; /* exactly one name starts with id */
    }
    if (hit)
        r = (*out = strdup(hit->name)) ? AT_OK : AT_ERR_NOMEM;
out:
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    return r;
}

at_result at_catalog_meta_json(at_catalog *c, const char *sid, at_buf *out)
{
    size_t n = sid ? strnlen(sid, AT_MAX_SESSION_ID + 1) : 0;
    if (!id_acceptable(sid, n))
        return AT_ERR_NOT_FOUND;
    pthread_mutex_lock(&c->mu);
    update(c);
    const entry *e = lookup(c, sid, n);
    at_result r = c->root_err            ? AT_ERR_IO
                  : !e || !e->is_session ? AT_ERR_NOT_FOUND
                  : !e->listed           ? AT_ERR_JSON
                                         : at_buf_add(out, e->json, e->json_len);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    return r;
}

void at_catalog_touch(at_catalog *c, const char *sid)
{
    size_t n = sid ? strnlen(sid, AT_MAX_SESSION_ID + 1) : 0;
    if (!id_acceptable(sid, n) || reserved(sid, n))
        return;
    pthread_mutex_lock(&c->mu);
    update(c);
    if (!c->root_err)
        recheck(c, sid, n, true);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
}

void at_catalog_drain_changed(at_catalog *c, void (*fn)(void *ctx, const char *sid), void *ctx)
{
    pthread_mutex_lock(&c->mu);
    update(c);
    for (entry *e = c->unwatched; e; e = e->unext) {
        file_id now;
        ev_identity(c, e, &now);
        if (!id_equal(&now, &e->ev_id)) {
            e->ev_id = now;
            changed_add(c, e->name, e->name_len);
        }
    }
    if (c->all_changed) {
        c->all_changed = false;
        for (size_t i = 0; i < c->tab_cap; i++)
            for (entry *e = c->tab[i]; e; e = e->next)
                if (!set_add(&c->changed, e->name, e->name_len))
                    c->all_changed = true; /* out of memory: the rest next time */
    }
    name_node *todo = set_take(&c->changed);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
    for (name_node *x = todo; x; x = x->next)
        fn(ctx, x->s);
    nodes_free(todo);
}

void at_catalog_stats_get(at_catalog *c, at_catalog_stats *st)
{
    pthread_mutex_lock(&c->mu);
    update(c);
    st->sessions = c->root_err ? 0 : c->nsessions;
    st->listed = c->nlisted;
    st->dirs = c->nentries;
    st->watched = c->nwatched;
    st->unwatched = c->nunwatched;
    st->rescans = c->rescans;
    st->overflows = c->overflows;
    st->reloads = c->reloads;
    st->inotify = c->ifd >= 0;
    st->root_watched = c->root_wd >= 0;
    root_release(c);
    pthread_mutex_unlock(&c->mu);
}

void at_catalog_rescan(at_catalog *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->ifd >= 0)
        read_events(c);
    rescan(c, true);
    root_release(c);
    pthread_mutex_unlock(&c->mu);
}

void at_catalog_test_watch_limit(at_catalog *c, long max)
{
    pthread_mutex_lock(&c->mu);
    c->watch_limit = max;
    root_release(c);
    pthread_mutex_unlock(&c->mu);
}
