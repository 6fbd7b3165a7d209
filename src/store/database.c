/* database.c - the store over PostgreSQL (`serve --database`): the public
 * store functions a database store supports hand over to these.
 *
 * The same contract as the directory: a version is durable when the call
 * returns (the transaction committed), uploads fast-forward by commit.c's
 * rules (store_classify), and writers of one session on any number of
 * replicas are serialised by the compare-and-swap on the session's row
 * (db/dbstore.h): a writer that loses reads the new current version,
 * decides again and retries, so no update is lost and the chain never
 * forks, and the client never sees the race.
 *
 * Connections. A store keeps a few idle connections (POOL_IDLE) and opens
 * more when every one is busy; a connection that failed is dropped, so
 * after the database comes back the next request connects again. Nothing
 * else is kept between requests: a replica holds no state.
 *
 * An upload flows into the database as it arrives. The importer writes its
 * events to a local staging file (tmp_dir: it reads them back to resolve
 * subagent links, and the commit compares them with the current version);
 * from the first whole chunk on, every whole chunk is COPYed into a new
 * blob inside the upload's own transaction (struct at_stage_db), and the
 * commit sends the rest and decides in that same transaction. Memory
 * stays one chunk per upload, and a failed, abandoned or killed upload
 * leaves nothing: its transaction is rolled back (by us, or by the
 * database when the connection dies). An upload of less than a chunk
 * holds no connection while it arrives; its bytes go in at the commit.
 * What an upload's blob holds beyond what it adds to the current version
 * (a full upload that extends it) is named from its offset on (blob_start)
 * and the whole chunks before it are dropped at the commit.
 *
 * An incremental upload (POST /import?session=&offset=) resumes the
 * importer state kept with the current version (import_states); its
 * commit rebuilds the whole events (the current version's first bytes,
 * then the new ones) in a staging file and decides as for a full upload.
 */
#include "store_int.h"

#include "db/dbindex.h"
#include "db/dblog.h"
#include "db/dbstore.h"
#include "db/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POOL_IDLE 8

struct store_db {
    char *url, *ws, *tmp;
    pthread_mutex_t mu;
    db *idle[POOL_IDLE];
    int nidle;
};

