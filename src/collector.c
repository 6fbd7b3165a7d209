/* collector.c - the agent-strace compatible collector endpoints: /health,
 * /sessions, /sessions/{id}, /sessions/{id}/events, POST /events,
 * POST /sessions (server-api.md, "Collector endpoints").
 *
 * Appending (POST /events). Lines are validated one by one; consecutive
 * valid lines of one session form a batch that is serialized by the chain
 * writer (TraceEvent.to_json() bytes, prev_hash from the file's last line)
 * and written with one write(). Per session we remember, in the append
 * cache, the SHA-256 of the last line together with the size, inode and
 * mtime of the file it belongs to, so an append never re-reads the file;
 * when the file changed underneath (another process appended, an import
 * replaced it) only its tail is read again to find the last line.
 *
 * Locking, outermost first:
 *   1. the session's stripe mutex in the append cache: serializes appends
 *      (and meta updates) of one session within this process; sessions in
 *      other stripes proceed in parallel;
 *   2. a shared flock on <root>/.agent-traced/lock: an import commit (which
 *      takes it exclusively) never replaces events.ndjson under an append;
 *   3. an exclusive flock on events.ndjson itself: other agent-traced
 *      processes appending to the same storage wait for us. After taking it
 *      we check that the path still names the locked inode (a copy-on-write
 *      may have replaced it) and retry otherwise.
 *
 * Copy-on-write: an imported session's events.ndjson is a hard link to a
 * read-only object under objects/, which must never change. When the file
 * has more than one link or is not writable, the append copies it to a
 * temporary file in the session directory, appends there and renames it
 * over events.ndjson; the object keeps its bytes and its name. */
#include "http.h"
#include "sessions.h"

#include "agenttrace/chain.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "agenttrace/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the append cache ------------------------------------------------------ */

#define STRIPES            64
#define STRIPE_MAX_ENTRIES 1024 /* beyond this the least recently used entry goes */

/* What we know about a session's events.ndjson after our last append. */
typedef struct append_entry {
    struct append_entry *next;
    uint64_t hash;
    char *sid;                   /* owned */
    bool valid;                  /* the fields below describe a real state */
    bool have_head;              /* the file holds at least one line */
    uint8_t head[AT_SHA256_LEN]; /* SHA-256 of its last line */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} append_entry;

typedef struct {
    pthread_mutex_t mu; /* held for a whole append of any session in the stripe */
    append_entry *list; /* most recently used first */
    size_t count;
} stripe;

struct append_cache {
    stripe s[STRIPES];
};

struct append_cache *append_cache_new(void)
{
    struct append_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->s[i].mu, NULL);
    return c;
}

void append_cache_free(struct append_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < STRIPES; i++) {
        for (append_entry *e = c->s[i].list, *next; e; e = next) {
            next = e->next;
            free(e->sid);
            free(e);
        }
        pthread_mutex_destroy(&c->s[i].mu);
    }
    free(c);
}

/* The cache used when the server context has none (tests, tools). */
static struct append_cache *fallback_cache;
static pthread_once_t fallback_once = PTHREAD_ONCE_INIT;
static void fallback_init(void)
{
    fallback_cache = append_cache_new();
}

