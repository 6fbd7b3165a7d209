/* tree.c - GET /sessions/{id}/tree: the session and its subagent descendants,
 * byte for byte what `agent-strace tree <id> --format json|text` prints
 * (server-api.md, "Trees, exactly as agent-strace prints them").
 *
 * The reference is Python, so the values keep Python's types: a meta counter
 * stored as 3 stays an int, one stored as 3.0 stays a float (sums of ints
 * are ints, anything plus a float is a float), and the meta fields copied
 * into a node are written from meta's raw JSON value.
 *
 * Readings of the spec where agent-strace itself could not be consulted
 * (tests/vectors/gen_tree.py implements the same readings):
 *  - a node field that meta.json lacks takes SessionMeta's default: ""
 *    for parent_session_id and parent_event_id (so a root prints "", as
 *    agent-strace does), 0 for the counters and depth (server-api.md);
 *  - "nodes below depth 5 are not expanded": the root is at tree depth 0;
 *    a node at tree depth >= 5 is listed with "children": [] (six levels at
 *    most). The tree depth, not the meta `depth` field, drives this and the
 *    text indentation (the two agree for well-formed stores);
 *  - "when both are set" (duration) is Python truthiness: started_at of 0.0
 *    (the default, omitted from meta.json) counts as unset;
 *  - max(0, ended_at - started_at) is Python's max: an int 0 when the
 *    difference is not positive (so duration_s is 0, not 0.0, then);
 *  - totals are summed in preorder (root first, children in order), like
 *    the cost;
 *  - the text header shows the root's session id, not the requested prefix;
 *  - output ends with a newline, as print() writes it.
 *
 * Cost reads every events.ndjson of the tree (tree_cost.c counts the tokens
 * and caches the sums per file); the price formula is applied here. */
#include "tree.h"
#include "tree_cost.h"

#include "sessions.h"

#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/pynum.h"
#include "agenttrace/store.h"
#include "agenttrace/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREE_MAX_LEVEL 5       /* nodes at this tree depth are not expanded */
#define TREE_MAX_NODES 1000000 /* guards against pathological stores */

/* ---- Python numbers -------------------------------------------------------- */

/* Python truthiness of a raw compact JSON value (NULL = unset = false). */
static bool raw_truthy(const char *raw, size_t n)
{
    if (!raw)
        return false;
    static const char *const falsy[] = {"null", "false", "\"\"", "0", "0.0", "-0.0", "[]", "{}"};
    for (size_t k = 0; k < sizeof falsy / sizeof falsy[0]; k++)
        if (strlen(falsy[k]) == n && memcmp(falsy[k], raw, n) == 0)
            return false;
    return true;
}

/* ---- sessions --------------------------------------------------------------- */

typedef struct {
    char *dir; /* directory name */
    at_meta meta;
    at_buf sid;      /* decoded meta session_id */
    at_buf parent;   /* decoded parent_session_id */
    bool has_parent; /* parent_session_id is a string */
    double started;  /* started_at, 0.0 when unset */
    bool cost_done;
    double cost; /* unrounded estimate */
} tsess;

typedef struct tnode {
    tsess *s;
    int level; /* depth in the tree, root 0 */
    bool last; /* last child of its parent */
    at_pynum tool_calls, llm_requests, errors, duration;
    double cost;
    struct tnode **kids;
    size_t nkids;
} tnode;

typedef struct {
    const char *root; /* the storage directory, or NULL: ... */
    at_store *store;  /* ... a database store's sessions */
    tsess *ss;
    size_t n, cap;
    size_t nodes;
    at_error *err;
} tctx;

static void tsess_fini(tsess *s)
{
    free(s->dir);
    at_meta_fini(&s->meta);
    at_buf_fini(&s->sid);
    at_buf_fini(&s->parent);
}

