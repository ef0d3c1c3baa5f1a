"""Background jobs of the events service: webhook delivery, counter roll-up, retention."""

from __future__ import annotations

from celery import shared_task

from event_app import services


@shared_task(name="event_app.tasks.deliver_subscription")
def deliver_subscription(subscription_id: int) -> None:
    """Send one subscription's due deliveries in order; hands over to a fresh task after a run limit."""
    if services.subscription_deliver(subscription_id=subscription_id):
        from platformsite.tasks import dispatch

        dispatch(deliver_subscription, (subscription_id,))


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
