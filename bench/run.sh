#!/usr/bin/env bash
# bench/run.sh — the throughput benchmark of issue 6, on stacks of its own.
#
# For each mode, starts Kafka, Redis and Postgres (deploy/local/stack.sh) on
# free ports in a temporary folder of the mode's own, removed when it ends:
# generates realistic actions (tests/integration/gen_actions.py
# --realistic: all five subsystems, many tenants and entities, ~1% duplicates,
# ~1% invalid), starts K workers, warms them up until every one of them has
# committed a batch, publishes the actions (bench/loadgen.c), waits until the
# last one is committed in Postgres, and measures:
#   throughput   actions / (last Postgres commit - first publish)
#   latency      p50/p95/p99 of created_at (stamped when sent) -> commit
#   CPU          /proc utime+stime of the workers (and of Postgres, Kafka,
#                Redis, the load generator) during the measured phase
#   RSS          the workers' VmHWM, read just before they are stopped
# Commit times are Postgres' own (track_commit_timestamp, turned on here).
#
# Modes: batched  the worker's defaults, over --actions (BENCH_N, 200,000)
#        naive    --batch-size 1: one Redis round trip and one Postgres
#                 transaction per action, over --naive-actions (20,000)
#        latency  batched, offered --rate (5,000/s) for BENCH_SETTLE_S (10 s) and
#                 then --duration (30 s); the percentiles are those of the
#                 actions sent in the --duration part (steady state: the
#                 fresh broker's JIT compiler is busy in the first seconds)
#        http     batched, every action routed to a live HTTP target: a
#                 loopback endpoint (bench/http_sink.c) that answers each
#                 request after BENCH_HTTP_DELAY_MS (5) ms, over --http-actions
#                 (BENCH_HTTP_N, 100,000), each worker with up to
#                 BENCH_HTTP_IN_FLIGHT (256) requests at once (the worker's
#                 --http-max-in-flight; its default, 64, suits a remote platform),
#                 --http-workers K (3: they wait on the endpoint, a third
#                 uses the CPU those waits leave idle)
#
# Usage: bench/run.sh [--actions N] [--naive-actions N] [--rate R] [--duration S]
#                     [--http-actions N] [--workers K] [--http-workers K] [--full]
#                     [--modes batched,naive,latency,http]
#                     [--profile] [--sql FILE] [--capture] [--keep] [--help]
#   --full      the issue's 1,000,000 actions in the batched mode
#   --profile   perf record -a (cpu-clock) during each measured phase, summed
#               by part (workers, postgres, kafka, redis, loadgen, other) and
#               symbol by bench/profile.py, and Postgres' time per statement
#               (pg_stat_statements): bench/results/<stamp>-<mode>-profile.txt
#   --sql FILE  run FILE in each mode's database after the migrations (as the
#               role actionpool), e.g. a new ap_record_batch, to measure a
#               change to the SQL before it lands (BENCH_SQL)
#   --capture   keep every batch the workers send to ap_record_batch:
#               bench/results/<stamp>-<mode>-batches.txt, one JSON array a line,
#               for bench/replay.sh (the copy costs Postgres time: a capturing
#               run's figures are not comparable with others)
#   --keep      keep the work folder (generated actions, logs) for inspection
# Environment: BENCH_N, BENCH_NAIVE_N, BENCH_RATE, BENCH_DURATION,
# BENCH_WORKERS, BENCH_HTTP_WORKERS, BENCH_MODES, BENCH_LINGER_MS (the load
# generator's linger.ms, 20 as actionpool-producer), BENCH_TENANTS (500),
# BENCH_ENTITIES (2,000 per tenant and subsystem), BENCH_SEED (1),
# BENCH_SETTLE_S (10), BENCH_STALL_S (60: a run that records nothing for that
# long fails), BENCH_RESULTS (bench/results), AP_BIN (bin/). Every ACTIONPOOL_*
# variable reaches the workers, e.g.
# ACTIONPOOL_KAFKA_QUEUED_MAX_MESSAGES_KBYTES=1024 tries a consumer setting.
# Results: a table on stdout, bench/results/<UTC stamp>.json.
# Exit: 0 done (the table says which targets were missed, and warns if the
# outcomes in Postgres are not what was generated); 1 the stack, a worker or the
# load generator failed, or the run stalled; 2 usage.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STACK=$REPO/deploy/local/stack.sh
BIN=${AP_BIN:-$REPO/bin}
GEN=$REPO/tests/integration/gen_actions.py
LOADGEN=$REPO/build/bench/loadgen
HTTP_SINK=$REPO/build/bench/http_sink

