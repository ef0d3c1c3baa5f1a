"""platform_client.PlatformSession against a live server: token fetch, reuse, refresh, errors."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from oauth2_provider.models import AccessToken

from platform_client import ClientCredentials, PlatformError, PlatformSession

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
    session.credentials._refresh_at = 0  # as if the hour had passed
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


# --- several nodes: failover -------------------------------------------------------------------------


@pytest.fixture
def dead_address():
    """An address where nothing listens (a port bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hanging_up_address():
    """A node that accepts each connection and closes it without answering (it died mid-request)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection.recv(65536))
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    server.close()


def test_failover__a_node_that_is_down__the_token_and_calls_go_to_the_next(
    live_server, service_account, dead_address
):
    client_id, secret = service_account("monitor:read")
    with PlatformSession([dead_address, live_server.url], client_id, secret) as session:
        assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
        assert str(session.failover.current).rstrip("/") == live_server.url
        assert session.websocket_url("/ws/events/") == live_server.url.replace("http", "ws") + "/ws/events/"
        assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
    assert AccessToken.objects.count() == 1


def test_failover__platform_url_lists_the_nodes(monkeypatch, live_server, service_account, dead_address):
    client_id, secret = service_account("monitor:read")
    monkeypatch.setenv("PLATFORM_URL", f"{dead_address}, {live_server.url}/")
    with PlatformSession(client_id=client_id, client_secret=secret) as session:
        assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "localhost:8000",
        "ftp://platform",
        "http://:8000",
        "http://h:99999",
        "http://a, b",
        "http://h:8000?x=1",  # a query: the token request went to /?x=1/o/token/
        "http://u:p@h:8000",
    ],
)
def test_platform_url__an_address_that_is_not_http_is_refused_at_once(monkeypatch, url):
    # it was taken, and the first call failed on an odd httpx error (or a missing-credentials one)
    monkeypatch.setenv("PLATFORM_URL", url)
    with pytest.raises(ValueError, match=r"PLATFORM_URL\) is http\(s\)://host\[:port\]"):
        PlatformSession(client_id="a", client_secret="b")
    with pytest.raises(ValueError, match="address is http"):
        PlatformSession(url, "a", "b")


def test_platform_error__its_message_names_what_the_details_name():
    # it said "400 invalid: The request is not valid." whatever field was refused
    body = {
        "error": {
            "code": "invalid",
            "message": "The request is not valid.",
            "details": {"port": ["Too big."]},
        }
    }
    error = PlatformError.from_response(httpx.Response(400, json=body))
    assert str(error) == "400 invalid: The request is not valid. (port: Too big.)"
    assert error.message == "The request is not valid." and error.details == {"port": ["Too big."]}
    long = PlatformError(400, "invalid", "No.", {"query": "x" * 1000})
    assert len(str(long)) < 330 and str(long).endswith("...)")
    assert str(PlatformError(404, "not_found", "Gone.")) == "404 not_found: Gone."


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0.5", 0.5), (None, None), ("0", None), ("soon", None), ("inf", None)],
)
def test_platform_error__carries_the_answers_retry_after_in_seconds(header, seconds):
    headers = {"Retry-After": header} if header else {}
    body = {"error": {"code": "unavailable", "message": "Down.", "details": {}}}
    assert PlatformError.from_response(httpx.Response(503, json=body, headers=headers)).retry_after == seconds


def test_failover__a_read_is_sent_again_when_the_node_drops_it(
    live_server, service_account, hanging_up_address
):
    address, accepted = hanging_up_address
    client_id, secret = service_account("monitor:read")
    with PlatformSession([live_server.url, address], client_id, secret) as session:
        session.credentials.token()  # the token from the live node
        session.failover.state[0] = 1  # as if the other node had been answering
        assert session.call("GET", "/api/v1/monitor/ping/")["ok"] is True
    assert len(accepted) == 1 and accepted[0].startswith(b"GET /api/v1/monitor/ping/")


def test_failover__a_write_the_node_dropped_is_not_sent_again(
    live_server, service_account, hanging_up_address
):
    """The dropped POST may have been applied: it is the caller's to retry, not the session's."""
    address, accepted = hanging_up_address
    client_id, secret = service_account("events:write")
    with PlatformSession([live_server.url, address], client_id, secret) as session:
        session.credentials.token()
        session.failover.state[0] = 1
        with pytest.raises(httpx.RemoteProtocolError):
            session.post("/api/v1/events/", json={"type": "demo.x", "source": "/t", "data": {}})
    assert len(accepted) == 1
    from event_app.models import Event

    assert not Event.objects.filter(type="demo.x").exists()


def test_failover__no_node_answers__the_last_error_is_raised_naming_the_address(
    dead_address, service_account
):
    client_id, secret = service_account("monitor:read")
    with (
        PlatformSession([dead_address, dead_address], client_id, secret) as session,
        pytest.raises(httpx.ConnectError) as refused,
    ):
        session.credentials.token()
    assert f"POST {dead_address}/o/token/" in str(refused.value)


def _token_endpoint(*answers: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    """A token endpoint answering ``answers`` in turn (the last one from then on)."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return answers[min(len(asked), len(answers)) - 1]

    return httpx.Client(transport=httpx.MockTransport(answer)), asked


def test_credentials__a_refusal_is_not_asked_again_at_once(monkeypatch):
    # every call asked for a token again: a disabled account's three demo services hit the
    # platform's failed-authentication limit in seconds, locking out every client of their host
    refused = httpx.Response(401, json={"error": "invalid_client"})
    granted = httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
    client, asked = _token_endpoint(refused, refused, granted)
    now = [1000.0]
    monkeypatch.setattr("platform_client.session.time.monotonic", lambda: now[0])
    monkeypatch.setattr("platform_client.session.random.uniform", lambda low, high: 1.0)
    credentials = ClientCredentials("http://platform/o/token/", "id", "secret", client=client)
    for _ in range(3):
        with pytest.raises(PlatformError) as refusal:
            credentials.token(force=True)
    assert len(asked) == 1 and refusal.value.code == "invalid_client"
    assert (
        "the account is disabled" in refusal.value.message and "asked again in 5 s" in refusal.value.message
    )
    now[0] += 5.1
    with pytest.raises(PlatformError):
        credentials.token()
    assert len(asked) == 2
    now[0] += 9.9  # the second refusal in a row stands twice as long
    with pytest.raises(PlatformError, match="asked again in 0 s"):
        credentials.token()
    now[0] += 0.2
    assert credentials.token() == "t" and len(asked) == 3
    assert credentials._refusal is None and credentials._refusals == 0


def test_credentials__a_lockout_is_held_as_long_as_its_retry_after_and_a_5xx_not_at_all(monkeypatch):
    locked = httpx.Response(429, json={"error": "too_many_requests"}, headers={"Retry-After": "300"})
    client, asked = _token_endpoint(locked, httpx.Response(503, json={"error": "unavailable"}))
    now = [1000.0]
    monkeypatch.setattr("platform_client.session.time.monotonic", lambda: now[0])
    credentials = ClientCredentials("http://platform/o/token/", "id", "secret", client=client)
    with pytest.raises(PlatformError):
        credentials.token()
    now[0] += 299
    with pytest.raises(PlatformError, match="asked again in 1 s") as held:
        credentials.token()
    assert held.value.retry_after == pytest.approx(1, abs=0.01)
    now[0] += 2
    for _ in range(2):
        with pytest.raises(PlatformError) as unavailable:
            credentials.token()
        assert unavailable.value.status == 503
    assert len(asked) == 3


@pytest.mark.parametrize(("lifetime", "fetches"), [(20, 1), (3600, 1)])
def test_credentials__a_token_shorter_than_the_margin_is_reused(lifetime, fetches):
    # a 30 s margin made every call fetch a new token when tokens lived 30 s or less
    client, asked = _token_endpoint(httpx.Response(200, json={"access_token": "t", "expires_in": lifetime}))
    credentials = ClientCredentials("http://platform/o/token/", "id", "secret", client=client)
    for _ in range(5):
        assert credentials.token() == "t"
    assert len(asked) == fetches


def test_token_refused__a_websocket_closed_4401_drops_the_cached_token():
    # the config, discovery and router watches reconnected with the revoked token until it expired
    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    from platform_client.session import token_refused

    client, asked = _token_endpoint(httpx.Response(200, json={"access_token": "t", "expires_in": 3600}))
    credentials = ClientCredentials("http://platform/o/token/", "id", "secret", client=client)
    credentials.token()
    assert not token_refused(credentials, ConnectionClosedError(Close(4403, "forbidden"), None))
    assert not token_refused(credentials, OSError("refused"))
    credentials.token()
    assert len(asked) == 1
    assert token_refused(credentials, ConnectionClosedError(Close(4401, "token"), None))
    credentials.token()
    assert len(asked) == 2


def test_platform_error__an_answer_not_from_the_platform_names_the_request():
    # a URL with a path nothing serves answered "404 http_error: Not Found", naming nothing
    request = httpx.Request("POST", "http://h:8000/platform/o/token/")
    error = PlatformError.from_response(httpx.Response(404, text="<html>", request=request))
    assert (error.code, error.message) == ("http_error", "Not Found (POST http://h:8000/platform/o/token/)")


def test_credentials__refused_after_a_token_was_granted__the_old_token_is_not_used_again(monkeypatch):
    # the held refusal applied only to fetching: calls still went out with the refused token
    granted = httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
    refused = httpx.Response(401, json={"error": "invalid_client"})
    client, asked = _token_endpoint(granted, refused)
    monkeypatch.setattr("platform_client.session.random.uniform", lambda low, high: 1.0)
    credentials = ClientCredentials("http://platform/o/token/", "id", "secret", client=client)
    assert credentials.token() == "t"
    with pytest.raises(PlatformError):  # the API said 401: a new token is asked for, and refused
        credentials.token(force=True)
    with pytest.raises(PlatformError, match="asked again in"):
        credentials.token()
    assert len(asked) == 2


def test_websocket_log__a_failed_keepalive_is_an_info_line_without_a_traceback(caplog):
    import logging
    import re
    from pathlib import Path

    import platform_client
    from platform_client.session import WEBSOCKET_LOG

    adapter = logging.LoggerAdapter(WEBSOCKET_LOG, {"websocket": None})  # as websockets wraps it
    with caplog.at_level(logging.INFO, logger="platform_client.websocket"):
        try:
            raise TimeoutError("timed out while closing connection")
        except TimeoutError:
            adapter.error("keepalive ping failed", exc_info=True)  # websockets' own words
            adapter.error("something else failed", exc_info=True)
    quiet, other = caplog.records
    assert (quiet.levelname, quiet.exc_info) == ("INFO", None)
    assert other.levelname == "ERROR" and other.exc_info is not None
    # every websocket connection the SDK opens logs through it
    sources = Path(platform_client.__file__).parent.glob("*.py")
    calls = [
        call
        for path in sources
        for call in re.findall(r"\bconnect\((?:[^()]|\([^()]*\))*\)", path.read_text())
    ]
    websocket_calls = [call for call in calls if "close_timeout" in call]
    assert len(websocket_calls) == 4 and all("logger=WEBSOCKET_LOG" in call for call in websocket_calls)
