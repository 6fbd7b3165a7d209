/* witness.h - a transparency-log witness (c2sp.org/tlog-witness) that
 * cosigns checkpoints with Ed25519 cosignatures (c2sp.org/tlog-cosignature,
 * type 0x04), and the pieces of the protocol a log needs to talk to one.
 * No HTTP here: the witness command (cli_witness.c) and the ledger's
 * submissions (ledger.c) carry the bytes.
 *
 * The witness keeps, per log origin, the size and root hash of the latest
 * checkpoint it cosigned, in a state file written atomically and synced
 * before a cosignature leaves, so that it never cosigns two checkpoints of
 * one log that are not consistent with each other, across restarts and
 * kills. The check against that state and its update are one step under a
 * lock (tlog-witness: "checking the old size ... and persisting the new
 * checkpoint must be performed atomically").
 *
 * add-checkpoint request body (tlog-witness, "add-checkpoint"):
 *   old <size>\n                     decimal, no leading zeros
 *   <base64 hash>\n                  zero to 63 consistency-proof lines
 *   \n
 *   <signed checkpoint>              a signed note (signature lines included) */
#ifndef AGENTTRACE_WITNESS_H
#define AGENTTRACE_WITNESS_H

#include "agenttrace/buf.h"
#include "agenttrace/note.h"
#include <stdbool.h>

/* ---- caps (belong with the others in common.h) */
#define AT_WITNESS_MAX_PROOF    63                 /* consistency-proof lines (tlog-witness) */
#define AT_WITNESS_MAX_BODY     (64u * 1024)       /* an add-checkpoint request body */
#define AT_WITNESS_MAX_ANSWER   (64u * 1024)       /* a witness's answer, as a log reads it */
#define AT_WITNESS_MAX_LOGS     64                 /* log keys one witness trusts */
#define AT_WITNESS_MAX_STATE    (1u * 1024 * 1024) /* the state file */
#define AT_WITNESS_MAX_EVIDENCE 1000               /* refused checkpoints kept as evidence */

#define AT_WITNESS_SIZE_TYPE "text/x.tlog.size" /* the Content-Type of a 409's body */

/* ---- the request body ------------------------------------------------------------- */

/* A parsed add-checkpoint body. The note borrows the parsed bytes. */
typedef struct {
    uint64_t old_size; /* the size the client says the witness last cosigned */
    size_t n_proof;    /* consistency-proof hashes, 0..63 */
    uint8_t proof[AT_WITNESS_MAX_PROOF][AT_NOTE_HASH_LEN];
    const char *note; /* the signed checkpoint: the rest of the body, note_len bytes (non-empty) */
    size_t note_len;
} at_witness_request;

/* Parses an add-checkpoint body: "old " and a decimal size without sign or
 * leading zeros ("0" for zero) up to 2^64 - 1, each proof line the
 * canonical padded base64 of one 32-byte hash, at most 63 of them, an empty
 * line, and a non-empty rest (the note, checked when opened). Every line
 * ends in "\n" (no CR). AT_ERR_INVALID with err->offset at the offending
 * byte and err->line (0-based); AT_ERR_TOO_BIG over AT_WITNESS_MAX_BODY. */
at_result at_witness_request_parse(const char *body, size_t len, at_witness_request *rq,
                                   at_error *err) AT_WUR;

/* Appends the add-checkpoint body for old size old, the n proof hashes
 * (n <= AT_WITNESS_MAX_PROOF, else AT_ERR_TOO_BIG) and the signed checkpoint
 * note to out. */
at_result at_witness_request_format(uint64_t old, const uint8_t (*proof)[AT_NOTE_HASH_LEN], size_t n,
                                    const char *note, size_t note_len, at_buf *out) AT_WUR;

/* ---- the witness ------------------------------------------------------------------ */

typedef struct at_witness at_witness;

typedef struct {
    const at_note_signer *signer;        /* the cosigning key, type AT_NOTE_COSIG_V1 (borrowed) */
    const at_note_verifier *const *logs; /* the log keys trusted, type AT_NOTE_ED25519 (borrowed, */
    size_t n_logs;                       /* 1..AT_WITNESS_MAX_LOGS); a log's origin is its key's name */
    const char *state_dir;               /* made (0700) when missing; locked while the witness lives */
} at_witness_options;

