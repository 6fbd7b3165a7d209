#!/bin/bash
# workspaces.sh - workspaces and named keys through the real server (tests/workspaces.py).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
exec python3 "$top_srcdir/tests/workspaces.py" "$top_builddir/agent-traced" "$top_srcdir"
