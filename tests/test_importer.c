/* test_importer.c - the streaming importer: every fixture at every chunking
 * gives the reference bytes; line endings, stripping, invalid UTF-8, huge
 * lines, events held until a late session id (spilled to disk), event ids
 * from uuids holding any characters (tests/vectors/event_ids.tsv). */
#include "agenttrace/importer.h"
#include "agenttrace/json.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "testlib.h"

#include <dirent.h>
#include <unistd.h>

/* Redaction for import_mem (NULL: off). */
static at_redact *g_redact;

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
    at_import_options o = {.source = source, .out_fd = fd, .tmp_dir = "/tmp", .redact = g_redact};
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

/* The reference events for a session, from tests/fixtures/expected*
 * (the -redacted sets when redaction is on). */
static char *expected_events(const char *sid, size_t *len)
{
    char p[1024];
    const char *suffix = g_redact ? "-redacted" : "";
    snprintf(p, sizeof p, "tests/fixtures/expected%s/%s/events.ndjson", suffix, sid);
    char *s = t_read_file(t_src(p), len);
    if (!s) {
        snprintf(p, sizeof p, "tests/fixtures/expected-edge%s/%s/events.ndjson", suffix, sid);
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
          "%s: events differ from the reference (redaction %s)", rel, g_redact ? "on" : "off");
    /* Every chunking gives the same bytes; 1-byte chunks only for small files. */
    static const size_t chunks[] = {1, 2, 3, 7, 64, 4093, 65536};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        if (chunks[i] < 7 && n > 300000)
            continue;
        run part;
        import_mem(data, n, chunks[i], base, &part);
        CHECK(part.r == AT_OK && part.out_len == whole.out_len &&
                  memcmp(part.out, whole.out, whole.out_len) == 0,
              "%s: chunks of %zu differ (redaction %s)", rel, chunks[i], g_redact ? "on" : "off");
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
        "claude/short.jsonl",
        "claude/subagent.jsonl",
        "claude/tool_heavy.jsonl",
        "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-a881341.jsonl",
        "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-acompact-fffbd0.jsonl",
        "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-a2898e3.jsonl",
        "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-acompact-e1f845.jsonl",
        "claude-edge/tools.jsonl",
        "claude-edge/late-session.jsonl",
        "claude-edge/unicode.jsonl",
        "claude-edge/secrets.jsonl",
        "claude-edge/empty.jsonl",
        "claude-edge/structure.jsonl",
        "claude-edge/no-session-id.jsonl",
        "claude-edge/numbers.jsonl",
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
    const char *plain =
        "{\"type\":\"user\",\"sessionId\":\"s1\",\"uuid\":\"u-1\",\"timestamp\":\"2026-01-01T00:00:00Z\","
        "\"message\":{\"content\":\"hi\"}}\n";
    /* NBSP, ideographic space, vertical tab, U+2028 and U+001C around the line */
    const char *padded =
        "\xc2\xa0\xe3\x80\x80\x0b{\"type\":\"user\",\"sessionId\":\"s1\",\"uuid\":\"u-1\",\"timestamp\":"
        "\"2026-01-01T00:00:00Z\",\"message\":{\"content\":\"hi\"}}\xe2\x80\xa8\x1c  \n";
    run a, b;
    import_mem(plain, strlen(plain), 0, "x.jsonl", &a);
    import_mem(padded, strlen(padded), 0, "x.jsonl", &b);
    CHECK(a.r == AT_OK && b.r == AT_OK && a.out_len == b.out_len && memcmp(a.out, b.out, a.out_len) == 0,
          "Unicode whitespace around a line is stripped");
    CHECK(a.res.events == 2, "one prompt and session_end (%llu)", (unsigned long long)a.res.events);
    run_fini(&a);
    run_fini(&b);

    const char *bom =
        "\xef\xbb\xbf{\"type\":\"user\",\"sessionId\":\"s1\",\"message\":{\"content\":\"hi\"}}\n[1]\n\"s\"\n";
    run c;
    import_mem(bom, strlen(bom), 0, "bom.jsonl", &c);
    CHECK(c.r == AT_OK && c.res.skipped_lines == 3 && c.res.events == 1,
          "a BOM line and non-object lines are skipped (skipped %llu)",
          (unsigned long long)c.res.skipped_lines);
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
                  "invalid UTF-8 at %zu reported at %lld (chunk %zu)", bad[i].at, (long long)r.err.offset,
                  chunk);
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
        if (at_buf_printf(
                &b,
                "{\"type\":\"user\",\"timestamp\":\"2026-01-01T00:00:%02dZ\",\"message\":{\"content\":"
                "\"prompt number %d with some padding to make it longer than a few bytes\"}}\n",
                i % 60, i) != AT_OK)
            break;
    if (at_buf_adds(&b,
                    "{\"type\":\"user\",\"sessionId\":\"late-id\",\"message\":{\"content\":\"last\"}}\n") !=
        AT_OK)
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
        bool ok =
            strstr(l, "\"session_id\":\"late-id\"") != NULL && strstr(l, "\"session_id\":\"late-id\"") < e;
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

