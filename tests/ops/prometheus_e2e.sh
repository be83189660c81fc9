#!/usr/bin/env bash
# End to end on 127.0.0.1: tiendo up -> Prometheus with the shipped rules -> Alertmanager
# routing by department -> a webhook. Publishes the eleven districts' smartphone_adults for
# 2024-06 at 60% (the trajectory expects about 72.8%), then waits for
# TiendoIndicatorBehindTrajectory on org unit 89 to fire in Prometheus and to reach dic's
# webhook with the right labels.
#
# A second Alertmanager runs the shipped deploy/alertmanager/alertmanager.yml (webhook URLs
# pointed at the test's receiver, waits shortened). The test clock is past the 2025-12-31
# target date, so TiendoIndicatorTargetMissed (critical) fires as well: it must reach both ops
# and dic, and it must inhibit the warning for the same indicator and org unit there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need curl curl
need_tiendo
start_nats
start_tiendo_up

# The webhook receiver: appends {"path": ..., "body": ...} per POST, one JSON a line.
webhook_port=$(free_port)
cat >"$WORK/webhook.py" <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
EOF
touch "$WORK/webhook.jsonl"
start_bg "$WORK/webhook.log" python3 "$WORK/webhook.py" "$webhook_port" "$WORK/webhook.jsonl"

# Alertmanager: the shipped routing shape (by department, ops for the rest), test timings.
am_port=$(free_port)
cat >"$WORK/alertmanager.yml" <<EOF
route:
  receiver: ops
  group_by: [alertname, indicator]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['department="dic"']
      receiver: dept-dic
receivers:
  - name: ops
    webhook_configs:
      - url: http://127.0.0.1:$webhook_port/ops
  - name: dept-dic
    webhook_configs:
      - url: http://127.0.0.1:$webhook_port/dept-dic
EOF
start_bg "$WORK/alertmanager.log" prometheus-alertmanager --config.file="$WORK/alertmanager.yml" \
  --storage.path="$WORK/alertmanager" --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address=
wait_until 30 "ready Alertmanager (log: $WORK/alertmanager.log)" curl -fsS "http://127.0.0.1:$am_port/-/ready"

shipped_port=$(free_port)
sed -E -e "s#url: https://alerts\.([a-z]+)\.example\.invalid/tiendo.*#url: http://127.0.0.1:$webhook_port/shipped-\1#" \
  -e 's/^( *)(group_wait|group_interval): .*/\1\2: 1s/' \
  deploy/alertmanager/alertmanager.yml >"$WORK/shipped-alertmanager.yml"
start_bg "$WORK/shipped-alertmanager.log" prometheus-alertmanager --config.file="$WORK/shipped-alertmanager.yml" \
  --storage.path="$WORK/shipped-alertmanager" --web.listen-address="127.0.0.1:$shipped_port" --cluster.listen-address=
wait_until 30 "ready shipped Alertmanager (log: $WORK/shipped-alertmanager.log)" \
  curl -fsS "http://127.0.0.1:$shipped_port/-/ready"

# Prometheus: the shipped rules with every `for:` and `keep_firing_for:` set to 0s, so the test
# needs no ten-minute waits; scrape and evaluate every second.
sed -E 's/^([[:space:]]*)(for|keep_firing_for):.*/\1\2: 0s/' deploy/prometheus/tiendo-rules.yml >"$WORK/rules.yml"
prom_port=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$am_port", "127.0.0.1:$shipped_port"]
scrape_configs:
  - job_name: tiendo
    static_configs:
      - targets: ["${TIENDO_HTTP#http://}"]
EOF
start_bg "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/prometheus" --web.listen-address="127.0.0.1:$prom_port"
wait_until 30 "ready Prometheus (log: $WORK/prometheus.log)" curl -fsS "http://127.0.0.1:$prom_port/-/ready"

python3 - "$WORK/smartphones.json" <<'EOF'
import json, sys
districts = ["883", "884", "886", "887", "888", "889", "890", "891", "892", "893", "894"]
json.dump([{"event_id": f"e2e-smartphone-2024-06-{d}", "indicator": "smartphone_adults", "org_unit": d,
            "period": "2024-06", "numerator": 600, "denominator": 1000} for d in districts],
          open(sys.argv[1], "w"))
EOF
"$TIENDO" publish --department dic --wait 0 "$WORK/smartphones.json" >"$WORK/publish.log" 2>&1 \
  || fail "tiendo publish failed: $(tail -n 3 "$WORK/publish.log")"

# The alert as Prometheus holds it, and as dic's webhook receives it.
cat >"$WORK/find.py" <<'EOF'
import json, sys, urllib.request

WANT = {"alertname": "TiendoIndicatorBehindTrajectory", "indicator": "smartphone_adults",
        "org_unit": "89", "department": "dic", "severity": "warning"}

