# lib.sh — helpers for integration tests. A test is a numbered bash file that
# sources this file; run.sh gives it a running stack (ACTIONPOOL_* and AP_*_PORT
# in the environment). Each test gets its own database, topic prefix, consumer
# group and Redis namespace, so tests never see each other's data.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${AP_BIN:-$REPO/bin}
TEST_NAME=$(basename "$0" .sh)
TEST_ID=t$(echo "$TEST_NAME" | tr -c 'a-z0-9\n' '_' | cut -c1-40)
TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ap-$TEST_ID.XXXX")
declare -A WORKER_PIDS=()
# Checks and failures are counted in files, so that a check made in a
# subshell (a pipeline, a command substitution) still counts.
: >"$TEST_DIR/checks" && : >"$TEST_DIR/failures"

say() { printf '  %s\n' "$*"; }

# Fresh database, topics and Redis keys for this test; applies the migrations.
# Tests of the execution mechanics run with every action at tier 1 and no
# quiet period (the executor map's accepts tiers set to 1, in a copy) and no
# rate limit, so that policy does not hold their load back; `test_begin policy`
# keeps the real map and thresholds.
test_begin() {
  local db=$TEST_ID
  if [[ ${1:-} != policy ]]; then
    mkdir -p "$TEST_DIR/schemas"
    ln -s "$REPO/schemas/sql" "$TEST_DIR/schemas/sql"
    jq '.subsystems[].accepts |= map_values(1)' "$REPO/schemas/executor_map.json" \
      >"$TEST_DIR/schemas/executor_map.json"
    export ACTIONPOOL_SCHEMA_DIR=$TEST_DIR/schemas ACTIONPOOL_TIER1_QUIET_HOURS=0 \
      ACTIONPOOL_TIER1_MIN_CONFIDENCE=0 ACTIONPOOL_TIER1_MIN_IMPACT=0 \
      ACTIONPOOL_RATE_LIMIT_HOURLY=0 ACTIONPOOL_RATE_LIMIT_DAILY=0
  fi
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -h 127.0.0.1 -p "$AP_PG_PORT" -U postgres -d postgres \
    -c "drop database if exists $db" -c "create database $db owner actionpool" >/dev/null ||
    { echo "cannot create database $db"; exit 1; }
  export ACTIONPOOL_PG_DSN="host=127.0.0.1 port=$AP_PG_PORT dbname=$db user=actionpool"
  export ACTIONPOOL_TOPIC_PREFIX=$TEST_ID
  export ACTIONPOOL_GROUP_ID=$TEST_ID-workers
  export ACTIONPOOL_PARTITIONS=${ACTIONPOOL_PARTITIONS:-4}
  export ACTIONPOOL_BATCH_MS=${ACTIONPOOL_BATCH_MS:-20}
  redis-cli -p "$AP_REDIS_PORT" flushall >/dev/null
  "$BIN/actionpool-ctl" migrate >"$TEST_DIR/migrate.out" 2>&1 ||
    { cat "$TEST_DIR/migrate.out"; echo "migrate failed"; exit 1; }
}

# Stops every worker this test started, prints the verdict, exits with it.
test_end() {
  local name checks failures
  for name in "${!WORKER_PIDS[@]}"; do worker_stop "$name"; done
  checks=$(wc -l <"$TEST_DIR/checks") failures=$(wc -l <"$TEST_DIR/failures")
  if ((failures)); then
    echo "FAIL $TEST_NAME: $failures of $checks checks failed (logs in $TEST_DIR)"
    exit 1
  fi
  echo "ok   $TEST_NAME: $checks checks"
  rm -rf "$TEST_DIR"
  exit 0
}

check() { # check DESCRIPTION ACTUAL EXPECTED
  echo "$1" >>"$TEST_DIR/checks"
  if [[ $2 == "$3" ]]; then return 0; fi
  echo "$1" >>"$TEST_DIR/failures"
  say "FAILED: $1"
  say "  expected: $3"
  say "  actual:   $2"
}

