/* cli_db.c - `agent-traced db`: the PostgreSQL schema (migrate, status),
 * and moving a storage directory into the database and back out (import,
 * export). schema.h describes the tables.
 *
 * import copies every workspace of a storage directory: each session's
 * meta.json bytes, every version record, and each version's events as a
 * content-addressed object streamed in DB_CHUNK pieces (checked against
 * the version's SHA-256 on the way: a store whose bytes do not match its
 * history is refused, naming the session and version). One transaction a
 * session, so a failure leaves whole sessions only. Run again it adds only
 * what is new: a session whose stored versions are a prefix of the
 * directory's gets the rest; one whose history differs is an error.
 *
 * export writes the database's sessions out as a storage directory
 * agent-strace reads (<dir>/<id>/meta.json and events.ndjson of the current
 * version, workspaces under <dir>/workspaces/<id>/), each file written to a
 * temporary name, synced and renamed; then the directory is opened as a
 * store, which gives every session its history from there on. */
#include "cli.h"

#include "db/dbindex.h"
#include "db/dbstore.h"
#include "db/pg.h"
#include "db/schema.h"
#include "http/auth.h"
#include "sessions.h"

#include "agenttrace/sha256.h"
#include "agenttrace/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: agent-traced db migrate [--database URL]\n"
    "       agent-traced db status [--database URL]\n"
    "       agent-traced db import --storage DIR [--database URL]\n"
    "       agent-traced db export --storage DIR [--database URL]\n"
    "       agent-traced db keys load --keys FILE [--database URL]\n"
    "       agent-traced db keys list [--database URL]\n"
    "\n"
    "The PostgreSQL database of `serve --database` (libpq; URL such as\n"
    "postgres://user@host:5432/db, default $AGENT_TRACED_DATABASE).\n"
    "\n"
    "  migrate  creates the schema or brings it up to date (each migration once,\n"
    "           under a lock: replicas starting together migrate once); prints\n"
    "           {\"from\", \"to\"}\n"
    "  status   prints {\"schema\", \"latest\", \"workspaces\", \"sessions\",\n"
    "           \"versions\", \"objects\", \"object_bytes\"}\n"
    "  import   loads the storage directory DIR (every workspace, every version\n"
    "           of every session, objects streamed in 1 MiB chunks and checked\n"
    "           against their SHA-256), one transaction a session; run again, it\n"
    "           adds only what is new. Prints {\"sessions\", \"created\",\n"
    "           \"extended\", \"unchanged\", \"versions\", \"objects\", \"bytes\"}\n"
    "  export   writes the database's sessions to DIR (which must not exist or be\n"
    "           empty) as a storage directory agent-strace reads: meta.json and\n"
    "           the current version's events.ndjson per session. Prints\n"
    "           {\"workspaces\", \"sessions\", \"bytes\"}\n"
    "  keys     the named API keys every `serve --database` replica accepts (read\n"
    "           again every 5 s, and on SIGHUP): `keys load` replaces them with\n"
    "           the lines of a keys file (`agent-traced keygen --name N --role R`\n"
    "           prints one; the file holds digests, never keys) and prints\n"
    "           {\"keys\": N}; `keys list` prints them as keys-file lines\n"
    "\n"
    "  --database URL  the database (default: $AGENT_TRACED_DATABASE)\n"
    "  --storage DIR   the storage directory (import, export)\n"
    "  --keys FILE     the keys file (keys load)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 on usage errors.\n";

/* ---- import ---------------------------------------------------------------- */

typedef struct {
    uint64_t sessions, created, extended, unchanged, versions, objects, bytes;
} import_counts;

/* Reads a version's object, hashing what it reads. */
typedef struct {
    at_object_reader *rd;
    uint64_t pos;
    at_sha256 *h;
} object_src;

static ssize_t object_src_read(void *ctx, char *buf, size_t cap, at_error *err)
{
    object_src *o = ctx;
    ssize_t k = at_object_read(o->rd, o->pos, buf, cap);
    if (k < 0) {
        at_error_set(err, AT_ERR_IO, -1, "cannot read the events");
        return -1;
    }
    at_sha256_update(o->h, buf, (size_t)k);
    o->pos += (uint64_t)k;
    return k;
}

