#!/usr/bin/env python3
"""dbserve.py BINARY SRCDIR - `serve --database` against `serve --storage`:
the same requests to both, the same answers (status, content type, body
byte for byte; only the versions' commit times differ). Then what only the
database server has to show: many writers of one session serialised, an
incremental upload refused with 409 (push then sends the whole transcript),
the database going away (503, /ready failing) and coming back (the replica
reconnects by itself).

Run by tests/dbserve.sh, which starts a private PostgreSQL cluster and
passes its URL in PGURL (and PGDIR for tests/pg/cluster.sh pause/resume)."""
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import Checks, Server, call  # noqa: E402

BIN, SRC = sys.argv[1], sys.argv[2]
PGURL, PGDIR = os.environ["PGURL"], os.environ["PGDIR"]
FIX = os.path.join(SRC, "tests", "fixtures")
t = Checks("dbserve")
work = tempfile.mkdtemp(prefix="at-dbserve.")
env = {"TMPDIR": work}
for k in ("AGENT_TRACED_DATABASE", "AGENT_STRACE_STORAGE"):
    os.environ.pop(k, None)
dirsrv = Server(BIN, os.path.join(work, "store"), "--no-log", env=env)  # the log is not served from the database yet
dbsrv = Server(BIN, None, "--database", PGURL, "--no-log", env=env)
out = subprocess.run([BIN, "serve", "--database", PGURL, "--port", "0"], capture_output=True, text=True, timeout=30)
t("serve --database without --log-key: exit 2 naming the option", out.returncode == 2 and "--log-key" in out.stderr,
  out.stderr)
out = subprocess.run([BIN, "serve", "--database", PGURL, "--storage", work, "--no-log"], capture_output=True,
                     text=True, timeout=30)
t("--database and --storage together: exit 2", out.returncode == 2 and "--database" in out.stderr, out.stderr)
out = subprocess.run([BIN, "serve", "--database", "", "--no-log"], capture_output=True, text=True, timeout=30)
t("--database '': exit 2", out.returncode == 2 and "--database" in out.stderr, out.stderr)

TIME = re.compile(rb'"time": [0-9.e+-]+')


def same(what, method, path, body=None, headers=None, mask_time=True):
    """The same request to both: the same status, type and bytes (but the
    commit times of versions)."""
    a = dirsrv.call(method, path, body, headers=headers)
    b = dbsrv.call(method, path, body, headers=headers)
    ab, bb = a[2], b[2]
    if mask_time:
        ab, bb = TIME.sub(b'"time": T', ab), TIME.sub(b'"time": T', bb)
    ok = a[0] == b[0] and ab == bb and a[1].get("Content-Type") == b[1].get("Content-Type")
    at = next((i for i in range(min(len(ab), len(bb))) if ab[i] != bb[i]), min(len(ab), len(bb)))
    t(what, ok, "differ at byte %d of %d/%d\n   directory %d ...%r\n   database %d ...%r"
      % (at, len(ab), len(bb), a[0], ab[max(0, at - 100):at + 200], b[0], bb[max(0, at - 100):at + 200]))
    return b


def transcripts():
    out = []
    for sub in ("claude", "claude-edge"):
        for root, _, files in os.walk(os.path.join(FIX, sub)):
            out += [os.path.join(root, f) for f in files if f.endswith(".jsonl")]
    return sorted(out)


# ---- uploads: every fixture transcript, subagents included ----
files = transcripts()
t("fixtures found", len(files) >= 10, FIX)
for f in files:
    with open(f, "rb") as fh:
        data = fh.read()
    same("POST /import %s" % os.path.relpath(f, FIX), "POST", "/import?source=" + os.path.basename(f), data)
status, _, body = dbsrv.call("GET", "/sessions")
ids = [m["session_id"] for m in json.loads(body)]
t("GET /sessions lists the imported sessions", status == 200 and len(ids) >= 10, body[:200])

# ---- reads ----
same("GET /sessions", "GET", "/sessions")
link = "/sessions?limit=3"
for page in range(8):  # pages of the list: the same bytes, the same Link headers
    a = dirsrv.call("GET", link)
    b = dbsrv.call("GET", link)
    t("page %d of GET /sessions?limit=3: the same body and Link" % page,
      a[0] == b[0] == 200 and a[2] == b[2] and a[1].get("Link") == b[1].get("Link"), (a[1].get("Link"), b[1].get("Link")))
    nxt = b[1].get("Link")
    if not nxt:
        break
    link = nxt[1:nxt.index(">")]
