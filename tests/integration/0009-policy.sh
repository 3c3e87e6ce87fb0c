#!/usr/bin/env bash
# Policy, with the real executor map and thresholds: tiers and approvals,
# autopilot, protected entities, the kill switch and pauses (waiting work runs
# after the resume with no replay, in its original order per entity), and an
# approval that producing a message cannot forge.
source "$(dirname "$0")/lib.sh"
test_begin policy
CTL=$BIN/actionpool-ctl

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# action ID TENANT SUBSYSTEM ENTITY FIELD VALUE [EXTRA-JSON-MEMBERS]
action() { # EXTRA-JSON-MEMBERS override the defaults
  printf '{"action_id":"%s","tenant_id":"%s","owner_subsystem":"%s","action_type":"config_change","entity_id":"%s","proposed_change":{"field":"%s","value":%s},"guardrails":{"max_daily_spend":100000},"confidence":0.9,"estimated_impact":100,"created_at":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$NOW" | jq -c --argjson extra "{${7:-}}" '. + $extra'
}
run_actions() { publish - >/dev/null 2>&1; wait_drained 60; }
status_of() { sql "select status || coalesce(': ' || status_reason, '') from actions where action_id = '$1'"; }
state_of() { sql "select value from entity_state where entity_id = '$1' and field = '$2'"; }
# wait_status ID STATUS: up to 15 s for the action to reach STATUS.
wait_status() {
  for _ in $(seq 150); do
    [[ $(sql "select status from actions where action_id = '$1'") == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

worker_start w1
{
  action t1 acme campaigns cmp-1 budget_daily 100
  action t1-low acme campaigns cmp-2 budget_daily 100 '"confidence":0.5'
  action t1-small acme campaigns cmp-3 budget_daily 100 '"estimated_impact":0.05'
  action t2 acme pricing plan-1 discount_max_pct 10
  action t3 acme crm seq-1 max_touches 5 '"tier":3'
} | run_actions
check "tier 1, confident and valuable: executed at once" "$(status_of t1)" "executed"
check "tier 1 with confidence 0.5 waits for approval" "$(status_of t1-low)" \
  "pending_approval: tier 1 needs more confidence or impact: waits for approval"
check "tier 1 with impact 0.05 waits for approval" "$(sql "select status from actions where action_id = 't1-small'")" "pending_approval"
check "pricing changes are tier 2 by default: pending approval" "$(status_of t2)" "pending_approval: tier 2: waits for approval"
check "a requested tier 3 is recorded and never executed" "$(status_of t3)" \
  "manual_only: tier 3: recorded, never executed automatically"
action t1-again acme campaigns cmp-1 budget_total 500 '"guardrails":{"max_daily_spend":100000,"current_spend":0}' | run_actions
check "another change to an entity changed in the last 24 h waits for approval" "$(status_of t1-again)" \
  "pending_approval: the entity changed in the last 24 h: waits for approval"

# Approval: recorded, then executed within seconds with no further step.
out=$("$CTL" approve t2 --by alice 2>&1)
check_match "approve says what happens" "$out" "action t2 approved by alice"
wait_status t2 executed
check "the approved action executes by itself" "$(status_of t2)" "executed"
check "with its own value" "$(state_of plan-1 discount_max_pct)" "10"
check "the approval is recorded" "$(sql "select decision || ' by ' || decided_by from approvals p join actions a on a.id = p.action_pk where a.action_id = 't2'")" "approved by alice"
"$CTL" reject t1-low --by bob --note "too risky" >/dev/null
check "a rejected action is rejected with who and why" "$(status_of t1-low)" "rejected: rejected by bob: too risky"
out=$("$CTL" approve t1 --by alice 2>&1); status=$?
check "approving an action not pending approval exits 1" "$status" 1
check_match "  ... and says why" "$out" "action 't1' is not pending approval \(it is executed\)"

# Producing a message approves nothing.
action t1-small acme campaigns cmp-3 budget_daily 100 '"estimated_impact":0.05' | produce_raw "$TEST_ID.campaigns" acme:cmp-3
wait_drained 30
check "producing a pending action again leaves it pending" "$(sql "select status from actions where action_id = 't1-small'")" "pending_approval"

# Autopilot and protected entities.
"$CTL" autopilot off --tenant globex --by ops >/dev/null
"$CTL" autopilot off --tenant acme --entity cmp-9 --by ops >/dev/null
"$CTL" protect --tenant acme --subsystem crm --entity seq-dnc --reason "do not contact" --by ops >/dev/null
{
  action ap1 globex campaigns cmp-1 budget_daily 100
  action ap2 acme campaigns cmp-9 budget_daily 100
  action ap3 acme campaigns cmp-10 budget_daily 100
  action pr1 acme crm seq-dnc max_touches 3
} | run_actions
check "autopilot off for a tenant: suggested" "$(status_of ap1)" "suggested: autopilot is off for globex"
check "autopilot off for one campaign: suggested" "$(sql "select status from actions where action_id = 'ap2'")" "suggested"
check "the tenant's other campaigns still execute" "$(status_of ap3)" "executed"
check "an action on a protected entity is rejected with the reason" "$(status_of pr1)" \
  "rejected: protected: crm/seq-dnc is protected: do not contact"

# Kill switch and pauses: waiting work is not lost, and keeps its order.
"$CTL" kill-switch on --by ops --reason "incident 42" >/dev/null
{
  action k1 acme routing team-1 capacity_per_rep 10
  action k2 acme routing team-1 capacity_per_rep 20
} | run_actions
check "with the kill switch on, nothing executes" "$(status_of k1)" "received: kill switch is on"
check "later actions on the entity wait behind it" "$(sql "select status from actions where action_id = 'k2'")" "received"
check "the kill switch is an alert" "$(sql "select count(*) from alerts where kind = 'kill_switch'")" "1"

"$CTL" approve t1-small --by alice >/dev/null # approved, but the kill switch holds it
forged=$(action t1-small acme campaigns cmp-3 budget_daily 999 '"estimated_impact":0.05')
produce_raw "$TEST_ID.campaigns" acme:cmp-3 <<<"$forged"
sleep 2
check "a forged copy of an approved action does not run" "$(state_of cmp-3 budget_daily)" ""

"$CTL" kill-switch off --by ops >/dev/null
wait_status k1 executed
wait_status k2 pending_approval
check "after the kill switch, waiting actions execute with no replay" "$(status_of k1)" "executed"
check "in their original order: the later one then meets the quiet period" "$(status_of k2)" \
  "pending_approval: the entity changed in the last 24 h: waits for approval"
"$CTL" approve k2 --by alice >/dev/null
wait_status k2 executed
check "approved, it lands last" "$(state_of team-1 capacity_per_rep)" "20"
wait_status t1-small executed
check "the approved action runs as approved, not as forged" "$(state_of cmp-3 budget_daily)" "100"

"$CTL" autopilot on --tenant globex --by ops >/dev/null
"$CTL" pause --tenant acme --by ops >/dev/null
"$CTL" pause --subsystem content --by ops >/dev/null
{
  action pa1 acme routing team-2 capacity_per_rep 10
  action pa2 globex content tmpl-1 subject_line '"Hi"'
  action pa3 globex routing team-3 capacity_per_rep 10
} | run_actions
check "a paused tenant's actions wait" "$(status_of pa1)" "received: tenant acme is paused"
check "a paused subsystem's actions wait" "$(status_of pa2)" "received: subsystem content is paused"
check "others go on" "$(sql "select status from actions where action_id = 'pa3'")" "executed"
"$CTL" resume --tenant acme --by ops >/dev/null
"$CTL" resume --subsystem content --by ops >/dev/null
wait_status pa1 executed && wait_status pa2 executed
check "resumed tenant: executed" "$(sql "select status from actions where action_id = 'pa1'")" "executed"
check "resumed subsystem: executed" "$(sql "select status from actions where action_id = 'pa2'")" "executed"
out=$("$CTL" resume --tenant acme --by ops 2>&1); status=$?
check "resuming what is not paused exits 1" "$status" 1
check_match "  ... and says so" "$out" "tenant 'acme' is not paused"
check_match "ctl controls shows what is in force" "$("$CTL" controls)" "crm/seq-dnc: do not contact"

test_end
