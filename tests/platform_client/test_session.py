"""platform_client.PlatformSession against a live server: token fetch, reuse, refresh, errors."""

from __future__ import annotations

import pytest
from oauth2_provider.models import AccessToken

from platform_client import PlatformError, PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_for(live_server, service_account):
    sessions = []

    def make(*scopes: str, request_scopes=None) -> PlatformSession:
        client_id, secret = service_account(*scopes)
        session = PlatformSession(live_server.url, client_id, secret, scopes=request_scopes)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


def test_session__fetches_a_token_once_and_reuses_it(session_for):
    session = session_for("monitor:read")
    assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
    assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
    assert AccessToken.objects.count() == 1


def test_session__refreshes_when_the_token_nears_expiry(session_for):
    session = session_for("monitor:read")
    session.call("GET", "/api/v1/monitor/ping/")
    session.credentials._expires_at = 0  # as if the hour had passed
    session.call("GET", "/api/v1/monitor/ping/")
    assert AccessToken.objects.count() == 2


def test_session__revoked_token__gets_a_new_one_and_retries(session_for):
    session = session_for("monitor:read")
    session.call("GET", "/api/v1/monitor/ping/")
    from auth_app.tokens import note_revocation

    AccessToken.objects.all().delete()
    note_revocation()
    assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
    assert AccessToken.objects.count() == 1


def test_session__missing_scope__raises_platform_error(session_for):
    session = session_for("config:read")
    with pytest.raises(PlatformError) as raised:
        session.call("GET", "/api/v1/monitor/ping/")
    assert raised.value.status == 403
    assert raised.value.code == "insufficient_scope"


def test_session__asking_for_a_scope_not_granted__raises_invalid_scope(session_for):
    session = session_for("config:read", request_scopes=["admin"])
    with pytest.raises(PlatformError) as raised:
        session.call("GET", "/api/v1/config/")
    assert raised.value.code == "invalid_scope"


def test_session__without_credentials__is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PLATFORM_CLIENT_ID", raising=False)
    monkeypatch.delenv("PLATFORM_CLIENT_SECRET", raising=False)
    with pytest.raises(ValueError, match="client_id and client_secret are required"):
        PlatformSession("http://127.0.0.1:1")
