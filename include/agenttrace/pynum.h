/* pynum.h - a Python number (int or float) as the reference computes with it.
 *
 * The reference keeps JSON numbers as Python ints and floats: sums of ints
 * are ints, anything combined with a float is a float, and str() of the
 * result tells them apart ("3" against "3.0"). at_pynum carries that type.
 *
 * One deliberate difference from Python: an int is an int64 here. Where
 * Python's int would leave int64 (a token too long, a sum or difference that
 * overflows) the value becomes a float instead: the token is read as a float,
 * the operation is done on the two operands converted to double. Real token
 * counts and durations are far below that.
 *
 * Values are plain structs passed by value; nothing here allocates except
 * at_pynum_write, which appends to a caller's buffer. */
#ifndef AGENTTRACE_PYNUM_H
#define AGENTTRACE_PYNUM_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A zero-filled at_pynum is the int 0. */
typedef struct {
    bool is_float; /* Python type: float when true, int when false */
    int64_t i;     /* the value of an int (0 for a float) */
    double f;      /* the value of a float (0.0 for an int) */
} at_pynum;

/* The int i / the float f. */
at_pynum at_pynum_from_int(int64_t i);
at_pynum at_pynum_from_double(double f);

/* float(p): an int converted to the nearest double. */
double at_pynum_to_double(at_pynum p);

/* bool(p): false for 0, 0.0 and -0.0, true otherwise (NaN included). */
bool at_pynum_truthy(at_pynum p);

/* a + b, a - b. Two ints give an int unless the result leaves int64, then
 * float(a) op float(b); any float operand gives a float. */
at_pynum at_pynum_add(at_pynum a, at_pynum b);
at_pynum at_pynum_sub(at_pynum a, at_pynum b);

/* Python's round(x, nd) for a float: the double nearest to the exact decimal
 * rounding of x's binary value (ties to even); NaN and infinities unchanged.
 * nd in [0, 60]. */
double at_pynum_round_double(double x, int nd);
/* round(p, nd): an int is returned unchanged (still an int), a float is
 * rounded as at_pynum_round_double. */
at_pynum at_pynum_round(at_pynum p, int nd);

/* str(p) as the reference writes it: an int's digits; a float's repr()
 * (shortest round-trip digits). Non-finite floats are spelled NaN, Infinity,
 * -Infinity, as json.dumps writes them (Python's str() says nan, inf). */
#define AT_PYNUM_STR_MAX AT_DOUBLE_REPR_MAX
/* Writes str(p) NUL-terminated into out (AT_PYNUM_STR_MAX bytes at least);
 * returns its length. */
size_t at_pynum_format(at_pynum p, char *out);
/* Appends str(p) to out. Fails only as at_buf_add does. */
at_result at_pynum_write(at_buf *out, at_pynum p) AT_WUR;

/* Reads a JSON number token (already validated: -?int frac? exp?, or NaN,
 * Infinity, -Infinity) as json.loads types it: a token without '.', 'e',
 * 'E' is an int, anything else a float, read correctly rounded (overflow
 * gives +-Infinity, underflow +-0.0). An int token outside int64 is read
 * as a float instead. "-0" is the int 0. */
at_pynum at_pynum_parse_token(const char *tok, size_t n);

/* Reads a compact JSON value (already validated, as a meta.json raw value)
 * as a number the way Python's arithmetic takes it: true is 1, false is 0,
 * a number token as at_pynum_parse_token. Returns false and leaves *out
 * alone for anything else (null, strings, arrays, objects, n == 0). */
bool at_pynum_parse_json(const char *raw, size_t n, at_pynum *out) AT_WUR;

#endif
