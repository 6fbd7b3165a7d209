/* ledger.c - a store's transparency log (ledger.h): the integration thread,
 * checkpoints, proofs. */
#include "agenttrace/ledger.h"

#include "agenttrace/catalog.h"
#include "agenttrace/merkle.h"
#include "agenttrace/witness.h"
#include "log_line.h"
#include "ledger_int.h"

#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BATCH 4096

typedef struct item {
    struct item *next;
    char *sid;
    at_version v; /* version 0: look for the session's unlogged versions */
} item;

struct at_ledger {
    struct ledger_db *db; /* non-NULL: a database store's log (ledger_db.c); nothing below is used */
    at_store *store;
    at_tlog *log;
    char dir[PATH_MAX];
    char *origin;
    const at_note_signer *signer;
    unsigned batch_ms;
    struct at_catalog *catalog;

    pthread_mutex_t mu;
    pthread_cond_t work; /* the queue got something, or stop */
    pthread_cond_t done; /* a batch was integrated */
    item *head, *tail;
    bool stop;
    pthread_t thread;
    bool running;
    bool registered;   /* fed by the store's version callback */
    at_buf checkpoint; /* the latest signed one, with the cosignatures it got */
    uint64_t signed_size;
    bool have_checkpoint;
    uint64_t batches; /* integrated so far: waiters look again after each */

    /* witnesses: touched by the integration thread only (and start) */
    struct witness *wit;
    size_t n_wit;
    unsigned wit_timeout_ms;
    CURLM *multi; /* its connection cache keeps the witnesses' connections alive between rounds */
    struct curl_slist *headers;
    at_buf bare;      /* the latest checkpoint as the log signed it, no cosignatures */
    size_t bare_text; /* bytes of its note text */
    uint64_t bare_size;
};

static void feed(void *ctx, const char *sid, const at_version *v);

/* ---- the queue ------------------------------------------------------------------------ */

static void enqueue(at_ledger *l, const char *sid, const at_version *v)
{
    item *it = calloc(1, sizeof *it);
    if (!it || !(it->sid = strdup(sid))) {
        free(it);
        return; /* found again by the next scan of that session */
    }
    if (v)
        it->v = *v;
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
}

static void feed(void *ctx, const char *sid, const at_version *v)
{
    enqueue(ctx, sid, v);
}

void at_ledger_check(at_ledger *l, const char *sid)
{
    if (l->db)
        return; /* the sequencer finds every version in the database */
    enqueue(l, sid, NULL);
}

static void drained(void *ctx, const char *sid)
{
    at_ledger_check(ctx, sid);
}

/* ---- recovery ------------------------------------------------------------------------------ */

typedef struct {
    char *sid;
    at_version v;
} batch_item;

/* The session and version an entry names (tlog.md): its "session" line is
 * the id as JSON, its "version" line the number. */
static at_result entry_names(const at_buf *e, at_json_doc *d, at_buf *sid, uint64_t *version)
{
    const char *p = e->data, *end = e->data + e->len;
    bool have_sid = false, have_v = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 8 && memcmp(p, "session ", 8) == 0) {
            at_buf_reset(sid);
            have_sid = at_json_parse(d, p + 8, (size_t)(nl - p - 8), NULL) == AT_OK &&
                       at_json_is(d, 0, AT_JSON_STRING) && at_json_str_decode(d, 0, sid) == AT_OK;
        } else if ((size_t)(nl - p) > 8 && memcmp(p, "version ", 8) == 0) {
            char *stop;
            errno = 0;
            *version = strtoull(p + 8, &stop, 10);
            have_v = errno == 0 && stop == nl;
        }
        p = nl + 1;
    }
    return have_sid && have_v ? AT_OK : AT_ERR_INVALID;
}

/* A crash between a batch's entries and its "logged" records: the entries
 * after the last checkpoint (whose records were durable before it was
 * signed) name the versions they belong to; record those not recorded. */
static at_result finish_batch(at_ledger *l, at_error *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/intent", l->dir);
    unlink(p); /* what versions before 0.9 wrote; the entries say the same */
    uint64_t size = at_tlog_size(l->log);
    at_buf e, sid;
    at_buf_init(&e, AT_TLOG_MAX_ENTRY);
    at_buf_init(&sid, 0);
    at_json_doc d;
    at_json_doc_init(&d);
    at_result r = AT_OK;
    for (uint64_t i = l->signed_size; r == AT_OK && i < size; i++) {
        uint64_t v = 0, got_v, got_i;
        at_buf_reset(&e);
        if ((r = at_tlog_entry(l->log, i, &e, err)) != AT_OK)
            break;
        if (entry_names(&e, &d, &sid, &v) != AT_OK) {
            r = at_error_set(err, AT_ERR_INVALID, -1, "log: entry %llu in %s is not a head entry",
                             (unsigned long long)i, l->dir);
            break;
        }
        if (at_store_logged_index(l->store, sid.data, v, &got_v, &got_i, NULL) != AT_OK)
            r = at_store_mark_logged(l->store, &(at_logged_mark){sid.data, v, i}, 1, err);
    }
    at_json_doc_fini(&d);
    at_buf_fini(&sid);
    at_buf_fini(&e);
    return r;
}

/* ---- witnesses (c2sp.org/tlog-witness) ---------------------------------------------------- */

#define CHECKPOINT_MAX         (64u * 1024) /* a checkpoint with its cosignatures, as load_checkpoint reads it */
#define WITNESS_BACKOFF_MIN_MS 1000
#define WITNESS_BACKOFF_MAX_MS 60000
#define WITNESS_CONNECT_MS     1000

