/* importer.c - Claude Code transcript -> agent-trace events, streaming.
 *
 * States: bytes arrive (feed) -> UTF-8 checked over the whole stream -> cut
 * into lines -> stripped -> parsed once into a tape -> an entry's rules emit
 * events -> each event becomes a chained line in out_fd. The only state kept
 * across lines is the session's running totals, a few identity strings, the
 * subagent links seen (one per spawned agent) and, until the session id is
 * known, the events produced so far (see pending_*).
 *
 * Incremental import saves exactly that state (state_*), plus the first
 * tool_call event id per request id written before the save point, which
 * subagent links found later need once those lines are no longer in out_fd
 * (calls_*). */
#include "agenttrace/importer.h"

#include "agenttrace/buf.h"
#include "agenttrace/chain.h"
#include "agenttrace/pynum.h"
#include "agenttrace/timestamp.h"
#include "agenttrace/usage.h"
#include "agenttrace/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROMPT_MAX_CP  2000
#define PREVIEW_MAX_CP 2000
#define STDOUT_MAX_CP  500
#define STDERR_MAX_CP  200
#define MAX_LINKS      65536

typedef enum {
    EV_SESSION_END,
    EV_TOOL_CALL,
    EV_TOOL_RESULT,
    EV_USER_PROMPT,
    EV_ASSISTANT_RESPONSE,
} ev_type;

static const at_slice ev_names[] = {
    AT_SLICE("\"session_end\""), AT_SLICE("\"tool_call\""),          AT_SLICE("\"tool_result\""),
    AT_SLICE("\"user_prompt\""), AT_SLICE("\"assistant_response\""),
};

/* The first tool_call event per request id, keyed by the first CALL_KEY
 * bytes of SHA-256(request id): subagent links resolve through it to calls
 * written by an earlier import. */
#define CALL_KEY 16
typedef struct {
    uint8_t key[CALL_KEY];
    uint8_t eid_len; /* 0: that call's event id could not be kept */
    char eid[AT_MAX_EVENT_ID_BYTES];
} call_id;

typedef struct {
    call_id *v;
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 empty */
    size_t nslots;   /* a power of two, or 0 */
} call_map;

struct at_import {
    at_import_options opts;
    at_result failed; /* sticky: once an error happened nothing more is accepted */

    /* line assembly */
    at_utf8_state utf8;
    uint64_t offset; /* stream offset of the next byte fed */
    at_buf line;     /* a line cut by a chunk boundary */
    bool after_cr;   /* the last byte seen ended a line with \r */
    at_json_doc doc;

    /* session identity */
    bool have_sid;
    at_buf sid;      /* WTF-8 */
    at_buf sid_json; /* the same as a JSON string literal */
    at_buf branch, version, agent_id, parent_sid;
    char *source_name; /* basename of opts.source */

    /* running totals */
    uint64_t entry_no;
    double started_at, last_ts;
    bool have_start;
    int64_t tool_calls, llm_requests;
    at_pynum total_tokens, total_duration_ms;
    uint64_t skipped, objects;
    uint64_t redacted_events;
    /* token usage as ccusage counts it (usage.h); unknown when resumed from
     * a state saved before it was kept */
    at_usage usage;
    bool usage_unknown;

    /* the current entry */
    bool has_uuid;    /* a non-empty string uuid (maybe empty once its dashes are gone) */
    const char *uuid; /* WTF-8, dashes removed, in uuid_buf */
    size_t uuid_len;
    uint32_t k; /* events of this entry so far */
    double ts;

    /* events produced before the session id was known */
    at_buf pending;
    int spill_fd;

    /* output */
    at_fd_sink sink;
    at_chain_writer w;
    uint64_t events;

    /* subagent links: agent id -> tool_use id (resolved to event ids at the end) */
    struct {
        char *agent_id;
        char *tool_use_id;
    } * links;
    size_t nlinks, links_cap;

    /* incremental import */
    at_sha256 *input_hash;           /* every transcript byte, resumed ones included
                                        (keep_state or resume only) */
    uint64_t body_bytes, body_lines; /* the chain position resumed at (0: fresh) */
    at_buf saved_source;             /* a resumed state's source, when opts had none */
    call_map calls;                  /* tool calls before the state point (resume, keep_state) */
    at_buf state;                    /* keep_state: the blob being built in finish */

    /* scratch, reused for every entry (tmp: a decoded timestamp, then each
     * written event_id token; tmp2: hook output and id seeds) */
    at_buf data, text, tmp, tmp2, uuid_buf;
    at_json_style style;
};

/* ---- small helpers ------------------------------------------------------ */

static at_result oom(at_error *err)
{
    return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
}

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Is node i a string equal to the literal? */
static bool str_is(const at_json_doc *d, uint32_t i, const char *lit)
{
    return at_json_is(d, i, AT_JSON_STRING) && at_json_str_eq(d, i, lit, strlen(lit));
}

static bool nonempty_str(const at_json_doc *d, uint32_t i)
{
    return at_json_is(d, i, AT_JSON_STRING) && d->nodes[i].len > 0;
}

/* Appends the decoded text of string node i (nothing if it is not a string). */
static at_result add_str(at_buf *b, const at_json_doc *d, uint32_t i)
{
    if (!at_json_is(d, i, AT_JSON_STRING))
        return AT_OK;
    return at_json_str_decode(d, i, b);
}

/* The value of a token count or duration as Python would add it; values
 * Python could not add (strings, null, containers) count as missing. Ints
 * past int64 (INT64_MIN too) become floats: see pynum.h. */
static at_pynum node_num(const at_json_doc *d, uint32_t i)
{
    switch (at_json_typeof(d, i)) {
    case AT_JSON_TRUE: return at_pynum_from_int(1);
    case AT_JSON_INT:
    case AT_JSON_FLOAT: return at_pynum_parse_token(d->src + d->nodes[i].off, d->nodes[i].len);
    default: return at_pynum_from_int(0);
    }
}

/* ---- writing data objects ----------------------------------------------- */

/* data objects are built key by key; every string value goes through the
 * style's hook (redaction) with its key, as values copied from the input do. */
static at_result data_key(at_import *im, const char *key)
{
    at_buf *b = &im->data;
    at_result r = at_buf_addc(b, b->len ? ',' : '{');
    if (r != AT_OK)
        return r;
    if ((r = at_buf_addc(b, '"')) != AT_OK || (r = at_buf_adds(b, key)) != AT_OK)
        return r;
    return at_buf_add(b, "\":", 2);
}

static void data_begin(at_import *im)
{
    at_buf_reset(&im->data);
    if (im->opts.redact)
        at_redact_begin(im->opts.redact);
}

/* The event's "redacted" flag once its data is written (redaction.md):
 * some string was rewritten or already holds the marker. */
static bool data_redacted(at_import *im)
{
    if (!im->opts.redact)
        return false;
    if (at_redact_changed(im->opts.redact))
        im->redacted_events++;
    return at_redact_marked(im->opts.redact);
}

static at_result data_end(at_import *im)
{
    return at_buf_addc(&im->data, '}');
}

/* Appends the literal for string s found under key, after the hook. */
static at_result hooked_str(at_import *im, const char *key, const char *s, size_t n)
{
    if (im->style.hook) {
        bool replaced = false;
        at_buf_reset(&im->tmp2);
        at_result r = im->style.hook(im->style.hook_ctx, key, strlen(key), s, n, &im->tmp2, &replaced);
        if (r != AT_OK)
            return r;
        if (replaced)
            return at_json_write_wtf8(&im->data, im->tmp2.data ? im->tmp2.data : "", im->tmp2.len);
    }
    return at_json_write_wtf8(&im->data, s, n);
}

static at_result data_str(at_import *im, const char *key, const char *s, size_t n)
{
    at_result r = data_key(im, key);
    return r != AT_OK ? r : hooked_str(im, key, s, n);
}

/* A value copied from the input, re-serialized in the dialect; its strings
 * see `key` (or their own nearer key) as their parent key. */
static at_result data_node(at_import *im, const char *key, const at_json_doc *d, uint32_t i)
{
    at_result r = data_key(im, key);
    if (r != AT_OK)
        return r;
    return at_json_emit_under(&im->data, d, i, &im->style, 0, key, strlen(key));
}

static at_result data_raw(at_import *im, const char *key, const char *json, size_t n)
{
    at_result r = data_key(im, key);
    return r != AT_OK ? r : at_buf_add(&im->data, json, n);
}

/* ---- events ------------------------------------------------------------- */

/* An event id (claude-import.md §5), decoded: 12 hex digits, or the first 12
 * code points of a uuid, which may be any characters at all (NULs, quotes,
 * lone surrogates): up to 48 bytes of WTF-8. Escaped only when written. */
#define EID_MAX_CP    12
#define EID_MAX_BYTES (EID_MAX_CP * 4)
typedef struct {
    uint8_t len;
    char s[EID_MAX_BYTES];
} event_id;

