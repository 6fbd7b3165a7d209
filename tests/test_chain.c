/* test_chain.c - the hash chain: SHA-256 known answers, the chain writer's
 * exact bytes, and the streaming verifier on the reference sessions, on
 * tampered copies of them (strict and legacy) and on odd streams. */
#include "agenttrace/chain.h"
#include "agenttrace/json.h"
#include "agenttrace/sha256.h"
#include "agenttrace/verify.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

static void hex_of(const void *p, size_t n, char out[AT_SHA256_HEX])
{
    uint8_t d[AT_SHA256_LEN];
    at_sha256_oneshot(p, n, d);
    at_hex(d, AT_SHA256_LEN, out);
}

static bool digest_is(const uint8_t d[AT_SHA256_LEN], const void *p, size_t n)
{
    uint8_t want[AT_SHA256_LEN];
    at_sha256_oneshot(p, n, want);
    return memcmp(d, want, AT_SHA256_LEN) == 0;
}

static at_result mem_sink(void *ctx, const char *p, size_t n)
{
    return at_buf_add(ctx, p, n);
}

static at_result failing_sink(void *ctx, const char *p, size_t n)
{
    return AT_ERR_IO;
}

/* A line of a stream: its bytes without "\n". */
typedef struct {
    const char *p;
    size_t n;
} line_t;

/* Splits s on "\n" (a last line without "\n" counts). Returns the count. */
static size_t split_lines(const char *s, size_t n, line_t *out, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n && k < max; i++) {
        if (i == n || s[i] == '\n') {
            if (i == n && i == start)
                break;
            out[k].p = s + start;
            out[k].n = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

/* The event_id of a line (owned), or NULL. */
static char *event_id_of(const char *p, size_t n)
{
    at_json_doc d;
    at_buf b;
    char *id = NULL;
    at_json_doc_init(&d);
    at_buf_init(&b, 0);
    if (at_json_parse(&d, p, n, NULL) == AT_OK) {
        uint32_t i = at_json_get(&d, 0, "event_id");
        if (at_json_is(&d, i, AT_JSON_STRING) && at_buf_reserve(&b, 1) == AT_OK &&
            at_json_str_decode(&d, i, &b) == AT_OK)
            id = at_buf_steal(&b, NULL);
    }
    at_buf_fini(&b);
    at_json_doc_fini(&d);
    return id;
}

/* Feeds s through a new verifier in chunks of `chunk` bytes (0: whole). */
static at_result verify_chunks(at_verify_mode mode, const char *s, size_t n, size_t chunk,
                               at_verify_report *rep)
{
    at_error err = {0};
    at_verifier *v = at_verifier_new(mode);
    at_result r = AT_ERR_NOMEM;
    memset(rep, 0, sizeof *rep);
    if (!v)
        return r;
    if (chunk == 0)
        chunk = n ? n : 1;
    r = AT_OK;
    for (size_t off = 0; off < n && r == AT_OK; off += chunk)
        r = at_verifier_feed(v, s + off, n - off < chunk ? n - off : chunk, &err);
    if (r == AT_OK)
        r = at_verifier_finish(v, rep, &err);
    at_verifier_free(v);
    return r;
}

static bool same_report(const at_verify_report *a, const at_verify_report *b)
{
    bool ids =
        (!a->broken_event_id && !b->broken_event_id) ||
        (a->broken_event_id && b->broken_event_id && strcmp(a->broken_event_id, b->broken_event_id) == 0);
    return a->ok == b->ok && a->total_events == b->total_events && a->broken_at == b->broken_at && ids &&
           strcmp(a->reason, b->reason) == 0 && memcmp(a->file_sha256, b->file_sha256, AT_SHA256_LEN) == 0 &&
           a->have_head == b->have_head && memcmp(a->head, b->head, AT_SHA256_LEN) == 0 &&
           a->bytes == b->bytes;
}

/* Verifies s whole and in 7-byte chunks (and 1-byte chunks when small),
 * checks the reports agree, and leaves the whole-stream one in rep. */
static at_result verify_all_ways(at_verify_mode mode, const char *s, size_t n, at_verify_report *rep,
                                 const char *what)
{
    size_t chunks[] = {7, 1, 4096};
    at_result r = verify_chunks(mode, s, n, 0, rep);
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        if (chunks[i] == 1 && n > 32 * 1024)
            continue;
        at_verify_report other;
        at_result r2 = verify_chunks(mode, s, n, chunks[i], &other);
        CHECK(r2 == r && (r != AT_OK || same_report(rep, &other)),
              "%s: %zu-byte chunks give another report (%d/%d)", what, chunks[i], r, r2);
        at_verify_report_fini(&other);
    }
    return r;
}

static bool id_is(const at_verify_report *rep, const char *want)
{
    if (!want || !rep->broken_event_id)
        return !want && !rep->broken_event_id;
    return strcmp(rep->broken_event_id, want) == 0;
}

/* Checks a verdict: want_at < 0 means intact. */
static void expect(at_verify_mode mode, const char *s, size_t n, int64_t want_at, const char *want_id,
                   uint64_t want_total, const char *what)
{
    at_verify_report rep;
    const char *m = mode == AT_VERIFY_STRICT ? "strict" : "legacy";
    at_result r = verify_all_ways(mode, s, n, &rep, what);
    CHECK(r == AT_OK, "%s (%s): result %d", what, m, r);
    CHECK(rep.ok == (want_at < 0), "%s (%s): ok=%d, want %d (reason: %s)", what, m, rep.ok, want_at < 0,
          rep.reason);
    CHECK(rep.broken_at == (want_at < 0 ? -1 : want_at), "%s (%s): broken_at %lld want %lld (%s)", what, m,
          (long long)rep.broken_at, (long long)want_at, rep.reason);
    CHECK(id_is(&rep, want_id), "%s (%s): broken_event_id %s want %s", what, m,
          rep.broken_event_id ? rep.broken_event_id : "(null)", want_id ? want_id : "(null)");
    CHECK(rep.total_events == want_total, "%s (%s): total %llu want %llu", what, m,
          (unsigned long long)rep.total_events, (unsigned long long)want_total);
    CHECK((rep.reason[0] != 0) == !rep.ok, "%s (%s): reason '%s'", what, m, rep.reason);
    CHECK(digest_is(rep.file_sha256, s, n), "%s (%s): file digest", what, m);
    at_verify_report_fini(&rep);
}

/* Both modes. */
static void expect2(const char *s, size_t n, int64_t strict_at, const char *strict_id, int64_t legacy_at,
                    const char *legacy_id, uint64_t total, const char *what)
{
    expect(AT_VERIFY_STRICT, s, n, strict_at, strict_id, total, what);
    expect(AT_VERIFY_LEGACY, s, n, legacy_at, legacy_id, total, what);
}

/* ---- SHA-256 ----------------------------------------------------------- */

static void check_sha(const void *p, size_t n, const char *want, const char *what)
{
    uint8_t d[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(p, n, d);
    at_hex(d, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, want) == 0, "%s one-shot: %s", what, hex);

    at_sha256 *h = at_sha256_new();
    CHECK(h != NULL, "sha256_new");
    if (!h)
        return;
    /* One call, then byte by byte, then split in uneven pieces; reset between. */
    at_sha256_update(h, p, n);
    at_sha256_final(h, d);
    at_hex(d, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, want) == 0, "%s one update: %s", what, hex);
    at_sha256_reset(h);
    for (size_t i = 0; i < n; i++)
        at_sha256_update(h, (const char *)p + i, 1);
    at_sha256_final(h, d);
    at_hex(d, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, want) == 0, "%s byte by byte: %s", what, hex);
    at_sha256_reset(h);
    size_t sizes[] = {3, 61, 1, 64, 127, 5};
    for (size_t off = 0, i = 0; off < n; i++) {
        size_t k = sizes[i % 6] < n - off ? sizes[i % 6] : n - off;
        at_sha256_update(h, (const char *)p + off, k);
        off += k;
    }
    at_sha256_final(h, d);
    at_hex(d, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, want) == 0, "%s uneven pieces: %s", what, hex);
    at_sha256_free(h);

    /* From unaligned memory. */
    for (size_t shift = 1; shift < 8; shift += 3) {
        char *q = malloc(n + shift);
        if (!q)
            break;
        if (n)
            memcpy(q + shift, p, n);
        at_sha256_oneshot(q + shift, n, d);
        at_hex(d, AT_SHA256_LEN, hex);
        CHECK(strcmp(hex, want) == 0, "%s unaligned by %zu: %s", what, shift, hex);
        free(q);
    }
}