N=${BENCH_N:-200000}
NAIVE_N=${BENCH_NAIVE_N:-20000}
HTTP_N=${BENCH_HTTP_N:-100000}
HTTP_DELAY_MS=${BENCH_HTTP_DELAY_MS:-5}
HTTP_IN_FLIGHT=${BENCH_HTTP_IN_FLIGHT:-256}
RATE=${BENCH_RATE:-5000}
DURATION=${BENCH_DURATION:-30}
WORKERS=${BENCH_WORKERS:-2}
HTTP_WORKERS=${BENCH_HTTP_WORKERS:-3}
MODES=${BENCH_MODES:-batched,naive,latency,http}
TENANTS=${BENCH_TENANTS:-500}
ENTITIES=${BENCH_ENTITIES:-2000}
SEED=${BENCH_SEED:-1}
STALL_S=${BENCH_STALL_S:-60}
SETTLE_S=${BENCH_SETTLE_S:-10}
RESULTS=${BENCH_RESULTS:-$HERE/results}
DUPLICATES=0.01
INVALID=0.01
WARMUP=200
PROGRESS_S=5
PERF_HZ=499
LINGER_MS=${BENCH_LINGER_MS:-20}
PROFILE=0
CAPTURE=0
KEEP=0
SQL_EXTRA=${BENCH_SQL:-}

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench: %s\n' "$*" >&2; }

while (($#)); do
  case $1 in
    --actions) N=${2:?}; shift ;;
    --naive-actions) NAIVE_N=${2:?}; shift ;;
    --http-actions) HTTP_N=${2:?}; shift ;;
    --rate) RATE=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --workers) WORKERS=${2:?}; shift ;;
    --http-workers) HTTP_WORKERS=${2:?}; shift ;;
    --modes) MODES=${2:?}; shift ;;
    --full) N=1000000 ;;
    --profile) PROFILE=1 ;;
    --sql) SQL_EXTRA=${2:?}; shift ;;
    --capture) CAPTURE=1 ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
for v in N NAIVE_N HTTP_N HTTP_DELAY_MS RATE DURATION WORKERS HTTP_WORKERS TENANTS ENTITIES SEED STALL_S; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { say "$v must be a positive integer, got '${!v}'"; exit 2; }
done
[[ -z $SQL_EXTRA || -r $SQL_EXTRA ]] || { say "--sql: cannot read '$SQL_EXTRA'"; exit 2; }
[[ -z $SQL_EXTRA ]] || SQL_EXTRA=$(cd "$(dirname "$SQL_EXTRA")" && pwd)/$(basename "$SQL_EXTRA")
[[ $SETTLE_S =~ ^[0-9]+$ ]] || { say "BENCH_SETTLE_S must be an integer >= 0, got '$SETTLE_S'"; exit 2; }
IFS=, read -ra MODE_LIST <<<"$MODES"
for m in "${MODE_LIST[@]}"; do
  [[ $m =~ ^(batched|naive|latency|http)$ ]] || { say "unknown mode '$m'"; exit 2; }
done
for b in actionpool-worker actionpool-ctl; do
  [[ -x $BIN/$b ]] || die "$BIN/$b not found: build first (make bench does)"
done
command -v python3 >/dev/null || die "python3 not found"
command -v jq >/dev/null || die "jq not found (make deps installs it)"
((PROFILE == 0)) || command -v perf >/dev/null || die "--profile needs perf (Debian package linux-perf)"

# The server's own psql: Debian's /usr/bin/psql is a Perl wrapper that costs
# ~50 ms of CPU per call, which the progress polling would add to the run.
PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[[ -x $PGBIN/psql ]] || die "PostgreSQL client binaries not found under /usr/lib/postgresql"
CLK_TCK=$(getconf CLK_TCK)
CPUS=$(nproc)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ap-bench.XXXX")
AP_STACK_DIR=''
declare -a WORKER_PIDS=()
LOADGEN_PID='' LOADGEN_LAST_PID='' PERF_PID='' SINK_PID='' STACK_UP=0 DEAD_WORKER='' PG_SETTINGS=''
MODE=setup

