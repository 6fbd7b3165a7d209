#!/bin/bash
# cluster.sh - a private PostgreSQL cluster for the tests: initdb in a
# temporary directory, a server on a free loopback port (no Unix socket in a
# shared place), stopped by `cluster.sh stop DIR`.
#
#   eval "$(tests/pg/cluster.sh start DIR)"   # sets PGURL (postgres://...) and PGDIR
#   tests/pg/cluster.sh stop DIR
#   tests/pg/cluster.sh pause DIR / resume DIR   # the server down, then up on the same port
#
# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` user (Debian's package makes it) and runs under runuser.
# Exit 77 (skip) when PostgreSQL's server programs are not installed.
set -uo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: cluster.sh start|stop|pause|resume DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "cluster.sh: PostgreSQL's server is not installed (apt-get install postgresql)" >&2; exit 77; }
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
    mkdir -p "$dir" || exit 1
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U agent_traced --auth=trust -E UTF8 --locale=C.UTF-8 > "$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # a free port: ask the kernel, then hand it to postgres (a race with
    # another process taking it is retried)
    for _ in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=on -c max_connections=200" \
            start > /dev/null 2>&1; then
            echo "$port" > "$dir/port"
            echo "PGDIR=$dir; PGURL=postgres://agent_traced@127.0.0.1:$port/postgres; export PGDIR PGURL"
            exit 0
        fi
    done
    tail -n 20 "$dir/server.log" >&2
    exit 1
    ;;
pause)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null
    ;;
resume)
    port=$(cat "$dir/port") || exit 1
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=on -c max_connections=200" \
        start > /dev/null
    ;;
stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1
    rm -rf "$dir"
    ;;
*) echo "usage: cluster.sh start|stop|pause|resume DIR" >&2; exit 2 ;;
esac
