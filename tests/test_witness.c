/* test_witness.c - the witness (c2sp.org/tlog-witness, tlog-cosignature):
 *
 * unit: the add-checkpoint body parser and writer; every answer of
 * at_witness_add_checkpoint (200, 400, 403, 404, 409 with its size body,
 * 413, 422) over real trees (at_tlog) and a fork of them; cosignatures
 * checked by at_note_open, by the log side's at_witness_cosig_check and,
 * when GONOTE names tests/gonote, by Go's x/mod note; the state across
 * reopening, a damaged state, the lock, and SIGKILL at random moments of a
 * cosigning loop; the log side's helpers.
 *
 * integration: `agent-traced witness` and `agent-traced serve --witness`
 * on loopback (port 0): uploads get cosigned checkpoints; the witness
 * killed with SIGKILL, the log publishing without it, the witness back on
 * the same port and the log's checkpoint cosigned again without a new
 * write; then a second `serve` with the same key and origin over other
 * storage (a fork) is refused (409 at the same size, 422 beyond) and
 * logged, and its checkpoints carry no cosignature, while the first log
 * keeps being cosigned. */
#include "testlib.h"

#include "agenttrace/buf.h"
#include "agenttrace/merkle.h"
#include "agenttrace/note.h"
#include "agenttrace/tlog.h"
#include "agenttrace/witness.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char work[] = "/tmp/test_witness.XXXXXX";
static char bin[4096];
static const char *gonote;

#define NOW 1700000000u

/* ---- keys, trees, checkpoints ------------------------------------------------------------ */

static at_note_signer *mk_signer(const char *name, at_note_type key_type, at_note_type as, uint8_t seed_byte)
{
    uint8_t seed[AT_NOTE_KEY_LEN];
    memset(seed, seed_byte, sizeof seed);
    at_buf sk;
    at_buf_init(&sk, 0);
    at_note_signer *s = NULL;
    if (at_note_keygen_seed(name, strlen(name), key_type, seed, &sk, NULL, NULL) != AT_OK ||
        at_note_signer_new(sk.data, sk.len, as, &s, NULL) != AT_OK)
        s = NULL;
    at_buf_fini(&sk);
    return s;
}

static at_note_verifier *verifier_of(const at_note_signer *s)
{
    at_note_verifier *v = NULL;
    if (!s || at_note_signer_verifier(s, &v, NULL) != AT_OK)
        return NULL;
    return v;
}

/* A log of n entries "<prefix><i>" (the first `shared` entries "A<i>"). */
static at_tlog *mk_tree(const char *name, const char *prefix, unsigned shared, unsigned n)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    at_tlog *t = at_tlog_open(dir, NULL);
    for (unsigned i = 0; t && i < n; i++) {
        char e[32];
        int k = snprintf(e, sizeof e, "%s%u", i < shared ? "A" : prefix, i);
        at_slice sl = {e, (size_t)k};
        uint64_t first;
        if (at_tlog_append(t, &sl, 1, &first, NULL) != AT_OK) {
            at_tlog_free(t);
            return NULL;
        }
    }
    return t;
}

/* The signed checkpoint of t's first size entries, into out (reset). */
static void checkpoint(at_tlog *t, uint64_t size, const char *origin, const at_note_signer *s, at_buf *text,
                       at_buf *out)
{
    at_note_checkpoint cp = {.origin = origin, .origin_len = strlen(origin), .size = size};
    at_buf_reset(text);
    at_buf_reset(out);
    const at_note_signer *ss[1] = {s};
    if (at_tlog_root(t, size, cp.root, NULL) != AT_OK ||
        at_note_checkpoint_format(&cp, text, NULL) != AT_OK ||
        at_note_sign(text->data, text->len, ss, 1, out, NULL) != AT_OK)
        fprintf(stderr, "cannot make a checkpoint of size %llu\n", (unsigned long long)size);
}

/* The add-checkpoint body: old, the proof from old to size in t (empty
 * for 0), the note. */
static void body_for(at_tlog *t, uint64_t old, uint64_t size, const char *note, size_t note_len, at_buf *out)
{
    uint8_t(*proof)[AT_SHA256_LEN] = NULL;
    size_t n = 0;
    at_buf_reset(out);
    if (old > 0 && old <= size && at_tlog_consistency(t, old, size, &proof, &n, NULL) != AT_OK)
        n = 0;
    if (at_witness_request_format(old, (const uint8_t(*)[AT_NOTE_HASH_LEN])proof, n, note, note_len, out) !=
        AT_OK)
        fprintf(stderr, "cannot format a request\n");
    free(proof);
}

