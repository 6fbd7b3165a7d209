/* commit.c - making an import visible: uploads fast-forward, never rewind.
 *
 * With cur the current version's lines and new the lines of the import:
 *   - new == cur, or new without its closing session_end is a prefix of
 *     cur (an older snapshot, or the same transcript with appends made
 *     since): unchanged, nothing written ("stale" when cur holds more);
 *   - cur ends with the import's session_end and cur without it is a
 *     prefix of new (the transcript grew): extended, stored as a delta on
 *     cur's object;
 *   - anything else: replaced, a new full object; the old versions stay.
 * Comparing prefixes reads both files; a full upload reads its input
 * anyway. A resumed (incremental) import never compares: its staged file
 * holds only what follows the first body_bytes bytes of cur.
 *
 * Subagent links: a parent's transcript names the tool calls that spawned
 * its subagents (links/<parent>); a child's meta gets its parent_event_id
 * and depth from them, whichever of the two is committed second. */
#include "store_int.h"

#include "agenttrace/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- subagent links ------------------------------------------------------ */

/* links/<parent> holds one JSON array ["<agent id>", "<event id>"] per line. */
static at_result write_links(at_store *s, const char *sid, const at_import_result *res, at_error *err)
{
    char p[PATH_MAX];
    if (s->db)
        return sdb_links_put(s, sid, res, err);
    if (store_path(s, p, sizeof p, ".agent-traced/links/%s", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (!res->nlinks) {
        unlink(p);
        return AT_OK;
    }
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = AT_OK;
    for (size_t i = 0; r == AT_OK && i < res->nlinks; i++) {
        if ((r = at_buf_addc(&b, '[')) == AT_OK &&
            (r = at_json_write_wtf8(&b, res->links[i].agent_id, strlen(res->links[i].agent_id))) == AT_OK &&
            (r = at_buf_addc(&b, ',')) == AT_OK &&
            (r = at_json_write_wtf8(&b, res->links[i].event_id, res->links[i].event_id_len)) == AT_OK)
            r = at_buf_add(&b, "]\n", 2);
    }
    if (r == AT_OK)
        r = at_write_file_atomic(p, b.data ? b.data : "", b.len, err);
    at_buf_fini(&b);
    return r;
}

/* Calls fn with each link of parent's links file (agent id, decoded event
 * id) until it returns true. Returns false when there is no such file. */
typedef bool (*link_fn)(void *ctx, const at_buf *agent, const at_buf *event);
static bool each_link(at_store *s, const char *parent, link_fn fn, void *ctx)
{
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/links/%s", parent) != AT_OK)
        return false;
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf a, e;
    at_buf_init(&a, 0);
    at_buf_init(&e, 0);
    bool stop = false;
    while (!stop && (n = getline(&line, &cap, f)) > 0) {
        if (at_json_parse(&d, line, (size_t)n, NULL) != AT_OK || !at_json_is(&d, 0, AT_JSON_ARRAY) ||
            d.nodes[0].len != 2)
            continue;
        uint32_t k = at_json_first(&d, 0), v = at_json_next(&d, 0, k);
        at_buf_reset(&a);
        at_buf_reset(&e);
        if (at_json_is(&d, k, AT_JSON_STRING) && at_json_is(&d, v, AT_JSON_STRING) &&
            at_json_str_decode(&d, k, &a) == AT_OK && at_json_str_decode(&d, v, &e) == AT_OK &&
            e.len <= AT_MAX_EVENT_ID_BYTES)
            stop = fn(ctx, &a, &e);
    }
    at_buf_fini(&a);
    at_buf_fini(&e);
    at_json_doc_fini(&d);
    free(line);
    fclose(f);
    return true;
}

typedef struct {
    const char *agent_id;
    char *out;
    size_t *outn;
    bool found;
} link_want;

static bool link_match(void *ctx, const at_buf *agent, const at_buf *event)
{
    link_want *w = ctx;
    if (agent->len != strlen(w->agent_id) || (agent->len && memcmp(agent->data, w->agent_id, agent->len) != 0))
        return false;
    memset(w->out, 0, AT_MAX_EVENT_ID_BYTES + 1);
    if (event->len)
        memcpy(w->out, event->data, event->len);
    *w->outn = event->len;
    w->found = true;
    return true;
}

/* The event id of the tool call in `parent` that spawned `agent_id`, if
 * the parent's links are known. Returns true when found (*outn may be 0). */
static bool find_link(at_store *s, const char *parent, const char *agent_id,
                      char out[AT_MAX_EVENT_ID_BYTES + 1], size_t *outn)
{
    if (s->db)
        return sdb_link_find(s, parent, agent_id, out, outn);
    link_want w = {agent_id, out, outn, false};
    each_link(s, parent, link_match, &w);
    return w.found;
}

typedef struct {
    at_import_link *v;
    size_t n, cap;
    bool oom;
} link_list;

static bool link_collect(void *ctx, const at_buf *agent, const at_buf *event)
{
    link_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        at_import_link *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return l->oom = true;
        l->v = v;
        l->cap = cap;
    }
    at_import_link *k = &l->v[l->n];
    memset(k, 0, sizeof *k);
    if (!(k->agent_id = strndup(agent->data ? agent->data : "", agent->len)))
        return l->oom = true;
    if (event->len)
        memcpy(k->event_id, event->data, event->len);
    k->event_id_len = event->len;
    l->n++;
    return false;
}

at_result at_store_links(at_store *s, const char *parent, at_import_link **out, size_t *n, at_error *err)
{
    *out = NULL;
    *n = 0;
    if (s->db)
        return store_db_unsupported(err, "reading links from the store");
    link_list l = {0};
    each_link(s, parent, link_collect, &l);
    if (l.oom) {
        at_store_links_free(l.v, l.n);
        return at_error_set(err, AT_ERR_NOMEM, -1, "out of memory");
    }
    *out = l.v;
    *n = l.n;
    return AT_OK;
}

void at_store_links_free(at_import_link *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].agent_id);
    free(v);
}

