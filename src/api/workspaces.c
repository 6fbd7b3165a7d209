/* workspaces.c - GET /workspaces and POST /gc (workspaces.h). */
#include "api/workspaces.h"

#include "api/report.h"

#include "agenttrace/json.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char **ids;
    size_t n, cap;
    bool oom;
} id_list;

static void collect(void *ctx, const char *ws)
{
    id_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids) {
            l->oom = true;
            return;
        }
        l->ids = ids;
        l->cap = cap;
    }
    if (!(l->ids[l->n] = strdup(ws)))
        l->oom = true;
    else
        l->n++;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void api_workspaces(at_store *dflt, const char *only, http_response *resp)
{
    id_list l = {0};
    at_error err = {0};
    if (only)
        collect(&l, only);
    else if (at_store_workspaces(dflt, collect, &l, &err) != AT_OK) {
        http_response_error(resp, 500, "cannot list the workspaces: %s", err.message);
        goto out;
    }
    if (l.n > 1)
        qsort(l.ids + 1, l.n - 1, sizeof *l.ids, by_id); /* "default" stays first */
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = l.oom ? AT_ERR_NOMEM : at_buf_adds(&b, "{\"workspaces\": [");
    for (size_t i = 0; i < l.n && r == AT_OK; i++) {
        if (i)
            r = at_buf_adds(&b, ", ");
        if (r == AT_OK)
            r = at_json_write_wtf8(&b, l.ids[i], strlen(l.ids[i]));
    }
    if (r == AT_OK)
        r = at_buf_adds(&b, "]}");
    if (r != AT_OK)
        http_response_error(resp, 500, "out of memory");
    else
        http_response_json(resp, 200, b.data, b.len);
    at_buf_fini(&b);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);
}

void api_gc(server_ctx *ctx, const at_gc_policy *p, http_response *resp)
{
    at_gc_report rep;
    at_error err = {0};
    at_result r = at_store_gc(ctx->store, p, &rep, &err);
    if (r != AT_OK) {
        http_response_error(resp, r == AT_ERR_NO_SPACE ? 507 : 500, "gc failed: %s",
                            err.message[0] ? err.message : at_result_str(r));
        return;
    }
    at_buf b;
    at_buf_init(&b, 0);
    if (report_gc(&b, &rep, p->dry_run, at_store_workspace(ctx->store)) != AT_OK)
        http_response_error(resp, 500, "out of memory");
    else
        http_response_json(resp, 200, b.data, b.len);
    at_buf_fini(&b);
}
