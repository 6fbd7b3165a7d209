/* ui.h - the web UI (docs/ui.md): GET /ui/ and its files, compiled into
 * the program (ui_assets.h), and the redirect of a browser's GET /. The
 * files hold no data, so they are served without a key; every API call
 * the page makes carries one. */
#ifndef AGENTTRACED_API_UI_H
#define AGENTTRACED_API_UI_H

#include "http.h"

#include <stdbool.h>

/* Is this request answered without a key? GET or HEAD of /ui, /ui/...,
 * and of / when Accept names text/html (a browser: it is only redirected).
 * url: the path as routed (no query string); accept may be NULL. */
bool ui_request_is_open(const char *method, const char *url, const char *accept);

/* GET /: 302 to /ui/ when accept names text/html; otherwise 404
 * {"error": "not found"}, as before the UI existed (API clients). */
void ui_root(const char *accept, http_response *resp);

/* GET /ui/{name}: the file, with its ETag (304 when if_none_match names
 * it) and Cache-Control: no-cache; a client-side route of the page (NULL
 * or "": the session list, "sessions", "usage") is index.html; anything
 * else 404 {"error"}. */
void ui_file(const char *name, const char *if_none_match, http_response *resp);

#endif
