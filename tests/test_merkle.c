/* test_merkle.c - the Merkle tree module (src/log/merkle.c):
 *
 *  - known answers: the canonical RFC 6962 vectors (tests/vectors/merkle/
 *    rfc6962.tsv, from transparency-dev/merkle) with their corruption
 *    probes, and the vectors gen_merkle.py writes from a direct recursive
 *    RFC 6962 implementation (every root up to 300 leaves, proofs, and a
 *    1,000,000-leaf tree's roots, proofs and tiles);
 *  - properties: every inclusion proof for i < n <= 300 and every
 *    consistency proof for m <= n <= 200 verifies, and fails once a byte,
 *    the index or a size is changed, except where RFC 9162's verifier
 *    cannot tell (see sizes_alike below); roots against a naive recursive
 *    MTH; proofs at sizes near 2^64; a reader's errors reach the caller;
 *  - tiles: index and path formatting and parsing, a table of malformed
 *    paths, widths (c2sp.org/tlog-tiles' example), tile contents.
 *
 *   tests/test_merkle           the tests
 *   tests/test_merkle --bench   times appends, roots and proofs at 1,000,000 leaves */
#include "agenttrace/merkle.h"
#include "agenttrace/sha256.h"
#include "testlib.h"

#include <inttypes.h>
#include <stdbool.h>
#include <time.h>

#define HL AT_MERKLE_HASH_LEN

/* ---- an in-memory store ------------------------------------------------- */

typedef struct {
    uint8_t *h[AT_MERKLE_MAX_LEVELS];
    uint64_t n[AT_MERKLE_MAX_LEVELS], cap[AT_MERKLE_MAX_LEVELS];
    uint64_t reads;     /* calls of mem_read */
    int64_t fail_after; /* mem_read fails with AT_ERR_IO from this call on; -1: never */
} mem_store;

static at_result mem_read(void *ctx, int level, uint64_t first, size_t count, uint8_t *out)
{
    mem_store *s = ctx;
    if (s->fail_after >= 0 && s->reads >= (uint64_t)s->fail_after)
        return AT_ERR_IO;
    s->reads++;
    if (level < 0 || level >= AT_MERKLE_MAX_LEVELS || first > s->n[level] || count > s->n[level] - first)
        return AT_ERR_NOT_FOUND;
    memcpy(out, s->h[level] + first * HL, count * HL);
    return AT_OK;
}

static void mem_init(mem_store *s)
{
    memset(s, 0, sizeof *s);
    s->fail_after = -1;
}

static void mem_fini(mem_store *s)
{
    for (int l = 0; l < AT_MERKLE_MAX_LEVELS; l++)
        free(s->h[l]);
}

static bool mem_push(mem_store *s, const at_merkle_stored *st)
{
    int l = st->level;
    if (st->index != s->n[l]) /* append must keep every level a prefix */
        return false;
    if (s->n[l] == s->cap[l]) {
        uint64_t cap = s->cap[l] ? s->cap[l] * 2 : 64;
        uint8_t *p = realloc(s->h[l], cap * HL);
        if (!p)
            return false;
        s->h[l] = p;
        s->cap[l] = cap;
    }
    memcpy(s->h[l] + s->n[l] * HL, st->hash, HL);
    s->n[l]++;
    return true;
}

/* Appends a leaf hash; false on any failure. */
static bool mem_add_hash(mem_store *s, const uint8_t leaf[HL])
{
    at_merkle_stored st[AT_MERKLE_MAX_APPEND];
    size_t count;
    if (at_merkle_append(mem_read, s, s->n[0], leaf, st, &count) != AT_OK)
        return false;
    for (size_t j = 0; j < count; j++)
        if (!mem_push(s, &st[j]))
            return false;
    return true;
}

static size_t entry_text(uint64_t i, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "entry %" PRIu64, i);
    return n > 0 ? (size_t)n : 0;
}

static void entry_leaf(uint64_t i, uint8_t out[HL])
{
    char buf[32];
    size_t n = entry_text(i, buf, sizeof buf);
    at_result r = at_merkle_leaf_hash(buf, n, out);
    (void)r; /* entries this short never allocate */
}

/* A store of the leaves "entry 0" .. "entry <n-1>". */
static bool mem_fill(mem_store *s, uint64_t n)
{
    uint8_t leaf[HL];
    for (uint64_t i = s->n[0]; i < n; i++) {
        entry_leaf(i, leaf);
        if (!mem_add_hash(s, leaf))
            return false;
    }
    return true;
}

static at_result root_of(mem_store *s, uint64_t size, uint8_t out[HL])
{
    return at_merkle_root(mem_read, s, size, out);
}

/* ---- vector files --------------------------------------------------------- */

#define MAX_FIELDS 6

typedef struct {
    const char *p;
    size_t n;
} field;

static bool field_is(field f, const char *s)
{
    return f.n == strlen(s) && memcmp(f.p, s, f.n) == 0;
}

static bool parse_u64(field f, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n == 0 || f.n > 20)
        return false;
    for (size_t i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
        unsigned d = (unsigned)(f.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Hex (or "-" for nothing) into out (cap bytes). */
static bool parse_hex(field f, uint8_t *out, size_t cap, size_t *len)
{
    if (f.n == 1 && f.p[0] == '-') {
        *len = 0;
        return true;
    }
    if (f.n % 2 || f.n / 2 > cap)
        return false;
    for (size_t i = 0; i < f.n / 2; i++) {
        int hi = hexval(f.p[2 * i]), lo = hexval(f.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = f.n / 2;
    return true;
}

static bool parse_hash(field f, uint8_t out[HL])
{
    size_t n;
    return parse_hex(f, out, HL, &n) && n == HL;
}

/* Comma-separated hashes (or "-") into proof. */
static bool parse_proof(field f, uint8_t *proof, size_t *len)
{
    size_t k = 0, i = 0;
    if (f.n == 1 && f.p[0] == '-') {
        *len = 0;
        return true;
    }
    while (i < f.n) {
        size_t j = i;
        while (j < f.n && f.p[j] != ',')
            j++;
        if (k == AT_MERKLE_MAX_PROOF || !parse_hash((field){f.p + i, j - i}, proof + k * HL))
            return false;
        k++;
        i = j + 1;
    }
    *len = k;
    return true;
}

typedef void (*line_fn)(void *ctx, const field *f, int nf, int lineno);

/* Calls fn for each non-comment line of a vector file; false when the file
 * cannot be read. */
static bool for_each_line(const char *rel, line_fn fn, void *ctx)
{
    size_t len;
    char *text = t_read_file(t_src(rel), &len);
    if (!text)
        return false;
    int lineno = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        lineno++;
        if (e > i && text[i] != '#') {
            field f[MAX_FIELDS];
            int nf = 0;
            size_t s = i;
            for (size_t k = i; k <= e && nf < MAX_FIELDS; k++) {
                if (k == e || text[k] == '\t') {
                    f[nf++] = (field){text + s, k - s};
                    s = k + 1;
                }
            }
            fn(ctx, f, nf, lineno);
        }
        i = e + 1;
    }
    free(text);
    return true;
}

/* ---- checking one vector line against a store ------------------------------ */

typedef struct {
    const char *file;
    mem_store *s;
    uint64_t size; /* leaves in s */
    int roots, incls, conss, leaves, tiles, bad;
} vec_ctx;

static bool same_hashes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * HL) == 0);
}

