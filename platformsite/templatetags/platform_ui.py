"""Template helpers shared by every dashboard: ``{% load platform_ui %}``.

``utc`` writes a time the one way dashboards show times: UTC, to the second, with a ``Z``
(``2026-12-04T10:00:00Z``).  It reads datetimes, Unix timestamps and ISO 8601 strings; anything
else is shown as it is.  ``platformsite/static/platformsite/time.js`` does the same in the browser.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django import template

register = template.Library()


def as_utc(value: Any) -> datetime | None:
    """``value`` as an aware UTC datetime, or None when it is not a time."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


@register.filter
def utc(value: Any) -> Any:
    """``2026-12-04T10:00:00Z`` for a time; an empty string for None; other values unchanged."""
    moment = as_utc(value)
    if moment is None:
        return "" if value is None else value
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


#: (seconds in the unit, its symbol), largest first: an age shows its two largest units.
_AGE_UNITS = ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))


@register.filter
def age(value: Any) -> Any:
    """Seconds as the dashboards show an age: ``42 s``, ``2 min 11 s``, ``3 h 5 min``, ``2 d 1 h``
    (``platformsite/static/platformsite/live.js`` keeps it growing the same way); other values
    unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    seconds, parts = max(int(value), 0), []
    for size, symbol in _AGE_UNITS:
        if seconds >= size or (size == 1 and not parts):
            parts.append(f"{seconds // size} {symbol}")
            seconds %= size
            if len(parts) == 2:
                break
        elif parts:  # the next unit after the largest is shown even when 0 ("1 h 0 min")
            parts.append(f"0 {symbol}")
            break
    return " ".join(parts)


@register.filter
def percent(value: Any) -> Any:
    """A share (0.0521) as the dashboards show rates: ``5.21%`` (two decimals at most)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"
