/* test_resume.c - incremental import: an import resumed from the state of an
 * import of the transcript's first N bytes, fed bytes N.., gives exactly the
 * events.ndjson (old first body_bytes bytes + its own output) and the result
 * of one import of the whole transcript, for every fixture at every line
 * boundary, at offsets inside lines and inside UTF-8 sequences, in chains of
 * several resumes, with redaction, with nothing new; states that must not
 * resume (no session id yet, corrupted, truncated) are refused; a large
 * transcript's state holds no events and a resume's memory does not grow
 * with the old part. Also the SHA-256 midstate export and the chain
 * writer's resume on their own. */
#include "agenttrace/chain.h"
#include "agenttrace/importer.h"
#include "agenttrace/json.h"
#include "agenttrace/meta.h"
#include "agenttrace/redact.h"
#include "agenttrace/sha256.h"
#include "testlib.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Redaction for every import (NULL: off). */
static at_redact *g_redact;

/* ---- running imports ---------------------------------------------------- */

/* An anonymous file in memory for an import's output (tens of thousands of
 * imports here: no file system in the way). */
static int scratch_fd(void)
{
    int fd = memfd_create("test_resume", 0);
    return fd >= 0 ? fd : at_open_tmpfile(NULL);
}

typedef struct {
    uint64_t no, off;
    size_t len;
    uint8_t digest[AT_SHA256_LEN];
} line_rec;

typedef struct {
    line_rec *v;
    size_t n, cap;
} line_log;

static at_result log_line(void *ctx, const at_line_written *lw)
{
    line_log *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        line_rec *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return AT_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    line_rec *r = &l->v[l->n++];
    r->no = lw->no;
    r->off = lw->off;
    r->len = lw->len;
    memcpy(r->digest, lw->digest, AT_SHA256_LEN);
    return AT_OK;
}

typedef struct {
    at_result r;
    at_error err;
    at_import_result res;
    char *out; /* what the import wrote to out_fd */
    size_t out_len;
    line_log lines; /* what on_line was told */
} run;

/* Imports data fed in chunks of `chunk` bytes (0: whole), resuming from
 * state when it is non-NULL. */
static void import_run(const char *data, size_t n, size_t chunk, const char *source, const void *state,
                       size_t state_len, bool keep, run *rn)
{
    memset(rn, 0, sizeof *rn);
    int fd = scratch_fd();
    at_import_options o = {.source = source,
                           .out_fd = fd,
                           .tmp_dir = NULL,
                           .redact = g_redact,
                           .on_line = log_line,
                           .on_line_ctx = &rn->lines,
                           .resume = state,
                           .resume_len = state_len,
                           .keep_state = keep};
    at_import *im = at_import_new(&o, &rn->err);
    rn->r = im ? AT_OK : rn->err.code;
    if (!chunk)
        chunk = n ? n : 1;
    for (size_t off = 0; rn->r == AT_OK && off < n; off += chunk)
        rn->r = at_import_feed(im, data + off, n - off < chunk ? n - off : chunk, &rn->err);
    if (im) {
        at_error later; /* the first error is the one worth keeping */
        at_result r = at_import_finish(im, &rn->res, rn->r == AT_OK ? &rn->err : &later);
        if (rn->r == AT_OK)
            rn->r = r;
    }
    at_import_free(im);
    off_t size = lseek(fd, 0, SEEK_END);
    rn->out = malloc((size_t)size + 1);
    rn->out_len = (size_t)pread(fd, rn->out, (size_t)size, 0);
    close(fd);
}

static void run_fini(run *rn)
{
    at_import_result_fini(&rn->res);
    free(rn->out);
    free(rn->lines.v);
    memset(rn, 0, sizeof *rn);
}

/* The events.ndjson a store keeps: the old file's first body_bytes bytes,
 * then what the resumed import wrote; likewise for the on_line records. */
typedef struct {
    char *bytes;
    size_t len;
    line_log lines;
} stored;

static bool store_apply(stored *s, const run *rn)
{
    uint64_t body = rn->res.body_bytes, nl = rn->res.body_lines;
    if (body > s->len || nl > s->lines.n)
        return false;
    char *p = malloc(body + rn->out_len + 1);
    if (body)
        memcpy(p, s->bytes, body);
    if (rn->out_len)
        memcpy(p + body, rn->out, rn->out_len);
    free(s->bytes);
    s->bytes = p;
    s->len = body + rn->out_len;
    s->lines.n = nl;
    for (size_t i = 0; i < rn->lines.n; i++)
        if (log_line(&s->lines, &(at_line_written){.no = rn->lines.v[i].no,
                                                   .off = rn->lines.v[i].off,
                                                   .len = rn->lines.v[i].len,
                                                   .digest = rn->lines.v[i].digest}) != AT_OK)
            return false;
    return true;
}

