/* test_catalog.c - the session catalog against a fresh scan of the same
 * storage directory, after every kind of change other processes make:
 * sessions made by mkdir + write, by renaming a whole directory in, metas
 * rewritten in place and by rename, sessions removed and renamed away,
 * events.ndjson appended by another process, thousands of sessions, a real
 * inotify queue overflow, watches running out, root replaced, concurrent
 * readers while a writer churns, prefix resolution and the sort order.
 *
 * The reference (ref_*) is what sessions_scan, sessions_resolve and
 * collector_list_sessions do today, written out again here, with the one
 * tie-break the catalog adds (directory name, for two directories whose
 * metas have the same started_at and session_id) and "workspaces" reserved.
 *
 *   tests/test_catalog               the tests
 *   tests/test_catalog --bench DIR   times the catalog on DIR (bench/catalog_bench.sh) */
#include "agenttrace/catalog.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- files -------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *pathf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

/* Writes a file the way Python's open(path, "w").write() does: in place. */
static bool write_in_place(const char *path, const char *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    bool ok = write(fd, data, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

/* Writes a file under a temporary name and renames it over path. */
static bool write_by_rename(const char *path, const char *data, size_t n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    return write_in_place(tmp, data, n) && rename(tmp, path) == 0;
}

/* A pretty meta.json as agent-strace writes it. */
static void meta_text(char *out, size_t cap, const char *sid, double started)
{
    snprintf(out, cap, "{\n  \"session_id\": \"%s\",\n  \"started_at\": %.3f,\n  \"attribution\": {}\n}", sid,
             started);
}

/* mkdir <root>/<dir>, then meta.json written in place. */
static bool make_session(const char *root, const char *dir, const char *meta)
{
    char p[PATH_MAX];
    if (mkdir(pathf(p, "%s/%s", root, dir), 0755) < 0 && errno != EEXIST)
        return false;
    return write_in_place(pathf(p, "%s/%s/meta.json", root, dir), meta, strlen(meta));
}

static bool make_simple(const char *root, const char *dir, double started)
{
    char m[512];
    meta_text(m, sizeof m, dir, started);
    return make_session(root, dir, m);
}

static char *new_root(void)
{
    char tmpl[] = "/tmp/test_catalog-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

/* ---- the reference: a fresh scan, as sessions.c / collector.c do it ---------------- */

static bool ref_reserved(const char *name)
{
    return name[0] == '.' || strcmp(name, "objects") == 0 || strcmp(name, "workspaces") == 0;
}

static bool ref_has_meta(const char *root, const char *name)
{
    char p[PATH_MAX];
    struct stat sb;
    if (ref_reserved(name) || strlen(name) > AT_MAX_SESSION_ID)
        return false;
    return stat(pathf(p, "%s/%s/meta.json", root, name), &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The session names, malloc'd; *n of them. */
static char **ref_scan(const char *root, size_t *n)
{
    *n = 0;
    DIR *d = opendir(root);
    if (!d)
        return NULL;
    size_t cap = 64;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (!ref_has_meta(root, e->d_name))
            continue;
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        if (v)
            v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    return v;
}

static void ref_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

typedef struct {
    at_meta meta;
    double started;
    at_buf sid;
    const char *name;
} ref_listed;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_listed *a = pa, *b = pb;
    if (a->started != b->started)
        return a->started > b->started ? -1 : 1;
    size_t n = a->sid.len < b->sid.len ? a->sid.len : b->sid.len;
    int c = n ? memcmp(a->sid.data, b->sid.data, n) : 0;
    if (c == 0)
        c = a->sid.len < b->sid.len ? -1 : a->sid.len > b->sid.len;
    if (c == 0)
        c = strcmp(a->name, b->name);
    return -c;
}

/* The GET /sessions body as collector_list_sessions writes it. */
static void ref_list(const char *root, at_buf *out)
{
    size_t n, k = 0;
    char **ids = ref_scan(root, &n), p[PATH_MAX];
    ref_listed *v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        ref_listed *e = &v[k];
        at_meta_init(&e->meta);
        at_buf_init(&e->sid, 0);
        if (at_meta_load(&e->meta, pathf(p, "%s/%s/meta.json", root, ids[i]), NULL) != AT_OK) {
            at_meta_fini(&e->meta);
            continue;
        }
        double s = at_meta_get_number(&e->meta, AT_META_STARTED_AT, 0.0);
        e->started = s == s ? s : 0.0;
        if (at_meta_get_string(&e->meta, AT_META_SESSION_ID, &e->sid) != AT_OK) {
            at_buf_reset(&e->sid);
            if (at_buf_adds(&e->sid, ids[i]) != AT_OK)
                abort();
        }
        e->name = ids[i];
        k++;
    }
    qsort(v, k, sizeof *v, ref_cmp);
    if (at_buf_addc(out, '[') != AT_OK)
        abort();
    for (size_t i = 0; i < k; i++) {
        if ((i && at_buf_adds(out, ", ") != AT_OK) ||
            at_meta_write(&v[i].meta, out, &AT_JSON_DEFAULT) != AT_OK)
            abort();
        at_meta_fini(&v[i].meta);
        at_buf_fini(&v[i].sid);
    }
    if (at_buf_addc(out, ']') != AT_OK)
        abort();
    free(v);
    ref_free(ids, n);
}

/* sessions_resolve: exact, else a unique prefix. NULL when not found. */
static char *ref_resolve(const char *root, const char *id)
{
    if (ref_has_meta(root, id))
        return strdup(id);
    size_t n, hits = 0, plen = strlen(id);
    char **ids = ref_scan(root, &n), *hit = NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(ids[i], id, plen) == 0 && hits++ == 0)
            hit = ids[i];
    char *r = hits == 1 ? strdup(hit) : NULL;
    ref_free(ids, n);
    return r;
}

/* Count, listing and the resolution of every session and of a few
 * prefixes of each, against the reference. */
static void check_same(at_catalog *c, const char *root, const char *what)
{
    size_t n;
    char **ids = ref_scan(root, &n);
    uint64_t got = at_catalog_count(c);
    CHECK(got == n, "%s: count %llu, a fresh scan finds %zu", what, (unsigned long long)got, n);
    at_buf a, b;
    at_buf_init(&a, 0);
    at_buf_init(&b, 0);
    at_result r = at_catalog_list_json(c, &a);
    ref_list(root, &b);
    CHECK(r == AT_OK, "%s: list: %s", what, at_result_str(r));
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
        size_t i = 0;
        while (i < a.len && i < b.len && a.data[i] == b.data[i])
            i++;
        CHECK(
            0,
            "%s: listing differs from a fresh scan at byte %zu (got %zu bytes, want %zu):\n got  ...%.160s\n want ...%.160s",
            what, i, a.len, b.len, a.data + (i > 40 ? i - 40 : 0), b.data + (i > 40 ? i - 40 : 0));
    } else {
        CHECK(1, "listing");
    }
    size_t bad = 0, step = n > 40 ? n / 40 : 1; /* a sample: the reference rescans per prefix */
    for (size_t i = 0; i < n && bad < 5; i += step) {
        size_t len = strlen(ids[i]);
        for (size_t cut = len; cut >= 1 && cut + 3 >= len; cut--) {
            char pre[AT_MAX_SESSION_ID + 1];
            memcpy(pre, ids[i], cut);
            pre[cut] = 0;
            char *x = NULL, *want = ref_resolve(root, pre);
            at_result rr = at_catalog_resolve(c, pre, &x);
            bool ok = want ? rr == AT_OK && x && strcmp(x, want) == 0 : rr == AT_ERR_NOT_FOUND && !x;
            if (!ok) {
                bad++;
                CHECK(0, "%s: resolve(%s) = %s %s, want %s", what, pre, at_result_str(rr), x ? x : "-",
                      want ? want : "not found");
            }
            free(x);
            free(want);
        }
    }
    CHECK(bad == 0, "%s: resolutions", what);
    at_buf_fini(&a);
    at_buf_fini(&b);
    ref_free(ids, n);
}

/* ---- drain_changed ------------------------------------------------------------------ */

typedef struct {
    char names[64][AT_MAX_SESSION_ID + 1];
    size_t n, total;
    at_catalog *reenter; /* when set, the callback calls the catalog */
} drained;

static void on_changed(void *ctx, const char *sid)
{
    drained *d = ctx;
    if (d->n < 64)
        snprintf(d->names[d->n++], sizeof d->names[0], "%s", sid);
    d->total++;
    if (d->reenter)
        (void)at_catalog_count(d->reenter);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The changed sessions, sorted and joined by ",". */
static const char *drain(at_catalog *c, char *out, size_t cap)
{
    static drained d;
    memset(&d, 0, sizeof d);
    at_catalog_drain_changed(c, on_changed, &d);
    qsort(d.names, d.n, sizeof d.names[0], cmp_str);
    out[0] = 0;
    for (size_t i = 0; i < d.n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? "," : "", d.names[i]);
    }
    return out;
}

static void append_from_child(const char *path, const char *line)
{
    pid_t p = fork();
    if (p == 0) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd < 0)
            _exit(1);
        ssize_t k = write(fd, line, strlen(line));
        close(fd);
        _exit(k == (ssize_t)strlen(line) ? 0 : 1);
    }
    int st = 0;
    waitpid(p, &st, 0);
    CHECK(p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child append to %s", path);
}

