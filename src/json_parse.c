/* json_parse.c - validating JSON reader of Python's json.loads dialect.
 *
 * One pass, recursive descent with a depth cap, producing the flat node tape
 * declared in json.h. Nothing is decoded or converted here: strings keep
 * their source bytes (with flags saying whether they need work when written),
 * numbers their token. The string scanner is the hot loop: 16 bytes at a time
 * with SSE2 where available. */
#include "agenttrace/json.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct {
    at_json_doc *d;
    const unsigned char *s;
    size_t n;
    size_t pos;
    at_error *err;
} parser;

static at_result fail(parser *p, const char *why)
{
    return at_error_set(p->err, AT_ERR_JSON, (int64_t)p->pos, "%s at byte %zu", why, p->pos);
}

static at_result push(parser *p, at_json_type t, uint32_t off, uint32_t *idx)
{
    at_json_doc *d = p->d;
    if (d->count == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        if (cap < d->cap)
            return at_error_set(p->err, AT_ERR_TOO_BIG, (int64_t)p->pos, "too many JSON values");
        at_json_node *nodes = realloc(d->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return at_error_set(p->err, AT_ERR_NOMEM, -1, "out of memory");
        d->nodes = nodes;
        d->cap = cap;
    }
    at_json_node *nd = &d->nodes[d->count];
    nd->type = (uint8_t)t;
    nd->flags = 0;
    nd->reserved = 0;
    nd->off = off;
    nd->len = 0;
    nd->end = d->count + 1;
    *idx = d->count++;
    return AT_OK;
}

static inline void skip_ws(parser *p)
{
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            break;
        p->pos++;
    }
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Scans a string whose opening quote is at p->pos. */
static at_result parse_string(parser *p, uint32_t *out)
{
    size_t start = ++p->pos;
    const unsigned char *s = p->s;
    size_t n = p->n, i = start;
    unsigned flags = 0;
    uint32_t idx;

    for (;;) {
#if defined(__SSE2__)
        /* Skip 16 ordinary bytes at a time: no quote, backslash, control
         * byte, DEL or high byte among them. */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
            special = _mm_or_si128(special, _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
            int mask = _mm_movemask_epi8(special);
            int high = _mm_movemask_epi8(v) | _mm_movemask_epi8(_mm_cmpeq_epi8(v, del));
            if (mask == 0) {
                if (high)
                    flags |= AT_JSON_STR_HIGH;
                i += 16;
                continue;
            }
            int first = __builtin_ctz((unsigned)mask);
            if (high & ((1 << first) - 1))
                flags |= AT_JSON_STR_HIGH;
            i += (size_t)first;
            break;
        }
#endif
        if (i >= n) {
            p->pos = i;
            return fail(p, "unterminated string");
        }
        unsigned char c = s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            flags |= AT_JSON_STR_ESCAPED;
            if (i + 1 >= n) {
                p->pos = i;
                return fail(p, "unterminated string");
            }
            unsigned char e = s[i + 1];
            switch (e) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': i += 2; break;
            case 'u':
                if (i + 6 > n || hexval(s[i + 2]) < 0 || hexval(s[i + 3]) < 0 || hexval(s[i + 4]) < 0 ||
                    hexval(s[i + 5]) < 0) {
                    p->pos = i;
                    return fail(p, "invalid \\uXXXX escape");
                }
                i += 6;
                break;
            default: p->pos = i; return fail(p, "invalid escape");
            }
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return fail(p, "invalid control character in string");
        }
        if (c >= 0x7f)
            flags |= AT_JSON_STR_HIGH;
        i++;
    }
    at_result r = push(p, AT_JSON_STRING, (uint32_t)start, &idx);
    if (r != AT_OK)
        return r;
    p->d->nodes[idx].flags = (uint8_t)flags;
    p->d->nodes[idx].len = (uint32_t)(i - start);
    p->pos = i + 1;
    *out = idx;
    return AT_OK;
}

static bool match_word(parser *p, const char *w, size_t wl)
{
    if (p->n - p->pos >= wl && memcmp(p->s + p->pos, w, wl) == 0) {
        p->pos += wl;
        return true;
    }
    return false;
}

static at_result parse_number(parser *p)
{
    const unsigned char *s = p->s;
    size_t start = p->pos, i = start, n = p->n;
    bool is_float = false;
    uint32_t idx;

    if (s[i] == '-') {
        i++;
        if (i < n && s[i] == 'I') {
            p->pos = i;
            if (!match_word(p, "Infinity", 8))
                return fail(p, "invalid literal");
            is_float = true;
            i = p->pos;
            goto done;
        }
    }
    if (i >= n || s[i] < '0' || s[i] > '9') {
        p->pos = i;
        return fail(p, "invalid number");
    }
    if (s[i] == '0')
        i++;
    else
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    /* Python's NUMBER_RE: a '.' or 'e' not followed by digits ends the number
     * before it (and the leftover makes the text invalid further up). */
    if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        is_float = true;
        i += 2;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            i = j;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
        }
    }
    /* Python 3.11 refuses to convert integers of more than 4300 digits
     * (sys.int_info.str_digits_check_threshold), so json.loads fails. */
    if (!is_float && i - start - (s[start] == '-') > 4300) {
        p->pos = start;
        return fail(p, "integer longer than 4300 digits");
    }
