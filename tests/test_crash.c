/* test_crash.c - SIGKILL loses nothing acknowledged and leaves nothing
 * behind.
 *
 *   1. chaos: client threads append (POST /events, every event id recorded
 *      when the answer is 2xx), upload transcripts (full and incremental),
 *      and append to events.ndjson the way agent-strace does, while the
 *      daemon is SIGKILLed at random moments (fixed seed) and restarted on
 *      the same storage. Then: every acknowledged event is in its session's
 *      current events; every version of every session is numbered 1..n,
 *      served with the bytes of its digest and verifies; every imported
 *      version holds exactly the direct import of the transcript bytes it
 *      records; after leftovers are made to look old, a restart and a gc,
 *      no staging or temporary file and no unreferenced object is left.
 *   2. crash points, reproduced exactly: the storage as a SIGKILL at one
 *      point of a commit leaves it, then what the next requests make of it.
 *   3. SIGKILL during `agent-traced gc` on a big storage: no object a
 *      listed version needs is ever lost. */
#include "testlib.h"

#include "agenttrace/buf.h"
#include "agenttrace/importer.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "agenttrace/verify.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bin[4096];
static char work[] = "/tmp/test_crash.XXXXXX";

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- files ---------------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *read_file(const char *path, size_t *n)
{
    *n = 0;
    return t_read_file(path, n);
}

static bool write_file(const char *path, const char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    bool ok = at_write_all(fd, p, n) == AT_OK;
    close(fd);
    return ok;
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void sha_hex(const void *p, size_t n, char hex[AT_SHA256_HEX])
{
    uint8_t d[AT_SHA256_LEN];
    at_sha256_oneshot(p, n, d);
    at_hex(d, AT_SHA256_LEN, hex);
}

static bool same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return a && b && an == bn && memcmp(a, b, an) == 0;
}

static bool has(const char *hay, size_t n, const char *needle)
{
    return hay && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* What Python's open(path, "a").write(line + "\n") does: O_APPEND, one write. */
static bool append_line(const char *path, const char *line)
{
    size_t n = strlen(line);
    char *b = malloc(n + 2);
    memcpy(b, line, n);
    b[n] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    bool ok = fd >= 0 && write(fd, b, n + 1) == (ssize_t)(n + 1);
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    free(b);
    return ok;
}

/* The line agent-strace appends: a TraceEvent chained to the file's last line. */
static char *chained_line(const char *path, const char *sid, const char *eid)
{
    size_t n;
    char *f = read_file(path, &n);
    size_t e = n;
    while (e && f[e - 1] == '\n')
        e--;
    size_t s = e;
    while (s && f[s - 1] != '\n')
        s--;
    char hex[AT_SHA256_HEX];
    sha_hex(f ? f + s : "", e - s, hex);
    free(f);
    char *line = malloc(1024);
    snprintf(
        line, 1024,
        "{\"event_type\":\"decision\",\"timestamp\":1770000000.5,\"event_id\":\"%s\",\"session_id\":\"%s\","
        "\"data\":{\"by\":\"external\"},\"prev_hash\":\"%s\"}",
        eid, sid, hex);
    return line;
}

/* ---- fixtures and direct imports --------------------------------------------------- */

typedef struct {
    char name[64];
    char *data;
    size_t n;
    char uuid[64]; /* its sessionId */
    size_t *bound; /* line ends */
    size_t nbound;
    size_t named_end; /* the end of the first line naming the session */
} fixture;

static bool load_fixture(fixture *f, const char *rel)
{
    memset(f, 0, sizeof *f);
    const char *slash = strrchr(rel, '/');
    snprintf(f->name, sizeof f->name, "%s", slash ? slash + 1 : rel);
    f->data = read_file(t_src(rel), &f->n);
    if (!f->data || !f->n)
        return false;
    f->bound = malloc((f->n + 1) * sizeof *f->bound);
    for (size_t i = 0; i < f->n; i++)
        if (f->data[i] == '\n')
            f->bound[f->nbound++] = i + 1;
    const char *k = strstr(f->data, "\"sessionId\":\"");
    if (!k)
        return false;
    k += 13;
    const char *e = strchr(k, '"');
    snprintf(f->uuid, sizeof f->uuid, "%.*s", (int)(e - k), k);
    f->named_end = f->n;
    for (size_t i = 0; i < f->nbound; i++)
        if (f->bound[i] > (size_t)(k - f->data)) {
            f->named_end = f->bound[i];
            break;
        }
    return true;
}

/* A copy naming another session (same length: offsets stay): its sessionId
 * ends in tag. *sid gets it. */
static char *variant(const fixture *f, unsigned tag, char *sid, size_t cap)
{
    char *v = malloc(f->n + 1);
    memcpy(v, f->data, f->n + 1);
    size_t ul = strlen(f->uuid);
    char nu[64], t[16];
    snprintf(nu, sizeof nu, "%s", f->uuid);
    snprintf(t, sizeof t, "%06x", tag & 0xffffff);
    memcpy(nu + ul - 6, t, 6);
    for (char *p = v; (p = memmem(p, (size_t)(v + f->n - p), f->uuid, ul)); p += ul)
        memcpy(p, nu, ul);
    snprintf(sid, cap, "%s", nu);
    return v;
}

static int scratch_fd(void)
{
    int fd = memfd_create("test_crash", MFD_CLOEXEC);
    return fd >= 0 ? fd : at_open_tmpfile(NULL);
}

/* The events.ndjson of a direct import of data[0..n) (redacted, as serve
 * does by default); malloc'd. */
static char *direct_events(const char *data, size_t n, const char *source, size_t *out_n)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static at_redact *rd;
    at_error err = {0};
    pthread_mutex_lock(&mu);
    if (!rd)
        rd = at_redact_new(&err);
    int fd = scratch_fd();
    at_import_options o = {.source = source, .out_fd = fd, .redact = rd};
    at_import *im = at_import_new(&o, &err);
    at_import_result res;
    memset(&res, 0, sizeof res);
    char *out = NULL;
    *out_n = 0;
    if (im && at_import_feed(im, data, n, &err) == AT_OK && at_import_finish(im, &res, &err) == AT_OK) {
        struct stat sb;
        fstat(fd, &sb);
        out = malloc((size_t)sb.st_size + 1);
        *out_n = (size_t)pread(fd, out, (size_t)sb.st_size, 0);
    }
    at_import_result_fini(&res);
    at_import_free(im);
    close(fd);
    pthread_mutex_unlock(&mu);
    return out;
}

/* ---- the daemon ----------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    int errfd;
    pthread_t drain;
    bool draining;
    char storage[PATH_MAX];
    char log[PATH_MAX + 8];
} daemon_t;

static void *drain_stderr(void *arg)
{
    daemon_t *d = arg;
    FILE *f = fopen(d->log, "a");
    char b[4096];
    ssize_t k;
    while ((k = read(d->errfd, b, sizeof b)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && f) {
            fwrite(b, 1, (size_t)k, f);
            fflush(f);
        }
    if (f)
        fclose(f);
    return NULL;
}

/* Starts `agent-traced serve --port 0 --storage <storage> extra...`. */
static bool start_at(daemon_t *d, const char *storage_in, const char *const *extra)
{
    char storage[PATH_MAX];
    snprintf(storage, sizeof storage, "%s", storage_in); /* may be d->storage itself */
    d->pid = 0;
    d->port = 0;
    d->draining = false;
    snprintf(d->storage, sizeof d->storage, "%s", storage);
    snprintf(d->log, sizeof d->log, "%s.log", storage);
    int p[2];
    if (pipe(p) < 0)
        return false;
    const char *argv[32] = {bin, "serve", "--port", "0", "--storage", d->storage, "--threads", "4"};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        unsetenv("AGENT_STRACE_AUTH_KEY");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    d->errfd = p[0];
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1) {
        struct pollfd pfd = {d->errfd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t k = read(d->errfd, line + len, 1);
        if (k <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        char rest[2048];
        ssize_t k = read(d->errfd, rest, sizeof rest - 1); /* what it said before it died */
        rest[k > 0 ? k : 0] = 0;
        kill(d->pid, SIGKILL);
        int st = 0;
        waitpid(d->pid, &st, 0);
        fprintf(stderr, "server did not start (%s %d): [%s] %s\n", WIFSIGNALED(st) ? "signal" : "exit",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), line, rest);
        close(d->errfd);
        return false;
    }
    d->port = (int)strtol(colon + 1, NULL, 10);
    d->draining = pthread_create(&d->drain, NULL, drain_stderr, d) == 0;
    return d->port > 0;
}