static db *take(struct store_db *p, at_error *err)
{
    db *d = NULL;
    pthread_mutex_lock(&p->mu);
    while (!d && p->nidle > 0) {
        d = p->idle[--p->nidle];
        if (!db_idle_alive(d)) {
            db_close(d);
            d = NULL;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return d ? d : db_connect(p->url, err);
}

/* Gives a connection back: kept when it is healthy and idle, else closed
 * (the next take connects afresh). */
static void give(struct store_db *p, db *d)
{
    if (!d)
        return;
    if (db_idle_alive(d)) {
        pthread_mutex_lock(&p->mu);
        if (p->nidle < POOL_IDLE) {
            p->idle[p->nidle++] = d;
            d = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    db_close(d);
}

struct store_db *store_db_open(const char *url, const char *ws, const char *tmp_dir, at_error *err)
{
    struct store_db *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(url)) || !(p->ws = strdup(ws)) || !(p->tmp = strdup(tmp_dir))) {
        store_db_free(p);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void store_db_free(struct store_db *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nidle; i++)
        db_close(p->idle[i]);
    if (p->url)
        pthread_mutex_destroy(&p->mu);
    free(p->url);
    free(p->ws);
    free(p->tmp);
    free(p);
}

at_result store_db_unsupported(at_error *err, const char *what)
{
    return at_error_set(err, AT_ERR_INVALID, -1, "%s is not available with --database yet", what);
}

at_result sdb_ping(at_store *s, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    /* the schema this agent-traced needs: an older one is not ready */
    int v = db_schema_version(d, err);
    int want = db_migrations[sizeof db_migrations / sizeof *db_migrations - 1].version;
    at_result r = v < 0    ? err->code
                  : v < want ? at_error_set(err, AT_ERR_INVALID, -1,
                                            "database %s: schema version %d, this agent-traced needs %d: run "
                                            "agent-traced db migrate",
                                            db_name(d), v, want)
                             : AT_OK;
    give(s->db, d);
    return r;
}

bool sdb_session_exists(at_store *s, const char *sid)
{
    at_error err = {0};
    db *d = take(s->db, &err);
    if (!d)
        return false;
    char **ids;
    size_t n = 0;
    bool found = false;
    if (dbs_session_ids(d, s->db->ws, sid, 0, &ids, &n, &err) == AT_OK) {
        for (size_t i = 0; i < n; i++)
            found |= strcmp(ids[i], sid) == 0;
        at_store_list_free(ids, n);
    }
    give(s->db, d);
    return found;
}

at_result sdb_meta_load(at_store *s, const char *sid, at_meta *m, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = dbs_meta_get(d, s->db->ws, sid, &b, err);
    give(s->db, d);
    if (r == AT_OK)
        r = at_meta_parse(m, b.data ? b.data : "", b.len, false, err);
    at_buf_fini(&b);
    return r;
}

at_result sdb_meta_put(at_store *s, const char *sid, const at_meta *m, at_meta_edit_fn edit, void *edit_ctx,
                       bool *created, at_error *err)
{
    *created = false;
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = AT_OK;
    bool lost = true;
    for (int tries = 0; r == AT_OK && lost && tries < 100; tries++) {
        at_buf cur_b, out;
        at_buf_init(&cur_b, 0);
        at_buf_init(&out, AT_MAX_META_BYTES);
        at_meta cur;
        at_meta_init(&cur);
        bool found = false;
        r = dbs_meta_lock(d, s->db->ws, sid, &cur_b, &found, err);
        if (r == AT_OK && found)
            r = at_meta_parse(&cur, cur_b.data ? cur_b.data : "", cur_b.len, false, err);
        /* the stored fields overwritten by the new ones, as the directory does */
        for (int f = 0; f < AT_META_NFIELDS && r == AT_OK; f++)
            if (m->raw[f] && (r = at_meta_set_raw(&cur, (at_meta_field)f, m->raw[f], m->len[f])) != AT_OK)
                at_error_set(err, r, -1, "out of memory");
        if (r == AT_OK && edit && (r = edit(edit_ctx, &cur)) != AT_OK)
            at_error_set(err, r, -1, "cannot edit session metadata");
        if (r == AT_OK && (r = store_meta_bytes(s, &cur, &out)) != AT_OK)
            at_error_set(err, r, -1, "cannot serialize session metadata");
        if (r == AT_OK)
            r = dbs_meta_store(d, s->db->ws, sid, out.data, out.len, !found, &lost, err);
        else
            db_rollback(d);
        if (r == AT_OK && !lost)
            *created = !found;
        at_meta_fini(&cur);
        at_buf_fini(&cur_b);
        at_buf_fini(&out);
    }
    give(s->db, d);
    return r;
}

at_result sdb_list(at_store *s, const char *prefix, size_t limit, char ***ids, size_t *n, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dbs_session_ids(d, s->db->ws, prefix, limit, ids, n, err);
    give(s->db, d);
    return r;
}

at_result sdb_versions(at_store *s, const char *sid, at_version **out, size_t *n, at_error *err)
{
    *out = NULL;
    *n = 0;
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    dbs_current cur;
    at_result r = dbs_current_get(d, s->db->ws, sid, &cur, err); /* AT_ERR_NOT_FOUND for no session */
    if (r == AT_OK)
        r = dbs_versions(d, s->db->ws, sid, out, n, err);
    give(s->db, d);
    return r;
}

/* ---- reading objects ---- */

struct sdb_reader {
    struct store_db *p;
    dbs_reader *rd;
};

ssize_t sdb_reader_read(struct sdb_reader *r, uint64_t pos, char *buf, size_t n)
{
    at_error err = {0};
    db *d = take(r->p, &err);
    if (!d)
        return -1;
    ssize_t k = dbs_reader_read(d, r->rd, pos, buf, n, &err);
    give(r->p, d);
    return k;
}

uint64_t sdb_reader_size(const struct sdb_reader *r)
{
    return dbs_reader_size(r->rd);
}

void sdb_reader_free(struct sdb_reader *r)
{
    if (!r)
        return;
    dbs_reader_free(r->rd);
    free(r);
}

static at_result open_sha(at_store *s, db *d, const uint8_t sha[AT_SHA256_LEN], at_object_reader **out,
                          at_error *err)
{
    struct sdb_reader *r = calloc(1, sizeof *r);
    if (!r)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    r->p = s->db;
    at_result rc = dbs_reader_open(d, s->db->ws, sha, &r->rd, err);
    if (rc == AT_OK && !(*out = object_reader_db(r)))
        rc = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    if (rc != AT_OK)
        sdb_reader_free(r);
    return rc;
}

at_result sdb_open_version(at_store *s, const char *sid, uint64_t version, at_object_reader **out, at_error *err)
{
    *out = NULL;
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    dbs_current cur;
    uint8_t sha[AT_SHA256_LEN];
    at_result r = dbs_current_get(d, s->db->ws, sid, &cur, err);
    if (r == AT_OK && version == 0 && cur.version == 0) {
        if (!(*out = object_reader_empty()))
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    } else if (r == AT_OK) {
        if (version == 0)
            memcpy(sha, cur.sha256, sizeof sha);
        else
            r = dbs_version_object(d, s->db->ws, sid, version, sha, err);
        if (r == AT_OK)
            r = open_sha(s, d, sha, out, err);
    }
    give(s->db, d);
    return r;
}

at_result sdb_open_object(at_store *s, const char *hex, at_object_reader **out, at_error *err)
{
    *out = NULL;
    uint8_t sha[AT_SHA256_LEN];
    if (!at_unhex_sha256(hex, strlen(hex), sha))
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "no object %.64s", hex);
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = open_sha(s, d, sha, out, err);
    give(s->db, d);
    return r;
}

/* ---- writing ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

at_result sdb_append(at_store *s, const char *sid, const at_event_json *ev, size_t n, uint64_t *version,
                     at_error *err)
{
    *version = 0;
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    /* a missing session is created with fresh metadata first (its
     * session_id only, as the directory does); a session left without
     * events by a failed append is what POST /sessions makes too */
    at_result r = AT_OK;
    dbs_current cur;
    if (dbs_current_get(d, s->db->ws, sid, &cur, err) == AT_ERR_NOT_FOUND) {
        at_meta m;
        at_buf b;
        at_meta_init(&m);
        at_buf_init(&b, 0);
        bool created;
        if ((r = at_meta_set_string(&m, AT_META_SESSION_ID, sid, strlen(sid))) != AT_OK ||
            (r = store_meta_bytes(s, &m, &b)) != AT_OK)
            at_error_set(err, r, -1, "out of memory");
        else
            r = dbs_session_create(d, s->db->ws, sid, b.data, b.len, &created, err);
        at_meta_fini(&m);
        at_buf_fini(&b);
    }
    unsigned retries;
    if (r == AT_OK)
        r = dbs_append(d, s->db->ws, sid, ev, n, now_seconds(), version, &retries, err);
    give(s->db, d);
    return r;
}

/* ---- an upload streamed into its transaction ---- */

struct at_stage_db {
    struct store_db *pool;
    db *d;           /* the upload's connection: its transaction is open */
    int64_t blob;    /* the blob being written */
    uint64_t sent;   /* the staging file's first bytes in it */
    bool copying;    /* the COPY is open */
    bool failed;     /* the transaction is lost: the upload fails */
    char *buf;       /* one chunk */
};

static at_result read_at(int fd, char *p, size_t n, uint64_t off, at_error *err)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = pread(fd, p + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return at_error_set(err, AT_ERR_IO, k < 0 ? errno : -1, "cannot read the staged events");
        got += (size_t)k;
    }
    return AT_OK;
}