static void test_sha256(void)
{
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
              "448 bits");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                       "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check_sha(four, strlen(four), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
              "896 bits");
    char *million = malloc(1000000);
    if (million) {
        memset(million, 'a', 1000000);
        uint8_t d[AT_SHA256_LEN];
        char hex[AT_SHA256_HEX];
        at_sha256_oneshot(million, 1000000, d);
        at_hex(d, AT_SHA256_LEN, hex);
        CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
              "a million a: %s", hex);
        free(million);
    }

    /* copy: finalizing a copy leaves the original running. */
    at_sha256 *a = at_sha256_new(), *b = at_sha256_new();
    if (a && b) {
        uint8_t d[AT_SHA256_LEN];
        at_sha256_update(a, "ab", 2);
        at_sha256_copy(b, a);
        at_sha256_final(b, d);
        CHECK(digest_is(d, "ab", 2), "copy finalizes the prefix");
        at_sha256_update(a, "c", 1);
        at_sha256_final(a, d);
        CHECK(digest_is(d, "abc", 3), "original goes on after a copy");
    }
    at_sha256_free(a);
    at_sha256_free(b);
    at_sha256_free(NULL);

    /* hex helpers */
    uint8_t d[AT_SHA256_LEN], back[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot("abc", 3, d);
    at_hex(d, AT_SHA256_LEN, hex);
    CHECK(at_unhex_sha256(hex, 64, back) && memcmp(back, d, AT_SHA256_LEN) == 0, "unhex round trip");
    CHECK(at_unhex_sha256("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", 64, back) &&
              memcmp(back, d, AT_SHA256_LEN) == 0,
          "unhex accepts upper case");
    CHECK(!at_unhex_sha256(hex, 63, back), "unhex: 63 digits");
    hex[10] = 'g';
    CHECK(!at_unhex_sha256(hex, 64, back), "unhex: a non-hex digit");
}

/* ---- the chain writer -------------------------------------------------- */

