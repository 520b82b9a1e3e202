#!/usr/bin/env python3
"""The same Idempotency-Key sent to two replicas at the same moment (issue 23, finding 4):
starts two `yidi serve` processes of BINARY on one database (a fresh schema of the local
PostgreSQL's database `test`, or a shared SQLite file with --sqlite), creates a session on
the first, then sends PAIRS pairs of identical messages (same key per pair) to both replicas
at once. Prints each pair's statuses, how many pairs were answered 200 + 200 with the same
body, the turns stored, and the ERROR lines the replicas logged.

Loopback only; bounded; stops its servers by itself.

Usage: benches/idempotency-replicas.py BINARY [--pairs 10] [--sqlite]"""
import argparse, json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("binary")
p.add_argument("--pairs", type=int, default=10)
p.add_argument("--sqlite", action="store_true")
a = p.parse_args()

if a.sqlite:
    url = f"sqlite://{tempfile.mkdtemp(prefix='yidi-idem-')}/shared.db"
    drop = None
else:
    schema = f"idem_{os.getpid()}_{int(time.time())}"
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "test", "-c",
                    f"CREATE SCHEMA {schema}"], check=True)
    url = f"postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{schema}"
    drop = schema


def start():
    proc = subprocess.Popen([a.binary, "serve", "--addr", "127.0.0.1:0", "--database-url", url],
                            env=dict(os.environ, YIDI_LOG="warn",
                                     # the replicas' per-session limits out of the way
                                     YIDI_LIMITS__PER_SESSION_BURST="1000",
                                     YIDI_LIMITS__PER_SESSION_PER_MINUTE="1000"), stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            break
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, m.group(1), log


def call(base, path, body=None, token=None, key=None):
    req = urllib.request.Request(base + path, method="POST",
                                 data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if key:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


(pa, a_base, a_log), (pb, b_base, b_log) = start(), start()
try:
    status, body = call(a_base, "/v1/sessions")
    created = json.loads(body)
    sid, token = created["session_id"], created["token"]
    outcomes, same = [], 0
    for pair in range(a.pairs):
        results = [None, None]
        barrier = threading.Barrier(2)

        def send(i, base):
            barrier.wait()
            results[i] = call(base, f"/v1/sessions/{sid}/messages", {"text": "备案要带什么材料"},
                              token, f"pair-{pair}")
        threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate([a_base, b_base])]
        [t.start() for t in threads]
        [t.join() for t in threads]
        outcomes.append((results[0][0], results[1][0]))
        same += results[0][0] == results[1][0] == 200 and results[0][1] == results[1][1]
    with urllib.request.urlopen(urllib.request.Request(
            f"{a_base}/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})) as r:
        turns = len(json.loads(r.read())["transcript"]) // 2
finally:
    for proc in (pa, pb):
        proc.terminate()
        proc.wait(timeout=30)
    if drop:
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "test", "-c",
                        f"DROP SCHEMA {drop} CASCADE"], check=False,
                       env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
errors = [l.strip() for l in a_log + b_log if " ERROR " in l]
print(f"{'SQLite (shared file)' if a.sqlite else 'PostgreSQL'}: pairs {outcomes}")
print(f"  {same}/{a.pairs} pairs 200 + 200 with the same body; {turns} turns stored; "
      f"{len(errors)} ERROR lines")
for e in errors[:3]:
    print("   ", e[:200])