static const char *cause_sql(at_cause c)
{
    return at_cause_name(c);
}

/* Stores version v's object unless the workspace has it already. */
static at_result import_object(db *d, at_store *st, const char *ws, const char *sid, const at_version *v,
                               import_counts *n, at_error *err)
{
    const char *vals[5] = {ws, (const char *)v->events_sha256};
    int lens[5] = {0, AT_SHA256_LEN};
    int fmts[5] = {0, 1};
    PGresult *r = db_query(d, "SELECT 1 FROM objects WHERE workspace = $1 AND sha256 = $2", 2, vals, lens, fmts,
                           false, err);
    if (!r)
        return err->code;
    bool have = PQntuples(r) > 0;
    PQclear(r);
    if (have)
        return AT_OK;
    object_src src = {.h = at_sha256_new()};
    at_result rc = src.h ? at_store_open_version(st, sid, v->version, &src.rd, err)
                         : at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    int64_t blob = 0;
    uint64_t size = 0;
    if (rc == AT_OK)
        rc = db_blob_write(d, object_src_read, &src, &blob, &size, err);
    uint8_t got[AT_SHA256_LEN], mid[AT_SHA256_STATE_LEN];
    if (src.h) {
        at_sha256_export(src.h, mid);
        at_sha256_final(src.h, got);
    }
    at_sha256_free(src.h);
    at_object_reader_free(src.rd);
    if (rc != AT_OK)
        return rc;
    if (memcmp(got, v->events_sha256, AT_SHA256_LEN) != 0 || size != v->size)
        return at_error_set(err, AT_ERR_INVALID, -1,
                            "version %llu's events do not match its recorded SHA-256 or size (run agent-traced "
                            "verify --versions)",
                            (unsigned long long)v->version);
    char b[24], sz[24];
    snprintf(b, sizeof b, "%lld", (long long)blob);
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    vals[2] = sz;
    vals[3] = b;
    vals[4] = (const char *)mid;
    lens[4] = AT_SHA256_STATE_LEN;
    fmts[4] = 1;
    if (!(r = db_query(d, "INSERT INTO objects (workspace, sha256, size, blob, midstate) VALUES ($1, $2, $3, $4, $5)",
                       5, vals, lens, fmts, false, err)))
        return err->code;
    PQclear(r);
    n->objects++;
    n->bytes += size;
    return AT_OK;
}

static at_result import_version(db *d, const char *ws, const char *sid, const at_version *v, at_error *err)
{
    char ver[24], ev[24], sz[24], tb[24], tm[40];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)v->version);
    snprintf(ev, sizeof ev, "%llu", (unsigned long long)v->events);
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)v->size);
    snprintf(tb, sizeof tb, "%lld", (long long)v->transcript_bytes);
    snprintf(tm, sizeof tm, "%.17g", v->time);
    bool tr = v->transcript_bytes >= 0;
    const char *vals[11] = {ws,
                            sid,
                            ver,
                            ev,
                            sz,
                            (const char *)v->events_sha256,
                            v->have_head ? (const char *)v->head : NULL,
                            tr ? tb : NULL,
                            tr ? (const char *)v->transcript_sha256 : NULL,
                            cause_sql(v->cause),
                            tm};
    int lens[11] = {0, 0, 0, 0, 0, AT_SHA256_LEN, AT_SHA256_LEN, 0, AT_SHA256_LEN, 0, 0};
    int fmts[11] = {0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0};
    PGresult *r = db_query(d,
                           "INSERT INTO versions (workspace, session, version, events, size, events_sha256, head, "
                           "transcript_bytes, transcript_sha256, cause, time) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                           11, vals, lens, fmts, false, err);
    if (!r)
        return err->code;
    PQclear(r);
    return AT_OK;
}

/* Reads a whole small file (meta.json). */
static at_result slurp(const char *path, char **out, size_t *len, at_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return at_error_set(err, AT_ERR_IO, -1, "cannot read %s: %s", path, strerror(errno));
    at_buf b;
    at_buf_init(&b, AT_MAX_META_BYTES);
    char tmp[8192];
    size_t k;
    at_result rc = AT_OK;
    while (rc == AT_OK && (k = fread(tmp, 1, sizeof tmp, f)) > 0)
        rc = at_buf_add(&b, tmp, k);
    fclose(f);
    if (rc != AT_OK) {
        at_buf_fini(&b);
        return at_error_set(err, rc, -1, "%s is too large", path);
    }
    *out = b.data ? b.data : strdup("");
    *len = b.len;
    return AT_OK;
}