/* ---- the tests ------------------------------------------------------------------------ */

static bool copy_file(const char *from, const char *to)
{
    size_t n;
    char *d = t_read_file(from, &n);
    bool ok = d && write_in_place(to, d, n);
    free(d);
    return ok;
}

/* Copies every session of tests/fixtures/<set> into root, under prefix. */
static size_t copy_fixtures(const char *root, const char *set, const char *prefix)
{
    char src[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
    snprintf(src, sizeof src, "%s", t_src(set));
    DIR *d = opendir(src);
    if (!d)
        return 0;
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (mkdir(pathf(p, "%s/%s%s", root, prefix, e->d_name), 0755) < 0)
            continue;
        k += copy_file(pathf(q, "%s/%s/meta.json", src, e->d_name),
                       pathf(p, "%s/%s%s/meta.json", root, prefix, e->d_name));
        copy_file(pathf(q, "%s/%s/events.ndjson", src, e->d_name),
                  pathf(p, "%s/%s%s/events.ndjson", root, prefix, e->d_name));
    }
    closedir(d);
    return k;
}

static void test_fixtures_and_weird_entries(void)
{
    char *root = new_root(), p[PATH_MAX], q[PATH_MAX];
    size_t k = copy_fixtures(root, "tests/fixtures/expected", "");
    k += copy_fixtures(root, "tests/fixtures/expected-edge", "");
    k += copy_fixtures(root, "tests/fixtures/expected-redacted", "r-"); /* same ids, other dirs */
    CHECK(k >= 16, "fixtures copied: %zu", k);
    /* Entries that are not sessions, or odd ones. */
    write_in_place(pathf(p, "%s/a-file", root), "x", 1);
    make_simple(root, "objects", 5.0);
    make_simple(root, "workspaces", 5.0);
    make_simple(root, ".hidden", 5.0);
    mkdir(pathf(p, "%s/no-meta", root), 0755);
    mkdir(pathf(p, "%s/meta-is-dir", root), 0755);
    mkdir(pathf(p, "%s/meta-is-dir/meta.json", root), 0755);
    make_session(root, "unparsable", "{\"session_id\": ");
    make_session(root, "not-an-object", "[1, 2]");
    make_session(root, "unknown-key", "{\"session_id\": \"unknown-key\", \"colour\": \"red\"}");
    make_session(root, "empty-meta", "");
    symlink("258c7280-ae70-4798-800f-63464d01a85d", pathf(p, "%s/link-to-session", root));
    symlink("nowhere", pathf(p, "%s/dangling", root));
    symlink("a-file", pathf(p, "%s/link-to-file", root));
    mkdir(pathf(q, "%s/.outside", root), 0755);
    make_simple(pathf(q, "%s/.outside", root), "target", 7.0);
    symlink(".outside/target", pathf(p, "%s/link-outside", root));
    symlink(".", pathf(p, "%s/loop", root)); /* root itself: no meta.json there */

    at_error err = {0};
    at_catalog *c = at_catalog_open(root, &err);
    CHECK(c != NULL, "open: %s", err.message);
    if (!c)
        return;
    check_same(c, root, "fixtures + weird entries");
    size_t n;
    char **ids = ref_scan(root, &n);
    ref_free(ids, n);
    CHECK(at_catalog_count(c) == k + 6, "unparsable metas and symlinked sessions are counted (%zu)", n);
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_catalog_list_json(c, &b) == AT_OK && strstr(b.data, "\"session_id\": \"unknown-key\"") &&
              strstr(b.data, "\"session_id\": \"target\""),
          "unknown keys are ignored as at_meta_load ignores them; a symlinked session is listed");
    at_buf_reset(&b);
    CHECK(
        at_catalog_meta_json(c, "258c7280-ae70-4798-800f-63464d01a85d", &b) == AT_OK &&
            strncmp(
                b.data,
                "{\"session_id\": \"258c7280-ae70-4798-800f-63464d01a85d\", \"started_at\": 1770841913.375,",
                80) == 0,
        "meta_json: %s", b.data ? b.data : "");
    at_buf_reset(&b);
    CHECK(at_catalog_meta_json(c, "unparsable", &b) == AT_ERR_JSON, "meta_json of an unparsable meta");
    CHECK(at_catalog_meta_json(c, "no-meta", &b) == AT_ERR_NOT_FOUND, "meta_json of a dir without meta");
    CHECK(at_catalog_meta_json(c, "objects", &b) == AT_ERR_NOT_FOUND, "meta_json of objects");
    at_buf_fini(&b);

    /* A capped output buffer. */
    at_buf small;
    at_buf_init(&small, 10);
    CHECK(at_catalog_list_json(c, &small) == AT_ERR_TOO_BIG, "list into a 10-byte buffer");
    at_buf_fini(&small);

    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(st.inotify && st.root_watched && st.rescans == 1 && st.overflows == 0, "stats after open");
    /* link-to-session or its target (one inode, one watch), loop (root's
     * inode), dangling and link-to-file (symlinks not leading to a dir) */
    CHECK(st.unwatched == 4, "4 entries revalidated by stat: %llu", (unsigned long long)st.unwatched);
    char dr[4096];
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "nothing changed after open: %s", dr);

    /* Changes through the symlinks (an unwatched alias, a target outside root). */
    char m[256];
    meta_text(m, sizeof m, "target", 99.0);
    write_in_place(pathf(p, "%s/.outside/target/meta.json", root), m, strlen(m));
    check_same(c, root, "meta rewritten through a symlinked session dir");
    unlink(pathf(p, "%s/link-to-session", root));
    check_same(c, root, "symlink removed");
    make_simple(pathf(q, "%s/.outside", root), "nowhere", 3.0);
    unlink(pathf(p, "%s/dangling", root));
    symlink(".outside/nowhere", pathf(p, "%s/dangling", root));
    check_same(c, root, "a dangling symlink replaced");
    symlink(".outside/later", pathf(p, "%s/dangling2", root));
    check_same(c, root, "a dangling symlink");
    make_simple(pathf(q, "%s/.outside", root), "later", 3.5);
    check_same(c, root, "a dangling symlink's target appears (no event in root)");
    write_in_place(pathf(p, "%s/a-file", root), "y", 1);
    unlink(pathf(p, "%s/a-file", root));
    make_simple(root, "a-file", 4.0);
    check_same(c, root, "a symlink's target file replaced by a session dir");
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* Hand-written expected bodies: the sort order. */
static void test_order(void)
{
    char *root = new_root();
    make_session(root, "a", "{\"session_id\": \"a\", \"started_at\": 2.0}");
    make_session(root, "b", "{\"session_id\": \"b\", \"started_at\": 2.0}");
    make_session(root, "c", "{\"session_id\": \"c\"}");
    make_session(root, "d", "{\"session_id\": \"d\", \"started_at\": NaN}");
    make_session(root, "e", "{\"session_id\": \"\\u00e9\", \"started_at\": 0.0}");
    make_session(root, "f", "{\"agent_name\": \"no id\", \"started_at\": 0}");
    make_session(root, "g", "{\"session_id\": \"\\ud83c\\udf89\"}");
    make_session(root, "h", "{\"session_id\": \"\\uffff\"}");
    make_session(root, "i", "{\"session_id\": \"z\", \"started_at\": -1.5}");
    make_session(root, "j", "{\"session_id\": \"a\", \"started_at\": 2}");
    make_session(root, "k", "{\"session_id\": 17, \"started_at\": 1e400}");
    at_error err = {0};
    at_catalog *c = at_catalog_open(root, &err);
    CHECK(c != NULL, "open: %s", err.message);
    if (!c)
        return;
    const char *want = "[{\"session_id\": 17, \"started_at\": Infinity, \"attribution\": {}}, "
                       "{\"session_id\": \"b\", \"started_at\": 2.0, \"attribution\": {}}, "
                       "{\"session_id\": \"a\", \"started_at\": 2, \"attribution\": {}}, "
                       "{\"session_id\": \"a\", \"started_at\": 2.0, \"attribution\": {}}, "
                       "{\"session_id\": \"\\ud83c\\udf89\", \"attribution\": {}}, "
                       "{\"session_id\": \"\\uffff\", \"attribution\": {}}, "
                       "{\"session_id\": \"\\u00e9\", \"attribution\": {}}, "
                       "{\"agent_name\": \"no id\", \"attribution\": {}}, "
                       "{\"session_id\": \"d\", \"started_at\": NaN, \"attribution\": {}}, "
                       "{\"session_id\": \"c\", \"attribution\": {}}, "
                       "{\"session_id\": \"z\", \"started_at\": -1.5, \"attribution\": {}}]";
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_catalog_list_json(c, &b) == AT_OK, "list");
    CHECK_BYTES(b.data, b.len, want, strlen(want), "sort order");
    check_same(c, root, "sort order");
    at_buf_fini(&b);

    /* Empty storage. */
    char *empty = new_root();
    at_catalog *e = at_catalog_open(empty, &err);
    at_buf_init(&b, 0);
    CHECK(e && at_catalog_count(e) == 0 && at_catalog_list_json(e, &b) == AT_OK && b.len == 2 &&
              memcmp(b.data, "[]", 2) == 0,
          "an empty storage lists []");
    at_buf_fini(&b);
    at_catalog_free(e);
    rm_rf(empty);
    free(empty);

    /* Open errors. */
    char p[PATH_MAX];
    CHECK(at_catalog_open(pathf(p, "%s/missing", root), &err) == NULL && err.code == AT_ERR_IO &&
              strstr(err.message, "No such file"),
          "open of a missing dir: %s", err.message);
    CHECK(at_catalog_open(pathf(p, "%s/a/meta.json", root), &err) == NULL && err.code == AT_ERR_INVALID,
          "open of a file: %s", err.message);
    at_catalog_free(NULL);
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

