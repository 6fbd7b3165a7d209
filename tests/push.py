#!/usr/bin/env python3
"""push.py - `agent-traced push`, `hook` and `import DIR` through the real
server (`agent-traced serve --port 0`), on copies of tests/fixtures/claude.

Prints "ok - ..." / "not ok - ..." per check and the summary line
"push: N passed, M failed"; exits 1 when a check failed.

    push.py BIN FIXTURES      (run by tests/push.sh)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import backend  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./agent-traced")
FIX = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/claude")
WORK = tempfile.mkdtemp(prefix="push.")
passed = failed = 0
SERVERS = []
BACKGROUND = []  # pids of detached hook pushes to end at exit


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what + (": " + str(detail)[:2000] if detail != "" else ""))
    sys.stdout.flush()


def env(**kw):
    e = dict(os.environ)
    for k in ("AGENT_STRACE_AUTH_KEY", "AGENT_TRACED_URL", "AGENT_STRACE_ENDPOINT", "XDG_STATE_HOME"):
        e.pop(k, None)
    e["HOME"] = os.path.join(WORK, "home")
    e.update(kw)
    return e


class Server:
    def __init__(self, name, *extra):
        self.storage = os.path.join(WORK, name)
        self.log = open(os.path.join(WORK, name + ".log"), "wb")
        args, benv = backend(self.storage, BIN, WORK)
        self.p = subprocess.Popen([BIN, "serve", "--port", "0", *args, *extra],
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env(**benv))
        SERVERS.append(self)
        line = self.p.stderr.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("server did not start: " + line)
        self.port = int(line.rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for chunk in iter(lambda: self.p.stderr.read1(65536), b""):
            self.log.write(chunk)
            self.log.flush()

    def get(self, path, key=None):
        r = urllib.request.Request(self.url + path)
        if key:
            r.add_header("Authorization", "Bearer " + key)
        try:
            with urllib.request.urlopen(r, timeout=30) as f:
                return f.status, f.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path, key=None):
        st, b = self.get(path, key)
        return st, (json.loads(b) if b else None)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run(*args, input=None, timeout=300, **envkw):
    t0 = time.time()
    p = subprocess.run([BIN, *args], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env(**envkw))
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.time() - t0


def summary(out):
    lines = out.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {}


def push(srv_url, state, *paths, extra=(), **envkw):
    return run("push", "--server", srv_url, "--state", state, *extra, *paths, **envkw)


def transcripts(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".jsonl")]
    return sorted(out)


def fresh_import(path):
    """The events_sha256 a fresh full import of path (source: its basename) stores."""
    store = tempfile.mkdtemp(prefix="ref.", dir=WORK)
    rc, out, err, _ = run("import", "--storage", store, "--source", os.path.basename(path), path)
    shutil.rmtree(store, ignore_errors=True)
    return summary(out).get("events_sha256") if rc == 0 else "import failed: " + err


def state_entries(state, url):
    try:
        with open(state) as f:
            return json.load(f)["servers"].get(url, {})
    except (OSError, ValueError, KeyError):
        return {}


def stored_sha(srv, sid):
    st, v = srv.json("/sessions/%s/verify" % sid)
    return v.get("events_sha256") if st == 200 else None


def new_turn(path):
    """One more turn: the file's last user and assistant lines again, with
    fresh uuids and message ids (so they are new events)."""
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    out = b""
    for kind in (b'"type":"user"', b'"type":"assistant"'):
        ln = [l for l in lines if kind in l][-1]
        ln = re.sub(rb'"uuid":"[^"]*"', ('"uuid":"%s"' % uuid.uuid4()).encode(), ln)
        ln = re.sub(rb'"id":"msg_[^"]*"', ('"id":"msg_%s"' % uuid.uuid4().hex).encode(), ln)
        out += ln + b"\n"
    return out


def rewrite_first_user_line(data):
    """The same bytes but for one digit of the first user line's timestamp."""
    i = data.index(b'"type":"user"')
    start = data.rindex(b"\n", 0, i) + 1 if b"\n" in data[:i] else 0
    j = data.index(b'"timestamp":"20', start) + len(b'"timestamp":"')
    return data[:j] + b"19" + data[j + 2:]


