#!/usr/bin/env python3
"""Generates tests/vectors/floats.tsv: JSON number tokens and what Python 3.11
writes back for them (trace-format.md §2):

    json.dumps(json.loads(token))

Each line: the token TAB the expected bytes. Lines starting with '#' are
comments. Integers (no '.', 'e', 'E') stay exact, floats are read correctly
rounded and written with repr(). The oracle is the interpreter running this
script; the random part is deterministic (fixed seed):

    python3 tests/vectors/gen_floats.py > tests/vectors/floats.tsv

Python 3.11 refuses integer tokens of more than 4300 digits
(sys.int_info.str_digits_check_threshold), so no integer here is longer.
"""
import decimal
import json
import random
import re
import struct
import sys

TOKEN = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|NaN|Infinity|-Infinity")

# Hand-picked: the spec's examples, the classic hard cases, the layout edges.
CASES = [
    # trace-format.md §2
    "1e5", "1E-7", "1e16", "1e15", "123456789.123456789", "1e400", "2.5E+3", "0.0001", "0.00001",
    # zero, signs, integers
    "0", "-0", "0.0", "-0.0", "0e0", "-0e0", "0E+999", "-0.000e-7", "0.0000000000000000000000",
    "1", "-1", "1.0", "-1.0", "12345678901234567890123", "-12345678901234567890123",
    "9007199254740993", "9007199254740993.0", "-9007199254740993.0", "9007199254740992.0",
    "9007199254740994.0", "9007199254740995.0", "18446744073709551615", "18446744073709551616.0",
    "1" * 300, "-" + "9" * 4300, "1" + "0" * 4299,
    # overflow, underflow, extremes
    "-1e400", "1e-400", "-1e-400", "1e308", "1.7976931348623157e308", "-1.7976931348623157e308",
    "1.7976931348623158e308", "1.7976931348623159e308", "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9",
    "2.2250738585072014e-308", "2.2250738585072011e-308", "2.2250738585072012e-308",
    "2.225073858507201e-308", "4.9406564584124654e-324", "5e-324", "-5e-324", "2e-324",
    "2.4703282292062327e-324", "2.4703282292062328e-324", "3e-324", "7e-324", "1e-323",
    "1e99999999999999999999", "-1e99999999999999999999", "1e-99999999999999999999",
    "0.1e400", "0." + "0" * 400 + "1e400",
    # shortest-digit hard cases
    "0.1", "0.2", "0.3", "0.30000000000000004", "0.7", "1e22", "1e23", "9.999999999999999e22",
    "123456789.12345679", "5e-324", "1.5e300", "1e-05", "1e-5", "2e-5", "9.5367431640625e-07",
    "5.551115123125783e-17", "2.0", "4.0", "8.0", "0.5", "0.25", "1024.0", "4503599627370496.0",
    "4503599627370497.5", "8.98846567431158e307", "2.9802322387695312e-08",
    "9.881312916824931e-324", "1.1125369292536007e-308", "6.103515625e-05",
    "2.2250738585072009e-308", "2.2250738585072014e-308",
    # the layout boundaries: decimal exponents -5, -4, 15, 16
    "9999999999999998.0", "9999999999999999.0", "999999999999999.9", "1000000000000000.0",
    "1000000000000001.0", "0.0001", "0.00009999999999999999", "0.000099999999999999995",
    "0.00010000000000000001", "1e-4", "1E-4", "9.99e-5", "1.5e16", "1.5e15", "12345678901234567e0",
    "1234567890123456.7", "100000000000000000000.0", "1e21", "1e-10", "1.23e-100", "1e100",
    "1e+100", "1E+100", "1e-100", "1.0e+0", "1e0", "1E0", "1e+0", "1e-0", "10e-1", "0.1e1",
    "1e007", "1e-007",
    # timestamps
    "1770841913.375", "141838.99998664856", "1770912168.183", "1770912168.999999",
    "1770912168.000001", "1770912168.1", "1770912168.0", "0.000001", "1e-06", "4102444799.999999",
    # long mantissas
    "3.14159265358979323846264338327950288419716939937510582097494459230781640628620899",
    "0.1000000000000000055511151231257827021181583404541015625",
    "0.1000000000000000055511151231257827021181583404541015624",
    "0.1000000000000000055511151231257827021181583404541015626",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
    "9007199254740993." + "0" * 5000, "9007199254740993." + "0" * 5000 + "1",
    "9007199254740993" + "0" * 5000 + "e-5000", "9007199254740993" + "0" * 5000 + "1e-5001",
    "0." + "0" * 9000 + "1e9000", "1" * 10000 + ".0", "1" * 10000 + "e-9999", "1." + "1" * 10000,
    "-" + "9" * 10000 + "e-10000",
    # literals json.loads accepts
    "NaN", "Infinity", "-Infinity",
]


