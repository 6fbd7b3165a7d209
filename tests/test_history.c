/* test_history.c - session history: every version of a session kept, the
 * upload rules (created / unchanged / extended / replaced), incremental
 * uploads, external appends, gc and verification, through the library,
 * the HTTP API (the real daemon on port 0, driven with libcurl) and the
 * command line.
 *
 *   1. an identical re-upload after appends keeps them (200 unchanged,
 *      stale, the appended events still served, the version unchanged);
 *   2. every prefix snapshot of every fixture, cut at every line boundary:
 *      unchanged + stale after the full upload, and the full upload after
 *      it extends to exactly the direct import (in-process: every cut; the
 *      full upload after it at every 2nd cut of the two 3 MB fixtures;
 *      over HTTP: every 10th cut or so);
 *   3. incremental uploads (?session=&offset=) equal a direct import: a
 *      chain through every line boundary of every fixture, and two-step
 *      uploads at line boundaries, inside lines (after the first byte, in
 *      the middle, before the line end: between \r and \n for CRLF) and
 *      inside characters (a 422 that leaves the session as it was);
 *      chains over HTTP; an empty tail; 409s; a session replaced while an
 *      incremental upload is in flight;
 *   4. an external append (Python's open(..., "a")) changes no object and
 *      becomes a version of cause external for the CLI and for serve;
 *   5. gc never removes a referenced object, removes unreferenced ones,
 *      applies retention; --dry-run removes nothing;
 *   6. every version of every session verifies (HTTP and CLI);
 *   7. the storage after the uploads equals the reference directories;
 * and the versions listing, ?version= and /objects/sha256/ errors.
 *
 * With AT_TEST_PGURL (tests/history_db.sh) the server half again on
 * `serve --database` (testdaemon.h): 1, 2 and 3 over HTTP, 6 and 7 through
 * `db export`; the in-process cut records are computed, not counted.
 *
 * The in-process loops run on tmpfs (/dev/shm) when there is one, on as
 * many threads as cores (2 to 4). One bug fails many cuts, so those checks
 * print the first few failures of each kind and a table of counts.
 * For debugging: HISTORY_ONLY=<part of a fixture name>, HISTORY_THREADS=N,
 * HISTORY_SKIP_HTTP=1. */
#include "testlib.h"
#include "testdaemon.h"

#include "agenttrace/buf.h"
#include "agenttrace/importer.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include "agenttrace/store.h"
#include "agenttrace/verify.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char bin[4096];
static char work[] = "/tmp/test_history.XXXXXX";
/* Where the in-process loops make their thousands of storages: tmpfs when
 * there is one (no disk in the way of tens of thousands of fsyncs). */
static char fast[PATH_MAX];

/* ---- checks from several threads ------------------------------------------ */

static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;

/* The kinds of check in the exhaustive loops: one bug fails hundreds of
 * cuts, so only the first few failures of each kind are printed (every
 * check is still counted). */
enum {
    K_IMPORT,
    K_RESUME_SAME,
    K_RULE,
    K_AFTER_FULL,
    K_CREATED,
    K_EXTENDED,
    K_EXT_BYTES,
    K_LISTING,
    K_INCR_RESULT,
    K_INCR_BYTES,
    K_INCR_META,
    K_INCR_RESUME,
    K_INCR_REFUSED,
    K_CHAIN_RESULT,
    K_CHAIN_BYTES,
    K_CHAIN_VERIFY,
    K_UTF8,
    K_END_ONLY,
    K_NKINDS
};
static const char *const kind_name[K_NKINDS] = {
    "import",
    "resumed prefix import = direct import",
    "prefix is an older snapshot by the rules",
    "prefix after full: unchanged",
    "prefix into a fresh store: created",
    "full after prefix: extended",
    "full after prefix: bytes",
    "versions listing",
    "incremental: result",
    "incremental: events.ndjson",
    "incremental: meta.json",
    "incremental: resume state",
    "incremental: refused before the id is named",
    "incremental chain: result",
    "incremental chain: events",
    "incremental chain: verify",
    "cut inside a UTF-8 character",
    "growth that only moves session_end: extended",
};
static unsigned kind_fail[K_NKINDS], kind_pass[K_NKINDS];

static void loop_check(int kind, bool ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void loop_check(int kind, bool ok, int line, const char *fmt, ...)
{
    pthread_mutex_lock(&t_mu);
    if (ok) {
        t_passed++;
        kind_pass[kind]++;
    } else {
        t_failed++;
        if (++kind_fail[kind] <= 4) {
            va_list ap;
            va_start(ap, fmt);
            fprintf(stderr, "FAIL %s:%d: [%s] ", __FILE__, line, kind_name[kind]);
            vfprintf(stderr, fmt, ap);
            fputc('\n', stderr);
            va_end(ap);
        } else if (kind_fail[kind] == 5) {
            fprintf(stderr, "FAIL %s:%d: [%s] (further failures of this kind are counted, not printed)\n",
                    __FILE__, line, kind_name[kind]);
        }
    }
    pthread_mutex_unlock(&t_mu);
}

#define LOOP_CHECK(kind, cond, ...) loop_check((kind), (cond), __LINE__, __VA_ARGS__)

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- files -------------------------------------------------------------------- */

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

/* Everything readable from fd (from offset 0); malloc'd, NUL-terminated. */
static char *read_fd_all(int fd, size_t *n)
{
    struct stat sb;
    *n = 0;
    if (fstat(fd, &sb) < 0)
        return NULL;
    char *p = malloc((size_t)sb.st_size + 1);
    if (!p)
        return NULL;
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t k = pread(fd, p + got, (size_t)sb.st_size - got, (off_t)got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    p[got] = 0;
    *n = got;
    return p;
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

/* Does the file hold exactly these bytes? */
static bool file_is(const char *path, const char *p, size_t n)
{
    size_t fn = 0;
    char *f = t_read_file(path, &fn);
    bool eq = same_bytes(f, fn, p, n);
    free(f);
    return eq;
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- fixtures ------------------------------------------------------------------ */

/* A cut of a fixture (a prefix snapshot) and what its direct import made. */
typedef struct {
    size_t off;
    bool sid_ok;     /* its import names the fixture's session */
    uint64_t events; /* event lines */
    size_t size;     /* bytes of its events.ndjson */
    uint8_t sha[AT_SHA256_LEN];
} cut_rec;

typedef struct {
    char path[PATH_MAX];
    char name[256]; /* the basename, the upload's source */
    bool edge;      /* claude-edge/ (else claude/) */
    char *data;
    size_t n;
    char sid[300];
    char uuid[300];   /* the sessionId the transcript names ("" if none) */
    size_t named_end; /* the end of the first line naming it (n + 1 if none) */
    char *events;     /* the direct import (redacted) */
    size_t events_n;
    uint64_t nevents;
    char *meta; /* its meta.json, in a storage of its own */
    size_t meta_n;
    size_t *bound; /* line boundaries: offsets just after a line end, the last one n */
    size_t nbound;
    cut_rec *cut; /* per boundary */
    at_store *A;  /* holds the direct import: "a prefix after the full upload" */
    char adir[PATH_MAX];
    bool big;
    bool multibyte; /* has characters above U+007F */
} fixture;

static fixture fx[64];
static size_t nfx;

static void collect(const char *dir, bool edge)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) < 0)
            continue;
        size_t l = strlen(e->d_name);
        if (S_ISDIR(st.st_mode)) {
            collect(p, edge);
        } else if (l > 6 && strcmp(e->d_name + l - 6, ".jsonl") == 0 && nfx < 64 &&
                   (!getenv("HISTORY_ONLY") || strstr(e->d_name, getenv("HISTORY_ONLY")))) {
            fixture *f = &fx[nfx++];
            memset(f, 0, sizeof *f);
            snprintf(f->path, sizeof f->path, "%s", p);
            snprintf(f->name, sizeof f->name, "%s", e->d_name);
            f->edge = edge;
        }
    }
    if (d)
        closedir(d);
}

static int cmp_fixture(const void *a, const void *b)
{
    return strcmp(((const fixture *)a)->path, ((const fixture *)b)->path);
}

/* The reference events.ndjson / meta.json of a session. */
static void expected_path(const fixture *f, bool redacted, const char *file, char *out, size_t cap)
{
    const char *set = f->edge ? (redacted ? "expected-edge-redacted" : "expected-edge")
                              : (redacted ? "expected-redacted" : "expected");
    char rel[1024];
    snprintf(rel, sizeof rel, "tests/fixtures/%s/%s/%s", set, f->sid, file);
    snprintf(out, cap, "%s", t_src(rel));
}

static void find_bounds(fixture *f)
{
    f->bound = malloc((f->n + 1) * sizeof *f->bound);
    f->nbound = 0;
    for (size_t p = 1; p <= f->n; p++) {
        char c = f->data[p - 1];
        if (c == '\n' || (c == '\r' && (p == f->n || f->data[p] != '\n')))
            f->bound[f->nbound++] = p;
    }
    if (f->nbound == 0 || f->bound[f->nbound - 1] != f->n)
        f->bound[f->nbound++] = f->n; /* the whole file is the last cut */
    f->cut = calloc(f->nbound, sizeof *f->cut);
    for (size_t i = 0; i < f->nbound; i++)
        f->cut[i].off = f->bound[i];
    for (size_t i = 0; i < f->n; i++)
        if ((unsigned char)f->data[i] >= 0x80)
            f->multibyte = true;
}

/* The sessionId the transcript names (a subagent's id is agent-<id>.<it>)
 * and where the first line naming it ends: only a cut after that line can
 * be resumed (importer.h). */
static void find_named(fixture *f)
{
    const char *dot = strncmp(f->sid, "agent-", 6) == 0 ? strchr(f->sid, '.') : NULL;
    snprintf(f->uuid, sizeof f->uuid, "%s", dot ? dot + 1 : f->sid);
    char pat[400];
    snprintf(pat, sizeof pat, "\"sessionId\":\"%s\"", f->uuid);
    const char *k = strstr(f->data, pat);
    f->named_end = f->n + 1;
    if (!k)
        return;
    for (size_t i = 0; i < f->nbound; i++)
        if (f->bound[i] > (size_t)(k - f->data)) {
            f->named_end = f->bound[i];
            break;
        }
}

/* ---- the library: imports and commits --------------------------------------------- */

static int scratch_fd(void)
{
    int fd = memfd_create("test_history", MFD_CLOEXEC);
    return fd >= 0 ? fd : at_open_tmpfile(NULL);
}

/* Runs the importer over data[0..n) into fd, fresh or resumed from state,
 * keeping its state (what the server does). res is always initialized. */
static at_result import_into(int fd, const char *data, size_t n, const char *source, at_redact *rd,
                             const char *state, size_t state_len, at_import_result *res, at_error *err)
{
    memset(res, 0, sizeof *res);
    at_import_options o = {.source = source,
                           .out_fd = fd,
                           .redact = rd,
                           .resume = state,
                           .resume_len = state_len,
                           .keep_state = true};
    at_import *im = at_import_new(&o, err);
    if (!im)
        return err->code ? err->code : AT_ERR_NOMEM;
    at_result r = n ? at_import_feed(im, data, n, err) : AT_OK;
    at_error e2 = {0};
    at_result r2 = at_import_finish(im, res, r == AT_OK ? err : &e2);
    at_import_free(im);
    return r != AT_OK ? r : r2;
}

/* A direct import of data[0..n) into memory: its events.ndjson bytes. */
static char *direct_events(const char *data, size_t n, const char *source, at_redact *rd, size_t *out_n,
                           at_import_result *res_out)
{
    int fd = scratch_fd();
    at_import_result res;
    at_error err = {0};
    char *out = NULL;
    *out_n = 0;
    if (import_into(fd, data, n, source, rd, NULL, 0, &res, &err) == AT_OK)
        out = read_fd_all(fd, out_n);
    else
        fprintf(stderr, "direct import of %zu bytes (%s): %s\n", n, source, err.message);
    close(fd);
    if (res_out)
        *res_out = res;
    else
        at_import_result_fini(&res);
    return out;
}

/* Stages bytes and commits them with res (the import result they came from). */
static at_result commit_bytes(at_store *s, const char *p, size_t n, at_import_result *res,
                              at_commit_info *info, at_error *err)
{
    at_stage st;
    at_result r = at_store_stage(s, &st, err);
    if (r != AT_OK)
        return r;
    if (at_write_all(st.fd, p, n) != AT_OK) {
        at_stage_discard(&st);
        return at_error_set(err, AT_ERR_IO, -1, "cannot stage");
    }
    return at_store_commit_import(s, &st, res, info, err);
}

/* One upload into a store, as POST /import does it: fresh (sid NULL) or
 * incremental from offset (the store's saved state for sid). */
static at_result lib_upload(at_store *s, const char *data, size_t n, const char *source, at_redact *rd,
                            const char *sid, uint64_t offset, at_commit_info *info, at_import_result *res,
                            at_error *err)
{
    char *state = NULL;
    size_t state_len = 0;
    int64_t recorded;
    uint64_t from = 0;
    memset(res, 0, sizeof *res);
    memset(info, 0, sizeof *info);
    at_result r = AT_OK;
    if (sid &&
        (r = at_store_resume_state(s, sid, offset, &state, &state_len, &recorded, &from, err)) != AT_OK)
        return r;
    at_stage st;
    if ((r = at_store_stage(s, &st, err)) != AT_OK) {
        free(state);
        return r;
    }
    r = import_into(st.fd, data, n, source, rd, state, state_len, res, err);
    free(state);
    if (r != AT_OK) {
        at_stage_discard(&st);
        return r;
    }
    info->resumed_from = from;
    return at_store_commit_import(s, &st, res, info, err);
}

static at_store *open_store(const char *dir)
{
    at_error err = {0};
    at_store *s = at_store_open(dir, &err);
    if (!s)
        fprintf(stderr, "cannot open storage %s: %s\n", dir, err.message);
    return s;
}

/* A fresh storage directory under the fast root. */
static at_store *fresh_store(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/s-XXXXXX", fast);
    if (!mkdtemp(dir))
        return NULL;
    return open_store(dir);
}

static char *session_file(const char *root, const char *sid, const char *file, size_t *n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s/%s", root, sid, file);
    *n = 0;
    return t_read_file(p, n);
}

/* ---- the upload rules, as an oracle ----------------------------------------------- */

/* Bytes of the last line (with its "\n") when it is a session_end event, else 0. */
static size_t end_len(const char *p, size_t n)
{
    if (n == 0 || p[n - 1] != '\n')
        return 0;
    size_t s = n - 1;
    while (s > 0 && p[s - 1] != '\n')
        s--;
    static const char pre[] = "{\"event_type\":\"session_end\"";
    return n - s >= sizeof pre - 1 && memcmp(p + s, pre, sizeof pre - 1) == 0 ? n - s : 0;
}

/* What the rules make of an import `nw` when the current version is `cur`
 * (cur_import: it came from an import, so its session_end is the
 * import's); *stale for unchanged. */
static at_upload_result rule(const char *cur, size_t cn, uint64_t cur_events, bool cur_import, const char *nw,
                             size_t nn, uint64_t new_events, bool *stale)
{
    *stale = false;
    if (!cur)
        return AT_UPLOAD_CREATED;
    if (same_bytes(cur, cn, nw, nn))
        return AT_UPLOAD_UNCHANGED;
    size_t nb = nn - end_len(nw, nn);
    if (nb <= cn && memcmp(cur, nw, nb) == 0) {
        *stale = cur_events > new_events;
        return AT_UPLOAD_UNCHANGED;
    }
    size_t ce = cur_import ? end_len(cur, cn) : 0;
    if (ce && cn - ce <= nn && memcmp(cur, nw, cn - ce) == 0)
        return AT_UPLOAD_EXTENDED;
    return AT_UPLOAD_REPLACED;
}

/* Do two events files differ only in their closing session_end (the
 * transcript grew by lines that make no event, yet move its timestamp)? */
static bool only_end_differs(const char *a, size_t an, const char *b, size_t bn)
{
    size_t ab = an - end_len(a, an), bb = bn - end_len(b, bn);
    return !same_bytes(a, an, b, bn) && ab == bb && memcmp(a, b, ab) == 0;
}

static const char *rname(at_upload_result r)
{
    return at_upload_result_name(r);
}

/* Verifies bytes as a strict chain; true when intact. */
static bool chain_ok(const char *p, size_t n, uint64_t *events)
{
    at_verifier *v = at_verifier_new(AT_VERIFY_STRICT);
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    at_error err = {0};
    bool ok =
        v && at_verifier_feed(v, p, n, &err) == AT_OK && at_verifier_finish(v, &rep, &err) == AT_OK && rep.ok;
    if (events)
        *events = rep.total_events;
    at_verify_report_fini(&rep);
    at_verifier_free(v);
    return ok;
}

