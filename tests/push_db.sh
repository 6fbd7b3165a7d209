#!/bin/bash
# push_db.sh - tests/push.sh again with every server on `serve --database`
# (a database each, on a private PostgreSQL cluster: tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" push_db sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/push.sh"
