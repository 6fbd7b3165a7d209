/* cli.h - the agent-traced subcommands. Each takes argv after the command
 * name (argv[0] is the command) and returns the process exit status. */
#ifndef AGENTTRACED_CLI_H
#define AGENTTRACED_CLI_H

#include <stdbool.h>
#include <stdio.h>

int cli_import(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_gc(int argc, char **argv);
/* `agent-traced usage` (cli_usage.c): token usage recorded at import */
int cli_usage(int argc, char **argv);
int cli_log(int argc, char **argv);
/* verify --log / --proof (cli_audit.c): argv as cli_verify's */
int cli_audit(int argc, char **argv);
/* `agent-traced witness` (cli_witness.c): a c2sp.org/tlog-witness witness */
int cli_witness(int argc, char **argv);
/* `agent-traced push` / `hook` (cli_push.c, cli_hook.c, src/push/) */
int cli_push(int argc, char **argv);
int cli_hook(int argc, char **argv);
/* `agent-traced db` (cli_db.c, src/db/): the PostgreSQL schema, import, export */
int cli_db(int argc, char **argv);
/* Walks paths, pushes what they hold and prints push's summary line. */
int cli_push_paths(const char *cmd, const char *server, const char *key, const char *workspace, int jobs,
                   bool dry_run, const char *state, bool progress, char **paths, int npaths);

/* Prints "agent-traced <cmd>: <message>" to stderr. */
void cli_errorf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Default storage: --storage, else $AGENT_STRACE_STORAGE, else ./.agent-traces. */
const char *cli_default_storage(void);

#endif
