/* test_http.c - integration test of `agent-traced serve`: starts the real
 * daemon on port 0 (reading `listening on HOST:PORT` from its stderr) and
 * drives it with libcurl under timeouts: chunked and gzip uploads of every
 * fixture (stored bytes = the reference storage), re-upload, grown
 * transcripts, each error case, client disconnects, auth, concurrency, the
 * other routes, the route table against openapi.yaml, and SIGTERM.
 * With AT_TEST_PGURL (tests/http_db.sh) on `serve --database`: testdaemon.h. */
#include "testlib.h"
#include "testdaemon.h"

#include "http_routes.h"

#include "agenttrace/buf.h"
#include "agenttrace/sha256.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char bin[4096];
static char work[] = "/tmp/test_http.XXXXXX";

/* ---- HTTP with libcurl -------------------------------------------------- */

typedef struct {
    const char *p;
    size_t n, off, chunk;
} upload_src;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    upload_src *u = ud;
    size_t room = size * nitems, left = u->n - u->off;
    size_t k = left < room ? left : room;
    if (u->chunk && k > u->chunk)
        k = u->chunk;
    memcpy(buf, u->p + u->off, k);
    u->off += k;
    /* vary the chunk sizes: 1, 7, 4096, 65536 ... */
    if (u->chunk)
        u->chunk = u->chunk == 1 ? 7 : u->chunk == 7 ? 4096 : u->chunk == 4096 ? 65536 : 1;
    return k;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    at_buf *b = ud;
    if (at_buf_add(b, p, size * n) != AT_OK)
        return 0;
    return size * n;
}

typedef struct {
    long status;
    at_buf body;
    char etag[128];
} reply;

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = size * n;
    if (len > 6 && strncasecmp(p, "ETag: ", 6) == 0) {
        size_t k = len - 6;
        while (k && (p[6 + k - 1] == '\r' || p[6 + k - 1] == '\n'))
            k--;
        snprintf(r->etag, sizeof r->etag, "%.*s", (int)k, p + 6);
    }
    return len;
}

enum { SEND_LENGTH = 0, SEND_CHUNKED = 1 };

/* method, url path (after host:port), body (NULL: none), extra headers
 * (NULL-terminated), mode. The reply body is in r->body (caller finis). */
static void http(daemon_t *d, const char *method, const char *path, const char *body, size_t n,
                 const char *const *headers, int mode, reply *r)
{
    memset(r, 0, sizeof *r);
    at_buf_init(&r->body, 0);
    CURL *c = curl_easy_init();
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    upload_src u = {body, n, 0, 1};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        if (strcmp(method, "PUT") == 0)
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        else
            curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (mode == SEND_CHUNKED) {
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &u);
        } else if (strcmp(method, "PUT") == 0) {
            u.chunk = 0;
            curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &u);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        }
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        r->status = -(long)rc;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body.data)
        (void)!at_buf_adds(&r->body, "");
}

static bool body_has(const reply *r, const char *s)
{
    return r->body.data && strstr(r->body.data, s) != NULL;
}

/* Value of a string member "key": "..." in a flat JSON reply. */
static void json_str(const reply *r, const char *key, char *out, size_t cap)
{
    char pat[128];
    out[0] = 0;
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = r->body.data ? strstr(r->body.data, pat) : NULL;
    if (!p)
        return;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (e)
        snprintf(out, cap, "%.*s", (int)(e - p), p);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' || (e->d_name[1] && (e->d_name[1] != '.' || e->d_name[2])))
            n++;
    if (d)
        closedir(d);
    return n;
}

static int tmp_files(daemon_t *d)
{
    return count_files(d->tmp);
}

/* Waits up to `secs` s for the staging directory to empty. */
static bool tmp_clean_within(daemon_t *d, int secs)
{
    for (int i = 0; i < secs * 100; i++) {
        if (tmp_files(d) == 0)
            return true;
        usleep(10000);
    }
    return false;
}

static bool tmp_clean(daemon_t *d)
{
    return tmp_clean_within(d, 5);
}

static char *gzip_bytes(const char *p, size_t n, size_t *out_n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, n) + 64;
    char *o = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)o;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return o;
}

static bool files_equal(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *pa = t_read_file(a, &na), *pb = t_read_file(b, &nb);
    bool eq = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* ---- fixtures ------------------------------------------------------------ */

static char *fixtures[64];
static size_t nfixtures;

static void collect(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            collect(p);
        else if (strlen(e->d_name) > 6 && strcmp(e->d_name + strlen(e->d_name) - 6, ".jsonl") == 0 &&
                 nfixtures < 64)
            fixtures[nfixtures++] = strdup(p);
    }
    if (d)
        closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void import_path(char *out, size_t cap, const char *source)
{
    char enc[1024];
    size_t k = 0;
    for (const char *s = source; *s && k + 4 < sizeof enc; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
            ch == '-' || ch == '_') {
            enc[k++] = (char)ch;
        } else {
            snprintf(enc + k, 4, "%%%02X", ch);
            k += 3;
        }
    }
    enc[k] = 0;
    snprintf(out, cap, "/import?source=%s", enc);
}

static char *fixture(const char *rel, size_t *n);

/* Uploads every fixture (chunked, odd chunk sizes) and compares the
 * storage with the reference directories: the redacted ones unless the
 * server runs with redaction off. */