static bool start(daemon_t *d, const char *name, const char *const *extra)
{
    char storage[PATH_MAX];
    snprintf(storage, sizeof storage, "%s/%s", work, name);
    return start_at(d, storage, extra);
}

/* Sends sig and returns the exit status (-1 if it did not exit in 20 s). */
static int stop(daemon_t *d, int sig)
{
    kill(d->pid, sig);
    int st = 0, rc = -1;
    for (int i = 0; i < 2000; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        usleep(10000);
    }
    if (rc < 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    if (d->draining)
        pthread_join(d->drain, NULL);
    d->draining = false;
    close(d->errfd);
    return rc;
}

/* ---- HTTP with libcurl ----------------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    return at_buf_add(ud, p, size * n) == AT_OK ? size * n : 0;
}

typedef struct {
    long status;
    at_buf body;
    json_t *json;
} reply;

/* A request to 127.0.0.1:port; status < 0 when no answer came (the daemon died). */
static void http_port(int port, const char *method, const char *path, const char *body, size_t n, reply *r)
{
    memset(r, 0, sizeof *r);
    at_buf_init(&r->body, 0);
    CURL *c = curl_easy_init();
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        r->status = -(long)rc;
    curl_easy_cleanup(c);
    if (!r->body.data)
        (void)!at_buf_adds(&r->body, "");
    r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void http(const daemon_t *d, const char *method, const char *path, const char *body, size_t n,
                 reply *r)
{
    http_port(d->port, method, path, body, n, r);
}

static void reply_fini(reply *r)
{
    at_buf_fini(&r->body);
    json_decref(r->json);
    r->json = NULL;
}

static const char *jstr(const reply *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r->json, key));
    return v ? v : "";
}

