#!/bin/bash
# tree_bench.sh - GET /sessions/{id}/tree on one large session:
#   * the first request (the cost cache is empty: every event is read);
#   * wrk requests/s for repeated requests (the cache answers);
#   * a request after a line is appended to events.ndjson, as agent-strace
#     does (only the new bytes are read).
#
#   bench/tree_bench.sh [--bin PATH] [--mb N] [--input FILE] [--seconds S]
# --mb is the size of the transcript imported (the fixture transcripts
# repeated; events.ndjson comes out at about 1/7 of it), --input imports FILE
# instead. Needs curl and wrk. Everything lives in a temp dir.
set -u
BIN=${top_builddir:-.}/agent-traced
SRC=${top_srcdir:-.}
MB=2000
INPUT=""
SECS=5
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --input) INPUT=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--mb N] [--input FILE] [--seconds S]" >&2; exit 2 ;;
    esac
done
command -v wrk > /dev/null || { echo "wrk is needed" >&2; exit 77; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$INPUT" ]; then
    fix=$(ls "$SRC"/tests/fixtures/claude/*.jsonl)
    cat $fix > "$work/unit"
    unit=$(stat -c %s "$work/unit")
    reps=$(( MB * 1024 * 1024 / unit + 1 ))
    for _ in $(seq "$reps"); do cat "$work/unit"; done |
        "$BIN" import --storage "$work/store" --source big.jsonl - > "$work/import" || exit 1
    rm -f "$work/unit"
else
    "$BIN" import --storage "$work/store" --source big.jsonl "$INPUT" > "$work/import" || exit 1
fi
sid=$(sed 's/^{"session_id": "\([^"]*\)".*/\1/' "$work/import")
ev=$work/store/$sid/events.ndjson
# a private, writable copy (the import's file is a read-only link to an object)
cp "$ev" "$ev.tmp" && mv -f "$ev.tmp" "$ev" && chmod u+w "$ev"
echo "session $sid: events.ndjson $(( $(stat -c %s "$ev") / 1048576 )) MiB, $(wc -l < "$ev") lines"
sleep 1 # past the cache's racy window (tree_cost.c)

"$BIN" serve --port 0 --storage "$work/store" 2> "$work/log" &
pid=$!
for _ in $(seq 100); do grep -q ': started: ' "$work/log" 2>/dev/null && break; sleep 0.05; done
port=$(head -1 "$work/log" | sed 's/.*://')
url=http://127.0.0.1:$port/sessions/$sid/tree
echo "cores: $(nproc), server: $(grep -m1 ': started: ' "$work/log" | sed 's/.*started: //')"

get() { curl -s -o /dev/null -w '%{time_total}' "$url"; }
echo "first request:          $(get) s"
echo "second request:         $(get) s"
wrk -t2 -c32 -d"${SECS}s" "$url" | awk '/Requests\/sec/ { print "wrk -t2 -c32:           " $2 " req/s" }
    /Latency/ { print "  latency avg/stdev/max: " $2 " " $3 " " $4 }'
printf '{"event_type":"tool_call","data":{"tool_name":"Bash","arguments":{"command":"ls"}}}\n' >> "$ev"
echo "after an append:        $(get) s"
echo "then:                   $(get) s"
