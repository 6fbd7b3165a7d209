/* audit.c - offline checks of a session against the log (audit.h). */
#include "agenttrace/audit.h"

#include "agenttrace/merkle.h"
#include "agenttrace/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H AT_SHA256_LEN

static void fail(at_audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(at_audit *a, const char *fmt, ...)
{
    if (!a->ok)
        return; /* the first reason stands */
    a->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
}

/* The next line of [*p, end) (without its "\n"); false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return false; /* every line of a proof ends in "\n" */
    *line = *p;
    *n = (size_t)(nl - *p);
    *p = nl + 1;
    return true;
}

static bool take_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The value after "<key> " on the entry line that starts with it. */
static bool entry_field(const char *entry, size_t n, const char *key, const char **v, size_t *vn)
{
    size_t kl = strlen(key);
    for (const char *p = entry, *end = entry + n, *line; p < end;) {
        size_t ln;
        if (!next_line(&p, end, &line, &ln))
            break;
        if (ln > kl && memcmp(line, key, kl) == 0 && line[kl] == ' ') {
            *v = line + kl + 1;
            *vn = ln - kl - 1;
            return true;
        }
    }
    return false;
}

at_result at_audit_proof(const char *proof, size_t n, const at_note_verifier *vk, int events_fd, at_audit *a,
                         at_error *err)
{
    memset(a, 0, sizeof *a);
    a->ok = true;
    const char *p = proof, *end = proof + n, *line;
    size_t ln;
    uint8_t entry[70000];
    size_t entry_n = 0;
    bool have_entry = false;
    if (!next_line(&p, end, &line, &ln) || ln != 22 || memcmp(line, "c2sp.org/tlog-proof@v1", 22) != 0)
        return at_error_set(err, AT_ERR_INVALID, 0, "not a c2sp.org/tlog-proof@v1 file");
    if (!next_line(&p, end, &line, &ln))
        return at_error_set(err, AT_ERR_INVALID, -1, "the proof ends early");
    if (ln > 6 && memcmp(line, "extra ", 6) == 0) {
        if (at_note_base64_decode(line + 6, ln - 6, AT_BASE64_STRICT, entry, sizeof entry, &entry_n) != AT_OK)
            return at_error_set(err, AT_ERR_INVALID, -1, "the proof's extra line is not base64");
        have_entry = true;
        if (!next_line(&p, end, &line, &ln))
            return at_error_set(err, AT_ERR_INVALID, -1, "the proof ends early");
    }
    if (ln < 7 || memcmp(line, "index ", 6) != 0 || !take_u64(line + 6, ln - 6, &a->index))
        return at_error_set(err, AT_ERR_INVALID, -1, "the proof has no index line");
    uint8_t hashes[AT_MERKLE_MAX_PROOF * H];
    size_t nh = 0;
    for (;;) {
        if (!next_line(&p, end, &line, &ln))
            return at_error_set(err, AT_ERR_INVALID, -1, "the proof has no checkpoint");
        if (ln == 0)
            break;
        size_t got;
        if (nh == AT_MERKLE_MAX_PROOF ||
            at_note_base64_decode(line, ln, AT_BASE64_STRICT, hashes + nh * H, H, &got) != AT_OK || got != H)
            return at_error_set(err, AT_ERR_INVALID, -1, "the proof's hash line %zu is not a base64 hash",
                                nh + 1);
        nh++;
    }
    a->cp_text = p;
    a->cp_len = (size_t)(end - p);
    if (!have_entry)
        return at_error_set(err, AT_ERR_INVALID, -1,
                            "the proof carries no entry (an extra line): it is not from agent-traced");

    /* the checkpoint: signed by the key, then its tree */
    at_note *note = malloc(sizeof *note);
    if (!note)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    at_error nerr = {0};
    const at_note_verifier *known[1] = {vk};
    at_note_checkpoint cp;
    if (at_note_open(a->cp_text, a->cp_len, known, 1, note, &nerr) != AT_OK) {
        fail(a, "the checkpoint is not signed by the key: %s", nerr.message);
    } else if (at_note_checkpoint_parse(note->text, note->text_len, &cp, &nerr) != AT_OK) {
        fail(a, "the signed note is not a checkpoint: %s", nerr.message);
    } else {
        size_t vl;
        const char *vname = at_note_verifier_name(vk, &vl);
        if (cp.origin_len != vl || memcmp(cp.origin, vname, vl) != 0)
            fail(a, "the checkpoint's origin %.*s is not the key's name", (int)cp.origin_len, cp.origin);
        a->size = cp.size;
        memcpy(a->root, cp.root, H);
    }
    free(note);
    if (!a->ok)
        return AT_OK;

    /* the entry: in the tree */
    uint8_t leaf[H];
    if (at_merkle_leaf_hash(entry, entry_n, leaf) != AT_OK)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    if (at_merkle_verify_inclusion(a->index, a->size, leaf, hashes, nh, a->root) != AT_OK) {
        fail(a, "the entry is not in the tree of the checkpoint (size %llu): the inclusion proof fails",
             (unsigned long long)a->size);
        return AT_OK;
    }
    const char *v;
    size_t vn;
    uint64_t want_events;
    uint8_t want_head[H], want_obj[H];
    if (entry_n < 21 || memcmp(entry, "agent-traced/head/v1\n", 21) != 0 ||
        !entry_field((const char *)entry, entry_n, "session", &v, &vn) || vn >= sizeof a->session) {
        fail(a, "the entry is not an agent-traced/head/v1 entry");
        return AT_OK;
    }
    memcpy(a->session, v, vn);
    a->session[vn] = 0;
    if (!entry_field((const char *)entry, entry_n, "version", &v, &vn) || !take_u64(v, vn, &a->version) ||
        !entry_field((const char *)entry, entry_n, "events", &v, &vn) || !take_u64(v, vn, &want_events) ||
        !entry_field((const char *)entry, entry_n, "head", &v, &vn) || !at_unhex_sha256(v, vn, want_head) ||
        !entry_field((const char *)entry, entry_n, "object", &v, &vn) || !at_unhex_sha256(v, vn, want_obj)) {
        fail(a, "the entry is malformed");
        return AT_OK;
    }

    /* the events: the ones the entry describes */
    at_events_summary sum;
    if (at_events_summarize(events_fd, &sum) != AT_OK)
        return at_error_set(err, AT_ERR_IO, -1, "cannot read the events: %s", strerror(errno));
    uint64_t lines = sum.lines;
    uint8_t *head = sum.head, *digest = sum.sha256;
    if (!sum.have_head)
        at_sha256_oneshot("", 0, head);
    char hx[AT_SHA256_HEX], wx[AT_SHA256_HEX];
    if (lines != want_events) {
        fail(a, "the file has %llu lines, the log says %llu (version %llu): lines were %s",
             (unsigned long long)lines, (unsigned long long)want_events, (unsigned long long)a->version,
             lines < want_events ? "cut" : "added");
    } else if (memcmp(head, want_head, H) != 0) {
        at_hex(head, H, hx);
        at_hex(want_head, H, wx);
        fail(a, "the last line differs: its SHA-256 is %s, the log says %s", hx, wx);
    } else if (memcmp(digest, want_obj, H) != 0) {
        at_hex(digest, H, hx);
        at_hex(want_obj, H, wx);
        fail(a, "the file was edited: its SHA-256 is %s, the log says %s", hx, wx);
    }
    return AT_OK;
}

