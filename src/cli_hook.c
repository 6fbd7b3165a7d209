/* cli_hook.c - `agent-traced hook`: the Claude Code hook that pushes a
 * session's transcript and its subagents in the background, and `hook
 * install` / `hook uninstall`, which add it to and remove it from Claude
 * Code's settings.json (claude-hooks.md). */
#include "cli.h"
#include "push/push.h"
#include "push/state.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOOK_STDIN_CAP (1 << 20) /* the hook's JSON: a few hundred bytes */
#define HOOK_READ_MS   1000      /* the most we wait for it */
#define HOOK_LOG_CAP   (1 << 20) /* past this the log becomes hook.log.1 */
#define HOOK_MAX_SECS  1800      /* a background push that runs longer is killed */
#define SETTINGS_CAP   (16 << 20)
#define HOOK_TIMEOUT   10 /* seconds, in the installed entries */

static const char *const hook_events[] = {"Stop", "SubagentStop", "SessionEnd"};

static const char usage[] =
    "usage: agent-traced hook [--server URL] [--key KEY] [--state FILE] [--log FILE]\n"
    "       agent-traced hook install [--settings FILE] [--server URL]\n"
    "       agent-traced hook uninstall [--settings FILE]\n"
    "\n"
    "As a Claude Code hook (Stop, SubagentStop, SessionEnd), reads the event's\n"
    "JSON on standard input (session_id, transcript_path, hook_event_name) and\n"
    "pushes that transcript and its subagents (<dir>/<session_id>/subagents/)\n"
    "in a detached background process, as `agent-traced push` does (same state\n"
    "file: only new bytes are sent). It returns at once, always exits 0 and\n"
    "prints nothing; what the push reports and every error go to the log file.\n"
    "\n"
    "  --server URL     the server (default: $AGENT_TRACED_URL, else\n"
    "                   $AGENT_STRACE_ENDPOINT, else http://127.0.0.1:4317)\n"
    "  --key KEY        bearer key (default: the first of $AGENT_STRACE_AUTH_KEY)\n"
    "  --state FILE     push's state file (default: push's)\n"
    "  (the workspace:  $AGENT_TRACED_WORKSPACE, else the key's own)\n"
    "  --log FILE       the log (default: $XDG_STATE_HOME/agent-traced/hook.log,\n"
    "                   else ~/.local/state/agent-traced/hook.log)\n"
    "\n"
    "install adds `<this program> hook` to the settings file (default\n"
    "~/.claude/settings.json) for Stop, SubagentStop and SessionEnd, keeping\n"
    "every other setting and hook; installing twice is installing once.\n"
    "uninstall removes exactly the entries install adds. A settings file that\n"
    "is not valid JSON is an error and is left as it is.\n"
    "\n"
    "  --settings FILE  the settings file (default: ~/.claude/settings.json)\n"
    "  --server URL     written into the installed command\n"
    "  -h, --help       show this help\n";

/* ---- the hook itself ---------------------------------------------------------- */

/* Reads standard input up to the cap within HOOK_READ_MS; malloc'd, NUL
 * terminated, or NULL with why. */
static char *read_stdin(size_t *len, const char **why)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!buf) {
        *why = "out of memory";
        return NULL;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= HOOK_READ_MS) {
            *why = "no complete JSON on standard input within a second";
            break;
        }
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int pr = poll(&p, 1, (int)(HOOK_READ_MS - el));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            *why = pr == 0 ? "no complete JSON on standard input within a second" : strerror(errno);
            break;
        }
        if (n + 1 >= cap) {
            if (cap >= HOOK_STDIN_CAP) {
                *why = "standard input larger than 1 MiB";
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                *why = "out of memory";
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(0, buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            *why = strerror(errno);
            break;
        }
        if (k == 0) {
            buf[n] = 0;
            *len = n;
            return buf;
        }
        n += (size_t)k;
    }
    free(buf);
    return NULL;
}

/* Opens the log for appending (rotated past its cap); -1 when impossible. */
static int open_log(const char *path)
{
    struct stat st;
    if (push_mkdirs_for(path) != 0)
        return -1;
    if (stat(path, &st) == 0 && st.st_size > HOOK_LOG_CAP) {
        char old[PATH_MAX];
        snprintf(old, sizeof old, "%s.1", path);
        rename(path, old);
    }
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static void log_stamp(FILE *f)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "[%s pid %ld] ", ts, (long)getpid());
}

