"""POST /api/v1/events/: native JSON, CloudEvents binary/structured/batch modes, validation, duplicates."""

from __future__ import annotations

import json

import pytest
from cloudevents.v1.conversion import to_binary, to_json, to_structured
from cloudevents.v1.http import CloudEvent

from event_app.cloudevents import BATCH, STRUCTURED
from event_app.models import Event, EventCount

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events/"


def cloudevent(type="order.created", source="/shop", data=None, **attributes):
    return CloudEvent({"type": type, "source": source, **attributes}, data)


def post_raw(client, body: bytes, content_type: str, **headers):
    return client.generic("POST", EVENTS, body, content_type=content_type, **headers)


def binary_headers(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def test_publish__native_json__stores_event_and_answers_201(publisher):
    # when
    response = publisher.post(
        EVENTS,
        {
            "type": "order.created",
            "source": "/shop",
            "data": {"total": 12},
            "root_id": "flow-1",
            "metadata": {"region": "eu"},
        },
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 1 and body["duplicates"] == 0
    event = Event.objects.get(pk=body["events"][0]["id"])
    assert (event.type, event.source, event.data, event.root_id) == (
        "order.created",
        "/shop",
        {"total": 12},
        "flow-1",
    )
    assert event.extensions == {"region": "eu"}
    assert event.specversion == "1.0" and event.event_id


@pytest.mark.parametrize(
    "fields, names",
    [
        ({"tpye": "order.created"}, ["type", "tpye"]),  # misspelt: named, not kept as an extension
        ({"type": "t.x", "subjet": "orders/1"}, ["subjet"]),
        ({"type": "t.x", "region": "eu"}, ["region"]),  # extensions go in metadata
        ({"type": "t.x", "rootid": "r1"}, ["rootid"]),  # the native name is root_id
    ],
)
def test_publish__native_event_with_an_unknown_field__400_names_it(publisher, fields, names):
    response = publisher.post(EVENTS, {"source": "/s", **fields}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_events"
    assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == names
    assert not Event.objects.exists()


def test_publish__cloudevent_in_native_json__keeps_its_extensions(publisher):
    event = {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "/s", "region": "eu"}
    response = publisher.post(EVENTS, event, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get(type="t.x").extensions == {"region": "eu"}


def test_publish__binary_mode_from_sdk__stores_attributes_and_data(publisher):
    # given
    headers, body = to_binary(cloudevent(data={"total": 3}, subject="orders/1", rootid="r-1", tenant="acme"))
    # when
    response = post_raw(
        publisher, body, headers.get("content-type", "application/json"), **binary_headers(headers)
    )
    # then
    assert response.status_code == 201, response.content
    event = Event.objects.get()
    assert event.event_id == headers["ce-id"]
    assert (event.subject, event.root_id, event.data) == ("orders/1", "r-1", {"total": 3})
    assert event.extensions == {"tenant": "acme"}


def test_publish__a_cloudevents_media_type_is_structured_mode_whatever_ce_headers_come(publisher):
    # ce-specversion made it binary mode: the envelope was stored as the data of the headers' event
    headers, body = to_structured(cloudevent(data={"total": 3}))
    stray = {"ce-specversion": "1.0", "ce-id": "other", "ce-source": "/other", "ce-type": "other.t"}
    response = post_raw(publisher, body, headers["content-type"], **binary_headers(stray))
    assert response.status_code == 201, response.content
    event = Event.objects.get()
    assert (event.type, event.data) == ("order.created", {"total": 3})


def test_publish__binary_mode_with_bytes__keeps_them_base64(publisher):
    # given
    headers, body = to_binary(cloudevent(data=b"\x00\x01binary", datacontenttype="application/octet-stream"))
    # when
    response = post_raw(publisher, body, "application/octet-stream", **binary_headers(headers))
    # then
    assert response.status_code == 201, response.content
    event = Event.objects.get()
    assert event.data is None and event.data_base64 == "AAFiaW5hcnk="


def test_publish__structured_mode_from_sdk__is_stored(publisher):
    # given
    headers, body = to_structured(cloudevent(data={"n": 1}, time="2026-01-02T03:04:05Z"))
    # when
    response = post_raw(publisher, body, headers["content-type"])
    # then
    assert response.status_code == 201, response.content
    event = Event.objects.get()
    assert event.time.isoformat() == "2026-01-02T03:04:05+00:00"
    assert event.data == {"n": 1}


def test_publish__batch_mode__stores_all_in_order_and_counts_them(publisher):
    # given
    batch = "[" + ",".join(to_json(cloudevent(data={"i": i})).decode() for i in range(5)) + "]"
    # when
    response = post_raw(publisher, batch.encode(), "application/cloudevents-batch+json")
    # then
    assert response.status_code == 201, response.content
    ids = [item["id"] for item in response.json()["events"]]
    assert ids == sorted(ids)
    assert [e.data["i"] for e in Event.objects.order_by("id")] == [0, 1, 2, 3, 4]
    assert (
        sum(EventCount.objects.filter(dimension="type", key="order.created").values_list("count", flat=True))
        == 5
    )


def test_publish__resent_event__is_acknowledged_not_duplicated(publisher):
    # given
    headers, body = to_structured(cloudevent(id="fixed-1"))
    first = post_raw(publisher, body, headers["content-type"])
    # when
    again = post_raw(publisher, body, headers["content-type"])
    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["events"][0] == {**first.json()["events"][0], "duplicate": True}
    assert Event.objects.count() == 1


def test_publish__batch_with_some_duplicates__reports_which(publisher, make_event):
    # given
    make_event(event_id="old", source="/shop")
    batch = [{"specversion": "1.0", "id": i, "source": "/shop", "type": "t"} for i in ("old", "new", "new")]
    # when
    response = post_raw(publisher, json.dumps(batch).encode(), "application/cloudevents-batch+json")
    # then
    assert response.status_code == 201
    body = response.json()
    assert (body["count"], body["created"], body["duplicates"]) == (2, 1, 1)
    assert [e["duplicate"] for e in body["events"]] == [True, False]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"source": "/s", "type": "t", "specversion": "1.0"}, "id"),
        ({"id": "1", "type": "t", "specversion": "1.0"}, "source"),
        ({"id": "1", "source": "/s", "specversion": "1.0"}, "type"),
        ({"id": "1", "source": "/s", "type": "t", "specversion": "0.3"}, "specversion"),
        ({"id": "1", "source": "/s", "type": "t", "specversion": "1.0", "time": "yesterday"}, "time"),
        ({"id": "1", "source": "/s", "type": "t", "specversion": "1.0", "Bad_Name": "x"}, "Bad_Name"),
        ({"id": "1", "source": "/s", "type": "t", "specversion": "1.0", "ext": {"nested": 1}}, "ext"),
    ],
)
def test_publish__invalid_structured_event__400_names_the_field(publisher, event, field):
    # when
    response = post_raw(publisher, json.dumps(event).encode(), "application/cloudevents+json")
    # then
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_events"
    assert {"index": 0, "field": field} == {k: error["details"]["errors"][0][k] for k in ("index", "field")}
    assert not Event.objects.exists()


