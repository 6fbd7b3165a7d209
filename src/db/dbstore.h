/* dbstore.h - sessions, versions and objects in the database (schema.h):
 * the operations `serve --database` builds on, and the compare-and-swap
 * that serialises the writers of one session across replicas.
 *
 * A session's row holds its current version; a write reads it, prepares
 * its new version (object bytes stored under a new blob outside any
 * lock), then in one transaction names the object, moves the row from the
 * version it read to the next one (UPDATE ... WHERE current_version = the
 * one read: the compare-and-swap) and records the version. When another
 * writer moved the row first, nothing of the attempt is kept (its blob is
 * left unnamed for gc) and the write starts again from the new current
 * version: an append's lines then chain to the new head. No update is
 * lost and the chain never forks; a client never sees the conflict. */
#ifndef AGENTTRACED_DB_DBSTORE_H
#define AGENTTRACED_DB_DBSTORE_H

#include "db/pg.h"

#include "agenttrace/chain.h"
#include "agenttrace/store.h"

/* A session's current version as a writer needs it. */
typedef struct {
    uint64_t version;             /* 0: no events yet */
    uint8_t sha256[AT_SHA256_LEN]; /* its object (when version > 0) */
    at_chain_pos pos;             /* where the next line goes */
} dbs_current;

/* The session's current version. AT_ERR_NOT_FOUND: no such session. */
at_result dbs_current_get(db *d, const char *ws, const char *sid, dbs_current *cur, at_error *err) AT_WUR;

/* Creates a session without events, holding meta (meta.json's bytes);
 * *created false when it existed already (left as it was). */
at_result dbs_session_create(db *d, const char *ws, const char *sid, const char *meta, size_t meta_len,
                             bool *created, at_error *err) AT_WUR;

/* Appends n events to the session as its next version (cause "append",
 * at time now), retrying the compare-and-swap until it wins (at most
 * DBS_MAX_TRIES times: AT_ERR_CONFLICT after that). *version: the version
 * made; *retries: the attempts another writer beat. */
#define DBS_MAX_TRIES 1000
at_result dbs_append(db *d, const char *ws, const char *sid, const at_event_json *ev, size_t n, double now,
                     uint64_t *version, unsigned *retries, at_error *err) AT_WUR;

/* Streams an object's bytes (following its bases) to write. */
at_result dbs_object_read(db *d, const char *ws, const uint8_t sha256[AT_SHA256_LEN], db_write_fn write, void *ctx,
                          at_error *err) AT_WUR;

/* A row of the version columns below (a binary-format result) as an
 * at_version. */
#define DBS_VERSION_COLUMNS \
    "version, events, size, events_sha256, head, transcript_bytes, transcript_sha256, cause, time"
void dbs_version_from_row(const PGresult *r, int row, at_version *v);

/* The session's versions, oldest first (*out malloc'd). */
at_result dbs_versions(db *d, const char *ws, const char *sid, at_version **out, size_t *n, at_error *err) AT_WUR;

#endif
