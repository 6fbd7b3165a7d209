/* usage.c - token usage as ccusage 18.0.11 counts it (see usage.h and
 * docs/usage.md), and its cost from data/prices.tsv.
 *
 * ccusage's rules, from its dist/data-loader-*.js (loadSessionData,
 * usageDataSchema, createUniqueHash, calculateCostFromPricing):
 *  - a line is JSON.parse'd (so NaN and Infinity anywhere reject it) and
 *    must match usageDataSchema: timestamp a string matching
 *    ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$; message an object
 *    whose usage is an object with number input_tokens and output_tokens,
 *    optional number cache_creation_input_tokens and cache_read_input_tokens
 *    and optional speed "standard" / "fast"; and, where present (a key
 *    present with null is present): message.model, message.id, requestId,
 *    sessionId non-empty strings, cwd a string, version a string starting
 *    \d+.\d+.\d+, costUSD a number, isApiErrorMessage a boolean,
 *    message.content an array of objects whose text, where present, is a
 *    string. The entry's type does not matter.
 *  - a line with both message.id and requestId counts once per
 *    "<id>:<requestId>" (the first one counts); others always count.
 *    (ccusage keeps the strings in a Set; we keep a 128-bit hash of each.)
 *  - a count of a kind prices as 0 when <= 0; beyond 200,000 tokens in one
 *    message it takes the *_above_200k price when the model has one.
 * Where ccusage differs from this: costUSD in a line (ccusage's "auto" mode
 * prefers it) is not used, and a model the table does not name, exactly or
 * with one of ccusage's provider prefixes, is unpriced (ccusage then tries
 * a substring match, which can pick any model). */
#include "agenttrace/usage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* static const at_price price_rows[]: generated from data/prices.tsv by
 * src/import/gen_prices.awk */
#include "prices.inc"

void at_usage_init(at_usage *u)
{
    memset(u, 0, sizeof *u);
    at_buf_init(&u->scratch, 2 * AT_MAX_LINE_BYTES);
}

void at_usage_fini(at_usage *u)
{
    for (size_t i = 0; i < u->nmodels; i++)
        free(u->models[i].model);
    free(u->models);
    free(u->days);
    free(u->ids);
    free(u->slots);
    at_buf_fini(&u->scratch);
    memset(u, 0, sizeof *u);
    at_buf_init(&u->scratch, 2 * AT_MAX_LINE_BYTES);
}

/* ---- the (message id, request id) set ------------------------------------- */

/* A 128-bit hash of s: two 64-bit multiply-rotate lanes over 8-byte words,
 * each finished with MurmurHash3's fmix64. Not cryptographic (a SHA-256
 * per message cost the importer 1.4%): a collision can only make two
 * messages count once. Saved in import states: never change it. */
static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t rotl64(uint64_t x, int r)
{
    return x << r | x >> (64 - r);
}

static void id_hash(const char *s, size_t n, uint8_t out[16])
{
    uint64_t h1 = 0x9e3779b97f4a7c15ull ^ n, h2 = 0x6a09e667f3bcc909ull ^ (n * 0xff51afd7ed558ccdull);
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w = 0;
        for (int k = 7; k >= 0; k--) /* little-endian whatever the machine */
            w = w << 8 | (uint8_t)s[i + (size_t)k];
        h1 = rotl64((h1 ^ w) * 0x87c37b91114253d5ull, 31);
        h2 = rotl64((h2 ^ rotl64(w, 17)) * 0x4cf5ad432745937full, 29) + h1;
    }
    uint64_t w = 0;
    for (size_t k = n; k > i; k--)
        w = w << 8 | (uint8_t)s[k - 1];
    h1 = fmix64(h1 ^ w ^ 0xa5);
    h2 = fmix64(h2 ^ rotl64(w, 23) ^ h1);
    h1 += h2;
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(h1 >> (8 * k));
        out[8 + k] = (uint8_t)(h2 >> (8 * k));
    }
}

static size_t id_slot(const uint8_t *key, size_t mask)
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* a digest: already uniform */
    return (size_t)h & mask;
}

static bool ids_has(const at_usage *u, const uint8_t *key)
{
    if (!u->nslots)
        return false;
    size_t mask = u->nslots - 1;
    for (size_t i = id_slot(key, mask);; i = (i + 1) & mask) {
        uint32_t s = u->slots[i];
        if (!s)
            return false;
        if (memcmp(u->ids[s - 1], key, 16) == 0)
            return true;
    }
}

