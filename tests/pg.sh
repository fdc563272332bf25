#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: a fresh cluster in a directory
# of the test's own, listening only on a unix socket in that directory. As
# root the server runs as the "postgres" user (PostgreSQL refuses root); when
# that user cannot reach DIR, the cluster goes to a directory under /tmp that
# DIR/cluster names, removed again on stop.
#
#   tests/pg.sh start DIR [PID]  initdb DIR/data, start the server, print a libpq
#                                conninfo for its "postgres" database; with PID,
#                                the server is stopped when that process exits,
#                                however it exits
#   tests/pg.sh stop DIR         stop the server (a no-op when it is not running)
#
# Fails, saying how to install them, when the PostgreSQL binaries are missing
# (DPS_PG_BINDIR names their directory when it is not /usr/lib/postgresql/*/bin).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
watch=${3:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: tests/pg.sh start DIR [PID] | stop DIR" >&2
    exit 2
fi

bindir=${DPS_PG_BINDIR:-}
if [ -z "$bindir" ]; then
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            bindir=$d
            break
        fi
    done
fi
if [ -z "$bindir" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    bindir=$(dirname "$(command -v initdb)")
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
    echo "pg.sh: the PostgreSQL server binaries (initdb, pg_ctl) are not installed:" \
        "run 'make deps' (Debian package postgresql)" >&2
    exit 3
fi

# PostgreSQL will not run as root: run its tools as the postgres user then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Where the cluster of DIR lives: DIR itself, or (as root, when the postgres
# user cannot reach DIR) a directory under /tmp named in DIR/cluster.
cluster_of() {
    if [ -f "$1/cluster" ]; then
        cat "$1/cluster"
    else
        echo "$1"
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # Whatever an earlier, interrupted run left behind goes first.
    old=$(cluster_of "$dir")
    if [ -f "$old/data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$old/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$old/data"
    if [ "$old" != "$dir" ]; then
        rm -rf "$old"
    fi
    rm -f "$dir/cluster"
    base=$dir
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            base=$(mktemp -d /tmp/dps-pg.XXXXXX)
            chown postgres: "$base"
            echo "$base" >"$dir/cluster"
        fi
    fi
    chmod 0700 "$base"
    data="$base/data"
    as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || {
        echo "pg.sh: initdb failed:" >&2
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # A socket in the cluster's directory only, no TCP; fsync off because the
    # cluster is thrown away (commits are still answered once written).
    as_pg "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 \
        -o "-c listen_addresses= -k $base -c fsync=off -c max_connections=200" start \
        >/dev/null 2>&1 || {
        echo "pg.sh: the server did not start:" >&2
        cat "$base/server.log" >&2 || true
        exit 1
    }
    if [ -n "$watch" ]; then
        # Stops the server once the test process is gone, even if it crashed.
        setsid bash -c '
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            if [ "$(id -u)" -eq 0 ]; then
                runuser -u postgres -- "$2/pg_ctl" -D "$3" -m immediate stop
            else
                "$2/pg_ctl" -D "$3" -m immediate stop
            fi
            if [ "$4" != "$5" ]; then rm -rf "$4"; fi' \
            pg-watch "$watch" "$bindir" "$data" "$base" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    echo "host=$base port=5432 user=postgres dbname=postgres"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    base=$(cluster_of "$dir")
    if [ -f "$base/data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null 2>&1 ||
            as_pg "$bindir/pg_ctl" -D "$base/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ "$base" != "$dir" ]; then
        rm -rf "$base"
        rm -f "$dir/cluster"
    fi
    ;;
*)
    echo "usage: tests/pg.sh start DIR [PID] | stop DIR" >&2
    exit 2
    ;;
esac
