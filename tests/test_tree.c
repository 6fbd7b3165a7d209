/* test_tree.c - GET /sessions/{id}/tree against the reference outputs that
 * tests/vectors/gen_tree.py computes in Python (json.dumps, round, f-strings)
 * over tests/fixtures/expected and the edge-case storage
 * tests/vectors/tree/edge. Then the cost cache against a writable copy of
 * the fixtures that is appended to, replaced, rewritten, truncated and
 * deleted under it, and rendered from several threads: a cached render must
 * equal what an empty cache gives. */
#include "testlib.h"
#include "handler_stubs.h"
#include "tree.h"
#include "tree_cost.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *vec(const char *file, size_t *n)
{
    char rel[512];
    snprintf(rel, sizeof rel, "tests/vectors/tree/%s", file);
    return t_read_file(t_src(rel), n);
}

static void check_case(const char *storage, const char *sid, const char *jf, const char *tf)
{
    char root[4096];
    snprintf(root, sizeof root, "%s",
             t_src(strcmp(storage, "edge") == 0 ? "tests/vectors/tree/edge" : "tests/fixtures/expected"));
    size_t wn[2];
    char *want[2] = {vec(jf, &wn[0]), vec(tf, &wn[1])};
    for (int text = 0; text < 2; text++) {
        CHECK(want[text] != NULL, "missing vector for %s", sid);
        if (!want[text])
            continue;
        at_buf out;
        at_buf_init(&out, 0);
        at_error err;
        at_result r = tree_render(root, sid, text, &out, &err);
        CHECK(r == AT_OK, "%s: %s", sid, r == AT_OK ? "" : err.message);
        if (r == AT_OK)
            CHECK_BYTES(out.data, out.len, want[text], wn[text], text ? tf : jf);
        at_buf_fini(&out);

        /* through the handler, by a 12-character prefix when unambiguous */
        server_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.root = root;
        http_response resp;
        http_response_init(&resp);
        tree_handle(&ctx, sid, text, &resp);
        CHECK(resp.status == 200, "%s: status %d", sid, resp.status);
        CHECK_BYTES(resp.body.data, resp.body.len, want[text], wn[text], "handler");
        CHECK(strcmp(resp.content_type, text ? "text/plain; charset=utf-8" : "application/json") == 0,
              "content type %s", resp.content_type);
        http_response_fini(&resp);
        free(want[text]);
    }
}

static void check_errors(void)
{
    server_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.root = t_src("tests/fixtures/expected");
    http_response resp;
    http_response_init(&resp);
    tree_handle(&ctx, "no-such-session", false, &resp);
    CHECK(resp.status == 404, "unknown session: %d", resp.status);
    const char *want = "{\"error\": \"session not found: no-such-session\"}";
    CHECK_BYTES(resp.body.data, resp.body.len, want, strlen(want), "404 body");
    http_response_fini(&resp);

    http_response_init(&resp);
    tree_handle(&ctx, "../etc", false, &resp);
    CHECK(resp.status == 400, "bad id: %d", resp.status);
    http_response_fini(&resp);

    at_buf out;
    at_buf_init(&out, 0);
    at_error err;
    CHECK(tree_render(ctx.root, "nope", false, &out, &err) == AT_ERR_NOT_FOUND, "render unknown");
    CHECK(out.len == 0, "nothing written");
    at_buf_fini(&out);
}

/* ---- the cost cache: the storage directory stays the truth ----------------------- */

#define ROOT_SID "258c7280-ae70-4798-800f-63464d01a85d"
#define KID_DIR  "agent-a881341.258c7280-ae70-4798-800f-63464d01a85d"

static char store[64];

typedef struct {
    char *p;
    size_t n;
} rendered;

static bool copy_file(const char *from, const char *to)
{
    size_t n;
    char *p = t_read_file(from, &n);
    if (!p)
        return false;
    FILE *f = fopen(to, "wb");
    bool ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = false;
    free(p);
    return ok;
}

