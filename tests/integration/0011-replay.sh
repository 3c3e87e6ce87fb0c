#!/usr/bin/env bash
# actionpool-ctl replay against the real broker and Postgres, with dead letters
# produced straight onto the DLQ topics (no worker runs here):
#   listing      the columns, and the filters by subsystem, tenant, error class,
#                action id and time (relative and RFC 3339)
#   --dry-run    lists what would be replayed and changes nothing
#   replay       republishes each match to its original topic, key and value
#                unchanged, with ap-replay-of and ap-attempt 0, records a row;
#                a second run replays nothing
#   not delivered  exit 1, the row is deleted again, a later run retries it
source "$(dirname "$0")/lib.sh"
test_begin

ctl() { "$BIN/actionpool-ctl" "$@"; }
ago() { date -u -d "@$(($(date +%s) - $1))" +%Y-%m-%dT%H:%M:%SZ; }
action() { # action ID TENANT SUBSYSTEM
  printf '{"action_id":"%s","tenant_id":"%s","owner_subsystem":"%s","action_type":"config_change","entity_id":"e-%s","proposed_change":{"field":"max_touches","value":3}}' \
    "$1" "$2" "$3" "$1"
}
# dead_letter SUBSYSTEM KEY CLASS ATTEMPT FIRST-FAILURE ORIGINAL-TOPIC < value
dead_letter() {
  kcat -P -b "$ACTIONPOOL_BROKERS" -t "$TEST_ID.$1.dlq" -k "$2" -z none \
    -H "ap-error-class=$3" -H "ap-error-message=$3 from the endpoint after $4 attempts" \
    -H "ap-original-topic=$6" -H "ap-original-partition=0" -H "ap-original-offset=7" \
    -H "ap-attempt=$4" -H "ap-first-failure-at=$5"
}

action d-crm-1 acme crm | dead_letter crm acme:e-d-crm-1 http_503 4 "$(ago 3600)" "$TEST_ID.crm"
action d-crm-2 globex crm | dead_letter crm globex:e-d-crm-2 http_500 4 "$(ago $((3 * 86400)))" "$TEST_ID.crm"
printf 'not json {' | dead_letter crm poison-key unparseable 1 "$(ago 60)" "$TEST_ID.crm"
action d-pr-1 acme pricing | dead_letter pricing acme:e-d-pr-1 http_503 4 "$(ago 600)" "$TEST_ID.pricing"
action d-pr-2 acme pricing | dead_letter pricing acme:e-d-pr-2 timeout 4 "$(ago $((10 * 86400)))" "$TEST_ID.pricing"

# ids REPLAY-ARGS...: the action ids (or "-") the dry run lists, sorted, on one line
ids() { ctl replay --dry-run --json "$@" | jq -r '[.dead_letters[] | .action_id // "-"] | sort | join(" ")'; }

# ---- listing and filters -----------------------------------------------------------
out=$(ctl replay --dry-run 2>&1); status=$?
check "replay --dry-run exits 0" "$status" 0
check_match "the table has the columns" "$out" \
  "^DLQ +ACTION_ID +TENANT +ERROR_CLASS +ATTEMPTS +FIRST_FAILURE +REPLAY +LAST_ERROR$"
check_match "a row shows offset, action, tenant, class, attempts, state and last error" "$out" \
  "^$TEST_ID\.crm\.dlq/[0-9]+/[0-9]+ +d-crm-1 +acme +http_503 +4 +[0-9T:-]+Z +would replay +http_503 from the endpoint after 4 attempts$"
check_match "a poison message is listed with '-' for action and tenant" "$out" \
  "^$TEST_ID\.crm\.dlq/[0-9]+/[0-9]+ +- +- +unparseable +1 "
check_match "the summary says what would be replayed" "$out" \
  "^would replay 5 of 5 matching dead letters \(0 already replayed\); dry run, nothing changed$"

check "every subsystem by default" "$(ids)" "- d-crm-1 d-crm-2 d-pr-1 d-pr-2"
check "--subsystem pricing" "$(ids --subsystem pricing)" "d-pr-1 d-pr-2"
check "--subsystem crm,pricing" "$(ids --subsystem crm,pricing)" "- d-crm-1 d-crm-2 d-pr-1 d-pr-2"
check "--tenant acme" "$(ids --tenant acme)" "d-crm-1 d-pr-1 d-pr-2"
check "--error-class http_503" "$(ids --error-class http_503)" "d-crm-1 d-pr-1"
check "--action-id d-crm-2" "$(ids --action-id d-crm-2)" "d-crm-2"
check "--since 24h" "$(ids --since 24h)" "- d-crm-1 d-pr-1"
check "--until 24h" "$(ids --until 24h)" "d-crm-2 d-pr-2"
check "--since and --until as RFC 3339" "$(ids --since "$(ago $((5 * 86400)))" --until "$(ago 86400)")" "d-crm-2"
check "filters combine" "$(ids --tenant acme --subsystem crm --error-class http_503)" "d-crm-1"
json=$(ctl replay --dry-run --json --action-id d-crm-1)
check "--json carries the columns of a dead letter" \
  "$(jq -c '.dead_letters[0] | [.subsystem, .tenant_id, .error_class, .attempts, .state, .original_topic, (.dlq_offset | type)]' <<<"$json")" \
  "[\"crm\",\"acme\",\"http_503\",4,\"would_replay\",\"$TEST_ID.crm\",\"number\"]"
