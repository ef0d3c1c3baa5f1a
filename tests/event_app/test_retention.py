"""Retention per type prefix, purged in batches; counters rolled up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from event_app.models import Event
from event_app.services import events_purge_expired

pytestmark = pytest.mark.django_db


def age(event, days):
    Event.objects.filter(pk=event.pk).update(received=timezone.now() - timedelta(days=days))


def test_purge__per_prefix_retention__longest_prefix_wins(make_event, settings):
    # given
    settings.EVENTS_RETENTION_DAYS = {"": 30, "debug.": 1, "debug.keep.*": 90}
    settings.EVENTS_PURGE_BATCH = 2
    old_debug = [make_event("debug.trace") for _ in range(3)]
    kept_debug = make_event("debug.keep.me")
    fresh_debug = make_event("debug.trace")
    old_order = make_event("order.created")
    young_order = make_event("order.created")
    for event in [*old_debug, kept_debug]:
        age(event, 5)
    age(old_order, 31)
    age(young_order, 29)
    # when
    deleted = events_purge_expired()
    # then
    assert deleted == 4
    assert set(Event.objects.values_list("pk", flat=True)) >= {kept_debug.pk, fresh_debug.pk, young_order.pk}
    assert not Event.objects.filter(pk__in=[e.pk for e in [*old_debug, old_order]]).exists()


def test_beat_tasks__scheduled_and_runnable(settings, make_event):
    # given
    from event_app import tasks

    old = make_event("order.created")
    age(old, 31)
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    # when
    for name in ("purge_expired", "rollup_counts", "deliver_due"):
        getattr(tasks, name).apply(throw=True)
    # then
    assert {
        "event_app.tasks.purge_expired",
        "event_app.tasks.rollup_counts",
        "event_app.tasks.deliver_due",
    } <= scheduled
    assert not Event.objects.filter(pk=old.pk).exists()