/* A writable copy of tests/fixtures/expected in store. */
static bool copy_store(void)
{
    snprintf(store, sizeof store, "/tmp/test_tree.XXXXXX");
    if (!mkdtemp(store))
        return false;
    char src[4096];
    snprintf(src, sizeof src, "%s", t_src("tests/fixtures/expected"));
    DIR *d = opendir(src);
    if (!d)
        return false;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char a[4400], b[4400];
        snprintf(b, sizeof b, "%s/%s", store, e->d_name);
        ok = mkdir(b, 0755) == 0;
        static const char *const files[] = {"meta.json", "events.ndjson"};
        for (int k = 0; ok && k < 2; k++) {
            snprintf(a, sizeof a, "%s/%s/%s", src, e->d_name, files[k]);
            snprintf(b, sizeof b, "%s/%s/%s", store, e->d_name, files[k]);
            if (access(a, F_OK) == 0)
                ok = copy_file(a, b);
        }
    }
    closedir(d);
    return ok;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static const char *events_of(const char *dir)
{
    static __thread char p[256];
    snprintf(p, sizeof p, "%s/%s/events.ndjson", store, dir);
    return p;
}

static rendered render(bool text)
{
    at_buf out;
    at_buf_init(&out, 0);
    at_error err;
    at_result r = tree_render(store, ROOT_SID, text, &out, &err);
    CHECK(r == AT_OK, "render: %s", r == AT_OK ? "" : err.message);
    rendered x = {out.data, out.len};
    if (!x.p) {
        x.p = calloc(1, 1); /* an empty render compares unequal to any real one */
        x.n = 0;
    }
    return x;
}

/* What an empty cache gives: the reference the cached answers must equal. */
static rendered fresh(bool text)
{
    tree_cost_cache_clear();
    return render(text);
}