/* Sends the staging file's bytes [sent, upto) as chunks of the blob. */
static at_result stream_to(struct at_stage_db *sd, int fd, uint64_t upto, at_error *err)
{
    at_result r = AT_OK;
    while (r == AT_OK && sd->sent < upto) {
        size_t n = upto - sd->sent < DB_CHUNK ? (size_t)(upto - sd->sent) : DB_CHUNK;
        if ((r = read_at(fd, sd->buf, n, sd->sent, err)) == AT_OK &&
            (r = db_blob_put(sd->d, sd->blob, (uint32_t)(sd->sent / DB_CHUNK), sd->buf, n, err)) == AT_OK)
            sd->sent += n;
    }
    if (r != AT_OK)
        sd->failed = true;
    return r;
}

at_result sdb_stage_flush(at_store *s, at_stage *st, at_error *err)
{
    struct stat sb;
    if (fstat(st->fd, &sb) < 0)
        return sys_fail(err, "cannot stat", st->path);
    uint64_t whole = (uint64_t)sb.st_size / DB_CHUNK * DB_CHUNK;
    struct at_stage_db *sd = st->db;
    if (sd && sd->failed)
        return at_error_set(err, AT_ERR_IO, -1, "the upload's database transaction failed");
    if (whole == 0 || (sd && sd->sent >= whole))
        return AT_OK;
    if (!sd) {
        if (!(sd = st->db = calloc(1, sizeof *sd)) || !(sd->buf = malloc(DB_CHUNK)))
            return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        sd->pool = s->db;
        at_result r = (sd->d = take(s->db, err)) ? db_exec(sd->d, "BEGIN", err) : err->code;
        if (r == AT_OK && (r = db_blob_begin(sd->d, &sd->blob, err)) == AT_OK)
            sd->copying = true;
        if (r != AT_OK) {
            sd->failed = true;
            return r;
        }
    }
    return stream_to(sd, st->fd, whole, err);
}

