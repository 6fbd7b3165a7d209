/* collector.h - the agent-strace compatible collector endpoints
 * (server-api.md, "Collector endpoints"): GET /health, GET /sessions,
 * GET /sessions/{id}, GET /sessions/{id}/events, POST /events,
 * POST /sessions. */
#ifndef AGENTTRACED_COLLECTOR_H
#define AGENTTRACED_COLLECTOR_H

#include "http.h"

#include "agenttrace/catalog.h"

void collector_health(server_ctx *ctx, http_response *resp);
void collector_list_sessions(server_ctx *ctx, http_response *resp);
/* GET /sessions with any of limit, cursor, agent, since, until, q: a page
 * (at_catalog_list_page), and a Link header to the next one. */
void collector_list_sessions_page(server_ctx *ctx, const at_catalog_query *q, http_response *resp);
void collector_get_session(server_ctx *ctx, const char *id, http_response *resp);
/* GET /sessions/{id}/events[?version=N] (version 0: the current one). */
void collector_get_events(server_ctx *ctx, const char *id, uint64_t version, http_response *resp);
/* POST /events as its body streams in: new, feed the decoded body in any
 * pieces, finish (appends what is left and writes the answer), free. A
 * line longer than COLLECTOR_MAX_LINE counts as an error line; the events
 * parsed are appended each time they reach COLLECTOR_FLUSH bytes. */
#define COLLECTOR_MAX_LINE (16u * 1024 * 1024)
#define COLLECTOR_FLUSH    (8u * 1024 * 1024)
typedef struct collector_events collector_events;
collector_events *collector_events_new(server_ctx *ctx, at_error *err);
void collector_events_feed(collector_events *ce, const char *p, size_t n);
void collector_events_finish(collector_events *ce, http_response *resp);
void collector_events_free(collector_events *ce);
/* The same over a whole body at once. */
void collector_post_events(server_ctx *ctx, const char *body, size_t n, http_response *resp);
/* body: the whole request body, at most COLLECTOR_MAX_META bytes. */
#define COLLECTOR_MAX_META (1024u * 1024)
void collector_post_sessions(server_ctx *ctx, const char *body, size_t n, http_response *resp);

#endif
