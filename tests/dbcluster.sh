#!/bin/bash
# dbcluster.sh - three `serve --database` replicas behind haproxy, one of
# them killed mid-upload, one started late (tests/dbcluster.py), on a
# private PostgreSQL cluster (tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
command -v haproxy > /dev/null || { echo "dbcluster: 0 passed, 1 failed (haproxy is not installed: bash .ci/setup)"; exit 1; }
exec bash "$top_srcdir/tests/pg/run.sh" dbcluster python3 "$top_srcdir/tests/dbcluster.py" "$top_builddir/agent-traced" "$top_srcdir"
