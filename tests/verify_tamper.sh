#!/bin/bash
# verify_tamper.sh - `agent-traced verify` on the reference sessions (all
# intact, strict and --legacy) and on tampered copies of them: a changed
# byte, a deleted line, two swapped lines, a removed prev_hash, a line that is
# no JSON, CRLF line ends. Each case checks the exit status and the exact JSON
# line printed. Unreadable paths exit 2; usage errors exit 2.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
work=$(mktemp -d) || exit 99
trap 'rm -rf "$work"' EXIT

# expect DESCRIPTION WANT_STATUS WANT_STDOUT ARGS... : runs `verify ARGS`.
expect() {
    local what=$1 want_rc=$2 want_out=$3 rc out
    shift 3
    out=$("$BIN" verify "$@" 2> "$work/stderr")
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want_out" ]; then
        ok "$what"
    else
        not_ok "$what"
        echo "#   status $rc, want $want_rc"
        echo "#   got:  $out"
        echo "#   want: $want_out"
        sed 's/^/#   stderr: /' "$work/stderr"
    fi
}

# verdict PATH OK TOTAL BROKEN_AT BROKEN_ID : the line verify prints
# (BROKEN_AT / BROKEN_ID "null" for none; PATH must need no JSON escaping).
verdict() {
    local id=null
    [ "$5" != null ] && id="\"$5\""
    printf '{"path": "%s", "ok": %s, "total_events": %s, "broken_at": %s, "broken_event_id": %s}' \
        "$1" "$2" "$3" "$4" "$id"
}

# event_id of 0-based line K of FILE (the first event_id: the top-level one).
event_id() {
    sed -n "$(($2 + 1))p" "$1" | grep -o '"event_id":"[^"]*"' | head -n 1 | cut -d'"' -f4
}

