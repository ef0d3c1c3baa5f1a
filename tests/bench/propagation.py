"""Change-to-watcher propagation over websockets: config, discovery and events.

    python -m tests.bench.propagation [--watchers 200] [--changes 20] [--only config,discovery,events]

Starts the platform under uvicorn (the ASGI side of the production layout) on a temporary
SQLite file, or on DATABASE_URL / REDIS_URL when set (channels-redis then carries the pushes),
opens N websocket watchers from this process, makes changes over the HTTP API, and reports the
time from sending each change to each watcher receiving it (p50, p99, max), plus the share of
deliveries that arrived. Results go to var/bench/propagation_<service>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets

from tests.servers import ROOT, asgi_platform

RESULTS = ROOT / "var" / "bench"


class Watch:
    """How to subscribe to one service's websocket, make a change, and recognise its arrival."""

    path: str
    name: str

    async def prepare(self, http: httpx.AsyncClient) -> None: ...

    def subscribe(self) -> dict | None:
        return None

    def is_ready(self, message: dict) -> bool:
        return True

    async def change(self, http: httpx.AsyncClient, stamp: int) -> None: ...

    def stamp_of(self, message: dict) -> int | None: ...


class ConfigWatch(Watch):
    name, path = "config", "/ws/config/"

    async def prepare(self, http):
        await http.post("/api/v1/config/namespaces/", json={"name": "bench-watch"})
        (
            await http.put(
                "/api/v1/config/namespaces/bench-watch/layers/production/", json={"data": {"stamp": 0}}
            )
        ).raise_for_status()

    def subscribe(self):
        return {"type": "subscribe", "namespace": "bench-watch", "env": "production"}

    def is_ready(self, message):
        return message.get("type") == "config"

    async def change(self, http, stamp):
        (
            await http.put(
                "/api/v1/config/namespaces/bench-watch/layers/production/values/stamp", json={"value": stamp}
            )
        ).raise_for_status()

    def stamp_of(self, message):
        return message.get("data", {}).get("stamp") if message.get("type") == "config" else None


class DiscoveryWatch(Watch):
    name, path = "discovery", "/ws/discovery/"

    def subscribe(self):
        return {"type": "subscribe", "services": ["bench-watch"]}

    def is_ready(self, message):
        return message.get("type") not in {"hello"}

    async def change(self, http, stamp):
        (
            await http.put(
                "/api/v1/discovery/nodes/bench-watch-1/",
                json={
                    "service": "bench-watch",
                    "address": "10.0.0.1",
                    "port": 8000,
                    "metadata": {"stamp": str(stamp)},
                },
            )
        ).raise_for_status()

    def stamp_of(self, message):
        if message.get("type") != "change" or not message.get("document"):
            return None
        for version in message["document"].get("versions", [message["document"]]):
            for node in version.get("nodes", []):
                if node.get("id") == "bench-watch-1" and (node.get("metadata") or {}).get("stamp"):
                    return int(node["metadata"]["stamp"])
        return None


class EventsWatch(Watch):
    name, path = "events", "/ws/events/?types=bench.latency"

    def is_ready(self, message):
        return message.get("type") == "subscribed"

    async def change(self, http, stamp):
        (
            await http.post(
                "/api/v1/events/",
                json={"type": "bench.latency", "source": "/bench", "data": {"stamp": stamp}},
            )
        ).raise_for_status()

    def stamp_of(self, message):
        if message.get("type") != "event":
            return None
        return (message["event"].get("data") or {}).get("stamp")


WATCHES: dict[str, Callable[[], Watch]] = {
    "config": ConfigWatch,
    "discovery": DiscoveryWatch,
    "events": EventsWatch,
}


async def measure(base: str, token: str, watch: Watch, watchers: int, changes: int) -> dict:
    ws_base = base.replace("http", "ws", 1)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    ready = asyncio.Semaphore(0)
    stop = asyncio.Event()

    async def watcher() -> None:
        separator = "&" if "?" in watch.path else "?"
        async with websockets.connect(
            f"{ws_base}{watch.path}{separator}access_token={token}", open_timeout=60, max_size=None
        ) as ws:
            if (message := watch.subscribe()) is not None:
                await ws.send(json.dumps(message))
            while not watch.is_ready(json.loads(await ws.recv())):
                pass
            ready.release()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                stamp = watch.stamp_of(json.loads(raw))
                if stamp in sent:
                    latencies.append((time.perf_counter() - sent[stamp]) * 1000)

    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        await watch.prepare(http)
        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        for _ in range(watchers):
            await asyncio.wait_for(ready.acquire(), 120)
        await asyncio.sleep(0.5)
        for i in range(1, changes + 1):
            stamp = time.time_ns() + i
            sent[stamp] = time.perf_counter()
            await watch.change(http, stamp)
            deadline = time.perf_counter() + 5
            while len(latencies) < i * watchers and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    if not latencies:
        return {"service": watch.name, "watchers": watchers, "changes": changes, "delivered": 0}
    return {
        "service": watch.name,
        "watchers": watchers,
        "changes": changes,
        "delivered_share": round(len(latencies) / (watchers * changes), 4),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.propagation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--only", default="config,discovery,events")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=RESULTS) as tmp,
        asgi_platform(
            Path(tmp),
            keep=("DATABASE_URL", "REDIS_URL"),
            extra_env={"PLATFORM_THROTTLE_CLIENT": "1000000000/min"},
        ) as platform,
    ):
        base = platform.url
        token = httpx.post(
            f"{base}/o/token/",
            data={"grant_type": "client_credentials"},
            auth=(platform.client_id, platform.client_secret),
        ).json()["access_token"]
        layer = "channels-redis" if os.environ.get("REDIS_URL") else "in-memory"
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            result = asyncio.run(measure(base, token, WATCHES[name](), args.watchers, args.changes))
            result.update(server="uvicorn, 1 worker", channel_layer=layer, target_p99_ms=250)
            print(json.dumps(result))
            (RESULTS / f"propagation_{name}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
