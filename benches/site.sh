#!/usr/bin/env bash
# The residents' pages (issue 25) under load, against GET /healthz on the same server:
# - latency: wrk with one connection (requests one after another: the time a page takes),
#   median and p99;
# - throughput: wrk with 8 connections, requests/s;
# - the server's own time per route from /metrics (yidi_http_request_duration_seconds:
#   mean, and the share of requests within 4 ms, the histogram bucket below 5 ms), which leaves out the client and the socket.
# Release build, SQLite in a temp dir, limits lifted (they would rightly refuse a load
# generator), metrics opened on the same address for the measurement.
#
# Usage: benches/site.sh   (from anywhere; needs wrk and curl). Knobs: DURATION (default
# 10s per row), NO_BUILD=1, PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "benches/site.sh needs $tool" >&2; exit 2; }
done
BIN=target/release/yidi
DURATION=${DURATION:-10s}
PORT=${PORT:-18182}
BASE="http://127.0.0.1:$PORT"
export YIDI_LOG=warn
export YIDI_LIMITS__PER_IP_PER_MINUTE=100000000 YIDI_LIMITS__PER_IP_BURST=100000000
export YIDI_METRICS__OPEN=true
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  cargo build --release --locked --bin yidi >&2
fi
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
$BIN serve --addr "127.0.0.1:$PORT" --database-url "sqlite://$WORK/yidi.db" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 2000); do
  curl -sf -o /dev/null "$BASE/readyz" && break
  kill -0 $PID 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.005
done
IDS=$(curl -sf "$BASE/" | grep -o 'href="/faq/[a-z0-9-]*"' | sed 's|href="/faq/||; s|"||' | sort -u | tr '\n' ' ')
# warm every page (they are rendered once per loaded knowledge)
for id in $IDS; do curl -sf -o /dev/null "$BASE/faq/$id"; done

# "median p99 req/s" of a wrk report
summary() {
  local f=$1
  local p50 p99 rps
  p50=$(awk '$1 == "50%" {print $2}' "$f")
  p99=$(awk '$1 == "99%" {print $2}' "$f")
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$f")
  echo "$p50 $p99 $rps"
}
row() {
  local name=$1
  shift
  wrk -t1 -c1 -d"$DURATION" --latency "$@" >"$WORK/one.txt"
  wrk -t2 -c8 -d"$DURATION" --latency "$@" >"$WORK/eight.txt"
  read -r p50 p99 _ < <(summary "$WORK/one.txt")
  read -r _ _ rps < <(summary "$WORK/eight.txt")
  local errors
  errors=$({ grep -h "Non-2xx" "$WORK/one.txt" "$WORK/eight.txt" || true; } | awk '{s += $NF} END {print s + 0}')
  echo "| $name | $p50 | $p99 | $rps | $errors |"
}
echo "| request | median (1 connection) | p99 (1 connection) | requests/s (8 connections) | non-2xx |"
echo "|---|---|---|---|---|"
row '`GET /healthz`' "$BASE/healthz"
row '`GET /` (home)' "$BASE/"
row '`GET /faq/{id}` (every entry in turn)' -s benches/load/pages.lua "$BASE" -- $IDS
row '`GET /faq?q=…` (search page, 8 questions)' -s benches/load/search.lua "$BASE" -- '/faq?q='
row '`GET /tools/estimate` (empty form)' "$BASE/tools/estimate"
echo
echo "Server time per route (/metrics: mean, share of requests within 4 ms, the histogram bucket below 5 ms):"
curl -sf "$BASE/metrics" | awk '
  /^yidi_http_request_duration_seconds_(sum|count|bucket)/ {
    match($0, /route="[^"]*"/); route = substr($0, RSTART + 7, RLENGTH - 8)
    if (route !~ /^\/(healthz|faq|faq\/\{id\}|tools\/estimate)?$/) next
    if ($0 ~ /_sum/) sum[route] = $NF
    else if ($0 ~ /_count/) count[route] = $NF
    else if ($0 ~ /le="0.004"/) under[route] += $NF
  }
  END {
    for (r in count) if (count[r] > 0)
      printf "- %s: mean %.3f ms over %d requests, %.2f%% within 4 ms\n", r, 1000 * sum[r] / count[r], count[r], 100 * under[r] / count[r]
  }'
