/* test_ledger.c - the store and its log together: which versions are still
 * to be logged when their "logged" records interleave with newer versions
 * (a session written to while it is being logged), and a ledger started
 * while writers run, stopped and started again: every version of every
 * session is in the log exactly once, at the index its record names. */
#include "agenttrace/ledger.h"
#include "agenttrace/note.h"
#include "agenttrace/store.h"
#include "agenttrace/tlog.h"
#include "testlib.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[PATH_MAX];

#define S(lit) ((at_slice){(lit), sizeof(lit) - 1})

/* Appends one event to sid: a new version; its number, or 0. */
static uint64_t append_one(at_store *s, const char *sid)
{
    char sj[128];
    snprintf(sj, sizeof sj, "\"%s\"", sid);
    at_event_json ev = {
        .event_type = S("\"decision\""),
        .timestamp = S("1.5"),
        .session_id = {sj, strlen(sj)},
        .data = S("{}"),
    };
    uint64_t v = 0;
    at_error err = {0};
    if (at_store_append(s, sid, &ev, 1, &v, &err) != AT_OK) {
        fprintf(stderr, "append %s: %s\n", sid, err.message);
        return 0;
    }
    return v;
}

typedef struct {
    uint64_t v[64];
    size_t n;
} seen;

static void collect(void *ctx, const char *sid, const at_version *v)
{
    (void)sid;
    seen *s = ctx;
    if (s->n < 64)
        s->v[s->n++] = v->version;
}

static bool unlogged_are(at_store *s, const char *sid, const uint64_t *want, size_t n)
{
    seen got = {0};
    at_error err = {0};
    if (at_store_each_unlogged(s, sid, collect, &got, &err) != AT_OK) {
        fprintf(stderr, "each_unlogged: %s\n", err.message);
        return false;
    }
    bool same = got.n == n;
    for (size_t i = 0; same && i < n; i++)
        same = got.v[i] == want[i];
    if (!same) {
        fprintf(stderr, "unlogged of %s:", sid);
        for (size_t i = 0; i < got.n; i++)
            fprintf(stderr, " %llu", (unsigned long long)got.v[i]);
        fputc('\n', stderr);
    }
    return same;
}

/* "logged" records written after newer versions: the newer ones are still
 * to be logged (a restart must find them). */
static void test_interleaved_records(at_store *s)
{
    const char *sid = "inter";
    at_error err = {0};
    CHECK(append_one(s, sid) == 1 && append_one(s, sid) == 2 && append_one(s, sid) == 3, "three versions");
    CHECK(unlogged_are(s, sid, (uint64_t[]){1, 2, 3}, 3), "none logged yet");
    CHECK(at_store_mark_logged(s, &(at_logged_mark){sid, 1, 0}, 1, &err) == AT_OK, "mark 1: %s", err.message);
    CHECK(unlogged_are(s, sid, (uint64_t[]){2, 3}, 2), "v1 logged after v2, v3 were written");
    CHECK(at_store_mark_logged(s, &(at_logged_mark){sid, 2, 1}, 1, &err) == AT_OK, "mark 2: %s", err.message);
    CHECK(append_one(s, sid) == 4, "fourth version");
    CHECK(unlogged_are(s, sid, (uint64_t[]){3, 4}, 2), "v3, v4 left");
    CHECK(at_store_mark_logged(s, &(at_logged_mark){sid, 3, 2}, 1, &err) == AT_OK, "mark 3: %s", err.message);
    CHECK(unlogged_are(s, sid, (uint64_t[]){4}, 1), "v4 left");
    CHECK(at_store_mark_logged(s, &(at_logged_mark){sid, 4, 3}, 1, &err) == AT_OK, "mark 4: %s", err.message);
    CHECK(unlogged_are(s, sid, NULL, 0), "all logged");
    uint64_t v, idx;
    for (uint64_t k = 1; k <= 4; k++)
        CHECK(at_store_logged_index(s, sid, k, &v, &idx, NULL) == AT_OK && idx == k - 1, "v%llu at %llu",
              (unsigned long long)k, (unsigned long long)(k - 1));
    CHECK(at_store_logged_index(s, sid, 0, &v, &idx, NULL) == AT_OK && v == 4 && idx == 3,
          "current: v4 at 3");
}

