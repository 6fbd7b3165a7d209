#!/bin/bash
# ui.sh - the web UI in a browser: tests/ui/run.mjs (Playwright's
# playwright-core, pinned by tests/ui/package-lock.json) drives Debian's
# Chromium headless against three real servers: the fixtures (one session
# tampered after import), the same with --auth-key, and one session of
# ~250 MB of events made here (tests/ui/gen.mjs, imported by
# `agent-traced import`). Screenshots go to tests/ui-out/ (in the build
# tree); the first-paint timings are printed as "# timing:" lines.
#
# Needs node, `npm ci --prefix tests/ui` and /usr/bin/chromium (.ci/setup
# installs them). Without them the test fails; AT_SKIP_NODE=1 or
# AT_SKIP_UI=1 makes it skip (77) instead. UI_BIG_MB (default 250) sets
# the size of the big session's events.
#
# With AT_TEST_PGURL (tests/ui_db.sh) the three servers run on databases of
# that cluster instead, each loaded from its storage by `db import` (the
# tampered file comes in as the session's newest version, of cause
# external, as the directory's store records it); the big session is
# UI_BIG_MB (default 60) MB there.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
UI="$top_srcdir/tests/ui"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

missing() {
    if [ "${AT_SKIP_NODE:-}" = 1 ] || [ "${AT_SKIP_UI:-}" = 1 ]; then
        echo "SKIP: $1"
        exit 77
    fi
    not_ok "$1 (run: bash .ci/setup; AT_SKIP_UI=1 skips)"
    finish ui
    exit 1
}
command -v node > /dev/null || missing "node is not installed"
[ -d "$UI/node_modules/playwright-core" ] || missing "$UI/node_modules is missing (npm ci --prefix tests/ui)"
[ -x "$CHROMIUM" ] || missing "$CHROMIUM is missing (apt-get install chromium)"

work=$(mktemp -d) || exit 99
out="$top_builddir/tests/ui-out${AT_TEST_PGURL:+-db}"
rm -rf "$out"
mkdir -p "$out" || exit 99
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# ---- storage: the fixtures, one of them tampered with; the 250 MB session ----
"$BIN" import --storage "$work/main" "$FIX/claude" > "$work/import.out" 2>&1 || {
    not_ok "import of the fixtures"
    sed 's/^/#   /' "$work/import.out"
    finish ui
    exit 1
}
# a second workspace holding the root session and its subagents (the selector)
"$BIN" import --storage "$work/main" --workspace team-b "$FIX/claude/4d5611e5-241a-462a-8d15-5122611a9569.jsonl" \
    "$FIX/claude/4d5611e5-241a-462a-8d15-5122611a9569" > /dev/null 2>&1 || { not_ok "import into team-b"; finish ui; exit 1; }
ids=$(cd "$work/main" && for d in */; do [ -f "$d/meta.json" ] && printf '%s ' "${d%/}"; done)
tampered=55604662-cf2a-4331-851a-ec234028f8ca # short.jsonl
ev="$work/main/$tampered/events.ndjson"
[ -f "$ev" ] || { not_ok "no session $tampered to tamper with"; finish ui; exit 1; }
# one byte of the second line's text, after the import (an editor's change)
python3 - "$ev" << 'PY' || exit 99
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.index(b'\n') + 1
j = b.index(b'"timestamp":', i) + len('"timestamp":') + 3
b[j] = ord('7') if b[j] != ord('7') else ord('8')
open(p, 'wb').write(bytes(b))
PY
cp -a "$work/main" "$work/auth"