def test_publish__malformed_batch__is_refused_whole_naming_indexes(publisher):
    # given
    good = {"specversion": "1.0", "id": "a", "source": "/s", "type": "t"}
    batch = [
        good,
        {**good, "id": "b", "type": ""},
        {**good, "id": "c"},
        {**good, "id": "d", "specversion": "2"},
    ]
    # when
    response = post_raw(publisher, json.dumps(batch).encode(), "application/cloudevents-batch+json")
    # then
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "type"), (3, "specversion")]
    assert not Event.objects.exists()


def test_publish__oversized_data__413(publisher, settings):
    # given
    settings.EVENTS_MAX_DATA_BYTES = 100
    # when
    response = publisher.post(EVENTS, {"type": "t", "source": "/s", "data": "x" * 200}, format="json")
    # then
    assert response.status_code == 413
    assert response.json()["error"]["details"]["errors"][0]["field"] == "data"


def test_publish__not_json__400(publisher):
    response = post_raw(publisher, b"{nope", "application/json")
    assert response.status_code == 400
    error = response.json()["error"]  # as every other API says of a body that does not parse
    assert error["code"] == "parse_error" and error["details"]["errors"][0]["message"].startswith(
        "the body is not JSON"
    )


def test_publish__batch_not_a_list__400(publisher):
    response = post_raw(publisher, b'{"id": "1"}', "application/cloudevents-batch+json")
    assert response.status_code == 400


