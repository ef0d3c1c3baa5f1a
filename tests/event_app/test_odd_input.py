"""Malformed and unusual input: a 4xx in the platform's error shape, never a 500 nor a partial write.

Several of these only failed on PostgreSQL (NUL characters, times before year 1 in UTC), where
SQLite accepted what PostgreSQL refuses; the tests assert the refusal on both.
"""

from __future__ import annotations

import base64
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from event_app import services
from event_app.cloudevents import MAX_DATA_DEPTH
from event_app.models import Delivery, Event, EventCount, Subscription
from platformsite.asgi import application

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events/"
SUBS = "/api/v1/events/subscriptions/"


def post_raw(client, body: bytes, content_type: str, **headers):
    return client.generic("POST", EVENTS, body, content_type=content_type, **headers)


def assert_refused(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def assert_nothing_written() -> None:
    assert not Event.objects.exists()
    assert not EventCount.objects.exists()


# --- publishing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_publish__data_with_nan_or_infinity__400_nothing_written(publisher, number):
    # given: literals Python's JSON reader takes but JSON (and jsonb) does not have
    body = (
        b'[{"type": "a.ok", "source": "/s"}, {"type": "a.b", "source": "/s", "data": {"x": ' + number + b"}}]"
    )
    # when
    response = post_raw(publisher, body, "application/json")
    # then
    error = assert_refused(response)
    assert error["details"]["errors"] == [
        {"index": 1, "field": "data", "message": "numbers must be finite (no NaN or Infinity)"}
    ]
    assert_nothing_written()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "a\u0000b"}, "type"),
        ({"id": "e\u0000"}, "id"),
        ({"subject": "x\u0000"}, "subject"),
        ({"data": "text\u0000"}, "data"),
        ({"data": {"key\u0000": 1}}, "data"),
        ({"data": [{"deep": ["\u0000"]}]}, "data"),
        ({"metadata": {"region": "eu\u0000"}}, "region"),
        ({"root_id": "flow\u0000"}, "rootid"),
        ({"subject": "x\ud800"}, "subject"),
        ({"type": "a\udfffb"}, "type"),
        ({"data": {"note": "\ud83d"}}, "data"),
        ({"data": ["\ude00"]}, "data"),
        ({"metadata": {"region": "eu\udc00"}}, "region"),
    ],
)
def test_publish__nul_character_or_lone_surrogate__400_nothing_written(publisher, event, field):
    # given: PostgreSQL refuses NUL and lone surrogates in text and jsonb (SQLite stored them; a
    # surrogate was a 500 on PostgreSQL)
    body = [{"type": "a.ok", "source": "/s"}, {"type": "a.b", "source": "/s", **event}]
    # when
    response = publisher.post(EVENTS, json.dumps(body), content_type="application/json")  # escapes them
    # then
    error = assert_refused(response)
    assert [(e["index"], e["field"]) for e in error["details"]["errors"]] == [(1, field)]
    assert_nothing_written()


@pytest.mark.parametrize("char", ["\u0001", "\t", "\n", "\u001f", "\u007f", "\u0085", "\u009f"])
@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"id": "e{c}"}, "id"),
        ({"source": "/s{c}"}, "source"),
        ({"type": "a{c}b"}, "type"),
        ({"subject": "x{c}"}, "subject"),
        ({"region": "eu{c}"}, "region"),
        ({"rootid": "flow{c}"}, "rootid"),
    ],
)
def test_publish__control_character_in_an_attribute__400_naming_it(publisher, event, field, char):
    # given: CloudEvents' String disallows U+0000-U+001F and U+007F-U+009F; they were stored
    event = {name: value.replace("{c}", char) for name, value in event.items()}
    body = [
        {"specversion": "1.0", "id": "ok", "type": "a.ok", "source": "/s"},
        {"specversion": "1.0", "id": "e", "type": "a.b", "source": "/s", **event},
    ]
    # when
    response = post_raw(publisher, json.dumps(body).encode(), "application/cloudevents-batch+json")
    # then
    error = assert_refused(response)
    assert [(e["index"], e["field"]) for e in error["details"]["errors"]] == [(1, field)]
    assert "control characters" in error["details"]["errors"][0]["message"]
    assert_nothing_written()


