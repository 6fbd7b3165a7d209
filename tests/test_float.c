/* test_float.c - numbers in the JSON dialect against Python 3.11:
 * at_json_write_number_token on tests/vectors/floats.tsv (gen_floats.py,
 * json.dumps(json.loads(token))) byte for byte, at_double_repr on the parsed
 * values, and direct checks: known bit patterns, the buffer contract,
 * unterminated and huge tokens, an independent shortest-digit search
 * (printf/strtod) on random doubles, and microsecond timestamps. Ends by
 * printing ns per call (informative, never a failure). */
#include "agenttrace/json.h"
#include "testlib.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MIN_VECTORS 15000 /* a truncated vector file must not pass */

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static bool same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || bits_of(a) == bits_of(b);
}

/* Fixed-seed xorshift64*: the same "random" doubles on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static bool is_float_token(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] == '.' || t[i] == 'e' || t[i] == 'E' || t[i] == 'N' || t[i] == 'I')
            return true;
    return false;
}

/* ---- the vectors ---------------------------------------------------------- */

static void check_vectors(void)
{
    size_t len;
    char *text = t_read_file(t_src("tests/vectors/floats.tsv"), &len);
    CHECK(text != NULL, "cannot read %s", t_src("tests/vectors/floats.tsv"));
    if (!text)
        return;
    at_buf out;
    at_buf_init(&out, 0);
    int count = 0;
    for (char *line = text, *next; line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        size_t ll = (size_t)((nl ? nl : text + len) - line);
        if (ll == 0 || line[0] == '#')
            continue;
        char *tab = memchr(line, '\t', ll);
        if (!tab) {
            CHECK(tab != NULL, "malformed line %.*s", (int)(ll > 80 ? 80 : ll), line);
            continue;
        }
        const char *tok = line, *want = tab + 1;
        size_t tn = (size_t)(tab - line), wn = ll - tn - 1;
        bool isf = is_float_token(tok, tn);
        int shown = tn > 60 ? 60 : (int)tn; /* long tokens: their head only */

        at_buf_reset(&out);
        at_result r = at_json_write_number_token(&out, tok, tn, isf);
        bool tok_ok = r == AT_OK && out.len == wn && memcmp(out.data, want, wn) == 0;

        /* the same through at_double_repr, and its output reads back */
        bool repr_ok = true, back_ok = true;
        char rb[AT_DOUBLE_REPR_MAX] = "";
        if (isf) {
            double v = at_json_parse_double(tok, tn);
            size_t rn = at_double_repr(v, rb);
            repr_ok = rn == wn && memcmp(rb, want, wn) == 0 && rb[rn] == 0;
            back_ok = same_double(at_json_parse_double(rb, rn), v);
        }
        CHECK(tok_ok && repr_ok && back_ok, "token %.*s%s: write [%.*s] repr [%s] want [%.*s]%s", shown, tok,
              (int)tn > shown ? "..." : "", (int)out.len, out.data ? out.data : "", rb, (int)wn, want,
              back_ok ? "" : " (does not read back)");
        count++;
    }
    CHECK(count >= MIN_VECTORS, "only %d vectors in floats.tsv", count);
    printf("floats.tsv: %d vectors\n", count);
    at_buf_fini(&out);
    free(text);
}

/* ---- direct cases --------------------------------------------------------- */

