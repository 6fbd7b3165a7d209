/* importer.h - the streaming Claude Code transcript importer (claude-import.md).
 *
 * Fed the transcript's bytes in chunks of any size, it validates UTF-8 over
 * the whole stream, splits lines (\n, \r\n, lone \r), parses each line once
 * into a reusable tape, applies the rules, and writes finished event lines
 * through the chain writer into out_fd as it goes. Memory is bounded by the
 * longest line, not by the input: events produced before the session id is
 * known are held (and spilled to a temporary file past a cap) until it is. */
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
    uint64_t bytes;           /* input bytes consumed */
    at_import_link *links;
    size_t nlinks;
} at_import_result;

typedef struct at_import at_import;

at_import *at_import_new(const at_import_options *opts, at_error *err);
void at_import_free(at_import *im);
/* Consumes n more bytes. Fails (AT_ERR_UTF8 with the stream offset,
 * AT_ERR_TOO_BIG for a line over AT_MAX_LINE_BYTES, AT_ERR_IO) and then
 * accepts nothing more. */
at_result at_import_feed(at_import *im, const char *p, size_t n, at_error *err) AT_WUR;
/* Ends the input, writes session_end, flushes out_fd and fills res. */
at_result at_import_finish(at_import *im, at_import_result *res, at_error *err) AT_WUR;
void at_import_result_fini(at_import_result *res);

#endif
