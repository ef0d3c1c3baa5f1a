from django.urls import path

from router_app.consumers import RouterConsumer

websocket_urlpatterns = [
    path("ws/router/", RouterConsumer.as_asgi()),
]