static struct append_cache *cache_of(server_ctx *ctx)
{
    if (ctx->appends)
        return ctx->appends;
    pthread_once(&fallback_once, fallback_init);
    return fallback_cache;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static stripe *stripe_of(struct append_cache *c, const char *sid)
{
    return &c->s[fnv1a(sid) % STRIPES];
}

/* The entry of sid in its (locked) stripe, created when missing; NULL when
 * out of memory, which only costs a tail read. */
static append_entry *entry_get(stripe *st, const char *sid)
{
    uint64_t h = fnv1a(sid);
    append_entry **pp = &st->list, *e;
    for (; (e = *pp); pp = &e->next) {
        if (e->hash == h && strcmp(e->sid, sid) == 0) {
            *pp = e->next; /* move to front */
            e->next = st->list;
            st->list = e;
            return e;
        }
    }
    if (st->count >= STRIPE_MAX_ENTRIES) {
        /* Evict the last entry and reuse it. */
        for (pp = &st->list; (*pp)->next; pp = &(*pp)->next)
            ;
        e = *pp;
        *pp = NULL;
        free(e->sid);
        st->count--;
    } else if (!(e = malloc(sizeof *e))) {
        return NULL;
    }
    memset(e, 0, sizeof *e);
    if (!(e->sid = strdup(sid))) {
        free(e);
        return NULL;
    }
    e->hash = h;
    e->next = st->list;
    st->list = e;
    st->count++;
    return e;
}

/* ---- small helpers ------------------------------------------------------------- */

static void respond_buf(http_response *resp, int status, at_buf *b, at_result r)
{
    if (r != AT_OK || !b->data)
        http_response_error(resp, 500, "%s", at_result_str(r != AT_OK ? r : AT_ERR_NOMEM));
    else
        http_response_json(resp, status, b->data, b->len);
}

static bool utf8_ok(const char *p, size_t n)
{
    at_utf8_state st;
    int64_t bad;
    memset(&st, 0, sizeof st);
    return at_utf8_feed(&st, p, n, &bad) == AT_OK && at_utf8_finish(&st, &bad) == AT_OK;
}

static at_result meta_path(const char *root, const char *sid, const char *file, char *out, size_t len)
{
    int k = snprintf(out, len, "%s/%s%s%s", root, sid, file ? "/" : "", file ? file : "");
    return k < 0 || (size_t)k >= len ? AT_ERR_TOO_BIG : AT_OK;
}

/* Creates session sid holding only meta.json with the bytes given: built in
 * .agent-traced/tmp and renamed into place whole, so no reader ever sees a
 * session directory without its meta. A directory that exists without a
 * meta.json (another writer's, half made) gets the meta written into it. */
static at_result create_session(const char *root, const char *sid, const char *meta, size_t n, at_error *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX], f[PATH_MAX];
    struct stat sb;
    if (meta_path(root, sid, NULL, dir, sizeof dir) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session path too long");
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return at_error_set(err, AT_ERR_INVALID, -1, "session path is not a directory");
        if (meta_path(root, sid, "meta.json", f, sizeof f) != AT_OK)
            return at_error_set(err, AT_ERR_TOO_BIG, -1, "session path too long");
        return at_write_file_atomic(f, meta, n, err);
    }
    snprintf(tmp, sizeof tmp, "%s/.agent-traced/tmp/session-XXXXXX", root);
    if (!mkdtemp(tmp)) {
        /* A storage directory not made by at_store_open: build in place. */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return at_error_set(err, AT_ERR_IO, -1, "cannot create session: %s", strerror(errno));
        if (meta_path(root, sid, "meta.json", f, sizeof f) != AT_OK)
            return at_error_set(err, AT_ERR_TOO_BIG, -1, "session path too long");
        return at_write_file_atomic(f, meta, n, err);
    }
    snprintf(f, sizeof f, "%s/meta.json", tmp);
    at_result r = at_write_file_atomic(f, meta, n, err);
    if (r == AT_OK && chmod(tmp, 0755) < 0)
        r = at_error_set(err, AT_ERR_IO, -1, "cannot chmod: %s", strerror(errno));
    if (r == AT_OK && rename(tmp, dir) < 0) {
        int e = errno;
        if ((e == EEXIST || e == ENOTEMPTY) && sessions_exists(root, sid))
            r = AT_OK; /* someone else created it meanwhile: theirs wins */
        else
            r = at_error_set(err, AT_ERR_IO, -1, "cannot create session: %s", strerror(e));
        unlink(f);
        rmdir(tmp);
    }
    return r;
}

/* ---- GET endpoints --------------------------------------------------------------- */

void collector_health(server_ctx *ctx, http_response *resp)
{
    char **ids;
    size_t n;
    at_buf b;
    if (sessions_scan(ctx->root, &ids, &n) != AT_OK) {
        http_response_error(resp, 500, "cannot list sessions");
        return;
    }
    sessions_free_ids(ids, n);
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, "{\"status\": \"ok\", \"sessions\": %zu}", n);
    respond_buf(resp, 200, &b, r);
    at_buf_fini(&b);
}

typedef struct {
    at_meta meta;
    double started; /* started_at, 0.0 when unset (SessionMeta's default) */
    at_buf sid;     /* decoded session_id, the directory name when unset */
} listed;

static int cmp_listed(const void *pa, const void *pb)
{
    const listed *a = pa, *b = pb;
    if (a->started != b->started)
        return a->started > b->started ? -1 : 1;
    /* UTF-8 byte order is code point order, as Python compares str. */
    size_t n = a->sid.len < b->sid.len ? a->sid.len : b->sid.len;
    int c = n ? memcmp(a->sid.data, b->sid.data, n) : 0;
    if (c == 0)
        c = a->sid.len < b->sid.len ? -1 : a->sid.len > b->sid.len;
    return -c;
}