/* A session id that can name a directory below the transcript's. */
static bool sid_ok(const char *s)
{
    return s && *s && s[0] != '.' && !strchr(s, '/') && strlen(s) < 256;
}

static int hook_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'}, {"key", required_argument, NULL, 'k'},
        {"state", required_argument, NULL, 'S'},  {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *key = NULL, *state = NULL, *logp = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'k': key = optarg; break;
        case 'S': state = optarg; break;
        case 'l': logp = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        cli_errorf("hook", "unknown argument '%s' (expected install, uninstall or options)", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    /* From here on the agent's turn must not fail: exit 0 whatever happens,
     * nothing on stdout, errors to the log. */
    char *logalloc = NULL, *statealloc = NULL;
    if (!logp)
        logp = logalloc = push_state_default_path("hook.log");
    if (!state)
        state = statealloc = push_state_default_path("push.json");
    int logfd = logp ? open_log(logp) : -1;
    FILE *log = logfd >= 0 ? fdopen(logfd, "a") : NULL;
    size_t len = 0;
    const char *why = NULL;
    char *in = read_stdin(&len, &why);
    json_t *j = NULL;
    json_error_t je;
    const char *tp = NULL, *sid = NULL, *ev = NULL, *atp = NULL;
    if (in && !(j = json_loadb(in, len, 0, &je)))
        why = je.text;
    if (j) {
        tp = json_string_value(json_object_get(j, "transcript_path"));
        sid = json_string_value(json_object_get(j, "session_id"));
        ev = json_string_value(json_object_get(j, "hook_event_name"));
        atp = json_string_value(json_object_get(j, "agent_transcript_path"));
        if (!tp || !*tp)
            why = "no transcript_path in the hook's JSON";
    }
    if (why || !state) {
        if (log) {
            log_stamp(log);
            fprintf(log, "agent-traced hook: %s\n", why ? why : "no state file: set XDG_STATE_HOME or HOME");
        }
        goto done;
    }
    /* the transcript, its subagents' directory (when there is one), and
     * the subagent transcript the event names */
    char *paths[3];
    int np = 0;
    char subdir[PATH_MAX];
    paths[np++] = (char *)tp;
    const char *slash = strrchr(tp, '/');
    struct stat st;
    if (slash && sid_ok(sid) &&
        snprintf(subdir, sizeof subdir, "%.*s/%s/subagents", (int)(slash - tp), tp, sid) <
            (int)sizeof subdir &&
        stat(subdir, &st) == 0 && S_ISDIR(st.st_mode))
        paths[np++] = subdir;
    if (atp && *atp && access(atp, F_OK) == 0)
        paths[np++] = (char *)atp;
    if (log)
        fflush(log);

    pid_t pid = fork();
    if (pid < 0) {
        if (log) {
            log_stamp(log);
            fprintf(log, "agent-traced hook: cannot fork: %s\n", strerror(errno));
        }
        goto done;
    }
    if (pid > 0) {
        /* the intermediate child exits at once: reap it */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto done;
    }
    /* a new session, then a grandchild the hook's caller never waits for:
     * no terminal, no inherited stdin/stdout/stderr */
    setsid();
    if (fork() != 0)
        _exit(0);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(logfd >= 0 ? logfd : nul, 1);
        dup2(logfd >= 0 ? logfd : nul, 2);
        if (nul > 2)
            close(nul);
    }
    /* nothing else of Claude Code's stays open here either */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != logfd)
            close(fd);
    signal(SIGPIPE, SIG_IGN);
    alarm(HOOK_MAX_SECS);
    /* hooks of one machine push one at a time, so a second one sees what
     * the first sent */
    char lockp[PATH_MAX];
    snprintf(lockp, sizeof lockp, "%s.hook.lock", state);
    int lk = push_mkdirs_for(lockp) == 0 ? open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (lk >= 0)
        flock(lk, LOCK_EX);
    if (log) {
        log_stamp(log);
        fprintf(log, "%s %s: %s\n", ev ? ev : "(no hook_event_name)", sid ? sid : "(no session_id)", tp);
        fflush(log);
    }
    const char *srv = push_default_server(server);
    cli_push_paths("hook", srv, push_default_key(key), push_default_workspace(NULL), 4, false, state, false, paths, np);
    fflush(stdout);
    fflush(stderr);
    _exit(0);
done:
    if (log)
        fclose(log);
    else if (logfd >= 0)
        close(logfd);
    json_decref(j);
    free(in);
    free(logalloc);
    free(statealloc);
    return 0;
}

