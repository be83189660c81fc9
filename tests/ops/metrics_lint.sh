#!/usr/bin/env bash
# What a running tiendo exports passes `promtool check metrics` (Prometheus' naming and
# format lint) and matches the contract (tests/ops/metrics-contract.txt): every metric family
# it exports is listed there. Observations are published first, one accepted and one
# rejected, so the counters that appear on first use are there to be checked too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need promtool prometheus
need curl curl
need_tiendo
start_nats
start_tiendo_up

cat >"$WORK/observations.json" <<'EOF'
[
  {"event_id": "lint-1", "indicator": "smartphone_adults", "org_unit": "883", "period": "2024-06",
   "numerator": 700, "denominator": 1000},
  {"event_id": "lint-2", "indicator": "smartphone_adults", "org_unit": "883", "period": "2099-01",
   "numerator": 700, "denominator": 1000}
]
EOF
"$TIENDO" publish --department dic --wait 0 "$WORK/observations.json" >"$WORK/publish.log" 2>&1 \
  || fail "tiendo publish failed: $(tail -n 3 "$WORK/publish.log")"

exported() { curl -fsS "$TIENDO_HTTP/metrics" >"$WORK/metrics.txt" && grep -q "^$1" "$WORK/metrics.txt"; }
wait_until 60 "rejection counted in /metrics" exported 'tiendo_observations_rejected_total{'
wait_until 60 "indicator figure in /metrics" exported 'tiendo_indicator_value_ratio{'

lint=$(promtool check metrics <"$WORK/metrics.txt" 2>&1) || true
if [[ -n "$lint" ]]; then
  echo "$lint" >&2
  fail "promtool check metrics flagged tiendo's /metrics: $(echo "$lint" | head -n 1)"
fi

families=$(sed -n 's/^# TYPE \(tiendo_[a-z0-9_]*\) .*/\1/p' "$WORK/metrics.txt" | sort -u)
unlisted=$(comm -23 <(echo "$families") <(contract_names | sort -u))
[[ -z "$unlisted" ]] || fail "tiendo exports metrics missing from tests/ops/metrics-contract.txt: $(echo $unlisted)"
unseen=$(comm -13 <(echo "$families") <(contract_names | sort -u))
if [[ -n "$unseen" ]]; then
  # Counters of events that did not happen here (dead letters, database errors) are not
  # created until they do: not an error.
  echo "not exported in this run (created on first use): $(echo $unseen)" >&2
fi

pass "$(echo "$families" | wc -l) metric families exported, promtool check metrics clean, all in the contract"