void collector_list_sessions(server_ctx *ctx, http_response *resp)
{
    char **ids, p[PATH_MAX];
    size_t n, k = 0;
    at_result r;
    if (sessions_scan(ctx->root, &ids, &n) != AT_OK) {
        http_response_error(resp, 500, "cannot list sessions");
        return;
    }
    listed *v = calloc(n ? n : 1, sizeof *v);
    at_buf b;
    at_buf_init(&b, 0);
    if (!v) {
        r = AT_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        listed *e = &v[k];
        at_meta_init(&e->meta);
        at_buf_init(&e->sid, 0);
        if (meta_path(ctx->root, ids[i], "meta.json", p, sizeof p) != AT_OK ||
            at_meta_load(&e->meta, p, NULL) != AT_OK) {
            at_meta_fini(&e->meta); /* unreadable meta: skipped, as agent-strace does */
            continue;
        }
        double s = at_meta_get_number(&e->meta, AT_META_STARTED_AT, 0.0);
        e->started = s == s ? s : 0.0;
        if (at_meta_get_string(&e->meta, AT_META_SESSION_ID, &e->sid) != AT_OK) {
            at_buf_reset(&e->sid);
            if ((r = at_buf_adds(&e->sid, ids[i])) != AT_OK)
                goto out;
        }
        k++;
    }
    qsort(v, k, sizeof *v, cmp_listed);
    r = at_buf_addc(&b, '[');
    for (size_t i = 0; r == AT_OK && i < k; i++) {
        if (i && (r = at_buf_adds(&b, ", ")) != AT_OK)
            break;
        r = at_meta_write(&v[i].meta, &b, &AT_JSON_DEFAULT);
    }
    if (r == AT_OK)
        r = at_buf_addc(&b, ']');
out:
    respond_buf(resp, 200, &b, r);
    at_buf_fini(&b);
    for (size_t i = 0; v && i < k; i++) {
        at_meta_fini(&v[i].meta);
        at_buf_fini(&v[i].sid);
    }
    if (v && k < n) { /* a partly filled slot after an error */
        at_meta_fini(&v[k].meta);
        at_buf_fini(&v[k].sid);
    }
    free(v);
    sessions_free_ids(ids, n);
}

void collector_get_session(server_ctx *ctx, const char *id, http_response *resp)
{
    char *sid, p[PATH_MAX];
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_meta m;
    at_error err = {0};
    at_buf b;
    at_meta_init(&m);
    at_buf_init(&b, 0);
    at_result r = meta_path(ctx->root, sid, "meta.json", p, sizeof p);
    if (r == AT_OK)
        r = at_meta_load(&m, p, &err);
    if (r == AT_ERR_NOT_FOUND) /* removed since it was resolved */
        http_response_error(resp, 404, "session not found: %s", id);
    else if (r != AT_OK)
        http_response_error(resp, 500, "cannot read session metadata: %s",
                            err.message[0] ? err.message : at_result_str(r));
    else
        respond_buf(resp, 200, &b, at_meta_write(&m, &b, &AT_JSON_DEFAULT));
    at_buf_fini(&b);
    at_meta_fini(&m);
    free(sid);
}

void collector_get_events(server_ctx *ctx, const char *id, http_response *resp)
{
    char *sid, p[PATH_MAX];
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    int fd = -1;
    struct stat sb;
    if (meta_path(ctx->root, sid, "events.ndjson", p, sizeof p) == AT_OK)
        fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* A session made by POST /sessions has no events yet. */
        resp->status = 200;
        resp->content_type = "application/x-ndjson";
        at_buf_reset(&resp->body);
    } else if (fd < 0 || fstat(fd, &sb) < 0) {
        http_response_error(resp, 500, "cannot read events: %s", strerror(errno));
    } else {
        resp->status = 200;
        resp->content_type = "application/x-ndjson";
        at_buf_reset(&resp->body);
        resp->fd = fd; /* the response owns it now */
        resp->fd_size = (uint64_t)sb.st_size;
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    free(sid);
}

/* ---- POST /events: validation ------------------------------------------------------ */

static const char *const event_types[] = {
    "session_start", "session_end", "tool_call", "tool_result", "llm_request", "llm_response",
    "file_read",     "file_write",  "decision",  "error",       "user_prompt", "assistant_response",
};

/* TraceEvent's fields; the order of at_event_json's slices. */
enum { F_TYPE, F_TS, F_ID, F_SID, F_PARENT, F_DUR, F_DATA, F_PREV, F_REDACTED, NF };
static const char *const event_fields[NF] = {
    "event_type",  "timestamp", "event_id",  "session_id", "parent_id",
    "duration_ms", "data",      "prev_hash", "redacted",
};

/* A validated event: each present field's compact JSON in the batch arena. */
typedef struct {
    size_t off[F_REDACTED], len[F_REDACTED];
    bool has[F_REDACTED];
    bool redacted;
    bool secrets; /* redaction changed its data */
} pending;

typedef struct {
    at_buf arena; /* field bytes of the batch's events */
    pending *ev;
    size_t n, cap;
    at_buf sid; /* decoded session id of the batch */
} batch;

/* Python's str.strip() for the ASCII whitespace a line may carry. */
static bool py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static void new_event_id(char out[13])
{
    uint8_t rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x =
            (uint64_t)ts.tv_nsec * 6364136223846793005ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)out;
        memcpy(rnd, &x, sizeof rnd);
    }
    at_hex(rnd, sizeof rnd, out); /* uuid4().hex[:12]: all twelve digits are random */
}

