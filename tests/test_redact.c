/* test_redact.c - secret redaction (redaction.md) against Python's `re`.
 *
 * The known answers come from outside this code: tests/vectors/redact.ndjson
 * and word_ranges.txt, written by tests/vectors/gen_redact.py (the spec
 * implemented in Python 3.11), and the reference's own output in
 * tests/fixtures/expected*-redacted. On top of them: the key rule, the
 * environment switch, metadata, every code point around `\b` and `\s`, raw
 * JSON the generator cannot write (escaped and duplicate keys), and inputs of
 * several megabytes. */
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/redact.h"
#include "testlib.h"

#include <dirent.h>
#include <stdbool.h>

#define SENSITIVE "[REDACTED:sensitive]"

static at_redact *rd;

/* ---- helpers ------------------------------------------------------------ */

/* WTF-8 of any code point (surrogates as their 3-byte form). */
static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A buffer's bytes, "" before anything was added. */
static const char *bd(const at_buf *b)
{
    return b->data ? b->data : "";
}

/* The text at_redact_text makes of s into *res (s itself when unchanged);
 * false when it fails. */
static bool redact_to(const char *s, size_t n, at_buf *res, bool *changed)
{
    at_buf out;
    at_buf_init(&out, 0);
    at_result r = at_redact_text(rd, s, n, &out, changed);
    at_buf_reset(res);
    if (r == AT_OK)
        r = *changed ? at_buf_add(res, out.data, out.len) : at_buf_add(res, s, n);
    at_buf_fini(&out);
    return r == AT_OK;
}

/* Checks that at_redact_text turns s into want (NULL: leaves it alone). */
static void check_text(const char *s, size_t n, const char *want, size_t want_n, const char *what)
{
    at_buf res;
    at_buf_init(&res, 0);
    bool changed = true;
    bool ok = redact_to(s, n, &res, &changed);
    CHECK(ok, "%s: at_redact_text failed", what);
    if (!want) {
        want = s;
        want_n = n;
    }
    bool differs = want_n != n || memcmp(want, s, n) != 0;
    CHECK(ok && res.len == want_n && memcmp(bd(&res), want, want_n) == 0,
          "%s: got [%.*s] want [%.*s] (lengths %zu, %zu)", what, res.len > 300 ? 300 : (int)res.len, bd(&res),
          want_n > 300 ? 300 : (int)want_n, want, res.len, want_n);
    CHECK(changed == differs, "%s: changed is %d", what, changed);
    at_buf_fini(&res);
}

static void check_texts(const char *s, const char *want, const char *what)
{
    check_text(s, strlen(s), want, want ? strlen(want) : 0, what);
}

/* Redacts JSON text `in` through the emitter's hook; out gets the bytes. */
static at_result emit_redacted(const char *in, size_t n, at_buf *out)
{
    at_json_doc doc;
    at_json_doc_init(&doc);
    at_json_style st = AT_JSON_COMPACT;
    st.hook = at_redact_hook;
    st.hook_ctx = rd;
    at_buf_reset(out);
    at_redact_begin(rd);
    at_result r = at_json_parse(&doc, in, n, NULL);
    if (r == AT_OK)
        r = at_json_emit(out, &doc, 0, &st, 0);
    at_json_doc_fini(&doc);
    return r;
}

/* ---- the generated vectors ----------------------------------------------- */

static bool is_true(const at_json_doc *d, uint32_t i)
{
    return at_json_is(d, i, AT_JSON_TRUE);
}

static void check_vector(const at_json_doc *d, int lineno, at_buf *got, at_buf *want, at_buf *note)
{
    uint32_t in = at_json_get(d, 0, "in"), out = at_json_get(d, 0, "out");
    uint32_t marked = at_json_get(d, 0, "marked"), changed = at_json_get(d, 0, "changed");
    at_buf_reset(note);
    if (at_json_str_decode(d, at_json_get(d, 0, "note"), note) != AT_OK || !note->data) {
        at_buf_reset(note);
        if (at_buf_adds(note, "?") != AT_OK)
            return;
    }
    CHECK(in != AT_JSON_NONE && out != AT_JSON_NONE && marked != AT_JSON_NONE && changed != AT_JSON_NONE,
          "line %d: malformed vector", lineno);
    if (in == AT_JSON_NONE || out == AT_JSON_NONE)
        return;

    at_json_style st = AT_JSON_COMPACT;
    st.hook = at_redact_hook;
    st.hook_ctx = rd;
    at_buf_reset(got);
    at_buf_reset(want);
    at_redact_begin(rd);
    at_result r = at_json_emit(got, d, in, &st, 0);
    at_result r2 = at_json_emit(want, d, out, &AT_JSON_COMPACT, 0);
    CHECK(r == AT_OK && r2 == AT_OK, "line %d (%s): emit failed: %s / %s", lineno, note->data,
          at_result_str(r), at_result_str(r2));
    if (r != AT_OK || r2 != AT_OK)
        return;
    CHECK(got->len == want->len && memcmp(got->data, want->data, want->len) == 0,
          "line %d (%s):\n  line %.*s\n  got  %.*s\n  want %.*s", lineno, note->data,
          d->src_len > 1500 ? 1500 : (int)d->src_len, d->src, (int)got->len, got->data, (int)want->len,
          want->data);
    CHECK(at_redact_marked(rd) == is_true(d, marked), "line %d (%s): marked is %d, want %d", lineno,
          note->data, at_redact_marked(rd), is_true(d, marked));
    CHECK(at_redact_changed(rd) == is_true(d, changed), "line %d (%s): changed is %d, want %d", lineno,
          note->data, at_redact_changed(rd), is_true(d, changed));

    /* A bare string also goes through at_redact_text. */
    if (at_json_is(d, in, AT_JSON_STRING) && at_json_is(d, out, AT_JSON_STRING)) {
        at_buf s, w, res;
        at_buf_init(&s, 0);
        at_buf_init(&w, 0);
        at_buf_init(&res, 0);
        bool ch = false;
        bool ok = at_json_str_decode(d, in, &s) == AT_OK && at_json_str_decode(d, out, &w) == AT_OK &&
                  redact_to(bd(&s), s.len, &res, &ch);
        CHECK(ok && res.len == w.len && memcmp(bd(&res), bd(&w), w.len) == 0,
              "line %d (%s): at_redact_text differs", lineno, note->data);
        CHECK(ch == is_true(d, changed), "line %d (%s): at_redact_text changed is %d", lineno, note->data,
              ch);
        at_buf_fini(&s);
        at_buf_fini(&w);
        at_buf_fini(&res);
    }
}