def bits_to_float(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def finite(b):
    """b as a finite double (an all-ones exponent becomes the one below)."""
    if (b >> 52) & 0x7FF == 0x7FF:
        b ^= 1 << 52
    return bits_to_float(b)


def rand_bits(rnd):
    return repr(finite(rnd.getrandbits(64)))


def rand_digits(rnd, n):
    return "".join(rnd.choice("0123456789") for _ in range(n))


def rand_decimal(rnd):
    """Any token shape: sign, integer part, fraction, exponent."""
    s = rnd.choice(["", "", "-"])
    n = rnd.choice([1, 1, 1, 2, 3, 5, 8, 10, 12, 15, 16, 17, 18, 20, 25])
    s += "0" if rnd.random() < 0.2 else rnd.choice("123456789") + rand_digits(rnd, n - 1)
    has_frac = rnd.random() < 0.8
    if has_frac:
        s += "." + rand_digits(rnd, rnd.choice([1, 2, 3, 6, 9, 12, 15, 17, 20, 30]))
    if rnd.random() < 0.5 or not has_frac:
        x = rnd.choice([rnd.randint(-30, 30), rnd.randint(-350, 350), rnd.randint(-330, -300),
                        rnd.randint(290, 310)])
        sign = "-" if x < 0 else rnd.choice(["", "+"])
        s += rnd.choice("eE") + sign + rnd.choice(["", "", "0"]) + str(abs(x))
    return s


def rand_timestamp(rnd):
    """A count of microseconds as Python writes it: repr(k / 1e6)."""
    r = rnd.random()
    if r < 0.7:
        k = rnd.randint(1_600_000_000_000_000, 1_900_000_000_000_000)
    elif r < 0.9:
        k = rnd.randint(0, 4_102_444_800_000_000)
    else:
        k = rnd.randint(0, 10**rnd.randint(1, 19))
    return repr(k / 1e6)


def rand_pow2(rnd):
    """Values at and next to powers of two, where the rounding interval is
    asymmetric, written as repr or as a longer decimal near them."""
    e = rnd.randint(0, 2046)
    m = rnd.choice([0, 0, 1, 2, (1 << 52) - 1, (1 << 52) - 2])
    v = bits_to_float(e << 52 | m)
    if rnd.random() < 0.5:
        v = -v
    if rnd.random() < 0.7:
        return repr(v)
    return "%.*e" % (rnd.randint(16, 25), v)


def midpoint(rnd):
    """The exact midpoint between two neighbouring doubles (up to ~770
    significant digits), or a hair above or below it, where a hair may sit
    past the 800 digits the parser keeps."""
    e = rnd.choice([0, 1, rnd.randint(0, 60), rnd.randint(0, 2046), rnd.randint(1000, 1100), 2046])
    m = rnd.choice([0, 1, rnd.getrandbits(52), (1 << 52) - 1])
    b = e << 52 | m
    lo = decimal.Decimal(bits_to_float(b))
    if b + 1 == 0x7FF << 52:  # above DBL_MAX: the overflow threshold
        hi = decimal.Decimal(2) ** 1024
    else:
        hi = decimal.Decimal(bits_to_float(b + 1))
    with decimal.localcontext() as ctx:
        ctx.prec = 3000
        mid = (lo + hi) / 2
        tweak = rnd.randrange(3)
        if tweak:
            eps = decimal.Decimal(10) ** (mid.adjusted() - rnd.choice([17, 30, 770, 790, 805, 900]))
            mid = mid + eps if tweak == 1 else mid - eps
    s = format(mid, "e" if rnd.random() < 0.4 else "f")
    if "." not in s and "e" not in s:
        s += ".0"
    return rnd.choice(["", "-"]) + s


def rand_int(rnd):
    n = rnd.choice([1, 2, 5, 10, 15, 16, 17, 19, 20, 21, 30, 50, 100, 1000, 4300])
    s = rnd.choice("123456789") + rand_digits(rnd, n - 1)
    return rnd.choice(["", "-"]) + s


def every_exponent(rnd):
    """One random value for each binary exponent, subnormals included."""
    return [repr(bits_to_float(e << 52 | rnd.getrandbits(52))) for e in range(2047)]


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("the oracle is Python 3.11, this is %d.%d" % sys.version_info[:2])
    rnd = random.Random(20260212)
    cases = list(CASES)
    cases += every_exponent(rnd)
    cases += [rand_bits(rnd) for _ in range(5000)]
    cases += [rand_decimal(rnd) for _ in range(5000)]
    cases += [rand_timestamp(rnd) for _ in range(4000)]
    cases += [rand_pow2(rnd) for _ in range(3000)]
    cases += [midpoint(rnd) for _ in range(700)]
    cases += [rand_int(rnd) for _ in range(300)]
    out = sys.stdout
    out.write("# token TAB json.dumps(json.loads(token)); generated by gen_floats.py\n")
    seen = set()
    for tok in cases:
        if tok in seen:
            continue
        seen.add(tok)
        if not TOKEN.fullmatch(tok):
            sys.exit("not a JSON number token: %r" % tok[:80])
        want = json.dumps(json.loads(tok))
        out.write("%s\t%s\n" % (tok, want))


if __name__ == "__main__":
    main()
