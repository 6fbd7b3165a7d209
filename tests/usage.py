#!/usr/bin/env python3
"""usage.py - token usage through the real server (`agent-traced serve --port
0`) and `agent-traced usage`, against ccusage 18.0.11.

Every fixture transcript (tests/fixtures/claude, claude-edge, claude-usage,
and ../shared/fixtures/claude, claude-edge when present), subagent files
included, is uploaded on its own; GET /sessions/{id}/usage must equal what
ccusage reports for that file alone: every token count exactly, in total
and per model, and the cost within $0.000001 wherever ours is priced. The
reference is ccusage itself, run live (tests/usage/node_modules, from
`npm ci --prefix tests/usage`; AT_SKIP_NODE=1 or no Node skips that part)
and the vectors it produced (tests/vectors/usage_ccusage.json, written by
tests/vectors/gen_usage.py), so a mismatch shows which side moved. Then:
incremental uploads (POST /import?session=&offset=, cut inside repeated
messages and inside lines) give the usage of a whole upload; ?tree=1 sums
the subagents; appends keep the usage; gc retires the files of old
versions; a session without usage is a 404 saying so; the command line.

Prints "ok - ..." / "not ok - ..." per check and the summary line
"usage: N passed, M failed"; exits 1 when a check failed.

    usage.py BIN SRCDIR      (run by tests/usage.sh)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./agent-traced")
TOP = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else ".")
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(TOP, "tests", "vectors"))
import gen_usage  # noqa: E402  (ccusage runner shared with the vector generator)

WORK = tempfile.mkdtemp(prefix="usage.")
KINDS = [("input_tokens", "inputTokens"), ("output_tokens", "outputTokens"),
         ("cache_creation_tokens", "cacheCreationTokens"), ("cache_read_tokens", "cacheReadTokens")]
EPS = 1e-6
passed = failed = 0
SERVERS = []


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what + (": " + str(detail)[:3000] if detail != "" else ""))
    sys.stdout.flush()


def env(**kw):
    e = dict(os.environ)
    for k in ("AGENT_STRACE_AUTH_KEY", "AGENT_TRACED_URL", "AGENT_STRACE_ENDPOINT", "AGENT_STRACE_STORAGE"):
        e.pop(k, None)
    e["TZ"] = "UTC"
    e.update(kw)
    return e


class Server:
    def __init__(self, name):
        self.storage = os.path.join(WORK, name)
        self.log = open(os.path.join(WORK, name + ".log"), "wb")
        self.p = subprocess.Popen([BIN, "serve", "--port", "0", "--storage", self.storage, "--no-log"],
                                  stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env())
        SERVERS.append(self)
        line = self.p.stderr.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("server did not start: " + line)
        self.url = "http://127.0.0.1:%d" % int(line.rsplit(":", 1)[1])
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for chunk in iter(lambda: self.p.stderr.read1(65536), b""):
            self.log.write(chunk)
            self.log.flush()

    def req(self, method, path, body=None):
        r = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(r, timeout=60) as f:
                return f.status, f.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, body=None):
        st, b = self.req(method, path, body)
        try:
            return st, json.loads(b)
        except ValueError:
            return st, {"raw": b[:500]}

    def upload(self, data, source):
        return self.json("POST", "/import?source=" + urllib.request.quote(source), data)

    def usage(self, sid, tree=False):
        return self.json("GET", "/sessions/%s/usage%s" % (urllib.request.quote(sid), "?tree=1" if tree else ""))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run(*args):
    p = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, env=env())
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# ---- the reference -----------------------------------------------------------


def live_ccusage():
    if os.environ.get("AT_SKIP_NODE") == "1":
        return None, "AT_SKIP_NODE=1"
    if not os.path.isfile(os.path.join(gen_usage.CCUSAGE, "dist", "index.js")):
        return None, "no tests/usage/node_modules (npm ci --prefix tests/usage)"
    node = shutil.which("node")
    if not node:
        return None, "no node"
    return node, ""


def compare(name, ours, cc):
    """Problems of our usage report `ours` against ccusage's session `cc`."""
    probs = []
    models = {("unknown" if m["model"] is None else m["model"]): m for m in ours.get("models", [])
              if m["model"] != "<synthetic>"}
    tot = ours.get("total", {})
    if cc is None:
        if any(tot.get(k) != 0 for k, _ in KINDS):
            probs.append("ccusage counts nothing, we count %s" % tot)
        if models:
            probs.append("ccusage lists no model, we list %s" % sorted(models))
        return probs, 0
    for k, ck in KINDS:
        if tot.get(k) != cc[ck]:
            probs.append("total %s: ours %r, ccusage %r" % (k, tot.get(k), cc[ck]))
    priced = 0
    if tot.get("cost_usd") is not None:
        priced += 1
        if abs(tot["cost_usd"] - cc["totalCost"]) > EPS:
            probs.append("total cost: ours %r, ccusage %r" % (tot["cost_usd"], cc["totalCost"]))
    ccm = {b["modelName"]: b for b in cc["modelBreakdowns"]}
    if sorted(models) != sorted(ccm):
        probs.append("models: ours %s, ccusage %s" % (sorted(models), sorted(ccm)))
    for name_, b in ccm.items():
        m = models.get(name_)
        if not m:
            continue
        for k, ck in KINDS:
            if m[k] != b[ck]:
                probs.append("%s %s: ours %r, ccusage %r" % (name_, k, m[k], b[ck]))
        if m["cost_usd"] is not None:
            priced += 1
            if abs(m["cost_usd"] - b["cost"]) > EPS:
                probs.append("%s cost: ours %r, ccusage %r" % (name_, m["cost_usd"], b["cost"]))
    return probs, priced


