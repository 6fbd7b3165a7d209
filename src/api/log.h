/* log.h - the transparency log over HTTP (tlog.md): GET /log/checkpoint,
 * GET /log/key, GET /log/tile/..., GET /sessions/{id}/proof. */
#ifndef AGENTTRACED_API_LOG_H
#define AGENTTRACED_API_LOG_H

#include "http.h"

void log_checkpoint(server_ctx *ctx, http_response *resp);
void log_key(server_ctx *ctx, http_response *resp);
/* path: what follows /log/tile/ */
void log_tile(server_ctx *ctx, const char *path, http_response *resp);
/* version 0: the current one */
void log_proof(server_ctx *ctx, const char *id, uint64_t version, http_response *resp);

#endif
