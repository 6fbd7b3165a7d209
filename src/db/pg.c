/* pg.c - agent-traced's PostgreSQL connection (pg.h). */
#include "db/pg.h"

#include "db/schema.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The advisory lock key migrations hold ("agtraced" in ASCII). */
#define MIGRATE_LOCK "7450573416391091556"

struct db {
    PGconn *conn;
    char *name; /* the URL, password hidden */
};

const char *db_default_url(const char *url)
{
    if (url && *url)
        return url;
    const char *env = getenv("AGENT_TRACED_DATABASE");
    return env && *env ? env : NULL;
}

/* postgres://user:secret@host/db -> postgres://user:***@host/db (also
 * password=... in a key/value string). */
static char *hide_password(const char *url)
{
    char *out = malloc(strlen(url) + 8);
    if (!out)
        return NULL;
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon) {
        sprintf(out, "%.*s:***%s", (int)(colon - url), url, at);
        return out;
    }
    const char *pw = strstr(url, "password=");
    if (pw) {
        const char *end = pw + 9;
        while (*end && *end != ' ' && *end != '&')
            end++;
        sprintf(out, "%.*spassword=***%s", (int)(pw - url), url, end);
        return out;
    }
    strcpy(out, url);
    return out;
}

/* libpq's message, without its trailing newline. */
static const char *pq_message(PGconn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return buf;
}

db *db_connect(const char *url, at_error *err)
{
    db *d = calloc(1, sizeof *d);
    if (!d || !(d->name = hide_password(url))) {
        free(d);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    d->conn = PQconnectdb(url);
    if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
        char m[200];
        at_error_set(err, AT_ERR_IO, -1, "database %s: %s", d->name, pq_message(d->conn, m, sizeof m));
        db_close(d);
        return NULL;
    }
    /* quiet NOTICEs (CREATE ... IF NOT EXISTS); errors still come back */
    PGresult *r = PQexec(d->conn, "SET client_min_messages = warning");
    PQclear(r);
    return d;
}

void db_close(db *d)
{
    if (!d)
        return;
    PQfinish(d->conn);
    free(d->name);
    free(d);
}

PGconn *db_conn(db *d)
{
    return d->conn;
}

