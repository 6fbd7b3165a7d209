/* verify.h - streaming verification of an events.ndjson hash chain (trace-format.md §5). */
#ifndef AGENTTRACE_VERIFY_H
#define AGENTTRACE_VERIFY_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

typedef enum {
    AT_VERIFY_STRICT = 0, /* both references: line 0 has no prev_hash, every later line's matches */
    AT_VERIFY_LEGACY,     /* agent-strace audit --verify-chain: a line without prev_hash is accepted */
} at_verify_mode;

/* The verdict over a whole stream. */
typedef struct {
    bool ok;
    uint64_t total_events;              /* event lines seen (blank lines are not events) */
    int64_t broken_at;                  /* 0-based line index of the first failure, -1 when ok */
    char *broken_event_id;              /* its event_id as UTF-8 (owned), NULL if none/unreadable */
    char reason[160];                   /* why it failed, for humans */
    uint8_t file_sha256[AT_SHA256_LEN]; /* digest of every byte of the stream */
    uint8_t head[AT_SHA256_LEN];        /* digest of the last event line */
    bool have_head;
    uint64_t bytes;
} at_verify_report;

void at_verify_report_fini(at_verify_report *rep);

/* A verifier fed the stream in chunks of any size. Opaque. */
typedef struct at_verifier at_verifier;
at_verifier *at_verifier_new(at_verify_mode mode);
void at_verifier_free(at_verifier *v);
/* Only resource errors fail (AT_ERR_NOMEM; AT_ERR_TOO_BIG for a line over
 * AT_MAX_LINE_BYTES): a broken chain is a verdict, not an error. */
at_result at_verifier_feed(at_verifier *v, const char *p, size_t n, at_error *err) AT_WUR;
/* Ends the stream and fills rep (which the caller finalizes). */
at_result at_verifier_finish(at_verifier *v, at_verify_report *rep, at_error *err) AT_WUR;

/* Verifies a file (an events.ndjson), streaming it. AT_ERR_IO / NOT_FOUND
 * when it cannot be read. */
at_result at_verify_file(const char *path, at_verify_mode mode, at_verify_report *rep, at_error *err) AT_WUR;

#endif
