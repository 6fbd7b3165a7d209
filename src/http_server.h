/* http_server.h - `agent-traced serve` (the HTTP service) and `agent-traced
 * keygen`. Both take argv after the command name (argv[0] is the command)
 * and return the process exit status: 0, 1 on failure, 2 on usage errors. */
#ifndef AGENTTRACED_HTTP_SERVER_H
#define AGENTTRACED_HTTP_SERVER_H

/* Runs the server until SIGINT/SIGTERM; in-flight requests are finished
 * (up to the connection timeout) before it returns 0. */
int cli_serve(int argc, char **argv);
/* Prints a fresh API key: "ast_" + 32 lowercase hex digits from getrandom. */
int cli_keygen(int argc, char **argv);

#endif
