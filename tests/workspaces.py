#!/usr/bin/env python3
"""workspaces.py - workspaces and named keys against the real server.

A keys file made with `agent-traced keygen` holds readers, writers and
admins of the default workspace, of team-a and team-b, and of every
workspace (*). Each role is tried in its own workspace and in the others:
what it may read, write and collect, what it is refused (403 naming the
key) and what it cannot even see (404). The storage is checked as
agent-strace lays it out (<storage>/workspaces/<id>/, workspace_id in
meta.json), each workspace's transparency log is checked to be its own,
and a restart, `import --workspace` and `gc --workspace` are tried.
Prints "workspaces: N passed, M failed".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import Checks, Server  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./agent-traced")
SRC = sys.argv[2] if len(sys.argv) > 2 else "."
FIX = os.path.join(SRC, "tests", "fixtures", "claude")
WORK = tempfile.mkdtemp(prefix="workspaces.")
STORE = os.path.join(WORK, "s")
check = Checks("workspaces_db" if os.environ.get("AT_TEST_PGURL") else "workspaces")
WS_HEADER = "X-Agent-Traced-Workspace"


def keygen(name, role, ws):
    out = subprocess.run([BIN, "keygen", "--name", name, "--role", role, "--workspace", ws],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return out[0], out[1]


def transcript(sid):
    return open(os.path.join(FIX, sid + ".jsonl"), "rb").read()


def body_json(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


def main():
    roles = {  # name: (role, workspace)
        "adm": ("admin", "*"), "all-r": ("reader", "*"),
        "d-r": ("reader", "default"), "d-w": ("writer", "default"),
        "a-r": ("reader", "team-a"), "a-w": ("writer", "team-a"), "a-adm": ("admin", "team-a"),
        "b-w": ("writer", "team-b"),
    }
    keys, lines = {}, []
    for name, (role, ws) in roles.items():
        keys[name], line = keygen(name, role, ws)
        lines.append(line)
        check("keygen line of %s names it, its role and workspace, not the key" % name,
              line.split()[:3] == [name, role, ws] and keys[name] not in line, line)
    kf = os.path.join(WORK, "keys")
    with open(kf, "w") as f:
        f.write("\n".join(lines) + "\n")
    legacy = "legacy-admin-key-0123456789"
    srv = Server(BIN, STORE, "--keys", kf, "--auth-key", legacy, "--log-format", "json")
    try:
        run(srv, keys, legacy)
    finally:
        srv.stop()
    # a restart finds team-a again, with its sessions and its log
    srv = Server(BIN, STORE, "--keys", kf)
    try:
        st, _, b = srv.call("GET", "/sessions", key=keys["a-r"])
        ids = [m["session_id"] for m in body_json(b) or []]
        check("after a restart team-a's reader lists its session", st == 200 and SID in ids, (st, b[:200]))
        st, _, b = srv.call("GET", "/sessions/%s/verify" % SID, key=keys["a-r"])
        v = body_json(b) or {}
        check("after a restart team-a's session verifies, log included", st == 200 and v.get("ok") and
              (v.get("log") or {}).get("included"), b[:300])
    finally:
        srv.stop()
    if not os.environ.get("AT_TEST_PGURL"):  # the command line works on a directory
        cli()
    shutil.rmtree(WORK, ignore_errors=True)
    return check.summary()


SID = "4d5611e5-241a-462a-8d15-5122611a9569"
OTHER = "258c7280-ae70-4798-800f-63464d01a85d"


def run(srv, keys, legacy):
    c = srv.call
    # --- uploads land in the key's workspace --------------------------------
    st, _, b = c("POST", "/import?source=%s.jsonl" % SID, transcript(SID), key=keys["a-w"])
    check("team-a's writer imports (201)", st == 201, (st, b[:200]))
    store = srv.stored()
    meta_p = os.path.join(store, "workspaces", "team-a", SID, "meta.json")
    check("the session is stored under workspaces/team-a/", os.path.isfile(meta_p))
    check("and not in the default workspace", not os.path.exists(os.path.join(store, SID)))
    meta = json.load(open(meta_p)) if os.path.isfile(meta_p) else {}
    check("its meta.json says workspace_id team-a", meta.get("workspace_id") == "team-a", meta)
    st, _, b = c("POST", "/import?source=%s.jsonl" % OTHER, transcript(OTHER), key=keys["d-w"])
    check("the default workspace's writer imports (201)", st == 201, (st, b[:200]))
    dmeta = json.load(open(os.path.join(srv.stored(), OTHER, "meta.json")))
    check("a default-workspace session has no workspace_id (agent-strace's bytes)", "workspace_id" not in dmeta)

    # --- readers see their own workspace only --------------------------------
    def listing(key, ws=None):
        st, _, b = c("GET", "/sessions", key=key, headers={WS_HEADER: ws} if ws else None)
        return st, [m["session_id"] for m in body_json(b) or []] if st == 200 else b

    st, ids = listing(keys["a-r"])
    check("team-a's reader lists team-a's session only", st == 200 and ids == [SID], (st, ids))
    st, ids = listing(keys["d-r"])
    check("the default reader lists the default session only", st == 200 and ids == [OTHER], (st, ids))
    st, _, b = c("GET", "/sessions/" + SID, key=keys["d-r"])
    check("the default reader cannot see team-a's session (404)", st == 404, (st, b[:200]))
    st, _, b = c("GET", "/sessions/" + SID, key=keys["b-w"])
    check("team-b's writer cannot see team-a's session (404)", st == 404, (st, b[:200]))
    for name in ("a-r", "a-w", "b-w", "d-r"):
        target = "team-b" if name.startswith("a") else "team-a"
        st, _, b = c("GET", "/sessions", key=keys[name], headers={WS_HEADER: target})
        err = (body_json(b) or {}).get("error", "")
        check("%s naming workspace %s: 403 naming the key" % (name, target),
              st == 403 and name in err and target in err, (st, b[:200]))
    st, _, b = c("GET", "/sessions", key=keys["a-r"], headers={WS_HEADER: "team-a"})
    check("a key may name its own workspace", st == 200, (st, b[:200]))

    # --- roles --------------------------------------------------------------
    small = transcript(SID).split(b"\n")[0] + b"\n"  # a refusal comes before the body: keep it short
    st, _, b = c("POST", "/import?source=x.jsonl", small, key=keys["a-r"])
    check("team-a's reader cannot upload (403)", st == 403 and "a-r" in b.decode(), (st, b[:200]))
    st, _, b = c("POST", "/gc", key=keys["a-w"])
    check("a writer cannot collect garbage (403 naming the route)", st == 403 and "/gc" in b.decode(),
          (st, b[:200]))
    st, _, b = c("POST", "/gc", key=keys["a-adm"])
    g = body_json(b) or {}
    check("team-a's admin collects team-a (200, names it)", st == 200 and g.get("workspace") == "team-a", b[:200])
    st, _, b = c("POST", "/gc", key=keys["adm"], headers={WS_HEADER: "team-a"})
    check("the * admin collects team-a by naming it", st == 200 and (body_json(b) or {}).get("workspace") == "team-a",
          b[:200])
    st, _, b = c("POST", "/gc", key=legacy)
    check("--auth-key is an admin of the default workspace", st == 200 and
          (body_json(b) or {}).get("workspace") == "default", b[:200])
    st, ids = listing(keys["a-adm"], "default")
    check("an admin of team-a sees every workspace", st == 200 and ids == [OTHER], (st, ids))
    st, ids = listing(keys["all-r"], "team-a")
    check("a reader of * reads team-a by naming it", st == 200 and ids == [SID], (st, ids))
    st, ids = listing(keys["all-r"])
    check("a reader of * without a header reads the default", st == 200 and ids == [OTHER], (st, ids))
    st, ids = listing(legacy, "team-a")
    check("--auth-key (agent-strace's key) reads team-a by naming it", st == 200 and ids == [SID], (st, ids))
    st, _, b = c("POST", "/import?source=%s.jsonl" % SID, small, key=keys["all-r"],
                 headers={WS_HEADER: "team-a"})
    check("a reader of * still cannot upload", st == 403, (st, b[:200]))
    st, _, b = c("GET", "/sessions", key="not-a-key")
    check("an unknown key is 401", st == 401, st)

    # --- workspaces that do not exist, bad names ------------------------------
    st, _, b = c("GET", "/sessions", key=keys["adm"], headers={WS_HEADER: "nope"})
    check("reading a workspace that does not exist: 404 naming it",
          st == 404 and "nope" in (body_json(b) or {}).get("error", ""), (st, b[:200]))
    check("and it was not made", not os.path.exists(os.path.join(srv.stored(), "workspaces", "nope")))
    st, _, b = c("GET", "/sessions", key=keys["adm"], headers={WS_HEADER: "../etc"})
    check("a bad workspace name: 400 JSON error", st == 400 and body_json(b) and "error" in body_json(b),
          (st, b[:200]))
    st, _, b = c("GET", "/sessions", key=keys["b-w"])
    check("team-b's own key reads team-b before anything was written there (empty)",
          st == 200 and body_json(b) == [], (st, b[:200]))

    # --- the listing of workspaces -------------------------------------------
    st, _, b = c("GET", "/workspaces", key=keys["adm"])
    w = (body_json(b) or {}).get("workspaces")
    check("GET /workspaces for an admin: every workspace, default first",
          st == 200 and w == ["default", "team-a", "team-b"], (st, b[:200]))
    st, _, b = c("GET", "/workspaces", key=keys["a-r"])
    check("GET /workspaces for team-a's reader: team-a only",
          st == 200 and (body_json(b) or {}).get("workspaces") == ["team-a"], (st, b[:200]))

    # --- the collector endpoints follow the workspace too ---------------------
    meta = {"session_id": "ws-collector-1", "agent_name": "t", "started_at": 1.0}
    st, _, b = c("POST", "/sessions", json.dumps(meta).encode(), key=keys["a-w"],
                 headers={"Content-Type": "application/json"})
    check("POST /sessions by team-a's writer", st in (200, 201), (st, b[:200]))
    ev = {"event_type": "user_prompt", "timestamp": 2.0, "event_id": "e1", "session_id": "ws-collector-1",
          "data": {"prompt": "hi"}}
    st, _, b = c("POST", "/events", (json.dumps(ev) + "\n").encode(), key=keys["a-w"])
    check("POST /events by team-a's writer", st in (200, 201), (st, b[:200]))
    store = srv.stored()
    cm = os.path.join(store, "workspaces", "team-a", "ws-collector-1", "meta.json")
    check("the collector's session is in team-a with its workspace_id",
          os.path.isfile(cm) and json.load(open(cm)).get("workspace_id") == "team-a")
    check("and its event too",
          os.path.isfile(os.path.join(store, "workspaces", "team-a", "ws-collector-1", "events.ndjson")))
    st, _, b = c("GET", "/events/e1", key=keys["a-r"])
    check("team-a's event index finds the event", st == 200, (st, b[:200]))
    st, _, b = c("GET", "/events/e1", key=keys["d-r"])
    check("the default workspace's index does not", st == 404, (st, b[:200]))

    # --- each workspace has a log of its own ---------------------------------
    st, _, b = c("GET", "/sessions/%s/verify" % SID, key=keys["a-r"])
    v = body_json(b) or {}
    check("team-a's session verifies with its log inclusion",
          st == 200 and v.get("ok") and v.get("object_ok") and (v.get("log") or {}).get("included"), b[:300])
    st, _, cpa = c("GET", "/log/checkpoint", key=keys["a-r"])
    st2, _, cpd = c("GET", "/log/checkpoint", key=keys["d-r"])
    oa, od = cpa.decode().split("\n")[0], cpd.decode().split("\n")[0]
    check("team-a's checkpoint origin is the server's origin + /team-a",
          st == 200 and st2 == 200 and oa == od + "/team-a", (oa, od))
    _, _, ka = c("GET", "/log/key", key=keys["a-r"])
    _, _, kd = c("GET", "/log/key", key=keys["d-r"])
    check("team-a's verifier key is named by its origin and differs from the default's",
          ka.decode().startswith(oa + "+") and ka != kd, (ka, kd))
    st, _, b = c("GET", "/sessions/%s/proof" % SID, key=keys["a-r"])
    check("team-a's proof is served in team-a", st == 200 and b.startswith(b"c2sp.org/tlog-proof@v1"), (st, b[:80]))

    # --- push names a workspace; its state keeps workspaces apart -------------
    state = os.path.join(WORK, "push.json")
    env = dict(os.environ, AGENT_STRACE_AUTH_KEY=keys["adm"])
    env.pop("AGENT_TRACED_WORKSPACE", None)
    f = os.path.join(FIX, "short.jsonl")

    def push(*extra, e=env):
        r = subprocess.run([BIN, "push", "--server", srv.url, "--state", state] + list(extra) + [f],
                           capture_output=True, text=True, env=e)
        return r.returncode, body_json(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None, r.stderr

    rc, sm, err = push("--workspace", "team-b")
    check("push --workspace team-b creates the session there", rc == 0 and sm and sm["created"] == 1, (rc, sm, err))
    rc, sm, err = push("--workspace", "team-b")
    check("a second push to team-b sends nothing", rc == 0 and sm and sm["unchanged"] == 1 and sm["bytes_sent"] == 0,
          (rc, sm, err))
    rc, sm, err = push(e=dict(env, AGENT_TRACED_WORKSPACE="team-a"))
    check("$AGENT_TRACED_WORKSPACE=team-a: the same file is created in team-a (state kept per workspace)",
          rc == 0 and sm and sm["created"] == 1, (rc, sm, err))
    st, ids = listing(keys["b-w"])
    check("team-b lists the pushed session", st == 200 and len(ids) == 1, (st, ids))
    rc, sm, err = push("--workspace", "no/slash")
    check("push --workspace with a bad name: exit 2 naming the option", rc == 2 and "--workspace" in err, (rc, err))

    # --- the request log names key and workspace -----------------------------
    logs = [json.loads(x) for x in srv.log if x.startswith("{")]
    check("the JSON request log names the key and the request's workspace",
          any(x.get("key") == "adm" and x.get("workspace") == "team-a" for x in logs) and
          any(x.get("key") == "a-r" and x.get("workspace") == "team-a" for x in logs), logs[-3:])
    check("and never a key itself", not any(k in "".join(srv.log) for k in keys.values()))


def cli():
    env = dict(os.environ)
    env.pop("AGENT_STRACE_STORAGE", None)
    r = subprocess.run([BIN, "import", "--storage", STORE, "--workspace", "team-c",
                        os.path.join(FIX, OTHER + ".jsonl")], capture_output=True, text=True, env=env)
    meta_p = os.path.join(STORE, "workspaces", "team-c", OTHER, "meta.json")
    check("import --workspace team-c stores under workspaces/team-c/ with workspace_id",
          r.returncode == 0 and os.path.isfile(meta_p) and json.load(open(meta_p)).get("workspace_id") == "team-c",
          r.stderr)
    r = subprocess.run([BIN, "import", "--storage", STORE, "--workspace", "a/b", os.path.join(FIX, OTHER + ".jsonl")],
                       capture_output=True, text=True, env=env)
    check("import --workspace with a bad name: exit 2 naming the option",
          r.returncode == 2 and "--workspace" in r.stderr, (r.returncode, r.stderr))
    r = subprocess.run([BIN, "gc", "--storage", STORE, "--workspace", "team-c"], capture_output=True, text=True,
                       env=env)
    g = body_json(r.stdout) or {}
    check("gc --workspace team-c reports for team-c and keeps its objects",
          r.returncode == 0 and g.get("workspace") == "team-c" and g.get("objects_kept", 0) >= 1, r.stdout + r.stderr)
    r = subprocess.run([BIN, "usage", "--storage", STORE, "--workspace", "team-c", "--json"], capture_output=True,
                       text=True, env=env)
    u = body_json(r.stdout) or {}
    check("usage --workspace team-c reports team-c's session",
          r.returncode == 0 and [x.get("session_id") for x in u.get("rows", [])] == [OTHER], r.stdout[:300] + r.stderr)
    r = subprocess.run([BIN, "usage", "--storage", STORE, "--workspace", "team-z"], capture_output=True, text=True,
                       env=env)
    check("usage of a workspace that does not exist: exit 1 naming it, nothing made",
          r.returncode == 1 and "team-z" in r.stderr and not os.path.exists(os.path.join(STORE, "workspaces", "team-z")),
          (r.returncode, r.stderr))
    r = subprocess.run([BIN, "verify", "--versions", "--storage", os.path.join(STORE, "workspaces", "team-a")],
                       capture_output=True, text=True, env=env)
    check("a workspace directory is a storage directory of its own (verify --versions)", r.returncode == 0,
          r.stdout[-300:] + r.stderr[-300:])


if __name__ == "__main__":
    sys.exit(main())
