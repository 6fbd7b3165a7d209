/* test_timestamp.c - at_timestamp_parse against Python 3.11's
 * datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp(): the vectors
 * in tests/vectors/timestamps.tsv (gen_timestamps.py, TZ=UTC) bit for bit,
 * plus direct checks of bounds, buffers and local time in a DST zone. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* setenv, tzset */
#endif
#include "agenttrace/timestamp.h"
#include "testlib.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MIN_VECTORS 5000 /* a truncated vector file must not pass */

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_u4(const char *p, const char *end, uint32_t *u)
{
    if (end - p < 4)
        return false;
    *u = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return false;
        *u = *u << 4 | (uint32_t)h;
    }
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) { /* lone surrogates too: WTF-8 */
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the JSON string literal [p, end) (ASCII, as json.dumps writes it)
 * into out as WTF-8. Returns the length, or -1 if malformed. out must hold
 * end - p bytes: no escape decodes to more bytes than it takes. */
static long json_unquote(const char *p, const char *end, char *out)
{
    char *o = out;
    if (end - p < 2 || *p != '"' || end[-1] != '"')
        return -1;
    p++;
    end--;
    while (p < end) {
        char c = *p++;
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        if (p >= end)
            return -1;
        c = *p++;
        uint32_t u, lo;
        switch (c) {
        case '"':
        case '\\':
        case '/': *o++ = c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!read_u4(p, end, &u))
                return -1;
            p += 4;
            if (u >= 0xD800 && u < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                read_u4(p + 2, end, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            o += put_utf8(o, u);
            break;
        default: return -1;
        }
    }
    return (long)(o - out);
}

/* Parses s from an exactly sized heap copy, so any read past n is caught
 * by the sanitizers. */
static bool parse_exact(const char *s, size_t n, double *out)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return false;
    memcpy(copy, s, n);
    bool ok = at_timestamp_parse(copy, n, out);
    free(copy);
    return ok;
}

static void run_vectors(void)
{
    size_t len;
    char *data = t_read_file(t_src("tests/vectors/timestamps.tsv"), &len);
    CHECK(data != NULL, "cannot read %s", t_src("tests/vectors/timestamps.tsv"));
    if (!data)
        return;
    char *buf = malloc(len + 1);
    int vectors = 0, lineno = 0;
    char *line = data, *end = data + len;
    while (buf && line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *eol = nl ? nl : end;
        lineno++;
        if (eol > line && *line != '#') {
            char *tab = memchr(line, '\t', (size_t)(eol - line));
            long n = tab ? json_unquote(line, tab, buf) : -1;
            if (n < 0) {
                CHECK(n >= 0, "timestamps.tsv:%d: malformed line", lineno);
            } else {
                size_t wlen = (size_t)(eol - tab - 1);
                char want_s[64];
                bool want_err = wlen == 5 && memcmp(tab + 1, "ERROR", 5) == 0;
                double want = 0, got = -12345.0;
                if (!want_err && wlen < sizeof want_s) {
                    memcpy(want_s, tab + 1, wlen);
                    want_s[wlen] = 0;
                    want = strtod(want_s, NULL);
                }
                bool ok = parse_exact(buf, (size_t)n, &got);
                if (want_err)
                    CHECK(!ok, "timestamps.tsv:%d: %.*s: want ERROR, got %.17g", lineno, (int)(tab - line),
                          line, got);
                else
                    CHECK(ok && same_double(got, want), "timestamps.tsv:%d: %.*s: want %s, got %s %.17g",
                          lineno, (int)(tab - line), line, want_s, ok ? "" : "ERROR", got);
                vectors++;
            }
        }
        line = eol + 1;
    }
    CHECK(vectors >= MIN_VECTORS, "only %d vectors", vectors);
    free(buf);
    free(data);
}

/* One literal case; want_ok false means Python raises. */
static void check_one(const char *s, size_t n, bool want_ok, double want)
{
    double got = -12345.0;
    bool ok = parse_exact(s, n, &got);
    if (want_ok)
        CHECK(ok && same_double(got, want), "[%.*s]: want %.17g, got %s %.17g", (int)n, s, want,
              ok ? "" : "ERROR", got);
    else
        CHECK(!ok, "[%.*s]: want ERROR, got %.17g", (int)n, s, got);
}

#define ONE(lit, want_ok, want) check_one((lit), sizeof(lit) - 1, (want_ok), (want))

static void direct_checks(void)
{
    /* the common forms, and the spec's list */
    ONE("2026-02-12T16:02:48.183Z", true, 1770912168.183);
    ONE("2026-02-12T16:02:48.183+00:00", true, 1770912168.183);
    ONE("2026-02-12T16:02:48Z", true, 1770912168.0);
    ONE("2026-02-12T08:00:04.999999Z", true, 1770883204.999999);
    ONE("2026-02-12T16:02:48.1234567Z", true, 1770912168.123456);
    ONE("1969-12-31T23:59:59Z", true, -1.0);
    ONE("2026-02-12", true, 1770854400.0);
    ONE("2026-W07-4T16:02:48Z", true, 1770912168.0);
    ONE("2026-02-12\xc3\xa9"
        "16:02:48Z",
        true, 1770912168.0); /* a 2-byte separator */
    ONE("2026-02-12T24:00:00Z", false, 0);
    ONE("2026-02-12T16:02:48.183ZZ", false, 0);
    ONE("2026-02-12T16:02:48.183 Z", false, 0);
    ONE("2023-02-29T00:00:00Z", false, 0);
    ONE("0000-12-31T00:00:00Z", false, 0);
    /* an embedded NUL after six fraction digits ends the string for CPython */
    ONE("2026-02-12T16:02:48.123456\0xyz", true, 1770912168.123456);

    /* only n bytes are read: what follows is not part of the string */
    const char *longer = "2026-02-12T16:02:48.183Z trailing";
    double v = 0;
    CHECK(at_timestamp_parse(longer, 24, &v) && same_double(v, 1770912168.183), "prefix: %.17g", v);
    CHECK(!at_timestamp_parse(longer, 20, &v), "a bare '.' at the end is an error");
    CHECK(at_timestamp_parse(longer, 21, &v) && same_double(v, 1770912168.1),
          "'...48.1' is naive, UTC here: %.17g", v);
    CHECK(!at_timestamp_parse(longer, 25, &v), "a trailing space is an error");

    /* every prefix of the common form, from an exactly sized buffer */
    const char *full = "2026-02-12T16:02:48.183456+05:30";
    for (size_t n = 0; n <= strlen(full); n++) {
        double got;
        (void)parse_exact(full, n, &got);
    }
    CHECK(parse_exact(full, strlen(full), &v) && same_double(v, 1770892368.183456), "%.17g", v);

    /* failure leaves *out alone; an empty string is no timestamp */
    v = 42.0;
    CHECK(!at_timestamp_parse("garbage", 7, &v) && v == 42.0, "out changed on failure");
    CHECK(!at_timestamp_parse(NULL, 0, &v), "empty string parsed");
    CHECK(!at_timestamp_parse("", 0, &v), "empty string parsed");
}

/* Naive times are local: PEP 495 fold=0 semantics in a DST zone. The values
 * are Python's with TZ=EST5EDT,M3.2.0,M11.1.0 (a POSIX rule, no tzdata needed). */
static void local_time_checks(void)
{
    const char *old = getenv("TZ");
    char saved[256];
    snprintf(saved, sizeof saved, "%s", old ? old : "");
    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
    tzset();

    ONE("2026-03-08T01:59:59", true, 1772953199.0);
    ONE("2026-03-08T02:30:00", true, 1772955000.0); /* in the gap */
    ONE("2026-03-08T03:00:00", true, 1772953200.0);
    ONE("2026-11-01T01:30:00", true, 1793511000.0); /* the fold: first one */
    ONE("2026-11-01T01:30:00.25", true, 1793511000.25);
    ONE("2026-11-01T02:30:00", true, 1793518200.0);
    ONE("2026-07-01T12:00:00", true, 1782921600.0);
    ONE("2026-02-12T16:02:48.183", true, 1770930168.183);
    ONE("2026-02-12T16:02:48.183Z", true, 1770912168.183); /* aware: TZ plays no part */
    ONE("9999-12-31T23:59:59", true, 253402318799.0);
    ONE("0001-01-01T12:00:00", false, 0); /* CPython probes a day earlier: year 0 */

    setenv("TZ", "UTC-14", 1);
    tzset();
    ONE("9999-12-31T09:59:59", true, 253402199999.0);
    ONE("9999-12-31T10:00:00", false, 0); /* local time would be year 10000 */
    ONE("0001-01-01T14:00:00", false, 0);

    if (old)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
}

int main(void)
{
    /* the vectors are Python's with TZ=UTC */
    setenv("TZ", "UTC", 1);
    tzset();
    run_vectors();
    direct_checks();
    local_time_checks();
    return t_done("test_timestamp");
}
