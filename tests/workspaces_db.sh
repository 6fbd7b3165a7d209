#!/bin/bash
# workspaces_db.sh - tests/workspaces.sh again with the server on
# `serve --database` (a private PostgreSQL cluster: tests/pg/run.sh); the
# layout is read from a db export; the command line's part (a directory's)
# is not run.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" workspaces_db sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/workspaces.sh"
