/* walk.c - finding transcripts under files and directories (walk.h). */
#include "push/walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void walk_list_init(walk_list *l)
{
    memset(l, 0, sizeof *l);
}

void walk_list_fini(walk_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

static int list_add(walk_list *l, const char *p)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **np = realloc(l->paths, cap * sizeof *np);
        if (!np)
            return -1;
        l->paths = np;
        l->cap = cap;
    }
    if (!(l->paths[l->len] = strdup(p)))
        return -1;
    l->len++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_jsonl(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, ".jsonl") == 0;
}

/* depth guards against a tree deep enough to exhaust the stack */
static size_t walk_dir(walk_list *l, const char *dir, int depth, walk_error_fn on_error, void *ctx)
{
    if (depth > 64) {
        on_error(ctx, dir, "directories nested too deeply");
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        on_error(ctx, dir, strerror(errno));
        return 1;
    }
    walk_list names;
    walk_list_init(&names);
    size_t errors = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (list_add(&names, e->d_name) != 0) {
            on_error(ctx, dir, "out of memory");
            errors++;
            break;
        }
    }
    if (errno && !errors) {
        on_error(ctx, dir, strerror(errno));
        errors++;
    }
    closedir(d);
    qsort(names.paths, names.len, sizeof *names.paths, by_name);
    for (size_t i = 0; i < names.len; i++) {
        size_t n = strlen(dir) + strlen(names.paths[i]) + 2;
        char *p = malloc(n);
        if (!p) {
            on_error(ctx, dir, "out of memory");
            errors++;
            break;
        }
        size_t dl = strlen(dir);
        memcpy(p, dir, dl);
        if (dl && dir[dl - 1] == '/')
            dl--;
        p[dl] = '/';
        memcpy(p + dl + 1, names.paths[i], strlen(names.paths[i]) + 1);
        struct stat st;
        if (lstat(p, &st) != 0) {
            if (errno != ENOENT) { /* gone since readdir: nothing to send */
                on_error(ctx, p, strerror(errno));
                errors++;
            }
        } else if (S_ISDIR(st.st_mode)) {
            errors += walk_dir(l, p, depth + 1, on_error, ctx);
        } else if (is_jsonl(names.paths[i]) &&
                   (S_ISREG(st.st_mode) ||
                    (S_ISLNK(st.st_mode) && stat(p, &st) == 0 && S_ISREG(st.st_mode)))) {
            if (list_add(l, p) != 0) {
                on_error(ctx, p, "out of memory");
                errors++;
            }
        }
        free(p);
    }
    walk_list_fini(&names);
    return errors;
}

size_t walk_path(walk_list *l, const char *path, walk_error_fn on_error, void *ctx)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        on_error(ctx, path, strerror(errno));
        return 1;
    }
    if (S_ISDIR(st.st_mode))
        return walk_dir(l, path, 0, on_error, ctx);
    if (list_add(l, path) != 0) {
        on_error(ctx, path, "out of memory");
        return 1;
    }
    return 0;
}
