/* http_server.c - `agent-traced serve`: libmicrohttpd, routing, auth,
 * streaming request bodies, request logs, metrics; and `agent-traced keygen`.
 *
 * Threading: MHD's internal polling with a thread pool (one epoll loop per
 * thread, --threads, default the number of cores). A slow or idle client
 * then costs a socket, not a thread, and the thread count stays bounded
 * whatever the number of connections; handlers are short or stream their
 * input chunk by chunk, so one pool thread serves many connections. The
 * connection timeout (--timeout) closes clients that stop sending.
 *
 * Request bodies follow largepost.c: the first callback allocates a
 * `request`, later calls feed the body through the decoder (identity or
 * gzip) to the route's sink (the importer, the verifier, or a capped buffer
 * for the collector endpoints) and set *upload_data_size = 0; an error
 * records its status and drains the rest; the final call queues the
 * response; the completion callback logs, counts, and frees the state,
 * discarding a staged import that was not committed (client gone, error). */
#include "config.h"
#include "log_line.h"
#include "http_server.h"

#include "http.h"
#include "http_routes.h"
#include "http/auth.h"
#include "http/guard.h"
#include "collector.h"
#include "sessions.h"
#include "tree.h"
#include "api/history.h"
#include "api/log.h"
#include "api/ready.h"
#include "api/report.h"
#include "api/workspaces.h"
#include "api/event_page.h"
#include "api/ui.h"
#include "api/verify.h"
#include "api/usage.h"
#include "index.h"
#include "metrics.h"
#include "tree_cost.h"
#include "workspace.h"

#include "agenttrace/catalog.h"
#include "agenttrace/importer.h"
#include "agenttrace/ledger.h"
#include "agenttrace/merkle.h"
#include "agenttrace/json.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "agenttrace/timestamp.h"
#include "agenttrace/verify.h"
#include "agenttrace/witness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

static const char serve_usage[] =
    "usage: agent-traced serve [--host H] [--port P] [--storage DIR | --database URL]\n"
    "                          [--auth-key KEY]... [--keys FILE]\n"
    "                          [--max-upload BYTES] [--threads N] [--timeout SECONDS]\n"
    "                          [--request-timeout SECONDS] [--no-redact] [--gc-interval SECONDS]\n"
    "                          [--keep-versions N] [--max-age-days D] [--max-sessions N]\n"
    "                          [--max-size-mb M] [--log-key FILE] [--log-origin NAME] [--no-log]\n"
    "                          [--witness URL=VKEY]... [--max-connections N]\n"
    "                          [--max-client-connections N] [--shutdown-timeout SECONDS]\n"
    "                          [--cors-origin ORIGIN]... [--log-format text|json]\n"
    "\n"
    "Serves a storage directory over HTTP: the agent-strace collector endpoints\n"
    "and transcript upload, session trees, event lookup, chain verification,\n"
    "raw objects and Prometheus metrics (see openapi.yaml).\n"
    "\n"
    "  --host H           address to bind (default 127.0.0.1)\n"
    "  --port P           port (default 4317; 0 picks a free one)\n"
    "  --storage DIR      storage directory (default: $AGENT_STRACE_STORAGE, else\n"
    "                     ./.agent-traces)\n"
    "  --database URL     keep everything in PostgreSQL instead (postgres://...;\n"
    "                     default: $AGENT_TRACED_DATABASE when set): replicas started\n"
    "                     on the same database share it (docs/scaling.md). Create the\n"
    "                     schema first with `agent-traced db migrate`; give every\n"
    "                     replica the same --log-key\n"
    "  --auth-key KEY     require `Authorization: Bearer KEY` (repeatable; default:\n"
    "                     the comma-separated keys of $AGENT_STRACE_AUTH_KEY); such\n"
    "                     keys are admins, named key1, key2, ... in the log\n"
    "  --keys FILE        named keys, one a line: <name> <role> <workspace or *>\n"
    "                     <sha256 hex of the key> (`agent-traced keygen --name N\n"
    "                     --role R` prints both); reader: GETs, writer: also\n"
    "                     uploads and appends, admin: everything; reloaded on SIGHUP\n"
    "  --max-upload BYTES largest request body after decompression (default 1G;\n"
    "                     suffixes K, M, G)\n"
    "  --threads N        worker threads (default: the number of cores)\n"
    "  --timeout SECONDS  close connections idle this long, and those that send no\n"
    "                     complete request headers this long after connecting or\n"
    "                     after their last response (default 60)\n"
    "  --max-connections N\n"
    "                     connections open at once (default: 4096, or half the\n"
    "                     descriptors allowed); beyond it: 503 and closed\n"
    "  --max-client-connections N\n"
    "                     connections open at once from one address (default 256)\n"
    "  --cors-origin ORIGIN\n"
    "                     let pages from ORIGIN (e.g. https://traces.example, or *)\n"
    "                     call the API from a browser (repeatable; default: none)\n"
    "  --log-format text|json\n"
    "                     the log: lines (default) or one JSON object a line (time,\n"
    "                     request_id, client, key name, workspace, method, path,\n"
    "                     status, bytes, us)\n"
    "  --shutdown-timeout SECONDS\n"
    "                     on SIGINT/SIGTERM, how long requests in flight may take to\n"
    "                     finish (default 30)\n"
    "  --request-timeout SECONDS\n"
    "                     close a connection whose request body is still arriving\n"
    "                     this long after its headers (default 3600; 0: no limit)\n"
    "  --gc-interval SECONDS\n"
    "                     sweep crash leftovers and collect garbage this often, with\n"
    "                     the retention options below (default 3600; 0: only at start)\n"
    "  --keep-versions N, --max-age-days D, --max-sessions N, --max-size-mb M\n"
    "                     retention, as `agent-traced gc` applies it (default: keep all)\n"
    "  --log-key FILE     the transparency log's private key (Go's note form, mode\n"
    "                     0600; `agent-traced log keygen` makes one). Default: a key\n"
    "                     made on first start in the storage's .agent-traced/log/key\n"
    "  --log-origin NAME  the log's name, the key's name (default: the key's, or\n"
    "                     <hostname>/agent-traced for a new key)\n"
    "  --no-log           keep no transparency log (versions are still kept)\n"
    "  --witness URL=VKEY ask the witness at URL (POST URL/add-checkpoint,\n"
    "                     c2sp.org/tlog-witness) to cosign each new checkpoint,\n"
    "                     published with the cosignature that verifies with VKEY,\n"
    "                     its type 0x04 key or a file holding it (repeatable)\n"
    "  --no-redact        store secrets as received (default: redact them, as\n"
    "                     agent-strace does; also AGENT_TRACE_NO_REDACT=1 or\n"
    "                     AGENT_STRACE_NO_REDACT=1)\n"
    "  -h, --help         show this help\n"
    "\n"
    "The first line on standard error is `listening on HOST:PORT`; then one line\n"
    "per request: method, path, status, response bytes, microseconds, and\n"
    "`redacted N events` when secrets were removed (never the secrets).\n"
    "SIGINT/SIGTERM stop accepting, give the requests in flight --shutdown-timeout\n"
    "to finish, and exit 0.\n";

#define MAX_SOURCE_LEN 4096
#define MAX_LOG_PATH   512
#define INFLATE_CHUNK  (64u * 1024)
#define CONN_MEMORY    (256u * 1024) /* MHD per-connection pool: its read buffer is about half */

#define MAX_CORS 16
#define DB_KEYS_EVERY_S 5 /* with --database: how often the keys are read again */

typedef struct server {
    ws_set *ws; /* the workspaces, each a server_ctx */
    struct MHD_Daemon *daemon;
    const char *cors[MAX_CORS]; /* --cors-origin values ("*": any) */
    size_t ncors;
    http_auth *auth;          /* swapped whole on SIGHUP, under auth_lock */
    pthread_rwlock_t auth_lock;
    const char *cli_keys[64]; /* --auth-key values, added again on a reload */
    size_t ncli_keys;
    const char *env_keys; /* AGENT_STRACE_AUTH_KEY, when no --auth-key */
    const char *keys_file;
    http_guard *guard;
    char tmp_dir[PATH_MAX];
    const char *route_names[METRICS_MAX_ROUTES];
    uint64_t request_timeout_us; /* 0: none */
    at_gc_policy gc_policy;      /* the retention policy (--keep-versions...), for POST /gc */
} server;

typedef enum { ENC_IDENTITY, ENC_GZIP } body_encoding;

/* The state of one request, from its first callback to its completion. */
typedef struct {
    int route; /* index into http_routes, -1 when none matched */
    bool begun;          /* the first request callback ran */
    bool preflight;      /* a CORS preflight (OPTIONS), answered 204 */
    struct server *srv;
    server_ctx *ctx; /* the workspace the request is for (set once routed) */
    uint64_t id;         /* X-Request-Id and the log's request_id */
    char key_name[HTTP_AUTH_MAX_NAME + 1]; /* the key that authorized it ("": none) */
    char workspace[HTTP_AUTH_MAX_NAME + 1];
    http_role role; /* 0: no keys configured, anything goes */
    char client[48];     /* the peer's address */
    const char *bad_uri; /* why the request line as received is refused (NULL: fine) */
    char method[12];
    char path[MAX_LOG_PATH]; /* for the log line (sanitized, truncated) */
    uint64_t t0;             /* monotonic µs at the first callback */
    int status;              /* of the queued response, 0 until then */
    uint64_t bytes_out;
    bool queued;
    bool timed_out;               /* closed by --request-timeout */
    char *param[HTTP_MAX_PARAMS]; /* the {name} segments of the matched route */

    /* request body */
    uint64_t bytes_in;      /* as received */
    uint64_t bytes_decoded; /* after Content-Encoding */
    int err_status;         /* != 0: an error was recorded, the rest is drained */
    char err_msg[384];
    body_encoding enc;
    bool z_live, z_end;
    z_stream z;
    unsigned char *zbuf;

    at_buf body;             /* POST /sessions */
    collector_events *ev_in; /* POST /events */
    at_verifier *verifier;   /* POST /verify */
    at_import *im;           /* /import */
    at_redact *rd;           /* the import's redactor (NULL: redaction off) */
    char *resume;            /* an incremental import's saved importer state */
    int64_t recorded;        /* a 409's transcript_bytes (-1: null), when has_recorded */
    uint64_t resume_version; /* the version the resumed state belongs to */
    bool has_recorded;
    uint64_t redacted;  /* events whose secrets were redacted */
    bool redacted_meta; /* and the session metadata */
    index_batch *rows;  /* the event index rows the import wrote */
    at_stage stage;
    char *source;
    uint64_t events; /* stored by a successful import */
    bool is_import;
} request;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void req_fail(request *rq, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records the first error of a request body; the rest of the body is drained. */
static void req_fail(request *rq, int status, const char *fmt, ...)
{
    if (rq->err_status)
        return;
    rq->err_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->err_msg, sizeof rq->err_msg, fmt, ap);
    va_end(ap);
}

