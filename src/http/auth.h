/* auth.h - the API keys of `serve` and the check of a request's
 * Authorization header (RFC 6750 bearer tokens).
 *
 * Keys come from --auth-key (one each) or AGENT_STRACE_AUTH_KEY (comma-
 * separated). An empty, blank or malformed key is refused when it is added,
 * so a typo can never turn authentication off. The check compares in
 * constant time over every key's full width. */
#ifndef AGENTTRACED_HTTP_AUTH_H
#define AGENTTRACED_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_AUTH_MAX_KEYS 64
#define HTTP_AUTH_MAX_KEY  256

typedef struct {
    char key[HTTP_AUTH_MAX_KEYS][HTTP_AUTH_MAX_KEY]; /* zero-padded */
    size_t len[HTTP_AUTH_MAX_KEYS];
    size_t n;
} http_auth;

/* Adds one key (surrounding spaces and tabs dropped). False, with the
 * reason in why, for an empty key, one that is not an RFC 6750 b64token
 * (letters, digits, - . _ ~ + / then = padding), one too long, or too many. */
bool http_auth_add(http_auth *a, const char *k, size_t n, char *why, size_t cap);
/* Adds every item of a comma-separated list; each must be a valid key. */
bool http_auth_add_list(http_auth *a, const char *list, char *why, size_t cap);

typedef enum {
    HTTP_AUTH_OK,
    HTTP_AUTH_MISSING,   /* no Authorization header */
    HTTP_AUTH_NOT_BEARER, /* another scheme, or no credentials */
    HTTP_AUTH_WRONG,     /* a bearer token that is no key */
} http_auth_verdict;

/* The verdict on an Authorization header value (NULL: none). The scheme is
 * case-insensitive (RFC 7235); always OK when no key is configured. On OK
 * *which is the key's index (its name in logs: "key<index+1>"), -1 when
 * no key is configured. */
http_auth_verdict http_auth_check(const http_auth *a, const char *header, int *which);

#endif
