/* dbindex.c - the event index in the database (dbindex.h). Rows go in by
 * COPY (text format), one per line that has an event_id, as index.c
 * indexes a file: lines numbered from 0 counting every line, blank and
 * unparsable ones skipped, the digest of the line without its "\n". */
#include "db/dbindex.h"

#include "agenttrace/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    db *d;
    const char *ws, *sid;
    at_json_doc doc;
    at_buf row, id, prev;
    at_result failed;
} copier;

/* COPY's text format: backslash, tab, newline and carriage return escaped. */
static at_result put_text(at_buf *b, const char *s, size_t n)
{
    at_result r = AT_OK;
    for (size_t i = 0; i < n && r == AT_OK; i++) {
        char c = s[i];
        r = c == '\\'   ? at_buf_add(b, "\\\\", 2)
            : c == '\t' ? at_buf_add(b, "\\t", 2)
            : c == '\n' ? at_buf_add(b, "\\n", 2)
            : c == '\r' ? at_buf_add(b, "\\r", 2)
                        : at_buf_addc(b, c);
    }
    return r;
}

/* A bytea in COPY's text format: \\x and hex digits. */
static at_result put_bytea(at_buf *b, const void *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    at_result r = at_buf_add(b, "\\\\x", 3);
    for (size_t i = 0; i < n && r == AT_OK; i++) {
        unsigned char c = ((const unsigned char *)p)[i];
        char two[2] = {hx[c >> 4], hx[c & 15]};
        r = at_buf_add(b, two, 2);
    }
    return r;
}

static at_result copy_begin(copier *c, db *d, const char *ws, const char *sid, at_error *err)
{
    memset(c, 0, sizeof *c);
    c->d = d;
    c->ws = ws;
    c->sid = sid;
    at_json_doc_init(&c->doc);
    at_buf_init(&c->row, 0);
    at_buf_init(&c->id, 0);
    at_buf_init(&c->prev, 0);
    PGresult *r = PQexec(db_conn(d), "COPY event_index (workspace, event_id, session, line, off, len, sha256, "
                                     "prev_hash) FROM STDIN");
    bool ok = r && PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (!ok)
        return at_error_set(err, AT_ERR_IO, -1, "COPY event_index: %s", PQerrorMessage(db_conn(d)));
    return AT_OK;
}

/* One line (without its "\n") at offset off, number no. */
static void copy_line(copier *c, uint64_t no, uint64_t off, const char *p, size_t n)
{
    if (c->failed || n == 0)
        return;
    if (at_json_parse(&c->doc, p, n, NULL) != AT_OK || !at_json_is(&c->doc, 0, AT_JSON_OBJECT))
        return;
    uint32_t idn = at_json_get(&c->doc, 0, "event_id");
    if (!at_json_is(&c->doc, idn, AT_JSON_STRING))
        return;
    at_buf_reset(&c->id);
    at_buf_reset(&c->prev);
    at_buf_reset(&c->row);
    if (at_json_str_decode(&c->doc, idn, &c->id) != AT_OK)
        return;
    uint32_t ph = at_json_get(&c->doc, 0, "prev_hash");
    bool has_prev = at_json_is(&c->doc, ph, AT_JSON_STRING) && at_json_str_decode(&c->doc, ph, &c->prev) == AT_OK;
    uint8_t dig[AT_SHA256_LEN];
    at_sha256_oneshot(p, n, dig);
    at_result r = put_text(&c->row, c->ws, strlen(c->ws));
    if (r == AT_OK && (r = at_buf_addc(&c->row, '\t')) == AT_OK)
        r = put_bytea(&c->row, c->id.data, c->id.len);
    if (r == AT_OK && (r = at_buf_addc(&c->row, '\t')) == AT_OK)
        r = put_text(&c->row, c->sid, strlen(c->sid));
    if (r == AT_OK)
        r = at_buf_printf(&c->row, "\t%llu\t%llu\t%zu\t", (unsigned long long)no, (unsigned long long)off, n);
    if (r == AT_OK)
        r = put_bytea(&c->row, dig, sizeof dig);
    if (r == AT_OK)
        r = at_buf_addc(&c->row, '\t');
    if (r == AT_OK)
        r = has_prev ? put_bytea(&c->row, c->prev.data, c->prev.len) : at_buf_add(&c->row, "\\N", 2);
    if (r == AT_OK)
        r = at_buf_addc(&c->row, '\n');
    if (r == AT_OK && PQputCopyData(db_conn(c->d), c->row.data, (int)c->row.len) != 1)
        r = AT_ERR_IO;
    c->failed = r;
}

static at_result copy_end(copier *c, at_error *err)
{
    PGconn *conn = db_conn(c->d);
    at_result rc = c->failed;
    if (PQputCopyEnd(conn, rc == AT_OK ? NULL : "aborted by agent-traced") != 1 && rc == AT_OK)
        rc = AT_ERR_IO;
    PGresult *r;
    while ((r = PQgetResult(conn))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == AT_OK)
            rc = AT_ERR_IO;
        PQclear(r);
    }
    at_json_doc_fini(&c->doc);
    at_buf_fini(&c->row);
    at_buf_fini(&c->id);
    at_buf_fini(&c->prev);
    return rc == AT_OK ? AT_OK : at_error_set(err, rc, -1, "COPY event_index: %s", PQerrorMessage(conn));
}

/* Splits p[0, n) into lines (the last one may lack its "\n"). */
static void copy_lines(copier *c, const char *p, size_t n, uint64_t no, uint64_t off)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
        copy_line(c, no++, off + i, p + i, len);
        i += len + (nl ? 1 : 0);
    }
}

