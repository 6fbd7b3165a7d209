#!/bin/bash
# history_db.sh - the history suite's server half (tests/test_history:
# re-uploads after appends, every prefix snapshot, incremental uploads and
# their races, verification of every version) again with every server on
# `serve --database` (a database each, on a private PostgreSQL cluster:
# tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" test_history_db sh -c 'AT_TEST_PGURL=$PGURL exec "$0"' "$top_builddir/tests/test_history"
