#!/usr/bin/env bash
# The guards every replica shares, with three workers at once: rate-limit
# tokens (exactly the limit executes now, the rest later, by itself), circuit
# breakers per tenant x subsystem (open for one, not for others; alert; reset),
# the kill switch flipped mid-run, and a worker killed while holding claims.
source "$(dirname "$0")/lib.sh"
test_begin
CTL=$BIN/actionpool-ctl
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
action() { # ID TENANT SUBSYSTEM ENTITY FIELD VALUE
  printf '{"action_id":"%s","tenant_id":"%s","owner_subsystem":"%s","action_type":"config_change","entity_id":"%s","proposed_change":{"field":"%s","value":%s},"guardrails":{"max_daily_spend":100000},"confidence":0.9,"estimated_impact":100,"created_at":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$NOW"
}
executed() { sql "select count(*) from actions where status = 'executed' and action_id like '$1%'"; }
three_workers() {
  for w in w1 w2 w3; do worker_start "$w" "$@"; done
  wait_ready w1 w2 w3
}
stop_all() { for w in w1 w2 w3; do worker_stop "$w"; done; }

# ---- rate limits: 100 actions of one tenant, 10 per 8 s
three_workers --rate-limit-hourly 10 --rate-limit-hour-s 8
for i in $(seq 100); do action "rl-$i" acme routing "team-$i" capacity_per_rep 10; done |
  publish - >/dev/null 2>&1
wait_drained 60
check "exactly the limit executes now" "$(executed rl-)" 10
check "the rest wait for a token, not failed" \
  "$(sql "select count(*) from actions where status = 'received' and wait_reason = 'rate_limit'")" 90
sleep 9
check "when tokens free, the next 10 run by themselves" "$(executed rl-)" 20
stop_all

# ---- circuit breakers, against a live endpoint that fails for one tenant
http_target_start --rule '/campaign/acme-={"status": 503}'
export ACTIONPOOL_ADOBE_BASE_URL=$BASE ACTIONPOOL_ADOBE_TOKEN=t ACTIONPOOL_ADOBE_API_KEY=k ACTIONPOOL_CRM_TOKEN=t
export ACTIONPOOL_ALERT_WEBHOOK_URL=$BASE/alerts # the same recording server takes the alerts
alerts_posted() { jq -r 'select(.path == "/alerts") | .json.kind' "$TEST_DIR/requests.jsonl" | sort | tr '\n' ' '; }
three_workers --connector-file "$REPO/schemas/examples/connector.json" --http-timeout-ms 2000 \
  --retry-delays-s 1,1,1 # failed actions retry soon, and then wait behind the open breaker
for i in 1 2 3; do action "br-a$i" acme campaigns "acme-$i" budget_daily 100; done | publish - >/dev/null 2>&1
wait_drained 60
for i in 1 2; do action "br-g$i" globex campaigns "globex-$i" budget_daily 100; done | publish - >/dev/null 2>&1
wait_drained 60
action br-a4 acme campaigns acme-4 budget_daily 100 | publish - >/dev/null 2>&1
wait_drained 60
check "three failures in a row: the tenant's subsystem waits behind an open breaker" \
  "$(sql "select status || ' ' || wait_reason from actions where action_id = 'br-a4'")" "received breaker_open"
check "other tenants go on" "$(executed br-g)" 2
check "the opening is an alert" "$(sql "select count(*) from alerts where kind = 'breaker_open' and tenant_id = 'acme' and subsystem = 'campaigns'")" 1
check "posted to the webhook" "$(alerts_posted)" "breaker_open "
check_match "and exported as a metric" "$(curl -s "http://127.0.0.1:$(worker_port w1)/metrics" "http://127.0.0.1:$(worker_port w2)/metrics" "http://127.0.0.1:$(worker_port w3)/metrics")" \
  'actionpool_breaker_open\{tenant_subsystem="acme:campaigns"\} 1'

# The three that failed were retried after 1 s and wait behind the breaker too.
check_match "ctl breaker status shows it" "$("$CTL" breaker status)" \
  "^acme:campaigns open: 3 of the last 3 failed, 3 in a row; 4 actions wait"
curl -s -X POST "$BASE/_reset" >/dev/null # the platform is fixed
out=$("$CTL" breaker reset --tenant acme --subsystem campaigns --by ops)
check_match "reset closes it and resumes what waited" "$out" "reset by ops; 4 waiting actions resume"
for _ in $(seq 100); do [[ $(executed br-a) == 4 ]] && break; sleep 0.1; done
check "the waiting actions then execute" "$(executed br-a)" 4
stop_all

# ---- kill switch mid-run, and a worker killed holding claims
N=6000
python3 "$REPO/tests/integration/gen_actions.py" --count "$N" --seed 10 --prefix ks >"$TEST_DIR/load.jsonl"
three_workers --budget-max-increase-pct 1000 --batch-size 100
publish "$TEST_DIR/load.jsonl" >/dev/null 2>&1
for _ in $(seq 200); do (($(executed ks-) > 500)) && break; sleep 0.05; done
worker_stop w2 KILL # holding claims of its batch
"$CTL" kill-switch on --by ops >/dev/null
sleep 3
at_flip=$(executed ks-)
say "kill switch on after $at_flip of $N"
check "the kill switch came mid-run" "$((at_flip > 0 && at_flip < N))" 1
check "no execution began after the kill switch was on" \
  "$(sql "select count(*) from executions where mode = 'apply' and executed_at > (select set_at + interval '500 ms' from controls where scope = 'global')")" 0
sleep 2
check "and none since" "$(executed ks-)" "$at_flip"
"$CTL" kill-switch off --by ops >/dev/null
wait_drained 120
for _ in $(seq 300); do [[ $(executed ks-) == "$N" ]] && break; sleep 0.1; done
check "after it, every action executed (the killed worker's claims expired or were redone)" "$(executed ks-)" "$N"
check "none twice" "$(sql "select count(*) from (select action_pk from executions where mode = 'apply' and success group by 1 having count(*) > 1) x")" 0
check "the kill switch flips were posted to the webhook" "$(alerts_posted)" "breaker_open kill_switch kill_switch "
stop_all

# A full window: more than 20 % of the last 5 executions failed. A failure
# that has left the window no longer counts. One worker: each outcome is
# reported before the next action is admitted. Last: its failures wait an
# hour in the retry topics.
curl -s -X POST "$BASE/_control" -d '{"rules": [{"prefix": "/campaign/initech-bad", "status": 503}]}' >/dev/null
ACTIONPOOL_BREAKER_WINDOW=5 ACTIONPOOL_BREAKER_CONSECUTIVE=100 worker_start w1 \
  --connector-file "$REPO/schemas/examples/connector.json" --retry-delays-s 3600,3600,3600
wait_ready w1
run_one() { # ID: published, then recorded
  action "$1" initech campaigns "initech-$1" budget_daily 100 | publish - >/dev/null 2>&1
  wait_sql "select count(*) from actions where action_id = '$1'" 1 ||
    check "action $1 is recorded" "no row" "a row"
}
for id in bad-1 ok-1 ok-2 ok-3 ok-4 ok-5 bad-2 ok-6; do run_one "$id"; done
check "1 failure of the last 5: the breaker stays closed" "$(executed ok-)" 6
for id in bad-3 ok-7; do run_one "$id"; done
check "2 failures of the last 5: it opens" \
  "$(sql "select status || ' ' || wait_reason from actions where action_id = 'ok-7'")" "received breaker_open"
worker_stop w1
kill "$HTTP_TARGET" 2>/dev/null

test_end
