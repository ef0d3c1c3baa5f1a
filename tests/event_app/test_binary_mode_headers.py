"""Binary mode's ``ce-`` headers: one whose name an attribute cannot have is refused, never lost.

Django's ASGI request (``platform run``, uvicorn) drops a header whose name holds ``_``, and WSGI
(granian) spells it with ``-``: either way ``ce-some_name`` did not arrive as an attribute.
"""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import async_to_sync

from event_app.models import Event
from platformsite.asgi import application

EVENTS = "/api/v1/events/"
CE = {
    "ce-specversion": "1.0",
    "ce-id": "e1",
    "ce-source": "/s",
    "ce-type": "t.x",
    "content-type": "application/json",
}


def post_asgi(token: str, headers: dict[str, str], body: bytes = b'{"a": 1}') -> httpx.Response:
    """A request as uvicorn hands it to the platform: header names as the client sent them."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(
                EVENTS, content=body, headers={"authorization": f"Bearer {token}", **headers}
            )

    return async_to_sync(send)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("header", ["ce-some_name", "ce-Some_Name", "ce-data_base64", "ce-datacontenttype"])
def test_binary_mode_asgi__ce_header_named_with_underscore__400_names_it(issue_token, header):
    response = post_asgi(issue_token("events:write"), {**CE, header: "kept"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_events"
    assert header.lower().removeprefix("ce-") in response.json()["error"]["details"]["errors"][0]["field"]
    assert not Event.objects.filter(type="t.x").exists()


@pytest.mark.django_db(transaction=True)
def test_binary_mode_asgi__attribute_headers__stored(issue_token):
    response = post_asgi(issue_token("events:write"), {**CE, "ce-tenant": "acme", "x_other": "ignored"})
    assert response.status_code == 201, response.text
    assert Event.objects.get(type="t.x").extensions == {"tenant": "acme"}


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["HTTP_CE_SOME_NAME", "HTTP_CE_"])  # WSGI: ce-some_name, ce-some-name, ce-
def test_binary_mode_wsgi__ce_header_no_attribute_can_be_named__400_names_it(publisher, header):
    headers = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in CE.items()}
    response = publisher.generic(
        "POST", EVENTS, b"{}", content_type="application/json", **headers, **{header: "x"}
    )
    assert response.status_code == 400, response.content
    field = header[5:].lower().replace("_", "-")
    assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == [field]
    assert not Event.objects.filter(type="t.x").exists()


@pytest.mark.django_db(transaction=True)
def test_binary_mode_without_specversion__400_not_the_body_read_as_the_event(issue_token):
    # the body has the look of a native event: read so, the ce- headers would have been dropped
    headers = {name: value for name, value in CE.items() if name != "ce-specversion"}
    native = b'{"type": "t.body", "source": "/body", "data": {"a": 1}}'
    response = post_asgi(issue_token("events:write"), headers, native)
    assert response.status_code == 400, response.text
    error = response.json()["error"]["details"]["errors"][0]
    assert error["field"] == "specversion" and "binary mode" in error["message"]
    assert not Event.objects.filter(type__startswith="t.").exists()
