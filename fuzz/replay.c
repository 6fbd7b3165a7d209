/* replay.c - the main() of a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput over every file named on the command line (a
 * directory: every file in it, dot files and README* skipped), each in a
 * child process so that a crash counts as one failure and the rest still
 * run. With no arguments it replays $top_srcdir/fuzz/regression/<target>/
 * and $top_srcdir/fuzz/seeds/<target>/ (what `make check` does). Prints
 * "fuzz_<target>: N passed, M failed"; exits 1 on any failure. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the target"
#endif

#define REPLAY_TIMEOUT 60 /* seconds per input */

static int passed, failed;

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, r;
    uint8_t *p = malloc(cap);
    while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            uint8_t *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
            }
            p = q;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = len;
    return p;
}

static void run_file(const char *path)
{
    size_t n;
    uint8_t *data = read_all(path, &n);
    if (!data) {
        fprintf(stderr, "FAIL %s: cannot read: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(REPLAY_TIMEOUT);
        /* a copy of exactly n bytes, so that ASan sees reads past the end */
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy)
            _exit(98);
        memcpy(copy, data, n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        exit(0);
    }
    free(data);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        fprintf(stderr, "FAIL %s: cannot run: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        passed++;
        return;
    }
    failed++;
    if (WIFSIGNALED(st))
        fprintf(stderr, "FAIL %s: killed by signal %d (%s)\n", path, WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        fprintf(stderr, "FAIL %s: exit status %d\n", path, WEXITSTATUS(st));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file under path (sorted, for a stable log). A missing
 * path is not an error when `optional`. */
static void run_path(const char *path, int optional)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (!optional) {
            fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
            failed++;
        }
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    char **names = NULL;
    size_t k = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0)
            continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[k] = strdup(e->d_name)))
            break;
        k++;
    }
    closedir(d);
    if (k)
        qsort(names, k, sizeof *names, by_name);
    for (size_t i = 0; i < k; i++) {
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, names[i]) < sizeof p)
            run_path(p, 0);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_path(argv[i], 0);
    } else {
        const char *top = getenv("top_srcdir");
        char p[PATH_MAX];
        if (!top)
            top = ".";
        snprintf(p, sizeof p, "%s/fuzz/regression/%s", top, FUZZ_TARGET);
        run_path(p, 1);
        snprintf(p, sizeof p, "%s/fuzz/seeds/%s", top, FUZZ_TARGET);
        run_path(p, 1);
    }
    printf("fuzz_%s: %d passed, %d failed\n", FUZZ_TARGET, passed, failed);
    return failed ? 1 : 0;
}
