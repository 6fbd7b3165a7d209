#!/bin/bash
# run.sh NAME COMMAND... - runs a test program against a private PostgreSQL
# cluster (cluster.sh), on a freshly migrated database, with its URL in
# PGURL (and the cluster's directory in PGDIR, for cluster.sh pause/resume);
# the program prints the summary line. Without PostgreSQL's server the test
# fails; AT_SKIP_PG=1 skips it (77).
. "${top_srcdir:-.}/tests/lib.sh"
name=$1
shift
pgdir=$(mktemp -d -u "${TMPDIR:-/tmp}/at-pg.XXXXXX")
err=$(mktemp) || exit 99
trap 'bash "$top_srcdir/tests/pg/cluster.sh" stop "$pgdir" 2> /dev/null; rm -f "$err"' EXIT
if ! env_out=$(bash "$top_srcdir/tests/pg/cluster.sh" start "$pgdir" 2> "$err"); then
    [ "${AT_SKIP_PG:-}" = 1 ] && { echo "SKIP: no PostgreSQL cluster (AT_SKIP_PG=1)"; exit 77; }
    not_ok "a private PostgreSQL cluster starts: $(head -c 300 "$err") (run bash .ci/setup; AT_SKIP_PG=1 skips)"
    finish "$name"
    exit 1
fi
eval "$env_out"
"$BIN" db migrate --database "$PGURL" > /dev/null || { not_ok "db migrate"; finish "$name"; exit 1; }
"$@"