static int session_depth(at_store *s, const char *sid)
{
    at_meta m;
    at_meta_init(&m);
    int depth = -1;
    if (at_store_meta_load(s, sid, &m, NULL) == AT_OK)
        depth = (int)at_meta_get_number(&m, AT_META_DEPTH, 0.0);
    at_meta_fini(&m);
    return depth;
}

/* A parent just arrived: complete the metas of its stored subagents. */
static at_result complete_children(at_store *s, const char *sid, const at_import_result *res, int depth,
                                   at_error *err)
{
    for (size_t i = 0; i < res->nlinks; i++) {
        char child[AT_MAX_SESSION_ID + 2];
        int k = snprintf(child, sizeof child, "agent-%s.%s", res->links[i].agent_id, sid);
        if (k < 0 || (size_t)k >= sizeof child || !at_session_id_ok(child, strlen(child)))
            continue;
        at_meta m;
        at_meta_init(&m);
        at_result r = at_store_meta_load(s, child, &m, NULL);
        if (r == AT_OK) {
            r = at_meta_set_int(&m, AT_META_DEPTH, depth + 1);
            if (r == AT_OK && res->links[i].event_id_len)
                r = at_meta_set_string(&m, AT_META_PARENT_EVENT_ID, res->links[i].event_id,
                                       res->links[i].event_id_len);
            if (r == AT_OK)
                r = store_write_meta(s, child, &m, err);
        }
        at_meta_fini(&m);
        if (r != AT_OK && r != AT_ERR_NOT_FOUND)
            return r;
    }
    return AT_OK;
}

/* The subagent fields of the child's meta, when its parent is known. */
static at_result subagent_fields(at_store *s, at_import_result *res, at_commit_info *info)
{
    if (!res->parent_session_id)
        return AT_OK;
    int pdepth = session_depth(s, res->parent_session_id);
    info->depth = pdepth >= 0 ? pdepth + 1 : 1;
    at_result r = at_meta_set_int(&res->meta, AT_META_DEPTH, info->depth);
    if (r == AT_OK &&
        find_link(s, res->parent_session_id, res->agent_id, info->parent_event_id,
                  &info->parent_event_id_len) &&
        info->parent_event_id_len)
        r = at_meta_set_string(&res->meta, AT_META_PARENT_EVENT_ID, info->parent_event_id,
                               info->parent_event_id_len);
    return r;
}

/* ---- the commit ---------------------------------------------------------------- */

/* A database store's commit (database.c), with the subagent fields and
 * links as below. */
