from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "config_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="config"), name="root"),
]
