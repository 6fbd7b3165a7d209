#!/bin/bash
# log_bench.sh - what the transparency log costs a server, end to end, with
# the log on and off (`serve --no-log`) measured alternately in the same run:
#   * appends/s (POST /events, one event a request, fsync on), 16 clients on
#     their own sessions;
#   * upload MB/s of a ~N MB transcript (a new session each time), one
#     client, then four at once;
#   * latency from an upload's 2xx to the first signed checkpoint covering
#     its log_index (log on only).
# (bench/bench_log times the log alone: appends, roots, proofs.)
#
#   bench/log_bench.sh [--bin PATH] [--mb N] [--seconds S] [--rounds R]
# Needs curl and wrk; loopback only; everything lives in a temp dir.
set -u
BIN=${top_builddir:-.}/agent-traced
SRC=${top_srcdir:-.}
MB=100
SECS=5
ROUNDS=2
usage="usage: $0 [--bin PATH] [--mb N] [--seconds S] [--rounds R]"
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
done
command -v wrk > /dev/null || { echo "log_bench: wrk is needed (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() { # start STORAGE [--no-log]
    "$BIN" serve --port 0 --storage "$1" --threads 8 ${2:+"$2"} 2> "$work/log" &
    pid=$!
    for _ in $(seq 400); do grep -q '^listening on' "$work/log" 2>/dev/null && break; sleep 0.05; done
    grep -q '^listening on' "$work/log" || { echo "log_bench: the server did not start:" >&2; cat "$work/log" >&2; exit 1; }
    url=http://127.0.0.1:$(head -1 "$work/log" | sed 's/.*://')
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; }
now() { date +%s.%N; }

cat > "$work/append.lua" <<'LUA'
local counter = 0
function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
end
function init(args) n = 0 end
function request()
    n = n + 1
    local body = string.format('{"event_type":"decision","session_id":"bench-%d","event_id":"e%d-%d","data":{"n":%d}}', tid, tid, n, n)
    return wrk.format("POST", "/events", {["Content-Type"] = "application/x-ndjson"}, body)
end
LUA

fix="$SRC/tests/fixtures/claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl"
unit=$(stat -c %s "$fix")
reps=$(( MB * 1024 * 1024 / unit + 1 ))
for _ in $(seq "$reps"); do cat "$fix"; done > "$work/big.jsonl"
size=$(stat -c %s "$work/big.jsonl")

echo "cores: $(nproc), storage on $(df -T "$work" | awk 'NR==2 {print $2}'), transcript $((size / 1048576)) MB"
declare -A best_app best_up best_up1
for r in $(seq "$ROUNDS"); do
    for mode in on off; do
        rm -rf "$work/s"
        if [ $mode = on ]; then start "$work/s"; else start "$work/s" --no-log; fi
        app=$(wrk -t16 -c16 -d"${SECS}s" -s "$work/append.lua" "$url" 2>&1 | awk '/Requests\/sec/ {print $2}')
        up=0
        for k in 1 2; do # one client, then four at once (new sessions each time)
            n=$((k == 1 ? 1 : 4))
            for c in $(seq "$n"); do
                sed "s/258c7280-ae70-4798-800f-63464d01a85d/bench-up-$r-$k-$c-000-0000-000000000000/g" "$work/big.jsonl" > "$work/up$c.jsonl"
            done
            t0=$(now)
            cpids=""
            for c in $(seq "$n"); do
                curl -sS -o /dev/null -T "$work/up$c.jsonl" "$url/import?source=up.jsonl" &
                cpids="$cpids $!"
            done
            wait $cpids
            t1=$(now)
            m=$(awk -v s="$size" -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n * s / 1048576 / (b - a) }')
            if [ "$k" = 1 ]; then up1=$m; else up=$m; fi
        done
        printf '  round %d, log %-3s: %8.0f appends/s (16 clients), upload %6.0f MB/s (1 client), %6.0f MB/s (4 clients)\n' "$r" "$mode" "$app" "$up1" "$up"
        awk -v x="$up1" -v y="${best_up1[$mode]:-0}" 'BEGIN { exit !(x > y) }' && best_up1[$mode]=$up1
        awk -v x="$app" -v y="${best_app[$mode]:-0}" 'BEGIN { exit !(x > y) }' && best_app[$mode]=$app
        awk -v x="$up" -v y="${best_up[$mode]:-0}" 'BEGIN { exit !(x > y) }' && best_up[$mode]=$up
        stop
    done
done
awk -v a="${best_app[on]}" -v b="${best_app[off]}" -v c="${best_up[on]}" -v d="${best_up[off]}" \
    -v e="${best_up1[on]}" -v f="${best_up1[off]}" 'BEGIN {
    printf "best: appends/s %.0f on vs %.0f off (%.1f%%); upload, 4 clients: %.0f vs %.0f MB/s (%.1f%%); 1 client: %.0f vs %.0f MB/s (%.1f%%)\n", a, b, 100 * a / b, c, d, 100 * c / d, e, f, 100 * e / f }'

# ---- from a 2xx to a checkpoint that covers it --------------------------------
rm -rf "$work/s"
start "$work/s"
lat=""
for k in $(seq 20); do
    body="{\"event_type\":\"decision\",\"session_id\":\"lat-$k\",\"event_id\":\"l$k\",\"data\":{}}"
    t0=$(now)
    out=$(curl -sS -X POST -H 'Content-Type: application/x-ndjson' --data-binary "$body" "$url/events")
    want=$(curl -sS "$url/sessions/lat-$k/verify" | grep -o '"index": [0-9]*' | awk '{print $2 + 1}')
    [ -n "$want" ] || { echo "  no log index for lat-$k: $out" >&2; continue; }
    while :; do
        have=$(curl -sS "$url/log/checkpoint" | sed -n 2p)
        [ "${have:-0}" -ge "$want" ] && break
        sleep 0.001
    done
    t1=$(now)
    lat="$lat $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
done
stop
echo "2xx to a covering checkpoint (ms, 20 single-event writes, incl. curl):$lat"
echo "$lat" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { printf "  median %.1f ms, max %.1f ms\n", v[int((NR + 1) / 2)], v[NR] }'
