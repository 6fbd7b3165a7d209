/* collector.h - the agent-strace compatible collector endpoints
 * (server-api.md, "Collector endpoints"): GET /health, GET /sessions,
 * GET /sessions/{id}, GET /sessions/{id}/events, POST /events,
 * POST /sessions. */
#ifndef AGENTTRACED_COLLECTOR_H
#define AGENTTRACED_COLLECTOR_H

#include "http.h"

void collector_health(server_ctx *ctx, http_response *resp);
void collector_list_sessions(server_ctx *ctx, http_response *resp);
void collector_get_session(server_ctx *ctx, const char *id, http_response *resp);
/* GET /sessions/{id}/events[?version=N] (version 0: the current one). */
void collector_get_events(server_ctx *ctx, const char *id, uint64_t version, http_response *resp);
/* body: the whole request body (capped by the caller at max_upload). */
void collector_post_events(server_ctx *ctx, const char *body, size_t n, http_response *resp);
void collector_post_sessions(server_ctx *ctx, const char *body, size_t n, http_response *resp);

#endif