@pytest.mark.parametrize("char", ["\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff"])
@pytest.mark.parametrize(
    "event",
    [
        {"type": "a{c}"},
        {"source": "/s{c}"},
        {"subject": "x{c}"},
        {"id": "{c}"},
        {"metadata": {"region": "{c}"}},
        {"root_id": "r{c}"},
    ],
)
def test_publish__noncharacter_in_an_attribute__400_naming_it(publisher, event, char):
    event = json.loads(json.dumps(event).replace("{c}", char))
    (name,) = event.get("metadata", event)
    # when
    response = publisher.post(EVENTS, {"type": "a", "source": "/s", **event}, format="json")
    # then
    error = assert_refused(response)
    assert error["details"]["errors"] == [
        {"index": 0, "field": name.replace("_", ""), "message": error["details"]["errors"][0]["message"]}
    ]
    assert "noncharacters" in error["details"]["errors"][0]["message"]
    assert_nothing_written()


def test_publish__binary_header_with_a_percent_encoded_newline__400(publisher):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "a"}
    response = post_raw(publisher, b"{}", "application/json", **headers, HTTP_CE_SUBJECT="a%0Ab")
    assert [e["field"] for e in assert_refused(response)["details"]["errors"]] == ["subject"]
    assert_nothing_written()


@pytest.mark.parametrize("value", ["%C0%A0", "%FF", "a%E2%82", "%ED%A0%80", "caf\xe9"])
def test_publish__binary_header_not_utf8_once_percent_decoded__400_naming_it(publisher, value):
    # given: HTTP binding 1.0.2 3.1.3.2 says such a value MUST be rejected; it was stored as U+FFFD
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "a"}
    response = post_raw(publisher, b"{}", "application/json", **headers, HTTP_CE_SUBJECT=value)
    errors = assert_refused(response)["details"]["errors"]
    assert [(e["field"], "UTF-8" in e["message"]) for e in errors] == [("subject", True)]
    assert_nothing_written()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ('"a b"', "a b"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("%22q%22%20%E2%82%AC%25", '"q" \u20ac%'),
        ("a%2Fb", "a/b"),
        ("caf\xc3\xa9", "caf\u00e9"),  # raw UTF-8 bytes, as the server hands them over (ISO-8859-1)
    ],
)
def test_publish__binary_header_quoted_or_percent_encoded__decoded(publisher, value, stored):
    # given: a double-quoted value is unescaped (RFC 7230 3.2.6), then percent-decoded once; the
    # quotes were stored as part of the subject
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "a"}
    response = post_raw(publisher, b"{}", "application/json", **headers, HTTP_CE_SUBJECT=value)
    assert response.status_code == 201, response.content
    assert Event.objects.get().subject == stored


