#!/bin/bash
# log_go.sh - the transparency log checked by code we did not write: Go's
# golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, through
# tests/gotlog (see its README.md). A server on loopback gets fixture uploads,
# collector appends (odd session ids included) and delta versions; checkpoint
# A is saved; more writes, a SIGTERM restart, a SIGKILL in the middle of writes
# and a restart; checkpoint B is saved. Then Go checks both checkpoints'
# signatures, the inclusion proof of every version of every session (the
# entry rebuilt from the version's events), every entry and tile of B, and
# that B is consistent with A (and with the checkpoint seen just before the
# kill). Tampered events, proofs, checkpoints, keys and copies of the tiles
# must fail in Go.
#
# The verifier: $GOTLOG, else tests/gotlog/gotlog when it is newer than its
# sources, else built into a temporary directory (tests/gotlog/run.sh). Exit
# 77 when Go or Debian's golang.org/x/mod are missing.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
t_start=$SECONDS
work=$(mktemp -d) || exit 99
srv_pid=""
cleanup() {
    if [ -n "$srv_pid" ]; then
        kill -KILL "$srv_pid" 2> /dev/null
        wait "$srv_pid" 2> /dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the verifier -------------------------------------------------------------
gosrc="$top_srcdir/tests/gotlog"
G=${GOTLOG:-}
if [ -z "$G" ] && [ -x "$top_builddir/tests/gotlog/gotlog" ] &&
    [ "$top_builddir/tests/gotlog/gotlog" -nt "$gosrc/main.go" ] &&
    [ "$top_builddir/tests/gotlog/gotlog" -nt "$gosrc/go.mod" ]; then
    G=$top_builddir/tests/gotlog/gotlog
fi
if [ -z "$G" ]; then
    sh "$gosrc/run.sh" "$work/gotlog"
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "SKIP: no Go or golang.org/x/mod (apt-get install golang-go golang-golang-x-mod-dev)"
        exit 77
    fi
    [ $rc -eq 0 ] || { echo "Bail out! cannot build $gosrc"; exit 99; }
    G=$work/gotlog
fi
[ -x "$G" ] || { echo "Bail out! GOTLOG=$G is not an executable"; exit 99; }

# ---- the server ---------------------------------------------------------------
store=$work/storage
origin=test.example/agent-traced
starts=0
URL=""
C() { curl -sS --noproxy '*' --max-time 20 "$@"; }

# start_server: a server on a free loopback port; sets srv_pid, URL, vkey.
start_server() {
    starts=$((starts + 1))
    local err="$work/serve.$starts.err" i port
    serve_backend "$store" "$work" || exit 99
    TMPDIR=$serve_tmp "$BIN" serve --host 127.0.0.1 --port 0 "${backend[@]}" --log-origin "$origin" 2> "$err" &
    srv_pid=$!
    for i in $(seq 200); do # at most ~10 s
        grep -q 'verifier key ' "$err" && break
        sleep 0.05
    done
    port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$err")
    vkey=$(sed -n "s/^agent-traced serve: log \\(.*\\), verifier key \\(.*\\)\$/\\2/p" "$err" | head -n 1)
    if [ -z "$port" ] || [ -z "$vkey" ]; then
        echo "Bail out! server start $starts failed:"
        sed 's/^/#   /' "$err"
        exit 99
    fi
    URL=http://127.0.0.1:$port
}

stop_server() { # stop_server SIGNAL: the server's exit status in $srv_rc
    kill "-$1" "$srv_pid"
    wait "$srv_pid" 2> /dev/null # no "Killed" notice from bash
    srv_rc=$?
    srv_pid=""
}

ups=0
# upload FILE SOURCE: PUT /import; keeps "<session id> <version> <log_index>".
upload() {
    ups=$((ups + 1))
    local out="$work/up.$ups"
    code=$(C -o "$out" -w '%{http_code}' -T "$1" "$URL/import?source=$2")
    local sid v idx
    sid=$(sed -n 's/^{"session_id": "\([^"\\]*\)".*/\1/p' "$out")
    v=$(grep -o '"version": [0-9]*' "$out" | cut -d' ' -f2)
    idx=$(grep -o '"log_index": [0-9]*' "$out" | cut -d' ' -f2)
    if [ "$code" = 200 ] || [ "$code" = 201 ]; then
        if [ -n "$sid" ] && [ -n "$v" ] && [ -n "$idx" ]; then
            ok "upload $2: version $v, log_index $idx"
            echo "$sid $v $idx" >> "$work/indexes"
        else
            not_ok "upload $2: no session_id/version/log_index in the answer: $(head -c 300 "$out")"
        fi
    else
        not_ok "upload $2: HTTP $code: $(head -c 300 "$out")"
    fi
}

# post LINES...: POST /events with one event per line.
post() {
    printf '%s\n' "$@" > "$work/post.$BASHPID"
    C -o "$work/post.out" --data-binary @"$work/post.$BASHPID" "$URL/events"
}
# bulk N PREFIX: one POST /events batch, one event for each of N sessions
# PREFIX-0 ... (a log of several tiles: full, partial and level-1 ones).
bulk() {
    local i
    for ((i = 0; i < $1; i++)); do
        ev "$2-$i"
        echo
    done > "$work/bulk"
    C -o "$work/post.out" --data-binary @"$work/bulk" "$URL/events"
    check "POST /events: a batch of $1 new sessions accepted" grep -q "\"accepted\": $1, \"errors\": 0" "$work/post.out"
}
ev() { # ev SESSION_ID_JSON_TEXT
    printf '{"event_type":"decision","session_id":"%s","data":{"n":%d}}' "$1" "$RANDOM"
}

# versions: how many versions all sessions have (gotlog list into $work/list).
versions() {
    "$G" list "$URL" > "$work/list" 2> "$work/list.err" || {
        sed 's/^/#   /' "$work/list.err" >&2
        echo 0
        return
    }
    wc -l < "$work/list"
}

# wait_checkpoint N OUT: polls GET /log/checkpoint (at most ~5 s) until its
# size is N; saves it to OUT.
wait_checkpoint() {
    local i
    for i in $(seq 50); do
        if C -o "$2" "$URL/log/checkpoint" 2> /dev/null && [ "$(sed -n 2p "$2")" = "$1" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "#   waited 5 s for a checkpoint of size $1; the last one: $(head -n 3 "$2" | tr '\n' ' ')"
    return 1
}

# covered DESCRIPTION OUT: a checkpoint whose size is the number of versions
# (sets n) is published within ~5 s; saved to OUT. Should the listing change
# meanwhile (nothing here writes), it is counted again once.
covered() {
    n=$(versions)
    local t0 ms
    t0=$(date +%s%N)
    if wait_checkpoint "$n" "$2"; then
        ms=$((($(date +%s%N) - t0) / 1000000))
        ok "$1: size $n = the number of versions (counted, then waited $ms ms)"
        return
    fi
    local n0=$n
    n=$(versions)
    if [ "$n" != "$n0" ] && wait_checkpoint "$n" "$2"; then
        ok "$1: size $n = the number of versions (counted twice: $n0, then $n)"
    else
        not_ok "$1: GET /log/checkpoint: want size $n (the number of versions), got $(sed -n 2p "$2")"
    fi
}

# expect_ok DESCRIPTION COMMAND... / expect_fail: COMMAND must exit 0 / 1
# (Go's reason is shown either way for a failure).
expect_ok() {
    local what=$1
    shift
    if "$@" > "$work/out" 2> "$work/err"; then
        ok "$what"
    else
        not_ok "$what"
        sed 's/^/#   /' "$work/err"
    fi
}
expect_fail() {
    local what=$1 rc
    shift
    "$@" > "$work/out" 2> "$work/err"
    rc=$?
    if [ $rc -eq 1 ]; then
        ok "$what ($(head -c 160 "$work/err" | head -n 1))"
    else
        not_ok "$what: exit $rc, want 1"
        sed 's/^/#   /' "$work/out" "$work/err"
    fi
}

# flip IN OUT OFFSET: OUT is IN with bit 0 of byte OFFSET flipped.
flip() {
    local b
    b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
    {
        head -c "$3" "$1"
        # shellcheck disable=SC2059 # the octal escape of the new byte
        printf "\\$(printf %03o $((b ^ 1)))"
        tail -c +$(($3 + 2)) "$1"
    } > "$2"
}

# ---- checkpoint A ------------------------------------------------------------------
FC=$FIX/claude
FE=$FIX/claude-edge
S_SHORT=55604662-cf2a-4331-851a-ec234028f8ca
S_TOOL=d6e0bada-1959-4eec-a9d2-0bfade768d8f
# Session ids that need JSON escaping, as JSON text (what is POSTed) and as
# the percent-escaped bytes gotlog list prints; Python's json.dumps must write
# what the server logged.
# (Control characters and lone surrogates are no session id: refused.)
ODD1='odd-\"<&> \u00e9\u2028\u00a0\ud83d\ude00'
ODD2='astral-\ud83d\ude00\ud800\udc00x'
ODD3='nonascii-\u00fc\u4e2d\ufeff'

start_server
vkey0=$vkey
check "GET /log/key is the vkey the server logged" test "$(C "$URL/log/key")" = "$vkey"
head -n 20 "$FC/tool_heavy.jsonl" > "$work/tool_heavy.jsonl" # grown later: a delta version
upload "$FC/short.jsonl" short.jsonl
upload "$FE/unicode.jsonl" unicode.jsonl
upload "$FC/subagent.jsonl" subagent.jsonl
upload "$FE/no-session-id.jsonl" no-session-id.jsonl
upload "$work/tool_heavy.jsonl" tool_heavy.jsonl
post "$(ev "$ODD1")" "$(ev "$ODD2")" "$(ev "$ODD3")"
check "POST /events: three odd session ids accepted" grep -q '"accepted": 3, "errors": 0' "$work/post.out"
post "$(ev batch-a)" "$(ev batch-b)" "$(ev batch-a)" "$(ev batch-a)"
check "POST /events: an interleaved batch accepted" grep -q '"accepted": 4, "errors": 0' "$work/post.out"
bulk 150 bulk-a
covered "checkpoint A, published within ~5 s" "$work/A"
nA=$n
# README/openapi: every POST /events batch is one version of each session it
# changed (issue 9: "an append batch adds one entry per session it changed").
check "the interleaved batch (a, b, a, a) made one version of batch-a (got $(grep -c '^batch-a ' "$work/list"))" \
    test "$(grep -c '^batch-a ' "$work/list")" -eq 1

# ---- between A and B: more writes, restarts, a kill ---------------------------------
upload "$FC/tool_heavy.jsonl" tool_heavy.jsonl # extends the 20-line upload: version 2
upload "$FC/4d5611e5-241a-462a-8d15-5122611a9569.jsonl" 4d5611e5-241a-462a-8d15-5122611a9569.jsonl
for f in "$FC"/4d5611e5-241a-462a-8d15-5122611a9569/subagents/*.jsonl; do
    upload "$f" "$(basename "$f")"
done
post "$(ev $S_SHORT)" "$(ev $S_SHORT)"
check "POST /events: two appends to an imported session" grep -q '"accepted": 2, "errors": 0' "$work/post.out"
covered "before SIGTERM: checkpoint T1" "$work/T1"

stop_server TERM
check "SIGTERM: the server exits with status 0 (got $srv_rc)" test "$srv_rc" -eq 0
start_server
check "restart: the same verifier key" test "$vkey" = "$vkey0"
C -o "$work/T2" "$URL/log/checkpoint"
check "restart: the same tree is published (size and root)" \
    test "$(head -n 3 "$work/T1")" = "$(head -n 3 "$work/T2")"
bulk 150 bulk-b

upload "$FC/258c7280-ae70-4798-800f-63464d01a85d.jsonl" 258c7280-ae70-4798-800f-63464d01a85d.jsonl
for f in "$FC"/258c7280-ae70-4798-800f-63464d01a85d/subagents/*.jsonl; do
    upload "$f" "$(basename "$f")"
done
head -n 8 "$FE/structure.jsonl" > "$work/structure.jsonl"
upload "$work/structure.jsonl" structure.jsonl
upload "$FE/structure.jsonl" structure.jsonl # grown: a delta version
upload "$FE/tools.jsonl" tools.jsonl
code=$(C -o "$work/empty.out" -w '%{http_code}' -T "$FE/empty.jsonl" "$URL/import?source=empty.jsonl")
check "upload of an empty file is refused (HTTP $code), no version" test "${code:0:1}" = 4
post "$(ev "$ODD1")" # a second version of an odd id
covered "before SIGKILL: checkpoint K" "$work/K"

# SIGKILL while writes are in flight; whatever was committed must be logged
# once the server is back.
for f in late-session secrets numbers; do
    C -o /dev/null -T "$FE/$f.jsonl" "$URL/import?source=$f.jsonl" 2> /dev/null &
done
for i in 1 2 3; do
    (post "$(ev kill-$i)" "$(ev kill-$i)" "$(ev $S_TOOL)" > /dev/null 2>&1) &
done
sleep 0.05
stop_server KILL
wait # the curls
check "SIGKILL: the server died by the signal (status $srv_rc)" test "$srv_rc" -eq 137
start_server
check "restart after SIGKILL: the same verifier key" test "$vkey" = "$vkey0"
upload "$FE/secrets.jsonl" secrets.jsonl # again: made now if the kill lost it
post "$(ev "$ODD2")" "$(ev kill-1)"
check "POST /events after the kill accepted" grep -q '"accepted": 2, "errors": 0' "$work/post.out"
covered "after the restart: checkpoint B" "$work/B"
nB=$n
check "checkpoint B is larger than A ($nA)" test "$nB" -gt "$nA"

# ---- Go checks the checkpoints --------------------------------------------------
echo "$vkey" > "$work/vkey"
expect_ok "Go: note.Open checkpoint A (vkey $vkey)" "$G" checkpoint "$vkey" "$work/A"
expect_ok "Go: note.Open checkpoint B" "$G" checkpoint "$vkey" "$work/B"
check "Go: checkpoint B is $origin, size $nB" test "$(cut -d' ' -f1,2 "$work/out")" = "$origin $nB"
expect_ok "Go: note.Open checkpoint B, the vkey from a file" "$G" checkpoint "$work/vkey" "$work/B"

# ---- Go checks every version's proof ------------------------------------------------
# gotlog list: "<percent-escaped id> <version> <events> <events_sha256> <head>"
declare -A upload_index # "<id> <version>" -> the log_index its upload answered
while read -r u_sid u_v u_idx; do
    upload_index["$u_sid $u_v"]=$u_idx
done < "$work/indexes"
nproof=0
nodd=0
# Every version's proof and events in one curl run (one connection), then all
# checked by one gotlog process (gotlog proofs: the checks of gotlog proof).
: > "$work/curl.cfg"
: > "$work/batch"
while read -r esc v _; do
    printf 'url = "%s"\noutput = "%s"\nurl = "%s"\noutput = "%s"\n' \
        "$URL/sessions/$esc/proof?version=$v" "$work/proof.$nproof" \
        "$URL/sessions/$esc/events?version=$v" "$work/events.$nproof" >> "$work/curl.cfg"
    printf '%s\t%s\t%s\t%s\n' "$work/proof.$nproof" "$work/events.$nproof" "$esc" "$v" >> "$work/batch"
    nproof=$((nproof + 1))
done < "$work/list"
C -K "$work/curl.cfg" || echo "#   curl: some proofs or events could not be fetched"
"$G" proofs "$vkey" "$work/batch" > "$work/proofs.out" 2> "$work/proofs.err"
sed 's/^/#   /' "$work/proofs.err"
exec 3< "$work/proofs.out"
i=0
while read -r esc v nev sha head; do
    IFS= read -r res <&3 || res="fail: gotlog proofs printed no line for it"
    case $esc in *%*) nodd=$((nodd + 1)) ;; esac
    if [ "${res%% *}" = ok ]; then
        read -r _ _ idx _ size _ gev _ ghead _ gobj <<< "$res"
        if [ "$gev $gobj $ghead" != "$nev $sha $head" ]; then
            not_ok "Go: proof of $esc v$v verifies, but the versions listing says events $nev, sha256 $sha, head $head; the events have $gev, $gobj, $ghead"
        else
            ok "Go: proof of $esc v$v (index $idx of $size, $nev events)"
        fi
        want=${upload_index["$esc $v"]:-}
        [ -z "$want" ] || check "upload's log_index of $esc v$v is the proof's index ($want)" test "$want" = "$idx"
    else
        not_ok "Go: proof of $esc v$v"
        echo "#   $res"
        echo "#   proof: GET $URL/sessions/$esc/proof?version=$v"
        sed 's/^/#     /' "$work/proof.$i"
    fi
    i=$((i + 1))
done < "$work/list"
exec 3<&-
check "Go: proofs checked for every version ($nproof = checkpoint B's size $nB)" test "$nproof" -eq "$nB"
check "odd session ids among them ($nodd)" test "$nodd" -ge 3

# The current version, without ?version=.
cur=$(grep "^$S_TOOL " "$work/list" | sort -k2,2n | tail -n 1 | cut -d' ' -f2)
C -o "$work/pcur" "$URL/sessions/$S_TOOL/proof"
C -o "$work/ecur" "$URL/sessions/$S_TOOL/events"
expect_ok "Go: /proof and /events without ?version= are the current version ($cur)" \
    "$G" proof "$vkey" "$work/pcur" "$work/ecur" "$S_TOOL" "$cur"

# Go's Python-style escaping against Python itself, when there is one.
if command -v python3 > /dev/null 2>&1; then
    for j in "$ODD1" "$ODD2" "$ODD3"; do
        want=$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])))' "\"$j\"")
        esc=$(python3 -c 'import json, sys, urllib.parse
s = json.loads(sys.argv[1]).encode("utf-8", "surrogatepass")
print(urllib.parse.quote(s, safe="-._~"))' "\"$j\"")
        printf -v sid '%b' "${esc//%/\\x}"
        check "pyjson($esc) is Python's json.dumps: $want" test "$("$G" pyjson "$sid")" = "$want"
        check "the server has a session $esc" grep -q "^$esc " "$work/list"
    done
fi

# ---- Go checks the tiles and the consistency A -> B --------------------------------
expect_ok "Go: tiles of B: every entry proved, B consistent with A" "$G" tiles "$URL" "$vkey" "$work/A" "$work/B"
echo "#   $(cat "$work/out")"
expect_ok "Go: B consistent with the checkpoint seen before SIGKILL" "$G" tiles "$URL" "$vkey" "$work/K" "$work/B"
expect_ok "Go: B consistent with the checkpoint seen before SIGTERM" "$G" tiles "$URL" "$vkey" "$work/T1" "$work/B"
expect_ok "Go: B consistent with itself" "$G" tiles "$URL" "$vkey" "$work/B" "$work/B"
# Go writes tile indexes of 1000 and more in x-prefixed groups: such a path
# beyond the tree is a 404 (a tile we do not have), not a malformed path.
code=$(C -o /dev/null -w '%{http_code}' "$URL/log/tile/0/x001/000")
check "GET /log/tile/0/x001/000 (beyond the tree of $nB): 404 (got $code)" test "$code" = 404

# A copy of B's tiles and bundles in a directory (gotlog reads DIR/log/tile/...
# as it reads the server): Go must notice a changed hash or entry, whichever
# tile it is in.
tpath() { # tpath N: the tile index in 3-digit groups, x-prefixed
    local n=$1 p
    p=$(printf %03d $((n % 1000)))
    while [ "$n" -ge 1000 ]; do
        n=$((n / 1000))
        p=x$(printf %03d $((n % 1000)))/$p
    done
    echo "$p"
}
mirror() { # mirror DIR N: every tile and bundle of the tree of size N
    local l=0 c i f
    for ((c = $2; c > 0; l++, c /= 256)); do
        for ((i = 0; i <= c / 256; i++)); do
            [ $i -lt $((c / 256)) ] && f=$(tpath $i) || f=$(tpath $i).p/$((c % 256))
            [ $i -lt $((c / 256)) ] || [ $((c % 256)) -gt 0 ] || continue
            mkdir -p "$(dirname "$1/log/tile/$l/$f")"
            C -f -o "$1/log/tile/$l/$f" "$URL/log/tile/$l/$f" || return 1
            if [ $l -eq 0 ]; then
                mkdir -p "$(dirname "$1/log/tile/entries/$f")"
                C -f -o "$1/log/tile/entries/$f" "$URL/log/tile/entries/$f" || return 1
            fi
        done
    done
}
tamper_tile() { # tamper_tile DESCRIPTION FILE OFFSET: a copy with one byte of FILE flipped
    rm -rf "$work/bad"
    cp -r "$work/mirror" "$work/bad"
    flip "$work/mirror/log/tile/$2" "$work/bad/log/tile/$2" "$3"
    expect_fail "Go refuses: tiles A -> B from a copy with $1" "$G" tiles "$work/bad" "$vkey" "$work/A" "$work/B"
}
check "every tile and bundle of B copied ($nB entries)" mirror "$work/mirror" "$nB"
expect_ok "Go: tiles A -> B from the copy" "$G" tiles "$work/mirror" "$vkey" "$work/A" "$work/B"
tamper_tile "a hash changed in the full level-0 tile 000" 0/000 $((32 * 100 + 7))
last0=$(cd "$work/mirror/log/tile" && find 0 -type f | sort | tail -n 1)
tamper_tile "a hash changed in the last level-0 tile $last0" "$last0" 5
last1=$(cd "$work/mirror/log/tile" && find 1 -type f 2> /dev/null | sort | tail -n 1)
if [ -n "$last1" ]; then
    tamper_tile "a hash changed in the level-1 tile $last1" "$last1" 5
fi
tamper_tile "a byte changed in an entry of bundle 000" entries/000 300

# ---- what must fail in Go -------------------------------------------------------------
p1=$work/n.proof
e1=$work/n.events
C -o "$p1" "$URL/sessions/$S_SHORT/proof?version=1"
C -o "$e1" "$URL/sessions/$S_SHORT/events?version=1"
expect_ok "Go: proof of $S_SHORT v1 (the untampered base of the cases below)" "$G" proof "$vkey" "$p1" "$e1" $S_SHORT 1
head -n -1 "$e1" > "$work/t.cut"
expect_fail "Go refuses: events with the last line cut" "$G" proof "$vkey" "$p1" "$work/t.cut" $S_SHORT 1
{ cat "$e1"; tail -n 1 "$e1"; } > "$work/t.app"
expect_fail "Go refuses: events with a line appended" "$G" proof "$vkey" "$p1" "$work/t.app" $S_SHORT 1
flip "$e1" "$work/t.byte" $(($(wc -c < "$e1") / 2))
expect_fail "Go refuses: events with one byte changed" "$G" proof "$vkey" "$p1" "$work/t.byte" $S_SHORT 1
head -c -1 "$e1" > "$work/t.nl"
expect_fail "Go refuses: events without their final newline" "$G" proof "$vkey" "$p1" "$work/t.nl" $S_SHORT 1
expect_fail "Go refuses: the right events under another version number" "$G" proof "$vkey" "$p1" "$e1" $S_SHORT 2
expect_fail "Go refuses: the right events under another session id" "$G" proof "$vkey" "$p1" "$e1" no-session-id 1
C -o "$work/t.v2" "$URL/sessions/$S_TOOL/events?version=2"
C -o "$work/p.v1" "$URL/sessions/$S_TOOL/proof?version=1"
expect_fail "Go refuses: version 2's events with version 1's proof" "$G" proof "$vkey" "$work/p.v1" "$work/t.v2" $S_TOOL 1
awk '/^index / { print; getline; print "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; next } { print }' "$p1" > "$work/t.hash"
expect_fail "Go refuses: a proof with one hash replaced" "$G" proof "$vkey" "$work/t.hash" "$e1" $S_SHORT 1
awk '/^index / { print "index " ($2 + 1); next } { print }' "$p1" > "$work/t.index"
expect_fail "Go refuses: a proof with another index" "$G" proof "$vkey" "$work/t.index" "$e1" $S_SHORT 1
awk 'skip { skip = 0; next } /^index / { skip = 1 } { print }' "$p1" > "$work/t.short"
expect_fail "Go refuses: a proof with a hash left out" "$G" proof "$vkey" "$work/t.short" "$e1" $S_SHORT 1
flip "$p1" "$work/t.psig" $(($(wc -c < "$p1") - 10))
expect_fail "Go refuses: a proof whose checkpoint signature has a flipped bit" "$G" proof "$vkey" "$work/t.psig" "$e1" $S_SHORT 1

# Checkpoints: one flipped byte (the size, the root, the signature).
l1=$(head -n 1 "$work/B" | wc -c)
l2=$(sed -n 2p "$work/B" | wc -c)
flip "$work/B" "$work/t.size" "$l1"
expect_fail "Go refuses: checkpoint B with a flipped byte in its size" "$G" checkpoint "$vkey" "$work/t.size"
flip "$work/B" "$work/t.root" $((l1 + l2 + 5))
expect_fail "Go refuses: checkpoint B with a flipped byte in its root" "$G" checkpoint "$vkey" "$work/t.root"
flip "$work/B" "$work/t.sig" $(($(wc -c < "$work/B") - 10))
expect_fail "Go refuses: checkpoint B with a flipped byte in its signature" "$G" checkpoint "$vkey" "$work/t.sig"
expect_fail "Go refuses: tiles A -> B with B's root flipped" "$G" tiles "$URL" "$vkey" "$work/A" "$work/t.root"

# Wrong keys: another key of the same name, a key of another name.
other=$("$BIN" log keygen --origin "$origin" --out "$work/other.key" 2> /dev/null | tail -n 1)
check "agent-traced log keygen made another key ($other)" test -n "$other" -a "$other" != "$vkey"
expect_fail "Go refuses: checkpoint B under another key of the same name" "$G" checkpoint "$other" "$work/B"
expect_fail "Go refuses: a proof under another key of the same name" "$G" proof "$other" "$p1" "$e1" $S_SHORT 1
other2=$("$BIN" log keygen --origin other.example/log --out "$work/other2.key" 2> /dev/null | tail -n 1)
expect_fail "Go refuses: checkpoint B under a key named other.example/log" "$G" checkpoint "$other2" "$work/B"

# Consistency the wrong way round: B as the old checkpoint, A as the new.
expect_fail "Go refuses: consistency with A and B swapped" "$G" tiles "$URL" "$vkey" "$work/B" "$work/A"

echo "# $((SECONDS - t_start)) s, $nproof proofs, log of $nB entries, $starts server starts"
finish "log_go${AT_TEST_PGURL:+_db}.sh"