static bool parse_u64(const char *s, uint64_t *out, bool suffix);

/* The recorded error as the response: {"error"}, and for a 409 of an
 * incremental import the transcript length the server holds. */
static void request_error(const request *rq, http_response *hr)
{
    if (rq->err_status == 409 && rq->has_recorded) {
        char extra[48];
        if (rq->recorded >= 0)
            snprintf(extra, sizeof extra, "\"transcript_bytes\": %lld", (long long)rq->recorded);
        else
            snprintf(extra, sizeof extra, "\"transcript_bytes\": null");
        http_response_error_extra(hr, 409, extra, "%s", rq->err_msg);
    } else {
        http_response_error(hr, rq->err_status, "%s", rq->err_msg);
    }
}

/* ---- responses -------------------------------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_stream *st = cls;
    ssize_t k = st->read(st->ctx, pos, buf, max);
    return k > 0 ? k : MHD_CONTENT_READER_END_WITH_ERROR; /* short of size: the file went away */
}

static void stream_free(void *cls)
{
    http_stream *st = cls;
    if (st->free)
        st->free(st->ctx);
    free(st);
}

/* ---- CORS (--cors-origin) ---------------------------------------------- */

/* The Access-Control-Allow-Origin value for this request's Origin, or NULL. */
static const char *cors_origin(const server *srv, struct MHD_Connection *c)
{
    const char *o = srv->ncors ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") : NULL;
    for (size_t i = 0; o && i < srv->ncors; i++)
        if (strcmp(srv->cors[i], "*") == 0 || strcmp(srv->cors[i], o) == 0)
            return strcmp(srv->cors[i], "*") == 0 ? "*" : o;
    return NULL;
}

static void cors_headers(const server *srv, struct MHD_Connection *c, struct MHD_Response *resp)
{
    const char *o = srv ? cors_origin(srv, c) : NULL;
    if (!o)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", o);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Link, ETag, X-Request-Id");
}

/* OPTIONS with Access-Control-Request-Method, when origins are allowed: a
 * preflight, answered without a key (a browser sends none with it). */
static bool cors_preflight(const server *srv, request *rq, struct MHD_Connection *c, const char *method)
{
    rq->preflight = srv->ncors && strcmp(method, "OPTIONS") == 0 &&
                    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
    return rq->preflight;
}

static MHD_RESULT queue(request *rq, struct MHD_Connection *c, http_response *hr, http_handler_id h)
{
    struct MHD_Response *resp;
    uint64_t size;
    /* With --database, a request that failed because the database does not
     * answer is a 503 (try again, or another replica), not a 500. */
    if (hr->status >= 500 && hr->status != 503 && hr->status != 507 && rq->ctx &&
        at_store_is_database(rq->ctx->store)) {
        at_error derr = {0};
        if (at_store_probe_write(rq->ctx->store, &derr) != AT_OK)
            http_response_error(hr, 503, "the database is unavailable: %s", derr.message);
    }
    if (hr->stream.read) {
        size = hr->stream.size;
        http_stream *st = malloc(sizeof *st);
        resp = st ? MHD_create_response_from_callback(size, 64 * 1024, stream_read, st, stream_free) : NULL;
        if (resp) {
            *st = hr->stream;
            hr->stream.read = NULL; /* owned by the response now */
        } else {
            free(st);
        }
    } else if (hr->fd >= 0) {
        size = hr->fd_size;
        resp = MHD_create_response_from_fd((size_t)hr->fd_size, hr->fd);
        if (resp)
            hr->fd = -1; /* owned by the response now */
    } else {
        size_t n = 0;
        char *data = at_buf_steal(&hr->body, &n);
        size = n;
        if (data)
            resp = MHD_create_response_from_buffer(n, data, MHD_RESPMEM_MUST_FREE);
        else
            resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            free(data);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            hr->content_type ? hr->content_type : "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "agent-traced/" PACKAGE_VERSION);
    if (hr->etag[0]) {
        char etag[80];
        snprintf(etag, sizeof etag, "\"%s\"", hr->etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    }
    if (hr->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"agent-traced\"");
    if (hr->link)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, hr->link);
    for (size_t i = 0; i < HTTP_MAX_HEADERS && hr->headers[i].name; i++)
        MHD_add_response_header(resp, hr->headers[i].name, hr->headers[i].value);
    if (rq->preflight) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Content-Encoding");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%llx", (unsigned long long)rq->id);
    MHD_add_response_header(resp, "X-Request-Id", rid);
    cors_headers(rq->srv, c, resp);
    if ((h == H_GET_OBJECT || hr->immutable) && hr->status == 200)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=31536000, immutable");
    if (hr->status == 405 && rq->path[0]) {
        /* Allow: every method of the routes matching this path */
        char allow[64] = "";
        size_t n = strlen(rq->path);
        if (n > 1 && rq->path[n - 1] == '/')
            n--;
        http_slice ps[HTTP_MAX_PARAMS];
        for (size_t i = 0; i < http_nroutes; i++)
            if (http_route_match(http_routes[i].pattern, rq->path, n, ps) &&
                !strstr(allow, http_routes[i].method)) {
                size_t l = strlen(allow);
                snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", http_routes[i].method);
                if (strcmp(http_routes[i].method, "GET") == 0 && !strstr(allow, "HEAD"))
                    snprintf(allow + strlen(allow), sizeof allow - strlen(allow), ", HEAD");
            }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    MHD_RESULT ret = MHD_queue_response(c, (unsigned)hr->status, resp);
    MHD_destroy_response(resp);
    rq->status = hr->status;
    rq->bytes_out = size;
    rq->queued = true;
    return ret;
}

static MHD_RESULT queue_error(request *rq, struct MHD_Connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static MHD_RESULT queue_error(request *rq, struct MHD_Connection *c, int status, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    http_response hr;
    http_response_init(&hr);
    http_response_error(&hr, status, "%s", m);
    MHD_RESULT r = queue(rq, c, &hr, H_HEALTH);
    http_response_fini(&hr);
    return r;
}

/* ---- GET handlers ------------------------------------------------------ */

/* ?mode=: strict (default) or legacy; -1 for anything else. */
static int verify_mode(struct MHD_Connection *c)
{
    const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    if (!m || !*m || strcmp(m, "strict") == 0)
        return AT_VERIFY_STRICT;
    if (strcmp(m, "legacy") == 0)
        return AT_VERIFY_LEGACY;
    return -1;
}

/* ?version=: 0 when absent; -1 when malformed. */
static int64_t version_param(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "version");
    if (!v)
        return 0;
    uint64_t x = 0;
    if (!*v)
        return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10 / 2)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    return x == 0 ? -1 : (int64_t)x;
}

/* Gauges and counters owned by other modules, after metrics.c's own. */
static at_result render_module_metrics(server *srv, at_buf *out)
{
    server_ctx *dctx = ws_default(srv->ws);
    event_index *ix = server_index(dctx);
    /* with --database the index is the database's: there while it is */
    bool available = ix != NULL || at_store_is_database(dctx->store);
    tree_cost_stats ts;
    tree_cost_cache_stats(&ts);
    return at_buf_printf(
        out,
        "# HELP agent_traced_index_available Whether the event index is open (0 while it is first built).\n"
        "# TYPE agent_traced_index_available gauge\n"
        "agent_traced_index_available %d\n"
        "# HELP agent_traced_index_pending_imports Uploads whose event index rows are not written yet.\n"
        "# TYPE agent_traced_index_pending_imports gauge\n"
        "agent_traced_index_pending_imports %zu\n"
        "# HELP agent_traced_tree_cost_total Tree cost lookups by how the token sums were found.\n"
        "# TYPE agent_traced_tree_cost_total counter\n"
        "agent_traced_tree_cost_total{how=\"cached\"} %llu\n"
        "agent_traced_tree_cost_total{how=\"appended\"} %llu\n"
        "agent_traced_tree_cost_total{how=\"counted\"} %llu\n",
        available, event_index_pending(ix), (unsigned long long)ts.hits, (unsigned long long)ts.resumes,
        (unsigned long long)ts.counts);
}

static void handle_metrics(server *srv, http_response *hr)
{
    at_buf_reset(&hr->body);
    if (metrics_render(&hr->body, srv->route_names, http_nroutes) != AT_OK ||
        render_module_metrics(srv, &hr->body) != AT_OK) {
        http_response_error(hr, 500, "out of memory");
        return;
    }
    hr->status = 200;
    hr->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Answers a route without a body. */
/* since/until: seconds since the epoch, or an ISO 8601 date or time (as
 * Python's datetime.fromisoformat reads it; a date alone is midnight UTC). */
static bool time_param(struct MHD_Connection *c, const char *name, bool *has, double *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *has = v != NULL;
    if (!v)
        return true;
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    if (*v && !*end && errno == 0 && *out == *out)
        return true;
    char iso[64];
    size_t n = strlen(v);
    if (n == 10 && n < sizeof iso) { /* YYYY-MM-DD */
        snprintf(iso, sizeof iso, "%sT00:00:00+00:00", v);
        v = iso;
        n = strlen(iso);
    }
    return at_timestamp_parse(v, n, out);
}

/* The paging and filter parameters of GET /sessions; NULL, or why not. */
static const char *list_query(struct MHD_Connection *c, at_catalog_query *q)
{
    memset(q, 0, sizeof *q);
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    uint64_t l = 0;
    if (limit && (!parse_u64(limit, &l, false) || l == 0 || l > 10000))
        return "limit must be a number from 1 to 10000";
    q->limit = (size_t)l;
    q->cursor = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
    q->agent = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "agent");
    q->q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
    if (!time_param(c, "since", &q->has_since, &q->since))
        return "since must be seconds since the epoch or an ISO 8601 date or time";
    if (!time_param(c, "until", &q->has_until, &q->until))
        return "until must be seconds since the epoch or an ISO 8601 date or time";
    return NULL;
}

