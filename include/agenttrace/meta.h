/* meta.h - SessionMeta, the contents of meta.json (trace-format.md §4).
 *
 * Each field is kept as its compact JSON text in the Python dialect, so a
 * value received from agent-strace (any JSON type) survives unchanged, and
 * writing is a matter of order and omission rules. */
#ifndef AGENTTRACE_META_H
#define AGENTTRACE_META_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/json.h"
#include <stdbool.h>

/* In the order meta.json lists them. */
typedef enum {
    AT_META_SESSION_ID = 0,
    AT_META_STARTED_AT,
    AT_META_ENDED_AT,
    AT_META_AGENT_NAME,
    AT_META_COMMAND,
    AT_META_TOOL_CALLS,
    AT_META_LLM_REQUESTS,
    AT_META_ERRORS,
    AT_META_TOTAL_TOKENS,
    AT_META_TOTAL_DURATION_MS,
    AT_META_PARENT_SESSION_ID,
    AT_META_PARENT_EVENT_ID,
    AT_META_DEPTH,
    AT_META_TEAM,
    AT_META_WORKSPACE_ID,
    AT_META_ATTRIBUTION,
    AT_META_REDACTED,
    AT_META_NFIELDS
} at_meta_field;

/* Embedded value (init/fini). raw[f] is NULL when the field is unset. */
typedef struct {
    char *raw[AT_META_NFIELDS];
    size_t len[AT_META_NFIELDS];
} at_meta;

void at_meta_init(at_meta *m);
void at_meta_fini(at_meta *m);
const char *at_meta_field_name(at_meta_field f);
/* Field index of a key, or -1 if SessionMeta has no such field. */
int at_meta_field_lookup(const char *name, size_t n);

/* Setters copy their input. raw must be compact dialect JSON. */
at_result at_meta_set_raw(at_meta *m, at_meta_field f, const char *json, size_t n) AT_WUR;
at_result at_meta_set_string(at_meta *m, at_meta_field f, const char *wtf8, size_t n) AT_WUR;
at_result at_meta_set_double(at_meta *m, at_meta_field f, double v) AT_WUR;
at_result at_meta_set_int(at_meta *m, at_meta_field f, int64_t v) AT_WUR;
void at_meta_unset(at_meta *m, at_meta_field f);

/* Decoded string value of f into out (appended); AT_ERR_NOT_FOUND when the
 * field is unset or not a string. */
at_result at_meta_get_string(const at_meta *m, at_meta_field f, at_buf *out) AT_WUR;
/* Numeric value of f (ints and floats; true is 1), or dflt. */
double at_meta_get_number(const at_meta *m, at_meta_field f, double dflt);

/* Appends SessionMeta.to_dict() serialized: fields in order, null/""/0/0.0/
 * false left out, attribution always written ({} when unset). st selects the
 * form: AT_JSON_PRETTY for meta.json (no trailing newline), AT_JSON_DEFAULT
 * for json.dumps(meta) in API bodies. */
at_result at_meta_write(const at_meta *m, at_buf *out, const at_json_style *st) AT_WUR;

/* Reads a meta.json text (any SessionMeta subset). With reject_unknown, a key
 * that is not a SessionMeta field fails with AT_ERR_INVALID (what
 * SessionMeta(**json) does); otherwise such keys are ignored. A text that is
 * not a JSON object fails with AT_ERR_JSON. */
at_result at_meta_parse(at_meta *m, const char *text, size_t n, bool reject_unknown, at_error *err) AT_WUR;

/* Reads <dir>/meta.json. AT_ERR_NOT_FOUND if it does not exist. */
at_result at_meta_load(at_meta *m, const char *path, at_error *err) AT_WUR;

#endif
