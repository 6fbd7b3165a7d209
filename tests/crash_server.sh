#!/bin/bash
# crash_server.sh - the real server SIGKILLed at random moments during
# uploads, appends and gc, restarted on the same storage: every acknowledged
# write present and verifying, the log consistent, nothing half-written or
# left over visible; then a full disk (tests/crash_server.py).
# make check: 24 kills; CRASH_FULL=1 (or --kills N as an argument): 200.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
export top_srcdir
exec python3 "$top_srcdir/tests/crash_server.py" "$top_builddir/agent-traced" "$@"
