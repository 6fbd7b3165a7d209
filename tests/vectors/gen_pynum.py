#!/usr/bin/env python3
"""Generates tests/vectors/pynum.tsv: Python numbers as the importer sums them
(claude-import.md §3) and the tree totals them (server-api.md), computed by
Python 3.11, for tests/test_pynum.c (at_pynum, include/agenttrace/pynum.h):

    python3 tests/vectors/gen_pynum.py > tests/vectors/pynum.tsv

Values are written as str() writes them, which also gives their type: an int
is its digits ("-12", and must fit int64), anything else is a float, written
as json.dumps writes it (repr() for finite floats: "3.0", "1e+16"; and NaN,
Infinity, -Infinity, which is how at_pynum spells them). Lines, TAB-separated,
'#' starts a comment:

    add     A  B  WANT          A + B
    sub     A  B  WANT          A - B
    sum     A  B  ... WANT      ((A + B) + ...), left to right
    round   X  ND  WANT         round(X, ND)
    truthy  A  0|1              bool(A)
    str     A  WANT             str(A) (A built directly, not parsed)
    parse   TOKEN  WANT         the JSON number token TOKEN read as a number
    json    RAW  WANT|ERROR     the compact JSON value RAW read as a number
                                (true 1, false 0, numbers as "parse",
                                anything else ERROR), as the tree reads meta

One deliberate difference from Python, documented in pynum.h: an int is an
int64. Where Python's int would leave int64, the expected value is what
at_pynum computes instead, still computed here by Python: float(a) + float(b)
for a sum, float(token) for a token. Such lines carry what exact Python gives
in a trailing "# python: ..." column (ignored by the test). An int token
stays an int when it fits int64 (-2**63 included).
"""
import json
import random
import re
import struct
import sys

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
TOKEN = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|NaN|Infinity|-Infinity")


def fits(v):
    return I64_MIN <= v <= I64_MAX


def fmt(v):
    """str() of a model value (json.dumps spelling of non-finite floats)."""
    if isinstance(v, bool):
        raise TypeError("bool")
    if isinstance(v, int):
        if not fits(v):
            raise ValueError("int outside int64 in the model: %d" % v)
        return str(v)
    return json.dumps(v)


def value(s):
    """The model value of a written value (the inverse of fmt)."""
    if re.fullmatch(r"-?[0-9]+", s):
        v = int(s)
        assert fits(v), s
        return v
    return float(json.loads(s))


def model_add(a, b):
    if isinstance(a, int) and isinstance(b, int) and not fits(a + b):
        return float(a) + float(b)
    return a + b


def model_sub(a, b):
    if isinstance(a, int) and isinstance(b, int) and not fits(a - b):
        return float(a) - float(b)
    return a - b


def model_parse(tok):
    v = json.loads(tok)
    if isinstance(v, int) and not fits(v):
        return float(tok)
    return v


def exact_note(model, exact):
    """The trailing column when exact Python differs from the model."""
    if type(model) is type(exact) and (model == exact or model != model and exact != exact):
        return ""
    return "\t# python: %s" % (str(exact) if isinstance(exact, int) else json.dumps(exact))