static void test_resolve(void)
{
    char *root = new_root(), p[PATH_MAX];
    make_simple(root, "abc", 1.0);
    make_simple(root, "abcd", 2.0);
    make_simple(root, "xyz1", 3.0);
    make_simple(root, "objects", 4.0);
    mkdir(pathf(p, "%s/nometa", root), 0755);
    make_simple(root, "nometa2", 5.0);
    make_simple(root, "\xc3\xa9t\xc3\xa9", 6.0); /* "été" */
    at_catalog *c = at_catalog_open(root, NULL);
    CHECK(c != NULL, "open");
    if (!c)
        return;
    struct {
        const char *id;
        at_result r;
        const char *want;
    } cases[] = {
        {"abc", AT_OK, "abc"}, /* exact beats the prefix of abcd */
        {"abcd", AT_OK, "abcd"},
        {"ab", AT_ERR_NOT_FOUND, NULL}, /* ambiguous */
        {"a", AT_ERR_NOT_FOUND, NULL},
        {"x", AT_OK, "xyz1"}, /* prefix of one */
        {"xyz1", AT_OK, "xyz1"},
        {"xyz12", AT_ERR_NOT_FOUND, NULL},
        {"q", AT_ERR_NOT_FOUND, NULL},
        {"obj", AT_ERR_NOT_FOUND, NULL}, /* reserved */
        {"objects", AT_ERR_NOT_FOUND, NULL},
        {"nometa", AT_OK, "nometa2"}, /* not a session: prefix */
        {"\xc3\xa9", AT_OK, "\xc3\xa9t\xc3\xa9"},
        {"\xc3", AT_OK, "\xc3\xa9t\xc3\xa9"},
        {"", AT_ERR_INVALID, NULL},
        {".x", AT_ERR_INVALID, NULL},
        {"a/b", AT_ERR_INVALID, NULL},
        {"a\\b", AT_ERR_INVALID, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        at_result r = at_catalog_resolve(c, cases[i].id, &out);
        CHECK(r == cases[i].r && (cases[i].want ? out && strcmp(out, cases[i].want) == 0 : out == NULL),
              "resolve(%s) = %s %s", cases[i].id, at_result_str(r), out ? out : "-");
        if (cases[i].r != AT_ERR_INVALID) {
            char *ref = ref_resolve(root, cases[i].id);
            CHECK((ref == NULL) == (out == NULL) && (!ref || strcmp(ref, out) == 0), "resolve(%s) as today",
                  cases[i].id);
            free(ref);
        }
        free(out);
    }
    char long_id[300];
    memset(long_id, 'a', 256);
    long_id[256] = 0;
    char *out = NULL;
    CHECK(at_catalog_resolve(c, long_id, &out) == AT_ERR_INVALID && !out, "a 256-byte id");
    CHECK(at_catalog_resolve(c, NULL, &out) == AT_ERR_INVALID && !out, "a NULL id");
    /* A prefix becomes unique when the other session goes, ambiguous again when it comes back. */
    rm_rf(pathf(p, "%s/abc", root));
    CHECK(at_catalog_resolve(c, "ab", &out) == AT_OK && strcmp(out, "abcd") == 0, "ab after abc went");
    free(out);
    make_simple(root, "abx", 1.0);
    CHECK(at_catalog_resolve(c, "ab", &out) == AT_ERR_NOT_FOUND, "ab with abx and abcd");
    check_same(c, root, "resolve");
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* Every kind of change, each followed by a comparison with a fresh scan. */
static void test_changes(void)
{
    char *root = new_root(), p[PATH_MAX], q[PATH_MAX], m[512], dr[4096];
    make_simple(root, "s1", 10.0);
    make_simple(root, "s2", 20.0);
    mkdir(pathf(p, "%s/.agent-traced", root), 0755);
    mkdir(pathf(p, "%s/.agent-traced/tmp", root), 0755);
    at_catalog *c = at_catalog_open(root, NULL);
    CHECK(c != NULL, "open");
    if (!c)
        return;
    check_same(c, root, "start");

    /* mkdir then meta.json written in place */
    make_simple(root, "new1", 30.0);
    check_same(c, root, "mkdir + write");
    /* mkdir, looked at while empty, then meta.json renamed in */
    mkdir(pathf(p, "%s/new2", root), 0755);
    check_same(c, root, "an empty session dir");
    CHECK(at_catalog_count(c) == 3, "an empty dir is no session");
    meta_text(m, sizeof m, "new2", 5.0);
    write_by_rename(pathf(p, "%s/new2/meta.json", root), m, strlen(m));
    check_same(c, root, "meta.json renamed into an existing dir");
    /* a whole session built aside and renamed into root (the importer) */
    mkdir(pathf(p, "%s/.agent-traced/tmp/session-x", root), 0755);
    make_simple(pathf(q, "%s/.agent-traced/tmp", root), "session-x", 40.0);
    write_in_place(pathf(p, "%s/.agent-traced/tmp/session-x/events.ndjson", root), "{}\n", 3);
    rename(pathf(p, "%s/.agent-traced/tmp/session-x", root), pathf(q, "%s/imported", root));
    check_same(c, root, "a whole directory renamed in");
    CHECK(strcmp(drain(c, dr, sizeof dr), "imported,new1,new2") == 0, "new sessions are reported changed: %s",
          dr);

    /* meta.json rewritten in place (truncate + write), twice within one tick, same size */
    meta_text(m, sizeof m, "s1", 11.0);
    write_in_place(pathf(p, "%s/s1/meta.json", root), m, strlen(m));
    check_same(c, root, "meta rewritten in place");
    meta_text(m, sizeof m, "s1", 12.0);
    write_in_place(pathf(p, "%s/s1/meta.json", root), m, strlen(m));
    meta_text(m, sizeof m, "s1", 13.0);
    write_in_place(pathf(p, "%s/s1/meta.json", root), m, strlen(m));
    check_same(c, root, "meta rewritten twice, same size");
    at_buf b;
    at_buf_init(&b, 0);
    CHECK(at_catalog_meta_json(c, "s1", &b) == AT_OK && strstr(b.data, "13.0"), "meta_json follows: %s",
          b.data ? b.data : "");
    at_buf_fini(&b);
    /* meta.json replaced by rename */
    meta_text(m, sizeof m, "s2", 1.0);
    write_by_rename(pathf(p, "%s/s2/meta.json", root), m, strlen(m));
    check_same(c, root, "meta replaced by rename");
    /* meta.json made unparsable, then a directory, then removed, then back */
    write_in_place(pathf(p, "%s/s2/meta.json", root), "{", 1);
    check_same(c, root, "meta unparsable");
    CHECK(at_catalog_count(c) == 5, "an unparsable meta is still counted");
    unlink(pathf(p, "%s/s2/meta.json", root));
    check_same(c, root, "meta removed");
    mkdir(pathf(p, "%s/s2/meta.json", root), 0755);
    check_same(c, root, "meta is a directory");
    rmdir(pathf(p, "%s/s2/meta.json", root));
    write_in_place(pathf(p, "%s/s2/meta.json", root), m, strlen(m));
    check_same(c, root, "meta back");
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "meta changes are not events changes: %s", dr);

    /* events.ndjson: appended by another process, created, renamed over, removed */
    append_from_child(pathf(p, "%s/s1/events.ndjson", root), "{\"event_type\": \"x\"}\n");
    CHECK(strcmp(drain(c, dr, sizeof dr), "s1") == 0, "created by another process: %s", dr);
    append_from_child(pathf(p, "%s/s1/events.ndjson", root), "{\"event_type\": \"y\"}\n");
    append_from_child(pathf(p, "%s/s2/events.ndjson", root), "{\"event_type\": \"y\"}\n");
    append_from_child(pathf(p, "%s/s1/events.ndjson", root), "{\"event_type\": \"z\"}\n");
    CHECK(strcmp(drain(c, dr, sizeof dr), "s1,s2") == 0, "appended by another process: %s", dr);
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "drained: %s", dr);
    write_by_rename(pathf(p, "%s/new1/events.ndjson", root), "{}\n", 3);
    CHECK(strcmp(drain(c, dr, sizeof dr), "new1") == 0, "renamed over: %s", dr);
    unlink(pathf(p, "%s/new1/events.ndjson", root));
    CHECK(strcmp(drain(c, dr, sizeof dr), "new1") == 0, "removed: %s", dr);
    write_in_place(pathf(p, "%s/new1/other.txt", root), "x", 1);
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "other files are not events: %s", dr);
    static drained re;
    memset(&re, 0, sizeof re);
    re.reenter = c;
    append_from_child(pathf(p, "%s/s2/events.ndjson", root), "{}\n");
    at_catalog_drain_changed(c, on_changed, &re);
    CHECK(re.total == 1, "the callback may call the catalog");

    /* sessions removed (rm -rf), renamed away, renamed within root */
    rm_rf(pathf(p, "%s/new1", root));
    check_same(c, root, "rm -rf");
    rename(pathf(p, "%s/new2", root), pathf(q, "%s/.agent-traced/tmp/gone", root));
    check_same(c, root, "renamed away");
    rename(pathf(p, "%s/imported", root), pathf(q, "%s/moved", root));
    check_same(c, root, "renamed within root");
    CHECK(strcmp(drain(c, dr, sizeof dr), "imported,moved,new1,new2") == 0,
          "removed and moved are changed: %s", dr);
    meta_text(m, sizeof m, "moved", 41.0);
    write_in_place(pathf(p, "%s/moved/meta.json", root), m, strlen(m));
    check_same(c, root, "a moved session keeps being followed");
    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(st.unwatched == 0 && st.watched == st.dirs, "every dir watched: %llu of %llu, %llu unwatched",
          (unsigned long long)st.watched, (unsigned long long)st.dirs, (unsigned long long)st.unwatched);
    /* renamed over another session, and back in from outside */
    rename(pathf(p, "%s/s2", root), pathf(q, "%s/.agent-traced/tmp/s2", root));
    make_simple(root, "s2", 77.0);
    check_same(c, root, "a session replaced by another dir of the same name");
    rm_rf(pathf(p, "%s/s2", root));
    rename(pathf(p, "%s/.agent-traced/tmp/s2", root), pathf(q, "%s/s2", root));
    check_same(c, root, "the old one back");
    /* a session dir replaced by a file */
    rm_rf(pathf(p, "%s/moved", root));
    write_in_place(pathf(p, "%s/moved", root), "x", 1);
    check_same(c, root, "dir replaced by a file");
    unlink(pathf(p, "%s/moved", root));
    make_simple(root, "moved", 2.0);
    check_same(c, root, "file replaced by a dir");

    /* touch: our own writes, and nonsense */
    meta_text(m, sizeof m, "s1", 14.0);
    write_in_place(pathf(p, "%s/s1/meta.json", root), m, strlen(m));
    at_catalog_touch(c, "s1");
    at_catalog_touch(c, "does-not-exist");
    at_catalog_touch(c, "../etc");
    at_catalog_touch(c, "");
    at_catalog_touch(c, NULL);
    at_catalog_touch(c, "objects");
    check_same(c, root, "touch");
    make_simple(root, "touched", 50.0);
    at_catalog_touch(c, "touched");
    check_same(c, root, "touch of a new session");
    at_catalog_stats_get(c, &st);
    CHECK(st.rescans == 1 && st.overflows == 0, "no rescan needed: %llu", (unsigned long long)st.rescans);

    /* root replaced: removed, listed while missing, made again */
    char *old = strdup(root);
    rename(root, pathf(p, "%s.old", root));
    CHECK(at_catalog_count(c) == 0, "root moved away: 0 sessions");
    at_buf_init(&b, 0);
    char *out = NULL;
    CHECK(at_catalog_list_json(c, &b) == AT_ERR_IO, "root missing: list fails");
    CHECK(at_catalog_resolve(c, "s1", &out) == AT_ERR_IO && !out, "root missing: resolve fails");
    CHECK(at_catalog_meta_json(c, "s1", &b) == AT_ERR_IO, "root missing: meta_json fails");
    at_buf_fini(&b);
    at_catalog_stats_get(c, &st);
    CHECK(!st.root_watched, "root no longer watched");
    mkdir(root, 0755);
    make_simple(root, "fresh", 1.0);
    check_same(c, root, "a new root");
    at_catalog_stats_get(c, &st);
    CHECK(st.root_watched, "the new root is watched");
    make_simple(root, "fresh2", 2.0);
    check_same(c, root, "a session in the new root");
    rm_rf(root);
    rename(pathf(p, "%s.old", old), root);
    check_same(c, root, "the old root back");
    meta_text(m, sizeof m, "s1", 15.0);
    write_in_place(pathf(p, "%s/s1/meta.json", root), m, strlen(m));
    check_same(c, root, "the old root's sessions followed again");
    free(old);

    /* rescan on demand: every session reported */
    at_catalog_rescan(c);
    check_same(c, root, "after at_catalog_rescan");
    drain(c, dr, sizeof dr);
    size_t n;
    char **ids = ref_scan(root, &n);
    ref_free(ids, n);
    static drained all;
    memset(&all, 0, sizeof all);
    at_catalog_rescan(c);
    at_catalog_drain_changed(c, on_changed, &all);
    CHECK(all.total >= n, "a rescan reports every session: %zu of %zu", all.total, n);
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* AT_CATALOG_RESCAN (no inotify, as on NFS): the same answers. */
static void test_rescan_mode(void)
{
    char *root = new_root(), p[PATH_MAX], q[PATH_MAX], m[512], dr[4096];
    mkdir(pathf(p, "%s/.agent-traced", root), 0755);
    make_simple(root, "r1", 1.0);
    make_simple(root, "r2", 2.0);
    at_error err = {0};
    at_catalog *c = at_catalog_open_mode(root, AT_CATALOG_RESCAN, &err);
    CHECK(c != NULL, "open: %s", err.message);
    if (!c)
        return;
    check_same(c, root, "rescan mode");
    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(!st.inotify && !st.root_watched && st.watched == 0 && st.unwatched == 2, "no inotify at all");
    make_simple(root, "r3", 3.0);
    check_same(c, root, "rescan mode: mkdir + write");
    meta_text(m, sizeof m, "r1", 4.0);
    write_in_place(pathf(p, "%s/r1/meta.json", root), m, strlen(m));
    meta_text(m, sizeof m, "r1", 5.0);
    write_in_place(pathf(p, "%s/r1/meta.json", root), m, strlen(m));
    check_same(c, root, "rescan mode: meta rewritten in place twice, same size");
    mkdir(pathf(p, "%s/.agent-traced/x", root), 0755);
    make_simple(pathf(q, "%s/.agent-traced", root), "x", 6.0);
    rename(pathf(p, "%s/.agent-traced/x", root), pathf(q, "%s/x", root));
    check_same(c, root, "rescan mode: a directory renamed in");
    rm_rf(pathf(p, "%s/r2", root));
    check_same(c, root, "rescan mode: rm -rf");
    CHECK(strcmp(drain(c, dr, sizeof dr), "r2,r3,x") == 0, "rescan mode: new and removed sessions: %s", dr);
    append_from_child(pathf(p, "%s/r1/events.ndjson", root), "{}\n");
    CHECK(strcmp(drain(c, dr, sizeof dr), "r1") == 0, "rescan mode: an append by another process: %s", dr);
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "rescan mode: drained: %s", dr);
    at_buf a, b;
    at_buf_init(&a, 0);
    at_buf_init(&b, 0);
    at_catalog_stats_get(c, &st);
    uint64_t reloads = st.reloads;
    sleep(3); /* past the racy window: nothing is re-read any more */
    CHECK(at_catalog_list_json(c, &a) == AT_OK && at_catalog_list_json(c, &b) == AT_OK && a.len == b.len,
          "rescan mode: list");
    at_catalog_stats_get(c, &st);
    CHECK(st.reloads - reloads <= 3, "rescan mode: unchanged metas are not re-read once settled: %llu",
          (unsigned long long)(st.reloads - reloads));
    reloads = st.reloads;
    (void)at_catalog_count(c);
    at_catalog_stats_get(c, &st);
    CHECK(st.reloads == reloads, "rescan mode: nothing re-read: %llu",
          (unsigned long long)(st.reloads - reloads));
    at_buf_fini(&a);
    at_buf_fini(&b);
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* Root removed and made again while a file below it stays open: root's
 * IN_DELETE_SELF is then held back by the kernel; the parent's watch sees
 * the name go. Root given with a trailing slash. */