# ---------------------------------------------------------------------------

def test_usage():
    for cmd in (["push"], ["hook"], ["hook", "install"], ["hook", "uninstall"], ["import"]):
        rc, out, err, _ = run(*cmd, "--help")
        check("%s --help: exit 0 with usage" % " ".join(cmd), rc == 0 and "usage:" in out, (rc, out, err))
    for args, what in ((["push", "--jobs", "0"], "--jobs 0"), (["push", "--bogus"], "an unknown option"),
                       (["push", "--server", "ftp://x"], "a non-http server"),
                       (["hook", "install", "extra"], "hook install with an extra argument"),
                       (["hook", "whatever"], "hook with an unknown word")):
        rc, out, err, _ = run(*args)
        check("push usage: %s is exit 2 with a message" % what, rc == 2 and err.strip(), (rc, err))


def test_push():
    srv = Server("srv")
    tree = os.path.join(WORK, "projects")
    shutil.copytree(FIX, os.path.join(tree, "-home-u-proj"))
    state = os.path.join(WORK, "state.json")
    files = transcripts(tree)
    total = sum(os.path.getsize(f) for f in files)

    # cold
    rc, out, err, dt = push(srv.url, state, tree)
    s = summary(out)
    cold = (dt, s.get("bytes_sent"))
    check("cold push: exit 0, every file created, bytes_sent = their size (%.2fs, %d bytes)" % (dt, total),
          rc == 0 and s.get("files") == len(files) and s.get("created") == len(files) and s.get("failed") == 0
          and s.get("bytes_sent") == total, (rc, out, err))
    check("push prints nothing on stderr off a terminal", err == "", err)
    ents = state_entries(state, srv.url)
    check("the state file has an entry per file", sorted(ents) == sorted(os.path.realpath(f) for f in files),
          sorted(ents))
    ok, bad = 0, []
    for f in files:
        sid = ents.get(os.path.realpath(f), {}).get("session_id")
        st, meta = srv.json("/sessions/%s" % sid)
        st2, ev = srv.get("/sessions/%s/events" % sid)
        last = json.loads(ev.splitlines()[-1]) if st2 == 200 and ev else {}
        src = last.get("data", {}).get("source")
        if st == 200 and src == os.path.basename(f) and os.path.basename(f) in (meta.get("command") or ""):
            ok += 1
        else:
            bad.append((f, sid, st, src, meta and meta.get("command")))
    check("every session stored, source = the file's basename (session_end and meta's command)", not bad, bad)
    for parent in ("4d5611e5-241a-462a-8d15-5122611a9569", "258c7280-ae70-4798-800f-63464d01a85d"):
        st, t = srv.json("/sessions/%s/tree" % parent)
        kids = sorted(c["session_id"] for c in (t or {}).get("tree", {}).get("children", []))
        want = sorted("%s.%s" % (os.path.basename(p)[:-6], parent)
                      for p in files if "/%s/subagents/" % parent in p)
        check("tree of %s: its subagents are its children" % parent[:8], st == 200 and kids == want and kids,
              (st, kids, want))
        for k in kids:
            st, m = srv.json("/sessions/%s" % k)
            check("subagent %s: meta parent_session_id" % k[:20],
                  st == 200 and m.get("parent_session_id") == parent, m)

    # warm
    rc, out, err, dt = push(srv.url, state, tree)
    s = summary(out)
    warm = (dt, s.get("bytes_sent"))
    check("second push: sends 0 bytes, all unchanged (%.2fs)" % dt,
          rc == 0 and s.get("bytes_sent") == 0 and s.get("unchanged") == len(files), out)
    rc, out, err, _ = push(srv.url, state, tree, extra=("--dry-run",))
    check("dry run with nothing to send: only the summary line", rc == 0 and len(out.strip().splitlines()) == 1
          and summary(out).get("bytes_sent") == 0, out)
    # touched, not changed: still nothing sent
    os.utime(files[0], None)
    rc, out, err, _ = push(srv.url, state, tree)
    check("a touched (same bytes) file sends nothing", rc == 0 and summary(out).get("bytes_sent") == 0, out)

    # a new turn appended
    big = os.path.join(tree, "-home-u-proj", "4d5611e5-241a-462a-8d15-5122611a9569.jsonl")
    turn = new_turn(big)
    with open(big, "ab") as f:
        f.write(turn)
    rc, out, err, _ = push(srv.url, state, tree, extra=("--dry-run",))
    check("dry run lists the grown file: extend, its new bytes",
          ("extend\t%d\t%s" % (len(turn), big)) in out.splitlines() and summary(out).get("dry_run") is True, out)
    rc, out, err, _ = push(srv.url, state, tree)
    s = summary(out)
    check("appended turn: only its bytes sent (%d), extended 1" % len(turn),
          rc == 0 and s.get("bytes_sent") == len(turn) and s.get("extended") == 1
          and s.get("unchanged") == len(files) - 1, out + err)
    sid = "4d5611e5-241a-462a-8d15-5122611a9569"
    want = fresh_import(big)
    check("after the incremental push the stored events = a fresh full import's", stored_sha(srv, sid) == want,
          (stored_sha(srv, sid), want))
    # growth that stops inside a line, then completes it: the server keeps
    # what it holds until a line completes, the next push sends from there
    sm = os.path.join(tree, "-home-u-proj", "short.jsonl")
    for label, where in (("inside the first line", 0.25), ("inside the second line", 0.75)):
        turn = new_turn(sm)
        cut = int(len(turn) * where)
        first_len = turn.index(b"\n") + 1
        with open(sm, "ab") as f:
            f.write(turn[:cut])
        rc, out, err, _ = push(srv.url, state, sm)
        s1 = summary(out)
        rcx, outx, errx, _ = push(srv.url, state, sm)
        check("growth cut %s, pushed again unchanged: nothing sent" % label,
              rcx == 0 and summary(outx).get("bytes_sent") == 0, outx + errx)
        with open(sm, "ab") as f:
            f.write(turn[cut:])
        rc2, out2, err2, _ = push(srv.url, state, sm)
        s2 = summary(out2)
        # a cut inside the first line makes no event: that push is unchanged
        # and the next sends the whole turn; else the rest only
        rest = len(turn) if cut < first_len else len(turn) - cut
        sid = state_entries(state, srv.url)[os.path.realpath(sm)]["session_id"]
        check("growth cut %s: %d bytes, then %d" % (label, cut, rest),
              rc == 0 and rc2 == 0 and s1.get("bytes_sent") == cut and s2.get("bytes_sent") == rest
              and s2.get("extended") == 1, (out, err, out2, err2))
        check("... and the stored events = a fresh full import's", stored_sha(srv, sid) == fresh_import(sm))

    # rewritten, same size: sent whole
    th = os.path.join(tree, "-home-u-proj", "tool_heavy.jsonl")
    with open(th, "rb") as f:
        data = f.read()
    data = rewrite_first_user_line(data)
    with open(th, "wb") as f:
        f.write(data)
    rc, out, err, _ = push(srv.url, state, tree)
    s = summary(out)
    check("a rewritten transcript (same size) is sent whole: replaced",
          rc == 0 and s.get("replaced") == 1 and s.get("bytes_sent") == len(data), out + err)
    sid = state_entries(state, srv.url)[os.path.realpath(th)]["session_id"]
    check("... and the stored events = a fresh full import's", stored_sha(srv, sid) == fresh_import(th))
    # rewritten and grown (its first line changed): whole, never from the old offset
    with open(th, "rb") as f:
        data = f.read()
    data = rewrite_first_user_line(data).replace(b'"timestamp":"19', b'"timestamp":"18', 1) + new_turn(th)
    with open(th, "wb") as f:
        f.write(data)
    rc, out, err, _ = push(srv.url, state, th)
    s = summary(out)
    check("a rewritten and grown transcript is sent whole",
          rc == 0 and s.get("bytes_sent") == len(data) and s.get("replaced") == 1, out + err)
    check("... and the stored events = a fresh full import's", stored_sha(srv, sid) == fresh_import(th))
    # a shorter rewrite: sent whole (the server keeps an older snapshot as unchanged)
    data = b"".join(data.splitlines(True)[:20])
    with open(th, "wb") as f:
        f.write(data)
    rc, out, err, _ = push(srv.url, state, th)
    s = summary(out)
    check("a truncated transcript is sent whole", rc == 0 and s.get("bytes_sent") == len(data), out + err)

    srv.stop()
    return cold, warm