/* Python's time.time(), as repr() writes it. */
static size_t now_repr(char out[AT_DOUBLE_REPR_MAX])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return at_double_repr((double)ns / 1e9, out);
}

/* Adds bytes to the arena, recording where they went. */
static at_result arena_add(batch *bt, pending *pe, int f, const char *p, size_t n)
{
    pe->off[f] = bt->arena.len;
    pe->len[f] = n;
    pe->has[f] = true;
    return at_buf_add(&bt->arena, p, n);
}

static at_result arena_emit(batch *bt, pending *pe, int f, const at_json_doc *d, uint32_t v,
                            const at_json_style *st)
{
    pe->off[f] = bt->arena.len;
    pe->has[f] = true;
    at_result r = at_json_emit(&bt->arena, d, v, st, 0);
    pe->len[f] = bt->arena.len - pe->off[f];
    return r;
}

typedef enum { LINE_OK, LINE_BAD, LINE_NOMEM } line_verdict;

/* Validates one non-blank line as a TraceEvent (TraceEvent(**json.loads)).
 * On LINE_OK, *pe is filled (fields in bt->arena, data redacted by rd
 * unless it is NULL) and sid holds the decoded session id. */
static line_verdict parse_line(at_json_doc *d, const char *p, size_t n, batch *bt, pending *pe, at_buf *sid,
                               at_redact *rd)
{
    if (!utf8_ok(p, n) || at_json_parse(d, p, n, NULL) != AT_OK || !at_json_is(d, 0, AT_JSON_OBJECT))
        return LINE_BAD;
    for (uint32_t k = at_json_first(d, 0); k != AT_JSON_NONE; k = at_json_next(d, 0, k)) {
        int f = 0;
        while (f < NF && !at_json_str_eq(d, k, event_fields[f], strlen(event_fields[f])))
            f++;
        if (f == NF)
            return LINE_BAD; /* an unknown field: TypeError in TraceEvent(**...) */
    }
    uint32_t v[NF];
    for (int f = 0; f < NF; f++)
        v[f] = at_json_get(d, 0, event_fields[f]);
    if (!at_json_is(d, v[F_TYPE], AT_JSON_STRING))
        return LINE_BAD;
    size_t t = 0;
    while (t < sizeof event_types / sizeof *event_types &&
           !at_json_str_eq(d, v[F_TYPE], event_types[t], strlen(event_types[t])))
        t++;
    if (t == sizeof event_types / sizeof *event_types)
        return LINE_BAD;
    if (!at_json_is(d, v[F_SID], AT_JSON_STRING))
        return LINE_BAD;
    at_buf_reset(sid);
    at_result dr = at_json_str_decode(d, v[F_SID], sid); /* sid is capped: TOO_BIG is a bad id */
    if (dr != AT_OK)
        return dr == AT_ERR_NOMEM ? LINE_NOMEM : LINE_BAD;
    if (!sid->data || !at_session_id_ok(sid->data, sid->len))
        return LINE_BAD;

    size_t mark = bt->arena.len;
    at_result r = AT_OK;
    memset(pe, 0, sizeof *pe);
    at_json_style data_style = AT_JSON_COMPACT;
    if (rd) {
        data_style.hook = at_redact_hook;
        data_style.hook_ctx = rd;
        at_redact_begin(rd);
    }
    for (int f = 0; r == AT_OK && f < F_REDACTED; f++)
        if (v[f] != AT_JSON_NONE)
            r = arena_emit(bt, pe, f, d, v[f], f == F_DATA ? &data_style : &AT_JSON_COMPACT);
    if (r == AT_OK && v[F_ID] == AT_JSON_NONE) {
        char id[16];
        new_event_id(id + 1);
        id[0] = '"';
        id[13] = '"';
        r = arena_add(bt, pe, F_ID, id, 14);
    }
    if (r == AT_OK && v[F_TS] == AT_JSON_NONE) {
        char ts[AT_DOUBLE_REPR_MAX];
        size_t k = now_repr(ts);
        r = arena_add(bt, pe, F_TS, ts, k);
    }
    pe->redacted = v[F_REDACTED] != AT_JSON_NONE && at_json_truthy(d, v[F_REDACTED]);
    if (rd && at_redact_marked(rd)) /* TraceStore._redact_event: flagged, never unflagged */
        pe->redacted = true;
    pe->secrets = rd && at_redact_changed(rd);
    if (r != AT_OK) {
        bt->arena.len = mark;
        return r == AT_ERR_NOMEM ? LINE_NOMEM : LINE_BAD;
    }
    return LINE_OK;
}

/* ---- POST /events: appending ---------------------------------------------------------- */

