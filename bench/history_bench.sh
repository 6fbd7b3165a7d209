#!/bin/bash
# history_bench.sh - what session history costs, measured end to end:
#   * appends/s (POST /events, one event a request, fsync on): 1 client;
#     16 clients each on its own session; 16 clients on one session;
#   * one new turn of a ~100 MB transcript: incremental upload (?session=&offset=)
#     vs the whole file again (extended), with the bytes each sends;
#   * disk used by the fixture sessions: events.ndjson + objects.
#
#   bench/history_bench.sh [--bin PATH] [--mb N] [--seconds S]
# Needs curl and wrk; loopback only; everything lives in a temp dir.
set -u
BIN=${top_builddir:-.}/agent-traced
SRC=${top_srcdir:-.}
MB=100
SECS=5
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--mb N] [--seconds S]" >&2; exit 2 ;;
    esac
done
command -v wrk > /dev/null || { echo "history_bench: wrk is needed (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() { # start STORAGE
    "$BIN" serve --port 0 --storage "$1" --threads 8 2> "$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q '^listening on' "$work/log" 2>/dev/null && break; sleep 0.05; done
    port=$(head -1 "$work/log" | sed 's/.*://')
    url=http://127.0.0.1:$port
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

echo "cores: $(nproc), storage on $(df -T "$work" | awk 'NR==2 {print $2}')"

# ---- appends ---------------------------------------------------------------
cat > "$work/append.lua" <<'LUA'
-- one event a request; each wrk thread (one connection) on its own session,
-- or all on one when ONE is set
local counter = 0
function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
end
function init(args)
    n = 0
    sid = os.getenv("ONE") and "bench-one" or ("bench-" .. tid)
end
function request()
    n = n + 1
    local body = string.format('{"event_type":"decision","session_id":"%s","event_id":"e%d-%d","data":{"n":%d}}', sid, tid, n, n)
    return wrk.format("POST", "/events", {["Content-Type"] = "application/x-ndjson"}, body)
end
LUA
start "$work/appends"
echo
echo "== appends (POST /events, one event each, every 2xx fsynced)"
for mode in "1 1 own" "16 16 own" "16 16 one"; do
    set -- $mode
    if [ "$3" = one ]; then export ONE=1; else unset ONE; fi
    rate=$(wrk -t"$1" -c"$2" -d"${SECS}s" -s "$work/append.lua" "$url" 2>&1 | awk '/Requests\/sec/ {print $2}')
    echo "  $2 clients ($3 session$([ "$3" = own ] && echo s)): $rate appends/s"
done
unset ONE
n=$(curl -s "$url/sessions/bench-0/versions" | grep -o '"version": ' | wc -l)
curl -s "$url/sessions/bench-0/verify" | grep -q '"ok": true' && echo "  bench-0: $n versions, chain ok"
echo "  objects: $(find "$work/appends/objects" -type f | wc -l) files, $(du -sh "$work/appends/objects" | cut -f1)"
stop

# ---- one new turn of a large transcript --------------------------------------
# One session's transcript grown to ~$MB MB (its lines repeated), then one turn.
fix="$SRC/tests/fixtures/claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl"
big=$work/big.jsonl
unit=$(stat -c %s "$fix")
reps=$(( MB * 1024 * 1024 / unit + 1 ))
for _ in $(seq "$reps"); do cat "$fix"; done > "$big"
size=$(stat -c %s "$big")
sid=258c7280-ae70-4798-800f-63464d01a85d
# a new turn: a prompt and an answer, later than anything before
cat > "$work/turn" <<TURN
{"type":"user","sessionId":"$sid","uuid":"bench-turn-0001","timestamp":"2030-01-01T00:00:00Z","message":{"role":"user","content":"one more question"}}
{"type":"assistant","sessionId":"$sid","uuid":"bench-turn-0002","timestamp":"2030-01-01T00:00:05Z","message":{"model":"claude-opus-4-6","content":[{"type":"text","text":"one more answer"}],"usage":{"input_tokens":10,"output_tokens":20}}}
TURN
start "$work/turn-store"
echo
echo "== one new turn of a $((size / 1048576)) MB transcript"
t0=$(now)
curl -sS -o /dev/null -w '' -T "$big" "$url/import?source=big.jsonl"
t1=$(now)
echo "  first upload, whole file: $(elapsed "$t0" "$t1") s"
cat "$work/turn" >> "$big"
cp "$big" "$work/big2.jsonl"
turn=$(stat -c %s "$work/turn")
t0=$(now)
out=$(tail -c "$turn" "$big" | curl -sS -X POST --data-binary @- "$url/import?session=$sid&offset=$size")
t1=$(now)
echo "  incremental upload of the turn ($turn bytes): $(elapsed "$t0" "$t1") s -> $(echo "$out" | grep -o '"result": "[a-z]*", "version": [0-9]*')"
echo "    (server: $(grep 'POST /import' "$work/log" | tail -1 | awk '{print $5}'); the rest is curl and the shell)"
events_inc=$(sha256sum < "$work/turn-store/$sid/events.ndjson" | cut -c1-64)
du_inc=$(du -sb "$work/turn-store/objects" | cut -f1)
stop
start "$work/turn-store2"
head -c "$size" "$work/big2.jsonl" > "$work/big1.jsonl"
curl -sS -o /dev/null -T "$work/big1.jsonl" "$url/import?source=big.jsonl"
t0=$(now)
out=$(curl -sS -T "$work/big2.jsonl" "$url/import?source=big.jsonl")
t1=$(now)
echo "  the whole file again instead ($(stat -c %s "$work/big2.jsonl") bytes): $(elapsed "$t0" "$t1") s -> $(echo "$out" | grep -o '"result": "[a-z]*", "version": [0-9]*')"
events_full=$(sha256sum < "$work/turn-store2/$sid/events.ndjson" | cut -c1-64)
[ "$events_inc" = "$events_full" ] && echo "  both give the same events.ndjson ($events_inc)"
echo "  objects after the turn: $du_inc bytes (incremental)"
stop

# ---- disk --------------------------------------------------------------------
echo
echo "== disk used by the fixture sessions (redaction on)"
for f in $(find "$SRC/tests/fixtures/claude" -name '*.jsonl' | sort); do
    "$BIN" import --storage "$work/disk" --source "$(basename "$f")" "$f" > /dev/null 2>&1
done
ev=$(cat "$work"/disk/*/events.ndjson | wc -c)
obj=$(find "$work/disk/objects" -type f -exec cat {} + | wc -c)
hist=$(du -sb "$work/disk/.agent-traced/history" | cut -f1)
echo "  events.ndjson files: $ev bytes; objects: $obj bytes; histories: $hist bytes"
awk -v e="$ev" -v o="$obj" 'BEGIN { printf "  before (events.ndjson hard-linked to its object): %d bytes; now: %d bytes (%.2fx)\n", e, e + o, (e + o) / e }'
