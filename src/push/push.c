/* push.c - planning and streaming uploads (push.h). */
#include "push/push.h"
#include "push/state.h"

#include "agenttrace/sha256.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define IN_CHUNK (256 * 1024) /* file bytes read at a time */
#define RESP_CAP (64 * 1024)  /* the most of a response body kept */
#define GZ_LEVEL 1            /* speed first: JSONL still shrinks ~5x */
#define MAX_JOBS 64

typedef enum { ACT_NEW, ACT_EXTEND, ACT_REPLACE, ACT_UNCHANGED, ACT_FAILED } action;

typedef struct {
    const char *path; /* as walked (borrowed) */
    char *abs;        /* realpath: the state key (owned) */
    action act;
    uint64_t offset, size; /* send bytes [offset, size) */
    struct stat st;
    push_entry old; /* act == ACT_EXTEND: what the server holds */
} item;

typedef struct engine {
    const push_options *o;
    item *items;
    size_t n, next;
    push_state *state;
    push_summary *sum;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
    uint64_t files_done, bytes_total, bytes_done; /* progress */
    double t0;
    bool bar_drawn;
} engine;

/* One upload's body: file bytes [pos, end) through gzip. */
typedef struct {
    engine *e;
    int fd;
    uint64_t pos, end;
    z_stream z;
    bool zlive, eof, done;
    unsigned char *in;
    char err[160]; /* why the body was cut short */
    /* the first and last PUSH_EDGE transcript bytes up to pos */
    unsigned char head[PUSH_EDGE];
    size_t head_len;
    unsigned char ring[PUSH_EDGE];
    uint64_t ring_total;
} body;

typedef struct {
    char *data;
    size_t len;
} resp;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *push_default_server(const char *url)
{
    if (url && *url)
        return url;
    const char *u = getenv("AGENT_TRACED_URL");
    if (u && *u)
        return u;
    u = getenv("AGENT_STRACE_ENDPOINT");
    if (u && *u)
        return u;
    return "http://127.0.0.1:4317";
}

const char *push_default_workspace(const char *ws)
{
    if (ws && *ws)
        return ws;
    const char *env = getenv("AGENT_TRACED_WORKSPACE");
    return env && *env ? env : NULL;
}

const char *push_default_key(const char *key)
{
    static char buf[512];
    if (key && *key)
        return key;
    const char *k = getenv("AGENT_STRACE_AUTH_KEY");
    if (!k)
        return NULL;
    /* the first non-blank entry of the list */
    while (*k) {
        while (*k == ' ' || *k == ',' || *k == '\t')
            k++;
        size_t n = strcspn(k, ",");
        while (n && (k[n - 1] == ' ' || k[n - 1] == '\t'))
            n--;
        if (n && n < sizeof buf) {
            memcpy(buf, k, n);
            buf[n] = 0;
            return buf;
        }
        k += strcspn(k, ",");
    }
    return NULL;
}

/* ---- progress and messages ------------------------------------------------- */

static void bar_clear(engine *e)
{
    if (e->bar_drawn) {
        fputs("\r\033[K", e->o->errs);
        e->bar_drawn = false;
    }
}

static void human(char *out, size_t n, double b)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) {
        b /= 1000;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* Called with e->mu held. */
static void bar_draw(engine *e)
{
    double el = now_s() - e->t0;
    double rate = el > 0.2 ? (double)e->bytes_done / el : 0;
    char done[32], total[32], r[32], eta[32] = "--:--";
    human(done, sizeof done, (double)e->bytes_done);
    human(total, sizeof total, (double)e->bytes_total);
    human(r, sizeof r, rate);
    if (rate > 0 && e->bytes_total >= e->bytes_done) {
        double s = (double)(e->bytes_total - e->bytes_done) / rate;
        if (s < 360000)
            snprintf(eta, sizeof eta, "%d:%02d", (int)s / 60, (int)s % 60);
    }
    int width = 20;
    double frac = e->bytes_total ? (double)e->bytes_done / (double)e->bytes_total : (e->n ? 1.0 : 0);
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * width);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(e->o->errs, "\r\033[K[%s] %llu/%zu files  %s/%s  %s/s  ETA %s", bar,
            (unsigned long long)e->files_done, e->n, done, total, r, eta);
    fflush(e->o->errs);
    e->bar_drawn = true;
}

