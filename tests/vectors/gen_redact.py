#!/usr/bin/env python3
"""Generates the secret-redaction vectors, written from the spec
(../shared/spec/redaction.md) with Python 3.11's `re`, the engine whose
semantics the spec names.

    python3 tests/vectors/gen_redact.py

writes, next to this script:

* redact.ndjson: one JSON object per line (json.dumps, ensure_ascii, so lone
  surrogates are \\udXXX escapes):
      {"in": value, "out": redacted value, "marked": flag, "changed": bool,
       "note": what the line tests}
  where changed is (out != in) and marked is the event's "redacted" flag:
  changed, or some string value of out contains "[REDACTED".
* word_ranges.txt: the inclusive code point ranges (hex "START END", one a
  line) where re.match(r"\\w", chr(c)) holds, surrogates left out: what `\\b`
  before a basic-auth URL depends on.

Inputs are put through json.loads(json.dumps(x)) before being redacted, so
the expected output is computed from exactly what a reader of the line gets
(a lone high surrogate followed by a lone low one reads back as one
character). Stdlib only; the fuzz part is seeded, so the output is stable.
"""
import json
import os
import random
import re
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the spec, in Python ------------------------------------------------------

SENSITIVE_KEYS = {
    "password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "access_token",
    "refresh_token", "auth_token", "authorization", "credential", "credentials", "private_key",
    "privatekey", "client_secret", "connection_string", "database_url", "db_url",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
}

PATTERNS = [
    ("private-key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----[\s\S]*?"
                    r"-----END (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----"),
    ("anthropic-key", r"sk-ant-[a-zA-Z0-9\-]{20,}"),
    ("openai-key", r"sk-[a-zA-Z0-9]{20,}"),
    ("github-token", r"gh[ps]_[a-zA-Z0-9]{36,}"),
    ("github-token", r"github_pat_[a-zA-Z0-9_]{22,}"),
    ("slack-token", r"xox[bpras]-[a-zA-Z0-9\-]{10,}"),
    ("aws-access-key", r"AKIA[0-9A-Z]{16}"),
    ("bearer-token", r"Bearer\s+[a-zA-Z0-9\-._~+/]+=*"),
    ("connection-string", r"(postgres|mysql|mongodb|redis|amqp)://[^\s]+"),
    ("basic-auth", r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]+:[^/\s@]+)@"),
    ("api-key", r"key-[a-zA-Z0-9]{16,}"),
    ("token", r"token-[a-zA-Z0-9]{16,}"),
    ("jwt", r"eyJ[a-zA-Z0-9_-]{10,}\.eyJ[a-zA-Z0-9_-]{10,}\.[a-zA-Z0-9_-]{10,}"),
    ("hex-token", r"[0-9a-f]{40,}"),
]
COMPILED = [(kind, re.compile(p)) for kind, p in PATTERNS]
SENSITIVE = "[REDACTED:sensitive]"
MARKER = "[REDACTED"


def key_sensitive(key):
    return key.lower().strip().replace("-", "_") in SENSITIVE_KEYS


def redact_text(s):
    if not any(rx.search(s) for _, rx in COMPILED):
        return s
    for kind, rx in COMPILED:
        if kind == "basic-auth":
            s = rx.sub(lambda m: m.group(1) + "[REDACTED:basic-auth]@", s)
        else:
            s = rx.sub("[REDACTED:%s]" % kind, s)
    return s


def walk(v, parent=None):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(x, str) and key_sensitive(k):
                out[k] = SENSITIVE
            else:
                out[k] = walk(x, k)
        return out
    if isinstance(v, list):
        return [walk(x, parent) for x in v]
    if isinstance(v, str):
        if parent is not None and key_sensitive(parent):
            return SENSITIVE
        return redact_text(v)
    return v


def has_marker(v):
    """Some string VALUE (keys do not count) holds the marker."""
    if isinstance(v, dict):
        return any(has_marker(x) for x in v.values())
    if isinstance(v, list):
        return any(has_marker(x) for x in v)
    return isinstance(v, str) and MARKER in v


# ---- vectors ----------------------------------------------------------------------

VECTORS = []


ANY = object()


def add(value, note, want=ANY):
    """Adds one vector. want, unless ANY, is the expected output (None: the
    input unchanged), a check of the generator's reading of the spec."""
    v = json.loads(json.dumps(value))
    out = walk(v)
    if want is not ANY:
        want = v if want is None else json.loads(json.dumps(want))
        assert out == want, (note, value, out, want)
    changed = out != v
    VECTORS.append({"in": v, "out": out, "marked": changed or has_marker(out), "changed": changed,
                    "note": note})
    return out


def text(s, note, want=None):
    """A bare string and the same string as an object member; want is the
    expected output (None: unchanged, ANY: not checked)."""
    add(s, note, want)
    add({"text": s}, note + " (member)", want if want is None or want is ANY else {"text": want})