/* ---- event ids from odd uuids (tests/vectors/event_ids.tsv) ------------- */

typedef struct {
    const char *lit; /* the uuid as a JSON string literal */
    size_t lit_len;
    const char *tok[3]; /* event_id tokens for k = 0, 1, 2; "" means no event_id */
    size_t tok_len[3];
} eid_vector;

/* Splits the vectors file (kept in *text) into v; returns the count. */
static size_t load_eid_vectors(char **text, eid_vector **v)
{
    size_t n = 0, cap = 0;
    *v = NULL;
    *text = t_read_file(t_src("tests/vectors/event_ids.tsv"), NULL);
    if (!*text)
        return 0;
    for (char *l = *text, *e; *l; l = e + 1) {
        e = strchr(l, '\n');
        if (!e)
            e = l + strlen(l);
        if (e > l && *l != '#') {
            eid_vector x;
            const char *f = l;
            size_t i = 0;
            for (; i < 4; i++) {
                const char *t = memchr(f, '\t', (size_t)(e - f));
                const char *end = i < 3 ? t : e;
                if (!end)
                    break;
                if (i == 0) {
                    x.lit = f;
                    x.lit_len = (size_t)(end - f);
                } else {
                    x.tok[i - 1] = f;
                    x.tok_len[i - 1] = (size_t)(end - f);
                }
                f = end + 1;
            }
            if (i == 4) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    *v = realloc(*v, cap * sizeof **v);
                }
                (*v)[n++] = x;
            }
        }
        if (!*e)
            break;
    }
    return n;
}

/* An assistant entry with the uuid and three events: tool_call (k=0, the
 * Agent call that spawns "a1"), tool_call (k=1), assistant_response (k=2). */
static void add_eid_entry(at_buf *b, const eid_vector *v, bool with_sid, size_t pad)
{
    at_result r =
        at_buf_printf(b,
                      "{\"type\":\"assistant\",%s\"uuid\":%.*s,\"timestamp\":\"2026-01-01T00:00:01Z\","
                      "\"message\":{\"model\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":"
                      "\"toolu_1\",\"name\":\"Agent\",\"input\":{\"subagent_type\":\"x\"}},"
                      "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"Bash\",\"input\":{}},"
                      "{\"type\":\"text\",\"text\":\"hi",
                      with_sid ? "\"sessionId\":\"s-ev\"," : "", (int)v->lit_len, v->lit);
    for (size_t i = 0; r == AT_OK && i < pad; i++)
        r = at_buf_addc(b, 'p');
    if (r == AT_OK)
        r = at_buf_adds(b, "\"}]}}\n");
    CHECK(r == AT_OK, "building a transcript");
}

/* The transcript line that names "a1" as spawned by toolu_1. */
static void add_eid_link(at_buf *b)
{
    CHECK(at_buf_adds(b, "{\"type\":\"user\",\"sessionId\":\"s-ev\",\"toolUseResult\":{\"agentId\":\"a1\"},"
                         "\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
                         "\"content\":\"done\"}]}}\n") == AT_OK,
          "building a transcript");
}

/* Checks that every line of out is a JSON object and that lines first,
 * first+1, first+2 carry the vector's event ids. Returns the line count. */
