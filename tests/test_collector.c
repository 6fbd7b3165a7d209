/* test_collector.c - the collector handlers called directly (no HTTP) on a
 * temporary storage directory holding imported fixtures: health, listing
 * order, lookups and prefixes, events by fd, POST /events (exact bytes,
 * chain, copy-on-write of imported objects, bad lines, foreign writers,
 * concurrent appends), POST /sessions. */
#include "collector.h"
#include "http.h"
#include "sessions.h"

#include "agenttrace/importer.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];
static server_ctx ctx;

/* ---- helpers ----------------------------------------------------------------- */

/* Imports a fixture transcript the way `agent-traced import` does; returns
 * the malloc'd session id or NULL. */
static char *import_fixture(at_store *store, const char *rel)
{
    size_t n;
    char *data = t_read_file(t_src(rel), &n);
    if (!data)
        return NULL;
    at_error err = {0};
    at_stage st = {-1, NULL};
    at_import_result res;
    at_import *im = NULL;
    char *sid = NULL, tmpdir[PATH_MAX];
    memset(&res, 0, sizeof res);
    if (at_store_stage(store, &st, &err) != AT_OK)
        goto out;
    snprintf(tmpdir, sizeof tmpdir, "%s/.agent-traced/tmp", root);
    at_import_options o = {.source = rel, .out_fd = st.fd, .tmp_dir = tmpdir};
    if (!(im = at_import_new(&o, &err)) || at_import_feed(im, data, n, &err) != AT_OK ||
        at_import_finish(im, &res, &err) != AT_OK) {
        at_stage_discard(&st);
        goto out;
    }
    at_commit_info info;
    if (at_store_commit_import(store, &st, &res, &info, &err) == AT_OK)
        sid = strdup(res.session_id);
out:
    if (!sid)
        fprintf(stderr, "import %s: %s\n", rel, err.message);
    at_import_result_fini(&res);
    at_import_free(im);
    free(data);
    return sid;
}

static void path_of(char *out, const char *sid, const char *file)
{
    snprintf(out, PATH_MAX, "%s/%s/%s", root, sid, file);
}

static char *read_session_file(const char *sid, const char *file, size_t *n)
{
    char p[PATH_MAX];
    path_of(p, sid, file);
    return t_read_file(p, n);
}

static bool exists(const char *sid, const char *file)
{
    char p[PATH_MAX];
    struct stat sb;
    if (file)
        path_of(p, sid, file);
    else
        snprintf(p, sizeof p, "%s/%s", root, sid);
    return stat(p, &sb) == 0;
}

#define BODY_IS(resp, want)                                                                                  \
    CHECK_BYTES((resp).body.data ? (resp).body.data : "", (resp).body.len, (want), strlen(want), "body")

static void post_events(const char *body, http_response *r)
{
    http_response_init(r);
    collector_post_events(&ctx, body, strlen(body), r);
}

static void post_sessions(const char *body, http_response *r)
{
    http_response_init(r);
    collector_post_sessions(&ctx, body, strlen(body), r);
}

/* Checks the strict chain of an events.ndjson text: line 0 has no
 * prev_hash, each later line's equals the SHA-256 of the previous one.
 * Returns the number of lines, or -1 (after a failed CHECK) if broken. */
