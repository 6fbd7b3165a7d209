/* timestamp.c - datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
 * as CPython 3.11's C module computes it (claude-import.md §2).
 *
 * The contract is whatever 3.11 accepts, quirks included, so the slow path is
 * a line-by-line port of Modules/_datetimemodule.c (parse_isoformat_date,
 * parse_hh_mm_ss_ff, parse_isoformat_time, _find_isoformat_datetime_separator,
 * local_to_seconds), checked against the real interpreter by differential
 * fuzzing. That code walks a NUL-terminated UTF-8 buffer and sometimes reads
 * past the end of the field it is parsing; here every read goes through
 * text_at(), which sees the Z-rewritten string plus its terminating NUL
 * without building it. The common transcript form takes a fast path first. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#endif
#include "agenttrace/timestamp.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#define US_PER_SEC    INT64_C(1000000)
#define SEC_PER_DAY   86400
#define EPOCH_ORDINAL 719163 /* ymd_to_ord(1970, 1, 1) */
#define EPOCH_SECONDS ((long long)EPOCH_ORDINAL * SEC_PER_DAY)
#define NO_SURROGATE  SIZE_MAX

static const int days_in_month_tab[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
static const int days_before_month_tab[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

/* ---- calendar arithmetic, as CPython does it (C division, not floor) */

static bool is_leap(int year)
{
    unsigned y = (unsigned)year;
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int year, int month)
{
    return month == 2 && is_leap(year) ? 29 : days_in_month_tab[month];
}

static int days_before_year(int year)
{
    int y = year - 1;
    return y * 365 + y / 4 - y / 100 + y / 400;
}

/* Day number of year-month-day, 0001-01-01 being 1. month must be 1..12. */
static int ymd_to_ord(int year, int month, int day)
{
    return days_before_year(year) + days_before_month_tab[month] + (month > 2 && is_leap(year)) + day;
}

/* Inverse of ymd_to_ord for ordinal >= 1. */
static void ord_to_ymd(int ordinal, int *year, int *month, int *day)
{
    enum { DI4Y = 1461, DI100Y = 36524, DI400Y = 146097 };
    int n = ordinal - 1;
    int n400 = n / DI400Y;
    n %= DI400Y;
    int n100 = n / DI100Y;
    n %= DI100Y;
    int n4 = n / DI4Y;
    n %= DI4Y;
    int n1 = n / 365;
    n %= 365;
    *year = n400 * 400 + 1 + n100 * 100 + n4 * 4 + n1;
    if (n1 == 4 || n100 == 4) {
        *year -= 1;
        *month = 12;
        *day = 31;
        return;
    }
    bool leap = n1 == 3 && (n4 != 24 || n100 == 3);
    *month = (n + 50) >> 5; /* exact or one too large */
    int preceding = days_before_month_tab[*month] + (*month > 2 && leap);
    if (preceding > n) {
        *month -= 1;
        preceding -= days_in_month(*year, *month);
    }
    *day = n - preceding + 1;
}

/* ISO year/week/weekday to a calendar date. CPython skips the year check and
 * then reads outside its month table for ISO year 0; every such date ends
 * in a ValueError there (all 0000-Www-d were tried), so it fails here. */
static bool iso_to_ymd(int iso_year, int week, int wday, int *year, int *month, int *day)
{
    if (iso_year < 1)
        return false;
    int first_day = ymd_to_ord(iso_year, 1, 1);
    int first_weekday = (first_day + 6) % 7; /* 0 = Monday */
    if (week <= 0 || week >= 53) {
        /* 53 weeks in years starting on a Thursday, or leap years on a Wednesday */
        if (!(week == 53 && (first_weekday == 3 || (first_weekday == 2 && is_leap(iso_year)))))
            return false;
    }
    if (wday <= 0 || wday >= 8)
        return false;
    int week1_monday = first_day - first_weekday;
    if (first_weekday > 3)
        week1_monday += 7;
    ord_to_ymd(week1_monday + (week - 1) * 7 + wday - 1, year, month, day);
    return true;
}

/* The datetime constructor's range checks (fold and microsecond always fit). */
static bool valid_datetime(int y, int mo, int d, int h, int mi, int s)
{
    return y >= 1 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo) && h >= 0 &&
           h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 59;
}

/* us / 10^6 correctly rounded, as Python's int true division gives it.
 * Below 2^53 both operands are exact doubles and one IEEE division is
 * correctly rounded. Above, scale so the integer quotient has 56 bits, fold
 * the remainder into a sticky bit (it can then only break ties, which is all
 * it must do), and let the int-to-double conversion round once. */
static double micros_to_seconds(int64_t us)
{
    uint64_t a = us < 0 ? (uint64_t) - (us + 1) + 1 : (uint64_t)us;
    double r;
    if (a <= UINT64_C(1) << 53) {
        r = (double)a / 1e6;
    } else {
        int k = 76 - (64 - __builtin_clzll(a)); /* 12..22 */
        uint64_t q = a / US_PER_SEC, rem = (a % US_PER_SEC) << k;
        uint64_t x = (q << k) + rem / US_PER_SEC; /* < 2^57 */
        x |= rem % US_PER_SEC != 0;
        r = (double)(int64_t)x / (double)(UINT64_C(1) << k); /* exact scaling */
    }
    return us < 0 ? -r : r;
}

/* ---- local time: CPython's local() and local_to_seconds() (PEP 495) */

static long long utc_to_seconds(int y, int mo, int d, int h, int mi, int s)
{
    if (y < 1 || y > 9999)
        return -1;
    long long ord = ymd_to_ord(y, mo, d);
    return ((ord * 24 + h) * 60 + mi) * 60 + s;
}

/* Local wall time of u (seconds since 0001-01-01 UTC), same scale; -1 on error. */
static long long local_seconds(long long u)
{
    struct tm tm;
    time_t t = (time_t)(u - EPOCH_SECONDS);
    if ((long long)t != u - EPOCH_SECONDS || !localtime_r(&t, &tm))
        return -1;
    return utc_to_seconds(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Solves local_seconds(u) == t for u with fold = 0; -1 on error. */
static long long local_to_seconds(int y, int mo, int d, int h, int mi, int s)
{
    const long long max_fold_seconds = SEC_PER_DAY;
    long long t = utc_to_seconds(y, mo, d, h, mi, s);
    long long lt = local_seconds(t);
    if (lt == -1)
        return -1;
    long long a = lt - t, b;
    long long u1 = t - a;
    long long t1 = local_seconds(u1);
    if (t1 == -1)
        return -1;
    if (t1 == t) {
        /* one solution; look for an earlier one (fold 0) */
        long long u2 = u1 - max_fold_seconds;
        lt = local_seconds(u2);
        if (lt == -1)
            return -1;
        b = lt - u2;
        if (a == b)
            return u1;
    } else {
        b = t1 - u1;
    }
    long long u2 = t - b;
    long long t2 = local_seconds(u2);
    if (t2 == -1)
        return -1;
    if (t2 == t)
        return u2;
    if (t1 == t)
        return u1;
    /* in the gap */
    return u1 > u2 ? u1 : u2;
}

/* ---- the rewritten text: Z -> +00:00, and the one lone surrogate Python
 * sanitizes (a WTF-8 ED A0..BF xx at code point 7, 8 or 10) -> T */

typedef struct {
    const unsigned char *s;
    size_t len;    /* bytes of the rewritten text; text_at(len) is its NUL */
    size_t sur;    /* source offset of the surrogate shown as 'T', or NO_SURROGATE */
    size_t si, vi; /* cursor: the source unit at si starts at rewritten offset vi */
} text;

static size_t unit_src_len(const text *t, size_t si)
{
    return si == t->sur ? 3 : 1;
}

static size_t unit_out_len(const text *t, size_t si)
{
    return t->s[si] == 'Z' ? 6 : 1;
}

/* Byte i of the rewritten text, 0 at and past its end. Accesses are nearly
 * sequential, so moving the cursor is amortized O(1). */
static unsigned char text_at(text *t, size_t i)
{
    if (i >= t->len)
        return 0;
    while (i < t->vi) {
        if (t->sur != NO_SURROGATE && t->si == t->sur + 3)
            t->si = t->sur;
        else
            t->si--;
        t->vi -= unit_out_len(t, t->si);
    }
    while (i >= t->vi + unit_out_len(t, t->si)) {
        t->vi += unit_out_len(t, t->si);
        t->si += unit_src_len(t, t->si);
    }
    if (t->si == t->sur)
        return 'T';
    if (t->s[t->si] == 'Z')
        return (unsigned char)"+00:00"[i - t->vi];
    return t->s[t->si];
}

static bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

/* parse_digits: appends count digits at *p to *var; false at a non-digit. */
static bool parse_digits(text *t, size_t *p, int *var, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        unsigned char c = text_at(t, (*p)++);
        if (!is_digit(c))
            return false;
        *var = *var * 10 + (c - '0');
    }
    return true;
}

/* _find_isoformat_datetime_separator: where the date ends; -1 if nowhere. */
static long find_separator(text *t)
{
    size_t len = t->len;
    if (len == 7)
        return 7;
    if (text_at(t, 4) == '-') {
        if (text_at(t, 5) != 'W')
            return 10; /* YYYY-MM-DD */
        if (len < 8)
            return -1;
        if (len > 8 && text_at(t, 8) == '-') {
            if (len == 9)
                return -1;
            /* YYYY-Www-D or YYYY-Www then a '-' separator: a digit at 10
             * is taken as the hour */
            return len > 10 && is_digit(text_at(t, 10)) ? 8 : 10;
        }
        return 8; /* YYYY-Www */
    }
    if (text_at(t, 4) == 'W') {
        /* YYYYWww or YYYYWwwd: decided by the parity of the digit run */
        size_t idx = 7;
        while (idx < len && is_digit(text_at(t, idx)))
            idx++;
        if (idx < 9)
            return (long)idx;
        return idx % 2 == 0 ? 7 : 8;
    }
    return 8; /* YYYYMMDD */
}

/* parse_isoformat_date over the first len bytes. Nonzero on failure. */
static int parse_date(text *t, size_t len, int *year, int *month, int *day)
{
    size_t p = 0;
    if (!parse_digits(t, &p, year, 4))
        return -1;
    bool uses_sep = text_at(t, p) == '-';
    if (uses_sep)
        p++;
    if (text_at(t, p) == 'W') {
        int week = 0, wday = 0;
        p++;
        if (!parse_digits(t, &p, &week, 2))
            return -3;
        if (p < len) {
            if (uses_sep && text_at(t, p++) != '-')
                return -2;
            if (!parse_digits(t, &p, &wday, 1))
                return -4;
        } else {
            wday = 1;
        }
        return iso_to_ymd(*year, week, wday, year, month, day) ? 0 : -5;
    }
    if (!parse_digits(t, &p, month, 2))
        return -1;
    if (uses_sep && text_at(t, p++) != '-')
        return -2;
    if (!parse_digits(t, &p, day, 2))
        return -1;
    return 0;
}

/* parse_hh_mm_ss_ff: HH[:?MM[:?SS]][{.,}f+] ending at p_end. Returns <0 on
 * failure, else whether parsing stopped short of a NUL (1) or at one (0):
 * CPython's test for "end of string", which an embedded NUL also passes. */
static int parse_hms(text *t, size_t p, size_t p_end, int v[4])
{
    static const int correction[5] = {100000, 10000, 1000, 100, 10};
    bool has_sep = true;

    v[0] = v[1] = v[2] = v[3] = 0;
    for (int i = 0; i < 3; i++) {
        if (!parse_digits(t, &p, &v[i], 2))
            return -3;
        unsigned char c = text_at(t, p++);
        if (i == 0)
            has_sep = c == ':';
        if (p >= p_end)
            return c != 0;
        if (has_sep && c == ':')
            continue;
        if (c == '.' || c == ',')
            break;
        if (has_sep)
            return -4;
        p--;
    }
    /* here p < p_end, so at least one fraction digit is read */
    size_t to_parse = p_end - p >= 6 ? 6 : p_end - p;
    if (!parse_digits(t, &p, &v[3], to_parse))
        return -3;
    if (to_parse < 6)
        v[3] *= correction[to_parse - 1];
    while (is_digit(text_at(t, p)))
        p++; /* digits past the 6th are cut */
    return text_at(t, p) != 0;
}

/* parse_isoformat_time from p to the end: <0 on failure, 0 naive, 1 with an
 * offset of tz_sec seconds and tz_us microseconds (same sign). */
static int parse_time(text *t, size_t p, int v[4], int *tz_sec, int *tz_us)
{
    size_t p_end = t->len, tz = p;
    do {
        unsigned char c = text_at(t, tz);
        if (c == 'Z' || c == '+' || c == '-')
            break;
    } while (++tz < p_end);

    int rv = parse_hms(t, p, tz, v);
    if (rv < 0)
        return rv;
    if (tz == p_end)
        return rv == 1 ? -5 : 0;
    if (text_at(t, tz) == 'Z') { /* unreachable after the rewrite; kept as CPython has it */
        *tz_sec = *tz_us = 0;
        return text_at(t, tz + 1) != 0 ? -5 : 1;
    }
    int sign = text_at(t, tz) == '-' ? -1 : 1;
    int z[4];
    rv = parse_hms(t, tz + 1, p_end, z);
    *tz_sec = sign * (z[0] * 3600 + z[1] * 60 + z[2]);
    *tz_us = sign * z[3];
    return rv ? -5 : 1;
}

/* Sets up the rewritten view of s; false when Python fails before parsing
 * (fewer than 7 code points, or a lone surrogate it cannot sanitize). */
static bool text_init(text *t, const unsigned char *s, size_t n)
{
    size_t cps = 0, zs = 0, surs = 0, sur_cp = 0, sur_at = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == 0xED && i + 1 < n && s[i + 1] >= 0xA0) {
            surs++;
            sur_cp = cps + 5 * zs;
            sur_at = i;
        }
        zs += c == 'Z';
        cps += (c & 0xC0) != 0x80;
    }
    if (cps + 5 * zs < 7 || surs > 1)
        return false;
    t->s = s;
    t->len = n + 5 * zs;
    t->sur = NO_SURROGATE;
    t->si = t->vi = 0;
    if (surs == 1) {
        /* any other surrogate makes the UTF-8 encode fail */
        if (sur_cp != 7 && sur_cp != 8 && sur_cp != 10)
            return false;
        t->sur = sur_at;
        t->len -= 2;
    }
    return true;
}