static size_t check_eid_lines(const char *out, size_t len, size_t first, const eid_vector *v,
                              const char *what)
{
    at_json_doc d;
    at_json_doc_init(&d);
    size_t no = 0;
    for (const char *l = out, *e; l && l < out + len; l = e + 1, no++) {
        e = memchr(l, '\n', (size_t)(out + len - l));
        if (!e)
            e = out + len;
        bool ok = at_json_parse(&d, l, (size_t)(e - l), NULL) == AT_OK && at_json_is(&d, 0, AT_JSON_OBJECT);
        CHECK(ok, "%s %.*s: line %zu is not a JSON object: %.*s", what, (int)v->lit_len, v->lit, no,
              (int)(e - l), l);
        if (!ok || no < first || no >= first + 3)
            continue;
        size_t k = no - first;
        uint32_t id = at_json_get(&d, 0, "event_id");
        const char *tok = "";
        size_t tok_len = 0;
        if (at_json_is(&d, id, AT_JSON_STRING)) {
            tok = d.src + d.nodes[id].off - 1; /* the token, quotes included */
            tok_len = d.nodes[id].len + 2;
        } else if (id == AT_JSON_NONE && v->tok_len[k] == 2) {
            tok = "\"\""; /* left out, as Python drops "" */
            tok_len = 2;
        }
        CHECK(tok_len == v->tok_len[k] && memcmp(tok, v->tok[k], tok_len) == 0,
              "%s %.*s: event_id k=%zu: got [%.*s] want [%.*s]", what, (int)v->lit_len, v->lit, k,
              (int)tok_len, tok, (int)v->tok_len[k], v->tok[k]);
    }
    at_json_doc_fini(&d);
    return no;
}

/* The link to "a1" holds the k=0 id decoded, NULs and all. */
static void check_eid_link(const run *rn, const eid_vector *v)
{
    at_json_doc d;
    at_buf want;
    at_json_doc_init(&d);
    at_buf_init(&want, 0);
    CHECK(at_json_parse(&d, v->tok[0], v->tok_len[0], NULL) == AT_OK &&
              at_json_str_decode(&d, 0, &want) == AT_OK,
          "vector token %.*s parses", (int)v->tok_len[0], v->tok[0]);
    bool ok = rn->res.nlinks == 1 && strcmp(rn->res.links[0].agent_id, "a1") == 0 &&
              rn->res.links[0].event_id_len == want.len &&
              memcmp(rn->res.links[0].event_id, want.data ? want.data : "", want.len) == 0;
    CHECK(ok, "link of %.*s: parent event id [%s] (%zu links)", (int)v->lit_len, v->lit,
          rn->res.nlinks ? rn->res.links[0].event_id : "", rn->res.nlinks);
    at_buf_fini(&want);
    at_json_doc_fini(&d);
}

static void check_event_id_vectors(void)
{
    char *text;
    eid_vector *v;
    size_t nv = load_eid_vectors(&text, &v);
    CHECK(nv >= 30, "event id vectors loaded (%zu)", nv);
    for (size_t i = 0; i < nv; i++) {
        /* direct: the session id is known from the entry itself */
        at_buf b;
        at_buf_init(&b, 0);
        add_eid_entry(&b, &v[i], true, 0);
        add_eid_link(&b);
        run whole, bytes;
        import_mem(b.data, b.len, 0, "ev.jsonl", &whole);
        CHECK(whole.r == AT_OK && whole.res.events == 5, "import %.*s: %s", (int)v[i].lit_len, v[i].lit,
              whole.err.message);
        CHECK(check_eid_lines(whole.out, whole.out_len, 0, &v[i], "direct") == 5, "five lines");
        check_eid_link(&whole, &v[i]);
        import_mem(b.data, b.len, 1, "ev.jsonl", &bytes);
        CHECK(bytes.r == AT_OK && bytes.out_len == whole.out_len &&
                  memcmp(bytes.out, whole.out, whole.out_len) == 0,
              "%.*s: 1-byte chunks give the same bytes", (int)v[i].lit_len, v[i].lit);
        run_fini(&bytes);
        run_fini(&whole);

        /* pending: the entry comes before any session id and is replayed */
        at_buf_reset(&b);
        add_eid_entry(&b, &v[i], false, 0);
        add_eid_link(&b);
        run late, late1;
        import_mem(b.data, b.len, 0, "ev.jsonl", &late);
        CHECK(late.r == AT_OK && late.res.events == 5 && strcmp(late.res.session_id, "s-ev") == 0,
              "late import %.*s: %s", (int)v[i].lit_len, v[i].lit, late.err.message);
        CHECK(check_eid_lines(late.out, late.out_len, 0, &v[i], "pending") == 5, "five lines");
        check_eid_link(&late, &v[i]);
        import_mem(b.data, b.len, 1, "ev.jsonl", &late1);
        CHECK(late1.r == AT_OK && late1.out_len == late.out_len &&
                  memcmp(late1.out, late.out, late.out_len) == 0,
              "%.*s: pending, 1-byte chunks give the same bytes", (int)v[i].lit_len, v[i].lit);
        run_fini(&late1);
        run_fini(&late);
        at_buf_fini(&b);
    }

    /* pending past the in-memory cap: records go through the spill file
     * and come back with their ids intact (every vector, many times) */
    at_buf b;
    at_buf_init(&b, 0);
    size_t entries = 0;
    while (nv && b.len < 2 * (size_t)AT_PENDING_MEM_BYTES) {
        add_eid_entry(&b, &v[entries % nv], false, 3000);
        entries++;
    }
    CHECK(
        at_buf_adds(&b, "{\"type\":\"user\",\"sessionId\":\"s-ev\",\"message\":{\"content\":\"named\"}}\n") ==
            AT_OK,
        "building a transcript");
    run sp;
    import_mem(b.data, b.len, 65536, "ev.jsonl", &sp);
    CHECK(sp.r == AT_OK && sp.res.events == entries * 3 + 2, "spilled import: %llu events",
          (unsigned long long)sp.res.events);
    size_t line = 0;
    for (const char *l = sp.out; nv && l && line < entries * 3; line += 3) {
        const char *e = l;
        for (int j = 0; j < 3 && e; j++) {
            e = memchr(e, '\n', (size_t)(sp.out + sp.out_len - e));
            e = e ? e + 1 : NULL;
        }
        if (!e)
            break;
        check_eid_lines(l, (size_t)(e - l), 0, &v[(line / 3) % nv], "spilled");
        l = e;
    }
    CHECK(line == entries * 3, "every spilled entry checked (%zu of %zu)", line / 3, entries);
    run_fini(&sp);
    at_buf_fini(&b);
    free(v);
    free(text);
}

