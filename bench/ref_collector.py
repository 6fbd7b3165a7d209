#!/usr/bin/env python3
"""ref_collector.py - a STAND-IN for agent-strace's collector, NOT the reference.

The reference collector is agent-strace's `agent-strace server` (Python, PyPI
`agent-strace`). It cannot be installed here (no PyPI access), so this file
re-creates, from its documented behaviour only, the two read endpoints that
bench/catalog_bench.sh measures. It is not agent-strace's code, is not a
drop-in replacement for it, and its numbers only estimate the reference's:

  * an http.server ThreadingHTTPServer (a thread per connection);
  * GET /health: lists the storage directory, keeps the entries holding a
    regular file meta.json (dot-names, "objects" and "workspaces" left out,
    as agent-traced does), answers {"status": "ok", "sessions": N};
  * GET /sessions: the same listing, json.load() of every meta.json (one
    that cannot be read or parsed is left out), sorted by started_at
    descending then session_id descending, each written as
    SessionMeta.to_dict() (trace-format.md section 4: fields in order, null,
    "", 0, 0.0 and false left out, attribution always) and json.dumps'd;
  * nothing cached: every request reads the directory again.

Where the reference's details are unknown this stand-in takes the faster
choice, so the measured ratio is a lower bound: no request logging; with
--keep-alive it answers HTTP/1.1 with persistent connections (http.server's
default, and the default here, is HTTP/1.0: one connection per request).

usage: ref_collector.py --storage DIR [--host H] [--port P] [--keep-alive]
Prints "listening on HOST:PORT" once it accepts connections.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# SessionMeta's fields in meta.json order (trace-format.md section 4).
FIELDS = (
    "session_id", "started_at", "ended_at", "agent_name", "command", "tool_calls",
    "llm_requests", "errors", "total_tokens", "total_duration_ms", "parent_session_id",
    "parent_event_id", "depth", "team", "workspace_id", "attribution", "redacted",
)
RESERVED = ("objects", "workspaces")


def session_dirs(storage):
    """Names of the directories under storage holding a meta.json file."""
    try:
        names = os.listdir(storage)
    except OSError:
        return None
    return [n for n in names
            if not n.startswith(".") and n not in RESERVED
            and os.path.isfile(os.path.join(storage, n, "meta.json"))]


def to_dict(meta):
    """SessionMeta.to_dict(): known fields in order, empty values left out."""
    out = {}
    for f in FIELDS:
        v = meta.get(f)
        if f == "attribution":
            out[f] = v if v is not None else {}
        elif v is None or v is False or v == "" or (
                isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0):
            continue
        else:
            out[f] = v
    return out


def list_sessions(storage):
    names = session_dirs(storage)
    if names is None:
        return None
    metas = []
    for n in names:
        try:
            with open(os.path.join(storage, n, "meta.json"), encoding="utf-8") as f:
                m = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(m, dict):
            continue
        started = m.get("started_at") or 0.0
        if not isinstance(started, (int, float)) or started != started:
            started = 0.0
        sid = m.get("session_id")
        metas.append((started, sid if isinstance(sid, str) else n, m))
    metas.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [to_dict(m) for _, _, m in metas]


class Handler(BaseHTTPRequestHandler):
    storage = "."

    def log_message(self, fmt, *args):  # quiet: the faster choice
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/health":
            names = session_dirs(self.storage)
            if names is None:
                return self.reply(500, {"error": "cannot list sessions"})
            return self.reply(200, {"status": "ok", "sessions": len(names)})
        if path == "/sessions":
            metas = list_sessions(self.storage)
            if metas is None:
                return self.reply(500, {"error": "cannot list sessions"})
            return self.reply(200, metas)
        return self.reply(404, {"error": "not found"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--keep-alive", action="store_true", help="HTTP/1.1 persistent connections")
    a = ap.parse_args()
    Handler.storage = a.storage
    if a.keep_alive:
        Handler.protocol_version = "HTTP/1.1"
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    print("listening on %s:%d" % srv.server_address[:2], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