typedef struct witness {
    char *url; /* <prefix>/add-checkpoint */
    const at_note_verifier *v;
    CURL *c;       /* one handle for its life (keep-alive, as tlog-witness recommends) */
    char *key;     /* "name+id", for the log lines */
    uint64_t size; /* the size it last cosigned for us, as far as we know (0: it tells us) */
    at_buf line;   /* its cosignature of the published checkpoint, when has_line */
    bool has_line;
    bool down;         /* the last attempt got no answer: new checkpoints wait for retry_ms too */
    uint64_t retry_ms; /* monotonic: not asked again before (after a failure) */
    unsigned backoff_ms;
    bool again; /* this round: a 409 told its size; ask again with it */
} witness;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void witness_failed(witness *w, bool down, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs why w gave no cosignature and backs off (1 s doubling to 60 s). */
static void witness_failed(witness *w, bool down, const char *fmt, ...)
{
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : WITNESS_BACKOFF_MIN_MS;
    if (w->backoff_ms > WITNESS_BACKOFF_MAX_MS)
        w->backoff_ms = WITNESS_BACKOFF_MAX_MS;
    w->retry_ms = mono_ms() + w->backoff_ms;
    w->down = down;
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    log_line("agent-traced: log: witness %s (%s): %s; published without its cosignature, asking again %s%u s", w->key,
             w->url, m, down ? "in " : "with the next checkpoint or in ", w->backoff_ms / 1000);
}

/* The first line of an answer, printable, for a log line. */
static void answer_excerpt(const at_buf *b, char *out, size_t cap)
{
    size_t i = 0;
    for (; b->data && i < b->len && i + 1 < cap && b->data[i] != '\n'; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = 0;
}

static size_t answer_sink(char *p, size_t size, size_t n, void *ud)
{
    return at_buf_add(ud, p, size * n) == AT_OK ? size * n : 0; /* over the cap: the transfer fails */
}

typedef struct {
    witness *w;
    at_buf req, ans;
    uint64_t old;
    CURLcode done;
    bool finished;
} submission;

/* Reads a finished submission's answer. */
static void submission_end(at_ledger *l, submission *s)
{
    witness *w = s->w;
    long status = 0;
    if (!s->finished || s->done != CURLE_OK) {
        witness_failed(w, true, "no answer: %s", s->finished ? curl_easy_strerror(s->done) : "timed out");
        return;
    }
    curl_easy_getinfo(w->c, CURLINFO_RESPONSE_CODE, &status);
    at_error err = {0};
    char ex[200];
    answer_excerpt(&s->ans, ex, sizeof ex);
    if (status == 200) {
        uint64_t ts = 0;
        at_buf_reset(&w->line);
        if (at_witness_cosig_check(l->bare.data, l->bare_text, s->ans.data ? s->ans.data : "", s->ans.len,
                                   w->v, &w->line, &ts, &err) != AT_OK) {
            witness_failed(w, false, "its answer carries no valid cosignature: %s", err.message);
            return;
        }
        if (w->backoff_ms)
            log_line("agent-traced: log: witness %s cosigns again (size %llu)", w->key,
                    (unsigned long long)l->bare_size);
        w->has_line = true;
        w->size = l->bare_size;
        w->down = false;
        w->backoff_ms = 0;
        w->retry_ms = 0;
        return;
    }
    uint64_t theirs;
    if (status == 409 &&
        at_witness_size_parse(s->ans.data ? s->ans.data : "", s->ans.len, &theirs) == AT_OK) {
        if (theirs == s->old) /* tlog-witness: same size, another root */
            witness_failed(
                w, false,
                "409: it cosigned another tree of size %llu: this log's checkpoints are not consistent "
                "with what it cosigned (a fork, or a rolled-back storage)",
                (unsigned long long)theirs);
        else if (theirs > l->bare_size)
            witness_failed(w, false,
                           "409: it cosigned size %llu, more than this log's %llu (a rolled-back storage, or "
                           "another log with this origin)",
                           (unsigned long long)theirs, (unsigned long long)l->bare_size);
        else
            w->again = true; /* the usual first exchange: it tells its size */
        w->size = theirs;
        return;
    }
    witness_failed(w, false, "refused the checkpoint of size %llu (old %llu): HTTP %ld: %s",
                   (unsigned long long)l->bare_size, (unsigned long long)s->old, status, ex);
}

/* One round: the bare checkpoint to each witness with want[i] set, in
 * parallel, until every answer is in or deadline_ms (monotonic) passes. */
static void submit_round(at_ledger *l, const bool *want, uint64_t deadline_ms)
{
    CURLM *m = l->multi;
    submission *subs = calloc(l->n_wit, sizeof *subs);
    size_t n = 0;
    uint64_t now = mono_ms();
    long left = deadline_ms > now ? (long)(deadline_ms - now) : 1;
    for (size_t i = 0; subs && i < l->n_wit; i++) {
        witness *w = &l->wit[i];
        if (!want[i])
            continue;
        w->again = false;
        if (w->size > l->bare_size) {
            witness_failed(w, false, "it cosigned size %llu, more than this log's %llu",
                           (unsigned long long)w->size, (unsigned long long)l->bare_size);
            continue;
        }
        submission *s = &subs[n];
        s->w = w;
        s->old = w->size;
        at_buf_init(&s->req, 0);
        at_buf_init(&s->ans, AT_WITNESS_MAX_ANSWER);
        uint8_t(*proof)[AT_SHA256_LEN] = NULL;
        size_t np = 0;
        at_error err = {0};
        at_result r = s->old > 0 && s->old < l->bare_size
                          ? at_ledger_consistency(l, s->old, l->bare_size, &proof, &np, &err)
                          : AT_OK;
        if (r == AT_OK && (r = at_witness_request_format(s->old, (const uint8_t(*)[AT_NOTE_HASH_LEN])proof,
                                                         np, l->bare.data, l->bare.len, &s->req)) != AT_OK)
            at_error_set(&err, r, -1, "cannot build the request");
        free(proof);
        if (r != AT_OK) {
            witness_failed(w, false, "cannot submit: %s", err.message);
            at_buf_fini(&s->req);
            at_buf_fini(&s->ans);
            continue;
        }
        curl_easy_setopt(w->c, CURLOPT_POSTFIELDS, s->req.data);
        curl_easy_setopt(w->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->req.len);
        curl_easy_setopt(w->c, CURLOPT_WRITEDATA, &s->ans);
        curl_easy_setopt(w->c, CURLOPT_PRIVATE, s);
        curl_easy_setopt(w->c, CURLOPT_TIMEOUT_MS, left);
        curl_easy_setopt(w->c, CURLOPT_CONNECTTIMEOUT_MS,
                         left < WITNESS_CONNECT_MS ? left : WITNESS_CONNECT_MS);
        if (curl_multi_add_handle(m, w->c) != CURLM_OK) {
            witness_failed(w, false, "cannot submit: libcurl refused the transfer");
            at_buf_fini(&s->req);
            at_buf_fini(&s->ans);
            continue;
        }
        n++;
    }
    int running = 1;
    while (n && running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)))
            if (msg->msg == CURLMSG_DONE) {
                submission *s = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                if (s) {
                    s->finished = true;
                    s->done = msg->data.result;
                }
            }
        if (running && mono_ms() > deadline_ms + 100)
            break; /* the handles' own timeouts should have ended them */
        if (running)
            curl_multi_wait(m, NULL, 0, 50, NULL); /* curl_multi_poll needs 7.66; configure asks 7.60 */
    }
    for (size_t i = 0; i < n; i++) {
        submission *s = &subs[i];
        submission_end(l, s);
        curl_multi_remove_handle(m, s->w->c); /* the connection stays in m's cache */
        at_buf_fini(&s->req);
        at_buf_fini(&s->ans);
    }
    if (!subs)
        for (size_t i = 0; i < l->n_wit; i++)
            if (want[i])
                witness_failed(&l->wit[i], false, "cannot submit: out of memory");
    free(subs);
}

