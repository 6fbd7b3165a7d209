/* index.c - the event index: event_id -> (session, line, byte range, digest).
 *
 * Why SQLite (libsqlite3): the index is derived data, rebuildable from the
 * session files at any time, so it needs no format of its own to be kept
 * compatible; SQLite gives a B-tree lookup in one file under the store's
 * .agent-traced/ (agent-strace ignores it), crash-safe updates, and in WAL
 * mode any number of concurrent readers (the server's threads, and other
 * processes such as `agent-traced reindex`) alongside one writer.
 *
 *   events(event_id, session_id, line, sha256, prev_hash, offset, length)
 *   sessions(session_id PRIMARY KEY, size, mtime_ns, inode)
 *
 * `sessions` records what each events.ndjson looked like (stat) when it
 * was indexed. The files stay the truth: a lookup hit is checked against
 * the stat of its session's file (and the line's bytes against the recorded
 * digest) and a changed session is re-indexed before answering; a miss
 * re-checks the whole store (list + one stat per session, re-indexing only
 * what changed, appeared or disappeared) and tries once more. A missing,
 * foreign or corrupt database file is deleted and rebuilt on open.
 *
 * Concurrency: readers take a connection from a small pool (one thread per
 * connection at a time, prepared statements kept); all writes go through
 * one writer connection under a mutex. */
#include "index.h"

#include "index_batch.h"
#include "sessions.h"
#include "lines.h"

#include "agenttrace/json.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION  1
#define MAX_READERS     64   /* pooled reader connections */
#define MAX_EVENT_ID    4096 /* bytes of an event id in a request */
#define MAX_CONFLICTS   1000 /* sessions listed in a 409 */
#define BUSY_TIMEOUT_MS 10000

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS events("
    " event_id TEXT NOT NULL, session_id TEXT NOT NULL, line INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL, prev_hash TEXT, offset INTEGER NOT NULL, length INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_by_id ON events(event_id, session_id, line);"
    "CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id);"
    "CREATE TABLE IF NOT EXISTS sessions("
    " session_id TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " inode INTEGER NOT NULL);";

#define SEL_COLS                                                                                             \
    "SELECT e.session_id, e.line, e.sha256, e.prev_hash, e.offset, e.length, s.size,"                        \
    " s.mtime_ns, s.inode FROM events e JOIN sessions s ON s.session_id = e.session_id "

typedef struct reader {
    sqlite3 *db;
    sqlite3_stmt *by_id;      /* ?1 event_id: every (session, line), by session then line */
    sqlite3_stmt *by_id_sess; /* ?1 event_id, ?2 session: the first line */
    sqlite3_stmt *sess_stat;  /* ?1 session: its recorded stat */
    struct reader *next;
} reader;

struct event_index {
    char *root;
    char *dbpath;
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    reader *free_readers;
    int nreaders;

    pthread_mutex_t write_mu; /* guards everything below */
    sqlite3 *wdb;
    sqlite3_stmt *ins_event, *del_events, *del_events_from, *upsert_sess, *del_sess, *list_sess, *sel_sess;
    at_json_doc doc;
    at_buf dec;
    uint64_t last_sync_ns; /* monotonic start time of the last full pass */

    /* sessions appended to since the last lookup (event_index_mark_changed) */
    pthread_mutex_t d_mu;
    char **dirty;
    size_t ndirty, dirty_cap;
    bool dirty_overflow; /* too many to list: the next lookup checks every session */

    /* imports whose rows are written by the worker thread, in order */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;   /* work arrived, or stop */
    pthread_cond_t q_idle; /* the queue became empty */
    struct job *q_head, *q_tail;
    size_t q_len;
    bool q_busy, q_stop, worker_live;
    pthread_t worker;
};

typedef struct job {
    char *sid;
    index_batch *rows;
    uint64_t inode, size;
    uint64_t from_line, prev_size; /* an extension in place (from_line > 0) */
    struct job *next;
} job;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What a session file looked like. size -1: no file. */
typedef struct {
    int64_t size, mtime_ns, inode;
} fstamp;

