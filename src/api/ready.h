/* ready.h - GET /ready: can this server do its work now (readiness, as a
 * load balancer asks), beside /health (it is up: agent-strace's). */
#ifndef AGENTTRACED_API_READY_H
#define AGENTTRACED_API_READY_H

#include "http.h"

/* 200 {"status": "ready", "storage": "writable", "index": "open", "log": ...}
 * or 503 {"error": <the first thing not ready>, ...the same fields}. */
void api_ready(server_ctx *ctx, http_response *resp);

#endif