static void test_writer(void)
{
    at_buf out;
    at_chain_writer w;
    char h0[AT_SHA256_HEX], h1[AT_SHA256_HEX], h2[AT_SHA256_HEX], h3[AT_SHA256_HEX];
    char want[2048];
    at_buf_init(&out, 0);
    CHECK(at_chain_writer_init(&w, mem_sink, &out, NULL) == AT_OK, "writer init");

    /* Line 0: all the usual fields, no prev_hash. */
    at_event_json e0 = {
        .event_type = AT_SLICE("\"session_start\""),
        .timestamp = AT_SLICE("1770842205.618"),
        .event_id = AT_SLICE("\"1a2252eefde8\""),
        .session_id = AT_SLICE("\"s-1\""),
        .data = AT_SLICE("{\"agent\":\"claude\",\"x\":null}"),
    };
    CHECK(at_chain_write(&w, &e0) == AT_OK, "write 0");
    const char *l0 = "{\"event_type\":\"session_start\",\"timestamp\":1770842205.618,"
                     "\"event_id\":\"1a2252eefde8\",\"session_id\":\"s-1\","
                     "\"data\":{\"agent\":\"claude\",\"x\":null}}";
    snprintf(want, sizeof want, "%s\n", l0);
    CHECK_BYTES(out.data, out.len, want, strlen(want), "line 0");
    CHECK(digest_is(w.head, l0, strlen(l0)), "head after line 0 is its digest");
    hex_of(l0, strlen(l0), h0);

    /* Line 1: null / "" fields dropped, data and timestamp defaulted,
     * duration_ms 0 kept (only null and "" are dropped), redacted. */
    at_event_json e1 = {
        .event_type = AT_SLICE("\"tool_call\""),
        .event_id = AT_SLICE("\"\""),
        .session_id = AT_SLICE("\"s-1\""),
        .parent_id = AT_SLICE("null"),
        .duration_ms = AT_SLICE("0"),
        .redacted = true,
    };
    size_t before = out.len;
    CHECK(at_chain_write(&w, &e1) == AT_OK, "write 1");
    char l1[512];
    snprintf(l1, sizeof l1,
             "{\"event_type\":\"tool_call\",\"timestamp\":0.0,\"session_id\":\"s-1\","
             "\"duration_ms\":0,\"data\":{},\"prev_hash\":\"%s\",\"redacted\":true}",
             h0);
    snprintf(want, sizeof want, "%s\n", l1);
    CHECK_BYTES(out.data + before, out.len - before, want, strlen(want), "line 1");
    hex_of(l1, strlen(l1), h1);

    /* Line 2: nothing at all: no leading comma, only the defaults;
     * redacted false is left out; an empty data object is written as is. */
    at_event_json e2 = {.event_type = AT_SLICE("null"), .data = AT_SLICE("{}")};
    before = out.len;
    CHECK(at_chain_write(&w, &e2) == AT_OK, "write 2");
    char l2[512];
    snprintf(l2, sizeof l2, "{\"timestamp\":0.0,\"data\":{},\"prev_hash\":\"%s\"}", h1);
    snprintf(want, sizeof want, "%s\n", l2);
    CHECK_BYTES(out.data + before, out.len - before, want, strlen(want), "line 2");
    hex_of(l2, strlen(l2), h2);

    /* Line 3: a given prev_hash is kept as is (the importer passes the
     * reference's own); a parent_id is written between session_id and duration. */
    at_event_json e3 = {
        .event_type = AT_SLICE("\"tool_result\""),
        .timestamp = AT_SLICE("1e-05"),
        .parent_id = AT_SLICE("\"abc\""),
        .duration_ms = AT_SLICE("12.5"),
        .prev_hash = AT_SLICE("\"not-a-hash\""),
    };
    before = out.len;
    CHECK(at_chain_write(&w, &e3) == AT_OK, "write 3");
    const char *l3 = "{\"event_type\":\"tool_result\",\"timestamp\":1e-05,\"parent_id\":\"abc\","
                     "\"duration_ms\":12.5,\"data\":{},\"prev_hash\":\"not-a-hash\"}";
    snprintf(want, sizeof want, "%s\n", l3);
    CHECK_BYTES(out.data + before, out.len - before, want, strlen(want), "line 3");
    hex_of(l3, strlen(l3), h3);

    /* The digest can be taken midway; the writer goes on. */
    uint8_t fd1[AT_SHA256_LEN];
    at_chain_writer_digest(&w, fd1);
    CHECK(digest_is(fd1, out.data, out.len), "file digest after 4 lines");

    /* Line 4 chains to line 3 as written, not to the given value. */
    at_event_json e4 = {.event_type = AT_SLICE("\"session_end\""), .prev_hash = AT_SLICE("\"\"")};
    before = out.len;
    CHECK(at_chain_write(&w, &e4) == AT_OK, "write 4");
    char l4[512];
    snprintf(l4, sizeof l4,
             "{\"event_type\":\"session_end\",\"timestamp\":0.0,\"data\":{},\"prev_hash\":\"%s\"}", h3);
    snprintf(want, sizeof want, "%s\n", l4);
    CHECK_BYTES(out.data + before, out.len - before, want, strlen(want), "line 4 (\"\" prev_hash ignored)");
    CHECK(digest_is(w.head, l4, strlen(l4)), "head is the digest of the last line");
    CHECK(w.lines == 5, "5 lines counted: %llu", (unsigned long long)w.lines);
    uint8_t fd2[AT_SHA256_LEN];
    at_chain_writer_digest(&w, fd2);
    CHECK(digest_is(fd2, out.data, out.len), "file digest after 5 lines");
    CHECK(memcmp(fd1, fd2, AT_SHA256_LEN) != 0, "digest moved on");

    /* The verifier agrees up to line 3, whose given prev_hash breaks it. */
    expect2(out.data, out.len, 3, NULL, 3, NULL, 5, "writer output with a given bad prev_hash");
    at_chain_writer_fini(&w);

    /* Appending: the first line chains to the given head; the file digest
     * covers only the new bytes. */
    at_buf app;
    at_buf_init(&app, 0);
    uint8_t prev[AT_SHA256_LEN];
    at_sha256_oneshot(l2, strlen(l2), prev);
    CHECK(at_chain_writer_init(&w, mem_sink, &app, prev) == AT_OK, "append init");
    at_event_json e5 = {.event_type = AT_SLICE("\"error\""), .redacted = false};
    CHECK(at_chain_write(&w, &e5) == AT_OK, "append write");
    snprintf(want, sizeof want,
             "{\"event_type\":\"error\",\"timestamp\":0.0,\"data\":{},\"prev_hash\":\"%s\"}\n", h2);
    CHECK_BYTES(app.data, app.len, want, strlen(want), "appended line");
    at_chain_writer_digest(&w, fd1);
    CHECK(digest_is(fd1, app.data, app.len), "append digest covers new bytes only");
    at_chain_writer_fini(&w);

    /* A sink error stops the write and comes back. */
    CHECK(at_chain_writer_init(&w, failing_sink, NULL, NULL) == AT_OK, "failing init");
    CHECK(at_chain_write(&w, &e0) == AT_ERR_IO, "sink error returned");
    at_chain_writer_fini(&w);

    /* A chain written by the writer verifies, in both modes. */
    at_buf_reset(&out);
    CHECK(at_chain_writer_init(&w, mem_sink, &out, NULL) == AT_OK, "init");
    char ts[32], id[40], data[64];
    for (int i = 0; i < 50; i++) {
        snprintf(ts, sizeof ts, "%d.25", 1770000000 + i);
        snprintf(id, sizeof id, "\"%012d\"", i);
        snprintf(data, sizeof data, "{\"n\":%d,\"s\":\"\\u00e9\\n\"}", i);
        at_event_json e = {.event_type = AT_SLICE("\"decision\""),
                           .timestamp = {ts, strlen(ts)},
                           .event_id = {id, strlen(id)},
                           .data = {data, strlen(data)}};
        CHECK(at_chain_write(&w, &e) == AT_OK, "write %d", i);
    }
    expect2(out.data, out.len, -1, NULL, -1, NULL, 50, "50 written events");
    at_verify_report rep;
    CHECK(verify_chunks(AT_VERIFY_STRICT, out.data, out.len, 0, &rep) == AT_OK, "verify");
    CHECK(rep.have_head && memcmp(rep.head, w.head, AT_SHA256_LEN) == 0, "verifier head = writer head");
    at_chain_writer_digest(&w, fd1);
    CHECK(memcmp(rep.file_sha256, fd1, AT_SHA256_LEN) == 0, "verifier digest = writer digest");
    at_verify_report_fini(&rep);
    at_chain_writer_fini(&w);

    /* The fd sink writes exactly what it is given, buffered. */
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL, "tmpfile");
    if (tmp) {
        at_fd_sink s;
        at_fd_sink_init(&s, fileno(tmp));
        CHECK(at_chain_writer_init(&w, at_fd_sink_write, &s, NULL) == AT_OK, "fd init");
        at_buf big;
        at_buf_init(&big, 0);
        /* A line larger than the sink's block goes straight through. */
        CHECK(at_buf_adds(&big, "{\"blob\":\"") == AT_OK, "big");
        for (int i = 0; i < 300 * 1024 / 16; i++)
            CHECK(at_buf_adds(&big, "0123456789abcdef") == AT_OK, "big");
        CHECK(at_buf_adds(&big, "\"}") == AT_OK, "big");
        for (int i = 0; i < 20; i++) {
            at_event_json e = {.event_type = AT_SLICE("\"file_read\"")};
            if (i == 7)
                e.data = (at_slice){big.data, big.len};
            CHECK(at_chain_write(&w, &e) == AT_OK, "fd write %d", i);
        }
        CHECK(at_fd_sink_flush(&s) == AT_OK, "flush");
        uint8_t fdd[AT_SHA256_LEN];
        at_chain_writer_digest(&w, fdd);
        long size = lseek(fileno(tmp), 0, SEEK_END);
        CHECK(size > 0 && (uint64_t)size == s.written, "fd sink wrote %ld of %llu", size,
              (unsigned long long)s.written);
        char *back = malloc((size_t)size + 1);
        CHECK(back && pread(fileno(tmp), back, (size_t)size, 0) == size, "read back");
        if (back) {
            CHECK(digest_is(fdd, back, (size_t)size), "file on disk = writer digest");
            expect2(back, (size_t)size, -1, NULL, -1, NULL, 20, "fd sink output");
        }
        free(back);
        at_buf_fini(&big);
        at_chain_writer_fini(&w);
        at_fd_sink_fini(&s);
        fclose(tmp);
    }
    at_buf_fini(&out);
    at_buf_fini(&app);
}

