"""Fixtures of the events tests: callers holding the events scopes, an event factory."""

from __future__ import annotations

import pytest

from event_app.services import event_publish


@pytest.fixture
def publisher(api_client):
    return api_client("events:write")


@pytest.fixture
def reader(api_client):
    return api_client("events:read")


@pytest.fixture
def operator(api_client):
    return api_client("events:read", "events:write")


@pytest.fixture
def make_event(db):
    counter = iter(range(1, 1_000_000))

    def make(type="order.created", source="/shop", **fields):
        return event_publish(
            type=type, source=source, event_id=fields.pop("event_id", f"e{next(counter)}"), **fields
        )

    return make
