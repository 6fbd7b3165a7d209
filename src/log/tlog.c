/* tlog.c - the transparency log's files (tlog.h): appending, trimming what
 * a crash left, reading hashes, entries, tiles and bundles. The tree
 * algorithms (roots, proofs) are merkle.c's, over a reader of these files. */
#include "agenttrace/tlog.h"

#include "agenttrace/merkle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define H AT_SHA256_LEN

struct at_tlog {
    char *dir;
    pthread_mutex_t mu; /* appenders of this process; the flock covers the others */
};

static at_result sys_fail(at_error *err, const char *what, const char *path)
{
    int e = errno;
    at_result r = at_error_set(err, AT_ERR_IO, -1, "log: %s %s: %s", what, path, strerror(e));
    if (err)
        err->sys_errno = e;
    return r;
}

static bool path_of(const at_tlog *l, char *out, size_t cap, const char *name, int level)
{
    int k = level >= 0 ? snprintf(out, cap, "%s/%s.%d", l->dir, name, level)
                       : snprintf(out, cap, "%s/%s", l->dir, name);
    return k > 0 && (size_t)k < cap;
}

static int open_file(const at_tlog *l, const char *name, int level, int flags)
{
    char p[PATH_MAX];
    if (!path_of(l, p, sizeof p, name, level))
        return -1;
    return open(p, flags | O_CLOEXEC, 0644);
}

static int64_t file_size(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static int lock(const at_tlog *l)
{
    int fd = open_file(l, "lock", -1, O_RDWR | O_CREAT);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    return fd;
}

static bool read_at(int fd, void *buf, size_t n, uint64_t off)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        done += (size_t)k;
    }
    return true;
}

/* ---- hashes -------------------------------------------------------------------- */

at_result at_tlog_hashes(at_tlog *l, int level, uint64_t first, size_t count, uint8_t *out)
{
    if (level < 0 || level > AT_TLOG_MAX_LEVEL)
        return AT_ERR_INVALID;
    if (count == 0)
        return AT_OK;
    int fd = open_file(l, "hashes", level, O_RDONLY);
    if (fd < 0)
        return AT_ERR_NOT_FOUND;
    bool ok = first <= UINT64_MAX / H && read_at(fd, out, count * H, first * H);
    close(fd);
    return ok ? AT_OK : AT_ERR_NOT_FOUND;
}

static at_result reader(void *ctx, int level, uint64_t first, size_t count, uint8_t *out)
{
    return at_tlog_hashes(ctx, level, first, count, out);
}

/* Stored hashes per level for size: floor(size / 2^level). */
static uint64_t level_count(uint64_t size, int level)
{
    return level >= 64 ? 0 : size >> level;
}

/* ---- opening and trimming ------------------------------------------------------------ */

/* Makes the files agree on the tree size (the leaf hashes whose entries
 * are all there), trimming longer files and computing missing upper-level
 * hashes. Called with the lock held. */
