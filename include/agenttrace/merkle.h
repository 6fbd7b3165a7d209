/* merkle.h - the transparency log's Merkle tree (RFC 6962 §2.1): hashes,
 * appends, roots and proofs computed from stored complete subtrees, the
 * offline verification of proofs (RFC 9162 §2.1.3.2, §2.1.4.2), and the
 * tile paths and contents of c2sp.org/tlog-tiles.
 *
 * The storage model (Go's golang.org/x/mod/sumdb/tlog): for every level
 * l >= 0 the log stores the hashes of its complete subtrees of 2^l leaves,
 * node (l, k) being MTH of the leaves [k * 2^l, (k + 1) * 2^l). Level 0
 * holds the leaf hashes; a tree of size n has n >> l hashes at level l.
 * Stored hashes never change, so a level only grows at its end. This module
 * owns no storage: it reads what it needs through a reader callback, so it
 * can sit over files, memory or a database, and it tells the caller what to
 * store on each append. Sizes and indexes are uint64; every function checks
 * its arithmetic. */
#ifndef AGENTTRACE_MERKLE_H
#define AGENTTRACE_MERKLE_H

#include "agenttrace/common.h"

#define AT_MERKLE_HASH_LEN   32
#define AT_MERKLE_MAX_LEVELS 64 /* stored levels 0..63: sizes are uint64 */
#define AT_MERKLE_MAX_PROOF  65 /* hashes in the longest proof of either kind */
#define AT_MERKLE_MAX_APPEND 64 /* hashes one append stores */

/* Reads the count stored hashes of level starting at index first into out
 * (count * AT_MERKLE_HASH_LEN bytes). The module only asks for hashes of
 * complete subtrees of the tree size it was given, so a reader may fail a
 * request beyond what it holds (AT_ERR_NOT_FOUND); any error it returns is
 * handed back unchanged by the function that called it. */
typedef at_result (*at_merkle_read_fn)(void *ctx, int level, uint64_t first, size_t count, uint8_t *out);

/* ---- hashes ---------------------------------------------------------- */

/* SHA-256(0x00 || entry): the leaf hash of an n-byte entry. Entries of up
 * to 1 KiB are hashed without allocating; a longer one needs a hash
 * context, and AT_ERR_NOMEM is returned when that cannot be had. */
at_result at_merkle_leaf_hash(const void *entry, size_t n, uint8_t out[AT_MERKLE_HASH_LEN]) AT_WUR;
/* SHA-256(0x01 || left || right). out may be left or right. */
void at_merkle_node_hash(const uint8_t left[AT_MERKLE_HASH_LEN], const uint8_t right[AT_MERKLE_HASH_LEN],
                         uint8_t out[AT_MERKLE_HASH_LEN]);
/* The root of the empty tree, SHA-256 of the empty string. */
void at_merkle_empty_root(uint8_t out[AT_MERKLE_HASH_LEN]);

/* ---- the log side: stored hashes in, hashes and proofs out ------------ */

/* Number of stored hashes at level in a tree of size leaves (size >> level;
 * 0 for a level of 64 or more). */
uint64_t at_merkle_level_count(uint64_t size, int level);

/* One hash to store: node (level, index). */
typedef struct {
    int level;
    uint64_t index;
    uint8_t hash[AT_MERKLE_HASH_LEN];
} at_merkle_stored;

/* The hashes to store when the leaf with hash leaf is appended to a tree of
 * size leaves (it becomes leaf number size): the leaf itself at (0, size),
 * then each subtree it completes, lowest level first, so storing them in
 * order keeps every level a prefix. Writes them to out and their number
 * (1 + the trailing one bits of size) to *count. Reads the left siblings it
 * needs through read. AT_ERR_TOO_BIG when size is UINT64_MAX; a reader's
 * error as is; out and *count are then unspecified. */
at_result at_merkle_append(at_merkle_read_fn read, void *ctx, uint64_t size,
                           const uint8_t leaf[AT_MERKLE_HASH_LEN], at_merkle_stored out[AT_MERKLE_MAX_APPEND],
                           size_t *count) AT_WUR;

/* The tree hash of the first size leaves (RFC 6962 MTH), from one stored
 * hash per one bit of size; the empty tree's root for size 0. The caller
 * vouches that the store holds a tree of at least size leaves. */
at_result at_merkle_root(at_merkle_read_fn read, void *ctx, uint64_t size,
                         uint8_t root[AT_MERKLE_HASH_LEN]) AT_WUR;

/* The inclusion proof of leaf index in the tree of the first size leaves
 * (RFC 6962 §2.1.1 PATH, leaf side first): writes *len hashes, at most
 * AT_MERKLE_MAX_PROOF, to proof (room for cap hashes). AT_ERR_INVALID when
 * index >= size, AT_ERR_TOO_BIG when cap is too small, a reader's error as
 * is. O(log size) stored hashes are read. */
at_result at_merkle_prove_inclusion(at_merkle_read_fn read, void *ctx, uint64_t index, uint64_t size,
                                    uint8_t *proof, size_t cap, size_t *len) AT_WUR;

/* The consistency proof between the trees of the first m and the first n
 * leaves (RFC 6962 §2.1.2 PROOF), into proof like the above; empty when
 * m == n or m == 0 (RFC 9162 §2.1.4). AT_ERR_INVALID when m > n. */
at_result at_merkle_prove_consistency(at_merkle_read_fn read, void *ctx, uint64_t m, uint64_t n,
                                      uint8_t *proof, size_t cap, size_t *len) AT_WUR;

/* ---- the auditor side: hashes only, no store --------------------------- */