def test_publish__control_characters_and_noncharacters_in_data__stored(publisher):
    data = {"text": "line 1\nline 2\t\u0085\ufffe", "k\u0001": "\u007f"}
    response = publisher.post(EVENTS, {"type": "a", "source": "/s", "data": data}, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get().data == data


@pytest.mark.parametrize(
    "source",
    [
        "not a uri ref",
        "/a b",
        " /a",
        "/a\\b",
        '/a"b',
        "/a<b>",
        "/a{b}",
        "/a|b",
        "/ünï",
        "/a%zz",
        "/a%2",
        "1:x",
        "10.0.0.7:8080",
        ":x",
        "http://a b/",
        "//a:b:c",
        "https://a/b#c#d",
        "http://[zz]/",
    ],
)
def test_publish__source_not_a_uri_reference__400(publisher, source):
    # given: CloudEvents' source is a URI-reference (RFC 3986 4.1); a space or a raw non-ASCII
    # character was accepted
    response = publisher.post(EVENTS, {"type": "a", "source": source}, format="json")
    errors = assert_refused(response)["details"]["errors"]
    assert [(e["field"], "URI-reference" in e["message"]) for e in errors] == [("source", True)]
    assert_nothing_written()


@pytest.mark.parametrize(
    "source",
    [
        "/orders",
        "urn:x",
        "https://a/b",
        "https://github.com/cloudevents",
        "mailto:cncf@lists.cncf.io",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "/sensors/tn-1234567/alerts",
        "1-555-123-4567",
        "billing",
        "/platform/config",
        "/a%20b",
        "//host:8080/x?q=1#f",
        "http://[::1]:80/",
        "tag:a.com,2026:x",
        "/",
        "./a:b",
        "//10.0.0.7:8080",
    ],
)
def test_publish__source_a_uri_reference__stored(publisher, source):
    response = publisher.post(EVENTS, {"type": "a", "source": source}, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get().source == source


def test_publish__characters_beyond_the_bmp__stored(publisher):
    # JSON escapes them as surrogate pairs, which are not lone surrogates
    event = {"type": "a", "source": "/s", "subject": "order \U0001f600", "data": {"note": "\U0001f600"}}
    response = publisher.post(EVENTS, event, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get().data == {"note": "\U0001f600"}


def test_publish__escaped_backslash_u0000_text__is_not_a_nul_and_is_stored(publisher):
    response = publisher.post(EVENTS, {"type": "a", "source": "/s", "data": "\\u0000"}, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get().data == "\\u0000"


def test_publish__binary_text_with_nul__stored_as_base64(publisher):
    # given
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t"}
    # when
    response = post_raw(publisher, b"a\x00b", "text/plain", **headers)
    # then
    assert response.status_code == 201, response.content
    event = Event.objects.get()
    assert (event.data, base64.b64decode(event.data_base64)) == (None, b"a\x00b")


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        ("café".encode("latin-1"), "text/plain; charset=ISO-8859-1", "café"),
        ("hi".encode("utf-16-le"), 'text/plain; charset="utf-16-le"', "hi"),
    ],
)
def test_publish__binary_text_in_its_declared_charset__stored_as_that_text(
    publisher, body, content_type, text
):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t"}
    response = post_raw(publisher, body, content_type, **headers)
    assert response.status_code == 201, response.content
    assert Event.objects.get().data == text


@pytest.mark.parametrize("body", [b"", b'{"a": 1}'])
def test_publish__binary_ce_data_header__400_nothing_written(publisher, body):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t"}
    response = post_raw(publisher, body, "application/json", HTTP_CE_DATA='{"x": 1}', **headers)
    error = assert_refused(response)
    assert error["details"]["errors"][0]["field"] == "data"
    assert_nothing_written()


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_publish__time_outside_years_1_to_9999_in_utc__400_nothing_written(publisher, when):
    response = publisher.post(EVENTS, {"type": "a", "source": "/s", "time": when}, format="json")
    error = assert_refused(response)
    assert error["details"]["errors"][0]["field"] == "time"
    assert_nothing_written()


def test_publish__body_nested_beyond_the_parser__400(publisher):
    response = post_raw(publisher, b"[" * 100_000 + b"]" * 100_000, "application/json")
    assert assert_refused(response)["code"] == "parse_error"  # as the other APIs: the parser gives up


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 911])
def test_publish__data_nested_too_deep__400_nothing_written(publisher, depth):
    # given: deep enough to pass the parser but not the encoders that store and serve it
    data = b"[" * depth + b"]" * depth
    # when
    response = post_raw(
        publisher, b'{"type": "a", "source": "/s", "data": ' + data + b"}", "application/json"
    )
    # then
    assert assert_refused(response)["details"]["errors"][0]["field"] == "data"
    assert_nothing_written()


def test_publish__data_nested_to_the_limit__stored(publisher):
    data = b"[" * MAX_DATA_DEPTH + b"]" * MAX_DATA_DEPTH
    response = post_raw(
        publisher, b'{"type": "a", "source": "/s", "data": ' + data + b"}", "application/json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("name", ["region\n", "id", "type", "time", "specversion", "data"])
def test_publish__metadata_name_not_an_extension_name__400(publisher, name):
    # given: "region\n" passed the name pattern ($ matches before a final newline); core attribute
    # names were stored as extensions and overrode the attributes in the webhook body
    body = {"type": "a", "source": "/s", "metadata": {name: "forged"}}
    # when
    response = publisher.post(EVENTS, body, format="json")
    # then
    assert assert_refused(response)["details"]["errors"][0]["field"] == name
    assert_nothing_written()


# --- search, summary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"after": "\u00b2"},
        {"before": "\u00b9"},
        {"after": "9" * 5000},
        {"from": "0001-01-01T00:00:00+01:00"},
        {"to": "9999-12-31T23:59:59-01:00"},
        {"type": "a\u0000"},
        {"source": "/s\u0000"},
        {"subject": "x\u0000*"},
        {"root_id": "\u0000"},
        {"ext.region": "eu\u0000"},
    ],
)
def test_search__odd_parameter__400(reader, make_event, params):
    make_event()
    error = assert_refused(reader.get(EVENTS, params))
    assert error["code"] == "invalid" and set(error["details"]) == set(params)


