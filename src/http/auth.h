/* auth.h - the API keys of `serve` and the check of a request's
 * Authorization header (RFC 6750 bearer tokens).
 *
 * Keys come from --auth-key (one each), AGENT_STRACE_AUTH_KEY (comma-
 * separated) and a keys file (serve --keys FILE): one line a key,
 *     <name> <role> <workspace or *> <sha256 hex of the key>
 * with blank lines and # comments; the file never holds a key itself.
 * --auth-key and AGENT_STRACE_AUTH_KEY keys are admins of the default
 * workspace, named key1, key2, ... An empty, blank or malformed key, and a
 * malformed line, are refused where they are read, so a typo never turns
 * authentication off. Only SHA-256 digests are kept; a check hashes the
 * token once and compares it with every key's digest in constant time. */
#ifndef AGENTTRACED_HTTP_AUTH_H
#define AGENTTRACED_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_AUTH_MAX_KEYS 4096
#define HTTP_AUTH_MAX_KEY  256 /* bytes of a key */
#define HTTP_AUTH_MAX_NAME 64

typedef enum { HTTP_ROLE_READER = 1, HTTP_ROLE_WRITER, HTTP_ROLE_ADMIN } http_role;

typedef struct {
    char name[HTTP_AUTH_MAX_NAME + 1];
    http_role role;
    char workspace[HTTP_AUTH_MAX_NAME + 1]; /* "*": every workspace */
    uint8_t digest[32];                     /* SHA-256 of the key */
} http_key;

typedef struct {
    http_key *keys;
    size_t n, cap;
} http_auth;

void http_auth_init(http_auth *a);
void http_auth_fini(http_auth *a);

/* Adds one key (surrounding spaces and tabs dropped) as an admin of the
 * default workspace, named key<N>. False, with the reason in why, for an
 * empty key, one that is not an RFC 6750 b64token (letters, digits,
 * - . _ ~ + / then = padding), one too long, or too many. */
bool http_auth_add(http_auth *a, const char *k, size_t n, char *why, size_t cap);
/* Adds every item of a comma-separated list; each must be a valid key. */
bool http_auth_add_list(http_auth *a, const char *list, char *why, size_t cap);
/* Adds the keys of a keys file. False, with the file, line and reason in
 * why, when it cannot be read or a line is malformed (nothing is added). */
bool http_auth_load(http_auth *a, const char *path, char *why, size_t cap);

/* Adds a named key known by its digest (a row of the database's keys,
 * already checked by `db keys load`): false, with why, for a bad field or
 * too many keys. */
bool http_auth_add_named(http_auth *a, const char *name, const char *role, const char *workspace,
                         const uint8_t digest[32], char *why, size_t cap);
/* Do a and b hold the same keys, in the same order? */
bool http_auth_same(const http_auth *a, const http_auth *b);

/* Role names: "reader", "writer", "admin"; 0 for anything else. */
http_role http_role_parse(const char *s);
const char *http_role_name(http_role r);
/* Is s usable as a key name or workspace id (1-64 of [A-Za-z0-9._-])? */
bool http_auth_name_ok(const char *s);
/* The keys-file line of a key: "<name> <role> <workspace> <sha256 hex>". */
void http_auth_line(const char *name, http_role role, const char *workspace, const char *key, char *out,
                    size_t cap);

typedef enum {
    HTTP_AUTH_OK,
    HTTP_AUTH_MISSING,    /* no Authorization header */
    HTTP_AUTH_NOT_BEARER, /* another scheme, or no credentials */
    HTTP_AUTH_WRONG,      /* a bearer token that is no key */
} http_auth_verdict;

/* The verdict on an Authorization header value (NULL: none). The scheme is
 * case-insensitive (RFC 7235); always OK when no key is configured. On OK
 * *key is the matching key (NULL when no key is configured); it stays
 * valid as long as a. */
http_auth_verdict http_auth_check(const http_auth *a, const char *header, const http_key **key);

#endif