/* Everything the fast path does not take; kept out of line so the fast
 * path stays small. */
__attribute__((noinline)) static bool parse_general(const unsigned char *s, size_t n, double *out)
{
    text t;
    if (!text_init(&t, s, n))
        return false;

    int year = 0, month = 0, day = 0, v[4] = {0, 0, 0, 0}, tz_sec = 0, tz_us = 0;
    long sep = find_separator(&t);
    if (sep < 0)
        return false;
    int rv = parse_date(&t, (size_t)sep, &year, &month, &day);
    if (rv == 0 && t.len > (size_t)sep) {
        /* the separator may be any one character, of 1 to 4 UTF-8 bytes,
         * sized by CPython from its first byte alone */
        size_t p = (size_t)sep;
        unsigned char c = text_at(&t, p);
        if (c < 0x80)
            p += 1;
        else if ((c & 0xF0) == 0xE0)
            p += 3;
        else if ((c & 0xF0) == 0xF0)
            p += 4;
        else
            p += 2;
        if (p > t.len)
            return false; /* only with invalid UTF-8 */
        rv = parse_time(&t, p, v, &tz_sec, &tz_us);
    }
    if (rv < 0 || !valid_datetime(year, month, day, v[0], v[1], v[2]))
        return false;

    if (rv == 0) {
        /* naive: local time, with CPython's own (non-exact) rounding */
        long long secs = local_to_seconds(year, month, day, v[0], v[1], v[2]);
        if (secs == -1)
            return false;
        *out = (double)(secs - EPOCH_SECONDS) + v[3] / 1e6;
        return true;
    }
    /* aware: an offset of zero seconds is UTC even with microseconds */
    int64_t off_us = tz_sec == 0 ? 0 : (int64_t)tz_sec * US_PER_SEC + tz_us;
    if (off_us <= -(int64_t)SEC_PER_DAY * US_PER_SEC || off_us >= (int64_t)SEC_PER_DAY * US_PER_SEC)
        return false;
    int64_t secs = (int64_t)(ymd_to_ord(year, month, day) - EPOCH_ORDINAL) * SEC_PER_DAY + v[0] * 3600 +
                   v[1] * 60 + v[2];
    *out = micros_to_seconds(secs * US_PER_SEC + v[3] - off_us);
    return true;
}