static void check_vector(void *vc, const field *f, int nf, int lineno)
{
    vec_ctx *c = vc;
    uint64_t a, b;
    uint8_t h[HL], got[HL], want_root[HL], root_a[HL];
    uint8_t proof[AT_MERKLE_MAX_PROOF * HL], mine[AT_MERKLE_MAX_PROOF * HL];
    size_t plen, mlen;

    if (field_is(f[0], "data"))
        return;
    if (field_is(f[0], "leaf") && nf == 3) {
        uint8_t entry[256];
        size_t n;
        CHECK(parse_hex(f[1], entry, sizeof entry, &n) && parse_hash(f[2], h), "%s:%d: bad line", c->file,
              lineno);
        CHECK(at_merkle_leaf_hash(entry, n, got) == AT_OK && memcmp(got, h, HL) == 0, "%s:%d: leaf hash",
              c->file, lineno);
        c->leaves++;
    } else if (field_is(f[0], "root") && nf == 3) {
        CHECK(parse_u64(f[1], &a) && parse_hash(f[2], h) && a <= c->size, "%s:%d: bad line", c->file, lineno);
        CHECK(root_of(c->s, a, got) == AT_OK && memcmp(got, h, HL) == 0, "%s:%d: root of %" PRIu64, c->file,
              lineno, a);
        c->roots++;
    } else if (field_is(f[0], "incl") && nf == 4) {
        bool ok = parse_u64(f[1], &a) && parse_u64(f[2], &b) && parse_proof(f[3], proof, &plen) && a < b &&
                  b <= c->size;
        CHECK(ok, "%s:%d: bad line", c->file, lineno);
        if (!ok)
            return;
        CHECK(at_merkle_prove_inclusion(mem_read, c->s, a, b, mine, AT_MERKLE_MAX_PROOF, &mlen) == AT_OK &&
                  same_hashes(mine, mlen, proof, plen),
              "%s:%d: inclusion proof %" PRIu64 " in %" PRIu64, c->file, lineno, a, b);
        CHECK(root_of(c->s, b, want_root) == AT_OK && mem_read(c->s, 0, a, 1, h) == AT_OK &&
                  at_merkle_verify_inclusion(a, b, h, proof, plen, want_root) == AT_OK,
              "%s:%d: inclusion proof %" PRIu64 " in %" PRIu64 " does not verify", c->file, lineno, a, b);
        c->incls++;
    } else if (field_is(f[0], "cons") && nf == 4) {
        bool ok = parse_u64(f[1], &a) && parse_u64(f[2], &b) && parse_proof(f[3], proof, &plen) && a <= b &&
                  b <= c->size;
        CHECK(ok, "%s:%d: bad line", c->file, lineno);
        if (!ok)
            return;
        CHECK(at_merkle_prove_consistency(mem_read, c->s, a, b, mine, AT_MERKLE_MAX_PROOF, &mlen) == AT_OK &&
                  same_hashes(mine, mlen, proof, plen),
              "%s:%d: consistency proof %" PRIu64 " to %" PRIu64, c->file, lineno, a, b);
        CHECK(root_of(c->s, a, root_a) == AT_OK && root_of(c->s, b, want_root) == AT_OK &&
                  at_merkle_verify_consistency(a, b, proof, plen, root_a, want_root) == AT_OK,
              "%s:%d: consistency proof %" PRIu64 " to %" PRIu64 " does not verify", c->file, lineno, a, b);
        c->conss++;
    } else if (field_is(f[0], "tile") && nf == 5) {
        uint64_t level, width;
        at_merkle_tile t;
        static uint8_t data[AT_MERKLE_TILE_WIDTH * HL];
        bool ok = parse_u64(f[1], &level) && parse_u64(f[2], &t.index) && parse_u64(f[3], &width) &&
                  parse_hash(f[4], h) && level <= 7 && width >= 1 && width <= 256;
        CHECK(ok, "%s:%d: bad line", c->file, lineno);
        if (!ok)
            return;
        t.level = (int)level;
        t.width = (unsigned)width;
        CHECK(at_merkle_tile_read(mem_read, c->s, c->size, &t, data, sizeof data) == AT_OK,
              "%s:%d: tile read", c->file, lineno);
        at_sha256_oneshot(data, t.width * HL, got);
        CHECK(memcmp(got, h, HL) == 0, "%s:%d: tile %d/%" PRIu64 " width %u", c->file, lineno, t.level,
              t.index, t.width);
        c->tiles++;
    } else {
        CHECK(0, "%s:%d: unknown line", c->file, lineno);
        c->bad++;
    }
}

/* ---- the canonical vectors --------------------------------------------------- */

typedef struct {
    uint8_t entry[8][64];
    size_t len[8];
    int n;
    /* known-good proofs, for the probes */
    struct {
        uint64_t a, b;
        uint8_t proof[AT_MERKLE_MAX_PROOF * HL];
        size_t len;
    } incl[16], cons[16];
    int nincl, ncons;
} rfc_data;

static void collect_rfc(void *vc, const field *f, int nf, int lineno)
{
    rfc_data *d = vc;
    (void)lineno;
    if (field_is(f[0], "data") && nf == 2 && d->n < 8) {
        CHECK(parse_hex(f[1], d->entry[d->n], sizeof d->entry[0], &d->len[d->n]), "rfc6962.tsv:%d", lineno);
        d->n++;
    } else if (field_is(f[0], "incl") && nf == 4 && d->nincl < 16) {
        bool ok = parse_u64(f[1], &d->incl[d->nincl].a) && parse_u64(f[2], &d->incl[d->nincl].b) &&
                  parse_proof(f[3], d->incl[d->nincl].proof, &d->incl[d->nincl].len);
        CHECK(ok, "rfc6962.tsv:%d", lineno);
        d->nincl += ok;
    } else if (field_is(f[0], "cons") && nf == 4 && d->ncons < 16) {
        bool ok = parse_u64(f[1], &d->cons[d->ncons].a) && parse_u64(f[2], &d->cons[d->ncons].b) &&
                  parse_proof(f[3], d->cons[d->ncons].proof, &d->cons[d->ncons].len);
        CHECK(ok, "rfc6962.tsv:%d", lineno);
        d->ncons += ok;
    }
}

/* Builds a proof from parts: `pre` hashes, then proof[from..to), then `post`. */
static size_t splice(uint8_t *out, const uint8_t *pre, const uint8_t *proof, size_t from, size_t to,
                     const uint8_t *post)
{
    size_t k = 0;
    if (pre)
        memcpy(out + HL * k++, pre, HL);
    for (size_t i = from; i < to; i++)
        memcpy(out + HL * k++, proof + i * HL, HL);
    if (post)
        memcpy(out + HL * k++, post, HL);
    return k;
}

/* transparency-dev's sha256SomeHash (abacaba0...060061e00123456): a hash
 * that is nobody's. */
static const uint8_t some_hash[HL] = {0xab, 0xac, 0xab, 0xa0, [25] = 0x60, 0x06,
                                      0x1e, 0x00, 0x12, 0x34, 0x56};
static const uint8_t zero_hash[HL];

/* transparency-dev/merkle's corruption probes (proof/verify_test.go,
 * testdata/): each must fail. */
static void probe_inclusion(uint64_t i, uint64_t n, const uint8_t *proof, size_t len, const uint8_t root[HL],
                            const uint8_t leaf[HL])
{
    uint8_t p[(AT_MERKLE_MAX_PROOF + 2) * HL], empty[HL];
    size_t k;
    at_merkle_empty_root(empty);
    CHECK(at_merkle_verify_inclusion(i, n, leaf, proof, len, root) == AT_OK, "%" PRIu64 "/%" PRIu64, i, n);
    CHECK(at_merkle_verify_inclusion(i - 1, n, leaf, proof, len, root) != AT_OK, "index - 1");
    CHECK(at_merkle_verify_inclusion(i + 1, n, leaf, proof, len, root) != AT_OK, "index + 1");
    CHECK(at_merkle_verify_inclusion(i ^ 2, n, leaf, proof, len, root) != AT_OK, "index ^ 2");
    CHECK(at_merkle_verify_inclusion(i, n * 2, leaf, proof, len, root) != AT_OK, "size * 2");
    CHECK(at_merkle_verify_inclusion(i, n / 2, leaf, proof, len, root) != AT_OK, "size / 2");
    CHECK(at_merkle_verify_inclusion(i, n, some_hash, proof, len, root) != AT_OK, "wrong leaf");
    CHECK(at_merkle_verify_inclusion(i, n, leaf, proof, len, empty) != AT_OK, "empty root");
    CHECK(at_merkle_verify_inclusion(i, n, leaf, proof, len, some_hash) != AT_OK, "random root");
    k = splice(p, NULL, proof, 0, len, zero_hash);
    CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k, root) != AT_OK, "trailing garbage");
    k = splice(p, NULL, proof, 0, len, root);
    CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k, root) != AT_OK, "trailing root");
    k = splice(p, zero_hash, proof, 0, len, NULL);
    CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k, root) != AT_OK, "preceding garbage");
    k = splice(p, root, proof, 0, len, NULL);
    CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k, root) != AT_OK, "preceding root");
    for (size_t j = 0; j < len; j++) {
        k = splice(p, NULL, proof, 0, len, NULL);
        p[j * HL] ^= 8;
        CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k, root) != AT_OK, "modified proof[%zu] bit 3", j);
    }
    if (len > 0)
        CHECK(at_merkle_verify_inclusion(i, n, leaf, proof, len - 1, root) != AT_OK, "removed component");
    if (len > 1) {
        k = splice(p, proof, proof, 1, len, NULL); /* proof[0], proof[1..] */
        memmove(p + 2 * HL, p + HL, (k - 1) * HL);
        memcpy(p + HL, some_hash, HL);
        CHECK(at_merkle_verify_inclusion(i, n, leaf, p, k + 1, root) != AT_OK, "inserted component");
    }
}

