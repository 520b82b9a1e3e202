#!/usr/bin/env python3
"""Fills a yidi database with stored conversations, fast, for benchmarks only (issue 24).

    benches/scale/fill-turns.py sqlite:PATH TURNS [OLD_TURNS]
    benches/scale/fill-turns.py postgres://…  TURNS [OLD_TURNS]

The database must exist and be migrated (start `yidi serve` or run `yidi purge` on it once).
Adds TURNS turns (a turn = the user's line and the reply's line in `transcripts`) in
conversations of five turns each, with their session rows and token rows: realistic sizes
(the texts are the evaluation questions and the FAQ briefs; the session state is a real
one), session ids that look like the API's (random hex, so rows land all over the B-tree as
real ones do). The first OLD_TURNS turns (default 0) are dated 400 days ago, so a retention
purge of a year deletes them; the rest are spread over the last 30 days.

Bulk SQL, never the turn API: SQLite, a recursive CTE per batch of 20,000 sessions, one
transaction each; PostgreSQL, generate_series per batch through psql.
"""
import json
import pathlib
import sqlite3
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TURNS_PER_SESSION = 5
BATCH = 20_000  # sessions per transaction
DAY = 86_400_000

STATE = (
    '{"version":1,"slots":{"card_kind":"standard_card","filed":"true","insured_region":"suzhou"},'
    '"active":null,"topic":"filing-materials","last":{"digest":1840952023516324469,'
    '"slots":{"card_kind":"standard_card","filed":"true"}},"cross_region":true}'
)


def samples():
    """(user text, reply text, faq id, kind) pairs from the evaluation and the FAQ."""
    import tomllib

    qs = []
    for name in ["dev.jsonl", "real-dev.jsonl"]:
        for line in (ROOT.parent / "shared" / "eval" / name).read_text().splitlines():
            if line.strip():
                qs.append(json.loads(line)["q"])
    briefs = []
    for f in sorted((ROOT / "knowledge" / "faq").glob("*.toml")):
        for e in tomllib.loads(f.read_text()).get("faq", []):
            # a reply is the brief and the start of the answer, as the chat shows it
            briefs.append((e["id"], e["brief"] + "\n\n" + e["answer"][:300]))
    out = []
    for i, q in enumerate(qs[:256]):
        fid, text = briefs[i % len(briefs)]
        out.append((q, text, fid, "faq"))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    url, turns = sys.argv[1], int(sys.argv[2])
    old = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    sessions = turns // TURNS_PER_SESSION
    old_sessions = old // TURNS_PER_SESSION
    pairs = samples()
    now = int(time.time() * 1000)
    started = time.time()
    if url.startswith("sqlite:"):
        path = url.split(":", 1)[1].lstrip("/") if url.startswith("sqlite://") else url[7:]
        if url.startswith("sqlite:///"):
            path = "/" + path
        fill_sqlite(path, sessions, old_sessions, pairs, now)
    else:
        fill_pg(url, sessions, old_sessions, pairs, now)
    print(
        f"{url}: {sessions * TURNS_PER_SESSION} turns ({old_sessions * TURNS_PER_SESSION} old) "
        f"in {time.time() - started:.1f} s",
        file=sys.stderr,
    )


