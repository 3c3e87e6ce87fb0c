#!/usr/bin/env bash
# Two workers in one group split the partitions and still execute each action
# exactly once; per-entity order is kept (the last change wins).
source "$(dirname "$0")/lib.sh"
test_begin

N=3000
python3 "$REPO/tests/integration/gen_actions.py" --count "$N" --seed 2 >"$TEST_DIR/actions.jsonl"

# Budgets in the generated load rise freely: the guardrail is tested in 0005.
worker_start w1 --budget-max-increase-pct 1000
worker_start w2 --budget-max-increase-pct 1000
wait_ready w1 w2 # both hold partitions before the load, so the group splits it
out=$(publish "$TEST_DIR/actions.jsonl" 2>&1)
check_match "all generated actions are delivered" "$out" "published $N of $N actions: $N delivered, 0 refused, 0 not delivered"
wait_drained 120

check "every action executed" "$(sql "select count(*) from actions where status = 'executed'")" "$N"
check "no action executed twice" \
  "$(sql "select count(*) from (select action_pk from executions group by 1 having count(*) > 1) x")" 0
check "both workers executed actions" \
  "$(sql "select count(distinct worker_id) from executions")" 2
check "each partition was worked by one worker (no rebalance during the load)" \
  "$(sql "select count(*) from (select topic, kafka_partition from executions group by 1, 2 having count(distinct worker_id) > 1) x")" 0
check "per entity and field the last action in order set the state" \
  "$(sql "select count(*) from entity_state s where s.value <> (select a.payload->'proposed_change'->'value' from actions a where a.tenant_id = s.tenant_id and a.subsystem = s.subsystem and a.entity_id = s.entity_id and a.payload->'proposed_change'->>'field' = s.field order by (a.payload->>'seq')::int desc limit 1)")" 0

test_end