static void ids_put_slot(uint32_t *slots, size_t nslots, const uint8_t *key, uint32_t idx)
{
    size_t mask = nslots - 1, i = id_slot(key, mask);
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = idx + 1;
}

/* Adds a key known to be absent; past the cap sets overflow instead. */
static at_result ids_add(at_usage *u, const uint8_t *key)
{
    if (u->nids >= AT_MAX_USAGE_IDS) {
        u->overflow = true;
        return AT_OK;
    }
    if (u->nids == u->ids_cap) {
        size_t cap = u->ids_cap ? u->ids_cap * 2 : 64;
        void *p = realloc(u->ids, cap * sizeof *u->ids);
        if (!p)
            return AT_ERR_NOMEM;
        u->ids = p;
        u->ids_cap = cap;
    }
    if ((u->nids + 1) * 2 > u->nslots) {
        size_t nslots = u->nslots ? u->nslots * 2 : 128;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return AT_ERR_NOMEM;
        for (size_t j = 0; j < u->nids; j++)
            ids_put_slot(slots, nslots, u->ids[j], (uint32_t)j);
        free(u->slots);
        u->slots = slots;
        u->nslots = nslots;
    }
    memcpy(u->ids[u->nids], key, 16);
    ids_put_slot(u->slots, u->nslots, key, (uint32_t)u->nids);
    u->nids++;
    return AT_OK;
}

at_result at_usage_ids_save(const at_usage *u, at_buf *out)
{
    uint8_t n[4];
    for (int i = 0; i < 4; i++)
        n[i] = (uint8_t)(u->nids >> (8 * i));
    at_result r = at_buf_add(out, n, 4);
    if (r == AT_OK && u->nids)
        r = at_buf_add(out, u->ids, u->nids * 16);
    return r;
}

at_result at_usage_ids_load(at_usage *u, const uint8_t *p, size_t n, size_t *used)
{
    if (n < 4)
        return AT_ERR_INVALID;
    uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (k > AT_MAX_USAGE_IDS || (n - 4) / 16 < k)
        return AT_ERR_INVALID;
    for (uint32_t i = 0; i < k; i++) {
        const uint8_t *key = p + 4 + (size_t)i * 16;
        if (ids_has(u, key))
            return AT_ERR_INVALID;
        at_result r = ids_add(u, key);
        if (r != AT_OK)
            return r;
    }
    *used = 4 + (size_t)k * 16;
    return AT_OK;
}

/* ---- ccusage's schema ------------------------------------------------------ */

/* Values of several keys of object obj in one pass (the last of a repeated
 * key, as JSON.parse keeps). */
static void get_keys(const at_json_doc *d, uint32_t obj, const char *const *keys, const size_t *lens,
                     size_t nk, uint32_t *out)
{
    for (size_t j = 0; j < nk; j++)
        out[j] = AT_JSON_NONE;
    uint32_t end = d->nodes[obj].end;
    for (uint32_t k = obj + 1; k < end; k = d->nodes[k + 1].end) {
        const at_json_node *kn = &d->nodes[k];
        for (size_t j = 0; j < nk; j++) {
            /* an unescaped key's length is its decoded length */
            if ((kn->flags & AT_JSON_STR_ESCAPED)
                    ? at_json_str_eq(d, k, keys[j], lens[j])
                    : kn->len == lens[j] && memcmp(d->src + kn->off, keys[j], lens[j]) == 0) {
                out[j] = k + 1;
                break;
            }
        }
    }
}

static bool is_num(const at_json_doc *d, uint32_t i)
{
    return at_json_is(d, i, AT_JSON_INT) || at_json_is(d, i, AT_JSON_FLOAT);
}

static double num_of(const at_json_doc *d, uint32_t i)
{
    return at_json_parse_double(d->src + d->nodes[i].off, d->nodes[i].len);
}

static bool opt_num(const at_json_doc *d, uint32_t i)
{
    return i == AT_JSON_NONE || is_num(d, i);
}

static bool opt_str(const at_json_doc *d, uint32_t i)
{
    return i == AT_JSON_NONE || at_json_is(d, i, AT_JSON_STRING);
}

