/* http.h - the handler contract: what the HTTP layer (http_server.c:
 * libmicrohttpd, routing, auth, streaming bodies, logs, metrics) hands a
 * handler (server_ctx) and what a handler gives back (http_response).
 * Handlers know nothing of libmicrohttpd; each handler module declares its
 * own entry points in its own header (collector.h, sessions.h, tree.h,
 * index.h, api/history.h). */
#ifndef AGENTTRACED_HTTP_H
#define AGENTTRACED_HTTP_H

#include "agenttrace/buf.h"
#include "agenttrace/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct event_index event_index; /* index.h */

/* Shared by every request; created by `serve`, read-only after start except
 * where a member says otherwise. */
typedef struct {
    at_store *store;
    const char *root;           /* storage directory */
    event_index *index;         /* GET /events lookups (thread-safe); set once after
                               start: read it with server_index() */
    uint64_t max_upload;        /* bytes after decompression */
    bool redact;                /* secret redaction of everything written (redaction.md) */
    struct at_catalog *catalog; /* sessions kept in memory (NULL: scan the directory) */
    struct at_ledger *ledger;   /* the transparency log (NULL: none) */
    const char *log_vkey;       /* its verifier key */
} server_ctx;

/* The event index, NULL until `serve` has opened it: that happens after the
 * port is listening, since a first sync of a large store takes a while. */
static inline event_index *server_index(const server_ctx *ctx)
{
    return __atomic_load_n(&ctx->index, __ATOMIC_ACQUIRE);
}

/* A payload produced piece by piece (an object read through its deltas). */
typedef struct {
    ssize_t (*read)(void *ctx, uint64_t pos, char *buf, size_t n); /* 0 at the end, -1 on error */
    void (*free)(void *ctx);
    void *ctx;
    uint64_t size;
} http_stream;

#define HTTP_MAX_HEADERS 4

/* What a handler produces. Exactly one of body / fd / stream is the payload. */
typedef struct {
    int status;
    const char *content_type; /* static string; "application/json" by default */
    at_buf body;
    int fd; /* >= 0: send this file (the response takes ownership) */
    uint64_t fd_size;
    http_stream stream; /* read != NULL: send this (the response takes ownership) */
    char etag[72];      /* optional, without quotes */
    bool immutable;     /* the payload never changes: cache it forever */
    char *link;         /* a Link header value (malloc'd; freed by fini), or NULL */
    /* more headers: name a static string, value malloc'd (freed by fini);
     * set with http_response_header */
    struct {
        const char *name;
        char *value;
    } headers[HTTP_MAX_HEADERS];
    /* for the request log: what redaction changed (never what it removed) */
    uint64_t redacted_events;
    bool redacted_meta;
} http_response;

void http_response_init(http_response *r);
/* Adds a header (name: a static string; the value is formatted and copied).
 * Returns false when out of memory or past HTTP_MAX_HEADERS. */
bool http_response_header(http_response *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_response_fini(http_response *r);
/* Sets a JSON body. */
void http_response_json(http_response *r, int status, const char *json, size_t n);
/* Sets {"error": "<formatted message>"} (escaped as Python's json.dumps). */
void http_response_error(http_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with more members: extra is JSON to put after the message
 * ("\"key\": value", no braces). */
void http_response_error_extra(http_response *r, int status, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