def test_publish__unknown_media_type__415(publisher):
    response = post_raw(publisher, b"type=t", "text/plain")
    assert response.status_code == 415


def test_publish__without_token__401(client):
    response = client.post(EVENTS, {"type": "t", "source": "/s"}, content_type="application/json")
    assert response.status_code == 401


def test_publish__read_scope_only__403(reader):
    response = reader.post(EVENTS, {"type": "t", "source": "/s"}, format="json")
    assert response.status_code == 403
    assert not Event.objects.exists()


def test_event_publish__service_function__keeps_its_interface(db):
    # given
    from event_app.services import event_publish

    # when
    first = event_publish(
        type="auth.account.created",
        source="/platform/auth",
        subject="svc",
        data={"a": 1},
        event_id="x1",
        root_id="r",
        extensions={"actor": "me"},
    )
    again = event_publish(type="auth.account.created", source="/platform/auth", event_id="x1")
    # then
    assert first.pk == again.pk
    assert (again.subject, again.extensions, again.root_id) == ("svc", {"actor": "me"}, "r")


def test_publish__policy_denies_the_type__403_nothing_written(ruled_client):
    # given: an account whose role denies writing order.* events
    deny_orders = {"action": "write", "effect": "deny", "priority": 10}
    caller = ruled_client(
        "events:write",
        rules=[{"resource": "events:*", "action": "write"}, {"resource": "events:order.*", **deny_orders}],
    )
    # when
    denied = caller.post(
        EVENTS, [{"type": "user.x", "source": "/s"}, {"type": "order.x", "source": "/s"}], format="json"
    )
    allowed = caller.post(EVENTS, {"type": "user.x", "source": "/s"}, format="json")
    # then
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "policy_denied"
    assert allowed.status_code == 201
    assert list(Event.objects.filter(source="/s").values_list("type", flat=True)) == ["user.x"]


def test_event_model__field_order__matches_the_positional_fast_path():
    # events_store builds Event(...) positionally: a new or reordered field must update it
    assert [f.name for f in Event._meta.concrete_fields] == [
        "id", "event_id", "source", "type", "specversion", "time", "subject", "datacontenttype",
        "dataschema", "data", "data_base64", "extensions", "root_id", "traceparent", "received",
    ]  # fmt: skip


def test_publish__large_batch_with_duplicates__bulk_path_keeps_order_and_reports(publisher, make_event):
    # given: 120 events (the bulk COPY path on PostgreSQL), two already stored, one repeated
    make_event(event_id="e-3", source="/bulk")
    make_event(event_id="e-70", source="/bulk")
    batch = [{"specversion": "1.0", "id": f"e-{i}", "source": "/bulk", "type": "bulk.t", "data": {"i": i}}
             for i in range(120)]  # fmt: skip
    batch.append(batch[10])
    # when
    response = post_raw(publisher, json.dumps(batch).encode(), "application/cloudevents-batch+json")
    # then
    body = response.json()
    assert response.status_code == 201
    assert (body["count"], body["created"], body["duplicates"]) == (120, 118, 2)
    new_ids = [e["id"] for e in body["events"] if not e["duplicate"]]
    assert new_ids == sorted(new_ids)
    stored = list(
        Event.objects.filter(source="/bulk", type="bulk.t").order_by("id").values_list("data", flat=True)
    )
    assert [d["i"] for d in stored] == [i for i in range(120) if i not in (3, 70)]


