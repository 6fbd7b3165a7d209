/* fuzz_note.c - the transparency log's parsers (note.h, audit.h): verifier
 * and signer key texts, signed notes opened against known keys, checkpoint
 * texts, base64, and the c2sp.org/tlog-proof files `verify --proof` reads.
 * The first input byte picks the parser, the rest is its input:
 *   0 vkey          parsed keys write back texts that parse to the same key
 *   1 skey          the same for signers, both signer types
 *   2 note          at_note_open against an Ed25519 key and a cosigner key
 *   3 checkpoint    a checkpoint that parses formats back to the same bytes
 *   4 base64        what strict decoding accepts encodes back to itself;
 *                   Go mode accepts at least that
 *   5 proof         at_audit_proof on the bytes as given
 *   6 signed proof  the same after signing the checkpoint text (what follows
 *                   the first empty line) with the known key, so that the
 *                   inclusion proof and the entry are reached too
 *   7 sign, open    a text the signers accept opens with both signatures
 * The keys come from fixed seeds; the events file of a proof is empty. */
#include "fuzz.h"

#include "agenttrace/audit.h"
#include "agenttrace/buf.h"
#include "agenttrace/note.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOG_NAME     "fuzz.example/log"
#define WITNESS_NAME "fuzz.example/witness"

static at_note_signer *signers[2];     /* the log's key, the witness's */
static at_note_verifier *verifiers[2]; /* their public keys */
static int empty_fd = -1;              /* an empty events file */
static at_note *note;                  /* 11 KB: not on the stack */

static void keys_init(void)
{
    if (signers[0])
        return;
    const char *names[2] = {LOG_NAME, WITNESS_NAME};
    at_note_type types[2] = {AT_NOTE_ED25519, AT_NOTE_COSIG_V1};
    for (int i = 0; i < 2; i++) {
        uint8_t seed[AT_NOTE_KEY_LEN];
        memset(seed, 0x11 * (i + 1), sizeof seed);
        at_buf skey;
        at_buf_init(&skey, 0);
        at_error err = {0};
        FUZZ_CHECK(at_note_keygen_seed(names[i], strlen(names[i]), types[i], seed, &skey, NULL, &err) ==
                   AT_OK);
        FUZZ_CHECK(at_note_signer_new(skey.data, skey.len, types[i], &signers[i], &err) == AT_OK);
        FUZZ_CHECK(at_note_signer_verifier(signers[i], &verifiers[i], &err) == AT_OK);
        at_buf_fini(&skey);
    }
    FUZZ_CHECK((empty_fd = memfd_create("fuzz_note", 0)) >= 0);
    FUZZ_CHECK((note = malloc(sizeof *note)) != NULL);
}

static void same_verifier(const at_note_verifier *a, const at_note_verifier *b)
{
    size_t an, bn;
    const char *x = at_note_verifier_name(a, &an), *y = at_note_verifier_name(b, &bn);
    FUZZ_CHECK(an == bn && memcmp(x, y, an) == 0);
    FUZZ_CHECK(at_note_verifier_id(a) == at_note_verifier_id(b));
    FUZZ_CHECK(at_note_verifier_type(a) == at_note_verifier_type(b));
    FUZZ_CHECK(memcmp(at_note_verifier_key(a), at_note_verifier_key(b), AT_NOTE_KEY_LEN) == 0);
}

static void fuzz_vkey(const char *p, size_t n)
{
    at_note_verifier *v = NULL, *w = NULL;
    at_buf text;
    at_buf_init(&text, 0);
    if (at_note_verifier_new(p, n, &v, NULL) == AT_OK) {
        FUZZ_CHECK(at_note_verifier_vkey(v, &text) == AT_OK);
        FUZZ_CHECK(at_note_verifier_new(text.data, text.len, &w, NULL) == AT_OK);
        same_verifier(v, w);
    }
    at_note_verifier_free(w);
    at_note_verifier_free(v);
    at_buf_fini(&text);
}

static void fuzz_skey(const char *p, size_t n)
{
    at_note_type types[2] = {AT_NOTE_ED25519, AT_NOTE_COSIG_V1};
    for (int i = 0; i < 2; i++) {
        at_note_signer *s = NULL, *t = NULL;
        at_note_verifier *v = NULL, *w = NULL;
        at_buf skey, vkey;
        at_buf_init(&skey, 0);
        at_buf_init(&vkey, 0);
        at_error err = {0};
        if (at_note_signer_new(p, n, types[i], &s, &err) == AT_OK) {
            FUZZ_CHECK(at_note_signer_type(s) == types[i]);
            FUZZ_CHECK(at_note_signer_skey(s, &skey) == AT_OK);
            FUZZ_CHECK(at_note_signer_new(skey.data, skey.len, types[i], &t, &err) == AT_OK);
            FUZZ_CHECK(at_note_signer_id(s) == at_note_signer_id(t));
            FUZZ_CHECK(at_note_signer_vkey(s, &vkey) == AT_OK);
            FUZZ_CHECK(at_note_verifier_new(vkey.data, vkey.len, &v, &err) == AT_OK);
            FUZZ_CHECK(at_note_signer_verifier(t, &w, &err) == AT_OK);
            same_verifier(v, w);
        }
        at_note_verifier_free(w);
        at_note_verifier_free(v);
        at_note_signer_free(t);
        at_note_signer_free(s);
        at_buf_fini(&vkey);
        at_buf_fini(&skey);
    }
}