bool db_idle_alive(db *d)
{
    PGconn *c = d->conn;
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
        return false;
    /* An idle connection has nothing to read unless the server spoke on
     * its own: a shutdown's FATAL message and the end of the stream (we
     * LISTEN to nothing). Anything there: not trusted, dropped; a new
     * connection costs a few milliseconds, a failed request more. */
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

const char *db_name(const db *d)
{
    return d->name;
}

static at_result fail(db *d, at_error *err, const char *what)
{
    char m[200];
    return at_error_set(err, PQstatus(d->conn) == CONNECTION_OK ? AT_ERR_INVALID : AT_ERR_IO, -1,
                        "database %s: %s: %s", d->name, what, pq_message(d->conn, m, sizeof m));
}

at_result db_exec(db *d, const char *sql, at_error *err)
{
    PGresult *r = PQexec(d->conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    PQclear(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return AT_OK;
    char what[64];
    snprintf(what, sizeof what, "%.60s", sql);
    char *nl = strchr(what, '\n');
    if (nl)
        *nl = 0;
    return fail(d, err, what);
}

PGresult *db_query(db *d, const char *sql, int n, const char *const *vals, const int *lens, const int *formats,
                   bool binary_result, at_error *err)
{
    PGresult *r = PQexecParams(d->conn, sql, n, NULL, vals, lens, formats, binary_result ? 1 : 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    PQclear(r);
    char what[64];
    snprintf(what, sizeof what, "%.60s", sql);
    char *nl = strchr(what, '\n');
    if (nl)
        *nl = 0;
    fail(d, err, what);
    return NULL;
}

uint64_t db_col_u64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

bool db_col_bytes(const PGresult *r, int row, int col, uint8_t *out, size_t n)
{
    if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != n)
        return false;
    memcpy(out, PQgetvalue(r, row, col), n);
    return true;
}

double db_col_f64(const PGresult *r, int row, int col)
{
    uint64_t u = db_col_u64(r, row, col);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

void db_rollback(db *d)
{
    if (PQtransactionStatus(d->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(d->conn, "ROLLBACK");
        PQclear(r);
    }
}

/* ---- migrations ------------------------------------------------------------ */

int db_schema_version(db *d, at_error *err)
{
    PGresult *r = db_query(d, "SELECT to_regclass('at_migrations') IS NOT NULL", 0, NULL, NULL, NULL, false, err);
    if (!r)
        return -1;
    bool have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!have)
        return 0;
    if (!(r = db_query(d, "SELECT coalesce(max(version), 0) FROM at_migrations", 0, NULL, NULL, NULL, false, err)))
        return -1;
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

at_result db_migrate(db *d, int *from, int *to, at_error *err)
{
    at_result rc = db_exec(d, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", err);
    if (rc != AT_OK)
        return rc;
    rc = db_exec(d,
                 "CREATE TABLE IF NOT EXISTS at_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())",
                 err);
    int v = rc == AT_OK ? db_schema_version(d, err) : -1;
    *from = *to = v;
    if (v < 0)
        rc = rc != AT_OK ? rc : AT_ERR_IO;
    else if (v > db_migrations[DB_NMIGRATIONS - 1].version)
        rc = at_error_set(err, AT_ERR_INVALID, -1,
                          "database %s: schema version %d is newer than this agent-traced knows (%d): upgrade "
                          "agent-traced",
                          d->name, v, db_migrations[DB_NMIGRATIONS - 1].version);
    for (int i = 0; rc == AT_OK && i < DB_NMIGRATIONS; i++) {
        const db_migration *m = &db_migrations[i];
        if (m->version <= v)
            continue;
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m->version);
        const char *vals[2] = {ver, m->name};
        PGresult *r = NULL;
        if ((rc = db_exec(d, "BEGIN", err)) == AT_OK && (rc = db_exec(d, m->sql, err)) == AT_OK &&
            (r = db_query(d, "INSERT INTO at_migrations (version, name) VALUES ($1, $2)", 2, vals, NULL, NULL,
                          false, err)) != NULL)
            rc = db_exec(d, "COMMIT", err);
        else if (rc == AT_OK)
            rc = AT_ERR_INVALID;
        PQclear(r);
        if (rc != AT_OK)
            db_rollback(d);
        else
            *to = m->version;
    }
    PGresult *u = PQexec(d->conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")"); /* or at disconnect */
    PQclear(u);
    return rc;
}

/* ---- blobs ----------------------------------------------------------------- */

static void be16(char *p, uint16_t v)
{
    v = htons(v);
    memcpy(p, &v, 2);
}

static void be32(char *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

static void be64(char *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* binary COPY: signature, flags, header extension; then per row the field
 * count and each field as length + bytes; then -1 */
enum { ROW_HEAD = 2 + 4 + 8 + 4 + 4 + 4 };

at_result db_blob_begin(db *d, int64_t *blob, at_error *err)
{
    PGresult *r = db_query(d, "INSERT INTO blobs DEFAULT VALUES RETURNING id", 0, NULL, NULL, NULL, false, err);
    if (!r)
        return err ? err->code : AT_ERR_IO;
    *blob = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!(r = PQexec(d->conn, "COPY blob_chunks (blob, seq, data) FROM STDIN (FORMAT binary)")) ||
        PQresultStatus(r) != PGRES_COPY_IN) {
        PQclear(r);
        return fail(d, err, "COPY blob_chunks");
    }
    PQclear(r);
    static const char sig[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    return PQputCopyData(d->conn, sig, sizeof sig) == 1 ? AT_OK : fail(d, err, "COPY blob_chunks");
}

at_result db_blob_put(db *d, int64_t blob, uint32_t seq, const char *p, size_t n, at_error *err)
{
    char head[ROW_HEAD];
    be16(head, 3);
    be32(head + 2, 8);
    be64(head + 6, (uint64_t)blob);
    be32(head + 14, 4);
    be32(head + 18, seq);
    be32(head + 22, (uint32_t)n);
    if (n > DB_CHUNK || PQputCopyData(d->conn, head, sizeof head) != 1 || PQputCopyData(d->conn, p, (int)n) != 1)
        return n > DB_CHUNK ? at_error_set(err, AT_ERR_INVALID, -1, "blob chunk larger than %d bytes", DB_CHUNK)
                            : fail(d, err, "COPY blob_chunks");
    return AT_OK;
}

void db_blob_abort(db *d)
{
    if (PQputCopyEnd(d->conn, "aborted by agent-traced") == 1) {
        PGresult *r;
        while ((r = PQgetResult(d->conn)))
            PQclear(r);
    }
}

at_result db_blob_end(db *d, int64_t blob, uint64_t size, at_error *err)
{
    at_result rc = AT_OK;
    char trailer[2];
    be16(trailer, 0xffff);
    if (PQputCopyData(d->conn, trailer, 2) != 1)
        rc = fail(d, err, "COPY blob_chunks");
    if (PQputCopyEnd(d->conn, rc == AT_OK ? NULL : "aborted by agent-traced") != 1 && rc == AT_OK)
        rc = fail(d, err, "COPY blob_chunks");
    PGresult *r;
    while ((r = PQgetResult(d->conn))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == AT_OK)
            rc = fail(d, err, "COPY blob_chunks");
        PQclear(r);
    }
    if (rc != AT_OK)
        return rc;
    char id[24], sz[24];
    snprintf(id, sizeof id, "%lld", (long long)blob);
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    const char *vals[2] = {id, sz};
    if (!(r = db_query(d, "UPDATE blobs SET size = $2, complete = true WHERE id = $1", 2, vals, NULL, NULL, false,
                       err)))
        return err ? err->code : AT_ERR_IO;
    PQclear(r);
    return AT_OK;
}

at_result db_blob_write(db *d, db_read_fn read, void *ctx, int64_t *blob, uint64_t *size, at_error *err)
{
    at_result rc = db_blob_begin(d, blob, err);
    if (rc != AT_OK)
        return rc;
    char *buf = malloc(DB_CHUNK);
    if (!buf)
        rc = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    uint64_t total = 0;
    for (uint32_t seq = 0; rc == AT_OK; seq++) {
        size_t got = 0;
        while (got < DB_CHUNK) {
            ssize_t k = read(ctx, buf + got, DB_CHUNK - got, err);
            if (k < 0) {
                rc = err && err->code != AT_OK ? err->code : AT_ERR_IO;
                break;
            }
            if (k == 0)
                break;
            got += (size_t)k;
        }
        if (rc != AT_OK || (got == 0 && seq > 0))
            break;
        rc = db_blob_put(d, *blob, seq, buf, got, err);
        total += got;
        if (got < DB_CHUNK)
            break;
    }
    free(buf);
    if (rc != AT_OK)
        db_blob_abort(d);
    else if ((rc = db_blob_end(d, *blob, total, err)) == AT_OK)
        *size = total;
    return rc;
}
