/* test_memory.c - the importer's peak memory does not grow with its input.
 *
 * A child process imports the same transcript content fed 1 time and then
 * 50 times in a row (one stream, as one long session) and reports its peak
 * RSS from getrusage; the two peaks must be within a small constant. */
#include "agenttrace/importer.h"
#include "testlib.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Peak RSS in KiB of a child that imports `repeat` copies of data. */
static long child_peak_kib(const char *data, size_t n, int repeat)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        char path[] = "/tmp/at-mem-XXXXXX";
        int fd = mkstemp(path);
        unlink(path);
        at_error err = {0};
        at_import_options o = {.source = "memory.jsonl", .out_fd = fd, .tmp_dir = "/tmp"};
        at_import *im = at_import_new(&o, &err);
        at_import_result res;
        int ok = im != NULL;
        for (int i = 0; ok && i < repeat; i++)
            for (size_t off = 0; ok && off < n; off += 1 << 20)
                ok = at_import_feed(im, data + off, n - off < (1 << 20) ? n - off : 1 << 20, &err) == AT_OK;
        ok = ok && at_import_finish(im, &res, &err) == AT_OK;
        if (ok)
            at_import_result_fini(&res);
        at_import_free(im);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long kib = ok ? ru.ru_maxrss : -1;
        if (write(pipefd[1], &kib, sizeof kib) != sizeof kib)
            _exit(1);
        _exit(0);
    }
    close(pipefd[1]);
    long kib = -1;
    if (read(pipefd[0], &kib, sizeof kib) != sizeof kib)
        kib = -1;
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return kib;
}

int main(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers' shadow memory and quarantine: RSS says nothing about ours. */
    puts("test_memory: skipped under a sanitizer");
    return 77;
#endif
    size_t n;
    char *data = t_read_file(t_src("tests/fixtures/claude/4d5611e5-241a-462a-8d15-5122611a9569.jsonl"), &n);
    CHECK(data != NULL, "fixture readable");
    if (!data)
        return t_done("test_memory");
    long one = child_peak_kib(data, n, 1);
    long fifty = child_peak_kib(data, n, 50);
    printf("peak RSS: 1x (%zu bytes) %ld KiB, 50x (%zu bytes) %ld KiB\n", n, one, n * 50, fifty);
    CHECK(one > 0 && fifty > 0, "both imports succeeded");
    /* The same content 50 times must not need more than a few MiB more. */
    CHECK(fifty - one < 4096, "peak RSS grew by %ld KiB from 1x to 50x input", fifty - one);
    free(data);
    return t_done("test_memory");
}