at_result dbi_index_lines(db *d, const char *ws, const char *sid, const char *p, size_t n, uint64_t lines,
                          uint64_t bytes, at_error *err)
{
    copier c;
    at_result r = copy_begin(&c, d, ws, sid, err);
    if (r != AT_OK)
        return r;
    copy_lines(&c, p, n, lines, bytes);
    return copy_end(&c, err);
}

at_result dbi_index_file(db *d, const char *ws, const char *sid, int fd, uint64_t size,
                         const uint8_t want[AT_SHA256_LEN], at_error *err)
{
    const char *vals[2] = {ws, sid};
    PGresult *q = db_query(d, "DELETE FROM event_index WHERE workspace = $1 AND session = $2", 2, vals, NULL, NULL,
                           false, err);
    if (!q)
        return err->code;
    PQclear(q);
    copier c;
    at_result r = copy_begin(&c, d, ws, sid, err);
    if (r != AT_OK)
        return r;
    /* read in blocks; a line that crosses a block is carried over */
    at_buf carry;
    at_buf_init(&carry, 0);
    char *buf = malloc(1 << 16);
    at_sha256 *h = want ? at_sha256_new() : NULL;
    uint64_t pos = 0, no = 0, line_off = 0;
    if (!buf || (want && !h))
        c.failed = AT_ERR_NOMEM;
    while (!c.failed && pos < size) {
        size_t ask = size - pos < (1 << 16) ? (size_t)(size - pos) : (1 << 16);
        ssize_t k = pread(fd, buf, ask, (off_t)pos);
        if (k <= 0) {
            c.failed = AT_ERR_IO;
            break;
        }
        pos += (uint64_t)k;
        if (h)
            at_sha256_update(h, buf, (size_t)k);
        size_t i = 0;
        while (i < (size_t)k && !c.failed) {
            const char *nl = memchr(buf + i, '\n', (size_t)k - i);
            size_t len = nl ? (size_t)(nl - (buf + i)) : (size_t)k - i;
            if (!nl) { /* the rest of the block starts a line */
                if (at_buf_add(&carry, buf + i, len) != AT_OK)
                    c.failed = AT_ERR_NOMEM;
                break;
            }
            if (carry.len) {
                if (at_buf_add(&carry, buf + i, len) != AT_OK) {
                    c.failed = AT_ERR_NOMEM;
                    break;
                }
                copy_line(&c, no++, line_off, carry.data, carry.len);
                at_buf_reset(&carry);
            } else {
                copy_line(&c, no++, line_off, buf + i, len);
            }
            line_off = pos - (uint64_t)k + i + len + 1;
            i += len + 1;
        }
    }
    if (!c.failed && carry.len)
        copy_line(&c, no, line_off, carry.data, carry.len);
    free(buf);
    at_buf_fini(&carry);
    uint8_t got[AT_SHA256_LEN];
    if (h)
        at_sha256_final(h, got);
    at_sha256_free(h);
    r = copy_end(&c, err);
    if (r == AT_OK && want && memcmp(got, want, AT_SHA256_LEN) != 0)
        r = at_error_set(err, AT_ERR_CONFLICT, -1, "the events read are not the object they should index");
    return r;
}

at_result dbi_lookup(db *d, const char *ws, const char *event_id, size_t idn, const char *sid, size_t max,
                     dbi_hit **hits, size_t *n, bool *more, at_error *err)
{
    *hits = NULL;
    *n = 0;
    *more = false;
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max + 1);
    const char *vals[3] = {ws, event_id, sid ? sid : lim};
    int lens[3] = {0, (int)idn, 0};
    int fmts[3] = {0, 1, 0};
    /* the first line of each session */
    PGresult *r = db_query(d,
                           sid ? "SELECT session, line, off, len, sha256, prev_hash FROM event_index "
                                 "WHERE workspace = $1 AND event_id = $2 AND session = $3 ORDER BY line LIMIT 1"
                               : "SELECT DISTINCT ON (session COLLATE \"C\") session, line, off, len, sha256, "
                                 "prev_hash FROM event_index WHERE workspace = $1 AND event_id = $2 "
                                 "ORDER BY session COLLATE \"C\", line LIMIT $3::bigint",
                           3, vals, lens, fmts, true, err);
    if (!r)
        return err->code;
    size_t k = (size_t)PQntuples(r);
    if (k > max) {
        k = max;
        *more = true;
    }
    dbi_hit *h = calloc(k ? k : 1, sizeof *h);
    at_result rc = h ? AT_OK : AT_ERR_NOMEM;
    for (size_t i = 0; i < k && rc == AT_OK; i++) {
        at_buf_init(&h[i].prev, 0);
        if (!(h[i].sid = strdup(PQgetvalue(r, (int)i, 0)))) {
            rc = AT_ERR_NOMEM;
            break;
        }
        h[i].line = db_col_u64(r, (int)i, 1);
        h[i].off = db_col_u64(r, (int)i, 2);
        uint8_t dig[AT_SHA256_LEN];
        h[i].len = db_col_u64(r, (int)i, 3);
        if (db_col_bytes(r, (int)i, 4, dig, sizeof dig))
            at_hex(dig, sizeof dig, h[i].sha);
        h[i].has_prev = !PQgetisnull(r, (int)i, 5);
        if (h[i].has_prev)
            rc = at_buf_add(&h[i].prev, PQgetvalue(r, (int)i, 5), (size_t)PQgetlength(r, (int)i, 5));
    }
    PQclear(r);
    if (rc != AT_OK) {
        dbi_hits_free(h, k);
        return at_error_set(err, rc, -1, "out of memory");
    }
    *hits = h;
    *n = k;
    return AT_OK;
}

void dbi_hits_free(dbi_hit *hits, size_t n)
{
    for (size_t i = 0; hits && i < n; i++) {
        free(hits[i].sid);
        at_buf_fini(&hits[i].prev);
    }
    free(hits);
}
