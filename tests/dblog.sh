#!/bin/bash
# dblog.sh - tests/test_dblog (the log's sequencer in the database, its
# takeover, its checkpoints) against a private PostgreSQL cluster (tests/pg/run.sh).
exec bash "${top_srcdir:-.}/tests/pg/run.sh" test_dblog "${top_builddir:-.}/tests/test_dblog"