@pytest.mark.parametrize("value", ["--5", "\u00b2", "9" * 5000])
def test_search__extension_value_like_a_number__matches_nothing(reader, make_event, value):
    make_event(extensions={"region": 5})
    response = reader.get(EVENTS, {"ext.region": value})
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


@pytest.mark.parametrize("position", [b"abc", b"1\x00", b"9" * 5000])
def test_search__tampered_cursor__invalid_cursor(reader, make_event, position):
    make_event()
    cursor = base64.b64encode(b"p=" + position).decode()
    error = assert_refused(reader.get(EVENTS, {"cursor": cursor}), 400)
    assert error["code"] == "invalid_cursor"


def test_summary__to_within_the_first_hour_of_year_1__empty_series(reader, make_event):
    make_event()
    for interval in ("minute", "hour"):
        response = reader.get(EVENTS + "summary/", {"to": "0001-01-01T00:30:00Z", "interval": interval})
        assert response.status_code == 200, response.content
        assert response.json()["series"] == []


# --- subscriptions, deliveries --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://", "http:foo", "https:///path", "http://[::1/", "http://exa mple.com/", "http://x:99999/"]
)
def test_subscription_create__webhook_url_that_cannot_be_sent_to__400(operator, url):
    response = operator.post(SUBS, {"name": "hook", "url": url}, format="json")
    assert assert_refused(response)["details"] == {"url": [response.json()["error"]["details"]["url"][0]]}
    assert not Subscription.objects.exists()


def test_subscription_update__webhook_url_without_host__400(operator):
    operator.post(SUBS, {"name": "hook", "url": "http://127.0.0.1:9/hook"}, format="json")
    assert_refused(operator.patch(SUBS + "hook/", {"url": "http://"}, format="json"))
    assert Subscription.objects.get().url == "http://127.0.0.1:9/hook"


def test_delivery__stored_url_httpx_refuses__is_a_failed_attempt(make_event, settings):
    # given: a subscription stored before URLs were checked
    settings.EVENTS_WEBHOOK_MAX_ATTEMPTS = 1
    event = make_event()
    subscription = Subscription.objects.create(name="old", url="http://[::1/hook", secret="s")
    delivery = Delivery.objects.create(subscription=subscription, event=event)
    # when
    services.subscription_deliver(subscription_id=subscription.pk)
    # then: dead-lettered, not a runner crashing on the queue head forever
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert delivery.last_error.startswith("InvalidURL")


@pytest.mark.parametrize("ids", [[2**63], [10**30], [-(10**30)]])
def test_redeliver__id_out_of_range__400(operator, ids):
    operator.post(SUBS, {"name": "hook", "url": "http://127.0.0.1:9/hook"}, format="json")
    assert_refused(operator.post(SUBS + "hook/redeliver/", {"ids": ids}, format="json"))


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"all_dead": False}])
def test_redeliver__naming_nothing__400(operator, body):
    operator.post(SUBS, {"name": "hook", "url": "http://127.0.0.1:9/hook"}, format="json")
    refused = operator.post(SUBS + "hook/redeliver/", body, format="json")  # was 200 {"requeued": 0}
    assert_refused(refused)
    assert list(refused.json()["error"]["details"]) == ["ids"]


@pytest.mark.parametrize("body", [{}, {"url": ""}, {"sink": "webhook"}])
def test_subscription_create__webhook_without_url__400_naming_it(operator, body):
    refused = operator.post(SUBS, {"name": "hook", **body}, format="json")
    assert_refused(refused)
    assert refused.json()["error"]["details"] == {
        "url": ['A webhook subscription needs its URL (or "sink": "websocket").']
    }


# --- websocket ------------------------------------------------------------------------------------