def R(kind):
    return "[REDACTED:%s]" % kind


ALNUM = "aB3dE5gH7jK9mN1pQ3sTuV5wX7yZ9"  # 29 alnum characters
HEX = "0123456789abcdef"


def alnum(n, seed=0):
    return "".join(ALNUM[(i * 7 + seed) % len(ALNUM)] for i in range(n))


def hexrun(n, seed=0):
    return "".join(HEX[(i * 5 + seed) % 16] for i in range(n))


PK_BODY = "MIIEowIBAAKCAQEA\nabc+/=\n"


def pk(body=PK_BODY, begin="", end="", nl="\n"):
    return "-----BEGIN %sPRIVATE KEY-----%s%s-----END %sPRIVATE KEY-----" % (begin, nl, body, end)


# One match of each pattern (in order), a near miss, and its kind.
SAMPLES = [
    ("private-key", pk(), "-----BEGIN PRIVATE KEY----\nabc\n-----END PRIVATE KEY-----"),
    ("anthropic-key", "sk-ant-api03-" + alnum(14), "sk-ant-" + alnum(19)),
    ("openai-key", "sk-" + alnum(20), "sk-" + alnum(19)),
    ("github-token", "ghp_" + alnum(36), "ghp_" + alnum(35)),
    ("github-token", "github_pat_" + alnum(11) + "_" + alnum(10), "github_pat_" + alnum(21)),
    ("slack-token", "xoxb-" + alnum(10), "xoxb-" + alnum(9)),
    ("aws-access-key", "AKIA" + "IOSFODNN7EXAMPLE", "AKIA" + "IOSFODNN7EXAMPL"),
    ("bearer-token", "Bearer abc.def-ghi_jkl~mno+pqr/stu==", "bearer abc.def"),
    ("connection-string", "postgres://admin:hunter2@db:5432/x", "postgres:// admin"),
    ("basic-auth", "https://user:pw@", "https://user@"),
    ("api-key", "key-" + alnum(16), "key-" + alnum(15)),
    ("token", "token-" + alnum(16), "token-" + alnum(15)),
    ("jwt", "eyJ" + alnum(10) + ".eyJ" + alnum(10) + "." + alnum(10),
     "eyJ" + alnum(10) + ".eyJ" + alnum(9) + "." + alnum(10)),
    ("hex-token", hexrun(40), hexrun(39)),
]


def sample_out(kind, secret):
    if kind == "basic-auth":
        return secret.split("//")[0] + "//" + R(kind) + "@"
    return R(kind)


def per_pattern():
    for kind, secret, miss in SAMPLES:
        o = sample_out(kind, secret)
        text(secret, "%s: the whole string" % kind, o)
        text(miss, "%s: near miss" % kind, miss)
        text(secret + " tail", "%s: at the very start" % kind, o + " tail")
        text("head " + secret, "%s: at the very end" % kind, "head " + o)
        text("a " + secret + " and " + secret + " b", "%s: two matches" % kind, "a " + o + " and " + o + " b")
        text(secret + "\n" + secret, "%s: two matches across a newline" % kind, o + "\n" + o)
        # every byte offset against the 16-byte blocks of a vectorized pre-filter
        for pad in range(0, 34):
            add("x" * pad + secret, "%s: after %d bytes" % (kind, pad), "x" * pad + o)
        for pad in range(0, 18, 3):
            add("\u00b7" * pad + secret + " " + "\u4e2d" * pad, "%s: after %d two-byte characters" % (kind, pad),
                "\u00b7" * pad + o + " " + "\u4e2d" * pad)
        add("x" * 7 + " " + miss + " " + "y" * 9, "%s: near miss inside text" % kind, None)


