"""Filters of the events lists (the event search has its own grammar: event_app.filters)."""

from __future__ import annotations

from event_app.models import Delivery
from platformsite.api.filters import FilterSet, django_filters


class DeliveryFilter(FilterSet):
    status = django_filters.ChoiceFilter(
        choices=Delivery.Status.choices, label="Only deliveries in this state."
    )

    class Meta:
        model = Delivery
        fields: list[str] = []
