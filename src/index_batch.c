/* index_batch.c - event index rows collected during an import (index_batch.h).
 *
 * A row is stored as a fixed header followed by its two strings:
 *   u64 no, u64 off, u64 len, u8 digest[32], u32 id_len, u32 prev_len
 *   (PREV_NONE: no prev_hash), id bytes, prev bytes. */
#include "index_batch.h"

#include "agenttrace/buf.h"
#include "agenttrace/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HDR_LEN    (3 * 8 + AT_SHA256_LEN + 2 * 4)
#define PREV_NONE  UINT32_MAX
#define MAX_FIELD  (64u * 1024) /* longer event_id / prev_hash: not worth a fast path */
#define READ_CHUNK (256u * 1024)

struct index_batch {
    char *tmp_dir;
    at_buf mem;      /* rows not yet spilled */
    int spill_fd;    /* -1 until the first spill */
    bool broken;     /* a row could not be recorded */
    at_json_doc doc; /* decoding escaped tokens */
    at_buf id, prev; /* decoded fields of the row being added */
    /* reading back */
    at_buf rd; /* spilled rows read back */
    size_t rd_off;
    bool rd_eof;
    bool file_done; /* every spilled row was handed out */
    size_t mem_off; /* then the rows in mem */
};

index_batch *index_batch_new(const char *tmp_dir)
{
    index_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->tmp_dir = strdup(tmp_dir ? tmp_dir : "/tmp");
    if (!b->tmp_dir) {
        free(b);
        return NULL;
    }
    at_buf_init(&b->mem, 0);
    at_buf_init(&b->id, MAX_FIELD);
    at_buf_init(&b->prev, MAX_FIELD);
    at_buf_init(&b->rd, 0);
    at_json_doc_init(&b->doc);
    b->spill_fd = -1;
    return b;
}

void index_batch_free(index_batch *b)
{
    if (!b)
        return;
    if (b->spill_fd >= 0)
        close(b->spill_fd);
    at_buf_fini(&b->mem);
    at_buf_fini(&b->id);
    at_buf_fini(&b->prev);
    at_buf_fini(&b->rd);
    at_json_doc_fini(&b->doc);
    free(b->tmp_dir);
    free(b);
}

bool index_batch_usable(const index_batch *b)
{
    return b && !b->broken;
}

/* A JSON string token into out; false when it is not a string or too long. */
static bool decode_token(index_batch *b, at_slice tok, at_buf *out)
{
    at_buf_reset(out);
    if (tok.n < 2 || tok.p[0] != '"' || tok.p[tok.n - 1] != '"')
        return false;
    if (!memchr(tok.p, '\\', tok.n)) /* the common case: nothing to unescape */
        return at_buf_add(out, tok.p + 1, tok.n - 2) == AT_OK;
    at_error err;
    return at_json_parse(&b->doc, tok.p, tok.n, &err) == AT_OK && at_json_is(&b->doc, 0, AT_JSON_STRING) &&
           at_json_str_decode(&b->doc, 0, out) == AT_OK;
}

static at_result spill(index_batch *b)
{
    if (b->spill_fd < 0 && (b->spill_fd = at_open_tmpfile(b->tmp_dir)) < 0)
        return AT_ERR_IO;
    if (at_write_all(b->spill_fd, b->mem.data, b->mem.len) != AT_OK)
        return AT_ERR_IO;
    at_buf_reset(&b->mem);
    return AT_OK;
}

static void put_u64(at_buf *m, uint64_t v)
{
    at_buf_put(m, &v, 8);
}
static void put_u32(at_buf *m, uint32_t v)
{
    at_buf_put(m, &v, 4);
}