def private_key_cases():
    b1, b2 = pk("one\n"), pk("two\n", "RSA ", "RSA ")
    text(b1 + " between " + b2, "private-key: two blocks, text between kept",
         R("private-key") + " between " + R("private-key"))
    text(b1 + b2, "private-key: two adjacent blocks", R("private-key") * 2)
    text(pk("a\nb\n") + "\n-----END PRIVATE KEY-----", "private-key: lazy, stops at the first END",
         R("private-key") + "\n-----END PRIVATE KEY-----")
    text("-----BEGIN PRIVATE KEY-----\n" + pk(), "private-key: BEGIN BEGIN END is one block", R("private-key"))
    for t in ("RSA ", "EC ", "DSA ", "OPENSSH "):
        text(pk(begin=t, end=t), "private-key: type %s" % t.strip(), R("private-key"))
    text(pk(begin="RSA ", end="EC "), "private-key: BEGIN RSA .. END EC", R("private-key"))
    text(pk(begin="", end="OPENSSH "), "private-key: BEGIN .. END OPENSSH", R("private-key"))
    text(pk(begin="PGP "), "private-key: PGP is not a type", None)
    text(pk(begin="rsa ", end="rsa "), "private-key: lower-case type", None)
    text(pk(body="a\r\nb\r\n", nl="\r\n"), "private-key: CRLF", R("private-key"))
    text(pk(body="a\u2028b\u2029", nl="\u2028"), "private-key: U+2028/U+2029", R("private-key"))
    text(pk(body="a\x00b\x1c\x85", nl=""), "private-key: NUL, U+001C, U+0085 inside", R("private-key"))
    text(pk(body="", nl=""), "private-key: empty body", R("private-key"))
    text(pk(body="\ud800x\udfff", nl=""), "private-key: lone surrogates inside", R("private-key"))
    text(pk(body="\U0001f600 \ue000\U000f0000", nl=""), "private-key: emoji and private use inside",
         R("private-key"))
    text("-----BEGIN PRIVATE KEY-----\nabc\n", "private-key: BEGIN without END", None)
    text("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY----",
         "private-key: END one dash short", None)
    text("-----END PRIVATE KEY----- x -----BEGIN PRIVATE KEY-----", "private-key: END before BEGIN", None)
    text("----" + pk(), "private-key: extra dashes before BEGIN", "----" + R("private-key"))
    text(pk() + "-----", "private-key: extra dashes after END", R("private-key") + "-----")
    text(pk(body="x" * 5000 + "\n"), "private-key: a 5000-character body", R("private-key"))
    text(pk(body="sk-" + alnum(30) + "\n"), "private-key: a key inside the block", R("private-key"))
    text("-----BEGIN PRIVATE KEY-----\n" + "sk-" + alnum(30), "private-key: no END, inner openai key",
         "-----BEGIN PRIVATE KEY-----\n" + R("openai-key"))


