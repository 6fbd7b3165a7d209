/* dbstore.c - sessions, versions and objects in the database (dbstore.h). */
#include "db/dbstore.h"
#include "db/dbindex.h"
#include "db/schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reading --------------------------------------------------------------- */

typedef struct {
    at_sha256 *h;
} hash_sink;

static at_result hash_write(void *ctx, const char *p, size_t n, at_error *err)
{
    (void)err;
    at_sha256_update(((hash_sink *)ctx)->h, p, n);
    return AT_OK;
}

at_result dbs_current_get(db *d, const char *ws, const char *sid, dbs_current *cur, at_error *err)
{
    memset(cur, 0, sizeof *cur);
    const char *vals[2] = {ws, sid};
    PGresult *r = db_query(d,
                           "SELECT s.current_version, v.events, v.size, v.head, v.events_sha256, o.midstate "
                           "FROM sessions s "
                           "LEFT JOIN versions v ON v.workspace = s.workspace AND v.session = s.id "
                           "AND v.version = s.current_version "
                           "LEFT JOIN objects o ON o.workspace = v.workspace AND o.sha256 = v.events_sha256 "
                           "WHERE s.workspace = $1 AND s.id = $2",
                           2, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "no session %s in workspace %s", sid, ws);
    }
    cur->version = db_col_u64(r, 0, 0);
    at_result rc = AT_OK;
    if (cur->version) {
        cur->pos.lines = db_col_u64(r, 0, 1);
        cur->pos.bytes = db_col_u64(r, 0, 2);
        cur->pos.have_head = db_col_bytes(r, 0, 3, cur->pos.head, AT_SHA256_LEN);
        if (!db_col_bytes(r, 0, 4, cur->sha256, AT_SHA256_LEN))
            rc = at_error_set(err, AT_ERR_INVALID, -1, "session %s: version %llu has no object", sid,
                              (unsigned long long)cur->version);
        else if (!db_col_bytes(r, 0, 5, cur->pos.file_state, AT_SHA256_STATE_LEN)) {
            /* no midstate recorded: learn it by reading the object once */
            hash_sink hs = {at_sha256_new()};
            rc = hs.h ? dbs_object_read(d, ws, cur->sha256, hash_write, &hs, err)
                      : at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            if (rc == AT_OK)
                at_sha256_export(hs.h, cur->pos.file_state);
            at_sha256_free(hs.h);
        }
    }
    PQclear(r);
    return rc;
}

at_result dbs_object_read(db *d, const char *ws, const uint8_t sha256[AT_SHA256_LEN], db_write_fn write, void *ctx,
                          at_error *err)
{
    dbs_reader *rd = NULL;
    at_result rc = dbs_reader_open(d, ws, sha256, &rd, err);
    char *buf = rc == AT_OK ? malloc(DB_CHUNK) : NULL;
    if (rc == AT_OK && !buf)
        rc = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    for (uint64_t pos = 0; rc == AT_OK;) {
        ssize_t k = dbs_reader_read(d, rd, pos, buf, DB_CHUNK, err);
        if (k < 0)
            rc = err->code;
        else if (k == 0)
            break;
        else if ((rc = write(ctx, buf, (size_t)k, err)) == AT_OK)
            pos += (uint64_t)k;
    }
    free(buf);
    dbs_reader_free(rd);
    return rc;
}

void dbs_version_from_row(const PGresult *r, int row, at_version *v)
{
    memset(v, 0, sizeof *v);
    v->version = db_col_u64(r, row, 0);
    v->events = db_col_u64(r, row, 1);
    v->size = db_col_u64(r, row, 2);
    db_col_bytes(r, row, 3, v->events_sha256, AT_SHA256_LEN);
    v->have_head = db_col_bytes(r, row, 4, v->head, AT_SHA256_LEN);
    v->transcript_bytes = PQgetisnull(r, row, 5) ? -1 : (int64_t)db_col_u64(r, row, 5);
    db_col_bytes(r, row, 6, v->transcript_sha256, AT_SHA256_LEN);
    const char *cause = PQgetvalue(r, row, 7);
    v->cause = strcmp(cause, "append") == 0     ? AT_CAUSE_APPEND
               : strcmp(cause, "external") == 0 ? AT_CAUSE_EXTERNAL
                                                : AT_CAUSE_IMPORT;
    v->time = db_col_f64(r, row, 8);
}