/* Imports a transcript held in memory into a store; false on failure. */
static bool store_import(at_store *st, const at_buf *b, const char *source)
{
    at_error err;
    at_stage stage;
    if (at_store_stage(st, &stage, &err) != AT_OK)
        return false;
    at_import_options o = {.source = source, .out_fd = stage.fd};
    at_import *im = at_import_new(&o, &err);
    at_import_result res;
    memset(&res, 0, sizeof res);
    at_commit_info info;
    bool ok = im && at_import_feed(im, b->data, b->len, &err) == AT_OK &&
              at_import_finish(im, &res, &err) == AT_OK &&
              at_store_commit_import(st, &stage, &res, &info, &err) == AT_OK;
    if (!ok) {
        fprintf(stderr, "store import: %s\n", err.message);
        at_stage_discard(&stage);
    }
    at_import_result_fini(&res);
    at_import_free(im);
    return ok;
}

/* The subagent's meta.json carries the spawning call's event id
 * (parent_event_id) escaped as json.dumps does, whichever of parent and
 * child is stored first; a dash-only uuid gives "" and no field. */
static void check_event_id_links_in_store(void)
{
    char *text = NULL;
    eid_vector *v = NULL;
    size_t nv = load_eid_vectors(&text, &v);
    at_buf parent, child;
    at_buf_init(&parent, 0);
    at_buf_init(&child, 0);
    CHECK(at_buf_adds(&child,
                      "{\"type\":\"user\",\"sessionId\":\"s-ev\",\"agentId\":\"a1\",\"uuid\":\"c-1\","
                      "\"timestamp\":\"2026-01-01T00:00:02Z\",\"message\":{\"content\":\"go\"}}\n") == AT_OK,
          "building a transcript");
    size_t checked = 0;
    for (size_t i = 0; i < nv; i++) {
        at_buf_reset(&parent);
        add_eid_entry(&parent, &v[i], true, 0);
        add_eid_link(&parent);
        for (int order = 0; order < 2; order++) {
            char tmpl[] = "/tmp/test_importer_store.XXXXXX";
            if (!mkdtemp(tmpl)) {
                CHECK(0, "mkdtemp");
                continue;
            }
            at_error err;
            at_store *st = at_store_open(tmpl, &err);
            bool ok = st != NULL;
            if (ok && order == 0)
                ok = store_import(st, &parent, "p.jsonl") && store_import(st, &child, "agent-a1.jsonl");
            else if (ok)
                ok = store_import(st, &child, "agent-a1.jsonl") && store_import(st, &parent, "p.jsonl");
            char path[512];
            snprintf(path, sizeof path, "%s/agent-a1.s-ev/meta.json", tmpl);
            char *meta = ok ? t_read_file(path, NULL) : NULL;
            char want[256];
            bool empty = v[i].tok_len[0] == 2;
            snprintf(want, sizeof want, "\"parent_event_id\": %.*s,", (int)v[i].tok_len[0], v[i].tok[0]);
            bool good =
                meta && (empty ? strstr(meta, "\"parent_event_id\"") == NULL : strstr(meta, want) != NULL);
            CHECK(good, "%s first, uuid %.*s: want %s in %s", order ? "child" : "parent", (int)v[i].lit_len,
                  v[i].lit, empty ? "no parent_event_id" : want, meta ? meta : "(no meta)");
            checked += good;
            free(meta);
            at_store_free(st);
            char cmd[600];
            snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", tmpl, tmpl);
            if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", tmpl);
        }
    }
    CHECK(nv >= 30 && checked == 2 * nv, "parent_event_id for every vector, both orders (%zu)", checked);
    at_buf_fini(&parent);
    at_buf_fini(&child);
    free(v);
    free(text);
}

