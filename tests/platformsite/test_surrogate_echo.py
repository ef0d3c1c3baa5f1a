"""A lone surrogate a client sent (JSON's "\\ud800"), echoed back in an error's message or details,
is written as its JSON escape: the answer is the documented 4xx, not a 500 because UTF-8 cannot
encode it."""

from __future__ import annotations

import pytest

from platformsite.hotpath import Answer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/db/databases/", '{"name": "x\\ud800", "backend": "platform"}', "invalid_database"),
        ("/api/v1/db/{db}/orders/records/", '{"id": "x\\ud800"}', "invalid_id"),
        ("/api/v1/db/{db}/orders/records/", '{"metadata": {"k\\ud800": "v"}}', "invalid_metadata"),
    ],
)
def test_an_echoed_lone_surrogate__the_4xx_not_a_500(api_client, path, body, code):
    caller = api_client("db:read", "db:write", "db:manage")
    assert caller.post("/api/v1/db/databases/", {"name": "shop"}, format="json").status_code == 201

    response = caller.post(path.format(db="shop"), data=body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert "\\ud800" in response.content.decode()  # escaped, as JSON allows


def test_hot_path_answers__escape_a_lone_surrogate_too():
    assert Answer.json({"k": "x\ud800é"}).body == b'{"k":"x\\ud800\\u00e9"}'
