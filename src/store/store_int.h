/* store_int.h - what the store's files share (store.h is the public side). */
#ifndef AGENTTRACE_STORE_INT_H
#define AGENTTRACE_STORE_INT_H

#include "agenttrace/buf.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>

#define OBJECT_MAX_DEPTH 48 /* a longer delta chain is cut by a full object */
#define SESSION_STRIPES  64

/* ---- group commit (sync.c) ------------------------------------------------ */

/* Writers hand the descriptors they dirtied to one fsync round; whoever
 * finds no round running runs the next one for everybody waiting. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *fds; /* dup'd descriptors waiting for the next round */
    size_t nfds, cap;
    uint64_t next; /* tickets handed out */
    uint64_t done; /* every ticket <= done has been through a finished round */
    struct {
        uint64_t from, to; /* tickets of a round that failed */
        int errnum;
    } failed[16]; /* the last ones, in a ring */
    unsigned nfailed;
    bool busy;
} sync_group;

void sync_group_init(sync_group *g);
void sync_group_fini(sync_group *g);
/* Returns once fds[0..n) are on stable storage (fsync), sharing the round
 * with concurrent callers. The descriptors stay the caller's. */
at_result sync_wait(sync_group *g, const int *fds, size_t n, at_error *err) AT_WUR;

/* ---- the store ------------------------------------------------------------ */

/* A file's identity and last change, as stat shows it. */
typedef struct {
    bool exists;
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} file_stamp;

void stamp_of(const struct stat *sb, file_stamp *out);
bool stamp_equal(const file_stamp *a, const file_stamp *b);

/* The digest state of a session's current events.ndjson, kept between
 * appends so an append hashes only what it adds. */
typedef struct sess_cache {
    struct sess_cache *next;
    char *sid;
    uint64_t version, size;
    at_sha256 *hash; /* SHA-256 of the version's bytes so far */
} sess_cache;

typedef struct {
    pthread_mutex_t mu; /* one writer of any session in the stripe at a time, in this process */
    sess_cache *cache;
    size_t ncache;
} sess_stripe;

struct at_store {
    char *root;      /* the workspace's directory */
    char *workspace; /* its id; NULL for the default workspace (root is the storage directory) */
    sync_group sync;
    sess_stripe stripes[SESSION_STRIPES];
    pthread_mutex_t notify_mu; /* guards on_version: unset only when no call runs */
    at_version_fn on_version;  /* the log's feed (at_store_on_version) */
    void *on_version_ctx;
    struct store_db *db; /* non-NULL: the sessions live in PostgreSQL (database.c), root is NULL */
};

/* Tells the feed of a committed version. */
void store_notify(at_store *s, const char *sid, const at_version *v);

/* Builds root + "/" + the formatted rest into out; AT_ERR_TOO_BIG when it
 * does not fit. The one place a storage path is made. */
at_result store_path(const at_store *s, char *out, size_t cap, const char *fmt, ...) AT_WUR
    __attribute__((format(printf, 4, 5)));
at_result sys_fail(at_error *err, const char *what, const char *path);
/* The modes of what the store makes, under the process's umask (read once
 * from /proc/self/status: reading it with umask(2) would change it for
 * other threads meanwhile): a file 0666, an immutable object 0444, a
 * directory 0777, each less the umask. `agent-traced` runs with 077 in its
 * umask, so files are 0600 and directories 0700, or stricter. Files made
 * with open/mkdir get this from the kernel; these are for chmod. */
mode_t store_mode_file(void);
mode_t store_mode_object(void);
mode_t store_mode_dir(void);
int mkdir_p(const char *path);
at_result fsync_dir(const char *path_in_dir);
/* Copies src[off, off+len) to the end of dst (copy_file_range, else read/write). */
at_result copy_range(int src, uint64_t off, uint64_t len, int dst) AT_WUR;
/* Are a's len bytes at aoff equal to b's at boff? */
at_result same_range(int a, uint64_t aoff, int b, uint64_t boff, uint64_t len, bool *same) AT_WUR;
/* Is the first len bytes of a equal to the first len bytes of b? */
at_result same_prefix(int a, int b, uint64_t len, bool *same) AT_WUR;

