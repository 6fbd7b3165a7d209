/* store.h - the storage directory, and the only module that writes to it.
 *
 *   <root>/<id>/meta.json         SessionMeta (pretty JSON), agent-strace's
 *   <root>/<id>/events.ndjson     the current version's events, a plain file of
 *                                 its own: agent-strace reads it and may append
 *   <root>/objects/sha256/<2>/<64>.ndjson   an immutable object: the events of
 *                                 one version, named by their SHA-256
 *   <root>/objects/sha256/<2>/<64>.delta    the same, stored as another object's
 *                                 first bytes plus a tail (see store/object.c)
 *   <root>/.agent-traced/         our own state (agent-strace ignores dot names):
 *       lock                      shared by writers, exclusive for gc
 *       tmp/                      staging files, swept when their writer is gone
 *       history/<id>/versions     the session's versions, one JSON line each
 *       history/<id>/import.state the importer's state after the current version
 *       history/<id>/usage.<N>.json  the transcript's token usage (usage.h) at version N
 *       history/<id>/lock         serializes writers of one session across processes
 *       links/<id>                subagent links
 *
 * Every write reaches stable storage (file and directory entries fsynced)
 * before the call returns: a successful return means the data is durable.
 * Concurrent writers share their fsyncs (group commit). Design notes: the
 * comment at the top of src/store/store.c. */
#ifndef AGENTTRACE_STORE_H
#define AGENTTRACE_STORE_H

#include "agenttrace/chain.h"
#include "agenttrace/common.h"
#include "agenttrace/importer.h"
#include "agenttrace/meta.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>
#include <sys/types.h>

typedef struct at_store at_store;

/* Opens (creating when missing) a storage directory, upgrading a layout of
 * an older agent-traced once (events.ndjson hard-linked to its object gets
 * an inode of its own; every session gets a history). */
at_store *at_store_open(const char *root, at_error *err);
void at_store_free(at_store *s);
/* The workspace's directory (the storage directory for the default one). */
const char *at_store_root(const at_store *s);

/* Workspaces (agent-strace's layout). The storage directory is the default
 * workspace; workspace W is a storage directory of its own at
 * <storage>/workspaces/<W>, whose sessions' meta.json say
 * "workspace_id": "<W>". Ids: 1-64 of A-Z a-z 0-9 . _ -, not starting with
 * a dot. */
#define AT_DEFAULT_WORKSPACE "default"
#define AT_MAX_WORKSPACE_ID  64
bool at_workspace_id_ok(const char *ws);
/* The directory of workspace ws (NULL or "default": storage itself);
 * AT_ERR_INVALID for a bad id, AT_ERR_TOO_BIG when it does not fit. */
at_result at_workspace_root(const char *storage, const char *ws, char *out, size_t cap) AT_WUR;
/* Opens workspace ws of the storage directory as at_store_open does
 * (creating it when missing). NULL or "default": the storage directory. */
at_store *at_store_open_workspace(const char *storage, const char *ws, at_error *err);
/* A line an event id names (a database store's event index). */
typedef struct {
    char *sid; /* malloc'd */
    uint64_t line, off, len;
    char sha[AT_SHA256_HEX];
    at_buf prev; /* decoded prev_hash; has_prev false when the line had none */
    bool has_prev;
} at_event_hit;

/* The same store over PostgreSQL (`serve --database`; the schema of
 * src/db/schema.h, made by `agent-traced db migrate`): workspace ws (NULL:
 * the default) of the database at url, staging files in tmp_dir. Nothing
 * is read before the first call: at_store_probe_write says whether the
 * database answers with the schema this version needs. Its root is NULL.
 * Sessions, metadata, versions, objects, appends and full imports work as
 * in a directory; what it does not do yet answers AT_ERR_INVALID with a
 * message saying so (src/store/database.c). */
at_store *at_store_open_database(const char *url, const char *ws, const char *tmp_dir, at_error *err);
bool at_store_is_database(const at_store *s); /* false for NULL */
/* The session an exact id or an unambiguous prefix names (*out malloc'd):
 * AT_ERR_NOT_FOUND, or AT_ERR_CONFLICT for an ambiguous prefix. A database
 * store only (a directory's callers resolve through the catalog). */
