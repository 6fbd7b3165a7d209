#!/bin/bash
# log_go_db.sh - tests/log_go.sh (the transparency log checked by Go's
# golang.org/x/mod) again with the server on `serve --database`, on a
# private PostgreSQL cluster (tests/pg/run.sh): the same uploads, appends,
# restarts and SIGKILL, the same proofs checked by Go.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" log_go_db.sh sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/log_go.sh"