static void test_fixtures(daemon_t *d, bool redacted)
{
    if (!nfixtures) {
        collect(t_src("tests/fixtures/claude"));
        collect(t_src("tests/fixtures/claude-edge"));
        qsort(fixtures, nfixtures, sizeof fixtures[0], cmp_str);
    }
    CHECK(nfixtures >= 12, "found %zu fixtures", nfixtures);
    for (size_t i = 0; i < nfixtures; i++) {
        size_t n = 0;
        char *data = t_read_file(fixtures[i], &n);
        char path[2048];
        import_path(path, sizeof path, base(fixtures[i]));
        reply r;
        http(d, i % 2 ? "PUT" : "POST", path, data ? data : "", n, NULL, SEND_CHUNKED, &r);
        if (n == 0)
            CHECK(r.status == 400 && body_has(&r, "\"error\": "), "%s: empty body: %ld %s", fixtures[i],
                  r.status, r.body.data);
        else
            CHECK(r.status == 201 && body_has(&r, "\"session_id\": ") && body_has(&r, "\"events_sha256\": "),
                  "%s: %ld %s", fixtures[i], r.status, r.body.data);
        at_buf_fini(&r.body);
        free(data);
    }
    const char *sets[] = {redacted ? "tests/fixtures/expected-redacted" : "tests/fixtures/expected",
                          redacted ? "tests/fixtures/expected-edge-redacted"
                                   : "tests/fixtures/expected-edge"};
    int compared = 0;
    stored(d);
    for (int s = 0; s < 2; s++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", t_src(sets[s]));
        DIR *dd = opendir(dir);
        struct dirent *e;
        while (dd && (e = readdir(dd))) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, "empty") == 0)
                continue; /* "empty" comes from an empty file: a 400 over HTTP */
            char a[8192], b[8192];
            for (int f = 0; f < 2; f++) {
                const char *file = f ? "meta.json" : "events.ndjson";
                snprintf(a, sizeof a, "%s/%s/%s", dir, e->d_name, file);
                snprintf(b, sizeof b, "%s/%s/%s", d->storage, e->d_name, file); /* stored() above */
                CHECK(files_equal(a, b), "%s/%s differs from the reference", e->d_name, file);
                compared++;
            }
        }
        if (dd)
            closedir(dd);
    }
    CHECK(compared >= 28, "compared %d files", compared);
    CHECK(tmp_clean(d), "staging files left after the fixtures");
}

/* Does the server's log hold a line containing s? */
static bool log_has(daemon_t *d, const char *s)
{
    for (int i = 0; i < 50; i++) { /* the log is written by a drain thread */
        size_t n;
        char *log = t_read_file(d->log, &n);
        bool found = log && strstr(log, s);
        free(log);
        if (found)
            return true;
        usleep(20000);
    }
    return false;
}

/* Redaction over HTTP: the request log says how many events were redacted
 * and never holds a secret; a body without one transcript line is a 422
 * that stores nothing; the collector endpoints redact what they receive, so
 * the reference's redacted lines come out of events posted one by one. */
