#!/usr/bin/env python3
"""readme.py - README.md's examples, run as written.

Every fenced ```sh block of README.md is run, in order, with bash, in a
sandbox: HOME holds ~/.claude/projects/<project>/ with copies of the
fixtures (tests/fixtures/claude, subagents included), the working
directory has ./agent-traced (a link to the program under test), the
environment has no AGENT_STRACE_* / AGENT_TRACED_* / AGENT_TRACE_* of the
caller and its XDG_STATE_HOME is in the sandbox. One bash per README
section (a terminal: the sections are different machines, a server,
laptops, an auditor) runs its blocks one command at a time, so what a
block exports or assigns (VKEY) is there for the next ones of its section.

Each command must exit 0 (pipefail), each HTTP response a curl prints must
be a 2xx (curl is wrapped to report them), and what the README says a
command prints (`# -> {...}` lines, `"key": value` in a trailing comment)
is compared with what it printed. BLOCKS below names every block: a block
it does not name fails ("not covered"), so a new example cannot go
untested; the few blocks that are not examples of the product (CI itself)
are listed with the reason they are not run. SUBSTITUTIONS lists every
change made to a command before it runs, and why.

Prints "readme: N passed, M failed"; exit 1 on a failure.
Usage: readme.py BINARY SRCDIR [README]
"""
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import Checks, Server, alive, call, wait_listening  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./agent-traced")
SRC = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else ".")
README = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else os.path.join(SRC, "README.md"))
FIX = os.path.join(SRC, "tests", "fixtures", "claude")
WORK = tempfile.mkdtemp(prefix="readme.")
HOME = os.path.join(WORK, "home")
CWD = os.path.join(WORK, "cwd")
OUT = os.path.join(WORK, "out")  # each command's stdout, stderr
PROJECT = "-home-user-src-demo"  # ~/.claude/projects/<project>, as Claude Code names a project
SID = "4d5611e5-241a-462a-8d15-5122611a9569"  # <session>, <id>: the fixture with subagents
HISTORY_FIXTURE = "tool_heavy.jsonl"  # session.jsonl in "Storage and history", cut and grown
VARLIB = os.path.join(WORK, "var", "lib", "agent-traced")
CMD_TIMEOUT = 60
OUTFILES = itertools.count(1)
check = Checks("readme")


# --- the README's blocks -------------------------------------------------------


class Block:
    def __init__(self, line, lang, section):
        self.line, self.lang, self.section, self.lines = line, lang, section, []

    def items(self):
        """("cmd", line, text) with continuation lines joined, and
        ("comment", line, text) for the lines that are only a comment."""
        out, i = [], 0
        while i < len(self.lines):
            n, t = self.lines[i]
            i += 1
            if not t.strip():
                continue
            if t.lstrip().startswith("#"):
                out.append(("comment", n, t.strip()))
                continue
            while t.endswith("\\") and i < len(self.lines):
                t += "\n" + self.lines[i][1]
                i += 1
            out.append(("cmd", n, t))
        return out

    def first_command(self):
        for kind, _, t in self.items():
            if kind == "cmd":
                return strip_comment(t.splitlines()[0]).rstrip()
        return ""


def parse_readme(path):
    blocks, section, cur = [], "", None
    for n, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
        if cur is None:
            if line.startswith("```"):
                cur = Block(n, line[3:].strip(), section)
            elif line.startswith("## "):
                section = line[3:].strip()
        elif line.startswith("```"):
            blocks.append(cur)
            cur = None
        else:
            cur.lines.append((n, line))
    return blocks


def strip_comment(t):
    """A trailing `# ...` (after a blank, outside quotes: enough for the README)."""
    q = None
    for i, c in enumerate(t):
        if q:
            q = None if c == q else q
        elif c in "'\"":
            q = c
        elif c == "#" and (i == 0 or t[i - 1] in " \t"):
            return t[:i].rstrip()
    return t


def trailing_comment(t):
    s = strip_comment(t)
    return t[len(s):].strip()


PAIR = re.compile(r'"(\w+)":\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')


def stated_pairs(text):
    """The `"key": value` pairs a README comment states; "..." is any value."""
    return [(k, json.loads(v)) for k, v in PAIR.findall(text)]


def json_lines(out):
    res = []
    for line in out.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict):
            res.append(v)
    return res


def matches(obj, pairs):
    return all(k in obj and (v == "..." or obj[k] == v) for k, v in pairs)


# --- the sandbox's shell ----------------------------------------------------------


class Result:
    def __init__(self, line, cmd, rc, out, err):
        self.line, self.cmd, self.rc, self.out, self.err = line, cmd, rc, out, err
        self.statuses = [int(s) for s in re.findall(r"^readme-http-status (\d+)$", err, re.M)]
        self.json = json_lines(out)


class ShellStuck(Exception):
    pass


class BlockAbort(Exception):
    """The rest of a block depends on what failed (a server that did not
    start, a placeholder without a value): not run, so that nothing falls
    back to a default port that may be another program's."""