static long chain_check(const char *text, size_t n, const char *what)
{
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf prev;
    at_buf_init(&prev, 0);
    uint8_t h[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    long lines = 0, bad = -1;
    for (size_t pos = 0; pos < n;) {
        const char *nl = memchr(text + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (!nl) {
            bad = lines; /* every line must end with "\n" */
            break;
        }
        if (at_json_parse(&d, text + pos, end - pos, NULL) != AT_OK) {
            bad = lines;
            break;
        }
        uint32_t v = at_json_get(&d, 0, "prev_hash");
        at_buf_reset(&prev);
        if (v != AT_JSON_NONE && at_json_str_decode(&d, v, &prev) != AT_OK) {
            bad = lines;
            break;
        }
        if (lines == 0 ? v != AT_JSON_NONE : (prev.len != 64 || strcmp(prev.data, hex) != 0)) {
            bad = lines;
            break;
        }
        at_sha256_oneshot(text + pos, end - pos, h);
        at_hex(h, AT_SHA256_LEN, hex);
        lines++;
        pos = end + 1;
    }
    at_buf_fini(&prev);
    at_json_doc_fini(&d);
    CHECK(bad < 0, "%s: chain broken at line %ld", what, bad);
    return bad < 0 ? lines : -1;
}

static long session_chain(const char *sid)
{
    size_t n;
    char *s = read_session_file(sid, "events.ndjson", &n);
    long k = s ? chain_check(s, n, sid) : -1;
    free(s);
    return k;
}

static void file_sha(const char *path, char hex[AT_SHA256_HEX])
{
    size_t n;
    char *s = t_read_file(path, &n);
    uint8_t h[AT_SHA256_LEN];
    at_sha256_oneshot(s ? s : "", s ? n : 0, h);
    at_hex(h, AT_SHA256_LEN, hex);
    free(s);
}

/* The session ids of a GET /sessions body, in order, comma-joined. */
static void listing_ids(const http_response *r, char *out, size_t len)
{
    at_json_doc d;
    at_buf b;
    at_json_doc_init(&d);
    at_buf_init(&b, 0);
    out[0] = 0;
    if (at_json_parse(&d, r->body.data, r->body.len, NULL) == AT_OK && at_json_is(&d, 0, AT_JSON_ARRAY)) {
        for (uint32_t i = at_json_first(&d, 0); i != AT_JSON_NONE; i = at_json_next(&d, 0, i)) {
            at_buf_reset(&b);
            if (at_json_str_decode(&d, at_json_get(&d, i, "session_id"), &b) != AT_OK)
                break;
            size_t k = strlen(out);
            snprintf(out + k, len - k, "%s%s", k ? "," : "", b.data ? b.data : "");
        }
    }
    at_buf_fini(&b);
    at_json_doc_fini(&d);
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_lookup(const char *imp1, const char *imp2)
{
    http_response r;

    http_response_init(&r);
    collector_health(&ctx, &r);
    CHECK(r.status == 200, "health status %d", r.status);
    BODY_IS(r, "{\"status\": \"ok\", \"sessions\": 2}");
    http_response_fini(&r);

    /* get: the meta object, json.dumps(meta.to_dict()) */
    at_meta m;
    at_meta_init(&m);
    at_buf want;
    at_buf_init(&want, 0);
    char p[PATH_MAX];
    path_of(p, imp1, "meta.json");
    CHECK(at_meta_load(&m, p, NULL) == AT_OK && at_meta_write(&m, &want, &AT_JSON_DEFAULT) == AT_OK,
          "load meta");
    http_response_init(&r);
    collector_get_session(&ctx, imp1, &r);
    CHECK(r.status == 200, "get status %d", r.status);
    CHECK_BYTES(r.body.data, r.body.len, want.data, want.len, "get meta");
    http_response_fini(&r);

    /* a unique prefix resolves */
    char pre[9];
    memcpy(pre, imp1, 8);
    pre[8] = 0;
    if (strncmp(imp2, pre, 8) != 0) {
        http_response_init(&r);
        collector_get_session(&ctx, pre, &r);
        CHECK(r.status == 200, "prefix status %d", r.status);
        CHECK_BYTES(r.body.data, r.body.len, want.data, want.len, "prefix meta");
        http_response_fini(&r);
        char *sid = NULL;
        http_response_init(&r);
        CHECK(sessions_resolve(&ctx, pre, &sid, &r) == 200 && sid && strcmp(sid, imp1) == 0,
              "resolve prefix");
        free(sid);
        http_response_fini(&r);
    }
    at_buf_fini(&want);
    at_meta_fini(&m);

    http_response_init(&r);
    collector_get_session(&ctx, "nope", &r);
    CHECK(r.status == 404, "404 status %d", r.status);
    BODY_IS(r, "{\"error\": \"session not found: nope\"}");
    http_response_fini(&r);

    /* ids that must never reach the file system */
    char longid[300];
    memset(longid, 'a', 256);
    longid[256] = 0;
    const char *bad[] = {"../etc", "a/b", "a\\b", ".agent-traced", ".", "..", longid, ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        http_response_init(&r);
        collector_get_session(&ctx, bad[i], &r);
        CHECK(r.status == 400, "bad id %zu status %d", i, r.status);
        http_response_fini(&r);
        http_response_init(&r);
        collector_get_events(&ctx, bad[i], 0, &r);
        CHECK(r.status == 400 && !r.stream.read, "bad id events %zu status %d", i, r.status);
        http_response_fini(&r);
    }
    CHECK(!at_session_id_ok("a\0b", 3), "NUL inside");
    CHECK(at_session_id_ok(longid, 255), "255 bytes ok");
    CHECK(!at_session_id_ok(longid, 256), "256 bytes");
    const char *odd[] = {" ", "\t\n", "a\x07", "a\x7f", "a\xc2\x85", "a\xed\xa0\x80", "\xff", "a\xc3"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
        CHECK(!at_session_id_ok(odd[i], strlen(odd[i])), "odd id %zu refused", i);
    const char *fine[] = {"a b", "\xc3\xa9t\xc3\xa9", "x\xe2\x80\xa8y", "\xf0\x9f\x98\x80", "\xc2\xa0x"};
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++)
        CHECK(at_session_id_ok(fine[i], strlen(fine[i])), "id %zu accepted", i);

    /* not sessions: objects/ (a reserved name: no session id), dot dirs,
     * dirs without meta.json */
    http_response_init(&r);
    collector_get_session(&ctx, "objects", &r);
    CHECK(r.status == 400, "objects status %d", r.status);
    http_response_fini(&r);
    snprintf(p, sizeof p, "%s/nometa", root);
    CHECK(mkdir(p, 0755) == 0, "mkdir nometa");
    http_response_init(&r);
    collector_get_session(&ctx, "nometa", &r);
    CHECK(r.status == 404, "nometa status %d", r.status);
    http_response_fini(&r);

    /* events streamed from the version's object, exactly the file */
    size_t n;
    char *ev = read_session_file(imp2, "events.ndjson", &n);
    http_response_init(&r);
    collector_get_events(&ctx, imp2, 0, &r);
    CHECK(r.status == 200 && r.stream.read && r.stream.size == n, "events status %d", r.status);
    CHECK(r.content_type && strcmp(r.content_type, "application/x-ndjson") == 0, "content type");
    if (r.stream.read && ev) {
        char *got = malloc(n + 1);
        size_t have = 0;
        ssize_t k;
        while (have < n && (k = r.stream.read(r.stream.ctx, have, got + have, n - have)) > 0)
            have += (size_t)k;
        CHECK(have == n && memcmp(got, ev, n) == 0, "events bytes");
        free(got);
    }
    free(ev);
    http_response_fini(&r);
    http_response_init(&r);
    collector_get_events(&ctx, "nope", 0, &r);
    CHECK(r.status == 404 && !r.stream.read, "events 404 %d", r.status);
    BODY_IS(r, "{\"error\": \"session not found: nope\"}");
    http_response_fini(&r);
}

static void test_post_sessions(void)
{
    http_response r;
    size_t n;
    char *s;

    post_sessions("{\"session_id\": \"s-a\", \"started_at\": 100, \"agent_name\": \"caf\\u00e9\"}", &r);
    CHECK(r.status == 200, "new status %d", r.status);
    BODY_IS(r, "{\"session_id\": \"s-a\", \"status\": \"ok\"}");
    http_response_fini(&r);
    s = read_session_file("s-a", "meta.json", &n);
    const char *want_a = "{\n  \"session_id\": \"s-a\",\n  \"started_at\": 100,\n  \"agent_name\": "
                         "\"caf\\u00e9\",\n  \"attribution\": {}\n}";
    CHECK(s && strcmp(s, want_a) == 0, "new meta.json: %s", s ? s : "(none)");
    free(s);

    post_sessions("{\"session_id\": \"s-b\", \"started_at\": 100.0}", &r);
    CHECK(r.status == 200, "s-b %d", r.status);
    http_response_fini(&r);
    post_sessions("{\"session_id\": \"s-c\", \"started_at\": 200.5, \"tool_calls\": 3}", &r);
    CHECK(r.status == 200, "s-c %d", r.status);
    http_response_fini(&r);

    /* existing: known fields overwrite, others stay, unknown ignored */
    post_sessions("{\"session_id\": \"s-c\", \"tool_calls\": 7, \"ended_at\": 300.25, \"bogus\": 1}", &r);
    CHECK(r.status == 200, "update %d", r.status);
    BODY_IS(r, "{\"session_id\": \"s-c\", \"status\": \"ok\"}");
    http_response_fini(&r);
    s = read_session_file("s-c", "meta.json", &n);
    const char *want_c = "{\n  \"session_id\": \"s-c\",\n  \"started_at\": 200.5,\n  \"ended_at\": 300.25,\n"
                         "  \"tool_calls\": 7,\n  \"attribution\": {}\n}";
    CHECK(s && strcmp(s, want_c) == 0, "updated meta.json: %s", s ? s : "(none)");
    free(s);

    /* new with an unknown field: 400, nothing on disk */
    post_sessions("{\"session_id\": \"s-x\", \"bogus\": 1}", &r);
    CHECK(r.status == 400, "unknown field %d", r.status);
    BODY_IS(r, "{\"error\": \"unknown session field: bogus\"}");
    http_response_fini(&r);
    CHECK(!exists("s-x", NULL), "no dir for s-x");

    post_sessions("{\"started_at\": 1}", &r);
    CHECK(r.status == 400, "no id %d", r.status);
    BODY_IS(r, "{\"error\": \"session_id required\"}");
    http_response_fini(&r);
    post_sessions("{\"session_id\": \"\"}", &r);
    CHECK(r.status == 400, "empty id %d", r.status);
    BODY_IS(r, "{\"error\": \"session_id required\"}");
    http_response_fini(&r);
    post_sessions("{\"session_id\": ", &r);
    CHECK(r.status == 400, "bad json %d", r.status);
    http_response_fini(&r);
    post_sessions("[1, 2]", &r);
    CHECK(r.status == 400, "array %d", r.status);
    http_response_fini(&r);
    post_sessions("{\"session_id\": \"../evil\"}", &r);
    CHECK(r.status == 400, "traversal %d", r.status);
    http_response_fini(&r);
    post_sessions("{\"session_id\": \"objects\"}", &r);
    CHECK(r.status == 400, "objects %d", r.status);
    http_response_fini(&r);
    post_sessions("{\"session_id\": 5}", &r);
    CHECK(r.status == 400, "numeric id %d", r.status);
    http_response_fini(&r);
    char big[600];
    snprintf(big, sizeof big, "{\"session_id\": \"%0300d\"}", 0);
    post_sessions(big, &r);
    CHECK(r.status == 400, "long id %d", r.status);
    http_response_fini(&r);
    snprintf(big, sizeof big, "{\"event_type\": \"decision\", \"session_id\": \"%0300d\"}", 0);
    post_events(big, &r);
    CHECK(r.status == 202, "long id event %d", r.status);
    BODY_IS(r, "{\"accepted\": 0, \"errors\": 1}");
    http_response_fini(&r);

    /* events of a session without events.ndjson: empty */
    http_response_init(&r);
    collector_get_events(&ctx, "s-a", 0, &r);
    CHECK(r.status == 200 && r.body.len == 0 && (!r.stream.read || r.stream.size == 0), "empty events %d",
          r.status);
    http_response_fini(&r);
}

static void test_listing(const char *imp1, const char *imp2)
{
    http_response r;
    char ids[4096], want[4096];

    /* ambiguous prefix: 404 */
    post_sessions("{\"session_id\": \"dup-1\"}", &r);
    http_response_fini(&r);
    post_sessions("{\"session_id\": \"dup-2\"}", &r);
    http_response_fini(&r);
    http_response_init(&r);
    collector_get_session(&ctx, "dup-", &r);
    CHECK(r.status == 404, "ambiguous %d", r.status);
    BODY_IS(r, "{\"error\": \"session not found: dup-\"}");
    http_response_fini(&r);
    http_response_init(&r);
    collector_get_session(&ctx, "dup-2", &r);
    CHECK(r.status == 200, "exact among prefixes %d", r.status);
    http_response_fini(&r);

    /* a broken meta.json is skipped by the listing */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/broken", root);
    CHECK(mkdir(p, 0755) == 0, "mkdir broken");
    snprintf(p, sizeof p, "%s/broken/meta.json", root);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("{\"session_id\": ", f);
        fclose(f);
    }

    /* newest first: the imports (2025/2026) first, then s-c (200.5),
     * s-b and s-a (100, id descending), then dup-2, dup-1 (no started_at) */
    at_meta m1, m2;
    at_meta_init(&m1);
    at_meta_init(&m2);
    path_of(p, imp1, "meta.json");
    CHECK(at_meta_load(&m1, p, NULL) == AT_OK, "m1");
    path_of(p, imp2, "meta.json");
    CHECK(at_meta_load(&m2, p, NULL) == AT_OK, "m2");
    double t1 = at_meta_get_number(&m1, AT_META_STARTED_AT, 0),
           t2 = at_meta_get_number(&m2, AT_META_STARTED_AT, 0);
    bool first1 = t1 > t2 || (t1 == t2 && strcmp(imp1, imp2) > 0);
    snprintf(want, sizeof want, "%s,%s,s-c,s-b,s-a,dup-2,dup-1", first1 ? imp1 : imp2, first1 ? imp2 : imp1);
    at_meta_fini(&m1);
    at_meta_fini(&m2);

    http_response_init(&r);
    collector_list_sessions(&ctx, &r);
    CHECK(r.status == 200, "list %d", r.status);
    listing_ids(&r, ids, sizeof ids);
    CHECK(strcmp(ids, want) == 0, "order: got %s want %s", ids, want);
    /* items joined by ", " with each meta as json.dumps writes it */
    CHECK(r.body.len > 2 && r.body.data[0] == '[' && r.body.data[r.body.len - 1] == ']', "array");
    CHECK(strstr(r.body.data, "{\"session_id\": \"s-b\", \"started_at\": 100.0, \"attribution\": {}}, "
                              "{\"session_id\": \"s-a\", \"started_at\": 100, \"agent_name\": "
                              "\"caf\\u00e9\", \"attribution\": {}}") != NULL,
          "list items: %s", r.body.data);
    http_response_fini(&r);

    /* health counts the directories holding a meta.json (broken included) */
    http_response_init(&r);
    collector_health(&ctx, &r);
    BODY_IS(r, "{\"status\": \"ok\", \"sessions\": 8}");
    http_response_fini(&r);
}

static void test_post_events_new(void)
{
    http_response r;
    size_t n;
    post_events("", &r);
    CHECK(r.status == 200, "empty %d", r.status);
    BODY_IS(r, "{\"accepted\": 0, \"errors\": 0}");
    http_response_fini(&r);
    post_events("\n  \n\r\n", &r);
    CHECK(r.status == 200, "blank %d", r.status);
    BODY_IS(r, "{\"accepted\": 0, \"errors\": 0}");
    http_response_fini(&r);

    const char *body =
        "{\"event_type\": \"tool_call\", \"timestamp\": 1.50, \"event_id\": \"e1\", \"session_id\": \"new-1\", "
        "\"data\": {\"b\": 1, \"a\": [1, 2.50, 1e5, \"\\u00e9/\\ud83c\\udf89\"], \"n\": null}, \"parent_id\": \"\", "
        "\"duration_ms\": null, \"redacted\": false}\n"
        "\n"
        "{\"session_id\": \"new-1\", \"event_type\": \"decision\"}\r\n"
        "{\"event_type\": \"error\", \"timestamp\": 3, \"event_id\": \"e3\", \"session_id\": \"new-1\", "
        "\"duration_ms\": 12.0, \"prev_hash\": \"given\", \"redacted\": true, \"data\": {}}";
    post_events(body, &r);
    CHECK(r.status == 200, "post %d", r.status);
    BODY_IS(r, "{\"accepted\": 3, \"errors\": 0}");
    http_response_fini(&r);

    char *meta = read_session_file("new-1", "meta.json", &n);
    CHECK(meta && strcmp(meta, "{\n  \"session_id\": \"new-1\",\n  \"attribution\": {}\n}") == 0,
          "fresh meta: %s", meta ? meta : "(none)");
    free(meta);

    char *ev = read_session_file("new-1", "events.ndjson", &n);
    CHECK(ev != NULL, "events written");
    if (!ev)
        return;
    const char *l1 =
        "{\"event_type\":\"tool_call\",\"timestamp\":1.5,\"event_id\":\"e1\",\"session_id\":\"new-1\","
        "\"data\":{\"b\":1,\"a\":[1,2.5,100000.0,\"\\u00e9/\\ud83c\\udf89\"],\"n\":null}}";
    size_t k1 = strlen(l1);
    CHECK(n > k1 && memcmp(ev, l1, k1) == 0 && ev[k1] == '\n', "line 1: %.*s", (int)(n < k1 ? n : k1), ev);
    uint8_t h[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(l1, k1, h);
    at_hex(h, AT_SHA256_LEN, hex);
    /* line 2: generated timestamp and 12-hex event_id, prev_hash of line 1 */
    const char *l2 = ev + k1 + 1;
    const char *pre2 = "{\"event_type\":\"decision\",\"timestamp\":";
    CHECK(strncmp(l2, pre2, strlen(pre2)) == 0, "line 2 start: %.80s", l2);
    const char *idp = strstr(l2, ",\"event_id\":\"");
    CHECK(idp != NULL, "line 2 event_id");
    if (idp) {
        double ts = strtod(l2 + strlen(pre2), NULL);
        CHECK(ts > 1.7e9 && ts < 4e9, "generated timestamp %f", ts);
        const char *id = idp + 13;
        bool hex12 = true;
        for (int i = 0; i < 12; i++)
            hex12 &= (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
        CHECK(hex12 && id[12] == '"', "12 hex event id: %.14s", id);
        char tail[256];
        snprintf(tail, sizeof tail, "\",\"session_id\":\"new-1\",\"data\":{},\"prev_hash\":\"%s\"}\n", hex);
        CHECK(strncmp(id + 12, tail, strlen(tail)) == 0, "line 2 tail: %.120s", id + 12);
    }
    /* line 3: a given prev_hash is kept as is */
    const char *l3 = strchr(l2, '\n');
    const char *want3 =
        "\n{\"event_type\":\"error\",\"timestamp\":3,\"event_id\":\"e3\",\"session_id\":\"new-1\","
        "\"duration_ms\":12.0,\"data\":{},\"prev_hash\":\"given\",\"redacted\":true}\n";
    CHECK(l3 && strcmp(l3, want3) == 0, "line 3: %s", l3 ? l3 : "(none)");
    free(ev);

    /* more events: chained onto the last line */
    post_events("{\"event_type\": \"session_end\", \"session_id\": \"new-1\", \"event_id\": \"e4\"}", &r);
    CHECK(r.status == 200, "post 2 %d", r.status);
    http_response_fini(&r);
    ev = read_session_file("new-1", "events.ndjson", &n);
    if (ev) {
        const char *last = ev + n - 1;
        while (last > ev && last[-1] != '\n')
            last--;
        const char *prev = last - 1;
        while (prev > ev && prev[-1] != '\n')
            prev--;
        at_sha256_oneshot(prev, (size_t)(last - 1 - prev), h);
        at_hex(h, AT_SHA256_LEN, hex);
        char want[128];
        snprintf(want, sizeof want, "\"prev_hash\":\"%s\"}\n", hex);
        CHECK(n > strlen(want) && strcmp(ev + n - strlen(want), want) == 0, "line 4 prev_hash");
    }
    free(ev);
}

/* TraceEvent.to_dict drops None and "": an explicit null or "" timestamp
 * or data is left out, while an absent one gets its default. */
static void test_post_events_nulls(void)
{
    http_response r;
    size_t n;
    post_events("{\"event_type\": \"error\", \"timestamp\": null, \"event_id\": \"n1\", "
                "\"session_id\": \"nulls-1\", \"data\": null}\n"
                "{\"event_type\": \"error\", \"timestamp\": \"\", \"event_id\": \"n2\", "
                "\"session_id\": \"nulls-1\", \"data\": \"\"}\n",
                &r);
    CHECK(r.status == 200, "nulls post %d", r.status);
    BODY_IS(r, "{\"accepted\": 2, \"errors\": 0}");
    http_response_fini(&r);
    char *ev = read_session_file("nulls-1", "events.ndjson", &n);
    const char *l1 = "{\"event_type\":\"error\",\"event_id\":\"n1\",\"session_id\":\"nulls-1\"}\n";
    size_t k1 = strlen(l1);
    CHECK(ev && n > k1 && memcmp(ev, l1, k1) == 0, "null timestamp and data left out: %s",
          ev ? ev : "(none)");
    const char *l2 = "{\"event_type\":\"error\",\"event_id\":\"n2\",\"session_id\":\"nulls-1\","
                     "\"prev_hash\":\"";
    CHECK(ev && n > k1 + strlen(l2) && memcmp(ev + k1, l2, strlen(l2)) == 0,
          "empty timestamp and data left out: %s", ev ? ev + (n > k1 ? k1 : 0) : "(none)");
    free(ev);
}

static void test_bad_lines(void)
{
    http_response r;
    const char *body = "{\"event_type\": \"tool_call\", \"session_id\": \"mix\", \"event_id\": \"g1\"}\n"
                       "not json\n"
                       "{\"event_type\": \"nope\", \"session_id\": \"mix\"}\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": \"mix\", \"extra\": 1}\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": \"\"}\n"
                       "{\"event_type\": \"tool_call\"}\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": \"../up\"}\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": \".hidden\"}\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": 7}\n"
                       "[1, 2]\n"
                       "{\"event_type\": \"tool_call\", \"session_id\": \"mix\", \"data\": \"\xff\"}\n"
                       "{\"event_type\": \"tool_result\", \"session_id\": \"mix\", \"event_id\": \"g2\"}\n";
    post_events(body, &r);
    CHECK(r.status == 202, "mixed %d", r.status);
    BODY_IS(r, "{\"accepted\": 2, \"errors\": 10}");
    http_response_fini(&r);
    CHECK(session_chain("mix") == 2, "mix lines");
    CHECK(!exists("up", NULL) && !exists(".hidden", NULL), "nothing for bad ids");

    /* only bad lines: no session is created */
    post_events("{\"event_type\": \"bogus\", \"session_id\": \"ghost\"}\n", &r);
    CHECK(r.status == 202, "all bad %d", r.status);
    BODY_IS(r, "{\"accepted\": 0, \"errors\": 1}");
    http_response_fini(&r);
    CHECK(!exists("ghost", NULL), "no ghost session");

    /* interleaved sessions keep their own order and chains */
    post_events("{\"event_type\": \"tool_call\", \"session_id\": \"ia\", \"event_id\": \"a1\"}\n"
                "{\"event_type\": \"tool_call\", \"session_id\": \"ib\", \"event_id\": \"b1\"}\n"
                "{\"event_type\": \"tool_call\", \"session_id\": \"ia\", \"event_id\": \"a2\"}\n"
                "{\"event_type\": \"tool_call\", \"session_id\": \"ia\", \"event_id\": \"a3\"}\n"
                "{\"event_type\": \"tool_call\", \"session_id\": \"ib\", \"event_id\": \"b2\"}\n",
                &r);
    BODY_IS(r, "{\"accepted\": 5, \"errors\": 0}");
    http_response_fini(&r);
    CHECK(session_chain("ia") == 3 && session_chain("ib") == 2, "interleaved");
    size_t n;
    char *s = read_session_file("ia", "events.ndjson", &n);
    CHECK(s && strstr(s, "\"a1\"") < strstr(s, "\"a2\"") && strstr(s, "\"a2\"") < strstr(s, "\"a3\""),
          "ia order");
    free(s);
}

static void test_append_imported(const char *sid)
{
    char p[PATH_MAX], obj[PATH_MAX], before[AT_SHA256_HEX], after[AT_SHA256_HEX];
    struct stat sb, ob;
    path_of(p, sid, "events.ndjson");
    file_sha(p, before);
    snprintf(obj, sizeof obj, "%s/objects/sha256/%.2s/%s.ndjson", root, before, before);
    CHECK(stat(p, &sb) == 0 && stat(obj, &ob) == 0 && sb.st_ino != ob.st_ino && sb.st_nlink == 1,
          "events is a file of its own, beside its object");
    long lines = session_chain(sid);
    CHECK(lines > 0, "imported chain");

    char body[512];
    snprintf(
        body, sizeof body,
        "{\"event_type\": \"user_prompt\", \"session_id\": \"%s\", \"event_id\": \"x1\", \"data\": {\"t\": 1}}\n"
        "{\"event_type\": \"assistant_response\", \"session_id\": \"%s\", \"event_id\": \"x2\"}\n",
        sid, sid);
    http_response r;
    post_events(body, &r);
    CHECK(r.status == 200, "append imported %d", r.status);
    BODY_IS(r, "{\"accepted\": 2, \"errors\": 0}");
    http_response_fini(&r);

    file_sha(obj, after);
    CHECK(strcmp(before, after) == 0, "object unchanged");
    CHECK(stat(obj, &ob) == 0 && (ob.st_mode & 0222) == 0 && ob.st_nlink == 1, "object read-only, unlinked");
    CHECK(stat(p, &sb) == 0 && sb.st_ino != ob.st_ino && sb.st_nlink == 1, "events is not the object");
    CHECK(session_chain(sid) == lines + 2, "chain continues");

    /* the next append goes in place (no second copy) */
    ino_t ino = sb.st_ino;
    snprintf(body, sizeof body, "{\"event_type\": \"decision\", \"session_id\": \"%s\"}\n", sid);
    post_events(body, &r);
    http_response_fini(&r);
    CHECK(stat(p, &sb) == 0 && sb.st_ino == ino, "appended in place");
    CHECK(session_chain(sid) == lines + 3, "chain +3");

    /* no leftovers in the session directory */
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s", root, sid);
    DIR *dir = opendir(d);
    int extra = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "meta.json") &&
            strcmp(e->d_name, "events.ndjson"))
            extra++;
    if (dir)
        closedir(dir);
    CHECK(extra == 0, "leftover files: %d", extra);
}

/* Another writer appends a correctly chained line between our appends. */
static void test_foreign_writer(void)
{
    http_response r;
    post_events("{\"event_type\": \"tool_call\", \"session_id\": \"fw\", \"event_id\": \"f1\"}\n", &r);
    http_response_fini(&r);
    size_t n;
    char *s = read_session_file("fw", "events.ndjson", &n);
    CHECK(s && n > 1, "fw first");
    if (!s)
        return;
    uint8_t h[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX], line[256], p[PATH_MAX];
    at_sha256_oneshot(s, n - 1, h);
    at_hex(h, AT_SHA256_LEN, hex);
    free(s);
    snprintf(line, sizeof line,
             "{\"event_type\":\"tool_result\",\"timestamp\":5.0,\"event_id\":\"f2\",\"session_id\":\"fw\","
             "\"data\":{\"by\":\"python\"},\"prev_hash\":\"%s\"}\n",
             hex);
    path_of(p, "fw", "events.ndjson");
    int fd = open(p, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, line, strlen(line)) == (ssize_t)strlen(line), "hand append");
    if (fd >= 0)
        close(fd);
    post_events("{\"event_type\": \"tool_call\", \"session_id\": \"fw\", \"event_id\": \"f3\"}\n", &r);
    http_response_fini(&r);
    CHECK(session_chain("fw") == 3, "fw chain");

    /* the file replaced wholesale by another process (same size even) */
    s = read_session_file("fw", "events.ndjson", &n);
    const char *one =
        "{\"event_type\":\"tool_call\",\"timestamp\":1.0,\"event_id\":\"z1\",\"session_id\":\"fw\",\"data\":{}}\n";
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.x", p);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fputs(one, f);
        fclose(f);
    }
    CHECK(rename(tmp, p) == 0, "replace");
    free(s);
    post_events("{\"event_type\": \"tool_call\", \"session_id\": \"fw\", \"event_id\": \"f4\"}\n", &r);
    http_response_fini(&r);
    CHECK(session_chain("fw") == 2, "fw chain after replace");

    /* a file whose last line lacks its newline gets one first */
    f = fopen(p, "a");
    if (f) {
        s = read_session_file("fw", "events.ndjson", &n);
        const char *last = s + n - 1;
        while (last > s && last[-1] != '\n')
            last--;
        at_sha256_oneshot(last, (size_t)(s + n - 1 - last), h);
        at_hex(h, AT_SHA256_LEN, hex);
        fprintf(
            f,
            "{\"event_type\":\"decision\",\"timestamp\":6.0,\"session_id\":\"fw\",\"data\":{},\"prev_hash\":\"%s\"}",
            hex);
        fclose(f);
        free(s);
    }
    post_events("{\"event_type\": \"tool_call\", \"session_id\": \"fw\", \"event_id\": \"f5\"}\n", &r);
    http_response_fini(&r);
    CHECK(session_chain("fw") == 4, "fw chain after unterminated line");
}