/* ---- fast path: exactly YYYY-MM-DDTHH:MM:SS(.f{1,6})?(Z|+00:00) */

static inline uint64_t load8(const void *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* The first 19 bytes, checked as three overlapping words: XOR with the
 * template leaves 0..9 in digit places and 0 in literal places; adding
 * 0x76 (digits) or 0x7F (literals) to the low 7 bits of each byte sets its
 * top bit exactly when it is out of range, without carrying into the next
 * byte (so it holds in either byte order), and a byte with its top bit
 * already set is bad anyway. */
static const unsigned char fast_tmpl[20] = "0000-00-00T00:00:00";
static const unsigned char fast_add[19] = {0x76, 0x76, 0x76, 0x76, 0x7F, 0x76, 0x76, 0x7F, 0x76, 0x76,
                                           0x7F, 0x76, 0x76, 0x7F, 0x76, 0x76, 0x7F, 0x76, 0x76};

static inline bool fast_shape(const unsigned char *s)
{
    static const size_t off[3] = {0, 8, 11};
    uint64_t bad = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t x = load8(s + off[k]) ^ load8(fast_tmpl + off[k]);
        bad |= ((x & UINT64_C(0x7F7F7F7F7F7F7F7F)) + load8(fast_add + off[k])) | x;
    }
    return (bad & UINT64_C(0x8080808080808080)) == 0;
}

