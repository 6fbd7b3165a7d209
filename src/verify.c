/* verify.c - streaming verification of an events.ndjson hash chain
 * (trace-format.md §5).
 *
 * The stream is cut into lines on "\n" only; a line's bytes are exactly what
 * lies between two "\n" (a trailing "\r" stays part of it). Lines that are
 * empty or hold only whitespace are not events: they are neither counted
 * nor hashed and do not become the previous line. Every event line is
 * hashed (the next line's expected prev_hash, and finally the chain head);
 * until the first failure it is also parsed and checked.
 *
 * Memory: complete lines inside a chunk are checked where they lie; only a
 * line cut by a chunk boundary is copied, into one buffer capped at
 * AT_MAX_LINE_BYTES. One at_json_doc is reused for every line. So memory is
 * bounded by the longest line, never by the length of the stream.
 *
 * Judgement calls (Python's json.loads + dict.get semantics):
 *   - `"prev_hash": null` counts as no prev_hash;
 *   - a prev_hash that is neither a string nor null is a failure;
 *   - prev_hash is compared after JSON unescaping, case-sensitively;
 *   - a line whose strings are not valid UTF-8 fails as unreadable (Python
 *     cannot decode it), with no event_id reported. */
#include "agenttrace/verify.h"

#include "agenttrace/json.h"
#include "agenttrace/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BLOCK (1u << 20)

struct at_verifier {
    at_verify_mode mode;
    at_buf line;                 /* the start of a line cut by a chunk boundary */
    at_json_doc doc;             /* reused for every line */
    at_sha256 *file_hash;        /* every byte of the stream */
    at_sha256 *line_hash;        /* scratch, one line at a time */
    uint8_t prev[AT_SHA256_LEN]; /* digest of the previous event line */
    bool have_prev;
    uint64_t events;     /* event lines seen */
    uint64_t lines;      /* physical lines completed (for error positions) */
    uint64_t bytes;      /* stream bytes fed */
    uint64_t line_start; /* stream offset of the current line */
    /* The first failure. */
    bool broken;
    int64_t broken_at;
    char *broken_event_id; /* owned until handed to a report */
    char reason[160];
    at_result failed; /* sticky resource error: AT_OK while usable */
};

/* Puts v back at the start of a stream, keeping its buffers. */
static void verifier_restart(at_verifier *v)
{
    at_buf_reset(&v->line);
    at_sha256_reset(v->file_hash);
    memset(v->prev, 0, sizeof v->prev);
    v->have_prev = false;
    v->events = v->lines = v->bytes = v->line_start = 0;
    v->broken = false;
    v->broken_at = -1;
    free(v->broken_event_id);
    v->broken_event_id = NULL;
    v->reason[0] = 0;
    v->failed = AT_OK;
}

at_verifier *at_verifier_new(at_verify_mode mode)
{
    at_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->mode = mode;
    at_buf_init(&v->line, AT_MAX_LINE_BYTES);
    at_json_doc_init(&v->doc);
    v->file_hash = at_sha256_new();
    v->line_hash = at_sha256_new();
    if (!v->file_hash || !v->line_hash) {
        at_verifier_free(v);
        return NULL;
    }
    v->broken_at = -1;
    return v;
}

void at_verifier_free(at_verifier *v)
{
    if (!v)
        return;
    at_buf_fini(&v->line);
    at_json_doc_fini(&v->doc);
    at_sha256_free(v->file_hash);
    at_sha256_free(v->line_hash);
    free(v->broken_event_id);
    free(v);
}

void at_verify_report_fini(at_verify_report *rep)
{
    if (!rep)
        return;
    free(rep->broken_event_id);
    rep->broken_event_id = NULL;
}

/* Blank: empty or only ASCII whitespace (what Python's str.strip() removes
 * from an ASCII line). */
static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case ' ':
        case '\t':
        case '\r':
        case '\f':
        case '\v': break;
        default: return false;
        }
    }
    return true;
}

