#!/usr/bin/env bash
# The producer's and ctl's scheduled-run and ops extras against the real stack:
#   publish --from-url      kernel output over HTTP from a real server on loopback
#                           (the Authorization header arrives, the token is never
#                           printed; a 503 is an error naming the URL)
#   publish --budget-neutral  each tenant's total daily budget kept, to the cent
#   ctl revert              one revert action restores the previous value; refused
#                           with a reason when it cannot apply; safe to run twice
#   ctl summary             counts that match the rows in Postgres
source "$(dirname "$0")/lib.sh"
test_begin

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
RUN=$$-$RANDOM # run ids of this run: topics read back are told apart from a stack's older messages
# budget ID TENANT ENTITY VALUE [EXTRA-JSON-MEMBERS]: a budget_daily change
budget() {
  printf '{"action_id":"%s","tenant_id":"%s","owner_subsystem":"campaigns","action_type":"config_change","entity_id":"%s","proposed_change":{"field":"budget_daily","value":%s},"guardrails":{"max_daily_spend":100000},"confidence":0.9,"estimated_impact":100,"created_at":"%s"%s}\n' \
    "$1" "$2" "$3" "$4" "$NOW" "${5:+,$5}"
}
touches() { # touches ID TENANT ENTITY VALUE: a crm max_touches change
  printf '{"action_id":"%s","tenant_id":"%s","owner_subsystem":"crm","action_type":"config_change","entity_id":"%s","proposed_change":{"field":"max_touches","value":%s},"confidence":0.9,"estimated_impact":100,"created_at":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$NOW"
}
status_of() { # status_of ID [TENANT]
  sql "select status || coalesce(': ' || status_reason, '') from actions where action_id = '$1' and tenant_id = '${2:-acme}'"
}
state_of() { # state_of TENANT ENTITY
  sql "select value from entity_state where tenant_id = '$1' and entity_id = '$2' and field = 'budget_daily'"
}
ctl() { "$BIN/actionpool-ctl" "$@"; }

# ---- publish --from-url ---------------------------------------------------------
TOKEN="Bearer tok-$$-$RANDOM-secret"
http_target_start
trap 'kill $HTTP_TARGET 2>/dev/null' EXIT
{
  budget url-1 acme cmp-url 500
  touches url-2 acme seq-url 4
} | jq -s --arg run "$RUN" '{version: "revenue_os_v1", run_id: "url-\($run)", optimization_actions: .}' >"$TEST_DIR/url.json"
jq -n --rawfile body "$TEST_DIR/url.json" \
  '{rules: [{prefix: "/kernel/latest.json", body_text: $body, content_type: "application/json"},
            {prefix: "/kernel/down", status: 503}]}' |
  curl -fs -X POST "$BASE/_control" -d @- >/dev/null

out=$(ACTIONPOOL_FROM_URL_AUTHORIZATION=$TOKEN "$BIN/actionpool-producer" publish \
  --from-url "$BASE/kernel/latest.json" 2>&1); status=$?
check "publish --from-url exits 0" "$status" 0
check_match "it publishes what the server answered" "$out" "published 2 of 2 actions: 2 delivered, 0 refused"
check "the Authorization header arrives at the server" \
  "$(curl -fs "$BASE/_requests" | jq -r '.[] | select(.path == "/kernel/latest.json") | .headers.Authorization')" \
  "$TOKEN"
check "the token is not in the producer's output" "$(grep -c -- "tok-$$" <<<"$out")" 0
check "the fetched actions are on their topics" \
  "$(consume_all "$TEST_ID.campaigns" | jq -r '.payload | fromjson | select(.run_id == "url-'"$RUN"'") | .action_id')" "url-1"

out=$(ACTIONPOOL_FROM_URL_AUTHORIZATION=$TOKEN "$BIN/actionpool-producer" publish \
  --from-url "$BASE/kernel/down" 2>&1); status=$?
check "an answer of 503 exits 2" "$status" 2
check_match "the error names the URL and the status" "$out" "cannot fetch '$BASE/kernel/down': HTTP 503"
check "the token is not in the error either" "$(grep -c -- "tok-$$" <<<"$out")" 0
out=$("$BIN/actionpool-producer" validate --json --from-url "$BASE/kernel/latest.json" 2>/dev/null); status=$?
check "validate --from-url --json reads the same body" "$status $(jq -c '[.total, .valid]' <<<"$out")" "0 [2,2]"
kill $HTTP_TARGET 2>/dev/null
wait $HTTP_TARGET 2>/dev/null