/* ---- the reference sessions -------------------------------------------- */

#define MAX_LINES 4096

/* Every tampering of one fixture, with the verdict each mode must give. */
static void tamper_fixture(const char *name, const char *s, size_t n)
{
    static line_t L[MAX_LINES];
    static char *ids[MAX_LINES];
    size_t nl = split_lines(s, n, L, MAX_LINES);
    char what[1024];
    at_buf t;
    at_buf_init(&t, 0);
    for (size_t i = 0; i < nl; i++)
        ids[i] = event_id_of(L[i].p, L[i].n);
    /* Only a few positions of the large files: first, second, middle, last two. */
    size_t picks[] = {0, 1, 2, nl / 2, nl - 2, nl - 1};
    size_t npicks = nl <= 12 ? nl : sizeof picks / sizeof *picks;

#define REBUILD(body)                                                                                        \
    do {                                                                                                     \
        at_buf_reset(&t);                                                                                    \
        for (size_t i = 0; i < nl; i++) {                                                                    \
            const char *lp = L[i].p;                                                                         \
            size_t ln = L[i].n;                                                                              \
            body;                                                                                            \
            CHECK(at_buf_add(&t, lp, ln) == AT_OK && at_buf_addc(&t, '\n') == AT_OK, "oom");                 \
        }                                                                                                    \
    } while (0)

    for (size_t pi = 0; pi < npicks; pi++) {
        size_t k = nl <= 12 ? pi : picks[pi];
        if (k >= nl || (pi > 0 && nl > 12 && k == picks[pi - 1]))
            continue;
        bool last = k == nl - 1;
        char *copy = NULL;

        /* 1. A digit of line k's timestamp changed: the line still parses,
         * so line k+1's prev_hash no longer matches (both modes); the last
         * line has no successor and the chain cannot see it. */
        const char *tsp = memmem(L[k].p, L[k].n, "\"timestamp\":", 12);
        CHECK(tsp != NULL, "%s: line %zu has a timestamp", name, k);
        if (tsp) {
            size_t at = (size_t)(tsp - L[k].p) + 12;
            while (at + 1 < L[k].n && L[k].p[at + 1] >= '0' && L[k].p[at + 1] <= '9')
                at++;
            copy = malloc(L[k].n);
            memcpy(copy, L[k].p, L[k].n);
            copy[at] = copy[at] == '9' ? '8' : (char)(copy[at] + 1);
            REBUILD(if (i == k) lp = copy);
            snprintf(what, sizeof what, "%s: timestamp digit of line %zu changed", name, k);
            if (last)
                expect2(t.data, t.len, -1, NULL, -1, NULL, nl, what);
            else
                expect2(t.data, t.len, (int64_t)k + 1, ids[k + 1], (int64_t)k + 1, ids[k + 1], nl, what);
            /* The head does move: it is the receipt that catches this. */
            if (last) {
                at_verify_report rep;
                if (verify_chunks(AT_VERIFY_STRICT, t.data, t.len, 0, &rep) == AT_OK)
                    CHECK(!digest_is(rep.head, L[k].p, L[k].n) && digest_is(rep.head, copy, L[k].n),
                          "%s: head follows the changed last line", name);
                at_verify_report_fini(&rep);
            }

            /* 2. The same line made invalid JSON: broken at k, no event_id. */
            memcpy(copy, L[k].p, L[k].n);
            copy[0] = 'X';
            REBUILD(if (i == k) lp = copy);
            snprintf(what, sizeof what, "%s: line %zu not JSON", name, k);
            expect2(t.data, t.len, (int64_t)k, NULL, (int64_t)k, NULL, nl, what);
            free(copy);
            copy = NULL;
        }

        /* 3. A hex digit of line k's prev_hash changed: broken at k in both. */
        const char *ph = memmem(L[k].p, L[k].n, ",\"prev_hash\":\"", 14);
        CHECK((ph != NULL) == (k > 0), "%s: line %zu prev_hash presence", name, k);
        if (ph) {
            size_t at = (size_t)(ph - L[k].p) + 14 + 20;
            copy = malloc(L[k].n);
            memcpy(copy, L[k].p, L[k].n);
            copy[at] = copy[at] == 'a' ? 'b' : 'a';
            REBUILD(if (i == k) lp = copy);
            snprintf(what, sizeof what, "%s: prev_hash of line %zu changed", name, k);
            expect2(t.data, t.len, (int64_t)k, ids[k], (int64_t)k, ids[k], nl, what);

            /* 4. prev_hash removed from line k (k > 0): strict breaks at k;
             * legacy accepts k as a pre-chain event and then finds that
             * line k+1 was chained to the original bytes of k. */
            size_t cut = (size_t)(ph - L[k].p), clen = 14 + 64 + 1;
            memcpy(copy, L[k].p, cut);
            memcpy(copy + cut, L[k].p + cut + clen, L[k].n - cut - clen);
            REBUILD(if (i == k) {
                lp = copy;
                ln = L[k].n - clen;
            });
            snprintf(what, sizeof what, "%s: prev_hash removed from line %zu", name, k);
            if (last)
                expect2(t.data, t.len, (int64_t)k, ids[k], -1, NULL, nl, what);
            else
                expect2(t.data, t.len, (int64_t)k, ids[k], (int64_t)k + 1, ids[k + 1], nl, what);
            free(copy);
            copy = NULL;
        } else {
            /* Line 0 given a prev_hash (of anything): broken at 0 in both modes. */
            char zero[80];
            hex_of("", 0, zero);
            size_t cut = L[0].n - 1; /* before the closing brace */
            copy = malloc(L[0].n + 96);
            memcpy(copy, L[0].p, cut);
            int add = snprintf(copy + cut, 96, ",\"prev_hash\":\"%s\"}", zero);
            REBUILD(if (i == 0) {
                lp = copy;
                ln = cut + (size_t)add;
            });
            snprintf(what, sizeof what, "%s: line 0 given a prev_hash", name);
            expect2(t.data, t.len, 0, ids[0], 0, ids[0], nl, what);
            free(copy);
            copy = NULL;
        }

        /* 5. Line k deleted: the line after it (now at k) was chained to k;
         * deleting line 0 leaves a first line with a prev_hash; deleting the
         * last line (truncation) leaves a valid shorter chain. */
        REBUILD(if (i == k) continue);
        snprintf(what, sizeof what, "%s: line %zu deleted", name, k);
        if (last)
            expect2(t.data, t.len, -1, NULL, -1, NULL, nl - 1, what);
        else
            expect2(t.data, t.len, (int64_t)k, ids[k + 1], (int64_t)k, ids[k + 1], nl - 1, what);

        /* 6. Lines k and k+1 swapped: old k+1, now at k, is chained to old k. */
        if (!last) {
            REBUILD(
                if (i == k) {
                    lp = L[k + 1].p;
                    ln = L[k + 1].n;
                } else if (i == k + 1) {
                    lp = L[k].p;
                    ln = L[k].n;
                });
            snprintf(what, sizeof what, "%s: lines %zu and %zu swapped", name, k, k + 1);
            expect2(t.data, t.len, (int64_t)k, ids[k + 1], (int64_t)k, ids[k + 1], nl, what);
        }

        /* 7. A line k duplicated: the copy is chained to k-1, not to k. */
        REBUILD(
            if (i == k) { CHECK(at_buf_add(&t, lp, ln) == AT_OK && at_buf_addc(&t, '\n') == AT_OK, "oom"); });
        snprintf(what, sizeof what, "%s: line %zu duplicated", name, k);
        if (k == 0)
            expect2(t.data, t.len, 1, ids[0], -1, NULL, nl + 1, what);
        else
            expect2(t.data, t.len, (int64_t)k + 1, ids[k], (int64_t)k + 1, ids[k], nl + 1, what);
    }

    /* Blank lines (empty, spaces, tabs, CR) anywhere are not events and do
     * not move the chain; the head stays the last event line's digest. */
    REBUILD(if (i == 1) { CHECK(at_buf_adds(&t, "\n   \n\t\r\n\r\n") == AT_OK, "oom"); });
    CHECK(at_buf_adds(&t, "\n \n") == AT_OK, "oom");
    snprintf(what, sizeof what, "%s: blank lines", name);
    expect2(t.data, t.len, -1, NULL, -1, NULL, nl, what);
    {
        at_verify_report rep;
        if (verify_chunks(AT_VERIFY_STRICT, t.data, t.len, 0, &rep) == AT_OK)
            CHECK(digest_is(rep.head, L[nl - 1].p, L[nl - 1].n), "%s: head skips blank lines", name);
        at_verify_report_fini(&rep);
    }

    /* CRLF: the "\r" is part of each line's bytes, so line 1's prev_hash
     * (over the bytes without "\r") no longer matches. */
    REBUILD(CHECK(at_buf_add(&t, lp, ln) == AT_OK && at_buf_addc(&t, '\r') == AT_OK, "oom");
            CHECK(at_buf_addc(&t, '\n') == AT_OK, "oom"); continue);
    snprintf(what, sizeof what, "%s: CRLF", name);
    if (nl > 1)
        expect2(t.data, t.len, 1, ids[1], 1, ids[1], nl, what);

    /* No final newline: the last line still counts and is still checked. */
    snprintf(what, sizeof what, "%s: no final newline", name);
    expect2(s, n - 1, -1, NULL, -1, NULL, nl, what);
    if (nl > 1) {
        const char *ph = memmem(L[nl - 1].p, L[nl - 1].n, ",\"prev_hash\":\"", 14);
        CHECK(ph != NULL, "last line has a prev_hash");
        if (ph) {
            at_buf_reset(&t);
            size_t cut = (size_t)(ph - s);
            CHECK(at_buf_add(&t, s, cut) == AT_OK, "oom");
            CHECK(at_buf_add(&t, ph + 79, (size_t)(s + n - 1 - (ph + 79))) == AT_OK, "oom");
            snprintf(what, sizeof what, "%s: unterminated last line without prev_hash", name);
            expect2(t.data, t.len, (int64_t)nl - 1, ids[nl - 1], -1, NULL, nl, what);
        }
    }

    for (size_t i = 0; i < nl; i++)
        free(ids[i]);
    at_buf_fini(&t);
#undef REBUILD
}

