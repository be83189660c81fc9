#!/usr/bin/env bash
# What a running tiendo exports passes `promtool check metrics` (Prometheus' naming and
# format lint) and matches the contract (tests/ops/metrics-contract.txt): every metric family
# it exports is listed there, with exactly the labels listed there, and every target's
# `comparator` is one the rules handle. Observations are published first, four accepted (one
# of them the 2025 plan's final figure, so tiendo_plan_verdict exists; three months of a
# rising district, so its trend's projection and attainment date exist) and one rejected, so
# the series that appear on first use are there to be checked too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need promtool prometheus
need curl curl
need_tiendo
start_nats
start_tiendo_up

cat >"$WORK/observations.json" <<'EOF'
[
  {"event_id": "lint-4", "indicator": "smartphone_adults", "org_unit": "883", "period": "2024-04",
   "numerator": 600, "denominator": 1000},
  {"event_id": "lint-5", "indicator": "smartphone_adults", "org_unit": "883", "period": "2024-05",
   "numerator": 650, "denominator": 1000},
  {"event_id": "lint-1", "indicator": "smartphone_adults", "org_unit": "883", "period": "2024-06",
   "numerator": 700, "denominator": 1000},
  {"event_id": "lint-2", "indicator": "smartphone_adults", "org_unit": "883", "period": "2099-01",
   "numerator": 700, "denominator": 1000},
  {"event_id": "lint-3", "indicator": "smartphone_adults", "org_unit": "89", "period": "2025-12",
   "numerator": 700, "denominator": 1000}
]
EOF
"$TIENDO" publish --department dic --wait 0 "$WORK/observations.json" >"$WORK/publish.log" 2>&1 \
  || fail "tiendo publish failed: $(tail -n 3 "$WORK/publish.log")"

exported() { curl -fsS "$TIENDO_HTTP/metrics" >"$WORK/metrics.txt" && grep -q "^$1" "$WORK/metrics.txt"; }
wait_until 60 "rejection counted in /metrics" exported 'tiendo_observations_rejected_total{'
wait_until 60 "indicator figure in /metrics" exported 'tiendo_indicator_value_ratio{'
wait_until 60 "the plan's verdict in /metrics" exported 'tiendo_plan_verdict{'
wait_until 60 "a trend's projection in /metrics" exported 'tiendo_indicator_projected_ratio{'
wait_until 60 "a trend's attainment date in /metrics" exported 'tiendo_indicator_expected_attainment_timestamp_seconds{'

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

# Label sets: a label dropped or added on either side breaks every join on it (the rules join
# on `plan`), so each exported series must carry exactly the contract's labels.
labels=$(python3 - "$WORK/metrics.txt" tests/ops/metrics-contract.txt <<'EOF'
import re, sys
contract = {}
for line in open(sys.argv[2]):
    m = re.fullmatch(r"(\w+)(?:\{([\w,]*)\})?", line.strip())
    if m:
        contract[m.group(1)] = set(filter(None, (m.group(2) or "").split(",")))
wrong = set()
for line in open(sys.argv[1]):
    m = re.match(r"(tiendo_\w+?)(_bucket|_sum|_count)?(?:\{(.*)\})? ", line)
    if not m:
        continue
    # A histogram is listed by its base name; its _bucket series also carry `le`.
    name, suffix = (m.group(1), m.group(2)) if m.group(1) in contract else (m.group(1) + (m.group(2) or ""), None)
    have = set(re.findall(r'(\w+)="', m.group(3) or "")) - ({"le"} if suffix == "_bucket" else set())
    if name in contract and have != contract[name]:
        wrong.add(f"{name}{{{','.join(sorted(have))}}} (contract: {{{','.join(sorted(contract[name]))}}})")
print(" ".join(sorted(wrong)))
EOF
)
[[ -z "$labels" ]] || fail "tiendo exports labels other than tests/ops/metrics-contract.txt lists: $labels"

# TiendoIndicatorTargetMissed has one term per comparator, and the forecast's shortfall
# (plan_indicator_org_unit:tiendo_indicator_projected_ratio:shortfall) one per direction,
# selecting `comparator=~"a|b"`: a target with a comparator either does not name would never
# fire.
handled=$(grep -o 'comparator="[a-z_]*"' deploy/prometheus/tiendo-rules.yml | sort -u)
by_direction=$(grep -o 'comparator=~"[a-z_|]*"' deploy/prometheus/tiendo-rules.yml \
  | sed -e 's/^comparator=~"//' -e 's/"$//' | tr '|' '\n' | sed 's/.*/comparator="&"/' | sort -u)
exported=$(grep -o '^tiendo_indicator_target_ratio{[^}]*' "$WORK/metrics.txt" | grep -o 'comparator="[a-z_]*"' | sort -u)
unhandled=$(comm -23 <(echo "$exported") <(echo "$handled"))
[[ -z "$unhandled" ]] || fail "targets with a comparator TiendoIndicatorTargetMissed does not handle: $(echo $unhandled)"
unhandled=$(comm -23 <(echo "$exported") <(echo "$by_direction"))
[[ -z "$unhandled" ]] || fail "targets with a comparator TiendoIndicatorForecastMiss does not handle: $(echo $unhandled)"

pass "$(echo "$families" | wc -l) metric families exported, promtool check metrics clean, all in the contract with its labels"
