/* test_index.c - the event index (GET /events/{id}, GET /sessions/{id}/events/{id})
 * over a temporary copy of tests/fixtures/expected: every event id of every
 * session answers its line's bytes, number, digest and prev_hash; duplicates
 * across sessions are 409; unknown ids 404; appends, rewrites, new sessions,
 * a deleted or corrupt database file are all picked up. */
#include "testlib.h"
#include "handler_stubs.h"
#include "index.h"

#include "agenttrace/json.h"
#include "agenttrace/sha256.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>

typedef struct {
    char *id;
    char *sid;
    long line;
    char *want; /* the expected 200 body */
} rec;

static rec *recs;
static size_t nrecs, caprecs;
static char root[512];

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

/* The body GET /events/{id} must give for one line. */
static char *expected_body(const char *sid, long line, const char *p, size_t n)
{
    at_json_doc d;
    at_json_doc_init(&d);
    at_error err;
    at_buf b;
    at_buf_init(&b, 0);
    uint8_t dig[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(p, n, dig);
    at_hex(dig, AT_SHA256_LEN, hex);
    int bad = at_json_parse(&d, p, n, &err) != AT_OK;
    bad |= at_buf_adds(&b, "{\"session_id\": ") != AT_OK;
    bad |= at_json_write_wtf8(&b, sid, strlen(sid)) != AT_OK;
    bad |= at_buf_printf(&b, ", \"line\": %ld, \"sha256\": \"%s\", \"prev_hash\": ", line, hex) != AT_OK;
    uint32_t ph = bad ? AT_JSON_NONE : at_json_get(&d, 0, "prev_hash");
    if (ph != AT_JSON_NONE)
        bad |= at_json_emit(&b, &d, ph, &AT_JSON_COMPACT, 0) != AT_OK;
    else
        bad |= at_buf_adds(&b, "null") != AT_OK;
    bad |= at_buf_adds(&b, ", \"event\": ") != AT_OK;
    bad |= at_buf_add(&b, p, n) != AT_OK;
    bad |= at_buf_adds(&b, "}") != AT_OK;
    at_json_doc_fini(&d);
    if (bad)
        abort();
    return at_buf_steal(&b, NULL);
}

static char *event_id_of(const char *p, size_t n)
{
    at_json_doc d;
    at_json_doc_init(&d);
    at_error err;
    char *out = NULL;
    if (at_json_parse(&d, p, n, &err) == AT_OK) {
        uint32_t i = at_json_get(&d, 0, "event_id");
        if (at_json_is(&d, i, AT_JSON_STRING)) {
            at_buf b;
            at_buf_init(&b, 0);
            if (at_json_str_decode(&d, i, &b) == AT_OK)
                out = at_buf_steal(&b, NULL);
            at_buf_fini(&b);
            if (!out)
                out = xstrdup("");
        }
    }
    at_json_doc_fini(&d);
    return out;
}

static void load_session(const char *sid)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/events.ndjson", root, sid);
    size_t len;
    char *s = t_read_file(path, &len);
    if (!s)
        return;
    long line = 0;
    for (char *p = s; p < s + len; line++) {
        char *nl = memchr(p, '\n', (size_t)(s + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(s + len - p);
        char *id = event_id_of(p, n);
        if (id) {
            if (nrecs == caprecs) {
                caprecs = caprecs ? caprecs * 2 : 1024;
                recs = realloc(recs, caprecs * sizeof *recs);
                if (!recs)
                    abort();
            }
            recs[nrecs].id = id;
            recs[nrecs].sid = xstrdup(sid);
            recs[nrecs].line = line;
            recs[nrecs].want = expected_body(sid, line, p, n);
            nrecs++;
        }
        p += n + 1;
    }
    free(s);
}

static void free_recs(void)
{
    for (size_t k = 0; k < nrecs; k++) {
        free(recs[k].id);
        free(recs[k].sid);
        free(recs[k].want);
    }
    free(recs);
    recs = NULL;
    nrecs = caprecs = 0;
}

static void load_all(void)
{
    free_recs();
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "objects") != 0)
            load_session(e->d_name);
    if (d)
        closedir(d);
}

