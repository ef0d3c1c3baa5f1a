"""Change-to-watcher propagation: N websocket watchers of one service, a writer, latencies.

Not a test (pytest does not collect it).  Against an ASGI platform (uvicorn, channels-redis):

    python -m tests.discovery_app.bench_watch URL TOKEN [WATCHERS] [CHANGES]

The token needs discovery:read and discovery:write.  Each change is a PUT of a node of service
``bench-watch``; the latency is from sending the PUT to each watcher receiving the change.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import websockets

BASE = sys.argv[1].rstrip("/")
TOKEN = sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 200
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 10


async def watcher(ready, received, stop):
    async with websockets.connect(
        BASE.replace("http", "ws", 1) + "/ws/discovery/",
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
        open_timeout=30,
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "services": ["bench-watch"]}))
        await ws.recv()
        ready.release()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            message = json.loads(raw)
            if message["type"] == "change":
                received.append((message["index"], time.perf_counter()))


async def main():
    ready = asyncio.Semaphore(0)
    received = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(watcher(ready, received, stop)) for _ in range(N)]
    for _ in range(N):
        await ready.acquire()
    lat = []
    async with httpx.AsyncClient(base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(ROUNDS):
            received.clear()
            t0 = time.perf_counter()
            r = await client.put(
                f"/api/v1/discovery/nodes/bench-watch-{i % 3}/",
                json={"service": "bench-watch", "address": "10.0.0.1", "port": 8000 + i},
            )
            r.raise_for_status()
            deadline = time.perf_counter() + 10
            while len(received) < N and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            lat += [(t - t0) * 1000 for _, t in received]
            await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
    print(f"{N} watchers, {ROUNDS} changes, {len(lat)} deliveries of {N * ROUNDS}: ", end="")
    print(f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