static void stored_fini(stored *s)
{
    free(s->bytes);
    free(s->lines.v);
    memset(s, 0, sizeof *s);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_meta(const at_meta *a, const at_meta *b)
{
    at_buf x, y;
    at_buf_init(&x, 0);
    at_buf_init(&y, 0);
    bool ok = at_meta_write(a, &x, &AT_JSON_PRETTY) == AT_OK &&
              at_meta_write(b, &y, &AT_JSON_PRETTY) == AT_OK && x.len == y.len &&
              memcmp(x.data, y.data, x.len) == 0;
    at_buf_fini(&x);
    at_buf_fini(&y);
    return ok;
}

/* NULL when got (after a resume) describes the same file as want (one
 * import of everything), else the first thing that differs. */
static const char *result_diff(const at_import_result *got, const at_import_result *want)
{
    if (got->events != want->events)
        return "events";
    if (memcmp(got->events_sha256, want->events_sha256, AT_SHA256_LEN) != 0)
        return "events_sha256";
    if (memcmp(got->head, want->head, AT_SHA256_LEN) != 0)
        return "head";
    if (strcmp(got->tool_calls, want->tool_calls) != 0)
        return "tool_calls";
    if (strcmp(got->llm_requests, want->llm_requests) != 0)
        return "llm_requests";
    if (strcmp(got->total_tokens, want->total_tokens) != 0)
        return "total_tokens";
    if (got->skipped_lines != want->skipped_lines)
        return "skipped_lines";
    if (got->object_lines != want->object_lines)
        return "object_lines";
    if (got->redacted_events != want->redacted_events || got->meta_redacted != want->meta_redacted)
        return "redaction counts";
    if (got->bytes != want->bytes)
        return "bytes";
    if (memcmp(got->transcript_sha256, want->transcript_sha256, AT_SHA256_LEN) != 0)
        return "transcript_sha256";
    if (!same_str(got->session_id, want->session_id) || !same_str(got->agent_id, want->agent_id) ||
        !same_str(got->parent_session_id, want->parent_session_id))
        return "session identity";
    if (!same_meta(&got->meta, &want->meta))
        return "meta";
    if (!got->usage != !want->usage || got->usage_len != want->usage_len ||
        (got->usage && memcmp(got->usage, want->usage, got->usage_len) != 0))
        return "usage";
    if (got->nlinks != want->nlinks)
        return "number of links";
    for (size_t i = 0; i < got->nlinks; i++)
        if (strcmp(got->links[i].agent_id, want->links[i].agent_id) != 0 ||
            got->links[i].event_id_len != want->links[i].event_id_len ||
            memcmp(got->links[i].event_id, want->links[i].event_id, got->links[i].event_id_len) != 0)
            return "a link";
    /* Both kept their state: the state after a resume is the state after
     * one import of everything. */
    if ((got->state != NULL) != (want->state != NULL) ||
        (got->state &&
         (got->state_len != want->state_len || memcmp(got->state, want->state, got->state_len) != 0)))
        return "state blob";
    return NULL;
}

static const char *lines_diff(const line_log *got, const line_log *want)
{
    if (got->n != want->n)
        return "number of on_line calls";
    for (size_t i = 0; i < got->n; i++)
        if (got->v[i].no != want->v[i].no || got->v[i].off != want->v[i].off ||
            got->v[i].len != want->v[i].len ||
            memcmp(got->v[i].digest, want->v[i].digest, AT_SHA256_LEN) != 0)
            return "an on_line record";
    return NULL;
}

/* ---- splitting fixtures ------------------------------------------------- */

static const size_t chunk_sizes[] = {1, 7, 4096, 0};

/* The k-th chunk size, with tiny chunks only for small pieces (speed). */
static size_t pick_chunk(size_t k, size_t piece)
{
    size_t c = chunk_sizes[k % 4];
    return c && c < 4096 && piece > 65536 ? 4096 : c;
}

/* Did a complete line of data[0, n) name the session that ref names? Its
 * complete lines imported alone give that id, and it is not the fallback
 * (the file name without its extension). */
static bool prefix_named_session(const char *data, size_t n, const char *source, const run *ref)
{
    size_t end = n;
    while (end > 0 && data[end - 1] != '\n' && data[end - 1] != '\r')
        end--;
    const char *dot = strrchr(source, '.');
    size_t stem = dot ? (size_t)(dot - source) : strlen(source);
    if (!ref->res.session_id ||
        (strlen(ref->res.session_id) == stem && memcmp(ref->res.session_id, source, stem) == 0))
        return false;
    run p;
    import_run(data, end, 0, source, NULL, 0, false, &p);
    bool named = p.r == AT_OK && strcmp(p.res.session_id, ref->res.session_id) == 0;
    run_fini(&p);
    return named;
}

static void stored_copy(stored *dst, const stored *src)
{
    memset(dst, 0, sizeof *dst);
    dst->bytes = malloc(src->len + 1);
    if (src->len)
        memcpy(dst->bytes, src->bytes, src->len);
    dst->len = src->len;
    for (size_t i = 0; i < src->lines.n; i++)
        if (log_line(&dst->lines, &(at_line_written){.no = src->lines.v[i].no,
                                                     .off = src->lines.v[i].off,
                                                     .len = src->lines.v[i].len,
                                                     .digest = src->lines.v[i].digest}) != AT_OK)
            break;
}

/* The store holds prev (the version made from data[0, split)) and state:
 * resumes with data[split, n) and compares with ref. NULL or what differs. */
static const char *check_resume(const char *data, size_t n, size_t split, size_t k, const char *source,
                                const run *ref, const stored *prev, const char *state, size_t state_len)
{
    static char why[256];
    run b;
    const char *diff = NULL;
    stored st;
    stored_copy(&st, prev);
    import_run(data + split, n - split, pick_chunk(k + 1, n - split), source, state, state_len, true, &b);
    if (b.r == AT_ERR_INVALID && strstr(b.err.message, "cannot resume: no entry named the session yet")) {
        /* Right only if no complete line of the prefix named the session:
         * the store then imports the whole file instead. */
        if (prefix_named_session(data, split, source, ref))
            diff = "refused although the session was named";
    } else if (b.r != AT_OK) {
        snprintf(why, sizeof why, "resume failed: %s", b.err.message);
        diff = why;
    } else if (b.lines.n != b.res.events - b.res.body_lines ||
               (b.lines.n && (b.lines.v[0].no != b.res.body_lines || b.lines.v[0].off != b.res.body_bytes))) {
        diff = "body_bytes/body_lines do not match the resumed lines";
    } else if (!store_apply(&st, &b)) {
        diff = "body_bytes/body_lines past the old file";
    } else if (st.len != ref->out_len || memcmp(st.bytes, ref->out, st.len) != 0) {
        diff = "events.ndjson bytes";
    } else if ((diff = result_diff(&b.res, &ref->res)) == NULL) {
        diff = lines_diff(&st.lines, &ref->lines);
    }
    stored_fini(&st);
    run_fini(&b);
    return diff;
}

/* Imports [0, split) with keep_state, resumes with [split, n), and compares
 * with ref. Returns NULL or what differs. */
static const char *check_split(const char *data, size_t n, size_t split, size_t k, const char *source,
                               const run *ref)
{
    static char why[256];
    run a;
    const char *diff;
    stored st = {0};
    import_run(data, split, pick_chunk(k, split), source, NULL, 0, true, &a);
    /* A prefix cut inside a UTF-8 sequence cannot finish, yet keeps its state. */
    if (!a.res.state || (a.r != AT_OK && a.r != AT_ERR_UTF8)) {
        snprintf(why, sizeof why, "no state from the prefix (%s)", a.err.message);
        diff = why;
    } else if (!store_apply(&st, &a)) {
        diff = "a fresh import with a body";
    } else {
        diff = check_resume(data, n, split, k, source, ref, &st, a.res.state, a.res.state_len);
    }
    stored_fini(&st);
    run_fini(&a);
    return diff;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Every split point tested for a file: all offsets of a small file; for a
 * larger one every line boundary (0 and n included), one offset inside
 * every `inner_every`-th line, and offsets inside multi-byte sequences. */
static size_t split_points(const char *d, size_t n, size_t **out)
{
    size_t cap = 64, k = 0;
    size_t *v = malloc(cap * sizeof *v);
#define ADD(x)                                                                                               \
    do {                                                                                                     \
        if (k == cap)                                                                                        \
            v = realloc(v, (cap *= 2) * sizeof *v);                                                          \
        v[k++] = (x);                                                                                        \
    } while (0)
    if (n <= 16384) {
        for (size_t i = 0; i <= n; i++)
            ADD(i);
        *out = v;
        return k;
    }
    size_t inner_every = n > (1u << 20) ? 16 : 1, line = 0, start = 0, multi = 0;
    ADD(0);
    for (size_t i = 0; i < n; i++) {
        if (is_cont((unsigned char)d[i]) && multi++ % 7 == 0 && multi < 2000)
            ADD(i); /* inside a sequence: i is a continuation byte */
        if (d[i] != '\n')
            continue;
        if (line++ % inner_every == 0 && i > start + 1)
            ADD(start + 1 + (line * 7919) % (i - start - 1));
        ADD(i + 1);
        start = i + 1;
    }
    ADD(n);
#undef ADD
    qsort(v, k, sizeof *v, cmp_size);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (!m || v[i] != v[m - 1])
            v[m++] = v[i];
    *out = v;
    return m;
}

static void check_file_splits(const char *rel, const char *source)
{
    size_t n;
    char *data = t_read_file(t_src(rel), &n);
    CHECK(data != NULL, "read %s", rel);
    if (!data)
        return;
    run ref;
    import_run(data, n, 0, source, NULL, 0, true, &ref);
    CHECK(ref.r == AT_OK, "%s: %s", rel, ref.err.message);
    uint8_t dg[AT_SHA256_LEN];
    at_sha256_oneshot(data, n, dg);
    CHECK(memcmp(dg, ref.res.transcript_sha256, AT_SHA256_LEN) == 0 && ref.res.bytes == n,
          "%s: transcript_sha256 and bytes", rel);
    size_t *pts, np = split_points(data, n, &pts), bad = 0;
    /* Past 1 MB the versions before each split point are made by resuming
     * the previous one (the store's life: a long chain of small uploads)
     * rather than by importing the prefix anew, which would make the test
     * quadratic twice over; smaller files get direct prefix imports. */
    bool chained = n > (1u << 20);
    stored prev = {0};
    char *state = NULL;
    size_t state_len = 0;
    for (size_t i = 0; ref.r == AT_OK && i < np; i++) {
        const char *diff;
        if (!chained) {
            diff = check_split(data, n, pts[i], i, source, &ref);
        } else {
            size_t from = i ? pts[i - 1] : 0;
            run a;
            import_run(data + from, pts[i] - from, pick_chunk(i, pts[i] - from), source, state, state_len,
                       true, &a);
            if (a.r == AT_ERR_INVALID && strstr(a.err.message, "cannot resume")) {
                run_fini(&a);
                import_run(data, pts[i], 0, source, NULL, 0, true, &a);
            }
            free(state);
            state = a.res.state;
            state_len = a.res.state_len;
            a.res.state = NULL;
            if (!state || (a.r != AT_OK && a.r != AT_ERR_UTF8))
                diff = "no state from the prefix";
            else if (!store_apply(&prev, &a))
                diff = "body past the stored version";
            else
                diff = check_resume(data, n, pts[i], i, source, &ref, &prev, state, state_len);
            run_fini(&a);
        }
        CHECK(diff == NULL, "%s (redaction %s) split at %zu: %s", rel, g_redact ? "on" : "off", pts[i], diff);
        if (diff && ++bad == 5)
            break; /* enough said about this file */
    }
    free(state);
    stored_fini(&prev);
    free(pts);
    run_fini(&ref);
    free(data);
}

static const char *const fixtures[] = {
    "claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl",
    "claude/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
    "claude/short.jsonl",
    "claude/subagent.jsonl",
    "claude/tool_heavy.jsonl",
    "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-a881341.jsonl",
    "claude/258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-acompact-fffbd0.jsonl",
    "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-a2898e3.jsonl",
    "claude/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-acompact-e1f845.jsonl",
    "claude-edge/tools.jsonl",
    "claude-edge/late-session.jsonl",
    "claude-edge/unicode.jsonl",
    "claude-edge/secrets.jsonl",
    "claude-edge/empty.jsonl",
    "claude-edge/structure.jsonl",
    "claude-edge/no-session-id.jsonl",
    "claude-edge/numbers.jsonl",
    "claude-usage/usage.jsonl",
};
#define NFIXTURES (sizeof fixtures / sizeof *fixtures)

static void fixture_path(size_t i, char *rel, size_t cap, const char **base)
{
    snprintf(rel, cap, "tests/fixtures/%s", fixtures[i]);
    *base = strrchr(fixtures[i], '/') + 1;
}

static void check_fixture_splits(void)
{
    for (size_t i = 0; i < NFIXTURES; i++) {
        char rel[512];
        const char *base;
        fixture_path(i, rel, sizeof rel, &base);
        check_file_splits(rel, base);
    }
}

/* ---- chains of resumes -------------------------------------------------- */

static uint64_t g_seed = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: fixed seed, same splits on every run */
    g_seed ^= g_seed >> 12;
    g_seed ^= g_seed << 25;
    g_seed ^= g_seed >> 27;
    return g_seed * 0x2545f4914f6cdd1dull;
}

/* Splits data into 3-5 pieces at random offsets (cuts inside lines and
 * inside UTF-8 sequences included) and imports them one resume after the
 * other, the store keeping each version. NULL or what differs. */
static const char *check_chain(const char *data, size_t n, const char *source, const run *ref, size_t trial)
{
    static char why[256];
    size_t pieces = 3 + rnd() % 3, cut[6];
    cut[0] = 0;
    for (size_t i = 1; i < pieces; i++)
        cut[i] = n ? rnd() % (n + 1) : 0;
    cut[pieces] = n;
    qsort(cut + 1, pieces - 1, sizeof *cut, cmp_size);
    stored st = {0};
    char *state = NULL;
    size_t state_len = 0;
    const char *diff = NULL;
    run last = {0};
    for (size_t i = 0; i < pieces && !diff; i++) {
        run rn;
        import_run(data + cut[i], cut[i + 1] - cut[i], pick_chunk(trial + i, cut[i + 1] - cut[i]), source,
                   state, state_len, true, &rn);
        if (rn.r == AT_ERR_INVALID && strstr(rn.err.message, "cannot resume") &&
            !prefix_named_session(data, cut[i], source, ref)) {
            /* what the store does then: import everything so far */
            run_fini(&rn);
            import_run(data, cut[i + 1], 0, source, NULL, 0, true, &rn);
        }
        bool ok = rn.r == AT_OK || (i + 1 < pieces && rn.r == AT_ERR_UTF8 && rn.res.state);
        if (!ok) {
            snprintf(why, sizeof why, "piece %zu of %zu [%zu, %zu): %s", i, pieces, cut[i], cut[i + 1],
                     rn.err.message);
            diff = why;
        } else if (!store_apply(&st, &rn)) {
            diff = "body_bytes past the stored file";
        }
        free(state);
        state_len = rn.res.state_len;
        state = rn.res.state;
        rn.res.state = NULL;
        run_fini(&last);
        last = rn;
    }
    if (!diff && (st.len != ref->out_len || memcmp(st.bytes, ref->out, st.len) != 0))
        diff = "events.ndjson bytes";
    if (!diff) {
        /* the last state moved out of the result: compare it by hand */
        last.res.state = state;
        last.res.state_len = state_len;
        state = NULL;
        diff = result_diff(&last.res, &ref->res);
    }
    if (!diff)
        diff = lines_diff(&st.lines, &ref->lines);
    free(state);
    run_fini(&last);
    stored_fini(&st);
    return diff;
}

static void check_chains(size_t trials_small, size_t trials_big)
{
    for (size_t f = 0; f < NFIXTURES; f++) {
        char rel[512];
        const char *base;
        size_t n;
        fixture_path(f, rel, sizeof rel, &base);
        char *data = t_read_file(t_src(rel), &n);
        CHECK(data != NULL, "read %s", rel);
        if (!data)
            continue;
        run ref;
        import_run(data, n, 0, base, NULL, 0, true, &ref);
        size_t trials = n > (1u << 20) ? trials_big : trials_small;
        for (size_t t = 0; t < trials; t++) {
            const char *diff = check_chain(data, n, base, &ref, t);
            CHECK(diff == NULL, "%s (redaction %s) chain %zu: %s", rel, g_redact ? "on" : "off", t, diff);
        }
        run_fini(&ref);
        free(data);
    }
}

/* ---- odd cases ---------------------------------------------------------- */

/* Replaces every "\n" of s by nl. */
static char *renewline(const char *s, size_t n, const char *nl, size_t *out_len)
{
    size_t k = strlen(nl), m = 0;
    char *o = malloc(n * k + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(o + m, nl, k);
            m += k;
        } else {
            o[m++] = s[i];
        }
    }
    *out_len = m;
    return o;
}