static fstamp stamp_of(const struct stat *st)
{
    fstamp f = {(int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                (int64_t)st->st_ino};
    return f;
}

static bool stamp_eq(fstamp a, fstamp b)
{
    return a.size == b.size && a.mtime_ns == b.mtime_ns && a.inode == b.inode;
}

static bool events_path(const event_index *ix, const char *sid, size_t n, char *out, size_t outlen)
{
    char id[AT_MAX_SESSION_ID + 1];
    if (n > AT_MAX_SESSION_ID)
        return false;
    memcpy(id, sid, n);
    id[n] = 0;
    return at_storage_path(ix->root, AT_PATH_EVENTS, id, out, outlen) == AT_OK;
}

static at_result db_fail(at_error *err, sqlite3 *db, const char *what)
{
    return at_error_set(err, AT_ERR_IO, -1, "event index: %s: %s", what,
                        db ? sqlite3_errmsg(db) : "cannot open");
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* ---- the writer -------------------------------------------------------------- */

static void writer_close(event_index *ix)
{
    sqlite3_stmt **st[] = {&ix->ins_event, &ix->del_events, &ix->del_events_from, &ix->upsert_sess,
                           &ix->del_sess,  &ix->list_sess,  &ix->sel_sess};
    for (size_t k = 0; k < sizeof st / sizeof st[0]; k++) {
        sqlite3_finalize(*st[k]);
        *st[k] = NULL;
    }
    sqlite3_close(ix->wdb);
    ix->wdb = NULL;
}

static void remove_db(const char *dbpath)
{
    char p[PATH_MAX];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", dbpath);
    unlink(p);
}

/* Opens the database, creating the schema; *fresh when it was created.
 * Returns SQLITE_OK, or the SQLite code of the first failure (NOTADB,
 * CORRUPT... mean the file must go). */
static int writer_open(event_index *ix, bool *fresh)
{
    *fresh = false;
    int rc = sqlite3_open_v2(ix->dbpath, &ix->wdb,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_timeout(ix->wdb, BUSY_TIMEOUT_MS);
    sqlite3_stmt *q = NULL;
    int version = -1;
    rc = sqlite3_prepare_v2(ix->wdb, "PRAGMA user_version", -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        version = sqlite3_column_int(q, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK)
        return rc;
    if (version != 0 && version != SCHEMA_VERSION)
        return SQLITE_NOTADB; /* someone else's file, or an older layout: rebuild */
    if (version == SCHEMA_VERSION) {
        /* cheap structural check: a damaged file fails here, not mid-lookup */
        rc = sqlite3_prepare_v2(ix->wdb, "PRAGMA quick_check(1)", -1, &q, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(q, 0);
            rc = t && strcmp((const char *)t, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
        }
        sqlite3_finalize(q);
        if (rc != SQLITE_OK)
            return rc;
    }
    if ((rc = exec(ix->wdb, "PRAGMA journal_mode=WAL")) != SQLITE_OK ||
        (rc = exec(ix->wdb, "PRAGMA synchronous=NORMAL")) != SQLITE_OK)
        return rc;
    if (version == 0) {
        char sql[sizeof SCHEMA + 64];
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sPRAGMA user_version=%d;COMMIT;", SCHEMA, SCHEMA_VERSION);
        if ((rc = exec(ix->wdb, sql)) != SQLITE_OK) {
            exec(ix->wdb, "ROLLBACK");
            return rc;
        }
        *fresh = true;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } prep[] = {
        {&ix->ins_event, "INSERT INTO events(event_id, session_id, line, sha256, prev_hash, offset,"
                         " length) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&ix->del_events, "DELETE FROM events WHERE session_id = ?1"},
        {&ix->del_events_from, "DELETE FROM events WHERE session_id = ?1 AND line >= ?2"},
        {&ix->upsert_sess, "INSERT OR REPLACE INTO sessions(session_id, size, mtime_ns, inode)"
                           " VALUES(?1, ?2, ?3, ?4)"},
        {&ix->del_sess, "DELETE FROM sessions WHERE session_id = ?1"},
        {&ix->list_sess, "SELECT session_id, size, mtime_ns, inode FROM sessions"
                         " ORDER BY session_id"},
        {&ix->sel_sess, "SELECT size, mtime_ns, inode FROM sessions WHERE session_id = ?1"},
    };
    for (size_t k = 0; k < sizeof prep / sizeof prep[0]; k++)
        if ((rc = sqlite3_prepare_v2(ix->wdb, prep[k].sql, -1, prep[k].st, NULL)) != SQLITE_OK)
            return rc;
    return SQLITE_OK;
}

/* One events row; SQLITE_DONE on success. */
static int insert_event(event_index *ix, const char *sid, size_t sidn, const char *id, size_t idn,
                        uint64_t line, const char *hex, const char *prev, size_t prevn, uint64_t off,
                        uint64_t len)
{
    sqlite3_stmt *q = ix->ins_event;
    sqlite3_bind_text(q, 1, id, (int)idn, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, sid, (int)sidn, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)line);
    sqlite3_bind_text(q, 4, hex, 64, SQLITE_STATIC);
    if (prev)
        sqlite3_bind_text(q, 5, prev, (int)prevn, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 5);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)off);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)len);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

/* Records what the session's file looked like when indexed. */
static at_result record_stamp(event_index *ix, const char *sid, size_t sidn, fstamp fs, at_error *err)
{
    sqlite3_stmt *u = ix->upsert_sess;
    sqlite3_bind_text(u, 1, sid, (int)sidn, SQLITE_STATIC);
    sqlite3_bind_int64(u, 2, fs.size);
    sqlite3_bind_int64(u, 3, fs.mtime_ns);
    sqlite3_bind_int64(u, 4, fs.inode);
    int rc = sqlite3_step(u);
    sqlite3_reset(u);
    return rc == SQLITE_DONE ? AT_OK : db_fail(err, ix->wdb, "update");
}

static at_result delete_events(event_index *ix, const char *sid, size_t sidn, at_error *err)
{
    sqlite3_bind_text(ix->del_events, 1, sid, (int)sidn, SQLITE_STATIC);
    int rc = sqlite3_step(ix->del_events);
    sqlite3_reset(ix->del_events);
    return rc == SQLITE_DONE ? AT_OK : db_fail(err, ix->wdb, "delete");
}

/* Indexes one session's events.ndjson (caller holds write_mu, inside a
 * transaction). A missing file drops the session. *events counts lines
 * indexed. */
static at_result index_session(event_index *ix, const char *sid, size_t sidn, int64_t *events, at_error *err)
{
    char path[PATH_MAX];
    if (!events_path(ix, sid, sidn, path, sizeof path))
        return at_error_set(err, AT_ERR_INVALID, -1, "session id too long");
    at_result r = delete_events(ix, sid, sidn, err);
    if (r != AT_OK)
        return r;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return at_error_set(err, AT_ERR_IO, -1, "%s: %s", path, strerror(errno));
        sqlite3_bind_text(ix->del_sess, 1, sid, (int)sidn, SQLITE_STATIC);
        rc = sqlite3_step(ix->del_sess);
        sqlite3_reset(ix->del_sess);
        return rc == SQLITE_DONE ? AT_OK : db_fail(err, ix->wdb, "delete");
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return at_error_set(err, AT_ERR_IO, -1, "%s: %s", path, strerror(e));
    }
    /* Only the bytes that the recorded stat describes: a concurrent append
     * changes size and mtime, so the next check re-indexes. */
    fstamp fs = stamp_of(&st);
    at_lines lr;
    at_lines_init(&lr, fd, (uint64_t)st.st_size);
    at_line ln;
    uint8_t dig[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_buf prev;
    at_buf_init(&prev, 4096);
    bool db_failed = false;
    while ((r = at_lines_next(&lr, &ln)) == AT_OK) {
        if (!ln.p || ln.n == 0)
            continue;
        at_error perr;
        if (at_json_parse(&ix->doc, ln.p, ln.n, &perr) != AT_OK || !at_json_is(&ix->doc, 0, AT_JSON_OBJECT))
            continue;
        uint32_t idn = at_json_get(&ix->doc, 0, "event_id");
        if (!at_json_is(&ix->doc, idn, AT_JSON_STRING))
            continue;
        at_buf_reset(&ix->dec);
        at_buf_reset(&prev);
        if ((r = at_json_str_decode(&ix->doc, idn, &ix->dec)) != AT_OK)
            break;
        uint32_t ph = at_json_get(&ix->doc, 0, "prev_hash");
        bool has_prev = at_json_is(&ix->doc, ph, AT_JSON_STRING);
        if (has_prev && at_json_str_decode(&ix->doc, ph, &prev) != AT_OK)
            has_prev = false; /* absurdly long: not a digest anyway */
        at_sha256_oneshot(ln.p, ln.n, dig);
        at_hex(dig, AT_SHA256_LEN, hex);
        rc = insert_event(ix, sid, sidn, ix->dec.data ? ix->dec.data : "", ix->dec.len, ln.no, hex,
                          has_prev ? (prev.data ? prev.data : "") : NULL, prev.len, ln.off, ln.n);
        if (rc != SQLITE_DONE) {
            r = db_fail(err, ix->wdb, "insert");
            db_failed = true;
            break;
        }
        (*events)++;
    }
    at_buf_fini(&prev);
    at_lines_fini(&lr);
    close(fd);
    if (db_failed)
        return r;
    if (r != AT_ERR_NOT_FOUND)
        return at_error_set(err, r, -1, "%s: %s", path, at_result_str(r));
    return record_stamp(ix, sid, sidn, fs, err);
}

typedef struct {
    char *sid;
    size_t n;
    fstamp fs;
    bool seen;
} recorded;

static int cmp_rec(const void *pa, const void *pb)
{
    const recorded *a = pa, *b = pb;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->sid, b->sid, n);
    return c ? c : (a->n < b->n ? -1 : a->n > b->n);
}

/* The incremental pass (caller holds write_mu, inside a transaction). */
static at_result sync_locked(event_index *ix, int64_t *reindexed, at_error *err)
{
    recorded *rec = NULL;
    size_t nrec = 0, cap = 0;
    at_result r = AT_OK;
    int rc;
    while ((rc = sqlite3_step(ix->list_sess)) == SQLITE_ROW) {
        if (nrec == cap) {
            size_t nc = cap ? cap * 2 : 256;
            recorded *p = realloc(rec, nc * sizeof *p);
            if (!p) {
                r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
                break;
            }
            rec = p;
            cap = nc;
        }
        const void *t = sqlite3_column_blob(ix->list_sess, 0);
        int tn = sqlite3_column_bytes(ix->list_sess, 0);
        recorded *x = &rec[nrec];
        x->sid = malloc((size_t)tn + 1);
        if (!x->sid) {
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            break;
        }
        if (tn)
            memcpy(x->sid, t, (size_t)tn);
        x->sid[tn] = 0;
        x->n = (size_t)tn;
        x->fs.size = sqlite3_column_int64(ix->list_sess, 1);
        x->fs.mtime_ns = sqlite3_column_int64(ix->list_sess, 2);
        x->fs.inode = sqlite3_column_int64(ix->list_sess, 3);
        x->seen = false;
        nrec++;
    }
    sqlite3_reset(ix->list_sess);
    if (r == AT_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_fail(err, ix->wdb, "list");
    if (r != AT_OK)
        goto out;
    if (nrec > 1)
        qsort(rec, nrec, sizeof *rec, cmp_rec); /* SQLite orders by memcmp too; be sure */

    DIR *d = opendir(ix->root);
    if (!d) {
        r = at_error_set(err, AT_ERR_IO, -1, "%s: %s", ix->root, strerror(errno));
        goto out;
    }
    struct dirent *e;
    char path[PATH_MAX];
    int64_t events = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (!at_session_id_ok(e->d_name, n) || !events_path(ix, e->d_name, n, path, sizeof path))
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* not a session with events: dropped below if it was one */
        recorded key = {e->d_name, n, {0, 0, 0}, false};
        recorded *x = nrec ? bsearch(&key, rec, nrec, sizeof *rec, cmp_rec) : NULL;
        if (x) {
            x->seen = true;
            if (stamp_eq(x->fs, stamp_of(&st)))
                continue;
        }
        if ((r = index_session(ix, e->d_name, n, &events, err)) != AT_OK)
            break;
        if (reindexed)
            (*reindexed)++;
    }
    closedir(d);
    for (size_t k = 0; r == AT_OK && k < nrec; k++) {
        if (rec[k].seen)
            continue;
        /* gone (or no longer a regular events file): index_session drops it */
        if ((r = index_session(ix, rec[k].sid, rec[k].n, &events, err)) != AT_OK)
            break;
        if (reindexed)
            (*reindexed)++;
    }
out:
    for (size_t k = 0; k < nrec; k++)
        free(rec[k].sid);
    free(rec);
    return r;
}

/* The full pass (wipe: from scratch) in one transaction under write_mu.
 * Skipped when a pass started at or after `since` (a lookup miss that
 * waited for a concurrent pass has its answer already). */
static at_result write_tx(event_index *ix, bool wipe, uint64_t since, at_error *err)
{
    pthread_mutex_lock(&ix->write_mu);
    at_result r = AT_OK;
    if (since && ix->last_sync_ns >= since)
        goto out;
    ix->last_sync_ns = now_ns();
    if (exec(ix->wdb, "BEGIN IMMEDIATE") != SQLITE_OK) {
        r = db_fail(err, ix->wdb, "begin");
        goto out;
    }
    if (wipe && (exec(ix->wdb, "DELETE FROM events") != SQLITE_OK ||
                 exec(ix->wdb, "DELETE FROM sessions") != SQLITE_OK))
        r = db_fail(err, ix->wdb, "wipe");
    if (r == AT_OK)
        r = sync_locked(ix, NULL, err);
    if (r == AT_OK && exec(ix->wdb, "COMMIT") != SQLITE_OK)
        r = db_fail(err, ix->wdb, "commit");
    if (r != AT_OK)
        exec(ix->wdb, "ROLLBACK");
out:
    pthread_mutex_unlock(&ix->write_mu);
    return r;
}

at_result event_index_sync(event_index *ix, at_error *err)
{
    return write_tx(ix, false, 0, err);
}

at_result event_index_rebuild(event_index *ix, at_error *err)
{
    return write_tx(ix, true, 0, err);
}

/* The stamp recorded for a session (caller holds write_mu); false when none. */
static bool recorded_stamp(event_index *ix, const char *sid, size_t n, fstamp *rec)
{
    sqlite3_bind_text(ix->sel_sess, 1, sid, (int)n, SQLITE_STATIC);
    bool known = sqlite3_step(ix->sel_sess) == SQLITE_ROW;
    *rec = (fstamp){0, 0, 0};
    if (known) {
        rec->size = sqlite3_column_int64(ix->sel_sess, 0);
        rec->mtime_ns = sqlite3_column_int64(ix->sel_sess, 1);
        rec->inode = sqlite3_column_int64(ix->sel_sess, 2);
    }
    sqlite3_reset(ix->sel_sess);
    sqlite3_clear_bindings(ix->sel_sess);
    return known;
}

/* The events.ndjson path of a session named by a caller; false when the
 * id is not one a session can have. */
static bool checked_events_path(const event_index *ix, const char *sid, size_t *n, char path[PATH_MAX])
{
    if (!ix || !sid)
        return false;
    *n = strlen(sid);
    return at_session_id_ok(sid, *n) && events_path(ix, sid, *n, path, PATH_MAX);
}

void event_index_refresh_session(event_index *ix, const char *session_id)
{
    size_t n;
    char path[PATH_MAX];
    if (!checked_events_path(ix, session_id, &n, path))
        return;
    at_error err;
    int64_t events = 0;
    pthread_mutex_lock(&ix->write_mu);
    /* current already (another thread got here first)? */
    struct stat st;
    bool exists = stat(path, &st) == 0;
    fstamp rec;
    bool known = recorded_stamp(ix, session_id, n, &rec);
    bool current = exists ? known && stamp_eq(rec, stamp_of(&st)) : !known;
    if (!current && exec(ix->wdb, "BEGIN IMMEDIATE") == SQLITE_OK) {
        if (index_session(ix, session_id, n, &events, &err) != AT_OK || exec(ix->wdb, "COMMIT") != SQLITE_OK)
            exec(ix->wdb, "ROLLBACK");
    }
    pthread_mutex_unlock(&ix->write_mu);
}

#define MAX_DIRTY 4096

void event_index_mark_changed(event_index *ix, const char *session_id)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->d_mu);
    bool known = false;
    for (size_t k = 0; !known && k < ix->ndirty; k++)
        known = strcmp(ix->dirty[k], session_id) == 0;
    if (!known && !ix->dirty_overflow) {
        char *d = NULL;
        if (ix->ndirty == ix->dirty_cap && ix->dirty_cap < MAX_DIRTY) {
            size_t cap = ix->dirty_cap ? ix->dirty_cap * 2 : 16;
            char **nd = realloc(ix->dirty, cap * sizeof *nd);
            if (nd) {
                ix->dirty = nd;
                ix->dirty_cap = cap;
            }
        }
        if (ix->ndirty < ix->dirty_cap && (d = strdup(session_id)))
            ix->dirty[ix->ndirty++] = d;
        else
            ix->dirty_overflow = true;
    }
    pthread_mutex_unlock(&ix->d_mu);
}