def main():
    node, why = live_ccusage()
    if not node:
        print("# live ccusage skipped (%s): comparing with the stored vectors only" % why)
    with open(os.path.join(TOP, "tests", "vectors", "usage_ccusage.json")) as f:
        vectors = json.load(f)
    check("the vectors are ccusage 18.0.11's", vectors.get("ccusage") == "18.0.11", vectors.get("ccusage"))
    ours_fix = [os.path.join(TOP, "tests", "fixtures", d) for d in ("claude", "claude-edge", "claude-usage")]
    shared = [os.path.normpath(os.path.join(TOP, "..", "shared", "fixtures", d)) for d in ("claude", "claude-edge")]
    files = gen_usage.fixture_files(ours_fix)
    check("every fixture file has a vector", sorted(k for k, _ in files) == sorted(vectors["files"]),
          sorted(set(k for k, _ in files) ^ set(vectors["files"])))
    extra = gen_usage.fixture_files([d for d in shared if os.path.isdir(d)])

    # ---- each file on its own, through the server -----------------------------
    srv = Server("each")
    results = {}  # path -> (session id, our report, ccusage's session)
    for key, path in [(k, p) for k, p in files] + [("shared:" + k, p) for k, p in extra]:
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            check("%s: an empty file (not uploadable), and ccusage counts nothing" % key,
                  vectors["files"].get(key.replace("shared:", ""), 0) is None
                  and (not node or gen_usage.ccusage_file(path, node) is None))
            continue
        st, imp = srv.upload(data, os.path.basename(path))
        if st not in (200, 201):
            check("%s: uploaded" % key, False, "%d %s" % (st, imp))
            continue
        sid = imp["session_id"]
        st, rep = srv.usage(sid)
        if st != 200:
            check("%s: GET /sessions/{id}/usage is 200" % key, False, "%d %s" % (st, rep))
            continue
        check("%s: the report names the session and a version" % key,
              rep.get("session_id") == sid and isinstance(rep.get("version"), int), rep)
        cc_live = gen_usage.ccusage_file(path, node) if node else None
        if key in vectors["files"]:
            probs, priced = compare(key, rep, vectors["files"][key])
            check("%s: equal to ccusage's vector (%d costs compared)" % (key, priced), not probs, probs)
        if node:
            probs, priced = compare(key, rep, cc_live)
            check("%s: equal to ccusage run now (%d costs compared)" % (key, priced), not probs, probs)
            if key in vectors["files"]:
                check("%s: ccusage still gives its vector" % key, cc_live == vectors["files"][key],
                      "live %s, vector %s" % (cc_live, vectors["files"][key]))
        results[key] = (sid, rep, cc_live if node else vectors["files"].get(key))

    # a unique prefix of the id works as for the other session routes
    sid, rep, _ = results["claude/short.jsonl"]
    st, rep2 = srv.usage(sid[:20])
    check("a unique id prefix is resolved", st == 200 and rep2 == rep, "%d %s" % (st, rep2))
    st, b = srv.json("GET", "/sessions/%s/usage?tree=maybe" % sid)
    check("?tree=maybe is a 400", st == 400 and "tree" in b.get("error", ""), "%d %s" % (st, b))
    st, b = srv.usage("no-such-session")
    check("an unknown session is a 404", st == 404 and "not found" in b.get("error", ""), "%d %s" % (st, b))

    # ---- ?tree=1: the session and its subagents --------------------------------
    for parent in ("258c7280-ae70-4798-800f-63464d01a85d", "4d5611e5-241a-462a-8d15-5122611a9569"):
        keys = [k for k in results if k.startswith("claude/" + parent)]
        st, rep = srv.usage(parent, tree=True)
        tt = rep.get("tree_total", {}) if st == 200 else {}
        want = {k: sum(results[x][2][ck] for x in keys) for k, ck in KINDS}
        cost = sum(results[x][2]["totalCost"] for x in keys)
        got = {k: tt.get(k) for k, _ in KINDS}
        check("%s ?tree=1: tree_total sums the session and its %d subagents as ccusage counts them"
              % (parent[:8], len(keys) - 1),
              st == 200 and got == want and tt.get("sessions") == len(keys) and tt.get("sessions_without_usage") == 0
              and tt.get("cost_usd") is not None and abs(tt["cost_usd"] - cost) <= EPS * len(keys)
              and rep.get("total") == results["claude/%s.jsonl" % parent][1]["total"],
              "%d %s, want %s (cost %r)" % (st, rep, want, cost))
    st, rep = srv.usage(results["claude/short.jsonl"][0])
    check("without ?tree=1 there is no tree_total", st == 200 and "tree_total" not in rep, rep)
    srv.stop()

    # ---- incremental uploads give the usage of a whole upload ----------------------
    incremental(results, node)

    # ---- appends, sessions without usage, gc -------------------------------------------
    versions_and_gc(results)

    # ---- the command line ---------------------------------------------------------------
    command_line(results)


