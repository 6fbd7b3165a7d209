/* json_write.c - json.dumps of the Python dialect: strings with ensure_ascii,
 * re-serialization of parsed values (collapsing duplicate keys, normalizing
 * numbers), compact / default / indent=2 forms. Numbers: float_repr.c. */
#include "agenttrace/json.h"

#include <stdlib.h>
#include <string.h>

const at_json_style AT_JSON_COMPACT = {",", ":", 0, NULL, NULL};
const at_json_style AT_JSON_DEFAULT = {", ", ": ", 0, NULL, NULL};
const at_json_style AT_JSON_PRETTY = {",", ": ", 2, NULL, NULL};

static const char hexd[] = "0123456789abcdef";

/* Bytes 0x20..0x7E other than " and \ are written as they are. */
static inline bool plain_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static char *put_u(char *o, uint32_t u)
{
    o[0] = '\\';
    o[1] = 'u';
    o[2] = hexd[(u >> 12) & 15];
    o[3] = hexd[(u >> 8) & 15];
    o[4] = hexd[(u >> 4) & 15];
    o[5] = hexd[u & 15];
    return o + 6;
}

at_result at_json_write_wtf8(at_buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Worst case: a 4-byte sequence becomes 12 bytes (surrogate pair), a
     * control byte 6; 6x bounds both. */
    if (n > (SIZE_MAX - 2) / 6)
        return AT_ERR_TOO_BIG;
    at_result r = at_buf_reserve(out, n * 6 + 2);
    if (r != AT_OK)
        return r;
    char *o = out->data + out->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && plain_ascii(s[j]))
            j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        i = j;
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            switch (c) {
            case '"':
                *o++ = '\\';
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                *o++ = '\\';
                break;
            case '\n':
                *o++ = '\\';
                *o++ = 'n';
                break;
            case '\r':
                *o++ = '\\';
                *o++ = 'r';
                break;
            case '\t':
                *o++ = '\\';
                *o++ = 't';
                break;
            case '\b':
                *o++ = '\\';
                *o++ = 'b';
                break;
            case '\f':
                *o++ = '\\';
                *o++ = 'f';
                break;
            default: o = put_u(o, c); break;
            }
            continue;
        }
        uint32_t cp;
        if (c < 0xe0 && i + 1 < n) {
            cp = (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f);
            i += 2;
        } else if (c < 0xf0 && i + 2 < n) {
            cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
            i += 3;
        } else if (i + 3 < n) {
            cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12 |
                 (uint32_t)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
            i += 4;
        } else {
            /* Truncated sequence: cannot come from validated input. */
            return AT_ERR_UTF8;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            o = put_u(o, 0xd800 | (cp >> 10));
            o = put_u(o, 0xdc00 | (cp & 0x3ff));
        } else {
            o = put_u(o, cp);
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return AT_OK;
}

/* Writes string node i; plain strings are copied straight from the source. */
static at_result write_string_node(at_buf *out, const at_json_doc *d, uint32_t i)
{
    const at_json_node *nd = &d->nodes[i];
    if (!(nd->flags & (AT_JSON_STR_ESCAPED | AT_JSON_STR_HIGH))) {
        at_result r = at_buf_reserve(out, (size_t)nd->len + 2);
        if (r != AT_OK)
            return r;
        char *o = out->data + out->len;
        o[0] = '"';
        memcpy(o + 1, d->src + nd->off, nd->len);
        o[nd->len + 1] = '"';
        out->len += (size_t)nd->len + 2;
        out->data[out->len] = 0;
        return AT_OK;
    }
    at_buf tmp;
    at_buf_init(&tmp, 0);
    at_result r = at_json_str_decode(d, i, &tmp);
    if (r == AT_OK)
        r = at_json_write_wtf8(out, tmp.data ? tmp.data : "", tmp.len);
    at_buf_fini(&tmp);
    return r;
}

static at_result newline_indent(at_buf *out, const at_json_style *st, int level)
{
    size_t n = (size_t)st->indent * (size_t)level;
    at_result r = at_buf_reserve(out, n + 1);
    if (r != AT_OK)
        return r;
    out->data[out->len++] = '\n';
    memset(out->data + out->len, ' ', n);
    out->len += n;
    out->data[out->len] = 0;
    return AT_OK;
}

