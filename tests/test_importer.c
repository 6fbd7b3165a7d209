/* test_importer.c - the streaming importer: every fixture at every chunking
 * gives the reference bytes; line endings, stripping, invalid UTF-8, huge
 * lines, events held until a late session id (spilled to disk). */
#include "agenttrace/importer.h"
#include "agenttrace/sha256.h"
#include "testlib.h"

#include <dirent.h>
#include <unistd.h>

typedef struct {
    at_result r;
    at_error err;
    at_import_result res;
    char *out; /* events.ndjson bytes */
    size_t out_len;
} run;

/* Imports data fed in chunks of `chunk` bytes (0: whole). */
static void import_mem(const char *data, size_t n, size_t chunk, const char *source, run *rn)
{
    char path[] = "/tmp/at-test-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    memset(rn, 0, sizeof *rn);
    at_import_options o = {.source = source, .out_fd = fd, .tmp_dir = "/tmp"};
    at_import *im = at_import_new(&o, &rn->err);
    rn->r = im ? AT_OK : AT_ERR_NOMEM;
    if (!chunk)
        chunk = n ? n : 1;
    for (size_t off = 0; rn->r == AT_OK && off < n; off += chunk)
        rn->r = at_import_feed(im, data + off, n - off < chunk ? n - off : chunk, &rn->err);
    if (rn->r == AT_OK)
        rn->r = at_import_finish(im, &rn->res, &rn->err);
    at_import_free(im);
    off_t size = lseek(fd, 0, SEEK_END);
    rn->out = malloc((size_t)size + 1);
    rn->out_len = (size_t)pread(fd, rn->out, (size_t)size, 0);
    close(fd);
}

static void run_fini(run *rn)
{
    at_import_result_fini(&rn->res);
    free(rn->out);
}

/* The reference events for a session, from tests/fixtures/expected*. */
static char *expected_events(const char *sid, size_t *len)
{
    char p[1024];
    snprintf(p, sizeof p, "tests/fixtures/expected/%s/events.ndjson", sid);
    char *s = t_read_file(t_src(p), len);
    if (!s) {
        snprintf(p, sizeof p, "tests/fixtures/expected-edge/%s/events.ndjson", sid);
        s = t_read_file(t_src(p), len);
    }
    return s;
}

static void check_file(const char *rel, const char *base)
{
    size_t n, want_len = 0;
    char *data = t_read_file(t_src(rel), &n);
    CHECK(data != NULL, "read %s", rel);
    if (!data)
        return;
    run whole;
    import_mem(data, n, 0, base, &whole);
    CHECK(whole.r == AT_OK, "%s: %s", rel, whole.err.message);
    char *want = whole.r == AT_OK ? expected_events(whole.res.session_id, &want_len) : NULL;
    /* Subagent events do not depend on the parent; all of them are in expected. */
    CHECK(want && want_len == whole.out_len && memcmp(want, whole.out, want_len) == 0,
          "%s: events differ from the reference", rel);
    /* Every chunking gives the same bytes; 1-byte chunks only for small files. */
    static const size_t chunks[] = {1, 2, 3, 7, 64, 4093, 65536};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        if (chunks[i] < 7 && n > 300000)
            continue;
        run part;
        import_mem(data, n, chunks[i], base, &part);
        CHECK(part.r == AT_OK && part.out_len == whole.out_len &&
                  memcmp(part.out, whole.out, whole.out_len) == 0,
              "%s: chunks of %zu differ", rel, chunks[i]);
        run_fini(&part);
    }
    free(want);
    run_fini(&whole);
    free(data);
}

static void check_fixtures(void)
{
    static const char *const files[] = {
        "claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl",
        "claude/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
        "claude/short.jsonl", "claude/subagent.jsonl", "claude/tool_heavy.jsonl",
        "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-a881341.jsonl",
        "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-acompact-fffbd0.jsonl",
        "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-a2898e3.jsonl",
        "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-acompact-e1f845.jsonl",
        "claude-edge/tools.jsonl", "claude-edge/late-session.jsonl", "claude-edge/unicode.jsonl",
        "claude-edge/secrets.jsonl", "claude-edge/empty.jsonl", "claude-edge/structure.jsonl",
        "claude-edge/no-session-id.jsonl", "claude-edge/numbers.jsonl",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "tests/fixtures/%s", files[i]);
        const char *base = strrchr(files[i], '/') + 1;
        check_file(rel, base);
    }
}

