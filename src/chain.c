/* chain.c - the NDJSON event writer with its hash chain, and an fd sink. */
#include "agenttrace/chain.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define SINK_BLOCK (256u * 1024)

at_result at_chain_writer_init(at_chain_writer *w, at_sink_fn sink, void *ctx, const uint8_t *prev_head)
{
    memset(w, 0, sizeof *w);
    w->sink = sink;
    w->sink_ctx = ctx;
    at_buf_init(&w->line, AT_MAX_LINE_BYTES + 4096);
    w->file_hash = at_sha256_new();
    w->line_hash = at_sha256_new();
    if (!w->file_hash || !w->line_hash) {
        at_chain_writer_fini(w);
        return AT_ERR_NOMEM;
    }
    if (prev_head) {
        memcpy(w->head, prev_head, AT_SHA256_LEN);
        w->have_head = true;
    }
    return AT_OK;
}

void at_chain_writer_pos(const at_chain_writer *w, at_chain_pos *pos)
{
    memcpy(pos->head, w->head, AT_SHA256_LEN);
    pos->have_head = w->have_head;
    pos->lines = w->lines;
    pos->bytes = w->bytes;
    at_sha256_export(w->file_hash, pos->file_state);
}

at_result at_chain_writer_resume(at_chain_writer *w, at_sink_fn sink, void *ctx, const at_chain_pos *pos)
{
    at_result r = at_chain_writer_init(w, sink, ctx, pos->have_head ? pos->head : NULL);
    if (r != AT_OK)
        return r;
    /* The file digest counts every byte the writer wrote: the two counts
     * must agree, or the position is not one a writer recorded. */
    if (at_sha256_import(w->file_hash, pos->file_state) != AT_OK ||
        at_sha256_count(w->file_hash) != pos->bytes || (pos->lines && !pos->have_head) ||
        (pos->bytes && !pos->lines) || pos->lines > pos->bytes / 3) {
        at_chain_writer_fini(w);
        return AT_ERR_INVALID;
    }
    w->lines = pos->lines;
    w->bytes = pos->bytes;
    return AT_OK;
}

void at_chain_writer_fini(at_chain_writer *w)
{
    at_sha256_free(w->file_hash);
    at_sha256_free(w->line_hash);
    at_buf_fini(&w->line);
    w->file_hash = w->line_hash = NULL;
}

static bool is_null(at_slice s)
{
    return s.p && s.n == 4 && memcmp(s.p, "null", 4) == 0;
}

/* null and "" fields are omitted (TraceEvent.to_dict). */
static bool present(at_slice s)
{
    return s.p && !is_null(s) && !(s.n == 2 && memcmp(s.p, "\"\"", 2) == 0);
}

static at_result field(at_buf *b, const char *key, at_slice v)
{
    at_result r = at_buf_reserve(b, strlen(key) + v.n + 4);
    if (r != AT_OK)
        return r;
    if (b->len > 1)
        at_buf_put(b, ",", 1);
    at_buf_put(b, "\"", 1);
    at_buf_put(b, key, strlen(key));
    at_buf_put(b, "\":", 2);
    at_buf_put(b, v.p, v.n);
    return AT_OK;
}

at_result at_chain_write(at_chain_writer *w, const at_event_json *ev)
{
    at_buf *b = &w->line;
    at_result r;
    at_buf_reset(b);
    if ((r = at_buf_addc(b, '{')) != AT_OK)
        return r;
    if (present(ev->event_type) && (r = field(b, "event_type", ev->event_type)) != AT_OK)
        return r;
    /* absent: the default; an explicit null or "" is left out like any other */
    if ((!ev->timestamp.p || present(ev->timestamp)) &&
        (r = field(b, "timestamp", ev->timestamp.p ? ev->timestamp : AT_SLICE("0.0"))) != AT_OK)
        return r;
    if (present(ev->event_id) && (r = field(b, "event_id", ev->event_id)) != AT_OK)
        return r;
    if (present(ev->session_id) && (r = field(b, "session_id", ev->session_id)) != AT_OK)
        return r;
    if (present(ev->parent_id) && (r = field(b, "parent_id", ev->parent_id)) != AT_OK)
        return r;
    if (present(ev->duration_ms) && (r = field(b, "duration_ms", ev->duration_ms)) != AT_OK)
        return r;
    if ((!ev->data.p || present(ev->data)) &&
        (r = field(b, "data", ev->data.p ? ev->data : AT_SLICE("{}"))) != AT_OK)
        return r;
    char hex[AT_SHA256_HEX + 2];
    at_slice prev = {NULL, 0};
    if (present(ev->prev_hash)) {
        prev = ev->prev_hash;
    } else if (w->have_head) {
        hex[0] = '"';
        at_hex(w->head, AT_SHA256_LEN, hex + 1);
        hex[65] = '"';
        prev = (at_slice){hex, 66};
    }
    if (prev.p && (r = field(b, "prev_hash", prev)) != AT_OK)
        return r;
    if (ev->redacted && (r = field(b, "redacted", AT_SLICE("true"))) != AT_OK)
        return r;
    if ((r = at_buf_addc(b, '}')) != AT_OK)
        return r;

    at_sha256_reset(w->line_hash);
    at_sha256_update(w->line_hash, b->data, b->len);
    at_sha256_final(w->line_hash, w->head);
    w->have_head = true;
    if ((r = at_buf_addc(b, '\n')) != AT_OK)
        return r;
    at_sha256_update(w->file_hash, b->data, b->len);
    w->lines++;
    if ((r = w->sink(w->sink_ctx, b->data, b->len)) != AT_OK)
        return r;
    uint64_t off = w->bytes;
    w->bytes += b->len;
    if (!w->on_line)
        return AT_OK;
    at_line_written lw = {
        .no = w->lines - 1,
        .off = off,
        .len = b->len - 1,
        .digest = w->head,
        .event_id = present(ev->event_id) ? ev->event_id : (at_slice){NULL, 0},
        .prev_hash = prev,
    };
    return w->on_line(w->on_line_ctx, &lw);
}

void at_chain_writer_digest(const at_chain_writer *w, uint8_t out[AT_SHA256_LEN])
{
    /* not a copy on the heap: that could fail, and zeros would pass for a digest */
    at_sha256_peek(w->file_hash, out);
}

void at_fd_sink_init(at_fd_sink *s, int fd)
{
    s->fd = fd;
    s->written = 0;
    at_buf_init(&s->buf, 0);
}

at_result at_fd_sink_flush(at_fd_sink *s)
{
    at_result r = at_write_all(s->fd, s->buf.data, s->buf.len);
    s->buf.len = 0;
    return r;
}

at_result at_fd_sink_write(void *ctx, const char *p, size_t n)
{
    at_fd_sink *s = ctx;
    at_result r;
    s->written += n;
    if (s->buf.len + n > SINK_BLOCK && (r = at_fd_sink_flush(s)) != AT_OK)
        return r;
    if (n >= SINK_BLOCK)
        return at_write_all(s->fd, p, n);
    return at_buf_add(&s->buf, p, n);
}

void at_fd_sink_fini(at_fd_sink *s)
{
    at_buf_fini(&s->buf);
}
