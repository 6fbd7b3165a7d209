#!/bin/bash
# log_tamper.sh - the auditor's checks against the transparency log
# (`verify --log`, `verify --proof`, `--checkpoint`) on intact sessions and on
# copies edited so that their hash chain still verifies: the last line changed,
# cut or extended, a middle line changed with every later prev_hash
# recomputed, one session's file swapped for another's. Then the log itself:
# a storage rolled back to an older log, and a server killed with SIGKILL in
# the middle of uploads, whose log after restart must extend every checkpoint
# it signed before.
#
# With AT_TEST_PGURL (tests/log_tamper_db.sh) the server runs on the
# database, loaded from the storage by `db import`; the storage directory's
# own log (its files, their rollback) is not a database's and is skipped.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
command -v curl > /dev/null || { echo "SKIP: no curl"; exit 77; }
work=$(mktemp -d) || exit 99
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill -9 "$srv_pid" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

S="$work/storage"
# start_server: serve $S on a free port; sets srv_pid and URL.
start_server() {
    : > "$work/server.log"
    serve_backend "$S" "$work" || exit 99
    TMPDIR=$serve_tmp "$BIN" serve "${backend[@]}" --port 0 --threads 2 2> "$work/server.log" &
    srv_pid=$!
    local i
    for i in $(seq 100); do
        grep -q '^listening on ' "$work/server.log" && break
        sleep 0.05
    done
    URL="http://$(head -n 1 "$work/server.log" | sed 's/^listening on //')"
}
stop_server() { kill "$srv_pid"; wait "$srv_pid" 2> /dev/null; srv_pid=; }

# vlog WANT_RC DESCRIPTION ARGS... : `verify ARGS` exits WANT_RC; for WANT_RC
# 0 every line says "ok": true, otherwise some line says "ok": false.
vlog() {
    local want=$1 what=$2 rc
    shift 2
    "$BIN" verify "$@" > "$work/out" 2> "$work/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        not_ok "$what (status $rc, want $want)"
        sed 's/^/#   /' "$work/out" "$work/err"
        return
    fi
    if [ "$want" -eq 0 ]; then
        if [ -s "$work/out" ] && ! grep -qv '"ok": true' "$work/out"; then ok "$what"; else
            not_ok "$what: not every line ok"
            sed 's/^/#   /' "$work/out"
        fi
    elif [ "$want" -eq 1 ]; then
        if grep -q '"ok": false' "$work/out"; then ok "$what"; else
            not_ok "$what: no line says ok false"
            sed 's/^/#   /' "$work/out"
        fi
    else
        ok "$what"
    fi
}

# rechain FILE FROM : recompute prev_hash of every line after 0-based line
# FROM (the chain verifies again after an edit at line FROM).
rechain() {
    python3 - "$1" "$2" << 'EOF'
import hashlib, re, sys
path, start = sys.argv[1], int(sys.argv[2])
lines = open(path, 'rb').read().split(b'\n')[:-1]
for i in range(start + 1, len(lines)):
    h = hashlib.sha256(lines[i - 1]).hexdigest().encode()
    lines[i], n = re.subn(rb'"prev_hash": ?"[0-9a-f]{64}"',
                          lambda m: m.group(0)[:-65] + h + b'"', lines[i], count=1)
    assert n == 1, i
open(path, 'wb').write(b'\n'.join(lines) + b'\n')
EOF
}

# ---- a storage with a log ----------------------------------------------------
"$BIN" import --storage "$S" "$FIX"/claude/*.jsonl > /dev/null 2> "$work/err" || {
    not_ok "import the fixtures"
    cat "$work/err"
}
if [ -n "${AT_TEST_PGURL:-}" ]; then
    check "db import of the storage" "$BIN" db import --database "$AT_TEST_PGURL" --storage "$S"
fi
start_server
check "the server started" test -n "$URL"
VK=$(curl -sf "$URL/log/key")
check "GET /log/key gives a verifier key" grep -Eq '^[^+ ]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$' <<< "$VK"
echo "$VK" > "$work/vkey"
sessions=()
for d in "$S"/*/; do
    [ -f "$d/events.ndjson" ] && sessions+=("${d%/}")
