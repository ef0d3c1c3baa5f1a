"""Which events a subscriber wants: types (exact, or by prefix: ``order.*``), sources, subject prefix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from auth_app.policy import resource_for

#: Stands for every type under a prefix in its resource: no event type is named so.
EVERY_TYPE = "-every-type-"


def type_resource(type_: str) -> str:
    """The policy resource of an event type (``order.created`` -> ``events:order.created``) or of
    every type under a prefix (``order.*`` -> ``events:order.-every-type-``, ``*`` ->
    ``events:-every-type-``): a rule naming the prefix (``events:order.*``) allows or denies it,
    one naming a single type under it does not. Characters a resource cannot hold become ``_``."""
    if type_.endswith("*"):
        return resource_for("events", type_[:-1] + EVERY_TYPE)
    return resource_for("events", type_)


#: Types and sources a filter may list: each prefix is a term of the query (SQLite refuses a
#: condition nested about 1,000 deep), and a subscription is matched against every event.
MAX_VALUES = 100


def too_many(name: str, values: Any) -> str:
    """Why a filter's list of ``name`` is refused ("" when it is not)."""
    count = len(_split(values)) if isinstance(values, str | list | tuple) else 0
    return f"{name} lists {count} values, at most {MAX_VALUES}" if count > MAX_VALUES else ""


def _split(values: Iterable[str] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    return tuple(v.strip() for v in values if v and v.strip())


@dataclass(frozen=True)
class EventFilter:
    """Empty fields match everything; a type ending in ``*`` matches by prefix (``order.*``, ``*``)."""

    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    subject_prefix: str = ""

    @classmethod
    def of(cls, types: Any = None, sources: Any = None, subject_prefix: str | None = "") -> EventFilter:
        return cls(_split(types), _split(sources), subject_prefix or "")

    def matches(self, type_: str, source: str, subject: str) -> bool:
        if self.types and not any(
            type_.startswith(t[:-1]) if t.endswith("*") else type_ == t for t in self.types
        ):
            return False
        if self.sources and source not in self.sources:
            return False
        return subject.startswith(self.subject_prefix)

    def q(self) -> Q:
        """The same filter as a queryset condition on Event."""
        condition = Q()
        if self.types:
            exact = [t for t in self.types if not t.endswith("*")]
            by_type = Q(type__in=exact) if exact else Q()
            for t in self.types:
                if t.endswith("*"):
                    by_type |= Q(type__startswith=t[:-1])
            condition &= by_type
        if self.sources:
            condition &= Q(source__in=self.sources)
        if self.subject_prefix:
            condition &= Q(subject__startswith=self.subject_prefix)
        return condition

    def as_dict(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "sources": list(self.sources),
            "subject_prefix": self.subject_prefix,
        }
