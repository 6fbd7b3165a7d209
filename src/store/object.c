/* object.c - immutable objects: the events of a version, named by the
 * SHA-256 of those bytes.
 *
 *   objects/sha256/<2>/<64>.ndjson   full: the bytes themselves
 *   objects/sha256/<2>/<64>.delta    "agent-traced-delta 1\nbase <64>\nprefix <n>\n
 *                                     size <n>\ndepth <d>\n\n" then the tail bytes:
 *                                     the object is base's first prefix bytes
 *                                     followed by the tail
 *
 * A session that grows (a transcript uploaded after every turn, appends)
 * would otherwise store its whole history again at every version; a delta
 * costs only what was added. Chains are cut at OBJECT_MAX_DEPTH by a full
 * object, so reading an old version opens a bounded number of files.
 * Objects are written to a temporary name, made read-only, fsynced and
 * renamed: a name that exists always holds the complete object. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define DELTA_MAGIC "agent-traced-delta 1\n"

static at_result object_path(at_store *s, const char *hex, const char *ext, char *out, size_t cap)
{
    return store_path(s, out, cap, "objects/sha256/%.2s/%s.%s", hex, hex, ext);
}

static bool valid_hex(const char *hex)
{
    if (strlen(hex) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return false;
    return true;
}

bool object_exists(at_store *s, const char *hex)
{
    char p[PATH_MAX];
    struct stat sb;
    return valid_hex(hex) && ((object_path(s, hex, "ndjson", p, sizeof p) == AT_OK && stat(p, &sb) == 0) ||
                              (object_path(s, hex, "delta", p, sizeof p) == AT_OK && stat(p, &sb) == 0));
}

/* A delta's header. */
typedef struct {
    char base[AT_SHA256_HEX];
    uint64_t prefix, size;
    int depth;
    uint64_t data_off; /* where the tail starts in the file */
} delta_head;

/* Reads "<key> <decimal>\n" at *p. */
static bool take_num(const char **p, const char *key, uint64_t *out)
{
    size_t k = strlen(key);
    if (strncmp(*p, key, k) != 0 || (*p)[k] != ' ')
        return false;
    const char *q = *p + k + 1;
    uint64_t v = 0;
    if (*q < '0' || *q > '9')
        return false;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (*q != '\n')
        return false;
    *out = v;
    *p = q + 1;
    return true;
}

static bool read_delta_head(int fd, delta_head *h)
{
    char buf[256];
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k <= 0)
        return false;
    buf[k] = 0;
    const char *p = buf;
    if (strncmp(p, DELTA_MAGIC, sizeof DELTA_MAGIC - 1) != 0)
        return false;
    p += sizeof DELTA_MAGIC - 1;
    if (strncmp(p, "base ", 5) != 0 || strlen(p) < 5 + 64 + 1 || p[5 + 64] != '\n')
        return false;
    memcpy(h->base, p + 5, 64);
    h->base[64] = 0;
    p += 5 + 64 + 1;
    uint64_t depth;
    if (!valid_hex(h->base) || !take_num(&p, "prefix", &h->prefix) || !take_num(&p, "size", &h->size) ||
        !take_num(&p, "depth", &depth) || *p != '\n' || h->prefix > h->size || depth < 1 ||
        depth > OBJECT_MAX_DEPTH)
        return false;
    h->depth = (int)depth;
    h->data_off = (uint64_t)(p + 1 - buf);
    return true;
}

int object_depth(at_store *s, const char *hex)
{
    char p[PATH_MAX];
    struct stat sb;
    if (!valid_hex(hex))
        return -1;
    if (object_path(s, hex, "ndjson", p, sizeof p) == AT_OK && stat(p, &sb) == 0)
        return 0;
    if (object_path(s, hex, "delta", p, sizeof p) != AT_OK)
        return -1;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    delta_head h;
    bool ok = read_delta_head(fd, &h);
    close(fd);
    return ok ? h.depth : -1;
}

/* ---- writing ------------------------------------------------------------------ */

/* Creates the temporary file for an object; *tmp gets its name. */
static int object_tmp(at_store *s, const char *hex, char *tmp, size_t cap, at_error *err)
{
    char dir[PATH_MAX];
    if (store_path(s, dir, sizeof dir, "objects/sha256/%.2s", hex) != AT_OK ||
        store_path(s, tmp, cap, "objects/sha256/%.2s/.%s.tmp-XXXXXX", hex, hex) != AT_OK) {
        at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
        return -1;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        sys_fail(err, "cannot create", dir);
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        sys_fail(err, "cannot create", tmp);
        return -1;
    }
    flock(fd, LOCK_EX | LOCK_NB); /* a sweep leaves a held temporary alone */
    return fd;
}

/* Makes the temporary object visible under its name; hands the object's
 * and its directory's descriptors to the caller's sync round. */
