/* redact.c - secret redaction (redaction.md), Python `re` semantics by PCRE2.
 *
 * Where PCRE2 and Python's `re` differ, the patterns say what Python means
 * instead of relying on PCRE2's reading of the shorthand:
 *  - `\s` is Python's str.isspace() set, spelled out as a class (PCRE2's UCP
 *    \s leaves out U+001C..U+001F, which Python counts as space);
 *  - `\b` only ever stands before an ASCII letter (basic-auth), where it
 *    means "the previous character is not a word character": a lookbehind
 *    on [\p{L}\p{N}_], which is exactly Python's Unicode \w in the Unicode
 *    version both use (14.0; tests/vectors/word_ranges.txt checks it);
 *  - lone surrogates, which Python strings hold and PCRE2 cannot match, are
 *    swapped for private-use characters absent from the string (same
 *    classes in every pattern: not a word character, not space) and
 *    swapped back afterwards.
 * Every pattern needs one of a few literals (or a run of 16 hex digits), so
 * a string without any of them is left alone after one cheap scan. */
#include "agenttrace/redact.h"

#include "agenttrace/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define WS                                                                                                   \
    "\\t\\n\\x0b\\f\\r\\x1c-\\x1f\\x20\\x85\\xa0\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* The patterns, in the order they run. */
enum {
    P_PRIVATE_KEY,
    P_ANTHROPIC,
    P_OPENAI,
    P_GITHUB,
    P_GITHUB_PAT,
    P_SLACK,
    P_AWS,
    P_BEARER,
    P_CONNECTION,
    P_BASIC_AUTH,
    P_API_KEY,
    P_TOKEN,
    P_JWT,
    P_HEX,
    NPATTERNS
};

static const struct {
    const char *kind;
    const char *re;
} patterns[NPATTERNS] = {
    [P_PRIVATE_KEY] = {"private-key", "-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----[\\s\\S]*?"
                                      "-----END (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----"},
    [P_ANTHROPIC] = {"anthropic-key", "sk-ant-[a-zA-Z0-9\\-]{20,}"},
    [P_OPENAI] = {"openai-key", "sk-[a-zA-Z0-9]{20,}"},
    [P_GITHUB] = {"github-token", "gh[ps]_[a-zA-Z0-9]{36,}"},
    [P_GITHUB_PAT] = {"github-token", "github_pat_[a-zA-Z0-9_]{22,}"},
    [P_SLACK] = {"slack-token", "xox[bpras]-[a-zA-Z0-9\\-]{10,}"},
    [P_AWS] = {"aws-access-key", "AKIA[0-9A-Z]{16}"},
    [P_BEARER] = {"bearer-token", "Bearer[" WS "]+[a-zA-Z0-9\\-._~+/]+=*"},
    [P_CONNECTION] = {"connection-string", "(postgres|mysql|mongodb|redis|amqp)://[^" WS "]+"},
    [P_BASIC_AUTH] = {"basic-auth",
                      "(?<![\\p{L}\\p{N}_])([a-zA-Z][a-zA-Z0-9+.-]*://)([^/" WS ":@]+:[^/" WS "@]+)@"},
    [P_API_KEY] = {"api-key", "key-[a-zA-Z0-9]{16,}"},
    [P_TOKEN] = {"token", "token-[a-zA-Z0-9]{16,}"},
    [P_JWT] = {"jwt", "eyJ[a-zA-Z0-9_-]{10,}\\.eyJ[a-zA-Z0-9_-]{10,}\\.[a-zA-Z0-9_-]{10,}"},
    [P_HEX] = {"hex-token", "[0-9a-f]{40,}"},
};

#define SENSITIVE_MARKER "[REDACTED:sensitive]"

/* ---- the compiled patterns, shared by every thread ------------------------ */

