/* workspace.c - the workspaces one `serve` holds (workspace.h).
 *
 * A workspace is opened once and never closed before the server stops, so
 * a server_ctx pointer a request took stays valid for the request's life
 * without reference counts. Opening is serialized by the set's mutex: two
 * first requests for the same workspace open it once. */
#include "workspace.h"

#include "index.h"
#include "log_line.h"

#include "agenttrace/catalog.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WS_MAX 1024 /* workspaces one server keeps open */

typedef struct {
    char id[AT_MAX_WORKSPACE_ID + 1];
    server_ctx ctx;
    at_note_signer *signer; /* the log's key under this workspace's origin (NULL: the default's) */
    at_buf vkey;
} workspace;

struct ws_set {
    const ws_config *cfg;
    pthread_mutex_t mu;
    workspace *ws[WS_MAX]; /* [0]: the default; grows, never shrinks */
    size_t n;              /* read without the lock through ws_count */
};

typedef struct {
    const char *want;
    bool found;
} ws_find;

static void find_ws(void *ctx, const char *ws)
{
    ws_find *f = ctx;
    f->found |= strcmp(f->want, ws) == 0;
}

/* Whether the database holds workspace id (its sessions were stored). */
static bool in_database(ws_set *w, const char *id)
{
    ws_find f = {id, false};
    at_error err = {0};
    return at_store_workspaces(w->ws[0]->ctx.store, find_ws, &f, &err) == AT_OK && f.found;
}

static size_t ws_count(ws_set *w)
{
    return __atomic_load_n(&w->n, __ATOMIC_ACQUIRE);
}

static void ws_close(workspace *x)
{
    if (!x)
        return;
    event_index_close(x->ctx.index);
    at_ledger_stop(x->ctx.ledger);
    at_catalog_free(x->ctx.catalog);
    at_store_free(x->ctx.store);
    at_note_signer_free(x->signer);
    at_buf_fini(&x->vkey);
    free(x);
}

/* Opens workspace id: store, catalog, log, and (unless deferred to
 * ws_open_index) staging swept and the event index. */
static workspace *ws_open(const ws_config *c, const char *id, bool defer_index, at_error *err)
{
    workspace *x = calloc(1, sizeof *x);
    if (!x) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    snprintf(x->id, sizeof x->id, "%s", id);
    at_buf_init(&x->vkey, 0);
    bool deflt = strcmp(id, AT_DEFAULT_WORKSPACE) == 0;
    server_ctx *ctx = &x->ctx;
    ctx->max_upload = c->max_upload;
    ctx->redact = c->redact;
    if (c->database) {
        /* every replica reads and writes the database alone: no root; the
         * database's sessions and event index (src/db/dbindex.c, looked up
         * through the store) stand in for a catalog and an event index */
        if (!(ctx->store = at_store_open_database(c->database, id, c->tmp_dir, err)))
            goto fail;
    } else {
        if (!(ctx->store = at_store_open_workspace(c->storage, id, err)))
            goto fail;
        ctx->root = at_store_root(ctx->store);
        if (!(ctx->catalog = at_catalog_open(ctx->root, err)))
            goto fail;
    }
    if (c->signer) {
        char origin[512];
        const at_note_signer *signer = c->signer;
        if (!deflt) {
            int k = snprintf(origin, sizeof origin, "%s/%s", c->origin, id);
            if (k < 0 || (size_t)k >= sizeof origin ||
                at_note_signer_renamed(c->signer, origin, strlen(origin), &x->signer, err) != AT_OK)
                goto fail;
            signer = x->signer;
        }
        if (at_note_signer_vkey(signer, &x->vkey) != AT_OK) {
            at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            goto fail;
        }
        ctx->log_vkey = x->vkey.data;
        at_ledger_options lo = {.origin = deflt ? c->origin : origin,
                                .signer = signer,
                                .catalog = ctx->catalog,
                                .witnesses = c->witnesses,
                                .n_witnesses = c->n_witnesses,
                                .held = defer_index /* until ws_open_index: serve's first line first */};
        if (!(ctx->ledger = at_ledger_start(ctx->store, &lo, err)))
            goto fail;
        if (!deflt)
            log_line("agent-traced serve: workspace %s: log %s, verifier key %s", id, origin, x->vkey.data);
    }
    if (!defer_index && !c->database) {
        unsigned swept = at_store_sweep(ctx->store);
        if (swept)
            log_line("agent-traced serve: workspace %s: removed %u staging entries left by killed writers", id,
                     swept);
        ctx->index = event_index_open(ctx->root, err);
        if (!ctx->index)
            log_line("agent-traced serve: workspace %s: event index unavailable: %s", id, err->message);
    }
    return x;
fail:
    ws_close(x);
    return NULL;
}

