#!/bin/sh
# fuzz/seed.sh OUTDIR [TARGET...] - seed corpora for the fuzz targets
# (fuzz/README.md), made from the fixtures: OUTDIR/<target>/<files>. Every
# target by default. The small committed seeds in fuzz/seeds/ were made with
# `fuzz/seed.sh --small fuzz/seeds`. Needs python3 (the note seeds are
# signed with python3-cryptography when it is there).
set -eu
small=0
if [ "${1:-}" = "--small" ]; then
    small=1
    shift
fi
[ $# -ge 1 ] || { echo "usage: fuzz/seed.sh [--small] OUTDIR [TARGET...]" >&2; exit 2; }
out=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
targets=${*:-json importer chain request collector note}
fixtures="$top/tests/fixtures"
[ -d /work/shared/fixtures ] && fixtures="$fixtures /work/shared/fixtures"
for t in $targets; do mkdir -p "$out/$t"; done
SMALL=$small OUT=$out TARGETS=$targets FIXTURES=$fixtures python3 - <<'PY'
import base64, glob, hashlib, os, struct
out, small = os.environ["OUT"], os.environ["SMALL"] == "1"
targets = os.environ["TARGETS"].split()
fixtures = os.environ["FIXTURES"].split()
budget = 24 if small else 400   # files per target and source kind

def put(t, data):
    if t not in targets:
        return
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(out, t, name), "wb") as f:
        f.write(data)

def files(pattern):
    seen = set()
    for root in fixtures:
        for p in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
            rel = os.path.relpath(p, root)
            if rel not in seen:
                seen.add(rel)
                yield p