at_result index_batch_add(void *batch, const at_line_written *lw)
{
    index_batch *b = batch;
    /* index.c skips lines without a string event_id and overlong lines */
    if (b->broken || !lw->event_id.p || lw->len == 0 || lw->len > AT_MAX_LINE_BYTES)
        return AT_OK;
    if (!decode_token(b, lw->event_id, &b->id)) {
        if (lw->event_id.p[0] == '"')
            b->broken = true; /* a string we could not take: leave it to index.c */
        return AT_OK;
    }
    bool has_prev = lw->prev_hash.p && lw->prev_hash.n && lw->prev_hash.p[0] == '"';
    if (has_prev && !decode_token(b, lw->prev_hash, &b->prev)) {
        b->broken = true;
        return AT_OK;
    }
    size_t need = HDR_LEN + b->id.len + (has_prev ? b->prev.len : 0);
    if (at_buf_reserve(&b->mem, need) != AT_OK) {
        b->broken = true;
        return AT_OK;
    }
    put_u64(&b->mem, lw->no);
    put_u64(&b->mem, lw->off);
    put_u64(&b->mem, lw->len);
    at_buf_put(&b->mem, lw->digest, AT_SHA256_LEN);
    put_u32(&b->mem, (uint32_t)b->id.len);
    put_u32(&b->mem, has_prev ? (uint32_t)b->prev.len : PREV_NONE);
    at_buf_put(&b->mem, b->id.data, b->id.len);
    if (has_prev)
        at_buf_put(&b->mem, b->prev.data, b->prev.len);
    if (b->mem.len >= INDEX_BATCH_MEM && spill(b) != AT_OK)
        b->broken = true; /* the import goes on; the index reads the file instead */
    return AT_OK;
}

at_result index_batch_rewind(index_batch *b)
{
    at_buf_reset(&b->rd);
    b->rd_off = 0;
    b->rd_eof = false;
    b->file_done = b->spill_fd < 0;
    b->mem_off = 0;
    if (b->spill_fd >= 0 && lseek(b->spill_fd, 0, SEEK_SET) != 0)
        return AT_ERR_IO;
    return AT_OK;
}

/* Makes at least n unread bytes available in rd: false at the end of the
 * spill file, or on error with *r set. */
static bool fill(index_batch *b, size_t n, at_result *r)
{
    while (b->rd.len - b->rd_off < n) {
        if (b->rd_eof)
            return false;
        if (b->rd_off > 0) {
            memmove(b->rd.data, b->rd.data + b->rd_off, b->rd.len - b->rd_off);
            b->rd.len -= b->rd_off;
            b->rd_off = 0;
        }
        size_t want = n > READ_CHUNK ? n : READ_CHUNK;
        if (at_buf_reserve(&b->rd, want) != AT_OK) {
            *r = AT_ERR_NOMEM;
            return false;
        }
        ssize_t k = read(b->spill_fd, b->rd.data + b->rd.len, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *r = AT_ERR_IO;
            return false;
        }
        if (k == 0)
            b->rd_eof = true;
        b->rd.len += (size_t)k;
    }
    return true;
}

static void field_lens(const char *p, uint32_t *idn, uint32_t *pn)
{
    memcpy(idn, p + 24 + AT_SHA256_LEN, 4);
    memcpy(pn, p + 28 + AT_SHA256_LEN, 4);
}

static size_t row_size(const char *p)
{
    uint32_t idn, pn;
    field_lens(p, &idn, &pn);
    return HDR_LEN + idn + (pn == PREV_NONE ? 0 : pn);
}

/* Decodes the row at p; returns its size. */
static size_t parse_row(const char *p, index_row *row)
{
    uint64_t v[3];
    memcpy(v, p, sizeof v);
    row->no = v[0];
    row->off = v[1];
    row->len = v[2];
    at_hex((const uint8_t *)p + 24, AT_SHA256_LEN, row->sha256);
    uint32_t idn, pn;
    field_lens(p, &idn, &pn);
    row->event_id = p + HDR_LEN;
    row->event_id_len = idn;
    row->prev_hash = pn == PREV_NONE ? NULL : p + HDR_LEN + idn;
    row->prev_hash_len = pn == PREV_NONE ? 0 : pn;
    return row_size(p);
}

at_result index_batch_next(index_batch *b, index_row *row)
{
    /* the spilled rows first, then those still in memory */
    if (!b->file_done) {
        at_result r = AT_OK;
        if (fill(b, HDR_LEN, &r) && fill(b, row_size(b->rd.data + b->rd_off), &r)) {
            b->rd_off += parse_row(b->rd.data + b->rd_off, row);
            return AT_OK;
        }
        if (r != AT_OK)
            return r;
        if (b->rd_off < b->rd.len)
            return AT_ERR_IO; /* a torn row */
        b->file_done = true;
    }
    if (b->mem_off >= b->mem.len)
        return AT_ERR_NOT_FOUND;
    b->mem_off += parse_row(b->mem.data + b->mem_off, row);
    return AT_OK;
}
