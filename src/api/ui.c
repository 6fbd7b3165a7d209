/* ui.c - GET /, /ui/ and the UI's files (ui.h). */
#include "api/ui.h"

#include "api/ui_assets.h"

#include <stdio.h>
#include <string.h>

/* Does the comma-separated header value list `media` (e.g. "text/html")? */
static bool accepts(const char *accept, const char *media)
{
    return accept && strstr(accept, media) != NULL;
}

bool ui_request_is_open(const char *method, const char *url, const char *accept)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return false;
    if (strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0)
        return true;
    return strcmp(url, "/") == 0 && accepts(accept, "text/html");
}

void ui_root(const char *accept, http_response *resp)
{
    if (!accepts(accept, "text/html")) {
        http_response_error(resp, 404, "not found");
        return;
    }
    static const char body[] = "<!doctype html><title>agent-traced</title><a href=\"/ui/\">/ui/</a>\n";
    resp->status = 302;
    resp->content_type = "text/html; charset=utf-8";
    at_buf_reset(&resp->body);
    if (at_buf_add(&resp->body, body, sizeof body - 1) != AT_OK ||
        !http_response_header(resp, "Location", "/ui/")) {
        http_response_error(resp, 500, "out of memory");
    }
}

/* Does an If-None-Match value name etag ("*", or one of its quoted tags)? */
static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strchr(p, '"')) != NULL; p++)
        if (strncmp(p + 1, etag, n) == 0 && p[1 + n] == '"')
            return true;
    return false;
}

void ui_file(const char *name, const char *if_none_match, http_response *resp)
{
    if (!name || !*name || strcmp(name, "sessions") == 0 || strcmp(name, "usage") == 0)
        name = "index.html";
    const struct ui_asset *a = NULL;
    for (size_t i = 0; i < ui_nassets && !a; i++)
        if (strcmp(ui_assets[i].name, name) == 0)
            a = &ui_assets[i];
    if (!a) {
        http_response_error(resp, 404, "not found");
        return;
    }
    snprintf(resp->etag, sizeof resp->etag, "%s", a->etag);
    if (!http_response_header(resp, "Cache-Control", "no-cache") ||
        !http_response_header(resp, "X-Content-Type-Options", "nosniff")) {
        http_response_error(resp, 500, "out of memory");
        return;
    }
    resp->content_type = a->content_type;
    at_buf_reset(&resp->body);
    if (etag_matches(if_none_match, a->etag)) {
        resp->status = 304;
        return;
    }
    if (strcmp(name, "index.html") == 0 &&
        !http_response_header(resp, "Content-Security-Policy",
                              "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                              "base-uri 'none'; frame-ancestors 'none'")) {
        http_response_error(resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    if (at_buf_add(&resp->body, a->data, a->size) != AT_OK)
        http_response_error(resp, 500, "out of memory");
}
