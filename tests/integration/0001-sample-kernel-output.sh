#!/usr/bin/env bash
# The sample kernel output end to end through one worker: valid actions execute
# exactly once, the duplicate changes nothing, invalid ones are refused by the
# producer and rejected by the worker when another client sends them anyway,
# an unparseable message goes to the DLQ, and publishing again changes nothing.
source "$(dirname "$0")/lib.sh"
test_begin

SAMPLE=$REPO/schemas/examples/kernel_output.json
valid_ids=$("$BIN/actionpool-producer" validate --json "$SAMPLE" 2>/dev/null | jq -r '.actions[] | select(.valid) | .action_id' | sort)
refused_ids=$("$BIN/actionpool-producer" validate --json "$SAMPLE" 2>/dev/null | jq -r '.actions[] | select(.valid | not) | .action_id' | sort | tr '\n' ' ')
check "validate refuses exactly the three invalid sample actions" "$refused_ids" \
  "acme-cmp-1003-budget-over-cap acme-plan-pro-scale globex-seq-winback-touches "

out=$(publish "$SAMPLE" 2>&1); status=$?
check "publish exits 1 when actions were refused" "$status" 1
check_match "publish summarizes deliveries and refusals" "$out" "published 14 of 17 actions: 14 delivered, 3 refused, 0 not delivered"
check_match "a refusal names the action, the field and the rule" "$out" \
  "refused action 'globex-seq-winback-touches' \(optimization_actions\[7\]\): proposed_change.value: maximum: max_touches must be <= 20, got 25"

# Another client bypasses the producer: the worker checks again.
jq -c '.optimization_actions[] | select(.action_id == "globex-seq-winback-touches")' "$SAMPLE" |
  produce_raw "$TEST_ID.crm" "globex:seq-winback"
jq -c '.optimization_actions[] | select(.action_id == "acme-plan-pro-discount") | .action_id = "wrong-topic-1"' "$SAMPLE" |
  produce_raw "$TEST_ID.crm" "acme:plan-pro"
echo 'this is not json {' | produce_raw "$TEST_ID.routing" "poison"

worker_start w1
wait_drained 90

for id in $valid_ids; do
  rows=$(sql "select count(*) from actions where action_id = '$id'")
  check "valid action $id has one row" "$rows" 1
done
check "13 actions executed" "$(sql "select count(*) from actions where status = 'executed'")" 13
check "the rerun with a used idempotency key is a duplicate of the first" \
  "$(sql "select d.action_id || ' -> ' || o.action_id from actions d join actions o on o.id = d.duplicate_of where d.status = 'duplicate'")" \
  "globex-seq-onboarding-touches-rerun -> globex-seq-onboarding-touches"
check "every executed action has exactly one execution" \
  "$(sql "select count(*) from actions a where status = 'executed' and (select count(*) from executions e where e.action_pk = a.id) <> 1")" 0
check "duplicates and rejections have no execution" \
  "$(sql "select count(*) from executions e join actions a on a.id = e.action_pk where a.status <> 'executed'")" 0
check "the duplicate did not change the entity it targets" \
  "$(sql "select a.action_id from entity_state s join actions a on a.id = s.set_by_action where s.tenant_id = 'globex' and s.entity_id = 'seq-onboarding' and s.field = 'max_touches'")" \
  "globex-seq-onboarding-touches"
check "entity state holds the value of the action that set it" \
  "$(sql "select count(*) from entity_state s join actions a on a.id = s.set_by_action where s.value <> coalesce(a.payload->'proposed_change'->'value', jsonb_build_object('variants', a.payload->'proposed_change'->'variants'))")" 0
check "one entity_state row per executed action (distinct fields in the sample)" \
  "$(sql "select count(*) from entity_state")" 13
check "rollback data records the previous value (none before the first change)" \
  "$(sql "select count(*) from executions where rollback_data->>'existed' = 'false' and rollback_data ? 'previous'")" 13

check "the worker rejected the invalid action sent around the producer, naming field and rule" \
  "$(sql "select status || ': ' || status_reason from actions where action_id = 'globex-seq-winback-touches'")" \
  "rejected: proposed_change.value: maximum: max_touches must be <= 20, got 25"
check_match "an action on another subsystem's topic is rejected" \
  "$(sql "select status || ': ' || status_reason from actions where action_id = 'wrong-topic-1'")" \
  "^rejected: owner_subsystem: topic: action for 'pricing' arrived on topic '$TEST_ID.crm'"

dlq=$(consume_all "$TEST_ID.routing.dlq")
check "the unparseable message is the only dead letter" "$(jq -s length <<<"$dlq")" 1
check "the dead letter keeps the message" "$(jq -r .payload <<<"$dlq")" "this is not json {"
check_match "the dead letter says why, in its headers" "$(jq -c .headers <<<"$dlq")" \
  '"ap-error-class","unparseable","ap-error-message","not JSON: .*"ap-original-topic","'"$TEST_ID"'.routing"'

# Publishing the same kernel output again changes nothing.
before=$(sql "select count(*), max(id) from actions; select count(*) from executions; select md5(string_agg(value::text || set_by_action, ',' order by entity_id, field)) from entity_state")
publish "$SAMPLE" >/dev/null 2>&1
wait_drained 60
after=$(sql "select count(*), max(id) from actions; select count(*) from executions; select md5(string_agg(value::text || set_by_action, ',' order by entity_id, field)) from entity_state")
check "a second publish of the same actions adds no row and no execution" "$after" "$before"

test_end
