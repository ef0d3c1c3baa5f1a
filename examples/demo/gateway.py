"""The gateway: ``GET /dispatch?customer=N`` calls the customers and drivers backends through the
router (a node picked per call, labels and trace context propagated, stats recorded) and
publishes a ``demo.dispatched`` event, as Jaeger's HotROD front end does."""

import json
from urllib.parse import parse_qs

import httpx
from common import json_response, serve

from platform_client import PlatformError


def make_app(p):
    customers = p.client("demo-customers")
    drivers = p.client("demo-drivers", max_attempts=2)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/healthz":
            return json_response(start_response, b'{"ok": true}')
        customer_id = parse_qs(environ.get("QUERY_STRING", "")).get("customer", ["1"])[0]
        try:
            customer = customers.request("GET", f"/customer?id={customer_id}").json()
            driver = drivers.request("GET", "/driver")
        except (PlatformError, httpx.HTTPError) as exc:
            # no node of a backend (NoRoute), the platform refusing this service's token (a
            # disabled account), a backend that cannot be reached: the caller is told why
            body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            return json_response(start_response, body, "503 Service Unavailable")
        if driver.status_code != 200:
            p.events.publish("demo.dispatch_failed", {"customer": customer_id, "status": driver.status_code})
            return json_response(start_response, b'{"error": "no driver"}', "502 Bad Gateway")
        body = {"customer": customer, "driver": driver.json()["driver"]}
        p.events.publish("demo.dispatched", body)
        return json_response(start_response, json.dumps(body).encode())

    return app


if __name__ == "__main__":
    serve("demo-gateway", make_app)
