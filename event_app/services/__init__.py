"""Writes of the events service.

:func:`event_publish` is the one function every other service calls for its platform events
(types named ``<service>.<entity>.<verb>``, source ``/platform/<service>``); the API stores
batches with :func:`events_store`.  Both write the events, their counters and the webhook
deliveries they cause in one transaction; the websocket push and the delivery tasks follow
after commit, so nothing is announced that is not durably stored.

One module per use case: publishing, subscriptions (and webhook delivery), retention.
"""

from event_app.live import LIVE_GROUP
from event_app.models import Delivery, Event, Subscription
from event_app.services.publishing import (
    Stored,
    broadcast,
    event_publish,
    event_publish_many,
    events_store,
    events_store_grouped,
)
from event_app.services.retention import counts_rollup, events_purge_expired, retention_rules
from event_app.services.subscriptions import (
    DeliveryRun,
    backoff,
    deliveries_due_subscriptions,
    deliveries_redeliver,
    new_secret,
    sign,
    signing_key,
    subscription_create,
    subscription_delete,
    subscription_deliver,
    subscription_update,
)

__all__ = [
    "LIVE_GROUP",
    "Delivery",
    "DeliveryRun",
    "Event",
    "Stored",
    "Subscription",
    "backoff",
    "broadcast",
    "counts_rollup",
    "deliveries_due_subscriptions",
    "deliveries_redeliver",
    "event_publish",
    "event_publish_many",
    "events_purge_expired",
    "events_store",
    "events_store_grouped",
    "new_secret",
    "retention_rules",
    "sign",
    "signing_key",
    "subscription_create",
    "subscription_delete",
    "subscription_deliver",
    "subscription_update",
]