/* Before a lookup: the sessions appended to since the last one are brought
 * up to date (an event id they gained may make a unique hit a conflict). */
static at_result refresh_changed(event_index *ix, at_error *err)
{
    pthread_mutex_lock(&ix->d_mu);
    char **list = ix->dirty;
    size_t n = ix->ndirty;
    bool all = ix->dirty_overflow;
    ix->dirty = NULL;
    ix->ndirty = ix->dirty_cap = 0;
    ix->dirty_overflow = false;
    pthread_mutex_unlock(&ix->d_mu);
    for (size_t k = 0; k < n; k++) {
        if (!all)
            event_index_refresh_session(ix, list[k]);
        free(list[k]);
    }
    free(list);
    return all ? write_tx(ix, false, now_ns(), err) : AT_OK;
}

static at_result delete_events_from(event_index *ix, const char *sid, size_t sidn, uint64_t line,
                                    at_error *err)
{
    sqlite3_bind_text(ix->del_events_from, 1, sid, (int)sidn, SQLITE_STATIC);
    sqlite3_bind_int64(ix->del_events_from, 2, (sqlite3_int64)line);
    int rc = sqlite3_step(ix->del_events_from);
    sqlite3_reset(ix->del_events_from);
    return rc == SQLITE_DONE ? AT_OK : db_fail(err, ix->wdb, "delete");
}