at_result dbs_versions(db *d, const char *ws, const char *sid, at_version **out, size_t *n, at_error *err)
{
    *out = NULL;
    *n = 0;
    const char *vals[2] = {ws, sid};
    PGresult *r = db_query(d,
                           "SELECT " DBS_VERSION_COLUMNS " FROM versions WHERE workspace = $1 AND session = $2 "
                           "ORDER BY version",
                           2, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    int k = PQntuples(r);
    at_version *vs = k ? calloc((size_t)k, sizeof *vs) : NULL;
    if (k && !vs) {
        PQclear(r);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    for (int i = 0; i < k; i++)
        dbs_version_from_row(r, i, &vs[i]);
    PQclear(r);
    *out = vs;
    *n = (size_t)k;
    return AT_OK;
}

/* ---- writing --------------------------------------------------------------- */

at_result dbs_workspace_create(db *d, const char *ws, at_error *err)
{
    PGresult *r = db_query(d, "INSERT INTO workspaces VALUES ($1) ON CONFLICT DO NOTHING", 1, &ws, NULL, NULL, false,
                           err);
    PQclear(r);
    return r ? AT_OK : err->code;
}

at_result dbs_session_create(db *d, const char *ws, const char *sid, const char *meta, size_t meta_len,
                             bool *created, at_error *err)
{
    const char *vals[3] = {ws, sid, meta};
    int lens[3] = {0, 0, (int)meta_len};
    int fmts[3] = {0, 0, 1};
    at_result rc = dbs_workspace_create(d, ws, err);
    if (rc != AT_OK)
        return rc;
    PGresult *r;
    if (!(r = db_query(d, "INSERT INTO sessions (workspace, id, meta) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       3, vals, lens, fmts, false, err)))
        return err->code;
    *created = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return AT_OK;
}

static at_result buf_sink(void *ctx, const char *p, size_t n)
{
    return at_buf_add(ctx, p, n);
}

typedef struct {
    const at_buf *b;
    size_t off;
} buf_src;

static ssize_t buf_src_read(void *ctx, char *out, size_t cap, at_error *err)
{
    (void)err;
    buf_src *s = ctx;
    size_t k = s->b->len - s->off < cap ? s->b->len - s->off : cap;
    memcpy(out, s->b->data + s->off, k);
    s->off += k;
    return (ssize_t)k;
}

/* One attempt: the new version's lines chained to cur, stored, and the
 * session moved from cur->version to the next. *lost: another writer
 * moved it first (nothing of this attempt is kept). */
static at_result append_once(db *d, const char *ws, const char *sid, const dbs_current *cur, const at_event_json *ev,
                             size_t n, double now, uint64_t *version, bool *lost, at_error *err)
{
    *lost = false;
    at_buf lines;
    at_buf_init(&lines, 0);
    at_chain_writer w;
    at_result rc = cur->version ? at_chain_writer_resume(&w, buf_sink, &lines, &cur->pos)
                                : at_chain_writer_init(&w, buf_sink, &lines, NULL);
    if (rc != AT_OK) {
        at_buf_fini(&lines);
        return at_error_set(err, rc, -1, "cannot continue the chain of %s", sid);
    }
    for (size_t i = 0; i < n && rc == AT_OK; i++)
        rc = at_chain_write(&w, &ev[i]);
    at_chain_pos np;
    uint8_t sha[AT_SHA256_LEN];
    at_chain_writer_pos(&w, &np);
    at_chain_writer_digest(&w, sha);
    at_chain_writer_fini(&w);
    if (rc != AT_OK) {
        at_buf_fini(&lines);
        return at_error_set(err, rc, -1, "cannot serialize the events");
    }
    char nv[24], oldv[24], size[24], bsz[24], blob_s[24], evs[24], tm[40];
    snprintf(nv, sizeof nv, "%llu", (unsigned long long)cur->version + 1);
    snprintf(oldv, sizeof oldv, "%llu", (unsigned long long)cur->version);
    snprintf(size, sizeof size, "%llu", (unsigned long long)np.bytes);
    snprintf(bsz, sizeof bsz, "%llu", (unsigned long long)cur->pos.bytes);
    snprintf(evs, sizeof evs, "%llu", (unsigned long long)np.lines);
    snprintf(tm, sizeof tm, "%.17g", now);
    buf_src src = {&lines, 0};
    int64_t blob = 0;
    uint64_t blob_size = 0;
    PGresult *r = NULL;
    /* the blob inside the transaction: a lost attempt leaves nothing */
    if ((rc = db_exec(d, "BEGIN", err)) == AT_OK)
        rc = db_blob_write(d, buf_src_read, &src, &blob, &blob_size, err);
    if (rc == AT_OK) {
        snprintf(blob_s, sizeof blob_s, "%lld", (long long)blob);
        const char *vals[7] = {ws,   (const char *)sha, size, blob_s, cur->version ? (const char *)cur->sha256 : NULL,
                               bsz, (const char *)np.file_state};
        int lens[7] = {0, AT_SHA256_LEN, 0, 0, AT_SHA256_LEN, 0, AT_SHA256_STATE_LEN};
        int fmts[7] = {0, 1, 0, 0, 1, 0, 1};
        r = db_query(d,
                     "INSERT INTO objects (workspace, sha256, size, blob, base, base_size, midstate) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                     7, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK) {
        /* the compare-and-swap */
        const char *vals[5] = {ws, sid, oldv, nv, np.have_head ? (const char *)np.head : NULL};
        int lens[5] = {0, 0, 0, 0, AT_SHA256_LEN};
        int fmts[5] = {0, 0, 0, 0, 1};
        r = db_query(d,
                     "UPDATE sessions SET current_version = $4, head = $5, updated_at = now() "
                     "WHERE workspace = $1 AND id = $2 AND current_version = $3",
                     5, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        *lost = r && strcmp(PQcmdTuples(r), "1") != 0;
        PQclear(r);
    }
    if (rc == AT_OK && !*lost) {
        const char *vals[8] = {ws, sid, nv, evs, size, (const char *)sha, np.have_head ? (const char *)np.head : NULL,
                               tm};
        int lens[8] = {0, 0, 0, 0, 0, AT_SHA256_LEN, AT_SHA256_LEN, 0};
        int fmts[8] = {0, 0, 0, 0, 0, 1, 1, 0};
        r = db_query(d,
                     "INSERT INTO versions (workspace, session, version, events, size, events_sha256, head, cause, "
                     "time) VALUES ($1, $2, $3, $4, $5, $6, $7, 'append', $8)",
                     8, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK && !*lost) /* the event index: the new lines' rows */
        rc = dbi_index_lines(d, ws, sid, lines.data ? lines.data : "", lines.len, cur->pos.lines, cur->pos.bytes,
                             err);
    if (rc == AT_OK && !*lost)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK || *lost)
        db_rollback(d);
    at_buf_fini(&lines);
    if (rc == AT_OK && !*lost)
        *version = cur->version + 1;
    return rc;
}

at_result dbs_append(db *d, const char *ws, const char *sid, const at_event_json *ev, size_t n, double now,
                     uint64_t *version, unsigned *retries, at_error *err)
{
    *retries = 0;
    for (unsigned t = 0; t < DBS_MAX_TRIES; t++) {
        dbs_current cur;
        at_result rc = dbs_current_get(d, ws, sid, &cur, err);
        bool lost = false;
        if (rc == AT_OK)
            rc = append_once(d, ws, sid, &cur, ev, n, now, version, &lost, err);
        if (rc != AT_OK || !lost)
            return rc;
        (*retries)++;
    }
    return at_error_set(err, AT_ERR_CONFLICT, -1, "session %s: %d writers in a row got there first", sid,
                        DBS_MAX_TRIES);
}

/* ---- serve --database --------------------------------------------------------- */

static at_result bytes_col(PGresult *r, int row, int col, at_buf *out)
{
    return at_buf_add(out, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

at_result dbs_meta_get(db *d, const char *ws, const char *sid, at_buf *meta, at_error *err)
{
    const char *vals[2] = {ws, sid};
    PGresult *r = db_query(d, "SELECT meta FROM sessions WHERE workspace = $1 AND id = $2", 2, vals, NULL, NULL, true,
                           err);
    if (!r)
        return err->code;
    at_result rc = PQntuples(r) == 0 ? at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", sid)
                                     : bytes_col(r, 0, 0, meta);
    if (rc == AT_ERR_NOMEM)
        at_error_set(err, rc, -1, "out of memory");
    PQclear(r);
    return rc;
}

at_result dbs_meta_lock(db *d, const char *ws, const char *sid, at_buf *meta, bool *found, at_error *err)
{
    *found = false;
    at_result rc = db_exec(d, "BEGIN", err);
    if (rc != AT_OK)
        return rc;
    const char *vals[2] = {ws, sid};
    PGresult *r = db_query(d, "SELECT meta FROM sessions WHERE workspace = $1 AND id = $2 FOR UPDATE", 2, vals, NULL,
                           NULL, true, err);
    if (!r) {
        db_rollback(d);
        return err->code;
    }
    *found = PQntuples(r) > 0;
    if (*found && (rc = bytes_col(r, 0, 0, meta)) != AT_OK) {
        at_error_set(err, rc, -1, "out of memory");
        db_rollback(d);
    }
    PQclear(r);
    return rc;
}

at_result dbs_meta_store(db *d, const char *ws, const char *sid, const char *meta, size_t len, bool create,
                         bool *lost, at_error *err)
{
    *lost = false;
    const char *vals[3] = {ws, sid, meta};
    int lens[3] = {0, 0, (int)len};
    int fmts[3] = {0, 0, 1};
    at_result rc = create ? dbs_workspace_create(d, ws, err) : AT_OK;
    PGresult *r = NULL;
    if (rc == AT_OK)
        r = db_query(d,
                     create ? "INSERT INTO sessions (workspace, id, meta) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
                            : "UPDATE sessions SET meta = $3, updated_at = now() WHERE workspace = $1 AND id = $2",
                     3, vals, lens, fmts, false, err);
    if (rc == AT_OK && !r)
        rc = err->code;
    if (r)
        *lost = strcmp(PQcmdTuples(r), "1") != 0;
    PQclear(r);
    if (rc == AT_OK && !*lost)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK || *lost)
        db_rollback(d);
    return rc;
}

at_result dbs_session_ids(db *d, const char *ws, const char *prefix, size_t limit, char ***ids, size_t *n,
                          at_error *err)
{
    *ids = NULL;
    *n = 0;
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", limit ? limit : (size_t)INT64_MAX);
    const char *vals[3] = {ws, prefix ? prefix : "", lim};
    /* left(id, length($2)) = $2: a prefix without LIKE's wildcards */
    PGresult *r = db_query(d,
                           "SELECT id FROM sessions WHERE workspace = $1 AND left(id, length($2)) = $2 "
                           "ORDER BY id COLLATE \"C\" LIMIT $3::bigint",
                           3, vals, NULL, NULL, false, err);
    if (!r)
        return err->code;
    int k = PQntuples(r);
    char **out = calloc((size_t)k + 1, sizeof *out);
    at_result rc = out ? AT_OK : AT_ERR_NOMEM;
    for (int i = 0; i < k && rc == AT_OK; i++)
        if (!(out[i] = strdup(PQgetvalue(r, i, 0))))
            rc = AT_ERR_NOMEM;
    PQclear(r);
    if (rc != AT_OK) {
        for (int i = 0; out && i < k; i++)
            free(out[i]);
        free(out);
        return at_error_set(err, rc, -1, "out of memory");
    }
    *ids = out;
    *n = (size_t)k;
    return AT_OK;
}

at_result dbs_version_object(db *d, const char *ws, const char *sid, uint64_t version,
                             uint8_t sha256[AT_SHA256_LEN], at_error *err)
{
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)version);
    const char *vals[3] = {ws, sid, v};
    PGresult *r = db_query(d,
                           "SELECT events_sha256 FROM versions WHERE workspace = $1 AND session = $2 AND version = $3",
                           3, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = PQntuples(r) && db_col_bytes(r, 0, 0, sha256, AT_SHA256_LEN)
                       ? AT_OK
                       : at_error_set(err, AT_ERR_NOT_FOUND, -1, "no version %s", v);
    PQclear(r);
    return rc;
}

at_result dbs_workspaces(db *d, void (*fn)(void *ctx, const char *ws), void *ctx, at_error *err)
{
    PGresult *r = db_query(d, "SELECT id FROM workspaces ORDER BY id COLLATE \"C\"", 0, NULL, NULL, NULL, false, err);
    if (!r)
        return err->code;
    for (int i = 0; i < PQntuples(r); i++)
        fn(ctx, PQgetvalue(r, i, 0));
    PQclear(r);
    return AT_OK;
}

at_result dbs_usage(db *d, const char *ws, const char *sid, at_buf *out, uint64_t *version, bool *found,
                    at_error *err)
{
    *found = false;
    *version = 0;
    const char *vals[2] = {ws, sid};
    /* the newest import: appends after it do not change the transcript's usage */
    PGresult *r = db_query(d,
                           "SELECT version, usage FROM versions WHERE workspace = $1 AND session = $2 "
                           "AND cause = 'import' ORDER BY version DESC LIMIT 1",
                           2, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = AT_OK;
    if (PQntuples(r) && !PQgetisnull(r, 0, 1)) {
        *version = db_col_u64(r, 0, 0);
        *found = (rc = bytes_col(r, 0, 1, out)) == AT_OK;
    }
    PQclear(r);
    return rc == AT_OK ? AT_OK : at_error_set(err, rc, -1, "out of memory");
}

at_result dbs_workspace_exists(db *d, const char *ws, bool *exists, at_error *err)
{
    PGresult *r = db_query(d, "SELECT 1 FROM workspaces WHERE id = $1", 1, &ws, NULL, NULL, false, err);
    if (!r)
        return err->code;
    *exists = PQntuples(r) > 0;
    PQclear(r);
    return AT_OK;
}

/* ---- an object read in place ---- */

typedef struct {
    uint64_t start, len; /* object bytes [start, start + len) ... */
    int64_t blob;        /* ... are this blob's len bytes from byte boff */
    uint64_t boff;
} extent;

struct dbs_reader {
    extent *ext;
    size_t n;
    uint64_t size;
    int64_t chunk_blob; /* the chunk cached: -1 none */
    uint32_t chunk_seq;
    size_t chunk_len;
    char *chunk;
};

at_result dbs_reader_open(db *d, const char *ws, const uint8_t sha256[AT_SHA256_LEN], dbs_reader **out,
                          at_error *err)
{
    *out = NULL;
    const char *vals[2] = {ws, (const char *)sha256};
    int lens[2] = {0, AT_SHA256_LEN};
    int fmts[2] = {0, 1};
    /* the same chain as dbs_object_read */
    PGresult *r = db_query(d,
                           "WITH RECURSIVE c(sha256, blob, base, base_size, size, blob_start, depth) AS ("
                           " SELECT sha256, blob, base, base_size, size, blob_start, 0 FROM objects"
                           " WHERE workspace = $1 AND sha256 = $2"
                           " UNION ALL"
                           " SELECT o.sha256, o.blob, o.base, o.base_size, o.size, o.blob_start, c.depth + 1"
                           " FROM objects o JOIN c ON o.workspace = $1 AND o.sha256 = c.base)"
                           " SELECT blob, base_size, size, blob_start FROM c ORDER BY depth DESC",
                           2, vals, lens, fmts, true, err);
    if (!r)
        return err->code;
    int k = PQntuples(r);
    if (k == 0) {
        PQclear(r);
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "no such object in workspace %s", ws);
    }
    dbs_reader *rd = calloc(1, sizeof *rd);
    uint64_t *need = malloc((size_t)k * sizeof *need);
    if (rd)
        rd->ext = calloc((size_t)k, sizeof *rd->ext);
    if (!rd || !need || !rd->ext) {
        free(need);
        dbs_reader_free(rd);
        PQclear(r);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    /* object i (root first) gives bytes [base_size_i, need_i) from its blob */
    need[k - 1] = db_col_u64(r, k - 1, 2);
    for (int i = k - 1; i > 0; i--) {
        uint64_t bs = db_col_u64(r, i, 1);
        need[i - 1] = bs < need[i] ? bs : need[i];
    }
    for (int i = 0; i < k; i++) {
        uint64_t bs = i ? db_col_u64(r, i, 1) : 0;
        if (need[i] > bs)
            rd->ext[rd->n++] = (extent){bs, need[i] - bs, (int64_t)db_col_u64(r, i, 0), db_col_u64(r, i, 3)};
    }
    rd->size = need[k - 1];
    rd->chunk_blob = -1;
    free(need);
    PQclear(r);
    *out = rd;
    return AT_OK;
}

uint64_t dbs_reader_size(const dbs_reader *rd)
{
    return rd->size;
}

ssize_t dbs_reader_read(db *d, dbs_reader *rd, uint64_t pos, char *buf, size_t n, at_error *err)
{
    if (pos >= rd->size || n == 0)
        return 0;
    size_t i = 0;
    while (i + 1 < rd->n && rd->ext[i + 1].start <= pos)
        i++;
    const extent *e = &rd->ext[i];
    uint64_t in_blob = e->boff + (pos - e->start);
    uint32_t seq = (uint32_t)(in_blob / DB_CHUNK);
    if (rd->chunk_blob != e->blob || rd->chunk_seq != seq) {
        if (!rd->chunk && !(rd->chunk = malloc(DB_CHUNK))) {
            at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            return -1;
        }
        char id[24], sq[16];
        snprintf(id, sizeof id, "%lld", (long long)e->blob);
        snprintf(sq, sizeof sq, "%u", seq);
        const char *vals[2] = {id, sq};
        PGresult *r = db_query(d, "SELECT data FROM blob_chunks WHERE blob = $1 AND seq = $2", 2, vals, NULL, NULL,
                               true, err);
        if (!r)
            return -1;
        size_t len = PQntuples(r) ? (size_t)PQgetlength(r, 0, 0) : 0;
        if (len == 0 || len > DB_CHUNK) {
            PQclear(r);
            at_error_set(err, AT_ERR_IO, -1, "blob %s: chunk %s is missing", id, sq);
            return -1;
        }
        memcpy(rd->chunk, PQgetvalue(r, 0, 0), len);
        PQclear(r);
        rd->chunk_blob = e->blob;
        rd->chunk_seq = seq;
        rd->chunk_len = len;
    }
    uint64_t off = in_blob - (uint64_t)seq * DB_CHUNK;
    if (off >= rd->chunk_len) {
        at_error_set(err, AT_ERR_IO, -1, "blob %lld is shorter than its object says", (long long)e->blob);
        return -1;
    }
    uint64_t k = rd->chunk_len - off;
    if (k > e->start + e->len - pos)
        k = e->start + e->len - pos;
    if (k > n)
        k = n;
    memcpy(buf, rd->chunk + off, (size_t)k);
    return (ssize_t)k;
}

void dbs_reader_free(dbs_reader *rd)
{
    if (!rd)
        return;
    free(rd->ext);
    free(rd->chunk);
    free(rd);
}

/* ---- committing an import ---- */

typedef struct {
    int fd;
    uint64_t off, left;
} fd_src;

static ssize_t fd_src_read(void *ctx, char *out, size_t cap, at_error *err)
{
    fd_src *s = ctx;
    if (cap > s->left)
        cap = (size_t)s->left;
    if (cap == 0)
        return 0;
    ssize_t k = pread(s->fd, out, cap, (off_t)s->off);
    if (k < 0) {
        at_error_set(err, AT_ERR_IO, errno, "cannot read the staged events");
        return -1;
    }
    if (k == 0) {
        at_error_set(err, AT_ERR_IO, -1, "the staged events are shorter than expected");
        return -1;
    }
    s->off += (uint64_t)k;
    s->left -= (uint64_t)k;
    return k;
}

at_result dbs_commit(db *d, const char *ws, const char *sid, const dbs_current *cur, dbs_import *im, bool *lost,
                     at_error *err)
{
    *lost = false;
    uint64_t version = cur ? cur->version + 1 : 1;
    char nv[24], oldv[24], size[24], bsz[24], blob_s[24], bst[24], evs[24], tb[24], tm[40];
    bool streamed = im->blob > 0; /* in the caller's transaction */
    snprintf(nv, sizeof nv, "%llu", (unsigned long long)version);
    snprintf(oldv, sizeof oldv, "%llu", (unsigned long long)(cur ? cur->version : 0));
    snprintf(size, sizeof size, "%llu", (unsigned long long)im->v.size);
    snprintf(bsz, sizeof bsz, "%llu", (unsigned long long)(im->delta ? im->base_size : 0));
    snprintf(evs, sizeof evs, "%llu", (unsigned long long)im->v.events);
    snprintf(tb, sizeof tb, "%lld", (long long)im->v.transcript_bytes);
    snprintf(tm, sizeof tm, "%.17g", im->v.time);
    snprintf(bst, sizeof bst, "%llu", (unsigned long long)(streamed ? im->blob_start : 0));
    fd_src src = {im->fd, im->off, im->len};
    int64_t blob = 0;
    uint64_t blob_size = 0;
    const char *ev_sha = (const char *)im->v.events_sha256;
    const char *head = im->v.have_head ? (const char *)im->v.head : NULL;
    PGresult *r = NULL;
    at_result rc = db_exec(d, streamed ? "SAVEPOINT attempt" : "BEGIN", err);
    if (rc == AT_OK && !cur)
        rc = dbs_workspace_create(d, ws, err);
    if (rc == AT_OK && streamed)
        blob = im->blob;
    else if (rc == AT_OK)
        rc = db_blob_write(d, fd_src_read, &src, &blob, &blob_size, err);
    bool new_object = false;
    if (rc == AT_OK) {
        snprintf(blob_s, sizeof blob_s, "%lld", (long long)blob);
        const char *vals[7] = {ws, ev_sha, size, blob_s, im->delta ? (const char *)cur->sha256 : NULL, bsz, bst};
        int lens[7] = {0, AT_SHA256_LEN, 0, 0, AT_SHA256_LEN, 0, 0};
        int fmts[7] = {0, 1, 0, 0, 1, 0, 0};
        r = db_query(d,
                     "INSERT INTO objects (workspace, sha256, size, blob, base, base_size, blob_start) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                     7, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        new_object = r && strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
    }
    if (rc == AT_OK) {
        /* the object was there already: this blob is nobody's; else the
         * whole chunks an extension's streamed blob shares with its base */
        char seq[24];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)(streamed ? im->blob_start / DB_CHUNK : 0));
        const char *vals[2] = {blob_s, seq};
        bool drop_blob = !new_object, drop_shared = new_object && streamed && im->blob_start >= DB_CHUNK;
        if (drop_blob || drop_shared) {
            if (drop_blob)
                r = db_query(d, "DELETE FROM blobs WHERE id = $1", 1, vals, NULL, NULL, false, err);
            else
                r = db_query(d, "DELETE FROM blob_chunks WHERE blob = $1 AND seq < $2", 2, vals, NULL, NULL, false,
                             err);
            rc = r ? AT_OK : err->code;
            PQclear(r);
        }
    }
    if (rc == AT_OK) {
        const char *vals[6] = {ws, sid, oldv, nv, head, im->meta};
        int lens[6] = {0, 0, 0, 0, AT_SHA256_LEN, (int)im->meta_len};
        int fmts[6] = {0, 0, 0, 0, 1, 1};
        /* create, or the compare-and-swap */
        r = db_query(d,
                     cur ? "UPDATE sessions SET current_version = $4, head = $5, meta = $6, updated_at = now() "
                           "WHERE workspace = $1 AND id = $2 AND current_version = $3"
                         : "INSERT INTO sessions (workspace, id, meta, current_version, head) "
                           "SELECT $1, $2, $6, $4, $5 WHERE $3::bigint = 0 ON CONFLICT DO NOTHING",
                     6, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        *lost = r && strcmp(PQcmdTuples(r), "1") != 0;
        PQclear(r);
    }
    if (rc == AT_OK && !*lost) {
        const char *ts = im->v.transcript_bytes >= 0 ? (const char *)im->v.transcript_sha256 : NULL;
        const char *vals[11] = {ws,   sid, nv, evs, size, ev_sha, head, im->v.transcript_bytes >= 0 ? tb : NULL,
                                ts,   tm,  im->usage};
        int lens[11] = {0, 0, 0, 0, 0, AT_SHA256_LEN, AT_SHA256_LEN, 0, AT_SHA256_LEN, 0, (int)im->usage_len};
        int fmts[11] = {0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1};
        r = db_query(d,
                     "INSERT INTO versions (workspace, session, version, events, size, events_sha256, head, "
                     "transcript_bytes, transcript_sha256, cause, time, usage) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'import', $10, $11)",
                     11, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK && !*lost) /* the event index: the session's rows, of the whole new version */
        rc = dbi_index_file(d, ws, sid, im->fd, im->v.size, NULL, err); /* the staged events, hashed as staged */
    if (rc == AT_OK && !*lost && im->state) {
        const char *vals[4] = {ws, sid, nv, im->state};
        int lens[4] = {0, 0, 0, (int)im->state_len};
        int fmts[4] = {0, 0, 0, 1};
        r = db_query(d, "INSERT INTO import_states VALUES ($1, $2, $3, $4)", 4, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK && !*lost)
        rc = db_exec(d, "COMMIT", err);
    if (rc == AT_OK && *lost && streamed)
        rc = db_exec(d, "ROLLBACK TO SAVEPOINT attempt", err);
    else if (rc != AT_OK || *lost)
        db_rollback(d);
    if (rc != AT_OK && streamed)
        db_rollback(d);
    if (rc == AT_OK && !*lost)
        im->v.version = version;
    return rc;
}

at_result dbs_import_state(db *d, const char *ws, const char *sid, uint64_t version, at_buf *out, bool *found,
                           at_error *err)
{
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)version);
    const char *vals[3] = {ws, sid, v};
    PGresult *r = db_query(d, "SELECT state FROM import_states WHERE workspace = $1 AND session = $2 AND version = $3",
                           3, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    *found = PQntuples(r) > 0;
    at_result rc = *found ? bytes_col(r, 0, 0, out) : AT_OK;
    PQclear(r);
    return rc == AT_OK ? AT_OK : at_error_set(err, rc, -1, "out of memory");
}

/* ---- subagent links ---- */

at_result dbs_links_put(db *d, const char *ws, const char *parent, const at_import_link *links, size_t n,
                        at_error *err)
{
    bool own = PQtransactionStatus(db_conn(d)) == PQTRANS_IDLE; /* else the caller's transaction */
    at_result rc = own ? db_exec(d, "BEGIN", err) : AT_OK;
    const char *vals[4] = {ws, parent, NULL, NULL};
    int lens[4] = {0, 0, 0, 0};
    int fmts[4] = {0, 0, 0, 1};
    PGresult *r = NULL;
    if (rc == AT_OK) {
        r = db_query(d, "DELETE FROM links WHERE workspace = $1 AND parent = $2", 2, vals, NULL, NULL, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    for (size_t i = 0; i < n && rc == AT_OK; i++) {
        vals[2] = links[i].agent_id;
        vals[3] = links[i].event_id;
        lens[3] = (int)links[i].event_id_len;
        r = db_query(d,
                     "INSERT INTO links VALUES ($1, $2, $3, $4) ON CONFLICT (workspace, parent, agent_id) "
                     "DO UPDATE SET event_id = $4",
                     4, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK && own)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK && own)
        db_rollback(d);
    return rc;
}

at_result dbs_link_find(db *d, const char *ws, const char *parent, const char *agent_id, at_buf *event_id,
                        bool *found, at_error *err)
{
    *found = false;
    const char *vals[3] = {ws, parent, agent_id};
    PGresult *r = db_query(d, "SELECT event_id FROM links WHERE workspace = $1 AND parent = $2 AND agent_id = $3", 3,
                           vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = AT_OK;
    if (PQntuples(r) && (rc = bytes_col(r, 0, 0, event_id)) == AT_OK)
        *found = true;
    PQclear(r);
    return rc == AT_OK ? AT_OK : at_error_set(err, rc, -1, "out of memory");
}

/* ---- API keys ---- */

at_result dbs_keys_replace(db *d, const dbs_key *keys, size_t n, at_error *err)
{
    at_result rc = db_exec(d, "BEGIN", err);
    if (rc == AT_OK)
        rc = db_exec(d, "DELETE FROM api_keys", err);
    for (size_t i = 0; i < n && rc == AT_OK; i++) {
        const char *vals[4] = {keys[i].name, keys[i].role, keys[i].workspace, (const char *)keys[i].sha256};
        int lens[4] = {0, 0, 0, AT_SHA256_LEN};
        int fmts[4] = {0, 0, 0, 1};
        PGresult *r = db_query(d, "INSERT INTO api_keys (name, role, workspace, sha256) VALUES ($1, $2, $3, $4)", 4,
                               vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK)
        db_rollback(d);
    return rc;
}

at_result dbs_keys(db *d, at_key_fn fn, void *ctx, at_error *err)
{
    PGresult *r = db_query(d, "SELECT name, role, workspace, sha256 FROM api_keys ORDER BY name COLLATE \"C\"", 0,
                           NULL, NULL, NULL, true, err);
    if (!r)
        return err->code;
    for (int i = 0; i < PQntuples(r); i++) {
        dbs_key k = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), {0}};
        if (db_col_bytes(r, i, 3, k.sha256, AT_SHA256_LEN))
            fn(ctx, &k);
    }
    PQclear(r);
    return AT_OK;
}

/* ---- gc ---- */

at_result dbs_sessions_each(db *d, const char *ws, dbs_session_fn fn, void *ctx, at_error *err)
{
    PGresult *r = db_query(d,
                           "SELECT s.id, s.meta, coalesce(v.size, 0)::bigint, "
                           "extract(epoch FROM s.updated_at)::float8 FROM sessions s "
                           "LEFT JOIN versions v ON v.workspace = s.workspace AND v.session = s.id "
                           "AND v.version = s.current_version WHERE s.workspace = $1",
                           1, &ws, NULL, NULL, true, err);
    if (!r)
        return err->code;
    for (int i = 0; i < PQntuples(r); i++)
        fn(ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), db_col_u64(r, i, 2),
           db_col_f64(r, i, 3));
    PQclear(r);
    return AT_OK;
}

/* Runs sql with $1 = ws (and $2 when given) and adds the rows it touched to
 * *count (the first column's sum instead when sum). */
static at_result gc_step(db *d, const char *sql, const char *ws, const char *p2, bool sum, uint64_t *count,
                         at_error *err)
{
    const char *vals[2] = {ws, p2};
    PGresult *r = db_query(d, sql, p2 ? 2 : 1, vals, NULL, NULL, false, err);
    if (!r)
        return err->code;
    if (sum)
        *count += PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    else if (count)
        *count += strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return AT_OK;
}

/* A text[] literal of ids ({"a","b"}: quotes and backslashes escaped). */
static at_result id_array(char *const *ids, size_t n, at_buf *out)
{
    at_result r = at_buf_addc(out, '{');
    for (size_t i = 0; i < n && r == AT_OK; i++) {
        if (i)
            r = at_buf_addc(out, ',');
        if (r == AT_OK)
            r = at_buf_addc(out, '"');
        for (const char *p = ids[i]; r == AT_OK && *p; p++)
            r = *p == '"' || *p == '\\' ? at_buf_printf(out, "\\%c", *p) : at_buf_addc(out, *p);
        if (r == AT_OK)
            r = at_buf_addc(out, '"');
    }
    if (r == AT_OK)
        r = at_buf_addc(out, '}');
    return r;
}

at_result dbs_gc(db *d, const char *ws, char *const *ids, size_t n, int64_t keep_versions, bool dry_run,
                 dbs_gc_counts *c, at_error *err)
{
    memset(c, 0, sizeof *c);
    at_buf arr;
    at_buf_init(&arr, 0);
    char keep[24];
    snprintf(keep, sizeof keep, "%lld", (long long)(keep_versions > 0 ? keep_versions : 0));
    at_result rc = id_array(ids, n, &arr);
    if (rc != AT_OK) {
        at_buf_fini(&arr);
        return at_error_set(err, rc, -1, "out of memory");
    }
    /* writers wait (their commits would race the object sweep); readers go on */
    if ((rc = db_exec(d, "BEGIN", err)) == AT_OK)
        rc = db_exec(d, "LOCK TABLE sessions, versions, objects IN EXCLUSIVE MODE", err);
    if (rc == AT_OK && n) /* the sessions' bytes: meta and current events */
        rc = gc_step(d,
                     "SELECT sum(length(s.meta) + coalesce(v.size, 0)) FROM sessions s LEFT JOIN versions v ON "
                     "v.workspace = s.workspace AND v.session = s.id AND v.version = s.current_version "
                     "WHERE s.workspace = $1 AND s.id = ANY($2::text[])",
                     ws, arr.data, true, &c->bytes, err);
    if (rc == AT_OK && n)
        rc = gc_step(d, "DELETE FROM sessions WHERE workspace = $1 AND id = ANY($2::text[])", ws, arr.data, false,
                     &c->sessions, err);
    if (rc == AT_OK && keep_versions > 0)
        rc = gc_step(d,
                     "DELETE FROM versions v USING sessions s WHERE v.workspace = $1 AND s.workspace = v.workspace "
                     "AND s.id = v.session AND v.version <= s.current_version - $2::bigint",
                     ws, keep, false, &c->versions, err);
    /* objects no version needs, itself or as a base */
    if (rc == AT_OK)
        rc = gc_step(d,
                     "WITH RECURSIVE live(sha) AS ("
                     " SELECT events_sha256 FROM versions WHERE workspace = $1"
                     " UNION SELECT o.base FROM objects o JOIN live ON o.workspace = $1 AND o.sha256 = live.sha"
                     " WHERE o.base IS NOT NULL) "
                     "DELETE FROM objects WHERE workspace = $1 AND sha256 NOT IN (SELECT sha FROM live)",
                     ws, NULL, false, &c->objects, err);
    /* blobs no object names: those of the objects just removed, and those
     * of writes whose object existed already (an identical version) */
    if (rc == AT_OK)
        rc = gc_step(d,
                     "WITH gone AS (DELETE FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.blob = b.id) "
                     "RETURNING size) SELECT sum(size) FROM gone WHERE $1::text IS NOT NULL",
                     ws, NULL, true, &c->bytes, err);
    if (rc == AT_OK)
        rc = gc_step(d, "SELECT count(*) FROM objects WHERE workspace = $1", ws, NULL, true, &c->objects_kept,
                     err);
    if (rc == AT_OK && !dry_run)
        rc = db_exec(d, "COMMIT", err);
    else
        db_rollback(d); /* a dry run, or a failure: nothing of it */
    at_buf_fini(&arr);
    return rc;
}
