from django.urls import path

from event_app import web

app_name = "events"

urlpatterns = [
    path("", web.index, name="index"),
    path("<int:pk>/", web.detail, name="detail"),
]