static void probe_consistency(uint64_t m, uint64_t n, const uint8_t *proof, size_t len, const uint8_t r1[HL],
                              const uint8_t r2[HL])
{
    uint8_t p[(AT_MERKLE_MAX_PROOF + 2) * HL];
    size_t k;
    CHECK(at_merkle_verify_consistency(m, n, proof, len, r1, r2) == AT_OK, "%" PRIu64 "->%" PRIu64, m, n);
    if (len == 0) /* as transparency-dev: only non-trivial proofs are probed */
        return;
    CHECK(at_merkle_verify_consistency(m - 1, n, proof, len, r1, r2) != AT_OK, "size1 - 1");
    CHECK(at_merkle_verify_consistency(m + 1, n, proof, len, r1, r2) != AT_OK, "size1 + 1");
    CHECK(at_merkle_verify_consistency(m ^ 2, n, proof, len, r1, r2) != AT_OK, "size1 ^ 2");
    CHECK(at_merkle_verify_consistency(m, n * 2, proof, len, r1, r2) != AT_OK, "size2 * 2");
    CHECK(at_merkle_verify_consistency(m, n / 2, proof, len, r1, r2) != AT_OK, "size2 / 2");
    CHECK(at_merkle_verify_consistency(m, n, proof, len, some_hash, r2) != AT_OK, "wrong root1");
    CHECK(at_merkle_verify_consistency(m, n, proof, len, r1, some_hash) != AT_OK, "wrong root2");
    CHECK(at_merkle_verify_consistency(m, n, proof, len, r2, r1) != AT_OK, "swapped roots");
    CHECK(at_merkle_verify_consistency(m, n, proof, 0, r1, r2) != AT_OK, "empty proof");
    k = splice(p, NULL, proof, 0, len, zero_hash);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "trailing garbage");
    k = splice(p, NULL, proof, 0, len, r1);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "trailing root1");
    k = splice(p, NULL, proof, 0, len, r2);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "trailing root2");
    k = splice(p, zero_hash, proof, 0, len, NULL);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "preceding garbage");
    k = splice(p, r1, proof, 0, len, NULL);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "preceding root1");
    k = splice(p, r2, proof, 0, len, NULL);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "preceding root2");
    k = splice(p, proof, proof, 0, len, NULL);
    CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "preceding proof[0]");
    CHECK(at_merkle_verify_consistency(m, n, proof, len - 1, r1, r2) != AT_OK, "truncated proof");
    for (size_t j = 0; j < len; j++) {
        k = splice(p, NULL, proof, 0, len, NULL);
        p[j * HL] ^= 16;
        CHECK(at_merkle_verify_consistency(m, n, p, k, r1, r2) != AT_OK, "modified proof[%zu] bit 4", j);
    }
}

static void test_rfc6962(void)
{
    static rfc_data d;
    mem_store s;
    uint8_t leaf[HL], r1[HL], r2[HL], empty[HL];
    mem_init(&s);
    CHECK(for_each_line("tests/vectors/merkle/rfc6962.tsv", collect_rfc, &d) && d.n == 8,
          "rfc6962.tsv: %d entries", d.n);
    for (int i = 0; i < d.n; i++) {
        CHECK(at_merkle_leaf_hash(d.entry[i], d.len[i], leaf) == AT_OK && mem_add_hash(&s, leaf), "append %d",
              i);
    }
    vec_ctx c = {.file = "rfc6962.tsv", .s = &s, .size = s.n[0]};
    for_each_line("tests/vectors/merkle/rfc6962.tsv", check_vector, &c);
    CHECK(c.roots == 9 && c.incls == 5 && c.conss == 5 && c.leaves == 2,
          "rfc6962.tsv: %d roots %d incl %d cons", c.roots, c.incls, c.conss);

    /* The empty tree; RFC 6962 node hashing by hand. */
    at_merkle_empty_root(empty);
    CHECK(root_of(&s, 0, r1) == AT_OK && memcmp(r1, empty, HL) == 0, "empty root");
    uint8_t buf[1 + 2 * HL], want[HL];
    buf[0] = 1;
    memcpy(buf + 1, some_hash, HL);
    memcpy(buf + 1 + HL, zero_hash, HL);
    at_sha256_oneshot(buf, sizeof buf, want);
    at_merkle_node_hash(some_hash, zero_hash, r1);
    CHECK(memcmp(r1, want, HL) == 0, "node hash");
    memcpy(r1, zero_hash, HL);
    at_merkle_node_hash(some_hash, r1, r1); /* out aliasing right */
    CHECK(memcmp(r1, want, HL) == 0, "node hash in place");
    /* A leaf longer than the stack buffer goes through the incremental hash. */
    static uint8_t big[5000];
    static uint8_t bigbuf[5001];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    bigbuf[0] = 0;
    memcpy(bigbuf + 1, big, sizeof big);
    for (size_t n = 1020; n <= sizeof big; n += n < 1030 ? 1 : 997) {
        at_sha256_oneshot(bigbuf, n + 1, want);
        CHECK(at_merkle_leaf_hash(big, n, r1) == AT_OK && memcmp(r1, want, HL) == 0, "leaf hash of %zu bytes",
              n);
    }

    /* The corruption probes, over the known-good proofs (transparency-dev
     * skips its first inclusion vector, whose index 0 - 1 wraps; so do we
     * not: a wrapped index is just another wrong index). */
    for (int j = 0; j < d.nincl; j++) {
        uint64_t i = d.incl[j].a, n = d.incl[j].b;
        CHECK(root_of(&s, n, r2) == AT_OK && mem_read(&s, 0, i, 1, leaf) == AT_OK, "root");
        probe_inclusion(i, n, d.incl[j].proof, d.incl[j].len, r2, leaf);
    }
    for (int j = 0; j < d.ncons; j++) {
        uint64_t m = d.cons[j].a, n = d.cons[j].b;
        CHECK(root_of(&s, m, r1) == AT_OK && root_of(&s, n, r2) == AT_OK, "roots");
        probe_consistency(m, n, d.cons[j].proof, d.cons[j].len, r1, r2);
    }

    /* transparency-dev's TestVerifyConsistency table, read for RFC 9162
     * with one difference: size 0 needs the empty tree's root. */
    const uint8_t *a1 = some_hash, *a2 = zero_hash;
    CHECK(at_merkle_verify_consistency(0, 0, NULL, 0, a1, a2) != AT_OK, "0,0 different roots");
    CHECK(at_merkle_verify_consistency(1, 1, NULL, 0, a1, a2) != AT_OK, "1,1 different roots");
    CHECK(at_merkle_verify_consistency(0, 0, NULL, 0, empty, empty) == AT_OK, "0,0");
    CHECK(at_merkle_verify_consistency(0, 0, NULL, 0, a1, a1) != AT_OK, "0,0 needs the empty root");
    CHECK(at_merkle_verify_consistency(0, 1, NULL, 0, empty, a2) == AT_OK, "0,1");
    CHECK(at_merkle_verify_consistency(0, 1, NULL, 0, a1, a2) != AT_OK, "0,1 needs the empty root");
    CHECK(at_merkle_verify_consistency(1, 1, NULL, 0, a2, a2) == AT_OK, "1,1");
    CHECK(at_merkle_verify_consistency(1, 0, NULL, 0, a1, a2) != AT_OK, "time travel 1,0");
    CHECK(at_merkle_verify_consistency(2, 1, NULL, 0, a1, a2) != AT_OK, "time travel 2,1");
    CHECK(at_merkle_verify_consistency(1, 2, NULL, 0, a1, a2) != AT_OK, "empty proof 1,2");
    CHECK(at_merkle_verify_consistency(0, 0, empty, 1, empty, empty) != AT_OK, "0,0 with a proof");
    CHECK(at_merkle_verify_consistency(0, 1, empty, 1, empty, empty) != AT_OK, "0,1 with a proof");
    CHECK(at_merkle_verify_consistency(1, 1, empty, 1, empty, empty) != AT_OK, "1,1 with a proof");
    /* TestVerifyInclusion's impossible sizes, and the single entry. */
    static const uint64_t bad[4][2] = {{0, 0}, {0, 1}, {1, 0}, {2, 1}};
    for (int j = 0; j < 4; j++)
        CHECK(at_merkle_verify_inclusion(bad[j][0], bad[j][1], some_hash, NULL, 0, empty) != AT_OK,
              "probe %d", j);
    CHECK(at_merkle_leaf_hash("data", 4, leaf) == AT_OK, "leaf");
    CHECK(at_merkle_verify_inclusion(0, 1, leaf, NULL, 0, leaf) == AT_OK, "single entry");
    CHECK(at_merkle_verify_inclusion(0, 1, leaf, NULL, 0, empty) != AT_OK, "single entry, other root");
    CHECK(at_merkle_verify_inclusion(0, 1, empty, NULL, 0, leaf) != AT_OK, "single entry, other leaf");
    mem_fini(&s);
}

/* ---- the generated vectors ---------------------------------------------------- */

static mem_store big; /* "entry 0" .. "entry 999999" */
#define BIG 1000000

static void test_generated(void)
{
    mem_store s;
    mem_init(&s);
    CHECK(mem_fill(&s, 300), "fill 300");
    vec_ctx c = {.file = "entries_small.tsv", .s = &s, .size = 300};
    CHECK(for_each_line("tests/vectors/merkle/entries_small.tsv", check_vector, &c), "entries_small.tsv");
    CHECK(c.roots == 301 && c.incls > 200 && c.conss > 200 && c.bad == 0, "entries_small.tsv: %d roots",
          c.roots);
    mem_fini(&s);

    vec_ctx g = {.file = "entries_large.tsv", .s = &big, .size = BIG};
    CHECK(for_each_line("tests/vectors/merkle/entries_large.tsv", check_vector, &g), "entries_large.tsv");
    CHECK(g.roots > 100 && g.incls > 10 && g.conss > 10 && g.tiles == 10 && g.bad == 0,
          "entries_large.tsv: %d roots %d incl %d cons %d tiles", g.roots, g.incls, g.conss, g.tiles);
    printf(
        "vectors: rfc6962.tsv, entries_small.tsv (%d roots, %d inclusion, %d consistency), entries_large.tsv "
        "(%d roots, %d inclusion, %d consistency, %d tiles)\n",
        c.roots, c.incls, c.conss, g.roots, g.incls, g.conss, g.tiles);
}

