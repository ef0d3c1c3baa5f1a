"""The platform backend's record data is written with sorted keys (``SortedKeys``), so that on
SQLite, where the JSON text is compared, objects are equal whatever their keys' order.  Records
written before are rewritten once, on SQLite only: PostgreSQL's jsonb keeps no key order."""

import json

from django.db import migrations, models

import dbproxy_app.models

CHUNK = 1000


def sort_stored_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        last = 0
        while True:
            cursor.execute(
                "SELECT id, data FROM dbproxy_app_record WHERE id > %s AND data IS NOT NULL ORDER BY id LIMIT %s",
                [last, CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            for pk, text in rows:
                ordered = json.dumps(json.loads(text), sort_keys=True)
                if ordered != text:
                    cursor.execute("UPDATE dbproxy_app_record SET data = %s WHERE id = %s", [ordered, pk])
            last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("dbproxy_app", "0003_plural_names")]

    operations = [
        migrations.AlterField(
            model_name="record",
            name="data",
            field=models.JSONField(
                blank=True,
                encoder=dbproxy_app.models.SortedKeys,
                help_text="The record's JSON body, or null.",
                null=True,
            ),
        ),
        migrations.RunPython(sort_stored_keys, migrations.RunPython.noop),
    ]
