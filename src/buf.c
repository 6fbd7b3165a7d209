/* buf.c - growable byte buffer with a cap. */
#include "agenttrace/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void at_buf_init(at_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void at_buf_fini(at_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

at_result at_buf_reserve(at_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return AT_ERR_TOO_BIG;
    size_t need = b->len + n + 1; /* + NUL */
    if (need <= b->cap)
        return AT_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return AT_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return AT_OK;
}

at_result at_buf_add(at_buf *b, const void *p, size_t n)
{
    at_result r = at_buf_reserve(b, n);
    if (r != AT_OK)
        return r;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return AT_OK;
}

at_result at_buf_addc(at_buf *b, char c)
{
    return at_buf_add(b, &c, 1);
}

at_result at_buf_adds(at_buf *b, const char *s)
{
    return at_buf_add(b, s, strlen(s));
}

at_result at_buf_printf(at_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return AT_ERR_INVALID;
    if ((size_t)n < sizeof tmp)
        return at_buf_add(b, tmp, (size_t)n);
    at_result r = at_buf_reserve(b, (size_t)n);
    if (r != AT_OK)
        return r;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return AT_OK;
}

char *at_buf_steal(at_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
