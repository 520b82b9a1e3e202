#!/usr/bin/env python3
"""Durability check: no acknowledged turn is lost when `yidi serve` is killed with SIGKILL.

Starts `yidi serve` on a database, posts messages from 16 conversations at once, records
every message answered with 2xx, kills the server with SIGKILL mid-load, starts it again on
the same database and reads every conversation back through the API
(`GET /v1/sessions/{id}`): each acknowledged message must be in its transcript, in order.
Repeats for a few rounds (the conversations go on across restarts). Exits 1 on any loss.

Usage (from the repository root, after `cargo build --release`):
    python3 benches/kill-test.py                      # SQLite (a temporary file)
    python3 benches/kill-test.py --postgres URL       # PostgreSQL (e.g. a scratch schema)
Options: --bin PATH (target/release/yidi), --rounds N (3), --seconds S of load per round (3),
--conversations N (16), --synchronous normal|full (SQLite).

Standard library only.
"""

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

QUESTION = "异地就医备案有效期多久"


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, port, db, env):
    proc = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{port}", "--database-url", db],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"yidi serve exited at start with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit("yidi serve did not become ready in 30 s")


def request(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def converse(port, session, acked, stop, errors):
    """Posts numbered messages to one conversation until the server goes away or `stop`."""
    sid, token = session["id"], session["token"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        n = session["next"]
        text = f"第{n}问 {QUESTION}"
        try:
            status, _ = request(conn, "POST", f"/v1/sessions/{sid}/messages", {"text": text}, token)
        except (OSError, http.client.HTTPException) as e:
            # killed: whether this one was stored is unknown, and need not be
            errors.append(repr(e))
            return
        if 200 <= status < 300:
            acked.append((sid, text))
            session["next"] = n + 1
        else:
            errors.append(status)
        if status >= 300 and status not in (409, 429, 503):
            sys.stderr.write(f"unexpected status {status}\n")
            return


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bin", default="target/release/yidi")
    p.add_argument("--postgres", metavar="URL")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--conversations", type=int, default=16)
    p.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    args = p.parse_args()

    tmp = tempfile.TemporaryDirectory()
    db = args.postgres or f"sqlite://{tmp.name}/kill-test.db"
    env = dict(os.environ)
    env.update(
        YIDI_LOG="warn",
        YIDI_SQLITE_SYNCHRONOUS=args.synchronous,
        YIDI_LIMITS__PER_IP_PER_MINUTE="100000000",
        YIDI_LIMITS__PER_IP_BURST="100000000",
        YIDI_LIMITS__PER_SESSION_PER_MINUTE="100000000",
        YIDI_LIMITS__PER_SESSION_BURST="100000000",
    )
    port = free_port()
    proc = start(args.bin, port, db, env)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sessions = []
    for _ in range(args.conversations):
        # no body: the server does not read one here (and would then close the connection)
        status, body = request(conn, "POST", "/v1/sessions")
        assert status == 201, status
        b = json.loads(body)
        sessions.append({"id": b["session_id"], "token": b["token"], "next": 1})
    conn.close()

    acked = []
    lost_total = 0
    for rnd in range(1, args.rounds + 1):
        stop = threading.Event()
        errors = []
        before = len(acked)
        threads = [
            threading.Thread(target=converse, args=(port, s, acked, stop, errors), daemon=True)
            for s in sessions
        ]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        proc = start(args.bin, port, db, env)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        lost = 0
        for s in sessions:
            status, body = request(conn, "GET", f"/v1/sessions/{s['id']}", token=s["token"])
            assert status == 200, status
            stored = [l["text"] for l in json.loads(body)["transcript"] if l["role"] == "user"]
            mine = [text for sid, text in acked if sid == s["id"]]
            # acknowledged ones, in order; a message stored but not acknowledged (killed
            # between commit and response) may sit between them, and is retried as the same
            # number, so it may appear twice
            it = iter(stored)
            missing = [text for text in mine if not any(text == x for x in it)]
            lost += len(missing)
            for text in missing[:3]:
                print(f"  LOST in {s['id'][:8]}…: {text}")
        conn.close()
        lost_total += lost
        print(
            f"round {rnd}: killed with SIGKILL after {args.seconds:g} s of load; "
            f"{len(acked) - before} turns acknowledged this round, {len(acked)} in all; "
            f"lost: {lost}"
        )
        refused = [e for e in errors if isinstance(e, int)]
        if refused:
            print(f"  {len(refused)} refused (retried): statuses {sorted(set(refused))}")
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    if lost_total:
        print(f"FAIL: {lost_total} acknowledged turns lost")
        sys.exit(1)
    print(f"OK: all {len(acked)} acknowledged turns were stored ({db.split(':')[0]})")


if __name__ == "__main__":
    main()
