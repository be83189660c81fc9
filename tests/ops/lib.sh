# Shared by the tests in tests/ops/: sourced, never run (so not executable). Each test runs
# `set -euo pipefail` and then `source "$(dirname "$0")/lib.sh"`, which moves to the
# repository root and sets a trap that stops everything started with `start_bg` and removes
# the work folder.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TEST_NAME="$(basename "$0" .sh)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tiendo-ops-${TEST_NAME}.XXXXXX")"
STARTED_AT=$(date +%s)
BG_PIDS=()
# The one-line results go to the original stdout even from inside redirected checks.
exec 3>&1

cleanup() {
  local rc=$?
  for pid in "${BG_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BG_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -n "${KEEP_LOGS:-}" ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# fail MESSAGE: prints the one-line result and exits non-zero.
fail() {
  echo "FAIL ${TEST_NAME}: $* ($(( $(date +%s) - STARTED_AT ))s)" >&3
  exit 1
}

# pass MESSAGE: prints the one-line result.
pass() {
  echo "PASS ${TEST_NAME}: $* ($(( $(date +%s) - STARTED_AT ))s)" >&3
}

# apt_install PACKAGE: installs a Debian package (CI machines start without them).
apt_install() {
  echo "installing $1" >&2
  if [[ -z "${APT_UPDATED:-}" ]]; then
    apt-get update -qq >&2 || fail "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || fail "could not install $1"
}

# need COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]] || apt_install "$2"
}

# python_with_yaml: sets PY to a python3 that can import yaml.
python_with_yaml() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
      PY=$py
      return 0
    fi
  done
  apt_install python3-yaml
  PY=/usr/bin/python3
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_bg LOG COMMAND...: runs COMMAND in the background, output to LOG; stopped on exit.
start_bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BG_PIDS+=("$!")
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      fail "no $what within ${seconds}s"
    fi
    sleep 0.2
  done
}

# need_tiendo: the binary must be built already (building here would take minutes).
need_tiendo() {
  TIENDO="$ROOT/target/debug/tiendo"
  [[ -x "$TIENDO" ]] || fail "target/debug/tiendo is missing: run 'cargo build -p tiendo' first"
}

# start_nats: a private nats-server with JetStream on a free port; sets NATS_URL.
start_nats() {
  need nats-server nats-server
  local bin port
  bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  port=$(free_port)
  start_bg "$WORK/nats.log" "$bin" -a 127.0.0.1 -p "$port" -js -sd "$WORK/jetstream"
  NATS_URL="nats://127.0.0.1:$port"
  wait_until 10 "nats-server on port $port" bash -c "echo > /dev/tcp/127.0.0.1/$port"
}

# start_tiendo_up: `tiendo up` on the private nats-server, SQLite in the work folder, its own
# subject prefix and a free HTTP port; sets TIENDO_HTTP and exports the TIENDO__ variables so
# later `tiendo publish` calls reach the same system.
start_tiendo_up() {
  need_tiendo
  local port
  port=$(free_port)
  export TIENDO__NATS__URL="$NATS_URL"
  export TIENDO__NATS__PREFIX="ops_${TEST_NAME}_$$"
  export TIENDO__DATABASE__URL="sqlite://$WORK/tiendo.db?mode=rwc"
  export TIENDO__HTTP__LISTEN="127.0.0.1:$port"
  TIENDO_HTTP="http://127.0.0.1:$port"
  start_bg "$WORK/tiendo.log" "$TIENDO" up
  TIENDO_PID=$!
  wait_until 60 "200 from tiendo's /readyz (log: $WORK/tiendo.log)" tiendo_is_ready
}

# tiendo_is_ready: /readyz answers 200; fails the test at once if tiendo has exited.
tiendo_is_ready() {
  if ! kill -0 "$TIENDO_PID" 2>/dev/null; then
    tail -n 20 "$WORK/tiendo.log" >&2
    fail "tiendo up exited"
  fi
  curl -fsS "$TIENDO_HTTP/readyz"
}

# The metric names tiendo promises (tests/ops/metrics-contract.txt), one a line, without
# their label sets.
contract_names() {
  grep -v '^\s*#' "$ROOT/tests/ops/metrics-contract.txt" | grep -v '^\s*$' | sed 's/{.*//'
}