#define THREADS 4
#define ROUNDS  40
#define PER     3

static void *poster(void *arg)
{
    int t = (int)(intptr_t)arg;
    char body[1024];
    for (int i = 0; i < ROUNDS; i++) {
        size_t k = 0;
        for (int j = 0; j < PER; j++)
            k += (size_t)snprintf(body + k, sizeof body - k,
                                  "{\"event_type\": \"tool_call\", \"session_id\": \"%s\", \"event_id\": "
                                  "\"t%d-%d-%d\", \"data\": {\"i\": %d}}\n",
                                  (i & 1) ? "conc" : "conc", t, i, j, i);
        http_response r;
        http_response_init(&r);
        collector_post_events(&ctx, body, k, &r);
        if (r.status != 200)
            fprintf(stderr, "thread %d: %d %.*s\n", t, r.status, (int)r.body.len, r.body.data);
        http_response_fini(&r);
        /* another session in parallel */
        k = (size_t)snprintf(body, sizeof body,
                             "{\"event_type\": \"decision\", \"session_id\": \"par-%d\"}\n", t);
        http_response_init(&r);
        collector_post_events(&ctx, body, k, &r);
        http_response_fini(&r);
    }
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, poster, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK(session_chain("conc") == THREADS * ROUNDS * PER, "all lines chained");
    size_t n;
    char *s = read_session_file("conc", "events.ndjson", &n);
    int missing = 0;
    for (int t = 0; s && t < THREADS; t++)
        for (int i = 0; i < ROUNDS; i++)
            for (int j = 0; j < PER; j++) {
                char id[48];
                snprintf(id, sizeof id, "\"event_id\":\"t%d-%d-%d\"", t, i, j);
                missing += strstr(s, id) == NULL;
            }
    CHECK(s && missing == 0, "missing %d", missing);
    free(s);
    for (int t = 0; t < THREADS; t++) {
        char sid[16];
        snprintf(sid, sizeof sid, "par-%d", t);
        CHECK(session_chain(sid) == ROUNDS, "%s", sid);
    }
}

