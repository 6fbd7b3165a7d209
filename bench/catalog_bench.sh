#!/bin/bash
# catalog_bench.sh - GET /health and GET /sessions requests/s of
# `agent-traced serve` against bench/ref_collector.py (a Python STAND-IN for
# agent-strace's collector written from its documented behaviour, not the
# reference itself: agent-strace cannot be installed here) on the same
# storage of N sessions, and, when tests/test_catalog is built, the session
# catalog's own cost per call.
#
#   bench/catalog_bench.sh [--sessions N] [--duration 5s] [--threads T]
#                          [--connections C] [--bin PATH] [--keep DIR]
#
# The storage holds the sessions of tests/fixtures/expected* copied under
# new ids with varied started_at. Needs python3 and wrk (Debian: apt-get
# install -y wrk); loopback only. The ratio is agent-traced / stand-in, with
# the stand-in at its best (HTTP/1.1 keep-alive, no request log).
set -u
BIN=${top_builddir:-.}/agent-traced
TESTBIN=${top_builddir:-.}/tests/test_catalog
SRC=${top_srcdir:-.}
N=200
DUR=5s
THREADS=2
CONNS=16
KEEP=""
while [ $# -gt 0 ]; do
    case $1 in
    --sessions) N=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "usage: $0 [--sessions N] [--duration 5s] [--threads T] [--connections C] [--bin PATH] [--keep DIR]" >&2
       exit 2 ;;
    esac
done
command -v wrk > /dev/null || { echo "catalog_bench: wrk not installed (apt-get install -y wrk)" >&2; exit 77; }
command -v python3 > /dev/null || { echo "catalog_bench: python3 not found" >&2; exit 77; }
[ -x "$BIN" ] || { echo "catalog_bench: $BIN not built" >&2; exit 77; }

work=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2> /dev/null && wait "$p" 2> /dev/null; done
    if [ -n "$KEEP" ]; then rm -rf "$KEEP"; mv "$work/store" "$KEEP"; fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the storage: fixture sessions under new ids, started_at varied
python3 - "$SRC/tests/fixtures" "$work/store" "$N" << 'EOF'
import json, os, shutil, sys, uuid
fixtures, store, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
src = []
for s in sorted(os.listdir(fixtures)):
    if s.startswith("expected"):
        d = os.path.join(fixtures, s)
        src += [os.path.join(d, x) for x in sorted(os.listdir(d))
                if os.path.isfile(os.path.join(d, x, "meta.json"))]
os.makedirs(store)
for i in range(n):
    s = src[i % len(src)]
    with open(os.path.join(s, "meta.json")) as f:
        meta = json.load(f)
    sid = str(uuid.UUID(int=(i + 1) * 0x9E3779B97F4A7C15F39CC0605CEDC835 % (1 << 128)))
    meta["session_id"] = sid
    meta["started_at"] = 1767225600.0 + (i * 7919 % n) * 61.25  # shuffled, some equal
    os.mkdir(os.path.join(store, sid))
    with open(os.path.join(store, sid, "meta.json"), "w") as f:
        f.write(json.dumps(meta, indent=2))
    ev = os.path.join(s, "events.ndjson")
    if os.path.exists(ev):
        shutil.copyfile(ev, os.path.join(store, sid, "events.ndjson"))
EOF
echo "storage: $N sessions, $(du -sh "$work/store" | cut -f1) ($(ls "$work/store" | wc -l) entries); cores: $(nproc)"

start() { # start NAME LOG CMD... -> sets url
    "${@:3}" > "$2" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 200); do grep -q 'listening on' "$2" 2> /dev/null && break; sleep 0.05; done
    local port
    port=$(grep -m1 'listening on' "$2" | sed 's/.*://')
    [ -n "$port" ] || { echo "catalog_bench: $1 did not start:" >&2; cat "$2" >&2; exit 1; }
    url=http://127.0.0.1:$port
}
start agent-traced "$work/server.log" "$BIN" serve --port 0 --storage "$work/store"
srv=$url
start stand-in "$work/ref.log" python3 "$SRC/bench/ref_collector.py" --storage "$work/store" --port 0 --keep-alive
ref=$url
start stand-in "$work/ref10.log" python3 "$SRC/bench/ref_collector.py" --storage "$work/store" --port 0
ref10=$url

for path in /health /sessions; do
    curl -s "$srv$path" > "$work/a"
    curl -s "$ref$path" > "$work/b"
    if cmp -s "$work/a" "$work/b"; then same="identical"; else same="DIFFERENT"; fi
    echo "GET $path: agent-traced and the stand-in answer $same bodies ($(wc -c < "$work/a") / $(wc -c < "$work/b") bytes)"
done
if ! nm "$BIN" 2> /dev/null | grep -q at_catalog_list_json; then
    echo "NOTE: this agent-traced does not use the session catalog yet: it scans the storage on every request."
    echo "      The numbers below are the current server; re-run once the catalog is wired in."
fi

rate() { # rate URL [allow-non-2xx] -> requests/s (warns on socket errors and non-2xx answers)
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DUR" "$1" 2>&1)
    echo "$out" | grep -E "Socket errors${2:+XX}|Non-2xx${2:+XX}" | sed "s|^|    wrk $1: |" >&2
    echo "$out" | awk '/Requests\/sec/ { print $2 }'
}
echo
echo "== requests/s, wrk -t$THREADS -c$CONNS -d$DUR on loopback (wrk and the servers share $(nproc) cores)"
echo "   ratio = agent-traced / the faster of the stand-in's two modes"
printf '%-14s %14s %20s %20s %9s\n' endpoint agent-traced "stand-in keep-alive" "stand-in HTTP/1.0" ratio
for path in /health /sessions; do
    a=$(rate "$srv$path")
    b=$(rate "$ref$path")
    c=$(rate "$ref10$path")
    r=$(awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { m = b > c ? b : c; if (m > 0) printf "%.1fx", a / m; else print "-" }')
    printf '%-14s %14s %20s %20s %9s\n' "GET $path" "$a" "$b" "$c" "$r"
done
printf '%-14s %14s   %s\n' "GET /nope" "$(rate "$srv/nope" 404)" "(agent-traced's 404: no storage access, the HTTP ceiling)"

if [ -x "$TESTBIN" ]; then
    echo
    echo "== the catalog alone, in-process ($TESTBIN --bench)"
    "$TESTBIN" --bench "$work/store"
fi
