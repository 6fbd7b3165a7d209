/* workspace.h - the workspaces one `serve` holds (store.h, "Workspaces"):
 * a server_ctx each, with its own store, session catalog, event index and
 * transparency log. The default workspace (the storage directory) is
 * opened at start; another one the first time a request names it, then
 * kept until the end.
 *
 * Each workspace's log is a log of its own: the default one's origin is
 * the server's, workspace W's is "<origin>/<W>", signed by the same key
 * under that name (so W's checkpoints verify with W's verifier key, which
 * GET /log/key answers in W). Witnesses are offered every log; one that
 * does not know W's origin refuses it, and only that log goes without its
 * cosignature. */
#ifndef AGENTTRACED_WORKSPACE_H
#define AGENTTRACED_WORKSPACE_H

#include "http.h"

#include "agenttrace/ledger.h"
#include "agenttrace/note.h"

typedef struct {
    const char *storage;  /* the storage directory */
    const char *database; /* or, when set, the PostgreSQL database (serve --database): its
                           * sessions and event index stand in for the catalog and the
                           * event index; each workspace's log is in it too */
    const char *tmp_dir;  /* with database: where uploads are staged */
    uint64_t max_upload;
    bool redact;
    const at_note_signer *signer; /* the log's key (borrowed); NULL: no log */
    const char *origin;           /* the default workspace's log origin */
    const at_ledger_witness *witnesses;
    size_t n_witnesses;
} ws_config;

typedef struct ws_set ws_set;

/* Opens the default workspace (its event index, and a database log's
 * sequencer, wait for ws_open_index).
 * NULL with err set when it cannot be. The config is borrowed for the
 * set's life. */
ws_set *ws_set_new(const ws_config *c, at_error *err);
/* Closes every workspace (after the HTTP daemon stopped). */
void ws_set_free(ws_set *w);

/* The default workspace's context. */
server_ctx *ws_default(ws_set *w);
/* Lets the default workspace's log go, sweeps what killed writers left in
 * it and opens its event index (slow on a large store: after the port is
 * listening, and after serve's first line). false
 * with err set when the index cannot be opened: the event lookups then
 * answer 503. */
bool ws_open_index(ws_set *w, at_error *err);

/* The context of workspace id ("default" included), opening it when it
 * exists, or with create also when it does not. NULL with err set:
 * AT_ERR_NOT_FOUND for a workspace that does not exist, AT_ERR_INVALID for
 * a bad id, another code when it cannot be opened. */
server_ctx *ws_get(ws_set *w, const char *id, bool create, at_error *err);

/* Calls fn for each workspace opened so far (default first). */
void ws_each(ws_set *w, void (*fn)(server_ctx *ctx, const char *id, void *arg), void *arg);

#endif