static void derive_event_id(const char *seed, size_t n, event_id *out)
{
    uint8_t dg[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(seed, n, dg);
    at_hex(dg, 6, hex);
    memcpy(out->s, hex, 12);
    out->len = 12;
}

/* Event ids of entries without a uuid depend on the session id. */
static at_result seeded_event_id(at_import *im, uint64_t entry_no, uint32_t k, event_id *out)
{
    at_buf_reset(&im->tmp2);
    at_result r = at_buf_add(&im->tmp2, im->sid.data, im->sid.len);
    if (r == AT_OK)
        r = at_buf_printf(&im->tmp2, ":%llu:%u", (unsigned long long)entry_no, k);
    if (r == AT_OK)
        derive_event_id(im->tmp2.data, im->tmp2.len, out);
    return r;
}

/* Writes one event line; the id is escaped as json.dumps would (into
 * im->tmp, which no caller hands in as data). An empty id is left out. */
static at_result write_event(at_import *im, ev_type type, double ts, const event_id *eid, const char *data,
                             size_t data_len, bool redacted)
{
    char tsbuf[AT_DOUBLE_REPR_MAX];
    at_buf_reset(&im->tmp);
    at_result r = at_json_write_wtf8(&im->tmp, eid->s, eid->len);
    if (r != AT_OK)
        return r;
    at_event_json ev = {
        .event_type = ev_names[type],
        .timestamp = {tsbuf, at_double_repr(ts, tsbuf)},
        .event_id = {im->tmp.data, im->tmp.len},
        .session_id = {im->sid_json.data, im->sid_json.len},
        .data = {data, data_len},
        .redacted = redacted,
    };
    im->events++;
    return at_chain_write(&im->w, &ev);
}

/* Pending record: u32 length of the rest, u8 type, f64 ts, u8 redacted,
 * u8 id kind, then either (kind PENDING_SEEDED) u64 entry_no + u32 k, whose id needs the
 * session id, or kind bytes of event id; then the data bytes. */
#define PENDING_HEAD   (1 + 8 + 1 + 1)
#define PENDING_SEEDED 0xffu
static at_result pending_add(at_import *im, ev_type type, const event_id *eid, const char *data, size_t n,
                             bool redacted)
{
    at_buf *p = &im->pending;
    uint8_t kind = eid ? eid->len : PENDING_SEEDED;
    size_t id_bytes = eid ? eid->len : 8 + 4;
    if (n > UINT32_MAX - PENDING_HEAD - id_bytes)
        return AT_ERR_TOO_BIG;
    uint32_t len = (uint32_t)(PENDING_HEAD + id_bytes + n);
    uint8_t t = (uint8_t)type, red = redacted;
    at_result r = at_buf_reserve(p, 4 + (size_t)len);
    if (r != AT_OK)
        return r;
    at_buf_put(p, &len, 4);
    at_buf_put(p, &t, 1);
    at_buf_put(p, &im->ts, 8);
    at_buf_put(p, &red, 1);
    at_buf_put(p, &kind, 1);
    if (eid) {
        at_buf_put(p, eid->s, eid->len);
    } else {
        at_buf_put(p, &im->entry_no, 8);
        at_buf_put(p, &im->k, 4);
    }
    at_buf_put(p, data, n);
    if (p->len < AT_PENDING_MEM_BYTES)
        return AT_OK;
    /* Too much to hold: move it to a spill file. */
    if (im->spill_fd < 0 && (im->spill_fd = at_open_tmpfile(im->opts.tmp_dir)) < 0)
        return AT_ERR_IO;
    if (at_write_all(im->spill_fd, p->data, p->len) != AT_OK)
        return AT_ERR_IO;
    at_buf_reset(p);
    return AT_OK;
}

static at_result replay_record(at_import *im, const char *rec, size_t len)
{
    uint8_t type, kind, red;
    double ts;
    event_id eid;
    size_t off = PENDING_HEAD;
    if (len < PENDING_HEAD)
        return AT_ERR_IO;
    memcpy(&type, rec, 1);
    memcpy(&ts, rec + 1, 8);
    memcpy(&red, rec + 9, 1);
    memcpy(&kind, rec + 10, 1);
    if (kind != PENDING_SEEDED) {
        if (kind > EID_MAX_BYTES || len - off < kind)
            return AT_ERR_IO;
        eid.len = kind;
        memcpy(eid.s, rec + off, kind);
        off += kind;
    } else {
        uint64_t entry_no;
        uint32_t k;
        if (len - off < 8 + 4)
            return AT_ERR_IO;
        memcpy(&entry_no, rec + off, 8);
        memcpy(&k, rec + off + 8, 4);
        off += 8 + 4;
        at_result r = seeded_event_id(im, entry_no, k, &eid);
        if (r != AT_OK)
            return r;
    }
    return write_event(im, (ev_type)type, ts, &eid, rec + off, len - off, red != 0);
}

static at_result replay_buffer(at_import *im, const char *p, size_t n, size_t *used)
{
    size_t off = 0;
    while (n - off >= 4) {
        uint32_t len;
        memcpy(&len, p + off, 4);
        if (n - off - 4 < len)
            break;
        at_result r = replay_record(im, p + off + 4, len);
        if (r != AT_OK)
            return r;
        off += 4 + (size_t)len;
    }
    *used = off;
    return AT_OK;
}

/* Writes every held event, now that the session id is known. */
static at_result pending_flush(at_import *im)
{
    at_result r = AT_OK;
    size_t used;
    if (im->spill_fd >= 0) {
        at_buf chunk;
        at_buf_init(&chunk, 0);
        if (lseek(im->spill_fd, 0, SEEK_SET) < 0)
            r = AT_ERR_IO;
        while (r == AT_OK) {
            if ((r = at_buf_reserve(&chunk, 1 << 20)) != AT_OK)
                break;
            ssize_t k = read(im->spill_fd, chunk.data + chunk.len, 1 << 20);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                r = AT_ERR_IO;
                break;
            }
            if (k == 0)
                break;
            chunk.len += (size_t)k;
            if ((r = replay_buffer(im, chunk.data, chunk.len, &used)) != AT_OK)
                break;
            memmove(chunk.data, chunk.data + used, chunk.len - used);
            chunk.len -= used;
        }
        at_buf_fini(&chunk);
        close(im->spill_fd);
        im->spill_fd = -1;
        if (r != AT_OK)
            return r;
    }
    r = replay_buffer(im, im->pending.data, im->pending.len, &used);
    at_buf_fini(&im->pending);
    return r;
}

/* Emits one event of the current entry with data im->data. */
static at_result emit(at_import *im, ev_type type)
{
    event_id eid;
    if (im->has_uuid) {
        if (im->k == 0) {
            /* uuid[:12]: 12 code points, not bytes; a shorter uuid gives a
             * shorter id, one made only of dashes an empty (omitted) one */
            eid.len = (uint8_t)at_wtf8_prefix(im->uuid, im->uuid_len, EID_MAX_CP);
            if (eid.len)
                memcpy(eid.s, im->uuid, eid.len);
        } else {
            /* SHA-256 of the uuid's UTF-8 (WTF-8 for lone surrogates, as
             * Python's encode('utf-8', 'surrogatepass')) */
            at_buf_reset(&im->tmp2);
            at_result r = at_buf_add(&im->tmp2, im->uuid, im->uuid_len);
            if (r == AT_OK)
                r = at_buf_printf(&im->tmp2, ":%u", im->k);
            if (r != AT_OK)
                return r;
            derive_event_id(im->tmp2.data, im->tmp2.len, &eid);
        }
    }
    at_result r;
    bool redacted = data_redacted(im);
    if (!im->have_sid) {
        r = pending_add(im, type, im->has_uuid ? &eid : NULL, im->data.data, im->data.len, redacted);
    } else {
        if (!im->has_uuid && (r = seeded_event_id(im, im->entry_no, im->k, &eid)) != AT_OK)
            return r;
        r = write_event(im, type, im->ts, &eid, im->data.data, im->data.len, redacted);
    }
    im->k++;
    return r;
}

/* ---- the rules ---------------------------------------------------------- */

/* Text of a content value: the string itself, or the "text" of its blocks
 * of type "text" joined with "\n" (claude-import.md §3). */
static at_result content_text(const at_json_doc *d, uint32_t content, at_buf *out)
{
    at_buf_reset(out);
    if (at_json_is(d, content, AT_JSON_STRING))
        return at_json_str_decode(d, content, out);
    if (!at_json_is(d, content, AT_JSON_ARRAY))
        return AT_OK;
    bool first = true;
    at_result r = AT_OK;
    for (uint32_t b = at_json_first(d, content); b != AT_JSON_NONE && r == AT_OK;
         b = at_json_next(d, content, b)) {
        if (!at_json_is(d, b, AT_JSON_OBJECT) || !str_is(d, at_json_get(d, b, "type"), "text"))
            continue;
        if (!first && (r = at_buf_addc(out, '\n')) != AT_OK)
            break;
        first = false;
        r = add_str(out, d, at_json_get(d, b, "text"));
    }
    return r;
}