static void refresh_from_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                               uint64_t size, uint64_t from_line, uint64_t prev_size)
{
    size_t n;
    char path[PATH_MAX];
    if (!checked_events_path(ix, session_id, &n, path))
        return;
    at_result r = AT_ERR_INVALID;
    at_error err;
    pthread_mutex_lock(&ix->write_mu);
    /* The rows describe the staged bytes: usable only while events.ndjson
     * is still that file (objects are read-only, so same inode and size
     * means same bytes). A later change gets a new stamp and is re-read. */
    struct stat st;
    bool ours = index_batch_usable(b) && stat(path, &st) == 0 && (uint64_t)st.st_ino == inode &&
                (uint64_t)st.st_size == size;
    fstamp rec;
    bool have_rec = recorded_stamp(ix, session_id, n, &rec);
    /* an extension keeps the rows before from_line only if they describe
     * the file as it was: same inode, the previous size */
    if (ours && from_line && !(have_rec && (uint64_t)rec.inode == inode && (uint64_t)rec.size == prev_size))
        ours = false;
    if (ours && have_rec && stamp_eq(rec, stamp_of(&st)))
        r = AT_OK; /* a lookup indexed it already */
    else if (ours && exec(ix->wdb, "BEGIN IMMEDIATE") == SQLITE_OK) {
        r = from_line ? delete_events_from(ix, session_id, n, from_line, &err)
                      : delete_events(ix, session_id, n, &err);
        if (r == AT_OK)
            r = index_batch_rewind(b);
        index_row row;
        while (r == AT_OK && (r = index_batch_next(b, &row)) == AT_OK)
            if (insert_event(ix, session_id, n, row.event_id, row.event_id_len, row.no, row.sha256,
                             row.prev_hash, row.prev_hash_len, row.off, row.len) != SQLITE_DONE)
                r = db_fail(&err, ix->wdb, "insert");
        if (r == AT_ERR_NOT_FOUND)
            r = record_stamp(ix, session_id, n, stamp_of(&st), &err);
        if (r == AT_OK && exec(ix->wdb, "COMMIT") != SQLITE_OK)
            r = AT_ERR_IO;
        if (r != AT_OK)
            exec(ix->wdb, "ROLLBACK");
    }
    pthread_mutex_unlock(&ix->write_mu);
    if (r != AT_OK)
        event_index_refresh_session(ix, session_id);
}

