/* tree_cost.h - the token counts of an events.ndjson that a tree's cost is
 * priced from, through a process-wide cache (tree_cost.c explains when the
 * cache answers). Thread-safe. */
#ifndef AGENTTRACED_TREE_COST_H
#define AGENTTRACED_TREE_COST_H

#include "agenttrace/common.h"
#include "agenttrace/store.h"
#include <stdint.h>

/* Sums agent-strace's token estimate over the events of events_path:
 * *tokens_in over user_prompt, llm_request and tool_call events,
 * *tokens_out over assistant_response, llm_response and tool_result ones
 * (each event counts len(json.dumps(data)) // 4, at least 1). Lines that are
 * not events count nothing. A missing file is AT_OK with 0 and 0. Regular
 * files go through the cache; other files are read every time. On failure
 * (AT_ERR_IO, AT_ERR_NOMEM) both are 0 and err says why. */
at_result tree_cost_tokens(const char *events_path, int64_t *tokens_in, int64_t *tokens_out,
                           at_error *err) AT_WUR;
/* The same over an object's bytes (a database store's version), not cached. */
at_result tree_cost_tokens_object(at_object_reader *rd, int64_t *tokens_in, int64_t *tokens_out,
                                  at_error *err) AT_WUR;

/* How the process-wide cost cache answered, per events.ndjson looked at
 * (tree_cost.c explains when each applies). Regular files only. */
typedef struct {
    uint64_t hits;    /* sums taken from the cache, nothing read */
    uint64_t resumes; /* an append: only the bytes after the counted lines read */
    uint64_t counts;  /* read from the start */
} tree_cost_stats;

/* Empties the cost cache and zeroes the stats (tests; thread-safe). */
void tree_cost_cache_clear(void);

/* A snapshot of the stats since the start or the last clear. */
void tree_cost_cache_stats(tree_cost_stats *out);

#endif