static bool same(rendered a, rendered b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static double total_cost(rendered x)
{
    const char *k = "\"total_cost_usd\": ";
    const char *p = strstr(x.p, k);
    return p ? strtod(p + strlen(k), NULL) : -1.0;
}

/* Lets the racy window (tree_cost.c: 20 ms, 2 s without sub-second stamps) pass,
 * so that the next count is trusted. */
static void settle(void)
{
    struct stat st;
    bool fine = stat(store, &st) == 0 && (st.st_mtim.tv_nsec || st.st_ctim.tv_nsec);
    struct timespec ts = {fine ? 0 : 2, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void write_at(const char *path, int flags, const char *bytes, size_t n, off_t off)
{
    int fd = open(path, O_WRONLY | flags);
    CHECK(fd >= 0, "open %s", path);
    if (fd < 0)
        return;
    ssize_t k = (flags & O_APPEND) ? write(fd, bytes, n) : pwrite(fd, bytes, n, off);
    CHECK(k == (ssize_t)n, "write %s", path);
    close(fd);
}

static void append(const char *dir, const char *s)
{
    write_at(events_of(dir), O_APPEND, s, strlen(s), 0);
}

/* The cached render equals a fresh one (both formats), and the render is
 * left in *now (json). */
static void check_fresh(const char *what, rendered *now)
{
    rendered c[2], f[2];
    for (int text = 0; text < 2; text++)
        c[text] = render(text);
    for (int text = 0; text < 2; text++)
        f[text] = fresh(text);
    for (int text = 0; text < 2; text++) {
        CHECK_BYTES(c[text].p, c[text].n, f[text].p, f[text].n, what);
        free(f[text].p);
    }
    free(c[1].p);
    *now = c[0];
}

static void stats_delta(const tree_cost_stats *a, tree_cost_stats *d)
{
    tree_cost_stats b;
    tree_cost_cache_stats(&b);
    d->hits = b.hits - a->hits;
    d->resumes = b.resumes - a->resumes;
    d->counts = b.counts - a->counts;
}

static void check_cache_hits(void)
{
    size_t wn[2];
    char *want[2] = {vec("expected.0.json", &wn[0]), vec("expected.0.txt", &wn[1])};
    settle();
    tree_cost_cache_clear();
    for (int round = 0; round < 3; round++)
        for (int text = 0; text < 2; text++) {
            rendered x = render(text);
            if (want[text])
                CHECK_BYTES(x.p, x.n, want[text], wn[text], "cached render");
            free(x.p);
        }
    tree_cost_stats s;
    tree_cost_cache_stats(&s);
    /* three sessions: counted once each, then answered from the cache */
    CHECK(s.counts == 3 && s.resumes == 0 && s.hits == 15, "stats %llu %llu %llu",
          (unsigned long long)s.counts, (unsigned long long)s.resumes, (unsigned long long)s.hits);
    free(want[0]);
    free(want[1]);
}

static void set_mtime(const char *path, time_t delta)
{
    struct timespec now, times[2];
    clock_gettime(CLOCK_REALTIME, &now);
    times[0].tv_nsec = UTIME_OMIT;
    times[1] = now;
    times[1].tv_sec += delta;
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat %s", path);
}

static void check_racy(void)
{
    /* stamps too recent to tell a later change (here: in the future, as a
     * skewed clock would leave them): counted every time */
    rendered a = fresh(false);
    set_mtime(events_of(KID_DIR), 5);
    tree_cost_stats s0, d;
    tree_cost_cache_stats(&s0);
    rendered b = render(false), c = render(false);
    stats_delta(&s0, &d);
    CHECK(d.hits == 4 && d.counts == 2 && d.resumes == 0, "racy: %llu hits %llu counts",
          (unsigned long long)d.hits, (unsigned long long)d.counts);
    CHECK(same(a, b) && same(b, c), "stamps alone change nothing");
    /* in the past again: one count, then hits */
    set_mtime(events_of(KID_DIR), -5);
    settle();
    tree_cost_cache_stats(&s0);
    free(render(false).p);
    free(render(false).p);
    stats_delta(&s0, &d);
    CHECK(d.hits == 5 && d.counts == 1 && d.resumes == 0, "settled: %llu hits %llu counts",
          (unsigned long long)d.hits, (unsigned long long)d.counts);
    free(a.p);
    free(b.p);
    free(c.p);
}

static void check_appends(void)
{
    rendered before, now;
    check_fresh("before appends", &before);
    settle();
    free(render(false).p); /* a trusted entry */

    /* a tool_call whose data dumps to 409 bytes: 102 input tokens */
    char line[600];
    char as[401];
    memset(as, 'a', 400);
    as[400] = 0;
    snprintf(line, sizeof line, "{\"event_type\":\"tool_call\",\"data\":{\"x\":\"%s\"}}\n", as);
    tree_cost_stats s0, d;
    tree_cost_cache_stats(&s0);
    append(KID_DIR, line);
    rendered x = render(false);
    stats_delta(&s0, &d);
    CHECK(d.resumes == 1 && d.counts == 0, "append resumed: %llu resumes %llu counts",
          (unsigned long long)d.resumes, (unsigned long long)d.counts);
    double delta = total_cost(x) - total_cost(before);
    CHECK(fabs(delta - 102 * 3.0 / 1e6) < 1.5e-6, "cost grew by %.9f", delta);
    free(x.p);
    check_fresh("after an append", &now);
    CHECK(!same(now, before), "the append shows");
    free(now.p);

    /* a line arriving in pieces, as a writer without O_APPEND atomicity
     * could leave it: the partial tail is counted as a line, then completed */
    append(KID_DIR, "{\"event_type\":\"tool_result\",\"data\":{\"y\":\"");
    check_fresh("a partial line", &now);
    free(now.p);
    append(KID_DIR, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}}");
    check_fresh("a complete line without newline", &now);
    free(now.p);
    append(KID_DIR, "\n");
    check_fresh("its newline", &now);
    free(now.p);
    append(KID_DIR, "{\"event_type\":\"llm_request\",\"data\":{}}\n{\"event_type\":\"llm_re");
    check_fresh("a line and a half", &now);
    free(now.p);
    append(KID_DIR, "sponse\",\"data\":[1, 2, 3]}\n");
    check_fresh("the other half", &now);
    free(now.p);

    /* appends to the root's file too, settled between, so they resume */
    for (int k = 0; k < 3; k++) {
        settle();
        free(render(false).p);
        tree_cost_cache_stats(&s0);
        append(ROOT_SID, "{\"event_type\":\"user_prompt\",\"data\":{\"prompt\":\"more\"}}\n");
        x = render(false);
        stats_delta(&s0, &d);
        CHECK(d.resumes == 1 && d.counts == 0 && d.hits == 2, "root append %d", k);
        free(x.p);
        check_fresh("root append", &now);
        free(now.p);
    }
    free(before.p);
}

/* A large file (4 MiB and more, tree_cost.c's COST_SETTLE_MIN) read just after
 * an append waits for its stamps to settle, so the next request is a hit. */
static void check_settle(void)
{
    struct stat st0;
    CHECK(stat(events_of(KID_DIR), &st0) == 0, "stat");
    const char *l = "{\"event_type\":\"tool_result\",\"data\":{\"t\":\"0123456789012345678901234567890"
                    "123456789012345678901234567890123456789012345678901234567890123456789\"}}\n";
    size_t ln = strlen(l), n = (4608u << 10) / ln + 1;
    char *big = malloc(n * ln + 1);
    CHECK(big != NULL, "malloc");
    if (!big)
        return;
    for (size_t k = 0; k < n; k++)
        memcpy(big + k * ln, l, ln);
    write_at(events_of(KID_DIR), O_APPEND, big, n * ln, 0);
    free(big);
    settle();
    rendered before, x, y;
    check_fresh("a large kid", &before);
    settle();
    free(render(false).p);

    tree_cost_stats s0, d;
    tree_cost_cache_stats(&s0);
    append(KID_DIR, l);
    x = render(false);
    y = render(false);
    stats_delta(&s0, &d);
    CHECK(d.resumes == 1 && d.counts == 0 && d.hits == 5,
          "settled append: %llu resumes %llu counts %llu hits", (unsigned long long)d.resumes,
          (unsigned long long)d.counts, (unsigned long long)d.hits);
    CHECK(same(x, y) && !same(x, before), "the append shows, once");
    free(x.p);
    free(y.p);
    free(before.p);
    check_fresh("a settled append", &x);
    free(x.p);
    /* back to its size, to keep the tests below quick */
    CHECK(truncate(events_of(KID_DIR), st0.st_size) == 0, "truncate");
    check_fresh("truncated back", &x);
    free(x.p);
}

/* A copy of the kid's events with one event's type renamed to a type of the
 * same length that costs nothing: same size, different sums. */
static char *kid_renamed(size_t *n)
{
    char *p = t_read_file(events_of(KID_DIR), n);
    CHECK(p != NULL, "read kid");
    char *at = p ? strstr(p, "\"event_type\":\"tool_call\"") : NULL;
    CHECK(at != NULL, "a tool_call in the kid");
    if (at)
        memcpy(at + 13, "\"tool_cell\"", 11);
    return p;
}

static void check_replacements(void)
{
    rendered before, now;
    settle();
    check_fresh("before replacements", &before);
    settle();
    free(render(false).p);

    /* a new file of the same size linked in place (our importer's way) */
    size_t n;
    char *p = kid_renamed(&n);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", events_of(KID_DIR));
    FILE *f = fopen(tmp, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "write %s", tmp);
    CHECK(rename(tmp, events_of(KID_DIR)) == 0, "rename");
    check_fresh("a new inode of the same size", &now);
    CHECK(!same(now, before), "the replacement shows");
    free(now.p);
    free(p);

    /* the same inode rewritten in place, same size, mtime changed */
    free(before.p);
    settle();
    check_fresh("before an in-place rewrite", &before);
    settle();
    free(render(false).p);
    struct stat st0;
    CHECK(stat(events_of(KID_DIR), &st0) == 0, "stat");
    p = t_read_file(events_of(KID_DIR), &n);
    char *at = p ? strstr(p, "\"event_type\":\"tool_cell\"") : NULL;
    CHECK(at != NULL, "renamed event");
    if (at)
        write_at(events_of(KID_DIR), 0, "\"tool_call\"", 11, at + 13 - p);
    struct timespec times[2] = {st0.st_atim, st0.st_mtim};
    times[1].tv_sec -= 10; /* a future one would keep the file racy */
    CHECK(utimensat(AT_FDCWD, events_of(KID_DIR), times, 0) == 0, "utimensat");
    struct stat st1;
    CHECK(stat(events_of(KID_DIR), &st1) == 0 && st1.st_ino == st0.st_ino && st1.st_size == st0.st_size,
          "same inode, same size");
    settle();
    check_fresh("an in-place rewrite", &now);
    CHECK(!same(now, before), "the rewrite shows");
    free(now.p);

    /* again, with the old mtime put back: only ctime tells */
    free(before.p);
    before = render(false);
    settle();
    free(render(false).p);
    CHECK(stat(events_of(KID_DIR), &st0) == 0, "stat");
    if (at)
        write_at(events_of(KID_DIR), 0, "\"tool_cell\"", 11, at + 13 - p);
    times[0] = st0.st_atim;
    times[1] = st0.st_mtim;
    CHECK(utimensat(AT_FDCWD, events_of(KID_DIR), times, 0) == 0, "utimensat");
    settle();
    check_fresh("a rewrite with the mtime restored", &now);
    CHECK(!same(now, before), "the rewrite with the old mtime shows");
    free(now.p);
    free(p);

    /* the first line rewritten in place and a line appended: not an append */
    free(before.p);
    before = render(false);
    settle();
    free(render(false).p);
    /* user_prompt (input tokens) becomes tool_result (output tokens) */
    write_at(events_of(ROOT_SID), 0, "{\"event_type\":\"tool_result\",", 28, 0);
    append(ROOT_SID, "{\"event_type\":\"user_prompt\",\"data\":{}}\n");
    tree_cost_stats s0, d;
    tree_cost_cache_stats(&s0);
    now = render(false);
    stats_delta(&s0, &d);
    CHECK(d.resumes == 0 && d.counts == 1, "a changed prefix is counted again: %llu resumes %llu counts",
          (unsigned long long)d.resumes, (unsigned long long)d.counts);
    free(now.p);
    check_fresh("a changed prefix and an append", &now);
    CHECK(!same(now, before), "the changed prefix shows");
    free(now.p);
    free(before.p);
}

static void check_truncation_and_deletion(void)
{
    rendered before, now;
    const char *sizes[] = {"half", "a line and a byte", "empty"};
    for (int k = 0; k < 3; k++) {
        settle();
        check_fresh("before truncating", &before);
        settle();
        free(render(false).p);
        struct stat st;
        CHECK(stat(events_of(ROOT_SID), &st) == 0, "stat");
        off_t to = k == 0 ? st.st_size / 2 : 0;
        if (k == 1) {
            size_t n;
            char *p = t_read_file(events_of(ROOT_SID), &n);
            char *nl = p ? memchr(p, '\n', n) : NULL;
            to = nl ? nl - p + 2 : 0;
            free(p);
        }
        CHECK(truncate(events_of(ROOT_SID), to) == 0, "truncate");
        check_fresh(sizes[k], &now);
        if (k < 2) /* a line and a byte may cost what nothing costs */
            CHECK(!same(now, before), "truncation to %s shows", sizes[k]);
        free(now.p);
        free(before.p);
    }
    /* regrown from empty */
    append(ROOT_SID, "{\"event_type\":\"tool_result\",\"data\":{\"z\":1}}\n");
    check_fresh("regrown", &now);
    free(now.p);

    settle();
    check_fresh("before deleting", &before);
    CHECK(unlink(events_of(KID_DIR)) == 0, "unlink");
    check_fresh("a deleted file", &now);
    CHECK(!same(now, before), "the deletion shows");
    free(now.p);
    /* and a new one in its place */
    int fd = open(events_of(KID_DIR), O_WRONLY | O_CREAT | O_APPEND, 0644);
    CHECK(fd >= 0, "create");
    const char *l = "{\"event_type\":\"llm_response\",\"data\":{\"text\":\"hello\"}}\n";
    CHECK(fd >= 0 && write(fd, l, strlen(l)) == (ssize_t)strlen(l), "write");
    if (fd >= 0)
        close(fd);
    check_fresh("a recreated file", &now);
    CHECK(!same(now, before), "recreated differs");
    free(now.p);
    free(before.p);
}

/* ---- concurrency ------------------------------------------------------------------- */

#define READERS 6
#define ROUNDS  25

typedef struct {
    const rendered *want; /* NULL: appends run, check monotonic cost */
    int bad;
    double last;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    for (int k = 0; k < ROUNDS; k++) {
        int text = a->want ? k & 1 : 0;
        at_buf out;
        at_buf_init(&out, 0);
        at_error err;
        if (tree_render(store, ROOT_SID, text, &out, &err) != AT_OK) {
            a->bad++;
        } else if (a->want) {
            if (out.len != a->want[text].n || memcmp(out.data, a->want[text].p, out.len) != 0)
                a->bad++;
        } else {
            rendered x = {out.data, out.len};
            double c = total_cost(x);
            if (c < a->last) /* appends only add tokens */
                a->bad++;
            a->last = c;
        }
        at_buf_fini(&out);
    }
    return NULL;
}

/* Appends lines as agent-strace does; *(int *)p counts failed writes
 * (CHECK is for the main thread only). */
static void *appender(void *p)
{
    const char *l = "{\"event_type\":\"assistant_response\",\"data\":{\"text\":\"more text here\"}}\n";
    for (int k = 0; k < 200; k++) {
        int fd = open(events_of(k & 1 ? ROOT_SID : KID_DIR), O_WRONLY | O_APPEND);
        if (fd < 0 || write(fd, l, strlen(l)) != (ssize_t)strlen(l))
            ++*(int *)p;
        if (fd >= 0)
            close(fd);
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void check_threads(void)
{
    settle();
    rendered want[2] = {fresh(false), fresh(true)};
    int failed = 0;
    for (int pass = 0; pass < 2; pass++) {
        tree_cost_cache_clear(); /* the first renders race to fill it */
        pthread_t th[READERS + 1];
        reader_arg args[READERS];
        for (int k = 0; k < READERS; k++) {
            args[k] = (reader_arg){pass == 0 ? want : NULL, 0, 0.0};
            CHECK(pthread_create(&th[k], NULL, reader, &args[k]) == 0, "pthread_create");
        }
        if (pass == 1)
            CHECK(pthread_create(&th[READERS], NULL, appender, &failed) == 0, "pthread_create");
        for (int k = 0; k < READERS; k++) {
            pthread_join(th[k], NULL);
            CHECK(args[k].bad == 0, "pass %d reader %d: %d bad renders", pass, k, args[k].bad);
        }
        if (pass == 1) {
            pthread_join(th[READERS], NULL);
            CHECK(failed == 0, "%d appends failed", failed);
        }
    }
    rendered now;
    check_fresh("after concurrent appends", &now);
    CHECK(!same(now, want[0]), "the concurrent appends show");
    free(now.p);
    free(want[0].p);
    free(want[1].p);
}

static void check_cache(void)
{
    CHECK(copy_store(), "copy of the fixtures in %s", store);
    check_cache_hits();
    check_racy();
    check_appends();
    check_settle();
    check_replacements();
    check_truncation_and_deletion();
    check_threads();
    nftw(store, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    size_t n;
    char *cases = vec("cases.tsv", &n);
    CHECK(cases != NULL, "tests/vectors/tree/cases.tsv missing");
    int count = 0;
    for (char *line = cases; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1]; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab) {
                *tab = 0;
                f[k] = tab + 1;
            }
        }
        if (f[3]) {
            check_case(f[0], f[1], f[2], f[3]);
            count++;
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK(count >= 20, "only %d cases", count);
    free(cases);
    check_errors();
    check_cache();
    return t_done("test_tree");
}
