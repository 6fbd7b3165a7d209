/* lines.h - a bounded line reader over a file descriptor (tree_cost.c, index.c).
 *
 * Reads at most `limit` bytes from fd in large chunks and hands out lines
 * (without their "\n") with their file offset and 0-based number. Memory is
 * one chunk plus the longest line that spans chunks, capped at
 * AT_MAX_LINE_BYTES: a longer line is reported as overlong (no bytes) and
 * still counted, so line numbers stay right. A last line without "\n" is a
 * line too. */
#ifndef AGENTTRACED_LINES_H
#define AGENTTRACED_LINES_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int fd;         /* borrowed */
    uint64_t limit; /* bytes still allowed to read from fd */
    uint64_t pos;   /* bytes consumed from fd */
    char *chunk;
    size_t chunk_len, chunk_off;
    at_buf span;       /* a line that crosses chunk boundaries */
    bool spanning;     /* span holds the start of the current line */
    bool overlong;     /* the current line passed the cap */
    uint64_t line_off; /* file offset of the current line */
    uint64_t line_no;  /* number of the next line */
    bool eof;
} at_lines;

/* fd is read from its current position, taken as offset 0. */
void at_lines_init(at_lines *lr, int fd, uint64_t limit);
void at_lines_fini(at_lines *lr);

typedef struct {
    const char *p; /* the bytes; NULL for an overlong line; valid until the next call */
    size_t n;      /* length without "\n" (for an overlong line too) */
    uint64_t off;  /* file offset of the first byte */
    uint64_t no;   /* 0-based line number */
} at_line;

/* AT_OK with the next line, AT_ERR_NOT_FOUND at the end, AT_ERR_IO /
 * AT_ERR_NOMEM on failure (errno kept). */
at_result at_lines_next(at_lines *lr, at_line *out) AT_WUR;

#endif
