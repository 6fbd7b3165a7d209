/* merkle.c - RFC 6962 Merkle trees over stored complete subtrees.
 *
 * Design. Every node of an RFC 6962 tree covers a range [lo, hi) whose lo
 * is a multiple of the smallest power of two >= hi - lo (the root starts at
 * 0; a split at the largest power of two k < n keeps that true on both
 * sides). Such a range is therefore the concatenation of the complete,
 * aligned subtrees given by the one bits of hi - lo, largest first, and its
 * hash is theirs folded from the right: MTH(D[lo:hi]) = H(c1, H(c2, ... ck)).
 * range_hash() does exactly that with one stored hash per bit, so a root, a
 * proof's sibling, anything the proofs need costs O(log n) reads. The
 * proofs walk the RFC's recursion top-down, iteratively, remembering the
 * sibling ranges, and hash them afterwards in the RFC's order (leaf side
 * first). The verifiers are RFC 9162's algorithms, step by step, over the
 * proof as given (no copy, no allocation).
 *
 * No allocation but for the leaf hash of an entry over 1 KiB: the largest
 * temporary is 64 hashes (2 KiB) on the stack. */
#include "agenttrace/merkle.h"
#include "agenttrace/sha256.h"

#include <stdbool.h>
#include <string.h>

#define HL AT_MERKLE_HASH_LEN

/* ---- hashes ------------------------------------------------------------ */

at_result at_merkle_leaf_hash(const void *entry, size_t n, uint8_t out[HL])
{
    static const uint8_t prefix = 0x00;
    uint8_t small[1 + 1024];
    if (n <= sizeof small - 1) { /* the common case, without an allocation */
        small[0] = prefix;
        if (n)
            memcpy(small + 1, entry, n);
        at_sha256_oneshot(small, 1 + n, out);
        return AT_OK;
    }
    at_sha256 *h = at_sha256_new();
    if (!h)
        return AT_ERR_NOMEM;
    at_sha256_update(h, &prefix, 1);
    at_sha256_update(h, entry, n);
    at_sha256_final(h, out);
    at_sha256_free(h);
    return AT_OK;
}

void at_merkle_node_hash(const uint8_t left[HL], const uint8_t right[HL], uint8_t out[HL])
{
    uint8_t buf[1 + 2 * HL];
    buf[0] = 0x01;
    memcpy(buf + 1, left, HL);
    memcpy(buf + 1 + HL, right, HL);
    at_sha256_oneshot(buf, sizeof buf, out);
}

void at_merkle_empty_root(uint8_t out[HL])
{
    at_sha256_oneshot("", 0, out);
}

/* ---- helpers ------------------------------------------------------------ */

/* Number of bits needed to write x (0 for 0). */
static int bit_len(uint64_t x)
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

/* The largest power of two smaller than n, for n >= 2: where RFC 6962
 * splits a tree of n leaves. */
static uint64_t split_point(uint64_t n)
{
    return (uint64_t)1 << (bit_len(n - 1) - 1);
}

uint64_t at_merkle_level_count(uint64_t size, int level)
{
    if (level < 0 || level >= AT_MERKLE_MAX_LEVELS)
        return 0;
    return size >> level;
}

/* MTH(D[lo:hi]) for a node range of the tree (lo < hi, lo aligned as the
 * design note says), from one stored hash per one bit of hi - lo. */
static at_result range_hash(at_merkle_read_fn read, void *ctx, uint64_t lo, uint64_t hi, uint8_t out[HL])
{
    uint8_t parts[AT_MERKLE_MAX_LEVELS][HL];
    int np = 0;
    uint64_t n = hi - lo, pos = lo;
    if (hi <= lo)
        return AT_ERR_INVALID;
    for (int b = AT_MERKLE_MAX_LEVELS - 1; b >= 0; b--) {
        uint64_t span = (uint64_t)1 << b;
        if (!(n & span))
            continue;
        if (pos & (span - 1)) /* not a node of the tree: a caller's bug */
            return AT_ERR_INVALID;
        at_result r = read(ctx, b, pos >> b, 1, parts[np]);
        if (r != AT_OK)
            return r;
        np++;
        pos += span; /* cannot wrap: pos <= hi */
    }
    memcpy(out, parts[np - 1], HL);
    for (int i = np - 2; i >= 0; i--)
        at_merkle_node_hash(parts[i], out, out);
    return AT_OK;
}

