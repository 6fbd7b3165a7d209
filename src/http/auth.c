/* auth.c - API keys, keys files and bearer tokens (auth.h). */
#include "http/auth.h"

#include "agenttrace/sha256.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_auth_init(http_auth *a)
{
    memset(a, 0, sizeof *a);
}

void http_auth_fini(http_auth *a)
{
    if (a->keys)
        OPENSSL_cleanse(a->keys, a->cap * sizeof *a->keys);
    free(a->keys);
    memset(a, 0, sizeof *a);
}

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

bool http_auth_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HTTP_AUTH_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

http_role http_role_parse(const char *s)
{
    return strcmp(s, "reader") == 0   ? HTTP_ROLE_READER
           : strcmp(s, "writer") == 0 ? HTTP_ROLE_WRITER
           : strcmp(s, "admin") == 0  ? HTTP_ROLE_ADMIN
                                      : 0;
}

const char *http_role_name(http_role r)
{
    return r == HTTP_ROLE_READER ? "reader" : r == HTTP_ROLE_WRITER ? "writer" : "admin";
}

void http_auth_line(const char *name, http_role role, const char *workspace, const char *key, char *out,
                    size_t cap)
{
    uint8_t d[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(key, strlen(key), d);
    at_hex(d, sizeof d, hex);
    snprintf(out, cap, "%s %s %s %s", name, http_role_name(role), workspace, hex);
}

static bool push_key(http_auth *a, const http_key *k, char *why, size_t cap)
{
    if (a->n >= HTTP_AUTH_MAX_KEYS) {
        snprintf(why, cap, "more than %d keys", HTTP_AUTH_MAX_KEYS);
        return false;
    }
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 8;
        http_key *nk = realloc(a->keys, ncap * sizeof *nk);
        if (!nk) {
            snprintf(why, cap, "out of memory");
            return false;
        }
        a->keys = nk;
        a->cap = ncap;
    }
    a->keys[a->n++] = *k;
    return true;
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
    http_key key = {.role = HTTP_ROLE_ADMIN};
    snprintf(key.name, sizeof key.name, "key%zu", a->n + 1);
    snprintf(key.workspace, sizeof key.workspace, "default");
    at_sha256_oneshot(k, n, key.digest);
    return push_key(a, &key, why, cap);
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

static bool unhex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !((s[2 * i] >= '0' && s[2 * i] <= '9') ||
                                                   (s[2 * i] >= 'a' && s[2 * i] <= 'f')) ||
            !((s[2 * i + 1] >= '0' && s[2 * i + 1] <= '9') || (s[2 * i + 1] >= 'a' && s[2 * i + 1] <= 'f')))
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

bool http_auth_load(http_auth *a, const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return false;
    }
    size_t first = a->n, lineno = 0;
    char line[1024];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char name[128], role[32], ws[128], dig[128], extra[8];
        int k = sscanf(line, "%127s %31s %127s %127s %7s", name, role, ws, dig, extra);
        if (k <= 0)
            continue; /* blank or comment */
        http_key key = {0};
        const char *bad = k != 4                                              ? "want <name> <role> <workspace or *> <sha256 hex of the key>"
                          : !http_auth_name_ok(name)                          ? "the name must be 1-64 of A-Z a-z 0-9 . _ -"
                          : !(key.role = http_role_parse(role))               ? "the role must be reader, writer or admin"
                          : !(strcmp(ws, "*") == 0 || http_auth_name_ok(ws)) ? "the workspace must be * or 1-64 of A-Z a-z 0-9 . _ -"
                          : !unhex32(dig, key.digest)                         ? "the last field must be the key's SHA-256 in 64 lowercase hex digits (the file never holds a key)"
                                                                              : NULL;
        for (size_t i = first; !bad && i < a->n; i++)
            if (strcmp(a->keys[i].name, name) == 0)
                bad = "a second key with this name";
        if (bad) {
            snprintf(why, cap, "%s line %zu: %s", path, lineno, bad);
            ok = false;
            break;
        }
        snprintf(key.name, sizeof key.name, "%s", name);
        snprintf(key.workspace, sizeof key.workspace, "%s", ws);
        ok = push_key(a, &key, why, cap);
    }
    if (ok && ferror(f)) {
        snprintf(why, cap, "%s: cannot read it", path);
        ok = false;
    }
    fclose(f);
    if (!ok)
        a->n = first; /* nothing of a bad file */
    return ok;
}

bool http_auth_add_named(http_auth *a, const char *name, const char *role, const char *workspace,
                         const uint8_t digest[32], char *why, size_t cap)
{
    http_key key = {0};
    if (!http_auth_name_ok(name) || !(key.role = http_role_parse(role)) ||
        !(strcmp(workspace, "*") == 0 || http_auth_name_ok(workspace))) {
        snprintf(why, cap, "key %.64s: a bad name, role or workspace", name);
        return false;
    }
    snprintf(key.name, sizeof key.name, "%s", name);
    snprintf(key.workspace, sizeof key.workspace, "%s", workspace);
    memcpy(key.digest, digest, sizeof key.digest);
    return push_key(a, &key, why, cap);
}

bool http_auth_same(const http_auth *a, const http_auth *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->keys, b->keys, a->n * sizeof *a->keys) == 0);
}

http_auth_verdict http_auth_check(const http_auth *a, const char *h, const http_key **key)
{
    *key = NULL;
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
    /* one hash of the token, then every key's digest compared in full */
    uint8_t d[AT_SHA256_LEN];
    at_sha256_oneshot(t, n, d);
    const http_key *hit = NULL;
    for (size_t i = 0; i < a->n; i++) {
        bool same = CRYPTO_memcmp(d, a->keys[i].digest, sizeof d) == 0;
        hit = same ? &a->keys[i] : hit;
    }
    if (!hit)
        return HTTP_AUTH_WRONG;
    *key = hit;
    return HTTP_AUTH_OK;
}