class Shell:
    """One bash for a README section: commands are sent one at a time, each
    in a { } group (so assignments and exports stay) with its stdout and
    stderr in files, and its status read back."""

    def __init__(self, env):
        self.p = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=CWD, env=env)
        self.n, self.buf = 0, b""
        # curl's exit status says nothing of the HTTP status: the wrapper
        # reports each response's status on stderr (stdout is untouched).
        self.send("set -o pipefail\n"
                  "curl() { command curl -w '%{stderr}\\nreadme-http-status %{http_code}\\n' \"$@\"; }\n")

    def send(self, script, timeout=CMD_TIMEOUT):
        self.n += 1
        mark = "__readme_done_%d" % self.n
        self.p.stdin.write((script + '\necho "%s $?"\n' % mark).encode())
        self.p.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while True:
            m = re.search(rb"(?m)^" + mark.encode() + rb" (\S+)\n", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(1).decode()
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk

    def run(self, line, cmd):
        n = next(OUTFILES)
        o, e = os.path.join(OUT, "%d.out" % n), os.path.join(OUT, "%d.err" % n)
        rc = self.send("{ %s\n} >%s 2>%s </dev/null" % (cmd, o, e))
        if rc is None:
            raise ShellStuck("README line %d did not finish within %d s" % (line, CMD_TIMEOUT))
        rd = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""  # noqa: E731
        r = Result(line, cmd, int(rc), rd(o), rd(e))
        r.outpath = o
        return r

    def background(self, cmd, errfile):
        """cmd & with stderr in errfile: its pid ($!: bash execs a simple command)."""
        rc = self.send("%s >/dev/null 2>%s </dev/null &\necho $! >%s.pid" % (cmd, errfile, errfile))
        try:
            return int(open(errfile + ".pid").read()) if rc == "0" else None
        except (OSError, ValueError):
            return None

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class ShellServer:
    """A server a README line started in the shell (serve, witness). It is
    bash's child, not ours: it is known by its pid and start time, and
    signalled only while both still match (a pid is reused once reaped)."""

    def __init__(self, pid, port, errfile, storage):
        self.pid, self.port, self.errfile, self.storage = pid, port, errfile, storage
        self.started = start_time(pid)
        self.url = "http://127.0.0.1:%d" % (port or 0)

    def ours(self):
        return self.started is not None and alive(self.pid) and start_time(self.pid) == self.started

    def signal(self, sig):
        if self.ours():
            os.kill(self.pid, sig)

    def log_text(self):
        return open(self.errfile, errors="replace").read()

    def stop(self):
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.ours() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.signal(signal.SIGKILL)


class HarnessServer:
    """A server the harness started for a section whose text says one runs."""

    def __init__(self, srv, storage):
        self.srv, self.storage = srv, storage
        self.pid, self.port, self.url = srv.pid, srv.port, srv.url

    def log_text(self):
        return "".join(self.srv.log)

    def ours(self):
        return self.srv.p.poll() is None  # our child: its pid stays ours until we wait for it

    def signal(self, sig):
        if self.ours():
            self.srv.p.send_signal(sig)

    def stop(self):
        if self.srv.p.poll() is None:
            self.srv.stop()


# --- the run's state ---------------------------------------------------------------


class Ctx:
    def __init__(self, shell):
        self.shell = shell
        self.ports = {}  # the README's port (4317, 4318) -> the server answering it now
        self.section_servers = []  # started by README lines of the current section
        self.all_servers = []
        self.key = None  # ast_...
        self.sid = SID  # <id>
        self.keylines = []  # line 2 of each keygen, for keys.txt
        self.last = None  # the last command's Result
        self.history = []

    def server(self, port=4317):
        s = self.ports.get(port)
        if s is None:
            raise RuntimeError("no server stands for port %d here" % port)
        return s

    def start_harness_server(self, storage, *args, port=4317):
        srv = Server(BIN, storage, *args, cwd=CWD, base_env=ENV)
        h = HarnessServer(srv, os.path.abspath(os.path.join(CWD, storage or ".agent-traces")))
        self.all_servers.append(h)
        self.ports[port] = h
        print("# harness: serve%s on port %d for README port %d" % ("".join(" " + a for a in args), h.port, port))
        return h

    def shell_export(self, assignment):
        print("# harness: " + assignment)
        self.shell.send(assignment)


# --- substitutions: every change made to a README command before it runs ------------


def copy_session(ctx):
    dst = os.path.join(CWD, "copy", ctx.sid)
    if not os.path.isdir(dst):
        shutil.copytree(os.path.join(CWD, ".agent-traces", ctx.sid), dst)
    return "./copy/" + ctx.sid


def first_event_id(ctx):
    with open(os.path.join(ctx.server().storage, ctx.sid, "events.ndjson")) as f:
        return json.loads(f.readline())["event_id"]


def log_size(ctx):
    """The signed size, once it covers two entries at least (the log signs
    within a second of an upload; a loaded machine takes longer), so that
    from=1 to it is a proof with hashes in it."""
    size = "0"
    for _ in range(200):
        st, _, b = call("GET", ctx.server().url + "/log/checkpoint")
        size = b.decode().splitlines()[1] if st == 200 else "0"
        if int(size) >= 2:
            break
        time.sleep(0.05)
    return size


def our_pid(ctx):
    s = ctx.server()
    if not s.ours():
        raise RuntimeError("the server of port 4317 (pid %d) is gone" % s.pid)
    return str(s.pid)


def port_of(ctx, m):
    return "127.0.0.1:%d" % ctx.server(int(m.group(1))).port


# (pattern, replacement(ctx, match), why). Applied in this order, to every command.
SUBSTITUTIONS = [
    (r"<project>", lambda c, m: PROJECT,
     "the sandbox's ~/.claude/projects/<project>/ holds the fixtures"),
    (r"<session>", lambda c, m: SID,
     "a fixture transcript with subagents"),
    (r"<id or unique prefix>", lambda c, m: c.sid[:8],
     "a unique prefix of the session's id (the prefix is what needs trying)"),
    (r"\./copy/<id>", lambda c, m: copy_session(c),
     "./copy/<id>: the harness copies the stored session directory there (an auditor's copy)"),
    (r"<id>", lambda c, m: c.sid,
     "the session the section is about: <session> above, session.jsonl's in 'Storage and history'"),
    (r"<event_id>", lambda c, m: first_event_id(c),
     "the event_id of the session's first stored event"),
    (r"from=N&to=M", lambda c, m: "from=1&to=" + log_size(c),
     "N, M: 1 and the log's size in the server's current checkpoint"),
    (r"ast_\.\.\.", lambda c, m: c.key,
     "a real key: Alice's (line 1 of her keygen) in 'A team's setup', else one the section's server takes"),
    (r"(?:127\.0\.0\.1|traces\.example):(4317|4318)", port_of,
     "servers run on free ports (--port 0): the port of the server that stands for 4317 (serve) / 4318 (witness)"),
    (r"/var/lib/agent-traced", lambda c, m: VARLIB,
     "a directory in the sandbox"),
    (r"\$\(pidof agent-traced\)", lambda c, m: our_pid(c),
     "the pid of the server this block started: tests run in parallel, other agent-traced processes are not ours"),
]
# Lines that start a long-running server (./agent-traced serve ..., ./agent-traced
# witness ... &) run in the background, `--port P` replaced by `--port 0` (serve
# without --port gets it): the port is read from their `listening on` line. They
# are waited for and stopped at the end of their section (a serve on the storage
# of a running one first stops that one, as its port would be taken).
SERVER_LINE = re.compile(r"^\./agent-traced (serve|witness)\b(?!.*--print-vkey)")
PLACEHOLDER = re.compile(r"<[a-z][a-z_ ]*>|ast_\.\.\.")

# Files the README's commands name that the harness provides in the working
# directory (nothing in the commands changes for them):
#   session.jsonl        a copy of tests/fixtures/claude/tool_heavy.jsonl, first cut, then
#                        grown, as the comments of "Storage and history" say
#   x.jsonl              a copy of tests/fixtures/claude/short.jsonl
#   path/to/events.ndjson  a copy of a stored session's events.ndjson
#   keys.txt             line 2 of each keygen, as "# keys.txt holds line 2 of each" says
#   $N                   the offset block's N: a shell variable set to the session's
#                        transcript_bytes from GET /sessions/<id>/versions, as its text says
#
# What the README's text says happens but no command of it does, the harness
# does (each is printed as "# harness: ..." or "# line N: ..."):
#   * "With the server running" ('Using it', and 'Transparency log' after it):
#     `./agent-traced serve` in the working directory (the Two commands' server);
#     'Pushing transcripts' and 'Storage and history' get a server of their own
#     (push's first run must create 9, the first upload must be "created")
#   * Bob's push ("Bob's key goes there anyway"): his keygen line 2 appended to
#     keys.txt, SIGHUP (as the block above says), his key exported
#   * "the same file again, or an older snapshot", "the transcript grew",
#     "anything else": the upload above run again on such a session.jsonl
#   * curl is a shell function adding `-w '%{stderr}...%{http_code}'`: each
#     response's status on stderr, checked to be a 2xx (stdout is untouched)


def substitute(ctx, cmd):
    for pat, fn, _why in SUBSTITUTIONS:
        cmd = re.sub(pat, lambda m: fn(ctx, m), cmd)
    return cmd


# --- running a block ---------------------------------------------------------------


def short(cmd, n=90):
    cmd = " ".join(cmd.split())
    return cmd if len(cmd) <= n else cmd[:n - 3] + "..."


def run_server_line(ctx, line, cmd):
    kind = SERVER_LINE.match(cmd).group(1)
    c = substitute(ctx, strip_comment(cmd).rstrip().rstrip("&").rstrip())
    m = re.search(r"--port (\S+)", c)
    readme_port = int(m.group(1)) if m else (4317 if kind == "serve" else 4318)
    c = re.sub(r"--port \S+", "--port 0", c) if m else c + " --port 0"
    storage = None
    if kind == "serve":
        m = re.search(r"--storage (\S+)", c)
        storage = os.path.abspath(os.path.join(CWD, m.group(1) if m else ".agent-traces"))
        for s in ctx.all_servers:  # the storage's running server gives way (its port would be taken)
            if s.storage == storage and s.ours():
                print("# harness: stopping the server on port %d (same storage, same README port)" % s.port)
                s.stop()
    errfile = os.path.join(OUT, "server-%d.err" % line)
    print("# line %d runs in the background: %s" % (line, short(c, 200)))
    left = PLACEHOLDER.findall(c)
    if not check("README line %d: no placeholder left without a substitution" % line, not left, left):
        raise BlockAbort("line %d has a placeholder" % line)
    pid = ctx.shell.background(c, errfile)
    port = wait_listening(errfile, pid) if pid else None
    s = ShellServer(pid, port, errfile, storage) if pid else None
    if s:
        ctx.section_servers.append(s)  # stopped with its section, even if it never listened
        ctx.all_servers.append(s)
    err = open(errfile, errors="replace").read() if os.path.exists(errfile) else ""
    if not check("README line %d: %s starts (listening on ...)" % (line, short(cmd)), port, err[-300:]):
        raise BlockAbort("its server did not start")
    ctx.ports[readme_port] = s
    if kind == "serve" and "--witness" in c:
        # the checkpoint is sent to the witness by the log's own thread, at start
        deadline, cp = time.monotonic() + 10, ""
        while time.monotonic() < deadline:
            cp = call("GET", s.url + "/log/checkpoint")[2].decode()
            if cp.count("\n\u2014 ") >= 2:
                break
            time.sleep(0.05)
        check("README line %d: the witness cosigned the server's checkpoint" % line,
              cp.count("\n\u2014 ") >= 2, cp)
    return s


def run_command(ctx, blk, line, cmd):
    if SERVER_LINE.match(cmd):
        run_server_line(ctx, line, cmd)
        return None
    try:
        c = substitute(ctx, strip_comment(cmd))  # the trailing comment is the README's, not run
    except (RuntimeError, OSError, KeyError, ValueError, IndexError) as e:
        check("README line %d: %s: substitutions" % (line, short(cmd)), False, e)
        raise BlockAbort("line %d could not be substituted" % line)
    left = PLACEHOLDER.findall(c)
    if not check("README line %d: no placeholder left without a substitution" % line, not left, left):
        raise BlockAbort("line %d has a placeholder" % line)
    if c != cmd:
        print("# line %d as run: %s" % (line, short(c, 200)))
    r = ctx.shell.run(line, c)
    ctx.last = r
    ctx.history.append(r)
    bad = [s for s in r.statuses if not 200 <= s < 300]
    check("README line %d: %s (exit 0%s)" % (line, short(cmd), ", HTTP 2xx" if r.statuses else ""),
          r.rc == 0 and not bad, "exit %s, HTTP %s, stderr: %s" % (r.rc, r.statuses, r.err[-300:]))
    pairs = stated_pairs(trailing_comment(cmd.splitlines()[-1]))
    if pairs:
        expect(line, "its comment", r, pairs)
    return r


def expect(line, where, r, pairs, text=None):
    """What the README states a command prints: complete JSON compared whole,
    else the stated pairs in one of its JSON lines."""
    try:
        whole = json.loads(text) if text else None
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        ok = whole in r.json
    else:
        ok = any(matches(o, pairs) for o in r.json)
    check("README line %d: %s states %s" % (line, where, short(text or json.dumps(dict(pairs)), 120)),
          ok, r.out[-400:])


def run_block(ctx, blk, spec):
    for kind, line, text in blk.items():
        if kind == "comment":
            for key, action in spec.narrative.items():
                if key in text:
                    action(ctx, line)
            if "->" in text and ctx.last is not None:
                stated = text.split("->", 1)[1].strip()
                expect(line, "the comment", ctx.last, stated_pairs(stated), stated if stated.startswith("{") else None)
            continue
        r = run_command(ctx, blk, line, text)
        if r is None:
            continue
        for key, after in list(spec.after.items()) + list(GLOBAL_AFTER.items()):
            if key in strip_comment(text):
                after(ctx, line, r)


def rerun(ctx, line, what):
    """A comment describes running the command above again (on a changed file)."""
    r = ctx.shell.run(line, ctx.last.cmd)
    r.cmd = ctx.last.cmd
    ctx.last = r
    print("# line %d: %s: %s" % (line, what, short(r.out, 200)))
    check("README line %d: %s: the command above again (exit 0, HTTP 2xx)" % (line, what),
          r.rc == 0 and r.statuses and all(200 <= s < 300 for s in r.statuses), (r.rc, r.statuses, r.err[-200:]))
    return r


# --- per-block knowledge: context, the comments that describe actions, checks -------


class Example:
    def __init__(self, first, before=None, narrative=None, after=None):
        self.first, self.before = first, before
        self.narrative, self.after = narrative or {}, after or {}
        self.skip = None


class Skip:
    def __init__(self, first, why):
        self.first, self.skip = first, why


def using_it_before(ctx):
    # "With the server running": the `./agent-traced serve` of "Two commands"
    # (not run: see its Skip), in the working directory, on its default storage.
    h = ctx.start_harness_server(None)
    ctx.sid = SID
    check("'Using it': `listening on 127.0.0.1:<port>` is the server's first line",
          h.srv.log[0].startswith("listening on 127.0.0.1:"), h.srv.log[0])


def using_it_upload(ctx, line, r):
    check("README line %d: the upload is a 201 (\"201 created\")" % line, r.statuses == [201], r.statuses)
    check("README line %d: the upload's response carries log_index" % line,
          any("log_index" in o for o in r.json), r.out[:300])


def using_it_tree(ctx, line, r):
    try:
        t = json.loads(r.out)
    except ValueError:
        t = None
    check("README line %d: the prefix finds the session's tree" % line,
          isinstance(t, dict) and t.get("root_session_id") == SID and "tree" in t, r.out[:200])


def using_it_checks(ctx, line, r):
    c = r.cmd
    o = r.json[-1] if r.json else {}
    if "format=text" in c:
        check("README line %d: the text tree" % line, "Session tree for" in r.out, r.out[:200])
    elif "/events/" in c:
        check("README line %d: the event is found" % line, o.get("session_id") == SID and "event" in o, r.out[:200])
    elif "/verify" in c:
        check("README line %d: the chain verifies" % line, o.get("ok") is True and o.get("object_ok") is True,
              r.out[:200])
    elif "/sessions?" in c:
        head, _, body = r.out.replace("\r\n", "\n").partition("\n\n")
        try:
            lst = json.loads(body)
        except ValueError:
            lst = None
        check("README line %d: headers and a JSON list" % line,
              head.startswith("HTTP/1.1 200") and isinstance(lst, list), r.out[:300])
    elif "/ready" in c:
        check("README line %d: ready" % line, o.get("status") == "ready", r.out)


def cli_before(ctx):
    d = os.path.join(CWD, "path", "to")
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(CWD, ".agent-traces", SID, "events.ndjson"), d)