static void test_redaction(daemon_t *d)
{
    CHECK(log_has(d, "POST /import 201 ") &&
              log_has(d, "in=2444 redacted 5 events and the session metadata\n"),
          "the upload of secrets.jsonl is logged with its redaction count");
    size_t n;
    char *log = t_read_file(d->log, &n);
    CHECK(log && !strstr(log, "sk-ant-") && !strstr(log, "ghp_") && !strstr(log, "hunter2"),
          "no secret in the log");
    free(log);

    reply r;
    const char *junk = "\n  \nnot json\n[1, 2]\n\"a string\"\n{\"truncated\": \n";
    http(d, "POST", "/import?source=junk.jsonl", junk, strlen(junk), NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 422 && body_has(&r, "no transcript line") && body_has(&r, "4 non-blank lines"),
          "no usable line: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    char p[4400];
    snprintf(p, sizeof p, "%s/junk", stored(d));
    CHECK(access(p, F_OK) != 0, "no session from a body without transcript lines");
    CHECK(tmp_clean(d), "no staging after a 422");

    /* events posted one by one, without prev_hash: the server chains them */
    const char *sid = "0e0e0e0e-0000-4000-8000-000000000006";
    char *plain =
        fixture("tests/fixtures/expected-edge/0e0e0e0e-0000-4000-8000-000000000006/events.ndjson", &n);
    char *rmeta = fixture("tests/fixtures/expected-edge/0e0e0e0e-0000-4000-8000-000000000006/meta.json", &n);
    daemon_t c;
    if (!start(&c, "collector-redact", NULL, NULL)) {
        CHECK(0, "collector server did not start");
        free(plain);
        free(rmeta);
        return;
    }
    http(&c, "POST", "/sessions", rmeta, strlen(rmeta), NULL, SEND_LENGTH, &r);
    CHECK(r.status == 200, "POST /sessions: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    CHECK(log_has(&c, "POST /sessions 200") && log_has(&c, "in=372 redacted the session metadata\n"),
          "POST /sessions logs its redaction");
    int posted = 0;
    for (char *line = plain, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *ph = strstr(line, ",\"prev_hash\":\"");
        if (ph) /* ,"prev_hash":"<64 hex>" */
            memmove(ph, ph + 14 + 64 + 1, strlen(ph + 14 + 64 + 1) + 1);
        http(&c, "POST", "/events", line, strlen(line), NULL, SEND_LENGTH, &r);
        CHECK(r.status == 200 && body_has(&r, "\"accepted\": 1"), "POST /events: %ld %s", r.status,
              r.body.data);
        at_buf_fini(&r.body);
        posted++;
    }
    CHECK(posted == 7, "posted %d events", posted);
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/%s/events.ndjson", stored(&c), sid);
    snprintf(
        b, sizeof b, "%s",
        t_src("tests/fixtures/expected-edge-redacted/0e0e0e0e-0000-4000-8000-000000000006/events.ndjson"));
    CHECK(files_equal(b, a), "events posted one by one equal the reference's redacted lines");
    snprintf(a, sizeof a, "%s/%s/meta.json", c.storage, sid);
    snprintf(b, sizeof b, "%s",
             t_src("tests/fixtures/expected-edge-redacted/0e0e0e0e-0000-4000-8000-000000000006/meta.json"));
    CHECK(files_equal(b, a), "POST /sessions stored the redacted meta");
    CHECK(log_has(&c, "POST /events 200") && log_has(&c, "redacted 1 events\n"),
          "POST /events logs its redaction");
    /* an event already flagged keeps its flag; a clean one gets none */
    const char *flagged = "{\"event_type\":\"decision\",\"session_id\":\"flags\",\"event_id\":\"e1\","
                          "\"timestamp\":1.0,\"data\":{\"x\":\"clean\"},\"redacted\":true}\n"
                          "{\"event_type\":\"decision\",\"session_id\":\"flags\",\"event_id\":\"e2\","
                          "\"timestamp\":2.0,\"data\":{\"x\":\"clean\"},\"redacted\":false}\n"
                          "{\"event_type\":\"decision\",\"session_id\":\"flags\",\"event_id\":\"e3\","
                          "\"timestamp\":3.0,\"data\":{\"Password\":[\"x\",{\"k\":\"[REDACTED_EMAIL]\"}]}}\n";
    http(&c, "POST", "/events", flagged, strlen(flagged), NULL, SEND_LENGTH, &r);
    CHECK(r.status == 200, "flags: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(&c, "GET", "/sessions/flags/events", NULL, 0, NULL, 0, &r);
    CHECK(
        r.status == 200 && r.body.data &&
            strstr(r.body.data, "\"data\":{\"x\":\"clean\"},\"redacted\":true}\n") &&
            strstr(r.body.data,
                   "\"event_id\":\"e2\",\"session_id\":\"flags\",\"data\":{\"x\":\"clean\"},\"prev_hash\"") &&
            strstr(r.body.data,
                   "\"data\":{\"Password\":[\"[REDACTED:sensitive]\",{\"k\":\"[REDACTED_EMAIL]\"}]},"
                   "\"prev_hash\":\""),
        "flags kept, set, not invented: %s", r.body.data);
    CHECK(r.body.data && strstr(r.body.data, "\"prev_hash\":\"") &&
              strstr(strrchr(r.body.data, '{') ? r.body.data : "", "\"redacted\":true}\n"),
          "the redacted event is flagged");
    at_buf_fini(&r.body);
    CHECK(stop(&c, SIGTERM) == 0, "collector server exits 0");

    /* AGENT_TRACE_NO_REDACT=1 turns it off for the whole server */
    daemon_t off;
    if (start(&off, "env-off", "AGENT_TRACE_NO_REDACT=1", NULL)) {
        char *data = fixture("tests/fixtures/claude-edge/secrets.jsonl", &n);
        http(&off, "POST", "/import?source=secrets.jsonl", data, n, NULL, SEND_CHUNKED, &r);
        CHECK(r.status == 201, "env-off upload: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        free(data);
        snprintf(a, sizeof a, "%s/%s/events.ndjson", stored(&off), sid);
        snprintf(b, sizeof b, "%s",
                 t_src("tests/fixtures/expected-edge/0e0e0e0e-0000-4000-8000-000000000006/events.ndjson"));
        CHECK(files_equal(b, a), "AGENT_TRACE_NO_REDACT=1: secrets kept as the reference keeps them");
        CHECK(log_has(&off, "redaction off"), "the start line says redaction is off");
        CHECK(stop(&off, SIGTERM) == 0, "env-off server exits 0");
    } else {
        CHECK(0, "env-off server did not start");
    }
    free(plain);
    free(rmeta);
}

static char *fixture(const char *rel, size_t *n)
{
    char *p = t_read_file(t_src(rel), n);
    if (!p) {
        fprintf(stderr, "cannot read %s\n", rel);
        exit(99);
    }
    return p;
}

static void test_reupload_gzip_grow(daemon_t *d)
{
    size_t n, gz_n;
    char *data = fixture("tests/fixtures/claude/short.jsonl", &n);
    reply r;
    char first[128], second[128];

    /* identical bytes again: 200, same digest */
    http(d, "POST", "/import?source=short.jsonl", data, n, NULL, SEND_LENGTH, &r);
    CHECK(r.status == 200, "re-upload: %ld %s", r.status, r.body.data);
    CHECK(!body_has(&r, "replaced"), "re-upload has no replaced: %s", r.body.data);
    json_str(&r, "events_sha256", first, sizeof first);
    at_buf_fini(&r.body);

    /* gzip, chunked: the same events */
    char *gz = gzip_bytes(data, n, &gz_n);
    const char *gzh[] = {"Content-Encoding: gzip", NULL};
    http(d, "POST", "/import?source=short.jsonl", gz, gz_n, gzh, SEND_CHUNKED, &r);
    CHECK(r.status == 200, "gzip re-upload: %ld %s", r.status, r.body.data);
    json_str(&r, "events_sha256", second, sizeof second);
    CHECK(strcmp(first, second) == 0 && first[0], "gzip gives the same digest: %s %s", first, second);
    at_buf_fini(&r.body);
    /* two gzip members back to back are one valid gzip stream */
    size_t h1 = n / 2;
    while (h1 < n && data[h1 - 1] != '\n')
        h1++;
    size_t g1n, g2n;
    char *g1 = gzip_bytes(data, h1, &g1n), *g2 = gzip_bytes(data + h1, n - h1, &g2n);
    char *cat = malloc(g1n + g2n);
    memcpy(cat, g1, g1n);
    memcpy(cat + g1n, g2, g2n);
    http(d, "POST", "/import?source=short.jsonl", cat, g1n + g2n, gzh, SEND_LENGTH, &r);
    CHECK(r.status == 200, "multi-member gzip: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    /* truncated gzip */
    http(d, "POST", "/import?source=short.jsonl", gz, gz_n / 2, gzh, SEND_LENGTH, &r);
    CHECK(r.status == 400, "truncated gzip: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    free(g1);
    free(g2);
    free(cat);

    /* an older snapshot (the first half of the lines) changes nothing ... */
    http(d, "POST", "/import?source=short.jsonl", data, h1, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 200 && body_has(&r, "\"result\": \"unchanged\", \"version\": 1") &&
              body_has(&r, "\"stale\": true"),
          "older snapshot: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    /* ... other content replaces it, and the old version stays addressable */
    char *other = malloc(n);
    memcpy(other, data, n);
    char *hit = strstr(other, "\"text\":\"");
    CHECK(hit != NULL, "a text to change");
    if (hit)
        hit[8] = hit[8] == 'X' ? 'Y' : 'X';
    http(d, "POST", "/import?source=short.jsonl", other, n, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 201 && body_has(&r, "\"result\": \"replaced\", \"version\": 2") &&
              body_has(&r, "\"previous_head\": \""),
          "changed transcript: %ld %s", r.status, r.body.data);
    json_str(&r, "events_sha256", second, sizeof second);
    at_buf_fini(&r.body);
    free(other);
    http(d, "PUT", "/import/?source=short.jsonl", data, n, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 201 && body_has(&r, "\"result\": \"replaced\", \"version\": 3"),
          "back to the first: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    char path[256];
    snprintf(path, sizeof path, "/objects/sha256/%s", second);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && r.body.len > 0, "old object: %ld", r.status);
    char want_etag[100];
    snprintf(want_etag, sizeof want_etag, "\"%s\"", second);
    CHECK(strcmp(r.etag, want_etag) == 0, "ETag %s", r.etag);
    uint8_t dg[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot(r.body.data ? r.body.data : "", r.body.len, dg);
    at_hex(dg, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, second) == 0, "the object's bytes hash to its name");
    at_buf_fini(&r.body);
    char inm[160];
    snprintf(inm, sizeof inm, "If-None-Match: \"%s\"", second);
    const char *inmh[] = {inm, NULL};
    http(d, "GET", path, NULL, 0, inmh, 0, &r);
    CHECK(r.status == 304, "If-None-Match: %ld", r.status);
    at_buf_fini(&r.body);
    char a[4400];
    snprintf(a, sizeof a, "%s/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson", stored(d));
    CHECK(files_equal(t_src("tests/fixtures/expected/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson"), a),
          "the stored events are the reference again");
    /* a grown transcript extends: a fresh store, half then whole */
    daemon_t g;
    if (start(&g, "grow", NULL, NULL)) {
        http(&g, "POST", "/import?source=short.jsonl", data, h1, NULL, SEND_CHUNKED, &r);
        CHECK(r.status == 201 && body_has(&r, "\"result\": \"created\", \"version\": 1") &&
                  body_has(&r, "\"previous_head\": null"),
              "half: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        http(&g, "POST", "/import?source=short.jsonl", data, n, NULL, SEND_CHUNKED, &r);
        CHECK(r.status == 201 && body_has(&r, "\"result\": \"extended\", \"version\": 2"), "grown: %ld %s",
              r.status, r.body.data);
        at_buf_fini(&r.body);
        snprintf(a, sizeof a, "%s/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson", stored(&g));
        CHECK(files_equal(t_src("tests/fixtures/expected/55604662-cf2a-4331-851a-ec234028f8ca/events.ndjson"),
                          a),
              "extended events equal a direct import");
        CHECK(stop(&g, SIGTERM) == 0, "grow server exits 0");
    } else {
        CHECK(0, "grow server did not start");
    }
    free(gz);
    free(data);
}

static void test_errors(daemon_t *d)
{
    reply r;
    size_t n, gz_n;
    char *data = fixture("tests/fixtures/claude-edge/tools.jsonl", &n);

    http(d, "POST", "/import", "", 0, NULL, SEND_LENGTH, &r);
    CHECK(r.status == 400 && body_has(&r, "{\"error\": "), "empty: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(d, "POST", "/import", "", 0, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 400, "empty chunked: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);

    char *bad = malloc(n + 16);
    memcpy(bad, data, n);
    memcpy(bad + 100, "\xff\xfe", 2);
    http(d, "POST", "/import", bad, n, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 422 && body_has(&r, "100"), "invalid UTF-8: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    free(bad);

    const char *br[] = {"Content-Encoding: br", NULL};
    http(d, "POST", "/import", data, n, br, SEND_LENGTH, &r);
    CHECK(r.status == 415 && body_has(&r, "{\"error\": "), "br: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    const char *gzh[] = {"Content-Encoding: gzip", NULL};
    http(d, "POST", "/import", data, n, gzh, SEND_LENGTH, &r);
    CHECK(r.status == 400, "not gzip: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    CHECK(tmp_clean(d), "staging files left after errors");

    /* a server with a small limit: 413 by Content-Length, chunked, and gzip */
    daemon_t small;
    const char *args[] = {"--max-upload", "4K", NULL};
    if (start(&small, "small", NULL, args)) {
        http(&small, "POST", "/import", data, n, NULL, SEND_LENGTH, &r);
        CHECK(r.status == 413, "413 by length: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        http(&small, "POST", "/import", data, n, NULL, SEND_CHUNKED, &r);
        CHECK(r.status == 413, "413 chunked: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        char *gz = gzip_bytes(data, n, &gz_n);
        CHECK(gz_n < 4096, "gzip is under the limit (%zu)", gz_n);
        http(&small, "POST", "/import", gz, gz_n, gzh, SEND_LENGTH, &r);
        CHECK(r.status == 413, "413 after decompression: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        free(gz);
        http(&small, "POST", "/events", data, n, NULL, SEND_CHUNKED, &r);
        CHECK(r.status == 413, "413 for POST /events: %ld %s", r.status, r.body.data);
        at_buf_fini(&r.body);
        CHECK(tmp_clean(&small), "staging files left after 413");
        char sess[4400];
        snprintf(sess, sizeof sess, "%s/0e0e0e0e-0000-4000-8000-000000000002", stored(&small));
        CHECK(access(sess, F_OK) != 0, "no session after 413");
        CHECK(stop(&small, SIGINT) == 0, "SIGINT exits 0");
    } else {
        CHECK(0, "small server did not start");
    }
    free(data);
}

static int raw_connect(daemon_t *d)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)d->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        close(s);
        return -1;
    }
    struct timeval tv = {20, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

static bool send_all(int s, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(s, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Waits up to 5 s for a staging file to appear. */
static bool stage_appears(daemon_t *d)
{
    for (int i = 0; i < 500; i++) {
        if (tmp_files(d) > 0)
            return true;
        usleep(10000);
    }
    return false;
}

static void test_disconnect(daemon_t *d)
{
    size_t n;
    char *data = fixture("tests/fixtures/claude/subagent.jsonl", &n);
    for (int variant = 0; variant < 2; variant++) {
        int s = raw_connect(d);
        CHECK(s >= 0, "connect");
        if (s < 0)
            break;
        char hdr[256];
        if (variant == 0)
            snprintf(hdr, sizeof hdr,
                     "POST /import?source=cut.jsonl HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
        else
            snprintf(hdr, sizeof hdr,
                     "POST /import?source=cut.jsonl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "8000\r\n");
        send_all(s, hdr, strlen(hdr));
        send_all(s, data, 32768);
        CHECK(stage_appears(d), "variant %d: the upload is being staged", variant);
        close(s);
        /* libmicrohttpd usually reports the disconnect at once; sometimes
         * (a chunked body cut at a chunk boundary) only when the connection
         * times out (--timeout 5 for this daemon) */
        CHECK(tmp_clean_within(d, 12), "variant %d: staging file removed after disconnect", variant);
    }
    reply r;
    http(d, "GET", "/health", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200, "health after disconnects: %ld", r.status);
    at_buf_fini(&r.body);
    free(data);
}

/* Sets the mtime of every entry of the staging directory back by secs. */
static void age_tmp(daemon_t *d, int secs)
{
    DIR *dir = opendir(d->tmp);
    struct dirent *e;
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    while (dir && (e = readdir(dir)))
        if (e->d_name[0] != '.')
            utimensat(dirfd(dir), e->d_name, ts, AT_SYMLINK_NOFOLLOW);
    if (dir)
        closedir(dir);
}

/* A server killed (SIGKILL) in the middle of an upload leaves its staging
 * file; the next start removes it, and nothing of the upload is visible. A
 * staging file that a live process holds is never removed. */
static void test_killed_upload(void)
{
    daemon_t d;
    if (!start(&d, "killed", NULL, NULL)) {
        CHECK(0, "server did not start");
        return;
    }
    size_t n;
    char *data = fixture("tests/fixtures/claude/subagent.jsonl", &n);
    int s = raw_connect(&d);
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "POST /import?source=killed.jsonl HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    CHECK(s >= 0 && send_all(s, hdr, strlen(hdr)) && send_all(s, data, n / 2), "half an upload sent");
    CHECK(stage_appears(&d), "the upload is being staged");
    CHECK(stop(&d, SIGKILL) == 128 + SIGKILL, "killed");
    if (s >= 0)
        close(s);
    CHECK(tmp_files(&d) == 1, "the killed upload left its staging file (%d)", tmp_files(&d));

    reply r;
    if (pgurl) {
        /* a replica's staging files are its own ($TMPDIR), each locked by
         * its writer: a restart removes a dead writer's at once */
        CHECK(start(&d, "killed", NULL, NULL), "restart");
        http(&d, "GET", "/health", NULL, 0, NULL, 0, &r);
        at_buf_fini(&r.body);
        CHECK(tmp_clean(&d), "the dead upload's staging file is removed (%d left)", tmp_files(&d));
    } else {
        /* a restart right away keeps entries younger than a minute */
        CHECK(start(&d, "killed", NULL, NULL), "restart");
        CHECK(tmp_files(&d) == 1, "a fresh staging file is not swept");
        CHECK(stop(&d, SIGTERM) == 0, "stopped");

        /* later (aged by hand), the next start sweeps it, and a session a
         * killed writer was building aside */
        char built[4500], f[4600];
        snprintf(built, sizeof built, "%s/.agent-traced/tmp/session-dead01", d.storage);
        snprintf(f, sizeof f, "%s/meta.json", built);
        CHECK(mkdir(built, 0700) == 0, "a session built aside");
        FILE *mf = fopen(f, "w");
        if (mf)
            fclose(mf);
        age_tmp(&d, 7200);
        CHECK(start(&d, "killed", NULL, NULL), "second restart");
        http(&d, "GET", "/health", NULL, 0, NULL, 0, &r); /* the sweep runs before requests are counted */
        at_buf_fini(&r.body);
        CHECK(tmp_clean(&d), "the dead upload's staging file and session are removed (%d left)", tmp_files(&d));
    }
    http(&d, "GET", "/sessions", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && strcmp(r.body.data, "[]") == 0, "nothing of it stored: %s", r.body.data);
    at_buf_fini(&r.body);

    /* an upload in progress on a live server survives another process's sweep */
    s = raw_connect(&d);
    CHECK(s >= 0 && send_all(s, hdr, strlen(hdr)) && send_all(s, data, n / 2), "second half upload");
    CHECK(stage_appears(&d), "staged again");
    age_tmp(&d, 120);
    daemon_t other;
    bool up = start(&other, "killed", NULL, NULL); /* same storage, a second server */
    CHECK(up, "a second server on the same storage");
    if (up)
        CHECK(stop(&other, SIGTERM) == 0, "second server stopped");
    CHECK(tmp_files(&d) == 1, "a staging file held by a live upload is kept");
    CHECK(s >= 0 && send_all(s, data + n / 2, n - n / 2), "rest of the upload");
    char buf[2048];
    ssize_t k = s >= 0 ? recv(s, buf, sizeof buf - 1, 0) : -1;
    buf[k > 0 ? k : 0] = 0;
    CHECK(k > 0 && strncmp(buf, "HTTP/1.1 201", 12) == 0, "the upload still completes: %.40s", buf);
    if (s >= 0)
        close(s);
    free(data);
    CHECK(stop(&d, SIGTERM) == 0, "exits 0");
    char *log = t_read_file(d.log, NULL);
    CHECK(log && strstr(log, pgurl ? "removed 1 staging entries left by killed writers"
                                   : "removed 2 staging entries left by killed writers"),
          "the sweep is logged");
    free(log);
}

/* A client that keeps trickling its body is cut off by --request-timeout
 * (the idle --timeout never fires), and its upload leaves nothing. */
static void test_request_timeout(void)
{
    daemon_t d;
    const char *args[] = {"--timeout", "30", "--request-timeout", "1", NULL};
    if (!start(&d, "slow", NULL, args)) {
        CHECK(0, "slow server did not start");
        return;
    }
    size_t n;
    char *data = fixture("tests/fixtures/claude/subagent.jsonl", &n);
    int s = raw_connect(&d);
    CHECK(s >= 0, "connect");
    const char *hdr = "POST /import?source=slow.jsonl HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    bool sent = s >= 0 && send_all(s, hdr, strlen(hdr));
    CHECK(sent, "headers sent");
    /* 64 bytes every 100 ms: well within the idle timeout, for up to 10 s */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool closed = false;
    for (size_t off = 0, k = 0; sent && k < 100 && off + 64 <= n; k++, off += 64) {
        char chunk[80];
        snprintf(chunk, sizeof chunk, "40\r\n");
        if (!send_all(s, chunk, strlen(chunk)) || !send_all(s, data + off, 64) || !send_all(s, "\r\n", 2)) {
            closed = true;
            break;
        }
        struct pollfd pfd = {s, POLLIN, 0};
        if (poll(&pfd, 1, 100) > 0) {
            char b[512];
            if (recv(s, b, sizeof b, MSG_DONTWAIT) <= 0) {
                closed = true;
                break;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(closed, "the trickling upload was cut off");
    CHECK(closed && secs >= 0.9 && secs < 8, "cut off after %.1f s (limit 1 s)", secs);
    if (s >= 0)
        close(s);
    CHECK(tmp_clean(&d), "no staging file left after the timeout");
    reply r;
    http(&d, "GET", "/sessions", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && strcmp(r.body.data, "[]") == 0, "nothing stored: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    /* a normal upload on the same server is not affected */
    http(&d, "POST", "/import?source=subagent.jsonl", data, n, NULL, 0, &r);
    CHECK(r.status == 201, "a prompt upload still works: %ld", r.status);
    at_buf_fini(&r.body);
    free(data);
    CHECK(stop(&d, SIGTERM) == 0, "slow server exits 0");
    char *log = t_read_file(d.log, NULL);
    const char *line = log ? strstr(log, "POST /import 0 0 ") : NULL;
    const char *eol = line ? strchr(line, '\n') : NULL;
    CHECK(line && eol && eol - line > 10 && memcmp(eol - 10, " timed out", 10) == 0,
          "the log line says the request timed out");
    free(log);
}

static void test_auth(void)
{
    daemon_t d;
    const char *key = "ast_0123456789abcdef0123456789abcdef";
    const char *args[] = {"--auth-key", key, NULL};
    if (!start(&d, "auth", "AGENT_STRACE_AUTH_KEY=ast_ignored_when_flags_given", args)) {
        CHECK(0, "auth server did not start");
        return;
    }
    char good[128], partial[128], nobearer[128], longer[128];
    snprintf(good, sizeof good, "Authorization: Bearer %s", key);
    snprintf(partial, sizeof partial, "Authorization: Bearer %.*s", (int)strlen(key) - 1, key);
    snprintf(longer, sizeof longer, "Authorization: Bearer %sa", key);
    snprintf(nobearer, sizeof nobearer, "Authorization: %s", key);
    const char *cases[][2] = {
        {NULL, "missing"},
        {"Authorization: Bearer ast_ffffffffffffffffffffffffffffffff", "wrong"},
        {partial, "partial"},
        {longer, "longer"},
        {nobearer, "no Bearer prefix"},
        {"Authorization: Bearer ast_ignored_when_flags_given", "env key with --auth-key"},
        {"Authorization: Bearer ", "empty"},
    };
    reply r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *h[] = {cases[i][0], NULL};
        http(&d, "GET", "/health", NULL, 0, cases[i][0] ? h : NULL, 0, &r);
        CHECK(r.status == 401 && r.body.data && strcmp(r.body.data, "{\"error\": \"Unauthorized\"}") == 0,
              "%s: %ld %s", cases[i][1], r.status, r.body.data);
        at_buf_fini(&r.body);
    }
    const char *nok[] = {"Authorization: Bearer nope", NULL};
    http(&d, "GET", "/no/such/path", NULL, 0, nok, 0, &r);
    CHECK(r.status == 401, "unknown path without auth: %ld", r.status);
    at_buf_fini(&r.body);
    size_t n;
    char *data = fixture("tests/fixtures/claude-edge/tools.jsonl", &n);
    http(&d, "POST", "/import", data, n, nok, SEND_CHUNKED, &r);
    CHECK(r.status == 401, "upload without auth: %ld", r.status);
    at_buf_fini(&r.body);
    CHECK(tmp_clean(&d), "no staging after 401");
    const char *ok[] = {good, NULL};
    http(&d, "GET", "/health", NULL, 0, ok, 0, &r);
    CHECK(r.status == 200, "good key: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(&d, "POST", "/import?source=tools.jsonl", data, n, ok, SEND_CHUNKED, &r);
    CHECK(r.status == 201, "upload with auth: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    CHECK(stop(&d, SIGTERM) == 0, "auth server exits 0");

    /* keys from the environment, comma-separated */
    if (start(&d, "auth-env", "AGENT_STRACE_AUTH_KEY=ast_k1, ast_k2", NULL)) {
        const char *k1[] = {"Authorization: Bearer ast_k1", NULL},
                   *k2[] = {"Authorization: Bearer ast_k2", NULL};
        http(&d, "GET", "/health", NULL, 0, k1, 0, &r);
        CHECK(r.status == 200, "env key 1: %ld", r.status);
        at_buf_fini(&r.body);
        http(&d, "GET", "/health", NULL, 0, k2, 0, &r);
        CHECK(r.status == 200, "env key 2: %ld", r.status);
        at_buf_fini(&r.body);
        http(&d, "GET", "/health", NULL, 0, NULL, 0, &r);
        CHECK(r.status == 401, "env keys: missing: %ld", r.status);
        at_buf_fini(&r.body);
        CHECK(stop(&d, SIGTERM) == 0, "auth-env server exits 0");
    } else {
        CHECK(0, "auth-env server did not start");
    }
    free(data);
}

/* ---- concurrency ----------------------------------------------------------- */

typedef struct {
    daemon_t *d;
    const char *file;
    int reader;
    int failures;
} worker;

static void *work_fn(void *arg)
{
    worker *w = arg;
    reply r;
    if (w->reader) {
        for (int i = 0; i < 40; i++) {
            http(w->d, "GET", i % 2 ? "/sessions" : "/health", NULL, 0, NULL, 0, &r);
            if (r.status != 200)
                w->failures++;
            at_buf_fini(&r.body);
        }
        return NULL;
    }
    size_t n = 0;
    char *data = t_read_file(t_src(w->file), &n);
    char path[512];
    import_path(path, sizeof path, base(w->file));
    for (int i = 0; i < 2; i++) {
        http(w->d, "POST", path, data, n, NULL, SEND_CHUNKED, &r);
        if (r.status != 200 && r.status != 201) {
            fprintf(stderr, "concurrent %s: %ld %s\n", w->file, r.status, r.body.data);
            w->failures++;
        }
        at_buf_fini(&r.body);
    }
    free(data);
    return NULL;
}

static void test_concurrency(void)
{
    daemon_t d;
    if (!start(&d, "concurrent", NULL, NULL)) {
        CHECK(0, "concurrency server did not start");
        return;
    }
    const char *files[] = {"tests/fixtures/claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl",
                           "tests/fixtures/claude/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
                           "tests/fixtures/claude/subagent.jsonl", "tests/fixtures/claude/tool_heavy.jsonl"};
    worker w[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker){&d, i < 4 ? files[i] : NULL, i >= 4, 0};
        pthread_create(&th[i], NULL, work_fn, &w[i]);
    }
    int fails = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        fails += w[i].failures;
    }
    CHECK(fails == 0, "%d concurrent requests failed", fails);
    char a[4400];
    snprintf(a, sizeof a, "%s/258c7280-ae70-4798-800f-63464d01a85d/events.ndjson", stored(&d));
    CHECK(
        files_equal(
            t_src("tests/fixtures/expected-redacted/258c7280-ae70-4798-800f-63464d01a85d/events.ndjson"), a),
        "concurrent upload stored the reference bytes");
    CHECK(tmp_clean(&d), "no staging after concurrent uploads");
    CHECK(stop(&d, SIGTERM) == 0, "concurrency server exits 0");
}

/* ---- the other routes ---------------------------------------------------- */

static void test_routes(daemon_t *d)
{
    reply r;
    const char *sid = "0e0e0e0e-0000-4000-8000-000000000002";
    char path[512];
    http(d, "GET", "/health/?x=1", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, "\"status\": \"ok\""), "health with / and query: %ld %s", r.status,
          r.body.data);
    at_buf_fini(&r.body);
    http(d, "GET", "/health//", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 404, "two trailing slashes: %ld", r.status);
    at_buf_fini(&r.body);
    http(d, "GET", "/nope?format=text", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 404 && r.body.data && strcmp(r.body.data, "{\"error\": \"not found\"}") == 0,
          "404: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(d, "DELETE", "/sessions", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 405 && body_has(&r, "{\"error\": "), "405: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(d, "GET", "/import", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 405, "GET /import: %ld", r.status);
    at_buf_fini(&r.body);
    http(d, "GET", "/sessions", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && r.body.data && r.body.data[0] == '[', "list: %ld", r.status);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, sid), "session: %ld", r.status);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/events", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    char want[4400];
    snprintf(want, sizeof want, "%s/%s/events.ndjson", t_src("tests/fixtures/expected-edge-redacted"), sid);
    size_t wn;
    char *w = t_read_file(want, &wn);
    CHECK(r.status == 200 && w && r.body.len == wn && memcmp(r.body.data, w, wn) == 0, "events: %ld",
          r.status);
    at_buf_fini(&r.body);

    snprintf(path, sizeof path, "/sessions/%s/verify", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, "\"ok\": true") && body_has(&r, "\"object_ok\": true") &&
              body_has(&r, "\"total_events\": 15") && body_has(&r, "\"broken_at\": null") &&
              body_has(&r, "\"head\": \""),
          "verify: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/verify?mode=legacy", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200, "verify legacy: %ld", r.status);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/verify?mode=bogus", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 400, "verify bogus mode: %ld", r.status);
    at_buf_fini(&r.body);
    http(d, "POST", "/verify", w, wn, NULL, SEND_CHUNKED, &r);
    CHECK(r.status == 200 && body_has(&r, "\"ok\": true") && !body_has(&r, "session_id") &&
              !body_has(&r, "object_ok"),
          "POST /verify: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    http(d, "GET", "/sessions/nonexistent-session/verify", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 404, "verify unknown: %ld", r.status);
    at_buf_fini(&r.body);

    snprintf(path, sizeof path, "/sessions/%s/tree", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, "\"root_session_id\""), "tree: %ld", r.status);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/tree?format=text", sid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, "Session tree for "), "tree text: %ld", r.status);
    at_buf_fini(&r.body);

    /* event lookup: the first event of the session */
    /* the last line (session_end) has an id of its own; the first ones are
     * shared by several edge fixtures (409 for /events/{id}) */
    char eid[64] = "";
    const char *p = NULL;
    for (const char *q = w; q && (q = strstr(q, "\"event_id\":\"")); q++)
        p = q;
    if (p)
        snprintf(eid, sizeof eid, "%.12s", p + 12);
    snprintf(path, sizeof path, "/events/%s", eid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 && body_has(&r, "\"line\": 14"), "event %s: %ld %s", eid, r.status, r.body.data);
    at_buf_fini(&r.body);
    snprintf(path, sizeof path, "/sessions/%s/events/%s", sid, eid);
    http(d, "GET", path, NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200, "session event: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
    free(w);

    http(d, "GET", "/objects/sha256/xyz", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 400, "malformed object digest: %ld", r.status);
    at_buf_fini(&r.body);
    http(d, "GET",
         "/objects/sha256/"
         "0000000000000000000000000000000000000000000000000000000000000000",
         NULL, 0, NULL, 0, &r);
    CHECK(r.status == 404, "missing object: %ld", r.status);
    at_buf_fini(&r.body);

    http(d, "POST", "/sessions", "{\"session_id\": \"posted-1\", \"agent_name\": \"t\"}", 45, NULL,
         SEND_LENGTH, &r);
    CHECK(r.status == 200 && body_has(&r, "\"status\": \"ok\""), "POST /sessions: %ld %s", r.status,
          r.body.data);
    at_buf_fini(&r.body);
    http(d, "POST", "/events", "", 0, NULL, SEND_LENGTH, &r);
    CHECK(r.status == 200 && body_has(&r, "\"accepted\": 0"), "POST /events empty: %ld %s", r.status,
          r.body.data);
    at_buf_fini(&r.body);

    http(d, "GET", "/metrics", NULL, 0, NULL, 0, &r);
    CHECK(r.status == 200 &&
              body_has(&r, "agent_traced_requests_total{route=\"POST /import\",status=\"201\"}") &&
              body_has(&r, "agent_traced_import_duration_seconds_bucket") &&
              body_has(&r, "agent_traced_open_connections") &&
              body_has(&r, "agent_traced_import_events_total") &&
              body_has(&r, "agent_traced_index_available 1\n") &&
              body_has(&r, "agent_traced_index_pending_imports ") &&
              body_has(&r, "agent_traced_tree_cost_total{how=\"counted\"} "),
          "metrics: %ld %s", r.status, r.body.data);
    at_buf_fini(&r.body);
}

/* In-flight requests finish after SIGTERM. */
static void test_graceful(daemon_t *d)
{
    size_t n;
    char *data = fixture("tests/fixtures/claude-edge/tools.jsonl", &n);
    int s = raw_connect(d);
    CHECK(s >= 0, "connect");
    if (s < 0) {
        free(data);
        return;
    }
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "POST /import?source=tools.jsonl HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    send_all(s, hdr, strlen(hdr));
    send_all(s, data, n / 2);
    CHECK(stage_appears(d), "graceful: staged");
    kill(d->pid, SIGTERM);
    usleep(200000);
    send_all(s, data + n / 2, n - n / 2);
    char resp[4096];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof resp - 1 && (k = recv(s, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)k;
    resp[got] = 0;
    CHECK(strncmp(resp, "HTTP/1.1 20", 11) == 0, "in-flight upload answered after SIGTERM: [%.40s]", resp);
    close(s);
    CHECK(stop(d, SIGTERM) == 0, "SIGTERM exits 0");
    free(data);
}

/* ---- the route table vs openapi.yaml --------------------------------------- */

/* "METHOD pattern" of route i as openapi.yaml writes it: a {name*}
 * parameter (the rest of the path) is {name} in an OpenAPI path. */
static void route_key(size_t i, char *out, size_t n)
{
    snprintf(out, n, "%s %s", http_routes[i].method, http_routes[i].pattern);
    char *star = strstr(out, "*}");
    if (star)
        memmove(star, star + 1, strlen(star + 1) + 1);
}

static void test_openapi(void)
{
    size_t n;
    char *y = t_read_file(t_src("openapi.yaml"), &n);
    CHECK(y != NULL, "openapi.yaml readable");
    if (!y)
        return;
    char found[64][96];
    size_t nf = 0;
    char cur[96] = "";
    bool in_paths = false;
    for (char *line = y; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len >= 6 && strncmp(line, "paths:", 6) == 0)
            in_paths = true;
        else if (len && line[0] != ' ' && line[0] != '#')
            in_paths = false;
        if (in_paths && len > 3 && strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            snprintf(cur, sizeof cur, "%.*s", (int)(len - 3), line + 2);
        } else if (in_paths && cur[0] && len > 5 && strncmp(line, "    ", 4) == 0 && line[4] != ' ') {
            static const char *const methods[] = {"get", "post", "put", "delete", "patch", "head"};
            for (size_t m = 0; m < 6; m++) {
                size_t ml = strlen(methods[m]);
                if (len == 4 + ml + 1 && strncmp(line + 4, methods[m], ml) == 0 && line[4 + ml] == ':' &&
                    nf < 64) {
                    char up[8];
                    for (size_t i = 0; i <= ml; i++)
                        up[i] = (char)(methods[m][i] >= 'a' ? methods[m][i] - 32 : methods[m][i]);
                    snprintf(found[nf++], sizeof found[0], "%s %s", up, cur);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(y);
    for (size_t i = 0; i < http_nroutes; i++) {
        char want[96];
        route_key(i, want, sizeof want);
        bool ok = false;
        for (size_t j = 0; j < nf; j++)
            ok |= strcmp(found[j], want) == 0;
        CHECK(ok, "route %s is not in openapi.yaml", want);
    }
    for (size_t j = 0; j < nf; j++) {
        bool ok = false;
        for (size_t i = 0; i < http_nroutes; i++) {
            char want[96];
            route_key(i, want, sizeof want);
            ok |= strcmp(found[j], want) == 0;
        }
        CHECK(ok, "openapi.yaml has %s, which the server does not answer", found[j]);
    }
    CHECK(nf == http_nroutes, "openapi: %zu operations, route table: %zu", nf, http_nroutes);
}

static void test_keygen(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' keygen", bin);
    char a[128] = "", b[128] = "";
    FILE *f = popen(cmd, "r");
    if (f) {
        if (!fgets(a, sizeof a, f))
            a[0] = 0;
        pclose(f);
    }
    f = popen(cmd, "r");
    if (f) {
        if (!fgets(b, sizeof b, f))
            b[0] = 0;
        pclose(f);
    }
    bool shape = strlen(a) == 37 && strncmp(a, "ast_", 4) == 0 && a[36] == '\n';
    for (int i = 4; shape && i < 36; i++)
        shape = (a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f');
    CHECK(shape, "keygen: [%s]", a);
    CHECK(strcmp(a, b) != 0, "two keys differ");
}

int main(void)
{
    const char *top = getenv("top_builddir");
    snprintf(bin, sizeof bin, "%s/agent-traced", top ? top : ".");
    signal(SIGPIPE, SIG_IGN);
    test_openapi();
    if (access(bin, X_OK) != 0) {
        printf("test_http: %s missing, skipped\n", bin);
        return 77;
    }
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 99;
    }
    setenv("TZ", "UTC", 1);
    if (!daemon_setup(bin, work)) {
        CHECK(0, "log keygen failed");
        return t_done("test_http_db");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_keygen();
    daemon_t d;
    const char *main_args[] = {"--timeout", "5", NULL};
    if (!start(&d, "main", NULL, main_args)) {
        CHECK(0, "server did not start");
        return t_done("test_http");
    }
    test_fixtures(&d, true);
    test_redaction(&d);
    daemon_t plain;
    const char *plain_args[] = {"--no-redact", NULL};
    if (start(&plain, "plain", NULL, plain_args)) {
        test_fixtures(&plain, false);
        CHECK(stop(&plain, SIGTERM) == 0, "--no-redact server exits 0");
    } else {
        CHECK(0, "--no-redact server did not start");
    }
    test_reupload_gzip_grow(&d);
    test_errors(&d);
    test_disconnect(&d);
    test_routes(&d);
    test_graceful(&d);
    test_auth();
    test_request_timeout();
    test_killed_upload();
    test_concurrency();
    curl_global_cleanup();
    int rc = t_done(pgurl ? "test_http_db" : "test_http");
    if (rc == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", work);
    } else {
        fprintf(stderr, "test_http: logs and storage kept in %s\n", work);
    }
    return rc;
}
