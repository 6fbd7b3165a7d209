#!/bin/bash
# parity.sh - `agent-traced import` reproduces the reference storage byte for
# byte: every fixture imported (with --source <basename>, TZ=UTC) into one
# storage gives meta.json and events.ndjson identical to tests/fixtures/expected*
# (redaction on by default: *-redacted; --no-redact: the others), in file
# order and in reverse order (children before parents), and a second import
# of the same files changes nothing.
. "${top_srcdir:-.}/tests/lib.sh"
export TZ=UTC
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

compare() { # compare EXPECTED_DIR STORAGE LABEL
    for d in "$1"/*/; do
        sid=$(basename "$d")
        check "$3: $sid events.ndjson" cmp -s "$d/events.ndjson" "$2/$sid/events.ndjson"
        check "$3: $sid meta.json" cmp -s "$d/meta.json" "$2/$sid/meta.json"
        check "$3: $sid events.ndjson is a file of its own" test "$(stat -c %h "$2/$sid/events.ndjson" 2>/dev/null)" -eq 1
        h=$(sha256sum < "$2/$sid/events.ndjson" | cut -c1-64)
        check "$3: $sid its object exists" test -f "$2/objects/sha256/${h:0:2}/$h.ndjson"
    done
}

for set in claude:expected-redacted: claude-edge:expected-edge-redacted: \
    claude:expected:--no-redact claude-edge:expected-edge:--no-redact; do
    src=${set%%:*}
    rest=${set#*:}
    exp=${rest%%:*}
    flag=${rest#*:}
    for order in forward reverse; do
        store="$work/$exp-$order"
        if [ $order = forward ]; then sort_opt=""; else sort_opt="-r"; fi
        find "$FIX/$src" -name '*.jsonl' | sort $sort_opt > "$work/list"
        while read -r f; do
            # shellcheck disable=SC2086
            "$BIN" import --storage "$store" --source "$(basename "$f")" $flag "$f" > "$work/out" 2> "$work/err" ||
                not_ok "import $f: $(cat "$work/err")"
        done < "$work/list"
        compare "$FIX/$exp" "$store" "$src ($order)"
        nsessions=$(find "$store" -mindepth 2 -maxdepth 2 -name meta.json | wc -l)
        check "$src ($order): no extra sessions" test "$nsessions" -eq "$(ls "$FIX/$exp" | wc -l)"
    done
    # Re-importing identical bytes is a no-op.
    store="$work/$exp-forward"
    before=$(cd "$store" && find . -type f -not -path './.agent-traced/*' | sort | xargs sha256sum)
    find "$FIX/$src" -name '*.jsonl' | sort | while read -r f; do
        # shellcheck disable=SC2086
        "$BIN" import --storage "$store" --source "$(basename "$f")" $flag "$f" > /dev/null 2>&1
    done
    after=$(cd "$store" && find . -type f -not -path './.agent-traced/*' | sort | xargs sha256sum)
    check "$src: re-import changes nothing" test "$before" = "$after"
    check "$src: no staging files left" test -z "$(ls -A "$store/.agent-traced/tmp")"
done

# The switches: the environment variables turn redaction off with 1, true or
# yes in any case, and leave it on otherwise.
sec="$FIX/claude-edge/secrets.jsonl"
sid6=0e0e0e0e-0000-4000-8000-000000000006
for v in 1 true TRUE Yes; do
    for var in AGENT_TRACE_NO_REDACT AGENT_STRACE_NO_REDACT; do
        env "$var=$v" "$BIN" import --storage "$work/env-$var-$v" --source secrets.jsonl "$sec" > /dev/null 2>&1
        check "$var=$v: redaction off" cmp -s "$FIX/expected-edge/$sid6/events.ndjson" "$work/env-$var-$v/$sid6/events.ndjson"
    done
done
for v in 0 no false "" " 1"; do
    AGENT_STRACE_NO_REDACT="$v" "$BIN" import --storage "$work/env-on" --source secrets.jsonl "$sec" > /dev/null 2>&1
    check "AGENT_STRACE_NO_REDACT='$v': redaction on" cmp -s "$FIX/expected-edge-redacted/$sid6/events.ndjson" "$work/env-on/$sid6/events.ndjson"
    rm -rf "$work/env-on"
done

# One line on standard error names the file and how many events were
# redacted, never a secret.
"$BIN" import --storage "$work/log" --source secrets.jsonl "$sec" > /dev/null 2> "$work/err"
check "redaction: one stderr line" test "$(wc -l < "$work/err")" -eq 1
check "redaction: names the file and the count" grep -q "secrets.jsonl: redacted 5 events and the session metadata" "$work/err"
check "redaction: no secret in the log" test -z "$(grep -E 'sk-ant|ghp_|hunter2|AKIA' "$work/err")"
"$BIN" import --storage "$work/log" --source tools.jsonl "$FIX/claude-edge/unicode.jsonl" > /dev/null 2> "$work/err"
check "no redaction: nothing on stderr" test ! -s "$work/err"

# claude-import.md §2: while the session id is unknown every entry sets the
# branch and version (missing: empty); with no id at all the last entry's stay.
printf '%s\n' '{"type":"user","gitBranch":"a","version":"1","message":{"content":"x"}}' \
    '{"type":"user","gitBranch":"b","message":{"content":"y"}}' 'not json' '[1]' \
    '{"type":"queue-operation","gitBranch":"q","version":"9"}' > "$work/nosid.jsonl"
"$BIN" import --storage "$work/s2" "$work/nosid.jsonl" > /dev/null 2>&1
check "no session id: branch and version of the last entry" grep -q '"command": "imported from nosid.jsonl (branch: b, v)"' "$work/s2/nosid/meta.json"
printf '%s\n' '{"type":"user","gitBranch":"a","version":"1","message":{"content":"x"}}' \
    '{"type":"user","version":"2","sessionId":"s2-late","message":{"content":"y"}}' \
    '{"type":"user","gitBranch":"c","version":"3","sessionId":"s2-late","message":{"content":"z"}}' > "$work/late.jsonl"
"$BIN" import --storage "$work/s2" "$work/late.jsonl" > /dev/null 2>&1
check "late session id: the entry that gives it decides" grep -q '"command": "imported from late.jsonl (branch: , v2)"' "$work/s2/s2-late/meta.json"

# The summary line of one import.
line=$("$BIN" import --storage "$work/one" --source tools.jsonl --no-redact "$FIX/claude-edge/tools.jsonl")
want='{"session_id": "0e0e0e0e-0000-4000-8000-000000000002", "events": 15, "tool_calls": 4, "llm_requests": 2, "total_tokens": 102, "events_sha256": "'$(sha256sum < "$FIX/expected-edge/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson" | cut -c1-64)'", "head": "'$(tail -n1 "$FIX/expected-edge/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson" | tr -d '\n' | sha256sum | cut -c1-64)'", "skipped_lines": 0, "result": "created", "version": 1, "previous_head": null}'
check "summary line" test "$line" = "$want"
[ "$line" = "$want" ] || { echo "got:  $line"; echo "want: $want"; }

# Standard input, the default source (absolute path) and AGENT_STRACE_STORAGE.
"$BIN" import --storage "$work/stdin" - < "$FIX/claude-edge/tools.jsonl" > /dev/null
check "stdin: source is 'stdin'" grep -q '"source":"stdin"' "$work/stdin/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson"
AGENT_STRACE_STORAGE="$work/env" "$BIN" import "$FIX/claude-edge/tools.jsonl" > /dev/null
abs=$(cd "$FIX/claude-edge" && pwd)/tools.jsonl
check "default source is the absolute path" grep -q "\"source\":\"$abs\"" "$work/env/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson"

# Bad input: a clear error, a non-zero exit, nothing left behind.
printf '{"type":"user","sessionId":"bad-utf8","message":{"content":"x\xff"}}\n' > "$work/bad.jsonl"
"$BIN" import --storage "$work/bad" "$work/bad.jsonl" > "$work/out" 2> "$work/err"
check "invalid UTF-8: exit 1" test $? -eq 1
check "invalid UTF-8: message names the offset" grep -q "byte offset 61" "$work/err"
check "invalid UTF-8: no session" test ! -e "$work/bad/bad-utf8"
check "invalid UTF-8: no staging file" test -z "$(ls -A "$work/bad/.agent-traced/tmp")"
check "invalid UTF-8: no object" test -z "$(find "$work/bad/objects" -type f)"
printf '{"type":"user","sessionId":"../escape","message":{"content":"x"}}\n' > "$work/esc.jsonl"
"$BIN" import --storage "$work/esc" "$work/esc.jsonl" > /dev/null 2> "$work/err"
check "unsafe session id: exit 1" test $? -eq 1
check "unsafe session id: nothing outside" test ! -e "$work/escape"
"$BIN" import --storage "$work/missing" "$work/does-not-exist.jsonl" > /dev/null 2>&1
check "missing file: exit 1" test $? -eq 1
"$BIN" import > /dev/null 2>&1
check "no file: usage error exit 2" test $? -eq 2
"$BIN" import --help | grep -q "usage: agent-traced import"
check "import --help" test $? -eq 0
"$BIN" --help | grep -q "import"
check "top-level --help" test $? -eq 0

# A grown transcript extends the session (its events equal a direct import);
# the old version's object stays.
head -n 5 "$FIX/claude-edge/tools.jsonl" > "$work/grow.jsonl"
"$BIN" import --storage "$work/grow" --source tools.jsonl "$work/grow.jsonl" > /dev/null
old=$(sha256sum < "$work/grow/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson" | cut -c1-64)
line=$("$BIN" import --storage "$work/grow" --source tools.jsonl "$FIX/claude-edge/tools.jsonl")
check "grown transcript: extended, version 2" test -n "$(echo "$line" | grep '"result": "extended", "version": 2')"
check "grown transcript: new events" cmp -s "$work/grow/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson" "$FIX/expected-edge-redacted/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson"
check "grown transcript: old object kept" test -f "$work/grow/objects/sha256/${old:0:2}/$old.ndjson"
# The older snapshot afterwards changes nothing.
line=$("$BIN" import --storage "$work/grow" --source tools.jsonl "$work/grow.jsonl")
check "older snapshot: unchanged and stale" test -n "$(echo "$line" | grep '"result": "unchanged", "version": 2' | grep '"stale": true')"
check "older snapshot: events kept" cmp -s "$work/grow/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson" "$FIX/expected-edge-redacted/0e0e0e0e-0000-4000-8000-000000000002/events.ndjson"

finish parity
