/* cli_reindex.c - `agent-traced reindex`: rebuilds the event index of a
 * storage directory from its session files. */
#include "cli.h"
#include "index.h"

#include "agenttrace/json.h"
#include "agenttrace/store.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] = "usage: agent-traced reindex [--storage DIR]\n"
                            "\n"
                            "Rebuilds the event index (DIR/.agent-traced/index.sqlite) from every\n"
                            "session's events.ndjson, and prints one JSON line: storage, index,\n"
                            "sessions, events, seconds. The server keeps the index current by itself;\n"
                            "this is for repairs and for stores filled by other tools.\n"
                            "\n"
                            "  --storage DIR   storage directory (default: $AGENT_STRACE_STORAGE, else\n"
                            "                  ./.agent-traces)\n"
                            "  -h, --help      show this help\n"
                            "\n"
                            "Exit status: 0 on success, 1 on failure, 2 on usage errors.\n";

int cli_reindex(int argc, char **argv)
{
    static const struct option opts[] = {
        {"storage", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *storage = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': storage = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        cli_errorf("reindex", "unexpected argument: %s", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    if (!storage)
        storage = cli_default_storage();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    at_error err = {0};
    event_index *ix = event_index_open_ex(storage, false, &err);
    int64_t sessions = 0, events = 0;
    if (!ix || event_index_rebuild(ix, &err) != AT_OK ||
        event_index_counts(ix, &sessions, &events, &err) != AT_OK) {
        cli_errorf("reindex", "%s", err.message);
        event_index_close(ix);
        return 1;
    }
    event_index_close(ix);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    at_buf b;
    at_buf_init(&b, 0);
    char path[4096];
    if (at_storage_path(storage, AT_PATH_INDEX, NULL, path, sizeof path) != AT_OK)
        path[0] = 0;
    int bad = at_buf_adds(&b, "{\"storage\": ") != AT_OK ||
              at_json_write_wtf8(&b, storage, strlen(storage)) != AT_OK ||
              at_buf_adds(&b, ", \"index\": ") != AT_OK ||
              at_json_write_wtf8(&b, path, strlen(path)) != AT_OK ||
              at_buf_printf(&b, ", \"sessions\": %lld, \"events\": %lld, \"seconds\": ", (long long)sessions,
                            (long long)events) != AT_OK ||
              at_json_write_double(&b, (double)(int64_t)(secs * 1000 + 0.5) / 1000) != AT_OK ||
              at_buf_adds(&b, "}\n") != AT_OK;
    if (!bad)
        fwrite(b.data, 1, b.len, stdout);
    at_buf_fini(&b);
    fflush(stdout);
    return bad;
}
