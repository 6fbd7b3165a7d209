/* ledger_db.c - the transparency log of a database store (`serve
 * --database`): ledger.c's public functions hand over to these when the
 * store is a database.
 *
 * Every replica runs a sequencer thread; exactly one of them sequences at
 * a time, the one whose connection holds the workspace's advisory lock
 * (db/dblog.h). It looks for versions not logged yet every SEQ_TICK_MS,
 * logs them and signs a checkpoint, all in one transaction; when it dies,
 * or loses its connection, the lock goes with it and the next replica's
 * tick takes over from the committed log, so checkpoints stay consistent
 * across the takeover. Every replica serves checkpoints, tiles, bundles
 * and proofs from the database: they are the same whichever replica
 * answers. */
#include "ledger_int.h"

#include "db/dblog.h"
#include "log_line.h"
#include "db/dbstore.h"

#include "agenttrace/merkle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEQ_TICK_MS 100
#define SEQ_BATCH   10000

struct ledger_db {
    at_ledger *owner; /* its witnesses */
    at_store *store;
    char *origin;
    const at_note_signer *signer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool held; /* until ledger_db_release */
    pthread_t thread;
    bool running;
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The sequencer's latest checkpoint to the witnesses, unless every one
 * cosigned it already; the note with their cosignatures replaces it. */
static void cosign_latest(struct ledger_db *l, db *d, const char *ws, uint64_t *cosigned)
{
    at_buf note, out;
    at_buf_init(&note, 0);
    at_buf_init(&out, 0);
    uint64_t size;
    at_error err = {0};
    if (dblog_checkpoint(d, ws, &note, &size, &err) == AT_OK && size != *cosigned) {
        const char *blank = memmem(note.data, note.len, "\n\n", 2);
        size_t text_len = blank ? (size_t)(blank + 1 - note.data) : note.len;
        /* the bare note: its text and the log's own signature line */
        const char *sig_end = blank ? memchr(blank + 2, '\n', note.len - (size_t)(blank + 2 - note.data)) : NULL;
        size_t stored = note.len;
        if (sig_end)
            note.len = (size_t)(sig_end + 1 - note.data);
        bool all = ledger_cosign(l->owner, &note, text_len, size, &out);
        bool changed = out.len != stored || memcmp(out.data, note.data, stored) != 0;
        if (out.len > note.len && changed && dblog_checkpoint_set(d, ws, size, &out, &err) != AT_OK)
            log_line("agent-traced: log: workspace %s: cannot store the cosigned checkpoint: %s", ws,
                    err.message);
        else if (all)
            *cosigned = size;
    }
    at_buf_fini(&note);
    at_buf_fini(&out);
}

static void *sequencer(void *arg)
{
    struct ledger_db *l = arg;
    db *lead = NULL; /* the connection that holds (or tries for) the lock */
    bool leading = false;
    uint64_t cosigned = UINT64_MAX; /* the size whose checkpoint every witness cosigned */
    dblog_config c = {sdb_ws(l->store), l->origin, l->signer};
    pthread_mutex_lock(&l->mu);
    while (l->held && !l->stop)
        pthread_cond_wait(&l->cv, &l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        at_error err = {0};
        if (!lead && !(lead = db_connect(sdb_url(l->store), &err)))
            leading = false;
        bool now = false;
        if (lead && dblog_try_lead(lead, c.ws, &now, &err) != AT_OK) {
            db_close(lead); /* the lock goes with it */
            lead = NULL;
            now = false;
        }
        if (now && !leading) {
            log_line("agent-traced: log: workspace %s: this replica sequences the transparency log", c.ws);
            cosigned = UINT64_MAX; /* what the last sequencer got is not known here */
        }
        leading = now;
        uint64_t logged, size;
        if (leading && dblog_sequence(lead, &c, SEQ_BATCH, &logged, &size, &err) != AT_OK) {
            log_line("agent-traced: log: workspace %s: sequencing failed: %s", c.ws, err.message);
            db_close(lead);
            lead = NULL;
            leading = false;
        }
        if (leading && ledger_witnesses(l->owner))
            cosign_latest(l, lead, c.ws, &cosigned);
        pthread_mutex_lock(&l->mu);
        if (!l->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += SEQ_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
    }
    pthread_mutex_unlock(&l->mu);
    db_close(lead);
    return NULL;
}

struct ledger_db *ledger_db_start(at_ledger *owner, at_store *s, const at_ledger_options *o, at_error *err)
{
    struct ledger_db *l = calloc(1, sizeof *l);
    if (!l || !(l->origin = strdup(o->origin))) {
        free(l);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    l->owner = owner;
    l->store = s;
    l->signer = o->signer;
    l->held = o->held;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, sequencer, l) != 0) {
        ledger_db_stop(l);
        at_error_set(err, AT_ERR_IO, -1, "cannot start the log's sequencer");
        return NULL;
    }
    l->running = true;
    return l;
}

void ledger_db_release(struct ledger_db *l)
{
    pthread_mutex_lock(&l->mu);
    l->held = false;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void ledger_db_stop(struct ledger_db *l)
{
    if (!l)
        return;
    if (l->running) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->origin);
    free(l);
}

at_result ledger_db_checkpoint(struct ledger_db *l, at_buf *out, uint64_t *size)
{
    at_error err = {0};
    db *d = sdb_take(l->store, &err);
    if (!d)
        return err.code;
    at_result r = dblog_checkpoint(d, sdb_ws(l->store), out, size, &err);
    sdb_give(l->store, d);
    return r;
}

at_result ledger_db_wait(struct ledger_db *l, const char *sid, uint64_t v, uint64_t *index, unsigned timeout_ms,
                         at_error *err)
{
    uint64_t got;
    at_result r;
    for (unsigned waited = 0;; waited += 20) {
        r = at_store_logged_index(l->store, sid, v, &got, index, err);
        if (r != AT_ERR_NOT_FOUND || waited >= timeout_ms)
            return r;
        sleep_ms(20);
    }
}

bool ledger_db_wait_signed(struct ledger_db *l, uint64_t index, unsigned timeout_ms)
{
    for (unsigned waited = 0;; waited += 20) {
        at_buf cp;
        at_buf_init(&cp, 0);
        uint64_t size = 0;
        bool ok = ledger_db_checkpoint(l, &cp, &size) == AT_OK && size > index;
        at_buf_fini(&cp);
        if (ok || waited >= timeout_ms)
            return ok;
        sleep_ms(20);
    }
}

at_result ledger_db_hashes_proof(struct ledger_db *l, bool consistency, uint64_t a, uint64_t size,
                                 uint8_t (**proof)[AT_SHA256_LEN], size_t *n, at_error *err)
{
    *proof = NULL;
    *n = 0;
    if (consistency ? a > size : a >= size)
        return at_error_set(err, consistency ? AT_ERR_INVALID : AT_ERR_NOT_FOUND, -1, "log: %llu is not in a tree of %llu",
                            (unsigned long long)a, (unsigned long long)size);
    db *d = sdb_take(l->store, err);
    if (!d)
        return err->code;
    dblog_reader rd = {d, sdb_ws(l->store)};
    uint8_t(*p)[AT_SHA256_LEN] = malloc(128 * AT_SHA256_LEN);
    at_result r = p ? (consistency ? at_merkle_prove_consistency(dblog_read_hashes, &rd, a, size, (uint8_t *)p, 128, n)
                                   : at_merkle_prove_inclusion(dblog_read_hashes, &rd, a, size, (uint8_t *)p, 128, n))
                    : AT_ERR_NOMEM;
    sdb_give(l->store, d);
    if (r != AT_OK) {
        free(p);
        return at_error_set(err, r, -1, "log: cannot prove %llu in %llu", (unsigned long long)a,
                            (unsigned long long)size);
    }
    *proof = p;
    return AT_OK;
}

at_result ledger_db_tile(struct ledger_db *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out)
{
    bool entries = level == AT_MERKLE_TILE_ENTRIES;
    if (w == 0 || w > 256 || (!entries && (level < 0 || level > AT_TLOG_MAX_LEVEL / 8)))
        return AT_ERR_INVALID;
    uint64_t have = entries ? size : level * 8 >= 64 ? 0 : size >> (8 * level);
    if (n > (UINT64_MAX - w) / 256 || n * 256 + w > have)
        return AT_ERR_NOT_FOUND;
    at_error err = {0};
    db *d = sdb_take(l->store, &err);
    if (!d)
        return err.code;
    at_result r;
    if (entries) {
        r = dblog_entries(d, sdb_ws(l->store), n * 256, w, true, out, &err);
    } else if ((r = at_buf_reserve(out, (size_t)w * AT_SHA256_LEN)) == AT_OK) {
        dblog_reader rd = {d, sdb_ws(l->store)};
        if ((r = dblog_read_hashes(&rd, 8 * level, n * 256, w, (uint8_t *)out->data + out->len)) == AT_OK) {
            out->len += (size_t)w * AT_SHA256_LEN;
            out->data[out->len] = 0;
        }
    }
    sdb_give(l->store, d);
    return r;
}

at_result ledger_db_proof(struct ledger_db *l, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                          uint64_t *version, at_error *err)
{
    db *d;
    at_buf cp, entry;
    at_buf_init(&cp, 0);
    at_buf_init(&entry, 0);
    uint64_t size = 0;
    at_result r = at_store_logged_index(l->store, sid, v, version, index, err);
    if (r == AT_OK)
        (void)ledger_db_wait_signed(l, *index, 2000); /* logged a moment ago: signed moments after */
    if (r == AT_OK && ledger_db_checkpoint(l, &cp, &size) != AT_OK)
        r = at_error_set(err, AT_ERR_NOT_FOUND, -1, "no checkpoint signed yet");
    if (r == AT_OK && *index >= size)
        r = at_error_set(err, AT_ERR_NOT_FOUND, -1, "version %llu of %s is not in a signed checkpoint yet",
                         (unsigned long long)*version, sid);
    if (r == AT_OK && (d = sdb_take(l->store, err))) {
        r = dblog_entries(d, sdb_ws(l->store), *index, 1, false, &entry, err);
        sdb_give(l->store, d);
    } else if (r == AT_OK) {
        r = err->code;
    }
    uint8_t(*proof)[AT_SHA256_LEN] = NULL;
    size_t n = 0;
    if (r == AT_OK)
        r = ledger_db_hashes_proof(l, false, *index, size, &proof, &n, err);
    if (r == AT_OK)
        r = ledger_proof_text(&entry, *index, proof, n, &cp, out);
    free(proof);
    at_buf_fini(&cp);
    at_buf_fini(&entry);
    return r;
}
