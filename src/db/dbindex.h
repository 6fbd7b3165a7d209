/* dbindex.h - the event index in the database (schema.h, event_index):
 * event_id -> (session, line, byte offset and length, the line's SHA-256,
 * its prev_hash), for GET /events/{id} with `serve --database`.
 *
 * The rows describe each session's current version. They are written in
 * the transaction that makes the version (dbstore.c): an import replaces
 * the session's rows, an append adds the rows of its lines; a lookup reads
 * the line from the current object and checks its digest, so a row is
 * never taken on its word. */
#ifndef AGENTTRACED_DB_DBINDEX_H
#define AGENTTRACED_DB_DBINDEX_H

#include "db/pg.h"

#include "agenttrace/buf.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"

/* Replaces session sid's rows with those of the lines of fd[0, size) (a
 * whole events file), inside the caller's transaction. With want (not
 * NULL) the bytes read must have that SHA-256 (the object the rows index):
 * AT_ERR_CONFLICT when they have not, and the caller rolls back. */
at_result dbi_index_file(db *d, const char *ws, const char *sid, int fd, uint64_t size,
                         const uint8_t want[AT_SHA256_LEN], at_error *err) AT_WUR;
/* Adds the rows of lines p[0, n) that follow `lines` lines and `bytes`
 * bytes of the session's events, inside the caller's transaction. */
at_result dbi_index_lines(db *d, const char *ws, const char *sid, const char *p, size_t n, uint64_t lines,
                          uint64_t bytes, at_error *err) AT_WUR;

typedef at_event_hit dbi_hit; /* store.h */

/* The first line of each session (sid NULL: every session, in byte order
 * of their ids; else that one) that holds event_id, at most max sessions
 * (*more: there were more). *hits malloc'd; free with dbi_hits_free. */
at_result dbi_lookup(db *d, const char *ws, const char *event_id, size_t idn, const char *sid, size_t max,
                     dbi_hit **hits, size_t *n, bool *more, at_error *err) AT_WUR;
void dbi_hits_free(dbi_hit *hits, size_t n);

#endif
