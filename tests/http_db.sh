#!/bin/bash
# http_db.sh - the HTTP suite (tests/test_http) again, every server on
# `serve --database` (a database each, on a private PostgreSQL cluster:
# tests/pg/run.sh), its stored bytes read back through `db export`.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" test_http_db sh -c 'AT_TEST_PGURL=$PGURL exec "$0"' "$top_builddir/tests/test_http"
