"""The root URLs as ``runservice auth`` serves them (no ``--web``): no dashboards, no admin."""

from platformsite.urls import urlpatterns as _all

urlpatterns = [
    pattern
    for pattern in _all
    if getattr(pattern, "app_name", None) != "admin" and str(pattern.pattern) not in ("ui/", "")
]