static at_result recover(at_tlog *l, at_error *err)
{
    int ef = open_file(l, "entries", -1, O_RDWR | O_CREAT), xf = open_file(l, "index", -1, O_RDWR | O_CREAT),
        h0 = open_file(l, "hashes", 0, O_RDWR | O_CREAT);
    at_result r = AT_OK;
    if (ef < 0 || xf < 0 || h0 < 0) {
        r = sys_fail(err, "cannot open the files in", l->dir);
        goto out;
    }
    int64_t esz = file_size(ef), xsz = file_size(xf), hsz = file_size(h0);
    uint64_t n = (uint64_t)(xsz / 8);
    if ((uint64_t)(hsz / H) < n)
        n = (uint64_t)(hsz / H);
    /* the last indexed entry must be whole */
    while (n > 0) {
        uint64_t off;
        uint8_t len[2];
        if (read_at(xf, &off, 8, (n - 1) * 8) && read_at(ef, len, 2, off) &&
            off + 2 + (uint64_t)(len[0] << 8 | len[1]) <= (uint64_t)esz)
            break;
        n--;
    }
    uint64_t eend = 0;
    if (n > 0) {
        uint8_t len[2];
        uint64_t off;
        if (!read_at(xf, &off, 8, (n - 1) * 8) || !read_at(ef, len, 2, off)) {
            r = at_error_set(err, AT_ERR_IO, -1, "log: cannot read %s", l->dir);
            goto out;
        }
        eend = off + 2 + (uint64_t)(len[0] << 8 | len[1]);
    }
    if (ftruncate(ef, (off_t)eend) < 0 || ftruncate(xf, (off_t)(n * 8)) < 0 ||
        ftruncate(h0, (off_t)(n * H)) < 0) {
        r = sys_fail(err, "cannot trim", l->dir);
        goto out;
    }
    /* upper levels: exactly floor(n / 2^level) hashes each */
    for (int level = 1; level <= AT_TLOG_MAX_LEVEL && r == AT_OK; level++) {
        uint64_t want = level_count(n, level);
        int hf = open_file(l, "hashes", level, O_RDWR | O_CREAT);
        if (hf < 0) {
            r = sys_fail(err, "cannot open the hashes in", l->dir);
            break;
        }
        uint64_t have = (uint64_t)file_size(hf) / H;
        if (have > want && ftruncate(hf, (off_t)(want * H)) < 0)
            r = sys_fail(err, "cannot trim", l->dir);
        for (uint64_t k = have < want ? have : want; r == AT_OK && k < want; k++) {
            uint8_t two[2 * H], parent[H];
            if ((r = at_tlog_hashes(l, level - 1, 2 * k, 2, two)) != AT_OK)
                break;
            at_merkle_node_hash(two, two + H, parent);
            if (pwrite(hf, parent, H, (off_t)(k * H)) != H)
                r = sys_fail(err, "cannot write the hashes in", l->dir);
        }
        if (r == AT_OK && fsync(hf) < 0)
            r = sys_fail(err, "cannot sync", l->dir);
        close(hf);
        if (want == 0)
            break;
    }
    if (r == AT_OK && (fsync(ef) < 0 || fsync(xf) < 0 || fsync(h0) < 0))
        r = sys_fail(err, "cannot sync", l->dir);
out:
    if (ef >= 0)
        close(ef);
    if (xf >= 0)
        close(xf);
    if (h0 >= 0)
        close(h0);
    return r;
}

at_tlog *at_tlog_open(const char *dir, at_error *err)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        sys_fail(err, "cannot create", dir);
        return NULL;
    }
    at_tlog *l = calloc(1, sizeof *l);
    if (!l || !(l->dir = strdup(dir))) {
        free(l);
        at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    int lk = lock(l);
    at_result r = lk < 0 ? sys_fail(err, "cannot lock", dir) : recover(l, err);
    if (lk >= 0)
        close(lk);
    if (r != AT_OK) {
        at_tlog_free(l);
        return NULL;
    }
    return l;
}

void at_tlog_free(at_tlog *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->dir);
    free(l);
}

uint64_t at_tlog_size(at_tlog *l)
{
    int fd = open_file(l, "hashes", 0, O_RDONLY);
    if (fd < 0)
        return 0;
    int64_t sz = file_size(fd);
    close(fd);
    return sz > 0 ? (uint64_t)sz / H : 0;
}

/* ---- appending ------------------------------------------------------------------------ */

/* Do the index and the leaf hashes agree on the size? (Cheap: two stats.) */
static bool consistent(at_tlog *l)
{
    int xf = open_file(l, "index", -1, O_RDONLY), h0 = open_file(l, "hashes", 0, O_RDONLY);
    bool ok = xf >= 0 && h0 >= 0 && file_size(xf) / 8 == file_size(h0) / H && file_size(xf) % 8 == 0 &&
              file_size(h0) % H == 0;
    if (xf >= 0)
        close(xf);
    if (h0 >= 0)
        close(h0);
    return ok;
}

