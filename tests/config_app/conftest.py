"""Fixtures of the config service's tests."""

from __future__ import annotations

import pytest

from config_app import services


@pytest.fixture
def rw(api_client):
    """A caller holding config:read and config:write (no secrets)."""
    return api_client("config:read", "config:write")


@pytest.fixture
def make_namespace(db):
    def make(name: str = "payments", **kwargs):
        return services.namespace_create(name=name, **kwargs)

    return make


@pytest.fixture
def put_layer(db):
    """Write a layer through the service (as a fixture author)."""

    def put(namespace: str, env: str, data: dict, **kwargs):
        return services.layer_set(namespace=namespace, env=env, data=data, author="service:fixture", **kwargs)

    return put


def base(ns: str) -> str:
    return f"/api/v1/config/namespaces/{ns}/"