/* May the request's key see every workspace? An admin key may, and a key
 * of workspace "*"; without keys, anyone. */
static bool sees_every_workspace(const request *rq)
{
    return !rq->role || rq->role == HTTP_ROLE_ADMIN || strcmp(rq->workspace, "*") == 0;
}

static MHD_RESULT dispatch_get(server *srv, request *rq, struct MHD_Connection *c, http_handler_id h)
{
    http_response hr;
    http_response_init(&hr);
    const char *a = rq->param[0], *b = rq->param[1];
    server_ctx *ctx = rq->ctx;
    switch (h) {
    case H_HEALTH: collector_health(ctx, &hr); break;
    case H_READY: api_ready(ctx, &hr); break;
    case H_LIST_SESSIONS: {
        at_catalog_query q;
        const char *bad = list_query(c, &q);
        if (bad)
            http_response_error(&hr, 400, "%s", bad);
        else if (q.limit || q.cursor || q.agent || q.q || q.has_since || q.has_until)
            collector_list_sessions_page(ctx, &q, &hr);
        else
            collector_list_sessions(ctx, &hr); /* agent-strace's, byte for byte */
        break;
    }
    case H_GET_SESSION: collector_get_session(ctx, a, &hr); break;
    case H_GET_SESSION_EVENTS: {
        int64_t v = version_param(c);
        if (v < 0)
            http_response_error(&hr, 400, "version must be a positive integer");
        else
            collector_get_events(ctx, a, (uint64_t)v, &hr);
        break;
    }
    case H_GET_SESSION_EVENT: index_lookup(ctx, b, a, &hr); break;
    case H_GET_VERSIONS: history_versions(ctx, a, &hr); break;
    case H_GET_USAGE: {
        const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tree");
        if (t && *t && strcmp(t, "1") != 0 && strcmp(t, "0") != 0 && strcmp(t, "true") != 0 &&
            strcmp(t, "false") != 0)
            http_response_error(&hr, 400, "tree must be 1 or 0");
        else
            usage_handle(ctx, a, t && (strcmp(t, "1") == 0 || strcmp(t, "true") == 0), &hr);
        break;
    }
    case H_GET_PROOF: {
        int64_t v = version_param(c);
        if (v < 0)
            http_response_error(&hr, 400, "version must be a positive integer");
        else
            log_proof(ctx, a, (uint64_t)v, &hr);
        break;
    }
    case H_LOG_CHECKPOINT: log_checkpoint(ctx, &hr); break;
    case H_LOG_KEY: log_key(ctx, &hr); break;
    case H_LOG_TILE: log_tile(ctx, a, &hr); break;
    case H_LOG_CONSISTENCY: {
        uint64_t from = 0, to = 0;
        const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
        const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
        if (!f || !parse_u64(f, &from, false) || (t && !parse_u64(t, &to, false)))
            http_response_error(&hr, 400, "from=<size> is required (and to=<size> optional)");
        else
            log_consistency(ctx, from, to, &hr);
        break;
    }
    case H_GET_EVENT: index_lookup(ctx, a, NULL, &hr); break;
    case H_GET_TREE: {
        const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
        if (f && *f && strcmp(f, "text") != 0 && strcmp(f, "json") != 0)
            http_response_error(&hr, 400, "unknown format: use json or text");
        else
            tree_handle(ctx, a, f && strcmp(f, "text") == 0, &hr);
        break;
    }
    case H_GET_VERIFY: {
        int mode = verify_mode(c);
        int64_t v = version_param(c);
        if (mode < 0)
            http_response_error(&hr, 400, "unknown mode: use strict or legacy");
        else if (v < 0)
            http_response_error(&hr, 400, "version must be a positive integer");
        else
            api_verify_session(ctx, a, (at_verify_mode)mode, (uint64_t)v, &hr);
        break;
    }
    case H_GET_EVENT_PAGE: {
        int64_t v = version_param(c);
        const char *o = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
        const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
        uint64_t off = 0, lim = EVENT_PAGE_DEFAULT_LIMIT;
        if (v < 0)
            http_response_error(&hr, 400, "version must be a positive integer");
        else if ((o && !parse_u64(o, &off, false)) ||
                 (l && (!parse_u64(l, &lim, false) || lim == 0 || lim > EVENT_PAGE_MAX_LIMIT)))
            http_response_error(&hr, 400, "offset must be a byte offset, limit a number from 1 to %d",
                                EVENT_PAGE_MAX_LIMIT);
        else
            event_page(ctx, a, (uint64_t)v, off, lim, &hr);
        break;
    }
    case H_UI_ROOT:
        ui_root(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), &hr);
        break;
    case H_UI_FILE: /* /ui, /ui/sessions/{id}: the page; /ui/{file}: a file */
        ui_file(strcmp(http_routes[rq->route].pattern, "/ui/{file}") == 0 ? a : NULL,
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH), &hr);
        break;
    case H_GET_OBJECT:
        api_object(ctx, a, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH), &hr);
        break;
    case H_METRICS: handle_metrics(srv, &hr); break;
    case H_WORKSPACES:
        api_workspaces(ws_default(srv->ws)->store, sees_every_workspace(rq) ? NULL : rq->workspace, &hr);
        break;
    case H_GC: api_gc(ctx, &srv->gc_policy, &hr); break;
    default: http_response_error(&hr, 500, "unroutable"); break;
    }
    MHD_RESULT r = queue(rq, c, &hr, h);
    http_response_fini(&hr);
    return r;
}

/* ---- request bodies ---------------------------------------------------- */

static void import_failed(request *rq, at_result r, const at_error *err, const char *what)
{
    const char *m = err->message[0] ? err->message : at_result_str(r);
    switch (r) {
    case AT_ERR_UTF8: req_fail(rq, 422, "invalid UTF-8 at byte offset %lld", (long long)err->offset); break;
    case AT_ERR_TOO_BIG: req_fail(rq, 413, "%s", m); break;
    case AT_ERR_EMPTY: req_fail(rq, 400, "empty body"); break;
    case AT_ERR_CONFLICT: req_fail(rq, 409, "%s", m); break;
    case AT_ERR_NO_SPACE: req_fail(rq, 507, "%s: %s", what, m); break; /* nothing of it is kept */
    case AT_ERR_JSON:
    case AT_ERR_INVALID: req_fail(rq, 400, "%s", m); break;
    default: req_fail(rq, 500, "%s: %s", what, m); break;
    }
}

/* Feeds decoded body bytes to the route's sink. */
static void sink(server *srv, request *rq, const char *p, size_t n)
{
    if (rq->err_status || n == 0)
        return;
    rq->bytes_decoded += n;
    http_handler_id h = http_routes[rq->route].handler;
    at_error err;
    err.message[0] = 0;
    at_result r;
    switch (h) {
    case H_IMPORT:
        if (rq->bytes_decoded > rq->ctx->max_upload) {
            req_fail(rq, 413, "upload larger than %llu bytes", (unsigned long long)rq->ctx->max_upload);
            return;
        }
        if ((r = at_import_feed(rq->im, p, n, &err)) != AT_OK)
            import_failed(rq, r, &err, "import failed");
        else if ((r = at_store_stage_flush(rq->ctx->store, &rq->stage, &err)) != AT_OK)
            import_failed(rq, r, &err, "cannot store the upload");
        break;
    case H_POST_VERIFY:
        if ((r = at_verifier_feed(rq->verifier, p, n, &err)) != AT_OK)
            req_fail(rq, r == AT_ERR_TOO_BIG ? 413 : 500, "%s",
                     err.message[0] ? err.message : at_result_str(r));
        break;
    case H_POST_EVENTS:
        if (rq->bytes_decoded > rq->ctx->max_upload) {
            req_fail(rq, 413, "request body larger than %llu bytes", (unsigned long long)rq->ctx->max_upload);
            return;
        }
        collector_events_feed(rq->ev_in, p, n);
        break;
    default:
        if ((r = at_buf_add(&rq->body, p, n)) != AT_OK) {
            if (r == AT_ERR_TOO_BIG)
                req_fail(rq, 413, "session metadata larger than %u bytes", COLLECTOR_MAX_META);
            else
                req_fail(rq, 500, "out of memory");
        }
        break;
    }
}

static void consume(server *srv, request *rq, const char *p, size_t n)
{
    rq->bytes_in += n;
    if (rq->err_status)
        return;
    if (rq->enc == ENC_IDENTITY) {
        sink(srv, rq, p, n);
        return;
    }
    z_stream *z = &rq->z;
    z->next_in = (Bytef *)(uintptr_t)p;
    z->avail_in = (uInt)n;
    while (z->avail_in > 0 && !rq->err_status) {
        if (rq->z_end) {
            /* a second gzip member follows (concatenated gzip is valid gzip) */
            if (inflateReset(z) != Z_OK) {
                req_fail(rq, 400, "invalid gzip data");
                return;
            }
            rq->z_end = false;
        }
        z->next_out = rq->zbuf;
        z->avail_out = INFLATE_CHUNK;
        int zr = inflate(z, Z_NO_FLUSH);
        size_t got = INFLATE_CHUNK - z->avail_out;
        if (got)
            sink(srv, rq, (const char *)rq->zbuf, got);
        if (zr == Z_STREAM_END) {
            rq->z_end = true;
        } else if (zr == Z_BUF_ERROR) {
            if (z->avail_in == 0)
                break;
        } else if (zr != Z_OK) {
            req_fail(rq, 400, "invalid gzip data: %s", z->msg ? z->msg : "corrupt stream");
            return;
        }
    }
}