at_result at_tlog_append(at_tlog *l, const at_slice *entries, size_t n, uint64_t *first, at_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].n > AT_TLOG_MAX_ENTRY)
            return at_error_set(err, AT_ERR_TOO_BIG, -1, "log: an entry of %zu bytes", entries[i].n);
    pthread_mutex_lock(&l->mu);
    int lk = lock(l);
    at_result r = lk < 0 ? sys_fail(err, "cannot lock", l->dir) : AT_OK;
    if (r == AT_OK && !consistent(l))
        r = recover(l, err); /* an appender died half way */
    int fds[AT_TLOG_MAX_LEVEL + 3];
    int nfds = 0;
    for (int i = 0; i < AT_TLOG_MAX_LEVEL + 3; i++)
        fds[i] = -1;
    at_buf eb, xb;
    at_buf_init(&eb, 0);
    at_buf_init(&xb, 0);
    uint64_t size = 0, eoff = 0;
    if (r == AT_OK) {
        fds[0] = open_file(l, "entries", -1, O_RDWR);
        fds[1] = open_file(l, "index", -1, O_RDWR);
        nfds = 2;
        if (fds[0] < 0 || fds[1] < 0)
            r = sys_fail(err, "cannot open the files in", l->dir);
        else {
            eoff = (uint64_t)file_size(fds[0]);
            size = (uint64_t)file_size(fds[1]) / 8;
        }
    }
    /* entries and index first */
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        uint64_t off = eoff + eb.len;
        uint8_t len[2] = {(uint8_t)(entries[i].n >> 8), (uint8_t)entries[i].n};
        if ((r = at_buf_add(&eb, len, 2)) == AT_OK &&
            (r = at_buf_add(&eb, entries[i].p, entries[i].n)) == AT_OK)
            r = at_buf_add(&xb, &off, 8);
    }
    if (r == AT_OK && n &&
        (pwrite(fds[0], eb.data, eb.len, (off_t)eoff) != (ssize_t)eb.len ||
         pwrite(fds[1], xb.data, xb.len, (off_t)(size * 8)) != (ssize_t)xb.len))
        r = sys_fail(err, "cannot append to", l->dir);
    /* then the hashes: leaf k at level 0, and a parent at level v+1
     * whenever the index at level v is odd. Upper levels are written
     * before the leaf: the leaf count says the size, so a crash in between
     * leaves a shorter tree that opening completes. */
    for (size_t i = 0; r == AT_OK && i < n; i++) {
        uint64_t k = size + i, idx[AT_TLOG_MAX_LEVEL + 1];
        uint8_t h[AT_TLOG_MAX_LEVEL + 1][H];
        int top = 0;
        if ((r = at_merkle_leaf_hash(entries[i].p, entries[i].n, h[0])) != AT_OK) {
            at_error_set(err, r, -1, "out of memory");
            break;
        }
        idx[0] = k;
        while (r == AT_OK && (idx[top] & 1) && top < AT_TLOG_MAX_LEVEL) {
            uint8_t left[H];
            if ((r = at_tlog_hashes(l, top, idx[top] - 1, 1, left)) != AT_OK) {
                at_error_set(err, r, -1, "log: cannot read the hashes in %s", l->dir);
                break;
            }
            at_merkle_node_hash(left, h[top], h[top + 1]);
            idx[top + 1] = idx[top] >> 1;
            top++;
        }
        for (int level = top; r == AT_OK && level >= 0; level--) {
            if (level + 2 >= nfds) {
                for (int j = nfds; j <= level + 2; j++)
                    fds[j] = open_file(l, "hashes", j - 2, O_RDWR | O_CREAT);
                nfds = level + 3;
            }
            if (fds[level + 2] < 0 || pwrite(fds[level + 2], h[level], H, (off_t)(idx[level] * H)) != H)
                r = sys_fail(err, "cannot append to", l->dir);
        }
    }
    /* durable before anyone may sign a tree that holds them: upper levels
     * first, the leaf level (which says the size) last */
    for (int i = nfds - 1; r == AT_OK && i >= 0; i--)
        if (fds[i] >= 0 && fsync(fds[i]) < 0)
            r = sys_fail(err, "cannot sync", l->dir);
    for (int i = 0; i < nfds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (r != AT_OK && lk >= 0) {
        at_error ignored;
        (void)recover(l, &ignored); /* trims what this append left */
    }
    if (lk >= 0)
        close(lk);
    pthread_mutex_unlock(&l->mu);
    at_buf_fini(&eb);
    at_buf_fini(&xb);
    if (r == AT_OK)
        *first = size;
    return r;
}

/* ---- reading ---------------------------------------------------------------------------- */

at_result at_tlog_root(at_tlog *l, uint64_t size, uint8_t root[AT_SHA256_LEN], at_error *err)
{
    at_result r = at_merkle_root(reader, l, size, root);
    return r == AT_OK ? AT_OK
                      : at_error_set(err, r, -1, "log: cannot compute the root of size %llu",
                                     (unsigned long long)size);
}

at_result at_tlog_inclusion(at_tlog *l, uint64_t index, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                            size_t *n, at_error *err)
{
    *proof = NULL;
    *n = 0;
    if (index >= size)
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "log: entry %llu is not in a tree of %llu",
                            (unsigned long long)index, (unsigned long long)size);
    uint8_t(*p)[H] = malloc(64 * H);
    if (!p)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    at_result r = at_merkle_prove_inclusion(reader, l, index, size, (uint8_t *)p, 64, n);
    if (r != AT_OK) {
        free(p);
        return at_error_set(err, r, -1, "log: cannot prove entry %llu", (unsigned long long)index);
    }
    *proof = p;
    return AT_OK;
}

