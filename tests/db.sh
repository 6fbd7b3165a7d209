#!/bin/bash
# db.sh - `agent-traced db` against a private PostgreSQL cluster
# (tests/pg/cluster.sh): migrations (idempotent, three at once), import of
# a storage directory with workspaces and history (again: nothing added;
# after a transcript grew: only the new version), objects in chunks,
# export byte for byte, and the failures: tampered objects and diverging
# histories refused with nothing partial left, bad URLs, a database that
# is down, passwords never shown.
#
# Needs PostgreSQL's server (Debian postgresql, which .ci/setup installs):
# without it the test fails; AT_SKIP_PG=1 makes it skip (77) instead.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
work=$(mktemp -d) || exit 99
pgdir=$(mktemp -d -u "${TMPDIR:-/tmp}/at-pg.XXXXXX")
cleanup() {
    bash "$top_srcdir/tests/pg/cluster.sh" stop "$pgdir" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT
unset AGENT_TRACED_DATABASE AGENT_STRACE_STORAGE

if ! env_out=$(bash "$top_srcdir/tests/pg/cluster.sh" start "$pgdir" 2> "$work/cluster.err"); then
    if [ "${AT_SKIP_PG:-}" = 1 ]; then
        echo "SKIP: no PostgreSQL cluster: $(cat "$work/cluster.err") (AT_SKIP_PG=1)"
        exit 77
    fi
    not_ok "a private PostgreSQL cluster starts: $(head -c 300 "$work/cluster.err") (run bash .ci/setup; AT_SKIP_PG=1 skips)"
    finish db
    exit 1
fi
eval "$env_out"
ok "a private PostgreSQL cluster on $PGURL"
psql_q() { psql -X -q -t -A -d "$PGURL" -c "$1" 2>&1; }
db() { "$BIN" db "$@" --database "$PGURL"; }

# ---- migrations ------------------------------------------------------------------
out=$(db status)
check "status before migrate: schema 0" grep -q '"schema": 0' <<< "$out"
out=$(db import --storage "$work" 2>&1)
rc=$?
check "import before migrate: exit 1, says to migrate first" \
    test "$rc" -eq 1 -a -n "$(grep 'db migrate first' <<< "$out")"
for i in 1 2 3; do db migrate > "$work/m$i.out" 2>&1 & done
wait
check "three migrations at once all succeed" test "$(cat "$work"/m?.out | grep -c '"to": 7')" -eq 3
check "exactly one of them applied the migrations" test "$(cat "$work"/m?.out | grep -c '"from": 0')" -eq 1
check "at_migrations holds one row per migration" test "$(psql_q "select string_agg(version::text, ',' order by version) from at_migrations")" = "1,2,3,4,5,6,7"
out=$(db migrate)
check "migrate again: from 7 to 7" test "$out" = '{"from": 7, "to": 7}'

# ---- a storage directory: fixtures, a workspace, a session with two versions ------
src=$work/src
"$BIN" import --storage "$src" "$FIX/claude/" > /dev/null &&
    "$BIN" import --storage "$src" --workspace team-x "$FIX/claude/short.jsonl" > /dev/null ||
    not_ok "building the source storage"
# a transcript of 3+ MB (several chunks), first its first half, then whole
python3 - "$work/big.jsonl" << 'EOF'
import json, sys
sid = "0d0d0d0d-1111-2222-3333-444444444444"
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        role = "user" if i % 2 == 0 else "assistant"
        msg = {"role": role, "content": "line %d " % i + "x" * 1000}
        if role == "assistant":
            msg = {"role": role, "model": "claude-sonnet-4-5", "id": "m%d" % i,
                   "content": [{"type": "text", "text": "y" * 1000}]}
        f.write(json.dumps({"type": role, "sessionId": sid, "uuid": "u%d" % i,
                            "timestamp": "2026-11-01T10:%02d:%02d.000Z" % (i // 60 % 60, i % 60),
                            "message": msg}) + "\n")
EOF
head -c 1500000 "$work/big.jsonl" | sed '$d' > "$work/big-half.jsonl"
"$BIN" import --storage "$src" --source big.jsonl "$work/big-half.jsonl" > /dev/null
out=$(db import --storage "$src")
check "import: 11 sessions created, 11 versions, no failure" \
    grep -q '"sessions": 11, "created": 11, "extended": 0, "unchanged": 0, "versions": 11, .*"failed": 0' <<< "$out"
check "the usage the imports recorded is imported" test \
    "$(psql_q "select count(*) from versions where usage is not null and workspace = 'default'")" -gt 0
nlinks=$(cat "$src"/.agent-traced/links/* 2>/dev/null | wc -l)
check "the subagent links are imported ($nlinks)" test "$nlinks" -gt 0 -a \
    "$(psql_q "select count(*) from links where workspace = 'default'")" = "$nlinks"
out=$(db import --storage "$src")
check "import again: everything unchanged, nothing sent" \
    grep -q '"created": 0, "extended": 0, "unchanged": 11, "versions": 0, "objects": 0, "bytes": 0' <<< "$out"
"$BIN" import --storage "$src" --source big.jsonl "$work/big.jsonl" | grep -q '"result": "extended"' ||
    not_ok "the big transcript extends its session"
out=$(db import --storage "$src")
check "after the transcript grew: one session extended by one version" \
    grep -q '"created": 0, "extended": 1, "unchanged": 10, "versions": 1, "objects": 1' <<< "$out"
check "the grown session has versions 1 and 2 in the database" test \
    "$(psql_q "select string_agg(version::text, ',' order by version) from versions where session = '0d0d0d0d-1111-2222-3333-444444444444'")" = "1,2"
big_size=$(stat -c %s "$src/0d0d0d0d-1111-2222-3333-444444444444/events.ndjson")
chunks=$(psql_q "select count(*) from blob_chunks c join objects o on o.blob = c.blob join sessions s on s.head is not null and s.id = '0d0d0d0d-1111-2222-3333-444444444444' join versions v on v.workspace = s.workspace and v.session = s.id and v.version = s.current_version and v.events_sha256 = o.sha256")
check "its current object ($big_size bytes) is stored in $(((big_size + 1048575) / 1048576)) chunks of 1 MiB" \
    test "$chunks" -eq $(((big_size + 1048575) / 1048576))
check "the workspace team-x is in the database" \
    test "$(psql_q "select count(*) from sessions where workspace = 'team-x'")" = 1
check "every version row matches its object's size" \
    test "$(psql_q 'select count(*) from versions v join objects o using (workspace) where o.sha256 = v.events_sha256 and o.size <> v.size')" = 0

# ---- export ----------------------------------------------------------------------
out=$(db export --storage "$work/out")
check "export: 2 workspaces, 11 sessions" grep -q '"workspaces": 2, "sessions": 11' <<< "$out"
same=0
differ=""
while IFS= read -r f; do
    if cmp -s "$src/$f" "$work/out/$f"; then same=$((same + 1)); else differ="$differ $f"; fi
done < <(cd "$src" && find . -path ./.agent-traced -prune -o \( -name meta.json -o -name events.ndjson \) -print |
    grep -v '/\.agent-traced/')
check "every meta.json and events.ndjson of every workspace exported byte for byte ($same files)" \
    test -z "$differ" -a "$same" -ge 22
mapfile -t exported < <(find "$work/out" -name events.ndjson -not -path '*/.agent-traced/*')
out=$("$BIN" verify "${exported[@]}" 2>&1)
check "the exported sessions verify (${#exported[@]} files)" test $? -eq 0 -a "${#exported[@]}" -ge 11
out=$("$BIN" verify --versions --storage "$work/out" 2>&1)
check "the exported directory opens as a store (verify --versions)" test $? -eq 0
out=$(db export --storage "$work/out" 2>&1)
rc=$?
check "export into a non-empty directory: exit 1 naming it" test "$rc" -eq 1 -a -n "$(grep 'not empty' <<< "$out")"

# ---- refusals leave nothing partial ----------------------------------------------
psql_q "create database second" > /dev/null
url2=${PGURL%/postgres}/second
"$BIN" db migrate --database "$url2" > /dev/null
bad=$work/bad
cp -a "$src" "$bad"
obj=$(ls "$bad"/objects/sha256/*/* | head -n 1)
chmod u+w "$obj" && printf 'X' | dd of="$obj" bs=1 seek=10 conv=notrunc 2> /dev/null
out=$("$BIN" db import --storage "$bad" --database "$url2" 2>&1)
rc=$?
check "a tampered object: exit 1, the session named, 'do not match'" \
    test "$rc" -eq 1 -a -n "$(grep 'session .*do not match' <<< "$out")"
# "workspace W, session S: ...": the same session id can be in both workspaces
bad_ws=$(grep -o 'workspace [^,]*, session' <<< "$out" | head -n 1 | cut -d' ' -f2 | tr -d ,)
bad_sid=$(grep -o 'session [^:]*' <<< "$out" | head -n 1 | cut -d' ' -f2)
check "nothing of that session is in the database" test \
    "$(psql -X -q -t -A -d "$url2" -c "select count(*) from sessions where workspace = '$bad_ws' and id = '$bad_sid'")" = 0
check "no version of it either" test \
    "$(psql -X -q -t -A -d "$url2" -c "select count(*) from versions where workspace = '$bad_ws' and session = '$bad_sid'")" = 0
check "the other sessions are" test \
    "$(psql -X -q -t -A -d "$url2" -c "select count(*) from sessions")" -ge 10
# a directory whose history of a session differs from the database's
other=$work/other
"$BIN" import --storage "$other" --source big.jsonl "$work/big.jsonl" > /dev/null
out=$(db import --storage "$other" 2>&1)
rc=$?
check "a diverging history: exit 1, 'differs'" test "$rc" -eq 1 -a -n "$(grep 'differs' <<< "$out")"
check "the database's session kept its two versions" test \
    "$(psql_q "select current_version from sessions where id = '0d0d0d0d-1111-2222-3333-444444444444'")" = 2

# ---- usage and connection errors -------------------------------------------------
out=$("$BIN" db migrate 2>&1)
check "no --database and no AGENT_TRACED_DATABASE: exit 2" test $? -eq 2 -a -n "$(grep AGENT_TRACED_DATABASE <<< "$out")"
out=$(AGENT_TRACED_DATABASE=$PGURL "$BIN" db status 2>&1)
check "AGENT_TRACED_DATABASE is the default" grep -q '"schema": 7' <<< "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$("$BIN" db status --database "postgres://u:hunter2@127.0.0.1:$port/x" 2>&1)
rc=$?
check "a database that is down: exit 1 naming it" test "$rc" -eq 1 -a -n "$(grep "database postgres://u:\*\*\*@127.0.0.1:$port/x" <<< "$out")"
check "and never its password" test -z "$(grep hunter2 <<< "$out")"
out=$("$BIN" db frobnicate --database "$PGURL" 2>&1)
check "an unknown subcommand: exit 2" test $? -eq 2
out=$("$BIN" db import --database "$PGURL" 2>&1)
check "import without --storage: exit 2" test $? -eq 2 -a -n "$(grep -- '--storage' <<< "$out")"
out=$("$BIN" db --help)
check "db --help names every subcommand" test -n "$(grep migrate <<< "$out" | head -1)" -a -n "$(grep export <<< "$out" | head -1)"

finish db