typedef struct {
    at_store *s;
    int id, rounds;
    int failures;
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    char sid[32];
    for (int i = 0; i < w->rounds; i++) {
        snprintf(sid, sizeof sid, "w%d-%d", w->id, i % 3);
        if (!append_one(w->s, sid))
            w->failures++;
    }
    return NULL;
}

/* Every version of every session w<id>-<k> (and "inter") is logged once:
 * the log's size is the number of versions, and the indexes are distinct. */
static void check_all_logged(at_store *s, at_tlog *log, int writers, const char *when)
{
    uint64_t total = 0;
    size_t cap = 4096, nidx = 0;
    uint64_t *idxs = calloc(cap, sizeof *idxs);
    bool all = true;
    for (int w = -1; w < writers; w++)
        for (int k = 0; k < (w < 0 ? 1 : 3); k++) {
            char sid[32];
            if (w < 0)
                snprintf(sid, sizeof sid, "inter");
            else
                snprintf(sid, sizeof sid, "w%d-%d", w, k);
            at_version *vs = NULL;
            size_t nv = 0;
            if (at_store_versions(s, sid, &vs, &nv, NULL) != AT_OK)
                continue;
            for (size_t i = 0; i < nv; i++) {
                uint64_t v, idx;
                total++;
                if (at_store_logged_index(s, sid, vs[i].version, &v, &idx, NULL) != AT_OK) {
                    if (all)
                        fprintf(stderr, "%s: %s v%llu not logged\n", when, sid,
                                (unsigned long long)vs[i].version);
                    all = false;
                } else if (nidx < cap) {
                    idxs[nidx++] = idx;
                }
            }
            free(vs);
        }
    CHECK(all, "%s: every version logged", when);
    CHECK(at_tlog_size(log) == total, "%s: log size %llu, versions %llu", when,
          (unsigned long long)at_tlog_size(log), (unsigned long long)total);
    bool distinct = true;
    for (size_t i = 0; distinct && i < nidx; i++)
        for (size_t j = i + 1; distinct && j < nidx; j++)
            distinct = idxs[i] != idxs[j];
    CHECK(distinct && nidx == total, "%s: %zu distinct indexes", when, nidx);
    free(idxs);
}

static void test_ledger_with_writers(at_store *s)
{
    at_error err = {0};
    char keyfile[PATH_MAX + 16];
    snprintf(keyfile, sizeof keyfile, "%s/log.key", root);
    at_note_signer *signer = at_ledger_key(keyfile, "test.example/log", true, &err);
    CHECK(signer != NULL, "key: %s", err.message);
    if (!signer)
        return;
    enum { WRITERS = 4, ROUNDS = 60 };
    writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){s, i, ROUNDS, 0};
        pthread_create(&th[i], NULL, write_loop, &w[i]);
    }
    /* started and stopped while the writers run: its startup scan races
     * their commits */
    at_ledger_options o = {.origin = "test.example/log", .signer = signer, .batch_ms = 1};
    for (int round = 0; round < 3; round++) {
        at_ledger *l = at_ledger_start(s, &o, &err);
        CHECK(l != NULL, "start %d: %s", round, err.message);
        if (!l)
            break;
        usleep(20000);
        at_ledger_stop(l);
    }
    int failures = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    CHECK(failures == 0, "%d appends failed", failures);
    /* a last start finds whatever no ledger saw */
    at_ledger *l = at_ledger_start(s, &o, &err);
    CHECK(l != NULL, "final start: %s", err.message);
    if (l) {
        check_all_logged(s, at_ledger_log(l), WRITERS, "after restarts");
        /* and a running ledger logs new versions as they come */
        uint64_t v = append_one(s, "w0-0"), idx;
        CHECK(v > 0 && at_ledger_wait(l, "w0-0", v, &idx, 5000, &err) == AT_OK, "new version logged: %s",
              err.message);
        check_all_logged(s, at_ledger_log(l), WRITERS, "running");
        at_buf cp;
        at_buf_init(&cp, 0);
        uint64_t size = 0;
        for (int i = 0; i < 200 && size < at_tlog_size(at_ledger_log(l)); i++) {
            at_buf_reset(&cp);
            if (at_ledger_checkpoint(l, &cp, &size) != AT_OK)
                size = 0;
            usleep(10000);
        }
        CHECK(size == at_tlog_size(at_ledger_log(l)), "checkpoint covers the log (%llu)",
              (unsigned long long)size);
        at_buf_fini(&cp);
        at_ledger_stop(l);
    }
    at_note_signer_free(signer);
}

