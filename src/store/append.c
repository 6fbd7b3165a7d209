/* append.c - POST /events: events appended to a session as one new version.
 *
 * The batch is serialized first (the chain writer, prev_hash from the
 * current head), then, under the session lock: its object (a delta on the
 * current one: only the new bytes), the version record, the bytes appended
 * to events.ndjson with one O_APPEND write (what agent-strace does too).
 * After the lock is released one sync round makes it all durable, shared
 * with every concurrent writer (group commit): the next append of the same
 * session writes meanwhile. A crash before the round ends may keep the
 * record without its object; session_sync then drops that record (the
 * append was never acknowledged). The digest of the whole file is carried
 * from append to append (sess_cache), so an append reads nothing it did not
 * write. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAX 256 /* digest states kept per stripe */

static at_result mem_sink(void *ctx, const char *p, size_t n)
{
    return at_buf_add(ctx, p, n);
}

/* The digest state of the current version's bytes: cached, or read once.
 * Called with the session locked; the entry stays in the stripe. */
static at_result digest_state(at_store *s, sess_stripe *sp, const char *sid, const sess_state *st, int fd,
                              sess_cache **out, at_error *err)
{
    sess_cache **pp = &sp->cache, *c;
    for (c = *pp; c; pp = &c->next, c = *pp)
        if (strcmp(c->sid, sid) == 0)
            break;
    uint64_t version = st->have ? st->cur.version : 0, size = st->have ? st->cur.size : 0;
    if (c && c->version == version && c->size == size) {
        *out = c;
        return AT_OK;
    }
    if (!c) {
        if (sp->ncache >= CACHE_MAX) { /* drop the last entry (least recently added) */
            sess_cache **q = &sp->cache;
            while ((*q)->next)
                q = &(*q)->next;
            at_sha256_free((*q)->hash);
            free((*q)->sid);
            free(*q);
            *q = NULL;
            sp->ncache--;
        }
        c = calloc(1, sizeof *c);
        if (!c || !(c->sid = strdup(sid)) || !(c->hash = at_sha256_new())) {
            if (c)
                free(c->sid);
            free(c);
            return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        }
        c->next = sp->cache;
        sp->cache = c;
        sp->ncache++;
    }
    at_sha256_reset(c->hash);
    c->version = version;
    c->size = 0;
    events_facts f;
    at_result r = size ? events_scan(fd, &f, c->hash) : AT_OK;
    if (r != AT_OK || (size && f.size != size)) {
        c->version = UINT64_MAX; /* unusable */
        return at_error_set(err, r != AT_OK ? r : AT_ERR_IO, -1, "cannot read the events of %s", sid);
    }
    c->size = size;
    *out = c;
    (void)s;
    return AT_OK;
}

/* Undoes the creation of a session this append made and then could not
 * write a version to: all or nothing, so no session without its events. */