/* How many different sessions hold rec k's id, and is k the first line of its session? */
static void id_stats(size_t k, int *nsessions, bool *first_in_session)
{
    *nsessions = 0;
    *first_in_session = true;
    const char *seen[64];
    for (size_t j = 0; j < nrecs; j++) {
        if (strcmp(recs[j].id, recs[k].id) != 0)
            continue;
        if (strcmp(recs[j].sid, recs[k].sid) == 0 && recs[j].line < recs[k].line)
            *first_in_session = false;
        bool dup = false;
        for (int i = 0; i < *nsessions; i++)
            dup |= strcmp(seen[i], recs[j].sid) == 0;
        if (!dup && *nsessions < 64)
            seen[(*nsessions)++] = recs[j].sid;
    }
}

static int lookup(server_ctx *ctx, const char *id, const char *session, at_buf *body)
{
    http_response r;
    http_response_init(&r);
    index_lookup(ctx, id, session, &r);
    int st = r.status;
    if (body) {
        at_buf_reset(body);
        if (at_buf_add(body, r.body.data ? r.body.data : "", r.body.len) != AT_OK)
            abort();
    }
    http_response_fini(&r);
    return st;
}

/* Every id of every session answers the right line (or 409 when shared). */
static void check_all(server_ctx *ctx, const char *what)
{
    at_buf body;
    at_buf_init(&body, 0);
    size_t ok = 0, conflicts = 0;
    for (size_t k = 0; k < nrecs; k++) {
        int ns;
        bool first;
        id_stats(k, &ns, &first);
        if (!first)
            continue;
        int st = lookup(ctx, recs[k].id, NULL, &body);
        if (ns == 1) {
            CHECK(st == 200, "%s: %s -> %d %s", what, recs[k].id, st, body.data);
            if (st == 200) {
                CHECK_BYTES(body.data, body.len, recs[k].want, strlen(recs[k].want), what);
                ok++;
            }
        } else {
            CHECK(st == 409, "%s: shared %s -> %d", what, recs[k].id, st);
            CHECK(strstr(body.data, recs[k].sid) != NULL, "409 lists %s", recs[k].sid);
            conflicts++;
        }
        /* the per-session form always answers its first line */
        st = lookup(ctx, recs[k].id, recs[k].sid, &body);
        CHECK(st == 200, "%s: %s in %s -> %d", what, recs[k].id, recs[k].sid, st);
        if (st == 200)
            CHECK_BYTES(body.data, body.len, recs[k].want, strlen(recs[k].want), what);
    }
    CHECK(ok > 500, "%s: only %zu events checked", what, ok);
    printf("%s: %zu unique ids answered, %zu conflicts\n", what, ok, conflicts);
    at_buf_fini(&body);
}

static void write_file(const char *rel, const char *data, bool append)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, append ? "ab" : "wb");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return;
    fputs(data, f);
    fclose(f);
}

static void make_session(const char *sid)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, sid);
    mkdir(path, 0755);
    char meta[512];
    snprintf(meta, sizeof meta, "{\n  \"session_id\": \"%s\",\n  \"attribution\": {}\n}", sid);
    snprintf(path, sizeof path, "%s/meta.json", sid);
    write_file(path, meta, false);
}

static char *line_for(const char *sid, const char *eid, const char *prev)
{
    static char buf[1024];
    if (prev)
        snprintf(buf, sizeof buf,
                 "{\"event_type\":\"decision\",\"timestamp\":1.5,\"event_id\":\"%s\",\"session_id\":"
                 "\"%s\",\"data\":{\"x\":\"\\u00e9\"},\"prev_hash\":\"%s\"}\n",
                 eid, sid, prev);
    else
        snprintf(buf, sizeof buf,
                 "{\"event_type\":\"decision\",\"timestamp\":1.5,\"event_id\":\"%s\",\"session_id\":"
                 "\"%s\",\"data\":{}}\n",
                 eid, sid);
    return buf;
}

