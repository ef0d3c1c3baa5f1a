"""A GIN index on the platform backend's record metadata, on PostgreSQL (SQLite has no GIN).

Metadata equality compiles to containment (``metadata @> '{"k": "v"}'``), which this index
(``jsonb_path_ops``) serves; PostgreSQL combines it with the table id's btree index.
"""

from django.db import migrations

CREATE = (
    'CREATE INDEX IF NOT EXISTS "dbproxy_record_metadata_gin" '
    'ON "dbproxy_app_record" USING gin ("metadata" jsonb_path_ops)'
)
DROP = 'DROP INDEX IF EXISTS "dbproxy_record_metadata_gin"'


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("dbproxy_app", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