static void test_vectors(void)
{
    size_t len;
    char *all = t_read_file(t_src("tests/vectors/redact.ndjson"), &len);
    CHECK(all != NULL, "cannot read %s", t_src("tests/vectors/redact.ndjson"));
    if (!all)
        return;
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf got, want, note;
    at_buf_init(&got, 0);
    at_buf_init(&want, 0);
    at_buf_init(&note, 0);
    int lineno = 0, count = 0;
    for (char *line = all, *next; line < all + len; line = next) {
        next = memchr(line, '\n', (size_t)(all + len - line));
        next = next ? next + 1 : all + len;
        lineno++;
        size_t n = (size_t)(next - line);
        at_error err = {0};
        at_result r = at_json_parse(&d, line, n, &err);
        CHECK(r == AT_OK, "line %d: does not parse: %s", lineno, err.message);
        if (r != AT_OK)
            continue;
        check_vector(&d, lineno, &got, &want, &note);
        count++;
    }
    CHECK(count >= 4000, "only %d vectors", count);
    at_buf_fini(&got);
    at_buf_fini(&want);
    at_buf_fini(&note);
    at_json_doc_fini(&d);
    free(all);
}

/* ---- \b and \s over every code point ------------------------------------- */

/* Python's str.isspace(): what `\s` matches. */
static const uint32_t py_space[] = {0x09,   0x0a,   0x0b,   0x0c,   0x0d,   0x1c,   0x1d,   0x1e,
                                    0x1f,   0x20,   0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002,
                                    0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
                                    0x2028, 0x2029, 0x202f, 0x205f, 0x3000};

static bool is_py_space(uint32_t cp)
{
    for (size_t i = 0; i < sizeof py_space / sizeof *py_space; i++)
        if (py_space[i] == cp)
            return true;
    return false;
}

static uint32_t (*word)[2];
static size_t nword;