typedef struct {
    server_ctx *ctx;
    size_t start;
    int failures;
} thr;

static void *worker(void *arg)
{
    thr *t = arg;
    at_buf body;
    at_buf_init(&body, 0);
    for (size_t i = 0; i < 2000; i++) {
        size_t k = (t->start + i * 7) % nrecs;
        int st = lookup(t->ctx, recs[k].id, recs[k].sid, &body);
        if (st != 200)
            t->failures++;
    }
    at_buf_fini(&body);
    return NULL;
}

int main(void)
{
    char tmpl[] = "/tmp/test_index.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
    snprintf(root, sizeof root, "%s/store", tmpl);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -R '%s' '%s'", t_src("tests/fixtures/expected"), root);
    CHECK(system(cmd) == 0, "copy fixtures");
    load_all();
    CHECK(nrecs > 1000, "fixture events: %zu", nrecs);

    at_error err;
    event_index *ix = event_index_open(root, &err);
    CHECK(ix != NULL, "open: %s", ix ? "" : err.message);
    if (!ix)
        return t_done("test_index");
    server_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.root = root;
    ctx.index = ix;
    check_all(&ctx, "fresh index");

    int64_t ns = 0, ne = 0;
    CHECK(event_index_counts(ix, &ns, &ne, &err) == AT_OK, "counts");
    CHECK(ns == 9 && ne == (int64_t)nrecs, "counts %lld %lld (want 9 %zu)", (long long)ns, (long long)ne,
          nrecs);

    /* unknown ids and sessions */
    at_buf body;
    at_buf_init(&body, 0);
    CHECK(lookup(&ctx, "no-such-event", NULL, &body) == 404, "unknown id");
    const char *want404 = "{\"error\": \"event not found: no-such-event\"}";
    CHECK_BYTES(body.data, body.len, want404, strlen(want404), "404 body");
    CHECK(lookup(&ctx, recs[0].id, "no-such-session", &body) == 404, "unknown session");
    CHECK(lookup(&ctx, recs[0].id, "../x", &body) == 400, "bad session id");
    CHECK(lookup(&ctx, "no-such-event", recs[0].sid, &body) == 404, "not in that session");

    /* a new session appears, holding a fresh id and one of recs[0]'s */
    make_session("zz-new-session");
    char line[2048];
    snprintf(line, sizeof line, "%s", line_for("zz-new-session", "fresh0000001", NULL));
    write_file("zz-new-session/events.ndjson", line, false);
    write_file("zz-new-session/events.ndjson", line_for("zz-new-session", recs[0].id, NULL), true);
    CHECK(lookup(&ctx, "fresh0000001", NULL, &body) == 200, "new session found: %s", body.data);
    CHECK(strstr(body.data, "\"line\": 0") && strstr(body.data, "\"prev_hash\": null"), "%s", body.data);
    CHECK(lookup(&ctx, recs[0].id, NULL, &body) == 409, "shared id -> 409: %s", body.data);
    CHECK(strstr(body.data, "\"sessions\": [") && strstr(body.data, "zz-new-session") &&
              strstr(body.data, recs[0].sid),
          "409 body: %s", body.data);
    CHECK(lookup(&ctx, recs[0].id, "zz-new-session", &body) == 200, "per-session form");
    CHECK(strstr(body.data, "\"line\": 1"), "%s", body.data);

    /* an append is picked up (miss path) */
    write_file("zz-new-session/events.ndjson",
               line_for("zz-new-session", "appended0001",
                        "0000000000000000000000000000000000000000000000000000000000000000"),
               true);
    CHECK(lookup(&ctx, "appended0001", NULL, &body) == 200, "append found: %s", body.data);
    CHECK(strstr(body.data, "\"line\": 2") && strstr(body.data, "\"prev_hash\": \"0000"), "%s", body.data);

    /* a rewrite moves lines (hit path: stale stat, re-index, right answer) */
    snprintf(line, sizeof line, "%s", line_for("zz-new-session", "inserted0001", NULL));
    char *old = NULL;
    {
        char path[1024];
        snprintf(path, sizeof path, "%s/zz-new-session/events.ndjson", root);
        old = t_read_file(path, NULL);
    }
    write_file("zz-new-session/events.ndjson", line, false);
    write_file("zz-new-session/events.ndjson", old ? old : "", true);
    free(old);
    CHECK(lookup(&ctx, "fresh0000001", NULL, &body) == 200, "after rewrite: %s", body.data);
    CHECK(strstr(body.data, "\"line\": 1"), "moved line: %s", body.data);

    /* the session disappears: its ids go with it */
    snprintf(cmd, sizeof cmd, "rm -rf '%s/zz-new-session'", root);
    CHECK(system(cmd) == 0, "rm");
    CHECK(lookup(&ctx, "fresh0000001", NULL, &body) == 404, "removed session: %s", body.data);
    CHECK(lookup(&ctx, recs[0].id, NULL, &body) == 200, "no more conflict: %s", body.data);

    /* refresh after a write */
    make_session("zz-refresh");
    write_file("zz-refresh/events.ndjson", line_for("zz-refresh", "refreshed001", NULL), false);
    event_index_refresh_session(ix, "zz-refresh");
    CHECK(event_index_counts(ix, &ns, &ne, &err) == AT_OK && ns == 10, "refresh: %lld sessions",
          (long long)ns);

    /* concurrent readers */
    load_all();
    pthread_t th[4];
    thr ts[4];
    for (int k = 0; k < 4; k++) {
        ts[k] = (thr){&ctx, (size_t)k * 101, 0};
        pthread_create(&th[k], NULL, worker, &ts[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        CHECK(ts[k].failures == 0, "thread %d: %d failures", k, ts[k].failures);
    }
    event_index_close(ix);

    /* the database is deleted: rebuilt on open */
    char dbpath[1024];
    snprintf(dbpath, sizeof dbpath, "%s/.agent-traced/index.sqlite", root);
    CHECK(unlink(dbpath) == 0, "unlink db");
    ix = event_index_open(root, &err);
    CHECK(ix != NULL, "reopen after delete");
    ctx.index = ix;
    check_all(&ctx, "rebuilt after delete");
    event_index_close(ix);

    /* the database is garbage: rebuilt on open */
    snprintf(cmd, sizeof cmd, "rm -f '%s'-wal '%s'-shm", dbpath, dbpath);
    CHECK(system(cmd) == 0, "rm wal");
    {
        FILE *f = fopen(dbpath, "wb");
        CHECK(f != NULL, "open db");
        if (f) {
            for (int k = 0; k < 1000; k++)
                fputs("this is not a database ", f);
            fclose(f);
        }
    }
    ix = event_index_open(root, &err);
    CHECK(ix != NULL, "reopen after corruption: %s", ix ? "" : err.message);
    ctx.index = ix;
    if (ix)
        check_all(&ctx, "rebuilt after corruption");

    /* explicit rebuild */
    if (ix) {
        CHECK(event_index_rebuild(ix, &err) == AT_OK, "rebuild");
        CHECK(event_index_counts(ix, &ns, &ne, &err) == AT_OK && ns == 10 && ne == (int64_t)nrecs,
              "counts after rebuild %lld %lld", (long long)ns, (long long)ne);
        CHECK(lookup(&ctx, "refreshed001", NULL, &body) == 200, "after rebuild");
    }
    event_index_close(ix);

    /* no index: 503 */
    ctx.index = NULL;
    CHECK(lookup(&ctx, "x", NULL, &body) == 503, "no index");
    at_buf_fini(&body);
    free_recs();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpl);
    return t_done("test_index");
}
