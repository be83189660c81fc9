#!/usr/bin/env bash
# Makes sure what the tests need is on this machine: NATS with JetStream on 127.0.0.1:4222, a
# PostgreSQL the tests can use without a password, cargo-nextest, and the Debian tools the
# checks use (promtool, headless Chromium). Installs or starts what is missing. Idempotent.
#
# PostgreSQL: the machine's own server on 127.0.0.1:5432 (started when installed but down) is
# used when user `postgres` gets in without a password; the database `test` is created on it
# when missing. Otherwise, as on a fresh Debian machine whose server asks for a password, the
# tests get a private cluster of their own (scripts/private-postgres.sh: trust auth, a port
# from 25432 up, kept in target/postgres and reused by later runs). Set
# TIENDO_TEST_POSTGRES_URL to use another server; it must answer.
#
# What was decided goes to target/test-services.env, which scripts/test and scripts/soak
# source: `export TIENDO_TEST_POSTGRES_URL=...`, or nothing when the variable was set by you.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "could not install $*"
}
wait_for_port() {
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done
  log "nothing listens on port $1"; return 1
}

# make: tikv-jemalloc-sys builds jemalloc (every binary's allocator) with it.
command -v make >/dev/null || { log "installing make (to build jemalloc)"; apt_install make; }

if ! listening 4222; then
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || { log "installing nats-server"; apt_install nats-server; }
  log "starting nats-server with JetStream on 127.0.0.1:4222"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for_port 4222 || die "nats-server did not start (log: /var/log/nats-server.log)"
fi

# PostgreSQL's server programs (initdb for a private cluster) and psql.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  log "installing postgresql"
  apt_install postgresql
fi
psql=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)/psql
[ -x "$psql" ] || psql=$(command -v psql) || die "psql not found"

# answers URL: psql gets in without asking for a password (none from the environment either).
answers() { env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 "$psql" -w -X -Atq "$1" -c 'select 1' >/dev/null 2>&1; }

# standard_postgres: 127.0.0.1:5432 lets `postgres` in without a password and has `test`.
standard_postgres() {
  local admin=postgres://postgres@127.0.0.1:5432/postgres exists
  if ! listening 5432 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    log "starting the machine's PostgreSQL ($version/main)"
    if ! pg_ctlcluster --skip-systemctl-redirect "$version" main start || ! wait_for_port 5432; then
      log "the machine's PostgreSQL did not start"
      return 1
    fi
  fi
  if ! answers "$admin"; then
    log "PostgreSQL on 127.0.0.1:5432 does not let user postgres in without a password"
    return 1
  fi
  exists=$("$psql" -w -X -Atq "$admin" -c "select 1 from pg_database where datname = 'test'") \
    || die "could not list the databases on 127.0.0.1:5432"
  if [ "$exists" != 1 ]; then
    log "creating database test on 127.0.0.1:5432"
    "$psql" -w -X -q "$admin" -c 'create database test' || die "could not create database test on 127.0.0.1:5432"
  fi
  answers postgres://postgres@127.0.0.1:5432/test || die "database test on 127.0.0.1:5432 does not answer"
}

mkdir -p target
env_file=target/test-services.env
if [ -n "${TIENDO_TEST_POSTGRES_URL:-}" ]; then
  # Printed without its password, if it has one.
  shown=$(printf '%s' "$TIENDO_TEST_POSTGRES_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')
  answers "$TIENDO_TEST_POSTGRES_URL" || die "TIENDO_TEST_POSTGRES_URL ($shown) does not answer"
  log "PostgreSQL: $shown (TIENDO_TEST_POSTGRES_URL)"
  postgres_url=""
elif standard_postgres; then
  postgres_url=postgres://postgres@127.0.0.1:5432/test
  log "PostgreSQL: the machine's server, $postgres_url"
else
  log "PostgreSQL: a private cluster in target/postgres"
  postgres_url=$(bash scripts/private-postgres.sh start target/postgres) || die "could not start a private PostgreSQL cluster"
  answers "$postgres_url" || die "the private cluster ($postgres_url) does not answer"
  log "PostgreSQL: the private cluster, $postgres_url"
fi
{
  echo "# Written by scripts/services.sh; sourced by scripts/test and scripts/soak."
  if [ -n "$postgres_url" ]; then echo "export TIENDO_TEST_POSTGRES_URL=$postgres_url"; fi
} >"$env_file.new"
mv "$env_file.new" "$env_file"

# scripts/test and scripts/soak run the tests with it.
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked || die "could not install cargo-nextest"
fi

command -v promtool >/dev/null || { log "installing prometheus (for promtool)"; apt_install prometheus; }
# The page tests (tests/browser.rs) drive Debian's headless Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing chromium and chromium-driver (for the browser tests)"
  apt_install chromium chromium-driver
fi
