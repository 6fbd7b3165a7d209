/* dblog.h - each workspace's transparency log in the database (schema.h:
 * log_entries, log_hashes, log_checkpoints): the sequencer that logs new
 * versions and signs checkpoints, one replica at a time, and the reads
 * every replica serves.
 *
 * Exactly one sequencer per workspace: it holds a session-level advisory
 * lock on its connection. The lock goes with the connection, so when the
 * sequencing replica dies (or loses its connection) the next replica that
 * tries takes over; it starts from the committed log (entries, hashes and
 * checkpoints are written in one transaction per round), so every
 * checkpoint it signs extends the last one signed: the log never forks
 * across a takeover. Entries are the directory ledger's
 * (at_store_log_entry), so a version verifies the same way from either. */
#ifndef AGENTTRACED_DB_DBLOG_H
#define AGENTTRACED_DB_DBLOG_H

#include "db/pg.h"

#include "agenttrace/buf.h"
#include "agenttrace/note.h"

typedef struct {
    const char *ws;
    const char *origin;           /* the checkpoint's first line: the signer's name */
    const at_note_signer *signer; /* borrowed */
} dblog_config;

/* Tries to become ws's sequencer on this connection; *leader says whether
 * this connection holds the lock now (also when it held it already). */
at_result dblog_try_lead(db *d, const char *ws, bool *leader, at_error *err) AT_WUR;

/* One round as the sequencer (the caller holds the lock): logs the
 * workspace's versions not logged yet, oldest first, at most max, and
 * when any were, signs and stores the checkpoint of the new size. *logged:
 * entries added; *size: the log's size after the round. */
at_result dblog_sequence(db *d, const dblog_config *c, size_t max, uint64_t *logged, uint64_t *size,
                         at_error *err) AT_WUR;

/* The latest signed checkpoint (a note) of ws, and its size.
 * AT_ERR_NOT_FOUND when none was signed yet. */
at_result dblog_checkpoint(db *d, const char *ws, at_buf *note, uint64_t *size, at_error *err) AT_WUR;

/* Replaces the note of ws's checkpoint of size size (with the witnesses'
 * cosignatures added; the signed text is the same). */
at_result dblog_checkpoint_set(db *d, const char *ws, uint64_t size, const at_buf *note, at_error *err) AT_WUR;
/* The log index of version v of sid (AT_ERR_NOT_FOUND: not logged yet). */
at_result dblog_index(db *d, const char *ws, const char *sid, uint64_t v, uint64_t *index, at_error *err) AT_WUR;

/* Entries [first, first + count) appended to out: with bundle, as a
 * c2sp.org/tlog-tiles entry bundle (each a big-endian 16-bit length, then
 * its bytes), else one entry's bytes (count 1). AT_ERR_NOT_FOUND when the
 * log does not hold them all. */
at_result dblog_entries(db *d, const char *ws, uint64_t first, size_t count, bool bundle, at_buf *out,
                        at_error *err) AT_WUR;
/* An at_merkle_read_fn over ws's stored hashes: ctx is a dblog_reader. */
typedef struct {
    db *d;
    const char *ws;
} dblog_reader;
at_result dblog_read_hashes(void *ctx, int level, uint64_t first, size_t count, uint8_t *out);

#endif