void sdb_stage_abort(struct at_stage_db *sd)
{
    if (!sd)
        return;
    if (sd->d) {
        if (sd->copying)
            db_blob_abort(sd->d);
        db_rollback(sd->d);
        give(sd->pool, sd->d);
    }
    free(sd->buf);
    free(sd);
}

/* The commit's side: sends what remains and closes the blob (size bytes). */
static at_result stream_finish(struct at_stage_db *sd, int fd, uint64_t size, at_error *err)
{
    if (sd->failed)
        return at_error_set(err, AT_ERR_IO, -1, "the upload's database transaction failed");
    at_result r = stream_to(sd, fd, size, err);
    if (r == AT_OK && (r = db_blob_end(sd->d, sd->blob, sd->sent, err)) != AT_OK)
        sd->failed = true;
    if (r == AT_OK)
        sd->copying = false; /* else aborted with the stage */
    return r;
}

at_result sdb_stage(at_store *s, at_stage *st, at_error *err)
{
    char p[4096];
    st->fd = -1;
    st->path = NULL;
    st->db = NULL; /* object_to_file stages without at_store_stage */
    int k = snprintf(p, sizeof p, "%s/agent-traced-import-XXXXXX", s->db->tmp);
    if (k < 0 || (size_t)k >= sizeof p)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "temporary directory path too long");
    if ((st->fd = mkostemp(p, O_CLOEXEC)) < 0)
        return sys_fail(err, "cannot create a staging file in", s->db->tmp);
    /* held until the fd is closed, by us or by our death: sdb_sweep takes
     * an unlocked staging file for one whose writer is gone */
    flock(st->fd, LOCK_EX | LOCK_NB);
    if (!(st->path = strdup(p))) {
        at_stage_discard(st);
        unlink(p);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    return AT_OK;
}

unsigned sdb_sweep(at_store *s)
{
    DIR *d = opendir(s->db->tmp);
    if (!d)
        return 0;
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "agent-traced-import-", 20) != 0)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}

/* Copies an object into a temporary file (for store_classify). */
static at_result object_to_file(at_store *s, db *d, const uint8_t sha[AT_SHA256_LEN], at_stage *out, at_error *err)
{
    at_result r = sdb_stage(s, out, err);
    dbs_reader *rd = NULL;
    if (r == AT_OK)
        r = dbs_reader_open(d, s->db->ws, sha, &rd, err);
    char *buf = r == AT_OK ? malloc(1 << 16) : NULL;
    if (r == AT_OK && !buf)
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    for (uint64_t pos = 0; r == AT_OK;) {
        ssize_t k = dbs_reader_read(d, rd, pos, buf, 1 << 16, err);
        if (k < 0)
            r = err->code;
        else if (k == 0)
            break;
        else if (write(out->fd, buf, (size_t)k) != k)
            r = sys_fail(err, "cannot write", out->path);
        pos += k > 0 ? (uint64_t)k : 0;
    }
    free(buf);
    dbs_reader_free(rd);
    if (r != AT_OK)
        at_stage_discard(out);
    return r;
}

