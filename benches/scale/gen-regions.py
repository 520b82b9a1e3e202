#!/usr/bin/env python3
"""Region packs of realistic scale, for benchmarks only (issue 24). Never shipped as knowledge.

    benches/scale/gen-regions.py N OUT_DIR

writes a knowledge folder OUT_DIR with N insured regions: the two real ones (苏州, 张家港) and
N-2 synthetic ones, made in pairs from the real pair. Pair p is a city (made from 苏州) and a
county-level city inside it (made from 张家港) in a province of its own (made from 江苏): each
pair gets a copy of every entry whose `region` is not `national` (the province's, the city's
and the county's), its region files and policy files, with the names, the towns, the road, the
area code and the town phone numbers changed consistently (the same old name or number gives
the same new one everywhere in the pair). National entries, synonyms, topics, acts… are shared.

With SHARDS=0 the regions carry no `shard` (one index and classifier for all, as before issue
24). Load it with `--knowledge OUT_DIR` (or YIDI_KNOWLEDGE). Also writes OUT_DIR/eval/*.jsonl: the
questions of ../shared/eval/dev.jsonl and real-dev.jsonl asked in each synthetic region (names
changed the same way; the expected id is the region's copy), one JSON line each with the
region the asker is insured in: {"q", "id", "region"}.
"""
import json
import os
import pathlib
import re
import shutil
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
KNOW = ROOT / "knowledge"

# characters that make plausible place names; names that occur anywhere in the real knowledge
# (or jieba would read as a common word) are skipped
FIRST = "安宁平泰昌永兴隆德庆福瑞和嘉康乐丰华盛阳"
SECOND = "川原峰岭泉溪湾阜州陵"
THIRD = "台岗桥城浦塘堡"


def names():
    text = "".join(p.read_text() for p in KNOW.rglob("*.toml"))
    for a in FIRST:
        for b in SECOND:
            n = a + b
            if n not in text:
                yield n


def pairs(count):
    """(city, county, province, towns, road) per pair: every city and county name distinct."""
    text = "".join(p.read_text() for p in KNOW.rglob("*.toml"))
    cities = list(names())
    counties = [a + c + b for a in FIRST for c in THIRD for b in SECOND if a + c + b not in text]
    if count > len(cities):
        sys.exit(f"at most {2 * len(cities) + 2} regions")
    out = []
    for i in range(count):
        city = cities[i]
        county = counties[(i * 37) % len(counties)]
        province = FIRST[(i * 3) % len(FIRST)] + "江"
        towns = [FIRST[(i + k) % len(FIRST)] + THIRD[(i + 2 * k) % len(THIRD)] for k in range(10)]
        road = FIRST[(i * 5 + 1) % len(FIRST)] + SECOND[(i * 3 + 2) % len(SECOND)] + "路"
        out.append((city, county, province, towns, road))
    return out


TOWNS = ["杨舍", "乐余", "塘桥", "凤凰", "金港", "南丰", "锦丰", "大新", "农场", "双山"]


def substitute(text, p, city, county, province, towns, road):
    """The pair's names and numbers in place of the real pair's."""
    area = f"0{600 + p:03d}"
    # town numbers: a digit permutation per pair (the same number stays the same number)
    perm = [(d * 7 + p) % 10 for d in range(10)]
    text = re.sub(
        r"(?<![0-9-])(5[0-9]{7})(?![0-9])",
        lambda m: "5" + "".join(str(perm[int(c)]) for c in m.group(1)[1:]),
        text,
    )
    text = text.replace("0512-", area + "-").replace("0512", area)
    for old, new in zip(TOWNS, towns):
        text = text.replace(old, new)
    text = text.replace("华昌路", road)
    text = text.replace("张家港", county).replace("苏州", city).replace("江苏", province)
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    out = pathlib.Path(sys.argv[2])
    if n < 2 or n % 2:
        sys.exit("N: an even number of regions, at least 2")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(KNOW, out)
    (out / "eval").mkdir()
    npairs = (n - 2) // 2
    # the regional entries: not national; and their ids
    copied = {}
    for f in sorted((KNOW / "faq").glob("*.toml")):
        data = tomllib.loads(f.read_text())
        for e in data.get("faq", []):
            if e["region"] != "national":
                copied[e["id"]] = e["region"]
    eval_lines = []
    for name in ["dev.jsonl", "real-dev.jsonl"]:
        path = ROOT.parent / "shared" / "eval" / name
        eval_lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    faq_texts = {f.name: f.read_text() for f in sorted((KNOW / "faq").glob("*.toml"))}
    region_texts = {f.stem: f.read_text() for f in (KNOW / "regions").glob("*.toml")}
    policy_texts = {f.stem: f.read_text() for f in (KNOW / "policies").glob("*.toml")}
    evals = []
    for p, (city, county, province, towns, road) in enumerate(pairs(npairs)):
        tag = f"p{p:03d}"
        # the province's entries belong to the pair's shard (without shards: to its city)
        shards = os.environ.get("SHARDS", "1") != "0"
        ids = {"suzhou": f"{tag}a", "zhangjiagang": f"{tag}b", "jiangsu": tag if shards else f"{tag}a"}

        def sub(text):
            return substitute(text, p, city, county, province, towns, road)

        def rename(text):
            # entry ids (in `id` and `related`), and region and policy ids anywhere
            def entry(m):
                v = m.group(1)
                return f'"{v}-{tag}"' if v in copied else m.group(0)

            def line(m):
                return re.sub(r'"([a-z0-9_-]+)"', entry, m.group(0))

            text = re.sub(r"(?m)^(id|related) = .*$", line, text)
            return re.sub(
                r'"(suzhou|zhangjiagang|jiangsu)"', lambda m: f'"{ids[m.group(1)]}"', text
            )

        for fname, text in faq_texts.items():
            # keep only the regional entries: split on [[faq]] tables
            parts = re.split(r"(?m)^(?=\[\[faq\]\])", text)
            keep = [part for part in parts[1:] if not re.search(r'(?m)^region = "national"', part)]
            if keep:
                body = "".join(keep)
                (out / "faq" / f"{fname[:-5]}-{tag}.toml").write_text(rename(sub(body)))
        for rid, text in region_texts.items():
            t = rename(sub(text))
            t = re.sub(r"(?m)^order = (\d+)", lambda m: f"order = {10 + p * 2 + int(m.group(1))}", t)
            # the pair's shard: its regions and its province's entries are searched together
            if shards:
                t = re.sub(r'(?m)^(policy = .*)$', lambda m: f'{m.group(1)}\nshard = "{tag}"', t, count=1)
            (out / "regions" / f"{ids[rid]}.toml").write_text(t)
        for pid, text in policy_texts.items():
            (out / "policies" / f"{ids[pid]}.toml").write_text(rename(sub(text)))
        for c in eval_lines:
            q = sub(c["q"])
            want = c["id"]
            if want in copied:
                want = f"{want}-{tag}"
            # the asker is insured in the county when the question names it, else in the city
            region = ids["zhangjiagang"] if county in q else ids["suzhou"]
            evals.append({"q": q, "id": want, "region": region})
    with open(out / "eval" / "regions.jsonl", "w") as f:
        for c in evals:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    total = sum(
        len(tomllib.loads(f.read_text()).get("faq", [])) for f in (out / "faq").glob("*.toml")
    )
    print(f"{out}: {n} regions, {total} entries, {len(evals)} region questions", file=sys.stderr)


if __name__ == "__main__":
    main()
