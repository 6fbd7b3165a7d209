/* sess.c - keeping a session's events.ndjson and its history in agreement,
 * and reading versions.
 *
 * events.ndjson is shared: agent-strace appends to it with a plain
 * open(..., "a") and no lock, and a crash can stop one of our commits
 * between its version record and the file. Before a session is read or
 * written, session_sync compares the file's stamp (inode, size, mtime,
 * ctime) with the one recorded for the current version:
 *   - the same: nothing to do (one stat);
 *   - the stamp recorded before the current version, or other bytes while
 *     no stamp was recorded after it: our last commit was cut short before
 *     or while it wrote the file; it is rebuilt from the object;
 *   - anything else: the file is read; the same bytes as the current
 *     version (a touch, a copy) only update the stamp; other bytes become a
 *     new version of cause external, stored as a delta when they continue
 *     the current version;
 *   - no file while versions exist: rebuilt from the object (nothing that
 *     was stored is dropped because a file went missing). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static at_result events_path(at_store *s, const char *sid, char *p, size_t cap, at_error *err)
{
    if (at_store_session_path(s, sid, "events.ndjson", p, cap) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    return AT_OK;
}

static at_result stamp_path(const char *p, file_stamp *fs)
{
    struct stat sb;
    memset(fs, 0, sizeof *fs);
    if (stat(p, &sb) == 0) {
        stamp_of(&sb, fs);
        return AT_OK;
    }
    return errno == ENOENT ? AT_OK : AT_ERR_IO;
}

/* Writes the current version's bytes to a fresh events.ndjson. */
static at_result rebuild(at_store *s, const char *sid, sess_state *st, const char *path, at_error *err)
{
    char tmp[PATH_MAX];
    if (at_store_session_path(s, sid, ".events.ndjson.tmp-XXXXXX", tmp, sizeof tmp) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    at_object_reader *rd;
    at_result r = at_store_open_object(s, st->object, &rd, err);
    if (r != AT_OK)
        return r;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        at_object_reader_free(rd);
        return sys_fail(err, "cannot create", tmp);
    }
    flock(fd, LOCK_EX | LOCK_NB);
    char *buf = malloc(1 << 16);
    r = buf ? AT_OK : AT_ERR_NOMEM;
    for (uint64_t off = 0; r == AT_OK && off < at_object_size(rd);) {
        ssize_t k = at_object_read(rd, off, buf, 1 << 16);
        if (k <= 0 || at_write_all(fd, buf, (size_t)k) != AT_OK)
            r = AT_ERR_IO;
        else
            off += (uint64_t)k;
    }
    free(buf);
    at_object_reader_free(rd);
    if (r == AT_OK && (fchmod(fd, store_mode_file()) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
        r = AT_ERR_IO;
    if (r != AT_OK) {
        r = sys_fail(err, "cannot rebuild", path);
        close(fd);
        unlink(tmp);
        return r;
    }
    close(fd);
    if (fsync_dir(path) != AT_OK)
        return sys_fail(err, "cannot sync the directory of", path);
    file_stamp fs;
    if (stamp_path(path, &fs) != AT_OK)
        return sys_fail(err, "cannot stat", path);
    st->seen = fs;
    st->have_seen = true;
    return history_seen(s, sid, st->cur.version, &fs, err);
}

/* Does the file (size bytes) continue the current version: its first bytes
 * are the version's object, and more follow? (agent-strace appends) */
static bool file_continues(at_store *s, const sess_state *st, int fd, uint64_t size)
{
    bool continues = false;
    if (!st->have || size <= st->cur.size)
        return false;
    at_object_reader *rd;
    if (at_store_open_object(s, st->object, &rd, NULL) == AT_OK) {
        char *a = malloc(1 << 16), *b = malloc(1 << 16);
        continues = a && b;
        for (uint64_t off = 0; continues && off < st->cur.size;) {
            size_t want = st->cur.size - off > (1 << 16) ? (1 << 16) : (size_t)(st->cur.size - off);
            ssize_t ka = at_object_read(rd, off, a, want); /* may be short: a delta's base ends */
            ssize_t kb = ka > 0 ? pread(fd, b, (size_t)ka, (off_t)off) : -1;
            continues = ka > 0 && kb == ka && memcmp(a, b, (size_t)ka) == 0;
            off += ka > 0 ? (uint64_t)ka : 0;
        }
        free(a);
        free(b);
        at_object_reader_free(rd);
    }
    return continues;
}

/* Records what another program made of events.ndjson as a new version. */
static at_result take_external(at_store *s, const char *sid, sess_state *st, int fd, const events_facts *f,
                               bool continues, at_error *err)
{
    int dirty[4], hfd = -1;
    size_t nd = 0;
    char hex[AT_SHA256_HEX];
    at_hex(f->sha256, AT_SHA256_LEN, hex);
    obj_src src = {fd, 0, NULL};
    at_result r;
    int depth = 0;
    if (continues) {
        src.off = st->cur.size;
        r = object_put_delta(s, hex, st->object, st->cur.size, &src, f->size - st->cur.size, &depth, dirty,
                             &nd, err);
    } else {
        r = object_put_full(s, hex, &src, f->size, dirty, &nd, err);
    }
    if (r == AT_OK)
        r = sync_wait(&s->sync, dirty, nd, err);
    for (size_t i = 0; i < nd; i++)
        close(dirty[i]);
    if (r != AT_OK)
        return r;
    sess_state next = *st;
    next.have = true;
    next.cur = (at_version){
        .version = st->have ? st->cur.version + 1 : 1,
        .events = f->lines,
        .size = f->size,
        .have_head = f->have_head,
        .transcript_bytes = -1,
        .cause = AT_CAUSE_EXTERNAL,
        .time = now_seconds(),
    };
    memcpy(next.cur.events_sha256, f->sha256, AT_SHA256_LEN);
    memcpy(next.cur.head, f->head, AT_SHA256_LEN);
    memcpy(next.object, hex, AT_SHA256_HEX);
    next.depth = depth;
    next.end_len = 0; /* not the import's session_end: never extended by an upload */
    if ((r = history_add(s, sid, &next, &hfd, NULL, err)) == AT_OK)
        r = sync_wait(&s->sync, &hfd, 1, err);
    if (hfd >= 0)
        close(hfd);
    if (r != AT_OK)
        return r;
    *st = next;
    store_notify(s, sid, &next.cur);
    return AT_OK;
}

at_result session_sync(at_store *s, const char *sid, sess_state *st, at_error *err)
{
    return session_sync_as(s, sid, st, false, err);
}

at_result session_sync_as(at_store *s, const char *sid, sess_state *st, bool writer, at_error *err)
{
    char p[PATH_MAX];
    at_result r = history_load(s, sid, st, err);
    /* A record whose object is missing was cut short by a crash before its
     * sync round: never acknowledged, it goes (and any after it). */
    while (r == AT_OK && st->have && !object_exists(s, st->object)) {
        if ((r = history_drop_from(s, sid, st->cur.version, err)) == AT_OK)
            r = history_load(s, sid, st, err);
    }
    if (r != AT_OK || (r = events_path(s, sid, p, sizeof p, err)) != AT_OK)
        return r;
    file_stamp fs;
    if (stamp_path(p, &fs) != AT_OK)
        return sys_fail(err, "cannot stat", p);
    if (st->have && st->have_seen && stamp_equal(&fs, &st->seen))
        return AT_OK;
    /* a commit cut short after its version record: its metadata */
    if (st->have && (r = store_install_meta(s, sid, st->cur.version, err)) != AT_OK)
        return r;
    if (!fs.exists) {
        if (!st->have)
            return AT_OK; /* a session without events yet */
        return rebuild(s, sid, st, p, err);
    }
    if (st->have && st->have_prev_seen && stamp_equal(&fs, &st->prev_seen))
        return rebuild(s, sid, st, p, err); /* our commit stopped before replacing the file */
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot open", p);
    events_facts f;
    if ((r = events_scan(fd, &f, NULL)) != AT_OK) {
        close(fd);
        return at_error_set(err, r, -1, "cannot read %s", p);
    }
    if (!st->have && f.size == 0) {
        close(fd);
        return AT_OK; /* an empty file: still no version */
    }
    int continues = -1; /* file_continues(), once it was asked */
    if (st->have && f.size == st->cur.size && memcmp(f.sha256, st->cur.events_sha256, AT_SHA256_LEN) == 0) {
        close(fd); /* the same bytes: only the stamp is new */
    } else if (st->have && !st->have_seen && !(continues = file_continues(s, st, fd, f.size))) {
        /* No stamp was recorded after the last version: its commit stopped
         * while writing the file. The version is in its object. (A file
         * that holds the whole version and more: the commit finished, then
         * another program appended; that is a version of its own, below.) */
        close(fd);
        return rebuild(s, sid, st, p, err);
    } else if (!f.ends_nl && !writer) {
        /* another program is still writing its last line: not a version
         * yet, and the stamp stays old so the next sync looks again (a
         * writer about to append takes the file as it is, as agent-strace
         * does: its line ends the unterminated one) */
        close(fd);
        return AT_OK;
    } else {
        r = take_external(s, sid, st, fd, &f, continues >= 0 ? continues : file_continues(s, st, fd, f.size),
                          err);
        close(fd);
        if (r != AT_OK)
            return r;
    }
    /* the stamp as it is now: a writer still appending makes the next sync
     * look again */
    st->seen = fs;
    st->have_seen = true;
    return history_seen(s, sid, st->cur.version, &fs, err);
}

/* ---- reading ---------------------------------------------------------------------- */

/* Locks, syncs and unlocks a session: what every reader does first. */
static at_result sync_for_read(at_store *s, const char *sid, sess_state *st, at_error *err)
{
    if (!at_store_session_exists(s, sid))
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", sid);
    int slock = lock_store(s, false);
    sess_lock lk;
    at_result r = lock_session(s, sid, &lk, err);
    if (r == AT_OK) {
        r = session_sync(s, sid, st, err);
        unlock_session(&lk);
    }
    unlock_store(slock);
    return r;
}

at_result at_store_versions(at_store *s, const char *sid, at_version **out, size_t *n, at_error *err)
{
    sess_state st;
    *out = NULL;
    *n = 0;
    if (s->db)
        return sdb_versions(s, sid, out, n, err);
    at_result r = sync_for_read(s, sid, &st, err);
    return r != AT_OK ? r : history_list(s, sid, out, NULL, n, err);
}

at_result at_store_current(at_store *s, const char *sid, at_version *v, bool *have, at_error *err)
{
    sess_state st;
    if (s->db) {
        at_version *vs;
        size_t n;
        at_result r = sdb_versions(s, sid, &vs, &n, err);
        *have = r == AT_OK && n > 0;
        if (*have)
            *v = vs[n - 1];
        free(vs);
        return r;
    }
    at_result r = sync_for_read(s, sid, &st, err);
    *have = r == AT_OK && st.have;
    if (*have)
        *v = st.cur;
    return r;
}

/* An empty reader: a session that has no events yet. */
static at_result empty_reader(at_store *s, at_object_reader **out, at_error *err);

at_result at_store_open_version(at_store *s, const char *sid, uint64_t version, at_object_reader **out,
                                at_error *err)
{
    sess_state st;
    *out = NULL;
    if (s->db)
        return sdb_open_version(s, sid, version, out, err);
    at_result r = sync_for_read(s, sid, &st, err);
    if (r != AT_OK)
        return r;
    if (version == 0 && !st.have)
        return empty_reader(s, out, err);
    char hex[AT_SHA256_HEX];
    if (version == 0)
        memcpy(hex, st.object, sizeof hex);
    else if ((r = history_object(s, sid, version, hex, err)) != AT_OK)
        return r;
    return at_store_open_object(s, hex, out, err);
}

static at_result empty_reader(at_store *s, at_object_reader **out, at_error *err)
{
    (void)s;
    *out = object_reader_empty();
    return *out ? AT_OK : at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
}