static long long jint(const reply *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *body_of(const reply *r)
{
    return r->body.data ? r->body.data : "";
}

static long long vint(json_t *v, size_t i, const char *key)
{
    json_t *x = json_object_get(json_array_get(v, i), key);
    return json_is_integer(x) ? json_integer_value(x) : -1;
}

static const char *vstr(json_t *v, size_t i, const char *key)
{
    const char *s = json_string_value(json_object_get(json_array_get(v, i), key));
    return s ? s : "";
}

static json_t *versions_port(int port, const char *sid)
{
    char path[1200];
    snprintf(path, sizeof path, "/sessions/%s/versions", sid);
    reply r;
    http_port(port, "GET", path, NULL, 0, &r);
    json_t *v = r.status == 200 ? json_object_get(r.json, "versions") : NULL;
    if (v)
        json_incref(v);
    reply_fini(&r);
    return v;
}

static json_t *versions(const daemon_t *d, const char *sid)
{
    return versions_port(d->port, sid);
}

static char *get_bytes(const daemon_t *d, const char *path, size_t *n)
{
    reply r;
    http(d, "GET", path, NULL, 0, &r);
    char *p = NULL;
    *n = 0;
    if (r.status == 200)
        p = at_buf_steal(&r.body, n);
    if (r.status == 200 && !p)
        p = strdup("");
    reply_fini(&r);
    return p;
}

static char *get_events(const daemon_t *d, const char *sid, long long version, size_t *n)
{
    char path[1200];
    if (version > 0)
        snprintf(path, sizeof path, "/sessions/%s/events?version=%lld", sid, version);
    else
        snprintf(path, sizeof path, "/sessions/%s/events", sid);
    return get_bytes(d, path, n);
}

/* Every version listed 1..n without gaps, served with the bytes of its
 * digest (?version= and /objects/sha256/), and verifying. Returns the
 * number of problems (each also a failed CHECK). */
static int check_all_versions(const daemon_t *d, const char *sid, const char *what)
{
    int bad = 0;
    json_t *v = versions(d, sid);
    CHECK(v != NULL, "%s: %s: no versions listing", what, sid);
    size_t from = v && json_array_size(v) > 30 ? json_array_size(v) - 30 : 0; /* the rest in-process */
    for (size_t i = 0; v && i < from; i++)
        if (vint(v, i, "version") != (long long)i + 1) {
            CHECK(0, "%s: %s: the listing's version %zu is numbered %lld", what, sid, i + 1,
                  vint(v, i, "version"));
            bad++;
        }
    for (size_t i = from; v && i < json_array_size(v); i++) {
        long long ver = vint(v, i, "version");
        bool numbered = ver == (long long)i + 1;
        CHECK(numbered, "%s: %s: the listing's version %zu is numbered %lld (want 1..n, no gaps)", what, sid,
              i + 1, ver);
        bad += !numbered;
        size_t n, on;
        char *b = get_events(d, sid, ver, &n);
        char hex[AT_SHA256_HEX] = "", path[1400];
        if (b)
            sha_hex(b, n, hex);
        snprintf(path, sizeof path, "/objects/sha256/%s", vstr(v, i, "events_sha256"));
        char *o = get_bytes(d, path, &on);
        bool served = b && o && strcmp(hex, vstr(v, i, "events_sha256")) == 0 && same_bytes(b, n, o, on);
        CHECK(served, "%s: %s version %lld: %s", what, sid, ver,
              !b   ? "not served"
              : !o ? "its object is missing"
                   : "served bytes do not match its digest");
        bad += !served;
        snprintf(path, sizeof path, "/sessions/%s/verify?version=%lld", sid, ver);
        reply r;
        http(d, "GET", path, NULL, 0, &r);
        bool ok = r.status == 200 && json_is_true(json_object_get(r.json, "ok")) &&
                  json_is_true(json_object_get(r.json, "object_ok"));
        CHECK(ok, "%s: %s version %lld does not verify: %ld %s", what, sid, ver, r.status, body_of(&r));
        bad += !ok;
        reply_fini(&r);
        free(b);
        free(o);
    }
    json_decref(v);
    return bad;
}

/* ---- the command line ------------------------------------------------------------------- */

static int run_cli(char **out, const char *const *args)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    size_t na = 0;
    while (args[na])
        na++;
    const char **argv = calloc(na + 2, sizeof *argv);
    argv[0] = bin;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = args[i];
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    free(argv);
    at_buf b;
    at_buf_init(&b, 0);
    char tmp[4096];
    ssize_t k;
    while ((k = read(p[0], tmp, sizeof tmp)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0)
            (void)!at_buf_add(&b, tmp, (size_t)k);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    size_t len;
    char *s = at_buf_steal(&b, &len);
    if (out)
        *out = s ? s : strdup("");
    else
        free(s);
    at_buf_fini(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- storage inspection ---------------------------------------------------------------------- */

static char **list_sessions(const char *storage, size_t *n)
{
    DIR *d = opendir(storage);
    char **v = NULL;
    *n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s/meta.json", storage, e->d_name);
        if (e->d_name[0] == '.' || !file_exists(p))
            continue;
        v = realloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void delta_base(const char *storage, const char *hex, char base[AT_SHA256_HEX])
{
    char p[PATH_MAX];
    base[0] = 0;
    snprintf(p, sizeof p, "%s/objects/sha256/%.2s/%s.delta", storage, hex, hex);
    FILE *f = fopen(p, "rb");
    if (!f)
        return;
    char line[256];
    if (fgets(line, sizeof line, f) && strcmp(line, "agent-traced-delta 1\n") == 0 &&
        fgets(line, sizeof line, f) && strncmp(line, "base ", 5) == 0 && strlen(line) >= 5 + 64)
        snprintf(base, AT_SHA256_HEX, "%.64s", line + 5);
    fclose(f);
}

static bool chain_ok(const char *p, size_t n)
{
    at_verifier *v = at_verifier_new(AT_VERIFY_STRICT);
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    at_error err = {0};
    bool ok =
        v && at_verifier_feed(v, p, n, &err) == AT_OK && at_verifier_finish(v, &rep, &err) == AT_OK && rep.ok;
    at_verify_report_fini(&rep);
    at_verifier_free(v);
    return ok;
}

/* Reads every listed version of every session through the library: its
 * object chain exists, its bytes hash to its digest, (chains) its hash
 * chain verifies, and (numbered) the versions are 1..n. With `exactly`, no other object
 * file exists. Returns the problems found. */
static size_t check_store(const char *storage, bool exactly, bool numbered, bool chains, const char *what)
{
    size_t kinds[4] = {0}; /* misnumbered, unreadable, other bytes, broken chain */
    char *buf = NULL;
    size_t cap = 0;
    at_error err = {0};
    at_store *s = at_store_open(storage, &err);
    if (!s) {
        CHECK(0, "%s: cannot open %s: %s", what, storage, err.message);
        return 1;
    }
    size_t ns, problems = 0, nneed = 0, versions_seen = 0;
    char **sess = list_sessions(storage, &ns);
    char(*need)[AT_SHA256_HEX] = NULL;
    char first[300] = "";
    for (size_t i = 0; i < ns; i++) {
        at_version *v = NULL;
        size_t nv = 0;
        if (at_store_versions(s, sess[i], &v, &nv, &err) != AT_OK) {
            if (!problems++)
                snprintf(first, sizeof first, "%s: no history: %s", sess[i], err.message);
            continue;
        }
        for (size_t j = 0; j < nv; j++) {
            versions_seen++;
            if ((numbered && v[j].version != j + 1) || (j && v[j].version <= v[j - 1].version)) {
                kinds[0]++;
                if (!problems++)
                    snprintf(first, sizeof first, "%s: the listing's version %zu is numbered %llu", sess[i],
                             j + 1, (unsigned long long)v[j].version);
            }
            at_object_reader *rd;
            const char *why = "unreadable";
            int kind = 1;
            bool ok = at_store_open_version(s, sess[i], v[j].version, &rd, &err) == AT_OK;
            if (ok) {
                uint64_t size = at_object_size(rd), off = 0;
                if (size + 1 > cap) { /* one buffer for all: large allocations are slow under ASan */
                    free(buf);
                    cap = (size_t)size * 2 + 1;
                    buf = malloc(cap);
                }
                while (buf && off < size) {
                    ssize_t k = at_object_read(rd, off, buf + off, size - off);
                    if (k <= 0)
                        break;
                    off += (uint64_t)k;
                }
                uint8_t d[AT_SHA256_LEN];
                at_sha256_oneshot(buf ? buf : "", off, d);
                ok = off == size && size == v[j].size && memcmp(d, v[j].events_sha256, AT_SHA256_LEN) == 0;
                why = "other bytes than its digest";
                kind = 2;
                if (ok && chains && !chain_ok(buf, off)) {
                    ok = false;
                    why = "a broken chain";
                    kind = 3;
                }
                at_object_reader_free(rd);
            }
            if (!ok && !problems++)
                snprintf(first, sizeof first, "%s version %llu: %s", sess[i],
                         (unsigned long long)v[j].version, why);
            problems += !ok;
            kinds[kind] += !ok;
            char hex[AT_SHA256_HEX];
            at_hex(v[j].events_sha256, AT_SHA256_LEN, hex);
            for (int depth = 0; hex[0] && depth < 200; depth++) {
                need = realloc(need, (nneed + 1) * sizeof *need);
                memcpy(need[nneed++], hex, AT_SHA256_HEX);
                char b[AT_SHA256_HEX];
                delta_base(storage, hex, b);
                memcpy(hex, b, AT_SHA256_HEX);
            }
        }
        free(v);
    }
    CHECK(
        problems == 0,
        "%s: %zu problems in %zu versions of %zu sessions: %zu misnumbered, %zu unreadable, %zu with other bytes "
        "than their digest, %zu with a broken chain (first: %s)",
        what, problems, versions_seen, ns, kinds[0], kinds[1], kinds[2], kinds[3], first);
    if (exactly) {
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%s/objects/sha256", storage);
        DIR *d = opendir(base);
        struct dirent *e;
        size_t extra = 0;
        char first_extra[200] = "";
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char sub[PATH_MAX + 300];
            snprintf(sub, sizeof sub, "%s/%s", base, e->d_name);
            DIR *o = opendir(sub);
            struct dirent *f;
            while (o && (f = readdir(o))) {
                if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
                    continue;
                bool needed = false;
                for (size_t j = 0; j < nneed && !needed; j++)
                    needed = strncmp(f->d_name, need[j], 64) == 0 && f->d_name[64] == '.';
                if (!needed && !extra++)
                    snprintf(first_extra, sizeof first_extra, "%s", f->d_name);
            }
            if (o)
                closedir(o);
        }
        if (d)
            closedir(d);
        CHECK(extra == 0, "%s: %zu object files no version needs (first: %s)", what, extra, first_extra);
        problems += extra;
    }
    free(buf);
    free(need);
    free_list(sess, ns);
    at_store_free(s);
    return problems;
}

/* Sets the mtime of every file under .agent-traced/tmp and of every
 * temporary name (".<name>.tmp-XXXXXX" and the older copy names) anywhere
 * back by secs. */
static void age_leftovers_rec(const char *dir, bool in_tmp, int secs)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) < 0)
            continue;
        bool tmp_name = strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".cow-") ||
                        strstr(e->d_name, ".copy-") || strstr(e->d_name, ".events.ndjson.new");
        if (S_ISDIR(sb.st_mode))
            age_leftovers_rec(p, in_tmp || strcmp(e->d_name, "tmp") == 0, secs);
        if (in_tmp || tmp_name)
            utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
    }
    if (d)
        closedir(d);
}

/* Leftovers anywhere in the storage: entries of .agent-traced/tmp and
 * temporary names. Returns how many; the first in first. */
static size_t find_leftovers(const char *dir, bool in_tmp, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) < 0)
            continue;
        bool tmp_name = strstr(e->d_name, ".tmp-") || strstr(e->d_name, ".cow-") ||
                        strstr(e->d_name, ".copy-") || strstr(e->d_name, ".events.ndjson.new");
        if (in_tmp || tmp_name) {
            if (!n && first[0] == 0)
                snprintf(first, cap, "%s", p);
            n++;
        }
        if (S_ISDIR(sb.st_mode))
            n += find_leftovers(p, in_tmp || strcmp(e->d_name, "tmp") == 0, first, cap);
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- 1. chaos ------------------------------------------------------------------------------- */

#define N_APPEND_SESSIONS 4
#define N_EXT_SESSIONS    2
#define CHAOS_SECONDS     30.0
#define MAX_KILLS         36

typedef struct {
    char sid[64];
    char id[16];
} acked_event;

typedef struct {
    char sid[64];
    char *data; /* the transcript variant (owned) */
    size_t n;
    const fixture *f;
} upload_session;

typedef struct {
    size_t sess; /* index into upload sessions */
    size_t len;  /* the transcript bytes the upload made current */
    char sha[AT_SHA256_HEX];
} acked_upload;

