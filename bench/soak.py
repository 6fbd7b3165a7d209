#!/usr/bin/env python3
"""soak.py - hours of traffic in minutes: mixed uploads, appends, trees,
lookups and verifies from several clients against one `agent-traced serve`.

Each client loops over a weighted mix of requests, one connection each:
whole and incremental (?session=&offset=) uploads of growing transcripts
(some gzip'd, some chunked), POST /events batches, GET /sessions/{id}/tree,
GET /events/{id}, GET /sessions/{id}/verify, GET /sessions and
/sessions/{id}/versions. The server runs its gc every 30 s (--keep-versions
5). Every --sample seconds the server's RSS and open descriptors are read
from /proc. At the end: requests, errors (any answer other than the one
expected, or none), p50/p99 latency per kind and overall, RSS and fds over
time, and a row for docs/reliability.md. Exit 1 on any error or when RSS or
descriptors kept growing (last third against the first third after warm-up).

    soak.py BIN [--seconds 600] [--clients 6] [--sample 10]
"""
import argparse
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("bin", nargs="?", default="./agent-traced")
ap.add_argument("--seconds", type=float, default=600)
ap.add_argument("--clients", type=int, default=6)
ap.add_argument("--sample", type=float, default=10)
ap.add_argument("--storage", help="run on this storage (kept) instead of a new one: with a big one, whether RSS "
                                  "grows with requests or with what is stored")
ap.add_argument("--tag", type=int, default=0, help="first variant number (another run on the same storage)")
ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                   "fixtures", "claude"))
A = ap.parse_args()
WORK = tempfile.mkdtemp(prefix="soak.")


def read_reply(s):
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            k = s.recv(65536)
            if not k:
                return 0, b""
            data += k
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            h.setdefault(k.strip().lower(), v.strip())
        if "content-length" in h:
            n = int(h["content-length"])
            while len(body) < n:
                k = s.recv(65536)
                if not k:
                    return 0, body
                body += k
        else:
            while True:
                k = s.recv(65536)
                if not k:
                    break
                body += k
            if h.get("transfer-encoding", "").lower() == "chunked":
                out, rest = b"", body
                while rest:
                    size_s, _, rest = rest.partition(b"\r\n")
                    size = int(size_s.split(b";")[0], 16)
                    out += rest[:size]
                    rest = rest[size + 2:]
                    if size == 0:
                        break
                body = out
        return status, body
    except (OSError, ValueError, IndexError):
        return 0, data


def request(port, method, path, body=b"", headers=(), chunked=False):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
    except OSError:
        return 0, b""
    try:
        h = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
        for x in headers:
            h += x + "\r\n"
        if chunked:
            s.sendall(h.encode() + b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 65536):
                piece = body[i:i + 65536]
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            s.sendall(b"0\r\n\r\n")
        else:
            if body or method == "POST":
                h += "Content-Length: %d\r\n" % len(body)
            s.sendall(h.encode() + b"\r\n" + body)
        return read_reply(s)
    except OSError:
        return read_reply(s)
    finally:
        s.close()


class Fixture:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        k = self.data.index(b'"sessionId":"') + 13
        self.uuid = self.data[k:self.data.index(b'"', k)]
        self.name = os.path.basename(path)
        self.bounds = [i + 1 for i in range(len(self.data)) if self.data[i] == 10]
        first = self.data.index(self.uuid)
        self.named_end = next(b for b in self.bounds if b > first)

    def variant(self, tag):
        nu = self.uuid[:-8] + b"%08x" % tag
        return nu.decode(), self.data.replace(self.uuid, nu)


class Stats:
    def __init__(self):
        self.mu = threading.Lock()
        self.lat = {}
        self.errors = []
        self.n = 0
        self.retries = 0

    def add(self, kind, dt, ok, detail=""):
        with self.mu:
            self.n += 1
            self.lat.setdefault(kind, []).append(dt)
            if not ok:
                self.errors.append("%s: %s" % (kind, detail))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else 0.0


