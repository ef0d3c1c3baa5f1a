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
