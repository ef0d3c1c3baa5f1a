"""Liveness, readiness and metrics."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from platformsite import ops

pytestmark = pytest.mark.django_db


def test_healthz__answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_ops_paths__other_methods__are_405_in_the_error_shape(path, method):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)  # as a real client: CSRF refused these with HTML
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
    assert client.head(path).status_code in (200, 401, 503)


def test_readyz__all_reachable__is_200_with_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert {name for name, result in checks.items() if result["ok"]} == {
        "database",
        "cache",
        "channel_layer",
        "broker",
    }


def test_readyz__cache_down__is_503_naming_it(client, monkeypatch):
    # given a cache that fails
    def broken() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setitem(ops.CHECKS, "cache", broken)
    # when
    response = client.get("/readyz")
    # then
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "cache" in error["message"]
    assert error["details"]["checks"]["cache"] == {
        "ok": False,
        "error": "ConnectionError: connection refused",
    }
    assert error["details"]["checks"]["database"]["ok"] is True


def test_metrics__exposes_request_counts_in_prometheus_format(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'platform_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert "platform_http_request_duration_seconds_bucket" in text


def test_metrics__when_token_required__refuses_outsiders(client, api_client, settings):
    settings.PLATFORM_METRICS_REQUIRE_TOKEN = True
    assert client.get("/metrics").status_code == 401
    assert api_client("config:read").get("/metrics").status_code == 403
    assert api_client("monitor:read").get("/metrics").status_code == 200


def test_metrics__multiprocess_mode__aggregates_worker_files(tmp_path, monkeypatch):
    # given a multiprocess directory holding another worker's counter file
    import subprocess
    import sys

    script = "from prometheus_client import Counter; Counter('platform_probe_total', 'probe').inc(5)"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # when
    from platformsite.metrics import exposition

    body, _ = exposition()
    # then the other process's count is in this process's answer
    assert b"platform_probe_total 5.0" in body


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_readyz__celery_mode__checks_the_redis_broker(client, settings):
    settings.PLATFORM_TASK_MODE = "celery"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == {
        "ok": True,
        "ms": pytest.approx(0, abs=2000),
        "mode": "celery",
    }


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_readyz__unreachable_broker__is_503(client, settings):
    from platformsite.celery import app

    settings.PLATFORM_TASK_MODE = "celery"
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 503
    assert response.json()["error"]["details"]["checks"]["broker"]["ok"] is False


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_redis_cache__one_client_per_process_shared_by_threads():
    import threading

    from django.core.cache import cache, caches

    # given the cache used from this thread and from another
    cache.set("shared-client", 1)
    seen = []
    thread = threading.Thread(
        target=lambda: seen.append((caches["default"]._cache, caches["default"].get("shared-client")))
    )
    thread.start()
    thread.join()
    # then both use one client object (and one pool), and it works
    assert seen[0][0] is cache._cache
    assert seen[0][1] == 1
    assert cache._cache.get_client() is cache._cache.get_client(write=True)


def test_access_log__each_request__one_line_with_method_path_status_and_ms(client, caplog):
    caplog.set_level(logging.INFO, logger="platform.access")
    client.get("/healthz")
    client.get("/api/v1/no-such-thing/")
    lines = [record for record in caplog.records if record.name == "platform.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/no-such-thing/", 404),
    ]
    first = lines[0]
    assert first.getMessage() == f"GET /healthz 200 {first.duration_ms:.1f} ms"
    assert first.duration_ms >= 0


def test_log_lines__a_token_in_a_query_string__is_redacted():
    # uvicorn logs a websocket handshake's path, with ?access_token= where the client sent it there
    from platformsite.logging import JsonFormatter

    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]', None, None
    )
    record.args = ("127.0.0.1:5000", "/ws/config/?access_token=eyJ.secret.sig&env=prod")
    record.color_message = "the same, coloured: access_token=eyJ.secret.sig"
    record.path = "/ws/config/?access_token=eyJ.secret.sig"
    line = JsonFormatter().format(record)
    assert "eyJ.secret.sig" not in line
    entry = json.loads(line)
    assert (
        entry["message"]
        == '127.0.0.1:5000 - "WebSocket /ws/config/?access_token=[redacted]&env=prod" [accepted]'
    )
    assert entry["path"] == "/ws/config/?access_token=[redacted]" and "color_message" not in entry


def test_access_log__off_unless_platform_access_log(settings):
    from platformsite.settings import LOGGING

    assert settings.PLATFORM_ACCESS_LOG is False
    assert LOGGING["loggers"]["platform.access"]["level"] == "WARNING"


def test_python_warnings__are_json_log_lines_too(tmp_path):
    # Django's "StreamingHttpResponse must consume synchronous iterators" (static files under
    # ASGI) was printed raw among the JSON lines
    script = "import django, warnings; django.setup(); warnings.warn('a warning of the test')"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "platformsite.settings", "PLATFORM_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    [line] = [line for line in done.stderr.splitlines() if "a warning of the test" in line]
    assert json.loads(line)["logger"] == "py.warnings"


@pytest.mark.django_db
def test_ensure_operator__another_process_made_it_meanwhile__no_crash(monkeypatch):
    # two `platform run` at the same moment on a fresh directory: one died on an IntegrityError
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db.models import QuerySet

    users = get_user_model()
    users.objects.create_superuser(username="admin", email="", password="made-by-the-other")
    checked = []
    real_exists = QuerySet.exists

    def first_look_misses(queryset):  # the other process created it between the look and the create
        checked.append(1)
        return False if len(checked) == 1 else real_exists(queryset)

    monkeypatch.setattr(QuerySet, "exists", first_look_misses)
    out = io.StringIO()
    call_command("ensure_operator", stdout=out)
    assert out.getvalue() == "" and users.objects.get(username="admin").check_password("made-by-the-other")


@pytest.mark.django_db
def test_ensure_operator__a_plain_user_holds_the_name__says_how_to_choose_another():
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    get_user_model().objects.create_user(username="admin", password="x")
    with pytest.raises(CommandError, match="PLATFORM_ADMIN_USER"):
        call_command("ensure_operator")
