/* walk.h - the transcripts named on a command line: files as given,
 * directories walked recursively for *.jsonl (a session's
 * the *.jsonl files of
 * <session>/subagents/ included). Shared by push, hook and import. */
#ifndef AGENTTRACED_PUSH_WALK_H
#define AGENTTRACED_PUSH_WALK_H

#include <stddef.h>

/* A growing list of paths (each malloc'd, owned by the list). */
typedef struct {
    char **paths;
    size_t len, cap;
} walk_list;

void walk_list_init(walk_list *l);
void walk_list_fini(walk_list *l);

/* Reports a path that could not be walked (its name and the reason). */
typedef void (*walk_error_fn)(void *ctx, const char *path, const char *reason);

/* Appends the transcripts under path to l: path itself when it is not a
 * directory, else every regular *.jsonl file below it, in name order
 * (symbolic links to directories are not followed below the top). Each
 * unreadable path is reported through on_error; returns the number of
 * such errors (0: all walked). Out of memory counts as an error. */
size_t walk_path(walk_list *l, const char *path, walk_error_fn on_error, void *ctx);

#endif
