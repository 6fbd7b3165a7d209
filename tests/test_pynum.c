/* test_pynum.c - at_pynum against Python 3.11: every line of
 * tests/vectors/pynum.tsv (gen_pynum.py: add, sub, sums, round, truthiness,
 * str, token and JSON value reading; the int64 fallback included), then
 * direct checks of the contracts: zero-filled value, token lengths honoured
 * without a NUL, the buffer sizes, at_pynum_write appending and failing. */
#include "agenttrace/pynum.h"
#include "testlib.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#define MIN_VECTORS 4000 /* a truncated file fails */
#define MAX_FIELDS  16

typedef struct {
    const char *p;
    size_t n;
} field;

/* A written value (see gen_pynum.py): only [-0-9] is an int, else a float. */
static bool is_int_text(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t k = 0; k < n; k++)
        if (!(s[k] == '-' || (s[k] >= '0' && s[k] <= '9')))
            return false;
    return true;
}

/* Builds the value directly (no at_pynum parsing), so INT64_MIN is an int. */
static bool value_of(field f, at_pynum *out)
{
    if (is_int_text(f.p, f.n)) {
        char b[32];
        if (f.n >= sizeof b)
            return false;
        memcpy(b, f.p, f.n);
        b[f.n] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(b, &end, 10);
        if (errno || *end)
            return false;
        *out = at_pynum_from_int((int64_t)v);
        return true;
    }
    *out = at_pynum_from_double(at_json_parse_double(f.p, f.n));
    return true;
}

/* str(got) must be want, and the type must be the one want is written in. */
static void check_result(at_pynum got, field want, int lineno, const char *what)
{
    char b[AT_PYNUM_STR_MAX];
    size_t n = at_pynum_format(got, b);
    CHECK(n < sizeof b && strlen(b) == n, "line %d %s: length %zu", lineno, what, n);
    CHECK(n == want.n && memcmp(b, want.p, n) == 0 && got.is_float == !is_int_text(want.p, want.n),
          "line %d %s: got %s (%s) want %.*s", lineno, what, b, got.is_float ? "float" : "int", (int)want.n,
          want.p);
}

static bool field_is(field f, const char *s)
{
    return f.n == strlen(s) && memcmp(f.p, s, f.n) == 0;
}

static int check_line(field *fs, size_t nf, int lineno)
{
    at_pynum a, b;
    if (field_is(fs[0], "add") || field_is(fs[0], "sub")) {
        if (nf != 4 || !value_of(fs[1], &a) || !value_of(fs[2], &b))
            return 0;
        at_pynum r = field_is(fs[0], "add") ? at_pynum_add(a, b) : at_pynum_sub(a, b);
        check_result(r, fs[3], lineno, field_is(fs[0], "add") ? "add" : "sub");
    } else if (field_is(fs[0], "sum")) {
        if (nf < 4 || !value_of(fs[1], &a))
            return 0;
        for (size_t k = 2; k + 1 < nf; k++) {
            if (!value_of(fs[k], &b))
                return 0;
            a = at_pynum_add(a, b);
        }
        check_result(a, fs[nf - 1], lineno, "sum");
    } else if (field_is(fs[0], "round")) {
        if (nf != 4 || !value_of(fs[1], &a))
            return 0;
        int nd = (int)strtol(fs[2].p, NULL, 10);
        check_result(at_pynum_round(a, nd), fs[3], lineno, "round");
        if (a.is_float) {
            at_pynum viad = at_pynum_from_double(at_pynum_round_double(a.f, nd));
            check_result(viad, fs[3], lineno, "round_double");
        }
    } else if (field_is(fs[0], "truthy")) {
        if (nf != 3 || !value_of(fs[1], &a))
            return 0;
        bool want = field_is(fs[2], "1");
        CHECK(at_pynum_truthy(a) == want, "line %d truthy %.*s", lineno, (int)fs[1].n, fs[1].p);
    } else if (field_is(fs[0], "str")) {
        if (nf != 3 || !value_of(fs[1], &a))
            return 0;
        check_result(a, fs[2], lineno, "str");
        at_buf out;
        at_buf_init(&out, 0);
        at_result r = at_pynum_write(&out, a);
        CHECK(r == AT_OK && out.len == fs[2].n && memcmp(out.data, fs[2].p, out.len) == 0,
              "line %d write: got %s", lineno, out.data ? out.data : "(null)");
        at_buf_fini(&out);
    } else if (field_is(fs[0], "parse")) {
        if (nf != 3)
            return 0;
        check_result(at_pynum_parse_token(fs[1].p, fs[1].n), fs[2], lineno, "parse");
        /* the same through the JSON value reader */
        at_pynum v;
        bool ok = at_pynum_parse_json(fs[1].p, fs[1].n, &v);
        CHECK(ok, "line %d parse_json refused a number", lineno);
        if (ok)
            check_result(v, fs[2], lineno, "parse_json");
    } else if (field_is(fs[0], "json")) {
        if (nf != 3)
            return 0;
        at_pynum v = at_pynum_from_int(12345); /* must stay when refused */
        bool ok = at_pynum_parse_json(fs[1].p, fs[1].n, &v);
        if (field_is(fs[2], "ERROR"))
            CHECK(!ok && !v.is_float && v.i == 12345, "line %d json %.*s: accepted", lineno, (int)fs[1].n,
                  fs[1].p);
        else if (ok)
            check_result(v, fs[2], lineno, "json");
        else
            CHECK(ok, "line %d json %.*s: refused", lineno, (int)fs[1].n, fs[1].p);
    } else {
        return 0;
    }
    return 1;
}

