/* test_dbstore.c - the database's compare-and-swap (src/db/dbstore.c)
 * against a real PostgreSQL (tests/dbstore.sh starts a private cluster and
 * passes its URL in PGURL; without it the test is skipped, exit 77).
 *
 * Eight writers, each with its own connection as separate replicas would
 * have, append to one session at once. Afterwards no append is lost, no
 * version is made twice, the chain never forked (the final object verifies
 * strictly and holds every event exactly once), every version's object
 * reads back to its recorded SHA-256, and appends to different sessions
 * do not disturb each other. */
#include "testlib.h"

#include "db/dbindex.h"
#include "db/dbstore.h"

#include "agenttrace/verify.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define WRITERS 8
#define APPENDS 25 /* per writer */
#define EVENTS  2  /* per append */

static const char *url;

typedef struct {
    int id;
    const char *sid;    /* the session id */
    const char *quoted; /* as a JSON string, for the events */
    unsigned retries;
    int failures;
    char first_error[256];
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    at_error err = {0};
    db *d = db_connect(url, &err);
    if (!d) {
        w->failures = APPENDS;
        snprintf(w->first_error, sizeof w->first_error, "%s", err.message);
        return NULL;
    }
    for (int i = 0; i < APPENDS; i++) {
        char ids[EVENTS][32], data[EVENTS][64];
        at_event_json ev[EVENTS];
        memset(ev, 0, sizeof ev);
        for (int j = 0; j < EVENTS; j++) {
            snprintf(ids[j], sizeof ids[j], "\"w%d-%d-%d\"", w->id, i, j);
            snprintf(data[j], sizeof data[j], "{\"writer\": %d, \"append\": %d}", w->id, i);
            ev[j].event_type = AT_SLICE("\"decision\"");
            ev[j].timestamp = AT_SLICE("1.5");
            ev[j].event_id = (at_slice){ids[j], strlen(ids[j])};
            ev[j].session_id = (at_slice){w->quoted, strlen(w->quoted)};
            ev[j].data = (at_slice){data[j], strlen(data[j])};
        }
        uint64_t v = 0;
        unsigned retries = 0;
        memset(&err, 0, sizeof err);
        if (dbs_append(d, "default", w->sid, ev, EVENTS, 1700000000.0 + i, &v, &retries, &err) != AT_OK) {
            if (!w->failures++)
                snprintf(w->first_error, sizeof w->first_error, "%s", err.message);
        }
        w->retries += retries;
    }
    db_close(d);
    return NULL;
}

typedef struct {
    at_buf b;
} mem;

static at_result mem_write(void *ctx, const char *p, size_t n, at_error *err)
{
    (void)err;
    return at_buf_add(&((mem *)ctx)->b, p, n);
}

static void make_session(db *d, const char *raw)
{
    bool created = false;
    at_error err = {0};
    const char meta[] = "{\n  \"session_id\": \"x\"\n}";
    CHECK(dbs_session_create(d, "default", raw, meta, sizeof meta - 1, &created, &err) == AT_OK && created,
          "create %s: %s", raw, err.message);
}

