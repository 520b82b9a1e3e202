#!/usr/bin/env bash
# Turns as history grows (issue 24): for each stored history in SIZES (turns; default
# "0 1000000"), on SQLite and (PG=1, the default) on PostgreSQL, a fresh database filled by
# benches/scale/fill-turns.py (bulk SQL), then conversation turns under wrk
# (benches/load/message.lua, 16 conversations; on PostgreSQL two replicas share the
# database, 8 conversations each): turns/s, p99, database bytes per stored turn.
# With PURGE=1 (default) it also runs the retention purge under load: a database with
# PURGE_TURNS (default 1,000,000) turns older than a year and as many recent ones, turns
# served for PURGE_SECONDS while the servers' own retention purge deletes the old ones (the
# row says how many it deleted meanwhile).
# Appends rows to target/scale/turns.tsv and prints them.
#
# Usage: benches/scale/turns.sh   (SIZES="0 1000000 10000000", DURATION=10s, PG=0, SQLITE=0,
# PG_URL=postgres://postgres@127.0.0.1:5432, NO_BUILD=1, PURGE=0,
# PURGE_SECONDS=30: the load's length while the purge runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-0 1000000}
DURATION=${DURATION:-10s}
PG=${PG:-1}
SQLITE=${SQLITE:-1}
PURGE=${PURGE:-1}
PURGE_TURNS=${PURGE_TURNS:-1000000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
BIN=${BIN:-target/release/yidi}
OUT=target/scale
PORT=${PORT:-18241}
mkdir -p "$OUT"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  cargo build --release --bin yidi >&2
fi
export YIDI_LOG=warn YIDI_RETENTION_DAYS=0
export YIDI_LIMITS__PER_IP_PER_MINUTE=100000000 YIDI_LIMITS__PER_IP_BURST=100000000
export YIDI_LIMITS__PER_SESSION_PER_MINUTE=100000000 YIDI_LIMITS__PER_SESSION_BURST=100000000
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
[[ -f $OUT/turns.tsv ]] || printf "backend\tstored_turns\tturns_per_s\tp99\tmax\tnon2xx\tbytes_per_turn\tfill_s\tnote\n" > "$OUT/turns.tsv"

start() { # start a server on database $1, port $2
  "$BIN" serve --addr "127.0.0.1:$2" --database-url "$1" 2>> "$OUT/serve-turns.log" &
  PIDS+=($!)
  for _ in $(seq 3000); do curl -sf -o /dev/null "http://127.0.0.1:$2/readyz" && return; sleep 0.01; done
  echo "server on $1 not ready" >&2; exit 1
}
stop_all() { cleanup; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
load() { # wrk against port $1 with $2 conversations → $3
  wrk -t"$2" -c"$2" -d"$DURATION" --latency -s benches/load/message.lua "http://127.0.0.1:$1" > "$3"
}
rate() { awk '/^Requests\/sec:/ {print int($2)}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }
maxlat() { awk '$1 == "Latency" {print $4}' "$1"; }
non200() { awk '/non-200 replies:/ {print $3}' "$1"; }
sqlite_bytes() { sqlite3 "$1" "PRAGMA wal_checkpoint(TRUNCATE);" > /dev/null; stat -c %s "$1"; }
pg_bytes() { psql -qAt "$1" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"; }
row() { printf "%s\n" "$*" | tr ' ' '\t' | sed 's/_SP_/ /g' >> "$OUT/turns.tsv"; tail -1 "$OUT/turns.tsv" >&2; }

# -- SQLite --------------------------------------------------------------------------------
base_bytes=""
[[ $SQLITE == 1 ]] || SQLITE_SIZES=""
for size in ${SQLITE_SIZES-$SIZES}; do
  db=$OUT/turns-$size.db
  rm -f "$db" "$db"-*
  "$BIN" purge --days 36500 --database-url "sqlite://$db" > /dev/null  # creates and migrates
  [[ -n "$base_bytes" ]] || base_bytes=$(sqlite_bytes "$db")
  t0=$(date +%s)
  [[ $size -gt 0 ]] && python3 benches/scale/fill-turns.py "sqlite:$db" "$size"
  # the fill does not sync (synchronous = OFF): write it to disk now, or the server's first
  # checkpoints would wait for gigabytes of the fill's writeback
  sync
  fill=$(($(date +%s) - t0))
  bytes=$(sqlite_bytes "$db")
  per=""; [[ $size -gt 0 ]] && per=$(((bytes - base_bytes) / size))
  start "sqlite://$db" "$PORT"
  load "$PORT" 16 "$OUT/wrk.txt"
  stop_all
  row sqlite "$size" "$(rate $OUT/wrk.txt)" "$(p99 $OUT/wrk.txt)" "$(maxlat $OUT/wrk.txt)" "$(non200 $OUT/wrk.txt)" "$per" "$fill" "16_SP_conversations"
  [[ $size -gt 0 ]] && rm -f "$db" "$db"-*
done

# purge under load: half old, half recent; the server's own retention purge (it runs at
# start, then hourly) deletes the old half while 16 conversations are served.
# PURGE_BINS lists the binaries to measure (default: $BIN; add an older one to compare).
old_left() { # $1: a command that runs SQL → old sessions (older than a year) still stored
  "$@" "SELECT COUNT(*) FROM sessions WHERE updated_at < $(( ($(date +%s) - 365 * 86400) * 1000 ))"
}
purge_note() { # $1 old sessions left, $2 seconds of load → what the purge did meanwhile
  local gone=$(( (PURGE_TURNS / 5 - $1) * 5 ))
  echo "${gone}_SP_of_SP_${PURGE_TURNS}_SP_old_SP_turns_SP_purged_SP_during_SP_the_SP_load_SP_($((gone / $2))/s)"
}
PURGE_SECONDS=${PURGE_SECONDS:-30}
if [[ $PURGE == 1 && $SQLITE == 1 ]]; then
  for pbin in ${PURGE_BINS:-$BIN}; do
    db=$OUT/turns-purge.db
    rm -f "$db" "$db"-*
    "$pbin" purge --days 36500 --database-url "sqlite://$db" > /dev/null
    python3 benches/scale/fill-turns.py "sqlite:$db" $((2 * PURGE_TURNS)) "$PURGE_TURNS"
    sync
    : > "$OUT/serve-purge.log"
    YIDI_LOG=warn,yidi::serve=info YIDI_RETENTION_DAYS=365 "$pbin" serve --addr "127.0.0.1:$PORT" --database-url "sqlite://$db" 2> "$OUT/serve-purge.log" &
    PIDS+=($!)
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.01; done
    DURATION=${PURGE_SECONDS}s load "$PORT" 16 "$OUT/wrk.txt"
    stop_all
    left=$(old_left sqlite3 "$db")
    row sqlite-purge "$((2 * PURGE_TURNS))" "$(rate $OUT/wrk.txt)" "$(p99 $OUT/wrk.txt)" "$(maxlat $OUT/wrk.txt)" "$(non200 $OUT/wrk.txt)" "" "" "$(basename "$pbin"):_SP_in-process_SP_purge,_SP_$(purge_note "$left" "$PURGE_SECONDS")"
    rm -f "$db" "$db"-*
  done
fi

# -- PostgreSQL: two replicas ----------------------------------------------------------------
if [[ $PG == 1 ]]; then
  dbname=yidi_scale
  pg_one() { # size old note
    psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $dbname" -c "CREATE DATABASE $dbname" > /dev/null
    local url=$PG_URL/$dbname
    "$BIN" purge --days 36500 --database-url "$url" > /dev/null
    local b0 t0 fill bytes per
    b0=$(pg_bytes "$url")
    t0=$(date +%s)
    [[ $1 -gt 0 ]] && python3 benches/scale/fill-turns.py "$url" "$1" "$2"
    # a history of months has long been vacuumed and analysed; a bulk fill has not, and
    # autovacuum would otherwise run over the fresh millions of rows during the measurement
    psql -qAt "$url" -c "VACUUM ANALYZE" -c CHECKPOINT > /dev/null
    sync
    fill=$(($(date +%s) - t0))
    bytes=$(pg_bytes "$url")
    per=""; [[ $1 -gt 0 ]] && per=$(((bytes - b0) / $1))
    if [[ $3 == purge ]]; then
      # both replicas run the retention purge at start, as they would
      : > "$OUT/serve-turns.log"
      YIDI_RETENTION_DAYS=365 YIDI_LOG=warn,yidi::serve=info start "$url" "$PORT"
      YIDI_RETENTION_DAYS=365 YIDI_LOG=warn,yidi::serve=info start "$url" $((PORT + 1))
      DURATION=${PURGE_SECONDS}s load "$PORT" 8 "$OUT/wrk1.txt" &
      local w1=$!
      DURATION=${PURGE_SECONDS}s load $((PORT + 1)) 8 "$OUT/wrk2.txt"
      wait $w1
    else
      start "$url" "$PORT"
      start "$url" $((PORT + 1))
      load "$PORT" 8 "$OUT/wrk1.txt" &
      local w1=$!
      load $((PORT + 1)) 8 "$OUT/wrk2.txt"
      wait $w1
    fi
    stop_all
    local r p m
    r=$(($(rate $OUT/wrk1.txt) + $(rate $OUT/wrk2.txt)))
    p="$(p99 $OUT/wrk1.txt)/$(p99 $OUT/wrk2.txt)"
    m="$(maxlat $OUT/wrk1.txt)/$(maxlat $OUT/wrk2.txt)"
    if [[ $3 == purge ]]; then
      local left
      left=$(old_left psql -qAt "$url" -c)
      row postgres-purge "$1" "$r" "$p" "$m" "$(($(non200 $OUT/wrk1.txt) + $(non200 $OUT/wrk2.txt)))" "" "" "two_SP_replicas_SP_purging,_SP_$(purge_note "$left" "$PURGE_SECONDS")"
    else
      row postgres "$1" "$r" "$p" "$m" "$(($(non200 $OUT/wrk1.txt) + $(non200 $OUT/wrk2.txt)))" "$per" "$fill" "two_SP_replicas,_SP_8_SP_conversations_SP_each"
    fi
  }
  for size in $SIZES; do pg_one "$size" 0 load; done
  [[ $PURGE == 1 ]] && pg_one $((2 * PURGE_TURNS)) "$PURGE_TURNS" purge
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $dbname" > /dev/null
fi
column -t -s $'\t' "$OUT/turns.tsv"
