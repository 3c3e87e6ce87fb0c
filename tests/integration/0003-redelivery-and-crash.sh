#!/usr/bin/env bash
# Exactly once in effect when Kafka delivers again: a worker killed with SIGKILL
# mid-load is replaced and nothing runs twice; a whole new group re-reading
# every message changes nothing; SIGTERM drains and leaves cleanly.
source "$(dirname "$0")/lib.sh"
test_begin

N=4000
python3 "$REPO/tests/integration/gen_actions.py" --count "$N" --seed 3 >"$TEST_DIR/actions.jsonl"
publish "$TEST_DIR/actions.jsonl" >/dev/null 2>&1

# A short session, so the group notices the dead member quickly.
worker_start crashy --batch-size 50 --kafka.session.timeout.ms=6000
for _ in $(seq 100); do # until it is part-way through
  done_so_far=$(sql "select count(*) from actions")
  ((done_so_far > 200)) && break
  sleep 0.1
done
worker_stop crashy KILL
killed_at=$(sql "select count(*) from actions")
say "killed the worker after $killed_at of $N actions"
check "the worker was killed part-way through" "$((killed_at > 0 && killed_at < N))" 1

worker_start w2
wait_drained 120
check "every action executed once the replacement drained the topics" \
  "$(sql "select count(*) from actions where status = 'executed'")" "$N"
check "no action executed twice despite the redelivery after the crash" \
  "$(sql "select count(*) from (select action_pk from executions group by 1 having count(*) > 1) x")" 0
worker_stop w2
check_match "SIGTERM stops the worker with a summary" "$(cat "$TEST_DIR/w2.log")" '"msg":"worker stopping"'

# A new consumer group re-reads every message from the beginning.
state_before=$(sql "select md5(string_agg(tenant_id || entity_id || field || value::text || set_by_action, ',' order by 1)) from entity_state")
executions_before=$(sql "select count(*) from executions")
export ACTIONPOOL_GROUP_ID=$TEST_ID-second-group
worker_start w3
wait_drained 120
worker_stop w3
check "re-reading every message adds no execution" "$(sql "select count(*) from executions")" "$executions_before"
check "re-reading every message leaves the config store as it was" \
  "$(sql "select md5(string_agg(tenant_id || entity_id || field || value::text || set_by_action, ',' order by 1)) from entity_state")" \
  "$state_before"
check_match "the second group saw only redeliveries" "$(cat "$TEST_DIR/w3.log")" \
  "\"msg\":\"worker stopping\".*\"executed\":\"0\".*\"redelivered\":\"$N\""

test_end
