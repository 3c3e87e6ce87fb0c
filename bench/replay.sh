#!/usr/bin/env bash
# bench/replay.sh — Postgres' CPU per item of recording captured batches, alone.
#
# Replays the batches a run's workers sent (bench/run.sh --capture) through
# ap_record_batch into a fresh database, one transaction per batch in one
# backend, as a worker sends them, and reads that backend's CPU from /proc
# before and after: no Kafka, no workers, none of a full run's ±10 % noise,
# so a change to the SQL can be measured to within a few per cent. Each
# variant (an SQL file run after the migrations, as run.sh --sql) is replayed
# alternately with the migrations alone ("base"), --repeat times.
#
# Usage: bench/replay.sh [--repeat R] [--batches N] [--floor] BATCHES [SQL...]
#   BATCHES    bench/results/<stamp>-batched-batches.txt (one JSON array a line)
#   SQL        variants to compare with the base
#   --repeat R replays of each, alternated (3); the table gives the best and the median
#   --batches N the first N batches (all)
#   --floor    also the floor of the writes: the rows each base replay wrote,
#              COPYed back batch by batch (one transaction each) into a fresh
#              database with the same tables and indexes; no judge, no batch
#              to parse, the cheapest way Postgres has to write them
# Uses the local stack (deploy/local/stack.sh up, as make demo; AP_*_PORT and
# AP_STACK_DIR choose it), in databases replay_* that it drops again. Postgres
# as the stack runs it (fsync, synchronous_commit on).
# Output: per variant, CPU µs per item of the backend (best and median),
# wall µs per item, WAL bytes per item. Exit: 0 done; 1 a replay failed; 2 usage.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STACK=$REPO/deploy/local/stack.sh
BIN=${AP_BIN:-$REPO/bin}
REPEAT=3
LIMIT=''
FLOOR=0

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { printf 'replay: %s\n' "$*" >&2; exit 1; }
say() { printf 'replay: %s\n' "$*" >&2; }

while (($#)); do
  case $1 in
    --repeat) REPEAT=${2:?}; shift ;;
    --batches) LIMIT=${2:?}; shift ;;
    --floor) FLOOR=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
