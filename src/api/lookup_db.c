/* lookup_db.c - GET /events/{event_id} and GET /sessions/{id}/events/{event_id}
 * with a database store (index.h): the same answers as index.c gives from
 * a directory, from the database's event index. Each hit's line is read
 * from the session's current object and checked against the recorded
 * digest; a commit in between makes the lookup start again. */
#include "index.h"

#include "sessions.h"

#include "agenttrace/sha256.h"
#include "agenttrace/store.h"

#include <stdlib.h>
#include <string.h>

#define MAX_EVENT_ID  4096 /* as index.c */
#define MAX_CONFLICTS 1000

typedef enum { LINE_OK, LINE_STALE, LINE_FAIL } line_status;

/* Appends hit h's line, read from its session's current version, to out. */
static line_status read_line(at_store *s, const at_event_hit *h, at_buf *out)
{
    if (h->len > AT_MAX_LINE_BYTES)
        return LINE_FAIL;
    at_object_reader *rd = NULL;
    at_error err = {0};
    if (at_store_open_version(s, h->sid, 0, &rd, &err) != AT_OK)
        return err.code == AT_ERR_NOT_FOUND ? LINE_STALE : LINE_FAIL;
    line_status st = LINE_STALE;
    if (at_buf_reserve(out, (size_t)h->len + 1) != AT_OK) {
        at_object_reader_free(rd);
        return LINE_FAIL;
    }
    uint64_t got = 0;
    while (got < h->len) {
        ssize_t k = at_object_read(rd, h->off + got, out->data + out->len + got, (size_t)(h->len - got));
        if (k <= 0) {
            at_object_reader_free(rd);
            return k < 0 ? LINE_FAIL : LINE_STALE;
        }
        got += (uint64_t)k;
    }
    at_object_reader_free(rd);
    uint8_t dig[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(out->data + out->len, (size_t)h->len, dig);
    at_hex(dig, AT_SHA256_LEN, hex);
    if (strcmp(hex, h->sha) == 0) {
        out->len += (size_t)h->len;
        out->data[out->len] = 0;
        st = LINE_OK;
    }
    return st;
}

static const char *hit_sid(const void *hits, size_t k, size_t *n)
{
    const at_event_hit *h = &((const at_event_hit *)hits)[k];
    *n = strlen(h->sid);
    return h->sid;
}

void lookup_db(server_ctx *ctx, const char *event_id, const char *session, http_response *resp)
{
    size_t idn = strlen(event_id);
    if (idn > MAX_EVENT_ID) {
        http_response_error(resp, 400, "event id too long");
        return;
    }
    char *sid = NULL;
    if (session && sessions_resolve(ctx, session, &sid, resp) != 200)
        return;
    for (int attempt = 0; attempt < 3; attempt++) {
        at_event_hit *hits = NULL;
        size_t n = 0;
        bool more = false;
        at_error err = {0};
        if (at_store_find_event(ctx->store, event_id, idn, sid, MAX_CONFLICTS, &hits, &n, &more, &err) != AT_OK) {
            http_response_error(resp, 500, "event index: %s", err.message);
            break;
        }
        if (n == 0) {
            at_event_hits_free(hits, n);
            http_response_error(resp, 404, "event not found: %s", event_id);
            break;
        }
        if (n > 1) {
            index_conflict(event_id, idn, hits, n, hit_sid, more, resp);
            at_event_hits_free(hits, n);
            break;
        }
        const at_event_hit *h = &hits[0];
        line_status st = index_answer_head(&resp->body, h->sid, strlen(h->sid), (int64_t)h->line, h->sha,
                                           h->has_prev ? (h->prev.data ? h->prev.data : "") : NULL, h->prev.len) ==
                                 AT_OK
                             ? read_line(ctx->store, h, &resp->body)
                             : LINE_FAIL;
        at_event_hits_free(hits, n);
        if (st == LINE_OK && at_buf_addc(&resp->body, '}') == AT_OK) {
            resp->status = 200;
            resp->content_type = "application/json";
            break;
        }
        if (st == LINE_FAIL) {
            http_response_error(resp, 500, "cannot read the event");
            break;
        }
        if (attempt == 2)
            http_response_error(resp, 503, "session changing too fast, retry");
    }
    free(sid);
}