/* Replaces every "\n" of s by `nl`. */
static char *renewline(const char *s, size_t n, const char *nl, size_t *out_len)
{
    size_t k = strlen(nl), m = 0;
    char *o = malloc(n * k + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(o + m, nl, k);
            m += k;
        } else {
            o[m++] = s[i];
        }
    }
    *out_len = m;
    return o;
}

static void check_line_endings(void)
{
    size_t n;
    char *data = t_read_file(t_src("tests/fixtures/claude-edge/tools.jsonl"), &n);
    run ref;
    import_mem(data, n, 0, "tools.jsonl", &ref);
    static const char *const endings[] = {"\r\n", "\r", "\n\n", "\r\r\n"};
    for (size_t e = 0; e < 4; e++) {
        size_t m;
        char *conv = renewline(data, n, endings[e], &m);
        for (size_t chunk = 0; chunk < 4; chunk += 3) {
            run got;
            import_mem(conv, m, chunk, "tools.jsonl", &got);
            CHECK(got.r == AT_OK && got.out_len == ref.out_len && memcmp(got.out, ref.out, ref.out_len) == 0,
                  "line ending %zu (chunk %zu) changes the output", e, chunk);
            run_fini(&got);
        }
        free(conv);
    }
    run_fini(&ref);
    free(data);
}

static void check_stripping(void)
{
    const char *plain = "{\"type\":\"user\",\"sessionId\":\"s1\",\"uuid\":\"u-1\",\"timestamp\":\"2026-01-01T00:00:00Z\","
                        "\"message\":{\"content\":\"hi\"}}\n";
    /* NBSP, ideographic space, vertical tab, U+2028 and U+001C around the line */
    const char *padded = "\xc2\xa0\xe3\x80\x80\x0b{\"type\":\"user\",\"sessionId\":\"s1\",\"uuid\":\"u-1\",\"timestamp\":"
                         "\"2026-01-01T00:00:00Z\",\"message\":{\"content\":\"hi\"}}\xe2\x80\xa8\x1c  \n";
    run a, b;
    import_mem(plain, strlen(plain), 0, "x.jsonl", &a);
    import_mem(padded, strlen(padded), 0, "x.jsonl", &b);
    CHECK(a.r == AT_OK && b.r == AT_OK && a.out_len == b.out_len && memcmp(a.out, b.out, a.out_len) == 0,
          "Unicode whitespace around a line is stripped");
    CHECK(a.res.events == 2, "one prompt and session_end (%llu)", (unsigned long long)a.res.events);
    run_fini(&a);
    run_fini(&b);

    const char *bom = "\xef\xbb\xbf{\"type\":\"user\",\"sessionId\":\"s1\",\"message\":{\"content\":\"hi\"}}\n[1]\n\"s\"\n";
    run c;
    import_mem(bom, strlen(bom), 0, "bom.jsonl", &c);
    CHECK(c.r == AT_OK && c.res.skipped_lines == 3 && c.res.events == 1,
          "a BOM line and non-object lines are skipped (skipped %llu)", (unsigned long long)c.res.skipped_lines);
    CHECK(c.r == AT_OK && strcmp(c.res.session_id, "bom") == 0, "fallback id from the file name");
    run_fini(&c);
}

static void check_invalid_utf8(void)
{
    size_t n;
    char *data = t_read_file(t_src("tests/fixtures/claude-edge/unicode.jsonl"), &n);
    static const struct {
        size_t at;
        const char *bytes;
    } bad[] = {{10, "\xc0\xaf"}, {500, "\xed\xa0\x80"}, {1000, "\xff"}, {0, "\x80"}};
    for (size_t i = 0; i < 4; i++) {
        size_t bl = strlen(bad[i].bytes);
        char *copy = malloc(n + bl);
        memcpy(copy, data, bad[i].at);
        memcpy(copy + bad[i].at, bad[i].bytes, bl);
        memcpy(copy + bad[i].at + bl, data + bad[i].at, n - bad[i].at);
        for (size_t chunk = 0; chunk < 8; chunk += 7) {
            run r;
            import_mem(copy, n + bl, chunk, "u.jsonl", &r);
            CHECK(r.r == AT_ERR_UTF8 && r.err.offset == (int64_t)bad[i].at,
                  "invalid UTF-8 at %zu reported at %lld (chunk %zu)", bad[i].at, (long long)r.err.offset, chunk);
            run_fini(&r);
        }
        free(copy);
    }
    /* A sequence cut by the end of the stream. */
    char *cut = malloc(n + 1);
    memcpy(cut, data, n);
    cut[n] = '\xe2';
    run r;
    import_mem(cut, n + 1, 0, "u.jsonl", &r);
    CHECK(r.r == AT_ERR_UTF8 && r.err.offset == (int64_t)n, "truncated final sequence at %zu", n);
    run_fini(&r);
    free(cut);
    free(data);
}

