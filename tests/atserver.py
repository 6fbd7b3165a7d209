"""atserver.py - what the Python suites share: a check counter, a real
`agent-traced serve` started on a free port, and HTTP calls that return
(status, headers, body) whatever the status.

New suites use it; older ones (listing.py, hostile.py, crash_server.py)
still carry their own copies and move here as they are touched.
"""
import hashlib
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Checks:
    """ok/not ok lines, and the summary line .ci/run counts."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def __call__(self, what, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok - " + what)
        else:
            self.failed += 1
            print("not ok - %s%s" % (what, (": " + str(detail)[:300]) if detail else ""))
        return cond

    def summary(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        return 1 if self.failed else 0


def backend(storage, bin_path, work):
    """The serve options and environment for the storage directory storage:
    (["--storage", storage], {}), or, with AT_TEST_PGURL set (a suite run
    again on PostgreSQL: tests/pg/run.sh), a database of that cluster for
    this storage (created and migrated the first time; a restart reuses
    it), a log key in work, and TMPDIR for the uploads' staging."""
    pg = os.environ.get("AT_TEST_PGURL")
    if not pg:
        return ["--storage", storage], {}
    # one database per storage path (its name and a digest of the path);
    # AT_TEST_PGURL is a plain postgres://.../DBNAME URL
    path = os.path.abspath(storage.rstrip("/"))
    name = "at_%s_%s" % (re.sub(r"[^a-z0-9_]", "_", os.path.basename(path).lower())[:40],
                         hashlib.sha256(path.encode()).hexdigest()[:8])
    url = pg.rsplit("/", 1)[0] + "/" + name
    subprocess.run(["psql", "-X", "-q", "-d", pg, "-c", "CREATE DATABASE " + name], capture_output=True)
    subprocess.run([bin_path, "db", "migrate", "--database", url], check=True, capture_output=True)
    key = os.path.join(work, "log.key")
    if not os.path.exists(key):
        subprocess.run([bin_path, "log", "keygen", "--origin", "test.example/agent-traced", "--out", key],
                       check=True, capture_output=True)
    tmp = os.path.join(work, name + ".tmp")
    os.makedirs(tmp, exist_ok=True)
    return ["--database", url, "--log-key", key], {"TMPDIR": tmp}


LISTENING = re.compile(r"listening on \S*?:(\d+)")  # serve's and witness's first line, text or JSON


def wait_listening(path, pid, timeout=10):
    """The port of a server started elsewhere (a shell) with its stderr in
    path: waits for the `listening on` first line while pid lives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                first = f.readline()
        except OSError:
            first = ""
        m = LISTENING.search(first)
        if m and first.endswith("\n"):
            return int(m.group(1))
        if not alive(pid):
            break
        time.sleep(0.02)
    return None


def alive(pid):
    """pid runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Server:
    """`agent-traced serve --port 0` on storage (None: serve's default, in
    cwd), with extra arguments; the base URL from its first line, stderr
    kept in .log (a list of lines). base_env replaces os.environ."""

    def __init__(self, binary, storage, *args, env=None, cwd=None, base_env=None):
        e = dict(os.environ if base_env is None else base_env)
        e.pop("AGENT_STRACE_AUTH_KEY", None)
        self.binary, self.storage, self.db = binary, storage, None
        where = []
        if storage is not None:  # --storage, or with AT_TEST_PGURL a database (backend)
            where, benv = backend(storage, binary, os.path.dirname(os.path.abspath(storage)))
            self.db = where[1] if where[0] == "--database" else None
            e.update(benv)
        e.update(env or {})
        argv = [binary, "serve", "--port", "0"] + where
        self.p = subprocess.Popen(argv + list(args), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  env=e, cwd=cwd)
        first = self.p.stderr.readline().decode()
        self.log = [first]
        m = LISTENING.search(first)
        if not m:
            raise RuntimeError("serve did not start: " + first + self.p.stderr.read().decode())
        self.port = int(m.group(1))
        self.pid = self.p.pid
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._drain, daemon=True).start()

    def stored(self):
        """The storage directory as this server holds it: its --storage, or
        with AT_TEST_PGURL its database written out afresh by db export."""
        if not self.db:
            return self.storage
        out = self.storage.rstrip("/") + ".export"
        subprocess.run(["rm", "-rf", out], check=True)
        subprocess.run([self.binary, "db", "export", "--database", self.db, "--storage", out], check=True,
                       capture_output=True)
        return out

    def _drain(self):
        for line in iter(self.p.stderr.readline, b""):
            self.log.append(line.decode(errors="replace"))

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return self.p.returncode

    def call(self, method, path, body=None, key=None, headers=None):
        return call(method, self.url + path, body, key, headers)


def call(method, url, body=None, key=None, headers=None):
    """One request: (status, headers, body bytes), errors included."""
    h = dict(headers or {})
    if key:
        h["Authorization"] = "Bearer " + key
    rq = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(rq, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