at_result at_store_resolve(at_store *s, const char *prefix, char **out, at_error *err) AT_WUR;
/* A database store's named API keys (`agent-traced db keys load` stores a
 * keys file's lines): fn gets each, by name. The layout is dbs_key's. */
typedef struct {
    const char *name, *role, *workspace;
    uint8_t sha256[AT_SHA256_LEN];
} at_key_row;
typedef void (*at_key_fn)(void *ctx, const at_key_row *k);
at_result at_store_api_keys(at_store *dflt, at_key_fn fn, void *ctx, at_error *err) AT_WUR;

/* A database store's event index: the first line of each session (sid
 * NULL: every session, in byte order of their ids; else that one) whose
 * event has id event_id, at most max sessions (*more: there were more).
 * *hits malloc'd: at_event_hits_free. The rows describe current versions:
 * read the line and check its digest (a commit may have come between). */
at_result at_store_find_event(at_store *s, const char *event_id, size_t idn, const char *sid, size_t max,
                              at_event_hit **hits, size_t *n, bool *more, at_error *err) AT_WUR;
void at_event_hits_free(at_event_hit *hits, size_t n);
/* The store's workspace id ("default" for the storage directory). */
const char *at_store_workspace(const at_store *s);
/* Calls fn with "default", then each workspace directory under storage
 * (unordered). */
typedef void (*at_workspace_fn)(void *ctx, const char *ws);
at_result at_workspaces_list(const char *storage, at_workspace_fn fn, void *ctx, at_error *err) AT_WUR;
/* The same from the default workspace's store (a database store lists the
 * workspaces its sessions are in). */
at_result at_store_workspaces(at_store *dflt, at_workspace_fn fn, void *ctx, at_error *err) AT_WUR;
/* Makes the store's workspace one that at_store_workspaces lists, before
 * any session is in it (a directory store's is from at_store_open on; a
 * database store's gets its row). */
at_result at_store_workspace_create(at_store *s, at_error *err) AT_WUR;

/* Is id usable as a session id (and directory name)? Rejects empty ids and
 * ids of whitespace only, ids longer than AT_MAX_SESSION_ID bytes, with '/',
 * '\\', a control character (C0, DEL, C1) or anything but strict UTF-8 (a
 * lone surrogate among others), starting with '.', and the reserved name
 * "objects" and "workspaces". */
bool at_session_id_ok(const char *id, size_t n);

/* Can the store write now? A byte is written to an unnamed file in its
 * staging directory and synced (a read-only or full filesystem fails). */
at_result at_store_probe_write(at_store *s, at_error *err) AT_WUR;

/* Does the session exist (a directory with a meta.json)? */
bool at_store_session_exists(at_store *s, const char *sid);

/* ---- versions ------------------------------------------------------------ */

typedef enum {
    AT_CAUSE_IMPORT,   /* an upload or `agent-traced import` */
    AT_CAUSE_APPEND,   /* POST /events */
    AT_CAUSE_EXTERNAL, /* another program changed events.ndjson */
} at_cause;

const char *at_cause_name(at_cause c);

/* One version of a session's events. */
typedef struct {
    uint64_t version; /* from 1 */
    uint64_t events;  /* lines */
    uint64_t size;    /* bytes */
    uint8_t events_sha256[AT_SHA256_LEN];
    uint8_t head[AT_SHA256_LEN]; /* SHA-256 of the last line, without its "\n" */
    bool have_head;              /* false: no lines */
    int64_t transcript_bytes;    /* -1 unless the version came from an import */
    uint8_t transcript_sha256[AT_SHA256_LEN];
    at_cause cause;
    double time; /* seconds since the epoch */
} at_version;

/* The session's versions, oldest first (*out malloc'd, *n 0 when it has
 * none yet). Notices an external change of events.ndjson first.
 * AT_ERR_NOT_FOUND when the session does not exist. */