/* 1 parsed, 0 rejected (Python raises too), -1 not this form. */
static int parse_fast(const unsigned char *s, size_t n, double *out)
{
    if (n < 20 || n > 32 || !fast_shape(s))
        return -1;

    /* the tail: Z or +00:00, and between it and the seconds nothing, or a
     * dot and up to 6 digits (3.11 takes a bare dot before an offset) */
    size_t tail = s[n - 1] == 'Z' ? 1 : n >= 25 && memcmp(s + n - 6, "+00:00", 6) == 0 ? 6 : 0;
    if (tail == 0)
        return -1;
    size_t digits = n - 19 - tail;
    static const int scale[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    int frac = 0;
    if (digits != 0) {
        if (s[19] != '.' || --digits > 6)
            return -1;
        for (size_t i = 0; i < digits; i++) {
            unsigned c = (unsigned)(s[20 + i] - '0');
            if (c > 9)
                return -1;
            frac = frac * 10 + (int)c;
        }
        frac *= scale[digits];
    }

#define D(i) (s[i] - '0')
    int y = D(0) * 1000 + D(1) * 100 + D(2) * 10 + D(3), mo = D(5) * 10 + D(6), d = D(8) * 10 + D(9),
        h = D(11) * 10 + D(12), mi = D(14) * 10 + D(15), sec = D(17) * 10 + D(18);
#undef D
    /* valid_datetime() with the checks the digits cannot fail left out */
    if (y == 0 || (unsigned)(mo - 1) > 11 || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return 0;
    int64_t secs = (int64_t)(ymd_to_ord(y, mo, d) - EPOCH_ORDINAL) * SEC_PER_DAY + h * 3600 + mi * 60 + sec;
    *out = micros_to_seconds(secs * US_PER_SEC + frac);
    return 1;
}

bool at_timestamp_parse(const char *s, size_t n, double *out)
{
    const unsigned char *u = (const unsigned char *)s;
    double v;
    int r = parse_fast(u, n, &v);
    if (r == 0 || (r < 0 && !parse_general(u, n, &v)))
        return false;
    *out = v;
    return true;
}
