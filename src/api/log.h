/* log.h - the transparency log over HTTP (tlog.md): GET /log/checkpoint,
 * GET /log/key, GET /log/tile/..., GET /sessions/{id}/proof. */
#ifndef AGENTTRACED_API_LOG_H
#define AGENTTRACED_API_LOG_H

#include "http.h"

void log_checkpoint(server_ctx *ctx, http_response *resp);
void log_key(server_ctx *ctx, http_response *resp);
/* path: what follows /log/tile/ */
void log_tile(server_ctx *ctx, const char *path, http_response *resp);
/* GET /log/consistency?from=M[&to=N]: the consistency proof between the
 * trees of sizes M and N (default: the latest checkpoint's), one base64
 * hash a line. Not a C2SP endpoint: tiles give the same to a client that
 * reads them; this serves `agent-traced verify --checkpoint`. */
void log_consistency(server_ctx *ctx, uint64_t from, uint64_t to, http_response *resp);
/* version 0: the current one */
void log_proof(server_ctx *ctx, const char *id, uint64_t version, http_response *resp);

#endif
