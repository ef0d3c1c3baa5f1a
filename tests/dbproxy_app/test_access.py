"""Who may do what: scopes, policy rules per database and table, row policies, confinement."""

from __future__ import annotations

import pytest

from tests.dbproxy_app.test_records_api import create, ids, url


def routes(database: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/api/v1/db/databases/", None),
        ("post", "/api/v1/db/databases/", {"name": "newdb"}),
        ("get", f"/api/v1/db/databases/{database}/", None),
        ("patch", f"/api/v1/db/databases/{database}/", {"publish_changes": False}),
        ("delete", f"/api/v1/db/databases/{database}/", None),
        ("get", f"/api/v1/db/databases/{database}/tables/", None),
        ("post", f"/api/v1/db/databases/{database}/tables/", {"name": "t2"}),
        ("get", f"/api/v1/db/databases/{database}/tables/orders/", None),
        ("delete", f"/api/v1/db/databases/{database}/tables/orders/", None),
        ("get", f"/api/v1/db/databases/{database}/policies/", None),
        ("post", f"/api/v1/db/databases/{database}/policies/", {"role": "r", "condition": "id == 'a'"}),
        ("get", url(database), None),
        ("post", url(database), {"id": "new"}),
        ("get", url(database, record="a"), None),
        ("put", url(database, record="a"), {"data": 2}),
        ("patch", url(database, record="a"), {"data": 2}),
        ("delete", url(database, record="a"), None),
        ("post", f"/api/v1/db/{database}/orders/bulk/", {"create": [{"id": "b"}]}),
    ]


@pytest.fixture
def orders(make_database, writer, transactional_db):
    name = make_database("platform")
    create(writer, name, {"id": "a", "data": 1})
    return name


def test_without_credentials_or_with_an_outsider_token__every_route_is_refused(orders, outsider):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    for method, path, body in routes(orders):
        assert getattr(anonymous, method)(path, body, format="json").status_code == 401, (method, path)
        response = getattr(outsider, method)(path, body, format="json")
        assert response.status_code == 403, (method, path, response.content)
        assert (
            response.json()["error"]["code"] == "permission_denied"
            or "scope" in response.json()["error"]["message"]
        )
    assert create_check(orders)


def create_check(database):
    from dbproxy_app.models import Database

    return Database.objects.filter(name=database).exists()


def test_read_scope__reads_but_never_writes(orders, reader):
    for method, path, body in routes(orders):
        response = getattr(reader, method)(path, body, format="json")
        if method == "get":
            assert response.status_code == 200, (path, response.content)
        else:
            assert response.status_code == 403, (method, path, response.content)
    assert ids(reader.get(url(orders))) == ["a"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/db/databases/"),
        ("patch", "/api/v1/db/databases/{db}/"),
        ("delete", "/api/v1/db/databases/{db}/"),
        ("delete", "/api/v1/db/databases/{db}/tables/orders/"),
        ("post", "/api/v1/db/databases/{db}/policies/"),
    ],
)
def test_write_scope__does_not_manage_the_catalog(orders, writer, method, path):
    body = {"name": "x2", "role": "r", "condition": "id == 'a'", "publish_changes": False}
    response = getattr(writer, method)(path.format(db=orders), body, format="json")
    assert response.status_code == 403, response.content
    assert writer.get(url(orders, record="a")).status_code == 200


def test_policy_rules__narrow_a_caller_to_its_databases(
    make_database, writer, client_for, rule, transactional_db
):
    mine = make_database("platform", name="orders")
    other = make_database("platform", name="billing")
    create(writer, mine, {"id": "a"})
    create(writer, other, {"id": "b"})
    rule("orders-team", "db:orders/*")
    team = client_for("orders-svc", "db:read", "db:write", roles=("orders-team",))
    assert ids(team.get(url(mine))) == ["a"]
    assert team.post(url(mine), {"id": "c"}, format="json").status_code == 201
    for response in (
        team.get(url(other)),
        team.get(url(other, record="b")),
        team.post(url(other), {"id": "x"}, format="json"),
        team.get(f"/api/v1/db/databases/{other}/"),
    ):
        assert response.status_code == 403 and response.json()["error"]["code"] == "policy_denied"
    listed = [d["name"] for d in team.get("/api/v1/db/databases/").json()["results"]]
    assert listed == ["orders"]


