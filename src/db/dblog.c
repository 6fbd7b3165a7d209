/* dblog.c - each workspace's transparency log in the database (dblog.h). */
#include "db/dblog.h"

#include "db/dbstore.h"

#include "agenttrace/merkle.h"
#include "agenttrace/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The advisory lock of ws's sequencer: a key derived from the workspace
 * (hashtext), in the class "agent-traced log". */
#define LEAD_SQL "SELECT pg_try_advisory_lock(1098, hashtext($1))"

at_result dblog_try_lead(db *d, const char *ws, bool *leader, at_error *err)
{
    const char *vals[1] = {ws};
    PGresult *r = db_query(d, LEAD_SQL, 1, vals, NULL, NULL, false, err);
    if (!r)
        return err->code;
    *leader = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return AT_OK;
}

at_result dblog_read_hashes(void *ctx, int level, uint64_t first, size_t count, uint8_t *out)
{
    dblog_reader *rd = ctx;
    char lv[16], f[24], n[24];
    snprintf(lv, sizeof lv, "%d", level);
    snprintf(f, sizeof f, "%llu", (unsigned long long)first);
    snprintf(n, sizeof n, "%zu", count);
    const char *vals[4] = {rd->ws, lv, f, n};
    at_error err = {0};
    PGresult *r = db_query(rd->d,
                           "SELECT hash FROM log_hashes WHERE workspace = $1 AND level = $2 AND idx >= $3 "
                           "AND idx < $3::bigint + $4::bigint ORDER BY idx",
                           4, vals, NULL, NULL, true, &err);
    if (!r)
        return err.code ? err.code : AT_ERR_IO;
    at_result rc = (size_t)PQntuples(r) == count ? AT_OK : AT_ERR_NOT_FOUND;
    for (size_t i = 0; rc == AT_OK && i < count; i++) {
        if (PQgetlength(r, (int)i, 0) != AT_MERKLE_HASH_LEN)
            rc = AT_ERR_INVALID;
        else
            memcpy(out + i * AT_MERKLE_HASH_LEN, PQgetvalue(r, (int)i, 0), AT_MERKLE_HASH_LEN);
    }
    PQclear(r);
    return rc;
}

