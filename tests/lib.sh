# lib.sh - helpers for the shell test suites: one line per case, a summary
# line "NAME: N passed, M failed", exit 0 / 1 (77 when the binary is missing).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
BIN="$top_builddir/agent-traced"
FIX="$top_srcdir/tests/fixtures"
t_pass=0
t_fail=0
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }

ok() { t_pass=$((t_pass + 1)); echo "ok - $*"; }
not_ok() { t_fail=$((t_fail + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# serve_backend STORE DIR: sets the array `backend` to the serve options of
# the storage STORE: `--storage STORE`, or with AT_TEST_PGURL (a suite run
# again on PostgreSQL: tests/pg/run.sh) `--database AT_TEST_PGURL` (one
# database, whatever STORE: for suites of one storage) with a log key made in
# DIR for the log origin $origin (or test.example/agent-traced); uploads are
# staged in DIR/tmp then (export TMPDIR=... before serve: see serve_env).
serve_backend() {
    if [ -n "${AT_TEST_PGURL:-}" ]; then
        mkdir -p "$2/tmp"
        [ -f "$2/log.key" ] ||
            "$BIN" log keygen --origin "${origin:-test.example/agent-traced}" --out "$2/log.key" > /dev/null ||
            return 1
        backend=(--database "$AT_TEST_PGURL" --log-key "$2/log.key")
        serve_tmp=$2/tmp
    else
        backend=(--storage "$1")
        serve_tmp=${TMPDIR:-/tmp}
    fi
}
# pg_database NAME: prints the URL of database NAME on AT_TEST_PGURL's
# cluster, created and migrated the first time.
pg_database() {
    local url=${AT_TEST_PGURL%/*}/$1
    psql -X -q -d "$AT_TEST_PGURL" -c "CREATE DATABASE $1" > /dev/null 2>&1
    "$BIN" db migrate --database "$url" > /dev/null || return 1
    echo "$url"
}
finish() {
    echo "$1: $t_pass passed, $t_fail failed"
    [ "$t_fail" -eq 0 ]
}
