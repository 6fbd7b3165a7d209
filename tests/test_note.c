/* test_note.c - signed notes, keys, cosignatures, checkpoints and base64
 * against the known answers of Go's golang.org/x/mod/sumdb/note tests and of
 * real logs (tests/vectors/note, see ORIGIN.md), and, when GONOTE names the
 * binary tests/gonote/run.sh builds, against Go itself: both directions of
 * signing and verifying, key texts, and the outcome of every tampered note. */
#include "agenttrace/note.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- vectors: "name<TAB>value" lines, \n and \\ escaped */

typedef struct {
    char *name;
    char *val;
    size_t len;
} vec;
static vec vecs[64];
static size_t n_vecs;

static void load_vectors(const char *rel)
{
    size_t n;
    char *d = t_read_file(t_src(rel), &n);
    if (!d) {
        fprintf(stderr, "cannot read %s (set top_srcdir)\n", rel);
        exit(99);
    }
    for (char *p = d, *end = d + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (*p != '#' && nl > p) {
            char *tab = memchr(p, '\t', (size_t)(nl - p));
            if (!tab || n_vecs == sizeof vecs / sizeof vecs[0]) {
                fprintf(stderr, "%s: bad line\n", rel);
                exit(99);
            }
            vec *v = &vecs[n_vecs++];
            v->name = strndup(p, (size_t)(tab - p));
            v->val = malloc((size_t)(nl - tab));
            v->len = 0;
            for (char *q = tab + 1; q < nl; q++) {
                if (*q == '\\' && q + 1 < nl && (q[1] == 'n' || q[1] == '\\')) {
                    v->val[v->len++] = q[1] == 'n' ? '\n' : '\\';
                    q++;
                } else {
                    v->val[v->len++] = *q;
                }
            }
            v->val[v->len] = 0;
        }
        p = nl + 1;
    }
    free(d);
}

static const char *V(const char *name, size_t *len)
{
    for (size_t i = 0; i < n_vecs; i++) {
        if (strcmp(vecs[i].name, name) == 0) {
            if (len)
                *len = vecs[i].len;
            return vecs[i].val;
        }
    }
    fprintf(stderr, "no vector %s\n", name);
    exit(99);
}

/* ---- small helpers */

static at_note_verifier *verifier(const char *vkey)
{
    at_note_verifier *v = NULL;
    at_error e;
    if (at_note_verifier_new(vkey, strlen(vkey), &v, &e) != AT_OK) {
        fprintf(stderr, "verifier %s: %s\n", vkey, e.message);
        exit(99);
    }
    return v;
}

static at_note_signer *signer(const char *skey, at_note_type as)
{
    at_note_signer *s = NULL;
    at_error e;
    if (at_note_signer_new(skey, strlen(skey), as, &s, &e) != AT_OK) {
        fprintf(stderr, "signer: %s\n", e.message);
        exit(99);
    }
    return s;
}

/* Concatenates NULL-terminated pieces into b (reset first). */
static const char *cat(at_buf *b, ...)
{
    va_list ap;
    va_start(ap, b);
    at_buf_reset(b);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (at_buf_adds(b, s) != AT_OK)
            exit(99);
    va_end(ap);
    return b->data ? b->data : "";
}

static at_result open_note(const char *msg, size_t len, const at_note_verifier *const *known, size_t n,
                           at_note *out, at_error *e)
{
    return at_note_open(msg, len, known, n, out, e);
}

/* The outcome of opening msg, written as tests/gonote's batch mode writes Go's. */
static void c_outcome(const char *msg, size_t len, const at_note_verifier *const *known, size_t n, char *buf,
                      size_t cap)
{
    static at_note note;
    at_error e;
    at_result r = at_note_open(msg, len, known, n, &note, &e);
    if (r == AT_OK) {
        size_t k = (size_t)snprintf(buf, cap, "ok");
        for (size_t i = 0; i < note.n_sigs && k < cap; i++)
            k += (size_t)snprintf(buf + k, cap - k, " %.*s+%08x", (int)note.sigs[i].name_len,
                                  note.sigs[i].name, (unsigned)note.sigs[i].id);
        return;
    }
    switch (note.status) {
    case AT_NOTE_MALFORMED: snprintf(buf, cap, "err malformed note"); break;
    case AT_NOTE_UNVERIFIED: snprintf(buf, cap, "err note has no verifiable signatures"); break;
    default: snprintf(buf, cap, "err %s", e.message); break;
    }
}

/* ---- running Go (tests/gonote) */

static const char *gonote;

/* Runs gonote with args (NULL-terminated), data on its stdin; stdout and
 * stderr into *out (malloc'ed, NUL-terminated). Returns the exit status, or
 * -1 when it could not run. */