check "--json counts" "$(jq -c '[.dry_run, .matching, .already_replayed, .would_replay, .failed]' <<<"$json")" "[true,1,0,1,0]"

out=$(ctl replay --dry-run --subsystem nowhere 2>&1); status=$?
check "an unknown subsystem exits 2" "$status" 2
check_match "and says so" "$out" "unknown subsystem 'nowhere'"
out=$(ctl replay --dry-run --since yesterday 2>&1); status=$?
check "an unreadable --since exits 2" "$status" 2
check_match "and names the option" "$out" "^actionpool-ctl: --since: cannot read 'yesterday'"

check "the dry runs published nothing to crm" "$(consume_all "$TEST_ID.crm" | wc -l)" 0
check "nor to pricing" "$(consume_all "$TEST_ID.pricing" | wc -l)" 0
check "and recorded no replay" "$(sql "select count(*) from replays")" 0

# ---- replay ----------------------------------------------------------------------
out=$(ctl replay --subsystem crm --by tester 2>&1); status=$?
check "replay --subsystem crm exits 0" "$status" 0
check_match "it replays the three crm dead letters" "$out" \
  "^replayed 3 of 3 matching dead letters \(0 already replayed\)$"
check_match "each row says so" "$out" "d-crm-2 +globex +http_500 +4 .* replayed now "
crm=$(consume_all "$TEST_ID.crm")
check "three messages are back on the original topic" "$(wc -l <<<"$crm")" 3
check "with their keys and values unchanged" \
  "$(jq -r '[.key, (.payload | (fromjson? | .action_id) // .)] | join(" ")' <<<"$crm" | sort | tr '\n' ',')" \
  "acme:e-d-crm-1 d-crm-1,globex:e-d-crm-2 d-crm-2,poison-key not json {,"
check "each carries ap-replay-of <dlq>/<partition>/<offset> and ap-attempt 0" \
  "$(jq -r '.headers | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add |
            ((.["ap-replay-of"] | test("^'"$TEST_ID"'\\.crm\\.dlq/[0-9]+/[0-9]+$")) and .["ap-attempt"] == "0")' <<<"$crm" | sort -u)" \
  "true"
check "the replay-of markers point at the dead letters listed" \
  "$(jq -r '.headers | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add | .["ap-replay-of"]' <<<"$crm" | sort | tr '\n' ' ')" \
  "$(ctl replay --dry-run --json --subsystem crm | jq -r '.dead_letters[] | "\(.dlq_topic)/\(.dlq_partition)/\(.dlq_offset)"' | sort | tr '\n' ' ')"
check "three replays are recorded, by tester" \
  "$(sql "select count(*), min(replayed_by), count(action_id), min(original_topic) from replays")" \
  "3|tester|2|$TEST_ID.crm"

out=$(ctl replay --subsystem crm --by tester 2>&1); status=$?
check "replaying the same filter again exits 0" "$status" 0
check_match "and replays nothing" "$out" "^replayed 0 of 3 matching dead letters \(3 already replayed\)$"
check_match "the rows say when and by whom" "$out" "d-crm-1 .* already [0-9T:-]+Z by tester "
check "nothing more on crm" "$(consume_all "$TEST_ID.crm" | wc -l)" 3

json=$(ctl replay --json --by ops2); status=$?
check "replay of everything exits 0" "$status" 0
check "it replays only the two pricing dead letters" \
  "$(jq -c '[.dry_run, .matching, .already_replayed, .replayed, .failed]' <<<"$json")" "[false,5,3,2,0]"
check "states in --json" "$(jq -r '[.dead_letters[] | .state] | sort | unique | join(" ")' <<<"$json")" \
  "already_replayed replayed"
check "two messages on pricing" "$(consume_all "$TEST_ID.pricing" | wc -l)" 2
check "five replays recorded" "$(sql "select count(*) from replays")" 5
check_match "a dry run now has nothing to do" "$(ctl replay --dry-run)" \
  "^would replay 0 of 5 matching dead letters \(5 already replayed\)"

# ---- not delivered: exit 1, the row goes again, the next run retries ------------------
action d-lost acme crm | dead_letter crm acme:e-d-lost http_503 4 "$(ago 60)" "$TEST_ID.no_such_topic"
out=$(ctl --kafka.message.timeout.ms=3000 replay --action-id d-lost --by tester 2>&1); status=$?
check "a replay that is not delivered exits 1" "$status" 1
check_match "the row says why" "$out" "d-lost .* failed: not delivered"
check_match "the summary counts it" "$out" "^replayed 0 of 1 matching dead letters \(0 already replayed, 1 not delivered\)$"
check "its replay row is deleted again" "$(sql "select count(*) from replays where action_id = 'd-lost'")" 0
check_match "a later run tries it again" "$(ctl replay --dry-run --action-id d-lost)" "^would replay 1 of 1 "

test_end