/* ---- properties ------------------------------------------------------------- */

/* MTH straight from RFC 6962 §2.1 over leaf hashes, recursively. */
static void ref_mth(const uint8_t *leaves, uint64_t lo, uint64_t hi, uint8_t out[HL])
{
    uint64_t n = hi - lo, k = 1;
    uint8_t l[HL], r[HL];
    if (n == 1) {
        memcpy(out, leaves + lo * HL, HL);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    ref_mth(leaves, lo, lo + k, l);
    ref_mth(leaves, lo + k, hi, r);
    at_merkle_node_hash(l, r, out);
}

/* The shape of a proof, which is all RFC 9162's verifiers look at besides
 * the hashes: for each hash, whether it is a left sibling ('L'), a right one
 * ('R') or, first in a consistency proof, the subtree itself ('T'). Two
 * (index, size) or (m, n) pairs with the same shape cannot be told apart by
 * a verifier given the same proof and roots: e.g. leaf 0's proof in a tree
 * of 3 is also a valid proof of leaf 0 in a tree of 4, with the same root.
 * Written from the RFC 6962 recursions, independently of merkle.c. */
static void path_shape(uint64_t m, uint64_t n, char *out, size_t *len)
{
    uint64_t k = 1;
    if (n == 1)
        return;
    while (k < n - k) /* k * 2 < n, without overflow */
        k *= 2;
    if (m < k) {
        path_shape(m, k, out, len);
        out[(*len)++] = 'R';
    } else {
        path_shape(m - k, n - k, out, len);
        out[(*len)++] = 'L';
    }
}

static void subproof_shape(uint64_t m, uint64_t n, bool b, char *out, size_t *len)
{
    uint64_t k = 1;
    if (m == n) {
        if (!b)
            out[(*len)++] = 'T';
        return;
    }
    while (k < n - k)
        k *= 2;
    if (m <= k) {
        subproof_shape(m, k, b, out, len);
        out[(*len)++] = 'R';
    } else {
        subproof_shape(m - k, n - k, false, out, len);
        out[(*len)++] = 'L';
    }
}

static bool same_incl_shape(uint64_t i, uint64_t n, uint64_t i2, uint64_t n2)
{
    char a[70], b[70];
    size_t la = 0, lb = 0;
    if (i >= n || i2 >= n2)
        return false;
    path_shape(i, n, a, &la);
    path_shape(i2, n2, b, &lb);
    return la == lb && memcmp(a, b, la) == 0;
}

static bool same_cons_shape(uint64_t m, uint64_t n, uint64_t m2, uint64_t n2)
{
    char a[70], b[70];
    size_t la = 0, lb = 0;
    if (m == 0 || m >= n || m2 == 0 || m2 >= n2)
        return false;
    subproof_shape(m, n, true, a, &la);
    subproof_shape(m2, n2, true, b, &lb);
    return la == lb && memcmp(a, b, la) == 0;
}

static void test_roots(void)
{
    /* Every root up to 1024 against the naive recursion; the incremental
     * appends against it at every size (the store as it stood then). */
    uint8_t *leaves = malloc(1024 * HL), got[HL], want[HL];
    mem_store s;
    int bad = 0, badreads = 0;
    mem_init(&s);
    for (uint64_t n = 1; n <= 1024; n++) {
        entry_leaf(n - 1, leaves + (n - 1) * HL);
        CHECK(mem_add_hash(&s, leaves + (n - 1) * HL), "append");
        ref_mth(leaves, 0, n, want);
        uint64_t before = s.reads;
        if (root_of(&s, n, got) != AT_OK || memcmp(got, want, HL) != 0)
            bad++;
        if (s.reads - before != (uint64_t)__builtin_popcountll(n)) /* one read per one bit */
            badreads++;
    }
    CHECK(bad == 0, "%d roots differ from the recursive MTH", bad);
    CHECK(badreads == 0, "%d roots read more than popcount(n) hashes", badreads);
    /* Stored hashes are the complete subtrees' MTH. */
    bad = 0;
    for (int l = 0; l <= 10; l++)
        for (uint64_t k = 0; k < s.n[l]; k++) {
            ref_mth(leaves, k << l, (k + 1) << l, want);
            bad += memcmp(s.h[l] + k * HL, want, HL) != 0;
        }
    CHECK(bad == 0 && s.n[10] == 1 && s.n[11] == 0, "%d stored hashes wrong", bad);
    for (int l = 0; l < 12; l++)
        CHECK(at_merkle_level_count(1024, l) == s.n[l], "level %d count", l);
    CHECK(at_merkle_level_count(UINT64_MAX, 63) == 1 && at_merkle_level_count(UINT64_MAX, 64) == 0 &&
              at_merkle_level_count(5, -1) == 0,
          "level count edges");
    free(leaves);
    mem_fini(&s);

    /* The 1,000,000-leaf store, appended leaf by leaf: every level has its
     * count (its roots at 131 sizes, 100 of them up to 100,000, are the
     * Python ones: test_generated). */
    for (int l = 0; l < 21; l++)
        CHECK(big.n[l] == (uint64_t)BIG >> l, "big level %d: %" PRIu64, l, big.n[l]);
}

static void test_inclusion_all(void)
{
    mem_store s;
    uint8_t root[HL], leaf[HL], proof[AT_MERKLE_MAX_PROOF * HL], p[AT_MERKLE_MAX_PROOF * HL];
    size_t len;
    int proofs = 0, flips = 0, idx = 0, sizes = 0, alike = 0;
    mem_init(&s);
    CHECK(mem_fill(&s, 300), "fill");
    for (uint64_t n = 1; n <= 300; n++) {
        CHECK(root_of(&s, n, root) == AT_OK, "root %" PRIu64, n);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t before = s.reads;
            bool ok =
                at_merkle_prove_inclusion(mem_read, &s, i, n, proof, AT_MERKLE_MAX_PROOF, &len) == AT_OK &&
                mem_read(&s, 0, i, 1, leaf) == AT_OK &&
                at_merkle_verify_inclusion(i, n, leaf, proof, len, root) == AT_OK;
            CHECK(ok && s.reads - before <= 2 * 9 + 1,
                  "inclusion %" PRIu64 " in %" PRIu64 " (%" PRIu64 " reads)", i, n, s.reads - before);
            proofs++;
            if (!ok)
                continue;
            /* Every byte of every hash (sizes to 32), or one byte per hash
             * at a position that moves with i and n, flipped in turn. */
            bool all_fail = true;
            for (size_t j = 0; j < len; j++) {
                for (size_t b = 0; b < HL; b++) {
                    if (n > 32 && b != (i + n + j) % HL)
                        continue;
                    memcpy(p, proof, len * HL);
                    p[j * HL + b] ^= (uint8_t)(1u << (b % 8));
                    all_fail &= at_merkle_verify_inclusion(i, n, leaf, p, len, root) != AT_OK;
                    flips++;
                }
            }
            uint8_t l2[HL];
            memcpy(l2, leaf, HL);
            l2[(i * 5) % HL] ^= 0x80;
            all_fail &= at_merkle_verify_inclusion(i, n, l2, proof, len, root) != AT_OK;
            memcpy(l2, root, HL);
            l2[(n * 3) % HL] ^= 1;
            all_fail &= at_merkle_verify_inclusion(i, n, leaf, proof, len, l2) != AT_OK;
            CHECK(all_fail, "inclusion %" PRIu64 " in %" PRIu64 ": a changed byte still verifies", i, n);

            /* Any other index (all of them to size 32) fails. */
            bool idx_fail = true;
            uint64_t others[] = {i - 1,  i + 1,   i ^ 1,     i ^ 2, i ^ 4,
                                 i ^ 64, i ^ 128, n - 1 - i, n,     UINT64_MAX};
            if (n <= 32) {
                for (uint64_t i2 = 0; i2 <= n; i2++)
                    if (i2 != i) {
                        idx_fail &= at_merkle_verify_inclusion(i2, n, leaf, proof, len, root) != AT_OK;
                        idx++;
                    }
            } else {
                for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
                    if (others[k] != i) {
                        idx_fail &= at_merkle_verify_inclusion(others[k], n, leaf, proof, len, root) != AT_OK;
                        idx++;
                    }
            }
            CHECK(idx_fail, "inclusion %" PRIu64 " in %" PRIu64 ": another index verifies", i, n);

            /* Another size fails unless the proof has the same shape there. */
            bool size_ok = true;
            uint64_t sz[] = {n - 1, n + 1, n * 2, n / 2, n + 2, n - 2, n + 64, n ^ 1, 0, UINT64_MAX};
            uint64_t count = n <= 32 ? 2 * n + 2 : sizeof sz / sizeof sz[0];
            for (uint64_t k = 0; k < count; k++) {
                uint64_t n2 = n <= 32 ? k : sz[k];
                if (n2 == n)
                    continue;
                bool same = same_incl_shape(i, n, i, n2);
                bool verifies = at_merkle_verify_inclusion(i, n2, leaf, proof, len, root) == AT_OK;
                size_ok &= verifies == same;
                alike += same;
                sizes++;
            }
            CHECK(size_ok, "inclusion %" PRIu64 " in %" PRIu64 ": size changes", i, n);
        }
    }
    printf("inclusion: %d proofs (i < n <= 300), %d flipped bytes, %d other indexes, %d other sizes "
           "(%d of which the verifier cannot tell apart: same shape)\n",
           proofs, flips, idx, sizes, alike);
    mem_fini(&s);
}