/* Content-Encoding: identity (or none) and gzip; -1 for anything else. */
static int parse_encoding(struct MHD_Connection *c)
{
    const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (!e)
        return ENC_IDENTITY;
    while (*e == ' ' || *e == '\t')
        e++;
    size_t n = strlen(e);
    while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
        n--;
    if (n == 0 || (n == 8 && strncasecmp(e, "identity", 8) == 0))
        return ENC_IDENTITY;
    if ((n == 4 && strncasecmp(e, "gzip", 4) == 0) || (n == 6 && strncasecmp(e, "x-gzip", 6) == 0))
        return ENC_GZIP;
    return -1;
}

/* Sets up the body sink of a route; returns 0 or an HTTP status (the
 * message in rq->err_msg). */
static int body_begin(server *srv, request *rq, struct MHD_Connection *c, http_handler_id h)
{
    int enc = parse_encoding(c);
    if (enc < 0) {
        req_fail(rq, 415, "unsupported Content-Encoding: use gzip or identity");
        return 415;
    }
    rq->enc = (body_encoding)enc;
    if (h != H_POST_VERIFY && enc == ENC_IDENTITY) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            errno = 0;
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            uint64_t limit = h == H_POST_SESSIONS ? COLLECTOR_MAX_META : rq->ctx->max_upload;
            if (end != cl && errno == 0 && v > limit) {
                req_fail(rq, 413, "%s larger than %llu bytes",
                         h == H_POST_SESSIONS ? "session metadata" : "request body", (unsigned long long)limit);
                return 413;
            }
        }
    }
    if (enc == ENC_GZIP) {
        memset(&rq->z, 0, sizeof rq->z);
        if (!(rq->zbuf = malloc(INFLATE_CHUNK)) || inflateInit2(&rq->z, 15 + 16) != Z_OK) {
            req_fail(rq, 500, "out of memory");
            return 500;
        }
        rq->z_live = true;
    }
    at_error err;
    memset(&err, 0, sizeof err);
    switch (h) {
    case H_IMPORT: {
        rq->is_import = true;
        const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "source");
        const char *sess = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "session");
        const char *offs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
        size_t resume_len = 0;
        if (sess || offs) {
            /* An incremental import: only the bytes from offset on. */
            uint64_t offset;
            if (!sess || !*sess || !offs || !parse_u64(offs, &offset, false)) {
                req_fail(rq, 400, "an incremental import needs session=<id> and offset=<bytes>");
                return 400;
            }
            if (!at_session_id_ok(sess, strlen(sess))) {
                req_fail(rq, 400, "invalid session id");
                return 400;
            }
            at_result rr = at_store_resume_state(rq->ctx->store, sess, offset, &rq->resume, &resume_len,
                                                 &rq->recorded, &rq->resume_version, &err);
            if (rr == AT_ERR_NOT_FOUND) {
                req_fail(rq, 404, "session not found: %s", sess);
                return 404;
            }
            if (rr == AT_ERR_CONFLICT) {
                rq->has_recorded = true;
                req_fail(rq, 409, "%s", err.message);
                return 409;
            }
            if (rr != AT_OK) {
                req_fail(rq, 500, "cannot read the import state: %s", err.message);
                return 500;
            }
        }
        if (!s || !*s)
            s = rq->resume ? NULL : "upload.jsonl";
        if (s && strlen(s) > MAX_SOURCE_LEN) {
            req_fail(rq, 400, "source longer than %d bytes", MAX_SOURCE_LEN);
            return 400;
        }
        if (s && !(rq->source = strdup(s))) {
            req_fail(rq, 500, "out of memory");
            return 500;
        }
        if (at_store_stage(rq->ctx->store, &rq->stage, &err) != AT_OK) {
            int st = err.code == AT_ERR_NO_SPACE ? 507 : 500;
            req_fail(rq, st, "cannot stage the upload: %s", err.message);
            return st;
        }
        at_import_options o = {.source = rq->source,
                               .out_fd = rq->stage.fd,
                               .tmp_dir = srv->tmp_dir,
                               .resume = rq->resume,
                               .resume_len = resume_len,
                               .keep_state = true};
        if (rq->ctx->redact && !(o.redact = rq->rd = at_redact_new(&err))) {
            req_fail(rq, 500, "cannot start the import: %s", err.message);
            return 500;
        }
        if (server_index(rq->ctx) && (rq->rows = index_batch_new(srv->tmp_dir))) {
            o.on_line = index_batch_add;
            o.on_line_ctx = rq->rows;
        }
        if (!(rq->im = at_import_new(&o, &err))) {
            if (rq->resume && err.code == AT_ERR_INVALID) {
                rq->has_recorded = true; /* the offset matched the recorded length */
                req_fail(rq, 409, "%s: upload the whole transcript", err.message);
                return 409;
            }
            req_fail(rq, 500, "cannot start the import: %s", err.message);
            return 500;
        }
        break;
    }
    case H_POST_VERIFY: {
        int mode = verify_mode(c);
        if (mode < 0) {
            req_fail(rq, 400, "unknown mode: use strict or legacy");
            return 400;
        }
        if (!(rq->verifier = at_verifier_new((at_verify_mode)mode))) {
            req_fail(rq, 500, "out of memory");
            return 500;
        }
        break;
    }
    case H_POST_EVENTS:
        if (!(rq->ev_in = collector_events_new(rq->ctx, &err))) {
            req_fail(rq, 500, "cannot start: %s", err.message[0] ? err.message : "out of memory");
            return 500;
        }
        break;
    default: at_buf_init(&rq->body, COLLECTOR_MAX_META); break;
    }
    return 0;
}

static void finish_import(server *srv, request *rq, http_response *hr)
{
    at_import_result res;
    memset(&res, 0, sizeof res);
    at_commit_info info;
    memset(&info, 0, sizeof info);
    at_error err;
    memset(&err, 0, sizeof err);
    at_result r = at_import_finish(rq->im, &res, &err);
    if (r != AT_OK) {
        import_failed(rq, r, &err, "import failed");
        goto out;
    }
    if (res.object_lines == 0) {
        /* Nothing but blank, non-JSON or non-object lines: not a transcript.
         * (The command line keeps the reference's empty session for a file.) */
        req_fail(rq, 422,
                 "no transcript line in the body: %llu non-blank lines, none of them a JSON object "
                 "(expected Claude Code JSONL)",
                 (unsigned long long)res.skipped_lines);
        goto out;
    }
    rq->redacted = res.redacted_events;
    rq->redacted_meta = res.meta_redacted;
    info.resumed_from = rq->resume_version;
    r = at_store_commit_import(rq->ctx->store, &rq->stage, &res, &info, &err);
    /* the stage is consumed in every case */
    rq->stage.fd = -1;
    rq->stage.path = NULL;
    rq->stage.db = NULL;
    if (r != AT_OK) {
        import_failed(rq, r, &err, "cannot store the session");
        goto out;
    }
    event_index *ix = server_index(rq->ctx);
    if (ix && info.result != AT_UPLOAD_UNCHANGED) {
        if (rq->rows && info.events_inode && info.kept_lines) {
            event_index_extend_from_batch(ix, res.session_id, rq->rows, info.events_inode, info.events_size,
                                          info.kept_lines, info.previous_size);
            rq->rows = NULL; /* taken */
        } else if (rq->rows && info.events_inode) {
            event_index_refresh_from_batch(ix, res.session_id, rq->rows, info.events_inode, info.events_size);
            rq->rows = NULL; /* taken */
        } else {
            event_index_refresh_session(ix, res.session_id);
        }
    }
    /* the version's entry in the transparency log (integrated within a
     * second; an unchanged upload names the entry of the current version) */
    if (rq->ctx->ledger && info.version) {
        uint64_t idx, v;
        at_error lerr = {0};
        if (info.result == AT_UPLOAD_UNCHANGED
                ? at_store_logged_index(rq->ctx->store, res.session_id, info.version, &v, &idx, NULL) == AT_OK
                : at_ledger_wait(rq->ctx->ledger, res.session_id, info.version, &idx, 5000, &lerr) == AT_OK)
            info.log_index = (int64_t)idx;
    }
    at_buf_reset(&hr->body);
    if (report_import(&hr->body, &res, &info) != AT_OK) {
        req_fail(rq, 500, "out of memory");
        goto out;
    }
    hr->status = info.result == AT_UPLOAD_UNCHANGED ? 200 : 201;
    rq->events = res.events;
out:
    at_import_result_fini(&res);
}

static void finish_verify(request *rq, http_response *hr)
{
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    at_error err;
    memset(&err, 0, sizeof err);
    at_result r = at_verifier_finish(rq->verifier, &rep, &err);
    if (r != AT_OK)
        req_fail(rq, r == AT_ERR_TOO_BIG ? 413 : 500, "%s", err.message[0] ? err.message : at_result_str(r));
    else if (report_verify(&hr->body, &rep, &(report_verify_opts){NULL, NULL, 0, 0, true, -2, NULL}) != AT_OK)
        req_fail(rq, 500, "out of memory");
    else
        hr->status = 200;
    at_verify_report_fini(&rep);
}

/* The final callback of a body route. */
static MHD_RESULT body_finish(server *srv, request *rq, struct MHD_Connection *c)
{
    http_handler_id h = http_routes[rq->route].handler;
    http_response hr;
    http_response_init(&hr);
    if (!rq->err_status && rq->enc == ENC_GZIP && rq->bytes_in > 0 && !rq->z_end)
        req_fail(rq, 400, "truncated gzip stream");
    if (!rq->err_status) {
        switch (h) {
        case H_IMPORT:
            if (rq->bytes_decoded == 0 && !rq->resume) /* an empty tail: nothing new */
                req_fail(rq, 400, "empty body: send a Claude Code transcript (JSONL)");
            else
                finish_import(srv, rq, &hr);
            break;
        case H_POST_VERIFY: finish_verify(rq, &hr); break;
        case H_POST_EVENTS:
            collector_events_finish(rq->ev_in, &hr);
            break;
        case H_POST_SESSIONS:
            collector_post_sessions(rq->ctx, rq->body.data ? rq->body.data : "", rq->body.len, &hr);
            break;
        default: req_fail(rq, 500, "unroutable"); break;
        }
        if (h != H_IMPORT) {
            rq->redacted = hr.redacted_events;
            rq->redacted_meta = hr.redacted_meta;
        }
    }
    if (rq->err_status)
        request_error(rq, &hr);
    MHD_RESULT r = queue(rq, c, &hr, h);
    http_response_fini(&hr);
    return r;
}

