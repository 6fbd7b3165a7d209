/* test_dblog.c - the transparency log in the database (src/db/dblog.c)
 * against a real PostgreSQL (PGURL from tests/dbstore.sh; skipped, 77,
 * without it).
 *
 * Two sequencers on separate connections, as two replicas: only one leads;
 * killing the leader's connection hands the lead over; every checkpoint
 * either signed verifies with the log's key and is consistent with every
 * earlier one (RFC 9162 consistency proofs from the stored hashes); every
 * version's entry is at the index the database recorded and its inclusion
 * proof verifies against the last checkpoint; with writers appending while
 * the two sequencers race for the lead, every version ends up logged exactly
 * once. */
#include "testlib.h"

#include "db/dblog.h"
#include "db/dbstore.h"

#include "agenttrace/merkle.h"
#include "agenttrace/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORIGIN "test.example/dblog"
#define WS     "default"

static const char *url;
static at_note_signer *signer;
static at_note_verifier *verifier;

static void append(db *d, const char *sid, int n, int tag)
{
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"%s\"", sid);
    for (int i = 0; i < n; i++) {
        char id[48];
        snprintf(id, sizeof id, "\"e%d-%d\"", tag, i);
        at_event_json ev = {.event_type = AT_SLICE("\"decision\""),
                            .timestamp = AT_SLICE("2.0"),
                            .event_id = {id, strlen(id)},
                            .session_id = {quoted, strlen(quoted)},
                            .data = AT_SLICE("{}")};
        uint64_t v;
        unsigned r;
        at_error err = {0};
        CHECK(dbs_append(d, WS, sid, &ev, 1, 1.0, &v, &r, &err) == AT_OK, "append to %s: %s", sid, err.message);
    }
}

/* Opens the note and returns its checkpoint's size and root. */
static bool open_checkpoint(const at_buf *note, uint64_t *size, uint8_t root[AT_MERKLE_HASH_LEN])
{
    static __thread at_note n; /* about 11 KB */
    at_error err = {0};
    const at_note_verifier *known[1] = {verifier};
    if (at_note_open(note->data, note->len, known, 1, &n, &err) != AT_OK)
        return false;
    at_note_checkpoint cp;
    bool ok = at_note_checkpoint_parse(n.text, n.text_len, &cp, &err) == AT_OK && cp.origin_len == strlen(ORIGIN) &&
              memcmp(cp.origin, ORIGIN, cp.origin_len) == 0;
    if (ok) {
        *size = cp.size;
        memcpy(root, cp.root, AT_MERKLE_HASH_LEN);
    }
    return ok;
}

typedef struct {
    uint64_t size;
    uint8_t root[AT_MERKLE_HASH_LEN];
} seen_cp;

static seen_cp seen[4096];
static size_t nseen;

/* Records the latest checkpoint, checking it against every earlier one. */
static void observe(db *d, const char *when)
{
    at_buf note;
    at_buf_init(&note, 0);
    at_error err = {0};
    uint64_t size = 0, ssize;
    uint8_t root[AT_MERKLE_HASH_LEN];
    if (dblog_checkpoint(d, WS, &note, &size, &err) != AT_OK) {
        at_buf_fini(&note);
        return;
    }
    CHECK(open_checkpoint(&note, &ssize, root) && ssize == size, "%s: the checkpoint of %llu opens with the log's key",
          when, (unsigned long long)size);
    dblog_reader rd = {d, WS};
    int bad = 0;
    for (size_t i = 0; i < nseen; i++) {
        uint8_t proof[AT_MERKLE_MAX_PROOF * AT_MERKLE_HASH_LEN];
        size_t len = 0;
        if (seen[i].size > size ||
            at_merkle_prove_consistency(dblog_read_hashes, &rd, seen[i].size, size, proof, AT_MERKLE_MAX_PROOF,
                                        &len) != AT_OK ||
            at_merkle_verify_consistency(seen[i].size, size, proof, len, seen[i].root, root) != AT_OK)
            bad++;
    }
    CHECK(bad == 0, "%s: the checkpoint of %llu is consistent with the %zu seen before (%d not)", when,
          (unsigned long long)size, nseen, bad);
    if (nseen < sizeof seen / sizeof *seen) {
        seen[nseen].size = size;
        memcpy(seen[nseen].root, root, AT_MERKLE_HASH_LEN);
        nseen++;
    }
    at_buf_fini(&note);
}

/* ---- two sequencers racing while writers append ---- */

static volatile int stop_racing;

typedef struct {
    int id;
    unsigned rounds_led, takeovers;
    int errors;
} racer;