/* Records the first failure, at event line idx. Only resource errors fail. */
static at_result mark_broken(at_verifier *v, uint64_t idx, uint32_t id_node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static at_result mark_broken(at_verifier *v, uint64_t idx, uint32_t id_node, const char *fmt, ...)
{
    va_list ap;
    v->broken = true;
    v->broken_at = (int64_t)idx;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
    if (at_json_is(&v->doc, id_node, AT_JSON_STRING)) {
        at_buf id;
        at_buf_init(&id, 0);
        /* Reserving first gives "" an allocation too (a NUL). */
        at_result r = at_buf_reserve(&id, 1);
        if (r == AT_OK)
            r = at_json_str_decode(&v->doc, id_node, &id);
        if (r != AT_OK) {
            at_buf_fini(&id);
            return r;
        }
        id.data[id.len] = 0;
        v->broken_event_id = at_buf_steal(&id, NULL);
    }
    return AT_OK;
}

/* Does any string of the parsed line hold a byte >= 0x7F? Only then can the
 * line be invalid UTF-8: such bytes anywhere else already fail the parse. */
static bool has_high_strings(const at_json_doc *d)
{
    for (uint32_t i = 0; i < d->count; i++)
        if (d->nodes[i].flags & AT_JSON_STR_HIGH)
            return true;
    return false;
}

/* Checks event line idx (s, n) against the previous line's digest. */
static at_result check_line(at_verifier *v, uint64_t idx, const char *s, size_t n)
{
    at_json_doc *d = &v->doc;
    at_error perr;
    at_result r = at_json_parse(d, s, n, &perr);
    if (r == AT_ERR_NOMEM)
        return r;
    if (r != AT_OK) {
        /* No event_id: the line never became an event. */
        return mark_broken(v, idx, AT_JSON_NONE, "invalid JSON: %s", perr.message);
    }
    if (has_high_strings(d)) {
        at_utf8_state st;
        int64_t bad = -1;
        memset(&st, 0, sizeof st);
        if (at_utf8_feed(&st, s, n, &bad) != AT_OK || at_utf8_finish(&st, &bad) != AT_OK)
            return mark_broken(v, idx, AT_JSON_NONE, "invalid UTF-8 at byte %lld of the line",
                               (long long)bad);
    }
    if (!at_json_is(d, 0, AT_JSON_OBJECT))
        return mark_broken(v, idx, AT_JSON_NONE, "not a JSON object");
    uint32_t id = at_json_get(d, 0, "event_id");
    uint32_t ph = at_json_get(d, 0, "prev_hash");
    if (at_json_is(d, ph, AT_JSON_NULL))
        ph = AT_JSON_NONE;
    if (ph == AT_JSON_NONE) {
        if (idx > 0 && v->mode == AT_VERIFY_STRICT)
            return mark_broken(v, idx, id, "prev_hash missing");
        return AT_OK; /* line 0, or legacy: the line simply starts the chain again */
    }
    if (!at_json_is(d, ph, AT_JSON_STRING))
        return mark_broken(v, idx, id, "prev_hash is not a string");
    if (idx == 0)
        return mark_broken(v, idx, id, "prev_hash on the first line");
    char want[AT_SHA256_HEX];
    at_hex(v->prev, AT_SHA256_LEN, want);
    if (!at_json_str_eq(d, ph, want, AT_SHA256_HEX - 1))
        return mark_broken(v, idx, id, "prev_hash does not match the previous line");
    return AT_OK;
}

/* The current line passed the cap. */
static at_result too_long(const at_verifier *v, at_error *err)
{
    return at_error_set(
        err, AT_ERR_TOO_BIG, (int64_t)v->line_start, "line %llu (byte offset %llu) is longer than %u bytes",
        (unsigned long long)v->lines + 1, (unsigned long long)v->line_start, (unsigned)AT_MAX_LINE_BYTES);
}

/* One complete line (without its "\n"), starting at stream offset v->line_start. */
static at_result end_line(at_verifier *v, const char *s, size_t n, at_error *err)
{
    at_result r = AT_OK;
    if (n > AT_MAX_LINE_BYTES)
        return too_long(v, err);
    if (!is_blank(s, n)) {
        uint64_t idx = v->events++;
        if (!v->broken && (r = check_line(v, idx, s, n)) != AT_OK)
            return at_error_set(err, r, (int64_t)v->line_start, "%s", at_result_str(r));
        at_sha256_reset(v->line_hash);
        at_sha256_update(v->line_hash, s, n);
        at_sha256_final(v->line_hash, v->prev);
        v->have_prev = true;
    }
    v->lines++;
    v->line_start += n + 1;
    return AT_OK;
}

/* Marks the verifier unusable after a resource error; err already filled. */
static at_result fail(at_verifier *v, at_result r, at_error *err)
{
    v->failed = r;
    if (err && err->code == r)
        err->line = (int64_t)v->lines;
    return r;
}

at_result at_verifier_feed(at_verifier *v, const char *p, size_t n, at_error *err)
{
    at_result r;
    if (v->failed != AT_OK)
        return at_error_set(err, v->failed, -1, "verifier already failed: %s", at_result_str(v->failed));
    if (n == 0)
        return AT_OK;
    at_sha256_update(v->file_hash, p, n);
    v->bytes += n;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            /* The start of a line the next chunk continues. */
            if (n > AT_MAX_LINE_BYTES - v->line.len) {
                return fail(v, too_long(v, err), err);
            }
            if ((r = at_buf_add(&v->line, p, n)) != AT_OK) {
                at_error_set(err, r, (int64_t)v->line_start, "%s", at_result_str(r));
                return fail(v, r, err);
            }
            return AT_OK;
        }
        size_t k = (size_t)(nl - p);
        if (v->line.len == 0) {
            r = end_line(v, p, k, err); /* whole line inside this chunk: no copy */
        } else {
            if (k > AT_MAX_LINE_BYTES - v->line.len) {
                return fail(v, too_long(v, err), err);
            }
            if ((r = at_buf_add(&v->line, p, k)) != AT_OK) {
                at_error_set(err, r, (int64_t)v->line_start, "%s", at_result_str(r));
                return fail(v, r, err);
            }
            r = end_line(v, v->line.data, v->line.len, err);
            at_buf_reset(&v->line);
        }
        if (r != AT_OK)
            return fail(v, r, err);
        p = nl + 1;
        n -= k + 1;
    }
    return AT_OK;
}