static at_result decide_and_store(at_store *s, db *d, at_stage *stg, uint64_t staged, int64_t blob,
                                  at_import_result *res, const char *meta, size_t meta_len,
                                  const dbs_current *curp, bool exists, at_commit_info *info, bool *lost,
                                  at_error *err);

/* One attempt at the commit: decides against the current version, then
 * stores the new one unless nothing changed. *lost: another writer moved
 * the session in between. */
static at_result commit_once(at_store *s, db *d, at_stage *stg, uint64_t staged, at_import_result *res,
                             const char *meta, size_t meta_len, at_commit_info *info, bool *lost, at_error *err)
{
    const char *sid = res->session_id;
    *lost = false;
    /* a lost attempt's decision is not this one's (the subagent fields are the caller's) */
    at_commit_info fresh = {.log_index = -1,
                            .depth = info->depth,
                            .parent_event_id_len = info->parent_event_id_len,
                            .resumed_from = info->resumed_from};
    memcpy(fresh.parent_event_id, info->parent_event_id, sizeof fresh.parent_event_id);
    *info = fresh;
    dbs_current cur;
    bool exists = true;
    at_result r = dbs_current_get(d, s->db->ws, sid, &cur, err);
    if (r == AT_ERR_NOT_FOUND) {
        exists = false;
        r = AT_OK;
        memset(&cur, 0, sizeof cur);
    }
    if (r != AT_OK)
        return r;
    if (res->body_bytes && (!exists || cur.version != info->resumed_from))
        return at_error_set(err, AT_ERR_CONFLICT, -1,
                            "the session changed during this upload (it resumed version %llu, now %llu): "
                            "send the transcript from the offset GET /sessions/%s/versions gives",
                            (unsigned long long)info->resumed_from, (unsigned long long)cur.version, sid);
    at_stage whole = {-1, NULL, NULL};
    int64_t blob = stg->db ? stg->db->blob : 0; /* the upload streamed into it */
    if (res->body_bytes) {
        /* the whole events: the current version's first body_bytes, then the new ones */
        struct stat sb;
        if ((r = object_to_file(s, d, cur.sha256, &whole, err)) != AT_OK)
            return r;
        if (ftruncate(whole.fd, (off_t)res->body_bytes) < 0 || fstat(stg->fd, &sb) < 0 ||
            lseek(whole.fd, 0, SEEK_END) < 0 || copy_range(stg->fd, 0, (uint64_t)sb.st_size, whole.fd) != AT_OK) {
            r = sys_fail(err, "cannot assemble the events in", whole.path);
            at_stage_discard(&whole);
            return r;
        }
        stg = &whole;
        staged = res->body_bytes + (uint64_t)sb.st_size;
    }
    r = decide_and_store(s, d, stg, staged, blob, res, meta, meta_len, &cur, exists, info, lost, err);
    at_stage_discard(&whole);
    return r;
}

/* commit_once with the whole events staged in stg (blob > 0: the upload's
 * own bytes, the resumed ones only for an incremental upload, are in that
 * blob already). */
