#!/usr/bin/env bash
# Search as knowledge grows (issue 24): for each number of regions in SIZES (default
# "2 20 300"), a region pack (benches/scale/gen-regions.py; 2 = the shipped knowledge), then
#   - in process (example `scale`): index build, per-query median and p99 over the 315
#     evaluation questions and over up to 2,000 of the region questions (asked with their
#     insured region), the share of region questions whose top answer is the region's own
#     entry, building every shard, RSS;
#   - `yidi search` start-up (no query) and its peak RSS, and per query in batch against the
#     Python peer (benches/peer) over the same entries (`yidi faq --json`), start-up
#     subtracted;
#   - `yidi serve` start-up to /readyz and its RSS once every shard is built.
# Writes target/scale/search.tsv (one row per size) and prints it as a markdown table.
#
# Usage: benches/scale/search.sh   (SIZES="2 20 60 300", NO_BUILD=1, BIN=path to a yidi
# binary to measure instead, PEER=0 to skip the Python peer, FLAT=1: packs without shards,
# one index and classifier over every entry as before issue 24, into search-flat.tsv)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-2 20 300}
OUT=target/scale
mkdir -p "$OUT"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  cargo build --release --bin yidi --example scale >&2
fi
BIN=${BIN:-target/release/yidi}
SCALE=${SCALE:-target/release/examples/scale}
PORT=${PORT:-18231}
venv=benches/peer/.venv
if [[ "${PEER:-1}" == 1 && ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r benches/peer/requirements.txt >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"; [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null || true' EXIT

ms_of() { # wall-clock ms of "$@" < /dev/null, best of 3
  local best="" t0 t1
  for _ in 1 2 3; do
    t0=$(date +%s%N); "$@" < /dev/null > /dev/null; t1=$(date +%s%N)
    t=$(((t1 - t0) / 1000000)); if [[ -z "$best" || $t -lt $best ]]; then best=$t; fi
  done
  echo "$best"
}
per_query_us() { # µs per query of "$@" over $1 (start-up subtracted), best of 2
  local list=$1; shift
  local n full empty best_full="" best_empty="" t0 t1
  n=$(wc -l < "$list")
  for _ in 1 2; do
    t0=$(date +%s%N); "$@" < "$list" > /dev/null; t1=$(date +%s%N)
    full=$((t1 - t0)); if [[ -z "$best_full" || $full -lt $best_full ]]; then best_full=$full; fi
    t0=$(date +%s%N); "$@" < /dev/null > /dev/null; t1=$(date +%s%N)
    empty=$((t1 - t0)); if [[ -z "$best_empty" || $empty -lt $best_empty ]]; then best_empty=$empty; fi
  done
  python3 -c "print(f'{max($best_full - $best_empty, 0) / 1000 / $n:.1f}')"
}

TSV=$OUT/search.tsv
[[ "${FLAT:-0}" == 1 ]] && TSV=$OUT/search-flat.tsv
printf "regions\tentries\tshards\tbuild_ms\tsearch_startup_ms\tsearch_startup_rss_mb\tserve_ready_ms\tserve_rss_warm_mb\tmedian_us\tp99_us\tregion_median_us\tregion_p99_us\tplain_top1\tregion_top1\twarm_all_ms\tbatch_us\tpeer_us\n" > "$TSV"
for n in $SIZES; do
  if [[ $n == 2 ]]; then
    dir=knowledge
  else
    if [[ "${FLAT:-0}" == 1 ]]; then
      dir=$OUT/k${n}flat
      [[ -d $dir ]] || SHARDS=0 python3 benches/scale/gen-regions.py "$n" "$dir"
    else
      dir=$OUT/k$n
      [[ -d $dir ]] || python3 benches/scale/gen-regions.py "$n" "$dir"
    fi
  fi
  echo "== $n regions ($dir)" >&2
  "$SCALE" "$dir" "$dir/eval/regions.jsonl" > "$work/scale.json"
  cat "$work/scale.json" >&2
  startup=$(ms_of "$BIN" --knowledge "$dir" search)
  rss=$( { /usr/bin/time -f %M "$BIN" --knowledge "$dir" search < /dev/null > /dev/null; } 2>&1 | tail -1)
  # the server: ready, then RSS once the background build of every shard is done
  db=$work/serve.db
  rm -f "$db"*
  t0=$(date +%s%N)
  YIDI_LOG=warn,yidi::live=info "$BIN" --knowledge "$dir" serve --addr "127.0.0.1:$PORT" --database-url "sqlite://$db" 2> "$work/serve.log" &
  PID=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.005; done
  ready=$((($(date +%s%N) - t0) / 1000000))
  if [[ $n != 2 && "${FLAT:-0}" != 1 ]]; then
    for _ in $(seq 1200); do
      grep -q "search shards built" "$work/serve.log" && break
      sleep 0.1
    done
  fi
  sleep 0.2
  serve_rss=$(($(ps -o rss= -p "$PID") / 1024))
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  # batch search against the Python peer: the evaluation questions, asked in the shard of
  # their region's name; the peer indexes every entry of the pack
  python3 - "$dir" "$work/q.txt" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
qs = []
for f in ["../shared/eval/dev.jsonl", "../shared/eval/real-dev.jsonl"]:
    qs += [json.loads(l)["q"] for l in pathlib.Path(f).read_text().splitlines() if l.strip()]
reg = d / "eval" / "regions.jsonl"
if reg.exists():
    lines = reg.read_text().splitlines()
    qs += [json.loads(l)["q"] for l in lines[:: max(1, len(lines) // 1000)]]
pathlib.Path(sys.argv[2]).write_text("".join(" ".join(q.split()) + "\n" for q in qs))
PY
  batch="" peer=""
  if [[ "${PEER:-1}" == 1 ]]; then
    "$BIN" --knowledge "$dir" faq --json > "$work/entries.jsonl"
    batch=$(per_query_us "$work/q.txt" "$BIN" --knowledge "$dir" search --json)
    peer=$(per_query_us "$work/q.txt" "$venv/bin/python" benches/peer/bm25_peer.py "$work/entries.jsonl")
  fi
  python3 - "$work/scale.json" "$n" "$startup" "$rss" "$ready" "$serve_rss" "$batch" "$peer" >> "$TSV" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, startup, rss, ready, serve_rss, batch, peer = sys.argv[2:]
row = [n, s["entries"], s.get("shards", 1), round(s["build_ms"]), startup, int(rss) // 1024, ready,
       serve_rss, round(s["median_us"], 1), round(s["p99_us"], 1), round(s["region_median_us"], 1),
       round(s["region_p99_us"], 1), round(s.get("plain_top1_right", 0), 3), round(s["region_top1_right"], 3), round(s.get("warm_all_shards_ms", 0)),
       batch, peer]
print("\t".join(str(x) for x in row))
PY
  tail -1 "$TSV" >&2
done
python3 - "$TSV" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("| " + " | ".join(rows[0]) + " |")
print("|" + "---|" * len(rows[0]))
for r in rows[1:]:
    print("| " + " | ".join(r) + " |")
PY