/* A failure, named with its file. Called with e->mu held. */
static void failf(engine *e, const char *file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failf(engine *e, const char *file, const char *fmt, ...)
{
    bar_clear(e);
    va_list ap;
    fprintf(e->o->errs, "agent-traced %s: %s: ", e->o->cmd, file);
    va_start(ap, fmt);
    vfprintf(e->o->errs, fmt, ap);
    va_end(ap);
    fputc('\n', e->o->errs);
    fflush(e->o->errs);
}

/* ---- planning -------------------------------------------------------------- */

/* Reads bytes [off, off+len) of fd into buf; 0, or -1 when short. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Does fd still hold the bytes e describes (its head and tail)? */
static bool prefix_same(int fd, const push_entry *e, unsigned char *buf)
{
    uint8_t d[32];
    if (read_at(fd, buf, e->head_len, 0) != 0)
        return false;
    at_sha256_oneshot(buf, e->head_len, d);
    if (memcmp(d, e->head, 32) != 0)
        return false;
    if (read_at(fd, buf, e->tail_len, e->bytes - e->tail_len) != 0)
        return false;
    at_sha256_oneshot(buf, e->tail_len, d);
    return memcmp(d, e->tail, 32) == 0;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Decides what to send of it; *msg set on failure. */
static void plan_item(engine *e, item *it, unsigned char *buf, char *msg, size_t msglen)
{
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &it->st) != 0) {
        snprintf(msg, msglen, "%s", strerror(errno));
        it->act = ACT_FAILED;
        goto out;
    }
    if (!S_ISREG(it->st.st_mode)) {
        snprintf(msg, msglen, "not a regular file");
        it->act = ACT_FAILED;
        goto out;
    }
    it->size = (uint64_t)it->st.st_size;
    it->offset = 0;
    push_entry old;
    if (!e->state || !push_state_get(e->state, it->abs, &old)) {
        it->act = ACT_NEW;
        goto out;
    }
    if (it->size == old.bytes && it->size == old.size && mtime_ns(&it->st) == old.mtime_ns &&
        (uint64_t)it->st.st_dev == old.dev && (uint64_t)it->st.st_ino == old.ino) {
        it->act = ACT_UNCHANGED;
        goto out;
    }
    if (it->size < old.bytes || !prefix_same(fd, &old, buf)) {
        it->act = ACT_REPLACE; /* rewritten, not appended to: all of it */
        goto out;
    }
    it->old = old;
    if (it->size == old.bytes) {
        it->act = ACT_UNCHANGED; /* touched, same bytes: remember it as is */
        old.size = it->size;
        old.mtime_ns = mtime_ns(&it->st);
        old.dev = (uint64_t)it->st.st_dev;
        old.ino = (uint64_t)it->st.st_ino;
        if (!e->o->dry_run && push_state_put(e->state, it->abs, &old) != 0) {
            snprintf(msg, msglen, "out of memory");
            it->act = ACT_FAILED;
        }
        goto out;
    }
    it->act = ACT_EXTEND;
    it->offset = old.server_bytes;
out:
    if (fd >= 0)
        close(fd);
}

/* ---- the body: file -> gzip -> libcurl ------------------------------------ */

