/* usage.h - GET /sessions/{id}/usage[?tree=1]: the token usage recorded
 * with a session's transcript (agenttrace/usage.h), priced from
 * data/prices.tsv; and the writers `agent-traced usage` shares. */
#ifndef AGENTTRACED_API_USAGE_H
#define AGENTTRACED_API_USAGE_H

#include "http.h"

#include "agenttrace/buf.h"
#include "agenttrace/store.h"
#include "agenttrace/usage.h"

/* Token sums and their cost, as reported. */
typedef struct {
    double tokens[AT_TOK_KINDS];
    double cost;
    bool priced; /* false: some model in it has no price (cost_usd null) */
} usage_line;

void usage_line_init(usage_line *l);
/* Adds sums of model m (of u) to l, priced from the table. */
void usage_line_add(usage_line *l, const at_usage_model *m, const at_usage_sums *s);
/* "input_tokens": n, "output_tokens": n, "cache_creation_tokens": n,
 * "cache_read_tokens": n, "cost_usd": x|null appended to b (no braces). */
at_result usage_line_write(at_buf *b, const usage_line *l) AT_WUR;

/* {"session_id", "version", "models": [{"model", <line>}], "total": {<line>}
 *  [, "tree_total": {<line>, "sessions", "sessions_without_usage"}]}
 * for session sid (an exact id) appended to b. *recorded false (and
 * nothing written) when the session has no usage recorded.
 * AT_ERR_NOT_FOUND: no such session. */
at_result usage_report(at_store *st, const char *sid, bool tree, at_buf *b, bool *recorded,
                       at_error *err) AT_WUR;

/* GET /sessions/{id}/usage; tree: ?tree=1 */
void usage_handle(server_ctx *ctx, const char *id, bool tree, http_response *resp);

#endif