static void test_root_held_open(void)
{
    char *root = new_root(), p[PATH_MAX], slash[PATH_MAX];
    mkdir(pathf(p, "%s/.agent-traced", root), 0755);
    int fd = open(pathf(p, "%s/.agent-traced/lock", root), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "lock file");
    make_simple(root, "old", 1.0);
    at_catalog *c = at_catalog_open(pathf(slash, "%s/", root), NULL);
    CHECK(c != NULL, "open with a trailing slash");
    if (!c)
        return;
    check_same(c, root, "root with a trailing slash");
    rm_rf(root);
    mkdir(root, 0755);
    make_simple(root, "new", 2.0);
    check_same(c, root, "root replaced while a file below it was open");
    make_simple(root, "newer", 3.0);
    check_same(c, root, "the new root is followed");
    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(st.root_watched && st.watched == 2, "root and its sessions watched");
    close(fd);
    check_same(c, root, "after the old root's last holder went");
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

static long read_long(const char *path)
{
    size_t n;
    char *s = t_read_file(path, &n);
    long v = s ? strtol(s, NULL, 10) : -1;
    free(s);
    return v;
}

/* 2,000 sessions made quickly, then a real queue overflow. */
static void test_many_and_overflow(void)
{
    char *root = new_root(), p[PATH_MAX], name[64];
    at_catalog *c = at_catalog_open(root, NULL);
    CHECK(c != NULL, "open");
    if (!c)
        return;
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "sess-%04d-%08x", i, (unsigned)(i * 2654435761u));
        make_simple(root, name, 1000.0 + (i % 37)); /* many equal started_at */
        if (i % 250 == 0)
            (void)at_catalog_count(c);
    }
    check_same(c, root, "2000 sessions");
    CHECK(at_catalog_count(c) == 2000, "2000 counted");
    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(st.watched == 2000, "2000 watches: %llu", (unsigned long long)st.watched);
    char dr[4096];
    drain(c, dr, sizeof dr);

    /* Overflow the queue for real: alternate writes to two files of one
     * session (the kernel merges only identical consecutive events). */
    long q = read_long("/proc/sys/fs/inotify/max_queued_events");
    if (q > 0 && q <= 4 * 1024 * 1024) {
        int a =
            open(pathf(p, "%s/sess-0001-9e3779b1/events.ndjson", root), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int b = open(pathf(p, "%s/sess-0001-9e3779b1/junk", root), O_WRONLY | O_CREAT | O_APPEND, 0644);
        for (long i = 0; i < q / 2 + 64 && a >= 0 && b >= 0; i++)
            if (write(a, "\n", 1) != 1 || write(b, "x", 1) != 1)
                break;
        close(a);
        close(b);
        /* Changes whose events the kernel drops now. */
        make_simple(root, "after-overflow", 5000.0);
        char m[256];
        meta_text(m, sizeof m, "sess-0002-3c6ef362", 9999.0);
        write_in_place(pathf(p, "%s/sess-0002-3c6ef362/meta.json", root), m, strlen(m));
        rm_rf(pathf(p, "%s/sess-0003-daa66d13", root));
        check_same(c, root, "after IN_Q_OVERFLOW");
        at_catalog_stats_get(c, &st);
        CHECK(st.overflows >= 1 && st.rescans >= 2,
              "an overflow happened and was followed by a rescan (%llu, %llu)",
              (unsigned long long)st.overflows, (unsigned long long)st.rescans);
        static drained all;
        memset(&all, 0, sizeof all);
        at_catalog_drain_changed(c, on_changed, &all);
        CHECK(all.total >= 2000, "after an overflow every session is reported: %zu", all.total);
    } else {
        printf("test_catalog: max_queued_events is %ld: no real overflow tested\n", q);
    }
    /* removing them all at once */
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            rm_rf(pathf(p, "%s/%s", root, e->d_name));
    if (d)
        closedir(d);
    check_same(c, root, "all removed");
    CHECK(at_catalog_count(c) == 0, "none left");
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* Watches running out: sessions without a watch are revalidated by stat. */
static void test_no_watches(void)
{
    char *root = new_root(), p[PATH_MAX], q[PATH_MAX], m[512], dr[4096];
    make_simple(root, "w1", 1.0);
    make_simple(root, "w2", 2.0);
    at_catalog *c = at_catalog_open(root, NULL);
    CHECK(c != NULL, "open");
    if (!c)
        return;
    at_catalog_test_watch_limit(c, 2); /* w1, w2 keep theirs; no more */
    make_simple(root, "u1", 3.0);
    make_simple(root, "u2", 4.0);
    check_same(c, root, "new sessions without watches");
    CHECK(strcmp(drain(c, dr, sizeof dr), "u1,u2") == 0, "new unwatched sessions are reported: %s", dr);
    at_catalog_stats st;
    at_catalog_stats_get(c, &st);
    CHECK(st.watched == 2 && st.unwatched == 2, "2 watched, 2 not: %llu %llu", (unsigned long long)st.watched,
          (unsigned long long)st.unwatched);
    /* same size, same tick: only the racy rule sees it */
    meta_text(m, sizeof m, "u1", 5.0);
    write_in_place(pathf(p, "%s/u1/meta.json", root), m, strlen(m));
    check_same(c, root, "unwatched: meta in place");
    meta_text(m, sizeof m, "u1", 6.0);
    write_in_place(pathf(p, "%s/u1/meta.json", root), m, strlen(m));
    check_same(c, root, "unwatched: meta in place again, same size");
    meta_text(m, sizeof m, "u2", 7.0);
    write_by_rename(pathf(p, "%s/u2/meta.json", root), m, strlen(m));
    check_same(c, root, "unwatched: meta by rename");
    unlink(pathf(p, "%s/u2/meta.json", root));
    check_same(c, root, "unwatched: meta removed");
    write_by_rename(pathf(p, "%s/u2/meta.json", root), m, strlen(m));
    append_from_child(pathf(p, "%s/u1/events.ndjson", root), "{}\n");
    append_from_child(pathf(p, "%s/w1/events.ndjson", root), "{}\n");
    CHECK(strcmp(drain(c, dr, sizeof dr), "u1,w1") == 0, "events of watched and unwatched sessions: %s", dr);
    append_from_child(pathf(p, "%s/u1/events.ndjson", root), "{}\n");
    CHECK(strcmp(drain(c, dr, sizeof dr), "u1") == 0, "unwatched append: %s", dr);
    CHECK(strcmp(drain(c, dr, sizeof dr), "") == 0, "drained: %s", dr);
    rename(pathf(p, "%s/u1", root), pathf(q, "%s/u1-moved", root));
    check_same(c, root, "unwatched: renamed");
    rm_rf(pathf(p, "%s/u2", root));
    check_same(c, root, "unwatched: removed");
    /* Watches come back: the unwatched ones get one at the next call. */
    at_catalog_test_watch_limit(c, -1);
    check_same(c, root, "limit lifted");
    at_catalog_stats_get(c, &st);
    CHECK(st.unwatched == 0 && st.watched == st.dirs, "all watched again: %llu",
          (unsigned long long)st.unwatched);
    meta_text(m, sizeof m, "u1-moved", 8.0);
    write_in_place(pathf(p, "%s/u1-moved/meta.json", root), m, strlen(m));
    check_same(c, root, "followed by inotify again");
    at_catalog_free(c);
    rm_rf(root);
    free(root);
}

/* ---- concurrency: readers see some consistent state while a writer churns ---------- */

#define STABLE 8
#define CHURN  40

typedef struct {
    at_catalog *c;
    const char *root;
    atomic_bool stop;
    atomic_long reads, bad;
} conc;

static void churn_meta(char *out, size_t cap, int i)
{
    snprintf(out, cap, "{\"session_id\": \"churn-%03d\", \"started_at\": %d.0, \"attribution\": {}}", i,
             1000 + i);
}

static void stable_meta(char *out, size_t cap, int i)
{
    snprintf(out, cap, "{\"session_id\": \"stable-%d\", \"started_at\": %d.0, \"attribution\": {}}", i,
             i + 1);
}

/* Is body a listing of stable sessions and churn sessions, each item
 * exact, in order, all stable ones present? */
static bool body_ok(const char *s, size_t n)
{
    char want[256];
    size_t pos = 1, stable_seen = 0;
    double last = 1e300;
    if (n < 2 || s[0] != '[' || s[n - 1] != ']')
        return false;
    while (pos < n - 1) {
        const char *item = s + pos;
        int i;
        double started;
        if (n - pos > 30 && memcmp(item, "{\"session_id\": \"churn-", 22) == 0) {
            i = (item[22] - '0') * 100 + (item[23] - '0') * 10 + (item[24] - '0');
            churn_meta(want, sizeof want, i);
            started = 1000 + i;
        } else if (n - pos > 30 && memcmp(item, "{\"session_id\": \"stable-", 23) == 0) {
            i = item[23] - '0';
            stable_meta(want, sizeof want, i);
            started = i + 1;
            stable_seen++;
        } else {
            return false;
        }
        size_t l = strlen(want);
        if (n - pos < l || memcmp(item, want, l) != 0 || started >= last)
            return false;
        last = started;
        pos += l;
        if (pos < n - 1) {
            if (n - pos < 2 || memcmp(s + pos, ", ", 2) != 0)
                return false;
            pos += 2;
        }
    }
    return stable_seen == STABLE;
}

static void *reader(void *arg)
{
    conc *x = arg;
    at_buf b;
    at_buf_init(&b, 0);
    unsigned k = 0;
    while (!atomic_load(&x->stop)) {
        at_buf_reset(&b);
        if (at_catalog_list_json(x->c, &b) != AT_OK || !body_ok(b.data, b.len)) {
            if (atomic_fetch_add(&x->bad, 1) == 0)
                fprintf(stderr, "first inconsistent listing: %.*s\n", (int)b.len, b.data ? b.data : "");
        }
        uint64_t n = at_catalog_count(x->c);
        if (n < STABLE || n > STABLE + CHURN)
            atomic_fetch_add(&x->bad, 1);
        char id[32], *out = NULL;
        snprintf(id, sizeof id, "stable-%u", k % STABLE);
        if (at_catalog_resolve(x->c, id, &out) != AT_OK || strcmp(out, id) != 0)
            atomic_fetch_add(&x->bad, 1);
        free(out);
        snprintf(id, sizeof id, "churn-%03u", k % CHURN);
        at_result r = at_catalog_resolve(x->c, id, &out);
        if (!(r == AT_OK && strcmp(out, id) == 0) && r != AT_ERR_NOT_FOUND)
            atomic_fetch_add(&x->bad, 1);
        free(out);
        k++;
        atomic_fetch_add(&x->reads, 1);
    }
    at_buf_fini(&b);
    return NULL;
}

static void test_concurrent(void)
{
    char *root = new_root(), p[PATH_MAX], q[PATH_MAX], m[256];
    mkdir(pathf(p, "%s/.agent-traced", root), 0755);
    for (int i = 0; i < STABLE; i++) {
        char name[32];
        snprintf(name, sizeof name, "stable-%d", i);
        stable_meta(m, sizeof m, i);
        make_session(root, name, m);
    }
    static conc x;
    x.c = at_catalog_open(root, NULL);
    x.root = root;
    atomic_store(&x.stop, false);
    CHECK(x.c != NULL, "open");
    if (!x.c)
        return;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader, &x);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long ops = 0;
    for (int round = 0;; round++) {
        int i = round % CHURN;
        char name[32];
        snprintf(name, sizeof name, "churn-%03d", i);
        churn_meta(m, sizeof m, i);
        if (round % 3 == 0) { /* built aside, renamed in whole */
            mkdir(pathf(p, "%s/.agent-traced/w", root), 0755);
            write_in_place(pathf(p, "%s/.agent-traced/w/meta.json", root), m, strlen(m));
            if (rename(pathf(p, "%s/.agent-traced/w", root), pathf(q, "%s/%s", root, name)) < 0)
                rm_rf(pathf(p, "%s/.agent-traced/w", root));
        } else if (round % 3 == 1) { /* mkdir, meta by rename */
            mkdir(pathf(p, "%s/%s", root, name), 0755);
            write_by_rename(pathf(p, "%s/%s/meta.json", root, name), m, strlen(m));
        } else { /* our own write, told to the catalog */
            mkdir(pathf(p, "%s/%s", root, name), 0755);
            write_by_rename(pathf(p, "%s/%s/meta.json", root, name), m, strlen(m));
            at_catalog_touch(x.c, name);
        }
        snprintf(name, sizeof name, "churn-%03d", (i + CHURN / 2) % CHURN);
        rm_rf(pathf(p, "%s/%s", root, name));
        ops++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > 1500)
            break;
    }
    atomic_store(&x.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&x.bad) == 0, "concurrent readers saw %ld inconsistent answers in %ld reads",
          atomic_load(&x.bad), atomic_load(&x.reads));
    CHECK(atomic_load(&x.reads) > 100 && ops > 20, "enough work: %ld reads, %ld writer rounds",
          atomic_load(&x.reads), ops);
    check_same(x.c, root, "after the churn");
    at_catalog_free(x.c);
    rm_rf(root);
    free(root);
}

