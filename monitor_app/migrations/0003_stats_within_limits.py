"""Stats samples beyond the limits reports are now held to (``reports.STAT_LIMITS``) lose the value
that is out of range: such a value made the downsampling's averages overflow (an infinity that
broke every read of the service's stats on SQLite, an error that stopped the downsampling on
PostgreSQL)."""

from django.db import migrations

#: As ``monitor_app.services.reports.STAT_LIMITS`` when this migration was written.
LIMITS = {"cpu": 1e6, "memory": 2.0**64, "disk": 2.0**64, "runtime": 1e10}


def forget_out_of_range(apps, schema_editor):
    StatSample = apps.get_model("monitor_app", "StatSample")
    for field, high in LIMITS.items():
        StatSample.objects.filter(**{f"{field}__gt": high}).update(**{field: None})
    StatSample.objects.filter(seconds__gt=86400.0).update(seconds=0)


class Migration(migrations.Migration):
    dependencies = [("monitor_app", "0002_service_reminders")]

    operations = [migrations.RunPython(forget_out_of_range, migrations.RunPython.noop, elidable=True)]
