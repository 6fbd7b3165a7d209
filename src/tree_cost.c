/* tree_cost.c - the token counts behind a session's cost in `agent-strace
 * tree` (server-api.md, "Trees, exactly as agent-strace prints them"), and
 * the process-wide cache that keeps them.
 *
 * Cost reads every events.ndjson of the tree line by line (memory is one
 * line at a time), re-serializing each event's data with Python's default
 * separators to measure it. That is the whole cost of a request on a large
 * session, so the token sums (integers: cached sums are exact, the price
 * formula is applied after) are kept in a process-wide cache keyed by the
 * file's identity (st_dev, st_ino). The storage directory stays the truth:
 *  - a hit needs size, mtime and ctime all equal to those seen when the
 *    sums were counted (ctime cannot be set back, so an in-place rewrite
 *    always shows), and the count not "racy": a file changed within the
 *    timestamp granularity of the count could change again unseen, so it
 *    is counted again (git's racy-clean rule). A large racy file is given
 *    that granularity (20 ms) to pass before it is counted, so that a
 *    request just after an append does not leave a whole recount to the
 *    next one;
 *  - a file of the same inode that grew is taken for an append (what
 *    agent-strace and the collector do) only when a digest of its old
 *    extent (the first and last 4 KiB and 16 spread samples; the whole
 *    extent when small) still matches: the lines up to the last "\n"
 *    counted keep their sums and only the rest is read. Shrunk, rewritten
 *    at the same size, or a digest that differs: everything is counted;
 *  - a new inode (our importer links a new file) is a new key; a deleted
 *    file is cost 0 as before; an inode number reused by another file
 *    differs in ctime.
 * A count covers exactly the size fstat reported, so appends racing the
 * read show up as growth next time. Not covered, as with any stamp-based
 * check (git, make, rsync): an in-place rewrite of the same size that
 * leaves mtime and ctime as they were (one long write straddling the count,
 * stamps from a skewed network clock), and an in-place rewrite that also
 * grows the file but keeps the digested bytes. The cache has
 * COST_SETS x COST_WAYS entries (LRU within a set) behind one mutex held
 * only to copy entries; racing requests may count the same file twice. */
#include "tree_cost.h"

#include "lines.h"

#include "agenttrace/json.h"
#include "agenttrace/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- cost --------------------------------------------------------------------- */

static int event_side(const at_json_doc *d, uint32_t et)
{
    static const char *const in[] = {"user_prompt", "llm_request", "tool_call"};
    static const char *const outp[] = {"assistant_response", "llm_response", "tool_result"};
    for (int k = 0; k < 3; k++) {
        if (at_json_str_eq(d, et, in[k], strlen(in[k])))
            return 1;
        if (at_json_str_eq(d, et, outp[k], strlen(outp[k])))
            return 2;
    }
    return 0;
}

/* Token sums over a range of events.ndjson. Only the range's last line can
 * lack its "\n"; its tokens are kept apart, since an append may complete it. */
typedef struct {
    int64_t in, out;           /* tokens of the "\n"-terminated lines */
    int64_t tail_in, tail_out; /* tokens of an unterminated last line */
    uint64_t done;             /* file offset just after the last "\n" */
} cost_count;

/* The side (1 input, 2 output, 0 neither) and the tokens of one line. Lines
 * that are not events count nothing; AT_ERR_NOMEM and write failures are
 * errors (an undercount would be cached). dump is scratch space. */
static at_result line_tokens(at_json_doc *doc, at_buf *dump, const at_line *ln, int *side, int64_t *tok)
{
    *side = 0;
    *tok = 0;
    if (!ln->p)
        return AT_OK; /* overlong */
    at_error perr;
    at_result r = at_json_parse(doc, ln->p, ln->n, &perr);
    if (r == AT_ERR_NOMEM)
        return r;
    if (r != AT_OK || !at_json_is(doc, 0, AT_JSON_OBJECT))
        return AT_OK; /* blank or broken lines carry no event */
    uint32_t et = at_json_get(doc, 0, "event_type");
    if (!at_json_is(doc, et, AT_JSON_STRING))
        return AT_OK;
    int sd = event_side(doc, et);
    if (!sd)
        return AT_OK;
    uint32_t data = at_json_get(doc, 0, "data");
    size_t len = 2; /* json.dumps({}) */
    if (data != AT_JSON_NONE) {
        at_buf_reset(dump);
        if ((r = at_json_emit(dump, doc, data, &AT_JSON_DEFAULT, 0)) != AT_OK)
            return r;
        len = dump->len;
    }
    *side = sd;
    *tok = len / 4 < 1 ? 1 : (int64_t)(len / 4);
    return AT_OK;
}

