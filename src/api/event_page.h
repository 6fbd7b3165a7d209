/* event_page.h - GET /sessions/{id}/page: a page of a session's events, by
 * byte offset, so that a client (the web UI) can read a session of any size
 * a piece at a time. The server keeps no state between pages and reads
 * through the version's object with a fixed buffer: memory does not grow
 * with the session or the page. */
#ifndef AGENTTRACED_API_EVENT_PAGE_H
#define AGENTTRACED_API_EVENT_PAGE_H

#include "http.h"

#include <stdint.h>

#define EVENT_PAGE_DEFAULT_LIMIT 500
#define EVENT_PAGE_MAX_LIMIT     10000
/* A page ends after the line that reaches this many bytes, whatever limit
 * says (a page holds at least one whole line). */
#define EVENT_PAGE_MAX_BYTES     (4u << 20)

/* 200 application/x-ndjson: up to `limit` whole lines of version `version`
 * (0: the current one) of session `id`, from byte `offset`, which must be
 * 0 or the start of a line (else 400). Headers: X-Total-Bytes (the
 * version's size), X-Next-Offset (where the next page starts; equal to the
 * size at the end) and, unless at the end, Link rel="next". An offset at
 * the end gives an empty page. 404 for an unknown session or version. */
void event_page(server_ctx *ctx, const char *id, uint64_t version, uint64_t offset, uint64_t limit,
                http_response *resp);

#endif
