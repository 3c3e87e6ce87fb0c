#!/usr/bin/env bash
# Runs the integration tests against a real stack of their own: Kafka, Redis and
# Postgres started on free ports in a temporary folder, removed afterwards.
#   tests/integration/run.sh             every test, in order
#   tests/integration/run.sh 0002 0003   the tests whose names start so
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STACK=$REPO/deploy/local/stack.sh

AP_STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ap-it-stack.XXXX")
export AP_STACK_DIR
cleanup() { "$STACK" destroy >/dev/null 2>&1 || true; rm -rf "$AP_STACK_DIR"; }
trap cleanup EXIT

# Free ports of our own, so a developer's stack on the defaults is left alone;
# below Linux's ephemeral ports (32768 and up), which a listener cannot bind
# while an outgoing connection holds one.
started=0
for _ in 1 2 3 4 5; do
  base=$((20000 + RANDOM % 12000))
  export AP_KAFKA_PORT=$base AP_KAFKA_CONTROLLER_PORT=$((base + 1)) \
    AP_REDIS_PORT=$((base + 2)) AP_PG_PORT=$((base + 3))
  if "$STACK" up >"$AP_STACK_DIR/up.log" 2>&1; then started=1; break; fi
  grep -q 'in use' "$AP_STACK_DIR/up.log" || break
done
if ((!started)); then
  cat "$AP_STACK_DIR/up.log"
  echo "integration: cannot start the stack"
  exit 1
fi
eval "$("$STACK" env)"

passed=0 failed=0
for test in "$HERE"/[0-9][0-9][0-9][0-9]-*.sh; do
  name=$(basename "$test" .sh)
  if (($#)); then
    selected=0
    for prefix in "$@"; do [[ $name == "$prefix"* ]] && selected=1; done
    ((selected)) || continue
  fi
  start=$SECONDS
  if bash "$test"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  echo "     ($((SECONDS - start)) s)"
done
echo "integration: $passed passed, $failed failed"
((failed == 0))