/* The session's lock: its stripe mutex (this process) and the flock on
 * history/<sid>/lock (other processes). lock_session fills *lk. */
typedef struct {
    sess_stripe *stripe;
    int fd;
} sess_lock;
at_result lock_session(at_store *s, const char *sid, sess_lock *lk, at_error *err) AT_WUR;
void unlock_session(sess_lock *lk);
/* The store-wide lock: shared by writers, exclusive for gc. -1 on failure. */
int lock_store(at_store *s, bool exclusive);
void unlock_store(int fd);

/* Metadata and session directories (store.c). */
at_result store_write_meta(at_store *s, const char *sid, const at_meta *m, at_error *err) AT_WUR;
/* The metadata of a version about to be committed, kept in its history
 * first; installed as meta.json by a sync that finds the commit cut short,
 * removed once meta.json is written. */
at_result store_stage_meta(at_store *s, const char *sid, uint64_t version, const at_meta *m,
                           at_error *err) AT_WUR;
at_result store_install_meta(at_store *s, const char *sid, uint64_t version, at_error *err) AT_WUR;
void store_unstage_meta(at_store *s, const char *sid, uint64_t version);
/* Builds a new session aside (meta.json, and events.ndjson when
 * events_path names a file to move in) and renames it into place whole.
 * AT_ERR_CONFLICT when the session appeared meanwhile. */
at_result store_create_session(at_store *s, const char *sid, const at_meta *m, const char *events_path,
                               at_error *err) AT_WUR;
/* The same with the metadata staged for version (store_stage_meta) moved
 * in: a commit past its version record serializes nothing more. */
at_result store_create_session_staged(at_store *s, const char *sid, uint64_t version, const char *events_path,
                                      at_error *err) AT_WUR;
bool at_hex_decode(const char *hex, size_t n, uint8_t *out);

/* ---- history (history.c) ---------------------------------------------------- */

/* What the history says of a session, and what we last saw of its file. */
typedef struct {
    bool have;      /* a version exists */
    at_version cur; /* the current version */
    char object[AT_SHA256_HEX];
    int depth;        /* delta chain depth of the current object (0: full) */
    uint64_t end_len; /* bytes of its last line with "\n" when that is a session_end, else 0 */
    bool have_seen;   /* a stamp of events.ndjson was recorded for the current version */
    uint64_t seen_version;
    file_stamp seen;
    bool have_prev_seen;  /* the last stamp recorded before the current version: */
    file_stamp prev_seen; /* a file that still has it was not replaced by the last commit */
} sess_state;

/* Reads the last version and stamp of a session's history. */
at_result history_load(at_store *s, const char *sid, sess_state *st, at_error *err) AT_WUR;
/* All versions, oldest first (*out malloc'd), and their objects when objs
 * is not NULL (*objs malloc'd). */
at_result history_list(at_store *s, const char *sid, at_version **out, char (**objs)[AT_SHA256_HEX],
                       size_t *n, at_error *err) AT_WUR;
/* The object of a version (AT_ERR_NOT_FOUND when there is none). */
at_result history_object(at_store *s, const char *sid, uint64_t version, char hex[AT_SHA256_HEX],
                         at_error *err) AT_WUR;
/* Appends a version record; *fd gets the history file's descriptor (for
 * the caller's fsync round; the caller closes it) and *before (when not
 * NULL) the file's size before the record, to cut it off with ftruncate
 * when what it records could not be written. */
/* Removes sid's version history when it is empty (a first version whose
 * record was cut back): nothing of a failed first write stays. Lock held. */
void history_drop_if_empty(at_store *s, const char *sid);
at_result history_add(at_store *s, const char *sid, const sess_state *st, int *fd, off_t *before,
                      at_error *err) AT_WUR;
/* Writes history/<sid>/usage.<version>.json from res->usage (durably),
 * or removes a stale one when res has none (usage.c). */
at_result store_write_usage(at_store *s, const char *sid, uint64_t version, const at_import_result *res,
                            at_error *err) AT_WUR;
/* Removes the usage file of a version whose record could not be written. */
void store_drop_usage(at_store *s, const char *sid, uint64_t version);
/* Removes the usage files of the versions before first_kept (gc), but the
 * newest one, which the versions kept may stand on. */