/* A version's bytes through the store (0: the current one). */
static char *version_bytes(at_store *s, const char *sid, uint64_t version, size_t *n)
{
    at_object_reader *rd;
    at_error err = {0};
    *n = 0;
    if (at_store_open_version(s, sid, version, &rd, &err) != AT_OK)
        return NULL;
    uint64_t size = at_object_size(rd);
    char *p = malloc(size + 1);
    size_t got = 0;
    while (p && got < size) {
        ssize_t k = at_object_read(rd, got, p + got, size - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    at_object_reader_free(rd);
    if (p)
        p[got] = 0;
    *n = got;
    return p;
}

/* ---- 2 and 3 in-process: every cut of every fixture ------------------------------------ */

typedef struct {
    at_redact *rd;
    size_t cached;         /* the fixture whose full import result `full` is (SIZE_MAX: none) */
    at_import_result full; /* this thread's own copy: a commit completes its metadata */
} worker;

static void worker_full(worker *w, size_t fi)
{
    if (w->cached == fi)
        return;
    if (w->cached != SIZE_MAX)
        at_import_result_fini(&w->full);
    size_t n;
    free(direct_events(fx[fi].data, fx[fi].n, fx[fi].name, w->rd, &n, &w->full));
    w->cached = fi;
}

/* Samples of the two fixtures of about 3 MB (1500 and 1800 lines, 85% of
 * the work otherwise): the full upload after every 2nd cut and after each
 * of the last 40 (where lines stop making events); incremental uploads at
 * every 20th cut and inside every 100th line. Every cut of the others. */
static bool sample_full_after(const fixture *f, size_t bi)
{
    return !f->big || bi % 2 == 0 || bi + 40 >= f->nbound;
}

static bool sample_two_step(const fixture *f, size_t bi)
{
    return !f->big || bi % 20 == 0;
}

static bool sample_inside(const fixture *f, size_t bi)
{
    return !f->big || bi % 100 == 0;
}

/* The import of data[0..off): from the state after an earlier cut `from`
 * (its events prev) when there is one, else directly. *out gets the whole
 * events.ndjson (the kept part of prev, then the new lines); res describes
 * the whole transcript, as a direct import's result does. */
static at_result import_prefix(worker *w, fixture *f, size_t from, const char *prev, size_t prev_n,
                               const char *state, size_t state_len, size_t off, char **out, size_t *out_n,
                               at_import_result *res, at_error *err)
{
    int fd = scratch_fd();
    at_result r = state ? import_into(fd, f->data + from, off - from, NULL, w->rd, state, state_len, res, err)
                        : import_into(fd, f->data, off, f->name, w->rd, NULL, 0, res, err);
    size_t tn;
    char *tail = read_fd_all(fd, &tn);
    close(fd);
    *out = NULL;
    *out_n = 0;
    if (state && res->body_bytes > prev_n) {
        free(tail);
        return r != AT_OK ? r : at_error_set(err, AT_ERR_IO, -1, "body_bytes past the old events");
    }
    size_t keep = state ? res->body_bytes : 0;
    char *p = malloc(keep + tn + 1);
    if (keep)
        memcpy(p, prev, keep);
    if (tn)
        memcpy(p + keep, tail, tn);
    p[keep + tn] = 0;
    free(tail);
    *out = p;
    *out_n = keep + tn;
    res->body_bytes = res->body_lines = 0;
    return r;
}

/* Uploads data[0..off) into a fresh storage (a direct import, as a client
 * posting its snapshot), then incrementally (?offset=off) the rest of the
 * transcript: the result and the bytes of uploading the whole file. */
static void two_step(worker *w, fixture *f, size_t off, const char *what)
{
    char dir[PATH_MAX];
    at_store *s = fresh_store(dir, sizeof dir);
    if (!s) {
        LOOP_CHECK(K_IMPORT, false, "cannot make a storage");
        return;
    }
    at_commit_info info;
    at_import_result res;
    at_error err = {0};
    at_result r = lib_upload(s, f->data, off, f->name, w->rd, NULL, 0, &info, &res, &err);
    bool mine = r == AT_OK && res.session_id && strcmp(res.session_id, f->sid) == 0;
    at_import_result_fini(&res);
    LOOP_CHECK(K_IMPORT, r == AT_OK, "%s: %s at %zu: %s", f->name, what, off, err.message);
    if (!mine) { /* a cut that names no session yet (its id comes from the source) */
        at_store_free(s);
        rm_rf(dir);
        return;
    }
    size_t pn;
    char *p = session_file(dir, f->sid, "events.ndjson", &pn);
    memset(&err, 0, sizeof err);
    r = lib_upload(s, f->data + off, f->n - off, NULL, w->rd, f->sid, off, &info, &res, &err);
    if (off < f->named_end) {
        /* no complete line named the session: resuming would give the held
         * events another id, so the server refuses (a 409) */
        if (f->named_end > f->n)
            LOOP_CHECK(K_INCR_REFUSED, r == AT_ERR_INVALID && strstr(err.message, "cannot resume"),
                       "%s: %s at %zu: %s", f->name, what, off, r == AT_OK ? "resumed" : err.message);
    } else {
        LOOP_CHECK(K_INCR_RESUME, r == AT_OK, "%s: %s at %zu: %s", f->name, what, off, err.message);
        at_upload_result want =
            same_bytes(p, pn, f->events, f->events_n) ? AT_UPLOAD_UNCHANGED : AT_UPLOAD_EXTENDED;
        bool eo = only_end_differs(p, pn, f->events, f->events_n);
        if (r == AT_OK) {
            LOOP_CHECK(eo ? K_END_ONLY : K_INCR_RESULT,
                       info.result == want && info.version == (want == AT_UPLOAD_UNCHANGED ? 1u : 2u),
                       "%s: %s, offset %zu: %s version %llu, want %s (what uploading the whole file gives)",
                       f->name, what, off, rname(info.result), (unsigned long long)info.version, rname(want));
            size_t en, mn;
            char *e = session_file(dir, f->sid, "events.ndjson", &en);
            char *m = session_file(dir, f->sid, "meta.json", &mn);
            LOOP_CHECK(eo ? K_END_ONLY : K_INCR_BYTES, same_bytes(e, en, f->events, f->events_n),
                       "%s: %s, offset %zu: events.ndjson differs from the direct import (%zu vs %zu bytes)",
                       f->name, what, off, en, f->events_n);
            LOOP_CHECK(eo ? K_END_ONLY : K_INCR_META, same_bytes(m, mn, f->meta, f->meta_n),
                       "%s: %s, offset %zu: meta.json differs from the direct import:\n%.*s\nwant\n%.*s",
                       f->name, what, off, (int)mn, m ? m : "", (int)f->meta_n, f->meta);
            free(e);
            free(m);
        }
    }
    at_import_result_fini(&res);
    free(p);
    at_store_free(s);
    rm_rf(dir);
}

/* A cut inside a UTF-8 character (off just after a lead byte): the import
 * cannot finish (AT_ERR_UTF8: the store records no such cut, a 422 over
 * HTTP) yet keeps a state that the rest of the bytes complete into exactly
 * the direct import (importer.h). */
static void cut_in_char(worker *w, fixture *f, size_t from, const char *prev, size_t prev_n,
                        const char *state, size_t state_len, size_t off)
{
    char *a = NULL, *b = NULL;
    size_t an = 0;
    at_import_result r1, r2;
    at_error err = {0};
    at_result r = import_prefix(w, f, from, prev, prev_n, state, state_len, off, &a, &an, &r1, &err);
    LOOP_CHECK(K_UTF8, r == AT_ERR_UTF8 && r1.state, "%s: a cut at %zu inside a character: %s, state %s",
               f->name, off, at_result_str(r), r1.state ? "kept" : "missing");
    if (r == AT_ERR_UTF8 && r1.state && a) {
        int fd = scratch_fd();
        memset(&err, 0, sizeof err);
        r = import_into(fd, f->data + off, f->n - off, NULL, w->rd, r1.state, r1.state_len, &r2, &err);
        size_t bn;
        b = read_fd_all(fd, &bn);
        close(fd);
        bool eq = r == AT_OK && b && r2.body_bytes <= an && r2.body_bytes + bn == f->events_n &&
                  memcmp(a, f->events, r2.body_bytes) == 0 && memcmp(b, f->events + r2.body_bytes, bn) == 0;
        LOOP_CHECK(K_UTF8, eq, "%s: resumed inside a character at %zu: %s", f->name, off,
                   r == AT_OK ? "other bytes than the direct import" : err.message);
        at_import_result_fini(&r2);
    }
    free(a);
    free(b);
    at_import_result_fini(&r1);
}

/* Phase A, one fixture, every cut in order (each prefix imported by
 * resuming the previous one's state, cross-checked against a direct import
 * at every cut of a small fixture and every 10th of a big one): the prefix
 * uploaded after the full transcript (unchanged, stale), into a fresh
 * storage followed by the full transcript (extended, the direct import's
 * bytes), and incrementally at the cut and inside the line before it. */
static void walk(worker *w, size_t fi)
{
    fixture *f = &fx[fi];
    char *prev = NULL, *state = NULL;
    size_t prev_n = 0, state_len = 0, from = 0;
    worker_full(w, fi);
    for (size_t bi = 0; bi < f->nbound; bi++) {
        size_t k = f->bound[bi];
        bool resume = state && from >= f->named_end;
        at_error err = {0};

        /* inside the line that ends at k, from the state at its start */
        if (sample_inside(f, bi) && k - from >= 3) {
            size_t mid = from + (k - from) / 2;
            while (mid < k - 1 && ((unsigned char)f->data[mid] & 0xc0) == 0x80)
                mid++;
            two_step(w, f, from + 1, "just after a line's first byte");
            two_step(w, f, mid, "in the middle of a line");
            two_step(w, f, k - 1, "just before a line's end");
            for (size_t i = from; from >= f->named_end && i < k; i++)
                if (((unsigned char)f->data[i] & 0xc0) == 0xc0) { /* a lead byte: cut after it */
                    cut_in_char(w, f, from, prev, prev_n, resume ? state : NULL, state_len, i + 1);
                    break;
                }
        }

        /* the cut at k */
        char *p;
        size_t pn;
        at_import_result res;
        memset(&err, 0, sizeof err);
        at_result r =
            import_prefix(w, f, from, prev, prev_n, resume ? state : NULL, state_len, k, &p, &pn, &res, &err);
        LOOP_CHECK(K_IMPORT, r == AT_OK, "%s: prefix %zu: %s", f->name, k, err.message);
        if (r != AT_OK) {
            free(p);
            at_import_result_fini(&res);
            break;
        }
        if (resume && (!f->big || bi % 10 == 0 || k == f->n)) {
            size_t dn;
            at_import_result dres;
            char *d = direct_events(f->data, k, f->name, w->rd, &dn, &dres);
            LOOP_CHECK(K_RESUME_SAME,
                       same_bytes(d, dn, p, pn) && dres.events == res.events && dres.bytes == res.bytes &&
                           memcmp(dres.events_sha256, res.events_sha256, AT_SHA256_LEN) == 0 &&
                           memcmp(dres.transcript_sha256, res.transcript_sha256, AT_SHA256_LEN) == 0 &&
                           strcmp(dres.session_id, res.session_id) == 0,
                       "%s: the prefix of %zu bytes resumed from %zu is not its direct import", f->name, k,
                       from);
            free(d);
            at_import_result_fini(&dres);
        }
        cut_rec *c = &f->cut[bi];
        c->sid_ok = res.session_id && strcmp(res.session_id, f->sid) == 0;
        c->size = pn;
        c->events = res.events;
        at_sha256_oneshot(p, pn, c->sha);
        if (k == f->n) {
            LOOP_CHECK(K_RESUME_SAME, same_bytes(p, pn, f->events, f->events_n),
                       "%s: the last cut is not the direct import", f->name);
        } else if (c->sid_ok) {
            /* after the full upload: an older snapshot */
            bool stale;
            at_upload_result want = rule(f->events, f->events_n, f->nevents, true, p, pn, res.events, &stale);
            LOOP_CHECK(
                K_RULE, want == AT_UPLOAD_UNCHANGED,
                "%s: the events of the prefix of %zu bytes are not an older snapshot of the full import",
                f->name, k);
            at_commit_info info;
            if (want == AT_UPLOAD_UNCHANGED) {
                r = commit_bytes(f->A, p, pn, &res, &info, &err);
                LOOP_CHECK(K_AFTER_FULL,
                           r == AT_OK && info.result == AT_UPLOAD_UNCHANGED && info.stale == stale &&
                               info.version == 1,
                           "%s: prefix %zu after the full upload: %s, %s, stale %d (want %d), version %llu",
                           f->name, k, at_result_str(r), rname(info.result), info.stale, stale,
                           (unsigned long long)info.version);
            }
            /* into a fresh storage, then the full transcript */
            char dir[PATH_MAX];
            at_store *s = sample_full_after(f, bi) ? fresh_store(dir, sizeof dir) : NULL;
            if (s) {
                memset(&err, 0, sizeof err);
                r = commit_bytes(s, p, pn, &res, &info, &err);
                LOOP_CHECK(K_CREATED, r == AT_OK && info.result == AT_UPLOAD_CREATED && info.version == 1,
                           "%s: prefix %zu into a fresh storage: %s %s", f->name, k, at_result_str(r),
                           rname(info.result));
                bool grew = !same_bytes(p, pn, f->events, f->events_n);
                bool eo = only_end_differs(p, pn, f->events, f->events_n);
                at_upload_result want2 = grew ? AT_UPLOAD_EXTENDED : AT_UPLOAD_UNCHANGED;
                r = commit_bytes(s, f->events, f->events_n, &w->full, &info, &err);
                LOOP_CHECK(eo ? K_END_ONLY : K_EXTENDED,
                           r == AT_OK && info.result == want2 && info.version == (grew ? 2u : 1u),
                           "%s: the full upload after the prefix of %zu bytes: %s %s, want %s", f->name, k,
                           at_result_str(r), rname(info.result), rname(want2));
                size_t en;
                char *e = session_file(dir, f->sid, "events.ndjson", &en);
                LOOP_CHECK(
                    eo ? K_END_ONLY : K_EXT_BYTES, same_bytes(e, en, f->events, f->events_n),
                    "%s: after the prefix of %zu bytes and the full upload, events.ndjson is not the direct "
                    "import",
                    f->name, k);
                free(e);
                at_version *v = NULL;
                size_t nv = 0;
                r = at_store_versions(s, f->sid, &v, &nv, &err);
                uint8_t tsha[AT_SHA256_LEN], fsha[AT_SHA256_LEN];
                at_sha256_oneshot(f->data, k, tsha);
                at_sha256_oneshot(f->data, f->n, fsha);
                bool ok = r == AT_OK && nv == (grew ? 2u : 1u) && v[0].version == 1 &&
                          v[0].cause == AT_CAUSE_IMPORT && v[0].transcript_bytes == (int64_t)k &&
                          memcmp(v[0].transcript_sha256, tsha, AT_SHA256_LEN) == 0 &&
                          v[0].events == res.events && v[0].size == pn &&
                          memcmp(v[0].head, res.head, AT_SHA256_LEN) == 0;
                if (ok && grew)
                    ok = v[1].version == 2 && v[1].cause == AT_CAUSE_IMPORT &&
                         v[1].transcript_bytes == (int64_t)f->n &&
                         memcmp(v[1].transcript_sha256, fsha, AT_SHA256_LEN) == 0 &&
                         v[1].events == f->nevents && v[1].time > v[0].time;
                LOOP_CHECK(eo ? K_END_ONLY : K_LISTING, ok,
                           "%s: prefix %zu then full: the versions listing is wrong (%zu versions)", f->name,
                           k, nv);
                free(v);
                at_store_free(s);
                rm_rf(dir);
            }
            if (sample_two_step(f, bi))
                two_step(w, f, k, "at a line boundary");
        }
        /* the next cut resumes from this one */
        free(prev);
        free(state);
        prev = p;
        prev_n = pn;
        state = res.state;
        state_len = res.state_len;
        res.state = NULL;
        at_import_result_fini(&res);
        from = k;
    }
    free(prev);
    free(state);
}

/* Phase B, one fixture: a chain of incremental uploads through every line
 * boundary (the offset: the current version's transcript_bytes); after
 * each, the current version is the direct import of the transcript so far;
 * every version verifies. */
static void phase_b(worker *w, size_t fi)
{
    fixture *f = &fx[fi];
    size_t i0 = 0;
    while (i0 + 1 < f->nbound && (!f->cut[i0].sid_ok || f->bound[i0] < f->named_end))
        i0++;
    if (i0 + 1 >= f->nbound)
        return;
    char dir[PATH_MAX];
    at_store *s = fresh_store(dir, sizeof dir);
    if (!s) {
        LOOP_CHECK(K_IMPORT, false, "cannot make a storage");
        return;
    }
    at_commit_info info;
    at_import_result res;
    at_error err = {0};
    at_result r = lib_upload(s, f->data, f->bound[i0], f->name, w->rd, NULL, 0, &info, &res, &err);
    at_import_result_fini(&res);
    LOOP_CHECK(K_CHAIN_RESULT, r == AT_OK && info.result == AT_UPLOAD_CREATED, "%s: chain start at %zu: %s",
               f->name, f->bound[i0], err.message);
    bool stuck = false; /* the last step was growth that only moved session_end */
    for (size_t bi = i0 + 1; r == AT_OK && bi < f->nbound; bi++) {
        size_t b = f->bound[bi];
        at_version cur, after;
        bool have;
        if (at_store_current(s, f->sid, &cur, &have, &err) != AT_OK || !have || cur.transcript_bytes < 0) {
            LOOP_CHECK(K_CHAIN_RESULT, false, "%s: no current version before %zu", f->name, b);
            break;
        }
        size_t off = (size_t)cur.transcript_bytes;
        r = lib_upload(s, f->data + off, b - off, NULL, w->rd, f->sid, off, &info, &res, &err);
        at_import_result_fini(&res);
        const cut_rec *c = &f->cut[bi];
        bool same = cur.size == c->size && memcmp(cur.events_sha256, c->sha, AT_SHA256_LEN) == 0;
        at_upload_result want = same ? AT_UPLOAD_UNCHANGED : AT_UPLOAD_EXTENDED;
        /* no new event, yet other bytes: the lines moved session_end only */
        bool eo = !same && c->events == cur.events;
        stuck = eo;
        LOOP_CHECK(eo ? K_END_ONLY : K_CHAIN_RESULT, r == AT_OK && info.result == want,
                   "%s: chain, bytes [%zu, %zu) at offset %zu: %s %s, want %s", f->name, off, b, off,
                   r == AT_OK ? "" : err.message, rname(info.result), rname(want));
        if (r != AT_OK || at_store_current(s, f->sid, &after, &have, &err) != AT_OK)
            break;
        LOOP_CHECK(eo ? K_END_ONLY : K_CHAIN_BYTES,
                   after.size == c->size && memcmp(after.events_sha256, c->sha, AT_SHA256_LEN) == 0 &&
                       after.events == c->events && after.transcript_bytes == (int64_t)(same ? off : b),
                   "%s: chain at %zu: the current version is not the direct import of the transcript so far",
                   f->name, b);
    }
    size_t en;
    char *e = session_file(dir, f->sid, "events.ndjson", &en);
    LOOP_CHECK(stuck ? K_END_ONLY : K_CHAIN_BYTES, same_bytes(e, en, f->events, f->events_n),
               "%s: the chain's events.ndjson is not the direct import", f->name);
    free(e);
    at_version *v = NULL;
    size_t nv = 0;
    if (at_store_versions(s, f->sid, &v, &nv, &err) == AT_OK) {
        for (size_t i = 0; i < nv; i++) {
            if (f->big && i % 10 != 0 && i + 1 != nv)
                continue;
            size_t bn;
            char *bytes = version_bytes(s, f->sid, v[i].version, &bn);
            uint8_t d[AT_SHA256_LEN];
            at_sha256_oneshot(bytes ? bytes : "", bn, d);
            uint64_t evs = 0;
            LOOP_CHECK(K_CHAIN_VERIFY,
                       bytes && bn == v[i].size && memcmp(d, v[i].events_sha256, AT_SHA256_LEN) == 0 &&
                           chain_ok(bytes, bn, &evs) && evs == v[i].events && v[i].version == i + 1 &&
                           (i == 0 || v[i].time > v[i - 1].time),
                       "%s: chain version %llu of %zu: bytes, digest or chain wrong", f->name,
                       (unsigned long long)v[i].version, nv);
            free(bytes);
        }
    }
    free(v);
    at_store_free(s);
    rm_rf(dir);
}

typedef struct {
    size_t *fi;
    size_t n;
    size_t next; /* atomically taken */
    int phase;
} pool;

static void *pool_run(void *arg)
{
    pool *p = arg;
    worker w = {.cached = SIZE_MAX};
    at_error err = {0};
    if (!(w.rd = at_redact_new(&err))) {
        fprintf(stderr, "cannot start redaction: %s\n", err.message);
        return NULL;
    }
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n)
            break;
        if (p->phase == 0)
            walk(&w, p->fi[i]);
        else
            phase_b(&w, p->fi[i]);
    }
    if (w.cached != SIZE_MAX)
        at_import_result_fini(&w.full);
    at_redact_free(w.rd);
    return NULL;
}

