#!/bin/bash
# dbstore.sh - tests/test_dbstore (concurrent writers and the database's
# compare-and-swap) against a private PostgreSQL cluster (tests/pg/run.sh).
exec bash "${top_srcdir:-.}/tests/pg/run.sh" test_dbstore "${top_builddir:-.}/tests/test_dbstore"
