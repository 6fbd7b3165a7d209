/* usage.c - GET /sessions/{id}/usage (see usage.h): reads the usage the
 * store kept with the session's transcript, prices it, writes the JSON in
 * Python's json.dumps default form. A session with no usage recorded
 * (imported before agent-traced kept it) is a 404 saying so: nothing is
 * computed from its events, which do not hold what ccusage counts. */
#include "usage.h"

#include "agenttrace/json.h"
#include "sessions.h"

#include <stdlib.h>
#include <string.h>

void usage_line_init(usage_line *l)
{
    memset(l, 0, sizeof *l);
    l->priced = true;
}

void usage_line_add(usage_line *l, const at_usage_model *m, const at_usage_sums *s)
{
    for (int k = 0; k < AT_TOK_KINDS; k++)
        l->tokens[k] += s->tokens[k];
    const at_price *p = at_price_find(m->model);
    if (p)
        l->cost += at_usage_cost(s, p, m->fast);
    else
        l->priced = false;
}

at_result usage_line_write(at_buf *b, const usage_line *l)
{
    static const char *const keys[AT_TOK_KINDS] = {"input_tokens", "output_tokens", "cache_creation_tokens",
                                                   "cache_read_tokens"};
    at_result r = AT_OK;
    for (int k = 0; r == AT_OK && k < AT_TOK_KINDS; k++) {
        r = at_buf_printf(b, "%s\"%s\": ", k ? ", " : "", keys[k]);
        if (r == AT_OK)
            r = at_usage_write_count(b, l->tokens[k]);
    }
    if (r == AT_OK)
        r = at_buf_adds(b, ", \"cost_usd\": ");
    if (r == AT_OK)
        r = l->priced ? at_json_write_double(b, l->cost) : at_buf_adds(b, "null");
    return r;
}

/* The usage of sid parsed into u (initialized); *have false when none. */
static at_result load_usage(at_store *st, const char *sid, at_usage *u, bool *have, uint64_t *version,
                            at_error *err)
{
    char *json;
    size_t len;
    *have = false;
    at_result r = at_store_usage(st, sid, &json, &len, version, err);
    if (r != AT_OK || !json)
        return r;
    r = at_usage_read(u, json, len);
    free(json);
    if (r != AT_OK)
        return at_error_set(err, r, -1, "the usage kept for %s is unreadable", sid);
    *have = true;
    return AT_OK;
}

/* Adds u's total to l (the token sums in file order, costs per model). */
static void add_total(usage_line *l, const at_usage *u)
{
    usage_line t;
    usage_line_init(&t);
    for (size_t i = 0; i < u->nmodels; i++) {
        usage_line_add(&t, &u->models[i], &u->models[i].sums);
    }
    for (int k = 0; k < AT_TOK_KINDS; k++)
        l->tokens[k] += u->total.tokens[k];
    l->cost += t.cost;
    l->priced = l->priced && t.priced;
}

at_result usage_report(at_store *st, const char *sid, bool tree, at_buf *b, bool *recorded, at_error *err)
{
    at_usage u;
    at_usage_init(&u);
    uint64_t version;
    at_result r = load_usage(st, sid, &u, recorded, &version, err);
    if (r != AT_OK || !*recorded)
        goto out;
    if ((r = at_buf_adds(b, "{\"session_id\": ")) != AT_OK ||
        (r = at_json_write_wtf8(b, sid, strlen(sid))) != AT_OK ||
        (r = at_buf_printf(b, ", \"version\": %llu, \"models\": [", (unsigned long long)version)) != AT_OK)
        goto nomem;
    at_buf name;
    at_buf_init(&name, 0);
    for (size_t i = 0; r == AT_OK && i < u.nmodels; i++) {
        usage_line l;
        usage_line_init(&l);
        usage_line_add(&l, &u.models[i], &u.models[i].sums);
        at_buf_reset(&name);
        r = at_buf_adds(b, i ? ", {\"model\": " : "{\"model\": ");
        if (r == AT_OK)
            r = u.models[i].model ? at_usage_model_name(&u.models[i], &name) : AT_OK;
        if (r == AT_OK)
            r = u.models[i].model ? at_json_write_wtf8(b, name.data, name.len) : at_buf_adds(b, "null");
        if (r == AT_OK)
            r = at_buf_adds(b, ", ");
        if (r == AT_OK)
            r = usage_line_write(b, &l);
        if (r == AT_OK)
            r = at_buf_addc(b, '}');
    }
    at_buf_fini(&name);
    usage_line tot;
    usage_line_init(&tot);
    add_total(&tot, &u);
    if (r != AT_OK || (r = at_buf_adds(b, "], \"total\": {")) != AT_OK ||
        (r = usage_line_write(b, &tot)) != AT_OK || (r = at_buf_addc(b, '}')) != AT_OK)
        goto nomem;
    if (tree) {
        char **ids;
        size_t n;
        uint64_t without = 0;
        if ((r = at_store_descendants(st, sid, &ids, &n, err)) != AT_OK)
            goto out;
        for (size_t i = 0; r == AT_OK && i < n; i++) {
            at_usage cu;
            at_usage_init(&cu);
            bool have;
            uint64_t cv;
            r = load_usage(st, ids[i], &cu, &have, &cv, err);
            if (r == AT_ERR_NOT_FOUND) /* removed meanwhile */
                r = AT_OK;
            else if (r == AT_OK && have)
                add_total(&tot, &cu);
            else if (r == AT_OK)
                without++;
            at_usage_fini(&cu);
        }
        at_store_list_free(ids, n);
        if (r != AT_OK)
            goto out;
        if ((r = at_buf_adds(b, ", \"tree_total\": {")) != AT_OK ||
            (r = usage_line_write(b, &tot)) != AT_OK ||
            (r = at_buf_printf(b, ", \"sessions\": %llu, \"sessions_without_usage\": %llu}",
                               (unsigned long long)(n + 1), (unsigned long long)without)) != AT_OK)
            goto nomem;
    }
    if ((r = at_buf_addc(b, '}')) != AT_OK)
        goto nomem;
    goto out;
nomem:
    r = at_error_set(err, r, -1, "out of memory");
out:
    at_usage_fini(&u);
    return r;
}

void usage_handle(server_ctx *ctx, const char *id, bool tree, http_response *resp)
{
    char *sid;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_error err = {0};
    bool recorded = false;
    at_buf_reset(&resp->body);
    at_result r = usage_report(ctx->store, sid, tree, &resp->body, &recorded, &err);
    if (r == AT_ERR_NOT_FOUND)
        http_response_error(resp, 404, "session not found: %s", id);
    else if (r != AT_OK)
        http_response_error(resp, 500, "cannot read the usage: %s",
                            err.message[0] ? err.message : at_result_str(r));
    else if (!recorded)
        http_response_error(
            resp, 404,
            "usage not recorded for session %s: it was imported before agent-traced kept token "
            "usage; import its transcript again",
            sid);
    else
        resp->status = 200;
    free(sid);
}
