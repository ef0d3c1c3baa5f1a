"""Dashboard pages (staff only) and the admin screens."""

from __future__ import annotations

import json

import pytest

from config_app.models import Revision

pytestmark = pytest.mark.django_db


def test_dashboard__anonymous__is_sent_to_login(client):
    response = client.get("/ui/config/")
    assert response.status_code == 302
    assert "/ui/login/" in response["Location"]


def test_dashboard__staff__sees_namespaces_and_page(client, staff_user, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "production", {"a": 1})
    client.force_login(staff_user)
    index = client.get("/ui/config/")
    assert index.status_code == 200
    assert b"production@1" in index.content
    page = client.get("/ui/config/payments/")
    assert page.status_code == 200
    assert b'data-env="production"' in page.content
    assert client.get("/ui/config/nowhere/").status_code == 404


def test_admin__lists_revisions_read_only_with_secrets_encrypted(admin_client, make_namespace, put_layer):
    make_namespace("payments", secret_paths=["pw"])
    put_layer("payments", "default", {"pw": "hunter2"})
    listing = admin_client.get("/admin/config_app/revision/")
    assert listing.status_code == 200
    detail = admin_client.get(f"/admin/config_app/revision/{Revision.objects.get().pk}/change/")
    assert detail.status_code == 200
    assert b"hunter2" not in detail.content
    assert admin_client.get("/admin/config_app/revision/add/").status_code == 403
    assert json.dumps(Revision.objects.get().data).count("$secret") == 1


def test_dashboard__the_page_tells_its_script_which_layers_are_written(
    client, staff_user, make_namespace, put_layer
):
    """The script asks only for written layers: an unwritten one answers 404, logged by the browser."""
    make_namespace("payments")
    put_layer("payments", "production", {"a": 1})
    client.force_login(staff_user)
    page = client.get("/ui/config/payments/?env=staging").content.decode()
    assert '<script id="config-written" type="application/json">["production"]</script>' in page
    assert '<span id="resolved-none" hidden>: no layer that staging reads is written yet' in page
