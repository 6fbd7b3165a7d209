/* dbstore.c - sessions, versions and objects in the database (dbstore.h). */
#include "db/dbstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Writes object bytes [0, need) from the chain of objects it is made of:
 * object i is the first base_size_i bytes of object i-1, then its blob. */
at_result dbs_object_read(db *d, const char *ws, const uint8_t sha256[AT_SHA256_LEN], db_write_fn write, void *ctx,
                          at_error *err)
{
    const char *vals[2] = {ws, (const char *)sha256};
    int lens[2] = {0, AT_SHA256_LEN};
    int fmts[2] = {0, 1};
    PGresult *r = db_query(d,
                           "WITH RECURSIVE c(sha256, blob, base, base_size, size, depth) AS ("
                           " SELECT sha256, blob, base, base_size, size, 0 FROM objects"
                           " WHERE workspace = $1 AND sha256 = $2"
                           " UNION ALL"
                           " SELECT o.sha256, o.blob, o.base, o.base_size, o.size, c.depth + 1"
                           " FROM objects o JOIN c ON o.workspace = $1 AND o.sha256 = c.base)"
                           " SELECT blob, base_size, size FROM c ORDER BY depth DESC",
                           2, vals, lens, fmts, true, err);
    if (!r)
        return err->code;
    int k = PQntuples(r);
    if (k == 0) {
        PQclear(r);
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "no such object in workspace %s", ws);
    }
    /* need[i]: the bytes of object i the top one uses (rows are root first) */
    uint64_t *need = malloc((size_t)k * sizeof *need);
    if (!need) {
        PQclear(r);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    need[k - 1] = db_col_u64(r, k - 1, 2);
    for (int i = k - 1; i > 0; i--) {
        uint64_t bs = db_col_u64(r, i, 1);
        need[i - 1] = bs < need[i] ? bs : need[i];
    }
    at_result rc = AT_OK;
    for (int i = 0; i < k && rc == AT_OK; i++) {
        uint64_t bs = i ? db_col_u64(r, i, 1) : 0;
        if (need[i] > bs)
            rc = db_blob_read(d, (int64_t)db_col_u64(r, i, 0), need[i] - bs, write, ctx, err);
    }
    free(need);
    PQclear(r);
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

at_result dbs_session_create(db *d, const char *ws, const char *sid, const char *meta, size_t meta_len,
                             bool *created, at_error *err)
{
    const char *vals[3] = {ws, sid, meta};
    int lens[3] = {0, 0, (int)meta_len};
    int fmts[3] = {0, 0, 1};
    PGresult *r = db_query(d, "INSERT INTO workspaces VALUES ($1) ON CONFLICT DO NOTHING", 1, vals, NULL, NULL, false,
                           err);
    if (!r)
        return err->code;
    PQclear(r);
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
