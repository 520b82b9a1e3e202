#!/usr/bin/env bash
# Load measurement of `yidi serve` with wrk (Debian package `wrk`): FAQ search over HTTP and
# conversation turns (each a transaction) on SQLite and, with PG=1, on PostgreSQL.
# Usage: benches/load/run.sh   (from the repository root, after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/yidi
DURATION=${DURATION:-20s}
PORT=${PORT:-18181}
export YIDI_LOG=warn
# the limits would (rightly) refuse a load generator: lift them for the measurement
export YIDI_LIMITS__PER_IP_PER_MINUTE=100000000 YIDI_LIMITS__PER_IP_BURST=100000000
export YIDI_LIMITS__PER_SESSION_PER_MINUTE=100000000 YIDI_LIMITS__PER_SESSION_BURST=100000000

measure() {
  local db=$1
  $BIN serve --addr 127.0.0.1:$PORT --database-url "$db" 2>/tmp/yidi-load.log &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
  echo "== $db: GET /v1/faq/search (4 connections, 2 threads)"
  wrk -t2 -c4 -d"$DURATION" --latency "http://127.0.0.1:$PORT/v1/faq/search?q=%E7%A4%BE%E4%BF%9D%E5%8D%A1%E5%9C%A8%E5%A4%96%E5%9C%B0%E5%8C%BB%E9%99%A2%E5%88%B7%E4%B8%8D%E4%BA%86%E6%80%8E%E4%B9%88%E5%8A%9E"
  echo "== $db: POST /v1/sessions/{id}/messages (one conversation per thread)"
  wrk -t4 -c4 -d"$DURATION" --latency -s benches/load/message.lua "http://127.0.0.1:$PORT"
  echo "RSS after load: $(ps -o rss= -p $pid) KiB"
  kill -TERM $pid; wait $pid || true
}

measure "sqlite:///tmp/yidi-load-$$.db"
rm -f /tmp/yidi-load-$$.db*
if [[ "${PG:-0}" == 1 ]]; then
  psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA IF EXISTS yidi_load CASCADE; CREATE SCHEMA yidi_load"
  measure "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Dyidi_load"
  psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA yidi_load CASCADE"
fi
