from django.urls import path

from event_app.consumers import EventStreamConsumer

websocket_urlpatterns = [path("ws/events/", EventStreamConsumer.as_asgi())]