def test_fallback():
    """The server's copy differs from the state's: a 404/409 falls back to a whole upload."""
    tree = os.path.join(WORK, "fb")
    os.makedirs(tree)
    f = os.path.join(tree, "s.jsonl")
    shutil.copy(os.path.join(FIX, "subagent.jsonl"), f)
    state = os.path.join(WORK, "fb.json")
    a2 = Server("fa2")
    rc, out, err, _ = push(a2.url, state, f)
    with open(state) as fh:
        doc = json.load(fh)
    # grow the file and make the state name a session the server lacks
    e2 = doc["servers"][a2.url][os.path.realpath(f)]
    turn = new_turn(f)
    with open(f, "ab") as fh:
        fh.write(turn)
    e2["session_id"] = "no-such-session"
    with open(state, "w") as fh:
        json.dump(doc, fh)
    rc, out, err, _ = push(a2.url, state, f)
    s = summary(out)
    size = os.path.getsize(f)
    check("incremental upload answered 404: falls back to the whole file",
          rc == 0 and s.get("bytes_sent") == size and s.get("failed") == 0, out + err)
    sid = state_entries(state, a2.url)[os.path.realpath(f)]["session_id"]
    check("... the state records the server's session id again", sid != "no-such-session", sid)
    # a 409: the server holds a different length than the state says
    turn = new_turn(f)
    with open(f, "ab") as fh:
        fh.write(turn)
    with open(state) as fh:
        doc = json.load(fh)
    e2 = doc["servers"][a2.url][os.path.realpath(f)]
    with open(f, "rb") as fh:
        data = fh.read()
    # pretend only the first 1000 bytes were sent (head/tail hashes to match)
    import hashlib
    n = 1000
    e2.update(bytes=n, size=n, head_len=n, tail_len=n, head_sha256=hashlib.sha256(data[:n]).hexdigest(),
              tail_sha256=hashlib.sha256(data[:n]).hexdigest())
    with open(state, "w") as fh:
        json.dump(doc, fh)
    rc, out, err, _ = push(a2.url, state, f)
    s = summary(out)
    check("incremental upload answered 409: falls back to the whole file",
          rc == 0 and s.get("bytes_sent") == len(data) and s.get("failed") == 0, out + err)
    check("... and the stored events = a fresh full import's", stored_sha(a2, sid) == fresh_import(f))
    a2.stop()


