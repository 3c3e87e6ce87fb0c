#!/usr/bin/env bash
# make demo: the local stack up (installing what is missing), migrations and
# topics, the sample kernel output published, two workers executing it, and
# the result shown. Safe to run again: the same actions change nothing twice.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$REPO/bin
SAMPLE=${1:-$REPO/schemas/examples/kernel_output.json}
LOGS=${AP_STACK_DIR:-$REPO/.stack}/demo
step() { printf '\n== %s\n' "$*"; }

step "local stack (Kafka, Redis, PostgreSQL on 127.0.0.1)"
"$REPO/deploy/local/stack.sh" up
eval "$("$REPO/deploy/local/stack.sh" env)"
mkdir -p "$LOGS"

step "migrations and topics"
"$BIN/actionpool-ctl" migrate

step "two workers in one consumer group (logs in $LOGS; metrics on http://127.0.0.1:8081/metrics and :8082)"
pids=()
stop_workers() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop_workers EXIT
for n in 1 2; do
  ACTIONPOOL_WORKER_ID=demo-worker-$n ACTIONPOOL_HEALTH_PORT=$((8080 + n)) \
    "$BIN/actionpool-worker" 2>"$LOGS/worker-$n.log" &
  pids+=($!)
done

step "publish $(basename "$SAMPLE") (invalid actions are refused, by name)"
"$BIN/actionpool-producer" publish "$SAMPLE" || true

step "waiting until every action is settled"
"$BIN/actionpool-ctl" lag --wait 120 >/dev/null

step "result"
"$BIN/actionpool-ctl" report
stop_workers
trap - EXIT
printf '\nThe stack keeps running: deploy/local/stack.sh down stops it.\n'
