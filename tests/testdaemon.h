/* testdaemon.h - the real `agent-traced serve` for the C integration
 * tests (test_http, test_history): started on port 0 (its first line on
 * standard error is `listening on HOST:PORT`), its standard error drained
 * into <work>/<name>.log, stopped with a signal.
 *
 * With AT_TEST_PGURL set (tests/http_db.sh, tests/history_db.sh: a private
 * PostgreSQL cluster) every server runs on `serve --database` instead: each
 * server name its own database (a restart reuses it), staging in
 * <work>/<name>.tmp ($TMPDIR), one --log-key for all, and the storage
 * directory a check reads written by `db export` (stored()) right before it
 * reads it: the same checks against the same reference bytes.
 *
 * The test calls daemon_setup(bin, work) once, work an existing directory. */
#ifndef AGENTTRACED_TESTS_TESTDAEMON_H
#define AGENTTRACED_TESTS_TESTDAEMON_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *td_bin;  /* the program */
static const char *td_work; /* storages, logs, the log key */
static const char *pgurl;   /* AT_TEST_PGURL: the servers run on the database */
static char log_key[4200];  /* ... with this --log-key */

typedef struct {
    pid_t pid;
    int port;
    int errfd;
    pthread_t drain;
    char storage[4200];
    char log[4200];
    char tmp[4200]; /* the staging directory */
    char url[4400]; /* the database, with AT_TEST_PGURL */
} daemon_t;

static inline void *drain_stderr(void *arg)
{
    daemon_t *d = arg;
    FILE *f = fopen(d->log, "a");
    char b[4096];
    ssize_t k;
    while ((k = read(d->errfd, b, sizeof b)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && f) {
            fwrite(b, 1, (size_t)k, f);
            fflush(f); /* log_has() reads it while the server runs */
        }
    if (f)
        fclose(f);
    return NULL;
}

/* Runs a shell command quietly; true when it exits 0. */
static inline bool run_quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline bool run_quiet(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd) == 0;
}

/* With AT_TEST_PGURL (a plain postgres://.../DBNAME URL): the server
 * name's database of that cluster (at_ + the name, lower case, other
 * characters '_'), created and migrated when it is not there yet; a
 * restart reuses it. */
static inline bool database_for(daemon_t *d, const char *name)
{
    char db[128];
    size_t k = 0;
    for (const char *c = name; *c && k < 60; c++)
        db[k++] = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c
                  : (*c >= 'A' && *c <= 'Z')                            ? (char)(*c - 'A' + 'a')
                                                                        : '_';
    db[k] = 0;
    const char *slash = strrchr(pgurl, '/');
    if (!slash)
        return false;
    snprintf(d->url, sizeof d->url, "%.*s/at_%s", (int)(slash - pgurl), pgurl, db);
    /* CREATE DATABASE fails when it exists: a restart of the same server */
    run_quiet("psql -X -q -d '%s' -c 'CREATE DATABASE at_%s' > /dev/null 2>&1", pgurl, db);
    return run_quiet("'%s' db migrate --database '%s' > /dev/null", td_bin, d->url);
}

/* The storage directory as the server holds it, for the checks that read
 * its files: with AT_TEST_PGURL, written afresh by `db export` (a failed
 * export is a failed check: a check that a file is absent must not pass
 * on an empty directory). */
static inline const char *stored(const daemon_t *d)
{
    if (pgurl) {
        bool ok = run_quiet("rm -rf '%s'", d->storage) &&
                  run_quiet("'%s' db export --database '%s' --storage '%s' > /dev/null", td_bin, d->url, d->storage);
        CHECK(ok, "db export of %s into %s", d->url, d->storage);
    }
    return d->storage;
}

/* Starts `agent-traced serve --port 0 --storage <work>/<name> extra...`
 * (--database, see stored()) with env (NAME=VALUE or NULL) set; false when
 * it did not come up. */
