from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "event_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="events"), name="root"),
]
