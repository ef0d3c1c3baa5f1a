"""The trace admin screens load for an operator, with rows; spans and edges are read only."""

from __future__ import annotations

import pytest

from tests.trace_app.conftest import hex_id, post_zipkin, zipkin_span
from trace_app.models import KeepRule, Span

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["span", "edge", "keeprule"])
def test_admin_changelist__with_rows__loads(admin_client, writer, model):
    trace, root = hex_id(8), hex_id(8)
    post_zipkin(
        writer,
        [
            zipkin_span(trace, root, "web", kind="CLIENT"),
            zipkin_span(trace, hex_id(8), "api", kind="SERVER", parentId=root),
        ],
    )
    KeepRule.objects.create(service="web", keep_share=0.5)
    assert admin_client.get(f"/admin/trace_app/{model}/?q=web").status_code == 200


def test_admin_span__read_only(admin_client, writer):
    post_zipkin(writer, [zipkin_span(hex_id(8), hex_id(8), "web")])
    span = Span.objects.get()
    assert admin_client.get(f"/admin/trace_app/span/{span.pk}/change/").status_code == 200
    assert admin_client.get("/admin/trace_app/span/add/").status_code == 403


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"retention_days": "0"}, "greater than or equal to 1"),
        ({"keep_share": "2"}, "less than or equal to 1.0"),
        ({"keep_share": "-0.5"}, "greater than or equal to 0.0"),
        ({"slower_than_ms": "0"}, "greater than or equal to 1"),
        ({"service": "a\nb"}, "any but NUL or a line break"),  # '/' is taken, as a span's service may hold it
    ],
)
def test_admin_keep_rule__refuses_what_the_api_refuses(admin_client, changes, error):
    form = {
        "service": "*",
        "keep_errors": "on",
        "slower_than_ms": "",
        "keep_share": "1",
        "retention_days": "",
    }
    form.update(changes)
    response = admin_client.post("/admin/trace_app/keeprule/add/", form)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not KeepRule.objects.exists()


def test_admin_keep_rule__a_valid_rule_is_saved(admin_client):
    form = {"service": "web", "keep_errors": "on", "slower_than_ms": "300", "keep_share": "0.1"}
    response = admin_client.post("/admin/trace_app/keeprule/add/", {**form, "retention_days": "3"})
    assert response.status_code == 302
    assert KeepRule.objects.get(service="web").retention_days == 3


def test_admin_keep_rule__applies_at_once_saved_or_deleted(admin_client, django_capture_on_commit_callbacks):
    # the ingest's cached rules were read again only after RULES_TTL
    from trace_app.services import keeping

    form = {"service": "web", "keep_errors": "on", "slower_than_ms": "", "keep_share": "0.1"}
    keeping.rules()  # cached
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/trace_app/keeprule/add/", {**form, "retention_days": ""})
    assert keeping.rules()["web"].keep_share == 0.1
    rule = KeepRule.objects.get(service="web")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/trace_app/keeprule/",
            {"action": "delete_selected", "_selected_action": [rule.pk], "post": "yes"},
        )
    assert "web" not in keeping.rules() and not KeepRule.objects.exists()