static int cmp_bytes(const at_buf *a, const at_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* The session listing order: started_at descending, then session_id
 * descending (directory name as a last, deterministic tie-break). */
static int cmp_listing(const void *pa, const void *pb)
{
    const tsess *a = pa, *b = pb;
    if (a->started != b->started)
        return a->started > b->started ? -1 : 1;
    int c = cmp_bytes(&a->sid, &b->sid);
    if (c)
        return -c;
    return -strcmp(a->dir, b->dir);
}

/* Adds session `name` with meta m (taken) to the listing; false when
 * agent-strace would leave it out. */
static bool add_session(tctx *t, const char *name, at_meta *m, at_result *r)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        tsess *p = realloc(t->ss, nc * sizeof *p);
        if (!p) {
            *r = AT_ERR_NOMEM;
            return false;
        }
        t->ss = p;
        t->cap = nc;
    }
    tsess *s = &t->ss[t->n];
    memset(s, 0, sizeof *s);
    s->meta = *m;
    at_meta_init(m);
    at_buf_init(&s->sid, AT_MAX_SESSION_ID * 4);
    at_buf_init(&s->parent, AT_MAX_META_BYTES);
    if (at_meta_get_string(&s->meta, AT_META_SESSION_ID, &s->sid) != AT_OK || !(s->dir = strdup(name))) {
        tsess_fini(s);
        return false;
    }
    at_result pr = at_meta_get_string(&s->meta, AT_META_PARENT_SESSION_ID, &s->parent);
    s->has_parent = pr == AT_OK;
    if (pr == AT_ERR_NOMEM) {
        tsess_fini(s);
        *r = AT_ERR_NOMEM;
        return false;
    }
    s->started = at_meta_get_number(&s->meta, AT_META_STARTED_AT, 0.0);
    t->n++;
    return true;
}

/* The listing of a database store: every session with its meta. */
static at_result load_listing_store(tctx *t)
{
    char **ids;
    size_t n;
    at_result r = at_store_list(t->store, &ids, &n, t->err);
    if (r != AT_OK)
        return r;
    for (size_t i = 0; i < n && r == AT_OK; i++) {
        at_meta m;
        at_meta_init(&m);
        if (at_store_meta_load(t->store, ids[i], &m, NULL) == AT_OK)
            add_session(t, ids[i], &m, &r);
        at_meta_fini(&m);
    }
    at_store_list_free(ids, n);
    if (r != AT_OK)
        return at_error_set(t->err, r, -1, "cannot list sessions");
    if (t->n > 1)
        qsort(t->ss, t->n, sizeof *t->ss, cmp_listing);
    return AT_OK;
}

/* Loads every <root>/<name>/meta.json that agent-strace would list. */
static at_result load_listing(tctx *t)
{
    if (!t->root)
        return load_listing_store(t);
    DIR *d = opendir(t->root);
    if (!d)
        return at_error_set(t->err, errno == ENOENT ? AT_ERR_NOT_FOUND : AT_ERR_IO, -1, "%s: %s", t->root,
                            strerror(errno));
    at_result r = AT_OK;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (!at_session_id_ok(e->d_name, nl))
            continue;
        if (at_storage_path(t->root, AT_PATH_META, e->d_name, path, sizeof path) != AT_OK)
            continue;
        at_meta m;
        at_meta_init(&m);
        at_error lerr;
        /* unreadable or invalid metas are left out, as a listing would */
        if (at_meta_load(&m, path, &lerr) == AT_OK)
            add_session(t, e->d_name, &m, &r);
        at_meta_fini(&m);
        if (r != AT_OK)
            break;
    }
    closedir(d);
    if (r != AT_OK)
        return at_error_set(t->err, r, -1, "cannot list sessions");
    if (t->n > 1)
        qsort(t->ss, t->n, sizeof *t->ss, cmp_listing);
    return AT_OK;
}

/* ---- cost --------------------------------------------------------------------- */

/* agent-strace's estimate for model "sonnet" over one session's events. The
 * token sums are integers (tree_cost.c caches them exactly); the price is
 * applied here. */
static at_result session_cost(tctx *t, tsess *s)
{
    if (s->cost_done)
        return AT_OK;
    char path[PATH_MAX];
    bool fits = t->root && at_storage_path(t->root, AT_PATH_EVENTS, s->dir, path, sizeof path) == AT_OK;
    s->cost_done = true;
    s->cost = 0.0;
    int64_t tin, tout;
    at_result r;
    if (!t->root) { /* a database store: the current version's object */
        at_object_reader *rd = NULL;
        if ((r = at_store_open_version(t->store, s->dir, 0, &rd, t->err)) == AT_OK)
            r = tree_cost_tokens_object(rd, &tin, &tout, t->err);
        at_object_reader_free(rd);
        if (r == AT_ERR_NOT_FOUND)
            return AT_OK; /* gone meanwhile: no events, no tokens */
        if (r != AT_OK)
            return r;
        s->cost = (double)tin / 1e6 * 3.0 + (double)tout / 1e6 * 15.0;
        return AT_OK;
    }
    if (!fits)
        return AT_OK;
    r = tree_cost_tokens(path, &tin, &tout, t->err);
    if (r != AT_OK)
        return r;
    s->cost = (double)tin / 1e6 * 3.0 + (double)tout / 1e6 * 15.0;
    return AT_OK;
}

