#!/bin/bash
# push.sh - `agent-traced push`, `hook` and `import DIR` through the real
# server (tests/push.py).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
exec python3 "$top_srcdir/tests/push.py" "$top_builddir/agent-traced" "$top_srcdir/tests/fixtures/claude"