static void fuzz_open(const char *p, size_t n)
{
    at_error err = {0};
    const at_note_verifier *const known[2] = {verifiers[0], verifiers[1]};
    at_result r = at_note_open(p, n, known, 2, note, &err);
    FUZZ_CHECK((r == AT_OK) == (note->status == AT_NOTE_OPEN_OK));
    if (r == AT_OK || r == AT_ERR_NOT_FOUND) {
        FUZZ_CHECK(note->text >= p && note->text_len <= n && note->text + note->text_len <= p + n);
        FUZZ_CHECK(note->n_sigs <= AT_NOTE_MAX_SIGS && note->n_unverified <= AT_NOTE_MAX_SIGS);
        FUZZ_CHECK(at_note_check_text(note->text, note->text_len, NULL) == AT_OK);
    }
    if (r == AT_OK)
        FUZZ_CHECK(note->n_sigs >= 1 && note->sigs[0].verifier != NULL);
}

static void fuzz_checkpoint(const char *p, size_t n)
{
    at_note_checkpoint cp;
    at_buf out;
    at_buf_init(&out, 0);
    if (at_note_checkpoint_parse(p, n, &cp, NULL) == AT_OK) {
        FUZZ_CHECK(cp.origin_len > 0);
        FUZZ_CHECK(at_note_checkpoint_format(&cp, &out, NULL) == AT_OK);
        FUZZ_CHECK(out.len == n && memcmp(out.data, p, n) == 0);
    }
    at_buf_fini(&out);
}

static void fuzz_base64(const char *p, size_t n)
{
    size_t cap = n / 4 * 3 + 3, got = 0, got_go = 0;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    FUZZ_CHECK(a && b);
    at_buf enc;
    at_buf_init(&enc, 0);
    if (at_note_base64_decode(p, n, AT_BASE64_STRICT, a, cap, &got) == AT_OK) {
        FUZZ_CHECK(got <= cap);
        FUZZ_CHECK(at_note_base64_len(got) == n);
        FUZZ_CHECK(at_note_base64_encode(a, got, &enc) == AT_OK);
        FUZZ_CHECK(enc.len == n && memcmp(enc.data, p, n) == 0);
        FUZZ_CHECK(at_note_base64_decode(p, n, AT_BASE64_GO, b, cap, &got_go) == AT_OK);
        FUZZ_CHECK(got_go == got && memcmp(a, b, got) == 0);
    } else if (at_note_base64_decode(p, n, AT_BASE64_GO, b, cap, &got_go) == AT_OK) {
        FUZZ_CHECK(got_go <= cap);
    }
    at_buf_fini(&enc);
    free(b);
    free(a);
}

static void audit(const char *p, size_t n)
{
    at_audit a;
    at_error err = {0};
    at_result r = at_audit_proof(p, n, verifiers[0], empty_fd, &a, &err);
    FUZZ_CHECK(r == AT_OK || r == AT_ERR_INVALID || r == AT_ERR_NOMEM);
    FUZZ_CHECK(memchr(a.reason, 0, sizeof a.reason) != NULL);
    FUZZ_CHECK(memchr(a.session, 0, sizeof a.session) != NULL);
    if (r == AT_OK)
        FUZZ_CHECK(a.cp_text >= p && a.cp_text + a.cp_len == p + n);
}

static void fuzz_signed_proof(const char *p, size_t n)
{
    const char *e = memmem(p, n, "\n\n", 2);
    if (!e)
        return;
    size_t head = (size_t)(e - p) + 2;
    at_buf proof;
    at_buf_init(&proof, 0);
    at_error err = {0};
    const at_note_signer *const s[1] = {signers[0]};
    if (at_buf_add(&proof, p, head) == AT_OK &&
        at_note_sign(p + head, n - head, s, 1, &proof, &err) == AT_OK)
        audit(proof.data, proof.len);
    at_buf_fini(&proof);
}

static void fuzz_sign_open(const char *p, size_t n)
{
    at_buf msg;
    at_buf_init(&msg, 0);
    at_error err = {0};
    const at_note_signer *const s[2] = {signers[0], signers[1]};
    at_note_checkpoint cp;
    /* a cosigner signs checkpoints only */
    size_t k = at_note_checkpoint_parse(p, n, &cp, NULL) == AT_OK ? 2 : 1;
    if (at_note_sign(p, n, s, k, &msg, &err) == AT_OK) {
        const at_note_verifier *const known[2] = {verifiers[0], verifiers[1]};
        FUZZ_CHECK(at_note_open(msg.data, msg.len, known, 2, note, &err) == AT_OK);
        FUZZ_CHECK(note->text_len == n && memcmp(note->text, p, n) == 0);
        FUZZ_CHECK(note->n_sigs == k && note->n_unverified == 0);
    }
    at_buf_fini(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keys_init();
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] & 7) {
    case 0: fuzz_vkey(p, n); break;
    case 1: fuzz_skey(p, n); break;
    case 2: fuzz_open(p, n); break;
    case 3: fuzz_checkpoint(p, n); break;
    case 4: fuzz_base64(p, n); break;
    case 5: audit(p, n); break;
    case 6: fuzz_signed_proof(p, n); break;
    case 7: fuzz_sign_open(p, n); break;
    }
    return 0;
}