static int run_go(const char *const *args, const char *in, size_t in_len, char **out, size_t *out_len)
{
    int fd = at_open_tmpfile(NULL), pfd[2];
    if (fd < 0 || at_write_all(fd, in, in_len) != AT_OK || lseek(fd, 0, SEEK_SET) != 0 || pipe(pfd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[16];
        size_t k = 0;
        argv[k++] = gonote;
        for (; args[k - 1] && k < 15; k++)
            argv[k] = args[k - 1];
        argv[k] = NULL;
        dup2(fd, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        execv(gonote, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    close(pfd[1]);
    at_buf b;
    at_buf_init(&b, 64u << 20);
    char tmp[65536];
    ssize_t k;
    while ((k = read(pfd[0], tmp, sizeof tmp)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && at_buf_add(&b, tmp, (size_t)k) != AT_OK)
            break;
    close(pfd[0]);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        at_buf_fini(&b);
        return -1;
    }
    if (at_buf_reserve(&b, 1) != AT_OK)
        return -1;
    *out_len = b.len;
    *out = at_buf_steal(&b, NULL);
    return WEXITSTATUS(st);
}

/* One batch of notes opened by Go: fills outcomes[i] (malloc'ed lines). */
static bool go_batch(const char *const *vkeys, size_t n_vkeys, char **notes, size_t *lens, size_t n,
                     char **outcomes)
{
    at_buf in;
    at_buf_init(&in, 0);
    for (size_t i = 0; i < n; i++) {
        char num[32];
        snprintf(num, sizeof num, "%zu\n", lens[i]);
        if (at_buf_adds(&in, num) != AT_OK || at_buf_add(&in, notes[i], lens[i]) != AT_OK)
            return false;
    }
    const char *args[16] = {"batch"};
    for (size_t i = 0; i < n_vkeys && i < 14; i++)
        args[i + 1] = vkeys[i];
    char *out;
    size_t out_len;
    int st = run_go(args, in.data ? in.data : "", in.len, &out, &out_len);
    at_buf_fini(&in);
    if (st != 0) {
        fprintf(stderr, "gonote batch: status %d\n", st);
        return false;
    }
    char *p = out;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(p, '\n');
        if (!nl) {
            free(out);
            return false;
        }
        outcomes[i] = strndup(p, (size_t)(nl - p));
        p = nl + 1;
    }
    free(out);
    return true;
}

/* ---- base64 */

static void test_base64(void)
{
    static const char *rfc[][2] = {{"", ""},
                                   {"f", "Zg=="},
                                   {"fo", "Zm8="},
                                   {"foo", "Zm9v"},
                                   {"foob", "Zm9vYg=="},
                                   {"fooba", "Zm9vYmE="},
                                   {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        at_buf b;
        at_buf_init(&b, 0);
        CHECK(at_note_base64_encode(rfc[i][0], strlen(rfc[i][0]), &b) == AT_OK &&
                  b.len == strlen(rfc[i][1]) && memcmp(b.data ? b.data : "", rfc[i][1], b.len) == 0,
              "encode %s", rfc[i][0]);
        CHECK(at_note_base64_len(strlen(rfc[i][0])) == strlen(rfc[i][1]), "len %s", rfc[i][0]);
        at_buf_fini(&b);
        for (int mode = 0; mode < 2; mode++) {
            uint8_t out[16];
            size_t n = 99;
            CHECK(at_note_base64_decode(rfc[i][1], strlen(rfc[i][1]), (at_base64_mode)mode, out, sizeof out,
                                        &n) == AT_OK &&
                      n == strlen(rfc[i][0]) && memcmp(out, rfc[i][0], n) == 0,
                  "decode %s mode %d", rfc[i][1], mode);
        }
    }
    /* What Go's base64.StdEncoding.DecodeString does (checked with Go 1.19),
     * and what the strict mode does: "-" rejects, else the decoded text. */
    static const struct {
        const char *in, *go, *strict;
    } cases[] = {
        {"QQ==", "A", "A"},
        {"QR==", "A", "-"},
        {"Q\nQ==", "A", "-"},
        {"QQ==\n", "A", "-"},
        {"QQ=\n=", "A", "-"},
        {"QQ", "-", "-"},
        {"QQ=", "-", "-"},
        {"QUJD\r\n", "ABC", "-"},
        {"\n", "", "-"},
        {"QQ==QQ==", "-", "-"},
        {"=", "-", "-"},
        {"QUJ=", "AB", "-"},
        {"QUI=", "AB", "AB"},
        {"Q===", "-", "-"},
        {"====", "-", "-"},
        {"QUJD=", "-", "-"},
        {"QU I=", "-", "-"},
        {"QUI-", "-", "-"},
        {"QUI_", "-", "-"},
        {"QUI=\t", "-", "-"},
        {" QUI=", "-", "-"},
        {"QUJDRA", "-", "-"},
        {"QUJDRA==", "ABCD", "ABCD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int mode = 0; mode < 2; mode++) {
            const char *want = mode == AT_BASE64_GO ? cases[i].go : cases[i].strict;
            uint8_t out[16];
            size_t n = 0;
            at_result r = at_note_base64_decode(cases[i].in, strlen(cases[i].in), (at_base64_mode)mode, out,
                                                sizeof out, &n);
            if (strcmp(want, "-") == 0)
                CHECK(r == AT_ERR_INVALID, "decode %s mode %d: want rejection, got %d", cases[i].in, mode, r);
            else
                CHECK(r == AT_OK && n == strlen(want) && memcmp(out, want, n) == 0, "decode %s mode %d",
                      cases[i].in, mode);
        }
    }
    uint8_t small[2];
    size_t n;
    CHECK(at_note_base64_decode("Zm9v", 4, AT_BASE64_STRICT, small, sizeof small, &n) == AT_ERR_TOO_BIG,
          "decode into a short buffer");
    /* Every length and every byte value round-trips, in both modes. */
    bool all = true;
    uint8_t data[300], back[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof data; len++) {
        at_buf b;
        at_buf_init(&b, 0);
        all &= at_note_base64_encode(data, len, &b) == AT_OK;
        for (int mode = 0; mode < 2; mode++)
            all &= at_note_base64_decode(b.data ? b.data : "", b.len, (at_base64_mode)mode, back, sizeof back,
                                         &n) == AT_OK &&
                   n == len && memcmp(back, data, len) == 0;
        at_buf_fini(&b);
    }
    CHECK(all, "round trips of 0..300 bytes");
}

/* ---- names */

static size_t utf8_put(uint32_t cp, char *s)
{
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xc0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        s[0] = (char)(0xe0 | cp >> 12);
        s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    s[0] = (char)(0xf0 | cp >> 18);
    s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void test_names(void)
{
    static const char *good[] = {"PeterNeumann",
                                 "example.com/foo",
                                 "a",
                                 "\xc3\xbcn\xc3\xaf/c\xc3\xb6"
                                 "d\xc3\xa9",
                                 "\x01",
                                 "a\x7f",
                                 "\xe2\x80\x8b",
                                 "\xe1\xa0\x8e",
                                 "\xef\xbb\xbf",
                                 "\xf0\x9f\x94\x91",
                                 "\xef\xbf\xbd"};
    static const char *bad[] = {"",
                                "a b",
                                "a+b",
                                "+",
                                "a\tb",
                                "a\nb",
                                "\r",
                                "\xc2\x85",
                                "\xc2\xa0",
                                "\xe1\x9a\x80",
                                "\xe2\x80\x80",
                                "\xe2\x80\x8a",
                                "\xe2\x80\xa8",
                                "\xe2\x80\xa9",
                                "\xe2\x80\xaf",
                                "\xe2\x81\x9f",
                                "\xe3\x80\x80",
                                "\xff",
                                "\xc0\x80",
                                "\xed\xa0\x80",
                                "\xf4\x90\x80\x80",
                                "a\xe2\x80",
                                "\x80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(at_note_name_valid(good[i], strlen(good[i])), "valid name %zu", i);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!at_note_name_valid(bad[i], strlen(bad[i])), "invalid name %zu", i);
    CHECK(at_note_name_valid("a\0b", 3), "Go allows a NUL in a name");
    /* Every code point: rejected exactly when '+' or one of the 25 that Go's
     * unicode.IsSpace reports (listed by Go 1.19 over 0..U+10FFFF). */
    static const uint32_t spaces[] = {0x09,   0x0a,   0x0b,   0x0c,   0x0d,   0x20,   0x85,   0xa0,   0x1680,
                                      0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
                                      0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
    size_t wrong = 0;
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        bool want = cp != '+';
        for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
            want &= cp != spaces[i];
        char s[4];
        size_t k = utf8_put(cp, s);
        if (at_note_name_valid(s, k) != want)
            wrong++;
    }
    CHECK(wrong == 0, "%zu code points judged unlike Go", wrong);
}

/* ---- key IDs and key texts */

static void test_key_ids(void)
{
    static const struct {
        const char *vkey;
        uint32_t id;
        at_note_type type;
    } keys[] = {
        {"peter_vkey", 0xc74f20a3, AT_NOTE_ED25519},   {"enoch_vkey", 0xaf0cfe78, AT_NOTE_ED25519},
        {"c2sp_vkey", 0x530d903a, AT_NOTE_ED25519},    {"arche_vkey", 0xba2f06c0, AT_NOTE_ED25519},
        {"remora_vkey", 0xda77ade7, AT_NOTE_COSIG_V1}, {"formats_plus_vkey", 0x7997405c, AT_NOTE_ED25519}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t len;
        const char *text = V(keys[i].vkey, &len);
        at_note_verifier *v = NULL;
        at_error e;
        CHECK(at_note_verifier_new(text, len, &v, &e) == AT_OK, "%s: %s", keys[i].vkey, e.message);
        if (!v)
            continue;
        size_t name_len;
        const char *name = at_note_verifier_name(v, &name_len);
        CHECK(at_note_verifier_id(v) == keys[i].id && at_note_verifier_type(v) == keys[i].type, "%s id",
              keys[i].vkey);
        uint32_t id = 0;
        CHECK(at_note_key_id(name, name_len, (uint8_t)keys[i].type, at_note_verifier_key(v), AT_NOTE_KEY_LEN,
                             &id) == AT_OK &&
                  id == keys[i].id,
              "%s: computed id %08x", keys[i].vkey, id);
        at_buf b;
        at_buf_init(&b, 0);
        CHECK(at_note_verifier_vkey(v, &b) == AT_OK, "vkey text");
        CHECK_BYTES(b.data, b.len, text, len, keys[i].vkey);
        at_buf_fini(&b);
        at_note_verifier_free(v);
    }
    at_note_verifier *v = verifier(V("c2sp_vkey", NULL));
    uint8_t pub[AT_NOTE_KEY_LEN];
    const char *hex = V("c2sp_pub", NULL);
    for (int i = 0; i < AT_NOTE_KEY_LEN; i++)
        pub[i] = (uint8_t)((hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10) << 4 |
                           (hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10));
    CHECK(memcmp(at_note_verifier_key(v), pub, sizeof pub) == 0, "c2sp public key");
    at_note_verifier_free(v);
}

/* Expects vkey (len bytes) to be refused, with Go's message when want is set. */
static void bad_vkey(const char *vkey, size_t len, const char *want, const char *what)
{
    at_note_verifier *v = NULL;
    at_error e = {0};
    at_result r = at_note_verifier_new(vkey, len, &v, &e);
    CHECK(r == AT_ERR_INVALID && !v && (!want || strcmp(e.message, want) == 0), "%s: %d %s", what, r,
          e.message);
    at_note_verifier_free(v);
}

/* A vkey for 32 bytes that are no valid point encoding (y >= p), which Go and
 * OpenSSL both accept as a key, and a note "signed" by it; in *vkey and *note. */
static void odd_key(at_buf *vkey, at_buf *note)
{
    uint8_t raw[1 + 32], sig[4 + 64];
    memset(raw, 0xff, sizeof raw);
    raw[0] = AT_NOTE_ED25519;
    uint32_t id;
    if (at_note_key_id("odd.example", 11, AT_NOTE_ED25519, raw + 1, 32, &id) != AT_OK)
        exit(99);
    char hex[16];
    snprintf(hex, sizeof hex, "+%08x+", (unsigned)id);
    cat(vkey, "odd.example", hex, NULL);
    memset(sig, 0x11, sizeof sig);
    for (int i = 0; i < 4; i++)
        sig[i] = (uint8_t)(id >> (24 - 8 * i));
    at_buf b;
    at_buf_init(&b, 0);
    if (at_note_base64_encode(raw, sizeof raw, vkey) != AT_OK ||
        at_note_base64_encode(sig, sizeof sig, &b) != AT_OK)
        exit(99);
    cat(note, "text\n\n\xe2\x80\x94 odd.example ", b.data, "\n", NULL);
    at_buf_fini(&b);
}

static void test_verifier_texts(void)
{
    const char *peter = V("peter_vkey", NULL);
    size_t n = strlen(peter);
    bad_vkey(V("bad_vkey_length", NULL), strlen(V("bad_vkey_length", NULL)), "malformed verifier id",
             "wrong length, adjusted id");
    bad_vkey(V("bad_vkey_alg", NULL), strlen(V("bad_vkey_alg", NULL)), "unknown verifier algorithm",
             "unknown algorithm, adjusted id");
    bad_vkey(V("plus_vkey", NULL), strlen(V("plus_vkey", NULL)), "invalid verifier hash", "id 00000000");
    bad_vkey(V("formats_two_parts", NULL), strlen(V("formats_two_parts", NULL)), "malformed verifier id",
             "two parts");
    bad_vkey(V("formats_bad_base64", NULL), strlen(V("formats_bad_base64", NULL)), "malformed verifier id",
             "bad base64");
    bad_vkey(V("formats_bad_alg", NULL), strlen(V("formats_bad_alg", NULL)), NULL, "bad algorithm");
    /* Go's TestNewVerifier manglings: every proper substring, every byte + 1. */
    for (size_t i = 0; i < n; i++) {
        size_t accepted = 0;
        for (size_t j = i + 1; j <= n; j++) {
            if (i == 0 && j == n)
                continue;
            at_note_verifier *v = NULL;
            if (at_note_verifier_new(peter + i, j - i, &v, NULL) == AT_OK)
                accepted++;
            at_note_verifier_free(v);
        }
        CHECK(accepted == 0, "%zu substrings from %zu accepted", accepted, i);
    }
    char *b = strdup(peter);
    for (size_t i = 0; i < n; i++) {
        b[i]++;
        bad_vkey(b, n, NULL, "byte + 1");
        b[i]--;
    }
    free(b);
    /* Go's leniency, mirrored: upper-case hex, CR and LF inside or after the base64. */
    at_buf t;
    at_buf_init(&t, 0);
    static const char *lenient[] = {"PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                                    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
                                    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQeg\r\nwxbzhKqiBfsVkmqq/LDE4izWy10TW"};
    for (size_t i = 0; i < sizeof lenient / sizeof lenient[0]; i++) {
        at_note_verifier *v = NULL;
        CHECK(at_note_verifier_new(lenient[i], strlen(lenient[i]), &v, NULL) == AT_OK, "lenient %zu", i);
        at_buf_reset(&t);
        CHECK(v && at_note_verifier_vkey(v, &t) == AT_OK && strcmp(t.data, peter) == 0,
              "lenient %zu re-rendered", i);
        at_note_verifier_free(v);
    }
    bad_vkey("PeterNeumann+c74f20a3+ ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", n + 1,
             "malformed verifier id", "space in base64");
    bad_vkey("PeterNeumann+0xc74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", n,
             "malformed verifier id", "0x in the id");
    bad_vkey("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", n + 1,
             "malformed verifier id", "space in the name");
    bad_vkey("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", n - 12, "malformed verifier id",
             "empty name");
    bad_vkey("PeterNeumann+c74f20a3+", 22, "malformed verifier id", "empty key");
    at_buf_fini(&t);
    {
        at_buf ok, note;
        at_buf_init(&ok, 0);
        at_buf_init(&note, 0);
        odd_key(&ok, &note);
        at_note_verifier *odd = NULL;
        static at_note opened;
        at_error e = {0};
        CHECK(at_note_verifier_new(ok.data, ok.len, &odd, NULL) == AT_OK, "any 32 bytes are a key, as in Go");
        CHECK(odd &&
                  at_note_open(note.data, note.len, (const at_note_verifier *const *)&odd, 1, &opened, &e) ==
                      AT_ERR_INVALID &&
                  opened.status == AT_NOTE_BAD_SIGNATURE,
              "nothing verifies under it");
        at_note_verifier_free(odd);
        at_buf_fini(&ok);
        at_buf_fini(&note);
    }
    at_note_verifier *v = NULL;
    char big[64];
    CHECK(at_note_verifier_new(big, AT_NOTE_MAX_BYTES + 1u, &v, NULL) == AT_ERR_TOO_BIG,
          "key text over the cap");
}

static void test_signer_texts(void)
{
    const char *skey = V("peter_skey", NULL);
    size_t n = strlen(skey);
    at_note_signer *s = signer(skey, AT_NOTE_ED25519);
    size_t name_len;
    const char *name = at_note_signer_name(s, &name_len);
    CHECK(name_len == 12 && memcmp(name, "PeterNeumann", 12) == 0 && at_note_signer_id(s) == 0xc74f20a3 &&
              at_note_signer_type(s) == AT_NOTE_ED25519,
          "PeterNeumann signer");
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_note_signer_skey(s, &b) == AT_OK && strcmp(b.data, skey) == 0, "skey text round trip");
    at_buf_reset(&b);
    CHECK(at_note_signer_vkey(s, &b) == AT_OK && strcmp(b.data, V("peter_vkey", NULL)) == 0,
          "vkey of the skey");
    at_note_verifier *v = NULL;
    CHECK(at_note_signer_verifier(s, &v, NULL) == AT_OK && at_note_verifier_id(v) == 0xc74f20a3, "verifier");
    at_note_verifier_free(v);
    at_note_signer_free(s);
    /* Go's TestNewSigner manglings. */
    for (size_t i = 0; i < n; i++) {
        size_t accepted = 0;
        for (size_t j = i + 1; j <= n; j++) {
            if (i == 0 && j == n)
                continue;
            s = NULL;
            if (at_note_signer_new(skey + i, j - i, AT_NOTE_ED25519, &s, NULL) == AT_OK)
                accepted++;
            at_note_signer_free(s);
        }
        CHECK(accepted == 0, "%zu skey substrings from %zu accepted", accepted, i);
    }
    char *m = strdup(skey);
    for (size_t i = 0; i < n; i++) {
        m[i]++;
        s = NULL;
        CHECK(at_note_signer_new(m, n, AT_NOTE_ED25519, &s, NULL) == AT_ERR_INVALID, "skey byte %zu + 1", i);
        at_note_signer_free(s);
        m[i]--;
    }
    free(m);
    /* Go's messages (its signer errors say "verifier"), in Go's order. */
    static const struct {
        const char *skey, *msg;
    } bad[] = {
        {"PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         "invalid verifier hash"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         "unknown verifier algorithm"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXH",
         "malformed verifier id"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+ZYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXH",
         "unknown verifier algorithm"},
        {"private+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         "malformed verifier id"},
        {"PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         "malformed verifier id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_error e = {0};
        s = NULL;
        CHECK(at_note_signer_new(bad[i].skey, strlen(bad[i].skey), AT_NOTE_ED25519, &s, &e) ==
                      AT_ERR_INVALID &&
                  strcmp(e.message, bad[i].msg) == 0,
              "bad skey %zu: %s", i, e.message);
        at_note_signer_free(s);
    }
    CHECK(at_note_signer_new("PRIVATE+KEY+PeterNeumann+C74F20A3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                             n, AT_NOTE_ED25519, &s, NULL) == AT_OK,
          "upper-case id");
    at_note_signer_free(s);
    /* The same key as a witness cosigner: ID of type 0x04; its skey text says 0x04. */
    s = signer(skey, AT_NOTE_COSIG_V1);
    v = verifier(V("peter_vkey", NULL));
    uint32_t id4 = 0;
    CHECK(at_note_key_id("PeterNeumann", 12, AT_NOTE_COSIG_V1, at_note_verifier_key(v), AT_NOTE_KEY_LEN,
                         &id4) == AT_OK &&
              at_note_signer_type(s) == AT_NOTE_COSIG_V1 && at_note_signer_id(s) == id4 && id4 != 0xc74f20a3,
          "cosigner from a Go skey");
    at_note_verifier_free(v);
    at_buf_reset(&b);
    CHECK(at_note_signer_skey(s, &b) == AT_OK, "cosigner skey");
    at_note_signer *s4 = NULL;
    at_error e = {0};
    CHECK(at_note_signer_new(b.data, b.len, AT_NOTE_COSIG_V1, &s4, NULL) == AT_OK &&
              at_note_signer_id(s4) == id4,
          "type 0x04 skey parsed");
    at_note_signer_free(s4);
    s4 = NULL;
    CHECK(at_note_signer_new(b.data, b.len, AT_NOTE_ED25519, &s4, &e) == AT_ERR_INVALID &&
              strcmp(e.message, "unknown verifier algorithm") == 0,
          "type 0x04 skey is no Ed25519 signer");
    at_note_signer_free(s4);
    at_buf_reset(&b);
    CHECK(at_note_signer_vkey(s, &b) == AT_OK && b.data[b.len - 45] == '+' && b.data[b.len - 44] == 'B',
          "cosigner vkey has type 0x04: %s", b.data);
    v = NULL;
    CHECK(at_note_verifier_new(b.data, b.len, &v, NULL) == AT_OK &&
              at_note_verifier_type(v) == AT_NOTE_COSIG_V1 && at_note_verifier_id(v) == id4,
          "cosigner vkey parsed");
    at_note_verifier_free(v);
    at_note_signer_free(s);
    at_buf_fini(&b);
}

static void test_keygen(void)
{
    uint8_t zero[AT_NOTE_KEY_LEN] = {0};
    at_buf sk, vk;
    at_buf_init(&sk, 0);
    at_buf_init(&vk, 0);
    CHECK(at_note_keygen_seed("EnochRoot", 9, AT_NOTE_ED25519, zero, &sk, &vk, NULL) == AT_OK &&
              strcmp(vk.data, V("enoch_vkey", NULL)) == 0,
          "EnochRoot from a zero seed: %s", vk.data);
    at_note_signer *s = signer(sk.data, AT_NOTE_ED25519);
    at_buf note;
    at_buf_init(&note, 0);
    size_t text_len;
    const char *text = V("text", &text_len);
    CHECK(at_note_sign(text, text_len, (const at_note_signer *const *)&s, 1, &note, NULL) == AT_OK &&
              note.len == text_len + 1 + strlen(V("enoch_sig", NULL)) &&
              memcmp(note.data + text_len + 1, V("enoch_sig", NULL), note.len - text_len - 1) == 0,
          "EnochRoot's signature (Go's ExampleSign_add_signatures)");
    at_note_signer_free(s);
    /* Random keys: two differ, each parses back to itself. */
    at_buf sk2, vk2;
    at_buf_init(&sk2, 0);
    at_buf_init(&vk2, 0);
    at_buf_reset(&sk);
    at_buf_reset(&vk);
    CHECK(at_note_keygen("example.com/log", 15, AT_NOTE_ED25519, &sk, &vk, NULL) == AT_OK &&
              at_note_keygen("example.com/log", 15, AT_NOTE_ED25519, &sk2, &vk2, NULL) == AT_OK &&
              strcmp(sk.data, sk2.data) != 0,
          "random keys");
    s = signer(sk.data, AT_NOTE_ED25519);
    at_buf t;
    at_buf_init(&t, 0);
    CHECK(at_note_signer_vkey(s, &t) == AT_OK && strcmp(t.data, vk.data) == 0, "random key's vkey");
    at_note_signer_free(s);
    at_buf_reset(&sk);
    at_buf_reset(&vk);
    CHECK(at_note_keygen("witness.example/w1", 18, AT_NOTE_COSIG_V1, &sk, &vk, NULL) == AT_OK,
          "cosigner keygen");
    s = signer(sk.data, AT_NOTE_COSIG_V1);
    at_note_verifier *v = verifier(vk.data);
    CHECK(at_note_signer_id(s) == at_note_verifier_id(v) && at_note_verifier_type(v) == AT_NOTE_COSIG_V1,
          "cosigner keygen texts agree");
    at_note_verifier_free(v);
    at_note_signer_free(s);
    static const char *bad[] = {"", "a b", "a+b", "a\x01", "\xff", "a\xe3\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(at_note_keygen(bad[i], strlen(bad[i]), AT_NOTE_ED25519, &sk, &vk, NULL) == AT_ERR_INVALID,
              "keygen refuses name %zu", i);
    CHECK(at_note_keygen("x", 1, (at_note_type)2, &sk, &vk, NULL) == AT_ERR_INVALID, "keygen refuses type 2");
    at_buf_fini(&sk);
    at_buf_fini(&vk);
    at_buf_fini(&sk2);
    at_buf_fini(&vk2);
    at_buf_fini(&t);
    at_buf_fini(&note);
}

/* ---- signing and opening */

static void test_sign(void)
{
    size_t text_len;
    const char *text = V("text", &text_len);
    at_note_signer *peter = signer(V("peter_skey", NULL), AT_NOTE_ED25519);
    uint8_t zero[AT_NOTE_KEY_LEN] = {0};
    at_buf sk;
    at_buf_init(&sk, 0);
    if (at_note_keygen_seed("EnochRoot", 9, AT_NOTE_ED25519, zero, &sk, NULL, NULL) != AT_OK)
        exit(99);
    at_note_signer *enoch = signer(sk.data, AT_NOTE_ED25519);
    at_buf b, want;
    at_buf_init(&b, 0);
    at_buf_init(&want, 0);
    CHECK(at_note_sign(text, text_len, (const at_note_signer *const *)&peter, 1, &b, NULL) == AT_OK, "sign");
    cat(&want, text, "\n", V("peter_sig", NULL), NULL);
    CHECK_BYTES(b.data, b.len, want.data, want.len, "Go's TestSign");
    const at_note_signer *both[] = {peter, enoch};
    at_buf_reset(&b);
    CHECK(at_note_sign(text, text_len, both, 2, &b, NULL) == AT_OK, "sign twice");
    cat(&want, text, "\n", V("peter_sig", NULL), V("enoch_sig", NULL), NULL);
    CHECK_BYTES(b.data, b.len, want.data, want.len, "two signers");
    at_buf_reset(&b);
    CHECK(at_note_sign_line(peter, text, text_len, 0, &b, NULL) == AT_OK &&
              strcmp(b.data, V("peter_sig", NULL)) == 0,
          "one signature line");

    /* Refusals; out untouched. */
    static const struct {
        const char *text;
        at_result r;
    } bad[] = {{"abc", AT_ERR_INVALID},         {"", AT_ERR_INVALID},       {"a\x01\n", AT_ERR_INVALID},
               {"a\r\n", AT_ERR_INVALID},       {"a\tb\n", AT_ERR_INVALID}, {"\xff\n", AT_ERR_UTF8},
               {"\xed\xa0\x80\n", AT_ERR_UTF8}, {"a\n\xc3", AT_ERR_UTF8}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_buf_reset(&b);
        CHECK(at_note_sign(bad[i].text, strlen(bad[i].text), (const at_note_signer *const *)&peter, 1, &b,
                           NULL) == bad[i].r &&
                  b.len == 0,
              "sign refuses text %zu", i);
    }
    at_buf_reset(&b);
    CHECK(at_note_sign(text, text_len, both, 0, &b, NULL) == AT_ERR_INVALID, "no signers");
    const at_note_signer *many[AT_NOTE_MAX_SIGS + 1];
    for (size_t i = 0; i <= AT_NOTE_MAX_SIGS; i++)
        many[i] = peter;
    CHECK(at_note_sign(text, text_len, many, AT_NOTE_MAX_SIGS + 1, &b, NULL) == AT_ERR_TOO_BIG && b.len == 0,
          "101 signers");
    CHECK(at_note_sign(text, text_len, many, AT_NOTE_MAX_SIGS, &b, NULL) == AT_OK, "100 signers");
    char *big = malloc(AT_NOTE_MAX_BYTES);
    memset(big, 'a', AT_NOTE_MAX_BYTES);
    big[AT_NOTE_MAX_BYTES - 1] = '\n';
    at_buf_reset(&b);
    CHECK(at_note_sign(big, AT_NOTE_MAX_BYTES, both, 1, &b, NULL) == AT_ERR_TOO_BIG && b.len == 0,
          "signed note over the cap");
    big[AT_NOTE_MAX_BYTES - 201] = '\n';
    CHECK(at_note_sign(big, AT_NOTE_MAX_BYTES - 200, both, 1, &b, NULL) == AT_OK,
          "signed note under the cap");
    free(big);
    at_buf small;
    at_buf_init(&small, 10);
    CHECK(at_note_sign(text, text_len, both, 1, &small, NULL) == AT_ERR_TOO_BIG && small.len == 0,
          "output buffer cap");
    at_buf_fini(&small);
    /* A name Go accepts but no note can carry: Go would sign, we refuse. */
    uint32_t id;
    at_note_verifier *pv = verifier(V("peter_vkey", NULL));
    if (at_note_key_id("a\x01", 2, AT_NOTE_ED25519, at_note_verifier_key(pv), AT_NOTE_KEY_LEN, &id) != AT_OK)
        exit(99);
    char skey[128];
    snprintf(skey, sizeof skey, "PRIVATE+KEY+a\x01+%08x+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
             (unsigned)id);
    at_note_signer *ctl = NULL;
    at_error e = {0};
    CHECK(at_note_signer_new(skey, strlen(skey), AT_NOTE_ED25519, &ctl, NULL) == AT_OK,
          "Go accepts a \\x01 name");
    at_buf_reset(&b);
    CHECK(ctl &&
              at_note_sign(text, text_len, (const at_note_signer *const *)&ctl, 1, &b, &e) ==
                  AT_ERR_INVALID &&
              strcmp(e.message, "invalid signer") == 0 && b.len == 0,
          "signing refuses a \\x01 name");
    at_note_signer_free(ctl);
    at_note_verifier_free(pv);
    at_note_signer_free(peter);
    at_note_signer_free(enoch);
    at_buf_fini(&b);
    at_buf_fini(&want);
    at_buf_fini(&sk);
}

static bool sig_is(const at_note_sig *s, const char *name, uint32_t id, const char *line)
{
    /* line: "— <name> <b64>\n" */
    size_t nl = strlen(name), ll = strlen(line);
    return s->name_len == nl && memcmp(s->name, name, nl) == 0 && s->id == id &&
           s->b64_len == ll - 4 - nl - 2 && memcmp(s->b64, line + 4 + nl + 1, s->b64_len) == 0;
}

/* Peter's signature line with S replaced by S + L (the group order): the same
 * signature under a malleable verifier; Go's crypto/ed25519 and OpenSSL both
 * require S < L. */
static void malleable_sig(char *out, size_t cap)
{
    static const uint8_t order[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                      0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                      0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
    const char *psig = V("peter_sig", NULL);
    const char *b64 = psig + 4 + 12 + 1;
    uint8_t raw[68];
    size_t n;
    if (at_note_base64_decode(b64, strlen(b64) - 1, AT_BASE64_GO, raw, sizeof raw, &n) != AT_OK || n != 68)
        exit(99);
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned v = raw[4 + 32 + i] + order[i] + carry;
        raw[4 + 32 + i] = (uint8_t)v;
        carry = v >> 8;
    }
    at_buf b;
    at_buf_init(&b, 0);
    if (carry || at_note_base64_encode(raw, sizeof raw, &b) != AT_OK)
        exit(99);
    snprintf(out, cap, "\xe2\x80\x94 PeterNeumann %s\n", b.data);
    at_buf_fini(&b);
}

static void test_open(void)
{
    const char *text = V("text", NULL), *psig = V("peter_sig", NULL), *esig = V("enoch_sig", NULL);
    const at_note_verifier *peter = verifier(V("peter_vkey", NULL)), *enoch = verifier(V("enoch_vkey", NULL));
    static at_note n;
    at_error e;
    at_buf m;
    at_buf_init(&m, 0);
    at_result r;

    /* Go's TestOpen. */
    cat(&m, text, "\n", psig, esig, NULL);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_OK && n.status == AT_NOTE_OPEN_OK, "one verified, one not: %s", e.message);
    CHECK(n.text_len == strlen(text) && memcmp(n.text, text, n.text_len) == 0, "text");
    CHECK(n.n_sigs == 1 && sig_is(&n.sigs[0], "PeterNeumann", 0xc74f20a3, psig) &&
              n.sigs[0].verifier == peter,
          "verified: peter");
    CHECK(n.n_unverified == 1 && sig_is(&n.unverified[0], "EnochRoot", 0xaf0cfe78, esig) &&
              !n.unverified[0].verifier,
          "unverified: enoch");
    const at_note_verifier *pe[] = {peter, enoch};
    r = open_note(m.data, m.len, pe, 2, &n, &e);
    CHECK(r == AT_OK && n.n_sigs == 2 && sig_is(&n.sigs[0], "PeterNeumann", 0xc74f20a3, psig) &&
              sig_is(&n.sigs[1], "EnochRoot", 0xaf0cfe78, esig) && n.n_unverified == 0,
          "both verified");
    r = open_note(m.data, m.len, NULL, 0, &n, &e);
    CHECK(r == AT_ERR_NOT_FOUND && n.status == AT_NOTE_UNVERIFIED &&
              strcmp(e.message, "note has no verifiable signatures") == 0,
          "both unverified: %s", e.message);
    CHECK(n.n_sigs == 0 && n.n_unverified == 2 &&
              sig_is(&n.unverified[0], "PeterNeumann", 0xc74f20a3, psig) &&
              sig_is(&n.unverified[1], "EnochRoot", 0xaf0cfe78, esig) && n.text_len == strlen(text),
          "the unverified note is kept");
    const at_note_verifier *dup[] = {enoch, peter, enoch};
    cat(&m, text, "\n", esig, NULL);
    r = open_note(m.data, m.len, dup, 3, &n, &e);
    CHECK(r == AT_ERR_CONFLICT && n.status == AT_NOTE_AMBIGUOUS &&
              strcmp(e.message, "ambiguous key EnochRoot+af0cfe78") == 0,
          "duplicated verifier: %s", e.message);
    cat(&m, text, "\n", psig, NULL);
    CHECK(open_note(m.data, m.len, dup, 3, &n, &e) == AT_OK, "unused duplicated verifier");

    at_buf_reset(&m);
    if (at_buf_adds(&m, text) != AT_OK || at_buf_adds(&m, "\n") != AT_OK)
        exit(99);
    for (int i = 0; i < 100; i++)
        if (at_buf_adds(&m, psig) != AT_OK)
            exit(99);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_OK && n.n_sigs == 1, "100 signatures");
    if (at_buf_adds(&m, psig) != AT_OK)
        exit(99);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_ERR_TOO_BIG && n.status == AT_NOTE_MALFORMED &&
              strncmp(e.message, "malformed note", 14) == 0,
          "101 signatures, known: %s", e.message);
    r = open_note(m.data, m.len, NULL, 0, &n, &e);
    CHECK(r == AT_ERR_TOO_BIG && n.status == AT_NOTE_MALFORMED, "101 signatures, unknown");

    char bad[256];
    snprintf(bad, sizeof bad, "%.60sABCD%s", psig, psig + 60);
    cat(&m, text, "\n", bad, NULL);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_ERR_INVALID && n.status == AT_NOTE_BAD_SIGNATURE &&
              strcmp(e.message, "invalid signature for key PeterNeumann+c74f20a3") == 0 && e.line == 0,
          "invalid signature: %s", e.message);

    char ebad[256];
    snprintf(ebad, sizeof ebad, "%.60sABCD%s", esig, esig + 60);
    cat(&m, text, "\n", psig, psig, esig, esig, ebad, NULL);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_OK && n.n_sigs == 1 && sig_is(&n.sigs[0], "PeterNeumann", 0xc74f20a3, psig), "duplicates");
    CHECK(n.n_unverified == 2 && sig_is(&n.unverified[0], "EnochRoot", 0xaf0cfe78, esig) &&
              sig_is(&n.unverified[1], "EnochRoot", 0xaf0cfe78, ebad),
          "unverified duplicates dropped, distinct lines kept");

    /* Go's badMsgs. */
    char cut[256];
    snprintf(cut, sizeof cut, "%.*s", (int)strlen(psig) - 1, psig);
    const char *bad_name = V("bad_name_sig", NULL);
    at_buf bm[7];
    for (int i = 0; i < 7; i++)
        at_buf_init(&bm[i], 0);
    cat(&bm[0], text, NULL);
    cat(&bm[1], text, "\n", NULL);
    cat(&bm[2], text, "\n", cut, NULL);
    cat(&bm[3], "\x01", text, "\n", psig, NULL);
    cat(&bm[4], "\xff", text, "\n", psig, NULL);
    cat(&bm[5], text, "\n", bad_name, NULL);
    cat(&bm[6], text, "\n", psig, V("unexpected_line", NULL), NULL);
    for (int i = 0; i < 7; i++) {
        r = open_note(bm[i].data, bm[i].len, &peter, 1, &n, &e);
        CHECK(r != AT_OK && n.status == AT_NOTE_MALFORMED && strncmp(e.message, "malformed note", 14) == 0,
              "bad message %d: %s", i, e.message);
        at_buf_fini(&bm[i]);
    }

    /* More of Go's behaviour. */
    cat(&m, text, "\n", psig, bad, NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_OK && n.n_sigs == 1,
          "a later signature by a verified key is not checked");
    cat(&m, text, "\n", bad, psig, NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID &&
              n.status == AT_NOTE_BAD_SIGNATURE && e.line == 0,
          "the first one is");
    cat(&m, text, "\n", psig, "\xe2\x80\x94 Unknown AAAA!AAAA\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED &&
              e.line == 1,
          "an unknown key's line must still be well formed");
    cat(&m, text, "\n", psig, "\xe2\x80\x94 Unknown AAAAAA==\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED,
          "a 4-byte signature is malformed");
    cat(&m, text, "\n", psig, "\xe2\x80\x94 Unknown AAAAAAA=\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_OK && n.n_unverified == 1 &&
              n.unverified[0].id == 0,
          "a 5-byte one is an unknown key's");
    cat(&m, text, "\n", psig, "\xe2\x80\x94 Unknown\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED,
          "no base64");
    cat(&m, text, "\n", psig, "\xe2\x80\x94  AAAAAAA=\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED,
          "no name");
    cat(&m, text, "\n", psig, "\xe2\x80\x94 Unknown AAAAAAA= \n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID, "trailing space");
    cat(&m, text, "\n", psig, "- Unknown AAAAAAA=\n", NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID, "hyphen for em dash");
    snprintf(bad, sizeof bad, "%s", psig);
    memcpy(bad + 4 + 12 + 1, "xxxx", 4); /* another key ID: an unknown key */
    cat(&m, text, "\n", bad, NULL);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_ERR_NOT_FOUND && n.n_unverified == 1, "known name, other ID: unknown key");
    /* The unused low bits of the last base64 character: Go ignores them. */
    snprintf(bad, sizeof bad, "%s", psig);
    char *last = strchr(bad, '=') - 1;
    CHECK(*last == 'M', "peter's signature ends in M=");
    *last = 'N';
    cat(&m, text, "\n", bad, NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_OK, "non-canonical base64 accepted as Go does");
    /* A known key whose signature has the wrong length. */
    {
        uint8_t raw[4 + 63] = {0xc7, 0x4f, 0x20, 0xa3};
        at_buf l;
        at_buf_init(&l, 0);
        if (at_note_base64_encode(raw, sizeof raw, &l) != AT_OK)
            exit(99);
        cat(&m, text, "\n\xe2\x80\x94 PeterNeumann ", l.data, "\n", NULL);
        CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID &&
                  n.status == AT_NOTE_BAD_SIGNATURE,
              "63-byte signature");
        at_buf_fini(&l);
    }
    {
        char mall[256];
        malleable_sig(mall, sizeof mall);
        cat(&m, text, "\n", mall, NULL);
        CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID &&
                  n.status == AT_NOTE_BAD_SIGNATURE,
              "S + L refused");
    }
    /* Empty lines in the text; the split is at the last one. */
    {
        at_note_signer *ps = signer(V("peter_skey", NULL), AT_NOTE_ED25519);
        at_buf_reset(&m);
        CHECK(at_note_sign("a\n\nb\n\n", 6, (const at_note_signer *const *)&ps, 1, &m, NULL) == AT_OK,
              "sign a text with empty lines");
        r = open_note(m.data, m.len, &peter, 1, &n, &e);
        CHECK(r == AT_OK && n.text_len == 6 && memcmp(n.text, "a\n\nb\n\n", 6) == 0, "text with empty lines");
        at_buf_reset(&m);
        CHECK(at_note_sign("\n", 1, (const at_note_signer *const *)&ps, 1, &m, NULL) == AT_OK &&
                  open_note(m.data, m.len, &peter, 1, &n, &e) == AT_OK && n.text_len == 1,
              "a text of one newline");
        at_note_signer_free(ps);
    }
    cat(&m, text, "\n", psig, "\n", esig, NULL);
    r = open_note(m.data, m.len, &peter, 1, &n, &e);
    CHECK(r == AT_ERR_NOT_FOUND && n.text_len == strlen(text) + 1 + strlen(psig),
          "an empty line among the signatures moves the split");
    CHECK(open_note("", 0, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED, "empty");
    cat(&m, text, "\r\n", psig, NULL);
    CHECK(open_note(m.data, m.len, &peter, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_MALFORMED,
          "CR LF");
    char *big = malloc(AT_NOTE_MAX_BYTES + 1);
    memset(big, 'a', AT_NOTE_MAX_BYTES + 1);
    CHECK(open_note(big, AT_NOTE_MAX_BYTES + 1, &peter, 1, &n, &e) == AT_ERR_TOO_BIG &&
              n.status == AT_NOTE_TOO_BIG,
          "over the size cap");
    free(big);
    /* c2sp.org/signed-note's vector. */
    const at_note_verifier *c2sp = verifier(V("c2sp_vkey", NULL));
    cat(&m, V("c2sp_text", NULL), "\n", V("c2sp_sig", NULL), NULL);
    CHECK(open_note(m.data, m.len, &c2sp, 1, &n, &e) == AT_OK && n.n_sigs == 1, "c2sp signed-note vector: %s",
          e.message);
    at_note_verifier_free((at_note_verifier *)c2sp);
    at_note_verifier_free((at_note_verifier *)peter);
    at_note_verifier_free((at_note_verifier *)enoch);
    at_buf_fini(&m);
}

/* ---- cosignatures */

/* Signs a cosignature line by hand (OpenSSL directly), for times the API refuses. */
static void raw_cosig_line(const uint8_t seed[32], const char *name, uint32_t id, uint64_t t,
                           const char *text, at_buf *out)
{
    char head[64];
    snprintf(head, sizeof head, "cosignature/v1\ntime %llu\n", (unsigned long long)t);
    at_buf msg;
    at_buf_init(&msg, 0);
    cat(&msg, head, text, NULL);
    uint8_t raw[76];
    for (int i = 0; i < 4; i++)
        raw[i] = (uint8_t)(id >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        raw[4 + i] = (uint8_t)(t >> (56 - 8 * i));
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t sl = 64;
    if (!k || !c || EVP_DigestSignInit(c, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(c, raw + 12, &sl, (const uint8_t *)msg.data, msg.len) != 1)
        exit(99);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    at_buf b;
    at_buf_init(&b, 0);
    if (at_note_base64_encode(raw, sizeof raw, &b) != AT_OK)
        exit(99);
    cat(out, "\xe2\x80\x94 ", name, " ", b.data, "\n", NULL);
    at_buf_fini(&b);
    at_buf_fini(&msg);
}

static void test_cosig(void)
{
    size_t cp_len;
    const char *cp = V("arche_checkpoint", &cp_len);
    const at_note_verifier *arche = verifier(V("arche_vkey", NULL)),
                           *remora = verifier(V("remora_vkey", NULL));
    static at_note n;
    at_error e;
    CHECK(open_note(cp, cp_len, &arche, 1, &n, &e) == AT_OK && n.n_sigs == 1 && n.n_unverified == 5 &&
              n.sigs[0].id == 0xba2f06c0 && n.sigs[0].timestamp == 0,
          "real checkpoint, log key: %s", e.message);
    CHECK(open_note(cp, cp_len, &remora, 1, &n, &e) == AT_OK && n.n_sigs == 1 && n.sigs[0].id == 0xda77ade7 &&
              n.sigs[0].timestamp == 1779573024,
          "real checkpoint, witness cosignature: %s", e.message);
    const at_note_verifier *both[] = {remora, arche};
    CHECK(open_note(cp, cp_len, both, 2, &n, &e) == AT_OK && n.n_sigs == 2 && n.sigs[0].verifier == arche &&
              n.sigs[1].verifier == remora,
          "both, in line order");
    at_note_checkpoint c;
    CHECK(at_note_checkpoint_parse(n.text, n.text_len, &c, &e) == AT_OK && c.size == 1432088532 &&
              c.origin_len == 39 && memcmp(c.origin, "arche2025h1.staging.ct.transparency.dev", 39) == 0 &&
              c.root[0] == 0x53 && c.root[31] == 0x1a && c.ext_len == 0,
          "its checkpoint text");
    char *t = strdup(cp);
    char *size = strstr(t, "1432088532");
    size[9] = '3';
    CHECK(open_note(t, cp_len, &arche, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_BAD_SIGNATURE,
          "size changed: log signature fails");
    CHECK(open_note(t, cp_len, &remora, 1, &n, &e) == AT_ERR_INVALID && n.status == AT_NOTE_BAD_SIGNATURE,
          "size changed: cosignature fails");
    free(t);
    /* transparency-dev/formats' timestamp vector: key ID, then the time. */
    size_t bl;
    const char *b64 = V("formats_cosig_b64", &bl);
    uint8_t raw[128];
    size_t rl;
    uint64_t ts = 0;
    CHECK(at_note_base64_decode(b64, bl, AT_BASE64_STRICT, raw, sizeof raw, &rl) == AT_OK && rl == 76,
          "decode");
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | raw[4 + i];
    CHECK(ts == strtoull(V("formats_cosig_time", NULL), NULL, 10), "cosignature time %llu",
          (unsigned long long)ts);

    /* Our own cosigner. */
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 1);
    at_buf sk, vk, line, note;
    at_buf_init(&sk, 0);
    at_buf_init(&vk, 0);
    at_buf_init(&line, 0);
    at_buf_init(&note, 0);
    if (at_note_keygen_seed("witness.example/w1", 18, AT_NOTE_COSIG_V1, seed, &sk, &vk, NULL) != AT_OK)
        exit(99);
    at_note_signer *w = signer(sk.data, AT_NOTE_COSIG_V1);
    const at_note_verifier *wv = verifier(vk.data);
    const char *text = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    CHECK(at_note_sign_line(w, text, strlen(text), 1700000000, &line, &e) == AT_OK, "cosign: %s", e.message);
    cat(&note, text, "\n", line.data, NULL);
    CHECK(open_note(note.data, note.len, &wv, 1, &n, &e) == AT_OK && n.sigs[0].timestamp == 1700000000,
          "cosignature verifies: %s", e.message);
    const at_note_signer *ws = w;
    at_buf_reset(&note);
    CHECK(at_note_sign(text, strlen(text), &ws, 1, &note, NULL) == AT_OK &&
              open_note(note.data, note.len, &wv, 1, &n, &e) == AT_OK &&
              n.sigs[0].timestamp + 60 > (uint64_t)time(NULL) && n.sigs[0].timestamp <= (uint64_t)time(NULL),
          "at_note_sign stamps the current time");
    /* The same key as a plain Ed25519 verifier: another key ID, so unknown. */
    at_note_verifier *plain = NULL;
    {
        at_buf pk;
        at_buf_init(&pk, 0);
        if (at_note_keygen_seed("witness.example/w1", 18, AT_NOTE_ED25519, seed, NULL, &pk, NULL) != AT_OK)
            exit(99);
        plain = verifier(pk.data);
        at_buf_fini(&pk);
    }
    CHECK(open_note(note.data, note.len, (const at_note_verifier *const *)&plain, 1, &n, &e) ==
              AT_ERR_NOT_FOUND,
          "a type 0x01 key does not verify a cosignature");
    at_note_verifier_free(plain);
    /* Times: 2^63 - 1 is the largest; a hand-made 2^63 does not verify. */
    at_buf_reset(&line);
    CHECK(at_note_sign_line(w, text, strlen(text), INT64_MAX, &line, NULL) == AT_OK, "time 2^63 - 1");
    cat(&note, text, "\n", line.data, NULL);
    CHECK(open_note(note.data, note.len, &wv, 1, &n, &e) == AT_OK && n.sigs[0].timestamp == INT64_MAX,
          "time 2^63 - 1 verifies");
    at_buf_reset(&line);
    CHECK(at_note_sign_line(w, text, strlen(text), (uint64_t)INT64_MAX + 1, &line, NULL) == AT_ERR_INVALID &&
              line.len == 0,
          "time 2^63 refused");
    raw_cosig_line(seed, "witness.example/w1", at_note_verifier_id(wv), (uint64_t)INT64_MAX + 1, text, &line);
    cat(&note, text, "\n", line.data, NULL);
    CHECK(open_note(note.data, note.len, &wv, 1, &n, &e) == AT_ERR_INVALID &&
              n.status == AT_NOTE_BAD_SIGNATURE,
          "time 2^63 does not verify");
    raw_cosig_line(seed, "witness.example/w1", at_note_verifier_id(wv), 0, text, &line);
    cat(&note, text, "\n", line.data, NULL);
    CHECK(open_note(note.data, note.len, &wv, 1, &n, &e) == AT_OK && n.sigs[0].timestamp == 0,
          "hand-made cosignature at time 0 verifies");
    at_buf_reset(&line);
    CHECK(at_note_sign_line(w, "not a checkpoint\n", 17, 1, &line, NULL) == AT_ERR_INVALID && line.len == 0,
          "a cosigner signs checkpoints only");
    /* A Go skey used as a cosigner. */
    at_note_signer *pw = signer(V("peter_skey", NULL), AT_NOTE_COSIG_V1);
    at_buf_reset(&vk);
    if (at_note_signer_vkey(pw, &vk) != AT_OK)
        exit(99);
    const at_note_verifier *pwv = verifier(vk.data);
    at_buf_reset(&line);
    CHECK(at_note_sign_line(pw, text, strlen(text), 42, &line, NULL) == AT_OK, "cosign with a Go key");
    cat(&note, text, "\n", line.data, NULL);
    CHECK(open_note(note.data, note.len, &pwv, 1, &n, &e) == AT_OK && n.sigs[0].timestamp == 42,
          "verifies with its type 0x04 vkey");
    at_note_verifier_free((at_note_verifier *)pwv);
    at_note_signer_free(pw);
    at_note_verifier_free((at_note_verifier *)wv);
    at_note_signer_free(w);
    at_note_verifier_free((at_note_verifier *)arche);
    at_note_verifier_free((at_note_verifier *)remora);
    at_buf_fini(&sk);
    at_buf_fini(&vk);
    at_buf_fini(&line);
    at_buf_fini(&note);
}

/* ---- checkpoints */

static void test_checkpoint(void)
{
    at_note_checkpoint c;
    at_error e;
    size_t len;
    const char *spec = V("c2sp_checkpoint", &len);
    CHECK(at_note_checkpoint_parse(spec, len, &c, &e) == AT_OK && c.size == 20852163 && c.origin_len == 27 &&
              memcmp(c.origin, "example.com/behind-the-sofa", 27) == 0 && c.ext_len == 0,
          "c2sp example: %s", e.message);
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_note_checkpoint_format(&c, &b, &e) == AT_OK, "format");
    CHECK_BYTES(b.data, b.len, spec, len, "c2sp example round trip");
    static const char *good[] = {
        "o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n18446744073709551615\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o p\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\n\xe2\x80\x94 two\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(at_note_checkpoint_parse(good[i], strlen(good[i]), &c, &e) == AT_OK, "good %zu: %s", i,
              e.message);
        at_buf_reset(&b);
        CHECK(at_note_checkpoint_format(&c, &b, &e) == AT_OK && strcmp(b.data, good[i]) == 0,
              "good %zu round trip", i);
    }
    CHECK(at_note_checkpoint_parse(good[1], strlen(good[1]), &c, &e) == AT_OK && c.size == UINT64_MAX,
          "max size");
    CHECK(at_note_checkpoint_parse(good[2], strlen(good[2]), &c, &e) == AT_OK && c.ext_len == 16 &&
              memcmp(c.ext, "ext one\n", 8) == 0,
          "extension lines kept");
    static const char *bad[] = {
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n00\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n+1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1 \nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n18446744073709551616\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n\next\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "o\n1\n",
        "o\n",
        "",
        "o\x01\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "\xff\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(at_note_checkpoint_parse(bad[i], strlen(bad[i]), &c, &e) != AT_OK, "bad checkpoint %zu", i);
    /* Formatting refuses what parsing would. */
    at_note_checkpoint f = {"o", 1, 7, {0}, NULL, 0};
    at_buf_reset(&b);
    CHECK(at_note_checkpoint_format(&f, &b, &e) == AT_OK &&
              strcmp(b.data, "o\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n") == 0,
          "format a checkpoint");
    static const struct {
        const char *origin, *ext;
    } refuse[] = {{"", ""},    {"a\nb", ""},      {"a\x01", ""}, {"o", "x"},
                  {"o", "\n"}, {"o", "a\n\nb\n"}, {"\xff", ""}};
    for (size_t i = 0; i < sizeof refuse / sizeof refuse[0]; i++) {
        at_note_checkpoint g = {refuse[i].origin, strlen(refuse[i].origin), 1, {0},
                                refuse[i].ext,    strlen(refuse[i].ext)};
        at_buf_reset(&b);
        CHECK(at_note_checkpoint_format(&g, &b, &e) != AT_OK && b.len == 0, "format refuses %zu", i);
    }
    at_buf_fini(&b);
}

/* ---- tampering: every byte of a signed note changed */

typedef struct {
    char **notes;
    size_t *lens;
    size_t n, cap;
} mutations;

static void add_mutation(mutations *m, const char *p, size_t len)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->notes = realloc(m->notes, m->cap * sizeof *m->notes);
        m->lens = realloc(m->lens, m->cap * sizeof *m->lens);
        if (!m->notes || !m->lens)
            exit(99);
    }
    m->notes[m->n] = malloc(len ? len : 1);
    memcpy(m->notes[m->n], p, len);
    m->lens[m->n++] = len;
}

/* Each bit of each byte flipped, each byte dropped, each byte doubled. */
static void mutate(mutations *m, const char *note, size_t len)
{
    char *b = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, note, len);
            b[i] ^= (char)(1 << bit);
            add_mutation(m, b, len);
        }
        memcpy(b, note, i);
        memcpy(b + i, note + i + 1, len - i - 1);
        add_mutation(m, b, len - 1);
        memcpy(b, note, i + 1);
        memcpy(b + i + 1, note + i, len - i);
        add_mutation(m, b, len + 1);
    }
    free(b);
}