static void uncreate_session(at_store *s, const char *sid)
{
    char p[PATH_MAX];
    if (at_store_session_path(s, sid, "events.ndjson", p, sizeof p) == AT_OK)
        unlink(p);
    if (at_store_session_path(s, sid, "meta.json", p, sizeof p) == AT_OK)
        unlink(p);
    if (at_store_session_path(s, sid, NULL, p, sizeof p) == AT_OK)
        rmdir(p);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Makes session sid with fresh metadata and the events at events_path
 * (NULL: none yet). */
static at_result new_session(at_store *s, const char *sid, const char *events_path, at_error *err)
{
    at_meta m;
    at_meta_init(&m);
    at_result r = at_meta_set_string(&m, AT_META_SESSION_ID, sid, strlen(sid));
    if (r == AT_OK)
        r = store_create_session(s, sid, &m, events_path, err);
    at_meta_fini(&m);
    return r;
}

at_result at_store_append(at_store *s, const char *sid, const at_event_json *ev, size_t n, uint64_t *version,
                          at_error *err)
{
    at_result r = AT_OK;
    int slock = -1, fd = -1, hfd = -1, dirty[4];
    size_t nd = 0;
    sess_lock lk = {NULL, -1};
    at_stage stg = {.fd = -1, .path = NULL};
    at_buf out;
    at_chain_writer w;
    bool writer = false, created = false, recorded = false;
    at_buf_init(&out, 0);
    *version = 0;
    if (!at_session_id_ok(sid, strlen(sid)))
        return at_error_set(err, AT_ERR_INVALID, -1, "invalid session id");
    if (s->db)
        return sdb_append(s, sid, ev, n, version, err);
    if ((slock = lock_store(s, false)) < 0) {
        r = sys_fail(err, "cannot lock", s->root);
        goto out;
    }
    if ((r = lock_session(s, sid, &lk, err)) != AT_OK)
        goto out;
    /* A new session appears whole, its meta.json and its events together
     * (store_create_session with the staged events), once its object and
     * record are written: a crash or a full disk before never shows an
     * empty session. Records such a crash left (the history is read, not
     * synced: a sync installs metadata in the directory): the session is
     * made first and the sync takes them, as for any session. */
    bool fresh = !at_store_session_exists(s, sid);
    sess_state st;
    if (fresh && (r = history_load(s, sid, &st, err)) != AT_OK)
        goto out;
    if (fresh && st.have) {
        fresh = false;
        if ((r = new_session(s, sid, NULL, err)) != AT_OK)
            goto out;
        created = true;
    }
    if (!fresh && (r = session_sync_as(s, sid, &st, true, err)) != AT_OK)
        goto out;
    char p[PATH_MAX];
    if ((r = at_store_session_path(s, sid, "events.ndjson", p, sizeof p)) != AT_OK)
        goto out;
    if (fresh) {
        if ((r = at_store_stage(s, &stg, err)) != AT_OK)
            goto out;
        fd = stg.fd;
        stg.fd = -1; /* closed as fd */
        if (fchmod(fd, store_mode_file()) < 0) {
            r = sys_fail(err, "cannot chmod", stg.path);
            goto out;
        }
    } else if ((fd = open(p, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        r = sys_fail(err, "cannot open", p);
        goto out;
    }
    sess_cache *dc = NULL;
    if ((r = digest_state(s, lk.stripe, sid, &st, fd, &dc, err)) != AT_OK)
        goto out;

    /* Serialize the whole batch first: one write, nothing partial. */
    bool ends_nl = true;
    if (st.have && st.cur.size) {
        char c;
        ends_nl = pread(fd, &c, 1, (off_t)st.cur.size - 1) == 1 && c == '\n';
    }
    if (!ends_nl && (r = at_buf_addc(&out, '\n')) != AT_OK)
        goto out;
    if ((r = at_chain_writer_init(&w, mem_sink, &out, st.have && st.cur.have_head ? st.cur.head : NULL)) !=
        AT_OK)
        goto out;
    writer = true;
    for (size_t i = 0; i < n && r == AT_OK; i++)
        r = at_chain_write(&w, &ev[i]);
    if (r != AT_OK) {
        at_error_set(err, r, -1, "cannot serialize events");
        goto out;
    }

    /* The new version's digest: the carried state plus the new bytes. */
    at_sha256 *h = at_sha256_new();
    if (!h) {
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        goto out;
    }
    at_sha256_copy(h, dc->hash);
    at_sha256_update(h, out.data, out.len);
    at_sha256 *next_state = at_sha256_new();
    if (!next_state) {
        at_sha256_free(h);
        r = at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
        goto out;
    }
    at_sha256_copy(next_state, h);
    uint8_t digest[AT_SHA256_LEN];
    at_sha256_final(h, digest);
    at_sha256_free(h);
    char hex[AT_SHA256_HEX];
    at_hex(digest, AT_SHA256_LEN, hex);

    int depth = 0;
    obj_src src = {-1, 0, out.data};
    if (st.have)
        r = object_put_delta(s, hex, st.object, st.cur.size, &src, out.len, &depth, dirty, &nd, err);
    else
        r = object_put_full(s, hex, &src, out.len, dirty, &nd, err);
    if (r != AT_OK) {
        at_sha256_free(next_state);
        goto out;
    }

    sess_state next = st;
    next.have = true;
    next.cur = (at_version){
        .version = st.have ? st.cur.version + 1 : 1,
        .events = (st.have ? st.cur.events : 0) + n,
        .size = (st.have ? st.cur.size : 0) + out.len,
        .have_head = true,
        .transcript_bytes = -1,
        .cause = AT_CAUSE_APPEND,
        .time = now_seconds(),
    };
    memcpy(next.cur.events_sha256, digest, AT_SHA256_LEN);
    memcpy(next.cur.head, w.head, AT_SHA256_LEN);
    memcpy(next.object, hex, AT_SHA256_HEX);
    next.depth = depth;
    next.end_len = 0;
    struct stat fsb;
    off_t hist_before = -1, events_before = fstat(fd, &fsb) == 0 ? fsb.st_size : -1;
    if ((r = history_add(s, sid, &next, &hfd, &hist_before, err)) != AT_OK) {
        at_sha256_free(next_state);
        goto out;
    }
    recorded = true;
    if (at_write_all(fd, out.data, out.len) != AT_OK) {
        r = sys_fail(err, "cannot append to", p);
        at_sha256_free(next_state);
        dc->version = UINT64_MAX;
        /* A failed append (a full disk: AT_ERR_NO_SPACE) leaves nothing:
         * the file and the history are cut back to the current version
         * (shrinking needs no space). Should a cut fail, the record says
         * more than the file holds and the next sync rebuilds the file
         * from the object. */
        if (hist_before >= 0 && events_before >= 0 && ftruncate(fd, events_before) == 0 &&
            ftruncate(hfd, hist_before) != 0) {
            /* the record stays: the rebuild above */
        }
        goto out;
    }
    if (fresh && (r = new_session(s, sid, stg.path, err)) != AT_OK) {
        at_sha256_free(next_state);
        dc->version = UINT64_MAX;
        if (hist_before >= 0 && ftruncate(hfd, hist_before) != 0) {
            /* the record stays: the session is made, as above, on the next append */
        } else if (hist_before == 0) {
            history_drop_if_empty(s, sid); /* a first version: no history at all */
        }
        goto out;
    }
    if (fresh) { /* the staged file is the session's events.ndjson now */
        free(stg.path);
        stg.path = NULL;
    }
    struct stat sb;
    file_stamp fs;
    if (fstat(fd, &sb) == 0) {
        stamp_of(&sb, &fs);
        if (fs.size == next.cur.size && history_seen(s, sid, next.cur.version, &fs, NULL) != AT_OK) {
            /* without the stamp the next sync reads the file once: harmless */
        }
    }
    at_sha256_free(dc->hash);
    dc->hash = next_state;
    dc->version = next.cur.version;
    dc->size = next.cur.size;
    *version = next.cur.version;
    /* Object, record and file reach the disk together, after the lock is
     * released: the next append of this session writes meanwhile and shares
     * the round. */
    dirty[nd++] = hfd;
    dirty[nd++] = fd;
    hfd = fd = -1;
    unlock_session(&lk);
    unlock_store(slock);
    slock = -1;
    r = sync_wait(&s->sync, dirty, nd, err);
    if (r == AT_OK)
        store_notify(s, sid, &next.cur);
out:
    at_stage_discard(&stg);
    for (size_t i = 0; i < nd; i++)
        close(dirty[i]);
    if (hfd >= 0)
        close(hfd);
    if (fd >= 0)
        close(fd);
    if (writer)
        at_chain_writer_fini(&w);
    if (r != AT_OK && created && !recorded)
        uncreate_session(s, sid);
    unlock_session(&lk);
    unlock_store(slock);
    at_buf_fini(&out);
    return r;
}
