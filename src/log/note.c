/* note.c - signed notes as Go's golang.org/x/mod/sumdb/note reads and writes
 * them, Ed25519 (OpenSSL EVP) keys and witness cosignatures, checkpoint
 * texts, base64. Where Go is lenient in a way that matters for
 * interoperability (base64, hex case) we accept what it accepts; where it
 * would write what it cannot read back (Sign) we refuse. */
#include "agenttrace/note.h"
#include "agenttrace/sha256.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SIG_PREFIX     "\xe2\x80\x94 " /* U+2014 EM DASH, space */
#define SIG_PREFIX_LEN 4
#define ED25519_SIG    64
#define COSIG_SIG      (8 + ED25519_SIG)
#define MAX_SIG_BYTES  (4 + COSIG_SIG) /* key ID + the longest signature a known key accepts */

/* Go's error texts, kept verbatim so that callers and tests can compare. */
#define GO_MALFORMED_ID "malformed verifier id"
#define GO_UNKNOWN_ALG  "unknown verifier algorithm"
#define GO_BAD_HASH     "invalid verifier hash"
#define GO_MALFORMED    "malformed note"
#define GO_UNVERIFIED   "note has no verifiable signatures"

struct at_note_signer {
    at_note_type type;
    uint32_t id;
    char *name; /* owned, NUL-terminated */
    size_t name_len;
    uint8_t seed[AT_NOTE_KEY_LEN]; /* wiped on free */
    uint8_t pub[AT_NOTE_KEY_LEN];
    EVP_PKEY *pkey; /* owned */
};

struct at_note_verifier {
    at_note_type type;
    uint32_t id;
    char *name; /* owned, NUL-terminated */
    size_t name_len;
    uint8_t pub[AT_NOTE_KEY_LEN];
    EVP_PKEY *pkey; /* owned; NULL when OpenSSL refused the key: nothing verifies */
};

/* ---- small helpers */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Writes the decimal digits of v into buf (room for 20) and returns their number. */
static size_t put_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static void put_hex32(char *buf, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, v >>= 4)
        buf[i] = digits[v & 15];
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Go's strconv.ParseUint(s, 16, 32) with len(s) == 8: exactly 8 hex digits, either case. */
static bool parse_hex32(const char *s, size_t n, uint32_t *v)
{
    if (n != 8)
        return false;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_val(s[i]);
        if (d < 0)
            return false;
        x = x << 4 | (uint32_t)d;
    }
    *v = x;
    return true;
}

/* Go's chop: splits s at the first sep into before and after (empty if absent). */
static void chop(const char *s, size_t n, char sep, const char **before, size_t *before_len,
                 const char **after, size_t *after_len)
{
    const char *p = memchr(s, sep, n);
    *before = s;
    if (!p) {
        *before_len = n;
        *after = s + n;
        *after_len = 0;
        return;
    }
    *before_len = (size_t)(p - s);
    *after = p + 1;
    *after_len = n - *before_len - 1;
}

static bool bytes_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* ---- UTF-8 as Go's unicode/utf8 sees it */

/* Decodes the sequence at p (n >= 1 bytes left) as utf8.DecodeRune: returns
 * its length and sets *cp, or 0 for what Go decodes as (RuneError, 1). */
static size_t rune_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n <= need)
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need + 1;
}

/* Go's unicode.IsSpace. */
static bool go_is_space(uint32_t c)
{
    switch (c) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000: return true;
    default: return c >= 0x2000 && c <= 0x200a;
    }
}

/* The scan at the top of Go's Open: the offset of the first invalid UTF-8
 * sequence or control character other than newline, or -1. */
static int64_t scan_chars(const char *s, size_t n, bool *bad_utf8)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            if (p[i] < 0x20 && p[i] != '\n') {
                *bad_utf8 = false;
                return (int64_t)i;
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = rune_decode(p + i, n - i, &cp);
        if (!k) {
            *bad_utf8 = true;
            return (int64_t)i;
        }
        i += k;
    }
    return -1;
}

static bool has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return true;
    return false;
}

bool at_note_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = rune_decode(p + i, len - i, &cp);
        if (!k || cp == '+' || go_is_space(cp))
            return false;
        i += k;
    }
    return true;
}

