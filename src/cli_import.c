/* cli_import.c - `agent-traced import`: transcripts from files or stdin into storage. */
#include "cli.h"
#include "api/report.h"
#include "push/walk.h"

#include "agenttrace/importer.h"
#include "agenttrace/json.h"
#include "agenttrace/redact.h"
#include "agenttrace/store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: agent-traced import [--storage DIR] [--workspace W] [--source NAME] [--no-redact] PATH...\n"
    "\n"
    "Imports Claude Code transcripts (JSONL; '-' reads standard input) into the\n"
    "storage directory, one agent-trace session per file, and prints one JSON\n"
    "line per file: session_id, events, tool_calls, llm_requests, total_tokens,\n"
    "events_sha256, head, skipped_lines, result (created, unchanged, extended or\n"
    "replaced), version, previous_head (and stale: true for an older snapshot).\n"
    "\n"
    "  --storage DIR   storage directory (default: $AGENT_STRACE_STORAGE, else\n"
    "                  ./.agent-traces)\n"
    "  --workspace W   import into workspace W (DIR/workspaces/W, its sessions'\n"
    "                  meta.json saying \"workspace_id\": \"W\"); default: DIR itself\n"
    "  --source NAME   session_end's data.source (default: the file's absolute\n"
    "                  path; 'stdin' for '-')\n"
    "  --no-redact     keep secrets (default: redact them as agent-strace does;\n"
    "                  also AGENT_TRACE_NO_REDACT=1 or AGENT_STRACE_NO_REDACT=1)\n"
    "  -h, --help      show this help\n"
    "\n"
    "A PATH that is a directory is walked recursively for *.jsonl files (the\n"
    "subagents under <session>/subagents/ included), in name order. Every error\n"
    "names its file.\n"
    "\n"
    "A file whose secrets were redacted is named on standard error with the\n"
    "number of events redacted (never the secrets).\n"
    "\n"
    "Exit status: 0 when every file was imported, 1 otherwise, 2 on usage errors.\n";

#define BLOCK (1u << 20)

static int print_summary(const at_import_result *res, const at_commit_info *info)
{
    at_buf b;
    at_buf_init(&b, 0);
    int bad = report_import(&b, res, info) != AT_OK || at_buf_addc(&b, '\n') != AT_OK;
    if (!bad)
        fwrite(b.data, 1, b.len, stdout);
    at_buf_fini(&b);
    return bad;
}

/* Imports one file; returns 0 on success. */
static int import_one(at_store *store, const char *file, const char *source_opt, at_redact *rd)
{
    char abspath[PATH_MAX];
    const char *source = source_opt;
    int fd = 0;
    if (strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_errorf("import", "%s: %s", file, strerror(errno));
            return 1;
        }
        if (!source)
            source = realpath(file, abspath) ? abspath : file;
    } else if (!source) {
        source = "stdin";
    }

    at_error err = {0};
    at_stage st = {-1, NULL, NULL};
    at_import *im = NULL;
    at_import_result res;
    int rc = 1;
    memset(&res, 0, sizeof res);
    char *block = malloc(BLOCK);
    if (!block) {
        cli_errorf("import", "out of memory");
        goto out;
    }
    if (at_store_stage(store, &st, &err) != AT_OK)
        goto fail;
    /* keep_state: an upload may continue this import from where it stopped */
    at_import_options opts = {
        .source = source, .out_fd = st.fd, .tmp_dir = NULL, .redact = rd, .keep_state = true};
    char tmpdir[PATH_MAX];
    if (at_storage_path(at_store_root(store), AT_PATH_TMP, NULL, tmpdir, sizeof tmpdir) != AT_OK)
        tmpdir[0] = 0;
    opts.tmp_dir = tmpdir;
    if (!(im = at_import_new(&opts, &err)))
        goto fail;
    for (;;) {
        ssize_t k = read(fd, block, BLOCK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            at_error_set(&err, AT_ERR_IO, -1, "read error: %s", strerror(errno));
            goto fail;
        }
        if (k == 0)
            break;
        if (at_import_feed(im, block, (size_t)k, &err) != AT_OK)
            goto fail;
    }
    if (at_import_finish(im, &res, &err) != AT_OK)
        goto fail;
    at_commit_info info;
    if (at_store_commit_import(store, &st, &res, &info, &err) != AT_OK)
        goto fail;
    rc = print_summary(&res, &info);
    char note[80];
    at_redact_summary(note, sizeof note, res.redacted_events, res.meta_redacted);
    if (note[0])
        cli_errorf("import", "%s: %s", file, note);
    goto out;
fail:
    cli_errorf("import", "%s: %s", file, err.message[0] ? err.message : at_result_str(err.code));
    at_stage_discard(&st);
out:
    at_import_result_fini(&res);
    at_import_free(im);
    free(block);
    if (fd > 0)
        close(fd);
    return rc;
}

static void walk_error(void *ctx, const char *path, const char *reason)
{
    cli_errorf("import", "%s: %s", path, reason);
}

int cli_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"storage", required_argument, NULL, 's'},
        {"source", required_argument, NULL, 'S'},
        {"no-redact", no_argument, NULL, 'N'},
        {"workspace", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *storage = NULL, *source = NULL, *ws = NULL;
    bool redact = !at_redact_env_disabled();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': storage = optarg; break;
        case 'S': source = optarg; break;
        case 'N': redact = false; break;
        case 'w': ws = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind >= argc) {
        cli_errorf("import", "no PATH given");
        fputs(usage, stderr);
        return 2;
    }
    if (!storage)
        storage = cli_default_storage();
    at_error err = {0};
    at_redact *rd = NULL;
    if (redact && !(rd = at_redact_new(&err))) {
        cli_errorf("import", "%s", err.message);
        return 1;
    }
    at_store *store = at_store_open_workspace(storage, ws, &err);
    if (!store) {
        cli_errorf("import", "%s%s", ws ? "--workspace: " : "", err.message);
        at_redact_free(rd);
        return ws && !at_workspace_id_ok(ws) ? 2 : 1;
    }
    int failures = 0;
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            failures += import_one(store, argv[i], source, rd);
            continue;
        }
        walk_list files;
        walk_list_init(&files);
        failures += (int)walk_path(&files, argv[i], walk_error, NULL);
        for (size_t j = 0; j < files.len; j++)
            failures += import_one(store, files.paths[j], source, rd);
        walk_list_fini(&files);
    }
    at_store_free(store);
    at_redact_free(rd);
    fflush(stdout);
    return failures ? 1 : 0;
}