def order_cases():
    text("sk-ant-" + alnum(20), "sk-ant- is anthropic, not openai", R("anthropic-key"))
    text("sk-ant-" + alnum(19), "sk-ant- one short: neither", None)
    text("sk-ant" + alnum(20), "sk-ant without dash: openai", R("openai-key"))
    text("sk-ant-" + alnum(10) + "-" + alnum(10), "anthropic with inner dashes", R("anthropic-key"))
    text("sk-" + alnum(10) + "-" + alnum(10), "openai: a dash breaks the run", None)
    text("SK-" + alnum(20), "openai: upper-case prefix", None)
    text("sk_" + alnum(20), "openai: underscore", None)
    text("sk-" + alnum(45), "openai: long run, hex pattern finds nothing after", R("openai-key"))
    text("ghs_" + alnum(36), "github: ghs_", R("github-token"))
    text("gho_" + alnum(36), "github: gho_ is not a kind", None)
    text("GHP_" + alnum(36), "github: upper case", None)
    text("ghp_" + alnum(36) + "_x", "github: stops at underscore", R("github-token") + "_x")
    text("github_pat_" + "_" * 22, "github_pat: underscores only", R("github-token"))
    for k in "bpras":
        text("xox%s-%s" % (k, alnum(10)), "slack: xox%s" % k, R("slack-token"))
    text("xoxc-" + alnum(10), "slack: xoxc is not a kind", None)
    text("xoxb-" + "-" * 10, "slack: dashes only", R("slack-token"))
    text("AKIA" + "ABCDEFGHIJKLMNOPQ", "aws: 17 after AKIA, one left", R("aws-access-key") + "Q")
    text("AKIA" + "abcdefghijklmnop", "aws: lower case", None)
    text("AKIA" + "ABCDEFGHIJKLMNO" + "p", "aws: one lower-case at the end", None)
    text("xAKIAABCDEFGHIJKLMNOPx", "aws: inside a word", "x" + R("aws-access-key") + "x")
    text("Bearer\ttok123", "bearer: tab", R("bearer-token"))
    text("Bearer \n tok123==", "bearer: mixed whitespace, padding", R("bearer-token"))
    text("Bearer tok==x", "bearer: = then more", R("bearer-token") + "x")
    text("Bearer =", "bearer: padding only", None)
    text("Bearer ", "bearer: nothing after", None)
    text("BEARER tok", "bearer: upper case", None)
    text("Bearertok", "bearer: no space", None)
    text("xBearer tok", "bearer: inside a word", "x" + R("bearer-token"))
    text("Authorization: Bearer a.b Bearer c/d", "bearer: two", "Authorization: %s %s" % ((R("bearer-token"),) * 2))
    for s in ("postgres", "mysql", "mongodb", "redis", "amqp"):
        text("%s://h/db x" % s, "connection: %s" % s, R("connection-string") + " x")
    text("postgres://user:pw@h", "connection swallows the credentials: basic-auth finds nothing",
         R("connection-string"))
    text("postgresql://u:p@h/db", "postgresql:// is not a connection scheme: basic-auth",
         "postgresql://" + R("basic-auth") + "@h/db")
    text("mongodb+srv://u:p@h/db", "mongodb+srv:// goes to basic-auth", "mongodb+srv://" + R("basic-auth") + "@h/db")
    text("xpostgres://a", "connection: no word boundary needed", "x" + R("connection-string"))
    text("POSTGRES://u:p@h", "connection: upper case, basic-auth instead", "POSTGRES://" + R("basic-auth") + "@h")
    text("postgres://", "connection: nothing after", None)
    text("postgres://a b https://u:p@h", "connection then basic-auth",
         R("connection-string") + " b https://" + R("basic-auth") + "@h")
    text("https://user:sk-" + alnum(20) + "@host", "openai inside a URL, then basic-auth",
         "https://" + R("basic-auth") + "@host")
    text("https://user:pw@example.com/p", "basic-auth", "https://" + R("basic-auth") + "@example.com/p")
    text("https://a:b@h https://c:d@i", "basic-auth: two", "https://%s@h https://%s@i" % ((R("basic-auth"),) * 2))
    text("https://u:p:q@h", "basic-auth: colon in the password", "https://" + R("basic-auth") + "@h")
    text("https://u:p@h@i", "basic-auth: stops at the first @", "https://" + R("basic-auth") + "@h@i")
    text("https://u:p/@h", "basic-auth: slash in the password", None)
    text("https://u/x:p@h", "basic-auth: slash in the user", None)
    text("https://:p@h", "basic-auth: empty user", None)
    text("https://u:@h", "basic-auth: empty password", None)
    text("https://u@h", "basic-auth: no password", None)
    text("a+b.c-d://u:p@h", "basic-auth: scheme with + . -", "a+b.c-d://" + R("basic-auth") + "@h")
    text("1http://u:p@h", "basic-auth: digit before the scheme", None)
    text("-http://u:p@h", "basic-auth: dash before the scheme", "-http://" + R("basic-auth") + "@h")
    text("+http://u:p@h", "basic-auth: scheme cannot start with +", "+http://" + R("basic-auth") + "@h")
    text("9://u:p@h", "basic-auth: scheme must start with a letter", None)
    text("x://u:p@h", "basic-auth: one-letter scheme", "x://" + R("basic-auth") + "@h")
    text("HTTPS://U:P@H", "basic-auth: upper case", "HTTPS://" + R("basic-auth") + "@H")
    text("xyz://a:-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----@h",
         "basic-auth made possible by the private-key substitution", "xyz://" + R("basic-auth") + "@h")
    text("https://u:Bearer tok@h", "basic-auth made possible by the bearer substitution",
         "https://" + R("basic-auth") + "@h")
    text("https://u:Bearer tok /@h", "bearer, then basic-auth still blocked",
         "https://u:" + R("bearer-token") + " /@h")
    text("key-" + alnum(16) + "key-" + alnum(16), "api-key: two adjacent runs are one match",
         R("api-key") + "-" + alnum(16))
    text("key-" + alnum(16) + "-key-" + alnum(16), "api-key: dash separated, two matches",
         R("api-key") + "-" + R("api-key"))
    text("apikey-" + alnum(16), "api-key: no word boundary", "api" + R("api-key"))
    text("KEY-" + alnum(16), "api-key: upper case", None)
    text("mytoken-" + alnum(16), "token: inside a word", "my" + R("token"))
    text("Token-" + alnum(16), "token: capital T", None)
    text("token-" + hexrun(40), "token before hex", R("token"))
    text("key-" + hexrun(40), "api-key before hex", R("api-key"))
    text("0x" + hexrun(40), "hex after 0x", "0x" + R("hex-token"))
    text(hexrun(80) + " " + hexrun(39), "hex: 80 and 39", R("hex-token") + " " + hexrun(39))
    text(hexrun(39) + " " + hexrun(80), "hex: 39 and 80", hexrun(39) + " " + R("hex-token"))
    text(hexrun(20) + "A" + hexrun(20), "hex: an upper-case digit splits the run", None)
    text(hexrun(40).upper(), "hex: upper case", None)
    text(hexrun(100), "hex: a long run", R("hex-token"))
    text("g" + hexrun(40) + "g", "hex: no word boundary", "g" + R("hex-token") + "g")
    jwt = "eyJ" + alnum(10) + ".eyJ" + alnum(10) + "." + alnum(10)
    text(jwt + "." + jwt, "jwt: two joined by a dot", R("jwt") + "." + R("jwt"))
    text("eyJ" + alnum(9) + ".eyJ" + alnum(10) + "." + alnum(10), "jwt: first part short", None)
    text("eyJ" + alnum(10) + ".eyJ" + alnum(10) + "." + alnum(9), "jwt: last part short", None)
    text("eyJ" + alnum(10) + ".eyj" + alnum(10) + "." + alnum(10), "jwt: eyj", None)
    text("eyJ" + "-_" * 5 + ".eyJ" + "_-" * 5 + "." + "-" * 10, "jwt: - and _", R("jwt"))
    text("eyJ" + hexrun(45) + ".eyJ" + alnum(10) + "." + alnum(10), "jwt before hex", R("jwt"))
    text("key-" + alnum(16) + "\x00sk-" + alnum(20), "NUL between two keys", R("api-key") + "\x00" + R("openai-key"))
    text("\x00", "NUL alone", None)