static bool is_word(uint32_t cp)
{
    size_t lo = 0, hi = nword;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < word[mid][0])
            hi = mid;
        else if (cp > word[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static bool load_word_ranges(void)
{
    size_t len;
    char *all = t_read_file(t_src("tests/vectors/word_ranges.txt"), &len);
    CHECK(all != NULL, "cannot read word_ranges.txt");
    if (!all)
        return false;
    word = malloc(sizeof *word * (len / 4 + 1));
    nword = 0;
    for (char *p = all; word && *p;) {
        char *e, *f;
        unsigned long a = strtoul(p, &e, 16), b = strtoul(e, &f, 16);
        if (e == p || f == e)
            break;
        e = f;
        word[nword][0] = (uint32_t)a;
        word[nword][1] = (uint32_t)b;
        nword++;
        p = e;
        while (*p == '\n' || *p == ' ')
            p++;
    }
    free(all);
    bool sorted = nword > 100;
    for (size_t i = 1; i < nword; i++)
        sorted = sorted && word[i - 1][1] < word[i][0] && word[i][0] <= word[i][1];
    CHECK(sorted && is_word('_') && is_word('a') && !is_word('-') && !is_word(0xd800),
          "word_ranges.txt: %zu ranges, not sorted or not \\w", nword);
    return sorted;
}

/* <cp>http://u:p@h redacts when cp is not a word character (or is an ASCII
 * letter, which starts the scheme itself). Returns true when right. */
static bool basic_auth_at(uint32_t cp, bool quiet)
{
    char s[32], w[64];
    size_t k = put_cp(s, cp);
    memcpy(s + k, "http://u:p@h", 12);
    memcpy(w, s, k);
    size_t wn = k + (size_t)snprintf(w + k, sizeof w - k, "http://[REDACTED:basic-auth]@h");
    bool letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    bool redacts = !is_word(cp) || letter;
    at_buf res;
    at_buf_init(&res, 0);
    bool changed, ok = redact_to(s, k + 12, &res, &changed);
    ok = ok && changed == redacts &&
         (redacts ? res.len == wn && memcmp(res.data, w, wn) == 0
                  : res.len == k + 12 && memcmp(res.data, s, k + 12) == 0);
    if (!quiet)
        CHECK(ok, "U+%04X before http://u:p@h: got [%s], want it %s", (unsigned)cp, res.data,
              redacts ? "redacted" : "unchanged");
    at_buf_fini(&res);
    return ok;
}

static void test_word_ranges(void)
{
    if (!load_word_ranges())
        return;
    for (size_t i = 0; i < nword; i++) {
        uint32_t pts[4] = {word[i][0], word[i][1], word[i][0] - 1, word[i][1] + 1};
        for (int j = 0; j < 4; j++) {
            uint32_t cp = pts[j];
            if (j >= 2 && (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || is_word(cp) ||
                           (j == 2 && word[i][0] == 0)))
                continue;
            basic_auth_at(cp, false);
        }
    }
    for (uint32_t cp = 0xd800; cp <= 0xdfff; cp += 0x3ff)
        basic_auth_at(cp, false); /* a lone surrogate is not a word character */
}

/* Every code point in three places: before a basic-auth URL (\b), between
 * Bearer and its token (\s+), inside a connection string ([^\s]). Each sweep
 * is one case; the first mismatches are printed. */
static void test_sweeps(void)
{
    if (!word)
        return;
    int bad_word = 0, bad_bearer = 0, bad_conn = 0;
    at_buf res;
    at_buf_init(&res, 0);
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        if (!basic_auth_at(cp, true) && bad_word++ < 10)
            fprintf(stderr, "sweep: U+%04X before http://u:p@h is wrong\n", (unsigned)cp);

        char s[32], w[64];
        size_t k = put_cp(s + 6, cp);
        memcpy(s, "Bearer", 6);
        memcpy(s + 6 + k, "tok123", 6);
        bool sp = is_py_space(cp), changed;
        const char *bw = "[REDACTED:bearer-token]";
        bool ok = redact_to(s, 12 + k, &res, &changed) && changed == sp &&
                  (sp ? res.len == strlen(bw) && memcmp(res.data, bw, res.len) == 0
                      : res.len == 12 + k && memcmp(res.data, s, res.len) == 0);
        if (!ok && bad_bearer++ < 10)
            fprintf(stderr, "sweep: Bearer U+%04X tok123 gives [%s]\n", (unsigned)cp, res.data);

        memcpy(s, "postgres://a", 12);
        k = put_cp(s + 12, cp);
        s[12 + k] = 'b';
        size_t wn = (size_t)snprintf(w, sizeof w, "[REDACTED:connection-string]");
        if (sp) {
            memcpy(w + wn, s + 12, k + 1);
            wn += k + 1;
        }
        ok = redact_to(s, 13 + k, &res, &changed) && changed && res.len == wn && memcmp(res.data, w, wn) == 0;
        if (!ok && bad_conn++ < 10)
            fprintf(stderr, "sweep: postgres://a U+%04X b gives [%s]\n", (unsigned)cp, res.data);
    }
    at_buf_fini(&res);
    CHECK(bad_word == 0, "\\b sweep: %d code points wrong", bad_word);
    CHECK(bad_bearer == 0, "bearer \\s sweep: %d code points wrong", bad_bearer);
    CHECK(bad_conn == 0, "connection [^\\s] sweep: %d code points wrong", bad_conn);
}

/* ---- sensitive keys ---------------------------------------------------------- */

static void test_keys(void)
{
    static const struct {
        const char *key;
        size_t n; /* 0: strlen */
        bool want;
    } cases[] = {
        {"password", 0, true},
        {"passwd", 0, true},
        {"secret", 0, true},
        {"token", 0, true},
        {"api_key", 0, true},
        {"apikey", 0, true},
        {"api-key", 0, true},
        {"access_token", 0, true},
        {"refresh_token", 0, true},
        {"auth_token", 0, true},
        {"authorization", 0, true},
        {"credential", 0, true},
        {"credentials", 0, true},
        {"private_key", 0, true},
        {"privatekey", 0, true},
        {"client_secret", 0, true},
        {"connection_string", 0, true},
        {"database_url", 0, true},
        {"db_url", 0, true},
        {"aws_access_key_id", 0, true},
        {"aws_secret_access_key", 0, true},
        {"aws_session_token", 0, true},
        /* case */
        {"PASSWORD", 0, true},
        {"Api_Key", 0, true},
        {"AuThOrIzAtIoN", 0, true},
        {"PrivateKey", 0, true},
        /* surrounding whitespace: Python's str.strip() set */
        {" token ", 0, true},
        {"\ttoken\n", 0, true},
        {"\v\f\rtoken", 0, true},
        {"\x1c\x1d\x1e\x1ftoken\x1f", 0, true},
        {"\xc2\xa0secret\xe3\x80\x80", 0, true},      /* U+00A0, U+3000 */
        {"\xc2\x85secret\xe2\x80\xa8", 0, true},      /* U+0085, U+2028 */
        {"\xe1\x9a\x80secret\xe2\x80\x8a", 0, true},  /* U+1680, U+200A */
        {"\xe2\x80\xafsecret\xe2\x81\x9f", 0, true},  /* U+202F, U+205F */
        {"\xe2\x80\x80\xe2\x80\xa9 secret", 0, true}, /* U+2000, U+2029 */
        {"\xe2\x80\x8bsecret", 0, false},             /* U+200B is not space */
        {"\xef\xbb\xbfsecret", 0, false},             /* U+FEFF */
        {"\xe1\xa0\x8esecret", 0, false},             /* U+180E */
        {"secret\xe2\x80\x8b", 0, false},
        {"   ", 0, false},
        {"", 0, false},
        /* dashes */
        {"API-KEY", 0, true},
        {"client-secret", 0, true},
        {"aws-secret-access-key", 0, true},
        {"db-url", 0, true},
        {"connection-string", 0, true},
        {"aws_session-token", 0, true},
        {"api--key", 0, false},
        {"-token", 0, false},
        {"token-", 0, false},
        {"api_-key", 0, false},
        /* U+212A KELVIN SIGN lowers to k */
        {"api_\xe2\x84\xaa"
         "ey",
         0, true},
        {"API_\xe2\x84\xaa"
         "EY",
         0, true},
        {"\xe2\x84\xaa", 0, false},
        {"api_\xe2\x84\xab"
         "ey",
         0, false},             /* U+212B ANGSTROM SIGN does not */
        {"\xc4\xb0", 0, false}, /* U+0130 lowers to i + U+0307 */
        {"\xc5\xbf"
         "ecret",
         0, false}, /* U+017F long s stays itself */
        /* near misses */
        {"tokens", 0, false},
        {"my_token", 0, false},
        {"my_password", 0, false},
        {"passwords", 0, false},
        {"pass word", 0, false},
        {"api key", 0, false},
        {"se cret", 0, false},
        {"xtoken", 0, false},
        {"[REDACTED]", 0, false},
        {"aws_secret_access_key_and_more_than_thirty_two", 0, false},
        {"\xed\xa0\x80token", 0, false}, /* a lone surrogate */
        /* the length is the key's, not the C string's */
        {"password", 4, false},
        {"tokenX", 5, true},
        {"password\0", 9, false}, /* NUL is not whitespace in Python */
        {"\0password", 9, false},
        {"token\0x", 7, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].key);
        bool got = at_redact_key_sensitive(cases[i].key, n);
        CHECK(got == cases[i].want, "key %zu [%.*s] (%zu bytes): sensitive is %d", i, (int)n, cases[i].key, n,
              got);
    }
}

