/* note.h - signed notes (c2sp.org/signed-note) read and written exactly as
 * Go's golang.org/x/mod/sumdb/note does, with Ed25519 keys (type 0x01) and
 * their text forms; Ed25519 witness cosignatures (type 0x04,
 * c2sp.org/tlog-cosignature); checkpoint texts (c2sp.org/tlog-checkpoint);
 * and RFC 4648 base64 (standard alphabet, padded).
 *
 * Key texts:
 *   vkey  <name>+<8 hex key ID>+<base64(type || 32-byte public key)>
 *   skey  PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type || 32-byte seed)>
 * Key ID = first 4 bytes, big-endian, of SHA-256(name || 0x0A || type ||
 * public key). Go reads and writes type 0x01 only; type 0x04 texts follow
 * c2sp.org/tlog-cosignature (vkey) and transparency-dev/formats (skey).
 *
 * A signed note: the text (ending in a newline), an empty line, then one line
 * per signature, "— <name> <base64(4-byte key ID || signature)>\n" (U+2014
 * EM DASH, a space). Signatures of type 0x01 are Ed25519 over the text; of
 * type 0x04, an 8-byte big-endian POSIX time followed by the Ed25519
 * signature of "cosignature/v1\ntime <time>\n" || text. */
#ifndef AGENTTRACE_NOTE_H
#define AGENTTRACE_NOTE_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>

/* ---- caps (belong with the others in common.h) */
#define AT_NOTE_MAX_BYTES (1u * 1024 * 1024) /* a signed note, or a key text (Go: no limit) */
#define AT_NOTE_MAX_SIGS  100                /* signature lines in a note (Go's limit) */

#define AT_NOTE_KEY_LEN  32 /* Ed25519 public key and seed */
#define AT_NOTE_HASH_LEN 32 /* a checkpoint's root hash */

/* Signature types (c2sp.org/signed-note); the byte that starts a key's
 * base64 and enters its key ID. */
typedef enum {
    AT_NOTE_ED25519 = 0x01,  /* Ed25519 over the note text */
    AT_NOTE_COSIG_V1 = 0x04, /* timestamped Ed25519 cosignature/v1 */
} at_note_type;

/* ---- names and key IDs */

/* Whether name is a valid key name, exactly as Go's note.isValidName:
 * non-empty, valid UTF-8, no '+', no Unicode space (Go's unicode.IsSpace:
 * \t \n \v \f \r, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000). Other control characters pass, as in Go,
 * though a note can never carry them (at_note_keygen and at_note_sign refuse
 * them). */
bool at_note_name_valid(const char *name, size_t len);

/* The key ID of a public key: SHA-256(name || 0x0A || type || key)[:4] as a
 * big-endian number. AT_ERR_NOMEM only. */
at_result at_note_key_id(const char *name, size_t name_len, uint8_t type, const uint8_t *key, size_t key_len,
                         uint32_t *id) AT_WUR;

/* ---- keys */

/* A private key with its name and ID (opaque; the seed is wiped on free). */
typedef struct at_note_signer at_note_signer;
/* A public key with its name and ID (opaque). */
typedef struct at_note_verifier at_note_verifier;
/* Neither changes after _new: any number of threads may sign or verify with
 * one at once. */

/* Generates a key pair of the given type from 32 bytes of getrandom(2) and
 * appends its skey text to skey and its vkey text to vkey (either may be
 * NULL). AT_ERR_INVALID when name is not a valid key name or has a control
 * character (Go's GenerateKey checks nothing); AT_ERR_IO when getrandom
 * fails. */
at_result at_note_keygen(const char *name, size_t name_len, at_note_type type, at_buf *skey, at_buf *vkey,
                         at_error *err) AT_WUR;
/* The same from a given seed: Go's note.GenerateKey reading seed as its
 * random source gives the same texts (type 0x01). */
at_result at_note_keygen_seed(const char *name, size_t name_len, at_note_type type,
                              const uint8_t seed[AT_NOTE_KEY_LEN], at_buf *skey, at_buf *vkey,
                              at_error *err) AT_WUR;

/* Parses an skey text into a new signer of type `as`, with Go's
 * note.NewSigner checks in Go's order and with its messages: the
 * PRIVATE+KEY prefix, a valid name, 8 hex digits (either case), base64 as Go
 * decodes it (CR and LF skipped, unused bits ignored), a 32-byte seed, and
 * the key ID recomputed from the seed. For as == AT_NOTE_ED25519 the key's
 * type byte must be 0x01 (Go's only). For as == AT_NOTE_COSIG_V1 it may be
 * 0x04 or 0x01 (the ID checked for the key's own type; the signer's ID is
 * then that of type 0x04, as transparency-dev/formats does), so that a
 * Go-generated key can serve as a witness key. The caller owns *out.
 * AT_ERR_INVALID with Go's message ("malformed verifier id", "unknown
 * verifier algorithm", "invalid verifier hash": Go's signer errors say
 * "verifier"); AT_ERR_TOO_BIG over AT_NOTE_MAX_BYTES. */