def cli_import(ctx, line, r):
    top = sorted(f for f in os.listdir(os.path.join(HOME, ".claude", "projects", PROJECT)) if f.endswith(".jsonl"))
    check("README line %d: one line per transcript, nothing skipped" % line,
          len(r.json) == len(top) and all(o.get("skipped_lines") == 0 for o in r.json), r.out[-300:])


def cli_reindex(ctx, line, r):
    o = r.json[-1] if r.json else {}
    check("README line %d: reindex counts the sessions" % line, o.get("sessions", 0) >= 5, r.out)


def verify_all_ok(ctx, line, r):
    check("README line %d: every line of verify says ok" % line,
          r.json and all(o.get("ok") is True for o in r.json), r.out[-400:])


def keygen_line(ctx, line, r, name):
    lines = r.out.splitlines()
    ok = len(lines) == 2 and re.fullmatch(r"ast_[0-9a-f]{32}", lines[0]) and \
        lines[1].split()[:1] == [name] and lines[0] not in lines[1]
    check("README line %d: line 1 the key, line 2 for keys.txt (its digest, not the key)" % line, ok, r.out)
    return lines if ok else [None, None]


def team_alice(ctx, line, r):
    key, kl = keygen_line(ctx, line, r, "alice")
    ctx.key = key  # ast_... on each laptop: Alice's
    ctx.keylines.append(kl)