static at_result decide_and_store(at_store *s, db *d, at_stage *stg, uint64_t staged, int64_t blob,
                                  at_import_result *res, const char *meta, size_t meta_len,
                                  const dbs_current *curp, bool exists, at_commit_info *info, bool *lost,
                                  at_error *err)
{
    const char *sid = res->session_id;
    dbs_current cur = *curp;
    at_result r;
    sess_state st;
    memset(&st, 0, sizeof st);
    st.have = cur.version > 0;
    uint64_t keep = 0;
    if (st.have) {
        at_version *vs = NULL;
        size_t nv = 0;
        if ((r = dbs_versions(d, s->db->ws, sid, &vs, &nv, err)) != AT_OK)
            return r;
        if (nv == 0 || vs[nv - 1].version != cur.version) {
            free(vs);
            *lost = true; /* moved between the two reads */
            return AT_OK;
        }
        st.cur = vs[nv - 1];
        free(vs);
        at_stage curf = {-1, NULL, NULL};
        events_facts f;
        if ((r = object_to_file(s, d, cur.sha256, &curf, err)) != AT_OK)
            return r;
        r = events_tail(curf.fd, st.cur.size, &f);
        if (r == AT_OK) {
            st.end_len = f.end_len;
            r = store_classify(&st, curf.fd, stg->fd, staged, res, info, &keep);
        }
        at_stage_discard(&curf);
        if (r != AT_OK)
            return at_error_set(err, r, -1, "cannot compare with the current version of %s", sid);
        info->have_previous_head = st.cur.have_head;
        memcpy(info->previous_head, st.cur.head, AT_SHA256_LEN);
    } else {
        info->result = AT_UPLOAD_CREATED;
    }
    info->version = cur.version;
    if (info->result == AT_UPLOAD_UNCHANGED)
        return AT_OK;
    dbs_import im = {
        .meta = meta,
        .meta_len = meta_len,
        .fd = stg->fd,
        .off = keep,
        .len = staged - keep,
        .delta = keep > 0,
        .base_size = keep,
        .v =
            {
                .events = res->events,
                .size = staged,
                .have_head = res->events > 0,
                .transcript_bytes = (int64_t)res->bytes,
                .cause = AT_CAUSE_IMPORT,
                .time = now_seconds(),
            },
    };
    if (blob > 0 && res->body_bytes) { /* the blob holds what follows cur's first body_bytes */
        im.blob = blob;
        im.delta = true;
        im.base_size = res->body_bytes;
    } else if (blob > 0) { /* the blob holds all of it: the object is its bytes from keep on */
        im.blob = blob;
        im.blob_start = keep;
    }
    memcpy(im.v.events_sha256, res->events_sha256, AT_SHA256_LEN);
    memcpy(im.v.head, res->head, AT_SHA256_LEN);
    memcpy(im.v.transcript_sha256, res->transcript_sha256, AT_SHA256_LEN);
    im.state = res->state;
    im.state_len = res->state_len;
    im.usage = res->usage;
    im.usage_len = res->usage_len;
    if ((r = dbs_commit(d, s->db->ws, sid, exists ? &cur : NULL, &im, lost, err)) == AT_OK && !*lost)
        info->version = im.v.version;
    return r;
}

at_result sdb_commit_import(at_store *s, at_stage *stg, at_import_result *res, at_commit_info *info, at_error *err)
{
    const char *sid = res->session_id;
    at_result r = AT_OK;
    db *d = NULL;
    at_buf meta;
    at_buf_init(&meta, AT_MAX_META_BYTES);
    struct stat sb;
    if (!at_session_id_ok(sid, strlen(sid)))
        r = at_error_set(err, AT_ERR_INVALID, -1,
                         "invalid session id (empty, blank, with control characters or not UTF-8)");
    else if (fstat(stg->fd, &sb) < 0)
        r = sys_fail(err, "cannot stat", stg->path);
    else if ((r = store_meta_bytes(s, &res->meta, &meta)) != AT_OK)
        at_error_set(err, r, -1, "cannot serialize session metadata");
    else if (stg->db) /* decided in the upload's transaction, which holds its bytes */
        r = stream_finish(stg->db, stg->fd, (uint64_t)sb.st_size, err);
    else if (!(d = take(s->db, err)))
        r = err->code;
    if (r == AT_OK && stg->db)
        d = stg->db->d;
    bool lost = true;
    for (unsigned t = 0; r == AT_OK && lost && t < DBS_MAX_TRIES; t++)
        r = commit_once(s, d, stg, (uint64_t)sb.st_size, res, meta.data, meta.len, info, &lost, err);
    if (r == AT_OK && lost)
        r = at_error_set(err, AT_ERR_CONFLICT, -1, "session %s: %d writers in a row got there first", sid,
                         DBS_MAX_TRIES);
    if (!stg->db) /* else the stage's, given back (rolled back unless committed) with it */
        give(s->db, d);
    at_buf_fini(&meta);
    at_stage_discard(stg);
    return r;
}

/* ---- subagent links (commit.c's, in the database) ---- */

at_result sdb_links_put(at_store *s, const char *parent, const at_import_result *res, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dbs_links_put(d, s->db->ws, parent, res->links, res->nlinks, err);
    give(s->db, d);
    return r;
}