# ---- every reference session is intact, in both modes ---------------------
all_paths=()
all_want=""
for d in "$FIX"/expected*/*/; do
    d=${d%/}
    [ -f "$d/events.ndjson" ] || continue
    n=$(wc -l < "$d/events.ndjson")
    name=${d#"$FIX"/}
    expect "intact: $name" 0 "$(verdict "$d" true "$n" null null)" "$d"
    expect "intact (--legacy): $name" 0 "$(verdict "$d" true "$n" null null)" --legacy "$d"
    expect "intact, file path: $name" 0 "$(verdict "$d/events.ndjson" true "$n" null null)" "$d/events.ndjson"
    all_paths+=("$d")
    all_want="$all_want${all_want:+
}$(verdict "$d" true "$n" null null)"
done
check "found the reference sessions" test "${#all_paths[@]}" -ge 17
expect "all sessions in one call" 0 "$all_want" "${all_paths[@]}"
expect "a trailing slash is kept in the path" 0 \
    "$(verdict "${all_paths[0]}/" true "$(wc -l < "${all_paths[0]}/events.ndjson")" null null)" "${all_paths[0]}/"

# ---- tampered copies ------------------------------------------------------
# tamper NAME < input > output is done with sed/awk on copies; each case gets
# its own session directory under $work.
for src in "$FIX/expected/55604662-cf2a-4331-851a-ec234028f8ca" \
           "$FIX/expected-edge/0e0e0e0e-0000-4000-8000-000000000002"; do
    orig="$src/events.ndjson"
    n=$(wc -l < "$orig")
    last=$((n - 1))
    base=$(basename "$src")
    for k in 0 1 3 $((last - 1)) $last; do
        line=$((k + 1)) # sed's 1-based line number
        idk=$(event_id "$orig" "$k")
        idn=$(event_id "$orig" $((k + 1)))

        # A changed byte (the first digit of the timestamp) keeps line k valid
        # JSON, so line k+1's prev_hash no longer matches; the last line has
        # no successor and the chain cannot see the change.
        t="$work/$base-byte-$k"
        mkdir -p "$t"
        sed "${line}s/\"timestamp\":1/\"timestamp\":2/" "$orig" > "$t/events.ndjson"
        check "$base: byte of line $k changed" test "$(cmp -l "$orig" "$t/events.ndjson" | wc -l)" -eq 1
        if [ "$k" -eq "$last" ]; then
            want=$(verdict "$t" true "$n" null null); rc=0
        else
            want=$(verdict "$t" false "$n" $((k + 1)) "$idn"); rc=1
        fi
        expect "$base: byte of line $k changed (strict)" $rc "$want" "$t"
        expect "$base: byte of line $k changed (legacy)" $rc "$want" --legacy "$t"

        # Line k made invalid JSON: broken at k itself, no event_id.
        t="$work/$base-json-$k"
        mkdir -p "$t"
        sed "${line}s/^{/X/" "$orig" > "$t/events.ndjson"
        want=$(verdict "$t" false "$n" "$k" null)
        expect "$base: line $k not JSON (strict)" 1 "$want" "$t"
        expect "$base: line $k not JSON (legacy)" 1 "$want" --legacy "$t"

        # Line k deleted: the next line (now at k) was chained to it; with
        # line 0 gone the new first line has a prev_hash; dropping the last
        # line (truncation) leaves a valid, shorter chain.
        t="$work/$base-del-$k"
        mkdir -p "$t"
        sed "${line}d" "$orig" > "$t/events.ndjson"
        if [ "$k" -eq "$last" ]; then
            want=$(verdict "$t" true $((n - 1)) null null); rc=0
        else
            want=$(verdict "$t" false $((n - 1)) "$k" "$idn"); rc=1
        fi
        expect "$base: line $k deleted (strict)" $rc "$want" "$t"
        expect "$base: line $k deleted (legacy)" $rc "$want" --legacy "$t"

        # Lines k and k+1 swapped: old k+1, now at k, points at old k.
        if [ "$k" -lt "$last" ]; then
            t="$work/$base-swap-$k"
            mkdir -p "$t"
            awk -v a="$line" 'NR == a { held = $0; next } { print } NR == a + 1 { print held }' \
                "$orig" > "$t/events.ndjson"
            want=$(verdict "$t" false "$n" "$k" "$idn")
            expect "$base: lines $k and $((k + 1)) swapped (strict)" 1 "$want" "$t"
            expect "$base: lines $k and $((k + 1)) swapped (legacy)" 1 "$want" --legacy "$t"
        fi

        # prev_hash removed from line k > 0: strict breaks at k; legacy takes
        # k as a pre-chain event, then line k+1 does not match its new bytes.
        if [ "$k" -gt 0 ]; then
            t="$work/$base-noprev-$k"
            mkdir -p "$t"
            sed "${line}s/,\"prev_hash\":\"[0-9a-f]*\"//" "$orig" > "$t/events.ndjson"
            check "$base: prev_hash of line $k removed" \
                test "$(grep -c '"prev_hash"' "$t/events.ndjson")" -eq $((n - 2))
            expect "$base: prev_hash removed from line $k (strict)" 1 \
                "$(verdict "$t" false "$n" "$k" "$idk")" "$t"
            if [ "$k" -eq "$last" ]; then
                want=$(verdict "$t" true "$n" null null); rc=0
            else
                want=$(verdict "$t" false "$n" $((k + 1)) "$idn"); rc=1
            fi
            expect "$base: prev_hash removed from line $k (legacy)" $rc "$want" --legacy "$t"
        fi
    done

    id1=$(event_id "$orig" 1)
    # CRLF line ends: the "\r" is part of each line's hashed bytes.
    t="$work/$base-crlf"
    mkdir -p "$t"
    sed 's/$/\r/' "$orig" > "$t/events.ndjson"
    expect "$base: CRLF (strict)" 1 "$(verdict "$t" false "$n" 1 "$id1")" "$t"
    expect "$base: CRLF (legacy)" 1 "$(verdict "$t" false "$n" 1 "$id1")" --legacy "$t"

    # Blank lines are not events and do not move the chain.
    t="$work/$base-blank"
    mkdir -p "$t"
    awk 'NR == 2 { print ""; print "   " } { print } END { print "" }' "$orig" > "$t/events.ndjson"
    expect "$base: blank lines" 0 "$(verdict "$t" true "$n" null null)" "$t"

    # No final newline: the last line still counts.
    t="$work/$base-nonl"
    mkdir -p "$t"
    head -c -1 "$orig" > "$t/events.ndjson"
    expect "$base: no final newline" 0 "$(verdict "$t" true "$n" null null)" "$t"

    # A session written before hash chains (no prev_hash anywhere).
    t="$work/$base-prechain"
    mkdir -p "$t"
    sed 's/,"prev_hash":"[0-9a-f]*"//' "$orig" > "$t/events.ndjson"
    expect "$base: no prev_hash at all (strict)" 1 "$(verdict "$t" false "$n" 1 "$id1")" "$t"
    expect "$base: no prev_hash at all (legacy)" 0 "$(verdict "$t" true "$n" null null)" --legacy "$t"
done

# An empty file is an intact chain of no events.
mkdir -p "$work/empty"
: > "$work/empty/events.ndjson"
expect "empty events.ndjson" 0 "$(verdict "$work/empty" true 0 null null)" "$work/empty"

# The path is written as json.dumps writes it (ensure_ascii).
odd="$work/q\"b\\$(printf '\303\251')"
mkdir -p "$odd"
cp "$FIX/expected/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson" "$odd/"
expect "path escaped as JSON" 0 \
    "{\"path\": \"$work/q\\\"b\\\\\\u00e9\", \"ok\": true, \"total_events\": 9, \"broken_at\": null, \"broken_event_id\": null}" \
    "$odd"

# ---- exit statuses ----------------------------------------------------------
good=${all_paths[0]}
good_line=$(verdict "$good" true "$(wc -l < "$good/events.ndjson")" null null)
bad="$work/55604662-cf2a-4331-851a-ec234028f8ca-del-3"
bad_line=$(verdict "$bad" false 8 3 "$(event_id "$FIX/expected/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson" 4)")
expect "intact + broken: exit 1" 1 "$good_line
$bad_line" "$good" "$bad"
expect "missing path: exit 2, nothing on stdout" 2 "" "$work/does-not-exist"
check "missing path: stderr names it" grep -q "does-not-exist" "$work/stderr"
mkdir -p "$work/no-events"
expect "directory without events.ndjson: exit 2" 2 "" "$work/no-events"
expect "unreadable wins over broken: exit 2" 2 "$good_line
$bad_line" "$good" "$work/does-not-exist" "$bad"
expect "no PATH: usage error" 2 ""
check "no PATH: usage on stderr" grep -q "usage: agent-traced verify" "$work/stderr"
expect "unknown option: usage error" 2 "" --frobnicate "$good"
check "unknown option: named on stderr" grep -q "frobnicate" "$work/stderr"
out=$("$BIN" verify --help)
check "--help: exit 0" test $? -eq 0
check "--help: usage on stdout" grep -q "usage: agent-traced verify" <<< "$out"
"$BIN" verify -h > /dev/null
check "-h: exit 0" test $? -eq 0

finish verify_tamper
