/* store.h - the storage directory (trace-format.md §1, §6).
 *
 *   <root>/<session-id>/meta.json        SessionMeta (pretty JSON)
 *   <root>/<session-id>/events.ndjson    hard link to the object below
 *   <root>/objects/sha256/<2>/<64>.ndjson  immutable, named by its digest
 *   <root>/.agent-traced/                our own state: staging files,
 *       tmp/  links/<session-id>  lock    subagent links, the commit lock
 *
 * agent-strace reads <root>/<id>/meta.json and ignores everything else, and
 * no session id can start with "." or be "objects", so ours never collide.
 * Every change is written to a temporary name, fsynced and renamed, under
 * an flock on .agent-traced/lock, so other processes sharing the directory
 * see either the old state or the new one. */
#ifndef AGENTTRACE_STORE_H
#define AGENTTRACE_STORE_H

#include "agenttrace/common.h"
#include "agenttrace/importer.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

typedef struct at_store at_store;

/* Opens (creating when missing) a storage directory. */
at_store *at_store_open(const char *root, at_error *err);
void at_store_free(at_store *s);
const char *at_store_root(const at_store *s);

/* Is id usable as a session directory name? Rejects empty ids, ids longer
 * than AT_MAX_SESSION_ID bytes, with '/', '\\' or NUL, starting with '.',
 * and the reserved name "objects". */
bool at_session_id_ok(const char *id, size_t n);

/* A staging file for events being written: read-write, in the store's
 * filesystem so it can be renamed into place. */
typedef struct {
    int fd;
    char *path;
} at_stage;

at_result at_store_stage(at_store *s, at_stage *st, at_error *err) AT_WUR;
/* Closes and removes a staging file that will not be committed. */
void at_stage_discard(at_stage *st);

/* Removes what killed writers left in .agent-traced/tmp: staging files no
 * process holds (a live stager keeps an flock on its file) and sessions
 * built aside long ago. Entries younger than a minute are left alone.
 * Returns how many were removed. Safe while other processes use the store. */
unsigned at_store_sweep(at_store *s);

typedef enum {
    AT_COMMIT_CREATED,   /* a new session */
    AT_COMMIT_UNCHANGED, /* the identical events were already stored */
    AT_COMMIT_REPLACED,  /* the session's events changed; see replaced */
} at_commit_status;

typedef struct {
    at_commit_status status;
    char replaced[AT_SHA256_HEX];                    /* digest of the superseded events (REPLACED) */
    char parent_event_id[AT_MAX_EVENT_ID_BYTES + 1]; /* for a subagent, when its parent is known */
    size_t parent_event_id_len;                      /* 0: not known */
    int depth;                                       /* for a subagent */
} at_commit_info;

/* Makes an import visible: the staged events become an object and the
 * session's events.ndjson, res->meta (completed with the subagent fields)
 * its meta.json, the links of its subagents are recorded and the metas of
 * those already stored are completed. Consumes the stage in every case. */
at_result at_store_commit_import(at_store *s, at_stage *st, at_import_result *res, at_commit_info *info,
                                 at_error *err) AT_WUR;

/* <root>/<id> into out (a buffer of at least PATH_MAX bytes). */
void at_store_session_path(const at_store *s, const char *id, const char *file, char *out, size_t outlen);
/* <root>/objects/sha256/<2>/<hex>.ndjson */
void at_store_object_path(const at_store *s, const char *hex, char *out, size_t outlen);

/* Writes data to path atomically (temporary name, fsync, rename). */
at_result at_write_file_atomic(const char *path, const char *data, size_t n, at_error *err) AT_WUR;

#endif