static pcre2_code *compiled[NPATTERNS];
static char compile_error[200];
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static void compile_all(void)
{
    for (int i = 0; i < NPATTERNS; i++) {
        int code;
        PCRE2_SIZE at;
        compiled[i] =
            pcre2_compile((PCRE2_SPTR)patterns[i].re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &at, NULL);
        if (!compiled[i]) {
            char msg[120];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
            snprintf(compile_error, sizeof compile_error, "pattern %s does not compile at %zu: %s",
                     patterns[i].kind, (size_t)at, msg);
            for (int j = 0; j < i; j++) {
                pcre2_code_free(compiled[j]);
                compiled[j] = NULL;
            }
            return;
        }
        /* Without JIT (a platform PCRE2 cannot JIT for), the interpreter
         * gives the same results, slower. */
        (void)pcre2_jit_compile(compiled[i], PCRE2_JIT_COMPLETE);
    }
}

/* ---- one thread's state ----------------------------------------------------- */

struct at_redact {
    pcre2_match_data *md;
    at_buf a, b;    /* pass outputs, alternating */
    at_buf swapped; /* the string with its surrogates swapped out */
    bool changed, marked;
    bool no_prefilter; /* at_redact_set_prefilter(rd, false) */
};

at_redact *at_redact_new(at_error *err)
{
    pthread_once(&compile_once, compile_all);
    if (!compiled[0]) {
        at_error_set(err, AT_ERR_INVALID, -1, "redaction: %s", compile_error);
        return NULL;
    }
    at_redact *rd = calloc(1, sizeof *rd);
    if (rd)
        rd->md = pcre2_match_data_create(4, NULL);
    if (!rd || !rd->md) {
        free(rd);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    at_buf_init(&rd->a, 0);
    at_buf_init(&rd->b, 0);
    at_buf_init(&rd->swapped, 0);
    return rd;
}

void at_redact_free(at_redact *rd)
{
    if (!rd)
        return;
    pcre2_match_data_free(rd->md);
    at_buf_fini(&rd->a);
    at_buf_fini(&rd->b);
    at_buf_fini(&rd->swapped);
    free(rd);
}

static bool env_says_off(const char *name)
{
    const char *v = getenv(name);
    return v && (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

bool at_redact_env_disabled(void)
{
    return env_says_off("AGENT_TRACE_NO_REDACT") || env_says_off("AGENT_STRACE_NO_REDACT");
}

void at_redact_set_prefilter(at_redact *rd, bool on)
{
    rd->no_prefilter = !on;
}

void at_redact_begin(at_redact *rd)
{
    rd->changed = rd->marked = false;
}

bool at_redact_changed(const at_redact *rd)
{
    return rd->changed;
}

bool at_redact_marked(const at_redact *rd)
{
    return rd->marked;
}

/* ---- sensitive keys --------------------------------------------------------- */

static const char *const sensitive_keys[] = {
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "refresh_token",
    "auth_token",
    "authorization",
    "credential",
    "credentials",
    "private_key",
    "privatekey",
    "client_secret",
    "connection_string",
    "database_url",
    "db_url",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
};

bool at_redact_key_sensitive(const char *key, size_t n)
{
    /* lower() then strip(): no character changes between space and not
     * space when lowered, so stripping first gives the same text. */
    const unsigned char *s = (const unsigned char *)at_pystrip(key, &n);
    char norm[32];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (len == sizeof norm - 1)
            return false;
        unsigned char c = s[i];
        if (c == 0) {
            return false; /* no sensitive name holds a NUL (and strcmp below must not stop at one) */
        } else if (c < 0x80) {
            norm[len++] = c == '-' ? '_' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
        } else if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x84 && s[i + 2] == 0xaa) {
            norm[len++] = 'k'; /* U+212A KELVIN SIGN lowers to "k", the one non-ASCII that lowers to ASCII */
            i += 2;
        } else {
            return false;
        }
    }
    norm[len] = 0;
    for (size_t i = 0; i < sizeof sensitive_keys / sizeof *sensitive_keys; i++)
        if (strcmp(norm, sensitive_keys[i]) == 0)
            return true;
    return false;
}

/* ---- the pre-filter --------------------------------------------------------- */

#define BIT(p)     (1u << (p))
#define HAS_MARKER (1u << 31)

static bool at(const unsigned char *s, size_t n, size_t i, const char *lit, size_t k)
{
    return i <= n && n - i >= k && memcmp(s + i, lit, k) == 0;
}

/* The patterns that could match because of the trigger byte at s[i] (each
 * pattern's literal contains one of - _ : K B J), and the marker's '['. */
static uint32_t trigger(const unsigned char *s, size_t n, size_t i)
{
    uint32_t m = 0;
    switch (s[i]) {
    case '-':
        if (i >= 2 && s[i - 2] == 's' && s[i - 1] == 'k')
            m |= BIT(P_ANTHROPIC) | BIT(P_OPENAI);
        if (i >= 3 && at(s, n, i - 3, "key", 3))
            m |= BIT(P_API_KEY);
        if (i >= 5 && at(s, n, i - 5, "token", 5))
            m |= BIT(P_TOKEN);
        if (i >= 4 && at(s, n, i - 4, "xox", 3) && strchr("bpras", s[i - 1]))
            m |= BIT(P_SLACK);
        if (at(s, n, i, "-----BEGIN ", 11))
            m |= BIT(P_PRIVATE_KEY);
        break;
    case '_':
        if (i >= 3 && s[i - 3] == 'g' && s[i - 2] == 'h' && (s[i - 1] == 'p' || s[i - 1] == 's'))
            m |= BIT(P_GITHUB);
        if (i >= 6 && at(s, n, i - 6, "github_pat_", 11))
            m |= BIT(P_GITHUB_PAT);
        break;
    case ':':
        if (at(s, n, i, "://", 3))
            m |= BIT(P_CONNECTION) | BIT(P_BASIC_AUTH);
        break;
    case 'K':
        if (i >= 1 && at(s, n, i - 1, "AKIA", 4))
            m |= BIT(P_AWS);
        break;
    case 'B':
        if (at(s, n, i, "Bearer", 6))
            m |= BIT(P_BEARER);
        break;
    case 'J':
        if (i >= 2 && s[i - 2] == 'e' && s[i - 1] == 'y')
            m |= BIT(P_JWT);
        break;
    case '[':
        if (at(s, n, i, AT_REDACT_MARKER, sizeof AT_REDACT_MARKER - 1))
            m |= HAS_MARKER;
        break;
    }
    return m;
}

static bool is_trigger(unsigned char c)
{
    return c == '-' || c == '_' || c == ':' || c == 'K' || c == 'B' || c == 'J' || c == '[';
}

#ifndef __SSE2__
static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
#endif

/* Which patterns may match s, plus HAS_MARKER. Never misses a pattern that
 * matches: a run of 40 hex digits holds a whole 16-byte block (counted from
 * the string's start) of them, and every other pattern holds its literal. */
static uint32_t prefilter(const unsigned char *s, size_t n)
{
    uint32_t m = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i dash = _mm_set1_epi8('-'), und = _mm_set1_epi8('_'), colon = _mm_set1_epi8(':');
    const __m128i K = _mm_set1_epi8('K'), B = _mm_set1_epi8('B'), J = _mm_set1_epi8('J');
    const __m128i br = _mm_set1_epi8('[');
    /* hex: c - '0' <= 9 or c - 'a' <= 5, as unsigned compares via min */
    const __m128i d0 = _mm_set1_epi8('0'), d9 = _mm_set1_epi8(9), a0 = _mm_set1_epi8('a'),
                  a5 = _mm_set1_epi8(5);
    for (; n - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i t = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, dash), _mm_cmpeq_epi8(v, und)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, colon), _mm_cmpeq_epi8(v, K)));
        t = _mm_or_si128(
            t, _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, B), _mm_cmpeq_epi8(v, J)), _mm_cmpeq_epi8(v, br)));
        unsigned tm = (unsigned)_mm_movemask_epi8(t);
        if (!(m & BIT(P_HEX))) {
            __m128i x = _mm_sub_epi8(v, d0), y = _mm_sub_epi8(v, a0);
            __m128i hx =
                _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, d9), x), _mm_cmpeq_epi8(_mm_min_epu8(y, a5), y));
            if (_mm_movemask_epi8(hx) == 0xffff)
                m |= BIT(P_HEX);
        }
        while (tm) {
            m |= trigger(s, n, i + (size_t)__builtin_ctz(tm));
            tm &= tm - 1;
        }
    }