static struct {
    pthread_mutex_t mu;
    int port; /* 0 while the daemon is down (atomic) */
    int stop; /* atomic */
    acked_event *acked;
    size_t nacked;
    acked_event *written; /* external lines */
    size_t nwritten;
    upload_session *up;
    size_t nup;
    acked_upload *ups;
    size_t nups;
    unsigned long requests, answered, refused;
    fixture fx[3];
    unsigned tag;
} ch = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int chaos_port(void)
{
    return __atomic_load_n(&ch.port, __ATOMIC_ACQUIRE);
}

static bool chaos_stopping(void)
{
    return __atomic_load_n(&ch.stop, __ATOMIC_ACQUIRE);
}

static void chaos_count(const reply *r)
{
    pthread_mutex_lock(&ch.mu);
    ch.requests++;
    ch.answered += r->status > 0;
    pthread_mutex_unlock(&ch.mu);
}

/* POST /events of 1-3 events with fresh ids to one of a few sessions; the
 * ids are recorded when the answer is 200 with all accepted. */
static void *appender(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, seed = 1000 + t, seq = 0;
    while (!chaos_stopping()) {
        int port = chaos_port();
        if (!port) {
            usleep(5000);
            continue;
        }
        char sid[64];
        snprintf(sid, sizeof sid, "crash-app-%u", rand_r(&seed) % N_APPEND_SESSIONS);
        int k = 1 + (int)(rand_r(&seed) % 3);
        acked_event ev[3];
        at_buf b;
        at_buf_init(&b, 0);
        for (int i = 0; i < k; i++) {
            snprintf(ev[i].sid, sizeof ev[i].sid, "%s", sid);
            snprintf(ev[i].id, sizeof ev[i].id, "a%u%010u", t, seq++);
            (void)!at_buf_printf(
                &b,
                "{\"event_type\":\"decision\",\"timestamp\":1770000000.125,\"event_id\":\"%s\","
                "\"session_id\":\"%s\",\"data\":{\"t\":%u,\"i\":%d}}\n",
                ev[i].id, sid, t, i);
        }
        reply r;
        http_port(port, "POST", "/events", b.data, b.len, &r);
        at_buf_fini(&b);
        chaos_count(&r);
        if (r.status == 200 && jint(&r, "accepted") == k) {
            pthread_mutex_lock(&ch.mu);
            ch.acked = realloc(ch.acked, (ch.nacked + (size_t)k) * sizeof *ch.acked);
            memcpy(ch.acked + ch.nacked, ev, (size_t)k * sizeof *ev);
            ch.nacked += (size_t)k;
            pthread_mutex_unlock(&ch.mu);
        } else if (r.status < 0) {
            usleep(10000);
        }
        reply_fini(&r);
        usleep(10000 + rand_r(&seed) % 20000);
    }
    return NULL;
}

static size_t new_upload_session(const fixture *f)
{
    pthread_mutex_lock(&ch.mu);
    unsigned tag = 0x100 + ch.tag++;
    ch.up = realloc(ch.up, (ch.nup + 1) * sizeof *ch.up);
    upload_session *u = &ch.up[ch.nup];
    u->f = f;
    u->n = f->n;
    u->data = variant(f, tag, u->sid, sizeof u->sid);
    size_t i = ch.nup++;
    pthread_mutex_unlock(&ch.mu);
    return i;
}

/* Uploads growing snapshots of a transcript: the whole snapshot, or
 * (half the time) only what follows the transcript_bytes the listing gives
 * (?session=&offset=); a new session once the transcript is complete. */
static void *uploader(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, seed = 2000 + t;
    const fixture *f = &ch.fx[t % 3];
    size_t si = new_upload_session(f), idx = 0, cur = 0;
    while (!chaos_stopping()) {
        int port = chaos_port();
        if (!port) {
            usleep(5000);
            continue;
        }
        pthread_mutex_lock(&ch.mu);
        upload_session u = ch.up[si];
        pthread_mutex_unlock(&ch.mu);
        if (cur == f->n) {
            f = &ch.fx[rand_r(&seed) % 3];
            si = new_upload_session(f);
            idx = 0;
            cur = 0;
            continue;
        }
        while (idx < f->nbound && f->bound[idx] < f->named_end)
            idx++;
        idx += rand_r(&seed) % 3;
        size_t k = idx < f->nbound ? f->bound[idx] : f->n;
        idx++;
        char path[1200];
        reply r;
        bool sent = false;
        if (cur && rand_r(&seed) % 2) {
            json_t *v = versions_port(port, u.sid);
            size_t nv = v ? json_array_size(v) : 0;
            long long tb = nv ? vint(v, nv - 1, "transcript_bytes") : -1;
            json_decref(v);
            if (tb > 0 && (size_t)tb <= k) {
                snprintf(path, sizeof path, "/import?session=%s&offset=%lld", u.sid, tb);
                http_port(port, "POST", path, u.data + tb, k - (size_t)tb, &r);
                sent = true;
            }
        }
        if (!sent) {
            snprintf(path, sizeof path, "/import?source=%s", f->name);
            http_port(port, "POST", path, u.data, k, &r);
        }
        chaos_count(&r);
        if (r.status == 200 || r.status == 201) {
            cur = k;
            if (r.status == 201) {
                pthread_mutex_lock(&ch.mu);
                ch.ups = realloc(ch.ups, (ch.nups + 1) * sizeof *ch.ups);
                acked_upload *a = &ch.ups[ch.nups++];
                a->sess = si;
                a->len = k;
                snprintf(a->sha, sizeof a->sha, "%s", jstr(&r, "events_sha256"));
                pthread_mutex_unlock(&ch.mu);
            }
        } else if (r.status == 409) {
            pthread_mutex_lock(&ch.mu);
            ch.refused++;
            pthread_mutex_unlock(&ch.mu);
        } else if (r.status < 0) {
            usleep(10000);
        }
        reply_fini(&r);
    }
    return NULL;
}

/* Appends lines to events.ndjson as agent-strace does (no lock, O_APPEND,
 * chained to the file's last line), and reads the session now and then. */
static void *external_writer(void *arg)
{
    const char *storage = arg;
    unsigned seed = 3000, seq = 0;
    while (!chaos_stopping()) {
        acked_event w;
        snprintf(w.sid, sizeof w.sid, "crash-ext-%u", rand_r(&seed) % N_EXT_SESSIONS);
        snprintf(w.id, sizeof w.id, "x%011u", seq++);
        char path[PATH_MAX + 100];
        snprintf(path, sizeof path, "%s/%s/events.ndjson", storage, w.sid);
        char *line = chained_line(path, w.sid, w.id);
        if (append_line(path, line)) {
            pthread_mutex_lock(&ch.mu);
            ch.written = realloc(ch.written, (ch.nwritten + 1) * sizeof *ch.written);
            ch.written[ch.nwritten++] = w;
            pthread_mutex_unlock(&ch.mu);
        }
        free(line);
        int port = chaos_port();
        if (port && rand_r(&seed) % 4 == 0) {
            json_t *v = versions_port(port, w.sid);
            json_decref(v);
        }
        usleep(2000 + rand_r(&seed) % 8000);
    }
    return NULL;
}