static at_result import_session(db *d, at_store *st, const char *ws, const char *sid, import_counts *n,
                                at_error *err)
{
    at_version *vs = NULL;
    size_t nv = 0;
    char *meta = NULL;
    size_t meta_len = 0;
    char mp[PATH_MAX];
    at_result rc = at_store_versions(st, sid, &vs, &nv, err);
    if (rc == AT_OK && at_store_session_path(st, sid, "meta.json", mp, sizeof mp) != AT_OK)
        rc = at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (rc == AT_OK)
        rc = slurp(mp, &meta, &meta_len, err);
    if (rc == AT_OK)
        rc = db_exec(d, "BEGIN", err);
    /* what the database holds of it: its versions' digests, in order */
    uint64_t have = 0;
    bool exists = false;
    const char *kv[2] = {ws, sid};
    PGresult *r = rc == AT_OK ? db_query(d,
                                         "SELECT current_version FROM sessions WHERE workspace = $1 AND id = $2 "
                                         "FOR UPDATE",
                                         2, kv, NULL, NULL, false, err)
                              : NULL;
    if (rc == AT_OK && !r)
        rc = err->code;
    if (r) {
        exists = PQntuples(r) > 0;
        have = exists ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        PQclear(r);
        r = NULL;
    }
    if (rc == AT_OK && exists) {
        r = db_query(d,
                     "SELECT version, events_sha256 FROM versions WHERE workspace = $1 AND session = $2 ORDER BY "
                     "version",
                     2, kv, NULL, NULL, true, err);
        if (!r)
            rc = err->code;
        for (int i = 0; r && rc == AT_OK && i < PQntuples(r); i++) {
            if ((size_t)i >= nv || PQgetlength(r, i, 1) != AT_SHA256_LEN ||
                memcmp(PQgetvalue(r, i, 1), vs[i].events_sha256, AT_SHA256_LEN) != 0)
                rc = at_error_set(err, AT_ERR_CONFLICT, -1,
                                  "the database's history of this session differs from the directory's at "
                                  "version %d",
                                  i + 1);
        }
        if (r && rc == AT_OK && (uint64_t)PQntuples(r) != have)
            rc = at_error_set(err, AT_ERR_INVALID, -1, "the database's versions of this session are incomplete");
        PQclear(r);
    }
    for (size_t i = have; rc == AT_OK && i < nv; i++) {
        rc = import_object(d, st, ws, sid, &vs[i], n, err);
        if (rc == AT_OK && i == have) {
            /* the session row first (versions refer to it), current after */
            char cur[24];
            snprintf(cur, sizeof cur, "%llu", (unsigned long long)vs[nv - 1].version);
            const char *vals[5] = {ws, sid, meta, cur, vs[nv - 1].have_head ? (const char *)vs[nv - 1].head : NULL};
            int lens[5] = {0, 0, (int)meta_len, 0, AT_SHA256_LEN};
            int fmts[5] = {0, 0, 1, 0, 1};
            r = db_query(d,
                         "INSERT INTO sessions (workspace, id, meta, current_version, head) VALUES ($1, $2, $3, $4, "
                         "$5) ON CONFLICT (workspace, id) DO UPDATE SET meta = $3, current_version = $4, head = $5, "
                         "updated_at = now()",
                         5, vals, lens, fmts, false, err);
            if (!r)
                rc = err->code;
            PQclear(r);
        }
        if (rc == AT_OK)
            rc = import_version(d, ws, sid, &vs[i], err);
        if (rc == AT_OK)
            n->versions++;
    }
    if (rc == AT_OK && nv == 0 && !exists) {
        /* a session without events yet: its meta only */
        const char *vals[3] = {ws, sid, meta};
        int lens[3] = {0, 0, (int)meta_len};
        int fmts[3] = {0, 0, 1};
        r = db_query(d, "INSERT INTO sessions (workspace, id, meta) VALUES ($1, $2, $3)", 3, vals, lens, fmts, false,
                     err);
        if (!r)
            rc = err->code;
        PQclear(r);
    }
    if (rc == AT_OK && have < nv) {
        /* the event index: the rows of the current version, read from its
         * events.ndjson (a copy of the current object) */
        char ep[PATH_MAX];
        struct stat sb;
        int fd = at_store_session_path(st, sid, "events.ndjson", ep, sizeof ep) == AT_OK
                     ? open(ep, O_RDONLY | O_CLOEXEC)
                     : -1;
        if (fd < 0 || fstat(fd, &sb) < 0)
            rc = at_error_set(err, AT_ERR_IO, -1, "cannot read the events of %s to index them", sid);
        else if ((uint64_t)sb.st_size != vs[nv - 1].size ||
                 (rc = dbi_index_file(d, ws, sid, fd, (uint64_t)sb.st_size, vs[nv - 1].events_sha256, err)) ==
                     AT_ERR_CONFLICT)
            /* changed since at_store_versions read it (a writer at work):
             * the index must be of the object the version names */
            rc = at_error_set(err, AT_ERR_CONFLICT, -1,
                              "events.ndjson changed while it was imported (a writer at work?): run db import "
                              "again");
        if (fd >= 0)
            close(fd);
    }
    if (rc == AT_OK && have < nv) {
        /* the token usage: the one the newest import recorded is the one read */
        char *uj = NULL;
        size_t ul = 0;
        uint64_t uv = 0;
        if ((rc = at_store_usage(st, sid, &uj, &ul, &uv, err)) == AT_OK && uj) {
            char vs_[24];
            snprintf(vs_, sizeof vs_, "%llu", (unsigned long long)uv);
            const char *vals[4] = {ws, sid, vs_, uj};
            int lens[4] = {0, 0, 0, (int)ul};
            int fmts[4] = {0, 0, 0, 1};
            PGresult *q = db_query(d, "UPDATE versions SET usage = $4 WHERE workspace = $1 AND session = $2 "
                                      "AND version = $3", 4, vals, lens, fmts, false, err);
            if (!q)
                rc = err->code;
            PQclear(q);
        }
        free(uj);
    }
    if (rc == AT_OK) {
        /* the subagent links a parent recorded: its subagents uploaded
         * later (through serve --database) find their tool call */
        at_import_link *links = NULL;
        size_t nl = 0;
        if ((rc = at_store_links(st, sid, &links, &nl, err)) == AT_OK && nl)
            rc = dbs_links_put(d, ws, sid, links, nl, err);
        at_store_links_free(links, nl);
    }
    if (rc == AT_OK)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK)
        db_rollback(d);
    else if (!exists)
        n->created++;
    else if (have < nv)
        n->extended++;
    else
        n->unchanged++;
    n->sessions += rc == AT_OK;
    free(vs);
    free(meta);
    return rc;
}