#else
    for (; n - i >= 16; i += 16) {
        bool all_hex = true;
        for (size_t j = i; j < i + 16; j++) {
            all_hex = all_hex && is_hex(s[j]);
            if (is_trigger(s[j]))
                m |= trigger(s, n, j);
        }
        if (all_hex)
            m |= BIT(P_HEX);
    }
#endif
    for (; i < n; i++)
        if (is_trigger(s[i]))
            m |= trigger(s, n, i);
    return m;
}

/* The pre-filter, or (turned off) every pattern and an exact marker check. */
static uint32_t scan(const at_redact *rd, const char *s, size_t n)
{
    if (!rd->no_prefilter)
        return prefilter((const unsigned char *)s, n);
    bool marker = memmem(s, n, AT_REDACT_MARKER, sizeof AT_REDACT_MARKER - 1) != NULL;
    return (BIT(NPATTERNS) - 1) | (marker ? HAS_MARKER : 0);
}

/* ---- lone surrogates ------------------------------------------------------------ */

static bool is_surrogate_at(const unsigned char *s, size_t n, size_t i)
{
    return s[i] == 0xed && i + 2 < n && s[i + 1] >= 0xa0 && s[i + 1] <= 0xbf;
}

static bool has_surrogate(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (const unsigned char *p = memchr(u, 0xed, n); p; p = memchr(p + 1, 0xed, n - (size_t)(p + 1 - u)))
        if (is_surrogate_at(u, n, (size_t)(p - u)))
            return true;
    return false;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the (valid WTF-8) character at s[i]; *len gets its length. */
static uint32_t get_cp(const unsigned char *s, size_t n, size_t i, size_t *len)
{
    unsigned char c = s[i];
    size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n - i < k)
        k = 1; /* cannot happen on valid input; never read past the end */
    *len = k;
    switch (k) {
    case 2: return (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f);
    case 3: return (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
    case 4:
        return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12 |
               (uint32_t)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
    default: return c;
    }
}

/* Private-use code points, in the order they are handed out. */
static const uint32_t pua[][2] = {{0xe000, 0xf8ff}, {0xf0000, 0xffffd}, {0x100000, 0x10fffd}};

static bool is_pua(uint32_t cp)
{
    for (size_t r = 0; r < sizeof pua / sizeof *pua; r++)
        if (cp >= pua[r][0] && cp <= pua[r][1])
            return true;
    return false;
}

/* The swap of lone surrogates for private-use characters absent from the
 * string: sub[v] is the stand-in of surrogate 0xD800 + v (0: none). */
typedef struct {
    uint32_t sub[2048];
    uint16_t order[2048]; /* surrogates in the order they got a stand-in: */
    size_t norder;        /* so their stand-ins are increasing */
    uint8_t *used;        /* bitmap over code points: present in the string */
} swap_map;

static at_result swap_out(at_redact *rd, const char *str, size_t n, swap_map *map)
{
    const unsigned char *s = (const unsigned char *)str;
    memset(map->sub, 0, sizeof map->sub);
    map->norder = 0;
    map->used = calloc(0x110000 / 8, 1);
    if (!map->used)
        return AT_ERR_NOMEM;
    size_t len;
    for (size_t i = 0; i < n; i += len) {
        uint32_t cp = get_cp(s, n, i, &len);
        map->used[cp >> 3] |= (uint8_t)(1u << (cp & 7));
    }
    size_t range = 0;
    uint32_t next = pua[0][0];
    at_buf_reset(&rd->swapped);
    at_result r = at_buf_reserve(&rd->swapped, n + n / 3 + 4);
    for (size_t i = 0; r == AT_OK && i < n; i += len) {
        uint32_t cp = get_cp(s, n, i, &len);
        if (cp < 0xd800 || cp > 0xdfff || len != 3) {
            r = at_buf_add(&rd->swapped, s + i, len);
            continue;
        }
        uint32_t *sub = &map->sub[cp - 0xd800];
        while (!*sub) {
            if (range == sizeof pua / sizeof *pua) {
                r = AT_ERR_TOO_BIG; /* every private-use character is in the string already */
                break;
            }
            if (!(map->used[next >> 3] & (1u << (next & 7)))) {
                *sub = next;
                map->order[map->norder++] = (uint16_t)(cp - 0xd800);
            }
            if (++next > pua[range][1] && ++range < sizeof pua / sizeof *pua)
                next = pua[range][0];
        }
        char o[4];
        if (r == AT_OK)
            r = at_buf_add(&rd->swapped, o, put_utf8(o, *sub));
    }
    return r;
}

/* The surrogate whose stand-in is cp, or -1. */
static int stand_in_of(const swap_map *map, uint32_t cp)
{
    size_t lo = 0, hi = map->norder;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t v = map->sub[map->order[mid]];
        if (v == cp)
            return map->order[mid];
        if (v < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Puts the surrogates back into out. */
static at_result swap_back(at_buf *out, const swap_map *map, at_buf *scratch)
{
    at_buf_reset(scratch);
    const unsigned char *s = (const unsigned char *)out->data;
    size_t n = out->len, len;
    at_result r = AT_OK;
    for (size_t i = 0; r == AT_OK && i < n; i += len) {
        uint32_t cp = get_cp(s, n, i, &len);
        int v = is_pua(cp) ? stand_in_of(map, cp) : -1;
        if (v >= 0) {
            char o[4];
            put_utf8(o, 0xd800 + (uint32_t)v);
            r = at_buf_add(scratch, o, 3);
        } else {
            r = at_buf_add(scratch, s + i, len);
        }
    }
    if (r == AT_OK) {
        at_buf t = *out;
        *out = *scratch;
        *scratch = t;
    }
    return r;
}

/* ---- substitution ------------------------------------------------------------- */

/* One pattern over cur (valid UTF-8) into out; *hit when it matched. */
static at_result run_pattern(at_redact *rd, int p, const char *cur, size_t n, at_buf *out, bool *hit)
{
    PCRE2_SIZE start = 0;
    *hit = false;
    at_buf_reset(out);
    while (start < n) {
        int rc = pcre2_match(compiled[p], (PCRE2_SPTR)cur, n, start, PCRE2_NO_UTF_CHECK, rd->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return rc == PCRE2_ERROR_NOMEMORY ? AT_ERR_NOMEM : AT_ERR_INVALID;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rd->md);
        at_result r = at_buf_add(out, cur + start, ov[0] - start);
        if (r == AT_OK && p == P_BASIC_AUTH)
            r = at_buf_add(out, cur + ov[2], ov[3] - ov[2]);
        if (r == AT_OK)
            r = at_buf_printf(out, "[REDACTED:%s]%s", patterns[p].kind, p == P_BASIC_AUTH ? "@" : "");
        if (r != AT_OK)
            return r;
        *hit = true;
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1; /* no pattern matches empty; never loop */
    }
    if (!*hit)
        return AT_OK;
    return start < n ? at_buf_add(out, cur + start, n - start) : AT_OK;
}

/* Runs the patterns that mask allows (all of them once one has matched:
 * a rewrite can make text that a later pattern matches). */
static at_result run_patterns(at_redact *rd, uint32_t mask, const char *s, size_t n, at_buf *out,
                              bool *changed)
{
    const char *cur = s;
    size_t cur_n = n;
    at_buf *bufs[2] = {&rd->a, &rd->b};
    int which = 0;
    *changed = false;
    for (int p = 0; p < NPATTERNS; p++) {
        if (!*changed && !(mask & BIT(p)))
            continue;
        bool hit;
        at_result r = run_pattern(rd, p, cur, cur_n, bufs[which], &hit);
        if (r != AT_OK)
            return r;
        if (hit) {
            cur = bufs[which]->data;
            cur_n = bufs[which]->len;
            which ^= 1;
            *changed = true;
        }
    }
    at_buf_reset(out);
    return *changed ? at_buf_add(out, cur, cur_n) : AT_OK;
}

static at_result redact_text(at_redact *rd, const char *s, size_t n, uint32_t mask, at_buf *out,
                             bool *changed)
{
    if (!has_surrogate(s, n))
        return run_patterns(rd, mask, s, n, out, changed);
    swap_map *map = malloc(sizeof *map);
    if (!map)
        return AT_ERR_NOMEM;
    map->used = NULL;
    at_result r = swap_out(rd, s, n, map);
    if (r == AT_OK)
        r = run_patterns(rd, scan(rd, rd->swapped.data, rd->swapped.len), rd->swapped.data, rd->swapped.len,
                         out, changed);
    if (r == AT_OK && *changed)
        r = swap_back(out, map, &rd->swapped);
    free(map->used);
    free(map);
    return r;
}

at_result at_redact_text(at_redact *rd, const char *s, size_t n, at_buf *out, bool *changed)
{
    *changed = false;
    at_buf_reset(out);
    uint32_t mask = scan(rd, s, n) & ~HAS_MARKER;
    if (!mask)
        return AT_OK;
    at_result r = redact_text(rd, s, n, mask, out, changed);
    if (r == AT_OK && *changed && out->len == n && memcmp(out->data, s, n) == 0)
        *changed = false; /* e.g. basic-auth over its own marker: the same text */
    if (r == AT_OK && !*changed)
        at_buf_reset(out);
    return r;
}

at_result at_redact_hook(void *ctx, const char *parent_key, size_t parent_key_len, const char *s, size_t n,
                         at_buf *repl, bool *replaced)
{
    at_redact *rd = ctx;
    *replaced = false;
    if (parent_key && at_redact_key_sensitive(parent_key, parent_key_len)) {
        at_buf_reset(repl);
        at_result r = at_buf_add(repl, SENSITIVE_MARKER, sizeof SENSITIVE_MARKER - 1);
        if (r != AT_OK)
            return r;
        *replaced = true;
        rd->marked = true;
        if (n != sizeof SENSITIVE_MARKER - 1 || memcmp(s, SENSITIVE_MARKER, n) != 0)
            rd->changed = true;
        return AT_OK;
    }
    uint32_t mask = scan(rd, s, n);
    if (mask & HAS_MARKER)
        rd->marked = true;
    mask &= ~HAS_MARKER;
    if (!mask)
        return AT_OK;
    bool changed;
    at_result r = redact_text(rd, s, n, mask, repl, &changed);
    if (r != AT_OK || !changed)
        return r;
    *replaced = true;
    rd->marked = true; /* every rewrite writes a marker */
    if (repl->len != n || memcmp(repl->data, s, n) != 0)
        rd->changed = true;
    return AT_OK;
}

void at_redact_summary(char *out, size_t cap, uint64_t events, bool meta)
{
    if (events)
        snprintf(out, cap, "redacted %llu events%s", (unsigned long long)events,
                 meta ? " and the session metadata" : "");
    else
        snprintf(out, cap, "%s", meta ? "redacted the session metadata" : "");
}

/* ---- metadata -------------------------------------------------------------- */

at_result at_redact_meta(at_redact *rd, at_meta *m)
{
    static const at_meta_field walked[] = {AT_META_AGENT_NAME, AT_META_COMMAND, AT_META_ATTRIBUTION};
    at_json_style st = AT_JSON_COMPACT;
    st.hook = at_redact_hook;
    st.hook_ctx = rd;
    at_json_doc doc;
    at_buf out;
    at_json_doc_init(&doc);
    at_buf_init(&out, 0);
    at_result r = AT_OK;
    at_redact_begin(rd);
    for (size_t i = 0; r == AT_OK && i < sizeof walked / sizeof *walked; i++) {
        at_meta_field f = walked[i];
        if (!m->raw[f])
            continue;
        const char *name = at_meta_field_name(f);
        bool before = rd->changed;
        rd->changed = false;
        at_buf_reset(&out);
        if ((r = at_json_parse(&doc, m->raw[f], m->len[f], NULL)) == AT_OK &&
            (r = at_json_emit_under(&out, &doc, 0, &st, 0, name, strlen(name))) == AT_OK && rd->changed)
            r = at_meta_set_raw(m, f, out.data, out.len);
        rd->changed |= before;
    }
    if (r == AT_OK && rd->marked)
        r = at_meta_set_raw(m, AT_META_REDACTED, "true", 4);
    at_buf_fini(&out);
    at_json_doc_fini(&doc);
    return r;
}
