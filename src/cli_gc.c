/* cli_gc.c - `agent-traced gc`: retention and garbage collection. */
#include "cli.h"

#include "api/report.h"

#include "agenttrace/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: agent-traced gc [--storage DIR] [--dry-run] [--keep-versions N] [--max-age-days D]\n"
    "                       [--max-sessions N] [--max-size-mb M] [--workspace W]\n"
    "\n"
    "Removes what the retention policy no longer keeps, then every object no kept\n"
    "version needs, and prints one JSON line: sessions_removed, versions_removed,\n"
    "objects_removed, objects_kept, bytes_freed. Safe while `serve` runs on the same\n"
    "storage (it waits for writes in progress). Sessions go by age, then count, then\n"
    "size, as agent-strace's retention applies its limits.\n"
    "\n"
    "  --storage DIR       storage directory (default: $AGENT_STRACE_STORAGE, else\n"
    "                      ./.agent-traces)\n"
    "  --dry-run           report what would go, remove nothing\n"
    "  --keep-versions N   keep the newest N versions of each session (default: all)\n"
    "  --max-age-days D    remove sessions that ended more than D days ago\n"
    "  --max-sessions N    keep only the newest N sessions\n"
    "  --max-size-mb M     remove the oldest sessions until the rest fit in M MiB\n"
    "  --workspace W       collect workspace W (DIR/workspaces/W) instead of the\n"
    "                      default one (DIR itself); the line then names it\n"
    "  -h, --help          show this help\n"
    "\n"
    "Without limits only unreferenced objects and crash leftovers go.\n"
    "Exit status: 0 on success, 1 on failure, 2 on usage errors.\n";

/* A non-negative number (integer when whole is set); false otherwise. */
static bool number(const char *s, bool whole, double *out)
{
    if (!s || !*s)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || errno || !(v >= 0) || (whole && v != (double)(int64_t)v))
        return false;
    *out = v;
    return true;
}

int cli_gc(int argc, char **argv)
{
    static const struct option opts[] = {
        {"storage", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"keep-versions", required_argument, NULL, 'k'},
        {"max-age-days", required_argument, NULL, 'a'},
        {"max-sessions", required_argument, NULL, 'c'},
        {"max-size-mb", required_argument, NULL, 'm'},
        {"workspace", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *storage = NULL, *ws = NULL;
    at_gc_policy p = {0};
    double v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': storage = optarg; break;
        case 'n': p.dry_run = true; break;
        case 'w': ws = optarg; break;
        case 'k':
        case 'c':
            if (!number(optarg, true, &v) || v < 1) {
                cli_errorf("gc", "--%s takes a whole number of at least 1: %s",
                           c == 'k' ? "keep-versions" : "max-sessions", optarg);
                return 2;
            }
            if (c == 'k')
                p.keep_versions = (int64_t)v;
            else
                p.max_sessions = (int64_t)v;
            break;
        case 'a':
        case 'm':
            if (!number(optarg, false, &v) || v <= 0) {
                cli_errorf("gc", "--%s takes a positive number: %s",
                           c == 'a' ? "max-age-days" : "max-size-mb", optarg);
                return 2;
            }
            if (c == 'a')
                p.max_age_days = v;
            else
                p.max_size_mb = v;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        cli_errorf("gc", "unexpected argument: %s", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    if (!storage)
        storage = cli_default_storage();
    at_error err = {0};
    at_store *store = at_store_open_workspace(storage, ws, &err);
    if (!store) {
        cli_errorf("gc", "%s%s", ws ? "--workspace: " : "", err.message);
        return ws && !at_workspace_id_ok(ws) ? 2 : 1;
    }
    at_gc_report rep;
    at_result r = at_store_gc(store, &p, &rep, &err);
    at_store_free(store);
    if (r != AT_OK) {
        cli_errorf("gc", "%s: %s", storage, err.message[0] ? err.message : at_result_str(r));
        return 1;
    }
    at_buf b;
    at_buf_init(&b, 0);
    r = report_gc(&b, &rep, p.dry_run, ws);
    if (r == AT_OK)
        printf("%s\n", b.data);
    at_buf_fini(&b);
    return r == AT_OK ? 0 : 1;
}
