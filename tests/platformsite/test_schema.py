"""What /api/schema/ documents: each operation's error statuses with the one error body, lists as pages."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from django.test import Client
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from platformsite.api.schema import ERROR, NOT_ANSWERED
from platformsite.api.views import ServiceView

ERROR_REF = {"$ref": "#/components/schemas/Error"}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema: dict[str, Any]):
    for route, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {route}", item[method]


def body_schema(response: dict[str, Any]) -> dict[str, Any]:
    """The JSON body's schema of a response or request body ({} when it has none)."""
    return response.get("content", {}).get("application/json", {}).get("schema", {})


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_account_creation_documents_201_and_each_error_with_the_error_body(schema):
    responses = schema["paths"]["/api/v1/auth/accounts/"]["post"]["responses"]

    assert {"201", "400", "401", "403", "413", "415", "429"} <= set(responses)
    assert body_schema(responses["201"]) == {"$ref": "#/components/schemas/AccountOutput"}
    for code in ("400", "401", "403", "413", "415", "429"):
        assert body_schema(responses[code]) == ERROR_REF, code


def test_account_list_documents_a_cursor_page_of_accounts_and_its_cursor(schema):
    operation = schema["paths"]["/api/v1/auth/accounts/"]["get"]
    page = resolve(schema, body_schema(operation["responses"]["200"]))

    assert set(page["properties"]) == {"next", "previous", "results"}
    assert page["properties"]["results"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/AccountOutput"},
    }
    assert {"cursor", "page_size"} <= {p["name"] for p in operation["parameters"]}
    assert "400" in operation["responses"]  # an invalid cursor


#: Outside contracts that answer bare arrays as their own specification says (Zipkin's v2 API).
ARRAY_CONTRACTS = ("/api/v2/",)


def test_no_operation_documents_a_bare_array(schema):
    arrays = [
        f"{name} {code}"
        for name, operation in operations(schema)
        if not name.split(" ", 1)[1].startswith(ARRAY_CONTRACTS)
        for code, response in operation["responses"].items()
        if resolve(schema, body_schema(response)).get("type") == "array"
    ]

    assert arrays == []


def test_every_authenticated_operation_documents_401_403_and_429_with_the_error_body(schema):
    missing = [
        f"{name} {code}"
        for name, operation in operations(schema)
        if operation.get("security")
        for code in ("401", "403", "429")
        if body_schema(operation["responses"].get(code, {})) != ERROR_REF
    ]

    assert missing == []


def test_operations_with_path_parameters_document_404_and_bodies_document_413_and_415(schema):
    for name, operation in operations(schema):
        if "{" in name:
            assert "404" in operation["responses"], name
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), name


def test_versioned_writes_and_named_creates_document_409_and_other_writes_do_not(schema):
    layers = schema["paths"]["/api/v1/config/namespaces/{ns}/layers/{env}/"]
    roles = schema["paths"]["/api/v1/auth/roles/"]
    rules = schema["paths"]["/api/v1/auth/rules/"]

    assert body_schema(layers["put"]["responses"]["409"]) == ERROR_REF
    assert body_schema(roles["post"]["responses"]["409"]) == ERROR_REF  # the name is taken
    assert "409" not in rules["post"]["responses"]


def test_a_delete_that_answers_the_revision_documents_it_and_its_optional_body(schema):
    delete = schema["paths"]["/api/v1/config/namespaces/{ns}/layers/{env}/values/{path}"]["delete"]

    assert "204" not in delete["responses"]
    assert body_schema(delete["responses"]["200"]) == {"$ref": "#/components/schemas/RevisionDataOutput"}
    assert body_schema(delete["requestBody"]) == {"$ref": "#/components/schemas/WriteInput"}
    assert "409" in delete["responses"]


def test_the_error_component_describes_what_the_api_answers(schema, api_client):
    answer = api_client("auth:read").get("/api/v1/auth/accounts/nobody/")

    assert answer.status_code == 404
    jsonschema.validate(answer.json(), schema["components"]["schemas"]["Error"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": "Not found."}, schema["components"]["schemas"]["Error"])


class Thing(serializers.Serializer):
    name = serializers.CharField()


class ThingView(ServiceView):
    service = "things"

    @extend_schema(responses={200: Thing, 409: ERROR, 404: NOT_ANSWERED})
    def get(self, request, name: str) -> Response:
        return Response({"name": name})


class BareListView(ServiceView):
    service = "things"
    pagination_class = None

    @extend_schema(responses=Thing(many=True))
    def get(self, request) -> Response:
        return Response([])


class PagedListView(ServiceView):
    service = "things"

    @extend_schema(responses=Thing(many=True))
    def get(self, request) -> Response:
        return self.paginate([], serializer=Thing)


def test_a_view_adds_and_drops_statuses_and_opts_out_of_pages():
    generated = SchemaGenerator(
        patterns=[
            path("things/<str:name>/", ThingView.as_view()),
            path("bare/", BareListView.as_view()),
            path("paged/", PagedListView.as_view()),
        ]
    ).get_schema(public=True)
    thing = generated["paths"]["/things/{name}/"]["get"]["responses"]
    bare = generated["paths"]["/bare/"]["get"]["responses"]["200"]
    paged = generated["paths"]["/paged/"]["get"]["responses"]["200"]

    assert body_schema(thing["409"]) == ERROR_REF
    assert "404" not in thing
    assert {"200", "400", "401", "403", "429"} <= set(thing)
    assert body_schema(bare) == {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}
    assert body_schema(paged) == {"$ref": "#/components/schemas/PaginatedThingList"}


def test_event_search_documents_a_cursor_page_of_events(schema):
    operation = schema["paths"]["/api/v1/events/"]["get"]
    page = resolve(schema, body_schema(operation["responses"]["200"]))

    assert page["properties"]["results"]["type"] == "array"
    assert {"cursor", "page_size"} <= {p["name"] for p in operation["parameters"]}


def test_a_diff_documents_its_from_key_as_answered(schema, api_client):
    writer = api_client("config:read", "config:write")
    writer.post("/api/v1/config/namespaces/", {"name": "app"}, format="json")
    writer.put("/api/v1/config/namespaces/app/layers/prod/", {"data": {"a": 1}}, format="json")
    answer = writer.get("/api/v1/config/namespaces/app/layers/prod/diff")
    diff = schema["components"]["schemas"]["DiffOutput"]

    assert answer.status_code == 200
    assert "from" in diff["required"]
    jsonschema.validate(answer.json(), diff)


def test_no_parameter_is_documented_under_a_python_name(schema):
    # ``from`` is a keyword: fields declared as ``from_`` must still be documented as ``from``
    names = {
        parameter["name"]
        for _, operation in operations(schema)
        for parameter in operation.get("parameters", [])
    }
    assert "from" in names
    assert not [name for name in names if name.endswith("_") and not name.startswith("_")]


def test_operations_are_grouped_by_their_service_in_the_api_docs(schema):
    tags = {
        path.split("/")[3]: operation["tags"]
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/") and path.count("/") > 4
        for operation in item.values()
        if isinstance(operation, dict) and "tags" in operation
    }
    assert {service: tag for service, tag in tags.items() if tag != [service]} == {}  # one "api" list before
    assert {"auth", "config", "discovery", "events", "monitor", "router", "trace", "db"} <= set(tags)
