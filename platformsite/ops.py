"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import wraps

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from auth_app.access import validate_bearer
from platformsite.api.authentication import parse_bearer
from platformsite.api.errors import json_error
from platformsite.metrics import exposition


def get_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """GET and HEAD only: any other method is 405 in the API's error shape. These paths sit outside
    the API's prefixes, so without the exemption CSRF would refuse a POST with an HTML page."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = json_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return wrapped


@get_only
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)("readyz.")
    async_to_sync(layer.send)(channel, {"type": "readyz.probe"})
    if async_to_sync(layer.receive)(channel).get("type") != "readyz.probe":
        raise RuntimeError("channel layer returned another message")


def _check_broker() -> None:
    if settings.PLATFORM_TASK_MODE != "celery":
        return
    from platformsite.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {
    "database": _check_database,
    "cache": _check_cache,
    "channel_layer": _check_channel_layer,
    "broker": _check_broker,
}


@get_only
def readyz(request: HttpRequest) -> JsonResponse:
    """Every backing component answers: database, cache, channel layer, broker (503 names what failed)."""
    results: dict[str, dict] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            failing.append(name)
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
    results["broker"]["mode"] = settings.PLATFORM_TASK_MODE
    if failing:
        return json_error(
            503, "not_ready", f"Not ready: {', '.join(failing)} unreachable.", {"checks": results}
        )
    return JsonResponse({"status": "ready", "checks": results})


@get_only
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of every worker process of this server."""
    if settings.PLATFORM_METRICS_REQUIRE_TOKEN:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        try:
            raw = parse_bearer(header) if header else None
        except Exception:
            raw = None
        token = validate_bearer(raw) if raw else None
        if token is None:
            response = json_error(401, "not_authenticated", "A bearer token with monitor:read is required.")
            response["WWW-Authenticate"] = 'Bearer realm="platform"'
            return response
        if not token.has_scope("monitor:read"):
            return json_error(403, "insufficient_scope", "This call needs the 'monitor:read' scope.")
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
