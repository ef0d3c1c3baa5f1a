"""A separate process contending for a lock (``python -m tests.platform_client.sync_worker ...``);
an optional last argument is the namespace of the lock and resource names.

``count URL NAME N``   N times: under the lock, read the fenced counter, pause, write it + 1;
                       prints each fence it was issued as one JSON line at the end.
``hold URL NAME TTL``  takes the lock (renewed), prints its fence, then waits for a line on stdin
                       and tries a fenced write of b"stale" to "resource": prints "written",
                       "refused", and whether it still holds the lock.
``lead URL NAME TTL``  becomes the leader of NAME, prints "leader <id>", then waits for stdin.
"""

from __future__ import annotations

import json
import sys
import time

from platform_client.sync import from_url


def main(mode: str, url: str, name: str, arg: str, namespace: str = "") -> None:
    sync = from_url(url, node=f"worker-{mode}", namespace=namespace)
    if mode == "count":
        fences = []
        for _ in range(int(arg)):
            with sync.lock(name, ttl=10, wait=60) as held:
                assert held.fence is not None
                found = sync.fenced_get("counter")
                value = int(found[0]) if found else 0
                time.sleep(0.002)  # widen the read-modify-write window
                assert sync.fenced_put("counter", str(value + 1), held.fence)
                fences.append(held.fence)
        print(json.dumps(fences), flush=True)
    elif mode == "hold":
        lock = sync.lock(name, ttl=float(arg), wait=30)
        lock.acquire()
        print(lock.fence, flush=True)
        sys.stdin.readline()
        written = sync.fenced_put("resource", b"stale", lock.fence or 0)
        print("written" if written else "refused", "held" if lock.held else "not-held", flush=True)
    elif mode == "lead":
        elected = sync.leader(name, ttl=float(arg)).elect(wait=30)
        print("leader", elected.id, elected.fence, flush=True)
        sys.stdin.readline()
    sync.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
