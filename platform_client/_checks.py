"""Argument checks the SDK's modules share."""

from __future__ import annotations

import math
import numbers


def seconds(value: float, what: str, *, hint: str = "", zero: bool = False) -> float:
    """``value`` as a positive (or, ``zero``, non-negative), finite number of seconds; a
    ``TypeError`` or ``ValueError`` naming ``what`` otherwise (a bool is not a number here, and
    NaN would never compare)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} is a number of seconds{hint}, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(
            f"{what} must be {'non-negative' if zero else 'positive'} and finite{hint}, not {value!r}"
        )
    return float(value)
