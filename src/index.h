/* index.h - the event index (index.c): opening and rebuilding it, the
 * lookups behind GET /events/{event_id}, refresh after a write, counts for
 * `reindex`, and the `reindex` command. */
#ifndef AGENTTRACED_INDEX_H
#define AGENTTRACED_INDEX_H

#include "http.h"
#include "index_batch.h"

#include "agenttrace/common.h"
#include <stdbool.h>
#include <stdint.h>

/* Opens (building or rebuilding when missing or stale) the event index of a
 * storage directory. NULL with a message in err on failure. */
event_index *event_index_open(const char *root, at_error *err);
void event_index_close(event_index *ix);
/* Rebuilds from the files (agent-traced reindex). */
at_result event_index_rebuild(event_index *ix, at_error *err);
/* GET /events/{event_id} (session NULL) and GET /sessions/{id}/events/{event_id}. */
void index_lookup(server_ctx *ctx, const char *event_id, const char *session, http_response *resp);

/* What a lookup answers, for api/lookup_db.c too: the 200 body up to the
 * event's line (which the caller appends, then "}"), and the 409 listing
 * the sessions (sid_of gives the id of hits[k]). */
at_result index_answer_head(at_buf *b, const char *sid, size_t sidn, int64_t line, const char *sha,
                            const char *prev, size_t prevn) AT_WUR;
typedef const char *(*index_sid_fn)(const void *hits, size_t k, size_t *n);
void index_conflict(const char *event_id, size_t idn, const void *hits, size_t n, index_sid_fn sid_of, bool more,
                    http_response *resp);
/* GET /events/{id} and /sessions/{id}/events/{event_id} with a database
 * store (api/lookup_db.c). */
void lookup_db(server_ctx *ctx, const char *event_id, const char *session, http_response *resp);

/* <root>/.agent-traced/index.sqlite */
#define EVENT_INDEX_FILE "index.sqlite"

/* event_index_open with a choice: sync=false skips the initial check of
 * the store against the index (for a caller about to rebuild anyway). */
event_index *event_index_open_ex(const char *root, bool sync, at_error *err);

/* Brings one session up to date after an import or an append (cheap when
 * its events.ndjson did not change; drops it when the file is gone).
 * Errors are swallowed: the next lookup re-checks anyway. */
void event_index_refresh_session(event_index *ix, const char *session_id);

/* A session was appended to (POST /events): the next lookup brings it up
 * to date before answering, so an event id it gained is seen (a unique hit
 * elsewhere becomes a 409). Cheap: a name in a set. ix may be NULL. */
void event_index_mark_changed(event_index *ix, const char *session_id);

/* As event_index_refresh_session after an import, from the rows the
 * import recorded (no re-read) when the session's events.ndjson is still
 * the staged file: its inode and size as they were staged. Takes b. The
 * rows are written by a worker thread, in order, after this returns (by
 * the caller when the queue is full); lookups do not depend on it. */
void event_index_refresh_from_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                                    uint64_t size);
/* The same for a file extended in place from line from_line on (an
 * incremental import): the rows before it stay when the index was current
 * for the file's previous size prev_size, on the same inode. */
void event_index_extend_from_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                                   uint64_t size, uint64_t from_line, uint64_t prev_size);

/* Waits until every queued import is indexed. */
void event_index_drain(event_index *ix);

/* Imports waiting for (or being written by) the worker thread. */
size_t event_index_pending(event_index *ix);

/* Re-checks every session of the store (new, changed, removed). */
at_result event_index_sync(event_index *ix, at_error *err) AT_WUR;

/* Number of indexed sessions and events. */
at_result event_index_counts(event_index *ix, int64_t *sessions, int64_t *events, at_error *err) AT_WUR;

/* `agent-traced reindex [--storage DIR]`: rebuilds the index of a storage
 * directory and prints one JSON summary line. Exit status 0, 1 on failure,
 * 2 on usage errors. */
int cli_reindex(int argc, char **argv);

#endif
