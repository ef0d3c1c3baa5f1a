"""Subscriptions and webhook delivery: signed POSTs, retries with backoff, dead letters, redelivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time as time_module
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from auth_app.policy import PolicyError
from auth_app.selectors import subject_decision
from event_app import selectors
from event_app.filters import type_resource
from event_app.live import LIVE_GROUP  # noqa: F401 - re-exported
from event_app.models import Delivery, Subscription
from event_app.representation import cloudevent_dict
from platformsite import outbound

log = logging.getLogger(__name__)

# --- subscriptions ------------------------------------------------------------------------------------


def check_sink(sink: str, url: str) -> None:
    if sink == Subscription.Sink.WEBHOOK:
        if not url:
            raise ValidationError({"url": ['A webhook subscription needs its URL (or "sink": "websocket").']})
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in {"http", "https"}:
            raise ValidationError({"url": ["A webhook URL must use http or https."]})
        if not _deliverable(url):
            raise ValidationError({"url": ["A webhook URL needs a host, a valid port and no spaces."]})
        if reason := outbound.refused_host(httpx.URL(url).host):
            raise ValidationError(
                {"url": [f"A webhook cannot target a loopback, link-local or private address: {reason}."]}
            )
    elif url:
        raise ValidationError({"url": ["A websocket subscription has no URL."]})


def _deliverable(url: str) -> bool:
    """Whether httpx can send to ``url`` (else every attempt fails until the delivery is dead)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return bool(parsed.host) and (parsed.port is None or 0 < parsed.port < 65536)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_secret(secret: str) -> None:
    """A signing secret given by the caller: ``whsec_`` and base64 (Standard Webhooks), or other
    text used as its UTF-8 bytes; never one whose key is empty (anyone could sign with it)."""
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:  # binascii.Error is one
            raise ValidationError({"secret": ["After whsec_ comes the key in base64."]}) from None
        if not key:
            raise ValidationError({"secret": ["The secret holds no key."]})


@transaction.atomic
def subscription_create(
    *,
    name: str,
    types: list[str] | None = None,
    sources: list[str] | None = None,
    subject_prefix: str = "",
    sink: str = Subscription.Sink.WEBHOOK,
    url: str = "",
    secret: str = "",
    owner: str = "",
) -> Subscription:
    # not at the top: the errors module loads DRF's settings, whose authentication imports this module
    from platformsite.api.errors import Conflict

    check_sink(sink, url)
    check_secret(secret)
    taken = Conflict(
        f"A subscription named {name!r} exists.", code="subscription_exists", details={"name": name}
    )
    if Subscription.objects.filter(name=name).exists():
        raise taken
    try:
        with transaction.atomic():  # a concurrent create of the same name
            subscription = Subscription.objects.create(
                name=name,
                types=list(types or []),
                sources=list(sources or []),
                subject_prefix=subject_prefix,
                sink=sink,
                url=url,
                secret=secret or (new_secret() if sink == Subscription.Sink.WEBHOOK else ""),
                owner=owner,
            )
    except IntegrityError:
        raise taken from None
    selectors.forget_webhook_filters()
    transaction.on_commit(selectors.forget_webhook_filters_again)
    return subscription