/* ---- at_redact_text and the hook ----------------------------------------- */

static void test_text(void)
{
    check_texts("", NULL, "empty");
    check_texts("plain text, nothing here", NULL, "plain");
    check_texts("sk-aB3dE5gH7jK9mN1pQ3sT", "[REDACTED:openai-key]", "openai");
    check_texts("https://[REDACTED:basic-auth]@host", NULL, "basic-auth over its marker: the same text");
    check_texts("[REDACTED_EMAIL]", NULL, "marker only");
    check_texts("a ghp_aB3dE5gH7jK9mN1pQ3sTaB3dE5gH7jK9mN1p b", "a [REDACTED:github-token] b", "github");

    /* NUL bytes: the length rules, not the terminator */
    static const char nul_in[] = "a\0sk-aB3dE5gH7jK9mN1pQ3sT\0b";
    static const char nul_want[] = "a\0[REDACTED:openai-key]\0b";
    check_text(nul_in, sizeof nul_in - 1, nul_want, sizeof nul_want - 1, "NUL around a key");
    static const char nul_hex[] = "\0000123456789abcdef0123456789abcdef01234567";
    static const char nul_hex_want[] = "\0[REDACTED:hex-token]";
    check_text(nul_hex, sizeof nul_hex - 1, nul_hex_want, sizeof nul_hex_want - 1, "NUL then hex");
    /* a string cut short: the secret is past n */
    check_text("plain sk-aB3dE5gH7jK9mN1pQ3sT", 10, NULL, 0, "secret past the length");
    check_text("sk-aB3dE5gH7jK9mN1pQ3sT", 22, NULL, 0, "openai one short by length");

    /* out is left empty when nothing changes */
    at_buf out;
    at_buf_init(&out, 0);
    bool changed = true;
    at_result r = at_buf_adds(&out, "stale");
    if (r == AT_OK)
        r = at_redact_text(rd, "plain", 5, &out, &changed);
    CHECK(r == AT_OK && !changed && out.len == 0, "unchanged text leaves out empty (len %zu)", out.len);
    r = at_redact_text(rd, "https://[REDACTED:basic-auth]@h", 31, &out, &changed);
    CHECK(r == AT_OK && !changed && out.len == 0, "same text after a match: unchanged, out empty");
    at_buf_fini(&out);
}

static void test_hook(void)
{
    at_buf repl;
    at_buf_init(&repl, 0);
    bool replaced;
    at_redact_begin(rd);
    CHECK(!at_redact_marked(rd) && !at_redact_changed(rd), "begin clears the flags");
    at_result r = at_redact_hook(rd, NULL, 0, "plain", 5, &repl, &replaced);
    CHECK(r == AT_OK && !replaced && !at_redact_marked(rd) && !at_redact_changed(rd), "plain string");
    r = at_redact_hook(rd, "text", 4, "x [REDACTED_EMAIL]", 18, &repl, &replaced);
    CHECK(r == AT_OK && !replaced && at_redact_marked(rd) && !at_redact_changed(rd), "marked string");
    r = at_redact_hook(rd, "text", 4, "plain", 5, &repl, &replaced);
    CHECK(r == AT_OK && !replaced && at_redact_marked(rd), "flags stay set until begin");

    at_redact_begin(rd);
    r = at_redact_hook(rd, "password", 8, "x", 1, &repl, &replaced);
    CHECK(r == AT_OK && replaced && repl.len == strlen(SENSITIVE) &&
              memcmp(repl.data, SENSITIVE, repl.len) == 0,
          "sensitive key: [%.*s]", (int)repl.len, repl.data);
    CHECK(at_redact_marked(rd) && at_redact_changed(rd), "sensitive key sets both flags");

    at_redact_begin(rd);
    r = at_redact_hook(rd, "password", 8, SENSITIVE, strlen(SENSITIVE), &repl, &replaced);
    CHECK(r == AT_OK && at_redact_marked(rd) && !at_redact_changed(rd), "the marker under a sensitive key");
    if (replaced)
        CHECK(repl.len == strlen(SENSITIVE), "replaced by itself");

    at_redact_begin(rd);
    r = at_redact_hook(rd, "passwordXYZ", 8, "", 0, &repl, &replaced);
    CHECK(r == AT_OK && replaced && at_redact_changed(rd), "parent key by length; empty string marked");
    at_redact_begin(rd);
    r = at_redact_hook(rd, "pass", 4, "x", 1, &repl, &replaced);
    CHECK(r == AT_OK && !replaced && !at_redact_marked(rd), "a prefix of a sensitive key");

    at_redact_begin(rd);
    r = at_redact_hook(rd, "text", 4, "Bearer abc", 10, &repl, &replaced);
    CHECK(r == AT_OK && replaced && repl.len == 23 && memcmp(repl.data, "[REDACTED:bearer-token]", 23) == 0 &&
              at_redact_marked(rd) && at_redact_changed(rd),
          "pattern through the hook");

    at_redact_begin(rd);
    r = at_redact_hook(rd, NULL, 0, "https://[REDACTED:basic-auth]@h", 31, &repl, &replaced);
    CHECK(r == AT_OK && at_redact_marked(rd) && !at_redact_changed(rd), "basic-auth over its marker");
    at_buf_fini(&repl);
}

/* Raw JSON the generator cannot write: escaped keys, raw UTF-8, duplicate
 * keys (json.loads keeps the last value, in the first key's place). */
