/* history.h - GET /sessions/{id}/versions: a session's versions. */
#ifndef AGENTTRACED_API_HISTORY_H
#define AGENTTRACED_API_HISTORY_H

#include "http.h"

void history_versions(server_ctx *ctx, const char *id, http_response *resp);

#endif