# Stops what this script started (by pid), then the stack; removes the folders.
cleanup() {
  local pid
  for pid in "${WORKER_PIDS[@]}" $LOADGEN_PID $PERF_PID $SINK_PID; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  stack_down
  if ((KEEP)); then say "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ the stack

# stack_up: a stack of its own for the mode about to run, in a new folder, so
# that nothing an earlier mode left (its data, topics, dirty pages, a broker
# busy with them) lands in this mode's measurement.
stack_up() {
  AP_STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ap-bench-stack.XXXX")
  export AP_STACK_DIR
  say "$MODE: starting a stack in $AP_STACK_DIR"
  start_stack
  configure_postgres
  PG_SETTINGS=$(pg_admin "select json_object_agg(name, setting) from pg_settings where name in
    ('synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'wal_level',
     'max_wal_size', 'track_commit_timestamp', 'server_version', 'commit_delay')")
  say "$MODE: stack up: kafka 127.0.0.1:$AP_KAFKA_PORT, redis $AP_REDIS_PORT, postgres $AP_PG_PORT"
}

stack_down() {
  if ((STACK_UP)); then "$STACK" destroy >"$WORK/destroy.log" 2>&1 || cat "$WORK/destroy.log" >&2; fi
  STACK_UP=0
  [[ -z $AP_STACK_DIR ]] || rm -rf "$AP_STACK_DIR"
}

start_stack() {
  local base started=0
  for _ in 1 2 3 4 5; do
    base=$((20000 + RANDOM % 12000)) # below the ephemeral ports, as tests/integration/run.sh
    export AP_KAFKA_PORT=$base AP_KAFKA_CONTROLLER_PORT=$((base + 1)) \
      AP_REDIS_PORT=$((base + 2)) AP_PG_PORT=$((base + 3))
    STACK_UP=1
    if "$STACK" up >"$WORK/up.log" 2>&1; then started=1; break; fi
    grep -q 'in use' "$WORK/up.log" || break
  done
  ((started)) || { cat "$WORK/up.log" >&2; die "cannot start the stack"; }
  eval "$("$STACK" env)"
}

pg_admin() {
  "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$AP_PG_PORT" -U postgres -d postgres -c "$1"
}

# Commit timestamps make "committed" Postgres' own commit time rather than the
# transaction start (received_at); with --profile, pg_stat_statements times
# every statement, those inside ap_record_batch too. Needs a restart; the
# options of the first start (port, fsync=on, synchronous_commit=on) are kept
# by pg_ctl restart.
configure_postgres() {
  local data=$AP_STACK_DIR/pg/data
  pg_admin 'alter system set track_commit_timestamp = on' || die "postgres: cannot set track_commit_timestamp"
  if ((PROFILE)); then
    pg_admin "alter system set shared_preload_libraries = 'pg_stat_statements'" ||
      die "postgres: cannot load pg_stat_statements"
  fi
  local -a as_pg=()
  [[ $(id -u) -ne 0 ]] || as_pg=(runuser -u postgres --)
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 restart >"$WORK/pg-restart.log" 2>&1 ||
    { cat "$WORK/pg-restart.log" >&2; die "postgres: restart failed"; }
  [[ $(pg_admin 'show track_commit_timestamp') == on ]] || die "postgres: track_commit_timestamp is not on"
  if ((PROFILE)); then
    pg_admin "alter system set pg_stat_statements.track = 'all'" >/dev/null &&
      pg_admin 'select pg_reload_conf()' >/dev/null || die "postgres: cannot set pg_stat_statements.track"
  fi
}

# statements_reset: forgets the statement times of the mode's database.
statements_reset() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$AP_PG_PORT" -U postgres -d "bench_$MODE" \
    -c 'create extension if not exists pg_stat_statements' -c 'select pg_stat_statements_reset()' \
    >/dev/null 2>&1 || say "$MODE: pg_stat_statements not available"
}
# statements_report COUNT: the statements of the measured phase by total time,
# in microseconds per action (those inside ap_record_batch are counted twice:
# alone and in the call of ap_record_batch itself).
statements_report() {
  "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$AP_PG_PORT" -U postgres -d "bench_$MODE" -c "
    select round((total_exec_time * 1000 / $1)::numeric, 1) as us_per_action, calls,
           round((total_exec_time / calls)::numeric, 3) as ms_per_call,
           left(regexp_replace(query, '\s+', ' ', 'g'), 110) as statement
      from pg_stat_statements
     where dbid = (select oid from pg_database where datname = current_database())
       and query !~* 'pg_stat_statements|actions_id_seq|count\(\*\) from actions'
     order by total_exec_time desc limit 15" 2>&1
}

# ------------------------------------------------------------------ /proc

# ticks PID: utime+stime+cutime+cstime of PID (or PID/task/TID), in clock
# ticks; 0 if it is gone. (cutime: a postmaster's exited backends.)
ticks() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  read -ra f <<<"$stat"
  # f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  echo $((f[11] + f[12] + f[13] + f[14]))
}
pg_pids() {
  local pm
  pm=$(head -n 1 "$AP_STACK_DIR/pg/data/postmaster.pid")
  echo "$pm" $(ps -o pid= --ppid "$pm")
}
pg_ticks() {
  local pid total=0
  for pid in $(pg_pids); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}