done:;
    at_result r = push(p, is_float ? AT_JSON_FLOAT : AT_JSON_INT, (uint32_t)start, &idx);
    if (r != AT_OK)
        return r;
    p->d->nodes[idx].len = (uint32_t)(i - start);
    p->pos = i;
    return AT_OK;
}

static at_result parse_value(parser *p, int depth);

static at_result parse_container(parser *p, int depth, bool is_object)
{
    uint32_t idx, count = 0;
    at_result r;

    if (depth >= AT_MAX_JSON_DEPTH)
        return at_error_set(p->err, AT_ERR_TOO_BIG, (int64_t)p->pos, "JSON nested deeper than %d at byte %zu",
                            AT_MAX_JSON_DEPTH, p->pos);
    r = push(p, is_object ? AT_JSON_OBJECT : AT_JSON_ARRAY, (uint32_t)p->pos, &idx);
    if (r != AT_OK)
        return r;
    p->pos++;
    skip_ws(p);
    char close = is_object ? '}' : ']';
    if (p->pos < p->n && p->s[p->pos] == (unsigned char)close) {
        p->pos++;
        goto out;
    }
    for (;;) {
        if (is_object) {
            uint32_t key;
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return fail(p, "expected a property name in double quotes");
            if ((r = parse_string(p, &key)) != AT_OK)
                return r;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
            skip_ws(p);
        }
        if ((r = parse_value(p, depth + 1)) != AT_OK)
            return r;
        count++;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, "unterminated container");
        unsigned char c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (c == (unsigned char)close) {
            p->pos++;
            break;
        }
        return fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
out:
    p->d->nodes[idx].len = count;
    p->d->nodes[idx].end = p->d->count;
    return AT_OK;
}

static at_result parse_value(parser *p, int depth)
{
    uint32_t idx;
    if (p->pos >= p->n)
        return fail(p, "expected a value");
    unsigned char c = p->s[p->pos];
    size_t at = p->pos;
    switch (c) {
    case '"': return parse_string(p, &idx);
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case 'n':
        if (!match_word(p, "null", 4))
            return fail(p, "invalid literal");
        return push(p, AT_JSON_NULL, (uint32_t)at, &idx) ?: (p->d->nodes[idx].len = 4, AT_OK);
    case 't':
        if (!match_word(p, "true", 4))
            return fail(p, "invalid literal");
        return push(p, AT_JSON_TRUE, (uint32_t)at, &idx) ?: (p->d->nodes[idx].len = 4, AT_OK);
    case 'f':
        if (!match_word(p, "false", 5))
            return fail(p, "invalid literal");
        return push(p, AT_JSON_FALSE, (uint32_t)at, &idx) ?: (p->d->nodes[idx].len = 5, AT_OK);
    case 'N':
        if (!match_word(p, "NaN", 3))
            return fail(p, "invalid literal");
        return push(p, AT_JSON_FLOAT, (uint32_t)at, &idx) ?: (p->d->nodes[idx].len = 3, AT_OK);
    case 'I':
        if (!match_word(p, "Infinity", 8))
            return fail(p, "invalid literal");
        return push(p, AT_JSON_FLOAT, (uint32_t)at, &idx) ?: (p->d->nodes[idx].len = 8, AT_OK);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p);
        return fail(p, "expected a value");
    }
}

void at_json_doc_init(at_json_doc *d)
{
    memset(d, 0, sizeof *d);
}

void at_json_doc_fini(at_json_doc *d)
{
    free(d->nodes);
    memset(d, 0, sizeof *d);
}

at_result at_json_parse(at_json_doc *d, const char *s, size_t n, at_error *err)
{
    parser p = {d, (const unsigned char *)s, n, 0, err};
    d->src = s;
    d->src_len = n;
    d->count = 0;
    if (n >= UINT32_MAX)
        return at_error_set(err, AT_ERR_TOO_BIG, 0, "JSON text larger than 4 GiB");
    skip_ws(&p);
    at_result r = parse_value(&p, 0);
    if (r != AT_OK)
        return r;
    skip_ws(&p);
    if (p.pos != n)
        return fail(&p, "extra data");
    return AT_OK;
}

/* ---- navigation ------------------------------------------------------- */

