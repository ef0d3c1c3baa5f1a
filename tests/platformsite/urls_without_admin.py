"""The root URLs as ``runservice NAME --web`` serves them: the dashboards, no admin."""

from platformsite.urls import urlpatterns as _all

urlpatterns = [pattern for pattern in _all if getattr(pattern, "app_name", None) != "admin"]