# ---- publish --budget-neutral -----------------------------------------------------
# acme: +50 +30 -40 (the increases give way, x0.5); globex: -10 +3.33 (the
# decreases give way); initech: +30 alone (withheld: nothing pays for it).
{
  budget bn-a1 acme cmp-a1 150 '"current":100'
  budget bn-a2 acme cmp-a2 230 '"current":200'
  budget bn-a3 acme cmp-a3 260 '"current":300'
  budget bn-g1 globex cmp-g1 90 '"current":100'
  budget bn-g2 globex cmp-g2 53.33 '"current":50'
  touches bn-g3 globex seq-g3 6
  budget bn-i1 initech cmp-i1 130 '"current":100'
} | jq -s --arg run "bn-$RUN" '{version: "revenue_os_v1", run_id: $run, optimization_actions: .}' >"$TEST_DIR/bn.json"
out=$("$BIN/actionpool-producer" publish --budget-neutral "$TEST_DIR/bn.json" 2>&1); status=$?
check "publish --budget-neutral exits 0" "$status" 0
check_match "one line per tenant says what was done" "$out" \
  "budget-neutral: tenant 'acme', run 'bn-$RUN': 3 budget changes, \+80.00 up and -40.00 down requested; increases scaled by 0.5000 to \+40.00"
check_match "the summary counts the withheld one" "$out" \
  "published 6 of 7 actions: 6 delivered, 0 refused, 0 not delivered, 1 withheld \(budget-neutral\)"
check_match "the withheld action is named" "$out" "withheld action 'bn-i1'"
bn=$(consume_all "$TEST_ID.campaigns" | jq -c '.payload | fromjson | select(.run_id == "bn-'"$RUN"'")')
check "each tenant's total daily budget is unchanged (to the cent)" \
  "$(jq -s -r 'group_by(.tenant_id) | map("\(.[0].tenant_id)=\((map(.proposed_change.value - .current) | add | . * 100 | round))") | join(" ")' <<<"$bn")" \
  "acme=0 globex=0"
check "the increases were halved" \
  "$(jq -r 'select(.tenant_id == "acme") | "\(.action_id)=\(.proposed_change.value)"' <<<"$bn" | sort | tr '\n' ' ')" \
  "bn-a1=125 bn-a2=215 bn-a3=260 "
check "a rescaled action keeps what was requested" \
  "$(jq -r 'select(.action_id == "bn-a1") | .budget_neutral.requested' <<<"$bn")" 150
check "the globex decrease gave way" \
  "$(jq -r 'select(.action_id == "bn-g1") | .proposed_change.value * 100 | round' <<<"$bn")" 9667
check "a withheld action is not published" "$(jq -r 'select(.tenant_id == "initech")' <<<"$bn")" ""
check "other actions pass untouched" \
  "$(consume_all "$TEST_ID.crm" | jq -r '.payload | fromjson | select(.run_id == "bn-'"$RUN"'" and .action_id == "bn-g3") | .proposed_change.value')" 6

{
  budget bn-h1 hooli cmp-h1 150 '"current":100'
  budget bn-h2 hooli cmp-h2 80
} >"$TEST_DIR/blind.jsonl"
out=$("$BIN/actionpool-producer" validate --budget-neutral "$TEST_DIR/blind.jsonl" 2>&1); status=$?
check "a run with a budget change lacking 'current' is refused: exit 1" "$status" 1
check_match "the refusal names the action without current" "$out" \
  "refused action 'bn-h1' .*without a numeric 'current' .*: 'bn-h2'"

# ---- ctl revert ---------------------------------------------------------------------
worker_start w1
{
  budget rv-1 acme cmp-rv 100
  budget rv-2 acme cmp-rv 120 '"current":100'
  budget rv-dry acme cmp-dry 50 '"dry_run":true'
  budget rv-twin acme cmp-twin 70
  budget rv-twin globex cmp-twin 70
} | publish - >/dev/null 2>&1
# Another client bypasses the producer: the worker rejects it (for the summary).
touches rv-bad acme seq-bad 25 | produce_raw "$TEST_ID.crm" "acme:seq-bad"
wait_drained 90
check "the second budget change is in effect" "$(state_of acme cmp-rv)" 120

reverts() { consume_all "$TEST_ID.campaigns" | jq -r '.payload | fromjson | select(.action_type == "revert") | .action_id' | sort; }
before=$(reverts)
dry=$(ctl revert rv-2 --dry-run 2>/dev/null); status=$?
check "revert --dry-run exits 0" "$status" 0
check "revert --dry-run prints the revert action" \
  "$(jq -c '[.action_type, .revert_of, .idempotency_key, .proposed_change, .current, .tenant_id, .entity_id]' <<<"$dry")" \
  '["revert","rv-2","revert:rv-2",{"field":"budget_daily"},120,"acme","cmp-rv"]'
check "--dry-run publishes nothing" "$(reverts)" "$before"