done
check "five sessions stored" test "${#sessions[@]}" -eq 5
[ -n "${AT_TEST_PGURL:-}" ] || vlog 0 "every session is in the log (storage)" --log "$S" --vkey "$VK"
vlog 0 "every session is in the log (server)" --log "$URL" --vkey "$VK" "${sessions[@]}"
vlog 0 "the verifier key may be a file" --log "$URL" --vkey "$work/vkey" "${sessions[0]}"

# proofs for every session, kept for the offline checks
for d in "${sessions[@]}"; do
    id=${d##*/}
    curl -sf "$URL/sessions/$id/proof" > "$work/$id.proof" || not_ok "GET /sessions/$id/proof"
done
a=${sessions[0]}
b=${sessions[1]}
aid=${a##*/}
vlog 0 "offline proof" --proof "$work/$aid.proof" --vkey "$VK" "$a/events.ndjson"
curl -sf "$URL/log/checkpoint" > "$work/cp0"
check "GET /log/checkpoint is a signed note" grep -q '^— ' "$work/cp0"
vlog 0 "a checkpoint of the same log" --log "$URL" --vkey "$VK" --checkpoint "$work/cp0" "$a"

# ---- edited copies whose chain still verifies --------------------------------
# tamper NAME EDIT... : copy session A to $work/NAME, run EDIT on its
# events.ndjson, check that plain verify still passes and the log checks fail.
tamper() {
    local name=$1 dir="$work/$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$a/events.ndjson" "$a/meta.json" "$dir/"
    "$@" "$dir/events.ndjson"
    vlog 0 "$name: the hash chain alone still verifies" "$dir"
    vlog 1 "$name: the server's log rejects it" --log "$URL" --vkey "$VK" "$dir"
    vlog 1 "$name: the offline proof rejects it" --proof "$work/$aid.proof" --vkey "$VK" "$dir/events.ndjson"
}
edit_last() { sed -i '$ s/"timestamp":1/"timestamp":2/' "$1"; }
cut_last() { sed -i '$ d' "$1"; }
add_line() {
    python3 - "$1" << 'EOF'
import hashlib, sys
p = sys.argv[1]
data = open(p, 'rb').read()
last = data.rstrip(b'\n').rsplit(b'\n', 1)[-1]
h = hashlib.sha256(last).hexdigest()
line = ('{"event_type":"assistant_response","timestamp":1700000000.0,'
        '"event_id":"0123456789ab","session_id":"x","data":{"text":"added"},'
        '"prev_hash":"%s"}' % h).encode()
open(p, 'ab').write(line + b'\n')
EOF
}
edit_middle() {
    local n
    n=$(($(wc -l < "$1") / 2))
    sed -i "$((n + 1)) s/\"event_id\":\"\([0-9a-f]\)/\"event_id\":\"z/" "$1"
    cmp -s "$1" "$a/events.ndjson" && echo "# edit_middle changed nothing"
    rechain "$1" "$n"
}
swap_file() { cp "$b/events.ndjson" "$1"; }
tamper "last line changed" edit_last
tamper "last line cut" cut_last
tamper "line appended" add_line
tamper "middle line changed, chain recomputed" edit_middle
tamper "another session's events" swap_file
check "the edits changed the files" test "$(cat "$work"/*/events.ndjson | sha256sum)" != \
    "$(for i in 1 2 3 4 5; do cat "$a/events.ndjson"; done | sha256sum)"

# a proof file edited by hand
sed 's/^\(extra \).*/\1AAAA/' "$work/$aid.proof" > "$work/bad.proof"
vlog 1 "a proof whose logged entry was replaced" --proof "$work/bad.proof" --vkey "$VK" "$a/events.ndjson"
vlog 2 "a verifier key of another log" --proof "$work/$aid.proof" \
    --vkey "other/log+01234567+AVZVdSfGZBgJKoXvAdTkEUMLHHCaDpHl/tHmPgEd3PUY" "$a/events.ndjson"

# ---- the log grows; a rollback is caught by a saved checkpoint -------------
cp -a "$S/.agent-traced/log" "$work/log-before"
for f in "$FIX"/claude-edge/*.jsonl; do
    curl -sf -T "$f" "$URL/import?source=$(basename "$f")" > /dev/null || true
done
curl -sf "$URL/log/checkpoint" > "$work/cp1"
size0=$(sed -n 2p "$work/cp0")
size1=$(sed -n 2p "$work/cp1")
check "uploads grew the log ($size0 -> $size1)" test "$size1" -gt "$size0"
vlog 0 "the grown log extends the first checkpoint" --log "$URL" --vkey "$VK" --checkpoint "$work/cp0" "$a"
stop_server
if [ -z "${AT_TEST_PGURL:-}" ]; then
    vlog 0 "... and the storage's log too" --log "$S" --vkey "$VK" --checkpoint "$work/cp1"
    rm -rf "$S/.agent-traced/log"
    cp -a "$work/log-before" "$S/.agent-traced/log"
    vlog 1 "a rolled-back storage fails against the later checkpoint" \
        --log "$S" --vkey "$VK" --checkpoint "$work/cp1" "$a"
fi

# ---- SIGKILL in the middle of uploads ---------------------------------------
if [ -z "${AT_TEST_PGURL:-}" ]; then # the database keeps what it has
    rm -rf "$S"
    "$BIN" import --storage "$S" "$FIX"/claude/*.jsonl > /dev/null 2>&1
fi
start_server
VK=$(curl -sf "$URL/log/key")
curl -sf "$URL/log/checkpoint" > "$work/cpk0"
(
    i=0
    while :; do
        i=$((i + 1))
        for f in "$FIX"/claude-edge/*.jsonl; do
            # the same file under a new session each time: a new entry
            sed "s/\"sessionId\":\"/\"sessionId\":\"k$i-/g" "$f" |
                curl -s --data-binary @- "$URL/import?source=k.jsonl" > /dev/null
            curl -s "$URL/log/checkpoint" > "$work/cpk.tmp" && [ -s "$work/cpk.tmp" ] &&
                mv "$work/cpk.tmp" "$work/cpk1"
        done
    done
) &
loader=$!
sleep 3
kill -9 "$srv_pid"
wait "$srv_pid" 2> /dev/null
kill "$loader"
wait "$loader" 2> /dev/null
srv_pid=
check "checkpoints were signed during the uploads (size $(sed -n 2p "$work/cpk0") -> $(sed -n 2p "$work/cpk1" 2> /dev/null))" \
    test "$(sed -n 2p "$work/cpk1" 2> /dev/null || echo 0)" -gt "$(sed -n 2p "$work/cpk0")"
start_server
check "the server restarts after SIGKILL" curl -sf "$URL/health" -o /dev/null
vlog 0 "after restart, the log extends the checkpoint before the uploads" \
    --log "$URL" --vkey "$VK" --checkpoint "$work/cpk0" "${sessions[0]}"
vlog 0 "after restart, the log extends the last checkpoint signed before the kill" \
    --log "$URL" --vkey "$VK" --checkpoint "$work/cpk1" "${sessions[0]}"
if [ -n "${AT_TEST_PGURL:-}" ]; then
    ids=$(curl -sf "$URL/sessions?limit=1000" | grep -o '"session_id": "[^"]*"' | cut -d'"' -f4)
    rm -rf "$work/export"
    "$BIN" db export --database "$AT_TEST_PGURL" --storage "$work/export" > /dev/null
    dirs=()
    for id in $ids; do dirs+=("$work/export/$id"); done
    check "the uploads that answered are there ($(echo "$ids" | wc -w) sessions)" test "${#dirs[@]}" -gt 5
    vlog 0 "after restart, every session (the uploads that answered, and more) is in the log" \
        --log "$URL" --vkey "$VK" --checkpoint "$work/cpk1" "${dirs[@]}"
fi
stop_server
[ -n "${AT_TEST_PGURL:-}" ] ||
    vlog 0 "after restart, every session (the uploads that answered, and more) is in the log" \
        --log "$S" --vkey "$VK" --checkpoint "$work/cpk1"

finish "log_tamper${AT_TEST_PGURL:+_db}"