ws_set *ws_set_new(const ws_config *c, at_error *err)
{
    ws_set *w = calloc(1, sizeof *w);
    if (!w) {
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    w->cfg = c;
    pthread_mutex_init(&w->mu, NULL);
    if (!(w->ws[0] = ws_open(c, AT_DEFAULT_WORKSPACE, true, err))) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    w->n = 1;
    return w;
}

void ws_set_free(ws_set *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        ws_close(w->ws[i]);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

server_ctx *ws_default(ws_set *w)
{
    return &w->ws[0]->ctx;
}

bool ws_open_index(ws_set *w, at_error *err)
{
    server_ctx *ctx = ws_default(w);
    at_ledger_release(ctx->ledger);
    unsigned swept = at_store_sweep(ctx->store);
    if (swept)
        log_line("agent-traced serve: removed %u staging entries left by killed writers", swept);
    if (w->cfg->database)
        return true; /* the database's event index: lookups go through the store */
    event_index *ix = event_index_open(ctx->root, err);
    __atomic_store_n(&ctx->index, ix, __ATOMIC_RELEASE); /* handlers run already */
    return ix != NULL;
}

server_ctx *ws_get(ws_set *w, const char *id, bool create, at_error *err)
{
    if (!id || strcmp(id, AT_DEFAULT_WORKSPACE) == 0)
        return ws_default(w);
    if (!at_workspace_id_ok(id)) {
        at_error_set(err, AT_ERR_INVALID, -1, "invalid workspace '%.64s': 1-%d of A-Z a-z 0-9 . _ -", id,
                     AT_MAX_WORKSPACE_ID);
        return NULL;
    }
    size_t n = ws_count(w);
    for (size_t i = 1; i < n; i++)
        if (strcmp(w->ws[i]->id, id) == 0)
            return &w->ws[i]->ctx;
    pthread_mutex_lock(&w->mu);
    server_ctx *found = NULL;
    for (size_t i = 1; i < w->n && !found; i++)
        if (strcmp(w->ws[i]->id, id) == 0)
            found = &w->ws[i]->ctx;
    if (!found) {
        char dir[PATH_MAX] = "";
        struct stat sb;
        /* a workspace of the database exists once it has its row (made
         * below, or by the first session stored in it) */
        bool in_db = w->cfg->database != NULL;
        if (!in_db && at_workspace_root(w->cfg->storage, id, dir, sizeof dir) != AT_OK)
            at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
        else if (!create && (in_db ? !in_database(w, id) : stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            at_error_set(err, AT_ERR_NOT_FOUND, -1, "no workspace %s on this server", id);
        else if (w->n == WS_MAX)
            at_error_set(err, AT_ERR_TOO_BIG, -1, "this server keeps at most %d workspaces", WS_MAX);
        else {
            workspace *x = ws_open(w->cfg, id, false, err);
            /* made now, it is listed (a directory's is made by the open).
             * Without its row (the database failing) it stays open: the
             * first session stored in it makes the row; closing it here
             * would wait for its log's thread under the lock. */
            at_error werr = {0};
            if (x && create && at_store_workspace_create(x->ctx.store, &werr) != AT_OK)
                log_line("agent-traced serve: workspace %s: not listed until a session is stored in it: %s", id,
                         werr.message);
            if (x) {
                w->ws[w->n] = x;
                __atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE);
                found = &x->ctx;
                log_line("agent-traced serve: workspace %s opened: %s", id, in_db ? "in the database" : x->ctx.root);
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

void ws_each(ws_set *w, void (*fn)(server_ctx *ctx, const char *id, void *arg), void *arg)
{
    size_t n = ws_count(w);
    for (size_t i = 0; i < n; i++)
        fn(&w->ws[i]->ctx, w->ws[i]->id, arg);
}
