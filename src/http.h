/* http.h - the contract between the HTTP layer (http_server.c: libmicrohttpd,
 * routing, auth, streaming bodies, logs, metrics) and the modules that
 * answer requests (collector.c, sessions.c, tree.c, index.c). Handlers know
 * nothing of libmicrohttpd: they fill an http_response. */
#ifndef AGENTTRACED_HTTP_H
#define AGENTTRACED_HTTP_H

#include "agenttrace/buf.h"
#include "agenttrace/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct event_index event_index; /* index.c */

/* Shared by every request; created by `serve`, read-only after start except
 * where a member says otherwise. */
typedef struct {
    at_store *store;
    const char *root;             /* storage directory */
    event_index *index;           /* GET /events lookups (thread-safe); set once after
                               start: read it with server_index() */
    uint64_t max_upload;          /* bytes after decompression */
    struct append_cache *appends; /* collector.c: per-session append state (locked inside) */
    bool redact;                  /* secret redaction of everything written (redaction.md) */
} server_ctx;

/* The event index, NULL until `serve` has opened it: that happens after the
 * port is listening, since a first sync of a large store takes a while. */
static inline event_index *server_index(const server_ctx *ctx)
{
    return __atomic_load_n(&ctx->index, __ATOMIC_ACQUIRE);
}

/* What a handler produces. Exactly one of body / fd is the payload. */
typedef struct {
    int status;
    const char *content_type; /* static string; "application/json" by default */
    at_buf body;
    int fd; /* >= 0: send this file (the response takes ownership) */
    uint64_t fd_size;
    char etag[72]; /* optional, without quotes */
    /* for the request log: what redaction changed (never what it removed) */
    uint64_t redacted_events;
    bool redacted_meta;
} http_response;

void http_response_init(http_response *r);
void http_response_fini(http_response *r);
/* Sets a JSON body. */
void http_response_json(http_response *r, int status, const char *json, size_t n);
/* Sets {"error": "<formatted message>"} (escaped as Python's json.dumps). */
void http_response_error(http_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- sessions.c ---------------------------------------------------------- */
/* Rejects ids that must never reach the file system (400): '/', '\\', NUL,
 * a leading '.', longer than 255 bytes. */
bool sessions_id_acceptable(const char *id, size_t n);
/* Resolves an exact id or an unambiguous prefix (agent-strace semantics) to
 * a session that has a meta.json. On success returns 200 and *out (malloc'd
 * id); else the HTTP status (400 unacceptable id, 404 not found) with the
 * error already set in resp. */
int sessions_resolve(server_ctx *ctx, const char *id, char **out, http_response *resp);

/* ---- collector.c (agent-strace compatible endpoints) --------------------- */
void collector_health(server_ctx *ctx, http_response *resp);
void collector_list_sessions(server_ctx *ctx, http_response *resp);
void collector_get_session(server_ctx *ctx, const char *id, http_response *resp);
void collector_get_events(server_ctx *ctx, const char *id, http_response *resp);
/* body: the whole request body (capped by the caller at max_upload). */
void collector_post_events(server_ctx *ctx, const char *body, size_t n, http_response *resp);
void collector_post_sessions(server_ctx *ctx, const char *body, size_t n, http_response *resp);
struct append_cache *append_cache_new(void);
void append_cache_free(struct append_cache *c);

/* ---- tree.c --------------------------------------------------------------- */
/* GET /sessions/{id}/tree[?format=text] */
void tree_handle(server_ctx *ctx, const char *id, bool text, http_response *resp);

/* ---- index.c -------------------------------------------------------------- */
/* Opens (building or rebuilding when missing or stale) the event index of a
 * storage directory. NULL with a message in err on failure. */
event_index *event_index_open(const char *root, at_error *err);
void event_index_close(event_index *ix);
/* Rebuilds from the files (agent-traced reindex). */
at_result event_index_rebuild(event_index *ix, at_error *err);
/* GET /events/{event_id} (session NULL) and GET /sessions/{id}/events/{event_id}. */
void index_lookup(server_ctx *ctx, const char *event_id, const char *session, http_response *resp);

#endif