def prefilter_cases():
    """Hex runs of 39 and 40 at every offset against 16-byte blocks, and at
    the string's end (a vectorized pre-filter's tail)."""
    for off in range(0, 34):
        add("z" * off + hexrun(40, off), "hex 40 at offset %d" % off, "z" * off + R("hex-token"))
        add("z" * off + hexrun(39, off), "hex 39 at offset %d" % off, None)
        add("z" * off + hexrun(39, off) + "z" + hexrun(39), "two hex 39 at offset %d" % off, None)
        add("z" * off + hexrun(41, off) + "Z" * (off % 7), "hex 41 at offset %d" % off,
            "z" * off + R("hex-token") + "Z" * (off % 7))
    for n in range(0, 50):
        add(hexrun(n), "hex run of %d" % n, R("hex-token") if n >= 40 else None)


WS = [c for c in range(0x110000) if chr(c).isspace()]
NOT_WS = [0x200B, 0x180E, 0xFEFF, 0x2060, 0x200C, 0x00, 0x08, 0x7F, 0x0E, 0x1B, 0x1A0E, 0x3164, 0xD800]


def unicode_space_cases():
    assert len(WS) == 29
    for c in WS + NOT_WS:
        ch = chr(c)
        sp = c in WS
        add("Bearer" + ch + "tok123", "bearer with U+%04X" % c, R("bearer-token") if sp else None)
        add("Bearer " + ch + "tok123", "bearer, space then U+%04X" % c, R("bearer-token") if sp else None)
        add("postgres://a" + ch + "b", "connection with U+%04X" % c,
            R("connection-string") + ch + "b" if sp else R("connection-string"))
        add("https://u" + ch + "x:p@h", "basic-auth user with U+%04X" % c,
            None if sp else "https://" + R("basic-auth") + "@h")
        add("https://u:p" + ch + "x@h", "basic-auth password with U+%04X" % c,
            None if sp else "https://" + R("basic-auth") + "@h")
        add(ch + "https://u:p@h", "U+%04X before a basic-auth URL" % c, ANY)
    text("postgres://a\u3000b", "connection stops at U+3000", R("connection-string") + "\u3000b")
    text("postgres://a\x1cb", "connection stops at U+001C", R("connection-string") + "\x1cb")
    text("postgres://a\u200bb", "connection runs through U+200B", R("connection-string"))


WORD = ["\u00e9", "\u00b2", "\u2160", "\u0661", "\u4e2d", "_", "a", "Z", "0", "\u00aa", "\u00b5", "\u01c5",
        "\u02b0", "\u00bd", "\u0bf0", "\u16ee", "\u3007", "\uff10", "\U0001d7ce", "\U00010400", "\U00020000", "\u2e2f"]
NOT_WORD = ["-", " ", "\U0001f600", "\u00b7", "\u0301", "\u200d", "\u2028", ".", "+", "/", ":", "@", "[",
            "`", "{", "\x00", "\u00a0", "\ue000", "\U000f0000", "\ud800", "\udfff", "\u02c2"]


def word_boundary_cases():
    for ch in WORD + NOT_WORD:
        is_word = re.match(r"\w", ch) is not None
        assert is_word == (ch in WORD), ch
        letter = ch.isascii() and ch.isalpha()
        s = ch + "http://u:p@h"
        add(s, "\\b: U+%04X before the scheme" % ord(ch),
            ch + "http://" + R("basic-auth") + "@h" if not is_word or letter else None)
        add("x " + ch + "ftp://u:p@h/x", "\\b: U+%04X after a space" % ord(ch), ANY)


