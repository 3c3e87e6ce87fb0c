#!/usr/bin/env bash
# make demo: the local stack up (installing what is missing), migrations and
# topics, two workers, the sample kernel output previewed as a dry run and then
# applied, one waiting action approved, and the result shown. Safe to run
# again: the same actions change nothing twice.
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

step "preview: publish $(basename "$SAMPLE") as a dry run (invalid actions are refused, by name)"
jq '.optimization_actions[] |= . + {dry_run: true}' "$SAMPLE" |
  "$BIN/actionpool-producer" publish - || true
"$BIN/actionpool-ctl" lag --wait 120 >/dev/null
"$BIN/actionpool-ctl" report | sed -n '/Actions by subsystem/,/^$/p'

step "apply: publish it for real (policy decides what runs now and what waits)"
"$BIN/actionpool-producer" publish "$SAMPLE" 2>/dev/null || true
"$BIN/actionpool-ctl" lag --wait 120 >/dev/null

step "approve one waiting action (tier 2: pricing changes wait for a person)"
if "$BIN/actionpool-ctl" approve acme-plan-pro-discount --by demo; then
  for _ in $(seq 50); do # it executes within seconds, by itself
    "$BIN/actionpool-ctl" report | sed -n '/Entity state/,/^$/p' | grep -q acme-plan-pro-discount && break
    sleep 0.2
  done
fi
"$BIN/actionpool-ctl" controls

step "result"
"$BIN/actionpool-ctl" report
stop_workers
trap - EXIT
printf '\nThe stack keeps running: deploy/local/stack.sh down stops it.\n'