/* \r\n cut between its two bytes, lone \r, blank lines: every offset
 * near a line end. */
static void check_line_endings(void)
{
    size_t n;
    char *data = t_read_file(t_src("tests/fixtures/claude-edge/tools.jsonl"), &n);
    static const char *const endings[] = {"\r\n", "\r", "\r\r\n", "\n\n"};
    for (size_t e = 0; data && e < 4; e++) {
        size_t m, bad = 0;
        char *conv = renewline(data, n, endings[e], &m);
        run ref;
        import_run(conv, m, 0, "tools.jsonl", NULL, 0, true, &ref);
        for (size_t split = 0; split <= m && bad < 5; split++) {
            /* cuts at and around every line end (the rest is covered above) */
            bool near = false;
            for (size_t j = split > 2 ? split - 2 : 0; j < m && j <= split + 1; j++)
                near = near || conv[j] == '\r' || conv[j] == '\n';
            if (!near && split != 0 && split != m)
                continue;
            const char *diff = check_split(conv, m, split, split, "tools.jsonl", &ref);
            CHECK(diff == NULL, "line ending %zu split at %zu: %s", e, split, diff);
            bad += diff != NULL;
        }
        run_fini(&ref);
        free(conv);
    }
    free(data);
}

/* Nothing new: the resumed import gives the previous version again. */
static void check_empty_resume(void)
{
    for (size_t f = 0; f < NFIXTURES; f++) {
        char rel[512];
        const char *base;
        size_t n;
        fixture_path(f, rel, sizeof rel, &base);
        char *data = t_read_file(t_src(rel), &n);
        if (!data)
            continue;
        run a, b;
        import_run(data, n, 0, base, NULL, 0, true, &a);
        if (!a.res.state || !a.res.session_id || a.res.body_bytes) {
            CHECK(a.r == AT_OK && a.res.state && a.res.body_bytes == 0 && a.res.body_lines == 0,
                  "%s: a fresh import keeps its state, body 0", rel);
            run_fini(&a);
            free(data);
            continue;
        }
        import_run("", 0, 0, base, a.res.state, a.res.state_len, true, &b);
        if (strcmp(base, "no-session-id.jsonl") == 0 || strcmp(base, "empty.jsonl") == 0) {
            CHECK(b.r == AT_ERR_INVALID, "%s: no session id, no resume", rel);
        } else {
            stored st = {0};
            const char *diff = NULL;
            if (b.r != AT_OK)
                diff = b.err.message;
            else if (!store_apply(&st, &a) || !store_apply(&st, &b))
                diff = "body past the file";
            else if (st.len != a.out_len || memcmp(st.bytes, a.out, a.out_len) != 0)
                diff = "events.ndjson bytes";
            else if (!(diff = result_diff(&b.res, &a.res)))
                diff = lines_diff(&st.lines, &a.lines);
            CHECK(diff == NULL, "%s: resuming with nothing new: %s", rel, diff);
            stored_fini(&st);
        }
        run_fini(&a);
        run_fini(&b);
        free(data);
    }
}

