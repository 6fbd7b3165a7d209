/* pg.h - agent-traced's PostgreSQL connection (libpq): connecting with a
 * message that names the database (never its password), the schema's
 * migrations, and blobs written and read in chunks (schema.h).
 *
 * One db is one connection, used by one thread at a time. */
#ifndef AGENTTRACED_DB_PG_H
#define AGENTTRACED_DB_PG_H

#include "agenttrace/common.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct db db;

/* The database URL to use: url when given, else $AGENT_TRACED_DATABASE;
 * NULL when neither. */
const char *db_default_url(const char *url);

/* Connects. NULL with err set ("database <url without password>: <why>"). */
db *db_connect(const char *url, at_error *err);
void db_close(db *d);
PGconn *db_conn(db *d);
/* Whether an idle connection can still be used: false when it is not
 * idle, or the server spoke on it unasked (a restart's goodbye waits on
 * the socket, unread), so a pool drops it instead of failing a request
 * with it. Does not block. */
bool db_idle_alive(db *d);
/* The URL with any password replaced by "***", for messages. */
const char *db_name(const db *d);

/* Runs a command without parameters or rows (BEGIN, COMMIT, DDL). */
at_result db_exec(db *d, const char *sql, at_error *err) AT_WUR;
/* Runs a parameterized statement (text parameters, lengths for binary
 * ones when lens is not NULL: formats then say which are binary) and
 * returns its result, or NULL with err set when it failed. PQclear it. */
PGresult *db_query(db *d, const char *sql, int n, const char *const *vals, const int *lens, const int *formats,
                   bool binary_result, at_error *err);
/* Columns of a binary-format result: an int8 (0 when NULL), a bytea of
 * exactly n bytes into out (false when NULL or of another length), a
 * float8. */
uint64_t db_col_u64(const PGresult *r, int row, int col);
bool db_col_bytes(const PGresult *r, int row, int col, uint8_t *out, size_t n);
double db_col_f64(const PGresult *r, int row, int col);

/* Rolls back the current transaction, if any (after a failure). */
void db_rollback(db *d);

/* The schema version (0: none yet), or -1 with err set. */
int db_schema_version(db *d, at_error *err);
/* Applies every migration the database lacks, each in its own transaction,
 * under an advisory lock (replicas starting together migrate once). *from
 * and *to: the versions before and after. A database migrated by a newer
 * agent-traced is refused (AT_ERR_INVALID). */
at_result db_migrate(db *d, int *from, int *to, at_error *err) AT_WUR;

/* Streams bytes into a new blob, DB_CHUNK at a time (COPY, binary), inside
 * the caller's transaction. read fills buf (at most cap bytes) and returns
 * the count, 0 at the end, -1 on error (with err set by read). */
typedef ssize_t (*db_read_fn)(void *ctx, char *buf, size_t cap, at_error *err);
at_result db_blob_write(db *d, db_read_fn read, void *ctx, int64_t *blob, uint64_t *size, at_error *err) AT_WUR;
/* The same, fed by the caller as bytes arrive (an upload): begin (a new
 * blob, COPY open: the connection is busy until end or abort), put each
 * chunk (seq from 0, DB_CHUNK bytes but the last), then end (size: the
 * bytes put), or abort (the COPY fails, and with it the transaction). */
at_result db_blob_begin(db *d, int64_t *blob, at_error *err) AT_WUR;
at_result db_blob_put(db *d, int64_t blob, uint32_t seq, const char *p, size_t n, at_error *err) AT_WUR;
at_result db_blob_end(db *d, int64_t blob, uint64_t size, at_error *err) AT_WUR;
void db_blob_abort(db *d);
/* Takes bytes read from the database (a sink): AT_OK, or an error in err. */
typedef at_result (*db_write_fn)(void *ctx, const char *p, size_t n, at_error *err);

#endif