typedef struct {
    char *ids[1024];
    size_t n;
} ws_names;

static void add_ws(void *ctx, const char *ws)
{
    ws_names *w = ctx;
    if (w->n < sizeof w->ids / sizeof *w->ids)
        w->ids[w->n++] = strdup(ws);
}

static int db_import(db *d, const char *storage)
{
    struct stat sb;
    if (stat(storage, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_errorf("db", "import: --storage %s is not a directory", storage);
        return 1;
    }
    ws_names w = {0};
    at_error err = {0};
    if (at_workspaces_list(storage, add_ws, &w, &err) != AT_OK) {
        cli_errorf("db", "import: %s", err.message);
        return 1;
    }
    import_counts n = {0};
    int failures = 0;
    for (size_t i = 0; i < w.n; i++) {
        const char *vals[1] = {w.ids[i]};
        PGresult *r = db_query(d, "INSERT INTO workspaces VALUES ($1) ON CONFLICT DO NOTHING", 1, vals, NULL, NULL,
                               false, &err);
        at_store *st = r ? at_store_open_workspace(storage, w.ids[i], &err) : NULL;
        PQclear(r);
        char **ids = NULL;
        size_t nids = 0;
        if (!st || sessions_scan(at_store_root(st), &ids, &nids) != AT_OK) {
            cli_errorf("db", "import: workspace %s: %s", w.ids[i], st ? "cannot list the sessions" : err.message);
            failures++;
            at_store_free(st);
            continue;
        }
        for (size_t j = 0; j < nids; j++) {
            memset(&err, 0, sizeof err);
            if (import_session(d, st, w.ids[i], ids[j], &n, &err) != AT_OK) {
                cli_errorf("db", "import: workspace %s, session %s: %s", w.ids[i], ids[j], err.message);
                failures++;
            }
        }
        sessions_free_ids(ids, nids);
        at_store_free(st);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.ids[i]);
    printf("{\"sessions\": %llu, \"created\": %llu, \"extended\": %llu, \"unchanged\": %llu, \"versions\": %llu, "
           "\"objects\": %llu, \"bytes\": %llu, \"failed\": %d}\n",
           (unsigned long long)n.sessions, (unsigned long long)n.created, (unsigned long long)n.extended,
           (unsigned long long)n.unchanged, (unsigned long long)n.versions, (unsigned long long)n.objects,
           (unsigned long long)n.bytes, failures);
    return failures ? 1 : 0;
}

/* ---- export ---------------------------------------------------------------- */

typedef struct {
    int fd;
    uint64_t bytes;
} fd_sink;

static at_result fd_sink_write(void *ctx, const char *p, size_t n, at_error *err)
{
    fd_sink *s = ctx;
    if (at_write_all(s->fd, p, n) != AT_OK)
        return at_error_set(err, AT_ERR_IO, -1, "cannot write: %s", strerror(errno));
    s->bytes += n;
    return AT_OK;
}

/* Writes path from the object (sha256 in workspace ws: its blobs, the
 * chain of bases of a delta included) or from bytes, through a synced
 * temporary file. */
static at_result write_out(db *d, const char *path, const char *ws, const uint8_t *sha256, const char *bytes,
                           size_t len, uint64_t *total, at_error *err)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd_sink s = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), 0};
    if (s.fd < 0)
        return at_error_set(err, AT_ERR_IO, -1, "cannot create %s: %s", tmp, strerror(errno));
    at_result rc = sha256 ? dbs_object_read(d, ws, sha256, fd_sink_write, &s, err) : fd_sink_write(&s, bytes, len, err);
    if (rc == AT_OK && fsync(s.fd) < 0)
        rc = at_error_set(err, AT_ERR_IO, -1, "cannot sync %s: %s", tmp, strerror(errno));
    close(s.fd);
    if (rc == AT_OK && rename(tmp, path) < 0)
        rc = at_error_set(err, AT_ERR_IO, -1, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc != AT_OK)
        unlink(tmp);
    *total += s.bytes;
    return rc;
}