/* Held events would be written under another id: no resume before the
 * session is named. */
static void check_no_session_refused(void)
{
    const char *t = "{\"type\":\"user\",\"uuid\":\"u1\",\"message\":{\"content\":\"before the id\"}}\n"
                    "{\"type\":\"user\",\"sessionId\":\"s-late\",\"message\":{\"content\":\"named\"}}\n";
    size_t first = strchr(t, '\n') + 1 - t;
    /* cut after the first line, and inside the second (which names the session) */
    size_t cuts[] = {0, first, first + 20, strlen(t) - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        run a, b;
        import_run(t, cuts[i], 0, "late.jsonl", NULL, 0, true, &a);
        CHECK(a.r == AT_OK && a.res.state, "prefix %zu imports and keeps a state", cuts[i]);
        import_run(t + cuts[i], strlen(t) - cuts[i], 0, "late.jsonl", a.res.state, a.res.state_len, true, &b);
        CHECK(b.r == AT_ERR_INVALID && strstr(b.err.message, "cannot resume: no entry named the session yet"),
              "prefix %zu: a state without a session id is refused (%d, %s)", cuts[i], b.r, b.err.message);
        run_fini(&a);
        run_fini(&b);
    }
    /* Once the id is known, the same transcript resumes. */
    run ref;
    import_run(t, strlen(t), 0, "late.jsonl", NULL, 0, true, &ref);
    CHECK(check_split(t, strlen(t), strlen(t), 0, "late.jsonl", &ref) == NULL,
          "resume after the id is known");
    run_fini(&ref);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes a blob's trailing checksum after an edit. */
static void reseal(uint8_t *b, size_t n)
{
    at_sha256_oneshot(b, n - AT_SHA256_LEN, b + n - AT_SHA256_LEN);
}

static at_result try_resume(const void *blob, size_t len, at_error *err)
{
    int fd = scratch_fd();
    at_import_options o = {.source = "tools.jsonl", .out_fd = fd, .resume = blob, .resume_len = len};
    at_import *im = at_import_new(&o, err);
    at_result r = im ? AT_OK : err->code;
    if (im) {
        at_import_result res;
        r = at_import_feed(im, "\n", 1, err);
        if (at_import_finish(im, &res, err) != AT_OK && r == AT_OK)
            r = err->code;
        at_import_result_fini(&res);
    }
    at_import_free(im);
    close(fd);
    return r;
}

/* Corrupted and truncated states are refused, never crash. */
static void check_bad_states(void)
{
    size_t n;
    char *data = t_read_file(t_src("tests/fixtures/claude-edge/tools.jsonl"), &n);
    if (!data)
        return;
    run a;
    /* cut inside a line so that the blob carries an unfinished line */
    size_t cut = n / 2;
    import_run(data, cut, 0, "tools.jsonl", NULL, 0, true, &a);
    CHECK(a.r == AT_OK && a.res.state, "a state to damage");
    if (!a.res.state) {
        run_fini(&a);
        free(data);
        return;
    }
    size_t len = a.res.state_len;
    uint8_t *b = malloc(len);
    at_error err;
    CHECK(try_resume(a.res.state, len, &err) == AT_OK, "the intact state resumes (%s)", err.message);
    size_t refused = 0;
    for (size_t k = 0; k < len; k++) {
        memcpy(b, a.res.state, len);
        b[k] ^= (uint8_t)(1u << (k % 8));
        refused += try_resume(b, len, &err) == AT_ERR_INVALID;
    }
    CHECK(refused == len, "every flipped bit refused (%zu of %zu)", refused, len);
    refused = 0;
    for (size_t k = 0; k < len; k++)
        refused += try_resume(a.res.state, k, &err) == AT_ERR_INVALID;
    CHECK(refused == len, "every truncation refused (%zu of %zu)", refused, len);
    /* Well sealed but wrong inside: the parser itself must refuse it. */
    memcpy(b, a.res.state, len);
    b[7] = 99;
    reseal(b, len);
    CHECK(try_resume(b, len, &err) == AT_ERR_INVALID && strstr(err.message, "version"), "unknown version: %s",
          err.message);
    memcpy(b, a.res.state, len);
    put_le64(b + 8, 12345); /* N no longer matches the counts */
    reseal(b, len);
    CHECK(try_resume(b, len, &err) == AT_ERR_INVALID, "inconsistent N: %s", err.message);
    /* Every byte altered and resealed: refused or resumed, never a crash
     * (ASan and UBSan watch this); string lengths blown up are refused. */
    size_t outcomes = 0;
    for (size_t k = 8; k < len - AT_SHA256_LEN; k++) {
        memcpy(b, a.res.state, len);
        b[k] ^= 0xff;
        reseal(b, len);
        at_result r = try_resume(b, len, &err);
        outcomes += r == AT_OK || r == AT_ERR_INVALID || r == AT_ERR_UTF8 || r == AT_ERR_TOO_BIG;
    }
    CHECK(outcomes == len - AT_SHA256_LEN - 8, "resealed damage gives a clean answer (%zu)", outcomes);
    /* Not a state at all. */
    CHECK(try_resume("ATIMPST", 7, &err) == AT_ERR_INVALID, "7 bytes");
    CHECK(try_resume(data, n, &err) == AT_ERR_INVALID && strstr(err.message, "invalid import state"),
          "a transcript is not a state: %s", err.message);
    free(b);
    run_fini(&a);
    free(data);
}

/* ---- a large transcript ------------------------------------------------- */

/* n entries: prompts, tool calls (one spawning a subagent before the cut
 * whose link is only seen after it), results, progress. */
static char *big_transcript(size_t entries, size_t *len)
{
    at_buf b;
    at_buf_init(&b, 0);
    for (size_t i = 0; i < entries; i++) {
        int r = AT_OK;
        unsigned sec = (unsigned)(i % 60), min = (unsigned)(i / 60 % 60), hour = (unsigned)(i / 3600 % 24);
        const char *common = "\"sessionId\":\"big-0000\",\"gitBranch\":\"main\",\"version\":\"2.1.0\"";
        if (i == 1) {
            r = at_buf_printf(
                &b,
                "{\"type\":\"assistant\",%s,\"uuid\":\"agent-call\",\"timestamp\":\"2026-03-01T"
                "%02u:%02u:%02u.250Z\",\"message\":{\"model\":\"m\",\"content\":[{\"type\":"
                "\"tool_use\",\"id\":\"toolu_spawn\",\"name\":\"Agent\",\"input\":{\"subagent_type\":"
                "\"x\"}}]}}\n",
                common, hour, min, sec);
        } else if (i == entries * 3 / 4) {
            r = at_buf_printf(
                &b,
                "{\"type\":\"progress\",%s,\"parentToolUseID\":\"toolu_spawn\",\"data\":{\"agentId\":"
                "\"a1234\"},\"timestamp\":\"2026-03-01T%02u:%02u:%02uZ\"}\n",
                common, hour, min, sec);
        } else if (i % 4 == 0) {
            r = at_buf_printf(
                &b,
                "{\"type\":\"user\",%s,\"uuid\":\"u-%06zu\",\"timestamp\":\"2026-03-01T%02u:%02u:%02uZ\","
                "\"message\":{\"role\":\"user\",\"content\":\"prompt number %zu: please look at "
                "the file and tell me what it does\"}}\n",
                common, i, hour, min, sec, i);
        } else if (i % 4 == 1) {
            r = at_buf_printf(
                &b,
                "{\"type\":\"assistant\",%s,\"uuid\":\"a-%06zu\",\"timestamp\":\"2026-03-01T%02u:%02u:"
                "%02uZ\",\"message\":{\"model\":\"claude\",\"content\":[{\"type\":\"text\",\"text\":"
                "\"Reading it now.\"},{\"type\":\"tool_use\",\"id\":\"toolu_%06zu\",\"name\":\"Read\","
                "\"input\":{\"file_path\":\"/src/file%zu.c\"}}],\"usage\":{\"input_tokens\":10,"
                "\"output_tokens\":5}}}\n",
                common, i, hour, min, sec, i, i);
        } else if (i % 4 == 2) {
            r = at_buf_printf(
                &b,
                "{\"type\":\"user\",%s,\"uuid\":\"r-%06zu\",\"timestamp\":\"2026-03-01T%02u:%02u:%02uZ\","
                "\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                "\"toolu_%06zu\",\"content\":\"int main(void) { return %zu; }\"}]}}\n",
                common, i, hour, min, sec, i - 1, i);
        } else {
            r = at_buf_printf(
                &b,
                "{\"type\":\"progress\",%s,\"timestamp\":\"2026-03-01T%02u:%02u:%02uZ\",\"data\":{"
                "\"type\":\"hook_progress\"}}\n",
                common, hour, min, sec);
        }
        if (r != AT_OK)
            break;
    }
    return at_buf_steal(&b, len);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* Peak RSS (KiB) of a child that resumes from state with data[from, n). */
static long resume_peak_kib(const char *data, size_t n, size_t from, const void *state, size_t state_len)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        /* not import_run: it reads the output back into memory */
        int fd = scratch_fd();
        at_error err = {0};
        at_import_options o = {.source = "big.jsonl",
                               .out_fd = fd,
                               .resume = state,
                               .resume_len = state_len,
                               .keep_state = true};
        at_import *im = at_import_new(&o, &err);
        at_import_result res;
        bool ok = im != NULL;
        for (size_t off = from; ok && off < n; off += 1 << 20)
            ok = at_import_feed(im, data + off, n - off < (1 << 20) ? n - off : 1 << 20, &err) == AT_OK;
        ok = ok && at_import_finish(im, &res, &err) == AT_OK;
        if (ok)
            at_import_result_fini(&res);
        at_import_free(im);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long kib = ok ? ru.ru_maxrss : -1;
        if (write(pipefd[1], &kib, sizeof kib) != sizeof kib)
            _exit(1);
        _exit(0);
    }
    close(pipefd[1]);
    long kib = -1;
    if (read(pipefd[0], &kib, sizeof kib) != sizeof kib)
        kib = -1;
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return kib;
}

