"""The events service's REST API: publish (native and CloudEvents), search, summary, subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import UnsupportedMediaType as DRFUnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.access import actor
from event_app import selectors, services
from event_app.api import serializers as io
from event_app.api.filters import DeliveryFilter
from event_app.cloudevents import BATCH, STRUCTURED, InvalidEvents, UnsupportedMediaType, parse_request
from event_app.filters import type_resource
from event_app.models import Delivery, Event, Subscription
from event_app.representation import event_dict
from platformsite.api.errors import Invalid, TooLarge
from platformsite.api.filters import filter_parameters, filtered, refuse_unknown
from platformsite.api.schema import ERROR
from platformsite.api.views import ServiceView, one_or_404, validated
from platformsite.hotpath import handed_over

#: Summary window when ``from`` is not given.
DEFAULT_SUMMARY_WINDOW = timedelta(hours=1)


class CloudEventsParser(BaseParser):
    """A publish's body, as bytes: the view parses every CloudEvents mode itself.

    Going through DRF's parsers (rather than reading ``request.body``) keeps the body readable
    after the session CSRF check, which reads the request's data first.
    """

    media_type = "application/cloudevents+json"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream else b""


class CloudEventsBatchParser(CloudEventsParser):
    media_type = BATCH


class NativeEventsParser(CloudEventsParser):
    media_type = "application/json"


class BinaryModeParser(CloudEventsParser):
    """Binary mode: the event's data in any media type, its attributes in ``ce-`` headers."""

    media_type = "*/*"


def request_headers(request) -> dict[str, str]:
    """A request's headers by lowercase name, with the ``ce-`` headers whose name holds ``_``.

    Django's ASGI request drops a header whose name holds ``_`` (WSGI spells ``_`` and ``-`` alike):
    read from the raw ASGI headers, such a ``ce-`` header reaches binary mode's checks, which refuse
    it rather than lose the attribute.
    """
    headers = {name.lower(): value for name, value in request.headers.items()}
    for raw_name, raw_value in getattr(request, "scope", {}).get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name.startswith("ce-") and "_" in name:
            headers[name] = raw_value.decode("latin-1")
    return headers


class EventsView(ServiceView):
    """Base of the events views: an event type ``order.created`` is the policy resource
    ``events:order.created`` (a prefix ``order.*``: ``events:order``)."""

    service = "events"


class EventLookup(EventsView):
    """Views of one stored event: its type is the resource."""

    def resources(self, request: Request, pk: int, **kwargs):
        self.event = one_or_404(Event, f"No event {pk}.", pk=pk)
        return (type_resource(self.event.type),)


#: The search's parameters, besides ``ext.<name>`` / ``metadata.<name>`` and the page's.
SEARCH_PARAMETERS = frozenset(
    {"type", "source", "subject", "root_id", "from", "to", "after", "before", "order"}
)


