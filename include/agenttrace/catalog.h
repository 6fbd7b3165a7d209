/* catalog.h - the session catalog: the sessions of a storage directory kept
 * in memory, so GET /health, GET /sessions and id prefix resolution need no
 * directory scan per request (catalog.c; design note at the top there).
 *
 * The storage directory is shared: agent-strace, `agent-traced import` and
 * other servers create, change and delete sessions in it at any time. The
 * catalog scans it once, then follows it with inotify; every call that
 * answers a question first applies what inotify reported, so a change that
 * finished before the call is visible to it. When inotify cannot follow (its
 * queue overflowed, watches ran out, the root was replaced) the catalog falls
 * back to rescanning or to a stat per unwatched session; answers stay exact.
 *
 * A session is a directory directly under root, not starting with '.', not
 * named "objects" or "workspaces", holding a regular file meta.json
 * (following symlinks, as sessions_scan does). Sessions are named by their
 * directory name.
 *
 * Thread-safe: every function but at_catalog_free may be called from any
 * number of threads at once. */
#ifndef AGENTTRACE_CATALOG_H
#define AGENTTRACE_CATALOG_H

#include "agenttrace/meta.h"
#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct at_catalog at_catalog;

/* How the catalog learns about changes. */
typedef enum {
    /* inotify, unless root is on a network or cluster filesystem (NFS,
     * SMB/CIFS, FUSE, 9p, Ceph, GFS2, OCFS2, AFS, Lustre), where inotify
     * does not see other hosts' writes, or no inotify instance is left
     * (/proc/sys/fs/inotify/max_user_instances): then AT_CATALOG_RESCAN. */
    AT_CATALOG_AUTO = 0,
    /* No inotify: every call lists root and stats each entry (what every
     * request cost before the catalog), re-reading only the meta.json files
     * whose identity changed; /sessions is still served from the cache
     * while nothing changed. */
    AT_CATALOG_RESCAN,
} at_catalog_mode;

/* Opens the catalog of the storage directory root: one scan, then inotify
 * keeps it current (at_catalog_open_mode with AT_CATALOG_AUTO). Returns
 * NULL with err filled when root cannot be opened as a directory or memory
 * runs out. */
at_catalog *at_catalog_open(const char *root, at_error *err);
at_catalog *at_catalog_open_mode(const char *root, at_catalog_mode mode, at_error *err);
/* Closes the inotify instance and frees everything; accepts NULL. No other
 * thread may be using the catalog. */
void at_catalog_free(at_catalog *c);

/* Number of sessions (directories holding a regular meta.json, readable or
 * not): what GET /health reports. 0 while root cannot be listed. */
uint64_t at_catalog_count(at_catalog *c);

/* Appends the GET /sessions body to out: a JSON array of every session's
 * meta (at_meta_write with AT_JSON_DEFAULT, joined by ", "), newest first:
 * started_at descending (NaN or unset as 0.0), then session_id descending
 * (the decoded meta session_id, else the directory name; UTF-8 byte order),
 * then the directory name descending. A session whose meta.json cannot be
 * read or parsed is left out (but still counted). The body is cached until
 * something changes, so this is a copy. AT_ERR_IO when root cannot be
 * listed, AT_ERR_NOMEM, AT_ERR_TOO_BIG past out's cap. */
at_result at_catalog_list_json(at_catalog *c, at_buf *out) AT_WUR;

/* A page of the list above, filtered: the sessions in the same order that
 * pass every filter set, after the cursor's session, at most limit of them
 * (0: all), as a JSON array appended to out; when more follow, the cursor
 * of the next page is appended to next (an opaque token, stable while
 * sessions come and go). AT_ERR_INVALID for a cursor this did not write. */