/* From Python 3.11: json.dumps(struct.unpack("<d", bits)[0]). */
static const struct {
    uint64_t bits;
    const char *want;
} KNOWN[] = {
    {0x0000000000000000, "0.0"},
    {0x8000000000000000, "-0.0"},
    {0x7FF0000000000000, "Infinity"},
    {0xFFF0000000000000, "-Infinity"},
    {0x7FF8000000000000, "NaN"},
    {0xFFF8000000000000, "NaN"},
    {0x7FF0000000000001, "NaN"},
    {0x0000000000000001, "5e-324"},
    {0x8000000000000001, "-5e-324"},
    {0x0000000000000002, "1e-323"},
    {0x0000000000002272, "4.3567e-320"},
    {0x000FFFFFFFFFFFFF, "2.225073858507201e-308"},
    {0x0010000000000000, "2.2250738585072014e-308"},
    {0x0010000000000001, "2.225073858507202e-308"},
    {0x0020000000000000, "4.450147717014403e-308"},
    {0x0028000000000000, "6.675221575521604e-308"},
    {0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"},
    {0x7FE0000000000000, "8.98846567431158e+307"},
    {0x3FB999999999999A, "0.1"},
    {0x3FD3333333333334, "0.30000000000000004"},
    {0x3FD5555555555555, "0.3333333333333333"},
    {0xBFE5555555555555, "-0.6666666666666666"},
    {0x4480F0CF064DD592, "1e+22"},
    {0x44B52D02C7E14AF6, "1e+23"},
    {0x444B1AE4D6E2EF50, "1e+21"},
    {0x43E0000000000000, "9.223372036854776e+18"},
    {0x3D30000000000000, "5.684341886080802e-14"},
    {0x4350000000000000, "1.8014398509481984e+16"},
    {0x3EB0000000000000, "9.5367431640625e-07"},
    {0x4340000000000000, "9007199254740992.0"},
    {0x419D6F34547E6B75, "123456789.12345679"},
    {0x41DA6339CE580000, "1770841913.375"},
    {0x41015077FFF90000, "141838.99998664856"},
    {0x3E7AD7F29ABCAF48, "1e-07"},
    {0xBEE4F8B588E368F1, "-1e-05"},
    {0x4341C37937E08000, "1e+16"},
    {0x430C6BF526340000, "1000000000000000.0"},
    {0x4341C37937E07FFF, "9999999999999998.0"},
    {0x3F1A36E2EB1C432D, "0.0001"},
    {0x3F1A36E2EB1C432C, "9.999999999999999e-05"},
    {0x7E41EB2D66005835, "1.5e+300"},
    {0x4059000000000000, "100.0"},
    {0x3FF0000000000000, "1.0"},
};

static void check_known(void)
{
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++) {
        char b[AT_DOUBLE_REPR_MAX];
        memset(b, 'x', sizeof b);
        size_t n = at_double_repr(from_bits(KNOWN[i].bits), b);
        CHECK(n == strlen(KNOWN[i].want) && strcmp(b, KNOWN[i].want) == 0, "bits %016llx: got [%s] want [%s]",
              (unsigned long long)KNOWN[i].bits, b, KNOWN[i].want);
    }

    /* at_json_write_double appends */
    at_buf out;
    at_buf_init(&out, 0);
    CHECK(at_buf_adds(&out, "[") == AT_OK && at_json_write_double(&out, 0.5) == AT_OK &&
              at_buf_adds(&out, ",") == AT_OK && at_json_write_double(&out, -INFINITY) == AT_OK,
          "append failed");
    CHECK_BYTES(out.data, out.len, "[0.5,-Infinity", 14, "write_double appends");
    /* and fails cleanly at the buffer cap */
    at_buf capped;
    at_buf_init(&capped, 4);
    CHECK(at_json_write_double(&capped, 0.125) == AT_ERR_TOO_BIG && capped.len == 0,
          "0.125 into a 4-byte buffer");
    at_buf_fini(&capped);

    /* tokens read only n bytes: their neighbours are not NUL */
    static const struct {
        const char *src;
        size_t n;
        bool is_float;
        const char *want;
    } TOK[] = {
        {"1.5999", 3, true, "1.5"},
        {"1e57", 3, true, "100000.0"},
        {"-0.5", 2, false, "0"},
        {"-0", 2, false, "0"},
        {"0", 1, false, "0"},
        {"-12", 3, false, "-12"},
        {"-0.0", 4, true, "-0.0"},
        {"-0e99", 5, true, "-0.0"},
        {"NaN1", 3, true, "NaN"},
        {"Infinity0", 8, true, "Infinity"},
        {"-Infinity", 9, true, "-Infinity"},
        {"-1e-4000", 8, true, "-0.0"},
        {"1e4000", 6, true, "Infinity"},
        {"2.5E+3", 6, true, "2500.0"},
        {"1E-7", 4, true, "1e-07"},
        {"0.1e-9999999999999999999999", 27, true, "0.0"},
        {"1234567890123456789012345678901234567890", 40, false, "1234567890123456789012345678901234567890"},
    };
    for (size_t i = 0; i < sizeof TOK / sizeof TOK[0]; i++) {
        at_buf_reset(&out);
        at_result r = at_json_write_number_token(&out, TOK[i].src, TOK[i].n, TOK[i].is_float);
        CHECK(r == AT_OK && out.len == strlen(TOK[i].want) && strcmp(out.data, TOK[i].want) == 0,
              "token %.*s: got [%s] want [%s]", (int)TOK[i].n, TOK[i].src, out.data, TOK[i].want);
    }
    CHECK(signbit(at_json_parse_double("-0.0", 4)) && at_json_parse_double("-0.0", 4) == 0,
          "-0.0 keeps its sign");
    CHECK(signbit(at_json_parse_double("-1e-400", 7)), "-1e-400 keeps its sign");
    at_buf_fini(&out);
}

