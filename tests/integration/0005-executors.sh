#!/usr/bin/env bash
# What executing means: budget guardrails, the optimistic-concurrency check,
# pause and scale, dry runs that change nothing, reverts that restore the exact
# previous value; and the live HTTP connector against a real HTTP server on
# loopback (what it receives, and how each answer is classified and recorded).
source "$(dirname "$0")/lib.sh"
test_begin

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# action ID SUBSYSTEM TYPE ENTITY FIELD VALUE [EXTRA-JSON-MEMBERS]
action() {
  printf '{"action_id":"%s","tenant_id":"acme","owner_subsystem":"%s","action_type":"%s","entity_id":"%s","proposed_change":{"field":"%s","value":%s},"guardrails":{"max_daily_spend":100000,"current_spend":0},"confidence":0.9,"estimated_impact":100,"created_at":"%s"%s}\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$NOW" "${7:+,$7}"
}
run_actions() { # publishes stdin and waits until the worker has settled it
  publish - >/dev/null 2>&1
  wait_drained 60
}
status_of() { sql "select status || coalesce(': ' || status_reason, '') from actions where action_id = '$1'"; }
state_of() { sql "select value from entity_state where tenant_id = 'acme' and entity_id = '$1' and field = '$2'"; }

# ---- the built-in config store
worker_start store
{
  action b1 campaigns config_change cmp-1 budget_daily 100
  action b2 campaigns config_change cmp-1 budget_daily 200          # over +30 %: clamped to 130
  action b3 campaigns config_change cmp-1 budget_daily 0.5          # under the floor
  action b4 campaigns config_change cmp-1 budget_daily 150 '"current":999'  # not what the store holds
  action b5 campaigns config_change cmp-1 budget_daily 140 '"current":130'  # what it holds
  action d1 campaigns config_change cmp-1 budget_daily 160 '"dry_run":true'
  action p1 campaigns pause cmp-2 status '"paused"'
  action s1 routing scale team-1 capacity_per_rep 40
} | run_actions

check "a budget rise over +30 % is clamped" "$(status_of b2)" "executed"
check "the clamp is recorded with what was asked" \
  "$(sql "select e.output->>'requested' || ' -> ' || (e.output->>'applied') from executions e join actions a on a.id = e.action_pk where a.action_id = 'b2'")" \
  "200 -> 130.00"
check "a budget under the floor is rejected, naming the guardrail" "$(status_of b3)" \
  "rejected: guardrail: budget_daily 0.5 is under the floor 1"
check "a stale 'current' is a conflict, not applied" "$(status_of b4)" \
  "rejected: conflict: budget_daily is 130.00, the action expected 999"
check "the conflict is recorded as a failed execution" \
  "$(sql "select success || ' ' || error_class from executions e join actions a on a.id = e.action_pk where a.action_id = 'b4'")" \
  "false conflict"
check "a matching 'current' applies" "$(status_of b5)" "executed"
check "a dry run is recorded as such" "$(status_of d1)" "dry_run"
check "a dry run records what would change" \
  "$(sql "select e.mode || ' ' || (e.output->>'would_set') || ' over ' || (e.output->>'previous') from executions e join actions a on a.id = e.action_pk where a.action_id = 'd1'")" \
  "dry_run 160 over 140"
check "a dry run changes nothing" "$(state_of cmp-1 budget_daily)" "140"
check "pause sets status to paused" "$(state_of cmp-2 status)" '"paused"'
check "scale changes a scalable field" "$(state_of team-1 capacity_per_rep)" "40"

# Reverts go through the same pipeline: restore the exact previous value.
{
  action r1 campaigns revert cmp-1 budget_daily null '"revert_of":"b5"'
  action r0 campaigns revert cmp-1 budget_daily null '"revert_of":"b3"'
} | run_actions
check "a revert executes" "$(status_of r1)" "executed"
check "the revert restores the exact previous value" "$(state_of cmp-1 budget_daily)" "130.00"
check "the reverted action is rolled back, and says by whom" \
  "$(sql "select a.status || ' by ' || e.rolled_back_by from actions a join executions e on e.action_pk = a.id where a.action_id = 'b5' and e.success")" \
  "rolled_back by r1"
check "reverting something never executed is rejected with the reason" "$(status_of r0)" \
  "rejected: revert_of: action 'b3' was never executed"
action r2 campaigns revert cmp-1 budget_daily null '"revert_of":"r1"' | run_actions
check "reverting a revert works" "$(state_of cmp-1 budget_daily)" "140"
action r3 campaigns revert cmp-1 budget_daily null '"revert_of":"b5"' | run_actions
check "an action cannot be rolled back twice" "$(status_of r3)" \
  "rejected: revert_of: action 'b5' is already rolled back"

# Preview, then apply: the action rehearsed as d1 comes again to be applied.
action d1 campaigns config_change cmp-1 budget_daily 160 | run_actions
check "an action previewed as a dry run can then be applied" "$(status_of d1)" "executed"
check "the apply changes the store" "$(state_of cmp-1 budget_daily)" "160"
{ # two previews sharing a key, then both applied: the second is a duplicate
  action dk1 campaigns config_change cmp-7 budget_daily 50 '"idempotency_key":"k-7","dry_run":true'
  action dk2 campaigns config_change cmp-7 budget_daily 50 '"idempotency_key":"k-7","dry_run":true'
} | run_actions
{
  action dk1 campaigns config_change cmp-7 budget_daily 50 '"idempotency_key":"k-7"'
  action dk2 campaigns config_change cmp-7 budget_daily 50 '"idempotency_key":"k-7"'
} | run_actions
check "a previewed action whose key another took since is a duplicate" \
  "$(sql "select d.status || ' of ' || o.action_id from actions d join actions o on o.id = d.duplicate_of where d.action_id = 'dk2'")" \
  "duplicate of dk1"
