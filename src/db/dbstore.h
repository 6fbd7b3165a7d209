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

#include "agenttrace/buf.h"
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

/* ---- serve --database: what the store's database backend builds on ------ */

/* The session's meta.json bytes (appended to meta). AT_ERR_NOT_FOUND: no
 * such session. */
at_result dbs_meta_get(db *d, const char *ws, const char *sid, at_buf *meta, at_error *err) AT_WUR;
/* Starts a transaction holding the session's row (SELECT ... FOR UPDATE)
 * and appends its meta to meta; *found false when there is no such session
 * (nothing is locked then). The caller ends it with dbs_meta_store or
 * db_rollback. */
at_result dbs_meta_lock(db *d, const char *ws, const char *sid, at_buf *meta, bool *found, at_error *err) AT_WUR;
/* Writes the meta locked by dbs_meta_lock (create: a new session without
 * events) and commits. *lost: another writer created the session first
 * (rolled back; start again). */
at_result dbs_meta_store(db *d, const char *ws, const char *sid, const char *meta, size_t len, bool create,
                         bool *lost, at_error *err) AT_WUR;
/* The ids of the workspace's sessions starting with prefix (NULL: all),
 * sorted, at most limit of them (0: no limit); *ids malloc'd, free with
 * at_store_list_free. */
at_result dbs_session_ids(db *d, const char *ws, const char *prefix, size_t limit, char ***ids, size_t *n,
                          at_error *err) AT_WUR;
/* The object of version `version` of a session. AT_ERR_NOT_FOUND: no such
 * session or version. */
at_result dbs_version_object(db *d, const char *ws, const char *sid, uint64_t version,
                             uint8_t sha256[AT_SHA256_LEN], at_error *err) AT_WUR;
/* Calls fn with each workspace that has a row, in id order. */
/* Adds workspace ws's row (a session's foreign key; nothing when it is
 * there). */
at_result dbs_workspace_create(db *d, const char *ws, at_error *err) AT_WUR;
at_result dbs_workspaces(db *d, void (*fn)(void *ctx, const char *ws), void *ctx, at_error *err) AT_WUR;
/* The importer state kept with version `version` of a session (appended
 * to out); *found false when none was kept. */
at_result dbs_import_state(db *d, const char *ws, const char *sid, uint64_t version, at_buf *out, bool *found,
                           at_error *err) AT_WUR;
/* The usage the newest import at or below the current version recorded
 * (appended to out, *version its version); *found false when that import
 * recorded none, or there is none. */
at_result dbs_usage(db *d, const char *ws, const char *sid, at_buf *out, uint64_t *version, bool *found,
                    at_error *err) AT_WUR;
/* ---- gc ---- */

/* Each session of ws with its meta.json bytes, its current version's size
 * and when its row last changed (seconds since the epoch). */
typedef void (*dbs_session_fn)(void *ctx, const char *sid, const char *meta, size_t meta_len, uint64_t size,
                               double updated);
at_result dbs_sessions_each(db *d, const char *ws, dbs_session_fn fn, void *ctx, at_error *err) AT_WUR;
/* In one transaction holding writers off (readers go on): removes sessions
 * ids[0, n) with everything of theirs, keeps each other session's newest
 * keep_versions versions (0: all), removes every object no version needs
 * (itself or as a base) and its blob. dry_run: the same counts, nothing
 * removed. */
typedef struct {
    uint64_t sessions, versions, objects, bytes, objects_kept;
} dbs_gc_counts;
at_result dbs_gc(db *d, const char *ws, char *const *ids, size_t n, int64_t keep_versions, bool dry_run,
                 dbs_gc_counts *c, at_error *err) AT_WUR;

/* Named API keys (api_keys): what a keys file holds, a row each (role:
 * reader, writer or admin; workspace: an id or "*"; the SHA-256 of the
 * key, never the key). */
typedef at_key_row dbs_key;
/* Replaces every key with keys[0, n), in one transaction. */
at_result dbs_keys_replace(db *d, const dbs_key *keys, size_t n, at_error *err) AT_WUR;
/* Calls fn with each key, by name. */
at_result dbs_keys(db *d, at_key_fn fn, void *ctx, at_error *err) AT_WUR;
/* Whether the workspace has a row (sessions were stored in it). */
at_result dbs_workspace_exists(db *d, const char *ws, bool *exists, at_error *err) AT_WUR;

/* An object read in place: its extents (a blob's bytes at an object
 * offset, following its bases) are learnt once, then each read fetches the
 * chunk it falls in (one chunk cached). The reader holds no connection:
 * each read is given one. */
typedef struct dbs_reader dbs_reader;
at_result dbs_reader_open(db *d, const char *ws, const uint8_t sha256[AT_SHA256_LEN], dbs_reader **out,
                          at_error *err) AT_WUR;
uint64_t dbs_reader_size(const dbs_reader *rd);
/* Up to n bytes at pos: the count, 0 at the end, -1 with err set. */
ssize_t dbs_reader_read(db *d, dbs_reader *rd, uint64_t pos, char *buf, size_t n, at_error *err);
void dbs_reader_free(dbs_reader *rd);

/* A parent's subagent links (commit.c): replaced as a whole (n 0: none
 * left; inside the caller's transaction when one is open), and one looked
 * up (*found false when not known). */
at_result dbs_links_put(db *d, const char *ws, const char *parent, const at_import_link *links, size_t n,
                        at_error *err) AT_WUR;
at_result dbs_link_find(db *d, const char *ws, const char *parent, const char *agent_id, at_buf *event_id,
                        bool *found, at_error *err) AT_WUR;

/* An import's new version, for dbs_commit. */
typedef struct {
    const char *meta; /* meta.json's bytes for the version */
    size_t meta_len;
    int fd;            /* the object's stored bytes are fd[off, off + len) ... */
    uint64_t off, len; /* ... after base_size bytes of the current object when delta */
    bool delta;
    uint64_t base_size;
    /* > 0: the stored bytes are already in this blob from byte blob_start
     * (an upload streamed as it arrived, in the caller's open transaction;
     * fd still holds the whole events, for the event index) */
    int64_t blob;
    uint64_t blob_start;
    at_version v; /* the version: every field but .version, which dbs_commit sets */
    const char *state; /* the importer's state after it (for an incremental upload), or NULL */
    size_t state_len;
    const char *usage; /* the transcript's token usage (usage.h's JSON), or NULL */
    size_t usage_len;
} dbs_import;

/* Stores im as the session's next version: creates the session when cur
 * is NULL, else moves it from cur (the compare-and-swap). The object's
 * bytes stream from im->fd by COPY inside the transaction. *lost: another
 * writer got there first; nothing is kept (read the current version
 * again, decide again, retry). With im->blob, the caller's transaction is
 * open: the attempt runs in a savepoint (a lost one is rolled back to it,
 * keeping the blob), and success commits the whole transaction. */
at_result dbs_commit(db *d, const char *ws, const char *sid, const dbs_current *cur, dbs_import *im, bool *lost,
                     at_error *err) AT_WUR;

#endif