at_result at_note_check_text(const char *text, size_t len, at_error *err)
{
    if (len > AT_NOTE_MAX_BYTES)
        return at_error_set(err, AT_ERR_TOO_BIG, AT_NOTE_MAX_BYTES,
                            "note text of %zu bytes exceeds the cap of %u", len, AT_NOTE_MAX_BYTES);
    bool bad_utf8 = false;
    int64_t bad = scan_chars(text, len, &bad_utf8);
    if (bad >= 0 && bad_utf8)
        return at_error_set(err, AT_ERR_UTF8, bad, "note text: invalid UTF-8 at byte %lld", (long long)bad);
    if (bad >= 0)
        return at_error_set(err, AT_ERR_INVALID, bad, "note text: control character 0x%02x at byte %lld",
                            (unsigned char)text[bad], (long long)bad);
    if (len == 0 || text[len - 1] != '\n')
        return at_error_set(err, AT_ERR_INVALID, (int64_t)len, "note text must end in a newline");
    return AT_OK;
}

/* ---- base64 */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static size_t skip_newlines(const char *in, size_t i, size_t n, at_base64_mode mode)
{
    while (mode == AT_BASE64_GO && i < n && (in[i] == '\n' || in[i] == '\r'))
        i++;
    return i;
}

/* Decodes in as Go's base64.StdEncoding.DecodeString (AT_BASE64_GO) or
 * canonically (AT_BASE64_STRICT), writing at most cap bytes to out but
 * checking all of in; *total is the full decoded length. OpenSSL's
 * EVP_DecodeBlock does not do: it trims whitespace, hides the padding from
 * the length, and accepts padding mid-string. false when in is not base64. */
static bool b64_decode(const char *in, size_t n, at_base64_mode mode, uint8_t *out, size_t cap, size_t *total)
{
    size_t i = 0, o = 0;
    for (;;) {
        uint32_t q[4] = {0, 0, 0, 0};
        size_t j = 0;
        bool padded = false;
        while (j < 4) {
            if (i == n) {
                if (j == 0) {
                    *total = o;
                    return true;
                }
                return false; /* a cut quantum: padding is required */
            }
            unsigned char c = (unsigned char)in[i++];
            int v = b64_val(c);
            if (v >= 0) {
                q[j++] = (uint32_t)v;
                continue;
            }
            if (mode == AT_BASE64_GO && (c == '\n' || c == '\r'))
                continue;
            if (c != '=' || j < 2)
                return false;
            if (j == 2) { /* "xx==": the second '=' */
                i = skip_newlines(in, i, n, mode);
                if (i == n || in[i] != '=')
                    return false;
                i++;
            }
            i = skip_newlines(in, i, n, mode);
            if (i < n)
                return false; /* anything after the padding */
            padded = true;
            break;
        }
        uint32_t v = q[0] << 18 | q[1] << 12 | q[2] << 6 | q[3];
        size_t k = j - 1; /* bytes in this quantum */
        if (mode == AT_BASE64_STRICT && ((j == 2 && (q[1] & 0x0f)) || (j == 3 && (q[2] & 0x03))))
            return false; /* unused bits set: not what an encoder writes */
        uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        for (size_t x = 0; x < k; x++, o++)
            if (o < cap)
                out[o] = b[x];
        if (padded) {
            *total = o;
            return true;
        }
    }
}

size_t at_note_base64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

at_result at_note_base64_encode(const void *in, size_t n, at_buf *out)
{
    if (n > INT_MAX / 4 * 3 - 3)
        return AT_ERR_TOO_BIG;
    size_t k = at_note_base64_len(n);
    at_result r = at_buf_reserve(out, k); /* also room for the NUL EVP_EncodeBlock writes */
    if (r != AT_OK)
        return r;
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, in, (int)n);
    if (w < 0 || (size_t)w != k) {
        out->data[out->len] = 0;
        return AT_ERR_INVALID;
    }
    out->len += k;
    return AT_OK;
}

at_result at_note_base64_decode(const char *in, size_t n, at_base64_mode mode, uint8_t *out, size_t cap,
                                size_t *out_len)
{
    size_t total;
    if (!b64_decode(in, n, mode, out, cap, &total))
        return AT_ERR_INVALID;
    if (total > cap)
        return AT_ERR_TOO_BIG;
    *out_len = total;
    return AT_OK;
}

/* ---- Ed25519 on OpenSSL */

static bool ed25519_sign(EVP_PKEY *k, const void *msg, size_t n, uint8_t sig[ED25519_SIG])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t len = ED25519_SIG;
    bool ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestSign(c, sig, &len, msg, n) == 1 && len == ED25519_SIG;
    EVP_MD_CTX_free(c);
    return ok;
}