typedef struct {
    const char *key;
    size_t key_len;
} parent_ctx;

static at_result emit(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st, int level,
                      const parent_ctx *parent);

static bool keys_equal(const at_json_doc *d, uint32_t a, uint32_t b)
{
    const at_json_node *na = &d->nodes[a], *nb = &d->nodes[b];
    if (!((na->flags | nb->flags) & AT_JSON_STR_ESCAPED))
        return na->len == nb->len && memcmp(d->src + na->off, d->src + nb->off, na->len) == 0;
    at_buf ka;
    at_buf_init(&ka, 0);
    bool eq = false;
    if (at_json_str_decode(d, a, &ka) == AT_OK)
        eq = at_json_str_eq(d, b, ka.data ? ka.data : "", ka.len);
    at_buf_fini(&ka);
    return eq;
}

/* Members of an object as json.loads leaves them: for each distinct key, its
 * first position and its last value. Fills keys[]/vals[] (n entries). */
static at_result dedupe_members(const at_json_doc *d, uint32_t obj, uint32_t *keys, uint32_t *vals,
                                uint32_t *count)
{
    uint32_t n = 0;
    for (uint32_t k = at_json_first(d, obj); k != AT_JSON_NONE; k = at_json_next(d, obj, k)) {
        uint32_t j;
        for (j = 0; j < n; j++)
            if (keys_equal(d, keys[j], k))
                break;
        if (j < n) {
            vals[j] = k + 1;
        } else {
            keys[n] = k;
            vals[n] = k + 1;
            n++;
        }
    }
    *count = n;
    return AT_OK;
}

/* Does any key of this object repeat? Quick check on raw bytes: objects are
 * small in practice, so quadratic is fine up to a bound, then we assume
 * repetition is possible and take the careful path. */
static bool may_have_duplicates(const at_json_doc *d, uint32_t obj)
{
    const at_json_node *o = &d->nodes[obj];
    if (o->len < 2)
        return false;
    if (o->len > 24)
        return true;
    uint32_t ks[24], n = 0;
    for (uint32_t k = at_json_first(d, obj); k != AT_JSON_NONE; k = at_json_next(d, obj, k)) {
        if (d->nodes[k].flags & AT_JSON_STR_ESCAPED)
            return true;
        for (uint32_t j = 0; j < n; j++)
            if (keys_equal(d, ks[j], k))
                return true;
        ks[n++] = k;
    }
    return false;
}

static at_result emit_member(at_buf *out, const at_json_doc *d, uint32_t key, uint32_t val,
                             const at_json_style *st, int level, bool first)
{
    at_result r;
    if (!first && (r = at_buf_adds(out, st->indent > 0 ? "," : st->item_sep)) != AT_OK)
        return r;
    if (st->indent > 0 && (r = newline_indent(out, st, level + 1)) != AT_OK)
        return r;
    if ((r = write_string_node(out, d, key)) != AT_OK)
        return r;
    if ((r = at_buf_adds(out, st->key_sep)) != AT_OK)
        return r;
    parent_ctx pc = {NULL, 0};
    at_buf kb;
    at_buf_init(&kb, 0);
    if (st->hook) {
        const at_json_node *kn = &d->nodes[key];
        if (!(kn->flags & AT_JSON_STR_ESCAPED)) {
            pc.key = d->src + kn->off; /* the bytes are the key: no copy */
            pc.key_len = kn->len;
        } else {
            if ((r = at_json_str_decode(d, key, &kb)) != AT_OK)
                goto out;
            pc.key = kb.data ? kb.data : "";
            pc.key_len = kb.len;
        }
    }
    r = emit(out, d, val, st, level + 1, &pc);
out:
    at_buf_fini(&kb);
    return r;
}