id=$(ctl revert rv-2 --reason "budget test over" 2>"$TEST_DIR/revert.err"); status=$?
check "revert exits 0" "$status" 0
check_match "revert prints the new action_id" "$id" "^revert-rv-2-[0-9a-f]{8}$"
wait_drained 60
check "the revert restores the previous value" "$(state_of acme cmp-rv)" 100
check "the reverted action is rolled back" "$(status_of rv-2)" "rolled_back"
check "the revert action is executed, with its reason" \
  "$(sql "select status || ' ' || (payload->>'reason') from actions where action_id = '$id'")" \
  "executed budget test over"

out=$(ctl revert rv-2 2>&1); status=$?
check "reverting it again exits 1" "$status" 1
check_match "  ... saying it is already rolled back" "$out" \
  "cannot revert: action 'rv-2' of tenant 'acme' is already rolled back \(by '$id'\)"
out=$(ctl revert rv-1 2>&1); status=$?
check "reverting a change that is no longer the latest exits 1" "$status" 1
check_match "  ... naming the later one" "$out" "is no longer the latest change of campaigns 'cmp-rv' budget_daily: action '$id' changed it since"
out=$(ctl revert rv-dry 2>&1); status=$?
check "reverting a dry run exits 1" "$status" 1
check_match "  ... because it was never executed" "$out" "action 'rv-dry' of tenant 'acme' was never executed \(status dry_run\)"
out=$(ctl revert no-such-action 2>&1); status=$?
check "reverting an unknown action exits 1" "$status" 1
check_match "  ... saying so" "$out" "no action 'no-such-action' was recorded"
out=$(ctl revert rv-twin 2>&1); status=$?
check "an action id of two tenants needs --tenant: exit 1" "$status" 1
check_match "  ... naming them" "$out" "action 'rv-twin' exists for 2 tenants \(acme, globex\): say which with --tenant"

# Twice before any worker runs it: one executes, the other is a duplicate.
worker_stop w1
first=$(ctl revert rv-twin --tenant globex 2>/dev/null)
second=$(ctl revert rv-twin --tenant globex 2>/dev/null); status=$?
check "a second revert while the first waits is published too" "$status" 0
worker_start w1
wait_drained 60
check "the first revert executes" "$(status_of "$first" globex)" "executed"
check_match "the second is a duplicate of it" "$(status_of "$second" globex)" "^duplicate"
check "the value is back to unset (it had none before)" "$(state_of globex cmp-twin)" ""
check "the other tenant's twin is untouched" "$(state_of acme cmp-twin)" 70

# ---- ctl summary -------------------------------------------------------------------
sum=$(ctl summary --since 1h --json 2>"$TEST_DIR/summary.err"); status=$?
check "summary --json exits 0" "$status" 0
for tenant in acme globex; do
  expected=$(sql "select json_build_object('received', count(*),
      'executed', count(*) filter (where status in ('executed', 'rolled_back')),
      'rejected', count(*) filter (where status = 'rejected'),
      'duplicate', count(*) filter (where status = 'duplicate'),
      'dry_run', count(*) filter (where status = 'dry_run'),
      'rolled_back', count(*) filter (where status = 'rolled_back'),
      'failed', count(*) filter (where status = 'failed'),
      'entities', count(distinct (subsystem, entity_id)) filter (where status in ('executed', 'rolled_back')))
    from actions where tenant_id = '$tenant'" | jq -c .)
  check "the summary of $tenant matches its rows" \
    "$(jq -c --arg t "$tenant" '.tenants[] | select(.tenant_id == $t) | .total | del(.top_rejection_reasons)' <<<"$sum")" \
    "$expected"
done
check "the counts per subsystem add up to the tenant's" \
  "$(jq -c '.tenants[] | select(.tenant_id == "acme") | [(.subsystems | map(.received) | add), .total.received]' <<<"$sum")" \
  "$(sql "select '[' || count(*) || ',' || count(*) || ']' from actions where tenant_id = 'acme'")"
check "the total counts every action" "$(jq -r .total.received <<<"$sum")" "$(sql "select count(*) from actions")"
check "the top rejection reason is grouped by field and rule" \
  "$(jq -c '.tenants[] | select(.tenant_id == "acme") | .subsystems[] | select(.subsystem == "crm") | .top_rejection_reasons[0] | [.reason, .count]' <<<"$sum")" \
  '["proposed_change.value: maximum",1]'
text=$(ctl summary --since 1h --tenant acme 2>&1)
check_match "the text summary has a row per subsystem" "$text" \
  "acme +campaigns +$(sql "select count(*) from actions where tenant_id = 'acme' and subsystem = 'campaigns'") "
check_match "  ... and names the top reasons" "$text" "proposed_change.value: maximum \(1\)"
out=$(ctl summary --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" 2>&1)
check_match "a window in the future has no actions" "$out" "\(no actions\)"
out=$(ctl summary --since yesterday 2>&1); status=$?
check "an unreadable --since exits 2" "$status" 2
check_match "  ... and says what it takes" "$out" "--since: cannot read 'yesterday'"

test_end