/* C alone: a changed note is refused, or opens to the same text verified by
 * some of the same keys (a change in an ignored signature, in unused base64
 * bits, in a known key's name or ID that makes it unknown). With Go: the same
 * outcome as Go's, case by case. */
static void tamper(const char *what, const char *note, size_t len, const at_note_verifier *const *known,
                   size_t n_known, const char *const *vkeys, size_t n_vkeys)
{
    static at_note orig, got;
    if (at_note_open(note, len, known, n_known, &orig, NULL) != AT_OK) {
        CHECK(0, "%s: the original does not open", what);
        return;
    }
    mutations m = {0};
    mutate(&m, note, len);
    /* One case per byte of the note: its 10 mutations (mutate's order). */
    const size_t per = 10;
    size_t refused = 0, same = 0;
    for (size_t pos = 0; pos * per < m.n; pos++) {
        bool all = true;
        for (size_t i = pos * per; i < (pos + 1) * per && i < m.n; i++) {
            at_result r = at_note_open(m.notes[i], m.lens[i], known, n_known, &got, NULL);
            bool ok = r != AT_OK;
            if (ok) {
                refused++;
            } else {
                /* Same text; verified by some of the same keys (a key whose line
                 * changed name or ID is unknown now, and ignored). */
                ok = got.text_len == orig.text_len && memcmp(got.text, orig.text, got.text_len) == 0;
                for (size_t k = 0; ok && k < got.n_sigs; k++) {
                    ok = false;
                    for (size_t j = 0; j < orig.n_sigs && !ok; j++)
                        ok = got.sigs[k].verifier == orig.sigs[j].verifier;
                }
                same++;
            }
            if (!ok)
                fprintf(stderr, "%s: mutation %zu opens to something else\n", what, i);
            all &= ok;
        }
        CHECK(all, "%s: byte %zu", what, pos);
    }
    printf("%s: %zu mutations of %zu bytes, %zu refused, %zu open unchanged\n", what, m.n, len, refused,
           same);
    if (gonote) {
        char **go = calloc(m.n, sizeof *go);
        bool ran = go_batch(vkeys, n_vkeys, m.notes, m.lens, m.n, go);
        CHECK(ran, "%s: gonote batch", what);
        size_t differ = 0;
        for (size_t pos = 0; ran && pos * per < m.n; pos++) {
            bool all = true;
            for (size_t i = pos * per; i < (pos + 1) * per && i < m.n; i++) {
                char c[512];
                c_outcome(m.notes[i], m.lens[i], known, n_known, c, sizeof c);
                if (strcmp(c, go[i]) != 0) {
                    fprintf(stderr, "%s: mutation %zu: C [%s] Go [%s]\n", what, i, c, go[i]);
                    differ++;
                    all = false;
                }
            }
            CHECK(all, "%s: byte %zu: C and Go differ", what, pos);
        }
        printf("%s: %zu outcomes compared with Go, %zu differ\n", what, ran ? m.n : 0, differ);
        for (size_t i = 0; i < m.n; i++)
            free(go[i]);
        free(go);
    }
    for (size_t i = 0; i < m.n; i++)
        free(m.notes[i]);
    free(m.notes);
    free(m.lens);
}