static void body_take(body *b, const unsigned char *p, size_t n, uint64_t at)
{
    if (at < PUSH_EDGE) {
        size_t k = (size_t)(PUSH_EDGE - at) < n ? (size_t)(PUSH_EDGE - at) : n;
        memcpy(b->head + at, p, k);
        if (at + k > b->head_len)
            b->head_len = (size_t)(at + k);
    }
    if (n >= PUSH_EDGE) {
        p += n - PUSH_EDGE;
        b->ring_total += n - PUSH_EDGE;
        n = PUSH_EDGE;
    }
    while (n) {
        size_t at_r = (size_t)(b->ring_total % PUSH_EDGE);
        size_t k = PUSH_EDGE - at_r < n ? PUSH_EDGE - at_r : n;
        memcpy(b->ring + at_r, p, k);
        b->ring_total += k;
        p += k;
        n -= k;
    }
}

/* The head and tail of what the server holds after this upload. */
static void body_edges(body *b, push_entry *pe)
{
    pe->head_len = b->head_len;
    at_sha256_oneshot(b->head, b->head_len, pe->head);
    at_sha256 *h = at_sha256_new();
    if (b->ring_total >= PUSH_EDGE) {
        size_t s = (size_t)(b->ring_total % PUSH_EDGE);
        at_sha256_update(h, b->ring + s, PUSH_EDGE - s);
        at_sha256_update(h, b->ring, s);
        pe->tail_len = PUSH_EDGE;
    } else {
        at_sha256_update(h, b->ring, (size_t)b->ring_total);
        pe->tail_len = (size_t)b->ring_total;
    }
    at_sha256_final(h, pe->tail);
    at_sha256_free(h);
}

/* Prepares b to send [from, end) of fd; the bytes before from feed the
 * head and tail. 0, or -1 with b->err set. */
static int body_start(body *b, int fd, uint64_t from, uint64_t end)
{
    if (b->zlive)
        deflateEnd(&b->z);
    b->zlive = b->eof = b->done = false;
    b->fd = fd;
    b->pos = from;
    b->end = end;
    b->head_len = 0;
    b->ring_total = 0;
    b->err[0] = 0;
    if (from) {
        /* the server already holds [0, from): its first and last bytes */
        size_t hl = from < PUSH_EDGE ? (size_t)from : PUSH_EDGE;
        if (read_at(fd, b->in, hl, 0) != 0) {
            snprintf(b->err, sizeof b->err, "changed while being read");
            return -1;
        }
        body_take(b, b->in, hl, 0);
        b->ring_total = from - hl;
        if (read_at(fd, b->in, hl, from - hl) != 0) {
            snprintf(b->err, sizeof b->err, "changed while being read");
            return -1;
        }
        body_take(b, b->in, hl, from - hl);
    }
    memset(&b->z, 0, sizeof b->z);
    if (deflateInit2(&b->z, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        snprintf(b->err, sizeof b->err, "out of memory");
        return -1;
    }
    b->zlive = true;
    return 0;
}

static size_t body_read(char *out, size_t size, size_t nitems, void *ud)
{
    body *b = ud;
    size_t cap = size * nitems;
    if (b->done)
        return 0;
    b->z.next_out = (Bytef *)out;
    b->z.avail_out = (uInt)cap;
    while (b->z.avail_out > 0 && !b->done) {
        if (b->z.avail_in == 0 && !b->eof) {
            uint64_t left = b->end - b->pos;
            size_t want = left < IN_CHUNK ? (size_t)left : IN_CHUNK;
            if (want == 0) {
                b->eof = true;
            } else {
                ssize_t k = pread(b->fd, b->in, want, (off_t)b->pos);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    snprintf(b->err, sizeof b->err, "%s",
                             k < 0 ? strerror(errno) : "changed while being read (shorter than it was)");
                    return CURL_READFUNC_ABORT;
                }
                body_take(b, b->in, (size_t)k, b->pos);
                b->pos += (uint64_t)k;
                b->z.next_in = b->in;
                b->z.avail_in = (uInt)k;
                pthread_mutex_lock(&b->e->mu);
                b->e->bytes_done += (uint64_t)k;
                pthread_mutex_unlock(&b->e->mu);
            }
        }
        int rc = deflate(&b->z, b->eof ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            b->done = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(b->err, sizeof b->err, "gzip failed");
            return CURL_READFUNC_ABORT;
        }
    }
    return cap - b->z.avail_out;
}