/* 1 valid, 0 not, -1 out of memory. */
static int ed25519_verify(EVP_PKEY *k, const void *msg, size_t n, const uint8_t *sig, size_t sig_len)
{
    if (!k || sig_len != ED25519_SIG)
        return 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        return -1;
    int ok =
        EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 && EVP_DigestVerify(c, sig, sig_len, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* The message a cosignature/v1 signs: "cosignature/v1\ntime <t>\n" || text.
 * Returns a malloc'ed buffer, or NULL when out of memory. */
static uint8_t *cosig_message(uint64_t t, const char *text, size_t len, size_t *msg_len)
{
    static const char head[] = "cosignature/v1\ntime ";
    char num[20];
    size_t k = put_u64(num, t), h = sizeof head - 1;
    if (len > SIZE_MAX - h - k - 1)
        return NULL;
    uint8_t *m = malloc(h + k + 1 + len + 1);
    if (!m)
        return NULL;
    memcpy(m, head, h);
    memcpy(m + h, num, k);
    m[h + k] = '\n';
    if (len)
        memcpy(m + h + k + 1, text, len);
    *msg_len = h + k + 1 + len;
    return m;
}

/* Checks sig (the bytes after the key ID) by v over text; 1 valid, 0 not,
 * -1 out of memory. Sets *ts for a cosignature. */
static int verify_sig(const at_note_verifier *v, const char *text, size_t len, const uint8_t *sig,
                      size_t sig_len, uint64_t *ts)
{
    if (v->type == AT_NOTE_ED25519)
        return ed25519_verify(v->pkey, text, len, sig, sig_len);
    if (sig_len != COSIG_SIG)
        return 0;
    uint64_t t = get_be64(sig);
    if (t > INT64_MAX) /* tlog-cosignature: MUST NOT exceed 2^63 - 1 */
        return 0;
    size_t mlen;
    uint8_t *m = cosig_message(t, text, len, &mlen);
    if (!m)
        return -1;
    int ok = ed25519_verify(v->pkey, m, mlen, sig + 8, ED25519_SIG);
    free(m);
    if (ok == 1)
        *ts = t;
    return ok;
}

/* ---- key IDs and key texts */

at_result at_note_key_id(const char *name, size_t name_len, uint8_t type, const uint8_t *key, size_t key_len,
                         uint32_t *id)
{
    at_sha256 *h = at_sha256_new();
    if (!h)
        return AT_ERR_NOMEM;
    uint8_t nl = '\n', d[AT_SHA256_LEN];
    at_sha256_update(h, name, name_len);
    at_sha256_update(h, &nl, 1);
    at_sha256_update(h, &type, 1);
    at_sha256_update(h, key, key_len);
    at_sha256_final(h, d);
    at_sha256_free(h);
    *id = get_be32(d);
    return AT_OK;
}

static char *dup_name(const char *name, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, name, len);
        p[len] = 0;
    }
    return p;
}

/* Appends "<name>+<hex id>+<base64(type || key)>" to out, restoring out on failure. */
static at_result put_key_text(at_buf *out, const char *prefix, const char *name, size_t name_len, uint32_t id,
                              uint8_t type, const uint8_t key[AT_NOTE_KEY_LEN])
{
    size_t start = out->len;
    uint8_t raw[1 + AT_NOTE_KEY_LEN];
    char hex[10];
    raw[0] = type;
    memcpy(raw + 1, key, AT_NOTE_KEY_LEN);
    hex[0] = '+';
    put_hex32(hex + 1, id);
    hex[9] = '+';
    at_result r = at_buf_adds(out, prefix);
    if (r == AT_OK)
        r = at_buf_add(out, name, name_len);
    if (r == AT_OK)
        r = at_buf_add(out, hex, sizeof hex);
    if (r == AT_OK)
        r = at_note_base64_encode(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    if (r != AT_OK && out->data) {
        OPENSSL_cleanse(out->data + start, out->len - start);
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}

/* A signer of the given type over seed; *out owned by the caller. */
static at_result signer_from_seed(const char *name, size_t name_len, at_note_type type,
                                  const uint8_t seed[AT_NOTE_KEY_LEN], at_note_signer **out)
{
    at_note_signer *s = calloc(1, sizeof *s);
    if (!s)
        return AT_ERR_NOMEM;
    s->type = type;
    s->name = dup_name(name, name_len);
    s->name_len = name_len;
    s->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, AT_NOTE_KEY_LEN);
    size_t pub_len = AT_NOTE_KEY_LEN;
    if (!s->name || !s->pkey || EVP_PKEY_get_raw_public_key(s->pkey, s->pub, &pub_len) != 1 ||
        pub_len != AT_NOTE_KEY_LEN ||
        at_note_key_id(name, name_len, type, s->pub, AT_NOTE_KEY_LEN, &s->id) != AT_OK) {
        at_note_signer_free(s);
        return AT_ERR_NOMEM;
    }
    memcpy(s->seed, seed, AT_NOTE_KEY_LEN);
    *out = s;
    return AT_OK;
}

static at_result verifier_from_key(const char *name, size_t name_len, at_note_type type, uint32_t id,
                                   const uint8_t pub[AT_NOTE_KEY_LEN], at_note_verifier **out)
{
    at_note_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return AT_ERR_NOMEM;
    v->type = type;
    v->id = id;
    v->name = dup_name(name, name_len);
    v->name_len = name_len;
    memcpy(v->pub, pub, AT_NOTE_KEY_LEN);
    if (!v->name) {
        at_note_verifier_free(v);
        return AT_ERR_NOMEM;
    }
    /* OpenSSL stores a raw Ed25519 public key without checking the point, as
     * Go does; should it refuse one, nothing verifies under it, as in Go. */
    v->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, AT_NOTE_KEY_LEN);
    *out = v;
    return AT_OK;
}

