"""Databases found through discovery: ``db.<name>`` with node metadata ``driver`` and ``dsn_ref``."""

from __future__ import annotations

import pytest

from config_app import services as config
from dbproxy_app.models import Database
from discovery_app import services as discovery
from tests.dbproxy_app.test_records_api import create, ids, url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def registered(settings, tmp_path):
    """``db.inventory`` in discovery, its DSN (an sqlite file name) a secret in config."""
    settings.DB_SQLITE_DIR = str(tmp_path)
    config.namespace_create(name="inventory-db", secret_paths=["dsn"])
    config.layer_set(
        namespace="inventory-db", env="production", data={"dsn": "inventory.sqlite3"}, author="t"
    )

    def node(status_metadata: dict[str, str]) -> None:
        discovery.node_register(
            node_id="inv-1",
            service="db.inventory",
            version="1",
            address="10.0.0.1",
            port=5432,
            metadata=status_metadata,
        )

    return node


def test_a_database_named_by_discovery__is_served_when_lookup_is_on(registered, settings, writer):
    settings.DB_DISCOVERY_LOOKUP = True
    registered({"driver": "sqlite", "dsn_ref": "config:inventory-db/production#dsn"})
    create(writer, "inventory", {"id": "a", "data": 1}, table="items")
    assert ids(writer.get(url("inventory", "items"))) == ["a"]
    database = Database.objects.get(name="inventory")
    assert database.source == "discovery" and database.backend == "sqlite"
    assert "inventory.sqlite3" not in database.dsn_sealed
    assert writer.get("/api/v1/db/databases/inventory/").json()["source"] == "discovery"


def test_discovery_lookup__is_off_by_default(registered, writer):
    registered({"driver": "sqlite", "dsn_ref": "config:inventory-db/production#dsn"})
    response = writer.get(url("inventory", "items"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "database_not_found"


@pytest.mark.parametrize(
    "metadata",
    [
        {"driver": "mysql", "dsn_ref": "config:inventory-db/production#dsn"},
        {"driver": "sqlite"},
        {"driver": "sqlite", "dsn_ref": "config:inventory-db/production#missing"},
        {"driver": "sqlite", "dsn_ref": "config:nope/production#dsn"},
        {"driver": "sqlite", "dsn_ref": "postgresql://root@db/x"},
    ],
)
def test_a_node_without_a_usable_driver_or_dsn_ref__names_no_database(registered, settings, writer, metadata):
    settings.DB_DISCOVERY_LOOKUP = True
    registered(metadata)
    assert writer.get(url("inventory", "items")).status_code == 404
    assert not Database.objects.exists()
