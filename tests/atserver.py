"""atserver.py - what the Python suites share: a check counter, a real
`agent-traced serve` started on a free port, and HTTP calls that return
(status, headers, body) whatever the status.

New suites use it; older ones (listing.py, hostile.py, crash_server.py)
still carry their own copies and move here as they are touched.
"""
import os
import re
import subprocess
import threading
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


class Server:
    """`agent-traced serve --port 0` on storage, with extra arguments; the
    base URL from its first line, stderr kept in .log (a list of lines)."""

    def __init__(self, binary, storage, *args, env=None):
        e = dict(os.environ)
        e.pop("AGENT_STRACE_AUTH_KEY", None)
        e.update(env or {})
        self.p = subprocess.Popen([binary, "serve", "--port", "0", "--storage", storage] + list(args),
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=e)
        first = self.p.stderr.readline().decode()
        self.log = [first]
        m = re.search(r"listening on \S*?:(\d+)", first)  # a text line or a JSON one
        if not m:
            raise RuntimeError("serve did not start: " + first + self.p.stderr.read().decode())
        self.url = "http://127.0.0.1:%s" % m.group(1)
        threading.Thread(target=self._drain, daemon=True).start()

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
