/* history.c - GET /sessions/{id}/versions (server-api.md, the history
 * issue): {"session_id", "versions": [{"version", "events", "events_sha256",
 * "head", "transcript_bytes", "transcript_sha256", "cause", "time"}]},
 * oldest first, in Python's json.dumps default form. */
#include "history.h"

#include "agenttrace/json.h"
#include "sessions.h"

#include <stdlib.h>
#include <string.h>

static at_result put_hex(at_buf *b, const char *key, const uint8_t *dg, bool have)
{
    if (!have)
        return at_buf_printf(b, ", \"%s\": null", key);
    char hex[AT_SHA256_HEX];
    at_hex(dg, AT_SHA256_LEN, hex);
    return at_buf_printf(b, ", \"%s\": \"%s\"", key, hex);
}

static at_result write_versions(at_buf *b, const char *sid, const at_version *v, size_t n)
{
    at_result r = at_buf_adds(b, "{\"session_id\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(b, sid, strlen(sid));
    if (r == AT_OK)
        r = at_buf_adds(b, ", \"versions\": [");
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        r = at_buf_printf(b, "%s{\"version\": %llu, \"events\": %llu", i ? ", " : "",
                          (unsigned long long)v[i].version, (unsigned long long)v[i].events);
        if (r == AT_OK)
            r = put_hex(b, "events_sha256", v[i].events_sha256, true);
        if (r == AT_OK)
            r = put_hex(b, "head", v[i].head, v[i].have_head);
        if (r == AT_OK)
            r = v[i].transcript_bytes >= 0
                    ? at_buf_printf(b, ", \"transcript_bytes\": %lld", (long long)v[i].transcript_bytes)
                    : at_buf_adds(b, ", \"transcript_bytes\": null");
        if (r == AT_OK)
            r = put_hex(b, "transcript_sha256", v[i].transcript_sha256, v[i].transcript_bytes >= 0);
        if (r == AT_OK)
            r = at_buf_printf(b, ", \"cause\": \"%s\", \"time\": ", at_cause_name(v[i].cause));
        if (r == AT_OK)
            r = at_json_write_double(b, v[i].time);
        if (r == AT_OK)
            r = at_buf_addc(b, '}');
    }
    if (r == AT_OK)
        r = at_buf_adds(b, "]}");
    return r;
}

void history_versions(server_ctx *ctx, const char *id, http_response *resp)
{
    char *sid;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_version *v = NULL;
    size_t n = 0;
    at_error err = {0};
    at_result r = at_store_versions(ctx->store, sid, &v, &n, &err);
    if (r == AT_ERR_NOT_FOUND) {
        http_response_error(resp, 404, "session not found: %s", id);
    } else if (r != AT_OK) {
        http_response_error(resp, 500, "cannot read the history: %s",
                            err.message[0] ? err.message : at_result_str(r));
    } else {
        at_buf_reset(&resp->body);
        if (write_versions(&resp->body, sid, v, n) != AT_OK)
            http_response_error(resp, 500, "out of memory");
        else
            resp->status = 200;
    }
    free(v);
    free(sid);
}
