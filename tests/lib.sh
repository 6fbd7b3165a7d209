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
finish() {
    echo "$1: $t_pass passed, $t_fail failed"
    [ "$t_fail" -eq 0 ]
}
