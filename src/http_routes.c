/* http_routes.c - the route table and the path matcher (see http_routes.h). */
#include "http_routes.h"

#include <string.h>

const struct http_route http_routes[] = {
    {"GET", "/health", H_HEALTH, false, HTTP_ACCESS_ROLE},
    {"GET", "/ready", H_READY, false, HTTP_ACCESS_ROLE},
    {"GET", "/metrics", H_METRICS, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions", H_LIST_SESSIONS, false, HTTP_ACCESS_ROLE},
    {"POST", "/sessions", H_POST_SESSIONS, true, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}", H_GET_SESSION, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/events", H_GET_SESSION_EVENTS, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/proof", H_GET_PROOF, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/versions", H_GET_VERSIONS, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/usage", H_GET_USAGE, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/events/{event_id}", H_GET_SESSION_EVENT, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/tree", H_GET_TREE, false, HTTP_ACCESS_ROLE},
    {"GET", "/sessions/{id}/verify", H_GET_VERIFY, false, HTTP_ACCESS_ROLE},
    {"POST", "/events", H_POST_EVENTS, true, HTTP_ACCESS_ROLE},
    {"GET", "/events/{event_id}", H_GET_EVENT, false, HTTP_ACCESS_ROLE},
    {"POST", "/verify", H_POST_VERIFY, true, HTTP_ACCESS_ROLE},
    {"GET", "/objects/sha256/{hex}", H_GET_OBJECT, false, HTTP_ACCESS_ROLE},
    {"GET", "/log/checkpoint", H_LOG_CHECKPOINT, false, HTTP_ACCESS_ROLE},
    {"GET", "/log/key", H_LOG_KEY, false, HTTP_ACCESS_ROLE},
    {"GET", "/log/consistency", H_LOG_CONSISTENCY, false, HTTP_ACCESS_ROLE},
    {"GET", "/log/tile/{tile*}", H_LOG_TILE, false, HTTP_ACCESS_ROLE},
    {"POST", "/import", H_IMPORT, true, HTTP_ACCESS_ROLE},
    {"PUT", "/import", H_IMPORT, true, HTTP_ACCESS_ROLE},
    {"GET", "/workspaces", H_WORKSPACES, false, HTTP_ACCESS_ROLE},
    {"POST", "/gc", H_GC, false, HTTP_ACCESS_ADMIN},
    {"GET", "/sessions/{id}/page", H_GET_EVENT_PAGE, false, HTTP_ACCESS_ROLE},
    /* the web UI (api/ui.c): no key needed (http_server.c asks ui_request_is_open) */
    {"GET", "/", H_UI_ROOT, false, HTTP_ACCESS_ROLE},
    {"GET", "/ui", H_UI_FILE, false, HTTP_ACCESS_ROLE},
    {"GET", "/ui/sessions/{id}", H_UI_FILE, false, HTTP_ACCESS_ROLE},
    {"GET", "/ui/{file}", H_UI_FILE, false, HTTP_ACCESS_ROLE},
};

const size_t http_nroutes = sizeof http_routes / sizeof http_routes[0];

bool http_route_match(const char *pattern, const char *path, size_t n, http_slice params[HTTP_MAX_PARAMS])
{
    size_t i = 0, np = 0;
    const char *q = pattern;
    while (*q) {
        if (*q != '/' || i >= n || path[i] != '/')
            return false;
        q++;
        i++;
        const char *qe = strchr(q, '/');
        size_t ql = qe ? (size_t)(qe - q) : strlen(q);
        size_t s = i;
        while (i < n && path[i] != '/')
            i++;
        size_t sl = i - s;
        if (ql >= 3 && q[0] == '{' && q[ql - 2] == '*' && q[ql - 1] == '}') {
            /* {name*}: the rest of the path, one or more segments */
            if (sl == 0 || np >= HTTP_MAX_PARAMS || q[ql] != 0)
                return false;
            params[np].p = path + s;
            params[np].n = n - s;
            np++;
            return path[n - 1] != '/';
        }
        if (ql >= 2 && q[0] == '{' && q[ql - 1] == '}') {
            if (sl == 0 || np >= HTTP_MAX_PARAMS)
                return false;
            params[np].p = path + s;
            params[np].n = sl;
            np++;
        } else if (sl != ql || memcmp(path + s, q, ql) != 0) {
            return false;
        }
        q += ql;
    }
    return i == n;
}
