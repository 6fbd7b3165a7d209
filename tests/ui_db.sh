#!/bin/bash
# ui_db.sh - tests/ui.sh (the web view in a real browser) again with its
# servers on `serve --database`, on a private PostgreSQL cluster
# (tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" ui_db sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/ui.sh"