/* ---- the import queue -------------------------------------------------------------
 * Writing the rows of a large import takes SQLite a good fraction of the
 * import itself, so a worker thread does it after the response is sent.
 * Nothing depends on it for correctness: a lookup that misses, or whose
 * hit is stale, waits for the queue to drain and then checks the files. */

#define QUEUE_MAX 8 /* beyond this the importing thread writes its own rows */

static void job_free(job *j)
{
    if (!j)
        return;
    index_batch_free(j->rows);
    free(j->sid);
    free(j);
}

static void *worker_main(void *arg)
{
    event_index *ix = arg;
    pthread_mutex_lock(&ix->q_mu);
    for (;;) {
        while (!ix->q_head && !ix->q_stop)
            pthread_cond_wait(&ix->q_cv, &ix->q_mu);
        job *j = ix->q_head;
        if (!j)
            break; /* stopping, and nothing left to do */
        ix->q_head = j->next;
        if (!ix->q_head)
            ix->q_tail = NULL;
        ix->q_len--;
        ix->q_busy = true;
        pthread_mutex_unlock(&ix->q_mu);
        refresh_from_batch(ix, j->sid, j->rows, j->inode, j->size, j->from_line, j->prev_size);
        job_free(j);
        pthread_mutex_lock(&ix->q_mu);
        ix->q_busy = false;
        if (!ix->q_head)
            pthread_cond_broadcast(&ix->q_idle);
    }
    pthread_mutex_unlock(&ix->q_mu);
    return NULL;
}

static void queue_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                        uint64_t size, uint64_t from_line, uint64_t prev_size)
{
    if (!ix || !session_id) {
        index_batch_free(b);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (j && !(j->sid = strdup(session_id))) {
        free(j);
        j = NULL;
    }
    pthread_mutex_lock(&ix->q_mu);
    bool queued = false;
    if (j && ix->q_len < QUEUE_MAX && !ix->q_stop) {
        if (!ix->worker_live && pthread_create(&ix->worker, NULL, worker_main, ix) == 0)
            ix->worker_live = true;
        if (ix->worker_live) {
            j->rows = b;
            j->inode = inode;
            j->size = size;
            j->from_line = from_line;
            j->prev_size = prev_size;
            if (ix->q_tail)
                ix->q_tail->next = j;
            else
                ix->q_head = j;
            ix->q_tail = j;
            ix->q_len++;
            queued = true;
            pthread_cond_signal(&ix->q_cv);
        }
    }
    pthread_mutex_unlock(&ix->q_mu);
    if (queued)
        return;
    job_free(j);
    refresh_from_batch(ix, session_id, b, inode, size, from_line, prev_size);
    index_batch_free(b);
}

void event_index_refresh_from_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                                    uint64_t size)
{
    queue_batch(ix, session_id, b, inode, size, 0, 0);
}

void event_index_extend_from_batch(event_index *ix, const char *session_id, index_batch *b, uint64_t inode,
                                   uint64_t size, uint64_t from_line, uint64_t prev_size)
{
    queue_batch(ix, session_id, b, inode, size, from_line, prev_size);
}

void event_index_drain(event_index *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->q_mu);
    while (ix->q_head || ix->q_busy)
        pthread_cond_wait(&ix->q_idle, &ix->q_mu);
    pthread_mutex_unlock(&ix->q_mu);
}

size_t event_index_pending(event_index *ix)
{
    if (!ix)
        return 0;
    pthread_mutex_lock(&ix->q_mu);
    size_t n = ix->q_len + (ix->q_busy ? 1 : 0);
    pthread_mutex_unlock(&ix->q_mu);
    return n;
}