def team_grafana(ctx, line, r):
    ctx.keylines.append(keygen_line(ctx, line, r, "grafana")[1])


def write_keys(ctx, line):
    with open(os.path.join(CWD, "keys.txt"), "w") as f:
        f.write("".join(k + "\n" for k in ctx.keylines if k))
    print("# line %d: harness wrote keys.txt: line 2 of each keygen above" % line)


def wait_log(s, text, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in s.log_text():
            return True
        time.sleep(0.02)
    return False


def team_hup(ctx, line, r):
    s = ctx.server()
    check("README line %d: SIGHUP reloaded the keys, the server runs on" % line,
          wait_log(s, "SIGHUP: 2 keys loaded") and s.ours(), s.log_text()[-300:])


def push_summary(expect_files):
    def after(ctx, line, r):
        o = r.json[-1] if r.json else {}
        last = r.out.strip().splitlines()[-1:]
        check("README line %d: push's summary is the last line, nothing failed" % line,
              last and json_lines(last[0]) == [o] and o.get("failed") == 0 and o.get("files") == expect_files,
              r.out[-300:])
    return after


HOOK_EVENTS = ("Stop", "SubagentStop", "SessionEnd")


def settings_hooks():
    try:
        d = json.load(open(os.path.join(HOME, ".claude", "settings.json")))
    except (OSError, ValueError):
        return None
    return {ev: [h.get("command", "") for m in d.get("hooks", {}).get(ev, []) for h in m.get("hooks", [])]
            for ev in HOOK_EVENTS}


def hook_installed(ctx, line, r):
    h = settings_hooks()
    check("README line %d: ~/.claude/settings.json runs `agent-traced hook` on %s" % (line, ", ".join(HOOK_EVENTS)),
          h and all(len([c for c in h[ev] if c.endswith("agent-traced hook")]) == 1 for ev in HOOK_EVENTS), h)


def hook_uninstalled(ctx, line, r):
    h = settings_hooks()
    check("README line %d: the hook entries are gone, the file is valid JSON" % line,
          h is not None and not any(c.endswith("agent-traced hook") for ev in HOOK_EVENTS for c in h[ev]), h)


def ws_bob(ctx, line, r):
    key, kl = keygen_line(ctx, line, r, "bob")
    if not key:
        return
    # "Bob's key goes there anyway": the push below is Bob's, with his key
    # added to keys.txt and the server told (SIGHUP), as the block above says
    with open(os.path.join(CWD, "keys.txt"), "a") as f:
        f.write(kl + "\n")
    s = ctx.server()
    s.signal(signal.SIGHUP)
    check("README line %d: bob's line in keys.txt, reloaded" % line, wait_log(s, "SIGHUP: 3 keys loaded"),
          s.log_text()[-300:])
    ctx.shell_export("export AGENT_STRACE_AUTH_KEY=" + key)


def ws_push(ctx, line, r):
    push_summary(9)(ctx, line, r)
    meta = os.path.join(VARLIB, "workspaces", "payments", SID, "meta.json")
    try:
        ws = json.load(open(meta)).get("workspace_id")
    except (OSError, ValueError):
        ws = None
    check("README line %d: the sessions are in the payments workspace" % line, ws == "payments", meta)


def ws_import(ctx, line, r):
    o = r.json[-1] if r.json else {}
    check("README line %d: x.jsonl's session is in workspaces/payments" % line,
          os.path.isfile(os.path.join(VARLIB, "workspaces", "payments", o.get("session_id", "?"), "meta.json")),
          r.out)


def ws_gc(ctx, line, r):
    o = r.json[-1] if r.json else {}
    check("README line %d: gc names the workspace" % line, o.get("workspace") == "payments", r.out)


def ws_before(ctx):
    shutil.copy(os.path.join(FIX, "short.jsonl"), os.path.join(CWD, "x.jsonl"))


def push_before(ctx):
    ctx.key = subprocess.run([BIN, "keygen"], capture_output=True, text=True, env=ENV).stdout.strip()
    ctx.start_harness_server(os.path.join(WORK, "push-server"), "--auth-key", ctx.key)


def push_dry_run(ctx, line, r):
    lines = r.out.strip().splitlines()
    last = json_lines(lines[-1]) if lines else []
    check("README line %d: a dry run after a push: nothing to send" % line,
          last and last[0].get("unchanged") == 9 and last[0].get("bytes_sent") == 0, r.out[-300:])


def fixture_lines():
    return open(os.path.join(FIX, HISTORY_FIXTURE), "rb").read().splitlines(keepends=True)


def write_session(lines):
    with open(os.path.join(CWD, "session.jsonl"), "wb") as f:
        f.write(b"".join(lines))


def history_before(ctx):
    ctx.start_harness_server(os.path.join(WORK, "history-server"))
    lines = fixture_lines()
    ctx.sid = next(json.loads(x)["sessionId"] for x in lines if b'"sessionId"' in x)
    write_session(lines[:20])  # a transcript as it was mid-session


def history_created(ctx, line, r):
    check("README line %d: a new session is a 201" % line, r.statuses == [201], r.statuses)


def history_again(ctx, line):
    r = rerun(ctx, line, "the same file again")
    check("README line %d: the same file again: 200, unchanged, version 1" % line,
          r.statuses == [200] and any(matches(o, [("result", "unchanged"), ("version", 1)]) for o in r.json),
          (r.statuses, r.out[:300]))
    write_session(fixture_lines()[:10])
    r = rerun(ctx, line, "an older snapshot")
    check("README line %d: an older snapshot: 200" % line, r.statuses == [200], r.statuses)


def history_grew(ctx, line):
    write_session(fixture_lines()[:30])
    rerun(ctx, line, "the transcript grew")
    store = os.path.join(WORK, "history-server", "objects", "sha256")
    deltas = [f for d in os.listdir(store) for f in os.listdir(os.path.join(store, d)) if f.endswith(".delta")]
    check("README line %d: the new events are a delta object" % line, len(deltas) == 1, deltas)


def edited_lines():
    """The grown transcript with one event changed (another timestamp)."""
    lines = fixture_lines()[:30]
    for i in range(10, 30):
        o = json.loads(lines[i])
        if o.get("type") in ("user", "assistant") and o.get("timestamp"):
            o["timestamp"] = "2020-01-01T00:00:00.000Z"
            lines[i] = (json.dumps(o) + "\n").encode()
            return lines
    raise RuntimeError("no event line to edit in " + HISTORY_FIXTURE)


def history_else(ctx, line):
    write_session(edited_lines())
    rerun(ctx, line, "anything else")
    st, _, b = call("GET", "%s/sessions/%s/versions" % (ctx.server().url, ctx.sid))
    try:
        n = len(json.loads(b)["versions"])
    except (ValueError, KeyError):
        n = None
    check("README line %d: three versions, the old ones stay" % line, n == 3, b[:300])


def offset_before(ctx):
    # the transcript grew again; N as the text says: transcript_bytes of GET /sessions/<id>/versions
    write_session(edited_lines() + fixture_lines()[30:])
    st, _, b = call("GET", "%s/sessions/%s/versions" % (ctx.server().url, ctx.sid))
    n = json.loads(b)["versions"][-1]["transcript_bytes"] if st == 200 else 0
    ctx.shell_export("N=%d" % n)


def offset_after(ctx, line, r):
    check("README line %d: the tail extends the session" % line,
          any(matches(o, [("result", "extended"), ("version", 4)]) for o in r.json), r.out[:300])
    st, _, b = call("POST", ctx.server().url + "/import?source=session.jsonl",
                    open(os.path.join(CWD, "session.jsonl"), "rb").read())
    o = json.loads(b) if st in (200, 201) else {}
    check("README line %d: what a full upload would store: a full upload now is unchanged, not stale" % line,
          st == 200 and o.get("result") == "unchanged" and o.get("version") == 4 and "stale" not in o,
          (st, b[:300]))


def log_before(ctx):
    ctx.ports[4317] = next(s for s in ctx.all_servers if isinstance(s, HarnessServer) and
                           s.storage == os.path.join(CWD, ".agent-traces"))
    ctx.sid = SID
    print("# harness: the server of 'Using it' (./.agent-traces) stands for 4317 again")


def log_checks(ctx, line, r):
    c = strip_comment(r.cmd)
    if c.endswith("/log/key"):
        check("README line %d: <name>+<id>+<key>" % line,
              re.fullmatch(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\n?", r.out), r.out)
    elif c.endswith("/log/checkpoint"):
        ls = r.out.split("\n")
        check("README line %d: a signed note: origin, size, root, a signature" % line,
              len(ls) >= 5 and ls[1].isdigit() and ls[3] == "" and ls[4].startswith("\u2014 "), r.out)
    elif "/log/tile/" in c:
        n = os.path.getsize(r.outpath)
        check("README line %d: a partial tile of width 1: one hash (32 bytes)" % line, n == 32, n)
    elif "/proof" in c:
        p = os.path.join(CWD, "s.tlog-proof")
        check("README line %d: the proof file" % line, os.path.isfile(p) and os.path.getsize(p) > 0)
    elif "/log/consistency" in c:
        check("README line %d: a consistency proof" % line, r.statuses == [200] and r.out, r.out[:200])


def log_narrative(ctx, line):
    st, _, b = call("GET", "%s/sessions/%s/verify" % (ctx.server().url, ctx.sid))
    v = json.loads(b) if st == 200 else {}
    check("README line %d: /sessions/<id>/verify adds {\"log\": {\"included\": true, ...}}" % line,
          (v.get("log") or {}).get("included") is True, b[:300])
    ups = [r for r in ctx.history if r.cmd.startswith("curl -T")]
    check("README line %d: an upload's response carries log_index" % line,
          ups and all(any("log_index" in o for o in r.json) for r in ups), len(ups))


def witness_checks(ctx, line, r):
    if "--print-vkey" in r.cmd:
        check("README line %d: the witness keeps its state in ./witness-state" % line,
              os.path.isdir(os.path.join(CWD, "witness-state")))
    elif "seen.checkpoint" in r.cmd and r.cmd.startswith("curl"):
        cp = open(os.path.join(CWD, "seen.checkpoint"), errors="replace").read()
        check("README line %d: the saved checkpoint carries the witness's cosignature" % line,
              "\n\u2014 witness.example/w1 " in cp, cp)


GLOBAL_AFTER = {"./agent-traced verify": verify_all_ok}

BLOCKS = [
    Skip("bash .ci/setup && ./agent-traced serve",
         "CI itself: .ci/setup installs Debian packages (apt-get, sudo) and builds, which the build under test "
         "stands for; its `./agent-traced serve` is the server the harness starts for 'Using it'"),
    Skip("bash .ci/run", "CI itself: the whole suite, this test included, twice"),
    Example("curl -T ~/.claude/projects/<project>/<session>.jsonl 'http://127.0.0.1:4317/import?source=session.jsonl'",
            before=using_it_before,
            after={"curl -T": using_it_upload, "/tree'": using_it_tree, "curl '": using_it_checks,
                   "curl -i": using_it_checks}),
    Example("./agent-traced import --storage ./.agent-traces ~/.claude/projects/*/*.jsonl",
            before=cli_before, after={"import": cli_import, "reindex": cli_reindex}),
    Example("./agent-traced keygen --name alice --role writer",
            narrative={"keys.txt holds line 2 of each": write_keys},
            after={"--name alice": team_alice, "--name grafana": team_grafana, "kill -HUP": team_hup,
                   "push": push_summary(9), "hook install": hook_installed}),
    Example("./agent-traced keygen --name bob --role writer --workspace payments", before=ws_before,
            after={"--name bob": ws_bob, "push --workspace": ws_push, "import": ws_import, "gc": ws_gc}),
    Example("export AGENT_TRACED_URL=http://traces.example:4317 AGENT_STRACE_AUTH_KEY=ast_...", before=push_before,
            after={"--dry-run": push_dry_run, "hook install": hook_installed, "hook uninstall": hook_uninstalled}),
    Example("curl -T session.jsonl 'http://127.0.0.1:4317/import?source=session.jsonl'", before=history_before,
            narrative={"the same file again": history_again, "the transcript grew": history_grew,
                       "anything else": history_else},
            after={"curl -T": history_created}),
    Example("tail -c +$((N + 1)) session.jsonl | \\", before=offset_before, after={"tail": offset_after}),
    Example("curl http://127.0.0.1:4317/log/key", before=log_before,
            narrative={"an upload's response carries": log_narrative}, after={"curl": log_checks}),
    Example("VKEY=$(curl -s http://127.0.0.1:4317/log/key)"),
    Example("./agent-traced log keygen --origin witness.example/w1 --out w.key",
            after={"": witness_checks}),
    Skip("bash .ci/setup --enable-sanitizers",
         "Development: rebuilds with sanitizers, reformats the sources in place (clang-format -i), runs make check "
         "(this test included) and the benchmarks: not examples of the product"),
]


# --- main ----------------------------------------------------------------------------


def sandbox():
    proj = os.path.join(HOME, ".claude", "projects", PROJECT)
    shutil.copytree(FIX, proj)  # the transcripts and their <session>/subagents/
    os.makedirs(CWD)
    os.makedirs(OUT)
    os.symlink(BIN, os.path.join(CWD, "agent-traced"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENT_STRACE_", "AGENT_TRACED_", "AGENT_TRACE_"))}
    env.update(HOME=HOME, XDG_STATE_HOME=os.path.join(WORK, "state"), PWD=CWD)
    env.pop("XDG_CONFIG_HOME", None)
    return env


ENV = None


def main():
    global ENV
    t0 = time.monotonic()
    ENV = sandbox()
    blocks = parse_readme(README)
    sh = [b for b in blocks if b.lang == "sh"]
    check("README.md has sh blocks", len(sh) > 0, README)
    specs = {s.first: s for s in BLOCKS}
    used = set()
    ctx = Ctx(None)
    section = None
    try:
        for blk in sh:
            spec = specs.get(blk.first_command())
            if spec is None:
                check("README block at line %d is not covered (%s)" % (blk.line, blk.first_command()), False,
                      "add it to BLOCKS in tests/readme.py")
                continue
            used.add(spec.first)
            if spec.skip:
                print("# README block at line %d (%s) not run: %s" % (blk.line, blk.section, spec.skip))
                continue
            print("# README block at line %d (%s)" % (blk.line, blk.section))
            old, old_shell = [], None
            if blk.section != section:
                # each section is a terminal of its own (the README's sections are
                # different machines: a server, laptops, an auditor): what one
                # exports (AGENT_STRACE_AUTH_KEY) does not reach the next
                old, ctx.section_servers, section = ctx.section_servers, [], blk.section
                old_shell, ctx.shell = ctx.shell, Shell(ENV)
                ctx.ports, ctx.sid = {}, SID  # a section's servers are those it starts or names
            try:
                if spec.before:
                    spec.before(ctx)
                for s in old:  # the previous section's servers go once this one's are up
                    s.stop()
                if old_shell:
                    old_shell.close()
                run_block(ctx, blk, spec)
            except BlockAbort as e:
                print("# the rest of the block at line %d is not run: %s" % (blk.line, e))
            except ShellStuck as e:
                check("README block at line %d runs" % blk.line, False, e)
                break
            except (RuntimeError, OSError, ValueError, KeyError, StopIteration) as e:
                check("README block at line %d runs" % blk.line, False, repr(e))
        for s in BLOCKS:
            check("the block of BLOCKS beginning %r is in the README" % short(s.first, 60), s.first in used)
    finally:
        if ctx.shell:
            ctx.shell.close()
        for s in ctx.all_servers:
            s.stop()
    print("# %.1f s" % (time.monotonic() - t0))
    if not check.failed:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("# sandbox kept: " + WORK)
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
