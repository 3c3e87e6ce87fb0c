#!/usr/bin/env bash
# ap_record_batch's set-based path records exactly what its general path
# (ap_record_action, one item at a time) records: the batches a worker sent
# are captured, replayed item by item into a second database through the
# general path only, and every row of both is compared. ap_prepare_batch's
# set-based path answers what its general path (ap_prepare_action) answers:
# both are asked each batch a worker prepares. The load has every
# case of the realistic mix: policy (tiers, the quiet period, autopilot,
# protection, a pause, rate limits), guardrails (clamped, refused, under the
# floor), `current` (matching, conflicting, null, unverified), reverts, duplicates,
# invalid actions, redeliveries, and changes sent to a live HTTP target
# (schemas/examples/connector.json: campaign fields and one CRM field).
source "$(dirname "$0")/lib.sh"
test_begin policy
export ACTIONPOOL_RATE_LIMIT_HOURLY=40 ACTIONPOOL_RATE_LIMIT_DAILY=100 \
  ACTIONPOOL_BUDGET_MAX_INCREASE_PCT=10 ACTIONPOOL_BUDGET_FLOOR=800 ACTIONPOOL_BATCH_SIZE=100
CTL=$BIN/actionpool-ctl
pg() { PGOPTIONS="-c client_min_messages=warning" psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$AP_PG_PORT" -U postgres "$@"; }

# gen SEED COUNT: realistic actions (~2 % invalid), ~15 % of them with the `current` the
# planner saw: the last value generated for the field, null, or a wrong one.
gen() {
  python3 "$REPO/tests/integration/gen_actions.py" --count "$2" --seed "$1" --realistic \
    --tenants 12 --entities 12 --duplicates 0.03 --invalid 0.02 --created-at now |
    python3 -c '
import json, random, sys
r = random.Random(int(sys.argv[1]))
last = {}
for line in sys.stdin:
    a = json.loads(line)
    c = a.get("proposed_change") or {}
    key = (a["tenant_id"], a["owner_subsystem"], a["entity_id"], c.get("field"))
    if "field" in c and r.random() < 0.15:
        roll = r.random()
        a["current"] = last.get(key, 1) if roll < 0.5 else None if roll < 0.6 else "stale"
    if "value" in c:
        last[key] = c["value"]
    print(json.dumps(a))' "$1" >"$TEST_DIR/$1.jsonl"
}
gen 13 1500
gen 14 1000
gen 15 1000
gen 16 1000

"$CTL" autopilot off --tenant tenant-3 --by test >/dev/null
"$CTL" protect --tenant tenant-4 --subsystem campaigns --entity cmp-1 --by test >/dev/null
"$CTL" protect --tenant tenant-4 --subsystem crm --entity crm-2 --reason "do not contact" --by test >/dev/null
"$CTL" pause --tenant tenant-5 --by test >/dev/null

# Every batch the worker records is kept, in order (one worker: commit order).
sql "create table captured (seq bigserial primary key, items jsonb not null);
     alter function ap_record_batch(jsonb) rename to ap_record_batch_captured;
     create function ap_record_batch(items jsonb)
     returns table (ord integer, action_pk bigint, outcome text) language sql as \$\$
         insert into captured (items) values (items);
         select * from ap_record_batch_captured(items);
     \$\$;"
pg -d "$TEST_ID" -c "alter database $TEST_ID set track_functions = 'pl'"
# Every batch prepared for a live target is also prepared item by item (read
# only, in the same transaction): the answers that differ are kept.
sql "create table prepared (seq bigserial primary key, items jsonb not null, fast jsonb,
                            general jsonb);
     alter function ap_prepare_batch(jsonb) rename to ap_prepare_batch_checked;
     create function ap_prepare_batch(items jsonb)
     returns table (ord integer, known text, field text, value jsonb, failure text, why text,
                    output jsonb) language sql as \$\$
         insert into prepared (items, fast, general)
         select items, (select jsonb_agg(to_jsonb(p) order by p.ord)
                          from ap_prepare_batch_checked(items) p),
                       (select jsonb_agg(to_jsonb(p) order by p.ord)
                          from jsonb_array_elements(items) e, ap_prepare_action(e.value) p);
         select x.* from prepared, jsonb_to_recordset(fast) as x(
                ord integer, known text, field text, value jsonb, failure text, why text, output jsonb)
          where seq = currval('prepared_seq_seq');
     \$\$;"

