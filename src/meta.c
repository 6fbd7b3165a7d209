/* meta.c - SessionMeta fields, their omission rules and meta.json I/O. */
#include "agenttrace/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[AT_META_NFIELDS] = {
    "session_id",   "started_at", "ended_at",     "agent_name",        "command",           "tool_calls",
    "llm_requests", "errors",     "total_tokens", "total_duration_ms", "parent_session_id", "parent_event_id",
    "depth",        "team",       "workspace_id", "attribution",       "redacted",
};

void at_meta_init(at_meta *m)
{
    memset(m, 0, sizeof *m);
}

void at_meta_fini(at_meta *m)
{
    for (int f = 0; f < AT_META_NFIELDS; f++)
        free(m->raw[f]);
    memset(m, 0, sizeof *m);
}

const char *at_meta_field_name(at_meta_field f)
{
    return (unsigned)f < AT_META_NFIELDS ? names[f] : "";
}

int at_meta_field_lookup(const char *name, size_t n)
{
    for (int f = 0; f < AT_META_NFIELDS; f++)
        if (strlen(names[f]) == n && memcmp(names[f], name, n) == 0)
            return f;
    return -1;
}

at_result at_meta_set_raw(at_meta *m, at_meta_field f, const char *json, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return AT_ERR_NOMEM;
    memcpy(p, json, n);
    p[n] = 0;
    free(m->raw[f]);
    m->raw[f] = p;
    m->len[f] = n;
    return AT_OK;
}

static at_result set_buf(at_meta *m, at_meta_field f, at_buf *b)
{
    if (!b->data) {
        at_buf_fini(b);
        return AT_ERR_NOMEM;
    }
    free(m->raw[f]);
    m->raw[f] = at_buf_steal(b, &m->len[f]);
    return AT_OK;
}

at_result at_meta_set_string(at_meta *m, at_meta_field f, const char *wtf8, size_t n)
{
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_json_write_wtf8(&b, wtf8, n);
    if (r != AT_OK) {
        at_buf_fini(&b);
        return r;
    }
    return set_buf(m, f, &b);
}

at_result at_meta_set_double(at_meta *m, at_meta_field f, double v)
{
    char s[AT_DOUBLE_REPR_MAX];
    size_t n = at_double_repr(v, s);
    return at_meta_set_raw(m, f, s, n);
}

at_result at_meta_set_int(at_meta *m, at_meta_field f, int64_t v)
{
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, "%lld", (long long)v);
    if (r != AT_OK) {
        at_buf_fini(&b);
        return r;
    }
    return set_buf(m, f, &b);
}

void at_meta_unset(at_meta *m, at_meta_field f)
{
    free(m->raw[f]);
    m->raw[f] = NULL;
    m->len[f] = 0;
}

at_result at_meta_get_string(const at_meta *m, at_meta_field f, at_buf *out)
{
    if (!m->raw[f] || m->raw[f][0] != '"')
        return AT_ERR_NOT_FOUND;
    at_json_doc d;
    at_json_doc_init(&d);
    at_result r = at_json_parse(&d, m->raw[f], m->len[f], NULL);
    if (r == AT_OK)
        r = at_json_str_decode(&d, 0, out);
    at_json_doc_fini(&d);
    return r;
}

double at_meta_get_number(const at_meta *m, at_meta_field f, double dflt)
{
    const char *s = m->raw[f];
    if (!s)
        return dflt;
    if (strcmp(s, "true") == 0)
        return 1.0;
    if (strcmp(s, "false") == 0)
        return 0.0;
    if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9') || s[0] == 'N' || s[0] == 'I')
        return at_json_parse_double(s, m->len[f]);
    return dflt;
}

/* SessionMeta.to_dict() drops None, "", 0, 0.0 and False. */
static bool omitted(const char *s, size_t n)
{
    if (n == 4 && memcmp(s, "null", 4) == 0)
        return true;
    if (n == 5 && memcmp(s, "false", 5) == 0)
        return true;
    if (n == 2 && memcmp(s, "\"\"", 2) == 0)
        return true;
    if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
        return at_json_parse_double(s, n) == 0.0;
    return false;
}

