#!/bin/bash
# log_tamper_db.sh - tests/log_tamper.sh (the auditor's checks against the
# transparency log: tampered copies, proofs, checkpoints, a SIGKILL in the
# middle of uploads) again with the server on `serve --database`, on a
# private PostgreSQL cluster (tests/pg/run.sh).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
export top_srcdir top_builddir
exec bash "$top_srcdir/tests/pg/run.sh" log_tamper_db sh -c 'AT_TEST_PGURL=$PGURL exec bash "$0"' "$top_srcdir/tests/log_tamper.sh"