class EventListView(EventsView):
    """``GET``: search.  ``POST``: publish one event or a batch, in any CloudEvents HTTP mode."""

    parser_classes = [CloudEventsParser, CloudEventsBatchParser, NativeEventsParser, BinaryModeParser]

    def resources(self, request: Request, **kwargs):
        if request.method == "POST":
            self.events = self.parsed(request)
            types = {event.type for event in self.events}
        else:
            types = {type_.strip() for type_ in request.query_params.get("type", "").split(",")} - {""}
        return [type_resource(type_) for type_ in sorted(types)]

    @staticmethod
    def parsed(request: Request) -> list:
        if (events := handed_over(request._request, "events")) is not None:
            return events  # the hot route's, whose write failed: the same ids, so no event twice
        try:
            body = request.data if isinstance(request.data, bytes) else b""
            return parse_request(request_headers(request._request), body)[0]
        except InvalidEvents as exc:
            if exc.too_large:
                raise TooLarge("The events are too large.", details={"errors": exc.errors}) from exc
            if exc.not_json:  # as every other API answers a body that does not parse
                raise Invalid("The body is not valid JSON.", "parse_error", {"errors": exc.errors}) from exc
            raise Invalid("The events are not valid.", "invalid_events", {"errors": exc.errors}) from exc
        except UnsupportedMediaType as exc:
            raise DRFUnsupportedMediaType(str(exc)) from exc

    @extend_schema(
        parameters=[
            OpenApiParameter(name, description=text)
            for name, text in (
                ("type", "exact, or prefix 'order.*'; comma-separated for several"),
                ("source", "exact; comma-separated for several"),
                ("subject", "exact, or prefix with a trailing '*'"),
                ("root_id", "correlation id"),
                ("from", "RFC 3339, on the event's time (inclusive)"),
                ("to", "RFC 3339, exclusive"),
                ("order", "newest (default) or oldest"),
                ("ext.<name>", "extension attribute equality (also metadata.<name>)"),
            )
        ],
        responses=io.EventOutput(many=True),
        operation_id="events_search",
    )
    def get(self, request: Request) -> Response:
        refuse_unknown(request, SEARCH_PARAMETERS, prefixes=("ext.", "metadata."))
        order = request.query_params.get("order", "newest")
        if order not in {"newest", "oldest"}:
            raise Invalid("order is 'newest' or 'oldest'.", details={"order": [order]})
        events = selectors.event_search(request.query_params)
        allowed = self.allows(request, "read")  # a search without a type filter: each event's type

        def render(page: list[Event]) -> list[Any]:
            return io.EventOutput(
                [event_dict(e) for e in page if allowed(type_resource(e.type))], many=True
            ).data

        return self.paginate(events, ordering="-id" if order == "newest" else "id", render=render)

    @extend_schema(
        request={
            "application/json": OpenApiTypes.OBJECT,
            STRUCTURED: OpenApiTypes.OBJECT,
            BATCH: OpenApiTypes.OBJECT,
        },
        responses={201: io.PublishedOutput, 200: io.PublishedOutput},
        operation_id="events_publish",
    )
    def post(self, request: Request) -> Response:
        body, code = published(services.events_store_grouped(events=self.events))
        return Response(io.PublishedOutput(body).data, status=code)


def published(stored: list[services.Stored]) -> tuple[dict, int]:
    """A publish's answer: what was stored (201), or only duplicates of stored events (200)."""
    created = sum(1 for item in stored if item.created)
    body = {
        "count": len(stored),
        "created": created,
        "duplicates": len(stored) - created,
        "events": [
            {
                "id": item.event.id,
                "event_id": item.event.event_id,
                "source": item.event.source,
                "duplicate": not item.created,
            }
            for item in stored
        ],
    }
    return body, status.HTTP_201_CREATED if created else status.HTTP_200_OK


class EventDetailView(EventLookup):
    @extend_schema(responses=io.EventDetailOutput, operation_id="events_retrieve")
    def get(self, request: Request, pk: int) -> Response:
        body = event_dict(self.event)
        allowed = self.allows(request, "read")
        related = selectors.related_events(self.event)
        body["related"] = [event_dict(e) for e in related if allowed(type_resource(e.type))]
        return Response(io.EventDetailOutput(body).data)