void store_retire_usage(at_store *s, const char *sid, uint64_t first_kept);
/* Rewrites the history without version v and everything after it. */
at_result history_drop_from(at_store *s, const char *sid, uint64_t v, at_error *err) AT_WUR;
/* Records the stamp of events.ndjson that belongs to version v. */
at_result history_seen(at_store *s, const char *sid, uint64_t v, const file_stamp *fs, at_error *err) AT_WUR;

/* ---- retention (gc.c) ---- */

typedef struct {
    char *sid;
    double when;    /* for age: ended_at, else started_at, else meta.json's mtime (the database: updated_at) */
    double started; /* for count and size: newest first */
    uint64_t bytes; /* meta.json + events.ndjson */
    bool removed;
} gc_session;
/* Marks the sessions retention removes, as agent-strace's retention applies
 * its limits: age, then count, then size (gc.c); sorts v newest first. */
void gc_choose(gc_session *v, size_t n, const at_gc_policy *p, double now);

/* meta.json's bytes for m in this store: pretty JSON, stamped with the
 * workspace_id outside the default workspace. */
at_result store_meta_bytes(const at_store *s, const at_meta *m, at_buf *out) AT_WUR;

/* ---- the PostgreSQL backend (database.c) ---------------------------------
 * The public functions a database store supports hand over to these at
 * their top; the others answer AT_ERR_INVALID ("not with --database"). */
struct store_db *store_db_open(const char *url, const char *ws, const char *tmp_dir, at_error *err);
void store_db_free(struct store_db *p);
at_result sdb_ping(at_store *s, at_error *err) AT_WUR;
bool sdb_session_exists(at_store *s, const char *sid);
at_result sdb_meta_load(at_store *s, const char *sid, at_meta *m, at_error *err) AT_WUR;
at_result sdb_meta_put(at_store *s, const char *sid, const at_meta *m, at_meta_edit_fn edit, void *edit_ctx,
                       bool *created, at_error *err) AT_WUR;
at_result sdb_list(at_store *s, const char *prefix, size_t limit, char ***ids, size_t *n, at_error *err) AT_WUR;
at_result sdb_versions(at_store *s, const char *sid, at_version **out, size_t *n, at_error *err) AT_WUR;
at_result sdb_open_version(at_store *s, const char *sid, uint64_t version, at_object_reader **out,
                           at_error *err) AT_WUR;
at_result sdb_open_object(at_store *s, const char *hex, at_object_reader **out, at_error *err) AT_WUR;
at_result sdb_append(at_store *s, const char *sid, const at_event_json *ev, size_t n, uint64_t *version,
                     at_error *err) AT_WUR;
at_result sdb_stage(at_store *s, at_stage *st, at_error *err) AT_WUR;
at_result sdb_stage_flush(at_store *s, at_stage *st, at_error *err) AT_WUR;
void sdb_stage_abort(struct at_stage_db *sd); /* NULL: nothing */
/* Removes the staging files of writers that died (their lock is free). */
unsigned sdb_sweep(at_store *s);
at_result sdb_gc(at_store *s, const at_gc_policy *p, at_gc_report *rep, at_error *err) AT_WUR;
at_result sdb_usage(at_store *s, const char *sid, char **json, size_t *len, uint64_t *version, at_error *err) AT_WUR;
at_result sdb_resume_state(at_store *s, const char *sid, uint64_t offset, char **state, size_t *len,
                           int64_t *recorded, uint64_t *version, at_error *err) AT_WUR;
at_result sdb_workspaces(at_store *s, at_workspace_fn fn, void *ctx, at_error *err) AT_WUR;
at_result sdb_workspace_create(at_store *s, at_error *err) AT_WUR;
at_result sdb_commit_import(at_store *s, at_stage *st, at_import_result *res, at_commit_info *info,
                            at_error *err) AT_WUR;
at_result store_db_unsupported(at_error *err, const char *what) AT_WUR;
at_result sdb_links_put(at_store *s, const char *parent, const at_import_result *res, at_error *err) AT_WUR;
bool sdb_link_find(at_store *s, const char *parent, const char *agent_id, char out[AT_MAX_EVENT_ID_BYTES + 1],
                   size_t *outn);

