"""Tokens while Redis is known down (platformsite.cache.Guard): issued from the database, the
failed authentications of an address counted in each process until Redis is back."""

from __future__ import annotations

import pytest

from tests.auth_app.test_odd_input import get_token
from tests.conftest import basic_auth
from tests.redis_down import NEEDS_REDIS, redis_known_down

pytestmark = [pytest.mark.django_db, *NEEDS_REDIS]


def test_token__redis_known_down__issued(client, service_account):
    client_id, secret = service_account("config:read")
    with redis_known_down():
        response = get_token(client, basic_auth(client_id, secret))
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


def test_token_failures__redis_known_down__still_lock_the_address_out(client, service_account, settings):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    with redis_known_down():
        for _ in range(3):
            assert get_token(client, basic_auth(client_id, "wrong"), ip="10.0.1.1").status_code == 401
        locked = get_token(client, basic_auth(client_id, secret), ip="10.0.1.1")
        elsewhere = get_token(client, basic_auth(client_id, secret), ip="10.0.2.1")
    assert locked.status_code == 429
    assert elsewhere.status_code == 200
