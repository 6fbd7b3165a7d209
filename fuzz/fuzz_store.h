/* fuzz_store.h - a scratch storage directory for the targets that drive
 * handlers (fuzz_collector.c, fuzz_request.c): made under $TMPDIR (or
 * /dev/shm when it exists: the store fsyncs every write), removed at exit.
 * Header-only: each target is one translation unit. */
#ifndef AGENTTRACE_FUZZ_STORE_H
#define AGENTTRACE_FUZZ_STORE_H

#include "fuzz.h"

#include "agenttrace/store.h"

#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_base[PATH_MAX]; /* the mkdtemp'd directory, removed at exit */

static int fuzz_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

/* Removes path and everything under it. */
static void fuzz_rm_tree(const char *path)
{
    nftw(path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_base_cleanup(void)
{
    if (fuzz_base[0])
        fuzz_rm_tree(fuzz_base);
}

/* The scratch directory, made on first use. */
static const char *fuzz_scratch(void)
{
    if (fuzz_base[0])
        return fuzz_base;
    struct stat sb;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                                 : "/tmp";
    snprintf(fuzz_base, sizeof fuzz_base, "%s/agenttrace-fuzz-XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(fuzz_base) != NULL);
    atexit(fuzz_base_cleanup);
    return fuzz_base;
}

/* A fresh, empty store at <scratch>/<name> (any earlier one removed);
 * root receives its path (PATH_MAX bytes). */
static at_store *fuzz_store_fresh(const char *name, char *root)
{
    snprintf(root, PATH_MAX, "%s/%s", fuzz_scratch(), name);
    fuzz_rm_tree(root);
    at_error err = {0};
    at_store *s = at_store_open(root, &err);
    if (!s)
        fprintf(stderr, "cannot open a store in %s: %s\n", root, err.message);
    FUZZ_CHECK(s != NULL);
    return s;
}

#endif
