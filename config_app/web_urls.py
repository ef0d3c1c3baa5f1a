"""Dashboard pages of the config service, under /ui/config/."""

from django.urls import path

from config_app import web

app_name = "config"

urlpatterns = [
    path("", web.index, name="index"),
    path("<slug:ns>/", web.namespace_page, name="namespace"),
]
