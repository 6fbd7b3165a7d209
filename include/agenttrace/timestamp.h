/* timestamp.h - Claude Code timestamps as Python parses them (claude-import.md §2). */
#ifndef AGENTTRACE_TIMESTAMP_H
#define AGENTTRACE_TIMESTAMP_H

#include "agenttrace/common.h"
#include <stdbool.h>

/* Computes what Python 3.11 returns for
 *     datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
 * for the n bytes of s (UTF-8, not NUL-terminated). Aware values: exact
 * microseconds since the epoch divided by 1e6, correctly rounded. Naive
 * values are local time (the process's TZ), computed as Python does.
 * Returns true and sets *out on success; false when Python would raise. */
bool at_timestamp_parse(const char *s, size_t n, double *out);

#endif