bool sdb_link_find(at_store *s, const char *parent, const char *agent_id, char out[AT_MAX_EVENT_ID_BYTES + 1],
                   size_t *outn)
{
    at_error err = {0};
    db *d = take(s->db, &err);
    if (!d)
        return false;
    at_buf b;
    at_buf_init(&b, 0);
    bool found = false;
    if (dbs_link_find(d, s->db->ws, parent, agent_id, &b, &found, &err) == AT_OK && found &&
        b.len <= AT_MAX_EVENT_ID_BYTES) {
        memset(out, 0, AT_MAX_EVENT_ID_BYTES + 1);
        if (b.len)
            memcpy(out, b.data, b.len);
        *outn = b.len;
    } else {
        found = false;
    }
    at_buf_fini(&b);
    give(s->db, d);
    return found;
}

/* ---- workspaces ---- */

typedef struct {
    at_workspace_fn fn;
    void *ctx;
} ws_filter;

static void skip_default(void *ctx, const char *ws)
{
    ws_filter *f = ctx;
    if (strcmp(ws, AT_DEFAULT_WORKSPACE) != 0)
        f->fn(f->ctx, ws);
}

/* ---- for the log over the database (ledger_db.c) ---- */

struct db *sdb_take(at_store *s, at_error *err)
{
    return take(s->db, err);
}

void sdb_give(at_store *s, struct db *d)
{
    give(s->db, d);
}

const char *sdb_url(const at_store *s)
{
    return s->db->url;
}

const char *sdb_ws(const at_store *s)
{
    return s->db->ws;
}

at_result sdb_logged_index(at_store *s, const char *sid, uint64_t v, uint64_t *version, uint64_t *index,
                           at_error *err)
{
    if (v == 0) {
        bool have = false;
        at_version cur;
        at_result r = at_store_current(s, sid, &cur, &have, err);
        if (r != AT_OK)
            return r;
        if (!have)
            return at_error_set(err, AT_ERR_NOT_FOUND, -1, "session %s has no version yet", sid);
        v = cur.version;
    }
    *version = v;
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dblog_index(d, s->db->ws, sid, v, index, err);
    give(s->db, d);
    return r;
}

at_result sdb_workspaces(at_store *s, at_workspace_fn fn, void *ctx, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    fn(ctx, AT_DEFAULT_WORKSPACE);
    ws_filter f = {fn, ctx};
    at_result r = dbs_workspaces(d, skip_default, &f, err);
    give(s->db, d);
    return r;
}

at_result sdb_workspace_create(at_store *s, at_error *err)
{
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dbs_workspace_create(d, s->db->ws, err);
    give(s->db, d);
    return r;
}

at_result sdb_resume_state(at_store *s, const char *sid, uint64_t offset, char **state, size_t *len,
                           int64_t *recorded, uint64_t *version, at_error *err)
{
    at_version *vs = NULL;
    size_t n = 0;
    at_result r = sdb_versions(s, sid, &vs, &n, err);
    if (r == AT_ERR_NOT_FOUND || (r == AT_OK && n == 0) || (r == AT_OK && vs[n - 1].cause != AT_CAUSE_IMPORT))
        r = r == AT_ERR_NOT_FOUND
                ? r
                : at_error_set(err, AT_ERR_CONFLICT, -1,
                               "the current version of %s did not come from an import: upload the whole transcript",
                               sid);
    if (r != AT_OK) {
        free(vs);
        return r;
    }
    at_version cur = vs[n - 1];
    free(vs);
    *recorded = cur.transcript_bytes;
    if (cur.transcript_bytes < 0 || (uint64_t)cur.transcript_bytes != offset)
        return at_error_set(err, AT_ERR_CONFLICT, -1, "offset %llu does not continue %s: its transcript has %lld bytes",
                            (unsigned long long)offset, sid, (long long)cur.transcript_bytes);
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_buf b;
    at_buf_init(&b, 0);
    bool found = false;
    r = dbs_import_state(d, s->db->ws, sid, cur.version, &b, &found, err);
    give(s->db, d);
    if (r == AT_OK && !found)
        r = at_error_set(err, AT_ERR_CONFLICT, -1,
                         "no import state kept for version %llu of %s: upload the whole transcript",
                         (unsigned long long)cur.version, sid);
    if (r == AT_OK && !(*state = malloc(b.len + 1)))
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    if (r == AT_OK) {
        if (b.len)
            memcpy(*state, b.data, b.len);
        (*state)[b.len] = 0;
        *len = b.len;
        *version = cur.version;
    }
    at_buf_fini(&b);
    return r;
}

