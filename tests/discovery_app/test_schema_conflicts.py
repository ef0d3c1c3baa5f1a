"""A registration that takes another service's node id answers 409, and /api/schema/ documents it."""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NODES = "/api/v1/discovery/nodes/"
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def registration(service: str, **extra):
    return {"service": service, "version": "1.0", "address": "10.1.2.3", "port": 8080, **extra}


@pytest.fixture(scope="module")
def schema():
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.mark.parametrize(
    ("method", "route"), [("post", "/api/v1/discovery/nodes/"), ("put", "/api/v1/discovery/nodes/{node_id}/")]
)
def test_registrations_document_409_with_the_error_body(schema, method, route):
    conflict = schema["paths"][route][method]["responses"]["409"]

    assert conflict["content"]["application/json"]["schema"] == ERROR_REF


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_node_id_taken_by_another_service_answers_the_documented_409(schema, api_client, method):
    writer = api_client("discovery:read", "discovery:write")
    assert writer.put(f"{NODES}shared-1/", registration("orders"), format="json").status_code == 201

    if method == "post":
        answer = writer.post(NODES, registration("billing", id="shared-1"), format="json")
    else:
        answer = writer.put(f"{NODES}shared-1/", registration("billing"), format="json")

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "node_id_taken"
    jsonschema.validate(answer.json(), schema["components"]["schemas"]["Error"])
