/* cli_push.c - `agent-traced push`: send transcripts to a server, only
 * what it does not hold yet (src/push/push.h). */
#include "cli.h"
#include "push/push.h"
#include "push/state.h"
#include "push/walk.h"

#include "agenttrace/store.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: agent-traced push [--server URL] [--key KEY] [--jobs N] [--dry-run]\n"
    "                         [--state FILE] [--workspace W] [PATH...]\n"
    "\n"
    "Uploads Claude Code transcripts to an agent-traced server (POST /import,\n"
    "gzip), each with its file name as source. PATH (default ~/.claude/projects)\n"
    "is a transcript or a directory walked recursively for *.jsonl (subagents\n"
    "under <session>/subagents/ included). A state file remembers what the\n"
    "server holds of each file: a second push sends nothing, a transcript that\n"
    "grew sends only its new bytes, one that was rewritten is sent whole.\n"
    "\n"
    "  --server URL   the server (default: $AGENT_TRACED_URL, else\n"
    "                 $AGENT_STRACE_ENDPOINT, else http://127.0.0.1:4317)\n"
    "  --key KEY      bearer key (default: the first of $AGENT_STRACE_AUTH_KEY)\n"
    "  --jobs N       uploads at a time (default 4)\n"
    "  --dry-run      list what would be sent (action, bytes, file); send nothing\n"
    "  --state FILE   the state file (default: $XDG_STATE_HOME/agent-traced/push.json,\n"
    "                 else ~/.local/state/agent-traced/push.json)\n"
    "  --workspace W  the server's workspace to push to (default:\n"
    "                 $AGENT_TRACED_WORKSPACE, else the key's own workspace)\n"
    "  -h, --help     show this help\n"
    "\n"
    "On a terminal, stderr shows a progress bar. The last line of stdout is a\n"
    "JSON summary: {\"files\", \"created\", \"extended\", \"replaced\", \"unchanged\",\n"
    "\"failed\", \"bytes_sent\"} (transcript bytes, before compression). Every\n"
    "failure is named on stderr with its file and the server's error.\n"
    "\n"
    "Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.\n";

static void walk_err(void *ctx, const char *path, const char *reason)
{
    cli_errorf((const char *)ctx, "%s: %s", path, reason);
}

int cli_push_paths(const char *cmd, const char *server, const char *key, const char *workspace, int jobs,
                   bool dry_run, const char *state, bool progress, char **paths, int npaths)
{
    walk_list files;
    walk_list_init(&files);
    size_t werr = 0;
    for (int i = 0; i < npaths; i++)
        werr += walk_path(&files, paths[i], walk_err, (void *)cmd);
    /* one server, one set of state entries, however its URL ends */
    char url[2048];
    size_t ul = strlen(server);
    while (ul > 1 && server[ul - 1] == '/')
        ul--;
    snprintf(url, sizeof url, "%.*s", (int)ul, server);
    push_options o = {.cmd = cmd,
                      .server = url,
                      .key = key,
                      .workspace = workspace,
                      .state_path = state,
                      .jobs = jobs,
                      .dry_run = dry_run,
                      .progress = progress,
                      .out = stdout,
                      .errs = stderr};
    push_summary sum;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = push_run(&o, &files, werr, &sum);
    curl_global_cleanup();
    push_summary_print(stdout, &sum, dry_run);
    walk_list_fini(&files);
    return rc;
}

int cli_push(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"jobs", required_argument, NULL, 'j'},
        {"dry-run", no_argument, NULL, 'n'},
        {"state", required_argument, NULL, 'S'},
        {"workspace", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *key = NULL, *state = NULL, *ws = NULL;
    int jobs = 4;
    bool dry_run = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hj:n", opts, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'k': key = optarg; break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 64) {
                cli_errorf("push", "--jobs: expected a number from 1 to 64, got '%s'", optarg);
                return 2;
            }
            jobs = (int)v;
            break;
        }
        case 'n': dry_run = true; break;
        case 'S': state = optarg; break;
        case 'w':
            if (!at_workspace_id_ok(optarg)) {
                cli_errorf("push", "--workspace: expected 1-64 of A-Z a-z 0-9 . _ -, got '%s'", optarg);
                return 2;
            }
            ws = optarg;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    server = push_default_server(server);
    if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0) {
        cli_errorf("push", "--server: expected an http:// or https:// URL, got '%s'", server);
        return 2;
    }
    if (key && !*key) {
        cli_errorf("push", "--key: empty key");
        return 2;
    }
    key = push_default_key(key);
    char *state_alloc = NULL;
    if (!state || !*state) {
        if (state && !*state) {
            cli_errorf("push", "--state: empty file name");
            return 2;
        }
        if (!(state = state_alloc = push_state_default_path("push.json"))) {
            cli_errorf("push", "no state file: set --state, XDG_STATE_HOME or HOME");
            return 2;
        }
    }
    char *defpath[1] = {NULL};
    char **paths = argv + optind;
    int npaths = argc - optind;
    if (npaths == 0) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            cli_errorf("push", "no PATH given and HOME is not set");
            free(state_alloc);
            return 2;
        }
        size_t n = strlen(home) + 20;
        if (!(defpath[0] = malloc(n))) {
            free(state_alloc);
            return 1;
        }
        snprintf(defpath[0], n, "%s/.claude/projects", home);
        paths = defpath;
        npaths = 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = cli_push_paths("push", server, key, push_default_workspace(ws), jobs, dry_run, state, isatty(2) && !dry_run, paths, npaths);
    free(defpath[0]);
    free(state_alloc);
    return rc;
}