/* ---- MHD callbacks ----------------------------------------------------- */

/* Does the request announce a body? */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
           (cl && strcmp(cl, "0") != 0);
}

/* An error found before the body: answered at once when a body follows
 * (MHD then skips it and closes the connection, and a client waiting for
 * 100-continue sends nothing), else at the final call, which keeps the
 * connection alive. */
static MHD_RESULT early_error(request *rq, struct MHD_Connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static MHD_RESULT early_error(request *rq, struct MHD_Connection *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rq->err_status = status;
    vsnprintf(rq->err_msg, sizeof rq->err_msg, fmt, ap);
    va_end(ap);
    if (has_body(c))
        return queue_error(rq, c, status, "%s", rq->err_msg);
    return MHD_YES;
}

/* The request's key: who it is, its role and workspace (copied: the keys
 * may be reloaded while the request runs). */
static bool authorize(server *srv, request *rq, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    pthread_rwlock_rdlock(&srv->auth_lock);
    const http_key *k = NULL;
    bool ok = http_auth_check(srv->auth, h, &k) == HTTP_AUTH_OK;
    if (ok && k) {
        snprintf(rq->key_name, sizeof rq->key_name, "%s", k->name);
        snprintf(rq->workspace, sizeof rq->workspace, "%s", k->workspace);
        rq->role = k->role;
    }
    pthread_rwlock_unlock(&srv->auth_lock);
    return ok;
}

/* What the request's key may not do here (a 403's message), or NULL.
 * reader: every GET (and POST /verify, which stores nothing); writer:
 * uploads and appends too; admin: everything (gc too), every workspace. */
static const char *forbidden(request *rq, const struct http_route *rt)
{
    static __thread char m[256];
    if (!rq->role)
        return NULL; /* no keys configured */
    if (rt->access == HTTP_ACCESS_ADMIN && rq->role < HTTP_ROLE_ADMIN) {
        snprintf(m, sizeof m, "forbidden: key %s is a %s; %s %s needs an admin key", rq->key_name,
                 http_role_name(rq->role), rt->method, rt->pattern);
        return m;
    }
    bool writes = rt->body && rt->handler != H_POST_VERIFY;
    if (writes && rq->role < HTTP_ROLE_WRITER) {
        snprintf(m, sizeof m, "forbidden: key %s is a reader; uploads and appends need a writer key", rq->key_name);
        return m;
    }
    return NULL;
}

/* The workspace the request is for: the X-Agent-Traced-Workspace header,
 * else the key's own, else the default. A key of one workspace may name
 * only that one. A workspace that does not exist yet is made by a write,
 * or by any request of a key of that workspace (its keys say it exists);
 * otherwise it is a 404. 0, or the status of a refusal with msg set. */
static int route_workspace(server *srv, request *rq, struct MHD_Connection *c, const struct http_route *rt,
                           char *msg, size_t cap)
{
    const char *named = MHD_lookup_connection_value(c, MHD_HEADER_KIND, HTTP_WORKSPACE_HEADER);
    bool every = sees_every_workspace(rq);
    const char *own = rq->role && strcmp(rq->workspace, "*") != 0 ? rq->workspace : NULL;
    if (named && !every && strcmp(named, own) != 0) {
        snprintf(msg, cap, "forbidden: key %s is for workspace %s, not %.64s", rq->key_name, own, named);
        return 403;
    }
    const char *ws = named ? named : own ? own : AT_DEFAULT_WORKSPACE;
    bool create = (rt->body && rt->handler != H_POST_VERIFY) || (own && strcmp(ws, own) == 0);
    at_error err = {0};
    if ((rq->ctx = ws_get(srv->ws, ws, create, &err)))
        return 0;
    snprintf(msg, cap, "%s", err.message);
    return err.code == AT_ERR_INVALID ? 400 : err.code == AT_ERR_NOT_FOUND ? 404 : 503;
}

static MHD_RESULT begin(server *srv, request *rq, struct MHD_Connection *c, const char *url,
                        const char *method)
{
    const char *bad = rq->bad_uri ? rq->bad_uri : http_guard_headers(c);
    if (bad)
        return early_error(rq, c, 400, "bad request: %s", bad);
    /* the body is agent-strace's; WWW-Authenticate says more (queue) */
    if (cors_preflight(srv, rq, c, method))
        return MHD_YES; /* answered at the final call, without a key (browsers send none) */
    /* the web UI's files hold no data: no key (every API call of the page has one) */
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    if (!ui_request_is_open(method, url, accept) && !authorize(srv, rq, c))
        return early_error(rq, c, 401, "Unauthorized");
    size_t n = strlen(url);
    if (n > 1 && url[n - 1] == '/')
        n--;
    bool head = strcmp(method, "HEAD") == 0;
    bool path_known = false;
    http_slice ps[HTTP_MAX_PARAMS];
    for (size_t i = 0; i < http_nroutes; i++) {
        if (!http_route_match(http_routes[i].pattern, url, n, ps))
            continue;
        path_known = true;
        if (strcmp(http_routes[i].method, method) != 0 &&
            !(head && strcmp(http_routes[i].method, "GET") == 0))
            continue;
        rq->route = (int)i;
        const char *denied = forbidden(rq, &http_routes[i]);
        if (denied)
            return early_error(rq, c, 403, "%s", denied);
        char why[256];
        int st = route_workspace(srv, rq, c, &http_routes[i], why, sizeof why);
        if (st)
            return early_error(rq, c, st, "%s", why);
        if (!http_routes[i].body) {
            /* answered at the final call (an answer queued now would close
             * the connection) */
            size_t np = 0;
            for (const char *q = http_routes[i].pattern; (q = strchr(q, '{')); q++)
                np++;
            for (size_t k = 0; k < np && k < HTTP_MAX_PARAMS; k++)
                if (!(rq->param[k] = strndup(ps[k].p, ps[k].n)))
                    return early_error(rq, c, 500, "out of memory");
            return MHD_YES;
        }
        if (body_begin(srv, rq, c, http_routes[i].handler) != 0) {
            http_response hr;
            http_response_init(&hr);
            request_error(rq, &hr);
            MHD_RESULT res = queue(rq, c, &hr, H_HEALTH);
            http_response_fini(&hr);
            return res;
        }
        return MHD_YES;
    }
    if (path_known)
        return early_error(rq, c, 405, "method not allowed: %s", method);
    return early_error(rq, c, 404, "not found");
}

/* libmicrohttpd 0.9.75 watches its sockets edge-triggered (epoll) and
 * takes a short read for "nothing more to read": a client whose last body
 * bytes and end arrived together (it sent and went while this server was
 * busy) would be noticed only at --timeout, its staging file, its memory
 * and a database upload's open transaction held till then. So after each
 * body piece: when the peer has ended already (a peek finds the end and no
 * data), the connection gets a 1 s timeout. A body that was complete in
 * what was read is still answered (in this same round); one that was not
 * is dropped a second later (tests/hostile.py test_client_gone). */
static void watch_peer_end(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    char b;
    if (ci && recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
    server *srv = cls;
    request *rq = *con_cls;
    if (!rq) /* out of memory when the request line came */
        return MHD_NO;
    if (!rq->begun) {
        rq->begun = true;
        if (!http_guard_request_begins(srv->guard, c))
            return MHD_NO; /* refused (503) when it connected */
        log_sanitize(rq->method, sizeof rq->method, method);
        log_sanitize(rq->path, sizeof rq->path, url);
        return begin(srv, rq, c, url, method);
    }
    if (rq->queued) { /* an early answer (401, 413...): ignore the body */
        *upload_data_size = 0;
        watch_peer_end(c);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* The idle timeout cannot catch a client that trickles its body;
         * this bounds the whole request. Closing discards the upload. */
        if (srv->request_timeout_us && now_usec() - rq->t0 > srv->request_timeout_us) {
            rq->timed_out = true;
            return MHD_NO;
        }
        consume(srv, rq, upload_data, *upload_data_size);
        *upload_data_size = 0;
        watch_peer_end(c);
        return MHD_YES;
    }
    if (rq->preflight) {
        http_response hr;
        http_response_init(&hr);
        hr.status = 204;
        MHD_RESULT res = queue(rq, c, &hr, H_HEALTH);
        http_response_fini(&hr);
        return res;
    }
    if (rq->route < 0 || (rq->err_status && !http_routes[rq->route].body))
        return queue_error(rq, c, rq->err_status ? rq->err_status : 404, "%s",
                           rq->err_status ? rq->err_msg : "not found");
    if (!http_routes[rq->route].body)
        return dispatch_get(srv, rq, c, http_routes[rq->route].handler);
    return body_finish(srv, rq, c);
}

/* The request line arrived: the request's state starts here, with the
 * URI as the client sent it (MHD decodes %XX before routing, and a %00
 * would cut the path short). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->t0 = now_usec();
    rq->route = -1;
    rq->stage.fd = -1;
    rq->bad_uri = http_guard_uri(uri);
    rq->srv = cls;
    static uint64_t next_id;
    rq->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ai ? ai->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, rq->client, sizeof rq->client);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, rq->client, sizeof rq->client);
    metrics_inflight(1);
    return rq;
}

/* --log-format json: one object a request (never a key, only its name). */
static void log_request_json(const request *rq, uint64_t us, bool ok)
{
    char t[40], key[HTTP_AUTH_MAX_NAME + 8] = "null", ws[HTTP_AUTH_MAX_NAME + 8] = "null";
    size_t tn = log_time(t, sizeof t);
    if (rq->key_name[0]) /* names are [A-Za-z0-9._-]: no escaping needed */
        snprintf(key, sizeof key, "\"%s\"", rq->key_name);
    /* the workspace the request was for; when refused before one was
     * chosen, the key's (ids are [A-Za-z0-9._-] or "*": no escaping) */
    const char *wsid = rq->ctx ? at_store_workspace(rq->ctx->store) : rq->workspace[0] ? rq->workspace : NULL;
    if (wsid)
        snprintf(ws, sizeof ws, "\"%s\"", wsid);
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, "{\"time\": \"%.*s\", \"request_id\": \"%llx\", \"client\": \"%s\", \"key\": %s, "
                                    "\"workspace\": %s, \"method\": ",
                                (int)tn, t, (unsigned long long)rq->id, rq->client, key, ws);
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, rq->method, strlen(rq->method));
    if (r == AT_OK)
        r = at_buf_adds(&b, ", \"path\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(&b, rq->path, strlen(rq->path));
    if (r == AT_OK)
        r = at_buf_printf(&b, ", \"status\": %d, \"bytes\": %llu, \"bytes_in\": %llu, \"us\": %llu, "
                              "\"outcome\": \"%s\", \"redacted_events\": %llu}",
                          rq->status, (unsigned long long)rq->bytes_out, (unsigned long long)rq->bytes_in,
                          (unsigned long long)us, rq->timed_out ? "timed out" : ok ? "ok" : "aborted",
                          (unsigned long long)rq->redacted);
    if (r == AT_OK)
        log_json(b.data, b.len);
    at_buf_fini(&b);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *srv = cls;
    http_guard_request_ends(srv->guard, c);
    request *rq = *con_cls;
    if (!rq)
        return;
    *con_cls = NULL;
    if (!rq->begun) { /* closed before its headers were whole */
        free(rq);
        metrics_inflight(-1);
        return;
    }
    uint64_t us = now_usec() - rq->t0;
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    int status = ok ? rq->status : 0;
    char note[80] = " ";
    at_redact_summary(note + 1, sizeof note - 1, rq->redacted, rq->redacted_meta);
    if (!note[1])
        note[0] = 0;
    if (log_line_is_json())
        log_request_json(rq, us, ok);
    else if (rq->bytes_in)
        log_line("%s %s %d %llu %lluus in=%llu%s%s", rq->method, rq->path, rq->status,
                 (unsigned long long)rq->bytes_out, (unsigned long long)us, (unsigned long long)rq->bytes_in,
                 rq->timed_out ? " timed out"
                 : ok          ? ""
                               : " aborted",
                 note);
    else
        log_line("%s %s %d %llu %lluus%s%s", rq->method, rq->path, rq->status,
                 (unsigned long long)rq->bytes_out, (unsigned long long)us, ok ? "" : " aborted", note);
    metrics_request(rq->route, status, us);
    if (rq->is_import)
        metrics_import(rq->bytes_in, rq->bytes_decoded, rq->events, us,
                       ok && (rq->status == 200 || rq->status == 201));
    /* An upload that was not committed (error, client gone) leaves nothing. */
    at_stage_discard(&rq->stage);
    at_import_free(rq->im);
    at_redact_free(rq->rd);
    free(rq->resume);
    index_batch_free(rq->rows);
    at_verifier_free(rq->verifier);
    at_buf_fini(&rq->body);
    collector_events_free(rq->ev_in);
    if (rq->z_live)
        inflateEnd(&rq->z);
    free(rq->zbuf);
    free(rq->source);
    for (size_t k = 0; k < HTTP_MAX_PARAMS; k++)
        free(rq->param[k]);
    free(rq);
    metrics_inflight(-1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    server *srv = cls;
    metrics_connection(toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    http_guard_notify(srv->guard, c, socket_context, toe);
}

/* ---- the command -------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *out, bool suffix)
{
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno)
        return false;
    uint64_t mul = 1;
    if (suffix && *end) {
        switch (*end) {
        case 'k':
        case 'K': mul = 1024ull; break;
        case 'm':
        case 'M': mul = 1024ull * 1024; break;
        case 'g':
        case 'G': mul = 1024ull * 1024 * 1024; break;
        default: return false;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (*end || (v && mul > UINT64_MAX / v))
        return false;
    *out = (uint64_t)v * mul;
    return true;
}

/* The periodic upkeep of `serve`: sweeping what killed writers left and
 * collecting garbage under the retention policy (at_store_gc does both). */
typedef struct {
    ws_set *ws; /* every workspace opened is collected */
    at_gc_policy policy;
    uint64_t interval; /* seconds */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} maintenance;

static void maintain(server_ctx *ctx, const char *ws, void *arg)
{
    maintenance *mt = arg;
    at_gc_report rep;
    at_error err = {0};
    if (at_store_gc(ctx->store, &mt->policy, &rep, &err) != AT_OK)
        log_line("agent-traced serve: workspace %s: gc failed: %s", ws, err.message);
    else if (rep.sessions_removed || rep.versions_removed || rep.objects_removed)
        log_line("agent-traced serve: workspace %s: gc removed %llu sessions, %llu versions, %llu objects, "
                 "%llu bytes",
                 ws, (unsigned long long)rep.sessions_removed, (unsigned long long)rep.versions_removed,
                 (unsigned long long)rep.objects_removed, (unsigned long long)rep.bytes_freed);
}

static void *maintenance_run(void *arg)
{
    maintenance *mt = arg;
    pthread_mutex_lock(&mt->mu);
    while (!mt->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)mt->interval;
        while (!mt->stop && pthread_cond_timedwait(&mt->cv, &mt->mu, &until) != ETIMEDOUT)
            ;
        if (mt->stop)
            break;
        pthread_mutex_unlock(&mt->mu);
        ws_each(mt->ws, maintain, mt);
        pthread_mutex_lock(&mt->mu);
    }
    pthread_mutex_unlock(&mt->mu);
    return NULL;
}

/* Every key: --auth-key (or AGENT_STRACE_AUTH_KEY), then the keys file.
 * NULL, with why, when one is malformed. */
typedef struct {
    http_auth *a;
    bool ok;
    char *why;
    size_t cap;
} db_keys;

static void add_db_key(void *ctx, const at_key_row *k)
{
    db_keys *x = ctx;
    if (x->ok)
        x->ok = http_auth_add_named(x->a, k->name, k->role, k->workspace, k->sha256, x->why, x->cap);
}

/* The keys: --auth-key, AGENT_STRACE_AUTH_KEY, --keys FILE, and with
 * --database (once the workspaces are open) the database's. */
static http_auth *load_keys(const server *srv, char *why, size_t cap)
{
    http_auth *a = malloc(sizeof *a);
    if (!a) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    http_auth_init(a);
    bool ok = true;
    for (size_t i = 0; ok && i < srv->ncli_keys; i++)
        ok = http_auth_add(a, srv->cli_keys[i], strlen(srv->cli_keys[i]), why, cap);
    if (ok && srv->env_keys && !http_auth_add_list(a, srv->env_keys, why, cap)) {
        char m[256];
        snprintf(m, sizeof m, "AGENT_STRACE_AUTH_KEY: %s", why);
        snprintf(why, cap, "%s", m);
        ok = false;
    }
    if (ok && srv->keys_file) {
        char m[512];
        if (!(ok = http_auth_load(a, srv->keys_file, m, sizeof m)))
            snprintf(why, cap, "--keys %s", m);
    }
    if (ok && srv->ws && at_store_is_database(ws_default(srv->ws)->store)) {
        at_error err = {0};
        db_keys x = {a, true, why, cap};
        if (at_store_api_keys(ws_default(srv->ws)->store, add_db_key, &x, &err) != AT_OK) {
            snprintf(why, cap, "the database's keys: %s", err.message);
            ok = false;
        } else {
            ok = x.ok;
        }
    }
    if (!ok) {
        http_auth_fini(a);
        free(a);
        return NULL;
    }
    return a;
}

/* A bad option value: named, with what it takes (exit status 2). */
static int bad_value(const char *option, const char *arg, const char *want)
{
    fprintf(stderr, "agent-traced serve: --%s '%s': want %s (see agent-traced serve --help)\n", option, arg, want);
    return 2;
}

#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_CLIENT      256

/* Raises the soft descriptor limit to the hard one; returns the limit. */
static unsigned raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (want.rlim_cur > 1u << 20)
            want.rlim_cur = 1u << 20;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = want.rlim_cur;
    }
    return rl.rlim_cur > UINT32_MAX ? UINT32_MAX : (unsigned)rl.rlim_cur;
}