static bool empty_dir(const char *p)
{
    DIR *dd = opendir(p);
    if (!dd)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(dd)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(dd);
    return empty;
}

static int db_export(db *d, const char *storage)
{
    if (!empty_dir(storage)) {
        cli_errorf("db", "export: --storage %s exists and is not empty: export writes a new directory", storage);
        return 1;
    }
    at_error err = {0};
    PGresult *wr = db_query(d, "SELECT id FROM workspaces ORDER BY id <> 'default', id", 0, NULL, NULL, NULL, false,
                            &err);
    if (!wr) {
        cli_errorf("db", "export: %s", err.message);
        return 1;
    }
    uint64_t sessions = 0, bytes = 0;
    int failures = 0;
    for (int i = 0; i < PQntuples(wr) && !failures; i++) {
        const char *ws = PQgetvalue(wr, i, 0);
        char root[PATH_MAX];
        if (at_workspace_root(storage, ws, root, sizeof root) != AT_OK) {
            cli_errorf("db", "export: workspace %s: invalid name or path too long", ws);
            failures++;
            break;
        }
        at_store *st = at_store_open_workspace(storage, ws, &err); /* makes the directories */
        at_store_free(st);
        if (!st) {
            cli_errorf("db", "export: workspace %s: %s", ws, err.message);
            failures++;
            break;
        }
        const char *vals[1] = {ws};
        /* the current version's object of each session (no events: NULL) */
        PGresult *r = db_query(d,
                               "SELECT s.id, s.meta, v.events_sha256 FROM sessions s "
                               "LEFT JOIN versions v ON v.workspace = s.workspace AND v.session = s.id AND "
                               "v.version = s.current_version "
                               "WHERE s.workspace = $1 ORDER BY s.id",
                               1, vals, NULL, NULL, true, &err);
        if (!r) {
            cli_errorf("db", "export: workspace %s: %s", ws, err.message);
            failures++;
            break;
        }
        for (int j = 0; j < PQntuples(r) && !failures; j++) {
            const char *sid = PQgetvalue(r, j, 0);
            const char *meta = PQgetvalue(r, j, 1);
            size_t mlen = (size_t)PQgetlength(r, j, 1);
            uint8_t sha[AT_SHA256_LEN];
            bool have_events = !PQgetisnull(r, j, 2) && db_col_bytes(r, j, 2, sha, sizeof sha);
            char dir[PATH_MAX], p[PATH_MAX];
            at_result rc = AT_OK;
            if (!at_session_id_ok(sid, strlen(sid)) ||
                at_storage_path(root, AT_PATH_SESSION, sid, dir, sizeof dir) != AT_OK)
                rc = at_error_set(&err, AT_ERR_INVALID, -1, "not a usable session id");
            if (rc == AT_OK && mkdir(dir, 0700) < 0)
                rc = at_error_set(&err, AT_ERR_IO, -1, "cannot create %s: %s", dir, strerror(errno));
            if (rc == AT_OK && have_events && at_storage_path(root, AT_PATH_EVENTS, sid, p, sizeof p) == AT_OK)
                rc = write_out(d, p, ws, sha, NULL, 0, &bytes, &err);
            if (rc == AT_OK && at_storage_path(root, AT_PATH_META, sid, p, sizeof p) == AT_OK)
                rc = write_out(d, p, NULL, NULL, meta, mlen, &bytes, &err);
            if (rc != AT_OK) {
                cli_errorf("db", "export: workspace %s, session %s: %s", ws, sid, err.message);
                failures++;
            } else {
                sessions++;
            }
        }
        PQclear(r);
        /* open it as a store: every session gets its history (version 1:
         * what was exported) */
        if (!failures && !(st = at_store_open_workspace(storage, ws, &err))) {
            cli_errorf("db", "export: workspace %s: %s", ws, err.message);
            failures++;
        }
        at_store_free(st);
    }
    printf("{\"workspaces\": %d, \"sessions\": %llu, \"bytes\": %llu}\n", PQntuples(wr), (unsigned long long)sessions,
           (unsigned long long)bytes);
    PQclear(wr);
    return failures ? 1 : 0;
}

