/* test_json.c - the JSON dialect against Python's json module (vectors made
 * by tests/vectors/gen_json.py), plus navigation, UTF-8 and code point units. */
#include "agenttrace/json.h"
#include "agenttrace/utf8.h"
#include "testlib.h"

static size_t unhex(const char *h, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        char b[3] = {h[i], h[i + 1], 0};
        v = (unsigned)strtoul(b, NULL, 16);
        out[k++] = (char)v;
    }
    return k;
}

static void check_vectors(void)
{
    size_t len;
    char *all = t_read_file(t_src("tests/vectors/json.tsv"), &len);
    CHECK(all != NULL, "cannot read json.tsv");
    if (!all)
        return;
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf out;
    at_buf_init(&out, 0);
    int lineno = 0;
    for (char *line = all, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *col[4];
        col[0] = line;
        for (int i = 1; i < 4; i++) {
            col[i] = strchr(col[i - 1], '\t');
            if (col[i])
                *col[i]++ = 0;
        }
        if (!col[3])
            continue;
        size_t n = strlen(col[0]);
        char *in = malloc(n / 2 + 1);
        size_t in_len = unhex(col[0], n, in);
        at_error err = {0};
        at_result r = at_json_parse(&d, in, in_len, &err);
        if (strcmp(col[1], "ERR") == 0) {
            CHECK(r != AT_OK, "line %d: accepted what Python rejects: %.*s", lineno, (int)in_len, in);
        } else {
            CHECK(r == AT_OK, "line %d: rejected (%s) what Python accepts: %.*s", lineno, err.message,
                  (int)in_len, in);
            const at_json_style *styles[3] = {&AT_JSON_COMPACT, &AT_JSON_DEFAULT, &AT_JSON_PRETTY};
            for (int s = 0; r == AT_OK && s < 3; s++) {
                size_t wn = strlen(col[1 + s]);
                char *want = malloc(wn / 2 + 1);
                size_t want_len = unhex(col[1 + s], wn, want);
                at_buf_reset(&out);
                CHECK(at_json_emit(&out, &d, 0, styles[s], 0) == AT_OK, "line %d: emit failed", lineno);
                CHECK_BYTES(out.data, out.len, want, want_len, "re-serialized");
                free(want);
            }
        }
        free(in);
    }
    at_buf_fini(&out);
    at_json_doc_fini(&d);
    free(all);
}

static void check_navigation(void)
{
    const char *t =
        "{\"type\":\"user\",\"n\":1,\"type\":\"assistant\",\"e\":\"\\u0061b\",\"o\":{\"k\":[1,{}]},"
        "\"z\":0,\"f\":0.0,\"s\":\"\",\"a\":[],\"t\":true}";
    at_json_doc d;
    at_json_doc_init(&d);
    CHECK(at_json_parse(&d, t, strlen(t), NULL) == AT_OK, "parse");
    uint32_t ty = at_json_get(&d, 0, "type");
    CHECK(at_json_str_eq(&d, ty, "assistant", 9), "duplicate key: last value wins");
    CHECK(at_json_str_eq(&d, at_json_get(&d, 0, "e"), "ab", 2), "escaped string compare");
    CHECK(at_json_get(&d, 0, "missing") == AT_JSON_NONE, "missing key");
    CHECK(at_json_get(&d, at_json_get(&d, 0, "n"), "x") == AT_JSON_NONE, "get on a non-object");
    uint32_t k = at_json_get(&d, at_json_get(&d, 0, "o"), "k");
    CHECK(at_json_is(&d, k, AT_JSON_ARRAY) && d.nodes[k].len == 2, "nested array");
    uint32_t c = at_json_first(&d, k);
    CHECK(at_json_is(&d, c, AT_JSON_INT), "first item");
    c = at_json_next(&d, k, c);
    CHECK(at_json_is(&d, c, AT_JSON_OBJECT), "second item");
    CHECK(at_json_next(&d, k, c) == AT_JSON_NONE, "end of array");
    CHECK(!at_json_truthy(&d, at_json_get(&d, 0, "z")), "0 is falsy");
    CHECK(!at_json_truthy(&d, at_json_get(&d, 0, "f")), "0.0 is falsy");
    CHECK(!at_json_truthy(&d, at_json_get(&d, 0, "s")), "'' is falsy");
    CHECK(!at_json_truthy(&d, at_json_get(&d, 0, "a")), "[] is falsy");
    CHECK(at_json_truthy(&d, at_json_get(&d, 0, "t")), "true is truthy");
    CHECK(at_json_truthy(&d, at_json_get(&d, 0, "n")), "1 is truthy");
    CHECK(!at_json_truthy(&d, AT_JSON_NONE), "absent is falsy");
    at_json_doc_fini(&d);
}