static at_result commit_database(at_store *s, at_stage *stg, at_import_result *res, at_commit_info *info,
                                 at_error *err)
{
    *info = (at_commit_info){.log_index = -1, .resumed_from = info->resumed_from};
    at_result r = subagent_fields(s, res, info);
    if (r != AT_OK) {
        at_stage_discard(stg);
        return at_error_set(err, r, -1, "out of memory");
    }
    if ((r = sdb_commit_import(s, stg, res, info, err)) != AT_OK || info->result == AT_UPLOAD_UNCHANGED)
        return r;
    if ((r = write_links(s, res->session_id, res, err)) == AT_OK && res->nlinks) {
        int pd = session_depth(s, res->session_id);
        r = complete_children(s, res->session_id, res, pd < 0 ? 0 : pd, err);
    }
    return r;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The importer state next to the history, for an incremental import. */
/* import.state: a line naming the version the state belongs to, then the
 * importer's state. A crash between a version and its state leaves a state
 * of an older version, which at_store_resume_state then refuses. */
#define STATE_TAG "agent-traced-import-state v"

static at_result save_state(at_store *s, const char *sid, const at_import_result *res, const at_version *v,
                            at_error *err)
{
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s/import.state", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    if (!res->state) {
        unlink(p);
        return AT_OK;
    }
    char hex[AT_SHA256_HEX];
    at_hex(v->events_sha256, AT_SHA256_LEN, hex);
    at_buf b;
    at_buf_init(&b, 0);
    at_result r = at_buf_printf(&b, STATE_TAG "%llu %s\n", (unsigned long long)v->version, hex);
    if (r == AT_OK)
        r = at_buf_add(&b, res->state, res->state_len);
    if (r == AT_OK)
        r = at_write_file_atomic(p, b.data, b.len, err);
    else
        at_error_set(err, r, -1, "out of memory");
    at_buf_fini(&b);
    return r;
}

/* The new events are cur's body (all but its session_end) and a session_end
 * of their own: lines that make no events moved the end. A longer
 * transcript than cur's is a later one (extended); a shorter or unknown one
 * is an older snapshot (unchanged). */
static bool moves_end_only(const sess_state *st, uint64_t new_body, const at_import_result *res)
{
    return st->end_len && new_body == st->cur.size - st->end_len && st->cur.transcript_bytes >= 0 &&
           res->bytes > (uint64_t)st->cur.transcript_bytes;
}

/* The cases decided without reading: no current version (created), the
 * same events (unchanged). */
static bool classify_at_once(const sess_state *st, uint64_t new_size, const at_import_result *res,
                             at_commit_info *info)
{
    if (!st->have)
        info->result = AT_UPLOAD_CREATED;
    else if (st->cur.size == new_size && memcmp(st->cur.events_sha256, res->events_sha256, AT_SHA256_LEN) == 0)
        info->result = AT_UPLOAD_UNCHANGED;
    else
        return false;
    return true;
}

/* Decides what the import is to the current version (see the top). For a
 * full import, *keep gets the length of cur's bytes the new version shares
 * (the delta's prefix) when extended. */