/* Asks the witnesses with want[i] set to cosign the bare checkpoint: one
 * round, and a second for those whose 409 told the size to start from.
 * Returns whether a cosignature was added. */
static bool cosign(at_ledger *l, bool *want)
{
    uint64_t deadline = mono_ms() + l->wit_timeout_ms;
    bool any = false;
    for (int round = 0; round < 2 && mono_ms() < deadline; round++) {
        bool go = false;
        for (size_t i = 0; i < l->n_wit; i++)
            go |= want[i];
        if (!go)
            break;
        submit_round(l, want, deadline);
        for (size_t i = 0; i < l->n_wit; i++) {
            any |= want[i] && l->wit[i].has_line;
            want[i] = l->wit[i].again;
        }
    }
    for (size_t i = 0; i < l->n_wit; i++)
        if (l->wit[i].again) { /* no time left for the second round */
            l->wit[i].again = false;
            witness_failed(&l->wit[i], true, "no time left to ask again from size %llu",
                           (unsigned long long)l->wit[i].size);
        }
    return any;
}

/* The bare checkpoint and the cosignature lines it got, in the order the
 * witnesses were given, into out. */
static at_result assemble(at_ledger *l, at_buf *out)
{
    at_result r = at_buf_add(out, l->bare.data, l->bare.len);
    for (size_t i = 0; r == AT_OK && i < l->n_wit; i++)
        if (l->wit[i].has_line && out->len + l->wit[i].line.len <= CHECKPOINT_MAX)
            r = at_buf_add(out, l->wit[i].line.data, l->wit[i].line.len);
    return r;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

/* Writes the checkpoint file and makes note (taken) the one served. */
static at_result publish(at_ledger *l, at_buf *note, uint64_t size, at_error *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/checkpoint", l->dir);
    at_result r = at_write_file_atomic(p, note->data, note->len, err);
    if (r == AT_OK) {
        pthread_mutex_lock(&l->mu);
        at_buf t = l->checkpoint;
        l->checkpoint = *note;
        *note = t;
        l->signed_size = size;
        l->have_checkpoint = true;
        pthread_mutex_unlock(&l->mu);
    }
    return r;
}

/* Signs the checkpoint of the tree of size size; with witnesses, keeps it
 * bare and, when submit, asks them to cosign it first (from start, the
 * thread asks a moment later); then publishes it. */
static at_result sign_checkpoint(at_ledger *l, uint64_t size, bool submit, at_error *err)
{
    at_note_checkpoint cp = {.origin = l->origin, .origin_len = strlen(l->origin), .size = size};
    at_result r = at_tlog_root(l->log, size, cp.root, err);
    at_buf text, note;
    at_buf_init(&text, 0);
    at_buf_init(&note, 0);
    const at_note_signer *signers[1] = {l->signer};
    if (r == AT_OK)
        r = at_note_checkpoint_format(&cp, &text, err);
    if (r == AT_OK)
        r = at_note_sign(text.data, text.len, signers, 1, &note, err);
    if (r == AT_OK && l->n_wit) {
        at_buf_reset(&l->bare);
        if ((r = at_buf_add(&l->bare, note.data, note.len)) != AT_OK)
            at_error_set(err, r, -1, "out of memory");
        l->bare_text = text.len;
        l->bare_size = size;
        bool want[AT_LEDGER_MAX_WITNESSES];
        uint64_t now = mono_ms();
        for (size_t i = 0; i < l->n_wit; i++) {
            l->wit[i].has_line = false;
            want[i] = submit && (!l->wit[i].down || now >= l->wit[i].retry_ms);
        }
        if (r == AT_OK && submit)
            cosign(l, want);
        at_buf_reset(&note);
        if (r == AT_OK && (r = assemble(l, &note)) != AT_OK)
            at_error_set(err, r, -1, "out of memory");
    }
    if (r == AT_OK)
        r = publish(l, &note, size, err);
    at_buf_fini(&text);
    at_buf_fini(&note);
    return r;
}

bool ledger_cosign(at_ledger *l, const at_buf *note, size_t text_len, uint64_t size, at_buf *out)
{
    if (size != l->bare_size || !l->bare.len) {
        at_buf_reset(&l->bare);
        if (at_buf_add(&l->bare, note->data, note->len) != AT_OK)
            return false;
        l->bare_text = text_len;
        l->bare_size = size;
        for (size_t i = 0; i < l->n_wit; i++)
            l->wit[i].has_line = false;
    }
    bool want[AT_LEDGER_MAX_WITNESSES], go = false;
    uint64_t now = mono_ms();
    for (size_t i = 0; i < l->n_wit; i++)
        go |= want[i] = !l->wit[i].has_line && (!l->wit[i].down || now >= l->wit[i].retry_ms);
    if (go)
        cosign(l, want);
    bool all = true;
    for (size_t i = 0; i < l->n_wit; i++)
        all &= l->wit[i].has_line;
    at_buf_reset(out);
    return assemble(l, out) == AT_OK && all;
}

size_t ledger_witnesses(const at_ledger *l)
{
    return l->n_wit;
}

/* While idle: the published checkpoint to the witnesses whose
 * cosignature it lacks, once their backoff has passed. */
static void witness_retry(at_ledger *l)
{
    bool want[AT_LEDGER_MAX_WITNESSES], go = false;
    uint64_t now = mono_ms();
    for (size_t i = 0; i < l->n_wit; i++)
        go |= want[i] = l->bare.len && !l->wit[i].has_line && now >= l->wit[i].retry_ms;
    if (!go || !cosign(l, want))
        return;
    at_buf note;
    at_buf_init(&note, 0);
    at_error err = {0};
    if (assemble(l, &note) != AT_OK || publish(l, &note, l->bare_size, &err) != AT_OK)
        log_line("agent-traced: log: cannot publish the cosigned checkpoint: %s",
                err.message[0] ? err.message : "out of memory");
    at_buf_fini(&note);
}

/* At start, with witnesses, when the checkpoint on file is kept: it
 * becomes the bare one (signed again: Ed25519 signatures are
 * deterministic) with the cosignatures on file that still verify. */
static at_result witness_adopt(at_ledger *l, at_error *err)
{
    const char *blank = memmem(l->checkpoint.data, l->checkpoint.len, "\n\n", 2);
    if (!blank)
        return at_error_set(err, AT_ERR_INVALID, -1, "log: the checkpoint does not hold a note");
    size_t text_len = (size_t)(blank + 1 - l->checkpoint.data);
    const at_note_signer *signers[1] = {l->signer};
    at_buf_reset(&l->bare);
    at_result r = at_note_sign(l->checkpoint.data, text_len, signers, 1, &l->bare, err);
    if (r != AT_OK)
        return r;
    l->bare_text = text_len;
    l->bare_size = l->signed_size;
    const at_note_verifier *known[AT_LEDGER_MAX_WITNESSES];
    for (size_t i = 0; i < l->n_wit; i++)
        known[i] = l->wit[i].v;
    at_note *n = malloc(sizeof *n);
    if (n && at_note_open(l->checkpoint.data, l->checkpoint.len, known, l->n_wit, n, NULL) == AT_OK)
        for (size_t k = 0; k < n->n_sigs; k++)
            for (size_t i = 0; i < l->n_wit; i++) {
                witness *w = &l->wit[i];
                if (n->sigs[k].verifier != w->v || w->has_line)
                    continue;
                at_buf_reset(&w->line);
                w->has_line =
                    at_buf_printf(&w->line, "\xe2\x80\x94 %.*s %.*s\n", (int)n->sigs[k].name_len,
                                  n->sigs[k].name, (int)n->sigs[k].b64_len, n->sigs[k].b64) == AT_OK;
                w->size = l->signed_size;
            }
    free(n);
    at_buf note;
    at_buf_init(&note, 0);
    r = assemble(l, &note);
    if (r == AT_OK)
        r = publish(l, &note, l->signed_size, err);
    at_buf_fini(&note);
    return r;
}

static void witnesses_free(at_ledger *l)
{
    for (size_t i = 0; i < l->n_wit; i++) {
        free(l->wit[i].url);
        free(l->wit[i].key);
        at_buf_fini(&l->wit[i].line);
        if (l->wit[i].c)
            curl_easy_cleanup(l->wit[i].c);
    }
    free(l->wit);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    curl_slist_free_all(l->headers);
    l->multi = NULL;
    l->headers = NULL;
    if (l->n_wit)
        curl_global_cleanup();
    l->wit = NULL;
    l->n_wit = 0;
}

static at_result witnesses_init(at_ledger *l, const at_ledger_options *o, at_error *err)
{
    if (o->n_witnesses == 0)
        return AT_OK;
    if (o->n_witnesses > AT_LEDGER_MAX_WITNESSES)
        return at_error_set(err, AT_ERR_INVALID, -1, "log: at most %d witnesses", AT_LEDGER_MAX_WITNESSES);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return at_error_set(err, AT_ERR_IO, -1, "log: cannot initialize libcurl");
    l->wit_timeout_ms = o->witness_timeout_ms ? o->witness_timeout_ms : 2000;
    if (!(l->wit = calloc(o->n_witnesses, sizeof *l->wit))) {
        curl_global_cleanup();
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    l->n_wit = o->n_witnesses; /* witnesses_free undoes the rest */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL; /* small bodies: no 100-continue */
    l->headers = h2 ? h2 : h;
    if (!h2 || !(l->multi = curl_multi_init()))
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    for (size_t i = 0; i < l->n_wit; i++) {
        const at_ledger_witness *ow = &o->witnesses[i];
        witness *w = &l->wit[i];
        at_buf_init(&w->line, 0);
        if (!ow->verifier || at_note_verifier_type(ow->verifier) != AT_NOTE_COSIG_V1)
            return at_error_set(err, AT_ERR_INVALID, -1,
                                "log: witness %s: its key must be a cosignature key (type 0x04)", ow->url);
        size_t nl, ul = strlen(ow->url);
        const char *name = at_note_verifier_name(ow->verifier, &nl);
        while (ul && ow->url[ul - 1] == '/')
            ul--;
        w->v = ow->verifier;
        if (asprintf(&w->url, "%.*s/add-checkpoint", (int)ul, ow->url) < 0 ||
            asprintf(&w->key, "%.*s+%08x", (int)nl, name, (unsigned)at_note_verifier_id(ow->verifier)) < 0) {
            w->url = w->key = NULL;
            return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        }
        if (!(w->c = curl_easy_init()))
            return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        curl_easy_setopt(w->c, CURLOPT_URL, w->url);
        curl_easy_setopt(w->c, CURLOPT_POST, 1L);
        curl_easy_setopt(w->c, CURLOPT_HTTPHEADER, l->headers);
        curl_easy_setopt(w->c, CURLOPT_WRITEFUNCTION, answer_sink);
        curl_easy_setopt(w->c, CURLOPT_NOSIGNAL, 1L);
    }
    return AT_OK;
}

/* The last checkpoint must describe a prefix of the tree the files hold. */
static at_result load_checkpoint(at_ledger *l, at_error *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/checkpoint", l->dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_OK : at_error_set(err, AT_ERR_IO, -1, "log: cannot read %s", p);
    char buf[CHECKPOINT_MAX]; /* once, at start */
    ssize_t k = 0, got;
    while ((size_t)k < sizeof buf && (got = read(fd, buf + k, sizeof buf - (size_t)k)) > 0)
        k += got;
    close(fd);
    if (k <= 0)
        return at_error_set(err, AT_ERR_INVALID, -1, "log: %s is empty", p);
    /* the text is what comes before the blank line */
    const char *blank = memmem(buf, (size_t)k, "\n\n", 2);
    at_note_checkpoint cp;
    if (!blank || at_note_checkpoint_parse(buf, (size_t)(blank + 1 - buf), &cp, err) != AT_OK)
        return at_error_set(err, AT_ERR_INVALID, -1, "log: %s does not hold a checkpoint", p);
    uint8_t root[AT_SHA256_LEN];
    if (cp.size > at_tlog_size(l->log) || at_tlog_root(l->log, cp.size, root, NULL) != AT_OK ||
        memcmp(root, cp.root, AT_SHA256_LEN) != 0)
        return at_error_set(
            err, AT_ERR_CONFLICT, -1,
            "log: the files hold %llu entries that do not match the last checkpoint (size %llu): "
            "restore them; signing now would fork the log",
            (unsigned long long)at_tlog_size(l->log), (unsigned long long)cp.size);
    at_buf_reset(&l->checkpoint);
    at_result r = at_buf_add(&l->checkpoint, buf, (size_t)k);
    l->signed_size = cp.size;
    l->have_checkpoint = r == AT_OK;
    return r;
}

/* ---- integration ------------------------------------------------------------------------- */

typedef struct {
    batch_item *b;
    size_t n, cap;
} batch;

static void batch_add(void *ctx, const char *sid, const at_version *v)
{
    batch *bt = ctx;
    for (size_t i = 0; i < bt->n; i++)
        if (bt->b[i].v.version == v->version && strcmp(bt->b[i].sid, sid) == 0)
            return;
    if (bt->n == bt->cap) {
        size_t cap = bt->cap ? bt->cap * 2 : 16;
        batch_item *nb = realloc(bt->b, cap * sizeof *nb);
        if (!nb)
            return;
        bt->b = nb;
        bt->cap = cap;
    }
    if (!(bt->b[bt->n].sid = strdup(sid)))
        return;
    bt->b[bt->n].v = *v;
    bt->n++;
}

/* Logs the batch's versions (those not logged yet), in order. */
static at_result integrate(at_ledger *l, batch *bt, at_error *err)
{
    at_slice *e = calloc(bt->n ? bt->n : 1, sizeof *e);
    at_buf *texts = calloc(bt->n ? bt->n : 1, sizeof *texts);
    batch_item *keep = calloc(bt->n ? bt->n : 1, sizeof *keep);
    size_t n = 0;
    at_result r = e && texts && keep ? AT_OK : at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    for (size_t i = 0; r == AT_OK && i < bt->n; i++) {
        uint64_t v, idx;
        if (at_store_logged_index(l->store, bt->b[i].sid, bt->b[i].v.version, &v, &idx, NULL) == AT_OK)
            continue; /* logged already (the feed and a scan both saw it) */
        at_buf_init(&texts[n], AT_TLOG_MAX_ENTRY);
        if ((r = at_store_log_entry(bt->b[i].sid, &bt->b[i].v, &texts[n])) != AT_OK) {
            at_error_set(err, r, -1, "log: cannot write the entry of %s", bt->b[i].sid);
            n++;
            break;
        }
        e[n] = (at_slice){texts[n].data, texts[n].len};
        keep[n] = bt->b[i];
        n++;
    }
    uint64_t first = at_tlog_size(l->log);
    at_logged_mark *marks = n ? calloc(n, sizeof *marks) : NULL;
    if (r == AT_OK && n && !marks)
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    if (r == AT_OK && n)
        r = at_tlog_append(l->log, e, n, &first, err);
    for (size_t i = 0; r == AT_OK && i < n; i++)
        marks[i] = (at_logged_mark){keep[i].sid, keep[i].v.version, first + i};
    if (r == AT_OK && n)
        r = at_store_mark_logged(l->store, marks, n, err);
    free(marks);
    for (size_t i = 0; texts && i < n; i++)
        at_buf_fini(&texts[i]);
    free(texts);
    free(e);
    free(keep);
    return r;
}

static void *run(void *arg)
{
    at_ledger *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (!l->head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&l->work, &l->mu, &until);
            if (!l->head && !l->stop) {
                /* idle: sessions other processes wrote, then sign */
                pthread_mutex_unlock(&l->mu);
                if (l->catalog)
                    at_catalog_drain_changed(l->catalog, drained, l);
                uint64_t size = at_tlog_size(l->log);
                at_error err = {0};
                if (size > l->signed_size && sign_checkpoint(l, size, true, &err) != AT_OK)
                    log_line("agent-traced: %s", err.message);
                if (l->n_wit)
                    witness_retry(l);
                pthread_mutex_lock(&l->mu);
            }
            continue;
        }
        /* Group commit: what arrives while a batch is integrated (its
         * syncs, its signature) forms the next batch, so there is no need
         * to wait for company; batch_ms adds a wait when asked. */
        if (l->batch_ms) {
            pthread_mutex_unlock(&l->mu);
            struct timespec d = {0, (long)l->batch_ms * 1000000L};
            nanosleep(&d, NULL);
            pthread_mutex_lock(&l->mu);
        }
        item *list = l->head;
        l->head = l->tail = NULL;
        pthread_mutex_unlock(&l->mu);

        batch bt = {0};
        at_error err = {0};
        item *it = list;
        while (it && bt.n < MAX_BATCH) {
            item *next = it->next;
            /* Every unlogged version of the session, in order, not only the
             * one reported: an older one may have been made without a
             * report (a commit cut short by a kill, completed by the sync
             * of the next write), and once a newer one is logged the
             * older ones count as logged. */
            if (at_store_each_unlogged(l->store, it->sid, batch_add, &bt, &err) != AT_OK) {
                log_line("agent-traced: log: %s", err.message);
                if (it->v.version)
                    batch_add(&bt, it->sid, &it->v);
            }
            free(it->sid);
            free(it);
            it = next;
        }
        if (it) { /* a full batch: the rest goes back to the front of the queue */
            item *last = it;
            while (last->next)
                last = last->next;
            pthread_mutex_lock(&l->mu);
            last->next = l->head;
            if (!l->head)
                l->tail = last;
            l->head = it;
            pthread_mutex_unlock(&l->mu);
        }
        at_result r = integrate(l, &bt, &err);
        /* the entries are durable and recorded: whoever waits for an
         * index goes on now (an upload's 2xx); the checkpoint follows */
        pthread_mutex_lock(&l->mu);
        l->batches++;
        pthread_cond_broadcast(&l->done);
        pthread_mutex_unlock(&l->mu);
        uint64_t size = at_tlog_size(l->log);
        if (r == AT_OK && size > l->signed_size)
            r = sign_checkpoint(l, size, true, &err);
        if (r != AT_OK)
            log_line("agent-traced: log: %s", err.message);
        for (size_t i = 0; i < bt.n; i++)
            free(bt.b[i].sid);
        free(bt.b);
        pthread_mutex_lock(&l->mu);
        l->batches++;
        pthread_cond_broadcast(&l->done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- the API -------------------------------------------------------------------------------- */

at_ledger *at_ledger_start(at_store *s, const at_ledger_options *o, at_error *err)
{
    if (at_store_is_database(s)) {
        /* the sequencer runs in ledger_db.c; the witnesses are asked from here */
        at_ledger *l = calloc(1, sizeof *l);
        if (!l) {
            at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
            return NULL;
        }
        l->store = s;
        at_buf_init(&l->bare, AT_NOTE_MAX_BYTES);
        if (witnesses_init(l, o, err) != AT_OK || !(l->db = ledger_db_start(l, s, o, err))) {
            witnesses_free(l);
            at_buf_fini(&l->bare);
            free(l);
            return NULL;
        }
        return l;
    }
    at_ledger *l = calloc(1, sizeof *l);
    if (!l || !(l->origin = strdup(o->origin))) {
        free(l);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    l->store = s;
    l->signer = o->signer;
    l->batch_ms = o->batch_ms;
    l->catalog = o->catalog;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->done, NULL);
    at_buf_init(&l->checkpoint, 0);
    at_buf_init(&l->bare, 0);
    at_result r = store_path(s, l->dir, sizeof l->dir, ".agent-traced/log") == AT_OK
                      ? AT_OK
                      : at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    if (r == AT_OK)
        r = witnesses_init(l, o, err);
    if (r == AT_OK && !(l->log = at_tlog_open(l->dir, err)))
        r = AT_ERR_IO;
    if (r == AT_OK)
        r = load_checkpoint(l, err);
    if (r == AT_OK)
        r = finish_batch(l, err);
    /* From here on every new version is queued (the thread takes the queue
     * once it runs): one made while the scan below runs, say by a crash
     * repair on another thread, is not missed. The scan and the queue may
     * name a version twice; integrate() logs it once. */
    if (r == AT_OK) {
        at_store_on_version(s, feed, l);
        l->registered = true;
    }
    if (r == AT_OK) {
        /* whatever was written while no ledger ran */
        batch bt = {0};
        r = at_store_each_unlogged(s, NULL, batch_add, &bt, err);
        if (r == AT_OK)
            r = integrate(l, &bt, err);
        for (size_t i = 0; i < bt.n; i++)
            free(bt.b[i].sid);
        free(bt.b);
    }
    if (r == AT_OK && (at_tlog_size(l->log) > l->signed_size || !l->have_checkpoint))
        r = sign_checkpoint(l, at_tlog_size(l->log), false, err); /* the thread asks the witnesses */
    else if (r == AT_OK && l->n_wit)
        r = witness_adopt(l, err);
    if (r == AT_OK && pthread_create(&l->thread, NULL, run, l) != 0)
        r = at_error_set(err, AT_ERR_IO, -1, "log: cannot start its thread");
    if (r != AT_OK) {
        at_ledger_stop(l);
        return NULL;
    }
    l->running = true;
    return l;
}

void at_ledger_release(at_ledger *l)
{
    if (l && l->db)
        ledger_db_release(l->db);
}

void at_ledger_stop(at_ledger *l)
{
    if (!l)
        return;
    if (l->db) {
        ledger_db_stop(l->db);
        witnesses_free(l);
        at_buf_fini(&l->bare);
        free(l);
        return;
    }
    if (l->registered)
        at_store_on_version(l->store, NULL, NULL);
    if (l->running) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    for (item *it = l->head, *next; it; it = next) {
        next = it->next;
        free(it->sid);
        free(it);
    }
    at_tlog_free(l->log);
    at_buf_fini(&l->checkpoint);
    at_buf_fini(&l->bare);
    witnesses_free(l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->done);
    free(l->origin);
    free(l);
}

at_tlog *at_ledger_log(at_ledger *l)
{
    return l->log;
}

at_result at_ledger_tile(at_ledger *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out)
{
    if (l->db)
        return ledger_db_tile(l->db, level, n, w, size, out);
    return level == AT_MERKLE_TILE_ENTRIES ? at_tlog_bundle(l->log, n, w, size, out)
                                           : at_tlog_tile(l->log, level, n, w, size, out);
}

at_result at_ledger_inclusion(at_ledger *l, uint64_t index, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                              size_t *n, at_error *err)
{
    return l->db ? ledger_db_hashes_proof(l->db, false, index, size, proof, n, err)
                 : at_tlog_inclusion(l->log, index, size, proof, n, err);
}

at_result at_ledger_consistency(at_ledger *l, uint64_t m, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                                size_t *n, at_error *err)
{
    return l->db ? ledger_db_hashes_proof(l->db, true, m, size, proof, n, err)
                 : at_tlog_consistency(l->log, m, size, proof, n, err);
}

at_result at_ledger_wait(at_ledger *l, const char *sid, uint64_t v, uint64_t *index, unsigned timeout_ms,
                         at_error *err)
{
    if (l->db)
        return ledger_db_wait(l->db, sid, v, index, timeout_ms, err);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (;;) {
        uint64_t got_v;
        pthread_mutex_lock(&l->mu);
        uint64_t seen = l->batches;
        pthread_mutex_unlock(&l->mu);
        if (at_store_logged_index(l->store, sid, v, &got_v, index, NULL) == AT_OK)
            return AT_OK;
        pthread_mutex_lock(&l->mu);
        int rc = 0;
        while (l->batches == seen && rc == 0)
            rc = pthread_cond_timedwait(&l->done, &l->mu, &until);
        pthread_mutex_unlock(&l->mu);
        if (rc == ETIMEDOUT)
            return at_error_set(err, AT_ERR_NOT_FOUND, -1, "version %llu of %s is not in the log yet",
                                (unsigned long long)v, sid);
    }
}

bool at_ledger_wait_signed(at_ledger *l, uint64_t index, unsigned timeout_ms)
{
    if (l->db)
        return ledger_db_wait_signed(l->db, index, timeout_ms);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    while (l->signed_size <= index && rc == 0)
        rc = pthread_cond_timedwait(&l->done, &l->mu, &until);
    bool ok = l->signed_size > index;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

at_result at_ledger_checkpoint(at_ledger *l, at_buf *out, uint64_t *size)
{
    if (l->db)
        return ledger_db_checkpoint(l->db, out, size);
    pthread_mutex_lock(&l->mu);
    at_result r =
        l->have_checkpoint ? at_buf_add(out, l->checkpoint.data, l->checkpoint.len) : AT_ERR_NOT_FOUND;
    *size = l->signed_size;
    pthread_mutex_unlock(&l->mu);
    return r;
}

/* The tlog-proof file of version v (0: current) of sid in the tree of the
 * signed checkpoint cp (size size). Its extra line carries the version's
 * whole log entry, so an auditor holding only events.ndjson learns the
 * session and version the entry names and can say what differs. */
static at_result write_proof(at_store *s, at_tlog *log, const at_buf *cp, uint64_t size, const char *sid,
                             uint64_t v, at_buf *out, uint64_t *index, uint64_t *version, at_error *err)
{
    at_result r = at_store_logged_index(s, sid, v, version, index, err);
    if (r != AT_OK)
        return r;
    if (*index >= size)
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "version %llu of %s is not in a signed checkpoint yet",
                            (unsigned long long)*version, sid);
    /* the entry as the log holds it (nothing is rebuilt, nothing synced:
     * an auditor's read changes nothing) */
    at_buf entry;
    at_buf_init(&entry, 0);
    r = at_tlog_entry(log, *index, &entry, err);
    uint8_t(*proof)[AT_SHA256_LEN] = NULL;
    size_t n = 0;
    if (r == AT_OK)
        r = at_tlog_inclusion(log, *index, size, &proof, &n, err);
    if (r == AT_OK)
        r = ledger_proof_text(&entry, *index, proof, n, cp, out);
    free(proof);
    at_buf_fini(&entry);
    return r;
}

at_result ledger_proof_text(const at_buf *entry, uint64_t index, uint8_t (*proof)[AT_SHA256_LEN], size_t n,
                            const at_buf *cp, at_buf *out)
{
    at_result r = at_buf_adds(out, "c2sp.org/tlog-proof@v1\nextra ");
    if (r == AT_OK)
        r = at_note_base64_encode(entry->data, entry->len, out);
    if (r == AT_OK)
        r = at_buf_printf(out, "\nindex %llu\n", (unsigned long long)index);
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        r = at_note_base64_encode(proof[i], AT_SHA256_LEN, out);
        if (r == AT_OK)
            r = at_buf_addc(out, '\n');
    }
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK)
        r = at_buf_add(out, cp->data, cp->len);
    return r;
}

at_result at_ledger_proof(at_ledger *l, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                          uint64_t *version, at_error *err)
{
    if (l->db)
        return ledger_db_proof(l->db, sid, v, out, index, version, err);
    /* a version logged a moment ago: its checkpoint follows within moments */
    uint64_t idx, got_v;
    if (at_store_logged_index(l->store, sid, v, &got_v, &idx, NULL) == AT_OK)
        (void)at_ledger_wait_signed(l, idx, 2000);
    at_buf cp;
    at_buf_init(&cp, 0);
    uint64_t size = 0;
    at_result r = at_ledger_checkpoint(l, &cp, &size);
    if (r != AT_OK)
        r = at_error_set(err, AT_ERR_NOT_FOUND, -1, "no checkpoint signed yet");
    else
        r = write_proof(l->store, l->log, &cp, size, sid, v, out, index, version, err);
    at_buf_fini(&cp);
    return r;
}

at_result at_ledger_proof_offline(at_store *s, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                                  uint64_t *version, at_error *err)
{
    char dir[PATH_MAX], p[PATH_MAX];
    if (store_path(s, dir, sizeof dir, ".agent-traced/log") != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    snprintf(p, sizeof p, "%s/checkpoint", dir);
    at_buf cp;
    at_buf_init(&cp, AT_NOTE_MAX_BYTES);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        at_buf_fini(&cp);
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "%s keeps no signed checkpoint", s->root);
    }
    char buf[65536];
    ssize_t k;
    at_result r = AT_OK;
    while (r == AT_OK && (k = read(fd, buf, sizeof buf)) > 0)
        r = at_buf_add(&cp, buf, (size_t)k);
    close(fd);
    const char *blank = cp.data ? memmem(cp.data, cp.len, "\n\n", 2) : NULL;
    at_note_checkpoint c;
    if (r != AT_OK || !blank ||
        at_note_checkpoint_parse(cp.data, (size_t)(blank + 1 - cp.data), &c, NULL) != AT_OK) {
        at_buf_fini(&cp);
        return at_error_set(err, AT_ERR_INVALID, -1, "%s does not hold a checkpoint", p);
    }
    at_tlog *log = at_tlog_open(dir, err);
    r = log ? write_proof(s, log, &cp, c.size, sid, v, out, index, version, err) : AT_ERR_IO;
    at_tlog_free(log);
    at_buf_fini(&cp);
    return r;
}

