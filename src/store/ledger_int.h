/* ledger_int.h - what ledger.c and ledger_db.c (the log of a database
 * store) share. */
#ifndef AGENTTRACE_LEDGER_INT_H
#define AGENTTRACE_LEDGER_INT_H

#include "store_int.h"

#include "agenttrace/ledger.h"

/* A c2sp.org/tlog-proof file for entry index (its bytes in entry, the
 * inclusion proof's n hashes, the checkpoint cp it is proven in),
 * appended to out. */
at_result ledger_proof_text(const at_buf *entry, uint64_t index, uint8_t (*proof)[AT_SHA256_LEN], size_t n,
                            const at_buf *cp, at_buf *out) AT_WUR;

/* The witnesses of l (a database store's log, whose sequencer calls it):
 * the bare checkpoint note (text_len bytes of note text) of the tree of
 * size, to the witnesses that have not cosigned it (and whose backoff has
 * passed); out gets the note with every cosignature it has. Returns
 * whether every witness cosigned it. Called by one thread at a time. */
bool ledger_cosign(at_ledger *l, const at_buf *note, size_t text_len, uint64_t size, at_buf *out);
size_t ledger_witnesses(const at_ledger *l);

struct ledger_db;
/* The log's sequencer for a database store; owner is the at_ledger whose
 * witnesses it asks (ledger_cosign). */
struct ledger_db *ledger_db_start(at_ledger *owner, at_store *s, const at_ledger_options *o, at_error *err);
void ledger_db_stop(struct ledger_db *l);
void ledger_db_release(struct ledger_db *l);
at_result ledger_db_checkpoint(struct ledger_db *l, at_buf *out, uint64_t *size) AT_WUR;
at_result ledger_db_wait(struct ledger_db *l, const char *sid, uint64_t v, uint64_t *index, unsigned timeout_ms,
                         at_error *err) AT_WUR;
bool ledger_db_wait_signed(struct ledger_db *l, uint64_t index, unsigned timeout_ms);
/* An inclusion (of entry a) or consistency (of size a) proof in the tree of size. */
at_result ledger_db_hashes_proof(struct ledger_db *l, bool consistency, uint64_t a, uint64_t size,
                                 uint8_t (**proof)[AT_SHA256_LEN], size_t *n, at_error *err) AT_WUR;
/* A hash tile, or the entry bundle for level AT_MERKLE_TILE_ENTRIES. */
at_result ledger_db_tile(struct ledger_db *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out) AT_WUR;
at_result ledger_db_proof(struct ledger_db *l, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                          uint64_t *version, at_error *err) AT_WUR;

#endif
