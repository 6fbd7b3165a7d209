#!/usr/bin/env python3
"""db_cluster_bench.py - `serve --database` on one replica and on three
behind haproxy, against `serve --storage` (the baseline, same run), on a
private PostgreSQL cluster (tests/pg/cluster.sh):

  * upload MB/s: transcripts of about --mb MB each (the fixtures' lines
    with fresh ids, one session each), --clients at a time, and the peak
    RSS of a server (VmHWM) by then;
  * appends/s: --clients writers for --seconds, one event per POST /events,
    each on its own session, then all on one session;
  * lookups/s: GET /sessions/{id} over keep-alive connections, 4 processes;
  * bytes in the database per byte of transcript (every table, VACUUM FULL).

  bench/db_cluster_bench.py [--bin PATH] [--mb N] [--files N] [--clients N] [--seconds S]
"""
import argparse
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests"))
from atserver import Server  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(os.environ.get("top_builddir", SRC), "agent-traced"))
ap.add_argument("--mb", type=int, default=8)
ap.add_argument("--files", type=int, default=8)
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--seconds", type=float, default=5)
a = ap.parse_args()

work = tempfile.mkdtemp(prefix="at-dbbench.")
pgdir = tempfile.mktemp(prefix="at-pgbench.")  # outside work: the cluster belongs to postgres when run as root
cluster = os.path.join(SRC, "tests", "pg", "cluster.sh")
env_out = subprocess.run(["bash", cluster, "start", pgdir], check=True, capture_output=True, text=True).stdout
PGURL = env_out.split("PGURL=")[1].split(";")[0]
procs = []


def cleanup():
    for p in procs:
        try:
            p.stop()
        except Exception:
            pass
    subprocess.run(["bash", cluster, "stop", pgdir])
    subprocess.run(["rm", "-rf", work])


def run(*argv):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# transcripts: the fixture lines, with fresh uuids, one session id per file
src_lines = []
fx = os.path.join(SRC, "tests", "fixtures", "claude")
for f in sorted(os.listdir(fx)):
    if f.endswith(".jsonl"):
        with open(os.path.join(fx, f)) as fh:
            src_lines += [json.loads(x) for x in fh if x.strip()]


def transcript(path, sid):
    n = 0
    with open(path, "w") as out:
        while n < a.mb * 1024 * 1024:
            for o in src_lines:
                o = dict(o)
                o["sessionId"] = sid
                if "uuid" in o:
                    o["uuid"] = str(uuid.uuid4())
                s = json.dumps(o) + "\n"
                out.write(s)
                n += len(s)
    return n


def make_set(tag):
    files = []
    for i in range(a.files):
        p = os.path.join(work, "%s-%d.jsonl" % (tag, i))
        transcript(p, str(uuid.uuid4()))
        files.append(p)
    return files


def upload_mbps(url, files):
    total = sum(os.path.getsize(f) for f in files)
    todo = list(files)
    lock = threading.Lock()
    bad = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                f = todo.pop()
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", f,
                                url + "/import?source=" + os.path.basename(f)], capture_output=True, text=True)
            if r.stdout not in ("200", "201"):
                bad.append(r.stdout)

    t0 = time.time()
    th = [threading.Thread(target=worker) for _ in range(min(4, a.clients))]
    for x in th:
        x.start()
    for x in th:
        x.join()
    dt = time.time() - t0
    return total / dt / 1e6, bad


