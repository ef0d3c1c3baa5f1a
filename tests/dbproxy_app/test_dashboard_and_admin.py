"""The db dashboard's pages and the admin (staff only; the DSN never shown)."""

from __future__ import annotations

import pytest

from dbproxy_app.models import Database, Table
from tests.dbproxy_app.test_records_api import create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(manager, writer):
    response = manager.post(
        "/api/v1/db/databases/",
        {"name": "shop", "backend": "postgresql", "dsn": "postgresql://u:s3cret@127.0.0.1:1/x"},
        format="json",
    )
    assert response.status_code == 201
    assert manager.post("/api/v1/db/databases/", {"name": "local"}, format="json").status_code == 201
    create(writer, "local", {"id": "a1", "metadata": {"env": "prod"}, "data": {"total": 5}})
    create(writer, "local", {"id": "b2", "metadata": {"env": "dev"}})
    manager.post(
        "/api/v1/db/databases/local/policies/",
        {"role": "tenant", "condition": "metadata.owner == $token.sub"},
        format="json",
    )
    return "local"


def test_pages__need_a_staff_session(client, shop):
    for path in ("/ui/db/", "/ui/db/local/", "/ui/db/local/orders/"):
        response = client.get(path)
        assert response.status_code == 302 and "/ui/login/" in response["Location"]


def test_pages__list_databases_tables_policies_and_records(client, staff_user, shop):
    client.force_login(staff_user)
    index = client.get("/ui/db/").content.decode()
    assert 'data-database="shop"' in index and 'data-database="local"' in index and "s3cret" not in index
    detail = client.get("/ui/db/shop/").content.decode()
    assert "DSN set (never shown)" in detail and "s3cret" not in detail
    local = client.get("/ui/db/local/").content.decode()
    assert "/ui/db/local/orders/" in local and "metadata.owner == $token.sub" in local
    browser = client.get("/ui/db/local/orders/", {"q": "meta.env=eq.prod"}).content.decode()
    assert 'data-id="a1"' in browser and 'data-id="b2"' not in browser
    assert 'data-subject-prefix="local/orders/"' in browser


def test_record_browser__shows_a_bad_query_naming_the_term(client, staff_user, shop):
    client.force_login(staff_user)
    response = client.get("/ui/db/local/orders/", {"q": "meta.env=bogus.x"})
    assert response.status_code == 200
    assert 'id="query-error"' in response.content.decode() and "bogus.x" in response.content.decode()


def test_pages__unknown_names_are_404(client, staff_user, shop):
    client.force_login(staff_user)
    for path in ("/ui/db/nope/", "/ui/db/local/nope/", "/ui/db/BAD%20NAME/"):
        assert client.get(path).status_code == 404


def test_admin__shows_no_dsn_and_deletes_through_the_services(client, django_user_model, shop):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(root)
    shop_id = Database.objects.get(name="shop").pk
    page = client.get(f"/admin/dbproxy_app/database/{shop_id}/change/").content.decode()
    assert "s3cret" not in page and "dsn_sealed" not in page
    assert client.get("/admin/dbproxy_app/database/").status_code == 200
    table = Table.objects.get(database__name="local", name="orders")
    response = client.post(f"/admin/dbproxy_app/table/{table.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Table.objects.filter(pk=table.pk).exists()


def test_admin_delete_pages__count_the_records_that_go_with_a_database_or_table(
    client, django_user_model, shop
):
    """Django's page listed every record (5,000 made 161 KB); it names the rows and counts the rest."""
    from django.utils import timezone

    from dbproxy_app.models import Record

    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(root)
    table = Table.objects.get(database__name="local", name="orders")
    now = timezone.now()
    Record.objects.bulk_create(
        Record(table=table, record_id=f"bulk-{n:04}", created=now, updated=now) for n in range(300)
    )
    local = Database.objects.get(name="local")
    pages = {
        "database": client.get(f"/admin/dbproxy_app/database/{local.pk}/delete/"),
        "table": client.get(f"/admin/dbproxy_app/table/{table.pk}/delete/"),
        "databases": client.post(
            "/admin/dbproxy_app/database/", {"action": "delete_selected", "_selected_action": [local.pk]}
        ),
    }
    for name, response in pages.items():
        page = response.content.decode()
        assert response.status_code == 200, name
        assert "bulk-0001" not in page and "Records: 302" in page, name
        assert 'name="post"' in page, name  # nothing refused for want of a permission
    assert "local/orders" in pages["table"].content.decode()
    assert "Tables: 1" in pages["database"].content.decode()
    assert "Row policies: 1" in pages["databases"].content.decode()
    assert client.post(f"/admin/dbproxy_app/database/{local.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Record.objects.exists() and not Database.objects.filter(name="local").exists()
