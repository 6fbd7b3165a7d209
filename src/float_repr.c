/* float_repr.c - Python's repr(float) and json.loads number handling.
 *
 * Shortest round-trip digits: for p = 1..17 significant digits, glibc's
 * exact %.*e gives the correctly rounded p-digit decimal; the first that
 * strtod reads back to the same double is the shortest (what dtoa mode 0
 * returns outside pathological power-of-two boundaries). Then Python's
 * layout: fixed notation for decimal exponents in [-4, 16), else d.ddde+XX. */
#include "agenttrace/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t at_double_repr(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, AT_DOUBLE_REPR_MAX, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, AT_DOUBLE_REPR_MAX, v < 0 ? "-Infinity" : "Infinity");
    char b[48];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(b, sizeof b, "%.*e", p - 1, v);
        if (strtod(b, NULL) == v)
            break;
    }
    /* b is [-]d[.ddd]e[+-]XX */
    char dig[24];
    int nd = 0;
    bool neg = b[0] == '-';
    char *e = strchr(b, 'e');
    int ex = (int)strtol(e + 1, NULL, 10);
    for (char *q = b + neg; q < e; q++)
        if (*q >= '0' && *q <= '9')
            dig[nd++] = *q;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (ex >= -4 && ex < 16) {
        if (ex < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -ex - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = dig[i];
        } else {
            for (int i = 0; i <= ex; i++)
                *o++ = i < nd ? dig[i] : '0';
            *o++ = '.';
            if (nd > ex + 1)
                for (int i = ex + 1; i < nd; i++)
                    *o++ = dig[i];
            else
                *o++ = '0';
        }
    } else {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = dig[i];
        }
        int ax = ex < 0 ? -ex : ex;
        *o++ = 'e';
        *o++ = ex < 0 ? '-' : '+';
        if (ax >= 100)
            *o++ = (char)('0' + ax / 100);
        *o++ = (char)('0' + (ax / 10) % 10);
        *o++ = (char)('0' + ax % 10);
    }
    *o = 0;
    return (size_t)(o - out);
}

at_result at_json_write_double(at_buf *out, double v)
{
    char b[AT_DOUBLE_REPR_MAX];
    size_t n = at_double_repr(v, b);
    return at_buf_add(out, b, n);
}

double at_json_parse_double(const char *tok, size_t n)
{
    if (n == 3 && memcmp(tok, "NaN", 3) == 0)
        return NAN;
    if (n == 8 && memcmp(tok, "Infinity", 8) == 0)
        return INFINITY;
    if (n == 9 && memcmp(tok, "-Infinity", 9) == 0)
        return -INFINITY;
    char small[64];
    char *b = n < sizeof small ? small : malloc(n + 1);
    if (!b)
        return NAN;
    memcpy(b, tok, n);
    b[n] = 0;
    double v = strtod(b, NULL);
    if (b != small)
        free(b);
    return v;
}

at_result at_json_write_number_token(at_buf *out, const char *tok, size_t n, bool is_float)
{
    if (!is_float) {
        if (n == 2 && tok[0] == '-' && tok[1] == '0')
            return at_buf_add(out, "0", 1);
        return at_buf_add(out, tok, n);
    }
    return at_json_write_double(out, at_json_parse_double(tok, n));
}