check "the preview and the apply are both in the audit trail" \
  "$(sql "select string_agg(e.mode, ',' order by e.id) from executions e join actions a on a.id = e.action_pk where a.action_id = 'd1'")" \
  "dry_run,apply"
worker_stop store

# ---- the live HTTP connector, against a real HTTP server on loopback
http_target_start \
  --rule '/campaign/h-400={"status": 400}' \
  --rule '/campaign/h-401={"status": 401}' \
  --rule '/campaign/h-503={"status": 503, "retry_after": "7"}' \
  --rule '/campaign/h-hang={"hang": true}'
export ACTIONPOOL_ADOBE_BASE_URL=$BASE
export ACTIONPOOL_ADOBE_TOKEN=secret-token-123 ACTIONPOOL_ADOBE_API_KEY=secret-key-456
export ACTIONPOOL_CRM_TOKEN=secret-crm-789

worker_start live --connector-file "$REPO/schemas/examples/connector.json" --http-timeout-ms 1500 \
  --alert-webhook-url "$ACTIONPOOL_ADOBE_BASE_URL/alerts"
{
  action h1 campaigns config_change h-ok budget_daily 250
  action h2 campaigns config_change h-400 budget_daily 250
  action h3 campaigns config_change h-401 budget_daily 250
  action h4 campaigns config_change h-503 budget_daily 250
  action h5 campaigns config_change h-hang budget_daily 250
  action h6 campaigns config_change h-dry budget_daily 250 '"dry_run":true'
  action h7 content config_change tmpl-1 subject_line '"Hello"'   # no route: the built-in store
} | publish - >/dev/null 2>&1
# h4 and h5 wait in a retry topic (300 s), so the lag does not drain: wait for the rows.
wait_sql "select count(*) from actions where action_id ~ '^h[1-7]\$' and status <> 'received'" 7
action h6 campaigns config_change h-dry budget_daily 250 | publish - >/dev/null 2>&1 # for real
wait_sql "select count(*) from executions e join actions a on a.id = e.action_pk where a.action_id = 'h6'" 2
kill "$HTTP_TARGET" 2>/dev/null

requests=$(jq -c 'select(.path | startswith("/campaign/"))' "$TEST_DIR/requests.jsonl")
h1=$(jq -c 'select(.path == "/campaign/h-ok")' <<<"$requests")
check "2xx: executed" "$(status_of h1)" "executed"
check "the platform got PATCH /campaign/<entity>" "$(jq -r '.method + " " + .path' <<<"$h1")" "PATCH /campaign/h-ok"
check "with the value in the body template" "$(jq -c '.json.budget.allocated' <<<"$h1")" "250"
check "with the action's idempotency key" "$(jq -r '.headers["Idempotency-Key"] // .headers["idempotency-key"]' <<<"$h1")" "acme:campaigns:h1"
check "with the bearer token" "$(jq -r '.headers.Authorization // .headers.authorization' <<<"$h1")" "Bearer secret-token-123"
check "the live value is mirrored in the config store (for rollback)" "$(state_of h-ok budget_daily)" "250"
check_match "400: rejected, not retried, with what the platform said" "$(status_of h2)" \
  "^rejected: PATCH .*/campaign/h-400: http 400 .*http_target answered 400"
check "401: rejected" "$(sql "select status from actions where action_id = 'h3'")" "rejected"
check "401: the alert is posted to the webhook" \
  "$(jq -r 'select(.path == "/alerts") | .json.kind + " " + .json.tenant_id' "$TEST_DIR/requests.jsonl")" \
  "permission_denied acme"
check "401: an alert is recorded" \
  "$(sql "select kind from alerts a join actions x on x.id = a.action_pk where x.action_id = 'h3'")" "permission_denied"
check "503: transient, scheduled for a retry, with its class and Retry-After" \
  "$(sql "select a.status || ' ' || e.error_class || ' retry_after=' || (e.output->>'retry_after_s') from actions a join executions e on e.action_pk = a.id where a.action_id = 'h4'")" \
  "retry_scheduled http_503 retry_after=7"
check "a hanging endpoint times out and is retried as transient" \
  "$(sql "select a.status || ' ' || e.error_class from actions a join executions e on e.action_pk = a.id where a.action_id = 'h5'")" \
  "retry_scheduled timeout"
check "a dry run sends nothing; its apply sends once" \
  "$(jq -c 'select(.path == "/campaign/h-dry")' <<<"$requests" | wc -l)" "1"
check "the previewed live action is executed" "$(status_of h6)" "executed"
check "a dry run records the request it would send" \
  "$(sql "select e.output->'would_send'->>'method' || ' ' || (e.output->'would_send'->>'url') from executions e join actions a on a.id = e.action_pk where a.action_id = 'h6' and e.mode = 'dry_run'")" \
  "PATCH $ACTIONPOOL_ADOBE_BASE_URL/campaign/h-dry"
check "an unrouted field goes to the built-in store" "$(state_of tmpl-1 subject_line)" '"Hello"'
check "one request per routed action, none twice" "$(jq -s 'length' <<<"$requests")" "6"
check "the token never reaches a database row" \
  "$(sql "select count(*) from executions where input::text ~ 'secret-' or output::text ~ 'secret-'")" "0"
check "the token never reaches a log line" "$(grep -c 'secret-' "$TEST_DIR/live.log")" "0"

test_end