def fill_sqlite(path, sessions, old_sessions, pairs, now):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -400000")
    db.execute("CREATE TEMP TABLE samples (i INTEGER PRIMARY KEY, q TEXT, r TEXT, f TEXT, k TEXT)")
    db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", [(i, *p) for i, p in enumerate(pairs)])
    base = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    n_samples = len(pairs)
    for lo in range(0, sessions, BATCH):
        hi = min(sessions, lo + BATCH) - 1
        db.execute("BEGIN")
        # the session number n → its id (a 64-bit mix of n, as hex: random order), its times
        gen = f"""WITH RECURSIVE s(n) AS (SELECT {base + lo} UNION ALL SELECT n + 1 FROM s WHERE n < {base + hi}),
            t(n, id, at) AS (SELECT n,
                printf('%08x%08x%08x%08x', (n * 2654435761) % 4294967296, (n * 40503 + 7) % 4294967296,
                                           (n * 2246822519) % 4294967296, n),
                CASE WHEN n - {base} < {old_sessions} THEN {now - 400 * DAY} + (n % 1000) * 60000
                     ELSE {now - 30 * DAY} + ((n * 7919) % (30 * 86400)) * 1000 END
                FROM s)"""
        db.execute(f"{gen} INSERT INTO sessions (id, state, revision, created_at, updated_at) "
                   f"SELECT id, ?, {TURNS_PER_SESSION}, at, at + 300000 FROM t", (STATE,))
        db.execute(f"{gen} INSERT INTO session_tokens (session_id, token_hash, created_at) "
                   f"SELECT id, printf('%016x%016x%016x%016x', n, n * 31, n * 37, n * 41), at FROM t")
        db.execute(f"""{gen}, k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < {TURNS_PER_SESSION - 1})
            INSERT INTO transcripts (session_id, seq, role, text, faq_id, dialog, created_at, kind, channel)
            SELECT t.id, 2 * k.j + 1 + r.w, CASE r.w WHEN 0 THEN 'user' ELSE 'assistant' END,
                   CASE r.w WHEN 0 THEN sm.q ELSE sm.r END,
                   CASE r.w WHEN 0 THEN NULL ELSE sm.f END, NULL, t.at + k.j * 60000,
                   CASE r.w WHEN 0 THEN NULL ELSE sm.k END, 'api'
            FROM t, k, (SELECT 0 AS w UNION ALL SELECT 1) r, samples sm
            WHERE sm.i = (t.n * {TURNS_PER_SESSION} + k.j) % {n_samples}""")
        db.execute("COMMIT")
        print(f"  {hi + 1} sessions", file=sys.stderr, end="\r")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_pg(url, sessions, old_sessions, pairs, now):
    def lit(s):
        return "'" + s.replace("'", "''") + "'" if s is not None else "NULL"

    values = ",".join(f"({i},{lit(q)},{lit(r)},{lit(f)},{lit(k)})" for i, (q, r, f, k) in enumerate(pairs))
    base = int(subprocess.run(["psql", "-qAt", url, "-c", "SELECT COUNT(*) FROM sessions"],
                              check=True, capture_output=True, text=True).stdout.strip())
    n_samples = len(pairs)
    script = [f"CREATE TEMP TABLE samples (i INT PRIMARY KEY, q TEXT, r TEXT, f TEXT, k TEXT);",
              f"INSERT INTO samples VALUES {values};"]
    for lo in range(0, sessions, BATCH):
        hi = min(sessions, lo + BATCH) - 1
        gen = f"""CREATE TEMP TABLE t AS SELECT n, md5(n::text) AS id,
                CASE WHEN n - {base} < {old_sessions} THEN {now - 400 * DAY}::bigint + (n % 1000) * 60000
                     ELSE {now - 30 * DAY}::bigint + ((n::bigint * 7919) % (30 * 86400)) * 1000 END AS at
                FROM generate_series({base + lo}, {base + hi}) n;"""
        script += ["BEGIN;", gen,
                   f"INSERT INTO sessions (id, state, revision, created_at, updated_at) SELECT id, {lit(STATE)}, {TURNS_PER_SESSION}, at, at + 300000 FROM t;",
                   "INSERT INTO session_tokens (session_id, token_hash, created_at) SELECT id, md5(id) || md5(id || 'x'), at FROM t;",
                   f"""INSERT INTO transcripts (session_id, seq, role, text, faq_id, dialog, created_at, kind, channel)
                   SELECT t.id, 2 * k.j + 1 + r.w, CASE r.w WHEN 0 THEN 'user' ELSE 'assistant' END,
                          CASE r.w WHEN 0 THEN sm.q ELSE sm.r END, CASE r.w WHEN 0 THEN NULL ELSE sm.f END,
                          NULL, t.at + k.j * 60000, CASE r.w WHEN 0 THEN NULL ELSE sm.k END, 'api'
                   FROM t CROSS JOIN generate_series(0, {TURNS_PER_SESSION - 1}) k(j)
                        CROSS JOIN (VALUES (0), (1)) r(w)
                        JOIN samples sm ON sm.i = (t.n * {TURNS_PER_SESSION} + k.j) % {n_samples};""",
                   "DROP TABLE t;", "COMMIT;"]
    script.append("ANALYZE;")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input="\n".join(script),
                   check=True, text=True)


if __name__ == "__main__":
    main()