static at_result do_user(at_import *im, const at_json_doc *d, uint32_t entry, uint32_t content)
{
    at_result r;
    if (at_json_is(d, content, AT_JSON_ARRAY)) {
        bool any_result = false;
        for (uint32_t b = at_json_first(d, content); b != AT_JSON_NONE; b = at_json_next(d, content, b)) {
            if (!at_json_is(d, b, AT_JSON_OBJECT) || !str_is(d, at_json_get(d, b, "type"), "tool_result"))
                continue;
            any_result = true;
            uint32_t c = at_json_get(d, b, "content");
            if ((r = content_text(
                     d,
                     at_json_is(d, c, AT_JSON_STRING) || at_json_is(d, c, AT_JSON_ARRAY) ? c : AT_JSON_NONE,
                     &im->text)) != AT_OK)
                return r;
            data_begin(im);
            uint32_t id = at_json_get(d, b, "tool_use_id");
            r = at_json_truthy(d, id) ? data_node(im, "tool_use_id", d, id)
                                      : data_str(im, "tool_use_id", "", 0);
            if (r != AT_OK)
                return r;
            size_t cut = at_wtf8_prefix(im->text.data, im->text.len, PREVIEW_MAX_CP);
            if (cut < im->text.len) {
                im->text.len = cut;
                if ((r = at_buf_add(&im->text, "...", 3)) != AT_OK)
                    return r;
            }
            if ((r = data_str(im, "content_preview", im->text.data ? im->text.data : "", im->text.len)) !=
                    AT_OK ||
                (r = data_end(im)) != AT_OK || (r = emit(im, EV_TOOL_RESULT)) != AT_OK)
                return r;
        }
        uint32_t tur = at_json_get(d, entry, "toolUseResult");
        if (!any_result && at_json_is(d, tur, AT_JSON_OBJECT)) {
            uint32_t so = at_json_get(d, tur, "stdout"), se = at_json_get(d, tur, "stderr");
            bool has_out = nonempty_str(d, so), has_err = nonempty_str(d, se);
            if (has_out || has_err) {
                at_buf_reset(&im->text);
                if ((r = add_str(&im->text, d, so)) != AT_OK)
                    return r;
                im->text.len = at_wtf8_prefix(im->text.data, im->text.len, STDOUT_MAX_CP);
                if (has_err) {
                    if ((r = at_buf_adds(&im->text, " [stderr: ")) != AT_OK)
                        return r;
                    size_t start = im->text.len;
                    if ((r = add_str(&im->text, d, se)) != AT_OK)
                        return r;
                    im->text.len =
                        start + at_wtf8_prefix(im->text.data + start, im->text.len - start, STDERR_MAX_CP);
                    if ((r = at_buf_addc(&im->text, ']')) != AT_OK)
                        return r;
                }
                data_begin(im);
                if ((r = data_str(im, "result", im->text.data, im->text.len)) != AT_OK ||
                    (r = data_key(im, "content_types")) != AT_OK)
                    return r;
                if ((r = at_buf_addc(&im->data, '[')) != AT_OK ||
                    (r = hooked_str(im, "content_types", "text", 4)) != AT_OK ||
                    (r = at_buf_addc(&im->data, ']')) != AT_OK)
                    return r;
                if ((r = data_end(im)) != AT_OK || (r = emit(im, EV_TOOL_RESULT)) != AT_OK)
                    return r;
            }
        }
    }
    if ((r = content_text(d, content, &im->text)) != AT_OK)
        return r;
    if (im->text.len == 0 || im->text.data[0] == '{')
        return AT_OK;
    data_begin(im);
    size_t cut = at_wtf8_prefix(im->text.data, im->text.len, PROMPT_MAX_CP);
    if ((r = data_str(im, "prompt", im->text.data, cut)) != AT_OK || (r = data_end(im)) != AT_OK)
        return r;
    return emit(im, EV_USER_PROMPT);
}

static at_result do_assistant(at_import *im, const at_json_doc *d, uint32_t entry, uint32_t msg,
                              uint32_t content)
{
    at_result r;
    if (at_json_is(d, content, AT_JSON_ARRAY)) {
        bool sidechain = at_json_is(d, at_json_get(d, entry, "isSidechain"), AT_JSON_TRUE);
        for (uint32_t b = at_json_first(d, content); b != AT_JSON_NONE; b = at_json_next(d, content, b)) {
            if (!at_json_is(d, b, AT_JSON_OBJECT) || !str_is(d, at_json_get(d, b, "type"), "tool_use"))
                continue;
            uint32_t name = at_json_get(d, b, "name"), input = at_json_get(d, b, "input");
            uint32_t id = at_json_get(d, b, "id");
            data_begin(im);
            r = at_json_truthy(d, name) ? data_node(im, "tool_name", d, name)
                                        : data_str(im, "tool_name", "", 0);
            if (r == AT_OK)
                r = input != AT_JSON_NONE ? data_node(im, "arguments", d, input)
                                          : data_raw(im, "arguments", "{}", 2);
            if (r == AT_OK)
                r = at_json_truthy(d, id) ? data_node(im, "request_id", d, id)
                                          : data_str(im, "request_id", "", 0);
            if (r == AT_OK && sidechain)
                r = data_raw(im, "is_sidechain", "true", 4);
            uint32_t caller = at_json_get(d, b, "caller");
            uint32_t ctype = at_json_get(d, caller, "type");
            if (r == AT_OK && nonempty_str(d, ctype))
                r = data_node(im, "caller_type", d, ctype);
            if (r == AT_OK && str_is(d, name, "Agent")) {
                uint32_t st = at_json_get(d, input, "subagent_type");
                if (at_json_truthy(d, st))
                    r = data_node(im, "subagent_type", d, st);
            }
            if (r != AT_OK || (r = data_end(im)) != AT_OK || (r = emit(im, EV_TOOL_CALL)) != AT_OK)
                return r;
            im->tool_calls++;
        }
    }
    if ((r = content_text(d, content, &im->text)) != AT_OK)
        return r;
    if (im->text.len) {
        data_begin(im);
        size_t cut = at_wtf8_prefix(im->text.data, im->text.len, PROMPT_MAX_CP);
        uint32_t model = at_json_get(d, msg, "model");
        if ((r = data_str(im, "text", im->text.data, cut)) != AT_OK)
            return r;
        r = model != AT_JSON_NONE ? data_node(im, "model", d, model) : data_str(im, "model", "", 0);
        if (r != AT_OK || (r = data_end(im)) != AT_OK || (r = emit(im, EV_ASSISTANT_RESPONSE)) != AT_OK)
            return r;
    }
    uint32_t usage = at_json_get(d, msg, "usage");
    if (at_json_is(d, usage, AT_JSON_OBJECT) && d->nodes[usage].len > 0) {
        static const char *const keys[] = {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                                           "cache_read_input_tokens"};
        at_pynum sum = node_num(d, at_json_get(d, usage, keys[0]));
        for (int i = 1; i < 4; i++)
            sum = at_pynum_add(sum, node_num(d, at_json_get(d, usage, keys[i])));
        im->total_tokens = at_pynum_add(im->total_tokens, sum);
        im->llm_requests++;
    }
    return AT_OK;
}

static at_result add_link(at_import *im, const at_json_doc *d, uint32_t agent, uint32_t tool_use)
{
    at_buf a, t;
    at_result r;
    at_buf_init(&a, 0);
    at_buf_init(&t, 0);
    if ((r = at_json_str_decode(d, agent, &a)) != AT_OK || (r = at_json_str_decode(d, tool_use, &t)) != AT_OK)
        goto out;
    for (size_t i = 0; i < im->nlinks; i++)
        if (strcmp(im->links[i].agent_id, a.data) == 0)
            goto out; /* the first mention decides */
    if (im->nlinks == MAX_LINKS)
        goto out;
    if (im->nlinks == im->links_cap) {
        size_t cap = im->links_cap ? im->links_cap * 2 : 8;
        void *p = realloc(im->links, cap * sizeof *im->links);
        if (!p) {
            r = AT_ERR_NOMEM;
            goto out;
        }
        im->links = p;
        im->links_cap = cap;
    }
    im->links[im->nlinks].agent_id = at_buf_steal(&a, NULL);
    im->links[im->nlinks].tool_use_id = at_buf_steal(&t, NULL);
    im->nlinks++;
out:
    at_buf_fini(&a);
    at_buf_fini(&t);
    return r;
}

/* Which tool call spawned which subagent (claude-import.md §6). */
static at_result collect_links(at_import *im, const at_json_doc *d, uint32_t entry, uint32_t type,
                               uint32_t content)
{
    if (str_is(d, type, "user")) {
        uint32_t agent = at_json_get(d, at_json_get(d, entry, "toolUseResult"), "agentId");
        if (!nonempty_str(d, agent) || !at_json_is(d, content, AT_JSON_ARRAY))
            return AT_OK;
        for (uint32_t b = at_json_first(d, content); b != AT_JSON_NONE; b = at_json_next(d, content, b)) {
            if (!at_json_is(d, b, AT_JSON_OBJECT) || !str_is(d, at_json_get(d, b, "type"), "tool_result"))
                continue;
            uint32_t id = at_json_get(d, b, "tool_use_id");
            return nonempty_str(d, id) ? add_link(im, d, agent, id) : AT_OK;
        }
    } else if (str_is(d, type, "progress")) {
        uint32_t agent = at_json_get(d, at_json_get(d, entry, "data"), "agentId");
        uint32_t id = at_json_get(d, entry, "parentToolUseID");
        if (nonempty_str(d, agent) && nonempty_str(d, id))
            return add_link(im, d, agent, id);
    }
    return AT_OK;
}

