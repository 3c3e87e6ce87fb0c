#!/usr/bin/env bash
# Transient failures go through the delayed retry topics: an endpoint that
# fails twice then succeeds executes once after two retries, each no sooner
# than its delay; one that always fails is dead-lettered after three, and once
# fixed and replayed executes once (a second replay does nothing); later
# actions on the entity wait behind a retry and keep their order; an oversized
# message is dead-lettered at once.
source "$(dirname "$0")/lib.sh"
test_begin
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
action() { # ID ENTITY VALUE
  printf '{"action_id":"%s","tenant_id":"acme","owner_subsystem":"campaigns","action_type":"config_change","entity_id":"%s","proposed_change":{"field":"budget_daily","value":%s},"guardrails":{"max_daily_spend":100000},"confidence":0.9,"estimated_impact":100,"created_at":"%s"}\n' \
    "$1" "$2" "$3" "$NOW"
}
status_of() { sql "select status from actions where action_id = '$1'"; }
wait_status() { # ID STATUS SECONDS
  for _ in $(seq $((${3:-30} * 10))); do
    [[ $(status_of "$1") == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

http_target_start \
  --rule '/campaign/flaky-1={"fail_times": 2, "fail_status": 503}' \
  --rule '/campaign/flaky-2={"fail_times": 2, "fail_status": 503}' \
  --rule '/campaign/down-={"status": 503}'
export ACTIONPOOL_ADOBE_BASE_URL=$BASE
export ACTIONPOOL_ADOBE_TOKEN=t ACTIONPOOL_ADOBE_API_KEY=k ACTIONPOOL_CRM_TOKEN=t
# The breaker is tested in 0010; here failures must not open it.
worker_start w1 --connector-file "$REPO/schemas/examples/connector.json" --retry-delays-s 2,3,4 \
  --budget-max-increase-pct 1000 --breaker-consecutive 1000 --breaker-failure-pct 100 \
  --max-message-bytes 2048

{
  action f1 flaky-1 100
  action d1 down-1 100
  action o1 flaky-2 100
  action o2 flaky-2 200 # same entity: waits behind o1's retries
} | publish - >/dev/null 2>&1

wait_status f1 executed 30
check "fails twice, then succeeds: executed" "$(status_of f1)" "executed"
check "after three attempts, two retries" \
  "$(sql "select string_agg(e.attempt || ':' || coalesce(e.error_class, 'ok'), ',' order by e.id) from executions e join actions a on a.id = e.action_pk where a.action_id = 'f1'")" \
  "1:http_503,2:http_503,3:ok"
# When the platform received each attempt: the retries' delays are 2 s and 3 s.
gaps=$(jq -s '[.[] | select(.path == "/campaign/flaky-1") | .time] | [.[1] - .[0] >= 2, .[2] - .[1] >= 3]' \
  "$TEST_DIR/requests.jsonl" | jq -c .)
check "each retry no sooner than its delay (2 s, then 3 s)" "$gaps" "[true,true]"
check "the platform saw the same idempotency key each time" \
  "$(jq -r 'select(.path == "/campaign/flaky-1") | .headers["Idempotency-Key"] // .headers["idempotency-key"]' "$TEST_DIR/requests.jsonl" | sort -u)" \
  "acme:campaigns:f1"

wait_status o2 executed 40
check "per-entity order survives the retries: the later action ran after" \
  "$(sql "select string_agg(a.action_id, ',' order by e.id) from executions e join actions a on a.id = e.action_pk where a.entity_id = 'flaky-2' and e.success")" \
  "o1,o2"
check "and its value is the last" "$(sql "select value from entity_state where entity_id = 'flaky-2'")" "200"

wait_status d1 dead_lettered 40
check "always failing: dead-lettered after three retries" "$(status_of d1)" "dead_lettered"
check "  ... four attempts in all" "$(sql "select count(*) from executions e join actions a on a.id = e.action_pk where a.action_id = 'd1'")" 4
dlq=$(consume_all "$TEST_ID.campaigns.dlq")
check "the DLQ holds it" "$(jq -r '.payload | fromjson | .action_id' <<<"$dlq")" "d1"
check_match "  ... attempt, class and original topic" "$(jq -c .headers <<<"$dlq")" \
  '"ap-error-class","http_503".*"ap-original-topic","'"$TEST_ID"'.campaigns".*"ap-attempt","3"'

# The platform is fixed; ops replay the dead letter: it executes, once.
curl -s -X POST "$ACTIONPOOL_ADOBE_BASE_URL/_reset" >/dev/null
out=$("$BIN/actionpool-ctl" replay --action-id d1 --by ops 2>/dev/null)
check_match "replay republishes the dead letter" "$out" "replayed 1 of 1 matching dead letters"
wait_status d1 executed 30
check "the replayed action executes" "$(status_of d1)" "executed"
out=$("$BIN/actionpool-ctl" replay --action-id d1 --by ops 2>/dev/null)
check_match "replaying again replays nothing" "$out" "replayed 0 of 1 matching dead letters \(1 already replayed\)"
wait_drained 30
check "executed once" "$(sql "select count(*) from executions e join actions a on a.id = e.action_pk where a.action_id = 'd1' and e.success")" 1

# Oversized messages go to the DLQ at once, unread.
head -c 3000 /dev/zero | tr '\0' x | produce_raw "$TEST_ID.campaigns" big
wait_drained 30
big=$(consume_all "$TEST_ID.campaigns.dlq" | jq -c 'select(.key == "big") | .headers')
check_match "an oversized message is dead-lettered at once with the reason" "$big" \
  '"ap-error-class","oversized","ap-error-message","oversized: 3000 bytes, more than max_message_bytes 2048"'
kill "$HTTP_TARGET" 2>/dev/null
test_end
