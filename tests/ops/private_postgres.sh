#!/usr/bin/env bash
# On a machine whose PostgreSQL asks for a password, scripts/services.sh gives the tests a
# private cluster (scripts/private-postgres.sh). This runs the pipeline's PostgreSQL tests on
# such a cluster even where the machine's server would do, so the path is proven on every run:
# a fresh cluster (initdb, trust auth, its own port) in the work folder, a second start that
# reuses it, the tests passing on it with a private nats-server, every test's database created
# on it (its log counts them), and the cluster stopped at the end. About 10 s when the tests
# are built already, as they are when scripts/test runs this.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The cluster runs as the postgres user when this runs as root: it must reach the work folder.
chmod 755 "$WORK"
cluster="$WORK/postgres"
# Stop the cluster before lib.sh removes its folder, keeping the test's exit status.
stop_then_cleanup() {
  local rc=$?
  set +e
  bash scripts/private-postgres.sh stop "$cluster" >&2 || rc=1
  (exit $rc)
  cleanup
}
trap stop_then_cleanup EXIT

url=$(bash scripts/private-postgres.sh start "$cluster" 2>"$WORK/start.log") \
  || { cat "$WORK/start.log" >&2; fail "could not start a private cluster"; }
[[ $url =~ ^postgres://postgres@127\.0\.0\.1:([0-9]+)/test$ ]] || fail "start printed '$url', not an admin URL"
[[ ${BASH_REMATCH[1]} != 5432 ]] || fail "the private cluster took the standard port 5432"
again=$(bash scripts/private-postgres.sh start "$cluster" 2>/dev/null) || fail "a second start failed"
[[ $again == "$url" ]] || fail "a second start gave '$again', not the running cluster's $url"

# Every CREATE DATABASE the tests send goes to the cluster's log.
psql -w -X -q "$url" -c "alter system set log_statement = 'ddl'" -c 'select pg_reload_conf()' >/dev/null \
  || fail "could not turn on log_statement"
wait_until 10 "log_statement = ddl on the private cluster" \
  bash -c "[[ \$(psql -w -X -Atq '$url' -c 'show log_statement') == ddl ]]"

start_nats
TIENDO_TEST_NATS_URL="$NATS_URL" TIENDO_TEST_POSTGRES_URL="$url" \
  cargo nextest run -p tiendo-tests --test pipeline -E 'test(/::postgres$/)' --no-fail-fast \
  >"$WORK/nextest.log" 2>&1 || { tail -n 40 "$WORK/nextest.log" >&2; fail "PostgreSQL tests failed on the private cluster"; }

summary=$(grep -oE '[0-9]+ tests? run: [0-9]+ passed' "$WORK/nextest.log" | tail -n1)
ran=${summary%% *}
passed=$(sed -E 's/.*: ([0-9]+) passed/\1/' <<<"$summary")
[[ -n $ran && $ran -ge 1 && $passed == "$ran" ]] || fail "expected PostgreSQL tests to run and pass, nextest says '$summary'"
# grep -c exits 1 when it counts none; that is for the check below to judge.
created=$(grep -c 'CREATE DATABASE' "$cluster/server.log") || [[ $? == 1 ]] || fail "cannot read $cluster/server.log"
[[ $created -ge $ran ]] || fail "$ran tests passed but only $created databases were created on the private cluster"

bash scripts/private-postgres.sh stop "$cluster" 2>/dev/null || fail "could not stop the private cluster"
[[ ! -f "$cluster/data/postmaster.pid" ]] || fail "the private cluster still runs after stop"
pass "$ran PostgreSQL tests passed on a private cluster ($url), which created $created databases"
