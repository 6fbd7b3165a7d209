/* verify.c - GET /sessions/{id}/verify and GET /objects/sha256/{hex}
 * (verify.h): a version's bytes checked from its object, and objects
 * served as they are stored. */
#include "api/verify.h"

#include "api/report.h"
#include "sessions.h"

#include "agenttrace/ledger.h"
#include "agenttrace/merkle.h"
#include "agenttrace/note.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "agenttrace/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stream contract over a store object reader. */
static ssize_t object_stream_read(void *ctx, uint64_t pos, char *buf, size_t n)
{
    return at_object_read(ctx, pos, buf, n);
}

static void object_stream_free(void *ctx)
{
    at_object_reader_free(ctx);
}

/* Is entry idx (version v of sid, rebuilt from the history) included in
 * the signed checkpoint cp? The inclusion proof is checked against the
 * checkpoint's root, as an auditor would. */
static bool log_included(server_ctx *ctx, const char *sid, uint64_t v, uint64_t idx, const at_buf *cp)
{
    at_version *vs = NULL;
    size_t nv = 0;
    bool ok = false;
    const char *blank = memmem(cp->data, cp->len, "\n\n", 2);
    at_note_checkpoint c;
    if (!blank || at_note_checkpoint_parse(cp->data, (size_t)(blank + 1 - cp->data), &c, NULL) != AT_OK ||
        at_store_versions(ctx->store, sid, &vs, &nv, NULL) != AT_OK)
        return false;
    for (size_t i = 0; i < nv && !ok; i++) {
        if (vs[i].version != v)
            continue;
        at_buf e;
        at_buf_init(&e, 0);
        uint8_t leaf[AT_SHA256_LEN];
        uint8_t(*proof)[AT_SHA256_LEN] = NULL;
        size_t n = 0;
        if (at_store_log_entry(sid, &vs[i], &e) == AT_OK &&
            at_merkle_leaf_hash(e.data, e.len, leaf) == AT_OK &&
            at_ledger_inclusion(ctx->ledger, idx, c.size, &proof, &n, NULL) == AT_OK)
            ok = at_merkle_verify_inclusion(idx, c.size, leaf, (const uint8_t *)proof, n, c.root) == AT_OK;
        free(proof);
        at_buf_fini(&e);
    }
    free(vs);
    return ok;
}

