"""``owner_only`` and ``publish_changes`` are JSON booleans: ``"yes"``, ``"false"`` or ``1`` is a
400 naming the field that registers or changes nothing (DRF's BooleanField took ``"yes"`` as
true: a database confined, or its change feed switched, by a client that meant something else)."""

from __future__ import annotations

import pytest

from dbproxy_app.models import Database
from tests.errors import refused

pytestmark = pytest.mark.django_db(transaction=True)

DATABASES = "/api/v1/db/databases/"


@pytest.mark.parametrize(
    "change",
    [
        {"owner_only": "yes"},
        {"owner_only": "true"},
        {"owner_only": 1},
        {"publish_changes": "no"},
        {"publish_changes": 0},
        {"publish_changes": "false"},
    ],
)
def test_a_boolean_as_a_string_or_a_number__400_naming_it__nothing_registered_or_changed(manager, change):
    field = next(iter(change))

    refused(manager.post(DATABASES, {"name": "shop", **change}, format="json"), field)
    assert not Database.objects.filter(name="shop").exists()

    assert manager.post(DATABASES, {"name": "shop"}, format="json").status_code == 201
    refused(manager.patch(f"{DATABASES}shop/", change, format="json"), field)
    stored = Database.objects.get(name="shop")
    assert (stored.owner_only, stored.publish_changes) == (False, True)


def test_json_booleans__are_taken(manager):
    made = manager.post(DATABASES, {"name": "shop", "owner_only": True}, format="json")
    changed = manager.patch(f"{DATABASES}shop/", {"publish_changes": True}, format="json")

    assert (made.status_code, changed.status_code) == (201, 200)
    assert (changed.json()["owner_only"], changed.json()["publish_changes"]) == (True, True)


def test_cli__sends_real_booleans(cli_as):
    cli = cli_as("db", "db:read", "db:write", "db:manage")

    code, made, err = cli("create-database", "ledger", "--owner-only", "--change-feed")
    assert code == 0, err
    code, plain, err = cli("create-database", "shop", "--no-change-feed")
    assert code == 0, err

    assert (made["owner_only"], made["publish_changes"]) == (True, True)
    assert (plain["owner_only"], plain["publish_changes"]) == (False, False)