/* One batch naming sessions A, B, A, (bad), A: one version of each session
 * (one log entry per session a batch changed), A's events in their order. */
static void test_interleaved(void)
{
    http_response r;
    post_events(
        "{\"event_type\": \"decision\", \"session_id\": \"mix-a\", \"event_id\": \"a1\", \"timestamp\": 1}\n"
        "{\"event_type\": \"decision\", \"session_id\": \"mix-b\", \"event_id\": \"b1\", \"timestamp\": 2}\n"
        "{\"event_type\": \"decision\", \"session_id\": \"mix-a\", \"event_id\": \"a2\", \"timestamp\": 3}\n"
        "not json\n"
        "{\"event_type\": \"decision\", \"session_id\": \"mix-a\", \"event_id\": \"a3\", \"timestamp\": 4}\n",
        &r);
    CHECK(r.status == 202, "interleaved %d", r.status);
    BODY_IS(r, "{\"accepted\": 4, \"errors\": 1}");
    http_response_fini(&r);
    const char *ids[] = {"mix-a", "mix-b"};
    const size_t want_events[] = {3, 1};
    for (int i = 0; i < 2; i++) {
        at_version *vs = NULL;
        size_t nv = 0;
        at_error err = {0};
        CHECK(at_store_versions(ctx.store, ids[i], &vs, &nv, &err) == AT_OK, "versions of %s: %s", ids[i],
              err.message);
        CHECK(nv == 1 && vs[0].events == want_events[i], "%s: %zu versions, %llu events", ids[i], nv,
              nv ? (unsigned long long)vs[0].events : 0ull);
        free(vs);
    }
    size_t n;
    char *ev = read_session_file("mix-a", "events.ndjson", &n);
    const char *a1 = ev ? strstr(ev, "\"a1\"") : NULL, *a2 = ev ? strstr(ev, "\"a2\"") : NULL,
               *a3 = ev ? strstr(ev, "\"a3\"") : NULL;
    CHECK(a1 && a2 && a3 && a1 < a2 && a2 < a3, "mix-a keeps its order");
    CHECK(session_chain("mix-a") == 3, "mix-a: 3 chained lines");
    free(ev);
}