static int fixtures_seen;

static void check_fixture(const char *path, const char *name)
{
    size_t n = 0;
    char *s = t_read_file(path, &n);
    CHECK(s != NULL, "cannot read %s", path);
    if (!s)
        return;
    fixtures_seen++;
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    CHECK(n > 0 && s[n - 1] == '\n', "%s ends with a newline", name);

    for (int m = 0; m < 2; m++) {
        at_verify_mode mode = m ? AT_VERIFY_LEGACY : AT_VERIFY_STRICT;
        at_verify_report whole, one, seven;
        CHECK(verify_chunks(mode, s, n, 0, &whole) == AT_OK, "%s whole", name);
        CHECK(verify_chunks(mode, s, n, 1, &one) == AT_OK, "%s 1-byte", name);
        CHECK(verify_chunks(mode, s, n, 7, &seven) == AT_OK, "%s 7-byte", name);
        CHECK(whole.ok, "%s (mode %d) broken at %lld: %s", name, m, (long long)whole.broken_at, whole.reason);
        CHECK(whole.broken_at == -1 && whole.broken_event_id == NULL && whole.reason[0] == 0,
              "%s: intact report", name);
        CHECK(same_report(&whole, &one), "%s (mode %d): 1-byte chunks differ", name, m);
        CHECK(same_report(&whole, &seven), "%s (mode %d): 7-byte chunks differ", name, m);
        CHECK(whole.total_events == lines, "%s: %llu events, %zu lines", name,
              (unsigned long long)whole.total_events, lines);
        CHECK(whole.bytes == n, "%s: bytes", name);
        CHECK(digest_is(whole.file_sha256, s, n), "%s: file digest", name);
        const char *last = s + n - 1;
        while (last > s && last[-1] != '\n')
            last--;
        CHECK(whole.have_head && digest_is(whole.head, last, (size_t)(s + n - 1 - last)),
              "%s: head is the digest of the last line", name);

        at_verify_report file;
        at_error err = {0};
        CHECK(at_verify_file(path, mode, &file, &err) == AT_OK, "%s: verify_file: %s", name, err.message);
        CHECK(same_report(&whole, &file), "%s: verify_file differs", name);
        at_verify_report_fini(&file);
        at_verify_report_fini(&whole);
        at_verify_report_fini(&one);
        at_verify_report_fini(&seven);
    }
    if (lines >= 3)
        tamper_fixture(name, s, n);
    free(s);
}

static void test_fixtures(void)
{
    char root[4096];
    snprintf(root, sizeof root, "%s", t_src("tests/fixtures"));
    DIR *top = opendir(root);
    CHECK(top != NULL, "cannot open %s", root);
    if (!top)
        return;
    struct dirent *set;
    while ((set = readdir(top))) {
        if (strncmp(set->d_name, "expected", 8) != 0)
            continue;
        char setdir[4608];
        snprintf(setdir, sizeof setdir, "%s/%s", root, set->d_name);
        DIR *sd = opendir(setdir);
        if (!sd)
            continue;
        struct dirent *sess;
        while ((sess = readdir(sd))) {
            if (sess->d_name[0] == '.')
                continue;
            char path[5200], name[600];
            snprintf(path, sizeof path, "%s/%s/events.ndjson", setdir, sess->d_name);
            snprintf(name, sizeof name, "%s/%s", set->d_name, sess->d_name);
            if (access(path, R_OK) == 0)
                check_fixture(path, name);
        }
        closedir(sd);
    }
    closedir(top);
    CHECK(fixtures_seen >= 17, "only %d fixture sessions found", fixtures_seen);
}

