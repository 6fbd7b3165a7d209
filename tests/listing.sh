#!/bin/bash
# listing.sh - GET /sessions paging and filters (tests/listing.py).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
[ -x "$top_builddir/agent-traced" ] || { echo "SKIP: agent-traced not built"; exit 77; }
exec python3 "$top_srcdir/tests/listing.py" "$top_builddir/agent-traced" "$top_srcdir"