def surrogate_cases():
    text("postgres://a\ud800b c", "connection runs through a lone surrogate", R("connection-string") + " c")
    text("\ud800http://u:p@h", "a lone surrogate is not a word character", "\ud800http://" + R("basic-auth") + "@h")
    text("\udc00http://u:p@h", "a lone low surrogate is not a word character",
         "\udc00http://" + R("basic-auth") + "@h")
    text("https://u\ud800:p\udbff@h", "basic-auth credentials with surrogates", "https://" + R("basic-auth") + "@h")
    text(pk(body="\ud800\n", nl=""), "private-key with a surrogate inside", R("private-key"))
    text("\ud800" + hexrun(40) + "\udfff", "surrogates around a hex run", "\ud800" + R("hex-token") + "\udfff")
    text("\ud800" + hexrun(39) + "\udfff", "surrogates around a hex 39 run", None)
    text(hexrun(20) + "\ud800" + hexrun(20), "a surrogate splits a hex run", None)
    text("\ud800 plain \udc00", "surrogates, nothing to redact", None)
    text("\ue000\ud800\U000f0000 sk-" + alnum(20) + " \ud801\ue001",
         "private use and surrogates around a key",
         "\ue000\ud800\U000f0000 " + R("openai-key") + " \ud801\ue001")
    text("".join(chr(0xE000 + i) for i in range(8)) + "\ud800\ud801 postgres://x\ud802\ue003 \ud803",
         "surrogates with the first private-use characters taken",
         "".join(chr(0xE000 + i) for i in range(8)) + "\ud800\ud801 " + R("connection-string") + " \ud803")
    text("\udbff\udbff Bearer tok\udbff", "repeated surrogate", "\udbff\udbff " + R("bearer-token") + "\udbff")
    text("Bearer \ud800", "bearer token cannot be a surrogate", None)
    text("\ud800-----BEGIN PRIVATE KEY-----\ud800-----END PRIVATE KEY-----\ud800", "surrogates around a block",
         "\ud800" + R("private-key") + "\ud800")
    text("\udfff\ud800 ghp_" + alnum(36), "low then high surrogate stay apart", "\udfff\ud800 " + R("github-token"))
    text("sk-" + alnum(20) + "\ud83d", "a key then a lone high surrogate", R("openai-key") + "\ud83d")
    text("\ude00sk-" + alnum(20), "a lone low surrogate then a key", "\ude00" + R("openai-key"))
    text("\U0001f600 https://u:p@h \U0001f600", "an emoji (a pair in JSON) is not a word character",
         "\U0001f600 https://" + R("basic-auth") + "@h \U0001f600")
    text("\U0001f600http://u:p@h", "emoji right before the scheme", "\U0001f600http://" + R("basic-auth") + "@h")
    text("\U0010ffff\U000ffffd\ud800 key-" + alnum(16), "last private-use characters",
         "\U0010ffff\U000ffffd\ud800 " + R("api-key"))


def key_cases():
    for k in sorted(SENSITIVE_KEYS):
        add({k: "v", "other": "v"}, "sensitive key %s" % k,
            {k: SENSITIVE if key_sensitive(k) else "v", "other": "v"})
    for k, yes in [("PASSWORD", True), ("Api_Key", True), (" Token ", True), ("\tsecret\n", True),
                   ("\u00a0secret\u3000", True), ("\x1csecret\x1f", True), ("\u0085passwd\u2029", True),
                   ("\u200bsecret", False), ("\ufeffsecret", False), ("api-key", True), ("API-KEY", True),
                   ("client-secret", True), ("aws-secret-access-key", True), ("db-url", True),
                   ("api_\u212aey", True), ("\u212a", False), ("tokens", False), ("my_token", False),
                   ("my_password", False), ("passwords", False), ("pass word", False), ("api key", False),
                   ("api--key", False), ("-token", False), ("token-", False), ("password\x00", False),
                   ("\x00password", False), ("token\x00x", False), ("\u0130", False), ("\ud800token", False),
                   ("token\ud800", False), ("", False), ("[REDACTED]", False), ("se cret", False),
                   ("\u017fecret", False), ("AUTHORIZATION", True), ("Authorization", True),
                   ("PrivateKey", True), ("private-key", True), ("connection-string", True),
                   ("database-url", True), ("aws-access-key-id", True), ("aws_session-token", True),
                   ("refresh-token", True), ("access-token", True), ("auth-token", True),
                   ("credential", True), ("CREDENTIALS", True), ("x" * 40 + "token", False)]:
        assert key_sensitive(k) == yes, k
        add({k: "plain text"}, "key %r" % k, {k: SENSITIVE if yes else "plain text"})
        add({k: "sk-" + alnum(20)}, "key %r over an openai key" % k,
            {k: SENSITIVE if yes else R("openai-key")})
    add({"credentials": ["a", {"x": "b", "token": "c"}, ["d", ["e"]], 1, None, True, {}]},
        "array under a sensitive key: strings marked, objects walked by their own keys",
        {"credentials": [SENSITIVE, {"x": "b", "token": SENSITIVE}, [SENSITIVE, [SENSITIVE]], 1, None, True, {}]})
    add({"token": [[["deep"]]]}, "nested arrays under a sensitive key", {"token": [[[SENSITIVE]]]})
    add({"token": [{"inner": "sk-" + alnum(20)}]}, "object in an array under a sensitive key: patterns",
        {"token": [{"inner": R("openai-key")}]})
    add({"token": {"inner": "plain"}}, "object under a sensitive key: walked by its own key",
        {"token": {"inner": "plain"}})
    add({"token": {"password": "x"}}, "object under a sensitive key with a sensitive key",
        {"token": {"password": SENSITIVE}})
    add({"secret": 42, "client_secret": None, "password": True, "passwd": False, "api_key": 1.5,
         "token": [], "credential": {}}, "non-strings under sensitive keys are kept")
    add({"secret": ""}, "empty string under a sensitive key", {"secret": SENSITIVE})
    add({"secret": SENSITIVE}, "the marker under a sensitive key: marked, not changed")
    add({"secret": [SENSITIVE, SENSITIVE]}, "markers in an array under a sensitive key")
    add({"secret": [SENSITIVE, "x"]}, "a marker and a string in an array under a sensitive key")
    add({"outer": {"password": "x"}, "list": [{"token": "y"}]}, "sensitive keys deeper down")
    add({"Token": "a", "text": "plain", "n": [1, 2.5, -0.0, 10 ** 30]}, "mixed object")