static at_result emit_object(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st,
                             int level)
{
    at_result r;
    if (d->nodes[i].len == 0)
        return at_buf_add(out, "{}", 2);
    if ((r = at_buf_addc(out, '{')) != AT_OK)
        return r;
    if (!may_have_duplicates(d, i)) {
        bool first = true;
        for (uint32_t k = at_json_first(d, i); k != AT_JSON_NONE; k = at_json_next(d, i, k)) {
            if ((r = emit_member(out, d, k, k + 1, st, level, first)) != AT_OK)
                return r;
            first = false;
        }
    } else {
        uint32_t n = d->nodes[i].len;
        uint32_t *keys = malloc(sizeof *keys * n * 2);
        if (!keys)
            return AT_ERR_NOMEM;
        uint32_t *vals = keys + n, count = 0;
        r = dedupe_members(d, i, keys, vals, &count);
        for (uint32_t m = 0; r == AT_OK && m < count; m++)
            r = emit_member(out, d, keys[m], vals[m], st, level, m == 0);
        free(keys);
        if (r != AT_OK)
            return r;
    }
    if (st->indent > 0 && (r = newline_indent(out, st, level)) != AT_OK)
        return r;
    return at_buf_addc(out, '}');
}

static at_result emit_array(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st, int level,
                            const parent_ctx *parent)
{
    at_result r;
    if (d->nodes[i].len == 0)
        return at_buf_add(out, "[]", 2);
    if ((r = at_buf_addc(out, '[')) != AT_OK)
        return r;
    bool first = true;
    for (uint32_t c = at_json_first(d, i); c != AT_JSON_NONE; c = at_json_next(d, i, c)) {
        if (!first && (r = at_buf_adds(out, st->indent > 0 ? "," : st->item_sep)) != AT_OK)
            return r;
        if (st->indent > 0 && (r = newline_indent(out, st, level + 1)) != AT_OK)
            return r;
        /* Array items inherit the array's parent key (redaction.md). */
        if ((r = emit(out, d, c, st, level + 1, parent)) != AT_OK)
            return r;
        first = false;
    }
    if (st->indent > 0 && (r = newline_indent(out, st, level)) != AT_OK)
        return r;
    return at_buf_addc(out, ']');
}

static at_result emit_string(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st,
                             const parent_ctx *parent)
{
    if (!st->hook)
        return write_string_node(out, d, i);
    /* Neither buffer allocates unless used: an unescaped string is its own
     * decoded text, and most strings are not rewritten. */
    at_buf val, repl;
    at_buf_init(&val, 0);
    at_buf_init(&repl, 0);
    bool replaced = false;
    const at_json_node *nd = &d->nodes[i];
    const char *s = d->src + nd->off;
    size_t n = nd->len;
    at_result r = AT_OK;
    if (nd->flags & AT_JSON_STR_ESCAPED) {
        r = at_json_str_decode(d, i, &val);
        s = val.data ? val.data : "";
        n = val.len;
    }
    if (r == AT_OK)
        r = st->hook(st->hook_ctx, parent ? parent->key : NULL, parent ? parent->key_len : 0, s, n, &repl,
                     &replaced);
    if (r == AT_OK)
        r = replaced ? at_json_write_wtf8(out, repl.data ? repl.data : "", repl.len)
                     : write_string_node(out, d, i);
    at_buf_fini(&val);
    at_buf_fini(&repl);
    return r;
}

static at_result emit(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st, int level,
                      const parent_ctx *parent)
{
    const at_json_node *nd = &d->nodes[i];
    switch ((at_json_type)nd->type) {
    case AT_JSON_NULL: return at_buf_add(out, "null", 4);
    case AT_JSON_TRUE: return at_buf_add(out, "true", 4);
    case AT_JSON_FALSE: return at_buf_add(out, "false", 5);
    case AT_JSON_INT:
    case AT_JSON_FLOAT:
        return at_json_write_number_token(out, d->src + nd->off, nd->len, nd->type == AT_JSON_FLOAT);
    case AT_JSON_STRING: return emit_string(out, d, i, st, parent);
    case AT_JSON_ARRAY: return emit_array(out, d, i, st, level, parent);
    case AT_JSON_OBJECT: return emit_object(out, d, i, st, level);
    }
    return AT_ERR_INVALID;
}

at_result at_json_emit(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st, int level)
{
    return emit(out, d, i, st, level, NULL);
}

at_result at_json_emit_under(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st,
                             int level, const char *parent_key, size_t parent_key_len)
{
    parent_ctx pc = {parent_key, parent_key_len};
    return emit(out, d, i, st, level, parent_key ? &pc : NULL);
}