static void test_chaos(void)
{
    double t0 = now_mono();
    static const char *const rels[3] = {"tests/fixtures/claude/short.jsonl",
                                        "tests/fixtures/claude-edge/tools.jsonl",
                                        "tests/fixtures/claude/tool_heavy.jsonl"};
    for (int i = 0; i < 3; i++)
        if (!load_fixture(&ch.fx[i], rels[i])) {
            CHECK(0, "cannot load %s", rels[i]);
            return;
        }
    daemon_t d;
    if (!start(&d, "chaos", NULL)) {
        CHECK(0, "server did not start");
        return;
    }
    /* the sessions the external writer appends to exist first */
    for (int i = 0; i < N_EXT_SESSIONS; i++) {
        char body[300];
        snprintf(body, sizeof body,
                 "{\"event_type\":\"decision\",\"timestamp\":1770000000.5,\"event_id\":\"xinit%07d\","
                 "\"session_id\":\"crash-ext-%d\",\"data\":{}}\n",
                 i, i);
        reply r;
        http(&d, "POST", "/events", body, strlen(body), &r);
        CHECK(r.status == 200, "external sessions: %ld %s", r.status, body_of(&r));
        reply_fini(&r);
    }
    __atomic_store_n(&ch.port, d.port, __ATOMIC_RELEASE);
    pthread_t th[5];
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, appender, (void *)i);
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[2 + i], NULL, uploader, (void *)i);
    pthread_create(&th[4], NULL, external_writer, d.storage);

    unsigned seed = 20251202;
    int kills = 0, restarts_failed = 0;
    while (now_mono() - t0 < CHAOS_SECONDS && kills < MAX_KILLS) {
        usleep(250000 + rand_r(&seed) % 1050000);
        __atomic_store_n(&ch.port, 0, __ATOMIC_RELEASE);
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
        if (d.draining)
            pthread_join(d.drain, NULL);
        d.draining = false;
        close(d.errfd);
        kills++;
        bool up = false;
        for (int attempt = 0; attempt < 5 && !up; attempt++) {
            up = start_at(&d, d.storage, NULL);
            restarts_failed += !up;
            if (!up)
                usleep(100000);
        }
        if (!up)
            break;
        __atomic_store_n(&ch.port, d.port, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    double t1 = now_mono();
    CHECK(kills >= 20 && restarts_failed == 0, "%d kills, %d failed restarts", kills, restarts_failed);
    printf("chaos: %d SIGKILLs in %.1f s; %lu requests, %lu answered; %zu events acknowledged, %zu uploads "
           "acknowledged (%zu sessions, %lu 409s), %zu external lines\n",
           kills, t1 - t0, ch.requests, ch.answered, ch.nacked, ch.nups, ch.nup, ch.refused, ch.nwritten);
    CHECK(ch.nacked > 100 && ch.nups > 20 && ch.nwritten > 100, "chaos did some work");

    /* every acknowledged event is in its session's current events, and in its last listed version */
    for (int s = 0; s < N_APPEND_SESSIONS; s++) {
        char sid[64];
        snprintf(sid, sizeof sid, "crash-app-%d", s);
        size_t n, ln = 0;
        char *cur = get_events(&d, sid, 0, &n);
        json_t *v = versions(&d, sid);
        size_t nv = v ? json_array_size(v) : 0;
        char *last = nv ? get_events(&d, sid, vint(v, nv - 1, "version"), &ln) : NULL;
        json_decref(v);
        size_t missing = 0, total = 0;
        char first[64] = "";
        for (size_t i = 0; i < ch.nacked; i++) {
            if (strcmp(ch.acked[i].sid, sid) != 0)
                continue;
            total++;
            char q[40];
            snprintf(q, sizeof q, "\"%s\"", ch.acked[i].id);
            if (!has(cur, n, q) && !missing++)
                snprintf(first, sizeof first, "%s", ch.acked[i].id);
        }
        CHECK(missing == 0, "%s: %zu of %zu acknowledged events are missing (first: %s)", sid, missing, total,
              first);
        CHECK(same_bytes(cur, n, last, ln), "%s: the current events are not the last listed version", sid);
        free(cur);
        free(last);
    }
    /* every external line written is still there */
    for (int s = 0; s < N_EXT_SESSIONS; s++) {
        char sid[64];
        snprintf(sid, sizeof sid, "crash-ext-%d", s);
        size_t n, missing = 0, total = 0;
        char *cur = get_events(&d, sid, 0, &n);
        char first[64] = "";
        for (size_t i = 0; i < ch.nwritten; i++) {
            if (strcmp(ch.written[i].sid, sid) != 0)
                continue;
            total++;
            char q[40];
            snprintf(q, sizeof q, "\"%s\"", ch.written[i].id);
            if (!has(cur, n, q) && !missing++)
                snprintf(first, sizeof first, "%s", ch.written[i].id);
        }
        CHECK(missing == 0,
              "%s: %zu of %zu lines appended to events.ndjson by another program were lost (first: %s)", sid,
              missing, total, first);
        free(cur);
    }
    /* every session: its listing numbered 1..n, its current version verifies
     * (HTTP); every version of every session readable, its digest and chain
     * (in-process); every version of the external writer's sessions over HTTP */
    size_t ns, badnum = 0, badver = 0;
    char **sess = list_sessions(d.storage, &ns);
    char firstnum[400] = "", firstver[600] = "";
    for (size_t i = 0; i < ns; i++) {
        json_t *v = versions(&d, sess[i]);
        for (size_t j = 0; v && j < json_array_size(v); j++)
            if (vint(v, j, "version") != (long long)j + 1) {
                if (!badnum++)
                    snprintf(firstnum, sizeof firstnum, "%s: listed version %zu is numbered %lld", sess[i],
                             j + 1, vint(v, j, "version"));
                break;
            }
        json_decref(v);
        char path[400];
        snprintf(path, sizeof path, "/sessions/%s/verify", sess[i]);
        reply r;
        http(&d, "GET", path, NULL, 0, &r);
        if (!(r.status == 200 && json_is_true(json_object_get(r.json, "ok")) &&
              json_is_true(json_object_get(r.json, "object_ok"))) &&
            !badver++)
            snprintf(firstver, sizeof firstver, "%s: %ld %s", sess[i], r.status, body_of(&r));
        reply_fini(&r);
    }
    CHECK(badnum == 0,
          "after the chaos: %zu of %zu sessions list versions that are not numbered 1..n (first: %s)", badnum,
          ns, firstnum);
    CHECK(badver == 0, "after the chaos: %zu of %zu sessions do not verify (first: %s)", badver, ns,
          firstver);
    check_store(d.storage, false, true, true, "after the chaos");
    for (int s = 0; s < N_EXT_SESSIONS; s++) {
        char sid[64];
        snprintf(sid, sizeof sid, "crash-ext-%d", s);
        check_all_versions(&d, sid, "after the chaos");
    }
    free_list(sess, ns);
    /* every imported version holds the direct import of the bytes it
     * records; every acknowledged upload is a version */
    size_t nimp = 0, wrong = 0, wrong_sess = 0, lost = 0;
    char firstw[400] = "", firstl[400] = "";
    for (size_t u = 0; u < ch.nup; u++) {
        upload_session *us = &ch.up[u];
        json_t *v = versions(&d, us->sid);
        size_t w0 = wrong;
        for (size_t i = 0; v && i < json_array_size(v); i++) {
            if (strcmp(vstr(v, i, "cause"), "import") != 0)
                continue;
            nimp++;
            long long tb = vint(v, i, "transcript_bytes");
            char tsha[AT_SHA256_HEX] = "", esha[AT_SHA256_HEX] = "";
            size_t dn = 0;
            char *de =
                tb > 0 && (size_t)tb <= us->n ? direct_events(us->data, (size_t)tb, us->f->name, &dn) : NULL;
            if (de) {
                sha_hex(us->data, (size_t)tb, tsha);
                sha_hex(de, dn, esha);
            }
            if ((!de || strcmp(tsha, vstr(v, i, "transcript_sha256")) != 0 ||
                 strcmp(esha, vstr(v, i, "events_sha256")) != 0) &&
                !wrong++)
                snprintf(firstw, sizeof firstw,
                         "%s version %lld: transcript_bytes %lld, events %.12s, direct %.12s", us->sid,
                         vint(v, i, "version"), tb, vstr(v, i, "events_sha256"), esha);
            free(de);
        }
        wrong_sess += wrong > w0;
        for (size_t a = 0; a < ch.nups; a++) {
            if (ch.ups[a].sess != u)
                continue;
            bool found = false;
            for (size_t i = 0; v && i < json_array_size(v) && !found; i++)
                found = vint(v, i, "transcript_bytes") == (long long)ch.ups[a].len &&
                        strcmp(vstr(v, i, "events_sha256"), ch.ups[a].sha) == 0;
            if (!found && !lost++)
                snprintf(firstl, sizeof firstl, "%s: %zu bytes, events %.12s", us->sid, ch.ups[a].len,
                         ch.ups[a].sha);
        }
        json_decref(v);
    }
    CHECK(
        wrong == 0,
        "after the chaos: %zu of %zu imported versions (in %zu of %zu sessions) are not the direct import of the "
        "transcript bytes they record (first: %s)",
        wrong, nimp, wrong_sess, ch.nup, firstw);
    CHECK(lost == 0, "after the chaos: %zu of %zu acknowledged uploads are no version (first: %s)", lost,
          ch.nups, firstl);
    /* leftovers made old, one more restart (it sweeps), then gc */
    age_leftovers_rec(d.storage, false, 3700); /* past SWEEP_DIR_AGE (1 h) for a half-built session */
    CHECK(stop(&d, SIGKILL) == 128 + SIGKILL, "the last daemon killed");
    CHECK(start_at(&d, d.storage, NULL), "restart after aging leftovers");
    reply r;
    http(&d, "GET", "/health", NULL, 0, &r);
    CHECK(r.status == 200, "health after the chaos: %ld", r.status);
    reply_fini(&r);
    CHECK(stop(&d, SIGTERM) == 0, "chaos server exits 0");
    const char *gc[] = {"gc", "--storage", d.storage, NULL};
    char *out = NULL;
    int st = run_cli(&out, gc);
    CHECK(st == 0 && out && strstr(out, "\"objects_removed\""), "gc after the chaos: exit %d %s", st,
          out ? out : "");
    free(out);
    char first[PATH_MAX] = "";
    size_t left = find_leftovers(d.storage, false, first, sizeof first);
    CHECK(left == 0, "after a restart and gc, %zu staging or temporary files are left (first: %s)", left,
          first);
    check_store(d.storage, true, false, false, "after the chaos and gc");
    for (size_t u = 0; u < ch.nup; u++)
        free(ch.up[u].data);
    free(ch.up);
    free(ch.ups);
    free(ch.acked);
    free(ch.written);
    printf("chaos: checked in %.1f s\n", now_mono() - t1);
}

/* ---- 2. crash points, reproduced exactly ------------------------------------------------------ */

static unsigned cp_tag = 0x800;

static void hist_file(const char *storage, const char *sid, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/.agent-traced/history/%s/%s", storage, sid, file);
}

/* The history as a crash leaves it right after the last version record
 * (its commit point): whatever came after that record (the stamp of
 * events.ndjson, the transparency log's mark) is not there yet. */
static void drop_last_stamps(const char *storage, const char *sid)
{
    char p[PATH_MAX];
    hist_file(storage, sid, "versions", p, sizeof p);
    size_t n;
    char *h = read_file(p, &n);
    if (!h)
        return;
    size_t keep = 0; /* the end of the last version record */
    for (size_t s = 0; s < n;) {
        char *nl = memchr(h + s, '\n', n - s);
        size_t e = nl ? (size_t)(nl - h) + 1 : n;
        if (e - s > 11 && memcmp(h + s, "{\"version\":", 11) == 0)
            keep = e;
        s = e;
    }
    write_file(p, h, keep);
    free(h);
}

static char *copy_of(const char *path, size_t *n)
{
    return read_file(path, n);
}

static void restore(const char *path, const char *p, size_t n)
{
    if (p)
        write_file(path, p, n);
    else
        unlink(path);
}

static char *session_path(const daemon_t *d, const char *sid, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s", d->storage, sid, file);
    return out;
}

/* Cuts of f at line boundaries after the line that names the session, each with more events. */
static void three_cuts(const fixture *f, size_t c[3])
{
    size_t first = 0;
    while (first < f->nbound && f->bound[first] < f->named_end)
        first++;
    size_t m = f->nbound - first;
    c[0] = f->bound[first + m / 4];
    c[1] = f->bound[first + m / 2];
    c[2] = f->bound[first + 3 * m / 4];
}

static void upload_full(const daemon_t *d, const fixture *f, const char *data, size_t n, reply *r)
{
    char path[300];
    snprintf(path, sizeof path, "/import?source=%s", f->name);
    http(d, "POST", path, data, n, r);
}

static void upload_tail(const daemon_t *d, const char *sid, size_t off, const char *data, size_t n, reply *r)
{
    char path[600];
    snprintf(path, sizeof path, "/import?session=%s&offset=%zu", sid, off);
    http(d, "POST", path, data, n, r);
}

/* A new session's import killed after its version record, before its
 * directory exists: uploading again must not number a second version 1. */
static void crash_new_session(const fixture *f)
{
    daemon_t d;
    if (!start(&d, "cp-create", NULL)) {
        CHECK(0, "cp-create: server did not start");
        return;
    }
    char sid[64], p[PATH_MAX];
    char *v = variant(f, cp_tag++, sid, sizeof sid);
    size_t c[3];
    three_cuts(f, c);
    reply r;
    upload_full(&d, f, v, c[0], &r);
    CHECK(r.status == 201, "cp-create: upload: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    stop(&d, SIGKILL);
    snprintf(p, sizeof p, "%s/%s", d.storage, sid);
    rm_rf(p);
    hist_file(d.storage, sid, "import.state", p, sizeof p);
    unlink(p);
    snprintf(p, sizeof p, "%s/.agent-traced/links/%s", d.storage, sid);
    unlink(p);
    drop_last_stamps(d.storage, sid);
    CHECK(start_at(&d, d.storage, NULL), "cp-create: restart");
    upload_full(&d, f, v, c[0], &r);
    CHECK(r.status == 200 || r.status == 201, "cp-create: the same upload again: %ld %s", r.status,
          body_of(&r));
    reply_fini(&r);
    upload_full(&d, f, v, c[1], &r);
    CHECK(r.status == 201, "cp-create: a grown upload: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    check_all_versions(&d, sid,
                       "a new session's import killed before its directory existed, then uploaded again");
    size_t dn, n;
    char *de = direct_events(v, c[1], f->name, &dn), *e = get_events(&d, sid, 0, &n);
    CHECK(same_bytes(e, n, de, dn), "cp-create: the events are the direct import");
    free(de);
    free(e);
    free(v);
    CHECK(stop(&d, SIGTERM) == 0, "cp-create server exits 0");
}

/* An incremental import killed after its version, events.ndjson, meta.json
 * and stamp were written, before import.state was replaced: the next
 * incremental upload, at the offset the listing gives, must not resume from
 * the older state (refused, or the direct import's bytes). */
static void crash_before_state(const fixture *f)
{
    daemon_t d;
    if (!start(&d, "cp-state", NULL)) {
        CHECK(0, "cp-state: server did not start");
        return;
    }
    char sid[64], sp[PATH_MAX];
    char *v = variant(f, cp_tag++, sid, sizeof sid);
    size_t c[3];
    three_cuts(f, c);
    reply r;
    upload_full(&d, f, v, c[0], &r);
    CHECK(r.status == 201, "cp-state: first part: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    hist_file(d.storage, sid, "import.state", sp, sizeof sp);
    size_t sn;
    char *state = copy_of(sp, &sn);
    upload_tail(&d, sid, c[0], v + c[0], c[1] - c[0], &r);
    CHECK(r.status == 201, "cp-state: second part: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    stop(&d, SIGKILL);
    restore(sp, state, sn);
    CHECK(start_at(&d, d.storage, NULL), "cp-state: restart");
    json_t *vl = versions(&d, sid);
    size_t nv = vl ? json_array_size(vl) : 0;
    long long tb = nv ? vint(vl, nv - 1, "transcript_bytes") : -1;
    json_decref(vl);
    CHECK(tb == (long long)c[1], "cp-state: the listing gives %lld (want %zu)", tb, c[1]);
    upload_tail(&d, sid, (size_t)tb, v + tb, f->n - (size_t)tb, &r);
    size_t dn, n;
    char *de = direct_events(v, f->n, f->name, &dn), *e = get_events(&d, sid, 0, &n);
    bool direct = same_bytes(e, n, de, dn);
    CHECK(
        r.status == 409 || (r.status == 201 && direct),
        "cp-state: an incremental upload after a crash that kept the previous import.state: %ld %s; the events "
        "are %s",
        r.status, body_of(&r), direct ? "the direct import" : "NOT the direct import of the transcript");
    reply_fini(&r);
    vl = versions(&d, sid);
    nv = vl ? json_array_size(vl) : 0;
    if (r.status != 409 && nv) {
        char tsha[AT_SHA256_HEX];
        long long ltb = vint(vl, nv - 1, "transcript_bytes");
        sha_hex(v, ltb > 0 ? (size_t)ltb : 0, tsha);
        CHECK(ltb == (long long)f->n && strcmp(vstr(vl, nv - 1, "transcript_sha256"), tsha) == 0,
              "cp-state: the version records transcript_bytes %lld (want %zu)", ltb, f->n);
    }
    json_decref(vl);
    check_all_versions(&d, sid, "cp-state");
    free(de);
    free(e);
    free(state);
    free(v);
    CHECK(stop(&d, SIGTERM) == 0, "cp-state server exits 0");
}

/* A commit killed after its version record and its write to events.ndjson,
 * before the stamp; then another program appends (agent-strace): the next
 * read must keep that line. */
static void crash_before_stamp_then_external(void)
{
    daemon_t d;
    if (!start(&d, "cp-ext", NULL)) {
        CHECK(0, "cp-ext: server did not start");
        return;
    }
    for (int variant_ = 0; variant_ < 2; variant_++) {
        char sid[64], body[600], p[PATH_MAX];
        snprintf(sid, sizeof sid, "cp-ext-%d", variant_);
        snprintf(body, sizeof body,
                 "{\"event_type\":\"decision\",\"timestamp\":1770000000.5,\"event_id\":\"cpext%d000001\","
                 "\"session_id\":\"%s\",\"data\":{}}\n",
                 variant_, sid);
        reply r;
        http(&d, "POST", "/events", body, strlen(body), &r);
        reply_fini(&r);
        session_path(&d, sid, "events.ndjson", p, sizeof p);
        if (variant_ == 0) {
            /* the killed commit is an append (POST /events) */
            snprintf(body, sizeof body,
                     "{\"event_type\":\"decision\",\"timestamp\":1770000000.5,\"event_id\":\"cpext0000002\","
                     "\"session_id\":\"%s\",\"data\":{}}\n",
                     sid);
            http(&d, "POST", "/events", body, strlen(body), &r);
            CHECK(r.status == 200, "cp-ext: append: %ld", r.status);
            reply_fini(&r);
        } else {
            /* the killed commit is an external change being recorded */
            char *line = chained_line(p, sid, "cpext1000002");
            append_line(p, line);
            free(line);
            json_t *v = versions(&d, sid);
            CHECK(v && json_array_size(v) == 2 && strcmp(vstr(v, 1, "cause"), "external") == 0,
                  "cp-ext: the external version");
            json_decref(v);
        }
        stop(&d, SIGKILL);
        drop_last_stamps(d.storage, sid);
        char *line = chained_line(p, sid, variant_ ? "cpext1000003" : "cpext0000003");
        append_line(p, line);
        free(line);
        CHECK(start_at(&d, d.storage, NULL), "cp-ext: restart");
        size_t n;
        char *e = get_events(&d, sid, 0, &n);
        CHECK(has(e, n, variant_ ? "\"cpext1000002\"" : "\"cpext0000002\"") &&
                  has(e, n, variant_ ? "\"cpext1000003\"" : "\"cpext0000003\""),
              "cp-ext: a line another program appended after a crash that left %s without its stamp was lost",
              variant_ ? "the record of an external change" : "an append's record");
        free(e);
        check_all_versions(&d, sid, "cp-ext");
    }
    CHECK(stop(&d, SIGTERM) == 0, "cp-ext server exits 0");
}

/* An import killed after events.ndjson was written, before meta.json: once
 * the session is read again, meta.json describes the current version (what
 * a direct import of its transcript writes). And killed between cutting the
 * old session_end and writing the tail: the version is rebuilt. */
static void crash_before_meta(const fixture *f)
{
    daemon_t d;
    if (!start(&d, "cp-meta", NULL)) {
        CHECK(0, "cp-meta: server did not start");
        return;
    }
    size_t c[3];
    three_cuts(f, c);
    for (int incremental = 0; incremental < 2; incremental++) {
        char sid[64], mp[PATH_MAX], sp[PATH_MAX], ep[PATH_MAX];
        char *v = variant(f, cp_tag++, sid, sizeof sid);
        reply r;
        upload_full(&d, f, v, c[0], &r);
        reply_fini(&r);
        session_path(&d, sid, "meta.json", mp, sizeof mp);
        session_path(&d, sid, "events.ndjson", ep, sizeof ep);
        hist_file(d.storage, sid, "import.state", sp, sizeof sp);
        size_t mn, sn, en;
        char *meta = copy_of(mp, &mn), *state = copy_of(sp, &sn), *ev1 = copy_of(ep, &en);
        if (incremental)
            upload_tail(&d, sid, c[0], v + c[0], c[1] - c[0], &r);
        else
            upload_full(&d, f, v, c[1], &r);
        CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "extended") == 0, "cp-meta: grown: %ld %s",
              r.status, body_of(&r));
        reply_fini(&r);
        stop(&d, SIGKILL);
        /* what a kill before meta.json leaves: the new metadata kept beside
         * version 2's record (written before it), the old meta.json */
        char pend[PATH_MAX];
        hist_file(d.storage, sid, "meta.2.json", pend, sizeof pend);
        size_t nmn;
        char *newmeta = copy_of(mp, &nmn);
        CHECK(newmeta != NULL, "cp-meta: the new meta.json");
        if (newmeta)
            write_file(pend, newmeta, nmn);
        free(newmeta);
        restore(mp, meta, mn);
        restore(sp, state, sn);
        drop_last_stamps(d.storage, sid);
        CHECK(start_at(&d, d.storage, NULL), "cp-meta: restart");
        size_t n;
        char *e = get_events(&d, sid, 0, &n);
        size_t dn;
        char *de = direct_events(v, c[1], f->name, &dn);
        CHECK(same_bytes(e, n, de, dn), "cp-meta: the events are the second upload's");
        CHECK(access(pend, F_OK) < 0, "cp-meta: the kept metadata was installed (%s gone)", pend);
        free(e);
        /* the direct import's meta.json, by the command line */
        char scratch[PATH_MAX], file[PATH_MAX + 20], dm[PATH_MAX + 300];
        snprintf(scratch, sizeof scratch, "%s/cp-meta-direct-%d", work, incremental);
        snprintf(file, sizeof file, "%s.jsonl", scratch);
        write_file(file, v, c[1]);
        const char *args[] = {"import", "--storage", scratch, "--source", f->name, file, NULL};
        run_cli(NULL, args);
        snprintf(dm, sizeof dm, "%s/%s/meta.json", scratch, sid);
        size_t wn, gn;
        char *want = read_file(dm, &wn), *got = read_file(mp, &gn);
        CHECK(
            same_bytes(got, gn, want, wn),
            "cp-meta: after a crash between events.ndjson and meta.json (%s upload), meta.json still describes "
            "the previous version:\n%.*s\nwant\n%.*s",
            incremental ? "an incremental" : "a full", (int)gn, got ? got : "", (int)wn, want ? want : "");
        free(want);
        free(got);
        check_all_versions(&d, sid, "cp-meta");
        free(de);
        free(meta);
        free(state);
        free(ev1);
        free(v);
    }
    CHECK(stop(&d, SIGTERM) == 0, "cp-meta server exits 0");
}

/* An incremental upload that grows events.ndjson in place, killed between
 * cutting the old session_end and writing the new lines: the next read
 * rebuilds the version from its object. */
static void crash_mid_extension(const fixture *f)
{
    daemon_t d;
    if (!start(&d, "cp-extend", NULL)) {
        CHECK(0, "cp-extend: server did not start");
        return;
    }
    size_t c[3];
    three_cuts(f, c);
    char sid[64], mp[PATH_MAX], sp[PATH_MAX], ep[PATH_MAX];
    char *v = variant(f, cp_tag++, sid, sizeof sid);
    reply r;
    upload_full(&d, f, v, c[1], &r);
    reply_fini(&r);
    session_path(&d, sid, "meta.json", mp, sizeof mp);
    session_path(&d, sid, "events.ndjson", ep, sizeof ep);
    hist_file(d.storage, sid, "import.state", sp, sizeof sp);
    size_t mn, sn, en;
    char *meta = copy_of(mp, &mn), *state = copy_of(sp, &sn), *ev1 = copy_of(ep, &en);
    upload_tail(&d, sid, c[1], v + c[1], c[2] - c[1], &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "extended") == 0, "cp-extend: incremental: %ld %s",
          r.status, body_of(&r));
    reply_fini(&r);
    stop(&d, SIGKILL);
    size_t body = en ? en - 1 : 0; /* ev1 without its last line, the session_end */
    while (body > 0 && ev1[body - 1] != '\n')
        body--;
    write_file(ep, ev1, body);
    restore(mp, meta, mn);
    restore(sp, state, sn);
    drop_last_stamps(d.storage, sid);
    CHECK(start_at(&d, d.storage, NULL), "cp-extend: restart");
    size_t n, dn;
    char *e = get_events(&d, sid, 0, &n), *de = direct_events(v, c[2], f->name, &dn);
    CHECK(same_bytes(e, n, de, dn),
          "cp-extend: an extension cut short in events.ndjson is rebuilt from its object");
    check_all_versions(&d, sid, "cp-extend");
    free(e);
    free(de);
    free(meta);
    free(state);
    free(ev1);
    free(v);
    CHECK(stop(&d, SIGTERM) == 0, "cp-extend server exits 0");
}

static void test_crash_points(void)
{
    double t0 = now_mono();
    fixture f;
    if (!load_fixture(&f, "tests/fixtures/claude/tool_heavy.jsonl")) {
        CHECK(0, "cannot load tool_heavy.jsonl");
        return;
    }
    crash_new_session(&f);
    crash_before_state(&f);
    crash_before_stamp_then_external();
    crash_before_meta(&f);
    crash_mid_extension(&f);
    free(f.data);
    free(f.bound);
    printf("crash points: %.1f s\n", now_mono() - t0);
}

/* ---- 3. SIGKILL during gc ------------------------------------------------------------------------ */

typedef struct {
    at_store *s;
    int t;
} builder;

static void *build_sessions(void *arg)
{
    builder *b = arg;
    char sid[64], sidj[80], eid[64], data[64];
    for (int i = b->t; i < 160; i += 4) {
        snprintf(sid, sizeof sid, "gcbig-%03d", i);
        snprintf(sidj, sizeof sidj, "\"%s\"", sid);
        for (int v = 0; v < 6; v++) {
            at_event_json ev[2];
            char eids[2][64];
            int n = 1 + (i + v) % 2;
            for (int k = 0; k < n; k++) {
                snprintf(eids[k], sizeof eids[k], "\"g%03d%d%d\"", i, v, k);
                snprintf(data, sizeof data, "{\"v\":%d}", v);
                ev[k] = (at_event_json){.event_type = AT_SLICE("\"decision\""),
                                        .timestamp = AT_SLICE("1770000000.5"),
                                        .event_id = {eids[k], strlen(eids[k])},
                                        .session_id = {sidj, strlen(sidj)},
                                        .data = AT_SLICE("{}")};
            }
            (void)eid;
            uint64_t ver;
            at_error err = {0};
            if (at_store_append(b->s, sid, ev, (size_t)n, &ver, &err) != AT_OK)
                fprintf(stderr, "append %s: %s\n", sid, err.message);
        }
    }
    return NULL;
}

static void test_gc_kills(void)
{
    double t0 = now_mono();
    char storage[PATH_MAX];
    snprintf(storage, sizeof storage, "%s/gcbig", work);
    at_error err = {0};
    at_store *s = at_store_open(storage, &err);
    if (!s) {
        CHECK(0, "gcbig: %s", err.message);
        return;
    }
    builder b[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (builder){s, i};
        pthread_create(&th[i], NULL, build_sessions, &b[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    at_store_free(s);
    double t1 = now_mono();
    /* how long one gc takes here, on a copy */
    unsigned seed = 777;
    int killed = 0, rounds = 0;
    for (int keep = 5; keep >= 1; keep--) {
        for (int attempt = 0; attempt < 2; attempt++) {
            char ks[8], ms[8];
            snprintf(ks, sizeof ks, "%d", keep);
            snprintf(ms, sizeof ms, "%d", 150 - 10 * (5 - keep) - 5 * attempt);
            const char *argv[] = {bin, "gc", "--storage", storage, "--keep-versions", ks, "--max-sessions",
                                  ms,  NULL};
            pid_t pid = fork();
            if (pid == 0) {
                int dn = open("/dev/null", O_WRONLY);
                if (dn >= 0) {
                    dup2(dn, 1);
                    dup2(dn, 2);
                }
                execv(bin, (char *const *)argv);
                _exit(127);
            }
            usleep(1000 + rand_r(&seed) % 40000);
            kill(pid, SIGKILL);
            int st = 0;
            waitpid(pid, &st, 0);
            killed += WIFSIGNALED(st);
            rounds++;
            char what[80];
            snprintf(what, sizeof what, "gc --keep-versions %d killed", keep);
            check_store(storage, false, false, false, what);
        }
    }
    CHECK(killed >= 3, "gc was killed mid-run %d times of %d", killed, rounds);
    const char *args[] = {"gc", "--storage", storage, NULL};
    char *out = NULL;
    int st = run_cli(&out, args);
    CHECK(st == 0, "gc to the end: exit %d %s", st, out ? out : "");
    free(out);
    check_store(storage, true, false, true, "after gc ran to the end");
    printf("gc kills: storage built in %.1f s, %d of %d gc runs killed mid-run, %.1f s\n", t1 - t0, killed,
           rounds, now_mono() - t1);
}

int main(void)
{
    const char *top = getenv("top_builddir");
    snprintf(bin, sizeof bin, "%s/agent-traced", top ? top : ".");
    signal(SIGPIPE, SIG_IGN);
    if (access(bin, X_OK) != 0) {
        printf("test_crash: %s missing, skipped\n", bin);
        return 77;
    }
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 99;
    }
    setenv("TZ", "UTC", 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double t0 = now_mono();
    test_crash_points();
    test_gc_kills();
    if (!getenv("CRASH_SKIP_CHAOS"))
        test_chaos();
    curl_global_cleanup();
    printf("test_crash: %.1f s\n", now_mono() - t0);
    int rc = t_done("test_crash");
    if (rc == 0)
        rm_rf(work);
    else
        fprintf(stderr, "test_crash: logs and storages kept in %s\n", work);
    return rc;
}
