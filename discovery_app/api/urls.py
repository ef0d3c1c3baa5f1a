from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "discovery_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="discovery"), name="root"),
]