/* The database store's connections, its URL and workspace (ledger_db.c). */
struct db;
struct db *sdb_take(at_store *s, at_error *err);
void sdb_give(at_store *s, struct db *d);
const char *sdb_url(const at_store *s);
const char *sdb_ws(const at_store *s);
/* at_store_logged_index over the database's log. */
at_result sdb_logged_index(at_store *s, const char *sid, uint64_t v, uint64_t *version, uint64_t *index,
                           at_error *err) AT_WUR;

/* An object reader over the database (object.c hands its calls to these). */
struct sdb_reader;
at_object_reader *object_reader_db(struct sdb_reader *r);
ssize_t sdb_reader_read(struct sdb_reader *r, uint64_t pos, char *buf, size_t n);
uint64_t sdb_reader_size(const struct sdb_reader *r);
void sdb_reader_free(struct sdb_reader *r);

/* Facts about a finished events file: lines, size, digest, head, and the
 * length of its last line when that is a session_end event. */
typedef struct {
    uint64_t lines, size, end_len;
    uint8_t sha256[AT_SHA256_LEN];
    uint8_t head[AT_SHA256_LEN];
    bool have_head;
    bool ends_nl; /* the last byte is "\n" (or the file is empty) */
} events_facts;
/* Reads fd from the start (hash: when non-NULL, left holding the digest
 * state of the whole file, for later appends). */
at_result events_scan(int fd, events_facts *f, at_sha256 *hash) AT_WUR;
/* Only the tail: the last line's digest and whether it is a session_end. */
at_result events_tail(int fd, uint64_t size, events_facts *f) AT_WUR;

/* What a full import is to the current version st (commit.c's rules):
 * fd holds the current version's bytes, stage_fd the new ones (new_size).
 * Sets info->result (and stale); *keep: the current bytes an extension
 * keeps. */
at_result store_classify(const sess_state *st, int fd, int stage_fd, uint64_t new_size, const at_import_result *res,
                         at_commit_info *info, uint64_t *keep) AT_WUR;

/* Makes events.ndjson agree with the history (sess.c): a file an earlier
 * commit did not finish is rebuilt from its object; a change made by another
 * program becomes a version of cause external. Called with the session
 * locked, before reading or writing it. */
at_result session_sync(at_store *s, const char *sid, sess_state *st, at_error *err) AT_WUR;
/* The same; a writer (about to append or commit) also records a file whose
 * last line another program has not finished, which a reader leaves for
 * later. */
at_result session_sync_as(at_store *s, const char *sid, sess_state *st, bool writer, at_error *err) AT_WUR;

/* ---- objects (object.c) ------------------------------------------------------ */

bool object_exists(at_store *s, const char *hex);
/* Where an object's new bytes come from: a file range, or memory. */
typedef struct {
    int fd;
    uint64_t off;
    const char *mem; /* non-NULL: these bytes instead of fd */
} obj_src;
/* Stores size bytes of src as the full object hex. dirty gets the fds to
 * sync (the object and its directory; *ndirty counts them, room for 2). */
at_result object_put_full(at_store *s, const char *hex, const obj_src *src, uint64_t size, int *dirty,
                          size_t *ndirty, at_error *err) AT_WUR;
/* Stores object hex as base's first prefix bytes followed by len bytes of
 * src (a delta), or as a full object when base's chain is too long; *depth
 * gets the new object's chain depth. */
at_result object_put_delta(at_store *s, const char *hex, const char *base, uint64_t prefix,
                           const obj_src *src, uint64_t len, int *depth, int *dirty, size_t *ndirty,
                           at_error *err) AT_WUR;
/* Delta chain depth of an object (0: full; -1: missing or unreadable). */
int object_depth(at_store *s, const char *hex);
/* A reader of no bytes (a session without events yet). */
at_object_reader *object_reader_empty(void);
/* The objects an object needs (itself, and its bases), for gc. */
at_result object_bases(at_store *s, const char *hex, char (**out)[AT_SHA256_HEX], size_t *n) AT_WUR;

#endif