at_result at_note_keygen_seed(const char *name, size_t name_len, at_note_type type,
                              const uint8_t seed[AT_NOTE_KEY_LEN], at_buf *skey, at_buf *vkey, at_error *err)
{
    if (type != AT_NOTE_ED25519 && type != AT_NOTE_COSIG_V1)
        return at_error_set(err, AT_ERR_INVALID, -1, "unknown key type 0x%02x", (unsigned)type);
    if (!at_note_name_valid(name, name_len) || has_control(name, name_len))
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid key name");
    at_note_signer *s;
    at_result r = signer_from_seed(name, name_len, type, seed, &s);
    if (r != AT_OK)
        return at_error_set(err, r, -1, "out of memory");
    size_t skey_start = skey ? skey->len : 0;
    if (skey)
        r = at_note_signer_skey(s, skey);
    if (r == AT_OK && vkey)
        r = at_note_signer_vkey(s, vkey);
    if (r != AT_OK && skey && skey->data) {
        OPENSSL_cleanse(skey->data + skey_start, skey->len - skey_start);
        skey->len = skey_start;
        skey->data[skey_start] = 0;
    }
    at_note_signer_free(s);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "cannot write the key texts");
}

at_result at_note_keygen(const char *name, size_t name_len, at_note_type type, at_buf *skey, at_buf *vkey,
                         at_error *err)
{
    uint8_t seed[AT_NOTE_KEY_LEN];
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t k = getrandom(seed + got, sizeof seed - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            at_result r = at_error_set(err, AT_ERR_IO, -1, "getrandom failed");
            if (err)
                err->sys_errno = errno;
            return r;
        }
        got += (size_t)k;
    }
    at_result r = at_note_keygen_seed(name, name_len, type, seed, skey, vkey, err);
    OPENSSL_cleanse(seed, sizeof seed);
    return r;
}

at_result at_note_signer_renamed(const at_note_signer *s, const char *name, size_t name_len, at_note_signer **out,
                                 at_error *err)
{
    if (!at_note_name_valid(name, name_len) || has_control(name, name_len))
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid key name");
    at_result r = signer_from_seed(name, name_len, s->type, s->seed, out);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "out of memory");
}

at_result at_note_signer_new(const char *skey, size_t len, at_note_type as, at_note_signer **out,
                             at_error *err)
{
    if (len > AT_NOTE_MAX_BYTES)
        return at_error_set(err, AT_ERR_TOO_BIG, AT_NOTE_MAX_BYTES, "key text exceeds the cap of %u bytes",
                            AT_NOTE_MAX_BYTES);
    if (as != AT_NOTE_ED25519 && as != AT_NOTE_COSIG_V1)
        return at_error_set(err, AT_ERR_INVALID, -1, "unknown key type 0x%02x", (unsigned)as);
    const char *priv1, *priv2, *name, *hex, *key64, *rest;
    size_t priv1_len, priv2_len, name_len, hex_len, key64_len, rest_len;
    chop(skey, len, '+', &priv1, &priv1_len, &rest, &rest_len);
    chop(rest, rest_len, '+', &priv2, &priv2_len, &rest, &rest_len);
    chop(rest, rest_len, '+', &name, &name_len, &rest, &rest_len);
    chop(rest, rest_len, '+', &hex, &hex_len, &key64, &key64_len);
    uint8_t *key = malloc(key64_len / 4 * 3 + 3);
    if (!key)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    size_t key_len = 0;
    uint32_t id = 0;
    bool hex_ok = parse_hex32(hex, hex_len, &id);
    bool key_ok = b64_decode(key64, key64_len, AT_BASE64_GO, key, key64_len / 4 * 3 + 3, &key_len);
    at_result r = AT_OK;
    const char *why = NULL;
    uint8_t alg = key_len ? key[0] : 0;
    if (!bytes_eq(priv1, priv1_len, "PRIVATE", 7) || !bytes_eq(priv2, priv2_len, "KEY", 3) || !hex_ok ||
        !key_ok || !at_note_name_valid(name, name_len) || key_len == 0)
        why = GO_MALFORMED_ID;
    else if (alg != AT_NOTE_ED25519 && !(as == AT_NOTE_COSIG_V1 && alg == AT_NOTE_COSIG_V1))
        why = GO_UNKNOWN_ALG;
    else if (key_len != 1 + AT_NOTE_KEY_LEN)
        why = GO_MALFORMED_ID;
    at_note_signer *s = NULL;
    if (!why) {
        /* The ID is that of the public key: derive it, then compare (Go's order). */
        r = signer_from_seed(name, name_len, (at_note_type)alg, key + 1, &s);
        if (r == AT_OK && s->id != id)
            why = GO_BAD_HASH;
        if (r == AT_OK && !why && (at_note_type)alg != as) {
            s->type = as;
            r = at_note_key_id(name, name_len, as, s->pub, AT_NOTE_KEY_LEN, &s->id);
        }
    }
    OPENSSL_cleanse(key, key64_len / 4 * 3 + 3);
    free(key);
    if (r != AT_OK || why) {
        at_note_signer_free(s);
        if (r != AT_OK)
            return at_error_set(err, r, -1, "out of memory");
        return at_error_set(err, AT_ERR_INVALID, -1, "%s", why);
    }
    *out = s;
    return AT_OK;
}