/* ---- odd streams ------------------------------------------------------- */

/* Builds a chain by hand: each line gets `{"event_id":"eN"<extra>}` with a
 * correct prev_hash after line 0 unless the line's flag says otherwise.
 * flags[i]: 0 chained, 1 no prev_hash, 2 wrong prev_hash. */
static void hand_chain(at_buf *out, const int *flags, size_t nl, const char *eol)
{
    char prev[AT_SHA256_HEX] = "";
    char line[256];
    at_buf_reset(out);
    for (size_t i = 0; i < nl; i++) {
        int k;
        if (i == 0 || flags[i] == 1)
            k = snprintf(line, sizeof line, "{\"event_id\":\"e%zu\"}%s", i, eol);
        else
            k = snprintf(line, sizeof line, "{\"event_id\":\"e%zu\",\"prev_hash\":\"%s\"}%s", i,
                         flags[i] == 2 ? "0000000000000000000000000000000000000000000000000000000000000000"
                                       : prev,
                         eol);
        hex_of(line, (size_t)k, prev);
        CHECK(at_buf_add(out, line, (size_t)k) == AT_OK && at_buf_addc(out, '\n') == AT_OK, "oom");
    }
}

static void test_odd_streams(void)
{
    at_buf b;
    at_buf_init(&b, 0);

    /* Empty stream, and one of blank lines only: intact, no events, no head. */
    expect2("", 0, -1, NULL, -1, NULL, 0, "empty stream");
    expect2("\n\n   \n\t\r\n", 9, -1, NULL, -1, NULL, 0, "blank lines only");
    at_verify_report rep;
    CHECK(verify_chunks(AT_VERIFY_STRICT, "", 0, 0, &rep) == AT_OK && !rep.have_head && rep.bytes == 0 &&
              digest_is(rep.file_sha256, "", 0),
          "empty stream report");
    at_verify_report_fini(&rep);

    /* A single event without newline. */
    expect2("{\"event_id\":\"a\"}", strlen("{\"event_id\":\"a\"}"), -1, NULL, -1, NULL, 1,
            "one unterminated line");

    /* Pre-chain events: strict wants a prev_hash from line 1; legacy
     * accepts lines without one, each becoming the previous line. */
    int none[] = {0, 1, 1, 1};
    hand_chain(&b, none, 4, "");
    expect2(b.data, b.len, 1, "e1", -1, NULL, 4, "no prev_hash anywhere");
    int mixed[] = {0, 1, 1, 0, 0};
    hand_chain(&b, mixed, 5, "");
    expect2(b.data, b.len, 1, "e1", -1, NULL, 5, "chain resumed after pre-chain events");
    int wrong[] = {0, 1, 0, 2, 0};
    hand_chain(&b, wrong, 5, "");
    expect2(b.data, b.len, 1, "e1", 3, "e3", 5, "wrong prev_hash after pre-chain events");

    /* A chain hashed over CRLF lines is intact: the "\r" is line content. */
    int all[] = {0, 0, 0};
    hand_chain(&b, all, 3, "\r");
    expect2(b.data, b.len, -1, NULL, -1, NULL, 3, "CRLF chain hashed with its CR");
    /* ... and a blank line between them changes nothing. */
    {
        at_buf c;
        at_buf_init(&c, 0);
        const char *nl1 = memchr(b.data, '\n', b.len);
        size_t cut = (size_t)(nl1 - b.data) + 1;
        CHECK(at_buf_add(&c, b.data, cut) == AT_OK && at_buf_adds(&c, "\r\n \n") == AT_OK &&
                  at_buf_add(&c, b.data + cut, b.len - cut) == AT_OK,
              "oom");
        expect2(c.data, c.len, -1, NULL, -1, NULL, 3, "CRLF chain with blank lines");
        at_buf_fini(&c);
    }

    /* The first failure is the one reported. */
    int two[] = {0, 0, 2, 0, 2};
    hand_chain(&b, two, 5, "");
    expect2(b.data, b.len, 2, "e2", 2, "e2", 5, "two failures: the first");

    /* Values the line can hold. */
    char h[AT_SHA256_HEX], line[512];
    const char *l0 = "{\"event_id\":\"a\"}";
    hex_of(l0, strlen(l0), h);
#define TWO(second, at_s, id_s, at_l, id_l, what)                                                            \
    do {                                                                                                     \
        at_buf_reset(&b);                                                                                    \
        snprintf(line, sizeof line, "%s\n" second "\n", l0, h);                                              \
        expect2(line, strlen(line), at_s, id_s, at_l, id_l, 2, what);                                        \
    } while (0)
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"%s\"}", -1, NULL, -1, NULL, "plain pair");
    TWO("{\"prev_hash\":\"%s\",\"event_id\":\"b\"}", -1, NULL, -1, NULL, "member order is free");
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"%.63s\"}", 1, "b", 1, "b", "63 digits");
    TWO("  {\"event_id\":\"b\",\"prev_hash\":\"%s\"}\t", -1, NULL, -1, NULL,
        "whitespace around the object (hashed, still valid)");
    TWO("{\"event_id\":\"\\u0062\\ud83d\",\"prev_hash\":\"x\"}%.0s", 1, "b\xed\xa0\xbd", 1, "b\xed\xa0\xbd",
        "escaped event_id decoded, lone surrogate kept");
    TWO("{\"event_id\":7,\"prev_hash\":\"x\"}%.0s", 1, NULL, 1, NULL, "non-string event_id");
    TWO("{\"event_id\":\"\",\"prev_hash\":\"x\"}%.0s", 1, "", 1, "", "empty event_id");
    TWO("{\"event_id\":\"b\",\"prev_hash\":null}%.0s", 1, "b", -1, NULL, "null prev_hash is absent");
    TWO("{\"event_id\":\"b\",\"prev_hash\":42}%.0s", 1, "b", 1, "b", "numeric prev_hash");
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"x\",\"prev_hash\":\"%s\"}", -1, NULL, -1, NULL,
        "duplicate key: the last value counts");
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"%s\",\"prev_hash\":\"x\"}", 1, "b", 1, "b",
        "duplicate key: the last value counts (bad)");
    TWO("[\"%s\"]", 1, NULL, 1, NULL, "an array is not an event");
    TWO("\"%s\"", 1, NULL, 1, NULL, "a string is not an event");
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"%s\"", 1, NULL, 1, NULL, "unterminated object");
    TWO("{\"event_id\":\"b\",\"prev_hash\":\"%s\"}}", 1, NULL, 1, NULL, "extra data");
    TWO("{\"event_id\":\"b\xff\",\"prev_hash\":\"%s\"}", 1, NULL, 1, NULL, "invalid UTF-8");
    TWO("{\"event_id\":\"b\xed\xa0\x80\",\"prev_hash\":\"%s\"}", 1, NULL, 1, NULL,
        "encoded surrogate is invalid UTF-8");
    TWO("{\"event_id\":\"\xc3\xa9\",\"prev_hash\":\"%s\"}", -1, NULL, -1, NULL, "valid UTF-8");
    TWO("{\"event_id\":\"b\",\"data\":{\"x\":NaN},\"prev_hash\":\"%s\"}", -1, NULL, -1, NULL,
        "NaN is Python JSON");