static bool opt_nonempty(const at_json_doc *d, uint32_t i)
{
    return i == AT_JSON_NONE || (at_json_is(d, i, AT_JSON_STRING) && d->nodes[i].len > 0);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The text of string node i in buf (decoded when escaped); *n its length.
 * NULL when it does not fit in cap bytes. */
static const char *short_str(const at_json_doc *d, uint32_t i, char *buf, size_t cap, size_t *n)
{
    const at_json_node *nd = &d->nodes[i];
    if (!(nd->flags & AT_JSON_STR_ESCAPED)) {
        *n = nd->len;
        return d->src + nd->off;
    }
    at_buf b;
    at_buf_init(&b, cap);
    const char *res = NULL;
    if (at_json_str_decode(d, i, &b) == AT_OK && b.len <= cap) {
        memcpy(buf, b.data ? b.data : "", b.len);
        *n = b.len;
        res = buf;
    }
    at_buf_fini(&b);
    return res;
}

/* ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$ ; *day = YYYYMMDD */
static bool timestamp_ok(const at_json_doc *d, uint32_t i, int32_t *day)
{
    char buf[32];
    size_t n;
    if (!at_json_is(d, i, AT_JSON_STRING))
        return false;
    const char *s = short_str(d, i, buf, sizeof buf, &n);
    if (!s || (n != 20 && n != 24))
        return false;
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t k = 0; k < 19; k++)
        if (pat[k] == 'd' ? !is_digit(s[k]) : s[k] != pat[k])
            return false;
    if (n == 24 && (s[19] != '.' || !is_digit(s[20]) || !is_digit(s[21]) || !is_digit(s[22])))
        return false;
    if (s[n - 1] != 'Z')
        return false;
    int32_t v = 0;
    for (size_t k = 0; k < 10; k++)
        if (k != 4 && k != 7)
            v = v * 10 + (s[k] - '0');
    *day = v;
    return true;
}

/* ^\d+\.\d+\.\d+ */
static bool version_ok(const at_json_doc *d, uint32_t i)
{
    char buf[64];
    size_t n;
    if (!at_json_is(d, i, AT_JSON_STRING))
        return false;
    const char *s = short_str(d, i, buf, sizeof buf, &n);
    if (!s) /* long: only its start matters, and an escape there is rare */
        s = d->src + d->nodes[i].off, n = d->nodes[i].len;
    size_t k = 0;
    for (int part = 0; part < 3; part++) {
        if (part && (k >= n || s[k++] != '.'))
            return false;
        size_t start = k;
        while (k < n && is_digit(s[k]))
            k++;
        if (k == start)
            return false;
    }
    return true;
}

static bool content_ok(const at_json_doc *d, uint32_t c)
{
    if (c == AT_JSON_NONE)
        return true;
    if (!at_json_is(d, c, AT_JSON_ARRAY))
        return false;
    for (uint32_t b = at_json_first(d, c); b != AT_JSON_NONE; b = at_json_next(d, c, b)) {
        if (at_json_is(d, b, AT_JSON_ARRAY))
            continue; /* an object to valibot, without a text key */
        if (!at_json_is(d, b, AT_JSON_OBJECT) || !opt_str(d, at_json_get(d, b, "text")))
            return false;
    }
    return true;
}

/* NaN, Infinity and -Infinity: Python's json takes them, JSON.parse not. */
static bool strict_json(const at_json_doc *d)
{
    for (uint32_t i = 0; i < d->count; i++) {
        const at_json_node *nd = &d->nodes[i];
        if (nd->type != AT_JSON_FLOAT)
            continue;
        char c = d->src[nd->off];
        if (c == 'N' || c == 'I' || (c == '-' && d->src[nd->off + 1] == 'I'))
            return false;
    }
    return true;
}

/* ---- sums ------------------------------------------------------------------ */

static void sums_count(at_usage_sums *s, const double t[AT_TOK_KINDS])
{
    s->messages++;
    for (int k = 0; k < AT_TOK_KINDS; k++) {
        s->tokens[k] += t[k];
        if (t[k] > 0)
            s->priced[k] += t[k];
        if (t[k] > AT_USAGE_TIER_TOKENS)
            s->above[k] += t[k] - AT_USAGE_TIER_TOKENS;
    }
}

void at_usage_sums_add(at_usage_sums *a, const at_usage_sums *b)
{
    a->messages += b->messages;
    for (int k = 0; k < AT_TOK_KINDS; k++) {
        a->tokens[k] += b->tokens[k];
        a->priced[k] += b->priced[k];
        a->above[k] += b->above[k];
    }
}

