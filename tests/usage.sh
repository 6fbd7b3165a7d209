#!/bin/bash
# usage.sh - token usage (GET /sessions/{id}/usage, `agent-traced usage`)
# against ccusage, through the real server (tests/usage.py).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
exec python3 "$top_srcdir/tests/usage.py" "$top_builddir/agent-traced" "$top_srcdir"