static at_result set_session(at_import *im, const at_json_doc *d, uint32_t entry, uint32_t sid)
{
    at_result r;
    uint32_t agent = at_json_get(d, entry, "agentId");
    if (nonempty_str(d, agent)) {
        /* A subagent's lines carry the parent's sessionId: give it its own. */
        if ((r = at_json_str_decode(d, agent, &im->agent_id)) != AT_OK ||
            (r = at_json_str_decode(d, sid, &im->parent_sid)) != AT_OK ||
            (r = at_buf_adds(&im->sid, "agent-")) != AT_OK ||
            (r = at_buf_add(&im->sid, im->agent_id.data, im->agent_id.len)) != AT_OK ||
            (r = at_buf_addc(&im->sid, '.')) != AT_OK ||
            (r = at_buf_add(&im->sid, im->parent_sid.data, im->parent_sid.len)) != AT_OK)
            return r;
    } else if ((r = at_json_str_decode(d, sid, &im->sid)) != AT_OK) {
        return r;
    }
    if ((r = at_json_write_wtf8(&im->sid_json, im->sid.data, im->sid.len)) != AT_OK)
        return r;
    im->have_sid = true;
    return pending_flush(im);
}

/* Strips dashes from the entry's uuid into uuid_buf. A uuid is any
 * non-empty string, even one that is empty without its dashes. */
static at_result take_uuid(at_import *im, const at_json_doc *d, uint32_t uuid)
{
    im->has_uuid = false;
    im->uuid_len = 0;
    if (!nonempty_str(d, uuid))
        return AT_OK;
    at_buf_reset(&im->uuid_buf);
    at_result r = at_json_str_decode(d, uuid, &im->uuid_buf);
    if (r != AT_OK)
        return r;
    char *s = im->uuid_buf.data;
    size_t n = 0;
    for (size_t i = 0; i < im->uuid_buf.len; i++)
        if (s[i] != '-')
            s[n++] = s[i];
    im->uuid = s;
    im->uuid_len = n;
    im->has_uuid = true;
    return AT_OK;
}

/* The entry's timestamp into *out (0.0 when it has none that parses);
 * fails only for memory. */
static at_result entry_timestamp(at_import *im, const at_json_doc *d, uint32_t ts, double *out)
{
    double v = 0.0;
    *out = 0.0;
    if (!at_json_is(d, ts, AT_JSON_STRING))
        return AT_OK;
    const at_json_node *nd = &d->nodes[ts];
    if (!(nd->flags & AT_JSON_STR_ESCAPED)) {
        if (at_timestamp_parse(d->src + nd->off, nd->len, &v))
            *out = v;
        return AT_OK;
    }
    at_buf_reset(&im->tmp);
    at_result r = at_json_str_decode(d, ts, &im->tmp);
    if (r == AT_ERR_NOMEM)
        return r;
    if (r == AT_OK && at_timestamp_parse(im->tmp.data ? im->tmp.data : "", im->tmp.len, &v))
        *out = v;
    return AT_OK;
}

static at_result do_entry(at_import *im, const at_json_doc *d)
{
    at_result r;
    uint32_t type = at_json_get(d, 0, "type");
    uint32_t msg = at_json_get(d, 0, "message");
    /* token usage (ccusage counts any line, queue operations included) */
    if (!im->usage_unknown && (r = at_usage_add(&im->usage, d, msg)) != AT_OK)
        return r;
    if (str_is(d, type, "queue-operation"))
        return AT_OK;

    if (!im->have_sid) {
        /* Every entry read while the id is unknown (the one that gives it
         * included) sets the branch and version; with no id at all, the
         * last entry's stay (claude-import.md §2). */
        at_buf_reset(&im->branch);
        at_buf_reset(&im->version);
        if ((r = add_str(&im->branch, d, at_json_get(d, 0, "gitBranch"))) != AT_OK ||
            (r = add_str(&im->version, d, at_json_get(d, 0, "version"))) != AT_OK)
            return r;
        uint32_t sid = at_json_get(d, 0, "sessionId");
        if (nonempty_str(d, sid) && (r = set_session(im, d, 0, sid)) != AT_OK)
            return r;
    }
    if ((r = entry_timestamp(im, d, at_json_get(d, 0, "timestamp"), &im->ts)) != AT_OK)
        return r;
    if (im->ts > 0) {
        if (!im->have_start) {
            im->started_at = im->ts;
            im->have_start = true;
        }
        im->last_ts = im->ts;
    }
    im->k = 0;
    uint32_t content = at_json_get(d, msg, "content");
    if ((r = collect_links(im, d, 0, type, content)) != AT_OK)
        goto out;
    if (msg != AT_JSON_NONE && !at_json_is(d, msg, AT_JSON_OBJECT))
        goto out;
    if (str_is(d, type, "user")) {
        if ((r = take_uuid(im, d, at_json_get(d, 0, "uuid"))) == AT_OK)
            r = do_user(im, d, 0, content);
    } else if (str_is(d, type, "assistant")) {
        if ((r = take_uuid(im, d, at_json_get(d, 0, "uuid"))) == AT_OK)
            r = do_assistant(im, d, 0, msg, content);
    } else if (str_is(d, type, "system") && str_is(d, at_json_get(d, 0, "subtype"), "turn_duration")) {
        uint32_t dur = at_json_get(d, 0, "durationMs");
        if (at_json_is(d, dur, AT_JSON_INT) || at_json_is(d, dur, AT_JSON_FLOAT) ||
            at_json_is(d, dur, AT_JSON_TRUE)) {
            at_pynum v = node_num(d, dur);
            if (at_pynum_truthy(v))
                im->total_duration_ms = at_pynum_add(im->total_duration_ms, v);
        }
    }
out:
    im->entry_no++;
    return r;
}

/* ---- lines -------------------------------------------------------------- */

static at_result do_line(at_import *im, const char *p, size_t n, at_error *err)
{
    const char *s = at_pystrip(p, &n);
    if (n == 0)
        return AT_OK;
    at_result r = at_json_parse(&im->doc, s, n, NULL);
    if (r == AT_ERR_NOMEM) /* not the line's fault: skipping it would lose it */
        return at_error_set(err, r, (int64_t)im->offset, "out of memory");
    if (r != AT_OK || !at_json_is(&im->doc, 0, AT_JSON_OBJECT)) {
        im->skipped++;
        return AT_OK;
    }
    im->objects++;
    r = do_entry(im, &im->doc);
    if (r != AT_OK)
        return at_error_set(err, r, (int64_t)im->offset, "%s while importing", at_result_str(r));
    return AT_OK;
}

/* ---- the tool-call map (incremental import) ------------------------------ */

static void call_key(const char *s, size_t n, uint8_t key[CALL_KEY])
{
    uint8_t dg[AT_SHA256_LEN];
    at_sha256_oneshot(s, n, dg);
    memcpy(key, dg, CALL_KEY);
}

static size_t call_slot(const uint8_t *key, size_t mask)
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* already uniform: a digest */
    return (size_t)h & mask;
}

static const call_id *calls_find(const call_map *m, const uint8_t *key)
{
    if (!m->nslots)
        return NULL;
    size_t mask = m->nslots - 1;
    for (size_t i = call_slot(key, mask);; i = (i + 1) & mask) {
        uint32_t s = m->slots[i];
        if (!s)
            return NULL;
        if (memcmp(m->v[s - 1].key, key, CALL_KEY) == 0)
            return &m->v[s - 1];
    }
}

static void calls_put_slot(uint32_t *slots, size_t nslots, const uint8_t *key, uint32_t idx)
{
    size_t mask = nslots - 1, i = call_slot(key, mask);
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = idx + 1;
}

/* Records a call unless one with the same key is known: the first wins. */
static at_result calls_add(call_map *m, const uint8_t *key, const char *eid, size_t eid_len)
{
    if (calls_find(m, key))
        return AT_OK;
    if (m->n >= UINT32_MAX / 4 || eid_len > AT_MAX_EVENT_ID_BYTES)
        return AT_ERR_TOO_BIG;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        call_id *v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return AT_ERR_NOMEM;
        m->v = v;
        m->cap = cap;
    }
    if ((m->n + 1) * 2 > m->nslots) {
        size_t nslots = m->nslots ? m->nslots * 2 : 64;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return AT_ERR_NOMEM;
        for (size_t j = 0; j < m->n; j++)
            calls_put_slot(slots, nslots, m->v[j].key, (uint32_t)j);
        free(m->slots);
        m->slots = slots;
        m->nslots = nslots;
    }
    call_id *c = &m->v[m->n];
    memcpy(c->key, key, CALL_KEY);
    c->eid_len = (uint8_t)eid_len;
    if (eid_len)
        memcpy(c->eid, eid, eid_len);
    calls_put_slot(m->slots, m->nslots, key, (uint32_t)m->n);
    m->n++;
    return AT_OK;
}

/* ---- the saved state ----------------------------------------------------- */