/* The index of (model, fast), added when new; -1 past the cap or for
 * memory (*r says which). */
static long model_index(at_usage *u, const char *name, size_t n, bool fast, at_result *r)
{
    *r = AT_OK;
    for (size_t i = 0; i < u->nmodels; i++) {
        const at_usage_model *m = &u->models[i];
        if (m->fast == fast &&
            (name ? m->model && strlen(m->model) == n && memcmp(m->model, name, n) == 0 : !m->model))
            return (long)i;
    }
    if (u->nmodels >= AT_MAX_USAGE_MODELS) {
        u->overflow = true;
        return -1;
    }
    if (u->nmodels == u->models_cap) {
        size_t cap = u->models_cap ? u->models_cap * 2 : 4;
        void *p = realloc(u->models, cap * sizeof *u->models);
        if (!p) {
            *r = AT_ERR_NOMEM;
            return -1;
        }
        u->models = p;
        u->models_cap = cap;
    }
    at_usage_model *m = &u->models[u->nmodels];
    memset(m, 0, sizeof *m);
    m->fast = fast;
    if (name) {
        if (!(m->model = malloc(n + 1))) {
            *r = AT_ERR_NOMEM;
            return -1;
        }
        memcpy(m->model, name, n);
        m->model[n] = 0;
    }
    return (long)u->nmodels++;
}

static at_usage_day *day_bucket(at_usage *u, int32_t day, uint32_t model, at_result *r)
{
    *r = AT_OK;
    /* messages come in time order: the bucket is almost always a recent one */
    for (size_t i = u->ndays; i-- > 0;)
        if (u->days[i].day == day && u->days[i].model == model)
            return &u->days[i];
    if (u->ndays >= AT_MAX_USAGE_DAYS) {
        u->overflow = true;
        return NULL;
    }
    if (u->ndays == u->days_cap) {
        size_t cap = u->days_cap ? u->days_cap * 2 : 4;
        void *p = realloc(u->days, cap * sizeof *u->days);
        if (!p) {
            *r = AT_ERR_NOMEM;
            return NULL;
        }
        u->days = p;
        u->days_cap = cap;
    }
    at_usage_day *b = &u->days[u->ndays++];
    memset(b, 0, sizeof *b);
    b->day = day;
    b->model = model;
    return b;
}

/* ---- a line ---------------------------------------------------------------- */

enum { K_MESSAGE, K_TIMESTAMP, K_CWD, K_SESSION, K_VERSION, K_COST, K_REQUEST, K_APIERR, NK_TOP };
static const char *const top_keys[NK_TOP] = {"message", "timestamp", "cwd",       "sessionId",
                                             "version", "costUSD",   "requestId", "isApiErrorMessage"};
static const size_t top_lens[NK_TOP] = {7, 9, 3, 9, 7, 7, 9, 17};
enum { M_USAGE, M_MODEL, M_ID, M_CONTENT, NK_MSG };
static const char *const msg_keys[NK_MSG] = {"usage", "model", "id", "content"};
static const size_t msg_lens[NK_MSG] = {5, 5, 2, 7};
enum { U_IN, U_OUT, U_CC, U_CR, U_SPEED, NK_USAGE };
static const char *const usage_keys[NK_USAGE] = {
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "speed"};
static const size_t usage_lens[NK_USAGE] = {12, 13, 27, 23, 5};