at_result at_store_versions(at_store *s, const char *sid, at_version **out, size_t *n, at_error *err) AT_WUR;

/* The current version, after noticing an external change: *have false
 * when the session has no events yet. AT_ERR_NOT_FOUND: no such session. */
at_result at_store_current(at_store *s, const char *sid, at_version *v, bool *have, at_error *err) AT_WUR;

/* ---- reading events -------------------------------------------------------- */

/* A version's events, read through the object that holds them. */
typedef struct at_object_reader at_object_reader;

/* Opens version `version` of a session (0: the current one, after noticing
 * an external change), or an object by its digest (hex, 64 lowercase).
 * AT_ERR_NOT_FOUND when there is no such session, version or object. */
at_result at_store_open_version(at_store *s, const char *sid, uint64_t version, at_object_reader **out,
                                at_error *err) AT_WUR;
at_result at_store_open_object(at_store *s, const char *hex, at_object_reader **out, at_error *err) AT_WUR;
uint64_t at_object_size(const at_object_reader *rd);
/* Reads up to n bytes at pos; returns the count (0 at the end), -1 on error. */
ssize_t at_object_read(at_object_reader *rd, uint64_t pos, char *buf, size_t n);
void at_object_reader_free(at_object_reader *rd);

/* ---- importing ------------------------------------------------------------- */

/* A staging file for events being written: read-write, in the store's
 * filesystem so it can be renamed into place. */
typedef struct {
    int fd;
    char *path;
    struct at_stage_db *db; /* a database store's upload transaction, or NULL */
} at_stage;

at_result at_store_stage(at_store *s, at_stage *st, at_error *err) AT_WUR;
/* Hands the store what was written to the staging file so far (call it
 * after each piece of input): a database store streams every whole chunk
 * into the upload's open transaction as it arrives; a directory store has
 * nothing to do. An error fails the upload (nothing of it is kept). */
at_result at_store_stage_flush(at_store *s, at_stage *st, at_error *err) AT_WUR;
/* Closes and removes a staging file that will not be committed (a
 * database store's upload transaction is rolled back). */
void at_stage_discard(at_stage *st);

typedef enum {
    AT_UPLOAD_CREATED,   /* a new session */
    AT_UPLOAD_UNCHANGED, /* nothing written: the same events, or an older snapshot of them */
    AT_UPLOAD_EXTENDED,  /* the transcript grew: the new events continue the current ones */
    AT_UPLOAD_REPLACED,  /* anything else: a new version; the old ones stay */
} at_upload_result;

const char *at_upload_result_name(at_upload_result r);

typedef struct {
    at_upload_result result;
    bool stale;       /* unchanged, and the current version holds more events */
    uint64_t version; /* the session's current version after the commit */
    bool have_previous_head;
    uint8_t previous_head[AT_SHA256_LEN];            /* the head before the commit */
    char parent_event_id[AT_MAX_EVENT_ID_BYTES + 1]; /* for a subagent, when its parent is known */
    size_t parent_event_id_len;                      /* 0: not known */
    int depth;                                       /* for a subagent */
    /* An incremental import extends events.ndjson in place: its first
     * kept_lines lines (previous_size bytes before) did not move. 0: the
     * file was replaced whole. */
    uint64_t kept_lines, previous_size;
    uint64_t events_inode, events_size; /* events.ndjson as the commit left it */
    int64_t log_index;                  /* the version's entry in the transparency log; -1: not known */
    /* In: for a resumed import, the version its state was taken from
     * (at_store_resume_state); the commit answers AT_ERR_CONFLICT when
     * another is current by then. 0: not checked. */
    uint64_t resumed_from;
} at_commit_info;

/* Makes an import visible under the rules of the upload (created /
 * unchanged / extended / replaced): the staged events become an object
 * and, unless nothing changed, a new version, the session's events.ndjson
 * and its meta.json (res->meta, completed with the subagent fields); the
 * links of its subagents are recorded and the metas of those stored are
 * completed. When res carries an importer state it is kept for an
 * incremental import. Consumes the stage in every case. */
