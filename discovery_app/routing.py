from django.urls import path

from discovery_app.consumers import DiscoveryConsumer

websocket_urlpatterns = [
    path("ws/discovery/", DiscoveryConsumer.as_asgi()),
]
