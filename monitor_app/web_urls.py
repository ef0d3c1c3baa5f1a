from django.urls import path

from monitor_app import web

app_name = "monitor"

urlpatterns = [
    path("", web.index, name="index"),
    path("<str:name>/", web.service_detail, name="service"),
]
