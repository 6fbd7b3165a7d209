/* utf8.h - streaming UTF-8 validation and code point helpers. */
#ifndef AGENTTRACE_UTF8_H
#define AGENTTRACE_UTF8_H

#include "agenttrace/common.h"
#include <stdbool.h>

/* State of a validator fed a stream in pieces. Embedded value; zero it to start. */
typedef struct {
    uint64_t offset;    /* bytes consumed so far */
    uint64_t seq_start; /* offset of the sequence in progress */
    uint32_t need;      /* continuation bytes still expected */
    uint32_t cp;        /* code point being assembled */
    uint32_t min;       /* smallest code point the sequence may encode (overlong check) */
} at_utf8_state;

/* Validates the next n bytes of the stream (strict UTF-8: no overlongs, no
 * surrogates, nothing above U+10FFFF). On failure returns AT_ERR_UTF8 and sets
 * *bad_offset to the stream offset of the first byte of the bad sequence. */
at_result at_utf8_feed(at_utf8_state *st, const char *p, size_t n, int64_t *bad_offset) AT_WUR;
/* At end of stream: fails if a sequence is cut short. */
at_result at_utf8_finish(const at_utf8_state *st, int64_t *bad_offset) AT_WUR;

/* Number of code points in WTF-8 s (a lone surrogate counts as one). */
size_t at_wtf8_count(const char *s, size_t n);
/* Byte length of the first max_cp code points of WTF-8 s (Python's s[:max_cp]). */
size_t at_wtf8_prefix(const char *s, size_t n, size_t max_cp);

/* Python's str.strip() on UTF-8 s: returns the first byte kept and sets *n
 * to the length kept (whitespace as str.isspace(): ASCII space, \t-\r,
 * U+001C-U+001F, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). */
const char *at_pystrip(const char *s, size_t *n);

#endif