static void run_pool(pool *p, int threads)
{
    pthread_t t[8];
    p->next = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, pool_run, p);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
}

/* Reads every fixture, imports it directly (the reference bytes: the same
 * as tests/fixtures/expected-redacted) into a storage of its own. */
static void setup_fixtures(void)
{
    collect(t_src("tests/fixtures/claude"), false);
    collect(t_src("tests/fixtures/claude-edge"), true);
    qsort(fx, nfx, sizeof *fx, cmp_fixture);
    CHECK(nfx >= (getenv("HISTORY_ONLY") ? 1u : 16u), "found %zu fixtures", nfx);
    at_error err = {0};
    at_redact *rd = at_redact_new(&err);
    for (size_t i = 0; i < nfx; i++) {
        fixture *f = &fx[i];
        f->data = t_read_file(f->path, &f->n);
        if (!f->data || f->n == 0)
            continue;
        f->big = f->n > (1u << 20);
        find_bounds(f);
        snprintf(f->adir, sizeof f->adir, "%s/a-%zu", fast, i);
        f->A = open_store(f->adir);
        at_import_result res;
        at_commit_info info;
        memset(&err, 0, sizeof err);
        at_result r =
            f->A ? lib_upload(f->A, f->data, f->n, f->name, rd, NULL, 0, &info, &res, &err) : AT_ERR_IO;
        CHECK(r == AT_OK && info.result == AT_UPLOAD_CREATED, "%s: direct import: %s", f->name, err.message);
        if (r != AT_OK) {
            at_import_result_fini(&res);
            continue;
        }
        snprintf(f->sid, sizeof f->sid, "%s", res.session_id);
        f->nevents = res.events;
        at_import_result_fini(&res);
        f->events = session_file(f->adir, f->sid, "events.ndjson", &f->events_n);
        f->meta = session_file(f->adir, f->sid, "meta.json", &f->meta_n);
        find_named(f);
        char want[PATH_MAX];
        expected_path(f, true, "events.ndjson", want, sizeof want);
        CHECK(file_is(want, f->events, f->events_n), "%s: the direct import differs from %s", f->name, want);
    }
    at_redact_free(rd);
}

static int cmp_size_desc(const void *a, const void *b)
{
    size_t x = fx[*(const size_t *)a].n, y = fx[*(const size_t *)b].n;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* cuts_only: phase A alone (every cut imported in-process: the cut
 * records the HTTP tests upload and compare against), its passed checks
 * not counted (test_history counts them; a failure still counts). */
static void test_library_loops(bool cuts_only)
{
    double t0 = now_mono();
    pool p = {.fi = calloc(nfx + 1, sizeof(size_t))};
    for (size_t i = 0; i < nfx; i++)
        if (fx[i].A && fx[i].events)
            p.fi[p.n++] = i;
    qsort(p.fi, p.n, sizeof *p.fi, cmp_size_desc); /* the big ones set the wall time */
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = nc < 2 ? 2 : nc > 4 ? 4 : (int)nc;
    if (getenv("HISTORY_THREADS"))
        threads = (int)strtol(getenv("HISTORY_THREADS"), NULL, 10);
    size_t cuts = 0;
    for (size_t i = 0; i < p.n; i++)
        cuts += fx[p.fi[i]].nbound;
    int passed0 = t_passed;
    run_pool(&p, threads);
    double t1 = now_mono();
    if (cuts_only) {
        t_passed = passed0;
        free(p.fi);
        printf("in-process: %zu cuts of %zu fixtures (%.1f s), for the cut records\n", cuts, nfx, t1 - t0);
        return;
    }
    p.phase = 1;
    run_pool(&p, threads);
    free(p.fi);
    double t2 = now_mono();
    unsigned fails = 0;
    for (int k = 0; k < K_NKINDS; k++)
        fails += kind_fail[k];
    printf("in-process: %zu cuts of %zu fixtures (%.1f s), incremental chains (%.1f s), %u checks failed\n",
           cuts, nfx, t1 - t0, t2 - t1, fails);
    for (int k = 0; k < K_NKINDS; k++)
        printf("  %-45s %6u passed %6u failed\n", kind_name[k], kind_pass[k], kind_fail[k]);
    /* the storage holding the full upload still has exactly its one version */
    for (size_t i = 0; i < nfx; i++) {
        if (!fx[i].A || !fx[i].events)
            continue;
        at_version *v = NULL;
        size_t nv = 0;
        at_error err = {0};
        at_result r = at_store_versions(fx[i].A, fx[i].sid, &v, &nv, &err);
        size_t en;
        char *e = session_file(fx[i].adir, fx[i].sid, "events.ndjson", &en);
        CHECK(r == AT_OK && nv == 1 && same_bytes(e, en, fx[i].events, fx[i].events_n),
              "%s: older snapshots changed the storage (%zu versions)", fx[i].name, nv);
        free(e);
        free(v);
    }
}

/* ---- HTTP with libcurl -------------------------------------------------------------- */

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
    /* chunks of 1, 7, 4096, 65536 ... bytes: boundaries inside characters */
    if (u->chunk)
        u->chunk = u->chunk == 1 ? 7 : u->chunk == 7 ? 4096 : u->chunk == 4096 ? 65536 : 1;
    return k;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    return at_buf_add(ud, p, size * n) == AT_OK ? size * n : 0;
}

typedef struct {
    long status;
    at_buf body;
    json_t *json; /* the body parsed, when it is JSON */
} reply;

enum { SEND_LENGTH = 0, SEND_CHUNKED = 1, SEND_PUT = 2, SEND_GZIP = 3 };

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

/* method, path (after host:port), body (NULL: none), mode; r->body and
 * r->json are the caller's (reply_fini). */
static void http(const daemon_t *d, const char *method, const char *path, const char *body, size_t n,
                 int mode, reply *r)
{
    memset(r, 0, sizeof *r);
    at_buf_init(&r->body, 0);
    CURL *c = curl_easy_init();
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    struct curl_slist *h = NULL;
    char *gz = NULL;
    upload_src u = {body, n, 0, 1};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        if (mode == SEND_GZIP) {
            size_t gn = 0;
            gz = gzip_bytes(body, n, &gn);
            u = (upload_src){gz, gn, 0, 0};
            h = curl_slist_append(h, "Content-Encoding: gzip");
        }
        if (mode == SEND_PUT || strcmp(method, "PUT") == 0) {
            u.chunk = 0;
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &u);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u.n);
        } else if (mode == SEND_CHUNKED) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(c, CURLOPT_READDATA, &u);
        } else {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, u.p);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u.n);
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
    free(gz);
    if (!r->body.data)
        (void)!at_buf_adds(&r->body, "");
    r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
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

static bool jtrue(const reply *r, const char *key)
{
    return json_is_true(json_object_get(r->json, key));
}

static bool jnull(const reply *r, const char *key)
{
    return json_is_null(json_object_get(r->json, key));
}

static const char *body_of(const reply *r)
{
    return r->body.data ? r->body.data : "";
}

/* URL-encodes a query value. */
static void qenc(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
            ch == '-' || ch == '_') {
            out[k++] = (char)ch;
        } else {
            snprintf(out + k, 4, "%%%02X", ch);
            k += 3;
        }
    }
    out[k] = 0;
}

/* POST /import?source=NAME of data[0..n). */
static void upload(const daemon_t *d, const char *source, const char *data, size_t n, int mode, reply *r)
{
    char path[2048], enc[1024];
    qenc(enc, sizeof enc, source);
    snprintf(path, sizeof path, "/import?source=%s", enc);
    http(d, mode == SEND_PUT ? "PUT" : "POST", path, data, n, mode, r);
}

/* POST /import?session=SID&offset=OFF[&source=NAME] of a tail. */
static void upload_tail(const daemon_t *d, const char *sid, uint64_t off, const char *source,
                        const char *data, size_t n, int mode, reply *r)
{
    char path[2048], enc[1024], src[1100] = "";
    qenc(enc, sizeof enc, sid);
    if (source) {
        char e2[1024];
        qenc(e2, sizeof e2, source);
        snprintf(src, sizeof src, "&source=%s", e2);
    }
    snprintf(path, sizeof path, "/import?session=%s&offset=%llu%s", enc, (unsigned long long)off, src);
    http(d, "POST", path, data, n, mode, r);
}

/* GET /sessions/SID/versions: the "versions" array (a new reference), NULL on failure. */
static json_t *versions(const daemon_t *d, const char *sid)
{
    char path[1200], enc[1024];
    qenc(enc, sizeof enc, sid);
    snprintf(path, sizeof path, "/sessions/%s/versions", enc);
    reply r;
    http(d, "GET", path, NULL, 0, 0, &r);
    json_t *v = r.status == 200 ? json_object_get(r.json, "versions") : NULL;
    if (v)
        json_incref(v);
    else if (r.status != 404)
        fprintf(stderr, "versions of %s: %ld %s\n", sid, r.status, body_of(&r));
    reply_fini(&r);
    return v;
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

static double vtime(json_t *v, size_t i)
{
    return json_number_value(json_object_get(json_array_get(v, i), "time"));
}

/* GET path: the body (malloc'd) when 200, else NULL. */
static char *get_bytes(const daemon_t *d, const char *path, size_t *n)
{
    reply r;
    http(d, "GET", path, NULL, 0, 0, &r);
    char *p = NULL;
    *n = 0;
    if (r.status == 200)
        p = at_buf_steal(&r.body, n);
    reply_fini(&r);
    return p ? p : (r.status == 200 ? strdup("") : NULL);
}

/* GET /sessions/SID/events[?version=V] (0: current). */
static char *get_events(const daemon_t *d, const char *sid, uint64_t version, size_t *n)
{
    char path[1200], enc[1024];
    qenc(enc, sizeof enc, sid);
    if (version)
        snprintf(path, sizeof path, "/sessions/%s/events?version=%llu", enc, (unsigned long long)version);
    else
        snprintf(path, sizeof path, "/sessions/%s/events", enc);
    return get_bytes(d, path, n);
}

/* Is every version of a session served (events ?version=, the object by
 * digest) with the bytes its listing names, and does each verify (ok,
 * object_ok)? what: for messages. */
static void check_all_versions(const daemon_t *d, const char *sid, const char *what)
{
    json_t *v = versions(d, sid);
    CHECK(v && json_array_size(v) > 0, "%s: %s has no versions", what, sid);
    char enc[1024];
    qenc(enc, sizeof enc, sid);
    for (size_t i = 0; v && i < json_array_size(v); i++) {
        long long ver = vint(v, i, "version");
        size_t n, on;
        char *b = get_events(d, sid, (uint64_t)ver, &n);
        char hex[AT_SHA256_HEX] = "", path[1400];
        if (b)
            sha_hex(b, n, hex);
        snprintf(path, sizeof path, "/objects/sha256/%s", vstr(v, i, "events_sha256"));
        char *o = get_bytes(d, path, &on);
        CHECK(b && strcmp(hex, vstr(v, i, "events_sha256")) == 0 && same_bytes(b, n, o, on) &&
                  vint(v, i, "version") == (long long)i + vint(v, 0, "version"),
              "%s: %s version %lld: served bytes do not match the listing's digest", what, sid, ver);
        snprintf(path, sizeof path, "/sessions/%s/verify?version=%lld", enc, ver);
        reply r;
        http(d, "GET", path, NULL, 0, 0, &r);
        CHECK(r.status == 200 && jtrue(&r, "ok") && jtrue(&r, "object_ok") &&
                  strcmp(jstr(&r, "events_sha256"), vstr(v, i, "events_sha256")) == 0,
              "%s: %s version %lld does not verify: %ld %s", what, sid, ver, r.status, body_of(&r));
        reply_fini(&r);
        free(b);
        free(o);
    }
    json_decref(v);
}

/* ---- the command line ---------------------------------------------------------------- */

/* Runs bin with args; its stdout into out (malloc'd, may be NULL); the exit status. */
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

/* `agent-traced import --storage S --source NAME FILE` of bytes: the JSON line. */
static json_t *cli_import(const char *storage, const char *source, const char *data, size_t n, int *status)
{
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/cli-input-%d.jsonl", work, (int)getpid());
    write_file(file, data, n);
    char *out = NULL;
    const char *args[] = {"import", "--storage", storage, "--source", source, file, NULL};
    *status = run_cli(&out, args);
    json_t *j = json_loads(out ? out : "", 0, NULL);
    free(out);
    unlink(file);
    return j;
}

static const char *jv_str(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/* ---- storage inspection ------------------------------------------------------------------ */

/* One object file as found on disk. */
typedef struct {
    char name[80]; /* <64 hex>.ndjson|.delta */
    char sha[AT_SHA256_HEX];
    mode_t mode;
    nlink_t nlink;
    ino_t ino;
} obj_file;

typedef struct {
    obj_file *v;
    size_t n;
} obj_snap;

static int cmp_obj(const void *a, const void *b)
{
    return strcmp(((const obj_file *)a)->name, ((const obj_file *)b)->name);
}

/* Every file under <storage>/objects/sha256/ (dot names included). */
static void snap_objects(const char *storage, obj_snap *s)
{
    memset(s, 0, sizeof *s);
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s/objects/sha256", storage);
    DIR *d = opendir(base);
    struct dirent *e;
    size_t cap = 0;
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
            char p[PATH_MAX + 600];
            snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
            struct stat sb;
            if (lstat(p, &sb) < 0)
                continue;
            if (s->n == cap) {
                cap = cap ? cap * 2 : 64;
                s->v = realloc(s->v, cap * sizeof *s->v);
            }
            obj_file *of = &s->v[s->n++];
            memset(of, 0, sizeof *of);
            snprintf(of->name, sizeof of->name, "%s", f->d_name);
            of->mode = sb.st_mode & 07777;
            of->nlink = sb.st_nlink;
            of->ino = sb.st_ino;
            size_t n = 0;
            char *b = t_read_file(p, &n);
            sha_hex(b ? b : "", n, of->sha);
            free(b);
        }
        if (o)
            closedir(o);
    }
    if (d)
        closedir(d);
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, cmp_obj);
}