/* Builds head + `count` copies of fill + tail in a heap token, unterminated
 * (a trap byte follows). */
static char *make_token(const char *head, char fill, size_t count, const char *tail, size_t *n)
{
    size_t h = strlen(head), t = strlen(tail);
    char *p = malloc(h + count + t + 1);
    if (!p)
        return NULL;
    memcpy(p, head, h);
    memset(p + h, fill, count);
    memcpy(p + h + count, tail, t);
    p[h + count + t] = '7';
    *n = h + count + t;
    return p;
}

static void check_huge(void)
{
    static const struct {
        const char *head;
        char fill;
        size_t count;
        const char *tail;
        const char *want;
    } H[] = {
        /* 2^53 + 1 is the midpoint of 2^53 and 2^53 + 2: even wins unless a
         * nonzero digit a million places on says above */
        {"9007199254740993.", '0', 1000000, "", "9007199254740992.0"},
        {"9007199254740993.", '0', 1000000, "1", "9007199254740994.0"},
        {"9007199254740993", '0', 1000000, "e-1000000", "9007199254740992.0"},
        {"9007199254740993", '0', 1000000, "1e-1000001", "9007199254740994.0"},
        {"-9007199254740995.", '0', 5000, "", "-9007199254740996.0"},
        {"-9007199254740994.", '9', 5000, "", "-9007199254740994.0"},
        {"0.", '9', 1000000, "", "1.0"},
        {"0.", '0', 1000000, "1", "0.0"},
        {"0.", '0', 1000000, "1e1000000", "0.1"},
        {"1", '0', 1000000, ".0", "Infinity"},
        {"-1", '0', 1000000, "e-1000000", "-1.0"},
        {"1", '1', 100000, "e-100000", "1.1111111111111112"},
        {"1e", '9', 1000, "", "Infinity"},
        {"1e-", '9', 1000, "", "0.0"},
        {"0e", '9', 1000, "", "0.0"},
        {"1e+", '0', 1000, "5", "100000.0"},
        /* the smallest subnormal's upper half: 2.4703282292062327...e-324 is
         * the midpoint of 0 and 5e-324; ties go to even, i.e. to 0 */
        {"2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125",
         '0', 3000, "e-324", "0.0"},
        {"2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125",
         '0', 3000, "1e-324", "5e-324"},
    };
    at_buf out;
    at_buf_init(&out, 0);
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++) {
        size_t n;
        char *tok = make_token(H[i].head, H[i].fill, H[i].count, H[i].tail, &n);
        CHECK(tok != NULL, "out of memory");
        if (!tok)
            continue;
        at_buf_reset(&out);
        at_result r = at_json_write_number_token(&out, tok, n, true);
        CHECK(r == AT_OK && strcmp(out.data, H[i].want) == 0,
              "huge token %.20s...%s (%zu bytes): got [%s] want [%s]", H[i].head, H[i].tail, n, out.data,
              H[i].want);
        free(tok);
    }
    /* a long integer is copied, not converted */
    size_t n;
    char *tok = make_token("-1", '0', 100000, "", &n);
    if (tok) {
        at_buf_reset(&out);
        CHECK(at_json_write_number_token(&out, tok, n, false) == AT_OK && out.len == n &&
                  memcmp(out.data, tok, n) == 0,
              "100001-digit integer");
        free(tok);
    }
    at_buf_fini(&out);
}