/* Opens the witness: takes the lock of state_dir (AT_ERR_CONFLICT when
 * another process holds it), loads the state file (a missing one is a new
 * witness; a damaged one is refused, AT_ERR_INVALID: starting over would let
 * the witness cosign a fork), removes temporary files a kill left. NULL
 * with err set on failure. The options' keys must outlive the witness. */
at_witness *at_witness_open(const at_witness_options *o, at_error *err);
void at_witness_free(at_witness *w);

/* The size and root of the latest checkpoint cosigned for origin;
 * AT_ERR_NOT_FOUND when none was. */
at_result at_witness_latest(at_witness *w, const char *origin, size_t origin_len, uint64_t *size,
                            uint8_t root[AT_NOTE_HASH_LEN]) AT_WUR;

/* How an add-checkpoint request ended. */
typedef struct {
    int status;               /* the HTTP status: 200, 400, 403, 404, 409, 413, 422, 500 */
    const char *content_type; /* of the answer body (a static string) */
    bool fork;                /* a checkpoint the log signed that is not consistent with the
                               * one cosigned: 409 on the same size with another root, 422 */
    char reason[320];         /* why it was refused (or what was cosigned), for the witness's log */
    char evidence[256];       /* a fork's request kept under state_dir/evidence ("" if not) */
} at_witness_answer;

/* Handles one POST add-checkpoint body, as c2sp.org/tlog-witness says, in
 * this order: 400 malformed body; 404 unknown origin; 403 no valid
 * signature by a key trusted for the origin (a bad signature by one, too);
 * 400 old size larger than the checkpoint's; 409 old size other than the
 * size last cosigned for the origin (0 if none), the answer body that size
 * and "\n", content type AT_WITNESS_SIZE_TYPE; 409 when the old size is the
 * checkpoint's but the root differs from the one cosigned; 422 when the
 * consistency proof does not verify (or is not empty for old size 0);
 * otherwise the new state is written and synced (500 if it cannot be, and
 * nothing is cosigned), and 200 with the cosignature line at time now
 * (POSIX seconds), content type text/plain. A fork's request is kept as
 * evidence (see at_witness_answer). The answer body is appended to out;
 * returns a->status. Thread-safe. */
int at_witness_add_checkpoint(at_witness *w, const char *body, size_t len, uint64_t now, at_buf *out,
                              at_witness_answer *a);

/* ---- the log's side ---------------------------------------------------------------- */

/* Checks a witness's 200 answer for the checkpoint text (the note text, its
 * final newline included, no signatures): the answer must be one or more
 * signature lines ("— name base64\n"); those by `witness` must verify as
 * cosignatures of text, and at least one must. Appends the verified lines
 * (one, the first by the key, as written) to out, *timestamp its time.
 * AT_ERR_INVALID (malformed, a bad signature), AT_ERR_NOT_FOUND (no line by
 * the key), AT_ERR_TOO_BIG over AT_WITNESS_MAX_ANSWER; err says which. */
at_result at_witness_cosig_check(const char *text, size_t text_len, const char *answer, size_t answer_len,
                                 const at_note_verifier *witness, at_buf *out, uint64_t *timestamp,
                                 at_error *err) AT_WUR;

/* A verifier key given as itself or as the name of a file holding it (a
 * trailing newline or spaces ignored) into a new verifier (the caller
 * owns *out). AT_ERR_IO when the file cannot be read; at_note_verifier_new's
 * errors. */
at_result at_witness_vkey_load(const char *arg, at_note_verifier **out, at_error *err) AT_WUR;

/* Parses a witness given to a log as "URL=VKEY" (`serve --witness`): URL,
 * up to the first '=', an http:// or https:// submission prefix; VKEY its
 * cosignature key (type 0x04), itself or a file (at_witness_vkey_load).
 * *url (malloc'd) and *key are the caller's. AT_ERR_INVALID otherwise. */
at_result at_witness_option_parse(const char *arg, char **url, at_note_verifier **key, at_error *err) AT_WUR;

/* Parses a 409 answer body: a decimal size without leading zeros and "\n"
 * (a missing final newline is tolerated). AT_ERR_INVALID otherwise. */
at_result at_witness_size_parse(const char *body, size_t len, uint64_t *size) AT_WUR;

#endif
