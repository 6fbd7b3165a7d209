// The independent verifier of tests/log_go.sh. golang.org/x/mod comes from
// Debian's golang-golang-x-mod-dev, offline: see README.md and run.sh.
module gotlog

go 1.19

require golang.org/x/mod v0.7.0

replace golang.org/x/mod => /usr/share/gocode/src/golang.org/x/mod