void at_note_signer_free(at_note_signer *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->seed, sizeof s->seed);
    EVP_PKEY_free(s->pkey);
    free(s->name);
    free(s);
}

const char *at_note_signer_name(const at_note_signer *s, size_t *len)
{
    if (len)
        *len = s->name_len;
    return s->name;
}

uint32_t at_note_signer_id(const at_note_signer *s)
{
    return s->id;
}

at_note_type at_note_signer_type(const at_note_signer *s)
{
    return s->type;
}

at_result at_note_signer_skey(const at_note_signer *s, at_buf *out)
{
    return put_key_text(out, "PRIVATE+KEY+", s->name, s->name_len, s->id, (uint8_t)s->type, s->seed);
}

at_result at_note_signer_vkey(const at_note_signer *s, at_buf *out)
{
    return put_key_text(out, "", s->name, s->name_len, s->id, (uint8_t)s->type, s->pub);
}

at_result at_note_signer_verifier(const at_note_signer *s, at_note_verifier **out, at_error *err)
{
    at_result r = verifier_from_key(s->name, s->name_len, s->type, s->id, s->pub, out);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "out of memory");
}

at_result at_note_verifier_new(const char *vkey, size_t len, at_note_verifier **out, at_error *err)
{
    if (len > AT_NOTE_MAX_BYTES)
        return at_error_set(err, AT_ERR_TOO_BIG, AT_NOTE_MAX_BYTES, "key text exceeds the cap of %u bytes",
                            AT_NOTE_MAX_BYTES);
    const char *name, *hex, *key64, *rest;
    size_t name_len, hex_len, key64_len, rest_len;
    chop(vkey, len, '+', &name, &name_len, &rest, &rest_len);
    chop(rest, rest_len, '+', &hex, &hex_len, &key64, &key64_len);
    /* Go hashes every decoded byte, so decode them all, whatever the length. */
    uint8_t *key = malloc(key64_len / 4 * 3 + 3);
    if (!key)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    size_t key_len = 0;
    uint32_t id = 0, want = 0;
    bool hex_ok = parse_hex32(hex, hex_len, &id);
    bool key_ok = b64_decode(key64, key64_len, AT_BASE64_GO, key, key64_len / 4 * 3 + 3, &key_len);
    const char *why = NULL;
    at_result r = AT_OK;
    if (!hex_ok || !key_ok || !at_note_name_valid(name, name_len) || key_len == 0)
        why = GO_MALFORMED_ID;
    else if ((r = at_note_key_id(name, name_len, key[0], key + 1, key_len - 1, &want)) != AT_OK)
        why = "out of memory";
    else if (id != want)
        why = GO_BAD_HASH;
    else if (key[0] != AT_NOTE_ED25519 && key[0] != AT_NOTE_COSIG_V1)
        why = GO_UNKNOWN_ALG;
    else if (key_len != 1 + AT_NOTE_KEY_LEN)
        why = GO_MALFORMED_ID;
    else
        r = verifier_from_key(name, name_len, (at_note_type)key[0], id, key + 1, out);
    free(key);
    if (why)
        return at_error_set(err, r != AT_OK ? r : AT_ERR_INVALID, -1, "%s", why);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "out of memory");
}