static void test_tamper(void)
{
    at_buf m;
    at_buf_init(&m, 0);
    const char *peter_vkey = V("peter_vkey", NULL);
    const at_note_verifier *peter = verifier(peter_vkey);
    cat(&m, V("text", NULL), "\n", V("peter_sig", NULL), V("enoch_sig", NULL), NULL);
    tamper("peter+enoch note", m.data, m.len, &peter, 1, &peter_vkey, 1);
    size_t cp_len;
    const char *cp = V("arche_checkpoint", &cp_len);
    const char *vkeys[] = {V("arche_vkey", NULL), V("remora_vkey", NULL)};
    const at_note_verifier *known[] = {verifier(vkeys[0]), verifier(vkeys[1])};
    tamper("cosigned checkpoint", cp, cp_len, known, 2, vkeys, 2);
    at_note_verifier_free((at_note_verifier *)known[0]);
    at_note_verifier_free((at_note_verifier *)known[1]);
    at_note_verifier_free((at_note_verifier *)peter);
    at_buf_fini(&m);
}

/* ---- Go itself */

static char *go_line(char **p)
{
    char *nl = strchr(*p, '\n');
    if (!nl)
        return NULL;
    *nl = 0;
    char *s = *p;
    *p = nl + 1;
    return s;
}