/* ---- status, migrate ------------------------------------------------------- */

static int db_status(db *d)
{
    at_error err = {0};
    int v = db_schema_version(d, &err);
    if (v < 0) {
        cli_errorf("db", "status: %s", err.message);
        return 1;
    }
    int latest = db_migrations[DB_NMIGRATIONS - 1].version;
    if (v == 0) {
        printf("{\"schema\": 0, \"latest\": %d}\n", latest);
        return 0;
    }
    PGresult *r = db_query(d,
                           "SELECT (SELECT count(*) FROM workspaces), (SELECT count(*) FROM sessions), "
                           "(SELECT count(*) FROM versions), (SELECT count(*) FROM objects), "
                           "(SELECT coalesce(sum(size), 0) FROM objects)",
                           0, NULL, NULL, NULL, false, &err);
    if (!r) {
        cli_errorf("db", "status: %s", err.message);
        return 1;
    }
    printf("{\"schema\": %d, \"latest\": %d, \"workspaces\": %s, \"sessions\": %s, \"versions\": %s, \"objects\": "
           "%s, \"object_bytes\": %s}\n",
           v, latest, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3),
           PQgetvalue(r, 0, 4));
    PQclear(r);
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int keys_load(db *d, const char *path)
{
    http_auth a;
    http_auth_init(&a);
    char why[512];
    if (!http_auth_load(&a, path, why, sizeof why)) { /* the same checks as serve --keys */
        cli_errorf("db", "keys load: %s", why);
        http_auth_fini(&a);
        return 1;
    }
    dbs_key *rows = calloc(a.n ? a.n : 1, sizeof *rows);
    at_error err = {0};
    at_result r = rows ? AT_OK : at_error_set(&err, AT_ERR_NOMEM, -1, "out of memory");
    for (size_t i = 0; rows && i < a.n; i++) {
        rows[i].name = a.keys[i].name;
        rows[i].role = http_role_name(a.keys[i].role);
        rows[i].workspace = a.keys[i].workspace;
        memcpy(rows[i].sha256, a.keys[i].digest, AT_SHA256_LEN);
    }
    if (r == AT_OK)
        r = dbs_keys_replace(d, rows, a.n, &err);
    if (r == AT_OK)
        printf("{\"keys\": %zu}\n", a.n);
    else
        cli_errorf("db", "keys load: %s", err.message);
    free(rows);
    http_auth_fini(&a);
    return r == AT_OK ? 0 : 1;
}

