/* http_response.c - building handler responses (see http.h). */
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
    r->fd = -1;
    at_buf_init(&r->body, 0);
}

void http_response_fini(http_response *r)
{
    at_buf_fini(&r->body);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

void http_response_json(http_response *r, int status, const char *json, size_t n)
{
    r->status = status;
    r->content_type = "application/json";
    at_buf_reset(&r->body);
    if (at_buf_add(&r->body, json, n) != AT_OK)
        r->status = 500;
}

void http_response_error(http_response *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->status = status;
    r->content_type = "application/json";
    at_buf_reset(&r->body);
    /* {"error": "..."} as json.dumps writes it. */
    if (at_buf_adds(&r->body, "{\"error\": ") != AT_OK ||
        at_json_write_wtf8(&r->body, msg, strlen(msg)) != AT_OK || at_buf_addc(&r->body, '}') != AT_OK)
        r->status = 500;
}
