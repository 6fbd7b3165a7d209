/* index_batch.h - the event index rows of one import, collected while it
 * is written (as the chain writer's line observer), so that the index can
 * take them after the commit without re-reading and re-parsing the file.
 *
 * Memory is bounded: rows are kept in a buffer and spilled to an unlinked
 * temporary file past INDEX_BATCH_MEM bytes. A row whose event_id or
 * prev_hash is absurdly long marks the batch unusable; the caller then
 * indexes the file the slow way. */
#ifndef AGENTTRACED_INDEX_BATCH_H
#define AGENTTRACED_INDEX_BATCH_H

#include "agenttrace/chain.h"
#include "agenttrace/common.h"
#include "agenttrace/sha256.h"
#include <stdbool.h>
#include <stdint.h>

#define INDEX_BATCH_MEM (1u << 20)

typedef struct index_batch index_batch;

/* tmp_dir: where a spill file may be created (NULL: /tmp). */
index_batch *index_batch_new(const char *tmp_dir);
void index_batch_free(index_batch *b);

/* An at_line_fn: records lw (ctx is the batch). Lines without an event_id
 * are not indexed, as index.c skips them when it reads a file. */
at_result index_batch_add(void *batch, const at_line_written *lw) AT_WUR;

/* Did every row fit (no I/O error, no oversized field)? */
bool index_batch_usable(const index_batch *b);

/* One row, as the events table stores it (borrowed until the next call). */
typedef struct {
    const char *event_id; /* decoded */
    size_t event_id_len;
    const char *prev_hash; /* decoded; NULL when the line had none */
    size_t prev_hash_len;
    uint64_t no, off, len;
    char sha256[AT_SHA256_HEX]; /* hex, NUL-terminated */
} index_row;

/* Starts reading the rows from the first; then index_batch_next gives
 * AT_OK with a row, AT_ERR_NOT_FOUND at the end, AT_ERR_IO on failure. */
at_result index_batch_rewind(index_batch *b) AT_WUR;
at_result index_batch_next(index_batch *b, index_row *row) AT_WUR;

#endif