static int add(at_witness *w, const at_buf *body, at_buf *out, at_witness_answer *a)
{
    at_buf_reset(out);
    return at_witness_add_checkpoint(w, body->data, body->len, NOW, out, a);
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Runs GONOTE verify with the vkeys on note; its stdout into out. Exit status. */
static int go_verify(const char *note, size_t n, const char *vk1, const char *vk2, at_buf *out)
{
    int in[2], outp[2];
    if (pipe(in) < 0 || pipe(outp) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[1]);
        close(outp[0]);
        execl(gonote, gonote, "verify", vk1, vk2, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    if (write(in[1], note, n) != (ssize_t)n)
        fprintf(stderr, "short write to gonote\n");
    close(in[1]);
    char b[4096];
    ssize_t k;
    while ((k = read(outp[0], b, sizeof b)) > 0)
        (void)!at_buf_add(out, b, (size_t)k);
    close(outp[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- unit: the request body ------------------------------------------------------------------ */

static void test_parse(void)
{
    static const char h[] = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";
    static const char note[] = "example.com/log\n3\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n"
                               "\xe2\x80\x94 example.com/log AAAAAAAA\n";
    at_witness_request rq;
    at_error err;
    at_buf b;
    at_buf_init(&b, 0);

    /* no proof */
    (void)!at_buf_printf(&b, "old 0\n\n%s", note);
    CHECK(at_witness_request_parse(b.data, b.len, &rq, &err) == AT_OK, "old 0: %s", err.message);
    CHECK(rq.old_size == 0 && rq.n_proof == 0, "old 0, no proof");
    CHECK_BYTES(rq.note, rq.note_len, note, sizeof note - 1, "the note is the rest");

    /* 63 proof lines, the most */
    at_buf_reset(&b);
    (void)!at_buf_adds(&b, "old 18446744073709551615\n");
    for (int i = 0; i < 63; i++)
        (void)!at_buf_printf(&b, "%s\n", h);
    (void)!at_buf_printf(&b, "\n%s", note);
    CHECK(at_witness_request_parse(b.data, b.len, &rq, &err) == AT_OK, "63 lines: %s", err.message);
    CHECK(rq.old_size == UINT64_MAX && rq.n_proof == 63, "2^64-1 and 63 hashes");
    uint8_t want[32];
    size_t got = 0;
    CHECK(at_note_base64_decode(h, 44, AT_BASE64_STRICT, want, 32, &got) == AT_OK &&
              memcmp(rq.proof[62], want, 32) == 0,
          "a proof hash decoded");

    /* the writer writes what the parser reads */
    at_buf w2;
    at_buf_init(&w2, 0);
    CHECK(at_witness_request_format(rq.old_size, (const uint8_t(*)[32])rq.proof, rq.n_proof, rq.note,
                                    rq.note_len, &w2) == AT_OK,
          "format");
    CHECK_BYTES(w2.data, w2.len, b.data, b.len, "format(parse(body)) == body");
    CHECK(at_witness_request_format(1, (const uint8_t(*)[32])rq.proof, 64, note, 3, &w2) == AT_ERR_TOO_BIG,
          "format: 64 hashes refused");
    at_buf_fini(&w2);

    /* malformed bodies */
    struct {
        const char *body;
        int64_t line;
        const char *what;
    } bad[] = {
        {"", 0, "empty"},
        {"old 1", 0, "no newline"},
        {"old\n\nx\n", 0, "no size"},
        {"old 01\n\nx\n", 0, "leading zero"},
        {"old -1\n\nx\n", 0, "sign"},
        {"old +1\n\nx\n", 0, "plus"},
        {"old  1\n\nx\n", 0, "two spaces"},
        {"old 1 \n\nx\n", 0, "trailing space"},
        {"old 18446744073709551616\n\nx\n", 0, "2^64"},
        {"Old 1\n\nx\n", 0, "case"},
        {"old 1\r\n\r\nx\n", 0, "CRLF"},
        {"old 1\n", 1, "no empty line"},
        {"old 1\n\n", 2, "no checkpoint"},
        {"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n\nx\n", 1, "unpadded"},
        {"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\nx\n", 1, "non-canonical"},
        {"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpk==\n\nx\n", 1, "31 bytes"},
        {"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw= \n\nx\n", 1, "trailing space"},
        {"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n", 2, "proof then nothing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.line = -7;
        at_result r = at_witness_request_parse(bad[i].body, strlen(bad[i].body), &rq, &err);
        CHECK(r == AT_ERR_INVALID && err.line == bad[i].line, "%s: result %d, line %lld", bad[i].what, r,
              (long long)err.line);
    }
    at_buf_reset(&b);
    (void)!at_buf_adds(&b, "old 1\n");
    for (int i = 0; i < 64; i++)
        (void)!at_buf_printf(&b, "%s\n", h);
    (void)!at_buf_printf(&b, "\n%s", note);
    CHECK(at_witness_request_parse(b.data, b.len, &rq, &err) == AT_ERR_INVALID && err.line == 64,
          "64 proof lines refused at line 65 (%lld)", (long long)err.line);
    char *huge = calloc(1, AT_WITNESS_MAX_BODY + 2);
    CHECK(huge && at_witness_request_parse(huge, AT_WITNESS_MAX_BODY + 1, &rq, &err) == AT_ERR_TOO_BIG,
          "a body over the cap");
    free(huge);

    /* the log side's small parsers */
    uint64_t sz = 9;
    CHECK(at_witness_size_parse("20852014\n", 9, &sz) == AT_OK && sz == 20852014, "409 body");
    CHECK(at_witness_size_parse("0\n", 2, &sz) == AT_OK && sz == 0, "409 body 0");
    CHECK(at_witness_size_parse("7", 1, &sz) == AT_OK && sz == 7, "409 body without newline");
    CHECK(at_witness_size_parse("07\n", 3, &sz) == AT_ERR_INVALID, "409 body with a leading zero");
    CHECK(at_witness_size_parse("\n", 1, &sz) == AT_ERR_INVALID, "409 body empty");
    CHECK(at_witness_size_parse("1 2\n", 4, &sz) == AT_ERR_INVALID, "409 body with a space");
    at_buf_fini(&b);
}

/* ---- unit: the witness's answers ------------------------------------------------------------- */

static void test_answers(void)
{
    const char *origin = "log.example/a";
    at_note_signer *log = mk_signer(origin, AT_NOTE_ED25519, AT_NOTE_ED25519, 1);
    at_note_signer *impostor =
        mk_signer(origin, AT_NOTE_ED25519, AT_NOTE_ED25519, 2); /* same name, other key */
    at_note_signer *other = mk_signer("log.example/b", AT_NOTE_ED25519, AT_NOTE_ED25519, 3);
    /* a key made by `log keygen` (type 0x01) used as a witness key */
    at_note_signer *wit = mk_signer("witness.example/w1", AT_NOTE_ED25519, AT_NOTE_COSIG_V1, 4);
    at_note_verifier *log_v = verifier_of(log), *wit_v = verifier_of(wit), *other_v = verifier_of(other);
    CHECK(log && impostor && other && wit && log_v && wit_v && other_v, "keys");
    if (!(log && impostor && other && wit && log_v && wit_v && other_v))
        return;
    CHECK(at_note_verifier_type(wit_v) == AT_NOTE_COSIG_V1, "the witness verifies type 0x04");

    at_tlog *a = mk_tree("tree-a", "A", 20, 20), *f = mk_tree("tree-fork", "F", 3, 20);
    CHECK(a && f, "trees");
    if (!a || !f)
        return;
    char state[4200];
    snprintf(state, sizeof state, "%s/wstate", work);
    const at_note_verifier *logs[] = {log_v, other_v};
    at_witness_options o = {.signer = wit, .logs = logs, .n_logs = 2, .state_dir = state};
    at_error err = {0};
    at_witness *w = at_witness_open(&o, &err);
    CHECK(w != NULL, "open: %s", err.message);
    if (!w)
        return;
    uint64_t ls;
    uint8_t lr[32];
    CHECK(at_witness_latest(w, origin, strlen(origin), &ls, lr) == AT_ERR_NOT_FOUND,
          "a new witness knows nothing");

    at_buf text, note, body, out;
    at_buf_init(&text, 0);
    at_buf_init(&note, 0);
    at_buf_init(&body, 0);
    at_buf_init(&out, 0);
    at_witness_answer an;

    /* 400: malformed bodies and notes */
    at_buf_reset(&body);
    (void)!at_buf_adds(&body, "old 0\n");
    CHECK(add(w, &body, &out, &an) == 400 && strstr(out.data, "malformed request"), "400 malformed body: %s",
          out.data);
    checkpoint(a, 3, origin, log, &text, &note);
    body_for(a, 0, 3, note.data, text.len, &body); /* the text alone, no signature */
    CHECK(add(w, &body, &out, &an) == 400, "400 a note without signatures (%d)", an.status);
    at_buf_reset(&body);
    (void)!at_buf_adds(&body, "old 0\n\nnot a checkpoint\n\n\xe2\x80\x94 log.example/a AAAAAAAA\n");
    CHECK(add(w, &body, &out, &an) == 400, "400 a note that is not a checkpoint (%d: %s)", an.status,
          an.reason);
    at_buf big;
    at_buf_init(&big, 0);
    (void)!at_buf_printf(&big, "old 0\n\n");
    while (big.len <= AT_WITNESS_MAX_BODY)
        (void)!at_buf_adds(&big,
                           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    CHECK(add(w, &big, &out, &an) == 413, "413 a body over the cap (%d)", an.status);
    at_buf_fini(&big);

    /* 404: an origin the witness does not know */
    at_note_signer *stranger = mk_signer("log.example/zzz", AT_NOTE_ED25519, AT_NOTE_ED25519, 5);
    checkpoint(a, 3, "log.example/zzz", stranger, &text, &note);
    body_for(a, 0, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 404 && strstr(an.reason, "log.example/zzz"), "404 unknown origin (%d)",
          an.status);
    at_note_signer_free(stranger);

    /* 403: the origin's name, another key; a bad signature by the key */
    checkpoint(a, 3, origin, impostor, &text, &note);
    body_for(a, 0, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 403, "403 signed by an unknown key of the same name (%d)", an.status);
    checkpoint(a, 3, origin, log, &text, &note);
    body_for(a, 0, 3, note.data, note.len, &body);
    char *sig = strstr(body.data, "\xe2\x80\x94 log.example/a ");
    sig[strlen("\xe2\x80\x94 log.example/a ") + 10] ^= 1; /* a byte of the signature, not of the ID */
    CHECK(add(w, &body, &out, &an) == 403, "403 a bad signature by the log's key (%d: %s)", an.status,
          an.reason);
    /* a checkpoint of log b signed by log a's key */
    checkpoint(a, 3, "log.example/b", log, &text, &note);
    body_for(a, 0, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 403, "403 another trusted log's key does not count (%d)", an.status);

    /* 400: old size larger than the checkpoint's */
    checkpoint(a, 3, origin, log, &text, &note);
    body_for(a, 4, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 400 && strstr(an.reason, "larger"), "400 old > size (%d)", an.status);

    /* 422: old size 0 needs an empty proof */
    body_for(a, 2, 3, note.data, note.len, &body);
    memcpy(body.data, "old 0", 5); /* the proof from 2 to 3, claimed from 0 */
    CHECK(add(w, &body, &out, &an) == 422 && !an.fork, "422 a proof with old size 0 (%d)", an.status);

    /* 409: a new witness cosigned nothing: old must be 0 */
    body_for(a, 2, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 409 && strcmp(out.data, "0\n") == 0 &&
              strcmp(an.content_type, "text/x.tlog.size") == 0 && !an.fork,
          "409 with body 0 (%d [%s] %s)", an.status, out.data, an.content_type);

    /* 200: the first cosignature */
    body_for(a, 0, 3, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 200, "200 old 0 -> 3 (%d: %s)", an.status, an.reason);
    CHECK(strncmp(out.data, "\xe2\x80\x94 witness.example/w1 ", 22) == 0 && out.data[out.len - 1] == '\n' &&
              memchr(out.data, '\n', out.len) == out.data + out.len - 1,
          "one cosignature line [%s]", out.data);
    CHECK(strncmp(an.content_type, "text/plain", 10) == 0, "200 is text/plain");
    /* the checkpoint with it opens with both keys; the cosignature's time */
    at_buf cosigned;
    at_buf_init(&cosigned, 0);
    (void)!at_buf_add(&cosigned, note.data, note.len);
    (void)!at_buf_add(&cosigned, out.data, out.len);
    at_note *n = malloc(sizeof *n);
    const at_note_verifier *both[] = {log_v, wit_v};
    CHECK(at_note_open(cosigned.data, cosigned.len, both, 2, n, &err) == AT_OK && n->n_sigs == 2 &&
              n->sigs[1].verifier == wit_v && n->sigs[1].timestamp == NOW,
          "the cosigned checkpoint opens with both keys: %s", err.message);
    /* the log side's check */
    at_buf line;
    at_buf_init(&line, 0);
    uint64_t ts = 0;
    CHECK(at_witness_cosig_check(text.data, text.len, out.data, out.len, wit_v, &line, &ts, &err) == AT_OK &&
              ts == NOW,
          "cosig_check: %s", err.message);
    CHECK_BYTES(line.data, line.len, out.data, out.len, "cosig_check keeps the line");
    if (gonote) {
        at_buf vk1, vk2, gout;
        at_buf_init(&vk1, 0);
        at_buf_init(&vk2, 0);
        at_buf_init(&gout, 0);
        (void)!at_note_verifier_vkey(log_v, &vk1);
        (void)!at_note_verifier_vkey(wit_v, &vk2);
        int rc = go_verify(cosigned.data, cosigned.len, vk1.data, vk2.data, &gout);
        CHECK(rc == 0 && strstr(gout.data, "witness.example/w1+"), "Go verifies the cosignature (%d) [%s]",
              rc, gout.data ? gout.data : "");
        at_buf_fini(&vk1);
        at_buf_fini(&vk2);
        at_buf_fini(&gout);
    }
    CHECK(at_witness_latest(w, origin, strlen(origin), &ls, lr) == AT_OK && ls == 3, "latest: 3");

    /* 409: old 0 once something was cosigned */
    checkpoint(a, 5, origin, log, &text, &note);
    body_for(a, 0, 5, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 409 && strcmp(out.data, "3\n") == 0, "409 with body 3 ([%s])",
          out.data);
    /* 200: 3 -> 5 with its proof */
    body_for(a, 3, 5, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 200, "200 3 -> 5 (%d: %s)", an.status, an.reason);
    /* 200: the same checkpoint again (same size, same root) */
    CHECK(add(w, &body, &out, &an) == 409, "the same request again: old 3 is stale: 409 (%d)", an.status);
    body_for(a, 5, 5, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 200, "200 5 -> 5, same root (%d: %s)", an.status, an.reason);
    /* 422: 5 -> 5 with a proof */
    body_for(a, 4, 5, note.data, note.len, &body);
    memcpy(body.data, "old 5", 5);
    CHECK(add(w, &body, &out, &an) == 422, "422 a non-empty proof for equal sizes (%d)", an.status);

    /* forks: the fork tree shares the first 3 entries */
    checkpoint(f, 5, origin, log, &text, &note);
    body_for(f, 5, 5, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 409 && an.fork && strcmp(out.data, "5\n") == 0 &&
              strcmp(an.content_type, "text/x.tlog.size") == 0 && strstr(an.reason, "FORK"),
          "409 same size, another root (%d [%s] %s)", an.status, out.data, an.reason);
    CHECK(an.evidence[0] && file_exists(an.evidence), "the fork is kept as evidence (%s)", an.evidence);
    checkpoint(f, 9, origin, log, &text, &note);
    body_for(f, 5, 9, note.data, note.len, &body); /* the fork's own proof from its 5 */
    CHECK(add(w, &body, &out, &an) == 422 && an.fork, "422 the fork's proof does not match root 5 (%d)",
          an.status);
    body_for(f, 3, 9, note.data, note.len, &body); /* consistent with 3, the size it does share */
    CHECK(add(w, &body, &out, &an) == 409 && strcmp(out.data, "5\n") == 0, "409 old 3 is stale (%d)",
          an.status);
    /* tampered and truncated proofs for the right tree */
    checkpoint(a, 9, origin, log, &text, &note);
    body_for(a, 5, 9, note.data, note.len, &body);
    at_buf good;
    at_buf_init(&good, 0);
    (void)!at_buf_add(&good, body.data, body.len);
    body.data[6] = body.data[6] == 'A' ? 'B' : 'A'; /* the first proof hash */
    CHECK(add(w, &body, &out, &an) == 422, "422 a tampered proof (%d)", an.status);
    const char *second = strchr(good.data + 6, '\n') + 1; /* drop the first proof line */
    at_buf_reset(&body);
    (void)!at_buf_adds(&body, "old 5\n");
    (void)!at_buf_add(&body, second, good.len - (size_t)(second - good.data));
    CHECK(add(w, &body, &out, &an) == 422, "422 a short proof (%d)", an.status);
    CHECK(at_witness_latest(w, origin, strlen(origin), &ls, lr) == AT_OK && ls == 5,
          "nothing refused changed the state (%llu)", (unsigned long long)ls);
    CHECK(add(w, &good, &out, &an) == 200, "200 5 -> 9 (%d: %s)", an.status, an.reason);
    /* a smaller checkpoint, old = what was cosigned */
    checkpoint(a, 7, origin, log, &text, &note);
    body_for(a, 9, 7, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 400, "400 a smaller tree (%d)", an.status);
    /* the second log has its own state */
    checkpoint(a, 2, "log.example/b", other, &text, &note);
    body_for(a, 0, 2, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 200, "200 the other log (%d: %s)", an.status, an.reason);
    /* extension lines and more signatures (unknown keys) are fine */
    {
        at_note_checkpoint cp = {
            .origin = origin, .origin_len = strlen(origin), .size = 10, .ext = "ext line\n", .ext_len = 9};
        (void)!at_tlog_root(a, 10, cp.root, NULL);
        at_buf_reset(&text);
        at_buf_reset(&note);
        const at_note_signer *ss[2] = {
            stranger = mk_signer("someone.else", AT_NOTE_ED25519, AT_NOTE_ED25519, 9), log};
        CHECK(at_note_checkpoint_format(&cp, &text, NULL) == AT_OK &&
                  at_note_sign(text.data, text.len, ss, 2, &note, NULL) == AT_OK,
              "a checkpoint with an extension line");
        body_for(a, 9, 10, note.data, note.len, &body);
        CHECK(add(w, &body, &out, &an) == 200, "200 with an extension line and an unknown signature (%d: %s)",
              an.status, an.reason);
        CHECK(at_witness_cosig_check(text.data, text.len, out.data, out.len, wit_v, &line, &ts, &err) ==
                  AT_OK,
              "the cosignature covers the extension line: %s", err.message);
        at_note_signer_free(stranger);
    }

    /* the log side's check of bad answers */
    checkpoint(a, 9, origin, log, &text, &note);
    at_buf_reset(&line);
    CHECK(at_witness_cosig_check(text.data, text.len, out.data, out.len, wit_v, &line, &ts, &err) ==
              AT_ERR_INVALID,
          "cosig_check: a cosignature of another checkpoint");
    CHECK(at_witness_cosig_check(text.data, text.len, out.data, out.len, log_v, &line, &ts, &err) ==
              AT_ERR_INVALID,
          "cosig_check: a type 0x01 key is no witness key");
    CHECK(at_witness_cosig_check(text.data, text.len, "garbage\n", 8, wit_v, &line, &ts, &err) ==
              AT_ERR_INVALID,
          "cosig_check: garbage");
    CHECK(at_witness_cosig_check(text.data, text.len, "", 0, wit_v, &line, &ts, &err) == AT_ERR_INVALID,
          "cosig_check: empty");
    body_for(a, 9, 9, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 409, "9 is stale now (10 was cosigned)");
    checkpoint(a, 10, origin, log, &text, &note);
    body_for(a, 10, 10, note.data, note.len, &body);
    CHECK(add(w, &body, &out, &an) == 200, "200 10 -> 10 (%d %s)", an.status, an.reason);
    at_buf ans;
    at_buf_init(&ans, 0);
    (void)!at_buf_printf(&ans, "\xe2\x80\x94 someone.else AAAAAAAAAAAA\n%s", out.data);
    CHECK(at_witness_cosig_check(text.data, text.len, ans.data, ans.len, wit_v, &line, &ts, &err) == AT_OK,
          "cosig_check: lines by unknown keys are skipped: %s", err.message);
    at_buf_reset(&ans);
    (void)!at_buf_printf(&ans, "\n%s", out.data);
    CHECK(at_witness_cosig_check(text.data, text.len, ans.data, ans.len, wit_v, &line, &ts, &err) ==
              AT_ERR_INVALID,
          "cosig_check: an empty line");
    at_note_signer *wit2 = mk_signer("witness.example/w1", AT_NOTE_COSIG_V1, AT_NOTE_COSIG_V1, 6);
    at_note_verifier *wit2_v = verifier_of(wit2);
    CHECK(at_witness_cosig_check(text.data, text.len, out.data, out.len, wit2_v, &line, &ts, &err) ==
              AT_ERR_NOT_FOUND,
          "cosig_check: no line by the key expected");
    at_buf_reset(&ans);
    (void)!at_buf_add(&ans, out.data, out.len);
    ans.data[ans.len - 5] ^= 1;
    CHECK(at_witness_cosig_check(text.data, text.len, ans.data, ans.len, wit_v, &line, &ts, &err) != AT_OK,
          "cosig_check: a tampered cosignature");

    /* the state survives reopening, and a second witness cannot take it */
    at_witness *w2 = at_witness_open(&o, &err);
    CHECK(!w2 && err.code == AT_ERR_CONFLICT, "a second witness on the state is refused: %s", err.message);
    at_witness_free(w2);
    at_witness_free(w);
    w = at_witness_open(&o, &err);
    CHECK(w != NULL, "reopen: %s", err.message);
    uint8_t root10[32];
    (void)!at_tlog_root(a, 10, root10, NULL);
    CHECK(w && at_witness_latest(w, origin, strlen(origin), &ls, lr) == AT_OK && ls == 10 &&
              memcmp(lr, root10, 32) == 0,
          "the state after reopening: 10 and its root");
    CHECK(w && at_witness_latest(w, "log.example/b", 13, &ls, lr) == AT_OK && ls == 2, "the other log's: 2");
    checkpoint(f, 10, origin, log, &text, &note);
    body_for(f, 10, 10, note.data, note.len, &body);
    CHECK(w && add(w, &body, &out, &an) == 409 && an.fork, "after reopening, the fork is still refused");
    at_witness_free(w);

    /* a state whose log was removed from the configuration is kept */
    const at_note_verifier *only_a[] = {log_v};
    at_witness_options o1 = {.signer = wit, .logs = only_a, .n_logs = 1, .state_dir = state};
    w = at_witness_open(&o1, &err);
    checkpoint(a, 11, origin, log, &text, &note);
    body_for(a, 10, 11, note.data, note.len, &body);
    CHECK(w && add(w, &body, &out, &an) == 200, "200 with one log configured");
    at_witness_free(w);
    w = at_witness_open(&o, &err);
    CHECK(w && at_witness_latest(w, "log.example/b", 13, &ls, lr) == AT_OK && ls == 2,
          "the unconfigured log's state was kept");
    at_witness_free(w);

    /* damaged states are refused; temporary files are swept */
    char p[4300], tmpf[4300];
    snprintf(p, sizeof p, "%s/state", state);
    snprintf(tmpf, sizeof tmpf, "%s/.state.tmp-abcdef", state);
    size_t sl;
    char *saved = t_read_file(p, &sl);
    FILE *tf = fopen(tmpf, "w");
    if (tf)
        fclose(tf);
    const char *damaged[] = {
        "",
        "agent-traced witness state v2\n",
        "agent-traced witness state v1\nlog.example/a 10\n",
        "agent-traced witness state v1\nlog.example/a 010 PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n",
        "agent-traced witness state v1\nlog.example/a 10 PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n",
        "agent-traced witness state v1\nlog.example/a 10 PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "agent-traced witness state v1\nlog.example/a 1 PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
        "log.example/a 2 PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        FILE *df = fopen(p, "w");
        if (df) {
            fputs(damaged[i], df);
            fclose(df);
        }
        w = at_witness_open(&o, &err);
        CHECK(!w && err.code == AT_ERR_INVALID, "damaged state %zu refused: %s", i,
              w ? "opened" : err.message);
        at_witness_free(w);
    }
    FILE *df = fopen(p, "w");
    if (df && saved) {
        fwrite(saved, 1, sl, df);
        fclose(df);
    }
    free(saved);
    w = at_witness_open(&o, &err);
    CHECK(w && !file_exists(tmpf), "restored state opens; the temporary file is swept");
    at_witness_free(w);

    /* the key types */
    o.signer = log; /* type 0x01 */
    CHECK(!at_witness_open(&o, &err) && err.code == AT_ERR_INVALID, "an Ed25519 signer is no cosigner");
    o.signer = wit;
    const at_note_verifier *bad_logs[] = {wit_v};
    at_witness_options ob = {.signer = wit, .logs = bad_logs, .n_logs = 1, .state_dir = state};
    CHECK(!at_witness_open(&ob, &err) && err.code == AT_ERR_INVALID, "a cosignature key is no log key");
    ob.n_logs = 0;
    CHECK(!at_witness_open(&ob, &err), "no log key");

    /* serve --witness URL=VKEY */
    at_buf opt, vk;
    at_buf_init(&opt, 0);
    at_buf_init(&vk, 0);
    (void)!at_note_verifier_vkey(wit_v, &vk);
    (void)!at_buf_printf(&opt, "http://127.0.0.1:9/w=%s", vk.data);
    char *url = NULL;
    at_note_verifier *kv = NULL;
    CHECK(at_witness_option_parse(opt.data, &url, &kv, &err) == AT_OK && url &&
              strcmp(url, "http://127.0.0.1:9/w") == 0 && kv &&
              at_note_verifier_id(kv) == at_note_verifier_id(wit_v),
          "URL=VKEY: %s", err.message);
    free(url);
    at_note_verifier_free(kv);
    char kf[4300];
    snprintf(kf, sizeof kf, "%s/w.vkey", work);
    FILE *kff = fopen(kf, "w");
    if (kff) {
        fprintf(kff, "%s\n", vk.data);
        fclose(kff);
    }
    at_buf_reset(&opt);
    (void)!at_buf_printf(&opt, "https://w.example=%s", kf);
    url = NULL;
    kv = NULL;
    CHECK(at_witness_option_parse(opt.data, &url, &kv, &err) == AT_OK && url &&
              strcmp(url, "https://w.example") == 0,
          "URL=FILE: %s", err.message);
    free(url);
    at_note_verifier_free(kv);
    at_buf_reset(&vk);
    (void)!at_note_verifier_vkey(log_v, &vk);
    at_buf_reset(&opt);
    (void)!at_buf_printf(&opt, "http://w.example=%s", vk.data);
    CHECK(at_witness_option_parse(opt.data, &url, &kv, &err) == AT_ERR_INVALID && strstr(err.message, "0x04"),
          "URL=<a type 0x01 key> refused: %s", err.message);
    const char *bad_opts[] = {"http://w.example", "w.example=x",  "ftp://w.example=x",
                              "http://=x",        "http://w x=y", "http://w.example="};
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++)
        CHECK(at_witness_option_parse(bad_opts[i], &url, &kv, &err) != AT_OK, "--witness %s refused",
              bad_opts[i]);
    at_buf_fini(&opt);
    at_buf_fini(&vk);

    at_note_signer_free(wit2);
    at_note_verifier_free(wit2_v);
    at_buf_fini(&ans);
    at_buf_fini(&good);
    at_buf_fini(&line);
    free(n);
    at_buf_fini(&cosigned);
    at_buf_fini(&text);
    at_buf_fini(&note);
    at_buf_fini(&body);
    at_buf_fini(&out);
    at_tlog_free(a);
    at_tlog_free(f);
    at_note_verifier_free(log_v);
    at_note_verifier_free(wit_v);
    at_note_verifier_free(other_v);
    at_note_signer_free(log);
    at_note_signer_free(impostor);
    at_note_signer_free(other);
    at_note_signer_free(wit);
}

/* ---- unit: SIGKILL at any moment ------------------------------------------------------------ */

#define KILL_TREE 600

/* The child: cosigns sizes one by one from what the state holds, telling
 * the parent each size answered 200. */
static void cosign_loop(int fd, const char *state, uint8_t seed_log, uint8_t seed_wit)
{
    const char *origin = "log.example/kill";
    at_note_signer *log = mk_signer(origin, AT_NOTE_ED25519, AT_NOTE_ED25519, seed_log);
    at_note_signer *wit = mk_signer("witness.example/k", AT_NOTE_COSIG_V1, AT_NOTE_COSIG_V1, seed_wit);
    at_note_verifier *log_v = verifier_of(log);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tree-kill", work);
    at_tlog *t = at_tlog_open(dir, NULL);
    const at_note_verifier *logs[] = {log_v};
    at_witness_options o = {.signer = wit, .logs = logs, .n_logs = 1, .state_dir = state};
    at_witness *w = t ? at_witness_open(&o, NULL) : NULL;
    if (!w)
        _exit(3);
    uint64_t size = 0;
    uint8_t root[32];
    if (at_witness_latest(w, origin, strlen(origin), &size, root) != AT_OK)
        size = 0;
    at_buf text, note, body, out;
    at_buf_init(&text, 0);
    at_buf_init(&note, 0);
    at_buf_init(&body, 0);
    at_buf_init(&out, 0);
    for (uint64_t next = size + 1; next <= KILL_TREE; next++) {
        checkpoint(t, next, origin, log, &text, &note);
        body_for(t, size, next, note.data, note.len, &body);
        at_witness_answer an;
        if (add(w, &body, &out, &an) != 200)
            _exit(4);
        size = next;
        if (write(fd, &size, sizeof size) != sizeof size)
            _exit(5);
    }
    _exit(0);
}

static void test_kill(void)
{
    char state[4200], dir[4200];
    snprintf(state, sizeof state, "%s/kstate", work);
    snprintf(dir, sizeof dir, "%s/tree-kill", work);
    at_tlog *t = mk_tree("tree-kill", "A", KILL_TREE, KILL_TREE);
    CHECK(t != NULL, "the tree for the kill test");
    if (!t)
        return;
    srand(12345);
    int kills = 0, bad = 0;
    uint64_t last = 0;
    for (int round = 0; round < 25 && last < KILL_TREE; round++) {
        int p[2];
        if (pipe(p) < 0)
            break;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            cosign_loop(p[1], state, 11, 12);
        }
        close(p[1]);
        usleep((useconds_t)(rand() % 40000));
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st))
            kills++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        uint64_t v;
        while (read(p[0], &v, sizeof v) == sizeof v)
            last = v;
        close(p[0]);
        /* reopen: the state is whole, holds at least every size answered
         * 200 (at most one more: the one in flight), with its root */
        at_note_signer *wit = mk_signer("witness.example/k", AT_NOTE_COSIG_V1, AT_NOTE_COSIG_V1, 12);
        at_note_signer *log = mk_signer("log.example/kill", AT_NOTE_ED25519, AT_NOTE_ED25519, 11);
        at_note_verifier *log_v = verifier_of(log);
        const at_note_verifier *logs[] = {log_v};
        at_witness_options o = {.signer = wit, .logs = logs, .n_logs = 1, .state_dir = state};
        at_error err = {0};
        at_witness *w = at_witness_open(&o, &err);
        uint64_t size = 0;
        uint8_t root[32], want[32];
        if (!w) {
            bad++;
            fprintf(stderr, "round %d: reopen: %s\n", round, err.message);
        } else if (at_witness_latest(w, "log.example/kill", 16, &size, root) == AT_OK) {
            if (size < last || size > last + 1 || at_tlog_root(t, size, want, NULL) != AT_OK ||
                memcmp(root, want, 32) != 0) {
                bad++;
                fprintf(stderr, "round %d: state %llu, last answered %llu\n", round, (unsigned long long)size,
                        (unsigned long long)last);
            }
            last = size;
        } else if (last != 0) {
            bad++;
        }
        at_witness_free(w);
        at_note_verifier_free(log_v);
        at_note_signer_free(log);
        at_note_signer_free(wit);
    }
    CHECK(bad == 0, "SIGKILL while cosigning: %d bad rounds of 25 (%d killed, reached size %llu)", bad, kills,
          (unsigned long long)last);
    CHECK(kills > 0 && last > 0, "the loop was killed (%d) after cosigning (%llu)", kills,
          (unsigned long long)last);
    char tmp_left[4300];
    snprintf(tmp_left, sizeof tmp_left, "%s", state);
    DIR *d = opendir(tmp_left);
    struct dirent *e;
    int tmps = 0;
    while (d && (e = readdir(d)))
        tmps += strncmp(e->d_name, ".state.tmp-", 11) == 0;
    if (d)
        closedir(d);
    CHECK(tmps == 0, "no temporary state file is left after the last reopen (%d)", tmps);
    at_tlog_free(t);
}

/* ---- integration: processes ----------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    int errfd;
    pthread_t drain;
    bool draining;
    char log[4200];
} proc;

static void *drain_stderr(void *arg)
{
    proc *d = arg;
    FILE *f = fopen(d->log, "a");
    char b[4096];
    ssize_t k;
    while ((k = read(d->errfd, b, sizeof b)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && f) {
            fwrite(b, 1, (size_t)k, f);
            fflush(f);
        }
    if (f)
        fclose(f);
    return NULL;
}

/* Starts bin with args; its stderr to <work>/<name>.log; reads the port of
 * "listening on HOST:PORT". */
static bool start(proc *d, const char *name, const char *const *args)
{
    memset(d, 0, sizeof *d);
    snprintf(d->log, sizeof d->log, "%s/%s.log", work, name);
    int p[2];
    if (pipe(p) < 0)
        return false;
    const char *argv[40] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        unsetenv("AGENT_STRACE_AUTH_KEY");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    d->errfd = p[0];
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1) {
        struct pollfd pfd = {d->errfd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t k = read(d->errfd, line + len, 1);
        if (k <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        fprintf(stderr, "%s did not start: [%s]\n", name, line);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        close(d->errfd);
        return false;
    }
    d->port = (int)strtol(colon + 1, NULL, 10);
    d->draining = pthread_create(&d->drain, NULL, drain_stderr, d) == 0;
    return d->port > 0;
}

/* Sends sig; the exit status (128 + signal when killed; -1: did not exit in 20 s). */
static int stop(proc *d, int sig)
{
    kill(d->pid, sig);
    int st = 0, rc = -1;
    for (int i = 0; i < 2000; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        usleep(10000);
    }
    if (rc == -1) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    if (d->draining)
        pthread_join(d->drain, NULL);
    close(d->errfd);
    return rc;
}

static bool log_has(const proc *d, const char *s)
{
    char *t = t_read_file(d->log, NULL);
    bool yes = t && strstr(t, s);
    free(t);
    return yes;
}

static int count_in_log(const proc *d, const char *s)
{
    char *t = t_read_file(d->log, NULL);
    int n = 0;
    for (const char *p = t; p && (p = strstr(p, s)); p += strlen(s))
        n++;
    free(t);
    return n;
}

/* Runs bin with args, stdout into out; the exit status. */
static int run(const char *const *args, at_buf *out)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    const char *argv[20] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 19; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    char b[4096];
    ssize_t k;
    while ((k = read(p[0], b, sizeof b)) > 0)
        (void)!at_buf_add(out, b, (size_t)k);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    while (out->len && out->data[out->len - 1] == '\n')
        out->data[--out->len] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    return at_buf_add(ud, p, size * n) == AT_OK ? size * n : 0;
}

typedef struct {
    const char *p;
    size_t n, off;
} upload;

static size_t source(char *buf, size_t size, size_t nitems, void *ud)
{
    upload *u = ud;
    size_t k = u->n - u->off < size * nitems ? u->n - u->off : size * nitems;
    memcpy(buf, u->p + u->off, k);
    u->off += k;
    return k;
}

/* GET (body NULL) or PUT; the status, the body in out (reset). */
static long http(int port, const char *path, const char *body, size_t n, at_buf *out)
{
    at_buf_reset(out);
    CURL *c = curl_easy_init();
    char url[4400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    upload u = {body, n, 0};
    if (body) { /* curl -T */
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, source);
        curl_easy_setopt(c, CURLOPT_READDATA, &u);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
    }
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (!out->data)
        (void)!at_buf_adds(out, "");
    return status;
}

/* A request with method to the witness; the status, body and content type. */
static long request(int port, const char *method, const char *path, const char *body, size_t n, at_buf *out,
                    char *ctype, size_t ccap)
{
    at_buf_reset(out);
    CURL *c = curl_easy_init();
    char url[4400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    long status = -1;
    ctype[0] = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(ctype, ccap, "%s", ct);
    }
    curl_easy_cleanup(c);
    if (!out->data)
        (void)!at_buf_adds(out, "");
    return status;
}

/* The witness's HTTP layer: routes, caps, and the answers' types. */
static void test_witness_http(int port, const at_buf *cp)
{
    at_buf out, body;
    at_buf_init(&out, 0);
    at_buf_init(&body, 0);
    char ct[128];
    CHECK(request(port, "GET", "/add-checkpoint", NULL, 0, &out, ct, sizeof ct) == 405,
          "GET /add-checkpoint: 405");
    CHECK(request(port, "POST", "/nothing", "x", 1, &out, ct, sizeof ct) == 404, "POST /nothing: 404");
    CHECK(request(port, "POST", "/add-checkpoint", "garbage", 7, &out, ct, sizeof ct) == 400 &&
              strstr(out.data, "malformed"),
          "POST garbage: 400 [%s]", out.data);
    char *big = malloc(AT_WITNESS_MAX_BODY + 10);
    memset(big, 'x', AT_WITNESS_MAX_BODY + 10);
    CHECK(request(port, "POST", "/add-checkpoint", big, AT_WITNESS_MAX_BODY + 10, &out, ct, sizeof ct) == 413,
          "POST a body over the cap: 413");
    free(big);
    (void)!at_buf_printf(&body, "old 0\n\n%.*s", (int)cp->len, cp->data);
    long st = request(port, "POST", "/add-checkpoint", body.data, body.len, &out, ct, sizeof ct);
    CHECK(st == 409 && strcmp(ct, "text/x.tlog.size") == 0 && out.len > 1 && out.data[out.len - 1] == '\n',
          "POST old 0 after cosigning: 409 %s [%s] (%ld)", ct, out.data, st);
    at_buf_fini(&out);
    at_buf_fini(&body);
}

static long put_file(int port, const char *path, const char *source_name)
{
    size_t n;
    char *b = t_read_file(path, &n);
    at_buf out;
    at_buf_init(&out, 0);
    char q[512];
    snprintf(q, sizeof q, "/import?source=%s", source_name);
    long st = b ? http(port, q, b, n, &out) : -1;
    free(b);
    at_buf_fini(&out);
    return st;
}

/* A small transcript of its own session. */
static long put_session(int port, const char *sid)
{
    char t[512];
    int k = snprintf(t, sizeof t,
                     "{\"type\":\"user\",\"sessionId\":\"%s\",\"uuid\":\"u-%s\",\"timestamp\":"
                     "\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"user\",\"content\":\"hello %s\"}}\n",
                     sid, sid, sid);
    at_buf out;
    at_buf_init(&out, 0);
    char q[256];
    snprintf(q, sizeof q, "/import?source=%s.jsonl", sid);
    long st = http(port, q, t, (size_t)k, &out);
    at_buf_fini(&out);
    return st;
}

typedef struct {
    uint64_t size;
    bool log_ok;   /* the log's signature verifies */
    bool cosigned; /* and the witness's */
    uint64_t cosig_time;
} cp_state;

/* GET /log/checkpoint, opened with the log's and the witness's keys. */
static cp_state get_checkpoint(int port, const at_note_verifier *log_v, const at_note_verifier *wit_v,
                               at_buf *cp)
{
    cp_state s = {0};
    if (http(port, "/log/checkpoint", NULL, 0, cp) != 200)
        return s;
    at_note *n = malloc(sizeof *n);
    const at_note_verifier *both[] = {log_v, wit_v};
    at_note_checkpoint c;
    if (n && at_note_open(cp->data, cp->len, both, 2, n, NULL) == AT_OK &&
        at_note_checkpoint_parse(n->text, n->text_len, &c, NULL) == AT_OK) {
        s.size = c.size;
        for (size_t i = 0; i < n->n_sigs; i++) {
            s.log_ok |= n->sigs[i].verifier == log_v;
            if (n->sigs[i].verifier == wit_v) {
                s.cosigned = true;
                s.cosig_time = n->sigs[i].timestamp;
            }
        }
    }
    free(n);
    return s;
}

/* Polls until the checkpoint has size `size` and (when want_cosig) the
 * witness's cosignature; at most secs seconds. */
static cp_state wait_checkpoint(int port, uint64_t size, bool want_cosig, int secs,
                                const at_note_verifier *log_v, const at_note_verifier *wit_v, at_buf *cp)
{
    cp_state s = {0};
    for (int i = 0; i < secs * 20; i++) {
        s = get_checkpoint(port, log_v, wit_v, cp);
        if (s.size == size && (!want_cosig || s.cosigned))
            return s;
        usleep(50000);
    }
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_processes(void)
{
    /* keys, made by the command line */
    char lkey[4300], wkey[4300], state[4300], sa[4300], sb[4300];
    snprintf(lkey, sizeof lkey, "%s/log.key", work);
    snprintf(wkey, sizeof wkey, "%s/witness.key", work);
    snprintf(state, sizeof state, "%s/witness-state", work);
    snprintf(sa, sizeof sa, "%s/storage-a", work);
    snprintf(sb, sizeof sb, "%s/storage-b", work);
    const char *origin = "test.example/agent-traced";
    at_buf lvk, wvk01, wvk, out, cp;
    at_buf_init(&lvk, 0);
    at_buf_init(&wvk01, 0);
    at_buf_init(&wvk, 0);
    at_buf_init(&out, 0);
    at_buf_init(&cp, 0);
    CHECK(run((const char *[]){"log", "keygen", "--origin", origin, "--out", lkey, NULL}, &lvk) == 0,
          "log keygen (the log)");
    CHECK(run((const char *[]){"log", "keygen", "--origin", "witness.test/w1", "--out", wkey, NULL},
              &wvk01) == 0,
          "log keygen (the witness)");
    CHECK(run((const char *[]){"witness", "--key", wkey, "--print-vkey", NULL}, &wvk) == 0 &&
              strncmp(wvk.data, "witness.test/w1+", 16) == 0 && strcmp(wvk.data, wvk01.data) != 0,
          "witness --print-vkey [%s]", wvk.data);
    at_note_verifier *log_v = NULL, *wit_v = NULL, *wit01 = NULL;
    CHECK(at_note_verifier_new(lvk.data, lvk.len, &log_v, NULL) == AT_OK &&
              at_note_verifier_new(wvk.data, wvk.len, &wit_v, NULL) == AT_OK &&
              at_note_verifier_new(wvk01.data, wvk01.len, &wit01, NULL) == AT_OK,
          "the printed keys parse");
    if (!log_v || !wit_v || !wit01)
        return;
    CHECK(at_note_verifier_type(wit_v) == AT_NOTE_COSIG_V1 &&
              memcmp(at_note_verifier_key(wit_v), at_note_verifier_key(wit01), 32) == 0,
          "the cosignature key is the keygen key with type 0x04");
    at_buf o2;
    at_buf_init(&o2, 0);
    CHECK(run((const char *[]){"witness", "--help", NULL}, &o2) == 0 && strstr(o2.data, "add-checkpoint"),
          "witness --help");
    at_buf_reset(&o2);
    CHECK(run((const char *[]){"witness", "--key", wkey, NULL}, &o2) == 2, "witness without --log: 2");
    CHECK(run((const char *[]){"witness", "--key", wkey, "--log", wvk.data, NULL}, &o2) == 2,
          "witness --log <a cosignature key>: 2");
    CHECK(run((const char *[]){"serve", "--witness", "nonsense", NULL}, &o2) == 2,
          "serve --witness nonsense: 2");
    char wopt_bad[4400];
    snprintf(wopt_bad, sizeof wopt_bad, "http://127.0.0.1:1=%s", wvk01.data);
    CHECK(run((const char *[]){"serve", "--witness", wopt_bad, NULL}, &o2) == 2,
          "serve --witness URL=<the type 0x01 key>: 2");
    at_buf_fini(&o2);

    /* the witness and the log */
    proc w, a, b;
    if (!start(&w, "witness",
               (const char *[]){"witness", "--key", wkey, "--log", lvk.data, "--port", "0", "--state", state,
                                NULL})) {
        CHECK(0, "the witness did not start");
        return;
    }
    char wport[16], wopt[4400];
    snprintf(wport, sizeof wport, "%d", w.port);
    snprintf(wopt, sizeof wopt, "http://127.0.0.1:%d=%s", w.port, wvk.data);
    if (!start(&a, "serve-a",
               (const char *[]){"serve", "--port", "0", "--storage", sa, "--threads", "2", "--log-key", lkey,
                                "--log-origin", origin, "--witness", wopt, NULL})) {
        CHECK(0, "serve did not start");
        stop(&w, SIGTERM);
        return;
    }

    /* uploads of every fixture: one entry each */
    const char *fixdir = t_src("tests/fixtures/claude-edge");
    DIR *d = opendir(fixdir);
    char *names[64];
    size_t nf = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && nf < 64)
        if (strstr(e->d_name, ".jsonl"))
            names[nf++] = strdup(e->d_name);
    if (d)
        closedir(d);
    qsort(names, nf, sizeof *names, cmp_str);
    uint64_t size = 0;
    for (size_t i = 0; i < nf; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", fixdir, names[i]);
        long st = put_file(a.port, p, names[i]);
        size += st == 201;
    }
    CHECK(size >= 5, "fixtures uploaded (%llu of %zu)", (unsigned long long)size, nf);
    cp_state s = wait_checkpoint(a.port, size, true, 15, log_v, wit_v, &cp);
    CHECK(s.size == size && s.log_ok && s.cosigned, "the checkpoint of size %llu is cosigned (%llu %d %d)",
          (unsigned long long)size, (unsigned long long)s.size, s.log_ok, s.cosigned);
    CHECK(s.cosig_time > 1600000000u && s.cosig_time < (uint64_t)time(NULL) + 5,
          "the cosignature's time (%llu)", (unsigned long long)s.cosig_time);
    if (gonote) {
        at_buf g;
        at_buf_init(&g, 0);
        int rc = go_verify(cp.data, cp.len, lvk.data, wvk.data, &g);
        CHECK(rc == 0 && strstr(g.data, "witness.test/w1+") && strstr(g.data, origin),
              "Go opens the published checkpoint with both keys (%d) [%s]", rc, g.data ? g.data : "");
        at_buf_fini(&g);
    }
    /* the checkpoint file holds the same */
    char cpf[4400];
    snprintf(cpf, sizeof cpf, "%s/.agent-traced/log/checkpoint", sa);
    size_t fl;
    char *onfile = t_read_file(cpf, &fl);
    CHECK(onfile && fl == cp.len && memcmp(onfile, cp.data, fl) == 0,
          "the checkpoint file is what is served");
    free(onfile);
    {
        /* an auditor's saved checkpoint: verify --witness checks its cosignature */
        char saved[4400], bare_f[4400], url[64], sdir[4400] = "";
        snprintf(saved, sizeof saved, "%s/saved.cp", work);
        snprintf(bare_f, sizeof bare_f, "%s/bare.cp", work);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", a.port);
        FILE *f = fopen(saved, "w");
        if (f) {
            fwrite(cp.data, 1, cp.len, f);
            fclose(f);
        }
        const char *blank = memmem(cp.data, cp.len, "\n\n", 2);
        const char *line2 = blank ? strchr(blank + 2, '\n') : NULL;
        f = fopen(bare_f, "w");
        if (f && line2)
            fwrite(cp.data, 1, (size_t)(line2 + 1 - cp.data), f); /* the log's signature only */
        if (f)
            fclose(f);
        DIR *sd = opendir(sa);
        struct dirent *se;
        while (sd && (se = readdir(sd)) && !sdir[0])
            if (se->d_name[0] != '.' && strcmp(se->d_name, "objects") != 0)
                snprintf(sdir, sizeof sdir, "%s/%s", sa, se->d_name);
        if (sd)
            closedir(sd);
        at_buf o;
        at_buf_init(&o, 0);
        int rc = run((const char *[]){"verify", "--log", url, "--vkey", lvk.data, "--checkpoint", saved,
                                      "--witness", wvk.data, sdir, NULL},
                     &o);
        CHECK(rc == 0 && strstr(o.data, "\"ok\": true"), "verify --witness: the saved checkpoint is cosigned (%d) [%s]",
              rc, o.data);
        at_buf_reset(&o);
        rc = run((const char *[]){"verify", "--log", url, "--vkey", lvk.data, "--checkpoint", bare_f, "--witness",
                                  wvk.data, sdir, NULL},
                 &o);
        CHECK(rc == 1 && strstr(o.data, "no cosignature by the witness witness.test/w1"),
              "verify --witness: a checkpoint without the cosignature fails (%d) [%s]", rc, o.data);
        at_buf_reset(&o);
        rc = run((const char *[]){"verify", "--log", url, "--vkey", lvk.data, "--checkpoint", saved, "--witness",
                                  lvk.data, sdir, NULL},
                 &o);
        CHECK(rc == 2, "verify --witness with a log key (not a cosignature key): usage error (%d)", rc);
        at_buf_reset(&o);
        rc = run((const char *[]){"verify", "--log", url, "--vkey", lvk.data, "--witness", wvk.data, sdir, NULL},
                 &o);
        CHECK(rc == 2, "verify --witness without --checkpoint: usage error (%d)", rc);
        at_buf_fini(&o);
    }
    char sp[4400];
    snprintf(sp, sizeof sp, "%s/state", state);
    char *st_text = t_read_file(sp, NULL);
    char want_line[256];
    snprintf(want_line, sizeof want_line, "%s %llu ", origin, (unsigned long long)size);
    CHECK(st_text && strstr(st_text, want_line), "the witness's state: %s", st_text ? st_text : "(none)");
    free(st_text);
    CHECK(log_has(&w, "cosigned size"), "the witness logs what it cosigns");
    {
        /* the bare checkpoint: the text and the log's line */
        at_buf bare;
        at_buf_init(&bare, 0);
        const char *blank = memmem(cp.data, cp.len, "\n\n", 2);
        const char *line2 = blank ? strchr(blank + 2, '\n') : NULL;
        if (line2)
            (void)!at_buf_add(&bare, cp.data, (size_t)(line2 + 1 - cp.data));
        test_witness_http(w.port, &bare);
        at_buf_fini(&bare);
    }

    /* SIGKILL the witness: the log goes on without it */
    CHECK(stop(&w, SIGKILL) == 128 + SIGKILL, "the witness killed");
    CHECK(put_session(a.port, "while-down") == 201, "an upload while the witness is down");
    size++;
    s = wait_checkpoint(a.port, size, false, 10, log_v, wit_v, &cp);
    CHECK(s.size == size && s.log_ok && !s.cosigned, "published without the cosignature (%llu %d %d)",
          (unsigned long long)s.size, s.log_ok, s.cosigned);
    usleep(300000);
    CHECK(log_has(&a, "no answer"), "serve logs that the witness did not answer");
    /* back on the same port: the current checkpoint gets cosigned without a write */
    if (!start(&w, "witness2",
               (const char *[]){"witness", "--key", wkey, "--log", lvk.data, "--port", wport, "--state",
                                state, NULL})) {
        CHECK(0, "the witness did not restart on port %s", wport);
        stop(&a, SIGTERM);
        return;
    }
    char last_line[128];
    snprintf(last_line, sizeof last_line, "last cosigned size %llu", (unsigned long long)(size - 1));
    for (int i = 0; i < 100 && !log_has(&w, last_line); i++)
        usleep(20000);
    CHECK(log_has(&w, last_line), "the restarted witness remembers size %llu",
          (unsigned long long)(size - 1));
    s = wait_checkpoint(a.port, size, true, 30, log_v, wit_v, &cp);
    CHECK(s.size == size && s.cosigned, "the checkpoint is cosigned once the witness is back (%llu %d)",
          (unsigned long long)s.size, s.cosigned);
    CHECK(log_has(&a, "cosigns again"), "serve logs that the witness is back");
    for (int i = 0; i < 2; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "after-restart-%d", i);
        CHECK(put_session(a.port, sid) == 201, "upload %s", sid);
        size++;
    }
    s = wait_checkpoint(a.port, size, true, 15, log_v, wit_v, &cp);
    CHECK(s.size == size && s.cosigned, "more uploads, still cosigned (%llu %d)", (unsigned long long)s.size,
          s.cosigned);
    uint64_t a_size = size;

    /* a fork: the same key and origin over other storage */
    if (!start(&b, "serve-b",
               (const char *[]){"serve", "--port", "0", "--storage", sb, "--threads", "2", "--log-key", lkey,
                                "--log-origin", origin, "--witness", wopt, NULL})) {
        CHECK(0, "the fork did not start");
        stop(&w, SIGTERM);
        stop(&a, SIGTERM);
        return;
    }
    uint64_t bsize = 0;
    for (size_t i = nf; i-- > 0;) { /* the other order: another tree */
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", fixdir, names[i]);
        if (put_file(b.port, p, names[i]) == 201) {
            bsize++;
            wait_checkpoint(b.port, bsize, false, 10, log_v, wit_v, &cp);
        }
    }
    for (int i = 0; bsize < a_size; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "fork-%d", i);
        if (put_session(b.port, sid) != 201)
            break;
        bsize++;
        s = wait_checkpoint(b.port, bsize, false, 10, log_v, wit_v, &cp);
        CHECK(s.size == bsize && s.log_ok && !s.cosigned, "fork checkpoint %llu: not cosigned (%llu %d)",
              (unsigned long long)bsize, (unsigned long long)s.size, s.cosigned);
    }
    /* the same size as the cosigned one, another root: 409 */
    for (int i = 0; i < 100 && !log_has(&w, "refused (409): test.example/agent-traced: FORK"); i++)
        usleep(50000);
    CHECK(log_has(&w, "refused (409): test.example/agent-traced: FORK"),
          "the witness refuses the fork at size %llu (409) and logs it", (unsigned long long)a_size);
    CHECK(log_has(&b, "409: it cosigned another tree"), "the fork's serve logs the refusal");
    /* beyond it: the proof from the cosigned size fails: 422 */
    CHECK(put_session(b.port, "fork-beyond") == 201, "the fork grows");
    bsize++;
    s = wait_checkpoint(b.port, bsize, false, 10, log_v, wit_v, &cp);
    CHECK(s.size == bsize && s.log_ok && !s.cosigned, "the fork's checkpoint %llu is not cosigned (%llu %d)",
          (unsigned long long)bsize, (unsigned long long)s.size, s.cosigned);
    for (int i = 0; i < 100 && !log_has(&w, "refused (422)"); i++)
        usleep(50000);
    CHECK(log_has(&w, "refused (422)") && log_has(&w, "does not verify"),
          "the witness refuses the fork beyond (422) and logs it");
    CHECK(log_has(&b, "HTTP 422"), "the fork's serve logs the 422");
    char ev[4400];
    snprintf(ev, sizeof ev, "%s/evidence", state);
    CHECK(count_dir(ev) >= 2, "the fork's requests are kept as evidence (%d)", count_dir(ev));
    CHECK(count_in_log(&w, "cosigned size") >= 2 && !log_has(&b, "cosigns again"),
          "the fork was never cosigned");

    /* the real log goes on being cosigned */
    CHECK(put_session(a.port, "after-fork") == 201, "an upload to the log after the fork");
    size++;
    s = wait_checkpoint(a.port, size, true, 15, log_v, wit_v, &cp);
    CHECK(s.size == size && s.cosigned, "the log is still cosigned after the fork (%llu %d)",
          (unsigned long long)s.size, s.cosigned);

    CHECK(stop(&b, SIGTERM) == 0, "the fork's serve exits 0");
    CHECK(stop(&a, SIGTERM) == 0, "serve exits 0");
    CHECK(stop(&w, SIGTERM) == 0, "the witness exits 0");
    /* a restart of the log reads back its cosigned checkpoint */
    if (start(&a, "serve-a2",
              (const char *[]){"serve", "--port", "0", "--storage", sa, "--threads", "2", "--log-key", lkey,
                               "--log-origin", origin, "--witness", wopt, NULL})) {
        s = get_checkpoint(a.port, log_v, wit_v, &cp);
        CHECK(s.size == size && s.cosigned,
              "after a restart of serve the cosigned checkpoint is served (%llu %d)",
              (unsigned long long)s.size, s.cosigned);
        CHECK(stop(&a, SIGTERM) == 0, "serve exits 0 again");
    } else {
        CHECK(0, "serve did not restart");
    }
    /* under --enable-sanitizers, the daemons' reports land in their logs */
    const char *logs[] = {"witness", "witness2", "serve-a", "serve-b", "serve-a2"};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        proc l;
        snprintf(l.log, sizeof l.log, "%s/%s.log", work, logs[i]);
        CHECK(!log_has(&l, "Sanitizer") && !log_has(&l, "runtime error"), "%s.log has no sanitizer report",
              logs[i]);
    }
    for (size_t i = 0; i < nf; i++)
        free(names[i]);
    at_note_verifier_free(log_v);
    at_note_verifier_free(wit_v);
    at_note_verifier_free(wit01);
    at_buf_fini(&lvk);
    at_buf_fini(&wvk01);
    at_buf_fini(&wvk);
    at_buf_fini(&out);
    at_buf_fini(&cp);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("TZ", "UTC", 1);
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 99;
    }
    gonote = getenv("GONOTE");
    if (gonote && access(gonote, X_OK) != 0)
        gonote = NULL;
    if (!gonote)
        printf("test_witness: GONOTE not set: the cases against Go are skipped\n");
    test_parse();
    test_answers();
    test_kill();
    const char *top = getenv("top_builddir");
    snprintf(bin, sizeof bin, "%s/agent-traced", top ? top : ".");
    if (access(bin, X_OK) == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        test_processes();
        curl_global_cleanup();
    } else {
        printf("test_witness: %s missing: the process tests are skipped\n", bin);
    }
    if (!t_failed) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", work);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", work);
    } else {
        fprintf(stderr, "test_witness: files kept in %s\n", work);
    }
    return t_done("test_witness");
}