for qs in ("agent=claude-code&limit=2", "q=agent-&limit=50", "since=1770800000&until=1771000000",
           "cursor=bogus", "limit=0", "q=%E2%80%94"):
    same("GET /sessions?%s" % qs, "GET", "/sessions?" + qs)
same("GET /health", "GET", "/health")
for sid in ids:
    q = "/sessions/" + sid
    same("GET %s" % q, "GET", q)
    same("GET %s/events" % q, "GET", q + "/events")
    v = same("GET %s/versions" % q, "GET", q + "/versions", mask_time=True)
    same("GET %s/verify" % q, "GET", q + "/verify")
    same("GET %s/verify?mode=legacy" % q, "GET", q + "/verify?mode=legacy")
    same("GET %s/page" % q, "GET", q + "/page?offset=1&limit=3")
    same("GET %s/usage" % q, "GET", q + "/usage")
    same("GET %s/usage?tree=1" % q, "GET", q + "/usage?tree=1")
    same("GET %s/tree" % q, "GET", q + "/tree")
    same("GET %s/tree?format=text" % q, "GET", q + "/tree?format=text")
    same("GET %s/events?version=1" % q, "GET", q + "/events?version=1")
    try:
        digest = json.loads(v[2])["versions"][-1]["events_sha256"]
        same("GET /objects/sha256/<%s's object>" % sid, "GET", "/objects/sha256/" + digest)
    except (ValueError, KeyError, IndexError):
        t("%s has a version" % sid, False, v[2][:200])
# the expected bytes of the reference, with redaction on (serve's default)
exp = os.path.join(FIX, "expected-redacted")
for sid in sorted(os.listdir(exp)):
    with open(os.path.join(exp, sid, "events.ndjson"), "rb") as fh:
        want = fh.read()
    got = dbsrv.call("GET", "/sessions/%s/events" % sid)
    t("the database serves the reference's events.ndjson of %s" % sid, got[0] == 200 and got[2] == want)
    with open(os.path.join(exp, sid, "meta.json")) as fh:
        wm = json.load(fh)
    got = dbsrv.call("GET", "/sessions/" + sid)
    t("... and its meta.json (subagent links included)", got[0] == 200 and json.loads(got[2]) == wm,
      "%r" % got[2][:300])
for p in ("/sessions/4d5611e5", "/sessions/agent-", "/sessions/nope", "/sessions/..%2Fx", "/sessions/nope/events",
          "/sessions/4d5611e5/versions", "/sessions/nope/verify", "/objects/sha256/" + "0" * 64,
          "/objects/sha256/xyz", "/sessions/4d5611e5-241a-462a-8d15-5122611a9569/events?version=9"):
    same("GET %s" % p, "GET", p)

