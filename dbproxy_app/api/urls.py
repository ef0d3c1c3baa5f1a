from django.urls import path

from platformsite.api.views import ServiceRootView

app_name = "dbproxy_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="db"), name="root"),
]
