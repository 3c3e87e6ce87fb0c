#!/usr/bin/env bash
# smoke.sh — the HTTP connector for real, over loopback: builds tests/http_target/driver.c
# with worker/connector.c and worker/http_executor.c (the repo's warning flags, plus
# AddressSanitizer/UBSan unless SANITIZE=0), starts tests/http_target/http_target.py on a
# free port in a temporary folder, runs batches of actions through
# schemas/examples/connector.json, and checks both what the driver reports and what the
# target recorded. Needs: cc, pkg-config, libjansson-dev, libcurl4-openssl-dev, python3, jq.
#
#   tests/http_target/smoke.sh            prints one line per failed check, then
#                                         "N passed, N failed"; exit 1 on any failure
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ap-http-smoke.XXXX")
TARGET_PID=
PASSED=0
FAILED=0

cleanup() {
  [[ -n $TARGET_PID ]] && kill "$TARGET_PID" 2>/dev/null && wait "$TARGET_PID" 2>/dev/null
  if ((FAILED)); then echo "files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); printf 'FAILED: %s\n' "$*"; }
check() { # check DESCRIPTION ACTUAL EXPECTED
  if [[ $2 == "$3" ]]; then ok; else fail "$1"; printf '  expected: %s\n  actual:   %s\n' "$3" "$2"; fi
}
check_true() { # check_true DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok; else fail "$d"; fi
}
between() { [[ $1 =~ ^-?[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
# result ACTION_ID JQ [BATCH]: a member of the driver's result line for that action
result() { jq -r --arg id "$1" --argjson b "${3:-1}" \
  'select(.action_id == $id and .batch == $b) | '"$2" "$OUT"; }
# recorded JQ: what the target received, as an array, through a jq filter
recorded() { curl -s "$BASE/_requests" | jq -r "$1"; }
control() { curl -s -X POST "$BASE/_control" -d "$1" >/dev/null; }
# act ID TYPE SUBSYSTEM ENTITY FIELD VALUE [EXTRA-JSON-MEMBERS]
act() {
  printf '{"action_id":"%s","tenant_id":"acme","owner_subsystem":"%s","action_type":"%s","entity_id":"%s","proposed_change":{"field":"%s","value":%s}%s}\n' \
    "$1" "$3" "$2" "$4" "$5" "$6" "${7:+,$7}"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- build ----------------------------------------------------------------------
FLAGS="-std=c11 -D_DEFAULT_SOURCE -O1 -g -Wall -Wextra -Werror -Wstrict-prototypes \
  -Wmissing-prototypes -Wshadow"
[[ ${SANITIZE:-1} == 1 ]] && FLAGS="$FLAGS -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined"
DRIVER=$TMP/driver
# shellcheck disable=SC2046,SC2086
if ! cc $FLAGS -I"$REPO/common" -I"$REPO/worker" $(pkg-config --cflags jansson libcurl) \
  -o "$DRIVER" "$REPO/tests/http_target/driver.c" "$REPO/worker/connector.c" \
  "$REPO/worker/http_executor.c" "$REPO/common/action.c" "$REPO/common/status.c" \
  "$REPO/common/log.c" "$REPO/common/executor_map.c" $(pkg-config --libs jansson libcurl) -lm \
  2>"$TMP/build.err"; then
  cat "$TMP/build.err"; fail "driver builds"; echo "$PASSED passed, $FAILED failed"; exit 1
fi
ok

# ---- the target and the secrets --------------------------------------------------
python3 "$REPO/tests/http_target/http_target.py" --port-file "$TMP/port" --log "$TMP/target.jsonl" \
  --max-seconds 300 >"$TMP/target.out" 2>"$TMP/target.err" &
TARGET_PID=$!
for _ in $(seq 50); do [[ -s $TMP/port ]] && break; sleep 0.1; done
PORT=$(cat "$TMP/port" 2>/dev/null)
check "target prints its port first" "$(head -1 "$TMP/target.out")" "$PORT"
BASE=http://127.0.0.1:$PORT

rand() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
export ACTIONPOOL_ADOBE_TOKEN=bearer-$(rand) ACTIONPOOL_ADOBE_API_KEY=apikey-$(rand)
export ACTIONPOOL_CRM_TOKEN=crm-$(rand)
export ACTIONPOOL_ADOBE_BASE_URL=$BASE ACTIONPOOL_CRM_BASE_URL=$BASE
CONFIG=$REPO/schemas/examples/connector.json
OUT=$TMP/out.jsonl
ERR=$TMP/err.txt
# drive ARGS...: runs the driver with stdout in $OUT, stderr in $ERR (and kept for the
# end-of-run checks: no sanitizer report, no secret)
drive() {
  "$DRIVER" "$@" >"$OUT" 2>"$ERR"
  local rc=$?
  cat "$ERR" >>"$TMP/stderr-all.txt"
  return $rc
}
no_secret_in() { ! grep -qF -e "$ACTIONPOOL_ADOBE_TOKEN" -e "$ACTIONPOOL_ADOBE_API_KEY" \
  -e "$ACTIONPOOL_CRM_TOKEN" "$@"; }

# ---- the example config ------------------------------------------------------------
check "the example loads and fits the executor map" \
  "$("$DRIVER" --check --map "$REPO/schemas/executor_map.json" "$CONFIG" 2>&1)" "ok: 6 routes"
if python3 -c 'import jsonschema' 2>/dev/null; then
  check "the example is valid against schemas/connector.schema.json" "$(python3 - "$REPO" <<'EOF'
import json, sys, jsonschema
repo = sys.argv[1]
schema = json.load(open(repo + "/schemas/connector.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.Draft202012Validator(schema).validate(json.load(open(repo + "/schemas/examples/connector.json")))
print("valid")
EOF
)" valid
fi

# ---- 1. one batch, every kind of answer ---------------------------------------------
RETRY_DATE=$(python3 -c 'import email.utils, time; print(email.utils.formatdate(time.time() + 30, usegmt=True))')
control "$(jq -nc --arg date "$RETRY_DATE" '{rules: [
  {prefix: "/campaign/c-400", status: 400}, {prefix: "/campaign/c-401", status: 401},
  {prefix: "/campaign/c-403", status: 403}, {prefix: "/campaign/c-404", status: 404},
  {prefix: "/campaign/c-409", status: 409}, {prefix: "/campaign/c-422", status: 422},
  {prefix: "/campaign/c-429", status: 429, retry_after: "7"},
  {prefix: "/campaign/c-503", status: 503, retry_after: $date},
  {prefix: "/campaign/c-500", status: 500}, {prefix: "/campaign/c-hang", hang: true},
  {prefix: "/campaign/c-echo", echo: true},
  {prefix: "/campaign/c-text", status: 502, body_text: "upstream <b>down</b>", content_type: "text/html"},
  {prefix: "/campaign/c-302", status: 302, headers: {Location: "http://127.0.0.1:1/elsewhere"}}]}')"
{
  act a01 config_change campaigns c-ok budget_daily 1250 '"idempotency_key":"budget/c-ok/2026-01-15"'
  act a02 config_change campaigns "cmp/5 x" budget_daily 17.05
  act a03 config_change campaigns 23 bidding_strategy '"target_roas"'
  act a04 config_change campaigns c-seg target_segment '{"include":["AUD5"],"exclude":[]}'
  act a05 pause campaigns c-seg target_segment '{"include":["AUD3"]}'
  for code in 400 401 403 404 409 422 429 503 500; do
    act "s$code" config_change campaigns "c-$code" budget_daily 100
  done
  act a15 config_change campaigns c-hang budget_daily 100
  act a16 config_change crm seq-1 max_touches 5
  act a17 scale campaigns c-clamped budget_daily 2000 '"_apply_value":1300'
  act a18 config_change campaigns c-badseg target_segment '{"exclude":["AUD9"]}'
  act a19 pause campaigns c-status status '"paused"'
  act a20 config_change campaigns c-echo budget_daily 100
  act a21 experiment campaigns c-exp budget_daily '{"variants":[]}'
  act a22 config_change campaigns c-text budget_daily 100
  act a23 config_change campaigns c-302 budget_daily 100
} >"$TMP/batch1.jsonl"
drive --timeout-ms 1500 "$CONFIG" "$TMP/batch1.jsonl"
check "batch 1 runs" "$?" 0
check "batch 1: one result per action" "$(jq -s 'map(select(.action_id)) | length' "$OUT")" 23

# what each action came to
expect() { # expect ID OUTCOME ERROR_CLASS HTTP_STATUS
  check "$1: outcome/class/status" "$(result "$1" '[.outcome, .error_class, .http_status] | join(" ")')" "$2 $3 $4"
}
expect a01 executed "" 200
expect a02 executed "" 200
expect a03 executed "" 200
expect a04 executed "" 200
expect a05 executed "" 200
expect s400 rejected http_400 400
expect s401 permission_denied http_401 401
expect s403 permission_denied http_403 403
expect s404 rejected http_404 404
expect s409 rejected http_409 409
expect s422 rejected http_422 422
expect s429 transient http_429 429
expect s503 transient http_503 503
expect s500 transient http_500 500
expect a15 transient timeout 0
expect a16 executed "" 200
expect a17 executed "" 200
expect a18 rejected template 0
expect a19 rejected no_route 0
expect a20 executed "" 200
expect a21 rejected no_route 0
expect a22 transient http_502 502
expect a23 rejected http_302 302
check "429: Retry-After seconds kept" "$(result s429 .retry_after_s)" 7
check_true "503: Retry-After HTTP-date read as ~30 s (got $(result s503 .retry_after_s))" \
  between "$(result s503 .retry_after_s)" 25 31
check "500: no Retry-After" "$(result s500 .retry_after_s)" -1
check_true "hang: timed out after the 1500 ms timeout, within 1 s of slack (took $(result a15 .duration_ms))" \
  between "$(result a15 .duration_ms)" 1450 2500
check "hang: the error says so" "$(result a15 .error)" \
  "PATCH $BASE/campaign/c-hang: no answer within 1500 ms"
check "400: the response body is parsed JSON" "$(result s400 .response.error)" "http_target answered 400"
check "502 text/html: the response body kept as a string" "$(result a22 .response)" "upstream <b>down</b>"
check "template: names route, part and placeholder" "$(result a18 .error)" \
  "cannot build the request: segment-activate: body: the action's value.include.0 is missing"
check "no route: not an HTTP action" "$(result a19 '.route // "none"')" none
check "segment pause takes the deactivate route" "$(result a05 .route)" segment-deactivate
check "the result's request has no credentials" "$(result a01 '.request.headers | keys | join(",")')" \
  "x-actionpool-tenant,x-sandbox-name"
check "an echoed bearer token is starred out of the response" \
  "$(result a20 '.response.request.headers.Authorization | test("^Bearer \\*+$")')" true
check "an echoed API key is starred out of the response" \
  "$(result a20 '.response.request.headers["x-api-key"] | test("^\\*+$")')" true
BATCH_MS=$(jq -r 'select(.batch_ms) | .batch_ms' "$OUT")
check_true "batch 1 ran concurrently: bounded by the hang's timeout, not the sum (took $BATCH_MS ms)" \
  between "$BATCH_MS" 1450 2600

# what the target received
check "target: one request per routable action (20 of 23)" "$(recorded length)" 20
check "target: every Idempotency-Key distinct" "$(recorded '[.[].headers["Idempotency-Key"]] | unique | length')" 20
req() { recorded "[.[] | select($1)][0] | $2"; }
check "budget: PATCH /campaign/{id}" "$(req '.path == "/campaign/c-ok"' .method)" PATCH
check "budget: body with the value as a JSON number" "$(req '.path == "/campaign/c-ok"' '.json | tojson')" \
  '{"budget":{"allocated":1250,"currency":"INR","period":"daily"}}'
check "budget: Idempotency-Key is the action's (tenant-scoped)" \
  "$(req '.path == "/campaign/c-ok"' '.headers["Idempotency-Key"]')" "acme:budget/c-ok/2026-01-15"
check "derived Idempotency-Key" "$(req '.path == "/campaign/cmp%2F5%20x"' '.headers["Idempotency-Key"]')" \
  "acme:campaigns:a02"
check "URL path substitutions are percent-encoded" \
  "$(req '.path | startswith("/campaign/cmp")' .path)" "/campaign/cmp%2F5%20x"
check "a real is sent in its shortest exact form" "$(req '.path == "/campaign/cmp%2F5%20x"' .body)" \
  '{"budget":{"allocated":17.05,"currency":"INR","period":"daily"}}'
check "budget: Authorization: Bearer <token>" "$(req '.path == "/campaign/c-ok"' '.headers.Authorization')" \
  "Bearer $ACTIONPOOL_ADOBE_TOKEN"
check "budget: x-api-key" "$(req '.path == "/campaign/c-ok"' '.headers["x-api-key"]')" "$ACTIONPOOL_ADOBE_API_KEY"
check "Content-Type / User-Agent / Accept" \
  "$(req '.path == "/campaign/c-ok"' '[.headers["Content-Type"], .headers["User-Agent"], .headers.Accept] | join(" ")')" \
  "application/json actionpool/0.1 application/json"
check "connector header with a placeholder" "$(req '.path == "/campaign/c-ok"' '.headers["x-actionpool-tenant"]')" acme
check "bidding: PATCH /adGroups/{id}/bidding with the strategy" \
  "$(req '.path == "/adGroups/23/bidding"' '[.method, (.json | tojson)] | join(" ")')" \
  'PATCH {"biddingStrategy":"target_roas","changeRef":"actionpool:a03"}'
check "segment activate: POST /data/core/ups/segment/jobs" \
  "$(req '.json.action == "activate"' '[.method, .path, (.json | tojson)] | join(" ")')" \
  'POST /data/core/ups/segment/jobs {"segmentId":"AUD5","action":"activate","campaignId":"c-seg","destinations":["google-ads","meta-ads"]}'
check "segment deactivate (pause)" "$(req '.json.action == "deactivate"' '.json | tojson')" \
  '{"segmentId":"AUD3","action":"deactivate"}'
check "crm: PUT with a query and its own connector" \
  "$(req '.path == "/sequences/seq-1/settings"' '[.method, .raw_path, (.json | tojson)] | join(" ")')" \
  'PUT /sequences/seq-1/settings?field=max_touches {"max_touches":5,"tenant":"acme"}'
check "crm: its own token, no API key" \
  "$(req '.path == "/sequences/seq-1/settings"' '[.headers.Authorization, (.headers["x-api-key"] // "none")] | join(" ")')" \
  "Bearer $ACTIONPOOL_CRM_TOKEN none"
check "crm: route header with placeholders" \
  "$(req '.path == "/sequences/seq-1/settings"' '.headers["X-Change-Reason"]')" "actionpool config_change a16"
check "a value given by the caller (clamped) replaces proposed_change.value" \
  "$(req '.path == "/campaign/c-clamped"' .json.budget.allocated)" 1300
check "3xx is not followed" "$(recorded '[.[] | select(.path == "/elsewhere")] | length')" 0
check_true "no secret in the driver's stdout or stderr" no_secret_in "$OUT" "$ERR"

# ---- 2. concurrency and kept-alive connections ----------------------------------------
control '{"clear_requests": true, "rules": [{"prefix": "/campaign/slow-", "delay_ms": 200}]}'
for i in $(seq -w 1 20); do act "slow$i" config_change campaigns "slow-$i" budget_daily 100; done \
  >"$TMP/slow.jsonl"
drive --timeout-ms 5000 --repeat 2 "$CONFIG" "$TMP/slow.jsonl"
check "slow batches run" "$?" 0
check "slow: 40 executed" "$(jq -s 'map(select(.outcome == "executed")) | length' "$OUT")" 40
for b in 1 2; do
  MS=$(jq -r --argjson b $b 'select(.batch == $b and .batch_ms) | .batch_ms' "$OUT")
  check_true "slow batch $b: 20 x 200 ms requests took $MS ms (< 1000, sequential would be >= 4000)" \
    between "$MS" 190 999
done
check_true "slow: every request waited its 200 ms" \
  test "$(jq -s 'map(select(.action_id and .duration_ms < 195)) | length' "$OUT")" = 0
PORTS1=$(recorded '[.[:20][].client_port] | unique | length')
NEW2=$(recorded '([.[20:][].client_port] - [.[:20][].client_port]) | length')
check "batch 2 reused batch 1's connections (new connections: $NEW2 of 20; batch 1 opened $PORTS1)" "$NEW2" 0

control '{"clear_requests": true}'
drive --timeout-ms 5000 --max-in-flight 5 "$CONFIG" "$TMP/slow.jsonl"
MS=$(jq -r 'select(.batch_ms) | .batch_ms' "$OUT")
check_true "max-in-flight 5: 20 x 200 ms took $MS ms (4 waves: 800..1999)" between "$MS" 790 1999

# ---- 3. fail twice, then succeed ---------------------------------------------------
control '{"clear_requests": true, "rules": [{"prefix": "/campaign/c-flaky", "fail_times": 2, "fail_status": 503}]}'
act flaky config_change campaigns c-flaky budget_daily 100 >"$TMP/flaky.jsonl"
drive --repeat 3 "$CONFIG" "$TMP/flaky.jsonl"
check "flaky: 503, 503, then executed" \
  "$(jq -rs 'map(select(.action_id)) | map("\(.outcome)/\(.http_status)") | join(" ")' "$OUT")" \
  "transient/503 transient/503 executed/200"
check "flaky: the same Idempotency-Key on every attempt" \
  "$(recorded '[.[].headers["Idempotency-Key"]] | unique | join(" ")')" "acme:campaigns:flaky"

# ---- 4. connection refused, truncated bodies -------------------------------------------
CLOSED=$(free_port)
ACTIONPOOL_ADOBE_BASE_URL=http://127.0.0.1:$CLOSED drive "$CONFIG" "$TMP/flaky.jsonl"
check "refused: transient, class connect" "$(result flaky '[.outcome, .error_class] | join(" ")')" \
  "transient connect"
check_true "refused: fails at once (took $(result flaky .duration_ms) ms)" \
  between "$(result flaky .duration_ms)" 0 999
check_true "refused: the message names the URL" \
  grep -qF "PATCH http://127.0.0.1:$CLOSED/campaign/c-flaky: " <<<"$(result flaky .error)"

control "$(jq -nc --arg big "$(head -c 3000 /dev/zero | tr '\0' x)" \
  '{rules: [{prefix: "/campaign/c-big", body: {filler: $big}}]}')"
act big config_change campaigns c-big budget_daily 100 >"$TMP/big.jsonl"
drive --max-response 100 "$CONFIG" "$TMP/big.jsonl"
check "a long body is truncated to the limit and kept as a string" \
  "$(result big '[.outcome, .response_truncated, (.response | length)] | map(tostring) | join(" ")')" \
  "executed true 100"

# ---- 5. configuration errors ---------------------------------------------------------
mkdir -p "$TMP/conf/secrets"
BAD=$TMP/conf/connector.json
bad() { # bad DESCRIPTION JQ-EDIT EXPECTED-ERROR-SUBSTRING [ENV...]
  jq "$2" "$CONFIG" >"$BAD"
  local msg
  msg=$(env "${@:4}" "$DRIVER" --check --map "$REPO/schemas/executor_map.json" "$BAD" 2>&1)
  echo "$msg" >>"$TMP/config-errors.txt"
  if [[ $msg == *"$3"* ]]; then ok; else fail "config error: $1"; printf '  expected: *%s*\n  actual:   %s\n' "$3" "$msg"; fi
}
bad "bad method" '.routes[2].method = "FETCH"' \
  "driver: $BAD: routes[2].method: must be one of GET, POST, PUT, PATCH, DELETE"
bad "unknown placeholder" '.routes[0].url = "{base_url}/campaign/{entity}"' \
  "$BAD: routes[0].url: unknown placeholder '{entity}'"
bad "unclosed brace in a body" '.routes[1].body.budget.total = "{value"' \
  "$BAD: routes[1].body.budget.total: unclosed '{'"
bad "unknown member" '.routes[1].timout_ms = 5' "$BAD: routes[1]: unknown member 'timout_ms'"
bad "reserved header" '.routes[3].headers = {"Authorization": "x"}' \
  "$BAD: routes[3].headers.Authorization: set by actionpool itself"
bad "unreachable route" '.routes += [.routes[0]]' "$BAD: routes[6]: never used"
bad "field not in the executor map" '.routes[0].field = "budget_weekly"' \
  "$BAD: routes[0].field: 'budget_weekly' is not a field of campaigns"
bad "action type the subsystem refuses" '.routes[5].action_type = ["scale"]' \
  "$BAD: routes[5].action_type: crm does not accept 'scale'"
bad "GET with a body" '.routes[0].method = "GET"' "$BAD: routes[0].body: a GET request has no body"
bad "route to an unknown connector" '.routes[0].connector = "adobee"' \
  "$BAD: routes[0].connector: unknown connector 'adobee'"
bad "base URL not http(s)" '.connectors.crm.base_url = "ftp://x"' \
  "$BAD: connectors.crm.base_url: must be an http:// or https:// URL" ACTIONPOOL_CRM_BASE_URL=
bad "credentials in a base URL" '.connectors.crm.base_url = "https://u:pw@crm.example.com"' \
  "$BAD: connectors.crm.base_url: must be an http:// or https:// URL without credentials" \
  ACTIONPOOL_CRM_BASE_URL=
bad "token variable not set" '.' \
  "$BAD: connectors.adobe.auth.bearer_token_env: environment variable ACTIONPOOL_ADOBE_TOKEN is not set" \
  ACTIONPOOL_ADOBE_TOKEN=
bad "token file missing" '.connectors.adobe.auth = {bearer_token_file: "secrets/none"}' \
  "$BAD: connectors.adobe.auth.bearer_token_file: cannot read '$TMP/conf/secrets/none': No such file or directory"
printf 'abc\001def-%s\n' "$ACTIONPOOL_ADOBE_TOKEN" >"$TMP/conf/secrets/ctl"
bad "token with a control character" '.connectors.adobe.auth = {bearer_token_file: "secrets/ctl"}' \
  "$BAD: connectors.adobe.auth.bearer_token_file: the secret has control characters"
echo '{"connectors": {"a": {"base_url": "http://x"}}, "routes": [' >"$BAD"
MSG=$("$DRIVER" --check "$BAD" 2>&1)
check_true "unparseable file: path:line:column ($MSG)" grep -qE "^driver: $BAD:[0-9]+:[0-9]+: " <<<"$MSG"
check_true "no secret in any configuration error" no_secret_in "$TMP/config-errors.txt"

# a token file, relative to the config's folder, trailing newline trimmed
FILE_TOKEN=filetoken-$(rand)
printf '%s\n' "$FILE_TOKEN" >"$TMP/conf/secrets/adobe"
jq '.connectors.adobe.auth = {bearer_token_file: "secrets/adobe"}' "$CONFIG" >"$BAD"
control '{"clear_requests": true}'
drive "$BAD" "$TMP/flaky.jsonl"
check "token file: Authorization: Bearer <file content>" "$(recorded '.[0].headers.Authorization')" \
  "Bearer $FILE_TOKEN"
check "token file: no API key header when none is configured" "$(recorded '.[0].headers["x-api-key"] // "none"')" none
check_true "token file: the token is not in the driver's output" \
  test "$(grep -cF "$FILE_TOKEN" "$OUT" "$ERR" | awk -F: '{s += $2} END {print s}')" = 0

touch "$TMP/stderr-all.txt"
check "no sanitizer report or runtime error from any driver run" \
  "$(grep -cE 'Sanitizer|runtime error' "$TMP/stderr-all.txt" "$TMP/config-errors.txt" | awk -F: '{s += $2} END {print s}')" 0
check_true "no secret in any driver stderr" no_secret_in "$TMP/stderr-all.txt"

# an absolute route URL (no {base_url}) with placeholders
jq --arg base "$BASE" '.routes[0].url = ($base + "/v2/campaign/{entity_id}/budget")' "$CONFIG" >"$BAD"
control '{"clear_requests": true}'
drive "$BAD" "$TMP/flaky.jsonl"
check "absolute route URL with a placeholder" "$(recorded '.[0].path')" "/v2/campaign/c-flaky/budget"

# ---- the target itself --------------------------------------------------------------
check "the log file holds every recorded request" \
  "$(wc -l <"$TMP/target.jsonl" | tr -d ' ')" "$(jq -s 'map(select(.seq)) | length' "$TMP/target.jsonl")"
check_true "target still running (no crash)" kill -0 "$TARGET_PID"
check "target stderr is empty" "$(cat "$TMP/target.err")" ""

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
