/* metrics.h - process-wide Prometheus counters of `agent-traced serve`.
 * Lock-free (relaxed atomics): recording is a few increments per request;
 * rendering reads a slightly inconsistent but monotonic snapshot, which is
 * what Prometheus expects of counters. */
#ifndef AGENTTRACED_METRICS_H
#define AGENTTRACED_METRICS_H

#include "agenttrace/buf.h"
#include <stdbool.h>
#include <stdint.h>

#define METRICS_MAX_ROUTES 48 /* route indexes 0..n-1; n = "unmatched" */

/* A finished request: route index (or -1 when no route matched), status
 * (0 when the client went away before a response), latency. */
void metrics_request(int route, int status, uint64_t usec);
/* A finished POST/PUT /import: bytes received, bytes after decompression,
 * events stored (0 on failure), latency. */
void metrics_import(uint64_t bytes_in, uint64_t bytes_decoded, uint64_t events, uint64_t usec, bool ok);
/* Open TCP connections: +1 on accept, -1 on close. */
void metrics_connection(int delta);
/* Requests being processed (between first callback and completion). */
void metrics_inflight(int delta);
int64_t metrics_inflight_now(void);

/* Appends the text exposition format. route_names[i] labels route i. */
at_result metrics_render(at_buf *out, const char *const *route_names, size_t nroutes) AT_WUR;

#endif