static void *race(void *arg)
{
    racer *rc = arg;
    dblog_config c = {WS, ORIGIN, signer};
    while (!stop_racing) {
        at_error err = {0};
        db *d = db_connect(url, &err);
        if (!d) {
            rc->errors++;
            continue;
        }
        /* lead for a few rounds, then "die" (close the connection); the
         * first round this connection leads is a takeover (the previous
         * holder's lock may be released a few tries after it closed) */
        bool led = false;
        for (int round = 0; round < 5 && !stop_racing; round++) {
            bool lead = false;
            if (dblog_try_lead(d, WS, &lead, &err) != AT_OK) {
                rc->errors++;
                break;
            }
            if (lead) {
                uint64_t logged, size;
                if (!led)
                    rc->takeovers++;
                led = true;
                if (dblog_sequence(d, &c, 50, &logged, &size, &err) != AT_OK)
                    rc->errors++;
                rc->rounds_led++;
            }
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        db_close(d);
    }
    return NULL;
}

static void *writer_loop(void *arg)
{
    int id = *(int *)arg;
    at_error err = {0};
    db *d = db_connect(url, &err);
    if (!d)
        return NULL;
    char sid[32];
    snprintf(sid, sizeof sid, "race-%d", id);
    bool created;
    if (dbs_session_create(d, WS, sid, "{}", 2, &created, &err) == AT_OK)
        append(d, sid, 40, 1000 + id);
    db_close(d);
    return NULL;
}

int main(void)
{
    url = getenv("PGURL");
    if (!url || !*url) {
        printf("SKIP: PGURL is not set (tests/dbstore.sh starts a cluster)\n");
        return 77;
    }
    at_error err = {0};
    at_buf skey, vkey;
    at_buf_init(&skey, 0);
    at_buf_init(&vkey, 0);
    CHECK(at_note_keygen(ORIGIN, strlen(ORIGIN), AT_NOTE_ED25519, &skey, &vkey, &err) == AT_OK &&
              at_note_signer_new(skey.data, skey.len, AT_NOTE_ED25519, &signer, &err) == AT_OK &&
              at_note_verifier_new(vkey.data, vkey.len, &verifier, &err) == AT_OK,
          "a log key: %s", err.message);
    db *a = db_connect(url, &err), *b = a ? db_connect(url, &err) : NULL;
    CHECK(a && b, "two connections: %s", err.message);
    if (!a || !b || !signer)
        return t_done("test_dblog");
    dblog_config c = {WS, ORIGIN, signer};

    /* sessions with versions to log */
    bool created;
    CHECK(dbs_session_create(a, WS, "log-s1", "{}", 2, &created, &err) == AT_OK, "session 1");
    CHECK(dbs_session_create(a, WS, "log-s2", "{}", 2, &created, &err) == AT_OK, "session 2");
    append(a, "log-s1", 5, 1);
    append(a, "log-s2", 3, 2);

    /* one leader at a time */
    bool lead_a = false, lead_b = true;
    CHECK(dblog_try_lead(a, WS, &lead_a, &err) == AT_OK && lead_a, "the first sequencer leads");
    CHECK(dblog_try_lead(b, WS, &lead_b, &err) == AT_OK && !lead_b, "the second one waits");
    uint64_t logged = 0, size = 0;
    CHECK(dblog_sequence(a, &c, 1000, &logged, &size, &err) == AT_OK && logged == 8 && size == 8,
          "the leader logs the 8 versions: %llu, size %llu (%s)", (unsigned long long)logged, (unsigned long long)size,
          err.message);
    observe(b, "first round");
    CHECK(dblog_sequence(a, &c, 1000, &logged, &size, &err) == AT_OK && logged == 0 && size == 8,
          "a round with nothing new logs nothing");

    /* each entry is the directory ledger's, at its recorded index, and
     * included in the checkpoint */
    at_buf note;
    at_buf_init(&note, 0);
    uint64_t cps = 0, cps2;
    uint8_t root[AT_MERKLE_HASH_LEN];
    CHECK(dblog_checkpoint(b, WS, &note, &cps, &err) == AT_OK && open_checkpoint(&note, &cps2, root),
          "the checkpoint is served from any connection");
    dblog_reader rd = {b, WS};
    int bad = 0, checked = 0;
    const char *sids[2] = {"log-s1", "log-s2"};
    for (int s = 0; s < 2; s++) {
        at_version *vs = NULL;
        size_t nv = 0;
        CHECK(dbs_versions(b, WS, sids[s], &vs, &nv, &err) == AT_OK, "versions of %s", sids[s]);
        for (size_t i = 0; i < nv; i++) {
            uint64_t idx = 0;
            at_buf e;
            at_buf_init(&e, 0);
            uint8_t leaf[AT_MERKLE_HASH_LEN], proof[AT_MERKLE_MAX_PROOF * AT_MERKLE_HASH_LEN];
            size_t len = 0;
            checked++;
            bad += dblog_index(b, WS, sids[s], vs[i].version, &idx, &err) != AT_OK ||
                   at_store_log_entry(sids[s], &vs[i], &e) != AT_OK ||
                   at_merkle_leaf_hash(e.data, e.len, leaf) != AT_OK ||
                   at_merkle_prove_inclusion(dblog_read_hashes, &rd, idx, cps, proof, AT_MERKLE_MAX_PROOF, &len) !=
                       AT_OK ||
                   at_merkle_verify_inclusion(idx, cps, leaf, proof, len, root) != AT_OK;
            at_buf_fini(&e);
        }
        free(vs);
    }
    CHECK(bad == 0 && checked == 8, "every version's entry is included at its index (%d of %d bad)", bad, checked);
    at_buf_fini(&note);

    /* the leader dies: the other takes over and goes on from the log */
    append(b, "log-s1", 4, 3);
    db_close(a);
    lead_b = false;
    /* the server notices the closed connection a moment later (longer
     * under the sanitizers): try for up to 10 s */
    for (int i = 0; i < 400 && !lead_b; i++) {
        CHECK(dblog_try_lead(b, WS, &lead_b, &err) == AT_OK, "try: %s", err.message);
        if (!lead_b) {
            struct timespec ts = {0, 25 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(lead_b, "after the leader's connection closed, the second one leads");
    CHECK(dblog_sequence(b, &c, 1000, &logged, &size, &err) == AT_OK && logged == 4 && size == 12,
          "the new leader logs the 4 new versions after the 8: size %llu", (unsigned long long)size);
    observe(b, "after the takeover");

    /* writers and two sequencers that keep dying and taking over */
    pthread_t rt[2], wt[6];
    racer rc[2] = {{.id = 0}, {.id = 1}};
    int ids[6];
    db_close(b); /* let the racers lead */
    for (int i = 0; i < 2; i++)
        pthread_create(&rt[i], NULL, race, &rc[i]);
    for (int i = 0; i < 6; i++) {
        ids[i] = i;
        pthread_create(&wt[i], NULL, writer_loop, &ids[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(wt[i], NULL);
    /* let them log the rest */
    db *o = db_connect(url, &err);
    for (int i = 0; i < 400 && o; i++) {
        const char *vals[1] = {WS};
        PGresult *r = db_query(o, "SELECT count(*) FROM versions WHERE workspace = $1 AND log_index IS NULL", 1, vals,
                               NULL, NULL, false, &err);
        bool done = r && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
        PQclear(r);
        if (i % 20 == 0)
            observe(o, "while racing");
        if (done)
            break;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    stop_racing = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);
    printf("# racing: sequencer 0 led %u rounds (%u times taking over), sequencer 1 led %u (%u)\n", rc[0].rounds_led,
           rc[0].takeovers, rc[1].rounds_led, rc[1].takeovers);
    CHECK(rc[0].errors == 0 && rc[1].errors == 0, "no sequencer round failed (%d, %d)", rc[0].errors, rc[1].errors);
    CHECK(rc[0].takeovers + rc[1].takeovers >= 2, "the lead changed hands (%u takeovers)",
          rc[0].takeovers + rc[1].takeovers);
    /* the remaining unlogged versions, if the racers stopped early */
    /* a racer's closed connection releases its lock once the server has
     * noticed the disconnect: try for a while */
    bool lead = false;
    for (int i = 0; o && i < 200 && !lead; i++) {
        if (dblog_try_lead(o, WS, &lead, &err) != AT_OK || lead)
            break;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(o && lead, "a last leader");
    CHECK(o && dblog_sequence(o, &c, 100000, &logged, &size, &err) == AT_OK, "a last round");
    observe(o, "at the end");
    PGresult *r = o ? db_query(o,
                               "SELECT count(*), count(DISTINCT log_index), min(log_index), max(log_index), "
                               "count(*) FILTER (WHERE log_index IS NULL) FROM versions WHERE workspace = 'default'",
                               0, NULL, NULL, NULL, false, &err)
                    : NULL;
    CHECK(r && strcmp(PQgetvalue(r, 0, 0), "252") == 0 && strcmp(PQgetvalue(r, 0, 1), "252") == 0 &&
              strcmp(PQgetvalue(r, 0, 2), "0") == 0 && strcmp(PQgetvalue(r, 0, 3), "251") == 0 &&
              strcmp(PQgetvalue(r, 0, 4), "0") == 0,
          "all 252 versions are logged, each once, at indices 0..251: %s versions, %s distinct, %s..%s, %s unlogged",
          r ? PQgetvalue(r, 0, 0) : "?", r ? PQgetvalue(r, 0, 1) : "?", r ? PQgetvalue(r, 0, 2) : "?",
          r ? PQgetvalue(r, 0, 3) : "?", r ? PQgetvalue(r, 0, 4) : "?");
    PQclear(r);
    CHECK(size == 252, "the log's size is 252: %llu", (unsigned long long)size);
    db_close(o);
    at_note_signer_free(signer);
    at_note_verifier_free(verifier);
    at_buf_fini(&skey);
    at_buf_fini(&vkey);
    return t_done("test_dblog");
}