at_result at_store_commit_import(at_store *s, at_stage *st, at_import_result *res, at_commit_info *info,
                                 at_error *err) AT_WUR;

/* The subagent links a parent's transcript recorded (*out malloc'd; free
 * with at_store_links_free): none when it has no subagents. A directory
 * store only (`db import` copies them). */
at_result at_store_links(at_store *s, const char *parent, at_import_link **out, size_t *n, at_error *err) AT_WUR;
void at_store_links_free(at_import_link *v, size_t n);

/* The importer state to resume session sid's transcript at byte offset
 * (*state malloc'd), for POST /import?session=&offset=. AT_ERR_CONFLICT
 * when the current version did not come from an import or offset is not
 * its transcript_bytes (*recorded: that length, -1 when null), or when
 * no state of the current version is kept; AT_ERR_NOT_FOUND when there is
 * no such session. *version: the version the state belongs to; pass it as
 * at_commit_info.resumed_from so the commit refuses a session that changed
 * in between. */
at_result at_store_resume_state(at_store *s, const char *sid, uint64_t offset, char **state, size_t *len,
                                int64_t *recorded, uint64_t *version, at_error *err) AT_WUR;

/* ---- token usage (usage.h) ------------------------------------------------- */

/* The token usage recorded with the session's transcript, as usage.h's
 * JSON (*json malloc'd, NUL-terminated): the one kept with the newest
 * version at or below the current one that has it, unless an import newer
 * than that version recorded none. *json NULL (and AT_OK) when no usage
 * is recorded (sessions imported before it was kept, sessions only ever
 * appended to). *version: the version it belongs to. AT_ERR_NOT_FOUND: no
 * such session. */
at_result at_store_usage(at_store *s, const char *sid, char **json, size_t *len, uint64_t *version,
                         at_error *err) AT_WUR;

/* Every session (a directory with a meta.json), in directory order: *ids
 * malloc'd, of *n malloc'd strings; free with at_store_list_free. */
at_result at_store_list(at_store *s, char ***ids, size_t *n, at_error *err) AT_WUR;
void at_store_list_free(char **ids, size_t n);
/* The sessions whose meta's parent_session_id chain leads to sid (its
 * subagents, theirs, ...), breadth first; free with at_store_list_free. */
at_result at_store_descendants(at_store *s, const char *sid, char ***ids, size_t *n, at_error *err) AT_WUR;

/* ---- appending (POST /events) --------------------------------------------- */

/* Appends events to a session as one new version (cause append), creating
 * the session with fresh metadata when it does not exist. Each event's
 * prev_hash, when absent, chains to the line before. All or nothing.
 * *version: the version made. */
at_result at_store_append(at_store *s, const char *sid, const at_event_json *ev, size_t n, uint64_t *version,
                          at_error *err) AT_WUR;

/* ---- metadata (POST /sessions) -------------------------------------------- */

/* Loads a session's meta.json. AT_ERR_NOT_FOUND when there is none. */
at_result at_store_meta_load(at_store *s, const char *sid, at_meta *m, at_error *err) AT_WUR;
/* Called with the session locked on the metadata about to be written (the
 * stored fields overwritten by the new ones): the place to redact it. */
typedef at_result (*at_meta_edit_fn)(void *ctx, at_meta *m);

/* Creates the session with meta m (*created true), or, when it exists,
 * overwrites the fields m sets (*created false); edit (may be NULL) sees
 * the result before it is written. */
at_result at_store_meta_put(at_store *s, const char *sid, const at_meta *m, at_meta_edit_fn edit,
                            void *edit_ctx, bool *created, at_error *err) AT_WUR;

/* ---- the transparency log's feed (tlog.md) --------------------------------- */

/* Told of every version this process commits, once it is durable. It may
 * be called with the session locked: it must not call back into the store
 * (queue the work). */
typedef void (*at_version_fn)(void *ctx, const char *sid, const at_version *v);
void at_store_on_version(at_store *s, at_version_fn fn, void *ctx);

/* The log entry of a version, appended to out:
 *   agent-traced/head/v1\nsession <json id>\nversion N\nevents N\nhead <hex>\nobject <hex>\n */
