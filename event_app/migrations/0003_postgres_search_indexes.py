"""PostgreSQL-only indexes: prefix searches (LIKE 'x%') on type/subject, and extension containment."""

from django.db import migrations

INDEXES = [
    ("event_type_prefix", "(type varchar_pattern_ops, id)"),
    ("event_subject_prefix", "(subject varchar_pattern_ops)"),
    ("event_extensions_gin", "USING gin (extensions jsonb_path_ops)"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON event_app_event {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("event_app", "0002_counts_subscriptions_deliveries")]

    operations = [migrations.RunPython(create, drop)]