# run FILE FLAGS...: a worker with FLAGS records FILE, then stops.
run() {
  local file=$1
  shift
  worker_start w1 "$@"
  wait_ready w1
  local s # as any client could: the invalid ones too
  for s in campaigns crm pricing routing content; do
    jq -r --arg s "$s" 'select(.owner_subsystem == $s) | "\(.tenant_id):\(.entity_id)\t\(tojson)"' "$file" |
      kcat -P -b "$ACTIONPOOL_BROKERS" -t "$TEST_ID.$s" -K $'\t' -z none
  done
  wait_drained 120
  worker_stop w1
}
run "$TEST_DIR/13.jsonl" --tier1-quiet-hours 0                        # budgets clamped
run "$TEST_DIR/14.jsonl" --tier1-quiet-hours 0 --budget-excess reject # budgets refused
cat "$TEST_DIR"/1[345].jsonl >"$TEST_DIR/all.jsonl"
run "$TEST_DIR/all.jsonl" # the quiet period; every earlier action delivered again

# Live HTTP changes: prepared, sent to a real server on loopback, then recorded.
http_target_start
export ACTIONPOOL_ADOBE_BASE_URL=$BASE ACTIONPOOL_ADOBE_TOKEN=t ACTIONPOOL_ADOBE_API_KEY=k \
  ACTIONPOOL_CRM_BASE_URL=$BASE ACTIONPOOL_CRM_TOKEN=t
seq_before=$(sql "select coalesce(max(seq), 0) from captured")
ACTIONPOOL_RATE_LIMIT_HOURLY=0 ACTIONPOOL_RATE_LIMIT_DAILY=0 \
  run "$TEST_DIR/16.jsonl" --tier1-quiet-hours 0 --connector-file "$REPO/schemas/examples/connector.json"
kill "$HTTP_TARGET" 2>/dev/null
check "live changes were sent and recorded" \
  "$(sql "select count(*) > 20 from executions where target = 'http' and success and mode = 'apply'")" t
# Those alone on their entity in a batch of 8 or more take the set-based path.
check "the set-based path has live changes to record" "$(sql "
  select count(*) > 10 from (
    select e.value as it, jsonb_array_length(c.items) as size,
           count(*) over (partition by c.seq, e.value->>'tenant_id', e.value->>'subsystem',
                                       e.value->>'entity_id') as on_entity
      from captured c, jsonb_array_elements(c.items) e where c.seq > $seq_before) x
   where x.size >= 8 and x.on_entity = 1 and x.it ? 'http' and x.it->>'status' = 'executed'")" t

check "live requests were prepared" "$(sql "select count(*) > 0 from prepared")" t
check "both paths prepare the same" \
  "$(sql "select count(*) from prepared where fast is distinct from general")" 0