void at_note_verifier_free(at_note_verifier *v)
{
    if (!v)
        return;
    EVP_PKEY_free(v->pkey);
    free(v->name);
    free(v);
}

const char *at_note_verifier_name(const at_note_verifier *v, size_t *len)
{
    if (len)
        *len = v->name_len;
    return v->name;
}

uint32_t at_note_verifier_id(const at_note_verifier *v)
{
    return v->id;
}

at_note_type at_note_verifier_type(const at_note_verifier *v)
{
    return v->type;
}

const uint8_t *at_note_verifier_key(const at_note_verifier *v)
{
    return v->pub;
}

at_result at_note_verifier_vkey(const at_note_verifier *v, at_buf *out)
{
    return put_key_text(out, "", v->name, v->name_len, v->id, (uint8_t)v->type, v->pub);
}

/* ---- signing */

at_result at_note_sign_line(const at_note_signer *s, const char *text, size_t len, uint64_t timestamp,
                            at_buf *out, at_error *err)
{
    at_result r = at_note_check_text(text, len, err);
    if (r != AT_OK)
        return r;
    if (has_control(s->name, s->name_len)) /* Go would sign; no note could carry the line */
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid signer");
    uint8_t raw[MAX_SIG_BYTES];
    size_t raw_len;
    put_be32(raw, s->id);
    if (s->type == AT_NOTE_ED25519) {
        if (!ed25519_sign(s->pkey, text, len, raw + 4))
            return at_error_set(err, AT_ERR_NOMEM, -1, "Ed25519 signing failed");
        raw_len = 4 + ED25519_SIG;
    } else {
        at_note_checkpoint cp;
        if (timestamp > INT64_MAX)
            return at_error_set(err, AT_ERR_INVALID, -1, "cosignature time %llu exceeds 2^63 - 1",
                                (unsigned long long)timestamp);
        r = at_note_checkpoint_parse(text, len, &cp, err);
        if (r != AT_OK)
            return r;
        size_t mlen;
        uint8_t *m = cosig_message(timestamp, text, len, &mlen);
        if (!m)
            return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        put_be64(raw + 4, timestamp);
        bool ok = ed25519_sign(s->pkey, m, mlen, raw + 12);
        free(m);
        if (!ok)
            return at_error_set(err, AT_ERR_NOMEM, -1, "Ed25519 signing failed");
        raw_len = 4 + COSIG_SIG;
    }
    size_t start = out->len;
    r = at_buf_add(out, SIG_PREFIX, SIG_PREFIX_LEN);
    if (r == AT_OK)
        r = at_buf_add(out, s->name, s->name_len);
    if (r == AT_OK)
        r = at_buf_addc(out, ' ');
    if (r == AT_OK)
        r = at_note_base64_encode(raw, raw_len, out);
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r != AT_OK) {
        if (out->data) {
            out->len = start;
            out->data[start] = 0;
        }
        return at_error_set(err, r, -1, "cannot append the signature line");
    }
    return AT_OK;
}

at_result at_note_sign(const char *text, size_t len, const at_note_signer *const *signers, size_t n,
                       at_buf *out, at_error *err)
{
    if (n == 0)
        return at_error_set(err, AT_ERR_INVALID, -1, "no signers");
    if (n > AT_NOTE_MAX_SIGS)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "%zu signers: at most %d signatures", n,
                            AT_NOTE_MAX_SIGS);
    at_result r = at_note_check_text(text, len, err);
    if (r != AT_OK)
        return r;
    size_t start = out->len;
    uint64_t now = (uint64_t)time(NULL);
    r = at_buf_add(out, text, len);
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r != AT_OK)
        at_error_set(err, r, -1, "cannot append the note");
    for (size_t i = 0; r == AT_OK && i < n; i++)
        r = at_note_sign_line(signers[i], text, len, now, out, err);
    if (r == AT_OK && out->len - start > AT_NOTE_MAX_BYTES)
        r = at_error_set(err, AT_ERR_TOO_BIG, AT_NOTE_MAX_BYTES, "signed note exceeds the cap of %u bytes",
                         AT_NOTE_MAX_BYTES);
    if (r != AT_OK && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}

/* ---- opening */