static size_t resp_write(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = size * n;
    size_t room = RESP_CAP - r->len;
    size_t k = len < room ? len : room;
    if (k) {
        char *d = realloc(r->data, r->len + k + 1);
        if (!d)
            return 0;
        r->data = d;
        memcpy(d + r->len, p, k);
        r->len += k;
        d[r->len] = 0;
    }
    return len;
}

/* ---- uploads --------------------------------------------------------------- */

typedef struct {
    engine *e;
    CURL *curl;
    struct curl_slist *headers;
    body b;
    char curl_err[CURL_ERROR_SIZE];
} worker;

/* One POST /import; *status the HTTP status (0: none). *j the JSON body
 * when there is one. -1 with msg set when no response came. */
static int post(worker *w, item *it, int fd, bool incremental, long *status, json_t **j, char *msg,
                size_t msglen)
{
    engine *e = w->e;
    const char *base = strrchr(it->path, '/');
    base = base ? base + 1 : it->path;
    char *src = curl_easy_escape(w->curl, base, 0);
    char *sid = incremental ? curl_easy_escape(w->curl, it->old.session_id, 0) : NULL;
    size_t ul = strlen(e->o->server) + (src ? strlen(src) : 0) + (sid ? strlen(sid) : 0) + 96;
    char *url = malloc(ul);
    resp r = {NULL, 0};
    int rc = -1;
    *status = 0;
    *j = NULL;
    if (!src || !url || (incremental && !sid)) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    size_t bl = strlen(e->o->server);
    while (bl && e->o->server[bl - 1] == '/')
        bl--;
    if (incremental)
        snprintf(url, ul, "%.*s/import?session=%s&offset=%llu&source=%s", (int)bl, e->o->server, sid,
                 (unsigned long long)it->offset, src);
    else
        snprintf(url, ul, "%.*s/import?source=%s", (int)bl, e->o->server, src);
    if (body_start(&w->b, fd, incremental ? it->offset : 0, it->size) != 0) {
        snprintf(msg, msglen, "%s", w->b.err);
        goto out;
    }
    w->curl_err[0] = 0;
    curl_easy_setopt(w->curl, CURLOPT_URL, url);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, &r);
    CURLcode cc = curl_easy_perform(w->curl);
    if (cc != CURLE_OK) {
        if (w->b.err[0])
            snprintf(msg, msglen, "%s", w->b.err);
        else
            snprintf(msg, msglen, "%s (%s): %s", curl_easy_strerror(cc), e->o->server,
                     w->curl_err[0] ? w->curl_err : "no detail");
        goto out;
    }
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, status);
    if (r.data)
        *j = json_loadb(r.data, r.len, 0, NULL);
    if (*status < 200 || *status >= 300) {
        const char *em = json_string_value(json_object_get(*j, "error"));
        snprintf(msg, msglen, "server answered %ld: %s", *status, em ? em : r.data ? r.data : "(no body)");
    }
    rc = 0;
out:
    free(r.data);
    free(url);
    curl_free(src);
    curl_free(sid);
    return rc;
}