static void test_raw_json(void)
{
    static const struct {
        const char *in, *want;
        bool marked, changed;
    } cases[] = {
        {"{\"pass\\u0077ord\":\"x\",\"\\u0074oken\":[\"y\"]}",
         "{\"password\":\"[REDACTED:sensitive]\",\"token\":[\"[REDACTED:sensitive]\"]}", true, true},
        {"{\"\\u00a0token\\u3000\":\"x\"}", "{\"\\u00a0token\\u3000\":\"[REDACTED:sensitive]\"}", true, true},
        {"{\"\xc2\xa0token\":\"x\"}", "{\"\\u00a0token\":\"[REDACTED:sensitive]\"}", true, true},
        {"{\"api_\xe2\x84\xaa"
         "ey\":\"x\"}",
         "{\"api_\\u212aey\":\"[REDACTED:sensitive]\"}", true, true},
        {"{\"password\\u0000\":\"x\"}", "{\"password\\u0000\":\"x\"}", false, false},
        {"\"\xc3\xa9 https://u:p@h\"", "\"\\u00e9 https://[REDACTED:basic-auth]@h\"", true, true},
        {"\"\xc3\xa9https://u:p@h\"", "\"\\u00e9https://u:p@h\"", false, false},
        {"\"\\u00e9https://u:p@h\"", "\"\\u00e9https://u:p@h\"", false, false},
        {"\"\\ud800https://u:p@h\"", "\"\\ud800https://[REDACTED:basic-auth]@h\"", true, true},
        {"\"sk-\\u0061B3dE5gH7jK9mN1pQ3sT\"", "\"[REDACTED:openai-key]\"", true, true},
        {"{\"token\":\"a\",\"token\":\"b\"}", "{\"token\":\"[REDACTED:sensitive]\"}", true, true},
        {"{\"x\":\"sk-aB3dE5gH7jK9mN1pQ3sT\",\"x\":1}", "{\"x\":1}", false, false},
        {"{\"x\":\"[REDACTED\",\"y\":2,\"x\":\"clean\"}", "{\"x\":\"clean\",\"y\":2}", false, false},
        {"{\"x\":1,\"y\":\"a\",\"x\":\"Bearer t\"}", "{\"x\":\"[REDACTED:bearer-token]\",\"y\":\"a\"}", true,
         true},
        {"{\"token\":1,\"token\":\"\"}", "{\"token\":\"[REDACTED:sensitive]\"}", true, true},
        {" [ \"AKIAIOSFODNN7EXAMPLE\" , {\"a\" : null} ] ", "[\"[REDACTED:aws-access-key]\",{\"a\":null}]",
         true, true},
    };
    at_buf out;
    at_buf_init(&out, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        at_result r = emit_redacted(cases[i].in, strlen(cases[i].in), &out);
        CHECK(r == AT_OK && out.len == strlen(cases[i].want) && memcmp(out.data, cases[i].want, out.len) == 0,
              "raw %zu %s: got %s want %s", i, cases[i].in, out.data, cases[i].want);
        CHECK(at_redact_marked(rd) == cases[i].marked && at_redact_changed(rd) == cases[i].changed,
              "raw %zu %s: marked %d changed %d", i, cases[i].in, at_redact_marked(rd),
              at_redact_changed(rd));
    }
    at_buf_fini(&out);
}

/* ---- the environment switch ---------------------------------------------- */

