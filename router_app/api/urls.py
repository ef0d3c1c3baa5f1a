from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "router_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="router"), name="root"),
]