/* The log's size: entries 0..size-1 are stored. */
static at_result log_size(db *d, const char *ws, uint64_t *size, at_error *err)
{
    const char *vals[1] = {ws};
    PGresult *r = db_query(d, "SELECT coalesce(max(idx) + 1, 0)::bigint FROM log_entries WHERE workspace = $1", 1,
                           vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    *size = db_col_u64(r, 0, 0);
    PQclear(r);
    return AT_OK;
}

/* Stores entry number idx and the hashes its leaf completes. */
static at_result log_one(db *d, const char *ws, uint64_t idx, const char *sid, const at_version *v, at_error *err)
{
    at_buf e;
    at_buf_init(&e, 0);
    uint8_t leaf[AT_MERKLE_HASH_LEN];
    at_merkle_stored st[AT_MERKLE_MAX_APPEND];
    size_t n = 0;
    dblog_reader rd = {d, ws};
    at_result rc = at_store_log_entry(sid, v, &e);
    if (rc == AT_OK)
        rc = at_merkle_leaf_hash(e.data, e.len, leaf);
    if (rc == AT_OK)
        rc = at_merkle_append(dblog_read_hashes, &rd, idx, leaf, st, &n);
    if (rc != AT_OK) {
        at_buf_fini(&e);
        return err->code ? err->code : at_error_set(err, rc, -1, "log: cannot append the entry of %s", sid);
    }
    char ix[24], ver[24];
    snprintf(ix, sizeof ix, "%llu", (unsigned long long)idx);
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)v->version);
    const char *ev[3] = {ws, ix, e.data};
    int el[3] = {0, 0, (int)e.len};
    int ef[3] = {0, 0, 1};
    PGresult *r = db_query(d, "INSERT INTO log_entries (workspace, idx, entry) VALUES ($1, $2, $3)", 3, ev, el, ef,
                           false, err);
    rc = r ? AT_OK : err->code;
    PQclear(r);
    for (size_t i = 0; rc == AT_OK && i < n; i++) {
        char lv[16], hx[24];
        snprintf(lv, sizeof lv, "%d", st[i].level);
        snprintf(hx, sizeof hx, "%llu", (unsigned long long)st[i].index);
        const char *hv[4] = {ws, lv, hx, (const char *)st[i].hash};
        int hl[4] = {0, 0, 0, AT_MERKLE_HASH_LEN};
        int hf[4] = {0, 0, 0, 1};
        r = db_query(d, "INSERT INTO log_hashes (workspace, level, idx, hash) VALUES ($1, $2, $3, $4)", 4, hv, hl,
                     hf, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    if (rc == AT_OK) {
        const char *uv[4] = {ws, sid, ver, ix};
        r = db_query(d, "UPDATE versions SET log_index = $4 WHERE workspace = $1 AND session = $2 AND version = $3",
                     4, uv, NULL, NULL, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    at_buf_fini(&e);
    return rc;
}

/* Signs and stores the checkpoint of size. */
static at_result sign_checkpoint(db *d, const dblog_config *c, uint64_t size, at_error *err)
{
    dblog_reader rd = {d, c->ws};
    at_note_checkpoint cp = {.origin = c->origin, .origin_len = strlen(c->origin), .size = size};
    at_result rc = at_merkle_root(dblog_read_hashes, &rd, size, cp.root);
    if (rc != AT_OK)
        return at_error_set(err, rc, -1, "log: cannot compute the root of %llu entries", (unsigned long long)size);
    at_buf text, note;
    at_buf_init(&text, 0);
    at_buf_init(&note, 0);
    const at_note_signer *signers[1] = {c->signer};
    rc = at_note_checkpoint_format(&cp, &text, err);
    if (rc == AT_OK)
        rc = at_note_sign(text.data, text.len, signers, 1, &note, err);
    if (rc == AT_OK) {
        char sz[24];
        snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
        const char *vals[3] = {c->ws, sz, note.data};
        int lens[3] = {0, 0, (int)note.len};
        int fmts[3] = {0, 0, 1};
        PGresult *r = db_query(d,
                               "INSERT INTO log_checkpoints (workspace, size, note) VALUES ($1, $2, $3) "
                               "ON CONFLICT DO NOTHING",
                               3, vals, lens, fmts, false, err);
        rc = r ? AT_OK : err->code;
        PQclear(r);
    }
    at_buf_fini(&text);
    at_buf_fini(&note);
    return rc;
}

at_result dblog_sequence(db *d, const dblog_config *c, size_t max, uint64_t *logged, uint64_t *size,
                         at_error *err)
{
    *logged = 0;
    at_result rc = db_exec(d, "BEGIN", err);
    if (rc == AT_OK)
        rc = log_size(d, c->ws, size, err);
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max);
    const char *vals[2] = {c->ws, lim};
    PGresult *r = rc == AT_OK ? db_query(d,
                                         "SELECT " DBS_VERSION_COLUMNS ", session FROM versions "
                                         "WHERE workspace = $1 AND log_index IS NULL ORDER BY seq LIMIT $2",
                                         2, vals, NULL, NULL, true, err)
                              : NULL;
    if (rc == AT_OK && !r)
        rc = err->code;
    for (int i = 0; r && rc == AT_OK && i < PQntuples(r); i++) {
        at_version v;
        dbs_version_from_row(r, i, &v);
        if ((rc = log_one(d, c->ws, *size, PQgetvalue(r, i, 9), &v, err)) == AT_OK) {
            (*size)++;
            (*logged)++;
        }
    }
    PQclear(r);
    if (rc == AT_OK && *logged)
        rc = sign_checkpoint(d, c, *size, err);
    if (rc == AT_OK)
        rc = db_exec(d, "COMMIT", err);
    if (rc != AT_OK) {
        db_rollback(d);
        *logged = 0;
    }
    return rc;
}

at_result dblog_checkpoint(db *d, const char *ws, at_buf *note, uint64_t *size, at_error *err)
{
    const char *vals[1] = {ws};
    PGresult *r = db_query(d,
                           "SELECT size, note FROM log_checkpoints WHERE workspace = $1 ORDER BY size DESC LIMIT 1", 1,
                           vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = PQntuples(r) ? AT_OK : at_error_set(err, AT_ERR_NOT_FOUND, -1, "no checkpoint yet");
    if (rc == AT_OK) {
        *size = db_col_u64(r, 0, 0);
        rc = at_buf_add(note, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    }
    PQclear(r);
    return rc;
}

at_result dblog_index(db *d, const char *ws, const char *sid, uint64_t v, uint64_t *index, at_error *err)
{
    char ver[24];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)v);
    const char *vals[3] = {ws, sid, ver};
    PGresult *r = db_query(d,
                           "SELECT log_index FROM versions WHERE workspace = $1 AND session = $2 AND version = $3 "
                           "AND log_index IS NOT NULL",
                           3, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = PQntuples(r) ? AT_OK : at_error_set(err, AT_ERR_NOT_FOUND, -1, "not logged yet");
    if (rc == AT_OK)
        *index = db_col_u64(r, 0, 0);
    PQclear(r);
    return rc;
}

at_result dblog_entries(db *d, const char *ws, uint64_t first, size_t count, bool bundle, at_buf *out,
                        at_error *err)
{
    char f[24], n[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long)first);
    snprintf(n, sizeof n, "%zu", count);
    const char *vals[3] = {ws, f, n};
    PGresult *r = db_query(d,
                           "SELECT entry FROM log_entries WHERE workspace = $1 AND idx >= $2 "
                           "AND idx < $2::bigint + $3::bigint ORDER BY idx",
                           3, vals, NULL, NULL, true, err);
    if (!r)
        return err->code;
    at_result rc = (size_t)PQntuples(r) == count ? AT_OK : AT_ERR_NOT_FOUND;
    for (int i = 0; rc == AT_OK && i < PQntuples(r); i++) {
        size_t len = (size_t)PQgetlength(r, i, 0);
        if (bundle && len > 0xffff)
            rc = AT_ERR_INVALID;
        else if (bundle) {
            char be[2] = {(char)(len >> 8), (char)(len & 0xff)};
            rc = at_buf_add(out, be, 2);
        }
        if (rc == AT_OK)
            rc = at_buf_add(out, PQgetvalue(r, i, 0), len);
    }
    PQclear(r);
    return rc == AT_OK ? AT_OK : at_error_set(err, rc, -1, "log entries %s..+%s: %s", f, n, at_result_str(rc));
}

at_result dblog_checkpoint_set(db *d, const char *ws, uint64_t size, const at_buf *note, at_error *err)
{
    char sz[24];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    const char *vals[3] = {ws, sz, note->data};
    int lens[3] = {0, 0, (int)note->len};
    int fmts[3] = {0, 0, 1};
    PGresult *r = db_query(d, "UPDATE log_checkpoints SET note = $3 WHERE workspace = $1 AND size = $2", 3, vals, lens,
                           fmts, false, err);
    PQclear(r);
    return r ? AT_OK : err->code;
}
