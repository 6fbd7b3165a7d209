/* importer.h - the streaming Claude Code transcript importer (claude-import.md).
 *
 * Fed the transcript's bytes in chunks of any size, it validates UTF-8 over
 * the whole stream, splits lines (\n, \r\n, lone \r), parses each line once
 * into a reusable tape, applies the rules, and writes finished event lines
 * through the chain writer into out_fd as it goes. Memory is bounded by the
 * longest line, not by the input: events produced before the session id is
 * known are held (and spilled to a temporary file past a cap) until it is.
 * Token usage (usage.h) adds 16 bytes per distinct API message, up to
 * AT_MAX_USAGE_IDS of them.
 *
 * Incremental import: with keep_state, a finished import also returns its
 * state as it stood after the last input byte, before the finishing steps.
 * A later import given that state (resume) and fed only the bytes appended
 * to the transcript since then writes exactly the lines a full import of
 * the whole transcript would write from that point on. */
#ifndef AGENTTRACE_IMPORTER_H
#define AGENTTRACE_IMPORTER_H

#include "agenttrace/chain.h"
#include "agenttrace/common.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

typedef struct {
    const char *source;  /* session_end's data.source; its basename names the file in meta's
                            command and, minus its extension, the fallback session id */
    int out_fd;          /* events.ndjson bytes are written here (readable too: the
                            importer re-reads it to resolve subagent links) */
    const char *tmp_dir; /* where a spill file may be created (NULL: /tmp) */
    /* Secret redaction (redaction.md) of every event's data and of the
     * metadata, before they are written and hashed; NULL: none. Borrowed. */
    at_redact *redact;
    /* Told of every event line written to out_fd, in order (the event
     * index is built from this without re-reading); NULL for none. */
    at_line_fn on_line;
    void *on_line_ctx;
    /* A state blob (at_import_result.state) from an import of this
     * transcript's first N bytes; the bytes fed are then bytes N.. of the
     * transcript, out_fd receives only the event lines from the resume point
     * on, and the result describes the whole transcript. Borrowed, read by
     * at_import_new only. NULL: start fresh. When source is NULL the saved
     * one is used. */
    const void *resume;
    size_t resume_len;
    /* Return the state to resume from in at_import_result.state. */
    bool keep_state;
} at_import_options;

/* A subagent this transcript spawned: Claude Code's agent id and the
 * event_id of the tool_call that started it (empty if none was found). */
typedef struct {
    char *agent_id;
    char event_id[AT_MAX_EVENT_ID_BYTES + 1]; /* decoded (may hold NULs); NUL-terminated */
    size_t event_id_len;                      /* 0: none was found */
} at_import_link;

typedef struct {
    char *session_id;        /* UTF-8 (owned) */
    char *agent_id;          /* non-NULL for a subagent transcript (owned) */
    char *parent_session_id; /* the parent's id for a subagent (owned) */
    at_meta meta;            /* without the parent fields, which depend on the store */
    uint64_t events;
    char tool_calls[24], llm_requests[24];
    char total_tokens[AT_DOUBLE_REPR_MAX]; /* JSON number text */
    uint8_t events_sha256[AT_SHA256_LEN];
    uint8_t head[AT_SHA256_LEN];
    uint64_t skipped_lines;   /* non-blank lines that were not JSON objects */
    uint64_t object_lines;    /* lines that were JSON objects (entries and skipped kinds) */
    uint64_t redacted_events; /* events whose data redaction changed */
    bool meta_redacted;       /* redaction changed the metadata */
    uint64_t bytes;           /* transcript bytes consumed, resumed imports included */
    /* SHA-256 of those bytes, with keep_state or resume (zeros otherwise:
     * hashing the input would cost a plain import a quarter of its speed) */
    uint8_t transcript_sha256[AT_SHA256_LEN];
    /* Resuming: events.ndjson is its old first body_bytes bytes (body_lines
     * lines), then what this import wrote to out_fd. 0 for a fresh import.
     * events, events_sha256 and head describe that whole file. */
    uint64_t body_bytes, body_lines;
    /* The transcript's token usage as ccusage counts it, as the JSON
     * at_usage_write writes (usage.h; malloc'd, owned), for the store to
     * keep with the version. NULL when not known (an import resumed from a
     * state saved before usage was kept). */
    char *usage;
    size_t usage_len;
    /* With keep_state: the state blob to resume from (malloc'd, owned). */
    char *state;
    size_t state_len;
    at_import_link *links;
    size_t nlinks;
} at_import_result;

typedef struct at_import at_import;

/* Starts an import (opts is copied; its pointers are borrowed). NULL on
 * failure: AT_ERR_NOMEM; with opts->resume, AT_ERR_INVALID when the blob
 * does not parse ("invalid import state: ...") or was saved before any
 * entry named the session ("cannot resume: no entry named the session
 * yet": held events would get another id; import the whole file instead). */
at_import *at_import_new(const at_import_options *opts, at_error *err);
void at_import_free(at_import *im);
/* Consumes n more bytes. Fails (AT_ERR_UTF8 with the stream offset,
 * AT_ERR_TOO_BIG for a line over AT_MAX_LINE_BYTES, AT_ERR_IO) and then
 * accepts nothing more. */
at_result at_import_feed(at_import *im, const char *p, size_t n, at_error *err) AT_WUR;
/* Ends the input, writes session_end, flushes out_fd and fills res (res
 * is always initialized; at_import_result_fini it either way).
 *
 * With keep_state, res->state is the importer as it was after the last
 * byte fed and before finishing: the unfinished last line still unparsed,
 * held events still held, no session_end, and the chain position after the
 * last complete line. The one failure that still sets it is an input
 * ending inside a UTF-8 sequence (AT_ERR_UTF8), which more bytes may
 * complete: the complete lines are then flushed to out_fd and res holds
 * only state, state_len, body_bytes and body_lines. */
at_result at_import_finish(at_import *im, at_import_result *res, at_error *err) AT_WUR;
void at_import_result_fini(at_import_result *res);

#endif
