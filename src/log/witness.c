/* witness.c - a c2sp.org/tlog-witness witness's protocol logic and its
 * durable state, and the log side's helpers (witness.h).
 *
 * The state file, <state_dir>/state, rewritten whole by
 * at_write_file_atomic (temporary file, fsync, rename, directory fsync):
 *   agent-traced witness state v1\n
 *   <origin> <size> <base64 root>\n      one line per log, origins sorted as added
 * Origins are key names (no spaces), so a line splits at its spaces. */
#include "agenttrace/witness.h"

#include "agenttrace/merkle.h"
#include "agenttrace/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_HEADER    "agent-traced witness state v1\n"
#define STATE_TMP       ".state.tmp-" /* at_write_file_atomic's temporary names */
#define TEXT_PLAIN      "text/plain; charset=utf-8"
#define HASH_B64_LEN    44 /* base64 of 32 bytes, padded */
#define SIG_LINE_PREFIX "\xe2\x80\x94 "

/* ---- small parsers ------------------------------------------------------------------ */

/* A decimal uint64 without sign or leading zeros ("0" alone for zero). */
static bool parse_size(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_hash(const char *p, size_t n, uint8_t out[AT_NOTE_HASH_LEN])
{
    size_t got = 0;
    return n == HASH_B64_LEN &&
           at_note_base64_decode(p, n, AT_BASE64_STRICT, out, AT_NOTE_HASH_LEN, &got) == AT_OK &&
           got == AT_NOTE_HASH_LEN;
}

/* ---- the request body --------------------------------------------------------------- */

/* Records a parse error at byte offset off of line (0-based). */
static at_result parse_fail(at_error *err, size_t off, int64_t line, const char *what)
{
    at_error_set(err, AT_ERR_INVALID, (int64_t)off, "line %lld: %s", (long long)line + 1, what);
    if (err)
        err->line = line;
    return AT_ERR_INVALID;
}

at_result at_witness_request_parse(const char *body, size_t len, at_witness_request *rq, at_error *err)
{
    if (len > AT_WITNESS_MAX_BODY)
        return at_error_set(err, AT_ERR_TOO_BIG, AT_WITNESS_MAX_BODY, "request body exceeds %u bytes",
                            AT_WITNESS_MAX_BODY);
    rq->old_size = 0;
    rq->n_proof = 0;
    rq->note = NULL;
    rq->note_len = 0;
    size_t pos = 0;
    for (int64_t line = 0;; line++) {
        const char *p = body + pos;
        const char *nl = pos < len ? memchr(p, '\n', len - pos) : NULL;
        if (!nl)
            return parse_fail(err, pos, line,
                              line == 0 ? "no \"old <size>\" line" : "no empty line before the checkpoint");
        size_t n = (size_t)(nl - p);
        if (line == 0) {
            if (n < 4 || memcmp(p, "old ", 4) != 0 || !parse_size(p + 4, n - 4, &rq->old_size))
                return parse_fail(err, pos, line, "expected \"old <size>\" (decimal, no leading zeros)");
        } else if (n == 0) {
            if (pos + 1 == len)
                return parse_fail(err, pos + 1, line + 1, "no checkpoint after the empty line");
            rq->note = body + pos + 1;
            rq->note_len = len - pos - 1;
            return AT_OK;
        } else if (rq->n_proof == AT_WITNESS_MAX_PROOF) {
            return parse_fail(err, pos, line, "more than 63 consistency-proof lines");
        } else if (!parse_hash(p, n, rq->proof[rq->n_proof])) {
            return parse_fail(err, pos, line,
                              "a consistency-proof line must be the base64 of a 32-byte hash");
        } else {
            rq->n_proof++;
        }
        pos += n + 1;
    }
}

at_result at_witness_request_format(uint64_t old, const uint8_t (*proof)[AT_NOTE_HASH_LEN], size_t n,
                                    const char *note, size_t note_len, at_buf *out)
{
    if (n > AT_WITNESS_MAX_PROOF)
        return AT_ERR_TOO_BIG;
    at_result r = at_buf_printf(out, "old %llu\n", (unsigned long long)old);
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        r = at_note_base64_encode(proof[i], AT_NOTE_HASH_LEN, out);
        if (r == AT_OK)
            r = at_buf_addc(out, '\n');
    }
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK)
        r = at_buf_add(out, note, note_len);
    return r;
}

