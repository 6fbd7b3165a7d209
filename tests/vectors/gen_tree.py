#!/usr/bin/env python3
"""gen_tree.py - reference outputs for GET /sessions/{id}/tree (tests/test_tree.c).

A re-implementation of `agent-strace tree <id> --format json|text` from
server-api.md ("Trees, exactly as agent-strace prints them"), in Python, so
json.dumps / round / f-strings give the reference bytes. The readings of
the spec where agent-strace could not be consulted are the ones src/tree.c
documents at its top (absent fields take SessionMeta's defaults, "" for the
parent fields; expansion stops at tree depth 5, "set" means truthy, Python's
max(0, x), preorder totals, the text header shows the root's id, print()
adds the final newline).

Writes:
  tests/vectors/tree/edge/           a hand-made storage of edge cases
  tests/vectors/tree/<storage>.<n>.json|.txt
  tests/vectors/tree/cases.tsv       storage<TAB>session dir<TAB>json file<TAB>txt file
for every session of tests/fixtures/expected and of the edge storage.

Run from the source root: python3 tests/vectors/gen_tree.py
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "tree")
EDGE = os.path.join(OUT, "edge")

IN_TYPES = {"user_prompt", "llm_request", "tool_call"}
OUT_TYPES = {"assistant_response", "llm_response", "tool_result"}


def session_ok(name):
    return name and not name.startswith(".") and name != "objects" and len(name.encode()) <= 255


def listing(root):
    out = []
    for name in os.listdir(root):
        if not session_ok(name):
            continue
        p = os.path.join(root, name, "meta.json")
        if not os.path.isfile(p):
            continue
        try:
            with open(p, encoding="utf-8") as f:
                m = json.load(f)
        except (ValueError, OSError):
            continue
        if not isinstance(m, dict) or not isinstance(m.get("session_id"), str):
            continue
        out.append((name, m))
    # started_at descending, then session_id descending
    out.sort(key=lambda x: (x[1].get("started_at", 0.0), x[1]["session_id"], x[0]), reverse=True)
    return out


def cost(root, name):
    tin = tout = 0
    p = os.path.join(root, name, "events.ndjson")
    if not os.path.exists(p):
        return 0.0
    with open(p, "rb") as f:
        for raw in f:
            try:
                ev = json.loads(raw.decode("utf-8", "surrogatepass"))
            except ValueError:
                continue
            if not isinstance(ev, dict):
                continue
            et = ev.get("event_type")
            L = len(json.dumps(ev.get("data", {})))
            if et in IN_TYPES:
                tin += max(1, L // 4)
            elif et in OUT_TYPES:
                tout += max(1, L // 4)
    return tin / 1e6 * 3.0 + tout / 1e6 * 15.0


def build(root, lst, name, meta, level, costs):
    tdm = meta.get("total_duration_ms", 0)
    if tdm:
        d = tdm / 1000
    elif meta.get("ended_at") and meta.get("started_at"):
        d = max(0, meta["ended_at"] - meta["started_at"])
    else:
        d = 0.0
    c = cost(root, name)
    errors = meta.get("errors", 0)
    node = {
        "session_id": meta["session_id"],
        "agent": meta.get("agent_name") or meta.get("command") or "",
        "depth": meta.get("depth", 0),
        "parent_session_id": meta.get("parent_session_id", ""),
        "parent_event_id": meta.get("parent_event_id", ""),
        "cost_usd": round(c, 6),
        "tool_calls": meta.get("tool_calls", 0),
        "llm_requests": meta.get("llm_requests", 0),
        "errors": errors,
        "status": "error" if errors else "ok",
        "duration_s": round(d, 3),
        "children": [],
    }
    costs.append(c)
    if level < 5:
        kids = [x for x in lst if x[1].get("parent_session_id") == meta["session_id"]]
        kids.sort(key=lambda x: x[1].get("started_at", 0.0))  # stable
        for kname, kmeta in kids:
            node["children"].append(build(root, lst, kname, kmeta, level + 1, costs))
    return node


def walk(node, level=0, last=True):
    yield node, level, last
    n = len(node["children"])
    for i, k in enumerate(node["children"]):
        yield from walk(k, level + 1, i == n - 1)


def tree(root, name):
    lst = listing(root)
    meta = dict(lst)[name] if name in dict(lst) else None
    costs = []
    t = build(root, lst, name, meta, 0, costs)
    total = 0
    for c in costs:
        total += c
    nodes = [n for n, _, _ in walk(t)]
    obj = {
        "root_session_id": meta["session_id"],
        "total_sessions": len(nodes),
        "total_cost_usd": round(total, 6),
        "total_tool_calls": sum(n["tool_calls"] for n in nodes),
        "total_llm_requests": sum(n["llm_requests"] for n in nodes),
        "total_errors": sum(n["errors"] for n in nodes),
        "tree": t,
    }
    js = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    lines = ["", f"Session tree for {obj['root_session_id'][:12]}", ""]
    for n, level, last in walk(t):
        ind = "" if level == 0 else "│  " * (level - 1) + ("└─ " if last else "├─ ")
        mark = "✗" if n["errors"] else "✓"
        ln = (f"{ind}{n['session_id'][:12]}  {n['agent'][:28]:<28}  ${n['cost_usd']:.4f}  "
              f"{n['tool_calls']} tools  {n['duration_s']:.1f}s  {mark}")
        if n["errors"]:
            ln += f"  {n['errors']} errors"
        lines.append(ln)
    tot = (f"\nTotal: {obj['total_sessions']} sessions, ${obj['total_cost_usd']:.4f}, "
           f"{obj['total_tool_calls']} tool calls, {obj['total_llm_requests']} LLM requests")
    if obj["total_errors"]:
        tot += f", {obj['total_errors']} errors"
    lines.append(tot)
    lines.append("")
    txt = "\n".join(lines) + "\n"
    return js, txt


# ---- the edge-case storage ---------------------------------------------------

def meta_json(m):
    return json.dumps(m, indent=2)


def ev(et, data_src):
    """One events.ndjson line with data given as raw JSON text."""
    if data_src is None:
        return '{"event_type":"%s","timestamp":1.0,"event_id":"e","session_id":"s"}' % et
    return '{"event_type":"%s","timestamp":1.0,"event_id":"e","session_id":"s","data":%s}' % (et, data_src)


EVENTS_A = [
    ev("user_prompt", '{"prompt":"h\\u00e9llo \\ud83d\\ude00 w\\u00f6rld","n":1E5}'),
    ev("assistant_response", '{"text":"x","a":1,"a":[1.50,-0,1e400,-1e-7]}'),
    ev("tool_call", None),
    ev("tool_result", '{}'),
    ev("llm_request", '{"k":"' + "y" * 4000 + '"}'),
    ev("llm_response", '{"t":"caf\u00e9 \u2603","nested":{"z":null,"b":true}}'),
    "",
    "not json at all",
    ev("session_start", '{"ignored":"' + "q" * 100 + '"}'),
    ev("error", '{"e":1}'),
    ev("tool_call", '{"lone":"\\ud800","big":123456789012345678901234567890}'),
]


def edge_sessions():
    S = []  # (dir, meta, events or None)
    S.append(("edge-root", {
        "session_id": "edge-root", "started_at": 100.0, "ended_at": 105.5,
        "command": "c\u00f6mmand with \u00fcnicode and a name longer than twenty-eight",
        "tool_calls": 3.0, "llm_requests": 4, "errors": 2, "attribution": {}}, EVENTS_A))
    # children with equal started_at, one without started_at, one later
    for sid, st in (("edge-kid-b", 200.0), ("edge-kid-c", 200.0), ("edge-kid-a", 200.0),
                    ("edge-kid-nostart", None), ("edge-kid-late", 300.5)):
        m = {"session_id": sid}
        if st is not None:
            m["started_at"] = st
            m["ended_at"] = st
        m.update({"agent_name": "sub", "tool_calls": 1, "parent_session_id": "edge-root",
                  "parent_event_id": "abcdef123456", "depth": 1, "attribution": {}})
        S.append((sid, m, EVENTS_A[:3]))
    # a long chain below the root: truncated at tree depth 5
    prev = "edge-root"
    for k in range(1, 9):
        sid = "edge-chain-%d" % k
        m = {"session_id": sid, "started_at": 400.0 + k, "ended_at": 399.0 + k,
             "agent_name": "chain-agent-" + "\u00e9" * 30, "tool_calls": k, "llm_requests": 2.5,
             "errors": 0.0, "parent_session_id": prev, "depth": float(k) if k % 2 else k,
             "attribution": {}}
        S.append((sid, m, [ev("tool_call", '{"k":%d}' % k)] * k))
        prev = sid
    # int started/ended: int duration; float total_duration_ms; errors
    S.append(("edge-ints", {"session_id": "edge-ints", "started_at": 1000, "ended_at": 1777,
                            "tool_calls": 12345678901234, "errors": 1,
                            "parent_session_id": "edge-root", "attribution": {}}, None))
    S.append(("edge-tdm", {"session_id": "edge-tdm", "started_at": 50.25,
                           "total_duration_ms": 1234.5678, "agent_name": "t",
                           "parent_session_id": "edge-root", "depth": {"b": 1, "a": [1, {}]},
                           "attribution": {"x": 1}}, EVENTS_A[5:]))
    S.append(("edge-rounding", {"session_id": "edge-rounding", "started_at": 0.1,
                                "total_duration_ms": 2675, "agent_name": "r",
                                "parent_session_id": "edge-root", "attribution": {}},
              [ev("tool_call", '{"s":"%s"}' % ("a" * k)) for k in range(0, 40, 3)]))
    # non-ASCII session id longer than 12 code points
    S.append(("\u00e9t\u00e9-\u65e5\u672c\u8a9e-session-\U0001F600", {
        "session_id": "\u00e9t\u00e9-\u65e5\u672c\u8a9e-session-\U0001F600", "started_at": 7.0,
        "agent_name": "\u65e5\u672c\u8a9e\u30a8\u30fc\u30b8\u30a7\u30f3\u30c8", "attribution": {}},
              EVENTS_A[:2]))
    # a cycle: each is the other's parent
    S.append(("cyc-a", {"session_id": "cyc-a", "started_at": 1.0, "parent_session_id": "cyc-b",
                        "attribution": {}}, None))
    S.append(("cyc-b", {"session_id": "cyc-b", "started_at": 2.0, "parent_session_id": "cyc-a",
                        "attribution": {}}, None))
    # parent without started_at and ended_at only
    S.append(("edge-lonely", {"session_id": "edge-lonely", "ended_at": 9.0, "attribution": {}}, []))
    return S


def write_edge():
    if os.path.isdir(EDGE):
        shutil.rmtree(EDGE)
    os.makedirs(EDGE)
    for d, m, evs in edge_sessions():
        os.makedirs(os.path.join(EDGE, d))
        with open(os.path.join(EDGE, d, "meta.json"), "w", encoding="utf-8") as f:
            f.write(meta_json(m))
        if evs is not None:
            with open(os.path.join(EDGE, d, "events.ndjson"), "w", encoding="utf-8") as f:
                f.write("".join(e + "\n" for e in evs))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_edge()
    for f in os.listdir(OUT):
        if f.endswith(".json") or f.endswith(".txt"):
            os.remove(os.path.join(OUT, f))
    cases = []
    for label, root in (("expected", os.path.join(TOP, "tests", "fixtures", "expected")),
                        ("edge", EDGE)):
        for i, (name, _) in enumerate(sorted(listing(root))):
            js, txt = tree(root, name)
            base = "%s.%d" % (label, i)
            with open(os.path.join(OUT, base + ".json"), "w", encoding="utf-8") as f:
                f.write(js)
            with open(os.path.join(OUT, base + ".txt"), "w", encoding="utf-8") as f:
                f.write(txt)
            cases.append("%s\t%s\t%s.json\t%s.txt\n" % (label, name, base, base))
    with open(os.path.join(OUT, "cases.tsv"), "w", encoding="utf-8") as f:
        f.write("".join(cases))
    print("%d cases" % len(cases), file=sys.stderr)


if __name__ == "__main__":
    main()
