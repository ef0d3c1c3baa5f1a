"""Writes of the db service: the catalog (databases, tables, row policies) and records."""

from dbproxy_app.services.databases import (
    check_database_name,
    database_create,
    database_delete,
    database_update,
    row_policy_create,
    row_policy_delete,
    table_drop,
    table_ensure,
)
from dbproxy_app.services.records import Delete, Outcome, Update, records_write

__all__ = [
    "Delete",
    "Outcome",
    "Update",
    "check_database_name",
    "database_create",
    "database_delete",
    "database_update",
    "records_write",
    "row_policy_create",
    "row_policy_delete",
    "table_drop",
    "table_ensure",
]