class EventDeliveriesView(EventLookup):
    @extend_schema(responses=io.DeliveryOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        return self.paginate(
            selectors.deliveries(event_id=self.event.pk), ordering="id", serializer=io.DeliveryOutput
        )


class SummaryView(EventsView):
    """Counts per type (those the caller may read) or per source (counts of every type: for a
    caller that may read every type)."""

    def resources(self, request: Request, **kwargs):
        return [type_resource("*")] if request.query_params.get("group_by") == "source" else ()

    @extend_schema(parameters=[io.SummaryQuery], responses=io.SummaryOutput, operation_id="events_summary")
    def get(self, request: Request) -> Response:
        query = io.SummaryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        until = data.get("to") or timezone.now()
        try:
            since = data.get("from") or until - DEFAULT_SUMMARY_WINDOW
        except OverflowError:  # ``to`` within the first hour of year 1
            since = datetime.min.replace(tzinfo=UTC)
        body = selectors.event_summary(
            since=since, until=until, group_by=data["group_by"], interval=data["interval"]
        )
        if body["group_by"] == "type":
            allowed = self.allows(request, "read")
            body["series"] = [s for s in body["series"] if allowed(type_resource(s["key"]))]
        body["from"], body["to"] = since, until
        return Response(io.SummaryOutput(body).data)


def subscribed_types(request: Request, default: list[str]) -> list[str]:
    """The types a subscription's body names (read access to each is needed to subscribe)."""
    types = request.data.get("types") if isinstance(request.data, dict) else None
    if not types:
        return default
    return [type_ for type_ in types if isinstance(type_, str)] if isinstance(types, list) else []


class SubscriptionListView(EventsView):
    def resources(self, request: Request, **kwargs):
        if request.method != "POST":
            return ()
        return [type_resource(type_) for type_ in subscribed_types(request, ["*"])]

    def policy_action(self, request: Request) -> str:
        return "read"  # subscribing is reading the stream

    @extend_schema(responses=io.SubscriptionOutput(many=True))
    def get(self, request: Request) -> Response:
        allowed = self.allows(request, "read")

        def visible(page: list[Subscription]) -> list[Any]:
            shown = [sub for sub in page if all(allowed(type_resource(t)) for t in sub.types or ["*"])]
            return io.SubscriptionOutput(shown, many=True).data

        return self.paginate(Subscription.objects.all(), ordering="id", render=visible)

    @extend_schema(request=io.SubscriptionInput, responses={201: io.SubscriptionOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.SubscriptionInput, request.data)
        subscription = services.subscription_create(**data, owner=actor(request))
        body = io.SubscriptionOutput(subscription).data
        body["secret"] = subscription.secret  # shown once; verify webhook signatures with it
        return Response(body, status=status.HTTP_201_CREATED)


class SubscriptionView(EventsView):
    """Base of the views of one subscription: the lookup, and no handler of its own.

    Every call on a subscription (reading it or its deliveries, changing, redelivering, deleting)
    needs read access to each type it takes (every type when it names none), and a change to
    each type it would take: a caller narrowed to ``order.*`` can neither point another
    subscription's webhook at itself nor widen its own to every type with ``types: []``.
    """

    def resources(self, request: Request, name: str = "", **kwargs):
        stored = Subscription.objects.filter(name=name).values_list("types", flat=True).first()
        types = set(stored or ["*"]) if stored is not None else set()  # none: the lookup's 404
        body = request.data if request.method == "PATCH" and isinstance(request.data, dict) else {}
        if "types" in body:
            types |= set(subscribed_types(request, ["*"]))
        return [type_resource(type_) for type_ in sorted(types)]

    def policy_action(self, request: Request) -> str:
        return "read"  # subscribing is reading the stream

    def get_subscription(self, name: str) -> Subscription:
        return one_or_404(Subscription, f"No subscription named {name!r}.", name=name)


class SubscriptionDetailView(SubscriptionView):
    @extend_schema(responses=io.SubscriptionOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(io.SubscriptionOutput(self.get_subscription(name)).data)

    @extend_schema(request=io.SubscriptionUpdateInput, responses=io.SubscriptionOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = validated(io.SubscriptionUpdateInput, request.data)
        subscription = services.subscription_update(subscription=self.get_subscription(name), **data)
        return Response(io.SubscriptionOutput(subscription).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.subscription_delete(subscription=self.get_subscription(name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionDeliveriesView(SubscriptionView):
    @extend_schema(parameters=filter_parameters(DeliveryFilter), responses=io.DeliveryOutput(many=True))
    def get(self, request: Request, name: str) -> Response:
        subscription = self.get_subscription(name)
        deliveries = filtered(DeliveryFilter, request, selectors.deliveries(subscription=subscription))
        return self.paginate(deliveries, ordering="id", serializer=io.DeliveryOutput)


class SubscriptionRedeliverView(SubscriptionView):
    @extend_schema(request=io.RedeliverInput, responses=io.RequeuedOutput)
    def post(self, request: Request, name: str) -> Response:
        subscription = self.get_subscription(name)
        data = validated(io.RedeliverInput, request.data)
        dead = Delivery.objects.filter(subscription=subscription, status=Delivery.Status.DEAD)
        if not data["all_dead"]:
            dead = dead.filter(pk__in=data["ids"])
        count = services.deliveries_redeliver(delivery_ids=dead.values_list("pk", flat=True))
        return Response(io.RequeuedOutput({"requeued": count}).data)


class SummaryWithoutSlashView(SummaryView):
    """``/api/v1/events/summary`` without the slash (as docs/events.md writes it); the schema lists
    the slashed path."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return super().get(request)
