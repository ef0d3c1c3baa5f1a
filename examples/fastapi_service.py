"""A FastAPI service behind the SDK's one middleware (ASGI): platform tokens checked (401/403 in
the platform's error shape), a server span per request, the monitor's endpoint stats and request
metrics (``pip install "micro-platform-client[jwt,otel,prometheus]" fastapi uvicorn``).

    PLATFORM_URL=http://127.0.0.1:8000 PLATFORM_CLIENT_ID=... PLATFORM_CLIENT_SECRET=... \
        python examples/fastapi_service.py
"""

from fastapi import FastAPI, Request, Response

from platform_client import Platform

#: Callers need a token of the platform holding this scope.
SCOPES = ("events:read",)


def create_app(p: Platform, **middleware):
    app = FastAPI(title="fastapi-orders")
    placed = p.metrics.counter("orders_placed_total", "Orders placed.")

    @app.get("/orders/{order_id}")
    def order(order_id: int, request: Request) -> dict:
        claims = request.scope["platform.claims"]  # the caller's verified token
        return {"id": order_id, "caller": claims["client_id"]}

    @app.post("/orders", status_code=201)
    def place() -> dict:
        placed.inc()
        return {"placed": True}

    @app.get("/metrics")  # exempt from authentication, as /healthz and /readyz
    def metrics() -> Response:
        body, content_type = p.metrics.render()
        return Response(body, media_type=content_type)

    return p.asgi(app, scopes=SCOPES, trace=True, **middleware)


if __name__ == "__main__":
    import os

    import uvicorn

    with Platform.from_env(service="fastapi-orders", version="1.0.0") as p:
        p.trace.setup()  # spans exported to the platform in batches
        p.monitor.start()  # checks, status and endpoint stats reported every 10 s
        uvicorn.run(create_app(p), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
