"""The drivers backend: ``GET /driver``.  Flaky when config ``demo-drivers`` has ``flaky: true``
(``platform config set demo-drivers flaky true``): then a third of its answers are 503.  It
follows the change as it happens and publishes ``demo.flaky`` events."""

import json
import random
import time

from common import json_response, serve, span


def make_app(p):
    state = {"flaky": bool(p.config.get("flaky", False))}

    def changed(new, old):  # a config watch is called with (new value, old value)
        state["flaky"] = bool(new)
        p.events.publish("demo.flaky", {"flaky": state["flaky"], "node": p.node})

    p.config.watch("flaky", changed)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/healthz":
            return json_response(start_response, b'{"ok": true}')
        with span("drivers.nearest"):
            time.sleep(0.01)
        if state["flaky"] and random.random() < 1 / 3:
            return json_response(start_response, b'{"error": "flaky"}', "503 Service Unavailable")
        return json_response(start_response, json.dumps({"driver": f"T{random.randint(100, 999)}"}).encode())

    return app


if __name__ == "__main__":
    serve("demo-drivers", make_app)
