/* guard.c - connection limits, the idle reaper and request-line and header
 * checks (guard.h).
 *
 * Connections are tracked in a list from MHD's "started" notification to
 * its "closed" one. A connection beyond a limit gets a canned 503 written to
 * its socket and a half-close, and is marked refused: should its request
 * still arrive, the request callback closes it. The reaper wakes every
 * quarter second and shuts down (shutdown(2), never close: the descriptor
 * stays MHD's) the sockets of connections waiting too long for a request's
 * headers. It holds the list's lock while it does, and MHD's "closed"
 * notification, which comes before MHD closes the descriptor, takes the same
 * lock: the descriptor it shuts down is always still the connection's. */
#include "http/guard.h"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REFUSED_GRACE_MS 2000 /* a refused connection's client has this long to read its 503 */
#define MHD_SLACK        64   /* connections MHD accepts beyond the limit, to answer them 503 */

typedef struct conn {
    struct conn *prev, *next;
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t idle_since_ms; /* connect, or the end of the last request */
    bool in_request;        /* headers received, response not yet sent */
    bool refused;
} conn;

struct http_guard {
    http_guard_limits lim;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn *head;
    unsigned open; /* connections not refused */
    bool stop;
    pthread_t reaper;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool same_client(const conn *a, const struct sockaddr_storage *b)
{
    if (a->addr.ss_family != b->ss_family)
        return false;
    if (b->ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (b->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return true; /* other families: one client */
}

/* A whole response on a socket MHD has not written to yet. */
static void answer_503(int fd, const char *msg)
{
    char body[256], r[512];
    int bn = snprintf(body, sizeof body, "{\"error\": \"%s\"}", msg);
    int n = snprintf(r, sizeof r,
                     "HTTP/1.1 503 Service Unavailable\r\nServer: agent-traced/" PACKAGE_VERSION
                     "\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     bn, body);
    if (n > 0 && (size_t)n < sizeof r)
        (void)!send(fd, r, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
}

static void *reap(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &until);
        uint64_t now = now_ms(), idle = (uint64_t)g->lim.idle_timeout_s * 1000u;
        for (conn *k = g->head; k; k = k->next) {
            if (k->fd < 0)
                continue;
            if (k->refused ? now - k->idle_since_ms > REFUSED_GRACE_MS
                           : idle && !k->in_request && now - k->idle_since_ms > idle) {
                shutdown(k->fd, SHUT_RDWR); /* MHD sees the end and closes it */
                k->fd = -1;
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

http_guard *http_guard_new(const http_guard_limits *lim)
{
    http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->lim = *lim;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->reaper, NULL, reap, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(http_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    for (conn *k = g->head, *next; k; k = next) { /* MHD has stopped: none is notified any more */
        next = k->next;
        free(k);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

unsigned http_guard_mhd_limit(const http_guard_limits *lim)
{
    return lim->max_connections + MHD_SLACK;
}

void http_guard_notify(http_guard *g, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn *k = *socket_context;
        if (!k)
            return;
        pthread_mutex_lock(&g->mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            g->head = k->next;
        if (k->next)
            k->next->prev = k->prev;
        if (!k->refused)
            g->open--;
        pthread_mutex_unlock(&g->mu);
        free(k);
        *socket_context = NULL;
        return;
    }
    conn *k = calloc(1, sizeof *k);
    if (!k)
        return; /* untracked: limited by MHD's own limit only */
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    k->fd = fi ? fi->connect_fd : -1;
    if (ai && ai->client_addr) {
        k->addr_len = ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                              : sizeof(struct sockaddr_in);
        memcpy(&k->addr, ai->client_addr, k->addr_len);
    }
    k->idle_since_ms = now_ms();
    pthread_mutex_lock(&g->mu);
    unsigned mine = 0;
    for (conn *o = g->head; o; o = o->next)
        mine += !o->refused && same_client(o, &k->addr);
    const char *why = NULL;
    if (g->open >= g->lim.max_connections)
        why = "too many connections: try again shortly";
    else if (mine >= g->lim.max_per_client)
        why = "too many connections from this client: try again shortly";
    k->refused = why != NULL;
    if (!k->refused)
        g->open++;
    k->next = g->head;
    if (g->head)
        g->head->prev = k;
    g->head = k;
    if (why && k->fd >= 0)
        answer_503(k->fd, why);
    pthread_mutex_unlock(&g->mu);
    *socket_context = k;
}

static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

bool http_guard_request_begins(http_guard *g, struct MHD_Connection *c)
{
    conn *k = conn_of(c);
    if (!k)
        return true;
    pthread_mutex_lock(&g->mu);
    k->in_request = true;
    bool ok = !k->refused;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void http_guard_request_ends(http_guard *g, struct MHD_Connection *c)
{
    conn *k = conn_of(c);
    if (!k)
        return;
    pthread_mutex_lock(&g->mu);
    k->in_request = false;
    k->idle_since_ms = now_ms();
    pthread_mutex_unlock(&g->mu);
}

const char *http_guard_uri(const char *raw)
{
    for (const char *p = raw; (p = strchr(p, '%')); p++)
        if (p[1] == '0' && p[2] == '0')
            return "a NUL (%00) in the path or query";
    return NULL;
}

typedef struct {
    unsigned content_length, transfer_encoding, authorization;
} header_counts;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    header_counts *h = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        h->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        h->transfer_encoding++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
        h->authorization++;
    return MHD_YES;
}

const char *http_guard_headers(struct MHD_Connection *c)
{
    header_counts h = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &h);
    if (h.content_length > 1)
        return "more than one Content-Length header";
    if (h.transfer_encoding && h.content_length)
        return "both Transfer-Encoding and Content-Length";
    if (h.transfer_encoding > 1)
        return "more than one Transfer-Encoding header";
    if (h.authorization > 1)
        return "more than one Authorization header";
    return NULL;
}