static at_result open_fail(at_note *out, at_note_status st, at_error *err, at_result code, int64_t offset,
                           int64_t line, const char *what, const char *name, size_t name_len, uint32_t id)
{
    out->status = st;
    int nl = name_len > 200 ? 200 : (int)name_len;
    if (st == AT_NOTE_MALFORMED)
        at_error_set(err, code, offset, GO_MALFORMED ": %s", what);
    else if (st == AT_NOTE_BAD_SIGNATURE)
        at_error_set(err, code, offset, "invalid signature for key %.*s+%08x", nl, name, (unsigned)id);
    else if (st == AT_NOTE_AMBIGUOUS)
        at_error_set(err, code, offset, "ambiguous key %.*s+%08x", nl, name, (unsigned)id);
    else
        at_error_set(err, code, offset, "%s", what);
    if (err)
        err->line = line;
    return code;
}

at_result at_note_open(const char *msg, size_t len, const at_note_verifier *const *known, size_t n_known,
                       at_note *out, at_error *err)
{
    out->status = AT_NOTE_OPEN_OK;
    out->text = NULL;
    out->text_len = 0;
    out->n_sigs = out->n_unverified = 0;
    if (len > AT_NOTE_MAX_BYTES)
        return open_fail(out, AT_NOTE_TOO_BIG, err, AT_ERR_TOO_BIG, AT_NOTE_MAX_BYTES, -1,
                         "note exceeds the size cap", NULL, 0, 0);
    bool bad_utf8 = false;
    int64_t bad = scan_chars(msg, len, &bad_utf8);
    if (bad >= 0)
        return open_fail(out, AT_NOTE_MALFORMED, err, bad_utf8 ? AT_ERR_UTF8 : AT_ERR_INVALID, bad, -1,
                         bad_utf8 ? "invalid UTF-8" : "control character", NULL, 0, 0);
    /* The text ends at the last empty line. */
    size_t split = len;
    for (size_t i = len; i >= 2; i--) {
        if (msg[i - 2] == '\n' && msg[i - 1] == '\n') {
            split = i - 2;
            break;
        }
    }
    if (split == len)
        return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_INVALID, (int64_t)len, -1,
                         "no empty line before the signatures", NULL, 0, 0);
    if (split + 2 == len || msg[len - 1] != '\n')
        return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_INVALID, (int64_t)len, -1,
                         "no signature lines, or no final newline", NULL, 0, 0);
    const char *text = msg;
    size_t text_len = split + 1;
    out->text = text;
    out->text_len = text_len;

    size_t num_sig = 0;
    int64_t line_no = 0;
    for (size_t pos = split + 2; pos < len; line_no++) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', len - pos); /* found: msg ends in '\n' */
        size_t line_len = (size_t)(nl - line);
        int64_t off = (int64_t)pos;
        pos += line_len + 1;
        if (line_len < SIG_PREFIX_LEN || memcmp(line, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
            return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_INVALID, off, line_no,
                             "signature line does not start with an em dash and a space", NULL, 0, 0);
        const char *name, *b64;
        size_t name_len, b64_len, total = 0;
        chop(line + SIG_PREFIX_LEN, line_len - SIG_PREFIX_LEN, ' ', &name, &name_len, &b64, &b64_len);
        uint8_t sig[MAX_SIG_BYTES];
        bool b64_ok = b64_decode(b64, b64_len, AT_BASE64_GO, sig, sizeof sig, &total);
        if (!b64_ok || !at_note_name_valid(name, name_len) || b64_len == 0 || total < 5)
            return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_INVALID, off, line_no,
                             "signature line with a bad key name or base64", NULL, 0, 0);
        uint32_t id = get_be32(sig);
        if (++num_sig > AT_NOTE_MAX_SIGS)
            return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_TOO_BIG, off, line_no,
                             "more than 100 signatures", NULL, 0, 0);
        const at_note_verifier *v = NULL;
        size_t matches = 0;
        for (size_t k = 0; k < n_known; k++) {
            if (known[k] && known[k]->id == id &&
                bytes_eq(known[k]->name, known[k]->name_len, name, name_len)) {
                v = known[k];
                matches++;
            }
        }
        at_note_sig rec = {name, name_len, id, b64, b64_len, NULL, 0};
        if (matches == 0) {
            /* An unknown key: kept once per identical line. */
            bool dup = false;
            for (size_t k = 0; k < out->n_unverified && !dup; k++)
                dup = bytes_eq(out->unverified[k].name, out->unverified[k].name_len, name, name_len) &&
                      bytes_eq(out->unverified[k].b64, out->unverified[k].b64_len, b64, b64_len);
            if (!dup)
                out->unverified[out->n_unverified++] = rec;
            continue;
        }
        if (matches > 1)
            return open_fail(out, AT_NOTE_AMBIGUOUS, err, AT_ERR_CONFLICT, off, line_no, NULL, name, name_len,
                             id);
        /* A known key: only its first signature counts, later ones are not even checked (Go). */
        bool seen = false;
        for (size_t k = 0; k < out->n_sigs && !seen; k++)
            seen = out->sigs[k].verifier == v;
        if (seen)
            continue;
        int ok = verify_sig(v, text, text_len, sig + 4, total - 4, &rec.timestamp);
        if (ok < 0)
            return open_fail(out, AT_NOTE_MALFORMED, err, AT_ERR_NOMEM, off, line_no, "out of memory", NULL,
                             0, 0);
        if (!ok)
            return open_fail(out, AT_NOTE_BAD_SIGNATURE, err, AT_ERR_INVALID, off, line_no, NULL, name,
                             name_len, id);
        rec.verifier = v;
        out->sigs[out->n_sigs++] = rec;
    }
    if (out->n_sigs == 0)
        return open_fail(out, AT_NOTE_UNVERIFIED, err, AT_ERR_NOT_FOUND, -1, -1, GO_UNVERIFIED, NULL, 0, 0);
    return AT_OK;
}