/* A body fed in pieces of every size, past COLLECTOR_FLUSH (appended in
 * rounds) with lines split across pieces, an over-long line among them
 * (one error, skipped to its newline) and a last line without newline:
 * every event stored once, in order, chained. */
static void test_streamed(void)
{
    enum { N = 30000 };
    at_buf body;
    at_buf_init(&body, 0);
    char pad[400];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    bool ok = true;
    for (int i = 0; ok && i < N; i++) {
        ok = at_buf_printf(&body,
                           "{\"event_type\": \"decision\", \"session_id\": \"stream-%c\", \"event_id\": "
                           "\"s%d\", \"timestamp\": %d, \"data\": {\"pad\": \"%s\"}}\n",
                           "abc"[i % 3], i, i, pad) == AT_OK;
        if (ok && i == N / 2) { /* the over-long line, then more events */
            for (size_t k = 0; ok && k < COLLECTOR_MAX_LINE / 65536 + 1; k++) {
                char junk[65536];
                memset(junk, 'x', sizeof junk);
                ok = at_buf_add(&body, junk, sizeof junk) == AT_OK;
            }
            ok = ok && at_buf_addc(&body, '\n') == AT_OK;
        }
    }
    if (ok && body.len) /* the last line without its newline */
        body.len--;
    CHECK(ok && body.len > COLLECTOR_FLUSH * 2, "body of %zu bytes", body.len);
    at_error err = {0};
    collector_events *ce = collector_events_new(&ctx, &err);
    CHECK(ce != NULL, "new: %s", err.message);
    if (!ce || !ok) {
        at_buf_fini(&body);
        return;
    }
    unsigned seed = 12345;
    size_t sizes[] = {1, 2, 3, 7, 100, 4095, 65536, 1 << 20};
    for (size_t pos = 0; pos < body.len;) {
        seed = seed * 1103515245u + 12345u;
        size_t k = sizes[(seed >> 16) % (sizeof sizes / sizeof *sizes)];
        if (k > body.len - pos)
            k = body.len - pos;
        collector_events_feed(ce, body.data + pos, k);
        pos += k;
    }
    http_response r;
    http_response_init(&r);
    collector_events_finish(ce, &r);
    collector_events_free(ce);
    BODY_IS(r, "{\"accepted\": 30000, \"errors\": 1}");
    CHECK(r.status == 202, "streamed: %d", r.status);
    http_response_fini(&r);
    for (int j = 0; j < 3; j++) {
        char sid[16];
        snprintf(sid, sizeof sid, "stream-%c", "abc"[j]);
        CHECK(session_chain(sid) == N / 3, "%s: %d chained lines", sid, N / 3);
        size_t n;
        char *ev = read_session_file(sid, "events.ndjson", &n);
        /* in order: the ids s<j>, s<j+3>, ... */
        int want = j;
        bool order = ev != NULL;
        for (const char *q = ev; order && (q = strstr(q, "\"event_id\":\"s")); q++) {
            order = atoi(q + 13) == want;
            want += 3;
        }
        CHECK(order && want == N + j, "%s: every event once, in order", sid);
        free(ev);
        at_version *vs = NULL;
        size_t nv = 0;
        CHECK(at_store_versions(ctx.store, sid, &vs, &nv, &err) == AT_OK && nv > 1,
              "%s: appended in %zu rounds", sid, nv);
        free(vs);
    }
    at_buf_fini(&body);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/at-collector-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 99;
    }
    at_error err = {0};
    at_store *store = at_store_open(root, &err);
    if (!store) {
        fprintf(stderr, "store: %s\n", err.message);
        return 99;
    }
    char *imp1 = import_fixture(store, "tests/fixtures/claude/short.jsonl");
    char *imp2 = import_fixture(store, "tests/fixtures/claude/tool_heavy.jsonl");
    if (!imp1 || !imp2) {
        fprintf(stderr, "cannot import fixtures\n");
        return 99;
    }
    ctx.store = store;
    ctx.root = root;

    test_lookup(imp1, imp2);
    test_post_sessions();
    test_listing(imp1, imp2);
    test_post_events_new();
    test_post_events_nulls();
    test_bad_lines();
    test_interleaved();
    test_streamed();
    test_append_imported(imp1);
    test_foreign_writer();
    test_concurrent();

    at_store_free(store);
    free(imp1);
    free(imp2);
    if (!t_failed) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", root);
    } else {
        fprintf(stderr, "storage left in %s\n", root);
    }
    return t_done("test_collector");
}