int main(void)
{
    url = getenv("PGURL");
    if (!url || !*url) {
        printf("SKIP: PGURL is not set (tests/dbstore.sh starts a cluster)\n");
        return 77;
    }
    at_error err = {0};
    db *d = db_connect(url, &err);
    CHECK(d != NULL, "connect: %s", err.message);
    if (!d)
        return t_done("test_dbstore");

    /* ---- eight writers, one session ---- */
    make_session(d, "cas-one");
    writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.id = i, .sid = "cas-one", .quoted = "\"cas-one\""};
        pthread_create(&th[i], NULL, write_loop, &w[i]);
    }
    unsigned retries = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].failures == 0, "writer %d: %d appends failed (first: %s)", i, w[i].failures, w[i].first_error);
        retries += w[i].retries;
    }
    printf("# %d appends by %d writers to one session: %u compare-and-swaps lost and retried\n",
           WRITERS * APPENDS, WRITERS, retries);

    at_version *vs = NULL;
    size_t nv = 0;
    CHECK(dbs_versions(d, "default", "cas-one", &vs, &nv, &err) == AT_OK, "versions: %s", err.message);
    CHECK(nv == WRITERS * APPENDS, "one version per append: %zu of %d", nv, WRITERS * APPENDS);
    bool in_order = true, growing = true, appends = true;
    for (size_t i = 0; i < nv; i++) {
        in_order &= vs[i].version == i + 1;
        growing &= vs[i].events == (i + 1) * EVENTS && (i == 0 || vs[i].size > vs[i - 1].size);
        appends &= vs[i].cause == AT_CAUSE_APPEND && vs[i].transcript_bytes == -1;
    }
    CHECK(in_order, "versions 1..%zu, none twice, none missing", nv);
    CHECK(growing, "each version holds %d more events and more bytes than the one before", EVENTS);
    CHECK(appends, "every version's cause is append");
    dbs_current cur;
    CHECK(dbs_current_get(d, "default", "cas-one", &cur, &err) == AT_OK && cur.version == nv,
          "the session's current version is the last: %llu", (unsigned long long)cur.version);

    /* the final object: a strict chain holding every event exactly once */
    mem m;
    at_buf_init(&m.b, 0);
    CHECK(nv && dbs_object_read(d, "default", vs[nv - 1].events_sha256, mem_write, &m, &err) == AT_OK,
          "read the last version: %s", err.message);
    at_verifier *v = at_verifier_new(AT_VERIFY_STRICT);
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    CHECK(v && at_verifier_feed(v, m.b.data ? m.b.data : "", m.b.len, &err) == AT_OK &&
              at_verifier_finish(v, &rep, &err) == AT_OK,
          "verify: %s", err.message);
    CHECK(rep.ok && rep.total_events == (uint64_t)WRITERS * APPENDS * EVENTS,
          "the chain holds all %d events and never forked: ok %d, %llu events, broken at %lld (%s)",
          WRITERS * APPENDS * EVENTS, rep.ok, (unsigned long long)rep.total_events, (long long)rep.broken_at,
          rep.reason);
    CHECK(nv && memcmp(rep.file_sha256, vs[nv - 1].events_sha256, AT_SHA256_LEN) == 0 &&
              rep.bytes == vs[nv - 1].size,
          "its bytes hash to the recorded SHA-256");
    CHECK(nv && rep.have_head && memcmp(rep.head, vs[nv - 1].head, AT_SHA256_LEN) == 0,
          "its last line is the recorded head");
    int missing = 0, twice = 0;
    for (int i = 0; i < WRITERS; i++)
        for (int a = 0; a < APPENDS; a++)
            for (int j = 0; j < EVENTS; j++) {
                char id[48];
                snprintf(id, sizeof id, "\"event_id\":\"w%d-%d-%d\"", i, a, j);
                const char *p = m.b.data ? strstr(m.b.data, id) : NULL; /* at_buf keeps a NUL after its bytes */
                missing += !p;
                twice += p && strstr(p + 1, id) != NULL;
            }
    CHECK(missing == 0 && twice == 0, "every appended event is there exactly once (%d missing, %d twice)", missing,
          twice);
    at_verify_report_fini(&rep);
    at_verifier_free(v);

    /* every version reads back to its recorded digest and size */
    int bad = 0;
    for (size_t i = 0; i < nv; i += 7) {
        mem one;
        at_buf_init(&one.b, 0);
        uint8_t sha[AT_SHA256_LEN];
        if (dbs_object_read(d, "default", vs[i].events_sha256, mem_write, &one, &err) != AT_OK)
            bad++;
        else {
            at_sha256_oneshot(one.b.data ? one.b.data : "", one.b.len, sha);
            bad += memcmp(sha, vs[i].events_sha256, AT_SHA256_LEN) != 0 || one.b.len != vs[i].size ||
                   one.b.len > m.b.len || memcmp(one.b.data, m.b.data, one.b.len) != 0;
        }
        at_buf_fini(&one.b);
    }
    CHECK(bad == 0, "every 7th version's object reads back to its SHA-256, as a prefix of the last (%d bad)", bad);

    /* the event index of a file must be of the object it names: bytes that
     * are not (a file edited in between) are refused, nothing indexed */
    char tmpl[] = "/tmp/test_dbstore.XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0 && m.b.len && write(fd, m.b.data, m.b.len) == (ssize_t)m.b.len, "write the object to a file");
    uint8_t wrong[AT_SHA256_LEN] = {0};
    if (nv)
        memcpy(wrong, vs[nv - 1].events_sha256, AT_SHA256_LEN);
    wrong[0] ^= 1;
    const char *sv[1] = {"cas-one"};
    const char *count_rows = "SELECT count(*) FROM event_index WHERE workspace = 'default' AND session = $1";
    PGresult *rows = db_query(d, count_rows, 1, sv, NULL, NULL, false, &err);
    char before[32] = "?";
    if (rows)
        snprintf(before, sizeof before, "%s", PQgetvalue(rows, 0, 0));
    PQclear(rows);
    CHECK(db_exec(d, "BEGIN", &err) == AT_OK, "begin: %s", err.message);
    at_result ir = dbi_index_file(d, "default", "cas-one", fd, m.b.len, wrong, &err);
    CHECK(ir == AT_ERR_CONFLICT, "indexing bytes that are not the named object: AT_ERR_CONFLICT (%d: %s)", ir,
          err.message);
    db_rollback(d);
    rows = db_query(d, count_rows, 1, sv, NULL, NULL, false, &err);
    CHECK(rows && strcmp(PQgetvalue(rows, 0, 0), before) == 0, "... rolled back, the rows are as they were (%s, %s)",
          before, rows ? PQgetvalue(rows, 0, 0) : err.message);
    PQclear(rows);
    CHECK(nv && db_exec(d, "BEGIN", &err) == AT_OK &&
              dbi_index_file(d, "default", "cas-one", fd, m.b.len, vs[nv - 1].events_sha256, &err) == AT_OK &&
              db_exec(d, "COMMIT", &err) == AT_OK,
          "indexing the object itself: %s", err.message);
    rows = db_query(d, count_rows, 1, sv, NULL, NULL, false, &err);
    CHECK(rows && strtoull(PQgetvalue(rows, 0, 0), NULL, 10) == (unsigned long long)WRITERS * APPENDS * EVENTS,
          "one row per line: %s", rows ? PQgetvalue(rows, 0, 0) : err.message);
    PQclear(rows);
    if (fd >= 0)
        close(fd);
    unlink(tmpl);
    at_buf_fini(&m.b);
    free(vs);

    /* ---- writers on different sessions ---- */
    make_session(d, "cas-two");
    writer a = {.id = 100, .sid = "cas-one", .quoted = "\"cas-one\""};
    writer b = {.id = 200, .sid = "cas-two", .quoted = "\"cas-two\""};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, write_loop, &a);
    pthread_create(&tb, NULL, write_loop, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.failures == 0 && b.failures == 0, "two sessions at once: %s %s", a.first_error, b.first_error);
    CHECK(dbs_current_get(d, "default", "cas-one", &cur, &err) == AT_OK &&
              cur.version == WRITERS * APPENDS + APPENDS,
          "the first session went on from where it was: %llu", (unsigned long long)cur.version);
    CHECK(dbs_current_get(d, "default", "cas-two", &cur, &err) == AT_OK && cur.version == APPENDS,
          "the second has its own %d versions: %llu", APPENDS, (unsigned long long)cur.version);

    /* ---- errors ---- */
    at_event_json one = {.event_type = AT_SLICE("\"decision\""), .timestamp = AT_SLICE("1.0"),
                         .event_id = AT_SLICE("\"x\""), .session_id = AT_SLICE("\"nope\""), .data = AT_SLICE("{}")};
    uint64_t ver = 0;
    unsigned r = 0;
    CHECK(dbs_append(d, "default", "nope", &one, 1, 1.0, &ver, &r, &err) == AT_ERR_NOT_FOUND,
          "an append to a session that does not exist: not found (%s)", err.message);
    bool created = true;
    CHECK(dbs_session_create(d, "default", "cas-two", "{}", 2, &created, &err) == AT_OK && !created,
          "creating a session that exists leaves it as it was");
    db_close(d);
    return t_done("test_dbstore");
}
