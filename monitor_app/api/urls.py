from django.urls import path

from monitor_app.api.views import PingView
from platformsite.api.views import ServiceRootView

app_name = "monitor_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="monitor"), name="root"),
    path("ping/", PingView.as_view(), name="ping"),
]
