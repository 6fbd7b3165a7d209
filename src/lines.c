/* lines.c - bounded line reader (see lines.h). */
#include "lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AT_LINES_CHUNK
#define AT_LINES_CHUNK (256u * 1024) /* tests may build with tiny chunks */
#endif
#define CHUNK AT_LINES_CHUNK

void at_lines_init(at_lines *lr, int fd, uint64_t limit)
{
    memset(lr, 0, sizeof *lr);
    lr->fd = fd;
    lr->limit = limit;
    at_buf_init(&lr->span, AT_MAX_LINE_BYTES);
}

void at_lines_fini(at_lines *lr)
{
    free(lr->chunk);
    lr->chunk = NULL;
    at_buf_fini(&lr->span);
}

/* Refills the chunk; false at the end of the allowed bytes. */
static at_result refill(at_lines *lr, bool *got)
{
    *got = false;
    if (lr->eof || lr->limit == 0)
        return AT_OK;
    if (!lr->chunk && !(lr->chunk = malloc(CHUNK)))
        return AT_ERR_NOMEM;
    size_t want = lr->limit < CHUNK ? (size_t)lr->limit : CHUNK;
    ssize_t k;
    do
        k = read(lr->fd, lr->chunk, want);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return AT_ERR_IO;
    if (k == 0) {
        lr->eof = true;
        return AT_OK;
    }
    lr->chunk_len = (size_t)k;
    lr->chunk_off = 0;
    lr->pos += (uint64_t)k;
    lr->limit -= (uint64_t)k;
    *got = true;
    return AT_OK;
}

/* Adds a piece of the current line to the span (or just counts it). */
static at_result span_add(at_lines *lr, const char *p, size_t n)
{
    if (!lr->spanning) {
        lr->spanning = true;
        lr->overlong = false;
        at_buf_reset(&lr->span);
        lr->span.len = 0;
    }
    if (lr->overlong) {
        lr->span.len += n; /* only the count; data is not kept */
        return AT_OK;
    }
    at_result r = at_buf_add(&lr->span, p, n);
    if (r == AT_ERR_TOO_BIG) {
        size_t had = lr->span.len;
        at_buf_fini(&lr->span);
        at_buf_init(&lr->span, AT_MAX_LINE_BYTES);
        lr->span.len = had + n;
        lr->overlong = true;
        return AT_OK;
    }
    return r;
}

static void emit_span(at_lines *lr, at_line *out)
{
    out->p = lr->overlong ? NULL : (lr->span.data ? lr->span.data : "");
    out->n = lr->span.len;
    out->off = lr->line_off;
    out->no = lr->line_no++;
    lr->line_off += lr->span.len + 1;
    lr->spanning = false;
}

at_result at_lines_next(at_lines *lr, at_line *out)
{
    for (;;) {
        if (lr->chunk_off < lr->chunk_len) {
            char *s = lr->chunk + lr->chunk_off;
            size_t avail = lr->chunk_len - lr->chunk_off;
            char *nl = memchr(s, '\n', avail);
            if (nl) {
                size_t n = (size_t)(nl - s);
                lr->chunk_off += n + 1;
                if (!lr->spanning) {
                    if (n > AT_MAX_LINE_BYTES) {
                        out->p = NULL;
                    } else {
                        out->p = s;
                    }
                    out->n = n;
                    out->off = lr->line_off;
                    out->no = lr->line_no++;
                    lr->line_off += n + 1;
                    return AT_OK;
                }
                at_result r = span_add(lr, s, n);
                if (r != AT_OK)
                    return r;
                emit_span(lr, out);
                return AT_OK;
            }
            at_result r = span_add(lr, s, avail);
            if (r != AT_OK)
                return r;
            lr->chunk_off = lr->chunk_len;
        }
        bool got;
        at_result r = refill(lr, &got);
        if (r != AT_OK)
            return r;
        if (!got) {
            if (lr->spanning) {
                emit_span(lr, out);
                lr->line_off -= 1; /* no "\n" after the last line */
                return AT_OK;
            }
            return AT_ERR_NOT_FOUND;
        }
    }
}