static at_result object_publish(int fd, const char *tmp, const char *path, int *dirty, size_t *ndirty,
                                at_error *err)
{
    if (fchmod(fd, store_mode_object()) < 0 || rename(tmp, path) < 0) {
        at_result r = sys_fail(err, "cannot store object", path);
        unlink(tmp);
        close(fd);
        return r;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        at_result r = sys_fail(err, "cannot open", dir);
        close(fd);
        return r;
    }
    dirty[(*ndirty)++] = fd;
    dirty[(*ndirty)++] = dfd;
    return AT_OK;
}

/* Writes a source's bytes to fd. */
static at_result src_copy(const obj_src *src, uint64_t len, int fd)
{
    return src->mem ? at_write_all(fd, src->mem, len) : copy_range(src->fd, src->off, len, fd);
}

at_result object_put_full(at_store *s, const char *hex, const obj_src *src, uint64_t size, int *dirty,
                          size_t *ndirty, at_error *err)
{
    char p[PATH_MAX], tmp[PATH_MAX];
    if (object_exists(s, hex))
        return AT_OK; /* identical bytes are stored once */
    if (object_path(s, hex, "ndjson", p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    int fd = object_tmp(s, hex, tmp, sizeof tmp, err);
    if (fd < 0)
        return AT_ERR_IO;
    if (src_copy(src, size, fd) != AT_OK) {
        at_result r = sys_fail(err, "cannot write", tmp);
        close(fd);
        unlink(tmp);
        return r;
    }
    return object_publish(fd, tmp, p, dirty, ndirty, err);
}

/* Copies the first n bytes of object hex into fd (following its chain). */
static at_result object_copy_prefix(at_store *s, const char *hex, uint64_t n, int fd, int depth_guard)
{
    at_object_reader *rd;
    if (depth_guard > OBJECT_MAX_DEPTH * 2 || at_store_open_object(s, hex, &rd, NULL) != AT_OK)
        return AT_ERR_NOT_FOUND;
    char *buf = malloc(1 << 16);
    at_result r = buf ? AT_OK : AT_ERR_NOMEM;
    for (uint64_t off = 0; r == AT_OK && off < n;) {
        size_t want = n - off > (1 << 16) ? (1 << 16) : (size_t)(n - off);
        ssize_t k = at_object_read(rd, off, buf, want);
        if (k <= 0 || at_write_all(fd, buf, (size_t)k) != AT_OK)
            r = AT_ERR_IO;
        else
            off += (uint64_t)k;
    }
    free(buf);
    at_object_reader_free(rd);
    return r;
}

at_result object_put_delta(at_store *s, const char *hex, const char *base, uint64_t prefix,
                           const obj_src *src, uint64_t len, int *depth, int *dirty, size_t *ndirty,
                           at_error *err)
{
    char p[PATH_MAX], tmp[PATH_MAX];
    int d = object_exists(s, hex) ? object_depth(s, hex) : -2;
    if (d >= 0) {
        *depth = d;
        return AT_OK;
    }
    int bd = object_depth(s, base);
    if (bd < 0)
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "object %s is missing", base);
    bool full = bd + 1 > OBJECT_MAX_DEPTH;
    if (object_path(s, hex, full ? "ndjson" : "delta", p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "storage path too long");
    int fd = object_tmp(s, hex, tmp, sizeof tmp, err);
    if (fd < 0)
        return AT_ERR_IO;
    at_result r;
    if (full) {
        r = object_copy_prefix(s, base, prefix, fd, 0);
        *depth = 0;
    } else {
        char head[256];
        int k = snprintf(head, sizeof head, DELTA_MAGIC "base %s\nprefix %llu\nsize %llu\ndepth %d\n\n", base,
                         (unsigned long long)prefix, (unsigned long long)(prefix + len), bd + 1);
        r = at_write_all(fd, head, (size_t)k);
        *depth = bd + 1;
    }
    if (r == AT_OK)
        r = src_copy(src, len, fd);
    if (r != AT_OK) {
        r = sys_fail(err, "cannot write", tmp);
        close(fd);
        unlink(tmp);
        return r;
    }
    return object_publish(fd, tmp, p, dirty, ndirty, err);
}

at_result object_bases(at_store *s, const char *hex, char (**out)[AT_SHA256_HEX], size_t *n)
{
    char(*v)[AT_SHA256_HEX] = NULL;
    size_t count = 0;
    char cur[AT_SHA256_HEX];
    snprintf(cur, sizeof cur, "%s", hex);
    for (int guard = 0; guard <= OBJECT_MAX_DEPTH * 2; guard++) {
        char(*nv)[AT_SHA256_HEX] = realloc(v, (count + 1) * sizeof *v);
        if (!nv) {
            free(v);
            return AT_ERR_NOMEM;
        }
        v = nv;
        memcpy(v[count++], cur, AT_SHA256_HEX);
        char p[PATH_MAX];
        if (object_path(s, cur, "delta", p, sizeof p) != AT_OK)
            break;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break; /* full (or missing): the chain ends */
        delta_head h;
        bool ok = read_delta_head(fd, &h);
        close(fd);
        if (!ok)
            break;
        memcpy(cur, h.base, AT_SHA256_HEX);
    }
    *out = v;
    *n = count;
    return AT_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct {
    int fd;
    uint64_t file_off; /* where the extent's bytes are in fd */
    uint64_t len;
} extent;

struct at_object_reader {
    extent *ext;
    uint64_t *start; /* object offset of each extent */
    size_t n;
    uint64_t size;
    struct sdb_reader *db; /* non-NULL: read from the database (database.c) */
};

at_object_reader *object_reader_db(struct sdb_reader *r)
{
    at_object_reader *rd = calloc(1, sizeof *rd);
    if (rd) {
        rd->db = r;
        rd->size = sdb_reader_size(r);
    }
    return rd;
}

void at_object_reader_free(at_object_reader *rd)
{
    if (!rd)
        return;
    sdb_reader_free(rd->db);
    for (size_t i = 0; i < rd->n; i++)
        close(rd->ext[i].fd);
    free(rd->ext);
    free(rd->start);
    free(rd);
}

uint64_t at_object_size(const at_object_reader *rd)
{
    return rd->size;
}

static at_result add_extent(at_object_reader *rd, int fd, uint64_t off, uint64_t len)
{
    extent *ne = realloc(rd->ext, (rd->n + 1) * sizeof *ne);
    if (!ne)
        return AT_ERR_NOMEM;
    rd->ext = ne;
    uint64_t *ns = realloc(rd->start, (rd->n + 1) * sizeof *ns);
    if (!ns)
        return AT_ERR_NOMEM;
    rd->start = ns;
    rd->ext[rd->n] = (extent){fd, off, len};
    rd->start[rd->n] = rd->size;
    rd->n++;
    rd->size += len;
    return AT_OK;
}

/* Adds the first `limit` bytes of object hex to rd. */
static at_result resolve(at_store *s, const char *hex, uint64_t limit, at_object_reader *rd, int guard)
{
    char p[PATH_MAX];
    if (guard > OBJECT_MAX_DEPTH * 2 || !valid_hex(hex))
        return AT_ERR_NOT_FOUND;
    if (object_path(s, hex, "ndjson", p, sizeof p) != AT_OK)
        return AT_ERR_TOO_BIG;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) < 0) {
            close(fd);
            return AT_ERR_IO;
        }
        uint64_t len = (uint64_t)sb.st_size < limit ? (uint64_t)sb.st_size : limit;
        at_result r = add_extent(rd, fd, 0, len);
        if (r != AT_OK)
            close(fd);
        return r;
    }
    if (object_path(s, hex, "delta", p, sizeof p) != AT_OK)
        return AT_ERR_TOO_BIG;
    if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? AT_ERR_NOT_FOUND : AT_ERR_IO;
    delta_head h;
    if (!read_delta_head(fd, &h)) {
        close(fd);
        return AT_ERR_IO;
    }
    uint64_t from_base = h.prefix < limit ? h.prefix : limit;
    at_result r = from_base ? resolve(s, h.base, from_base, rd, guard + 1) : AT_OK;
    uint64_t tail = h.size - h.prefix;
    uint64_t want = limit > h.prefix ? (limit - h.prefix < tail ? limit - h.prefix : tail) : 0;
    if (r == AT_OK && want)
        r = add_extent(rd, fd, h.data_off, want);
    else
        close(fd);
    return r;
}