/* ---- the witness ------------------------------------------------------------------- */

/* What was last cosigned for one origin. */
typedef struct {
    char *origin; /* NUL-terminated, a valid key name */
    size_t origin_len;
    uint64_t size;
    uint8_t root[AT_NOTE_HASH_LEN];
} log_state;

struct at_witness {
    const at_note_signer *signer;
    const at_note_verifier **logs; /* borrowed keys, copied list */
    size_t n_logs;
    char dir[PATH_MAX];
    char state_path[PATH_MAX];
    int lock_fd;
    unsigned evidence; /* files in dir/evidence */

    pthread_mutex_t mu; /* one request at a time: check and persist are one step */
    log_state *st;      /* every origin in the state file, configured or not (kept) */
    size_t n_st;
    at_note note; /* scratch for at_note_open (11 KB), under mu */
};

static log_state *find_state(at_witness *w, const char *origin, size_t len)
{
    for (size_t i = 0; i < w->n_st; i++)
        if (w->st[i].origin_len == len && memcmp(w->st[i].origin, origin, len) == 0)
            return &w->st[i];
    return NULL;
}

static at_result add_state(at_witness *w, const char *origin, size_t len, uint64_t size,
                           const uint8_t root[AT_NOTE_HASH_LEN])
{
    log_state *ns = realloc(w->st, (w->n_st + 1) * sizeof *ns);
    if (!ns)
        return AT_ERR_NOMEM;
    w->st = ns;
    char *o = malloc(len + 1);
    if (!o)
        return AT_ERR_NOMEM;
    memcpy(o, origin, len);
    o[len] = 0;
    w->st[w->n_st] = (log_state){o, len, size, {0}};
    memcpy(w->st[w->n_st].root, root, AT_NOTE_HASH_LEN);
    w->n_st++;
    return AT_OK;
}

/* Loads the state file; a missing one is an empty state. */
static at_result load_state(at_witness *w, at_error *err)
{
    int fd = open(w->state_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_OK
                               : at_error_set(err, AT_ERR_IO, -1, "witness: cannot read %s: %s",
                                              w->state_path, strerror(errno));
    at_buf b;
    at_buf_init(&b, AT_WITNESS_MAX_STATE);
    char chunk[8192];
    ssize_t k;
    at_result r = AT_OK;
    while (r == AT_OK && (k = read(fd, chunk, sizeof chunk)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        r = k < 0 ? at_error_set(err, AT_ERR_IO, -1, "witness: cannot read %s: %s", w->state_path,
                                 strerror(errno))
                  : at_buf_add(&b, chunk, (size_t)k);
    }
    close(fd);
    if (r == AT_ERR_TOO_BIG)
        r = at_error_set(err, AT_ERR_INVALID, -1, "witness: %s is larger than %u bytes", w->state_path,
                         AT_WITNESS_MAX_STATE);
    size_t hl = sizeof STATE_HEADER - 1;
    if (r == AT_OK && (b.len < hl || memcmp(b.data, STATE_HEADER, hl) != 0))
        r = at_error_set(err, AT_ERR_INVALID, 0, "witness: %s is damaged (no header line)", w->state_path);
    size_t pos = hl;
    for (int64_t line = 2; r == AT_OK && pos < b.len; line++) {
        const char *p = b.data + pos, *nl = memchr(p, '\n', b.len - pos);
        const char *sp1 = nl ? memchr(p, ' ', (size_t)(nl - p)) : NULL;
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1)) : NULL;
        uint64_t size;
        uint8_t root[AT_NOTE_HASH_LEN];
        if (!sp2 || !at_note_name_valid(p, (size_t)(sp1 - p)) ||
            !parse_size(sp1 + 1, (size_t)(sp2 - sp1 - 1), &size) ||
            !parse_hash(sp2 + 1, (size_t)(nl - sp2 - 1), root) || find_state(w, p, (size_t)(sp1 - p))) {
            r = at_error_set(err, AT_ERR_INVALID, (int64_t)pos, "witness: %s is damaged at line %lld",
                             w->state_path, (long long)line);
            break;
        }
        if ((r = add_state(w, p, (size_t)(sp1 - p), size, root)) != AT_OK)
            at_error_set(err, r, -1, "out of memory");
        pos = (size_t)(nl - b.data) + 1;
    }
    at_buf_fini(&b);
    return r;
}