/* ---- the key ------------------------------------------------------------------------------ */

at_note_signer *at_ledger_key(const char *path, const char *origin, bool create, at_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    at_buf text;
    at_buf_init(&text, AT_NOTE_MAX_BYTES);
    at_note_signer *signer = NULL;
    if (fd < 0 && errno == ENOENT && create) {
        if (!origin || !*origin) {
            at_error_set(err, AT_ERR_INVALID, -1, "log: a new key needs an origin");
            goto out;
        }
        if (at_note_keygen(origin, strlen(origin), AT_NOTE_ED25519, &text, NULL, err) != AT_OK)
            goto out;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            mkdir(dir, 0755); /* the log's directory, on a first start */
        }
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd < 0 || at_write_all(wfd, text.data, text.len) != AT_OK ||
            at_write_all(wfd, "\n", 1) != AT_OK || fsync(wfd) < 0) {
            at_error_set(err, AT_ERR_IO, -1, "log: cannot write the key %s: %s", path, strerror(errno));
            if (wfd >= 0) {
                close(wfd);
                unlink(path);
            }
            goto out;
        }
        close(wfd);
    } else if (fd < 0) {
        at_error_set(err, AT_ERR_IO, -1, "log: cannot read the key %s: %s", path, strerror(errno));
        goto out;
    } else {
        struct stat sb;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
            at_error_set(err, AT_ERR_INVALID, -1, "log: the key %s is not a file", path);
            goto out;
        }
        if (sb.st_mode & 077) {
            at_error_set(err, AT_ERR_INVALID, -1,
                         "log: the key %s can be read by others (mode %03o): chmod 600 it", path,
                         (unsigned)(sb.st_mode & 0777));
            goto out;
        }
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0 || at_buf_add(&text, buf, (size_t)k) != AT_OK) {
            at_error_set(err, AT_ERR_IO, -1, "log: cannot read the key %s", path);
            goto out;
        }
        while (text.len && (text.data[text.len - 1] == '\n' || text.data[text.len - 1] == '\r'))
            text.data[--text.len] = 0;
    }
    if (at_note_signer_new(text.data, text.len, AT_NOTE_ED25519, &signer, err) != AT_OK)
        goto out;
    size_t nl;
    const char *name = at_note_signer_name(signer, &nl);
    if (origin && *origin && (nl != strlen(origin) || memcmp(name, origin, nl) != 0)) {
        at_error_set(err, AT_ERR_INVALID, -1, "log: the key %s is named %.*s, not the origin %s", path,
                     (int)nl, name, origin);
        at_note_signer_free(signer);
        signer = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    at_buf_fini(&text);
    return signer;
}
