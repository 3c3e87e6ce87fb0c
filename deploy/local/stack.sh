#!/usr/bin/env bash
# Local stack on 127.0.0.1 for development and tests, no containers, no mocks:
#   Apache Kafka 3.9.1 (KRaft, one combined broker+controller, Maven Central jars on the JDK),
#   Redis (Debian redis-server) and PostgreSQL (Debian, newest /usr/lib/postgresql/*).
#
# Usage: deploy/local/stack.sh install|up|down|status|env|destroy
#   install  install missing Debian packages (root) and fetch the Kafka jars once
#   up       install if needed, start what is not running, wait until ready, print env
#   down     stop the processes this stack started (by its pid files)
#   status   one line per service; exit 0 iff all three are running and answer
#   env      print export lines:  eval "$(deploy/local/stack.sh env)"
#   destroy  down, then remove AP_STACK_DIR
# Settings (environment): AP_STACK_DIR (default REPO/.stack), AP_CACHE_DIR (default
# ~/.cache/actionpool), AP_KAFKA_PORT (9092), AP_KAFKA_CONTROLLER_PORT (9093),
# AP_REDIS_PORT (6379), AP_PG_PORT (5432).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

KAFKA_VERSION=3.9.1
STACK=${AP_STACK_DIR:-$REPO/.stack}
[[ $STACK == /* ]] || STACK=$PWD/$STACK
CACHE=${AP_CACHE_DIR:-${HOME:?set HOME or AP_CACHE_DIR}/.cache/actionpool}
KAFKA_PORT=${AP_KAFKA_PORT:-9092}
CTRL_PORT=${AP_KAFKA_CONTROLLER_PORT:-9093}
REDIS_PORT=${AP_REDIS_PORT:-6379}
PG_PORT=${AP_PG_PORT:-5432}

KAFKA_LIB=$CACHE/kafka-$KAFKA_VERSION/lib
KDIR=$STACK/kafka
RDIR=$STACK/redis
PDIR=$STACK/pg
PGDATA_DIR=$PDIR/data
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
PACKAGES=(build-essential pkg-config librdkafka-dev libhiredis-dev libjansson-dev
  libcurl4-openssl-dev libpq-dev redis-server postgresql openjdk-17-jdk-headless maven kcat jq
  clang-format)

msg() { printf 'stack: %s\n' "$*" >&2; }
die() { msg "$*"; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

for p in "$KAFKA_PORT" "$CTRL_PORT" "$REDIS_PORT" "$PG_PORT"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || ((10#$p < 1 || 10#$p > 65535)); then die "bad port '$p' in AP_*_PORT"; fi
done
KAFKA_PORT=$((10#$KAFKA_PORT)) CTRL_PORT=$((10#$CTRL_PORT)) REDIS_PORT=$((10#$REDIS_PORT)) PG_PORT=$((10#$PG_PORT))

# fail NAME WHAT LOG...: report a failed service with the first errors and the tail of its
# logs, exit 1.
fail() {
  local name=$1 what=$2 log
  shift 2
  msg "$name: $what; log: $*"
  for log in "$@"; do
    [[ -s $log ]] || continue
    # The cause may be far above the tail (Kafka logs its whole shutdown after it).
    grep -m 5 -E 'ERROR|FATAL' "$log" | sed 's/^/stack: ! /' >&2
    msg "--- tail of $log"
    tail -n 30 "$log" | sed 's/^/stack: | /' >&2
  done
  exit 1
}

# pid_of FILE PATTERN: print the pid in FILE if that process runs and its command
# line contains PATTERN (so a recycled pid is never taken for ours).
pid_of() {
  local pid='' cmd
  [[ -s $1 ]] || return 1
  read -r pid <"$1" || [[ -n $pid ]] || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$2"* ]] || return 1 # a zombie's cmdline is empty
  printf '%s\n' "$pid"
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
need_free() {
  local p
  for p in "${@:2}"; do
    ! port_busy "$p" || die "$1: port $p on 127.0.0.1 is in use by a process this stack did not start"
  done
}

# wait_ready NAME SECONDS ALIVE_FN READY_FN LOG...: poll READY_FN (a real request)
# until it answers; fail at once if ALIVE_FN finds the process gone, or after SECONDS.
wait_ready() {
  local name=$1 secs=$2 alive=$3 ready=$4
  local deadline=$((SECONDS + secs))
  shift 4
  until "$ready"; do
    "$alive" >/dev/null || fail "$name" "process exited while starting" "$@"
    ((SECONDS < deadline)) || fail "$name" "not ready after ${secs}s" "$@"
    sleep 0.25
  done
}

# stop_pid NAME PIDFILE PATTERN: TERM, wait up to 20 s, then KILL; drop the pid file.
stop_pid() {
  local pid i
  if pid=$(pid_of "$2" "$3"); then
    msg "$1: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do
      pid_of "$2" "$3" >/dev/null || break
      sleep 0.25
    done
    if pid_of "$2" "$3" >/dev/null; then
      msg "$1: pid $pid still running after 20s, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$2"
}

# ---------------------------------------------------------------- install

missing_packages() {
  local pkg status
  local -A ok=()
  command -v dpkg-query >/dev/null || die "dpkg-query not found: this script needs Debian"
  while read -r pkg status; do
    if [[ $status == *" installed" ]]; then ok[$pkg]=1; fi
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  for pkg in "${PACKAGES[@]}"; do
    [[ -n ${ok[$pkg]:-} ]] || printf '%s\n' "$pkg"
  done
}

install_packages() {
  local -a missing
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]})) || return 0
  if ! is_root; then
    msg "missing Debian packages: ${missing[*]}"
    msg "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  msg "installing: ${missing[*]}"
  # Keep package scripts from starting their own redis/postgres on the default
  # ports (the Docker policy-rc.d convention), unless a policy is already there.
  (
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  ) >&2 || die "apt-get install failed: ${missing[*]}"
}

# Kafka's classpath, downloaded once into the shared cache by Maven (flock guards
# concurrent first runs; the finished lib/ appears by rename, marked .complete).
fetch_kafka() {
  [[ -e $KAFKA_LIB/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (Debian package maven)"
  mkdir -p "$CACHE"
  (
    flock 8
    [[ -e $KAFKA_LIB/.complete ]] && exit 0
    msg "fetching Kafka $KAFKA_VERSION jars into $KAFKA_LIB (once)"
    work=$(mktemp -d "$CACHE/kafka-$KAFKA_VERSION.tmp.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cp "$HERE/kafka/pom.xml" "$work/pom.xml"
    mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1 ||
      { tail -n 40 "$work/mvn.log" | sed 's/^/stack: | /' >&2; die "maven could not fetch the Kafka jars"; }
    [[ -e $work/lib/kafka_2.13-$KAFKA_VERSION.jar ]] || die "maven did not produce kafka_2.13-$KAFKA_VERSION.jar"
    touch "$work/lib/.complete"
    rm -rf "$KAFKA_LIB"
    mkdir -p "${KAFKA_LIB%/*}"
    mv "$work/lib" "$KAFKA_LIB"
  ) 8>"$CACHE/kafka-$KAFKA_VERSION.lock"
}

cmd_install() {
  install_packages
  fetch_kafka
}

# ---------------------------------------------------------------- kafka

kafka_pid() { pid_of "$KDIR/kafka.pid" "$KDIR/server.properties"; }
kafka_ready() {
  local out
  out=$(kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 5 2>/dev/null) &&
    [[ $out == *"broker 1 at 127.0.0.1:$KAFKA_PORT"* ]]
}

kafka_start() {
  local id
  mkdir -p "$KDIR/data"
  cat >"$KDIR/server.properties" <<EOF
# Generated by deploy/local/stack.sh: one combined KRaft node on 127.0.0.1.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KDIR/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# Fewer internal partitions than the default 50: quicker first group join, smaller footprint.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
EOF
  # C1 only (TieredStopAtLevel=1): on a machine of two CPUs shared with everything else, C2
  # compiled for tens of seconds whenever the load changed, taking 5-7 s of CPU from the first
  # minute of a steady load (bench/README.md, fifth session); C1 code costs the broker no more.
  # Compiler threads that live as long as the JVM: bench/run.sh sums the CPU of those alive,
  # and a thread the JVM stopped when its queue emptied would take its CPU out of that sum.
  local -a jvm=("$JAVA" -Xmx512m -Xms256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -XX:-UseDynamicNumberOfCompilerThreads
    -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$HERE/kafka/log4j.properties" "-Dap.kafka.log=$KDIR/kafka.log"
    -cp "$KAFKA_LIB/*")
  if [[ ! -e $KDIR/data/meta.properties ]]; then
    # Cluster id in Kafka's Uuid format (what StorageTool random-uuid prints:
    # 16 random bytes, URL-safe base64, no padding, not starting with '-'),
    # made here to save a JVM start.
    id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    "${jvm[@]}" kafka.tools.StorageTool format -t "$id" -c "$KDIR/server.properties" \
      >>"$KDIR/kafka.out" 2>&1 || fail kafka "formatting $KDIR/data failed" "$KDIR/kafka.out"
  fi
  nohup setsid "${jvm[@]}" kafka.Kafka "$KDIR/server.properties" \
    </dev/null >>"$KDIR/kafka.out" 2>&1 9>&- &
  echo $! >"$KDIR/kafka.pid"
}

# ---------------------------------------------------------------- redis

redis_pid() { pid_of "$RDIR/redis.pid" redis-server; }
redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  mkdir -p "$RDIR"
  nohup setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize no \
    --dir "$RDIR" --save '' --appendonly no --logfile "$RDIR/redis.log" \
    </dev/null >>"$RDIR/redis.out" 2>&1 9>&- &
  echo $! >"$RDIR/redis.pid"
}

# ---------------------------------------------------------------- postgres

pg_bin() {
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -x $d/postgres ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  printf '%s\n' "$d"
}
# initdb, pg_ctl and postgres refuse root: run them as the postgres OS user then.
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_pid() { pid_of "$PGDATA_DIR/postmaster.pid" "$PGDATA_DIR"; }
pg_sql() {
  "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -X -A -t -q \
    -v ON_ERROR_STOP=1 -c "$1" 2>/dev/null
}
pg_ready() {
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && [[ $(pg_sql 'select 1') == 1 ]]
}

pg_start() {
  local d sock
  mkdir -p "$PDIR"
  if is_root; then
    chown postgres:postgres "$PDIR"
    # postgres must reach its data dir: a mktemp -d parent is 0700.
    d=$STACK
    while [[ $d != / ]]; do
      if ! runuser -u postgres -- test -x "$d"; then
        chmod o+x "$d"
        msg "postgres: chmod o+x $d so the postgres user can reach $PDIR"
      fi
      d=$(dirname "$d")
    done
  fi
  if [[ ! -s $PGDATA_DIR/PG_VERSION ]]; then
    as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale \
      >>"$PDIR/initdb.log" 2>&1 9>&- || fail postgres "initdb failed" "$PDIR/initdb.log"
  fi
  # Unix socket beside the data; none if the path is too long for a socket name.
  sock=$PDIR
  ((${#sock} < 90)) || sock=
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PDIR/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k '$sock' -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" \
    start >>"$PDIR/pg_ctl.log" 2>&1 9>&- ||
    fail postgres "pg_ctl start failed" "$PDIR/pg_ctl.log" "$PDIR/postgres.log"
}

# Role and database 'actionpool' (trust auth, no password); idempotent.
pg_provision() {
  [[ $(pg_sql "select 1 from pg_roles where rolname = 'actionpool'") == 1 ]] ||
    pg_sql 'create role actionpool login' || die "postgres: cannot create role actionpool"
  [[ $(pg_sql "select 1 from pg_database where datname = 'actionpool'") == 1 ]] ||
    pg_sql 'create database actionpool owner actionpool' || die "postgres: cannot create database actionpool"
}

pg_stop() {
  local pid
  pid=$(pg_pid) || return 0
  msg "postgres: stopping pid $pid"
  as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 20 stop >/dev/null 2>&1 ||
    stop_pid postgres "$PGDATA_DIR/postmaster.pid" "$PGDATA_DIR"
}

# ---------------------------------------------------------------- commands

cmd_env() {
  cat <<EOF
export ACTIONPOOL_BROKERS=127.0.0.1:$KAFKA_PORT
export ACTIONPOOL_REDIS_HOST=127.0.0.1
export ACTIONPOOL_REDIS_PORT=$REDIS_PORT
export ACTIONPOOL_PG_DSN='host=127.0.0.1 port=$PG_PORT dbname=actionpool user=actionpool'
EOF
}

# Lock the stack dir for the rest of this run (fd 9; closed for started daemons).
lock_stack() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  flock 9
}

cmd_up() {
  local name how pid port started=()
  cmd_install
  PGBIN=$(pg_bin)
  lock_stack
  touch "$STACK/.actionpool-stack"
  [[ -e $STACK/.gitignore ]] || printf '*\n' >"$STACK/.gitignore"
  # Start what is not running (Kafka first: it is the slowest), then wait for each.
  for name in kafka redis pg; do
    "${name}_pid" >/dev/null || started+=("$name")
  done
  for name in "${started[@]}"; do
    case $name in
      kafka) need_free kafka "$KAFKA_PORT" "$CTRL_PORT" ;;
      redis) need_free redis "$REDIS_PORT" ;;
      pg) need_free postgres "$PG_PORT" ;;
    esac
  done
  for name in "${started[@]}"; do "${name}_start"; done
  wait_ready redis 30 redis_pid redis_ready "$RDIR/redis.log" "$RDIR/redis.out"
  wait_ready postgres 30 pg_pid pg_ready "$PDIR/postgres.log" "$PDIR/pg_ctl.log"
  pg_provision
  wait_ready kafka 90 kafka_pid kafka_ready "$KDIR/kafka.log" "$KDIR/kafka.out"
  for name in kafka redis pg; do
    how=running
    [[ " ${started[*]} " != *" $name "* ]] || how=started
    pid=$("${name}_pid")
    case $name in
      kafka) port="$KAFKA_PORT (controller $CTRL_PORT)" ;;
      redis) port=$REDIS_PORT ;;
      pg) port=$PG_PORT ;;
    esac
    msg "$(printf '%-8s %-7s 127.0.0.1:%s pid %s' "${name/#pg/postgres}" "$how" "$port" "$pid")"
  done
  msg "data and logs under $STACK"
  cmd_env
}

cmd_down() {
  [[ -d $STACK ]] || return 0
  lock_stack
  stop_pid kafka "$KDIR/kafka.pid" "$KDIR/server.properties"
  stop_pid redis "$RDIR/redis.pid" redis-server
  pg_stop
}

cmd_status() {
  local all=0 pid
  PGBIN=$(pg_bin 2>/dev/null) || PGBIN=/nonexistent
  if pid=$(kafka_pid) && command -v kcat >/dev/null && kafka_ready; then
    printf 'kafka     running  127.0.0.1:%s  pid %s\n' "$KAFKA_PORT" "$pid"
  else
    printf 'kafka     stopped  127.0.0.1:%s\n' "$KAFKA_PORT"
    all=1
  fi
  if pid=$(redis_pid) && redis_ready; then
    printf 'redis     running  127.0.0.1:%s  pid %s\n' "$REDIS_PORT" "$pid"
  else
    printf 'redis     stopped  127.0.0.1:%s\n' "$REDIS_PORT"
    all=1
  fi
  if pid=$(pg_pid) && pg_ready; then
    printf 'postgres  running  127.0.0.1:%s  pid %s\n' "$PG_PORT" "$pid"
  else
    printf 'postgres  stopped  127.0.0.1:%s\n' "$PG_PORT"
    all=1
  fi
  return "$all"
}

cmd_destroy() {
  cmd_down
  [[ -d $STACK ]] || return 0
  case $STACK in
    / | "${HOME:-}" | "$REPO" | "$CACHE") die "refusing to remove $STACK" ;;
  esac
  # Only a dir this script made (marker) or an empty one (e.g. a fresh mktemp -d).
  if [[ -e $STACK/.actionpool-stack ]] || [[ -z $(find "$STACK" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit) ]]; then
    rm -rf "$STACK"
    msg "removed $STACK"
  else
    die "refusing to remove $STACK: it is not a stack dir (no .actionpool-stack marker)"
  fi
}

usage() { sed -n '6,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }

case ${1:-} in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  destroy) cmd_destroy ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