static void test_env(void)
{
    static const char *const names[] = {"AGENT_TRACE_NO_REDACT", "AGENT_STRACE_NO_REDACT"};
    static const struct {
        const char *v;
        bool off;
    } values[] = {
        {"1", true},       {"TRUE", true}, {"true", true}, {"True", true}, {"Yes", true},    {"yES", true},
        {"yes", true},     {"0", false},   {"no", false},  {"", false},    {" 1", false},    {"1 ", false},
        {"true\n", false}, {"11", false},  {"y", false},   {"on", false},  {"false", false}, {"2", false},
    };
    char *saved[2];
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    CHECK(!at_redact_env_disabled(), "neither variable set");
    for (int i = 0; i < 2; i++) {
        for (size_t j = 0; j < sizeof values / sizeof *values; j++) {
            setenv(names[i], values[j].v, 1);
            CHECK(at_redact_env_disabled() == values[j].off, "%s=[%s]: disabled is %d", names[i], values[j].v,
                  !values[j].off);
        }
        unsetenv(names[i]);
    }
    setenv(names[0], "0", 1);
    setenv(names[1], "yes", 1);
    CHECK(at_redact_env_disabled(), "either variable turns it off (second)");
    setenv(names[0], "TRUE", 1);
    setenv(names[1], "no", 1);
    CHECK(at_redact_env_disabled(), "either variable turns it off (first)");
    for (int i = 0; i < 2; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

/* ---- metadata ---------------------------------------------------------- */

static bool raw_is(const at_meta *m, at_meta_field f, const char *want)
{
    if (!want)
        return m->raw[f] == NULL;
    return m->raw[f] && m->len[f] == strlen(want) && memcmp(m->raw[f], want, m->len[f]) == 0;
}

static const char *or_null(const char *s)
{
    return s ? s : "NULL";
}

#define CHECK_RAW(m, f, want, what)                                                                          \
    CHECK(raw_is((m), (f), (want)), "%s: %s is [%s], want [%s]", (what), at_meta_field_name(f),              \
          or_null((m)->raw[f]), or_null(want))

static void set_str(at_meta *m, at_meta_field f, const char *s)
{
    at_result r = at_meta_set_string(m, f, s, strlen(s));
    CHECK(r == AT_OK, "set %s", at_meta_field_name(f));
}

static void set_raw(at_meta *m, at_meta_field f, const char *s)
{
    at_result r = at_meta_set_raw(m, f, s, strlen(s));
    CHECK(r == AT_OK, "set %s", at_meta_field_name(f));
}

static void test_meta(void)
{
    at_meta m;
    at_result r;

    at_meta_init(&m);
    set_str(&m, AT_META_SESSION_ID, "ghp_aB3dE5gH7jK9mN1pQ3sTaB3dE5gH7jK9mN1p");
    set_str(&m, AT_META_AGENT_NAME, "claude-code");
    set_str(&m, AT_META_COMMAND,
            "imported from x.jsonl (branch: fix/ghp_aB3dE5gH7jK9mN1pQ3sTaB3dE5gH7jK9mN1p, v2)");
    set_raw(
        &m, AT_META_ATTRIBUTION,
        "{\"api_key\":\"abc\",\"note\":\"sk-aB3dE5gH7jK9mN1pQ3sT\",\"n\":1,\"credentials\":[\"a\",{\"x\":\"b\"}]}");
    set_raw(&m, AT_META_TEAM, "\"Bearer abc\"");
    r = at_redact_meta(rd, &m);
    CHECK(r == AT_OK, "meta with secrets: %s", at_result_str(r));
    CHECK_RAW(&m, AT_META_SESSION_ID, "\"ghp_aB3dE5gH7jK9mN1pQ3sTaB3dE5gH7jK9mN1p\"",
              "session_id is not walked");
    CHECK_RAW(&m, AT_META_AGENT_NAME, "\"claude-code\"", "secrets");
    CHECK_RAW(&m, AT_META_COMMAND, "\"imported from x.jsonl (branch: fix/[REDACTED:github-token], v2)\"",
              "secrets");
    CHECK_RAW(&m, AT_META_ATTRIBUTION,
              "{\"api_key\":\"[REDACTED:sensitive]\",\"note\":\"[REDACTED:openai-key]\",\"n\":1,"
              "\"credentials\":[\"[REDACTED:sensitive]\",{\"x\":\"b\"}]}",
              "secrets");
    CHECK_RAW(&m, AT_META_TEAM, "\"Bearer abc\"", "team is not walked");
    CHECK_RAW(&m, AT_META_REDACTED, "true", "secrets");
    CHECK(at_redact_marked(rd) && at_redact_changed(rd), "meta flags after secrets");
    at_meta_fini(&m);

    at_meta_init(&m);
    set_str(&m, AT_META_AGENT_NAME, "claude-code");
    set_str(&m, AT_META_COMMAND, "imported from y.jsonl (branch: main, v2.1.50)");
    set_raw(&m, AT_META_ATTRIBUTION, "{\"team\":\"x\",\"depth\":[1,null]}");
    r = at_redact_meta(rd, &m);
    CHECK(r == AT_OK, "clean meta");
    CHECK_RAW(&m, AT_META_COMMAND, "\"imported from y.jsonl (branch: main, v2.1.50)\"", "clean");
    CHECK_RAW(&m, AT_META_ATTRIBUTION, "{\"team\":\"x\",\"depth\":[1,null]}", "clean");
    CHECK_RAW(&m, AT_META_REDACTED, NULL, "clean meta stays unflagged");
    CHECK(!at_redact_marked(rd) && !at_redact_changed(rd), "clean meta flags");
    at_meta_fini(&m);

    at_meta_init(&m);
    set_str(&m, AT_META_COMMAND, "branch: [REDACTED_EMAIL]");
    r = at_redact_meta(rd, &m);
    CHECK(r == AT_OK, "marked meta");
    CHECK_RAW(&m, AT_META_COMMAND, "\"branch: [REDACTED_EMAIL]\"", "marked");
    CHECK_RAW(&m, AT_META_REDACTED, "true", "already marked meta is flagged");
    CHECK(at_redact_marked(rd) && !at_redact_changed(rd), "marked meta flags");
    at_meta_fini(&m);

    at_meta_init(&m);
    set_raw(&m, AT_META_ATTRIBUTION, "\"postgres://u:p@h/db\"");
    set_raw(&m, AT_META_AGENT_NAME, "[\"xoxb-1234567890\",{\"token\":\"t\"}]");
    r = at_redact_meta(rd, &m);
    CHECK(r == AT_OK, "meta of other types");
    CHECK_RAW(&m, AT_META_ATTRIBUTION, "\"[REDACTED:connection-string]\"", "string attribution");
    CHECK_RAW(&m, AT_META_AGENT_NAME, "[\"[REDACTED:slack-token]\",{\"token\":\"[REDACTED:sensitive]\"}]",
              "list agent_name");
    CHECK_RAW(&m, AT_META_COMMAND, NULL, "unset command stays unset");
    CHECK_RAW(&m, AT_META_REDACTED, "true", "meta of other types");
    at_meta_fini(&m);

    at_meta_init(&m);
    r = at_redact_meta(rd, &m);
    CHECK(r == AT_OK && m.raw[AT_META_REDACTED] == NULL && !at_redact_marked(rd), "empty meta");
    at_meta_fini(&m);
}

/* ---- the reference's own output -------------------------------------------- */

static int fixture_events;

static void check_fixture_session(const char *plain_dir, const char *red_dir)
{
    char p[4096], q[4096];
    size_t pn = 0, qn = 0;
    snprintf(p, sizeof p, "%s/events.ndjson", plain_dir);
    snprintf(q, sizeof q, "%s/events.ndjson", red_dir);
    char *plain = t_read_file(p, &pn), *red = t_read_file(q, &qn);
    CHECK(plain && red, "cannot read %s or %s", p, q);
    at_json_doc dp, dq;
    at_json_doc_init(&dp);
    at_json_doc_init(&dq);
    at_buf got, want;
    at_buf_init(&got, 0);
    at_buf_init(&want, 0);
    at_json_style st = AT_JSON_COMPACT;
    st.hook = at_redact_hook;
    st.hook_ctx = rd;
    char *a = plain, *b = red;
    for (int line = 1; a && b && *a && *b; line++) {
        char *ae = strchr(a, '\n'), *be = strchr(b, '\n');
        size_t an = ae ? (size_t)(ae - a) : strlen(a), bn = be ? (size_t)(be - b) : strlen(b);
        bool ok = at_json_parse(&dp, a, an, NULL) == AT_OK && at_json_parse(&dq, b, bn, NULL) == AT_OK;
        CHECK(ok, "%s line %d: does not parse", p, line);
        if (ok) {
            uint32_t ida = at_json_get(&dp, 0, "event_id"), idb = at_json_get(&dq, 0, "event_id");
            CHECK(ida != AT_JSON_NONE && idb != AT_JSON_NONE &&
                      at_json_node_at(&dp, ida)->len == at_json_node_at(&dq, idb)->len &&
                      memcmp(dp.src + at_json_node_at(&dp, ida)->off, dq.src + at_json_node_at(&dq, idb)->off,
                             at_json_node_at(&dp, ida)->len) == 0,
                  "%s line %d: event ids differ", p, line);
            at_buf_reset(&got);
            at_buf_reset(&want);
            at_redact_begin(rd);
            at_result r = at_json_emit(&got, &dp, at_json_get(&dp, 0, "data"), &st, 0);
            at_result r2 = at_json_emit(&want, &dq, at_json_get(&dq, 0, "data"), &AT_JSON_COMPACT, 0);
            CHECK(r == AT_OK && r2 == AT_OK && got.len == want.len &&
                      memcmp(got.data, want.data, got.len) == 0,
                  "%s line %d: data differs from the reference:\n  got  %.*s\n  want %.*s", q, line,
                  (int)got.len > 2000 ? 2000 : (int)got.len, got.data,
                  (int)want.len > 2000 ? 2000 : (int)want.len, want.data);
            bool flagged = at_json_is(&dq, at_json_get(&dq, 0, "redacted"), AT_JSON_TRUE);
            CHECK(at_redact_marked(rd) == flagged, "%s line %d: flag is %d, the reference says %d", q, line,
                  at_redact_marked(rd), flagged);
            fixture_events++;
        }
        a = ae ? ae + 1 : NULL;
        b = be ? be + 1 : NULL;
    }
    CHECK((!a || !*a) && (!b || !*b), "%s and %s: different numbers of events", p, q);
    at_buf_fini(&got);
    at_buf_fini(&want);
    at_json_doc_fini(&dp);
    at_json_doc_fini(&dq);
    free(plain);
    free(red);

    /* meta.json: agent_name, command, attribution and the flag */
    at_meta mp, mq;
    at_meta_init(&mp);
    at_meta_init(&mq);
    snprintf(p, sizeof p, "%s/meta.json", plain_dir);
    snprintf(q, sizeof q, "%s/meta.json", red_dir);
    at_result r = at_meta_load(&mp, p, NULL);
    at_result r2 = at_meta_load(&mq, q, NULL);
    CHECK(r == AT_OK && r2 == AT_OK, "cannot load %s or %s", p, q);
    if (r == AT_OK && r2 == AT_OK) {
        r = at_redact_meta(rd, &mp);
        CHECK(r == AT_OK, "%s: at_redact_meta failed", p);
        for (int f = 0; f < AT_META_NFIELDS; f++) {
            bool same = (!mp.raw[f] && !mq.raw[f]) || (mp.raw[f] && mq.raw[f] && mp.len[f] == mq.len[f] &&
                                                       memcmp(mp.raw[f], mq.raw[f], mp.len[f]) == 0);
            CHECK(same, "%s: %s is [%s], the reference has [%s]", q, at_meta_field_name((at_meta_field)f),
                  mp.raw[f] ? mp.raw[f] : "NULL", mq.raw[f] ? mq.raw[f] : "NULL");
        }
    }
    at_meta_fini(&mp);
    at_meta_fini(&mq);
}

static void test_fixtures(void)
{
    static const char *const sets[][2] = {
        {"tests/fixtures/expected", "tests/fixtures/expected-redacted"},
        {"tests/fixtures/expected-edge", "tests/fixtures/expected-edge-redacted"}};
    int sessions = 0;
    for (size_t s = 0; s < 2; s++) {
        char plain_root[4096], red_root[4096];
        snprintf(plain_root, sizeof plain_root, "%s", t_src(sets[s][0]));
        snprintf(red_root, sizeof red_root, "%s", t_src(sets[s][1]));
        DIR *dir = opendir(plain_root);
        CHECK(dir != NULL, "cannot open %s", plain_root);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096 + 256], q[4096 + 256];
            snprintf(p, sizeof p, "%s/%s", plain_root, e->d_name);
            snprintf(q, sizeof q, "%s/%s", red_root, e->d_name);
            check_fixture_session(p, q);
            sessions++;
        }
        closedir(dir);
    }
    CHECK(sessions >= 17 && fixture_events > 100, "only %d sessions, %d events", sessions, fixture_events);
}

