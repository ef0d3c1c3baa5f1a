from django.urls import path

from router_app import web

app_name = "router"

urlpatterns = [
    path("", web.index, name="index"),
    path("<str:name>/", web.service_detail, name="service"),
]
