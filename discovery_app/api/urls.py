from django.urls import path

from discovery_app.api import views
from platformsite.api.views import ServiceRootView

app_name = "discovery_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="discovery"), name="root"),
    path("services/", views.ServiceListView.as_view(), name="services"),
    path("services/<str:name>/", views.ServiceDetailView.as_view(), name="service"),
    path("nodes/", views.NodeListView.as_view(), name="nodes"),
    path("nodes/<str:node_id>/", views.NodeDetailView.as_view(), name="node"),
    path("nodes/<str:node_id>/heartbeat/", views.HeartbeatView.as_view(), name="heartbeat"),
    path("heartbeats/", views.BatchHeartbeatView.as_view(), name="heartbeats"),
    path("results/", views.ResultListView.as_view(), name="results"),
    path("registry/", views.RegistryView.as_view(), name="registry"),
]