def lines(pattern, limit):
    got = []
    for p in files(pattern):
        with open(p, "rb") as f:
            for i, line in enumerate(f):
                if i >= 8:
                    break
                line = line.rstrip(b"\n")
                if line and (small is False or len(line) < 2048):
                    got.append(line)
    got.sort(key=len)
    step = max(1, len(got) // limit)
    return got[::step][:limit]

transcripts = lines("**/*.jsonl", budget)
events = lines("expected*/**/events.ndjson", budget)
metas = [open(p, "rb").read() for p in files("expected*/**/meta.json")][:budget]

# json: transcript entries, event lines, meta.json, and some corners
for x in transcripts + events + metas + [b"[]", b"{}", b'"\\ud800"', b"-0.0e-7", b"NaN", b'[1e400, -Infinity]']:
    put("json", x)

# importer: whole small transcripts, the first lines of the large ones
for p in files("claude*/**/*.jsonl"):
    data = open(p, "rb").read()
    cap = 8192 if small else 65536
    if len(data) > cap:
        data = data[: data.rfind(b"\n", 0, cap) + 1]
    put("importer", data)

# chain: the first lines of the expected events files, a broken one
for p in files("expected*/**/events.ndjson"):
    data = open(p, "rb").read()
    cap = 4096 if small else 65536
    if len(data) > cap:
        data = data[: data.rfind(b"\n", 0, cap) + 1]
    put("chain", data)
    put("chain", data.replace(b'"prev_hash":"', b'"prev_hash":"0', 1))

# collector: events as POST /events bodies (byte 0), metadata as POST /sessions (byte 1)
for i, e in enumerate(events):
    put("collector", bytes([2 * (i & 1)]) + e + b"\n")
for i, m in enumerate(metas):
    put("collector", bytes([1 + 2 * (i & 1)]) + m)

# request: the routes of openapi.yaml with ids, prefixes and queries
for r in [b"GET /health", b"GET /sessions/", b"GET /sessions/0e0e0e0e-aaaa", b"GET /sessions/0e0e0e0e-aaa",
          b"GET /sessions/0e0e0e0e-aaab-4000-8000-000000000002/events?version=1",
          b"GET /sessions/0e0e0e0e-aaaa-4000-8000-000000000001/versions/",
          b"GET /sessions/0e%30e/events/e1", b"HEAD /sessions/0e0e/tree?format=text", b"GET /events/e0",
          b"POST /import?source=a.jsonl&session=0e0e&offset=12", b"PUT /import", b"POST /events",
          b"GET /log/tile/0/000", b"GET /log/tile/1/x001/234.p/7", b"GET /log/tile/entries/000.p/1",
          b"GET /log/consistency?from=1&to=2", b"GET /objects/sha256/" + b"ab" * 32, b"DELETE /sessions"]:
    put("request", r)

# note: byte 0 picks the parser (fuzz_note.c)
def b64(b):
    return base64.b64encode(b)

name, wname = b"fuzz.example/log", b"fuzz.example/witness"
def keyid(n, typ, pub):
    return struct.unpack(">I", hashlib.sha256(n + b"\n" + bytes([typ]) + pub).digest()[:4])[0]
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    def key(seedbyte):
        sk = Ed25519PrivateKey.from_private_bytes(bytes([seedbyte]) * 32)
        pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return sk, pub
except ImportError:
    key = None

cp_root = hashlib.sha256(b"").digest()
empty = hashlib.sha256(b"").hexdigest().encode()
entry = b"agent-traced/head/v1\nsession \"s1\"\nversion 1\nevents 0\nhead " + empty + b"\nobject " + empty + b"\n"
leaf = hashlib.sha256(b"\x00" + entry).digest()
other = hashlib.sha256(b"\x00other").digest()
root2 = hashlib.sha256(b"\x01" + leaf + other).digest()
checkpoints = [name + b"\n0\n" + b64(cp_root) + b"\n", name + b"\n1\n" + b64(leaf) + b"\n",
               name + b"\n2\n" + b64(root2) + b"\nextension line\n"]
proof_heads = [b"c2sp.org/tlog-proof@v1\nextra " + b64(entry) + b"\nindex 0\n\n",
               b"c2sp.org/tlog-proof@v1\nextra " + b64(entry) + b"\nindex 0\n" + b64(other) + b"\n\n"]
for cp in checkpoints:
    put("note", b"\x03" + cp)
    put("note", b"\x07" + cp)
put("note", b"\x07hello\nworld\n")
put("note", b"\x06" + proof_heads[0] + checkpoints[1])
put("note", b"\x06" + proof_heads[1] + checkpoints[2])
put("note", b"\x04" + b64(leaf))
put("note", b"\x04" + b64(b"ab"))
if key:
    sk, pub = key(0x11)
    wsk, wpub = key(0x22)
    kid, wid = keyid(name, 1, pub), keyid(wname, 4, wpub)
    put("note", b"\x00" + name + b"+%08x+" % kid + b64(b"\x01" + pub))
    put("note", b"\x00" + wname + b"+%08x+" % wid + b64(b"\x04" + wpub))
    put("note", b"\x01PRIVATE+KEY+" + name + b"+%08x+" % kid + b64(b"\x01" + b"\x11" * 32))
    put("note", b"\x01PRIVATE+KEY+" + wname + b"+%08x+" % wid + b64(b"\x04" + b"\x22" * 32))
    for cp, head in [(checkpoints[1], proof_heads[0]), (checkpoints[2], proof_heads[1])]:
        sig = b"\xe2\x80\x94 " + name + b" " + b64(struct.pack(">I", kid) + sk.sign(cp)) + b"\n"
        t = 1700000000
        cosig = wsk.sign(b"cosignature/v1\ntime %d\n" % t + cp)
        wsig = b"\xe2\x80\x94 " + wname + b" " + b64(struct.pack(">IQ", wid, t) + cosig) + b"\n"
        put("note", b"\x02" + cp + b"\n" + sig + wsig)
        put("note", b"\x05" + head + cp + b"\n" + sig)
PY
for t in $targets; do echo "$t: $(ls "$out/$t" | wc -l) seeds"; done
