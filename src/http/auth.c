/* auth.c - API keys and bearer tokens (auth.h). */
#include "http/auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool b64token_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/';
}

/* RFC 6750: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool b64token(const char *k, size_t n)
{
    size_t i = 0;
    while (i < n && b64token_char((unsigned char)k[i]))
        i++;
    if (i == 0)
        return false;
    while (i < n && k[i] == '=')
        i++;
    return i == n;
}

bool http_auth_add(http_auth *a, const char *k, size_t n, char *why, size_t cap)
{
    while (n && (*k == ' ' || *k == '\t')) {
        k++;
        n--;
    }
    while (n && (k[n - 1] == ' ' || k[n - 1] == '\t'))
        n--;
    if (n == 0) {
        snprintf(why, cap, "an auth key is empty (authentication would be off)");
        return false;
    }
    if (!b64token(k, n)) {
        snprintf(why, cap, "an auth key holds a character a bearer token cannot carry "
                           "(letters, digits and - . _ ~ + / only, then = padding)");
        return false;
    }
    if (n > HTTP_AUTH_MAX_KEY) {
        snprintf(why, cap, "an auth key is longer than %d bytes", HTTP_AUTH_MAX_KEY);
        return false;
    }
    if (a->n >= HTTP_AUTH_MAX_KEYS) {
        snprintf(why, cap, "more than %d auth keys", HTTP_AUTH_MAX_KEYS);
        return false;
    }
    memset(a->key[a->n], 0, HTTP_AUTH_MAX_KEY);
    memcpy(a->key[a->n], k, n);
    a->len[a->n++] = n;
    return true;
}

bool http_auth_add_list(http_auth *a, const char *list, char *why, size_t cap)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (!http_auth_add(a, p, n, why, cap))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

http_auth_verdict http_auth_check(const http_auth *a, const char *h, int *which)
{
    *which = -1;
    if (a->n == 0)
        return HTTP_AUTH_OK;
    if (!h)
        return HTTP_AUTH_MISSING;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return HTTP_AUTH_NOT_BEARER;
    const char *t = h + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return HTTP_AUTH_NOT_BEARER;
    /* every key over its full width, whatever the lengths */
    char got[HTTP_AUTH_MAX_KEY];
    memset(got, 0, sizeof got);
    bool too_long = n > sizeof got;
    memcpy(got, t, too_long ? sizeof got : n);
    unsigned ok = 0;
    int hit = -1;
    for (size_t i = 0; i < a->n; i++) {
        unsigned same_len = (unsigned)(n == a->len[i]);
        unsigned same = (unsigned)(CRYPTO_memcmp(got, a->key[i], sizeof got) == 0);
        unsigned m = same_len & same;
        ok |= m;
        hit = m ? (int)i : hit; /* every key compared, whichever matches */
    }
    if (!ok || too_long)
        return HTTP_AUTH_WRONG;
    *which = hit;
    return HTTP_AUTH_OK;
}
