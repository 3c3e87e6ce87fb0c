#!/usr/bin/env bash
# What ops rely on: SIGTERM mid-load drains (nothing lost, nothing twice, the
# batch's offsets committed), /metrics agrees with the rows in Postgres,
# /readyz goes false while Redis is down and true again when it is back, and
# actions arriving while Redis is down wait for it (fail closed, none lost).
source "$(dirname "$0")/lib.sh"
test_begin

N=6000
python3 "$REPO/tests/integration/gen_actions.py" --count "$N" --seed 8 >"$TEST_DIR/actions.jsonl"
publish "$TEST_DIR/actions.jsonl" >/dev/null 2>&1

worker_start first --batch-size 100 --budget-max-increase-pct 1000
for _ in $(seq 200); do
  (($(sql "select count(*) from actions") > 500)) && break
  sleep 0.05
done
kill -TERM "${WORKER_PIDS[first]}"
wait "${WORKER_PIDS[first]}"
status=$?
unset "WORKER_PIDS[first]"
stopped_at=$(sql "select count(*) from actions")
say "SIGTERM after $stopped_at of $N actions"
check "SIGTERM exits 0" "$status" 0
check "the worker was stopped mid-load" "$((stopped_at > 0 && stopped_at < N))" 1
check_match "it says what it did before it goes" "$(cat "$TEST_DIR/first.log")" '"msg":"worker stopping"'

worker_start second --budget-max-increase-pct 1000
wait_drained 120
check "nothing lost: every action executed" "$(sql "select count(*) from actions where status = 'executed'")" "$N"
check "nothing executed twice" \
  "$(sql "select count(*) from (select action_pk from executions group by 1 having count(*) > 1) x")" 0

# /metrics, scraped and parsed, agrees with Postgres.
port=$(worker_port second)
metrics=$(curl -fs "http://127.0.0.1:$port/metrics")
check_match "the metrics are Prometheus text" "$metrics" '^# TYPE actionpool_actions_total counter'
scraped=$(grep '^actionpool_actions_total{' <<<"$metrics" | grep 'status="executed"' |
  sed -E 's/.*subsystem="([a-z]+)".* ([0-9]+)$/\1 \2/' | awk '$2 > 0' | sort)
rows=$(sql "select subsystem || ' ' || count(*) from executions e join actions a on a.id = e.action_pk where e.worker_id = 'second' and a.status = 'executed' group by subsystem order by 1")
check "executed actions per subsystem in /metrics match the worker's rows" "$scraped" "$rows"
check_match "batch sizes are observed" "$metrics" '^actionpool_batch_size_count [1-9]'
for _ in $(seq 80); do # librdkafka's statistics come every 5 s
  lag=$(curl -fs "http://127.0.0.1:$port/metrics" | grep '^actionpool_consumer_lag{') && break
  sleep 0.1
done
check_match "consumer lag is exported per partition" "$lag" '^actionpool_consumer_lag\{topic="'"$TEST_ID"'\.[a-z]+",partition="[0-9]+"\} 0'

check "ready while everything answers" "$(curl -s "http://127.0.0.1:$port/readyz")" "ok"
redis-cli -p "$AP_REDIS_PORT" shutdown nosave >/dev/null 2>&1
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || break
  sleep 0.1
done
check_match "not ready while Redis is down, and says why" "$(curl -s "http://127.0.0.1:$port/readyz")" "not ready: redis"
check "still alive meanwhile" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" 200
"$REPO/deploy/local/stack.sh" up >/dev/null 2>&1
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
check "ready again once Redis is back" "$(curl -s "http://127.0.0.1:$port/readyz")" "ok"

# Redis down while actions arrive: nothing executes (fail closed), nothing is lost.
python3 "$REPO/tests/integration/gen_actions.py" --count 500 --seed 88 --prefix rd >"$TEST_DIR/more.jsonl"
before=$(sql "select count(*) from executions")
redis-cli -p "$AP_REDIS_PORT" shutdown nosave >/dev/null 2>&1
publish "$TEST_DIR/more.jsonl" >/dev/null 2>&1
sleep 3
check "with Redis down, nothing executes" "$(sql "select count(*) from executions")" "$before"
"$REPO/deploy/local/stack.sh" up >/dev/null 2>&1
wait_drained 60
check "once it is back, every action executed" \
  "$(sql "select count(*) from actions where action_id like 'rd-%' and status = 'executed'")" 500
check "none twice" \
  "$(sql "select count(*) from (select action_pk from executions group by 1 having count(*) > 1) x")" 0

test_end
