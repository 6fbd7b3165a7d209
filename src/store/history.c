/* history.c - a session's versions: history/<id>/versions, one compact JSON
 * line per record, appended and never rewritten (gc writes a trimmed copy
 * and renames it).
 *
 *   {"version":N,"events":..,"size":..,"events_sha256":"<hex>","head":"<hex>"|null,
 *    "transcript_bytes":..|null,"transcript_sha256":"<hex>"|null,"cause":"import",
 *    "time":<float>,"object":"<hex>","depth":D,"end":E}
 *   {"seen":N,"dev":..,"ino":..,"size":..,"mtime":..,"ctime":..}
 *
 * A version record is the commit point of a change. A seen record is the
 * stamp of events.ndjson as the version-N commit left it: while the file
 * keeps that stamp nothing needs reading to know it is version N. Only the
 * last records matter for writing, so the file is read from its end. */
#include "store_int.h"

#include "agenttrace/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static at_result history_path(at_store *s, const char *sid, char *p, size_t cap)
{
    return store_path(s, p, cap, ".agent-traced/history/%s/versions", sid);
}

/* ---- parsing ---------------------------------------------------------------- */

static bool get_u64(const at_json_doc *d, const char *key, uint64_t *out)
{
    uint32_t v = at_json_get(d, 0, key);
    if (!at_json_is(d, v, AT_JSON_INT))
        return false;
    const at_json_node *nd = at_json_node_at(d, v);
    uint64_t x = 0;
    for (uint32_t i = 0; i < nd->len; i++) {
        char c = d->src[nd->off + i];
        if (c < '0' || c > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(c - '0');
    }
    *out = x;
    return true;
}

static bool get_i64(const at_json_doc *d, const char *key, int64_t *out)
{
    uint32_t v = at_json_get(d, 0, key);
    if (!at_json_is(d, v, AT_JSON_INT))
        return false;
    const at_json_node *nd = at_json_node_at(d, v);
    const char *p = d->src + nd->off;
    bool neg = nd->len && *p == '-';
    uint64_t x = 0;
    for (uint32_t i = neg; i < nd->len; i++)
        x = x * 10 + (uint64_t)(p[i] - '0');
    *out = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

static bool hex_val(char c, uint8_t *v)
{
    if (c >= '0' && c <= '9')
        *v = (uint8_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
        *v = (uint8_t)(c - 'a' + 10);
    else
        return false;
    return true;
}

bool at_hex_decode(const char *hex, size_t n, uint8_t *out);
bool at_hex_decode(const char *hex, size_t n, uint8_t *out)
{
    if (n % 2)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t a, b;
        if (!hex_val(hex[2 * i], &a) || !hex_val(hex[2 * i + 1], &b))
            return false;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return true;
}

/* A 64-hex string member into out (false when absent, null or malformed). */
static bool get_digest(const at_json_doc *d, const char *key, uint8_t out[AT_SHA256_LEN])
{
    uint32_t v = at_json_get(d, 0, key);
    if (!at_json_is(d, v, AT_JSON_STRING) || at_json_node_at(d, v)->len != 64)
        return false;
    return at_hex_decode(d->src + at_json_node_at(d, v)->off, 64, out);
}

static bool parse_version(const at_json_doc *d, sess_state *st)
{
    uint64_t depth = 0, end = 0;
    at_version *v = &st->cur;
    memset(v, 0, sizeof *v);
    if (!get_u64(d, "version", &v->version) || !get_u64(d, "events", &v->events) ||
        !get_u64(d, "size", &v->size) || !get_digest(d, "events_sha256", v->events_sha256))
        return false;
    v->have_head = get_digest(d, "head", v->head);
    v->transcript_bytes = -1;
    int64_t tb;
    if (get_i64(d, "transcript_bytes", &tb) && tb >= 0 &&
        get_digest(d, "transcript_sha256", v->transcript_sha256))
        v->transcript_bytes = tb;
    uint32_t c = at_json_get(d, 0, "cause");
    v->cause = at_json_str_eq(d, c, "import", 6)   ? AT_CAUSE_IMPORT
               : at_json_str_eq(d, c, "append", 6) ? AT_CAUSE_APPEND
                                                   : AT_CAUSE_EXTERNAL;
    uint32_t t = at_json_get(d, 0, "time");
    if (at_json_is(d, t, AT_JSON_FLOAT) || at_json_is(d, t, AT_JSON_INT))
        v->time = at_json_parse_double(d->src + at_json_node_at(d, t)->off, at_json_node_at(d, t)->len);
    uint32_t o = at_json_get(d, 0, "object");
    if (!at_json_is(d, o, AT_JSON_STRING) || at_json_node_at(d, o)->len != 64)
        return false;
    memcpy(st->object, d->src + at_json_node_at(d, o)->off, 64);
    st->object[64] = 0;
    get_u64(d, "depth", &depth);
    get_u64(d, "end", &end);
    st->depth = (int)depth;
    st->end_len = end;
    st->have = true;
    return true;
}

static bool parse_seen(const at_json_doc *d, sess_state *st)
{
    uint64_t v;
    file_stamp *f = &st->seen;
    memset(f, 0, sizeof *f);
    if (!get_u64(d, "seen", &v))
        return false;
    f->exists = !at_json_is(d, at_json_get(d, 0, "missing"), AT_JSON_TRUE);
    if (f->exists &&
        (!get_u64(d, "dev", &f->dev) || !get_u64(d, "ino", &f->ino) || !get_u64(d, "size", &f->size) ||
         !get_i64(d, "mtime", &f->mtime_ns) || !get_i64(d, "ctime", &f->ctime_ns)))
        return false;
    st->seen_version = v;
    st->have_seen = true;
    return true;
}

/* ---- reading ---------------------------------------------------------------- */

/* Calls fn for each line of the file from its end backwards until fn
 * returns false. */
static at_result each_line_backwards(int fd, bool (*fn)(void *ctx, const char *line, size_t n), void *ctx)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return AT_ERR_IO;
    off_t end = sb.st_size;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf)
        return AT_ERR_NOMEM;
    size_t have = 0; /* bytes of buf holding the file's [end - have, end) */
    at_result r = AT_OK;
    bool go = true;
    while (go && (end > 0 || have > 0)) {
        /* the last complete line in buf */
        char *nl = have ? memrchr(buf, '\n', have - (buf[have - 1] == '\n' ? 1 : 0)) : NULL;
        if (nl || end == 0) {
            size_t start = nl ? (size_t)(nl - buf) + 1 : 0;
            size_t len = have - start;
            if (len && buf[start + len - 1] == '\n')
                len--;
            if (len)
                go = fn(ctx, buf + start, len);
            have = start;
            continue;
        }
        /* need more: grow buf and read the chunk before it */
        size_t want = cap - have;
        if (want == 0) {
            if (cap >= AT_MAX_LINE_BYTES) {
                r = AT_ERR_TOO_BIG;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                r = AT_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
            want = cap - have;
        }
        if ((off_t)want > end)
            want = (size_t)end;
        memmove(buf + want, buf, have);
        if (pread(fd, buf, want, end - (off_t)want) != (ssize_t)want) {
            r = AT_ERR_IO;
            break;
        }
        end -= (off_t)want;
        have += want;
    }
    free(buf);
    return r;
}

typedef struct {
    sess_state *st;
    at_json_doc doc;
    bool got_version, got_seen;
} load_ctx;

static bool load_line(void *ctx, const char *line, size_t n)
{
    load_ctx *lc = ctx;
    if (at_json_parse(&lc->doc, line, n, NULL) != AT_OK || !at_json_is(&lc->doc, 0, AT_JSON_OBJECT))
        return true; /* a torn last line of a crashed append: not a record */
    bool seen = at_json_get(&lc->doc, 0, "seen") != AT_JSON_NONE;
    if (!seen && !lc->got_version) {
        lc->got_version = parse_version(&lc->doc, lc->st);
    } else if (seen && !lc->got_version && !lc->got_seen) {
        lc->got_seen = parse_seen(&lc->doc, lc->st); /* a stamp after the last version */
    } else if (seen && lc->got_version) {
        /* the stamp before the last version: what a cut-short commit left */
        sess_state tmp;
        memset(&tmp, 0, sizeof tmp);
        if (parse_seen(&lc->doc, &tmp)) {
            lc->st->prev_seen = tmp.seen;
            lc->st->have_prev_seen = true;
        }
        return false;
    } else if (!seen && lc->got_version) {
        return false; /* an older version, no stamp between */
    }
    return true;
}

at_result history_load(at_store *s, const char *sid, sess_state *st, at_error *err)
{
    char p[PATH_MAX];
    memset(st, 0, sizeof *st);
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_OK : sys_fail(err, "cannot read", p);
    load_ctx lc = {.st = st};
    at_json_doc_init(&lc.doc);
    at_result r = each_line_backwards(fd, load_line, &lc);
    at_json_doc_fini(&lc.doc);
    close(fd);
    if (r != AT_OK)
        return at_error_set(err, r, -1, "cannot read %s: %s", p, at_result_str(r));
    if (lc.got_seen && (!st->have || st->seen_version != st->cur.version))
        st->have_seen = false; /* a stamp of another version */
    return AT_OK;
}

typedef struct {
    at_version *v;
    char (*obj)[AT_SHA256_HEX]; /* history_list with objects */
    bool want_obj;
    size_t n, cap;
    at_json_doc doc;
    at_result r;
    uint64_t want; /* history_object: the version looked for (0: list all) */
    char *hex;
    bool found;
} list_ctx;

static bool list_line(void *ctx, const char *line, size_t n)
{
    list_ctx *lc = ctx;
    if (at_json_parse(&lc->doc, line, n, NULL) != AT_OK || !at_json_is(&lc->doc, 0, AT_JSON_OBJECT) ||
        at_json_get(&lc->doc, 0, "seen") != AT_JSON_NONE)
        return true;
    sess_state st;
    if (!parse_version(&lc->doc, &st))
        return true;
    if (lc->want) {
        if (st.cur.version != lc->want)
            return true;
        memcpy(lc->hex, st.object, AT_SHA256_HEX);
        lc->found = true;
        return false;
    }
    if (lc->n == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 16;
        at_version *nv = realloc(lc->v, cap * sizeof *nv);
        if (nv)
            lc->v = nv;
        char(*no)[AT_SHA256_HEX] = lc->want_obj ? realloc(lc->obj, cap * sizeof *no) : NULL;
        if (no)
            lc->obj = no;
        if (!nv || (lc->want_obj && !no)) {
            lc->r = AT_ERR_NOMEM;
            return false;
        }
        lc->cap = cap;
    }
    if (lc->want_obj)
        memcpy(lc->obj[lc->n], st.object, AT_SHA256_HEX);
    lc->v[lc->n++] = st.cur;
    return true;
}

at_result history_list(at_store *s, const char *sid, at_version **out, char (**objs)[AT_SHA256_HEX],
                       size_t *n, at_error *err)
{
    char p[PATH_MAX];
    *out = NULL;
    if (objs)
        *objs = NULL;
    *n = 0;
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_OK : sys_fail(err, "cannot read", p);
    list_ctx lc = {.want_obj = objs != NULL};
    at_json_doc_init(&lc.doc);
    at_result r = each_line_backwards(fd, list_line, &lc);
    at_json_doc_fini(&lc.doc);
    close(fd);
    if (r == AT_OK)
        r = lc.r;
    if (r != AT_OK) {
        free(lc.v);
        free(lc.obj);
        return at_error_set(err, r, -1, "cannot read %s", p);
    }
    /* read from the end: newest first; oldest first is wanted */
    for (size_t i = 0, j = lc.n ? lc.n - 1 : 0; i < j; i++, j--) {
        at_version t = lc.v[i];
        lc.v[i] = lc.v[j];
        lc.v[j] = t;
        if (lc.obj) {
            char h[AT_SHA256_HEX];
            memcpy(h, lc.obj[i], AT_SHA256_HEX);
            memcpy(lc.obj[i], lc.obj[j], AT_SHA256_HEX);
            memcpy(lc.obj[j], h, AT_SHA256_HEX);
        }
    }
    *out = lc.v;
    if (objs)
        *objs = lc.obj;
    *n = lc.n;
    return AT_OK;
}

at_result history_object(at_store *s, const char *sid, uint64_t version, char hex[AT_SHA256_HEX],
                         at_error *err)
{
    char p[PATH_MAX];
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? at_error_set(err, AT_ERR_NOT_FOUND, -1, "no such version")
                               : sys_fail(err, "cannot read", p);
    list_ctx lc = {.want = version, .hex = hex};
    at_json_doc_init(&lc.doc);
    at_result r = each_line_backwards(fd, list_line, &lc);
    at_json_doc_fini(&lc.doc);
    close(fd);
    if (r != AT_OK)
        return at_error_set(err, r, -1, "cannot read %s", p);
    return lc.found ? AT_OK
                    : at_error_set(err, AT_ERR_NOT_FOUND, -1, "no version %llu", (unsigned long long)version);
}

/* ---- writing ------------------------------------------------------------------- */

static at_result put_hex(at_buf *b, const char *key, const uint8_t *dg, bool have)
{
    if (!have)
        return at_buf_printf(b, ",\"%s\":null", key);
    char hex[AT_SHA256_HEX];
    at_hex(dg, AT_SHA256_LEN, hex);
    return at_buf_printf(b, ",\"%s\":\"%s\"", key, hex);
}

static at_result append_line(at_store *s, const char *sid, const at_buf *b, int *fd_out, off_t *before_out,
                             at_error *err)
{
    char p[PATH_MAX];
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return sys_fail(err, "cannot open", p);
    struct stat sb;
    off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
    if (at_write_all(fd, b->data, b->len) != AT_OK) {
        at_result r = sys_fail(err, "cannot write", p);
        /* A record torn by a full disk would glue the next one to its bytes
         * (and both would be lost): cut it off. */
        if (before >= 0 && ftruncate(fd, before) != 0) {
            /* cannot happen for a shrink; the torn line stays and is skipped */
        }
        close(fd);
        return r;
    }
    if (before_out)
        *before_out = before;
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return AT_OK;
}

void history_drop_if_empty(at_store *s, const char *sid)
{
    char p[PATH_MAX];
    struct stat sb;
    if (history_path(s, sid, p, sizeof p) == AT_OK && stat(p, &sb) == 0 && sb.st_size == 0)
        unlink(p);
}

at_result history_add(at_store *s, const char *sid, const sess_state *st, int *fd, off_t *before,
                      at_error *err)
{
    const at_version *v = &st->cur;
    char tbuf[AT_DOUBLE_REPR_MAX];
    at_buf b;
    at_buf_init(&b, 0);
    at_result r =
        at_buf_printf(&b, "{\"version\":%llu,\"events\":%llu,\"size\":%llu", (unsigned long long)v->version,
                      (unsigned long long)v->events, (unsigned long long)v->size);
    if (r == AT_OK)
        r = put_hex(&b, "events_sha256", v->events_sha256, true);
    if (r == AT_OK)
        r = put_hex(&b, "head", v->head, v->have_head);
    if (r == AT_OK)
        r = v->transcript_bytes >= 0
                ? at_buf_printf(&b, ",\"transcript_bytes\":%lld", (long long)v->transcript_bytes)
                : at_buf_adds(&b, ",\"transcript_bytes\":null");
    if (r == AT_OK)
        r = put_hex(&b, "transcript_sha256", v->transcript_sha256, v->transcript_bytes >= 0);
    if (r == AT_OK) {
        at_double_repr(v->time, tbuf);
        r = at_buf_printf(&b, ",\"cause\":\"%s\",\"time\":%s,\"object\":\"%s\",\"depth\":%d,\"end\":%llu}\n",
                          at_cause_name(v->cause), tbuf, st->object, st->depth,
                          (unsigned long long)st->end_len);
    }
    if (r == AT_OK)
        r = append_line(s, sid, &b, fd, before, err);
    else
        at_error_set(err, r, -1, "out of memory");
    at_buf_fini(&b);
    return r;
}

at_result history_drop_from(at_store *s, const char *sid, uint64_t v, at_error *err)
{
    char p[PATH_MAX];
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    FILE *f = fopen(p, "re");
    if (!f)
        return sys_fail(err, "cannot read", p);
    at_buf keep;
    at_buf_init(&keep, 0);
    at_json_doc d;
    at_json_doc_init(&d);
    char *line = NULL;
    size_t cap = 0;
    ssize_t k;
    at_result r = AT_OK;
    while (r == AT_OK && (k = getline(&line, &cap, f)) > 0) {
        if (at_json_parse(&d, line, (size_t)k, NULL) != AT_OK || !at_json_is(&d, 0, AT_JSON_OBJECT))
            continue; /* a torn line */
        uint64_t n = 0;
        if (!get_u64(&d, "version", &n) && !get_u64(&d, "seen", &n) && !get_u64(&d, "logged", &n))
            continue;
        if (n < v)
            r = at_buf_add(&keep, line, (size_t)k);
    }
    free(line);
    fclose(f);
    at_json_doc_fini(&d);
    if (r == AT_OK)
        r = at_write_file_atomic(p, keep.data ? keep.data : "", keep.len, err);
    at_buf_fini(&keep);
    return r;
}

at_result history_seen(at_store *s, const char *sid, uint64_t v, const file_stamp *fs, at_error *err)
{
    at_buf b;
    at_buf_init(&b, 0);
    at_result r =
        fs->exists
            ? at_buf_printf(&b,
                            "{\"seen\":%llu,\"dev\":%llu,\"ino\":%llu,\"size\":%llu,\"mtime\":%lld,"
                            "\"ctime\":%lld}\n",
                            (unsigned long long)v, (unsigned long long)fs->dev, (unsigned long long)fs->ino,
                            (unsigned long long)fs->size, (long long)fs->mtime_ns, (long long)fs->ctime_ns)
            : at_buf_printf(&b, "{\"seen\":%llu,\"missing\":true}\n", (unsigned long long)v);
    if (r == AT_OK)
        r = append_line(s, sid, &b, NULL, NULL, err);
    at_buf_fini(&b);
    return r;
}

/* ---- events files ------------------------------------------------------------------ */

static bool is_session_end(const char *line, size_t n)
{
    static const char pre[] = "{\"event_type\":\"session_end\"";
    return n >= sizeof pre - 1 && memcmp(line, pre, sizeof pre - 1) == 0;
}

at_result events_scan(int fd, events_facts *f, at_sha256 *hash)
{
    enum { BLK = 1 << 20 };
    memset(f, 0, sizeof *f);
    f->ends_nl = true;
    char *buf = malloc(BLK);
    at_sha256 *file = at_sha256_new(), *line = at_sha256_new();
    at_result r = buf && file && line ? AT_OK : AT_ERR_NOMEM;
    char first[32]; /* the first bytes of the current line: is it a session_end? */
    size_t first_n = 0;
    uint64_t line_len = 0, off = 0;
    while (r == AT_OK) {
        ssize_t k = pread(fd, buf, BLK, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = AT_ERR_IO;
            break;
        }
        if (k == 0)
            break;
        at_sha256_update(file, buf, (size_t)k);
        if (hash)
            at_sha256_update(hash, buf, (size_t)k);
        for (size_t i = 0; i < (size_t)k;) {
            char *nl = memchr(buf + i, '\n', (size_t)k - i);
            size_t seg = nl ? (size_t)(nl - (buf + i)) : (size_t)k - i;
            if (line_len == 0)
                at_sha256_reset(line);
            at_sha256_update(line, buf + i, seg);
            for (size_t j = 0; j < seg && first_n < sizeof first; j++)
                first[first_n++] = buf[i + j];
            line_len += seg;
            i += seg;
            if (nl) {
                f->lines++;
                at_sha256_final(line, f->head);
                f->have_head = true;
                f->end_len = is_session_end(first, first_n) ? line_len + 1 : 0;
                line_len = 0;
                first_n = 0;
                i++;
            }
        }
        off += (uint64_t)k;
    }
    if (r == AT_OK && line_len) { /* a last line without "\n" */
        f->lines++;
        at_sha256_final(line, f->head);
        f->have_head = true;
        f->end_len = 0;
        f->ends_nl = false;
    }
    f->size = off;
    if (r == AT_OK) {
        at_sha256 *copy = at_sha256_new();
        if (!copy) {
            r = AT_ERR_NOMEM;
        } else {
            at_sha256_copy(copy, file);
            at_sha256_final(copy, f->sha256);
            at_sha256_free(copy);
        }
    }
    at_sha256_free(file);
    at_sha256_free(line);
    free(buf);
    return r;
}

typedef struct {
    events_facts *f;
    bool done;
} tail_ctx;

static bool tail_line(void *ctx, const char *line, size_t n)
{
    tail_ctx *tc = ctx;
    at_sha256_oneshot(line, n, tc->f->head);
    tc->f->have_head = true;
    tc->f->end_len = is_session_end(line, n) && tc->f->ends_nl ? n + 1 : 0;
    tc->done = true;
    return false;
}

at_result events_tail(int fd, uint64_t size, events_facts *f)
{
    memset(f, 0, sizeof *f);
    f->size = size;
    f->ends_nl = true;
    if (size == 0)
        return AT_OK;
    char c;
    if (pread(fd, &c, 1, (off_t)size - 1) != 1)
        return AT_ERR_IO;
    f->ends_nl = c == '\n';
    tail_ctx tc = {f, false};
    return each_line_backwards(fd, tail_line, &tc);
}

/* ---- the log's records -------------------------------------------------------------- */

/* {"logged":V,"index":I}: version V is entry I of the transparency log. */

at_result at_store_mark_logged(at_store *s, const at_logged_mark *m, size_t n, at_error *err)
{
    if (s->db)
        return store_db_unsupported(err, "the store's log feed");
    if (n == 0)
        return AT_OK;
    int *fds = malloc(n * sizeof *fds);
    if (!fds)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    at_buf b;
    at_buf_init(&b, 0);
    size_t nfd = 0;
    at_result r = AT_OK;
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        at_buf_reset(&b);
        r = at_buf_printf(&b, "{\"logged\":%llu,\"index\":%llu}\n", (unsigned long long)m[i].version,
                          (unsigned long long)m[i].index);
        char p[PATH_MAX];
        if (r == AT_OK && history_path(s, m[i].sid, p, sizeof p) != AT_OK)
            r = at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
        if (r != AT_OK)
            break;
        int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue; /* the session is gone (removed by gc): nothing to record */
        if (fd < 0) {
            r = sys_fail(err, "cannot open", p);
            break;
        }
        fds[nfd++] = fd;
        struct stat sb;
        off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
        if (at_write_all(fd, b.data, b.len) != AT_OK) {
            r = sys_fail(err, "cannot write", p);
            if (before >= 0 && ftruncate(fd, before) != 0) { /* as in append_line */
            }
        }
    }
    /* one sync round for the batch's sessions */
    if (r == AT_OK)
        r = sync_wait(&s->sync, fds, nfd, err);
    for (size_t i = 0; i < nfd; i++)
        close(fds[i]);
    free(fds);
    at_buf_fini(&b);
    return r;
}

typedef struct {
    at_json_doc doc;
    uint64_t want;   /* the version asked for (0: the current one) */
    uint64_t latest; /* the newest version seen (from the end) */
    bool have_latest;
    uint64_t index;
    bool found;
    /* logged records met before the newest version (read from the end) */
    uint64_t seen_v[16], seen_i[16];
    size_t nseen;
    /* each_unlogged: versions after the last logged one, newest first */
    at_version *v;
    size_t n, cap;
    bool collect;
    uint64_t floor; /* collect: the newest logged version met so far */
    bool have_floor;
    at_result r;
} logged_ctx;

static bool logged_line(void *ctx, const char *line, size_t n)
{
    logged_ctx *lc = ctx;
    if (at_json_parse(&lc->doc, line, n, NULL) != AT_OK || !at_json_is(&lc->doc, 0, AT_JSON_OBJECT))
        return true;
    uint64_t v, i;
    if (get_u64(&lc->doc, "logged", &v) && get_u64(&lc->doc, "index", &i)) {
        if (lc->collect) {
            /* A session's versions are logged in order, so every version up
             * to this one is logged. Later versions may still come before
             * this record (written while it was being logged): keep going
             * back to the version records newer than it. */
            if (!lc->have_floor || v > lc->floor)
                lc->floor = v;
            lc->have_floor = true;
            return true;
        }
        if (lc->want ? v == lc->want : (lc->have_latest && v == lc->latest)) {
            lc->index = i;
            lc->found = true;
            return false;
        }
        if (!lc->want && !lc->have_latest && lc->nseen < 16) {
            lc->seen_v[lc->nseen] = v;
            lc->seen_i[lc->nseen++] = i;
        }
        return true;
    }
    if (get_u64(&lc->doc, "seen", &v) || !get_u64(&lc->doc, "version", &v))
        return true;
    if (!lc->have_latest) {
        lc->latest = v;
        lc->have_latest = true;
        for (size_t k = 0; !lc->want && !lc->collect && k < lc->nseen; k++)
            if (lc->seen_v[k] == v) {
                lc->index = lc->seen_i[k];
                lc->found = true;
                return false;
            }
    }
    if (lc->collect) {
        if (lc->have_floor && v <= lc->floor)
            return false; /* this one and all before it are logged */
        sess_state st;
        if (!parse_version(&lc->doc, &st))
            return true;
        if (lc->n == lc->cap) {
            size_t cap = lc->cap ? lc->cap * 2 : 8;
            at_version *nv = realloc(lc->v, cap * sizeof *nv);
            if (!nv) {
                lc->r = AT_ERR_NOMEM;
                return false;
            }
            lc->v = nv;
            lc->cap = cap;
        }
        lc->v[lc->n++] = st.cur;
        return true;
    }
    /* a version older than the one asked for: it is not logged */
    return !(lc->want ? v < lc->want : false);
}

static at_result scan_logged(at_store *s, const char *sid, logged_ctx *lc, at_error *err)
{
    char p[PATH_MAX];
    if (history_path(s, sid, p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_OK : sys_fail(err, "cannot read", p);
    at_json_doc_init(&lc->doc);
    at_result r = each_line_backwards(fd, logged_line, lc);
    at_json_doc_fini(&lc->doc);
    close(fd);
    if (r == AT_OK)
        r = lc->r;
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "cannot read %s", p);
}

at_result at_store_logged_index(at_store *s, const char *sid, uint64_t v, uint64_t *version, uint64_t *index,
                                at_error *err)
{
    if (s->db)
        return sdb_logged_index(s, sid, v, version, index, err);
    logged_ctx lc = {.want = v};
    at_result r = scan_logged(s, sid, &lc, err);
    if (r != AT_OK)
        return r;
    *version = v ? v : lc.latest;
    if (!lc.found)
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "version %llu of %s is not in the log yet",
                            (unsigned long long)*version, sid);
    *index = lc.index;
    return AT_OK;
}

static at_result unlogged_of(at_store *s, const char *sid, at_version_fn fn, void *ctx, at_error *err)
{
    logged_ctx lc = {.collect = true};
    at_result r = scan_logged(s, sid, &lc, err);
    for (size_t i = lc.n; r == AT_OK && i-- > 0;) /* oldest first */
        fn(ctx, sid, &lc.v[i]);
    free(lc.v);
    return r;
}

at_result at_store_each_unlogged(at_store *s, const char *sid, at_version_fn fn, void *ctx, at_error *err)
{
    if (s->db)
        return store_db_unsupported(err, "the store's log feed");
    if (sid)
        return unlogged_of(s, sid, fn, ctx, err);
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/history") != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    DIR *d = opendir(p);
    if (!d)
        return sys_fail(err, "cannot list", p);
    at_result r = AT_OK;
    struct dirent *e;
    while (r == AT_OK && (e = readdir(d)))
        if (e->d_name[0] != '.' && at_store_session_exists(s, e->d_name))
            r = unlogged_of(s, e->d_name, fn, ctx, err);
    closedir(d);
    return r;
}

at_result at_events_summarize(int fd, at_events_summary *out)
{
    events_facts f;
    at_result r = events_scan(fd, &f, NULL);
    if (r != AT_OK)
        return r;
    *out = (at_events_summary){.lines = f.lines, .size = f.size, .have_head = f.have_head};
    memcpy(out->head, f.head, AT_SHA256_LEN);
    memcpy(out->sha256, f.sha256, AT_SHA256_LEN);
    return AT_OK;
}

at_result at_store_log_entry(const char *sid, const at_version *v, at_buf *out)
{
    char head[AT_SHA256_HEX], obj[AT_SHA256_HEX];
    uint8_t empty[AT_SHA256_LEN];
    if (!v->have_head)
        at_sha256_oneshot("", 0, empty); /* no line at all: the digest of an empty one */
    at_hex(v->have_head ? v->head : empty, AT_SHA256_LEN, head);
    at_hex(v->events_sha256, AT_SHA256_LEN, obj);
    at_result r = at_buf_adds(out, "agent-traced/head/v1\nsession ");
    if (r == AT_OK)
        r = at_json_write_wtf8(out, sid, strlen(sid));
    if (r == AT_OK)
        r = at_buf_printf(out, "\nversion %llu\nevents %llu\nhead %s\nobject %s\n",
                          (unsigned long long)v->version, (unsigned long long)v->events, head, obj);
    return r;
}
