#!/bin/bash
# openapi.sh - openapi.yaml is a valid OpenAPI description (Redocly CLI's
# recommended ruleset: no error, no warning), and the live server answers as
# it says: tests/openapi/check.mjs drives three servers (no auth; --auth-key
# with a small --max-upload; --no-log) through every documented operation and
# checks each response's status, Content-Type, headers and body against the
# spec's schemas (ajv).
#
# Needs Node.js and the pinned packages of tests/openapi/package-lock.json
# (`npm ci --prefix tests/openapi`, which .ci/setup runs). Without them the
# test fails; AT_SKIP_NODE=1 makes it skip (77) instead.
. "${top_srcdir:-.}/tests/lib.sh"
export LC_ALL=C
OA="$top_srcdir/tests/openapi"

missing() {
    if [ "${AT_SKIP_NODE:-}" = 1 ]; then
        echo "SKIP: $1 (AT_SKIP_NODE=1)"
        exit 77
    fi
    not_ok "$1 (run: bash .ci/setup, or npm ci --prefix tests/openapi; AT_SKIP_NODE=1 skips)"
    finish openapi
    exit 1
}
command -v node > /dev/null || missing "node is not installed"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    missing "node $(node --version) is older than 20.19 (what @redocly/cli 2.77.0 needs)"
[ -x "$OA/node_modules/.bin/redocly" ] && [ -d "$OA/node_modules/ajv" ] && [ -d "$OA/node_modules/yaml" ] ||
    missing "$OA/node_modules is missing or incomplete"

work=$(mktemp -d) || exit 99
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# ---- the linter -------------------------------------------------------------
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1
lint() { # lint FORMAT: Redocly CLI's lint of openapi.yaml
    "$OA/node_modules/.bin/redocly" lint --config "$OA/redocly.yaml" --format "$1" \
        "$top_srcdir/openapi.yaml"
}
lint json > "$work/lint.json" 2> "$work/lint.err"
lint_rc=$?
totals=$(node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(`${r.totals.errors} ${r.totals.warnings} ${r.totals.ignored} ${r.version}`);' "$work/lint.json" 2> /dev/null)
read -r errors warnings ignored version <<< "$totals"
# (ignored: problems an ignore file hides, which count too)
if [ "$lint_rc" -eq 0 ] && [ "${errors:-x}" = 0 ] && [ "${warnings:-x}" = 0 ] && [ "${ignored:-x}" = 0 ]; then
    ok "redocly lint $version (recommended): openapi.yaml has 0 errors, 0 warnings"
else
    not_ok "redocly lint ${version:-?} (recommended): ${errors:-?} errors, ${warnings:-?} warnings, ${ignored:-?} ignored (exit $lint_rc)"
    lint stylish 2>&1 | grep -v '[║╔╚]' | sed 's/^/#   /'
fi

# ---- three servers --------------------------------------------------------------
# start NAME ARGS...: serves $work/NAME on a free port; sets URL.
start() {
    local name=$1
    shift
    "$BIN" serve --storage "$work/$name" --port 0 --threads 2 "$@" 2> "$work/$name.log" &
    pids+=($!)
    URL=
    for _ in $(seq 200); do
        if grep -q '^listening on ' "$work/$name.log"; then
            URL="http://$(head -n 1 "$work/$name.log" | sed 's/^listening on //')"
            return 0
        fi
        sleep 0.05
    done
    not_ok "$name server did not start"
    sed 's/^/#   /' "$work/$name.log"
    return 1
}
key=ast_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# a reader key of the default workspace beside it (the 403s)
"$BIN" keygen --name oa-reader --role reader > "$work/reader" || exit 99
sed -n 2p "$work/reader" > "$work/keys"
reader=$(head -n 1 "$work/reader")
start main && main_url=$URL &&
    start auth --auth-key "$key" --keys "$work/keys" --max-upload 64K && auth_url=$URL &&
    start nolog --no-log && nolog_url=$URL || {
    finish openapi
    exit 1
}

# ---- the live checks ----------------------------------------------------------
OA_URL=$main_url OA_AUTH_URL=$auth_url OA_NOLOG_URL=$nolog_url OA_KEY=$key OA_READER=$reader \
    OA_SPEC="$top_srcdir/openapi.yaml" OA_FIXTURES="$top_srcdir/tests/fixtures/claude" \
    OA_ROUTES="$top_srcdir/src/http_routes.c" OA_STORAGE="$work/main" \
    node "$OA/check.mjs" > "$work/check.out" 2>&1
check_rc=$?
grep -v '^#counts ' "$work/check.out"
read -r p f <<< "$(sed -n 's/^#counts //p' "$work/check.out")"
if [ -z "$p" ]; then
    not_ok "check.mjs ended without its counts (exit $check_rc)"
else
    t_pass=$((t_pass + p))
    t_fail=$((t_fail + f))
    [ "$check_rc" -eq 0 ] || [ "$f" -gt 0 ] || not_ok "check.mjs exited $check_rc"
fi
for s in main auth nolog; do
    if grep -qiE 'sanitizer|assertion|segmentation' "$work/$s.log"; then
        not_ok "$s server log shows a crash"
        sed 's/^/#   /' "$work/$s.log" | tail -n 20
    fi
done
finish openapi