big_mb=${UI_BIG_MB:-250}
[ -n "${AT_TEST_PGURL:-}" ] && big_mb=${UI_BIG_MB:-60}
t0=$(date +%s%N)
# events are ~0.73 of the transcript's size
node "$UI/gen.mjs" "$work/big.jsonl" $((big_mb * 100 / 73)) > "$work/gen.out" || { not_ok "gen.mjs"; finish ui; exit 1; }
t1=$(date +%s%N)
"$BIN" import --storage "$work/big" "$work/big.jsonl" > "$work/big.out" 2>&1 || {
    not_ok "import of the big transcript"
    sed 's/^/#   /' "$work/big.out"
    finish ui
    exit 1
}
t2=$(date +%s%N)
rm -f "$work/big.jsonl"
big_id=$(sed -n 's/.*"session_id": *"\([^"]*\)".*/\1/p' "$work/gen.out")
big_bytes=$(wc -c < "$work/big/$big_id/events.ndjson")
echo "# timing: generated a $(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' "$work/gen.out") byte transcript in $(((t1 - t0) / 1000000)) ms, imported in $(((t2 - t1) / 1000000)) ms: $big_bytes bytes of events"

# ---- three servers ----------------------------------------------------------------
if [ -n "${AT_TEST_PGURL:-}" ]; then # each storage into a database of its own
    "$BIN" log keygen --origin ui.test/agent-traced --out "$work/log.key" > /dev/null || exit 99
    mkdir -p "$work/tmp"
    for s in main auth big; do
        t2=$(date +%s%N)
        url=$(pg_database "ui_$s") && "$BIN" db import --database "$url" --storage "$work/$s" > "$work/db.$s.out" 2>&1 || {
            not_ok "db import of $s"
            sed 's/^/#   /' "$work/db.$s.out"
            finish ui
            exit 1
        }
        echo "# timing: db import of $s in $((($(date +%s%N) - t2) / 1000000)) ms: $(cat "$work/db.$s.out")"
    done
fi
start() { # start NAME ARGS...: serves $work/NAME on a free port; sets URL
    local name=$1 where
    shift
    : > "$work/$name.log"
    where=(--storage "$work/$name")
    [ -n "${AT_TEST_PGURL:-}" ] && where=(--database "${AT_TEST_PGURL%/*}/ui_$name" --log-key "$work/log.key")
    TMPDIR=$work/tmp "$BIN" serve "${where[@]}" --port 0 --threads 4 "$@" 2> "$work/$name.log" &
    pids+=($!)
    URL=
    for _ in $(seq 200); do
        if grep -q '^listening on ' "$work/$name.log"; then
            URL="http://$(head -n 1 "$work/$name.log" | sed 's/^listening on //')"
            return 0
        fi
        sleep 0.05
    done
    not_ok "$name server did not start"
    sed 's/^/#   /' "$work/$name.log"
    return 1
}
key=ast_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
start main && main_url=$URL &&
    start auth --auth-key "$key" && auth_url=$URL &&
    start big && big_url=$URL || {
    finish ui
    exit 1
}

UI_URL=$main_url UI_AUTH_URL=$auth_url UI_BIG_URL=$big_url UI_KEY=$key UI_OUT="$out" \
    UI_TAMPERED=$tampered UI_BIG_ID=$big_id UI_IDS="$ids" UI_STORAGE="$work/main" \
    UI_EXTRA="$FIX/claude-edge/tools.jsonl" CHROMIUM="$CHROMIUM" \
    timeout 240 node "$UI/run.mjs" > "$work/run.out" 2>&1
rc=$?
grep -v '^#counts ' "$work/run.out"
read -r p f <<< "$(sed -n 's/^#counts //p' "$work/run.out")"
if [ -z "$p" ]; then
    not_ok "run.mjs ended without its counts (exit $rc)"
else
    t_pass=$((t_pass + p))
    t_fail=$((t_fail + f))
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || not_ok "run.mjs exited $rc"
fi
for s in main auth big; do
    if grep -qiE 'sanitizer|assertion|segmentation' "$work/$s.log"; then
        not_ok "$s server log shows a crash"
        sed 's/^/#   /' "$work/$s.log" | tail -n 20
    fi
done
echo "# screenshots: $(cd "$out" && ls *.png 2> /dev/null | tr '\n' ' ')in $out"
finish "ui${AT_TEST_PGURL:+_db}"