def matching(alerts):
    return [a for a in alerts if a["labels"].get("alertname") == WANT["alertname"]
            and a["labels"].get("org_unit") == "89"]

def wrong(why):
    print(why)
    sys.exit(2)

def check(alert):
    if alert["labels"] != WANT:
        wrong(f"{sys.argv[1]}: labels {alert['labels']} are not {WANT}")
    d = alert["annotations"]["description"]
    for part in ("is 60%,", "expected 72.8%", "Owning department: dic."):
        if part not in d:
            wrong(f"{sys.argv[1]}: description lacks {part!r}: {d}")

if sys.argv[1] == "shipped":
    # The shipped config: TargetMissed (critical) at ops and at dic, and the warning inhibited.
    missed = {"ops": False, "dic": False}
    for line in open(sys.argv[2]):
        hook = json.loads(line)
        for a in hook["body"]["alerts"]:
            l = a["labels"]
            if l.get("org_unit") != "89" or a["status"] != "firing":
                continue
            if l["alertname"] == "TiendoIndicatorTargetMissed" and l.get("department") == "dic":
                missed[hook["path"].removeprefix("/shipped-").removeprefix("dept-")] = True
            if l["alertname"] == WANT["alertname"] and hook["path"].startswith("/shipped-"):
                wrong(f"shipped: {hook['path']} got {l} although a critical alert inhibits it")
    if not all(missed.values()):
        sys.exit(1)
    url = sys.argv[3] + '/api/v2/alerts?filter=alertname="TiendoIndicatorBehindTrajectory"&filter=org_unit="89"'
    held = json.load(urllib.request.urlopen(url.replace('"', "%22")))
    if not held or any(a["status"]["state"] != "suppressed" or not a["status"]["inhibitedBy"] for a in held):
        wrong(f"shipped: the warning is not inhibited: {[a['status'] for a in held]}")
    sys.exit(0)
elif sys.argv[1] == "prometheus":
    alerts = json.load(urllib.request.urlopen(sys.argv[2] + "/api/v1/alerts"))["data"]["alerts"]
    found = [a for a in matching(alerts) if a["state"] == "firing"]
else:
    found = []
    for line in open(sys.argv[2]):
        hook = json.loads(line)
        if hook["path"] == "/dept-dic" and hook["body"]["status"] == "firing":
            found += [a for a in matching(hook["body"]["alerts"]) if a["status"] == "firing"]
if not found:
    sys.exit(1)
check(found[0])
EOF
# find.py exits 0: there and right; 1: not there yet; 2: there but wrong (fail at once).
found() {
  local out rc=0
  out=$(python3 "$WORK/find.py" "$@" 2>&1) || rc=$?
  [[ $rc -ne 2 ]] || fail "$out"
  return $rc
}
wait_until 90 "firing TiendoIndicatorBehindTrajectory for org unit 89 in Prometheus" \
  found prometheus "http://127.0.0.1:$prom_port"
wait_until 60 "TiendoIndicatorBehindTrajectory for org unit 89 at dic's webhook" \
  found webhook "$WORK/webhook.jsonl"

wait_until 60 "TiendoIndicatorTargetMissed at ops and dic, and the warning inhibited, with the shipped config" \
  found shipped "$WORK/webhook.jsonl" "http://127.0.0.1:$shipped_port"

# Every dashboard query runs against this Prometheus (variables set to smartphone_adults and
# all org units); the province panels have data.
cat >"$WORK/dashboards.py" <<'EOF'
import json, sys, urllib.parse, urllib.request
from pathlib import Path

def query(expr):
    url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return json.load(urllib.request.urlopen(url))["data"]["result"]
    except urllib.error.HTTPError as e:
        sys.exit(f"{expr}: {json.load(e).get('error')}")

count = 0
for path in sorted(Path("deploy/grafana/dashboards").glob("*.json")):
    for panel in json.loads(path.read_text())["panels"]:
        for t in panel.get("targets", []):
            query(t["expr"].replace("$indicator", "smartphone_adults").replace("$org_unit", ".*"))
            count += 1
for must in ['indicator:tiendo_indicator_value_ratio:province{indicator="smartphone_adults"}',
             'indicator:tiendo_indicator_expected_ratio:province{indicator="smartphone_adults"}',
             'max by (indicator, org_unit) (tiendo_indicator_gap_ratio{org_unit="883"})']:
    if not query(must):
        sys.exit(f"no data for {must}")
print(count)
EOF
queries=$(python3 "$WORK/dashboards.py" "http://127.0.0.1:$prom_port" 2>&1) || fail "a dashboard query: $queries"

pass "TiendoIndicatorBehindTrajectory{org_unit=\"89\",department=\"dic\"} fired in Prometheus and reached dic's webhook; the shipped Alertmanager sent TargetMissed to ops and dic and inhibited the warning; $queries dashboard queries ran"
