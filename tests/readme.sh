#!/bin/bash
# readme.sh - README.md's examples, run as written (tests/readme.py).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
exec python3 "$top_srcdir/tests/readme.py" "$top_builddir/agent-traced" "$top_srcdir"