static void check_vectors(void)
{
    size_t len;
    char *text = t_read_file(t_src("tests/vectors/pynum.tsv"), &len);
    CHECK(text != NULL, "cannot read %s", t_src("tests/vectors/pynum.tsv"));
    if (!text)
        return;
    int count = 0, lineno = 0;
    for (char *line = text, *next; line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        size_t ll = (size_t)((nl ? nl : text + len) - line);
        lineno++;
        if (ll == 0 || line[0] == '#')
            continue;
        /* split on tabs; a field starting with '#' ends the line (a note) */
        field fs[MAX_FIELDS];
        size_t nf = 0;
        const char *p = line, *end = line + ll;
        while (p <= end && nf < MAX_FIELDS) {
            const char *tab = memchr(p, '\t', (size_t)(end - p));
            const char *fe = tab ? tab : end;
            if (fe > p && p[0] == '#')
                break;
            fs[nf].p = p;
            fs[nf].n = (size_t)(fe - p);
            nf++;
            if (!tab)
                break;
            p = tab + 1;
        }
        int ok = nf > 0 ? check_line(fs, nf, lineno) : 0;
        CHECK(ok, "line %d malformed: %.*s", lineno, (int)(ll > 80 ? 80 : ll), line);
        count += ok;
    }
    CHECK(count >= MIN_VECTORS, "only %d vectors", count);
    printf("pynum vectors: %d\n", count);
    free(text);
}

/* ---- contracts ------------------------------------------------------------- */

static void check_direct(void)
{
    at_pynum z;
    memset(&z, 0, sizeof z);
    CHECK(!z.is_float && z.i == 0 && !at_pynum_truthy(z), "zero-filled is the int 0");
    CHECK(at_pynum_to_double(at_pynum_from_int(INT64_MAX)) == 9223372036854775808.0, "float(INT64_MAX)");
    CHECK(at_pynum_to_double(at_pynum_from_int(-3)) == -3.0, "float(-3)");
    CHECK(at_pynum_to_double(at_pynum_from_double(0.25)) == 0.25, "float(0.25)");

    /* the token length is honoured: no NUL needed, none read past */
    at_pynum p = at_pynum_parse_token("12345", 3);
    CHECK(!p.is_float && p.i == 123, "prefix of an int token");
    p = at_pynum_parse_token("7.5", 1);
    CHECK(!p.is_float && p.i == 7, "int prefix of a float token");
    p = at_pynum_parse_token("-9223372036854775808", 20);
    CHECK(!p.is_float && p.i == INT64_MIN, "INT64_MIN stays an int");
    p = at_pynum_parse_token("1000000000000000000", 19);
    CHECK(!p.is_float && p.i == 1000000000000000000, "19 digits stay an int");

    at_pynum v = at_pynum_from_int(99);
    CHECK(!at_pynum_parse_json("true", 0, &v) && v.i == 99, "empty raw refused");
    CHECK(at_pynum_parse_json("truex", 4, &v) && !v.is_float && v.i == 1, "true by length");
    CHECK(at_pynum_parse_json("42,", 2, &v) && !v.is_float && v.i == 42, "number by length");

    /* the widest values fit AT_PYNUM_STR_MAX */
    char b[AT_PYNUM_STR_MAX];
    CHECK(at_pynum_format(at_pynum_from_int(INT64_MIN), b) == 20 && strcmp(b, "-9223372036854775808") == 0,
          "INT64_MIN: %s", b);
    CHECK(at_pynum_format(at_pynum_from_double(-2.2250738585072014e-308), b) == 24 &&
              strcmp(b, "-2.2250738585072014e-308") == 0,
          "widest float: %s", b);

    /* round with nd 0..60 on a value with many digits: never truncated */
    for (int nd = 0; nd <= 60; nd++) {
        double r = at_pynum_round_double(-1.7976931348623157e308, nd);
        CHECK(r == -1.7976931348623157e308, "round(-DBL_MAX, %d)", nd);
        r = at_pynum_round_double(0.1, nd);
        CHECK(nd == 0 ? r == 0.0 : r == 0.1, "round(0.1, %d) = %.17g", nd, r);
    }

    /* at_pynum_write appends, and fails as at_buf_add does */
    at_buf out;
    at_buf_init(&out, 8);
    at_result r = at_pynum_write(&out, at_pynum_from_int(12));
    if (r == AT_OK)
        r = at_pynum_write(&out, at_pynum_from_double(0.5));
    CHECK(r == AT_OK && out.len == 5 && memcmp(out.data, "120.5", 5) == 0, "append: %s", out.data);
    r = at_pynum_write(&out, at_pynum_from_double(1e-300));
    CHECK(r == AT_ERR_TOO_BIG, "over the cap: %d", (int)r);
    at_buf_fini(&out);
}

int main(void)
{
    check_vectors();
    check_direct();
    return t_done("test_pynum");
}
