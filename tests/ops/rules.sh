#!/usr/bin/env bash
# The operations bundle is valid, without running tiendo: Prometheus rules (syntax and unit
# tests) and config, Alertmanager config and its routing, the NATS config, docker-compose.yml,
# the dashboards and the runbook links (tests/ops/check_bundle.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need promtool prometheus
need amtool prometheus-alertmanager
need docker-compose docker-compose
need nats-server nats-server
python_with_yaml

step() { echo "--- $*" >&2; }

step "promtool check rules"
promtool check rules deploy/prometheus/tiendo-rules.yml >&2 || fail "promtool check rules"

step "promtool test rules"
promtool test rules deploy/prometheus/tests/*.yml >&2 || fail "promtool test rules"

step "promtool check config (rule_files resolve next to prometheus.yml)"
promtool check config deploy/prometheus/prometheus.yml >&2 || fail "promtool check config"

step "amtool check-config"
amtool check-config deploy/alertmanager/alertmanager.yml >&2 || fail "amtool check-config"

step "Alertmanager routes: departments get theirs, ops get criticals and the rest"
route() {
  local expected=$1
  shift
  amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml \
    --verify.receivers="$expected" "$@" >/dev/null 2>&1 \
    || fail "alert {$*} does not go to $expected"
}
# Indicator alerts carry `plan` (tiendo-rules.yml); routing must not depend on it.
plan_label=plan=an_giang_2025
for dept in dic doit dpi sbv doh doet dolisa tax gso; do
  route "dept-$dept" alertname=TiendoIndicatorBehindTrajectory severity=warning "$plan_label" department="$dept"
done
# The early warning goes where the trajectory warning goes: the owning department, not ops.
for dept in dic doit dpi sbv doh doet dolisa tax gso; do
  route "dept-$dept" alertname=TiendoIndicatorForecastMiss severity=warning "$plan_label" department="$dept"
done
route ops,dept-dic alertname=TiendoIndicatorTargetMissed severity=critical "$plan_label" department=dic
route ops,dept-dolisa alertname=TiendoIndicatorTargetMissed severity=critical "$plan_label" department=dolisa
route dept-gso alertname=TiendoIndicatorStale severity=warning "$plan_label" department=gso
route dept-tax alertname=TiendoIndicatorNeverReported severity=info department=tax
# Overdue reports carry neither plan nor org unit: the `department` label of the reporting
# gauges alone takes them to the owning department (a warning: not to ops), each owner of a
# two-owner indicator its own.
for dept in dic doit dpi sbv doh doet dolisa tax gso; do
  route "dept-$dept" alertname=TiendoReportsOverdue severity=warning department="$dept"
done
route dept-doet alertname=TiendoReportsOverdue severity=warning indicator=digital_governance_higher_ed department=doet
route dept-dolisa alertname=TiendoReportsOverdue severity=warning indicator=digital_governance_higher_ed department=dolisa
route ops alertname=TiendoIndicatorFiguresAbsent severity=critical
route ops alertname=TiendoServiceDown severity=critical
route ops alertname=TiendoConsumerFallingBehind severity=warning service=ingest
route ops alertname=TiendoRejectionsRising severity=warning department=unknown

step "nats-server -t, the single server and each cluster node (with every password variable set)"
nats_env=()
for user in tiendo dic doit dpi sbv doh doet dolisa tax gso; do
  nats_env+=("NATS_PASSWORD_${user^^}=p-check-$user")
done
# The cluster's nodes include nats-server.conf: each must still parse with it.
for conf in deploy/nats/nats-server.conf deploy/nats/cluster/nats-*.conf; do
  env "${nats_env[@]}" "$(command -v nats-server || echo /usr/sbin/nats-server)" -t \
    -c "$conf" >&2 || fail "nats-server -t -c $conf"
done

step "docker-compose config -q (one NATS server, and the cluster profile)"
env "${nats_env[@]}" POSTGRES_PASSWORD=p-check GRAFANA_ADMIN_PASSWORD=p-check \
  docker-compose -f docker-compose.yml config -q || fail "docker-compose config"
env "${nats_env[@]}" POSTGRES_PASSWORD=p-check GRAFANA_ADMIN_PASSWORD=p-check \
  COMPOSE_PROFILES=cluster TIENDO_NATS_CONFIG=cluster/nats-1.conf TIENDO_NATS_REPLICAS=3 \
  TIENDO_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 \
  docker-compose -f docker-compose.yml config -q || fail "docker-compose config (cluster profile)"

step "grafana provisioning files are YAML"
for f in deploy/grafana/provisioning/*/*.yml; do
  "$PY" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || fail "$f is not YAML"
done

step "alerts, runbook links, metric names, dashboards"
"$PY" tests/ops/check_bundle.py || fail "tests/ops/check_bundle.py found problems"

pass "rules, unit tests, Prometheus, Alertmanager, NATS, docker-compose and dashboards are valid"
