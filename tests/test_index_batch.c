/* test_index_batch.c - event index rows recorded during an import
 * (src/index_batch.c) and written by the index's worker thread
 * (event_index_refresh_from_batch) must give exactly the table that
 * reading the stored files gives (event_index_rebuild).
 *
 *  - rows read back equal the lines the chain writer wrote (event_id
 *    decoded, offsets, lengths, digests, prev_hash), in memory and after
 *    a spill to disk;
 *  - escaped event ids are decoded; lines without an event_id are skipped;
 *    an oversized id marks the batch unusable;
 *  - every fixture imported with a batch, queued, drained: the events and
 *    sessions tables equal those of a full rebuild;
 *  - a session changed between commit and indexing, and an unusable batch,
 *    fall back to reading the file, with the same result. */
#include "testlib.h"

#include "handler_stubs.h"
#include "index.h"
#include "index_batch.h"

#include "agenttrace/chain.h"
#include "agenttrace/importer.h"
#include "agenttrace/store.h"

#include <fcntl.h>
#include <glob.h>
#include <sqlite3.h>
#include <unistd.h>

/* ---- rows against the written lines ---------------------------------------- */

typedef struct {
    at_buf out;
} mem_sink;

static at_result mem_write(void *ctx, const char *p, size_t n)
{
    return at_buf_add(&((mem_sink *)ctx)->out, p, n);
}

/* Writes n events through a chain writer observed by b; the event ids are
 * ids[k % nids] (JSON tokens; NULL: no event_id). Returns the bytes. */
static at_buf write_events(index_batch *b, size_t n, const char *const *ids, size_t nids)
{
    mem_sink s;
    at_buf_init(&s.out, 0);
    at_chain_writer w;
    CHECK(at_chain_writer_init(&w, mem_write, &s, NULL) == AT_OK, "writer");
    w.on_line = index_batch_add;
    w.on_line_ctx = b;
    for (size_t k = 0; k < n; k++) {
        const char *id = ids[k % nids];
        at_event_json ev = {
            .event_type = AT_SLICE("\"tool_call\""),
            .timestamp = AT_SLICE("1.5"),
            .session_id = AT_SLICE("\"s\""),
            .data = AT_SLICE("{\"k\":1}"),
        };
        if (id)
            ev.event_id = (at_slice){id, strlen(id)};
        if (at_chain_write(&w, &ev) != AT_OK) {
            CHECK(0, "write %zu", k);
            break;
        }
    }
    at_chain_writer_fini(&w);
    return s.out;
}

/* Compares the batch's rows with the lines of out, as index.c reads them. */
static void check_rows(index_batch *b, const at_buf *out, const char *what)
{
    CHECK(index_batch_rewind(b) == AT_OK, "%s: rewind", what);
    at_json_doc d;
    at_json_doc_init(&d);
    at_buf dec, prev;
    at_buf_init(&dec, 0);
    at_buf_init(&prev, 0);
    size_t off = 0, no = 0, rows = 0, bad = 0;
    while (off < out->len) {
        const char *p = out->data + off;
        const char *nl = memchr(p, '\n', out->len - off);
        size_t n = (size_t)(nl - p);
        at_error err;
        if (at_json_parse(&d, p, n, &err) != AT_OK) {
            bad++;
            break;
        }
        uint32_t id = at_json_get(&d, 0, "event_id");
        if (at_json_is(&d, id, AT_JSON_STRING)) {
            index_row r;
            at_buf_reset(&dec);
            at_buf_reset(&prev);
            if (index_batch_next(b, &r) != AT_OK || at_json_str_decode(&d, id, &dec) != AT_OK) {
                bad++;
                break;
            }
            uint32_t ph = at_json_get(&d, 0, "prev_hash");
            bool has_prev = at_json_is(&d, ph, AT_JSON_STRING);
            if (has_prev && at_json_str_decode(&d, ph, &prev) != AT_OK)
                bad++;
            uint8_t dig[AT_SHA256_LEN];
            char hex[AT_SHA256_HEX];
            at_sha256_oneshot(p, n, dig);
            at_hex(dig, AT_SHA256_LEN, hex);
            bool same =
                r.no == no && r.off == off && r.len == n && strcmp(r.sha256, hex) == 0 &&
                r.event_id_len == dec.len && memcmp(r.event_id, dec.data, dec.len) == 0 &&
                (r.prev_hash != NULL) == has_prev &&
                (!has_prev || (r.prev_hash_len == prev.len && memcmp(r.prev_hash, prev.data, prev.len) == 0));
            if (!same) {
                bad++;
                fprintf(stderr, "%s: row %zu differs: no %llu off %llu len %llu id [%.*s]\n", what, rows,
                        (unsigned long long)r.no, (unsigned long long)r.off, (unsigned long long)r.len,
                        (int)r.event_id_len, r.event_id);
            }
            rows++;
        }
        off += n + 1;
        no++;
    }
    index_row extra;
    CHECK(index_batch_next(b, &extra) == AT_ERR_NOT_FOUND, "%s: no rows beyond the lines", what);
    CHECK(bad == 0, "%s: %zu rows differ from their lines (of %zu)", what, bad, rows);
    at_buf_fini(&dec);
    at_buf_fini(&prev);
    at_json_doc_fini(&d);
}

