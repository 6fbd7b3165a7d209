/* sessions.h - session ids in requests and the listing of a storage
 * directory (sessions.c): what may reach the file system, prefix
 * resolution, and the session directories. */
#ifndef AGENTTRACED_SESSIONS_H
#define AGENTTRACED_SESSIONS_H

#include "http.h"

#include "agenttrace/common.h"
#include <stdbool.h>
#include <stddef.h>

/* Resolves an exact id or an unambiguous prefix (agent-strace semantics) to
 * a session that has a meta.json. On success returns 200 and *out (malloc'd
 * id); else the HTTP status (400 unacceptable id, 404 not found) with the
 * error already set in resp. */
int sessions_resolve(server_ctx *ctx, const char *id, char **out, http_response *resp);

/* Is <root>/<name> a session, i.e. does it hold a meta.json? "objects" and
 * dot-names never are. name must already be an acceptable id. */
bool sessions_exists(const char *root, const char *name);

/* Every session directory name under root (the ones holding meta.json),
 * in directory order. On success *ids is a malloc'd array of *n malloc'd
 * strings (free with sessions_free_ids). AT_ERR_IO when root cannot be
 * listed, AT_ERR_NOMEM. */
at_result sessions_scan(const char *root, char ***ids, size_t *n) AT_WUR;
void sessions_free_ids(char **ids, size_t n);

#endif
