/* fuzz_request.c - the request path and query as `serve` handles them, up
 * to the handlers, without a server: the input is "<METHOD> <target>" (no
 * space: a GET of the whole input). As libmicrohttpd does, the target is
 * split at '?', the path unescaped (MHD_http_unescape), the query split at
 * '&' and '=' and each part unescaped. Then, as
 * http_server.c's begin(): one trailing '/' dropped and the route table
 * (http_routes.c) matched. Properties: at most one route matches a method
 * and path; the parameters are non-empty slices of the path, without '/'
 * but for a last {name*}; a tile path that parses formats back to itself.
 * The handlers that take a path parameter and no body then run on a store
 * holding two sessions whose ids share a prefix, resolving ids through the
 * directory or (odd input lengths) the catalog, as `serve` does: they answer
 * below 500, with JSON unless they send a file. */
#include "fuzz_store.h"

#include "api/history.h"
#include "collector.h"
#include "http.h"
#include "http_routes.h"
#include "sessions.h"

#include "agenttrace/catalog.h"
#include "agenttrace/json.h"
#include "agenttrace/merkle.h"

#include <microhttpd.h>
#include <stdbool.h>

static const char *const session_ids[] = {
    "0e0e0e0e-aaaa-4000-8000-000000000001",
    "0e0e0e0e-aaab-4000-8000-000000000002",
};

static server_ctx ctx;
static char root[PATH_MAX];
static at_catalog *catalog;

static void setup(void)
{
    if (ctx.store)
        return;
    ctx.store = fuzz_store_fresh("request", root);
    ctx.root = root;
    ctx.max_upload = 1u << 20;
    for (size_t i = 0; i < sizeof session_ids / sizeof *session_ids; i++) {
        char body[512];
        int k = snprintf(body, sizeof body,
                         "{\"event_type\": \"session_start\", \"session_id\": \"%s\", \"timestamp\": 1.5, "
                         "\"event_id\": \"e%zu\", \"data\": {\"n\": %zu}}\n",
                         session_ids[i], i, i);
        http_response resp;
        http_response_init(&resp);
        collector_post_events(&ctx, body, (size_t)k, &resp);
        FUZZ_CHECK(resp.status == 200);
        http_response_fini(&resp);
        http_response_init(&resp);
        k = snprintf(body, sizeof body, "{\"session_id\": \"%s\", \"agent_name\": \"fuzz\"}", session_ids[i]);
        collector_post_sessions(&ctx, body, (size_t)k, &resp);
        FUZZ_CHECK(resp.status == 200);
        http_response_fini(&resp);
    }
    at_error err = {0};
    FUZZ_CHECK((catalog = at_catalog_open(root, &err)) != NULL);
}

/* A handler's answer: below 500; a JSON body unless it sends a file. */
static void check_response(http_response *resp)
{
    if (resp->status >= 500)
        fprintf(stderr, "status %d: %.*s\n", resp->status, (int)resp->body.len, resp->body.data);
    FUZZ_CHECK(resp->status >= 200 && resp->status < 500);
    if (resp->fd < 0 && !resp->stream.read) {
        at_json_doc d;
        at_json_doc_init(&d);
        FUZZ_CHECK(resp->body.data && at_json_parse(&d, resp->body.data, resp->body.len, NULL) == AT_OK);
        at_json_doc_fini(&d);
    }
}

/* The query as libmicrohttpd hands it to MHD_lookup_connection_value
 * (the values the handlers' checks in http_server.c then read are static
 * there: see fuzz/README.md). */
static void split_query(char *q)
{
    for (char *a = q; a && *a;) {
        char *amp = strchr(a, '&');
        if (amp)
            *amp = 0;
        char *eq = strchr(a, '=');
        if (eq)
            *eq = 0;
        MHD_http_unescape(a); /* a %00 ends the C string the handler sees */
        if (eq) {
            char *v = eq + 1;
            MHD_http_unescape(v);
            if (strcmp(a, "session") == 0)
                (void)at_session_id_ok(v, strlen(v));
        }
        a = amp ? amp + 1 : NULL;
    }
}

static void check_params(const struct http_route *rt, const char *url, size_t n, const http_slice *ps)
{
    size_t np = 0;
    for (const char *q = rt->pattern; (q = strchr(q, '{')); q++)
        np++;
    FUZZ_CHECK(np <= HTTP_MAX_PARAMS);
    for (size_t k = 0; k < np; k++) {
        FUZZ_CHECK(ps[k].n > 0 && ps[k].p >= url && ps[k].p + ps[k].n <= url + n);
        bool rest = k + 1 == np && strstr(rt->pattern, "*}") != NULL;
        if (!rest)
            FUZZ_CHECK(memchr(ps[k].p, '/', ps[k].n) == NULL);
        else
            FUZZ_CHECK(ps[k].p[ps[k].n - 1] != '/');
    }
}

static void tile_roundtrip(const char *p, size_t n)
{
    at_merkle_tile t;
    if (at_merkle_tile_path_parse(p, n, &t) != AT_OK)
        return;
    char out[AT_MERKLE_TILE_PATH_MAX];
    size_t len;
    FUZZ_CHECK(at_merkle_tile_path_format(&t, out, sizeof out, &len) == AT_OK);
    FUZZ_CHECK(len == n && memcmp(out, p, n) == 0);
}

/* Runs the handler of route h with its first parameter a (NUL-terminated),
 * as dispatch_get does. */
static void run_handler(http_handler_id h, const char *a)
{
    http_response resp;
    http_response_init(&resp);
    switch (h) {
    case H_GET_SESSION: collector_get_session(&ctx, a, &resp); break;
    case H_GET_SESSION_EVENTS: collector_get_events(&ctx, a, 0, &resp); break;
    case H_GET_VERSIONS: history_versions(&ctx, a, &resp); break;
    default: http_response_fini(&resp); return;
    }
    check_response(&resp);
    http_response_fini(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size > 64 * 1024 || memchr(data, 0, size)) /* a NUL never reaches a handler */
        return 0;
    ctx.catalog = (size & 1) ? catalog : NULL;
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *method = "GET";
    char *url = buf;
    char *sp = strchr(buf, ' ');
    if (sp) {
        *sp = 0;
        method = buf;
        url = sp + 1;
    }
    char *q = strchr(url, '?');
    if (q)
        *q++ = 0;
    MHD_http_unescape(url);
    split_query(q);

    size_t n = strlen(url);
    if (n > 1 && url[n - 1] == '/')
        n--;
    bool head = strcmp(method, "HEAD") == 0;
    int chosen = -1;
    http_slice ps[HTTP_MAX_PARAMS], first[HTTP_MAX_PARAMS];
    for (size_t i = 0; i < http_nroutes; i++) {
        if (!http_route_match(http_routes[i].pattern, url, n, ps))
            continue;
        check_params(&http_routes[i], url, n, ps);
        if (strcmp(http_routes[i].method, method) != 0 && !(head && strcmp(http_routes[i].method, "GET") == 0))
            continue;
        FUZZ_CHECK(chosen < 0); /* one route per method and path */
        chosen = (int)i;
        memcpy(first, ps, sizeof ps);
    }
    if (chosen >= 0) {
        const struct http_route *rt = &http_routes[chosen];
        if (rt->handler == H_LOG_TILE)
            tile_roundtrip(first[0].p, first[0].n);
        if (!rt->body && strchr(rt->pattern, '{')) {
            char *a = strndup(first[0].p, first[0].n);
            FUZZ_CHECK(a != NULL);
            run_handler(rt->handler, a);
            free(a);
        }
    }
    free(buf);
    return 0;
}
