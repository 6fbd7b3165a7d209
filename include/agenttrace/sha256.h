/* sha256.h - SHA-256 through OpenSSL's EVP interface, and hex helpers. */
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
/* Writes the digest; the hash must be reset before reuse. */
/* Makes dst a copy of src's state. */
void at_sha256_copy(at_sha256 *dst, const at_sha256 *src);
void at_sha256_final(at_sha256 *h, uint8_t out[AT_SHA256_LEN]);

/* One-shot digest. */
void at_sha256_oneshot(const void *p, size_t n, uint8_t out[AT_SHA256_LEN]);
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void at_hex(const uint8_t *in, size_t n, char *out);
/* Parses 64 hex digits (either case); false if s is not exactly that. */
int at_unhex_sha256(const char *s, size_t n, uint8_t out[AT_SHA256_LEN]);

#endif