at_result at_store_find_event(at_store *s, const char *event_id, size_t idn, const char *sid, size_t max,
                              at_event_hit **hits, size_t *n, bool *more, at_error *err)
{
    *hits = NULL;
    *n = 0;
    *more = false;
    if (!s->db)
        return at_error_set(err, AT_ERR_INVALID, -1, "a directory's event index is index.c's");
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dbi_lookup(d, s->db->ws, event_id, idn, sid, max, hits, n, more, err);
    give(s->db, d);
    return r;
}

void at_event_hits_free(at_event_hit *hits, size_t n)
{
    dbi_hits_free(hits, n);
}

at_result sdb_usage(at_store *s, const char *sid, char **json, size_t *len, uint64_t *version, at_error *err)
{
    if (!sdb_session_exists(s, sid))
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", sid);
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_buf b;
    at_buf_init(&b, 0);
    bool found = false;
    at_result r = dbs_usage(d, s->db->ws, sid, &b, version, &found, err);
    give(s->db, d);
    if (r == AT_OK && found) {
        if (!(*json = malloc(b.len + 1))) {
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        } else {
            if (b.len)
                memcpy(*json, b.data, b.len);
            (*json)[b.len] = 0;
            *len = b.len;
        }
    }
    if (!found)
        *version = 0;
    at_buf_fini(&b);
    return r;
}

at_result at_store_api_keys(at_store *s, at_key_fn fn, void *ctx, at_error *err)
{
    if (!s->db)
        return store_db_unsupported(err, "keys in a storage directory");
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    at_result r = dbs_keys(d, fn, ctx, err);
    give(s->db, d);
    return r;
}

/* ---- gc ---- */

typedef struct {
    gc_session *v;
    size_t n, cap;
    bool oom;
} gc_list;

static void gc_collect(void *ctx, const char *sid, const char *meta, size_t meta_len, uint64_t size, double updated)
{
    gc_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        gc_session *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    gc_session *g = &l->v[l->n];
    memset(g, 0, sizeof *g);
    if (!(g->sid = strdup(sid))) {
        l->oom = true;
        return;
    }
    at_meta m;
    at_meta_init(&m);
    if (at_meta_parse(&m, meta, meta_len, false, NULL) == AT_OK) {
        g->started = at_meta_get_number(&m, AT_META_STARTED_AT, 0.0);
        double ended = at_meta_get_number(&m, AT_META_ENDED_AT, 0.0);
        g->when = ended > 0 ? ended : g->started;
    }
    at_meta_fini(&m);
    if (!(g->when > 0))
        g->when = updated; /* the directory's meta.json mtime */
    if (g->started != g->started)
        g->started = 0;
    g->bytes = meta_len + size;
    l->n++;
}

at_result sdb_gc(at_store *s, const at_gc_policy *p, at_gc_report *rep, at_error *err)
{
    memset(rep, 0, sizeof *rep);
    db *d = take(s->db, err);
    if (!d)
        return err->code;
    gc_list l = {0};
    at_result r = dbs_sessions_each(d, s->db->ws, gc_collect, &l, err);
    if (r == AT_OK && l.oom)
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    char **ids = NULL;
    size_t n = 0;
    if (r == AT_OK) {
        gc_choose(l.v, l.n, p, (double)time(NULL));
        if (!(ids = calloc(l.n ? l.n : 1, sizeof *ids)))
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        for (size_t i = 0; ids && i < l.n; i++)
            if (l.v[i].removed)
                ids[n++] = l.v[i].sid;
    }
    dbs_gc_counts c;
    if (r == AT_OK && (r = dbs_gc(d, s->db->ws, ids, n, p->keep_versions, p->dry_run, &c, err)) == AT_OK)
        *rep = (at_gc_report){c.sessions, c.versions, c.objects, c.bytes, c.objects_kept};
    give(s->db, d);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].sid);
    free(l.v);
    free(ids);
    return r;
}
