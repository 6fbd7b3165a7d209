#!/bin/bash
# soak.sh - mixed uploads, appends, trees, lookups and verifies from several
# clients against one server for --seconds (default 600): requests, errors
# (must be 0), p50/p99 latency, RSS and open descriptors over time (flat).
#   bash bench/soak.sh [--seconds 600] [--clients 6] [--sample 10]
cd "$(dirname "$0")/.." || exit 2
[ -x ./agent-traced ] || { echo "soak: build first (make)"; exit 2; }
exec python3 bench/soak.py ./agent-traced "$@"
