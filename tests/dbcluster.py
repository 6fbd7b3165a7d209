#!/usr/bin/env python3
"""dbcluster.py BINARY SRCDIR - three `serve --database` replicas behind
haproxy (Debian's), sharing one PostgreSQL (PGURL, from tests/pg/run.sh):

  * writers append to one shared session and to sessions of their own, and
    upload transcripts, through the balancer (so through every replica) at
    once;
  * one replica is SIGKILLed in the middle of an upload sent to it
    directly, while the others go on;
  * the killed replica is the one sequencing the transparency log, so
    another takes the log over;
  * a replica started afterwards, on the same staging directory, sweeps
    what the killed one left.

Afterwards every acknowledged write is present, once, and verifies from
every live replica; the shared session's versions have no gap and its
chain no fork; the killed upload left nothing in the database; and Go's
golang.org/x/mod (tests/gotlog) checks the log: every version logged
once, the checkpoint after the takeover consistent with the ones before,
every replica's tiles, inclusion proofs rebuilt from the events."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import Checks, Server, call  # noqa: E402

BIN, SRC = sys.argv[1], sys.argv[2]
PGURL = os.environ["PGURL"]
FIX = os.path.join(SRC, "tests", "fixtures")
t = Checks("dbcluster")
work = tempfile.mkdtemp(prefix="at-dbcluster.")
for k in ("AGENT_TRACED_DATABASE", "AGENT_STRACE_STORAGE"):
    os.environ.pop(k, None)


def tmpdir(name):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    return d


KEY = os.path.join(work, "log.key")
VKEY = subprocess.run([BIN, "log", "keygen", "--origin", "cluster.test/log", "--out", KEY], check=True,
                      capture_output=True, text=True).stdout.split()[-1]
G = os.environ.get("GOTLOG") or os.path.join(work, "gotlog")
if not os.environ.get("GOTLOG"):
    built = subprocess.run(["sh", os.path.join(SRC, "tests", "gotlog", "run.sh"), G], capture_output=True)
    t("tests/gotlog builds (Go, golang.org/x/mod)", built.returncode == 0, built.stderr[-300:])


# a witness that every replica asks to cosign (c2sp.org/tlog-witness)
WKEY = os.path.join(work, "witness.key")
WVKEY = subprocess.run([BIN, "log", "keygen", "--origin", "witness.test/w1", "--out", WKEY], check=True,
                       capture_output=True, text=True).stdout.split()[-1]
WVKEY = subprocess.run([BIN, "witness", "--key", WKEY, "--print-vkey"], check=True, capture_output=True,
                       text=True).stdout.split()[-1]
wit = subprocess.Popen([BIN, "witness", "--key", WKEY, "--log", VKEY, "--port", "0", "--state", tmpdir("witness")],
                       stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
wit_log = [wit.stderr.readline().decode()]
WURL = "http://127.0.0.1:%s" % wit_log[0].rsplit(":", 1)[1].strip()
threading.Thread(target=lambda: [wit_log.append(x.decode(errors="replace")) for x in iter(wit.stderr.readline, b"")],
                 daemon=True).start()


def replica(name):
    return Server(BIN, None, "--database", PGURL, "--threads", "4", "--log-key", KEY,
                  "--witness", "%s=%s" % (WURL, WVKEY), env={"TMPDIR": tmpdir(name)})


def sequencing(r):
    return any("this replica sequences" in line for line in r.log)


def checkpoint(url):
    st, _, b = call("GET", url + "/log/checkpoint")
    return b if st == 200 else None


def note_size(cp):
    return int(cp.split(b"\n")[1]) if cp else -1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


reps = [replica("r%d" % i) for i in range(3)]
t("three replicas start on one database", all(r.p.poll() is None for r in reps))

# ---- haproxy in front ----
lb_port = free_port()
cfg = os.path.join(work, "haproxy.cfg")
with open(cfg, "w") as f:
    f.write("""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:%d
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /ready
%s""" % (lb_port, "".join("    server r%d 127.0.0.1:%d check inter 300ms fall 1 rise 1\n" % (i, r.port)
                          for i, r in enumerate(reps))))
lb = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=open(cfg + ".log", "w"))
LB = "http://127.0.0.1:%d" % lb_port
up = False
for _ in range(100):
    try:
        if call("GET", LB + "/ready")[0] == 200:
            up = True
            break
    except OSError:
        pass
    time.sleep(0.1)
t("haproxy balances the three replicas", up, open(cfg + ".log").read()[-500:])
seen = set()
for _ in range(9):
    st, h, _ = call("GET", LB + "/health")
    seen.add(h.get("Server"))
t("requests through haproxy are answered", st == 200, st)


def ev(sid, i):
    return ('{"event_type": "tool_call", "timestamp": %d.5, "event_id": "%s-%d", "session_id": "%s", '
            '"data": {"name": "Bash", "i": %d}}\n' % (1000 + i, sid, i, sid, i)).encode()


acked = {}  # session -> set of acknowledged event ids
lock = threading.Lock()
failures = []


def appender(sid, first, n, via):
    for i in range(first, first + n):
        try:
            st, _, b = call("POST", via + "/events", ev(sid, i))
        except OSError as e:
            st, b = -1, str(e).encode()
        with lock:
            if st == 200:
                acked.setdefault(sid, set()).add("%s-%d" % (sid, i))
            else:
                failures.append((sid, i, st, b[:200]))


uploads = {}


def uploader(path, via):
    with open(path, "rb") as f:
        data = f.read()
    st, _, b = call("POST", via + "/import?source=" + os.path.basename(path), data)
    with lock:
        uploads[path] = (st, b)


fixtures = sorted(os.path.join(FIX, "claude", f) for f in os.listdir(os.path.join(FIX, "claude"))
                  if f.endswith(".jsonl"))
big = max(fixtures, key=os.path.getsize)
# the replica that sequences the log is the one killed mid-upload
leader = None
for _ in range(100):
    leader = next((i for i, r in enumerate(reps) if sequencing(r)), None)
    if leader is not None:
        break
    time.sleep(0.05)
t("one replica sequences the log", leader is not None and sum(sequencing(r) for r in reps) == 1,
  [sequencing(r) for r in reps])
victim = leader if leader is not None else 1

# a slow upload to replica 1 directly, killed in the middle
killed_sid = None
with open(big, "rb") as f:
    big_data = f.read()
killed_sid = os.path.basename(big)[:-len(".jsonl")]  # the fixtures' top-level files are named by session


def slow_upload():
    c = http.client.HTTPConnection("127.0.0.1", reps[victim].port, timeout=30)
    try:
        c.putrequest("POST", "/import?source=killed.jsonl")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        step = 32 * 1024
        for off in range(0, len(big_data), step):
            chunk = big_data[off:off + step]
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.05)
        c.send(b"0\r\n\r\n")
        c.getresponse().read()
    except OSError:
        pass


threads = [threading.Thread(target=appender, args=("shared", k * 1000, 15, LB)) for k in range(6)]
threads += [threading.Thread(target=appender, args=("own-%d" % k, 0, 10, LB)) for k in range(4)]
threads += [threading.Thread(target=uploader, args=(p, LB)) for p in fixtures if p != big]
slow = threading.Thread(target=slow_upload)
slow.start()
for x in threads:
    x.start()
# the slow upload is in (its staging file exists), the others are under way
staged = []
for _ in range(200):
    staged = [f for f in os.listdir(tmpdir("r%d" % victim)) if f.startswith("agent-traced-import-")]
    if staged:
        break
    time.sleep(0.05)
cp_before = None
for _ in range(200):  # a checkpoint signed by the replica about to die
    cp_before = checkpoint(LB)
    if cp_before:
        break
    time.sleep(0.05)
reps[victim].p.send_signal(signal.SIGKILL)
reps[victim].p.wait()
t("the sequencing replica was SIGKILLed in the middle of an upload (its staging file was open)",
  len(staged) >= 1 and cp_before is not None, staged)
for x in threads:
    x.join()
slow.join()
# the others go on: more appends through the balancer after the kill
more = [threading.Thread(target=appender, args=("shared", 9000 + k * 100, 5, LB)) for k in range(3)]
for x in more:
    x.start()
for x in more:
    x.join()
total = sum(len(v) for v in acked.values())
t("appends were acknowledged through the balancer (%d; %d failed in flight on the killed replica)"
  % (total, len(failures)), total + len(failures) == 6 * 15 + 4 * 10 + 15 and len(failures) <= 10 and
  all(f[2] in (-1, 502, 503) for f in failures), failures[:3])
# an upload the balancer had sent to the killed replica fails (502): not
# acknowledged, so not owed; every other one succeeded
lost_up = [(os.path.basename(k), v[0]) for k, v in uploads.items() if v[0] not in (200, 201)]
t("every upload through the balancer succeeded, but those in flight on the killed replica (%s)" % lost_up,
  len(lost_up) < len(uploads) and all(st in (502, 503) for _, st in lost_up), lost_up)

# ---- a replica started later, on the killed one's staging directory ----
taken = False
for _ in range(100):
    if any(sequencing(r) for i, r in enumerate(reps) if i != victim):
        taken = True
        break
    time.sleep(0.05)
t("another replica took the log over", taken)
late = replica("r%d" % victim)
reps[victim] = late
swept = False
for _ in range(50):  # the sweep runs once the port listens
    if not [f for f in os.listdir(tmpdir("r%d" % victim)) if f.startswith("agent-traced-import-")]:
        swept = True
        break
    time.sleep(0.1)
t("the late replica swept the killed upload's staging file", swept, late.log[-3:])

live = [reps[0], reps[1], reps[2]]
for r in live:
    name = "replica on port %d" % r.port
    for sid, ids in sorted(acked.items()):
        st, _, b = r.call("GET", "/sessions/%s/events" % sid)
        got = [json.loads(x)["event_id"] for x in b.splitlines()] if st == 200 else []
        t("%s: %s holds every acknowledged event once (%d)" % (name, sid, len(ids)),
          ids <= set(got) and len(got) == len(set(got)), (st, len(ids), len(got)))
        st, _, b = r.call("GET", "/sessions/%s/verify" % sid)
        rep = json.loads(b) if st == 200 else {}
        t("%s: %s verifies (one strict chain)" % (name, sid), rep.get("ok") is True, b[:200])
        st, _, b = r.call("GET", "/sessions/%s/versions" % sid)
        vs = [v["version"] for v in json.loads(b)["versions"]] if st == 200 else []
        t("%s: %s's versions have no gap" % (name, sid), vs == list(range(1, len(vs) + 1)) and vs, vs[-3:])
    for path, (st, b) in sorted(uploads.items()):
        if st not in (200, 201):
            continue
        sid = json.loads(b)["session_id"]
        exp = os.path.join(FIX, "expected-redacted", sid, "events.ndjson")
        if not os.path.exists(exp):
            continue
        with open(exp, "rb") as f:
            want = f.read()
        st, _, got = r.call("GET", "/sessions/%s/events" % sid)
        t("%s: the upload of %s is the reference's bytes" % (name, os.path.basename(path)), got == want)
    # the killed upload: nothing of it (the session was never uploaded otherwise)
    st, _, b = r.call("GET", "/sessions/" + killed_sid)
    t("%s: the killed upload left no session" % name, st == 404, b[:200])
same_lists = [r.call("GET", "/sessions")[2] for r in live]
t("every replica lists the same sessions, byte for byte", len(set(same_lists)) == 1)

# ---- the log, checked by Go ----
versions = {}
for m in json.loads(same_lists[0]):
    st, _, b = live[0].call("GET", "/sessions/%s/versions" % m["session_id"])
    versions[m["session_id"]] = [v["version"] for v in json.loads(b)["versions"]] if st == 200 else []
total_versions = sum(len(v) for v in versions.values())
cp_after = None
for _ in range(100):
    cp_after = checkpoint(live[2].url)
    if note_size(cp_after) == total_versions:
        break
    time.sleep(0.1)
t("the log holds every version: checkpoint size %d = %d versions" % (note_size(cp_after), total_versions),
  note_size(cp_after) == total_versions)
cps = [checkpoint(r.url) for r in live]
t("every replica serves the same checkpoint", len(set(cps)) == 1, [note_size(c) for c in cps])
paths = {}
for name, cp in (("before", cp_before), ("after", cp_after)):
    paths[name] = os.path.join(work, "cp-" + name)
    with open(paths[name], "wb") as f:
        f.write(cp or b"")
    out = subprocess.run([G, "checkpoint", VKEY, paths[name]], capture_output=True, text=True)
    t("Go opens the checkpoint %s the takeover (%s)" % (name, out.stdout.strip()), out.returncode == 0,
      out.stderr[-300:])
for r in live:
    out = subprocess.run([G, "tiles", r.url, VKEY, paths["before"], paths["after"]], capture_output=True, text=True)
    t("Go on replica %d's tiles: every entry once and included, the checkpoint after the takeover consistent "
      "with the one before" % r.port, out.returncode == 0, (out.stdout + out.stderr)[-400:])
proved = bad = 0
for sid, vs in sorted(versions.items()):
    for v in vs if sid != "shared" else vs[::7] + vs[-1:]:
        r = live[(proved + bad) % len(live)]
        st1, _, proof = r.call("GET", "/sessions/%s/proof?version=%d" % (sid, v))
        st2, _, events = r.call("GET", "/sessions/%s/events?version=%d" % (sid, v))
        pf, ef = os.path.join(work, "proof"), os.path.join(work, "events")
        with open(pf, "wb") as f:
            f.write(proof)
        with open(ef, "wb") as f:
            f.write(events)
        out = subprocess.run([G, "proof", VKEY, pf, ef, sid, str(v)], capture_output=True, text=True)
        if st1 == 200 and st2 == 200 and out.returncode == 0:
            proved += 1
        else:
            bad += 1
            t("proof of %s version %d" % (sid, v), False, (st1, st2, out.stderr[-300:]))
cosig = [l for l in (cp_after or b"").decode().split("\n") if l.startswith("\u2014 witness.test/w1 ")]
t("the final checkpoint carries the witness's cosignature", len(cosig) == 1, cp_after)
accepted = [l for l in wit_log if "refused" not in l and "cluster.test/log" in l and "witness:" in l]
refused = [l for l in wit_log if "refused" in l and "(409)" not in l]
print("# witness: " + "".join(wit_log[-3:]).replace("\n", " / "))
t("the witness cosigned %d checkpoints, before and after the takeover, and refused none"
  % len(accepted), len(accepted) >= 2 and not refused, (refused[:3], wit_log[-5:]))
t("Go checks %d inclusion proofs, each entry rebuilt from its version's events, from every replica" % proved,
  bad == 0 and proved > 20)

lb.terminate()
lb.wait()
wit.terminate()
wit.wait()
for r in live:
    r.stop()
subprocess.run(["rm", "-rf", work])
sys.exit(t.summary())