/* Writes the state with origin's entry set to (size, root): the file first,
 * synced; memory only once it is. */
static at_result save_state(at_witness *w, const char *origin, size_t len, uint64_t size,
                            const uint8_t root[AT_NOTE_HASH_LEN], at_error *err)
{
    log_state *e = find_state(w, origin, len);
    at_buf b;
    at_buf_init(&b, AT_WITNESS_MAX_STATE);
    at_result r = at_buf_adds(&b, STATE_HEADER);
    for (size_t i = 0; r == AT_OK && i <= w->n_st; i++) {
        const log_state *s = i < w->n_st ? &w->st[i] : NULL;
        if (!s && e)
            break; /* updated in place below */
        const char *o = s && s != e ? s->origin : origin;
        size_t ol = s && s != e ? s->origin_len : len;
        uint64_t sz = s && s != e ? s->size : size;
        const uint8_t *rt = s && s != e ? s->root : root;
        r = at_buf_add(&b, o, ol);
        if (r == AT_OK)
            r = at_buf_printf(&b, " %llu ", (unsigned long long)sz);
        if (r == AT_OK)
            r = at_note_base64_encode(rt, AT_NOTE_HASH_LEN, &b);
        if (r == AT_OK)
            r = at_buf_addc(&b, '\n');
    }
    if (r != AT_OK)
        at_error_set(err, r, -1, "witness: cannot build the state");
    else
        r = at_write_file_atomic(w->state_path, b.data, b.len, err);
    at_buf_fini(&b);
    if (r != AT_OK)
        return r;
    if (e) {
        e->size = size;
        memcpy(e->root, root, AT_NOTE_HASH_LEN);
        return AT_OK;
    }
    r = add_state(w, origin, len, size, root);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "out of memory");
}

static bool is_tmp_name(const char *name)
{
    return strncmp(name, STATE_TMP, sizeof STATE_TMP - 1) == 0;
}

/* Removes the temporary files of writes a kill interrupted; counts the
 * evidence kept so far. */