def dup_cut(data):
    """An offset just before the second line of a message repeated over
    several lines (same message.id and requestId)."""
    off, seen = 0, set()
    for line in data.split(b"\n"):
        try:
            e = json.loads(line)
            k = (e["message"]["id"], e["requestId"], e["message"]["usage"] is not None)
        except (ValueError, KeyError, TypeError):
            k = None
        if k and k in seen:
            return off
        if k:
            seen.add(k)
        off += len(line) + 1
    return len(data) // 2


def incremental(results, node):
    cases = ["claude/258c7280-ae70-4798-800f-63464d01a85d.jsonl", "claude/subagent.jsonl",
             "claude-usage/usage.jsonl"]
    for n, key in enumerate(cases):
        sid, full, cc = results[key]
        path = os.path.join(TOP, "tests", "fixtures", key)
        with open(path, "rb") as f:
            data = f.read()
        d = dup_cut(data)
        cuts = sorted(set([d, d + 7, len(data) // 3 + 13, 2 * len(data) // 3]))
        cuts = [c for c in cuts if 0 < c < len(data)]
        srv = Server("incr%d" % n)
        st, imp = srv.upload(data[:cuts[0]], os.path.basename(path))
        ok = st == 201
        detail = "%d %s" % (st, imp)
        bounds = cuts + [len(data)]
        for b in bounds[1:]:
            if not ok:
                break
            # from where the server says the transcript stops (an upload
            # that made no new event leaves it where it was)
            st, vs = srv.json("GET", "/sessions/%s/versions" % urllib.request.quote(sid))
            a = vs["versions"][-1]["transcript_bytes"]
            st, imp = srv.json("POST", "/import?session=%s&offset=%d" % (urllib.request.quote(sid), a), data[a:b])
            ok = st in (200, 201) and imp.get("result") in ("extended", "unchanged", "replaced")
            detail = "offset %d: %d %s" % (a, st, imp)
        st, rep = srv.usage(sid)
        same = st == 200 and rep.get("models") == full["models"] and rep.get("total") == full["total"]
        check("%s: uploaded in %d pieces (cut at %s: between two lines of one message, inside a line, ...) gives "
              "the usage of one upload" % (key, len(bounds), cuts), ok and same,
              detail if not ok else "%d %s\nwhole: %s" % (st, rep, full))
        if ok and same:
            probs, _ = compare(key, rep, cc)
            check("%s: and ccusage's" % key, not probs, probs)
        srv.stop()


def versions_and_gc(results):
    srv = Server("versions")
    key = "claude/tool_heavy.jsonl"
    sid, full, _ = results[key]
    path = os.path.join(TOP, "tests", "fixtures", key)
    with open(path, "rb") as f:
        data = f.read()
    hist = os.path.join(srv.storage, ".agent-traced", "history", sid)
    cuts = [len(data) // 3, 2 * len(data) // 3, len(data)]
    for c in cuts:
        st, imp = srv.upload(data[:c], os.path.basename(path))
    check("three growing uploads: three versions", st == 201 and imp.get("version") == 3, "%d %s" % (st, imp))
    files = sorted(f for f in os.listdir(hist) if f.startswith("usage."))
    check("each version has its usage file", files == ["usage.1.json", "usage.2.json", "usage.3.json"], files)
    st, rep = srv.usage(sid)
    check("the usage is the last upload's", st == 200 and rep["total"] == full["total"] and rep["version"] == 3, rep)

    ev = {"event_type": "decision", "session_id": sid, "event_id": "usage-append", "timestamp": 1.0, "data": {}}
    st, b = srv.json("POST", "/events", (json.dumps(ev) + "\n").encode())
    st2, rep2 = srv.usage(sid)
    check("an append (POST /events) makes a version without usage: the transcript's stays",
          st == 200 and st2 == 200 and rep2["total"] == full["total"] and rep2["version"] == 3,
          "%d %s / %d %s" % (st, b, st2, rep2))

    # what a commit that died before its version record leaves: a usage
    # file under the number the append took since
    with open(os.path.join(hist, "usage.4.json"), "w") as f:
        f.write('{"format": 1, "overflow": false, "total": {"messages": 1, "tokens": [1, 1, 1, 1], '
                '"priced": [1, 1, 1, 1], "above": [0, 0, 0, 0]}, "models": [], "days": []}\n')
    st2, rep2 = srv.usage(sid)
    check("a usage file under an append's version number is not the append's (the import's is served)",
          st2 == 200 and rep2["total"] == full["total"] and rep2["version"] == 3, "%d %s" % (st2, rep2))
    os.unlink(os.path.join(hist, "usage.4.json"))
    rc, out, err = run("gc", "--storage", srv.storage, "--keep-versions", "1")
    files = sorted(f for f in os.listdir(hist) if f.startswith("usage."))
    st, rep = srv.usage(sid)
    check("gc --keep-versions 1 removes the usage files of the versions it retires, but the newest one",
          rc == 0 and files == ["usage.3.json"], "%d %s %s %s" % (rc, out, err, files))
    check("after gc the usage is still served", st == 200 and rep["total"] == full["total"], "%d %s" % (st, rep))

    more = json.dumps({"type": "assistant", "sessionId": sid, "timestamp": "2026-03-01T10:00:00.000Z",
                       "requestId": "req_more", "message": {"id": "msg_more", "model": "claude-opus-4-6",
                                                            "content": [{"type": "text", "text": "more"}], "usage": {"input_tokens": 1,
                                                                                     "output_tokens": 2}}})
    st, imp = srv.upload(data + more.encode() + b"\n", os.path.basename(path))
    rc, out, err = run("gc", "--storage", srv.storage, "--keep-versions", "1")
    files = sorted(f for f in os.listdir(hist) if f.startswith("usage."))
    st2, rep = srv.usage(sid)
    check("a later import's usage file replaces it; gc retires the old one",
          st == 201 and rc == 0 and files == ["usage.%d.json" % imp["version"]], "%d %s %s" % (st, imp, files))
    check("and its usage is served", st2 == 200 and rep["total"]["input_tokens"] == full["total"]["input_tokens"] + 1
          and rep["version"] == imp["version"], rep)

    # a session only ever appended to has no usage
    ev = {"event_type": "decision", "session_id": "appended-only", "event_id": "a1", "timestamp": 1.0, "data": {}}
    srv.json("POST", "/events", (json.dumps(ev) + "\n").encode())
    st, b = srv.usage("appended-only")
    check("a session never imported: 404, usage not recorded",
          st == 404 and "usage not recorded" in b.get("error", ""), "%d %s" % (st, b))
    # one imported before usage was kept (no usage file)
    sid2 = results["claude/short.jsonl"][0]
    with open(os.path.join(TOP, "tests", "fixtures", "claude", "short.jsonl"), "rb") as f:
        srv.upload(f.read(), "short.jsonl")
    h2 = os.path.join(srv.storage, ".agent-traced", "history", sid2)
    for f in os.listdir(h2):
        if f.startswith("usage."):
            os.unlink(os.path.join(h2, f))
    st, b = srv.usage(sid2)
    check("a session imported before usage was kept: 404, usage not recorded",
          st == 404 and "usage not recorded" in b.get("error", ""), "%d %s" % (st, b))
    rc, out, err = run("usage", "--storage", srv.storage, "--json")
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    check("agent-traced usage counts the sessions without usage", rc == 0 and j.get("sessions_without_usage") == 2,
          "%d %s %s" % (rc, out, err))
    srv.stop()


def command_line(results):
    storage = os.path.join(WORK, "cli")
    fix = os.path.join(TOP, "tests", "fixtures", "claude")
    rc, out, err = run("import", "--storage", storage, fix)
    check("agent-traced import of the fixtures", rc == 0, err)
    keys = [k for k in results if k.startswith("claude/")]
    want = {k: sum(results[x][2][ck] for x in keys) for k, ck in KINDS}
    cost = sum(results[x][2]["totalCost"] for x in keys)

    def usage_json(*args):
        rc, out, err = run("usage", "--storage", storage, "--json", *args)
        try:
            return rc, json.loads(out), err
        except ValueError:
            return rc, {}, err + out

    rc, j, err = usage_json()
    tot = j.get("total", {})
    check("usage --json: the total of every session is ccusage's, file by file, summed",
          rc == 0 and {k: tot.get(k) for k, _ in KINDS} == want and abs(tot.get("cost_usd", -1) - cost) <= EPS * 10
          and len(j.get("rows", [])) == len(keys) and j.get("by") == "session",
          "%d %s %s want %s %r" % (rc, j, err, want, cost))
    by_sid = {r["session_id"]: r for r in j.get("rows", [])}
    check("usage --json: one row per session, as GET /sessions/{id}/usage totals it",
          all(by_sid.get(results[k][0], {}) == results[k][1]["total"] | {"session_id": results[k][0]} for k in keys),
          j.get("rows"))
    for by in ("day", "model"):
        rc, jb, err = usage_json("--by", by)
        sums = {k: sum(r[k] for r in jb.get("rows", [])) for k, _ in KINDS}
        check("usage --by %s: rows keyed by %s that add up to the total" % (by, by),
              rc == 0 and sums == want and jb.get("total") == tot and all(by in r for r in jb.get("rows", [])),
              "%d %s %s" % (rc, jb, err))
    rc, jb, err = usage_json("--by", "model")
    models = sorted(r["model"] for r in jb.get("rows", []))
    check("usage --by model names ccusage's models", models == ["claude-opus-4-6", "claude-sonnet-4-5-20250929"], models)
    rc, jd, err = usage_json("--by", "day", "--since", "2026-02-12", "--until", "20260212")
    check("usage --since/--until (YYYY-MM-DD or YYYYMMDD) keep only those days",
          rc == 0 and [r["day"] for r in jd.get("rows", [])] in ([], ["2026-02-12"]) and jd.get("since") == "2026-02-12",
          "%d %s %s" % (rc, jd, err))
    rc, jf, err = usage_json("--since", "2099-01-01")
    check("usage --since a future day: no rows, zero total",
          rc == 0 and jf.get("rows") == [] and all(jf["total"][k] == 0 for k, _ in KINDS), "%d %s %s" % (rc, jf, err))
    rc, out, err = run("usage", "--storage", storage)
    check("usage prints a table by default", rc == 0 and out.startswith("Session") and "\nTotal " in out
          and "Cost (USD)" in out, out + err)
    rc, out, err = run("usage", "--storage", storage, "--by", "model")
    check("usage --by model prints a table of models", rc == 0 and "claude-opus-4-6" in out and out.startswith("Model"),
          out + err)
    for args, opt in ((["--since", "2026-13-01"], "--since"), (["--until", "yesterday"], "--until"),
                      (["--since", "20260230"], "--since"), (["--by", "week"], "--by")):
        rc, out, err = run("usage", "--storage", storage, *args)
        check("usage %s: exit 2 naming %s" % (" ".join(args), opt), rc == 2 and opt in err and not out, (rc, out, err))
    rc, out, err = run("usage", "--storage", storage, "--since", "2026-03-02", "--until", "2026-03-01")
    check("usage --since after --until: exit 2", rc == 2 and "--since" in err, (rc, err))
    rc, out, err = run("usage", "--storage", os.path.join(WORK, "nothing-here"))
    check("usage of a missing storage directory: exit 1, named", rc == 1 and "nothing-here" in err, (rc, err))
    rc, out, err = run("usage", "--help")
    check("usage --help", rc == 0 and "--since" in out and "--by" in out and "--storage" in out, out)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the test itself is a failure, not a pass
        import traceback
        traceback.print_exc()
        check("the test ran to its end", False, repr(e))
    finally:
        for s in SERVERS:
            s.stop()
        if failed == 0:
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("# kept " + WORK)
    print("usage: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
