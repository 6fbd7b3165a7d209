/* tree.h - `agent-strace tree` over a storage directory (server-api.md,
 * "Trees, exactly as agent-strace prints them"), usable without HTTP. */
#ifndef AGENTTRACED_TREE_H
#define AGENTTRACED_TREE_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>

/* Appends to out what `agent-strace tree <id> --format json` (text: false)
 * or `--format text` prints for the session stored in <root>/<session_dir>
 * (an exact directory name: resolve prefixes first), trailing newline
 * included. AT_ERR_NOT_FOUND when that session has no readable meta.json;
 * AT_ERR_INVALID when a meta counter is not a number (agent-strace would
 * fail too); AT_ERR_NOMEM / AT_ERR_IO otherwise. */
at_result tree_render(const char *root, const char *session_dir, bool text, at_buf *out,
                      at_error *err) AT_WUR;

/* How the process-wide cost cache answered, per events.ndjson looked at
 * (tree.c explains when each applies). Regular files only. */
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
