"""The monitor's root URLs: job pings, ``/ping/<id>`` and ``/ping/<key>/<slug>`` (Healthchecks.io's);
any other ``/ping/...`` is a 404 ``check_not_found`` as an unknown id is."""

from django.urls import re_path

from monitor_app.api.pings import PingByIdView, PingBySlugView, no_such_ping

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ACTION = r"(?:/(?P<action>start|fail|log|[0-9]+))?"

urlpatterns = [
    re_path(rf"^ping/(?P<check_id>{UUID}){ACTION}/?$", PingByIdView.as_view(), name="monitor-ping-id"),
    re_path(
        rf"^ping/(?P<key>[A-Za-z0-9_-]{{16,64}})/(?P<slug>[a-z0-9][a-z0-9_-]{{0,62}}){ACTION}/?$",
        PingBySlugView.as_view(),
        name="monitor-ping-slug",
    ),
    re_path(r"^ping(?:/.*)?$", no_such_ping, name="monitor-ping-unknown"),
]
