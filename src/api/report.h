/* report.h - the JSON that the command line and the server both print for
 * an import and for a verification: one writer each, so the two can never
 * drift apart. Python's json.dumps default separators (", ", ": "). */
#ifndef AGENTTRACED_REPORT_H
#define AGENTTRACED_REPORT_H

#include "agenttrace/buf.h"
#include "agenttrace/importer.h"
#include "agenttrace/store.h"
#include "agenttrace/verify.h"

/* {"session_id", "events", "tool_calls", "llm_requests", "total_tokens",
 *  "events_sha256", "head", "skipped_lines", ["parent_session_id",]
 *  "result", "version", "previous_head", ["stale": true]} appended to b. */
at_result report_import(at_buf *b, const at_import_result *res, const at_commit_info *info) AT_WUR;

/* What a verification report names and adds. */
typedef struct {
    const char *key;  /* "path" or "session_id" (NULL: neither, POST /verify) */
    const char *name; /* its value, WTF-8 */
    size_t name_len;
    int64_t version;   /* > 0: a "version" member after the key */
    bool digests;      /* add events_sha256 and head */
    int object_ok;     /* -2: leave out; -1: null; 0: false; 1: true */
    const char *extra; /* more members ("\"key\": value"), or NULL */
} report_verify_opts;

/* {[key,] "ok", "total_events", "broken_at", "broken_event_id"[,
 *  "events_sha256"][, "object_ok"][, "head"]} appended to b. */
at_result report_verify(at_buf *b, const at_verify_report *rep, const report_verify_opts *o) AT_WUR;

/* {["workspace",] "dry_run", "sessions_removed", "versions_removed",
 *  "objects_removed", "objects_kept", "bytes_freed"} appended to b
 * (workspace NULL: left out). */
at_result report_gc(at_buf *b, const at_gc_report *rep, bool dry_run, const char *workspace) AT_WUR;

#endif