/* ---- building ------------------------------------------------------------------ */

static void node_free(tnode *n)
{
    if (!n)
        return;
    for (size_t k = 0; k < n->nkids; k++)
        node_free(n->kids[k]);
    free(n->kids);
    free(n);
}

static at_result counter(tctx *t, tsess *s, at_meta_field f, at_pynum *out)
{
    if (!s->meta.raw[f]) {
        *out = at_pynum_from_int(0);
        return AT_OK;
    }
    /* int tokens over 18 characters become floats: how tree.c always read meta */
    if (!at_pynum_parse_json(s->meta.raw[f], s->meta.len[f], out))
        return at_error_set(t->err, AT_ERR_INVALID, -1, "session %s: %s is not a number", s->dir,
                            at_meta_field_name(f));
    return AT_OK;
}

static at_result node_build(tctx *t, tsess *s, int level, tnode **out)
{
    *out = NULL;
    if (++t->nodes > TREE_MAX_NODES)
        return at_error_set(t->err, AT_ERR_TOO_BIG, -1, "session tree too large");
    tnode *n = calloc(1, sizeof *n);
    if (!n)
        return at_error_set(t->err, AT_ERR_NOMEM, -1, "out of memory");
    n->s = s;
    n->level = level;
    at_result r;
    at_pynum tdm, st, en;
    if ((r = counter(t, s, AT_META_TOOL_CALLS, &n->tool_calls)) != AT_OK ||
        (r = counter(t, s, AT_META_LLM_REQUESTS, &n->llm_requests)) != AT_OK ||
        (r = counter(t, s, AT_META_ERRORS, &n->errors)) != AT_OK ||
        (r = counter(t, s, AT_META_TOTAL_DURATION_MS, &tdm)) != AT_OK ||
        (r = counter(t, s, AT_META_STARTED_AT, &st)) != AT_OK ||
        (r = counter(t, s, AT_META_ENDED_AT, &en)) != AT_OK)
        goto fail;
    at_pynum dur;
    if (at_pynum_truthy(tdm)) {
        dur = at_pynum_from_double(at_pynum_to_double(tdm) / 1000.0);
    } else if (at_pynum_truthy(en) && at_pynum_truthy(st)) {
        at_pynum diff = at_pynum_sub(en, st);
        dur = at_pynum_to_double(diff) > 0 ? diff : at_pynum_from_int(0); /* max(0, diff) */
    } else {
        dur = at_pynum_from_double(0.0);
    }
    n->duration = at_pynum_round(dur, 3);
    if ((r = session_cost(t, s)) != AT_OK)
        goto fail;
    n->cost = s->cost;
    if (level >= TREE_MAX_LEVEL) {
        *out = n;
        return AT_OK;
    }
    /* children: the listing filtered, then stably sorted by started_at */
    size_t nc = 0;
    for (size_t k = 0; k < t->n; k++)
        if (t->ss[k].has_parent && cmp_bytes(&t->ss[k].parent, &s->sid) == 0)
            nc++;
    if (nc == 0) {
        *out = n;
        return AT_OK;
    }
    tsess **cs = malloc(nc * sizeof *cs);
    n->kids = calloc(nc, sizeof *n->kids);
    if (!cs || !n->kids) {
        free(cs);
        r = at_error_set(t->err, AT_ERR_NOMEM, -1, "out of memory");
        goto fail;
    }
    size_t j = 0;
    for (size_t k = 0; k < t->n; k++)
        if (t->ss[k].has_parent && cmp_bytes(&t->ss[k].parent, &s->sid) == 0)
            cs[j++] = &t->ss[k];
    for (size_t k = 1; k < nc; k++) { /* insertion sort: stable */
        tsess *v = cs[k];
        size_t i = k;
        while (i > 0 && cs[i - 1]->started > v->started) {
            cs[i] = cs[i - 1];
            i--;
        }
        cs[i] = v;
    }
    n->nkids = nc;
    for (size_t k = 0; k < nc; k++) {
        if ((r = node_build(t, cs[k], level + 1, &n->kids[k])) != AT_OK) {
            free(cs);
            goto fail;
        }
        n->kids[k]->last = k + 1 == nc;
    }
    free(cs);
    *out = n;
    return AT_OK;
fail:
    node_free(n);
    return r;
}

