/* chain.h - writing TraceEvent lines (trace-format.md §3) with their hash chain (§5).
 *
 * One writer serializes each event into a line, hashes exactly those bytes
 * for the next line's prev_hash, feeds them to a running digest of the whole
 * file, and hands them to a sink. No second pass, no re-serialization. */
#ifndef AGENTTRACE_CHAIN_H
#define AGENTTRACE_CHAIN_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

/* A borrowed byte range. */
typedef struct {
    const char *p;
    size_t n;
} at_slice;

#define AT_SLICE(s) ((at_slice){(s), sizeof(s) - 1})

/* One event, each field already serialized in the Python dialect (compact).
 * A field with p == NULL is absent. Fields whose JSON is `null` or `""` are
 * left out when written (TraceEvent.to_dict drops None and ""); an absent
 * `data` is written as {} and an absent `timestamp` as 0.0. */
typedef struct {
    at_slice event_type;
    at_slice timestamp;
    at_slice event_id;
    at_slice session_id;
    at_slice parent_id;
    at_slice duration_ms;
    at_slice data;
    at_slice prev_hash; /* given: kept as is; absent: computed from the chain */
    bool redacted;
} at_event_json;

/* Where written bytes go. Returns AT_OK or an error that aborts the write. */
typedef at_result (*at_sink_fn)(void *ctx, const char *p, size_t n);

/* What an observer learns of each line written (all borrowed for the call). */
typedef struct {
    uint64_t no;           /* 0-based line number in this writer's output */
    uint64_t off;          /* offset of the line's first byte in that output */
    size_t len;            /* without its "\n" */
    const uint8_t *digest; /* SHA-256 of the line (AT_SHA256_LEN bytes) */
    at_slice event_id;     /* JSON token as written; p == NULL when omitted */
    at_slice prev_hash;    /* JSON token as written; p == NULL when omitted */
} at_line_written;

/* Called after the sink took a line; an error aborts the write. */
typedef at_result (*at_line_fn)(void *ctx, const at_line_written *lw);

typedef struct {
    at_sink_fn sink;
    void *sink_ctx;
    at_sha256 *file_hash;        /* digest of every byte written (owned) */
    at_sha256 *line_hash;        /* scratch for per-line digests (owned) */
    uint8_t head[AT_SHA256_LEN]; /* SHA-256 of the last line written */
    bool have_head;
    uint64_t lines;
    uint64_t bytes;     /* written so far: the offset of the next line */
    at_buf line;        /* the line being built */
    at_line_fn on_line; /* optional observer, set after init */
    void *on_line_ctx;
} at_chain_writer;

/* Starts a writer. prev_head, when non-NULL, is the digest of the last line
 * already in the destination (an append); the file digest then covers only
 * the bytes written from now on. */
at_result at_chain_writer_init(at_chain_writer *w, at_sink_fn sink, void *ctx,
                               const uint8_t *prev_head) AT_WUR;

/* Where a writer stands after its last line: everything another writer
 * needs to go on as if it had written those lines itself. A plain value. */
typedef struct {
    uint8_t head[AT_SHA256_LEN]; /* SHA-256 of the last line (valid if have_head) */
    bool have_head;
    uint64_t lines;                          /* lines written */
    uint64_t bytes;                          /* bytes written */
    uint8_t file_state[AT_SHA256_STATE_LEN]; /* midstate of the file digest (at_sha256_export) */
} at_chain_pos;

/* Records w's position in pos. */
void at_chain_writer_pos(const at_chain_writer *w, at_chain_pos *pos);
/* Starts a writer at pos, as one that already wrote pos->lines lines
 * (pos->bytes bytes) into the destination: the next line chains to
 * pos->head, on_line numbers and offsets continue from pos, and
 * at_chain_writer_digest covers the old bytes and the new ones. Fails with
 * AT_ERR_INVALID (w left finalized) when pos->file_state does not import or
 * does not cover exactly pos->bytes bytes, or lines were written without a
 * head; AT_ERR_NOMEM. */
at_result at_chain_writer_resume(at_chain_writer *w, at_sink_fn sink, void *ctx,
                                 const at_chain_pos *pos) AT_WUR;
void at_chain_writer_fini(at_chain_writer *w);
/* Serializes ev as the next line and writes it with its "\n". */
at_result at_chain_write(at_chain_writer *w, const at_event_json *ev) AT_WUR;
/* Digest of all bytes written so far (the writer can go on afterwards). */
void at_chain_writer_digest(const at_chain_writer *w, uint8_t out[AT_SHA256_LEN]);

/* A buffered sink writing to a file descriptor. */
typedef struct {
    int fd;
    at_buf buf;
    uint64_t written;
} at_fd_sink;

void at_fd_sink_init(at_fd_sink *s, int fd);
at_result at_fd_sink_write(void *ctx, const char *p, size_t n) AT_WUR;
at_result at_fd_sink_flush(at_fd_sink *s) AT_WUR;
void at_fd_sink_fini(at_fd_sink *s);

#endif
