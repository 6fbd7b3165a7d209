/* test_tree.c - GET /sessions/{id}/tree against the reference outputs that
 * tests/vectors/gen_tree.py computes in Python (json.dumps, round, f-strings)
 * over tests/fixtures/expected and the edge-case storage
 * tests/vectors/tree/edge. */
#include "testlib.h"
#include "handler_stubs.h"
#include "tree.h"

#include <math.h>

static char *vec(const char *file, size_t *n)
{
    char rel[512];
    snprintf(rel, sizeof rel, "tests/vectors/tree/%s", file);
    return t_read_file(t_src(rel), n);
}

static void check_case(const char *storage, const char *sid, const char *jf, const char *tf)
{
    char root[4096];
    snprintf(root, sizeof root, "%s", t_src(strcmp(storage, "edge") == 0 ? "tests/vectors/tree/edge"
                                                                       : "tests/fixtures/expected"));
    size_t wn[2];
    char *want[2] = {vec(jf, &wn[0]), vec(tf, &wn[1])};
    for (int text = 0; text < 2; text++) {
        CHECK(want[text] != NULL, "missing vector for %s", sid);
        if (!want[text])
            continue;
        at_buf out;
        at_buf_init(&out, 0);
        at_error err;
        at_result r = tree_render(root, sid, text, &out, &err);
        CHECK(r == AT_OK, "%s: %s", sid, r == AT_OK ? "" : err.message);
        if (r == AT_OK)
            CHECK_BYTES(out.data, out.len, want[text], wn[text], text ? tf : jf);
        at_buf_fini(&out);

        /* through the handler, by a 12-character prefix when unambiguous */
        server_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.root = root;
        http_response resp;
        http_response_init(&resp);
        tree_handle(&ctx, sid, text, &resp);
        CHECK(resp.status == 200, "%s: status %d", sid, resp.status);
        CHECK_BYTES(resp.body.data, resp.body.len, want[text], wn[text], "handler");
        CHECK(strcmp(resp.content_type, text ? "text/plain; charset=utf-8" : "application/json") == 0,
              "content type %s", resp.content_type);
        http_response_fini(&resp);
        free(want[text]);
    }
}

static void check_errors(void)
{
    server_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.root = t_src("tests/fixtures/expected");
    http_response resp;
    http_response_init(&resp);
    tree_handle(&ctx, "no-such-session", false, &resp);
    CHECK(resp.status == 404, "unknown session: %d", resp.status);
    const char *want = "{\"error\": \"session not found: no-such-session\"}";
    CHECK_BYTES(resp.body.data, resp.body.len, want, strlen(want), "404 body");
    http_response_fini(&resp);

    http_response_init(&resp);
    tree_handle(&ctx, "../etc", false, &resp);
    CHECK(resp.status == 400, "bad id: %d", resp.status);
    http_response_fini(&resp);

    at_buf out;
    at_buf_init(&out, 0);
    at_error err;
    CHECK(tree_render(ctx.root, "nope", false, &out, &err) == AT_ERR_NOT_FOUND, "render unknown");
    CHECK(out.len == 0, "nothing written");
    at_buf_fini(&out);
}

int main(void)
{
    size_t n;
    char *cases = vec("cases.tsv", &n);
    CHECK(cases != NULL, "tests/vectors/tree/cases.tsv missing");
    int count = 0;
    for (char *line = cases; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) {
                *tab = 0;
                f[k] = tab + 1;
            }
        }
        if (f[3]) {
            check_case(f[0], f[1], f[2], f[3]);
            count++;
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK(count >= 20, "only %d cases", count);
    free(cases);
    check_errors();
    return t_done("test_tree");
}
