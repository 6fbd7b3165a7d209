#!/bin/bash
# dbserve.sh - `serve --database` answers as `serve --storage` does
# (tests/dbserve.py), on a private PostgreSQL cluster (tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
exec bash "$top_srcdir/tests/pg/run.sh" dbserve python3 "$top_srcdir/tests/dbserve.py" "$top_builddir/agent-traced" "$top_srcdir"