/* ---- big inputs -------------------------------------------------------------- */

/* s = prefix + fill * count + suffix, redacted to want (NULL: unchanged),
 * or, when want_fill is set, to want + fill * count + want_fill. */
static void check_big_keep(const char *prefix, const char *fill, size_t count, const char *suffix,
                           const char *want, const char *want_fill, const char *what)
{
    at_buf s, w;
    at_buf_init(&s, 0);
    at_buf_init(&w, 0);
    size_t fl = strlen(fill);
    bool ok = at_buf_adds(&s, prefix) == AT_OK && at_buf_reserve(&s, fl * count + strlen(suffix)) == AT_OK;
    for (size_t i = 0; ok && i < count; i++)
        at_buf_put(&s, fill, fl);
    ok = ok && at_buf_adds(&s, suffix) == AT_OK;
    if (ok && want_fill) {
        ok = at_buf_adds(&w, want) == AT_OK && at_buf_reserve(&w, fl * count) == AT_OK;
        for (size_t i = 0; ok && i < count; i++)
            at_buf_put(&w, fill, fl);
        ok = ok && at_buf_adds(&w, want_fill) == AT_OK;
    } else if (ok && want) {
        ok = at_buf_adds(&w, want) == AT_OK;
    }
    CHECK(ok, "%s: out of memory", what);
    if (ok)
        check_text(s.data, s.len, want ? w.data : NULL, w.len, what);
    at_buf_fini(&s);
    at_buf_fini(&w);
}

