/* http_routes.h - the route table of `agent-traced serve`: every (method,
 * path pattern) the server answers. The router (http_server.c), the metrics
 * labels and the OpenAPI check (tests/test_http.c) all read this one table,
 * so a route cannot exist in one place and be missing in another. It has
 * no dependencies, so a test can link it alone. */
#ifndef AGENTTRACED_HTTP_ROUTES_H
#define AGENTTRACED_HTTP_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    H_HEALTH,
    H_READY,
    H_LIST_SESSIONS,
    H_POST_SESSIONS,
    H_GET_SESSION,
    H_GET_SESSION_EVENTS,
    H_GET_VERSIONS,
    H_GET_SESSION_EVENT,
    H_GET_TREE,
    H_GET_VERIFY,
    H_POST_EVENTS,
    H_GET_EVENT,
    H_POST_VERIFY,
    H_GET_OBJECT,
    H_METRICS,
    H_IMPORT,
    H_GET_PROOF,
    H_LOG_CHECKPOINT,
    H_LOG_KEY,
    H_LOG_TILE,
    H_LOG_CONSISTENCY,
    H_WORKSPACES,
    H_GC,
    H_GET_EVENT_PAGE,
    H_UI_ROOT,
    H_UI_FILE,
    H_GET_USAGE,
} http_handler_id;

/* Who may call a route, when keys are configured: by default a reader
 * (a route with a body, but POST /verify: a writer); or an admin only. */
typedef enum { HTTP_ACCESS_ROLE = 0, HTTP_ACCESS_ADMIN } http_access;

/* One route. `pattern` segments written {name} match any one non-empty
 * path segment, a last one written {name*} the rest of the path (one or
 * more segments); `body` says the handler consumes a request body. */
struct http_route {
    const char *method;
    const char *pattern;
    http_handler_id handler;
    bool body;
    http_access access;
};

/* The request header naming the workspace a request is for (store.h,
 * "Workspaces"); without it, the key's workspace or the default one. */
#define HTTP_WORKSPACE_HEADER "X-Agent-Traced-Workspace"

extern const struct http_route http_routes[];
extern const size_t http_nroutes;

#define HTTP_MAX_PARAMS 2

/* A piece of the request path (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t n;
} http_slice;

/* Does path[0..n) (without query string, one trailing '/' already removed)
 * match pattern? On success params[] holds the {name} segments in order. */
bool http_route_match(const char *pattern, const char *path, size_t n, http_slice params[HTTP_MAX_PARAMS]);

#endif