static void worker_stop(event_index *ix)
{
    pthread_mutex_lock(&ix->q_mu);
    ix->q_stop = true;
    pthread_cond_signal(&ix->q_cv);
    bool live = ix->worker_live;
    pthread_mutex_unlock(&ix->q_mu);
    if (live)
        pthread_join(ix->worker, NULL); /* it finishes the queue first */
    ix->worker_live = false;
}

at_result event_index_counts(event_index *ix, int64_t *sessions, int64_t *events, at_error *err)
{
    at_result r = AT_OK;
    pthread_mutex_lock(&ix->write_mu);
    const char *sql[2] = {"SELECT count(*) FROM sessions", "SELECT count(*) FROM events"};
    int64_t *out[2] = {sessions, events};
    for (int k = 0; k < 2 && r == AT_OK; k++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(ix->wdb, sql[k], -1, &q, NULL) != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW)
            r = db_fail(err, ix->wdb, "count");
        else
            *out[k] = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&ix->write_mu);
    return r;
}

/* ---- open / close ----------------------------------------------------------------- */

static void reader_free(reader *rd)
{
    if (!rd)
        return;
    sqlite3_finalize(rd->by_id);
    sqlite3_finalize(rd->by_id_sess);
    sqlite3_finalize(rd->sess_stat);
    sqlite3_close(rd->db);
    free(rd);
}

void event_index_close(event_index *ix)
{
    if (!ix)
        return;
    worker_stop(ix);
    while (ix->free_readers) {
        reader *rd = ix->free_readers;
        ix->free_readers = rd->next;
        reader_free(rd);
    }
    writer_close(ix);
    at_json_doc_fini(&ix->doc);
    at_buf_fini(&ix->dec);
    pthread_mutex_destroy(&ix->pool_mu);
    pthread_cond_destroy(&ix->pool_cv);
    pthread_mutex_destroy(&ix->write_mu);
    for (size_t k = 0; k < ix->ndirty; k++)
        free(ix->dirty[k]);
    free(ix->dirty);
    pthread_mutex_destroy(&ix->d_mu);
    pthread_mutex_destroy(&ix->q_mu);
    pthread_cond_destroy(&ix->q_cv);
    pthread_cond_destroy(&ix->q_idle);
    free(ix->root);
    free(ix->dbpath);
    free(ix);
}

event_index *event_index_open_ex(const char *root, bool sync, at_error *err)
{
    event_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ix->pool_mu, NULL);
    pthread_cond_init(&ix->pool_cv, NULL);
    pthread_mutex_init(&ix->write_mu, NULL);
    pthread_mutex_init(&ix->d_mu, NULL);
    pthread_mutex_init(&ix->q_mu, NULL);
    pthread_cond_init(&ix->q_cv, NULL);
    pthread_cond_init(&ix->q_idle, NULL);
    at_json_doc_init(&ix->doc);
    at_buf_init(&ix->dec, AT_MAX_LINE_BYTES);
    char dir[PATH_MAX], db[PATH_MAX];
    if (at_storage_path(root, AT_PATH_PRIVATE, NULL, dir, sizeof dir) != AT_OK ||
        at_storage_path(root, AT_PATH_INDEX, NULL, db, sizeof db) != AT_OK) {
        at_error_set(err, AT_ERR_INVALID, -1, "storage path too long");
        goto fail;
    }
    ix->root = strdup(root);
    ix->dbpath = strdup(db);
    if (!ix->root || !ix->dbpath) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        goto fail;
    }
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        at_error_set(err, AT_ERR_NOT_FOUND, -1, "%s: not a storage directory", root);
        goto fail;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        at_error_set(err, AT_ERR_IO, -1, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    bool fresh = false;
    int rc = writer_open(ix, &fresh);
    if (rc != SQLITE_OK) {
        /* corrupt or foreign: the index is derived data, start over */
        writer_close(ix);
        remove_db(ix->dbpath);
        rc = writer_open(ix, &fresh);
        if (rc != SQLITE_OK) {
            db_fail(err, ix->wdb, ix->dbpath);
            goto fail;
        }
    }
    if ((sync || fresh) && write_tx(ix, fresh, 0, err) != AT_OK)
        goto fail;
    return ix;
fail:
    event_index_close(ix);
    return NULL;
}

event_index *event_index_open(const char *root, at_error *err)
{
    return event_index_open_ex(root, true, err);
}

/* ---- readers ------------------------------------------------------------------------ */

