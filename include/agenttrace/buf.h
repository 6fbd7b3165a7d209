/* buf.h - a growable byte buffer with a size cap (curl's dynbuf). */
#ifndef AGENTTRACE_BUF_H
#define AGENTTRACE_BUF_H

#include "agenttrace/common.h"
#include <string.h>

/* Embedded value: at_buf_init/at_buf_fini. `data` is always NUL-terminated
 * (when non-NULL) so it can be printed, but may contain NULs: use `len`. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* appending past this many bytes fails with AT_ERR_TOO_BIG */
} at_buf;

void at_buf_init(at_buf *b, size_t max);
void at_buf_fini(at_buf *b);
/* Empties the buffer, keeping its memory. */
static inline void at_buf_reset(at_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}
/* Makes room for n more bytes. */
at_result at_buf_reserve(at_buf *b, size_t n) AT_WUR;
at_result at_buf_add(at_buf *b, const void *p, size_t n) AT_WUR;
at_result at_buf_addc(at_buf *b, char c) AT_WUR;
at_result at_buf_adds(at_buf *b, const char *s) AT_WUR;
at_result at_buf_printf(at_buf *b, const char *fmt, ...) AT_WUR __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (who frees them) and empties the buffer. */
char *at_buf_steal(at_buf *b, size_t *len);

/* Unchecked append after a successful at_buf_reserve(). */
static inline void at_buf_put(at_buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

#endif