static void test_rows(const char *tmp)
{
    static const char *const plain[] = {"\"a1b2c3d4e5f6\"", "\"0123456789ab\""};
    index_batch *b = index_batch_new(tmp);
    CHECK(b != NULL, "new");
    at_buf out = write_events(b, 50, plain, 2);
    CHECK(index_batch_usable(b), "small batch usable");
    check_rows(b, &out, "in memory");
    check_rows(b, &out, "read twice"); /* rewind starts over */
    at_buf_fini(&out);
    index_batch_free(b);

    /* past INDEX_BATCH_MEM: spilled, then the tail from memory */
    b = index_batch_new(tmp);
    size_t n = INDEX_BATCH_MEM / 100 * 3;
    out = write_events(b, n, plain, 2);
    CHECK(index_batch_usable(b), "spilled batch usable");
    check_rows(b, &out, "spilled");
    at_buf_fini(&out);
    index_batch_free(b);

    /* escaped ids, non-ASCII, ids left out ("" and absent are omitted) */
    static const char *const odd[] = {
        "\"a\\\"b\\\\c\"", "\"\\u00e9t\\ud83d\\ude00\"", NULL, "\"\"", "\"\\ud800x\"", "\"plain\""};
    b = index_batch_new(tmp);
    out = write_events(b, 60, odd, sizeof odd / sizeof odd[0]);
    CHECK(index_batch_usable(b), "odd ids usable");
    check_rows(b, &out, "escaped ids");
    at_buf_fini(&out);
    index_batch_free(b);

    /* an absurd id: the batch gives up, the import does not */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 3);
    huge[0] = '"';
    memset(huge + 1, 'x', big);
    huge[big + 1] = '"';
    huge[big + 2] = 0;
    const char *const hv[] = {huge};
    b = index_batch_new(tmp);
    out = write_events(b, 2, hv, 1);
    CHECK(out.len > 2 * big, "the lines were still written");
    CHECK(!index_batch_usable(b), "oversized id: unusable");
    at_buf_fini(&out);
    index_batch_free(b);
    free(huge);

    /* a spill directory that does not exist: unusable, not an error */
    b = index_batch_new("/nonexistent/dir");
    out = write_events(b, n, plain, 2);
    CHECK(!index_batch_usable(b), "failed spill: unusable");
    at_buf_fini(&out);
    index_batch_free(b);
}

/* ---- imports through the queue against a rebuild ------------------------------- */

/* Both tables, sorted, as text. */
static char *dump_tables(const char *root)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/.agent-traced/index.sqlite", root);
    sqlite3 *db = NULL;
    at_buf b;
    at_buf_init(&b, 0);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    const char *sql[] = {
        "SELECT event_id, session_id, line, sha256, ifnull(prev_hash, '<null>'), offset, length"
        " FROM events ORDER BY session_id, line",
        "SELECT session_id, size, mtime_ns, inode FROM sessions ORDER BY session_id"};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, sql[k], -1, &q, NULL) != SQLITE_OK)
            break;
        while (sqlite3_step(q) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(q); c++) {
                const unsigned char *t = sqlite3_column_text(q, c);
                if (at_buf_printf(&b, "%s%s", c ? "|" : "", t ? (const char *)t : "") != AT_OK)
                    break;
            }
            if (at_buf_addc(&b, '\n') != AT_OK)
                break;
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    size_t n;
    return at_buf_steal(&b, &n);
}

/* Imports path with a batch, commits, and queues the rows. Before queueing,
 * `tamper` (if set) runs on the committed session. */
