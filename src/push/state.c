/* state.c - the push state file (state.h). Not thread-safe: callers
 * serialize. */
#include "push/state.h"

#include "agenttrace/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct push_state {
    char *path;
    char *server;
    json_t *entries; /* this server's entries, as loaded and changed */
    json_t *dirty;   /* the entries changed since the last save: path -> true */
    double last_save, last_cost;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *push_state_default_path(const char *name)
{
    const char *x = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    int n;
    if (x && *x == '/')
        n = snprintf(buf, sizeof buf, "%s/agent-traced/%s", x, name);
    else if (home && *home)
        n = snprintf(buf, sizeof buf, "%s/.local/state/agent-traced/%s", home, name);
    else
        return NULL;
    if (n < 0 || (size_t)n >= sizeof buf)
        return NULL;
    return strdup(buf);
}

int push_mkdirs_for(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Reads the state file: its "servers" object (a new one when missing).
 * NULL with err set when it cannot be read or is not a state file. */
static json_t *load_doc(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return json_pack("{s:i,s:{}}", "version", 1, "servers");
        snprintf(err, errlen, "state file %s: %s (line %d)", path, je.text, je.line);
        return NULL;
    }
    if (!json_is_object(doc) || !json_is_object(json_object_get(doc, "servers"))) {
        snprintf(err, errlen, "state file %s: not a push state (no \"servers\" object)", path);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

push_state *push_state_open(const char *path, const char *server, char *err, size_t errlen)
{
    push_state *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path)) || !(s->server = strdup(server)) || !(s->dirty = json_object())) {
        snprintf(err, errlen, "out of memory");
        push_state_free(s);
        return NULL;
    }
    json_t *doc = load_doc(path, err, errlen);
    if (!doc) {
        push_state_free(s);
        return NULL;
    }
    json_t *e = json_object_get(json_object_get(doc, "servers"), server);
    s->entries = json_is_object(e) ? json_incref(e) : json_object();
    json_decref(doc);
    if (!s->entries) {
        snprintf(err, errlen, "out of memory");
        push_state_free(s);
        return NULL;
    }
    return s;
}

void push_state_free(push_state *s)
{
    if (!s)
        return;
    json_decref(s->entries);
    json_decref(s->dirty);
    free(s->path);
    free(s->server);
    free(s);
}

static bool get_u64(json_t *o, const char *k, uint64_t *v)
{
    json_t *j = json_object_get(o, k);
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *v = (uint64_t)json_integer_value(j);
    return true;
}

static bool get_hex(json_t *o, const char *k, uint8_t out[32])
{
    const char *h = json_string_value(json_object_get(o, k));
    return h && at_unhex_sha256(h, strlen(h), out) == 1;
}

bool push_state_get(push_state *s, const char *file, push_entry *e)
{
    json_t *o = json_object_get(s->entries, file);
    memset(e, 0, sizeof *e);
    const char *sid = json_string_value(json_object_get(o, "session_id"));
    uint64_t hl, tl, mt;
    if (!json_is_object(o) || !sid || strlen(sid) >= sizeof e->session_id ||
        !get_u64(o, "bytes", &e->bytes) || !get_u64(o, "size", &e->size) || !get_u64(o, "mtime_ns", &mt) ||
        !get_u64(o, "dev", &e->dev) || !get_u64(o, "ino", &e->ino) || !get_u64(o, "head_len", &hl) ||
        !get_u64(o, "tail_len", &tl) || !get_hex(o, "head_sha256", e->head) ||
        !get_hex(o, "tail_sha256", e->tail) || hl > e->bytes || tl > e->bytes || hl > PUSH_EDGE ||
        tl > PUSH_EDGE)
        return false; /* an entry we cannot use: as if the file was new */
    memcpy(e->session_id, sid, strlen(sid) + 1);
    if (!get_u64(o, "server_bytes", &e->server_bytes) || e->server_bytes > e->bytes)
        e->server_bytes = e->bytes;
    e->mtime_ns = (int64_t)mt;
    e->head_len = (size_t)hl;
    e->tail_len = (size_t)tl;
    return true;
}

int push_state_put(push_state *s, const char *file, const push_entry *e)
{
    char hh[AT_SHA256_HEX], th[AT_SHA256_HEX];
    at_hex(e->head, 32, hh);
    at_hex(e->tail, 32, th);
    json_t *o =
        json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:s}", "session_id", e->session_id, "bytes",
                  (json_int_t)e->bytes, "size", (json_int_t)e->size, "mtime_ns", (json_int_t)e->mtime_ns,
                  "dev", (json_int_t)e->dev, "ino", (json_int_t)e->ino, "head_len", (json_int_t)e->head_len,
                  "head_sha256", hh, "tail_len", (json_int_t)e->tail_len, "tail_sha256", th);
    if (o && e->server_bytes < e->bytes &&
        json_object_set_new(o, "server_bytes", json_integer((json_int_t)e->server_bytes)) != 0) {
        json_decref(o);
        return -1;
    }
    if (!o || json_object_set_new(s->entries, file, o) != 0 ||
        json_object_set_new(s->dirty, file, json_true()) != 0)
        return -1;
    return 0;
}

int push_state_save(push_state *s, bool force, char *err, size_t errlen)
{
    if (json_object_size(s->dirty) == 0)
        return 0;
    double t0 = now_s();
    if (!force && t0 - s->last_save < 10 * s->last_cost)
        return 0;
    int rc = -1, lockfd = -1;
    char lock[4200], tmp[4200];
    json_t *doc = NULL;
    snprintf(lock, sizeof lock, "%s.lock", s->path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", s->path, (long)getpid());
    if (push_mkdirs_for(s->path) != 0) {
        snprintf(err, errlen, "state file %s: cannot create its directory: %s", s->path, strerror(errno));
        return -1;
    }
    lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
        snprintf(err, errlen, "state file %s: cannot lock %s: %s", s->path, lock, strerror(errno));
        goto out;
    }
    if (!(doc = load_doc(s->path, err, errlen)))
        goto out;
    json_t *servers = json_object_get(doc, "servers");
    json_t *mine = json_object_get(servers, s->server);
    if (!json_is_object(mine)) {
        if (!(mine = json_object()) || json_object_set_new(servers, s->server, mine) != 0)
            goto oom;
    }
    const char *k;
    json_t *v;
    json_object_foreach(s->dirty, k, v)
    {
        json_t *e = json_object_get(s->entries, k);
        if (e && json_object_set(mine, k, e) != 0)
            goto oom;
    }
    if (json_dump_file(doc, tmp, JSON_INDENT(1)) != 0) {
        snprintf(err, errlen, "state file %s: cannot write %s: %s", s->path, tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, s->path) != 0) {
        snprintf(err, errlen, "state file %s: cannot rename %s: %s", s->path, tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    json_object_clear(s->dirty);
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    json_decref(doc);
    if (lockfd >= 0)
        close(lockfd); /* releases the lock */
    s->last_save = now_s();
    s->last_cost = s->last_save - t0;
    return rc;
}
