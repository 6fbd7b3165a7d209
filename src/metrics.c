/* metrics.c - Prometheus counters and histograms (metrics.h). */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>

#define STATUS_MIN 100
#define STATUS_N   500 /* 100..599 */
#define NBUCKETS   14

static const double bucket_le[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,    0.25,  0.5,    1,     2.5,  10,    60};

typedef struct {
    atomic_uint_fast64_t bucket[NBUCKETS + 1]; /* last: +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_usec;
} histogram;

/* requests[route][status - 100]; status 0 (aborted) is counted apart. */
static atomic_uint_fast64_t requests[METRICS_MAX_ROUTES + 1][STATUS_N];
static atomic_uint_fast64_t aborted[METRICS_MAX_ROUTES + 1];
static histogram request_latency, import_latency;
static atomic_uint_fast64_t import_bytes_in, import_bytes_decoded, import_events, imports_ok, imports_failed;
static atomic_int_fast64_t connections, inflight;

static void observe(histogram *h, uint64_t usec)
{
    double s = (double)usec / 1e6;
    int i = 0;
    while (i < NBUCKETS && s > bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_usec, usec, memory_order_relaxed);
}

static uint64_t ld(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

void metrics_request(int route, int status, uint64_t usec)
{
    if (route < 0 || route > METRICS_MAX_ROUTES)
        route = METRICS_MAX_ROUTES;
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_N)
        atomic_fetch_add_explicit(&requests[route][status - STATUS_MIN], 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&aborted[route], 1, memory_order_relaxed);
    observe(&request_latency, usec);
}

void metrics_import(uint64_t bytes_in, uint64_t bytes_decoded, uint64_t events, uint64_t usec, bool ok)
{
    atomic_fetch_add_explicit(&import_bytes_in, bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&import_bytes_decoded, bytes_decoded, memory_order_relaxed);
    atomic_fetch_add_explicit(&import_events, events, memory_order_relaxed);
    atomic_fetch_add_explicit(ok ? &imports_ok : &imports_failed, 1, memory_order_relaxed);
    observe(&import_latency, usec);
}

void metrics_connection(int delta)
{
    atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

void metrics_inflight(int delta)
{
    atomic_fetch_add_explicit(&inflight, delta, memory_order_relaxed);
}

int64_t metrics_inflight_now(void)
{
    return atomic_load_explicit(&inflight, memory_order_relaxed);
}

static at_result render_histogram(at_buf *out, const char *name, const char *help, histogram *h)
{
    at_result r = at_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; r == AT_OK && i < NBUCKETS; i++) {
        cum += ld(&h->bucket[i]);
        r = at_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], (unsigned long long)cum);
    }
    cum += ld(&h->bucket[NBUCKETS]);
    if (r == AT_OK)
        r = at_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                          (unsigned long long)cum, name, (double)ld(&h->sum_usec) / 1e6, name,
                          (unsigned long long)cum);
    return r;
}

at_result metrics_render(at_buf *out, const char *const *route_names, size_t nroutes)
{
    if (nroutes > METRICS_MAX_ROUTES)
        nroutes = METRICS_MAX_ROUTES;
    at_result r = at_buf_adds(out, "# HELP agent_traced_requests_total HTTP requests by route and "
                                   "status (status=\"aborted\": the client went away).\n"
                                   "# TYPE agent_traced_requests_total counter\n");
    for (size_t i = 0; r == AT_OK && i <= nroutes; i++) {
        size_t slot = i < nroutes ? i : METRICS_MAX_ROUTES;
        const char *name = i < nroutes ? route_names[i] : "unmatched";
        for (int s = 0; r == AT_OK && s < STATUS_N; s++) {
            uint64_t v = ld(&requests[slot][s]);
            if (v)
                r = at_buf_printf(out, "agent_traced_requests_total{route=\"%s\",status=\"%d\"} %llu\n", name,
                                  s + STATUS_MIN, (unsigned long long)v);
        }
        uint64_t a = ld(&aborted[slot]);
        if (r == AT_OK && a)
            r = at_buf_printf(out, "agent_traced_requests_total{route=\"%s\",status=\"aborted\"} %llu\n",
                              name, (unsigned long long)a);
    }
    if (r == AT_OK)
        r = render_histogram(out, "agent_traced_request_duration_seconds",
                             "Time from the request line to the end of the response.", &request_latency);
    if (r == AT_OK)
        r = render_histogram(out, "agent_traced_import_duration_seconds",
                             "Time of a transcript upload, first byte to commit.", &import_latency);
    if (r == AT_OK)
        r = at_buf_printf(
            out,
            "# HELP agent_traced_import_bytes_total Transcript bytes received by /import.\n"
            "# TYPE agent_traced_import_bytes_total counter\n"
            "agent_traced_import_bytes_total %llu\n"
            "# HELP agent_traced_import_decoded_bytes_total Transcript bytes after decompression.\n"
            "# TYPE agent_traced_import_decoded_bytes_total counter\n"
            "agent_traced_import_decoded_bytes_total %llu\n"
            "# HELP agent_traced_import_events_total Events stored by /import.\n"
            "# TYPE agent_traced_import_events_total counter\n"
            "agent_traced_import_events_total %llu\n"
            "# HELP agent_traced_imports_total Uploads by outcome.\n"
            "# TYPE agent_traced_imports_total counter\n"
            "agent_traced_imports_total{result=\"ok\"} %llu\n"
            "agent_traced_imports_total{result=\"error\"} %llu\n"
            "# HELP agent_traced_open_connections Open client connections.\n"
            "# TYPE agent_traced_open_connections gauge\n"
            "agent_traced_open_connections %lld\n"
            "# HELP agent_traced_requests_in_flight Requests being processed.\n"
            "# TYPE agent_traced_requests_in_flight gauge\n"
            "agent_traced_requests_in_flight %lld\n",
            (unsigned long long)ld(&import_bytes_in), (unsigned long long)ld(&import_bytes_decoded),
            (unsigned long long)ld(&import_events), (unsigned long long)ld(&imports_ok),
            (unsigned long long)ld(&imports_failed),
            (long long)atomic_load_explicit(&connections, memory_order_relaxed),
            (long long)atomic_load_explicit(&inflight, memory_order_relaxed));
    return r;
}