static const obj_file *snap_find(const obj_snap *s, const char *name)
{
    obj_file key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return s->n ? bsearch(&key, s->v, s->n, sizeof *s->v, cmp_obj) : NULL;
}

/* Is every object of `before` still in `after` with the same bytes, and is
 * every object read-only and of one link? */
static bool objects_kept(const obj_snap *before, const obj_snap *after, char *why, size_t cap)
{
    for (size_t i = 0; i < before->n; i++) {
        const obj_file *a = snap_find(after, before->v[i].name);
        if (!a || strcmp(a->sha, before->v[i].sha) != 0) {
            snprintf(why, cap, "object %s %s", before->v[i].name, a ? "changed" : "vanished");
            return false;
        }
    }
    for (size_t i = 0; i < after->n; i++)
        if ((after->v[i].mode & 0222) != 0 || after->v[i].nlink != 1) {
            snprintf(why, cap, "object %s has mode %o and %lu links", after->v[i].name,
                     (unsigned)after->v[i].mode, (unsigned long)after->v[i].nlink);
            return false;
        }
    return true;
}

/* A delta object's base (empty for a full object or an unreadable one). */
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

/* The sessions of a storage (directories with a meta.json); *n of them. */
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

/* The objects the storage's versions need (each version's object and the
 * bases of its delta chain), by reading histories through the store, and
 * the object files on disk: every needed one must exist and (after a gc)
 * nothing else. */
static void check_objects_referenced(const char *storage, bool exactly, const char *what)
{
    at_store *s = open_store(storage);
    if (!s) {
        CHECK(0, "%s: cannot open %s", what, storage);
        return;
    }
    size_t ns;
    char **sess = list_sessions(storage, &ns);
    char(*need)[AT_SHA256_HEX] = NULL;
    size_t nneed = 0, missing = 0;
    char first_missing[200] = "";
    for (size_t i = 0; i < ns; i++) {
        at_version *v = NULL;
        size_t nv = 0;
        at_error err = {0};
        if (at_store_versions(s, sess[i], &v, &nv, &err) != AT_OK)
            continue;
        for (size_t j = 0; j < nv; j++) {
            char hex[AT_SHA256_HEX];
            at_hex(v[j].events_sha256, AT_SHA256_LEN, hex);
            for (int depth = 0; hex[0] && depth < 200; depth++) {
                need = realloc(need, (nneed + 1) * sizeof *need);
                memcpy(need[nneed++], hex, AT_SHA256_HEX);
                char p1[PATH_MAX], p2[PATH_MAX];
                snprintf(p1, sizeof p1, "%s/objects/sha256/%.2s/%s.ndjson", storage, hex, hex);
                snprintf(p2, sizeof p2, "%s/objects/sha256/%.2s/%s.delta", storage, hex, hex);
                if (!file_exists(p1) && !file_exists(p2)) {
                    if (!missing++)
                        snprintf(first_missing, sizeof first_missing, "%s v%llu: %s", sess[i],
                                 (unsigned long long)v[j].version, hex);
                    break;
                }
                char b[AT_SHA256_HEX];
                delta_base(storage, hex, b);
                memcpy(hex, b, AT_SHA256_HEX);
            }
        }
        free(v);
    }
    CHECK(missing == 0, "%s: %zu referenced objects are missing (first: %s)", what, missing, first_missing);
    if (exactly) {
        obj_snap snap;
        snap_objects(storage, &snap);
        size_t extra = 0;
        char first_extra[100] = "";
        for (size_t i = 0; i < snap.n; i++) {
            bool needed = false;
            for (size_t j = 0; j < nneed && !needed; j++)
                needed = strncmp(snap.v[i].name, need[j], 64) == 0 && snap.v[i].name[64] == '.';
            if (!needed && !extra++)
                snprintf(first_extra, sizeof first_extra, "%s", snap.v[i].name);
        }
        CHECK(extra == 0, "%s: %zu unreferenced object files (first: %s)", what, extra, first_extra);
        free(snap.v);
    }
    free(need);
    free_list(sess, ns);
    at_store_free(s);
}

/* ---- 2 and 7 over HTTP: snapshots of every fixture, the reference storage ---------------- */

static void hex_of(const uint8_t d[AT_SHA256_LEN], char hex[AT_SHA256_HEX])
{
    at_hex(d, AT_SHA256_LEN, hex);
}

/* Cuts of a fixture for the HTTP samples: every 10th boundary (every one
 * of a fixture with at most 30; about 25 of the big ones) that names the session, each with more
 * events than the one before (growth that only moves session_end is a test
 * of its own), then the whole file. *n of them, as boundary indexes. */
static size_t *http_cuts(const fixture *f, size_t *n)
{
    size_t *v = malloc((f->nbound + 1) * sizeof *v), ok = 0;
    *n = 0;
    for (size_t i = 0; i + 1 < f->nbound; i++)
        ok += f->cut[i].sid_ok;
    size_t step = ok <= 30 ? 1 : ok / 25 > 10 ? ok / 25 : 10, seen = 0;
    uint64_t last_events = 0;
    for (size_t i = 0; i + 1 < f->nbound; i++) {
        const cut_rec *c = &f->cut[i];
        if (!c->sid_ok || seen++ % step != 0 || c->events <= last_events || c->events >= f->nevents)
            continue;
        v[(*n)++] = i;
        last_events = c->events;
    }
    v[(*n)++] = f->nbound - 1;
    return v;
}

/* Every sampled cut uploaded in order (created, then extended), the full
 * transcript last; then older snapshots again (unchanged, stale); the
 * versions listing; every version served and verified. */
static void http_snapshots(daemon_t *d, fixture *f)
{
    size_t nc;
    size_t *cuts = http_cuts(f, &nc);
    char prev_head[AT_SHA256_HEX] = "";
    for (size_t i = 0; i < nc; i++) {
        const cut_rec *c = &f->cut[cuts[i]];
        int mode = (int)(i % 3); /* length, chunked, PUT */
        reply r;
        upload(d, f->name, f->data, c->off, mode, &r);
        char hex[AT_SHA256_HEX];
        hex_of(c->sha, hex);
        bool first = i == 0;
        CHECK(r.status == 201 && strcmp(jstr(&r, "result"), first ? "created" : "extended") == 0 &&
                  jint(&r, "version") == (long long)i + 1 && jint(&r, "events") == (long long)c->events &&
                  strcmp(jstr(&r, "events_sha256"), hex) == 0 &&
                  (first ? jnull(&r, "previous_head") : strcmp(jstr(&r, "previous_head"), prev_head) == 0) &&
                  !json_object_get(r.json, "stale"),
              "%s: snapshot of %zu bytes (%s): %ld %s", f->name, c->off, first ? "created" : "extended",
              r.status, body_of(&r));
        snprintf(prev_head, sizeof prev_head, "%s", jstr(&r, "head"));
        reply_fini(&r);
    }
    size_t n;
    char *cur = get_events(d, f->sid, 0, &n);
    CHECK(same_bytes(cur, n, f->events, f->events_n),
          "%s: after the snapshots, the events are not the direct import", f->name);
    free(cur);
    /* older snapshots again, newest first: nothing changes */
    for (size_t i = nc - 1; i-- > 0;) {
        if (nc > 12 && i % (nc / 6) != 0)
            continue;
        const cut_rec *c = &f->cut[cuts[i]];
        reply r;
        upload(d, f->name, f->data, c->off, SEND_CHUNKED, &r);
        CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 &&
                  jint(&r, "version") == (long long)nc && jtrue(&r, "stale") == (c->events < f->nevents) &&
                  strcmp(jstr(&r, "previous_head"), prev_head) == 0,
              "%s: the older snapshot of %zu bytes: %ld %s", f->name, c->off, r.status, body_of(&r));
        reply_fini(&r);
    }
    /* the identical transcript: unchanged, not stale */
    reply r;
    upload(d, f->name, f->data, f->n, SEND_LENGTH, &r);
    CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 &&
              !json_object_get(r.json, "stale") && jint(&r, "version") == (long long)nc,
          "%s: identical re-upload: %ld %s", f->name, r.status, body_of(&r));
    reply_fini(&r);
    /* the listing */
    json_t *v = versions(d, f->sid);
    CHECK(v && json_array_size(v) == nc, "%s: %zu versions listed, want %zu", f->name,
          v ? json_array_size(v) : 0, nc);
    for (size_t i = 0; v && i < json_array_size(v) && i < nc; i++) {
        const cut_rec *c = &f->cut[cuts[i]];
        char hex[AT_SHA256_HEX], tsha[AT_SHA256_HEX];
        hex_of(c->sha, hex);
        sha_hex(f->data, c->off, tsha);
        CHECK(vint(v, i, "version") == (long long)i + 1 && strcmp(vstr(v, i, "cause"), "import") == 0 &&
                  vint(v, i, "events") == (long long)c->events &&
                  strcmp(vstr(v, i, "events_sha256"), hex) == 0 &&
                  vint(v, i, "transcript_bytes") == (long long)c->off &&
                  strcmp(vstr(v, i, "transcript_sha256"), tsha) == 0 && strlen(vstr(v, i, "head")) == 64 &&
                  (i == 0 || vtime(v, i) > vtime(v, i - 1)),
              "%s: version %zu of the listing is wrong", f->name, i + 1);
    }
    json_decref(v);
    check_all_versions(d, f->sid, f->name);
    free(cuts);
}

/* The storage equals the reference directories (events.ndjson, meta.json),
 * "empty" aside (an empty body is a 400 over HTTP). */
/* Does d store these bytes as <sid>/<file>? (testdaemon.h stored_file) */
static bool stored_is(const daemon_t *d, const char *sid, const char *file, const char *p, size_t n)
{
    size_t sn = 0;
    char *sp = stored_file(d, sid, file, &sn);
    bool eq = same_bytes(sp, sn, p, n);
    free(sp);
    return eq;
}

static void check_parity(const daemon_t *d, bool redacted)
{
    stored(d); /* with AT_TEST_PGURL: written out by db export */
    const char *sets[2] = {redacted ? "tests/fixtures/expected-redacted" : "tests/fixtures/expected",
                           redacted ? "tests/fixtures/expected-edge-redacted"
                                    : "tests/fixtures/expected-edge"};
    int compared = 0;
    for (int s = 0; s < 2; s++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", t_src(sets[s]));
        DIR *dd = opendir(dir);
        struct dirent *e;
        while (dd && (e = readdir(dd))) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, "empty") == 0)
                continue;
            if (getenv("HISTORY_ONLY")) {
                bool mine = false;
                for (size_t i = 0; i < nfx && !mine; i++)
                    mine = strcmp(fx[i].sid, e->d_name) == 0;
                if (!mine)
                    continue;
            }
            for (int k = 0; k < 2; k++) {
                const char *file = k ? "meta.json" : "events.ndjson";
                char a[PATH_MAX + 600], b[PATH_MAX + 600];
                snprintf(a, sizeof a, "%s/%s/%s", dir, e->d_name, file);
                snprintf(b, sizeof b, "%s/%s/%s", d->storage, e->d_name, file);
                size_t an = 0;
                char *ap = t_read_file(a, &an);
                CHECK(ap && file_is(b, ap, an), "parity%s: %s/%s differs from %s",
                      redacted ? "" : " (--no-redact)", e->d_name, file, a);
                free(ap);
                compared++;
            }
            char p[PATH_MAX + 600];
            snprintf(p, sizeof p, "%s/%s/events.ndjson", d->storage, e->d_name);
            struct stat sb;
            CHECK(stat(p, &sb) == 0 && sb.st_nlink == 1, "parity: %s/events.ndjson shares its inode",
                  e->d_name);
        }
        if (dd)
            closedir(dd);
    }
    CHECK(compared >= (getenv("HISTORY_ONLY") ? 2 : 30), "parity: compared %d files", compared);
}

static void test_http_snapshots(void)
{
    double t0 = now_mono();
    daemon_t d;
    if (!start(&d, "prefix", NULL, NULL)) {
        CHECK(0, "server did not start");
        return;
    }
    for (size_t i = 0; i < nfx; i++)
        if (fx[i].events)
            http_snapshots(&d, &fx[i]);
    check_parity(&d, true);
    CHECK(stop(&d, SIGTERM) == 0, "prefix server exits 0");

    /* with redaction off: a few snapshots of each, then the reference */
    const char *args[] = {"--no-redact", NULL};
    if (!start(&d, "plain", NULL, args)) {
        CHECK(0, "--no-redact server did not start");
        return;
    }
    for (size_t i = 0; i < nfx; i++) {
        fixture *f = &fx[i];
        if (!f->events)
            continue;
        size_t picks[3] = {f->nbound / 3, 2 * f->nbound / 3, f->nbound - 1}, done = 0;
        uint64_t last = 0;
        for (int j = 0; j < 3; j++) {
            const cut_rec *c = &f->cut[picks[j]];
            if (!c->sid_ok || c->events <= last || (j < 2 && c->events >= f->nevents))
                continue;
            last = c->events;
            reply r;
            upload(&d, f->name, f->data, c->off, j == 1 ? SEND_GZIP : SEND_CHUNKED, &r);
            size_t dn;
            char *de = direct_events(f->data, c->off, f->name, NULL, &dn, NULL);
            char hex[AT_SHA256_HEX];
            sha_hex(de ? de : "", dn, hex);
            CHECK(r.status == 201 && strcmp(jstr(&r, "result"), done ? "extended" : "created") == 0 &&
                      strcmp(jstr(&r, "events_sha256"), hex) == 0,
                  "--no-redact: %s, snapshot of %zu bytes: %ld %s", f->name, c->off, r.status, body_of(&r));
            done++;
            free(de);
            reply_fini(&r);
        }
    }
    check_parity(&d, false);
    CHECK(stop(&d, SIGTERM) == 0, "plain server exits 0");
    printf("HTTP snapshots and parity: %.1f s\n", now_mono() - t0);
}

/* ---- 3 over HTTP: incremental uploads ---------------------------------------------------- */

static unsigned next_tag = 1;

/* A copy of a fixture that names another session: its sessionId replaced
 * everywhere by one of the same length ending in a fresh tag (so byte
 * offsets stay), and that session's id in vsid. */
static char *variant(const fixture *f, char *vsid, size_t cap)
{
    char *v = malloc(f->n + 1);
    memcpy(v, f->data, f->n + 1);
    size_t ul = strlen(f->uuid);
    char nu[300], tag[16];
    snprintf(nu, sizeof nu, "%s", f->uuid);
    snprintf(tag, sizeof tag, "%06x", next_tag++ & 0xffffff);
    if (ul >= 6)
        memcpy(nu + ul - 6, tag, 6);
    for (char *p = v; ul && (p = memmem(p, (size_t)(v + f->n - p), f->uuid, ul)); p += ul)
        memcpy(p, nu, ul);
    const char *dot = strncmp(f->sid, "agent-", 6) == 0 ? strchr(f->sid, '.') : NULL;
    if (dot)
        snprintf(vsid, cap, "%.*s.%s", (int)(dot - f->sid), f->sid, nu);
    else
        snprintf(vsid, cap, "%s", nu);
    return v;
}