#endif

static void check_big(void)
{
    size_t n, entries = 30000;
    char *data = big_transcript(entries, &n);
    /* the middle line boundary, and a cut inside the line after it */
    size_t mid = n / 2;
    while (mid < n && data[mid - 1] != '\n')
        mid++;
    run ref;
    import_run(data, n, 1 << 16, "big.jsonl", NULL, 0, true, &ref);
    CHECK(ref.r == AT_OK && ref.res.nlinks == 1 && ref.res.links[0].event_id_len == 9 &&
              memcmp(ref.res.links[0].event_id, "agentcall", 9) == 0,
          "the big transcript imports, its link resolved (%s)", ref.err.message);
    size_t cuts[] = {mid, mid + 40};
    for (size_t c = 0; c < 2; c++) {
        const char *diff = check_split(data, n, cuts[c], 2 + c, "big.jsonl", &ref);
        CHECK(diff == NULL, "big transcript split at %zu: %s", cuts[c], diff);
    }
    run a;
    import_run(data, mid, 1 << 16, "big.jsonl", NULL, 0, true, &a);
    /* The state holds no events: a few hundred bytes plus one small record
     * per tool call (request id digest and event id), nothing of the texts. */
    uint64_t calls = strtoull(a.res.tool_calls, NULL, 10);
    CHECK(a.res.state && a.res.state_len < 1024 + calls * (16 + 1 + 12) && a.res.state_len < a.out_len / 20,
          "state of %zu bytes for %llu tool calls, %zu bytes of events", a.res.state_len,
          (unsigned long long)calls, a.out_len);
    CHECK(a.res.state && !memmem(a.res.state, a.res.state_len, "prompt number", 13) &&
              !memmem(a.res.state, a.res.state_len, "Reading it", 10) &&
              !memmem(a.res.state, a.res.state_len, "toolu_", 6),
          "no event text in the state");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* A resume's memory follows what it is fed, not what came before it:
     * the second half costs no more than the last 1000 lines. */
    size_t tail = n;
    for (int k = 0; k < 1000 && tail > mid; k++)
        for (tail--; tail > mid && data[tail - 1] != '\n'; tail--)
            ;
    run t;
    import_run(data, tail, 1 << 16, "big.jsonl", NULL, 0, true, &t);
    long half = resume_peak_kib(data, n, mid, a.res.state, a.res.state_len);
    long small = resume_peak_kib(data, n, tail, t.res.state, t.res.state_len);
    CHECK(half > 0 && small > 0 && half - small < 4096, "peak RSS of a resume: half %ld KiB, tail %ld KiB",
          half, small);
    run_fini(&t);
#endif
    run_fini(&a);
    run_fini(&ref);
    free(data);
}

