/* report.c - import and verification results as JSON (report.h). */
#include "report.h"

#include "agenttrace/json.h"

#include <string.h>

static at_result put_hex(at_buf *b, const char *key, const uint8_t *digest, bool have)
{
    if (!have)
        return at_buf_printf(b, ", \"%s\": null", key);
    char hex[AT_SHA256_HEX];
    at_hex(digest, AT_SHA256_LEN, hex);
    return at_buf_printf(b, ", \"%s\": \"%s\"", key, hex);
}

at_result report_import(at_buf *b, const at_import_result *res, const at_commit_info *info)
{
    at_result r = at_buf_adds(b, "{\"session_id\": ");
    if (r == AT_OK)
        r = at_json_write_wtf8(b, res->session_id, strlen(res->session_id));
    if (r == AT_OK)
        r = at_buf_printf(
            b, ", \"events\": %llu, \"tool_calls\": %s, \"llm_requests\": %s, \"total_tokens\": %s",
            (unsigned long long)res->events, res->tool_calls, res->llm_requests, res->total_tokens);
    if (r == AT_OK)
        r = put_hex(b, "events_sha256", res->events_sha256, true);
    if (r == AT_OK)
        r = put_hex(b, "head", res->head, res->events > 0);
    if (r == AT_OK)
        r = at_buf_printf(b, ", \"skipped_lines\": %llu", (unsigned long long)res->skipped_lines);
    if (r == AT_OK && res->parent_session_id) {
        r = at_buf_adds(b, ", \"parent_session_id\": ");
        if (r == AT_OK)
            r = at_json_write_wtf8(b, res->parent_session_id, strlen(res->parent_session_id));
    }
    if (r == AT_OK)
        r = at_buf_printf(b, ", \"result\": \"%s\", \"version\": %llu", at_upload_result_name(info->result),
                          (unsigned long long)info->version);
    if (r == AT_OK)
        r = put_hex(b, "previous_head", info->previous_head, info->have_previous_head);
    if (r == AT_OK && info->stale)
        r = at_buf_adds(b, ", \"stale\": true");
    if (r == AT_OK && info->log_index >= 0)
        r = at_buf_printf(b, ", \"log_index\": %lld", (long long)info->log_index);
    if (r == AT_OK)
        r = at_buf_adds(b, "}");
    return r;
}

at_result report_verify(at_buf *b, const at_verify_report *rep, const report_verify_opts *o)
{
    at_result r = at_buf_adds(b, "{");
    if (r == AT_OK && o->key) {
        r = at_buf_printf(b, "\"%s\": ", o->key);
        if (r == AT_OK)
            r = at_json_write_wtf8(b, o->name ? o->name : "", o->name_len);
        if (r == AT_OK)
            r = at_buf_adds(b, ", ");
    }
    if (r == AT_OK && o->version > 0)
        r = at_buf_printf(b, "\"version\": %lld, ", (long long)o->version);
    if (r == AT_OK)
        r = at_buf_printf(b, "\"ok\": %s, \"total_events\": %llu", rep->ok ? "true" : "false",
                          (unsigned long long)rep->total_events);
    if (r == AT_OK)
        r = rep->broken_at < 0 ? at_buf_adds(b, ", \"broken_at\": null")
                               : at_buf_printf(b, ", \"broken_at\": %lld", (long long)rep->broken_at);
    if (r == AT_OK)
        r = at_buf_adds(b, ", \"broken_event_id\": ");
    if (r == AT_OK)
        r = rep->broken_event_id ? at_json_write_wtf8(b, rep->broken_event_id, strlen(rep->broken_event_id))
                                 : at_buf_adds(b, "null");
    if (r == AT_OK && o->digests)
        r = put_hex(b, "events_sha256", rep->file_sha256, true);
    if (r == AT_OK && o->object_ok > -2)
        r = at_buf_printf(b, ", \"object_ok\": %s",
                          o->object_ok > 0    ? "true"
                          : o->object_ok == 0 ? "false"
                                              : "null");
    if (r == AT_OK && o->digests)
        r = put_hex(b, "head", rep->head, rep->have_head);
    if (r == AT_OK && o->extra)
        r = at_buf_printf(b, ", %s", o->extra);
    if (r == AT_OK)
        r = at_buf_adds(b, "}");
    return r;
}

at_result report_gc(at_buf *b, const at_gc_report *rep, bool dry_run, const char *workspace)
{
    at_result r = at_buf_adds(b, "{");
    if (r == AT_OK && workspace) {
        r = at_buf_adds(b, "\"workspace\": ");
        if (r == AT_OK)
            r = at_json_write_wtf8(b, workspace, strlen(workspace));
        if (r == AT_OK)
            r = at_buf_adds(b, ", ");
    }
    if (r == AT_OK)
        r = at_buf_printf(b,
                          "\"dry_run\": %s, \"sessions_removed\": %llu, \"versions_removed\": %llu, "
                          "\"objects_removed\": %llu, \"objects_kept\": %llu, \"bytes_freed\": %llu}",
                          dry_run ? "true" : "false", (unsigned long long)rep->sessions_removed,
                          (unsigned long long)rep->versions_removed, (unsigned long long)rep->objects_removed,
                          (unsigned long long)rep->objects_kept, (unsigned long long)rep->bytes_freed);
    return r;
}