at_object_reader *object_reader_empty(void)
{
    return calloc(1, sizeof(at_object_reader));
}

at_result at_store_open_object(at_store *s, const char *hex, at_object_reader **out, at_error *err)
{
    *out = NULL;
    if (s->db)
        return sdb_open_object(s, hex, out, err);
    at_object_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    at_result r = resolve(s, hex, UINT64_MAX, rd, 0);
    if (r != AT_OK) {
        at_object_reader_free(rd);
        return r == AT_ERR_NOT_FOUND ? at_error_set(err, r, -1, "no object %.64s", hex)
                                     : at_error_set(err, r, -1, "cannot read object %.64s", hex);
    }
    *out = rd;
    return AT_OK;
}

ssize_t at_object_read(at_object_reader *rd, uint64_t pos, char *buf, size_t n)
{
    if (rd->db)
        return sdb_reader_read(rd->db, pos, buf, n);
    if (pos >= rd->size || n == 0)
        return 0;
    size_t lo = 0, hi = rd->n;
    while (hi - lo > 1) { /* the last extent starting at or before pos */
        size_t mid = (lo + hi) / 2;
        if (rd->start[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    const extent *e = &rd->ext[lo];
    uint64_t in = pos - rd->start[lo];
    size_t want = e->len - in < n ? (size_t)(e->len - in) : n;
    for (;;) {
        ssize_t k = pread(e->fd, buf, want, (off_t)(e->file_off + in));
        if (k < 0 && errno == EINTR)
            continue;
        return k;
    }
}