# CPU of everything, as one JSON object: workers (array), postgres, kafka (and
# of it, its JIT compiler), redis, and the machine's busy and iowait ticks (/proc/stat).
cpu_snapshot() {
  local -a w=() cpu
  local pid
  for pid in "${WORKER_PIDS[@]}"; do w+=("$(ticks "$pid")"); done
  read -ra cpu </proc/stat
  jq -n --argjson workers "[$(IFS=,; echo "${w[*]}")]" \
    --argjson postgres "$(pg_ticks)" \
    --argjson kafka "$(ticks "$(cat "$AP_STACK_DIR/kafka/kafka.pid")")" \
    --argjson kafka_jit "$(jit_ticks "$(cat "$AP_STACK_DIR/kafka/kafka.pid")")" \
    --argjson redis "$(ticks "$(cat "$AP_STACK_DIR/redis/redis.pid")")" \
    --argjson busy "$((cpu[1] + cpu[2] + cpu[3] + cpu[6] + cpu[7] + cpu[8]))" \
    --argjson iowait "${cpu[5]}" --argjson wall "$(date +%s.%N)" \
    '{workers: $workers, postgres: $postgres, kafka: $kafka, kafka_jit: $kafka_jit, redis: $redis,
      machine_busy: $busy, machine_iowait: $iowait, wall: $wall}'
}
# jit_ticks PID: CPU of a JVM's JIT compiler threads alive now (a young broker
# compiles its hot paths for minutes; that CPU is start-up cost, not cost per
# action). The stack's broker never stops them (deploy/local/stack.sh).
jit_ticks() {
  local t total=0 comm
  for t in /proc/"$1"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    [[ $comm == C[12]\ CompilerThre* ]] && total=$((total + $(ticks "$1/task/${t##*/}")))
  done
  echo "$total"
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------ one mode

sql_file() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$ACTIONPOOL_PG_DSN" -f "$1"; }
sql() { "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 "$ACTIONPOOL_PG_DSN" -c "$1"; }

# worker_logs: the last lines of every worker's log, for a failure report.
worker_logs() {
  local f
  for f in "$WORK"/"$MODE"-worker-*.log "$WORK/$MODE.loadgen.log"; do
    [[ -s $f ]] || continue
    say "--- tail of $(basename "$f")"
    tail -n 6 "$f" | cut -c1-400 | sed 's/^/bench: | /' >&2
  done
}
fail_mode() { say "$MODE: $*"; worker_logs; exit 1; }

# workers_alive: 0 while every worker runs; otherwise DEAD_WORKER says which
# one ended and how.
workers_alive() {
  local pid rc k=0
  for pid in "${WORKER_PIDS[@]}"; do
    k=$((k + 1))
    kill -0 "$pid" 2>/dev/null && continue
    wait "$pid"
    rc=$?
    DEAD_WORKER="worker $k (pid $pid) exited with status $rc"
    ((rc != 0)) || DEAD_WORKER+=" after a clean shutdown: something sent it SIGTERM or SIGINT"
    ((rc <= 128)) || DEAD_WORKER+=" (signal $((rc - 128)))"
    return 1
  done
}

# publish_bg FILE [loadgen flags]: publishes in the background; LOADGEN_PID set.
publish_bg() {
  local file=$1
  shift
  "$LOADGEN" --brokers "$ACTIONPOOL_BROKERS" --prefix "$ACTIONPOOL_TOPIC_PREFIX" \
    --linger-ms "$LINGER_MS" --progress-s 0 "$@" "$file" >"$file.loadgen.json" \
    2>>"$WORK/$MODE.loadgen.log" &
  LOADGEN_PID=$! LOADGEN_LAST_PID=$!
}
publish_wait() {
  local rc
  wait "$LOADGEN_PID"
  rc=$?
  LOADGEN_PID=''
  return "$rc"
}
# publish_ready: waits until the load generator (started with --ready) has read
# its input and waits for the go (SIGUSR1).
publish_ready() {
  local deadline=$((SECONDS + 600))
  until [[ -e $WORK/$MODE.ready ]]; do
    kill -0 "$LOADGEN_PID" 2>/dev/null || { publish_wait; fail_mode "the load generator failed"; }
    ((SECONDS < deadline)) || fail_mode "the load generator is not ready after 600 s"
    sleep 0.1
  done
}

# Publishes small rounds of valid actions until every worker has committed
# some: all of them have joined the group and hold partitions.
warm_up() {
  local round seen count deadline
  for round in 1 2 3 4 5 6 7 8 9 10; do
    python3 "$GEN" --count "$WARMUP" --seed $((SEED + 100 + round)) --prefix "warm$round" \
      --realistic --tenants "$TENANTS" --entities "$ENTITIES" --created-at now \
      >"$WORK/$MODE.warm$round.jsonl" || die "gen_actions.py failed"
    publish_bg "$WORK/$MODE.warm$round.jsonl"
    publish_wait || fail_mode "the load generator failed during the warm-up"
    deadline=$((SECONDS + 60))
    while :; do
      workers_alive || fail_mode "during the warm-up, $DEAD_WORKER"
      count=$(sql "select count(*) from actions where action_id like 'warm$round-%'") ||
        fail_mode "postgres query failed"
      ((count >= WARMUP)) && break
      ((SECONDS < deadline)) || fail_mode "warm-up round $round not committed within 60 s"
      sleep 0.2
    done
    seen=$(sql "select count(distinct e.worker_id) from executions e join actions a on a.id = e.action_pk
                where a.action_id like 'warm$round-%'")
    ((seen >= MODE_WORKERS)) && return 0
    sleep 1
  done
  fail_mode "after 10 warm-up rounds only $seen of $MODE_WORKERS workers commit batches"
}

# http_target_start: the loopback endpoint, and a connector file routing every
# field of the executor map to it (ACTIONPOOL_CONNECTOR_FILE).
http_target_start() {
  local port=''
  "$HTTP_SINK" --delay-ms "$HTTP_DELAY_MS" --port-file "$WORK/http_sink.port" \
    >"$WORK/http_sink.out" 2>&1 &
  SINK_PID=$!
  for _ in $(seq 50); do
    port=$(cat "$WORK/http_sink.port" 2>/dev/null) && [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || fail_mode "the HTTP endpoint did not start"
  jq --arg base "http://127.0.0.1:$port" '{
      connectors: {sink: {base_url: $base}},
      routes: [.subsystems | to_entries[] | .key as $s | .value.fields | keys[] |
               {subsystem: $s, field: ., method: "PATCH", url: "{base_url}/{subsystem}/{entity_id}",
                body: {field: "{field}", value: "{value}"}}]}' \
    "$REPO/schemas/executor_map.json" >"$WORK/connector.json" || fail_mode "cannot write the connector file"
  export ACTIONPOOL_CONNECTOR_FILE=$WORK/connector.json
}

# http_target_stop: stops the endpoint; HTTP_REQUESTS is how many requests it
# answered.
http_target_stop() {
  kill -TERM "$SINK_PID" 2>/dev/null
  wait "$SINK_PID" 2>/dev/null
  SINK_PID=''
  unset ACTIONPOOL_CONNECTOR_FILE
  HTTP_REQUESTS=$(awk '/^answered/ {print $2}' "$WORK/http_sink.out")
  [[ -n $HTTP_REQUESTS ]] || fail_mode "the HTTP endpoint did not say how many requests it answered"
}

# run_mode NAME COUNT BATCH_SIZE RATE [SETTLE_S]: one measured run; writes
# $WORK/NAME.raw.json. Latency percentiles leave out the actions sent in the
# first SETTLE_S seconds (default 0).
run_mode() {
  MODE=$1
  local count=$2 batch=$3 rate=$4 settle=${5:-0} k pid base since est est_prev last_move t0
  local next_progress exact
  local batch_ms=${ACTIONPOOL_BATCH_MS:-50} hwm=() exits=() perf_out=''
  MODE_WORKERS=$WORKERS
  [[ $MODE != http ]] || MODE_WORKERS=$HTTP_WORKERS
  say "$MODE: $count actions, $MODE_WORKERS workers, batch size $batch$( ((rate)) && echo ", offered $rate/s")"
  stack_up

  export ACTIONPOOL_PG_DSN="host=127.0.0.1 port=$AP_PG_PORT dbname=bench_$MODE user=actionpool"
  # Policy as configured by default, but for rate limits that are taken and
  # never bind: with the default 10 an hour per tenant x subsystem most of the
  # load would only be parked, waiting for tokens.
  export ACTIONPOOL_RATE_LIMIT_HOURLY=${ACTIONPOOL_RATE_LIMIT_HOURLY:-1000000} \
    ACTIONPOOL_RATE_LIMIT_DAILY=${ACTIONPOOL_RATE_LIMIT_DAILY:-10000000}
  export ACTIONPOOL_TOPIC_PREFIX=bench_$MODE ACTIONPOOL_GROUP_ID=bench_$MODE-workers
  pg_admin "create database bench_$MODE owner actionpool" || die "cannot create database bench_$MODE"
  "$BIN/actionpool-ctl" migrate >"$WORK/$MODE.migrate.log" 2>&1 ||
    { cat "$WORK/$MODE.migrate.log" >&2; die "$MODE: migrate failed"; }
  if [[ -n $SQL_EXTRA ]]; then
    sql_file "$SQL_EXTRA" >>"$WORK/$MODE.migrate.log" 2>&1 ||
      { tail -n 20 "$WORK/$MODE.migrate.log" >&2; die "$MODE: $SQL_EXTRA failed"; }
  fi
  ((CAPTURE == 0)) || capture_start

  python3 "$GEN" --count "$count" --seed "$SEED" --prefix "$MODE" --realistic \
    --tenants "$TENANTS" --entities "$ENTITIES" --duplicates "$DUPLICATES" --invalid "$INVALID" \
    --created-at now --run-id "bench-$STAMP" --stats "$WORK/$MODE.gen.json" \
    >"$WORK/$MODE.jsonl" || die "gen_actions.py failed"

  [[ $MODE != http ]] || http_target_start
  WORKER_PIDS=()
  # Workers that serve /healthz and /metrics: any free port each, not 8080.
  local help
  help=$("$BIN/actionpool-worker" --help 2>/dev/null)
  if [[ $help == *ACTIONPOOL_HEALTH_PORT* ]]; then
    export ACTIONPOOL_HEALTH_PORT=${ACTIONPOOL_HEALTH_PORT:-0}
  fi
  local -a worker_flags=(--batch-size "$batch")
  [[ $MODE != http ]] || worker_flags+=(--http-max-in-flight "$HTTP_IN_FLIGHT")
  for ((k = 1; k <= MODE_WORKERS; k++)); do
    ACTIONPOOL_WORKER_ID=bench-$MODE-$k "$BIN/actionpool-worker" "${worker_flags[@]}" \
      2>"$WORK/$MODE-worker-$k.log" &
    WORKER_PIDS+=($!)
  done
  warm_up
  base=$(sql "select coalesce(max(id), 0) from actions")

  # The measured phase: from the first send to the last commit. The load
  # generator reads its input first; the clocks start when it is told to send.
  local -a flags=(--stamp --ready "$WORK/$MODE.ready")
  ((rate == 0)) || flags+=(--rate "$rate")
  publish_bg "$WORK/$MODE.jsonl" "${flags[@]}"
  publish_ready
  if ((PROFILE)); then
    perf_out=$WORK/perf.data
    perf record -e cpu-clock -F "$PERF_HZ" -a -o "$perf_out" >"$WORK/perf-record.log" 2>&1 &
    PERF_PID=$!
    sleep 0.5 # perf opens its events
  fi
  pg_pids >"$WORK/$MODE.pgpids"
  ((PROFILE == 0)) || statements_reset
  cpu_snapshot >"$WORK/$MODE.cpu0.json"
  kill -USR1 "$LOADGEN_PID"
  t0=$SECONDS last_move=$SECONDS next_progress=$((SECONDS + PROGRESS_S)) est_prev=0
  local prev_t=$SECONDS prev_est=0
  while :; do
    sleep 0.5
    workers_alive || fail_mode "$DEAD_WORKER"
    if [[ -n $LOADGEN_PID ]] && ! kill -0 "$LOADGEN_PID" 2>/dev/null; then
      publish_wait || fail_mode "the load generator failed"
    fi
    # Cheap progress: ids taken (committed or in flight; a duplicate takes two).
    est=$(sql "select last_value - $base from actions_id_seq where is_called") || est=0
    est=${est:-0}
    if ((est != est_prev)); then last_move=$SECONDS est_prev=$est; fi
    if ((est >= count)); then
      exact=$(sql "select count(*) from actions where id > $base") || exact=0
      ((exact >= count)) && break
    fi
    ((SECONDS - last_move < STALL_S)) || fail_mode "no progress for $STALL_S s ($est of $count recorded)"
    if ((SECONDS >= next_progress)); then
      say "$(printf '%s %4d s: %9d of %d recorded, %6d/s now%s' "$MODE" $((SECONDS - t0)) \
        "$est" "$count" $(((est - prev_est) / (SECONDS - prev_t))) \
        "${LOADGEN_PID:+, still publishing}")"
      prev_t=$SECONDS prev_est=$est next_progress=$((SECONDS + PROGRESS_S))
    fi
  done
  [[ -z $LOADGEN_PID ]] || publish_wait || fail_mode "the load generator failed"
  cpu_snapshot >"$WORK/$MODE.cpu1.json"
  for pid in "${WORKER_PIDS[@]}"; do hwm+=("$(hwm_kb "$pid")"); done
  pg_pids >>"$WORK/$MODE.pgpids"
  local -a groups
  groups=(--group "workers=$(IFS=,; echo "${WORKER_PIDS[*]}")"
    --group "postgres=$(tr -s ' \n' ',' <"$WORK/$MODE.pgpids")"
    --group "kafka=$(cat "$AP_STACK_DIR/kafka/kafka.pid")"
    --group "redis=$(cat "$AP_STACK_DIR/redis/redis.pid")"
    --group "loadgen=$LOADGEN_LAST_PID")
  if [[ -n $PERF_PID ]]; then
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
    PERF_PID=''
    statements_report "$count" >"$WORK/$MODE.statements.txt"
  fi
  for pid in "${WORKER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    exits+=($?)
  done
  WORKER_PIDS=()
  for k in "${exits[@]}"; do ((k == 0)) || fail_mode "a worker exited with status $k on SIGTERM"; done
  local requests=null
  if [[ $MODE == http ]]; then
    http_target_stop
    requests=$HTTP_REQUESTS
  fi

  # One row of Postgres figures over the measured rows.
  since=$(jq -r --argjson settle "$settle" '.first_send + $settle' "$WORK/$MODE.jsonl.loadgen.json") ||
    fail_mode "no report from the load generator"
  sql "
    with m as (
      select status, created_at, received_at, xmin::text as txn,
             pg_xact_commit_timestamp(xmin) as commit_ts,
             -- The commit that first recorded the row: a later update (a revert
             -- marking it rolled_back, a waiting action resumed) gives it a new
             -- xmin, but it keeps received_at, the recording transaction's now(),
             -- which that transaction's rows share.
             coalesce(min(pg_xact_commit_timestamp(xmin)) over (partition by received_at),
                      received_at) as committed
        from actions where id > $base),
    l as (select created_at, extract(epoch from committed - created_at) * 1000 as ms
            from m where created_at >= to_timestamp($since)),
    a as (select extract(epoch from committed - created_at) * 1000 as ms
            from m where created_at is not null)
    select json_build_object(
      'rows', (select count(*) from m),
      'executed', (select count(*) from m where status = 'executed'),
      'rejected', (select count(*) from m where status = 'rejected'),
      'duplicate', (select count(*) from m where status = 'duplicate'),
      'other', (select count(*) from m where status not in ('executed', 'rejected', 'duplicate')),
      'statuses', (select json_object_agg(status, n) from
                     (select status, count(*) as n from m group by status order by status) s),
      'transactions', (select count(distinct txn) from m),
      'commit_ts_rows', (select count(commit_ts) from m),
      'first_commit', (select extract(epoch from min(committed)) from m),
      'last_commit', (select extract(epoch from max(committed)) from m),
      'latency_rows', (select count(*) from l),
      'p50_ms', (select round(percentile_cont(0.50) within group (order by ms)::numeric, 1) from l),
      'p95_ms', (select round(percentile_cont(0.95) within group (order by ms)::numeric, 1) from l),
      'p99_ms', (select round(percentile_cont(0.99) within group (order by ms)::numeric, 1) from l),
      'max_ms', (select round(max(ms)::numeric, 1) from l),
      'settle_s', $settle,
      'all_rows', (select count(*) from a),
      'all_p50_ms', (select round(percentile_cont(0.50) within group (order by ms)::numeric, 1) from a),
      'all_p99_ms', (select round(percentile_cont(0.99) within group (order by ms)::numeric, 1) from a),
      'by_second', (select json_agg(json_build_object('s', s, 'n', n, 'p50_ms', p50, 'p99_ms', p99,
                                                      'max_ms', mx) order by s) from
                     (select floor(extract(epoch from created_at) - $since)::int as s, count(*) as n,
                             round(percentile_cont(0.50) within group (order by ms)::numeric) as p50,
                             round(percentile_cont(0.99) within group (order by ms)::numeric) as p99,
                             round(max(ms)::numeric) as mx
                        from l group by 1) b),
      'autovacuum', (select json_agg(json_build_object('table', relname,
                       'vacuum_s', round(extract(epoch from last_autovacuum)::numeric - $since, 1),
                       'analyze_s', round(extract(epoch from last_autoanalyze)::numeric - $since, 1)))
                       from pg_stat_user_tables
                      where greatest(last_autovacuum, last_autoanalyze) >= to_timestamp($since)))" \
    >"$WORK/$MODE.db.json" ||
    fail_mode "the Postgres figures could not be read"

  jq -n --arg mode "$MODE" --argjson workers "$MODE_WORKERS" --argjson batch "$batch" \
    --argjson batch_ms "$batch_ms" --argjson rate "$rate" --argjson clk "$CLK_TCK" \
    --argjson cpus "$CPUS" \
    --slurpfile gen "$WORK/$MODE.gen.json" --slurpfile lg "$WORK/$MODE.jsonl.loadgen.json" \
    --slurpfile db "$WORK/$MODE.db.json" --slurpfile c0 "$WORK/$MODE.cpu0.json" \
    --slurpfile c1 "$WORK/$MODE.cpu1.json" \
    --argjson hwm "[$(IFS=,; echo "${hwm[*]}")]" --argjson exits "[$(IFS=,; echo "${exits[*]}")]" \
    --argjson requests "$requests" --argjson delay "$HTTP_DELAY_MS" \
    --argjson in_flight "$HTTP_IN_FLIGHT" \
    '{mode: $mode, workers: $workers, batch_size: $batch, batch_ms: $batch_ms, rate: $rate,
      clk_tck: $clk, cpus: $cpus, gen: $gen[0], loadgen: $lg[0], db: $db[0],
      cpu_before: $c0[0], cpu_after: $c1[0], worker_hwm_kb: $hwm, worker_exit: $exits,
      http: (if $requests == null then null
             else {requests: $requests, delay_ms: $delay, in_flight: $in_flight} end)}' \
    >"$WORK/$MODE.raw.json" || die "cannot assemble $MODE.raw.json"
  say "$(python3 "$HERE/report.py" mode "$WORK/$MODE.raw.json")"
  [[ -z $perf_out ]] || profile_report "$perf_out" "${groups[@]}"
  ((CAPTURE == 0)) || capture_save
  stack_down
}

# capture_start: ap_record_batch wrapped, so that each batch is kept as sent.
capture_start() {
  sql "create table captured (seq bigserial primary key, items text not null);
       alter function ap_record_batch(jsonb) rename to ap_record_batch_uncaptured;
       create function ap_record_batch(items jsonb)
       returns table (ord integer, action_pk bigint, outcome text) language sql as \$\$
           insert into captured (items) values (items::text);
           select * from ap_record_batch_uncaptured(items);
       \$\$" >/dev/null || die "$MODE: cannot wrap ap_record_batch for --capture"
}
capture_save() {
  local out=$RESULTS/$STAMP-$MODE-batches.txt
  # psql's own output, not COPY's: the file holds the JSON as it is, no escapes
  "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -v FETCH_COUNT=100 "$ACTIONPOOL_PG_DSN" -o "$out" \
    -c 'select items from captured order by seq' || die "$MODE: cannot save the captured batches"
  say "$MODE: $(wc -l <"$out") batches captured: $out"
}

# profile_report PERF_DATA --group NAME=PIDS...: where the CPU of the mode's
# run went, by part of the benchmark and symbol (bench/profile.py).
profile_report() {
  local data=$1 out=$RESULTS/$STAMP-$MODE-profile.txt
  shift
  {
    echo "# perf record -e cpu-clock -F $PERF_HZ -a during the $MODE run ($STAMP), first send to last commit"
    python3 "$HERE/profile.py" "$data" "$@"
    echo
    echo "== postgres statements (pg_stat_statements, track = all), measured phase"
    cat "$WORK/$MODE.statements.txt"
  } >"$out" 2>&1
  say "profile: $out"
}

# ------------------------------------------------------------------ main

mkdir -p "$RESULTS" "$(dirname "$LOADGEN")"
say "building the load generator"
# shellcheck disable=SC2046
cc -std=c11 -D_DEFAULT_SOURCE -O2 -g -Wall -Wextra -Werror -Wstrict-prototypes \
  -Wmissing-prototypes -Wshadow $(pkg-config --cflags rdkafka jansson) -o "$LOADGEN" \
  "$HERE/loadgen.c" $(pkg-config --libs rdkafka jansson) || die "cannot build $LOADGEN"
cc -std=c11 -O2 -g -Wall -Wextra -Werror -o "$HTTP_SINK" "$HERE/http_sink.c" ||
  die "cannot build $HTTP_SINK"

raws=()
for m in "${MODE_LIST[@]}"; do
  case $m in
    batched) run_mode batched "$N" "${ACTIONPOOL_BATCH_SIZE:-500}" 0 ;;
    naive) run_mode naive "$NAIVE_N" 1 0 ;;
    http) run_mode http "$HTTP_N" "${ACTIONPOOL_BATCH_SIZE:-500}" 0 ;;
    latency) run_mode latency $((RATE * (SETTLE_S + DURATION))) "${ACTIONPOOL_BATCH_SIZE:-500}" \
      "$RATE" "$SETTLE_S" ;;
  esac
  raws+=("$WORK/$m.raw.json")