# ---- event lookups (the event index) ----
picked = found = 0
for sid in ids:
    st, _, b = dbsrv.call("GET", "/sessions/%s/events" % sid)
    evs = [json.loads(x) for x in b.splitlines()]
    for e in evs[:: max(1, len(evs) // 5)]:
        got = same("GET /events/<an event of %s>" % sid, "GET", "/events/" + urllib.parse.quote(e["event_id"], safe=""))
        found += got[0] == 200
        same("GET /sessions/%s/events/<it>" % sid, "GET",
             "/sessions/%s/events/%s" % (sid, urllib.parse.quote(e["event_id"], safe="")))
        picked += 1
t("event lookups compared (%d, %d of them found)" % (picked, found), picked > 30 and found > 20)
for p in ("/events/nope", "/events/" + "x" * 5000, "/sessions/nope/events/x",
          "/sessions/4d5611e5/events/nope"):
    same("GET %s" % p[:60], "GET", p)

# ---- uploads that grow, repeat, replace ----
with open(os.path.join(FIX, "claude", "short.jsonl"), "rb") as fh:
    lines = fh.read().splitlines(keepends=True)
half = b"".join(lines[: len(lines) // 2])
full = b"".join(lines)
same("a first half", "POST", "/import?source=grow.jsonl", half)
same("the whole transcript: extended", "POST", "/import?source=grow.jsonl", full)
same("the same again: unchanged", "POST", "/import?source=grow.jsonl", full)
same("the first half again: unchanged (stale)", "POST", "/import?source=grow.jsonl", half)
same("another transcript of the session: replaced", "POST", "/import?source=grow.jsonl",
     b"".join(lines[:3]) + b"".join(lines[len(lines) // 2:]))
sid_grow = json.loads(same("the whole transcript again", "POST", "/import?source=grow.jsonl", full)[2])["session_id"]
same("its versions", "GET", "/sessions/%s/versions" % sid_grow, mask_time=True)
same("its events", "GET", "/sessions/%s/events" % sid_grow)
for v in (1, 2, 3, 4):
    same("its version %d" % v, "GET", "/sessions/%s/events?version=%d" % (sid_grow, v))
same("gzip upload", "POST", "/import?source=gz.jsonl", gzip.compress(full),
     headers={"Content-Encoding": "gzip"})
same("unsupported Content-Encoding", "POST", "/import?source=x.jsonl", full, headers={"Content-Encoding": "br"})
same("invalid UTF-8", "POST", "/import?source=x.jsonl", lines[0] + b'{"a": "\xff"}\n')
same("empty body", "POST", "/import?source=x.jsonl", b"")
same("not a transcript", "POST", "/import?source=x.jsonl", b"hello\n")
same("truncated gzip", "POST", "/import?source=x.jsonl", gzip.compress(full)[:100],
     headers={"Content-Encoding": "gzip"})
same("an incremental upload from a wrong offset: 409", "POST",
     "/import?session=%s&offset=%d" % (sid_grow, len(half)), full[len(half):])
same("... and nothing changed", "GET", "/sessions/%s/versions" % sid_grow)


def more_lines(k):
    """Two more turns of the session: a prompt and an answer."""
    base = json.loads(lines[0])
    sid = base.get("sessionId")
    out = b""
    for i, (role, msg) in enumerate((("user", {"role": "user", "content": "more %d" % k}),
                                     ("assistant", {"role": "assistant", "model": "claude-sonnet-4-5",
                                                    "id": "msg_more_%d" % k,
                                                    "content": [{"type": "text", "text": "ok %d" % k}]}))):
        o = {"type": role, "sessionId": sid, "uuid": "00000000-0000-4000-8000-%012d" % (k * 10 + i),
             "timestamp": "2027-01-01T00:00:%02d.000Z" % (k * 2 + i), "message": msg}
        out += json.dumps(o).encode() + b"\n"
    return out


grown = full + more_lines(1)
inc = same("an incremental upload: only the new lines", "POST",
           "/import?session=%s&offset=%d" % (sid_grow, len(full)), grown[len(full):])
t("... it was taken (201, extended)", inc[0] == 201 and b'"extended"' in inc[2], inc[2][:300])
same("... its versions", "GET", "/sessions/%s/versions" % sid_grow)
same("... its events", "GET", "/sessions/%s/events" % sid_grow)
same("the whole grown transcript: unchanged", "POST", "/import?source=grow.jsonl", grown)
grown2 = grown + more_lines(2)
inc = same("a second incremental upload", "POST", "/import?session=%s&offset=%d" % (sid_grow, len(grown)),
           grown2[len(grown):])
t("... taken too", inc[0] == 201, inc[2][:300])
same("... gzip, from the same offset again: 409", "POST",
     "/import?session=%s&offset=%d" % (sid_grow, len(grown)), gzip.compress(grown2[len(grown):]),
     headers={"Content-Encoding": "gzip"})
same("... an empty tail", "POST", "/import?session=%s&offset=%d" % (sid_grow, len(grown2)), b"")
same("... an unknown session", "POST", "/import?session=nope&offset=0", b"x")
same("... after an append, not from an import: 409", "POST", "/events",
     ('{"event_type": "decision", "timestamp": 1.5, "event_id": "inc-1", "session_id": "%s", "data": {}}\n'
      % sid_grow).encode())
same("... so the next incremental upload is refused", "POST",
     "/import?session=%s&offset=%d" % (sid_grow, len(grown2)), more_lines(3))
same("... its events at the end", "GET", "/sessions/%s/events" % sid_grow)
same("... an event the append added, by id", "GET", "/events/inc-1")

# ---- POST /sessions and POST /events (agent-strace's collector) ----
same("POST /sessions: new", "POST", "/sessions", b'{"session_id": "col-1", "agent_name": "bot", "started_at": 5.5}')
same("POST /sessions: update", "POST", "/sessions", b'{"session_id": "col-1", "command": "run it"}')
same("POST /sessions: no session_id", "POST", "/sessions", b'{"agent_name": "bot"}')
same("POST /sessions: unknown field", "POST", "/sessions", b'{"session_id": "col-2", "nope": 1}')
same("POST /sessions: not JSON", "POST", "/sessions", b'{"session_id": ')
same("GET the collector's session", "GET", "/sessions/col-1")


def ev(sid, i, extra=""):
    return ('{"event_type": "tool_call", "timestamp": %d.25, "event_id": "e%s-%d", "session_id": "%s", '
            '"data": {"name": "Bash", "i": %d}%s}\n' % (1000 + i, sid, i, sid, i, extra)).encode()


same("POST /events: two sessions", "POST", "/events", ev("col-1", 1) + ev("col-new", 2) + b"\n" + ev("col-1", 3))
same("POST /events: bad lines among good", "POST", "/events",
     ev("col-1", 4) + b"{not json}\n" + b'{"event_type": "nope", "session_id": "col-1"}\n' + ev("col-new", 5))
same("POST /events: empty", "POST", "/events", b"")
same("POST /events: a secret is redacted", "POST", "/events",
     ev("col-1", 6, ', "parent_id": "AKIAIOSFODNN7EXAMPLE"'))
same("an event id in two sessions: 409 listing them", "POST", "/events",
     ev("dup-a", 1).replace(b'"edup-a-1"', b'"shared-id"') + ev("dup-b", 1).replace(b'"edup-b-1"', b'"shared-id"'))
r409 = same("GET /events/shared-id: 409", "GET", "/events/shared-id")
t("... it is a 409 naming both sessions", r409[0] == 409 and b"dup-a" in r409[2] and b"dup-b" in r409[2], r409[2])
same("GET /sessions/dup-b/events/shared-id: the one", "GET", "/sessions/dup-b/events/shared-id")
same("GET /events/ecol-1-4: an appended event", "GET", "/events/ecol-1-4")
for sid in ("col-1", "col-new"):
    same("GET %s/events" % sid, "GET", "/sessions/%s/events" % sid)
    same("GET %s" % sid, "GET", "/sessions/" + sid)
    same("GET %s/versions" % sid, "GET", "/sessions/%s/versions" % sid, mask_time=True)
    same("GET %s/verify" % sid, "GET", "/sessions/%s/verify" % sid)
same("POST /verify", "POST", "/verify", dbsrv.call("GET", "/sessions/col-1/events")[2])
same("GET /sessions after the collector", "GET", "/sessions")
same("a tree after the collector", "GET", "/sessions/col-1/tree")
tr = same("a tree of a prefix", "GET", "/sessions/4d56/tree?format=text")
t("... it shows the subagents", tr[0] == 200 and tr[2].count(b"agent-a") >= 2, tr[2][:400])
same("a tree of nothing", "GET", "/sessions/nope/tree")
u = same("usage of a session with subagents, with its tree", "GET", "/sessions/4d56/usage?tree=1")
t("... recorded (200, with models and a tree total)", u[0] == 200 and b'"tree_total"' in u[2] and b'"models"' in u[2],
  u[2][:300])
same("usage of a collector's session: not recorded", "GET", "/sessions/col-1/usage")
same("usage after an append to an imported session", "GET", "/sessions/%s/usage" % sid_grow)
same("GET /health after the collector", "GET", "/health")

# ---- workspaces: the same layout of answers ----
WS = {"X-Agent-Traced-Workspace": "team"}
same("a workspace nobody wrote to: 404", "GET", "/sessions", headers={"X-Agent-Traced-Workspace": "nobody"})
same("an upload into workspace team", "POST", "/import?source=short.jsonl", full, headers=WS)
same("team's sessions", "GET", "/sessions", headers=WS)
same("team's session: workspace_id stamped in its meta", "GET", "/sessions/" + sid_grow, headers=WS)
same("team's events", "GET", "/sessions/%s/events" % sid_grow, headers=WS)
same("POST /events in team", "POST", "/events", ev("team-col", 1), headers=WS)
same("POST /sessions in team", "POST", "/sessions", b'{"session_id": "team-meta", "agent_name": "a"}', headers=WS)
same("team's sessions after", "GET", "/sessions", headers=WS)
same("team-meta in team", "GET", "/sessions/team-meta", headers=WS)
same("team-meta is not in default", "GET", "/sessions/team-meta")
same("GET /workspaces", "GET", "/workspaces")
same("/health in team", "GET", "/health", headers=WS)

# ---- many writers of one session on the database ----
errors = []


def writer(k):
    for i in range(10):
        st, _, b = dbsrv.call("POST", "/events", ev("race", k * 100 + i))
        if st != 200:
            errors.append((st, b))


th = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
for x in th:
    x.start()
for x in th:
    x.join()
t("80 appends from 8 writers at once: every one 200", not errors, errors[:3])
st, _, b = dbsrv.call("GET", "/sessions/race/versions")
vs = json.loads(b)["versions"] if st == 200 else []
t("versions 1..80, none lost", [v["version"] for v in vs] == list(range(1, 81)), b[:200])
st, _, b = dbsrv.call("GET", "/sessions/race/verify")
rep = json.loads(b) if st == 200 else {}
t("one strict chain of 80 events", rep.get("ok") is True and rep.get("total_events") == 80, b)
st, _, b = dbsrv.call("GET", "/sessions/race/events")
got = sorted(json.loads(x)["event_id"] for x in b.splitlines())
t("each event once", got == sorted("erace-%d" % (k * 100 + i) for k in range(8) for i in range(10)), got[:5])

# ---- keys in the database: every replica reads them ----
def keygen(name, role, ws):
    out = subprocess.run([BIN, "keygen", "--name", name, "--role", role, "--workspace", ws], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return out[0], out[1]


alice, alice_line = keygen("alice", "writer", "team")
bob, bob_line = keygen("bob", "reader", "default")
kf = os.path.join(work, "keys.txt")
with open(kf, "w") as f:
    f.write("# the team's keys\n" + alice_line + "\n" + bob_line + "\n")
out = subprocess.run([BIN, "db", "keys", "load", "--keys", kf, "--database", PGURL], capture_output=True, text=True)
t("db keys load: {\"keys\": 2}", out.returncode == 0 and json.loads(out.stdout) == {"keys": 2}, out.stderr)
out = subprocess.run([BIN, "db", "keys", "list", "--database", PGURL], capture_output=True, text=True)
t("db keys list: the keys-file lines, by name", out.stdout.splitlines() == [alice_line, bob_line], out.stdout)


def until(pred, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


t("the replica takes the database's keys within seconds: no key, 401",
  until(lambda: dbsrv.call("GET", "/sessions")[0] == 401))
t("bob (reader) reads", dbsrv.call("GET", "/sessions", key=bob)[0] == 200)
st, _, b = dbsrv.call("POST", "/events", ev("keyed", 1), key=bob)
t("bob cannot append: 403 with a JSON error", st == 403 and "error" in json.loads(b), b)
st, _, b = dbsrv.call("POST", "/events", ev("keyed", 2), key=alice)
t("alice (writer of team) appends in team", st == 200, b)
st, _, b = dbsrv.call("GET", "/sessions/keyed/events", key=alice, headers={"X-Agent-Traced-Workspace": "default"})
t("alice cannot read default: 403", st == 403, b)
st, _, b = dbsrv.call("GET", "/sessions/keyed/events", key=alice)
t("... and her event is in team", st == 200 and b"ekeyed-2" in b, b)
with open(kf + ".bad", "w") as f:
    f.write(alice_line + "\nbroken line\n")
out = subprocess.run([BIN, "db", "keys", "load", "--keys", kf + ".bad", "--database", PGURL], capture_output=True,
                     text=True)
t("a bad keys file: exit 1 naming its line, nothing changed",
  out.returncode == 1 and "line 2" in out.stderr and
  subprocess.run([BIN, "db", "keys", "list", "--database", PGURL], capture_output=True,
                 text=True).stdout.splitlines() == [alice_line, bob_line], out.stderr)
out = subprocess.run([BIN, "db", "keys", "--database", PGURL], capture_output=True, text=True)
t("db keys without an action: exit 2", out.returncode == 2 and "load or list" in out.stderr, out.stderr)
with open(kf, "w") as f:
    f.write("")
subprocess.run([BIN, "db", "keys", "load", "--keys", kf, "--database", PGURL], check=True, capture_output=True)
t("no keys left: the replica is open again within seconds", until(lambda: dbsrv.call("GET", "/sessions")[0] == 200))

# ---- an upload flows into the database as it arrives ----
cluster = os.path.join(SRC, "tests", "pg", "cluster.sh")
CHUNK = 1 << 20  # src/db/schema.h DB_CHUNK


def psql(sql):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", PGURL, "-c", sql], capture_output=True, text=True,
                         timeout=60)
    return out.stdout.strip() if out.returncode == 0 else "ERROR " + out.stderr.strip()


def big_transcript(sid, mb):
    """About mb MB of turns of one session (long texts: several chunks)."""
    out, i = [], 0
    while sum(map(len, out)) < mb * CHUNK:
        role = "user" if i % 2 == 0 else "assistant"
        msg = {"role": role, "content": "turn %d " % i + "lorem ipsum é ✓ " * 150}
        if role == "assistant":
            msg = {"role": role, "model": "claude-sonnet-4-5", "id": "msg_%s_%d" % (sid, i),
                   "content": [{"type": "text", "text": msg["content"]}]}
        out.append(json.dumps({"type": role, "sessionId": sid, "uuid": "%s-%08d" % (sid, i),
                               "timestamp": "2027-02-01T00:%02d:%02d.000Z" % (i // 60 % 60, i % 60),
                               "message": msg}).encode() + b"\n")
        i += 1
    return b"".join(out)


class Upload:
    """A chunked POST /import sent piece by piece (the client holds it open)."""

    def __init__(self, srv, source):
        import http.client
        u = urllib.parse.urlsplit(srv.url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.c.putrequest("POST", "/import?source=" + source)
        self.c.putheader("Transfer-Encoding", "chunked")
        self.c.endheaders()

    def send(self, data):
        for i in range(0, len(data), 256 * 1024):
            piece = data[i:i + 256 * 1024]
            self.c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")

    def finish(self):
        self.c.send(b"0\r\n\r\n")
        r = self.c.getresponse()
        return r.status, r.read()

    def drop(self):
        self.c.sock.shutdown(2)
        self.c.close()


def copy_progress():
    """Chunks the open COPYs into blob_chunks took so far (None: no COPY)."""
    v = psql("SELECT sum(p.tuples_processed) FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid "
             "WHERE c.relname = 'blob_chunks'")
    return int(v) if v.isdigit() else None


def until_value(fn, pred, secs=15):
    v = fn()
    end = time.time() + secs
    while not pred(v) and time.time() < end:
        time.sleep(0.05)
        v = fn()
    return v


ORPHANS = "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.blob = b.id)"
blobs0, orphans0 = psql("SELECT count(*) FROM blobs"), psql(ORPHANS)
body = big_transcript("stream-1", 8)
up = Upload(dbsrv, "stream.jsonl")
up.send(body[:5 * CHUNK])
v = until_value(copy_progress, lambda v: v is not None and v >= 3)
t("an upload in flight (5 of 8 MB sent) is already in the database: a COPY into blob_chunks has taken %s chunks" % v,
  v is not None and v >= 3, v)
up.drop()
v = until_value(copy_progress, lambda v: v is None)
t("the client gone: its COPY ends", v is None, v)
t("... and its transaction is rolled back: no blob, no session",
  until_value(lambda: psql("SELECT count(*) FROM blobs"), lambda x: x == blobs0) == blobs0 and
  dbsrv.call("GET", "/sessions/stream-1")[0] == 404, psql("SELECT count(*) FROM blobs"))
t("... and no staging file left", until_value(
    lambda: [f for f in os.listdir(work) if f.startswith("agent-traced-import")], lambda x: not x) == [],
  os.listdir(work))
up = Upload(dbsrv, "stream.jsonl")
up.send(body[:5 * CHUNK])
until_value(copy_progress, lambda v: v is not None and v >= 3)
up.send(body[5 * CHUNK:])
st, b = up.finish()
t("the whole upload, sent piece by piece: 201", st == 201 and b'"created"' in b, b[:300])
dirsrv.call("POST", "/import?source=stream.jsonl", body)
same("... its events are the directory server's, byte for byte", "GET", "/sessions/stream-1/events")
same("... and its verification", "GET", "/sessions/stream-1/verify")
# the same transcript grown by two turns, uploaded whole: an extension whose
# streamed blob is named from the first new byte on
body2 = body + big_transcript("stream-1", 0.01).replace(b"stream-1-0000", b"stream-1-9999")
r = same("the grown transcript uploaded whole: extended", "POST", "/import?source=stream.jsonl", body2)
t("... extended", b'"extended"' in r[2], r[2][:300])
row = psql("SELECT o.blob_start, o.base IS NOT NULL, (SELECT min(seq) FROM blob_chunks c WHERE c.blob = o.blob) "
           "FROM versions v JOIN objects o ON o.workspace = v.workspace AND o.sha256 = v.events_sha256 "
           "WHERE v.session = 'stream-1' AND v.version = 2").split("|")
t("... stored as a delta on version 1, from its blob's byte blob_start on, the whole chunks before it dropped",
  len(row) == 3 and row[1] == "t" and int(row[0]) > 5 * CHUNK and int(row[2]) == int(row[0]) // CHUNK, row)
same("... its events, byte for byte", "GET", "/sessions/stream-1/events")
same("... version 1 still reads", "GET", "/sessions/stream-1/events?version=1")
same("the first transcript again: unchanged", "POST", "/import?source=stream.jsonl", body)
same("a transcript of 8 MB of another session", "POST", "/import?source=other.jsonl", big_transcript("stream-3", 8))
r = same("... replaced by a different one", "POST", "/import?source=other.jsonl",
         big_transcript("stream-3", 8).replace(b"turn 1 ", b"turn one "))
r = same("... and back to the first: its object is there already", "POST", "/import?source=other.jsonl",
         big_transcript("stream-3", 8))
t("... replaced", b'"replaced"' in r[2], r[2][:300])
same("... its versions", "GET", "/sessions/stream-3/versions")
t("no blob of an unchanged upload or of an object stored already is left behind",
  psql(ORPHANS) == orphans0, (psql(ORPHANS), orphans0))
# the database goes away in the middle of an upload
up = Upload(dbsrv, "down.jsonl")
body4 = big_transcript("stream-4", 6)
up.send(body4[:4 * CHUNK])
until_value(copy_progress, lambda v: v is not None and v >= 2)
subprocess.run(["bash", cluster, "pause", PGDIR], check=True)
try:
    up.send(body4[4 * CHUNK:])
    st, b = up.finish()
except OSError as e:  # the server may answer and close before the rest is sent
    st, b = 0, repr(e).encode()
t("the database down in the middle of an upload: 503 with a JSON error", st == 503 and b"error" in b, (st, b[:300]))
subprocess.run(["bash", cluster, "resume", PGDIR], check=True)
until_value(lambda: dbsrv.call("GET", "/ready")[0], lambda x: x == 200)
t("... back: nothing of it was kept", dbsrv.call("GET", "/sessions/stream-4")[0] == 404 and
  psql(ORPHANS) == orphans0, psql(ORPHANS))
for s in ("stream-1", "stream-3"):
    same("... %s is whole" % s, "GET", "/sessions/%s/events" % s)

# ---- db export: deltas (appends, incremental and streamed extensions) included ----
out_dir = os.path.join(work, "exported")
out = subprocess.run([BIN, "db", "export", "--database", PGURL, "--storage", out_dir], capture_output=True, text=True,
                     timeout=300)
t("db export of the database: exit 0", out.returncode == 0, out.stderr[-500:])
diff, compared = [], 0
for sid in sorted(os.listdir(out_dir)):
    a, b = os.path.join(work, "store", sid, "events.ndjson"), os.path.join(out_dir, sid, "events.ndjson")
    if os.path.isfile(a) and os.path.isfile(b):
        compared += 1
        if open(a, "rb").read() != open(b, "rb").read():
            diff.append(sid)
t("... every session's events.ndjson equal the directory server's (%d, deltas included)" % compared,
  not diff and compared >= 20 and os.path.isfile(os.path.join(out_dir, "stream-1", "events.ndjson")) and
  os.path.isfile(os.path.join(out_dir, sid_grow, "events.ndjson")), (diff, compared))
subprocess.run(["rm", "-rf", out_dir])

# ---- a database restart between requests: the pool's idle connections
# died with it; the next requests must not be the ones to find out ----
def reads(k):
    for _ in range(5):
        res.append(dbsrv.call("GET", "/sessions/col-1/events")[0])


res = []
th = [threading.Thread(target=reads, args=(k,)) for k in range(10)]
for x in th:
    x.start()
for x in th:
    x.join()
subprocess.run(["bash", cluster, "pause", PGDIR], check=True)
subprocess.run(["bash", cluster, "resume", PGDIR], check=True)
res = [dbsrv.call("GET", "/sessions/col-1/events")[0] for _ in range(12)]
t("after a restart of the database, unseen by the replica: its next 12 reads are all 200 (no dead pooled "
  "connection is used)", res == [200] * 12, res)

# ---- the database goes away, and comes back ----
subprocess.run(["bash", cluster, "pause", PGDIR], check=True)
st, _, b = dbsrv.call("GET", "/ready")
t("database down: GET /ready 503", st == 503 and b"error" in b, b)
st, _, b = dbsrv.call("GET", "/sessions/col-1")
t("database down: a read is 503 with a JSON error", st == 503 and "error" in json.loads(b), b)
st, _, b = dbsrv.call("POST", "/events", ev("col-1", 7))
t("database down: an append is 503", st == 503 and "error" in json.loads(b), b)
st, _, b = dbsrv.call("POST", "/import?source=down.jsonl", full)
t("database down: an upload is 503", st == 503 and "error" in json.loads(b), b)
t("database down: no staging file left", not [f for f in os.listdir(work) if f.startswith("agent-traced-import")],
  os.listdir(work))
st, _, b = dbsrv.call("GET", "/health")
t("database down: /health still answers (the process is alive)", st in (200, 503), b)
subprocess.run(["bash", cluster, "resume", PGDIR], check=True)
ok = False
for _ in range(50):
    if dbsrv.call("GET", "/ready")[0] == 200:
        ok = True
        break
    time.sleep(0.1)
t("database back: GET /ready 200 (reconnected by itself)", ok)
same("database back: the sessions are all there", "GET", "/sessions/col-1/events")
st, _, b = dbsrv.call("POST", "/events", ev("col-1", 8))
t("database back: appends work", st == 200, b)

# ---- gc and retention over the database ----
st, _, b = dbsrv.call("GET", "/sessions/%s/versions" % sid_grow)
before = json.loads(b)["versions"]
old_digest = before[0]["events_sha256"]
cur_events = dbsrv.call("GET", "/sessions/%s/events" % sid_grow)[2]
gcs = Server(BIN, None, "--database", PGURL, "--no-log", "--keep-versions", "2", "--gc-interval", "0", env=env)
st, _, b = gcs.call("POST", "/gc")
rep = json.loads(b) if st == 200 else {}
t("POST /gc on a replica with --keep-versions 2: versions and objects removed, the rest counted",
  st == 200 and rep.get("versions_removed", 0) >= 3 and rep.get("objects_removed", 0) >= 1 and
  rep.get("objects_kept", 0) > 0 and rep.get("bytes_freed", 0) > 0, b)
st, _, b = dbsrv.call("GET", "/sessions/%s/versions" % sid_grow)
after = json.loads(b)["versions"] if st == 200 else []
t("... the session keeps its newest 2 versions", [v["version"] for v in after] ==
  [v["version"] for v in before[-2:]], b[:300])
t("... its current events are untouched", dbsrv.call("GET", "/sessions/%s/events" % sid_grow)[2] == cur_events)
st, _, b = dbsrv.call("GET", "/sessions/%s/verify" % sid_grow)
t("... and verify", st == 200 and json.loads(b)["ok"] is True and json.loads(b)["object_ok"] is True, b)
t("... an object no version needs is gone", dbsrv.call("GET", "/objects/sha256/" + old_digest)[0] == 404 or
  any(v["events_sha256"] == old_digest for v in after))
st, _, b = dbsrv.call("GET", "/sessions/%s/events?version=%d" % (sid_grow, before[0]["version"]))
t("... a retired version: 404", st == 404, b)
all_ok = True
for sid in json.loads(dbsrv.call("GET", "/sessions")[2]):
    st, _, b = dbsrv.call("GET", "/sessions/%s/verify" % sid["session_id"])
    all_ok &= st == 200 and json.loads(b)["ok"] is True and json.loads(b)["object_ok"] is True
t("... every session still verifies (no base of a kept delta was taken)", all_ok)
gcs.stop()
n_before = len(json.loads(dbsrv.call("GET", "/sessions")[2]))
newest = [m["session_id"] for m in json.loads(dbsrv.call("GET", "/sessions")[2])][:3]
gcs = Server(BIN, None, "--database", PGURL, "--no-log", "--max-sessions", "3", "--gc-interval", "0", env=env)
st, _, b = gcs.call("POST", "/gc")
t("POST /gc on a replica with --max-sessions 3: the %d others removed" % (n_before - 3),
  st == 200 and json.loads(b)["sessions_removed"] == n_before - 3, b)
listed = [m["session_id"] for m in json.loads(dbsrv.call("GET", "/sessions")[2])]
t("... the 3 newest stay", listed == newest, (listed, newest))
st, _, b = gcs.call("POST", "/gc")
t("... again: nothing to remove", st == 200 and json.loads(b)["sessions_removed"] == 0 and
  json.loads(b)["objects_removed"] == 0, b)
st, _, b = dbsrv.call("GET", "/sessions/%s/verify" % listed[0])
t("... and they verify", st == 200 and json.loads(b)["ok"] is True, b)
gcs.stop()

t("the database server logged no crash", dbsrv.p.poll() is None, "".join(dbsrv.log[-5:]))
dirsrv.stop()
dbsrv.stop()
subprocess.run(["rm", "-rf", work])
sys.exit(t.summary())