/* ---- checkpoints */

at_result at_note_checkpoint_parse(const char *text, size_t len, at_note_checkpoint *cp, at_error *err)
{
    at_result r = at_note_check_text(text, len, err);
    if (r != AT_OK)
        return r;
    const char *end = text + len, *p = text;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == p)
        return at_error_set(err, AT_ERR_INVALID, 0, "checkpoint: empty origin");
    cp->origin = p;
    cp->origin_len = (size_t)(nl - p);

    p = nl + 1;
    if (p == end)
        return at_error_set(err, AT_ERR_INVALID, p - text, "checkpoint: no tree size line");
    nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)(nl - p);
    if (n == 0 || (n > 1 && p[0] == '0'))
        return at_error_set(err, AT_ERR_INVALID, p - text,
                            "checkpoint: tree size empty or with a leading zero");
    uint64_t size = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return at_error_set(err, AT_ERR_INVALID, p - text + (int64_t)i,
                                "checkpoint: tree size not decimal");
        unsigned d = (unsigned)(p[i] - '0');
        if (size > (UINT64_MAX - d) / 10)
            return at_error_set(err, AT_ERR_INVALID, p - text, "checkpoint: tree size over 2^64 - 1");
        size = size * 10 + d;
    }
    cp->size = size;

    p = nl + 1;
    if (p == end)
        return at_error_set(err, AT_ERR_INVALID, p - text, "checkpoint: no root hash line");
    nl = memchr(p, '\n', (size_t)(end - p));
    size_t got = 0;
    if (at_note_base64_decode(p, (size_t)(nl - p), AT_BASE64_STRICT, cp->root, sizeof cp->root, &got) !=
            AT_OK ||
        got != AT_NOTE_HASH_LEN)
        return at_error_set(err, AT_ERR_INVALID, p - text,
                            "checkpoint: root hash not the base64 of 32 bytes");

    p = nl + 1;
    cp->ext = p;
    cp->ext_len = (size_t)(end - p);
    for (const char *q = p; q < end; q = (const char *)memchr(q, '\n', (size_t)(end - q)) + 1)
        if (*q == '\n')
            return at_error_set(err, AT_ERR_INVALID, q - text, "checkpoint: empty extension line");
    return AT_OK;
}

at_result at_note_checkpoint_format(const at_note_checkpoint *cp, at_buf *out, at_error *err)
{
    if (cp->origin_len == 0 || memchr(cp->origin, '\n', cp->origin_len))
        return at_error_set(err, AT_ERR_INVALID, -1, "checkpoint: origin empty or not one line");
    size_t start = out->len;
    char num[20];
    size_t k = put_u64(num, cp->size);
    at_result r = at_buf_add(out, cp->origin, cp->origin_len);
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK)
        r = at_buf_add(out, num, k);
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK)
        r = at_note_base64_encode(cp->root, AT_NOTE_HASH_LEN, out);
    if (r == AT_OK)
        r = at_buf_addc(out, '\n');
    if (r == AT_OK && cp->ext_len)
        r = at_buf_add(out, cp->ext, cp->ext_len);
    if (r != AT_OK)
        at_error_set(err, r, -1, "cannot append the checkpoint");
    else {
        /* What we write must parse: this checks the origin's characters and the extension lines. */
        at_note_checkpoint back;
        r = at_note_checkpoint_parse(out->data + start, out->len - start, &back, err);
        if (r == AT_OK && (back.origin_len != cp->origin_len || back.ext_len != cp->ext_len))
            r = at_error_set(err, AT_ERR_INVALID, -1, "checkpoint: origin or extensions not lines");
    }
    if (r != AT_OK && out->data) {
        out->len = start;
        out->data[start] = 0;
    }
    return r;
}