void api_verify_session(server_ctx *ctx, const char *id, at_verify_mode mode, uint64_t version, http_response *hr)
{
    char *sid = NULL;
    if (sessions_resolve(ctx, id, &sid, hr) != 200)
        return;
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    at_error err;
    memset(&err, 0, sizeof err);
    at_version cur;
    bool have = false;
    at_object_reader *rd = NULL;
    at_verifier *v = NULL;
    at_result r = at_store_current(ctx->store, sid, &cur, &have, &err);
    if (r == AT_OK && !have) {
        http_response_error(hr, 404, "session has no events: %s", sid);
        goto out;
    }
    /* The version's bytes, read from its object: they cannot change under
     * the check. object_ok: they hash to the version's recorded digest. */
    if (r == AT_OK)
        r = at_store_open_version(ctx->store, sid, (uint64_t)version, &rd, &err);
    if (r == AT_ERR_NOT_FOUND) {
        http_response_error(hr, 404, "%s", err.message);
        goto out;
    }
    if (r == AT_OK && !(v = at_verifier_new((at_verify_mode)mode)))
        r = at_error_set(&err, AT_ERR_NOMEM, -1, "out of memory");
    char *buf = r == AT_OK ? malloc(1 << 16) : NULL;
    if (r == AT_OK && !buf)
        r = at_error_set(&err, AT_ERR_NOMEM, -1, "out of memory");
    for (uint64_t off = 0; r == AT_OK && off < at_object_size(rd);) {
        ssize_t k = at_object_read(rd, off, buf, 1 << 16);
        if (k <= 0)
            r = at_error_set(&err, AT_ERR_IO, -1, "cannot read the events");
        else if ((r = at_verifier_feed(v, buf, (size_t)k, &err)) == AT_OK)
            off += (uint64_t)k;
    }
    free(buf);
    if (r == AT_OK)
        r = at_verifier_finish(v, &rep, &err);
    if (r != AT_OK) {
        http_response_error(hr, 500, "cannot verify: %s", err.message[0] ? err.message : at_result_str(r));
        goto out;
    }
    int object_ok = -1;
    if (version == 0)
        object_ok = memcmp(rep.file_sha256, cur.events_sha256, AT_SHA256_LEN) == 0;
    else {
        at_version *vs = NULL;
        size_t nv = 0;
        if (at_store_versions(ctx->store, sid, &vs, &nv, NULL) == AT_OK)
            for (size_t i = 0; i < nv; i++)
                if (vs[i].version == (uint64_t)version)
                    object_ok = memcmp(rep.file_sha256, vs[i].events_sha256, AT_SHA256_LEN) == 0;
        free(vs);
    }
    at_buf_reset(&hr->body);
    /* the log: the version's entry, and whether the latest checkpoint
     * includes it (its inclusion proof checked against the signed root) */
    char logjson[160] = "";
    if (ctx->ledger) {
        uint64_t idx, lv, size = 0;
        at_buf cp;
        at_buf_init(&cp, 0);
        bool logged = at_store_logged_index(ctx->store, sid, (uint64_t)version, &lv, &idx, NULL) == AT_OK;
        if (!logged) { /* written a moment ago: the log integrates within a second */
            at_error lerr = {0};
            lv = version ? (uint64_t)version : cur.version;
            logged = at_ledger_wait(ctx->ledger, sid, lv, &idx, 2000, &lerr) == AT_OK;
        }
        bool included = false;
        if (logged)
            (void)at_ledger_wait_signed(ctx->ledger, idx, 2000); /* signed moments after */
        if (at_ledger_checkpoint(ctx->ledger, &cp, &size) == AT_OK && logged && idx < size)
            included = log_included(ctx, sid, lv, idx, &cp);
        if (logged)
            snprintf(logjson, sizeof logjson,
                     "\"log\": {\"index\": %llu, \"included\": %s, \"checkpoint_size\": %llu}",
                     (unsigned long long)idx, included ? "true" : "false", (unsigned long long)size);
        else
            snprintf(logjson, sizeof logjson,
                     "\"log\": {\"index\": null, \"included\": false, \"checkpoint_size\": %llu}",
                     (unsigned long long)size);
        at_buf_fini(&cp);
    }
    report_verify_opts ro = {
        "session_id", sid, strlen(sid), 0, true, object_ok, ctx->ledger ? logjson : NULL};
    if (report_verify(&hr->body, &rep, &ro) != AT_OK)
        http_response_error(hr, 500, "out of memory");
    else
        hr->status = 200;
out:
    at_verifier_free(v);
    at_object_reader_free(rd);
    at_verify_report_fini(&rep);
    free(sid);
}

void api_object(server_ctx *ctx, const char *hexs, const char *if_none_match, http_response *hr)
{
    uint8_t d[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    if (!at_unhex_sha256(hexs, strlen(hexs), d)) {
        http_response_error(hr, 400, "malformed digest: expected 64 hex digits");
        return;
    }
    at_hex(d, AT_SHA256_LEN, hex);
    at_object_reader *rd;
    at_error err = {0};
    at_result r = at_store_open_object(ctx->store, hex, &rd, &err);
    if (r == AT_ERR_NOT_FOUND) {
        http_response_error(hr, 404, "object not found: %s", hex);
        return;
    }
    if (r != AT_OK) {
        http_response_error(hr, 500, "cannot read object: %s", err.message);
        return;
    }
    memcpy(hr->etag, hex, AT_SHA256_HEX);
    hr->content_type = "application/x-ndjson";
    const char *inm = if_none_match;
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"%s\"", hex);
    if (inm && (strcmp(inm, quoted) == 0 || strcmp(inm, "*") == 0)) {
        at_object_reader_free(rd);
        hr->status = 304;
        return;
    }
    hr->status = 200;
    hr->stream = (http_stream){object_stream_read, object_stream_free, rd, at_object_size(rd)};
}
