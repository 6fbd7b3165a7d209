/* testlib.h - a tiny test harness: counts cases, prints failures, exits 1 on
 * any failure. Each CHECK is one test case in the "N passed, M failed" count. */
#ifndef AGENTTRACE_TESTLIB_H
#define AGENTTRACE_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            t_passed++;                                                                                      \
        } else {                                                                                             \
            t_failed++;                                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                  \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
        }                                                                                                    \
    } while (0)

/* Compares two byte strings, printing both on mismatch. */
#define CHECK_BYTES(got, got_len, want, want_len, what)                                                      \
    CHECK((got_len) == (want_len) && memcmp((got), (want), (want_len)) == 0, "%s: got [%.*s] want [%.*s]",   \
          (what), (int)(got_len), (got), (int)(want_len), (want))

/* Prints the summary line the test driver counts, returns the exit status. */
static inline int t_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, t_passed, t_failed);
    return t_failed ? 1 : 0;
}

/* Reads a whole file into memory (tests only). NULL on failure. */
static inline char *t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, cap * 2 + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        if (len)
            *len = n;
    }
    return p;
}

/* Path of a file under the source tree (tests run from the build tree). */
static inline const char *t_src(const char *rel)
{
    static __thread char buf[4096]; /* per thread: tests call it from workers */
    const char *top = getenv("top_srcdir");
    snprintf(buf, sizeof buf, "%s/%s", top ? top : ".", rel);
    return buf;
}

#endif
