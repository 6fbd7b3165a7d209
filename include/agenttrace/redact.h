/* redact.h - secret redaction with the reference's exact semantics (redaction.md).
 *
 * A value is walked as agent_trace.redact.redact_data walks it: a string
 * under a sensitive key becomes "[REDACTED:sensitive]", any other string is
 * rewritten by fourteen patterns run in order, each replacing every
 * leftmost non-overlapping match (Python `re` semantics, by PCRE2 with JIT).
 *
 * The walk itself is the JSON emitter's: at_redact_hook is an
 * at_json_string_hook, called for every string value as it is written, so
 * redaction costs no DOM and no second pass. A cheap pre-filter (one pass
 * over the bytes, 16 at a time) turns away the strings that no pattern can
 * match before any regex runs.
 *
 * The compiled patterns are shared by the whole process (built once, on the
 * first at_redact_new); an at_redact holds one thread's match state, scratch
 * buffers and the flags of the value being walked. */
#ifndef AGENTTRACE_REDACT_H
#define AGENTTRACE_REDACT_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/meta.h"
#include <stdbool.h>

#define AT_REDACT_MARKER "[REDACTED" /* the text that flags a value as redacted */

typedef struct at_redact at_redact;

/* One thread's redactor. NULL when out of memory or when the patterns do
 * not compile (err says which). */
at_redact *at_redact_new(at_error *err);
void at_redact_free(at_redact *rd);

/* With the pre-filter off every pattern runs over every string: the same
 * results, slower. For tests (the filter must never change a result) and
 * benchmarks (what the filter saves). On by default. */
void at_redact_set_prefilter(at_redact *rd, bool on);

/* Is redaction turned off by the environment? AGENT_TRACE_NO_REDACT or
 * AGENT_STRACE_NO_REDACT set to 1, true or yes in any case (as
 * redaction_enabled() reads them). */
bool at_redact_env_disabled(void);

/* Python's _is_sensitive_key: key.lower().strip().replace("-", "_") is one
 * of the sensitive names. key is WTF-8. */
bool at_redact_key_sensitive(const char *key, size_t n);

/* The hook for at_json_style (ctx: an at_redact). Sets *replaced and fills
 * repl when the string is rewritten, and records what it saw in the value's
 * flags below. */
at_result at_redact_hook(void *ctx, const char *parent_key, size_t parent_key_len, const char *s, size_t n,
                         at_buf *repl, bool *replaced) AT_WUR;

/* Runs the patterns over WTF-8 s (no key rule). *changed tells whether the
 * text came out different (a match can rewrite text into itself, as
 * basic-auth does over its own marker); out then holds the rewritten text
 * (it is left empty otherwise). */
at_result at_redact_text(at_redact *rd, const char *s, size_t n, at_buf *out, bool *changed) AT_WUR;

/* The flags of one value (an event's data, a session's metadata): call
 * begin, walk the value through the hook, then read them. */
void at_redact_begin(at_redact *rd);
/* Some string of the value was rewritten. */
bool at_redact_changed(const at_redact *rd);
/* The value, as written, holds AT_REDACT_MARKER in some string
 * (redact_data_with_status's flag: rewritten, or already marked). */
bool at_redact_marked(const at_redact *rd);

/* The log text for what redaction changed in one import or request:
 * "redacted N events", "... and the session metadata", "redacted the
 * session metadata", or "" when nothing was. Never a secret. */
void at_redact_summary(char *out, size_t cap, uint64_t events, bool meta);

/* Redacts a SessionMeta as TraceStore._redact_meta does: agent_name,
 * command and attribution walked as one object, and "redacted": true when
 * that object comes out flagged. Leaves the flags above set for it. */
at_result at_redact_meta(at_redact *rd, at_meta *m) AT_WUR;

#endif
