#!/bin/bash
# db_bench.sh - what PostgreSQL costs, on a private cluster (tests/pg/cluster.sh):
#   * `db import` MB/s of a storage directory built from an N MB transcript
#     (a new database each round), against `agent-traced import` of the same
#     transcript into a directory (the baseline, same run);
#   * bytes in the database per byte of transcript and per byte of events
#     (pg_total_relation_size of every table after the import, VACUUMed);
#   * appends/s through the compare-and-swap (bench/bench_dbappend): one
#     writer, four on their own sessions, four on the same session.
#
#   bench/db_bench.sh [--mb N] [--seconds S]     (after `make bench`)
set -u
BIN=${top_builddir:-.}/agent-traced
SRC=${top_srcdir:-.}
MB=100
SECS=5
usage="usage: $0 [--mb N] [--seconds S]"
while [ $# -gt 0 ]; do
    case $1 in
    --mb) MB=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
done
[ -x bench/bench_dbappend ] || { echo "run make bench first" >&2; exit 2; }
work=$(mktemp -d)
pgdir=$(mktemp -d -u /tmp/at-pgbench.XXXXXX)
trap 'bash "$SRC/tests/pg/cluster.sh" stop "$pgdir"; rm -rf "$work"' EXIT
eval "$(bash "$SRC/tests/pg/cluster.sh" start "$pgdir")" || exit 1
q() { psql -X -q -t -A -d "$1" -c "$2"; }
now() { date +%s.%N; }

# a transcript of about MB megabytes: the fixture sessions' lines, repeated
# with fresh uuids so every line is an event
python3 - "$SRC/tests/fixtures/claude" "$work/t.jsonl" "$MB" << 'EOF'
import json, os, sys, uuid
src, out, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = []
for f in sorted(os.listdir(src)):
    if f.endswith(".jsonl"):
        lines += [json.loads(l) for l in open(os.path.join(src, f)) if l.strip()]
size, n = 0, 0
with open(out, "w") as o:
    while size < mb * 1000000:
        for e in lines:
            e = dict(e, sessionId="bench-session", uuid=str(uuid.uuid4()))
            s = json.dumps(e) + "\n"
            o.write(s)
            size += len(s)
            n += 1
EOF
tbytes=$(stat -c %s "$work/t.jsonl")
echo "transcript: $tbytes bytes"

t0=$(now)
"$BIN" import --storage "$work/dir" --no-redact "$work/t.jsonl" > /dev/null
t1=$(now)
ebytes=$(stat -c %s "$work/dir/bench-session/events.ndjson")
echo "import into a directory: $(python3 -c "print(f'{$tbytes / ($t1 - $t0) / 1e6:.0f}')") MB/s of transcript ($ebytes bytes of events)"

for round in 1 2; do
    q "$PGURL" "drop database if exists b$round" > /dev/null 2>&1
    q "$PGURL" "create database b$round" > /dev/null
    url=${PGURL%/postgres}/b$round
    "$BIN" db migrate --database "$url" > /dev/null
    t0=$(now)
    "$BIN" db import --storage "$work/dir" --database "$url" > /dev/null || exit 1
    t1=$(now)
    q "$url" "vacuum full" > /dev/null
    dbbytes=$(q "$url" "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'")
    echo "db import round $round: $(python3 -c "print(f'{$ebytes / ($t1 - $t0) / 1e6:.0f}')") MB/s of events;" \
        "$dbbytes bytes in the database: $(python3 -c "print(f'{$dbbytes / $tbytes:.3f}')") per transcript byte," \
        "$(python3 -c "print(f'{$dbbytes / $ebytes:.3f}')") per events byte"
done

url=${PGURL%/postgres}/b1
for spec in "1 own" "4 own" "4 same"; do
    set -- $spec
    PGURL=$url bench/bench_dbappend "$1" "$SECS" "$2"
done