static at_result mem_sink(void *ctx, const char *p, size_t n)
{
    return at_buf_add(ctx, p, n);
}

/* Finds the last non-blank line of fd's first size bytes: its SHA-256 into
 * head (have_head false when there is none) and whether the file ends
 * with "\n". Reads backwards from the end only as far as that line. */
static at_result tail_head(int fd, off_t size, uint8_t head[AT_SHA256_LEN], bool *have_head, bool *ends_nl)
{
    enum { BLK = 65536 };
    char *blk = malloc(BLK);
    at_result r = AT_OK;
    *have_head = false;
    *ends_nl = true;
    if (!blk)
        return AT_ERR_NOMEM;
    off_t seg_end = size, start = -1, pos = size;
    bool content = false;
    while (pos > 0 && start < 0) {
        size_t k = pos > BLK ? BLK : (size_t)pos;
        off_t base = pos - (off_t)k;
        ssize_t got = pread(fd, blk, k, base);
        if (got != (ssize_t)k) {
            r = AT_ERR_IO;
            goto out;
        }
        if (pos == size)
            *ends_nl = blk[k - 1] == '\n';
        for (size_t i = k; i-- > 0;) {
            char c = blk[i];
            if (c == '\n') {
                if (content) {
                    start = base + (off_t)i + 1;
                    break;
                }
                seg_end = base + (off_t)i;
            } else if (c != ' ' && c != '\t' && c != '\r') {
                content = true;
            }
        }
        pos = base;
    }
    if (start < 0 && content)
        start = 0;
    if (start < 0)
        goto out;
    at_sha256 *h = at_sha256_new();
    if (!h) {
        r = AT_ERR_NOMEM;
        goto out;
    }
    for (off_t o = start; o < seg_end;) {
        size_t k = seg_end - o > BLK ? BLK : (size_t)(seg_end - o);
        if (pread(fd, blk, k, o) != (ssize_t)k) {
            r = AT_ERR_IO;
            break;
        }
        at_sha256_update(h, blk, k);
        o += (off_t)k;
    }
    if (r == AT_OK) {
        at_sha256_final(h, head);
        *have_head = true;
    }
    at_sha256_free(h);
out:
    free(blk);
    return r;
}

static bool same_file(const append_entry *e, const struct stat *sb)
{
    return e && e->valid && e->dev == sb->st_dev && e->ino == sb->st_ino && e->size == sb->st_size &&
           e->mtime.tv_sec == sb->st_mtim.tv_sec && e->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/* Copies the first size bytes of src to dst. */
static at_result copy_bytes(int src, int dst, off_t size)
{
    off_t in = 0;
    while (in < size) {
        ssize_t k = copy_file_range(src, &in, dst, NULL, (size_t)(size - in), 0);
        if (k > 0)
            continue;
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0)
            return AT_ERR_IO; /* the file shrank */
        /* Not supported here (EXDEV, EINVAL, ...): plain read/write. */
        char buf[65536];
        while (in < size) {
            size_t want = size - in > (off_t)sizeof buf ? sizeof buf : (size_t)(size - in);
            ssize_t got = pread(src, buf, want, in);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0 || at_write_all(dst, buf, (size_t)got) != AT_OK)
                return AT_ERR_IO;
            in += got;
        }
    }
    return AT_OK;
}