at_result at_note_signer_new(const char *skey, size_t len, at_note_type as, at_note_signer **out,
                             at_error *err) AT_WUR;
void at_note_signer_free(at_note_signer *s);
/* A new signer of s's key under another name (its own key ID): one key
 * signing several logs, each named by its origin. AT_ERR_INVALID for a
 * name Go would refuse. */
at_result at_note_signer_renamed(const at_note_signer *s, const char *name, size_t name_len, at_note_signer **out,
                                 at_error *err) AT_WUR;
/* The key name (NUL-terminated, but use *len: Go allows a NUL in a name), ID and type. */
const char *at_note_signer_name(const at_note_signer *s, size_t *len);
uint32_t at_note_signer_id(const at_note_signer *s);
at_note_type at_note_signer_type(const at_note_signer *s);
/* Appends the signer's skey text (type byte = its type) to out. */
at_result at_note_signer_skey(const at_note_signer *s, at_buf *out) AT_WUR;
/* Appends the matching vkey text to out. */
at_result at_note_signer_vkey(const at_note_signer *s, at_buf *out) AT_WUR;
/* A new verifier for the signer's public key; the caller owns *out. */
at_result at_note_signer_verifier(const at_note_signer *s, at_note_verifier **out, at_error *err) AT_WUR;

/* Parses a vkey text into a new verifier, with Go's note.NewVerifier checks
 * in Go's order and with its messages ("malformed verifier id", "invalid
 * verifier hash": the ID must be the one computed from the name and key,
 * "unknown verifier algorithm"), accepting type 0x04 besides Go's 0x01.
 * The caller owns *out. AT_ERR_INVALID; AT_ERR_TOO_BIG over
 * AT_NOTE_MAX_BYTES. */
at_result at_note_verifier_new(const char *vkey, size_t len, at_note_verifier **out, at_error *err) AT_WUR;
void at_note_verifier_free(at_note_verifier *v);
const char *at_note_verifier_name(const at_note_verifier *v, size_t *len);
uint32_t at_note_verifier_id(const at_note_verifier *v);
at_note_type at_note_verifier_type(const at_note_verifier *v);
/* The 32-byte Ed25519 public key. */
const uint8_t *at_note_verifier_key(const at_note_verifier *v);
/* Appends the vkey text (lowercase hex ID) to out. */
at_result at_note_verifier_vkey(const at_note_verifier *v, at_buf *out) AT_WUR;

/* ---- signing */

/* Checks that text can be the text of a signed note: at most
 * AT_NOTE_MAX_BYTES, valid UTF-8 (AT_ERR_UTF8, offset set), no control
 * character but newline, ending in a newline (AT_ERR_INVALID, offset set).
 * Go's Sign checks only the final newline and so can write notes that its
 * Open rejects; we refuse them. */
at_result at_note_check_text(const char *text, size_t len, at_error *err) AT_WUR;

/* Appends one signature line by s for text, "— <name> <base64>\n". A
 * cosigner (type 0x04) signs at `timestamp` (POSIX seconds, at most
 * 2^63 - 1) and only a checkpoint text (at_note_checkpoint_parse); an
 * Ed25519 signer ignores timestamp. AT_ERR_INVALID for a bad text or a name
 * with control characters ("invalid signer"); AT_ERR_TOO_BIG from out. */
at_result at_note_sign_line(const at_note_signer *s, const char *text, size_t len, uint64_t timestamp,
                            at_buf *out, at_error *err) AT_WUR;

/* Appends a signed note to out: text, an empty line, one signature line per
 * signer in order (Go's note.Sign of a note without signatures; cosigners
 * stamp time(NULL)). n is 1 to AT_NOTE_MAX_SIGS, and the result must fit in
 * AT_NOTE_MAX_BYTES (AT_ERR_TOO_BIG), so that at_note_open can read what
 * this writes. On failure out is as it was. */
at_result at_note_sign(const char *text, size_t len, const at_note_signer *const *signers, size_t n,
                       at_buf *out, at_error *err) AT_WUR;

/* ---- opening */

/* How at_note_open ended, one value per error class of Go's note.Open. */
typedef enum {
    AT_NOTE_OPEN_OK = 0,
    AT_NOTE_MALFORMED,     /* Go's "malformed note": syntax, UTF-8, control characters, a bad
                            * name or base64 in any line, more than AT_NOTE_MAX_SIGS lines */
    AT_NOTE_TOO_BIG,       /* over AT_NOTE_MAX_BYTES (our cap; Go has none) */
    AT_NOTE_AMBIGUOUS,     /* Go's "ambiguous key": two known keys share a signature's name and ID */
    AT_NOTE_BAD_SIGNATURE, /* Go's InvalidSignatureError: a known key's signature does not verify */
    AT_NOTE_UNVERIFIED,    /* Go's UnverifiedNoteError: no signature by a known key */
} at_note_status;

