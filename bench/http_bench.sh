#!/bin/bash
# http_bench.sh - end-to-end numbers for `agent-traced serve`:
#   * upload throughput (MB/s) of a large transcript, 1 client and 4 concurrent
#     clients (curl, chunked, to 127.0.0.1);
#   * the server's peak RSS (VmHWM) during a 1 GiB chunked upload vs. idle;
#   * wrk requests/s for the GET routes.
#
#   bench/http_bench.sh [--bin PATH] [--mb N] [--gb-mb N] [--threads N]
# Needs curl and (for the request rates) wrk. Everything lives in a temp dir.
set -u
BIN=${top_builddir:-.}/agent-traced
SRC=${top_srcdir:-.}
MB=256        # size of the transcript used for the throughput runs
GB_MB=1024    # size of the upload during which RSS is sampled
THREADS=""
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --gb-mb) GB_MB=$2; shift 2 ;;
    --threads) THREADS="--threads $2"; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--mb N] [--gb-mb N] [--threads N]" >&2; exit 2 ;;
    esac
done
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A transcript of about $MB MB: the fixture transcripts repeated.
big=$work/big.jsonl
fix=$(ls "$SRC"/tests/fixtures/claude/*.jsonl)
cat $fix > "$work/unit"
unit=$(stat -c %s "$work/unit")
reps=$(( MB * 1024 * 1024 / unit + 1 ))
for _ in $(seq "$reps"); do cat "$work/unit"; done > "$big"
size=$(stat -c %s "$big")

"$BIN" serve --port 0 --storage "$work/store" $THREADS 2> "$work/log" &
pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/log" 2>/dev/null && break; sleep 0.05; done
port=$(head -1 "$work/log" | sed 's/.*://')
url=http://127.0.0.1:$port
echo "server pid $pid on port $port, $(sed -n 2p "$work/log" | sed 's/.*started: //')"
echo "cores: $(nproc)"

mbps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

upload() { # upload SOURCE FILE -> "status"
    curl -sS -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
        -T - "$url/import?source=$1" < "$2"
}

# warm the page cache
cat "$big" > /dev/null

echo
echo "== upload throughput ($((size / 1048576)) MB transcript, chunked)"
for run in 1 2; do
    t0=$(now); st=$(upload "big$run.jsonl" "$big"); t1=$(now)
    echo "1 client, run $run: status $st, $(elapsed "$t0" "$t1") s, $(mbps "$size" "$(elapsed "$t0" "$t1")") MB/s"
done
t0=$(now)
for i in 1 2 3 4; do upload "c$i.jsonl" "$big" > "$work/st$i" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
t1=$(now)
echo "4 clients: statuses $(cat "$work"/st? | fold -w3 | tr "\n" " ")in $(elapsed "$t0" "$t1") s, aggregate $(mbps $((size * 4)) "$(elapsed "$t0" "$t1")") MB/s"

echo
echo "== memory during a $GB_MB MB chunked upload"
rss() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
idle=$(rss VmRSS)
hwm0=$(rss VmHWM)
n=$(( GB_MB * 1024 * 1024 / size + 1 ))
t0=$(now)
st=$( (for _ in $(seq "$n"); do cat "$big"; done) | head -c $((GB_MB * 1024 * 1024)) |
      curl -sS -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -T - "$url/import?source=gb.jsonl")
t1=$(now)
hwm=$(rss VmHWM)
echo "status $st in $(elapsed "$t0" "$t1") s ($(mbps $((GB_MB * 1048576)) "$(elapsed "$t0" "$t1")") MB/s)"
echo "VmRSS idle before: $((idle / 1024)) MB; VmHWM before: $((hwm0 / 1024)) MB; VmHWM after: $((hwm / 1024)) MB;" \
     "growth over idle: $(( (hwm - idle) / 1024 )) MB"

echo
echo "== request rates (wrk -t2 -c32 -d5s)"
if command -v wrk > /dev/null; then
    sid=$(curl -s "$url/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["session_id"])' 2>/dev/null)
    eid=$(tail -n1 "$work/store/$sid/events.ndjson" 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["event_id"])' 2>/dev/null)
    for path in /health /metrics /sessions "/sessions/$sid" "/sessions/$sid/tree" "/events/$eid" /nope; do
        r=$(wrk -t2 -c32 -d5s "$url$path" 2>&1 | awk '/Requests\/sec/ { print $2 }')
        printf '%-60s %s req/s\n' "GET $path" "$r"
    done
else
    echo "wrk not installed"
fi
kill -TERM "$pid"; wait "$pid"; echo; echo "server exit status after SIGTERM: $?"; pid=""
