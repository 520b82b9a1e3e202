#!/usr/bin/env python3
"""Slow clients against a real `yidi serve` (issue 23, findings 2 and 3): starts the server
(the binary given, on 127.0.0.1 with a temp SQLite file), opens BODIES connections that send
their request headers at once and then trickle their bodies (one byte every TRICKLE seconds),
from one address or spread over 127.0.0.2-127.0.0.254 (all of 127/8 is this machine), probes
/healthz from 127.0.0.1 once a second (each probe with a 2-second timeout, as a health checker
would), then sends SIGTERM and reports how long the server took to exit and its status.

Only loopback addresses are used; every loop is bounded in count and time, and the script
stops by itself.

Usage: benches/slow-clients.py BINARY [--bodies 1100] [--path /wechat|/v1/feedback]
       [--spread] [--probes 9] [--trickle 2] [--wait 3]
Prints one line: probes passed, shutdown seconds and exit status."""
import argparse, asyncio, hashlib, os, re, signal, subprocess, sys, tempfile, time

TOKEN = "yidiToken1"


def signed_query():
    ts, nonce = str(int(time.time())), os.urandom(6).hex()
    sig = hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest()
    return f"signature={sig}&timestamp={ts}&nonce={nonce}"


async def trickle(port, path, host, every, stop):
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0)), 5)
    except Exception:
        return
    query = f"?{signed_query()}" if path == "/wechat" else ""
    head = (f"POST {path}{query} HTTP/1.1\r\nHost: yidi\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n")
    try:
        writer.write(head.encode())
        await writer.drain()
        for _ in range(1000):
            if stop.is_set():
                break
            await asyncio.sleep(every)
            writer.write(b" ")
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


async def probe(port):
    try:
        async def once():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: yidi\r\nConnection: close\r\n\r\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            return line.startswith(b"HTTP/1.1 200")
        return await asyncio.wait_for(once(), 2)
    except Exception:
        return False


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--bodies", type=int, default=1100)
    p.add_argument("--path", default="/wechat")
    p.add_argument("--spread", action="store_true")
    p.add_argument("--probes", type=int, default=9)
    p.add_argument("--trickle", type=float, default=2.0)
    p.add_argument("--wait", type=float, default=3.0)
    a = p.parse_args()
    db = tempfile.mkdtemp(prefix="yidi-slow-")
    env = dict(os.environ, YIDI_LOG="warn", YIDI_WECHAT__TOKEN=TOKEN,
               YIDI_WECHAT__APP_ID="wxslowclients", YIDI_WECHAT__APP_SECRET="secret",
               YIDI_WECHAT__API_URL="http://127.0.0.1:9/")
    server = subprocess.Popen(
        [a.binary, "serve", "--addr", "127.0.0.1:0", "--database-url", f"sqlite://{db}/y.db"],
        env=env, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    port = None
    for line in server.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    assert port, "the server did not start"
    # keep draining its standard error
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, lambda: [None for _ in server.stderr])
    stop = asyncio.Event()
    hosts = [f"127.0.0.{2 + i % 253}" if a.spread else "127.0.0.1" for i in range(a.bodies)]
    tasks = [asyncio.create_task(trickle(port, a.path, h, a.trickle, stop)) for h in hosts]
    await asyncio.sleep(a.wait)
    passed = 0
    for _ in range(a.probes):
        started = time.monotonic()
        passed += await probe(port)
        await asyncio.sleep(max(0, 1 - (time.monotonic() - started)))
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    while server.poll() is None and time.monotonic() - started < 60:
        await asyncio.sleep(0.05)
    took = time.monotonic() - started
    if server.poll() is None:
        server.kill()
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"bodies={a.bodies} path={a.path} spread={a.spread}: /healthz {passed}/{a.probes}; "
          f"SIGTERM to exit {took:.1f} s, exit status {server.returncode}")


asyncio.run(main())
