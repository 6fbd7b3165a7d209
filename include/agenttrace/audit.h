/* audit.h - what an auditor checks with nothing but a proof file, the
 * log's verifier key and a session's events.ndjson (tlog.md): the
 * checkpoint is signed by the key, the entry the proof carries is in the
 * checkpoint's tree, and the events file is the one the entry describes
 * (its line count, last line and digest). No server, no storage needed. */
#ifndef AGENTTRACE_AUDIT_H
#define AGENTTRACE_AUDIT_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/note.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

/* What a proof said, and the verdict. */
typedef struct {
    bool ok;
    char reason[512]; /* why not ok: a sentence naming what differs */
    uint64_t index;   /* the entry's position in the log */
    uint64_t size;    /* the checkpoint's tree size */
    uint8_t root[AT_SHA256_LEN];
    char session[300];   /* the entry's session line (JSON string), as written */
    uint64_t version;    /* the entry's version */
    const char *cp_text; /* the checkpoint note (borrowed from the proof text) */
    size_t cp_len;
} at_audit;

/* Checks proof (a c2sp.org/tlog-proof@v1 file whose extra line is the
 * base64 of the entry) against the verifier key vk and the events file
 * read from events_fd. Fills *a; returns AT_OK whether or not the events
 * pass (a->ok says), an error only when the proof cannot be read at all
 * (AT_ERR_INVALID) or the events file cannot be read (AT_ERR_IO). */
at_result at_audit_proof(const char *proof, size_t n, const at_note_verifier *vk, int events_fd, at_audit *a,
                         at_error *err) AT_WUR;

/* Checks that the signed checkpoint note `older` (an auditor's saved copy)
 * is a prefix of the tree of `newer` (size, root) with the consistency
 * proof given (len hashes): a rolled back or forked log fails. */
at_result at_audit_consistent(const char *older, size_t olen, const at_note_verifier *vk, uint64_t size,
                              const uint8_t root[AT_SHA256_LEN], const uint8_t *proof, size_t len,
                              char *reason, size_t rcap) AT_WUR;

/* Checks that the signed checkpoint note cp carries, besides the log's
 * signature (vk), a valid cosignature (c2sp.org/tlog-cosignature) of every
 * witness key of wit[0..n): proof that each witness saw this tree. */
at_result at_audit_cosigned(const char *cp, size_t len, const at_note_verifier *vk,
                            const at_note_verifier *const *wit, size_t n, char *reason, size_t rcap) AT_WUR;

#endif