typedef struct {
    size_t sessions;
    double cost;
    at_pynum tool_calls, llm_requests, errors;
} totals;

static void sum_tree(const tnode *n, totals *tt)
{
    tt->sessions++;
    tt->cost += n->cost;
    tt->tool_calls = at_pynum_add(tt->tool_calls, n->tool_calls);
    tt->llm_requests = at_pynum_add(tt->llm_requests, n->llm_requests);
    tt->errors = at_pynum_add(tt->errors, n->errors);
    for (size_t k = 0; k < n->nkids; k++)
        sum_tree(n->kids[k], tt);
}

/* ---- JSON (indent=2, sort_keys=True) --------------------------------------------- */

static at_result indent(at_buf *b, int level)
{
    at_result r = at_buf_addc(b, '\n');
    for (int k = 0; r == AT_OK && k < level; k++)
        r = at_buf_add(b, "  ", 2);
    return r;
}

typedef struct {
    at_buf key;
    uint32_t val;
} kv;

static int cmp_kv(const void *pa, const void *pb)
{
    return cmp_bytes(&((const kv *)pa)->key, &((const kv *)pb)->key);
}

/* json.dumps(value, indent=2, sort_keys=True) of parsed node i at level. */
static at_result emit_sorted(at_buf *b, const at_json_doc *d, uint32_t i, int level)
{
    at_json_type ty = at_json_typeof(d, i);
    if (ty != AT_JSON_OBJECT && ty != AT_JSON_ARRAY)
        return at_json_emit(b, d, i, &AT_JSON_COMPACT, 0);
    const at_json_node *nd = at_json_node_at(d, i);
    if (nd->len == 0)
        return at_buf_adds(b, ty == AT_JSON_OBJECT ? "{}" : "[]");
    at_result r = at_buf_addc(b, ty == AT_JSON_OBJECT ? '{' : '[');
    if (ty == AT_JSON_ARRAY) {
        bool first = true;
        for (uint32_t c = at_json_first(d, i); r == AT_OK && c != AT_JSON_NONE; c = at_json_next(d, i, c)) {
            if (!first)
                r = at_buf_addc(b, ',');
            first = false;
            if (r == AT_OK)
                r = indent(b, level + 1);
            if (r == AT_OK)
                r = emit_sorted(b, d, c, level + 1);
        }
    } else {
        kv *m = calloc(nd->len, sizeof *m);
        if (!m)
            return AT_ERR_NOMEM;
        size_t cnt = 0;
        for (uint32_t c = at_json_first(d, i); r == AT_OK && c != AT_JSON_NONE; c = at_json_next(d, i, c)) {
            at_buf_init(&m[cnt].key, 0);
            m[cnt].val = c + 1;
            r = at_json_str_decode(d, c, &m[cnt].key);
            cnt++;
        }
        if (r == AT_OK)
            qsort(m, cnt, sizeof *m, cmp_kv);
        /* raw meta values were written once already: no duplicate keys left */
        for (size_t k = 0; r == AT_OK && k < cnt; k++) {
            if (k)
                r = at_buf_addc(b, ',');
            if (r == AT_OK)
                r = indent(b, level + 1);
            if (r == AT_OK)
                r = at_json_write_wtf8(b, m[k].key.data ? m[k].key.data : "", m[k].key.len);
            if (r == AT_OK)
                r = at_buf_add(b, ": ", 2);
            if (r == AT_OK)
                r = emit_sorted(b, d, m[k].val, level + 1);
        }
        for (size_t k = 0; k < cnt; k++)
            at_buf_fini(&m[k].key);
        free(m);
    }
    if (r == AT_OK)
        r = indent(b, level);
    if (r == AT_OK)
        r = at_buf_addc(b, ty == AT_JSON_OBJECT ? '}' : ']');
    return r;
}

