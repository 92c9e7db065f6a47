#!/usr/bin/env bash
# The README's test command: type check, lint, then every test (unit and integration against
# real peers). Installs missing peers when it can, otherwise says which script to run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-test-peers.sh --check >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    scripts/install-test-peers.sh
  else
    scripts/install-test-peers.sh --check || true
    echo "run: sudo scripts/install-test-peers.sh   (then npm test again)" >&2
    exit 1
  fi
fi

[ -d node_modules ] || npm ci

echo "== type check"
npx tsc -p tsconfig.json --noEmit
echo "== lint"
npx eslint .
echo "== tests"
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest-report.json "$@" || status=$?
if [ -f .tmp/vitest-report.json ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(".tmp/vitest-report.json", "utf8"));
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  '
fi
exit $status
