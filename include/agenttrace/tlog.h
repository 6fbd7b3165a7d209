/* tlog.h - the transparency log's storage: an append-only Merkle tree
 * (RFC 6962) of entries, in the files of a directory (tlog.md).
 *
 *   entries    every entry as a big-endian uint16 length and its bytes, in
 *              order: entry bundles (c2sp.org/tlog-tiles) are slices of it
 *   index      the offset of each entry in `entries`, uint64 little-endian
 *   hashes.<l> the stored hashes of level l: hash k is the root of the
 *              complete subtree over leaves [k·2^l, (k+1)·2^l); level 0
 *              holds the leaf hashes. A tile of tile level L is a slice of
 *              hashes.<8L>.
 *   lock       appenders of every process take it (flock)
 *
 * Appends write entries, index, then hashes, and fsync them: the tree size
 * is the count of leaf hashes, so a crash in the middle leaves a prefix that
 * opening trims and completes. Nothing that was part of a synced tree ever
 * changes, so every tree the log can show extends every earlier one. */
#ifndef AGENTTRACE_TLOG_H
#define AGENTTRACE_TLOG_H

#include "agenttrace/buf.h"
#include "agenttrace/chain.h"
#include "agenttrace/common.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>

#define AT_TLOG_MAX_ENTRY 65535 /* a uint16 length prefix */
#define AT_TLOG_MAX_LEVEL 63

typedef struct at_tlog at_tlog;

/* Opens (creating when missing) the log kept in dir, trimming what a
 * crash left half written. NULL with err set on failure. */
at_tlog *at_tlog_open(const char *dir, at_error *err);
void at_tlog_free(at_tlog *l);

/* Appends n entries as one batch (under the lock, fsynced before
 * returning); *first gets the index of the first. An entry longer than
 * AT_TLOG_MAX_ENTRY fails with AT_ERR_TOO_BIG and nothing is written. */
at_result at_tlog_append(at_tlog *l, const at_slice *entries, size_t n, uint64_t *first,
                         at_error *err) AT_WUR;

/* The tree size: entries whose hashes are stored, whoever appended them. */
uint64_t at_tlog_size(at_tlog *l);

/* Reads count stored hashes of level starting at first into out. */
at_result at_tlog_hashes(at_tlog *l, int level, uint64_t first, size_t count, uint8_t *out) AT_WUR;

/* The root of the tree of the first size entries (RFC 6962 MTH). */
at_result at_tlog_root(at_tlog *l, uint64_t size, uint8_t root[AT_SHA256_LEN], at_error *err) AT_WUR;

/* Inclusion proof of entry index in the tree of size (leaf side first;
 * *proof malloc'd, *n hashes); consistency proof between sizes m <= n. */
at_result at_tlog_inclusion(at_tlog *l, uint64_t index, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                            size_t *n, at_error *err) AT_WUR;
at_result at_tlog_consistency(at_tlog *l, uint64_t m, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                              size_t *n, at_error *err) AT_WUR;

/* Entry index's bytes, appended to out. */
at_result at_tlog_entry(at_tlog *l, uint64_t index, at_buf *out, at_error *err) AT_WUR;

/* c2sp.org/tlog-tiles, for a tree of size size: the hash tile (level,
 * n) of width w (256: full) and the entry bundle n of width w, appended to
 * out. AT_ERR_NOT_FOUND when the tree does not hold that tile. */
at_result at_tlog_tile(at_tlog *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out) AT_WUR;
at_result at_tlog_bundle(at_tlog *l, uint64_t n, unsigned w, uint64_t size, at_buf *out) AT_WUR;

#endif
