/* ledger.h - a store's transparency log: every version of every session
 * becomes an entry of the log (tlog.h), and signed checkpoints over it are
 * published within a second of a write (tlog.md).
 *
 * One thread integrates in batches: versions the store reports as it
 * commits them (at_store_on_version), and versions other processes wrote
 * (`agent-traced import` into the same storage: at_ledger_check, or the
 * startup scan). For each batch: the entries appended and synced, then a
 * "logged" record in each session's history (one sync round); waiters for
 * an index go on; then a checkpoint is signed over the new tree and written
 * atomically. A crash anywhere leaves either versions not yet logged (found
 * again) or entries past the last checkpoint whose records are missing
 * (restored at start from the entries themselves, which name their session
 * and version); never a version logged twice, never a checkpoint that does
 * not extend the previous one. */
#ifndef AGENTTRACE_LEDGER_H
#define AGENTTRACE_LEDGER_H

#include "agenttrace/buf.h"
#include "agenttrace/note.h"
#include "agenttrace/store.h"
#include "agenttrace/tlog.h"

typedef struct at_ledger at_ledger;

#define AT_LEDGER_MAX_WITNESSES 16

/* A witness the log asks to cosign its checkpoints (c2sp.org/tlog-witness). */
typedef struct {
    const char *url;                  /* its submission prefix: POST <url>/add-checkpoint */
    const at_note_verifier *verifier; /* its cosignature key (type 0x04); borrowed for the ledger's life */
} at_ledger_witness;

typedef struct {
    const char *origin;           /* the log's name: the checkpoint's first line and the key's name */
    const at_note_signer *signer; /* borrowed; its name must be origin */
    unsigned batch_ms;            /* how long a batch waits for company (default 0: group commit) */
    struct at_catalog *catalog;   /* optional: sessions other processes wrote are looked at each second */
    /* Witnesses (at most AT_LEDGER_MAX_WITNESSES; the list is copied, the
     * keys borrowed): the integration thread submits each new checkpoint to
     * each, with the consistency proof from the size that witness last
     * cosigned, and publishes the checkpoint (file and at_ledger_checkpoint)
     * with the cosignatures that verify. A witness that is down or refuses
     * is logged and skipped: the checkpoint goes out without its
     * cosignature, and the current checkpoint is offered again (after a
     * backoff of 1 s doubling to 60 s, while idle) and each new one is. */
    const at_ledger_witness *witnesses;
    size_t n_witnesses;
    unsigned witness_timeout_ms; /* the limit of one round of submissions (default 2000) */
    /* A database store's sequencer waits for at_ledger_release before its
     * first turn (and its first message: serve's first line on standard
     * error stays `listening on`). */
    bool held;
} at_ledger_options;

/* Loads the log's private key from path (Go's note private-key form),
 * refusing a file that group or others can read; with create, a missing
 * file is made (mode 0600) for a new key named origin. A key whose name is
 * not origin (when origin is given) is refused: the key name is the log's
 * origin. */
at_note_signer *at_ledger_key(const char *path, const char *origin, bool create, at_error *err);

/* Opens the log under the store, finishes what a crash left, logs every
 * version not logged yet and starts the thread. NULL with err set when the
 * log's files are behind its last checkpoint (restore them: signing a
 * smaller tree would fork the log) or cannot be read. */
at_ledger *at_ledger_start(at_store *s, const at_ledger_options *o, at_error *err);
void at_ledger_stop(at_ledger *l);
/* Lets a held log (at_ledger_options.held) go; NULL or not held: nothing. */
void at_ledger_release(at_ledger *l);

/* The log's files (a directory store's log only: use the functions below,
 * which a database store's log answers too). */
at_tlog *at_ledger_log(at_ledger *l);
/* at_tlog_tile / at_tlog_bundle (level AT_MERKLE_TILE_ENTRIES) /
 * at_tlog_inclusion / at_tlog_consistency of the ledger's log. */
at_result at_ledger_tile(at_ledger *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out) AT_WUR;
at_result at_ledger_inclusion(at_ledger *l, uint64_t index, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                              size_t *n, at_error *err) AT_WUR;
at_result at_ledger_consistency(at_ledger *l, uint64_t m, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                                size_t *n, at_error *err) AT_WUR;

/* Waits (at most timeout_ms) until version v of sid is in the log:
 * *index is its entry. AT_ERR_NOT_FOUND on time out. */
at_result at_ledger_wait(at_ledger *l, const char *sid, uint64_t v, uint64_t *index, unsigned timeout_ms,
                         at_error *err) AT_WUR;

/* Waits (at most timeout_ms) until a signed checkpoint covers entry index;
 * false on time out. (at_ledger_wait returns once the entry is durable
 * and recorded, a little before the checkpoint that covers it.) */
bool at_ledger_wait_signed(at_ledger *l, uint64_t index, unsigned timeout_ms);

/* Appends the latest signed checkpoint to out (*size: its tree size).
 * AT_ERR_NOT_FOUND before the first one. */
at_result at_ledger_checkpoint(at_ledger *l, at_buf *out, uint64_t *size) AT_WUR;

/* Another process may have written session sid: log its versions. */
void at_ledger_check(at_ledger *l, const char *sid);

/* The log entry of version v (0: current) of sid and the proof of its
 * inclusion in the tree of the latest checkpoint, as a c2sp.org/tlog-proof
 * file whose extra line is the base64 of the entry itself, appended to
 * out; *index and *version say which. AT_ERR_NOT_FOUND
 * when the version is not in a signed checkpoint yet. */
at_result at_ledger_proof(at_ledger *l, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                          uint64_t *version, at_error *err) AT_WUR;
/* The same from a storage directory without a running ledger (the CLI):
 * the checkpoint last written there. */
at_result at_ledger_proof_offline(at_store *s, const char *sid, uint64_t v, at_buf *out, uint64_t *index,
                                  uint64_t *version, at_error *err) AT_WUR;

#endif
