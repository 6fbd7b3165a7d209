#!/usr/bin/env python3
"""gen_usage.py - ccusage's token usage of every fixture transcript, each
read on its own (tests/usage.py compares GET /sessions/{id}/usage with it).

For each *.jsonl under tests/fixtures/claude, claude-edge and claude-usage
(subagent files included), a temporary CLAUDE_CONFIG_DIR holding only
projects/p/<file> is given to

    node tests/usage/node_modules/ccusage/dist/index.js session --json --offline

(ccusage 18.0.11, pinned by tests/usage/package-lock.json: `npm ci --prefix
tests/usage` first). ccusage groups the files of one folder into a session,
hence one file per run. Writes tests/vectors/usage_ccusage.json:

    {"ccusage": "18.0.11", "command": "...",
     "files": {"claude/short.jsonl": SESSION or null, ...}}

SESSION is ccusage's session object without projectPath, lastActivity and
versions (which depend on the folder and the time zone); null when ccusage
reports no session (no line passed its schema).

Run from the source root: python3 tests/vectors/gen_usage.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CCUSAGE = os.path.join(TOP, "tests", "usage", "node_modules", "ccusage")
COMMAND = "ccusage session --json --offline"
OUT = os.path.join(HERE, "usage_ccusage.json")


def ccusage_version():
    with open(os.path.join(CCUSAGE, "package.json")) as f:
        return json.load(f)["version"]


def ccusage_file(path, node="node"):
    """ccusage's session object for the one transcript at path (None: none)."""
    tmp = tempfile.mkdtemp(prefix="ccusage.")
    try:
        proj = os.path.join(tmp, "projects", "p")
        os.makedirs(proj)
        shutil.copy(path, os.path.join(proj, os.path.basename(path)))
        env = dict(os.environ, CLAUDE_CONFIG_DIR=tmp, TZ="UTC", NO_COLOR="1")
        p = subprocess.run([node, os.path.join(CCUSAGE, "dist", "index.js"), "session", "--json", "--offline"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120, check=True)
        out = json.loads(p.stdout)
        sessions = out["sessions"] if isinstance(out, dict) else out
        if not sessions:
            return None
        if len(sessions) != 1:
            raise RuntimeError("%s: %d sessions" % (path, len(sessions)))
        s = sessions[0]
        for k in ("projectPath", "lastActivity", "versions"):
            s.pop(k, None)
        return s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fixture_files(roots):
    """(key, path) of every transcript under roots: key = <root name>/<relative path>."""
    out = []
    for root in roots:
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith(".jsonl"):
                    p = os.path.join(d, f)
                    out.append((os.path.basename(root.rstrip("/")) + "/" + os.path.relpath(p, root), p))
    return sorted(out)


def main():
    roots = [os.path.join(TOP, "tests", "fixtures", d) for d in ("claude", "claude-edge", "claude-usage")]
    files = {}
    for key, path in fixture_files(roots):
        files[key] = ccusage_file(path)
        print(key, "none" if files[key] is None else files[key]["totalTokens"], file=sys.stderr)
    with open(OUT, "w") as f:
        json.dump({"ccusage": ccusage_version(), "command": COMMAND + " (CLAUDE_CONFIG_DIR=<dir holding only "
                   "projects/p/<file>>, TZ=UTC)", "generator": "tests/vectors/gen_usage.py", "files": files},
                  f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
