/* log.c - the transparency log's endpoints (log.h). Tiles and bundles are
 * served for the tree of the latest checkpoint; full ones never change. */
#include "log.h"

#include "agenttrace/ledger.h"
#include "agenttrace/merkle.h"
#include "sessions.h"

#include <stdlib.h>
#include <string.h>

static bool have_log(server_ctx *ctx, http_response *resp)
{
    if (ctx->ledger)
        return true;
    http_response_error(resp, 404, "this server keeps no transparency log");
    return false;
}

void log_checkpoint(server_ctx *ctx, http_response *resp)
{
    if (!have_log(ctx, resp))
        return;
    uint64_t size;
    at_buf_reset(&resp->body);
    if (at_ledger_checkpoint(ctx->ledger, &resp->body, &size) != AT_OK) {
        http_response_error(resp, 503, "no checkpoint signed yet: retry in a second");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
}

void log_key(server_ctx *ctx, http_response *resp)
{
    if (!have_log(ctx, resp))
        return;
    at_buf_reset(&resp->body);
    if (at_buf_adds(&resp->body, ctx->log_vkey) != AT_OK || at_buf_addc(&resp->body, '\n') != AT_OK) {
        http_response_error(resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
}

void log_tile(server_ctx *ctx, const char *path, http_response *resp)
{
    if (!have_log(ctx, resp))
        return;
    at_merkle_tile t;
    if (at_merkle_tile_path_parse(path, strlen(path), &t) != AT_OK) {
        http_response_error(resp, 400, "malformed tile path: %s", path);
        return;
    }
    at_buf cp;
    at_buf_init(&cp, 0);
    uint64_t size = 0;
    if (at_ledger_checkpoint(ctx->ledger, &cp, &size) != AT_OK)
        size = 0;
    at_buf_fini(&cp);
    at_buf_reset(&resp->body);
    at_result r = at_ledger_tile(ctx->ledger, t.level, t.index, t.width, size, &resp->body);
    if (r == AT_ERR_NOT_FOUND || r == AT_ERR_INVALID) {
        http_response_error(resp, 404, "no such tile in the tree of the latest checkpoint (size %llu)",
                            (unsigned long long)size);
        return;
    }
    if (r != AT_OK) {
        http_response_error(resp, 500, "cannot read the tile: %s", at_result_str(r));
        return;
    }
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->immutable = t.width == AT_MERKLE_TILE_WIDTH;
}

void log_proof(server_ctx *ctx, const char *id, uint64_t version, http_response *resp)
{
    if (!have_log(ctx, resp))
        return;
    char *sid;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_error err = {0};
    uint64_t index, v;
    at_buf_reset(&resp->body);
    at_result r = at_ledger_proof(ctx->ledger, sid, version, &resp->body, &index, &v, &err);
    if (r == AT_ERR_NOT_FOUND)
        http_response_error(resp, 404, "%s", err.message);
    else if (r != AT_OK)
        http_response_error(resp, 500, "cannot prove: %s", err.message[0] ? err.message : at_result_str(r));
    else {
        resp->status = 200;
        resp->content_type = "text/plain; charset=utf-8";
    }
    free(sid);
}

void log_consistency(server_ctx *ctx, uint64_t from, uint64_t to, http_response *resp)
{
    if (!have_log(ctx, resp))
        return;
    at_buf cp;
    at_buf_init(&cp, 0);
    uint64_t size = 0;
    if (at_ledger_checkpoint(ctx->ledger, &cp, &size) != AT_OK)
        size = 0;
    at_buf_fini(&cp);
    if (!to)
        to = size;
    if (from > to || to > size) {
        http_response_error(resp, 400, "need from <= to <= %llu (the latest checkpoint's size)",
                            (unsigned long long)size);
        return;
    }
    uint8_t(*proof)[AT_SHA256_LEN] = NULL;
    size_t n = 0;
    at_error err = {0};
    if (at_ledger_consistency(ctx->ledger, from, to, &proof, &n, &err) != AT_OK) {
        http_response_error(resp, 500, "%s", err.message);
        return;
    }
    at_buf_reset(&resp->body);
    at_result r = AT_OK;
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        r = at_note_base64_encode(proof[i], AT_SHA256_LEN, &resp->body);
        if (r == AT_OK)
            r = at_buf_addc(&resp->body, '\n');
    }
    free(proof);
    if (r != AT_OK) {
        http_response_error(resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
}
