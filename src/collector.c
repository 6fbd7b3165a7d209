/* collector.c - the agent-strace compatible collector endpoints: /health,
 * /sessions, /sessions/{id}, /sessions/{id}/events, POST /events,
 * POST /sessions (server-api.md, "Collector endpoints").
 *
 * POST /events: lines are validated one by one as the body streams in
 * (TraceEvent(**json.loads)), redacted, and each session's valid lines of a
 * request form a batch that the store appends as one version
 * (at_store_append: chained, durable, all or nothing); a request past
 * COLLECTOR_FLUSH bytes of events is appended in several such rounds. This
 * module parses and answers; the store writes. */
#include "collector.h"

#include "agenttrace/catalog.h"
#include "index.h"
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

/* ---- GET endpoints --------------------------------------------------------------- */

/* The session ids: the storage directory scanned as agent-strace does, or
 * a database store's list. */
static at_result list_ids(server_ctx *ctx, char ***ids, size_t *n)
{
    at_error err = {0};
    return ctx->root ? sessions_scan(ctx->root, ids, n) : at_store_list(ctx->store, ids, n, &err);
}

void collector_health(server_ctx *ctx, http_response *resp)
{
    if (ctx->catalog) {
        char b[64];
        int k = snprintf(b, sizeof b, "{\"status\": \"ok\", \"sessions\": %llu}",
                         (unsigned long long)at_catalog_count(ctx->catalog));
        http_response_json(resp, 200, b, (size_t)k);
        return;
    }
    char **ids;
    size_t n;
    at_buf b;
    if (list_ids(ctx, &ids, &n) != AT_OK) {
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
    if (ctx->catalog) {
        at_buf_reset(&resp->body);
        at_result cr = at_catalog_list_json(ctx->catalog, &resp->body);
        if (cr != AT_OK)
            http_response_error(resp, 500, "cannot list sessions: %s", at_result_str(cr));
        else
            resp->status = 200;
        return;
    }
    char **ids;
    size_t n, k = 0;
    at_result r;
    if (list_ids(ctx, &ids, &n) != AT_OK) {
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
        if (at_store_meta_load(ctx->store, ids[i], &e->meta, NULL) != AT_OK) {
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

static at_result add_param(at_buf *b, const char *name, const char *v)
{
    at_result r = at_buf_printf(b, "%s=", name);
    for (const unsigned char *p = (const unsigned char *)v; r == AT_OK && *p; p++)
        r = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                    *p == '.' || *p == '_' || *p == '~'
                ? at_buf_addc(b, (char)*p)
                : at_buf_printf(b, "%%%02X", *p);
    return r == AT_OK ? at_buf_addc(b, '&') : r;
}

/* A page of a database store's sessions: every session's meta, paged as
 * the catalog pages (at_catalog_page_of). */
static at_result store_page(server_ctx *ctx, const at_catalog_query *q, at_buf *out, at_buf *next)
{
    char **ids;
    size_t n;
    at_error err = {0};
    at_result r = at_store_list(ctx->store, &ids, &n, &err);
    if (r != AT_OK)
        return r;
    at_meta *metas = calloc(n ? n : 1, sizeof *metas);
    at_catalog_item *items = calloc(n ? n : 1, sizeof *items);
    size_t k = 0;
    if (!metas || !items)
        r = AT_ERR_NOMEM;
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        at_meta_init(&metas[k]);
        if (at_store_meta_load(ctx->store, ids[i], &metas[k], NULL) != AT_OK) {
            at_meta_fini(&metas[k]); /* unreadable meta: left out, as a listing does */
            continue;
        }
        items[k] = (at_catalog_item){ids[i], &metas[k]};
        k++;
    }
    if (r == AT_OK)
        r = at_catalog_page_of(items, k, q, out, next);
    for (size_t i = 0; i < k; i++)
        at_meta_fini(&metas[i]);
    free(metas);
    free(items);
    at_store_list_free(ids, n);
    return r;
}

void collector_list_sessions_page(server_ctx *ctx, const at_catalog_query *q, http_response *resp)
{
    if (!ctx->catalog && ctx->root) {
        http_response_error(resp, 503, "the session catalog is not open: paging is unavailable");
        return;
    }
    at_buf next;
    at_buf_init(&next, 0);
    at_buf_reset(&resp->body);
    at_result r = ctx->catalog ? at_catalog_list_page(ctx->catalog, q, &resp->body, &next)
                               : store_page(ctx, q, &resp->body, &next);
    if (r == AT_ERR_INVALID) {
        http_response_error(resp, 400, "invalid cursor: use the one a Link header gave");
    } else if (r != AT_OK) {
        http_response_error(resp, 500, "cannot list sessions: %s", at_result_str(r));
    } else {
        resp->status = 200;
        if (next.len) {
            /* the same query from the next page on */
            at_buf l;
            at_buf_init(&l, 0);
            at_result lr = at_buf_adds(&l, "</sessions?");
            if (lr == AT_OK && q->limit)
                lr = at_buf_printf(&l, "limit=%zu&", q->limit);
            if (lr == AT_OK && q->agent)
                lr = add_param(&l, "agent", q->agent);
            if (lr == AT_OK && q->q)
                lr = add_param(&l, "q", q->q);
            if (lr == AT_OK && q->has_since)
                lr = at_buf_printf(&l, "since=%.17g&", q->since);
            if (lr == AT_OK && q->has_until)
                lr = at_buf_printf(&l, "until=%.17g&", q->until);
            if (lr == AT_OK)
                lr = at_buf_printf(&l, "cursor=%s>; rel=\"next\"", next.data);
            if (lr == AT_OK)
                resp->link = at_buf_steal(&l, NULL);
            at_buf_fini(&l);
        }
    }
    at_buf_fini(&next);
}

void collector_get_session(server_ctx *ctx, const char *id, http_response *resp)
{
    char *sid;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    if (ctx->catalog) {
        at_buf_reset(&resp->body);
        at_result cr = at_catalog_meta_json(ctx->catalog, sid, &resp->body);
        if (cr == AT_OK)
            resp->status = 200;
        else if (cr == AT_ERR_NOT_FOUND) /* removed since it was resolved */
            http_response_error(resp, 404, "session not found: %s", id);
        else
            http_response_error(resp, 500, "cannot read session metadata: %s", at_result_str(cr));
        free(sid);
        return;
    }
    at_meta m;
    at_error err = {0};
    at_buf b;
    at_meta_init(&m);
    at_buf_init(&b, 0);
    at_result r = at_store_meta_load(ctx->store, sid, &m, &err);
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

static ssize_t reader_read(void *ctx, uint64_t pos, char *buf, size_t n)
{
    return at_object_read(ctx, pos, buf, n);
}

static void reader_free(void *ctx)
{
    at_object_reader_free(ctx);
}

void collector_get_events(server_ctx *ctx, const char *id, uint64_t version, http_response *resp)
{
    char *sid;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    /* The version's object: the same bytes as events.ndjson for the current
     * one (an external change became a version first), and immutable while
     * it is sent. A session made by POST /sessions has no events yet. */
    at_object_reader *rd;
    at_error err = {0};
    at_result r = at_store_open_version(ctx->store, sid, version, &rd, &err);
    if (r == AT_ERR_NOT_FOUND) {
        http_response_error(resp, 404, "%s", err.message);
    } else if (r != AT_OK) {
        http_response_error(resp, 500, "cannot read events: %s",
                            err.message[0] ? err.message : at_result_str(r));
    } else {
        resp->status = 200;
        resp->content_type = "application/x-ndjson";
        at_buf_reset(&resp->body);
        resp->stream = (http_stream){reader_read, reader_free, rd, at_object_size(rd)};
    }
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
    size_t sid_off, sid_len; /* the decoded session id (NUL-terminated) in the arena */
    bool redacted;
    bool secrets; /* redaction changed its data */
} pending;

typedef struct {
    at_buf arena; /* field bytes and session ids of the batch's events */
    pending *ev;
    size_t n, cap;
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
    if (!utf8_ok(p, n))
        return LINE_BAD;
    at_result pr = at_json_parse(d, p, n, NULL);
    if (pr == AT_ERR_NOMEM) /* not the line's fault: it must not count as a bad one */
        return LINE_NOMEM;
    if (pr != AT_OK || !at_json_is(d, 0, AT_JSON_OBJECT))
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

/* Appends events idx[0..k) of the batch, all of one session, through the
 * store: one version, one log entry. */
static at_result append_session(server_ctx *ctx, const batch *bt, const size_t *idx, size_t k, at_error *err)
{
    at_event_json *ev = calloc(k ? k : 1, sizeof *ev);
    if (!ev)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const pending *pe = &bt->ev[idx[i]];
        at_slice f[F_REDACTED];
        for (int j = 0; j < F_REDACTED; j++)
            f[j] = pe->has[j] ? (at_slice){bt->arena.data + pe->off[j], pe->len[j]} : (at_slice){NULL, 0};
        ev[i] = (at_event_json){
            .event_type = f[F_TYPE],
            .timestamp = f[F_TS],
            .event_id = f[F_ID],
            .session_id = f[F_SID],
            .parent_id = f[F_PARENT],
            .duration_ms = f[F_DUR],
            .data = f[F_DATA],
            .prev_hash = f[F_PREV],
            .redacted = pe->redacted,
        };
    }
    uint64_t version;
    const char *sid = bt->arena.data + bt->ev[idx[0]].sid_off;
    at_result r = at_store_append(ctx->store, sid, ev, k, &version, err);
    free(ev);
    if (r == AT_OK)
        event_index_mark_changed(server_index(ctx), sid);
    return r;
}

/* Orders event indices by session id, then by position: each session's
 * events become one run, in the order they came. */
static int by_session(const void *x, const void *y, void *ctx)
{
    const batch *sort_bt = ctx;
    const pending *a = &sort_bt->ev[*(const size_t *)x], *b = &sort_bt->ev[*(const size_t *)y];
    size_t n = a->sid_len < b->sid_len ? a->sid_len : b->sid_len;
    int c = memcmp(sort_bt->arena.data + a->sid_off, sort_bt->arena.data + b->sid_off, n);
    if (c == 0 && a->sid_len != b->sid_len)
        c = a->sid_len < b->sid_len ? -1 : 1;
    if (c == 0)
        c = *(const size_t *)x < *(const size_t *)y ? -1 : 1;
    return c;
}

typedef struct {
    size_t first, start, n; /* the run idx[start..start+n), its first event's position */
} run;

static int by_first(const void *x, const void *y)
{
    size_t a = ((const run *)x)->first, b = ((const run *)y)->first;
    return a < b ? -1 : a > b;
}

/* Appends every session's events of the batch: one version per session
 * (an append batch adds one log entry per session it changed), the
 * sessions in the order they first appear. Counts into *ok / *bad; the
 * first append the store refused for want of space goes to *full. */
static at_result append_all(server_ctx *ctx, const batch *bt, uint64_t *ok, uint64_t *bad, at_error *full)
{
    if (!bt->n)
        return AT_OK;
    size_t *idx = malloc(bt->n * sizeof *idx);
    run *runs = malloc(bt->n * sizeof *runs);
    if (!idx || !runs) {
        free(idx);
        free(runs);
        return AT_ERR_NOMEM;
    }
    for (size_t i = 0; i < bt->n; i++)
        idx[i] = i;
    qsort_r(idx, bt->n, sizeof *idx, by_session, (void *)bt);
    size_t nr = 0;
    for (size_t i = 0; i < bt->n; i++) {
        const pending *a = &bt->ev[idx[i]];
        const pending *p = i ? &bt->ev[idx[i - 1]] : NULL;
        if (!p || p->sid_len != a->sid_len ||
            memcmp(bt->arena.data + p->sid_off, bt->arena.data + a->sid_off, a->sid_len) != 0)
            runs[nr++] = (run){.first = idx[i], .start = i, .n = 0};
        runs[nr - 1].n++;
    }
    qsort(runs, nr, sizeof *runs, by_first);
    /* A session the store could not append to for want of memory or I/O
     * is the server's failure, not the client's lines: the first such
     * result is returned, its events in neither count. */
    at_result failed = AT_OK;
    for (size_t k = 0; k < nr; k++) {
        at_error err = {0};
        at_result r = append_session(ctx, bt, idx + runs[k].start, runs[k].n, &err);
        if (r == AT_OK)
            *ok += runs[k].n;
        else if (r == AT_ERR_NOMEM || r == AT_ERR_IO)
            failed = failed != AT_OK ? failed : r;
        else
            *bad += runs[k].n;
        if (r == AT_ERR_NO_SPACE && full->code == AT_OK)
            *full = err;
    }
    free(idx);
    free(runs);
    return failed;
}

/* The body arrives in pieces: whole lines are validated as they complete
 * (a partial one waits in `line`, at most COLLECTOR_MAX_LINE bytes; a
 * longer one is an error line, skipped to its newline), and the events
 * parsed so far are appended once they hold COLLECTOR_FLUSH bytes, so a
 * request holds a bounded amount of memory whatever its size. */
struct collector_events {
    server_ctx *ctx;
    batch bt;
    at_buf line;   /* the line in progress */
    bool skipping; /* the line in progress is too long: dropped up to its newline */
    at_buf sid;
    at_json_doc d;
    at_redact *rd;
    uint64_t accepted, errors, redacted;
    at_result r;   /* the first failure (AT_OK: none) */
    at_error full; /* the first append refused for want of space (code AT_OK: none) */
};

collector_events *collector_events_new(server_ctx *ctx, at_error *err)
{
    collector_events *ce = calloc(1, sizeof *ce);
    if (!ce) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    ce->ctx = ctx;
    at_buf_init(&ce->bt.arena, 0);
    at_buf_init(&ce->line, COLLECTOR_MAX_LINE);
    at_buf_init(&ce->sid, AT_MAX_SESSION_ID + 1);
    at_json_doc_init(&ce->d);
    if (ctx->redact && !(ce->rd = at_redact_new(err))) {
        collector_events_free(ce);
        return NULL;
    }
    return ce;
}

void collector_events_free(collector_events *ce)
{
    if (!ce)
        return;
    at_redact_free(ce->rd);
    at_json_doc_fini(&ce->d);
    at_buf_fini(&ce->sid);
    at_buf_fini(&ce->line);
    at_buf_fini(&ce->bt.arena);
    free(ce->bt.ev);
    free(ce);
}

static void flush_batch(collector_events *ce)
{
    if (ce->r == AT_OK)
        ce->r = append_all(ce->ctx, &ce->bt, &ce->accepted, &ce->errors, &ce->full);
    ce->bt.n = 0;
    at_buf_reset(&ce->bt.arena);
}

/* One whole line, its newline excluded. */
static void take_line(collector_events *ce, const char *p, size_t n)
{
    size_t a = 0, z = n;
    while (a < z && py_space(p[a]))
        a++;
    while (z > a && py_space(p[z - 1]))
        z--;
    if (a == z)
        return; /* blank lines are ignored */
    batch *bt = &ce->bt;
    if (bt->n == bt->cap) {
        size_t ncap = bt->cap ? bt->cap * 2 : 64;
        pending *nv = realloc(bt->ev, ncap * sizeof *nv);
        if (!nv) {
            ce->r = AT_ERR_NOMEM;
            return;
        }
        bt->ev = nv;
        bt->cap = ncap;
    }
    pending pe;
    line_verdict lv = parse_line(&ce->d, p + a, z - a, bt, &pe, &ce->sid, ce->rd);
    if (lv == LINE_NOMEM) {
        ce->r = AT_ERR_NOMEM;
        return;
    }
    if (lv == LINE_BAD) {
        ce->errors++;
        return;
    }
    pe.sid_off = bt->arena.len;
    pe.sid_len = ce->sid.len;
    if ((ce->r = at_buf_add(&bt->arena, ce->sid.data, ce->sid.len)) != AT_OK ||
        (ce->r = at_buf_add(&bt->arena, "", 1)) != AT_OK)
        return;
    bt->ev[bt->n++] = pe;
    ce->redacted += pe.secrets;
    if (bt->arena.len >= COLLECTOR_FLUSH)
        flush_batch(ce);
}

void collector_events_feed(collector_events *ce, const char *p, size_t n)
{
    while (n && ce->r == AT_OK) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (ce->skipping) {
            /* the rest of a line too long to keep */
        } else if (ce->line.len + k > COLLECTOR_MAX_LINE) {
            ce->skipping = true;
            ce->errors++;
            at_buf_reset(&ce->line);
        } else if (nl && ce->line.len == 0) {
            take_line(ce, p, k); /* whole in this piece: no copy */
        } else if ((ce->r = at_buf_add(&ce->line, p, k)) != AT_OK) {
            break;
        } else if (nl) {
            take_line(ce, ce->line.data, ce->line.len);
            at_buf_reset(&ce->line);
        }
        if (nl)
            ce->skipping = false;
        p += nl ? k + 1 : k;
        n -= nl ? k + 1 : k;
    }
}

void collector_events_finish(collector_events *ce, http_response *resp)
{
    if (ce->r == AT_OK && ce->line.len && !ce->skipping)
        take_line(ce, ce->line.data, ce->line.len); /* the last line needs no newline */
    at_buf_reset(&ce->line);
    flush_batch(ce);
    resp->redacted_events += ce->redacted;
    if (ce->r != AT_OK && ce->accepted) {
        /* the events appended before the failure stay: say how many */
        char extra[80];
        snprintf(extra, sizeof extra, "\"accepted\": %llu, \"errors\": %llu", (unsigned long long)ce->accepted,
                 (unsigned long long)ce->errors);
        http_response_error_extra(resp, 500, extra, "%s", at_result_str(ce->r));
        return;
    }
    if (ce->r != AT_OK) {
        http_response_error(resp, 500, "%s", at_result_str(ce->r));
        return;
    }
    if (ce->full.code != AT_OK) {
        /* A full disk is the server's state, not the lines' fault: the
         * request fails (507, as an upload does) so that the client keeps
         * its events and retries; the counts say what was stored before. */
        char extra[96];
        snprintf(extra, sizeof extra, "\"accepted\": %llu, \"errors\": %llu",
                 (unsigned long long)ce->accepted, (unsigned long long)ce->errors);
        http_response_error_extra(resp, 507, extra, "no space left on device: %s", ce->full.message);
        return;
    }
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, "{\"accepted\": %llu, \"errors\": %llu}", (unsigned long long)ce->accepted,
                                (unsigned long long)ce->errors);
    respond_buf(resp, ce->errors ? 202 : 200, &b, r);
    at_buf_fini(&b);
}

void collector_post_events(server_ctx *ctx, const char *body, size_t n, http_response *resp)
{
    at_error err = {0};
    collector_events *ce = collector_events_new(ctx, &err);
    if (!ce) {
        http_response_error(resp, 500, "%s", err.message[0] ? err.message : "out of memory");
        return;
    }
    collector_events_feed(ce, body ? body : "", body ? n : 0);
    collector_events_finish(ce, resp);
    collector_events_free(ce);
}

/* ---- POST /sessions --------------------------------------------------------------------- */

/* TraceStore._redact_meta over the metadata being written. */
typedef struct {
    server_ctx *ctx;
    http_response *resp;
} redact_meta_ctx;

static at_result redact_meta(void *ctx, at_meta *m)
{
    redact_meta_ctx *rc = ctx;
    if (!rc->ctx->redact)
        return AT_OK;
    at_redact *rd = at_redact_new(NULL);
    if (!rd)
        return AT_ERR_NOMEM;
    at_result r = at_redact_meta(rd, m);
    rc->resp->redacted_meta = r == AT_OK && at_redact_changed(rd);
    at_redact_free(rd);
    return r;
}

void collector_post_sessions(server_ctx *ctx, const char *body, size_t n, http_response *resp)
{
    at_json_doc d;
    at_meta m;
    at_buf sid, b;
    at_error err = {0};
    at_json_doc_init(&d);
    at_meta_init(&m);
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
    /* A new session is SessionMeta(**body): an unknown field is the
     * client's error; for an existing one, known fields overwrite. */
    bool exists = at_store_session_exists(ctx->store, sid.data);
    at_result r = at_meta_parse(&m, body, n, !exists, &err);
    if (r != AT_OK) {
        http_response_error(resp, 400, "%s", err.message);
        goto out;
    }
    bool created;
    redact_meta_ctx rc = {ctx, resp};
    r = at_store_meta_put(ctx->store, sid.data, &m, redact_meta, &rc, &created, &err);
    if (r != AT_OK) {
        int status = r == AT_ERR_TOO_BIG ? 413 : 500;
        if (r == AT_ERR_NO_SPACE)
            status = 507;
        http_response_error(resp, status, "cannot write session metadata: %s",
                            err.message[0] ? err.message : at_result_str(r));
        goto out;
    }
    r = at_buf_adds(&b, "{\"session_id\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, sid.data, sid.len);
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"status\": \"ok\"}");
    respond_buf(resp, 200, &b, r);
out:
    at_buf_fini(&b);
    at_buf_fini(&sid);
    at_meta_fini(&m);
    at_json_doc_fini(&d);
}