def flag_cases():
    text("mentions [REDACTED earlier", "already marked text: marked, not changed", None)
    text("mail [REDACTED_EMAIL] here", "[REDACTED_EMAIL]: marked", None)
    text("[REDACTE", "[REDACTE is not the marker", None)
    text("[redacted", "lower-case marker is not the marker", None)
    text("[ REDACTED", "spaced marker", None)
    text("[REDACTED", "the bare marker", None)
    text("x" * 14 + "[REDACTED" + "y" * 14, "the marker across a 16-byte block", None)
    add({"[REDACTED]": "x"}, "a key holding the marker is not flagged")
    add({"[REDACTED:sensitive]": 1, "a": ["[REDACTED"]}, "marker in a key and in an array")
    text("https://[REDACTED:basic-auth]@host", "basic-auth over its own marker: the same text", None)
    text("Bearer [REDACTED:bearer-token]", "bearer over its marker: no match", None)
    text("[REDACTED:hex-token] " + hexrun(40), "marked and changed", "[REDACTED:hex-token] " + R("hex-token"))
    add([["[REDACTED"], 1], "marker in a nested list")
    add({"a": {"b": {"c": "[REDACTED"}}}, "marker deep in objects")
    add({"a": 1, "b": None}, "nothing to flag")


def top_level_cases():
    add("plain", "top-level plain string")
    add("", "top-level empty string")
    add("sk-" + alnum(20), "top-level string with a key", R("openai-key"))
    add(["sk-" + alnum(20), "x", 1, None], "top-level list")
    add([], "top-level empty list")
    add({}, "top-level empty object")
    add(0, "top-level zero")
    add(12345678901234567890123, "top-level big integer")
    add(-1.25e-7, "top-level float")
    add(float("inf"), "top-level infinity")
    add(None, "top-level null")
    add(True, "top-level true")
    add(False, "top-level false")
    add({"a": [{"b": [{"c": "ghp_" + alnum(36)}]}]}, "deep nesting")
    add({"deep": [[[[[[[[[["AKIAIOSFODNN7EXAMPLE"]]]]]]]]]]}, "ten nested lists")


def reference_cases():
    """The strings of ../shared/fixtures/claude-edge/secrets.jsonl."""
    add({"prompt": "my key is sk-ant-api03-Zz9Yy8Xx7Ww6Zz9Yy8Xx7Ww6Zz9Yy8Xx7Ww6 ok?"}, "fixture: prompt",
        {"prompt": "my key is [REDACTED:anthropic-key] ok?"})
    add({"command": "curl -H 'Authorization: Bearer tok123' https://api",
         "env": {"API_KEY": "plain", "api-key": "dash", " Token ": "spaced", "PASSWORD": "upper",
                 "nested": {"secret": 42, "credentials": ["a", {"x": "b"}], "client_secret": None}}},
        "fixture: env")
    add({"text": "Use Bearer abc.def-ghi_jkl~mno+pqr/stu== then postgres://admin:hunter2@db:5432/x and "
                 "https://user:pw@example.com/p"}, "fixture: text",
        {"text": "Use [REDACTED:bearer-token] then [REDACTED:connection-string] and "
                 "https://[REDACTED:basic-auth]@example.com/p"})
    add({"content": "mysql://root:pw@localhost/db and redis://x"}, "fixture: tool result")


# ---- fuzz ----------------------------------------------------------------------

FRAGMENTS = ["sk-", "sk-ant-", "ghp_", "ghs_", "github_pat_", "xoxb-", "xoxp-", "AKIA", "Bearer ", "Bearer\t",
             "postgres://", "mysql://", "redis://", "https://", "ftp://", "u:p@", "user:", "@", ":", "/", "//",
             "key-", "token-", "eyJ", ".", "-", "_", "=", "-----BEGIN RSA PRIVATE KEY-----",
             "-----END RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
             "[REDACTED", "[REDACTED:sensitive]", "[REDACTED_EMAIL]", "\n", "\r\n"]
