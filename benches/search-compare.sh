#!/usr/bin/env bash
# FAQ search side by side: `yidi search --json` and a Python jieba + rank_bm25 peer
# (benches/peer/bm25_peer.py, in its own virtual environment), over the same queries, one
# process each, start-up subtracted (each is also run on no queries, and that time taken off).
# Prints markdown table rows: yidi µs/query, Python µs/query, ratio. Benchmark only, not CI.
#
#   benches/search-compare.sh            # header and rows
#   benches/search-compare.sh --rows     # rows only (for benches/compare.sh)
#
# Queries: the in-scope questions of ../shared/eval/dev.jsonl and real-dev.jsonl, then all
# questions of those sets and of tests/data/holdout*.jsonl. yidi reads each list REPEAT_YIDI
# times (default 200), the peer REPEAT_PEER times (default 60), so that the queries, not the
# start-up's jitter, make up most of each run (the peer's start-up, jieba and the BM25 model,
# is over a second; with 20 repeats its jitter moved the peer's figure by a third between
# runs). Each timing is the best of RUNS runs (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
rows_only=false
[ "${1:-}" = "--rows" ] && rows_only=true
REPEAT_YIDI=${REPEAT_YIDI:-200}
REPEAT_PEER=${REPEAT_PEER:-60}
RUNS=${RUNS:-3}
log() { echo "search-compare: $*" >&2; }

venv=benches/peer/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jieba, rank_bm25' 2>/dev/null; then
    log "setting up the Python peer in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r benches/peer/requirements.txt >&2
fi
log "building yidi (release)"
cargo build --release --quiet --bin yidi >&2
yidi=target/release/yidi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$yidi" faq --json > "$work/entries.jsonl"
python3 - "$work" <<'PY'
import json, sys, pathlib
work = pathlib.Path(sys.argv[1])
def cases(path):
    p = pathlib.Path(path)
    if not p.exists():
        return []
    return [json.loads(l) for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
shared = cases("../shared/eval/dev.jsonl") + cases("../shared/eval/real-dev.jsonl")
held = cases("tests/data/holdout.jsonl") + cases("tests/data/holdout2.jsonl")
one_line = lambda c: " ".join(c["q"].split("\n"))
(work / "in_scope.txt").write_text("".join(one_line(c) + "\n" for c in shared if c.get("id")), encoding="utf-8")
(work / "all.txt").write_text("".join(one_line(c) + "\n" for c in shared + held), encoding="utf-8")
PY
: > "$work/empty.txt"

# best wall-clock seconds of RUNS runs of "$@" < $input
best_of() {
    local input=$1; shift
    local best="" t0 t1 t
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s%N)
        "$@" < "$input" > /dev/null
        t1=$(date +%s%N)
        t=$((t1 - t0))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best"
}

# µs per query of "$@" over the query list $1 repeated $2 times (start-up subtracted)
per_query() {
    local list=$1 repeat=$2; shift 2
    local n batch=$work/batch.txt
    : > "$batch"
    for _ in $(seq "$repeat"); do cat "$list" >> "$batch"; done
    n=$(wc -l < "$batch")
    local full empty
    full=$(best_of "$batch" "$@")
    empty=$(best_of "$work/empty.txt" "$@")
    python3 -c "print(f'{max($full - $empty, 0) / 1000 / $n:.1f}')"
}

peer=("$venv/bin/python" benches/peer/bm25_peer.py "$work/entries.jsonl")
if ! $rows_only; then
    echo "| work | yidi | Python jieba + rank_bm25 | ratio |"
    echo "|---|---|---|---|"
fi
for set in in_scope all; do
    n=$(wc -l < "$work/$set.txt")
    log "timing $set ($n queries; yidi × $REPEAT_YIDI, peer × $REPEAT_PEER)"
    y=$(per_query "$work/$set.txt" "$REPEAT_YIDI" "$yidi" search --json)
    p=$(per_query "$work/$set.txt" "$REPEAT_PEER" "${peer[@]}")
    ratio=$(python3 -c "print(f'{$p / $y:.1f}' if $y > 0 else 'n/a')")
    label="one FAQ search, batch ($n $([ "$set" = in_scope ] && echo in-scope || echo evaluation) questions, start-up subtracted)"
    echo "| $label | $y µs/query | $p µs/query | ${ratio}× |"
done
