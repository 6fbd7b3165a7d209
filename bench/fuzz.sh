#!/bin/bash
# bench/fuzz.sh TARGET SECONDS [libFuzzer options...] - runs fuzz/fuzz_TARGET
# (json, importer, chain, request, collector, note) for SECONDS in one
# process, then prints executions, exec/s and coverage (cov/ft of
# libFuzzer's last status line) and copies every crash, leak, timeout or
# out-of-memory input into fuzz/regression/TARGET/.
#
# The fuzzing build (clang, --enable-fuzzing) lives in its own copy of the
# tree, $FUZZ_BUILD (default build-fuzz/, which git ignores): the tree itself
# is configured in place for gcc and VPATH builds from it fail. Each run
# copies the tracked and new files over (keeping their times, so make
# rebuilds only what changed). The corpus grows in $FUZZ_BUILD/corpus/TARGET
# from fuzz/seed.sh's seeds, fuzz/seeds/TARGET and fuzz/regression/TARGET.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bench/fuzz.sh TARGET SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
case $target in
json | importer | chain | request | collector | note) ;;
*) echo "unknown target: $target (json importer chain request collector note)" >&2; exit 2 ;;
esac
build=${FUZZ_BUILD:-$top/build-fuzz}
tree=$build/tree
mkdir -p "$tree" "$build/corpus/$target" "$build/artifacts/$target"

# the sources, into the copy, and the build: one run at a time (two may fuzz at once)
exec 9>"$build/lock"
flock 9
(cd "$top" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$tree"
if [ ! -f "$tree/Makefile" ]; then
    (cd "$tree" && autoreconf -fi && ./configure -q CC=clang --enable-fuzzing) >"$build/configure.log" 2>&1 ||
        { tail -n 30 "$build/configure.log" >&2; exit 1; }
fi
make -C "$tree" -j"${FUZZ_MAKE_JOBS:-2}" "fuzz/fuzz_$target" >"$build/make.log" 2>&1 ||
    { tail -n 30 "$build/make.log" >&2; exit 1; }
flock -u 9

corpus=$build/corpus/$target
if [ -z "$(ls -A "$corpus")" ]; then
    "$top/fuzz/seed.sh" "$build/seeds" "$target" >/dev/null
    cp "$build/seeds/$target"/* "$corpus/" 2>/dev/null || true
fi
extra=()
for d in "$top/fuzz/seeds/$target" "$top/fuzz/regression/$target"; do
    [ -n "$(ls -A "$d" 2>/dev/null | grep -v '^README' || true)" ] && extra+=("$d")
done

log=$build/$target.log
art=$build/artifacts/$target
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzz_$target: running for $seconds s (log: $log)"
status=0
t0=$(date +%s)
"$tree/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "$@" "$corpus" "${extra[@]}" >"$log" 2>&1 || status=$?
elapsed=$(($(date +%s) - t0))

# libFuzzer's numbers: the last status line (cov, ft, corp) and the final stats
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
files=$(ls "$corpus" | wc -l)
bytes=$(du -sb "$corpus" | cut -f1)
echo "fuzz_$target: ${execs:-?} executions in $elapsed s, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}," \
    "corpus ${corp:-?} (${files} files, ${bytes} bytes on disk), peak RSS ${rss:-?} MB, exit status $status"

# crashes into the regression set
found=0
for f in "$art"/*; do
    [ -e "$f" ] || continue
    mkdir -p "$top/fuzz/regression/$target"
    dest="$top/fuzz/regression/$target/$(basename "$f")"
    if [ ! -e "$dest" ]; then
        cp "$f" "$dest"
        echo "fuzz_$target: new failing input: $dest"
        found=$((found + 1))
    fi
    mkdir -p "$art.seen"
    mv "$f" "$art.seen/" # reported once
done
if [ "$status" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|property broken|runtime error' "$log" | head -n 5 >&2 || true
fi
[ "$found" -eq 0 ] && [ "$status" -eq 0 ]