/* A raw meta value (compact JSON) written pretty and sorted; dflt when unset. */
static at_result emit_raw(at_buf *b, const char *raw, size_t n, const char *dflt, int level)
{
    if (!raw)
        return at_buf_adds(b, dflt);
    if (raw[0] != '{' && raw[0] != '[')
        return at_buf_add(b, raw, n);
    at_json_doc d;
    at_json_doc_init(&d);
    at_error perr;
    at_result r = at_json_parse(&d, raw, n, &perr);
    if (r == AT_OK)
        r = emit_sorted(b, &d, 0, level);
    at_json_doc_fini(&d);
    return r;
}

/* agent = agent_name or command or "" (raw JSON, NULL for "") */
static at_meta_field agent_field(const tsess *s)
{
    if (raw_truthy(s->meta.raw[AT_META_AGENT_NAME], s->meta.len[AT_META_AGENT_NAME]))
        return AT_META_AGENT_NAME;
    if (raw_truthy(s->meta.raw[AT_META_COMMAND], s->meta.len[AT_META_COMMAND]))
        return AT_META_COMMAND;
    return AT_META_NFIELDS;
}

#define PUTKEY(b, lvl, k, first)                                                                             \
    do {                                                                                                     \
        if (r == AT_OK && !(first))                                                                          \
            r = at_buf_addc(b, ',');                                                                         \
        if (r == AT_OK)                                                                                      \
            r = indent(b, lvl);                                                                              \
        if (r == AT_OK)                                                                                      \
            r = at_buf_adds(b, "\"" k "\": ");                                                               \
    } while (0)

static at_result emit_node(at_buf *b, const tnode *n, int level)
{
    const at_meta *m = &n->s->meta;
    at_result r = at_buf_addc(b, '{');
    int l1 = level + 1;
    at_meta_field af = agent_field(n->s);
    PUTKEY(b, l1, "agent", 1);
    if (r == AT_OK)
        r = af == AT_META_NFIELDS ? at_buf_adds(b, "\"\"") : emit_raw(b, m->raw[af], m->len[af], "", l1);
    PUTKEY(b, l1, "children", 0);
    if (r == AT_OK && n->nkids == 0)
        r = at_buf_adds(b, "[]");
    else if (r == AT_OK) {
        r = at_buf_addc(b, '[');
        for (size_t k = 0; r == AT_OK && k < n->nkids; k++) {
            if (k)
                r = at_buf_addc(b, ',');
            if (r == AT_OK)
                r = indent(b, l1 + 1);
            if (r == AT_OK)
                r = emit_node(b, n->kids[k], l1 + 1);
        }
        if (r == AT_OK)
            r = indent(b, l1);
        if (r == AT_OK)
            r = at_buf_addc(b, ']');
    }
    PUTKEY(b, l1, "cost_usd", 0);
    if (r == AT_OK)
        r = at_json_write_double(b, at_pynum_round_double(n->cost, 6));
    PUTKEY(b, l1, "depth", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_DEPTH], m->len[AT_META_DEPTH], "0", l1);
    PUTKEY(b, l1, "duration_s", 0);
    if (r == AT_OK)
        r = at_pynum_write(b, n->duration);
    PUTKEY(b, l1, "errors", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_ERRORS], m->len[AT_META_ERRORS], "0", l1);
    PUTKEY(b, l1, "llm_requests", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_LLM_REQUESTS], m->len[AT_META_LLM_REQUESTS], "0", l1);
    PUTKEY(b, l1, "parent_event_id", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_PARENT_EVENT_ID], m->len[AT_META_PARENT_EVENT_ID], "\"\"", l1);
    PUTKEY(b, l1, "parent_session_id", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_PARENT_SESSION_ID], m->len[AT_META_PARENT_SESSION_ID], "\"\"", l1);
    PUTKEY(b, l1, "session_id", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_SESSION_ID], m->len[AT_META_SESSION_ID], "\"\"", l1);
    PUTKEY(b, l1, "status", 0);
    if (r == AT_OK)
        r = at_buf_adds(b, at_pynum_truthy(n->errors) ? "\"error\"" : "\"ok\"");
    PUTKEY(b, l1, "tool_calls", 0);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_TOOL_CALLS], m->len[AT_META_TOOL_CALLS], "0", l1);
    if (r == AT_OK)
        r = indent(b, level);
    if (r == AT_OK)
        r = at_buf_addc(b, '}');
    return r;
}

