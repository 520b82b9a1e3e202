#!/usr/bin/env bash
# Ranking alone, side by side: the share of in-scope questions whose FIRST hit is the right
# entry (whether or not the assistant would answer), for `yidi search --json` and the plain
# jieba + rank_bm25 peer (benches/peer/bm25_peer.py) over the same entries and questions.
# Also yidi's answered recall@1 (`yidi eval`). Prints a markdown table. Benchmark only, not CI.
#
#   benches/ranking-compare.sh [FILE…]   # default: the blind and holdout question sets
#
# A FILE holds JSON lines of {"q", "id"} (id null = out of scope, left out of ranking);
# `alt` ids, where a line has them, count as right too.
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=(tests/data/blind/questions-blind.jsonl tests/data/holdout.jsonl tests/data/holdout2.jsonl
           tests/data/holdout3-real.jsonl ../shared/eval/dev.jsonl ../shared/eval/real-dev.jsonl)
fi
venv=benches/peer/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jieba, rank_bm25' 2>/dev/null; then
    echo "ranking-compare: setting up the Python peer in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r benches/peer/requirements.txt >&2
fi
# YIDI_BIN: a yidi binary to measure instead of building the release one
if [ -z "${YIDI_BIN:-}" ]; then
    cargo build --release --quiet --bin yidi >&2
fi
yidi=${YIDI_BIN:-target/release/yidi}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$yidi" faq --json > "$work/entries.jsonl"
echo "| questions | n | yidi first hit | BM25 peer first hit | yidi answered recall@1 |"
echo "|---|---|---|---|---|"
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    python3 - "$f" "$work" <<'PY'
import json, sys, pathlib
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
rows = [r for r in rows if r.get("id")]
work = pathlib.Path(sys.argv[2])
(work / "q.txt").write_text("".join(r["q"].replace("\n", " ") + "\n" for r in rows), encoding="utf-8")
(work / "want.json").write_text(json.dumps([[r["id"], *r.get("alt", [])] for r in rows]), encoding="utf-8")
PY
    "$yidi" search --json < "$work/q.txt" > "$work/yidi.jsonl"
    "$venv/bin/python" benches/peer/bm25_peer.py "$work/entries.jsonl" < "$work/q.txt" > "$work/peer.jsonl"
    recall=$("$yidi" eval --json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recall_at_1"])')
    python3 - "$f" "$work" "$recall" <<'PY'
import json, sys, pathlib
work = pathlib.Path(sys.argv[2])
want = json.loads((work / "want.json").read_text(encoding="utf-8"))
def first(path):
    return [(json.loads(l)["hits"] or [{}])[0].get("id") for l in open(path, encoding="utf-8")]
y, p = first(work / "yidi.jsonl"), first(work / "peer.jsonl")
n = len(want)
share = lambda got: sum(1 for g, w in zip(got, want) if g in w) / n if n else 0
print(f"| {sys.argv[1]} | {n} | {share(y):.3f} | {share(p):.3f} | {float(sys.argv[3]):.3f} |")
PY
done
