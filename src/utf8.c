/* utf8.c - streaming strict UTF-8 validation; WTF-8 code point counting. */
#include "agenttrace/utf8.h"

#include <string.h>

at_result at_utf8_feed(at_utf8_state *st, const char *data, size_t n, int64_t *bad_offset)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    uint32_t need = st->need, cp = st->cp, min = st->min;
    uint64_t seq_start = st->seq_start;

    while (i < n) {
        if (need == 0) {
            /* ASCII fast path, 8 bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i >= n)
                break;
            unsigned char c = p[i];
            if (c < 0x80) {
                i++;
                continue;
            }
            seq_start = st->offset + i;
            if (c >= 0xc2 && c <= 0xdf) {
                need = 1;
                cp = c & 0x1f;
                min = 0x80;
            } else if (c >= 0xe0 && c <= 0xef) {
                need = 2;
                cp = c & 0x0f;
                min = 0x800;
            } else if (c >= 0xf0 && c <= 0xf4) {
                need = 3;
                cp = c & 0x07;
                min = 0x10000;
            } else {
                goto bad;
            }
            i++;
            continue;
        }
        unsigned char c = p[i];
        if ((c & 0xc0) != 0x80)
            goto bad;
        cp = cp << 6 | (c & 0x3f);
        i++;
        if (--need == 0) {
            if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                goto bad;
        } else if (need == 1 && min == 0x800 && (cp < 0x20 || (cp >= 0x360 && cp <= 0x37f))) {
            /* E0 80..9F is overlong, ED A0..BF a surrogate: caught at the
             * second byte, as Python reports it. */
            goto bad;
        } else if (need == 2 && min == 0x10000 && (cp < 0x10 || cp > 0x10f)) {
            goto bad;
        }
    }
    st->offset += n;
    st->need = need;
    st->cp = cp;
    st->min = min;
    st->seq_start = seq_start;
    return AT_OK;
bad:
    *bad_offset = (int64_t)seq_start;
    return AT_ERR_UTF8;
}

at_result at_utf8_finish(const at_utf8_state *st, int64_t *bad_offset)
{
    if (st->need) {
        *bad_offset = (int64_t)st->seq_start;
        return AT_ERR_UTF8;
    }
    return AT_OK;
}

size_t at_wtf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

size_t at_wtf8_prefix(const char *s, size_t n, size_t max_cp)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (count == max_cp)
                return i;
            count++;
        }
    }
    return n;
}

/* Length of the Python whitespace character ending at s[n-1], or 0. */
static size_t ws_suffix(const unsigned char *s, size_t n)
{
    unsigned char c = s[n - 1];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f))
        return 1;
    if (n >= 2 && s[n - 2] == 0xc2 && (c == 0x85 || c == 0xa0))
        return 2;
    if (n >= 3 && (c & 0xc0) == 0x80) {
        unsigned a = s[n - 3], b = s[n - 2];
        if (a == 0xe1 && b == 0x9a && c == 0x80)
            return 3;
        if (a == 0xe2 && b == 0x80 && (c <= 0x8a || c == 0xa8 || c == 0xa9 || c == 0xaf))
            return 3;
        if (a == 0xe2 && b == 0x81 && c == 0x9f)
            return 3;
        if (a == 0xe3 && b == 0x80 && c == 0x80)
            return 3;
    }
    return 0;
}

static size_t ws_prefix(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f))
        return 1;
    if (n >= 2 && c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
        return 2;
    if (n >= 3) {
        unsigned b = s[1], e = s[2];
        if (c == 0xe1 && b == 0x9a && e == 0x80)
            return 3;
        if (c == 0xe2 && b == 0x80 && (e <= 0x8a || e == 0xa8 || e == 0xa9 || e == 0xaf) && e >= 0x80)
            return 3;
        if (c == 0xe2 && b == 0x81 && e == 0x9f)
            return 3;
        if (c == 0xe3 && b == 0x80 && e == 0x80)
            return 3;
    }
    return 0;
}

const char *at_pystrip(const char *p, size_t *n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t len = *n, k;
    while (len && (k = ws_prefix(s, len)) != 0) {
        s += k;
        len -= k;
    }
    while (len && (k = ws_suffix(s, len)) != 0)
        len -= k;
    *n = len;
    return (const char *)s;
}
