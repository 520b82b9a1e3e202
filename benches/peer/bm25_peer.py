#!/usr/bin/env python3
"""The Python yardstick of issue 12: a day-one FAQ bot, jieba + rank_bm25.

One BM25 document per FAQ entry (its question, variants and answer), built from the
`yidi faq --json` lines. Reads one query per line on stdin and writes, per query, one JSON
line with the three best entry ids, as `yidi search --json` does. Benchmark only.

    yidi faq --json > entries.jsonl
    python bm25_peer.py entries.jsonl < queries.txt
"""

import json
import sys

import jieba
from rank_bm25 import BM25Okapi


def tokens(text):
    return [t for t in jieba.lcut(text) if t.strip()]


def main():
    jieba.setLogLevel(60)
    jieba.initialize()
    with open(sys.argv[1], encoding="utf-8") as f:
        entries = [json.loads(line) for line in f if line.strip()]
    ids = [e["id"] for e in entries]
    corpus = [
        tokens(" ".join([e["question"], *e.get("variants", []), e["answer"]]))
        for e in entries
    ]
    bm25 = BM25Okapi(corpus)
    out = sys.stdout
    for line in sys.stdin:
        query = line.rstrip("\n")
        scores = bm25.get_scores(tokens(query))
        top = sorted(range(len(ids)), key=lambda i: -scores[i])[:3]
        hits = [{"id": ids[i], "score": float(scores[i])} for i in top if scores[i] > 0]
        out.write(json.dumps({"query": query, "hits": hits}, ensure_ascii=False) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