#undef TWO
    /* Upper-case hex is not the digest's text. */
    {
        char up[AT_SHA256_HEX];
        for (int i = 0; i < 65; i++)
            up[i] = (char)(h[i] >= 'a' && h[i] <= 'f' ? h[i] - 32 : h[i]);
        snprintf(line, sizeof line, "%s\n{\"event_id\":\"b\",\"prev_hash\":\"%s\"}\n", l0, up);
        expect2(line, strlen(line), 1, "b", 1, "b", 2, "upper-case prev_hash");
        /* An escaped but equal prev_hash compares as its decoded text. */
        snprintf(line, sizeof line, "%s\n{\"event_id\":\"b\",\"prev_hash\":\"\\u00%x%x%s\"}\n", l0,
                 (unsigned char)h[0] >> 4, (unsigned char)h[0] & 15, h + 1);
        expect2(line, strlen(line), -1, NULL, -1, NULL, 2, "escaped prev_hash");
    }
    /* Line 0 with a prev_hash is broken in both modes, whatever it holds;
     * with a null one it has none. */
    const char *p0 = "{\"event_id\":\"a\",\"prev_hash\":\"\"}\n";
    expect2(p0, strlen(p0), 0, "a", 0, "a", 1, "line 0 with a prev_hash");
    p0 = "{\"event_id\":\"a\",\"prev_hash\":null}\n";
    expect2(p0, strlen(p0), -1, NULL, -1, NULL, 1, "line 0 null prev_hash");
    /* A first line whose prev_hash happens to match what a verifier held
     * before (zeros when new, the last stream's head when reused) is still
     * broken: line 0 has nothing to chain to. */
    {
        at_verifier *v = at_verifier_new(AT_VERIFY_LEGACY);
        at_error err = {0};
        CHECK(v != NULL, "new");
        if (v) {
            char z[200];
            snprintf(z, sizeof z, "{\"event_id\":\"z\",\"prev_hash\":\"%064d\"}\n", 0);
            CHECK(at_verifier_feed(v, z, strlen(z), &err) == AT_OK &&
                      at_verifier_finish(v, &rep, &err) == AT_OK && !rep.ok && rep.broken_at == 0 &&
                      strstr(rep.reason, "first line") != NULL,
                  "zero prev_hash on line 0: %s", rep.reason);
            at_verify_report_fini(&rep);
            CHECK(at_verifier_feed(v, l0, strlen(l0), &err) == AT_OK &&
                      at_verifier_finish(v, &rep, &err) == AT_OK && rep.ok,
                  "reused verifier, first stream");
            at_verify_report_fini(&rep);
            snprintf(z, sizeof z, "{\"event_id\":\"z\",\"prev_hash\":\"%s\"}", h);
            CHECK(at_verifier_feed(v, z, strlen(z), &err) == AT_OK &&
                      at_verifier_finish(v, &rep, &err) == AT_OK && !rep.ok && rep.broken_at == 0 &&
                      id_is(&rep, "z") && rep.total_events == 1 && rep.bytes == strlen(z),
                  "reused verifier: line 0 chained to the last stream");
            at_verify_report_fini(&rep);
            at_verifier_free(v);
        }
    }
    /* Reasons name the failure (for humans, but they should be right). */
    {
        static const struct {
            const char *text, *reason;
        } R[] = {
            {"{}\n{}\n", "missing"},
            {"{}\n{\"prev_hash\":\"0\"}\n", "does not match"},
            {"{}\n{\"prev_hash\":1}\n", "not a string"},
            {"{}\n{\n", "invalid JSON"},
            {"{}\n[]\n", "not a JSON object"},
            {"{}\n{\"a\":\"\xff\"}\n", "UTF-8"},
            {"{\"prev_hash\":\"0\"}\n", "first line"},
        };
        for (size_t i = 0; i < sizeof R / sizeof *R; i++) {
            CHECK(verify_chunks(AT_VERIFY_STRICT, R[i].text, strlen(R[i].text), 0, &rep) == AT_OK &&
                      !rep.ok && strstr(rep.reason, R[i].reason) != NULL,
                  "reason for %s: '%s' want '%s'", R[i].text, rep.reason, R[i].reason);
            at_verify_report_fini(&rep);
        }
    }
    /* Deep nesting past the cap is a broken line, not an error. */
    {
        at_buf deep;
        at_buf_init(&deep, 0);
        for (int i = 0; i < AT_MAX_JSON_DEPTH + 5; i++)
            CHECK(at_buf_addc(&deep, '[') == AT_OK, "oom");
        for (int i = 0; i < AT_MAX_JSON_DEPTH + 5; i++)
            CHECK(at_buf_addc(&deep, ']') == AT_OK, "oom");
        CHECK(at_buf_addc(&deep, '\n') == AT_OK, "oom");
        expect2(deep.data, deep.len, 0, NULL, 0, NULL, 1, "too deep");
        at_buf_fini(&deep);
    }
    at_buf_fini(&b);
}

/* The line cap: a line of exactly AT_MAX_LINE_BYTES is read (and judged),
 * one byte more fails with AT_ERR_TOO_BIG however it is fed. */