typedef struct {
    size_t limit;
    const char *cursor; /* NULL: from the first */
    const char *agent;  /* agent_name equals it; NULL: any */
    const char *q;      /* a substring of the session id, agent_name or command; NULL: any */
    bool has_since, has_until;
    double since, until; /* started_at >= since, < until (seconds since the epoch) */
} at_catalog_query;
at_result at_catalog_list_page(at_catalog *c, const at_catalog_query *q, at_buf *out, at_buf *next) AT_WUR;
/* The same page over sessions given by the caller (a database store's:
 * name and parsed meta each), without a catalog: the same order, filters,
 * JSON and cursors. */
typedef struct {
    const char *name;
    const at_meta *meta;
} at_catalog_item;
at_result at_catalog_page_of(at_catalog_item *items, size_t n, const at_catalog_query *q, at_buf *out,
                             at_buf *next) AT_WUR;

/* Resolves a session id as agent-strace's find_session does: an exact
 * directory name first, else a prefix that matches exactly one session.
 * On AT_OK *out is the malloc'd directory name (the caller frees it).
 * AT_ERR_NOT_FOUND for no match or an ambiguous prefix; AT_ERR_INVALID for
 * an id that may not reach the file system (empty, longer than
 * AT_MAX_SESSION_ID, with '/', '\\', or starting with '.'); AT_ERR_IO when
 * root cannot be listed; AT_ERR_NOMEM. */
at_result at_catalog_resolve(at_catalog *c, const char *id, char **out) AT_WUR;

/* Appends session sid's meta (at_meta_write with AT_JSON_DEFAULT), as
 * GET /sessions/{id} writes it, from the cache. sid is an exact directory
 * name (resolve first). AT_ERR_NOT_FOUND when there is no such session,
 * AT_ERR_JSON when its meta.json cannot be read or parsed. */
at_result at_catalog_meta_json(at_catalog *c, const char *sid, at_buf *out) AT_WUR;

/* Tells the catalog that this process just wrote session sid (its
 * directory, meta.json and/or events.ndjson): the session is looked at
 * again now, so the next answer reflects the write even before inotify
 * reports it. An unacceptable sid is ignored. */
void at_catalog_touch(at_catalog *c, const char *sid);

/* Calls fn(ctx, sid) once for each session whose events.ndjson changed
 * (created, written, renamed over, removed, by any process, this one
 * included) since the previous call, and forgets them. Sessions that
 * appeared or disappeared count as changed. After an inotify overflow
 * every session is reported. fn runs without the catalog's lock held, so
 * it may call the catalog. */
void at_catalog_drain_changed(at_catalog *c, void (*fn)(void *ctx, const char *sid), void *ctx);

/* What the catalog is doing, for logs and /metrics. */
typedef struct {
    uint64_t sessions;  /* as at_catalog_count */
    uint64_t listed;    /* sessions in the /sessions body */
    uint64_t dirs;      /* entries followed: directories (sessions or not), symlinks */
    uint64_t watched;   /* directories with an inotify watch */
    uint64_t unwatched; /* directories revalidated by stat on every call */
    uint64_t rescans;   /* full scans of root, the first one included */
    uint64_t overflows; /* IN_Q_OVERFLOW seen */
    uint64_t reloads;   /* meta.json reads */
    bool inotify;       /* false: AT_CATALOG_RESCAN, root rescanned every call */
    bool root_watched;  /* false: root itself is rescanned every call */
} at_catalog_stats;

void at_catalog_stats_get(at_catalog *c, at_catalog_stats *st);

/* Forces a full rescan now, exactly as an IN_Q_OVERFLOW does (every
 * meta.json re-read, every session reported changed). For tests and for an
 * operator's "reload"; never needed for correctness. */
void at_catalog_rescan(at_catalog *c);

/* Test-only: from now on, adding a watch on a session directory fails as
 * if /proc/sys/fs/inotify/max_user_watches were reached (ENOSPC) once
 * `max` session watches exist; -1 removes the limit. Lets the tests drive
 * the stat-per-call fallback without changing a system-wide setting. */
void at_catalog_test_watch_limit(at_catalog *c, long max);

#endif
