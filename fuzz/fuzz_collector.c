/* fuzz_collector.c - the collector's parsers (collector.c), through its
 * handlers on a fresh store per input: POST /events (the event lines) when
 * the first byte is even, POST /sessions (the metadata) when odd, redaction
 * on when bit 1 is set. Whatever the body: an answer below 500 whose body
 * is JSON; and unless an event gives its own prev_hash (kept as given, as
 * agent-strace keeps it: server-api.md), every events.ndjson left in the
 * store passes the strict chain verifier. */
#include "fuzz_store.h"

#include "collector.h"
#include "http.h"
#include "sessions.h"

#include "agenttrace/json.h"
#include "agenttrace/verify.h"

#include <stdio.h>

/* Every session's events.ndjson passes the strict verifier. */
static void check_sessions(const char *root)
{
    char **ids;
    size_t n;
    FUZZ_CHECK(sessions_scan(root, &ids, &n) == AT_OK);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s/events.ndjson", root, ids[i]);
        if (stat(p, &sb) != 0)
            continue;
        at_verify_report rep;
        at_error err = {0};
        FUZZ_CHECK(at_verify_file(p, AT_VERIFY_STRICT, &rep, &err) == AT_OK);
        if (!rep.ok)
            fprintf(stderr, "%s: line %lld: %s\n", p, (long long)rep.broken_at, rep.reason);
        FUZZ_CHECK(rep.ok);
        at_verify_report_fini(&rep);
    }
    sessions_free_ids(ids, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char root[PATH_MAX];
    server_ctx ctx = {0};
    ctx.store = fuzz_store_fresh("collector", root);
    ctx.root = root;
    ctx.max_upload = 1u << 20;
    ctx.redact = (data[0] & 2) != 0;
    http_response resp;
    http_response_init(&resp);
    const char *body = (const char *)data + 1;
    if (data[0] & 1)
        collector_post_sessions(&ctx, body, size - 1, &resp);
    else
        collector_post_events(&ctx, body, size - 1, &resp);
    if (resp.status >= 500)
        fprintf(stderr, "status %d: %.*s\n", resp.status, (int)resp.body.len, resp.body.data);
    FUZZ_CHECK(resp.status >= 200 && resp.status < 500);
    at_json_doc d;
    at_json_doc_init(&d);
    FUZZ_CHECK(resp.body.data && at_json_parse(&d, resp.body.data, resp.body.len, NULL) == AT_OK);
    at_json_doc_fini(&d);
    http_response_fini(&resp);
    /* a given prev_hash is stored as is; a \u escape may spell the key */
    if (!memmem(body, size - 1, "prev_hash", 9) && !memmem(body, size - 1, "\\u", 2))
        check_sessions(root);
    at_store_free(ctx.store);
    return 0;
}
