/* pynum.c - Python ints and floats for the importer's sums and the tree's
 * totals (claude-import.md §3, server-api.md "Trees").
 *
 * Ints are int64 (see pynum.h for the fallback to float); floats are doubles,
 * and an operation with a float operand is the one IEEE operation Python
 * performs (the int converted to the nearest double first, as Python does),
 * so its result is bit for bit Python's. Text goes through float_repr.c in
 * both directions. tests/test_pynum.c checks everything against Python 3.11
 * (tests/vectors/gen_pynum.py). */
#include "agenttrace/pynum.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

at_pynum at_pynum_from_int(int64_t i)
{
    at_pynum p = {false, i, 0.0};
    return p;
}

at_pynum at_pynum_from_double(double f)
{
    at_pynum p = {true, 0, f};
    return p;
}

double at_pynum_to_double(at_pynum p)
{
    return p.is_float ? p.f : (double)p.i;
}

bool at_pynum_truthy(at_pynum p)
{
    return p.is_float ? p.f != 0.0 : p.i != 0;
}

at_pynum at_pynum_add(at_pynum a, at_pynum b)
{
    int64_t s;
    if (!a.is_float && !b.is_float && !__builtin_add_overflow(a.i, b.i, &s))
        return at_pynum_from_int(s);
    return at_pynum_from_double(at_pynum_to_double(a) + at_pynum_to_double(b));
}

at_pynum at_pynum_sub(at_pynum a, at_pynum b)
{
    int64_t s;
    if (!a.is_float && !b.is_float && !__builtin_sub_overflow(a.i, b.i, &s))
        return at_pynum_from_int(s);
    return at_pynum_from_double(at_pynum_to_double(a) - at_pynum_to_double(b));
}

/* glibc's printf rounds the exact binary value correctly (ties to even,
 * which only happens on exact ties, as in Python's dtoa), and strtod reads
 * the result back correctly rounded: together, Python's double_round. */
double at_pynum_round_double(double x, int nd)
{
    if (!isfinite(x))
        return x;
    char b[400];
    int k = snprintf(b, sizeof b, "%.*f", nd, x);
    if (k < 0 || (size_t)k >= sizeof b)
        return x; /* |x| > 1e390 cannot happen for a finite double */
    return strtod(b, NULL);
}

at_pynum at_pynum_round(at_pynum p, int nd)
{
    return p.is_float ? at_pynum_from_double(at_pynum_round_double(p.f, nd)) : p;
}

size_t at_pynum_format(at_pynum p, char *out)
{
    if (p.is_float)
        return at_double_repr(p.f, out);
    return (size_t)snprintf(out, AT_PYNUM_STR_MAX, "%lld", (long long)p.i);
}

at_result at_pynum_write(at_buf *out, at_pynum p)
{
    char b[AT_PYNUM_STR_MAX];
    size_t n = at_pynum_format(p, b);
    return at_buf_add(out, b, n);
}

at_pynum at_pynum_parse_token(const char *tok, size_t n)
{
    bool is_float = false;
    for (size_t k = 0; k < n && !is_float; k++)
        is_float = tok[k] == '.' || tok[k] == 'e' || tok[k] == 'E' || tok[k] == 'N' || tok[k] == 'I';
    if (!is_float) {
        /* accumulated with the token's sign, so INT64_MIN fits too */
        bool neg = n > 0 && tok[0] == '-';
        int64_t v = 0;
        size_t k = neg ? 1 : 0;
        for (; k < n; k++) {
            int d = tok[k] - '0';
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, neg ? -d : d, &v))
                break;
        }
        if (k == n)
            return at_pynum_from_int(v);
    }
    return at_pynum_from_double(at_json_parse_double(tok, n));
}

bool at_pynum_parse_json(const char *raw, size_t n, at_pynum *out)
{
    if (n == 4 && memcmp(raw, "true", 4) == 0) {
        *out = at_pynum_from_int(1);
        return true;
    }
    if (n == 5 && memcmp(raw, "false", 5) == 0) {
        *out = at_pynum_from_int(0);
        return true;
    }
    /* a number token starts with one of these; null, strings and
     * containers do not */
    if (n == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') || raw[0] == 'N' || raw[0] == 'I'))
        return false;
    *out = at_pynum_parse_token(raw, n);
    return true;
}
