"""A Flask service behind the SDK's one middleware: platform tokens checked (401/403 in the
platform's error shape), a server span per request, the monitor's endpoint stats and request
metrics (``pip install "micro-platform-client[jwt,otel,prometheus]" flask``).

    PLATFORM_URL=http://127.0.0.1:8000 PLATFORM_CLIENT_ID=... PLATFORM_CLIENT_SECRET=... \
        python examples/flask_service.py
"""

from flask import Flask, jsonify, request

from platform_client import Platform

#: Callers need a token of the platform holding this scope.
SCOPES = ("events:read",)


def create_app(p: Platform, **middleware) -> Flask:
    app = Flask("flask-orders")
    placed = p.metrics.counter("orders_placed_total", "Orders placed.")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int):
        claims = request.environ["platform.claims"]  # the caller's verified token
        return jsonify(id=order_id, caller=claims["client_id"])

    @app.post("/orders")
    def place():
        placed.inc()
        return jsonify(placed=True), 201

    @app.get("/metrics")  # exempt from authentication, as /healthz and /readyz
    def metrics():
        body, content_type = p.metrics.render()
        return body, 200, {"Content-Type": content_type}

    app.wsgi_app = p.wsgi(app.wsgi_app, scopes=SCOPES, trace=True, **middleware)
    return app


if __name__ == "__main__":
    import contextlib
    import os
    from wsgiref.simple_server import make_server

    with Platform.from_env(service="flask-orders", version="1.0.0") as p:
        p.trace.setup()  # spans exported to the platform in batches
        p.monitor.start()  # checks, status and endpoint stats reported every 10 s
        server = make_server("127.0.0.1", int(os.environ.get("PORT", "8080")), create_app(p))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the block: deregistered, flushed
            server.serve_forever()
