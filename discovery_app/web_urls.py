from django.urls import path

from discovery_app import web

app_name = "discovery"

urlpatterns = [
    path("", web.index, name="index"),
    path("<str:name>/", web.service_detail, name="service"),
]
