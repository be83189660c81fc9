#!/usr/bin/env bash
# A PostgreSQL cluster of the tests' own, for machines whose PostgreSQL does not let the tests in
# without a password (scripts/services.sh starts one then), and for tests/ops/private_postgres.sh:
#   scripts/private-postgres.sh start DIR [PORT]   # prints its admin URL, e.g.
#                                                  # postgres://postgres@127.0.0.1:25432/test
#   scripts/private-postgres.sh stop DIR
# `start` runs `initdb -A trust` into DIR/data the first time (superuser `postgres`, UTF-8,
# listening on 127.0.0.1 only, TCP only) on PORT, or on the first free port from 25432 up
# (below Linux's ephemeral ports, 32768 and up: from 55432 up, a start failed twice within a
# second with "Address already in use" on a port that no server listened on, which a client
# connection's local port had taken between the check and the start);
# later starts reuse the cluster and its port, and a start while it runs changes nothing. It
# then makes sure the database `test` exists. The server logs to DIR/server.log. As root, the
# cluster runs as the `postgres` system user (initdb refuses root), who must be able to reach
# DIR. Anything that cannot be arranged stops the script with a message.
set -euo pipefail

log() { printf 'private-postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

usage() { die "usage: $0 start DIR [PORT] | stop DIR"; }
command=${1:-}
case $command in
  start) [ $# -eq 2 ] || [ $# -eq 3 ] || usage ;;
  stop) [ $# -eq 2 ] || usage; [ -d "$2" ] || exit 0 ;;
  *) usage ;;
esac
mkdir -p "$2"
dir=$(cd "$2" && pwd)
data=$dir/data

# The newest installed server's programs: Debian keeps them out of PATH.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  initdb_on_path=$(command -v initdb) || die "initdb not found: install PostgreSQL's server (Debian: apt-get install postgresql)"
  bin=$(dirname "$initdb_on_path")
fi

# as_owner COMMAND...: runs COMMAND as the user who owns the cluster.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user to run the cluster as"
  as_owner() { runuser -u postgres -- "$@"; }
  chown postgres: "$dir"
  as_owner test -w "$dir" || die "the postgres user cannot write $dir: every folder above it must be searchable by others"
else
  as_owner() { "$@"; }
fi

running() { [ -f "$data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }
port_of() { sed -n 's/^port = \([0-9]*\)$/\1/p' "$data/postgresql.conf" | tail -n1; }

stop() {
  if running; then
    log "stopping the cluster in $dir"
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || die "pg_ctl stop failed (log: $dir/server.log)"
  fi
}

# The server outlives this script, so it must not inherit the lock or any pipe of the
# caller's: whoever reads that pipe (a CI log) would wait for the server to exit.
start_server() {
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done 2>/dev/null
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start </dev/null >/dev/null
  )
}

start() {
  local port=${1:-} version
  # Two test runs starting at once must not both run initdb.
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -f "$data/PG_VERSION" ]; then
    if [ -z "$port" ]; then
      for candidate in $(seq 25432 25531); do
        listening "$candidate" || { port=$candidate; break; }
      done
      [ -n "$port" ] || die "no free port from 25432 to 25531"
    fi
    listening "$port" && die "port $port is taken"
    log "initdb into $data (trust auth, port $port)"
    # Into a side folder first, so an interrupted initdb never leaves a half cluster to reuse.
    rm -rf "$data.new"
    as_owner "$bin/initdb" -D "$data.new" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || die "initdb failed (log: $dir/initdb.log)"
    printf "\n# tiendo's private test cluster\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n" "$port" \
      | as_owner tee -a "$data.new/postgresql.conf" >/dev/null
    mv "$data.new" "$data"
  fi
  port=$(port_of)
  [ -n "$port" ] || die "$data/postgresql.conf names no port"
  version=$("$bin/postgres" -V | sed -n 's/^postgres (PostgreSQL) \([0-9]*\).*/\1/p')
  [ "$(cat "$data/PG_VERSION")" = "$version" ] \
    || die "$data was made by PostgreSQL $(cat "$data/PG_VERSION"), the installed server is $version: remove $dir"
  if ! running; then
    log "starting PostgreSQL $version on 127.0.0.1:$port (log: $dir/server.log)"
    # A start failed once in a full run, within a second, and passed when run again; its log
    # went with the test's folder. So a failure shows the log's end, and is tried once more.
    start_server || {
      log "pg_ctl start failed; the server log ends: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
      sleep 1
      start_server || die "pg_ctl start failed twice; the server log ends: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
    }
  fi
  local admin="postgres://postgres@127.0.0.1:$port/postgres" exists
  exists=$("$bin/psql" -w -X -Atq "$admin" -c "select 1 from pg_database where datname = 'test'") \
    || die "the cluster in $dir does not answer on 127.0.0.1:$port"
  if [ "$exists" != 1 ]; then
    "$bin/psql" -w -X -q "$admin" -c 'create database test' || die "could not create the database test in $dir"
  fi
  echo "postgres://postgres@127.0.0.1:$port/test"
}

if [ "$command" = start ]; then start "${3:-}"; else stop; fi
