"""Services are declared once, on their AppConfig; the site reads the declarations."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from platformsite import services
from platformsite.hotpath import bind
from platformsite.middleware import body_limit


def test_every_service_app__is_declared_with_a_service_config(settings):
    declared = [c.name for c in apps.get_app_configs() if isinstance(c, services.ServiceConfig)]

    assert declared == [name for name in settings.INSTALLED_APPS if name.endswith("_app")]
    assert services.service_names() == (
        "auth",
        "config",
        "discovery",
        "events",
        "monitor",
        "router",
        "trace",
        "db",
    )


def test_scopes__read_and_write_per_service__extra_scopes__and_admin():
    scopes = services.all_scopes()

    assert {"config:read", "config:write", "db:read", "db:write", "config:secrets", "admin"} <= set(scopes)
    extra = sum(len(service.config.extra_scopes) for service in services.all_services())
    assert extra >= 1 and len(scopes) == 2 * len(services.all_services()) + extra + 1


def test_token_endpoint__refuses_a_scope_no_service_declares(client, service_account):
    from tests.conftest import basic_auth

    client_id, secret = service_account("config:read")
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "nothing:read"},
        HTTP_AUTHORIZATION=basic_auth(client_id, secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_ingest_paths__declared_by_services__get_the_ingest_limit(settings):
    settings.PLATFORM_MAX_BODY_BYTES, settings.PLATFORM_INGEST_MAX_BODY_BYTES = 100, 1000

    assert body_limit("/api/v1/events/") == 1000
    assert body_limit("/v1/traces") == 1000
    assert body_limit("/api/v1/config/namespaces/") == 100


def test_beat_schedule__each_service_declares_its_periodic_tasks(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {
        "auth_app.tasks.purge_expired_tokens",
        "discovery_app.tasks.sweep",
        "event_app.tasks.deliver_due",
    } <= tasks


def test_hot_routes__are_the_declared_ones():
    routes = {bind(route).route for route in services.hot_routes()}

    assert routes == {
        "api/v1/config/namespaces/<str:ns>/resolve",
        "api/v1/discovery/services/<str:name>/",
        "api/v1/discovery/nodes/<str:node_id>/heartbeat/",
        "api/v1/events/",
        "api/v1/router/routes/<str:name>/",
        "api/v1/db/<str:database>/<str:table>/records/<str:record_id>/",
        "api/v1/monitor/reports/",
        "^ping/(?P<check_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
        "(?:/(?P<action>start|fail|log|[0-9]+))?/?$",
    }


def test_runservice__an_undeclared_service__is_refused(settings):
    settings.PLATFORM_SERVICE = "nope"

    with pytest.raises(ImproperlyConfigured, match="PLATFORM_SERVICE must be one of: auth, config"):
        services.served_services()