/* A crash after a batch's entries were synced, before its "logged" records:
 * a start records them from the entries (which name session and version)
 * instead of logging the versions a second time. */
static void test_lost_records(at_store *s)
{
    at_error err = {0};
    char keyfile[PATH_MAX + 16], dir[PATH_MAX + 32];
    snprintf(keyfile, sizeof keyfile, "%s/log.key", root);
    snprintf(dir, sizeof dir, "%s/.agent-traced/log", root);
    at_note_signer *signer = at_ledger_key(keyfile, "test.example/log", false, &err);
    CHECK(signer != NULL, "key: %s", err.message);
    if (!signer)
        return;
    CHECK(append_one(s, "lost-\u00e9") == 1 && append_one(s, "lost-\u00e9") == 2, "two versions");
    at_version *vs = NULL;
    size_t nv = 0;
    CHECK(at_store_versions(s, "lost-\u00e9", &vs, &nv, &err) == AT_OK && nv == 2, "versions: %s", err.message);
    at_tlog *log = at_tlog_open(dir, &err);
    CHECK(log != NULL, "open the log: %s", err.message);
    uint64_t first = 0, size0 = log ? at_tlog_size(log) : 0;
    if (log && nv == 2) {
        at_buf e[2];
        at_slice sl[2];
        for (int i = 0; i < 2; i++) {
            at_buf_init(&e[i], 0);
            CHECK(at_store_log_entry("lost-\u00e9", &vs[i], &e[i]) == AT_OK, "entry");
            sl[i] = (at_slice){e[i].data, e[i].len};
        }
        CHECK(at_tlog_append(log, sl, 2, &first, &err) == AT_OK && first == size0, "append: %s", err.message);
        for (int i = 0; i < 2; i++)
            at_buf_fini(&e[i]);
    }
    at_tlog_free(log);
    free(vs);
    uint64_t v, idx;
    CHECK(at_store_logged_index(s, "lost-\u00e9", 1, &v, &idx, NULL) == AT_ERR_NOT_FOUND, "no record yet");
    at_ledger_options o = {.origin = "test.example/log", .signer = signer};
    at_ledger *l = at_ledger_start(s, &o, &err);
    CHECK(l != NULL, "start: %s", err.message);
    if (l) {
        for (uint64_t k = 1; k <= 2; k++)
            CHECK(at_store_logged_index(s, "lost-\u00e9", k, &v, &idx, NULL) == AT_OK && idx == first + k - 1,
                  "v%llu recorded at its entry %llu", (unsigned long long)k, (unsigned long long)(first + k - 1));
        CHECK(at_tlog_size(at_ledger_log(l)) == size0 + 2, "not logged twice (size %llu, want %llu)",
              (unsigned long long)at_tlog_size(at_ledger_log(l)), (unsigned long long)(size0 + 2));
        at_ledger_stop(l);
    }
    at_note_signer_free(signer);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/at-ledger-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 99;
    }
    at_error err = {0};
    at_store *s = at_store_open(root, &err);
    if (!s) {
        fprintf(stderr, "store: %s\n", err.message);
        return 99;
    }
    test_interleaved_records(s);
    /* the first session's records were marked by hand at indexes 0..3: a
     * ledger needs its own log, so start it on a fresh store */
    at_store_free(s);
    char cmd[2 * PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s'", root, root);
    if (system(cmd) != 0)
        return 99;
    s = at_store_open(root, &err);
    if (!s)
        return 99;
    CHECK(append_one(s, "inter") == 1, "fresh store");
    test_ledger_with_writers(s);
    test_lost_records(s);
    at_store_free(s);
    if (!t_failed) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", root);
    } else {
        fprintf(stderr, "storage left in %s\n", root);
    }
    return t_done("test_ledger");
}