static void check_big(const char *prefix, const char *fill, size_t count, const char *suffix,
                      const char *want, const char *what)
{
    check_big_keep(prefix, fill, count, suffix, want, NULL, what);
}

static void test_big(void)
{
    const size_t M = 1u << 20;
    check_big("-----BEGIN RSA PRIVATE KEY-----\n", "MIIEowIBAAKCAQEA\n", M / 4,
              "-----END RSA PRIVATE KEY-----", "[REDACTED:private-key]", "4 MiB private key");
    check_big("-----BEGIN PRIVATE KEY-----\n", "x\r\n", M, "", NULL, "BEGIN and 3 MiB without END");
    check_big("x ", "0123456789abcdef", M / 4, " y", "x [REDACTED:hex-token] y", "4 MiB hex run");
    check_big("Bearer ", "abc.def-ghi_jkl~m+n/", M / 4, "==", "[REDACTED:bearer-token]",
              "5 MiB bearer token");
    check_big("postgres://", "u:p@h/xyz", M / 2, "", "[REDACTED:connection-string]",
              "4.5 MiB connection string");
    check_big("sk-", "aB3dE5gH7j", M / 2, " ok", "[REDACTED:openai-key] ok", "5 MiB openai key");
    check_big("https://", "u", 2 * M, ":pw@h", "https://[REDACTED:basic-auth]@h", "2 MiB user");
    check_big("https://", "user", M / 4, ":pw", NULL, "1 MiB user, no @");
    check_big("", "z", 4 * M, " ://u:p@h", NULL, "4 MiB word run, no scheme");
    check_big_keep("-", "z", 4 * M, "://u:p@h", "-", "://[REDACTED:basic-auth]@h", "4 MiB scheme");
}

static void test_many(void)
{
    /* many matches in one string */
    at_buf s, w;
    at_buf_init(&s, 0);
    at_buf_init(&w, 0);
    bool ok = true;
    for (int i = 0; ok && i < 20000; i++)
        ok = at_buf_adds(&s, "sk-aB3dE5gH7jK9mN1pQ3sT https://u:p@h ") == AT_OK &&
             at_buf_adds(&w, "[REDACTED:openai-key] https://[REDACTED:basic-auth]@h ") == AT_OK;
    if (ok)
        check_text(s.data, s.len, w.data, w.len, "20000 keys and URLs");

    /* every lone surrogate, then a key: 2048 stand-ins */
    at_buf_reset(&s);
    at_buf_reset(&w);
    char c[4];
    for (uint32_t cp = 0xd800; ok && cp <= 0xdfff; cp++) {
        ok = at_buf_add(&s, c, put_cp(c, cp)) == AT_OK && at_buf_addc(&s, ' ') == AT_OK &&
             at_buf_add(&w, c, put_cp(c, cp)) == AT_OK && at_buf_addc(&w, ' ') == AT_OK;
    }
    ok = ok && at_buf_adds(&s, "postgres://a\xed\xa0\x80z \xed\xbf\xbfhttp://u:p@h") == AT_OK &&
         at_buf_adds(&w, "[REDACTED:connection-string] \xed\xbf\xbfhttp://[REDACTED:basic-auth]@h") == AT_OK;
    if (ok)
        check_text(s.data, s.len, w.data, w.len, "all 2048 lone surrogates");

    /* every BMP private-use character is taken: stand-ins come from plane 15 */
    at_buf_reset(&s);
    at_buf_reset(&w);
    for (uint32_t cp = 0xe000; ok && cp <= 0xf8ff; cp++) {
        ok = at_buf_add(&s, c, put_cp(c, cp)) == AT_OK && at_buf_add(&w, c, put_cp(c, cp)) == AT_OK;
    }
    ok = ok && at_buf_adds(&s, " \xed\xa0\x80\xf3\xb0\x80\x80 key-aB3dE5gH7jK9mN1p\xed\xb0\x80 x") == AT_OK &&
         at_buf_adds(&w, " \xed\xa0\x80\xf3\xb0\x80\x80 [REDACTED:api-key]\xed\xb0\x80 x") == AT_OK;
    if (ok)
        check_text(s.data, s.len, w.data, w.len, "BMP private use taken, U+F0000 too");
    CHECK(ok, "test_many: out of memory");
    at_buf_fini(&s);
    at_buf_fini(&w);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void test_lifecycle(void)
{
    at_redact_free(NULL);
    at_error err = {0};
    at_redact *other = at_redact_new(&err);
    CHECK(other != NULL, "second redactor: %s", err.message);
    if (!other)
        return;
    at_buf out;
    at_buf_init(&out, 0);
    bool changed;
    at_result r = at_redact_text(other, "AKIAIOSFODNN7EXAMPLE", 20, &out, &changed);
    CHECK(r == AT_OK && changed && out.len == strlen("[REDACTED:aws-access-key]") &&
              memcmp(out.data, "[REDACTED:aws-access-key]", out.len) == 0,
          "second redactor redacts");
    at_redact_begin(other);
    at_redact_begin(rd);
    bool replaced;
    r = at_redact_hook(other, "token", 5, "x", 1, &out, &replaced);
    CHECK(r == AT_OK && at_redact_marked(other) && !at_redact_marked(rd), "flags are per redactor");
    at_buf_fini(&out);
    at_redact_free(other);
}

int main(void)
{
    at_error err = {0};
    rd = at_redact_new(&err);
    CHECK(rd != NULL, "at_redact_new: %s", err.message);
    if (!rd)
        return t_done("test_redact");
    test_keys();
    test_text();
    test_hook();
    test_raw_json();
    test_env();
    test_meta();
    test_vectors();
    /* The pre-filter only saves work: every vector again with it off. */
    at_redact_set_prefilter(rd, false);
    test_vectors();
    test_fixtures();
    at_redact_set_prefilter(rd, true);
    test_word_ranges();
    test_sweeps();
    test_fixtures();
    test_big();
    test_many();
    test_lifecycle();
    at_redact_free(rd);
    free(word);
    return t_done("test_redact");
}