def bits_to_float(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def rand_finite(rnd):
    b = rnd.getrandbits(64)
    if (b >> 52) & 0x7FF == 0x7FF:
        b ^= 1 << 52
    return bits_to_float(b)


# ---- hand-picked cases ------------------------------------------------------------

MAX, MIN = str(I64_MAX), str(I64_MIN)

ARITH = [
    # int + int stays an int
    ("0", "0"), ("1", "2"), ("-5", "3"), ("123456", "654321"), ("-1", "1"),
    ("9007199254740992", "1"), ("4611686018427387904", "4611686018427387903"),
    # int + float, float + float: floats
    ("1", "2.0"), ("2.0", "1"), ("0", "0.0"), ("0", "-0.0"), ("-0.0", "0"), ("-0.0", "-0.0"),
    ("0.1", "0.2"), ("0.30000000000000004", "-0.1"), ("1e16", "1"), ("1e16", "2"),
    ("9007199254740993", "0.0"), ("9007199254740993", "1.0"), ("9007199254740995", "0.0"),
    (MAX, "0.0"), (MAX, "0.5"), (MIN, "0.0"), (MIN, "-1.0"), ("1", "1e-300"),
    ("1770841913.375", "1770841900.125"), ("1234.5", "0.25"), ("1.7976931348623157e+308", "1.7976931348623157e+308"),
    ("Infinity", "1"), ("-Infinity", "Infinity"), ("NaN", "1"), ("1", "NaN"), ("5e-324", "5e-324"),
    ("Infinity", "Infinity"), ("2.5", "-2.5"), ("-2.5", "2.5"),
    # the int64 boundary: inside, and over it (the float fallback)
    (MAX, "0"), (MAX, "-1"), (MAX, "1"), (MAX, MAX), (MAX, MIN), (MIN, "0"), (MIN, "1"),
    (MIN, "-1"), (MIN, MIN), ("0", MIN), ("-1", MAX), ("1", MAX), ("-1", MIN),
    ("4611686018427387904", "4611686018427387904"), ("-4611686018427387904", "-4611686018427387904"),
    ("-4611686018427387904", "-4611686018427387905"), ("9223372036854775000", "1000"),
    ("9223372036854775000", "807"), ("9223372036854775000", "808"), ("-9223372036854775000", "-808"),
    ("-9223372036854775000", "-809"), ("9007199254740993", MAX),
]

SUMS = [
    # the importer's four token counts, and the tree's totals
    ["100", "200", "0", "0"], ["1", "2", "3.0", "4"], ["0", "0", "0", "0"], ["0.0", "0", "0", "0"],
    ["0", "0", "0", "-0.0"], ["-0.0", "-0.0", "-0.0", "-0.0"], ["1", "0", "1", "0", "1"],
    ["4611686018427387904", "4611686018427387904", "-1"], ["4611686018427387904", "4611686018427387903", "1", "-1"],
    [MAX, "1", "-1"], [MIN, "-1", "1"], ["1", "1", "1e16", "1"], ["1e16", "1", "1", "1", "1"],
    ["0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1", "0.1"],
    ["1", "Infinity", "-Infinity", "1"],
]

ROUND = [
    # ties in decimal that are not ties in binary, and real ties
    ("0.5", 0), ("1.5", 0), ("2.5", 0), ("-0.5", 0), ("2.675", 2), ("1.0000005", 6),
    ("0.0000005", 6), ("5e-07", 6), ("1.5e-06", 6), ("2.5e-06", 6), ("0.0000015", 6),
    ("0.1234565", 6), ("0.1234575", 6), ("0.12345650000000001", 6), ("1.2345675", 6),
    ("0.00000049999999999999", 6), ("0.0000004999999999999999", 6), ("4.9999999999999996e-07", 6),
    ("0.125", 2), ("0.375", 2), ("0.0625", 3), ("0.0005", 3), ("0.0015", 3), ("0.0025", 3),
    ("1.0005", 3), ("1.0015", 3), ("2.0005", 3), ("1234.5675", 3), ("141838.99998664856", 3),
    ("0.9999995", 6), ("0.99999949999999995", 6), ("9.9999995", 6), ("999999.9999995", 6),
    ("123456789.1234565", 6), ("1770841913.3754999", 3), ("1770841913.3755", 3),
    # zeros, signs, tiny and huge
    ("0.0", 6), ("-0.0", 6), ("1e-300", 6), ("-1e-300", 6), ("5e-324", 6), ("-5e-324", 3),
    ("1e-07", 6), ("-1e-07", 6), ("1e+16", 6), ("1e+22", 6), ("1e+300", 6), ("-1e+300", 3),
    ("1.7976931348623157e+308", 6), ("-1.7976931348623157e+308", 6), ("4503599627370497.5", 6),
    ("4503599627370497.5", 0), ("9007199254740993.0", 3),
    ("NaN", 6), ("Infinity", 6), ("-Infinity", 3),
    # ints are returned as they are
    ("0", 6), ("5", 3), ("-7", 6), (MAX, 6), (MIN, 3),
    # costs as the tree computes them
    ("0.000123", 6), ("0.0001235", 6), ("0.0001245", 6), ("3.0000000000000004e-06", 6),
    ("0.015000000000000001", 6), ("12.3456785", 6), ("0.30000000000000004", 6),
]

TRUTHY = ["0", "1", "-1", MAX, MIN, "0.0", "-0.0", "5e-324", "-5e-324", "1e-300", "0.5",
          "NaN", "Infinity", "-Infinity", "2.0"]

STR = ["0", "-1", "7", "1000000", MAX, MIN, str(I64_MIN + 1), "9007199254740993",
       "0.0", "-0.0", "1.0", "-1.5", "0.1", "0.30000000000000004", "1e+16", "1e+22", "1e-05",
       "0.0001", "1234567890123456.8", "9999999999999998.0", "1.7976931348623157e+308", "5e-324",
       "2.2250738585072014e-308", "1770841913.375", "1e+100", "1.5e-07", "NaN", "Infinity", "-Infinity"]

TOKENS = [
    # ints, and the edges of both readings
    "0", "-0", "1", "-1", "7", "42", "1000000", "123456789012345678", "-12345678901234567",
    "-123456789012345678", "999999999999999999", "-99999999999999999", "1000000000000000000",
    "1234567890123456789", "-1234567890123456789", MAX, str(I64_MAX + 1), MIN, str(I64_MIN + 1),
    str(I64_MIN - 1), "9999999999999999999", "10000000000000000000", "18446744073709551615",
    "18446744073709551616", "12345678901234567890123", "-12345678901234567890123", "9007199254740993",
    "9007199254740993000", "1" * 300, "-" + "9" * 400, "1" + "0" * 308, "1" + "0" * 309,
    # floats
    "0.0", "-0.0", "0e0", "-0e0", "1.0", "-1.0", "1e5", "1E5", "1e+5", "1e-5", "2.5E-3", "1.5",
    "0.1", "0.30000000000000004", "1e16", "1e22", "1e23", "1770841913.375", "141838.99998664856",
    "123456789.123456789", "9007199254740993.0", "1e400", "-1e400", "1e-400", "-1e-400",
    "5e-324", "2e-324", "1.7976931348623157e308", "1.7976931348623159e308", "1.0e+0",
    "NaN", "Infinity", "-Infinity",
]

JSON = ["true", "false", "null", "0", "-0", "3", "3.0", "-2.5", "NaN", "Infinity", "-Infinity",
        "1234567890123456789", "123456789012345678", '"3"', '""', "[]", "[1]", "{}", '{"a":1}',
        '"NaN"', '"true"']


def rand_int(rnd):
    r = rnd.random()
    if r < 0.3:
        return rnd.randint(0, 10**6)
    if r < 0.5:
        return rnd.randint(-(2**53), 2**53)
    if r < 0.7:  # near the int64 boundary, and near half of it
        return rnd.choice([I64_MAX - rnd.randint(0, 2**20), I64_MIN + rnd.randint(0, 2**20),
                           rnd.choice([1, -1]) * 2**62 + rnd.randint(-1000, 1000)])
    return rnd.randint(I64_MIN, I64_MAX)


def rand_float(rnd):
    r = rnd.random()
    if r < 0.3:
        return rnd.randint(0, 10**7) / 1000.0  # durations in ms / 1000
    if r < 0.5:
        return rnd.randint(1_600_000_000_000_000, 1_900_000_000_000_000) / 1e6  # timestamps
    if r < 0.7:
        return rnd.randint(0, 10**9) * 3e-6 + rnd.randint(0, 10**8) * 1.5e-5  # costs
    return rand_finite(rnd)


def rand_value(rnd):
    return rand_int(rnd) if rnd.random() < 0.5 else rand_float(rnd)


def rand_round_x(rnd, nd):
    r = rnd.random()
    if r < 0.4:
        # near a decimal tie at nd digits: k.ddd...5 and its neighbours
        k = rnd.randint(0, 10**rnd.randint(1, 9))
        s = "%d.%0*d5" % (k // 10**nd, nd, k % 10**nd) if nd else "%d.5" % k
        x = float(s)
        for _ in range(rnd.randint(0, 2)):
            x = struct.unpack("<d", struct.pack("<q", struct.unpack("<q", struct.pack("<d", x))[0] + rnd.choice([-1, 1])))[0]
        return -x if rnd.random() < 0.2 else x
    if r < 0.7:
        return rand_float(rnd)
    return rand_finite(rnd) * 10.0 ** rnd.randint(-320, 0) if rnd.random() < 0.5 else rand_finite(rnd)


def rand_token(rnd):
    r = rnd.random()
    sign = "-" if rnd.random() < 0.3 else ""
    if r < 0.6:
        n = rnd.choice([1, 2, 5, 10, 15, 17, 18, 19, 20, 21, 25, 40])
        d = rnd.choice("123456789") + "".join(rnd.choice("0123456789") for _ in range(n - 1))
        return sign + d
    return json.dumps(rand_float(rnd))


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("the oracle is Python 3.11, this is %d.%d" % sys.version_info[:2])
    rnd = random.Random(20260301)
    out = []
    out.append("# at_pynum against Python 3.11; generated by gen_pynum.py (see its docstring)")

    arith = list(ARITH)
    for _ in range(600):
        arith.append((fmt(rand_value(rnd)), fmt(rand_value(rnd))))
    for _ in range(200):  # both ints, near the boundary
        arith.append((str(rand_int(rnd)), str(rand_int(rnd))))
    for a, b in arith:
        va, vb = value(a), value(b)
        m = model_add(va, vb)
        out.append("add\t%s\t%s\t%s%s" % (a, b, fmt(m), exact_note(m, va + vb)))
        m = model_sub(va, vb)
        out.append("sub\t%s\t%s\t%s%s" % (a, b, fmt(m), exact_note(m, va - vb)))

    sums = [list(s) for s in SUMS]
    for _ in range(200):
        sums.append([fmt(rand_value(rnd) if rnd.random() < 0.3 else rnd.randint(0, 10**6))
                     for _ in range(rnd.randint(2, 8))])
    for s in sums:
        vals = [value(x) for x in s]
        m, exact = vals[0], vals[0]
        for v in vals[1:]:
            m, exact = model_add(m, v), exact + v
        out.append("sum\t%s\t%s%s" % ("\t".join(s), fmt(m), exact_note(m, exact)))

    rounds = list(ROUND)
    for _ in range(1500):
        nd = rnd.choice([6, 6, 3, 3, 2, 0, 1, 9])
        rounds.append((json.dumps(rand_round_x(rnd, nd)), nd))
    for x, nd in rounds:
        v = value(x)
        out.append("round\t%s\t%d\t%s" % (x, nd, fmt(round(v, nd))))

    for a in TRUTHY:
        out.append("truthy\t%s\t%d" % (a, 1 if value(a) else 0))

    for a in STR:
        out.append("str\t%s\t%s" % (a, fmt(value(a))))

    toks = list(TOKENS) + [rand_token(rnd) for _ in range(600)]
    for tok in toks:
        if not TOKEN.fullmatch(tok):
            sys.exit("not a JSON number token: %r" % tok[:80])
        exact = json.loads(tok)
        m = model_parse(tok)
        out.append("parse\t%s\t%s%s" % (tok, fmt(m), exact_note(m, exact)))

    for raw in JSON:
        v = json.loads(raw)
        if isinstance(v, bool):
            out.append("json\t%s\t%d" % (raw, int(v)))
        elif isinstance(v, (int, float)):
            m = model_parse(raw)
            out.append("json\t%s\t%s%s" % (raw, fmt(m), exact_note(m, v)))
        else:
            out.append("json\t%s\tERROR" % raw)

    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
