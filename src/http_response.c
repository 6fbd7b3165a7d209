/* http_response.c - the handler-side response value (http.h). */
#include "http.h"

#include "agenttrace/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void http_response_init(http_response *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->content_type = "application/json";
    at_buf_init(&r->body, 0);
    r->fd = -1;
}

void http_response_fini(http_response *r)
{
    at_buf_fini(&r->body);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->stream.read && r->stream.free)
        r->stream.free(r->stream.ctx);
    r->stream.read = NULL;
}

void http_response_json(http_response *r, int status, const char *json, size_t n)
{
    r->status = status;
    r->content_type = "application/json";
    at_buf_reset(&r->body);
    if (at_buf_add(&r->body, json, n) != AT_OK) {
        r->status = 500;
        at_buf_reset(&r->body);
    }
}

static void error_body(http_response *r, int status, const char *extra, const char *fmt, va_list ap)
{
    char m[1024];
    int k = vsnprintf(m, sizeof m, fmt, ap);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof m ? (size_t)k : sizeof m - 1;
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->status = status;
    r->content_type = "application/json";
    r->etag[0] = 0;
    at_buf_reset(&r->body);
    /* Messages may quote client bytes (ids): json.dumps escapes them, and a
     * message cut inside a UTF-8 sequence is still written as WTF-8. */
    if (at_buf_adds(&r->body, "{\"error\": ") != AT_OK || at_json_write_wtf8(&r->body, m, n) != AT_OK ||
        (extra && (at_buf_adds(&r->body, ", ") != AT_OK || at_buf_adds(&r->body, extra) != AT_OK)) ||
        at_buf_adds(&r->body, "}") != AT_OK) {
        r->status = 500;
        at_buf_reset(&r->body);
    }
}

void http_response_error(http_response *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_body(r, status, NULL, fmt, ap);
    va_end(ap);
}

void http_response_error_extra(http_response *r, int status, const char *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_body(r, status, extra, fmt, ap);
    va_end(ap);
}