at_result at_meta_write(const at_meta *m, at_buf *out, const at_json_style *st)
{
    at_json_doc d;
    at_json_doc_init(&d);
    at_result r = at_buf_addc(out, '{');
    bool first = true;
    for (int f = 0; r == AT_OK && f < AT_META_NFIELDS; f++) {
        const char *v = m->raw[f];
        size_t n = m->len[f];
        if (!v && f == AT_META_ATTRIBUTION) {
            v = "{}";
            n = 2;
        }
        if (!v || (f != AT_META_ATTRIBUTION && omitted(v, n)))
            continue;
        if (!first && (r = at_buf_adds(out, st->indent > 0 ? "," : st->item_sep)) != AT_OK)
            break;
        if (st->indent > 0) {
            if ((r = at_buf_addc(out, '\n')) != AT_OK ||
                (r = at_buf_printf(out, "%*s", st->indent, "")) != AT_OK)
                break;
        }
        if ((r = at_buf_printf(out, "\"%s\"%s", names[f], st->key_sep)) != AT_OK)
            break;
        /* Objects and arrays need re-indenting; scalars are written as kept. */
        if (v[0] == '{' || v[0] == '[') {
            if ((r = at_json_parse(&d, v, n, NULL)) == AT_OK)
                r = at_json_emit(out, &d, 0, st, 1);
        } else {
            r = at_buf_add(out, v, n);
        }
        first = false;
    }
    if (r == AT_OK && st->indent > 0 && !first)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK)
        r = at_buf_addc(out, '}');
    at_json_doc_fini(&d);
    return r;
}

at_result at_meta_parse(at_meta *m, const char *text, size_t n, bool reject_unknown, at_error *err)
{
    at_json_doc d;
    at_buf v, key;
    at_json_doc_init(&d);
    at_buf_init(&v, 0);
    at_buf_init(&key, 0);
    at_result r = at_json_parse(&d, text, n, err);
    if (r != AT_OK)
        goto out;
    if (!at_json_is(&d, 0, AT_JSON_OBJECT)) {
        r = at_error_set(err, AT_ERR_JSON, 0, "session metadata is not a JSON object");
        goto out;
    }
    for (uint32_t k = at_json_first(&d, 0); k != AT_JSON_NONE; k = at_json_next(&d, 0, k)) {
        at_buf_reset(&key);
        if ((r = at_json_str_decode(&d, k, &key)) != AT_OK)
            goto out;
        int f = at_meta_field_lookup(key.data ? key.data : "", key.len);
        if (f < 0) {
            if (reject_unknown) {
                r = at_error_set(err, AT_ERR_INVALID, -1, "unknown session field: %.100s",
                                 key.data ? key.data : "");
                goto out;
            }
            continue;
        }
        at_buf_reset(&v);
        if ((r = at_json_emit(&v, &d, k + 1, &AT_JSON_COMPACT, 0)) != AT_OK ||
            (r = at_meta_set_raw(m, (at_meta_field)f, v.data, v.len)) != AT_OK)
            goto out;
    }
out:
    at_buf_fini(&key);
    at_buf_fini(&v);
    at_json_doc_fini(&d);
    return r;
}

at_result at_meta_load(at_meta *m, const char *path, at_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return at_error_set(err, errno == ENOENT ? AT_ERR_NOT_FOUND : AT_ERR_IO, -1, "%s: %s", path,
                            strerror(errno));
    at_buf b;
    at_buf_init(&b, AT_MAX_META_BYTES);
    at_result r = AT_OK;
    for (;;) {
        if ((r = at_buf_reserve(&b, 65536)) != AT_OK) {
            at_error_set(err, r, -1, "%s: too large", path);
            break;
        }
        ssize_t k = read(fd, b.data + b.len, 65536);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = at_error_set(err, AT_ERR_IO, -1, "%s: %s", path, strerror(errno));
            break;
        }
        if (k == 0)
            break;
        b.len += (size_t)k;
    }
    close(fd);
    if (r == AT_OK)
        r = at_meta_parse(m, b.data ? b.data : "", b.len, false, err);
    at_buf_fini(&b);
    return r;
}