typedef struct {
    uint64_t lo, hi;
} span_t;

/* Hashes the ranges sib[count - 1], ..., sib[0] (the order the RFC lists
 * them: the deepest sibling first) into proof + first hashes. */
static at_result hash_siblings(at_merkle_read_fn read, void *ctx, const span_t *sib, int count,
                               uint8_t *proof, size_t first)
{
    for (int j = 0; j < count; j++) {
        const span_t *s = &sib[count - 1 - j];
        at_result r = range_hash(read, ctx, s->lo, s->hi, proof + (first + (size_t)j) * HL);
        if (r != AT_OK)
            return r;
    }
    return AT_OK;
}

/* ---- the log side ------------------------------------------------------- */

at_result at_merkle_append(at_merkle_read_fn read, void *ctx, uint64_t size, const uint8_t leaf[HL],
                           at_merkle_stored out[AT_MERKLE_MAX_APPEND], size_t *count)
{
    uint8_t h[HL], left[HL];
    uint64_t k = size;
    int level = 0;
    size_t c = 0;
    if (size == UINT64_MAX)
        return AT_ERR_TOO_BIG;
    memcpy(h, leaf, HL);
    out[c].level = 0;
    out[c].index = size;
    memcpy(out[c].hash, h, HL);
    c++;
    /* Each trailing one bit of k: the new node is a right child whose left
     * sibling is stored; their parent is now complete. */
    while (k & 1) {
        at_result r = read(ctx, level, k - 1, 1, left);
        if (r != AT_OK)
            return r;
        at_merkle_node_hash(left, h, h);
        k >>= 1;
        level++;
        out[c].level = level;
        out[c].index = k;
        memcpy(out[c].hash, h, HL);
        c++;
    }
    *count = c;
    return AT_OK;
}

at_result at_merkle_root(at_merkle_read_fn read, void *ctx, uint64_t size, uint8_t root[HL])
{
    if (size == 0) {
        at_merkle_empty_root(root);
        return AT_OK;
    }
    return range_hash(read, ctx, 0, size, root);
}

at_result at_merkle_prove_inclusion(at_merkle_read_fn read, void *ctx, uint64_t index, uint64_t size,
                                    uint8_t *proof, size_t cap, size_t *len)
{
    span_t sib[AT_MERKLE_MAX_LEVELS];
    int depth = 0;
    uint64_t lo = 0, hi = size;
    if (index >= size)
        return AT_ERR_INVALID;
    /* PATH(m, D[n]): below the split k go left, the sibling is D[k:n];
     * otherwise go right, the sibling is D[0:k]. */
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);
        if (index - lo < k) {
            sib[depth++] = (span_t){lo + k, hi};
            hi = lo + k;
        } else {
            sib[depth++] = (span_t){lo, lo + k};
            lo += k;
        }
    }
    if ((size_t)depth > cap)
        return AT_ERR_TOO_BIG;
    at_result r = hash_siblings(read, ctx, sib, depth, proof, 0);
    if (r != AT_OK)
        return r;
    *len = (size_t)depth;
    return AT_OK;
}