/* The direct import of bytes, as stored by a storage of its own: events.ndjson and meta.json. */
static bool direct_files(const char *data, size_t n, const char *source, const char *sid, char **events,
                         size_t *en, char **meta, size_t *mn)
{
    char dir[PATH_MAX];
    at_store *s = fresh_store(dir, sizeof dir);
    at_error err = {0};
    at_redact *rd = at_redact_new(&err);
    at_commit_info info;
    at_import_result res;
    bool ok = s && rd && lib_upload(s, data, n, source, rd, NULL, 0, &info, &res, &err) == AT_OK;
    at_import_result_fini(&res);
    *events = ok ? session_file(dir, sid, "events.ndjson", en) : NULL;
    *meta = ok ? session_file(dir, sid, "meta.json", mn) : NULL;
    at_redact_free(rd);
    at_store_free(s);
    rm_rf(dir);
    return *events && *meta;
}

/* Boundary indexes at or after the line naming the session (resumable), but before the end. */
static size_t resumable(const fixture *f, size_t *first)
{
    size_t i = 0;
    while (i + 1 < f->nbound && f->bound[i] < f->named_end)
        i++;
    *first = i;
    return i + 1 < f->nbound ? f->nbound - 1 - i : 0;
}

static size_t char_start(const fixture *f, size_t p)
{
    while (p < f->n && ((unsigned char)f->data[p] & 0xc0) == 0x80)
        p++;
    return p;
}

/* Uploads v[0..off) and then v[off..n) with ?session=&offset=: 201 created,
 * then what the whole file gives; the stored files are the direct import's. */
static void http_two_step(daemon_t *d, const fixture *f, size_t off, int mode, const char *what)
{
    char vsid[300];
    char *v = variant(f, vsid, sizeof vsid);
    char *de, *dm;
    size_t den, dmn;
    if (!direct_files(v, f->n, f->name, vsid, &de, &den, &dm, &dmn)) {
        CHECK(0, "%s: no direct import of a variant", f->name);
        free(v);
        return;
    }
    reply r;
    upload(d, f->name, v, off, mode, &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "created") == 0 &&
              strcmp(jstr(&r, "session_id"), vsid) == 0,
          "%s: %s: first part [0, %zu): %ld %s", f->name, what, off, r.status, body_of(&r));
    reply_fini(&r);
    size_t pn;
    char *p = get_events(d, vsid, 0, &pn);
    upload_tail(d, vsid, off, mode % 2 ? f->name : NULL, v + off, f->n - off, (mode + 1) % 4, &r);
    bool grew = !same_bytes(p, pn, de, den);
    char hex[AT_SHA256_HEX];
    sha_hex(de, den, hex);
    CHECK(r.status == (grew ? 201 : 200) &&
              strcmp(jstr(&r, "result"), grew ? "extended" : "unchanged") == 0 &&
              jint(&r, "version") == (grew ? 2 : 1) && strcmp(jstr(&r, "events_sha256"), hex) == 0,
          "%s: %s: ?offset=%zu with the rest%s: %ld %s", f->name, what, off,
          p && only_end_differs(p, pn, de, den) ? " (growth that only moves session_end)" : "", r.status,
          body_of(&r));
    reply_fini(&r);
    CHECK(stored_is(d, vsid, "events.ndjson", de, den), "%s: %s at %zu: events.ndjson is not the direct import",
          f->name, what, off);
    CHECK(stored_is(d, vsid, "meta.json", dm, dmn), "%s: %s at %zu: meta.json is not the direct import", f->name,
          what, off);
    /* the listing: the whole transcript's length and digest */
    json_t *vl = versions(d, vsid);
    size_t nv = vl ? json_array_size(vl) : 0;
    char tsha[AT_SHA256_HEX];
    sha_hex(v, f->n, tsha);
    CHECK(nv == (grew ? 2u : 1u) && vint(vl, nv - 1, "transcript_bytes") == (long long)(grew ? f->n : off) &&
              (!grew || strcmp(vstr(vl, nv - 1, "transcript_sha256"), tsha) == 0),
          "%s: %s at %zu: the versions listing after the incremental upload", f->name, what, off);
    json_decref(vl);
    free(p);
    free(de);
    free(dm);
    free(v);
}

/* A chain of incremental uploads: [0,c1) then [c1,c2), [c2,c3) ... each
 * from the offset the listing gives; after each, the events are the direct
 * import of the transcript so far. Then an empty tail, and the 409s. */
static void http_chain(daemon_t *d, const fixture *f)
{
    size_t first, nr = resumable(f, &first);
    if (nr < 8)
        return;
    char vsid[300];
    char *v = variant(f, vsid, sizeof vsid);
    size_t b1 = f->bound[first + nr / 5], line2 = first + 2 * nr / 5, b3 = f->bound[first + 3 * nr / 5],
           line4 = first + 4 * nr / 5;
    size_t c[5] = {b1, char_start(f, (f->bound[line2 - 1] + f->bound[line2]) / 2), b3, f->bound[line4] - 1,
                   f->n};
    reply r;
    upload(d, f->name, v, c[0], SEND_CHUNKED, &r);
    CHECK(r.status == 201, "%s chain: first part: %ld %s", f->name, r.status, body_of(&r));
    reply_fini(&r);
    size_t nver = 1;
    at_error err = {0};
    at_redact *rd = at_redact_new(&err);
    for (int i = 1; i < 5; i++) {
        json_t *vl = versions(d, vsid);
        size_t nv = vl ? json_array_size(vl) : 0;
        long long tb = nv ? vint(vl, nv - 1, "transcript_bytes") : -1;
        json_decref(vl);
        CHECK(tb >= 0 && (size_t)tb <= c[i - 1], "%s chain: the listing gives %lld before the upload to %zu",
              f->name, tb, c[i]);
        if (tb < 0)
            break;
        size_t dn;
        char *de = direct_events(v, c[i], f->name, rd, &dn, NULL);
        size_t pn;
        char *p = get_events(d, vsid, 0, &pn);
        bool grew = !same_bytes(p, pn, de, dn);
        upload_tail(d, vsid, (uint64_t)tb, i % 2 ? f->name : NULL, v + tb, c[i] - (size_t)tb, i % 4, &r);
        CHECK(r.status == (grew ? 201 : 200) &&
                  strcmp(jstr(&r, "result"), grew ? "extended" : "unchanged") == 0,
              "%s chain: [%lld, %zu): %ld %s%s", f->name, tb, c[i], r.status, body_of(&r),
              p && only_end_differs(p, pn, de, dn) ? " (growth that only moves session_end)" : "");
        nver += grew && r.status == 201;
        reply_fini(&r);
        size_t en;
        char *e = get_events(d, vsid, 0, &en);
        CHECK(same_bytes(e, en, de, dn), "%s chain: after [%lld, %zu) the events are not the direct import%s",
              f->name, tb, c[i],
              p && only_end_differs(p, pn, de, dn) ? " (growth that only moves session_end)" : "");
        free(e);
        free(p);
        free(de);
    }
    at_redact_free(rd);
    json_t *vl = versions(d, vsid);
    CHECK(vl && json_array_size(vl) == nver, "%s chain: %zu versions, want %zu", f->name,
          vl ? json_array_size(vl) : 0, nver);
    for (size_t i = 0; vl && i < json_array_size(vl); i++) {
        long long tb = vint(vl, i, "transcript_bytes");
        char tsha[AT_SHA256_HEX];
        sha_hex(v, tb > 0 ? (size_t)tb : 0, tsha);
        CHECK(tb > 0 && strcmp(vstr(vl, i, "transcript_sha256"), tsha) == 0 &&
                  strcmp(vstr(vl, i, "cause"), "import") == 0 && (i == 0 || vtime(vl, i) > vtime(vl, i - 1)),
              "%s chain: version %zu: transcript_bytes %lld and its digest", f->name, i + 1, tb);
    }
    json_decref(vl);
    check_all_versions(d, vsid, "chain");

    /* an empty tail: nothing new (Content-Length: 0, and an empty chunked body) */
    vl = versions(d, vsid);
    size_t rec =
        vl && json_array_size(vl) ? (size_t)vint(vl, json_array_size(vl) - 1, "transcript_bytes") : f->n;
    json_decref(vl);
    size_t before_n;
    char *before = get_events(d, vsid, 0, &before_n);
    upload_tail(d, vsid, rec, NULL, "", 0, SEND_LENGTH, &r);
    CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 &&
              jint(&r, "version") == (long long)nver,
          "%s: an empty tail at the recorded offset: %ld %s (want 200 unchanged)", f->name, r.status,
          body_of(&r));
    reply_fini(&r);
    upload_tail(d, vsid, rec, NULL, "", 0, SEND_CHUNKED, &r);
    CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0,
          "%s: an empty chunked tail: %ld %s (want 200 unchanged)", f->name, r.status, body_of(&r));
    reply_fini(&r);

    /* a wrong offset: 409 with the recorded length */
    const uint64_t wrong[3] = {rec - 1, rec + 1, 0};
    for (int i = 0; i < 3; i++) {
        upload_tail(d, vsid, wrong[i], NULL, "{}\n", 3, SEND_LENGTH, &r);
        CHECK(r.status == 409 && jint(&r, "transcript_bytes") == (long long)rec && jstr(&r, "error")[0],
              "%s: offset %llu against %zu recorded: %ld %s", f->name, (unsigned long long)wrong[i], rec,
              r.status, body_of(&r));
        reply_fini(&r);
    }
    size_t after_n;
    char *after = get_events(d, vsid, 0, &after_n);
    CHECK(same_bytes(before, before_n, after, after_n), "%s: empty tails and 409s changed the events",
          f->name);
    free(before);
    free(after);

    /* after an append (POST /events) the current version is not an import's */
    char ev[600];
    snprintf(ev, sizeof ev,
             "{\"event_type\":\"decision\",\"timestamp\":1770000000.25,\"event_id\":\"chainapp%04x\","
             "\"session_id\":\"%s\",\"data\":{\"k\":1}}\n",
             next_tag++ & 0xffff, vsid);
    http(d, "POST", "/events", ev, strlen(ev), SEND_LENGTH, &r);
    CHECK(r.status == 200 && jint(&r, "accepted") == 1, "%s: append: %ld %s", f->name, r.status, body_of(&r));
    reply_fini(&r);
    upload_tail(d, vsid, rec, NULL, "{}\n", 3, SEND_LENGTH, &r);
    CHECK(r.status == 409 && jnull(&r, "transcript_bytes") && jstr(&r, "error")[0],
          "%s: incremental upload after an append: %ld %s (want 409, transcript_bytes null)", f->name,
          r.status, body_of(&r));
    reply_fini(&r);
    vl = versions(d, vsid);
    size_t nv = vl ? json_array_size(vl) : 0;
    CHECK(nv == nver + 1 && strcmp(vstr(vl, nv - 1, "cause"), "append") == 0 &&
              json_is_null(json_object_get(json_array_get(vl, nv - 1), "transcript_bytes")) &&
              json_is_null(json_object_get(json_array_get(vl, nv - 1), "transcript_sha256")),
          "%s: the append is a version of cause append without a transcript", f->name);
    json_decref(vl);
    free(v);
}

/* A cut inside a UTF-8 character cannot be a version (claude-import.md §1:
 * a truncated sequence fails the import: 422); the session stays where it
 * was, and its recorded offset still continues. */
static void http_utf8_cut(daemon_t *d, const fixture *f)
{
    size_t first;
    if (!f->multibyte || resumable(f, &first) == 0)
        return;
    size_t lead = f->bound[first];
    while (lead < f->n && ((unsigned char)f->data[lead] & 0xc0) != 0xc0)
        lead++;
    if (lead >= f->n)
        return;
    size_t m = 0; /* the line boundary before the character */
    for (size_t i = 0; i < f->nbound && f->bound[i] <= lead; i++)
        m = f->bound[i];
    char vsid[300];
    char *v = variant(f, vsid, sizeof vsid);
    char *de, *dm;
    size_t den, dmn;
    direct_files(v, f->n, f->name, vsid, &de, &den, &dm, &dmn);
    reply r;
    upload(d, f->name, v, lead + 1, SEND_CHUNKED, &r);
    char want[80];
    snprintf(want, sizeof want, "byte offset %zu", lead);
    CHECK(r.status == 422 && strstr(body_of(&r), want), "%s: a snapshot cut inside a character: %ld %s",
          f->name, r.status, body_of(&r));
    reply_fini(&r);
    char path[1200];
    snprintf(path, sizeof path, "/sessions/%s", vsid);
    http(d, "GET", path, NULL, 0, 0, &r);
    CHECK(r.status == 404, "%s: the 422 stored a session: %ld", f->name, r.status);
    reply_fini(&r);
    upload(d, f->name, v, m, SEND_LENGTH, &r);
    CHECK(r.status == 201, "%s: [0, %zu): %ld %s", f->name, m, r.status, body_of(&r));
    reply_fini(&r);
    /* a tail ending inside a character: refused (422), or taken as nothing
     * new (200 unchanged); either way the recorded offset stays m */
    upload_tail(d, vsid, m, NULL, v + m, lead + 1 - m, SEND_CHUNKED, &r);
    CHECK(r.status == 422 || (r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0),
          "%s: a tail ending inside a character: %ld %s", f->name, r.status, body_of(&r));
    reply_fini(&r);
    upload_tail(d, vsid, lead + 1, NULL, v + lead + 1, f->n - lead - 1, SEND_LENGTH, &r);
    CHECK(r.status == 409 && jint(&r, "transcript_bytes") == (long long)m,
          "%s: the offset of the refused tail: %ld %s (want 409 with %zu)", f->name, r.status, body_of(&r),
          m);
    reply_fini(&r);
    /* the rest in chunks of 1, 7, 4096 ... bytes: split inside characters in transit */
    upload_tail(d, vsid, m, NULL, v + m, f->n - m, SEND_CHUNKED, &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "extended") == 0, "%s: the rest from %zu: %ld %s",
          f->name, m, r.status, body_of(&r));
    reply_fini(&r);
    CHECK(de && stored_is(d, vsid, "events.ndjson", de, den),
          "%s: after the refused cut, the events are not the direct import", f->name);
    free(de);
    free(dm);
    free(v);
}

/* Raw requests, to hold an upload open while another one commits. */
static int raw_connect(const daemon_t *d)
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

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

/* An incremental upload whose session is replaced by another upload while
 * its body is still arriving: its saved state no longer describes the
 * current version. Either it is refused (409) or what it stores is some
 * import's events; never a broken chain. */
static void http_race(void)
{
    fixture *f = NULL;
    for (size_t i = 0; i < nfx; i++)
        if (strcmp(fx[i].name, "short.jsonl") == 0 && fx[i].events)
            f = &fx[i];
    size_t first, nr;
    if (!f || (nr = resumable(f, &first)) < 4)
        return;
    daemon_t d;
    if (!start(&d, "race", NULL, NULL)) {
        CHECK(0, "race server did not start");
        return;
    }
    char vsid[300];
    char *t = variant(f, vsid, sizeof vsid);
    /* u: the same session, one character changed early (the events differ from the first line on) */
    char *u = malloc(f->n + 1);
    memcpy(u, t, f->n + 1);
    char *hit = strstr(u + f->named_end, "\"content\":\""); /* a string after the line naming the session */
    if (!hit || hit >= u + f->n - 20)
        hit = strstr(u, "\"timestamp\":\"");
    if (hit) {
        char *q = strchr(hit + 13, '"');
        if (q && q[-1] >= '0' && q[-1] <= '9')
            q[-1] = q[-1] == '1' ? '2' : '1';
        else if (q)
            q[-1] = q[-1] == 'x' ? 'y' : 'x';
    }
    size_t a = f->bound[first + nr / 2];
    reply r;
    upload(&d, f->name, t, a, SEND_LENGTH, &r);
    CHECK(r.status == 201, "race: first part: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    int s = raw_connect(&d);
    char hdr[1024];
    snprintf(hdr, sizeof hdr,
             "POST /import?session=%s&offset=%zu HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nConnection: "
             "close\r\n\r\n",
             vsid, a, f->n - a);
    size_t half = (f->n - a) / 2;
    CHECK(s >= 0 && send_all(s, hdr, strlen(hdr)) && send_all(s, t + a, half), "race: half a tail sent");
    for (int i = 0; i < 500 && count_dir(d.tmp) == 0; i++)
        usleep(10000);
    upload(&d, f->name, u, f->n, SEND_LENGTH, &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "replaced") == 0, "race: the other upload: %ld %s",
          r.status, body_of(&r));
    reply_fini(&r);
    send_all(s, t + a + half, f->n - a - half);
    char buf[4096];
    size_t got = 0;
    ssize_t k;
    while (s >= 0 && got < sizeof buf - 1 && (k = recv(s, buf + got, sizeof buf - 1 - got, 0)) > 0)
        got += (size_t)k;
    buf[got] = 0;
    if (s >= 0)
        close(s);
    bool refused = strncmp(buf, "HTTP/1.1 409", 12) == 0;
    size_t tn, un, cn;
    char *dt = direct_events(t, f->n, f->name, NULL, &tn, NULL),
         *du = direct_events(u, f->n, f->name, NULL, &un, NULL);
    char *cur = get_events(&d, vsid, 0, &cn);
    free(dt);
    free(du);
    at_error err = {0};
    at_redact *rd = at_redact_new(&err);
    dt = direct_events(t, f->n, f->name, rd, &tn, NULL);
    du = direct_events(u, f->n, f->name, rd, &un, NULL);
    at_redact_free(rd);
    bool is_t = same_bytes(cur, cn, dt, tn), is_u = same_bytes(cur, cn, du, un);
    CHECK(
        refused ? is_u : (is_t || is_u),
        "race: an incremental upload whose session was replaced meanwhile answered %.12s and left events that "
        "are %s",
        buf,
        is_t   ? "the first transcript's"
        : is_u ? "the other upload's"
               : "no import's (a mix of both)");
    char path[1200];
    snprintf(path, sizeof path, "/sessions/%s/verify", vsid);
    http(&d, "GET", path, NULL, 0, 0, &r);
    CHECK(r.status == 200 && jtrue(&r, "ok"), "race: the current version's chain: %s", body_of(&r));
    reply_fini(&r);
    check_all_versions(&d, vsid, "race");
    free(cur);
    free(dt);
    free(du);
    free(t);
    free(u);
    CHECK(stop(&d, SIGTERM) == 0, "race server exits 0");
}