def test_kill_resume():
    srv = Server("kill")
    tree = os.path.join(WORK, "many")
    os.makedirs(tree)
    with open(os.path.join(FIX, "258c7280-ae70-4798-800f-63464d01a85d.jsonl"), "rb") as f:
        base = f.read()
    files = []
    for i in range(24):
        sid = str(uuid.UUID(int=i + 1))
        p = os.path.join(tree, "%s.jsonl" % sid)
        with open(p, "wb") as f:
            f.write(base.replace(b"258c7280-ae70-4798-800f-63464d01a85d", sid.encode()))
        files.append(p)
    total = sum(os.path.getsize(p) for p in files)
    state = os.path.join(WORK, "kill.json")
    p = subprocess.Popen([BIN, "push", "--server", srv.url, "--state", state, "--jobs", "1", tree],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    seen = {}
    t0 = time.time()
    while time.time() - t0 < 60 and p.poll() is None:
        seen = state_entries(state, srv.url)
        if len(seen) >= 3:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    check("push killed (SIGKILL) mid-way, after %d of %d files" % (len(seen), len(files)),
          3 <= len(seen) < len(files), len(seen))
    done = sum(e["bytes"] for e in seen.values())
    rc, out, err, _ = push(srv.url, state, tree, extra=("--jobs", "1"))
    s = summary(out)
    check("resumed push: exit 0, none failed, finished files not sent again (%d of %d bytes sent)"
          % (s.get("bytes_sent", -1), total),
          rc == 0 and s.get("failed") == 0 and s.get("bytes_sent", total) <= total - done, out + err)
    ents = state_entries(state, srv.url)
    bad = []
    for f in files:
        sid = ents.get(os.path.realpath(f), {}).get("session_id")
        st, v = srv.json("/sessions/%s/versions" % sid)
        nv = len((v or {}).get("versions", [])) if st == 200 else -1
        if nv != 1 or stored_sha(srv, sid) != fresh_import(f):
            bad.append((f, sid, st, nv))
    check("after the resume every session is stored once (1 version), equal to a fresh import", not bad, bad)
    st, h = srv.json("/health")
    check("... and the server holds exactly those sessions", h and h.get("sessions") == len(files), h)
    rc, out, err, _ = push(srv.url, state, tree)
    check("... a third push sends nothing", summary(out).get("bytes_sent") == 0, out)
    srv.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_failures():
    tree = os.path.join(WORK, "fail")
    shutil.copytree(FIX, tree)
    files = transcripts(tree)
    state = os.path.join(WORK, "fail.json")
    url = "http://127.0.0.1:%d" % free_port()
    rc, out, err, _ = push(url, state, tree)
    s = summary(out)
    named = all(f in err for f in files)
    check("server down: exit 1, every file failed and named on stderr, summary last on stdout",
          rc == 1 and s.get("failed") == len(files) and named and "127.0.0.1" in err, (rc, out, err))
    key = "ast_" + "0123456789abcdef" * 2
    srv = Server("auth", "--auth-key", key)
    rc, out, err, _ = push(srv.url, state, tree, extra=("--key", "ast_" + "f" * 32))
    s = summary(out)
    check("wrong key: exit 1, every file named with the server's 401",
          rc == 1 and s.get("failed") == len(files) and all(f in err for f in files) and "401" in err
          and "Unauthorized" in err, (rc, out, err))
    rc, out, err, _ = push(srv.url, state, tree, AGENT_STRACE_AUTH_KEY=key)
    s = summary(out)
    check("the key from AGENT_STRACE_AUTH_KEY: exit 0, all created",
          rc == 0 and s.get("created") == len(files), (rc, out, err))
    rc, out, err, _ = push(srv.url, state, os.path.join(WORK, "nonexistent"), tree, AGENT_STRACE_AUTH_KEY=key)
    s = summary(out)
    check("a missing PATH: exit 1, named, summary still last",
          rc == 1 and "nonexistent" in err and s.get("failed") == 1 and s.get("unchanged") == len(files),
          (rc, out, err))
    rc, out, err, _ = run("push", "--state", state, tree, AGENT_TRACED_URL=srv.url, AGENT_STRACE_AUTH_KEY=key)
    check("the server from AGENT_TRACED_URL", rc == 0 and summary(out).get("unchanged") == len(files), out + err)
    with open(os.path.join(WORK, "badstate.json"), "w") as f:
        f.write("{not json")
    rc, out, err, _ = push(srv.url, os.path.join(WORK, "badstate.json"), tree, AGENT_STRACE_AUTH_KEY=key)
    check("a malformed state file: exit 1, named", rc == 1 and "badstate.json" in err and summary(out), err)
    srv.stop()


def test_defaults_and_sharing():
    """No PATH: ~/.claude/projects; no --state: $XDG_STATE_HOME's; two pushes
    at once into one state file keep each other's entries."""
    srv = Server("defaults")
    home = os.path.join(WORK, "home")
    proj = os.path.join(home, ".claude", "projects", "-p")
    shutil.copytree(FIX, proj)
    xdg = os.path.join(WORK, "xdg-def")
    rc, out, err, _ = run("push", "--server", srv.url, XDG_STATE_HOME=xdg)
    n = len(transcripts(proj))
    st = os.path.join(xdg, "agent-traced", "push.json")
    check("push without PATH or --state: ~/.claude/projects, state in $XDG_STATE_HOME",
          rc == 0 and summary(out).get("created") == n and len(state_entries(st, srv.url)) == n, out + err)
    a, b = os.path.join(WORK, "share-a"), os.path.join(WORK, "share-b")
    shutil.copytree(FIX, a)
    shutil.copytree(FIX, b)
    shared = os.path.join(WORK, "shared.json")
    procs = [subprocess.Popen([BIN, "push", "--server", srv.url, "--state", shared, "--jobs", "2", d],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env()) for d in (a, b)]
    rcs = [p.wait(120) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    ents = state_entries(shared, srv.url)
    check("two pushes at once into one state file: both exit 0, every file of both recorded",
          rcs == [0, 0] and len(ents) == 2 * n, (rcs, len(ents)))
    srv.stop()


def hook_pids(log):
    try:
        with open(log) as f:
            return [int(m) for m in re.findall(r"pid (\d+)\]", f.read())]
    except OSError:
        return []


def test_hook():
    srv = Server("hook")
    proj = os.path.join(WORK, "hookproj")
    shutil.copytree(FIX, proj)
    xdg = os.path.join(WORK, "xdg")
    log = os.path.join(xdg, "agent-traced", "hook.log")
    sid = "4d5611e5-241a-462a-8d15-5122611a9569"
    ev = json.dumps({"session_id": sid, "transcript_path": os.path.join(proj, sid + ".jsonl"), "cwd": proj,
                     "hook_event_name": "Stop", "stop_hook_active": False}).encode()
    rc, out, err, dt = run("hook", input=ev, AGENT_TRACED_URL=srv.url, XDG_STATE_HOME=xdg)
    check("hook: exit 0, nothing on stdout or stderr, back in %.3fs (< 2 s, pipes closed)" % dt,
          rc == 0 and out == "" and err == "" and dt < 2, (rc, out, err, dt))
    want = [sid, "agent-a2898e3." + sid, "agent-acompact-e1f845." + sid]
    t0 = time.time()
    got = []
    while time.time() - t0 < 30:
        got = [s for s in want if srv.get("/sessions/" + s)[0] == 200]
        if len(got) == len(want):
            break
        time.sleep(0.1)
    check("hook: the transcript and its subagents arrive in the background", got == want, got)
    st, t = srv.json("/sessions/%s/tree" % sid)
    check("hook: the tree links the subagents", st == 200 and t.get("total_sessions") == 3, t)
    time.sleep(0.3)
    with open(log) as f:
        text = f.read()
    check("hook: the log has the push's summary", '"created": 3' in text, text)
    # again: nothing new to send (the state is push's)
    rc, out, err, dt = run("hook", input=ev, AGENT_TRACED_URL=srv.url, XDG_STATE_HOME=xdg)
    t0 = time.time()
    while time.time() - t0 < 10 and text.count('"files"') < 2:
        with open(log) as f:
            text = f.read()
        time.sleep(0.1)
    check("hook again: nothing sent", text.strip().splitlines()[-1].endswith('"bytes_sent": 0}'), text[-400:])

    # unreachable and hanging servers: still back at once, errors in the log
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)  # accepts into the backlog, never answers
    xdg2 = os.path.join(WORK, "xdg2")
    log2 = os.path.join(xdg2, "agent-traced", "hook.log")
    rc, out, err, dt = run("hook", input=ev, AGENT_TRACED_URL="http://127.0.0.1:%d" % hang.getsockname()[1],
                           XDG_STATE_HOME=xdg2)
    check("hook with a server that never answers: exit 0, silent, back in %.3fs" % dt,
          rc == 0 and out == "" and err == "" and dt < 2, (rc, out, err, dt))
    time.sleep(0.3)
    BACKGROUND.extend(hook_pids(log2))
    xdg3 = os.path.join(WORK, "xdg3")
    log3 = os.path.join(xdg3, "agent-traced", "hook.log")
    rc, out, err, dt = run("hook", input=ev, AGENT_TRACED_URL="http://127.0.0.1:%d" % free_port(),
                           XDG_STATE_HOME=xdg3)
    check("hook with an unreachable server: exit 0, silent, back in %.3fs" % dt,
          rc == 0 and out == "" and err == "" and dt < 2, (rc, out, err, dt))
    text = ""
    t0 = time.time()
    while time.time() - t0 < 15 and '"failed": 3' not in text:
        time.sleep(0.1)
        try:
            with open(log3) as f:
                text = f.read()
        except OSError:
            pass
    check("... the failures are in the log, each file named",
          '"failed": 3' in text and (sid + ".jsonl") in text and "agent-a2898e3.jsonl" in text, text)
    for bad, what in ((b"not json", "malformed JSON"), (b"", "empty input"),
                      (b'{"session_id": "x"}', "no transcript_path")):
        rc, out, err, dt = run("hook", input=bad, XDG_STATE_HOME=xdg3)
        check("hook with %s: exit 0, silent" % what, rc == 0 and out == "" and err == "" and dt < 2,
              (rc, out, err))
    with open(log3) as f:
        text = f.read()
    check("... each logged", "no transcript_path" in text and text.count("agent-traced hook:") >= 3, text[-600:])
    hang.close()
    srv.stop()


SAMPLE = """{
  "permissions": {
    "allow": ["Bash(ls:*)", "Read"],
    "deny": []
  },
  "model": "opus",
  "env": {"FOO": "b\u00e4r", "N": "1"},
  "hooks": {
    "Stop": [
      {"matcher": "", "hooks": [{"type": "command", "command": "notify-send done", "timeout": 5}]}
    ],
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/guard.sh"}]}
    ]
  },
  "statusLine": {"type": "command", "command": "echo hi", "padding": 0},
  "cleanupPeriodDays": 30
}
"""


def ours(doc):
    out = {}
    for ev, groups in (doc.get("hooks") or {}).items():
        n = 0
        for g in groups:
            for h in g.get("hooks", []):
                c = h.get("command", "")
                if c.split()[:1] and os.path.basename(c.split()[0].strip("'")) == "agent-traced" and \
                        c.split()[1:2] == ["hook"]:
                    n += 1
        if n:
            out[ev] = n
    return out


def test_install():
    d = os.path.join(WORK, "settings")
    os.makedirs(d)
    want = {"Stop": 1, "SubagentStop": 1, "SessionEnd": 1}
    cases = {"missing": None, "empty": "{}", "blank": "\n", "other": SAMPLE}
    for name, text in cases.items():
        p = os.path.join(d, name + ".json")
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        orig = json.loads(text) if text and text.strip() else {}
        rc, out, err, _ = run("hook", "install", "--settings", p)
        with open(p) as f:
            raw = f.read()
        doc = json.loads(raw)
        check("install (%s): exit 0, ours on Stop, SubagentStop and SessionEnd" % name,
              rc == 0 and ours(doc) == want, (rc, out, err, raw))
        check("install (%s): 2-space indent" % name, raw.startswith("{\n  \"") or raw == "{}\n", raw[:40])
        stripped = json.loads(raw)
        for ev in list(stripped.get("hooks", {})):
            stripped["hooks"][ev] = [g for g in stripped["hooks"][ev]
                                     if not any("agent-traced" in h.get("command", "") for h in g["hooks"])]
            if not stripped["hooks"][ev] and ev not in (orig.get("hooks") or {}):
                del stripped["hooks"][ev]
        if "hooks" not in orig and stripped.get("hooks") == {}:
            del stripped["hooks"]
        check("install (%s): every other setting and hook kept, in order" % name,
              stripped == orig and list(stripped) == list(orig), (stripped, orig))
        rc, out, err, _ = run("hook", "install", "--settings", p)
        with open(p) as f:
            raw2 = f.read()
        check("install twice (%s) = once" % name, rc == 0 and raw2 == raw, raw2)
        rc, out, err, _ = run("hook", "uninstall", "--settings", p)
        with open(p) as f:
            after = json.load(f)
        check("uninstall (%s): exactly ours removed" % name, rc == 0 and after == orig
              and list(after) == list(orig), (after, orig))
        if text is not None and name == "other":
            rc, out, err, _ = run("hook", "uninstall", "--settings", p)
            check("uninstall when not installed: exit 0, nothing changed",
                  rc == 0 and json.load(open(p)) == orig, (rc, out, err))
    # through a symbolic link: the link stays, its target changes
    real = os.path.join(d, "real.json")
    with open(real, "w") as f:
        f.write(SAMPLE)
    link = os.path.join(d, "link.json")
    os.symlink(real, link)
    rc, out, err, _ = run("hook", "install", "--settings", link)
    check("install through a symlink edits its target, keeps the link",
          rc == 0 and os.path.islink(link) and ours(json.load(open(real))) == want, (rc, err))
    # default: ~/.claude/settings.json of HOME
    rc, out, err, _ = run("hook", "install")
    hp = os.path.join(WORK, "home", ".claude", "settings.json")
    check("install without --settings: $HOME/.claude/settings.json",
          rc == 0 and os.path.exists(hp) and ours(json.load(open(hp))) == want, (rc, err))
    for name, text in (("malformed", '{"model": "opus",\n  "hooks": {\n'), ("array", "[1, 2]"),
                       ("hooks-not-object", '{"hooks": []}'), ("stop-not-array", '{"hooks": {"Stop": {}}}'),
                       ("duplicate-keys", '{"a": 1, "a": 2}')):
        p = os.path.join(d, name + ".json")
        with open(p, "w") as f:
            f.write(text)
        for verb in ("install", "uninstall"):
            rc, out, err, _ = run("hook", verb, "--settings", p)
            with open(p) as f:
                now = f.read()
            check("%s on a %s settings file: exit 1, names the file, leaves it untouched" % (verb, name),
                  rc == 1 and p in err and now == text, (rc, err, now))


def test_import_dir():
    store = os.path.join(WORK, "impdir")
    rc, out, err, _ = run("import", "--storage", store, FIX)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    n = len(transcripts(FIX))
    check("import DIR: one result per transcript, subagents included (%d)" % n,
          rc == 0 and len(lines) == n, (rc, out[-300:], err))
    st = os.path.join(store, "agent-a2898e3.4d5611e5-241a-462a-8d15-5122611a9569", "meta.json")
    check("import DIR: the subagent's session is stored with its parent",
          os.path.exists(st) and json.load(open(st)).get("parent_session_id") ==
          "4d5611e5-241a-462a-8d15-5122611a9569", st)
    bad = os.path.join(WORK, "badimp")
    os.makedirs(os.path.join(bad, "sub"))
    shutil.copy(os.path.join(FIX, "short.jsonl"), os.path.join(bad, "sub", "ok.jsonl"))
    with open(os.path.join(bad, "sub", "broken.jsonl"), "wb") as f:
        f.write(b'{"type": "user", "x": "\xff\xfe"}\n')
    rc, out, err, _ = run("import", "--storage", store, bad, os.path.join(WORK, "missing-dir"))
    check("import DIR with a bad file and a missing path: exit 1, each named, the good file imported",
          rc == 1 and os.path.join(bad, "sub", "broken.jsonl") in err and "missing-dir" in err
          and len(out.splitlines()) == 1, (rc, out, err))


def main():
    results = {}
    try:
        test_usage()
        results["push"] = test_push()
        test_fallback()
        test_kill_resume()
        test_failures()
        test_defaults_and_sharing()
        test_hook()
        test_install()
        test_import_dir()
    except Exception as e:  # a crash of the test is a failure, never a pass
        import traceback
        traceback.print_exc()
        check("test run completed", False, repr(e))
    finally:
        for s in SERVERS:
            s.stop()
        for pid in BACKGROUND:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if "push" in results:
        (ct, cb), (wt, wb) = results["push"]
        print("# fixtures: cold %.2fs %s bytes, warm %.2fs %s bytes" % (ct, cb, wt, wb))
    print("push%s: %d passed, %d failed" % ("_db" if os.environ.get("AT_TEST_PGURL") else "", passed, failed))
    if not failed:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("# work directory kept: " + WORK)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