static void sweep(at_witness *w)
{
    DIR *d = opendir(w->dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (is_tmp_name(e->d_name)) {
            char p[PATH_MAX];
            if ((size_t)snprintf(p, sizeof p, "%s/%s", w->dir, e->d_name) < sizeof p)
                unlink(p);
        }
    if (d)
        closedir(d);
    char ev[PATH_MAX];
    snprintf(ev, sizeof ev, "%s/evidence", w->dir);
    if ((d = opendir(ev))) {
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                w->evidence++;
        closedir(d);
    }
}

at_witness *at_witness_open(const at_witness_options *o, at_error *err)
{
    if (!o->signer || at_note_signer_type(o->signer) != AT_NOTE_COSIG_V1) {
        at_error_set(err, AT_ERR_INVALID, -1, "witness: the cosigning key must be of type 0x04");
        return NULL;
    }
    if (o->n_logs == 0 || o->n_logs > AT_WITNESS_MAX_LOGS) {
        at_error_set(err, AT_ERR_INVALID, -1, "witness: 1 to %d log keys", AT_WITNESS_MAX_LOGS);
        return NULL;
    }
    for (size_t i = 0; i < o->n_logs; i++)
        if (!o->logs[i] || at_note_verifier_type(o->logs[i]) != AT_NOTE_ED25519) {
            at_error_set(err, AT_ERR_INVALID, -1, "witness: a log key must be an Ed25519 key (type 0x01)");
            return NULL;
        }
    const char *dir = o->state_dir && *o->state_dir ? o->state_dir : ".";
    at_witness *w = calloc(1, sizeof *w);
    if (!w || !(w->logs = calloc(o->n_logs, sizeof *w->logs))) {
        free(w);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    w->lock_fd = -1;
    w->signer = o->signer;
    memcpy(w->logs, o->logs, o->n_logs * sizeof *w->logs);
    w->n_logs = o->n_logs;
    pthread_mutex_init(&w->mu, NULL);
    char lock[PATH_MAX];
    if ((size_t)snprintf(w->dir, sizeof w->dir, "%s", dir) >= sizeof w->dir ||
        (size_t)snprintf(w->state_path, sizeof w->state_path, "%s/state", dir) >= sizeof w->state_path ||
        (size_t)snprintf(lock, sizeof lock, "%s/lock", dir) >= sizeof lock) {
        at_error_set(err, AT_ERR_TOO_BIG, -1, "witness: state directory path too long");
        goto fail;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        at_error_set(err, AT_ERR_IO, -1, "witness: cannot make %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        at_error_set(err, AT_ERR_IO, -1, "witness: cannot open %s: %s", lock, strerror(errno));
        goto fail;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        at_error_set(err, errno == EWOULDBLOCK ? AT_ERR_CONFLICT : AT_ERR_IO, -1,
                     "witness: %s is in use by another witness (%s)", dir, strerror(errno));
        goto fail;
    }
    sweep(w);
    if (load_state(w, err) != AT_OK)
        goto fail;
    return w;
fail:
    at_witness_free(w);
    return NULL;
}

void at_witness_free(at_witness *w)
{
    if (!w)
        return;
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* and the lock with it */
    for (size_t i = 0; i < w->n_st; i++)
        free(w->st[i].origin);
    free(w->st);
    free(w->logs);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

at_result at_witness_latest(at_witness *w, const char *origin, size_t origin_len, uint64_t *size,
                            uint8_t root[AT_NOTE_HASH_LEN])
{
    pthread_mutex_lock(&w->mu);
    const log_state *s = find_state(w, origin, origin_len);
    if (s) {
        *size = s->size;
        memcpy(root, s->root, AT_NOTE_HASH_LEN);
    }
    pthread_mutex_unlock(&w->mu);
    return s ? AT_OK : AT_ERR_NOT_FOUND;
}

static int answer(at_witness_answer *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int answer(at_witness_answer *a, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
    a->status = status;
    return status;
}

/* Keeps a fork's request (the log's signed checkpoint and its proof): it
 * shows the log signed two views. Best effort, at most
 * AT_WITNESS_MAX_EVIDENCE files. */
static void keep_evidence(at_witness *w, const char *body, size_t len, uint64_t now, at_witness_answer *a)
{
    char dir[PATH_MAX], p[PATH_MAX];
    if (w->evidence >= AT_WITNESS_MAX_EVIDENCE ||
        (size_t)snprintf(dir, sizeof dir, "%s/evidence", w->dir) >= sizeof dir ||
        (size_t)snprintf(p, sizeof p, "%s/%llu-%u.txt", dir, (unsigned long long)now, w->evidence) >=
            sizeof p)
        return;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return;
    if (at_write_file_atomic(p, body, len, NULL) == AT_OK) {
        w->evidence++;
        snprintf(a->evidence, sizeof a->evidence, "%s", p);
    }
}

/* The request's checks and the cosignature, under w->mu. */
static int add_locked(at_witness *w, const at_witness_request *rq, uint64_t now, at_buf *out,
                      at_witness_answer *a)
{
    at_error err = {0};
    at_note *n = &w->note;
    /* the origin first (404 before 403): the note opened with no key */
    if (at_note_open(rq->note, rq->note_len, NULL, 0, n, &err) != AT_ERR_NOT_FOUND ||
        n->status != AT_NOTE_UNVERIFIED)
        return answer(a, 400, "malformed checkpoint note: %s", err.message);
    at_note_checkpoint cp;
    if (at_note_checkpoint_parse(n->text, n->text_len, &cp, &err) != AT_OK)
        return answer(a, 400, "malformed checkpoint: %s", err.message);
    int ol = cp.origin_len > 100 ? 100 : (int)cp.origin_len;
    const at_note_verifier *keys[AT_WITNESS_MAX_LOGS];
    size_t nk = 0;
    for (size_t i = 0; i < w->n_logs; i++) {
        size_t kl;
        const char *kn = at_note_verifier_name(w->logs[i], &kl);
        if (kl == cp.origin_len && memcmp(kn, cp.origin, kl) == 0)
            keys[nk++] = w->logs[i];
    }
    if (nk == 0)
        return answer(a, 404, "unknown log origin %.*s", ol, cp.origin);
    if (at_note_open(rq->note, rq->note_len, keys, nk, n, &err) != AT_OK)
        return answer(a, 403, "%.*s: no valid signature by the log's key: %s", ol, cp.origin, err.message);
    if (rq->old_size > cp.size)
        return answer(a, 400, "%.*s: old size %llu is larger than the checkpoint's %llu", ol, cp.origin,
                      (unsigned long long)rq->old_size, (unsigned long long)cp.size);
    const log_state *s = find_state(w, cp.origin, cp.origin_len);
    uint64_t last = s ? s->size : 0;
    uint8_t last_root[AT_NOTE_HASH_LEN];
    if (s)
        memcpy(last_root, s->root, AT_NOTE_HASH_LEN);
    else
        at_merkle_empty_root(last_root);
    if (rq->old_size != last) {
        a->content_type = AT_WITNESS_SIZE_TYPE;
        if (at_buf_printf(out, "%llu\n", (unsigned long long)last) != AT_OK)
            return answer(a, 500, "out of memory");
        return answer(a, 409, "%.*s: old size %llu is not %llu, the size last cosigned", ol, cp.origin,
                      (unsigned long long)rq->old_size, (unsigned long long)last);
    }
    char have[HASH_B64_LEN + 1] = "", got[HASH_B64_LEN + 1] = "";
    at_buf hb;
    at_buf_init(&hb, 0);
    if (at_note_base64_encode(last_root, AT_NOTE_HASH_LEN, &hb) == AT_OK)
        snprintf(have, sizeof have, "%s", hb.data);
    at_buf_reset(&hb);
    if (at_note_base64_encode(cp.root, AT_NOTE_HASH_LEN, &hb) == AT_OK)
        snprintf(got, sizeof got, "%s", hb.data);
    at_buf_fini(&hb);
    if (rq->old_size == cp.size && memcmp(last_root, cp.root, AT_NOTE_HASH_LEN) != 0) {
        /* tlog-witness: equal sizes must have identical roots, else 409 */
        a->fork = true;
        a->content_type = AT_WITNESS_SIZE_TYPE;
        if (at_buf_printf(out, "%llu\n", (unsigned long long)last) != AT_OK)
            return answer(a, 500, "out of memory");
        return answer(a, 409,
                      "%.*s: FORK: a checkpoint of size %llu with root %s, but %s was cosigned at that size",
                      ol, cp.origin, (unsigned long long)cp.size, got, have);
    }
    if (rq->old_size == 0 && rq->n_proof)
        return answer(a, 422, "%.*s: old size 0 needs an empty consistency proof, not %zu lines", ol,
                      cp.origin, rq->n_proof);
    if (at_merkle_verify_consistency(rq->old_size, cp.size, &rq->proof[0][0], rq->n_proof, last_root,
                                     cp.root) != AT_OK) {
        a->fork = rq->old_size > 0;
        return answer(
            a, 422,
            "%.*s: %sthe consistency proof (%zu hashes) from size %llu (root %s, cosigned) to %llu (root "
            "%s) does not verify",
            ol, cp.origin, a->fork ? "FORK? " : "", rq->n_proof, (unsigned long long)rq->old_size, have,
            (unsigned long long)cp.size, got);
    }
    /* cosign, then persist, then answer */
    at_buf line;
    at_buf_init(&line, 0);
    int status = 200;
    if (at_note_sign_line(w->signer, n->text, n->text_len, now, &line, &err) != AT_OK)
        status = answer(a, 500, "cannot cosign: %s", err.message);
    else if ((!s || s->size != cp.size) &&
             save_state(w, cp.origin, cp.origin_len, cp.size, cp.root, &err) != AT_OK)
        status = answer(a, 500, "cannot persist the state (nothing cosigned): %s", err.message);
    else if (at_buf_add(out, line.data, line.len) != AT_OK)
        status = answer(a, 500, "out of memory");
    else
        answer(a, 200, "%.*s: cosigned size %llu (root %s) at time %llu, old size %llu", ol, cp.origin,
               (unsigned long long)cp.size, got, (unsigned long long)now, (unsigned long long)rq->old_size);
    at_buf_fini(&line);
    return status;
}

int at_witness_add_checkpoint(at_witness *w, const char *body, size_t len, uint64_t now, at_buf *out,
                              at_witness_answer *a)
{
    memset(a, 0, sizeof *a);
    a->content_type = TEXT_PLAIN;
    if (len > AT_WITNESS_MAX_BODY)
        return answer(a, 413, "request body of %zu bytes exceeds %u", len, AT_WITNESS_MAX_BODY);
    at_witness_request *rq = malloc(sizeof *rq);
    if (!rq)
        return answer(a, 500, "out of memory");
    at_error err = {0};
    size_t start = out->len;
    int status;
    if (at_witness_request_parse(body, len, rq, &err) != AT_OK) {
        status = answer(a, 400, "malformed request: %s", err.message);
    } else {
        pthread_mutex_lock(&w->mu);
        status = add_locked(w, rq, now, out, a);
        if (a->fork)
            keep_evidence(w, body, len, now, a);
        pthread_mutex_unlock(&w->mu);
    }
    if (status != 200 && status != 409 && out->data) {
        out->len = start; /* an error's body is the reason */
        out->data[start] = 0;
    }
    if (status != 200 && status != 409) {
        a->content_type = TEXT_PLAIN;
        if (at_buf_adds(out, a->reason) != AT_OK || at_buf_addc(out, '\n') != AT_OK) {
            out->len = start;
            if (out->data)
                out->data[start] = 0;
        }
    }
    free(rq);
    return status;
}

/* ---- the log's side ------------------------------------------------------------------ */

at_result at_witness_cosig_check(const char *text, size_t text_len, const char *answer_body,
                                 size_t answer_len, const at_note_verifier *witness, at_buf *out,
                                 uint64_t *timestamp, at_error *err)
{
    if (at_note_verifier_type(witness) != AT_NOTE_COSIG_V1)
        return at_error_set(err, AT_ERR_INVALID, -1, "the witness key is not a cosignature key (type 0x04)");
    if (answer_len > AT_WITNESS_MAX_ANSWER)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "answer larger than %u bytes", AT_WITNESS_MAX_ANSWER);
    if (answer_len < sizeof SIG_LINE_PREFIX - 1 || memcmp(answer_body, SIG_LINE_PREFIX, 4) != 0 ||
        answer_body[answer_len - 1] != '\n')
        return at_error_set(err, AT_ERR_INVALID, 0, "the answer is not signature lines");
    /* tlog-witness: "the client MAY concatenate it to the checkpoint, and
     * use a note verification function configured with the witness keys" */
    at_buf msg;
    at_buf_init(&msg, 0);
    at_note *n = malloc(sizeof *n);
    at_result r = n ? AT_OK : at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    if (r == AT_OK && (at_buf_add(&msg, text, text_len) != AT_OK || at_buf_addc(&msg, '\n') != AT_OK ||
                       at_buf_add(&msg, answer_body, answer_len) != AT_OK))
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    const at_note_verifier *known[1] = {witness};
    if (r == AT_OK && (r = at_note_open(msg.data, msg.len, known, 1, n, err)) == AT_OK &&
        (n->text_len != text_len || n->n_sigs != 1))
        r = at_error_set(err, AT_ERR_INVALID, -1, "the answer is not signature lines");
    if (r == AT_OK) {
        const at_note_sig *s = &n->sigs[0];
        *timestamp = s->timestamp;
        size_t start = out->len;
        if (at_buf_adds(out, SIG_LINE_PREFIX) != AT_OK || at_buf_add(out, s->name, s->name_len) != AT_OK ||
            at_buf_addc(out, ' ') != AT_OK || at_buf_add(out, s->b64, s->b64_len) != AT_OK ||
            at_buf_addc(out, '\n') != AT_OK) {
            out->len = start;
            if (out->data)
                out->data[start] = 0;
            r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        }
    }
    free(n);
    at_buf_fini(&msg);
    return r;
}

at_result at_witness_size_parse(const char *body, size_t len, uint64_t *size)
{
    if (len && body[len - 1] == '\n')
        len--;
    return parse_size(body, len, size) ? AT_OK : AT_ERR_INVALID;
}

at_result at_witness_vkey_load(const char *arg, at_note_verifier **out, at_error *err)
{
    at_buf b;
    at_buf_init(&b, AT_NOTE_MAX_BYTES);
    struct stat sb;
    at_result r = AT_OK;
    if (stat(arg, &sb) == 0 && S_ISREG(sb.st_mode)) {
        int fd = open(arg, O_RDONLY | O_CLOEXEC);
        char chunk[4096];
        ssize_t k = 0;
        if (fd < 0)
            r = AT_ERR_IO;
        while (r == AT_OK && (k = read(fd, chunk, sizeof chunk)) > 0)
            r = at_buf_add(&b, chunk, (size_t)k);
        if (r == AT_OK && k < 0)
            r = AT_ERR_IO;
        if (fd >= 0)
            close(fd);
        if (r != AT_OK)
            at_error_set(err, r == AT_ERR_TOO_BIG ? r : AT_ERR_IO, -1, "cannot read a key from %s", arg);
    } else {
        r = at_buf_adds(&b, arg);
        if (r != AT_OK)
            at_error_set(err, r, -1, "key too long");
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' '))
        b.data[--b.len] = 0;
    if (r == AT_OK)
        r = at_note_verifier_new(b.data ? b.data : "", b.len, out, err);
    at_buf_fini(&b);
    return r;
}

at_result at_witness_option_parse(const char *arg, char **url, at_note_verifier **key, at_error *err)
{
    const char *eq = strchr(arg, '=');
    size_t ul = eq ? (size_t)(eq - arg) : 0;
    bool http = ul > 7 && strncmp(arg, "http://", 7) == 0, https = ul > 8 && strncmp(arg, "https://", 8) == 0;
    if (!eq || !eq[1] || !(http || https))
        return at_error_set(err, AT_ERR_INVALID, -1,
                            "expected URL=VKEY: the witness's http:// or https:// prefix, '=', its key");
    for (size_t i = 0; i < ul; i++)
        if ((unsigned char)arg[i] <= 0x20 || arg[i] == 0x7f)
            return at_error_set(err, AT_ERR_INVALID, (int64_t)i, "a space or control character in the URL");
    at_note_verifier *v = NULL;
    at_result r = at_witness_vkey_load(eq + 1, &v, err);
    if (r != AT_OK)
        return r;
    at_note_type t = at_note_verifier_type(v);
    if (t != AT_NOTE_COSIG_V1) {
        at_note_verifier_free(v);
        return at_error_set(err, AT_ERR_INVALID, -1,
                            "the key is of type 0x%02x, not a cosignature key (type 0x04): use the one "
                            "`agent-traced witness --key FILE --print-vkey` prints",
                            (unsigned)t);
    }
    if (!(*url = strndup(arg, ul))) {
        at_note_verifier_free(v);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    *key = v;
    return AT_OK;
}