done

# The checkout's commit (+dirty: uncommitted changes to what the binaries are
# built from); it says nothing about binaries from elsewhere (AP_BIN).
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$REPO" status --porcelain -- common worker producer schemas 2>/dev/null) ]] || commit+="+dirty"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$commit" --arg bin "$BIN" \
  --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
  --argjson cpus "$CPUS" --arg mem "$(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -r)" --arg os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
  --arg rdkafka "$(pkg-config --modversion rdkafka)" --argjson pg "$PG_SETTINGS" \
  --argjson n "$N" --argjson naive_n "$NAIVE_N" --argjson http_n "$HTTP_N" \
  --argjson http_delay "$HTTP_DELAY_MS" --argjson http_in_flight "$HTTP_IN_FLIGHT" \
  --argjson rate "$RATE" --argjson duration "$DURATION" \
  --arg sql "${SQL_EXTRA#"$REPO"/}" --argjson settle "$SETTLE_S" --argjson workers "$WORKERS" --argjson http_workers "$HTTP_WORKERS" --argjson tenants "$TENANTS" --argjson entities "$ENTITIES" \
  '{date: $date, commit: $commit, binaries: $bin,
    machine: {cpu: $cpu, cpus: $cpus, memory: $mem, kernel: $kernel, os: $os,
              colocated: "workers, Kafka 3.9.1, Redis, Postgres and the load generator on one host"},
    versions: {librdkafka: $rdkafka, kafka: "3.9.1"}, postgres: $pg,
    settings: {actions: $n, naive_actions: $naive_n, http_actions: $http_n,
               http_delay_ms: $http_delay, http_in_flight: $http_in_flight, rate: $rate,
               duration_s: $duration,
               settle_s: $settle, extra_sql: (if $sql == "" then null else $sql end),
               workers: $workers, http_workers: $http_workers, tenants: $tenants, entities_per_tenant_subsystem: $entities,
               duplicates: 0.01, invalid: 0.01}}' >"$WORK/meta.json" || die "cannot write meta.json"
python3 "$HERE/report.py" final --meta "$WORK/meta.json" --out "$RESULTS/$STAMP.json" "${raws[@]}"
