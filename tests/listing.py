#!/usr/bin/env python3
"""listing.py - GET /sessions paging and filters against the real server.

The fixtures are uploaded, sessions with chosen agents, commands and start
times are made through POST /sessions, and every page walk (limit 1..7,
following the Link headers) and every filter is compared with the full,
unfiltered list (agent-strace's body) filtered here in Python. Prints
"listing: N passed, M failed".
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atserver import backend  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else "./agent-traced"
SRC = sys.argv[2] if len(sys.argv) > 2 else "."
passed = failed = 0
WORK = tempfile.mkdtemp(prefix="listing.")


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - %s%s" % (what, (": " + str(detail)[:300]) if detail else ""))


def start():
    args, env = backend(os.path.join(WORK, "s"), BIN, WORK)
    p = subprocess.Popen([BIN, "serve", "--port", "0", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         env=dict(os.environ, **env))
    line = p.stderr.readline().decode()
    threading.Thread(target=lambda: [None for _ in iter(lambda: p.stderr.read(65536), b"")], daemon=True).start()
    return p, "http://127.0.0.1:%s" % line.rsplit(":", 1)[1].strip()


def get(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post(url, body):
    rq = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(rq) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def walk(base, query, limit):
    """Every page of a query, following Link headers; (items, pages)."""
    url = base + "/sessions?" + urllib.parse.urlencode(dict(query, limit=limit))
    items, pages = [], 0
    while url and pages < 1000:
        st, h, body = get(url)
        if st != 200:
            return None, "status %d %s" % (st, body[:100])
        page = json.loads(body)
        if len(page) > limit:
            return None, "a page of %d > limit %d" % (len(page), limit)
        items += page
        pages += 1
        link = h.get("Link")
        m = re.match(r'<([^>]*)>; rel="next"', link or "")
        url = base + m.group(1) if m else None
        if link and not m:
            return None, "bad Link " + link
    return items, pages


def main():
    p, base = start()
    try:
        for f in sorted(glob.glob(os.path.join(SRC, "tests/fixtures/claude/*.jsonl"))):
            with open(f, "rb") as fh:
                post(base + "/import?source=" + os.path.basename(f), fh.read())
        made = [("p-%02d" % i, ["alpha", "beta", "gamma"][i % 3], 1700000000 + (i // 2) * 86400.0,
                 "run job-%d" % i) for i in range(20)]
        for sid, agent, t, cmd in made:
            st, _ = post(base + "/sessions", json.dumps({"session_id": sid, "agent_name": agent,
                                                         "started_at": t, "command": cmd}).encode())
            assert st == 200, st
        st, h, body = get(base + "/sessions")
        full = json.loads(body)
        check("GET /sessions without parameters: no Link header, every session (%d)" % len(full),
              st == 200 and "Link" not in h and len(full) >= 25)
        ids = [x["session_id"] for x in full]
        for limit in range(1, 8):
            items, pages = walk(base, {}, limit)
            check("limit=%d: the pages (%s) add up to the whole list, in order, once each" % (limit, pages),
                  items is not None and [x["session_id"] for x in items] == ids, pages if items is None else "")
        cases = [
            ({"agent": "beta"}, lambda x: x.get("agent_name") == "beta"),
            ({"q": "job-1"}, lambda x: "job-1" in x["session_id"] or "job-1" in (x.get("agent_name") or "")
             or "job-1" in (x.get("command") or "")),
            ({"q": "p-0"}, lambda x: "p-0" in x["session_id"]),
            ({"since": "1700172800"}, lambda x: (x.get("started_at") or 0) >= 1700172800),
            ({"until": "2023-11-17"}, lambda x: (x.get("started_at") or 0) < 1700179200),
            ({"since": "2023-11-15T00:00:00+00:00", "until": 1700400000, "agent": "alpha"},
             lambda x: 1700006400 <= (x.get("started_at") or 0) < 1700400000 and x.get("agent_name") == "alpha"),
            ({"q": "no-such-thing"}, lambda x: False),
        ]
        for query, keep in cases:
            want = [x["session_id"] for x in full if keep(x)]
            for limit in (1, 3, 10000):
                items, pages = walk(base, query, limit)
                check("%s, limit=%d: %d sessions in %s pages" % (query, limit, len(want), pages),
                      items is not None and [x["session_id"] for x in items] == want,
                      pages if items is None else [x["session_id"] for x in items][:5])
        # a session made between two pages shows up on none of the old ones twice
        st, h, body = get(base + "/sessions?limit=5")
        nxt = re.match(r'<([^>]*)>', h.get("Link", "")).group(1)
        post(base + "/sessions", json.dumps({"session_id": "p-new", "agent_name": "alpha", "started_at": 1600000000.0}).encode())
        rest, _ = walk(base, {}, 5)
        first = [x["session_id"] for x in json.loads(body)]
        st2, _, body2 = get(base + nxt)
        check("a session added between pages: the next page goes on after the last one seen",
              st2 == 200 and not set(first) & {x["session_id"] for x in json.loads(body2)})
        for bad in ["limit=0", "limit=x", "limit=10001", "cursor=zz", "cursor=0000000000000000.zz.aa",
                    "since=yesterday", "until=2023-13-45"]:
            st, _, body = get(base + "/sessions?" + bad)
            check("GET /sessions?%s: 400 with an error (%d)" % (bad, st),
                  st == 400 and "error" in json.loads(body))
    finally:
        p.terminate()
        p.wait(20)
    print("listing%s: %d passed, %d failed" % ("_db" if os.environ.get("AT_TEST_PGURL") else "", passed, failed))
    if not failed:
        shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(1 if failed else 0)


main()