/* Sends one planned item; updates the summary and the state. */
static void upload(worker *w, item *it)
{
    engine *e = w->e;
    char msg[1024] = "";
    long status = 0;
    json_t *j = NULL;
    uint64_t sent = 0;
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, sizeof msg, "%s", strerror(errno));
        goto fail;
    }
    bool incremental = it->act == ACT_EXTEND;
    if (post(w, it, fd, incremental, &status, &j, msg, sizeof msg) != 0)
        goto fail;
    if (incremental && (status == 409 || status == 404)) {
        /* the server's copy is not what the state says: all of it */
        json_decref(j);
        j = NULL;
        pthread_mutex_lock(&e->mu);
        e->bytes_total += it->offset;
        pthread_mutex_unlock(&e->mu);
        incremental = false;
        msg[0] = 0;
        if (post(w, it, fd, false, &status, &j, msg, sizeof msg) != 0)
            goto fail;
    }
    if (status < 200 || status >= 300)
        goto fail;
    sent = it->size - (incremental ? it->offset : 0);
    const char *sid = json_string_value(json_object_get(j, "session_id"));
    const char *result = json_string_value(json_object_get(j, "result"));
    if (!sid || strlen(sid) >= sizeof it->old.session_id) {
        snprintf(msg, sizeof msg, "server answered %ld without a session_id", status);
        goto fail;
    }
    push_entry pe;
    memset(&pe, 0, sizeof pe);
    memcpy(pe.session_id, sid, strlen(sid) + 1);
    pe.bytes = pe.size = it->size;
    pe.mtime_ns = mtime_ns(&it->st);
    pe.dev = (uint64_t)it->st.st_dev;
    pe.ino = (uint64_t)it->st.st_ino;
    body_edges(&w->b, &pe);
    char serr[512] = "";
    pthread_mutex_lock(&e->mu);
    e->sum->bytes_sent += sent;
    if (result && strcmp(result, "created") == 0)
        e->sum->created++;
    else if (result && strcmp(result, "extended") == 0)
        e->sum->extended++;
    else if (result && strcmp(result, "replaced") == 0)
        e->sum->replaced++;
    else
        e->sum->unchanged++;
    /* an incremental upload that made no new event (its bytes end inside
     * a line, say) leaves the server's import where it was: the next one
     * starts there again */
    pe.server_bytes = incremental && !(result && strcmp(result, "unchanged") != 0) ? it->offset : pe.bytes;
    if (e->state && (push_state_put(e->state, it->abs, &pe) != 0 ||
                     push_state_save(e->state, false, serr, sizeof serr) != 0))
        failf(e, it->path, "uploaded, but the state was not saved: %s", serr[0] ? serr : "out of memory");
    e->files_done++;
    pthread_mutex_unlock(&e->mu);
    json_decref(j);
    close(fd);
    return;