check_match() { # check_match DESCRIPTION TEXT EXTENDED-REGEX
  echo "$1" >>"$TEST_DIR/checks"
  if grep -Eq -- "$3" <<<"$2"; then return 0; fi
  echo "$1" >>"$TEST_DIR/failures"
  say "FAILED: $1"
  say "  expected to match: $3"
  say "  actual: $(head -c 2000 <<<"$2")"
}

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$ACTIONPOOL_PG_DSN" -c "$1"; }

# worker_start NAME [flags...]: a worker in the background, logging to TEST_DIR.
worker_start() {
  local name=$1
  shift
  ACTIONPOOL_WORKER_ID=$name ACTIONPOOL_HEALTH_PORT=${ACTIONPOOL_HEALTH_PORT:-0} \
    "$BIN/actionpool-worker" "$@" 2>"$TEST_DIR/$name.log" &
  WORKER_PIDS[$name]=$!
}

# worker_port NAME: the port of the worker's /healthz, /readyz and /metrics.
worker_port() {
  local i
  for i in $(seq 50); do
    grep -o '"health_port":"[0-9]*"' "$TEST_DIR/$1.log" 2>/dev/null | grep -o '[0-9][0-9]*' && return 0
    sleep 0.1
  done
  return 1
}

# wait_ready NAME...: until each worker's /readyz answers 200 (it holds partitions).
wait_ready() {
  local name port i
  for name in "$@"; do
    port=$(worker_port "$name") || { check "worker $name logs its health port" "none" "a port"; return 1; }
    for i in $(seq 150); do
      curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && continue 2
      sleep 0.1
    done
    check "worker $name becomes ready within 15 s" "$(curl -s "http://127.0.0.1:$port/readyz")" "ok"
    return 1
  done
}

# worker_stop NAME [SIGNAL]: signals the worker (TERM by default) and waits.
worker_stop() {
  local name=$1 sig=${2:-TERM} pid=${WORKER_PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  kill -"$sig" "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "WORKER_PIDS[$name]"
}

# Waits until the worker group has committed every message (or fails the test).
wait_drained() {
  local out
  if ! out=$("$BIN/actionpool-ctl" lag --wait "${1:-60}" 2>&1); then
    check "the workers drain their topics within ${1:-60} s" "$out" "(drained)"
    return 1
  fi
}

publish() { "$BIN/actionpool-producer" publish "$@"; }

# wait_sql QUERY VALUE [SECONDS]: until QUERY answers VALUE (default 30 s).
wait_sql() {
  for _ in $(seq $((${3:-30} * 10))); do
    [[ $(sql "$1") == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

# http_target_start [--rule PREFIX=SPEC ...]: the recording HTTP server of
# tests/http_target on a free loopback port, its requests logged to
# $TEST_DIR/requests.jsonl; sets HTTP_TARGET (its pid) and BASE (its URL).
http_target_start() {
  python3 "$REPO/tests/http_target/http_target.py" --port-file "$TEST_DIR/port" \
    --log "$TEST_DIR/requests.jsonl" --max-seconds 300 "$@" >/dev/null 2>"$TEST_DIR/http_target.log" &
  HTTP_TARGET=$!
  for _ in $(seq 100); do [[ -s $TEST_DIR/port ]] && break; sleep 0.1; done
  BASE=http://127.0.0.1:$(cat "$TEST_DIR/port")
}

# produce_raw TOPIC KEY < lines: messages straight onto a topic, as any client could.
produce_raw() {
  kcat -P -b "$ACTIONPOOL_BROKERS" -t "$1" -k "$2" -z none
}

# consume_all TOPIC: every message on TOPIC with its headers, one JSON per line.
consume_all() {
  kcat -C -b "$ACTIONPOOL_BROKERS" -t "$1" -o beginning -e -q -J 2>/dev/null
}