at_result at_tlog_consistency(at_tlog *l, uint64_t m, uint64_t size, uint8_t (**proof)[AT_SHA256_LEN],
                              size_t *n, at_error *err)
{
    *proof = NULL;
    *n = 0;
    if (m > size)
        return at_error_set(err, AT_ERR_INVALID, -1, "log: size %llu is larger than %llu",
                            (unsigned long long)m, (unsigned long long)size);
    uint8_t(*p)[H] = malloc(128 * H);
    if (!p)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    at_result r = at_merkle_prove_consistency(reader, l, m, size, (uint8_t *)p, 128, n);
    if (r != AT_OK) {
        free(p);
        return at_error_set(err, r, -1, "log: cannot prove %llu consistent with %llu", (unsigned long long)m,
                            (unsigned long long)size);
    }
    *proof = p;
    return AT_OK;
}

/* The offsets of entries [first, first + count] (count + 1 of them, the
 * last one the end of the last entry). */
static at_result entry_range(at_tlog *l, uint64_t first, uint64_t count, uint64_t *start, uint64_t *end)
{
    int xf = open_file(l, "index", -1, O_RDONLY), ef = open_file(l, "entries", -1, O_RDONLY);
    at_result r = AT_OK;
    uint64_t last;
    uint8_t len[2];
    if (xf < 0 || ef < 0 || !read_at(xf, start, 8, first * 8) ||
        !read_at(xf, &last, 8, (first + count - 1) * 8) || !read_at(ef, len, 2, last))
        r = AT_ERR_NOT_FOUND;
    else
        *end = last + 2 + (uint64_t)(len[0] << 8 | len[1]);
    if (xf >= 0)
        close(xf);
    if (ef >= 0)
        close(ef);
    return r;
}

at_result at_tlog_entry(at_tlog *l, uint64_t index, at_buf *out, at_error *err)
{
    uint64_t start, end;
    if (index >= at_tlog_size(l) || entry_range(l, index, 1, &start, &end) != AT_OK)
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "log: no entry %llu", (unsigned long long)index);
    int ef = open_file(l, "entries", -1, O_RDONLY);
    at_result r = ef < 0 ? AT_ERR_IO : at_buf_reserve(out, (size_t)(end - start - 2));
    if (r == AT_OK && !read_at(ef, out->data + out->len, (size_t)(end - start - 2), start + 2))
        r = AT_ERR_IO;
    if (r == AT_OK) {
        out->len += (size_t)(end - start - 2);
        out->data[out->len] = 0;
    }
    if (ef >= 0)
        close(ef);
    return r == AT_OK ? AT_OK
                      : at_error_set(err, r, -1, "log: cannot read entry %llu", (unsigned long long)index);
}

at_result at_tlog_tile(at_tlog *l, int level, uint64_t n, unsigned w, uint64_t size, at_buf *out)
{
    if (level < 0 || level > AT_TLOG_MAX_LEVEL / 8 || w == 0 || w > 256)
        return AT_ERR_INVALID;
    uint64_t have = level * 8 >= 64 ? 0 : size >> (8 * level); /* hashes of that level in the tree */
    if (n > (UINT64_MAX - w) / 256 || n * 256 + w > have)
        return AT_ERR_NOT_FOUND;
    at_result r = at_buf_reserve(out, (size_t)w * H);
    if (r == AT_OK &&
        (r = at_tlog_hashes(l, 8 * level, n * 256, w, (uint8_t *)out->data + out->len)) == AT_OK) {
        out->len += (size_t)w * H;
        out->data[out->len] = 0;
    }
    return r;
}

at_result at_tlog_bundle(at_tlog *l, uint64_t n, unsigned w, uint64_t size, at_buf *out)
{
    if (w == 0 || w > 256)
        return AT_ERR_INVALID;
    if (n > (UINT64_MAX - w) / 256 || n * 256 + w > size)
        return AT_ERR_NOT_FOUND;
    uint64_t start, end;
    at_result r = entry_range(l, n * 256, w, &start, &end);
    if (r != AT_OK)
        return r;
    int ef = open_file(l, "entries", -1, O_RDONLY);
    if (ef < 0)
        return AT_ERR_IO;
    r = at_buf_reserve(out, (size_t)(end - start));
    if (r == AT_OK && !read_at(ef, out->data + out->len, (size_t)(end - start), start))
        r = AT_ERR_IO;
    if (r == AT_OK) {
        out->len += (size_t)(end - start);
        out->data[out->len] = 0;
    }
    close(ef);
    return r;
}