static void test_http_incremental(void)
{
    double t0 = now_mono();
    daemon_t d;
    if (!start(&d, "incr", NULL, NULL)) {
        CHECK(0, "incr server did not start");
        return;
    }
    int mode = 0;
    for (size_t i = 0; i < nfx; i++) {
        fixture *f = &fx[i];
        size_t first, nr;
        if (!f->events || (nr = resumable(f, &first)) == 0)
            continue;
        size_t picks[3] = {first + nr / 4, first + nr / 2, first + 3 * nr / 4};
        for (int j = 0; j < 3; j++) {
            if (f->big && j != 1)
                continue;
            http_two_step(&d, f, f->bound[picks[j]], mode++ % 4, "at a line boundary");
        }
        size_t line = picks[1];
        size_t start = line ? f->bound[line - 1] : 0, end = f->bound[line];
        if (end - start >= 3 && start >= f->named_end) {
            http_two_step(&d, f, char_start(f, (start + end) / 2), mode++ % 4, "inside a line");
            if (!f->big)
                http_two_step(&d, f, end - 1, mode++ % 4, "just before a line's end");
        }
        if (!f->big)
            http_chain(&d, f);
        http_utf8_cut(&d, f);
    }

    /* the requests an incremental upload refuses */
    reply r;
    http(&d, "POST", "/import?session=no-such-session&offset=0", "{}\n", 3, SEND_LENGTH, &r);
    CHECK(r.status == 404, "unknown session: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    const char *bad[] = {
        "/import?session=x",           "/import?offset=5",          "/import?session=x&offset=abc",
        "/import?session=x&offset=-1", "/import?session=&offset=1", NULL};
    for (int i = 0; bad[i]; i++) {
        http(&d, "POST", bad[i], "{}\n", 3, SEND_LENGTH, &r);
        CHECK(r.status == 400, "%s: %ld %s", bad[i], r.status, body_of(&r));
        reply_fini(&r);
    }
    /* a transcript that never names its session: its state cannot resume */
    for (size_t i = 0; i < nfx; i++) {
        fixture *f = &fx[i];
        if (!f->events || f->named_end <= f->n)
            continue;
        char src[300], sid[300];
        snprintf(sid, sizeof sid, "nsid-%u", next_tag++);
        snprintf(src, sizeof src, "%s.jsonl", sid);
        upload(&d, src, f->data, f->n, SEND_LENGTH, &r);
        CHECK(r.status == 201 && strcmp(jstr(&r, "session_id"), sid) == 0, "%s as %s: %ld %s", f->name, src,
              r.status, body_of(&r));
        reply_fini(&r);
        upload_tail(&d, sid, f->n, NULL, f->data, f->bound[0], SEND_LENGTH, &r);
        CHECK(r.status == 409 && jint(&r, "transcript_bytes") == (long long)f->n,
              "%s: resuming a transcript that names no session: %ld %s (want 409 with %zu)", f->name,
              r.status, body_of(&r), f->n);
        reply_fini(&r);
    }
    /* a version imported by the command line continues over HTTP (the
     * command line imports into a directory) */
    for (size_t i = 0; i < nfx && !pgurl; i++) {
        fixture *f = &fx[i];
        size_t first, nr;
        if (!f->events || strcmp(f->name, "tools.jsonl") != 0 || (nr = resumable(f, &first)) == 0)
            continue;
        char vsid[300];
        char *v = variant(f, vsid, sizeof vsid);
        size_t c = f->bound[first + nr / 2];
        int st;
        json_t *j = cli_import(d.storage, f->name, v, c, &st);
        CHECK(st == 0 && strcmp(jv_str(j, "result"), "created") == 0, "CLI import of a snapshot: exit %d",
              st);
        json_decref(j);
        json_t *vl = versions(&d, vsid);
        CHECK(vl && json_array_size(vl) == 1 && vint(vl, 0, "transcript_bytes") == (long long)c,
              "the CLI's version records transcript_bytes %zu", c);
        json_decref(vl);
        upload_tail(&d, vsid, c, NULL, v + c, f->n - c, SEND_LENGTH, &r);
        CHECK(
            r.status == 201 && strcmp(jstr(&r, "result"), "extended") == 0,
            "an incremental upload continuing a version the CLI imported (offset = its transcript_bytes %zu): "
            "%ld %s",
            c, r.status, body_of(&r));
        reply_fini(&r);
        free(v);
    }
    CHECK(stop(&d, SIGTERM) == 0, "incr server exits 0");
    http_race();
    printf("HTTP incremental uploads: %.1f s\n", now_mono() - t0);
}

/* ---- 1: an identical re-upload after appends ---------------------------------------------- */

static fixture *fixture_named(const char *name)
{
    for (size_t i = 0; i < nfx; i++)
        if (strcmp(fx[i].name, name) == 0 && fx[i].events)
            return &fx[i];
    return NULL;
}

/* A cut of f in the middle that names the session and has fewer events than the whole. */
static const cut_rec *middle_cut(const fixture *f)
{
    for (size_t i = f->nbound / 2; i + 1 < f->nbound; i++)
        if (f->cut[i].sid_ok && f->bound[i] >= f->named_end && f->cut[i].events < f->nevents)
            return &f->cut[i];
    return NULL;
}

/* POSTs events to /events: n decision events of session sid, ids <prefix><i>. */
static void post_events(const daemon_t *d, const char *sid, const char *prefix, int n, reply *r)
{
    at_buf b;
    at_buf_init(&b, 0);
    for (int i = 0; i < n; i++)
        (void)!at_buf_printf(
            &b,
            "{\"event_type\":\"decision\",\"timestamp\":1770000000.25,\"event_id\":\"%s%04d\","
            "\"session_id\":\"%s\",\"data\":{\"n\":%d}}\n",
            prefix, i, sid, i);
    http(d, "POST", "/events", b.data, b.len, SEND_LENGTH, r);
    at_buf_fini(&b);
}

static bool has(const char *hay, size_t n, const char *needle)
{
    return hay && memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void test_reupload_after_appends(void)
{
    fixture *f = fixture_named("short.jsonl");
    const cut_rec *c = f ? middle_cut(f) : NULL;
    daemon_t d;
    if (!c || !start(&d, "reup", NULL, NULL)) {
        CHECK(0, "re-upload: no fixture or no server");
        return;
    }
    reply r;
    upload(&d, f->name, f->data, c->off, SEND_LENGTH, &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "created") == 0, "re-upload: first: %ld %s", r.status,
          body_of(&r));
    reply_fini(&r);
    post_events(&d, f->sid, "reupappend", 2, &r);
    CHECK(r.status == 200 && jint(&r, "accepted") == 2, "re-upload: appends: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    json_t *v = versions(&d, f->sid);
    CHECK(v && json_array_size(v) == 2 && strcmp(vstr(v, 1, "cause"), "append") == 0 &&
              vint(v, 1, "events") == (long long)c->events + 2 &&
              json_is_null(json_object_get(json_array_get(v, 1), "transcript_bytes")) &&
              json_is_null(json_object_get(json_array_get(v, 1), "transcript_sha256")) &&
              vint(v, 0, "transcript_bytes") == (long long)c->off,
          "re-upload: the append is version 2 of cause append");
    char head2[AT_SHA256_HEX];
    snprintf(head2, sizeof head2, "%s", v ? vstr(v, 1, "head") : "");
    json_decref(v);
    size_t n2;
    char *v2 = get_events(&d, f->sid, 0, &n2);

    /* the identical transcript again, over HTTP and from the command line */
    upload(&d, f->name, f->data, c->off, SEND_CHUNKED, &r);
    CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 && jtrue(&r, "stale") &&
              jint(&r, "version") == 2 && strcmp(jstr(&r, "previous_head"), head2) == 0,
          "re-upload after appends: %ld %s (want 200 unchanged, stale, version 2)", r.status, body_of(&r));
    reply_fini(&r);
    size_t n3;
    char *v3 = get_events(&d, f->sid, 0, &n3);
    CHECK(same_bytes(v2, n2, v3, n3) && has(v3, n3, "\"reupappend0000\"") &&
              has(v3, n3, "\"reupappend0001\""),
          "re-upload after appends: the appended events are still served");
    free(v3);
    if (!pgurl) { /* the command line imports into a directory */
        int st;
        json_t *j = cli_import(d.storage, f->name, f->data, c->off, &st);
        CHECK(st == 0 && strcmp(jv_str(j, "result"), "unchanged") == 0 &&
                  json_is_true(json_object_get(j, "stale")) &&
                  json_integer_value(json_object_get(j, "version")) == 2,
              "CLI re-import after appends: exit %d, %s", st, j ? jv_str(j, "result") : "(no JSON)");
        json_decref(j);
    }
    /* an older snapshot too */
    const cut_rec *older = NULL;
    for (size_t i = 0; i < f->nbound && &f->cut[i] < c; i++)
        if (f->cut[i].sid_ok && f->cut[i].events < c->events)
            older = &f->cut[i];
    if (older) {
        upload(&d, f->name, f->data, older->off, SEND_PUT, &r);
        CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 && jtrue(&r, "stale") &&
                  jint(&r, "version") == 2,
              "older snapshot after appends: %ld %s", r.status, body_of(&r));
        reply_fini(&r);
    }
    v = versions(&d, f->sid);
    CHECK(v && json_array_size(v) == 2, "re-upload: still 2 versions");
    json_decref(v);
    v3 = get_events(&d, f->sid, 0, &n3);
    CHECK(same_bytes(v2, n2, v3, n3), "re-uploads changed the events");
    free(v3);

    /* the grown transcript: the current version is the append's, so it replaces it; the append stays served */
    upload(&d, f->name, f->data, f->n, SEND_LENGTH, &r);
    CHECK(r.status == 201 && strcmp(jstr(&r, "result"), "replaced") == 0 && jint(&r, "version") == 3 &&
              strcmp(jstr(&r, "previous_head"), head2) == 0,
          "grown transcript after appends: %ld %s (want 201 replaced, version 3)", r.status, body_of(&r));
    reply_fini(&r);
    v3 = get_events(&d, f->sid, 2, &n3);
    CHECK(same_bytes(v2, n2, v3, n3), "the appended version stays served as ?version=2");
    free(v3);
    v3 = get_events(&d, f->sid, 0, &n3);
    CHECK(same_bytes(v3, n3, f->events, f->events_n),
          "after the grown transcript: the direct import's events");
    free(v3);
    v = versions(&d, f->sid);
    CHECK(v && json_array_size(v) == 3 && strcmp(vstr(v, 0, "cause"), "import") == 0 &&
              strcmp(vstr(v, 1, "cause"), "append") == 0 && strcmp(vstr(v, 2, "cause"), "import") == 0 &&
              vtime(v, 1) > vtime(v, 0) && vtime(v, 2) > vtime(v, 1),
          "causes import, append, import; times increasing");
    json_decref(v);
    free(v2);

    /* one request appending to two sessions, interleaved: one version each */
    char a[64], b[64], body[1200];
    snprintf(a, sizeof a, "inter-a-%u", next_tag);
    snprintf(b, sizeof b, "inter-b-%u", next_tag++);
    snprintf(
        body, sizeof body,
        "{\"event_type\":\"decision\",\"timestamp\":1.5,\"event_id\":\"inter0000001\",\"session_id\":\"%s\","
        "\"data\":{}}\n{\"event_type\":\"decision\",\"timestamp\":1.5,\"event_id\":\"inter0000002\","
        "\"session_id\":\"%s\",\"data\":{}}\n{\"event_type\":\"decision\",\"timestamp\":1.5,\"event_id\":"
        "\"inter0000003\",\"session_id\":\"%s\",\"data\":{}}\n",
        a, b, a);
    http(&d, "POST", "/events", body, strlen(body), SEND_LENGTH, &r);
    CHECK(r.status == 200 && jint(&r, "accepted") == 3, "interleaved appends: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    v = versions(&d, a);
    CHECK(
        v && json_array_size(v) == 1 && vint(v, 0, "events") == 2,
        "POST /events with lines of sessions A, B, A: A has %zu versions (want one per request per session)",
        v ? json_array_size(v) : 0);
    json_decref(v);
    check_all_versions(&d, a, "interleaved appends");

    /* ?version= and /objects/sha256/ errors */
    char enc[1024], path[1400];
    qenc(enc, sizeof enc, f->sid);
    const char *badv[] = {"0", "abc", "-1", "", "1.5", "1e3", " 1", NULL};
    for (int i = 0; badv[i]; i++) {
        for (int k = 0; k < 2; k++) {
            char q[16];
            qenc(q, sizeof q, badv[i]);
            snprintf(path, sizeof path, "/sessions/%s/%s?version=%s", enc, k ? "verify" : "events", q);
            http(&d, "GET", path, NULL, 0, 0, &r);
            CHECK(r.status == 400 && jstr(&r, "error")[0], "%s: %ld %s", path, r.status, body_of(&r));
            reply_fini(&r);
        }
    }
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/sessions/%s/%s?version=99", enc, k ? "verify" : "events");
        http(&d, "GET", path, NULL, 0, 0, &r);
        CHECK(r.status == 404 && jstr(&r, "error")[0], "%s: %ld %s", path, r.status, body_of(&r));
        reply_fini(&r);
    }
    const char *unknown[] = {"/sessions/no-such-session/versions",
                             "/sessions/no-such-session/events?version=1",
                             "/sessions/no-such-session/verify?version=1", NULL};
    for (int i = 0; unknown[i]; i++) {
        http(&d, "GET", unknown[i], NULL, 0, 0, &r);
        CHECK(r.status == 404, "%s: %ld %s", unknown[i], r.status, body_of(&r));
        reply_fini(&r);
    }
    char hex[AT_SHA256_HEX];
    sha_hex(f->events, f->events_n, hex);
    char bad[5][200];
    snprintf(bad[0], sizeof bad[0], "xyz");
    snprintf(bad[1], sizeof bad[1], "%.63s", hex);
    snprintf(bad[2], sizeof bad[2], "%s0", hex);
    snprintf(bad[3], sizeof bad[3], "g%.63s", hex + 1);
    snprintf(bad[4], sizeof bad[4], "%.62s%%2F", hex);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/objects/sha256/%s", bad[i]);
        http(&d, "GET", path, NULL, 0, 0, &r);
        CHECK(r.status == 400, "%s: %ld %s", path, r.status, body_of(&r));
        reply_fini(&r);
    }
    snprintf(path, sizeof path, "/objects/sha256/%064d", 7);
    http(&d, "GET", path, NULL, 0, 0, &r);
    CHECK(r.status == 404, "%s: %ld %s", path, r.status, body_of(&r));
    reply_fini(&r);
    snprintf(path, sizeof path, "/objects/sha256/%s", hex);
    size_t on;
    char *o = get_bytes(&d, path, &on);
    CHECK(same_bytes(o, on, f->events, f->events_n), "the current version's object by digest");
    free(o);
    CHECK(stop(&d, SIGTERM) == 0, "reup server exits 0");
}

/* ---- 4: external appends -------------------------------------------------------------------- */

