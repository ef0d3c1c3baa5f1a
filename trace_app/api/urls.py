from django.urls import path

from platformsite.api.views import ServiceRootView
from trace_app.api import views

app_name = "trace_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="trace"), name="root"),
    path("traces/", views.SearchView.as_view(), name="traces"),
    path("traces/<str:trace_id>/", views.TraceDetailView.as_view(), name="trace"),
    path("compare/", views.CompareView.as_view(), name="compare"),
    path("graph/", views.GraphView.as_view(), name="graph"),
    path("services/", views.ServicesView.as_view(), name="services"),
    path("rules/", views.RuleListView.as_view(), name="rules"),
    # a service's name may hold '/' (a span's service may): sent as %2F or as is, either matches
    path("rules/<path:service>/", views.RuleDetailView.as_view(), name="rule"),
]