def test_publish__too_many_events__413(publisher, settings):
    settings.EVENTS_MAX_BATCH = 2
    response = publisher.post(EVENTS, [{"type": "t", "source": "/s"}] * 3, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_publish__from_a_staff_session_with_its_csrf_token__is_stored(db, django_user_model):
    # Given a dashboard session (the CSRF check reads the request's data before the view does)
    from django.test import Client

    from event_app.models import Event

    django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    browser.login(username="ops", password="pw-ops-123456")
    browser.get("/ui/")
    token = browser.cookies["csrftoken"].value

    # When it publishes in JSON and in structured mode
    for content_type, source in (("application/json", "/ops"), ("application/cloudevents+json", "/ops2")):
        body = {"specversion": "1.0", "type": "ops.noted", "source": source, "id": "1"}
        response = browser.post("/api/v1/events/", body, content_type=content_type, HTTP_X_CSRFTOKEN=token)

        # Then each is stored (it was a 500 and a 415)
        assert response.status_code == 201, response.content
    assert Event.objects.filter(type="ops.noted").count() == 2


def test_read_policy__search_and_related__leave_out_the_types_it_denies(ruled_client, make_event):
    # given: an account allowed to read order.* events only, and a flow of an order and a bill
    caller = ruled_client("events:read", rules=[{"resource": "events:order.*", "action": "read"}])
    order = make_event(type="order.created", source="/p", root_id="flow-1")
    bill = make_event(type="bill.paid", source="/p", root_id="flow-1", data={"card": "4111"})
    # then: the bill is refused by its detail, and left out of the search and the order's related
    assert caller.get(f"{EVENTS}{bill.id}/").status_code == 403
    assert [e["type"] for e in caller.get(EVENTS, {"source": "/p"}).json()["results"]] == ["order.created"]
    assert caller.get(f"{EVENTS}{order.id}/").json()["related"] == []


def test_read_policy__subscriptions_of_denied_types__are_out_of_reach(ruled_client, api_client):
    # given: a webhook for bill.* events, and an account narrowed to order.* events
    owner = api_client("events:read", "events:write")
    hook = {"name": "bills", "url": "https://billing.example.com/hook", "types": ["bill.*"]}
    assert owner.post(f"{EVENTS}subscriptions/", hook, format="json").status_code == 201
    caller = ruled_client("events:read", "events:write", rules=[{"resource": "events:order*", "action": "*"}])
    # then: it can neither see, redirect, read the deliveries of, redeliver, nor delete it
    bills = f"{EVENTS}subscriptions/bills/"
    assert caller.get(bills).status_code == 403
    assert caller.patch(bills, {"url": "https://attacker.example.net/"}, format="json").status_code == 403
    assert caller.get(f"{bills}deliveries/").status_code == 403
    assert caller.post(f"{bills}redeliver/", {"all_dead": True}, format="json").status_code == 403
    assert caller.delete(bills).status_code == 403
    assert [s["name"] for s in caller.get(f"{EVENTS}subscriptions/").json()["results"]] == []
    # nor widen its own subscription to every type
    own = {"name": "orders", "url": "https://orders.example.com/hook", "types": ["order.created"]}
    assert caller.post(f"{EVENTS}subscriptions/", own, format="json").status_code == 201
    assert caller.patch(f"{EVENTS}subscriptions/orders/", {"types": []}, format="json").status_code == 403
    assert (
        caller.patch(f"{EVENTS}subscriptions/orders/", {"types": ["order.paid"]}, format="json").status_code
        == 200
    )


def test_publish__root_id_too_long__is_refused_not_cut(publisher):
    response = publisher.post(EVENTS, {"type": "t.x", "source": "/s", "root_id": "r" * 201}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["errors"][0]["field"] == "root_id"


@pytest.mark.parametrize(
    "metadata, field",
    [
        ({"big": "x" * 2049}, "big"),
        ({f"k{i}": i for i in range(51)}, "metadata"),
        ({"platformid": "999"}, "platformid"),  # webhook deliveries carry the platform's id under it
    ],
)
def test_publish__extensions_beyond_their_bounds__are_refused(publisher, metadata, field):
    response = publisher.post(EVENTS, {"type": "t.x", "source": "/s", "metadata": metadata}, format="json")
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == [field]
    assert not Event.objects.filter(type="t.x").exists()


@pytest.mark.parametrize("metadata", [False, 0, "", []])
def test_publish__metadata_that_is_not_an_object__is_refused(publisher, metadata):
    response = publisher.post(EVENTS, {"type": "t.x", "source": "/s", "metadata": metadata}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["errors"][0]["field"] == "metadata"


def test_publish__fifty_extensions_besides_root_id_and_traceparent__accepted(publisher):
    metadata = {f"k{i}": "v" for i in range(50)}
    body = {"type": "t.x", "source": "/s", "metadata": metadata, "root_id": "r1", "traceparent": ""}
    response = publisher.post(EVENTS, body, format="json")
    assert response.status_code == 201, response.content


def test_publish__extensions_spelled_so_beside_an_empty_metadata__kept(publisher):
    body = {"type": "t.x", "source": "/s", "metadata": {}, "extensions": {"region": "eu"}}
    response = publisher.post(EVENTS, body, format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get(type="t.x").extensions == {"region": "eu"}


@pytest.mark.parametrize(
    "attributes, field",
    [
        ({"subject": ""}, "subject"),  # OPTIONAL attributes: "If present, MUST be a non-empty ..."
        ({"dataschema": ""}, "dataschema"),
        ({"datacontenttype": ""}, "datacontenttype"),
        ({"dataschema": "schema.json"}, "dataschema"),  # a URI has a scheme
        ({"dataschema": "https://example.com/a schema"}, "dataschema"),
        ({"datacontenttype": "json"}, "datacontenttype"),  # RFC 2046: type/subtype
    ],
)
@pytest.mark.parametrize("mode", ["structured", "batch", "native", "binary"])
def test_publish__optional_attribute_empty_or_malformed__400_names_it(publisher, mode, attributes, field):
    event = {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "/s", **attributes}
    if mode == "binary" and attributes == {"datacontenttype": ""}:
        pytest.skip("binary mode: datacontenttype is the Content-Type header, empty when left out")
    if mode == "binary":
        headers = {f"ce-{name}": value for name, value in event.items() if name != "datacontenttype"}
        content_type = attributes.get("datacontenttype", "application/json")
        response = post_raw(publisher, b"{}", content_type, **binary_headers(headers))
    elif mode == "native":
        del event["specversion"]
        response = publisher.post(EVENTS, event, format="json")
    else:
        body, media = ([event], BATCH) if mode == "batch" else (event, STRUCTURED)
        response = post_raw(publisher, json.dumps(body).encode(), media)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_events"
    assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == [field]
    assert not Event.objects.filter(type="t.x").exists()


@pytest.mark.parametrize(
    "attributes",
    [
        {"subject": None, "dataschema": None, "datacontenttype": None},  # null is unset (JSON format)
        {
            "dataschema": "https://example.com/schemas/order.json#/v2",
            "datacontenttype": "text/plain; charset=utf-8",
        },
        {"dataschema": "urn:example:order:v2", "subject": "orders/42"},
    ],
)
def test_publish__optional_attributes_unset_or_well_formed__accepted(publisher, attributes):
    event = {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "/s", "data": "x", **attributes}
    response = post_raw(publisher, json.dumps(event).encode(), STRUCTURED)
    assert response.status_code == 201, response.content