/* ---- the pieces --------------------------------------------------------- */

static void check_sha256_state(void)
{
    static char msg[1000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)(i * 131 + 7);
    uint8_t want[AT_SHA256_LEN], got[AT_SHA256_LEN], st[AT_SHA256_STATE_LEN];
    size_t bad = 0;
    for (size_t split = 0; split <= sizeof msg; split++) {
        at_sha256_oneshot(msg, sizeof msg, want);
        at_sha256 *h = at_sha256_new(), *g = at_sha256_new();
        at_sha256_update(h, msg, split);
        at_sha256_export(h, st);
        bool ok =
            at_sha256_count(h) == split && at_sha256_import(g, st) == AT_OK && at_sha256_count(g) == split;
        at_sha256_update(g, msg + split, sizeof msg - split);
        at_sha256_final(g, got);
        ok = ok && memcmp(got, want, AT_SHA256_LEN) == 0;
        /* the state is plain data: big-endian words, bit count, block */
        ok = ok && st[0] == 'S' && st[3] == AT_SHA256_STATE_VERSION && st[43] == (uint8_t)(split * 8) &&
             memcmp(st + 44, msg + split - split % 64, split % 64) == 0;
        bad += !ok;
        at_sha256_free(h);
        at_sha256_free(g);
    }
    CHECK(bad == 0, "SHA-256 exported and continued at every split: %zu bad", bad);
    /* "abc" continued from the exported empty state: the known answer */
    at_sha256 *h = at_sha256_new();
    at_sha256_export(h, st);
    at_sha256_reset(h);
    CHECK(at_sha256_import(h, st) == AT_OK, "empty state imports");
    at_sha256_update(h, "abc", 3);
    at_sha256_final(h, got);
    char hex[AT_SHA256_HEX];
    at_hex(got, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "abc: %s",
          hex);
    /* malformed states are refused and leave the hash alone */
    at_sha256_reset(h);
    at_sha256_update(h, "ab", 2);
    at_sha256_export(h, st);
    uint8_t badst[AT_SHA256_STATE_LEN];
    memcpy(badst, st, sizeof st);
    badst[3] = 2;
    CHECK(at_sha256_import(h, badst) == AT_ERR_INVALID, "unknown version");
    memcpy(badst, st, sizeof st);
    badst[43] |= 1; /* not whole bytes */
    CHECK(at_sha256_import(h, badst) == AT_ERR_INVALID, "bit count");
    memcpy(badst, st, sizeof st);
    badst[44 + 5] = 1; /* past the 2 pending bytes */
    CHECK(at_sha256_import(h, badst) == AT_ERR_INVALID, "stray pending byte");
    at_sha256_update(h, "c", 1);
    at_sha256_final(h, got);
    at_hex(got, AT_SHA256_LEN, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "refused imports left the hash alone");
    at_sha256_free(h);
}