/* The state blob. Integers little-endian; str = u32 length + bytes;
 * num (at_pynum) = u8 is_float + i64 + f64 (IEEE bits).
 *   "ATIMPST" u8 version (STATE_VERSION)
 *   u64 N                 transcript bytes consumed: where the next import resumes
 *   midstate              of SHA-256 over those bytes (AT_SHA256_STATE_LEN)
 *   u64 u64 u32 u32 u32   UTF-8 validator: offset, seq_start, need, cp, min
 *   u64 u8 str            line assembly: offset, after_cr, the unfinished line
 *   u8 str*6              have_sid, sid, branch, version, agent_id, parent_sid, source
 *   u64 f64 f64 u8        entry_no, started_at, last_ts, have_start
 *   i64 i64 num num       tool_calls, llm_requests, total_tokens, total_duration_ms
 *   u64*4                 skipped, objects, redacted_events, events
 *   32 u8 u64 u64 midstate  chain: head, have_head, lines, bytes, file digest
 *   u32 n, n*(str str)    links: agent id, tool-use id
 *   u8 str ids            version 2: usage known, its JSON (at_usage_write)
 *                         and the (message id, request id) set (at_usage_ids_save)
 *   u32 n, n*(16 u8 id)   calls: key, event id length, event id
 *   32                    SHA-256 of everything above
 * Event lines are not in it: the chain position stands for them. */
#define STATE_MAGIC   "ATIMPST"
#define STATE_VERSION 2 /* 1: without usage (still read: usage unknown) */
#define STATE_MIN     (8 + 8 + AT_SHA256_LEN)

typedef struct {
    at_buf *b;
    at_result r; /* sticky */
} st_writer;

static void w_raw(st_writer *w, const void *p, size_t n)
{
    if (w->r == AT_OK)
        w->r = at_buf_add(w->b, p, n);
}

static void w_u8(st_writer *w, unsigned v)
{
    uint8_t c = (uint8_t)v;
    w_raw(w, &c, 1);
}

static void w_u32(st_writer *w, uint32_t v)
{
    uint8_t p[4];
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    w_raw(w, p, 4);
}

static void w_u64(st_writer *w, uint64_t v)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    w_raw(w, p, 8);
}

static void w_f64(st_writer *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    w_u64(w, u);
}

static void w_str(st_writer *w, const char *p, size_t n)
{
    if (n > UINT32_MAX) {
        if (w->r == AT_OK)
            w->r = AT_ERR_TOO_BIG;
        return;
    }
    w_u32(w, (uint32_t)n);
    w_raw(w, p, n);
}

static void w_num(st_writer *w, at_pynum v)
{
    w_u8(w, v.is_float);
    w_u64(w, (uint64_t)v.i);
    w_f64(w, v.f);
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
    at_result r;     /* sticky: AT_ERR_INVALID (malformed) or AT_ERR_NOMEM */
    const char *why; /* for AT_ERR_INVALID */
} st_reader;

static void r_fail(st_reader *r, const char *why)
{
    if (r->r == AT_OK) {
        r->r = AT_ERR_INVALID;
        r->why = why;
    }
}