static void import_one(at_store *st, event_index *ix, const char *path, const char *prefix, bool spoil,
                       void (*tamper)(const char *root, const char *sid))
{
    at_error err;
    at_stage stage;
    if (at_store_stage(st, &stage, &err) != AT_OK) {
        CHECK(0, "stage: %s", err.message);
        return;
    }
    index_batch *b = index_batch_new(NULL);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char source[512];
    snprintf(source, sizeof source, "%s%s", prefix, base);
    at_import_options o = {
        .source = source, .out_fd = stage.fd, .on_line = index_batch_add, .on_line_ctx = b};
    at_import *im = at_import_new(&o, &err);
    size_t n = 0;
    char *data = t_read_file(path, &n);
    at_import_result res;
    memset(&res, 0, sizeof res);
    bool ok =
        im && data && at_import_feed(im, data, n, &err) == AT_OK && at_import_finish(im, &res, &err) == AT_OK;
    struct stat sb;
    ok = ok && fstat(stage.fd, &sb) == 0;
    at_commit_info info;
    if (ok && at_store_commit_import(st, &stage, &res, &info, &err) == AT_OK) {
        if (spoil) {
            /* an oversized id makes the batch give up */
            char huge[80 * 1024];
            huge[0] = '"';
            memset(huge + 1, 'y', sizeof huge - 3);
            huge[sizeof huge - 2] = '"';
            huge[sizeof huge - 1] = 0;
            at_line_written lw = {.no = 0,
                                  .off = 0,
                                  .len = 10,
                                  .digest = (const uint8_t *)huge,
                                  .event_id = {huge, strlen(huge)}};
            CHECK(index_batch_add(b, &lw) == AT_OK, "spoil");
        }
        if (tamper)
            tamper(at_store_root(st), res.session_id);
        event_index_refresh_from_batch(ix, res.session_id, b, (uint64_t)sb.st_ino, (uint64_t)sb.st_size);
        b = NULL;
    } else {
        CHECK(0, "import %s: %s", path, err.message);
        at_stage_discard(&stage);
    }
    index_batch_free(b);
    at_import_result_fini(&res);
    at_import_free(im);
    free(data);
}

/* Replaces a session's events with a copy holding one more line (a new
 * inode and size, as an append by agent-strace would leave it). */
static void grow_session(const char *root, const char *sid)
{
    char path[2048], tmp[2100], cmd[4400];
    snprintf(path, sizeof path, "%s/%s/events.ndjson", root, sid);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    snprintf(cmd, sizeof cmd,
             "cp '%s' '%s' && chmod u+w '%s' && "
             "printf '%%s\\n' '{\"event_type\": \"error\", \"timestamp\": 1.0, \"event_id\": "
             "\"grown0000001\", \"data\": {}}' >> '%s' && mv '%s' '%s'",
             path, tmp, tmp, tmp, tmp, path);
    CHECK(system(cmd) == 0, "grow %s", sid);
}

static void test_imports(const char *tmp)
{
    char root[600];
    snprintf(root, sizeof root, "%s/store", tmp);
    at_error err;
    at_store *st = at_store_open(root, &err);
    event_index *ix = st ? event_index_open(root, &err) : NULL;
    CHECK(st && ix, "open: %s", err.message);
    if (!st || !ix) {
        event_index_close(ix);
        at_store_free(st);
        return;
    }
    const char *pats[] = {"tests/fixtures/claude/*.jsonl", "tests/fixtures/claude/*/subagents/*.jsonl",
                          "tests/fixtures/claude-edge/*.jsonl"};
    size_t files = 0;
    for (size_t p = 0; p < 3; p++) {
        glob_t g;
        if (glob(t_src(pats[p]), 0, NULL, &g) != 0)
            continue;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            if (strstr(g.gl_pathv[k], "empty.jsonl"))
                continue; /* nothing to import */
            /* the second file changes after its commit, the third spoils its batch */
            import_one(st, ix, g.gl_pathv[k], "", files == 2, files == 1 ? grow_session : NULL);
            files++;
        }
        globfree(&g);
    }
    CHECK(files >= 14, "fixture files: %zu", files);
    event_index_drain(ix);
    char *queued = dump_tables(root);
    CHECK(queued && strlen(queued) > 10000, "queued tables dumped");
    CHECK(queued && strstr(queued, "grown0000001|"), "the changed session was read from its file");
    CHECK(event_index_rebuild(ix, &err) == AT_OK, "rebuild: %s", err.message);
    char *rebuilt = dump_tables(root);
    CHECK(queued && rebuilt && strcmp(queued, rebuilt) == 0,
          "rows written from the batches equal a rebuild (%zu vs %zu bytes)", queued ? strlen(queued) : 0,
          rebuilt ? strlen(rebuilt) : 0);
    free(queued);
    free(rebuilt);

    /* re-import everything (replacing each session with a new source name):
     * the queue replaces rows, close drains it */
    size_t again = 0;
    glob_t g;
    if (glob(t_src(pats[0]), 0, NULL, &g) == 0) {
        for (size_t k = 0; k < g.gl_pathc; k++, again++)
            import_one(st, ix, g.gl_pathv[k], "again-", false, NULL);
        globfree(&g);
    }
    event_index_close(ix);
    queued = dump_tables(root);
    ix = event_index_open(root, &err);
    CHECK(ix && event_index_rebuild(ix, &err) == AT_OK, "rebuild after close");
    rebuilt = dump_tables(root);
    CHECK(again > 0 && queued && rebuilt && strcmp(queued, rebuilt) == 0,
          "close finished the queue: equal to a rebuild");
    free(queued);
    free(rebuilt);
    event_index_close(ix);
    at_store_free(st);
}

int main(void)
{
    char tmpl[] = "/tmp/test_index_batch.XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
    test_rows(tmpl);
    test_imports(tmpl);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", tmpl, tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpl);
    return t_done("test_index_batch");
}