static void check_depth_cap(void)
{
    size_t n = 2 * (AT_MAX_JSON_DEPTH + 10);
    char *s = malloc(n);
    memset(s, '[', n / 2);
    memset(s + n / 2, ']', n / 2);
    at_json_doc d;
    at_json_doc_init(&d);
    at_error err = {0};
    CHECK(at_json_parse(&d, s, n, &err) == AT_ERR_TOO_BIG, "nesting beyond the cap is refused");
    at_json_doc_fini(&d);
    free(s);
}

static void check_utf8(void)
{
    static const struct {
        const char *bytes;
        int64_t bad; /* -1: valid */
    } cases[] = {
        {"plain", -1},
        {"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\x89", -1},
        {"x\xc0\xaf", 1},          /* overlong '/' */
        {"ab\xe0\x80\xaf", 2},     /* overlong 3-byte */
        {"\xed\xa0\x80", 0},       /* encoded surrogate */
        {"ok\xf4\x90\x80\x80", 2}, /* above U+10FFFF */
        {"\xf0\x8f\xbf\xbf", 0},   /* overlong 4-byte */
        {"abc\x80", 3},            /* stray continuation */
        {"\xff", 0},
        {"\xc3\xa9\xc3", 2}, /* truncated at the end */
        {"\xe2\x82", 0},
        {"\xe2\x28\xa1", 0}, /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].bytes);
        /* whole, and byte by byte */
        for (int split = 0; split < 2; split++) {
            at_utf8_state st;
            memset(&st, 0, sizeof st);
            int64_t bad = -1;
            at_result r = AT_OK;
            if (split) {
                for (size_t k = 0; k < n && r == AT_OK; k++)
                    r = at_utf8_feed(&st, cases[i].bytes + k, 1, &bad);
            } else {
                r = at_utf8_feed(&st, cases[i].bytes, n, &bad);
            }
            if (r == AT_OK)
                r = at_utf8_finish(&st, &bad);
            if (cases[i].bad < 0)
                CHECK(r == AT_OK, "case %zu valid (split %d)", i, split);
            else
                CHECK(r == AT_ERR_UTF8 && bad == cases[i].bad,
                      "case %zu: want offset %lld got %lld (split %d)", i, (long long)cases[i].bad,
                      (long long)bad, split);
        }
    }
}

static void check_code_points(void)
{
    const char *s = "a\xc3\xa9\xf0\x9f\x8e\x89\xed\xa0\xbd"
                    "z"; /* a é 🎉 <lone surrogate> z */
    size_t n = strlen(s);
    CHECK(at_wtf8_count(s, n) == 5, "count");
    CHECK(at_wtf8_prefix(s, n, 0) == 0, "prefix 0");
    CHECK(at_wtf8_prefix(s, n, 2) == 3, "prefix 2");
    CHECK(at_wtf8_prefix(s, n, 3) == 7, "emoji counts as one");
    CHECK(at_wtf8_prefix(s, n, 4) == 10, "lone surrogate counts as one");
    CHECK(at_wtf8_prefix(s, n, 99) == n, "prefix longer than the text");
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_json_write_wtf8(&b, s, n) == AT_OK, "write");
    const char *want = "\"a\\u00e9\\ud83c\\udf89\\ud83dz\"";
    CHECK_BYTES(b.data, b.len, want, strlen(want), "ensure_ascii");
    at_buf_fini(&b);
}

int main(void)
{
    check_vectors();
    check_navigation();
    check_depth_cap();
    check_utf8();
    check_code_points();
    return t_done("test_json");
}
