/* http_response.c - the handler-side response value (http.h). */
#include "http.h"

#include "agenttrace/json.h"

#include <stdarg.h>
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

/* Length of the strict UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4                   ? 4
                                                                    : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return len;
}

/* A message quoting bytes that are not UTF-8 (a client's id): each bad
 * byte becomes U+FFFD, so the error is still said. */
static size_t utf8_clean(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 <= cap;) {
        size_t k = utf8_len((const unsigned char *)in + i, n - i);
        if (k) {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    return o;
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
    /* Messages may quote client bytes (ids): what is not UTF-8 in them (or
     * a sequence cut at the end) becomes U+FFFD, the rest is escaped as
     * json.dumps would. */
    char clean[3 * sizeof m + 4];
    if (at_buf_adds(&r->body, "{\"error\": ") != AT_OK ||
        at_json_write_wtf8(&r->body, clean, utf8_clean(m, n, clean, sizeof clean)) != AT_OK ||
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