/* Adds the events of [from, from + limit) of fd to c, whose done must be
 * from. *got: the bytes read, fewer than limit when the file ended first. */
static at_result count_events(int fd, uint64_t from, uint64_t limit, cost_count *c, uint64_t *got)
{
    *got = 0;
    if (from && lseek(fd, (off_t)from, SEEK_SET) < 0)
        return AT_ERR_IO;
    at_lines lr;
    at_lines_init(&lr, fd, limit);
    at_json_doc doc;
    at_json_doc_init(&doc);
    at_buf dump;
    at_buf_init(&dump, 0);
    at_result r;
    at_line ln;
    while ((r = at_lines_next(&lr, &ln)) == AT_OK) {
        int side;
        int64_t tok;
        if ((r = line_tokens(&doc, &dump, &ln, &side, &tok)) != AT_OK)
            break;
        /* a line without "\n" ends exactly where reading stopped */
        bool complete = ln.off + ln.n < lr.pos;
        if (complete) {
            c->done = from + ln.off + ln.n + 1;
            c->in += side == 1 ? tok : 0;
            c->out += side == 2 ? tok : 0;
        } else {
            c->tail_in += side == 1 ? tok : 0;
            c->tail_out += side == 2 ? tok : 0;
        }
    }
    *got = lr.pos;
    at_buf_fini(&dump);
    at_json_doc_fini(&doc);
    at_lines_fini(&lr);
    return r == AT_ERR_NOT_FOUND ? AT_OK : r;
}

/* ---- the cost cache (see the top of the file) ------------------------------------- */

#define COST_SETS           1024 /* a power of two */
#define COST_WAYS           4
#define COST_EDGE           4096 /* bytes checked at each end of a counted extent */
#define COST_SAMPLES        16
#define COST_SAMPLE         64
#define COST_CHECK_MAX      (2 * COST_EDGE + COST_SAMPLES * COST_SAMPLE)
/* Timestamp slack of the racy rule: Linux stamps files from a clock that
 * lags the real time by up to a tick (10 ms at HZ=100); filesystems without
 * sub-second stamps get 2 s. */
#define COST_RACY_NS        20000000LL
#define COST_RACY_COARSE_NS 2000000000LL
/* A racy file at least this large is left to settle (up to COST_RACY_NS)
 * before it is counted, so that its entry can be trusted; a smaller one is
 * counted at once and again next time, which costs less than waiting. */
#define COST_SETTLE_MIN     (4u << 20)

typedef struct {
    uint64_t used; /* LRU clock at the last use; 0: a free slot */
    dev_t dev;
    ino_t ino;
    uint64_t size; /* the file's size when counted: the counted extent */
    struct timespec mtime, ctime;
    bool racy;                    /* changed too close to the count to trust the stamps */
    cost_count sum;               /* over [0, size) */
    uint8_t check[AT_SHA256_LEN]; /* extent_digest(size) when counted */
} cost_entry;

static struct {
    pthread_mutex_t mu;
    uint64_t clock;
    cost_entry set[COST_SETS][COST_WAYS];
} cost_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static tree_cost_stats cost_stats; /* updated with atomics */

static void stat_bump(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static cost_entry *cost_set(dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32 | (uint64_t)dev >> 32)) * 0x9e3779b97f4a7c15ull;
    return cost_cache.set[(h >> 32) & (COST_SETS - 1)];
}

/* Copies the entry of (dev, ino) into *out; false when there is none. */
static bool cost_lookup(dev_t dev, ino_t ino, cost_entry *out)
{
    bool found = false;
    pthread_mutex_lock(&cost_cache.mu);
    cost_entry *w = cost_set(dev, ino);
    for (int k = 0; k < COST_WAYS; k++)
        if (w[k].used && w[k].dev == dev && w[k].ino == ino) {
            w[k].used = ++cost_cache.clock;
            *out = w[k];
            found = true;
            break;
        }
    pthread_mutex_unlock(&cost_cache.mu);
    return found;
}

/* Stores a copy of *e over the entry of the same file, else a free or the
 * least recently used way of its set. */
static void cost_store(const cost_entry *e)
{
    pthread_mutex_lock(&cost_cache.mu);
    cost_entry *w = cost_set(e->dev, e->ino);
    int victim = 0;
    for (int k = 0; k < COST_WAYS; k++) {
        if (w[k].used && w[k].dev == e->dev && w[k].ino == e->ino) {
            victim = k;
            break;
        }
        if (w[k].used < w[victim].used)
            victim = k;
    }
    w[victim] = *e;
    w[victim].used = ++cost_cache.clock;
    pthread_mutex_unlock(&cost_cache.mu);
}

