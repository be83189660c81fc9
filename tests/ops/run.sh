#!/usr/bin/env bash
# Every operations test in turn. They use target/debug/tiendo, which must already be built
# (`cargo build -p tiendo`): building it here would take minutes and hide a stale binary.
# private_postgres.sh runs tests that must be built too (scripts/test has run them before).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -x target/debug/tiendo ]]; then
  echo "FAIL run: target/debug/tiendo is missing: run 'cargo build -p tiendo' first"
  exit 1
fi

tests=(rules metrics_lint prometheus_e2e private_postgres)
failed=0
for test in "${tests[@]}"; do
  bash "tests/ops/$test.sh" || failed=$((failed + 1))
done
if [[ $failed -ne 0 ]]; then
  echo "FAIL run: $failed of ${#tests[@]} operations tests failed"
  exit 1
fi
echo "PASS run: ${#tests[@]} operations tests passed"
