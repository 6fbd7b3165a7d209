/* sha256.h - SHA-256 (OpenSSL's SHA-NI code), its exportable midstate, and
 * hex helpers. */
#ifndef AGENTTRACE_SHA256_H
#define AGENTTRACE_SHA256_H

#include "agenttrace/common.h"

#define AT_SHA256_LEN 32
#define AT_SHA256_HEX 65 /* 64 hex digits + NUL */

/* An incremental hash. Opaque; _new returns NULL when out of memory. */
typedef struct at_sha256 at_sha256;
at_sha256 *at_sha256_new(void);
void at_sha256_free(at_sha256 *h);
void at_sha256_reset(at_sha256 *h);
void at_sha256_update(at_sha256 *h, const void *p, size_t n);
/* Makes dst a copy of src's state. */
void at_sha256_copy(at_sha256 *dst, const at_sha256 *src);
/* Writes the digest; the hash must be reset before reuse. */
void at_sha256_final(at_sha256 *h, uint8_t out[AT_SHA256_LEN]);
/* Writes the digest of the bytes so far; h is unchanged and goes on.
 * Allocates nothing, so it cannot fail. */
void at_sha256_peek(const at_sha256 *h, uint8_t out[AT_SHA256_LEN]);
/* Number of bytes hashed since the last reset (or import). */
uint64_t at_sha256_count(const at_sha256 *h);

/* The midstate of a running hash, serialized so that a hash can be carried
 * across processes and machines and continued later:
 *   4 bytes  "S2M" and format version 1
 *   32 bytes the 8 state words, big-endian
 *   8 bytes  the message length so far in bits, big-endian
 *   64 bytes the pending partial block: its first (bits / 8) % 64 bytes,
 *            the rest zero
 * Endian-stable and independent of the SHA-256 implementation. */
#define AT_SHA256_STATE_LEN     108
#define AT_SHA256_STATE_VERSION 1
/* Writes h's midstate into out; h is unchanged. */
void at_sha256_export(const at_sha256 *h, uint8_t out[AT_SHA256_STATE_LEN]);
/* Replaces h's state by the one in (AT_SHA256_STATE_LEN bytes). Fails with
 * AT_ERR_INVALID, leaving h unchanged, when in is not a state this version
 * writes (tag, version, a length not in whole bytes, stray pending bytes). */
at_result at_sha256_import(at_sha256 *h, const uint8_t *in) AT_WUR;

/* One-shot digest. */
void at_sha256_oneshot(const void *p, size_t n, uint8_t out[AT_SHA256_LEN]);
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void at_hex(const uint8_t *in, size_t n, char *out);
/* Parses 64 hex digits (either case); false if s is not exactly that. */
int at_unhex_sha256(const char *s, size_t n, uint8_t out[AT_SHA256_LEN]);

#endif