/* ---- install / uninstall ------------------------------------------------------ */

/* Is this hook entry one that install adds: {"type": "command", "command":
 * "<...>/agent-traced hook ..."}? */
static bool is_ours(json_t *h)
{
    const char *cmd = json_string_value(json_object_get(h, "command"));
    if (!cmd)
        return false;
    while (*cmd == ' ')
        cmd++;
    size_t n = strcspn(cmd, " ");
    const char *w1 = cmd, *w2 = cmd + n;
    size_t l1 = n;
    if (l1 >= 2 && (w1[0] == '\'' || w1[0] == '"') && w1[l1 - 1] == w1[0]) {
        w1++;
        l1 -= 2;
    }
    const char *base = w1;
    for (size_t i = 0; i < l1; i++)
        if (w1[i] == '/')
            base = w1 + i + 1;
    size_t bl = l1 - (size_t)(base - w1);
    if (bl != strlen("agent-traced") || memcmp(base, "agent-traced", bl) != 0)
        return false;
    while (*w2 == ' ')
        w2++;
    return strncmp(w2, "hook", 4) == 0 && (w2[4] == 0 || w2[4] == ' ');
}

/* The settings file to edit: a symbolic link's target, so the link stays. */
static void settings_target(const char *path, char *out, size_t n)
{
    char rp[PATH_MAX];
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, rp))
        snprintf(out, n, "%s", rp);
    else
        snprintf(out, n, "%s", path);
}

/* Loads the settings: *root the object ({} for a missing or blank file).
 * -1 with a message naming the file when it is not a JSON object. */
static int settings_load(const char *path, json_t **root, bool *existed, mode_t *mode)
{
    *existed = false;
    *mode = 0600;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *root = json_object();
            return 0;
        }
        cli_errorf("hook", "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SETTINGS_CAP) {
        cli_errorf("hook", "%s: not a regular file of at most 16 MiB", path);
        close(fd);
        return -1;
    }
    *existed = true;
    *mode = st.st_mode & 07777;
    size_t len = (size_t)st.st_size, got = 0;
    char *buf = malloc(len + 1);
    while (buf && got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != len) {
        cli_errorf("hook", "%s: cannot read it", path);
        free(buf);
        return -1;
    }
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
        i++;
    if (i == len) {
        free(buf);
        *root = json_object();
        return 0;
    }
    json_error_t je;
    *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!*root) {
        cli_errorf("hook", "%s: not valid JSON (line %d, column %d: %s); left unchanged", path, je.line,
                   je.column, je.text);
        return -1;
    }
    if (!json_is_object(*root)) {
        cli_errorf("hook", "%s: not a JSON object; left unchanged", path);
        json_decref(*root);
        return -1;
    }
    return 0;
}