/* ---- an independent oracle ------------------------------------------------ */

/* Shortest round-trip digits by search, for finite v > 0: for p = 1, 2, ...
 * glibc's exact %.*e gives c, the p-digit decimal closest to v. If c reads
 * back to v it is the answer. If not, a p-digit decimal that does can only be
 * c's neighbour in the last digit (the rounding interval is an interval
 * holding v, and c is the closest), and only one of the two (else c, between
 * them, would be inside too); that happens where the interval is lopsided, at
 * powers of two. Writes the digits without trailing zeros; returns their
 * count and sets *x to the decimal exponent of the first. */
static int oracle(double v, char *dig, int *x)
{
    for (int p = 1; p <= 17; p++) {
        char b[48];
        snprintf(b, sizeof b, "%.*e", p - 1, v);
        uint64_t m = 0;
        char *q = b;
        for (; *q != 'e'; q++)
            if (*q != '.')
                m = m * 10 + (uint64_t)(*q - '0');
        int e = (int)strtol(q + 1, NULL, 10) - (p - 1); /* v ~ m * 10^e */
        const uint64_t cand[3] = {m, m - 1, m + 1};
        for (int c = 0; c < 3; c++) {
            snprintf(b, sizeof b, "%llue%d", (unsigned long long)cand[c], e);
            if (strtod(b, NULL) != v)
                continue;
            uint64_t k = cand[c];
            while (k % 10 == 0) {
                k /= 10;
                e++;
            }
            int n = snprintf(dig, 24, "%llu", (unsigned long long)k);
            *x = e + n - 1;
            return n;
        }
    }
    return 0;
}

/* Reads a repr back into its digits (no leading or trailing zeros) and the
 * decimal exponent of the first, whatever the layout. */
static int digits_of(const char *s, char *dig, int *x)
{
    int n = 0, point = -1, e = 0;
    bool lead = true;
    int pos = 0; /* digits seen, leading zeros included */
    const char *p = s;
    if (*p == '-')
        p++;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') {
            point = pos;
            continue;
        }
        pos++;
        if (lead && *p == '0') {
            e--; /* leading zeros move the first digit right */
            continue;
        }
        lead = false;
        dig[n++] = *p;
    }
    if (point < 0)
        point = pos;
    while (n > 1 && dig[n - 1] == '0')
        n--;
    dig[n] = 0;
    *x = point - 1 + e + (*p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0);
    return n;
}

