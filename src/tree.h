/* tree.h - `agent-strace tree` over a storage directory (server-api.md,
 * "Trees, exactly as agent-strace prints them"), usable without HTTP. */
#ifndef AGENTTRACED_TREE_H
#define AGENTTRACED_TREE_H

#include "http.h"

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>

/* GET /sessions/{id}/tree[?format=text] */
void tree_handle(server_ctx *ctx, const char *id, bool text, http_response *resp);

/* Appends to out what `agent-strace tree <id> --format json` (text: false)
 * or `--format text` prints for the session stored in <root>/<session_dir>
 * (an exact directory name: resolve prefixes first), trailing newline
 * included. AT_ERR_NOT_FOUND when that session has no readable meta.json;
 * AT_ERR_INVALID when a meta counter is not a number (agent-strace would
 * fail too); AT_ERR_NOMEM / AT_ERR_IO otherwise. */
at_result tree_render(const char *root, const char *session_dir, bool text, at_buf *out,
                      at_error *err) AT_WUR;
/* The same over a database store's sessions (sid: an exact id). */
at_result tree_render_store(at_store *s, const char *sid, bool text, at_buf *out, at_error *err) AT_WUR;

#endif
