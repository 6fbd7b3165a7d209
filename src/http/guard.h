/* guard.h - what `serve` refuses before any handler runs: too many
 * connections (overall and from one client), connections that send no
 * complete request within the idle timeout (a byte a minute keeps no
 * connection open), a NUL in the path or query, and requests whose framing
 * a proxy could read differently (two Content-Length headers, or
 * Transfer-Encoding with Content-Length) or that carry two Authorization
 * headers.
 *
 * A connection beyond a limit is answered 503 at once, with a JSON error
 * and `Connection: close`, and closed; it never reaches a handler. */
#ifndef AGENTTRACED_HTTP_GUARD_H
#define AGENTTRACED_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>

typedef struct {
    unsigned max_connections; /* open at once, all clients */
    unsigned max_per_client;  /* open at once from one address */
    unsigned idle_timeout_s;  /* to send a request's headers, from connect or the last response (0: none) */
} http_guard_limits;

typedef struct http_guard http_guard;

/* Starts the thread that closes idle connections. NULL when out of memory. */
http_guard *http_guard_new(const http_guard_limits *lim);
void http_guard_free(http_guard *g);

/* The MHD connection limit to set: the guard's own plus room for the
 * connections it answers 503 (MHD refuses silently beyond it). */
unsigned http_guard_mhd_limit(const http_guard_limits *lim);

/* From MHD's connection notification: a connection opened (answered 503
 * and closed when beyond a limit) or closed. */
void http_guard_notify(http_guard *g, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* A request's headers arrived on c: false when c was refused (close it). */
bool http_guard_request_begins(http_guard *g, struct MHD_Connection *c);
/* The response to c's request was sent: the idle clock starts again. */
void http_guard_request_ends(http_guard *g, struct MHD_Connection *c);

/* The request line, as received (before %-decoding): NULL when acceptable,
 * else why not (a 400). */
const char *http_guard_uri(const char *raw_uri);
/* The request's headers: NULL when acceptable, else why not (a 400). */
const char *http_guard_headers(struct MHD_Connection *c);

#endif
