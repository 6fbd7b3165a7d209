#!/bin/bash
# hostile.sh - hostile clients against the real server (tests/hostile.py):
# gzip bombs, huge lines, deep nesting, idle and trickling connections,
# connection floods, smuggling-shaped headers, NULs, odd session ids,
# wrong keys at speed, a port in use, SIGTERM with a stuck upload.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
exec python3 "$top_srcdir/tests/hostile.py" "$top_builddir/agent-traced"
