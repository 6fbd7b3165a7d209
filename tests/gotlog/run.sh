#!/bin/sh
# run.sh OUTPUT - builds gotlog (main.go), the log verifier of tests/log_go.sh,
# into OUTPUT, offline (as tests/gonote/run.sh).
# Exits 77 (the Automake "skip" status) when Go or Debian's golang.org/x/mod
# sources are missing, 99 when the build itself fails. See README.md.
set -u
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT" >&2
    exit 99
fi
here=$(cd "$(dirname "$0")" && pwd)
case $1 in
/*) out=$1 ;;
*) out=$(pwd)/$1 ;;
esac
xmod=/usr/share/gocode/src/golang.org/x/mod # go.mod's replace points here
if ! command -v go >/dev/null 2>&1; then
    echo "run.sh: no go (apt-get install golang-go): skipping" >&2
    exit 77
fi
if [ ! -f "$xmod/sumdb/note/note.go" ]; then
    echo "run.sh: no $xmod (apt-get install golang-golang-x-mod-dev): skipping" >&2
    exit 77
fi
# Module mode, resolved from the replace directive alone: no proxy, no
# checksum database, no go.sum, nothing written to the source tree.
GOPROXY=off
GOSUMDB=off
GOFLAGS=-mod=readonly
GOWORK=off
GOTOOLCHAIN=local
export GOPROXY GOSUMDB GOFLAGS GOWORK GOTOOLCHAIN
unset GOPATH GO111MODULE
if [ -z "${GOCACHE:-}" ]; then
    # the default cache lives under $HOME, which CI may not have
    GOCACHE=${TMPDIR:-/tmp}/gotlog-gocache-$(id -u)
    export GOCACHE
fi
mkdir -p "$(dirname "$out")" || exit 99
cd "$here" && go build -trimpath -o "$out" . || exit 99
exit 0
