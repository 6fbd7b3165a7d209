/* sha256.c - SHA-256 via OpenSSL EVP (uses SHA-NI where the CPU has it). */
#include "agenttrace/sha256.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

struct at_sha256 {
    EVP_MD_CTX *ctx;
};

/* Fetched once: EVP_sha256() lookups are cheap, but a fetched MD avoids the
 * implicit fetch OpenSSL 3 performs on every init. */
static EVP_MD *g_md;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_md(void)
{
    g_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md(void)
{
    pthread_once(&g_once, fetch_md);
    return g_md ? g_md : EVP_sha256();
}

at_sha256 *at_sha256_new(void)
{
    at_sha256 *h = malloc(sizeof *h);
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, md(), NULL)) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void at_sha256_free(at_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void at_sha256_reset(at_sha256 *h)
{
    EVP_DigestInit_ex(h->ctx, md(), NULL);
}

void at_sha256_update(at_sha256 *h, const void *p, size_t n)
{
    EVP_DigestUpdate(h->ctx, p, n);
}

void at_sha256_copy(at_sha256 *dst, const at_sha256 *src)
{
    EVP_MD_CTX_copy_ex(dst->ctx, src->ctx);
}

void at_sha256_final(at_sha256 *h, uint8_t out[AT_SHA256_LEN])
{
    unsigned int len = AT_SHA256_LEN;
    EVP_DigestFinal_ex(h->ctx, out, &len);
}

void at_sha256_oneshot(const void *p, size_t n, uint8_t out[AT_SHA256_LEN])
{
    unsigned int len = AT_SHA256_LEN;
    EVP_Digest(p, n, out, &len, md(), NULL);
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