static const uint8_t *r_take(st_reader *r, size_t n)
{
    if (r->r != AT_OK)
        return NULL;
    if (r->n - r->off < n) {
        r_fail(r, "truncated");
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static void r_raw(st_reader *r, void *out, size_t n)
{
    const uint8_t *p = r_take(r, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

static uint8_t r_u8(st_reader *r)
{
    const uint8_t *p = r_take(r, 1);
    return p ? *p : 0;
}

static bool r_bool(st_reader *r)
{
    uint8_t v = r_u8(r);
    if (v > 1)
        r_fail(r, "a flag is not 0 or 1");
    return v == 1;
}

static uint32_t r_u32(st_reader *r)
{
    const uint8_t *p = r_take(r, 4);
    uint32_t v = 0;
    for (int i = 3; p && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t r_u64(st_reader *r)
{
    const uint8_t *p = r_take(r, 8);
    uint64_t v = 0;
    for (int i = 7; p && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static double r_f64(st_reader *r)
{
    uint64_t u = r_u64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Appends a str of at most max bytes to out; NULs refused when C strings
 * are wanted (nul_ok false). */
static void r_str(st_reader *r, at_buf *out, size_t max, bool nul_ok)
{
    uint32_t n = r_u32(r);
    if (r->r == AT_OK && n > max) {
        r_fail(r, "a string is too long");
        return;
    }
    const uint8_t *p = r_take(r, n);
    if (!p)
        return;
    if (!nul_ok && memchr(p, 0, n)) {
        r_fail(r, "a NUL inside an id");
        return;
    }
    at_result res = at_buf_add(out, p, n);
    if (res != AT_OK && r->r == AT_OK)
        r->r = res;
}

static at_pynum r_num(st_reader *r)
{
    at_pynum v;
    v.is_float = r_bool(r);
    v.i = (int64_t)r_u64(r);
    v.f = r_f64(r);
    if (v.is_float ? v.i != 0 : (v.f != 0.0 || signbit(v.f)))
        r_fail(r, "a number is neither an int nor a float");
    return v;
}

/* Writes the state as it is now, except the call map (state_end adds it
 * once the calls of out_fd up to this point are known). */
static at_result state_begin(at_import *im, at_buf *b)
{
    st_writer w = {b, AT_OK};
    uint8_t hs[AT_SHA256_STATE_LEN];
    at_chain_pos pos;
    const char *src = im->opts.source ? im->opts.source : "";
    w_raw(&w, STATE_MAGIC, 7);
    w_u8(&w, STATE_VERSION);
    w_u64(&w, im->utf8.offset);
    at_sha256_export(im->input_hash, hs);
    w_raw(&w, hs, sizeof hs);
    /* a sequence in progress, or zeros (what is left of the last one
     * does not matter) */
    bool seq = im->utf8.need > 0;
    w_u64(&w, im->utf8.offset);
    w_u64(&w, seq ? im->utf8.seq_start : 0);
    w_u32(&w, im->utf8.need);
    w_u32(&w, seq ? im->utf8.cp : 0);
    w_u32(&w, seq ? im->utf8.min : 0);
    w_u64(&w, im->offset);
    w_u8(&w, im->after_cr);
    w_str(&w, im->line.data, im->line.len);
    w_u8(&w, im->have_sid);
    const at_buf *ids[] = {&im->sid, &im->branch, &im->version, &im->agent_id, &im->parent_sid};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        w_str(&w, ids[i]->data, ids[i]->len);
    w_str(&w, src, strlen(src));
    w_u64(&w, im->entry_no);
    w_f64(&w, im->started_at);
    w_f64(&w, im->last_ts);
    w_u8(&w, im->have_start);
    w_u64(&w, (uint64_t)im->tool_calls);
    w_u64(&w, (uint64_t)im->llm_requests);
    w_num(&w, im->total_tokens);
    w_num(&w, im->total_duration_ms);
    w_u64(&w, im->skipped);
    w_u64(&w, im->objects);
    w_u64(&w, im->redacted_events);
    w_u64(&w, im->events);
    at_chain_writer_pos(&im->w, &pos);
    w_raw(&w, pos.head, AT_SHA256_LEN);
    w_u8(&w, pos.have_head);
    w_u64(&w, pos.lines);
    w_u64(&w, pos.bytes);
    w_raw(&w, pos.file_state, AT_SHA256_STATE_LEN);
    w_u32(&w, (uint32_t)im->nlinks);
    for (size_t i = 0; i < im->nlinks; i++) {
        w_str(&w, im->links[i].agent_id, strlen(im->links[i].agent_id));
        w_str(&w, im->links[i].tool_use_id, strlen(im->links[i].tool_use_id));
    }
    w_u8(&w, !im->usage_unknown);
    if (!im->usage_unknown && w.r == AT_OK) {
        at_buf j;
        at_buf_init(&j, 0);
        w.r = at_usage_write(&im->usage, &j);
        w_str(&w, j.data ? j.data : "", j.len);
        at_buf_fini(&j);
        if (w.r == AT_OK)
            w.r = at_usage_ids_save(&im->usage, b);
    }
    return w.r;
}

/* Appends the call map and the checksum. */
static at_result state_end(at_import *im, at_buf *b)
{
    st_writer w = {b, AT_OK};
    w_u32(&w, (uint32_t)im->calls.n);
    for (size_t i = 0; i < im->calls.n; i++) {
        const call_id *c = &im->calls.v[i];
        w_raw(&w, c->key, CALL_KEY);
        w_u8(&w, c->eid_len);
        w_raw(&w, c->eid, c->eid_len);
    }
    if (w.r == AT_OK) {
        uint8_t dg[AT_SHA256_LEN];
        at_sha256_oneshot(b->data, b->len, dg);
        w_raw(&w, dg, sizeof dg);
    }
    return w.r;
}

/* Is s well-formed WTF-8 (UTF-8 in which lone surrogates may be encoded),
 * as every string the importer decodes is? A state's strings must be. */
static bool wtf8_ok(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff)
            return false;
        i += k + 1;
    }
    return true;
}

/* Do the unfinished line's bytes agree with the validator's state? They
 * are what followed the last line end (ASCII), so they validate on their
 * own, and a sequence in progress is their tail. */
static bool line_matches_utf8(const at_buf *line, const at_utf8_state *st)
{
    at_utf8_state u = {0};
    int64_t bad;
    if (line->len > st->offset || at_utf8_feed(&u, line->data ? line->data : "", line->len, &bad) != AT_OK ||
        u.need != st->need)
        return false;
    if (!st->need)
        return st->seq_start == 0 && st->cp == 0 && st->min == 0;
    return u.cp == st->cp && u.min == st->min && u.seq_start + (st->offset - line->len) == st->seq_start;
}

static char *dup_mem(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* Restores im from a blob; pos gets the chain position. */
static at_result state_load(at_import *im, const void *blob, size_t len, at_chain_pos *pos, at_error *err)
{
    const uint8_t *p = blob;
    if (!blob || len < STATE_MIN)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: truncated");
    if (memcmp(p, STATE_MAGIC, 7) != 0)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: not an import state");
    if (p[7] != STATE_VERSION && p[7] != 1)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: version %u, not %u", p[7],
                            STATE_VERSION);
    uint8_t dg[AT_SHA256_LEN];
    at_sha256_oneshot(p, len - AT_SHA256_LEN, dg);
    if (memcmp(dg, p + len - AT_SHA256_LEN, AT_SHA256_LEN) != 0)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: checksum mismatch");

    st_reader r = {p, len - AT_SHA256_LEN, 8, AT_OK, NULL};
    uint8_t hs[AT_SHA256_STATE_LEN];
    uint64_t n = r_u64(&r);
    r_raw(&r, hs, sizeof hs);
    im->utf8.offset = r_u64(&r);
    im->utf8.seq_start = r_u64(&r);
    im->utf8.need = r_u32(&r);
    im->utf8.cp = r_u32(&r);
    im->utf8.min = r_u32(&r);
    im->offset = r_u64(&r);
    im->after_cr = r_bool(&r);
    r_str(&r, &im->line, AT_MAX_LINE_BYTES, true);
    im->have_sid = r_bool(&r);
    at_buf *ids[] = {&im->sid, &im->branch, &im->version, &im->agent_id, &im->parent_sid};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        r_str(&r, ids[i], AT_MAX_LINE_BYTES, true);
    r_str(&r, &im->saved_source, AT_MAX_LINE_BYTES, false); /* the caller's C string, any bytes */
    im->entry_no = r_u64(&r);
    im->started_at = r_f64(&r);
    im->last_ts = r_f64(&r);
    im->have_start = r_bool(&r);
    im->tool_calls = (int64_t)r_u64(&r);
    im->llm_requests = (int64_t)r_u64(&r);
    im->total_tokens = r_num(&r);
    im->total_duration_ms = r_num(&r);
    im->skipped = r_u64(&r);
    im->objects = r_u64(&r);
    im->redacted_events = r_u64(&r);
    im->events = r_u64(&r);
    r_raw(&r, pos->head, AT_SHA256_LEN);
    pos->have_head = r_bool(&r);
    pos->lines = r_u64(&r);
    pos->bytes = r_u64(&r);
    r_raw(&r, pos->file_state, AT_SHA256_STATE_LEN);
    uint32_t nlinks = r_u32(&r);
    if (nlinks > MAX_LINKS)
        r_fail(&r, "too many links");
    if (r.r == AT_OK && nlinks && !(im->links = calloc(nlinks, sizeof *im->links)))
        r.r = AT_ERR_NOMEM;
    at_buf a, t;
    at_buf_init(&a, 0);
    at_buf_init(&t, 0);
    for (uint32_t i = 0; i < nlinks && r.r == AT_OK; i++) {
        at_buf_reset(&a);
        at_buf_reset(&t);
        r_str(&r, &a, AT_MAX_LINE_BYTES, false);
        r_str(&r, &t, AT_MAX_LINE_BYTES, false);
        if (r.r != AT_OK)
            break;
        im->links[i].agent_id = dup_mem(a.data, a.len);
        im->links[i].tool_use_id = dup_mem(t.data, t.len);
        im->nlinks = im->links_cap = i + 1;
        if (!im->links[i].agent_id || !im->links[i].tool_use_id)
            r.r = AT_ERR_NOMEM;
    }
    at_buf_fini(&a);
    at_buf_fini(&t);
    im->usage_unknown = p[7] == 1 || !r_bool(&r);
    if (!im->usage_unknown && r.r == AT_OK) {
        at_buf j;
        at_buf_init(&j, 0);
        r_str(&r, &j, AT_MAX_LINE_BYTES, true);
        at_result ur = r.r == AT_OK ? at_usage_read(&im->usage, j.data ? j.data : "", j.len) : AT_OK;
        at_buf_fini(&j);
        size_t used = 0;
        if (ur == AT_OK && r.r == AT_OK)
            ur = at_usage_ids_load(&im->usage, r.p + r.off, r.n - r.off, &used);
        r.off += used;
        if (ur == AT_ERR_NOMEM)
            r.r = ur;
        else if (ur != AT_OK)
            r_fail(&r, "bad usage");
    }
    uint32_t ncalls = r_u32(&r);
    for (uint32_t i = 0; i < ncalls && r.r == AT_OK; i++) {
        uint8_t key[CALL_KEY];
        char eid[AT_MAX_EVENT_ID_BYTES];
        r_raw(&r, key, CALL_KEY);
        uint8_t el = r_u8(&r);
        if (el > AT_MAX_EVENT_ID_BYTES)
            r_fail(&r, "an event id is too long");
        r_raw(&r, eid, r.r == AT_OK ? el : 0);
        if (r.r == AT_OK)
            r.r = calls_add(&im->calls, key, eid, el);
    }
    if (r.r == AT_OK && r.off != r.n)
        r_fail(&r, "trailing bytes");
    /* What the counts must agree on, so that a state is one we wrote. */
    if (r.r == AT_OK && (im->utf8.offset != n || im->offset != n || im->utf8.need > 3 ||
                         im->utf8.seq_start > n || (im->after_cr && im->line.len) ||
                         pos->lines != im->events || im->tool_calls < 0 || im->llm_requests < 0))
        r_fail(&r, "inconsistent counts");
    if (r.r == AT_OK && !line_matches_utf8(&im->line, &im->utf8))
        r_fail(&r, "the unfinished line does not match the UTF-8 state");
    for (size_t i = 0; r.r == AT_OK && i < sizeof ids / sizeof *ids; i++)
        if (!wtf8_ok(ids[i]->data, ids[i]->len))
            r_fail(&r, "a string is not WTF-8");
    for (size_t i = 0; r.r == AT_OK && i < im->nlinks; i++)
        if (!wtf8_ok(im->links[i].agent_id, strlen(im->links[i].agent_id)) ||
            !wtf8_ok(im->links[i].tool_use_id, strlen(im->links[i].tool_use_id)))
            r_fail(&r, "a link is not WTF-8");
    if (r.r == AT_OK &&
        (at_sha256_import(im->input_hash, hs) != AT_OK || at_sha256_count(im->input_hash) != n))
        r_fail(&r, "bad transcript digest");
    if (r.r == AT_ERR_NOMEM)
        return oom(err);
    if (r.r != AT_OK)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: %s", r.why);
    if (!im->have_sid)
        return at_error_set(err, AT_ERR_INVALID, -1, "cannot resume: no entry named the session yet");
    if (!im->sid.len || at_json_write_wtf8(&im->sid_json, im->sid.data, im->sid.len) != AT_OK)
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid import state: empty session id");
    return AT_OK;
}

at_import *at_import_new(const at_import_options *opts, at_error *err)
{
    at_import *im = calloc(1, sizeof *im);
    if (!im) {
        oom(err);
        return NULL;
    }
    im->opts = *opts;
    im->opts.resume = NULL; /* borrowed for this call only */
    im->spill_fd = -1;
    at_usage_init(&im->usage);
    at_buf_init(&im->line, AT_MAX_LINE_BYTES);
    at_json_doc_init(&im->doc);
    at_buf *bufs[] = {&im->sid,        &im->sid_json, &im->branch,       &im->version, &im->agent_id,
                      &im->parent_sid, &im->pending,  &im->data,         &im->text,    &im->tmp,
                      &im->tmp2,       &im->uuid_buf, &im->saved_source, &im->state};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        at_buf_init(bufs[i], 0);
    im->style = AT_JSON_COMPACT;
    if (opts->redact) {
        im->style.hook = at_redact_hook;
        im->style.hook_ctx = opts->redact;
    }
    at_fd_sink_init(&im->sink, opts->out_fd);
    /* Hashing the transcript costs a plain import about a quarter of its
     * speed: only imports that take part in resuming do it. */
    if ((opts->keep_state || opts->resume) && !(im->input_hash = at_sha256_new())) {
        oom(err);
        goto fail;
    }
    at_result r;
    if (opts->resume) {
        at_chain_pos pos;
        if (state_load(im, opts->resume, opts->resume_len, &pos, err) != AT_OK)
            goto fail;
        if (!im->opts.source && im->saved_source.len)
            im->opts.source = im->saved_source.data;
        if ((r = at_chain_writer_resume(&im->w, at_fd_sink_write, &im->sink, &pos)) != AT_OK) {
            at_error_set(err, r, -1,
                         r == AT_ERR_INVALID ? "invalid import state: bad chain position" : "out of memory");
            goto fail;
        }
        im->body_bytes = pos.bytes;
        im->body_lines = pos.lines;
    } else if (at_chain_writer_init(&im->w, at_fd_sink_write, &im->sink, NULL) != AT_OK) {
        oom(err);
        goto fail;
    }
    im->source_name = strdup(basename_of(im->opts.source ? im->opts.source : "upload.jsonl"));
    if (!im->source_name) {
        oom(err);
        goto fail;
    }
    im->w.on_line = opts->on_line;
    im->w.on_line_ctx = opts->on_line_ctx;
    return im;
fail:
    at_import_free(im);
    return NULL;
}

void at_import_free(at_import *im)
{
    if (!im)
        return;
    at_buf *bufs[] = {&im->line,     &im->sid,        &im->sid_json, &im->branch, &im->version,
                      &im->agent_id, &im->parent_sid, &im->pending,  &im->data,   &im->text,
                      &im->tmp,      &im->tmp2,       &im->uuid_buf};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        at_buf_fini(bufs[i]);
    at_json_doc_fini(&im->doc);
    at_chain_writer_fini(&im->w);
    at_fd_sink_fini(&im->sink);
    if (im->spill_fd >= 0)
        close(im->spill_fd);
    for (size_t i = 0; i < im->nlinks; i++) {
        free(im->links[i].agent_id);
        free(im->links[i].tool_use_id);
    }
    free(im->links);
    free(im->source_name);
    at_sha256_free(im->input_hash);
    at_buf_fini(&im->saved_source);
    at_buf_fini(&im->state);
    free(im->calls.v);
    free(im->calls.slots);
    at_usage_fini(&im->usage);
    free(im);
}

/* Finds the end of the line starting at p: the first \n or \r. */
static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *cr = memchr(p, '\r', (size_t)((nl ? nl : end) - p));
    return cr ? cr : nl;
}

at_result at_import_feed(at_import *im, const char *p, size_t n, at_error *err)
{
    if (im->failed)
        return at_error_set(err, im->failed, -1, "import already failed");
    int64_t bad;
    if (at_utf8_feed(&im->utf8, p, n, &bad) != AT_OK) {
        im->failed = AT_ERR_UTF8;
        return at_error_set(err, AT_ERR_UTF8, bad, "invalid UTF-8 at byte offset %lld", (long long)bad);
    }
    if (im->input_hash)
        at_sha256_update(im->input_hash, p, n);
    const char *end = p + n;
    at_result r = AT_OK;
    if (n && im->after_cr && *p == '\n') {
        p++;
        im->offset++;
    }
    im->after_cr = false;
    while (p < end) {
        const char *e = line_end(p, end);
        if (!e) {
            /* The rest is the start of a line the next chunk finishes. */
            if ((r = at_buf_add(&im->line, p, (size_t)(end - p))) != AT_OK) {
                r = r == AT_ERR_NOMEM ? at_error_set(err, r, (int64_t)im->offset, "out of memory")
                                      : at_error_set(err, AT_ERR_TOO_BIG, (int64_t)im->offset,
                                                     "line longer than %u bytes at byte offset %llu",
                                                     AT_MAX_LINE_BYTES, (unsigned long long)im->offset);
                goto fail;
            }
            im->offset += (size_t)(end - p);
            break;
        }
        size_t len = (size_t)(e - p);
        if (im->line.len) {
            if ((r = at_buf_add(&im->line, p, len)) != AT_OK) {
                r = r == AT_ERR_NOMEM ? at_error_set(err, r, (int64_t)im->offset, "out of memory")
                                      : at_error_set(err, AT_ERR_TOO_BIG, (int64_t)im->offset,
                                                     "line longer than %u bytes", AT_MAX_LINE_BYTES);
                goto fail;
            }
            r = do_line(im, im->line.data, im->line.len, err);
            at_buf_reset(&im->line);
        } else {
            if (len > AT_MAX_LINE_BYTES) {
                r = at_error_set(err, AT_ERR_TOO_BIG, (int64_t)im->offset, "line longer than %u bytes",
                                 AT_MAX_LINE_BYTES);
                goto fail;
            }
            r = do_line(im, p, len, err);
        }
        if (r != AT_OK)
            goto fail;
        size_t skip = 1;
        if (*e == '\r') {
            if (e + 1 < end && e[1] == '\n')
                skip = 2;
            else if (e + 1 == end)
                im->after_cr = true;
        }
        im->offset += len + skip;
        p = e + skip;
    }
    return AT_OK;
fail:
    im->failed = r;
    return r;
}

/* One pass over the event lines this import wrote to out_fd (only when
 * something needs it): resolves each link (when links is non-NULL) to the
 * first tool_call whose request_id is the link's tool-use id, looking first
 * at the calls of earlier imports (im->calls), and records in im->calls the
 * first call per request id among the lines that start before out_fd
 * offset record_to (0: none). */
static at_result scan_calls(at_import *im, at_import_link *links, uint64_t record_to)
{
    at_result r = AT_OK;
    size_t nlinks = links ? im->nlinks : 0;
    /* done[i]: link i met its tool_call (the first one with that request_id),
     * whether or not that call's id could be kept */
    bool *done = calloc(nlinks ? nlinks : 1, sizeof *done);
    if (!done)
        return AT_ERR_NOMEM;
    size_t unresolved = nlinks;
    uint8_t key[CALL_KEY];
    for (size_t i = 0; i < nlinks && im->calls.n; i++) {
        call_key(im->links[i].tool_use_id, strlen(im->links[i].tool_use_id), key);
        const call_id *c = calls_find(&im->calls, key);
        if (!c)
            continue;
        done[i] = true;
        unresolved--;
        memcpy(links[i].event_id, c->eid, c->eid_len);
        links[i].event_id_len = c->eid_len;
    }
    at_buf chunk, id, rid;
    at_json_doc d;
    at_buf_init(&chunk, 0);
    at_buf_init(&id, 0);
    at_buf_init(&rid, 0);
    at_json_doc_init(&d);
    static const char prefix[] = "{\"event_type\":\"tool_call\"";
    uint64_t off = 0;  /* bytes read */
    uint64_t base = 0; /* out_fd offset of chunk.data[0] */
    while (r == AT_OK && (unresolved || off < record_to)) {
        if ((r = at_buf_reserve(&chunk, 1 << 20)) != AT_OK)
            break;
        ssize_t k = pread(im->opts.out_fd, chunk.data + chunk.len, 1 << 20, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = AT_ERR_IO;
            break;
        }
        if (k == 0)
            break;
        off += (uint64_t)k;
        chunk.len += (size_t)k;
        char *s = chunk.data, *end = chunk.data + chunk.len, *nl;
        while (r == AT_OK && (nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
            size_t n = (size_t)(nl - s);
            bool record = base + (uint64_t)(s - chunk.data) < record_to;
            at_result pr = AT_ERR_INVALID;
            if ((record || unresolved) && n > sizeof prefix - 1 && memcmp(s, prefix, sizeof prefix - 1) == 0)
                pr = at_json_parse(&d, s, n, NULL);
            if (pr == AT_ERR_NOMEM) { /* must not pass for a line without a call */
                r = pr;
                break;
            }
            if (pr == AT_OK) {
                uint32_t rq = at_json_get(&d, at_json_get(&d, 0, "data"), "request_id");
                uint32_t eid = at_json_get(&d, 0, "event_id");
                /* The id is decoded WTF-8 (a uuid prefix can be up to
                 * EID_MAX_BYTES of any characters, NULs included). */
                at_buf_reset(&id);
                at_result dr =
                    at_json_is(&d, eid, AT_JSON_STRING) ? at_json_str_decode(&d, eid, &id) : AT_ERR_INVALID;
                if (dr == AT_ERR_NOMEM) {
                    r = dr;
                    break;
                }
                bool have_id = dr == AT_OK && id.len && id.len <= AT_MAX_EVENT_ID_BYTES;
                size_t id_len = have_id ? id.len : 0;
                for (size_t i = 0; rq != AT_JSON_NONE && i < nlinks && unresolved; i++) {
                    if (done[i] ||
                        !at_json_str_eq(&d, rq, im->links[i].tool_use_id, strlen(im->links[i].tool_use_id)))
                        continue;
                    done[i] = true;
                    unresolved--;
                    if (id_len)
                        memcpy(links[i].event_id, id.data, id_len);
                    links[i].event_id_len = id_len;
                }
                if (record && at_json_is(&d, rq, AT_JSON_STRING) && d.nodes[rq].len) {
                    at_buf_reset(&rid);
                    if ((r = at_json_str_decode(&d, rq, &rid)) != AT_OK)
                        break;
                    call_key(rid.data, rid.len, key);
                    r = calls_add(&im->calls, key, id.data, id_len);
                }
            }
            s = nl + 1;
        }
        base += (uint64_t)(s - chunk.data);
        memmove(chunk.data, s, (size_t)(end - s));
        chunk.len = (size_t)(end - s);
    }
    at_json_doc_fini(&d);
    at_buf_fini(&rid);
    at_buf_fini(&id);
    at_buf_fini(&chunk);
    free(done);
    return r;
}

static at_result resolve_links(at_import *im, at_import_result *res, uint64_t record_to)
{
    res->links = calloc(im->nlinks ? im->nlinks : 1, sizeof *res->links);
    if (!res->links)
        return AT_ERR_NOMEM;
    for (size_t i = 0; i < im->nlinks; i++) {
        res->links[i].agent_id = strdup(im->links[i].agent_id);
        if (!res->links[i].agent_id)
            return AT_ERR_NOMEM;
        res->nlinks++;
    }
    if (!im->nlinks && !record_to)
        return AT_OK;
    return scan_calls(im, res->links, record_to);
}

static at_result build_meta(at_import *im, at_import_result *res, double ended_at)
{
    at_meta *m = &res->meta;
    at_result r;
    at_buf cmd;
    at_buf_init(&cmd, 0);
    if ((r = at_meta_set_string(m, AT_META_SESSION_ID, im->sid.data, im->sid.len)) != AT_OK ||
        (r = at_meta_set_double(m, AT_META_STARTED_AT, im->started_at)) != AT_OK ||
        (r = at_meta_set_double(m, AT_META_ENDED_AT, ended_at)) != AT_OK ||
        (r = at_meta_set_string(m, AT_META_AGENT_NAME, "claude-code", 11)) != AT_OK ||
        (r = at_buf_printf(&cmd, "imported from %s (branch: ", im->source_name)) != AT_OK ||
        (r = at_buf_add(&cmd, im->branch.data, im->branch.len)) != AT_OK ||
        (r = at_buf_adds(&cmd, ", v")) != AT_OK ||
        (r = at_buf_add(&cmd, im->version.data, im->version.len)) != AT_OK ||
        (r = at_buf_addc(&cmd, ')')) != AT_OK ||
        (r = at_meta_set_string(m, AT_META_COMMAND, cmd.data, cmd.len)) != AT_OK ||
        (r = at_meta_set_raw(m, AT_META_TOOL_CALLS, res->tool_calls, strlen(res->tool_calls))) != AT_OK ||
        (r = at_meta_set_raw(m, AT_META_LLM_REQUESTS, res->llm_requests, strlen(res->llm_requests))) !=
            AT_OK ||
        (r = at_meta_set_raw(m, AT_META_TOTAL_TOKENS, res->total_tokens, strlen(res->total_tokens))) != AT_OK)
        goto out;
    char dur[AT_PYNUM_STR_MAX];
    size_t dl = at_pynum_format(im->total_duration_ms, dur);
    if ((r = at_meta_set_raw(m, AT_META_TOTAL_DURATION_MS, dur, dl)) != AT_OK ||
        (r = at_meta_set_raw(m, AT_META_ATTRIBUTION, "{}", 2)) != AT_OK)
        goto out;
    if (im->opts.redact) {
        if ((r = at_redact_meta(im->opts.redact, m)) != AT_OK)
            goto out;
        res->meta_redacted = at_redact_changed(im->opts.redact);
    }
    if (im->agent_id.len) {
        if ((r = at_meta_set_string(m, AT_META_PARENT_SESSION_ID, im->parent_sid.data, im->parent_sid.len)) !=
                AT_OK ||
            (r = at_meta_set_int(m, AT_META_DEPTH, 1)) != AT_OK)
            goto out;
    }
out:
    at_buf_fini(&cmd);
    return r;
}

static char *dup_buf(const at_buf *b)
{
    return dup_mem(b->data, b->len);
}

at_result at_import_finish(at_import *im, at_import_result *res, at_error *err)
{
    at_result r;
    memset(res, 0, sizeof *res);
    at_meta_init(&res->meta);
    if (im->failed)
        return at_error_set(err, im->failed, -1, "import already failed");
    /* The state to resume from is the one before the finishing steps: the
     * last line unparsed (more bytes may extend it), held events held. */
    uint64_t record_to = 0; /* out_fd bytes written before that point */
    if (im->opts.keep_state) {
        record_to = im->w.bytes - im->body_bytes;
        at_buf_reset(&im->state);
        if ((r = state_begin(im, &im->state)) != AT_OK)
            return at_error_set(err, r, -1, "cannot save the import state: %s", at_result_str(r));
    }
    int64_t bad;
    if (at_utf8_finish(&im->utf8, &bad) != AT_OK) {
        /* A sequence cut at the end: the input so far is a valid prefix,
         * so its state is still worth keeping (see importer.h). */
        im->failed = AT_ERR_UTF8;
        if (im->opts.keep_state && at_fd_sink_flush(&im->sink) == AT_OK &&
            scan_calls(im, NULL, record_to) == AT_OK && state_end(im, &im->state) == AT_OK)
            res->state = at_buf_steal(&im->state, &res->state_len);
        res->body_bytes = im->body_bytes;
        res->body_lines = im->body_lines;
        return at_error_set(err, AT_ERR_UTF8, bad, "invalid UTF-8 at byte offset %lld (truncated sequence)",
                            (long long)bad);
    }
    if (im->line.len) {
        if ((r = do_line(im, im->line.data, im->line.len, err)) != AT_OK)
            return r;
        at_buf_reset(&im->line);
    }
    if (!im->have_sid) {
        /* No entry named the session: the file name without its extension. */
        const char *name = im->source_name;
        const char *dot = strrchr(name, '.');
        size_t n = dot && dot != name && dot[1] ? (size_t)(dot - name) : strlen(name);
        if ((r = at_buf_add(&im->sid, name, n)) != AT_OK ||
            (r = at_json_write_wtf8(&im->sid_json, im->sid.data ? im->sid.data : "", im->sid.len)) != AT_OK)
            return at_error_set(err, r, -1, "out of memory");
        im->have_sid = true;
        if ((r = pending_flush(im)) != AT_OK)
            return at_error_set(err, r, -1, "cannot replay held events");
    }

    double ended_at = im->last_ts > 0 ? im->last_ts : im->started_at;
    if (!at_pynum_truthy(im->total_duration_ms) && ended_at > im->started_at)
        im->total_duration_ms = at_pynum_from_double((ended_at - im->started_at) * 1000.0);
    snprintf(res->tool_calls, sizeof res->tool_calls, "%lld", (long long)im->tool_calls);
    snprintf(res->llm_requests, sizeof res->llm_requests, "%lld", (long long)im->llm_requests);
    at_pynum_format(im->total_tokens, res->total_tokens);

    /* session_end */
    char dur[AT_PYNUM_STR_MAX];
    event_id eid;
    at_pynum_format(im->total_duration_ms, dur);
    data_begin(im);
    if ((r = data_raw(im, "duration_ms", dur, strlen(dur))) != AT_OK ||
        (r = data_raw(im, "tool_calls", res->tool_calls, strlen(res->tool_calls))) != AT_OK ||
        (r = data_raw(im, "llm_requests", res->llm_requests, strlen(res->llm_requests))) != AT_OK ||
        (r = data_raw(im, "total_tokens", res->total_tokens, strlen(res->total_tokens))) != AT_OK ||
        (r = data_str(im, "source", im->opts.source ? im->opts.source : "upload.jsonl",
                      strlen(im->opts.source ? im->opts.source : "upload.jsonl"))) != AT_OK ||
        (r = data_end(im)) != AT_OK)
        return at_error_set(err, r, -1, "out of memory");
    at_buf_reset(&im->tmp2);
    if ((r = at_buf_add(&im->tmp2, im->sid.data, im->sid.len)) != AT_OK ||
        (r = at_buf_adds(&im->tmp2, ":session_end:0")) != AT_OK)
        return at_error_set(err, r, -1, "out of memory");
    derive_event_id(im->tmp2.data, im->tmp2.len, &eid);
    if ((r = write_event(im, EV_SESSION_END, ended_at, &eid, im->data.data, im->data.len,
                         data_redacted(im))) != AT_OK ||
        (r = at_fd_sink_flush(&im->sink)) != AT_OK)
        return r == AT_ERR_NOMEM ? oom(err)
                                 : at_error_set(err, r == AT_ERR_NO_SPACE ? r : AT_ERR_IO, -1,
                                                "cannot write events: %s", strerror(errno));

    if (!im->usage_unknown) {
        at_buf j;
        at_buf_init(&j, 0);
        if (at_usage_write(&im->usage, &j) != AT_OK) {
            at_buf_fini(&j);
            return oom(err);
        }
        res->usage = at_buf_steal(&j, &res->usage_len);
    }
    res->events = im->events;
    res->skipped_lines = im->skipped;
    res->object_lines = im->objects;
    res->redacted_events = im->redacted_events;
    res->bytes = im->utf8.offset;
    if (im->input_hash)
        at_sha256_final(im->input_hash, res->transcript_sha256);
    res->body_bytes = im->body_bytes;
    res->body_lines = im->body_lines;
    at_chain_writer_digest(&im->w, res->events_sha256);
    memcpy(res->head, im->w.head, AT_SHA256_LEN);
    res->session_id = dup_buf(&im->sid);
    if (!res->session_id)
        return oom(err);
    if (im->agent_id.len &&
        (!(res->agent_id = dup_buf(&im->agent_id)) || !(res->parent_session_id = dup_buf(&im->parent_sid))))
        return oom(err);
    if ((r = build_meta(im, res, ended_at)) != AT_OK)
        return at_error_set(err, r, -1, "cannot build session metadata");
    if ((r = resolve_links(im, res, record_to)) != AT_OK)
        return at_error_set(err, r, -1, "cannot resolve subagent links");
    if (im->opts.keep_state) {
        if ((r = state_end(im, &im->state)) != AT_OK)
            return at_error_set(err, r, -1, "cannot save the import state: %s", at_result_str(r));
        res->state = at_buf_steal(&im->state, &res->state_len);
    }
    return AT_OK;
}

void at_import_result_fini(at_import_result *res)
{
    free(res->session_id);
    free(res->agent_id);
    free(res->parent_session_id);
    at_meta_fini(&res->meta);
    for (size_t i = 0; i < res->nlinks; i++)
        free(res->links[i].agent_id);
    free(res->links);
    free(res->state);
    free(res->usage);
    memset(res, 0, sizeof *res);
}