def main():
    fx = [Fixture(os.path.join(A.fixtures, n)) for n in ("short.jsonl", "tool_heavy.jsonl", "subagent.jsonl")]
    storage = os.path.abspath(A.storage) if A.storage else os.path.join(WORK, "st")
    log = open(os.path.join(WORK, "server.log"), "wb")
    p = subprocess.Popen([os.path.abspath(A.bin), "serve", "--port", "0", "--storage", storage,
                          "--gc-interval", "30", "--keep-versions", "5"], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    line = p.stderr.readline().decode()
    if not line.startswith("listening on "):
        print("soak: the server did not start: " + line)
        return 2
    port = int(line.rsplit(":", 1)[1])

    def drain():
        for chunk in iter(lambda: p.stderr.read1(65536), b""):
            log.write(chunk)
    threading.Thread(target=drain, daemon=True).start()

    st = Stats()
    stop = threading.Event()
    mu = threading.Lock()
    known = {"sessions": [], "events": []}  # what the lookups pick from
    tags = [A.tag]

    def tag():
        with mu:
            tags[0] += 1
            return tags[0]

    def timed(kind, method, path, body=b"", headers=(), chunked=False, want=(200,)):
        for attempt in range(5):
            t0 = time.perf_counter()
            s, b = request(port, method, path, body, headers, chunked)
            if s == 503 and method == "GET" and attempt < 4:
                # documented as "not ready yet, retry" (the event index catching up)
                st.add(kind, time.perf_counter() - t0, True)
                with st.mu:
                    st.retries += 1
                time.sleep(0.05 * (attempt + 1))
                continue
            break
        st.add(kind, time.perf_counter() - t0, s in want, "%d %s %s" % (s, path[:60], b[:120]))
        return s, b

    def client(me):
        r = random.Random(me)
        f = fx[me % len(fx)]
        sid, data = f.variant(tag())
        cur = recorded = 0
        app_sid = "soak-%d-%d" % (me, A.tag)
        seq = 0
        while not stop.is_set():
            x = r.random()
            if x < 0.25:  # upload: the transcript grown by a few lines
                if cur >= len(data):
                    f = fx[r.randrange(len(fx))]
                    sid, data = f.variant(tag())
                    cur = recorded = 0
                # the first snapshot holds the line that names the session
                start = max(cur, f.named_end)
                k = next((b for b in f.bounds if b > start + r.randrange(1, 1 + len(data) // 5)), len(data))
                hdrs, path, body = [], "/import?source=%s" % f.name, data[:k]
                if recorded and r.random() < 0.5:  # what the server recorded, as a client reads it
                    path, body = "/import?session=%s&offset=%d" % (sid, recorded), data[recorded:k]
                if r.random() < 0.3:
                    body = gzip.compress(body, 1)
                    hdrs.append("Content-Encoding: gzip")
                s, b = timed("upload", "POST", path, body, hdrs, chunked=r.random() < 0.5, want=(200, 201))
                if s in (200, 201):
                    cur = k
                    j = json.loads(b)
                    if j.get("result") != "unchanged":
                        recorded = k
                    if j.get("session_id") != sid:
                        st.add("upload", 0, False, "stored as %s, not %s" % (j.get("session_id"), sid))
                    with mu:
                        if sid not in known["sessions"]:
                            known["sessions"].append(sid)
            elif x < 0.5:  # append a batch
                lines = []
                for _ in range(r.randrange(1, 20)):
                    seq += 1
                    eid = "s%d-%d" % (me, seq)
                    lines.append(json.dumps({"event_type": "tool_call", "session_id": app_sid, "event_id": eid,
                                             "timestamp": time.time(),
                                             "data": {"tool_name": "Bash", "arguments": {"n": seq}}}))
                s, b = timed("append", "POST", "/events", ("\n".join(lines) + "\n").encode())
                if s == 200:
                    with mu:
                        known["events"].append(eid)
                        if len(known["events"]) > 10000:
                            del known["events"][:5000]
                        if app_sid not in known["sessions"]:
                            known["sessions"].append(app_sid)
                if r.random() < 0.01:
                    app_sid = "soak-%d-%d" % (me, tag())  # now and then a new session
            else:
                with mu:
                    sids = list(known["sessions"][-50:])
                    eids = known["events"][-1000:]
                    eid = eids[r.randrange(len(eids))] if eids else None
                if not sids:
                    time.sleep(0.01)
                    continue
                s_ = sids[r.randrange(len(sids))]
                y = r.random()
                if y < 0.3:
                    timed("tree", "GET", "/sessions/%s/tree" % s_)
                elif y < 0.55 and eid:
                    timed("lookup", "GET", "/events/%s" % eid)
                elif y < 0.8:
                    s, b = timed("verify", "GET", "/sessions/%s/verify" % s_)
                    if s == 200 and not json.loads(b).get("ok"):
                        st.add("verify", 0, False, "not ok: %s" % b[:200])
                elif y < 0.9:
                    timed("versions", "GET", "/sessions/%s/versions" % s_)
                else:
                    timed("list", "GET", "/sessions")

    def proc(key):
        with open("/proc/%d/status" % p.pid) as f:
            for ln in f:
                if ln.startswith(key + ":"):
                    return int(ln.split()[1])
        return 0

    samples = []

    def sample(t):
        ns = len([e for e in os.listdir(storage) if not e.startswith(".") and e != "objects"]) \
            if os.path.isdir(storage) else 0
        samples.append((t, proc("VmRSS") / 1024.0, len(os.listdir("/proc/%d/fd" % p.pid)), st.n, ns))

    t_start = time.time()
    sample(0)
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(A.clients)]
    for t in threads:
        t.start()
    next_s = A.sample
    while True:
        el = time.time() - t_start
        if el >= A.seconds:
            break
        time.sleep(min(next_s, A.seconds) - el if min(next_s, A.seconds) > el else 0.05)
        el = time.time() - t_start
        if el >= next_s - 0.01:
            sample(el)
            next_s += A.sample
    stop.set()
    for t in threads:
        t.join(120)
    dt = time.time() - t_start
    time.sleep(3)  # idle: connections closed
    sample(time.time() - t_start)
    alive = p.poll() is None
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    vrc = subprocess.run([os.path.abspath(A.bin), "verify", "--versions", "--storage", storage],
                         capture_output=True).returncode

    alllat = [x for v in st.lat.values() for x in v]
    print("soak: %.0f s, %d clients: %d requests (%.0f/s), %d errors; %d GETs answered 503 \"retry\" and retried" %
          (dt, A.clients, st.n, st.n / dt, len(st.errors), st.retries))
    for e in st.errors[:10]:
        print("#   error: " + e)
    print("%-10s %8s %9s %9s" % ("kind", "count", "p50 ms", "p99 ms"))
    for k in sorted(st.lat):
        v = st.lat[k]
        print("%-10s %8d %9.2f %9.2f" % (k, len(v), pct(v, 50) * 1e3, pct(v, 99) * 1e3))
    print("%-10s %8d %9.2f %9.2f" % ("all", len(alllat), pct(alllat, 50) * 1e3, pct(alllat, 99) * 1e3))
    print("%8s %8s %6s %10s %9s" % ("t s", "RSS MB", "fds", "requests", "sessions"))
    step = max(1, len(samples) // 20)
    for i, (t, rss, fds, n, ns) in enumerate(samples):
        if i % step == 0 or i == len(samples) - 1:
            print("%8.0f %8.1f %6d %10d %9d" % (t, rss, fds, n, ns))
    # flat: after a warm-up (the first sixth), the last third's mean within
    # 20% (and 8 MB) of the first third's; descriptors back to the start
    warm = [s for s in samples[1:-1] if s[0] >= A.seconds / 6] or samples[1:]
    third = max(1, len(warm) // 3)
    a = sum(s[1] for s in warm[:third]) / third
    b = sum(s[1] for s in warm[-third:]) / third
    # the server keeps every session's metadata (the catalog) and SQLite
    # page caches (up to 2 MB a connection) that fill as the index grows:
    # RSS follows what is stored, allowed 16 KB per session added
    added = warm[-1][4] - warm[0][4]
    rss_flat = b <= a * 1.2 + added * 16 / 1024.0
    fd_max = max(s[2] for s in samples[1:-1]) if len(samples) > 2 else samples[-1][2]
    fa = max(s[2] for s in warm[:third])
    fb = max(s[2] for s in warm[-third:])
    # under load the count includes the connections in flight; idle, the
    # end may hold only what opens lazily (the index, its WAL, the log)
    fds_flat = samples[-1][2] <= samples[0][2] + 8
    print("RSS: %.1f MB at start, %.1f MB after warm-up, %.1f MB at the end (max %.1f), %d sessions added "
          "after warm-up (%.1f KB per session): %s" %
          (samples[0][1], a, samples[-1][1], max(s[1] for s in samples), added,
           (b - a) * 1024 / added if added else 0, "flat" if rss_flat else "GROWING"))
    print("fds: %d before any request, max %d in the first third after warm-up, %d in the last, %d at the end "
          "(idle): %s" % (samples[0][2], fa, fb, samples[-1][2], "flat" if fds_flat else "GROWING"))
    print("server: %s, exit %d on SIGTERM; verify --versions exit %d; storage %.0f MB" %
          ("alive" if alive else "DIED", rc, vrc,
           sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(storage) for f in fs) / 1e6))
    ok = not st.errors and rss_flat and fds_flat and alive and rc == 0 and vrc == 0
    print("| soak (`bench/soak.sh --seconds %.0f`) | %d clients: uploads (whole, incremental, gzip, chunked), "
          "appends, trees, lookups, verifies, listings; gc every 30 s | %d requests (%.0f/s), %d errors; "
          "p50 %.1f ms, p99 %.1f ms; RSS %.1f → %.1f MB after warm-up (max %.1f) while %d sessions were added; "
          "fds under load max %d → %d, idle %d at the start and %d at the end | %s |" %
          (A.seconds, A.clients, st.n, st.n / dt, len(st.errors), pct(alllat, 50) * 1e3, pct(alllat, 99) * 1e3,
           a, b, max(s[1] for s in samples), added, fa, fb, samples[0][2], samples[-1][2],
           "passed" if ok else "FAILED"))
    if ok and not os.environ.get("SOAK_KEEP"):
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("# left in " + WORK)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
