"""Service accounts, token issue and validation: scopes, revocation, disabled accounts, cache."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from auth_app.models import Account
from auth_app.services import account_disable
from auth_app.tasks import purge_expired_tokens
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db


def token_request(client, client_id, secret, scope=None):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return client.post("/o/token/", data, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def test_create_service_account__prints_credentials_once_and_stores_secret_hashed(capsys):
    # when
    call_command("create_service_account", "payments", "--scopes", "config:read config:write")
    # then
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) >= {"client_id", "client_secret"}
    application = Application.objects.get(client_id=printed["client_id"])
    assert application.client_secret != printed["client_secret"]
    assert printed["client_secret"] not in application.client_secret
    assert Account.objects.get(name="payments").scope_list == ["config:read", "config:write"]


def test_create_service_account__unknown_scope__is_refused():
    with pytest.raises(CommandError, match="Unknown scopes: config:everything"):
        call_command("create_service_account", "bad", "--scopes", "config:everything")
    assert not Account.objects.filter(name="bad").exists()


def test_create_service_account__name_taken__is_a_command_error():
    call_command("create_service_account", "payments", "--scopes", "config:read", stdout=io.StringIO())
    with pytest.raises(CommandError, match="An account named 'payments' exists"):
        call_command("create_service_account", "payments", "--scopes", "config:read")


def test_token__for_a_scope_the_account_was_not_given__is_refused(client, service_account):
    # given an account allowed config:read only
    client_id, secret = service_account("config:read")
    # when it asks for config:write
    response = token_request(client, client_id, secret, "config:read config:write")
    # then
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_token__an_admin_account__may_ask_for_a_narrower_token(client, service_account):
    client_id, secret = service_account("admin")
    narrow = token_request(client, client_id, secret, "monitor:read")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "monitor:read"
    assert token_request(client, client_id, secret).json()["scope"] == "admin"  # as it is, unasked
    assert token_request(client, client_id, secret, "monitor:nosuch").json()["error"] == "invalid_scope"


def test_token__without_scope_parameter__carries_the_account_scopes(client, service_account):
    client_id, secret = service_account("config:read", "events:write")
    response = token_request(client, client_id, secret)
    assert response.status_code == 200
    assert set(response.json()["scope"].split()) == {"config:read", "events:write"}
    assert response.json()["expires_in"] == 3600


def test_token__wrong_secret__is_401(client, service_account):
    client_id, _ = service_account("config:read")
    response = token_request(client, client_id, "wrong-secret", "config:read")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_token__is_not_stored_in_plain_text(client, service_account):
    client_id, secret = service_account("config:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    assert not AccessToken.objects.filter(token=raw).exists()
    assert AccessToken.objects.count() == 1


def test_warm_token__is_validated_without_a_database_query(api_client, django_assert_num_queries):
    # given a caller whose token was validated once
    caller = api_client("monitor:read")
    assert caller.get("/api/v1/monitor/ping/").status_code == 200
    # when it calls again / then no query runs
    with django_assert_num_queries(0):
        assert caller.get("/api/v1/monitor/ping/").status_code == 200


def test_revoked_token__stops_working_at_once(client, service_account):
    # given a token that was used (and so is cached)
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200
    # when it is revoked (RFC 7009)
    response = client.post(
        "/o/revoke_token/", {"token": raw}, HTTP_AUTHORIZATION=basic_auth(client_id, secret)
    )
    assert response.status_code == 200
    # then
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 401


def test_revocation_on_another_node__is_seen_after_the_poll_interval(client, service_account, settings):
    from auth_app import tokens

    # given a token cached by this process
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200
    # when another node revokes it: the row goes and the shared epoch changes
    AccessToken.objects.all().delete()
    from django.core.cache import cache

    cache.set(tokens.REVOCATION_EPOCH_KEY, "bumped-elsewhere", None)
    # then this process notices at its next poll
    tokens._cache.next_poll = 0.0
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 401


def test_disabled_account__tokens_stop_working_and_no_new_ones(
    client, service_account, django_capture_on_commit_callbacks
):
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200
    # when
    with django_capture_on_commit_callbacks(execute=True):
        account_disable(account=Account.objects.get(application__client_id=client_id))
    # then
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 401
    assert token_request(client, client_id, secret).status_code == 401


def test_expired_token__is_401(client, service_account):
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/monitor/ping/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_introspection__answers_active_scope_and_client(client, service_account):
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    response = client.post("/o/introspect/", {"token": raw}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "monitor:read"
    assert body["client_id"] == client_id


def test_whoami__describes_the_service(api_client):
    response = api_client("config:read").get("/api/v1/auth/whoami/")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "service"
    assert body["subject"].startswith("service:svc-")
    assert body["scopes"] == ["config:read"]


def test_purge_task__deletes_expired_tokens_only(client, service_account):
    client_id, secret = service_account("monitor:read")
    for _ in range(3):
        token_request(client, client_id, secret)
    expired = AccessToken.objects.order_by("id")[:2]
    AccessToken.objects.filter(id__in=[t.id for t in expired]).update(
        expires=timezone.now() - timedelta(days=1)
    )
    # when
    purge_expired_tokens.delay()
    # then
    assert AccessToken.objects.count() == 1


class _CacheDown:
    """The shared cache while Redis restarts: every call is refused."""

    def __getattr__(self, name):
        def refused(*args, **kwargs):
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

        return refused


def test_shared_cache_down__tokens_checked_in_the_database_and_revocations_still_seen(
    client, service_account, monkeypatch
):
    # Redis restarting under load (tests/faults): every call was a 503, as the revocation poll
    # raised; now a token is checked in the database at each poll, so a revocation still counts.
    from auth_app import selectors, tokens

    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200
    monkeypatch.setattr(tokens, "cache", _CacheDown())
    monkeypatch.setattr(selectors, "cache", _CacheDown())
    tokens._cache.next_poll = selectors._version.next_poll = 0.0

    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200

    AccessToken.objects.all().delete()  # revoked by another node, which could not announce it
    tokens._cache.next_poll = 0.0
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 401


def test_shared_cache_down__policies_compiled_again_at_each_poll(monkeypatch):
    from auth_app import selectors

    monkeypatch.setattr(selectors, "cache", _CacheDown())
    versions = set()
    for _ in range(2):
        selectors._version.next_poll = 0.0
        versions.add(selectors.policy_version())
    assert len(versions) == 2


@pytest.mark.parametrize("lost", ["expired", "counter_gone", "too_many"])
def test_revocations_one_by_one_that_cannot_be_read__drop_every_cached_token(
    client, service_account, settings, lost
):
    from django.core.cache import cache

    from auth_app import tokens

    # given a token cached by this process, which has polled the shared revocations
    client_id, secret = service_account("monitor:read")
    raw = token_request(client, client_id, secret).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 200
    AccessToken.objects.all().delete()  # revoked behind its back: only a poll can drop it
    # when other tokens were revoked one by one elsewhere, and what they were cannot be read
    tokens.note_revoked(["another-token"])
    if lost == "expired":
        cache.delete(tokens.REVOKED_KEY.format(cache.get(tokens.REVOKED_SEQUENCE_KEY)))
    elif lost == "counter_gone":  # a Redis restart
        tokens._cache.sequence = 5
        cache.delete(tokens.REVOKED_SEQUENCE_KEY)
    else:
        cache.set(tokens.REVOKED_SEQUENCE_KEY, tokens.MAX_REVOKED_PER_POLL + 5, None)
    tokens._cache.next_poll = 0.0
    # then this process trusts none of its cached tokens: each is checked in the database again
    assert client.get("/api/v1/monitor/ping/", **auth).status_code == 401