static reader *reader_get(event_index *ix)
{
    pthread_mutex_lock(&ix->pool_mu);
    while (!ix->free_readers && ix->nreaders >= MAX_READERS)
        pthread_cond_wait(&ix->pool_cv, &ix->pool_mu);
    reader *rd = ix->free_readers;
    if (rd) {
        ix->free_readers = rd->next;
        pthread_mutex_unlock(&ix->pool_mu);
        return rd;
    }
    ix->nreaders++;
    pthread_mutex_unlock(&ix->pool_mu);

    rd = calloc(1, sizeof *rd);
    if (!rd)
        goto fail;
    if (sqlite3_open_v2(ix->dbpath, &rd->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(rd->db, BUSY_TIMEOUT_MS);
    if (sqlite3_prepare_v2(rd->db, SEL_COLS "WHERE e.event_id = ?1 ORDER BY e.session_id, e.line", -1,
                           &rd->by_id, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(rd->db,
                           SEL_COLS "WHERE e.event_id = ?1 AND e.session_id = ?2 ORDER BY e.line"
                                    " LIMIT 1",
                           -1, &rd->by_id_sess, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(rd->db, "SELECT size, mtime_ns, inode FROM sessions WHERE session_id = ?1", -1,
                           &rd->sess_stat, NULL) != SQLITE_OK)
        goto fail;
    return rd;
fail:
    reader_free(rd);
    pthread_mutex_lock(&ix->pool_mu);
    ix->nreaders--;
    pthread_cond_signal(&ix->pool_cv);
    pthread_mutex_unlock(&ix->pool_mu);
    return NULL;
}

static void reader_put(event_index *ix, reader *rd)
{
    pthread_mutex_lock(&ix->pool_mu);
    rd->next = ix->free_readers;
    ix->free_readers = rd;
    pthread_cond_signal(&ix->pool_cv);
    pthread_mutex_unlock(&ix->pool_mu);
}

/* One indexed line, copied out of a statement row. */
typedef struct {
    char *sid;
    size_t sidn;
    int64_t line, offset, length;
    char sha[AT_SHA256_HEX];
    char *prev; /* NULL: no prev_hash */
    size_t prevn;
    fstamp fs;
} hit;

static void hit_fini(hit *h)
{
    free(h->sid);
    free(h->prev);
    memset(h, 0, sizeof *h);
}

static char *dup_col(sqlite3_stmt *q, int c, size_t *n)
{
    const void *p = sqlite3_column_blob(q, c);
    int len = sqlite3_column_bytes(q, c);
    char *s = malloc((size_t)len + 1);
    if (!s)
        return NULL;
    if (len)
        memcpy(s, p, (size_t)len);
    s[len] = 0;
    *n = (size_t)len;
    return s;
}

static bool hit_read(sqlite3_stmt *q, hit *h)
{
    memset(h, 0, sizeof *h);
    h->sid = dup_col(q, 0, &h->sidn);
    h->line = sqlite3_column_int64(q, 1);
    const unsigned char *sha = sqlite3_column_text(q, 2);
    snprintf(h->sha, sizeof h->sha, "%s", sha ? (const char *)sha : "");
    if (sqlite3_column_type(q, 3) != SQLITE_NULL && !(h->prev = dup_col(q, 3, &h->prevn))) {
        hit_fini(h);
        return false;
    }
    h->offset = sqlite3_column_int64(q, 4);
    h->length = sqlite3_column_int64(q, 5);
    h->fs.size = sqlite3_column_int64(q, 6);
    h->fs.mtime_ns = sqlite3_column_int64(q, 7);
    h->fs.inode = sqlite3_column_int64(q, 8);
    if (h->sid)
        return true;
    hit_fini(h);
    return false;
}

/* Is the recorded stat of a session still its file's? */
static bool session_current(event_index *ix, const char *sid, size_t n, fstamp rec)
{
    char path[PATH_MAX];
    struct stat st;
    if (!events_path(ix, sid, n, path, sizeof path) || stat(path, &st) != 0)
        return false;
    return stamp_eq(rec, stamp_of(&st));
}

typedef enum { READ_OK, READ_STALE, READ_FAIL } read_status;

/* Reads the hit's line into out and checks it against the record. */
static read_status read_line(event_index *ix, const hit *h, at_buf *out)
{
    char path[PATH_MAX];
    if (!events_path(ix, h->sid, h->sidn, path, sizeof path) || h->length < 0 ||
        (uint64_t)h->length > AT_MAX_LINE_BYTES || h->offset < 0)
        return READ_FAIL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return READ_STALE;
    struct stat st;
    read_status rs = READ_STALE;
    if (fstat(fd, &st) != 0 || !stamp_eq(h->fs, stamp_of(&st)))
        goto out;
    if (at_buf_reserve(out, (size_t)h->length) != AT_OK) {
        rs = READ_FAIL;
        goto out;
    }
    size_t got = 0, want = (size_t)h->length;
    while (got < want) {
        ssize_t k = pread(fd, out->data + out->len + got, want - got, (off_t)h->offset + (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto out;
        got += (size_t)k;
    }
    uint8_t dig[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(out->data + out->len, want, dig);
    at_hex(dig, AT_SHA256_LEN, hex);
    if (strcmp(hex, h->sha) != 0)
        goto out;
    out->len += want;
    out->data[out->len] = 0;
    rs = READ_OK;
out:
    close(fd);
    return rs;
}

/* 200 body: {"session_id", "line", "sha256", "prev_hash", "event"} */
at_result index_answer_head(at_buf *b, const char *sid, size_t sidn, int64_t line, const char *sha,
                            const char *prev, size_t prevn)
{
    at_buf_reset(b);
    at_result r = at_buf_adds(b, "{\"session_id\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(b, sid, sidn);
    if (r == AT_OK)
        r = at_buf_printf(b, ", \"line\": %lld, \"sha256\": \"%s\", \"prev_hash\": ", (long long)line, sha);
    if (r == AT_OK)
        r = prev ? at_json_write_wtf8(b, prev, prevn) : at_buf_adds(b, "null");
    if (r == AT_OK)
        r = at_buf_adds(b, ", \"event\": ");
    return r;
}

static read_status answer(event_index *ix, const hit *h, http_response *resp)
{
    at_buf *b = &resp->body;
    if (index_answer_head(b, h->sid, h->sidn, h->line, h->sha, h->prev, h->prevn) != AT_OK)
        return READ_FAIL;
    read_status rs = read_line(ix, h, b);
    if (rs != READ_OK)
        return rs;
    if (at_buf_addc(b, '}') != AT_OK)
        return READ_FAIL;
    resp->status = 200;
    resp->content_type = "application/json";
    return READ_OK;
}

static const char *hit_sid(const void *hits, size_t k, size_t *n)
{
    const hit *h = &((const hit *)hits)[k];
    *n = h->sidn;
    return h->sid;
}

void index_conflict(const char *event_id, size_t idn, const void *hits, size_t n, index_sid_fn sid_of, bool more,
                    http_response *resp)
{
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_adds(&b, "{\"error\": ");
    at_buf msg;
    at_buf_init(&msg, 0);
    if (r == AT_OK)
        r = at_buf_adds(&msg, "event id is in several sessions: ");
    if (r == AT_OK)
        r = at_buf_add(&msg, event_id, idn);
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, msg.data, msg.len);
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"sessions\": [");
    for (size_t k = 0; r == AT_OK && k < n; k++) {
        size_t sn;
        const char *s = sid_of(hits, k, &sn);
        if (k)
            r = at_buf_adds(&b, ", ");
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, s, sn);
    }
    if (r == AT_OK)
        r = at_buf_adds(&b, more ? "], \"truncated\": true}" : "]}");
    if (r == AT_OK)
        http_response_json(resp, 409, b.data, b.len);
    else
        http_response_error(resp, 500, "out of memory");
    at_buf_fini(&msg);
    at_buf_fini(&b);
}

/* Collects the hits of a statement: the first line of each session.
 * *hits grows as needed (*cap entries). */
static int collect(sqlite3_stmt *q, hit **hitsp, size_t *cap, size_t *n, bool *more)
{
    int rc;
    *n = 0;
    *more = false;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t sn = (size_t)sqlite3_column_bytes(q, 0);
        const void *sp = sqlite3_column_blob(q, 0);
        hit *hits = *hitsp;
        if (*n && hits[*n - 1].sidn == sn && memcmp(hits[*n - 1].sid, sp, sn) == 0)
            continue; /* a later line of the same session */
        if (*n == MAX_CONFLICTS) {
            *more = true;
            break;
        }
        if (*n == *cap) {
            size_t nc = *cap * 4;
            hit *p = realloc(hits, nc * sizeof *p);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            *hitsp = hits = p;
            *cap = nc;
        }
        if (!hit_read(q, &hits[*n])) {
            rc = SQLITE_NOMEM;
            break;
        }
        (*n)++;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

void index_lookup(server_ctx *ctx, const char *event_id, const char *session, http_response *resp)
{
    if (at_store_is_database(ctx->store)) {
        lookup_db(ctx, event_id, session, resp);
        return;
    }
    event_index *ix = server_index(ctx);
    if (!ix) {
        http_response_error(
            resp, 503,
            "event index not open yet (being built at startup, or it failed: see the server log); retry");
        return;
    }
    size_t idn = strlen(event_id);
    if (idn > MAX_EVENT_ID) {
        http_response_error(resp, 400, "event id too long");
        return;
    }
    char *sid = NULL;
    if (session && sessions_resolve(ctx, session, &sid, resp) != 200)
        return;
    size_t sidn = sid ? strlen(sid) : 0;
    size_t n = 0, cap = 4;
    bool more = false;
    hit *hits = malloc(cap * sizeof *hits);
    reader *rd = hits ? reader_get(ix) : NULL;
    if (!rd) {
        http_response_error(resp, 500, "event index unavailable");
        goto out;
    }
    at_error derr;
    if (refresh_changed(ix, &derr) != AT_OK) {
        http_response_error(resp, 500, "%s", derr.message);
        goto out;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        uint64_t queried = now_ns();
        for (size_t k = 0; k < n; k++)
            hit_fini(&hits[k]);
        n = 0;
        if (sid && attempt == 0) {
            /* the one session concerned: bring it up to date first */
            sqlite3_bind_text(rd->sess_stat, 1, sid, (int)sidn, SQLITE_STATIC);
            fstamp rec = {-2, 0, 0};
            if (sqlite3_step(rd->sess_stat) == SQLITE_ROW) {
                rec.size = sqlite3_column_int64(rd->sess_stat, 0);
                rec.mtime_ns = sqlite3_column_int64(rd->sess_stat, 1);
                rec.inode = sqlite3_column_int64(rd->sess_stat, 2);
            }
            sqlite3_reset(rd->sess_stat);
            sqlite3_clear_bindings(rd->sess_stat);
            if (!session_current(ix, sid, sidn, rec)) {
                event_index_drain(ix);
                event_index_refresh_session(ix, sid);
            }
        }
        sqlite3_stmt *q = sid ? rd->by_id_sess : rd->by_id;
        sqlite3_bind_text(q, 1, event_id, (int)idn, SQLITE_STATIC);
        if (sid)
            sqlite3_bind_text(q, 2, sid, (int)sidn, SQLITE_STATIC);
        if (collect(q, &hits, &cap, &n, &more) != SQLITE_OK) {
            http_response_error(resp, 500, "event index: %s", sqlite3_errmsg(rd->db));
            goto out;
        }
        if (n == 0) {
            if (sid || attempt > 0)
                break;
            event_index_drain(ix); /* a fresh import's rows may be on their way */
            at_error err;
            if (write_tx(ix, false, queried, &err) != AT_OK) {
                http_response_error(resp, 500, "%s", err.message);
                goto out;
            }
            continue;
        }
        /* hits: only their sessions' files are checked */
        bool stale = false;
        for (size_t k = 0; k < n; k++) {
            if (!session_current(ix, hits[k].sid, hits[k].sidn, hits[k].fs)) {
                event_index_drain(ix);
                event_index_refresh_session(ix, hits[k].sid);
                stale = true;
            }
        }
        if (stale)
            continue;
        if (n > 1) {
            index_conflict(event_id, idn, hits, n, hit_sid, more, resp);
            goto out;
        }
        read_status rs = answer(ix, &hits[0], resp);
        if (rs == READ_OK)
            goto out;
        if (rs == READ_FAIL) {
            http_response_error(resp, 500, "cannot read the event");
            goto out;
        }
        event_index_refresh_session(ix, hits[0].sid); /* changed under us */
    }
    if (n == 0)
        http_response_error(resp, 404, "event not found: %s", event_id);
    else
        http_response_error(resp, 503, "session changing too fast, retry");
out:
    if (hits) {
        for (size_t k = 0; k < n; k++)
            hit_fini(&hits[k]);
        free(hits);
    }
    if (rd)
        reader_put(ix, rd);
    free(sid);
}
