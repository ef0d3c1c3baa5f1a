"""The customers backend: ``GET /customer?id=N``.  The deliberate slow path: customer 7's lookup
takes ``slow_ms`` (config ``demo-customers``, default 400 ms) in a ``customers.lookup`` span, the
span the trace view finds when searching for slow traces."""

import json
import time
from urllib.parse import parse_qs

from common import json_response, serve, span


def make_app(p):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/healthz":
            return json_response(start_response, b'{"ok": true}')
        customer = parse_qs(environ.get("QUERY_STRING", "")).get("id", ["1"])[0]
        with span("customers.lookup"):
            if customer == "7":
                time.sleep(float(p.config.get("slow_ms", 400)) / 1000)
            else:
                time.sleep(0.005)
        return json_response(
            start_response, json.dumps({"id": customer, "name": f"customer {customer}"}).encode()
        )

    return app


if __name__ == "__main__":
    serve("demo-customers", make_app)
