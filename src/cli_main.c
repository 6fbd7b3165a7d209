/* cli_main.c - `agent-traced <command>`: dispatch, help, shared helpers. */
#include "cli.h"

#include "config.h"
#include "http_server.h"
#include "index.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>

static const char usage[] = "usage: agent-traced <command> [options]\n"
                            "\n"
                            "A trace server for AI coding agents: imports Claude Code transcripts into\n"
                            "agent-trace sessions (agent-strace's format), stores and verifies them.\n"
                            "\n"
                            "commands:\n"
                            "  import   import Claude Code transcripts (JSONL) into a storage directory\n"
                            "  verify   check the hash chains of events.ndjson files or session directories\n"
                            "  reindex  rebuild the event index of a storage directory\n"
                            "  gc       apply retention and remove what no kept version needs\n"
                            "  usage    token usage and cost of the imported transcripts, as ccusage counts them\n"
                            "  log      the transparency log: `log keygen` makes its key\n"
                            "  serve    run the HTTP service (agent-strace collector API, uploads, trees)\n"
                            "  witness  run a witness that cosigns a transparency log's checkpoints\n"
                            "  keygen   print a new API key (ast_ + 32 hex digits)\n"
                            "  push     send transcripts to a server: only what it does not hold yet\n"
                            "  hook     the Claude Code hook that pushes a session (`hook install` adds it)\n"
                            "  db       the PostgreSQL database: migrate, status, import, export\n"
                            "\n"
                            "`agent-traced <command> --help` describes each command.\n"
                            "Environment: AGENT_STRACE_STORAGE is the default storage directory,\n"
                            "AGENT_STRACE_AUTH_KEY the server's API keys.\n";

void cli_errorf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "agent-traced %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_default_storage(void)
{
    const char *s = getenv("AGENT_STRACE_STORAGE");
    return s && *s ? s : "./.agent-traces";
}

int main(int argc, char **argv)
{
    /* What we write is a team's history and keys: ours alone (files 0600,
     * directories 0700), or stricter if the umask says so. */
    umask(umask(077) | 077);
    /* Past a file size limit (RLIMIT_FSIZE) a write fails with EFBIG, a
     * full disk's answer, instead of killing the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    /* --version, alone or after any command (before a "--") */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--version") == 0) {
            printf("agent-traced %s\n", PACKAGE_VERSION);
            return 0;
        }
    if (strcmp(cmd, "import") == 0)
        return cli_import(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return cli_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "log") == 0)
        return cli_log(argc - 1, argv + 1);
    if (strcmp(cmd, "gc") == 0)
        return cli_gc(argc - 1, argv + 1);
    if (strcmp(cmd, "usage") == 0)
        return cli_usage(argc - 1, argv + 1);
    if (strcmp(cmd, "reindex") == 0)
        return cli_reindex(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "witness") == 0)
        return cli_witness(argc - 1, argv + 1);
    if (strcmp(cmd, "push") == 0)
        return cli_push(argc - 1, argv + 1);
    if (strcmp(cmd, "hook") == 0)
        return cli_hook(argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0)
        return cli_db(argc - 1, argv + 1);
    fprintf(stderr, "agent-traced: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