at_result at_merkle_prove_consistency(at_merkle_read_fn read, void *ctx, uint64_t m, uint64_t n,
                                      uint8_t *proof, size_t cap, size_t *len)
{
    span_t sib[AT_MERKLE_MAX_LEVELS];
    int depth = 0;
    uint64_t lo = 0, hi = n;
    bool b = true; /* SUBPROOF's b: D[lo:m] is the tree the proof starts from */
    if (m > n)
        return AT_ERR_INVALID;
    if (m == 0 || m == n) {
        *len = 0;
        return AT_OK;
    }
    /* SUBPROOF(m - lo, D[lo:hi], b), with lo < m <= hi throughout. */
    while (m != hi) {
        uint64_t k = split_point(hi - lo);
        if (m - lo <= k) {
            sib[depth++] = (span_t){lo + k, hi};
            hi = lo + k;
        } else {
            sib[depth++] = (span_t){lo, lo + k};
            lo += k;
            b = false;
        }
    }
    size_t total = (size_t)depth + (b ? 0 : 1);
    if (total > cap)
        return AT_ERR_TOO_BIG;
    if (!b) { /* SUBPROOF(m, D[m], false) = {MTH(D[m])}: the first hash */
        at_result r = range_hash(read, ctx, lo, hi, proof);
        if (r != AT_OK)
            return r;
    }
    at_result r = hash_siblings(read, ctx, sib, depth, proof, b ? 0 : 1);
    if (r != AT_OK)
        return r;
    *len = total;
    return AT_OK;
}

/* ---- the auditor side --------------------------------------------------- */