static at_result classify(at_store *s, const char *sid, const sess_state *st, int stage_fd, uint64_t new_size,
                          const at_import_result *res, at_commit_info *info, uint64_t *keep, at_error *err)
{
    *keep = 0;
    if (classify_at_once(st, new_size, res, info))
        return AT_OK;
    char p[PATH_MAX];
    if (at_store_session_path(s, sid, "events.ndjson", p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot open", p);
    at_result r = store_classify(st, fd, stage_fd, new_size, res, info, keep);
    close(fd);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "cannot compare with %s", p);
}

at_result store_classify(const sess_state *st, int fd, int stage_fd, uint64_t new_size, const at_import_result *res,
                         at_commit_info *info, uint64_t *keep)
{
    const at_version *cur = &st->cur;
    *keep = 0;
    if (classify_at_once(st, new_size, res, info))
        return AT_OK;
    events_facts nf;
    at_result r = events_tail(stage_fd, new_size, &nf);
    bool same = false;
    uint64_t new_body = new_size - nf.end_len;
    if (r == AT_OK && cur->size >= new_body)
        r = same_prefix(fd, stage_fd, new_body, &same);
    if (r == AT_OK && same && moves_end_only(st, new_body, res)) {
        info->result = AT_UPLOAD_EXTENDED; /* a later transcript: only its session_end moved */
        *keep = new_body;
    } else if (r == AT_OK && same) {
        info->result = AT_UPLOAD_UNCHANGED;
        info->stale = cur->events > res->events;
    } else if (r == AT_OK && st->end_len) {
        uint64_t cur_body = cur->size - st->end_len;
        same = false;
        if (cur_body <= new_size)
            r = same_prefix(fd, stage_fd, cur_body, &same);
        info->result = same ? AT_UPLOAD_EXTENDED : AT_UPLOAD_REPLACED;
        *keep = same ? cur_body : 0;
    } else {
        info->result = AT_UPLOAD_REPLACED;
    }
    return r;
}

/* The rules of the top for a resumed import, whose new events are cur's
 * first body_bytes bytes followed by the staged tail T. Only the few bytes
 * around the cut are compared: those cur holds after body_bytes (the events
 * the cut line of the last upload made, and its session_end) against T's
 * first bytes. *keep: cur's bytes an extension keeps; *skip: T's first bytes
 * that repeat them. */
static at_result classify_resumed(at_store *s, const char *sid, const sess_state *st, int stage_fd,
                                  uint64_t staged, const at_import_result *res, at_commit_info *info,
                                  uint64_t *keep, uint64_t *skip, at_error *err)
{
    const at_version *cur = &st->cur;
    uint64_t p0 = res->body_bytes, new_size = p0 + staged;
    *keep = *skip = 0;
    if (!st->have || p0 > cur->size)
        return at_error_set(err, AT_ERR_CONFLICT, -1, "the session changed since its import state was saved");
    if (cur->size == new_size && memcmp(cur->events_sha256, res->events_sha256, AT_SHA256_LEN) == 0) {
        info->result = AT_UPLOAD_UNCHANGED;
        return AT_OK;
    }
    char p[PATH_MAX];
    if (at_store_session_path(s, sid, "events.ndjson", p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(err, "cannot open", p);
    events_facts tf;
    at_result r = events_tail(stage_fd, staged, &tf);
    bool same = false;
    uint64_t new_body = new_size - tf.end_len;
    if (r == AT_OK && new_body <= cur->size)
        r = same_range(fd, p0, stage_fd, 0, new_body - p0, &same);
    if (r == AT_OK && same && moves_end_only(st, new_body, res)) {
        info->result = AT_UPLOAD_EXTENDED;
        *keep = new_body;
        *skip = new_body - p0;
    } else if (r == AT_OK && same) {
        info->result = AT_UPLOAD_UNCHANGED;
        info->stale = cur->events > res->events;
    } else if (r == AT_OK && st->end_len && cur->size - st->end_len >= p0 &&
               cur->size - st->end_len - p0 <= staged) {
        uint64_t cur_body = cur->size - st->end_len;
        same = false;
        r = same_range(fd, p0, stage_fd, 0, cur_body - p0, &same);
        info->result = same ? AT_UPLOAD_EXTENDED : AT_UPLOAD_REPLACED;
        if (same) {
            *keep = cur_body;
            *skip = cur_body - p0;
        }
    } else {
        info->result = AT_UPLOAD_REPLACED;
    }
    close(fd);
    return r == AT_OK ? AT_OK : at_error_set(err, r, -1, "cannot compare with %s", p);
}

/* For a resumed import: the staged tail becomes a whole events file (cur's
 * first body bytes, then the tail) in a new staging file. */
static at_result whole_file(at_store *s, const char *sid, at_stage *st, uint64_t body, at_error *err)
{
    char p[PATH_MAX];
    at_stage whole;
    if (at_store_session_path(s, sid, "events.ndjson", p, sizeof p) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    at_result r = at_store_stage(s, &whole, err);
    if (r != AT_OK)
        return r;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(st->fd, &sb) < 0 || copy_range(fd, 0, body, whole.fd) != AT_OK ||
        copy_range(st->fd, 0, (uint64_t)sb.st_size, whole.fd) != AT_OK)
        r = sys_fail(err, "cannot assemble the events of", sid);
    if (fd >= 0)
        close(fd);
    if (r != AT_OK) {
        at_stage_discard(&whole);
        return r;
    }
    at_stage_discard(st);
    *st = whole;
    return AT_OK;
}

at_result at_store_commit_import(at_store *s, at_stage *stg, at_import_result *res, at_commit_info *info,
                                 at_error *err)
{
    at_result r = AT_OK;
    at_version made;
    bool notify = false;
    int slock = -1, dirty[6], hfd = -1;
    size_t nd = 0;
    sess_lock lk = {NULL, -1};
    if (s->db)
        return commit_database(s, stg, res, info, err);
    uint64_t resumed_from = info->resumed_from; /* the one field the caller sets */
    memset(info, 0, sizeof *info);
    info->log_index = -1;
    info->resumed_from = resumed_from;
    const char *sid = res->session_id;
    if (!at_session_id_ok(sid, strlen(sid))) {
        r = at_error_set(err, AT_ERR_INVALID, -1, "invalid session id (empty, blank, with control characters or not UTF-8)");
        goto out;
    }
    if ((slock = lock_store(s, false)) < 0) {
        r = sys_fail(err, "cannot lock", s->root);
        goto out;
    }
    if ((r = lock_session(s, sid, &lk, err)) != AT_OK || (r = subagent_fields(s, res, info)) != AT_OK)
        goto out;
    bool exists = at_store_session_exists(s, sid);
    sess_state st;
    memset(&st, 0, sizeof st);
    if (exists && (r = session_sync_as(s, sid, &st, true, err)) != AT_OK)
        goto out;
    /* No directory but a history: a crash cut a creation short after its
     * version record (or the directory was removed by hand). That record
     * stays; the new version is numbered after it. */
    uint64_t base = 0;
    if (!exists) {
        r = history_load(s, sid, &st, err);
        while (r == AT_OK && st.have && !object_exists(s, st.object))
            if ((r = history_drop_from(s, sid, st.cur.version, err)) == AT_OK)
                r = history_load(s, sid, &st, err);
        if (r != AT_OK)
            goto out;
        base = st.have ? st.cur.version : 0;
        memset(&st, 0, sizeof st);
    }

    struct stat sb;
    if (fstat(stg->fd, &sb) < 0) {
        r = sys_fail(err, "cannot stat", stg->path);
        goto out;
    }
    uint64_t keep = 0, skip = 0, staged = (uint64_t)sb.st_size;
    if (res->body_bytes) {
        /* A resumed import: the state was taken from the current version,
         * which must still be current (another upload may have come in
         * while this one's body arrived). */
        if (!st.have || res->body_bytes > st.cur.size ||
            (info->resumed_from && info->resumed_from != st.cur.version)) {
            r = at_error_set(err, AT_ERR_CONFLICT, -1,
                             "the session changed during this upload (it resumed version %llu, now %llu): "
                             "send the transcript from the offset GET /sessions/%s/versions gives",
                             (unsigned long long)info->resumed_from,
                             (unsigned long long)(st.have ? st.cur.version : 0), sid);
            goto out;
        }
        if ((r = classify_resumed(s, sid, &st, stg->fd, staged, res, info, &keep, &skip, err)) != AT_OK)
            goto out;
        /* Extended: the file grows in place (only the tail is written).
         * Replaced: a whole new file. */
        if (info->result == AT_UPLOAD_REPLACED &&
            (r = whole_file(s, sid, stg, res->body_bytes, err)) != AT_OK)
            goto out;
        if (info->result != AT_UPLOAD_EXTENDED)
            staged += res->body_bytes;
    } else if ((r = classify(s, sid, &st, stg->fd, staged, res, info, &keep, err)) != AT_OK) {
        goto out;
    }
    if (st.have) {
        info->have_previous_head = st.cur.have_head;
        memcpy(info->previous_head, st.cur.head, AT_SHA256_LEN);
    }
    info->version = st.have ? st.cur.version : 0;
    if (info->result == AT_UPLOAD_UNCHANGED)
        goto out; /* nothing is written, the import state included: the
                   * recorded transcript length still says where to resume */

    /* The object, then the version record, then the files. */
    char hex[AT_SHA256_HEX];
    at_hex(res->events_sha256, AT_SHA256_LEN, hex);
    int depth = 0;
    obj_src src = {stg->fd, 0, NULL};
    bool in_place = res->body_bytes && info->result == AT_UPLOAD_EXTENDED;
    if (in_place) {
        /* the stage holds the tail only; its first skip bytes repeat what
         * cur holds up to keep (the events of the line the last upload cut) */
        src.off = skip;
        staged -= skip;
        r = object_put_delta(s, hex, st.object, keep, &src, staged, &depth, dirty, &nd, err);
    } else if (keep) {
        src.off = keep;
        r = object_put_delta(s, hex, st.object, keep, &src, staged - keep, &depth, dirty, &nd, err);
    } else {
        r = object_put_full(s, hex, &src, staged, dirty, &nd, err);
    }
    if (r != AT_OK)
        goto out;
    dirty[nd] = stg->fd; /* synced with the object: it becomes events.ndjson */
    if ((r = sync_wait(&s->sync, dirty, nd + 1, err)) != AT_OK)
        goto out;
    uint64_t new_size = in_place ? keep + staged : staged;

    events_facts tail;
    if ((r = events_tail(stg->fd, skip + staged, &tail)) != AT_OK) {
        at_error_set(err, r, -1, "cannot read %s", stg->path);
        goto out;
    }
    sess_state next = st;
    next.have = true;
    next.cur = (at_version){
        .version = st.have ? st.cur.version + 1 : base + 1,
        .events = res->events,
        .size = new_size,
        .have_head = res->events > 0,
        .transcript_bytes = (int64_t)res->bytes,
        .cause = AT_CAUSE_IMPORT,
        .time = now_seconds(),
    };
    memcpy(next.cur.events_sha256, res->events_sha256, AT_SHA256_LEN);
    memcpy(next.cur.head, res->head, AT_SHA256_LEN);
    memcpy(next.cur.transcript_sha256, res->transcript_sha256, AT_SHA256_LEN);
    memcpy(next.object, hex, AT_SHA256_HEX);
    next.depth = depth;
    next.end_len = tail.end_len;
    if ((r = store_stage_meta(s, sid, next.cur.version, &res->meta, err)) != AT_OK)
        goto out;
    if ((r = store_write_usage(s, sid, next.cur.version, res, err)) != AT_OK) {
        store_unstage_meta(s, sid, next.cur.version);
        goto out;
    }
    if ((r = history_add(s, sid, &next, &hfd, NULL, err)) != AT_OK) {
        /* no record: nothing may install this metadata later (a version
         * N made another way would otherwise get it on its next sync),
         * nor read this usage */
        store_unstage_meta(s, sid, next.cur.version);
        store_drop_usage(s, sid, next.cur.version);
        goto out;
    }
    if ((r = sync_wait(&s->sync, &hfd, 1, err)) != AT_OK)
        goto out;
    info->version = next.cur.version;
    made = next.cur;

    char p[PATH_MAX];
    if ((r = at_store_session_path(s, sid, "events.ndjson", p, sizeof p)) != AT_OK)
        goto out;
    if (in_place) {
        /* Cut the old session_end, write the tail: a crash in between
         * leaves no stamp after the record, and the next sync rebuilds the
         * file from the object. */
        int efd = open(p, O_WRONLY | O_CLOEXEC);
        if (efd < 0 || ftruncate(efd, (off_t)keep) < 0 || lseek(efd, (off_t)keep, SEEK_SET) < 0 ||
            copy_range(stg->fd, skip, staged, efd) != AT_OK || fsync(efd) < 0) {
            r = sys_fail(err, "cannot extend", p);
            if (efd >= 0)
                close(efd);
            goto out;
        }
        close(efd);
        info->kept_lines = res->body_lines;
        info->previous_size = st.cur.size;
        if ((r = store_install_meta(s, sid, next.cur.version, err)) != AT_OK)
            goto out;
    } else if (!exists) {
        if ((r = store_create_session_staged(s, sid, next.cur.version, stg->path, err)) != AT_OK)
            goto out;
    } else {
        if (rename(stg->path, p) < 0) {
            r = sys_fail(err, "cannot replace", p);
            goto out;
        }
        if (fsync_dir(p) != AT_OK) {
            r = sys_fail(err, "cannot sync the directory of", p);
            goto out;
        }
        if ((r = store_install_meta(s, sid, next.cur.version, err)) != AT_OK)
            goto out;
    }
    if (!in_place) {
        free(stg->path); /* renamed: nothing to discard */
        stg->path = NULL;
    }
    store_unstage_meta(s, sid, next.cur.version); /* meta.json is written */
    file_stamp fs;
    struct stat eb;
    if (stat(p, &eb) == 0) {
        stamp_of(&eb, &fs);
        info->events_inode = fs.ino;
        info->events_size = fs.size;
        if ((r = history_seen(s, sid, next.cur.version, &fs, err)) != AT_OK)
            goto out;
    }
    if ((r = save_state(s, sid, res, &next.cur, err)) != AT_OK ||
        (r = write_links(s, sid, res, err)) != AT_OK)
        goto out;
    if (res->nlinks) {
        int pd = session_depth(s, sid);
        r = complete_children(s, sid, res, pd < 0 ? 0 : pd, err);
    }
    notify = r == AT_OK;
out:
    for (size_t i = 0; i < nd; i++)
        close(dirty[i]);
    if (hfd >= 0)
        close(hfd);
    unlock_session(&lk);
    unlock_store(slock);
    at_stage_discard(stg);
    if (notify)
        store_notify(s, sid, &made);
    return r;
}

/* ---- incremental import ---------------------------------------------------------- */

at_result at_store_resume_state(at_store *s, const char *sid, uint64_t offset, char **state, size_t *len,
                                int64_t *recorded, uint64_t *version, at_error *err)
{
    *state = NULL;
    *len = 0;
    *recorded = -1;
    *version = 0;
    if (!at_session_id_ok(sid, strlen(sid)) || !at_store_session_exists(s, sid))
        return at_error_set(err, AT_ERR_NOT_FOUND, -1, "session not found: %s", sid);
    if (s->db)
        return sdb_resume_state(s, sid, offset, state, len, recorded, version, err);
    int slock = lock_store(s, false);
    sess_lock lk;
    sess_state st;
    at_result r = lock_session(s, sid, &lk, err);
    if (r == AT_OK) {
        r = session_sync(s, sid, &st, err);
        unlock_session(&lk);
    }
    unlock_store(slock);
    if (r != AT_OK)
        return r;
    if (!st.have || st.cur.cause != AT_CAUSE_IMPORT)
        return at_error_set(
            err, AT_ERR_CONFLICT, -1,
            "the current version of %s did not come from an import: upload the whole transcript", sid);
    *recorded = st.cur.transcript_bytes;
    if (st.cur.transcript_bytes < 0 || (uint64_t)st.cur.transcript_bytes != offset)
        return at_error_set(err, AT_ERR_CONFLICT, -1,
                            "offset %llu does not continue %s: its transcript has %lld bytes",
                            (unsigned long long)offset, sid, (long long)st.cur.transcript_bytes);
    char p[PATH_MAX];
    if (store_path(s, p, sizeof p, ".agent-traced/history/%s/import.state", sid) != AT_OK)
        return at_error_set(err, AT_ERR_TOO_BIG, -1, "session id too long for a path");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0)
            close(fd);
        return at_error_set(err, AT_ERR_CONFLICT, -1,
                            "no import state kept for %s: upload the whole transcript", sid);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf || pread(fd, buf, (size_t)sb.st_size, 0) != sb.st_size) {
        free(buf);
        close(fd);
        return at_error_set(err, AT_ERR_IO, -1, "cannot read %s", p);
    }
    close(fd);
    /* the state must be the current version's */
    buf[sb.st_size] = 0;
    char hex[AT_SHA256_HEX];
    at_hex(st.cur.events_sha256, AT_SHA256_LEN, hex);
    char want[sizeof STATE_TAG + 24 + AT_SHA256_HEX + 2];
    int k = snprintf(want, sizeof want, STATE_TAG "%llu %s\n", (unsigned long long)st.cur.version, hex);
    if (k <= 0 || (size_t)k >= sizeof want || (size_t)sb.st_size < (size_t)k ||
        memcmp(buf, want, (size_t)k) != 0) {
        free(buf);
        return at_error_set(err, AT_ERR_CONFLICT, -1,
                            "no import state kept for version %llu of %s: upload the whole transcript",
                            (unsigned long long)st.cur.version, sid);
    }
    memmove(buf, buf + k, (size_t)sb.st_size - (size_t)k);
    *state = buf;
    *len = (size_t)sb.st_size - (size_t)k;
    *version = st.cur.version;
    return AT_OK;
}