static void print_key(void *ctx, const dbs_key *k)
{
    (void)ctx;
    char hex[AT_SHA256_HEX];
    at_hex(k->sha256, AT_SHA256_LEN, hex);
    printf("%s %s %s %s\n", k->name, k->role, k->workspace, hex);
}

static int keys_list(db *d)
{
    at_error err = {0};
    if (dbs_keys(d, print_key, NULL, &err) != AT_OK) {
        cli_errorf("db", "keys list: %s", err.message);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int cli_db(int argc, char **argv)
{
    static const struct option opts[] = {
        {"database", required_argument, NULL, 'd'},
        {"storage", required_argument, NULL, 's'},
        {"keys", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *storage = NULL, *keys = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': url = optarg; break;
        case 's': storage = optarg; break;
        case 'k': keys = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind >= argc) {
        cli_errorf("db", "no subcommand: migrate, status, import or export");
        fputs(usage, stderr);
        return 2;
    }
    const char *sub = argv[optind];
    bool needs_storage = strcmp(sub, "import") == 0 || strcmp(sub, "export") == 0;
    bool is_keys = strcmp(sub, "keys") == 0;
    if (!needs_storage && !is_keys && strcmp(sub, "migrate") != 0 && strcmp(sub, "status") != 0) {
        cli_errorf("db", "unknown subcommand '%s': migrate, status, import, export or keys", sub);
        return 2;
    }
    const char *action = is_keys && optind + 1 < argc ? argv[optind + 1] : NULL;
    if (is_keys && (!action || (strcmp(action, "load") != 0 && strcmp(action, "list") != 0))) {
        cli_errorf("db", "keys: %s%s: load or list", action ? "unknown action " : "no action", action ? action : "");
        return 2;
    }
    if (is_keys && strcmp(action, "load") == 0 && (!keys || !*keys)) {
        cli_errorf("db", "keys load needs --keys FILE");
        return 2;
    }
    if (optind + 1 + is_keys < argc) {
        cli_errorf("db", "unexpected argument: %s", argv[optind + 1 + is_keys]);
        return 2;
    }
    if (needs_storage && (!storage || !*storage)) {
        cli_errorf("db", "%s needs --storage DIR", sub);
        return 2;
    }
    if (!(url = db_default_url(url))) {
        cli_errorf("db", "no database: give --database URL or set AGENT_TRACED_DATABASE");
        return 2;
    }
    at_error err = {0};
    db *d = db_connect(url, &err);
    if (!d) {
        cli_errorf("db", "%s", err.message);
        return 1;
    }
    int rc;
    if (strcmp(sub, "migrate") == 0) {
        int from = 0, to = 0;
        rc = db_migrate(d, &from, &to, &err) == AT_OK ? 0 : 1;
        if (rc)
            cli_errorf("db", "migrate: %s", err.message);
        else
            printf("{\"from\": %d, \"to\": %d}\n", from, to);
    } else if (strcmp(sub, "status") == 0) {
        rc = db_status(d);
    } else if (is_keys) {
        rc = strcmp(action, "load") == 0 ? keys_load(d, keys) : keys_list(d);
    } else {
        int v = db_schema_version(d, &err);
        int latest = db_migrations[DB_NMIGRATIONS - 1].version;
        if (v != latest) {
            cli_errorf("db", "%s: %s", sub,
                       v < 0 ? err.message : "the schema is not up to date: run agent-traced db migrate first");
            rc = 1;
        } else {
            rc = strcmp(sub, "import") == 0 ? db_import(d, storage) : db_export(d, storage);
        }
    }
    db_close(d);
    return rc;
}