static void test_consistency_all(void)
{
    mem_store s;
    static uint8_t roots[201][HL];
    uint8_t proof[AT_MERKLE_MAX_PROOF * HL], p[(AT_MERKLE_MAX_PROOF + 1) * HL], empty[HL];
    size_t len;
    int proofs = 0, flips = 0, sizes = 0, alike = 0;
    mem_init(&s);
    at_merkle_empty_root(empty);
    CHECK(mem_fill(&s, 200), "fill");
    for (uint64_t n = 0; n <= 200; n++)
        CHECK(root_of(&s, n, roots[n]) == AT_OK, "root");
    for (uint64_t n = 0; n <= 200; n++) {
        for (uint64_t m = 0; m <= n; m++) {
            const uint8_t *r1 = roots[m], *r2 = roots[n];
            uint64_t before = s.reads;
            bool ok =
                at_merkle_prove_consistency(mem_read, &s, m, n, proof, AT_MERKLE_MAX_PROOF, &len) == AT_OK &&
                at_merkle_verify_consistency(m, n, proof, len, r1, r2) == AT_OK;
            CHECK(ok && s.reads - before <= 2 * 8 + 2, "consistency %" PRIu64 " to %" PRIu64, m, n);
            proofs++;
            if (!ok)
                continue;
            if (m == 0 || m == n) {
                CHECK(len == 0, "trivial proof %" PRIu64 " to %" PRIu64 " not empty", m, n);
                /* A non-empty proof, or other roots, fail. */
                CHECK(at_merkle_verify_consistency(m, n, r1, 1, r1, r2) != AT_OK &&
                          (m == n ? n == 0 ||
                                        at_merkle_verify_consistency(m, n, NULL, 0, r1, roots[n - 1]) != AT_OK
                                  : at_merkle_verify_consistency(m, n, NULL, 0, some_hash, r2) != AT_OK),
                      "trivial %" PRIu64 " to %" PRIu64 " tampered", m, n);
                continue;
            }
            /* Every byte of every hash (sizes to 32), or one byte per hash
             * at a moving position; other roots, cut, empty, extended. */
            bool all_fail = true;
            for (size_t j = 0; j < len; j++) {
                for (size_t b = 0; b < HL; b++) {
                    if (n > 32 && b != (m + n + j) % HL)
                        continue;
                    memcpy(p, proof, len * HL);
                    p[j * HL + b] ^= (uint8_t)(1u << (b % 8));
                    all_fail &= at_merkle_verify_consistency(m, n, p, len, r1, r2) != AT_OK;
                    flips++;
                }
            }
            uint8_t x[HL];
            memcpy(x, r1, HL);
            x[m % HL] ^= 4;
            all_fail &= at_merkle_verify_consistency(m, n, proof, len, x, r2) != AT_OK;
            memcpy(x, r2, HL);
            x[n % HL] ^= 4;
            all_fail &= at_merkle_verify_consistency(m, n, proof, len, r1, x) != AT_OK;
            all_fail &= at_merkle_verify_consistency(m, n, proof, len, r2, r1) != AT_OK;
            all_fail &= at_merkle_verify_consistency(m, n, proof, len - 1, r1, r2) != AT_OK;
            all_fail &= at_merkle_verify_consistency(m, n, proof, 0, r1, r2) != AT_OK;
            memcpy(p, proof, len * HL);
            memcpy(p + len * HL, r2, HL);
            all_fail &= at_merkle_verify_consistency(m, n, p, len + 1, r1, r2) != AT_OK;
            CHECK(all_fail, "consistency %" PRIu64 " to %" PRIu64 ": tampered proof verifies", m, n);

            /* Other sizes fail unless the proof has the same shape there. */
            bool size_ok = true;
            uint64_t ms[] = {m - 1, m + 1, m ^ 2, m * 2, m / 2, 0, n, m};
            uint64_t ns[] = {n, n - 1, n + 1, n * 2, n + 3, UINT64_MAX};
            for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
                for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
                    uint64_t m2 = ms[a], n2 = ns[b];
                    if (m2 == m && n2 == n)
                        continue;
                    bool same = same_cons_shape(m, n, m2, n2);
                    bool verifies = at_merkle_verify_consistency(m2, n2, proof, len, r1, r2) == AT_OK;
                    size_ok &= verifies == same;
                    alike += same;
                    sizes++;
                }
            CHECK(size_ok, "consistency %" PRIu64 " to %" PRIu64 ": size changes", m, n);
        }
    }
    printf("consistency: %d proofs (m <= n <= 200), %d flipped bytes, %d other size pairs (%d of which the "
           "verifier cannot tell apart: same shape)\n",
           proofs, flips, sizes, alike);
    mem_fini(&s);
}

/* ---- huge sizes: a reader whose every leaf is the same ---------------------------- */

/* All leaves equal: node (l, k) is H_l for every k, H_0 the leaf, H_l+1 =
 * H(H_l, H_l). A consistent store of any size, 2^64 - 1 leaves included. */
static uint8_t uniform[AT_MERKLE_MAX_LEVELS][HL];

static at_result uniform_read(void *ctx, int level, uint64_t first, size_t count, uint8_t *out)
{
    uint64_t *reads = ctx;
    (*reads)++;
    if (level < 0 || level >= AT_MERKLE_MAX_LEVELS) /* a tree of 2^64 - 1 leaves */
        return AT_ERR_NOT_FOUND;
    uint64_t have = UINT64_MAX >> level;
    if (first >= have || count > have - first)
        return AT_ERR_NOT_FOUND;
    for (size_t i = 0; i < count; i++)
        memcpy(out + i * HL, uniform[level], HL);
    return AT_OK;
}

