#!/bin/bash
# hostile_db.sh - tests/hostile.sh (hostile clients) again with every server
# on `serve --database` (a database each, on a private PostgreSQL cluster:
# tests/pg/run.sh); the storage directory's file modes are not checked there.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" hostile_db sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/hostile.sh"