SPACES = [" ", "\t", "\n", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "\u200b", "\ufeff", "\u180e"]
LETTERS = ["\u00e9", "\u00b2", "\u2160", "\u0661", "\u4e2d", "\u00b7", "\U0001f600", "\u0301", "\U00010400",
           "\ue000", "\U000f0000", "\x00", "\x7f", "\u212a"]
KEYS = ["text", "content", "url", "cmd", "x", "data", "env", "note", "", "my_token", "tokens", "Token ",
        "API-KEY", "password", "secret", "credentials", "api_key", "Authorization", "db-url", "api_\u212aey",
        "\u00a0token", "passwd\x00", "[REDACTED]"]


def fuzz_run(rng, chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def fuzz_secret(rng):
    """A prefix followed by a run around its length threshold, or a URL
    with credentials made of random pieces: about half of these match."""
    k = rng.randrange(8)
    if k == 0:
        return rng.choice(["sk-", "sk-ant-", "key-", "token-", "xoxb-", "ghp_", "github_pat_"]) + \
            fuzz_run(rng, ALNUM + "-_", 8, 40)
    if k == 1:
        return "AKIA" + fuzz_run(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 3 + "a", 14, 18)
    if k == 2:
        return "eyJ" + fuzz_run(rng, ALNUM, 8, 12) + ".eyJ" + fuzz_run(rng, ALNUM, 8, 12) + "." + \
            fuzz_run(rng, ALNUM + "_-", 8, 12)
    if k == 3:
        return "Bearer" + rng.choice(SPACES) + fuzz_run(rng, ALNUM + "-._~+/=", 0, 12)
    if k == 4:
        return fuzz_run(rng, HEX, 36, 44)
    piece = ALNUM + ":@/. \u00e9-" + "\ud800"
    return rng.choice(["https", "x", "git+ssh", "postgresql", "mongodb+srv", "9a", ""]) + "://" + \
        fuzz_run(rng, piece, 0, 5) + rng.choice([":", "@", ""]) + fuzz_run(rng, piece, 0, 5) + \
        rng.choice(["@", "@h", "/@", ""])


def fuzz_string(rng):
    parts = []
    for _ in range(rng.randint(1, 9)):
        k = rng.randrange(12)
        if k < 4:
            parts.append(rng.choice(FRAGMENTS))
        elif k >= 10:
            parts.append(fuzz_secret(rng))
        elif k == 4:
            parts.append("".join(rng.choice(HEX) for _ in range(rng.randint(1, 60))))
        elif k == 5:
            chars = ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if rng.random() < 0.5 else ALNUM
            parts.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 45))))
        elif k == 6:
            parts.append(rng.choice(SPACES))
        elif k == 7:
            parts.append(rng.choice(LETTERS))
        elif k == 8:
            parts.append(chr(rng.randint(0xD800, 0xDFFF)))
        else:
            parts.append(rng.choice(["a", "Z", "9", "x", "ab", "h", "host", "-", "_"]))
    return "".join(parts)


def fuzz_value(rng, depth=0):
    k = rng.randrange(10 if depth < 3 else 6)
    if k < 5:
        return fuzz_string(rng)
    if k == 5:
        return rng.choice([None, True, False, 0, 7, -1.5, 10 ** 20])
    if k < 8:
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): fuzz_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def fuzz_cases():
    rng = random.Random(20240607)
    for i in range(3000):
        v = fuzz_value(rng) if i % 3 else fuzz_string(rng)
        add(v, "fuzz %d" % i)


def word_ranges():
    w = re.compile(r"\w")
    ranges, start = [], None
    for c in range(0x110001):
        is_word = c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF and w.match(chr(c)) is not None
        if is_word and start is None:
            start = c
        elif not is_word and start is not None:
            ranges.append((start, c - 1))
            start = None
    return ranges


def main():
    # \w and \s follow the Unicode database: the C side's PCRE2 (10.42) and
    # Python 3.11 both use 14.0; another version changes word_ranges.txt.
    assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
    per_pattern()
    private_key_cases()
    order_cases()
    prefilter_cases()
    unicode_space_cases()
    word_boundary_cases()
    surrogate_cases()
    key_cases()
    flag_cases()
    top_level_cases()
    reference_cases()
    fuzz_cases()
    with open(os.path.join(HERE, "redact.ndjson"), "w", encoding="ascii", newline="\n") as f:
        for v in VECTORS:
            f.write(json.dumps(v) + "\n")
    with open(os.path.join(HERE, "word_ranges.txt"), "w", encoding="ascii", newline="\n") as f:
        for a, b in word_ranges():
            f.write("%04X %04X\n" % (a, b))


if __name__ == "__main__":
    main()