fail:
    pthread_mutex_lock(&e->mu);
    e->sum->failed++;
    e->files_done++;
    failf(e, it->path, "%s", msg[0] ? msg : "upload failed");
    pthread_mutex_unlock(&e->mu);
    json_decref(j);
    if (fd >= 0)
        close(fd);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    engine *e = w->e;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (e->next < e->n &&
               (e->items[e->next].act == ACT_UNCHANGED || e->items[e->next].act == ACT_FAILED))
            e->next++;
        item *it = e->next < e->n ? &e->items[e->next++] : NULL;
        pthread_mutex_unlock(&e->mu);
        if (!it)
            break;
        upload(w, it);
    }
    pthread_mutex_lock(&e->mu);
    e->running--;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static int worker_init(worker *w, engine *e)
{
    memset(w, 0, sizeof *w);
    w->e = e;
    if (!(w->b.in = malloc(IN_CHUNK)) || !(w->curl = curl_easy_init()))
        return -1;
    w->headers = curl_slist_append(w->headers, "Content-Encoding: gzip");
    w->headers = curl_slist_append(w->headers, "Content-Type: application/x-ndjson");
    w->headers = curl_slist_append(w->headers, "Transfer-Encoding: chunked");
    w->headers = curl_slist_append(w->headers, "Expect:");
    if (e->o->workspace) {
        char wh[128];
        snprintf(wh, sizeof wh, "X-Agent-Traced-Workspace: %s", e->o->workspace);
        w->headers = curl_slist_append(w->headers, wh);
    }
    if (e->o->key && *e->o->key) {
        char auth[600];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", e->o->key);
        w->headers = curl_slist_append(w->headers, auth);
    }
    if (!w->headers)
        return -1;
    curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(w->curl, CURLOPT_READFUNCTION, body_read);
    curl_easy_setopt(w->curl, CURLOPT_READDATA, &w->b);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, resp_write);
    curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, w->curl_err);
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    /* a server that stops reading or answering for two minutes */
    curl_easy_setopt(w->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(w->curl, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(w->curl, CURLOPT_USERAGENT, "agent-traced-push");
    w->b.e = e;
    return 0;
}

static void worker_fini(worker *w)
{
    if (w->b.zlive)
        deflateEnd(&w->b.z);
    free(w->b.in);
    curl_slist_free_all(w->headers);
    if (w->curl)
        curl_easy_cleanup(w->curl);
}

/* ---- the run ---------------------------------------------------------------- */

static int by_abs(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (!x->abs || !y->abs)
        return x->abs ? -1 : y->abs ? 1 : 0;
    return strcmp(x->abs, y->abs);
}

static const char *act_name(action a)
{
    switch (a) {
    case ACT_NEW: return "create";
    case ACT_EXTEND: return "extend";
    case ACT_REPLACE: return "replace";
    case ACT_UNCHANGED: return "unchanged";
    default: return "failed";
    }
}

void push_summary_print(FILE *f, const push_summary *s, bool dry_run)
{
    fprintf(
        f,
        "{\"files\": %llu, \"created\": %llu, \"extended\": %llu, \"replaced\": %llu, \"unchanged\": %llu, "
        "\"failed\": %llu, \"bytes_sent\": %llu%s}\n",
        (unsigned long long)s->files, (unsigned long long)s->created, (unsigned long long)s->extended,
        (unsigned long long)s->replaced, (unsigned long long)s->unchanged, (unsigned long long)s->failed,
        (unsigned long long)s->bytes_sent, dry_run ? ", \"dry_run\": true" : "");
    fflush(f);
}

int push_run(const push_options *o, const walk_list *files, size_t walk_errors, push_summary *sum)
{
    engine e;
    memset(&e, 0, sizeof e);
    memset(sum, 0, sizeof *sum);
    e.o = o;
    e.sum = sum;
    e.t0 = now_s();
    pthread_mutex_init(&e.mu, NULL);
    pthread_cond_init(&e.cv, NULL);
    sum->failed = walk_errors;
    unsigned char *buf = malloc(PUSH_EDGE);
    worker *ws = NULL;
    pthread_t *th = NULL;
    int nth = 0;
    char err[1024];
    if (!buf || !(e.items = calloc(files->len ? files->len : 1, sizeof *e.items))) {
        fprintf(o->errs, "agent-traced %s: out of memory\n", o->cmd);
        sum->failed++;
        goto out;
    }
    /* a server's workspaces are separate copies: one set of entries each */
    char skey[2200];
    snprintf(skey, sizeof skey, "%s%s%s", o->server, o->workspace ? "#workspace=" : "",
             o->workspace ? o->workspace : "");
    if (o->state_path && !(e.state = push_state_open(o->state_path, skey, err, sizeof err))) {
        fprintf(o->errs, "agent-traced %s: %s\n", o->cmd, err);
        sum->failed += files->len ? files->len : 1;
        sum->files = files->len;
        goto out;
    }
    /* one item per distinct file */
    for (size_t i = 0; i < files->len; i++) {
        item *it = &e.items[e.n++];
        it->path = files->paths[i];
        char rp[PATH_MAX];
        if (!realpath(it->path, rp)) {
            it->act = ACT_FAILED;
            failf(&e, it->path, "%s", strerror(errno));
            sum->failed++;
            continue;
        }
        if (!(it->abs = strdup(rp))) {
            it->act = ACT_FAILED;
            failf(&e, it->path, "out of memory");
            sum->failed++;
        }
    }
    /* the same file named twice is pushed once */
    qsort(e.items, e.n, sizeof *e.items, by_abs);
    size_t k = 0;
    for (size_t i = 0; i < e.n; i++) {
        if (k && e.items[i].abs && e.items[k - 1].abs && strcmp(e.items[i].abs, e.items[k - 1].abs) == 0) {
            free(e.items[i].abs);
            continue;
        }
        e.items[k++] = e.items[i];
    }
    e.n = k;
    sum->files = e.n;
    for (size_t i = 0; i < e.n; i++) {
        item *it = &e.items[i];
        if (it->act == ACT_FAILED)
            continue;
        char msg[512] = "";
        plan_item(&e, it, buf, msg, sizeof msg);
        if (it->act == ACT_FAILED) {
            failf(&e, it->path, "%s", msg);
            sum->failed++;
        } else if (it->act == ACT_UNCHANGED) {
            sum->unchanged++;
            e.files_done++;
        } else {
            e.bytes_total += it->size - it->offset;
        }
        if (o->dry_run && it->act != ACT_FAILED && it->act != ACT_UNCHANGED) {
            fprintf(o->out, "%s\t%llu\t%s\n", act_name(it->act), (unsigned long long)(it->size - it->offset),
                    it->path);
            if (it->act == ACT_NEW)
                sum->created++;
            else if (it->act == ACT_EXTEND)
                sum->extended++;
            else
                sum->replaced++;
            sum->bytes_sent += it->size - it->offset;
        }
    }
    if (o->dry_run)
        goto out;
    if (e.state && push_state_save(e.state, true, err, sizeof err) != 0) {
        fprintf(o->errs, "agent-traced %s: %s\n", o->cmd, err);
        sum->failed++;
    }
    size_t todo = 0;
    for (size_t i = 0; i < e.n; i++)
        todo += e.items[i].act != ACT_UNCHANGED && e.items[i].act != ACT_FAILED;
    if (!todo)
        goto out;
    int jobs = o->jobs < 1 ? 1 : o->jobs > MAX_JOBS ? MAX_JOBS : o->jobs;
    if ((size_t)jobs > todo)
        jobs = (int)todo;
    ws = calloc((size_t)jobs, sizeof *ws);
    th = calloc((size_t)jobs, sizeof *th);
    if (!ws || !th) {
        fprintf(o->errs, "agent-traced %s: out of memory\n", o->cmd);
        sum->failed += todo;
        goto out;
    }
    pthread_mutex_lock(&e.mu);
    for (int i = 0; i < jobs; i++) {
        if (worker_init(&ws[i], &e) != 0 || pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
            worker_fini(&ws[i]);
            break;
        }
        nth++;
        e.running++;
    }
    if (nth == 0) {
        pthread_mutex_unlock(&e.mu);
        fprintf(o->errs, "agent-traced %s: cannot start an upload (out of memory)\n", o->cmd);
        sum->failed += todo;
        goto out;
    }
    while (e.running > 0) {
        if (o->progress)
            bar_draw(&e);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&e.cv, &e.mu, &ts);
    }
    if (o->progress) {
        bar_draw(&e);
        fputc('\n', o->errs);
        e.bar_drawn = false;
    }
    pthread_mutex_unlock(&e.mu);
    for (int i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
        worker_fini(&ws[i]);
    }
    if (e.state && push_state_save(e.state, true, err, sizeof err) != 0) {
        fprintf(o->errs, "agent-traced %s: %s\n", o->cmd, err);
        sum->failed++;
    }
out:
    for (size_t i = 0; i < e.n; i++)
        free(e.items[i].abs);
    free(e.items);
    free(ws);
    free(th);
    free(buf);
    push_state_free(e.state);
    pthread_mutex_destroy(&e.mu);
    pthread_cond_destroy(&e.cv);
    return sum->failed ? 1 : 0;
}