at_result at_merkle_root_from_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[HL],
                                        const uint8_t *proof, size_t len, uint8_t root[HL])
{
    /* RFC 9162 §2.1.3.2, steps 1-5 (the comparison with the root aside). */
    uint64_t fn = index, sn;
    uint8_t r[HL];
    if (index >= size)
        return AT_ERR_INVALID;
    sn = size - 1;
    memcpy(r, leaf, HL);
    for (size_t i = 0; i < len; i++) {
        const uint8_t *p = proof + i * HL;
        if (sn == 0)
            return AT_ERR_INVALID; /* too many hashes */
        if ((fn & 1) || fn == sn) {
            at_merkle_node_hash(p, r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            at_merkle_node_hash(r, p, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return AT_ERR_INVALID; /* too few hashes */
    memcpy(root, r, HL);
    return AT_OK;
}

at_result at_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[HL],
                                     const uint8_t *proof, size_t len, const uint8_t root[HL])
{
    uint8_t got[HL];
    at_result r = at_merkle_root_from_inclusion(index, size, leaf, proof, len, got);
    if (r != AT_OK)
        return r;
    return memcmp(got, root, HL) == 0 ? AT_OK : AT_ERR_INVALID;
}

/* Hash i of RFC 9162's consistency_path: root_m first when pre is 1. */
static const uint8_t *path_at(const uint8_t *root_m, const uint8_t *proof, size_t pre, size_t i)
{
    return i < pre ? root_m : proof + (i - pre) * HL;
}

at_result at_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t *proof, size_t len,
                                       const uint8_t root_m[HL], const uint8_t root_n[HL])
{
    uint8_t fr[HL], sr[HL];
    if (m > n)
        return AT_ERR_INVALID;
    if (m == 0) { /* every tree extends the empty one, whose root is known */
        uint8_t empty[HL];
        at_merkle_empty_root(empty);
        if (len != 0 || memcmp(root_m, empty, HL) != 0 || (n == 0 && memcmp(root_n, empty, HL) != 0))
            return AT_ERR_INVALID;
        return AT_OK;
    }
    if (m == n)
        return len == 0 && memcmp(root_m, root_n, HL) == 0 ? AT_OK : AT_ERR_INVALID;
    /* RFC 9162 §2.1.4.2. 1: an empty path fails. */
    if (len == 0)
        return AT_ERR_INVALID;
    /* 2: when m is a power of two, the path starts with root_m (seen
     * through `pre` rather than copied). */
    size_t pre = (m & (m - 1)) == 0 ? 1 : 0;
    size_t total = len + pre;
    /* 3, 4 */
    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    /* 5 */
    memcpy(fr, path_at(root_m, proof, pre, 0), HL);
    memcpy(sr, path_at(root_m, proof, pre, 0), HL);
    /* 6 */
    for (size_t i = 1; i < total; i++) {
        const uint8_t *c = path_at(root_m, proof, pre, i);
        if (sn == 0)
            return AT_ERR_INVALID;
        if ((fn & 1) || fn == sn) {
            at_merkle_node_hash(c, fr, fr);
            at_merkle_node_hash(c, sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            at_merkle_node_hash(sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    /* 7 */
    if (sn != 0 || memcmp(fr, root_m, HL) != 0 || memcmp(sr, root_n, HL) != 0)
        return AT_ERR_INVALID;
    return AT_OK;
}

/* ---- tiles -------------------------------------------------------------- */

/* Appends the n bytes at s to out[*pos..cap); false when they do not fit
 * with a NUL after them. */
static bool put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (cap - *pos <= n)
        return false;
    memcpy(out + *pos, s, n);
    *pos += n;
    return true;
}

/* Decimal digits of v into buf (at least 20 bytes, no NUL); returns how
 * many. */
static size_t u64_digits(uint64_t v, char *buf)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

at_result at_merkle_tile_index_format(uint64_t n, char *out, size_t cap, size_t *len)
{
    char digits[24]; /* up to 2 zeros of padding, then up to 20 digits */
    size_t nd = u64_digits(n, digits + 2), pad = (3 - nd % 3) % 3, pos = 0;
    const char *d = digits + 2 - pad; /* whole 3-digit groups */
    memset(digits, '0', 2);
    if (cap == 0)
        return AT_ERR_TOO_BIG;
    for (size_t g = 0; g < pad + nd; g += 3) {
        bool last = g + 3 == pad + nd;
        if (!last && !put(out, cap, &pos, "x", 1))
            return AT_ERR_TOO_BIG;
        if (!put(out, cap, &pos, d + g, 3))
            return AT_ERR_TOO_BIG;
        if (!last && !put(out, cap, &pos, "/", 1))
            return AT_ERR_TOO_BIG;
    }
    out[pos] = '\0';
    *len = pos;
    return AT_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

at_result at_merkle_tile_index_parse(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    bool first = true;
    if (n == 0)
        return AT_ERR_INVALID;
    for (;;) {
        bool x = i < n && p[i] == 'x';
        if (x)
            i++;
        if (n - i < 3 || !is_digit(p[i]) || !is_digit(p[i + 1]) || !is_digit(p[i + 2]))
            return AT_ERR_INVALID;
        unsigned g =
            (unsigned)(p[i] - '0') * 100 + (unsigned)(p[i + 1] - '0') * 10 + (unsigned)(p[i + 2] - '0');
        i += 3;
        bool last = i == n;
        if (x == last) /* every group but the last has its x, the last none */
            return AT_ERR_INVALID;
        if (first && !last && g == 0) /* a leading all-zero group */
            return AT_ERR_INVALID;
        if (v > (UINT64_MAX - g) / 1000)
            return AT_ERR_INVALID;
        v = v * 1000 + g;
        first = false;
        if (last)
            break;
        if (p[i] != '/')
            return AT_ERR_INVALID;
        i++;
    }
    *out = v;
    return AT_OK;
}

at_result at_merkle_tile_path_format(const at_merkle_tile *t, char *out, size_t cap, size_t *len)
{
    char num[24];
    size_t pos = 0, nlen;
    if (t->level != AT_MERKLE_TILE_ENTRIES && (t->level < 0 || t->level > AT_MERKLE_TILE_MAX_LEVEL))
        return AT_ERR_INVALID;
    if (t->width < 1 || t->width > AT_MERKLE_TILE_WIDTH)
        return AT_ERR_INVALID;
    if (cap == 0)
        return AT_ERR_TOO_BIG;
    if (t->level == AT_MERKLE_TILE_ENTRIES) {
        if (!put(out, cap, &pos, "entries/", 8))
            return AT_ERR_TOO_BIG;
    } else {
        nlen = u64_digits((uint64_t)t->level, num);
        if (!put(out, cap, &pos, num, nlen) || !put(out, cap, &pos, "/", 1))
            return AT_ERR_TOO_BIG;
    }
    at_result r = at_merkle_tile_index_format(t->index, out + pos, cap - pos, &nlen);
    if (r != AT_OK)
        return r;
    pos += nlen;
    if (t->width < AT_MERKLE_TILE_WIDTH) {
        nlen = u64_digits(t->width, num);
        if (!put(out, cap, &pos, ".p/", 3) || !put(out, cap, &pos, num, nlen))
            return AT_ERR_TOO_BIG;
    }
    out[pos] = '\0';
    *len = pos;
    return AT_OK;
}

/* Parses the n bytes at p as a decimal without leading zeros (or "0") no
 * larger than max. */
static bool parse_small(const char *p, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;
    if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

at_result at_merkle_tile_path_parse(const char *p, size_t n, at_merkle_tile *t)
{
    static const char entries[] = "entries/";
    at_merkle_tile got = {0, 0, AT_MERKLE_TILE_WIDTH};
    size_t i = 0;
    if (n >= sizeof entries - 1 && memcmp(p, entries, sizeof entries - 1) == 0) {
        got.level = AT_MERKLE_TILE_ENTRIES;
        i = sizeof entries - 1;
    } else {
        unsigned level;
        while (i < n && p[i] != '/')
            i++;
        if (i == n || !parse_small(p, i, AT_MERKLE_TILE_MAX_LEVEL, &level))
            return AT_ERR_INVALID;
        got.level = (int)level;
        i++;
    }
    /* The index runs to the end or to ".p/<W>"; it has no '.' of its own. */
    size_t start = i;
    while (i < n && p[i] != '.')
        i++;
    at_result r = at_merkle_tile_index_parse(p + start, i - start, &got.index);
    if (r != AT_OK)
        return r;
    if (i < n) {
        unsigned w;
        if (n - i < 3 || memcmp(p + i, ".p/", 3) != 0)
            return AT_ERR_INVALID;
        i += 3;
        if (!parse_small(p + i, n - i, AT_MERKLE_TILE_WIDTH - 1, &w) || w == 0)
            return AT_ERR_INVALID;
        got.width = w;
    }
    *t = got;
    return AT_OK;
}

/* Number of hashes stored at a tile level's stored level in a tree of size
 * leaves (entries for an entry bundle). */
static uint64_t tile_level_count(uint64_t size, int level)
{
    if (level == AT_MERKLE_TILE_ENTRIES)
        return size;
    if (level < 0 || level > AT_MERKLE_TILE_MAX_LEVEL)
        return 0;
    return at_merkle_level_count(size, level * AT_MERKLE_TILE_HEIGHT);
}

unsigned at_merkle_tile_partial_width(uint64_t size, int level)
{
    return (unsigned)(tile_level_count(size, level) % AT_MERKLE_TILE_WIDTH);
}

unsigned at_merkle_tile_width(uint64_t size, int level, uint64_t index)
{
    uint64_t count = tile_level_count(size, level);
    uint64_t full = count / AT_MERKLE_TILE_WIDTH;
    if (index < full)
        return AT_MERKLE_TILE_WIDTH;
    if (index == full)
        return (unsigned)(count % AT_MERKLE_TILE_WIDTH);
    return 0;
}

at_result at_merkle_tile_read(at_merkle_read_fn read, void *ctx, uint64_t size, const at_merkle_tile *t,
                              uint8_t *out, size_t cap)
{
    if (t->level == AT_MERKLE_TILE_ENTRIES || t->level < 0 || t->level > AT_MERKLE_TILE_MAX_LEVEL)
        return AT_ERR_INVALID;
    if (t->width < 1 || t->width > AT_MERKLE_TILE_WIDTH)
        return AT_ERR_INVALID;
    if (at_merkle_tile_width(size, t->level, t->index) < t->width)
        return AT_ERR_NOT_FOUND;
    if (cap / HL < t->width)
        return AT_ERR_TOO_BIG;
    /* The tile exists, so index * 256 + width <= size >> (8 * level) and
     * neither the level nor the first index can overflow. */
    return read(ctx, t->level * AT_MERKLE_TILE_HEIGHT, t->index * AT_MERKLE_TILE_WIDTH, t->width, out);
}