def test_policy_rules__per_table(make_database, writer, client_for, rule, transactional_db):
    name = make_database("platform", name="shop")
    create(writer, name, {"id": "a"}, table="items")
    create(writer, name, {"id": "b"}, table="secrets")
    rule("items-only", "db:shop/items", "*")
    rule("items-only", "db:shop/", "read")
    caller = client_for("items-svc", "db:read", "db:write", roles=("items-only",))
    assert ids(caller.get(url(name, "items"))) == ["a"]
    assert caller.get(url(name, "secrets")).status_code == 403
    # the lists leave out what the caller may not read (a policy's condition names its table's fields)
    tables = caller.get(f"/api/v1/db/databases/{name}/tables/")
    assert [t["name"] for t in tables.json()["results"]] == ["items"]
    manager = client_for("dba", "db:read", "db:write", "db:manage")
    for table in ("items", "secrets", "*"):
        made = manager.post(
            f"/api/v1/db/databases/{name}/policies/",
            {"table": table, "role": "r", "condition": "metadata.owner == $token.sub"},
            format="json",
        )
        assert made.status_code == 201, made.content
    policies = caller.get(f"/api/v1/db/databases/{name}/policies/").json()["results"]
    assert sorted(p["table"] for p in policies) == ["*", "items"]
    hidden = next(
        p["id"]
        for p in manager.get(f"/api/v1/db/databases/{name}/policies/").json()["results"]
        if p["table"] == "secrets"
    )
    refused = caller.get(f"/api/v1/db/databases/{name}/policies/{hidden}/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "policy_denied"


@pytest.fixture
def tenancy(backend, make_database, manager, writer, transactional_db):
    """A database where role ``tenant`` reads public records and its own, and writes its own."""
    name = make_database(backend)
    create(writer, name, {"id": "pub", "metadata": {"owner": "service:other", "public": "yes"}})
    create(writer, name, {"id": "theirs", "metadata": {"owner": "service:other"}})
    create(writer, name, {"id": "mine", "metadata": {"owner": "service:alice"}, "data": {"n": 1}})
    for action, condition in (
        ("read", "metadata.public == 'yes' or metadata.owner == $token.sub"),
        ("write", "metadata.owner == $token.sub"),
    ):
        response = manager.post(
            f"/api/v1/db/databases/{name}/policies/",
            {"table": "orders", "role": "tenant", "action": action, "condition": condition},
            format="json",
        )
        assert response.status_code == 201, response.content
    return name


def test_row_policies__filter_reads_by_token_claims_on_every_backend(tenancy, client_for, manager):
    alice = client_for("alice", "db:read", "db:write", roles=("tenant",))
    assert sorted(ids(alice.get(url(tenancy)))) == ["mine", "pub"]
    assert ids(alice.get(url(tenancy) + "?meta.owner=eq.service:other")) == ["pub"]
    assert alice.get(url(tenancy, record="theirs")).status_code == 404
    assert alice.get(url(tenancy, record="mine")).status_code == 200
    counted = alice.get(url(tenancy), HTTP_PREFER="count=exact")
    assert counted.json()["count"] == 2
    assert ids(manager.get(url(tenancy))) == []  # db:manage is no role: the policy applies to it too


def test_row_policies__confine_writes_on_every_backend(tenancy, client_for, writer):
    alice = client_for("alice", "db:read", "db:write", roles=("tenant",))
    ok = alice.post(url(tenancy), {"id": "new", "metadata": {"owner": "service:alice"}}, format="json")
    assert ok.status_code == 201, ok.content
    forged = alice.post(url(tenancy), {"id": "forged", "metadata": {"owner": "service:other"}}, format="json")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "row_policy_denied"
    give_away = alice.patch(
        url(tenancy, record="mine"), {"metadata": {"owner": "service:other"}}, format="json"
    )
    assert give_away.status_code == 403
    assert alice.patch(url(tenancy, record="pub"), {"data": 1}, format="json").status_code == 403
    assert alice.delete(url(tenancy, record="theirs")).status_code == 404
    assert alice.patch(url(tenancy, record="mine"), {"data": {"n": 2}}, format="json").status_code == 200
    bulk = alice.post(
        f"/api/v1/db/{tenancy}/orders/bulk/",
        {"create": [{"id": "b1", "metadata": {"owner": "service:alice"}}], "delete": ["theirs"]},
        format="json",
    )
    assert bulk.status_code == 404 and bulk.json()["error"]["details"]["index"] == 0
    assert writer.get(url(tenancy, record="b1")).status_code == 404  # nothing of the bulk call
    assert writer.get(url(tenancy, record="forged")).status_code == 404


def test_row_policies__a_caller_without_the_role_sees_no_row(tenancy, client_for):
    stranger = client_for("bob", "db:read", "db:write")
    assert ids(stranger.get(url(tenancy))) == []
    assert stranger.get(url(tenancy, record="pub")).status_code == 404
    response = stranger.post(url(tenancy), {"id": "n", "metadata": {"owner": "service:bob"}}, format="json")
    assert response.status_code == 403


def test_row_policies__admin_is_not_filtered(tenancy, api_client):
    admin = api_client("admin")
    assert sorted(ids(admin.get(url(tenancy)))) == ["mine", "pub", "theirs"]


@pytest.mark.parametrize(
    "condition",
    [
        "metadata.owner ==",
        "metadata.owner = 'a'",
        "$token.secret == id",
        "password == 'x'",
        "(id == 'a'",
        "1 == 2",
    ],
)
def test_row_policies__a_condition_that_does_not_parse_is_400(orders, manager, condition):
    response = manager.post(
        f"/api/v1/db/databases/{orders}/policies/", {"role": "tenant", "condition": condition}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_condition"


def test_owner_only__confines_a_database_to_the_service_that_owns_it(
    make_database, api_client, client_for, transactional_db
):
    owner = client_for("payments", "db:read", "db:write", "db:manage")
    response = owner.post("/api/v1/db/databases/", {"name": "payments", "owner_only": True}, format="json")
    assert response.status_code == 201 and response.json()["owner"] == "service:payments"
    assert owner.post(url("payments"), {"id": "a"}, format="json").status_code == 201
    other = client_for("intruder", "db:read", "db:write")
    response = other.get(url("payments"))
    assert response.status_code == 403 and response.json()["error"]["code"] == "database_confined"
    assert api_client("admin").get(url("payments")).status_code == 200
    # nor is it listed to others: its name, owner and settings are its owner's
    assert owner.post("/api/v1/db/databases/", {"name": "shared"}, format="json").status_code == 201
    listed = lambda client: [d["name"] for d in client.get("/api/v1/db/databases/").json()["results"]]  # noqa: E731
    assert listed(other) == ["shared"]
    assert listed(owner) == listed(api_client("admin")) == ["payments", "shared"]


def test_owner_only__publishes_no_change_feed_unless_asked(client_for, db):
    # every events:read holder reads the feed: a confined database's records, metadata included,
    # were announced to all of them
    from event_app.models import Event

    owner = client_for("payments", "db:read", "db:write", "db:manage")
    made = owner.post("/api/v1/db/databases/", {"name": "payments", "owner_only": True}, format="json")
    assert made.status_code == 201 and made.json()["publish_changes"] is False
    asked = {"name": "ledger", "owner_only": True, "publish_changes": True}
    assert owner.post("/api/v1/db/databases/", asked, format="json").json()["publish_changes"] is True
    shared = owner.post("/api/v1/db/databases/", {"name": "shared"}, format="json")
    assert shared.json()["publish_changes"] is True
    record = {"id": "a", "metadata": {"owner": "x"}}
    assert owner.post(url("payments"), record, format="json").status_code == 201
    assert not Event.objects.filter(type__startswith="db.record.").exists()
