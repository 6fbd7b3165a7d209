#!/bin/bash
# reliability_table.sh - runs the crash test (full mode), the disk-full case
# and the soak, and rewrites their rows of docs/reliability.md from the
# "| ... |" lines they print (a row is replaced when its first cell starts
# like the new one's: "| crash test", "| disk full", "| soak").
#
#   bash bench/reliability_table.sh [--kills N] [--seconds S] [--only crash|soak] [--dry-run]
#
# Default: 200 kills, a 600 s soak (about 20 minutes in all). --dry-run
# prints the rows without touching the document. Exit 1 when a run failed
# (its row is written all the same: the table says FAILED).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
kills=200 seconds=600 only="" dry=0
while [ $# -gt 0 ]; do
    case $1 in
    --kills) kills=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --only) only=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "reliability_table: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -x ./agent-traced ] || { echo "reliability_table: build first (make)" >&2; exit 2; }
doc=docs/reliability.md
out=$(mktemp)
trap 'rm -f "$out" "$out.rows" "$out.doc"' EXIT
status=0
if [ -z "$only" ] || [ "$only" = crash ]; then
    top_srcdir=. python3 tests/crash_server.py ./agent-traced --kills "$kills" | tee -a "$out" || status=1
fi
if [ -z "$only" ] || [ "$only" = soak ]; then
    python3 bench/soak.py ./agent-traced --seconds "$seconds" | tee -a "$out" || status=1
fi
grep -E '^\| (crash test|disk full|soak) ' "$out" > "$out.rows"
if [ "$dry" = 1 ]; then
    cat "$out.rows"
    exit $status
fi
# replace each row whose first cell starts with the same words
python3 - "$doc" "$out.rows" <<'EOF'
import re, sys
doc, rows = sys.argv[1], [r.rstrip("\n") for r in open(sys.argv[2]) if r.strip()]
lines = open(doc).read().split("\n")
def key(row):
    return re.match(r"\| (crash test|disk full|soak) ", row).group(1)
for r in rows:
    k = key(r)
    hit = [i for i, l in enumerate(lines) if l.startswith("| " + k + " ")]
    if hit:
        lines[hit[0]] = r
    else:
        print("reliability_table: no row for %r in %s" % (k, doc), file=sys.stderr)
open(doc, "w").write("\n".join(lines))
EOF
echo "reliability_table: $(wc -l < "$out.rows") rows of $doc rewritten"
exit $status
