/* workspaces.h - GET /workspaces and POST /gc: the workspaces a key can
 * see, and a collection of one workspace's garbage on demand. */
#ifndef AGENTTRACED_API_WORKSPACES_H
#define AGENTTRACED_API_WORKSPACES_H

#include "http.h"

#include "agenttrace/store.h"

/* {"workspaces": [ids, sorted, "default" first]}: every workspace of the
 * default workspace's store dflt (at_store_workspaces), or only `only` (a
 * key bound to one workspace). */
void api_workspaces(at_store *dflt, const char *only, http_response *resp);

/* Collects ctx's garbage under policy p: 200 with the gc report
 * (report_gc) and the workspace's id. */
void api_gc(server_ctx *ctx, const at_gc_policy *p, http_response *resp);

#endif