# Once per prepared item for the check, once more when not set-based.
prepared_items=$(sql "select sum(jsonb_array_length(items)) from prepared")
prepared_fast=$((2 * prepared_items - $(sql "select coalesce(sum(calls), 0) from pg_stat_user_functions
                                             where funcname = 'ap_prepare_action'")))
say "the set-based path prepared $prepared_fast of $prepared_items items"
check "the set-based path prepares a share of the live changes" \
  "$((prepared_fast * 100 / prepared_items > 25))" 1

N=4500 # new actions; the rest are redeliveries
REDELIVERED=2500 # 13.jsonl and 14.jsonl, delivered again in all.jsonl
items=$(sql "select sum(jsonb_array_length(items)) from captured")
general=$(sql "select coalesce(sum(calls), 0) from pg_stat_user_functions where funcname = 'ap_record_action'")
say "the set-based path took $((items - general)) of $items items"
# Entities repeat within a batch here (few of them, for the quiet period and
# the guardrails): an entity's later items in a batch take the general path.
check "the set-based path takes a share of the new actions" "$(((items - general) * 100 / N > 25))" 1
check "the general path takes the redeliveries and a share of the new actions" \
  "$((general - REDELIVERED > N / 10))" 1

# The same batches, item by item through the general path, in a second database.
general_db=${TEST_ID}_general
pg -d postgres -c "drop database if exists $general_db" -c "create database $general_db owner actionpool" >/dev/null
ACTIONPOOL_PG_DSN="host=127.0.0.1 port=$AP_PG_PORT dbname=$general_db user=actionpool" \
  "$CTL" migrate >/dev/null 2>&1 || check "migrate the second database" "failed" "ok"
pg -d "$TEST_ID" -c "select format('insert into controls select * from jsonb_populate_recordset(null::controls, %L); insert into autopilot select * from jsonb_populate_recordset(null::autopilot, %L); insert into protected_entities select * from jsonb_populate_recordset(null::protected_entities, %L);',
                            (select jsonb_agg(c) from controls c), (select jsonb_agg(a) from autopilot a),
                            (select jsonb_agg(p) from protected_entities p))
                     union all
                     (select format('select count(*) from jsonb_array_elements(%L::jsonb) e, ap_record_action(e.value);', items)
                        from captured order by seq)" |
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$AP_PG_PORT" -U actionpool -d "$general_db" >/dev/null ||
  check "the general path records the captured batches" "failed" "ok"

# Every row, with references by action id and times by kind, one file per table.
snapshot() { # snapshot DATABASE SUFFIX
  pg -d "$1" -o "$TEST_DIR/actions.$2" -c "
    select concat_ws('|', a.tenant_id, a.action_id, a.subsystem, a.action_type, a.entity_id,
             a.idempotency_key, a.payload::text, a.tier, a.status,
             regexp_replace(a.status_reason, 'row [0-9]+$', 'row of ' || d.action_id), d.action_id,
             a.attempts, a.run_id, a.created_at, a.wait_reason,
             case when a.not_before is null then 'none' when a.not_before = 'infinity' then 'never'
                  else 'due' end)
      from actions a left join actions d on d.id = a.duplicate_of order by a.tenant_id, a.action_id"
  pg -d "$1" -o "$TEST_DIR/executions.$2" -c "
    select concat_ws('|', a.tenant_id, a.action_id, x.attempt, x.target, x.mode, x.input::text,
             x.output::text, x.success, x.error_class, x.error_message, x.worker_id, x.topic,
             x.kafka_partition, x.kafka_offset, x.rollback_data::text, x.rolled_back_at is null,
             x.rolled_back_by)
      from executions x join actions a on a.id = x.action_pk order by a.tenant_id, a.action_id, x.id"
  pg -d "$1" -o "$TEST_DIR/entity_state.$2" -c "
    select concat_ws('|', s.tenant_id, s.subsystem, s.entity_id, s.field, s.value::text, a.action_id)
      from entity_state s join actions a on a.id = s.set_by_action order by 1"
}
snapshot "$TEST_ID" fast
snapshot "$general_db" general
say "statuses: $(sql "select string_agg(status || ' ' || n, ', ' order by status)
                        from (select status, count(*) n from actions group by 1) c")"
for table in actions executions entity_state; do
  check "the $table rows are the same on both paths ($(wc -l <"$TEST_DIR/$table.fast") rows)" \
    "$(diff "$TEST_DIR/$table.fast" "$TEST_DIR/$table.general" | head -6)" ""
done
for status in executed rejected duplicate pending_approval suggested received; do
  check "the load has '$status' actions" "$(sql "select count(*) > 0 from actions where status = '$status'")" t
done
for case in "guardrail%clamped" "conflict: %" "guardrail: % under the floor %" "guardrail: % more than %"; do
  check "the load has executions like '$case'" \
    "$(sql "select count(*) > 0 from executions where output::text like '%$case%' or error_message like '$case'")" t
done
check "the load has reverts executed" \
  "$(sql "select count(*) > 0 from actions where action_type = 'revert' and status = 'executed'")" t
pg -d postgres -c "drop database $general_db" >/dev/null

# A live change held by policy when it was prepared, and let through by the
# time it is recorded (the kill switch lifted in between), was not sent: it
# waits to be sent, nothing is applied.
unsent='{"ord": 0, "action_id": "unsent-1", "tenant_id": "tenant-1", "subsystem": "campaigns",
         "action_type": "config_change", "entity_id": "cmp-unsent", "idempotency_key": "unsent-1",
         "payload": {}, "tier": 1, "tier1_eligible": true, "quiet_hours": 0, "status": "executed",
         "field": "daily_budget", "value": 100, "target": "http", "worker_id": "test",
         "topic": "t", "partition": 0, "offset": 0, "created_at": "2026-01-01T00:00:00Z"}'
check "an unsent live change is recorded as waiting" \
  "$(sql "select outcome from ap_record_batch(jsonb_build_array('$unsent'::jsonb))")" received
check "it waits to be sent, with nothing executed" "$(sql "
  select a.wait_reason || ' ' || (select count(*) from executions x where x.action_pk = a.id)
    from actions a where a.action_id = 'unsent-1'")" "unsent 0"

test_end
