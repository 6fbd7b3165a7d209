/* push.h - sending transcripts to an agent-traced server, only what it
 * does not hold yet (the engine of `agent-traced push` and `hook`).
 *
 * Each file is planned against the state file (state.h): new, grown
 * (its first/last 64 KiB already sent unchanged: only the new bytes go,
 * POST /import?session=&offset=), rewritten (sent whole), or unchanged
 * (nothing sent). Uploads stream the file through gzip (never the whole
 * transcript in memory), `jobs` at a time, one thread and one libcurl easy
 * handle (a kept-alive connection) per job. The state is saved after
 * completed uploads, so a killed push resumes where it stopped. */
#ifndef AGENTTRACED_PUSH_PUSH_H
#define AGENTTRACED_PUSH_PUSH_H

#include "push/walk.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *cmd;        /* prefixes messages: "agent-traced <cmd>: " */
    const char *server;     /* base URL, e.g. http://127.0.0.1:4317 */
    const char *key;        /* bearer key; NULL or "": none */
    const char *workspace;  /* sent as X-Agent-Traced-Workspace; NULL: the key's (or the default) */
    const char *state_path; /* the state file; NULL: keep none */
    int jobs;               /* uploads at a time, >= 1 */
    bool dry_run;           /* list what would be sent, send nothing */
    bool progress;          /* draw a progress bar on errs */
    FILE *out;              /* the dry-run listing */
    FILE *errs;             /* one line per failure, naming the file */
} push_options;

typedef struct {
    uint64_t files, created, extended, replaced, unchanged, failed;
    uint64_t bytes_sent; /* transcript bytes sent (before compression) by uploads that succeeded */
} push_summary;

/* Pushes files (walk_errors: paths that could not be walked, counted as
 * failed). Fills sum; returns 0 when nothing failed, 1 otherwise. */
int push_run(const push_options *o, const walk_list *files, size_t walk_errors, push_summary *sum);

/* Writes sum as one JSON line. */
void push_summary_print(FILE *f, const push_summary *sum, bool dry_run);

/* The server to use: url when given, else $AGENT_TRACED_URL, else
 * $AGENT_STRACE_ENDPOINT, else http://127.0.0.1:4317. */
const char *push_default_server(const char *url);
/* The key to use: key when given, else the first key of
 * $AGENT_STRACE_AUTH_KEY (a comma-separated list, as the server reads it);
 * NULL when none. The result lives in a static buffer. */
const char *push_default_key(const char *key);
/* The workspace to name: ws when given, else $AGENT_TRACED_WORKSPACE; NULL
 * when neither (the server then uses the key's workspace). */
const char *push_default_workspace(const char *ws);

#endif
