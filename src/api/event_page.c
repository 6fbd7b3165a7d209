/* event_page.c - GET /sessions/{id}/page (event_page.h). */
#include "api/event_page.h"

#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The response body: bytes [base, base + size) of the object. */
typedef struct {
    at_object_reader *rd;
    uint64_t base;
} page_reader;

static ssize_t page_read(void *ctx, uint64_t pos, char *buf, size_t n)
{
    page_reader *p = ctx;
    return at_object_read(p->rd, p->base + pos, buf, n);
}

static void page_free(void *ctx)
{
    page_reader *p = ctx;
    at_object_reader_free(p->rd);
    free(p);
}

/* Where the page from `offset` ends: after `limit` lines, or after the line
 * that reaches EVENT_PAGE_MAX_BYTES, or at the end. -1 on a read error. */
static int64_t page_end(at_object_reader *rd, uint64_t size, uint64_t offset, uint64_t limit)
{
    char buf[64 * 1024];
    uint64_t pos = offset, lines = 0;
    while (pos < size) {
        size_t want = size - pos < sizeof buf ? (size_t)(size - pos) : sizeof buf;
        ssize_t k = at_object_read(rd, pos, buf, want);
        if (k <= 0)
            return -1;
        for (const char *p = buf, *e = buf + k; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl)
                break;
            uint64_t end = pos + (uint64_t)(nl - buf) + 1;
            if (++lines >= limit || end - offset >= EVENT_PAGE_MAX_BYTES)
                return (int64_t)end;
            p = nl + 1;
        }
        pos += (uint64_t)k;
    }
    return (int64_t)size; /* the last line may lack its newline */
}

void event_page(server_ctx *ctx, const char *id, uint64_t version, uint64_t offset, uint64_t limit,
                http_response *resp)
{
    char *sid = NULL;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_object_reader *rd = NULL;
    at_error err = {0};
    at_result r = at_store_open_version(ctx->store, sid, version, &rd, &err);
    if (r == AT_ERR_NOT_FOUND) {
        http_response_error(resp, 404, "%s", err.message);
        goto out;
    }
    if (r != AT_OK) {
        http_response_error(resp, 500, "cannot read events: %s",
                            err.message[0] ? err.message : at_result_str(r));
        goto out;
    }
    uint64_t size = at_object_size(rd);
    if (offset > size) {
        http_response_error(resp, 400, "offset %llu is past the end of the events (%llu bytes)",
                            (unsigned long long)offset, (unsigned long long)size);
        goto out;
    }
    if (offset > 0 && offset < size) {
        char prev;
        if (at_object_read(rd, offset - 1, &prev, 1) != 1) {
            http_response_error(resp, 500, "cannot read events");
            goto out;
        }
        if (prev != '\n') {
            http_response_error(resp, 400, "offset %llu is not the start of a line",
                                (unsigned long long)offset);
            goto out;
        }
    }
    int64_t end = page_end(rd, size, offset, limit);
    if (end < 0) {
        http_response_error(resp, 500, "cannot read events");
        goto out;
    }
    page_reader *pr = malloc(sizeof *pr);
    bool headers = pr && http_response_header(resp, "X-Total-Bytes", "%llu", (unsigned long long)size) &&
                   http_response_header(resp, "X-Next-Offset", "%lld", (long long)end) &&
                   http_response_header(resp, "Cache-Control", "no-store");
    if (headers && (uint64_t)end < size) {
        /* the id as resolved is a path segment already checked by sessions_resolve
         * (no '/', no NUL); %-escape what a URL may not hold */
        at_buf link;
        at_buf_init(&link, 0);
        at_result lr = at_buf_adds(&link, "</sessions/");
        for (const char *p = sid; lr == AT_OK && *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                strchr("-._~", ch))
                lr = at_buf_add(&link, p, 1);
            else
                lr = at_buf_printf(&link, "%%%02X", ch);
        }
        if (lr == AT_OK)
            lr = at_buf_printf(&link, "/page?offset=%lld&limit=%llu", (long long)end,
                               (unsigned long long)limit);
        if (lr == AT_OK && version)
            lr = at_buf_printf(&link, "&version=%llu", (unsigned long long)version);
        if (lr == AT_OK)
            lr = at_buf_adds(&link, ">; rel=\"next\"");
        size_t n;
        resp->link = lr == AT_OK ? at_buf_steal(&link, &n) : NULL;
        at_buf_fini(&link);
        headers = resp->link != NULL;
    }
    if (!headers) {
        free(pr);
        http_response_error(resp, 500, "out of memory");
        goto out;
    }
    resp->status = 200;
    resp->content_type = "application/x-ndjson";
    at_buf_reset(&resp->body);
    if ((uint64_t)end == offset) { /* at the end: an empty page */
        free(pr);
        goto out;
    }
    pr->rd = rd;
    pr->base = offset;
    rd = NULL; /* owned by the stream now */
    resp->stream = (http_stream){page_read, page_free, pr, (uint64_t)end - offset};
out:
    at_object_reader_free(rd);
    free(sid);
}
