#!/usr/bin/env bash
# The producer as planners' scripts use it: exit codes, JSON reports,
# validation with no servers at all, and undeliverable actions reported.
source "$(dirname "$0")/lib.sh"
test_begin

SAMPLE=$REPO/schemas/examples/kernel_output.json
NOWHERE=127.0.0.1:1 # nothing listens there

out=$(ACTIONPOOL_BROKERS=$NOWHERE "$BIN/actionpool-producer" validate "$SAMPLE" 2>&1); status=$?
check "validate needs no servers and exits 1 on refusals" "$status" 1
check_match "validate summarizes" "$out" "validated 17 actions: 14 valid, 3 refused"

report=$("$BIN/actionpool-producer" validate --json "$SAMPLE" 2>/dev/null)
check "the JSON report counts" "$(jq -c '[.ok, .total, .valid, .refused]' <<<"$report")" '[false,17,14,3]'
check "the JSON report names field and rule" \
  "$(jq -c '.actions[] | select(.action_id == "acme-plan-pro-scale") | .violations[0] | [.field, .rule]' <<<"$report")" \
  '["action_type","matrix"]'

jq -c '.optimization_actions[] | select(.action_id | test("budget-up|discount"))' "$SAMPLE" >"$TEST_DIR/good.jsonl"
out=$("$BIN/actionpool-producer" validate "$TEST_DIR/good.jsonl" 2>&1); status=$?
check "JSON Lines input, all valid: exit 0" "$status" 0
check_match "JSON Lines summary" "$out" "validated 2 actions: 2 valid, 0 refused"
out=$("$BIN/actionpool-producer" validate - <"$TEST_DIR/good.jsonl" 2>&1); status=$?
check "standard input works" "$status" 0

out=$(ACTIONPOOL_BROKERS=$NOWHERE "$BIN/actionpool-producer" --kafka.message.timeout.ms=2000 \
  publish "$TEST_DIR/good.jsonl" 2>&1); status=$?
check "publish exits 1 when actions are not delivered" "$status" 1
check_match "undelivered actions are named" "$out" "action 'acme-cmp-1001-budget-up' not delivered"
check_match "the summary counts them" "$out" "0 delivered, 0 refused, 2 not delivered"

"$BIN/actionpool-producer" --no-such-flag validate "$SAMPLE" >/dev/null 2>&1
check "an unknown option exits 2" "$?" 2
"$BIN/actionpool-producer" validate /no/such/file >/dev/null 2>&1
check "a missing input file exits 2" "$?" 2
"$BIN/actionpool-producer" --help >/dev/null
check "--help exits 0" "$?" 0
out=$(ACTIONPOOL_BATCH_SIZE=0 "$BIN/actionpool-worker" 2>&1); status=$?
check "a setting out of range stops the worker with exit 2" "$status" 2
check_match "the error names the setting" "$out" "ACTIONPOOL_BATCH_SIZE: 0 is out of range"

test_end
