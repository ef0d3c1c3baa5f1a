from django.urls import path

from auth_app.api.views import WhoAmIView
from platformsite.api.views import ServiceRootView

app_name = "auth_app"

urlpatterns = [
    path("", ServiceRootView.as_view(service="auth"), name="root"),
    path("whoami/", WhoAmIView.as_view(), name="whoami"),
]