/* The line agent-strace appends: a TraceEvent chained to the file's last line. */
static char *chained_line(const char *path, const char *sid, const char *eid)
{
    size_t n = 0;
    char *f = t_read_file(path, &n);
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

/* What Python's open(path, "a").write(s) does: O_APPEND, one write. */
static bool append_raw(const char *path, const char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0)
        return false;
    bool ok = write(fd, p, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

static bool append_line(const char *path, const char *line)
{
    size_t n = strlen(line);
    char *b = malloc(n + 2);
    memcpy(b, line, n);
    b[n] = '\n';
    bool ok = append_raw(path, b, n + 1);
    free(b);
    return ok;
}

/* The same with python3 itself; -1 when there is no python3. */
static int python_append(const char *path, const char *line)
{
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, 2);
        execlp("python3", "python3", "-c",
               "import sys\nf = open(sys.argv[1], \"a\")\nf.write(sys.argv[2] + \"\\n\")\nf.close()", path,
               line, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -1 : 1;
}

/* events.ndjson is a file of its own: one link, no object's inode. */
static bool events_own_inode(const char *storage, const char *sid, const obj_snap *objs)
{
    char p[PATH_MAX + 300];
    snprintf(p, sizeof p, "%s/%s/events.ndjson", storage, sid);
    struct stat sb;
    if (stat(p, &sb) < 0 || sb.st_nlink != 1)
        return false;
    for (size_t i = 0; i < objs->n; i++)
        if (objs->v[i].ino == sb.st_ino)
            return false;
    return true;
}

static void test_external(void)
{
    fixture *f = fixture_named("tools.jsonl");
    if (!f) {
        CHECK(0, "no tools.jsonl");
        return;
    }
    char storage[PATH_MAX], events[PATH_MAX + 300], why[300] = "";
    snprintf(storage, sizeof storage, "%s/ext", work);
    snprintf(events, sizeof events, "%s/%s/events.ndjson", storage, f->sid);
    int st;
    json_t *j = cli_import(storage, f->name, f->data, f->n, &st);
    CHECK(st == 0 && strcmp(jv_str(j, "result"), "created") == 0, "external: CLI import: exit %d", st);
    json_decref(j);

    /* an append as Python's open(path, "a") makes it, with no server running */
    obj_snap s0, s1, s2;
    snap_objects(storage, &s0);
    char *line = chained_line(events, f->sid, "extc00000001");
    CHECK(append_line(events, line), "external: append");
    free(line);
    snap_objects(storage, &s1);
    CHECK(objects_kept(&s0, &s1, why, sizeof why) && s1.n == s0.n, "external append changed an object: %s",
          why);
    CHECK(events_own_inode(storage, f->sid, &s1), "external: events.ndjson shares an inode with an object");
    /* the command line notices it: the re-import is an older snapshot of the external version */
    j = cli_import(storage, f->name, f->data, f->n, &st);
    CHECK(st == 0 && strcmp(jv_str(j, "result"), "unchanged") == 0 &&
              json_is_true(json_object_get(j, "stale")) &&
              json_integer_value(json_object_get(j, "version")) == 2,
          "external: CLI re-import after an external append: exit %d, %s version %lld", st,
          jv_str(j, "result"), (long long)json_integer_value(json_object_get(j, "version")));
    json_decref(j);
    snap_objects(storage, &s2);
    CHECK(objects_kept(&s1, &s2, why, sizeof why) && s2.n == s1.n + 1,
          "external: the external version is one new object, the others untouched (%zu -> %zu) %s", s1.n,
          s2.n, why);
    /* python3 itself */
    line = chained_line(events, f->sid, "extp00000001");
    int py = python_append(events, line);
    free(line);
    if (py < 0)
        printf("external: no python3, its literal append skipped\n");
    else
        CHECK(py == 0, "external: python3 append failed");
    obj_snap s3;
    snap_objects(storage, &s3);
    CHECK(objects_kept(&s2, &s3, why, sizeof why) && s3.n == s2.n, "python3's append changed an object: %s",
          why);

    /* serve sees it on the next read */
    daemon_t d;
    if (!start(&d, "ext", NULL, NULL)) {
        CHECK(0, "ext server did not start");
        return;
    }
    json_t *v = versions(&d, f->sid);
    size_t nv = v ? json_array_size(v) : 0;
    uint64_t want_events = f->nevents + 1 + (py == 0);
    CHECK(nv == 2u + (py == 0) && strcmp(vstr(v, nv - 1, "cause"), "external") == 0 &&
              strcmp(vstr(v, 1, "cause"), "external") == 0 &&
              vint(v, nv - 1, "events") == (long long)want_events &&
              json_is_null(json_object_get(json_array_get(v, nv - 1), "transcript_bytes")) &&
              vtime(v, 1) > vtime(v, 0),
          "external: serve lists %zu versions, the last of cause %s", nv,
          nv ? vstr(v, nv - 1, "cause") : "-");
    json_decref(v);
    size_t n;
    char *e = get_events(&d, f->sid, 0, &n);
    CHECK(has(e, n, "\"extc00000001\"") && (py != 0 || has(e, n, "\"extp00000001\"")),
          "external: the appended events are served");
    free(e);
    e = get_events(&d, f->sid, 1, &n);
    CHECK(same_bytes(e, n, f->events, f->events_n), "external: version 1 is still the import");
    free(e);
    /* while serve runs */
    obj_snap s4, s5;
    snap_objects(storage, &s4);
    line = chained_line(events, f->sid, "exts00000001");
    CHECK(append_line(events, line), "external: append while serving");
    free(line);
    snap_objects(storage, &s5);
    CHECK(objects_kept(&s4, &s5, why, sizeof why) && s5.n == s4.n,
          "external append while serving changed an object: %s", why);
    v = versions(&d, f->sid);
    nv = v ? json_array_size(v) : 0;
    CHECK(nv == 3u + (py == 0) && strcmp(vstr(v, nv - 1, "cause"), "external") == 0 &&
              vint(v, nv - 1, "events") == (long long)want_events + 1,
          "external: the append made while serving is the next version");
    json_decref(v);
    reply r;
    upload(&d, f->name, f->data, f->n, SEND_LENGTH, &r);
    CHECK(r.status == 200 && strcmp(jstr(&r, "result"), "unchanged") == 0 && jtrue(&r, "stale") &&
              jint(&r, "version") == (long long)nv,
          "external: re-upload: %ld %s", r.status, body_of(&r));
    reply_fini(&r);
    obj_snap s6;
    snap_objects(storage, &s6);
    CHECK(objects_kept(&s5, &s6, why, sizeof why), "external: %s", why);
    CHECK(events_own_inode(storage, f->sid, &s6), "external: events.ndjson shares an inode with an object");
    check_all_versions(&d, f->sid, "external");
    CHECK(stop(&d, SIGTERM) == 0, "ext server exits 0");
    free(s0.v);
    free(s1.v);
    free(s2.v);
    free(s3.v);
    free(s4.v);
    free(s5.v);
    free(s6.v);
}

/* An external writer caught in the middle of a line: whatever versions a
 * read makes of it, each must verify (a torn last line is no event). */
static void test_torn_external(void)
{
    fixture *f = fixture_named("short.jsonl");
    daemon_t d;
    if (!f || !start(&d, "torn", NULL, NULL)) {
        CHECK(0, "torn: no fixture or no server");
        return;
    }
    reply r;
    upload(&d, f->name, f->data, f->n, SEND_LENGTH, &r);
    reply_fini(&r);
    char events[PATH_MAX + 300];
    snprintf(events, sizeof events, "%s/%s/events.ndjson", d.storage, f->sid);
    char *line = chained_line(events, f->sid, "torn00000001");
    size_t half = strlen(line) / 2;
    CHECK(append_raw(events, line, half), "torn: first half written");
    json_t *v = versions(&d, f->sid); /* a read while the line is half written */
    json_decref(v);
    CHECK(append_raw(events, line + half, strlen(line) - half) && append_raw(events, "\n", 1),
          "torn: second half written");
    size_t n;
    char *e = get_events(&d, f->sid, 0, &n);
    CHECK(has(e, n, line), "torn: the completed line is served");
    free(e);
    check_all_versions(&d, f->sid, "an external line read half written");
    free(line);
    CHECK(stop(&d, SIGTERM) == 0, "torn server exits 0");
}

/* ---- 5: gc ----------------------------------------------------------------------------------- */

/* What a storage serves: every version of every session, by digest. */
typedef struct {
    char sid[300];
    long long version;
    char sha[AT_SHA256_HEX];
} served;

typedef struct {
    served *v;
    size_t n;
} served_set;

static void record_served(const daemon_t *d, served_set *set)
{
    size_t ns;
    char **sess = list_sessions(d->storage, &ns);
    set->v = NULL;
    set->n = 0;
    for (size_t i = 0; i < ns; i++) {
        json_t *v = versions(d, sess[i]);
        for (size_t j = 0; v && j < json_array_size(v); j++) {
            set->v = realloc(set->v, (set->n + 1) * sizeof *set->v);
            served *s = &set->v[set->n++];
            snprintf(s->sid, sizeof s->sid, "%s", sess[i]);
            s->version = vint(v, j, "version");
            size_t n;
            char *b = get_events(d, sess[i], (uint64_t)s->version, &n);
            sha_hex(b ? b : "", n, s->sha);
            free(b);
        }
        json_decref(v);
    }
    free_list(sess, ns);
}

/* Every version still listed is served with the bytes it had before (by
 * ?version= and by digest); versions that went answer 404. */
static void check_still_served(const daemon_t *d, const served_set *before, const char *what)
{
    size_t kept = 0, lost = 0, changed = 0;
    for (size_t i = 0; i < before->n; i++) {
        const served *s = &before->v[i];
        json_t *v = versions(d, s->sid);
        bool listed = false;
        for (size_t j = 0; v && j < json_array_size(v); j++)
            listed |= vint(v, j, "version") == s->version;
        json_decref(v);
        size_t n, on;
        char *b = get_events(d, s->sid, (uint64_t)s->version, &n);
        if (!listed) {
            CHECK(!b, "%s: %s version %lld is no longer listed yet still served", what, s->sid, s->version);
            free(b);
            continue;
        }
        kept++;
        char hex[AT_SHA256_HEX], path[200];
        sha_hex(b ? b : "", n, hex);
        snprintf(path, sizeof path, "/objects/sha256/%s", s->sha);
        char *o = get_bytes(d, path, &on);
        if (!b || !o)
            lost++;
        else if (strcmp(hex, s->sha) != 0 || !same_bytes(b, n, o, on))
            changed++;
        free(b);
        free(o);
    }
    CHECK(lost == 0 && changed == 0, "%s: of %zu kept versions, %zu lost their bytes, %zu changed", what,
          kept, lost, changed);
}

/* `agent-traced gc --storage S args...`: its JSON line and exit status. */
static json_t *run_gc(const char *storage, const char *const *extra, int *status)
{
    const char *args[16] = {"gc", "--storage", storage};
    int n = 3;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    char *out = NULL;
    *status = run_cli(&out, args);
    json_t *j = json_loads(out ? out : "", 0, NULL);
    if (!j)
        fprintf(stderr, "gc printed: %s\n", out ? out : "");
    free(out);
    return j;
}

static long long ji(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* A digest of every file of a storage but the event index (path, size, bytes). */
static void tree_digest_rec(const char *dir, const char *rel, at_sha256 *h)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, "index", 5) == 0)
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++) /* readdir order varies: sort */
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX], r[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        snprintf(r, sizeof r, "%s/%s", rel, names[i]);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            tree_digest_rec(p, r, h);
        } else {
            size_t fn = 0;
            char *b = t_read_file(p, &fn);
            at_sha256_update(h, r, strlen(r) + 1);
            at_sha256_update(h, &fn, sizeof fn);
            if (b)
                at_sha256_update(h, b, fn);
            free(b);
        }
        free(names[i]);
    }
    free(names);
}

static void tree_digest(const char *storage, char hex[AT_SHA256_HEX])
{
    at_sha256 *h = at_sha256_new();
    tree_digest_rec(storage, "", h);
    uint8_t d[AT_SHA256_LEN];
    at_sha256_final(h, d);
    at_sha256_free(h);
    at_hex(d, AT_SHA256_LEN, hex);
}

static void age_file(const char *p, int secs)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
}

/* Plants a file under objects/sha256/<2>/ named name, mode 0444. */
static void plant(const char *storage, const char *name, const char *p, size_t n)
{
    char dir[PATH_MAX], path[PATH_MAX + 200];
    const char *h = name[0] == '.' ? name + 1 : name;
    snprintf(dir, sizeof dir, "%s/objects/sha256/%.2s", storage, h);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, p, n);
    chmod(path, 0444);
}

static bool planted(const char *storage, const char *name)
{
    char path[PATH_MAX];
    const char *h = name[0] == '.' ? name + 1 : name;
    snprintf(path, sizeof path, "%s/objects/sha256/%.2s/%s", storage, h, name);
    return file_exists(path);
}

static int count_versions(const daemon_t *d, const char *sid)
{
    json_t *v = versions(d, sid);
    int n = v ? (int)json_array_size(v) : -1;
    json_decref(v);
    return n;
}

static double meta_started(const char *storage, const char *sid)
{
    size_t n;
    char *m = session_file(storage, sid, "meta.json", &n);
    json_t *j = m ? json_loadb(m, n, 0, NULL) : NULL;
    double t = json_number_value(json_object_get(j, "started_at"));
    json_decref(j);
    free(m);
    return t;
}

static uint64_t session_bytes(const char *storage, const char *sid)
{
    char p[PATH_MAX + 300];
    struct stat sb;
    uint64_t t = 0;
    snprintf(p, sizeof p, "%s/%s/meta.json", storage, sid);
    if (stat(p, &sb) == 0)
        t += (uint64_t)sb.st_size;
    snprintf(p, sizeof p, "%s/%s/events.ndjson", storage, sid);
    if (stat(p, &sb) == 0)
        t += (uint64_t)sb.st_size;
    return t;
}

static bool session_gone(const daemon_t *d, const char *sid)
{
    char path[1200], hist[PATH_MAX + 400];
    snprintf(path, sizeof path, "/sessions/%s", sid);
    reply r;
    http(d, "GET", path, NULL, 0, 0, &r);
    bool gone = r.status == 404;
    reply_fini(&r);
    snprintf(hist, sizeof hist, "%s/.agent-traced/history/%s", d->storage, sid);
    return gone && !file_exists(hist);
}

