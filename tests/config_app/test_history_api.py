"""History: audit log with filters and cursor pages, revision read, diff, rollback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from config_app.models import Revision
from tests.config_app.conftest import base

pytestmark = pytest.mark.django_db


def layer_url(ns: str, env: str) -> str:
    return base(ns) + f"layers/{env}/"


def test_audit__lists_revisions_newest_first_in_cursor_pages(rw, make_namespace, put_layer):
    make_namespace("payments")
    for i in range(5):
        put_layer("payments", "default", {"i": i}, comment=f"c{i}")
    page = rw.get(base("payments") + "audit/", {"page_size": 2}).json()
    assert [r["revision"] for r in page["results"]] == [5, 4]
    assert "data" not in page["results"][0]
    page = rw.get(page["next"]).json()
    assert [r["revision"] for r in page["results"]] == [3, 2]


def test_audit__author_and_time_filters(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    rw.put(layer_url("payments", "default"), {"data": {"a": 2}}, format="json")
    old = Revision.objects.get(number=1)
    Revision.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=2))
    by_fixture = rw.get(base("payments") + "audit/", {"author": "service:fixture"}).json()["results"]
    assert [r["revision"] for r in by_fixture] == [1]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = rw.get(base("payments") + "audit/", {"from": since}).json()["results"]
    assert [r["revision"] for r in recent] == [2]
    until = rw.get(base("payments") + "audit/", {"to": since}).json()["results"]
    assert [r["revision"] for r in until] == [1]


def test_audit__bad_time__is_400(rw, make_namespace):
    make_namespace("payments")
    assert rw.get(base("payments") + "audit/", {"from": "yesterday"}).status_code == 400


def test_audit__an_env_no_layer_can_have__is_400_not_an_empty_list(rw, make_namespace):
    make_namespace("payments")
    response = rw.get(base("payments") + "audit/", {"env": "BAD ENV"})
    assert response.status_code == 400
    assert "env" in response.json()["error"]["details"]


def test_global_audit__spans_namespaces(rw, make_namespace, put_layer):
    make_namespace("payments")
    make_namespace("orders")
    put_layer("payments", "default", {"a": 1})
    put_layer("orders", "default", {"a": 1})
    results = rw.get("/api/v1/config/audit/").json()["results"]
    assert {r["namespace"] for r in results} == {"payments", "orders"}
    results = rw.get("/api/v1/config/audit/", {"namespace": "orders"}).json()["results"]
    assert {r["namespace"] for r in results} == {"orders"}


def test_revision_read__returns_its_data(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    put_layer("payments", "default", {"a": 2})
    body = rw.get(layer_url("payments", "default") + "revisions/1/").json()
    assert (body["revision"], body["data"]) == (1, {"a": 1})
    assert rw.get(layer_url("payments", "default") + "revisions/9/").status_code == 404
    listed = rw.get(layer_url("payments", "default") + "revisions/").json()["results"]
    assert [r["revision"] for r in listed] == [2, 1]


def test_diff__names_added_removed_and_changed_paths(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "a", "port": 1}, "old": True})
    put_layer("payments", "default", {"db": {"host": "b", "port": 1}, "new": [1]})
    body = rw.get(layer_url("payments", "default") + "diff", {"from": 1, "to": 2}).json()
    assert body["added"] == [{"path": "new", "value": [1]}]
    assert body["removed"] == [{"path": "old", "value": True}]
    assert body["changed"] == [{"path": "db/host", "from": "a", "to": "b"}]


def test_diff__unknown_revision__is_404(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert rw.get(layer_url("payments", "default") + "diff", {"from": 1, "to": 7}).status_code == 404
    assert rw.get(layer_url("payments", "default") + "diff", {"from": "x"}).status_code == 400
    # Named as asked (it said "no revision 98", the default from, for to=99)
    missing = rw.get(layer_url("payments", "default") + "diff", {"to": 99}).json()["error"]
    assert missing["message"] == "payments/default has no revision 99 (its latest is 1)."
    assert missing["details"]["param"] == "to"


def test_rollback__adds_a_new_revision_with_the_old_data(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    put_layer("payments", "default", {"a": 2})
    response = rw.post(layer_url("payments", "default") + "rollback", {"revision": 1}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["revision"], body["data"], body["source"]) == (3, {"a": 1}, "rollback")
    assert body["comment"] == "rollback to revision 1"
    assert rw.get(base("payments") + "resolve").json()["data"] == {"a": 1}
    assert Revision.objects.filter(namespace__name="payments").count() == 3


def test_rollback__stale__is_409_and_changes_nothing(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    put_layer("payments", "default", {"a": 2})
    response = rw.post(
        layer_url("payments", "default") + "rollback", {"revision": 1, "expected_revision": 1}, format="json"
    )
    assert response.status_code == 409
    assert Revision.objects.count() == 2


def test_rollback__unknown_revision__is_404(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.post(layer_url("payments", "default") + "rollback", {"revision": 5}, format="json")
    assert response.status_code == 404
    assert Revision.objects.count() == 1
