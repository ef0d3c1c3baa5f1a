"""The JSON body fields of ``platformsite.api.validators``: a boolean is true or false, a number is
a JSON number (DRF's own fields, made for forms too, take "yes", 1, "5" or true); and the write
APIs' input serializers use them, not DRF's."""

from __future__ import annotations

import inspect
from importlib import import_module

import pytest
from rest_framework import serializers

from platformsite.api.validators import StrictBooleanField, StrictFloatField, StrictIntegerField

#: The services whose body input serializers (``*Input``, and :data:`BODIES`) are checked to use
#: only the strict fields; query-string serializers (``SummaryQuery``, trace's search) parse text.
APPS = ("auth", "config", "dbproxy", "discovery", "event", "monitor", "router", "trace")
MODULES = [f"{app}_app.api.serializers" for app in APPS]
BODIES = {"KeepRuleSerializer"}
STRICT = (StrictBooleanField, StrictIntegerField, StrictFloatField)
LOOSE = (serializers.BooleanField, serializers.IntegerField, serializers.FloatField)


class Body(serializers.Serializer):
    flag = StrictBooleanField(required=False)
    count = StrictIntegerField(required=False, min_value=0, max_value=10)
    share = StrictFloatField(required=False)


def errors(data):
    body = Body(data=data)
    return {} if body.is_valid() else body.errors


@pytest.mark.parametrize(
    "data",
    [{"flag": v} for v in ("yes", "true", "1", "on", 1, 0, 1.0)]
    + [{"count": v} for v in (True, False, "5", "5.0", 5.5, float("inf"), [5], {"n": 5})]
    + [{"share": v} for v in (True, "2.5", "1e3", float("nan"), float("inf"), [1])],
)
def test_a_value_of_another_json_type__is_refused_naming_the_field(data):
    assert list(errors(data)) == list(data)


@pytest.mark.parametrize("data", [{"count": 10**400}, {"share": 10**400}])
def test_a_number_too_large__is_refused_not_a_500(data):
    # math.isfinite(10**400) raises OverflowError: ints are not asked (DRF refuses the float)
    assert list(errors(data)) == list(data)


def test_json_booleans_and_numbers__are_taken():
    body = Body(data={"flag": False, "count": 5.0, "share": 2})

    assert body.is_valid(), body.errors
    assert body.validated_data == {"flag": False, "count": 5, "share": 2.0}
    assert type(body.validated_data["count"]) is int and type(body.validated_data["share"]) is float
    assert list(errors({"count": 11})) == ["count"]  # the bounds still apply


def _loose_fields(serializer: serializers.Serializer, where: str):
    for name, field in serializer.fields.items():
        child = getattr(field, "child", None)
        for item in (field, child) if child is not None else (field,):
            if isinstance(item, serializers.Serializer):
                yield from _loose_fields(item, f"{where}.{name}")
            elif isinstance(item, LOOSE) and not isinstance(item, STRICT):
                yield f"{where}.{name}"


@pytest.mark.parametrize("module", MODULES)
def test_input_serializers__take_json_types_only(module):
    inputs = [
        cls
        for name, cls in inspect.getmembers(import_module(module), inspect.isclass)
        if issubclass(cls, serializers.Serializer) and (name.endswith("Input") or name in BODIES)
    ]
    assert inputs
    loose = [path for cls in inputs for path in _loose_fields(cls(), cls.__name__)]

    assert loose == []


@pytest.mark.django_db
def test_a_subscription_switched_on_by_yes__400_and_left_as_it_was(api_client):
    operator = api_client("events:read", "events:write")
    made = operator.post(
        "/api/v1/events/subscriptions/", {"name": "hook", "url": "http://127.0.0.1:9/h"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert (
        operator.patch("/api/v1/events/subscriptions/hook/", {"is_active": False}, format="json").status_code
        == 200
    )

    refusal = operator.patch("/api/v1/events/subscriptions/hook/", {"is_active": "yes"}, format="json")

    assert refusal.status_code == 400 and "is_active" in refusal.json()["error"]["details"]
    assert operator.get("/api/v1/events/subscriptions/hook/").json()["is_active"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"keep_errors": "no"}, {"keep_share": "0.5"}, {"retention_days": True}])
def test_a_keep_rule_of_mistyped_values__400_naming_the_field_nothing_stored(api_client, body):
    admin = api_client("trace:read", "trace:write", "trace:manage")

    refusal = admin.put("/api/v1/trace/rules/web/", body, format="json")

    assert refusal.status_code == 400 and next(iter(body)) in refusal.json()["error"]["details"]
    assert admin.get("/api/v1/trace/rules/").json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/auth/accounts/", "/api/v1/monitor/checks/", "/api/v1/config/audit/"],
)
def test_list_filters__an_unknown_parameter_is_400_naming_it_not_skipped(api_client, path):
    # ?stauts=down answered every row, as if no filter had been given
    response = api_client("admin").get(path, {"stauts": "down", "page_size": "5"})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["details"]) == ["stauts"]