/* A listening socket of our own: bind fails plainly when the port is in
 * use (no SO_REUSEPORT: a second server must not share the port). */
static int listen_on(const struct sockaddr *sa, bool v6, char *why, size_t cap)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, sa, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0 ||
        listen(fd, 1024) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"storage", required_argument, NULL, 's'},
        {"database", required_argument, NULL, 'd'},
        {"auth-key", required_argument, NULL, 'k'},
        {"max-upload", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"request-timeout", required_argument, NULL, 'R'},
        {"no-redact", no_argument, NULL, 'N'},
        {"gc-interval", required_argument, NULL, 'G'},
        {"keep-versions", required_argument, NULL, 'K'},
        {"max-age-days", required_argument, NULL, 'A'},
        {"max-sessions", required_argument, NULL, 'S'},
        {"max-size-mb", required_argument, NULL, 'M'},
        {"log-key", required_argument, NULL, 'L'},
        {"log-origin", required_argument, NULL, 'O'},
        {"no-log", no_argument, NULL, 'X'},
        {"witness", required_argument, NULL, 'W'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-client-connections", required_argument, NULL, 'c'},
        {"shutdown-timeout", required_argument, NULL, 'D'},
        {"cors-origin", required_argument, NULL, 'o'},
        {"keys", required_argument, NULL, 'y'},
        {"log-format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static server srv; /* large (keys); one per process */
    memset(&srv, 0, sizeof srv);
    const char *host = "127.0.0.1", *storage = NULL, *database = NULL;
    uint64_t port = 4317, max_upload = 1024ull * 1024 * 1024, threads = 0, timeout = 60,
             request_timeout = 3600;
    bool cli_keys = false, redact = !at_redact_env_disabled();
    char why[160];
    uint64_t gc_interval = 3600, max_conn = 0, max_client = 0, shutdown_timeout = 30;
    const char *log_key_path = NULL, *log_origin = NULL;
    bool no_log = false;
    /* --witness URL=VKEY: the keys are the ledger's for its life */
    at_ledger_witness witnesses[AT_LEDGER_MAX_WITNESSES];
    at_note_verifier *witness_keys[AT_LEDGER_MAX_WITNESSES];
    size_t n_witnesses = 0;
    at_gc_policy policy = {0};
    int c, li = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        switch (c) {
        case 'H': host = optarg; break;
        case 's': storage = optarg; break;
        case 'd':
            if (!*optarg)
                return bad_value(opts[li].name, optarg, "a PostgreSQL URL (postgres://...)");
            database = optarg;
            break;
        case 'p':
            if (!parse_u64(optarg, &port, false) || port > 65535)
                return bad_value(opts[li].name, optarg, "a port number from 0 to 65535");
            break;
        case 'k': {
            cli_keys = true;
            http_auth probe;
            http_auth_init(&probe);
            bool good = http_auth_add(&probe, optarg, strlen(optarg), why, sizeof why);
            http_auth_fini(&probe);
            if (!good || srv.ncli_keys == sizeof srv.cli_keys / sizeof *srv.cli_keys) {
                fprintf(stderr, "agent-traced serve: --auth-key: %s\n", good ? "at most 64 of them" : why);
                return 2;
            }
            srv.cli_keys[srv.ncli_keys++] = optarg;
            break;
        }
        case 'y': srv.keys_file = optarg; break;
        case 'm':
            if (!parse_u64(optarg, &max_upload, true) || max_upload == 0)
                return bad_value(opts[li].name, optarg, "a size in bytes above 0 (suffixes K, M, G)");
            break;
        case 't':
            if (!parse_u64(optarg, &threads, false) || threads == 0 || threads > 1024)
                return bad_value(opts[li].name, optarg, "a number of threads from 1 to 1024");
            break;
        case 'T':
            if (!parse_u64(optarg, &timeout, false) || timeout > 86400)
                return bad_value(opts[li].name, optarg, "seconds, at most 86400");
            break;
        case 'R':
            if (!parse_u64(optarg, &request_timeout, false) || request_timeout > 7 * 86400)
                return bad_value(opts[li].name, optarg, "seconds, at most 604800 (0: no limit)");
            break;
        case 'C':
            if (!parse_u64(optarg, &max_conn, false) || max_conn == 0 || max_conn > 1000000)
                return bad_value(opts[li].name, optarg, "a number from 1 to 1000000");
            break;
        case 'c':
            if (!parse_u64(optarg, &max_client, false) || max_client == 0 || max_client > 1000000)
                return bad_value(opts[li].name, optarg, "a number from 1 to 1000000");
            break;
        case 'D':
            if (!parse_u64(optarg, &shutdown_timeout, false) || shutdown_timeout > 86400)
                return bad_value(opts[li].name, optarg, "seconds, at most 86400");
            break;
        case 'o':
            if (srv.ncors == MAX_CORS || !*optarg) {
                fprintf(stderr, "agent-traced serve: --cors-origin: %s\n",
                        *optarg ? "at most 16 origins" : "an origin is needed (or *)");
                return 2;
            }
            srv.cors[srv.ncors++] = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "agent-traced serve: --log-format: text or json, not '%s'\n", optarg);
                return 2;
            }
            log_line_set_json(strcmp(optarg, "json") == 0);
            break;
        case 'N': redact = false; break;
        case 'L': log_key_path = optarg; break;
        case 'O': log_origin = optarg; break;
        case 'X': no_log = true; break;
        case 'W': {
            at_error werr = {0};
            char *wurl = NULL;
            if (n_witnesses == AT_LEDGER_MAX_WITNESSES)
                at_error_set(&werr, AT_ERR_INVALID, -1, "at most %d witnesses", AT_LEDGER_MAX_WITNESSES);
            else if (at_witness_option_parse(optarg, &wurl, &witness_keys[n_witnesses], &werr) == AT_OK) {
                witnesses[n_witnesses] = (at_ledger_witness){wurl, witness_keys[n_witnesses]};
                n_witnesses++;
                break;
            }
            fprintf(stderr, "agent-traced serve: --witness %s: %s\n", optarg, werr.message);
            return 2;
        }
        case 'G':
            if (!parse_u64(optarg, &gc_interval, false) || gc_interval > 366ull * 86400)
                return bad_value(opts[li].name, optarg, "seconds, at most 31622400 (0: only at start)");
            break;
        case 'K':
        case 'S': {
            uint64_t v;
            if (!parse_u64(optarg, &v, false) || v == 0 || v > INT64_MAX)
                return bad_value(opts[li].name, optarg, "a whole number above 0");
            if (c == 'K')
                policy.keep_versions = (int64_t)v;
            else
                policy.max_sessions = (int64_t)v;
            break;
        }
        case 'A':
        case 'M': {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (*end || errno || !(v > 0))
                return bad_value(opts[li].name, optarg, "a number above 0");
            if (c == 'A')
                policy.max_age_days = v;
            else
                policy.max_size_mb = v;
            break;
        }
        case 'h': fputs(serve_usage, stdout); return 0;
        default: goto usage;
        }
    }
    if (optind < argc)
        goto usage;
    if (no_log && n_witnesses) {
        fprintf(stderr, "agent-traced serve: --witness needs the transparency log (not --no-log)\n");
        return 2;
    }
    srv.env_keys = cli_keys ? NULL : getenv("AGENT_STRACE_AUTH_KEY");
    pthread_rwlock_init(&srv.auth_lock, NULL);
    if (!(srv.auth = load_keys(&srv, why, sizeof why))) {
        fprintf(stderr, "agent-traced serve: %s\n", why);
        return 2;
    }
    if (!database && !storage) {
        const char *e = getenv("AGENT_TRACED_DATABASE");
        database = e && *e ? e : NULL;
    }
    if (database && storage) {
        fprintf(stderr, "agent-traced serve: --storage and --database: one or the other\n");
        return 2;
    }
    if (!storage) {
        const char *e = getenv("AGENT_STRACE_STORAGE");
        storage = e && *e ? e : "./.agent-traces";
    }
    if (database && !no_log && !log_key_path) {
        /* every replica signs with the same key: it cannot be made here */
        fprintf(stderr, "agent-traced serve: --database needs --log-key FILE (the same on every replica; "
                        "`agent-traced log keygen` makes one), or --no-log\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (uint64_t)nc : 1;
    }

    /* resolve the address */
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gr = getaddrinfo(host, NULL, &hints, &ai);
    if (gr != 0 || !ai) {
        fprintf(stderr, "agent-traced serve: cannot resolve %s: %s\n", host, gai_strerror(gr));
        return 1;
    }
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);

    at_error err;
    memset(&err, 0, sizeof err);
    if (redact) {
        /* compiles the patterns once, and says so now if they cannot be */
        at_redact *probe = at_redact_new(&err);
        if (!probe) {
            fprintf(stderr, "agent-traced serve: %s\n", err.message);
            return 1;
        }
        at_redact_free(probe);
    }
    srv.request_timeout_us = request_timeout * 1000000u;
    for (size_t i = 0; i < http_nroutes && i < METRICS_MAX_ROUTES; i++) {
        /* "GET /sessions/{id}": method and pattern, one label per table row */
        static char names[METRICS_MAX_ROUTES][80];
        snprintf(names[i], sizeof names[i], "%s %s", http_routes[i].method, http_routes[i].pattern);
        srv.route_names[i] = names[i];
    }

    /* SIGINT/SIGTERM are taken by sigwait in this thread; the MHD threads
     * inherit the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the transparency log's key (made on a first start unless --log-key),
     * then the default workspace with its log */
    char keyfile[PATH_MAX], hostbuf[256] = "localhost", origin_buf[300];
    if (!log_key_path && at_storage_path(storage, AT_PATH_PRIVATE, NULL, keyfile, sizeof keyfile) == AT_OK &&
        strlen(keyfile) + 9 < sizeof keyfile)
        strcat(keyfile, "/log/key");
    if (!log_origin && !log_key_path) {
        if (gethostname(hostbuf, sizeof hostbuf - 1) != 0 || !hostbuf[0])
            snprintf(hostbuf, sizeof hostbuf, "localhost");
        snprintf(origin_buf, sizeof origin_buf, "%s/agent-traced", hostbuf);
    }
    if (!no_log && !log_key_path && !database) {
        /* the key lives in the storage directory: make it first */
        at_store *probe = at_store_open(storage, &err);
        if (!probe) {
            fprintf(stderr, "agent-traced serve: %s\n", err.message);
            return 1;
        }
        at_store_free(probe);
    }
    at_note_signer *log_signer =
        no_log ? NULL
               : at_ledger_key(log_key_path ? log_key_path : keyfile,
                               log_origin ? log_origin : (log_key_path ? NULL : origin_buf), !log_key_path,
                               &err);
    if (!no_log && !log_signer) {
        fprintf(stderr, "agent-traced serve: %s\n", err.message);
        return 1;
    }
    size_t oln = 0;
    const char *oname = no_log ? "" : at_note_signer_name(log_signer, &oln);
    char *origin = strndup(oname, oln);
    ws_config wc = {.storage = storage,
                    .database = database,
                    .tmp_dir = tmp,
                    .max_upload = max_upload,
                    .redact = redact,
                    .signer = log_signer,
                    .origin = origin,
                    .witnesses = witnesses,
                    .n_witnesses = n_witnesses};
    if (!origin || !(srv.ws = ws_set_new(&wc, &err))) {
        fprintf(stderr, "agent-traced serve: %s\n", origin ? err.message : "out of memory");
        at_note_signer_free(log_signer);
        free(origin);
        return 1;
    }
    server_ctx *dctx = ws_default(srv.ws);
    if (database)
        snprintf(srv.tmp_dir, sizeof srv.tmp_dir, "%s", tmp);
    else if (at_storage_path(dctx->root, AT_PATH_TMP, NULL, srv.tmp_dir, sizeof srv.tmp_dir) != AT_OK)
        srv.tmp_dir[0] = 0;

    /* descriptors: as many as allowed, then the connection limits from them */
    unsigned fd_room = raise_fd_limit();
    if (!max_conn)
        max_conn = fd_room / 2 < DEFAULT_MAX_CONNECTIONS ? fd_room / 2 : DEFAULT_MAX_CONNECTIONS;
    if (!max_client)
        max_client = max_conn < DEFAULT_MAX_CLIENT ? max_conn : DEFAULT_MAX_CLIENT;
    if (max_conn + 64 > fd_room)
        log_line("agent-traced serve: warning: --max-connections %llu leaves few of the %u descriptors "
                 "allowed for files",
                 (unsigned long long)max_conn, fd_room);
    http_guard_limits lim = {(unsigned)max_conn, (unsigned)max_client, (unsigned)timeout};
    int lfd = listen_on((struct sockaddr *)&sa, v6, why, sizeof why);
    if (lfd < 0 || !(srv.guard = http_guard_new(&lim))) {
        fprintf(stderr, "agent-traced serve: cannot listen on %s:%llu: %s\n", host, (unsigned long long)port,
                lfd < 0 ? why : "out of memory");
        if (lfd >= 0)
            close(lfd);
        ws_set_free(srv.ws);
        at_note_signer_free(log_signer);
        free(origin);
        return 1;
    }

    /* epoll (MHD_USE_AUTO); watch_peer_end makes up for its one blind
     * spot. (poll() has none, but its tail latency was two to three times
     * epoll's at 1,000 busy connections on the default threads.) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem pool[] = {
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    srv.daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        http_guard_mhd_limit(&lim), MHD_OPTION_URI_LOG_CALLBACK, on_uri, &srv, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, &srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, &srv, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_END);
    if (!srv.daemon) {
        fprintf(stderr, "agent-traced serve: cannot start the HTTP server on %s:%llu\n", host,
                (unsigned long long)port);
        close(lfd);
        http_guard_free(srv.guard);
        ws_set_free(srv.ws);
        at_note_signer_free(log_signer);
        free(origin);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned real_port = info ? info->port : (unsigned)port;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (v6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, addr, sizeof addr);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, addr, sizeof addr);
    log_line(v6 ? "listening on [%s]:%u" : "listening on %s:%u", addr, real_port);
    if (geteuid() == 0)
        log_line("agent-traced serve: warning: running as root; an unprivileged user owning only the "
                 "storage directory is safer");
    if (dctx->ledger)
        log_line("agent-traced serve: log %s, verifier key %s", origin, dctx->log_vkey);
    else
        log_line("agent-traced serve: no transparency log (--no-log)");

    /* The index is opened after the port is known so the first line comes
     * quickly; a missing index only disables the event lookups (503). */
    srv.gc_policy = policy;
    maintenance mt = {.ws = srv.ws, .policy = policy, .interval = gc_interval};
    pthread_t mt_thread;
    pthread_mutex_init(&mt.mu, NULL);
    pthread_cond_init(&mt.cv, NULL);
    bool mt_running = gc_interval > 0 && pthread_create(&mt_thread, NULL, maintenance_run, &mt) == 0;
    if (!ws_open_index(srv.ws, &err))
        log_line("agent-traced serve: event index unavailable: %s", err.message);
    if (database && at_store_probe_write(dctx->store, &err) != AT_OK)
        log_line("agent-traced serve: the database is not ready (GET /ready says 503 until it is): %s",
                 err.message);
    log_line("agent-traced serve: started: storage %s, %llu threads, max upload %llu bytes, "
             "timeout %llus, request timeout %llus, auth %s (%zu keys), redaction %s, pid %ld",
             database ? "in the database" : dctx->root, (unsigned long long)threads, (unsigned long long)max_upload,
             (unsigned long long)timeout, (unsigned long long)request_timeout, srv.auth->n ? "on" : "off",
             srv.auth->n, redact ? "on" : "off", (long)getpid());

    if (database) {
        /* the database's keys, now that it is open */
        http_auth *with_db = load_keys(&srv, why, sizeof why);
        if (with_db) {
            http_auth *old_keys = srv.auth;
            pthread_rwlock_wrlock(&srv.auth_lock);
            srv.auth = with_db;
            pthread_rwlock_unlock(&srv.auth_lock);
            http_auth_fini(old_keys);
            free(old_keys);
        } else {
            log_line("agent-traced serve: the database's keys are not read yet: %s", why);
        }
    }
    int sig = 0;
    for (;;) {
        /* with --database, the keys are read again every few seconds: a key
         * `db keys load` stored reaches every replica without a signal */
        struct timespec tick = {DB_KEYS_EVERY_S, 0};
        sig = database ? sigtimedwait(&sigs, NULL, &tick) : (sigwait(&sigs, &sig) == 0 ? sig : -1);
        if (sig < 0 && !database)
            continue;
        if (sig >= 0 && sig != SIGHUP)
            break;
        http_auth *fresh = load_keys(&srv, why, sizeof why);
        if (!fresh) {
            if (sig == SIGHUP) /* a bad file keeps the keys in use */
                log_line("agent-traced serve: SIGHUP: keys not reloaded, the old ones stay: %s", why);
            continue;
        }
        if (sig < 0) { /* the periodic reading: swap only when they changed */
            pthread_rwlock_rdlock(&srv.auth_lock);
            bool same = http_auth_same(srv.auth, fresh);
            pthread_rwlock_unlock(&srv.auth_lock);
            if (same) {
                http_auth_fini(fresh);
                free(fresh);
                continue;
            }
        }
        pthread_rwlock_wrlock(&srv.auth_lock);
        http_auth *old_keys = srv.auth;
        srv.auth = fresh;
        pthread_rwlock_unlock(&srv.auth_lock);
        http_auth_fini(old_keys);
        free(old_keys);
        log_line("agent-traced serve: %s: %zu keys loaded", sig == SIGHUP ? "SIGHUP" : "the database's keys changed",
                 fresh->n);
    }
    log_line("agent-traced serve: %s received, finishing %lld requests in flight",
             sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)metrics_inflight_now());
    /* Quiesced, the pool's threads drop the listening socket from what they
     * poll one by one: it must stay open until MHD_stop_daemon (closed here,
     * under epoll a thread's EPOLL_CTL_DEL failed and libmicrohttpd aborted
     * the process). shutdown() stops it listening now: new clients are
     * refused while the requests in flight finish. It is lfd, closed once
     * below. */
    MHD_socket ls = MHD_quiesce_daemon(srv.daemon);
    if (ls != MHD_INVALID_SOCKET)
        shutdown(ls, SHUT_RDWR);
    uint64_t deadline = now_usec() + shutdown_timeout * 1000000u;
    while (metrics_inflight_now() > 0 && now_usec() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (metrics_inflight_now() > 0)
        log_line("agent-traced serve: %lld requests still in flight after %llus: closing them",
                 (long long)metrics_inflight_now(), (unsigned long long)shutdown_timeout);
    if (mt_running) {
        pthread_mutex_lock(&mt.mu);
        mt.stop = true;
        pthread_cond_signal(&mt.cv);
        pthread_mutex_unlock(&mt.mu);
        pthread_join(mt_thread, NULL);
    }
    MHD_stop_daemon(srv.daemon);
    close(lfd);
    http_guard_free(srv.guard);
    ws_set_free(srv.ws);
    at_note_signer_free(log_signer);
    for (size_t i = 0; i < n_witnesses; i++) {
        free((char *)witnesses[i].url);
        at_note_verifier_free(witness_keys[i]);
    }
    free(origin);
    http_auth_fini(srv.auth);
    free(srv.auth);
    pthread_rwlock_destroy(&srv.auth_lock);
    log_line("agent-traced serve: stopped");
    return 0;
usage:
    fputs(serve_usage, stderr);
    return 2;
}