void tree_cost_cache_clear(void)
{
    pthread_mutex_lock(&cost_cache.mu);
    memset(cost_cache.set, 0, sizeof cost_cache.set);
    cost_cache.clock = 0;
    pthread_mutex_unlock(&cost_cache.mu);
    __atomic_store_n(&cost_stats.hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cost_stats.resumes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cost_stats.counts, 0, __ATOMIC_RELAXED);
}

void tree_cost_cache_stats(tree_cost_stats *out)
{
    out->hits = __atomic_load_n(&cost_stats.hits, __ATOMIC_RELAXED);
    out->resumes = __atomic_load_n(&cost_stats.resumes, __ATOMIC_RELAXED);
    out->counts = __atomic_load_n(&cost_stats.counts, __ATOMIC_RELAXED);
}

/* Reads exactly n bytes at off; false on a short read (the file shrank). */
static bool pread_full(int fd, void *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p = (char *)p + k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return true;
}

/* A digest of fd's extent [0, size): all of it when small, else the first
 * and last COST_EDGE bytes and COST_SAMPLES spread samples, with the size.
 * Appends leave it unchanged. false when the file no longer has size bytes. */
static bool extent_digest(int fd, uint64_t size, uint8_t out[AT_SHA256_LEN])
{
    unsigned char b[8 + COST_CHECK_MAX];
    size_t n = 0;
    for (int k = 0; k < 8; k++)
        b[n++] = (unsigned char)(size >> (8 * k));
    if (size <= COST_CHECK_MAX) {
        if (!pread_full(fd, b + n, (size_t)size, 0))
            return false;
        n += (size_t)size;
    } else {
        if (!pread_full(fd, b + n, COST_EDGE, 0))
            return false;
        n += COST_EDGE;
        for (uint64_t k = 0; k < COST_SAMPLES; k++) {
            uint64_t off = size / (2 * COST_SAMPLES) * (2 * k + 1);
            if (off > size - COST_SAMPLE)
                off = size - COST_SAMPLE;
            if (!pread_full(fd, b + n, COST_SAMPLE, off))
                return false;
            n += COST_SAMPLE;
        }
        if (!pread_full(fd, b + n, COST_EDGE, size - COST_EDGE))
            return false;
        n += COST_EDGE;
    }
    at_sha256_oneshot(b, n, out);
    return true;
}

static int64_t ts_ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int64_t stamps_last(const struct stat *st)
{
    int64_t m = ts_ns(st->st_mtim), c = ts_ns(st->st_ctim);
    return m > c ? m : c;
}

static bool stamps_fine(const struct stat *st)
{
    return st->st_mtim.tv_nsec || st->st_ctim.tv_nsec;
}

/* Whether a change after t0 could leave mtime and ctime as they are. */
static bool stamps_racy(const struct stat *st, struct timespec t0)
{
    int64_t slack = stamps_fine(st) ? COST_RACY_NS : COST_RACY_COARSE_NS;
    return stamps_last(st) >= ts_ns(t0) - slack;
}

/* Sleeps until a large, racy file's stamps are out of the racy window and
 * true then; false (at once) when waiting would not help: not racy, small,
 * coarse stamps, or stamps in the future. */
static bool stamps_settle(const struct stat *st, struct timespec t0)
{
    int64_t last = stamps_last(st);
    if (!stamps_racy(st, t0) || (uint64_t)st->st_size < COST_SETTLE_MIN || !stamps_fine(st) ||
        last > ts_ns(t0))
        return false;
    int64_t until = last + COST_RACY_NS + 1000;
    struct timespec ts = {(time_t)(until / 1000000000LL), (long)(until % 1000000000LL)};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return true;
}

/* The token sums of the regular file fd, whose fstat (taken after t0) is *st,
 * through the cache. *st may be refreshed (stamps_settle). */