uint32_t at_json_first(const at_json_doc *d, uint32_t c)
{
    if (c == AT_JSON_NONE || d->nodes[c].len == 0)
        return AT_JSON_NONE;
    return c + 1;
}

uint32_t at_json_next(const at_json_doc *d, uint32_t c, uint32_t child)
{
    uint32_t nx = d->nodes[c].type == AT_JSON_OBJECT ? d->nodes[child + 1].end : d->nodes[child].end;
    return nx >= d->nodes[c].end ? AT_JSON_NONE : nx;
}

/* Decodes one \uXXXX at s (pointing at the backslash). */
static uint32_t u_escape(const unsigned char *s)
{
    return (uint32_t)(hexval(s[2]) << 12 | hexval(s[3]) << 8 | hexval(s[4]) << 4 | hexval(s[5]));
}

static size_t put_wtf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

at_result at_json_str_decode(const at_json_doc *d, uint32_t i, at_buf *out)
{
    const at_json_node *nd = &d->nodes[i];
    const unsigned char *s = (const unsigned char *)d->src + nd->off;
    size_t n = nd->len;
    if (!(nd->flags & AT_JSON_STR_ESCAPED))
        return at_buf_add(out, s, n);
    /* Decoded text is never longer than its escaped source. */
    at_result r = at_buf_reserve(out, n);
    if (r != AT_OK)
        return r;
    char *o = out->data + out->len;
    size_t k = 0;
    while (k < n) {
        const unsigned char *q = memchr(s + k, '\\', n - k);
        size_t run = q ? (size_t)(q - (s + k)) : n - k;
        memcpy(o, s + k, run);
        o += run;
        k += run;
        if (k >= n)
            break;
        unsigned char e = s[k + 1];
        switch (e) {
        case 'b':
            *o++ = '\b';
            k += 2;
            break;
        case 'f':
            *o++ = '\f';
            k += 2;
            break;
        case 'n':
            *o++ = '\n';
            k += 2;
            break;
        case 'r':
            *o++ = '\r';
            k += 2;
            break;
        case 't':
            *o++ = '\t';
            k += 2;
            break;
        case 'u': {
            uint32_t cp = u_escape(s + k);
            k += 6;
            /* A high surrogate followed by an escaped low one is one code
             * point; anything else stays a lone surrogate (Python's rule). */
            if (cp >= 0xd800 && cp <= 0xdbff && k + 6 <= n && s[k] == '\\' && s[k + 1] == 'u') {
                uint32_t lo = u_escape(s + k);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    k += 6;
                }
            }
            o += put_wtf8(o, cp);
            break;
        }
        default:
            *o++ = (char)e;
            k += 2;
            break; /* " \ / */
        }
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return AT_OK;
}

bool at_json_str_eq(const at_json_doc *d, uint32_t i, const char *s, size_t n)
{
    const at_json_node *nd = &d->nodes[i];
    if (nd->type != AT_JSON_STRING)
        return false;
    if (!(nd->flags & AT_JSON_STR_ESCAPED))
        return nd->len == n && memcmp(d->src + nd->off, s, n) == 0;
    if (nd->len < n)
        return false;
    at_buf b;
    at_buf_init(&b, 0);
    bool eq = at_json_str_decode(d, i, &b) == AT_OK && b.len == n && memcmp(b.data, s, n) == 0;
    at_buf_fini(&b);
    return eq;
}

uint32_t at_json_get(const at_json_doc *d, uint32_t obj, const char *key)
{
    if (obj == AT_JSON_NONE || d->nodes[obj].type != AT_JSON_OBJECT)
        return AT_JSON_NONE;
    size_t kl = strlen(key);
    uint32_t found = AT_JSON_NONE;
    uint32_t end = d->nodes[obj].end;
    for (uint32_t k = obj + 1; k < end; k = d->nodes[k + 1].end)
        if (at_json_str_eq(d, k, key, kl))
            found = k + 1;
    return found;
}

bool at_json_truthy(const at_json_doc *d, uint32_t i)
{
    if (i == AT_JSON_NONE)
        return false;
    const at_json_node *nd = &d->nodes[i];
    const char *s = d->src + nd->off;
    switch ((at_json_type)nd->type) {
    case AT_JSON_NULL:
    case AT_JSON_FALSE: return false;
    case AT_JSON_TRUE: return true;
    case AT_JSON_INT: return !(nd->len == 1 && s[0] == '0') && !(nd->len == 2 && s[1] == '0');
    case AT_JSON_FLOAT: return at_json_parse_double(s, nd->len) != 0.0;
    case AT_JSON_STRING:
    case AT_JSON_ARRAY:
    case AT_JSON_OBJECT: return nd->len != 0;
    }
    return false;
}
