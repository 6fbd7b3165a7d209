/* bench_dbappend.c - appends/s through the database's compare-and-swap
 * (src/db/dbstore.c): W writers, each on its own connection, append one
 * event at a time for S seconds, to their own sessions or all to one.
 *
 *   PGURL=postgres://... bench/bench_dbappend WRITERS SECONDS same|own
 *
 * Prints {"writers", "mode", "appends", "seconds", "appends_per_s",
 * "retries"}. The database must be migrated (agent-traced db migrate);
 * bench/db_bench.sh starts a private cluster and runs it. */
#include "db/dbstore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *url;
static double seconds;
static int same;

typedef struct {
    int id;
    char sid[64], quoted[72];
    unsigned long appends, retries;
    int failed;
} writer;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    writer *w = arg;
    at_error err = {0};
    db *d = db_connect(url, &err);
    if (!d) {
        fprintf(stderr, "%s\n", err.message);
        w->failed = 1;
        return NULL;
    }
    bool created;
    const char meta[] = "{}";
    if (dbs_session_create(d, "default", w->sid, meta, 2, &created, &err) != AT_OK) {
        fprintf(stderr, "%s\n", err.message);
        w->failed = 1;
        db_close(d);
        return NULL;
    }
    double end = now() + seconds;
    while (now() < end) {
        char id[48], data[64];
        snprintf(id, sizeof id, "\"w%d-%lu\"", w->id, w->appends);
        snprintf(data, sizeof data, "{\"n\": %lu}", w->appends);
        at_event_json ev = {.event_type = AT_SLICE("\"decision\""),
                            .timestamp = AT_SLICE("1.5"),
                            .event_id = {id, strlen(id)},
                            .session_id = {w->quoted, strlen(w->quoted)},
                            .data = {data, strlen(data)}};
        uint64_t v;
        unsigned r;
        if (dbs_append(d, "default", w->sid, &ev, 1, 1700000000.0, &v, &r, &err) != AT_OK) {
            fprintf(stderr, "%s\n", err.message);
            w->failed = 1;
            break;
        }
        w->appends++;
        w->retries += r;
    }
    db_close(d);
    return NULL;
}

int main(int argc, char **argv)
{
    url = getenv("PGURL");
    if (argc != 4 || !url || (strcmp(argv[3], "same") != 0 && strcmp(argv[3], "own") != 0)) {
        fprintf(stderr, "usage: PGURL=... %s WRITERS SECONDS same|own\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    seconds = atof(argv[2]);
    same = strcmp(argv[3], "same") == 0;
    if (n < 1 || n > 64 || seconds <= 0) {
        fprintf(stderr, "WRITERS 1-64, SECONDS > 0\n");
        return 2;
    }
    writer *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    long tag = (long)time(NULL) ^ ((long)getpid() << 16);
    for (int i = 0; i < n; i++) {
        w[i].id = i;
        snprintf(w[i].sid, sizeof w[i].sid, "bench-%ld-%d", tag, same ? 0 : i);
        snprintf(w[i].quoted, sizeof w[i].quoted, "\"%s\"", w[i].sid);
    }
    double t0 = now();
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, run, &w[i]);
    unsigned long appends = 0, retries = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        appends += w[i].appends;
        retries += w[i].retries;
        failed |= w[i].failed;
    }
    double el = now() - t0;
    printf("{\"writers\": %d, \"mode\": \"%s\", \"appends\": %lu, \"seconds\": %.2f, \"appends_per_s\": %.0f, "
           "\"retries\": %lu}\n",
           n, same ? "same" : "own", appends, el, (double)appends / el, retries);
    free(w);
    free(th);
    return failed;
}