static at_result mem_sink(void *ctx, const char *p, size_t n)
{
    return at_buf_add(ctx, p, n);
}

static void check_chain_resume(void)
{
    at_event_json ev[5];
    char data[5][32];
    for (int i = 0; i < 5; i++) {
        snprintf(data[i], sizeof data[i], "{\"i\":%d}", i);
        ev[i] = (at_event_json){.event_type = AT_SLICE("\"decision\""),
                                .event_id = AT_SLICE("\"abc\""),
                                .data = {data[i], strlen(data[i])}};
    }
    at_buf whole, part;
    at_buf_init(&whole, 0);
    at_buf_init(&part, 0);
    at_chain_writer w;
    line_log lw = {0}, lp = {0};
    uint8_t dw[AT_SHA256_LEN], dp[AT_SHA256_LEN], hw[AT_SHA256_LEN];
    CHECK(at_chain_writer_init(&w, mem_sink, &whole, NULL) == AT_OK, "init");
    w.on_line = log_line;
    w.on_line_ctx = &lw;
    for (int i = 0; i < 5; i++)
        CHECK(at_chain_write(&w, &ev[i]) == AT_OK, "write");
    at_chain_writer_digest(&w, dw);
    memcpy(hw, w.head, AT_SHA256_LEN);
    at_chain_writer_fini(&w);
    for (int split = 0; split <= 5; split++) {
        at_buf_reset(&part);
        lp.n = 0;
        at_chain_pos pos;
        CHECK(at_chain_writer_init(&w, mem_sink, &part, NULL) == AT_OK, "init");
        w.on_line = log_line;
        w.on_line_ctx = &lp;
        for (int i = 0; i < split; i++)
            CHECK(at_chain_write(&w, &ev[i]) == AT_OK, "write");
        at_chain_writer_pos(&w, &pos);
        at_chain_writer_fini(&w);
        CHECK(at_chain_writer_resume(&w, mem_sink, &part, &pos) == AT_OK, "resume at %d", split);
        w.on_line = log_line;
        w.on_line_ctx = &lp;
        for (int i = split; i < 5; i++)
            CHECK(at_chain_write(&w, &ev[i]) == AT_OK, "write");
        at_chain_writer_digest(&w, dp);
        CHECK(part.len == whole.len && memcmp(part.data, whole.data, whole.len) == 0 &&
                  memcmp(dp, dw, AT_SHA256_LEN) == 0 && memcmp(w.head, hw, AT_SHA256_LEN) == 0,
              "resumed at line %d: same bytes and digest", split);
        CHECK(lines_diff(&lp, &lw) == NULL, "resumed at line %d: on_line numbers and offsets continue",
              split);
        at_chain_writer_fini(&w);
        if (split == 2) {
            at_chain_pos bad = pos;
            bad.bytes++;
            CHECK(at_chain_writer_resume(&w, mem_sink, &part, &bad) == AT_ERR_INVALID,
                  "a byte count the digest does not cover");
            bad = pos;
            bad.have_head = false;
            CHECK(at_chain_writer_resume(&w, mem_sink, &part, &bad) == AT_ERR_INVALID,
                  "lines without a head");
            bad = pos;
            bad.file_state[0] ^= 1;
            CHECK(at_chain_writer_resume(&w, mem_sink, &part, &bad) == AT_ERR_INVALID, "a bad midstate");
        }
    }
    free(lw.v);
    free(lp.v);
    at_buf_fini(&whole);
    at_buf_fini(&part);
}

int main(int argc, char **argv)
{
    /* argv[1] "quick": fewer split points (development) */
    bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    check_sha256_state();
    check_chain_resume();
    check_big();
    check_no_session_refused();
    check_bad_states();
    check_empty_resume();
    check_line_endings();
    if (!quick)
        check_fixture_splits();
    check_chains(20, 4);

    at_error err = {0};
    g_redact = at_redact_new(&err);
    CHECK(g_redact != NULL, "redactor: %s", err.message);
    if (g_redact) {
        check_file_splits("tests/fixtures/claude-edge/secrets.jsonl", "secrets.jsonl");
        check_file_splits("tests/fixtures/claude-edge/tools.jsonl", "tools.jsonl");
        check_file_splits("tests/fixtures/claude/short.jsonl", "short.jsonl");
        if (!quick)
            check_file_splits("tests/fixtures/claude/subagent.jsonl", "subagent.jsonl");
        check_chains(10, 2);
        at_redact_free(g_redact);
        g_redact = NULL;
    }
    return t_done("test_resume");
}