at_result at_usage_add(at_usage *u, const at_json_doc *d, uint32_t msg)
{
    /* cheap first: most lines have no message.usage object */
    if (!at_json_is(d, msg, AT_JSON_OBJECT))
        return AT_OK;
    uint32_t mv[NK_MSG];
    get_keys(d, msg, msg_keys, msg_lens, NK_MSG, mv);
    if (!at_json_is(d, mv[M_USAGE], AT_JSON_OBJECT))
        return AT_OK;
    uint32_t uv[NK_USAGE];
    get_keys(d, mv[M_USAGE], usage_keys, usage_lens, NK_USAGE, uv);
    if (!is_num(d, uv[U_IN]) || !is_num(d, uv[U_OUT]) || !opt_num(d, uv[U_CC]) || !opt_num(d, uv[U_CR]))
        return AT_OK;
    bool fast = false;
    if (uv[U_SPEED] != AT_JSON_NONE) {
        if (at_json_is(d, uv[U_SPEED], AT_JSON_STRING) && at_json_str_eq(d, uv[U_SPEED], "fast", 4))
            fast = true;
        else if (!at_json_is(d, uv[U_SPEED], AT_JSON_STRING) ||
                 !at_json_str_eq(d, uv[U_SPEED], "standard", 8))
            return AT_OK;
    }
    if (!opt_nonempty(d, mv[M_MODEL]) || !opt_nonempty(d, mv[M_ID]) || !content_ok(d, mv[M_CONTENT]))
        return AT_OK;
    uint32_t tv[NK_TOP];
    int32_t day;
    get_keys(d, 0, top_keys, top_lens, NK_TOP, tv);
    if (!timestamp_ok(d, tv[K_TIMESTAMP], &day) || !opt_str(d, tv[K_CWD]) ||
        !opt_nonempty(d, tv[K_SESSION]) || (tv[K_VERSION] != AT_JSON_NONE && !version_ok(d, tv[K_VERSION])) ||
        !opt_num(d, tv[K_COST]) || !opt_nonempty(d, tv[K_REQUEST]) ||
        !(tv[K_APIERR] == AT_JSON_NONE || at_json_is(d, tv[K_APIERR], AT_JSON_TRUE) ||
          at_json_is(d, tv[K_APIERR], AT_JSON_FALSE)) ||
        !strict_json(d))
        return AT_OK;

    at_result r;
    at_buf *tmp = &u->scratch;
    at_buf_reset(tmp);
    if (mv[M_ID] != AT_JSON_NONE && tv[K_REQUEST] != AT_JSON_NONE) {
        uint8_t key[16];
        if ((r = at_json_str_decode(d, mv[M_ID], tmp)) != AT_OK || (r = at_buf_addc(tmp, ':')) != AT_OK ||
            (r = at_json_str_decode(d, tv[K_REQUEST], tmp)) != AT_OK)
            return r;
        id_hash(tmp->data, tmp->len, key);
        if (ids_has(u, key))
            return AT_OK; /* counted already */
        if ((r = ids_add(u, key)) != AT_OK)
            return r;
        at_buf_reset(tmp);
    }
    double t[AT_TOK_KINDS];
    for (int k = 0; k < AT_TOK_KINDS; k++)
        t[k] = uv[k] == AT_JSON_NONE ? 0.0 : num_of(d, uv[k]);
    long mi;
    if (mv[M_MODEL] != AT_JSON_NONE) {
        if ((r = at_json_str_decode(d, mv[M_MODEL], tmp)) != AT_OK)
            return r;
        mi = model_index(u, tmp->data, tmp->len, fast, &r);
    } else {
        mi = model_index(u, NULL, 0, fast, &r);
    }
    if (r != AT_OK)
        return r;
    sums_count(&u->total, t);
    if (mi < 0)
        return AT_OK;
    sums_count(&u->models[mi].sums, t);
    at_usage_day *b = day_bucket(u, day, (uint32_t)mi, &r);
    if (b)
        sums_count(&b->sums, t);
    return r;
}

/* ---- the stored form ----------------------------------------------------------- */

at_result at_usage_write_count(at_buf *out, double v)
{
    if (!isfinite(v))
        return at_buf_adds(out, "null");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return at_buf_printf(out, "%lld", (long long)v);
    return at_json_write_double(out, v);
}