/* The root that an inclusion proof of len hashes yields for leaf hash leaf at
 * index in a tree of size leaves (RFC 9162 §2.1.3.2 without the final
 * comparison). AT_ERR_INVALID when index >= size or the proof has the wrong
 * number of hashes for that index and size. */
at_result at_merkle_root_from_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[AT_MERKLE_HASH_LEN],
                                        const uint8_t *proof, size_t len,
                                        uint8_t root[AT_MERKLE_HASH_LEN]) AT_WUR;

/* AT_OK when proof (len hashes) shows that leaf is leaf number index of the
 * tree of size leaves with hash root (RFC 9162 §2.1.3.2); AT_ERR_INVALID
 * otherwise. */
at_result at_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[AT_MERKLE_HASH_LEN],
                                     const uint8_t *proof, size_t len,
                                     const uint8_t root[AT_MERKLE_HASH_LEN]) AT_WUR;

/* AT_OK when proof (len hashes) shows that the tree of size m with hash
 * root_m is a prefix of the tree of size n with hash root_n (RFC 9162
 * §2.1.4.2); AT_ERR_INVALID otherwise. m == n needs an empty proof and equal
 * roots; m == 0 needs an empty proof and root_m the empty tree's root. */
at_result at_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t *proof, size_t len,
                                       const uint8_t root_m[AT_MERKLE_HASH_LEN],
                                       const uint8_t root_n[AT_MERKLE_HASH_LEN]) AT_WUR;

/* ---- tiles (c2sp.org/tlog-tiles) ---------------------------------------- */

#define AT_MERKLE_TILE_HEIGHT    8   /* levels of the tree one tile spans */
#define AT_MERKLE_TILE_WIDTH     256 /* hashes (or entries) in a full tile */
#define AT_MERKLE_TILE_MAX_LEVEL 63
#define AT_MERKLE_TILE_ENTRIES   (-1) /* at_merkle_tile.level of an entry bundle */
/* Room for the longest tile path and its NUL ("entries/x018/x446/x744/
 * x073/x709/x551/615.p/255" is 47 bytes). */
#define AT_MERKLE_TILE_PATH_MAX  64

/* A tile: level L in 0..63, or AT_MERKLE_TILE_ENTRIES for an entry bundle;
 * its index N; its width, 1..255 for a partial tile, AT_MERKLE_TILE_WIDTH
 * for a full one. A level-L tile N of width W holds the stored hashes
 * (8L, N * 256 + j) for j < W, each the root of a full level L - 1 tile;
 * entry bundle N holds the entries N * 256 + j. */
typedef struct {
    int level;
    uint64_t index;
    unsigned width;
} at_merkle_tile;

/* Writes the path elements of tile index n (1234067 -> "x001/x234/067",
 * 5 -> "005") and a NUL to out (cap bytes), its length without the NUL to
 * *len. AT_ERR_TOO_BIG when cap is too small. */
at_result at_merkle_tile_index_format(uint64_t n, char *out, size_t cap, size_t *len) AT_WUR;
/* Parses the n bytes at p as a tile index in the canonical form the above
 * writes; AT_ERR_INVALID for anything else: groups other than three digits,
 * an `x` missing on a group or present on the last, a leading all-zero
 * group, non-digits, empty groups, a value beyond uint64. */
at_result at_merkle_tile_index_parse(const char *p, size_t n, uint64_t *out) AT_WUR;

/* Writes the tile's path after <prefix>/tile/ ("<L>/<N>[.p/<W>]" or
 * "entries/<N>[.p/<W>]") and a NUL to out (cap bytes, AT_MERKLE_TILE_PATH_MAX
 * always suffices), its length to *len. AT_ERR_INVALID for a level or
 * width out of range, AT_ERR_TOO_BIG when cap is too small. */
at_result at_merkle_tile_path_format(const at_merkle_tile *t, char *out, size_t cap, size_t *len) AT_WUR;
/* Parses the n bytes at p, a path after <prefix>/tile/, into *t: L decimal
 * 0..63 without leading zeros or "entries", "/", a canonical index, and an
 * optional ".p/<W>" with W decimal 1..255 without leading zeros (width
 * AT_MERKLE_TILE_WIDTH when absent). AT_ERR_INVALID for anything else; *t is
 * written only on success. */
at_result at_merkle_tile_path_parse(const char *p, size_t n, at_merkle_tile *t) AT_WUR;

/* The width of the partial tile at level (AT_MERKLE_TILE_ENTRIES: of the
 * partial entry bundle) in a tree of size leaves: floor(size / 256^level)
 * mod 256; 0 when there is none. */
unsigned at_merkle_tile_partial_width(uint64_t size, int level);
/* How many hashes (or entries) of tile index at level a tree of size leaves
 * has: AT_MERKLE_TILE_WIDTH for a full tile, the partial width for the last
 * one, 0 beyond. A tile t can be served for that size when its width is at
 * most this. */
unsigned at_merkle_tile_width(uint64_t size, int level, uint64_t index);

/* Reads the t->width stored hashes a hash tile holds into out (cap bytes,
 * at least t->width * AT_MERKLE_HASH_LEN): the tile's bytes, in one call of
 * read. AT_ERR_NOT_FOUND when a tree of size leaves does not have them all
 * (tiles above level 7 never exist in a uint64 tree), AT_ERR_INVALID for an
 * entry bundle or a width out of range, AT_ERR_TOO_BIG when cap is too
 * small, a reader's error as is. */
at_result at_merkle_tile_read(at_merkle_read_fn read, void *ctx, uint64_t size, const at_merkle_tile *t,
                              uint8_t *out, size_t cap) AT_WUR;

#endif