static void check_huge_lines(void)
{
    /* A 20 MB prompt: kept in one line buffer, cut to 2000 code points. */
    size_t big = 20u << 20;
    const char *head = "{\"type\":\"user\",\"sessionId\":\"s\",\"uuid\":\"abc\",\"message\":{\"content\":\"";
    const char *tail = "\"}}\n";
    size_t n = strlen(head) + big + strlen(tail);
    char *s = malloc(n);
    memcpy(s, head, strlen(head));
    for (size_t i = 0; i < big; i += 2)
        memcpy(s + strlen(head) + i, "\xc3\xa9", 2); /* é */
    memcpy(s + strlen(head) + big, tail, strlen(tail));
    run r;
    import_mem(s, n, 1 << 20, "huge.jsonl", &r);
    CHECK(r.r == AT_OK && r.res.events == 2, "huge line imported");
    /* 2000 x \u00e9 = 12000 bytes of prompt */
    const char *p = r.out ? strstr(r.out, "\"prompt\":\"") : NULL;
    const char *q = p ? strstr(p + 10, "\"}") : NULL;
    CHECK(p && q && q - (p + 10) == 12000, "prompt cut to 2000 code points");
    CHECK(r.out && strstr(r.out, "\"event_id\":\"abc\""), "a uuid shorter than 12 characters is the id");
    run_fini(&r);
    free(s);

    /* Past AT_MAX_LINE_BYTES: refused with an error, not a crash. */
    size_t over = (size_t)AT_MAX_LINE_BYTES + 10;
    char *o = malloc(over);
    memset(o, 'x', over);
    run t;
    import_mem(o, over, 1 << 20, "over.jsonl", &t);
    CHECK(t.r == AT_ERR_TOO_BIG, "a line over the cap fails (%d)", t.r);
    run_fini(&t);
    free(o);
}

static void check_late_session_spill(void)
{
    /* 40000 events before any entry names the session: more than the
     * in-memory cap, so they go through the spill file. */
    at_buf b;
    at_buf_init(&b, 0);
    const int count = 40000;
    for (int i = 0; i < count; i++)
        if (at_buf_printf(&b, "{\"type\":\"user\",\"timestamp\":\"2026-01-01T00:00:%02dZ\",\"message\":{\"content\":"
                              "\"prompt number %d with some padding to make it longer than a few bytes\"}}\n",
                          i % 60, i) != AT_OK)
            break;
    if (at_buf_adds(&b, "{\"type\":\"user\",\"sessionId\":\"late-id\",\"message\":{\"content\":\"last\"}}\n") != AT_OK)
        return;
    run r;
    import_mem(b.data, b.len, 65536, "spill.jsonl", &r);
    CHECK(r.r == AT_OK && r.res.events == (uint64_t)count + 2, "all held events written (%llu)",
          (unsigned long long)r.res.events);
    CHECK(r.r == AT_OK && strcmp(r.res.session_id, "late-id") == 0, "late session id");
    /* Every line names the late session, and the chain holds. */
    size_t lines = 0, good = 0;
    uint8_t prev[AT_SHA256_LEN];
    for (char *l = r.out, *e; l && l < r.out + r.out_len; l = e + 1) {
        e = memchr(l, '\n', (size_t)(r.out + r.out_len - l));
        if (!e)
            break;
        bool ok = strstr(l, "\"session_id\":\"late-id\"") != NULL && strstr(l, "\"session_id\":\"late-id\"") < e;
        if (lines > 0) {
            char hex[AT_SHA256_HEX];
            at_hex(prev, AT_SHA256_LEN, hex);
            char *ph = strstr(l, "\"prev_hash\":\"");
            ok = ok && ph && ph < e && memcmp(ph + 13, hex, 64) == 0;
        }
        at_sha256_oneshot(l, (size_t)(e - l), prev);
        good += ok;
        lines++;
    }
    CHECK(lines == (size_t)count + 2 && good == lines, "chain over replayed events (%zu/%zu)", good, lines);
    run_fini(&r);
    at_buf_fini(&b);
}

int main(void)
{
    check_fixtures();
    check_line_endings();
    check_stripping();
    check_invalid_utf8();
    check_huge_lines();
    check_late_session_spill();
    return t_done("test_importer");
}
