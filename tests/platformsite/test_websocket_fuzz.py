"""Every served websocket on hostile input: any query string at the handshake, then any messages
(JSON of the message types the consumers know, with any fields, or text that is not JSON).  The
consumer answers or refuses (an ``error`` message, or a close with its documented 4xxx code), and
never raises: an exception in a consumer would close the socket with 1011 and lose the watcher.
The caller holds ``admin``, so every refusal is the input's.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platformsite.asgi import application
from platformsite.services import served_services

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = [service.websocket_path for service in served_services() if service.websocket_path]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=15)
    | st.sampled_from(["", "\x00", "order.*", "app", "default", "web", "-1", "9" * 30]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
FIELDS = [
    "namespace",
    "env",
    "service",
    "services",
    "since",
    "flip",
    "types",
    "sources",
    "subject_prefix",
    "subscription",
    "last_event_id",
    "token",
]
MESSAGE = st.one_of(
    st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(["subscribe", "unsubscribe", "ping", "resume", "x", ""]) | JSON,
        st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4),
    ),
    JSON.map(json.dumps),
    st.text(min_size=1, max_size=30),
    st.just("[" * 5000),
)
QUERY = st.lists(
    st.tuples(st.sampled_from([*FIELDS, "service", "errors", "x"]), st.text(max_size=15)), max_size=3
).map(lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs))


def converse(path: str, token: str, query: str, messages: list[str]) -> list[dict]:
    """Connect, send ``messages``, and return what came back (the close, if any, included)."""

    async def run():
        communicator = WebsocketCommunicator(
            application, f"{path}?{query}", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            return [{"type": "websocket.close", "code": code}]
        received = []
        try:
            for message in messages:
                await communicator.send_to(text_data=message)
            while not await communicator.receive_nothing(timeout=0.05):
                received.append(await communicator.receive_output(timeout=1))
        finally:
            await communicator.disconnect()
        return received

    return async_to_sync(run)()


def test_walk__finds_the_sockets():
    assert {"/ws/config/", "/ws/events/"} <= set(SOCKETS)


@pytest.mark.parametrize("path", SOCKETS)
def test_any_query_and_messages__answered_or_refused_never_raised(path, issue_token):
    token = issue_token("admin")

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(QUERY, st.lists(MESSAGE, min_size=1, max_size=4))
    def talk(query, messages):
        for output in converse(path, token, query, messages):
            if output["type"] == "websocket.close":
                code = output.get("code")
                assert code is None or 4000 <= code < 5000 or code == 1000, (path, query, messages, code)

    talk()