at_result at_verifier_finish(at_verifier *v, at_verify_report *rep, at_error *err)
{
    at_result r = AT_OK;
    memset(rep, 0, sizeof *rep);
    rep->broken_at = -1;
    if (v->failed != AT_OK) {
        r = at_error_set(err, v->failed, -1, "verifier already failed: %s", at_result_str(v->failed));
        goto out;
    }
    /* An unterminated last line is a line. */
    if (v->line.len > 0) {
        r = end_line(v, v->line.data, v->line.len, err);
        at_buf_reset(&v->line);
        if (r != AT_OK) {
            fail(v, r, err);
            goto out;
        }
    }
    rep->ok = !v->broken;
    rep->total_events = v->events;
    rep->broken_at = v->broken ? v->broken_at : -1;
    rep->broken_event_id = v->broken_event_id; /* ownership moves to rep */
    v->broken_event_id = NULL;
    snprintf(rep->reason, sizeof rep->reason, "%s", v->broken ? v->reason : "");
    at_sha256_final(v->file_hash, rep->file_sha256);
    if (v->have_prev)
        memcpy(rep->head, v->prev, AT_SHA256_LEN);
    rep->have_head = v->have_prev;
    rep->bytes = v->bytes;
out:
    /* Ready for a new stream either way. */
    verifier_restart(v);
    return r;
}

/* Puts "path: " in front of a message raised without the file name. */
static void prefix_path(at_error *err, const char *path)
{
    if (!err)
        return;
    char msg[sizeof err->message];
    size_t cap = sizeof msg - 1, pl = strlen(path), ml = strnlen(err->message, cap), k = 0;
    pl = pl < cap ? pl : cap;
    memcpy(msg, path, pl);
    k = pl;
    if (k + 2 <= cap) {
        memcpy(msg + k, ": ", 2);
        k += 2;
    }
    ml = ml < cap - k ? ml : cap - k;
    memcpy(msg + k, err->message, ml);
    msg[k + ml] = 0;
    memcpy(err->message, msg, k + ml + 1);
}

/* Reads fd to its end through v in READ_BLOCK pieces. */
static at_result feed_fd(at_verifier *v, int fd, const char *path, at_error *err)
{
    char *block = malloc(READ_BLOCK);
    at_result r = AT_OK;
    if (!block)
        return at_error_set(err, AT_ERR_NOMEM, -1, "%s: out of memory", path);
    for (;;) {
        ssize_t k = read(fd, block, READ_BLOCK);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            r = at_error_set(err, AT_ERR_IO, -1, "%s: %s", path, strerror(e));
            if (err)
                err->sys_errno = e;
            goto out;
        }
        if (k == 0)
            break;
        if ((r = at_verifier_feed(v, block, (size_t)k, err)) != AT_OK) {
            prefix_path(err, path);
            goto out;
        }
    }
out:
    free(block);
    return r;
}

at_result at_verify_file(const char *path, at_verify_mode mode, at_verify_report *rep, at_error *err)
{
    at_result r;
    at_verifier *v = NULL;
    int fd;

    memset(rep, 0, sizeof *rep);
    rep->broken_at = -1;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        r = at_error_set(err, e == ENOENT ? AT_ERR_NOT_FOUND : AT_ERR_IO, -1, "%s: %s", path, strerror(e));
        if (err)
            err->sys_errno = e;
        return r;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    v = at_verifier_new(mode);
    if (!v) {
        r = at_error_set(err, AT_ERR_NOMEM, -1, "%s: out of memory", path);
        goto out;
    }
    if ((r = feed_fd(v, fd, path, err)) != AT_OK)
        goto out;
    if ((r = at_verifier_finish(v, rep, err)) != AT_OK)
        prefix_path(err, path);
out:
    at_verifier_free(v);
    close(fd);
    return r;
}