def appends_per_s(url, shared):
    host, port = url.split("//")[1].split(":")
    count = [0] * a.clients
    errors = [0]
    stop = time.time() + a.seconds

    def worker(k):
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        sid = "bench-shared-%s" % shared if shared else "bench-%s-%d" % (uuid.uuid4(), k)
        i = 0
        while time.time() < stop:
            body = ('{"event_type": "tool_call", "timestamp": 1.5, "event_id": "%d-%d", "session_id": "%s", '
                    '"data": {"i": %d}}\n' % (k, i, sid, i)).encode()
            try:
                c.request("POST", "/events", body)
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    count[k] += 1
                else:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                c = http.client.HTTPConnection(host, int(port), timeout=30)
            i += 1

    t0 = time.time()
    th = [threading.Thread(target=worker, args=(k,)) for k in range(a.clients)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return sum(count) / (time.time() - t0), errors[0]


def lookup_worker(args):
    url, paths, secs = args
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    n = i = 0
    stop = time.time() + secs
    while time.time() < stop:
        c.request("GET", paths[i % len(paths)])
        r = c.getresponse()
        r.read()
        n += r.status == 200
        i += 1
    return n


def lookups_per_s(url, sids):
    paths = ["/sessions/" + s for s in sids]
    t0 = time.time()
    with multiprocessing.Pool(4) as pool:
        n = sum(pool.map(lookup_worker, [(url, paths, a.seconds)] * 4))
    return n / (time.time() - t0)


def db_bytes():
    q = ("VACUUM FULL" , "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
         "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    run("psql", "-X", "-q", "-d", PGURL, "-c", q[0])
    return int(run("psql", "-X", "-q", "-t", "-A", "-d", PGURL, "-c", q[1]).strip())


try:
    key = os.path.join(work, "log.key")
    run(a.bin, "log", "keygen", "--origin", "bench/log", "--out", key)
    run(a.bin, "db", "migrate", "--database", PGURL)
    env = {"TMPDIR": work}
    results = []

    d = Server(a.bin, os.path.join(work, "store"), "--log-key", key, env=env)
    procs.append(d)
    one = Server(a.bin, None, "--database", PGURL, "--log-key", key, env=env)
    procs.append(one)
    more = [Server(a.bin, None, "--database", PGURL, "--log-key", key, env=env) for _ in range(2)]
    procs += more
    lb_port = free_port()
    cfg = os.path.join(work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    maxconn 1024\ndefaults\n    mode http\n    timeout connect 2s\n"
                "    timeout client 120s\n    timeout server 120s\nfrontend fe\n    bind 127.0.0.1:%d\n"
                "    default_backend r\nbackend r\n    balance roundrobin\n%s" %
                (lb_port, "".join("    server s%d 127.0.0.1:%d\n" % (i, s.port) for i, s in enumerate([one] + more))))
    lb = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    LB = "http://127.0.0.1:%d" % lb_port
    targets = [("directory", d.url), ("database, 1 replica", one.url), ("database, 3 replicas", LB)]
    serving = {"directory": [d], "database, 1 replica": [one], "database, 3 replicas": [one] + more}

    def hwm_mb(srv):
        """The server's peak RSS so far (VmHWM), MB."""
        with open("/proc/%d/status" % srv.pid) as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")) / 1024

    uploaded = 0
    print("# transcripts: %d files of %d MB, %d clients, %.0f s runs" % (a.files, a.mb, a.clients, a.seconds))
    res = {name: {} for name, _ in targets}
    for i, (name, url) in enumerate(targets):
        files = make_set("t%d" % i)
        res[name]["upload"], bad = upload_mbps(url, files)
        res[name]["errors"] = len(bad)
        res[name]["rss"] = max(hwm_mb(x) for x in serving[name])
        if "database" in name:
            uploaded += sum(os.path.getsize(f) for f in files)
        for f in files:
            os.unlink(f)
    total = db_bytes()
    for name, url in targets:
        res[name]["own"], e1 = appends_per_s(url, None)
        res[name]["shared"], e2 = appends_per_s(url, name.replace(" ", "").replace(",", ""))
        st, _, body = __import__("atserver").call("GET", url + "/sessions")
        sids = [m["session_id"] for m in json.loads(body)][:200]
        res[name]["lookups"] = lookups_per_s(url, sids)
        res[name]["errors"] += e1 + e2
    for name, _ in targets:
        r = res[name]
        print("%-22s upload %6.1f MB/s (peak RSS %3.0f MB)   appends/s own %6.0f  same session %6.0f   "
              "lookups/s %6.0f   errors %d"
              % (name, r["upload"], r["rss"], r["own"], r["shared"], r["lookups"], r["errors"]), flush=True)
    print("bytes in the database per byte of transcript: %.3f (%d bytes for %d of transcripts)"
          % (total / uploaded, total, uploaded))
    lb.terminate()
    lb.wait()
finally:
    cleanup()