at_result at_audit_consistent(const char *older, size_t olen, const at_note_verifier *vk, uint64_t size,
                              const uint8_t root[AT_SHA256_LEN], const uint8_t *proof, size_t len,
                              char *reason, size_t rcap)
{
    at_note *note = malloc(sizeof *note);
    if (!note)
        return AT_ERR_NOMEM;
    at_error nerr = {0};
    const at_note_verifier *known[1] = {vk};
    at_note_checkpoint cp;
    at_result r = AT_OK;
    if (at_note_open(older, olen, known, 1, note, &nerr) != AT_OK) {
        snprintf(reason, rcap, "the saved checkpoint is not signed by the key: %s", nerr.message);
        r = AT_ERR_INVALID;
    } else if (at_note_checkpoint_parse(note->text, note->text_len, &cp, &nerr) != AT_OK) {
        snprintf(reason, rcap, "the saved note is not a checkpoint: %s", nerr.message);
        r = AT_ERR_INVALID;
    } else if (cp.size > size) {
        snprintf(reason, rcap,
                 "the log holds %llu entries, fewer than the saved checkpoint's %llu: it was rolled back",
                 (unsigned long long)size, (unsigned long long)cp.size);
        r = AT_ERR_INVALID;
    } else if (at_merkle_verify_consistency(cp.size, size, proof, len, cp.root, root) != AT_OK) {
        snprintf(reason, rcap,
                 "the log (size %llu) does not extend the saved checkpoint (size %llu): it was rewritten",
                 (unsigned long long)size, (unsigned long long)cp.size);
        r = AT_ERR_INVALID;
    }
    free(note);
    return r;
}

at_result at_audit_cosigned(const char *cp, size_t len, const at_note_verifier *vk,
                            const at_note_verifier *const *wit, size_t n, char *reason, size_t rcap)
{
    const at_note_verifier *known[1 + AT_NOTE_MAX_SIGS];
    if (n >= AT_NOTE_MAX_SIGS) {
        snprintf(reason, rcap, "too many witness keys");
        return AT_ERR_INVALID;
    }
    known[0] = vk;
    for (size_t i = 0; i < n; i++)
        known[1 + i] = wit[i];
    at_note *note = malloc(sizeof *note);
    if (!note)
        return AT_ERR_NOMEM;
    at_error nerr = {0};
    at_result r = AT_OK;
    if (at_note_open(cp, len, known, 1 + n, note, &nerr) != AT_OK) {
        snprintf(reason, rcap, "the checkpoint's signatures do not verify: %s", nerr.message);
        r = AT_ERR_INVALID;
    }
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        bool found = false;
        for (size_t k = 0; !found && k < note->n_sigs; k++)
            found = note->sigs[k].verifier == wit[i];
        if (!found) {
            size_t nl;
            const char *name = at_note_verifier_name(wit[i], &nl);
            snprintf(reason, rcap, "the checkpoint carries no cosignature by the witness %.*s", (int)nl, name);
            r = AT_ERR_INVALID;
        }
    }
    free(note);
    return r;
}
