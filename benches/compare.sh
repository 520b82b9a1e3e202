#!/usr/bin/env bash
# One command for the speed table of docs/performance.md (issue 12): builds the release binary, starts
# `yidi serve`, and measures side by side in one run
#   - FAQ search in batch against a Python jieba + rank_bm25 peer (benches/search-compare.sh),
#   - GET /v1/faq/search against GET /healthz on the same server (wrk, 8 connections),
#   - conversation turns (POST /v1/sessions/{id}/messages, 16 conversations) on SQLite and on
#     PostgreSQL (wrk, one connection per conversation),
#   - start-up to ready and the peak RSS under load,
# then prints the table. The load generator runs on the same machine.
#
# Usage: benches/compare.sh   (from anywhere; needs wrk and curl, and psql plus a PostgreSQL
# on 127.0.0.1:5432 with trust auth and a database `test` for the PostgreSQL row: set PG=0 to
# skip it, PG_URL=postgres://… for another server).
# Knobs: DURATION (wrk seconds per row, default 10s), NO_BUILD=1, PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in wrk curl; do
  if ! command -v $tool >/dev/null; then
    echo "benches/compare.sh needs $tool: apt-get install -y $tool" >&2
    exit 2
  fi
done

BIN=target/release/yidi
DURATION=${DURATION:-10s}
PORT=${PORT:-18181}
PG=${PG:-1}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
BASE="http://127.0.0.1:$PORT"
export YIDI_LOG=warn
# the limits would (rightly) refuse a load generator: lift them for the measurement
export YIDI_LIMITS__PER_IP_PER_MINUTE=100000000 YIDI_LIMITS__PER_IP_BURST=100000000
export YIDI_LIMITS__PER_SESSION_PER_MINUTE=100000000 YIDI_LIMITS__PER_SESSION_BURST=100000000

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  echo "building release…" >&2
  cargo build --release --locked --bin yidi >&2
fi

WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# starts the server on database $1; sets PID and STARTUP_MS (spawn to /readyz answering 200)
start() {
  local t0 t1
  t0=$(date +%s%N)
  $BIN serve --addr "127.0.0.1:$PORT" --database-url "$1" 2>"$WORK/serve.log" &
  PID=$!
  for _ in $(seq 2000); do
    if curl -sf -o /dev/null "$BASE/readyz"; then
      t1=$(date +%s%N)
      STARTUP_MS=$(((t1 - t0) / 1000000))
      return
    fi
    kill -0 $PID 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.002
  done
  echo "the server did not become ready" >&2
  exit 1
}
stop() {
  kill -TERM "$PID"
  wait "$PID" || true
  PID=
}
rss_mb() { echo $(($(ps -o rss= -p "$PID") / 1024)); }
# wrk output → "requests/s p99"
rate() { awk '/^Requests\/sec:/ {print int($2)}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }
non200() { awk '/non-200 replies:/ {print $3}' "$1"; }
peak=0
note_rss() { local r; r=$(rss_mb); ((r > peak)) && peak=$r; true; }

# -- search in batch against the Python peer ------------------------------------------------
search_rows=()
if [[ -x benches/search-compare.sh ]]; then
  echo "running benches/search-compare.sh…" >&2
  while IFS= read -r line; do
    # its table rows, without its header and separator
    [[ "$line" == \|* ]] || continue
    [[ "$line" =~ ^\|[-\ :|]+$ ]] && continue
    [[ "$line" == *"ratio"* && "$line" == *"work"* ]] && continue
    search_rows+=("$line")
  done < <(NO_BUILD=1 benches/search-compare.sh)
else
  search_rows+=("| one FAQ search, batch (vs Python jieba + rank_bm25) | (benches/search-compare.sh missing) | | |")
fi

# -- SQLite: health, HTTP search, turns --------------------------------------------------------
start "sqlite://$WORK/yidi.db"
startup_sqlite=$STARTUP_MS
echo "wrk: /healthz, /v1/faq/search, turns on SQLite (${DURATION} each)…" >&2
wrk -t2 -c8 -d"$DURATION" --latency "$BASE/healthz" >"$WORK/health.txt"
note_rss
wrk -t2 -c8 -d"$DURATION" --latency -s benches/load/search.lua "$BASE" >"$WORK/search.txt"
note_rss
wrk -t16 -c16 -d"$DURATION" --latency -s benches/load/message.lua "$BASE" >"$WORK/sqlite.txt"
note_rss
stop
# a restart on a database with data: what start-up costs in steady state
start "sqlite://$WORK/yidi.db"
startup_again=$STARTUP_MS
stop

# -- PostgreSQL: turns ------------------------------------------------------------------------
if [[ "$PG" == 1 ]]; then
  SCHEMA="yidi_compare_$$"
  psql -q "$PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
  trap 'cleanup; psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1' EXIT
  sep='?'; [[ "$PG_URL" == *\?* ]] && sep='&'
  start "${PG_URL}${sep}options=-c%20search_path%3D$SCHEMA"
  startup_pg=$STARTUP_MS
  echo "wrk: turns on PostgreSQL (${DURATION})…" >&2
  wrk -t16 -c16 -d"$DURATION" --latency -s benches/load/message.lua "$BASE" >"$WORK/pg.txt"
  note_rss
  stop
fi

health=$(rate "$WORK/health.txt")
search=$(rate "$WORK/search.txt")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
# thousands separated by commas, whatever the locale
fmt() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

echo
echo "| work | yidi | peer or limit | ratio |"
echo "|---|---|---|---|"
for row in "${search_rows[@]}"; do echo "$row"; done
echo "| \`GET /v1/faq/search\` (wrk, 8 connections) | $(fmt "$search") req/s | \`GET /healthz\` on the same server $(fmt "$health") req/s | $(pct "$search" "$health") |"
turns=$(rate "$WORK/sqlite.txt")
echo "| \`POST /v1/sessions/{id}/messages\` on SQLite (wrk, 16 conversations) | $(fmt "$turns") turns/s, p99 $(p99 "$WORK/sqlite.txt"), non-2xx $(non200 "$WORK/sqlite.txt") | target ≥ 3,000 turns/s, p99 ≤ 15 ms; \`/healthz\` $(fmt "$health") req/s | $(pct "$turns" "$health") of \`/healthz\` |"
if [[ "$PG" == 1 ]]; then
  turns=$(rate "$WORK/pg.txt")
  echo "| the same on PostgreSQL (16 connections) | $(fmt "$turns") turns/s, p99 $(p99 "$WORK/pg.txt"), non-2xx $(non200 "$WORK/pg.txt") | target ≥ 2,000 turns/s, p99 ≤ 15 ms | $(pct "$turns" 2000) of target |"
fi
echo "| peak RSS under load | $peak MB | limit 100 MB | $(pct "$peak" 100) |"
echo "| start-up to ready (\`/readyz\` 200), SQLite new / existing file$([[ "$PG" == 1 ]] && echo ' / PostgreSQL') | $startup_sqlite / $startup_again$([[ "$PG" == 1 ]] && echo " / $startup_pg") ms | limit 300 ms | |"