static at_result cached_tokens(int fd, struct stat *st, struct timespec t0, int64_t *tin, int64_t *tout)
{
    cost_entry old;
    bool have;
    for (bool waited = false;; waited = true) {
        have = cost_lookup(st->st_dev, st->st_ino, &old);
        if (have && !old.racy && old.size == (uint64_t)st->st_size && ts_eq(old.mtime, st->st_mtim) &&
            ts_eq(old.ctime, st->st_ctim)) {
            stat_bump(&cost_stats.hits);
            *tin = old.sum.in + old.sum.tail_in;
            *tout = old.sum.out + old.sum.tail_out;
            return AT_OK;
        }
        if (waited || !stamps_settle(st, t0))
            break;
        clock_gettime(CLOCK_REALTIME, &t0);
        if (fstat(fd, st) != 0)
            return AT_ERR_IO;
    }
    uint64_t size = (uint64_t)st->st_size;
    cost_entry e;
    memset(&e, 0, sizeof e);
    e.dev = st->st_dev;
    e.ino = st->st_ino;
    e.size = size;
    e.mtime = st->st_mtim;
    e.ctime = st->st_ctim;
    e.racy = stamps_racy(st, t0);
    /* the digest is taken before reading: a change during the count makes
     * it differ next time, never the reverse */
    bool keep = extent_digest(fd, size, e.check);
    cost_count c = {0, 0, 0, 0, 0};
    uint8_t now[AT_SHA256_LEN];
    if (have && keep && size > old.size && extent_digest(fd, old.size, now) &&
        memcmp(now, old.check, sizeof now) == 0) {
        c = old.sum; /* an append: the complete lines stand */
        c.tail_in = c.tail_out = 0;
        stat_bump(&cost_stats.resumes);
    } else {
        stat_bump(&cost_stats.counts);
    }
    uint64_t from = c.done, got;
    at_result r = count_events(fd, from, size - from, &c, &got);
    if (r != AT_OK)
        return r;
    if (keep && got == size - from) {
        e.sum = c;
        cost_store(&e);
    }
    *tin = c.in + c.tail_in;
    *tout = c.out + c.tail_out;
    return AT_OK;
}

at_result tree_cost_tokens_object(at_object_reader *rd, int64_t *tokens_in, int64_t *tokens_out, at_error *err)
{
    *tokens_in = 0;
    *tokens_out = 0;
    at_json_doc doc;
    at_json_doc_init(&doc);
    at_buf dump, line;
    at_buf_init(&dump, 0);
    at_buf_init(&line, 0);
    char *buf = malloc(1 << 16);
    at_result r = buf ? AT_OK : AT_ERR_NOMEM;
    uint64_t pos = 0, size = at_object_size(rd), no = 0;
    /* lines split across reads are gathered in line; the last one may lack "\n" */
    while (r == AT_OK && pos < size) {
        ssize_t k = at_object_read(rd, pos, buf, 1 << 16);
        if (k <= 0) {
            r = AT_ERR_IO;
            break;
        }
        size_t i = 0;
        while (r == AT_OK && i < (size_t)k) {
            const char *nl = memchr(buf + i, '\n', (size_t)k - i);
            size_t len = nl ? (size_t)(nl - (buf + i)) : (size_t)k - i;
            if ((r = at_buf_add(&line, buf + i, len)) != AT_OK)
                break;
            i += len;
            if (!nl && pos + (uint64_t)k < size)
                break; /* continues in the next read */
            i += nl ? 1 : 0;
            at_line ln = {line.len > AT_MAX_LINE_BYTES ? NULL : (line.data ? line.data : ""), line.len, 0, no++};
            int side;
            int64_t tok;
            if ((r = line_tokens(&doc, &dump, &ln, &side, &tok)) == AT_OK) {
                *tokens_in += side == 1 ? tok : 0;
                *tokens_out += side == 2 ? tok : 0;
            }
            at_buf_reset(&line);
        }
        pos += (uint64_t)k;
    }
    free(buf);
    at_buf_fini(&dump);
    at_buf_fini(&line);
    at_json_doc_fini(&doc);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "cannot read the events to count their tokens");
}

at_result tree_cost_tokens(const char *events_path, int64_t *tokens_in, int64_t *tokens_out, at_error *err)
{
    *tokens_in = 0;
    *tokens_out = 0;
    int fd = open(events_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return AT_OK; /* no events: no tokens */
        return at_error_set(err, AT_ERR_IO, -1, "%s: %s", events_path, strerror(errno));
    }
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    struct stat st;
    int64_t tin = 0, tout = 0;
    at_result r;
    if (fstat(fd, &st) != 0) {
        r = AT_ERR_IO;
    } else if (S_ISREG(st.st_mode)) {
        r = cached_tokens(fd, &st, t0, &tin, &tout);
    } else {
        cost_count c = {0, 0, 0, 0, 0};
        uint64_t got;
        r = count_events(fd, 0, UINT64_MAX, &c, &got);
        tin = c.in + c.tail_in;
        tout = c.out + c.tail_out;
    }
    close(fd);
    if (r != AT_OK)
        return at_error_set(err, r, -1, "%s: cannot read events", events_path);
    *tokens_in = tin;
    *tokens_out = tout;
    return AT_OK;
}