static void test_huge(void)
{
    uint8_t root[HL], r1[HL], proof[AT_MERKLE_MAX_PROOF * HL];
    uint64_t reads = 0;
    size_t len;
    CHECK(at_merkle_leaf_hash("same", 4, uniform[0]) == AT_OK, "leaf");
    for (int l = 1; l < AT_MERKLE_MAX_LEVELS; l++)
        at_merkle_node_hash(uniform[l - 1], uniform[l - 1], uniform[l]);

    static const uint64_t sizes[] = {UINT64_MAX,
                                     UINT64_MAX - 1,
                                     (uint64_t)1 << 63,
                                     ((uint64_t)1 << 63) + 1,
                                     ((uint64_t)1 << 63) - 1,
                                     0x5555555555555555u,
                                     0xaaaaaaaaaaaaaaaau};
    int npairs = 0;
    size_t longest_incl = 0, longest_cons = 0;
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++) {
        uint64_t n = sizes[a];
        CHECK(at_merkle_root(uniform_read, &reads, n, root) == AT_OK, "root of %" PRIx64, n);
        uint64_t idx[] = {0, 1, n / 2, n - 2, n - 1, n / 3};
        for (size_t b = 0; b < sizeof idx / sizeof idx[0]; b++) {
            uint64_t i = idx[b];
            CHECK(at_merkle_prove_inclusion(uniform_read, &reads, i, n, proof, AT_MERKLE_MAX_PROOF, &len) ==
                          AT_OK &&
                      at_merkle_verify_inclusion(i, n, uniform[0], proof, len, root) == AT_OK,
                  "inclusion %" PRIx64 " in %" PRIx64, i, n);
            if (len > longest_incl)
                longest_incl = len;
            proof[0] ^= 1;
            CHECK(len == 0 || at_merkle_verify_inclusion(i, n, uniform[0], proof, len, root) != AT_OK,
                  "inclusion %" PRIx64 " in %" PRIx64 " flipped", i, n);
            npairs++;
        }
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) {
            uint64_t m = sizes[b];
            if (m > n)
                continue;
            CHECK(at_merkle_root(uniform_read, &reads, m, r1) == AT_OK &&
                      at_merkle_prove_consistency(uniform_read, &reads, m, n, proof, AT_MERKLE_MAX_PROOF,
                                                  &len) == AT_OK &&
                      at_merkle_verify_consistency(m, n, proof, len, r1, root) == AT_OK,
                  "consistency %" PRIx64 " to %" PRIx64, m, n);
            if (len > longest_cons)
                longest_cons = len;
            npairs++;
        }
    }
    /* The longest proofs: 64 hashes for an inclusion, 65 for a consistency. */
    CHECK(at_merkle_prove_inclusion(uniform_read, &reads, 0, UINT64_MAX, proof, AT_MERKLE_MAX_PROOF, &len) ==
                  AT_OK &&
              len == 64,
          "longest inclusion proof: %zu", len);
    CHECK(at_merkle_prove_inclusion(uniform_read, &reads, UINT64_MAX - 1, UINT64_MAX, proof,
                                    AT_MERKLE_MAX_PROOF, &len) == AT_OK &&
              len == 63,
          "the last leaf's proof: %zu", len);
    CHECK(at_merkle_root(uniform_read, &reads, 3, r1) == AT_OK &&
              at_merkle_root(uniform_read, &reads, UINT64_MAX, root) == AT_OK,
          "roots");
    CHECK(at_merkle_prove_consistency(uniform_read, &reads, 3, UINT64_MAX, proof, AT_MERKLE_MAX_PROOF,
                                      &len) == AT_OK &&
              at_merkle_verify_consistency(3, UINT64_MAX, proof, len, r1, root) == AT_OK,
          "consistency 3 to 2^64-1: %zu hashes", len);
    uint64_t mm = ((uint64_t)1 << 62) + 1; /* odd, below the top split: 1 + 64 hashes */
    CHECK(at_merkle_root(uniform_read, &reads, mm, r1) == AT_OK &&
              at_merkle_prove_consistency(uniform_read, &reads, mm, UINT64_MAX, proof, AT_MERKLE_MAX_PROOF,
                                          &len) == AT_OK &&
              at_merkle_verify_consistency(mm, UINT64_MAX, proof, len, r1, root) == AT_OK,
          "consistency 2^62+1 to 2^64-1");
    CHECK(len == AT_MERKLE_MAX_PROOF, "the longest consistency proof: %zu hashes", len);
    printf("huge sizes: %d proofs near 2^64 (longest inclusion %zu, consistency %zu hashes)\n", npairs,
           longest_incl, longest_cons);

    /* Append at the largest sizes. */
    at_merkle_stored st[AT_MERKLE_MAX_APPEND];
    size_t count;
    CHECK(at_merkle_append(uniform_read, &reads, UINT64_MAX - 1, uniform[0], st, &count) == AT_OK &&
              count == 1 && st[0].level == 0 && st[0].index == UINT64_MAX - 1,
          "append the last leaf: %zu", count);
    CHECK(at_merkle_append(uniform_read, &reads, UINT64_MAX, uniform[0], st, &count) == AT_ERR_TOO_BIG,
          "append past 2^64-1");
    CHECK(at_merkle_append(uniform_read, &reads, ((uint64_t)1 << 63) - 1, uniform[0], st, &count) == AT_OK &&
              count == 64 && st[63].level == 63 && st[63].index == 0 &&
              memcmp(st[63].hash, uniform[63], HL) == 0,
          "append completing 2^63: %zu", count);
    CHECK(at_merkle_append(uniform_read, &reads, UINT64_MAX - 2, uniform[0], st, &count) == AT_OK &&
              count == 2 && st[1].level == 1 && st[1].index == (UINT64_MAX >> 1) - 1,
          "append at 2^64-2: %zu", count);
}

/* ---- arguments and reader errors ------------------------------------------------ */

static void test_errors(void)
{
    mem_store s;
    uint8_t h[HL], proof[AT_MERKLE_MAX_PROOF * HL];
    size_t len;
    at_merkle_stored st[AT_MERKLE_MAX_APPEND];
    size_t count;
    mem_init(&s);
    CHECK(mem_fill(&s, 1000), "fill");
    CHECK(at_merkle_prove_inclusion(mem_read, &s, 5, 5, proof, AT_MERKLE_MAX_PROOF, &len) == AT_ERR_INVALID,
          "index == size");
    CHECK(at_merkle_prove_inclusion(mem_read, &s, 0, 0, proof, AT_MERKLE_MAX_PROOF, &len) == AT_ERR_INVALID,
          "size 0");
    CHECK(at_merkle_prove_consistency(mem_read, &s, 6, 5, proof, AT_MERKLE_MAX_PROOF, &len) == AT_ERR_INVALID,
          "m > n");
    CHECK(at_merkle_prove_inclusion(mem_read, &s, 3, 1000, proof, 9, &len) == AT_ERR_TOO_BIG, "cap 9 < 10");
    CHECK(at_merkle_prove_inclusion(mem_read, &s, 3, 1000, proof, 10, &len) == AT_OK && len == 10, "cap 10");
    CHECK(at_merkle_prove_consistency(mem_read, &s, 3, 1000, proof, 0, &len) == AT_ERR_TOO_BIG, "cap 0");
    CHECK(at_merkle_prove_consistency(mem_read, &s, 1000, 1000, proof, 0, &len) == AT_OK && len == 0,
          "m == n");
    CHECK(at_merkle_prove_consistency(mem_read, &s, 0, 1000, proof, 0, &len) == AT_OK && len == 0, "m == 0");
    /* Beyond what the store holds: the reader's NOT_FOUND comes back. */
    CHECK(at_merkle_root(mem_read, &s, 1001, h) == AT_ERR_NOT_FOUND, "root beyond the store");
    CHECK(at_merkle_prove_inclusion(mem_read, &s, 0, 1024, proof, AT_MERKLE_MAX_PROOF, &len) ==
              AT_ERR_NOT_FOUND,
          "proof beyond the store");

    /* A reader failing at its k-th call: each operation fails with its error
     * until k reaches the number of reads it needs, then succeeds. */
    struct {
        const char *what;
        int op;
        uint64_t a, b;
    } ops[] = {{"root", 0, 0, 999},          {"inclusion", 1, 500, 999}, {"consistency", 2, 333, 999},
               {"consistency", 2, 512, 999}, {"append", 3, 0, 0},        {"tile", 4, 0, 0}};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        int needed = -1;
        bool errors_pass = true;
        for (int k = 0; k <= 64 && needed < 0; k++) {
            at_result r;
            s.reads = 0;
            s.fail_after = k;
            switch (ops[o].op) {
            case 0: r = at_merkle_root(mem_read, &s, ops[o].b, h); break;
            case 1: r = at_merkle_prove_inclusion(mem_read, &s, ops[o].a, ops[o].b, proof, 65, &len); break;
            case 2: r = at_merkle_prove_consistency(mem_read, &s, ops[o].a, ops[o].b, proof, 65, &len); break;
            case 3: r = at_merkle_append(mem_read, &s, 999, h, st, &count); break; /* 3 reads */
            default: {
                at_merkle_tile t = {0, 3, 232};
                static uint8_t data[256 * HL];
                r = at_merkle_tile_read(mem_read, &s, 1000, &t, data, sizeof data);
            }
            }
            if (r == AT_OK)
                needed = k;
            else
                errors_pass &= r == AT_ERR_IO;
        }
        CHECK(needed > 0 && errors_pass, "%s: reader errors (needs %d reads)", ops[o].what, needed);
    }
    s.fail_after = -1;
    mem_fini(&s);
}

/* ---- tiles ------------------------------------------------------------------ */