/* One signature line of an opened note. Pointers borrow the message. */
typedef struct {
    const char *name; /* the key name, name_len bytes */
    size_t name_len;
    uint32_t id;     /* the key ID (first 4 signature bytes) */
    const char *b64; /* the base64 as written, b64_len bytes */
    size_t b64_len;
    const at_note_verifier *verifier; /* the known key that verified it; NULL if unverified */
    uint64_t timestamp;               /* a verified cosignature's time; else 0 */
} at_note_sig;

/* An opened note (a plain value, about 11 KB; nothing to free). Pointers
 * borrow the message passed to at_note_open. */
typedef struct {
    at_note_status status;
    const char *text; /* the signed text, ending in its newline */
    size_t text_len;
    size_t n_sigs; /* verified signatures, in order, one per key */
    at_note_sig sigs[AT_NOTE_MAX_SIGS];
    size_t n_unverified; /* by unknown keys, identical lines once */
    at_note_sig unverified[AT_NOTE_MAX_SIGS];
} at_note;

/* Opens msg against the known verifiers, as Go's note.Open with
 * note.VerifierList(known...): valid UTF-8 with no control character but
 * newline; text and signatures split at the last empty line; every
 * signature line well formed (even by unknown keys); at most
 * AT_NOTE_MAX_SIGS lines (duplicates count); unknown keys' signatures kept
 * in out->unverified; a known key's first signature must verify (its later
 * ones are skipped unchecked, as in Go); at least one must. Always fills
 * out->status; on AT_NOTE_UNVERIFIED out also holds the text and the
 * unverified signatures (Go's UnverifiedNoteError.Note).
 * Returns AT_OK; AT_ERR_INVALID (malformed, bad signature), AT_ERR_UTF8,
 * AT_ERR_TOO_BIG (over the caps), AT_ERR_CONFLICT (ambiguous),
 * AT_ERR_NOT_FOUND (unverified), AT_ERR_NOMEM (with status malformed).
 * err->message starts with Go's error text ("malformed note", "invalid
 * signature for key NAME+ID", "note has no verifiable signatures",
 * "ambiguous key NAME+ID"), err->offset is the offending byte or line,
 * err->line the 0-based signature line. */
at_result at_note_open(const char *msg, size_t len, const at_note_verifier *const *known, size_t n_known,
                       at_note *out, at_error *err) AT_WUR;

/* ---- checkpoints (c2sp.org/tlog-checkpoint) */

/* A checkpoint's note text. Pointers borrow the parsed text. */
typedef struct {
    const char *origin; /* the log's identity, non-empty, origin_len bytes */
    size_t origin_len;
    uint64_t size;                  /* tree size */
    uint8_t root[AT_NOTE_HASH_LEN]; /* RFC 6962 root hash */
    const char *ext;                /* extension lines, each non-empty and ending in '\n'; */
    size_t ext_len;                 /* ext_len 0: none (ext may then be NULL) */
} at_note_checkpoint;

/* Parses a checkpoint text "<origin>\n<size>\n<base64 root>\n[extension
 * lines]": a valid note text (at_note_check_text), origin non-empty, size
 * decimal up to 2^64 - 1 without sign or leading zeros ("0" for empty),
 * root the canonical padded base64 of 32 bytes, extension lines non-empty.
 * AT_ERR_INVALID (or AT_ERR_UTF8, AT_ERR_TOO_BIG) with offset otherwise. */
at_result at_note_checkpoint_parse(const char *text, size_t len, at_note_checkpoint *cp,
                                   at_error *err) AT_WUR;
/* Appends the checkpoint text of cp to out (cp->ext may be NULL); the same
 * rules as parsing (AT_ERR_INVALID). */
at_result at_note_checkpoint_format(const at_note_checkpoint *cp, at_buf *out, at_error *err) AT_WUR;

/* ---- base64 (RFC 4648 section 4, with padding) */

/* Characters in the base64 of n bytes. */
size_t at_note_base64_len(size_t n);
/* Appends the base64 of n bytes to out. */
at_result at_note_base64_encode(const void *in, size_t n, at_buf *out) AT_WUR;

typedef enum {
    AT_BASE64_STRICT, /* canonical only: what at_note_base64_encode writes */
    AT_BASE64_GO,     /* Go's base64.StdEncoding: also skips CR and LF anywhere and
                       * ignores the unused low bits of the last character */
} at_base64_mode;
/* Decodes n characters into out (room for cap bytes) and sets *out_len.
 * Padding is required and ends the input; AT_ERR_INVALID (nothing usable in
 * out) for anything else; AT_ERR_TOO_BIG when the bytes do not fit. */
at_result at_note_base64_decode(const char *in, size_t n, at_base64_mode mode, uint8_t *out, size_t cap,
                                size_t *out_len) AT_WUR;

#endif