static void check_against_oracle(void)
{
    int bad = 0, done = 0;
    size_t longest = 0;
    for (int i = 0; i < 60000; i++) {
        uint64_t b = rng();
        if (i % 4 == 1) /* powers of two and their neighbours, any exponent */
            b = (b & 0xFFF0000000000000u) + (b >> 40 & 3) - 1;
        else if (i % 4 == 2) /* short mantissas: few digits */
            b &= 0xFFFFFFFF00000000u;
        double v = from_bits(b);
        if (!isfinite(v) || v == 0)
            continue;
        char got[AT_DOUBLE_REPR_MAX], want_d[24], got_d[32];
        size_t gn = at_double_repr(v, got);
        longest = gn > longest ? gn : longest;
        int wx = 0, gx = 0;
        int wn = oracle(fabs(v), want_d, &wx);
        int dn = digits_of(got, got_d, &gx);
        if (wn != dn || wx != gx || memcmp(want_d, got_d, (size_t)wn) != 0 || (got[0] == '-') != (v < 0)) {
            if (bad++ < 10)
                fprintf(stderr, "oracle: %016llx: repr %s, search %.*s x %d\n", (unsigned long long)b, got,
                        wn, want_d, wx);
        }
        done++;
    }
    CHECK(bad == 0, "%d of %d random doubles differ from the digit search", bad, done);
    CHECK(longest < AT_DOUBLE_REPR_MAX, "repr of %zu bytes", longest);
}

/* ---- microsecond timestamps ----------------------------------------------- */

/* v = k / 1e6 (correctly rounded) for |v| < 2^33: then repr(v) is k's
 * decimal with six fraction digits, trailing zeros dropped. It reads back to
 * v (strtod of that decimal is the same correctly rounded quotient), and no
 * shorter or other equally short decimal does: those sit on a grid of 1e-6 or
 * coarser, so at least 1e-6 - ulp/2 from v, outside v's rounding interval of
 * half-width ulp/2 because ulp <= 2^-20 < 1e-6. */
static void check_timestamps(void)
{
    int bad = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t k = 100 + rng() % 8589934592000000u; /* [1e-4, 2^33) seconds */
        double v = (double)k / 1e6;
        char want[40], got[AT_DOUBLE_REPR_MAX];
        int wn = snprintf(want, sizeof want, "%llu.%06llu", (unsigned long long)(k / 1000000),
                          (unsigned long long)(k % 1000000));
        while (want[wn - 1] == '0' && want[wn - 2] != '.')
            want[--wn] = 0;
        at_double_repr(v, got);
        if (strcmp(got, want) != 0 && bad++ < 10)
            fprintf(stderr, "timestamp %llu us: got %s want %s\n", (unsigned long long)k, got, want);
    }
    CHECK(bad == 0, "%d microsecond timestamps differ", bad);
}

/* ---- speed ---------------------------------------------------------------- */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench(void)
{
    static double vals[4096];
    static const char *const names[] = {"1770841913.375", "141838.99998664856", "timestamps k/1e6",
                                        "random bit patterns"};
    volatile size_t sink = 0;
    for (int set = 0; set < 4; set++) {
        for (int i = 0; i < 4096; i++) {
            if (set == 0)
                vals[i] = 1770841913.375;
            else if (set == 1)
                vals[i] = 141838.99998664856;
            else if (set == 2)
                vals[i] = (double)(1770000000000000u + rng() % 1000000000000u) / 1e6;
            else
                do
                    vals[i] = from_bits(rng());
                while (!isfinite(vals[i]));
        }
        const int rounds = 100;
        char b[AT_DOUBLE_REPR_MAX];
        double t0 = now_ns();
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < 4096; i++)
                sink += at_double_repr(vals[i], b);
        double t1 = now_ns();
        size_t tl = at_double_repr(vals[0], b);
        double t2 = now_ns();
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < 4096; i++)
                sink += (size_t)(at_json_parse_double(b, tl) > 0);
        double t3 = now_ns();
        printf("at_double_repr %-20s %6.1f ns/call   at_json_parse_double(\"%s\") %6.1f ns/call\n",
               names[set], (t1 - t0) / (rounds * 4096.0), b, (t3 - t2) / (rounds * 4096.0));
    }
    (void)sink;
}

int main(void)
{
    check_vectors();
    check_known();
    check_huge();
    check_against_oracle();
    check_timestamps();
    bench();
    return t_done("test_float");
}
