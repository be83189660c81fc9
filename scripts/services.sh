#!/usr/bin/env bash
# Makes sure the services the tests talk to are up on this machine: NATS with JetStream on
# 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`), plus the
# Debian tools the checks use (promtool, headless Chromium). Starts or installs what is missing. Idempotent.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then apt-get update -qq >/dev/null; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_for_port() {
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done
  log "nothing listens on port $1"; return 1
}

if ! listening 4222; then
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || { log "installing nats-server"; apt_install nats-server; }
  log "starting nats-server with JetStream on 127.0.0.1:4222"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for_port 4222
fi

if ! listening 5432; then
  if ! ls /etc/postgresql >/dev/null 2>&1; then log "installing postgresql"; apt_install postgresql; fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for_port 5432
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  log "creating database test"
  su postgres -c "psql -c 'create database test'" >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null || { log "installing prometheus (for promtool)"; apt_install prometheus; }
# The page tests (tests/browser.rs) drive Debian's headless Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing chromium and chromium-driver (for the browser tests)"
  apt_install chromium chromium-driver
fi