static void test_gc(void)
{
    double t0 = now_mono();
    fixture *tools = fixture_named("tools.jsonl"), *shortf = fixture_named("short.jsonl");
    daemon_t d;
    if (!tools || !shortf || !start(&d, "gc", NULL, NULL)) {
        CHECK(0, "gc: no fixtures or no server");
        return;
    }
    reply r;
    /* S1: created, extended, appended, external, replaced, extended, appended */
    const cut_rec *c1 = middle_cut(tools);
    char s1[300];
    snprintf(s1, sizeof s1, "%s", tools->sid);
    upload(&d, tools->name, tools->data, c1 ? c1->off : tools->n / 2, SEND_LENGTH, &r);
    reply_fini(&r);
    upload(&d, tools->name, tools->data, tools->n, SEND_LENGTH, &r);
    CHECK(strcmp(jstr(&r, "result"), "extended") == 0, "gc setup: extended: %s", body_of(&r));
    reply_fini(&r);
    post_events(&d, s1, "gcappend1", 2, &r);
    reply_fini(&r);
    char events[PATH_MAX + 300];
    snprintf(events, sizeof events, "%s/%s/events.ndjson", d.storage, s1);
    char *line = chained_line(events, s1, "gcextern0001");
    append_line(events, line);
    free(line);
    CHECK(count_versions(&d, s1) == 4, "gc setup: the external version");
    char *u = malloc(tools->n + 1);
    memcpy(u, tools->data, tools->n + 1);
    char *hit = strstr(u + tools->named_end, "\"text\":\"");
    if (hit)
        hit[8] = hit[8] == 'X' ? 'Y' : 'X';
    size_t ucut = c1 ? c1->off : tools->n / 2;
    upload(&d, tools->name, u, ucut, SEND_LENGTH, &r);
    CHECK(strcmp(jstr(&r, "result"), "replaced") == 0, "gc setup: replaced: %s", body_of(&r));
    reply_fini(&r);
    upload(&d, tools->name, u, tools->n, SEND_LENGTH, &r);
    CHECK(strcmp(jstr(&r, "result"), "extended") == 0, "gc setup: extended again: %s", body_of(&r));
    reply_fini(&r);
    post_events(&d, s1, "gcappend2", 1, &r);
    reply_fini(&r);
    free(u);
    /* S2: a chain of incremental uploads */
    char s2[300];
    char *v2 = variant(shortf, s2, sizeof s2);
    size_t first, nr = resumable(shortf, &first);
    size_t cuts[4] = {shortf->bound[first + nr / 4], shortf->bound[first + nr / 2],
                      shortf->bound[first + 3 * nr / 4], shortf->n};
    upload(&d, shortf->name, v2, cuts[0], SEND_LENGTH, &r);
    reply_fini(&r);
    for (int i = 1; i < 4; i++) {
        json_t *vl = versions(&d, s2);
        size_t nv = vl ? json_array_size(vl) : 0;
        long long tb = nv ? vint(vl, nv - 1, "transcript_bytes") : 0;
        json_decref(vl);
        upload_tail(&d, s2, (uint64_t)tb, NULL, v2 + tb, cuts[i] - (size_t)tb, SEND_LENGTH, &r);
        reply_fini(&r);
    }
    free(v2);
    /* S3: appends only; S4, S5: sessions that ended long ago */
    char s3[64], s4[64], s5[64], body[300];
    snprintf(s3, sizeof s3, "gc-app-%u", next_tag);
    snprintf(s4, sizeof s4, "gc-old-%u", next_tag);
    snprintf(s5, sizeof s5, "gc-older-%u", next_tag++);
    for (int i = 0; i < 5; i++) {
        char pre[32];
        snprintf(pre, sizeof pre, "gcapp%d", i);
        post_events(&d, s3, pre, 1 + i % 2, &r);
        reply_fini(&r);
    }
    snprintf(body, sizeof body, "{\"session_id\": \"%s\", \"started_at\": 1000.0, \"ended_at\": 2000.0}", s4);
    http(&d, "POST", "/sessions", body, strlen(body), SEND_LENGTH, &r);
    reply_fini(&r);
    snprintf(body, sizeof body, "{\"session_id\": \"%s\", \"started_at\": 500.0, \"ended_at\": 600.0}", s5);
    http(&d, "POST", "/sessions", body, strlen(body), SEND_LENGTH, &r);
    reply_fini(&r);
    post_events(&d, s4, "gcold1", 2, &r);
    reply_fini(&r);
    post_events(&d, s4, "gcold2", 1, &r);
    reply_fini(&r);
    post_events(&d, s5, "gcolder", 1, &r);
    reply_fini(&r);
    obj_snap snap;
    snap_objects(d.storage, &snap);
    size_t deltas = 0;
    for (size_t i = 0; i < snap.n; i++)
        deltas += strstr(snap.v[i].name, ".delta") != NULL;
    free(snap.v);
    CHECK(deltas >= 8, "gc setup: delta chains exist (%zu delta objects)", deltas);
    int n1 = count_versions(&d, s1), n2 = count_versions(&d, s2), n3 = count_versions(&d, s3),
        n4 = count_versions(&d, s4), n5 = count_versions(&d, s5);
    CHECK(n1 == 7 && n2 == 4 && n3 == 5 && n4 == 2 && n5 == 1, "gc setup: versions %d %d %d %d %d", n1, n2,
          n3, n4, n5);
    served_set before;
    record_served(&d, &before);
    check_objects_referenced(d.storage, true, "before gc");

    /* planted: an orphan object, an orphan delta on a live base, an old and a fresh temporary */
    json_t *vl = versions(&d, s1);
    char base[AT_SHA256_HEX], orphan[200], odelta[200], oldtmp[200], newtmp[200], h1[AT_SHA256_HEX],
        h2[AT_SHA256_HEX];
    snprintf(base, sizeof base, "%s", vstr(vl, 1, "events_sha256"));
    json_decref(vl);
    sha_hex("orphan", 6, h1);
    sha_hex("orphan delta", 12, h2);
    snprintf(orphan, sizeof orphan, "%s.ndjson", h1);
    snprintf(odelta, sizeof odelta, "%s.delta", h2);
    snprintf(oldtmp, sizeof oldtmp, ".%s.tmp-AbCdEf", h1);
    snprintf(newtmp, sizeof newtmp, ".%s.tmp-GhIjKl", h2);
    plant(d.storage, orphan, "{\"event_type\":\"decision\"}\n", 27);
    char dh[400];
    int dl =
        snprintf(dh, sizeof dh, "agent-traced-delta 1\nbase %s\nprefix 10\nsize 14\ndepth 1\n\ntail", base);
    plant(d.storage, odelta, dh, (size_t)dl);
    plant(d.storage, oldtmp, "partial", 7);
    plant(d.storage, newtmp, "partial", 7);
    char p[PATH_MAX + 300];

    /* --dry-run removes nothing (the server stopped meanwhile: nothing else writes) */
    CHECK(stop(&d, SIGTERM) == 0, "gc server exits 0");
    char t_before[AT_SHA256_HEX], t_after[AT_SHA256_HEX];
    tree_digest(d.storage, t_before);
    int st;
    const char *dry[] = {"--dry-run", "--keep-versions", "1", NULL};
    json_t *j = run_gc(d.storage, dry, &st);
    long long want_vr = (n1 - 1) + (n2 - 1) + (n3 - 1) + (n4 - 1) + (n5 - 1);
    CHECK(st == 0 && json_is_true(json_object_get(j, "dry_run")) && ji(j, "versions_removed") == want_vr &&
              ji(j, "objects_removed") >= 2 && ji(j, "sessions_removed") == 0,
          "gc --dry-run --keep-versions 1: exit %d, %lld versions (want %lld), %lld objects", st,
          ji(j, "versions_removed"), want_vr, ji(j, "objects_removed"));
    json_decref(j);
    tree_digest(d.storage, t_after);
    CHECK(strcmp(t_before, t_after) == 0, "gc --dry-run changed the storage");
    if (!start(&d, "gc", NULL, NULL)) {
        CHECK(0, "gc server did not restart");
        free(before.v);
        return;
    }
    check_still_served(&d, &before, "after gc --dry-run");
    snprintf(p, sizeof p, "%s/objects/sha256/%.2s/%s", d.storage, oldtmp + 1, oldtmp);
    age_file(p, 120); /* now, or the restart's sweep would take it */

    /* no limits: only what nothing needs */
    j = run_gc(d.storage, NULL, &st);
    CHECK(st == 0 && ji(j, "objects_removed") == 2 && ji(j, "versions_removed") == 0 &&
              ji(j, "sessions_removed") == 0 && json_is_false(json_object_get(j, "dry_run")),
          "gc: exit %d, %lld objects removed (want the 2 planted)", st, ji(j, "objects_removed"));
    json_decref(j);
    CHECK(!planted(d.storage, orphan) && !planted(d.storage, odelta), "gc: the planted orphans are gone");
    CHECK(!planted(d.storage, oldtmp), "gc: a temporary object older than a minute is swept");
    CHECK(planted(d.storage, newtmp), "gc: a fresh temporary object is left to its writer");
    char bn[200], bd[200];
    snprintf(bn, sizeof bn, "%s.ndjson", base);
    snprintf(bd, sizeof bd, "%s.delta", base);
    CHECK(base[0] && (planted(d.storage, bn) || planted(d.storage, bd)),
          "gc: the orphan delta's base (a live object) stays");
    snprintf(p, sizeof p, "%s/objects/sha256/%.2s/%s", d.storage, newtmp + 1, newtmp);
    chmod(p, 0644);
    unlink(p);
    check_still_served(&d, &before, "after gc");
    check_objects_referenced(d.storage, true, "after gc");

    /* --keep-versions 2, then 1 */
    for (int keep = 2; keep >= 1; keep--) {
        char ks[8];
        snprintf(ks, sizeof ks, "%d", keep);
        const char *args[] = {"--keep-versions", ks, NULL};
        j = run_gc(d.storage, args, &st);
        CHECK(st == 0 && ji(j, "versions_removed") > 0, "gc --keep-versions %d: exit %d", keep, st);
        json_decref(j);
        const char *sids[5] = {s1, s2, s3, s4, s5};
        const int ns[5] = {n1, n2, n3, n4, n5};
        for (int i = 0; i < 5; i++) {
            json_t *v = versions(&d, sids[i]);
            int want = ns[i] < keep ? ns[i] : keep;
            CHECK(v && (int)json_array_size(v) == want && vint(v, 0, "version") == ns[i] - want + 1 &&
                      vint(v, json_array_size(v) - 1, "version") == ns[i],
                  "gc --keep-versions %d: %s lists %zu versions", keep, sids[i], v ? json_array_size(v) : 0);
            json_decref(v);
            check_all_versions(&d, sids[i], "after --keep-versions");
        }
        char path[1200];
        snprintf(path, sizeof path, "/sessions/%s/events?version=1", s1);
        http(&d, "GET", path, NULL, 0, 0, &r);
        CHECK(r.status == 404, "a version gc removed: %ld", r.status);
        reply_fini(&r);
        check_still_served(&d, &before, "after --keep-versions");
        check_objects_referenced(d.storage, true, "after --keep-versions");
    }

    /* retention: age, count, size */
    char days[64];
    snprintf(days, sizeof days, "%.6f", ((double)time(NULL) - 100000.0) / 86400.0);
    const char *age[] = {"--max-age-days", days, NULL};
    j = run_gc(d.storage, age, &st);
    CHECK(st == 0 && ji(j, "sessions_removed") == 2, "gc --max-age-days %s: exit %d, %lld sessions removed",
          days, st, ji(j, "sessions_removed"));
    json_decref(j);
    CHECK(session_gone(&d, s4) && session_gone(&d, s5),
          "gc --max-age-days: the sessions that ended in 1970 are gone");
    CHECK(!session_gone(&d, s1) && !session_gone(&d, s2) && !session_gone(&d, s3),
          "gc --max-age-days: the others stay");
    check_still_served(&d, &before, "after --max-age-days");
    check_objects_referenced(d.storage, true, "after --max-age-days");
    const char *count[] = {"--max-sessions", "2", NULL};
    j = run_gc(d.storage, count, &st);
    CHECK(st == 0 && ji(j, "sessions_removed") == 1, "gc --max-sessions 2: exit %d, %lld removed", st,
          ji(j, "sessions_removed"));
    json_decref(j);
    CHECK(session_gone(&d, s3) && !session_gone(&d, s1) && !session_gone(&d, s2),
          "gc --max-sessions 2: the one without a start time goes");
    check_still_served(&d, &before, "after --max-sessions");
    check_objects_referenced(d.storage, true, "after --max-sessions");
    bool s1_newer = meta_started(d.storage, s1) > meta_started(d.storage, s2);
    const char *newer = s1_newer ? s1 : s2, *older = s1_newer ? s2 : s1;
    char mb[64];
    snprintf(mb, sizeof mb, "%.9f",
             ((double)session_bytes(d.storage, newer) + (double)session_bytes(d.storage, older) / 2) /
                 1048576.0);
    const char *size[] = {"--max-size-mb", mb, NULL};
    j = run_gc(d.storage, size, &st);
    CHECK(st == 0 && ji(j, "sessions_removed") == 1, "gc --max-size-mb %s: exit %d, %lld removed", mb, st,
          ji(j, "sessions_removed"));
    json_decref(j);
    CHECK(session_gone(&d, older) && !session_gone(&d, newer), "gc --max-size-mb: the older session goes");
    check_still_served(&d, &before, "after --max-size-mb");
    check_objects_referenced(d.storage, true, "after --max-size-mb");
    check_all_versions(&d, newer, "after --max-size-mb");
    free(before.v);
    CHECK(stop(&d, SIGTERM) == 0, "gc server exits 0");

    /* serve collects periodically, with the same retention */
    const char *args[] = {"--gc-interval", "1", "--keep-versions", "2", NULL};
    if (!start(&d, "gcserve", NULL, args)) {
        CHECK(0, "gcserve server did not start");
        return;
    }
    char s6[64];
    snprintf(s6, sizeof s6, "gcs-%u", next_tag++);
    for (int i = 0; i < 5; i++) {
        char pre[32];
        snprintf(pre, sizeof pre, "gcs%d", i);
        post_events(&d, s6, pre, 1, &r);
        reply_fini(&r);
    }
    plant(d.storage, orphan, "{}\n", 3);
    bool done = false;
    for (int i = 0; i < 100 && !done; i++) {
        usleep(100000);
        done = count_versions(&d, s6) == 2 && !planted(d.storage, orphan);
    }
    CHECK(done, "serve --gc-interval 1 --keep-versions 2: %d versions left, orphan %s",
          count_versions(&d, s6), planted(d.storage, orphan) ? "still there" : "gone");
    check_all_versions(&d, s6, "serve's periodic gc");
    check_objects_referenced(d.storage, true, "after serve's periodic gc");
    CHECK(stop(&d, SIGTERM) == 0, "gcserve server exits 0");
    printf("gc: %.1f s\n", now_mono() - t0);
}

/* ---- 6: every version of every session verifies ---------------------------------------------- */

static void test_verify_everything(void)
{
    double t0 = now_mono();
    const char *names[] = {"prefix", "plain", "incr", "reup", "ext", "gc", NULL};
    for (int i = 0; names[i]; i++) {
        char storage[PATH_MAX];
        snprintf(storage, sizeof storage, "%s/%s", work, names[i]);
        if (pgurl) { /* the database written out as a directory, for the command line */
            daemon_t x = {0};
            snprintf(x.storage, sizeof x.storage, "%s", storage);
            if (!file_exists(x.storage) && strcmp(names[i], "prefix") != 0 && strcmp(names[i], "plain") != 0 &&
                strcmp(names[i], "incr") != 0 && strcmp(names[i], "reup") != 0)
                continue;
            if (database_for(&x, names[i]))
                stored(&x);
        }
        if (!file_exists(storage))
            continue;
        size_t ns;
        char **sess = list_sessions(storage, &ns);
        /* the command line, on every session directory */
        const char **args = calloc(ns + 3, sizeof *args);
        args[0] = "verify";
        char **dirs = calloc(ns + 1, sizeof *dirs);
        for (size_t k = 0; k < ns; k++) {
            dirs[k] = malloc(PATH_MAX + 300);
            snprintf(dirs[k], PATH_MAX + 300, "%s/%s", storage, sess[k]);
            args[k + 1] = dirs[k];
        }
        char *out = NULL;
        int st = run_cli(&out, args);
        size_t oks = 0;
        for (const char *q = out; q && (q = strstr(q, "\"ok\": true")); q++)
            oks++;
        CHECK(st == 0 && oks == ns, "agent-traced verify on the %zu sessions of %s: exit %d, %zu ok", ns,
              names[i], st, oks);
        free(out);
        for (size_t k = 0; k < ns; k++)
            free(dirs[k]);
        free(dirs);
        free(args);
        /* verify --versions: every version of every session, from its object */
        const char *va[] = {"verify", "--versions", "--storage", storage, NULL};
        st = run_cli(&out, va);
        size_t lines = 0, good = 0, total = 0;
        for (const char *q = out; q && *q; q = strchr(q, '\n') ? strchr(q, '\n') + 1 : NULL) {
            if (*q != '{')
                continue;
            lines++;
            const char *e = strchr(q, '\n');
            size_t len = e ? (size_t)(e - q) : strlen(q);
            good += memmem(q, len, "\"ok\": true", 10) && memmem(q, len, "\"object_ok\": true", 17);
        }
        at_store *vs = open_store(storage);
        for (size_t k = 0; vs && k < ns; k++) {
            at_version *vv = NULL;
            size_t nvv = 0;
            at_error err = {0};
            if (at_store_versions(vs, sess[k], &vv, &nvv, &err) == AT_OK)
                total += nvv;
            free(vv);
        }
        at_store_free(vs);
        CHECK(st == 0 && lines == total && good == total,
              "agent-traced verify --versions on %s: exit %d, %zu lines, %zu ok, %zu versions", names[i], st,
              lines, good, total);
        free(out);
        /* over HTTP, every version (the snapshots checked theirs already) */
        daemon_t d;
        if (strcmp(names[i], "prefix") != 0 && start(&d, names[i], NULL, NULL)) {
            for (size_t k = 0; k < ns; k++)
                check_all_versions(&d, sess[k], names[i]);
            CHECK(stop(&d, SIGTERM) == 0, "%s server exits 0", names[i]);
        }
        free_list(sess, ns);
    }
    printf("verify: %.1f s\n", now_mono() - t0);
}

int main(void)
{
    const char *top = getenv("top_builddir");
    snprintf(bin, sizeof bin, "%s/agent-traced", top ? top : ".");
    signal(SIGPIPE, SIG_IGN);
    if (access(bin, X_OK) != 0) {
        printf("test_history: %s missing, skipped\n", bin);
        return 77;
    }
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 99;
    }
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        snprintf(fast, sizeof fast, "/dev/shm/test_history.XXXXXX");
    else
        snprintf(fast, sizeof fast, "%s/fast.XXXXXX", work);
    if (!mkdtemp(fast)) {
        perror("mkdtemp");
        return 99;
    }
    setenv("TZ", "UTC", 1);
    if (!daemon_setup(bin, work)) {
        CHECK(0, "log keygen failed");
        return t_done("test_history_db");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double t0 = now_mono();
    setup_fixtures();
    /* With AT_TEST_PGURL (tests/history_db.sh) what goes through the
     * server, on the database; the library loops, external appends (a file
     * appended to) and the command line's gc are a directory's. */
    test_library_loops(pgurl != NULL);
    if (!getenv("HISTORY_SKIP_HTTP")) {
        test_reupload_after_appends();
        if (!pgurl) {
            test_external();
            test_torn_external();
        }
        test_http_snapshots();
        test_http_incremental();
        if (!pgurl)
            test_gc();
        test_verify_everything();
    }
    curl_global_cleanup();
    rm_rf(fast);
    printf("test_history: %.1f s\n", now_mono() - t0);
    int rc = t_done(pgurl ? "test_history_db" : "test_history");
    if (rc == 0)
        rm_rf(work);
    else
        fprintf(stderr, "test_history: logs and storages kept in %s\n", work);
    return rc;
}