static at_result emit_json(at_buf *b, const tnode *root, const totals *tt)
{
    const at_meta *m = &root->s->meta;
    at_result r = at_buf_addc(b, '{');
    PUTKEY(b, 1, "root_session_id", 1);
    if (r == AT_OK)
        r = emit_raw(b, m->raw[AT_META_SESSION_ID], m->len[AT_META_SESSION_ID], "\"\"", 1);
    PUTKEY(b, 1, "total_cost_usd", 0);
    if (r == AT_OK)
        r = at_json_write_double(b, at_pynum_round_double(tt->cost, 6));
    PUTKEY(b, 1, "total_errors", 0);
    if (r == AT_OK)
        r = at_pynum_write(b, tt->errors);
    PUTKEY(b, 1, "total_llm_requests", 0);
    if (r == AT_OK)
        r = at_pynum_write(b, tt->llm_requests);
    PUTKEY(b, 1, "total_sessions", 0);
    if (r == AT_OK)
        r = at_buf_printf(b, "%zu", tt->sessions);
    PUTKEY(b, 1, "total_tool_calls", 0);
    if (r == AT_OK)
        r = at_pynum_write(b, tt->tool_calls);
    PUTKEY(b, 1, "tree", 0);
    if (r == AT_OK)
        r = emit_node(b, root, 1);
    if (r == AT_OK)
        r = at_buf_adds(b, "\n}\n");
    return r;
}

/* ---- text ------------------------------------------------------------------------ */

/* str() of a meta value for f-strings: strings decoded, others as raw JSON. */
static at_result put_str(at_buf *b, const at_meta *m, at_meta_field f, size_t max_cp, size_t pad)
{
    at_buf s;
    at_buf_init(&s, 0);
    at_result r = AT_OK;
    if (f != AT_META_NFIELDS && m->raw[f]) {
        r = at_meta_get_string(m, f, &s);
        if (r == AT_ERR_NOT_FOUND) {
            at_buf_reset(&s);
            r = at_buf_add(&s, m->raw[f], m->len[f]);
        }
    }
    if (r == AT_OK) {
        const char *p = s.data ? s.data : "";
        size_t n = at_wtf8_prefix(p, s.len, max_cp);
        size_t cps = at_wtf8_count(p, n);
        r = at_buf_add(b, p, n);
        for (size_t k = cps; r == AT_OK && k < pad; k++)
            r = at_buf_addc(b, ' ');
    }
    at_buf_fini(&s);
    return r;
}

static at_result text_node(at_buf *b, const tnode *n)
{
    at_result r = AT_OK;
    if (n->level > 0) {
        for (int k = 0; r == AT_OK && k < n->level - 1; k++)
            r = at_buf_adds(b, "\xe2\x94\x82  "); /* "│  " */
        if (r == AT_OK)
            r = at_buf_adds(b, n->last ? "\xe2\x94\x94\xe2\x94\x80 " /* "└─ " */
                                       : "\xe2\x94\x9c\xe2\x94\x80 " /* "├─ " */);
    }
    const at_meta *m = &n->s->meta;
    if (r == AT_OK)
        r = put_str(b, m, AT_META_SESSION_ID, 12, 0);
    if (r == AT_OK)
        r = at_buf_add(b, "  ", 2);
    if (r == AT_OK)
        r = put_str(b, m, agent_field(n->s), 28, 28);
    if (r == AT_OK)
        r = at_buf_printf(b, "  $%.4f  ", at_pynum_round_double(n->cost, 6));
    if (r == AT_OK)
        r = at_pynum_write(b, n->tool_calls);
    if (r == AT_OK)
        r = at_buf_printf(b, " tools  %.1fs  %s", at_pynum_to_double(n->duration),
                          at_pynum_truthy(n->errors) ? "\xe2\x9c\x97" /* ✗ */ : "\xe2\x9c\x93" /* ✓ */);
    if (r == AT_OK && at_pynum_truthy(n->errors)) {
        r = at_buf_add(b, "  ", 2);
        if (r == AT_OK)
            r = at_pynum_write(b, n->errors);
        if (r == AT_OK)
            r = at_buf_adds(b, " errors");
    }
    if (r == AT_OK)
        r = at_buf_addc(b, '\n');
    for (size_t k = 0; r == AT_OK && k < n->nkids; k++)
        r = text_node(b, n->kids[k]);
    return r;
}