/* Events held before the session id is known keep their redaction flag,
 * in memory and through the spill file. */
static void check_redacted_held(void)
{
    at_buf b;
    at_buf_init(&b, 0);
    const int count = 30000; /* past AT_PENDING_MEM_BYTES */
    for (int i = 0; i < count; i++)
        if (at_buf_printf(&b,
                          "{\"type\":\"user\",\"uuid\":\"u%d\",\"message\":{\"content\":\"%s number %d, "
                          "padded to be longer than a few bytes ...........\"}}\n",
                          i, i % 3 == 0 ? "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz" : "plain prompt",
                          i) != AT_OK)
            return;
    if (at_buf_adds(&b,
                    "{\"type\":\"user\",\"sessionId\":\"late-red\",\"gitBranch\":\"ghp_"
                    "0123456789abcdefghijABCDEFGHIJklmnopqr\",\"message\":{\"content\":\"x\"}}\n") != AT_OK)
        return;
    run r;
    import_mem(b.data, b.len, 65536, "held.jsonl", &r);
    CHECK(r.r == AT_OK && r.res.events == (uint64_t)count + 2, "held events written (%llu)",
          (unsigned long long)r.res.events);
    size_t flagged = 0, good = 0, lines = 0;
    for (char *l = r.out, *e; l && l < r.out + r.out_len; l = e + 1) {
        e = memchr(l, '\n', (size_t)(r.out + r.out_len - l));
        if (!e)
            break;
        *e = 0;
        bool red = strstr(l, ",\"redacted\":true}") != NULL;
        bool secret = strstr(l, "[REDACTED:anthropic-key] number") != NULL;
        flagged += red;
        good += red == secret && !strstr(l, "sk-ant-");
        lines++;
    }
    CHECK(flagged == (size_t)(count + 2) / 3 && good == lines,
          "held events keep their flags: %zu flagged, %zu/%zu", flagged, good, lines);
    CHECK(r.r == AT_OK && r.res.redacted_events == (uint64_t)(count + 2) / 3 && r.res.meta_redacted,
          "the result counts redacted events (%llu) and the metadata",
          (unsigned long long)r.res.redacted_events);
    at_buf mc;
    at_buf_init(&mc, 0);
    CHECK(r.r == AT_OK && at_meta_get_string(&r.res.meta, AT_META_COMMAND, &mc) == AT_OK && mc.data &&
              strcmp(mc.data, "imported from held.jsonl (branch: [REDACTED:github-token], v)") == 0,
          "meta command redacted: %s", mc.data ? mc.data : "");
    at_buf_fini(&mc);
    run_fini(&r);
    at_buf_fini(&b);
}

int main(void)
{
    check_fixtures();
    at_error err = {0};
    g_redact = at_redact_new(&err);
    CHECK(g_redact != NULL, "redactor: %s", err.message);
    if (g_redact) {
        check_fixtures();
        check_redacted_held();
    }
    at_redact_free(g_redact);
    g_redact = NULL;
    check_line_endings();
    check_stripping();
    check_invalid_utf8();
    check_huge_lines();
    check_late_session_spill();
    check_event_id_vectors();
    check_event_id_links_in_store();
    return t_done("test_importer");
}