int cli_keygen(int argc, char **argv)
{
    static const char kusage[] =
        "usage: agent-traced keygen [--name NAME --role reader|writer|admin [--workspace W]]\n"
        "\n"
        "Prints a fresh API key (ast_ + 32 hex digits) for serve --auth-key /\n"
        "AGENT_STRACE_AUTH_KEY. With --name and --role, also the line for serve\n"
        "--keys FILE on a second line: <name> <role> <workspace> <sha256 of the key>\n"
        "(the file holds the digest, never the key). --workspace defaults to\n"
        "default; * is every workspace.\n";
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"workspace", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *role_s = NULL, *ws = "default";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'r': role_s = optarg; break;
        case 'w': ws = optarg; break;
        case 'h': fputs(kusage, stdout); return 0;
        default: fputs(kusage, stderr); return 2;
        }
    }
    if (optind < argc || (!name != !role_s)) {
        fputs(optind < argc ? kusage : "agent-traced keygen: --name and --role go together\n", stderr);
        return 2;
    }
    http_role role = role_s ? http_role_parse(role_s) : HTTP_ROLE_ADMIN;
    if (name && !http_auth_name_ok(name)) {
        fprintf(stderr, "agent-traced keygen: --name '%s': 1-64 of A-Z a-z 0-9 . _ -\n", name);
        return 2;
    }
    if (!role) {
        fprintf(stderr, "agent-traced keygen: --role '%s': reader, writer or admin\n", role_s);
        return 2;
    }
    if (strcmp(ws, "*") != 0 && !http_auth_name_ok(ws)) {
        fprintf(stderr, "agent-traced keygen: --workspace '%s': * or 1-64 of A-Z a-z 0-9 . _ -\n", ws);
        return 2;
    }
    uint8_t k[16];
    size_t got = 0;
    while (got < sizeof k) {
        ssize_t n = getrandom(k + got, sizeof k - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "agent-traced keygen: getrandom: %s\n", strerror(errno));
            return 1;
        }
        got += (size_t)n;
    }
    char hex[33], key[40], line[256];
    at_hex(k, sizeof k, hex);
    snprintf(key, sizeof key, "ast_%s", hex);
    printf("%s\n", key);
    if (name) {
        http_auth_line(name, role, ws, key, line, sizeof line);
        printf("%s\n", line);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
