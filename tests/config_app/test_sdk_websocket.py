"""The SDK's hot reload over the real /ws/config/ websocket (a uvicorn subprocess, loopback only)."""

from __future__ import annotations

from platform_client import PlatformSession
from platform_client.config import Config, PlatformSource, wait_for


def test_sdk__hot_reload_over_websocket(asgi_platform, tmp_path):
    # Given a namespace on a platform served over ASGI, and a Config watching it
    base, client_id, secret = asgi_platform
    session = PlatformSession(base, client_id, secret)
    session.call("POST", "/api/v1/config/namespaces/", json={"name": "payments"})
    layer = "/api/v1/config/namespaces/payments/layers/prod/"
    session.call("PUT", layer, json={"data": {"db": {"host": "a"}, "n": 1}})
    source = PlatformSource("payments", "prod", session=session, cache_dir=tmp_path)
    seen = []
    with Config([source], watch=True) as config:
        config.watch("db.host", lambda new, old: seen.append((new, old)))
        assert wait_for(lambda: source.mode == "websocket", timeout=15)

        # When the layer changes twice (db.host only the second time)
        session.call("PUT", layer + "values/n", json={"value": 2})
        assert wait_for(lambda: config.get("n") == 2, timeout=15)
        session.call("PUT", layer + "values/db/host", json={"value": "b"})

        # Then the changes arrive over the websocket and the watch fires once
        assert wait_for(lambda: config.get_str("db.host") == "b", timeout=15)
        assert source.mode == "websocket"
    assert seen == [("b", "a")]
    session.close()