static void test_line_cap(void)
{
    size_t cap = AT_MAX_LINE_BYTES;
    char *big = malloc(cap + 2);
    CHECK(big != NULL, "malloc");
    if (!big)
        return;
    memset(big, 'x', cap + 1);
    big[cap + 1] = '\n';
    at_verify_report rep;
    at_error err = {0};

    /* Exactly at the cap: a (broken) event. */
    big[cap] = '\n';
    CHECK(verify_chunks(AT_VERIFY_STRICT, big, cap + 1, 0, &rep) == AT_OK && !rep.ok && rep.broken_at == 0 &&
              rep.total_events == 1,
          "line at the cap is read");
    at_verify_report_fini(&rep);
    CHECK(verify_chunks(AT_VERIFY_STRICT, big, cap + 1, 1 << 20, &rep) == AT_OK && !rep.ok &&
              rep.total_events == 1,
          "line at the cap is read in pieces");
    at_verify_report_fini(&rep);
    big[cap] = 'x';

    /* One over: in one piece, in pieces, and unterminated. */
    CHECK(verify_chunks(AT_VERIFY_STRICT, big, cap + 2, 0, &rep) == AT_ERR_TOO_BIG, "over the cap, whole");
    at_verify_report_fini(&rep);
    CHECK(verify_chunks(AT_VERIFY_STRICT, big, cap + 2, 1 << 20, &rep) == AT_ERR_TOO_BIG,
          "over the cap, 1 MiB pieces");
    at_verify_report_fini(&rep);
    CHECK(verify_chunks(AT_VERIFY_LEGACY, big, cap + 1, 65536, &rep) == AT_ERR_TOO_BIG,
          "over the cap, unterminated");
    at_verify_report_fini(&rep);

    /* After the error: sticky, the report is safe to finalize, the
     * verifier can be reused after finish. */
    at_verifier *v = at_verifier_new(AT_VERIFY_STRICT);
    CHECK(v != NULL, "new");
    if (v) {
        CHECK(at_verifier_feed(v, "{}\n", 3, &err) == AT_OK, "good line first");
        err = (at_error){0};
        CHECK(at_verifier_feed(v, big, cap + 2, &err) == AT_ERR_TOO_BIG && err.code == AT_ERR_TOO_BIG,
              "too big");
        CHECK(err.line == 1 && err.offset == 3, "error position line %lld offset %lld", (long long)err.line,
              (long long)err.offset);
        CHECK(strstr(err.message, "longer than") != NULL, "message: %s", err.message);
        CHECK(at_verifier_feed(v, "{}\n", 3, &err) == AT_ERR_TOO_BIG, "sticky");
        CHECK(at_verifier_finish(v, &rep, &err) == AT_ERR_TOO_BIG && rep.broken_event_id == NULL,
              "finish reports it");
        at_verify_report_fini(&rep);
        CHECK(at_verifier_feed(v, "{}\n{}\n", 6, &err) == AT_OK, "usable again");
        CHECK(at_verifier_finish(v, &rep, &err) == AT_OK && !rep.ok && rep.broken_at == 1 &&
                  rep.total_events == 2 && rep.bytes == 6,
              "fresh stream after an error");
        at_verify_report_fini(&rep);
        at_verifier_free(v);
    }
    at_verifier_free(NULL);
    at_verify_report_fini(NULL);
    free(big);
}

static void test_verify_file_errors(void)
{
    at_verify_report rep;
    at_error err = {0};
    at_result r = at_verify_file("/nonexistent/dir/events.ndjson", AT_VERIFY_STRICT, &rep, &err);
    CHECK(r == AT_ERR_NOT_FOUND && err.code == AT_ERR_NOT_FOUND && err.sys_errno == ENOENT,
          "missing file: %d", r);
    CHECK(strstr(err.message, "/nonexistent/dir/events.ndjson") != NULL, "message names the file: %s",
          err.message);
    at_verify_report_fini(&rep);
    err = (at_error){0};
    r = at_verify_file("/", AT_VERIFY_STRICT, &rep, &err);
    CHECK(r == AT_ERR_IO && err.sys_errno == EISDIR, "a directory: %d (%s)", r, err.message);
    at_verify_report_fini(&rep);
}

/* A long chain streamed from the writer straight into the verifier, through
 * odd-sized pieces: intact, and the verifier's peak memory does not grow
 * with the stream. */
typedef struct {
    at_verifier *v;
    char piece[65521];
    size_t len;
    at_result r;
} pipe_ctx;

static at_result pipe_sink(void *ctx, const char *p, size_t n)
{
    pipe_ctx *c = ctx;
    while (n) {
        size_t k = sizeof c->piece - c->len < n ? sizeof c->piece - c->len : n;
        memcpy(c->piece + c->len, p, k);
        c->len += k;
        p += k;
        n -= k;
        if (c->len == sizeof c->piece) {
            if ((c->r = at_verifier_feed(c->v, c->piece, c->len, NULL)) != AT_OK)
                return c->r;
            c->len = 0;
        }
    }
    return AT_OK;
}

static long peak_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void stream_chain(int events, long *peak)
{
    static pipe_ctx c;
    at_chain_writer w;
    c.v = at_verifier_new(AT_VERIFY_STRICT);
    c.len = 0;
    c.r = AT_OK;
    CHECK(c.v && at_chain_writer_init(&w, pipe_sink, &c, NULL) == AT_OK, "init");
    if (!c.v)
        return;
    char ts[32], id[40], data[200];
    at_result r = AT_OK;
    for (int i = 0; i < events && r == AT_OK; i++) {
        snprintf(ts, sizeof ts, "%d.%03d", 1770000000 + i / 10, i % 1000);
        snprintf(id, sizeof id, "\"%012x\"", (unsigned)i * 2654435761u);
        snprintf(data, sizeof data,
                 "{\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"ls -la /tmp/%d\"},"
                 "\"n\":%d,\"ok\":true}",
                 i, i);
        at_event_json e = {.event_type = AT_SLICE("\"tool_call\""),
                           .timestamp = {ts, strlen(ts)},
                           .event_id = {id, strlen(id)},
                           .session_id = AT_SLICE("\"stream\""),
                           .data = {data, strlen(data)}};
        r = at_chain_write(&w, &e);
    }
    CHECK(r == AT_OK, "stream write");
    if (c.len)
        CHECK(at_verifier_feed(c.v, c.piece, c.len, NULL) == AT_OK, "last piece");
    at_verify_report rep;
    CHECK(at_verifier_finish(c.v, &rep, NULL) == AT_OK, "finish");
    CHECK(rep.ok && rep.total_events == (uint64_t)events, "streamed chain of %d: ok=%d total=%llu", events,
          rep.ok, (unsigned long long)rep.total_events);
    uint8_t d[AT_SHA256_LEN];
    at_chain_writer_digest(&w, d);
    CHECK(memcmp(d, rep.file_sha256, AT_SHA256_LEN) == 0 && memcmp(w.head, rep.head, AT_SHA256_LEN) == 0,
          "streamed digests agree");
    at_verify_report_fini(&rep);
    at_chain_writer_fini(&w);
    at_verifier_free(c.v);
    *peak = peak_kib();
}

static void test_stream_memory(void)
{
    long small, large;
    stream_chain(2000, &small);
    stream_chain(200000, &large); /* ~45 MB */
    /* AddressSanitizer's quarantine keeps every freed block (OpenSSL allocates
     * one per digest init), so peak RSS means nothing under it. */
#if defined(__SANITIZE_ADDRESS__)
    (void)small;
    (void)large;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    (void)small;
    (void)large;
#else
    CHECK(large - small < 8 * 1024, "peak memory grew by %ld KiB", large - small);
#endif
#else
    CHECK(large - small < 8 * 1024, "peak memory grew by %ld KiB", large - small);
#endif
}

int main(void)
{
    test_stream_memory(); /* first: it compares peaks */
    test_sha256();
    test_writer();
    test_fixtures();
    test_odd_streams();
    test_line_cap();
    test_verify_file_errors();
    return t_done("test_chain");
}