(($# >= 1)) || { usage >&2; exit 2; }
BATCHES=$(realpath "$1") && [[ -r $BATCHES ]] || { say "cannot read batches '$1'"; exit 2; }
shift
declare -a VARIANTS=(base)
for f in "$@"; do
  [[ -r $f ]] || { say "cannot read '$f'"; exit 2; }
  VARIANTS+=("$(realpath "$f")")
done
for v in REPEAT ${LIMIT:+LIMIT}; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { say "${v/LIMIT/--batches} must be a positive integer"; exit 2; }
done
[[ -x $BIN/actionpool-ctl ]] || die "$BIN/actionpool-ctl not found: build first (make all)"
command -v python3 >/dev/null || die "python3 not found"

"$STACK" up >/dev/null || die "cannot start the local stack"
PG_PORT=${AP_PG_PORT:-5432}
PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ap-replay.XXXX")
trap 'rm -rf "$WORK"; pg postgres postgres -c "drop database if exists replay_run" -c "drop database if exists replay_floor" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
READ=(cat "$BATCHES")
[[ -z $LIMIT ]] || READ=(head -n "$LIMIT" "$BATCHES")
ITEMS=$("${READ[@]}" | python3 -c 'import json, sys; print(sum(len(json.loads(l)) for l in sys.stdin))') ||
  die "the batches are not JSON arrays, one a line"
say "$("${READ[@]}" | wc -l) batches, $ITEMS items; Postgres $PG_PORT; $REPEAT rounds"

# pg USER DB ARGS...: the server's own psql.
pg() { PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$1" -d "$2" "${@:3}"; }

# fresh_db NAME [SQL]: the database NAME, new, migrated (+ SQL).
fresh_db() {
  pg postgres postgres -c "drop database if exists $1" -c "create database $1 owner actionpool" >/dev/null &&
    ACTIONPOOL_PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=$1 user=actionpool" \
      "$BIN/actionpool-ctl" migrate --sql-only >"$WORK/migrate.log" 2>&1 &&
    { [[ -z ${2:-} ]] || pg actionpool "$1" -f "$2" >>"$WORK/migrate.log" 2>&1; } ||
    { cat "$WORK/migrate.log" >&2; return 1; }
}

# timed DB SCRIPT: runs the psql SCRIPT in one backend of DB after a
# checkpoint; prints "cpu_us wall_us wal_bytes" per item.
timed() {
  pg postgres "$1" -c checkpoint || return 1
  {
    # \! does not expand psql variables: they reach the shell through \setenv
    echo 'select pg_backend_pid() as pid, pg_current_wal_lsn() as lsn0 \gset'
    echo '\setenv BACKEND :pid'
    echo "\\! echo \$(cut -d' ' -f14,15 /proc/\$BACKEND/stat) \$(date +%s.%N) >$WORK/t0"
    cat "$2"
    echo "\\! echo \$(cut -d' ' -f14,15 /proc/\$BACKEND/stat) \$(date +%s.%N) >$WORK/t1"
    echo "select pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn0') as wal \\gset"
    echo '\setenv WAL :wal'
    echo "\\! echo \$WAL >$WORK/wal"
  } >"$WORK/timed.sql"
  pg actionpool "$1" -f "$WORK/timed.sql" >/dev/null || return 1
  local u0 s0 w0 u1 s1 w1
  read -r u0 s0 w0 <"$WORK/t0" && read -r u1 s1 w1 <"$WORK/t1" || return 1
  awk -v c=$(((u1 + s1 - u0 - s0) * 1000000 / $(getconf CLK_TCK))) -v w0="$w0" -v w1="$w1" \
    -v wal="$(cat "$WORK/wal")" -v n="$ITEMS" 'BEGIN { printf "%.1f %.1f %.0f\n", c / n, (w1 - w0) * 1e6 / n, wal / n }'
}

# replay VARIANT: the batches through ap_record_batch; prints timed's figures.
replay() {
  local sql=''
  [[ $1 == base ]] || sql=$1
  fresh_db replay_run "$sql" || return 1
  pg actionpool replay_run -c 'create table replayed (seq serial primary key, items text not null)' \
    -c "\\copy replayed (items) from program '${READ[*]}' with (format csv, quote e'\\x01', delimiter e'\\x02')" \
    >/dev/null || return 1 # csv with quote and delimiter never in JSON text: each line as it is
  cat >"$WORK/loop.sql" <<'SQL'
do $$ declare r record; begin
  for r in select items from replayed order by seq loop
    perform ap_record_batch(r.items::jsonb);
    commit;
  end loop;
end $$;
SQL
  timed replay_run "$WORK/loop.sql"
}

# floor: the rows the last replay wrote, batch by batch (a batch's rows share
# received_at, its transaction's now()), COPYed into a fresh database.
floor() {
  local k=0 at
  mkdir -p "$WORK/floor" && rm -f "$WORK"/floor/* || return 1
  pg actionpool replay_run -c 'create index on actions (received_at)' >/dev/null || return 1
  while read -r at; do
    k=$((k + 1))
    echo "\\copy (select * from actions where received_at = '$at' order by id) to '$WORK/floor/a$k'"
    echo "\\copy (select x.* from executions x join actions a on a.id = x.action_pk where a.received_at = '$at' order by x.id) to '$WORK/floor/x$k'"
    echo "\\copy (select s.* from entity_state s join actions a on a.id = s.set_by_action where a.received_at = '$at') to '$WORK/floor/s$k'"
    printf 'begin;\n\\copy actions from %s\n\\copy executions from %s\n\\copy entity_state from %s\ncommit;\n' \
      "$WORK/floor/a$k" "$WORK/floor/x$k" "$WORK/floor/s$k" >>"$WORK/floor/copy.sql"
  done < <(pg actionpool replay_run -A -t -c 'select distinct received_at from actions order by 1') \
    >"$WORK/floor/export.sql"
  pg actionpool replay_run -f "$WORK/floor/export.sql" >/dev/null &&
    fresh_db replay_floor && timed replay_floor "$WORK/floor/copy.sql"
}

declare -A CPU WALL WAL
for ((round = 1; round <= REPEAT; round++)); do
  for v in "${VARIANTS[@]}"; do
    r=$(replay "$v") || die "replaying $v failed"
    read -r cpu wall wal <<<"$r"
    CPU[$v]+="$cpu " WALL[$v]+="$wall " WAL[$v]=$wal
    say "round $round: $(basename "$v"): $cpu µs CPU per item, $wall µs wall, $wal B of WAL"
    if [[ $v == base ]] && ((FLOOR)); then
      r=$(floor) || die "the floor failed"
      read -r cpu wall wal <<<"$r"
      CPU[floor]+="$cpu " WALL[floor]+="$wall " WAL[floor]=$wal
      say "round $round: floor (COPY of the rows): $cpu µs CPU per item, $wall µs wall, $wal B of WAL"
    fi
  done
done

# best VALUES / median VALUES: of a space-separated list (the median: the lower middle one).
best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | head -n 1; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '\n%-40s %12s %12s %12s %10s\n' variant 'CPU µs best' 'CPU median' 'wall median' 'WAL B'
for v in "${VARIANTS[@]}" $( ((FLOOR)) && echo floor); do
  printf '%-40s %12s %12s %12s %10s\n' "$(basename "$v")" "$(best "${CPU[$v]}")" \
    "$(median "${CPU[$v]}")" "$(median "${WALL[$v]}")" "${WAL[$v]}"
done
printf '(%d items; µs per item of one backend; --floor: per item of the replay, its rows COPYed)\n' "$ITEMS"
