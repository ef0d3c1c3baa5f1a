"""A service built on the SDK alone (``pip install "micro-platform-client[redis]"``): it registers,
stores a value, takes a lock, publishes an event and finds itself in discovery.

    PLATFORM_URL=http://127.0.0.1:8000 PLATFORM_CLIENT_ID=... PLATFORM_CLIENT_SECRET=... \
        python examples/hello_service.py
"""

import json

from platform_client import Platform

with Platform.from_env(service="hello", version="1.0.0") as p:
    p.register("127.0.0.1", 8080, metadata={"example": "hello"})
    p.kv.put("greeting", "hello, platform", ttl=60)
    with p.sync.lock("hello-startup", ttl=5) as held:
        event_id = p.events.publish("hello.started", {"node": p.node, "fence": held.fence})
    nodes = [node["id"] for node in p.discovery.nodes("hello")]
    result = {"greeting": p.kv.get("greeting"), "fence": held.fence, "event": event_id, "nodes": nodes}
    print(json.dumps(result, default=bytes.decode))