/* Writes root to path atomically (a new file renamed over it), mode kept. */
static int settings_save(const char *path, json_t *root, mode_t mode)
{
    if (push_mkdirs_for(path) != 0) {
        cli_errorf("hook", "%s: cannot create its directory: %s", path, strerror(errno));
        return -1;
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.agent-traced.XXXXXX", path);
    int fd = text ? mkstemp(tmp) : -1;
    if (fd < 0) {
        cli_errorf("hook", "%s: cannot write: %s", path, text ? strerror(errno) : "out of memory");
        free(text);
        return -1;
    }
    size_t n = strlen(text);
    text[n] = 0;
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        cli_errorf("hook", "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* This program, as a shell word. */
static void self_command(char *out, size_t n, const char *server)
{
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0)
        snprintf(exe, sizeof exe, "agent-traced");
    else
        exe[k] = 0;
    bool plain = true;
    for (const char *p = exe; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+", *p))
            plain = false;
    int w = plain ? snprintf(out, n, "%s hook", exe) : snprintf(out, n, "'%s' hook", exe);
    if (server && w > 0 && (size_t)w < n)
        snprintf(out + w, n - (size_t)w, " --server '%s'", server);
}

static int hook_edit(int argc, char **argv, bool install)
{
    static const struct option opts[] = {
        {"settings", required_argument, NULL, 'f'},
        {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *settings = NULL, *server = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': settings = optarg; break;
        case 's':
            if (!install) {
                cli_errorf("hook", "uninstall takes no --server");
                return 2;
            }
            server = optarg;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        cli_errorf("hook", "%s: unexpected argument '%s'", install ? "install" : "uninstall", argv[optind]);
        return 2;
    }
    if (server && (strchr(server, '\'') ||
                   (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0))) {
        cli_errorf("hook", "--server: expected an http:// or https:// URL, got '%s'", server);
        return 2;
    }
    char defpath[PATH_MAX], path[PATH_MAX];
    if (!settings) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            cli_errorf("hook", "HOME is not set: give --settings FILE");
            return 2;
        }
        snprintf(defpath, sizeof defpath, "%s/.claude/settings.json", home);
        settings = defpath;
    }
    settings_target(settings, path, sizeof path);
    json_t *root;
    bool existed;
    mode_t mode;
    if (settings_load(path, &root, &existed, &mode) != 0)
        return 1;
    int rc = 1;
    json_t *hooks = json_object_get(root, "hooks");
    if (hooks && !json_is_object(hooks)) {
        cli_errorf("hook", "%s: \"hooks\" is not an object; left unchanged", path);
        goto out;
    }
    for (size_t i = 0; i < sizeof hook_events / sizeof *hook_events; i++) {
        json_t *arr = json_object_get(hooks, hook_events[i]);
        if (arr && !json_is_array(arr)) {
            cli_errorf("hook", "%s: \"hooks\".\"%s\" is not an array; left unchanged", path, hook_events[i]);
            goto out;
        }
    }
    if (!install && !existed) {
        printf("%s: no such file: nothing to uninstall\n", path);
        rc = 0;
        goto out;
    }
    char cmd[PATH_MAX + 200];
    self_command(cmd, sizeof cmd, server);
    int changed = 0;
    if (install && !hooks) {
        if (json_object_set_new(root, "hooks", hooks = json_object()) != 0)
            goto oom;
    }
    for (size_t i = 0; hooks && i < sizeof hook_events / sizeof *hook_events; i++) {
        json_t *arr = json_object_get(hooks, hook_events[i]);
        bool found = false;
        int before = changed;
        size_t g = 0;
        while (arr && g < json_array_size(arr)) {
            json_t *grp = json_array_get(arr, g);
            json_t *hs = json_object_get(grp, "hooks");
            size_t removed = 0;
            for (size_t h = 0; json_is_array(hs) && h < json_array_size(hs);) {
                json_t *ent = json_array_get(hs, h);
                if (!is_ours(ent)) {
                    h++;
                    continue;
                }
                if (install) {
                    if (!found && strcmp(json_string_value(json_object_get(ent, "command")), cmd) != 0) {
                        json_object_set_new(ent, "command", json_string(cmd));
                        changed++;
                    }
                    if (found) { /* a duplicate of ours: once is enough */
                        json_array_remove(hs, h);
                        removed++;
                        changed++;
                        continue;
                    }
                    found = true;
                    h++;
                } else {
                    json_array_remove(hs, h);
                    removed++;
                    changed++;
                }
            }
            if (removed && json_array_size(hs) == 0) {
                json_array_remove(arr, g); /* the group held only ours */
                continue;
            }
            g++;
        }
        if (install && !found) {
            json_t *grp = json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "matcher", "", "hooks", "type", "command",
                                    "command", cmd, "timeout", HOOK_TIMEOUT);
            if (!grp)
                goto oom;
            if (!arr && json_object_set_new(hooks, hook_events[i], arr = json_array()) != 0) {
                json_decref(grp);
                goto oom;
            }
            if (json_array_append_new(arr, grp) != 0)
                goto oom;
            changed++;
        }
        if (!install && arr && changed > before && json_array_size(arr) == 0)
            json_object_del(hooks, hook_events[i]);
    }
    if (!install && changed && hooks && json_object_size(hooks) == 0)
        json_object_del(root, "hooks");
    if (!changed) {
        printf("%s: %s\n", path, install ? "already installed" : "not installed: nothing to remove");
        rc = 0;
        goto out;
    }
    if (settings_save(path, root, existed ? mode : 0600) != 0)
        goto out;
    if (install)
        printf("%s: installed `%s` for Stop, SubagentStop and SessionEnd\n", path, cmd);
    else
        printf("%s: removed agent-traced's hooks\n", path);
    rc = 0;
    goto out;
oom:
    cli_errorf("hook", "out of memory");
out:
    json_decref(root);
    return rc;
}

int cli_hook(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "install") == 0)
        return hook_edit(argc - 1, argv + 1, true);
    if (argc >= 2 && strcmp(argv[1], "uninstall") == 0)
        return hook_edit(argc - 1, argv + 1, false);
    return hook_run(argc, argv);
}