static void test_tile_index(void)
{
    static const struct {
        uint64_t n;
        const char *s;
    } good[] = {
        {0, "000"},
        {5, "005"},
        {999, "999"},
        {1000, "x001/000"},
        {1234067, "x001/x234/067"},
        {999999, "x999/999"},
        {1000000, "x001/x000/000"},
        {UINT64_MAX, "x018/x446/x744/x073/x709/x551/615"},
    };
    char buf[AT_MERKLE_TILE_PATH_MAX];
    size_t len;
    uint64_t v;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(at_merkle_tile_index_format(good[i].n, buf, sizeof buf, &len) == AT_OK &&
                  len == strlen(good[i].s) && strcmp(buf, good[i].s) == 0,
              "format %" PRIu64 ": %s", good[i].n, buf);
        CHECK(at_merkle_tile_index_parse(good[i].s, strlen(good[i].s), &v) == AT_OK && v == good[i].n,
              "parse %s", good[i].s);
    }
    /* Round trips: a dense range, powers of ten around their edges, random values. */
    bool ok = true;
    int trips = 0;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (uint64_t k = 0; k < 200000; k++) {
        uint64_t n;
        if (k < 100000)
            n = k;
        else if (k < 100000 + 60) {
            uint64_t p = 1;
            for (uint64_t e = 0; e < (k - 100000) / 3; e++)
                p *= 10;
            n = p - 1 + (k - 100000) % 3;
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            n = x >> (k % 64);
        }
        ok &= at_merkle_tile_index_format(n, buf, sizeof buf, &len) == AT_OK &&
              at_merkle_tile_index_parse(buf, len, &v) == AT_OK && v == n;
        trips++;
    }
    CHECK(ok, "tile index round trips");
    /* Too small a buffer: every cap below the need. */
    bool caps = true;
    for (size_t cap = 0; cap <= 34; cap++) {
        at_result r = at_merkle_tile_index_format(UINT64_MAX, buf, cap, &len);
        caps &= cap < 34 ? r == AT_ERR_TOO_BIG : r == AT_OK && len == 33;
    }
    CHECK(caps, "tile index caps");

    static const char *bad[] = {
        "",
        "5",
        "05",
        "0005",
        "x005",
        "x000/005",
        "x000/x001/005",
        "001/002",
        "x001/x002",
        "x001//002",
        "/005",
        "005/",
        "x1/005",
        "x0001/005",
        "x01/005",
        "00a",
        "0x5",
        " 005",
        "005 ",
        "+05",
        "-05",
        "X001/000",
        "x001\\000",
        "x001/00",
        "x001/0000",
        "x018/x446/x744/x073/x709/x551/616",
        "x019/x000/x000/x000/x000/x000/000",
        "x100/x000/x000/x000/x000/x000/000",
        "x001/x000/x000/x000/x000/x000/x000/000",
        "x999/x999/x999/x999/x999/x999/x999/999",
        "xx01/000",
        "x/001",
        "x001/x",
        "x001/.p/5",
        "00\xd9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(at_merkle_tile_index_parse(bad[i], strlen(bad[i]), &v) == AT_ERR_INVALID,
              "index \"%s\" accepted", bad[i]);
    CHECK(at_merkle_tile_index_parse("0\0"
                                     "5",
                                     3, &v) == AT_ERR_INVALID,
          "embedded NUL");
    printf("tile index: %zu known, %d round trips, %zu malformed\n", sizeof good / sizeof good[0], trips,
           sizeof bad / sizeof bad[0]);
}

static void test_tile_paths(void)
{
    static const struct {
        const char *s;
        int level;
        uint64_t index;
        unsigned width;
    } good[] = {
        {"0/000", 0, 0, 256},
        {"0/005", 0, 5, 256},
        {"0/x001/234", 0, 1234, 256},
        {"1/x001/x234/067", 1, 1234067, 256},
        {"1/x001/x234/067.p/255", 1, 1234067, 255},
        {"10/000.p/1", 10, 0, 1},
        {"63/x018/x446/x744/x073/x709/x551/615.p/128", 63, UINT64_MAX, 128},
        {"entries/000", AT_MERKLE_TILE_ENTRIES, 0, 256},
        {"entries/x001/000.p/17", AT_MERKLE_TILE_ENTRIES, 1000, 17},
        {"entries/x018/x446/x744/x073/x709/x551/615.p/255", AT_MERKLE_TILE_ENTRIES, UINT64_MAX, 255},
        {"2/000.p/1", 2, 0, 1},
        {"0/273.p/112", 0, 273, 112},
    };
    char buf[AT_MERKLE_TILE_PATH_MAX];
    size_t len;
    at_merkle_tile t;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *s = good[i].s;
        CHECK(at_merkle_tile_path_parse(s, strlen(s), &t) == AT_OK && t.level == good[i].level &&
                  t.index == good[i].index && t.width == good[i].width,
              "parse %s", s);
        at_merkle_tile u = {good[i].level, good[i].index, good[i].width};
        CHECK(at_merkle_tile_path_format(&u, buf, sizeof buf, &len) == AT_OK && len == strlen(s) &&
                  strcmp(buf, s) == 0,
              "format %s: %s", s, buf);
    }
    /* The longest path fits AT_MERKLE_TILE_PATH_MAX; smaller buffers fail cleanly. */
    at_merkle_tile longest = {AT_MERKLE_TILE_ENTRIES, UINT64_MAX, 255};
    bool caps = true;
    for (size_t cap = 0; cap < sizeof buf; cap++) {
        at_result r = at_merkle_tile_path_format(&longest, buf, cap, &len);
        caps &= cap < 48 ? r == AT_ERR_TOO_BIG : r == AT_OK && len == 47;
    }
    CHECK(caps, "tile path caps");
    at_merkle_tile badt[] = {
        {64, 0, 256}, {-2, 0, 256}, {0, 0, 0}, {0, 0, 257}, {AT_MERKLE_TILE_ENTRIES, 0, 0}};
    for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++)
        CHECK(at_merkle_tile_path_format(&badt[i], buf, sizeof buf, &len) == AT_ERR_INVALID,
              "format bad tile %zu", i);
    /* Round trips over levels, widths and indexes. */
    bool ok = true;
    int trips = 0;
    for (int level = -1; level <= 63; level++)
        for (unsigned w = 1; w <= 256; w += (w < 3 || w > 250) ? 1 : 37)
            for (uint64_t n = 0; n < UINT64_MAX / 3; n = n * 7 + 2 + (uint64_t)(level & 3)) {
                at_merkle_tile u = {level, n, w}, v = {0, 0, 0};
                ok &= at_merkle_tile_path_format(&u, buf, sizeof buf, &len) == AT_OK &&
                      at_merkle_tile_path_parse(buf, len, &v) == AT_OK && v.level == u.level &&
                      v.index == u.index && v.width == u.width;
                trips++;
            }
    CHECK(ok, "tile path round trips");

    static const char *bad[] = {
        "",
        "/000",
        "000",
        "0",
        "0/",
        "64/000",
        "100/000",
        "1000/000",
        "00/000",
        "01/000",
        "-1/000",
        "+1/000",
        "a/000",
        " 0/000",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/01",
        "0/000.p/001",
        "0/000.p/",
        "0/000.p",
        "0/000.",
        "0/000.x/5",
        "0/000.p/5/",
        "0/000.p/5x",
        "0/000.p/-1",
        "0/000.p/2555",
        "0/000.P/5",
        "0/000,p/5",
        "0/000.p.5",
        "0/000.p/5.p/5",
        "0/000/",
        "0//000",
        "0/x000/005",
        "0/5",
        "0/0005",
        "0/x001/x002",
        "entries/",
        "entries",
        "entries/0",
        "entries/.p/5",
        "entries//000",
        "entries/000.p/256",
        "entry/000",
        "Entries/000",
        "data/000",
        "tile/0/000",
        "0/entries/000",
        "8/2/x001/000",
        "0/000?",
        "0/000#",
        "0/000 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(at_merkle_tile_path_parse(bad[i], strlen(bad[i]), &t) == AT_ERR_INVALID, "path \"%s\" accepted",
              bad[i]);
    CHECK(at_merkle_tile_path_parse("0/000\0", 6, &t) == AT_ERR_INVALID, "trailing NUL");
    CHECK(at_merkle_tile_path_parse("0/000.p/5", 7, &t) == AT_ERR_INVALID, "cut short");
    CHECK(at_merkle_tile_path_parse("0/000.p/5", 5, &t) == AT_OK && t.width == 256, "prefix is a full tile");
    printf("tile paths: %zu known, %d round trips, %zu malformed\n", sizeof good / sizeof good[0], trips,
           sizeof bad / sizeof bad[0]);
}

static void test_tile_widths(void)
{
    /* c2sp.org/tlog-tiles: "a tree of size 70,000 will be represented by 273
     * full level 0 tiles, one partial level 0 tile of width 112, one full
     * level 1 tile, one partial level 1 tile of width 17, and one partial
     * level 2 tile of width 1. [...] a tree of size 256 will be represented
     * by a full level 0 tile and a partial level 1 tile of width 1." */
    CHECK(at_merkle_tile_partial_width(70000, 0) == 112 && at_merkle_tile_partial_width(70000, 1) == 17 &&
              at_merkle_tile_partial_width(70000, 2) == 1 && at_merkle_tile_partial_width(70000, 3) == 0 &&
              at_merkle_tile_partial_width(70000, AT_MERKLE_TILE_ENTRIES) == 112,
          "70,000: partial widths");
    bool full = true;
    for (uint64_t n = 0; n < 273; n++)
        full &= at_merkle_tile_width(70000, 0, n) == 256;
    CHECK(full && at_merkle_tile_width(70000, 0, 273) == 112 && at_merkle_tile_width(70000, 0, 274) == 0,
          "70,000: level 0");
    CHECK(at_merkle_tile_width(70000, 1, 0) == 256 && at_merkle_tile_width(70000, 1, 1) == 17 &&
              at_merkle_tile_width(70000, 1, 2) == 0,
          "70,000: level 1");
    CHECK(at_merkle_tile_width(70000, 2, 0) == 1 && at_merkle_tile_width(70000, 2, 1) == 0 &&
              at_merkle_tile_width(70000, 3, 0) == 0,
          "70,000: levels 2 and 3");
    CHECK(at_merkle_tile_width(256, 0, 0) == 256 && at_merkle_tile_width(256, 0, 1) == 0 &&
              at_merkle_tile_partial_width(256, 0) == 0 && at_merkle_tile_width(256, 1, 0) == 1 &&
              at_merkle_tile_width(256, 2, 0) == 0,
          "256");
    CHECK(at_merkle_tile_width(0, 0, 0) == 0 && at_merkle_tile_partial_width(UINT64_MAX, 7) == 255 &&
              at_merkle_tile_partial_width(UINT64_MAX, 8) == 0 &&
              at_merkle_tile_partial_width(UINT64_MAX, 63) == 0 &&
              at_merkle_tile_width(UINT64_MAX, AT_MERKLE_TILE_ENTRIES, UINT64_MAX / 256) == 255 &&
              at_merkle_tile_width(UINT64_MAX, AT_MERKLE_TILE_ENTRIES, UINT64_MAX / 256 - 1) == 256 &&
              at_merkle_tile_width(UINT64_MAX, 64, 0) == 0 && at_merkle_tile_width(UINT64_MAX, -5, 0) == 0,
          "edges");
    /* Every size to 70,000: the widths at level 0 and 1 add up to the stored counts. */
    bool sums = true;
    for (uint64_t s = 0; s <= 70000; s += 1 + s / 50) {
        for (int l = 0; l < 3; l++) {
            uint64_t total = 0;
            for (uint64_t n = 0; n < 300; n++)
                total += at_merkle_tile_width(s, l, n);
            sums &= total == s >> (8 * l);
        }
    }
    CHECK(sums, "widths add up");
}

