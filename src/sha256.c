/* sha256.c - incremental SHA-256 through OpenSSL's low-level SHA256_CTX,
 * whose plain struct can be exported and imported (EVP's cannot) and needs
 * no allocation per reset; it runs the same assembly (SHA-NI where the CPU
 * has it) as EVP. The low-level API is deprecated in OpenSSL 3, not
 * removed. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "agenttrace/sha256.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct at_sha256 {
    SHA256_CTX c;
};

static const uint8_t state_tag[4] = {'S', '2', 'M', AT_SHA256_STATE_VERSION};

at_sha256 *at_sha256_new(void)
{
    at_sha256 *h = malloc(sizeof *h);
    if (h)
        SHA256_Init(&h->c);
    return h;
}

void at_sha256_free(at_sha256 *h)
{
    free(h);
}

void at_sha256_reset(at_sha256 *h)
{
    SHA256_Init(&h->c);
}

void at_sha256_update(at_sha256 *h, const void *p, size_t n)
{
    SHA256_Update(&h->c, p, n);
}

void at_sha256_copy(at_sha256 *dst, const at_sha256 *src)
{
    dst->c = src->c;
}

void at_sha256_final(at_sha256 *h, uint8_t out[AT_SHA256_LEN])
{
    SHA256_Final(out, &h->c);
}

void at_sha256_peek(const at_sha256 *h, uint8_t out[AT_SHA256_LEN])
{
    SHA256_CTX c = h->c;
    SHA256_Final(out, &c);
}

uint64_t at_sha256_count(const at_sha256 *h)
{
    return ((uint64_t)h->c.Nh << 32 | h->c.Nl) >> 3;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void at_sha256_export(const at_sha256 *h, uint8_t out[AT_SHA256_STATE_LEN])
{
    memcpy(out, state_tag, 4);
    for (int i = 0; i < 8; i++)
        put_be32(out + 4 + 4 * i, (uint32_t)h->c.h[i]);
    put_be32(out + 36, (uint32_t)h->c.Nh);
    put_be32(out + 40, (uint32_t)h->c.Nl);
    /* OpenSSL keeps the pending bytes in data[] in stream order. */
    memset(out + 44, 0, 64);
    memcpy(out + 44, h->c.data, h->c.num);
}

at_result at_sha256_import(at_sha256 *h, const uint8_t *in)
{
    if (memcmp(in, state_tag, 4) != 0)
        return AT_ERR_INVALID;
    uint32_t nh = get_be32(in + 36), nl = get_be32(in + 40);
    if (nl & 7)
        return AT_ERR_INVALID; /* only whole bytes are ever hashed */
    unsigned num = (nl >> 3) & 63;
    for (unsigned i = num; i < 64; i++)
        if (in[44 + i])
            return AT_ERR_INVALID;
    SHA256_CTX c;
    SHA256_Init(&c); /* sets md_len */
    for (int i = 0; i < 8; i++)
        c.h[i] = get_be32(in + 4 + 4 * i);
    c.Nh = nh;
    c.Nl = nl;
    memset(c.data, 0, sizeof c.data);
    memcpy(c.data, in + 44, num);
    c.num = num;
    h->c = c;
    return AT_OK;
}

/* One-shot digests go through EVP with an MD fetched once: OpenSSL 3's
 * SHA256() fetches the algorithm anew on every call (measured 2x slower
 * on the short seeds of event ids). */
static EVP_MD *g_md;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_md(void)
{
    g_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void at_sha256_oneshot(const void *p, size_t n, uint8_t out[AT_SHA256_LEN])
{
    unsigned int len = AT_SHA256_LEN;
    pthread_once(&g_once, fetch_md);
    if (!g_md || !EVP_Digest(p, n, out, &len, g_md, NULL)) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, p, n);
        SHA256_Final(out, &c);
    }
}

void at_hex(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int at_unhex_sha256(const char *s, size_t n, uint8_t out[AT_SHA256_LEN])
{
    if (n != 64)
        return 0;
    for (size_t i = 0; i < 32; i++) {
        int a = hv(s[2 * i]), b = hv(s[2 * i + 1]);
        if (a < 0 || b < 0)
            return 0;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 1;
}