@transaction.atomic
def subscription_update(*, subscription: Subscription, **changes: Any) -> Subscription:
    for name, value in changes.items():
        setattr(subscription, name, value)
    check_sink(subscription.sink, subscription.url)
    check_secret(subscription.secret)
    subscription.save()
    selectors.forget_webhook_filters()
    transaction.on_commit(selectors.forget_webhook_filters_again)
    if subscription.is_active and subscription.sink == Subscription.Sink.WEBHOOK:
        from event_app import tasks
        from platformsite.tasks import enqueue

        enqueue(tasks.deliver_subscription, subscription.pk)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: Subscription) -> None:
    # Wait for publishes that hold the row (FOR KEY SHARE, see selectors.existing_subscriptions)
    # so that the cascade below sees the deliveries they committed.
    list(Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk"))
    subscription.delete()
    selectors.forget_webhook_filters()
    transaction.on_commit(selectors.forget_webhook_filters_again)


# --- webhook delivery ----------------------------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"))
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1, 2, ...): doubling, capped, with 10% jitter."""
    base = settings.EVENTS_WEBHOOK_BACKOFF_SECONDS * 2 ** max(0, attempts - 1)
    delay = min(base, settings.EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS)
    return delay * (1 + random.random() / 10) if delay else 0.0


def _post(client: httpx.Client, subscription: Subscription, delivery: Delivery) -> tuple[int | None, str]:
    body = json.dumps(cloudevent_dict(delivery.event), separators=(",", ":")).encode()
    message_id = f"dlv_{delivery.pk}"
    timestamp = int(time_module.time())
    headers = {
        "content-type": "application/cloudevents+json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(subscription.secret, message_id, timestamp, body),
        "user-agent": "micro-platform-events/1",
    }
    try:
        response = client.post(subscription.url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


@dataclass(frozen=True)
class DeliveryRun:
    """How a delivery run stopped: with more to send now (``more``), with the queue head waiting
    for its retry (``retry_in`` seconds), or with nothing to do (neither)."""

    more: bool = False
    retry_in: float | None = None
    #: The waiting delivery and its attempts so far: one wait, whoever finds it.
    waiting: tuple[int, int] | None = None


def subscription_deliver(*, subscription_id: int, limit: int | None = None) -> DeliveryRun:
    """Send a subscription's pending deliveries, oldest first, one at a time.

    Stops at the first delivery not yet due (ordering: nothing overtakes a delivery waiting
    for its retry) and says when it falls due, so the caller can resume then rather than at
    beat's next scan.  Only one runner per subscription at a time (a lock in the shared cache).
    """
    limit = limit or settings.EVENTS_WEBHOOK_RUN_LIMIT
    lock_key = f"events:deliver-lock:{subscription_id}"
    lock_seconds = int(settings.EVENTS_WEBHOOK_TIMEOUT * 2 + 10)
    if not cache.add(lock_key, 1, lock_seconds):
        return DeliveryRun()
    try:
        subscription = Subscription.objects.filter(
            pk=subscription_id, is_active=True, sink=Subscription.Sink.WEBHOOK
        ).first()
        if subscription is None:
            return DeliveryRun()
        queue = Delivery.objects.filter(subscription_id=subscription_id, status=Delivery.Status.PENDING)
        readable: dict[str, bool] = {}  # event type -> may the owner read it (asked once a run)
        # Guarded: no loopback, link-local or private target, checked at connect time (SSRF).
        with outbound.client(timeout=settings.EVENTS_WEBHOOK_TIMEOUT, follow_redirects=False) as client:
            for _ in range(limit):
                delivery = queue.select_related("event").order_by("id").first()
                if delivery is None:
                    return DeliveryRun()
                if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
                    return _waiting(delivery)
                cache.touch(lock_key, lock_seconds)
                kind = delivery.event.type
                if kind not in readable:
                    readable[kind] = owner_may_read(subscription.owner, kind)
                if not readable[kind]:
                    _refuse(delivery, f"policy_denied: {subscription.owner} may not read {kind} events")
                    continue
                code, error = _post(client, subscription, delivery)
                _record_attempt(delivery=delivery, status_code=code, error=error)
                if delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at > timezone.now():
                    return _waiting(delivery)
        return DeliveryRun(more=True)
    finally:
        cache.delete(lock_key)


def owner_may_read(owner: str, event_type: str) -> bool:
    """May a subscription's owner read events of ``event_type`` now? Its types were checked when
    it was made, but a prefix (``order.*``) or every type takes types a rule may deny one by one
    (``deny read events:order.refund``), and rules change: each event is checked at delivery, as
    a search checks each event it answers. A user who is active staff counts as admin (as a
    dashboard session does), whatever account it has or lacks."""
    if not owner:
        return True  # made by the platform itself
    if owner.startswith("user:") and (
        get_user_model().objects.filter(username=owner[5:], is_active=True, is_staff=True).exists()
    ):
        return True
    try:
        return subject_decision(owner, resource=type_resource(event_type), action="read").allowed
    except PolicyError:
        return False


def _refuse(delivery: Delivery, reason: str) -> None:
    """A delivery its subscription's owner may not have: a dead letter saying why, never sent."""
    delivery.status, delivery.last_error, delivery.next_attempt_at = Delivery.Status.DEAD, reason[:500], None
    delivery.save(update_fields=["status", "last_error", "next_attempt_at"])


def _waiting(delivery: Delivery) -> DeliveryRun:
    retry_in = (delivery.next_attempt_at - timezone.now()).total_seconds()
    return DeliveryRun(retry_in=retry_in, waiting=(delivery.pk, delivery.attempts))


def _record_attempt(*, delivery: Delivery, status_code: int | None, error: str) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.EVENTS_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = Delivery.Status.DEAD
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )


@transaction.atomic
def deliveries_redeliver(*, delivery_ids: Iterable[int]) -> int:
    """Put dead letters back in their subscriptions' queues (attempts reset); returns how many."""
    ids = list(delivery_ids)
    queued = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.DEAD)
    subscription_ids = set(queued.values_list("subscription_id", flat=True))
    count = queued.update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    from event_app import tasks
    from platformsite.tasks import enqueue

    for sid in sorted(subscription_ids):
        enqueue(tasks.deliver_subscription, sid)
    return count


def deliveries_due_subscriptions() -> list[int]:
    """Subscriptions whose oldest pending delivery is due (beat starts a runner for each)."""
    now = timezone.now()
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    candidates = set(
        pending.filter(next_attempt_at__lte=now).values_list("subscription_id", flat=True).distinct()
    ) | set(pending.filter(next_attempt_at__isnull=True).values_list("subscription_id", flat=True).distinct())
    due = []
    for subscription_id in sorted(candidates):
        head = pending.filter(subscription_id=subscription_id).order_by("id").first()
        if head is not None and (head.next_attempt_at is None or head.next_attempt_at <= now):
            due.append(subscription_id)
    return due