at_result at_store_log_entry(const char *sid, const at_version *v, at_buf *out) AT_WUR;
/* What a log entry says of an events file, read from fd: its lines, the
 * digest of its last line (have_head false for an empty file) and of the
 * whole file. The store and the auditor (audit.h) both derive them here. */
typedef struct {
    uint64_t lines, size;
    uint8_t head[AT_SHA256_LEN], sha256[AT_SHA256_LEN];
    bool have_head;
} at_events_summary;
at_result at_events_summarize(int fd, at_events_summary *out) AT_WUR;
/* Records, durably, that each version is the entry index of the log (one
 * sync round for them all). */
typedef struct {
    const char *sid;
    uint64_t version, index;
} at_logged_mark;
at_result at_store_mark_logged(at_store *s, const at_logged_mark *m, size_t n, at_error *err) AT_WUR;
/* The log index of version v (0: the current one); AT_ERR_NOT_FOUND while
 * it is not logged. *version gets the version looked up. */
at_result at_store_logged_index(at_store *s, const char *sid, uint64_t v, uint64_t *version, uint64_t *index,
                                at_error *err) AT_WUR;
/* Calls fn for every version of sid (every session when sid is NULL) not
 * logged yet, in version order. */
at_result at_store_each_unlogged(at_store *s, const char *sid, at_version_fn fn, void *ctx,
                                 at_error *err) AT_WUR;

/* ---- upkeep ------------------------------------------------------------------ */

/* Removes what killed writers left behind: staging files and temporary
 * copies no process holds (a live writer keeps an flock on its file), and
 * sessions built aside long ago. Entries younger than a minute are left
 * alone. Returns how many were removed. Safe while other processes use the
 * store. */
unsigned at_store_sweep(at_store *s);

/* Retention and garbage collection (agent-traced gc, and serve). */
typedef struct {
    int64_t keep_versions; /* per session, newest first; <= 0: all */
    double max_age_days;   /* sessions that ended longer ago go; <= 0: no limit */
    int64_t max_sessions;  /* then the oldest beyond this many; <= 0: no limit */
    double max_size_mb;    /* then the oldest until the store is under this; <= 0: no limit */
    bool dry_run;          /* report, remove nothing */
} at_gc_policy;

typedef struct {
    uint64_t sessions_removed;
    uint64_t versions_removed;
    uint64_t objects_removed;
    uint64_t bytes_freed;
    uint64_t objects_kept;
} at_gc_report;

at_result at_store_gc(at_store *s, const at_gc_policy *p, at_gc_report *rep, at_error *err) AT_WUR;

/* ---- paths ---------------------------------------------------------------------- */

/* The one place the names under a storage directory are spelled, for the
 * store and for the readers that work from a root (catalog, trees, the
 * event index). */
typedef enum {
    AT_PATH_SESSION, /* <root>/<id> */
    AT_PATH_META,    /* <root>/<id>/meta.json */
    AT_PATH_EVENTS,  /* <root>/<id>/events.ndjson */
    AT_PATH_PRIVATE, /* <root>/.agent-traced */
    AT_PATH_TMP,     /* <root>/.agent-traced/tmp */
    AT_PATH_INDEX,   /* <root>/.agent-traced/index.sqlite */
} at_path_kind;

/* Writes the path of kind (for sid, where it names one) into out; with a
 * NULL root, the path relative to the root. AT_ERR_TOO_BIG when it does not
 * fit. */
at_result at_storage_path(const char *root, at_path_kind kind, const char *sid, char *out, size_t cap) AT_WUR;

/* <root>/<id>[/<file>] into out; AT_ERR_TOO_BIG when it does not fit. */
at_result at_store_session_path(const at_store *s, const char *id, const char *file, char *out,
                                size_t outlen) AT_WUR;

/* Writes data to path atomically (temporary name, fsync, rename, directory
 * fsync). */
at_result at_write_file_atomic(const char *path, const char *data, size_t n, at_error *err) AT_WUR;

#endif