/* Exact doubles (repr round-trips); non-finite ones as strings. */
static at_result write_exact(at_buf *out, double v)
{
    if (isnan(v))
        return at_buf_adds(out, "\"NaN\"");
    if (isinf(v))
        return at_buf_adds(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return at_json_write_double(out, v);
}

static at_result write_sums(at_buf *out, const at_usage_sums *s)
{
    const double *arr[3] = {s->tokens, s->priced, s->above};
    static const char *const names[3] = {"tokens", "priced", "above"};
    at_result r = at_buf_printf(out, "\"messages\": %llu", (unsigned long long)s->messages);
    for (int a = 0; r == AT_OK && a < 3; a++) {
        r = at_buf_printf(out, ", \"%s\": [", names[a]);
        for (int k = 0; r == AT_OK && k < AT_TOK_KINDS; k++) {
            if (k)
                r = at_buf_adds(out, ", ");
            if (r == AT_OK)
                r = write_exact(out, arr[a][k]);
        }
        if (r == AT_OK)
            r = at_buf_addc(out, ']');
    }
    return r;
}

at_result at_usage_write(const at_usage *u, at_buf *out)
{
    at_result r =
        at_buf_printf(out, "{\"format\": 1, \"overflow\": %s, \"total\": {", u->overflow ? "true" : "false");
    if (r == AT_OK)
        r = write_sums(out, &u->total);
    if (r == AT_OK)
        r = at_buf_adds(out, "}, \"models\": [");
    for (size_t i = 0; r == AT_OK && i < u->nmodels; i++) {
        const at_usage_model *m = &u->models[i];
        r = at_buf_adds(out, i ? ", {\"model\": " : "{\"model\": ");
        if (r == AT_OK)
            r = m->model ? at_json_write_wtf8(out, m->model, strlen(m->model)) : at_buf_adds(out, "null");
        if (r == AT_OK)
            r = at_buf_printf(out, ", \"fast\": %s, ", m->fast ? "true" : "false");
        if (r == AT_OK)
            r = write_sums(out, &m->sums);
        if (r == AT_OK)
            r = at_buf_addc(out, '}');
    }
    if (r == AT_OK)
        r = at_buf_adds(out, "], \"days\": [");
    for (size_t i = 0; r == AT_OK && i < u->ndays; i++) {
        const at_usage_day *b = &u->days[i];
        r = at_buf_printf(out, "%s{\"day\": \"%04d-%02d-%02d\", \"model\": %u, ", i ? ", " : "",
                          (int)(b->day / 10000), (int)(b->day / 100 % 100), (int)(b->day % 100), b->model);
        if (r == AT_OK)
            r = write_sums(out, &b->sums);
        if (r == AT_OK)
            r = at_buf_addc(out, '}');
    }
    if (r == AT_OK)
        r = at_buf_adds(out, "]}\n");
    return r;
}

static bool read_double(const at_json_doc *d, uint32_t i, double *v)
{
    if (is_num(d, i)) {
        *v = num_of(d, i);
        return true;
    }
    if (at_json_is(d, i, AT_JSON_STRING)) {
        if (at_json_str_eq(d, i, "NaN", 3))
            *v = NAN;
        else if (at_json_str_eq(d, i, "Infinity", 8))
            *v = INFINITY;
        else if (at_json_str_eq(d, i, "-Infinity", 9))
            *v = -INFINITY;
        else
            return false;
        return true;
    }
    return false;
}

static bool read_sums(const at_json_doc *d, uint32_t obj, at_usage_sums *s)
{
    uint32_t m = at_json_get(d, obj, "messages");
    if (!at_json_is(d, m, AT_JSON_INT) || d->src[d->nodes[m].off] == '-' || num_of(d, m) > 9007199254740992.0)
        return false;
    s->messages = (uint64_t)num_of(d, m);
    const char *names[3] = {"tokens", "priced", "above"};
    double *arr[3] = {s->tokens, s->priced, s->above};
    for (int a = 0; a < 3; a++) {
        uint32_t v = at_json_get(d, obj, names[a]);
        if (!at_json_is(d, v, AT_JSON_ARRAY) || d->nodes[v].len != AT_TOK_KINDS)
            return false;
        int k = 0;
        for (uint32_t e = at_json_first(d, v); e != AT_JSON_NONE; e = at_json_next(d, v, e))
            if (!read_double(d, e, &arr[a][k++]))
                return false;
    }
    return true;
}

at_result at_usage_read(at_usage *u, const char *json, size_t n)
{
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf name;
    at_buf_init(&name, 0);
    at_result r = at_json_parse(&d, json, n, NULL);
    if (r == AT_ERR_NOMEM)
        goto out;
    if (r != AT_OK) {
        r = AT_ERR_INVALID;
        goto out;
    }
    r = AT_ERR_INVALID;
    if (!at_json_is(&d, 0, AT_JSON_OBJECT))
        goto out;
    uint32_t fmt = at_json_get(&d, 0, "format"), ov = at_json_get(&d, 0, "overflow");
    uint32_t total = at_json_get(&d, 0, "total"), models = at_json_get(&d, 0, "models"),
             days = at_json_get(&d, 0, "days");
    if (!at_json_is(&d, fmt, AT_JSON_INT) || num_of(&d, fmt) != 1.0 ||
        !at_json_is(&d, models, AT_JSON_ARRAY) || !at_json_is(&d, days, AT_JSON_ARRAY) ||
        !at_json_is(&d, total, AT_JSON_OBJECT) || !read_sums(&d, total, &u->total))
        goto out;
    u->overflow = at_json_is(&d, ov, AT_JSON_TRUE);
    for (uint32_t e = at_json_first(&d, models); e != AT_JSON_NONE; e = at_json_next(&d, models, e)) {
        uint32_t mn = at_json_get(&d, e, "model");
        bool fast = at_json_is(&d, at_json_get(&d, e, "fast"), AT_JSON_TRUE);
        at_result mr;
        long mi;
        if (at_json_is(&d, mn, AT_JSON_STRING)) {
            at_buf_reset(&name);
            if ((mr = at_json_str_decode(&d, mn, &name)) != AT_OK) {
                r = mr;
                goto out;
            }
            mi = model_index(u, name.data ? name.data : "", name.len, fast, &mr);
        } else if (at_json_is(&d, mn, AT_JSON_NULL)) {
            mi = model_index(u, NULL, 0, fast, &mr);
        } else {
            goto out;
        }
        if (mr != AT_OK) {
            r = mr;
            goto out;
        }
        if (mi < 0 || (size_t)mi != u->nmodels - 1 || !read_sums(&d, e, &u->models[mi].sums))
            goto out; /* repeated or past the cap: not ours */
    }
    for (uint32_t e = at_json_first(&d, days); e != AT_JSON_NONE; e = at_json_next(&d, days, e)) {
        uint32_t dv = at_json_get(&d, e, "day"), mv = at_json_get(&d, e, "model");
        char buf[16];
        size_t dn;
        const char *s;
        if (!at_json_is(&d, dv, AT_JSON_STRING) || !(s = short_str(&d, dv, buf, sizeof buf, &dn)) ||
            dn != 10 || !at_json_is(&d, mv, AT_JSON_INT) || num_of(&d, mv) < 0 ||
            num_of(&d, mv) >= (double)u->nmodels)
            goto out;
        int32_t day = 0;
        for (size_t k = 0; k < 10; k++) {
            if (k == 4 || k == 7) {
                if (s[k] != '-')
                    goto out;
                continue;
            }
            if (!is_digit(s[k]))
                goto out;
            day = day * 10 + (s[k] - '0');
        }
        at_result br;
        at_usage_day *b = day_bucket(u, day, (uint32_t)num_of(&d, mv), &br);
        if (br != AT_OK) {
            r = br;
            goto out;
        }
        if (!b || !read_sums(&d, e, &b->sums))
            goto out;
    }
    r = AT_OK;
out:
    at_buf_fini(&name);
    at_json_doc_fini(&d);
    return r;
}

/* ---- prices ----------------------------------------------------------------------- */

const at_price *at_price_find(const char *model)
{
    static const char *const prefixes[] = {"",          "anthropic/", "claude-3-5-",
                                           "claude-3-", "claude-",    "openrouter/openai/"};
    size_t nrows = sizeof price_rows / sizeof price_rows[0];
    if (!model)
        return NULL;
    size_t ml = strlen(model);
    for (size_t j = 0; j < sizeof prefixes / sizeof *prefixes; j++) {
        size_t pl = strlen(prefixes[j]);
        for (size_t i = 0; i < nrows; i++) {
            const char *name = price_rows[i].model;
            if (strlen(name) == pl + ml && memcmp(name, prefixes[j], pl) == 0 &&
                memcmp(name + pl, model, ml) == 0)
                return &price_rows[i];
        }
    }
    return NULL;
}

double at_usage_cost(const at_usage_sums *s, const at_price *p, bool fast)
{
    double c = 0.0;
    for (int k = 0; k < AT_TOK_KINDS; k++)
        c += p->has_tier[k] ? (s->priced[k] - s->above[k]) * p->base[k] + s->above[k] * p->tier[k]
                            : s->priced[k] * p->base[k];
    return fast ? c * p->fast : c;
}

at_result at_usage_model_name(const at_usage_model *m, at_buf *out)
{
    at_result r = at_buf_adds(out, m->model ? m->model : "unknown");
    if (r == AT_OK && m->fast)
        r = at_buf_adds(out, "-fast");
    return r;
}
