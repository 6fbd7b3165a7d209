#!/bin/bash
# mkman.sh BIN > agent-traced.1 - the man page, from the program's own
# --help texts (so it never drifts from them): the overview, then one
# section per command.
set -euo pipefail
BIN=$1
ver=$("$BIN" --version | awk '{print $2}')
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"; }
cat <<HEAD
.TH AGENT-TRACED 1 "" "agent-traced $ver" "User Commands"
.SH NAME
agent-traced \\- a trace server for AI coding agents
.SH SYNOPSIS
.B agent-traced
.I command
[\\fIoptions\\fR]
.SH DESCRIPTION
.nf
HEAD
"$BIN" --help | esc
echo ".fi"
for cmd in $("$BIN" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}'); do
    echo ".SH COMMAND: ${cmd^^}"
    echo ".nf"
    "$BIN" "$cmd" --help | esc
    echo ".fi"
done
cat <<TAIL
.SH FILES
.TP
.I ./.agent-traces
the default storage directory (agent-strace's layout)
.SH SEE ALSO
The README and openapi.yaml of the source distribution.
TAIL