static at_result emit_text(at_buf *b, const tnode *root, const totals *tt)
{
    at_result r = at_buf_adds(b, "\nSession tree for ");
    if (r == AT_OK)
        r = put_str(b, &root->s->meta, AT_META_SESSION_ID, 12, 0);
    if (r == AT_OK)
        r = at_buf_adds(b, "\n\n");
    if (r == AT_OK)
        r = text_node(b, root);
    if (r == AT_OK)
        r = at_buf_printf(b, "\nTotal: %zu sessions, $%.4f, ", tt->sessions,
                          at_pynum_round_double(tt->cost, 6));
    if (r == AT_OK)
        r = at_pynum_write(b, tt->tool_calls);
    if (r == AT_OK)
        r = at_buf_adds(b, " tool calls, ");
    if (r == AT_OK)
        r = at_pynum_write(b, tt->llm_requests);
    if (r == AT_OK)
        r = at_buf_adds(b, " LLM requests");
    if (r == AT_OK && at_pynum_truthy(tt->errors)) {
        r = at_buf_adds(b, ", ");
        if (r == AT_OK)
            r = at_pynum_write(b, tt->errors);
        if (r == AT_OK)
            r = at_buf_adds(b, " errors");
    }
    if (r == AT_OK)
        r = at_buf_adds(b, "\n\n");
    return r;
}

/* ---- entry points ------------------------------------------------------------------ */

static at_result render(tctx t, const char *session_dir, bool text, at_buf *out, at_error *err);

at_result tree_render(const char *root, const char *session_dir, bool text, at_buf *out, at_error *err)
{
    return render((tctx){.root = root, .err = err}, session_dir, text, out, err);
}

at_result tree_render_store(at_store *s, const char *sid, bool text, at_buf *out, at_error *err)
{
    return render((tctx){.store = s, .err = err}, sid, text, out, err);
}

static at_result render(tctx t, const char *session_dir, bool text, at_buf *out, at_error *err)
{
    tnode *tree = NULL;
    at_result r = load_listing(&t);
    if (r != AT_OK)
        goto out;
    tsess *rs = NULL;
    for (size_t k = 0; k < t.n; k++)
        if (strcmp(t.ss[k].dir, session_dir) == 0)
            rs = &t.ss[k];
    if (!rs) {
        r = at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", session_dir);
        goto out;
    }
    if ((r = node_build(&t, rs, 0, &tree)) != AT_OK)
        goto out;
    totals tt = {0, 0.0, at_pynum_from_int(0), at_pynum_from_int(0), at_pynum_from_int(0)};
    sum_tree(tree, &tt);
    size_t mark = out->len;
    r = text ? emit_text(out, tree, &tt) : emit_json(out, tree, &tt);
    if (r != AT_OK) {
        out->len = mark;
        r = at_error_set(err, r, -1, "cannot write the tree: %s", at_result_str(r));
    }
out:
    node_free(tree);
    for (size_t k = 0; k < t.n; k++)
        tsess_fini(&t.ss[k]);
    free(t.ss);
    return r;
}

void tree_handle(server_ctx *ctx, const char *id, bool text, http_response *resp)
{
    char *sid = NULL;
    if (sessions_resolve(ctx, id, &sid, resp) != 200)
        return;
    at_error err;
    memset(&err, 0, sizeof err);
    at_buf_reset(&resp->body);
    at_result r = ctx->root ? tree_render(ctx->root, sid, text, &resp->body, &err)
                            : tree_render_store(ctx->store, sid, text, &resp->body, &err);
    if (r == AT_OK) {
        resp->status = 200;
        resp->content_type = text ? "text/plain; charset=utf-8" : "application/json";
    } else if (r == AT_ERR_NOT_FOUND) {
        http_response_error(resp, 404, "session not found: %s", id);
    } else {
        http_response_error(resp, 500, "%s", err.message);
    }
    free(sid);
}