static int lock_store_shared(const char *root)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.agent-traced/lock", root);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1; /* not a directory at_store_open made: nothing to exclude */
    while (flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Opens events.ndjson (creating it) and takes its flock, making sure the
 * locked inode is still the one the path names. */
static int open_locked(const char *path, struct stat *sb)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        struct stat now;
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
            ;
        if (fstat(fd, sb) == 0 && stat(path, &now) == 0 && now.st_ino == sb->st_ino &&
            now.st_dev == sb->st_dev)
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

/* Appends the batch's events to its session, creating the session first
 * when it does not exist. All or nothing: on failure the file is as before. */
static at_result append_batch(server_ctx *ctx, batch *bt, at_error *err)
{
    const char *sid = bt->sid.data;
    char path[PATH_MAX], tmp[PATH_MAX] = "";
    at_result r = AT_OK;
    int fd = -1, wfd = -1, slock = -1;
    at_buf out;
    at_chain_writer w;
    bool writer = false;
    at_buf_init(&out, 0);

    struct append_cache *c = cache_of(ctx);
    stripe *st = c ? stripe_of(c, sid) : NULL;
    if (!st)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    pthread_mutex_lock(&st->mu);
    append_entry *e = entry_get(st, sid);
    slock = lock_store_shared(ctx->root);

    if (!sessions_exists(ctx->root, sid)) {
        at_meta m;
        at_buf mb;
        at_meta_init(&m);
        at_buf_init(&mb, AT_MAX_META_BYTES);
        r = at_meta_set_string(&m, AT_META_SESSION_ID, sid, bt->sid.len);
        if (r == AT_OK)
            r = at_meta_write(&m, &mb, &AT_JSON_PRETTY);
        if (r == AT_OK)
            r = create_session(ctx->root, sid, mb.data, mb.len, err);
        else
            at_error_set(err, r, -1, "cannot build session metadata");
        at_buf_fini(&mb);
        at_meta_fini(&m);
        if (r != AT_OK)
            goto out;
    }

    struct stat sb;
    if ((r = meta_path(ctx->root, sid, "events.ndjson", path, sizeof path)) != AT_OK) {
        at_error_set(err, r, -1, "session path too long");
        goto out;
    }
    if ((fd = open_locked(path, &sb)) < 0) {
        r = at_error_set(err, AT_ERR_IO, -1, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }

    uint8_t head[AT_SHA256_LEN];
    bool have_head, ends_nl = true;
    if (same_file(e, &sb)) {
        have_head = e->have_head;
        memcpy(head, e->head, sizeof head);
    } else if ((r = tail_head(fd, sb.st_size, head, &have_head, &ends_nl)) != AT_OK) {
        at_error_set(err, r, -1, "cannot read %s", path);
        goto out;
    }

    /* Serialize the whole batch first: one write, nothing partial. */
    if (!ends_nl && (r = at_buf_addc(&out, '\n')) != AT_OK)
        goto out;
    if ((r = at_chain_writer_init(&w, mem_sink, &out, have_head ? head : NULL)) != AT_OK)
        goto out;
    writer = true;
    for (size_t i = 0; i < bt->n && r == AT_OK; i++) {
        const pending *pe = &bt->ev[i];
        at_slice s[F_REDACTED];
        for (int f = 0; f < F_REDACTED; f++)
            s[f] = pe->has[f] ? (at_slice){bt->arena.data + pe->off[f], pe->len[f]} : (at_slice){NULL, 0};
        at_event_json ev = {
            .event_type = s[F_TYPE],
            .timestamp = s[F_TS],
            .event_id = s[F_ID],
            .session_id = s[F_SID],
            .parent_id = s[F_PARENT],
            .duration_ms = s[F_DUR],
            .data = s[F_DATA],
            .prev_hash = s[F_PREV],
            .redacted = pe->redacted,
        };
        r = at_chain_write(&w, &ev);
    }
    if (r != AT_OK) {
        at_error_set(err, r, -1, "cannot serialize events");
        goto out;
    }

    struct stat after;
    if (sb.st_nlink > 1 || !(sb.st_mode & S_IWUSR) || access(path, W_OK) < 0) {
        /* Copy-on-write: the object behind the link stays untouched. */
        int k = snprintf(tmp, sizeof tmp, "%s.cow-XXXXXX", path);
        char *slash = strrchr(tmp, '/');
        if (k < 0 || (size_t)k >= sizeof tmp || !slash) {
            tmp[0] = 0;
            r = at_error_set(err, AT_ERR_TOO_BIG, -1, "session path too long");
            goto out;
        }
        /* ".events.ndjson.cow-XXXXXX": a dot name agent-strace ignores. */
        memmove(slash + 2, slash + 1, strlen(slash + 1) + 1);
        slash[1] = '.';
        if ((wfd = mkostemp(tmp, O_CLOEXEC)) < 0) {
            tmp[0] = 0;
            r = at_error_set(err, AT_ERR_IO, -1, "cannot create a copy of %s: %s", path, strerror(errno));
            goto out;
        }
        if ((r = copy_bytes(fd, wfd, sb.st_size)) != AT_OK ||
            (r = at_write_all(wfd, out.data, out.len)) != AT_OK || fchmod(wfd, 0644) < 0 || fsync(wfd) < 0 ||
            fstat(wfd, &after) < 0 || rename(tmp, path) < 0) {
            r = at_error_set(err, AT_ERR_IO, -1, "cannot copy %s: %s", path, strerror(errno));
            goto out;
        }
        tmp[0] = 0;
    } else {
        if ((wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0) {
            r = at_error_set(err, AT_ERR_IO, -1, "cannot open %s: %s", path, strerror(errno));
            goto out;
        }
        if ((r = at_write_all(wfd, out.data, out.len)) != AT_OK) {
            int errsv = errno;
            if (ftruncate(wfd, sb.st_size) < 0) {
                /* nothing more we can do; the cache is invalidated below */
            }
            r = at_error_set(err, AT_ERR_IO, -1, "cannot append to %s: %s", path, strerror(errsv));
            goto out;
        }
        if (fstat(wfd, &after) < 0)
            after.st_size = -1;
    }
    if (e) {
        /* Only trust the new state if nobody wrote between. */
        e->valid = after.st_size == sb.st_size + (off_t)out.len;
        e->have_head = true;
        memcpy(e->head, w.head, sizeof e->head);
        e->dev = after.st_dev;
        e->ino = after.st_ino;
        e->size = after.st_size;
        e->mtime = after.st_mtim;
    }
out:
    if (r != AT_OK && e)
        e->valid = false;
    if (tmp[0])
        unlink(tmp);
    if (writer)
        at_chain_writer_fini(&w);
    if (wfd >= 0)
        close(wfd);
    if (fd >= 0)
        close(fd); /* releases the flock */
    if (slock >= 0)
        close(slock);
    pthread_mutex_unlock(&st->mu);
    at_buf_fini(&out);
    return r;
}

static void batch_clear(batch *bt)
{
    at_buf_reset(&bt->arena);
    at_buf_reset(&bt->sid);
    bt->n = 0;
}

void collector_post_events(server_ctx *ctx, const char *body, size_t n, http_response *resp)
{
    uint64_t accepted = 0, errors = 0;
    batch bt = {0};
    if (!body)
        n = 0;
    at_buf sid, b;
    at_json_doc d;
    at_result r = AT_OK;
    at_buf_init(&bt.arena, 0);
    at_buf_init(&bt.sid, AT_MAX_SESSION_ID + 1);
    at_buf_init(&sid, AT_MAX_SESSION_ID + 1);
    at_buf_init(&b, 0);
    at_json_doc_init(&d);
    at_error rerr = {0};
    at_redact *rd = NULL;
    if (ctx->redact && !(rd = at_redact_new(&rerr)))
        r = AT_ERR_NOMEM;

    for (size_t pos = 0; pos < n && r == AT_OK;) {
        const char *nl = memchr(body + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - body) : n;
        size_t a = pos, z = end;
        pos = nl ? end + 1 : n;
        while (a < z && py_space(body[a]))
            a++;
        while (z > a && py_space(body[z - 1]))
            z--;
        if (a == z)
            continue; /* blank lines are ignored */
        if (bt.n == bt.cap) {
            size_t ncap = bt.cap ? bt.cap * 2 : 64;
            pending *nv = realloc(bt.ev, ncap * sizeof *nv);
            if (!nv) {
                r = AT_ERR_NOMEM;
                break;
            }
            bt.ev = nv;
            bt.cap = ncap;
        }
        /* A valid line of another session first flushes the batch. The
         * line is parsed into the current arena; if it starts a new batch
         * it is parsed again after the flush (rare: session switches). */
        pending pe;
        line_verdict lv = parse_line(&d, body + a, z - a, &bt, &pe, &sid, rd);
        if (lv == LINE_NOMEM) {
            r = AT_ERR_NOMEM;
            break;
        }
        if (lv == LINE_BAD) {
            errors++;
            continue;
        }
        if (bt.n && (sid.len != bt.sid.len || memcmp(sid.data, bt.sid.data, sid.len) != 0)) {
            at_error err = {0};
            size_t keep = bt.n;
            if (append_batch(ctx, &bt, &err) == AT_OK)
                accepted += keep;
            else
                errors += keep;
            batch_clear(&bt);
            lv = parse_line(&d, body + a, z - a, &bt, &pe, &sid, rd);
            if (lv != LINE_OK) {
                r = AT_ERR_NOMEM;
                break;
            }
        }
        if (!bt.n && (r = at_buf_add(&bt.sid, sid.data, sid.len)) != AT_OK)
            break;
        bt.ev[bt.n++] = pe;
        resp->redacted_events += pe.secrets;
    }
    if (r == AT_OK && bt.n) {
        at_error err = {0};
        if (append_batch(ctx, &bt, &err) == AT_OK)
            accepted += bt.n;
        else
            errors += bt.n;
    }
    if (r != AT_OK) {
        http_response_error(resp, 500, "%s", at_result_str(r));
    } else {
        r = at_buf_printf(&b, "{\"accepted\": %llu, \"errors\": %llu}", (unsigned long long)accepted,
                          (unsigned long long)errors);
        respond_buf(resp, errors ? 202 : 200, &b, r);
    }
    at_redact_free(rd);
    at_json_doc_fini(&d);
    at_buf_fini(&b);
    at_buf_fini(&sid);
    at_buf_fini(&bt.sid);
    at_buf_fini(&bt.arena);
    free(bt.ev);
}

/* ---- POST /sessions --------------------------------------------------------------------- */

/* TraceStore._redact_meta, when redaction is on. */
static at_result redact_meta(server_ctx *ctx, at_meta *m, http_response *resp)
{
    if (!ctx->redact)
        return AT_OK;
    at_redact *rd = at_redact_new(NULL);
    if (!rd)
        return AT_ERR_NOMEM;
    at_result r = at_redact_meta(rd, m);
    resp->redacted_meta = r == AT_OK && at_redact_changed(rd);
    at_redact_free(rd);
    return r;
}

void collector_post_sessions(server_ctx *ctx, const char *body, size_t n, http_response *resp)
{
    at_json_doc d;
    at_meta m, upd;
    at_buf sid, b;
    at_error err = {0};
    stripe *st = NULL;
    at_json_doc_init(&d);
    at_meta_init(&m);
    at_meta_init(&upd);
    at_buf_init(&sid, AT_MAX_SESSION_ID + 1);
    at_buf_init(&b, AT_MAX_META_BYTES);
    if (!body) {
        body = "";
        n = 0;
    }

    if (n > AT_MAX_META_BYTES) {
        http_response_error(resp, 413, "session metadata too large");
        goto out;
    }
    if (!utf8_ok(body, n)) {
        http_response_error(resp, 400, "invalid JSON: body is not valid UTF-8");
        goto out;
    }
    if (at_json_parse(&d, body, n, &err) != AT_OK) {
        http_response_error(resp, 400, "invalid JSON: %s", err.message[0] ? err.message : "parse error");
        goto out;
    }
    if (!at_json_is(&d, 0, AT_JSON_OBJECT)) {
        http_response_error(resp, 400, "session metadata must be a JSON object");
        goto out;
    }
    uint32_t v = at_json_get(&d, 0, "session_id");
    if (v == AT_JSON_NONE || !at_json_truthy(&d, v)) {
        http_response_error(resp, 400, "session_id required");
        goto out;
    }
    if (!at_json_is(&d, v, AT_JSON_STRING)) {
        http_response_error(resp, 400, "session_id must be a string");
        goto out;
    }
    at_result dr = at_json_str_decode(&d, v, &sid);
    if (dr == AT_ERR_NOMEM) {
        http_response_error(resp, 500, "out of memory");
        goto out;
    }
    if (dr != AT_OK || !sid.data || !at_session_id_ok(sid.data, sid.len)) {
        http_response_error(resp, 400, "invalid session id");
        goto out;
    }

    struct append_cache *c = cache_of(ctx);
    if (!c) {
        http_response_error(resp, 500, "out of memory");
        goto out;
    }
    st = stripe_of(c, sid.data);
    pthread_mutex_lock(&st->mu);

    char p[PATH_MAX];
    at_result r;
    if (meta_path(ctx->root, sid.data, "meta.json", p, sizeof p) != AT_OK) {
        http_response_error(resp, 400, "invalid session id");
        goto out;
    }
    if (sessions_exists(ctx->root, sid.data)) {
        /* Known fields in the body overwrite the stored ones; others are ignored. */
        if ((r = at_meta_load(&m, p, &err)) != AT_OK) {
            http_response_error(resp, 500, "cannot read session metadata: %s", err.message);
            goto out;
        }
        if ((r = at_meta_parse(&upd, body, n, false, &err)) != AT_OK) {
            http_response_error(resp, 400, "%s", err.message);
            goto out;
        }
        for (int f = 0; f < AT_META_NFIELDS && r == AT_OK; f++)
            if (upd.raw[f])
                r = at_meta_set_raw(&m, (at_meta_field)f, upd.raw[f], upd.len[f]);
        if (r == AT_OK)
            r = redact_meta(ctx, &m, resp);
        if (r == AT_OK)
            r = at_meta_write(&m, &b, &AT_JSON_PRETTY);
        if (r == AT_OK)
            r = at_write_file_atomic(p, b.data, b.len, &err);
        else
            at_error_set(&err, r, -1, "%s", at_result_str(r));
    } else {
        /* SessionMeta(**body): an unknown field is the client's error. */
        if ((r = at_meta_parse(&m, body, n, true, &err)) != AT_OK) {
            http_response_error(resp, 400, "%s", err.message);
            goto out;
        }
        r = redact_meta(ctx, &m, resp);
        if (r == AT_OK)
            r = at_meta_write(&m, &b, &AT_JSON_PRETTY);
        if (r == AT_OK) {
            int slock = lock_store_shared(ctx->root);
            r = create_session(ctx->root, sid.data, b.data, b.len, &err);
            if (slock >= 0)
                close(slock);
        } else {
            at_error_set(&err, r, -1, "%s", at_result_str(r));
        }
    }
    if (r != AT_OK) {
        http_response_error(resp, r == AT_ERR_TOO_BIG ? 413 : 500, "cannot write session metadata: %s",
                            err.message);
        goto out;
    }
    at_buf_reset(&b);
    r = at_buf_adds(&b, "{\"session_id\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, sid.data, sid.len);
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"status\": \"ok\"}");
    respond_buf(resp, 200, &b, r);
out:
    if (st)
        pthread_mutex_unlock(&st->mu);
    at_buf_fini(&b);
    at_buf_fini(&sid);
    at_meta_fini(&upd);
    at_meta_fini(&m);
    at_json_doc_fini(&d);
}
