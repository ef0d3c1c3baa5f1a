"""Background jobs of the events service: webhook delivery, counter roll-up, retention."""

from __future__ import annotations

import math

from celery import shared_task
from django.core.cache import cache

from event_app import services


@shared_task(name="event_app.tasks.deliver_subscription")
def deliver_subscription(subscription_id: int) -> None:
    """Send one subscription's due deliveries in order; hands over to a fresh task after a run
    limit, and schedules one for when a retry falls due (beat's scan remains the safety net)."""
    from platformsite.tasks import dispatch

    run = services.subscription_deliver(subscription_id=subscription_id)
    if run.more:
        dispatch(deliver_subscription, (subscription_id,))
    elif run.retry_in is not None and run.waiting is not None:
        # One wake-up per wait (this delivery after this many attempts), however many publishes
        # start a runner meanwhile.
        retry_in = max(run.retry_in, 0.0) + 0.05
        delivery_id, attempts = run.waiting
        key = f"events:deliver-wakeup:{delivery_id}:{attempts}"
        if cache.add(key, 1, timeout=math.ceil(retry_in) + 60):
            dispatch(deliver_subscription, (subscription_id,), countdown=retry_in)


@shared_task(name="event_app.tasks.deliver_due")
def deliver_due() -> None:
    """Beat: start a runner for every subscription with a delivery due (retries, missed starts)."""
    from platformsite.tasks import dispatch

    for subscription_id in services.deliveries_due_subscriptions():
        dispatch(deliver_subscription, (subscription_id,))


@shared_task(name="event_app.tasks.rollup_counts")
def rollup_counts() -> None:
    services.counts_rollup()


@shared_task(name="event_app.tasks.purge_expired")
def purge_expired() -> None:
    services.events_purge_expired()