static void test_tile_contents(void)
{
    static uint8_t data[256 * HL], lower[256 * HL];
    uint8_t h[HL];
    at_merkle_tile t;
    /* A level-1 tile's hash j is the tree hash of full level-0 tile j; a
     * level-2 tile's hash is that of a full level-1 tile. */
    for (int level = 1; level <= 2; level++) {
        t = (at_merkle_tile){level, 0, level == 1 ? 256 : 15};
        CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_OK, "read level %d",
              level);
        bool ok = true;
        for (unsigned j = 0; j < t.width; j += level == 1 ? 17 : 1) {
            at_merkle_tile below = {level - 1, j, 256};
            ok &= at_merkle_tile_read(mem_read, &big, BIG, &below, lower, sizeof lower) == AT_OK;
            /* fold the 256 hashes pairwise: a complete tree of height 8 */
            for (int w = 256; w > 1; w /= 2)
                for (int k = 0; k < w / 2; k++)
                    at_merkle_node_hash(lower + 2 * k * HL, lower + (2 * k + 1) * HL, lower + k * HL);
            ok &= memcmp(lower, data + j * HL, HL) == 0;
        }
        CHECK(ok, "level %d tile hashes are full lower tiles' roots", level);
    }
    /* A partial tile is a prefix of the full one. */
    t = (at_merkle_tile){0, 100, 256};
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_OK, "full tile");
    t.width = 77;
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, lower, sizeof lower) == AT_OK &&
              memcmp(data, lower, 77 * HL) == 0,
          "partial is a prefix");
    entry_leaf(100 * 256 + 5, h);
    CHECK(memcmp(data + 5 * HL, h, HL) == 0, "level 0 tile holds leaf hashes");
    /* Tiles a tree does not have. */
    at_merkle_tile nf[] = {{0, 3906, 65}, {0, 3907, 1}, {1, 15, 67}, {1, 16, 1},          {2, 0, 16},
                           {3, 0, 1},     {8, 0, 1},    {63, 0, 1},  {0, UINT64_MAX, 256}};
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++)
        CHECK(at_merkle_tile_read(mem_read, &big, BIG, &nf[i], data, sizeof data) == AT_ERR_NOT_FOUND,
              "tile %d/%" PRIu64 ".p/%u exists", nf[i].level, nf[i].index, nf[i].width);
    t = (at_merkle_tile){0, 3906, 64};
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_OK, "last partial tile");
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, 64 * HL - 1) == AT_ERR_TOO_BIG, "cap");
    t = (at_merkle_tile){AT_MERKLE_TILE_ENTRIES, 0, 256};
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_ERR_INVALID, "entry bundle");
    t = (at_merkle_tile){0, 0, 0};
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_ERR_INVALID, "width 0");
    t = (at_merkle_tile){0, 0, 300};
    CHECK(at_merkle_tile_read(mem_read, &big, BIG, &t, data, sizeof data) == AT_ERR_INVALID, "width 300");
    /* In a smaller tree (a past checkpoint), the same tile is partial. */
    t = (at_merkle_tile){0, 273, 112};
    CHECK(at_merkle_tile_read(mem_read, &big, 70000, &t, data, sizeof data) == AT_OK, "70,000: 273.p/112");
    t.width = 113;
    CHECK(at_merkle_tile_read(mem_read, &big, 70000, &t, data, sizeof data) == AT_ERR_NOT_FOUND,
          "70,000: 273.p/113");
}

/* ---- --bench ---------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(void)
{
    mem_store s;
    uint8_t root[HL], leaf[HL], proof[AT_MERKLE_MAX_PROOF * HL], r1[HL];
    size_t len;
    int fails = 0;
    mem_init(&s);
    /* Preallocate, so that the appends are timed, not realloc. */
    for (int l = 0; l < 21; l++) {
        s.cap[l] = ((uint64_t)BIG >> l) + 1;
        s.h[l] = malloc(s.cap[l] * HL);
    }
    double t0 = now();
    for (uint64_t i = 0; i < BIG; i++) {
        entry_leaf(i, leaf);
        fails += !mem_add_hash(&s, leaf);
    }
    double t1 = now();
    printf("append 1,000,000 leaves (leaf hash + at_merkle_append + store): %.3f s, %.0f ns/leaf\n", t1 - t0,
           (t1 - t0) * 1e9 / BIG);

    const int R = 100000;
    t0 = now();
    for (int k = 0; k < R; k++)
        fails += at_merkle_root(mem_read, &s, BIG - (uint64_t)(k & 1), root) != AT_OK;
    t1 = now();
    printf("root at 1,000,000: %.0f ns (%d reads)\n", (t1 - t0) * 1e9 / R, __builtin_popcount(BIG));
    fails += at_merkle_root(mem_read, &s, BIG, root) != AT_OK;

    uint64_t x = 88172645463325252u;
    double prove = 0, verify = 0;
    for (int k = 0; k < R; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t i = x % BIG;
        double a = now();
        fails += at_merkle_prove_inclusion(mem_read, &s, i, BIG, proof, AT_MERKLE_MAX_PROOF, &len) != AT_OK;
        double b = now();
        fails += mem_read(&s, 0, i, 1, leaf) != AT_OK;
        double c = now();
        fails += at_merkle_verify_inclusion(i, BIG, leaf, proof, len, root) != AT_OK;
        double d = now();
        prove += b - a;
        verify += d - c;
    }
    printf(
        "inclusion proof at 1,000,000 (%zu hashes): prove %.0f ns, verify %.0f ns (mean of %d random leaves)\n",
        len, prove * 1e9 / R, verify * 1e9 / R, R);
    prove = verify = 0;
    for (int k = 0; k < R / 10; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t m = 1 + x % (BIG - 1);
        fails += at_merkle_root(mem_read, &s, m, r1) != AT_OK;
        double a = now();
        fails += at_merkle_prove_consistency(mem_read, &s, m, BIG, proof, AT_MERKLE_MAX_PROOF, &len) != AT_OK;
        double b = now();
        fails += at_merkle_verify_consistency(m, BIG, proof, len, r1, root) != AT_OK;
        double c = now();
        prove += b - a;
        verify += c - b;
    }
    printf("consistency proof to 1,000,000: prove %.0f ns, verify %.0f ns (mean of %d random sizes)\n",
           prove * 1e9 / (R / 10), verify * 1e9 / (R / 10), R / 10);
    t0 = now();
    for (int k = 0; k < R * 10; k++)
        at_merkle_node_hash(root, leaf, leaf);
    t1 = now();
    printf("one node hash (at_sha256_oneshot): %.0f ns\n", (t1 - t0) * 1e9 / (R * 10));
    /* For comparison: the same 65 bytes through a reused incremental context
     * (what a node hash could cost without EVP_Digest's per-call setup). */
    at_sha256 *h = at_sha256_new();
    uint8_t buf[1 + 2 * HL] = {1};
    t0 = now();
    for (int k = 0; h && k < R * 10; k++) {
        memcpy(buf + 1 + HL, leaf, HL);
        at_sha256_reset(h);
        at_sha256_update(h, buf, sizeof buf);
        at_sha256_final(h, leaf);
    }
    t1 = now();
    at_sha256_free(h);
    printf("the same through a reused at_sha256 context: %.0f ns\n", (t1 - t0) * 1e9 / (R * 10));
    mem_fini(&s);
    if (fails)
        printf("%d operations failed\n", fails);
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--bench") == 0)
        return bench();
    mem_init(&big);
    CHECK(mem_fill(&big, BIG), "fill 1,000,000");
    test_rfc6962();
    test_generated();
    test_roots();
    test_inclusion_all();
    test_consistency_all();
    test_huge();
    test_errors();
    test_tile_index();
    test_tile_paths();
    test_tile_widths();
    test_tile_contents();
    mem_fini(&big);
    return t_done("test_merkle");
}