def ws_auth(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


publish = database_sync_to_async(services.event_publish)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("query", "types"),
    [(b"types=\xff\xfe", ["\ufffd\ufffd"]), (b"types=order%20created,a%2Cb", ["order created", "a", "b"])],
)
def test_ws__query_not_utf8_or_types_a_resource_cannot_hold__subscribes(issue_token, query, types):
    token = issue_token("events:read")

    async def run():
        ws = WebsocketCommunicator(application, "/ws/events/", headers=ws_auth(token))
        ws.scope["query_string"] = query
        connected, _ = await ws.connect(timeout=5)
        assert connected
        subscribed = await ws.receive_json_from(timeout=5)
        assert (subscribed["type"], subscribed["filter"]["types"]) == ("subscribed", types)
        await ws.disconnect()

    async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_ws__malformed_messages__answered_with_an_error_connection_kept(issue_token):
    token = issue_token("events:read")
    messages = [
        {"text_data": "not json"},
        {"bytes_data": b"\x00\x01"},
        {"text_data": json.dumps({"type": "subscribe", "types": 5})},
        {"text_data": json.dumps({"type": "subscribe", "types": [1]})},
        {"text_data": json.dumps({"type": "subscribe", "sources": "/s", "subject_prefix": 5})},
        {"text_data": json.dumps({"type": "subscribe", "subscription": ["x"]})},
        {"text_data": json.dumps({"type": "subscribe", "types": ["a\u0000"], "last_event_id": 0})},
        {"text_data": '{"type": "subscribe", "last_event_id": Infinity}'},
        {"text_data": json.dumps({"type": "subscribe", "last_event_id": "x"})},
        {"text_data": json.dumps({"type": "subscribe", "last_event_id": "9" * 5000})},
        {"text_data": json.dumps({"type": "subscribe", "types": [f"t{i}.*" for i in range(1500)]})},
        {"text_data": json.dumps({"type": "subscribe", "sources": ",".join(f"/s{i}" for i in range(101))})},
    ]

    async def run():
        ws = WebsocketCommunicator(application, "/ws/events/?types=order.*", headers=ws_auth(token))
        await ws.connect(timeout=5)
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        for message in messages:
            await ws.send_to(**message)
            answer = await ws.receive_json_from(timeout=5)
            assert answer["type"] == "error" and answer["code"] in {"invalid", "parse_error"}, message
        # the connection and its filter are still there
        await publish(type="user.created", source="/s")
        await publish(type="order.created", source="/s")
        assert (await ws.receive_json_from(timeout=5))["event"]["type"] == "order.created"
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
        await ws.disconnect()

    async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("query", ["subscription=missing", "last_event_id=abc", "types=a%00"])
def test_ws__refused_subscription_at_connect__streams_nothing(issue_token, query):
    token = issue_token("events:read")

    async def run():
        ws = WebsocketCommunicator(application, f"/ws/events/?{query}", headers=ws_auth(token))
        await ws.connect(timeout=5)
        assert (await ws.receive_json_from(timeout=5))["type"] == "error"
        # when
        await publish(type="secret.thing", source="/s")
        # then: no filter was accepted, so nothing matches (it used to be everything, unchecked)
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    async_to_sync(run)()


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**63, 10**30])
@pytest.mark.parametrize("media", ["application/cloudevents+json", "application/cloudevents-batch+json"])
def test_publish__integer_extension_beyond_32_bits__400_names_it(publisher, media, value):
    # CloudEvents' Integer is -2,147,483,648 to +2,147,483,647; beyond it, other consumers overflow
    event = {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "/s", "count": value, "ok": 1}
    body = [event] if media.endswith("batch+json") else event
    response = post_raw(publisher, json.dumps(body).encode(), media)
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == ["count"]
    assert not Event.objects.filter(type="t.x").exists()


def test_publish__integer_extensions_at_the_32_bit_bounds__kept(publisher):
    event = {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "/s", "hi": 2**31 - 1, "lo": -(2**31)}
    response = post_raw(publisher, json.dumps(event).encode(), "application/cloudevents+json")
    assert response.status_code == 201, response.content
    assert Event.objects.get(type="t.x").extensions == {"hi": 2**31 - 1, "lo": -(2**31)}
