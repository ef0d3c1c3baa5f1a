from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "trace_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="trace"), name="root"),
]