/* ---- --bench DIR: the catalog's own cost, for bench/catalog_bench.sh ------------------ */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int bench(const char *dir)
{
    at_error err = {0};
    double t0 = now_s();
    at_catalog *c = at_catalog_open(dir, &err);
    double t1 = now_s();
    if (!c) {
        fprintf(stderr, "catalog: %s\n", err.message);
        return 1;
    }
    at_buf b;
    at_buf_init(&b, 0);
    uint64_t n = at_catalog_count(c);
    if (at_catalog_list_json(c, &b) != AT_OK)
        return 1;
    printf("catalog: %llu sessions, /sessions body %zu bytes, open (scan) %.2f ms\n", (unsigned long long)n,
           b.len, (t1 - t0) * 1e3);
    int iters = 200000;
    t0 = now_s();
    for (int i = 0; i < iters; i++)
        n += at_catalog_count(c);
    t1 = now_s();
    printf("catalog: count      %8.0f ns/call\n", (t1 - t0) / iters * 1e9);
    iters = 20000;
    t0 = now_s();
    for (int i = 0; i < iters; i++) {
        at_buf_reset(&b);
        if (at_catalog_list_json(c, &b) != AT_OK)
            return 1;
    }
    t1 = now_s();
    printf("catalog: list_json  %8.0f ns/call (a copy of the cached body)\n", (t1 - t0) / iters * 1e9);
    t0 = now_s();
    for (int i = 0; i < iters; i++) {
        char *out = NULL;
        if (at_catalog_resolve(c, "bench-00", &out) == AT_OK)
            free(out);
    }
    t1 = now_s();
    printf("catalog: resolve    %8.0f ns/call (a prefix)\n", (t1 - t0) / iters * 1e9);
    iters = 200;
    t0 = now_s();
    for (int i = 0; i < iters; i++)
        at_catalog_rescan(c);
    t1 = now_s();
    at_buf_reset(&b);
    if (at_catalog_list_json(c, &b) != AT_OK)
        return 1;
    printf("catalog: full rescan %7.0f us (the IN_Q_OVERFLOW path: readdir, stats, every meta.json read)\n",
           (t1 - t0) / iters * 1e6);
    at_catalog_free(c);
    /* AT_CATALOG_RESCAN: a listing and a stat per entry per call. */
    if (!(c = at_catalog_open_mode(dir, AT_CATALOG_RESCAN, &err)))
        return 1;
    iters = 500;
    t0 = now_s();
    for (int i = 0; i < iters; i++)
        n += at_catalog_count(c);
    t1 = now_s();
    printf("catalog: count      %8.0f ns/call in AT_CATALOG_RESCAN mode (no inotify: NFS and the like)\n",
           (t1 - t0) / iters * 1e9);
    at_buf_fini(&b);
    at_catalog_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--bench") == 0)
        return bench(argv[2]);
    test_order();
    test_resolve();
    test_fixtures_and_weird_entries();
    test_changes();
    test_no_watches();
    test_root_held_open();
    test_rescan_mode();
    test_many_and_overflow();
    test_concurrent();
    return t_done("test_catalog");
}