static void test_go(void)
{
    char *out;
    size_t out_len;
    int st;
    /* Key texts: Go's random keys read back by C, word for word. */
    static const char *names[] = {"example.com/log", "EnochRoot",
                                  "\xc3\xbcn\xc3\xaf/c\xc3\xb6"
                                  "d\xc3\xa9",
                                  "a/b/c:d@e", "x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *args[] = {"keygen", names[i], NULL};
        st = run_go(args, "", 0, &out, &out_len);
        CHECK(st == 0, "gonote keygen: %d", st);
        if (st != 0)
            continue;
        char *p = out, *skey = go_line(&p), *vkey = go_line(&p);
        at_note_signer *s = NULL;
        at_note_verifier *v = NULL;
        at_error e = {0};
        CHECK(skey && vkey && at_note_signer_new(skey, strlen(skey), AT_NOTE_ED25519, &s, &e) == AT_OK &&
                  at_note_verifier_new(vkey, strlen(vkey), &v, &e) == AT_OK,
              "Go's keys read: %s", e.message);
        if (s && v) {
            at_buf b;
            at_buf_init(&b, 0);
            CHECK(at_note_signer_skey(s, &b) == AT_OK && strcmp(b.data, skey) == 0, "Go's skey text");
            at_buf_reset(&b);
            CHECK(at_note_signer_vkey(s, &b) == AT_OK && strcmp(b.data, vkey) == 0,
                  "Go's vkey from the skey");
            at_buf_reset(&b);
            CHECK(at_note_verifier_vkey(v, &b) == AT_OK && strcmp(b.data, vkey) == 0, "Go's vkey text");
            CHECK(at_note_signer_id(s) == at_note_verifier_id(v), "same ID");
            /* C signs with Go's key; Go verifies. */
            const char *text = "C signs with a key Go made\n";
            at_buf_reset(&b);
            if (at_note_sign(text, strlen(text), (const at_note_signer *const *)&s, 1, &b, NULL) != AT_OK)
                exit(99);
            const char *vargs[] = {"verify", vkey, NULL};
            char *vo;
            size_t vl;
            st = run_go(vargs, b.data, b.len, &vo, &vl);
            char want[512];
            snprintf(want, sizeof want, "%s+%08x\n", names[i], (unsigned)at_note_verifier_id(v));
            CHECK(st == 0 && strcmp(vo, want) == 0, "Go verifies C's signature: %d %s", st, vo);
            free(vo);
            /* Go signs with the same key; C verifies and produces the same bytes. */
            const char *sargs[] = {"sign", skey, NULL};
            st = run_go(sargs, text, strlen(text), &vo, &vl);
            static at_note n;
            CHECK(st == 0 && at_note_open(vo, vl, (const at_note_verifier *const *)&v, 1, &n, &e) == AT_OK,
                  "C verifies Go's signature: %s", e.message);
            CHECK_BYTES(vo, vl, b.data, b.len, "Go and C sign alike (Ed25519 is deterministic)");
            free(vo);
            at_buf_fini(&b);
        }
        at_note_signer_free(s);
        at_note_verifier_free(v);
        free(out);
    }
    /* The same seed gives the same texts. */
    uint8_t seed[32];
    char hex[65];
    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(0xa5 ^ (i * 29));
        snprintf(hex + 2 * i, 3, "%02x", seed[i]);
    }
    const char *kargs[] = {"keygen", "seeded.example", hex, NULL};
    st = run_go(kargs, "", 0, &out, &out_len);
    at_buf sk, vk;
    at_buf_init(&sk, 0);
    at_buf_init(&vk, 0);
    if (at_note_keygen_seed("seeded.example", 14, AT_NOTE_ED25519, seed, &sk, &vk, NULL) != AT_OK ||
        at_buf_add(&sk, "\n", 1) != AT_OK || at_buf_add(&sk, vk.data, vk.len) != AT_OK ||
        at_buf_add(&sk, "\n", 1) != AT_OK)
        exit(99);
    CHECK(st == 0 && strcmp(out, sk.data) == 0, "keygen from one seed: Go [%s] C [%s]", out, sk.data);
    free(out);
    /* C's random key, used by Go. */
    at_buf_reset(&sk);
    at_buf_reset(&vk);
    if (at_note_keygen("c.example/key", 13, AT_NOTE_ED25519, &sk, &vk, NULL) != AT_OK)
        exit(99);
    const char *text = "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    const char *sargs[] = {"sign", sk.data, NULL};
    st = run_go(sargs, text, strlen(text), &out, &out_len);
    at_note_verifier *cv = verifier(vk.data);
    static at_note n;
    CHECK(st == 0 && at_note_open(out, out_len, (const at_note_verifier *const *)&cv, 1, &n, NULL) == AT_OK,
          "Go signs with C's key, C verifies");
    free(out);
    /* Two signers, both directions. */
    const char *peter_skey = V("peter_skey", NULL), *peter_vkey = V("peter_vkey", NULL);
    const char *s2[] = {"sign", peter_skey, sk.data, NULL};
    st = run_go(s2, text, strlen(text), &out, &out_len);
    at_note_signer *ps = signer(peter_skey, AT_NOTE_ED25519), *cs = signer(sk.data, AT_NOTE_ED25519);
    const at_note_signer *signers[] = {ps, cs};
    at_buf mine;
    at_buf_init(&mine, 0);
    if (at_note_sign(text, strlen(text), signers, 2, &mine, NULL) != AT_OK)
        exit(99);
    CHECK(st == 0 && out_len == mine.len && memcmp(out, mine.data, out_len) == 0, "two signers: same bytes");
    free(out);
    const char *v2[] = {"verify", peter_vkey, vk.data, NULL};
    st = run_go(v2, mine.data, mine.len, &out, &out_len);
    char want[256];
    snprintf(want, sizeof want, "PeterNeumann+c74f20a3\nc.example/key+%08x\n",
             (unsigned)at_note_verifier_id(cv));
    CHECK(st == 0 && strcmp(out, want) == 0, "Go verifies both: %s", out);
    free(out);
    /* A cosignature by C, verified in Go (a note.Verifier for type 0x04 over Go's Open). */
    at_buf_reset(&sk);
    at_buf_reset(&vk);
    if (at_note_keygen("witness.example/w2", 18, AT_NOTE_COSIG_V1, &sk, &vk, NULL) != AT_OK)
        exit(99);
    at_note_signer *w = signer(sk.data, AT_NOTE_COSIG_V1);
    at_buf_reset(&mine);
    if (at_note_sign(text, strlen(text), (const at_note_signer *const *)&w, 1, &mine, NULL) != AT_OK)
        exit(99);
    const char *v3[] = {"verify", vk.data, NULL};
    st = run_go(v3, mine.data, mine.len, &out, &out_len);
    CHECK(st == 0 && strncmp(out, "witness.example/w2+", 19) == 0, "Go verifies C's cosignature: %s", out);
    free(out);
    {
        at_buf okey, onote;
        at_buf_init(&okey, 0);
        at_buf_init(&onote, 0);
        odd_key(&okey, &onote);
        at_note_verifier *odd = verifier(okey.data);
        char c[512];
        c_outcome(onote.data, onote.len, (const at_note_verifier *const *)&odd, 1, c, sizeof c);
        const char *oargs[] = {"verify", okey.data, NULL};
        st = run_go(oargs, onote.data, onote.len, &out, &out_len);
        CHECK(st == 1 && out_len > 0 && strncmp(c, "err ", 4) == 0 && strncmp(out, c + 4, strlen(c + 4)) == 0,
              "a key that is no point: Go [%s] C [%s]", out, c);
        free(out);
        at_note_verifier_free(odd);
        at_buf_fini(&okey);
        at_buf_fini(&onote);
    }
    /* Go's errors, word for word, on our catalogue of odd notes. */
    const char *psig = V("peter_sig", NULL), *esig = V("enoch_sig", NULL), *ntext = V("text", NULL);
    char badsig[256], lowbits[256];
    snprintf(badsig, sizeof badsig, "%.60sABCD%s", psig, psig + 60);
    snprintf(lowbits, sizeof lowbits, "%s", psig);
    *(strchr(lowbits, '=') - 1) = 'N';
    at_buf cases[16];
    size_t nc = 0;
    for (size_t i = 0; i < 16; i++)
        at_buf_init(&cases[i], 0);
    cat(&cases[nc++], ntext, "\n", psig, esig, NULL);
    cat(&cases[nc++], ntext, "\n", esig, NULL);
    cat(&cases[nc++], ntext, "\n", badsig, NULL);
    cat(&cases[nc++], ntext, "\n", psig, badsig, NULL);
    cat(&cases[nc++], ntext, "\n", lowbits, NULL);
    cat(&cases[nc++], ntext, "\n", psig, "\xe2\x80\x94 Unknown AAAAAAA=\n", NULL);
    cat(&cases[nc++], ntext, "\n", psig, "\xe2\x80\x94 Unknown AAAAAA==\n", NULL);
    cat(&cases[nc++], ntext, "\n", psig, "\n", esig, NULL);
    cat(&cases[nc++], ntext, "\r\n", psig, NULL);
    cat(&cases[nc++], "a\n\nb\n\n", psig, NULL);
    cat(&cases[nc++], ntext, "\n", psig,
        "\xe2\x80\x94 a\x7f"
        "b AAAAAAA=\n",
        NULL);
    cat(&cases[nc++], ntext, "\n", psig,
        "\xe2\x80\x94 a\xc2\xa0"
        "b AAAAAAA=\n",
        NULL);
    char mall[256];
    malleable_sig(mall, sizeof mall);
    cat(&cases[nc++], ntext, "\n", mall, NULL);
    at_buf_reset(&cases[nc]);
    if (at_buf_adds(&cases[nc], ntext) != AT_OK || at_buf_adds(&cases[nc], "\n") != AT_OK)
        exit(99);
    for (int i = 0; i < 101; i++)
        if (at_buf_adds(&cases[nc], i == 50 ? esig : psig) != AT_OK)
            exit(99);
    nc++;
    char *notes[16];
    size_t lens[16];
    for (size_t i = 0; i < nc; i++) {
        notes[i] = cases[i].data;
        lens[i] = cases[i].len;
    }
    const at_note_verifier *pv = verifier(peter_vkey), *ev = verifier(V("enoch_vkey", NULL));
    const char *vk_one[] = {peter_vkey};
    const char *vk_dup[] = {V("enoch_vkey", NULL), peter_vkey, V("enoch_vkey", NULL)};
    const at_note_verifier *known_dup[] = {ev, pv, ev};
    for (int round = 0; round < 2; round++) {
        char *go[16] = {0};
        const char *const *vks = round ? vk_dup : vk_one;
        const at_note_verifier *const *kn = round ? known_dup : &pv;
        size_t nk = round ? 3 : 1;
        CHECK(go_batch(vks, nk, notes, lens, nc, go), "gonote batch");
        for (size_t i = 0; i < nc; i++) {
            char c[512];
            c_outcome(notes[i], lens[i], kn, nk, c, sizeof c);
            CHECK(go[i] && strcmp(c, go[i]) == 0, "case %zu round %d: C [%s] Go [%s]", i, round, c,
                  go[i] ? go[i] : "");
            free(go[i]);
        }
    }
    for (size_t i = 0; i < 16; i++)
        at_buf_fini(&cases[i]);
    at_note_verifier_free((at_note_verifier *)pv);
    at_note_verifier_free((at_note_verifier *)ev);
    at_note_verifier_free(cv);
    at_note_signer_free(ps);
    at_note_signer_free(cs);
    at_note_signer_free(w);
    at_buf_fini(&sk);
    at_buf_fini(&vk);
    at_buf_fini(&mine);
}

int main(void)
{
    load_vectors("tests/vectors/note/go_note.tsv");
    load_vectors("tests/vectors/note/interop.tsv");
    gonote = getenv("GONOTE");
    if (gonote && (!*gonote || access(gonote, X_OK) != 0)) {
        fprintf(stderr, "GONOTE=%s is not executable: the Go cases are skipped\n", gonote);
        gonote = NULL;
    }
    test_base64();
    test_names();
    test_key_ids();
    test_verifier_texts();
    test_signer_texts();
    test_keygen();
    test_sign();
    test_open();
    test_cosig();
    test_checkpoint();
    test_tamper();
    if (gonote)
        test_go();
    else
        printf("test_note: GONOTE not set: the cases against Go are skipped\n");
    for (size_t i = 0; i < n_vecs; i++) {
        free(vecs[i].name);
        free(vecs[i].val);
    }
    return t_done("test_note");
}
