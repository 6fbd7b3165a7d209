/* bench_import.c - import throughput and peak memory.
 *
 * Builds a large transcript (default ~100 MB) by repeating the fixture
 * transcripts, writes it to a temporary file, then imports it in a child
 * process exactly as `agent-traced import` does (1 MiB reads, staging file,
 * commit into a fresh storage directory) and reports MB/s and the child's
 * peak RSS. Best of N runs of each mode, the modes interleaved so that a
 * busy moment of the shared machine hits them alike:
 *   off       no redaction (--no-redact)
 *   redact    redaction on (the default)
 *   nofilter  redaction with its pre-filter off: every pattern over every
 *             string (what the pre-filter saves)
 *
 *   bench/bench_import [--mb N] [--runs N] [--fixtures DIR]
 */
#include "agenttrace/importer.h"
#include "agenttrace/redact.h"
#include "agenttrace/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    double seconds;
    long peak_kib;
    unsigned long long events;
} result;

enum { MODE_OFF, MODE_REDACT, MODE_NOFILTER, NMODES };
static const char *const mode_names[NMODES] = {"off", "redact", "nofilter"};

static int import_file(const char *input, const char *storage, int mode, result *out)
{
    at_error err = {0};
    at_redact *rd = NULL;
    if (mode != MODE_OFF && !(rd = at_redact_new(&err)))
        return 1;
    if (rd)
        at_redact_set_prefilter(rd, mode == MODE_REDACT);
    at_store *store = at_store_open(storage, &err);
    if (!store)
        return 1;
    int fd = open(input, O_RDONLY);
    char *block = malloc(1 << 20);
    at_stage st;
    at_import_result res;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/.agent-traced/tmp", storage);
    double t0 = now();
    if (fd < 0 || !block || at_store_stage(store, &st, &err) != AT_OK)
        return 1;
    at_import_options o = {.source = "bench.jsonl", .out_fd = st.fd, .tmp_dir = tmp, .redact = rd};
    at_import *im = at_import_new(&o, &err);
    ssize_t k;
    while (im && (k = read(fd, block, 1 << 20)) > 0)
        if (at_import_feed(im, block, (size_t)k, &err) != AT_OK)
            return 1;
    at_commit_info info;
    if (!im || at_import_finish(im, &res, &err) != AT_OK ||
        at_store_commit_import(store, &st, &res, &info, &err) != AT_OK) {
        fprintf(stderr, "import failed: %s\n", err.message);
        return 1;
    }
    out->seconds = now() - t0;
    out->events = res.events;
    at_import_result_fini(&res);
    at_import_free(im);
    at_store_free(store);
    at_redact_free(rd);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out->peak_kib = ru.ru_maxrss;
    return 0;
}

int main(int argc, char **argv)
{
    size_t target_mb = 100;
    int runs = 3;
    const char *fixtures = "tests/fixtures/claude";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mb") == 0)
            target_mb = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--fixtures") == 0)
            fixtures = argv[i + 1];
    }
    /* The two large real sessions, repeated: the mix of a real transcript
     * (about 70% progress lines). */
    static const char *const names[] = {"258c7280-ae70-4798-800f-63464d01a85d.jsonl",
                                        "4d5611e5-241a-462a-8d15-5122611a9569.jsonl", "subagent.jsonl",
                                        "tool_heavy.jsonl", "short.jsonl"};
    char input[] = "/tmp/bench-import-XXXXXX";
    int fd = mkstemp(input);
    size_t total = 0;
    while (total < target_mb << 20) {
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            char p[4096];
            size_t n;
            snprintf(p, sizeof p, "%s/%s", fixtures, names[i]);
            char *d = slurp(p, &n);
            if (!d) {
                fprintf(stderr, "cannot read %s (run from the source tree or pass --fixtures)\n", p);
                return 2;
            }
            if (write(fd, d, n) != (ssize_t)n)
                return 2;
            total += n;
            free(d);
        }
    }
    close(fd);
    double best[NMODES] = {1e9, 1e9, 1e9};
    long peak[NMODES] = {0};
    unsigned long long events = 0;
    for (int rm = 0; rm < runs * NMODES; rm++) {
        int r = rm / NMODES, mode = rm % NMODES;
        char storage[] = "/tmp/bench-store-XXXXXX";
        if (!mkdtemp(storage))
            return 2;
        int pfd[2];
        if (pipe(pfd) < 0)
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            result res = {0};
            int rc = import_file(input, storage, mode, &res);
            if (write(pfd[1], &res, sizeof res) != sizeof res)
                rc = 1;
            _exit(rc);
        }
        result res = {0};
        int status;
        if (read(pfd[0], &res, sizeof res) != sizeof res)
            res.seconds = 0;
        waitpid(pid, &status, 0);
        close(pfd[0]);
        close(pfd[1]);
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", storage);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", storage);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || res.seconds <= 0) {
            fprintf(stderr, "run %d failed\n", r);
            return 1;
        }
        printf("run %d %-8s: %.1f MB in %.3f s = %.0f MB/s, peak RSS %.1f MiB, %llu events\n", r,
               mode_names[mode], (double)total / 1e6, res.seconds, (double)total / 1e6 / res.seconds,
               (double)res.peak_kib / 1024, res.events);
        if (res.seconds < best[mode])
            best[mode] = res.seconds;
        if (res.peak_kib > peak[mode])
            peak[mode] = res.peak_kib;
        events = res.events;
    }
    unlink(input);
    for (int m = 0; m < NMODES; m++)
        printf("import %-8s: %.1f MB, best %.0f MB/s, peak RSS %.1f MiB, %llu events\n", mode_names[m],
               (double)total / 1e6, (double)total / 1e6 / best[m], (double)peak[m] / 1024, events);
    printf("redaction keeps %.0f%% of the throughput without it; without its pre-filter %.0f%%\n",
           100.0 * best[MODE_OFF] / best[MODE_REDACT], 100.0 * best[MODE_OFF] / best[MODE_NOFILTER]);
    return 0;
}
