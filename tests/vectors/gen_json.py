#!/usr/bin/env python3
"""Generates tests/vectors/json.tsv: JSON texts and what Python 3.11's json
module makes of them. Each line: hex(input) TAB hex(compact) TAB hex(default)
TAB hex(indent=2), or 'ERR' in the three output columns when json.loads
rejects the input. Hex keeps every byte (NULs, newlines, invalid UTF-8 is
never used here) out of the way of the test's own parsing.

    python3 tests/vectors/gen_json.py > tests/vectors/json.tsv
"""
import json
import random

CASES = [
    # the spec's table (trace-format.md §2)
    '1e5', '1E-7', '1e16', '1e15', '123456789.123456789', '1e400', '-1e400', '2.5E+3',
    '0.0001', '0.00001', '1.0', '100000.0', '-0.0', '-0', '0', '12345678901234567890123',
    '-12345678901234567890123', 'NaN', 'Infinity', '-Infinity', '1e-400', '-1e-400',
    '5e-324', '1.7976931348623157e308', '2.2250738585072014e-308', '0.1', '0.30000000000000004',
    '1e22', '1e21', '9007199254740993', '9007199254740993.0', '123e-2', '1E+2', '1e-4', '1e-5',
    '9999999999999998.0', '1234567890123456.7', '0.000123', '-5.5e-10',
    'true', 'false', 'null', '""', '[]', '{}', '[[]]', '[{}]', '{"a":{}}',
    # strings and escapes
    '"plain ascii"', '"quote \\" back \\\\ slash \\/"', '"\\b\\f\\n\\r\\t"',
    '"\\u0000\\u001f\\u007f\\u0080"', '"caf\u00e9 \u65e5\u672c \U0001f389"',
    '"\\ud83d\\ude00 pair"', '"\\ud83d lone high"', '"\\ude00 lone low"', '"\\ude00\\ud83d reversed"',
    '"\\ud83d\\ud83d two highs"', '"\\uD83D\\uDE00 upper hex"', '"\\u00E9"', '"tab\there"',
    '"\u2028\u2029 separators"', '"\x7f del raw"', '"\u0085 nel"', '"\ufeff bom inside"',
    '"\U0010ffff max"', '"emoji \U0001f600 and \u2764"',
    # objects: duplicate keys keep the first position and the last value
    '{"dup":1,"dup":2}', '{"a":1,"b":2,"a":3}', '{"a":1,"\\u0061":2}', '{"x":{"y":1,"y":[1,2]},"z":0}',
    '{"k":[1,2.0,-0.0,1e400,"s",null,true,{}]}', '{"nested":{"z":1,"a":{"b":[{"c":"d"}]}}}',
    '  {"ws" : [ 1 , 2 ] }  ', '\t\r\n[1]\n', '{"a":[],"b":{},"c":[[]],"d":[{}]}',
    '{"":""}', '{"a":"\\u00e9","\\u00e9":1}',
    # invalid in Python's json.loads
    '', ' ', '[1,]', '{"a":1,}', "{'a':1}", '[1 2]', '{"a" 1}', '{"a":}', '01', '1.', '.5', '+1',
    '-', '--1', '1e', '1e+', 'tru', 'nul', 'nan', 'inf', '-NaN', '+Infinity', 'infinity',
    '"unterminated', '"bad \\x escape"', '"bad \\u12 escape"', '"raw \x01 control"',
    '"raw \n newline"', '\ufeff{}', '[1] [2]', '{"a":1}x', '[', ']', '{', '}', '{"a"}',
    '[1,,2]', '{,}', '"\\"', '1 2', '[1]]', 'true false', '\x0b1', '\x0c1', '\u00a0 1',
]


def hx(s):
    return s.encode('utf-8', 'surrogatepass').hex() if s is not None else 'ERR'


def line(text):
    try:
        v = json.loads(text)
    except (ValueError, RecursionError):
        return '\t'.join([hx(text), 'ERR', 'ERR', 'ERR'])
    return '\t'.join([hx(text), hx(json.dumps(v, separators=(',', ':'))), hx(json.dumps(v)),
                      hx(json.dumps(v, indent=2))])


def random_value(rng, depth=0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randrange(-10**rng.randrange(1, 30), 10**rng.randrange(1, 30))
    if kind == 2:
        return rng.choice([rng.random() * 10**rng.randrange(-30, 30), float(rng.randrange(-999, 999)),
                           rng.uniform(-1, 1)])
    if kind in (3, 4, 5):
        pool = 'aZ09 "\\/\b\f\n\r\t\x00\x1f\x7f\u0080\u00e9\u2028\u65e5\ud83d\ude00\U0001f389\U0010ffff'
        return ''.join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {random_value(rng, 99) if rng.random() < 0.3 else rng.choice('abcde'): random_value(rng, depth + 1)
            for _ in range(rng.randrange(0, 5))}


def main():
    out = [line(c) for c in CASES]
    rng = random.Random(20261124)
    for _ in range(3000):
        v = random_value(rng)
        if isinstance(v, str) and rng.random() < 0.5:
            pass
        # Write the random value with escapes mixed in: ensure_ascii on/off.
        text = json.dumps(v, ensure_ascii=rng.random() < 0.5)
        out.append(line(text))
    # Python 3.11 limits int conversion to 4300 digits
    out.append(line('1' * 4300))
    out.append(line('-' + '1' * 4300))
    out.append(line('[' + '1' * 4301 + ']'))
    # deep nesting within our cap
    out.append(line('[' * 900 + ']' * 900))
    out.append(line('{"a":' * 300 + '1' + '}' * 300))
    print('\n'.join(out))


if __name__ == '__main__':
    main()