static inline bool start(daemon_t *d, const char *name, const char *env, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->storage, sizeof d->storage, "%s/%s", td_work, name);
    snprintf(d->log, sizeof d->log, "%s/%s.log", td_work, name);
    if (pgurl) {
        snprintf(d->tmp, sizeof d->tmp, "%s/%s.tmp", td_work, name);
        mkdir(d->tmp, 0700);
        if (!database_for(d, name))
            return false;
    } else {
        snprintf(d->tmp, sizeof d->tmp, "%s/.agent-traced/tmp", d->storage);
    }
    int p[2];
    if (pipe(p) < 0)
        return false;
    const char *argv[32] = {td_bin, "serve", "--port", "0", "--storage", d->storage, "--threads", "4"};
    int n = 8;
    if (pgurl) {
        argv[4] = "--database";
        argv[5] = d->url;
        argv[n++] = "--log-key"; /* what every replica is started with */
        argv[n++] = log_key;
    }
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (d->pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        unsetenv("AGENT_STRACE_AUTH_KEY");
        if (pgurl)
            setenv("TMPDIR", d->tmp, 1);
        if (env)
            putenv((char *)env);
        execv(td_bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    d->errfd = p[0];
    /* the first line: listening on HOST:PORT */
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1) {
        struct pollfd pfd = {d->errfd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t k = read(d->errfd, line + len, 1);
        if (k <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        fprintf(stderr, "server did not start: [%s]\n", line);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        return false;
    }
    d->port = (int)strtol(colon + 1, NULL, 10);
    pthread_create(&d->drain, NULL, drain_stderr, d);
    return d->port > 0;
}

/* Sends sig and returns the exit status (-1 if it did not exit in 20 s). */
static inline int stop(daemon_t *d, int sig)
{
    kill(d->pid, sig);
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            pthread_join(d->drain, NULL);
            close(d->errfd);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    pthread_join(d->drain, NULL);
    close(d->errfd);
    return -1;
}

/* Reads all of a command's standard output (*n its length); NULL when it
 * fails or says nothing. Free it. */
static inline char *read_command(const char *cmd, size_t *n)
{
    FILE *f = popen(cmd, "r");
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (size_t k = 1; f && k > 0;) {
        if (len + 65536 + 1 > cap) {
            char *m = realloc(out, cap = (len + 65536 + 1) * 2);
            if (!m)
                break;
            out = m;
        }
        len += (k = fread(out + len, 1, 65536, f));
    }
    int st = f ? pclose(f) : -1;
    if (st != 0 || !len) {
        free(out);
        return NULL;
    }
    out[len] = 0;
    *n = len;
    return out;
}

/* The bytes of <sid>/<file> (events.ndjson or meta.json) as d stored them,
 * *n their length (NULL when there are none): the storage directory's
 * file, or with AT_TEST_PGURL the database's: the current version's events
 * as the server reads them out of it, the session's metadata column. The
 * session id must be a plain one (letters, digits, '-', '_', '.'). */
static inline char *stored_file(const daemon_t *d, const char *sid, const char *file, size_t *n)
{
    char cmd[8192];
    *n = 0;
    if (!pgurl) {
        snprintf(cmd, sizeof cmd, "%s/%s/%s", d->storage, sid, file);
        return t_read_file(cmd, n);
    }
    if (strcmp(file, "events.ndjson") == 0)
        snprintf(cmd, sizeof cmd, "curl -sf --noproxy '*' 'http://127.0.0.1:%d/sessions/%s/events'", d->port, sid);
    else /* psql ends the value with a newline of its own */
        snprintf(cmd, sizeof cmd,
                 "psql -X -q -t -A -d '%s' -c \"SELECT convert_from(meta, 'UTF8') FROM sessions WHERE workspace = "
                 "'default' AND id = '%s'\" | head -c -1",
                 d->url, sid);
    return read_command(cmd, n);
}

/* Reads AT_TEST_PGURL and, with it, makes the log key. false when it
 * cannot. */
static inline bool daemon_setup(const char *bin, const char *work)
{
    td_bin = bin;
    td_work = work;
    if ((pgurl = getenv("AT_TEST_PGURL")) && !*pgurl)
        pgurl = NULL;
    snprintf(log_key, sizeof log_key, "%s/log.key", work);
    return !pgurl ||
           run_quiet("'%s' log keygen --origin test.example/agent-traced --out '%s' > /dev/null", bin, log_key);
}

#endif
