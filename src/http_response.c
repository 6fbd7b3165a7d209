/* http_response.c - the handler-side response value (http.h). */
#include "http.h"

#include "agenttrace/json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    free(r->link);
    r->link = NULL;
    for (size_t i = 0; i < HTTP_MAX_HEADERS; i++) {
        free(r->headers[i].value);
        r->headers[i].value = NULL;
        r->headers[i].name = NULL;
    }
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->stream.read && r->stream.free)
        r->stream.free(r->stream.ctx);
    r->stream.read = NULL;
}

bool http_response_header(http_response *r, const char *name, const char *fmt, ...)
{
    size_t i = 0;
    while (i < HTTP_MAX_HEADERS && r->headers[i].name)
        i++;
    if (i == HTTP_MAX_HEADERS)
        return false;
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int n = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    r->headers[i].name = name;
    r->headers[i].value = v;
    return true;
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

/* Copies the n bytes of s to out (room for 3n bytes) as WTF-8, each
 * maximal ill-formed subsequence replaced by U+FFFD, as Python decodes
 * with errors="replace" (and as it would have read a request path): a
 * message may quote raw client bytes (a path %-decoded to anything) or be
 * cut inside a sequence. Lone surrogates (ED A0..BF xx) are kept: they are
 * what a decoded JSON string may hold. Returns the bytes written. */
static size_t wtf8_repair(const char *s, size_t n, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t need = 0;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80)
            need = 0;
        else if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            need = SIZE_MAX; /* never a lead byte */
        }
        size_t k = 1;
        while (need != SIZE_MAX && k <= need && i + k < n && u[i + k] >= lo && u[i + k] <= hi) {
            k++;
            lo = 0x80;
            hi = 0xbf;
        }
        if (need != SIZE_MAX && k == need + 1) {
            memcpy(out + o, u + i, k);
            o += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
        i += k;
    }
    return o;
}

static void error_body(http_response *r, int status, const char *extra, const char *fmt, va_list ap)
{
    char m[1024], w[3 * sizeof m];
    int k = vsnprintf(m, sizeof m, fmt, ap);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof m ? (size_t)k : sizeof m - 1;
    n = wtf8_repair(m, n, w);
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->status = status;
    r->content_type = "application/json";
    r->etag[0] = 0;
    at_buf_reset(&r->body);
    /* Messages may quote client bytes (ids): json.dumps escapes them. */
    if (at_buf_adds(&r->body, "{\"error\": ") != AT_OK || at_json_write_wtf8(&r->body, w, n) != AT_OK ||
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
